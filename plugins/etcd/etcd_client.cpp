#include "plugins/etcd/etcd_client.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace gray::plugins::etcd {

using nlohmann::json;

namespace {

// gRPC status codes etcd puts in its error replies.
constexpr int kUnauthenticated = 16;
constexpr int kUnavailable = 14;
constexpr int kDeadlineExceeded = 4;

double since_ms(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string b64(const std::string& s) { return http::base64_encode(s); }

bool decode_kv(const json& j, KeyValue& kv) {
  if (!j.is_object() || !j.contains("key") || !j["key"].is_string()) return false;
  if (!http::base64_decode(j["key"].get<std::string>(), kv.key)) return false;
  if (j.contains("value")) {
    if (!j["value"].is_string() || !http::base64_decode(j["value"].get<std::string>(), kv.value)) return false;
  }
  kv.create_revision = j.contains("create_revision") ? as_int(j["create_revision"]) : 0;
  kv.mod_revision = j.contains("mod_revision") ? as_int(j["mod_revision"]) : 0;
  kv.lease = j.contains("lease") ? as_int(j["lease"]) : 0;
  return true;
}

// The text of a gateway error reply, e.g. "etcdserver: requested lease not found".
std::string error_text(const json& j) {
  if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  if (j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  return j.dump().substr(0, 200);
}

bool is_error_reply(const json& j) {
  return j.is_object() && (j.contains("error") || j.contains("message")) && j.contains("code");
}

}  // namespace

long long as_int(const json& j) {
  if (j.is_number_integer()) return j.get<long long>();
  if (j.is_number()) return static_cast<long long>(j.get<double>());
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    return end == s.c_str() + s.size() ? v : 0;
  }
  return 0;
}

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Client::Client(ClientConfig config, std::function<void(double)> sleep) : config_(std::move(config)), http_(std::move(sleep)) {}

std::string Client::where() const {
  if (config_.endpoints.empty()) return "etcd";
  return "etcd at " + config_.endpoints[current_ % config_.endpoints.size()];
}

Reply Client::send(const std::string& path, const json& body, double timeout_ms) {
  Reply out;
  const size_t n = config_.endpoints.size();
  std::string last_error;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    const size_t idx = (current_ + i) % n;
    double left = timeout_ms - since_ms(t0);
    if (left < 1) break;
    http::Request req;
    req.method = "POST";
    req.url = config_.endpoints[idx] + path;
    req.headers.push_back({"Content-Type", "application/json"});
    if (!token_.empty()) req.headers.push_back({"Authorization", token_});
    req.body = body.dump();
    req.timeout_ms = left;
    req.connect_timeout_ms = std::min(3000.0, left);
    // Every request gray sends is safe to repeat: writes are compare-and-swap transactions or
    // set-to-a-value puts, and a repeated lease grant only leaves a lease that expires unused.
    req.idempotent = true;
    req.retries = n == 1 ? 1 : 0;
    req.secrets = {config_.password, token_};
    http::Response resp = http_.send(req);
    if (!resp.transport_ok()) {
      last_error = config_.endpoints[idx] + ": " + resp.error;
      continue;
    }
    current_ = idx;
    json j = json::parse(resp.body, nullptr, false);
    if (resp.status == 200) {
      if (j.is_discarded() || !j.is_object() || !(j.contains("header") || j.contains("result") || j.contains("token"))) {
        out.kind = Reply::Kind::Garbage;
        out.message = "the answer to POST " + path + " is not an etcd v3 JSON gateway reply (" + resp.describe(req) + ")";
        return out;
      }
      out.body = std::move(j);
      return out;
    }
    if (is_error_reply(j)) {
      int code = static_cast<int>(as_int(j["code"]));
      out.kind = code == kUnavailable || code == kDeadlineExceeded ? Reply::Kind::Unreachable : Reply::Kind::Refused;
      out.body = std::move(j);
      out.message = error_text(out.body);
      return out;
    }
    out.kind = Reply::Kind::Garbage;
    out.message = "an answer that is not from an etcd v3 JSON gateway: " + resp.describe(req);
    return out;
  }
  out.kind = Reply::Kind::Unreachable;
  std::string list;
  for (const std::string& e : config_.endpoints) list += (list.empty() ? "" : ", ") + e;
  out.message = "cannot reach etcd (" + (last_error.empty() ? "no time left to try " + list : last_error) + ")";
  return out;
}

Reply Client::authenticate(double timeout_ms) {
  token_.clear();
  Reply r = send("/v3/auth/authenticate", json{{"name", config_.username}, {"password", config_.password}}, timeout_ms);
  if (!r.ok()) {
    if (r.kind == Reply::Kind::Refused) r.message = "authentication as " + config_.username + " failed: " + error_text(r.body);
    return r;
  }
  if (!r.body.contains("token") || !r.body["token"].is_string() || r.body["token"].get<std::string>().empty()) {
    r.kind = Reply::Kind::Garbage;
    r.message = "the answer to authenticate carries no token";
    return r;
  }
  token_ = r.body["token"].get<std::string>();
  return r;
}

Reply Client::post(const std::string& path, const json& body, double timeout_ms) {
  auto t0 = std::chrono::steady_clock::now();
  const bool auth = !config_.username.empty();
  if (auth && token_.empty()) {
    Reply a = authenticate(timeout_ms);
    if (!a.ok()) return a;
  }
  Reply r = send(path, body, timeout_ms - since_ms(t0));
  const bool expired = r.kind == Reply::Kind::Refused && as_int(r.body.value("code", json(0))) == kUnauthenticated;
  if (auth && expired) {
    Reply a = authenticate(timeout_ms - since_ms(t0));
    if (!a.ok()) return a;
    r = send(path, body, timeout_ms - since_ms(t0));
  }
  if (!auth && r.kind == Reply::Kind::Refused && error_text(r.body).find("user name is empty") != std::string::npos)
    r.message += " (etcd has authentication enabled: set username and password)";
  return r;
}

Reply Client::range(const std::string& key, bool prefix, double timeout_ms, std::vector<KeyValue>& out) {
  out.clear();
  json body{{"key", b64(key)}};
  if (prefix) body["range_end"] = b64(prefix_end(key));
  Reply r = post("/v3/kv/range", body, timeout_ms);
  if (!r.ok()) return r;
  if (!r.body.contains("kvs")) return r;  // nothing there
  if (!r.body["kvs"].is_array()) {
    r.kind = Reply::Kind::Garbage;
    r.message = "range answered kvs that is not a list";
    return r;
  }
  for (const json& item : r.body["kvs"]) {
    KeyValue kv;
    if (!decode_kv(item, kv)) {
      r.kind = Reply::Kind::Garbage;
      r.message = "range answered a key or value that is not base64";
      return r;
    }
    out.push_back(std::move(kv));
  }
  return r;
}

Reply Client::grant(long long ttl_seconds, double timeout_ms, long long& lease) {
  Reply r = post("/v3/lease/grant", json{{"TTL", ttl_seconds}}, timeout_ms);
  if (!r.ok()) return r;
  lease = r.body.contains("ID") ? as_int(r.body["ID"]) : 0;
  if (lease == 0) {
    r.kind = Reply::Kind::Garbage;
    r.message = "lease grant answered no lease ID";
  }
  return r;
}

Reply Client::keepalive(long long lease, double timeout_ms, long long& ttl) {
  Reply r = post("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}, timeout_ms);
  ttl = 0;
  if (!r.ok()) return r;
  // The streaming call's single reply comes wrapped in "result"; a lease that is gone has no TTL.
  const json& res = r.body.contains("result") ? r.body["result"] : r.body;
  if (res.is_object() && res.contains("TTL")) ttl = as_int(res["TTL"]);
  return r;
}

Reply Client::lease_keys(long long lease, double timeout_ms, long long& ttl, std::vector<std::string>& keys) {
  Reply r = post("/v3/lease/timetolive", json{{"ID", std::to_string(lease)}, {"keys", true}}, timeout_ms);
  ttl = -1;
  keys.clear();
  if (!r.ok()) return r;
  ttl = r.body.contains("TTL") ? as_int(r.body["TTL"]) : -1;
  if (r.body.contains("keys") && r.body["keys"].is_array())
    for (const json& k : r.body["keys"]) {
      std::string key;
      if (!k.is_string() || !http::base64_decode(k.get<std::string>(), key)) {
        r.kind = Reply::Kind::Garbage;
        r.message = "timetolive answered a key that is not base64";
        return r;
      }
      keys.push_back(std::move(key));
    }
  return r;
}

Reply Client::revoke(long long lease, double timeout_ms) {
  return post("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}, timeout_ms);
}

Reply Client::txn(const std::vector<Compare>& compares, const std::vector<Op>& ops, double timeout_ms, bool& succeeded) {
  json cmp = json::array();
  for (const Compare& c : compares) {
    if (c.mod_revision == 0)
      cmp.push_back({{"key", b64(c.key)}, {"target", "VERSION"}, {"result", "EQUAL"}, {"version", "0"}});
    else
      cmp.push_back(
          {{"key", b64(c.key)}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", std::to_string(c.mod_revision)}});
  }
  json success = json::array();
  for (const Op& o : ops) {
    if (o.put) {
      json put{{"key", b64(o.key)}, {"value", b64(o.value)}};
      if (o.lease != 0) put["lease"] = std::to_string(o.lease);
      success.push_back({{"requestPut", put}});
    } else {
      success.push_back({{"requestDeleteRange", {{"key", b64(o.key)}}}});
    }
  }
  Reply r = post("/v3/kv/txn", json{{"compare", cmp}, {"success", success}, {"failure", json::array()}}, timeout_ms);
  succeeded = r.ok() && r.body.value("succeeded", false);
  return r;
}

}  // namespace gray::plugins::etcd
