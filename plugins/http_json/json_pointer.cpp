#include "plugins/http_json/json_pointer.h"

#include <cctype>

namespace gray::plugins::json_pointer {

namespace {

using nlohmann::json;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The URI fragment form percent-encodes characters (RFC 6901 section 6).
bool percent_decode(const std::string& in, std::string& out, std::string& error) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    int hi = i + 2 < in.size() ? hex_digit(in[i + 1]) : -1, lo = i + 2 < in.size() ? hex_digit(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      error = "a '%' not followed by two hex digits";
      return false;
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// "~1" is '/', "~0" is '~'; any other '~' is malformed.
bool unescape(const std::string& raw, std::string& out, std::string& error) {
  out.clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '~') {
      out += raw[i];
      continue;
    }
    char next = i + 1 < raw.size() ? raw[i + 1] : '\0';
    if (next != '0' && next != '1') {
      error = "'~' must be followed by 0 (for ~) or 1 (for /)";
      return false;
    }
    out += next == '0' ? '~' : '/';
    ++i;
  }
  return true;
}

std::string escape(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

// An array index is "0" or digits without a leading zero (RFC 6901 section 4).
bool array_index(const std::string& token, size_t& index) {
  if (token.empty() || token.size() > 18) return false;
  if (token.size() > 1 && token[0] == '0') return false;
  index = 0;
  for (char c : token) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    index = index * 10 + static_cast<size_t>(c - '0');
  }
  return true;
}

const char* type_of(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "an object";
    default:
      return "null";
  }
}

std::string shown_at(const std::vector<std::string>& tokens, size_t count) {
  std::string at = text_of(tokens, count);
  return at.empty() ? "the document" : "'" + at + "'";
}

}  // namespace

bool parse(const std::string& text, std::vector<std::string>& tokens, std::string& error) {
  tokens.clear();
  std::string pointer = text;
  if (!pointer.empty() && pointer[0] == '#') {
    std::string decoded;
    if (!percent_decode(pointer.substr(1), decoded, error)) {
      error = "\"" + text + "\" is not a JSON pointer: " + error;
      return false;
    }
    pointer = decoded;
  }
  if (pointer.empty()) return true;  // the whole document
  if (pointer[0] != '/') {
    error = "\"" + text + "\" is not a JSON pointer: it must start with '/' (for example /" + pointer + ")";
    return false;
  }
  size_t start = 1;
  for (;;) {
    size_t slash = pointer.find('/', start);
    std::string raw = pointer.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    std::string token;
    if (!unescape(raw, token, error)) {
      error = "\"" + text + "\" is not a JSON pointer: " + error;
      return false;
    }
    tokens.push_back(std::move(token));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

Lookup resolve(const json& doc, const std::vector<std::string>& tokens) {
  Lookup out;
  const json* at = &doc;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    if (at->is_null()) {
      out.problem = shown_at(tokens, i) + " is null";
      return out;
    }
    if (at->is_object()) {
      auto it = at->find(token);
      if (it == at->end()) {
        out.problem = shown_at(tokens, i) + " has no member \"" + token + "\"";
        return out;
      }
      at = &*it;
      continue;
    }
    if (at->is_array()) {
      size_t index = 0;
      if (token == "-") {
        out.problem = "'-' names the element after the end of " + shown_at(tokens, i);
        return out;
      }
      if (!array_index(token, index)) {
        out.outcome = Lookup::Outcome::Mismatch;
        out.problem = shown_at(tokens, i) + " is a list; \"" + token + "\" is not an index (0, 1, ...)";
        return out;
      }
      if (index >= at->size()) {
        out.problem = shown_at(tokens, i) + " has " + std::to_string(at->size()) + " element" + (at->size() == 1 ? "" : "s") +
                      ", no index " + token;
        return out;
      }
      at = &(*at)[index];
      continue;
    }
    out.outcome = Lookup::Outcome::Mismatch;
    out.problem = shown_at(tokens, i) + " is " + type_of(*at) + ", which has no member \"" + token + "\"";
    return out;
  }
  out.outcome = Lookup::Outcome::Found;
  out.value = at;
  return out;
}

std::string text_of(const std::vector<std::string>& tokens, size_t count) {
  std::string out;
  for (size_t i = 0; i < count && i < tokens.size(); ++i) out += "/" + escape(tokens[i]);
  return out;
}

}  // namespace gray::plugins::json_pointer
