// The simulated gateway's operations: weights, server states, live counts, and the routing
// and scaling extensions (see drivers.h). Each change answers with its compensation.
#include <algorithm>
#include <cmath>

#include "plugins/sim/args.h"
#include "plugins/sim/world.h"

namespace gray::sim {

using namespace detail;

namespace {

Value route_value(const Route& r) {
  return Value::of_map({{"match", Value::string(r.match)},
                        {"name", Value::string(r.name)},
                        {"op", Value::string(r.op)},
                        {"value", Value::string(r.value)},
                        {"target", Value::string(r.target)}});
}

bool route_of(const Value& args, Route& r, std::string& why) {
  auto text = [&](const char* k) {
    auto it = args.fields().find(k);
    return it == args.fields().end() ? std::string() : it->second.text();
  };
  r.match = text("match");
  r.name = text("name");
  r.op = text("op");
  r.target = text("target");
  auto v = args.fields().find("value");
  if (v != args.fields().end()) {
    // A list of ranges is kept as one comma-separated string.
    r.value = v->second.text();
  }
  if (r.match != "header" && r.match != "cookie" && r.match != "ip") {
    why = "route: match must be header, cookie or ip, got \"" + r.match + "\"";
    return false;
  }
  if (r.match != "ip" && r.name.empty()) {
    why = "route: a " + r.match + " rule needs a name";
    return false;
  }
  if (r.op.empty()) r.op = "==";
  if (r.op != "==" && r.op != "~") {
    why = "route: op must be == or ~, got \"" + r.op + "\"";
    return false;
  }
  if (r.target.empty()) {
    why = "route: a target (canary, stable or a version) is required";
    return false;
  }
  return true;
}

Value call_args_map(const Call& c) { return Value::of_map(Map(c.args.begin(), c.args.end())); }

}  // namespace

Result World::gateway_op(Gateway& g, const Call& c) {
  const std::string& op = c.op;
  auto find_server = [&](const std::string& name) -> Server* {
    for (Server& s : g.servers)
      if (s.name == name) return &s;
    // A host stands for the server it runs: by name, addr:port or addr.
    int h = find_host(name);
    if (h >= 0)
      for (Server& s : g.servers)
        if (s.host == h) return &s;
    return nullptr;
  };

  if (op == "weight") {
    const Value* p = arg(c, "canary");
    if (!p || !p->is_numeric()) return failed("weight: canary must be a percentage");
    double before = g.canary_percent;
    g.canary_percent = std::clamp(p->num, 0.0, 100.0);
    Result r = ok();
    r.undo = make_call("weight", {{"canary", Value::percent(before)}});
    return r;
  }
  if (op == "drain" || op == "ready" || op == "maint") {
    std::string name = arg_text(c, "server");
    Server* s = find_server(name);
    if (!s) return failed("gateway " + g.name + " has no server \"" + name + "\"");
    ServerState before = s->state;
    s->state = op == "drain" ? ServerState::Drain : op == "ready" ? ServerState::Ready : ServerState::Maint;
    Result r = ok();
    r.undo = make_call(server_state_name(before), {{"server", *arg(c, "server")}});
    return r;
  }
  if (op == "sessions" || op == "connections") {
    std::string name = arg_text(c, "server");
    Server* s = find_server(name);
    if (!s) return failed("gateway " + g.name + " has no server \"" + name + "\"");
    double n = s->sessions;
    // Connections: the sessions' keep-alive connections plus requests in flight.
    if (op == "connections") n += s->rate * behaviour_of(s->host, now_).latency_ms;
    return ok(Value::number(std::round(n)));
  }
  if (op == "weight_of") {
    std::string group = arg_text(c, "group");
    if (group != "canary" && group != "stable") return failed("weight_of: group must be canary or stable, got \"" + group + "\"");
    compute_flows(now_);
    double canary = g.group_flow[1].served, total = g.group_flow[0].served + g.group_flow[1].served;
    double share = total > 0 ? canary / total : g.canary_percent / 100.0;
    return ok(Value::percent(100 * (group == "canary" ? share : 1 - share)));
  }
  if (op == "route" || op == "unroute") {
    Route rt;
    std::string why;
    if (!route_of(call_args_map(c), rt, why)) return failed(why);
    Result r = ok();
    if (op == "route") {
      g.routes.push_back(rt);
      r.undo = make_call("unroute", c.args);
    } else {
      auto it = std::find(g.routes.begin(), g.routes.end(), rt);
      if (it != g.routes.end()) {
        g.routes.erase(it);
        r.undo = make_call("route", c.args);
      }
    }
    return r;
  }
  if (op == "clear_routes" || op == "set_routes") {
    List before;
    for (const Route& rt : g.routes) before.push_back(route_value(rt));
    std::vector<Route> next;
    if (op == "set_routes") {
      const Value* list = arg(c, "routes");
      if (!list) return failed("set_routes: routes is required");
      for (const Value& item : list->items()) {
        Route rt;
        std::string why;
        if (!route_of(item, rt, why)) return failed(why);
        next.push_back(rt);
      }
    }
    g.routes = next;
    Result r = ok();
    r.undo = make_call("set_routes", {{"routes", Value::of_list(std::move(before))}});
    return r;
  }
  if (op == "scale") {
    std::string group = arg_text(c, "group");
    const Value* n = arg(c, "count");
    if (group != "canary" && group != "stable") return failed("scale: group must be canary or stable, got \"" + group + "\"");
    if (!n || !n->is_numeric() || n->num < 0) return failed("scale: count must be a number of servers");
    int gi = group == "canary" ? 1 : 0;
    int size = static_cast<int>(
        std::count_if(g.servers.begin(), g.servers.end(), [&](const Server& s) { return s.canary == (gi == 1); }));
    int before = g.scale[gi] < 0 ? size : g.scale[gi];
    g.scale[gi] = static_cast<int>(n->num);
    Result r = ok();
    r.undo = make_call("scale", {{"group", Value::string(group)}, {"count", Value::number(before)}});
    return r;
  }
  return error("the simulated gateway has no operation \"" + op + "\"");
}

}  // namespace gray::sim
