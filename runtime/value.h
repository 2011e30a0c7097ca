// Runtime values: what expressions evaluate to and what plugins take and return.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gray {

struct Value;
using List = std::vector<Value>;
using Map = std::map<std::string, Value>;

struct Value {
  enum class Kind : unsigned char {
    Null,      // no value: a metric without data
    Number,    // plain number
    Duration,  // milliseconds
    Percent,   // as written: 5 for 5%
    Bytes,
    String,
    Bool,
    List,
    Map,
    Hosts,     // list of host names (str_list)
    Host,      // one host: its name in `str`, its inventory record in `map`
    Plugin,    // a plugin instance, by name
    Metric,    // a declared metric, by name
  };

  Kind kind = Kind::Null;
  double num = 0;
  bool flag = false;     // Bool value; for String: secret (from env(), never printed or journaled)
  std::string str;
  std::shared_ptr<const List> list;
  std::shared_ptr<const Map> map;

  static Value null() { return {}; }
  static Value number(double v) { return make(Kind::Number, v); }
  static Value duration_ms(double ms) { return make(Kind::Duration, ms); }
  static Value percent(double p) { return make(Kind::Percent, p); }
  static Value bytes(double b) { return make(Kind::Bytes, b); }
  static Value boolean(bool b) {
    Value v;
    v.kind = Kind::Bool;
    v.flag = b;
    return v;
  }
  static Value string(std::string s, bool secret = false) {
    Value v;
    v.kind = Kind::String;
    v.str = std::move(s);
    v.flag = secret;
    return v;
  }
  static Value of_list(List items, Kind kind = Kind::List) {
    Value v;
    v.kind = kind;
    v.list = std::make_shared<const List>(std::move(items));
    return v;
  }
  static Value of_map(Map m) {
    Value v;
    v.kind = Kind::Map;
    v.map = std::make_shared<const Map>(std::move(m));
    return v;
  }
  static Value named(Kind kind, std::string name) {
    Value v;
    v.kind = kind;
    v.str = std::move(name);
    return v;
  }

  bool is_null() const { return kind == Kind::Null; }
  bool is_numeric() const { return kind == Kind::Number || kind == Kind::Duration || kind == Kind::Percent || kind == Kind::Bytes; }
  bool secret() const;  // this value or anything inside it came from env()
  // The number in the unit the language compares with: percent as a fraction (5% -> 0.05).
  double scalar() const { return kind == Kind::Percent ? num / 100.0 : num; }
  const List& items() const;
  const Map& fields() const;

  // Text for interpolation into strings and commands (durations as 30s, percents as 5%).
  std::string text() const;
  // Text for logs, plans and journals: secrets are replaced by "<secret>".
  std::string shown() const;

 private:
  static Value make(Kind k, double n) {
    Value v;
    v.kind = k;
    v.num = n;
    return v;
  }
};

bool operator==(const Value& a, const Value& b);
inline bool operator!=(const Value& a, const Value& b) { return !(a == b); }

const char* kind_name(Value::Kind k);

// JSON with secrets redacted; the reverse for journal replay (secrets come back as redacted text,
// so a replayed step that needs a secret evaluates it again from the environment).
nlohmann::json to_json(const Value& v);
Value from_json(const nlohmann::json& j);

// Durations as written by people: 1500 -> "1.5s", 600000 -> "10m".
std::string format_duration(double ms);

}  // namespace gray
