// The http_json metrics driver: `query` fetches a JSON document with GET and reads one number
// from it; the query is a JSON pointer (RFC 6901) such as "/stats/error_rate". See README.md here.
#pragma once

#include <memory>
#include <string>

#include "plugins/driver.h"

namespace gray::plugins {

std::unique_ptr<Driver> make_http_json(const std::string& instance, const Value& config, const DriverEnv& env);

namespace http_json {

// The number `pointer` names in the JSON text `body`: Ok with a Number, NoData for null or a
// missing member, Failed for a value of another type or a bad pointer, Error when `body` is not
// JSON. `where` starts every message. Exposed for tests.
Result number_at(const std::string& where, const std::string& body, const std::string& pointer);

}  // namespace http_json

}  // namespace gray::plugins
