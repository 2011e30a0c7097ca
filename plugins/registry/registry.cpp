#include "plugins/registry/registry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "plugins/driver.h"

namespace gray::plugins::registry {

std::string InstanceRef::var(const std::string& key) const {
  auto it = vars.find(key);
  return it == vars.end() ? "" : it->second;
}

bool split_address(const std::string& text, std::string& host, int& port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) return false;
  std::string digits = text.substr(colon + 1);
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  if (digits.size() > 5) return false;
  int p = std::atoi(digits.c_str());
  if (p <= 0 || p > 65535) return false;
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  port = p;
  return true;
}

const Value* arg(const Call& call, const std::string& name) {
  auto it = call.args.find(name);
  return it == call.args.end() || it->second.is_null() ? nullptr : &it->second;
}

void complete_undo(Call& undo, const Call& original, const std::string& addr, int port) {
  if (!undo.args.count("instance")) return;
  if (!undo.args.count("addr") && !undo.args.count("port")) {
    const Value* a = arg(original, "addr");
    const Value* p = arg(original, "port");
    if (a && p) {
      undo.args["addr"] = *a;
      undo.args["port"] = *p;
    } else if (!addr.empty() && port > 0) {
      undo.args["addr"] = Value::string(addr);
      undo.args["port"] = Value::number(port);
    }
  }
  if (const Value* v = arg(original, "vars"); v && !undo.args.count("vars")) undo.args["vars"] = *v;
}

Call make_call(std::string op, std::map<std::string, Value> args) {
  Call c;
  c.op = std::move(op);
  c.args = std::move(args);
  return c;
}

std::optional<InstanceRef> instance_ref(const Call& call, std::string& error) {
  const Value* inst = arg(call, "instance");
  if (!inst || inst->text().empty()) {
    error = call.op + ": the instance argument is required";
    return std::nullopt;
  }
  InstanceRef ref;
  ref.name = inst->text();
  // A host value carries its inventory record itself (the simulated world passes it this way).
  if (inst->kind == Value::Kind::Host && inst->map) {
    for (const auto& [k, v] : inst->fields()) {
      if (k == "addr")
        ref.addr = v.text();
      else if (k == "port" && v.is_numeric())
        ref.port = static_cast<int>(v.num);
      else if (k != "name" && k != "tags")
        ref.vars[k] = v.text();
    }
  }
  if (const Value* a = arg(call, "addr")) ref.addr = a->text();
  if (const Value* p = arg(call, "port")) {
    if (p->is_numeric())
      ref.port = static_cast<int>(p->num);
    else if (auto n = parse_number(p->text()))
      ref.port = static_cast<int>(*n);
  }
  if (const Value* vars = arg(call, "vars"); vars && vars->kind == Value::Kind::Map)
    for (const auto& [k, v] : vars->fields()) ref.vars[k] = v.text();
  if (!ref.has_address()) {
    std::string host;
    int port = 0;
    if (split_address(ref.name, host, port)) {
      ref.addr = host;
      ref.port = port;
    }
  }
  return ref;
}

std::optional<Patch> patch_arg(const Call& call, const std::string& name, std::string& error) {
  auto it = call.args.find(name);
  if (it == call.args.end() || it->second.is_null()) return std::nullopt;
  if (it->second.kind != Value::Kind::Map) {
    error = call.op + ": " + name + " must be a map such as {version: \"2.4.1\"}";
    return std::nullopt;
  }
  Patch p;
  for (const auto& [k, v] : it->second.fields()) {
    if (k.empty()) {
      error = call.op + ": " + name + " has an empty key";
      return std::nullopt;
    }
    if (v.is_null())
      p[k] = std::nullopt;
    else
      p[k] = v.text();
  }
  return p;
}

bool apply_patch(Metadata& metadata, const Patch& patch) {
  bool changed = false;
  for (const auto& [k, v] : patch) {
    auto it = metadata.find(k);
    if (!v) {
      if (it != metadata.end()) {
        metadata.erase(it);
        changed = true;
      }
    } else if (it == metadata.end() || it->second != *v) {
      metadata[k] = *v;
      changed = true;
    }
  }
  return changed;
}

Value undo_patch(const Metadata& metadata, const Patch& patch) {
  Map m;
  for (const auto& [k, v] : patch) {
    auto it = metadata.find(k);
    m[k] = it == metadata.end() ? Value::null() : Value::string(it->second);
  }
  return Value::of_map(std::move(m));
}

Value metadata_value(const Metadata& metadata) {
  Map m;
  for (const auto& [k, v] : metadata) m[k] = Value::string(v);
  return Value::of_map(std::move(m));
}

bool CanarySelection::matches(const std::string& id, const std::vector<std::string>& addresses,
                              const std::string& instance_version) const {
  if (!version.empty() && instance_version == version) return true;
  for (const std::string& m : members) {
    if (m == id) return true;
    for (const std::string& a : addresses) {
      if (m == a) return true;
      std::string host;
      int port = 0;
      if (split_address(a, host, port) && m == host) return true;
    }
  }
  return false;
}

std::string CanarySelection::describe() const {
  std::string out;
  if (!members.empty()) {
    out = "canary [";
    for (size_t i = 0; i < members.size(); ++i) out += (i ? ", " : "") + members[i];
    out += "]";
  }
  if (!version.empty()) out += (out.empty() ? "" : " or ") + std::string("canary_version ") + version;
  return out;
}

CanarySelection canary_selection(const std::string& instance, const Value& config) {
  CanarySelection s;
  s.members = config_strings(instance, config, "canary", false);
  s.version = config_string(instance, config, "canary_version", "");
  return s;
}

Split split_weights(double percent, size_t n_canary, size_t n_stable, long max_weight) {
  // Basis points keep two decimals of the percent exact in integers.
  long bp = std::lround(std::clamp(percent, 0.0, 100.0) * 100);
  Split s;
  if (n_canary == 0 || n_stable == 0) {
    // One group alone: it gets everything it can.
    s.canary = bp > 0 ? 1 : 0;
    s.stable = bp < 10000 ? 1 : 0;
    return s;
  }
  long c = bp * static_cast<long>(n_stable);
  long st = (10000 - bp) * static_cast<long>(n_canary);
  long g = std::gcd(c, st);
  if (g > 0) {
    c /= g;
    st /= g;
  }
  long top = std::max(c, st);
  if (top > max_weight) {
    double f = static_cast<double>(max_weight) / static_cast<double>(top);
    c = c == 0 ? 0 : std::max(1L, std::lround(static_cast<double>(c) * f));
    st = st == 0 ? 0 : std::max(1L, std::lround(static_cast<double>(st) * f));
  }
  s.canary = c;
  s.stable = st;
  return s;
}

std::optional<double> canary_share(const std::vector<std::pair<bool, double>>& weights) {
  double canary = 0, total = 0;
  for (const auto& [is_canary, w] : weights) {
    total += w;
    if (is_canary) canary += w;
  }
  if (total <= 0) return std::nullopt;
  return std::round(canary / total * 10000) / 100;
}

std::optional<double> percent_arg(const Call& call, std::string& error, bool& clear) {
  clear = false;
  auto it = call.args.find("canary");
  if (it == call.args.end()) {
    error = "weight: the canary argument is required (a percent such as 5%)";
    return std::nullopt;
  }
  if (it->second.is_null()) {
    clear = true;
    return std::nullopt;
  }
  if (!it->second.is_numeric()) {
    error = "weight: canary must be a percent such as 5%, not " + it->second.shown();
    return std::nullopt;
  }
  double p = it->second.num;
  if (!(p >= 0 && p <= 100)) {
    error = "weight: canary must be between 0% and 100%, not " + it->second.text();
    return std::nullopt;
  }
  return p;
}

std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string number_text(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(std::llround(v)));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace gray::plugins::registry
