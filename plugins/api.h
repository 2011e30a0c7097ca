// The interface between the interpreter and the plugins. Every plugin kind speaks the same
// shape: a named operation with named arguments (see catalog.h for the operations of each
// kind), an idempotency key, and a result. Side effects happen only behind this interface.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plugins/catalog.h"
#include "runtime/value.h"

namespace gray::plugins {

struct Call {
  std::string op;                  // an operation of the driver's kind, or "run" for hosts
  std::map<std::string, Value> args;
  std::string key;                 // idempotency key: the same key must never apply an effect twice
  double timeout_ms = 30000;
};

struct Result {
  enum class Status {
    Ok,       // done; `value` holds what was read
    NoData,   // a read found nothing (a metric query with an empty result)
    Failed,   // the operation ran and failed (a command exited non-zero, a probe got a 500)
    Error,    // the operation could not run (unreachable, timeout, bad answer); may be retried
  };
  Status status = Status::Ok;
  Value value;
  std::string message;                  // for Failed / Error: what happened, for people
  double elapsed_ms = 0;                // how long the call took (simulated time for sim drivers)
  std::optional<Call> undo;             // the compensating call, when the driver knows one
  bool replayed = false;                // the key was seen before: nothing was applied again

  bool ok() const { return status == Status::Ok; }
};

// A configured driver instance. Calls may block (real drivers do I/O); a driver is used by one
// thread at a time unless it says otherwise.
class Driver {
 public:
  virtual ~Driver() = default;
  virtual Kind kind() const = 0;
  virtual Result call(const Call& call) = 0;
  // The call that would undo the effectful `call`, read from the world as it is now, before
  // `call` is made. The interpreter journals it ahead of the effect, so a run killed between the
  // effect and its record still knows what to undo. nullopt: no undo is known (the effect's
  // Result::undo is used instead), or an error reading the current state (then `call` reports it).
  virtual std::optional<Call> undo_for(const Call& call) { return std::nullopt; }
};

// What a pipeline's `hosts` plugin knows about its hosts without doing anything.
struct HostRecord {
  std::string name;
  std::string addr;
  int port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> vars;  // any other inventory field
};

class HostsDriver : public Driver {
 public:
  Kind kind() const override { return Kind::Hosts; }
  virtual std::vector<HostRecord> inventory() = 0;
};

// HTTP and TCP probes are made by gray itself, not on a host; this is where they go.
class Prober {
 public:
  virtual ~Prober() = default;
  // `target` is a URL (http) or host:port (tcp); headers as "Name: value".
  virtual Result http(const std::string& url, const std::vector<std::string>& headers, double timeout_ms) = 0;
  virtual Result tcp(const std::string& address, double timeout_ms) = 0;
};

}  // namespace gray::plugins
