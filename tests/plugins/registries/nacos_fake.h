// A fake Nacos naming server following the documented open API (api-contracts.md section 1):
// v1 and v2 instance endpoints, the ServiceNameFilter's group@@service rule, metadata parsing (JSON
// or k=v,k=v, else 400), updates that replace weight/enabled/metadata with what they are given,
// lists that leave disabled instances out, heartbeats, login tokens with 403 on a bad one, and a
// Nacos 3 mode that answers 410 Gone to the admin endpoints.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "tests/support/http_server.h"

namespace gray::regtest {

class NacosFake {
 public:
  struct Options {
    bool auth = false;
    std::string username = "nacos";
    std::string password = "nacos-secret-pw";
    double token_ttl_s = 18000;
    bool nacos3 = false;     // 410 Gone for v1 PUT, v1 GET of one instance and all v2 /ns/instance
    bool data_true = false;  // v2 writes answer data: true (as the docs show) instead of "ok"
    long beat_interval_ms = 5000;
    long expire_ms = 0;  // ephemeral instances without a heartbeat for this long go; 0: never
  };
  struct Instance {
    std::string ip;
    int port = 0;
    std::string cluster = "DEFAULT";
    double weight = 1;
    bool enabled = true;
    bool healthy = true;
    bool ephemeral = true;
    std::map<std::string, std::string> metadata;
    double last_beat_ms = 0;
    bool grpc = false;  // registered by a gRPC client: the HTTP deregistration leaves it in place
  };

  explicit NacosFake(Options options);
  std::string url() const { return server_.url(); }

  // The state, for assertions and for playing a node's own client. `service` is group@@name.
  std::optional<Instance> get(const std::string& ns, const std::string& service, const std::string& ip, int port);
  void put(const std::string& ns, const std::string& service, Instance in);
  void revoke_tokens();
  int logins() const;
  int denials() const;  // 403 answers to anything but a login
  // The next request (other than a login) gets this answer instead.
  void fail_next(int status, std::string body);
  std::vector<testing::HttpRequest> requests() const { return server_.requests(); }

 private:
  testing::HttpReply handle(const testing::HttpRequest& req);
  testing::HttpReply instance_call(const testing::HttpRequest& req, bool v2);
  testing::HttpReply list(const testing::HttpRequest& req, bool v2);
  testing::HttpReply beat(const testing::HttpRequest& req, bool v2);
  void expire();

  Options o_;
  mutable std::mutex mu_;
  // namespace -> group@@service -> "ip#port#cluster" -> instance
  std::map<std::string, std::map<std::string, std::map<std::string, Instance>>> data_;
  std::map<std::string, double> tokens_;  // token -> when it expires (steady clock, ms)
  int logins_ = 0;
  int denials_ = 0;
  int next_token_ = 0;
  std::optional<std::pair<int, std::string>> fail_next_;
  testing::HttpServer server_;  // last: it calls handle()
};

}  // namespace gray::regtest
