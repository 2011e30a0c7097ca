#include "runtime/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <iostream>

#include "lang/check.h"
#include "lang/codes.h"
#include "lang/text.h"
#include "runtime/version.h"

namespace fs = std::filesystem;

namespace gray {

namespace {

struct CommandInfo {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>&, std::ostream&, std::ostream&);
};

const std::vector<CommandInfo>& command_table() {
  static const std::vector<CommandInfo> t = {
      {"check", "parse and check pipelines and modules: gray check FILE|DIR...", cmd_check},
      {"plan", "show what a run would do: gray plan FILE [--set name=value]...", cmd_plan},
      {"simulate", "rehearse a release on a virtual clock: gray simulate FILE [--scenario S] [--runs N --seed S]", cmd_simulate},
      {"run", "run a release, journaled: gray run FILE [--set name=value]... [--clock real|virtual]", cmd_run},
      {"resume", "continue a run that stopped or died: gray resume RUN", cmd_resume},
      {"status", "where a run is: gray status [RUN] [--watch]", cmd_status},
      {"promote", "answer a waiting approval gate with promote: gray promote RUN", cmd_promote},
      {"abort", "end a run as aborted, undoing nothing (at a gate or while it runs): gray abort RUN", cmd_abort},
      {"rollback", "roll a run back (at a gate or while it runs): gray rollback RUN", cmd_rollback},
      {"force-unlock", "remove a stale run lock: gray force-unlock TARGET", cmd_force_unlock},
      {"lint", "check pipelines and apply the release-safety rules: gray lint FILE|DIR...", cmd_lint},
      {"fmt", "rewrite files in the canonical layout: gray fmt [--check|--diff] FILE|DIR|-...", cmd_fmt},
  };
  return t;
}

std::string usage() {
  std::string u =
      "usage: gray <command> [options] [files...]\n"
      "\n"
      "commands:\n";
  for (const CommandInfo& c : command_table())
    u += "  " + std::string(c.name) + std::string(std::max<size_t>(1, 14 - std::strlen(c.name)), ' ') + c.summary + "\n";
  u += "  version       print the version\n"
       "  help          show this help\n"
       "\n"
       "common options:\n"
       "  --format text|json|sarif   how to print diagnostics (text goes to stderr, json and sarif to stdout)\n"
       "  --color auto|always|never  colour in text output (NO_COLOR is honoured)\n"
       "  --root DIR                 project root for imports (default: nearest gray.json or .git)\n"
       "  --allow-outside-root       let imports leave the project root\n"
       "\n"
       "exit codes: 0 clean, 1 problems found or the release failed, 2 usage error, 3 internal error\n";
  return u;
}

}  // namespace

std::string ParsedArgs::get(const std::string& name, const std::string& fallback) const {
  auto it = options.find(name);
  return it == options.end() || it->second.empty() ? fallback : it->second.back();
}

const std::vector<std::string>& ParsedArgs::all(const std::string& name) const {
  static const std::vector<std::string> none;
  auto it = options.find(name);
  return it == options.end() ? none : it->second;
}

ParsedArgs parse_args(const std::vector<std::string>& args, size_t from, const OptionSpec& spec) {
  ParsedArgs out;
  bool files_only = false;
  for (size_t i = from; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (files_only || a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      files_only = true;
      continue;
    }
    std::string name = a.substr(0, a.find('='));
    auto it = spec.find(name);
    if (it == spec.end()) {
      std::vector<std::string> names;
      for (auto& [n, _] : spec) names.push_back(n);
      std::string best = closest_word(name, names);
      throw UsageError{"unknown option '" + name + "'" + (best.empty() ? "" : "; did you mean '" + best + "'?")};
    }
    if (!it->second) {
      if (name != a) throw UsageError{"option '" + name + "' takes no value"};
      out.options[name].push_back("");
      continue;
    }
    if (name != a) {
      out.options[name].push_back(a.substr(name.size() + 1));
    } else {
      if (i + 1 >= args.size()) throw UsageError{"option '" + name + "' needs a value"};
      out.options[name].push_back(args[++i]);
    }
  }
  return out;
}

Format parse_format(const std::string& s, bool allow_github) {
  if (s == "text") return Format::Text;
  if (s == "json") return Format::Json;
  if (s == "sarif") return Format::Sarif;
  if (s == "github" && allow_github) return Format::Github;
  throw UsageError{"unknown format '" + s + "'; expected text, json" + std::string(allow_github ? ", sarif or github" : " or sarif")};
}

void add_front_end_options(OptionSpec& spec) {
  spec["--format"] = true;
  spec["--color"] = true;
  spec["--root"] = true;
  spec["--allow-outside-root"] = false;
}

LoadOptions load_options(const ParsedArgs& a) {
  LoadOptions o;
  o.root = a.get("--root");
  o.allow_outside_root = a.has("--allow-outside-root");
  std::string color = a.get("--color", "auto");
  if (color != "auto" && color != "always" && color != "never")
    throw UsageError{"unknown --color '" + color + "'; expected auto, always or never"};
  return o;
}

bool use_color(const std::string& mode) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  const char* no = std::getenv("NO_COLOR");
  if (no && *no) return false;
  return isatty(STDERR_FILENO) != 0;
}

namespace {

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

}  // namespace

std::unique_ptr<FrontEnd> load_and_check(const std::vector<std::string>& files, const LoadOptions& opts, CheckFacts* facts) {
  auto fe = std::make_unique<FrontEnd>();
  fe->project = std::make_unique<Project>(opts, fe->reader);
  for (const std::string& f : expand_files(files, fe->diags)) {
    int m = fe->project->load(f, fe->diags);
    fe->roots.push_back(m);
    if (m < 0) fe->unreadable = true;
  }
  check_project(*fe->project, fe->diags, facts);
  return fe;
}

void emit_diagnostics(FrontEnd& fe, Format format, const std::string& color, std::ostream& out, std::ostream& err) {
  fe.diags.sort();
  RenderOptions ro;
  ro.tool_version = kVersion;
  switch (format) {
    case Format::Text:
    case Format::Github:
      ro.color = use_color(color);
      err << render_text(fe.project->sources(), fe.diags.list(), ro);
      break;
    case Format::Json: out << render_json(fe.project->sources(), fe.diags.list(), ro); break;
    case Format::Sarif: out << render_sarif(fe.project->sources(), fe.diags.list(), ro); break;
  }
}

int cmd_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  add_front_end_options(spec);
  ParsedArgs a = parse_args(args, 2, spec);
  Format format = parse_format(a.get("--format", "text"), false);
  LoadOptions lo = load_options(a);
  if (a.positional.empty()) throw UsageError{"check needs at least one file or directory"};
  auto fe = load_and_check(a.positional, lo);
  emit_diagnostics(*fe, format, a.get("--color", "auto"), out, err);
  // A file named on the command line that cannot be read is a usage error, not a finding.
  if (fe->unreadable) return kExitUsage;
  return fe->diags.has_errors() ? kExitFindings : kExitOk;
}

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    if (args.size() < 2) {
      err << usage();
      return kExitUsage;
    }
    const std::string& cmd = args[1];
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      out << usage();
      return kExitOk;
    }
    if (cmd == "version" || cmd == "--version") {
      out << "gray " << kVersion << "\n";
      return kExitOk;
    }
    for (const CommandInfo& c : command_table())
      if (cmd == c.name) return c.run(args, out, err);
    std::vector<std::string> names = {"help", "version"};
    for (const CommandInfo& c : command_table()) names.push_back(c.name);
    std::string best = closest_word(cmd, names);
    throw UsageError{"unknown command '" + cmd + "'" + (best.empty() ? "" : "; did you mean '" + best + "'?")};
  } catch (const UsageError& e) {
    err << "gray: " << e.message << "\n"
        << "run 'gray help' for usage\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    err << "gray: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}

}  // namespace gray
