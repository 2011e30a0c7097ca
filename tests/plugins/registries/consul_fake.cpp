#include "tests/plugins/registries/consul_fake.h"

namespace gray::regtest {

using nlohmann::json;
using testing::HttpReply;
using testing::HttpRequest;

namespace {

HttpReply text(int status, std::string body) {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

// Both CamelCase and snake_case keys are accepted.
const json* field(const json& j, const char* camel, const char* snake) {
  if (j.contains(camel)) return &j[camel];
  if (j.contains(snake)) return &j[snake];
  return nullptr;
}

std::string unknown_id(const std::string& id) {
  return "Unknown service ID \"" + id + "\". Ensure that the service ID is passed, not the service name.";
}

}  // namespace

ConsulFake::ConsulFake(Options options) : o_(std::move(options)), server_([this](const HttpRequest& r) { return handle(r); }) {}

std::optional<json> ConsulFake::normalize(const json& body, std::string& error) {
  if (!body.is_object()) {
    error = "Request decode failed: json: cannot unmarshal into Go value of type structs.ServiceDefinition";
    return std::nullopt;
  }
  const json* name = field(body, "Name", "name");
  if (!name || !name->is_string() || name->get<std::string>().empty()) {
    error = "Missing service name";
    return std::nullopt;
  }
  json out{{"Service", *name},
           {"Tags", json::array()},
           {"Address", ""},
           {"Port", 0},
           {"Meta", json::object()},
           {"Weights", {{"Passing", 1}, {"Warning", 1}}},
           {"EnableTagOverride", false}};
  const json* id = field(body, "ID", "id");
  out["ID"] = id && id->is_string() && !id->get<std::string>().empty() ? *id : *name;
  if (const json* t = field(body, "Tags", "tags"); t && t->is_array()) out["Tags"] = *t;
  if (const json* a = field(body, "Address", "address"); a && a->is_string()) out["Address"] = *a;
  if (const json* p = field(body, "Port", "port"); p && p->is_number_integer()) out["Port"] = *p;
  if (const json* m = field(body, "Meta", "meta"); m && m->is_object()) {
    for (const auto& [k, v] : m->items()) {
      if (!v.is_string()) {
        error = "Request decode failed: json: cannot unmarshal number into Go struct field of type string";
        return std::nullopt;
      }
      if (k.rfind("consul-", 0) == 0) {
        error = "Invalid Service Meta: Key prefix 'consul-' is reserved for internal use";
        return std::nullopt;
      }
    }
    out["Meta"] = *m;
  }
  if (const json* w = field(body, "Weights", "weights"); w && w->is_object()) {
    long passing = w->value("Passing", w->value("passing", 0L));
    if (passing < 1) {
      error = "Invalid Weights: Passing must be greater than 0";
      return std::nullopt;
    }
    out["Weights"] = {{"Passing", passing}, {"Warning", w->value("Warning", w->value("warning", 1L))}};
  }
  if (const json* e = field(body, "EnableTagOverride", "enable_tag_override"); e && e->is_boolean())
    out["EnableTagOverride"] = *e;
  return out;
}

void ConsulFake::put(const json& definition) {
  std::string error;
  auto def = normalize(definition, error);
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = services_[(*def)["ID"].get<std::string>()];
  e.def = *def;
}

void ConsulFake::put_remote(const json& definition) {
  put(definition);
  std::lock_guard<std::mutex> lock(mu_);
  services_[definition["ID"].get<std::string>()].remote = true;
}

std::optional<json> ConsulFake::service(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = services_.find(id);
  if (it == services_.end()) return std::nullopt;
  return it->second.def;
}

std::optional<std::string> ConsulFake::maintenance(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = services_.find(id);
  if (it == services_.end()) return std::nullopt;
  return it->second.maintenance;
}

HttpReply ConsulFake::handle(const HttpRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!o_.token.empty()) {
    std::string token = req.header("x-consul-token");
    if (std::string a = req.header("authorization"); token.empty() && a.rfind("Bearer ", 0) == 0) token = a.substr(7);
    if (token != o_.token)
      return text(403, token.empty() ? "Permission denied: anonymous token lacks permission 'service:write'" : "ACL not found");
  }
  const std::string agent = "/v1/agent/service/";
  if (req.method == "PUT" && req.path == agent + "register") return register_service(req);
  if (req.method == "PUT" && req.path.rfind(agent + "deregister/", 0) == 0) {
    std::string id = req.path.substr((agent + "deregister/").size());
    auto it = services_.find(id);
    if (it == services_.end() || it->second.remote) return text(404, unknown_id(id));
    services_.erase(it);
    return text(200, "");
  }
  if (req.method == "PUT" && req.path.rfind(agent + "maintenance/", 0) == 0) {
    std::string id = req.path.substr((agent + "maintenance/").size());
    auto enable = req.query.find("enable");
    if (enable == req.query.end() || enable->second.empty()) return text(400, "Missing value for enable");
    if (enable->second != "true" && enable->second != "false")
      return text(400, "Invalid value for enable: \"" + enable->second + "\"");
    auto it = services_.find(id);
    if (it == services_.end() || it->second.remote) return text(404, unknown_id(id));
    if (enable->second == "true") {
      // Consul keeps the first reason while maintenance stays on.
      if (!it->second.maintenance) {
        auto reason = req.query.find("reason");
        it->second.maintenance =
            reason == req.query.end() || reason->second.empty()
                ? "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
                : reason->second;
      }
    } else {
      it->second.maintenance.reset();
    }
    return text(200, "");
  }
  if (req.method == "GET" && req.path.rfind("/v1/health/service/", 0) == 0)
    return health(req.path.substr(std::string("/v1/health/service/").size()), req.target.find("passing") != std::string::npos);
  return text(404, "404 page not found");
}

HttpReply ConsulFake::register_service(const HttpRequest& req) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) return text(400, "Request decode failed: invalid character looking for beginning of value");
  std::string error;
  auto def = normalize(body, error);
  if (!def) return text(400, error);
  Entry& e = services_[(*def)["ID"].get<std::string>()];
  e.def = *def;  // checks, maintenance included, are kept
  return text(200, "");
}

HttpReply ConsulFake::health(const std::string& service, bool passing_only) {
  json out = json::array();
  for (const auto& [id, e] : services_) {
    if (e.def["Service"] != service) continue;
    json checks = json::array({{{"Node", o_.node},
                                {"CheckID", "serfHealth"},
                                {"Name", "Serf Health Status"},
                                {"Status", "passing"},
                                {"ServiceID", ""}}});
    if (e.maintenance)
      checks.push_back({{"Node", o_.node},
                        {"CheckID", "_service_maintenance:" + id},
                        {"Name", "Service Maintenance Mode"},
                        {"Status", "critical"},
                        {"Notes", *e.maintenance},
                        {"ServiceID", id}});
    if (passing_only && e.maintenance) continue;
    out.push_back({{"Node",
                    {{"ID", "40e4a748-2192-161a-0510-9bf59fe950b5"},
                     {"Node", o_.node},
                     {"Address", o_.node_address},
                     {"Datacenter", "dc1"}}},
                   {"Service", e.def},
                   {"Checks", checks}});
  }
  HttpReply r;
  r.body = out.dump();
  return r;
}

}  // namespace gray::regtest
