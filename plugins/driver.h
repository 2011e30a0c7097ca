// Building real drivers: what every driver gets from its surroundings, and the one factory the
// run command uses. Each driver lives in its own folder (plugins/haproxy, plugins/etcd, ...) and
// exposes a `make_<name>` function that the factory in driver.cpp lists.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "plugins/api.h"
#include "runtime/value.h"

namespace gray::plugins {

// A configuration a driver cannot work with (a missing file, a field out of range), found when
// the driver is built, before the run starts. The message is for people and names the field.
struct DriverError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DriverEnv {
  // Directory of the pipeline file: relative paths in a configuration resolve against it.
  std::string base_dir = ".";
  // The environment, for credentials a driver reads itself.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  // Notes for people (stderr or the event stream): never pass a secret.
  std::function<void(const std::string&)> note;
  // Waits for retries and polls. Real time by default; tests may shorten it.
  std::function<void(double ms)> sleep;

  // The defaults above filled in: the process environment, notes to stderr, a real sleep.
  static DriverEnv process(std::string base_dir);
};

// Builds the real driver `driver` of kind `kind` for the pipeline's instance `instance` from its
// evaluated configuration (a Map whose secrets carry Value's secret flag). Throws DriverError
// for an unknown driver or an unusable configuration.
std::unique_ptr<Driver> make_driver(Kind kind, const std::string& driver, const std::string& instance, const Value& config,
                                    const DriverEnv& env);

// HTTP and TCP probes made by gray itself, through the HTTP client.
std::unique_ptr<Prober> make_prober(const DriverEnv& env);

// Helpers for drivers reading their configuration: each throws DriverError naming the instance
// and the field when a required field is missing or has the wrong type.
const Value* config_field(const Value& config, const std::string& name);
std::string config_string(const std::string& instance, const Value& config, const std::string& name,
                          std::optional<std::string> fallback = std::nullopt);
std::vector<std::string> config_strings(const std::string& instance, const Value& config, const std::string& name,
                                        bool required = true);
double config_ms(const std::string& instance, const Value& config, const std::string& name, double fallback_ms);
// A relative path made relative to env.base_dir.
std::string config_path(const std::string& instance, const Value& config, const std::string& name, const DriverEnv& env,
                        std::optional<std::string> fallback = std::nullopt);

// Result helpers.
Result ok_result(Value value = Value::null());
Result failed_result(std::string message);
Result error_result(std::string message);

}  // namespace gray::plugins
