// `gray run`, `gray resume`, `gray status`, `gray promote`, `gray abort`, `gray force-unlock`:
// a release that journals every step in its run directory, holds a lock on its target, stops
// at a safe point on SIGINT/SIGTERM, and can be resumed after it died.
//
// Layout under the state directory (--state-dir, default .gray):
//   runs/<run-id>/journal.jsonl   the journal (runtime/journal.h)
//   runs/<run-id>/world.json      the simulated world, when the run uses the simulated drivers
//   runs/<run-id>/run.json        how to run it again: pipeline, scenario, clock
//   runs/<run-id>/answer          an answer to a waiting gate, written by promote / abort
//   locks/<target>.lock           one run per target
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "plugins/driver.h"
#include "plugins/sim/drivers.h"
#include "plugins/sim/world.h"
#include "runtime/cli.h"
#include "runtime/eval.h"
#include "runtime/interp.h"
#include "runtime/journal.h"
#include "runtime/live.h"
#include "runtime/lock.h"
#include "runtime/report.h"

namespace fs = std::filesystem;

namespace gray {

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool write_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return false;
    f << text;
    if (!f.flush()) return false;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return !ec;
}

std::string new_run_id(const std::string& pipeline) {
  std::string base;
  for (char c : pipeline) base += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  if (base.empty()) base = "run";
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::random_device rd;
  char rnd[8];
  std::snprintf(rnd, sizeof rnd, "%04x", rd() & 0xffff);
  return base + "-" + stamp + "-" + rnd;
}

// The source a run is pinned to: the pipeline and every module it loaded.
std::string source_hash(const Project& p) {
  std::string all;
  for (size_t i = 0; i < p.module_count(); ++i) {
    const LoadedModule& m = p.module(static_cast<int>(i));
    all += m.path + "\n" + (p.sources().get(static_cast<uint32_t>(i + 1)) ? p.sources().get(static_cast<uint32_t>(i + 1))->text() : "") + "\n";
  }
  return hash_hex(all);
}

Map params_map(const std::map<std::string, std::string>& params) {
  Map m;
  for (const auto& [k, v] : params) m[k] = Value::string(v);
  return m;
}

// ---- the journal as the interpreter sees it ----

journal::Call journal_call(const std::string& plugin, const plugins::Call& c, const std::string& host) {
  journal::Call j;
  j.plugin = plugin;
  j.op = c.op;
  for (const auto& [k, v] : c.args) j.args[k] = v;
  j.host = host;
  return j;
}

class JournalLog : public RunLog {
 public:
  JournalLog(Journal& j, const ReplayState* loaded) : j_(j), loaded_(loaded) {
    if (!loaded) return;
    for (const auto& [key, d] : loaded->completed) {
      StepRecord r;
      r.started_at = d.started_at_ms;
      r.done = true;
      r.result.value = d.result;
      if (d.undo) {
        plugins::Call c;
        c.op = d.undo->op;
        for (const auto& [k, v] : d.undo->args) c.args[k] = v;
        r.result.undo = c;
        undo_plugin_[key] = d.undo->plugin;
      }
      known_[key] = r;
    }
    // A step that failed fails again on resume, with the same message: the run goes on from
    // the failure as it would have, instead of trying the step a second time.
    for (const auto& [key, f] : loaded->failed) {
      StepRecord r;
      r.done = true;
      r.result.status = f.status == "failed" ? plugins::Result::Status::Failed : plugins::Result::Status::Error;
      r.result.message = f.message;
      known_[key] = r;
    }
    for (const auto& f : loaded->in_flight) {
      StepRecord r{f.started_at_ms, false, {}, std::nullopt};
      if (f.started.undo) {
        plugins::Call c;
        c.op = f.started.undo->op;
        for (const auto& [k, v] : f.started.undo->args) c.args[k] = v;
        r.planned_undo = c;
        undo_plugin_[f.started.key] = f.started.undo->plugin;
      }
      known_[f.started.key] = r;
    }
  }

  const StepRecord* find(const std::string& key) override {
    auto it = known_.find(key);
    return it == known_.end() ? nullptr : &it->second;
  }

  void started(const std::string& key, const std::string& op, const nlohmann::json& args, const std::string& host, double at,
               const plugins::Call* planned_undo) override {
    journal::Started s;
    s.key = key;
    s.step = key.substr(key.find(':') + 1);
    auto dot = op.find('.');
    s.call.plugin = dot == std::string::npos ? "" : op.substr(0, dot);
    s.call.op = dot == std::string::npos ? op : op.substr(dot + 1);
    for (const auto& [k, v] : args.items()) s.call.args[k] = from_json(v);
    s.call.host = host;
    if (planned_undo) {
      undo_plugin_[key] = s.call.plugin;
      s.undo = journal_call(s.call.plugin, *planned_undo, "");
    }
    append(at, s);
    maybe_crash();
  }

  void finished(const std::string& key, const plugins::Result& r, double at) override {
    if (r.ok() || r.status == plugins::Result::Status::NoData) {
      journal::Completed c;
      c.key = key;
      c.result = r.value;
      if (r.undo) c.undo = journal_call(plugin_of(key), *r.undo, "");
      append(at, c);
    } else {
      journal::Failed f;
      f.key = key;
      f.message = r.message;
      f.status = r.status == plugins::Result::Status::Failed ? "failed" : "error";
      append(at, f);
    }
    maybe_crash();
  }

  void event(const Event& e) override {
    if (e.kind == "phase") append(e.at_ms, journal::Phase{e.data.value("phase", "")});
    else if (e.kind == "weights") append(e.at_ms, journal::Weights{e.data.value("gateway", ""), e.data.value("canary", 0.0)});
    else if (e.kind == "guard") {
      journal::Guard g;
      g.guard = e.data.value("guard", "");
      g.stage = e.stage;
      g.value = Value::string(e.data.value("detail", ""));
      std::string v = e.data.value("verdict", "");
      if (v == "pending") return;
      g.verdict = v == "pass" ? journal::Guard::Verdict::Pass
                  : v == "fail" ? journal::Guard::Verdict::Fail
                  : v == "inconclusive" ? journal::Guard::Verdict::Inconclusive
                                        : journal::Guard::Verdict::Error;
      append(e.at_ms, g);
    } else if (e.kind == "outcome") {
      static const std::map<std::string, journal::Outcome::Kind> kinds = {
          {"promoted", journal::Outcome::Kind::Promoted},   {"rolled-back", journal::Outcome::Kind::RolledBack},
          {"aborted", journal::Outcome::Kind::Aborted},     {"failed", journal::Outcome::Kind::Failed},
          {"paused", journal::Outcome::Kind::Paused},       {"needs-attention", journal::Outcome::Kind::NeedsAttention},
          {"stopped", journal::Outcome::Kind::Stopped}};
      auto it = kinds.find(e.data.value("outcome", ""));
      append(e.at_ms, journal::Outcome{it == kinds.end() ? journal::Outcome::Kind::Failed : it->second, e.data.value("reason", "")});
    } else if (e.kind == "stage" && e.text.rfind("stage ", 0) != 0 && e.text.rfind("rolling back", 0) != 0) {
      append(e.at_ms, journal::Stage{e.stage, journal::Stage::Event::Entered});
    } else if (e.kind == "approval" && e.text.rfind("waiting", 0) == 0) {
      append(e.at_ms, journal::Approval{e.step, journal::Approval::Event::Waiting, "", ""});
    }
  }

  // Replays walk past compensations the journal already has; only new ones are written.
  void undone(const std::string& key, double at) override {
    const auto& stack = j_.state().undo_stack;
    bool on_stack = std::any_of(stack.begin(), stack.end(), [&](const ReplayState::UndoEntry& u) { return u.key == key; });
    if (on_stack) append(at, journal::Undone{key});
  }

  std::vector<Verdict> guard_history(const std::string& guard, const std::string& stage) override {
    std::vector<Verdict> out;
    if (!loaded_) return out;
    auto it = loaded_->guards.find(guard);
    if (it == loaded_->guards.end()) return out;
    for (const auto& v : it->second)
      if (v.stage == stage) out.push_back({journal::verdict_name(v.verdict), v.at_ms});
    return out;
  }

  void rolling_back(const std::string& reason, double at) override { append(at, journal::Rollback{reason}); }
  std::optional<std::string> rollback_decided() override {
    if (loaded_ && loaded_->rollback) return loaded_->rollback->reason;
    return std::nullopt;
  }

  void remember_plugin(const std::string& key, const std::string& plugin) { undo_plugin_[key] = plugin; }
  size_t appended() const { return appended_; }

 private:
  std::string plugin_of(const std::string& key) {
    auto it = undo_plugin_.find(key);
    return it == undo_plugin_.end() ? "" : it->second;
  }

  void append(double at, journal::Event e) {
    if (auto err = j_.append(at, std::move(e))) throw std::runtime_error("cannot write the journal: " + *err);
    ++appended_;
  }

  // For the crash tests: GRAY_CRASH_AFTER=N kills the process right after the Nth record it
  // writes; GRAY_CRASH_TORN=1 first writes half of a record, as a power cut would.
  void maybe_crash() {
    static const long after = std::getenv("GRAY_CRASH_AFTER") ? std::atol(std::getenv("GRAY_CRASH_AFTER")) : 0;
    if (after <= 0 || static_cast<long>(appended_) < after) return;
    if (std::getenv("GRAY_CRASH_TORN")) {
      int fd = ::open(j_.path().c_str(), O_WRONLY | O_APPEND);
      if (fd >= 0) {
        const char torn[] = "{\"seq\":999999,\"t\":\"started\",\"at\":1,\"key\":\"torn";
        (void)!::write(fd, torn, sizeof torn - 1);
        ::fdatasync(fd);
        ::close(fd);
      }
    }
    std::raise(SIGKILL);
  }

  Journal& j_;
  const ReplayState* loaded_;
  std::map<std::string, StepRecord> known_;
  std::map<std::string, std::string> undo_plugin_;
  size_t appended_ = 0;
};

// A simulated driver whose world is saved after every call that may change it, so a killed run
// resumes against the world as it was.
class SavingDriver : public plugins::Driver {
 public:
  SavingDriver(std::unique_ptr<plugins::Driver> inner, sim::World& world, std::string path, JournalLog* log, std::string plugin)
      : inner_(std::move(inner)), world_(world), path_(std::move(path)), log_(log), plugin_(std::move(plugin)) {}
  plugins::Kind kind() const override { return inner_->kind(); }
  plugins::Result call(const plugins::Call& c) override {
    plugins::Result r = inner_->call(c);
    if (!c.key.empty()) {
      if (log_) log_->remember_plugin(c.key, plugin_);
      std::string err;
      if (!world_.save(path_, err)) throw std::runtime_error("cannot save the simulated world: " + err);
    }
    return r;
  }

 private:
  std::unique_ptr<plugins::Driver> inner_;
  sim::World& world_;
  std::string path_;
  JournalLog* log_;
  std::string plugin_;
};

// A real driver as the run uses it: remembers which plugin each key went to (for the journal's
// undo records) and lets one call at a time through, except for hosts drivers, which run
// commands on many hosts at once and are built for it.
class JournaledDriver : public plugins::Driver {
 public:
  JournaledDriver(std::unique_ptr<plugins::Driver> inner, JournalLog* log, std::string plugin)
      : inner_(std::move(inner)), log_(log), plugin_(std::move(plugin)) {}
  plugins::Kind kind() const override { return inner_->kind(); }
  plugins::Result call(const plugins::Call& c) override {
    if (!c.key.empty() && log_) log_->remember_plugin(c.key, plugin_);
    if (inner_->kind() == plugins::Kind::Hosts) return inner_->call(c);
    std::lock_guard<std::mutex> lock(mu_);
    return inner_->call(c);
  }
  std::optional<plugins::Call> undo_for(const plugins::Call& c) override {
    if (inner_->kind() == plugins::Kind::Hosts) return inner_->undo_for(c);
    std::lock_guard<std::mutex> lock(mu_);
    return inner_->undo_for(c);
  }

 private:
  std::unique_ptr<plugins::Driver> inner_;
  JournalLog* log_;
  std::string plugin_;
  std::mutex mu_;
};

extern "C" void on_stop_signal(int) { Scheduler::interrupted = true; }

struct RunSetup {
  std::string state_dir;
  std::string run_dir;
  std::string run_id;
  std::string pipeline;
  std::string scenario;
  bool simulated = false;  // the simulated world (--sim, --scenario) instead of the real drivers
  bool virtual_clock = false;
  std::map<std::string, std::string> params;
  std::string approve;
};

nlohmann::json run_json(const RunSetup& s) {
  return {{"run", s.run_id}, {"pipeline", fs::absolute(s.pipeline).string()}, {"mode", s.simulated ? "sim" : "real"},
          {"scenario", s.scenario}, {"clock", s.virtual_clock ? "virtual" : "real"}, {"params", s.params}};
}

// Runs (or resumes) the pipeline in `fe` with the journal open. Returns the exit code.
// `world` is the simulated world of a simulated run, null for a run with the real drivers.
int execute(FrontEnd& fe, int module, const RunSetup& setup, Journal& journal, const ReplayState* loaded, sim::World* world,
            std::ostream& out, std::ostream& err, bool json_events) {
  double start = loaded ? loaded->last_at_ms : 0;
  VirtualClock vclock(start);
  RealClock rclock(start);
  Clock& clock = setup.virtual_clock ? static_cast<Clock&>(vclock) : static_cast<Clock&>(rclock);
  Scheduler sched(clock, setup.virtual_clock ? &vclock : nullptr);
  auto now = [&clock] { return clock.now_ms(); };
  JournalLog log(journal, loaded);
  const std::string world_path = setup.run_dir + "/world.json";
  const std::string dir = fs::path(setup.pipeline).parent_path().string();
  plugins::DriverEnv denv = plugins::DriverEnv::process(dir.empty() ? "." : dir);
  denv.note = [&err](const std::string& text) { err << "gray: " << text << "\n"; };
  std::unique_ptr<plugins::Prober> prober = world ? sim::make_sim_prober(*world, now) : plugins::make_prober(denv);

  Services svc;
  svc.make_driver = [&](const PluginDecl& d) -> std::unique_ptr<plugins::Driver> {
    if (!world) return std::make_unique<JournaledDriver>(plugins::make_driver(d.kind, d.driver, d.name, d.config, denv), &log, d.name);
    Value config = d.config;
    if (auto inv = config.fields().find("inventory"); inv != config.fields().end() && fs::path(inv->second.text()).is_relative()) {
      Map m = config.fields();
      m["inventory"] = Value::string((fs::path(dir) / inv->second.text()).string());
      config = Value::of_map(std::move(m));
    }
    return std::make_unique<SavingDriver>(sim::make_sim_driver(d.kind, d.name, config, *world, now), *world, world_path, &log, d.name);
  };
  svc.host_records = world == nullptr;
  svc.prober = prober.get();
  EventPrinter printer(out, json_events ? EventPrinter::Style::JsonLines : EventPrinter::Style::Timeline);
  // On a terminal, a status line under the timeline; plain lines otherwise (and for JSON).
  std::optional<LiveStatus> live;
  if (!json_events && &err == &std::cerr && LiveStatus::terminal_can_redraw()) live.emplace(printer, out, err);
  svc.events = live ? static_cast<EventSink*>(&*live) : &printer;
  svc.log = &log;
  const std::string answer_path = setup.run_dir + "/answer";
  const std::string approve = setup.approve;
  svc.answer = [answer_path, approve](const std::string&) -> std::optional<std::string> {
    if (!approve.empty()) return approve;
    std::error_code ec;
    if (!fs::exists(answer_path, ec)) return std::nullopt;
    std::string a = slurp(answer_path);
    while (!a.empty() && (a.back() == '\n' || a.back() == ' ')) a.pop_back();
    fs::remove(answer_path, ec);
    return a;
  };
  svc.answer_poll_ms = 500;
  const bool simulated = world != nullptr;
  svc.getenv = [simulated](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    if (simulated) return "<" + name + ">";  // the simulated world needs no secret and sends none anywhere
    return std::nullopt;
  };
  RunConfig cfg;
  cfg.run_id = setup.run_id;
  cfg.params = setup.params;
  Interpreter interp(*fe.project, module, sched, std::move(svc), cfg);
  // A run that cannot start still ends in its journal and summary, so `gray status` says why.
  auto failed_to_start = [&](const std::string& reason, int code) {
    journal.append(clock.now_ms(), journal::Outcome{journal::Outcome::Kind::Failed, "could not start: " + reason});
    write_atomic(setup.run_dir + "/summary.json",
                 nlohmann::json{{"outcome", "failed"}, {"reason", "could not start: " + reason}}.dump(2));
    return code;
  };
  try {
    interp.prepare();
  } catch (const SetupError& e) {
    report_setup_error(fe, e, "auto", out, err);
    return failed_to_start(e.message, e.usage ? kExitUsage : kExitFindings);
  } catch (const plugins::DriverError& e) {
    err << "gray: cannot start the run: " << e.what() << "\n";
    return failed_to_start(e.what(), kExitFindings);
  } catch (const EvalError& e) {
    report_setup_error(fe, SetupError{e.span, e.message, false}, "auto", out, err);
    return failed_to_start(e.message, kExitFindings);
  }
  Scheduler::interrupted = false;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  // `gray abort` / `gray rollback` while no gate is waiting: the run acts on it within a second.
  double next_look = 0;
  sched.on_tick = [&] {
    if (interp.at_gate() || clock.now_ms() < next_look) return;
    next_look = clock.now_ms() + 500;
    std::error_code ec;
    if (!fs::exists(answer_path, ec)) return;
    std::string a = slurp(answer_path);
    fs::remove(answer_path, ec);
    while (!a.empty() && (a.back() == '\n' || a.back() == ' ')) a.pop_back();
    err << "gray: operator: " << a << ": " << interp.operator_request(a) << "\n";
  };
  sched.on_interrupt = [&] {
    journal.append(clock.now_ms(), journal::Signal{"SIGTERM"});
    err << "gray: stopping at the next safe point...\n";
    interp.request_stop();
  };
  Outcome o = sched.run(interp.run());
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  nlohmann::json summary = {{"outcome", outcome_name(o.kind)}, {"reason", o.reason}};
  if (world) {
    std::string e;
    world->save(world_path, e);
    summary["world"] = world->summary_json();
  }
  write_atomic(setup.run_dir + "/summary.json", summary.dump(2));
  if (!json_events) {
    out << "\noutcome: " << outcome_name(o.kind) << (o.reason.empty() ? "" : " — " + o.reason) << "\n";
    for (const std::string& u : o.remaining_undo) out << "  still to undo: " << u << "\n";
  }
  if (o.kind == Outcome::Kind::Stopped || o.kind == Outcome::Kind::Paused)
    err << "gray: run " << setup.run_id << " is " << outcome_name(o.kind) << "; continue it with: gray resume " << setup.run_id
        << (setup.state_dir != ".gray" ? " --state-dir " + setup.state_dir : "") << "\n";
  return o.kind == Outcome::Kind::Promoted ? kExitOk : kExitFindings;
}

std::string runs_dir(const std::string& state) { return state + "/runs"; }

std::string latest_run(const std::string& state) {
  std::string best;
  fs::file_time_type t{};
  std::error_code ec;
  for (auto it = fs::directory_iterator(runs_dir(state), ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    auto m = fs::last_write_time(it->path() / kJournalFileName, ec);
    if (!ec && (best.empty() || m > t)) best = it->path().filename().string(), t = m;
    ec.clear();
  }
  return best;
}

void add_run_options(OptionSpec& spec) {
  spec["--state-dir"] = true;
  spec["--scenario"] = true;
  spec["--sim"] = false;
  spec["--clock"] = true;
  spec["--lock-timeout"] = true;
  spec["--approve"] = true;
  spec["--run-id"] = true;
}

int64_t parse_ms(const std::string& text) {
  Value v = param_value(text, "duration", {});
  return static_cast<int64_t>(v.num);
}

}  // namespace

int cmd_run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  add_front_end_options(spec);
  add_run_options(spec);
  spec["--set"] = true;
  ParsedArgs a = parse_args(args, 2, spec);
  Format format = parse_format(a.get("--format", "text"), false);
  if (a.positional.size() != 1) throw UsageError{"run takes one pipeline file"};
  RunSetup s;
  s.state_dir = a.get("--state-dir", ".gray");
  s.pipeline = a.positional[0];
  s.params = set_params(a);
  s.approve = a.get("--approve");
  std::string clock = a.get("--clock", "real");
  if (clock != "real" && clock != "virtual") throw UsageError{"--clock takes real or virtual"};
  s.virtual_clock = clock == "virtual";
  s.simulated = a.has("--sim") || a.has("--scenario");
  if (s.virtual_clock && !s.simulated)
    throw UsageError{"--clock virtual needs the simulated world (--sim or --scenario): real servers live in real time"};
  int64_t lock_timeout = 0;
  try {
    lock_timeout = a.has("--lock-timeout") ? parse_ms(a.get("--lock-timeout")) : 0;
  } catch (const SetupError& e) {
    throw UsageError{"--lock-timeout: " + e.message};
  }
  const std::string color = a.get("--color", "auto");
  auto fe = load_and_check(a.positional, load_options(a));
  int m = load_pipeline(*fe, s.pipeline, out, err, color);
  if (m < 0) return fe->unreadable ? kExitUsage : kExitFindings;

  std::string error;
  std::unique_ptr<sim::World> world;
  if (s.simulated) {
    s.scenario = a.has("--scenario") ? a.get("--scenario") : default_scenario(s.pipeline);
    nlohmann::json scenario = nlohmann::json::object();
    if (!s.scenario.empty()) {
      try {
        scenario = nlohmann::json::parse(slurp(s.scenario));
      } catch (const std::exception&) {
        throw UsageError{"scenario '" + s.scenario + "' is not valid JSON"};
      }
    }
    world = sim::World::from_scenario(scenario, error);
    if (!world) throw UsageError{"scenario: " + error};
  }

  const ast::Stmt* pipeline = nullptr;
  for (const auto& item : fe->project->module(m).ast.items)
    if (item->kind == ast::StmtKind::Pipeline) pipeline = item.get();
  s.run_id = a.has("--run-id") ? a.get("--run-id") : new_run_id(pipeline->str);
  s.run_dir = runs_dir(s.state_dir) + "/" + s.run_id;

  LockOptions lo;
  lo.state_dir = s.state_dir;
  lo.holder = s.run_id;
  lo.timeout_ms = lock_timeout;
  AcquireResult lock = RunLock::acquire(lo, pipeline->str);
  if (!lock.lock) {
    err << "gray: " << lock.error << "\n";
    return kExitFindings;
  }
  for (const std::string& n : lock.notes) err << "gray: " << n << "\n";

  std::error_code ec;
  fs::create_directories(s.run_dir, ec);
  if (ec) throw UsageError{"cannot create " + s.run_dir + ": " + ec.message()};
  JournalHeader h;
  h.run = s.run_id;
  h.pipeline = s.pipeline;
  h.source_hash = source_hash(*fe->project);
  h.params = params_map(s.params);
  h.params_hash = hash_params(h.params);
  h.started_at = iso8601_utc(static_cast<int64_t>(std::time(nullptr)) * 1000);
  h.clock = s.virtual_clock ? JournalHeader::Clock::Virtual : JournalHeader::Clock::Real;
  JournalOpen jo = Journal::create(s.run_dir, h);
  if (!jo.journal) throw UsageError{jo.error};
  write_atomic(s.run_dir + "/run.json", run_json(s).dump(2));
  if (world && !world->save(s.run_dir + "/world.json", error)) throw UsageError{"cannot save the simulated world: " + error};
  if (format == Format::Text)
    err << "gray: run " << s.run_id << (world ? " in a simulated world" : "") << " (journal " << jo.journal->path() << ")\n";
  return execute(*fe, m, s, *jo.journal, nullptr, world.get(), out, err, format == Format::Json);
}

int cmd_resume(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  add_front_end_options(spec);
  spec["--state-dir"] = true;
  spec["--force"] = false;
  spec["--lock-timeout"] = true;
  spec["--approve"] = true;
  ParsedArgs a = parse_args(args, 2, spec);
  Format format = parse_format(a.get("--format", "text"), false);
  if (a.positional.size() != 1) throw UsageError{"resume takes a run id (see gray status)"};
  RunSetup s;
  s.state_dir = a.get("--state-dir", ".gray");
  s.run_id = a.positional[0];
  s.run_dir = runs_dir(s.state_dir) + "/" + s.run_id;
  s.approve = a.get("--approve");
  std::error_code ec;
  if (!fs::exists(s.run_dir + "/" + kJournalFileName, ec)) throw UsageError{"no run '" + s.run_id + "' in " + runs_dir(s.state_dir)};
  LoadResult loaded = load_journal(s.run_dir + "/" + kJournalFileName);
  if (!loaded.ok()) {
    err << "gray: cannot resume " << s.run_id << ": the journal is damaged: " << loaded.error << "\n";
    return kExitFindings;
  }
  for (const std::string& w : loaded.warnings) err << "gray: " << w << "\n";
  ReplayState state = replay(loaded.records);
  if (state.outcome && state.outcome->kind != journal::Outcome::Kind::Stopped && state.outcome->kind != journal::Outcome::Kind::Paused) {
    out << "run " << s.run_id << " already ended: " << journal::outcome_name(state.outcome->kind) << " — " << state.outcome->reason << "\n";
    return state.outcome->kind == journal::Outcome::Kind::Promoted ? kExitOk : kExitFindings;
  }
  nlohmann::json info;
  try {
    info = nlohmann::json::parse(slurp(s.run_dir + "/run.json"));
  } catch (const std::exception&) {
    err << "gray: cannot resume " << s.run_id << ": run.json is missing or damaged\n";
    return kExitFindings;
  }
  s.pipeline = info.value("pipeline", loaded.header.pipeline);
  s.scenario = info.value("scenario", "");
  s.simulated = info.value("mode", "sim") == "sim";
  s.virtual_clock = info.value("clock", "real") == "virtual";
  for (const auto& [k, v] : info["params"].items()) s.params[k] = v.get<std::string>();

  const std::string color = a.get("--color", "auto");
  auto fe = load_and_check({s.pipeline}, load_options(a));
  int m = load_pipeline(*fe, s.pipeline, out, err, color);
  if (m < 0) return fe->unreadable ? kExitUsage : kExitFindings;
  std::string pin = check_pinned(loaded.header, source_hash(*fe->project), hash_params(params_map(s.params)));
  if (!pin.empty() && !a.has("--force")) {
    err << "gray: cannot resume " << s.run_id << ": " << pin << "\n";
    return kExitFindings;
  }
  std::string error;
  std::unique_ptr<sim::World> world;
  if (s.simulated) {
    world = sim::World::load(s.run_dir + "/world.json", error);
    if (!world) {
      err << "gray: cannot resume " << s.run_id << ": " << error << "\n";
      return kExitFindings;
    }
  }
  const ast::Stmt* pipeline = nullptr;
  for (const auto& item : fe->project->module(m).ast.items)
    if (item->kind == ast::StmtKind::Pipeline) pipeline = item.get();
  LockOptions lo;
  lo.state_dir = s.state_dir;
  lo.holder = s.run_id;
  lo.timeout_ms = a.has("--lock-timeout") ? parse_ms(a.get("--lock-timeout")) : 0;
  AcquireResult lock = RunLock::acquire(lo, pipeline->str);
  if (!lock.lock) {
    err << "gray: " << lock.error << "\n";
    return kExitFindings;
  }
  JournalOpen jo = Journal::open_for_append(s.run_dir, loaded);
  if (!jo.journal) {
    err << "gray: cannot resume " << s.run_id << ": " << jo.error << "\n";
    return kExitFindings;
  }
  for (const std::string& n : jo.notes) err << "gray: " << n << "\n";
  if (format == Format::Text)
    err << "gray: resuming " << s.run_id << " after " << state.completed.size() << " completed step" << (state.completed.size() == 1 ? "" : "s")
        << (state.in_flight.empty() ? "" : "; re-entering " + state.in_flight.back().started.step) << "\n";
  return execute(*fe, m, s, *jo.journal, &state, world.get(), out, err, format == Format::Json);
}

int cmd_status(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  spec["--state-dir"] = true;
  spec["--format"] = true;
  spec["--watch"] = false;
  ParsedArgs a = parse_args(args, 2, spec);
  Format format = parse_format(a.get("--format", "text"), false);
  std::string state_dir = a.get("--state-dir", ".gray");
  std::string id = a.positional.empty() ? latest_run(state_dir) : a.positional[0];
  if (id.empty()) throw UsageError{"no runs in " + runs_dir(state_dir)};
  for (;;) {
    std::string path = runs_dir(state_dir) + "/" + id + "/" + kJournalFileName;
    std::error_code ec;
    if (!fs::exists(path, ec)) throw UsageError{"no run '" + id + "' in " + runs_dir(state_dir)};
    LoadResult loaded = load_journal(path);
    if (!loaded.ok()) {
      err << "gray: the journal of " << id << " is damaged: " << loaded.error << "\n";
      return kExitFindings;
    }
    ReplayState st = replay(loaded.records);
    nlohmann::json j = {{"run", id}, {"pipeline", loaded.header.pipeline}, {"started_at", loaded.header.started_at},
                        {"clock", loaded.header.clock == JournalHeader::Clock::Virtual ? "virtual" : "real"},
                        {"phase", st.phase}, {"stage", st.stage ? st.stage->name : ""}, {"completed_steps", st.completed.size()},
                        {"elapsed", clock_text(st.last_at_ms)}};
    nlohmann::json weights = nlohmann::json::object();
    for (const auto& [g, w] : st.weights) weights[g] = w.canary;
    j["weights"] = weights;
    nlohmann::json guards = nlohmann::json::object();
    for (const auto& [g, v] : st.guards)
      if (!v.empty()) guards[g] = {{"verdict", journal::verdict_name(v.back().verdict)}, {"value", v.back().value.text()}};
    j["guards"] = guards;
    nlohmann::json undo = nlohmann::json::array();
    for (auto it = st.undo_stack.rbegin(); it != st.undo_stack.rend(); ++it) {
      std::string line = it->undo.plugin + "." + it->undo.op + "(";
      bool first = true;
      for (const auto& [k, v] : it->undo.args) {
        line += (first ? "" : ", ") + k + ": " + v.shown();
        first = false;
      }
      undo.push_back(line + ")" + (it->undo.host.empty() ? "" : " on " + it->undo.host));
    }
    j["would_undo"] = undo;
    nlohmann::json flying = nlohmann::json::array();
    for (const auto& f : st.in_flight) flying.push_back(f.started.step);
    j["in_flight"] = flying;
    for (const auto& [gate, ap] : st.approvals)
      if (!ap.answered) j["waiting_for_approval"] = gate;
    if (st.outcome) j["outcome"] = {{"result", journal::outcome_name(st.outcome->kind)}, {"reason", st.outcome->reason}};
    if (format == Format::Json) {
      out << j.dump(2) << "\n";
    } else {
      out << "run " << id << " of " << loaded.header.pipeline << " (" << j["clock"].get<std::string>() << " clock, started "
          << loaded.header.started_at << ")\n";
      out << "  elapsed: " << j["elapsed"].get<std::string>() << ", " << st.completed.size() << " steps completed\n";
      if (!st.phase.empty()) out << "  phase: " << st.phase << "\n";
      if (st.stage) out << "  stage: " << st.stage->name << "\n";
      for (const auto& [g, w] : weights.items()) out << "  weights: " << g << " canary " << w.get<double>() << "%\n";
      for (const auto& [g, v] : guards.items()) out << "  guard " << g << ": " << v["verdict"].get<std::string>() << " (" << v["value"].get<std::string>() << ")\n";
      for (const auto& f : flying) out << "  in flight: " << f.get<std::string>() << "\n";
      if (j.contains("waiting_for_approval")) out << "  waiting for approval at " << j["waiting_for_approval"].get<std::string>() << " (gray promote / gray abort)\n";
      if (st.outcome) out << "  outcome: " << journal::outcome_name(st.outcome->kind) << " — " << st.outcome->reason << "\n";
      out << "  would undo (newest first):" << (undo.empty() ? " nothing" : "") << "\n";
      for (const auto& u : undo) out << "    - " << u.get<std::string>() << "\n";
    }
    if (!a.has("--watch") || st.outcome) break;
    out.flush();
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the status view polls; the run itself never sleeps here
  }
  return kExitOk;
}

namespace {

int answer(const std::vector<std::string>& args, std::ostream& out, const std::string& what) {
  OptionSpec spec;
  spec["--state-dir"] = true;
  ParsedArgs a = parse_args(args, 2, spec);
  if (a.positional.size() != 1) throw UsageError{args[1] + " takes a run id"};
  std::string dir = runs_dir(a.get("--state-dir", ".gray")) + "/" + a.positional[0];
  std::error_code ec;
  if (!fs::exists(dir + "/" + kJournalFileName, ec)) throw UsageError{"no run '" + a.positional[0] + "'"};
  if (!write_atomic(dir + "/answer", what + "\n")) throw UsageError{"cannot write to " + dir};
  out << "asked run " << a.positional[0] << " to " << what
      << ": a running run acts on it within a second (a waiting gate takes it as its answer); a stopped run, when resumed\n";
  return kExitOk;
}

}  // namespace

int cmd_promote(const std::vector<std::string>& args, std::ostream& out, std::ostream&) { return answer(args, out, "promote"); }
int cmd_abort(const std::vector<std::string>& args, std::ostream& out, std::ostream&) { return answer(args, out, "abort"); }
int cmd_rollback(const std::vector<std::string>& args, std::ostream& out, std::ostream&) { return answer(args, out, "rollback"); }

int cmd_force_unlock(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  spec["--state-dir"] = true;
  ParsedArgs a = parse_args(args, 2, spec);
  if (a.positional.size() != 1) throw UsageError{"force-unlock takes a target (the pipeline name)"};
  std::string path = lock_path(a.get("--state-dir", ".gray"), a.positional[0]);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    err << "gray: " << a.positional[0] << " is not locked\n";
    return kExitFindings;
  }
  std::string holder = slurp(path);
  fs::remove(path, ec);
  if (ec) throw UsageError{"cannot remove " + path + ": " + ec.message()};
  out << "removed the lock on " << a.positional[0] << " (it was: " << holder.substr(0, holder.find('\n')) << ")\n";
  return kExitOk;
}

}  // namespace gray
