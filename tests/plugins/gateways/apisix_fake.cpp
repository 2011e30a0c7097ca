#include "tests/plugins/gateways/apisix_fake.h"

#include <ctime>

namespace gray::testing {

using json = nlohmann::json;

namespace {

HttpReply reply(int status, const json& body) {
  HttpReply r;
  r.status = status;
  r.body = body.dump();
  return r;
}

// The cookie X-API-KEY, when the request carries one.
std::string cookie_key(const HttpRequest& r) {
  std::string cookies = r.header("cookie");
  size_t at = cookies.find("X-API-KEY=");
  if (at == std::string::npos) return "";
  size_t end = cookies.find(';', at);
  return cookies.substr(at + 10, end == std::string::npos ? std::string::npos : end - at - 10);
}

}  // namespace

ApisixFake::ApisixFake(std::string api_key)
    : api_key_(std::move(api_key)), server_([this](const HttpRequest& r) { return handle(r); }) {}

void ApisixFake::put(const std::string& kind, const std::string& id, json value) {
  std::lock_guard<std::mutex> lock(mu_);
  value["id"] = id;
  Entry& e = data_[kind][id];
  e.value = std::move(value);
  e.created = e.modified = ++revision_;
}

json ApisixFake::get(const std::string& kind, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& m = data_[kind];
  auto it = m.find(id);
  return it == m.end() ? json() : it->second.value;
}

std::string ApisixFake::validate(const std::string& kind, const json& v) {
  if (!v.is_object()) return "invalid configuration: object expected";
  if (kind != "routes" || !v.contains("plugins")) return "";
  const json& plugins = v["plugins"];
  if (!plugins.is_object()) return "invalid configuration: property \"plugins\" validation failed: wrong type: expected object";
  if (!plugins.contains("traffic-split")) return "";
  const json& rules = plugins["traffic-split"].value("rules", json::array());
  if (!rules.is_array()) return "failed to check the configuration of plugin traffic-split err: property \"rules\" validation failed";
  for (const json& rule : rules) {
    const json& w = rule.value("weighted_upstreams", json());
    if (!w.is_array() || w.empty() || w.size() > 20)
      return "failed to check the configuration of plugin traffic-split err: property \"weighted_upstreams\" validation failed: expect array to have 1..20 items";
    for (const json& u : w) {
      if (!u.is_object()) return "failed to check the configuration of plugin traffic-split err: weighted_upstreams: object expected";
      if (u.contains("weight") && (!u["weight"].is_number_integer() || u["weight"].get<long long>() < 0))
        return "failed to check the configuration of plugin traffic-split err: property \"weight\" validation failed: expected integer >= 0";
    }
    if (rule.contains("match")) {
      if (!rule["match"].is_array()) return "failed to check the configuration of plugin traffic-split err: property \"match\" validation failed";
      for (const json& m : rule["match"])
        if (!m.is_object() || !m.value("vars", json()).is_array())
          return "failed to check the configuration of plugin traffic-split err: property \"vars\" validation failed";
    }
  }
  return "";
}

HttpReply ApisixFake::store(const std::string& kind, const std::string& id, const std::string& body) {
  json v = json::parse(body, nullptr, false);
  if (v.is_discarded()) return reply(400, {{"error_msg", "invalid request body: Expected value but found invalid token at character 1"}});
  if (std::string why = validate(kind, v); !why.empty()) return reply(400, {{"error_msg", why}});
  std::lock_guard<std::mutex> lock(mu_);
  auto& m = data_[kind];
  bool existed = m.count(id) > 0;
  Entry& e = m[id];
  long long now = static_cast<long long>(std::time(nullptr));
  v["id"] = id;
  v["create_time"] = existed && e.value.contains("create_time") ? e.value["create_time"] : json(now);
  v["update_time"] = now;
  e.value = v;
  e.modified = ++revision_;
  if (!existed) e.created = e.modified;
  // etcd's prev_kv decides: 201 for a new key, 200 for a replaced one.
  return reply(existed ? 200 : 201, {{"key", "/apisix/" + kind + "/" + id}, {"value", v}});
}

HttpReply ApisixFake::handle(const HttpRequest& r) {
  std::string key = r.header("x-api-key");
  if (key.empty() && r.query.count("api_key")) key = r.query.at("api_key");
  if (key.empty()) key = cookie_key(r);
  if (key.empty()) return reply(401, {{"error_msg", "failed to check token"}, {"description", "missing apikey"}});
  if (key != api_key_) return reply(401, {{"error_msg", "failed to check token"}, {"description", "wrong apikey"}});

  const std::string prefix = "/apisix/admin/";
  if (r.path.rfind(prefix, 0) != 0) return reply(404, {{"error_msg", "404 Route Not Found"}});
  std::string rest = r.path.substr(prefix.size());
  size_t slash = rest.find('/');
  std::string kind = rest.substr(0, slash), id = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (kind != "routes" && kind != "upstreams") return reply(404, {{"error_msg", "404 Route Not Found"}});

  if (r.method == "GET" && id.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    json list = json::array();
    for (const auto& [k, e] : data_[kind])
      list.push_back({{"key", "/apisix/" + kind + "/" + k}, {"value", e.value}, {"createdIndex", e.created}, {"modifiedIndex", e.modified}});
    return reply(200, {{"list", list}, {"total", list.size()}});
  }
  if (id.empty()) return reply(400, {{"error_msg", "missing id"}});
  if (r.method == "GET") {
    if (kind == "routes" && on_route_get) on_route_get(++route_gets_);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = data_[kind].find(id);
    if (it == data_[kind].end()) return reply(404, {{"message", "Key not found"}});
    return reply(200, {{"key", "/apisix/" + kind + "/" + id}, {"value", it->second.value}, {"createdIndex", it->second.created},
                       {"modifiedIndex", it->second.modified}});
  }
  if (r.method == "PUT") return store(kind, id, r.body);
  if (r.method == "DELETE") {
    std::lock_guard<std::mutex> lock(mu_);
    if (!data_[kind].erase(id)) return reply(404, {{"message", "Key not found"}});
    return reply(200, {{"deleted", "1"}, {"key", "/apisix/" + kind + "/" + id}});
  }
  return reply(405, {{"error_msg", "method not allowed"}});
}

}  // namespace gray::testing
