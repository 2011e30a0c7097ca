#include "plugins/nacos/nacos_session.h"

#include <algorithm>

namespace gray::plugins::nacos {

using nlohmann::json;

namespace {

double since_ms(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text.size() > 300 ? text.substr(0, 300) + "..." : text;
}

std::string trimmed(const std::string& s) {
  size_t a = s.find_first_not_of(" \r\n\t");
  size_t b = s.find_last_not_of(" \r\n\t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool is_envelope(const json& j) { return j.is_object() && j.contains("code") && j["code"].is_number() && j.contains("data"); }

// "parameter missing: Required parameter 'ip' type String is not present"
std::string envelope_text(const json& j) {
  std::string text = j.value("message", "");
  if (j.contains("data") && !j["data"].is_null()) {
    std::string data = j["data"].is_string() ? j["data"].get<std::string>() : j["data"].dump();
    text += (text.empty() ? "" : ": ") + data;
  }
  return "code " + std::to_string(j["code"].get<long long>()) + (text.empty() ? "" : ", " + text);
}

}  // namespace

Session::Session(SessionConfig config, std::function<void(double)> sleep) : config_(std::move(config)), http_(std::move(sleep)) {}

Reply Session::login(double timeout_ms) {
  token_.clear();
  http::Request req;
  req.method = "POST";
  req.url = config_.base + "/v1/auth/login";
  req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
  req.body = http::form({{"username", config_.username}, {"password", config_.password}});
  req.timeout_ms = timeout_ms;
  req.connect_timeout_ms = std::min(3000.0, timeout_ms);
  req.idempotent = true;  // a second login only issues a second token
  req.secrets = {config_.password};
  http::Response resp = http_.send(req);
  Reply r;
  if (!resp.transport_ok()) {
    r.kind = Reply::Kind::Unreachable;
    r.message = "cannot reach it to log in (" + resp.error + ")";
    return r;
  }
  r.status = resp.status;
  json j = json::parse(resp.body, nullptr, false);
  if (resp.status == 403 || resp.status == 401 || resp.status == 400) {
    r.kind = Reply::Kind::Refused;
    r.message = "login as " + config_.username + " refused (HTTP " + std::to_string(resp.status) + ": " +
                one_line(http::redact(resp.body, {config_.password})) + ")";
    return r;
  }
  if (resp.status != 200 || !j.is_object() || !j.contains("accessToken") || !j["accessToken"].is_string()) {
    r.kind = Reply::Kind::Garbage;
    r.message = "the answer to login is not a Nacos token (" + resp.describe(req) + ")";
    return r;
  }
  token_ = j["accessToken"].get<std::string>();
  // Renew at 90% of the token's life so no call goes out with a token about to expire.
  double ttl_s = j.contains("tokenTtl") && j["tokenTtl"].is_number() ? j["tokenTtl"].get<double>() : 18000;
  refresh_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long long>(ttl_s * 900));
  return r;
}

Reply Session::send(const std::string& method, const std::string& path, Params params, Expect expect, double timeout_ms) {
  auto t0 = std::chrono::steady_clock::now();
  const bool auth = !config_.username.empty();
  if (auth && (token_.empty() || std::chrono::steady_clock::now() >= refresh_at_)) {
    Reply l = login(timeout_ms);
    if (!l.ok()) return l;
  }
  Reply r = exchange(method, path, params, expect, std::max(1.0, timeout_ms - since_ms(t0)));
  if (auth && r.status == 403) {
    // The token may have been revoked or the server restarted with a new secret: log in once more.
    Reply l = login(std::max(1.0, timeout_ms - since_ms(t0)));
    if (!l.ok()) return l;
    r = exchange(method, path, params, expect, std::max(1.0, timeout_ms - since_ms(t0)));
  }
  return r;
}

Reply Session::exchange(const std::string& method, const std::string& path, const Params& params, Expect expect,
                        double timeout_ms) {
  http::Request req;
  req.method = method;
  req.timeout_ms = timeout_ms;
  req.connect_timeout_ms = std::min(3000.0, timeout_ms);
  // Registering, deregistering and updating an instance set it to a given state: safe to repeat.
  req.idempotent = true;
  Params query;
  Params body;
  const bool form = config_.v2 && method != "GET";
  for (const auto& p : params) (form ? body : query).push_back(p);
  if (!token_.empty()) query.push_back({"accessToken", token_});
  req.url = config_.base + path + (query.empty() ? "" : "?" + http::form(query));
  if (form) {
    req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    req.body = http::form(body);
  }
  req.headers.push_back({"Accept", "application/json, text/plain"});
  req.secrets = {token_, config_.password};
  http::Response resp = http_.send(req);
  return interpret(resp, req, method, path, expect);
}

Reply Session::interpret(const http::Response& resp, const http::Request& req, const std::string& method, const std::string& path,
                         Expect expect) const {
  Reply r;
  if (!resp.transport_ok()) {
    r.kind = Reply::Kind::Unreachable;
    r.message = "cannot reach it (" + resp.error + ")";
    return r;
  }
  r.status = resp.status;
  const size_t scheme = config_.base.find("://");
  const size_t slash = config_.base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const std::string where = method + " " + (slash == std::string::npos ? "" : config_.base.substr(slash)) + path;
  json j = json::parse(resp.body, nullptr, false);
  if (resp.status == 410) {
    r.kind = Reply::Kind::Refused;
    r.message = "answered 410 Gone to " + where +
                ": a Nacos 3 server with its admin API compatibility off; set nacos.core.api.compatibility.admin.enabled=true "
                "on the server, or use a driver for the Nacos 3 API";
    return r;
  }
  if (resp.status < 200 || resp.status >= 300) {
    std::string text = is_envelope(j) ? envelope_text(j) : one_line(http::redact(resp.body, req.secrets));
    r.kind = resp.status >= 500 ? Reply::Kind::Garbage : Reply::Kind::Refused;
    if (resp.status == 403)
      r.message = "permission denied for " + where + " (HTTP 403: " + text + ")" +
                  (config_.username.empty() ? "; the server wants a login: set username and password" : "");
    else
      r.message = where + " answered HTTP " + std::to_string(resp.status) + (text.empty() ? "" : ": " + text);
    return r;
  }
  if (expect == Expect::RawJson || (expect == Expect::Json && !config_.v2)) {
    if (j.is_discarded() || !j.is_object()) {
      r.kind = Reply::Kind::Garbage;
      r.message = "the answer to " + where + " is not Nacos JSON (" + resp.describe(req) + ")";
      return r;
    }
    r.data = std::move(j);
    return r;
  }
  if (!config_.v2) {
    // v1 writes answer the two letters "ok".
    if (trimmed(resp.body) != "ok") {
      r.kind = Reply::Kind::Garbage;
      r.message = "the answer to " + where + " is not \"ok\" (" + resp.describe(req) + ")";
    }
    return r;
  }
  if (!is_envelope(j)) {
    r.kind = Reply::Kind::Garbage;
    r.message = "the answer to " + where + " is not a Nacos v2 {code,message,data} reply (" + resp.describe(req) + ")";
    return r;
  }
  if (j["code"].get<long long>() != 0) {
    r.kind = Reply::Kind::Refused;
    r.message = where + " refused: " + envelope_text(j);
    return r;
  }
  if (expect == Expect::Done) {
    // The source answers data "ok"; the documentation shows true. Both mean done.
    const json& d = j["data"];
    if (!((d.is_string() && d.get<std::string>() == "ok") || (d.is_boolean() && d.get<bool>()))) {
      r.kind = Reply::Kind::Garbage;
      r.message = "the answer to " + where + " has code 0 but data " + d.dump() + " instead of \"ok\"";
    }
    return r;
  }
  r.data = j["data"];
  if (!r.data.is_object()) {
    r.kind = Reply::Kind::Garbage;
    r.message = "the answer to " + where + " carries no object in data (" + resp.describe(req) + ")";
  }
  return r;
}

}  // namespace gray::plugins::nacos
