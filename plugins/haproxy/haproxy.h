// The HAProxy gateway driver: traffic shares as per-server weights, server states, live counts
// and routing rules in a map, all through the runtime API (see README.md).
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_haproxy(const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
