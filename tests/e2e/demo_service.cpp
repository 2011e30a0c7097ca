// gray_demo_service: the service the end-to-end tests release. An HTTP/1.1 server (keep-alive,
// pipelining) on epoll worker threads that answers
//   GET /health          200 {"status":"ok",...}; 503 once a stop has begun
//   GET / and /api/...   200 JSON naming the service and version; 500 for --fail-rate of them
//   GET /metrics         Prometheus text: http_requests_total{service,version,code},
//                        http_request_duration_seconds (histogram), demo_build_info
// and stops without losing a request on SIGTERM (see the drain sequence at `drain_and_stop`).
//
//   gray_demo_service --port 8081 --version v2 [--service demo] [--fail-rate 0.05]
//                     [--threads 2] [--lame-duck 0] [--idle-grace 1000] [--drain-timeout 10000]
//                     [--pid-file PATH] [--host 127.0.0.1]

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// ---- options ----

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string version = "v1";
  std::string service = "demo";
  double fail_rate = 0;         // share of application requests answered 500
  int threads = 2;
  int lame_duck_ms = 0;         // after SIGTERM, keep serving (health 503) this long before draining
  int idle_grace_ms = 1000;     // while draining, how long an idle keep-alive connection may still send
  int drain_timeout_ms = 10000; // hard limit for the whole drain
  int idle_timeout_ms = 120000; // idle keep-alive connections are closed after this (normal operation)
  std::string pid_file;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr,
               "gray_demo_service: %s\n"
               "usage: gray_demo_service --port N [--version V] [--service NAME] [--fail-rate R]\n"
               "       [--threads N] [--lame-duck MS] [--idle-grace MS] [--drain-timeout MS]\n"
               "       [--pid-file PATH] [--host ADDR]\n",
               message.c_str());
  std::exit(2);
}

long parse_int(const std::string& flag, const std::string& text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    usage_error(flag + " takes a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not '" + text + "'");
  return v;
}

// "0.05" and "5%" both mean five requests in a hundred.
double parse_rate(const std::string& text) {
  std::string digits = text;
  double scale = 1;
  if (!digits.empty() && digits.back() == '%') {
    digits.pop_back();
    scale = 100;
  }
  char* end = nullptr;
  double v = std::strtod(digits.c_str(), &end);
  if (digits.empty() || *end != '\0' || !std::isfinite(v)) usage_error("--fail-rate takes a share such as 0.05 or 5%, not '" + text + "'");
  v /= scale;
  if (v < 0 || v > 1) usage_error("--fail-rate must lie between 0 and 1 (0% and 100%), not '" + text + "'");
  return v;
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool have_port = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage_error("serves a demo HTTP service for gray's end-to-end tests");
    if (i + 1 >= argc) usage_error(flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--port") {
      o.port = static_cast<int>(parse_int(flag, value, 1, 65535));
      have_port = true;
    } else if (flag == "--host") {
      o.host = value;
    } else if (flag == "--version") {
      o.version = value;
    } else if (flag == "--service") {
      o.service = value;
    } else if (flag == "--fail-rate") {
      o.fail_rate = parse_rate(value);
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(parse_int(flag, value, 1, 64));
    } else if (flag == "--lame-duck") {
      o.lame_duck_ms = static_cast<int>(parse_int(flag, value, 0, 600000));
    } else if (flag == "--idle-grace") {
      o.idle_grace_ms = static_cast<int>(parse_int(flag, value, 0, 600000));
    } else if (flag == "--drain-timeout") {
      o.drain_timeout_ms = static_cast<int>(parse_int(flag, value, 1, 600000));
    } else if (flag == "--idle-timeout") {
      o.idle_timeout_ms = static_cast<int>(parse_int(flag, value, 1, 3600000));
    } else if (flag == "--pid-file") {
      o.pid_file = value;
    } else {
      usage_error("unknown option '" + flag + "'");
    }
  }
  if (!have_port) usage_error("--port is required");
  if (o.version.empty() || o.service.empty()) usage_error("--version and --service must not be empty");
  return o;
}

// ---- metrics ----

// Label values go into the exposition format and into JSON: escape what either would choke on.
std::string escape_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

constexpr std::array<int, 9> kCodes = {200, 400, 404, 405, 413, 431, 500, 501, 503};
constexpr std::array<double, 14> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                            0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

// Counters shared by the worker threads; relaxed atomics are enough for monotonic counts.
struct Metrics {
  std::array<std::atomic<std::uint64_t>, kCodes.size()> by_code{};
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets{};  // per bucket, not cumulative
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sum_ns{0};
  std::atomic<std::int64_t> open_connections{0};

  void record(int code, std::chrono::nanoseconds took) {
    for (std::size_t i = 0; i < kCodes.size(); ++i)
      if (kCodes[i] == code) by_code[i].fetch_add(1, std::memory_order_relaxed);
    double seconds = std::chrono::duration<double>(took).count();
    std::size_t b = 0;
    while (b < kBounds.size() && seconds > kBounds[b]) ++b;
    buckets[b].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
  }

  std::string exposition(const Options& o) const {
    std::string labels = "service=\"" + escape_label(o.service) + "\",version=\"" + escape_label(o.version) + "\"";
    std::string out;
    out += "# HELP http_requests_total Application requests answered, by status code (health checks and scrapes not counted).\n";
    out += "# TYPE http_requests_total counter\n";
    for (std::size_t i = 0; i < kCodes.size(); ++i) {
      std::uint64_t n = by_code[i].load(std::memory_order_relaxed);
      // 200 and 500 always exist, so rate() over them is defined from the first scrape on.
      if (n == 0 && kCodes[i] != 200 && kCodes[i] != 500) continue;
      out += "http_requests_total{" + labels + ",code=\"" + std::to_string(kCodes[i]) + "\"} " + std::to_string(n) + "\n";
    }
    out += "# HELP http_request_duration_seconds Time from a request's arrival to its answer being written.\n";
    out += "# TYPE http_request_duration_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kBounds.size(); ++b) {
      cumulative += buckets[b].load(std::memory_order_relaxed);
      char le[32];
      std::snprintf(le, sizeof le, "%g", kBounds[b]);
      out += "http_request_duration_seconds_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    cumulative += buckets[kBounds.size()].load(std::memory_order_relaxed);
    out += "http_request_duration_seconds_bucket{" + labels + ",le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    char sum[64];
    std::snprintf(sum, sizeof sum, "%.9f", static_cast<double>(sum_ns.load(std::memory_order_relaxed)) / 1e9);
    out += "http_request_duration_seconds_sum{" + labels + "} " + sum + "\n";
    out += "http_request_duration_seconds_count{" + labels + "} " + std::to_string(cumulative) + "\n";
    out += "# HELP demo_build_info The running build.\n# TYPE demo_build_info gauge\n";
    out += "demo_build_info{" + labels + "} 1\n";
    out += "# HELP demo_open_connections Client connections open now.\n# TYPE demo_open_connections gauge\n";
    out += "demo_open_connections{" + labels + "} " + std::to_string(open_connections.load(std::memory_order_relaxed)) + "\n";
    return out;
  }
};

// ---- shared state ----

// The life of the process: serving, then (optionally) lame duck, then draining.
enum class Phase : int { Serving = 0, LameDuck = 1, Draining = 2 };

struct Shared {
  Options opt;
  Metrics metrics;
  std::atomic<int> phase{static_cast<int>(Phase::Serving)};
  int listen_fd = -1;
  std::mutex mu;
  std::condition_variable cv;
  int detached_workers = 0;  // workers that stopped polling the listening socket
};

Phase phase_of(const Shared& s) { return static_cast<Phase>(s.phase.load(std::memory_order_acquire)); }

// ---- HTTP ----

struct Request {
  std::string method;
  std::string target;
  bool keep_alive = true;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  bool counted = true;  // application traffic (not health checks, not scrapes)
};

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the comma-separated header value holds `token` (Connection: keep-alive, Upgrade).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

constexpr std::size_t kMaxHead = 16 * 1024;
constexpr std::size_t kMaxBody = 1024 * 1024;

// Outcome of looking at the bytes received so far.
struct Parsed {
  enum Kind { Incomplete, Complete, Bad } kind = Incomplete;
  Request request;
  std::size_t consumed = 0;  // bytes of this request (head and body)
  int error_status = 400;
  std::string error;
};

Parsed parse_request(std::string_view in) {
  Parsed p;
  std::size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (in.size() > kMaxHead) {
      p.kind = Parsed::Bad;
      p.error_status = 431;
      p.error = "request head larger than 16 KiB";
    }
    return p;
  }
  auto bad = [&](std::string why, int status = 400) {
    p.kind = Parsed::Bad;
    p.error_status = status;
    p.error = std::move(why);
    return p;
  };
  std::string_view head = in.substr(0, head_end);
  std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1)
    return bad("malformed request line");
  p.request.method = std::string(line.substr(0, sp1));
  p.request.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view proto = line.substr(sp2 + 1);
  bool http11 = proto == "HTTP/1.1";
  if (!http11 && proto != "HTTP/1.0") return bad("unsupported protocol '" + std::string(proto) + "'");
  p.request.keep_alive = http11;

  std::size_t content_length = 0;
  std::string_view rest = line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
  while (!rest.empty()) {
    std::size_t eol = rest.find("\r\n");
    std::string_view field = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
    std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad("malformed header line");
    std::string_view name = field.substr(0, colon);
    std::string_view value = trim(field.substr(colon + 1));
    if (iequals(name, "content-length")) {
      if (value.empty() || value.size() > 9 || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return bad("bad Content-Length");
      content_length = std::stoul(std::string(value));
      if (content_length > kMaxBody) return bad("request body larger than 1 MiB", 413);
    } else if (iequals(name, "transfer-encoding")) {
      return bad("chunked request bodies are not supported", 501);
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) p.request.keep_alive = false;
      if (has_token(value, "keep-alive")) p.request.keep_alive = true;
    }
  }
  std::size_t total = head_end + 4 + content_length;
  if (in.size() < total) return p;  // the body has not all arrived yet
  p.kind = Parsed::Complete;
  p.consumed = total;
  return p;
}

// ---- the application ----

class Responder {
 public:
  explicit Responder(Shared& shared) : shared_(shared), rng_(std::random_device{}()) {}

  Response answer(const Request& req) {
    const Options& o = shared_.opt;
    std::string path = req.target.substr(0, req.target.find('?'));
    if (req.method != "GET" && req.method != "HEAD") return {405, R"({"error":"only GET and HEAD"})"};
    if (path == "/health") {
      bool stopping = phase_of(shared_) != Phase::Serving;
      Response r{stopping ? 503 : 200, std::string("{\"status\":") + (stopping ? "\"stopping\"" : "\"ok\"") +
                                           ",\"service\":" + json_string(o.service) + ",\"version\":" + json_string(o.version) + "}"};
      r.counted = false;
      return r;
    }
    if (path == "/metrics") {
      Response r{200, shared_.metrics.exposition(o), "text/plain; version=0.0.4"};
      r.counted = false;
      return r;
    }
    if (path == "/" || path == "/api" || path.rfind("/api/", 0) == 0) {
      if (o.fail_rate > 0 && unit_(rng_) < o.fail_rate)
        return {500, "{\"error\":\"injected failure\",\"service\":" + json_string(o.service) + ",\"version\":" + json_string(o.version) + "}"};
      return {200, "{\"service\":" + json_string(o.service) + ",\"version\":" + json_string(o.version) + ",\"path\":" + json_string(path) +
                       ",\"items\":[]}"};
    }
    return {404, "{\"error\":\"no such path\",\"path\":" + json_string(path) + "}"};
  }

 private:
  Shared& shared_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
};

std::string render(const Request* req, const Response& r, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (r.status == 405) out += "Allow: GET, HEAD\r\n";
  out += close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  if (!req || req->method != "HEAD") out += r.body;
  return out;
}

// ---- connections and workers ----

struct Connection {
  int fd = -1;
  std::string in;
  std::string out;
  std::size_t out_sent = 0;
  bool close_after_write = false;  // the last answer said Connection: close
  bool watching_write = false;
  Clock::time_point last_active = Clock::now();
  std::optional<Clock::time_point> drain_deadline;  // set when draining caught it idle
};

class Worker {
 public:
  explicit Worker(Shared& shared) : shared_(shared), responder_(shared) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd_ < 0 || wake_fd_ < 0) throw std::runtime_error(std::string("epoll/eventfd: ") + std::strerror(errno));
    watch(wake_fd_, EPOLLIN, EPOLL_CTL_ADD);
    // EPOLLEXCLUSIVE: one worker wakes per new connection, not all of them.
    watch(shared_.listen_fd, EPOLLIN | EPOLLEXCLUSIVE, EPOLL_CTL_ADD);
  }
  ~Worker() {
    for (auto& [fd, c] : conns_) ::close(fd);
    ::close(wake_fd_);
    ::close(epfd_);
  }

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

  // Connections accepted by the main thread during the last sweep of the listening socket.
  void adopt(int fd) {
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      inbox_.push_back(fd);
    }
    wake();
  }

  void run() {
    std::array<epoll_event, 128> events{};
    while (true) {
      int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), poll_timeout_ms());
      if (n < 0 && errno != EINTR) {
        std::fprintf(stderr, "gray_demo_service: epoll_wait: %s\n", std::strerror(errno));
        return;
      }
      for (int i = 0; i < std::max(n, 0); ++i) handle(events[static_cast<std::size_t>(i)]);
      if (phase_of(shared_) == Phase::Draining) {
        if (!detached_) detach();
        take_inbox();
        expire_drained();
        if (conns_.empty() && inbox_empty()) return;
        if (Clock::now() >= hard_deadline_) {
          std::fprintf(stderr, "gray_demo_service: drain timeout: closing %zu connection(s) still open\n", conns_.size());
          return;
        }
      } else {
        expire_idle();
      }
    }
  }

 private:
  void watch(int fd, std::uint32_t what, int op) {
    epoll_event ev{};
    ev.events = what;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL)
      std::fprintf(stderr, "gray_demo_service: epoll_ctl: %s\n", std::strerror(errno));
  }

  int poll_timeout_ms() const { return phase_of(shared_) == Phase::Draining ? 20 : 1000; }

  void handle(const epoll_event& ev) {
    int fd = ev.data.fd;
    if (fd == wake_fd_) {
      std::uint64_t v;
      while (::read(wake_fd_, &v, sizeof v) > 0) {
      }
      return;
    }
    if (fd == shared_.listen_fd) {
      accept_some();
      return;
    }
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Connection& c = *it->second;
    if (ev.events & EPOLLIN) read_from(c);
    if (conns_.count(fd) && (ev.events & EPOLLOUT)) flush(c);
    if (conns_.count(fd) && (ev.events & (EPOLLERR | EPOLLHUP)) && c.out.size() == c.out_sent) close_conn(fd);
  }

  void accept_some() {
    if (detached_) return;
    for (int i = 0; i < 64; ++i) {
      int fd = accept4(shared_.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
          std::fprintf(stderr, "gray_demo_service: accept: %s\n", std::strerror(errno));
        return;
      }
      add_conn(fd);
    }
  }

  void add_conn(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    if (phase_of(shared_) == Phase::Draining) c->drain_deadline = Clock::now() + std::chrono::milliseconds(shared_.opt.idle_grace_ms);
    conns_.emplace(fd, std::move(c));
    shared_.metrics.open_connections.fetch_add(1, std::memory_order_relaxed);
    watch(fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
  }

  void close_conn(int fd) {
    watch(fd, 0, EPOLL_CTL_DEL);
    ::close(fd);
    conns_.erase(fd);
    shared_.metrics.open_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  void read_from(Connection& c) {
    char buf[16384];
    bool peer_closed = false;
    while (true) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf) break;
        continue;
      }
      if (n == 0) peer_closed = true;
      else if (errno == EINTR) continue;
      else if (errno != EAGAIN && errno != EWOULDBLOCK) peer_closed = true;
      break;
    }
    c.last_active = Clock::now();
    int fd = c.fd;
    serve_buffered(c);  // may close and free the connection
    if (!conns_.count(fd)) return;
    // The peer closed its side: answer what it sent, then go (HTTP has no half-close).
    if (peer_closed && c.out.size() == c.out_sent) close_conn(fd);
    else if (peer_closed) c.close_after_write = true;
  }

  // Answers every complete request in the buffer (pipelining), in order.
  void serve_buffered(Connection& c) {
    auto started = Clock::now();
    while (!c.close_after_write) {
      Parsed p = parse_request(c.in);
      if (p.kind == Parsed::Incomplete) break;
      if (p.kind == Parsed::Bad) {
        Response r{p.error_status, "{\"error\":" + json_string(p.error) + "}"};
        c.out += render(nullptr, r, true);
        c.close_after_write = true;
        c.in.clear();
        shared_.metrics.record(r.status, Clock::now() - started);
        break;
      }
      Response r = responder_.answer(p.request);
      // Once a stop has begun, every answer closes its connection: the client (a proxy) opens
      // its next connection elsewhere instead of finding this one closed under it.
      bool close = !p.request.keep_alive || phase_of(shared_) != Phase::Serving;
      c.out += render(&p.request, r, close);
      c.in.erase(0, p.consumed);
      if (close) c.close_after_write = true;
      if (r.counted) shared_.metrics.record(r.status, Clock::now() - started);
    }
    flush(c);
  }

  void flush(Connection& c) {
    while (c.out_sent < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!c.watching_write) {
          watch(c.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, EPOLL_CTL_MOD);
          c.watching_write = true;
        }
        return;
      }
      close_conn(c.fd);  // the peer is gone
      return;
    }
    c.out.clear();
    c.out_sent = 0;
    if (c.watching_write) {
      watch(c.fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
      c.watching_write = false;
    }
    if (c.close_after_write) finish(c.fd);
  }

  // Closes after the last answer: shut down our side first so the answer is delivered before
  // the peer sees the close, then close.
  void finish(int fd) {
    ::shutdown(fd, SHUT_WR);
    close_conn(fd);
  }

  void detach() {
    watch(shared_.listen_fd, 0, EPOLL_CTL_DEL);
    detached_ = true;
    hard_deadline_ = Clock::now() + std::chrono::milliseconds(shared_.opt.drain_timeout_ms);
    auto grace = Clock::now() + std::chrono::milliseconds(shared_.opt.idle_grace_ms);
    for (auto& [fd, c] : conns_) {
      // Mid-request or mid-answer connections get Connection: close on that answer; an idle
      // keep-alive connection may still carry one request (already on its way, perhaps).
      if (c->in.empty() && c->out.size() == c->out_sent) c->drain_deadline = grace;
    }
    {
      std::lock_guard<std::mutex> lock(shared_.mu);
      ++shared_.detached_workers;
    }
    shared_.cv.notify_all();
  }

  void take_inbox() {
    std::vector<int> fds;
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      fds.swap(inbox_);
    }
    for (int fd : fds) add_conn(fd);
  }

  bool inbox_empty() {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    return inbox_.empty();
  }

  // While draining: idle connections whose grace ran out are closed (nothing was sent on them).
  void expire_drained() {
    auto now = Clock::now();
    std::vector<int> expired;
    for (auto& [fd, c] : conns_)
      if (c->drain_deadline && now >= *c->drain_deadline && c->in.empty() && c->out.size() == c->out_sent) expired.push_back(fd);
    for (int fd : expired) close_conn(fd);
  }

  void expire_idle() {
    auto limit = Clock::now() - std::chrono::milliseconds(shared_.opt.idle_timeout_ms);
    std::vector<int> expired;
    for (auto& [fd, c] : conns_)
      if (c->last_active < limit && c->in.empty() && c->out.size() == c->out_sent) expired.push_back(fd);
    for (int fd : expired) close_conn(fd);
  }

  Shared& shared_;
  Responder responder_;
  int epfd_ = -1;
  int wake_fd_ = -1;
  bool detached_ = false;
  Clock::time_point hard_deadline_ = Clock::time_point::max();
  std::unordered_map<int, std::unique_ptr<Connection>> conns_;
  std::mutex inbox_mu_;
  std::vector<int> inbox_;
};

int open_listener(const Options& o) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) throw std::runtime_error("--host must be an IPv4 address, not '" + o.host + "'");
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + std::strerror(errno));
  if (listen(fd, 1024) < 0) throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
  return fd;
}

// The zero-loss stop, after SIGTERM (or SIGINT):
//  1. lame duck (--lame-duck MS, optional): everything is still served, but /health answers 503
//     and every answer says Connection: close, so health-checking proxies take the server out
//     and pooled connections move elsewhere while nothing is refused yet;
//  2. the workers stop polling the listening socket; the main thread then accepts whatever the
//     kernel already completed in the backlog (those clients did connect: they are served) and
//     only then closes the socket, so new connections are refused (a proxy retries a refused
//     connect on another server) instead of being accepted and reset;
//  3. requests in flight are answered with Connection: close; an idle keep-alive connection may
//     bring one more request within --idle-grace, answered the same way, and is closed after
//     that; a proxy that finds a pooled connection closed under a new request retries it
//     (HAProxy: retry-on conn-failure empty-response with option redispatch; nginx:
//     proxy_next_upstream error);
//  4. the process exits once no connection is left (or after --drain-timeout).
void drain_and_stop(Shared& shared, std::vector<std::unique_ptr<Worker>>& workers) {
  const Options& o = shared.opt;
  if (o.lame_duck_ms > 0) {
    shared.phase.store(static_cast<int>(Phase::LameDuck), std::memory_order_release);
    std::fprintf(stderr, "gray_demo_service: %s %s: lame duck for %d ms\n", o.service.c_str(), o.version.c_str(), o.lame_duck_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(o.lame_duck_ms));
  }
  shared.phase.store(static_cast<int>(Phase::Draining), std::memory_order_release);
  for (auto& w : workers) w->wake();
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.cv.wait(lock, [&] { return shared.detached_workers == static_cast<int>(workers.size()); });
  }
  std::size_t next = 0, swept = 0;
  while (true) {
    int fd = accept4(shared.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    workers[next++ % workers.size()]->adopt(fd);
    ++swept;
  }
  ::close(shared.listen_fd);
  std::fprintf(stderr, "gray_demo_service: %s %s: draining (listener closed, %zu connection(s) taken from the backlog)\n",
               o.service.c_str(), o.version.c_str(), swept);
}

void write_pid_file(const std::string& path) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << getpid() << "\n";
    if (!f) throw std::runtime_error("cannot write the pid file " + path);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot write the pid file " + path + ": " + std::strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
  Shared shared;
  shared.opt = parse_options(argc, argv);
  const Options& o = shared.opt;

  // Signals are taken by the main thread only (sigwait); workers never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  try {
    shared.listen_fd = open_listener(o);
    for (int i = 0; i < o.threads; ++i) workers.push_back(std::make_unique<Worker>(shared));
    if (!o.pid_file.empty()) write_pid_file(o.pid_file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gray_demo_service: %s\n", e.what());
    return 1;
  }
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  std::fprintf(stderr, "gray_demo_service: %s %s listening on %s:%d (%d threads, fail rate %g)\n", o.service.c_str(), o.version.c_str(),
               o.host.c_str(), o.port, o.threads, o.fail_rate);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  auto stop_began = Clock::now();
  drain_and_stop(shared, workers);
  for (auto& t : threads) t.join();
  if (!o.pid_file.empty()) std::remove(o.pid_file.c_str());
  long long drain_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stop_began).count();
  std::fprintf(stderr, "gray_demo_service: %s %s stopped after %llu answered request(s); the stop took %lld ms\n", o.service.c_str(),
               o.version.c_str(), static_cast<unsigned long long>(shared.metrics.count.load()), drain_ms);
  return 0;
}
