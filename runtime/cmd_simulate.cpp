// `gray simulate`: the whole pipeline on a virtual clock against the simulated world.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "plugins/sim/drivers.h"
#include "plugins/sim/world.h"
#include "runtime/cli.h"
#include "runtime/eval.h"
#include "runtime/interp.h"
#include "runtime/report.h"

namespace fs = std::filesystem;

namespace gray {

std::string default_scenario(const std::string& pipeline) {
  fs::path p(pipeline);
  fs::path s = p.parent_path() / "scenarios" / p.stem() / "good.json";
  std::error_code ec;
  return fs::exists(s, ec) ? s.string() : "";
}

namespace {

nlohmann::json read_scenario(const std::string& path) {
  if (path.empty()) return nlohmann::json::object();
  std::ifstream f(path);
  if (!f) throw UsageError{"cannot read scenario '" + path + "'"};
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    throw UsageError{"scenario '" + path + "' is not valid JSON: " + what.substr(what.find(']') + 2)};
  }
}

// The scenario, validated once: every run of `--runs` starts a fresh world from it.
sim::Scenario parse_scenario_or_throw(const nlohmann::json& scenario) {
  std::string error;
  std::optional<sim::Scenario> sc = sim::parse_scenario(scenario, error);
  if (!sc) throw UsageError{"scenario: " + error};
  return std::move(*sc);
}

struct SimRun {
  Outcome outcome;
  double duration_ms = 0;
  nlohmann::json world;  // only when asked for: building it costs more than a short run
  double failed = 0;
};

// One run: a fresh world from the scenario, the pipeline on a virtual clock.
SimRun simulate_once(const Project& project, int module, const sim::Scenario& scenario, const std::string& pipeline_dir,
                     const RunConfig& cfg, uint64_t seed, EventSink* events, const std::string& approve, bool want_world) {
  std::unique_ptr<sim::World> world = sim::World::from_parsed(scenario);
  world->reseed(seed);
  VirtualClock clock;
  Scheduler sched(clock, &clock);
  auto now = [&clock] { return clock.now_ms(); };
  std::unique_ptr<plugins::Prober> prober = sim::make_sim_prober(*world, now);
  Services svc;
  svc.make_driver = [&](const PluginDecl& d) -> std::unique_ptr<plugins::Driver> {
    Value config = d.config;
    // An inventory is named relative to the pipeline; the simulated hosts read it from here.
    if (auto inv = config.fields().find("inventory"); inv != config.fields().end() && fs::path(inv->second.text()).is_relative()) {
      Map m = config.fields();
      m["inventory"] = Value::string((fs::path(pipeline_dir) / inv->second.text()).string());
      config = Value::of_map(std::move(m));
    }
    return sim::make_sim_driver(d.kind, d.name, config, *world, now);
  };
  svc.prober = prober.get();
  svc.events = events;
  if (!approve.empty()) svc.answer = [approve](const std::string&) { return std::optional<std::string>(approve); };
  svc.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return "<" + name + ">";  // a simulation never sends secrets anywhere
  };
  Interpreter interp(project, module, sched, std::move(svc), cfg);
  interp.prepare();
  SimRun r;
  r.outcome = sched.run(interp.run());
  world->advance_to(clock.now_ms());
  r.duration_ms = clock.now_ms();
  sim::Summary summary = world->summary();
  if (want_world) r.world = summary.to_json();
  r.failed = summary.total.failed;
  return r;
}

std::string count_text(double v) {
  std::string s = std::to_string(static_cast<long long>(std::llround(v)));
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string report_text(const SimRun& r) {
  std::string out;
  out += "\noutcome: " + std::string(outcome_name(r.outcome.kind));
  if (!r.outcome.reason.empty()) out += " — " + r.outcome.reason;
  out += "\nduration: " + clock_text(r.duration_ms) + " of virtual time\n";
  const nlohmann::json& w = r.world;
  if (w.contains("total")) {
    double served = w["total"].value("served", 0.0), failed = w["total"].value("failed", 0.0);
    char pct[32];
    std::snprintf(pct, sizeof pct, "%.3f%%", served > 0 ? failed / served * 100 : 0.0);
    out += "requests: " + count_text(served) + " served, " + count_text(failed) + " failed (" + pct + ")\n";
    if (w.contains("by_version"))
      for (const auto& [v, c] : w["by_version"].items())
        out += "  version " + v + ": " + count_text(c.value("served", 0.0)) + " served, " + count_text(c.value("failed", 0.0)) + " failed\n";
  }
  if (!r.outcome.remaining_undo.empty()) {
    out += "still to undo by hand:\n";
    for (const std::string& u : r.outcome.remaining_undo) out += "  - " + u + "\n";
  }
  return out;
}

}  // namespace

int cmd_simulate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  add_front_end_options(spec);
  spec["--set"] = true;
  spec["--scenario"] = true;
  spec["--runs"] = true;
  spec["--seed"] = true;
  spec["--approve"] = true;
  spec["--no-guards"] = false;
  ParsedArgs a = parse_args(args, 2, spec);
  Format format = parse_format(a.get("--format", "text"), false);
  if (format == Format::Sarif) throw UsageError{"simulate prints text or json"};
  if (a.positional.size() != 1) throw UsageError{"simulate takes one pipeline file"};
  long runs = 1;
  unsigned long long seed = 1;
  try {
    runs = std::stol(a.get("--runs", "1"));
    seed = std::stoull(a.get("--seed", "1"));
  } catch (...) {
    throw UsageError{"--runs and --seed take whole numbers"};
  }
  if (runs < 1) throw UsageError{"--runs must be at least 1"};
  std::string approve = a.get("--approve");
  if (!approve.empty() && approve != "promote" && approve != "abort" && approve != "rollback")
    throw UsageError{"--approve takes promote, abort or rollback"};
  const std::string color = a.get("--color", "auto");
  const std::string file = a.positional[0];
  std::string scenario_path = a.has("--scenario") ? a.get("--scenario") : default_scenario(file);
  nlohmann::json scenario_json = read_scenario(scenario_path);

  auto fe = load_and_check(a.positional, load_options(a));
  int m = load_pipeline(*fe, file, out, err, color);
  if (m < 0) return fe->unreadable ? kExitUsage : kExitFindings;
  const sim::Scenario scenario = parse_scenario_or_throw(scenario_json);
  RunConfig cfg;
  cfg.run_id = "sim";
  cfg.params = set_params(a);
  const std::string dir = fs::path(file).parent_path().string();

  try {
    if (runs == 1) {
      EventPrinter printer(out, format == Format::Json ? EventPrinter::Style::Quiet : EventPrinter::Style::Timeline, !a.has("--no-guards"));
      if (format == Format::Text && !scenario_path.empty()) out << "scenario: " << scenario_path << "\n";
      SimRun r = simulate_once(*fe->project, m, scenario, dir, cfg, seed, &printer, approve, true);
      if (format == Format::Json) {
        nlohmann::json events = nlohmann::json::array();
        for (const Event& e : printer.events()) events.push_back(event_json(e));
        out << nlohmann::json{{"format", "gray-simulation"},
                              {"version", 1},
                              {"scenario", scenario_path},
                              {"outcome", {{"result", outcome_name(r.outcome.kind)}, {"stage", r.outcome.stage}, {"reason", r.outcome.reason},
                                           {"remaining_undo", r.outcome.remaining_undo}}},
                              {"duration_ms", r.duration_ms},
                              {"world", r.world},
                              {"events", events}}
                   .dump(2)
            << "\n";
      } else {
        out << report_text(r);
      }
      return r.outcome.kind == Outcome::Kind::Promoted ? kExitOk : kExitFindings;
    }
    std::vector<RunSample> samples;
    for (long i = 0; i < runs; ++i) {
      SimRun r = simulate_once(*fe->project, m, scenario, dir, cfg, seed + static_cast<unsigned long long>(i), nullptr, approve, false);
      samples.push_back({r.outcome.kind, r.failed, r.duration_ms});
    }
    nlohmann::json summary = summarize_runs(samples);
    summary["seed"] = seed;
    summary["scenario"] = scenario_path;
    if (format == Format::Json) out << nlohmann::json{{"format", "gray-simulation-runs"}, {"version", 1}, {"summary", summary}}.dump(2) << "\n";
    else out << render_runs_text(summary);
    return kExitOk;
  } catch (const SetupError& e) {
    report_setup_error(*fe, e, color, out, err);
    return e.usage ? kExitUsage : kExitFindings;
  } catch (const EvalError& e) {
    fe->diags.error("run", e.span, e.message);
    emit_diagnostics(*fe, Format::Text, color, out, err);
    return kExitFindings;
  }
}

}  // namespace gray
