// A fake of Envoy's admin interface as far as the envoy driver uses it, following the documented
// shapes (/work/shared/recipes/api-contracts.md, section 5): POST-only /runtime_modify (400
// without parameters, 503 without an admin layer, an empty value deletes an override),
// GET /runtime with layers and final values, GET /clusters?format=json with host stats.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/http_server.h"

namespace gray::testing {

class EnvoyFake {
 public:
  explicit EnvoyFake(bool admin_layer = true);

  std::string url() const { return server_.url(); }
  void set_static(const std::string& key, const std::string& value);
  std::string final_value(const std::string& key);
  // The /clusters?format=json document.
  void set_clusters(nlohmann::json clusters);

 private:
  HttpReply handle(const HttpRequest& r);

  bool admin_layer_;
  std::mutex mu_;
  std::map<std::string, std::string> static_, admin_;
  nlohmann::json clusters_ = {{"cluster_statuses", nlohmann::json::array()}};
  HttpServer server_;
};

}  // namespace gray::testing
