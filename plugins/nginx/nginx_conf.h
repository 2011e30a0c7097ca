// The include file the nginx driver owns: the state gray wants (a JSON comment on its first
// line, so that any gray process can read it back) and the nginx blocks rendered from it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plugins/gateway/common.h"

namespace gray::plugins::nginx {

struct Layout {
  std::string instance;  // the gateway's name in the pipeline, for the header comment
  std::string upstream;
  std::vector<std::string> stable, canary;  // host:port
};

struct State {
  int generation = 0;
  double canary = 0;                           // percent
  std::map<std::string, std::string> states;   // server -> drain | maint (absent: ready)
  std::vector<gateway::Route> routes;
  std::vector<std::string> keys;               // digests of the latest effects' keys

  // The same traffic configuration (generation and keys aside).
  bool same_traffic(const State& o) const { return canary == o.canary && states == o.states && routes == o.routes; }
  std::string state_of(const std::string& server) const;
  void remember(const std::string& digest);
};

// The state from a file's first line; nullopt when the file was not written by gray.
std::optional<State> parse_state(const std::string& text);

// The weights nginx gets for the state: per-server weights over the ready servers.
gateway::Split split_for(const Layout& l, const State& s);
// The canary share nginx gives with the rendered weights (0 when no server is ready).
double effective_share(const Layout& l, const State& s);

// The whole include file. `why` explains a rule nginx cannot express.
bool render(const Layout& l, const State& s, std::string& text, std::string& why);

// The name part of nginx variables derived from the upstream (letters, digits, _).
std::string variable_name(const std::string& upstream);

}  // namespace gray::plugins::nginx
