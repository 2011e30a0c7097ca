#include "plugins/hosts/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace gray::plugins::proc {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#endif
  (void)pid;
  return -1;
}

// In the child between fork and exec: only async-signal-safe calls from here on.
[[noreturn]] void exec_child(const char* exe, char* const* args, int in_fd, int out_fd, int err_fd, const char* dir, int report_fd) {
  ::setpgid(0, 0);
  // Signal dispositions and masks survive exec; a parent that ignores SIGPIPE must not make
  // `producer | head` in a command behave differently.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
  if (in_fd < 0) in_fd = ::open("/dev/null", O_RDONLY);
  if (in_fd < 0 || ::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0 || (dir && ::chdir(dir) != 0)) {
    int e = errno;
    [[maybe_unused]] ssize_t n = ::write(report_fd, &e, sizeof e);
    ::_exit(127);
  }
#ifdef CLOSE_RANGE_CLOEXEC
  // Descriptors other threads opened without O_CLOEXEC must not leak into the program.
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
  ::execv(exe, args);
  int e = errno;
  [[maybe_unused]] ssize_t n = ::write(report_fd, &e, sizeof e);
  ::_exit(127);
}

}  // namespace

std::string find_executable(const std::string& program) {
  if (program.empty()) return "";
  if (program.find('/') != std::string::npos) return is_executable_file(program) ? program : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (is_executable_file(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

Child::~Child() {
  if (pid_ > 0) stop(0);
  close_fds();
}

Child::Child(Child&& o) noexcept
    : pid_(o.pid_), in_(o.in_), out_(o.out_), err_(o.err_), pidfd_(o.pidfd_), status_(o.status_), signaled_(o.signaled_) {
  o.pid_ = -1;
  o.in_ = o.out_ = o.err_ = o.pidfd_ = -1;
  o.status_ = kUnknown;
}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) stop(0);
    close_fds();
    pid_ = o.pid_, in_ = o.in_, out_ = o.out_, err_ = o.err_, pidfd_ = o.pidfd_, status_ = o.status_, signaled_ = o.signaled_;
    o.pid_ = -1;
    o.in_ = o.out_ = o.err_ = o.pidfd_ = -1;
    o.status_ = kUnknown;
  }
  return *this;
}

void Child::close_fds() {
  close_fd(in_);
  close_fd(out_);
  close_fd(err_);
  close_fd(pidfd_);
}

void Child::close_stdin() { close_fd(in_); }

Child Child::start(const std::vector<std::string>& argv, bool with_stdin, const std::string& cwd, std::string& error) {
  Child c;
  if (argv.empty()) {
    error = "no program to run";
    return c;
  }
  const std::string exe = find_executable(argv[0]);
  if (exe.empty()) {
    error = "cannot run " + argv[0] + ": " +
            (argv[0].find('/') == std::string::npos ? "not found in PATH" : "no such executable file");
    return c;
  }
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err, report}) close_fd(p[0]), close_fd(p[1]);
  };
  if ((with_stdin && ::pipe2(in, O_CLOEXEC) != 0) || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      ::pipe2(report, O_CLOEXEC) != 0) {
    error = std::string("cannot run ") + argv[0] + ": pipe: " + std::strerror(errno);
    close_all();
    return c;
  }
  // Everything the child needs is prepared before fork: it may not allocate afterwards.
  std::vector<std::string> args_copy = argv;
  std::vector<char*> args;
  for (std::string& a : args_copy) args.push_back(a.data());
  args.push_back(nullptr);
  const char* dir = cwd.empty() ? nullptr : cwd.c_str();

  pid_t pid = ::fork();
  if (pid < 0) {
    error = std::string("cannot run ") + argv[0] + ": fork: " + std::strerror(errno);
    close_all();
    return c;
  }
  if (pid == 0) exec_child(exe.c_str(), args.data(), in[0], out[1], err[1], dir, report[1]);

  ::setpgid(pid, pid);  // also here, so the group exists before the parent may signal it
  close_fd(in[0]);
  close_fd(out[1]);
  close_fd(err[1]);
  close_fd(report[1]);
  int child_errno = 0;
  ssize_t n;
  do n = ::read(report[0], &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  close_fd(report[0]);
  c.pid_ = pid;
  c.in_ = in[1];
  c.out_ = out[0];
  c.err_ = err[0];
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    // exec failed: the report pipe carried errno instead of closing on exec.
    error = "cannot run " + exe + (dir ? std::string(" in ") + dir : "") + ": " + std::strerror(child_errno);
    c.stop(0);
    c.close_fds();
    c.status_ = kUnknown;
    return c;
  }
  c.pidfd_ = open_pidfd(pid);
  return c;
}

bool Child::exited() {
  if (pid_ <= 0) return status_ != kUnknown;
  int st = 0;
  pid_t r;
  do r = ::waitpid(pid_, &st, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  if (r == pid_) {
    signaled_ = WIFSIGNALED(st);
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  } else {
    status_ = 128;  // already reaped elsewhere: the status is lost
  }
  pid_ = -1;
  close_fd(pidfd_);
  return true;
}

void Child::signal_group(int sig) {
  if (pid_ > 0) ::kill(-pid_, sig);
}

void Child::stop(int grace_ms) {
  if (pid_ <= 0) return;
  const pid_t group = pid_;
  if (grace_ms > 0 && !exited()) {
    ::kill(-group, SIGTERM);
    auto until = Clock::now() + std::chrono::milliseconds(grace_ms);
    while (Clock::now() < until && !exited()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Whatever of the group is left (the leader, or children that ignored SIGTERM) ends now.
  ::kill(-group, SIGKILL);
  if (pid_ > 0) {
    int st = 0;
    pid_t r;
    do r = ::waitpid(pid_, &st, 0);
    while (r < 0 && errno == EINTR);
    signaled_ = r == pid_ && WIFSIGNALED(st);
    status_ = r == pid_ ? (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)) : 128 + SIGKILL;
    pid_ = -1;
    close_fd(pidfd_);
  }
}

namespace {

// Appends what `fd` has to `buf`, keeping at most `cap` bytes (the last ones). False at EOF or
// on an error.
bool drain_once(int fd, std::string& buf, size_t cap, bool& truncated) {
  char chunk[16384];
  ssize_t n;
  do n = ::read(fd, chunk, sizeof chunk);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return n < 0 && errno == EAGAIN;
  buf.append(chunk, static_cast<size_t>(n));
  if (buf.size() > 2 * cap) {
    buf.erase(0, buf.size() - cap);
    truncated = true;
  }
  return true;
}

// How long output written just before the exit may still be in flight after the child is gone.
constexpr double kAfterExitMs = 100;

}  // namespace

Outcome run(const std::vector<std::string>& argv, double timeout_ms, size_t max_output) {
  Outcome o;
  const auto t0 = Clock::now();
  Child c = Child::start(argv, false, "", o.start_error);
  if (!c.started()) return o;
  o.started = true;
  int out = c.stdout_fd(), err = c.stderr_fd();
  bool out_open = true, err_open = true, gone = false;
  Clock::time_point gone_at{};
  for (;;) {
    const auto now = Clock::now();
    if (!gone && c.exited()) {
      gone = true;
      gone_at = now;
    }
    if (gone && ((!out_open && !err_open) || ms_between(gone_at, now) >= kAfterExitMs)) break;
    const double left = timeout_ms - ms_between(t0, now);
    if (!gone && left <= 0) {
      o.timed_out = true;
      c.stop(500);
      break;
    }
    pollfd fds[3];
    nfds_t n = 0;
    if (out_open) fds[n++] = {out, POLLIN, 0};
    if (err_open) fds[n++] = {err, POLLIN, 0};
    const bool watch_exit = !gone && c.exit_fd() >= 0;
    if (watch_exit) fds[n++] = {c.exit_fd(), POLLIN, 0};
    double wait_ms = gone ? kAfterExitMs - ms_between(gone_at, now) : watch_exit ? left : std::min(left, 10.0);
    int ready = ::poll(fds, n, std::max(1, static_cast<int>(wait_ms + 0.999)));
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t i = 0; ready > 0 && i < n; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (fds[i].fd == out) out_open = drain_once(out, o.out, max_output, o.truncated);
      else if (fds[i].fd == err) err_open = drain_once(err, o.err, max_output, o.truncated);
    }
  }
  if (!o.timed_out && !c.exited()) c.stop(0);
  for (std::string* s : {&o.out, &o.err})
    if (s->size() > max_output) {
      s->erase(0, s->size() - max_output);
      o.truncated = true;
    }
  o.exit_code = c.exit_code();
  o.elapsed_ms = ms_between(t0, Clock::now());
  return o;
}

}  // namespace gray::plugins::proc
