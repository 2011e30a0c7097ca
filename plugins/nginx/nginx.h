// The nginx gateway driver: renders an include file with the upstream, per-group upstreams and
// routing maps, checks it with `nginx -t`, reloads, and waits until nginx serves it (see
// README.md).
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_nginx(const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
