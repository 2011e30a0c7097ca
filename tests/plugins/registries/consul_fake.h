// A fake Consul agent following the documented HTTP API (api-contracts.md section 2): agent
// service register/deregister/maintenance with their 400 and 404 texts, the health endpoint with
// ?passing, and ACL tokens (X-Consul-Token or Authorization: Bearer).
#pragma once

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "tests/support/http_server.h"

namespace gray::regtest {

class ConsulFake {
 public:
  struct Options {
    std::string token;  // empty: ACLs off
    std::string node = "node-1";
    std::string node_address = "10.1.0.1";
  };

  explicit ConsulFake(Options options);
  std::string url() const { return server_.url(); }

  // As the node's agent would register it (a definition in the register endpoint's shape).
  void put(const nlohmann::json& definition);
  // Listed by the health endpoint, yet registered on another node's agent: this agent's
  // endpoints answer 404 for it.
  void put_remote(const nlohmann::json& definition);
  std::optional<nlohmann::json> service(const std::string& id);
  std::optional<std::string> maintenance(const std::string& id);  // the reason, when on
  std::vector<testing::HttpRequest> requests() const { return server_.requests(); }

 private:
  struct Entry {
    nlohmann::json def;  // normalized: ID, Service, Tags, Address, Port, Meta, Weights, EnableTagOverride
    std::optional<std::string> maintenance;
    bool remote = false;
  };
  testing::HttpReply handle(const testing::HttpRequest& req);
  testing::HttpReply register_service(const testing::HttpRequest& req);
  testing::HttpReply health(const std::string& service, bool passing_only);
  static std::optional<nlohmann::json> normalize(const nlohmann::json& body, std::string& error);

  Options o_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> services_;  // by ID
  testing::HttpServer server_;             // last: it calls handle()
};

}  // namespace gray::regtest
