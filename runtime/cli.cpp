#include "runtime/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "lang/check.h"
#include "lang/codes.h"
#include "lang/load.h"
#include "runtime/version.h"

namespace fs = std::filesystem;

namespace gray {
namespace {

const char* kUsage =
    "usage: gray <command> [options] [files...]\n"
    "\n"
    "commands:\n"
    "  check FILE|DIR...   parse and check pipelines and modules\n"
    "  version             print the version\n"
    "  help                show this help\n"
    "\n"
    "options for check:\n"
    "  --format text|json|sarif   how to print diagnostics (text goes to stderr, json and sarif to stdout)\n"
    "  --color auto|always|never  colour in text output (NO_COLOR is honoured)\n"
    "  --root DIR                 project root for imports (default: nearest gray.json or .git)\n"
    "  --allow-outside-root       let imports leave the project root\n"
    "\n"
    "exit codes: 0 clean, 1 problems found, 2 usage error, 3 internal error\n";

struct UsageError {
  std::string message;
};

enum class Format { Text, Json, Sarif };

struct CommonOptions {
  Format format = Format::Text;
  std::string color = "auto";
  LoadOptions load;
  std::vector<std::string> files;
};

// Parses `--name value`, `--name=value` and flags; everything else is a file.
CommonOptions parse_check_args(const std::vector<std::string>& args, size_t from) {
  CommonOptions o;
  auto value = [&](size_t& i, const std::string& name) -> std::string {
    const std::string& a = args[i];
    if (auto eq = a.find('='); eq != std::string::npos) return a.substr(eq + 1);
    if (i + 1 >= args.size()) throw UsageError{name + " needs a value"};
    return args[++i];
  };
  bool files_only = false;
  for (size_t i = from; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string name = a.substr(0, a.find('='));
    if (files_only || a.size() < 2 || a[0] != '-') {
      o.files.push_back(a);
    } else if (a == "--") {
      files_only = true;
    } else if (name == "--format") {
      std::string v = value(i, name);
      if (v == "text") o.format = Format::Text;
      else if (v == "json") o.format = Format::Json;
      else if (v == "sarif") o.format = Format::Sarif;
      else throw UsageError{"unknown format '" + v + "'; expected text, json or sarif"};
    } else if (name == "--color") {
      o.color = value(i, name);
      if (o.color != "auto" && o.color != "always" && o.color != "never")
        throw UsageError{"unknown --color '" + o.color + "'; expected auto, always or never"};
    } else if (name == "--root") {
      o.load.root = value(i, name);
    } else if (a == "--allow-outside-root") {
      o.load.allow_outside_root = true;
    } else {
      throw UsageError{"unknown option '" + a + "'"};
    }
  }
  return o;
}

bool use_color(const std::string& mode) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  const char* no = std::getenv("NO_COLOR");
  if (no && *no) return false;
  return isatty(STDERR_FILENO) != 0;
}

// Directories stand for every .gray file below them, in a stable order.
std::vector<std::string> expand_files(const std::vector<std::string>& in, Diagnostics& diags) {
  std::vector<std::string> out;
  for (const std::string& f : in) {
    std::error_code ec;
    if (fs::is_directory(f, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(f, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && it->path().extension() == ".gray") found.push_back(it->path().string());
      }
      if (ec) diags.error(code::kIo, {}, "cannot list '" + f + "': " + ec.message());
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(f);
    }
  }
  return out;
}

void emit(const Project& project, Diagnostics& diags, const CommonOptions& o, std::ostream& out, std::ostream& err) {
  diags.sort();
  RenderOptions ro;
  ro.tool_version = kVersion;
  switch (o.format) {
    case Format::Text:
      ro.color = use_color(o.color);
      err << render_text(project.sources(), diags.list(), ro);
      break;
    case Format::Json: out << render_json(project.sources(), diags.list(), ro); break;
    case Format::Sarif: out << render_sarif(project.sources(), diags.list(), ro); break;
  }
}

int cmd_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CommonOptions o = parse_check_args(args, 2);
  if (o.files.empty()) throw UsageError{"check needs at least one file or directory"};
  Diagnostics diags;
  DiskReader reader;
  Project project(o.load, reader);
  bool unreadable = false;
  for (const std::string& f : expand_files(o.files, diags))
    if (project.load(f, diags) < 0) unreadable = true;
  check_project(project, diags);
  emit(project, diags, o, out, err);
  // A file named on the command line that cannot be read is a usage error, not a finding.
  if (unreadable) return kExitUsage;
  return diags.has_errors() ? kExitFindings : kExitOk;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    if (args.size() < 2) {
      err << kUsage;
      return kExitUsage;
    }
    const std::string& cmd = args[1];
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      out << kUsage;
      return kExitOk;
    }
    if (cmd == "version" || cmd == "--version") {
      out << "gray " << kVersion << "\n";
      return kExitOk;
    }
    if (cmd == "check") return cmd_check(args, out, err);
    throw UsageError{"unknown command '" + cmd + "'"};
  } catch (const UsageError& e) {
    err << "gray: " << e.message << "\n" << "run 'gray help' for usage\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    err << "gray: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}

}  // namespace gray
