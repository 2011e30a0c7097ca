// The `local` hosts driver: commands on the machine running gray, through /bin/sh (or the
// configured `shell`), with the idempotency markers of wrapper.h. See README.md here.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"
#include "plugins/hosts/wrapper.h"

namespace gray::plugins {

// The driver is a HostsDriver (dynamic_cast for inventory()). Configuration: `inventory`
// (optional; default one host "localhost" at 127.0.0.1), `shell` (default /bin/sh),
// `state_dir` (default $HOME/.gray/done). Safe to call from several threads at once.
std::unique_ptr<Driver> make_local(const std::string& instance, const Value& config, const DriverEnv& env);

namespace hosts {

// The `command` argument of a run call. False (and `error`) when it is missing or not a string.
bool command_arg(const Call& call, std::string& command, bool& secret, std::string& error);

// Runs the wrapper on this machine (argv from wrapper_argv), killing its process group at
// `timeout_ms`. `who` starts every message ("fleet on app-1").
Result run_on_this_machine(const WrapperArgs& args, double timeout_ms, const std::string& who, bool secret);

}  // namespace hosts

}  // namespace gray::plugins
