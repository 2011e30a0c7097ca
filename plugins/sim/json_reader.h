// Reading a JSON document field by field, remembering the first problem as "PATH: message"
// (`hosts[2].port: expected a whole number, got a string`), with a suggestion for a misspelt
// field. Used by the scenario reader; internal to plugins/sim.
#pragma once

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/sim/scenario.h"

namespace gray::sim::detail {

using json = nlohmann::json;

inline std::string type_of(const json& j) {
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_array()) return "a list";
  if (j.is_object()) return "an object";
  return "null";
}

inline std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }
inline std::string at(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

inline size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Walks one JSON document, remembering the first problem as "PATH: message".
class Reader {
 public:
  explicit Reader(std::string& error) : error_(error) {}

  bool fail(const std::string& path, const std::string& message) {
    if (error_.empty()) error_ = (path.empty() ? std::string("scenario") : path) + ": " + message;
    return false;
  }

  // An object whose fields are all in `known`.
  bool object(const json& j, const std::string& path, std::initializer_list<std::string_view> known) {
    if (!j.is_object()) return fail(path, "expected an object, got " + type_of(j));
    for (const auto& [k, v] : j.items()) {
      if (std::find(known.begin(), known.end(), k) != known.end()) continue;
      std::string message = "unknown field";
      for (std::string_view candidate : known)
        if (edit_distance(k, candidate) <= 2) {
          message += " (did you mean '" + std::string(candidate) + "'?)";
          break;
        }
      return fail(join(path, k), message);
    }
    return true;
  }

  bool string(const json& o, const char* key, const std::string& path, std::string& out) {
    if (!o.contains(key)) return true;
    const json& v = o[key];
    if (!v.is_string()) return fail(join(path, key), "expected a string, got " + type_of(v));
    out = v.get<std::string>();
    return true;
  }

  bool required_string(const json& o, const char* key, const std::string& path, std::string& out) {
    if (!o.contains(key)) return fail(join(path, key), "required");
    return string(o, key, path, out);
  }

  bool number(const json& o, const char* key, const std::string& path, double& out, double lo = -kForever, double hi = kForever) {
    if (!o.contains(key)) return true;
    const json& v = o[key];
    if (!v.is_number()) return fail(join(path, key), "expected a number, got " + type_of(v));
    double d = v.get<double>();
    if (d < lo || d > hi) {
      std::string range = hi == kForever ? "at least " + num(lo) : "between " + num(lo) + " and " + num(hi);
      return fail(join(path, key), "must be " + range + ", got " + num(d));
    }
    out = d;
    return true;
  }

  bool number(const json& o, const char* key, const std::string& path, std::optional<double>& out, double lo = -kForever,
              double hi = kForever) {
    if (!o.contains(key)) return true;
    double d = 0;
    if (!number(o, key, path, d, lo, hi)) return false;
    out = d;
    return true;
  }

  bool integer(const json& o, const char* key, const std::string& path, long long& out, long long lo, long long hi) {
    if (!o.contains(key)) return true;
    const json& v = o[key];
    if (!v.is_number() || std::floor(v.get<double>()) != v.get<double>())
      return fail(join(path, key), "expected a whole number, got " + (v.is_number() ? num(v.get<double>()) : type_of(v)));
    double d = v.get<double>();
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
      return fail(join(path, key), "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + num(d));
    out = static_cast<long long>(d);
    return true;
  }

  bool boolean(const json& o, const char* key, const std::string& path, bool& out) {
    if (!o.contains(key)) return true;
    const json& v = o[key];
    if (!v.is_boolean()) return fail(join(path, key), "expected true or false, got " + type_of(v));
    out = v.get<bool>();
    return true;
  }

  bool duration(const json& o, const char* key, const std::string& path, double& out) {
    if (!o.contains(key)) return true;
    const json& v = o[key];
    if (!v.is_string()) return fail(join(path, key), "expected a duration such as \"30s\", got " + type_of(v));
    if (!parse_duration(v.get<std::string>(), out))
      return fail(join(path, key),
                  "bad duration \"" + v.get<std::string>() + "\" (write a number and a unit: 250ms, 30s, 10m, 1h, 1d)");
    return true;
  }

  bool duration(const json& o, const char* key, const std::string& path, std::optional<double>& out) {
    if (!o.contains(key)) return true;
    double d = 0;
    if (!duration(o, key, path, d)) return false;
    out = d;
    return true;
  }

  bool strings(const json& o, const char* key, const std::string& path, std::vector<std::string>& out) {
    if (!o.contains(key)) return true;
    const json& v = o[key];
    if (!v.is_array()) return fail(join(path, key), "expected a list of strings, got " + type_of(v));
    out.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) return fail(at(join(path, key), i), "expected a string, got " + type_of(v[i]));
      out.push_back(v[i].get<std::string>());
    }
    return true;
  }

  bool string_map(const json& o, const char* key, const std::string& path, std::map<std::string, std::string>& out) {
    if (!o.contains(key)) return true;
    const json& v = o[key];
    if (!v.is_object()) return fail(join(path, key), "expected an object, got " + type_of(v));
    for (const auto& [k, x] : v.items()) {
      if (!x.is_string()) return fail(join(join(path, key), k), "expected a string, got " + type_of(x));
      out[k] = x.get<std::string>();
    }
    return true;
  }

  static std::string num(double d) {
    if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
    std::string s = std::to_string(d);
    while (!s.empty() && s.back() == '0') s.pop_back();
    return s;
  }

 private:
  std::string& error_;
};

}  // namespace gray::sim::detail
