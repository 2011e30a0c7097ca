// The Eureka registry driver: registration with heartbeats, status overrides (OUT_OF_SERVICE / UP)
// as disable/enable and the drain, metadata for versions and weights. See README.md.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_eureka(const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
