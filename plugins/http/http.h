// The one HTTP client every driver uses (libcurl underneath): connect and total timeouts, retries
// with exponential backoff for idempotent requests only, TLS verification always on, and
// credentials kept out of every message it produces.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gray::http {

struct Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
  std::string body;
  double connect_timeout_ms = 3000;
  double timeout_ms = 10000;      // the whole exchange, per attempt
  // Whether the request may be sent again after a transport error or a 502/503/504. Defaults to
  // true for GET and HEAD; set it for PUT/DELETE calls that are idempotent by design.
  std::optional<bool> idempotent;
  int retries = 2;                // extra attempts, for idempotent requests only
  double backoff_ms = 200;        // before the first retry; doubles each time
  // Values that must never appear in a message (tokens, passwords). Header values named
  // Authorization, X-API-KEY, X-Consul-Token and the like are added automatically.
  std::vector<std::string> secrets;
};

struct Response {
  long status = 0;                 // 0 when no response came
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string error;               // transport problem (refused, timeout, TLS), redacted; empty if a response came
  int attempts = 0;
  double elapsed_ms = 0;

  bool transport_ok() const { return error.empty(); }
  bool success() const { return error.empty() && status >= 200 && status < 300; }
  std::string header(const std::string& lower_name) const;
  // "HTTP 503 from GET http://host/path: <first 200 bytes of the body>" or the transport error;
  // for error messages. Query strings are dropped from the URL, so tokens in them cannot leak.
  std::string describe(const Request& r) const;
};

// One client keeps one libcurl handle, so connections are reused between calls. Not thread-safe:
// give each driver its own.
class Client {
 public:
  explicit Client(std::function<void(double ms)> sleep = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Response send(const Request& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encoding for query strings and form bodies (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view s);
// "a=1&b=2" from pairs, each encoded.
std::string form(const std::vector<std::pair<std::string, std::string>>& fields);
std::string base64_encode(std::string_view s);
// Returns false on malformed input.
bool base64_decode(std::string_view s, std::string& out);
// `text` with every non-empty secret replaced by "<secret>".
std::string redact(std::string text, const std::vector<std::string>& secrets);
// The URL without its query string and user info, for messages.
std::string display_url(std::string_view url);

}  // namespace gray::http
