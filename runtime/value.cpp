#include "runtime/value.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace gray {

const List& Value::items() const {
  static const List empty;
  return list ? *list : empty;
}

const Map& Value::fields() const {
  static const Map empty;
  return map ? *map : empty;
}

bool Value::secret() const {
  if (kind == Kind::String) return flag;
  for (const Value& v : items())
    if (v.secret()) return true;
  for (const auto& [k, v] : fields())
    if (v.secret()) return true;
  return false;
}

namespace {

std::string number_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string format_duration(double ms) {
  struct U {
    double ms;
    const char* name;
  };
  static const U units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  for (const U& u : units)
    if (std::fabs(ms) >= u.ms && std::fmod(ms, u.ms) == 0) return number_text(ms / u.ms) + u.name;
  if (std::fabs(ms) >= 1000) return number_text(ms / 1000) + "s";
  return number_text(ms) + "ms";
}

std::string Value::text() const {
  switch (kind) {
    case Kind::Null: return "";
    case Kind::Number: return number_text(num);
    case Kind::Duration: return format_duration(num);
    case Kind::Percent: return number_text(num) + "%";
    case Kind::Bytes: return number_text(num) + "B";
    case Kind::String:
    case Kind::Host:
    case Kind::Plugin:
    case Kind::Metric: return str;
    case Kind::Bool: return flag ? "true" : "false";
    case Kind::List:
    case Kind::Hosts: {
      std::string out;
      for (const Value& v : items()) out += (out.empty() ? "" : ",") + v.text();
      return out;
    }
    case Kind::Map: return to_json(*this).dump();
  }
  return "";
}

std::string Value::shown() const {
  if (secret()) return "<secret>";
  if (kind == Kind::String) {
    std::string q = "\"";
    for (char c : str) q += c == '"' ? std::string("\\\"") : c == '\n' ? std::string("\\n") : std::string(1, c);
    return q + "\"";
  }
  if (kind == Kind::List || kind == Kind::Hosts) {
    std::string out = "[";
    for (const Value& v : items()) out += (out.size() > 1 ? ", " : "") + v.shown();
    return out + "]";
  }
  return text();
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_numeric() && b.is_numeric()) return a.scalar() == b.scalar();
  if (a.kind != b.kind) {
    // A host compares equal to its name.
    if ((a.kind == Value::Kind::Host && b.kind == Value::Kind::String) || (a.kind == Value::Kind::String && b.kind == Value::Kind::Host))
      return a.str == b.str;
    return false;
  }
  switch (a.kind) {
    case Value::Kind::Null: return true;
    case Value::Kind::Bool: return a.flag == b.flag;
    case Value::Kind::List:
    case Value::Kind::Hosts: return a.items() == b.items();
    case Value::Kind::Map: return a.fields() == b.fields();
    default: return a.str == b.str;
  }
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Number: return "number";
    case Value::Kind::Duration: return "duration";
    case Value::Kind::Percent: return "percent";
    case Value::Kind::Bytes: return "bytes";
    case Value::Kind::String: return "string";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::List: return "list";
    case Value::Kind::Map: return "map";
    case Value::Kind::Hosts: return "hosts";
    case Value::Kind::Host: return "host";
    case Value::Kind::Plugin: return "plugin";
    case Value::Kind::Metric: return "metric";
  }
  return "?";
}

nlohmann::json to_json(const Value& v) {
  using J = nlohmann::json;
  if (v.secret() && v.kind == Value::Kind::String) return J{{"secret", true}};
  switch (v.kind) {
    case Value::Kind::Null: return nullptr;
    case Value::Kind::Number: return v.num;
    case Value::Kind::Bool: return v.flag;
    case Value::Kind::String: return v.str;
    case Value::Kind::Duration: return J{{"ms", v.num}};
    case Value::Kind::Percent: return J{{"percent", v.num}};
    case Value::Kind::Bytes: return J{{"bytes", v.num}};
    case Value::Kind::List: {
      J a = J::array();
      for (const Value& i : v.items()) a.push_back(to_json(i));
      return a;
    }
    case Value::Kind::Hosts: {
      J a = J::array();
      for (const Value& i : v.items()) a.push_back(i.str);
      return J{{"hosts", a}};
    }
    case Value::Kind::Map: {
      J o = J::object();
      for (const auto& [k, i] : v.fields()) o[k] = to_json(i);
      return J{{"map", o}};
    }
    case Value::Kind::Host: return J{{"host", v.str}};
    case Value::Kind::Plugin: return J{{"plugin", v.str}};
    case Value::Kind::Metric: return J{{"metric", v.str}};
  }
  return nullptr;
}

Value from_json(const nlohmann::json& j) {
  if (j.is_null()) return Value::null();
  if (j.is_boolean()) return Value::boolean(j.get<bool>());
  if (j.is_number()) return Value::number(j.get<double>());
  if (j.is_string()) return Value::string(j.get<std::string>());
  if (j.is_array()) {
    List items;
    for (const auto& i : j) items.push_back(from_json(i));
    return Value::of_list(std::move(items));
  }
  if (j.is_object() && j.size() == 1) {
    const std::string k = j.begin().key();
    const nlohmann::json& x = j.begin().value();
    if (k == "ms" && x.is_number()) return Value::duration_ms(x.get<double>());
    if (k == "percent" && x.is_number()) return Value::percent(x.get<double>());
    if (k == "bytes" && x.is_number()) return Value::bytes(x.get<double>());
    if (k == "secret") return Value::string("<secret>", true);
    if (k == "host" && x.is_string()) return Value::named(Value::Kind::Host, x.get<std::string>());
    if (k == "plugin" && x.is_string()) return Value::named(Value::Kind::Plugin, x.get<std::string>());
    if (k == "metric" && x.is_string()) return Value::named(Value::Kind::Metric, x.get<std::string>());
    if (k == "hosts" && x.is_array()) {
      List hs;
      for (const auto& h : x) hs.push_back(Value::named(Value::Kind::Host, h.is_string() ? h.get<std::string>() : ""));
      return Value::of_list(std::move(hs), Value::Kind::Hosts);
    }
    if (k == "map" && x.is_object()) {
      Map m;
      for (const auto& [mk, mv] : x.items()) m[mk] = from_json(mv);
      return Value::of_map(std::move(m));
    }
  }
  return Value::null();
}

}  // namespace gray
