// What the registry drivers (etcd, Nacos, Consul, Eureka) share: which instance a call is about,
// metadata patches and their undo, the canary selection, and the integer weights that give a
// group of instances a share of the traffic.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plugins/api.h"

namespace gray::plugins::registry {

// A call's time budget (Call::timeout_ms), spent by the requests it makes.
class Budget {
 public:
  explicit Budget(double total_ms) : total_ms_(total_ms > 0 ? total_ms : 30000) {}
  double left() const { return std::max(1.0, total_ms_ - elapsed()); }
  double elapsed() const { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  double total_ms_;
};

// The instance a call names: the `instance` argument (an inventory host name, or "ip:port") and
// the host's inventory record when the interpreter knows it (`addr`, `port`, `vars`).
struct InstanceRef {
  std::string name;
  std::string addr;  // empty when unknown
  int port = 0;      // 0 when unknown
  std::map<std::string, std::string> vars;

  bool has_address() const { return !addr.empty() && port > 0; }
  std::string address() const { return addr + ":" + std::to_string(port); }
  std::string var(const std::string& key) const;
};

// Reads instance/addr/port/vars from a call. An "ip:port" name fills in the address when the call
// has none. Returns nullopt and sets `error` when there is no usable `instance`.
std::optional<InstanceRef> instance_ref(const Call& call, std::string& error);

// "10.0.0.5:8080" -> "10.0.0.5", 8080. False when `text` is not host:port.
bool split_address(const std::string& text, std::string& host, int& port);

using Metadata = std::map<std::string, std::string>;
// A metadata change: a value sets the key, nullopt removes it.
using Patch = std::map<std::string, std::optional<std::string>>;

// The Map argument `name` as a patch (values as text, nulls as removals). nullopt when the
// argument is absent; sets `error` when it is not a map.
std::optional<Patch> patch_arg(const Call& call, const std::string& name, std::string& error);
// Applies `patch`; true when `metadata` changed.
bool apply_patch(Metadata& metadata, const Patch& patch);
// The map argument that puts back what `patch` would change in `metadata` (null for keys that
// were absent).
Value undo_patch(const Metadata& metadata, const Patch& patch);
Value metadata_value(const Metadata& metadata);

const Value* arg(const Call& call, const std::string& name);
// Gives an undo call about an instance the address the original call had (or `addr`:`port`, what
// the driver last saw of it) and its inventory vars, so the undo still finds the instance when a
// restarted gray runs it from the journal.
void complete_undo(Call& undo, const Call& original, const std::string& addr, int port);
Call make_call(std::string op, std::map<std::string, Value> args);

// Which registered instances are the canary: those named in `canary` (instance id, "ip:port" or
// ip) and those whose version is `canary_version`.
struct CanarySelection {
  std::vector<std::string> members;
  std::string version;

  bool configured() const { return !members.empty() || !version.empty(); }
  bool matches(const std::string& id, const std::vector<std::string>& addresses, const std::string& instance_version) const;
  std::string describe() const;
};
CanarySelection canary_selection(const std::string& instance, const Value& config);

// Per-instance integer weights giving the canary group `percent` of the traffic: each canary
// instance gets `canary`, each stable one `stable`, so that
// n_canary*canary / (n_canary*canary + n_stable*stable) == percent/100 (exact to 0.01%, reduced to
// the smallest integers, scaled under `max_weight` when needed).
struct Split {
  long canary = 0;
  long stable = 0;
};
Split split_weights(double percent, size_t n_canary, size_t n_stable, long max_weight);
// The canary share in percent of a set of (is_canary, weight) pairs; nullopt when all weigh 0.
std::optional<double> canary_share(const std::vector<std::pair<bool, double>>& weights);

// The `canary` argument of the weight operation as a percent (5 for 5%); nullopt for null (which
// asks to clear the weights gray set). Sets `error` for anything else or a value out of 0..100.
std::optional<double> percent_arg(const Call& call, std::string& error, bool& clear);

// "1.5" -> 1.5; nullopt for text that is not a plain number.
std::optional<double> parse_number(const std::string& text);
// 3 -> "3", 2.5 -> "2.5".
std::string number_text(double v);

}  // namespace gray::plugins::registry
