#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>

#include "plugins/nacos/nacos.h"
#include "plugins/nacos/nacos_session.h"
#include "plugins/registry/holds.h"
#include "plugins/registry/keeper.h"
#include "plugins/registry/registry.h"

namespace gray::plugins {
namespace nacos {
namespace {

using nlohmann::json;
using registry::InstanceRef;
using registry::make_call;
using registry::Metadata;
using registry::Patch;

constexpr double kMaxWeight = 10000;     // Nacos refuses weights outside 0..10000
constexpr double kKeeperRoundMs = 500;   // how often held-out instances are looked at
constexpr double kDefaultBeatMs = 5000;  // until the server says otherwise (clientBeatInterval)
constexpr double kKeeperRequestMs = 3000;

struct Settings {
  std::string instance;
  SessionConfig session;
  std::string service;       // as configured: "svc" or "group@@svc"
  std::string group;         // empty: the server's DEFAULT_GROUP (or the group in the service name)
  std::string namespace_id;  // empty: public
  std::string cluster;       // empty: DEFAULT for new registrations, every cluster when looking
  registry::CanarySelection canary;
};

Settings read_settings(const std::string& instance, const Value& config) {
  Settings s;
  s.instance = instance;
  std::string server = config_string(instance, config, "server");
  while (!server.empty() && server.back() == '/') server.pop_back();
  size_t scheme = server.find("://");
  if (server.rfind("http://", 0) != 0 && server.rfind("https://", 0) != 0)
    throw DriverError(instance + ": field 'server' must be an http:// or https:// URL, not '" + server + "'");
  // A bare host:port gets Nacos' default context path.
  if (server.find('/', scheme + 3) == std::string::npos) server += "/nacos";
  s.session.base = server;
  s.service = config_string(instance, config, "service");
  s.group = config_string(instance, config, "group", "");
  if (s.service.empty()) throw DriverError(instance + ": field 'service' is empty");
  if (size_t at = s.service.find("@@"); at != std::string::npos) {
    if (at == 0 || at + 2 >= s.service.size())
      throw DriverError(instance + ": field 'service' must be group@@service with both parts, not '" + s.service + "'");
    if (!s.group.empty() && s.group != s.service.substr(0, at))
      throw DriverError(instance + ": field 'service' names group " + s.service.substr(0, at) + " but field 'group' says " +
                        s.group);
    s.group.clear();  // the name carries it
  }
  s.namespace_id = config_string(instance, config, "namespace", "");
  s.cluster = config_string(instance, config, "cluster", "");
  std::string api = config_string(instance, config, "api", "v1");
  if (api != "v1" && api != "v2") throw DriverError(instance + ": field 'api' must be \"v1\" or \"v2\", not \"" + api + "\"");
  s.session.v2 = api == "v2";
  s.session.username = config_string(instance, config, "username", "");
  s.session.password = config_string(instance, config, "password", "");
  if (!s.session.username.empty() && s.session.password.empty())
    throw DriverError(instance + ": field 'password' is required with 'username'");
  s.canary = registry::canary_selection(instance, config);
  return s;
}

using registry::Budget;

// One instance as Nacos reports it.
struct Instance {
  std::string ip;
  int port = 0;
  std::string cluster = "DEFAULT";
  double weight = 1;
  bool enabled = true;
  bool healthy = true;
  bool ephemeral = true;
  Metadata metadata;
  std::string instance_id;
  bool listed = false;  // in the instance list; false: found only by the detail query (disabled)

  std::string address() const { return ip + ":" + std::to_string(port); }
  std::string version() const {
    auto it = metadata.find("version");
    return it == metadata.end() ? "" : it->second;
  }
  bool matches(const InstanceRef& ref) const {
    if (ref.has_address()) return ip == ref.addr && port == ref.port;
    return instance_id == ref.name || ip == ref.name;
  }
};

std::string metadata_json(const Metadata& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j.dump();
}

bool parse_instance(const json& j, Instance& out) {
  if (!j.is_object() || !j.contains("ip") || !j["ip"].is_string() || !j.contains("port") || !j["port"].is_number()) return false;
  out.ip = j["ip"].get<std::string>();
  out.port = j["port"].get<int>();
  out.cluster = j.value("clusterName", std::string("DEFAULT"));
  out.weight = j.contains("weight") && j["weight"].is_number() ? j["weight"].get<double>() : 1;
  out.enabled = j.value("enabled", true);
  out.healthy = j.value("healthy", true);
  out.ephemeral = j.value("ephemeral", true);
  out.instance_id = j.value("instanceId", out.ip + "#" + std::to_string(out.port) + "#" + out.cluster);
  if (j.contains("metadata") && j["metadata"].is_object())
    for (const auto& [k, v] : j["metadata"].items()) out.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return true;
}

// What the keeper's thread needs to send heartbeats for the instances gray registered.
struct Beat {
  Instance instance;
  std::chrono::steady_clock::time_point due;
  double interval_ms = kDefaultBeatMs;
};

class NacosRegistry final : public Driver {
 public:
  NacosRegistry(Settings s, const DriverEnv& env)
      : s_(std::move(s)),
        env_(env),
        session_(s_.session, env.sleep),
        keeper_session_(s_.session, env.sleep),
        keeper_(kKeeperRoundMs, [this] { keeper_round(); }) {}

  ~NacosRegistry() override { keeper_.stop(); }

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
  std::string where() const { return session_.where() + " (service " + s_.service + ")"; }

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

  std::string path(const std::string& v1) const {
    return session_.v2() ? "/v2" + v1.substr(3) : v1;  // "/v1/ns/instance" -> "/v2/ns/instance"
  }

  Params service_params() const {
    Params p{{"serviceName", s_.service}};
    if (!s_.group.empty()) p.push_back({"groupName", s_.group});
    if (!s_.namespace_id.empty()) p.push_back({"namespaceId", s_.namespace_id});
    return p;
  }

  // Every field of an instance, as register and update take them: an update replaces weight,
  // enabled and metadata with what it is given, so each one carries the whole state.
  Params instance_params(const Instance& in, bool full) const {
    Params p = service_params();
    p.push_back({"ip", in.ip});
    p.push_back({"port", std::to_string(in.port)});
    p.push_back({"clusterName", in.cluster});
    p.push_back({"ephemeral", in.ephemeral ? "true" : "false"});
    if (full) {
      p.push_back({"weight", registry::number_text(in.weight)});
      p.push_back({"enabled", in.enabled ? "true" : "false"});
      p.push_back({"metadata", metadata_json(in.metadata)});
    }
    return p;
  }

  // --- reading ---------------------------------------------------------------------------------

  Reply list(Session& session, double timeout_ms, std::vector<Instance>& out) {
    out.clear();
    Params p = service_params();
    p.push_back({"healthyOnly", "false"});
    if (!s_.cluster.empty()) p.push_back({session.v2() ? "clusterName" : "clusters", s_.cluster});
    Reply r = session.send("GET", path("/v1/ns/instance/list"), p, Session::Expect::Json, timeout_ms);
    if (!r.ok()) return r;
    if (!r.data.contains("hosts")) return r;  // a service nobody registered yet
    if (!r.data["hosts"].is_array()) {
      r.kind = Reply::Kind::Garbage;
      r.message = "the instance list's hosts is not a list";
      return r;
    }
    for (const json& h : r.data["hosts"]) {
      Instance in;
      if (!parse_instance(h, in)) {
        r.kind = Reply::Kind::Garbage;
        r.message = "the instance list holds an entry without ip and port: " + h.dump().substr(0, 200);
        return r;
      }
      in.listed = true;
      out.push_back(std::move(in));
    }
    return r;
  }

  // The detail query finds an instance the list leaves out (a disabled one). nullopt: not there.
  Reply detail(const InstanceRef& ref, double timeout_ms, std::optional<Instance>& out) {
    out.reset();
    Params p = service_params();
    p.push_back({"ip", ref.addr});
    p.push_back({"port", std::to_string(ref.port)});
    p.push_back({session_.v2() ? "clusterName" : "cluster", s_.cluster.empty() ? "DEFAULT" : s_.cluster});
    Reply r = session_.send("GET", path("/v1/ns/instance"), p, Session::Expect::Json, timeout_ms);
    // Not found (404, or a refusal naming it), or a Nacos 3 server without its admin API (410):
    // nothing more is known about the instance than the list said.
    if (r.kind == Reply::Kind::Refused && (r.status == 404 || r.status == 410 || r.status == 400)) return Reply{};
    if (r.kind == Reply::Kind::Garbage && r.status >= 500 && r.message.find("no ips found") != std::string::npos) return Reply{};
    if (!r.ok()) return r;
    Instance in;
    if (!parse_instance(r.data, in)) {
      r.kind = Reply::Kind::Garbage;
      r.message = "the instance detail has no ip and port";
      return r;
    }
    in.enabled = false;  // registered, yet not in the list
    out = std::move(in);
    return r;
  }

  // Where the instance is: in the list, found by the detail query, or nowhere.
  Reply find(const InstanceRef& ref, Budget& budget, std::optional<Instance>& out) {
    out.reset();
    const InstanceRef addressed = with_known_address(ref);
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return r;
    for (Instance& in : all)
      if (in.matches(addressed)) {
        out = std::move(in);
        remember(ref, *out);
        return r;
      }
    if (!addressed.has_address()) return r;
    r = detail(addressed, budget.left(), out);
    if (r.ok() && out) remember(ref, *out);
    return r;
  }

  InstanceRef with_known_address(InstanceRef ref) const {
    if (!ref.has_address())
      if (auto it = known_.find(ref.name); it != known_.end()) {
        ref.addr = it->second.ip;
        ref.port = it->second.port;
      }
    return ref;
  }

  void remember(const InstanceRef& ref, const Instance& in) { known_[ref.name] = in; }

  // --- operations ------------------------------------------------------------------------------

  Result dispatch(const Call& c, Budget& budget) {
    if (c.op == "count") return count(c, budget);
    if (c.op == "weight") return weight(c, budget);
    static const std::set<std::string> instance_ops = {
        "register",           "deregister",          "enable",    "disable", "set_weight", "tag",
        "pause_registration", "resume_registration", "registered"};
    if (!instance_ops.count(c.op)) return refuse(c.op, "the Nacos registry has no operation '" + c.op + "'");
    std::string error;
    auto ref = registry::instance_ref(c, error);
    if (!ref) return refuse(c.op, error);
    const std::string what = c.op + " " + ref->name;
    if (c.op == "registered") return registered(*ref, what, budget);
    if (c.op == "pause_registration" || c.op == "resume_registration") return pause(c, *ref, what, budget);
    std::optional<Instance> current;
    Reply r = find(*ref, budget, current);
    if (!r.ok()) return from_reply(r, what);
    if (c.op == "register") return do_register(c, *ref, current, what, budget);
    if (c.op == "deregister") return do_deregister(*ref, current, what, budget);
    if (!current) return refuse(what, ref->name + " is not registered");
    if (c.op == "enable" || c.op == "disable") return do_enable(c.op == "enable", *ref, *current, what, budget);
    if (c.op == "set_weight") return do_set_weight(c, *ref, *current, what, budget);
    return do_tag(c, *ref, *current, what, budget);
  }

  Result update(const Instance& in, const std::string& what, Budget& budget) {
    Reply r = session_.send("PUT", path("/v1/ns/instance"), instance_params(in, true), Session::Expect::Done, budget.left());
    if (!r.ok()) return from_reply(r, what);
    return ok_result();
  }

  Result do_register(const Call& c, const InstanceRef& ref, const std::optional<Instance>& current, const std::string& what,
                     Budget& budget) {
    std::string error;
    auto patch = registry::patch_arg(c, "metadata", error);
    if (!error.empty()) return refuse(what, error);
    if (current) {
      Instance next = *current;
      if (!patch || !registry::apply_patch(next.metadata, *patch)) return done();
      Result r = update(next, what, budget);
      if (r.ok())
        r.undo = make_call(
            "tag", {{"instance", Value::string(ref.name)}, {"metadata", registry::undo_patch(current->metadata, *patch)}});
      return r;
    }
    Instance in;
    if (auto it = known_.find(ref.name); it != known_.end()) {
      in = it->second;
    } else if (ref.has_address()) {
      in.ip = ref.addr;
      in.port = ref.port;
      in.cluster = s_.cluster.empty() ? "DEFAULT" : s_.cluster;
      if (std::string v = ref.var("version"); !v.empty()) in.metadata["version"] = v;
    } else {
      return refuse(what,
                    "Nacos does not know " + ref.name +
                        " and its address is unknown; register it with the host's inventory record (addr, port) or as ip:port");
    }
    if (ref.has_address()) {
      in.ip = ref.addr;
      in.port = ref.port;
    }
    if (const Value* w = registry::arg(c, "weight"); w && w->is_numeric()) in.weight = w->num;
    if (patch) registry::apply_patch(in.metadata, *patch);
    in.enabled = true;
    in.healthy = true;
    in.ephemeral = true;
    Params p = instance_params(in, true);
    p.push_back({"healthy", "true"});
    Reply r = session_.send("POST", path("/v1/ns/instance"), p, Session::Expect::Done, budget.left());
    if (!r.ok()) return from_reply(r, what);
    remember(ref, in);
    deregistered_.erase(ref.name);
    start_beats(in);
    Result ok = ok_result();
    ok.undo = make_call("deregister", {{"instance", Value::string(ref.name)}});
    return ok;
  }

  Call register_back(const InstanceRef& ref, const Instance& in) const {
    return make_call("register", {{"instance", Value::string(ref.name)},
                                  {"addr", Value::string(in.ip)},
                                  {"port", Value::number(in.port)},
                                  {"weight", Value::number(in.weight)},
                                  {"metadata", registry::metadata_value(in.metadata)}});
  }

  Result do_deregister(const InstanceRef& ref, const std::optional<Instance>& current, const std::string& what, Budget& budget) {
    if (!current) return done();
    Reply r =
        session_.send("DELETE", path("/v1/ns/instance"), instance_params(*current, false), Session::Expect::Done, budget.left());
    if (!r.ok()) return from_reply(r, what);
    stop_beats(*current);
    if (current->listed && still_listed(*current, budget))
      return refuse(
          what, "Nacos answered ok but still lists " + current->address() +
                    ": an instance that a client registered over gRPC (Nacos 2 and later) can be removed only by that client; "
                    "drain it with disable (enabled=false) instead");
    deregistered_.insert(ref.name);
    Result ok = ok_result();
    ok.undo = register_back(ref, *current);
    return ok;
  }

  // Whether the list still holds `in` a moment after its deregistration (a cluster may take a
  // moment to agree, so it is looked at a few times).
  bool still_listed(const Instance& in, Budget& budget) {
    for (int look = 0; look < 4; ++look) {
      if (look > 0) env_.sleep(std::min(300.0, budget.left() / 4));
      std::vector<Instance> all;
      if (!list(session_, budget.left(), all).ok()) return false;  // cannot tell: the DELETE said ok
      bool there = std::any_of(all.begin(), all.end(), [&](const Instance& x) { return x.ip == in.ip && x.port == in.port; });
      if (!there) return false;
    }
    return true;
  }

  Result do_enable(bool enable, const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    if (current.listed == enable) return done();
    Instance next = current;
    next.enabled = enable;
    Result r = update(next, what, budget);
    if (r.ok()) r.undo = make_call(enable ? "disable" : "enable", {{"instance", Value::string(ref.name)}});
    return r;
  }

  Result do_set_weight(const Call& c, const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    const Value* w = registry::arg(c, "weight");
    if (!w || !w->is_numeric() || w->num < 0 || w->num > kMaxWeight)
      return refuse(what, "weight must be a number from 0 to 10000");
    if (current.weight == w->num) return done();
    Instance next = current;
    next.weight = w->num;
    Result r = update(next, what, budget);
    if (r.ok())
      r.undo = make_call("set_weight", {{"instance", Value::string(ref.name)}, {"weight", Value::number(current.weight)}});
    return r;
  }

  Result do_tag(const Call& c, const InstanceRef& ref, const Instance& current, const std::string& what, Budget& budget) {
    std::string error;
    auto patch = registry::patch_arg(c, "metadata", error);
    if (!error.empty()) return refuse(what, error);
    if (!patch) return refuse(what, "the metadata argument is required");
    Instance next = current;
    if (!registry::apply_patch(next.metadata, *patch)) return done();
    Result r = update(next, what, budget);
    if (r.ok())
      r.undo =
          make_call("tag", {{"instance", Value::string(ref.name)}, {"metadata", registry::undo_patch(current.metadata, *patch)}});
    return r;
  }

  // Nacos has no flag a node's agent could watch: gray holds a paused instance out (disabled)
  // whenever it comes back, for as long as this driver lives.
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
      const bool visible = current && current->listed;
      // Deregistered by gray and already back: its agent was quicker than this call.
      const bool came_back = visible && deregistered_.count(ref.name);
      if (came_back) {
        Instance next = *current;
        next.enabled = false;
        Result held = update(next, what + " (holding it out: it re-registered)", budget);
        if (!held.ok()) return held;
      }
      holds_.pause(ref, !visible, came_back);
      return ok;
    }
    deregistered_.erase(ref.name);  // the drain this pause belonged to is over
    auto item = holds_.resume(ref.name);
    if (item && item->held && current && !current->listed) {
      Instance next = *current;
      next.enabled = true;
      Result back = update(next, what + " (letting it back in)", budget);
      if (!back.ok()) return back;
    }
    return ok;
  }

  Result registered(const InstanceRef& ref, const std::string& what, Budget& budget) {
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return from_reply(r, what);
    const InstanceRef addressed = with_known_address(ref);
    return ok_result(
        Value::boolean(std::any_of(all.begin(), all.end(), [&](const Instance& in) { return in.matches(addressed); })));
  }

  Result count(const Call& c, Budget& budget) {
    const Value* v = registry::arg(c, "version");
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return from_reply(r, "count instances");
    double n = 0;
    for (const Instance& in : all)
      if (!v || in.version() == v->text()) ++n;
    return ok_result(Value::number(n));
  }

  // --- weights ---------------------------------------------------------------------------------

  bool is_canary(const Instance& in) const { return s_.canary.matches(in.instance_id, {in.address()}, in.version()); }

  // The weight each listed instance should get; empty `why` when it can be done.
  std::map<std::string, double> weight_targets(const Call& c, const std::vector<Instance>& all, std::string& why) const {
    std::map<std::string, double> target;
    if (const Value* w = registry::arg(c, "weights"); w && w->kind == Value::Kind::Map) {
      for (const auto& [addr, v] : w->fields())
        if (v.is_numeric()) target[addr] = v.num;
      return target;
    }
    bool clear = false;
    auto percent = registry::percent_arg(c, why, clear);
    if (!why.empty()) return {};
    if (clear) {
      for (const Instance& in : all) target[in.address()] = 1;  // Nacos' default weight
      return target;
    }
    if (!s_.canary.configured()) {
      why =
          "set canary (instance ids or ip:port) or canary_version in the registry's configuration so gray knows which instances "
          "are the canary";
      return {};
    }
    size_t n_canary = std::count_if(all.begin(), all.end(), [&](const Instance& in) { return is_canary(in); });
    size_t n_stable = all.size() - n_canary;
    if (*percent > 0 && n_canary == 0)
      why = "no enabled instance of " + s_.service + " matches " + s_.canary.describe();
    else if (*percent < 100 && n_stable == 0)
      why = "every enabled instance of " + s_.service + " matches " + s_.canary.describe() + ": there is no stable instance";
    if (!why.empty()) return {};
    registry::Split split = registry::split_weights(*percent, n_canary, n_stable, static_cast<long>(kMaxWeight));
    for (const Instance& in : all) target[in.address()] = static_cast<double>(is_canary(in) ? split.canary : split.stable);
    return target;
  }

  Call weight_undo(const std::vector<Instance>& all) const {
    Map before;
    std::vector<std::pair<bool, double>> shares;
    for (const Instance& in : all) {
      before[in.address()] = Value::number(in.weight);
      shares.push_back({is_canary(in), in.weight});
    }
    auto share = s_.canary.configured() ? registry::canary_share(shares) : std::nullopt;
    return make_call("weight", {{"canary", share ? Value::percent(*share) : Value::null()}, {"weights", Value::of_map(before)}});
  }

  Result weight(const Call& c, Budget& budget) {
    const std::string what = "weight canary " + (c.args.count("canary") ? c.args.at("canary").text() : std::string("(exact)"));
    std::vector<Instance> all;
    Reply r = list(session_, budget.left(), all);
    if (!r.ok()) return from_reply(r, what);
    std::string why;
    auto target = weight_targets(c, all, why);
    if (!why.empty()) return refuse(what, why);
    Call undo = weight_undo(all);
    size_t changed = 0;
    for (const Instance& in : all) {
      auto t = target.find(in.address());
      if (t == target.end() || t->second == in.weight) continue;
      Instance next = in;
      next.weight = t->second;
      Result u = update(next, what + " (" + in.address() + " to " + registry::number_text(t->second) + ")", budget);
      if (!u.ok()) {
        if (changed > 0) u.message += "; " + std::to_string(changed) + " other instance(s) were already changed";
        u.undo = undo;
        return u;
      }
      ++changed;
    }
    if (changed == 0) return done();
    Result ok = ok_result();
    ok.undo = undo;
    return ok;
  }

  // --- undo ------------------------------------------------------------------------------------

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
                       {{"instance", Value::string(ref->name)}, {"metadata", registry::undo_patch(current->metadata, *patch)}});
    }
    if (!current) return std::nullopt;
    if (c.op == "deregister") return register_back(*ref, *current);
    if (c.op == "disable") return current->listed ? std::optional<Call>(on("enable")) : std::nullopt;
    if (c.op == "enable") return current->listed ? std::nullopt : std::optional<Call>(on("disable"));
    if (c.op == "set_weight")
      return make_call("set_weight", {{"instance", Value::string(ref->name)}, {"weight", Value::number(current->weight)}});
    if (c.op == "tag") {
      auto patch = registry::patch_arg(c, "metadata", error);
      if (!patch) return std::nullopt;
      return make_call("tag",
                       {{"instance", Value::string(ref->name)}, {"metadata", registry::undo_patch(current->metadata, *patch)}});
    }
    return std::nullopt;
  }

  // --- the keeper's thread: heartbeats and held-out instances ----------------------------------

  void start_beats(const Instance& in) {
    std::lock_guard<std::mutex> lock(beats_mu_);
    beats_[in.address()] = Beat{in, std::chrono::steady_clock::now(), kDefaultBeatMs};
  }

  void stop_beats(const Instance& in) {
    std::lock_guard<std::mutex> lock(beats_mu_);
    beats_.erase(in.address());
  }

  std::string grouped_service() const {
    if (s_.service.find("@@") != std::string::npos) return s_.service;
    return (s_.group.empty() ? std::string("DEFAULT_GROUP") : s_.group) + "@@" + s_.service;
  }

  void keeper_round() {
    send_due_beats();
    enforce_holds();
  }

  void send_due_beats() {
    std::vector<Beat> due;
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(beats_mu_);
      for (const auto& [addr, b] : beats_)
        if (b.due <= now) due.push_back(b);
    }
    for (Beat& b : due) {
      const Instance& in = b.instance;
      json beat{{"cluster", in.cluster}, {"ip", in.ip},
                {"port", in.port},       {"serviceName", grouped_service()},
                {"weight", in.weight},   {"metadata", json::parse(metadata_json(in.metadata))},
                {"scheduled", true}};
      Params p = service_params();
      p.push_back({"ip", in.ip});
      p.push_back({"port", std::to_string(in.port)});
      p.push_back({"clusterName", in.cluster});
      p.push_back({"beat", beat.dump()});
      Reply r = keeper_session_.send("PUT", path("/v1/ns/instance/beat"), p, Session::Expect::RawJson, kKeeperRequestMs);
      double next = b.interval_ms;
      if (r.ok()) {
        if (r.data.contains("clientBeatInterval") && r.data["clientBeatInterval"].is_number())
          next = std::clamp(r.data["clientBeatInterval"].get<double>(), 100.0, 60000.0);
        // 20404: the server forgot the instance (it expired); a client registers it again.
        if (r.data.value("code", 0) == 20404) {
          Params reg = instance_params(in, true);
          reg.push_back({"healthy", "true"});
          keeper_session_.send("POST", path("/v1/ns/instance"), reg, Session::Expect::Done, kKeeperRequestMs);
        }
      }
      std::lock_guard<std::mutex> lock(beats_mu_);
      if (auto it = beats_.find(in.address()); it != beats_.end()) {
        it->second.interval_ms = next;
        it->second.due = std::chrono::steady_clock::now() + std::chrono::microseconds(static_cast<long long>(next * 1000));
      }
    }
  }

  void enforce_holds() {
    auto items = holds_.items();
    if (items.empty()) return;
    std::vector<Instance> all;
    if (!list(keeper_session_, kKeeperRequestMs, all).ok()) return;
    for (const auto& item : items) {
      auto io = holds_.lock_io();
      if (!holds_.paused(item.ref.name)) continue;  // resumed meanwhile
      auto it = std::find_if(all.begin(), all.end(), [&](const Instance& in) { return in.matches(item.ref); });
      if (it == all.end()) {
        holds_.update(item.ref.name, true, item.held);
        continue;
      }
      if (!item.seen_absent) continue;  // still the registration that was there when paused
      Instance next = *it;
      next.enabled = false;
      Reply r = keeper_session_.send("PUT", path("/v1/ns/instance"), instance_params(next, true), Session::Expect::Done,
                                     kKeeperRequestMs);
      if (r.ok()) {
        holds_.update(item.ref.name, true, true);
        if (env_.note)
          env_.note(where() + ": " + item.ref.name + " registered again while its registration is paused; gray disabled it");
      }
    }
  }

  Settings s_;
  DriverEnv env_;
  Session session_;
  std::map<std::string, Instance> known_;  // by instance name: the last state seen, for register after deregister
  std::set<std::string> deregistered_;     // names gray deregistered
  Session keeper_session_;
  std::mutex beats_mu_;
  std::map<std::string, Beat> beats_;  // by ip:port
  registry::Holds holds_;
  registry::Keeper keeper_;  // last: its thread uses the members above
};

}  // namespace
}  // namespace nacos

std::unique_ptr<Driver> make_nacos(const std::string& instance, const Value& config, const DriverEnv& env) {
  DriverEnv e = env;
  if (!e.sleep) e.sleep = DriverEnv::process(env.base_dir).sleep;
  return std::make_unique<nacos::NacosRegistry>(nacos::read_settings(instance, config), e);
}

}  // namespace gray::plugins
