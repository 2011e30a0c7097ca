// A fake Eureka server following the documented REST operations (api-contracts.md section 3):
// register with its 400 texts, heartbeats, cancel, status overrides that outlive heartbeats but not
// a cancel, metadata merged and never removed, upper-cased app names, JSON only when asked for it
// (Accept), under a configurable base path (/eureka or /eureka/v2).
#pragma once

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/support/http_server.h"

namespace gray::regtest {

class EurekaFake {
 public:
  struct Options {
    std::string base = "/eureka";
    bool single_as_object = false;  // write a lone instance as an object, as older codecs do
  };

  explicit EurekaFake(Options options);
  std::string url() const { return server_.url() + o_.base; }

  // As the node's own client would register it.
  void put(const std::string& app, nlohmann::json instance);
  // The server lets the lease lapse.
  void drop(const std::string& app, const std::string& id);
  std::optional<nlohmann::json> instance(const std::string& app, const std::string& id);
  int renewals(const std::string& app, const std::string& id);
  std::vector<testing::HttpRequest> requests() const { return server_.requests(); }

 private:
  struct Entry {
    nlohmann::json doc;
    int renewals = 0;
  };
  testing::HttpReply handle(const testing::HttpRequest& req);
  testing::HttpReply register_instance(const std::string& app, const testing::HttpRequest& req);
  testing::HttpReply get_app(const std::string& app, const testing::HttpRequest& req);
  void store(const std::string& app, nlohmann::json doc);

  Options o_;
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, Entry>> apps_;  // APP -> instanceId -> entry
  std::map<std::string, std::string> overrides_;              // instanceId -> status
  testing::HttpServer server_;                                // last: it calls handle()
};

}  // namespace gray::regtest
