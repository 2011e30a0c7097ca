// External plugins: any executable that speaks gray's JSON-lines protocol on stdin/stdout
// (docs/plugin-protocol.md) provides a driver of any kind. See README.md here.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

// Starts the plugin and shakes hands with it; throws DriverError when it cannot be started,
// refuses the configuration, speaks another protocol version or is of another kind.
// Configuration: `command` (list of strings: the program, relative to env.base_dir when it
// holds a slash, and its arguments; it runs in env.base_dir) and `config` (a map passed to the
// plugin as is, secrets included and marked), `start_timeout` (how long the handshake may
// take, default 10s). For kind hosts the driver is a HostsDriver.
// Safe to call from several threads: requests go to the plugin one at a time.
std::unique_ptr<Driver> make_external(Kind kind, const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
