#include "plugins/haproxy/haproxy.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "plugins/gateway/common.h"
#include "plugins/haproxy/haproxy_text.h"
#include "plugins/haproxy/runtime_api.h"

namespace gray::plugins {

namespace {

using haproxy::Admin;
using haproxy::GrayEntry;
using haproxy::MapEntry;
using haproxy::RuntimeApi;
using haproxy::Server;
using gateway::Route;

constexpr int kMaxWeight = 256;  // HAProxy's limit for a server weight

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

struct Config {
  std::string socket, address, backend, map;
  std::vector<std::string> stable, canary;
  double timeout_ms = 5000;
};

// Ends an operation early with its result (HAProxy's refusal, or an error), from inside a
// helper; call() turns it back into the Result.
struct Stop {
  Result result;
};

enum class Group { None, Stable, Canary };

struct Tally {
  double weight = 0;
  int count = 0;
  bool in_rotation = true;  // false: no server of the group is ready; all of them were counted
};

Call make_call(std::string op, std::map<std::string, Value> args) {
  Call c;
  c.op = std::move(op);
  c.args = std::move(args);
  return c;
}

class HaproxyDriver final : public Driver {
 public:
  HaproxyDriver(std::string instance, Config cfg)
      : instance_(std::move(instance)), cfg_(std::move(cfg)), api_(cfg_.socket, cfg_.address) {}

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
      return plan_undo(c);
    } catch (const Stop&) {
      return std::nullopt;  // the call itself will report what is wrong
    }
  }

 private:
  Result dispatch(const Call& c) {
    const std::string& op = c.op;
    if (op == "weight") return weight(c);
    if (op == "drain" || op == "ready" || op == "maint") return set_state(c);
    if (op == "sessions" || op == "connections") return counts(c);
    if (op == "weight_of") return weight_of(c);
    if (op == "scale") return scale(c);
    if (op == "set_states") return set_states(c);
    if (op == "route") return route(c);
    if (op == "unroute") return unroute(c);
    if (op == "clear_routes" || op == "set_routes") return replace_routes(c);
    return failed_result(where() + ": the haproxy driver has no operation '" + op + "'");
  }

  std::optional<Call> plan_undo(const Call& c) {
    const std::string& op = c.op;
    if (op == "weight") {
      std::optional<double> share = planned_share(servers());
      if (!share) return std::nullopt;
      return make_call("weight", {{"canary", Value::percent(*share)}});
    }
    if (op == "drain" || op == "ready" || op == "maint") {
      std::vector<Server> list = servers();
      const Server* s = find(list, resolve(c, list));
      if (!s) return std::nullopt;
      Call undo = c;
      undo.op = haproxy::admin_name(s->admin());
      undo.key.clear();
      return undo;
    }
    if (op == "scale") return scale_undo(servers(), gateway::text_arg(c, "group"));
    if (op == "set_states") return states_undo(servers(), c);
    if (op == "route" || op == "unroute") return route_undo(c);
    if (op == "clear_routes" || op == "set_routes") return make_call("set_routes", {{"routes", gateway::routes_value(gray_routes())}});
    return std::nullopt;
  }

  // ---- the runtime API ---------------------------------------------------------------------

  std::string where() const { return api_.where(); }

  // HAProxy's answer to `command`; an error when there is none. `shown` replaces the command
  // in messages (map keys are long patterns).
  std::string ask(const std::string& command, bool repeatable, const std::string& shown = "") {
    const std::string what = shown.empty() ? command : shown;
    double left = std::min(cfg_.timeout_ms, deadline_ - now_ms());
    if (left <= 0) throw Stop{error_result(where() + ": " + what + ": the call's timeout ran out")};
    RuntimeApi::Reply reply = api_.run(command, repeatable, left);
    if (!reply.delivered) throw Stop{error_result(where() + ": " + what + ": " + reply.error)};
    if (reply.text.rfind("Permission denied", 0) == 0)
      throw Stop{failed_result(where() + ": " + what + ": " + reply.text + " (the stats socket needs `level admin`)")};
    return reply.text;
  }

  // A command that answers nothing when it succeeds; any answer is HAProxy's refusal.
  void apply(const std::string& command, bool repeatable, const std::string& shown = "") {
    std::string text = ask(command, repeatable, shown);
    if (!text.empty()) throw Stop{failed_result(where() + ": " + (shown.empty() ? command : shown) + ": " + text)};
  }

  std::string server_path(const std::string& server) const { return RuntimeApi::escape(cfg_.backend + "/" + server); }

  // ---- servers -----------------------------------------------------------------------------

  std::vector<Server> servers() {
    const std::string cmd = "show servers state " + RuntimeApi::escape(cfg_.backend);
    std::string text = ask(cmd, true);
    std::vector<Server> list;
    if (!haproxy::parse_servers_state(text, cfg_.backend, list))
      throw Stop{failed_result(where() + ": " + cmd + ": " + (text.empty() ? "no answer" : text))};
    for (const auto& [names, label] : {std::pair{&cfg_.stable, "stable"}, std::pair{&cfg_.canary, "canary"}})
      for (const std::string& n : *names)
        if (!find(list, n))
          throw Stop{failed_result(where() + ": backend " + cfg_.backend + " has no server named " + n + " (listed in " + label + ")")};
    return list;
  }

  static Server* find(std::vector<Server>& list, const std::string& name) {
    for (Server& s : list)
      if (s.name == name) return &s;
    return nullptr;
  }
  static const Server* find(const std::vector<Server>& list, const std::string& name) {
    for (const Server& s : list)
      if (s.name == name) return &s;
    return nullptr;
  }

  Group group_of(const std::string& name) const {
    if (std::count(cfg_.canary.begin(), cfg_.canary.end(), name)) return Group::Canary;
    if (std::count(cfg_.stable.begin(), cfg_.stable.end(), name)) return Group::Stable;
    return Group::None;
  }

  // The server a call names: a server of the backend by name, else the one at the address of
  // the host's inventory record (or of an "addr:port" argument).
  std::string resolve(const Call& c, const std::vector<Server>& list) const {
    std::string name = gateway::text_arg(c, "server");
    if (find(list, name)) return name;
    std::string addr = gateway::record_addr(c);
    int port = 0;
    if (auto it = c.args.find("port"); it != c.args.end() && it->second.is_numeric()) port = static_cast<int>(it->second.num);
    if (addr.empty()) {
      size_t colon = name.rfind(':');
      if (colon == std::string::npos) return name;
      addr = name.substr(0, colon);
      port = std::atoi(name.c_str() + colon + 1);
    }
    std::vector<std::string> hits;
    for (const Server& s : list)
      if (s.addr == addr && (port == 0 || s.port == port)) hits.push_back(s.name);
    if (hits.size() == 1) return hits[0];
    if (hits.size() > 1)
      throw Stop{failed_result(where() + ": " + name + " matches several servers of backend " + cfg_.backend + "; name one of them")};
    return name;
  }

  // What a group weighs: its ready servers, or all of them when none is ready, so that the
  // share is kept while a group is out of rotation and applies again when it comes back.
  Tally counted(const std::vector<Server>& list, Group g) const {
    Tally ready, all;
    for (const Server& s : list) {
      if (group_of(s.name) != g) continue;
      all.weight += s.weight;
      all.count++;
      if (s.admin() == Admin::Ready) {
        ready.weight += s.weight;
        ready.count++;
      }
    }
    if (ready.count > 0) return ready;
    all.in_rotation = false;
    return all;
  }

  // The canary share the weights stand for, whatever the servers' states.
  std::optional<double> planned_share(const std::vector<Server>& list) const {
    Tally c = counted(list, Group::Canary), s = counted(list, Group::Stable);
    if (c.weight + s.weight <= 0) return std::nullopt;
    return gateway::share_of(c.weight, s.weight);
  }

  // Gives every server of each group the group's weight. Returns how many changed.
  int set_weights(std::vector<Server>& list, const gateway::Split& split) {
    int changed = 0;
    for (Server& s : list) {
      Group g = group_of(s.name);
      if (g == Group::None) continue;
      int w = g == Group::Canary ? split.canary : split.stable;
      if (s.weight == w) continue;
      apply("set server " + server_path(s.name) + " weight " + std::to_string(w), true);
      s.weight = w;
      ++changed;
    }
    return changed;
  }

  // After servers changed state: weights that keep the canary share it had before.
  int rebalance(std::vector<Server>& list, std::optional<double> share) {
    if (!share) return 0;
    Tally c = counted(list, Group::Canary), s = counted(list, Group::Stable);
    if (std::fabs(gateway::share_of(c.weight, s.weight) - *share) < 0.005) return 0;
    return set_weights(list, gateway::best_split(c.count, s.count, *share, kMaxWeight));
  }

  void set_admin(const std::string& server, Admin want) {
    apply("set server " + server_path(server) + " state " + haproxy::admin_name(want), true);
  }

  // ---- operations --------------------------------------------------------------------------

  Result weight(const Call& c) {
    double p = 0;
    std::string why;
    if (!gateway::percent_arg(c, "canary", p, why)) return failed_result(where() + ": weight: " + why);
    std::vector<Server> list = servers();
    std::optional<double> before = planned_share(list);
    Tally ct = counted(list, Group::Canary), st = counted(list, Group::Stable);
    gateway::Split split = gateway::best_split(ct.count, st.count, p, kMaxWeight);
    int changed = set_weights(list, split);
    Result r = ok_result(Value::percent(std::round(split.share * 100) / 100));
    r.message = "canary " + gateway::format_percent(p) + ": canary servers weight " + std::to_string(split.canary) +
                ", stable servers weight " + std::to_string(split.stable);
    if (!split.exact) r.message += "; the closest share HAProxy's weights allow is " + gateway::format_percent(split.share);
    if (!ct.in_rotation && p > 0) r.message += "; no canary server is in rotation now: the share applies once they are ready";
    if (before) r.undo = make_call("weight", {{"canary", Value::percent(*before)}});
    r.replayed = changed == 0 && applied_.seen(c.key);
    return r;
  }

  Result set_state(const Call& c) {
    Admin want = Admin::Ready;
    haproxy::parse_admin(c.op, want);
    std::vector<Server> list = servers();
    std::string name = resolve(c, list);
    const Server* s = find(list, name);
    if (!s) {
      set_admin(name, want);  // HAProxy names what is wrong ("No such server.")
      return ok_result();
    }
    std::optional<double> share = planned_share(list);
    Admin before = s->admin();
    if (before != want) {
      set_admin(name, want);
      list = servers();
      s = find(list, name);
      if (s && s->admin() != want)
        return failed_result(where() + ": set server " + cfg_.backend + "/" + name + " state " + haproxy::admin_name(want) +
                             ": HAProxy keeps it in " + haproxy::admin_name(s->admin()) +
                             " (configured `disabled`, or waiting for DNS resolution)");
    }
    int reweighted = group_of(name) == Group::None ? 0 : rebalance(list, share);
    Result r = ok_result();
    r.message = "server " + name + " " + haproxy::admin_name(want) + " (was " + haproxy::admin_name(before) + ")";
    if (reweighted) r.message += "; weights rebalanced to keep the canary at " + gateway::format_percent(*share);
    Call undo = c;
    undo.op = haproxy::admin_name(before);
    undo.key.clear();
    r.undo = undo;
    r.replayed = before == want && reweighted == 0 && applied_.seen(c.key);
    return r;
  }

  Result counts(const Call& c) {
    std::vector<Server> list = servers();
    std::string name = resolve(c, list);
    const std::string cmd = "show stat " + RuntimeApi::escape(cfg_.backend) + " 4 -1";
    std::string text = ask(cmd, true);
    std::vector<std::map<std::string, std::string>> rows;
    if (!haproxy::parse_stat_csv(text, rows)) return failed_result(where() + ": " + cmd + ": " + text);
    for (const auto& row : rows) {
      auto sv = row.find("svname");
      if (sv == row.end() || sv->second != name) continue;
      auto num = [&](const char* col) -> std::optional<double> {
        auto it = row.find(col);
        if (it == row.end()) return std::nullopt;
        return it->second.empty() ? 0.0 : std::atof(it->second.c_str());
      };
      std::optional<double> scur = num("scur");
      if (!scur) return error_result(where() + ": " + cmd + ": the answer has no scur column");
      if (c.op == "sessions") return ok_result(Value::number(*scur));
      // Connections to the server: in use by streams, plus idle ones kept for reuse.
      std::optional<double> used = num("used_conn_cur"), idle = num("idle_conn_cur"), safe = num("safe_conn_cur");
      if (!used) return ok_result(Value::number(*scur));
      return ok_result(Value::number(*used + idle.value_or(0) + safe.value_or(0)));
    }
    return failed_result(where() + ": " + cmd + ": backend " + cfg_.backend + " has no server named " + name);
  }

  Result weight_of(const Call& c) {
    std::string group = gateway::text_arg(c, "group");
    if (group != "canary" && group != "stable")
      return failed_result(where() + ": weight_of: group must be canary or stable, not \"" + group + "\"");
    std::vector<Server> list = servers();
    double canary = 0, stable = 0;
    for (const Server& s : list) {
      if (!s.takes_traffic()) continue;
      Group g = group_of(s.name);
      if (g == Group::Canary) canary += s.weight;
      if (g == Group::Stable) stable += s.weight;
    }
    if (canary + stable <= 0) {
      Result r;
      r.status = Result::Status::NoData;
      r.message = where() + ": no server of the groups in backend " + cfg_.backend + " takes traffic now (maint, drain, down or weight 0)";
      return r;
    }
    double share = gateway::share_of(canary, stable);
    return ok_result(Value::percent(std::round((group == "canary" ? share : 100 - share) * 100) / 100));
  }

  const std::vector<std::string>& members(const std::string& group) const { return group == "canary" ? cfg_.canary : cfg_.stable; }

  Result scale(const Call& c) {
    std::string group = gateway::text_arg(c, "group"), why;
    int count = 0;
    if (group != "canary" && group != "stable") return failed_result(where() + ": scale: group must be canary or stable, not \"" + group + "\"");
    if (!gateway::count_arg(c, "count", count, why)) return failed_result(where() + ": scale: " + why);
    const std::vector<std::string>& names = members(group);
    if (count > static_cast<int>(names.size()))
      return failed_result(where() + ": scale " + group + " to " + std::to_string(count) + ": the group has " +
                           std::to_string(names.size()) + " servers");
    std::vector<Server> list = servers();
    std::optional<Call> undo = scale_undo(list, group);
    std::map<std::string, Admin> want;
    for (size_t i = 0; i < names.size(); ++i) want[names[i]] = static_cast<int>(i) < count ? Admin::Ready : Admin::Maint;
    Result r = apply_states(c, list, want);
    if (r.ok()) {
      r.message = group + " served by " + std::to_string(count) + " of " + std::to_string(names.size()) + " servers" + r.message;
      r.undo = undo;
    }
    return r;
  }

  Result set_states(const Call& c) {
    auto it = c.args.find("states");
    if (it == c.args.end() || it->second.kind != Value::Kind::Map) return failed_result(where() + ": set_states: states must be a map of server to state");
    std::map<std::string, Admin> want;
    for (const auto& [name, v] : it->second.fields()) {
      Admin a;
      if (!haproxy::parse_admin(v.text(), a)) return failed_result(where() + ": set_states: " + name + ": state must be ready, drain or maint");
      want[name] = a;
    }
    std::vector<Server> list = servers();
    std::optional<Call> undo = states_undo(list, c);
    Result r = apply_states(c, list, want);
    if (r.ok()) r.undo = undo;
    return r;
  }

  // Puts servers in the wanted states, then restores the canary share they had.
  Result apply_states(const Call& c, std::vector<Server>& list, const std::map<std::string, Admin>& want) {
    std::optional<double> share = planned_share(list);
    int changed = 0;
    for (const auto& [name, a] : want) {
      const Server* s = find(list, name);
      if (s && s->admin() == a) continue;
      set_admin(name, a);
      ++changed;
    }
    if (changed) list = servers();
    int reweighted = rebalance(list, share);
    Result r = ok_result();
    if (reweighted) r.message = "; weights rebalanced to keep the canary at " + gateway::format_percent(*share);
    r.replayed = changed == 0 && reweighted == 0 && applied_.seen(c.key);
    return r;
  }

  // The call that puts a group back as it is now: a scale when its ready servers are the
  // first N and the others are in maintenance, else each server's state.
  std::optional<Call> scale_undo(const std::vector<Server>& list, const std::string& group) const {
    if (group != "canary" && group != "stable") return std::nullopt;
    const std::vector<std::string>& names = members(group);
    size_t ready = 0;
    while (ready < names.size() && find(list, names[ready]) && find(list, names[ready])->admin() == Admin::Ready) ++ready;
    bool prefix = true;
    Map states;
    for (size_t i = 0; i < names.size(); ++i) {
      const Server* s = find(list, names[i]);
      if (!s) return std::nullopt;
      states[names[i]] = Value::string(haproxy::admin_name(s->admin()));
      if (i >= ready && s->admin() != Admin::Maint) prefix = false;
    }
    if (prefix) return make_call("scale", {{"group", Value::string(group)}, {"count", Value::number(static_cast<double>(ready))}});
    return make_call("set_states", {{"states", Value::of_map(std::move(states))}});
  }

  std::optional<Call> states_undo(const std::vector<Server>& list, const Call& c) const {
    auto it = c.args.find("states");
    if (it == c.args.end() || it->second.kind != Value::Kind::Map) return std::nullopt;
    Map states;
    for (const auto& [name, v] : it->second.fields())
      if (const Server* s = find(list, name)) states[name] = Value::string(haproxy::admin_name(s->admin()));
    return make_call("set_states", {{"states", Value::of_map(std::move(states))}});
  }

  // ---- routes ------------------------------------------------------------------------------

  std::vector<MapEntry> map_entries() {
    if (cfg_.map.empty())
      throw Stop{failed_result(where() + ": routes need the `map` field: the map file the HAProxy configuration looks routes up in (see the haproxy driver's README)")};
    const std::string cmd = "show map " + RuntimeApi::escape(cfg_.map);
    std::string text = ask(cmd, true);
    std::vector<MapEntry> entries;
    if (!haproxy::parse_map_listing(text, entries))
      throw Stop{failed_result(where() + ": " + cmd + ": " + text + " (the map field must name the map file exactly as the HAProxy configuration does)")};
    return entries;
  }

  static std::vector<GrayEntry> gray_entries(const std::vector<MapEntry>& entries) {
    std::vector<GrayEntry> out;
    for (const MapEntry& e : entries)
      if (auto g = haproxy::read_gray_entry(e)) out.push_back(*g);
    return out;
  }

  std::vector<Route> gray_routes() {
    std::vector<Route> out;
    for (const GrayEntry& g : gray_entries(map_entries())) out.push_back(g.route);
    return out;
  }

  Route route_of(const Call& c) const {
    Route rt;
    std::string why;
    if (!gateway::route_from_args(c.args, rt, why)) throw Stop{failed_result(where() + ": " + why)};
    return rt;
  }

  std::string add_map_command(const std::string& version, const std::string& key, const std::string& value) const {
    return "add map " + version + RuntimeApi::escape(cfg_.map) + " " + RuntimeApi::escape(key) + " " + RuntimeApi::escape(value);
  }

  Result route(const Call& c) {
    Route rt = route_of(c);
    std::string digest = gateway::key_digest(c.key), key, why;
    if (!haproxy::route_entry(rt, digest, key, why)) return failed_result(where() + ": " + why);
    for (const GrayEntry& g : gray_entries(map_entries())) {
      if (g.route != rt) continue;
      // Already in the map: by this very call before a restart, or by an earlier one.
      Result r = ok_result();
      r.replayed = g.digest == digest || applied_.seen(c.key);
      if (g.digest == digest) r.undo = make_call("unroute", gateway::route_args(rt));
      r.message = "route already present: " + rt.describe();
      return r;
    }
    apply(add_map_command("", key, rt.target), false, "add map " + cfg_.map + " (" + rt.describe() + ")");
    Result r = ok_result();
    r.undo = make_call("unroute", gateway::route_args(rt));
    return r;
  }

  Result unroute(const Call& c) {
    Route rt = route_of(c);
    int removed = 0;
    for (const GrayEntry& g : gray_entries(map_entries())) {
      if (g.route != rt) continue;
      std::string text = ask("del map " + RuntimeApi::escape(cfg_.map) + " " + RuntimeApi::escape(g.key), true,
                             "del map " + cfg_.map + " (" + rt.describe() + ")");
      if (!text.empty() && text.rfind("Key not found", 0) != 0)
        return failed_result(where() + ": del map " + cfg_.map + " (" + rt.describe() + "): " + text);
      ++removed;
    }
    Result r = ok_result();
    if (removed) r.undo = make_call("route", gateway::route_args(rt));
    r.replayed = removed == 0 && applied_.seen(c.key);
    return r;
  }

  std::optional<Call> route_undo(const Call& c) {
    Route rt = route_of(c);
    std::string digest = gateway::key_digest(c.key);
    for (const GrayEntry& g : gray_entries(map_entries())) {
      if (g.route != rt) continue;
      if (c.op == "unroute") return make_call("route", gateway::route_args(rt));
      // A rule that was there before this call is not this call's to remove.
      if (g.digest != digest) return std::nullopt;
      return make_call("unroute", gateway::route_args(rt));
    }
    if (c.op == "unroute") return std::nullopt;
    return make_call("unroute", gateway::route_args(rt));
  }

  // clear_routes and set_routes: the map's other entries, then the given rules, swapped in at
  // once with a new map version so that requests never see half of the change.
  Result replace_routes(const Call& c) {
    std::vector<Route> wanted;
    std::string why;
    if (c.op == "set_routes" && !gateway::routes_from_call(c, wanted, why)) return failed_result(where() + ": " + why);
    std::vector<MapEntry> entries = map_entries();
    std::vector<GrayEntry> current = gray_entries(entries);
    std::vector<Route> before;
    for (const GrayEntry& g : current) before.push_back(g.route);
    Result r = ok_result();
    r.undo = make_call("set_routes", {{"routes", gateway::routes_value(before)}});
    if (before == wanted) {
      r.replayed = applied_.seen(c.key);
      return r;
    }
    std::vector<std::pair<std::string, std::string>> next;
    for (const MapEntry& e : entries)
      if (!haproxy::read_gray_entry(e)) next.push_back({e.key, e.value});
    std::string digest = gateway::key_digest(c.key);
    for (const Route& rt : wanted) {
      std::string key;
      if (!haproxy::route_entry(rt, digest, key, why)) return failed_result(where() + ": " + why);
      next.push_back({key, rt.target});
    }
    commit_map(next);
    r.message = std::to_string(before.size()) + " rule(s) replaced by " + std::to_string(wanted.size());
    return r;
  }

  void commit_map(const std::vector<std::pair<std::string, std::string>>& entries) {
    const std::string map = RuntimeApi::escape(cfg_.map);
    std::string text = ask("prepare map " + map, true);
    size_t colon = text.rfind(':');
    std::string version = colon == std::string::npos ? "" : text.substr(colon + 1);
    version.erase(0, version.find_first_not_of(' '));
    if (version.empty() || version.find_first_not_of("0123456789") != std::string::npos)
      throw Stop{failed_result(where() + ": prepare map " + cfg_.map + ": " + text)};
    for (const auto& [key, value] : entries)
      apply(add_map_command("@" + version + " ", key, value), true, "add map @" + version + " " + cfg_.map + " " + key.substr(0, 40) + "...");
    apply("commit map @" + version + " " + map, true);
  }

  std::string instance_;
  Config cfg_;
  RuntimeApi api_;
  gateway::AppliedKeys applied_;
  double deadline_ = 0;
};

Config read_config(const std::string& instance, const Value& config, const DriverEnv& env) {
  Config cfg;
  if (config_field(config, "socket")) cfg.socket = config_path(instance, config, "socket", env);
  cfg.address = config_string(instance, config, "address", "");
  if (cfg.socket.empty() == cfg.address.empty())
    throw DriverError(instance + ": give exactly one of the fields 'socket' (the runtime API unix socket) and 'address' (host:port)");
  cfg.backend = config_string(instance, config, "backend");
  cfg.stable = config_strings(instance, config, "stable");
  cfg.canary = config_strings(instance, config, "canary");
  // The map is named exactly as the HAProxy configuration names it, not relative to the pipeline.
  cfg.map = config_string(instance, config, "map", "");
  cfg.timeout_ms = config_ms(instance, config, "timeout", 5000);
  if (cfg.backend.empty()) throw DriverError(instance + ": field 'backend' must not be empty");
  if (cfg.stable.empty() || cfg.canary.empty()) throw DriverError(instance + ": fields 'stable' and 'canary' must each list at least one server");
  std::set<std::string> seen;
  for (const auto* names : {&cfg.stable, &cfg.canary})
    for (const std::string& n : *names) {
      if (n.empty() || n.find_first_of(" \t/;") != std::string::npos)
        throw DriverError(instance + ": \"" + n + "\" is not a HAProxy server name");
      if (!seen.insert(n).second) throw DriverError(instance + ": server " + n + " is listed twice in 'stable' and 'canary'");
    }
  return cfg;
}

}  // namespace

std::unique_ptr<Driver> make_haproxy(const std::string& instance, const Value& config, const DriverEnv& env) {
  return std::make_unique<HaproxyDriver>(instance, read_config(instance, config, env));
}

}  // namespace gray::plugins
