#include "plugins/haproxy/runtime_api.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace gray::plugins::haproxy {

namespace {

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

int remaining(double deadline_ms) {
  double left = deadline_ms - now_ms();
  return left <= 0 ? 0 : static_cast<int>(left) + 1;
}

// Waits for `events` on fd until the deadline. False on timeout.
bool wait_for(int fd, short events, double deadline_ms) {
  for (;;) {
    pollfd p{fd, events, 0};
    int left = remaining(deadline_ms);
    if (left == 0) return false;
    int n = ::poll(&p, 1, left);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let the following call report the error
  }
}

// Connects a non-blocking socket, waiting at most until the deadline.
bool connect_with_deadline(int fd, const sockaddr* addr, socklen_t len, double deadline_ms, std::string& error) {
  if (::connect(fd, addr, len) == 0) return true;
  if (errno != EINPROGRESS && errno != EAGAIN) {
    error = std::strerror(errno);
    return false;
  }
  if (!wait_for(fd, POLLOUT, deadline_ms)) {
    error = "timed out connecting";
    return false;
  }
  int err = 0;
  socklen_t l = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
  if (err != 0) {
    error = std::strerror(err);
    return false;
  }
  return true;
}

const std::string kPrompt = "\n> ";

}  // namespace

RuntimeApi::RuntimeApi(std::string socket_path, std::string address)
    : socket_path_(std::move(socket_path)), address_(std::move(address)) {}

RuntimeApi::~RuntimeApi() { close(); }

std::string RuntimeApi::where() const { return "haproxy at " + (socket_path_.empty() ? address_ : socket_path_); }

std::string RuntimeApi::escape(const std::string& arg) {
  std::string out;
  for (char c : arg) {
    if (c == '\\' || c == ' ' || c == ';' || c == '\t') out += '\\';
    out += c;
  }
  return out;
}

void RuntimeApi::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RuntimeApi::open(double deadline_ms, std::string& error) {
  close();
  int fd = -1;
  if (!socket_path_.empty()) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof sa.sun_path) {
      error = "the socket path is too long for a unix socket";
      return false;
    }
    std::memcpy(sa.sun_path, socket_path_.c_str(), socket_path_.size());
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || !connect_with_deadline(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa, deadline_ms, error)) {
      if (fd < 0) error = std::strerror(errno);
      if (fd >= 0) ::close(fd);
      error = "cannot connect: " + error;
      return false;
    }
  } else {
    size_t colon = address_.rfind(':');
    if (colon == std::string::npos || colon + 1 == address_.size()) {
      error = "address must be host:port";
      return false;
    }
    std::string host = address_.substr(0, colon), port = address_.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
      return false;
    }
    error = "no address";
    for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd >= 0 && !connect_with_deadline(fd, a->ai_addr, a->ai_addrlen, deadline_ms, error)) {
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(res);
    if (fd < 0) {
      error = "cannot connect: " + error;
      return false;
    }
  }
  fd_ = fd;
  // Interactive mode: the connection stays open and every answer ends with a prompt.
  std::string answer;
  bool got_any = false;
  if (!send_all("prompt\n", deadline_ms, error) || !read_answer(deadline_ms, answer, got_any, error)) {
    close();
    error = "the runtime API did not answer 'prompt': " + error;
    return false;
  }
  return true;
}

bool RuntimeApi::closed_by_peer() const {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR)) return true;
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

bool RuntimeApi::send_all(const std::string& data, double deadline_ms, std::string& error) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!wait_for(fd_, POLLOUT, deadline_ms)) {
        error = "timed out sending";
        return false;
      }
      continue;
    }
    error = std::strerror(errno);
    return false;
  }
  return true;
}

bool RuntimeApi::read_answer(double deadline_ms, std::string& out, bool& got_any, std::string& error) {
  out.clear();
  char buf[16384];
  for (;;) {
    if (out.size() >= kPrompt.size() && out.compare(out.size() - kPrompt.size(), kPrompt.size(), kPrompt) == 0) {
      out.resize(out.size() - kPrompt.size());
      while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
      return true;
    }
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      got_any = true;
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      error = "the connection was closed before the answer ended";
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (!wait_for(fd_, POLLIN, deadline_ms)) {
        error = "timed out waiting for the answer";
        return false;
      }
      continue;
    }
    error = std::strerror(errno);
    return false;
  }
}

RuntimeApi::Attempt RuntimeApi::attempt(const std::string& line, double deadline_ms, Reply& reply) {
  std::string error;
  if (!send_all(line, deadline_ms, error)) {
    reply.error = "sending the command failed: " + error;
    close();
    // A command line HAProxy did not receive whole is not executed: it may be sent again.
    return error == "timed out sending" ? Attempt::NoAnswer : Attempt::NotSent;
  }
  bool got_any = false;
  if (!read_answer(deadline_ms, reply.text, got_any, error)) {
    reply.error = error;
    close();
    return got_any ? Attempt::Done : Attempt::NoAnswer;
  }
  reply.delivered = true;
  return Attempt::Done;
}

RuntimeApi::Reply RuntimeApi::run(const std::string& command, bool repeatable, double timeout_ms) {
  const double deadline = now_ms() + timeout_ms;
  Reply reply;
  bool fresh = false;
  if (fd_ >= 0 && closed_by_peer()) close();
  if (fd_ < 0) {
    if (!open(deadline, reply.error)) return reply;
    fresh = true;
  }
  const std::string line = command + "\n";
  Attempt a = attempt(line, deadline, reply);
  if (a == Attempt::Done || fresh || remaining(deadline) == 0) return reply;
  // The connection was stale (closed between the check and the command). Send again only
  // when the first attempt cannot have been applied, or applying it twice is harmless.
  if (a == Attempt::NoAnswer && !repeatable) {
    reply.error += " (not sent again: the command may have been applied)";
    return reply;
  }
  reply = Reply{};
  if (!open(deadline, reply.error)) return reply;
  attempt(line, deadline, reply);
  return reply;
}

}  // namespace gray::plugins::haproxy
