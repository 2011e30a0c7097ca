// Simulated drivers of every plugin kind, all backed by one World and a virtual clock, so that
// `gray simulate` can run any pipeline: each declared instance (haproxy, etcd, ssh, ...) is
// replaced by the simulated driver of its kind, seeded from the pipeline's configuration.
//
// Every call first advances the world to `now()`, and answers with `elapsed_ms` from the
// scenario (default 50ms per call; a command adds its own duration). Effectful gateway and
// registry operations return their compensation in `undo`.
//
// Beyond the catalog, the simulated gateway understands the operations the interpreter needs
// for `route` and `scale` (proposed names; see plugins/sim/README.md):
//   route        {match: "header"|"cookie"|"ip", name, op: "=="|"~", value, target}  undo: unroute
//   unroute      {the same arguments}                                              undo: route
//   clear_routes {}                                                  undo: set_routes {routes}
//   set_routes   {routes: [ {match, name, op, value, target}, ... ]} undo: set_routes {before}
//   scale        {group: "canary"|"stable", count}                    undo: scale {previous count}
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "plugins/api.h"
#include "plugins/sim/world.h"

namespace gray::sim {

using NowFn = std::function<double()>;

// `config` is the instance's declared configuration (a Map): a gateway takes its `stable` and
// `canary` server lists from it unless the scenario lists them; a hosts driver reads its
// `inventory` file (a path the caller has made absolute or relative to the working directory)
// when the scenario lists no hosts, and limits itself to `hosts` when given.
std::unique_ptr<plugins::Driver> make_sim_driver(plugins::Kind kind, const std::string& instance_name, const Value& config,
                                                 World& world, NowFn now);
std::unique_ptr<plugins::HostsDriver> make_sim_hosts(const std::string& instance_name, const Value& config, World& world,
                                                     NowFn now);
std::unique_ptr<plugins::Prober> make_sim_prober(World& world, NowFn now);

}  // namespace gray::sim
