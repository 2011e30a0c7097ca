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
  const Value* params_value = arg(c, "params");
  if (const TrafficRead* t = remembered_read(arg(c, "metric"), params_value)) {
    if (t->spec->nodata ||
        std::any_of(t->spec->nodata_during.begin(), t->spec->nodata_during.end(), [&](const Interval& i) { return i.contains(now_); }))
      return no_data("no data for " + t->metric + " (scenario)");
    return traffic_reading(*t->spec, t->sel, t->series);
  }
  std::string name = arg_text(c, "metric");
  if (name.empty()) name = arg_text(c, "query");
  static const Map kNone;
  const Map& params = params_value ? params_value->fields() : kNone;

  // The scenario's description (not copied: this runs for every read), else a guess from the name.
  std::optional<MetricSpec> guessed;
  auto it = sc_.metrics.find(name);
  if (it == sc_.metrics.end()) {
    guessed = default_metric(name, params);
    if (!guessed) return no_data("no simulated metric \"" + name + "\": describe it in the scenario's metrics");
  }
  const MetricSpec& spec = guessed ? *guessed : it->second;
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
      const size_t id = meter_.series_id(series);
      // A digest resolves through the digests the run has seen so far: only a plain selector
      // resolves the same way every time.
      if (sel.find("sha256:") == std::string::npos) remember_read(c, guessed ? &*guessed : nullptr, spec, sel, id);
      return traffic_reading(spec, sel, id);
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
  return metric_result(spec, value, noisy);
}

Result World::metric_result(const MetricSpec& spec, double value, bool noisy) {
  value *= spec.factor;
  const double noise = spec.noise.value_or(sc_.noise);
  if (noisy && noise > 0) value = std::max(0.0, value * (1 + noise * gaussian()));
  return ok(Value::number(value));
}

// An error rate, p99 or request rate over the metric's window of one meter series.
Result World::traffic_reading(const MetricSpec& spec, const std::string& sel, size_t series) {
  Meter::Reading r = meter_.read(series, now_, spec.window_ms, spec.measure == Measure::LatencyP99);
  double value = 0;
  if (spec.measure == Measure::RequestRate) {
    value = r.served / (spec.window_ms / 1000.0);
  } else if (spec.measure == Measure::ErrorRate) {
    if (r.served <= 0) return no_data("no requests to " + sel + " in the last " + format_duration(spec.window_ms));
    value = r.failed / r.served;
  } else {
    if (r.p99_ms < 0) return no_data("no answered requests from " + sel + " in the last " + format_duration(spec.window_ms));
    value = r.p99_ms;
  }
  return metric_result(spec, value, true);
}

// Guards read the same metric with the same arguments every few seconds, and the interpreter
// sends the same `params` map each time: the selector and series they resolved to are kept,
// keyed by the metric's name and that map (held, so its address cannot be reused).
const World::TrafficRead* World::remembered_read(const Value* metric, const Value* params) {
  if (!metric || metric->kind != Value::Kind::String || metric->str.empty()) return nullptr;
  if (traffic_reads_generation_ != meter_.generation()) {
    traffic_reads_.clear();  // the meter was replaced (a saved world loaded): its ids are void
    traffic_reads_generation_ = meter_.generation();
  }
  const Map* key = params ? params->map.get() : nullptr;
  for (const TrafficRead& t : traffic_reads_)
    if (t.params.map.get() == key && t.metric == metric->str) return &t;
  return nullptr;
}

void World::remember_read(const Call& c, const MetricSpec* guessed, const MetricSpec& spec, const std::string& sel, size_t series) {
  const Value* metric = arg(c, "metric");
  const Value* params = arg(c, "params");
  if (!metric || metric->kind != Value::Kind::String || metric->str.empty() || (params && !params->map)) return;
  TrafficRead t;
  t.metric = metric->str;
  if (params) t.params = *params;
  if (guessed) t.guessed = std::make_unique<MetricSpec>(*guessed);
  t.spec = guessed ? t.guessed.get() : &spec;
  t.sel = sel;
  t.series = series;
  traffic_reads_.push_back(std::move(t));
}

}  // namespace gray::sim
