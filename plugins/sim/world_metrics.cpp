// Metrics of the simulated world: a declared metric is mapped (by the scenario, or by its name)
// to a quantity the world measures, read over a window the way a metrics system would.
#include <algorithm>
#include <cctype>

#include "plugins/sim/args.h"
#include "plugins/sim/world.h"

namespace gray::sim {

using namespace detail;

namespace {

bool contains(const std::string& hay, std::initializer_list<const char*> needles) {
  return std::any_of(needles.begin(), needles.end(), [&](const char* n) { return hay.find(n) != std::string::npos; });
}

// What a metric the scenario does not describe measures, guessed from its name. A metric with
// exactly one parameter is measured for the version that parameter names.
std::optional<MetricSpec> default_metric(std::string name, const Map& params) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  MetricSpec m;
  std::string selector = params.size() == 1 ? "$" + params.begin()->first : "all";
  if (contains(name, {"error", "fail"})) {
    m.measure = Measure::ErrorRate;
  } else if (contains(name, {"p99", "latency"})) {
    m.measure = Measure::LatencyP99;
  } else if (contains(name, {"rps", "request", "traffic", "throughput"})) {
    m.measure = Measure::RequestRate;
  } else if (contains(name, {"session"})) {
    m.measure = Measure::Sessions;
  } else if (contains(name, {"connection"})) {
    m.measure = Measure::Connections;
  } else {
    return std::nullopt;
  }
  if (m.measure == Measure::Sessions || m.measure == Measure::Connections) {
    if (params.size() == 1) m.server = selector;
  } else {
    m.version = selector;
  }
  return m;
}

}  // namespace

Result World::metrics_op(const Call& c) {
  if (c.op != "query") return error("the simulated metrics have no operation \"" + c.op + "\"");
  std::string name = arg_text(c, "metric");
  if (name.empty()) name = arg_text(c, "query");
  const Value* params_value = arg(c, "params");
  static const Map kNone;
  const Map& params = params_value ? params_value->fields() : kNone;

  std::optional<MetricSpec> found;
  auto it = sc_.metrics.find(name);
  if (it != sc_.metrics.end())
    found = it->second;
  else
    found = default_metric(name, params);
  if (!found) return no_data("no simulated metric \"" + name + "\": describe it in the scenario's metrics");
  const MetricSpec& spec = *found;
  if (spec.nodata ||
      std::any_of(spec.nodata_during.begin(), spec.nodata_during.end(), [&](const Interval& i) { return i.contains(now_); }))
    return no_data("no data for " + name + " (scenario)");

  // "$v" -> the metric's argument v; then the scenario's aliases ("gray" -> "canary").
  std::string why;
  auto resolve = [&](const std::string& selector, std::string& out) {
    out = selector;
    if (!selector.empty() && selector[0] == '$') {
      auto p = params.find(selector.substr(1));
      if (p == params.end()) {
        why = "metric " + name + ": no argument \"" + selector.substr(1) + "\"";
        return false;
      }
      out = p->second.text();
    }
    auto a = spec.alias.find(out);
    if (a != spec.alias.end()) out = a->second;
    return true;
  };
  const Gateway* gw = spec.gateway.empty() ? (gateways_.empty() ? nullptr : &gateways_.front()) : gateway(spec.gateway);

  double value = 0;
  bool noisy = true;
  switch (spec.measure) {
    case Measure::ErrorRate:
    case Measure::LatencyP99:
    case Measure::RequestRate: {
      std::string sel;
      if (!resolve(spec.version, sel)) return error(why);
      std::string series;
      if (sel == "all") {
        series = "all";
      } else if (sel == "canary" || sel == "stable") {
        if (!gw) return no_data("metric " + name + ": no gateway to measure the " + sel + " group at");
        series = "g:" + gw->name + "/" + sel;
      } else {
        series = "v:" + resolve_version(sel);
      }
      Meter::Reading r = meter_.read(series, now_, spec.window_ms);
      if (spec.measure == Measure::RequestRate) {
        value = r.served / (spec.window_ms / 1000.0);
      } else if (spec.measure == Measure::ErrorRate) {
        if (r.served <= 0) return no_data("no requests to " + sel + " in the last " + format_duration(spec.window_ms));
        value = r.failed / r.served;
      } else {
        if (r.p99_ms < 0) return no_data("no answered requests from " + sel + " in the last " + format_duration(spec.window_ms));
        value = r.p99_ms;
      }
      break;
    }
    case Measure::Sessions:
    case Measure::Connections: {
      noisy = false;
      if (!gw) return no_data("metric " + name + ": no gateway");
      std::string server;
      if (!resolve(spec.server, server)) return error(why);
      int h = find_host(server);
      bool found_server = server.empty();
      for (const Server& s : gw->servers) {
        if (!server.empty() && s.name != server && (h < 0 || s.host != h)) continue;
        found_server = true;
        value += s.sessions;
        if (spec.measure == Measure::Connections) value += s.rate * behaviour_of(s.host, now_).latency_ms;
      }
      if (!found_server) return no_data("metric " + name + ": gateway " + gw->name + " has no server \"" + server + "\"");
      break;
    }
    case Measure::Instances: {
      noisy = false;
      std::string sel;
      if (!resolve(spec.version, sel)) return error(why);
      if ((sel == "canary" || sel == "stable") && gw) {
        for (const Server& s : gw->servers)
          if (s.canary == (sel == "canary") && (s.host < 0 || hosts_[static_cast<size_t>(s.host)].serving())) value++;
      } else {
        // "!3.8.2": instances on any version but that one (the new version, whatever it is).
        bool except = !sel.empty() && sel[0] == '!';
        std::string version = resolve_version(except ? sel.substr(1) : sel);
        for (const Host& hst : hosts_)
          if (hst.serving() && (sel == "all" || (hst.version == version) != except)) value++;
      }
      break;
    }
    case Measure::Value:
      for (const ValuePoint& p : spec.values)
        if (p.at_ms <= now_) value = p.value;
      break;
  }
  value *= spec.factor;
  const double noise = spec.noise.value_or(sc_.noise);
  if (noisy && noise > 0) value = std::max(0.0, value * (1 + noise * gaussian()));
  return ok(Value::number(value));
}

}  // namespace gray::sim
