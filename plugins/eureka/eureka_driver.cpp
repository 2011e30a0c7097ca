#include <algorithm>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "plugins/eureka/eureka.h"
#include "plugins/http/http.h"
#include "plugins/registry/holds.h"
#include "plugins/registry/keeper.h"
#include "plugins/registry/registry.h"

namespace gray::plugins {
namespace eureka {
namespace {

using nlohmann::json;
using registry::Budget;
using registry::InstanceRef;
using registry::make_call;
using registry::Metadata;
using registry::Patch;

constexpr double kKeeperRoundMs = 500;
constexpr double kKeeperRequestMs = 3000;
constexpr long kMaxWeight = 10000;
const char* const kOutOfService = "OUT_OF_SERVICE";

struct Settings {
  std::string instance;
  std::string url;  // base including /eureka or /eureka/v2, no trailing slash
  std::string app;  // upper-cased, as the server keeps it
  double heartbeat_ms = 30000;
  registry::CanarySelection canary;
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Settings read_settings(const std::string& instance, const Value& config) {
  Settings s;
  s.instance = instance;
  s.url = config_string(instance, config, "url");
  while (!s.url.empty() && s.url.back() == '/') s.url.pop_back();
  if (s.url.rfind("http://", 0) != 0 && s.url.rfind("https://", 0) != 0)
    throw DriverError(instance + ": field 'url' must be an http:// or https:// URL including /eureka (or /eureka/v2)");
  s.app = upper(config_string(instance, config, "app"));
  if (s.app.empty() || s.app.find('/') != std::string::npos)
    throw DriverError(instance + ": field 'app' must be an application name without '/'");
  s.heartbeat_ms = config_ms(instance, config, "heartbeat", 30000);
  if (s.heartbeat_ms < 1000)
    throw DriverError(instance + ": field 'heartbeat' must be at least 1s (Eureka leases count whole seconds)");
  s.canary = registry::canary_selection(instance, config);
  return s;
}

// One instance as the server reports it, with its whole document for registering it again.
struct Instance {
  json doc;
  std::string id;
  std::string host_name;
  std::string ip;
  int port = 0;
  std::string status;      // the effective status: UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN
  std::string overridden;  // the override, UNKNOWN when none
  Metadata metadata;

  std::string endpoint() const { return ip + ":" + std::to_string(port); }
  bool up() const { return status == "UP"; }
  bool out_of_service() const { return status == kOutOfService || overridden == kOutOfService; }
  std::string version() const {
    auto it = metadata.find("version");
    return it == metadata.end() ? "" : it->second;
  }
  bool matches(const InstanceRef& ref) const {
    if (id == ref.name || host_name == ref.name) return true;
    if (ref.has_address()) return ip == ref.addr && port == ref.port;
    return endpoint() == ref.name;
  }
};

int port_of(const json& j) {
  if (j.is_number()) return j.get<int>();
  if (j.is_object() && j.contains("$")) return port_of(j["$"]);
  if (j.is_string()) return std::atoi(j.get<std::string>().c_str());
  return 0;
}

bool parse_instance(const json& j, Instance& out) {
  if (!j.is_object() || !j.contains("instanceId") || !j["instanceId"].is_string()) return false;
  out.doc = j;
  out.id = j["instanceId"].get<std::string>();
  out.host_name = j.value("hostName", std::string());
  out.ip = j.value("ipAddr", std::string());
  out.port = j.contains("port") ? port_of(j["port"]) : 0;
  out.status = j.value("status", std::string("UNKNOWN"));
  // Servers spell the override overriddenStatus (current) or overriddenstatus (older codecs).
  out.overridden = j.value("overriddenStatus", j.value("overriddenstatus", std::string("UNKNOWN")));
  if (j.contains("metadata") && j["metadata"].is_object())
    for (const auto& [k, v] : j["metadata"].items())
      if (!k.empty() && k[0] != '@') out.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return true;
}

struct Reply {
  enum class Kind { Ok, Refused, Unreachable, Garbage } kind = Kind::Ok;
  long status = 0;
  json body;
  std::string message;
  bool ok() const { return kind == Kind::Ok; }
};

class Session {
 public:
  explicit Session(std::function<void(double)> sleep) : http_(std::move(sleep)) {}

  Reply send(const std::string& method, const std::string& url, const std::string& body, bool want_json, double timeout_ms) {
    http::Request req;
    req.method = method;
    req.url = url;
    req.body = body;
    req.timeout_ms = timeout_ms;
    req.connect_timeout_ms = std::min(3000.0, timeout_ms);
    // Registration, status and metadata calls set a state; a repeat is harmless.
    req.idempotent = true;
    req.headers.push_back({"Accept", "application/json"});
    if (!body.empty()) req.headers.push_back({"Content-Type", "application/json"});
    http::Response resp = http_.send(req);
    Reply r;
    if (!resp.transport_ok()) {
      r.kind = Reply::Kind::Unreachable;
      r.message = "cannot reach it (" + resp.error + ")";
      return r;
    }
    r.status = resp.status;
    if (resp.status == 400 || resp.status == 401 || resp.status == 403 || resp.status == 404) {
      std::string text = resp.body.substr(0, 300);
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      r.kind = Reply::Kind::Refused;
      r.message = "HTTP " + std::to_string(resp.status) + " from " + method + " " + http::display_url(url) +
                  (text.empty() ? "" : ": " + text);
      return r;
    }
    if (resp.status != 200 && resp.status != 204) {
      r.kind = Reply::Kind::Garbage;
      r.message = "unexpected answer: " + resp.describe(req);
      return r;
    }
    if (want_json) {
      r.body = json::parse(resp.body, nullptr, false);
      if (r.body.is_discarded() || !r.body.is_object()) {
        r.kind = Reply::Kind::Garbage;
        r.message = "the answer is not Eureka JSON (" + resp.describe(req) + ")";
      }
    }
    return r;
  }

 private:
  http::Client http_;
};

class EurekaRegistry final : public Driver {
 public:
  EurekaRegistry(Settings s, const DriverEnv& env)
      : s_(std::move(s)), env_(env), session_(env.sleep), keeper_session_(env.sleep), keeper_(kKeeperRoundMs, [this] {
          keeper_round();
        }) {}
  ~EurekaRegistry() override { keeper_.stop(); }

  Kind kind() const override { return Kind::Registry; }

  Result call(const Call& c) override {
    Budget budget(c.timeout_ms);
    Result r;
    try {
      r = dispatch(c, budget);
    } catch (const std::exception& e) {
      r = error_result(where() + ": " + c.op + ": " + e.what());
    }
    if (r.undo) complete(*r.undo, c);
    r.elapsed_ms = budget.elapsed();
    return r;
  }

  std::optional<Call> undo_for(const Call& c) override {
    Budget budget(c.timeout_ms);
    try {
      auto undo = plan_undo(c, budget);
      if (undo) complete(*undo, c);
      return undo;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  void complete(Call& undo, const Call& original) const {
    auto name = undo.args.find("instance");
    std::string addr;
    int port = 0;
    if (name != undo.args.end())
      if (auto it = known_.find(name->second.text()); it != known_.end()) {
        addr = it->second.ip;
        port = it->second.port;
      }
    registry::complete_undo(undo, original, addr, port);
  }

 private:
  std::string where() const { return "eureka at " + http::display_url(s_.url) + " (app " + s_.app + ")"; }
  Result from_reply(const Reply& r, const std::string& what) const {
    std::string text = where() + ": " + what + ": " + r.message;
    return r.kind == Reply::Kind::Refused ? failed_result(text) : error_result(text);
  }
  Result refuse(const std::string& what, const std::string& why) const {
    return failed_result(where() + ": " + what + ": " + why);
  }
  static Result done() {
    Result r = ok_result();
    r.replayed = true;
    return r;
  }

  std::string app_url() const { return s_.url + "/apps/" + http::url_encode(s_.app); }
  std::string instance_url(const std::string& id) const { return app_url() + "/" + http::url_encode(id); }

  Reply list(Session& session, double timeout_ms, std::vector<Instance>& out) {
    out.clear();
    Reply r = session.send("GET", app_url(), "", true, timeout_ms);
    if (r.kind == Reply::Kind::Refused && r.status == 404) return Reply{};  // no instance of the app
    if (!r.ok()) return r;
    if (!r.body.contains("application") || !r.body["application"].is_object()) {
      r.kind = Reply::Kind::Garbage;
      r.message = "the answer to GET /apps/" + s_.app + " has no application";
      return r;
    }
    const json& app = r.body["application"];
    if (!app.contains("instance")) return r;
    // A codec may write a single instance as an object rather than a list of one.
    json items = app["instance"].is_array() ? app["instance"] : json::array({app["instance"]});
    for (const json& item : items) {
      Instance in;
      if (!parse_instance(item, in)) {
        r.kind = Reply::Kind::Garbage;
        r.message = "the application lists an instance without instanceId: " + item.dump().substr(0, 200);
        return r;
      }
      out.push_back(std::move(in));
    }
    return r;
  }

  // A name the driver has seen before is also matched by the address it had.
  InstanceRef with_known_address(InstanceRef ref) const {
    if (!ref.has_address())
      if (auto it = known_.find(ref.name); it != known_.end()) {
        ref.addr = it->second.ip;
        ref.port = it->second.port;
      }
    return ref;
  }

  Reply find(const InstanceRef& ref, Budget& budget, std::optional<Instance>& out) {
    out.reset();
    const InstanceRef addressed = with_known_address(ref);
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return r;
    for (Instance& in : all)
      if (in.matches(addressed)) {
        known_[ref.name] = in;
        out = std::move(in);
        break;
      }
    return r;
  }

  Reply set_status(Session& session, const Instance& in, bool out_of_service, double timeout_ms) {
    if (out_of_service) return session.send("PUT", instance_url(in.id) + "/status?value=OUT_OF_SERVICE", "", false, timeout_ms);
    return session.send("DELETE", instance_url(in.id) + "/status?value=UP", "", false, timeout_ms);
  }

  // Eureka merges metadata and never removes a key: a removal writes an empty value.
  Reply put_metadata(const Instance& in, const Patch& patch, double timeout_ms) {
    std::vector<std::pair<std::string, std::string>> q;
    for (const auto& [k, v] : patch) q.push_back({k, v.value_or("")});
    return session_.send("PUT", instance_url(in.id) + "/metadata?" + http::form(q), "", false, timeout_ms);
  }

  static Patch eureka_patch(const Patch& patch) {
    Patch p;
    for (const auto& [k, v] : patch) p[k] = v.value_or("");
    return p;
  }

  Result dispatch(const Call& c, Budget& budget) {
    if (c.op == "count") return count(c, budget);
    if (c.op == "weight") return weight(c, budget);
    static const std::set<std::string> instance_ops = {
        "register",           "deregister",          "enable",    "disable", "set_weight", "tag",
        "pause_registration", "resume_registration", "registered"};
    if (!instance_ops.count(c.op)) return refuse(c.op, "the Eureka registry has no operation '" + c.op + "'");
    std::string error;
    auto ref = registry::instance_ref(c, error);
    if (!ref) return refuse(c.op, error);
    const std::string what = c.op + " " + ref->name;
    if (c.op == "pause_registration" || c.op == "resume_registration") return pause(c, *ref, what, budget);
    std::optional<Instance> current;
    Reply r = find(*ref, budget, current);
    if (!r.ok()) return from_reply(r, what);
    if (c.op == "registered") return ok_result(Value::boolean(current && current->up()));
    if (c.op == "register") return do_register(c, *ref, current, what, budget);
    if (!current) {
      if (c.op == "deregister") return done();
      return refuse(what, ref->name + " is not registered");
    }
    if (c.op == "deregister") return do_deregister(*ref, *current, what, budget);
    if (c.op == "enable" || c.op == "disable") return do_enable(c.op == "enable", *ref, *current, what, budget);
    if (c.op == "set_weight") {
      const Value* w = registry::arg(c, "weight");
      if (!w || !w->is_numeric() || w->num < 1 || w->num > kMaxWeight || w->num != static_cast<double>(static_cast<long>(w->num)))
        return refuse(what,
                      "weight must be a whole number from 1 to 10000 (clients read 0 as the default weight; disable the instance "
                      "to stop its traffic)");
      return do_tag(*ref, *current, Patch{{"weight", registry::number_text(w->num)}}, what, budget, "set_weight");
    }
    auto patch = registry::patch_arg(c, "metadata", error);
    if (!error.empty()) return refuse(what, error);
    if (!patch) return refuse(what, "the metadata argument is required");
    return do_tag(*ref, *current, *patch, what, budget, "tag");
  }

  // The minimal registration document (field names from Eureka's JSON codec).
  json new_document(const InstanceRef& ref) const {
    std::string host = ref.var("hostname").empty() ? ref.addr : ref.var("hostname");
    long renew_s = std::max(1L, static_cast<long>(s_.heartbeat_ms / 1000));
    return json{{"instanceId", ref.name},
                {"hostName", host},
                {"app", s_.app},
                {"ipAddr", ref.addr},
                {"status", "UP"},
                {"port", {{"$", ref.port}, {"@enabled", "true"}}},
                {"securePort", {{"$", 443}, {"@enabled", "false"}}},
                {"vipAddress", lower(s_.app)},
                {"secureVipAddress", lower(s_.app)},
                {"dataCenterInfo", {{"@class", "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"}, {"name", "MyOwn"}}},
                {"leaseInfo", {{"renewalIntervalInSecs", renew_s}, {"durationInSecs", renew_s * 3}}},
                {"metadata", json::object()}};
  }

  Reply post_registration(Session& session, const json& doc, double timeout_ms) {
    return session.send("POST", app_url(), json{{"instance", doc}}.dump(), false, timeout_ms);
  }

  Result do_register(const Call& c, const InstanceRef& ref, const std::optional<Instance>& current, const std::string& what,
                     Budget& budget) {
    std::string error;
    auto patch = registry::patch_arg(c, "metadata", error);
    if (!error.empty()) return refuse(what, error);
    if (current) {
      if (!patch) return done();
      Metadata md = current->metadata;
      if (!registry::apply_patch(md, eureka_patch(*patch))) return done();
      Reply r = put_metadata(*current, *patch, budget.left());
      if (!r.ok()) return from_reply(r, what);
      Result ok = ok_result();
      ok.undo = make_call("tag",
                          {{"instance", Value::string(ref.name)}, {"metadata", registry::undo_patch(current->metadata, *patch)}});
      return ok;
    }
    json doc;
    if (auto it = known_.find(ref.name); it != known_.end()) {
      doc = it->second.doc;
    } else if (ref.has_address()) {
      doc = new_document(ref);
      if (std::string v = ref.var("version"); !v.empty()) doc["metadata"]["version"] = v;
    } else {
      return refuse(what,
                    "Eureka does not know " + ref.name +
                        " and its address is unknown; register it with the host's inventory record (addr, port) or as ip:port");
    }
    if (!doc.contains("metadata") || !doc["metadata"].is_object()) doc["metadata"] = json::object();
    doc["metadata"].erase("@class");
    if (patch)
      for (const auto& [k, v] : eureka_patch(*patch)) doc["metadata"][k] = *v;
    Reply r = post_registration(session_, doc, budget.left());
    if (!r.ok()) return from_reply(r, what);
    Instance in;
    parse_instance(doc, in);
    known_[ref.name] = in;
    deregistered_.erase(ref.name);
    start_heartbeats(in);
    Result ok = ok_result();
    ok.undo = make_call("deregister", {{"instance", Value::string(ref.name)}});
    return ok;
  }

  Call register_back(const InstanceRef& ref, const Instance& in) const {
    return make_call("register", {{"instance", Value::string(ref.name)},
                                  {"addr", Value::string(in.ip)},
                                  {"port", Value::number(in.port)},
                                  {"metadata", registry::metadata_value(in.metadata)}});
  }

  Result do_deregister(const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    Reply r = session_.send("DELETE", instance_url(current.id), "", false, budget.left());
    if (r.kind == Reply::Kind::Refused && r.status == 404) return done();  // it went meanwhile
    if (!r.ok()) return from_reply(r, what);
    stop_heartbeats(current.id);
    deregistered_.insert(ref.name);
    Result ok = ok_result();
    ok.undo = register_back(ref, current);
    return ok;
  }

  Result do_enable(bool enable, const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    if (current.out_of_service() != enable) return done();
    Reply r = set_status(session_, current, !enable, budget.left());
    if (!r.ok()) return from_reply(r, what);
    Result ok = ok_result();
    ok.undo = make_call(enable ? "disable" : "enable", {{"instance", Value::string(ref.name)}});
    return ok;
  }

  Result do_tag(const InstanceRef& ref, const Instance& current, const Patch& patch, const std::string& what, Budget& budget,
                const std::string& op) {
    Metadata md = current.metadata;
    if (!registry::apply_patch(md, eureka_patch(patch))) return done();
    Reply r = put_metadata(current, patch, budget.left());
    if (!r.ok()) return from_reply(r, what);
    Result ok = ok_result();
    auto old = current.metadata.find("weight");
    if (op == "set_weight" && old != current.metadata.end() && registry::parse_number(old->second))
      ok.undo = make_call(
          "set_weight", {{"instance", Value::string(ref.name)}, {"weight", Value::number(*registry::parse_number(old->second))}});
    else
      ok.undo =
          make_call("tag", {{"instance", Value::string(ref.name)}, {"metadata", registry::undo_patch(current.metadata, patch)}});
    return ok;
  }

  // A node's Eureka client registers again on its next heartbeat after a deregistration, and the
  // server forgets a status override when the instance is cancelled: gray holds a paused instance
  // OUT_OF_SERVICE whenever it comes back, for as long as this driver lives.
  Result pause(const Call& c, const InstanceRef& ref, const std::string& what, Budget& budget) {
    auto io = holds_.lock_io();
    const bool pausing = c.op == "pause_registration";
    if (pausing == holds_.paused(ref.name)) return done();
    std::optional<Instance> current;
    Reply r = find(ref, budget, current);
    if (!r.ok()) return from_reply(r, what);
    Result ok = ok_result();
    ok.undo = make_call(pausing ? "resume_registration" : "pause_registration", {{"instance", Value::string(ref.name)}});
    if (pausing) {
      const bool visible = current && !current->out_of_service();
      const bool came_back = visible && deregistered_.count(ref.name);
      if (came_back) {
        Reply s = set_status(session_, *current, true, budget.left());
        if (!s.ok()) return from_reply(s, what + " (holding it out: it re-registered)");
      }
      holds_.pause(ref, !visible, came_back);
      return ok;
    }
    deregistered_.erase(ref.name);  // the drain this pause belonged to is over
    auto item = holds_.resume(ref.name);
    if (item && item->held && current && current->out_of_service()) {
      Reply s = set_status(session_, *current, false, budget.left());
      if (!s.ok()) return from_reply(s, what + " (letting it back in)");
    }
    return ok;
  }

  Result count(const Call& c, Budget& budget) {
    const Value* v = registry::arg(c, "version");
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return from_reply(r, "count instances");
    double n = 0;
    for (const Instance& in : all)
      if (in.up() && (!v || in.version() == v->text())) ++n;
    return ok_result(Value::number(n));
  }

  // --- weights: metadata "weight"; a group that gets no traffic is held OUT_OF_SERVICE ----------

  bool is_canary(const Instance& in) const { return s_.canary.matches(in.id, {in.endpoint()}, in.version()); }
  static bool weight_zero(const Instance& in) {
    auto it = in.metadata.find("weight");
    return in.out_of_service() && it != in.metadata.end() && it->second == "0";
  }
  static std::vector<Instance> weighable(const std::vector<Instance>& all) {
    std::vector<Instance> out;
    for (const Instance& in : all)
      if (in.up() || weight_zero(in)) out.push_back(in);
    return out;
  }
  static std::optional<double> weight_of(const Instance& in) {
    if (weight_zero(in)) return 0.0;
    auto it = in.metadata.find("weight");
    return it == in.metadata.end() ? std::nullopt : registry::parse_number(it->second);
  }

  Call weight_undo(const std::vector<Instance>& all) const {
    Map before;
    std::vector<std::pair<bool, double>> shares;
    bool any = false;
    for (const Instance& in : weighable(all)) {
      auto w = weight_of(in);
      any = any || w.has_value();
      before[in.id] = w ? Value::number(*w) : Value::null();
      shares.push_back({is_canary(in), w.value_or(1)});
    }
    auto share = any && s_.canary.configured() ? registry::canary_share(shares) : std::nullopt;
    return make_call("weight", {{"canary", share ? Value::percent(*share) : Value::null()}, {"weights", Value::of_map(before)}});
  }

  Result weight(const Call& c, Budget& budget) {
    const std::string what = "weight canary " + (c.args.count("canary") ? c.args.at("canary").text() : std::string("(exact)"));
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return from_reply(r, what);
    std::vector<Instance> group = weighable(all);
    std::map<std::string, std::optional<long>> target;  // nullopt: back to no weight; 0: OUT_OF_SERVICE
    if (const Value* w = registry::arg(c, "weights"); w && w->kind == Value::Kind::Map) {
      for (const auto& [id, v] : w->fields())
        target[id] = v.is_numeric() ? std::optional<long>(static_cast<long>(v.num)) : std::nullopt;
    } else {
      std::string why;
      bool clear = false;
      auto percent = registry::percent_arg(c, why, clear);
      if (!why.empty()) return refuse(what, why);
      if (clear) {
        for (const Instance& in : group) target[in.id] = std::nullopt;
      } else {
        if (!s_.canary.configured())
          return refuse(what,
                        "set canary (instance ids or ip:port) or canary_version in the registry's configuration so gray knows "
                        "which instances are the canary");
        size_t n_canary = std::count_if(group.begin(), group.end(), [&](const Instance& in) { return is_canary(in); });
        size_t n_stable = group.size() - n_canary;
        if (*percent > 0 && n_canary == 0)
          return refuse(what, "no instance of " + s_.app + " that is UP matches " + s_.canary.describe());
        if (*percent < 100 && n_stable == 0)
          return refuse(what, "every instance of " + s_.app + " that is UP matches " + s_.canary.describe() +
                                  ": there is no stable instance");
        registry::Split split = registry::split_weights(*percent, n_canary, n_stable, kMaxWeight);
        for (const Instance& in : group) target[in.id] = is_canary(in) ? split.canary : split.stable;
      }
    }
    Call undo = weight_undo(all);
    size_t changed = 0;
    for (const Instance& in : group) {
      auto t = target.find(in.id);
      if (t == target.end()) continue;
      const bool zero = t->second && *t->second == 0;
      auto old = in.metadata.find("weight");
      std::optional<std::string> want = t->second ? std::optional<std::string>(std::to_string(*t->second)) : std::nullopt;
      const bool same_weight =
          want ? (old != in.metadata.end() && old->second == *want) : old == in.metadata.end() || old->second.empty();
      if (!same_weight) {
        Reply m = put_metadata(in, Patch{{"weight", want}}, budget.left());
        if (!m.ok()) return partial(m, what + " (" + in.id + ")", changed, undo);
      }
      if (zero != weight_zero(in)) {
        Reply s = set_status(session_, in, zero, budget.left());
        if (!s.ok()) return partial(s, what + " (" + in.id + ")", changed, undo);
      }
      if (!same_weight || zero != weight_zero(in)) ++changed;
    }
    if (changed == 0) return done();
    Result ok = ok_result();
    ok.undo = undo;
    return ok;
  }

  Result partial(const Reply& r, const std::string& what, size_t changed, const Call& undo) const {
    Result out = from_reply(r, what);
    if (changed > 0) out.message += "; " + std::to_string(changed) + " other instance(s) were already changed";
    out.undo = undo;
    return out;
  }

  std::optional<Call> plan_undo(const Call& c, Budget& budget) {
    if (c.op == "weight") {
      std::vector<Instance> all;
      if (!list(session_, budget.left(), all).ok()) return std::nullopt;
      return weight_undo(all);
    }
    std::string error;
    auto ref = registry::instance_ref(c, error);
    if (!ref) return std::nullopt;
    auto on = [&](const std::string& op) { return make_call(op, {{"instance", Value::string(ref->name)}}); };
    if (c.op == "pause_registration")
      return holds_.paused(ref->name) ? std::nullopt : std::optional<Call>(on("resume_registration"));
    if (c.op == "resume_registration")
      return holds_.paused(ref->name) ? std::optional<Call>(on("pause_registration")) : std::nullopt;
    std::optional<Instance> current;
    if (!find(*ref, budget, current).ok()) return std::nullopt;
    auto tag_back = [&](const Patch& patch) {
      return make_call("tag",
                       {{"instance", Value::string(ref->name)}, {"metadata", registry::undo_patch(current->metadata, patch)}});
    };
    if (c.op == "register") {
      if (!current) return on("deregister");
      auto patch = registry::patch_arg(c, "metadata", error);
      if (!patch) return std::nullopt;
      return tag_back(*patch);
    }
    if (!current) return std::nullopt;
    if (c.op == "deregister") return register_back(*ref, *current);
    if (c.op == "disable") return current->out_of_service() ? std::nullopt : std::optional<Call>(on("enable"));
    if (c.op == "enable") return current->out_of_service() ? std::optional<Call>(on("disable")) : std::nullopt;
    if (c.op == "set_weight") {
      auto old = current->metadata.find("weight");
      if (old != current->metadata.end())
        if (auto w = registry::parse_number(old->second))
          return make_call("set_weight", {{"instance", Value::string(ref->name)}, {"weight", Value::number(*w)}});
      return tag_back(Patch{{"weight", std::nullopt}});
    }
    if (c.op == "tag") {
      auto patch = registry::patch_arg(c, "metadata", error);
      if (!patch) return std::nullopt;
      return tag_back(*patch);
    }
    return std::nullopt;
  }

  // --- the keeper's thread: heartbeats and held-out instances ----------------------------------

  void start_heartbeats(const Instance& in) {
    std::lock_guard<std::mutex> lock(beats_mu_);
    beats_[in.id] =
        Beat{in.doc, std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long long>(s_.heartbeat_ms))};
  }

  void stop_heartbeats(const std::string& id) {
    std::lock_guard<std::mutex> lock(beats_mu_);
    beats_.erase(id);
  }

  void keeper_round() {
    send_due_heartbeats();
    enforce_holds();
  }

  void send_due_heartbeats() {
    std::vector<std::pair<std::string, json>> due;
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(beats_mu_);
      for (const auto& [id, b] : beats_)
        if (b.due <= now) due.push_back({id, b.doc});
    }
    for (const auto& [id, doc] : due) {
      Reply r = keeper_session_.send("PUT", instance_url(id), "", false, kKeeperRequestMs);
      // 404: the server let the lease lapse (or restarted); a client registers again.
      if (r.kind == Reply::Kind::Refused && r.status == 404) post_registration(keeper_session_, doc, kKeeperRequestMs);
      std::lock_guard<std::mutex> lock(beats_mu_);
      if (auto it = beats_.find(id); it != beats_.end())
        it->second.due = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long long>(s_.heartbeat_ms));
    }
  }

  void enforce_holds() {
    auto items = holds_.items();
    if (items.empty()) return;
    std::vector<Instance> all;
    if (!list(keeper_session_, kKeeperRequestMs, all).ok()) return;
    for (const auto& item : items) {
      auto io = holds_.lock_io();
      if (!holds_.paused(item.ref.name)) continue;
      auto it = std::find_if(all.begin(), all.end(), [&](const Instance& in) { return in.matches(item.ref); });
      if (it == all.end() || it->out_of_service()) {
        holds_.update(item.ref.name, true, item.held);
        continue;
      }
      if (!item.seen_absent) continue;
      if (set_status(keeper_session_, *it, true, kKeeperRequestMs).ok()) {
        holds_.update(item.ref.name, true, true);
        if (env_.note)
          env_.note(where() + ": " + item.ref.name +
                    " registered again while its registration is paused; gray set it OUT_OF_SERVICE");
      }
    }
  }

  struct Beat {
    json doc;
    std::chrono::steady_clock::time_point due;
  };

  Settings s_;
  DriverEnv env_;
  Session session_;
  std::map<std::string, Instance> known_;  // by instance name: the last document seen
  std::set<std::string> deregistered_;
  Session keeper_session_;
  std::mutex beats_mu_;
  std::map<std::string, Beat> beats_;  // by instance id
  registry::Holds holds_;
  registry::Keeper keeper_;  // last: its thread uses the members above
};

}  // namespace
}  // namespace eureka

std::unique_ptr<Driver> make_eureka(const std::string& instance, const Value& config, const DriverEnv& env) {
  DriverEnv e = env;
  if (!e.sleep) e.sleep = DriverEnv::process(env.base_dir).sleep;
  return std::make_unique<eureka::EurekaRegistry>(eureka::read_settings(instance, config), e);
}

}  // namespace gray::plugins
