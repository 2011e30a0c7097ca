// Helpers for the gateway driver tests: configurations and calls as values, and counting which
// backend server answered a series of requests.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "plugins/api.h"
#include "plugins/driver.h"
#include "plugins/http/http.h"
#include "runtime/value.h"

namespace gray::testing {

inline Value strings(const std::vector<std::string>& items) {
  List l;
  for (const std::string& s : items) l.push_back(Value::string(s));
  return Value::of_list(std::move(l));
}

inline plugins::Call gw_call(const std::string& op, std::map<std::string, Value> args = {}, const std::string& key = "") {
  plugins::Call c;
  c.op = op;
  c.args = std::move(args);
  c.key = key;
  c.timeout_ms = 10000;
  return c;
}

inline plugins::Call weight_call(double percent, const std::string& key = "k-weight") {
  return gw_call("weight", {{"canary", Value::percent(percent)}}, key);
}

inline plugins::Call server_call(const std::string& op, const std::string& server, const std::string& key = "") {
  return gw_call(op, {{"server", Value::string(server)}}, key.empty() ? "k-" + op + "-" + server : key);
}

inline plugins::Call header_route(const std::string& name, const std::string& op, const std::string& value,
                                  const std::string& target = "canary", const std::string& key = "k-route") {
  return gw_call("route",
                 {{"match", Value::string("header")}, {"name", Value::string(name)}, {"op", Value::string(op)},
                  {"value", Value::string(value)}, {"target", Value::string(target)}},
                 key);
}

inline plugins::DriverEnv quiet_env(const std::string& base_dir = ".") {
  plugins::DriverEnv env = plugins::DriverEnv::process(base_dir);
  env.note = [](const std::string&) {};
  return env;
}

// GETs `url` `n` times and counts the answers by body (the test servers answer their name).
inline std::map<std::string, int> count_answers(const std::string& url, int n, std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Client client;
  std::map<std::string, int> seen;
  for (int i = 0; i < n; ++i) {
    http::Request r;
    r.url = url;
    r.headers = headers;
    r.timeout_ms = 3000;
    http::Response resp = client.send(r);
    seen[resp.success() ? resp.body : "error " + std::to_string(resp.status) + " " + resp.error]++;
  }
  return seen;
}

inline int sum_prefix(const std::map<std::string, int>& seen, const std::string& prefix) {
  int n = 0;
  for (const auto& [k, v] : seen)
    if (k.rfind(prefix, 0) == 0) n += v;
  return n;
}

}  // namespace gray::testing
