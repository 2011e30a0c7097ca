#include "plugins/nginx/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace gray::plugins::nginx {

namespace {

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, double timeout_ms) {
  CommandResult out;
  int pipe_fds[2];
  if (argv.empty() || ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    out.output = "cannot create a pipe: " + std::string(std::strerror(errno));
    return out;
  }
  // Whether exec worked travels back on a second pipe that exec closes.
  int exec_fds[2];
  if (::pipe2(exec_fds, O_CLOEXEC) != 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    out.output = "cannot create a pipe: " + std::string(std::strerror(errno));
    return out;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    out.output = "cannot fork: " + std::string(std::strerror(errno));
    for (int fd : {pipe_fds[0], pipe_fds[1], exec_fds[0], exec_fds[1]}) ::close(fd);
    return out;
  }
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    int err = errno;
    (void)!::write(exec_fds[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  ::close(exec_fds[1]);
  int exec_errno = 0;
  if (::read(exec_fds[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
    ::close(exec_fds[0]);
    ::close(pipe_fds[0]);
    ::waitpid(pid, nullptr, 0);
    out.output = "cannot run " + argv[0] + ": " + std::strerror(exec_errno);
    return out;
  }
  ::close(exec_fds[0]);
  out.started = true;
  const double deadline = now_ms() + timeout_ms;
  char buf[4096];
  for (;;) {
    int left = static_cast<int>(deadline - now_ms());
    if (left <= 0) {
      out.timed_out = true;
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t got = ::read(pipe_fds[0], buf, sizeof buf);
    if (got > 0) {
      out.output.append(buf, static_cast<size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(pipe_fds[0]);
  if (out.timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!out.timed_out && WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  return out;
}

}  // namespace gray::plugins::nginx
