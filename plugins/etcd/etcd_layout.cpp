#include "plugins/etcd/etcd_layout.h"

namespace gray::plugins::etcd {

using nlohmann::json;

namespace {

std::string text_of(const json& j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

}  // namespace

std::string endpoint_address(const std::string& url) {
  std::string rest = url;
  if (size_t scheme = rest.find("://"); scheme != std::string::npos) rest = rest.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  std::string host;
  int port = 0;
  return registry::split_address(rest, host, port) ? host + ":" + std::to_string(port) : "";
}

std::string Entry::version() const {
  if (doc.is_object() && doc.contains("version") && doc["version"].is_string()) {
    std::string v = doc["version"].get<std::string>();
    if (!v.empty()) return v;
  }
  if (doc.is_object() && doc.contains("metadata") && doc["metadata"].is_object() && doc["metadata"].contains("version"))
    return text_of(doc["metadata"]["version"]);
  return "";
}

registry::Metadata Entry::metadata() const {
  registry::Metadata m;
  if (!doc.is_object()) return m;
  if (doc.contains("metadata") && doc["metadata"].is_object())
    for (const auto& [k, v] : doc["metadata"].items()) m[k] = text_of(v);
  if (std::string v = version(); !v.empty()) m["version"] = v;
  return m;
}

bool Entry::matches(const registry::InstanceRef& ref) const {
  if (id == ref.name) return true;
  for (const std::string& a : addresses)
    if (a == ref.name || (ref.has_address() && a == ref.address())) return true;
  return false;
}

bool parse_entry(Layout layout, const std::string& prefix, const std::string& service, const KeyValue& kv, Entry& out) {
  const std::string dir = prefix + "/";
  if (kv.key.rfind(dir, 0) != 0 || kv.key.size() == dir.size()) return false;
  out = Entry{};
  out.kv = kv;
  const std::string suffix = kv.key.substr(dir.size());
  if (layout == Layout::GoZero) {
    std::string host;
    int port = 0;
    if (!registry::split_address(kv.value, host, port)) return false;
    out.id = host + ":" + std::to_string(port);
    out.addresses = {out.id};
    return true;
  }
  json doc = json::parse(kv.value, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  if (!doc.contains("name") || !doc["name"].is_string() || doc["name"].get<std::string>() != service) return false;
  out.id = suffix;
  if (doc.contains("endpoints") && doc["endpoints"].is_array())
    for (const json& e : doc["endpoints"])
      if (e.is_string())
        if (std::string a = endpoint_address(e.get<std::string>()); !a.empty()) out.addresses.push_back(a);
  out.doc = std::move(doc);
  return true;
}

std::string kratos_with_metadata(const json& doc, const registry::Metadata& metadata) {
  json out = doc;
  const bool meta_had_version = doc.contains("metadata") && doc["metadata"].is_object() && doc["metadata"].contains("version");
  json meta = json::object();
  for (const auto& [k, v] : metadata) {
    // Kratos keeps the version in its own field; a copy in metadata stays only where one was.
    if (k == "version" && !meta_had_version) continue;
    meta[k] = v;
  }
  auto version = metadata.find("version");
  out["version"] = version == metadata.end() ? "" : version->second;
  out["metadata"] = std::move(meta);
  return out.dump();
}

std::string kratos_value(const std::string& id, const std::string& service, const registry::Metadata& metadata,
                         const std::string& address) {
  json doc{{"id", id},
           {"name", service},
           {"version", ""},
           {"metadata", json::object()},
           {"endpoints", json::array({"http://" + address + "?isSecure=false"})}};
  return kratos_with_metadata(doc, metadata);
}

}  // namespace gray::plugins::etcd
