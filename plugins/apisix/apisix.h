// The Apache APISIX gateway driver: the canary share and routing rules as rules of the
// traffic-split plugin on one route, through the Admin API v3 (see README.md).
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_apisix(const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
