// Child processes for the drivers that run programs: the hosts drivers (sh, ssh) and external
// plugins. Each child gets its own process group, so a timeout can end it together with
// everything it started; pipes are close-on-exec so children started by other threads do not
// inherit them.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace gray::plugins::proc {

// The full path of `program`: itself when it holds a slash, else the first match in PATH.
// Empty when nothing executable is found.
std::string find_executable(const std::string& program);

// A running child with pipes to its stdin (optional), stdout and stderr.
class Child {
 public:
  Child() = default;
  ~Child();
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Starts argv (argv[0] resolved by find_executable) in its own process group, in directory
  // `cwd` when not empty. Without `with_stdin` the child reads /dev/null. On failure returns a
  // child that is not running and sets `error` ("cannot run ssh: No such file or directory").
  static Child start(const std::vector<std::string>& argv, bool with_stdin, const std::string& cwd, std::string& error);

  bool started() const { return pid_ > 0 || status_ != kUnknown; }
  pid_t pid() const { return pid_; }
  int stdin_fd() const { return in_; }
  int stdout_fd() const { return out_; }
  int stderr_fd() const { return err_; }
  // A descriptor that becomes readable when the child exits (a pidfd), or -1 where the kernel
  // has none: then poll with a short timeout and ask exited().
  int exit_fd() const { return pidfd_; }
  void close_stdin();

  // True once the child has exited (reaps it without blocking).
  bool exited();
  // Exit code, or 128+signal when a signal ended it; -1 while it runs.
  int exit_code() const { return status_ == kUnknown ? -1 : status_; }
  bool killed_by_signal() const { return signaled_; }
  // Sends `sig` to the child's whole process group.
  void signal_group(int sig);
  // SIGTERM to the group, SIGKILL after `grace_ms`, and reap. Safe to call on any child.
  void stop(int grace_ms);

 private:
  static constexpr int kUnknown = -1000;
  void close_fds();
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1, pidfd_ = -1;
  int status_ = kUnknown;
  bool signaled_ = false;
};

// What a program run to completion did.
struct Outcome {
  bool started = false;
  std::string start_error;   // why it could not be started
  bool timed_out = false;    // killed (with its process group) at the deadline
  int exit_code = -1;        // 128+signal when a signal ended it
  std::string out, err;      // at most `max_output` bytes each: the last ones when longer
  bool truncated = false;
  double elapsed_ms = 0;
};

// Runs argv with stdin from /dev/null, collecting stdout and stderr until it exits or
// `timeout_ms` passes. A child that exits while something it started keeps the pipes open
// (a daemon, ssh's connection master) is not waited for: what is already written is read, then
// the pipes are closed. On timeout the whole process group gets SIGTERM, then SIGKILL.
Outcome run(const std::vector<std::string>& argv, double timeout_ms, size_t max_output = 4u << 20);

}  // namespace gray::plugins::proc
