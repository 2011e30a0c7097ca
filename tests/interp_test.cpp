// The interpreter against a small recording fake: order of effects, guards, rollback by
// compensation, approvals, replay of a journal. The simulated world has its own tests.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lang/check.h"
#include "runtime/interp.h"

namespace fs = std::filesystem;
using namespace gray;

namespace {

// Every call, in order; a metric whose value the test sets; commands that fail on demand.
struct Fake {
  std::vector<std::string> calls;
  double metric = 0.001;
  bool metric_nodata = false;
  std::string fail_command;  // substring of a command that exits 1
  double sessions = 100;
  double sessions_drop = 30;  // per read
  double initial_weight = 0;  // the gateway's canary share before the run
  bool plan_undo = false;     // the gateway reads its compensation before each effect (undo_for)
};

class FakeDriver : public plugins::Driver {
 public:
  FakeDriver(Fake& f, plugins::Kind k, std::string name) : f_(f), kind_(k), name_(std::move(name)), last_weight_(f.initial_weight) {}
  plugins::Kind kind() const override { return kind_; }
  std::optional<plugins::Call> undo_for(const plugins::Call& c) override {
    if (!f_.plan_undo || c.op != "weight") return std::nullopt;
    plugins::Call undo;
    undo.op = "weight";
    undo.args["canary"] = Value::percent(last_weight_);
    return undo;
  }
  plugins::Result call(const plugins::Call& c) override {
    plugins::Result r;
    r.elapsed_ms = 100;
    if (c.op == "query") {
      if (f_.metric_nodata) r.status = plugins::Result::Status::NoData;
      r.value = Value::number(f_.metric);
      return r;
    }
    if (c.op == "tagged" || c.op == "all") {
      List hs;
      for (const char* h : {"h1", "h2", "h3"}) hs.push_back(Value::named(Value::Kind::Host, h));
      r.value = Value::of_list(hs, Value::Kind::Hosts);
      return r;
    }
    if (c.op == "sessions") {
      r.value = Value::number(f_.sessions);
      f_.sessions = std::max(0.0, f_.sessions - f_.sessions_drop);
      return r;
    }
    std::string line = name_ + "." + c.op;
    for (const auto& [k, v] : c.args) line += " " + k + "=" + v.text();
    f_.calls.push_back(line);
    if (c.op == "run" && !f_.fail_command.empty() && c.args.at("command").text().find(f_.fail_command) != std::string::npos) {
      r.status = plugins::Result::Status::Failed;
      r.message = "exit status 1";
    }
    if (c.op == "weight") {
      plugins::Call undo;
      undo.op = "weight";
      undo.args["canary"] = Value::percent(last_weight_);
      r.undo = undo;
      last_weight_ = c.args.at("canary").num;
    }
    return r;
  }

 private:
  Fake& f_;
  plugins::Kind kind_;
  std::string name_;
  double last_weight_;
};

class Recorder : public EventSink {
 public:
  void on_event(const Event& e) override { lines.push_back(e.kind + " " + e.text); }
  std::vector<std::string> lines;
  bool has(const std::string& s) const {
    for (const auto& l : lines)
      if (l.find(s) != std::string::npos) return true;
    return false;
  }
};

// A journal kept in memory.
class MemoryLog : public RunLog {
 public:
  std::map<std::string, StepRecord> steps;
  std::vector<std::string> order;
  const StepRecord* find(const std::string& key) override {
    auto it = steps.find(key);
    return it == steps.end() ? nullptr : &it->second;
  }
  void started(const std::string& key, const std::string&, const nlohmann::json&, const std::string&, double at, const plugins::Call*) override {
    steps[key].started_at = at;
    order.push_back(key);
  }
  void finished(const std::string& key, const plugins::Result& r, double) override {
    steps[key].done = true;
    steps[key].result = r;
  }
  void undone(const std::string&, double) override {}
  void event(const Event&) override {}
};

struct Run {
  Outcome outcome;
  std::vector<std::string> calls;
  Recorder events;
  double duration_ms = 0;
};

Run run_pipeline(const std::string& text, Fake& fake, std::map<std::string, std::string> params = {}, MemoryLog* log = nullptr,
                 std::function<std::optional<std::string>(const std::string&)> answer = nullptr) {
  fs::path dir = (fs::temp_directory_path() / ("gray-interp-test-" + std::to_string(::getpid())));
  fs::create_directories(dir);
  fs::path file = dir / "p.gray";
  std::ofstream(file) << text;
  DiskReader reader;
  Project project(LoadOptions{dir.string(), false, "", 64u << 20}, reader);
  Diagnostics diags;
  int m = project.load(file.string(), diags);
  check_project(project, diags);
  INFO(render_text(project.sources(), diags.list(), {}));
  REQUIRE_FALSE(diags.has_errors());
  VirtualClock clock;
  Scheduler sched(clock, &clock);
  Run run;
  Services svc;
  svc.make_driver = [&](const PluginDecl& d) { return std::make_unique<FakeDriver>(fake, d.kind, d.name); };
  svc.events = &run.events;
  svc.log = log;
  svc.answer = answer;
  Interpreter interp(project, m, sched, svc, RunConfig{"t", params});
  interp.prepare();
  run.outcome = sched.run(interp.run());
  run.calls = fake.calls;
  run.duration_ms = clock.now_ms();
  return run;
}

const char* kCanary = R"(
pipeline "p" {
  param version
  param previous = "1.0"
  gateway edge = sim {}
  hosts fleet = sim {}
  metrics m = sim {}
  metric error_rate = m.query("errors")

  deploy canary {
    on fleet.tagged("canary")
    run "deploy ${version} on ${host}"
    undo "deploy ${previous} on ${host}"
  }
  ramp traffic {
    via edge
    steps 10% -> 50% -> 100%
    hold 10m
    guard error_rate < 1% for 1m
    on breach rollback
  }
  rollback {
    undo all
  }
}
)";

}  // namespace

TEST_CASE("a good release shifts traffic step by step and is promoted") {
  Fake fake;
  Run r = run_pipeline(kCanary, fake, {{"version", "2.0"}});
  CHECK(r.outcome.kind == Outcome::Kind::Promoted);
  std::vector<std::string> want = {
      "fleet.run command=deploy 2.0 on h1 host=h1", "fleet.run command=deploy 2.0 on h2 host=h2",
      "fleet.run command=deploy 2.0 on h3 host=h3", "edge.weight canary=10%", "edge.weight canary=50%", "edge.weight canary=100%"};
  CHECK(r.calls == want);
  // Three holds of 10 minutes, plus the steps' own time: virtual, so instant.
  CHECK(r.duration_ms >= 30 * 60000);
  CHECK(r.duration_ms < 31 * 60000);
}

TEST_CASE("a breached guard rolls back by compensation, newest first") {
  Fake fake;
  fake.metric = 0.05;  // 5% errors: over the 1% threshold from the start
  Run r = run_pipeline(kCanary, fake, {{"version", "2.0"}});
  CHECK(r.outcome.kind == Outcome::Kind::RolledBack);
  CHECK(r.outcome.reason.find("guard error_rate < 1% for 1m breached in stage traffic") == 0);
  std::vector<std::string> want = {"fleet.run command=deploy 2.0 on h1 host=h1",
                                   "fleet.run command=deploy 2.0 on h2 host=h2",
                                   "fleet.run command=deploy 2.0 on h3 host=h3",
                                   "edge.weight canary=10%",
                                   // rollback: the weight first, then the deploys in reverse
                                   "edge.weight canary=0%",
                                   "fleet.run command=deploy 1.0 on h3 host=h3",
                                   "fleet.run command=deploy 1.0 on h2 host=h2",
                                   "fleet.run command=deploy 1.0 on h1 host=h1"};
  CHECK(r.calls == want);
  // Sustained for 1m with evaluations every 30s: the breach comes at the third evaluation.
  CHECK(r.events.has("guard error_rate < 1% for 1m: fail (error_rate=0.05)"));
}

TEST_CASE("no data makes a guard inconclusive and the run pauses") {
  Fake fake;
  fake.metric_nodata = true;
  Run r = run_pipeline(kCanary, fake, {{"version", "2.0"}});
  CHECK(r.outcome.kind == Outcome::Kind::Paused);
  CHECK(r.events.has("inconclusive (no data for error_rate)"));
}

TEST_CASE("a failing step fails the stage and rolls back what was done") {
  Fake fake;
  fake.fail_command = "on h2";
  Run r = run_pipeline(kCanary, fake, {{"version", "2.0"}});
  CHECK(r.outcome.kind == Outcome::Kind::RolledBack);
  CHECK(r.outcome.reason.find("exit status 1") != std::string::npos);
  // h1 was deployed and is undone; h2 failed (its undo is not registered); h3 never started.
  CHECK(r.calls.back() == "fleet.run command=deploy 1.0 on h1 host=h1");
}

TEST_CASE("missing and unknown parameters are refused before anything runs") {
  Fake fake;
  CHECK_THROWS_AS(run_pipeline(kCanary, fake, {}), SetupError);
  CHECK_THROWS_AS(run_pipeline(kCanary, fake, {{"version", "2"}, {"verison", "3"}}), SetupError);
  CHECK(fake.calls.empty());
}

TEST_CASE("wait until polls a live count and fails at its timeout") {
  const char* p = R"(
pipeline "p" {
  gateway edge = sim {}
  deploy d {
    wait until edge.sessions("a") < 10 timeout 1m every 10s
  }
}
)";
  Fake fake;
  fake.sessions = 100;
  fake.sessions_drop = 30;  // 100, 70, 40, 10, 0
  Run ok = run_pipeline(p, fake);
  CHECK(ok.outcome.kind == Outcome::Kind::Promoted);
  CHECK(ok.duration_ms == 40000);
  Fake slow;
  slow.sessions = 1000;
  slow.sessions_drop = 1;
  Run late = run_pipeline(p, slow);
  CHECK(late.outcome.kind == Outcome::Kind::RolledBack);
  CHECK(late.outcome.reason.find("still false after 1m") != std::string::npos);
}

TEST_CASE("an approval gate takes its default after the timeout, or the answer given") {
  const char* p = R"(
pipeline "p" {
  gateway edge = sim {}
  ramp r {
    via edge
    steps 50%
    approve "go on?" timeout 30m default abort
  }
}
)";
  Fake fake;
  Run r = run_pipeline(p, fake);
  CHECK(r.outcome.kind == Outcome::Kind::Aborted);
  CHECK(r.duration_ms == 30 * 60000);
  Fake fake2;
  Run yes = run_pipeline(p, fake2, {}, nullptr, [](const std::string&) { return std::optional<std::string>("promote"); });
  CHECK(yes.outcome.kind == Outcome::Kind::Promoted);
}

TEST_CASE("a replay skips completed steps and keeps the remaining hold time") {
  Fake first;
  MemoryLog log;
  Run r1 = run_pipeline(kCanary, first, {{"version", "2.0"}}, &log);
  REQUIRE(r1.outcome.kind == Outcome::Kind::Promoted);
  // Pretend the process died in the second hold: drop everything journaled after it started.
  std::string hold2 = "t:traffic.hold2";
  auto it = std::find(log.order.begin(), log.order.end(), hold2);
  REQUIRE(it != log.order.end());
  MemoryLog partial;
  for (auto k = log.order.begin(); k != it; ++k) partial.steps[*k] = log.steps[*k];
  partial.steps[hold2] = StepRecord{log.steps[hold2].started_at, false, {}, std::nullopt};
  partial.order.assign(log.order.begin(), it + 1);
  Fake second;
  Run r2 = run_pipeline(kCanary, second, {{"version", "2.0"}}, &partial);
  CHECK(r2.outcome.kind == Outcome::Kind::Promoted);
  // Only the last shift is new: nothing before the crash was applied twice.
  CHECK(r2.calls == std::vector<std::string>{"edge.weight canary=100%"});
}

TEST_CASE("a step re-entered after a crash keeps the compensation read before its effect") {
  // The run died after the gateway applied 10% but before the journal said so: the gateway
  // already answers 10%, and reading the compensation again would say "back to 10%". The
  // compensation journaled ahead of the effect says "back to 0%", and that is the one kept.
  Fake first;
  first.plan_undo = true;
  MemoryLog full;
  REQUIRE(run_pipeline(kCanary, first, {{"version", "2.0"}}, &full).outcome.kind == Outcome::Kind::Promoted);
  const std::string step1 = "t:traffic.step1";
  auto it = std::find(full.order.begin(), full.order.end(), step1);
  REQUIRE(it != full.order.end());
  MemoryLog log;  // the deploys completed; the first shift is in flight with its compensation
  for (auto k = full.order.begin(); k != it; ++k) log.steps[*k] = full.steps[*k];
  plugins::Call planned;
  planned.op = "weight";
  planned.args["canary"] = Value::percent(0);
  log.steps[step1] = StepRecord{0, false, {}, planned};
  Fake fake;
  fake.plan_undo = true;
  fake.initial_weight = 10;
  fake.metric = 0.05;  // the guard breaches: the run rolls back and shows which undo it kept
  Run r = run_pipeline(kCanary, fake, {{"version", "2.0"}}, &log);
  CHECK(r.outcome.kind == Outcome::Kind::RolledBack);
  REQUIRE(r.calls.size() >= 2);
  CHECK(r.calls[0] == "edge.weight canary=10%");  // re-entered with the same key: harmless
  CHECK(r.calls[1] == "edge.weight canary=0%");   // the compensation from before the crash
}

TEST_CASE("without a crash, the compensation read before the effect is the one used") {
  Fake fake;
  fake.plan_undo = true;
  fake.initial_weight = 3;  // someone left 3% on the canary before the run: undo returns there
  fake.metric = 0.05;
  Run r = run_pipeline(kCanary, fake, {{"version", "2.0"}});
  CHECK(r.outcome.kind == Outcome::Kind::RolledBack);
  CHECK(std::find(r.calls.begin(), r.calls.end(), "edge.weight canary=3%") != r.calls.end());
}
