// The `gray` command line: argument parsing and the subcommands.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace gray {

// Exit codes (DESIGN.md §4).
enum ExitCode { kExitOk = 0, kExitFindings = 1, kExitUsage = 2, kExitInternal = 3 };

// Runs `gray ARGS...`; machine output goes to `out`, diagnostics and logs to `err`.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gray
