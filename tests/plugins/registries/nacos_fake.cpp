#include "tests/plugins/registries/nacos_fake.h"

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace gray::regtest {

using nlohmann::json;
using testing::HttpReply;
using testing::HttpRequest;

namespace {

double now_ms() { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

HttpReply text(int status, std::string body) {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "text/plain;charset=UTF-8";
  return r;
}

HttpReply envelope(int status, int code, const std::string& message, json data) {
  HttpReply r;
  r.status = status;
  r.body = json{{"code", code}, {"message", message}, {"data", std::move(data)}}.dump();
  return r;
}

// v1 answers a refusal in plain text, v2 in an envelope (ResponseExceptionHandler and friends).
HttpReply refuse(bool v2, int status, int code, const std::string& message, const std::string& detail) {
  return v2 ? envelope(status, code, message, detail) : text(status, detail);
}

std::string param(const std::map<std::string, std::string>& p, const std::string& k) {
  auto it = p.find(k);
  return it == p.end() ? "" : it->second;
}

// UtilsAndCommons.parseMetadata: a JSON object first, then k1=v1,k2=v2, else an error.
bool parse_metadata(const std::string& text, std::map<std::string, std::string>& out) {
  out.clear();
  if (text.empty()) return true;
  json j = json::parse(text, nullptr, false);
  if (!j.is_discarded()) {
    if (!j.is_object()) return false;
    for (const auto& [k, v] : j.items()) out[k] = v.is_string() ? v.get<std::string>() : v.dump();
    return true;
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string pair = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    out[pair.substr(0, eq)] = pair.substr(eq + 1);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

json instance_json(const NacosFake::Instance& in, const std::string& service) {
  json md = json::object();
  for (const auto& [k, v] : in.metadata) md[k] = v;
  return json{{"instanceId", in.ip + "#" + std::to_string(in.port) + "#" + in.cluster + "#" + service},
              {"ip", in.ip},
              {"port", in.port},
              {"weight", in.weight},
              {"healthy", in.healthy},
              {"enabled", in.enabled},
              {"ephemeral", in.ephemeral},
              {"clusterName", in.cluster},
              {"serviceName", service},
              {"metadata", md},
              {"instanceHeartBeatInterval", 5000},
              {"instanceHeartBeatTimeOut", 15000},
              {"ipDeleteTimeout", 30000}};
}

std::string key_of(const std::string& ip, int port, const std::string& cluster) {
  return ip + "#" + std::to_string(port) + "#" + cluster;
}

}  // namespace

NacosFake::NacosFake(Options options) : o_(std::move(options)), server_([this](const HttpRequest& r) { return handle(r); }) {}

std::optional<NacosFake::Instance> NacosFake::get(const std::string& ns, const std::string& service, const std::string& ip,
                                                  int port) {
  std::lock_guard<std::mutex> lock(mu_);
  expire();
  for (const auto& [key, in] : data_[ns][service])
    if (in.ip == ip && in.port == port) return in;
  return std::nullopt;
}

void NacosFake::put(const std::string& ns, const std::string& service, Instance in) {
  std::lock_guard<std::mutex> lock(mu_);
  in.last_beat_ms = now_ms();
  data_[ns][service][key_of(in.ip, in.port, in.cluster)] = in;
}

void NacosFake::revoke_tokens() {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_.clear();
}

int NacosFake::denials() const {
  std::lock_guard<std::mutex> lock(mu_);
  return denials_;
}

int NacosFake::logins() const {
  std::lock_guard<std::mutex> lock(mu_);
  return logins_;
}

void NacosFake::fail_next(int status, std::string body) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_ = {status, std::move(body)};
}

void NacosFake::expire() {
  if (o_.expire_ms <= 0) return;
  const double now = now_ms();
  for (auto& [ns, services] : data_)
    for (auto& [svc, instances] : services)
      for (auto it = instances.begin(); it != instances.end();)
        it = it->second.ephemeral && now - it->second.last_beat_ms > static_cast<double>(o_.expire_ms) ? instances.erase(it)
                                                                                                       : std::next(it);
}

HttpReply NacosFake::handle(const HttpRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  expire();
  auto p = req.params();
  if (req.path == "/nacos/v1/auth/login" && req.method == "POST") {
    if (param(p, "username") != o_.username || param(p, "password") != o_.password) return text(403, "user not found!");
    ++logins_;
    std::string token = "eyJ-token-" + std::to_string(++next_token_);
    tokens_[token] = now_ms() + o_.token_ttl_s * 1000;
    HttpReply r;
    r.body = json{{"accessToken", token}, {"tokenTtl", o_.token_ttl_s}, {"globalAdmin", true}}.dump();
    return r;
  }
  if (o_.auth) {
    std::string token = param(p, "accessToken");
    if (token.empty()) token = req.header("accesstoken");
    if (std::string a = req.header("authorization"); token.empty() && a.rfind("Bearer ", 0) == 0) token = a.substr(7);
    auto known = tokens_.find(token);
    if (token.empty() || known == tokens_.end() || known->second < now_ms()) {
      ++denials_;
      return text(403, token.empty() ? "user not found!" : known == tokens_.end() ? "token invalid!" : "token expired!");
    }
  }
  if (fail_next_) {
    auto [status, body] = *fail_next_;
    fail_next_.reset();
    return text(status, body);
  }
  const bool v2 = req.path.rfind("/nacos/v2/", 0) == 0;
  if (o_.nacos3) {
    // ApiCompatibilityFilter: admin endpoints are gone unless the compatibility switch is on.
    bool admin = (req.path == "/nacos/v1/ns/instance" && (req.method == "PUT" || req.method == "GET")) ||
                 req.path.rfind("/nacos/v2/ns/instance", 0) == 0;
    if (admin)
      return envelope(410, 410, "Current API will be deprecated, please use the new API: /nacos/v3/admin/ns/instance", nullptr);
  }
  if (req.path == "/nacos/v1/ns/instance" || req.path == "/nacos/v2/ns/instance") return instance_call(req, v2);
  if (req.path == "/nacos/v1/ns/instance/list" || req.path == "/nacos/v2/ns/instance/list") return list(req, v2);
  if (req.path == "/nacos/v1/ns/instance/beat" || req.path == "/nacos/v2/ns/instance/beat") return beat(req, v2);
  return text(404, "No message available");
}

HttpReply NacosFake::instance_call(const HttpRequest& req, bool v2) {
  auto p = req.params();
  std::string ns = param(p, "namespaceId").empty() ? "public" : param(p, "namespaceId");
  std::string service = param(p, "serviceName");
  if (service.empty())
    return refuse(v2, 400, 10000, "parameter missing",
                  v2 ? "Required parameter 'serviceName' type String is not present" : "Param 'serviceName' is required.");
  // ServiceNameFilter.
  if (service.find("@@") == std::string::npos) {
    std::string group = param(p, "groupName").empty() ? "DEFAULT_GROUP" : param(p, "groupName");
    service = group + "@@" + service;
  } else if (service.rfind("@@", 0) == 0) {
    return refuse(v2, 400, 21000, "service name error", "Param 'serviceName' is illegal, group name is empty: " + service);
  }
  for (const char* required : {"ip", "port"})
    if (param(p, required).empty())
      return refuse(v2, 400, 10000, "parameter missing",
                    v2 ? std::string("Required parameter '") + required + "' type String is not present"
                       : std::string("Param '") + required + "' is required.");
  const std::string ip = param(p, "ip");
  const int port = std::atoi(param(p, "port").c_str());
  std::string cluster = param(p, v2 ? "clusterName" : (req.method == "GET" ? "cluster" : "clusterName"));
  if (cluster.empty()) cluster = "DEFAULT";
  auto& instances = data_[ns][service];
  const std::string key = key_of(ip, port, cluster);
  auto ok = [&] { return v2 ? envelope(200, 0, "success", o_.data_true ? json(true) : json("ok")) : text(200, "ok"); };

  if (req.method == "GET") {
    auto it = instances.find(key);
    if (it == instances.end()) return refuse(v2, 404, 21003, "instance not found", "no matched ip found!");
    json d = instance_json(it->second, service);
    json detail{{"service", service},
                {"ip", ip},
                {"port", port},
                {"clusterName", cluster},
                {"weight", it->second.weight},
                {"healthy", it->second.healthy},
                {"instanceId", d["instanceId"]},
                {"metadata", d["metadata"]}};
    if (v2) {
      detail.erase("service");
      detail["serviceName"] = service;
      return envelope(200, 0, "success", detail);
    }
    HttpReply r;
    r.body = detail.dump();
    return r;
  }
  if (req.method == "DELETE") {
    // The HTTP API acts for the client ip:port#ephemeral; a gRPC client's instance is not its.
    if (auto it = instances.find(key); it != instances.end() && !it->second.grpc) instances.erase(it);
    return ok();
  }
  if (req.method != "POST" && req.method != "PUT") return text(405, "Request method '" + req.method + "' not supported");
  std::map<std::string, std::string> metadata;
  if (!parse_metadata(param(p, "metadata"), metadata))
    return refuse(v2, 400, 21002, "instance metadata error", "metadata format incorrect:" + param(p, "metadata"));
  double weight = param(p, "weight").empty() ? 1.0 : std::atof(param(p, "weight").c_str());
  if (weight < 0 || weight > 10000)
    return refuse(v2, 400, 21001, "weight error", "instance format invalid: The weights range from 0.0 to 10000.0");
  if (req.method == "PUT" && !instances.count(key))
    return refuse(v2, 400, 21003, "instance not found", "instance not exist: " + key);
  // Register and update both set every field from the request, defaults where it has none.
  Instance in;
  in.ip = ip;
  in.port = port;
  in.cluster = cluster;
  in.weight = weight;
  in.enabled = param(p, "enabled") != "false";
  in.healthy = req.method == "PUT" ? instances[key].healthy : param(p, "healthy") != "false";
  in.ephemeral = param(p, "ephemeral") != "false";
  in.metadata = metadata;
  in.last_beat_ms = req.method == "PUT" ? instances[key].last_beat_ms : now_ms();
  in.grpc = req.method == "PUT" && instances[key].grpc;
  instances[key] = in;
  return ok();
}

HttpReply NacosFake::list(const HttpRequest& req, bool v2) {
  auto p = req.params();
  std::string ns = param(p, "namespaceId").empty() ? "public" : param(p, "namespaceId");
  std::string service = param(p, "serviceName");
  if (service.empty()) return refuse(v2, 400, 10000, "parameter missing", "Param 'serviceName' is required.");
  std::string group = param(p, "groupName").empty() ? "DEFAULT_GROUP" : param(p, "groupName");
  if (service.find("@@") == std::string::npos) service = group + "@@" + service;
  std::string clusters = param(p, v2 ? "clusterName" : "clusters");
  const bool healthy_only = param(p, "healthyOnly") == "true";
  json hosts = json::array();
  for (const auto& [key, in] : data_[ns][service]) {
    if (!in.enabled) continue;  // enableOnly: disabled instances are left out
    if (healthy_only && !in.healthy) continue;
    if (!clusters.empty() && ("," + clusters + ",").find("," + in.cluster + ",") == std::string::npos) continue;
    hosts.push_back(instance_json(in, service));
  }
  json body{{"name", service},
            {"groupName", service.substr(0, service.find("@@"))},
            {"clusters", clusters},
            {"cacheMillis", 10000},
            {"hosts", hosts},
            {"lastRefTime", 1528787794594LL},
            {"checksum", ""},
            {"allIPs", false},
            {"reachProtectionThreshold", false},
            {"valid", true}};
  if (v2) return envelope(200, 0, "success", body);
  HttpReply r;
  r.body = body.dump();
  return r;
}

HttpReply NacosFake::beat(const HttpRequest& req, bool) {
  auto p = req.params();
  std::string ns = param(p, "namespaceId").empty() ? "public" : param(p, "namespaceId");
  std::string service = param(p, "serviceName");
  std::string group = param(p, "groupName").empty() ? "DEFAULT_GROUP" : param(p, "groupName");
  if (service.find("@@") == std::string::npos) service = group + "@@" + service;
  std::string ip = param(p, "ip");
  int port = std::atoi(param(p, "port").c_str());
  std::string cluster = param(p, "clusterName").empty() ? "DEFAULT" : param(p, "clusterName");
  if (!param(p, "beat").empty()) {
    json b = json::parse(param(p, "beat"), nullptr, false);
    if (b.is_object()) {
      ip = b.value("ip", ip);
      port = b.value("port", port);
      cluster = b.value("cluster", cluster);
    }
  }
  json answer{{"clientBeatInterval", o_.beat_interval_ms}, {"lightBeatEnabled", true}};
  auto& instances = data_[ns][service];
  auto it = instances.find(key_of(ip, port, cluster));
  if (it == instances.end()) {
    answer["code"] = 20404;
  } else {
    it->second.last_beat_ms = now_ms();
    answer["code"] = 10200;
  }
  HttpReply r;
  r.body = answer.dump();
  return r;
}

}  // namespace gray::regtest
