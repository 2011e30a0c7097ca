// HTTP and TCP probes that gray makes itself (`probe http ...`, `probe tcp ...`). A probe reports
// what it saw: no retries here, the pipeline's `attempts` and `every` decide whether to ask again.
// The result has the shape the simulated world's probes have (plugins/sim/world_probe.cpp): for
// http a map {status, body}, Ok for 2xx and Failed "HTTP <status>" otherwise; for tcp true, or
// Failed when the connection is refused.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "plugins/driver.h"
#include "plugins/http/http.h"

namespace gray::plugins {

namespace {

using Clock = std::chrono::steady_clock;

// Bodies larger than this are cut: a probe looks for a status and a marker string, and the
// result is journaled.
constexpr size_t kMaxBody = 64 * 1024;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Headers whose values are credentials: kept out of messages even when a server echoes them.
bool credential_header(const std::string& lower_name) {
  return lower_name == "authorization" || lower_name == "proxy-authorization" || lower_name == "cookie" ||
         lower_name.find("token") != std::string::npos || lower_name.find("key") != std::string::npos ||
         lower_name.find("secret") != std::string::npos || lower_name.find("password") != std::string::npos;
}

// libcurl says "Operation timed out after ..." for the whole exchange and "Timeout was reached"
// for the connect phase.
bool timed_out(const std::string& error) {
  std::string e = lower(error);
  return e.find("timed out") != std::string::npos || e.find("timeout") != std::string::npos;
}

Result with_elapsed(Result r, double ms) {
  r.elapsed_ms = ms;
  return r;
}

class RealProber : public Prober {
 public:
  explicit RealProber(const DriverEnv& env) : sleep_(env.sleep) {}

  Result http(const std::string& url, const std::vector<std::string>& headers, double timeout_ms) override {
    const std::string shown = http::display_url(url);
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      return error_result("bad URL \"" + shown + "\": a probe URL starts with http:// or https://");
    http::Request req;
    req.url = url;
    req.timeout_ms = std::max(1.0, timeout_ms);
    req.connect_timeout_ms = req.timeout_ms;
    req.retries = 0;
    for (const std::string& h : headers) {
      size_t colon = h.find(':');
      std::string name = colon == std::string::npos ? "" : trim(h.substr(0, colon));
      // The text may be a credential: it is not repeated in the message.
      if (name.empty()) return error_result("GET " + shown + ": a header is not written as \"Name: value\"");
      std::string value = trim(h.substr(colon + 1));
      req.headers.push_back({name, value});
      if (credential_header(lower(name))) {
        req.secrets.push_back(value);
        // "Bearer abc", "Basic dXNlcjpwdw==": a server may echo the credential alone.
        if (size_t sp = value.find(' '); sp != std::string::npos) req.secrets.push_back(trim(value.substr(sp + 1)));
      }
    }

    http::Client client(sleep_);  // one per probe: probes may run on several threads at once
    http::Response resp = client.send(req);
    if (!resp.transport_ok()) {
      std::string what =
          timed_out(resp.error) ? "timed out after " + format_duration(timeout_ms) + " (" + resp.error + ")" : resp.error;
      return with_elapsed(error_result("GET " + shown + ": " + what), resp.elapsed_ms);
    }
    std::string body = resp.body.size() > kMaxBody ? resp.body.substr(0, kMaxBody) : resp.body;
    Result r =
        ok_result(Value::of_map({{"status", Value::number(static_cast<double>(resp.status))}, {"body", Value::string(body)}}));
    if (resp.status < 200 || resp.status > 299) {
      r.status = Result::Status::Failed;
      r.message = "HTTP " + std::to_string(resp.status) + snippet(body, req.secrets);
    }
    return with_elapsed(std::move(r), resp.elapsed_ms);
  }

  Result tcp(const std::string& address, double timeout_ms) override {
    auto t0 = Clock::now();
    std::string host, port;
    if (!split_address(address, host, port))
      return error_result("connect " + address + ": not an address; write host:port (or [v6-address]:port)");
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    // Name resolution is not bounded by the timeout (the resolver has its own); addresses are quick.
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
      return with_elapsed(error_result("connect " + address + ": could not resolve " + host + ": " + ::gai_strerror(rc)),
                          ms_since(t0));

    std::vector<int> errors;
    for (addrinfo* a = found; a; a = a->ai_next) {
      double left = timeout_ms - ms_since(t0);
      if (left <= 0) {
        errors.push_back(ETIMEDOUT);
        break;
      }
      int err = connect_one(*a, left);
      if (err == 0) {
        ::freeaddrinfo(found);
        return with_elapsed(ok_result(Value::boolean(true)), ms_since(t0));
      }
      errors.push_back(err);
    }
    ::freeaddrinfo(found);
    return with_elapsed(refusal(address, errors, timeout_ms), ms_since(t0));
  }

 private:
  // ": <first bytes of the body>", on one line, credentials replaced.
  static std::string snippet(const std::string& body, const std::vector<std::string>& secrets) {
    std::string text = body.substr(0, 120);
    for (char& c : text)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    text = trim(http::redact(text, secrets));
    if (text.empty()) return "";
    return ": " + text + (body.size() > 120 ? "..." : "");
  }

  // "host:port", "[::1]:port". The port may be a number or a service name.
  static bool split_address(const std::string& address, std::string& host, std::string& port) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 >= address.size()) return false;
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.front() == '[') {
      if (host.back() != ']' || host.size() < 3) return false;
      host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
      return false;  // a bare IPv6 address is ambiguous: it needs brackets
    }
    if (std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      long n = port.size() <= 5 ? std::stol(port) : 0;
      return n >= 1 && n <= 65535;
    }
    return true;
  }

  // 0 when a connection was made within `timeout_ms`, else the errno that stopped it.
  static int connect_one(const addrinfo& a, double timeout_ms) {
    int fd = ::socket(a.ai_family, a.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a.ai_protocol);
    if (fd < 0) return errno;
    int err = 0;
    if (::connect(fd, a.ai_addr, a.ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int ready;
        do ready = ::poll(&p, 1, static_cast<int>(std::max(1.0, timeout_ms)));
        while (ready < 0 && errno == EINTR);
        if (ready == 0) {
          err = ETIMEDOUT;
        } else {
          socklen_t len = sizeof err;
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
    }
    ::close(fd);
    return err;
  }

  // Refused everywhere: the host answered, nothing listens (Failed). Anything else, such as a
  // timeout or an unreachable network, means the probe could not tell (Error).
  static Result refusal(const std::string& address, const std::vector<int>& errors, double timeout_ms) {
    if (!errors.empty() && std::all_of(errors.begin(), errors.end(), [](int e) { return e == ECONNREFUSED; }))
      return failed_result("connect " + address + ": connection refused");
    std::string what;
    for (int e : errors) {
      std::string one = e == ETIMEDOUT ? "timed out after " + format_duration(timeout_ms) : std::strerror(e);
      if (what.find(one) == std::string::npos) what += (what.empty() ? "" : "; ") + one;
    }
    return error_result("connect " + address + ": " + (what.empty() ? "no address to connect to" : what));
  }

  std::function<void(double)> sleep_;
};

}  // namespace

std::unique_ptr<Prober> make_prober(const DriverEnv& env) { return std::make_unique<RealProber>(env); }

}  // namespace gray::plugins
