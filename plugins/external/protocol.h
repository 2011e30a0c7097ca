// The messages of the external plugin protocol (docs/plugin-protocol.md), version 1: values to
// JSON and back, and the checks on what a plugin answers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plugins/api.h"

namespace gray::plugins::external {

constexpr int kProtocolVersion = 1;

// A value as the protocol writes it: numbers (percent as written, 5 for 5%; durations in
// milliseconds), strings (hosts by name), booleans, null, arrays and objects.
nlohmann::json to_protocol(const Value& v);
// The reverse; `hint` (a catalog type) turns numbers into percents or durations, names into hosts.
Value from_protocol(const nlohmann::json& j, Type hint = Type::Any);

// JSON pointers (under `prefix`) of the secret strings inside `v`, and the secret texts
// themselves (to scrub them from anything the plugin says).
void find_secrets(const Value& v, const std::string& prefix, std::vector<std::string>& pointers, std::vector<std::string>& texts);
// `text` with every secret in `secrets` replaced by <secret>.
std::string scrub(std::string text, const std::vector<std::string>& secrets);

// A call as a request line's object (without the id).
nlohmann::json call_request(const Call& c, const char* type);

// What the plugin said in its handshake answer.
struct Hello {
  std::string name, version;
  std::vector<std::string> ops;
  bool undo_for = false;
};
// Checks the handshake answer; nullopt and `problem` when it is not an acceptable one.
std::optional<Hello> read_hello(const nlohmann::json& j, Kind kind, std::string& problem);

// Turns a response object into a Result (for `op` of `kind`). False and `problem` when the
// object breaks the protocol (unknown status, wrong types).
bool read_result(const nlohmann::json& j, Kind kind, const std::string& op, Result& out, std::string& problem);
// An `undo` member: null, or {"op", "args", "key"?}. False and `problem` when malformed.
bool read_undo(const nlohmann::json& j, Kind kind, std::optional<Call>& out, std::string& problem);

}  // namespace gray::plugins::external
