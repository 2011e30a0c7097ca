#include "plugins/apisix/apisix.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <set>

#include "plugins/gateway/common.h"
#include "plugins/http/http.h"

namespace gray::plugins {

namespace {

using gateway::Route;
using json = nlohmann::json;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

struct Config {
  std::string admin_url;  // ends with /apisix/admin
  std::string api_key;
  std::string route_id, stable_upstream, canary_upstream;
};

struct Stop {
  Result result;
};

Call make_call(std::string op, std::map<std::string, Value> args) {
  Call c;
  c.op = std::move(op);
  c.args = std::move(args);
  return c;
}

// The route as read: its body and the etcd revision it was read at.
struct RouteDoc {
  json value;
  long long modified = -1;
};

// ---- traffic-split rules -------------------------------------------------------------------

json& split_rules(json& route) {
  json& plugins = route["plugins"];
  if (!plugins.is_object()) plugins = json::object();
  json& split = plugins["traffic-split"];
  if (!split.is_object()) split = json::object();
  json& rules = split["rules"];
  if (!rules.is_array()) rules = json::array();
  return rules;
}

// The lua-resty-expr condition of a rule.
json condition(const Route& r) {
  if (r.match == "ip") return json::array({"remote_addr", "ipmatch", r.ranges()});
  std::string var;
  if (r.match == "header") {
    var = "http_";
    for (char c : r.name) var += c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  } else {
    var = "cookie_" + r.name;
  }
  return json::array({var, r.op == "~" ? "~~" : "==", r.value});
}

class ApisixDriver final : public Driver {
 public:
  ApisixDriver(std::string instance, Config cfg, DriverEnv env) : instance_(std::move(instance)), cfg_(std::move(cfg)), client_(env.sleep) {}

  Kind kind() const override { return Kind::Gateway; }

  Result call(const Call& c) override {
    double t0 = now_ms();
    deadline_ = t0 + c.timeout_ms;
    Result r;
    try {
      r = dispatch(c);
    } catch (const Stop& s) {
      r = s.result;
    }
    r.elapsed_ms = now_ms() - t0;
    if (r.ok()) applied_.add(c.key);
    return r;
  }

  std::optional<Call> undo_for(const Call& c) override {
    deadline_ = now_ms() + c.timeout_ms;
    try {
      return undo_from(read_route().value, c);
    } catch (const Stop&) {
      return std::nullopt;
    }
  }

 private:
  std::string where() const { return "apisix route " + cfg_.route_id + " at " + http::display_url(cfg_.admin_url); }

  Result dispatch(const Call& c) {
    const std::string& op = c.op;
    if (op == "weight_of") return weight_of(c);
    static const std::set<std::string> effects = {"weight", "route", "unroute", "clear_routes", "set_routes"};
    if (effects.count(op)) return change(c);
    if (op == "drain" || op == "ready" || op == "maint" || op == "scale" || op == "sessions" || op == "connections")
      return failed_result(where() + ": " + op +
                           " is not supported by the apisix driver: it steers traffic between the canary and stable upstreams of a route; "
                           "take nodes out of an upstream in the upstream itself or through a registry");
    return failed_result(where() + ": the apisix driver has no operation '" + op + "'");
  }

  // ---- the Admin API -----------------------------------------------------------------------

  http::Response send(const std::string& method, const std::string& path, const std::string& body = "") {
    http::Request req;
    req.method = method;
    req.url = cfg_.admin_url + path;
    req.headers = {{"X-API-KEY", cfg_.api_key}};
    if (!body.empty()) req.headers.push_back({"Content-Type", "application/json"});
    req.body = body;
    req.secrets = {cfg_.api_key};
    // A PUT of a whole route is idempotent: sending it again after a lost answer is harmless.
    req.idempotent = method == "GET" || method == "PUT";
    double left = deadline_ - now_ms();
    if (left <= 0) throw Stop{error_result(where() + ": " + method + " " + path + ": the call's timeout ran out")};
    req.timeout_ms = std::min(left, 10000.0);
    req.connect_timeout_ms = std::min(left, 3000.0);
    http::Response resp = client_.send(req);
    if (!resp.transport_ok() || resp.status >= 500) throw Stop{error_result(where() + ": " + resp.describe(req))};
    if (resp.status == 401 || resp.status == 403)
      throw Stop{failed_result(where() + ": the Admin API refused the api_key: " + resp.describe(req))};
    return resp;
  }

  static json parse(const http::Response& resp) { return json::parse(resp.body, nullptr, false); }

  RouteDoc read_route() {
    http::Response resp = send("GET", "/routes/" + http::url_encode(cfg_.route_id));
    if (resp.status == 404) throw Stop{failed_result(where() + ": the route does not exist (Key not found)")};
    json j = parse(resp);
    if (!resp.success() || j.is_discarded() || !j.is_object() || !j.contains("value") || !j["value"].is_object())
      throw Stop{error_result(where() + ": GET /routes/" + cfg_.route_id + ": unexpected answer: HTTP " + std::to_string(resp.status) + " " + resp.body.substr(0, 200))};
    RouteDoc doc;
    doc.value = j["value"];
    if (j.contains("modifiedIndex") && j["modifiedIndex"].is_number()) doc.modified = j["modifiedIndex"].get<long long>();
    return doc;
  }

  void check_upstream(const std::string& id) {
    if (checked_upstreams_.count(id)) return;
    http::Response resp = send("GET", "/upstreams/" + http::url_encode(id));
    if (resp.status == 404) throw Stop{failed_result(where() + ": upstream " + id + " does not exist (Key not found)")};
    if (!resp.success()) throw Stop{failed_result(where() + ": upstream " + id + ": HTTP " + std::to_string(resp.status) + " " + resp.body.substr(0, 200))};
    checked_upstreams_.insert(id);
  }

  // ---- rules -------------------------------------------------------------------------------

  // A rule gray writes for a route: one condition, all matching requests to one upstream.
  json route_rule(const Route& r) const {
    const std::string& upstream = r.target == "canary" ? cfg_.canary_upstream : cfg_.stable_upstream;
    return {{"match", json::array({{{"vars", json::array({condition(r)})}}})}, {"weighted_upstreams", json::array({{{"upstream_id", upstream}}})}};
  }

  // The rule back as a routing rule, when it has the shape gray writes.
  std::optional<Route> read_rule(const json& rule) const {
    if (!rule.is_object() || rule.size() != 2 || !rule.contains("match") || !rule.contains("weighted_upstreams")) return std::nullopt;
    const json& m = rule["match"];
    const json& w = rule["weighted_upstreams"];
    if (!m.is_array() || m.size() != 1 || !m[0].is_object() || m[0].size() != 1 || !m[0].contains("vars")) return std::nullopt;
    const json& vars = m[0]["vars"];
    if (!vars.is_array() || vars.size() != 1 || !vars[0].is_array() || vars[0].size() != 3 || !vars[0][0].is_string()) return std::nullopt;
    if (!w.is_array() || w.size() != 1 || !w[0].is_object() || w[0].size() != 1 || !w[0].contains("upstream_id")) return std::nullopt;
    std::string up = w[0]["upstream_id"].is_string() ? w[0]["upstream_id"].get<std::string>() : w[0]["upstream_id"].dump();
    Route r;
    r.target = up == cfg_.canary_upstream ? "canary" : up == cfg_.stable_upstream ? "stable" : "";
    if (r.target.empty()) return std::nullopt;
    std::string var = vars[0][0], op = vars[0][1].is_string() ? vars[0][1].get<std::string>() : "";
    const json& value = vars[0][2];
    if (var == "remote_addr" && op == "ipmatch" && value.is_array()) {
      r.match = "ip";
      r.op = "==";
      for (const json& v : value) r.value += (r.value.empty() ? "" : ",") + (v.is_string() ? v.get<std::string>() : v.dump());
    } else if ((op == "==" || op == "~~") && value.is_string() && (var.rfind("http_", 0) == 0 || var.rfind("cookie_", 0) == 0)) {
      bool header = var.rfind("http_", 0) == 0;
      r.match = header ? "header" : "cookie";
      r.name = var.substr(header ? 5 : 7);
      if (header) std::replace(r.name.begin(), r.name.end(), '_', '-');
      r.op = op == "~~" ? "~" : "==";
      r.value = value.get<std::string>();
    } else {
      return std::nullopt;
    }
    if (route_rule(r) != rule) return std::nullopt;
    return r;
  }

  std::vector<Route> gray_routes(json route) const {
    std::vector<Route> out;
    for (const json& rule : split_rules(route))
      if (auto r = read_rule(rule)) out.push_back(*r);
    return out;
  }

  // The weighted rule gray keeps last: a rule without `match` that names the canary upstream.
  bool is_weight_rule(const json& rule) const {
    if (!rule.is_object() || rule.contains("match") || !rule.contains("weighted_upstreams") || !rule["weighted_upstreams"].is_array()) return false;
    for (const json& u : rule["weighted_upstreams"])
      if (u.is_object() && u.contains("upstream_id") && u["upstream_id"] == cfg_.canary_upstream) return true;
    return false;
  }

  // The canary share the route gives now: from gray's weighted rule, else 0 (every request
  // goes to the route's own upstream).
  double canary_share(json route) const {
    for (const json& rule : split_rules(route)) {
      if (!is_weight_rule(rule)) continue;
      double canary = 0, total = 0;
      for (const json& u : rule["weighted_upstreams"]) {
        double w = u.is_object() && u.contains("weight") && u["weight"].is_number() ? u["weight"].get<double>() : 1;
        total += w;
        if (u.contains("upstream_id") && u["upstream_id"] == cfg_.canary_upstream) canary += w;
      }
      return total > 0 ? 100 * canary / total : 0;
    }
    return 0;
  }

  // Integer weights for a share: whole percents as they are, else in hundredths.
  static std::pair<long, long> weights_for(double p) {
    long scale = std::fabs(p - std::round(p)) < 1e-9 ? 100 : 10000;
    long canary = std::lround(p * scale / 100);
    return {canary, scale - canary};
  }

  json weight_rule(double p, const json& route) const {
    auto [canary, stable] = weights_for(p);
    json stable_entry = {{"weight", stable}};
    // An entry without upstream_id is the route's own upstream; name the stable one otherwise.
    if (!(route.contains("upstream_id") && route["upstream_id"] == cfg_.stable_upstream)) stable_entry["upstream_id"] = cfg_.stable_upstream;
    return {{"weighted_upstreams", json::array({{{"upstream_id", cfg_.canary_upstream}, {"weight", canary}}, stable_entry})}};
  }

  // Gray's routing rules go before the first rule without `match`, which takes every request
  // that reaches it.
  static size_t catch_all(const json& rules) {
    size_t at = 0;
    while (at < rules.size() && rules[at].is_object() && rules[at].contains("match")) ++at;
    return at;
  }

  // Applies the call to a route body. Throws Stop for arguments that cannot be applied.
  void apply(const Call& c, json& route) {
    json& rules = split_rules(route);
    std::string why;
    if (c.op == "weight") {
      double p = 0;
      if (!gateway::percent_arg(c, "canary", p, why)) throw Stop{failed_result(where() + ": weight: " + why)};
      check_upstream(cfg_.canary_upstream);
      check_upstream(cfg_.stable_upstream);
      json rule = weight_rule(p, route);
      auto it = std::find_if(rules.begin(), rules.end(), [&](const json& r) { return is_weight_rule(r); });
      if (it != rules.end()) *it = rule;
      else rules.push_back(rule);
      return;
    }
    if (c.op == "route" || c.op == "unroute") {
      Route r;
      if (!gateway::route_from_args(c.args, r, why)) throw Stop{failed_result(where() + ": " + why)};
      json rule = route_rule(r);
      bool present = std::find(rules.begin(), rules.end(), rule) != rules.end();
      if (c.op == "unroute") rules.erase(std::remove(rules.begin(), rules.end(), rule), rules.end());
      if (c.op == "route" && !present) {
        check_upstream(r.target == "canary" ? cfg_.canary_upstream : cfg_.stable_upstream);
        // After gray's other rules (they apply in the order added), else after the operator's.
        size_t at = catch_all(rules);
        for (size_t i = 0; i < rules.size(); ++i)
          if (read_rule(rules[i])) at = std::min(i + 1, catch_all(rules));
        rules.insert(rules.begin() + static_cast<long>(at), rule);
      }
      return;
    }
    std::vector<Route> wanted;
    if (c.op == "set_routes" && !gateway::routes_from_call(c, wanted, why)) throw Stop{failed_result(where() + ": " + why)};
    size_t first_gray = rules.size();
    for (size_t i = 0; i < rules.size(); ++i)
      if (read_rule(rules[i])) first_gray = std::min(first_gray, i);
    rules.erase(std::remove_if(rules.begin(), rules.end(), [&](const json& r) { return read_rule(r).has_value(); }), rules.end());
    // Where gray's rules were, else after the operator's own match rules.
    size_t at = std::min(first_gray, catch_all(rules));
    for (const Route& r : wanted) {
      check_upstream(r.target == "canary" ? cfg_.canary_upstream : cfg_.stable_upstream);
      rules.insert(rules.begin() + static_cast<long>(at++), route_rule(r));
    }
  }

  std::optional<Call> undo_from(const json& before, const Call& c) const {
    if (c.op == "weight") return make_call("weight", {{"canary", Value::percent(canary_share(before))}});
    if (c.op == "route" || c.op == "unroute") {
      Route r;
      std::string why;
      if (!gateway::route_from_args(c.args, r, why)) return std::nullopt;
      json copy = before;
      const json& rules = split_rules(copy);
      bool present = std::find(rules.begin(), rules.end(), route_rule(r)) != rules.end();
      if (c.op == "route" && !present) return make_call("unroute", gateway::route_args(r));
      if (c.op == "unroute" && present) return make_call("route", gateway::route_args(r));
      return std::nullopt;
    }
    if (c.op == "clear_routes" || c.op == "set_routes") return make_call("set_routes", {{"routes", gateway::routes_value(gray_routes(before))}});
    return std::nullopt;
  }

  // Read, change, write back. The Admin API has no conditional PUT, so the route is read once
  // more right before the write: a change by someone else in between starts the cycle again.
  Result change(const Call& c) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      RouteDoc doc = read_route();
      json next = doc.value;
      apply(c, next);
      Result r = ok_result();
      r.undo = undo_from(doc.value, c);
      if (c.op == "weight") {
        auto [canary, stable] = weights_for(c.args.at("canary").num);
        r.value = Value::percent(100.0 * static_cast<double>(canary) / static_cast<double>(canary + stable));
      }
      if (next == doc.value) {
        r.replayed = applied_.seen(c.key);
        return r;
      }
      if (read_route().modified != doc.modified) continue;
      for (const char* field : {"create_time", "update_time"}) next.erase(field);
      http::Response resp = send("PUT", "/routes/" + http::url_encode(cfg_.route_id), next.dump());
      if (resp.status != 200 && resp.status != 201)
        return failed_result(where() + ": PUT /routes/" + cfg_.route_id + " was refused: HTTP " + std::to_string(resp.status) + " " + resp.body.substr(0, 300));
      return r;
    }
    return error_result(where() + ": the route kept changing while gray was updating it (3 attempts); try again");
  }

  Result weight_of(const Call& c) {
    std::string group = gateway::text_arg(c, "group");
    if (group != "canary" && group != "stable") return failed_result(where() + ": weight_of: group must be canary or stable, not \"" + group + "\"");
    double share = canary_share(read_route().value);
    return ok_result(Value::percent(std::round((group == "canary" ? share : 100 - share) * 100) / 100));
  }

  std::string instance_;
  Config cfg_;
  http::Client client_;
  gateway::AppliedKeys applied_;
  std::set<std::string> checked_upstreams_;
  double deadline_ = 0;
};

Config read_config(const std::string& instance, const Value& config) {
  Config cfg;
  std::string url = config_string(instance, config, "admin_url");
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    throw DriverError(instance + ": field 'admin_url' must be an http:// or https:// URL such as http://apisix:9180");
  const std::string suffix = "/apisix/admin";
  if (url.size() < suffix.size() || url.compare(url.size() - suffix.size(), suffix.size(), suffix) != 0) url += suffix;
  cfg.admin_url = url;
  cfg.api_key = config_string(instance, config, "api_key");
  cfg.route_id = config_string(instance, config, "route_id");
  cfg.stable_upstream = config_string(instance, config, "stable_upstream");
  cfg.canary_upstream = config_string(instance, config, "canary_upstream");
  if (cfg.api_key.empty()) throw DriverError(instance + ": field 'api_key' is empty (is the environment variable set?)");
  if (cfg.route_id.empty() || cfg.stable_upstream.empty() || cfg.canary_upstream.empty())
    throw DriverError(instance + ": fields 'route_id', 'stable_upstream' and 'canary_upstream' must not be empty");
  if (cfg.stable_upstream == cfg.canary_upstream) throw DriverError(instance + ": 'stable_upstream' and 'canary_upstream' are the same upstream");
  return cfg;
}

}  // namespace

std::unique_ptr<Driver> make_apisix(const std::string& instance, const Value& config, const DriverEnv& env) {
  return std::make_unique<ApisixDriver>(instance, read_config(instance, config), env);
}

}  // namespace gray::plugins
