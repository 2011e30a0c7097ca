// The contract between the language and the plugins: for each plugin kind, the operations a
// pipeline may call; for each driver, the configuration fields it accepts. The checker checks
// pipelines against it; the interpreter dispatches by the same names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gray::plugins {

// Value types as the checker sees them.
enum class Type : unsigned char {
  Any, Void, Number, Duration, Percent, Bytes, String, Bool, List, Map,
  Hosts,     // a set of hosts (fleet.tagged("canary"))
  Host,      // one host, inside a stage with `on`
  Gateway, Registry, HostsPlugin, Metrics, Images,  // plugin instances
  Metric,    // a declared metric
  Module, Template, Function,
};

const char* type_name(Type t);

enum class Kind : unsigned char { Gateway, Registry, Hosts, Metrics, Images };

const char* kind_name(Kind k);
bool parse_kind(std::string_view s, Kind& out);
Type instance_type(Kind k);

struct ParamSpec {
  const char* name;
  Type type;
  bool required;
};

struct OpSpec {
  const char* name;
  std::vector<ParamSpec> params;
  Type result;       // Void for operations that change the world
  bool effect;       // changes the world: journaled, may be undone
  bool member;       // used without parentheses (fleet.all)
  const char* doc;
};

struct FieldSpec {
  const char* name;
  Type type;         // List fields hold strings
  bool required;
  const char* doc;
  bool secret = false;  // must come from env(), never a literal (checked by lint)
};

struct DriverSpec {
  Kind kind;
  const char* name;
  std::vector<FieldSpec> fields;
  const char* doc;
  // Fields of which exactly one must be given (for example socket or address).
  std::vector<std::vector<const char*>> one_of;
};

const std::vector<OpSpec>& ops(Kind k);
const OpSpec* find_op(Kind k, std::string_view name);
const std::vector<DriverSpec>& drivers();
const DriverSpec* find_driver(Kind k, std::string_view name);
std::vector<std::string_view> driver_names(Kind k);

}  // namespace gray::plugins
