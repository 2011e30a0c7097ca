// The Consul registry driver: agent service registration, maintenance mode as the drain, Meta,
// tags and Weights for versions and traffic, the health endpoint for what clients see. See README.md.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_consul(const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
