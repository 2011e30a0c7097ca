#include "plugins/external/protocol.h"

#include <cmath>

namespace gray::plugins::external {

using json = nlohmann::json;

json to_protocol(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Null: return nullptr;
    case Value::Kind::Number:
    case Value::Kind::Duration:
    case Value::Kind::Percent:
    case Value::Kind::Bytes:
      // Whole numbers travel as JSON integers: a plugin reading 5% gets 5, not 5.0.
      if (std::isfinite(v.num) && v.num == std::floor(v.num) && std::fabs(v.num) < 9e15) return static_cast<long long>(v.num);
      return v.num;
    case Value::Kind::Bool: return v.flag;
    case Value::Kind::String:
    case Value::Kind::Host:
    case Value::Kind::Plugin:
    case Value::Kind::Metric: return v.str;
    case Value::Kind::List:
    case Value::Kind::Hosts: {
      json a = json::array();
      for (const Value& item : v.items()) a.push_back(to_protocol(item));
      return a;
    }
    case Value::Kind::Map: {
      json o = json::object();
      for (const auto& [k, item] : v.fields()) o[k] = to_protocol(item);
      return o;
    }
  }
  return nullptr;
}

Value from_protocol(const json& j, Type hint) {
  if (j.is_boolean()) return Value::boolean(j.get<bool>());
  if (j.is_number()) {
    double n = j.get<double>();
    switch (hint) {
      case Type::Percent: return Value::percent(n);
      case Type::Duration: return Value::duration_ms(n);
      case Type::Bytes: return Value::bytes(n);
      default: return Value::number(n);
    }
  }
  if (j.is_string()) return hint == Type::Host ? Value::named(Value::Kind::Host, j.get<std::string>()) : Value::string(j.get<std::string>());
  if (j.is_array()) {
    List items;
    for (const json& item : j) items.push_back(from_protocol(item, hint == Type::Hosts ? Type::Host : Type::Any));
    return Value::of_list(std::move(items), hint == Type::Hosts ? Value::Kind::Hosts : Value::Kind::List);
  }
  if (j.is_object()) {
    Map m;
    for (const auto& [k, item] : j.items()) m[k] = from_protocol(item);
    return Value::of_map(std::move(m));
  }
  return Value::null();
}

namespace {

// JSON pointer escaping (RFC 6901).
std::string pointer_token(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// The catalog type of `op`'s argument `name`, Any when unknown.
Type param_type(Kind kind, const std::string& op, const std::string& name) {
  if (const OpSpec* spec = find_op(kind, op))
    for (const ParamSpec& p : spec->params)
      if (name == p.name) return p.type;
  return Type::Any;
}

}  // namespace

void find_secrets(const Value& v, const std::string& prefix, std::vector<std::string>& pointers, std::vector<std::string>& texts) {
  if (!v.secret()) return;
  if (v.kind == Value::Kind::String) {
    pointers.push_back(prefix);
    if (!v.str.empty()) texts.push_back(v.str);
  } else if (v.kind == Value::Kind::List || v.kind == Value::Kind::Hosts) {
    for (size_t i = 0; i < v.items().size(); ++i) find_secrets(v.items()[i], prefix + "/" + std::to_string(i), pointers, texts);
  } else if (v.kind == Value::Kind::Map) {
    for (const auto& [k, item] : v.fields()) find_secrets(item, prefix + "/" + pointer_token(k), pointers, texts);
  }
}

std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    if (s.empty()) continue;
    for (size_t pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 8)) text.replace(pos, s.size(), "<secret>");
  }
  return text;
}

json call_request(const Call& c, const char* type) {
  json args = json::object();
  std::vector<std::string> pointers, texts;
  for (const auto& [k, v] : c.args) {
    args[k] = to_protocol(v);
    find_secrets(v, "/args/" + pointer_token(k), pointers, texts);
  }
  json req = {{"type", type}, {"op", c.op}, {"args", args}, {"key", c.key}, {"timeout_ms", c.timeout_ms}};
  if (!pointers.empty()) req["secrets"] = pointers;
  return req;
}

std::optional<Hello> read_hello(const json& j, Kind kind, std::string& problem) {
  if (!j.is_object()) {
    problem = "its handshake answer is not a JSON object";
    return std::nullopt;
  }
  if (j.contains("error")) {
    problem = "it refused the configuration: " + (j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
    return std::nullopt;
  }
  if (!j.contains("protocol") || !j["protocol"].is_number_integer()) {
    problem = "its handshake answer has no \"protocol\" version";
    return std::nullopt;
  }
  if (j["protocol"].get<long long>() != kProtocolVersion) {
    problem = "it speaks protocol version " + j["protocol"].dump() + "; this gray speaks version " + std::to_string(kProtocolVersion);
    return std::nullopt;
  }
  if (!j.contains("kind") || !j["kind"].is_string() || j["kind"].get<std::string>() != kind_name(kind)) {
    problem = j.contains("kind") && j["kind"].is_string()
                  ? "it is a " + j["kind"].get<std::string>() + " plugin, not a " + kind_name(kind) + " plugin"
                  : std::string("its handshake answer does not say its \"kind\"");
    return std::nullopt;
  }
  Hello h;
  if (!j.contains("ops") || !j["ops"].is_array()) {
    problem = "its handshake answer has no \"ops\" list";
    return std::nullopt;
  }
  for (const json& op : j["ops"]) {
    if (!op.is_string()) {
      problem = "its \"ops\" list holds something other than operation names";
      return std::nullopt;
    }
    h.ops.push_back(op.get<std::string>());
  }
  if (j.contains("name") && j["name"].is_string()) h.name = j["name"].get<std::string>();
  if (j.contains("version") && j["version"].is_string()) h.version = j["version"].get<std::string>();
  if (j.contains("undo_for")) {
    if (!j["undo_for"].is_boolean()) {
      problem = "\"undo_for\" in its handshake answer must be true or false";
      return std::nullopt;
    }
    h.undo_for = j["undo_for"].get<bool>();
  }
  return h;
}

bool read_undo(const json& j, Kind kind, std::optional<Call>& out, std::string& problem) {
  out.reset();
  if (j.is_null()) return true;
  if (!j.is_object() || !j.contains("op") || !j["op"].is_string() || j["op"].get<std::string>().empty()) {
    problem = "\"undo\" must be null or {\"op\": NAME, \"args\": {...}}";
    return false;
  }
  Call c;
  c.op = j["op"].get<std::string>();
  if (j.contains("args") && !j["args"].is_null()) {
    if (!j["args"].is_object()) {
      problem = "\"undo\".args must be an object";
      return false;
    }
    for (const auto& [k, v] : j["args"].items()) c.args[k] = from_protocol(v, param_type(kind, c.op, k));
  }
  if (j.contains("key")) {
    if (!j["key"].is_string()) {
      problem = "\"undo\".key must be a string";
      return false;
    }
    c.key = j["key"].get<std::string>();
  }
  out = std::move(c);
  return true;
}

bool read_result(const json& j, Kind kind, const std::string& op, Result& out, std::string& problem) {
  out = Result{};
  if (!j.contains("status") || !j["status"].is_string()) {
    problem = "\"status\" must be one of \"ok\", \"nodata\", \"failed\", \"error\"";
    return false;
  }
  const std::string status = j["status"].get<std::string>();
  if (status == "ok") out.status = Result::Status::Ok;
  else if (status == "nodata") out.status = Result::Status::NoData;
  else if (status == "failed") out.status = Result::Status::Failed;
  else if (status == "error") out.status = Result::Status::Error;
  else {
    problem = "unknown status \"" + status + "\" (expected ok, nodata, failed or error)";
    return false;
  }
  if (j.contains("message") && !j["message"].is_null()) {
    if (!j["message"].is_string()) {
      problem = "\"message\" must be a string";
      return false;
    }
    out.message = j["message"].get<std::string>();
  }
  if (j.contains("value")) {
    const OpSpec* spec = find_op(kind, op);
    out.value = from_protocol(j["value"], spec ? spec->result : Type::Any);
  }
  if (j.contains("replayed") && !j["replayed"].is_null()) {
    if (!j["replayed"].is_boolean()) {
      problem = "\"replayed\" must be true or false";
      return false;
    }
    out.replayed = j["replayed"].get<bool>();
  }
  if (j.contains("undo") && !read_undo(j["undo"], kind, out.undo, problem)) return false;
  return true;
}

}  // namespace gray::plugins::external
