// A fake of the Apache APISIX Admin API v3 for routes and upstreams, following the documented
// shapes (/work/shared/recipes/api-contracts.md, section 4): X-API-KEY checks (401), 404 "Key
// not found", 201 on a PUT that creates and 200 on one that replaces, etcd-style
// createdIndex/modifiedIndex, and a check of the traffic-split plugin's rules (400).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/http_server.h"

namespace gray::testing {

class ApisixFake {
 public:
  explicit ApisixFake(std::string api_key);

  std::string url() const { return server_.url(); }
  // Stores a resource directly ("routes", "1", {...}), as an operator would have.
  void put(const std::string& kind, const std::string& id, nlohmann::json value);
  nlohmann::json get(const std::string& kind, const std::string& id);
  // Called on each GET of a route, before answering: lets a test change the route "meanwhile".
  std::function<void(int get_count)> on_route_get;
  std::vector<HttpRequest> requests() const { return server_.requests(); }

 private:
  struct Entry {
    nlohmann::json value;
    long long created = 0, modified = 0;
  };
  HttpReply handle(const HttpRequest& r);
  HttpReply store(const std::string& kind, const std::string& id, const std::string& body);
  static std::string validate(const std::string& kind, const nlohmann::json& v);

  std::string api_key_;
  std::mutex mu_;
  std::map<std::string, std::map<std::string, Entry>> data_;  // kind -> id -> entry
  long long revision_ = 1000;
  int route_gets_ = 0;
  HttpServer server_;
};

}  // namespace gray::testing
