#include "plugins/docker_registry/docker_registry.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "plugins/docker_registry/image_ref.h"
#include "plugins/docker_registry/sha256.h"
#include "plugins/http/http.h"

namespace gray::plugins {

namespace docker_registry {

const char* const kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr double kBackoffMs = 200;

// The time a call has left, shared by every request it makes (auth round trips included).
class Deadline {
 public:
  explicit Deadline(double budget_ms) : start_(Clock::now()), budget_ms_(budget_ms) {}
  double elapsed_ms() const { return std::chrono::duration<double, std::milli>(Clock::now() - start_).count(); }
  double remaining_ms() const { return budget_ms_ - elapsed_ms(); }
  double budget_ms() const { return budget_ms_; }

 private:
  Clock::time_point start_;
  double budget_ms_;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull,push"`
// -> scheme "bearer" and its parameters. Quoted values may hold commas.
std::string parse_challenge(const std::string& header, std::map<std::string, std::string>& params) {
  size_t sp = header.find(' ');
  std::string scheme = lower(header.substr(0, sp));
  size_t i = sp == std::string::npos ? header.size() : sp + 1;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = lower(header.substr(i, eq - i));
    std::string value;
    i = eq + 1;
    if (i < header.size() && header[i] == '"') {
      for (++i; i < header.size() && header[i] != '"'; ++i) {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value += header[i];
      }
      ++i;
    } else {
      size_t comma = header.find(',', i);
      value = header.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
      i = comma == std::string::npos ? header.size() : comma;
    }
    params[key] = value;
  }
  return scheme;
}

// The registry's own words for a refusal: {"errors":[{"code":"DENIED","message":"..."}]}.
std::string registry_errors(const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("errors") || !doc["errors"].is_array()) return "";
  std::string out;
  for (const json& e : doc["errors"]) {
    if (!e.is_object()) continue;
    std::string one = e.value("code", "");
    if (e.contains("message") && e["message"].is_string()) one += (one.empty() ? "" : ": ") + e["message"].get<std::string>();
    if (!one.empty()) out += (out.empty() ? "" : "; ") + one;
  }
  return out;
}

std::string first_error_code(const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array() && !doc["errors"].empty() &&
      doc["errors"][0].is_object())
    return doc["errors"][0].value("code", "");
  return "";
}

struct Lookup {
  enum class Outcome { Found, Missing, Trouble } outcome = Outcome::Trouble;
  std::string digest;      // Found
  std::string error_code;  // Missing: the registry's code when it said (NAME_UNKNOWN, MANIFEST_UNKNOWN)
  std::string message;     // Trouble
};

class RegistryClient {
 public:
  RegistryClient(std::string base, std::string username, std::string password, const DriverEnv& env)
      : base_(std::move(base)), username_(std::move(username)), password_(std::move(password)), client_(env.sleep) {}

  std::string display() const { return http::display_url(base_); }

  // HEAD the manifest; GET it when the answer lacks a digest or a refusal needs its reason.
  Lookup look_up(const ImageRef& ref, bool want_reason_for_missing, const Deadline& deadline) {
    Lookup out;
    http::Response resp;
    if (!manifest_request("HEAD", ref, deadline, resp, out.message)) return out;
    if (resp.status == 200) {
      out.digest = resp.header("docker-content-digest");
      if (!valid_digest(out.digest)) {
        // Some registries leave the header off HEAD answers: GET the manifest and hash its bytes.
        if (!manifest_request("GET", ref, deadline, resp, out.message)) return out;
        if (resp.status != 200) return trouble(out, "GET", ref, resp);
        out.digest = resp.header("docker-content-digest");
        if (!valid_digest(out.digest)) out.digest = content_digest(resp.body);
      }
      out.outcome = Lookup::Outcome::Found;
      return out;
    }
    if (resp.status == 404) {
      out.outcome = Lookup::Outcome::Missing;
      if (want_reason_for_missing && manifest_request("GET", ref, deadline, resp, out.message) && resp.status == 404)
        out.error_code = first_error_code(resp.body);
      return out;
    }
    // A HEAD answer has no body: ask again with GET to learn the registry's reason for a refusal
    // (a 5xx has no useful reason, and a struggling registry needs no extra request).
    std::string method = "HEAD";
    if (resp.status >= 400 && resp.status < 500 && resp.status != 401 && deadline.remaining_ms() > 0) {
      http::Response again;
      std::string ignored;
      if (manifest_request("GET", ref, deadline, again, ignored) && again.status == resp.status) {
        resp = std::move(again);
        method = "GET";
      }
    }
    return trouble(out, method, ref, resp);
  }

 private:
  Lookup& trouble(Lookup& out, const std::string& method, const ImageRef& ref, const http::Response& resp) {
    out.outcome = Lookup::Outcome::Trouble;
    std::string reason = registry_errors(resp.body);
    out.message = method + " the manifest of " + ref.shown() + ": HTTP " + std::to_string(resp.status) +
                  (reason.empty() ? "" : " " + reason);
    if (resp.status == 403) out.message += "; check that the user may pull from " + ref.repository;
    return out;
  }

  // Sends a manifest request, answering an auth challenge once. False, with `problem` set, when
  // no usable answer came (transport trouble, refused credentials, out of time).
  bool manifest_request(const std::string& method, const ImageRef& ref, const Deadline& deadline, http::Response& resp,
                        std::string& problem) {
    http::Request req;
    req.method = method;
    req.url = base_ + "/v2/" + ref.repository + "/manifests/" + ref.reference();
    req.headers.push_back({"Accept", kManifestAccept});
    const std::string scope = "repository:" + ref.repository + ":pull";
    // A token from an earlier call may have been revoked or outlived the registry's memory of it:
    // only a token fetched during this call and then refused ends the call.
    bool sent_basic = false, sent_fresh_token = false, fetched_token = false;
    for (int round = 0; round < 2; ++round) {
      http::Request attempt = req;
      sent_basic = sent_fresh_token = false;
      if (auto token = tokens_.find(scope); token != tokens_.end() && Clock::now() < token->second.expires) {
        attempt.headers.push_back({"Authorization", "Bearer " + token->second.token});
        sent_fresh_token = fetched_token;
      } else if (use_basic_) {
        attempt.headers.push_back({"Authorization", basic_header()});
        sent_basic = true;
      }
      if (!send(attempt, deadline, resp, problem)) return false;
      if (resp.status != 401) return true;
      if (!answer_challenge(resp.header("www-authenticate"), scope, sent_basic, sent_fresh_token, deadline, problem))
        return false;
      fetched_token = tokens_.count(scope) > 0;
    }
    problem = method + " the manifest of " + ref.shown() + ": HTTP 401 again after authenticating";
    return false;
  }

  // Learns from a 401 how to authenticate: Basic with the configured user, or a bearer token from
  // the realm the challenge names (Docker Hub, Harbor, GitLab).
  bool answer_challenge(const std::string& challenge, const std::string& scope, bool sent_basic, bool sent_fresh_token,
                        const Deadline& deadline, std::string& problem) {
    std::map<std::string, std::string> params;
    std::string scheme = parse_challenge(challenge, params);
    if (scheme == "basic") {
      if (username_.empty()) {
        problem = "the registry asks for a user name and password (HTTP 401, Basic); set username and password";
        return false;
      }
      if (sent_basic) {
        problem = "the registry refused the password of user '" + username_ + "' (HTTP 401)";
        return false;
      }
      use_basic_ = true;
      return true;
    }
    if (scheme == "bearer") {
      if (sent_fresh_token) {
        problem = "the registry refused the token from " + http::display_url(params["realm"]) + " for " + scope + " (HTTP 401)";
        return false;
      }
      tokens_.erase(scope);
      return fetch_token(params, scope, deadline, problem);
    }
    problem = "the registry answered HTTP 401 with " +
              (challenge.empty() ? std::string("no WWW-Authenticate challenge") : "an unknown challenge \"" + scheme + "\"");
    return false;
  }

  bool fetch_token(std::map<std::string, std::string>& params, const std::string& scope, const Deadline& deadline,
                   std::string& problem) {
    const std::string realm = params["realm"];
    if (realm.rfind("http://", 0) != 0 && realm.rfind("https://", 0) != 0) {
      problem = "the registry's bearer challenge names no usable realm (\"" + http::display_url(realm) + "\")";
      return false;
    }
    http::Request req;
    std::vector<std::pair<std::string, std::string>> query;
    if (!params["service"].empty()) query.push_back({"service", params["service"]});
    query.push_back({"scope", params["scope"].empty() ? scope : params["scope"]});
    req.url = realm + (realm.find('?') == std::string::npos ? "?" : "&") + http::form(query);
    if (!username_.empty()) req.headers.push_back({"Authorization", basic_header()});
    http::Response resp;
    if (!send(req, deadline, resp, problem)) return false;
    if (resp.status != 200) {
      problem = "the token service refused: " + resp.describe(req);
      return false;
    }
    json doc = json::parse(resp.body, nullptr, false);
    std::string token;
    if (doc.is_object()) {
      if (doc.contains("token") && doc["token"].is_string())
        token = doc["token"].get<std::string>();
      else if (doc.contains("access_token") && doc["access_token"].is_string())
        token = doc["access_token"].get<std::string>();
    }
    if (token.empty()) {
      problem = "the token service at " + http::display_url(realm) + " answered without a token";
      return false;
    }
    // The spec's default lifetime is 60 s; renew a little early.
    double lifetime_s = doc.value("expires_in", 60.0);
    auto expires = Clock::now() + std::chrono::milliseconds(static_cast<long long>(std::max(0.0, lifetime_s - 5) * 1000));
    tokens_[scope] = {token, expires};
    return true;
  }

  // One request within the deadline; one retry (idempotent requests only) when there is time.
  bool send(http::Request req, const Deadline& deadline, http::Response& resp, std::string& problem) {
    double left = deadline.remaining_ms();
    if (left < 1) {
      problem = req.method + " " + http::display_url(req.url) + ": out of time (the call's timeout is " +
                format_duration(deadline.budget_ms()) + ")";
      return false;
    }
    req.retries = left >= 2000 ? 1 : 0;
    req.backoff_ms = kBackoffMs;
    req.timeout_ms = std::max(1.0, (left - (req.retries ? kBackoffMs : 0)) / (1 + req.retries));
    req.connect_timeout_ms = std::min(3000.0, req.timeout_ms);
    if (!password_.empty()) req.secrets.push_back(password_);
    resp = client_.send(req);
    if (!resp.transport_ok()) {
      problem = resp.describe(req);
      return false;
    }
    return true;
  }

  std::string basic_header() const { return "Basic " + http::base64_encode(username_ + ":" + password_); }

  struct Token {
    std::string token;
    Clock::time_point expires;
  };

  std::string base_;
  std::string username_, password_;
  http::Client client_;
  bool use_basic_ = false;
  std::map<std::string, Token> tokens_;  // by scope
};

class DockerRegistryDriver : public Driver {
 public:
  DockerRegistryDriver(std::string base, std::string repository, std::string username, std::string password, const DriverEnv& env)
      : registry_host_(url_authority(base)),
        repository_(std::move(repository)),
        client_(std::move(base), std::move(username), std::move(password), env) {}

  Kind kind() const override { return Kind::Images; }

  Result call(const Call& call) override {
    const std::string server = "docker registry at " + client_.display();
    if (call.op != "exists" && call.op != "digest")
      return failed_result(server + ": no operation '" + call.op + "'; it has exists and digest");
    auto arg = call.args.find("ref");
    if (arg == call.args.end() || arg->second.kind != Value::Kind::String)
      return failed_result(server + ": " + call.op + " needs ref, a tag such as \"2.4.1\" or \"" + repository_ + ":2.4.1\"");
    ImageRef ref;
    std::string problem;
    if (!parse_image_ref(arg->second.str, repository_, registry_host_, ref, problem))
      return failed_result(server + ": " + problem);

    Deadline deadline(std::max(1.0, call.timeout_ms));
    Lookup found = client_.look_up(ref, call.op == "digest", deadline);
    Result r = answer(call.op, server + ": " + ref.shown(), ref, found);
    r.elapsed_ms = deadline.elapsed_ms();
    return r;
  }

 private:
  static Result answer(const std::string& op, const std::string& where, const ImageRef& ref, const Lookup& found) {
    switch (found.outcome) {
      case Lookup::Outcome::Found:
        return op == "exists" ? ok_result(Value::boolean(true)) : ok_result(Value::string(found.digest));
      case Lookup::Outcome::Missing:
        if (op == "exists") return ok_result(Value::boolean(false));
        if (!ref.digest.empty()) return failed_result(where + ": no such manifest");
        if (found.error_code == "NAME_UNKNOWN")
          return failed_result(where + ": no such tag: the repository " + ref.repository + " does not exist");
        return failed_result(where + ": no such tag");
      case Lookup::Outcome::Trouble:
        break;
    }
    return error_result(where + ": " + found.message);
  }

  std::string registry_host_;
  std::string repository_;
  RegistryClient client_;
};

}  // namespace

}  // namespace docker_registry

std::unique_ptr<Driver> make_docker_registry(const std::string& instance, const Value& config, const DriverEnv& env) {
  std::string url = config_string(instance, config, "url");
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    throw DriverError(instance + ": field 'url' must start with http:// or https:// (got \"" + http::display_url(url) + "\")");
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.size() >= 3 && url.compare(url.size() - 3, 3, "/v2") == 0)
    throw DriverError(instance + ": field 'url' is the registry's base URL, without /v2 (got \"" + http::display_url(url) +
                      "\")");
  std::string repository = config_string(instance, config, "repository");
  if (!docker_registry::valid_repository(repository))
    throw DriverError(instance + ": field 'repository' is not a repository name: \"" + repository +
                      "\" (lower-case letters and digits, with '.', '_', '-' and '/' between them, such as team/checkout)");
  std::string username = config_string(instance, config, "username", "");
  const Value* password = config_field(config, "password");
  if (password && password->kind != Value::Kind::String)
    throw DriverError(instance + ": field 'password' must be a string, such as env(\"REGISTRY_PASSWORD\")");
  if (username.empty() != (!password || password->str.empty()))
    throw DriverError(instance + ": fields 'username' and 'password' go together: set both or neither");
  return std::make_unique<docker_registry::DockerRegistryDriver>(std::move(url), std::move(repository), std::move(username),
                                                                 password ? password->str : std::string(), env);
}

}  // namespace gray::plugins
