// Running a program (nginx -t, nginx -s reload) with a time limit and its output captured.
#pragma once

#include <string>
#include <vector>

namespace gray::plugins::nginx {

struct CommandResult {
  bool started = false;   // false: the program could not be started (see `output`)
  bool timed_out = false; // killed after the time limit
  int exit_code = -1;     // the exit status when it exited normally
  std::string output;     // stdout and stderr together

  bool ok() const { return started && !timed_out && exit_code == 0; }
};

CommandResult run_command(const std::vector<std::string>& argv, double timeout_ms);

}  // namespace gray::plugins::nginx
