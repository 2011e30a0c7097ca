#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "plugins/consul/consul.h"
#include "plugins/http/http.h"
#include "plugins/registry/holds.h"
#include "plugins/registry/keeper.h"
#include "plugins/registry/registry.h"

namespace gray::plugins {
namespace consul {
namespace {

using nlohmann::json;
using registry::Budget;
using registry::InstanceRef;
using registry::make_call;
using registry::Metadata;
using registry::Patch;

constexpr long kMaxWeight = 65535;  // Consul's bound for Weights.Passing
constexpr double kKeeperRoundMs = 500;
constexpr double kKeeperRequestMs = 3000;
// Maintenance reasons gray writes; the prefix tells gray's own maintenance from an operator's.
const std::string kDisabledReason = "gray: disabled";
const std::string kPausedReason = "gray: registration paused";
const std::string kWeightZeroReason = "gray: weight 0%";

struct Settings {
  std::string instance;
  std::string address;  // base URL of the agent, no trailing slash
  std::string service;
  std::string token;
  registry::CanarySelection canary;
};

Settings read_settings(const std::string& instance, const Value& config) {
  Settings s;
  s.instance = instance;
  s.address = config_string(instance, config, "address");
  while (!s.address.empty() && s.address.back() == '/') s.address.pop_back();
  if (s.address.rfind("http://", 0) != 0 && s.address.rfind("https://", 0) != 0)
    throw DriverError(instance + ": field 'address' must be an http:// or https:// URL such as http://127.0.0.1:8500");
  s.service = config_string(instance, config, "service");
  if (s.service.empty() || s.service.find('/') != std::string::npos)
    throw DriverError(instance + ": field 'service' must be a service name without '/'");
  s.token = config_string(instance, config, "token", "");
  s.canary = registry::canary_selection(instance, config);
  return s;
}

// One service instance as the health endpoint reports it.
struct Instance {
  std::string id;
  std::string name;
  std::vector<std::string> tags;
  std::string address;       // Service.Address, "" when the node's address is used
  std::string node_address;  // Node.Address
  int port = 0;
  Metadata meta;
  long passing_weight = 1;
  long warning_weight = 1;
  bool enable_tag_override = false;
  bool passing = true;  // every check passing: what ?passing and DNS clients see
  bool maintenance = false;
  std::string maintenance_reason;
  std::string agent;  // the agent to write through

  std::string host() const { return address.empty() ? node_address : address; }
  std::string endpoint() const { return host() + ":" + std::to_string(port); }
  std::string version() const {
    auto it = meta.find("version");
    return it == meta.end() ? "" : it->second;
  }
  bool matches(const InstanceRef& ref) const {
    if (id == ref.name) return true;
    if (ref.has_address()) return host() == ref.addr && port == ref.port;
    return endpoint() == ref.name;
  }
  // The definition the agent's register endpoint takes back.
  json definition() const {
    json j{{"ID", id},
           {"Name", name},
           {"Tags", tags},
           {"Port", port},
           {"Meta", json::object()},
           {"Weights", {{"Passing", passing_weight}, {"Warning", warning_weight}}},
           {"EnableTagOverride", enable_tag_override}};
    if (!address.empty()) j["Address"] = address;
    for (const auto& [k, v] : meta) j["Meta"][k] = v;
    return j;
  }
};

bool parse_instance(const json& entry, Instance& out) {
  if (!entry.is_object() || !entry.contains("Service") || !entry["Service"].is_object()) return false;
  const json& s = entry["Service"];
  if (!s.contains("ID") || !s["ID"].is_string()) return false;
  out.id = s["ID"].get<std::string>();
  out.name = s.value("Service", std::string());
  out.address = s.value("Address", std::string());
  out.port = s.contains("Port") && s["Port"].is_number() ? s["Port"].get<int>() : 0;
  if (s.contains("Tags") && s["Tags"].is_array())
    for (const json& t : s["Tags"])
      if (t.is_string()) out.tags.push_back(t.get<std::string>());
  if (s.contains("Meta") && s["Meta"].is_object())
    for (const auto& [k, v] : s["Meta"].items()) out.meta[k] = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.contains("Weights") && s["Weights"].is_object()) {
    out.passing_weight = s["Weights"].value("Passing", 1L);
    out.warning_weight = s["Weights"].value("Warning", 1L);
  }
  out.enable_tag_override = s.value("EnableTagOverride", false);
  if (entry.contains("Node") && entry["Node"].is_object()) out.node_address = entry["Node"].value("Address", std::string());
  if (entry.contains("Checks") && entry["Checks"].is_array())
    for (const json& c : entry["Checks"]) {
      if (!c.is_object()) continue;
      if (c.value("Status", std::string("passing")) != "passing") out.passing = false;
      if (c.value("CheckID", std::string()).rfind("_service_maintenance:", 0) == 0) {
        out.maintenance = true;
        out.maintenance_reason = c.value("Notes", std::string());
      }
    }
  return true;
}

// What an exchange with Consul came to.
struct Reply {
  enum class Kind { Ok, Refused, Unreachable, Garbage } kind = Kind::Ok;
  long status = 0;
  json body;
  std::string message;
  bool ok() const { return kind == Kind::Ok; }
};

class Session {
 public:
  Session(const Settings& s, std::function<void(double)> sleep) : token_(s.token), http_(std::move(sleep)) {}

  Reply send(const std::string& method, const std::string& url, const std::string& body, bool want_json, double timeout_ms) {
    http::Request req;
    req.method = method;
    req.url = url;
    req.body = body;
    req.timeout_ms = timeout_ms;
    req.connect_timeout_ms = std::min(3000.0, timeout_ms);
    // Register, deregister and maintenance set a state: repeating one is harmless.
    req.idempotent = true;
    if (!body.empty()) req.headers.push_back({"Content-Type", "application/json"});
    if (!token_.empty()) req.headers.push_back({"X-Consul-Token", token_});
    http::Response resp = http_.send(req);
    Reply r;
    if (!resp.transport_ok()) {
      r.kind = Reply::Kind::Unreachable;
      r.message = "cannot reach it (" + resp.error + ")";
      return r;
    }
    r.status = resp.status;
    std::string text = resp.body.substr(0, 300);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (resp.status == 403) {
      r.kind = Reply::Kind::Refused;
      r.message = "permission denied (HTTP 403: " + text + ")" +
                  (token_.empty() ? "; set token to an ACL token" : "; the token lacks the ACL for this");
      return r;
    }
    if (resp.status == 400 || resp.status == 404) {
      r.kind = Reply::Kind::Refused;
      r.message = "HTTP " + std::to_string(resp.status) + ": " + text;
      return r;
    }
    if (resp.status != 200) {
      r.kind = Reply::Kind::Garbage;
      r.message = "unexpected answer: " + resp.describe(req);
      return r;
    }
    if (want_json) {
      r.body = json::parse(resp.body, nullptr, false);
      if (r.body.is_discarded()) {
        r.kind = Reply::Kind::Garbage;
        r.message = "the answer is not JSON (" + resp.describe(req) + ")";
      }
    }
    return r;
  }

 private:
  std::string token_;
  http::Client http_;
};

class ConsulRegistry final : public Driver {
 public:
  ConsulRegistry(Settings s, const DriverEnv& env)
      : s_(std::move(s)), env_(env), session_(s_, env.sleep), keeper_session_(s_, env.sleep), keeper_(kKeeperRoundMs, [this] {
          enforce_holds();
        }) {}
  ~ConsulRegistry() override { keeper_.stop(); }

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
        addr = it->second.host();
        port = it->second.port;
      }
    registry::complete_undo(undo, original, addr, port);
  }

 private:
  std::string where() const { return "consul at " + s_.address + " (service " + s_.service + ")"; }
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

  // The agent an instance lives on: its inventory may name one (vars.consul_agent), since the
  // agent endpoints change only services registered on that agent.
  std::string agent_for(const InstanceRef& ref) const {
    std::string a = ref.var("consul_agent");
    if (a.empty())
      if (auto it = known_.find(ref.name); it != known_.end()) a = it->second.agent;
    while (!a.empty() && a.back() == '/') a.pop_back();
    return a.empty() ? s_.address : a;
  }

  Reply list(Session& session, double timeout_ms, std::vector<Instance>& out) {
    out.clear();
    Reply r = session.send("GET", s_.address + "/v1/health/service/" + http::url_encode(s_.service), "", true, timeout_ms);
    if (!r.ok()) return r;
    if (!r.body.is_array()) {
      r.kind = Reply::Kind::Garbage;
      r.message = "the health endpoint did not answer a list";
      return r;
    }
    for (const json& entry : r.body) {
      Instance in;
      if (!parse_instance(entry, in)) {
        r.kind = Reply::Kind::Garbage;
        r.message = "the health endpoint answered an entry without a Service ID: " + entry.dump().substr(0, 200);
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
        ref.addr = it->second.host();
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
        in.agent = agent_for(ref);
        known_[ref.name] = in;
        out = std::move(in);
        break;
      }
    return r;
  }

  Reply put_definition(Session& session, const Instance& in, double timeout_ms) {
    return session.send("PUT", in.agent + "/v1/agent/service/register", in.definition().dump(), false, timeout_ms);
  }

  Reply maintenance(Session& session, const Instance& in, bool enable, const std::string& reason, double timeout_ms) {
    std::string url =
        in.agent + "/v1/agent/service/maintenance/" + http::url_encode(in.id) + "?enable=" + (enable ? "true" : "false");
    if (enable) url += "&reason=" + http::url_encode(reason);
    return session.send("PUT", url, "", false, timeout_ms);
  }

  Result dispatch(const Call& c, Budget& budget) {
    if (c.op == "count") return count(c, budget);
    if (c.op == "weight") return weight(c, budget);
    static const std::set<std::string> instance_ops = {
        "register",           "deregister",          "enable",    "disable", "set_weight", "tag",
        "pause_registration", "resume_registration", "registered"};
    if (!instance_ops.count(c.op)) return refuse(c.op, "the Consul registry has no operation '" + c.op + "'");
    std::string error;
    auto ref = registry::instance_ref(c, error);
    if (!ref) return refuse(c.op, error);
    const std::string what = c.op + " " + ref->name;
    if (c.op == "pause_registration" || c.op == "resume_registration") return pause(c, *ref, what, budget);
    std::optional<Instance> current;
    Reply r = find(*ref, budget, current);
    if (!r.ok()) return from_reply(r, what);
    if (c.op == "registered") return ok_result(Value::boolean(current && current->passing));
    if (c.op == "register") return do_register(c, *ref, current, what, budget);
    if (!current) {
      if (c.op == "deregister") return done();
      return refuse(what, ref->name + " is not registered");
    }
    if (c.op == "deregister") return do_deregister(*ref, *current, what, budget);
    if (c.op == "enable" || c.op == "disable") return do_enable(c.op == "enable", *ref, *current, what, budget);
    if (c.op == "set_weight") return do_set_weight(c, *ref, *current, what, budget);
    return do_tag(c, *ref, *current, what, budget);
  }

  // A version in Meta is also a tag "version=<v>", for clients that filter on tags.
  static void apply_to(Instance& in, const Patch& patch) {
    registry::apply_patch(in.meta, patch);
    auto v = patch.find("version");
    if (v == patch.end()) return;
    in.tags.erase(
        std::remove_if(in.tags.begin(), in.tags.end(), [](const std::string& t) { return t.rfind("version=", 0) == 0; }),
        in.tags.end());
    if (v->second) in.tags.push_back("version=" + *v->second);
  }

  Result rewrite(const Instance& next, const std::string& what, Budget& budget) {
    Reply r = put_definition(session_, next, budget.left());
    return r.ok() ? ok_result() : from_reply(r, what);
  }

  Result do_register(const Call& c, const InstanceRef& ref, const std::optional<Instance>& current, const std::string& what,
                     Budget& budget) {
    std::string error;
    auto patch = registry::patch_arg(c, "metadata", error);
    if (!error.empty()) return refuse(what, error);
    if (current) {
      Instance next = *current;
      if (!patch) return done();
      apply_to(next, *patch);
      if (next.meta == current->meta && next.tags == current->tags) return done();
      Result r = rewrite(next, what, budget);
      if (r.ok())
        r.undo =
            make_call("tag", {{"instance", Value::string(ref.name)}, {"metadata", registry::undo_patch(current->meta, *patch)}});
      return r;
    }
    Instance in;
    if (auto it = known_.find(ref.name); it != known_.end()) {
      in = it->second;
    } else if (ref.has_address()) {
      in.id = ref.name;
      in.name = s_.service;
      in.address = ref.addr;
      in.port = ref.port;
      if (std::string v = ref.var("version"); !v.empty()) apply_to(in, Patch{{"version", v}});
    } else {
      return refuse(what,
                    "Consul does not know " + ref.name +
                        " and its address is unknown; register it with the host's inventory record (addr, port) or as ip:port");
    }
    in.agent = agent_for(ref);
    if (ref.has_address() && in.host() != ref.addr) in.address = ref.addr;
    if (ref.port > 0) in.port = ref.port;
    if (const Value* w = registry::arg(c, "weight"); w && w->is_numeric() && w->num >= 1)
      in.passing_weight = static_cast<long>(w->num);
    if (patch) apply_to(in, *patch);
    Result r = rewrite(in, what, budget);
    if (!r.ok()) return r;
    known_[ref.name] = in;
    deregistered_.erase(ref.name);
    r.undo = make_call("deregister", {{"instance", Value::string(ref.name)}});
    return r;
  }

  Call register_back(const InstanceRef& ref, const Instance& in) const {
    Map vars;
    if (in.agent != s_.address) vars["consul_agent"] = Value::string(in.agent);
    return make_call("register", {{"instance", Value::string(ref.name)},
                                  {"addr", Value::string(in.host())},
                                  {"port", Value::number(in.port)},
                                  {"weight", Value::number(static_cast<double>(in.passing_weight))},
                                  {"vars", Value::of_map(std::move(vars))},
                                  {"metadata", registry::metadata_value(in.meta)}});
  }

  Result do_deregister(const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    Reply r = session_.send("PUT", current.agent + "/v1/agent/service/deregister/" + http::url_encode(current.id), "", false,
                            budget.left());
    // 404 "Unknown service ID": gone already, or registered on another agent.
    if (r.kind == Reply::Kind::Refused && r.status == 404) {
      if (r.message.find("Unknown service ID") == std::string::npos) return from_reply(r, what);
      return refuse(what,
                    "the agent at " + current.agent + " does not hold service ID " + current.id +
                        " (it is registered on another node's agent: name that agent in the host's inventory as consul_agent)");
    }
    if (!r.ok()) return from_reply(r, what);
    deregistered_.insert(ref.name);
    Result ok = ok_result();
    ok.undo = register_back(ref, current);
    return ok;
  }

  Result do_enable(bool enable, const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    if (current.maintenance != enable) return done();
    Reply r = maintenance(session_, current, !enable, kDisabledReason, budget.left());
    if (!r.ok()) return from_reply(r, what);
    Result ok = ok_result();
    ok.undo = make_call(enable ? "disable" : "enable", {{"instance", Value::string(ref.name)}});
    return ok;
  }

  Result do_set_weight(const Call& c, const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    const Value* w = registry::arg(c, "weight");
    if (!w || !w->is_numeric() || w->num < 1 || w->num > kMaxWeight || w->num != static_cast<double>(static_cast<long>(w->num)))
      return refuse(what, "Consul weights are whole numbers from 1 to 65535 (to stop traffic to an instance, disable it)");
    if (current.passing_weight == static_cast<long>(w->num)) return done();
    Instance next = current;
    next.passing_weight = static_cast<long>(w->num);
    Result r = rewrite(next, what, budget);
    if (r.ok())
      r.undo = make_call("set_weight", {{"instance", Value::string(ref.name)},
                                        {"weight", Value::number(static_cast<double>(current.passing_weight))}});
    return r;
  }

  Result do_tag(const Call& c, const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    std::string error;
    auto patch = registry::patch_arg(c, "metadata", error);
    if (!error.empty()) return refuse(what, error);
    if (!patch) return refuse(what, "the metadata argument is required");
    Instance next = current;
    apply_to(next, *patch);
    if (next.meta == current.meta && next.tags == current.tags) return done();
    Result r = rewrite(next, what, budget);
    if (r.ok())
      r.undo =
          make_call("tag", {{"instance", Value::string(ref.name)}, {"metadata", registry::undo_patch(current.meta, *patch)}});
    return r;
  }

  // Consul has no flag a node's agent would watch: gray holds a paused instance out (maintenance
  // mode, reason "gray: registration paused") whenever it comes back, while this driver lives.
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
      const bool visible = current && !current->maintenance;
      const bool came_back = visible && deregistered_.count(ref.name);
      if (came_back) {
        Reply m = maintenance(session_, *current, true, kPausedReason, budget.left());
        if (!m.ok()) return from_reply(m, what + " (holding it out: it re-registered)");
      }
      holds_.pause(ref, !visible, came_back);
      return ok;
    }
    deregistered_.erase(ref.name);  // the drain this pause belonged to is over
    auto item = holds_.resume(ref.name);
    if (item && item->held && current && current->maintenance && current->maintenance_reason == kPausedReason) {
      Reply m = maintenance(session_, *current, false, "", budget.left());
      if (!m.ok()) return from_reply(m, what + " (letting it back in)");
    }
    return ok;
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
      if (it == all.end() || it->maintenance) {
        holds_.update(item.ref.name, true, item.held || (it != all.end() && it->maintenance_reason == kPausedReason));
        continue;
      }
      if (!item.seen_absent) continue;
      Instance in = *it;
      in.agent = item.ref.var("consul_agent").empty() ? s_.address : item.ref.var("consul_agent");
      if (maintenance(keeper_session_, in, true, kPausedReason, kKeeperRequestMs).ok()) {
        holds_.update(item.ref.name, true, true);
        if (env_.note)
          env_.note(where() + ": " + item.ref.name +
                    " registered again while its registration is paused; gray put it in maintenance");
      }
    }
  }

  Result count(const Call& c, Budget& budget) {
    const Value* v = registry::arg(c, "version");
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return from_reply(r, "count instances");
    double n = 0;
    for (const Instance& in : all)
      if (in.passing && (!v || in.version() == v->text())) ++n;
    return ok_result(Value::number(n));
  }

  // --- weights: Weights.Passing, and maintenance for a group that gets no traffic at all ---------

  bool is_canary(const Instance& in) const { return s_.canary.matches(in.id, {in.endpoint()}, in.version()); }
  static bool weight_zero(const Instance& in) { return in.maintenance && in.maintenance_reason == kWeightZeroReason; }

  // The instances a weight call works on: registered ones not taken out for another reason.
  static std::vector<Instance> weighable(const std::vector<Instance>& all) {
    std::vector<Instance> out;
    for (const Instance& in : all)
      if (!in.maintenance || weight_zero(in)) out.push_back(in);
    return out;
  }

  Call weight_undo(const std::vector<Instance>& all) const {
    Map before;
    std::vector<std::pair<bool, double>> shares;
    for (const Instance& in : weighable(all)) {
      double w = weight_zero(in) ? 0 : static_cast<double>(in.passing_weight);
      before[in.id] = Value::number(w);
      shares.push_back({is_canary(in), w});
    }
    auto share = s_.canary.configured() ? registry::canary_share(shares) : std::nullopt;
    return make_call("weight", {{"canary", share ? Value::percent(*share) : Value::null()}, {"weights", Value::of_map(before)}});
  }

  Result weight(const Call& c, Budget& budget) {
    const std::string what = "weight canary " + (c.args.count("canary") ? c.args.at("canary").text() : std::string("(exact)"));
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return from_reply(r, what);
    std::vector<Instance> group = weighable(all);
    std::map<std::string, long> target;  // by service ID; 0: maintenance
    if (const Value* w = registry::arg(c, "weights"); w && w->kind == Value::Kind::Map) {
      for (const auto& [id, v] : w->fields())
        if (v.is_numeric()) target[id] = static_cast<long>(v.num);
    } else {
      std::string why;
      bool clear = false;
      auto percent = registry::percent_arg(c, why, clear);
      if (!why.empty()) return refuse(what, why);
      if (clear) {
        for (const Instance& in : group) target[in.id] = 1;
      } else {
        if (!s_.canary.configured())
          return refuse(what,
                        "set canary (service IDs or ip:port) or canary_version in the registry's configuration so gray knows "
                        "which instances are the canary");
        size_t n_canary = std::count_if(group.begin(), group.end(), [&](const Instance& in) { return is_canary(in); });
        size_t n_stable = group.size() - n_canary;
        if (*percent > 0 && n_canary == 0)
          return refuse(what, "no registered instance of " + s_.service + " matches " + s_.canary.describe());
        if (*percent < 100 && n_stable == 0)
          return refuse(what, "every registered instance of " + s_.service + " matches " + s_.canary.describe() +
                                  ": there is no stable instance");
        registry::Split split = registry::split_weights(*percent, n_canary, n_stable, kMaxWeight);
        for (const Instance& in : group) target[in.id] = is_canary(in) ? split.canary : split.stable;
      }
    }
    Call undo = weight_undo(all);
    size_t changed = 0;
    for (Instance in : group) {
      auto t = target.find(in.id);
      if (t == target.end()) continue;
      in.agent = s_.address;
      if (auto k = std::find_if(known_.begin(), known_.end(), [&](const auto& kv) { return kv.second.id == in.id; });
          k != known_.end())
        in.agent = k->second.agent;
      Reply step;
      if (t->second == 0) {
        if (weight_zero(in)) continue;
        step = maintenance(session_, in, true, kWeightZeroReason, budget.left());
      } else {
        if (weight_zero(in)) {
          step = maintenance(session_, in, false, "", budget.left());
          if (!step.ok()) return partial(step, what, changed, undo);
        }
        if (in.passing_weight == t->second && !weight_zero(in)) continue;
        in.passing_weight = t->second;
        step = put_definition(session_, in, budget.left());
      }
      if (!step.ok()) return partial(step, what + " (" + in.id + ")", changed, undo);
      ++changed;
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
    if (c.op == "register") {
      if (!current) return on("deregister");
      auto patch = registry::patch_arg(c, "metadata", error);
      if (!patch) return std::nullopt;
      return make_call("tag",
                       {{"instance", Value::string(ref->name)}, {"metadata", registry::undo_patch(current->meta, *patch)}});
    }
    if (!current) return std::nullopt;
    if (c.op == "deregister") return register_back(*ref, *current);
    if (c.op == "disable") return current->maintenance ? std::nullopt : std::optional<Call>(on("enable"));
    if (c.op == "enable") return current->maintenance ? std::optional<Call>(on("disable")) : std::nullopt;
    if (c.op == "set_weight")
      return make_call("set_weight", {{"instance", Value::string(ref->name)},
                                      {"weight", Value::number(static_cast<double>(current->passing_weight))}});
    if (c.op == "tag") {
      auto patch = registry::patch_arg(c, "metadata", error);
      if (!patch) return std::nullopt;
      return make_call("tag",
                       {{"instance", Value::string(ref->name)}, {"metadata", registry::undo_patch(current->meta, *patch)}});
    }
    return std::nullopt;
  }

  Settings s_;
  DriverEnv env_;
  Session session_;
  std::map<std::string, Instance> known_;  // by instance name: the last definition seen
  std::set<std::string> deregistered_;
  Session keeper_session_;
  registry::Holds holds_;
  registry::Keeper keeper_;  // last: its thread uses the members above
};

}  // namespace
}  // namespace consul

std::unique_ptr<Driver> make_consul(const std::string& instance, const Value& config, const DriverEnv& env) {
  DriverEnv e = env;
  if (!e.sleep) e.sleep = DriverEnv::process(env.base_dir).sleep;
  return std::make_unique<consul::ConsulRegistry>(consul::read_settings(instance, config), e);
}

}  // namespace gray::plugins
