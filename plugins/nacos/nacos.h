// The Nacos registry driver: the naming open API v1 (default) or v2, with login tokens, heartbeats
// for the instances gray registers, and disable (enabled=false) as the drain. See README.md.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_nacos(const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
