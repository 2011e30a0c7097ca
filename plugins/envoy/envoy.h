// The Envoy gateway driver: the canary share as runtime overrides (weighted_clusters with a
// runtime_key_prefix, or a runtime_fraction key) through the admin interface (see README.md).
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_envoy(const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
