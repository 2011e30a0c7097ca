// The `gray` command line: shared option parsing and front-end plumbing for the subcommands.
#pragma once

#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lang/check.h"
#include "lang/diag.h"
#include "lang/load.h"

namespace gray {

// Exit codes (DESIGN.md §4).
enum ExitCode { kExitOk = 0, kExitFindings = 1, kExitUsage = 2, kExitInternal = 3 };

// Runs `gray ARGS...`; machine output goes to `out`, diagnostics and logs to `err`.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

struct UsageError {
  std::string message;
};

// Options a command accepts: name (with dashes) -> whether it takes a value.
using OptionSpec = std::map<std::string, bool>;

struct ParsedArgs {
  std::map<std::string, std::vector<std::string>> options;  // every occurrence, in order
  std::vector<std::string> positional;

  bool has(const std::string& name) const { return options.count(name) > 0; }
  // The last value given for an option, or `fallback`.
  std::string get(const std::string& name, const std::string& fallback = "") const;
  const std::vector<std::string>& all(const std::string& name) const;
};

// Parses `--name value`, `--name=value` and flags after the command word; `--` ends options.
// Unknown options are usage errors, with a suggestion.
ParsedArgs parse_args(const std::vector<std::string>& args, size_t from, const OptionSpec& spec);

enum class Format { Text, Json, Sarif, Github };
Format parse_format(const std::string& s, bool allow_github);

// The options every command that reads pipelines understands.
void add_front_end_options(OptionSpec& spec);
LoadOptions load_options(const ParsedArgs& a);

// Everything loaded for one invocation: files, their imports, diagnostics.
struct FrontEnd {
  DiskReader reader;
  std::unique_ptr<Project> project;
  Diagnostics diags;
  bool unreadable = false;          // a file named on the command line could not be read
  std::vector<int> roots;           // module index per file named (-1 when unreadable)
};

// Loads (directories stand for the .gray files below them), then checks everything loaded.
// `facts`, when given, receives what the checker learned about names (for lint).
std::unique_ptr<FrontEnd> load_and_check(const std::vector<std::string>& files, const LoadOptions& opts,
                                         CheckFacts* facts = nullptr);

// Prints diagnostics: text to `err` (colour per --color and NO_COLOR), json/sarif to `out`.
void emit_diagnostics(FrontEnd& fe, Format format, const std::string& color, std::ostream& out, std::ostream& err);

bool use_color(const std::string& mode);

// Shared by the commands that run pipelines (cmd_plan.cpp, cmd_simulate.cpp, cmd_run.cpp).
struct SetupError;
// `--set name=value`, repeatable.
std::map<std::string, std::string> set_params(const ParsedArgs& a);
// The module index of a pipeline that loaded and checked clean; -1 after printing why not.
int load_pipeline(FrontEnd& fe, const std::string& file, std::ostream& out, std::ostream& err, const std::string& color);
void report_setup_error(FrontEnd& fe, const SetupError& e, const std::string& color, std::ostream& out, std::ostream& err);
// The scenario next to a pipeline (pipelines/scenarios/<stem>/good.json), or "" when there is none.
std::string default_scenario(const std::string& pipeline);

// Subcommands.
int cmd_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_plan(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_simulate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_resume(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_status(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_promote(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_abort(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_rollback(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_force_unlock(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_fmt(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_lint(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gray
