// gray lint: everything `gray check` reports, then the release-safety rules of lang/lint/ on the
// files that checked clean.
//
//   gray lint [--format text|json|sarif|github] [--fail-level error|warning|note]
//             [--config gray.json] FILE|DIR...
//   gray lint --list-rules
//
// Configuration comes from the gray.json at the project root of each file (the nearest
// ancestor with gray.json or .git), or from --config. Exit codes: 0 clean, 1 a language
// error or a finding at --fail-level or above (default: warning), 2 usage or configuration
// error, 3 internal error.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "lang/codes.h"
#include "lang/lint/lint.h"
#include "runtime/cli.h"
#include "runtime/version.h"

namespace fs = std::filesystem;

namespace gray {
namespace {

int rank(Severity s) { return s == Severity::Error ? 3 : s == Severity::Warning ? 2 : 1; }

// SARIF's descriptions of the lint rules.
const CodeInfo* describe_rule(std::string_view id) {
  static const std::map<std::string, CodeInfo, std::less<>> infos = [] {
    std::map<std::string, CodeInfo, std::less<>> m;
    for (const lint::Rule* r : lint::rules()) m[r->info.id] = {r->info.id, r->info.summary, ""};
    return m;
  }();
  auto it = infos.find(id);
  return it == infos.end() ? nullptr : &it->second;
}

struct ConfigError {
  std::string message;
};

lint::Config read_config(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ConfigError{"cannot read '" + path + "'"};
  std::ostringstream ss;
  ss << f.rdbuf();
  lint::Config c;
  std::string error;
  if (!lint::parse_config(ss.str(), c, error)) throw ConfigError{path + ": " + error};
  return c;
}

// The configuration for each file: its project's gray.json, read once per project.
class Configs {
 public:
  Configs(std::string forced, std::string root) : forced_(std::move(forced)), root_(std::move(root)) {}

  const lint::Config& for_file(const std::string& abs_path) {
    std::string path = forced_;
    if (path.empty()) {
      fs::path dir = root_.empty() ? fs::path(abs_path).parent_path() : fs::path(root_);
      for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
        std::error_code ec;
        if (fs::exists(p / "gray.json", ec)) {
          path = (p / "gray.json").string();
          break;
        }
        if (fs::exists(p / ".git", ec) || !root_.empty() || p == p.parent_path()) break;
      }
    }
    auto it = cache_.find(path);
    if (it != cache_.end()) return it->second;
    return cache_.emplace(path, path.empty() ? lint::Config{} : read_config(path)).first->second;
  }

 private:
  std::string forced_, root_;
  std::map<std::string, lint::Config> cache_;
};

std::string list_rules() {
  std::string out;
  size_t width = 0;
  for (const lint::Rule* r : lint::rules()) width = std::max(width, std::string_view(r->info.id).size());
  for (const lint::Rule* r : lint::rules()) {
    std::string id = r->info.id;
    std::string level = lint::level_name(r->info.level);
    out += id + std::string(width + 2 - id.size(), ' ') + level + std::string(9 - level.size(), ' ') + r->info.summary + "\n";
  }
  return out;
}

}  // namespace

int cmd_lint(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  add_front_end_options(spec);
  spec["--fail-level"] = true;
  spec["--config"] = true;
  spec["--list-rules"] = false;
  ParsedArgs a = parse_args(args, 2, spec);
  if (a.has("--list-rules")) {
    out << list_rules();
    return kExitOk;
  }
  Format format = parse_format(a.get("--format", "text"), true);
  LoadOptions lo = load_options(a);
  std::string fail = a.get("--fail-level", "warning");
  Severity fail_at;
  if (fail == "error") fail_at = Severity::Error;
  else if (fail == "warning") fail_at = Severity::Warning;
  else if (fail == "note") fail_at = Severity::Note;
  else throw UsageError{"unknown --fail-level '" + fail + "'; expected error, warning or note"};
  if (a.positional.empty()) throw UsageError{"lint needs at least one file or directory"};

  Configs configs(a.get("--config"), lo.root);
  if (a.has("--config")) {
    try {
      (void)configs.for_file("");
    } catch (const ConfigError& e) {
      err << "gray: " << e.message << "\n";
      return kExitUsage;
    }
  }

  CheckFacts facts;
  auto fe = load_and_check(a.positional, lo, &facts);
  const Project& project = *fe->project;

  // Rules run on modules that checked clean, imports included.
  std::set<uint32_t> broken_files;
  for (const Diagnostic& d : fe->diags.list())
    if (d.severity == Severity::Error) broken_files.insert(d.span.file);
  std::map<int, bool> clean;
  std::function<bool(int, int)> is_clean = [&](int m, int depth) {
    if (auto it = clean.find(m); it != clean.end()) return it->second;
    const LoadedModule& lm = project.module(m);
    bool ok = lm.syntax_ok && lm.ast.file && !broken_files.count(lm.ast.file->id()) && depth < 64;
    clean[m] = ok;  // a cycle is an error already
    for (const Import& imp : lm.imports) ok = ok && imp.module >= 0 && is_clean(imp.module, depth + 1);
    clean[m] = ok;
    return ok;
  };
  const bool language_errors = fe->diags.has_errors();
  Diagnostics findings;
  std::set<int> done;
  try {
    for (int m : fe->roots) {
      if (m < 0 || !done.insert(m).second || !is_clean(m, 0)) continue;
      lint::lint_module(project, m, facts, configs.for_file(project.module(m).abs_path), findings);
    }
  } catch (const ConfigError& e) {
    err << "gray: " << e.message << "\n";
    return kExitUsage;
  }
  bool failed = false;
  for (Diagnostic& d : findings.list()) {
    failed |= rank(d.severity) >= rank(fail_at);
    fe->diags.add(std::move(d));
  }

  fe->diags.sort();
  RenderOptions ro;
  ro.tool_version = kVersion;
  ro.describe = describe_rule;
  switch (format) {
    case Format::Text:
      ro.color = use_color(a.get("--color", "auto"));
      err << render_text(project.sources(), fe->diags.list(), ro);
      break;
    case Format::Json: out << render_json(project.sources(), fe->diags.list(), ro); break;
    case Format::Sarif: out << render_sarif(project.sources(), fe->diags.list(), ro); break;
    case Format::Github: out << render_github(project.sources(), fe->diags.list(), ro); break;
  }
  if (fe->unreadable) return kExitUsage;
  return language_errors || failed ? kExitFindings : kExitOk;
}

}  // namespace gray
