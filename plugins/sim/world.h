// The simulated world that `gray simulate` and the tests run pipelines against: hosts running
// versions, traffic through gateways or registry clients, metrics measured from that traffic,
// commands that install and stop things, and injected faults. One model, so that every effect
// of a pipeline is visible in every measurement (a host being installed fails the requests
// that still reach it; a deregistered instance keeps its traffic until client caches refresh).
//
// Time is virtual, in milliseconds, passed in by the caller. `advance_to` integrates traffic
// analytically between events (an install ending, a cache refresh, a schedule change): the
// cost is O(servers) per event, never per request. Randomness (metric noise, random faults)
// comes from one seeded generator, so a seed reproduces a run.
//
// The entry points below lock the world, so drivers on worker threads (a real-clock run against
// a saved world) may share it; the accessors returning references are for reading when no call
// is in flight (tests, reports).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "plugins/api.h"
#include "plugins/sim/meter.h"
#include "plugins/sim/scenario.h"

namespace gray::sim {

using plugins::Call;
using plugins::Result;

struct Host {
  std::string name, addr;
  int port = 0;
  std::vector<std::string> tags;
  std::string version, mode;
  HostState state = HostState::Up;
  double busy_until = kForever;         // while Installing: when the install ends
  std::string next_version, next_mode;  // what it runs after the install
  double served = 0, failed = 0;        // requests it received, and failed
  int vid = 0;                          // index of `version` in the world's version table
  std::string id() const { return addr + ":" + std::to_string(port); }
  bool serving() const { return state == HostState::Up; }
};

enum class ServerState : unsigned char { Ready, Drain, Maint };
const char* server_state_name(ServerState s);

struct Server {
  std::string name;
  bool canary = false;
  int rank = 0;  // position in its group (for `scale`)
  ServerState state = ServerState::Ready;
  double sessions = 0;
  int host = -1;    // index into the hosts; -1: nobody behind it, always up on the scenario's version
  double rate = 0;  // requests per ms in the current segment
};

// A routing rule at a gateway (the extension operations `route`, see drivers.h).
struct Route {
  std::string match;   // header, cookie or ip
  std::string name;    // header or cookie name
  std::string op;      // == or ~
  std::string value;   // for ip: CIDR ranges joined by ","
  std::string target;  // canary, stable, or a version
  bool operator==(const Route&) const = default;
};

struct Gateway {
  std::string name;
  std::vector<Server> servers;  // stable first, then canary
  double canary_percent = 0;
  int scale[2] = {-1, -1};  // servers in rotation per group (stable, canary); -1: all
  std::vector<Route> routes;
  GatewaySpec spec;
  Flow group_flow[2];  // scratch: this segment's flow per group
};

struct Member {
  std::string id;  // "addr:port"
  bool registered = true, enabled = true, paused = false;
  double weight = 1;
  Map metadata;
  double reregister_at = kForever;  // when the node's agent registers it again
  int host = -1;
  bool canary = false;
};

// Clients of a registry, in groups that refresh their cached view at staggered times.
struct ClientView {
  std::uint64_t generation = 0;    // of the registry when the view was taken
  double next_refresh = kForever;  // only while stale
  std::vector<size_t> members;     // visible members (indexes), in the registry's order
  std::vector<double> weights;
};

struct Registry {
  std::string name;
  std::vector<Member> members;
  std::map<std::string, size_t> by_id;
  std::uint64_t generation = 1;
  std::vector<ClientView> views;
  double canary_percent = -1;  // -1: by instance weights only
  bool every_host = true;      // members are every host (new hosts join)
  RegistrySpec spec;
};

// What happened to one idempotency key.
struct KeyRecord {
  int calls = 0;    // calls that carried it
  int applied = 0;  // times its effect was applied (never more than 1)
  std::string failed;  // the call ran and failed: the same key answers the same failure again
  double done_at = 0;  // when the applied effect finishes (a command takes its time)
  Value value;
  std::optional<Call> undo;
};

// One applied effect, in order: for reports and for tests that count side effects.
struct Effect {
  double at_ms = 0;
  std::string kind, instance, op, detail, key;
};

struct Counts {
  double served = 0, failed = 0;
  bool operator==(const Counts&) const = default;
};

struct Summary {
  double now_ms = 0;
  Counts total;
  std::map<std::string, Counts> by_version;
  std::map<std::string, double> weights;                    // gateway -> canary percent
  std::map<std::string, std::vector<std::string>> members;  // registry -> registered instances
  std::map<std::string, std::string> host_versions, host_states;
  std::map<std::string, int> applied;  // key -> times applied
  int replays = 0;                     // calls answered from a key already applied
  size_t effects = 0;
  bool operator==(const Summary&) const = default;
  nlohmann::json to_json() const;
};

class World {
 public:
  // Validates the scenario (see scenario.h); nullptr and `error` on a problem.
  static std::unique_ptr<World> from_scenario(const nlohmann::json& scenario, std::string& error);
  // A world from a scenario validated once by parse_scenario: `gray simulate --runs` starts each
  // run from the same parsed scenario instead of reading the JSON again.
  static std::unique_ptr<World> from_parsed(const Scenario& scenario);
  // The whole state, as written by save(): a killed run resumes against the same world.
  static std::unique_ptr<World> load(const std::string& path, std::string& error);
  bool save(const std::string& path, std::string& error) const;  // atomic: temp file + rename

  void reseed(std::uint64_t seed);
  // Integrates everything up to `now_ms`. Time never goes back: an earlier time is ignored.
  void advance_to(double now_ms);
  double now_ms() const { return now_; }

  // Instances declared by the pipeline. A gateway's groups come from the scenario when it lists
  // them, else from the pipeline's configuration; an existing instance is left as it is.
  void add_gateway(const std::string& name, const std::vector<std::string>& stable, const std::vector<std::string>& canary);
  void add_registry(const std::string& name);
  void add_host(const HostSpec& spec);  // ignored when a host of that name exists
  // Hosts of an inventory file ({"hosts": [...]}) that the world does not know yet.
  bool add_inventory(const std::string& path, std::string& error);

  // Every plugin call: advance to now, apply faults, honour the idempotency key, run the
  // operation. `instance` is the pipeline's name for the plugin ("edge").
  Result call(plugins::Kind kind, const std::string& instance, const Call& call, double now_ms);
  Result probe_http(const std::string& url, const std::vector<std::string>& headers, double timeout_ms, double now_ms);
  Result probe_tcp(const std::string& address, double timeout_ms, double now_ms);

  std::vector<plugins::HostRecord> inventory() const;
  const std::vector<Host>& hosts() const { return hosts_; }
  const Host* host(const std::string& name) const;
  const Gateway* gateway(const std::string& name) const;
  const Registry* registry(const std::string& name) const;
  // Raw window totals of a series ("all", "v:2.4.1", "g:edge/canary"), without noise.
  Meter::Reading reading(const std::string& series, double window_ms) const { return meter_.read(series, now_, window_ms); }
  const std::map<std::string, KeyRecord>& keys() const { return keys_; }
  const std::vector<Effect>& effects() const { return effects_; }
  const Scenario& scenario() const { return sc_; }

  Summary summary() const;
  nlohmann::json summary_json() const { return summary().to_json(); }

 private:
  explicit World(Scenario sc);

  // Time.
  double next_event() const;
  void apply_events();
  void integrate(double from_ms, double to_ms);
  void refresh_series_ids();
  void compute_flows(double t);
  void flow_gateway(Gateway& g, double rate, double t);
  void flow_registry(Registry& r, double rate, double t);
  void send(Gateway& g, const std::string& target, double rate, double t, bool fallback);
  void deliver(int host, double rate, double t, Flow* group);
  void unroutable(double rate, Flow* group);
  bool in_rotation(const Gateway& g, const Server& s) const;
  bool registry_reachable(const std::string& name, double t) const;
  void touch(Registry& r);
  void refresh(Registry& r, ClientView& v);
  void init_sessions(Gateway& g);

  // Versions.
  int vid(const std::string& version);
  const VersionPoint& behaviour(int vid, double t) const;
  const VersionPoint& behaviour_of(int host, double t);
  std::string resolve_version(const std::string& text) const;
  void set_version(Host& h, const std::string& version);

  // Lookups.
  bool push_host(const HostSpec& spec);  // without relink()
  int find_host(const std::string& name_or_id) const;
  int host_for_server(const std::string& server) const;
  int host_for_instance(const std::string& id) const;
  Gateway* find_gateway(const std::string& name);
  Registry* find_registry(const std::string& name);
  void relink();  // re-resolve servers and members after hosts were added
  Member& member(Registry& r, const std::string& id);
  std::string instance_id(const Value& v) const;

  // Operations (world_ops.cpp, world_commands.cpp, world_metrics.cpp, world_probe.cpp).
  Result dispatch(plugins::Kind kind, const std::string& instance, const Call& call);
  Result gateway_op(Gateway& g, const Call& call);
  Result registry_op(Registry& r, const Call& call);
  Result hosts_op(const Call& call);
  Result images_op(const Call& call);
  Result metrics_op(const Call& call);
  Result metric_result(const MetricSpec& spec, double value, bool noisy);
  Result traffic_reading(const MetricSpec& spec, const std::string& sel, size_t series);
  struct TrafficRead {
    std::string metric;
    Value params;                          // the call's `params` (a Map); its address is the key
    std::unique_ptr<MetricSpec> guessed;   // when the scenario does not describe the metric
    const MetricSpec* spec = nullptr;      // `guessed`, or the scenario's
    std::string sel;                       // the resolved selector, for messages
    size_t series = 0;                     // in meter_
  };
  const TrafficRead* remembered_read(const Value* metric, const Value* params);
  void remember_read(const Call& c, const MetricSpec* guessed, const MetricSpec& spec, const std::string& sel, size_t series);
  Result run_command(const Value& host, const std::string& command, const Call& call);
  std::string digest_of(const std::string& tag);

  // The first call fault that fails this call now (nullptr: none), and the call's latency.
  const CallFault* pick_fault(const std::string& kind, const std::string& instance, const std::string& op, double& latency);

  // Randomness.
  double uniform();
  double gaussian();

  Scenario sc_;
  double now_ = 0;
  std::mt19937_64 rng_;
  std::vector<Host> hosts_;
  std::map<std::string, int> host_index_;  // name, "addr:port" and addr (when unique) -> host
  std::vector<Gateway> gateways_;          // in the order they appeared
  std::vector<Registry> registries_;
  Meter meter_;
  Counts total_;
  std::map<std::string, Counts> by_version_;
  std::map<std::string, KeyRecord> keys_;
  int replays_ = 0;
  std::vector<Effect> effects_;
  std::vector<int> rule_uses_;                      // per command rule
  std::vector<int> host_fault_stage_;               // per host fault: 0 pending, 1 down, 2 back up
  std::map<std::string, std::string> digest_tags_;  // digest -> tag, for installs by digest
  std::vector<double> schedule_times_;              // every time a version's behaviour changes

  // Version table (rebuilt, not saved).
  std::vector<std::string> version_names_;
  std::vector<const std::vector<VersionPoint>*> version_points_;
  std::map<std::string, int> version_ids_;
  // Scratch for one segment.
  Flow all_flow_;
  std::vector<Flow> version_flow_;
  std::vector<double> host_rate_, host_fail_;  // requests and failures per ms, per host
  std::vector<Server*> pick_scratch_;          // send(): the servers a share goes to
  // Meter series ids (see refresh_series_ids): all, per version id, per gateway (stable, canary).
  unsigned long long series_generation_ = 0;
  size_t all_series_ = 0;
  std::vector<size_t> version_series_;
  std::vector<std::array<size_t, 2>> gateway_series_;
  // Traffic metric reads already resolved (see remembered_read), valid for one meter generation.
  std::vector<TrafficRead> traffic_reads_;
  unsigned long long traffic_reads_generation_ = 0;
  mutable std::recursive_mutex mu_;

  friend struct WorldState;  // save/load
};

}  // namespace gray::sim
