#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>
#include <set>

#include "plugins/etcd/etcd.h"
#include "plugins/etcd/etcd_client.h"
#include "plugins/etcd/etcd_layout.h"
#include "plugins/registry/keeper.h"
#include "plugins/registry/registry.h"

namespace gray::plugins {
namespace etcd {
namespace {

using nlohmann::json;
using registry::InstanceRef;
using registry::make_call;
using registry::Metadata;
using registry::Patch;

// How often a compare-and-swap write is tried when another writer keeps changing the keys.
constexpr int kCasAttempts = 5;
// Kratos' selector gives an instance without a weight in its metadata this weight.
constexpr double kKratosDefaultWeight = 100;
constexpr long kMaxWeight = 10000;

struct Settings {
  std::string instance;
  ClientConfig client;
  std::string prefix;   // no trailing slash
  std::string service;  // the name kratos readers filter on
  std::string control;  // where parked copies and pause flags live; no trailing slash
  Layout layout = Layout::Kratos;
  long long ttl_s = 15;
  registry::CanarySelection canary;
};

std::string trim_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Settings read_settings(const std::string& instance, const Value& config) {
  Settings s;
  s.instance = instance;
  for (std::string e : config_strings(instance, config, "endpoints")) {
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0)
      throw DriverError(instance + ": field 'endpoints' holds '" + e + "', which is not an http:// or https:// URL");
    s.client.endpoints.push_back(e);
  }
  if (s.client.endpoints.empty()) throw DriverError(instance + ": field 'endpoints' is empty");
  s.prefix = trim_slashes(config_string(instance, config, "prefix"));
  if (s.prefix.empty() || s.prefix == "/")
    throw DriverError(instance + ": field 'prefix' must name a key prefix such as /microservices/checkout");
  std::string layout = config_string(instance, config, "layout", "kratos");
  if (layout == "kratos")
    s.layout = Layout::Kratos;
  else if (layout == "go-zero" || layout == "gozero")
    s.layout = Layout::GoZero;
  else
    throw DriverError(instance + ": field 'layout' must be \"kratos\" or \"go-zero\", not \"" + layout + "\"");
  std::string last = s.prefix.substr(s.prefix.rfind('/') + 1);
  s.service = config_string(instance, config, "service", last);
  if (s.service.empty() || s.service.find('/') != std::string::npos)
    throw DriverError(instance + ": field 'service' must be a service name without '/'");
  s.control = trim_slashes(config_string(instance, config, "control_prefix", "/gray"));
  if (s.control.empty() || s.control == "/")
    throw DriverError(instance + ": field 'control_prefix' must name a key prefix such as /gray");
  if (s.control == s.prefix || s.control.rfind(s.prefix + "/", 0) == 0)
    throw DriverError(instance + ": field 'control_prefix' must not lie under the service prefix " + s.prefix +
                      ": frameworks read every key there as an instance");
  double ttl_ms = config_ms(instance, config, "lease_ttl", 15000);
  s.ttl_s = std::max(1LL, static_cast<long long>((ttl_ms + 999) / 1000));
  s.client.username = config_string(instance, config, "username", "");
  s.client.password = config_string(instance, config, "password", "");
  if (!s.client.username.empty() && s.client.password.empty())
    throw DriverError(instance + ": field 'password' is required with 'username'");
  s.canary = registry::canary_selection(instance, config);
  return s;
}

using registry::Budget;

long long unix_now() { return static_cast<long long>(std::time(nullptr)); }

// Keeps the leases of the registrations gray made alive from a thread of its own, for as long as
// the driver lives. A lease that holds nothing but gray's marker any more (the instance was
// deregistered, or its agent put the key back under a lease of its own) is revoked and forgotten.
class LeaseKeeper {
 public:
  LeaseKeeper(const ClientConfig& config, long long ttl_s, std::string marker_dir, const DriverEnv& env)
      : client_(config, env.sleep),
        marker_dir_(std::move(marker_dir)),
        round_ms_(static_cast<double>(ttl_s) * 1000 / 3),
        note_(env.note),
        keeper_(round_ms_, [this] { round(); }) {}

  void keep(long long lease) {
    std::lock_guard<std::mutex> lock(mu_);
    leases_.insert(lease);
  }

 private:
  void drop(long long lease) {
    std::lock_guard<std::mutex> lock(mu_);
    leases_.erase(lease);
  }

  void round() {
    std::vector<long long> leases;
    {
      std::lock_guard<std::mutex> lock(mu_);
      leases.assign(leases_.begin(), leases_.end());
    }
    for (long long lease : leases) {
      long long ttl = 0;
      if (!client_.keepalive(lease, round_ms_, ttl).ok()) continue;  // etcd away: the next round tries again
      if (ttl <= 0) {
        drop(lease);
        if (note_)
          note_(client_.where() + ": lease " + std::to_string(lease) +
                " expired before gray renewed it; the registrations on it are gone");
        continue;
      }
      long long left = 0;
      std::vector<std::string> keys;
      if (!client_.lease_keys(lease, round_ms_, left, keys).ok() || left <= 0) continue;
      // Only gray's own marker left on it: nothing registered depends on this lease any more.
      bool in_use = std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return k.rfind(marker_dir_, 0) != 0; });
      if (!in_use) {
        client_.revoke(lease, round_ms_);
        drop(lease);
      }
    }
  }

  Client client_;
  std::string marker_dir_;
  double round_ms_;
  std::function<void(const std::string&)> note_;
  std::mutex mu_;
  std::set<long long> leases_;
  registry::Keeper keeper_;  // last: its thread uses the members above
};

// A copy of a deregistered or disabled instance, kept under the control prefix.
struct Parked {
  KeyValue kv;  // the parked record itself
  Entry entry;  // the instance as it was registered (its key and value)
  std::string reason;
};

// What etcd holds about one instance.
struct InstanceState {
  std::string id;  // names its parked copy and pause flag
  std::vector<Entry> live;
  std::optional<Parked> parked;
  std::optional<KeyValue> paused;
};

// One attempt's decision, made from what etcd holds now.
struct Plan {
  enum class Kind { Apply, Done, Refuse } kind = Kind::Apply;
  std::string why;  // Refuse: for people
  std::vector<Client::Compare> compares;
  std::vector<Client::Op> ops;
  std::optional<Call> undo;
  bool uses_fresh_lease = false;

  void done() { kind = Kind::Done; }
  void refuse(std::string text) {
    kind = Kind::Refuse;
    why = std::move(text);
  }
};

// A lease for a new registration, granted on first use and reused by every attempt of one write.
// When only planning (undo_for), no lease is granted.
class FreshLease {
 public:
  FreshLease(Client& client, long long ttl_s, bool dry) : client_(client), ttl_s_(ttl_s), dry_(dry) {}
  Reply get(Budget& budget, long long& id) {
    if (dry_ || id_ != 0) {
      id = id_;
      return Reply{};
    }
    Reply r = client_.grant(ttl_s_, budget.left(), id_);
    id = id_;
    return r;
  }
  long long id() const { return id_; }

 private:
  Client& client_;
  long long ttl_s_;
  bool dry_;
  long long id_ = 0;
};

class EtcdRegistry final : public Driver {
 public:
  EtcdRegistry(Settings s, const DriverEnv& env)
      : s_(std::move(s)), env_(env), client_(s_.client, env.sleep), keeper_(s_.client, s_.ttl_s, lease_marker_dir(), env) {}

  Kind kind() const override { return Kind::Registry; }

  Result call(const Call& c) override {
    Budget budget(c.timeout_ms);
    Result r;
    try {
      r = dispatch(c, budget);
    } catch (const std::exception& e) {
      r = error_result(where() + ": " + c.op + ": " + e.what());
    }
    // The undo names the instance by its address too: its id may not be the host's name.
    if (r.undo) registry::complete_undo(*r.undo, c, "", 0);
    r.elapsed_ms = budget.elapsed();
    return r;
  }

  std::optional<Call> undo_for(const Call& c) override {
    Budget budget(c.timeout_ms);
    try {
      Plan plan;
      std::string error;
      FreshLease lease(client_, s_.ttl_s, true);
      auto planner = planner_for(c, error);
      if (!planner) return std::nullopt;
      Reply r = (*planner)(plan, budget, lease);
      if (!r.ok() || plan.kind != Plan::Kind::Apply || !plan.undo) return std::nullopt;
      registry::complete_undo(*plan.undo, c, "", 0);
      return plan.undo;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

 private:
  using Planner = std::function<Reply(Plan&, Budget&, FreshLease&)>;

  std::string where() const { return client_.where(); }

  Result from_reply(const Reply& r, const std::string& what) const {
    std::string text = where() + ": " + what + ": " + r.message;
    return r.kind == Reply::Kind::Refused ? failed_result(text) : error_result(text);
  }

  std::string key_of(const std::string& id) const { return s_.prefix + "/" + id; }
  // Each lease gray grants holds a marker <control>/leases/<lease id>, so any gray process can tell
  // gray's leases (which die with the gray that keeps them) from those a service keeps alive.
  std::string lease_marker_dir() const { return s_.control + "/leases/"; }
  std::string parked_dir() const { return s_.control + "/parked/" + s_.service + "/"; }
  std::string paused_key(const std::string& id) const { return s_.control + "/paused/" + s_.service + "/" + id; }
  bool go_zero() const { return s_.layout == Layout::GoZero; }

  Result dispatch(const Call& c, Budget& budget) {
    if (c.op == "count") return count(c, budget);
    if (c.op == "registered") return registered(c, budget);
    std::string error;
    auto planner = planner_for(c, error);
    if (!planner) {
      if (error.empty()) error = "the etcd registry has no operation '" + c.op + "'";
      return failed_result(where() + ": " + error);
    }
    return apply(describe(c), *planner, budget);
  }

  static std::string describe(const Call& c) {
    auto it = c.args.find("instance");
    if (c.op == "weight") {
      auto p = c.args.find("canary");
      return "weight canary " + (p == c.args.end() || p->second.is_null() ? std::string("(clear)") : p->second.text());
    }
    return c.op + (it == c.args.end() ? "" : " " + it->second.text());
  }

  // The plan for an effect, or nullopt (with `error` set for a bad argument).
  std::optional<Planner> planner_for(const Call& c, std::string& error) {
    if (c.op == "weight") return weight_planner(c, error);
    static const std::set<std::string> instance_ops = {
        "register", "deregister", "enable", "disable", "set_weight", "tag", "pause_registration", "resume_registration"};
    if (!instance_ops.count(c.op)) return std::nullopt;
    auto ref = registry::instance_ref(c, error);
    if (!ref) return std::nullopt;
    if (c.op == "register" || c.op == "tag") {
      auto patch = registry::patch_arg(c, "metadata", error);
      if (!error.empty()) return std::nullopt;
      if (c.op == "tag" && !patch) {
        error = "tag: the metadata argument is required";
        return std::nullopt;
      }
      if (c.op == "register")
        return Planner(
            [this, c, r = *ref, patch](Plan& p, Budget& b, FreshLease& l) { return plan_register(c, r, patch, p, b, l); });
      return Planner([this, c, r = *ref, patch](Plan& p, Budget& b, FreshLease&) { return plan_tag(c, r, *patch, p, b); });
    }
    if (c.op == "deregister" || c.op == "disable")
      return Planner([this, c, r = *ref](Plan& p, Budget& b, FreshLease&) { return plan_park(c, r, p, b); });
    if (c.op == "enable")
      return Planner([this, c, r = *ref](Plan& p, Budget& b, FreshLease& l) { return plan_enable(c, r, p, b, l); });
    if (c.op == "set_weight") {
      const Value* w = registry::arg(c, "weight");
      if (!w || !w->is_numeric() || w->num < 0 || w->num != static_cast<double>(static_cast<long long>(w->num))) {
        error = "set_weight: weight must be a whole number of at least 0 (kratos reads it as an integer)";
        return std::nullopt;
      }
      Patch patch{{"weight", registry::number_text(w->num)}};
      return Planner([this, c, r = *ref, patch](Plan& p, Budget& b, FreshLease&) { return plan_tag(c, r, patch, p, b); });
    }
    return Planner([this, c, r = *ref](Plan& p, Budget& b, FreshLease&) { return plan_pause(c, r, p, b); });
  }

  // Runs `planner` and its transaction until the transaction's compares hold, at most
  // kCasAttempts times.
  Result apply(const std::string& what, const Planner& planner, Budget& budget) {
    FreshLease lease(client_, s_.ttl_s, false);
    auto give_back_lease = [&] {
      if (lease.id() != 0) client_.revoke(lease.id(), budget.left());
    };
    for (int attempt = 1; attempt <= kCasAttempts; ++attempt) {
      Plan plan;
      Reply r = planner(plan, budget, lease);
      if (!r.ok()) {
        give_back_lease();
        return from_reply(r, what);
      }
      if (plan.kind == Plan::Kind::Refuse) {
        give_back_lease();
        return failed_result(where() + ": " + what + ": " + plan.why);
      }
      if (plan.kind == Plan::Kind::Done) {
        give_back_lease();
        Result done = ok_result();
        done.replayed = true;
        return done;
      }
      if (plan.uses_fresh_lease)
        plan.ops.push_back({true, lease_marker_dir() + std::to_string(lease.id()),
                            json{{"granted_by", "gray"}, {"for", what}}.dump(), lease.id()});
      bool succeeded = false;
      Reply t = client_.txn(plan.compares, plan.ops, budget.left(), succeeded);
      if (!t.ok()) {
        give_back_lease();
        return from_reply(t, what);
      }
      if (succeeded) {
        if (plan.uses_fresh_lease)
          keeper_.keep(lease.id());
        else
          give_back_lease();
        Result ok = ok_result();
        ok.undo = plan.undo;
        return ok;
      }
      // Another writer changed a key between our read and our write: read again.
      env_.sleep(10.0 * attempt);
    }
    give_back_lease();
    return failed_result(where() + ": " + what + ": the keys changed under gray " + std::to_string(kCasAttempts) +
                         " times in a row (another writer is updating them); nothing was written, try again");
  }

  // --- reading ---------------------------------------------------------------------------------

  Reply list_live(Budget& budget, std::vector<Entry>& out) {
    out.clear();
    std::vector<KeyValue> kvs;
    Reply r = client_.range(s_.prefix + "/", true, budget.left(), kvs);
    if (!r.ok()) return r;
    for (const KeyValue& kv : kvs) {
      Entry e;
      if (parse_entry(s_.layout, s_.prefix, s_.service, kv, e)) out.push_back(std::move(e));
    }
    return r;
  }

  Reply list_parked(Budget& budget, std::vector<Parked>& out) {
    out.clear();
    std::vector<KeyValue> kvs;
    Reply r = client_.range(parked_dir(), true, budget.left(), kvs);
    if (!r.ok()) return r;
    for (const KeyValue& kv : kvs) {
      json doc = json::parse(kv.value, nullptr, false);
      if (!doc.is_object() || !doc.contains("key") || !doc["key"].is_string() || !doc.contains("value") ||
          !doc["value"].is_string())
        continue;
      Parked p;
      p.kv = kv;
      p.reason = doc.value("reason", "");
      KeyValue original;
      original.key = doc["key"].get<std::string>();
      original.value = doc["value"].get<std::string>();
      original.lease = doc.contains("lease") ? as_int(doc["lease"]) : 0;
      if (!parse_entry(s_.layout, s_.prefix, s_.service, original, p.entry)) continue;
      // The parked record's own name is the id gray uses for it.
      p.entry.id = kv.key.substr(parked_dir().size());
      out.push_back(std::move(p));
    }
    return r;
  }

  Reply read_instance(const InstanceRef& ref, Budget& budget, InstanceState& st) {
    std::vector<Entry> live;
    Reply r = list_live(budget, live);
    if (!r.ok()) return r;
    for (Entry& e : live)
      if (e.matches(ref)) st.live.push_back(std::move(e));
    std::vector<Parked> parked;
    r = list_parked(budget, parked);
    if (!r.ok()) return r;
    for (Parked& p : parked)
      if (p.entry.matches(ref)) {
        st.parked = std::move(p);
        break;
      }
    if (!st.live.empty())
      st.id = st.live.front().id;
    else if (st.parked)
      st.id = st.parked->entry.id;
    else if (go_zero())
      st.id = ref.has_address() ? ref.address() : "";
    else
      st.id = ref.name;
    if (st.id.empty()) return r;
    std::vector<KeyValue> flag;
    r = client_.range(paused_key(st.id), false, budget.left(), flag);
    if (r.ok() && !flag.empty()) st.paused = flag.front();
    return r;
  }

  // --- effects on one instance -----------------------------------------------------------------

  std::string parked_record(const Entry& e, const std::string& reason, const Call& c, const InstanceRef& ref) const {
    return json{{"key", e.kv.key},    {"value", e.kv.value},  {"lease", std::to_string(e.kv.lease)},
                {"reason", reason},   {"instance", ref.name}, {"parked_by", c.key},
                {"since", unix_now()}}
        .dump();
  }

  // deregister and disable: the instance's key goes, a copy is parked under the control prefix.
  Reply plan_park(const Call& c, const InstanceRef& ref, Plan& plan, Budget& budget) {
    InstanceState st;
    Reply r = read_instance(ref, budget, st);
    if (!r.ok()) return r;
    if (st.live.empty()) {
      plan.done();
      return r;
    }
    const std::string reason = c.op == "disable" ? "disabled" : "deregistered";
    const std::string parked_key = parked_dir() + st.id;
    for (const Entry& e : st.live) {
      plan.compares.push_back({e.kv.key, e.kv.mod_revision});
      plan.ops.push_back({false, e.kv.key, "", 0});
    }
    plan.compares.push_back({parked_key, st.parked && st.parked->kv.key == parked_key ? st.parked->kv.mod_revision : 0});
    plan.ops.push_back({true, parked_key, parked_record(st.live.front(), reason, c, ref), 0});
    plan.undo = make_call(c.op == "disable" ? "enable" : "register", {{"instance", Value::string(ref.name)}});
    return r;
  }

  // Puts `value` under a fresh lease at the instance's key (go-zero: a key named by that lease).
  Reply put_registration(const std::string& kratos_key, const std::string& value, Plan& plan, Budget& budget, FreshLease& lease) {
    long long id = 0;
    Reply r = lease.get(budget, id);
    if (!r.ok()) return r;
    const std::string key = go_zero() ? s_.prefix + "/" + std::to_string(id) : kratos_key;
    plan.compares.push_back({key, 0});
    plan.ops.push_back({true, key, value, id});
    plan.uses_fresh_lease = true;
    return r;
  }

  // Puts a parked registration back. While the lease it was on still lives and is not one of
  // gray's (its service keeps the lease alive, as kratos and go-zero clients do), it goes back onto
  // that lease and key, so it outlives gray; otherwise onto a fresh lease that gray keeps alive.
  Reply restore_parked(const Parked& parked, const std::string& value, Plan& plan, Budget& budget, FreshLease& lease) {
    const long long original = parked.entry.kv.lease;
    if (original != 0) {
      long long ttl = -1;
      std::vector<std::string> keys;
      Reply r = client_.lease_keys(original, budget.left(), ttl, keys);
      if (!r.ok()) return r;
      const bool grays = std::find(keys.begin(), keys.end(), lease_marker_dir() + std::to_string(original)) != keys.end();
      if (ttl > 0 && !grays) {
        plan.compares.push_back({parked.entry.kv.key, 0});
        plan.ops.push_back({true, parked.entry.kv.key, value, original});
        return r;
      }
    }
    return put_registration(parked.entry.kv.key, value, plan, budget, lease);
  }

  Reply plan_register(const Call& c, const InstanceRef& ref, const std::optional<Patch>& patch, Plan& plan, Budget& budget,
                      FreshLease& lease) {
    InstanceState st;
    Reply r = read_instance(ref, budget, st);
    if (!r.ok()) return r;
    if (go_zero() && patch && !patch->empty()) {
      plan.refuse("the go-zero layout keeps only host:port in etcd, so metadata cannot be registered; register without metadata");
      return r;
    }
    if (!st.live.empty()) {
      const Entry& e = st.live.front();
      Metadata md = e.metadata();
      if (!patch || !registry::apply_patch(md, *patch)) {
        plan.done();
        return r;
      }
      plan.compares.push_back({e.kv.key, e.kv.mod_revision});
      plan.ops.push_back({true, e.kv.key, kratos_with_metadata(e.doc, md), e.kv.lease});
      plan.undo =
          make_call("tag", {{"instance", Value::string(ref.name)}, {"metadata", registry::undo_patch(e.metadata(), *patch)}});
      return r;
    }
    std::string value;
    if (st.parked) {
      value = st.parked->entry.kv.value;
      if (!go_zero() && patch) {
        Metadata md = st.parked->entry.metadata();
        registry::apply_patch(md, *patch);
        value = kratos_with_metadata(st.parked->entry.doc, md);
      }
      plan.compares.push_back({st.parked->kv.key, st.parked->kv.mod_revision});
      plan.ops.push_back({false, st.parked->kv.key, "", 0});
    } else if (!ref.has_address()) {
      plan.refuse("etcd has no parked copy of " + ref.name +
                  " and its address is unknown; register it with the host's inventory record (addr, port) or as host:port");
      return r;
    } else if (go_zero()) {
      value = ref.address();
    } else {
      Metadata md;
      if (std::string v = ref.var("version"); !v.empty()) md["version"] = v;
      if (patch) registry::apply_patch(md, *patch);
      value = kratos_value(st.id, s_.service, md, ref.address());
    }
    plan.undo = make_call("deregister", {{"instance", Value::string(ref.name)}});
    if (st.parked) return restore_parked(*st.parked, value, plan, budget, lease);
    return put_registration(key_of(st.id), value, plan, budget, lease);
  }

  Reply plan_enable(const Call& c, const InstanceRef& ref, Plan& plan, Budget& budget, FreshLease& lease) {
    InstanceState st;
    Reply r = read_instance(ref, budget, st);
    if (!r.ok()) return r;
    if (!st.live.empty()) {
      plan.done();
      return r;
    }
    if (!st.parked) {
      plan.refuse(ref.name + " is neither registered under " + s_.prefix + " nor parked under " + parked_dir() +
                  "; register it instead");
      return r;
    }
    plan.compares.push_back({st.parked->kv.key, st.parked->kv.mod_revision});
    plan.ops.push_back({false, st.parked->kv.key, "", 0});
    plan.undo = make_call("disable", {{"instance", Value::string(ref.name)}});
    return restore_parked(*st.parked, st.parked->entry.kv.value, plan, budget, lease);
  }

  // tag and set_weight: merge metadata into the registration, or into its parked copy.
  Reply plan_tag(const Call& c, const InstanceRef& ref, const Patch& patch, Plan& plan, Budget& budget) {
    if (go_zero()) {
      plan.refuse("the go-zero layout keeps only host:port in etcd: there is no metadata to " +
                  std::string(c.op == "set_weight" ? "hold a weight" : "tag"));
      return Reply{};
    }
    InstanceState st;
    Reply r = read_instance(ref, budget, st);
    if (!r.ok()) return r;
    const Entry* target = !st.live.empty() ? &st.live.front() : st.parked ? &st.parked->entry : nullptr;
    if (!target) {
      plan.refuse(ref.name + " is not registered under " + s_.prefix);
      return r;
    }
    Metadata md = target->metadata();
    if (!registry::apply_patch(md, patch)) {
      plan.done();
      return r;
    }
    std::string value = kratos_with_metadata(target->doc, md);
    if (!st.live.empty()) {
      plan.compares.push_back({target->kv.key, target->kv.mod_revision});
      plan.ops.push_back({true, target->kv.key, value, target->kv.lease});
    } else {
      json record = json::parse(st.parked->kv.value);
      record["value"] = value;
      plan.compares.push_back({st.parked->kv.key, st.parked->kv.mod_revision});
      plan.ops.push_back({true, st.parked->kv.key, record.dump(), 0});
    }
    Value previous = registry::undo_patch(target->metadata(), patch);
    auto old_weight = previous.fields().find("weight");
    if (c.op == "set_weight" && old_weight != previous.fields().end() && !old_weight->second.is_null()) {
      if (auto w = registry::parse_number(old_weight->second.str))
        plan.undo = make_call("set_weight", {{"instance", Value::string(ref.name)}, {"weight", Value::number(*w)}});
    }
    if (!plan.undo) plan.undo = make_call("tag", {{"instance", Value::string(ref.name)}, {"metadata", previous}});
    return r;
  }

  // The pause flag: <control>/paused/<service>/<id>, which the node's agent watches.
  Reply plan_pause(const Call& c, const InstanceRef& ref, Plan& plan, Budget& budget) {
    InstanceState st;
    Reply r = read_instance(ref, budget, st);
    if (!r.ok()) return r;
    if (st.id.empty()) {
      plan.refuse("the go-zero layout names instances by host:port; pass the host's inventory record (addr, port) or host:port");
      return r;
    }
    const bool pause = c.op == "pause_registration";
    // A drain deregisters, then pauses: an agent polling in between may already have put the
    // instance back. A registration newer than gray's parked copy is that one; it goes again.
    std::vector<const Entry*> came_back;
    if (pause && st.parked)
      for (const Entry& e : st.live)
        if (e.kv.create_revision > st.parked->kv.mod_revision) came_back.push_back(&e);
    if (pause == st.paused.has_value() && came_back.empty()) {
      plan.done();
      return r;
    }
    const std::string key = paused_key(st.id);
    if (pause) {
      for (const Entry* e : came_back) {
        plan.compares.push_back({e->kv.key, e->kv.mod_revision});
        plan.ops.push_back({false, e->kv.key, "", 0});
      }
      if (!st.paused) {
        plan.compares.push_back({key, 0});
        plan.ops.push_back(
            {true, key, json{{"paused_by", "gray"}, {"instance", ref.name}, {"key", c.key}, {"since", unix_now()}}.dump(), 0});
      }
    } else {
      plan.compares.push_back({key, st.paused->mod_revision});
      plan.ops.push_back({false, key, "", 0});
    }
    if (pause != st.paused.has_value())
      plan.undo = make_call(pause ? "resume_registration" : "pause_registration", {{"instance", Value::string(ref.name)}});
    return r;
  }

  // --- weights ---------------------------------------------------------------------------------

  static std::optional<double> weight_of(const Entry& e) {
    Metadata md = e.metadata();
    auto it = md.find("weight");
    return it == md.end() ? std::nullopt : registry::parse_number(it->second);
  }

  std::optional<Planner> weight_planner(const Call& c, std::string& error) {
    bool clear = false;
    std::optional<double> percent;
    std::map<std::string, Value> exact;
    if (const Value* w = registry::arg(c, "weights"); w && w->kind == Value::Kind::Map) {
      exact = w->fields();  // an undo putting back each instance's weight as it was
    } else {
      percent = registry::percent_arg(c, error, clear);
      if (!error.empty()) return std::nullopt;
    }
    return Planner(
        [this, percent, clear, exact](Plan& p, Budget& b, FreshLease&) { return plan_weight(percent, clear, exact, p, b); });
  }

  Reply plan_weight(std::optional<double> percent, bool clear, const std::map<std::string, Value>& exact, Plan& plan,
                    Budget& budget) {
    if (go_zero()) {
      plan.refuse(
          "the go-zero layout keeps only host:port in etcd: there is no metadata to hold weights; shift traffic at a gateway");
      return Reply{};
    }
    if (percent && !s_.canary.configured()) {
      plan.refuse(
          "set canary (instance ids or host:port) or canary_version in the registry's configuration so gray knows which "
          "instances are the canary");
      return Reply{};
    }
    std::vector<Entry> live;
    Reply r = list_live(budget, live);
    if (!r.ok()) return r;
    // The weight each instance should have; nullopt removes it.
    std::map<std::string, std::optional<std::string>> target;
    if (!exact.empty()) {
      for (const Entry& e : live)
        if (auto it = exact.find(e.id); it != exact.end())
          target[e.id] = it->second.is_null() ? std::nullopt : std::optional<std::string>(registry::number_text(it->second.num));
    } else if (clear) {
      for (const Entry& e : live) target[e.id] = std::nullopt;
    } else {
      size_t n_canary = 0;
      for (const Entry& e : live) n_canary += is_canary(e);
      const size_t n_stable = live.size() - n_canary;
      if (*percent > 0 && n_canary == 0) {
        plan.refuse("no registered instance of " + s_.service + " matches " + s_.canary.describe());
        return r;
      }
      if (*percent < 100 && n_stable == 0) {
        plan.refuse("every registered instance of " + s_.service + " matches " + s_.canary.describe() +
                    ": there is no stable instance to keep traffic on");
        return r;
      }
      registry::Split split = registry::split_weights(*percent, n_canary, n_stable, kMaxWeight);
      for (const Entry& e : live) target[e.id] = std::to_string(is_canary(e) ? split.canary : split.stable);
    }
    Map before;
    std::vector<std::pair<bool, double>> shares;
    bool any_weight = false;
    for (const Entry& e : live) {
      auto w = weight_of(e);
      any_weight = any_weight || w.has_value();
      before[e.id] = w ? Value::number(*w) : Value::null();
      shares.push_back({is_canary(e), w.value_or(kKratosDefaultWeight)});
      auto t = target.find(e.id);
      if (t == target.end()) continue;
      Metadata md = e.metadata();
      if (!registry::apply_patch(md, Patch{{"weight", t->second}})) continue;
      plan.compares.push_back({e.kv.key, e.kv.mod_revision});
      plan.ops.push_back({true, e.kv.key, kratos_with_metadata(e.doc, md), e.kv.lease});
    }
    if (plan.ops.empty()) {
      plan.done();
      return r;
    }
    auto share = any_weight && s_.canary.configured() ? registry::canary_share(shares) : std::nullopt;
    plan.undo =
        make_call("weight", {{"canary", share ? Value::percent(*share) : Value::null()}, {"weights", Value::of_map(before)}});
    return r;
  }

  bool is_canary(const Entry& e) const { return s_.canary.matches(e.id, e.addresses, e.version()); }

  // --- reads -----------------------------------------------------------------------------------

  Result count(const Call& c, Budget& budget) {
    const Value* v = registry::arg(c, "version");
    if (v && go_zero())
      return failed_result(where() + ": count: the go-zero layout keeps no version in etcd; count without a version");
    std::vector<Entry> live;
    Reply r = list_live(budget, live);
    if (!r.ok()) return from_reply(r, "count instances under " + s_.prefix);
    double n = 0;
    for (const Entry& e : live)
      if (!v || e.version() == v->text()) ++n;
    return ok_result(Value::number(n));
  }

  Result registered(const Call& c, Budget& budget) {
    std::string error;
    auto ref = registry::instance_ref(c, error);
    if (!ref) return failed_result(where() + ": " + error);
    std::vector<Entry> live;
    Reply r = list_live(budget, live);
    if (!r.ok()) return from_reply(r, "registered " + ref->name);
    bool found = std::any_of(live.begin(), live.end(), [&](const Entry& e) { return e.matches(*ref); });
    return ok_result(Value::boolean(found));
  }

  Settings s_;
  DriverEnv env_;
  Client client_;
  LeaseKeeper keeper_;
};

}  // namespace
}  // namespace etcd

std::unique_ptr<Driver> make_etcd(const std::string& instance, const Value& config, const DriverEnv& env) {
  DriverEnv e = env;
  if (!e.sleep) e.sleep = DriverEnv::process(env.base_dir).sleep;
  return std::make_unique<etcd::EtcdRegistry>(etcd::read_settings(instance, config), e);
}

}  // namespace gray::plugins
