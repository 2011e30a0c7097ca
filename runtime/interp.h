// The interpreter: runs a checked pipeline against plugins on the scheduler, journaling every
// step through a RunLog so that a killed run can be replayed to where it stopped.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lang/load.h"
#include "plugins/api.h"
#include "runtime/scheduler.h"
#include "runtime/value.h"

namespace gray {

// Something that happened, for timelines, progress lines and JSON event streams.
struct Event {
  double at_ms = 0;
  std::string kind;   // run, stage, step, weights, guard, phase, approval, undo, outcome, note
  std::string stage;
  std::string step;   // the step's path in the pipeline
  std::string host;
  std::string text;   // one line for people
  nlohmann::json data = nlohmann::json::object();
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const Event& e) = 0;
};

// What the journal remembers of a step, as the interpreter needs it on replay.
struct StepRecord {
  double started_at = 0;
  bool done = false;
  plugins::Result result;
  // For a step in flight: the compensation read before its effect (Driver::undo_for).
  std::optional<plugins::Call> planned_undo = std::nullopt;
};

// The journal, seen from the interpreter. `find` answers from what was loaded at resume time.
class RunLog {
 public:
  virtual ~RunLog() = default;
  virtual const StepRecord* find(const std::string& key) = 0;
  // `planned_undo`: the compensation of the effect about to happen, journaled ahead of it.
  virtual void started(const std::string& key, const std::string& op, const nlohmann::json& args, const std::string& host,
                       double at, const plugins::Call* planned_undo = nullptr) = 0;
  virtual void finished(const std::string& key, const plugins::Result& r, double at) = 0;
  // The compensation of a completed step ran, or is no longer needed (a restore settled a drain).
  virtual void undone(const std::string& key, double at) = 0;
  virtual void event(const Event& e) = 0;
  // The verdicts a guard gave in a stage before the run was resumed, oldest first: a resumed
  // guard goes on counting a sustained breach instead of starting over.
  struct Verdict {
    std::string verdict;  // pass, fail, inconclusive, error
    double at = 0;
  };
  virtual std::vector<Verdict> guard_history(const std::string& guard, const std::string& stage) { return {}; }
  // The run decided to roll back: journaled before the first compensation.
  virtual void rolling_back(const std::string& reason, double at) {}
  // A resumed run that had decided to roll back: why. It replays its way to where it was and
  // rolls back from there, starting nothing new on the way.
  virtual std::optional<std::string> rollback_decided() { return std::nullopt; }
};

struct Outcome {
  enum class Kind { Promoted, RolledBack, Aborted, Failed, Paused, NeedsAttention, Stopped };
  Kind kind = Kind::Promoted;
  std::string stage;
  std::string step;
  std::string reason;
  std::vector<std::string> remaining_undo;  // what could not be undone (needs attention)
};

const char* outcome_name(Outcome::Kind k);

struct PluginDecl {
  std::string name;
  plugins::Kind kind;
  std::string driver;
  Value config;
};

struct Services {
  std::function<std::unique_ptr<plugins::Driver>(const PluginDecl&)> make_driver;
  plugins::Prober* prober = nullptr;
  EventSink* events = nullptr;
  RunLog* log = nullptr;
  // Answers to manual gates: returns "promote", "abort" or "rollback" once someone answered.
  std::function<std::optional<std::string>(const std::string& gate)> answer;
  // How often to look for an answer (real time) or the answer to assume at once (simulation).
  double answer_poll_ms = 1000;
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  // Real drivers need addresses: a call whose `server` or `instance` is a host then also carries
  // the host's inventory record as `addr`, `port` and `vars` (the other fields, as strings).
  bool host_records = false;
};

struct RunConfig {
  std::string run_id = "run";
  std::map<std::string, std::string> params;  // --set name=value
};

// A parameter value or a run-start problem, reported before anything happens.
struct SetupError {
  Span span;
  std::string message;
  bool usage = true;  // the invocation is wrong (a parameter), not the world (a failed read)
};

class Interpreter {
 public:
  // The module must hold a pipeline and have checked clean.
  Interpreter(const Project& project, int module, Scheduler& scheduler, Services services, RunConfig config);
  ~Interpreter();

  // Builds the environment: parameters, plugins, metrics. Throws SetupError.
  void prepare();
  Task<Outcome> run();

  // Stop at the next safe point (signals); the outcome is Stopped.
  void request_stop();
  // An operator's word while the run is not at a gate: "abort" ends it as aborted, "rollback"
  // rolls it back, as a breached guard would. Returns what happened, for the operator.
  std::string operator_request(const std::string& action);
  // Whether an `approve` gate is waiting (it takes answers itself).
  bool at_gate() const;
  const std::vector<PluginDecl>& plugin_decls() const;
  plugins::Driver* driver(const std::string& name);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Converts `--set` text to the parameter's declared type ("10m" -> duration). Throws SetupError.
Value param_value(const std::string& text, const std::string& type, Span at);

}  // namespace gray
