#include "plugins/driver.h"

#include "plugins/apisix/apisix.h"
#include "plugins/consul/consul.h"
#include "plugins/docker_registry/docker_registry.h"
#include "plugins/envoy/envoy.h"
#include "plugins/etcd/etcd.h"
#include "plugins/eureka/eureka.h"
#include "plugins/external/external.h"
#include "plugins/haproxy/haproxy.h"
#include "plugins/hosts/local.h"
#include "plugins/hosts/ssh.h"
#include "plugins/http_json/http_json.h"
#include "plugins/nacos/nacos.h"
#include "plugins/nginx/nginx.h"
#include "plugins/prometheus/prometheus.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

namespace gray::plugins {

namespace fs = std::filesystem;

DriverEnv DriverEnv::process(std::string base_dir) {
  DriverEnv env;
  env.base_dir = std::move(base_dir);
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
  env.note = [](const std::string& text) { std::cerr << "gray: " << text << "\n"; };
  env.sleep = [](double ms) { std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(ms * 1000))); };
  return env;
}

namespace {

[[noreturn]] void bad_field(const std::string& instance, const std::string& name, const std::string& what) {
  throw DriverError(instance + ": field '" + name + "' " + what);
}

}  // namespace

const Value* config_field(const Value& config, const std::string& name) {
  if (config.kind != Value::Kind::Map) return nullptr;
  auto it = config.fields().find(name);
  return it == config.fields().end() || it->second.is_null() ? nullptr : &it->second;
}

std::string config_string(const std::string& instance, const Value& config, const std::string& name,
                          std::optional<std::string> fallback) {
  const Value* v = config_field(config, name);
  if (!v) {
    if (fallback) return *fallback;
    bad_field(instance, name, "is required");
  }
  if (v->kind != Value::Kind::String) bad_field(instance, name, std::string("must be a string, not a ") + kind_name(v->kind));
  return v->str;
}

std::vector<std::string> config_strings(const std::string& instance, const Value& config, const std::string& name, bool required) {
  const Value* v = config_field(config, name);
  if (!v) {
    if (required) bad_field(instance, name, "is required");
    return {};
  }
  if (v->kind == Value::Kind::String) return {v->str};
  if (v->kind != Value::Kind::List) bad_field(instance, name, std::string("must be a list of strings, not a ") + kind_name(v->kind));
  std::vector<std::string> out;
  for (const Value& item : v->items()) {
    if (item.kind != Value::Kind::String) bad_field(instance, name, "must hold only strings");
    out.push_back(item.str);
  }
  return out;
}

double config_ms(const std::string& instance, const Value& config, const std::string& name, double fallback_ms) {
  const Value* v = config_field(config, name);
  if (!v) return fallback_ms;
  if (v->kind != Value::Kind::Duration) bad_field(instance, name, "must be a duration such as 5s");
  if (v->num <= 0) bad_field(instance, name, "must be longer than 0s");
  return v->num;
}

std::string config_path(const std::string& instance, const Value& config, const std::string& name, const DriverEnv& env,
                        std::optional<std::string> fallback) {
  std::string p = config_string(instance, config, name, std::move(fallback));
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(env.base_dir) / p).lexically_normal().string();
}

Result ok_result(Value value) {
  Result r;
  r.value = std::move(value);
  return r;
}

Result failed_result(std::string message) {
  Result r;
  r.status = Result::Status::Failed;
  r.message = std::move(message);
  return r;
}

Result error_result(std::string message) {
  Result r;
  r.status = Result::Status::Error;
  r.message = std::move(message);
  return r;
}

namespace {

using Factory = std::unique_ptr<Driver> (*)(const std::string& instance, const Value& config, const DriverEnv& env);

struct Entry {
  Kind kind;
  const char* name;
  Factory make;
};

// An executable speaking the JSON-lines protocol (docs/plugin-protocol.md), as a driver of kind K.
template <Kind K>
std::unique_ptr<Driver> external(const std::string& instance, const Value& config, const DriverEnv& env) {
  return make_external(K, instance, config, env);
}

// The real drivers, by kind and name (the names of plugins/catalog.cpp).
const std::vector<Entry>& factories() {
  static const std::vector<Entry> table = {
      {Kind::Gateway, "haproxy", make_haproxy},
      {Kind::Gateway, "nginx", make_nginx},
      {Kind::Gateway, "apisix", make_apisix},
      {Kind::Gateway, "envoy", make_envoy},
      {Kind::Registry, "etcd", make_etcd},
      {Kind::Registry, "nacos", make_nacos},
      {Kind::Registry, "consul", make_consul},
      {Kind::Registry, "eureka", make_eureka},
      {Kind::Hosts, "local", make_local},
      {Kind::Hosts, "ssh", make_ssh},
      {Kind::Metrics, "prometheus", make_prometheus},
      {Kind::Metrics, "http_json", make_http_json},
      {Kind::Images, "docker_registry", make_docker_registry},
      {Kind::Gateway, "external", external<Kind::Gateway>},
      {Kind::Registry, "external", external<Kind::Registry>},
      {Kind::Hosts, "external", external<Kind::Hosts>},
      {Kind::Metrics, "external", external<Kind::Metrics>},
      {Kind::Images, "external", external<Kind::Images>},
  };
  return table;
}

}  // namespace

std::unique_ptr<Driver> make_driver(Kind kind, const std::string& driver, const std::string& instance, const Value& config,
                                    const DriverEnv& env) {
  for (const Entry& e : factories())
    if (e.kind == kind && driver == e.name) return e.make(instance, config, env);
  if (driver == "sim")
    throw DriverError(instance + ": the sim driver exists only in a simulated world; use `gray simulate` or `gray run --scenario`");
  throw DriverError(instance + ": no " + kind_name(kind) + " driver named '" + driver + "' is built into this gray");
}

}  // namespace gray::plugins
