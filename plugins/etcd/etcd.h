// The etcd registry driver: instances in the kratos or go-zero layout, written with
// compare-and-swap transactions, registrations kept alive on leases, parked copies and pause
// flags under a control prefix. See README.md in this folder.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_etcd(const std::string& instance, const Value& config, const DriverEnv& env);

}  // namespace gray::plugins
