// A simulation scenario: the world a pipeline runs against under `gray simulate` and in tests
// (hosts, version behaviour, traffic, command rules, metrics, faults), read from JSON and
// validated up front so a typo is an error naming the field, not a silently different world.
// The format is documented in plugins/sim/README.md.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace gray::sim {

constexpr double kForever = std::numeric_limits<double>::infinity();

// Up: serving. Stopped: the service is stopped, the machine answers commands. Installing: a
// new version is going on (not serving). Down: the machine is unreachable.
enum class HostState : unsigned char { Up, Stopped, Installing, Down };
const char* state_name(HostState s);
bool parse_state(const std::string& s, HostState& out);

// What a declared metric measures in the simulated world.
enum class Measure : unsigned char { ErrorRate, LatencyP99, RequestRate, Sessions, Connections, Instances, Value };
const char* measure_name(Measure m);

enum class Action : unsigned char { Install, Stop, Start, Fail, Crash, Check, Noop };
const char* action_name(Action a);

struct Interval {
  double from_ms = 0;
  double to_ms = kForever;
  bool contains(double t) const { return t >= from_ms && t < to_ms; }
};

// How a version behaves from `at_ms` on (until the next point).
struct VersionPoint {
  double at_ms = 0;
  double error_rate = 0.001;
  double latency_ms = 80;  // p99 of a served request
  bool healthy = true;     // false: health probes answer 503 even while the host is up
};

struct HostSpec {
  std::string name;
  std::string addr;
  int port = 0;
  std::vector<std::string> tags;
  std::string version;  // empty: the scenario's `version`
  std::string mode;
  HostState state = HostState::Up;
};

struct SessionSpec {
  double duration_ms = 60000;  // mean session length: how fast sessions fall off after a drain
  double per_request = 1;      // sessions started per request
};

struct GatewaySpec {
  std::vector<std::string> stable, canary;  // override the pipeline's server lists when given
  std::optional<double> rps;
  double weight = 0;                      // canary percent before the pipeline sets one
  double route_share = 0.01;              // share of requests matching a route rule...
  std::map<std::string, double> matches;  // ...unless listed here: "header X-Gray-User", "cookie beta", "ip"
  bool redispatch = false;                // a request refused by a down server is retried on another
  std::optional<SessionSpec> sessions;
};

struct RegistrySpec {
  std::optional<std::vector<std::string>> members;  // instance ids "addr:port"; default: every host
  double client_cache_ms = 15000;
  int client_groups = 4;
  double self_register_ms = 5000;
  std::optional<double> rps;
  std::vector<std::string> canary;  // instances that `weight(p)` counts as canary; default: hosts tagged "canary"
};

struct ValuePoint {
  double at_ms = 0;
  double value = 0;
};

struct MetricSpec {
  Measure measure = Measure::ErrorRate;
  std::string version = "all";  // selector: a version, "canary", "stable", "all", "$param", or "!version" (instances)
  std::string server;           // sessions/connections: a server, "$param", or empty for all
  std::string gateway;          // gateway for "canary"/"stable" and sessions; default: the first
  std::map<std::string, std::string> alias;  // selector value -> selector ("gray" -> "canary")
  double window_ms = 60000;
  std::optional<double> noise;
  double factor = 1;
  bool nodata = false;
  std::vector<Interval> nodata_during;
  std::vector<ValuePoint> values;  // measure "value"
};

struct CommandRule {
  std::string pattern;
  std::regex re;
  Action action = Action::Noop;
  std::string version;  // install: may use $1..$9
  std::string mode;     // install: may use $1..$9
  double duration_ms = 1000;
  std::string host;        // only on this host
  int times = -1;          // only the first N matches; -1: always
  double probability = 1;  // applies to this share of matches
  std::optional<int> exit_code;
  std::string out, err;          // stdout, stderr
  std::string target;            // check: a host or "GATEWAY/GROUP"; default the host it runs on
  double max_error_rate = 0.01;  // check: a version failing more than this fails the check
};

struct CallFault {
  std::string kind = "*";      // gateway, registry, hosts, metrics, images, probe, or *
  std::string instance = "*";  // the pipeline's instance name, or *
  std::string op = "*";
  Interval when;
  double error_probability = 1;
  std::optional<double> latency_ms;
  bool lost_reply = false;  // the effect is applied, then the reply is lost
  std::string message;
  bool matches(const std::string& k, const std::string& i, const std::string& o) const;
};

struct HostFault {
  std::string host;
  double down_ms = 0;
  double up_ms = kForever;
};

struct Scenario {
  nlohmann::json source;  // as written, kept for save/load
  std::string description;
  std::uint64_t seed = 1;
  std::string version = "0.0.0";  // what every host runs unless it says otherwise
  std::vector<HostSpec> hosts;
  std::map<std::string, std::vector<VersionPoint>> versions;  // "default" for any other version
  double rps = 100;
  std::optional<std::vector<std::string>> via;  // entry points; default every gateway, else every registry
  SessionSpec sessions;
  std::map<std::string, GatewaySpec> gateways;
  std::map<std::string, RegistrySpec> registries;
  std::map<std::string, MetricSpec> metrics;
  double noise = 0.05;  // relative standard deviation of metric readings
  std::vector<CommandRule> commands;
  std::map<std::string, std::string> responses;  // URL path -> body template
  std::map<std::string, std::string> endpoints;  // URL host name -> gateway
  std::string client_ip = "192.0.2.10";          // where gray's own probes come from
  std::vector<std::string> missing_images;
  std::map<std::string, std::string> digests;
  double call_latency_ms = 50;
  std::vector<CallFault> call_faults;
  std::vector<HostFault> host_faults;
};

// Reads and validates a scenario. On a problem returns nullopt and sets `error` to
// "PATH: what is wrong", e.g. `hosts[2].port: expected a number, got a string`.
std::optional<Scenario> parse_scenario(const nlohmann::json& j, std::string& error);

// "250ms", "30s", "10m", "1.5h", "1d" (and "0") to milliseconds.
bool parse_duration(const std::string& s, double& ms);

}  // namespace gray::sim
