// How service frameworks lay out their instances in etcd, read and written by the etcd driver.
//  - kratos (go-kratos contrib/registry/etcd): key <prefix>/<instance id>, value JSON
//    {"id","name","version","metadata":{},"endpoints":["http://10.0.0.5:8000?isSecure=false"]};
//    readers list the prefix and keep the values whose name is the service.
//  - go-zero (core/discov): key <prefix>/<lease id in decimal>, value "host:port"; no metadata.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "plugins/etcd/etcd_client.h"
#include "plugins/registry/registry.h"

namespace gray::plugins::etcd {

enum class Layout { Kratos, GoZero };

// One registered instance as etcd holds it.
struct Entry {
  KeyValue kv;
  std::string id;                      // kratos: the instance id (the key's last part); go-zero: host:port
  std::vector<std::string> addresses;  // host:port of each endpoint
  nlohmann::json doc;                  // kratos: the parsed value; null for go-zero

  std::string version() const;
  // kratos metadata, with the top-level version as "version"; empty for go-zero.
  registry::Metadata metadata() const;
  bool matches(const registry::InstanceRef& ref) const;
};

// Reads one key under `prefix`. False when it is not an instance of `service` in this layout
// (another service sharing the prefix, a value some other tool wrote).
bool parse_entry(Layout layout, const std::string& prefix, const std::string& service, const KeyValue& kv, Entry& out);

// A kratos value with its metadata replaced by `metadata` ("version" goes to the top-level field).
std::string kratos_with_metadata(const nlohmann::json& doc, const registry::Metadata& metadata);
// A fresh kratos value for an instance at `address`.
std::string kratos_value(const std::string& id, const std::string& service, const registry::Metadata& metadata,
                         const std::string& address);
// "http://10.0.0.5:8000?isSecure=false" -> "10.0.0.5:8000"; "" when it has no host:port.
std::string endpoint_address(const std::string& url);

}  // namespace gray::plugins::etcd
