#include "plugins/hosts/inventory.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "plugins/driver.h"

namespace gray::plugins::hosts {

using json = nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& instance, const std::string& where, const std::string& what) {
  throw DriverError(instance + ": inventory " + where + ": " + what);
}

// Inventory fields other than name/addr/port/tags become vars, as text.
std::string var_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

HostRecord read_host(const std::string& instance, const std::string& where, const json& e, size_t index) {
  const std::string at = "hosts[" + std::to_string(index) + "]";
  if (!e.is_object()) bad(instance, where, at + " must be an object");
  HostRecord h;
  if (!e.contains("name") || !e["name"].is_string() || e["name"].get<std::string>().empty())
    bad(instance, where, at + " needs a \"name\" (a non-empty string)");
  h.name = e["name"].get<std::string>();
  for (const auto& [field, v] : e.items()) {
    if (field == "name") continue;
    if (field == "addr") {
      if (!v.is_string()) bad(instance, where, at + ".addr must be a string");
      h.addr = v.get<std::string>();
    } else if (field == "port") {
      if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() > 65535)
        bad(instance, where, at + ".port must be a whole number from 0 to 65535");
      h.port = v.get<int>();
    } else if (field == "tags") {
      if (!v.is_array()) bad(instance, where, at + ".tags must be a list of strings");
      for (const json& t : v) {
        if (!t.is_string()) bad(instance, where, at + ".tags must hold only strings");
        h.tags.push_back(t.get<std::string>());
      }
    } else {
      h.vars[field] = var_text(v);
    }
  }
  if (h.addr.empty()) h.addr = h.name;
  return h;
}

bool has_tag(const HostRecord& h, const std::string& tag) { return std::find(h.tags.begin(), h.tags.end(), tag) != h.tags.end(); }

std::string text_arg(const Call& c, const char* name) {
  auto it = c.args.find(name);
  return it == c.args.end() || it->second.is_null() ? "" : it->second.text();
}

}  // namespace

std::vector<HostRecord> parse_inventory(const std::string& instance, const std::string& where, const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) bad(instance, where, "not valid JSON");
  if (!j.is_object() || !j.contains("hosts") || !j["hosts"].is_array()) bad(instance, where, "expected {\"hosts\": [...]}");
  std::vector<HostRecord> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < j["hosts"].size(); ++i) {
    HostRecord h = read_host(instance, where, j["hosts"][i], i);
    if (!seen.insert(h.name).second) bad(instance, where, "host \"" + h.name + "\" is listed twice");
    out.push_back(std::move(h));
  }
  return out;
}

std::vector<HostRecord> read_inventory(const std::string& instance, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) bad(instance, path, std::string("cannot read it: ") + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_inventory(instance, path, ss.str());
}

const HostRecord* find_host(const std::vector<HostRecord>& hosts, const std::string& name) {
  for (const HostRecord& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

Value host_value(const HostRecord& h) {
  List tags;
  for (const std::string& t : h.tags) tags.push_back(Value::string(t));
  Map record;
  for (const auto& [k, v] : h.vars) record[k] = Value::string(v);
  record["name"] = Value::string(h.name);
  record["addr"] = Value::string(h.addr);
  record["port"] = Value::number(h.port);
  record["tags"] = Value::of_list(std::move(tags));
  Value v = Value::named(Value::Kind::Host, h.name);
  v.map = std::make_shared<const Map>(std::move(record));
  return v;
}

bool is_catalog_op(const std::string& op) { return op == "all" || op == "tagged" || op == "named" || op == "count"; }

Result catalog_op(const std::vector<HostRecord>& hosts, const Call& call) {
  const std::string& op = call.op;
  const std::string tag = text_arg(call, "tag");
  const std::string name = text_arg(call, "name");
  List out;
  for (const HostRecord& h : hosts)
    if (op == "all" || (op == "tagged" && has_tag(h, tag)) || (op == "named" && h.name == name) ||
        (op == "count" && (tag.empty() || has_tag(h, tag))))
      out.push_back(host_value(h));
  if (op == "count") return ok_result(Value::number(static_cast<double>(out.size())));
  if (op == "all" || op == "tagged" || op == "named") return ok_result(Value::of_list(std::move(out), Value::Kind::Hosts));
  return error_result("hosts plugins have no operation \"" + op + "\"");
}

}  // namespace gray::plugins::hosts
