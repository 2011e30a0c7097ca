#include "tests/plugins/gateways/envoy_fake.h"

namespace gray::testing {

using json = nlohmann::json;

namespace {

HttpReply text(int status, const std::string& body) {
  HttpReply r;
  r.status = status;
  r.body = body;
  r.content_type = "text/plain";
  return r;
}

}  // namespace

EnvoyFake::EnvoyFake(bool admin_layer) : admin_layer_(admin_layer), server_([this](const HttpRequest& r) { return handle(r); }) {}

void EnvoyFake::set_static(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  static_[key] = value;
}

std::string EnvoyFake::final_value(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (admin_.count(key)) return admin_[key];
  return static_.count(key) ? static_[key] : "";
}

void EnvoyFake::set_clusters(json clusters) {
  std::lock_guard<std::mutex> lock(mu_);
  clusters_ = std::move(clusters);
}

HttpReply EnvoyFake::handle(const HttpRequest& r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (r.path == "/runtime_modify") {
    if (r.method != "POST") return text(400, "This endpoint requires a POST\n");  // the old docs' answer to a GET
    std::map<std::string, std::string> params = r.params();
    if (params.empty())
      return text(400, "usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n"
                       "       use an empty value to remove a previously added override\n");
    if (!admin_layer_) return text(503, "No admin layer specified\n");
    for (const auto& [k, v] : params) {
      if (v.empty()) admin_.erase(k);
      else admin_[k] = v;
    }
    return text(200, "OK\n");
  }
  if (r.path == "/runtime" && r.method == "GET") {
    json entries = json::object();
    std::map<std::string, bool> keys;
    for (const auto& [k, v] : static_) keys[k] = true;
    for (const auto& [k, v] : admin_) keys[k] = true;
    for (const auto& [k, unused] : keys) {
      std::string s = static_.count(k) ? static_[k] : "", a = admin_.count(k) ? admin_[k] : "";
      entries[k] = {{"layer_values", json::array({s, a})}, {"final_value", a.empty() ? s : a}};
    }
    json layers = admin_layer_ ? json::array({"static_layer", "admin"}) : json::array({"static_layer"});
    return text(200, json{{"layers", layers}, {"entries", entries}}.dump());
  }
  if (r.path == "/clusters" && r.method == "GET") {
    if (r.query.count("format") && r.query.at("format") == "json") return text(200, clusters_.dump());
    return text(200, "");
  }
  if ((r.path == "/healthcheck/fail" || r.path == "/healthcheck/ok") && r.method == "POST") return text(200, "OK\n");
  return text(404, "invalid path. admin commands are:\n");
}

}  // namespace gray::testing
