#include "plugins/envoy/envoy.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <set>

#include "plugins/gateway/common.h"
#include "plugins/http/http.h"

namespace gray::plugins {

namespace {

using json = nlohmann::json;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Weights are relative in weighted_clusters; this many steps give shares to 0.01%.
constexpr int kMaxWeight = 10000;

struct Config {
  std::string admin_url, runtime_key;
  std::vector<std::string> stable, canary;  // clusters; both empty: runtime_fraction mode
  bool weighted() const { return !canary.empty(); }
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

class EnvoyDriver final : public Driver {
 public:
  EnvoyDriver(std::string instance, Config cfg, DriverEnv env) : instance_(std::move(instance)), cfg_(std::move(cfg)), client_(env.sleep) {}

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
    if (c.op != "weight" && c.op != "reset_weight") return std::nullopt;
    deadline_ = now_ms() + c.timeout_ms;
    try {
      return undo_from(read_runtime());
    } catch (const Stop&) {
      return std::nullopt;
    }
  }

 private:
  std::string where() const { return "envoy admin at " + http::display_url(cfg_.admin_url); }

  Result dispatch(const Call& c) {
    const std::string& op = c.op;
    if (op == "weight") return weight(c);
    if (op == "reset_weight") return reset_weight(c);
    if (op == "weight_of") return weight_of(c);
    if (op == "sessions" || op == "connections") return counts(c);
    if (op == "drain" || op == "ready" || op == "maint")
      return failed_result(where() + ": " + op +
                           " is not supported by the envoy driver: the admin interface's healthcheck/fail fails the whole Envoy, "
                           "not one upstream host; take hosts out through EDS or a registry");
    if (op == "route" || op == "clear_routes" || op == "scale")
      return failed_result(where() + ": " + op + " is not supported by the envoy driver: routes and cluster members live in Envoy's "
                           "route and endpoint configuration (xDS), not in the runtime");
    return failed_result(where() + ": the envoy driver has no operation '" + op + "'");
  }

  // ---- the admin interface -----------------------------------------------------------------

  http::Response send(const std::string& method, const std::string& path_and_query) {
    http::Request req;
    req.method = method;
    req.url = cfg_.admin_url + path_and_query;
    // runtime_modify sets values: sending it again is harmless.
    req.idempotent = true;
    double left = deadline_ - now_ms();
    if (left <= 0) throw Stop{error_result(where() + ": " + method + " " + path_and_query + ": the call's timeout ran out")};
    req.timeout_ms = std::min(left, 10000.0);
    req.connect_timeout_ms = std::min(left, 3000.0);
    http::Response resp = client_.send(req);
    if (!resp.transport_ok()) throw Stop{error_result(where() + ": " + resp.describe(req))};
    return resp;
  }

  // Final runtime values by key ("" when a key is not set in any layer).
  std::map<std::string, std::string> read_runtime() {
    http::Response resp = send("GET", "/runtime");
    json j = json::parse(resp.body, nullptr, false);
    if (!resp.success() || j.is_discarded() || !j.is_object() || !j.contains("entries") || !j["entries"].is_object())
      throw Stop{error_result(where() + ": GET /runtime: unexpected answer: HTTP " + std::to_string(resp.status) + " " + resp.body.substr(0, 200))};
    std::map<std::string, std::string> out;
    for (const std::string& key : keys()) {
      const json& e = j["entries"].value(key, json());
      out[key] = e.is_object() && e.contains("final_value") && e["final_value"].is_string() ? e["final_value"].get<std::string>() : "";
    }
    return out;
  }

  void modify(const std::vector<std::pair<std::string, std::string>>& values) {
    http::Response resp = send("POST", "/runtime_modify?" + http::form(values));
    if (resp.status == 503)
      throw Stop{failed_result(where() + ": runtime_modify: HTTP 503 " + resp.body.substr(0, 200) + " (the bootstrap's layered_runtime needs a layer with admin_layer: {})")};
    if (!resp.success()) throw Stop{failed_result(where() + ": runtime_modify was refused: HTTP " + std::to_string(resp.status) + " " + resp.body.substr(0, 200))};
  }

  // ---- weights -----------------------------------------------------------------------------

  std::string key_of(const std::string& cluster) const { return cfg_.runtime_key + "." + cluster; }

  std::vector<std::string> keys() const {
    if (!cfg_.weighted()) return {cfg_.runtime_key};
    std::vector<std::string> out;
    for (const auto* group : {&cfg_.canary, &cfg_.stable})
      for (const std::string& cluster : *group) out.push_back(key_of(cluster));
    return out;
  }

  // The runtime values for a share, and the share they give.
  std::vector<std::pair<std::string, std::string>> values_for(double p, double& effective) const {
    std::vector<std::pair<std::string, std::string>> out;
    if (!cfg_.weighted()) {
      // runtime_fraction: an integer percentage of requests kept by the canary route.
      long whole = std::lround(p);
      effective = static_cast<double>(whole);
      out.push_back({cfg_.runtime_key, std::to_string(whole)});
      return out;
    }
    gateway::Split split = gateway::best_split(static_cast<int>(cfg_.canary.size()), static_cast<int>(cfg_.stable.size()), p, kMaxWeight);
    effective = split.share;
    for (const std::string& cluster : cfg_.canary) out.push_back({key_of(cluster), std::to_string(split.canary)});
    for (const std::string& cluster : cfg_.stable) out.push_back({key_of(cluster), std::to_string(split.stable)});
    return out;
  }

  // The share the runtime gives now; nullopt when a key is unset (the route's configured
  // weights apply then, and the admin interface does not show them).
  std::optional<double> share_now(const std::map<std::string, std::string>& rt) const {
    auto number = [&](const std::string& key) -> std::optional<double> {
      auto it = rt.find(key);
      if (it == rt.end() || it->second.empty()) return std::nullopt;
      char* end = nullptr;
      double v = std::strtod(it->second.c_str(), &end);
      if (end == it->second.c_str() || *end != '\0' || v < 0) throw Stop{error_result(where() + ": runtime key " + key + " holds \"" + it->second + "\", not a number")};
      return v;
    };
    if (!cfg_.weighted()) {
      std::optional<double> v = number(cfg_.runtime_key);
      if (!v) return std::nullopt;
      return std::min(*v, 100.0);
    }
    double canary = 0, stable = 0;
    for (const auto& [group, sum] : {std::pair{&cfg_.canary, &canary}, std::pair{&cfg_.stable, &stable}})
      for (const std::string& cluster : *group) {
        std::optional<double> v = number(key_of(cluster));
        if (!v) return std::nullopt;
        *sum += *v;
      }
    return canary + stable > 0 ? std::optional<double>(gateway::share_of(canary, stable)) : std::nullopt;
  }

  std::optional<Call> undo_from(const std::map<std::string, std::string>& rt) const {
    if (std::optional<double> share = share_now(rt)) return make_call("weight", {{"canary", Value::percent(*share)}});
    return make_call("reset_weight", {});
  }

  Result weight(const Call& c) {
    double p = 0, effective = 0;
    std::string why;
    if (!gateway::percent_arg(c, "canary", p, why)) return failed_result(where() + ": weight: " + why);
    auto values = values_for(p, effective);
    std::map<std::string, std::string> before = read_runtime();
    Result r = ok_result(Value::percent(std::round(effective * 100) / 100));
    r.undo = undo_from(before);
    bool same = true;
    for (const auto& [k, v] : values) same = same && before[k] == v;
    if (same) {
      r.replayed = applied_.seen(c.key);
      return r;
    }
    modify(values);
    if (std::fabs(effective - p) > 1e-9) r.message = "the closest share the runtime values give is " + gateway::format_percent(effective);
    return r;
  }

  // Removes gray's overrides: the route's configured weights apply again.
  Result reset_weight(const Call& c) {
    std::map<std::string, std::string> before = read_runtime();
    std::vector<std::pair<std::string, std::string>> values;
    for (const std::string& key : keys()) values.push_back({key, ""});
    modify(values);
    Result r = ok_result();
    r.undo = undo_from(before);
    return r;
  }

  Result weight_of(const Call& c) {
    std::string group = gateway::text_arg(c, "group");
    if (group != "canary" && group != "stable") return failed_result(where() + ": weight_of: group must be canary or stable, not \"" + group + "\"");
    std::optional<double> share = share_now(read_runtime());
    if (!share) {
      Result r;
      r.status = Result::Status::NoData;
      r.message = where() + ": runtime key(s) under " + cfg_.runtime_key + " are not set; the route's configured weights apply and /runtime does not show them";
      return r;
    }
    return ok_result(Value::percent(std::round((group == "canary" ? *share : 100 - *share) * 100) / 100));
  }

  // ---- live counts -------------------------------------------------------------------------

  Result counts(const Call& c) {
    std::string target = gateway::record_address(c);
    if (target.empty()) target = gateway::text_arg(c, "server");
    http::Response resp = send("GET", "/clusters?format=json");
    json j = json::parse(resp.body, nullptr, false);
    if (!resp.success() || j.is_discarded() || !j.is_object() || !j.contains("cluster_statuses"))
      return error_result(where() + ": GET /clusters?format=json: unexpected answer: HTTP " + std::to_string(resp.status) + " " + resp.body.substr(0, 200));
    std::set<std::string> ours(cfg_.canary.begin(), cfg_.canary.end());
    ours.insert(cfg_.stable.begin(), cfg_.stable.end());
    // Active requests (sessions) or connections to the host, over the clusters it is in.
    const std::string stat = c.op == "sessions" ? "rq_active" : "cx_active";
    double total = 0;
    bool found = false;
    for (const json& cluster : j["cluster_statuses"]) {
      if (!ours.empty() && !ours.count(cluster.value("name", ""))) continue;
      for (const json& host : cluster.value("host_statuses", json::array())) {
        const json& sa = host.value("address", json::object()).value("socket_address", json::object());
        std::string addr = sa.value("address", "") + ":" + std::to_string(sa.value("port_value", 0));
        if (addr != target) continue;
        found = true;
        for (const json& s : host.value("stats", json::array()))
          if (s.value("name", "") == stat) total += s["value"].is_string() ? std::atof(s["value"].get<std::string>().c_str()) : s["value"].get<double>();
      }
    }
    if (!found) return failed_result(where() + ": no upstream host " + target + " in the clusters " + (ours.empty() ? "" : "of this gateway ") + "(give the server as address:port)");
    return ok_result(Value::number(total));
  }

  std::string instance_;
  Config cfg_;
  http::Client client_;
  gateway::AppliedKeys applied_;
  double deadline_ = 0;
};

Config read_config(const std::string& instance, const Value& config) {
  Config cfg;
  cfg.admin_url = config_string(instance, config, "admin_url");
  while (!cfg.admin_url.empty() && cfg.admin_url.back() == '/') cfg.admin_url.pop_back();
  if (cfg.admin_url.rfind("http://", 0) != 0 && cfg.admin_url.rfind("https://", 0) != 0)
    throw DriverError(instance + ": field 'admin_url' must be an http:// or https:// URL such as http://127.0.0.1:9901");
  cfg.runtime_key = config_string(instance, config, "runtime_key");
  if (cfg.runtime_key.empty() || cfg.runtime_key.find_first_of(" &=?#") != std::string::npos)
    throw DriverError(instance + ": field 'runtime_key' must be a runtime key such as routing.traffic_split.checkout");
  cfg.stable = config_strings(instance, config, "stable", false);
  cfg.canary = config_strings(instance, config, "canary", false);
  if (cfg.stable.empty() != cfg.canary.empty())
    throw DriverError(instance + ": give both 'stable' and 'canary' clusters (weighted_clusters), or neither (runtime_fraction)");
  return cfg;
}

}  // namespace

std::unique_ptr<Driver> make_envoy(const std::string& instance, const Value& config, const DriverEnv& env) {
  return std::make_unique<EnvoyDriver>(instance, read_config(instance, config), env);
}

}  // namespace gray::plugins
