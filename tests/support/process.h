// Child processes for tests that start real servers (HAProxy, nginx, etcd, Prometheus, sshd, the
// image registry) on 127.0.0.1: spawn, wait until a port answers, stop by PID and reap.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace gray::testing {

class Process {
 public:
  Process() = default;
  // Starts argv[0] (looked up in PATH) with stdout and stderr appended to `log_path`.
  Process(std::vector<std::string> argv, const std::string& log_path, const std::vector<std::string>& extra_env = {});
  ~Process();
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // SIGTERM, then SIGKILL after `grace_ms`; always reaps.
  void stop(int grace_ms = 3000);
  void kill_now();
  // Exit status after stop or exit (-1 while running, 128+signal when killed).
  int wait();

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// Waits until something accepts connections on 127.0.0.1:port. False after `timeout_ms`.
bool wait_for_port(int port, int timeout_ms);
// Waits until GET url answers 2xx. False after `timeout_ms`.
bool wait_for_http(const std::string& url, int timeout_ms);
// Full path of a program in PATH (or /usr/sbin, /usr/bin, /sbin), or "" when not installed.
std::string find_program(const std::string& name);
// A fresh directory under the system temp dir, removed by the caller.
std::string make_temp_dir(const std::string& prefix);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

}  // namespace gray::testing
