#include "plugins/external/link.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace gray::plugins::external {

using json = nlohmann::json;

namespace {

// A response line longer than this is garbage, not an answer.
constexpr size_t kMaxLine = 64u << 20;
// Stderr lines are cut to this length before they become notes.
constexpr size_t kMaxNote = 2000;
// How much longer than a call's timeout gray waits, so a plugin honouring timeout_ms itself can
// still report its own clean error.
constexpr double kAnswerGraceMs = 500;

std::string excerpt(const std::string& s) {
  std::string out = s.size() > 120 ? s.substr(0, 120) + "..." : s;
  return "'" + out + "'";
}

// Writes without letting a closed pipe raise SIGPIPE in this process: SIGPIPE is blocked in this
// thread for the write, and a SIGPIPE the write itself raised is taken off the pending set.
ssize_t write_no_sigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_only, old_mask, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  ssize_t n = ::write(fd, data, size);
  int saved = errno;
  if (n < 0 && saved == EPIPE && !was_pending) {
    timespec zero{};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = saved;
  return n;
}

}  // namespace

double Link::now_ms() const {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool Link::ensure_started(std::string& error) {
  if (running_ && !child_.exited()) return true;
  if (running_) {
    // It died between calls: say how, then start it again.
    pump_stderr(true);
    if (s_.note) s_.note(death_notice("idle time") + "; starting it again");
    kill_now();
  }
  return start(error);
}

bool Link::start(std::string& error) {
  std::string why;
  child_ = proc::Child::start(s_.argv, true, s_.cwd, why);
  if (!child_.started()) {
    error = who_ + ": " + why;
    return false;
  }
  ::fcntl(child_.stdin_fd(), F_SETFL, ::fcntl(child_.stdin_fd(), F_GETFL) | O_NONBLOCK);
  running_ = true;
  ++starts_;
  out_buf_.clear();
  err_buf_.clear();
  last_err_line_.clear();

  json hello = {{"type", "hello"},           {"protocol", kProtocolVersion}, {"kind", kind_name(s_.kind)},
                {"instance", s_.instance},   {"config", s_.config},          {"secrets", s_.config_secret_pointers}};
  const double deadline = now_ms() + s_.hello_timeout_ms;
  std::string line;
  if (!write_line(hello.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", deadline, why)) {
    error = who_ + ": " + why;
    kill_now();
    return false;
  }
  switch (read_line(deadline, line)) {
    case Read::Line: break;
    case Read::Timeout:
      error = who_ + ": did not answer the handshake within " + format_duration(s_.hello_timeout_ms);
      kill_now();
      return false;
    case Read::Closed: error = death_notice("the handshake"); return false;
    case Read::TooLong:
      error = who_ + ": answered the handshake with a line longer than 64 MiB";
      kill_now();
      return false;
  }
  json answer = json::parse(line, nullptr, false);
  if (answer.is_discarded()) {
    error = who_ + ": answered the handshake with something that is not JSON: " + excerpt(scrub(line, s_.secret_texts));
    kill_now();
    return false;
  }
  std::string problem;
  std::optional<Hello> h = read_hello(answer, s_.kind, problem);
  if (h && s_.kind == Kind::Hosts)
    for (const char* needed : {"run", "inventory"})
      if (std::find(h->ops.begin(), h->ops.end(), needed) == h->ops.end()) {
        problem = std::string("a hosts plugin must answer \"") + needed + "\", and its \"ops\" list does not name it";
        h.reset();
      }
  if (!h) {
    error = who_ + ": " + scrub(problem, s_.secret_texts);
    kill_now();
    return false;
  }
  hello_ = std::move(*h);
  return true;
}

bool Link::write_line(const std::string& line, double deadline_ms, std::string& error) {
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write_no_sigpipe(child_.stdin_fd(), line.data() + done, line.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) {
      error = errno == EPIPE ? "it closed its input (it has exited or stopped reading)" : std::string("write: ") + std::strerror(errno);
      return false;
    }
    // The pipe is full: the plugin is not reading. Keep its stderr flowing while waiting.
    const double left = deadline_ms - now_ms();
    if (left <= 0) {
      error = "it did not read its input in time";
      return false;
    }
    pollfd fds[2] = {{child_.stdin_fd(), POLLOUT, 0}, {child_.stderr_fd(), POLLIN, 0}};
    ::poll(fds, child_.stderr_fd() >= 0 ? 2 : 1, std::max(1, static_cast<int>(left)));
    if (fds[1].revents) pump_stderr(false);
  }
  return true;
}

Link::Read Link::read_line(double deadline_ms, std::string& line) {
  bool err_open = true;
  for (;;) {
    size_t nl = out_buf_.find('\n');
    if (nl != std::string::npos) {
      line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return Read::Line;
    }
    if (out_buf_.size() > kMaxLine) return Read::TooLong;
    const double left = deadline_ms - now_ms();
    if (left <= 0) return Read::Timeout;
    pollfd fds[2] = {{child_.stdout_fd(), POLLIN, 0}, {err_open ? child_.stderr_fd() : -1, POLLIN, 0}};
    int ready = ::poll(fds, 2, std::max(1, static_cast<int>(left + 0.999)));
    if (ready < 0 && errno != EINTR) return Read::Closed;
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char chunk[8192];
      ssize_t n = ::read(child_.stderr_fd(), chunk, sizeof chunk);
      if (n > 0) {
        err_buf_.append(chunk, static_cast<size_t>(n));
        pump_stderr(false);
      } else if (n == 0) {
        err_open = false;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char chunk[65536];
      ssize_t n = ::read(child_.stdout_fd(), chunk, sizeof chunk);
      if (n > 0) out_buf_.append(chunk, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR) return Read::Closed;
    }
  }
}

void Link::pump_stderr(bool final_flush) {
  const int fd = child_.stderr_fd();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (fd < 0 || ::poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP))) break;
    char chunk[8192];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    err_buf_.append(chunk, static_cast<size_t>(n));
  }
  size_t nl;
  while ((nl = err_buf_.find('\n')) != std::string::npos) {
    forward(err_buf_.substr(0, nl));
    err_buf_.erase(0, nl + 1);
  }
  if (final_flush && !err_buf_.empty()) {
    forward(err_buf_);
    err_buf_.clear();
  }
}

void Link::forward(const std::string& raw) {
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.find_first_not_of(" \t") == std::string::npos) return;
  if (line.size() > kMaxNote) line = line.substr(0, kMaxNote) + "...";
  line = scrub(line, s_.secret_texts);
  last_err_line_ = line;
  if (s_.note) s_.note("plugin " + s_.instance + ": " + line);
}

std::string Link::death_notice(const std::string& during) {
  // Its stdout closed: give it a moment to finish exiting, so the exit status is known.
  for (int i = 0; i < 50 && !child_.exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  pump_stderr(true);
  std::string how;
  if (!child_.exited()) how = "closed its output";
  else if (child_.killed_by_signal()) how = "was killed by signal " + std::to_string(child_.exit_code() - 128);
  else how = "exited with code " + std::to_string(child_.exit_code());
  std::string text = who_ + ": " + how + " during " + during;
  if (!last_err_line_.empty()) text += " (its last words: " + last_err_line_ + ")";
  kill_now();
  return text;
}

void Link::kill_now() {
  pump_stderr(true);
  child_.stop(500);
  child_ = proc::Child();
  running_ = false;
  out_buf_.clear();
  err_buf_.clear();
}

std::optional<json> Link::exchange(json request, double timeout_ms, std::string& error) {
  if (!running_) {
    error = who_ + ": not running";
    return std::nullopt;
  }
  pump_stderr(false);
  const long long id = next_id_++;
  request["id"] = id;
  const std::string type = request.value("type", "call");
  const std::string what = (type == "call" ? "" : type + " ") + request.value("op", std::string("?"));
  const double deadline = now_ms() + timeout_ms + kAnswerGraceMs;
  std::string why;
  if (!write_line(request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", deadline, why)) {
    error = child_.exited() ? death_notice(what) : who_ + ": cannot send " + what + ": " + why;
    kill_now();
    return std::nullopt;
  }
  for (;;) {
    std::string line;
    switch (read_line(deadline, line)) {
      case Read::Line: break;
      case Read::Timeout:
        error = who_ + ": did not answer " + what + " within " + format_duration(timeout_ms) + "; stopped it (it starts again on the next call)";
        kill_now();
        return std::nullopt;
      case Read::Closed: error = death_notice(what) + "; it starts again on the next call"; return std::nullopt;
      case Read::TooLong:
        error = who_ + ": answered " + what + " with a line longer than 64 MiB; stopped it";
        kill_now();
        return std::nullopt;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // a blank line says nothing
    json answer = json::parse(line, nullptr, false);
    if (answer.is_discarded() || !answer.is_object()) {
      error = who_ + ": wrote something that is not a protocol message while answering " + what + ": " +
              excerpt(scrub(line, s_.secret_texts)) + "; stopped it (it starts again on the next call)";
      kill_now();
      return std::nullopt;
    }
    if (!answer.contains("id") || answer["id"] != id) {
      error = who_ + ": answered request id " + (answer.contains("id") ? answer["id"].dump() : "(none)") + " while request " +
              std::to_string(id) + " (" + what + ") was waiting; stopped it (it starts again on the next call)";
      kill_now();
      return std::nullopt;
    }
    return answer;
  }
}

void Link::stop() {
  if (!running_) return;
  child_.close_stdin();
  // End of input asks the plugin to exit; drain what it still says while it does.
  const double deadline = now_ms() + s_.stop_grace_ms;
  while (!child_.exited() && now_ms() < deadline) {
    pollfd fds[2] = {{child_.stdout_fd(), POLLIN, 0}, {child_.stderr_fd(), POLLIN, 0}};
    ::poll(fds, 2, 20);
    if (fds[0].revents) {
      char chunk[8192];
      if (::read(child_.stdout_fd(), chunk, sizeof chunk) <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (fds[1].revents) pump_stderr(false);
  }
  kill_now();
}

}  // namespace gray::plugins::external
