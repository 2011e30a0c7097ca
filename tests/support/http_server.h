// A small HTTP/1.1 server for tests: fakes of the APIs that cannot be installed here (Nacos,
// Consul, Eureka, APISIX, Envoy) and endpoints that misbehave on purpose. Listens on 127.0.0.1
// on a free port, one thread per connection, keep-alive honoured, bodies by Content-Length.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gray::testing {

struct HttpRequest {
  std::string method;
  std::string target;                          // as sent: path and query
  std::string path;                            // without the query, percent-decoded
  std::map<std::string, std::string> query;    // decoded; a repeated name keeps the last value
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string header(const std::string& lower_name) const;
  // Form fields of an application/x-www-form-urlencoded body, merged over the query.
  std::map<std::string, std::string> params() const;
};

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;   // close the connection after this reply
  int delay_ms = 0;     // answer late (for timeout tests)
};

class HttpServer {
 public:
  using Handler = std::function<HttpReply(const HttpRequest&)>;
  explicit HttpServer(Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Every request received so far, in order.
  std::vector<HttpRequest> requests() const;
  void stop();

 private:
  void accept_loop();
  void serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> open_fds_;
  std::vector<HttpRequest> log_;
};

std::string percent_decode(const std::string& s);

}  // namespace gray::testing
