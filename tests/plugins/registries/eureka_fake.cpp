#include "tests/plugins/registries/eureka_fake.h"

#include <cctype>

namespace gray::regtest {

using nlohmann::json;
using testing::HttpReply;
using testing::HttpRequest;

namespace {

HttpReply text(int status, std::string body = "") {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "text/plain";
  return r;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string str_field(const json& j, const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; }

}  // namespace

EurekaFake::EurekaFake(Options options) : o_(std::move(options)), server_([this](const HttpRequest& r) { return handle(r); }) {}

void EurekaFake::store(const std::string& app, json doc) {
  const std::string id = doc["instanceId"].get<std::string>();
  // The server keeps an override across registrations until the instance is cancelled.
  if (auto o = overrides_.find(id); o != overrides_.end()) {
    doc["overriddenStatus"] = o->second;
    doc["status"] = o->second;
  } else {
    doc["overriddenStatus"] = "UNKNOWN";
  }
  if (!doc.contains("metadata") || !doc["metadata"].is_object() || doc["metadata"].empty())
    doc["metadata"] = {{"@class", "java.util.Collections$EmptyMap"}};
  apps_[app][id].doc = std::move(doc);
}

void EurekaFake::put(const std::string& app, json instance) {
  std::lock_guard<std::mutex> lock(mu_);
  store(upper(app), std::move(instance));
}

void EurekaFake::drop(const std::string& app, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  apps_[upper(app)].erase(id);
}

std::optional<json> EurekaFake::instance(const std::string& app, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& instances = apps_[upper(app)];
  auto it = instances.find(id);
  if (it == instances.end()) return std::nullopt;
  return it->second.doc;
}

int EurekaFake::renewals(const std::string& app, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& instances = apps_[upper(app)];
  auto it = instances.find(id);
  return it == instances.end() ? -1 : it->second.renewals;
}

HttpReply EurekaFake::handle(const HttpRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string prefix = o_.base + "/apps/";
  if (req.path.rfind(prefix, 0) != 0) return text(404);
  std::string rest = req.path.substr(prefix.size());
  std::vector<std::string> parts;
  for (size_t start = 0; start <= rest.size();) {
    size_t slash = rest.find('/', start);
    parts.push_back(rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  const std::string app = upper(parts[0]);  // ApplicationResource upper-cases the name
  if (parts.size() == 1) {
    if (req.method == "POST") return register_instance(app, req);
    if (req.method == "GET") return get_app(app, req);
    return text(405);
  }
  auto& instances = apps_[app];
  auto it = instances.find(parts[1]);
  if (parts.size() == 2) {
    if (it == instances.end()) return text(404);
    if (req.method == "PUT") {
      ++it->second.renewals;
      return text(200);
    }
    if (req.method == "DELETE") {
      overrides_.erase(parts[1]);
      instances.erase(it);
      return text(200);
    }
    return text(405);
  }
  if (it == instances.end()) return text(404);
  json& doc = it->second.doc;
  if (parts[2] == "status") {
    auto value = req.query.find("value");
    if (req.method == "PUT") {
      if (value == req.query.end()) return text(500);
      overrides_[parts[1]] = value->second;
      doc["overriddenStatus"] = value->second;
      doc["status"] = value->second;
      return text(200);
    }
    if (req.method == "DELETE") {
      overrides_.erase(parts[1]);
      doc["overriddenStatus"] = "UNKNOWN";
      doc["status"] = value == req.query.end() ? "UNKNOWN" : value->second;
      return text(200);
    }
  }
  if (parts[2] == "metadata" && req.method == "PUT") {
    if (doc["metadata"].contains("@class")) doc["metadata"] = json::object();
    for (const auto& [k, v] : req.query) doc["metadata"][k] = v;  // merged; keys are never removed
    return text(200);
  }
  return text(404);
}

HttpReply EurekaFake::register_instance(const std::string& app, const HttpRequest& req) {
  if (req.header("content-type").find("json") == std::string::npos) return text(415, "Unsupported Media Type");
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("instance") || !body["instance"].is_object())
    return text(400, "Unrecognized request body");
  json in = body["instance"];
  if (str_field(in, "instanceId").empty()) return text(400, "Missing instanceId");
  if (str_field(in, "hostName").empty()) return text(400, "Missing hostname");
  if (str_field(in, "ipAddr").empty()) return text(400, "Missing ip address");
  if (str_field(in, "app").empty()) return text(400, "Missing appName");
  if (upper(str_field(in, "app")) != app)
    return text(400, "Mismatched appName, expecting " + app + " but was " + str_field(in, "app"));
  if (!in.contains("dataCenterInfo") || !in["dataCenterInfo"].is_object()) return text(400, "Missing dataCenterInfo");
  // Jackson needs the type id to build the DataCenterInfo.
  if (!in["dataCenterInfo"].contains("@class")) return text(400, "Could not resolve subtype: missing type id property '@class'");
  if (str_field(in["dataCenterInfo"], "name").empty()) return text(400, "Missing dataCenterInfo Name");
  store(app, in);
  return text(204);
}

HttpReply EurekaFake::get_app(const std::string& app, const HttpRequest& req) {
  auto found = apps_.find(app);
  if (found == apps_.end() || found->second.empty()) return text(404);
  json list = json::array();
  for (const auto& [id, e] : found->second) list.push_back(e.doc);
  if (req.header("accept").find("application/json") == std::string::npos) {
    HttpReply r;
    r.content_type = "application/xml";
    r.body = "<application><name>" + app + "</name></application>";
    return r;
  }
  HttpReply r;
  json application{{"name", app}, {"instance", o_.single_as_object && list.size() == 1 ? list[0] : list}};
  r.body = json{{"application", application}}.dump();
  return r;
}

}  // namespace gray::regtest
