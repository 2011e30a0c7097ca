// What the gateway drivers (haproxy, nginx, apisix, envoy) share: reading the arguments of the
// gateway operations, routing rules as values, address ranges, and the integer weights that
// come closest to a requested traffic share.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "plugins/api.h"

namespace gray::plugins::gateway {

// ---- arguments ---------------------------------------------------------------------------

// The text of an argument ("" when absent).
std::string text_arg(const Call& c, const std::string& name);
// A share in percent (5 for 5%) from a Percent or Number argument, checked to be 0..100.
bool percent_arg(const Call& c, const std::string& name, double& out, std::string& why);
// A whole, non-negative number.
bool count_arg(const Call& c, const std::string& name, int& out, std::string& why);
// "addr:port" from the inventory record the interpreter adds to drain/ready/maint calls, or "".
std::string record_address(const Call& c);
std::string record_addr(const Call& c);

// "20%", "33.33%": shares for messages.
std::string format_percent(double p);

// ---- routing rules -------------------------------------------------------------------------

// A rule of the `route` verb: requests whose header or cookie `name` equals (==) or matches
// the regular expression (~) `value`, or whose client address is in one of the ranges of
// `value` (comma-separated CIDRs), go to the group `target`.
struct Route {
  std::string match;   // header | cookie | ip
  std::string name;    // header or cookie name; empty for ip
  std::string op;      // == or ~ ("==" for ip)
  std::string value;
  std::string target;  // canary | stable

  bool operator==(const Route& o) const = default;
  // "header X-Gray-User == \"qa-1\" -> canary"
  std::string describe() const;
  std::vector<std::string> ranges() const;  // the CIDRs of an ip rule
};

// Reads and checks a route from call arguments (or one item of a set_routes list). The
// messages say what is wrong for people.
bool route_from_args(const std::map<std::string, Value>& args, Route& out, std::string& why);
Value route_value(const Route& r);
std::map<std::string, Value> route_args(const Route& r);
// The routes of a set_routes call.
bool routes_from_call(const Call& c, std::vector<Route>& out, std::string& why);
Value routes_value(const std::vector<Route>& routes);

// ---- address ranges ------------------------------------------------------------------------

struct Cidr {
  bool v6 = false;
  std::array<uint8_t, 16> addr{};  // network byte order; IPv4 uses the first 4 bytes
  int prefix = 0;
};
bool parse_cidr(const std::string& text, Cidr& out, std::string& why);
// A regular expression (PCRE) matching exactly the dotted-quad IPv4 addresses of `c`.
std::string ipv4_regex(const Cidr& c);

// ---- weights -------------------------------------------------------------------------------

// Per-server weights for the two groups: every canary server gets `canary`, every stable
// server `stable`. `share` is what they give the canary group, in percent.
struct Split {
  int canary = 0;
  int stable = 0;
  double share = 0;
  bool exact = true;
};
// The weights in [min_weight, max_weight] (0 is used only for a share of exactly 0% or 100%)
// whose canary share over `canary_servers` and `stable_servers` servers is closest to
// `percent`; among equally close ones, the smallest, then scaled up towards 100 so that later
// changes keep some resolution.
Split best_split(int canary_servers, int stable_servers, double percent, int max_weight);
double share_of(double canary_weight_sum, double stable_weight_sum);

// ---- idempotency ---------------------------------------------------------------------------

// A short stable digest of an idempotency key, for markers stored on the server.
std::string key_digest(const std::string& key);

// Keys of effects this driver instance applied, so that the same call again reports
// `replayed`. Bounded: the oldest keys are forgotten first.
class AppliedKeys {
 public:
  bool seen(const std::string& key) const { return !key.empty() && keys_.count(key) > 0; }
  void add(const std::string& key);

 private:
  std::set<std::string> keys_;
  std::vector<std::string> order_;
};

}  // namespace gray::plugins::gateway
