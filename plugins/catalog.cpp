#include "plugins/catalog.h"

namespace gray::plugins {

const char* type_name(Type t) {
  switch (t) {
    case Type::Any: return "any";
    case Type::Void: return "nothing";
    case Type::Number: return "number";
    case Type::Duration: return "duration";
    case Type::Percent: return "percent";
    case Type::Bytes: return "bytes";
    case Type::String: return "string";
    case Type::Bool: return "bool";
    case Type::List: return "list";
    case Type::Map: return "map";
    case Type::Hosts: return "hosts";
    case Type::Host: return "host";
    case Type::Gateway: return "gateway";
    case Type::Registry: return "registry";
    case Type::HostsPlugin: return "hosts plugin";
    case Type::Metrics: return "metrics";
    case Type::Images: return "images";
    case Type::Metric: return "metric";
    case Type::Module: return "module";
    case Type::Template: return "template";
    case Type::Function: return "function";
  }
  return "?";
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Gateway: return "gateway";
    case Kind::Registry: return "registry";
    case Kind::Hosts: return "hosts";
    case Kind::Metrics: return "metrics";
    case Kind::Images: return "images";
  }
  return "?";
}

bool parse_kind(std::string_view s, Kind& out) {
  for (Kind k : {Kind::Gateway, Kind::Registry, Kind::Hosts, Kind::Metrics, Kind::Images})
    if (s == kind_name(k)) {
      out = k;
      return true;
    }
  return false;
}

Type instance_type(Kind k) {
  switch (k) {
    case Kind::Gateway: return Type::Gateway;
    case Kind::Registry: return Type::Registry;
    case Kind::Hosts: return Type::HostsPlugin;
    case Kind::Metrics: return Type::Metrics;
    case Kind::Images: return Type::Images;
  }
  return Type::Any;
}

namespace {

using T = Type;

const std::vector<OpSpec> kGatewayOps = {
    {"weight", {{"canary", T::Percent, true}}, T::Void, true, false, "send this share of traffic to the canary group"},
    {"drain", {{"server", T::String, true}}, T::Void, true, false, "stop new traffic to a server, keep its sessions"},
    {"ready", {{"server", T::String, true}}, T::Void, true, false, "put a server back into rotation"},
    {"maint", {{"server", T::String, true}}, T::Void, true, false, "take a server out of rotation at once"},
    {"sessions", {{"server", T::String, true}}, T::Number, false, false, "current sessions on a server"},
    {"connections", {{"server", T::String, true}}, T::Number, false, false, "current connections on a server"},
    {"weight_of", {{"group", T::String, true}}, T::Percent, false, false, "share of traffic a group receives now"},
    // Used by the route and scale verbs rather than called by name.
    {"route", {{"match", T::String, true}, {"name", T::String, false}, {"op", T::String, false}, {"value", T::Any, true}, {"target", T::String, true}},
     T::Void, true, false, "send requests matching a header, cookie or client address to a group"},
    {"clear_routes", {}, T::Void, true, false, "remove every route gray added"},
    {"scale", {{"group", T::String, true}, {"count", T::Number, true}}, T::Void, true, false, "serve a group from this many servers"},
};

const std::vector<OpSpec> kRegistryOps = {
    {"register", {{"instance", T::Any, true}, {"metadata", T::Map, false}}, T::Void, true, false, "register an instance"},
    {"deregister", {{"instance", T::Any, true}}, T::Void, true, false, "remove an instance"},
    {"enable", {{"instance", T::Any, true}}, T::Void, true, false, "let clients discover an instance again"},
    {"disable", {{"instance", T::Any, true}}, T::Void, true, false, "hide an instance from clients, keep it registered"},
    {"set_weight", {{"instance", T::Any, true}, {"weight", T::Number, true}}, T::Void, true, false, "set an instance's weight"},
    {"tag", {{"instance", T::Any, true}, {"metadata", T::Map, true}}, T::Void, true, false, "merge metadata such as a version tag"},
    {"pause_registration", {{"instance", T::Any, true}}, T::Void, true, false, "tell the node's agent not to re-register it"},
    {"resume_registration", {{"instance", T::Any, true}}, T::Void, true, false, "let the node's agent register it again"},
    {"weight", {{"canary", T::Percent, true}}, T::Void, true, false, "shift traffic by registry weights"},
    {"count", {{"version", T::String, false}}, T::Number, false, false, "registered instances (of a version)"},
    {"registered", {{"instance", T::Any, true}}, T::Bool, false, false, "whether an instance is registered"},
};

const std::vector<OpSpec> kHostsOps = {
    {"all", {}, T::Hosts, false, true, "every host in the inventory"},
    {"tagged", {{"tag", T::String, true}}, T::Hosts, false, false, "hosts with a tag"},
    {"named", {{"name", T::String, true}}, T::Hosts, false, false, "one host by name"},
    {"count", {{"tag", T::String, false}}, T::Number, false, false, "number of hosts (with a tag)"},
};

const std::vector<OpSpec> kMetricsOps = {
    {"query", {{"query", T::String, true}}, T::Number, false, false, "instant query; no data is inconclusive"},
};

const std::vector<OpSpec> kImagesOps = {
    {"exists", {{"ref", T::String, true}}, T::Bool, false, false, "whether an image tag exists"},
    {"digest", {{"ref", T::String, true}}, T::String, false, false, "the digest an image tag points at"},
};

std::vector<DriverSpec> make_drivers() {
  std::vector<DriverSpec> d;
  // Gateways.
  d.push_back({Kind::Gateway, "haproxy",
               {{"socket", T::String, false, "path of the runtime API unix socket"},
                {"address", T::String, false, "host:port of the runtime API over TCP"},
                {"backend", T::String, true, "backend holding the servers"},
                {"stable", T::List, true, "servers of the stable version"},
                {"canary", T::List, true, "servers of the canary version"},
                {"map", T::String, false, "map file used for header, cookie and IP routing"},
                {"timeout", T::Duration, false, "per-command timeout"}},
               "HAProxy runtime API",
               {{"socket", "address"}}});
  d.push_back({Kind::Gateway, "nginx",
               {{"include", T::String, true, "file that gray renders with the upstream and map blocks"},
                {"upstream", T::String, true, "upstream name"},
                {"stable", T::List, true, "stable servers (host:port)"},
                {"canary", T::List, true, "canary servers (host:port)"},
                {"nginx", T::String, false, "nginx binary"},
                {"prefix", T::String, false, "nginx -p prefix"},
                {"conf", T::String, false, "nginx -c configuration file"},
                {"probe_url", T::String, false, "URL whose response carries the config generation"},
                {"status_url", T::String, false, "stub_status URL, for nginx-wide sessions and connections"}},
               "nginx by rendered include file and reload",
               {}});
  d.push_back({Kind::Gateway, "apisix",
               {{"admin_url", T::String, true, "Admin API base URL"},
                {"api_key", T::String, true, "Admin API key", true},
                {"route_id", T::String, true, "route carrying the traffic-split plugin"},
                {"stable_upstream", T::String, true, "upstream id of the stable version"},
                {"canary_upstream", T::String, true, "upstream id of the canary version"}},
               "Apache APISIX Admin API (traffic-split)",
               {}});
  d.push_back({Kind::Gateway, "envoy",
               {{"admin_url", T::String, true, "admin interface base URL"},
                {"runtime_key", T::String, true, "runtime key holding the canary weight"},
                {"stable", T::List, false, "stable cluster names"},
                {"canary", T::List, false, "canary cluster names"}},
               "Envoy weighted clusters through the runtime",
               {}});
  d.push_back({Kind::Gateway, "sim", {{"stable", T::List, false, "servers"}, {"canary", T::List, false, "servers"}}, "simulated gateway", {}});
  // Registries.
  d.push_back({Kind::Registry, "etcd",
               {{"endpoints", T::List, true, "client URLs"},
                {"prefix", T::String, true, "key prefix, for example /microservices/checkout"},
                {"layout", T::String, false, "kratos (default) or go-zero"},
                {"lease_ttl", T::Duration, false, "lease TTL for registrations (default 15s)"},
                {"username", T::String, false, "user name"},
                {"password", T::String, false, "password", true},
                {"service", T::String, false, "service name kratos readers filter on (default: the prefix's last part)"},
                {"control_prefix", T::String, false, "where gray keeps parked copies and pause flags (default /gray; not under prefix)"},
                {"canary", T::List, false, "instances that are the canary, for the weight operation (instance ids or ip:port)"},
                {"canary_version", T::String, false, "the canary is every instance registered with this version"},
                {"cache_refresh", T::Duration, false, "how long clients take to refresh their cached copy of the registry; lint checks drain waits against it"}},
               "etcd v3 through its JSON gateway",
               {}});
  d.push_back({Kind::Registry, "nacos",
               {{"server", T::String, true, "base URL"},
                {"service", T::String, true, "service name"},
                {"namespace", T::String, false, "namespace id"},
                {"group", T::String, false, "group name"},
                {"api", T::String, false, "v1 (default) or v2"},
                {"cluster", T::String, false, "cluster name (default: DEFAULT for new registrations, every cluster when looking)"},
                {"username", T::String, false, "user name"},
                {"password", T::String, false, "password", true},
                {"canary", T::List, false, "instances that are the canary, for the weight operation (instance ids or ip:port)"},
                {"canary_version", T::String, false, "the canary is every instance registered with this version"},
                {"cache_refresh", T::Duration, false, "how long clients take to refresh their cached copy of the registry; lint checks drain waits against it"}},
               "Nacos open API",
               {}});
  d.push_back({Kind::Registry, "consul",
               {{"address", T::String, true, "base URL"},
                {"service", T::String, true, "service name"},
                {"token", T::String, false, "ACL token", true},
                {"canary", T::List, false, "instances that are the canary, for the weight operation (instance ids or ip:port)"},
                {"canary_version", T::String, false, "the canary is every instance registered with this version"},
                {"cache_refresh", T::Duration, false, "how long clients take to refresh their cached copy of the registry; lint checks drain waits against it"}},
               "Consul HTTP API",
               {}});
  d.push_back({Kind::Registry, "eureka",
               {{"url", T::String, true, "base URL including /eureka"},
                {"app", T::String, true, "application name"},
                {"heartbeat", T::Duration, false, "lease renewal interval for instances gray registers (default 30s)"},
                {"canary", T::List, false, "instances that are the canary, for the weight operation (instance ids or ip:port)"},
                {"canary_version", T::String, false, "the canary is every instance registered with this version"},
                {"cache_refresh", T::Duration, false, "how long clients take to refresh their cached copy of the registry; lint checks drain waits against it"}},
               "Eureka REST",
               {}});
  d.push_back({Kind::Registry, "sim", {{"service", T::String, false, "service name"}, {"cache_refresh", T::Duration, false, "how long clients take to refresh their cached copy of the registry; lint checks drain waits against it"}}, "simulated registry", {}});
  // Hosts.
  d.push_back({Kind::Hosts, "local",
               {{"inventory", T::String, false, "inventory file (JSON)"},
                {"shell", T::String, false, "shell"},
                {"state_dir", T::String, false, "where idempotency markers are kept (default $HOME/.gray/done)"}},
               "commands on this machine", {}});
  d.push_back({Kind::Hosts, "ssh",
               {{"inventory", T::String, true, "inventory file (JSON)"},
                {"user", T::String, false, "login user"},
                {"key", T::String, false, "private key file"},
                {"port", T::Number, false, "port (default 22)"},
                {"connect_timeout", T::Duration, false, "connection timeout"},
                {"known_hosts", T::String, false, "known_hosts file, checked strictly (default: ssh's own)"},
                {"options", T::List, false, "extra ssh options such as \"ProxyJump=bastion\""},
                {"state_dir", T::String, false, "where idempotency markers are kept on each host (default $HOME/.gray/done)"}},
               "OpenSSH client with connection reuse",
               {}});
  d.push_back({Kind::Hosts, "sim", {{"hosts", T::List, false, "host names"}, {"inventory", T::String, false, "inventory file"}}, "simulated hosts", {}});
  // Metrics.
  d.push_back({Kind::Metrics, "prometheus",
               {{"url", T::String, true, "base URL"}, {"timeout", T::Duration, false, "query timeout"}, {"token", T::String, false, "bearer token", true}},
               "Prometheus HTTP API instant queries",
               {}});
  d.push_back({Kind::Metrics, "http_json",
               {{"url", T::String, true, "URL returning JSON"}, {"timeout", T::Duration, false, "request timeout"}},
               "a number read from a JSON document; the query is a JSON pointer",
               {}});
  d.push_back({Kind::Metrics, "sim", {}, "simulated metrics", {}});
  // Image registries.
  d.push_back({Kind::Images, "docker_registry",
               {{"url", T::String, true, "registry base URL"},
                {"repository", T::String, true, "repository name"},
                {"username", T::String, false, "user name"},
                {"password", T::String, false, "password", true}},
               "distribution registry v2 API",
               {}});
  d.push_back({Kind::Images, "sim", {}, "simulated image registry", {}});
  // Any kind, from a program speaking docs/plugin-protocol.md.
  for (Kind k : {Kind::Gateway, Kind::Registry, Kind::Hosts, Kind::Metrics, Kind::Images})
    d.push_back({k, "external",
                 {{"command", T::List, true, "the plugin program and its arguments (relative to the pipeline's folder)"},
                  {"config", T::Map, false, "configuration passed to the plugin as is"},
                  {"start_timeout", T::Duration, false, "how long the plugin may take to start and answer the handshake (default 10s)"}},
                 "an external plugin speaking gray's JSON-lines protocol",
                 {}});
  return d;
}

}  // namespace

const std::vector<OpSpec>& ops(Kind k) {
  switch (k) {
    case Kind::Gateway: return kGatewayOps;
    case Kind::Registry: return kRegistryOps;
    case Kind::Hosts: return kHostsOps;
    case Kind::Metrics: return kMetricsOps;
    case Kind::Images: return kImagesOps;
  }
  return kMetricsOps;
}

const OpSpec* find_op(Kind k, std::string_view name) {
  for (const OpSpec& op : ops(k))
    if (name == op.name) return &op;
  return nullptr;
}

const std::vector<DriverSpec>& drivers() {
  static const std::vector<DriverSpec> d = make_drivers();
  return d;
}

const DriverSpec* find_driver(Kind k, std::string_view name) {
  for (const DriverSpec& d : drivers())
    if (d.kind == k && name == d.name) return &d;
  return nullptr;
}

std::vector<std::string_view> driver_names(Kind k) {
  std::vector<std::string_view> out;
  for (const DriverSpec& d : drivers())
    if (d.kind == k) out.push_back(d.name);
  return out;
}

}  // namespace gray::plugins
