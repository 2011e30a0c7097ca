// The Prometheus metrics driver: `query` runs an instant query through the HTTP API
// (GET /api/v1/query) and turns the answer into one number, or no data. See README.md here.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_prometheus(const std::string& instance, const Value& config, const DriverEnv& env);

namespace prometheus {

// Reads the body of a successful (HTTP 200) instant-query answer. `where` starts every message
// ("prometheus at http://host:9090: query 'up'"). Exposed for tests.
Result read_answer(const std::string& where, const std::string& body);

// A sample value as Prometheus writes it ("1.5", "+Inf", "-Inf", "NaN"). False when it is not one.
bool parse_sample(const std::string& text, double& out);

}  // namespace prometheus

}  // namespace gray::plugins
