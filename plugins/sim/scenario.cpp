#include "plugins/sim/scenario.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string_view>

#include "plugins/sim/json_reader.h"

namespace gray::sim {

using json = nlohmann::json;

const char* state_name(HostState s) {
  switch (s) {
    case HostState::Up:
      return "up";
    case HostState::Stopped:
      return "stopped";
    case HostState::Installing:
      return "installing";
    case HostState::Down:
      return "down";
  }
  return "?";
}

bool parse_state(const std::string& s, HostState& out) {
  for (HostState h : {HostState::Up, HostState::Stopped, HostState::Installing, HostState::Down})
    if (s == state_name(h)) {
      out = h;
      return true;
    }
  return false;
}

const char* measure_name(Measure m) {
  switch (m) {
    case Measure::ErrorRate:
      return "error_rate";
    case Measure::LatencyP99:
      return "latency_p99_ms";
    case Measure::RequestRate:
      return "request_rate";
    case Measure::Sessions:
      return "sessions";
    case Measure::Connections:
      return "connections";
    case Measure::Instances:
      return "instances";
    case Measure::Value:
      return "value";
  }
  return "?";
}

const char* action_name(Action a) {
  switch (a) {
    case Action::Install:
      return "install";
    case Action::Stop:
      return "stop";
    case Action::Start:
      return "start";
    case Action::Fail:
      return "fail";
    case Action::Crash:
      return "crash";
    case Action::Check:
      return "check";
    case Action::Noop:
      return "noop";
  }
  return "?";
}

bool CallFault::matches(const std::string& k, const std::string& i, const std::string& o) const {
  return (kind == "*" || kind == k) && (instance == "*" || instance == i) && (op == "*" || op == o);
}

bool parse_duration(const std::string& s, double& ms) {
  if (s == "0") {
    ms = 0;
    return true;
  }
  static const std::regex re(R"(^([0-9]+(\.[0-9]+)?)(ms|s|m|h|d)$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return false;
  double n = std::stod(m[1].str());
  const std::string unit = m[3].str();
  double scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : unit == "h" ? 3600000 : 86400000;
  ms = n * scale;
  return true;
}

namespace {

using namespace detail;

bool read_interval(Reader& r, const json& o, const std::string& path, Interval& out) {
  if (!r.duration(o, "from", path, out.from_ms) || !r.duration(o, "to", path, out.to_ms)) return false;
  if (out.to_ms <= out.from_ms) return r.fail(join(path, "to"), "must be later than from");
  return true;
}

bool read_version(Reader& r, const json& v, const std::string& path, std::vector<VersionPoint>& out) {
  auto point = [&](const json& o, const std::string& p, VersionPoint& vp, bool needs_at) {
    if (!r.object(o, p, {"at", "error_rate", "latency_ms", "healthy"})) return false;
    if (needs_at && !o.contains("at")) return r.fail(join(p, "at"), "required");
    return r.duration(o, "at", p, vp.at_ms) && r.number(o, "error_rate", p, vp.error_rate, 0, 1) &&
           r.number(o, "latency_ms", p, vp.latency_ms, 0) && r.boolean(o, "healthy", p, vp.healthy);
  };
  out.clear();
  if (v.is_object()) {
    VersionPoint vp;
    if (!point(v, path, vp, false)) return false;
    vp.at_ms = 0;
    out.push_back(vp);
    return true;
  }
  if (!v.is_array()) return r.fail(path, "expected an object or a list of {at, ...} points, got " + type_of(v));
  if (v.empty()) return r.fail(path, "needs at least one point");
  for (size_t i = 0; i < v.size(); ++i) {
    VersionPoint vp = out.empty() ? VersionPoint{} : out.back();  // later points inherit what they do not say
    if (!point(v[i], at(path, i), vp, i > 0)) return false;
    if (!out.empty() && vp.at_ms <= out.back().at_ms) return r.fail(join(at(path, i), "at"), "times must increase");
    out.push_back(vp);
  }
  return true;
}

bool read_sessions(Reader& r, const json& o, const std::string& path, SessionSpec& s) {
  return r.object(o, path, {"duration", "per_request"}) && r.duration(o, "duration", path, s.duration_ms) &&
         r.number(o, "per_request", path, s.per_request, 0);
}

bool read_host(Reader& r, const json& o, const std::string& path, HostSpec& h) {
  if (!r.object(o, path, {"name", "addr", "port", "tags", "version", "mode", "state"})) return false;
  long long port = 0;
  std::string state = "up";
  if (!r.required_string(o, "name", path, h.name) || !r.string(o, "addr", path, h.addr) ||
      !r.integer(o, "port", path, port, 0, 65535) || !r.strings(o, "tags", path, h.tags) ||
      !r.string(o, "version", path, h.version) || !r.string(o, "mode", path, h.mode) || !r.string(o, "state", path, state))
    return false;
  if (h.name.empty()) return r.fail(join(path, "name"), "must not be empty");
  if (h.addr.empty()) h.addr = h.name;
  h.port = static_cast<int>(port);
  if (!parse_state(state, h.state) || h.state == HostState::Installing)
    return r.fail(join(path, "state"), "unknown state \"" + state + "\" (up, stopped, down)");
  return true;
}

bool read_gateway(Reader& r, const json& o, const std::string& path, GatewaySpec& g) {
  if (!r.object(o, path, {"stable", "canary", "rps", "weight", "route_share", "matches", "redispatch", "sessions"})) return false;
  if (!r.strings(o, "stable", path, g.stable) || !r.strings(o, "canary", path, g.canary) || !r.number(o, "rps", path, g.rps, 0) ||
      !r.number(o, "weight", path, g.weight, 0, 100) || !r.number(o, "route_share", path, g.route_share, 0, 1) ||
      !r.boolean(o, "redispatch", path, g.redispatch))
    return false;
  if (o.contains("matches")) {
    const std::string mp = join(path, "matches");
    if (!o["matches"].is_object()) return r.fail(mp, "expected an object, got " + type_of(o["matches"]));
    static const std::regex key_re(R"(^(header \S+|cookie \S+|ip)$)");
    for (const auto& [k, v] : o["matches"].items()) {
      if (!std::regex_match(k, key_re)) return r.fail(join(mp, k), "a match is \"header NAME\", \"cookie NAME\" or \"ip\"");
      double share = 0;
      if (!r.number(o["matches"], k.c_str(), mp, share, 0, 1)) return false;
      g.matches[k] = share;
    }
  }
  if (o.contains("sessions")) {
    SessionSpec s;
    if (!read_sessions(r, o["sessions"], join(path, "sessions"), s)) return false;
    g.sessions = s;
  }
  return true;
}

bool read_registry(Reader& r, const json& o, const std::string& path, RegistrySpec& g) {
  if (!r.object(o, path, {"members", "client_cache", "client_groups", "self_register_after", "rps", "canary"})) return false;
  long long groups = g.client_groups;
  if (o.contains("members")) {
    std::vector<std::string> m;
    if (!r.strings(o, "members", path, m)) return false;
    g.members = m;
  }
  if (!r.duration(o, "client_cache", path, g.client_cache_ms) || !r.integer(o, "client_groups", path, groups, 1, 64) ||
      !r.duration(o, "self_register_after", path, g.self_register_ms) || !r.number(o, "rps", path, g.rps, 0) ||
      !r.strings(o, "canary", path, g.canary))
    return false;
  if (g.client_cache_ms <= 0) return r.fail(join(path, "client_cache"), "must be longer than 0");
  g.client_groups = static_cast<int>(groups);
  return true;
}

bool read_measure(Reader& r, const std::string& s, const std::string& path, Measure& out) {
  for (Measure m : {Measure::ErrorRate, Measure::LatencyP99, Measure::RequestRate, Measure::Sessions, Measure::Connections,
                    Measure::Instances, Measure::Value})
    if (s == measure_name(m)) {
      out = m;
      return true;
    }
  return r.fail(
      path, "unknown measure \"" + s + "\" (error_rate, latency_p99_ms, request_rate, sessions, connections, instances, value)");
}

bool read_metric(Reader& r, const json& o, const std::string& path, MetricSpec& m) {
  if (!r.object(o, path, {"measure", "version", "server", "gateway", "alias", "window", "noise", "factor", "nodata", "value"}))
    return false;
  std::string measure;
  if (!r.required_string(o, "measure", path, measure) || !read_measure(r, measure, join(path, "measure"), m.measure) ||
      !r.string(o, "version", path, m.version) || !r.string(o, "server", path, m.server) ||
      !r.string(o, "gateway", path, m.gateway) || !r.string_map(o, "alias", path, m.alias) ||
      !r.duration(o, "window", path, m.window_ms) || !r.number(o, "noise", path, m.noise, 0) ||
      !r.number(o, "factor", path, m.factor, 0))
    return false;
  if (m.window_ms <= 0) return r.fail(join(path, "window"), "must be longer than 0");
  if (o.contains("nodata")) {
    const json& n = o["nodata"];
    const std::string np = join(path, "nodata");
    if (n.is_boolean()) {
      m.nodata = n.get<bool>();
    } else if (n.is_array()) {
      for (size_t i = 0; i < n.size(); ++i) {
        Interval iv;
        if (!r.object(n[i], at(np, i), {"from", "to"}) || !read_interval(r, n[i], at(np, i), iv)) return false;
        m.nodata_during.push_back(iv);
      }
    } else {
      return r.fail(np, "expected true, false or a list of {from, to}, got " + type_of(n));
    }
  }
  if (o.contains("value")) {
    const json& v = o["value"];
    const std::string vp = join(path, "value");
    if (v.is_number()) {
      m.values.push_back({0, v.get<double>()});
    } else if (v.is_array() && !v.empty()) {
      for (size_t i = 0; i < v.size(); ++i) {
        ValuePoint p;
        if (!r.object(v[i], at(vp, i), {"at", "value"})) return false;
        if (!v[i].contains("value")) return r.fail(join(at(vp, i), "value"), "required");
        if (!r.duration(v[i], "at", at(vp, i), p.at_ms) || !r.number(v[i], "value", at(vp, i), p.value)) return false;
        if (!m.values.empty() && p.at_ms <= m.values.back().at_ms) return r.fail(join(at(vp, i), "at"), "times must increase");
        m.values.push_back(p);
      }
    } else {
      return r.fail(vp, "expected a number or a list of {at, value}, got " + type_of(v));
    }
  }
  if (m.measure == Measure::Value && m.values.empty()) return r.fail(join(path, "value"), "required for measure \"value\"");
  return true;
}

bool read_action(Reader& r, const std::string& s, const std::string& path, Action& out) {
  for (Action a : {Action::Install, Action::Stop, Action::Start, Action::Fail, Action::Crash, Action::Check, Action::Noop})
    if (s == action_name(a)) {
      out = a;
      return true;
    }
  return r.fail(path, "unknown action \"" + s + "\" (install, stop, start, fail, crash, check, noop)");
}

bool read_command(Reader& r, const json& o, const std::string& path, CommandRule& c) {
  if (!r.object(o, path,
                {"match", "action", "version", "mode", "duration", "host", "times", "probability", "exit_code", "stdout",
                 "stderr", "target", "max_error_rate"}))
    return false;
  std::string action;
  long long times = -1, exit_code = 0;
  if (!r.required_string(o, "match", path, c.pattern)) return false;
  try {
    c.re = std::regex(c.pattern);
  } catch (const std::regex_error& e) {
    return r.fail(join(path, "match"), "bad regular expression \"" + c.pattern + "\"");
  }
  if (!r.required_string(o, "action", path, action) || !read_action(r, action, join(path, "action"), c.action) ||
      !r.string(o, "version", path, c.version) || !r.string(o, "mode", path, c.mode) ||
      !r.duration(o, "duration", path, c.duration_ms) || !r.string(o, "host", path, c.host) ||
      !r.integer(o, "times", path, times, 0, 1000000000) || !r.number(o, "probability", path, c.probability, 0, 1) ||
      !r.integer(o, "exit_code", path, exit_code, 0, 255) || !r.string(o, "stdout", path, c.out) ||
      !r.string(o, "stderr", path, c.err) || !r.string(o, "target", path, c.target) ||
      !r.number(o, "max_error_rate", path, c.max_error_rate, 0, 1))
    return false;
  c.times = static_cast<int>(times);
  if (o.contains("exit_code")) c.exit_code = static_cast<int>(exit_code);
  if (c.action == Action::Install && c.version.empty()) return r.fail(join(path, "version"), "required for action \"install\"");
  if (c.action == Action::Install && !o.contains("duration")) c.duration_ms = 30000;
  return true;
}

bool read_faults(Reader& r, const json& o, const std::string& path, Scenario& s) {
  if (!r.object(o, path, {"calls", "hosts"})) return false;
  if (o.contains("calls")) {
    const std::string cp = join(path, "calls");
    const json& calls = o["calls"];
    if (!calls.is_array()) return r.fail(cp, "expected a list, got " + type_of(calls));
    for (size_t i = 0; i < calls.size(); ++i) {
      const std::string p = at(cp, i);
      const json& c = calls[i];
      CallFault f;
      if (!r.object(c, p, {"kind", "instance", "op", "from", "to", "error_probability", "latency", "lost_reply", "message"}) ||
          !r.string(c, "kind", p, f.kind) || !r.string(c, "instance", p, f.instance) || !r.string(c, "op", p, f.op) ||
          !read_interval(r, c, p, f.when) || !r.duration(c, "latency", p, f.latency_ms) ||
          !r.boolean(c, "lost_reply", p, f.lost_reply) || !r.string(c, "message", p, f.message))
        return false;
      static const std::set<std::string> kinds = {"*", "gateway", "registry", "hosts", "metrics", "images", "probe"};
      if (!kinds.count(f.kind))
        return r.fail(join(p, "kind"), "unknown kind \"" + f.kind + "\" (gateway, registry, hosts, metrics, images, probe, *)");
      // A rule that only slows calls down fails none of them unless it says so.
      f.error_probability = f.latency_ms && !c.contains("error_probability") ? 0 : 1;
      if (!r.number(c, "error_probability", p, f.error_probability, 0, 1)) return false;
      s.call_faults.push_back(f);
    }
  }
  if (o.contains("hosts")) {
    const std::string hp = join(path, "hosts");
    const json& hosts = o["hosts"];
    if (!hosts.is_array()) return r.fail(hp, "expected a list, got " + type_of(hosts));
    for (size_t i = 0; i < hosts.size(); ++i) {
      const std::string p = at(hp, i);
      HostFault f;
      if (!r.object(hosts[i], p, {"host", "down_at", "up_at"}) || !r.required_string(hosts[i], "host", p, f.host)) return false;
      if (!hosts[i].contains("down_at")) return r.fail(join(p, "down_at"), "required");
      if (!r.duration(hosts[i], "down_at", p, f.down_ms) || !r.duration(hosts[i], "up_at", p, f.up_ms)) return false;
      if (f.up_ms <= f.down_ms) return r.fail(join(p, "up_at"), "must be later than down_at");
      s.host_faults.push_back(f);
    }
  }
  return true;
}

template <typename Spec, typename Fn>
bool read_named(Reader& r, const json& o, const char* key, std::map<std::string, Spec>& out, Fn read) {
  if (!o.contains(key)) return true;
  const json& v = o[key];
  if (!v.is_object()) return r.fail(key, "expected an object, got " + type_of(v));
  for (const auto& [name, x] : v.items()) {
    Spec spec;
    if (!read(r, x, join(key, name), spec)) return false;
    out[name] = std::move(spec);
  }
  return true;
}

bool read_scenario(Reader& r, const json& j, Scenario& s) {
  if (!r.object(j, "",
                {"description", "seed", "version", "hosts", "versions", "traffic", "gateways", "registries", "metrics", "noise",
                 "commands", "responses", "endpoints", "client_ip", "images", "call_latency", "faults"}))
    return false;
  long long seed = 1;
  if (!r.string(j, "description", "", s.description) || !r.integer(j, "seed", "", seed, 0, 9007199254740991LL) ||
      !r.string(j, "version", "", s.version) || !r.number(j, "noise", "", s.noise, 0, 1) ||
      !r.string_map(j, "responses", "", s.responses) || !r.string_map(j, "endpoints", "", s.endpoints) ||
      !r.string(j, "client_ip", "", s.client_ip) || !r.duration(j, "call_latency", "", s.call_latency_ms))
    return false;
  s.seed = static_cast<std::uint64_t>(seed);

  if (j.contains("hosts")) {
    if (!j["hosts"].is_array()) return r.fail("hosts", "expected a list, got " + type_of(j["hosts"]));
    std::set<std::string> names;
    for (size_t i = 0; i < j["hosts"].size(); ++i) {
      HostSpec h;
      if (!read_host(r, j["hosts"][i], at("hosts", i), h)) return false;
      if (!names.insert(h.name).second) return r.fail(join(at("hosts", i), "name"), "duplicate host \"" + h.name + "\"");
      s.hosts.push_back(std::move(h));
    }
  }
  if (!read_named(r, j, "versions", s.versions, read_version)) return false;

  if (j.contains("traffic")) {
    const json& t = j["traffic"];
    if (!r.object(t, "traffic", {"rps", "via", "sessions"}) || !r.number(t, "rps", "traffic", s.rps, 0)) return false;
    if (t.contains("via")) {
      std::vector<std::string> via;
      if (!r.strings(t, "via", "traffic", via)) return false;
      s.via = via;
    }
    if (t.contains("sessions") && !read_sessions(r, t["sessions"], "traffic.sessions", s.sessions)) return false;
  }
  if (!read_named(r, j, "gateways", s.gateways, read_gateway) || !read_named(r, j, "registries", s.registries, read_registry) ||
      !read_named(r, j, "metrics", s.metrics, read_metric))
    return false;

  if (j.contains("commands")) {
    if (!j["commands"].is_array()) return r.fail("commands", "expected a list, got " + type_of(j["commands"]));
    for (size_t i = 0; i < j["commands"].size(); ++i) {
      CommandRule c;
      if (!read_command(r, j["commands"][i], at("commands", i), c)) return false;
      s.commands.push_back(std::move(c));
    }
  }
  if (j.contains("images")) {
    const json& im = j["images"];
    if (!r.object(im, "images", {"missing", "digests"}) || !r.strings(im, "missing", "images", s.missing_images) ||
        !r.string_map(im, "digests", "images", s.digests))
      return false;
  }
  if (j.contains("faults") && !read_faults(r, j["faults"], "faults", s)) return false;

  // Names that point at hosts must name one, when the scenario lists its hosts.
  if (!s.hosts.empty()) {
    auto known = [&](const std::string& n) {
      return std::any_of(s.hosts.begin(), s.hosts.end(), [&](const HostSpec& h) { return h.name == n; });
    };
    for (size_t i = 0; i < s.host_faults.size(); ++i)
      if (!known(s.host_faults[i].host))
        return r.fail(join(at("faults.hosts", i), "host"), "unknown host \"" + s.host_faults[i].host + "\"");
    for (size_t i = 0; i < s.commands.size(); ++i)
      if (!s.commands[i].host.empty() && !known(s.commands[i].host))
        return r.fail(join(at("commands", i), "host"), "unknown host \"" + s.commands[i].host + "\"");
  }
  return true;
}

}  // namespace

std::optional<Scenario> parse_scenario(const json& j, std::string& error) {
  error.clear();
  Scenario s;
  Reader r(error);
  if (!read_scenario(r, j, s)) return std::nullopt;
  s.source = j;
  return s;
}

}  // namespace gray::sim
