// JSON pointers (RFC 6901): "/items/0/value" names one value inside a JSON document. Kept apart
// from the driver so the rules (escapes, array indices, the URI fragment form) are tested alone.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gray::plugins::json_pointer {

// "/a~1b/0" -> {"a/b", "0"}. Also takes the URI fragment form ("#/a%20b"). False, with a
// message in `error`, for text that is not a pointer ("a/b", "/x~2").
bool parse(const std::string& text, std::vector<std::string>& tokens, std::string& error);

struct Lookup {
  enum class Outcome {
    Found,     // `value` points into the document
    Missing,   // a member or index that is not there, or a null on the way
    Mismatch,  // the path goes through a number, string or bool, or uses a non-index on a list
  };
  Outcome outcome = Outcome::Missing;
  const nlohmann::json* value = nullptr;
  std::string problem;  // for Missing and Mismatch: what was not there, for people
};

// Follows `tokens` from `doc`.
Lookup resolve(const nlohmann::json& doc, const std::vector<std::string>& tokens);

// The pointer text of the first `count` tokens, escaped again ("/a~1b"); "" for the whole document.
std::string text_of(const std::vector<std::string>& tokens, size_t count);

}  // namespace gray::plugins::json_pointer
