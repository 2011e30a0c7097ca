#include "plugins/http_json/http_json.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>

#include "plugins/http/http.h"
#include "plugins/http_json/json_pointer.h"

namespace gray::plugins {

namespace http_json {

namespace {

using nlohmann::json;

std::string first_bytes(const std::string& body, size_t n = 120) {
  std::string text = body.substr(0, n);
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return "\"" + text + (body.size() > n ? "...\"" : "\"");
}

Result no_data(std::string message) {
  Result r;
  r.status = Result::Status::NoData;
  r.message = std::move(message);
  return r;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// Numbers some services write as strings ("12.5", "1e3", "NaN", "+Inf"); not hex, not "12 ms".
bool numeric_string(const std::string& raw, double& out) {
  std::string s = trim(raw);
  if (s == "NaN" || s == "nan") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  for (const char* inf : {"Inf", "+Inf", "inf", "+inf", "Infinity", "+Infinity"})
    if (s == inf) {
      out = std::numeric_limits<double>::infinity();
      return true;
    }
  for (const char* inf : {"-Inf", "-inf", "-Infinity"})
    if (s == inf) {
      out = -std::numeric_limits<double>::infinity();
      return true;
    }
  if (s.empty() || s.find_first_not_of("0123456789+-.eE") != std::string::npos) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

std::string shown_value(const json& v) {
  std::string text = v.dump();
  return text.size() <= 60 ? text : text.substr(0, 57) + "...";
}

}  // namespace

Result number_at(const std::string& where, const std::string& body, const std::string& pointer) {
  std::vector<std::string> tokens;
  std::string problem;
  if (!json_pointer::parse(pointer, tokens, problem)) return failed_result(where + ": " + problem);
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return error_result(where + ": the answer is not JSON (garbage); it begins " + first_bytes(body));

  json_pointer::Lookup found = json_pointer::resolve(doc, tokens);
  const std::string at = pointer.empty() ? "the document" : "'" + pointer + "'";
  if (found.outcome == json_pointer::Lookup::Outcome::Missing)
    return no_data(where + ": no value at " + at + ": " + found.problem);
  if (found.outcome == json_pointer::Lookup::Outcome::Mismatch)
    return failed_result(where + ": cannot follow " + at + ": " + found.problem);

  const json& v = *found.value;
  if (v.is_null()) return no_data(where + ": " + at + " is null");
  if (v.is_number()) return ok_result(Value::number(v.get<double>()));
  double n = 0;
  if (v.is_string() && numeric_string(v.get<std::string>(), n)) {
    if (std::isnan(n)) return no_data(where + ": " + at + " is \"NaN\"");
    return ok_result(Value::number(n));
  }
  std::string type = v.is_string() ? "a string" : v.is_boolean() ? "a bool" : v.is_array() ? "a list" : "an object";
  return failed_result(where + ": " + at + " is " + type + " (" + shown_value(v) +
                       "), not a number; point at a number inside it");
}

}  // namespace http_json

namespace {

class HttpJsonDriver : public Driver {
 public:
  HttpJsonDriver(std::string url, double timeout_ms, const DriverEnv& env)
      : url_(std::move(url)), timeout_ms_(timeout_ms), client_(env.sleep) {}

  Kind kind() const override { return Kind::Metrics; }

  Result call(const Call& call) override {
    const std::string server = "http_json at " + http::display_url(url_);
    if (call.op != "query") return failed_result(server + ": no operation '" + call.op + "'; it has query");
    auto it = call.args.find("query");
    if (it == call.args.end() || it->second.kind != Value::Kind::String)
      return failed_result(server + ": query needs a JSON pointer string such as \"/stats/error_rate\"");
    const std::string& pointer = it->second.str;
    const std::string where = server + ": " + (pointer.empty() ? "the whole document" : pointer);

    http::Request req;
    req.url = url_;
    req.headers.push_back({"Accept", "application/json"});
    req.timeout_ms = std::max(1.0, std::min(timeout_ms_, call.timeout_ms));
    req.connect_timeout_ms = std::min(3000.0, req.timeout_ms);
    req.retries = 0;  // a guard asks again on its own schedule
    http::Response resp = client_.send(req);

    Result r =
        !resp.success() ? error_result(where + ": " + resp.describe(req)) : http_json::number_at(where, resp.body, pointer);
    r.elapsed_ms = resp.elapsed_ms;
    return r;
  }

 private:
  std::string url_;
  double timeout_ms_;
  http::Client client_;
};

}  // namespace

std::unique_ptr<Driver> make_http_json(const std::string& instance, const Value& config, const DriverEnv& env) {
  std::string url = config_string(instance, config, "url");
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    throw DriverError(instance + ": field 'url' must start with http:// or https:// (got \"" + http::display_url(url) + "\")");
  return std::make_unique<HttpJsonDriver>(std::move(url), config_ms(instance, config, "timeout", 10000), env);
}

}  // namespace gray::plugins
