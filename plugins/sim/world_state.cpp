// The world's whole state as JSON (save/load, so a killed `gray run` resumes against the same
// world) and the summary that reports and tests read.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "plugins/sim/world.h"

namespace gray::sim {

using json = nlohmann::json;

namespace {

constexpr const char* kFormat = "gray-sim-world 1";

// JSON has no infinity: "never" is null.
json time_json(double t) { return std::isinf(t) ? json(nullptr) : json(t); }
double time_of(const json& j) { return j.is_null() ? kForever : j.get<double>(); }

json call_json(const Call& c) {
  json args = json::object();
  for (const auto& [k, v] : c.args) args[k] = to_json(v);
  return {{"op", c.op}, {"args", args}, {"key", c.key}, {"timeout_ms", c.timeout_ms}};
}

Call call_of(const json& j) {
  Call c;
  c.op = j.at("op").get<std::string>();
  for (const auto& [k, v] : j.at("args").items()) c.args[k] = from_json(v);
  c.key = j.at("key").get<std::string>();
  c.timeout_ms = j.at("timeout_ms").get<double>();
  return c;
}

ServerState server_state_of(const std::string& s) {
  return s == "drain" ? ServerState::Drain : s == "maint" ? ServerState::Maint : ServerState::Ready;
}

double rounded(double x) { return std::round(x * 1000) / 1000; }

}  // namespace

// Friend of World: the only code that sees every field.
struct WorldState {
  static json save(const World& w) {
    json j;
    j["format"] = kFormat;
    j["scenario"] = w.sc_.source;
    j["now_ms"] = w.now_;
    std::ostringstream rng;
    rng << w.rng_;
    j["rng"] = rng.str();
    for (const Host& h : w.hosts_)
      j["hosts"].push_back({{"name", h.name},
                            {"addr", h.addr},
                            {"port", h.port},
                            {"tags", h.tags},
                            {"version", h.version},
                            {"mode", h.mode},
                            {"state", state_name(h.state)},
                            {"busy_until", time_json(h.busy_until)},
                            {"next_version", h.next_version},
                            {"next_mode", h.next_mode},
                            {"served", h.served},
                            {"failed", h.failed}});
    j["gateways"] = json::array();
    for (const Gateway& g : w.gateways_) {
      json servers = json::array(), routes = json::array();
      for (const Server& s : g.servers)
        servers.push_back({{"name", s.name},
                           {"canary", s.canary},
                           {"rank", s.rank},
                           {"state", server_state_name(s.state)},
                           {"sessions", s.sessions}});
      for (const Route& r : g.routes)
        routes.push_back({{"match", r.match}, {"name", r.name}, {"op", r.op}, {"value", r.value}, {"target", r.target}});
      j["gateways"].push_back({{"name", g.name},
                               {"canary_percent", g.canary_percent},
                               {"scale", {g.scale[0], g.scale[1]}},
                               {"routes", routes},
                               {"servers", servers}});
    }
    j["registries"] = json::array();
    for (const Registry& r : w.registries_) {
      json members = json::array(), views = json::array();
      for (const Member& m : r.members)
        members.push_back({{"id", m.id},
                           {"registered", m.registered},
                           {"enabled", m.enabled},
                           {"paused", m.paused},
                           {"weight", m.weight},
                           {"metadata", to_json(Value::of_map(m.metadata))},
                           {"reregister_at", time_json(m.reregister_at)}});
      for (const ClientView& v : r.views)
        views.push_back({{"generation", v.generation},
                         {"next_refresh", time_json(v.next_refresh)},
                         {"members", v.members},
                         {"weights", v.weights}});
      j["registries"].push_back({{"name", r.name},
                                 {"generation", r.generation},
                                 {"canary_percent", r.canary_percent},
                                 {"every_host", r.every_host},
                                 {"members", members},
                                 {"views", views}});
    }
    j["meter"] = w.meter_.to_json();
    j["total"] = {w.total_.served, w.total_.failed};
    j["by_version"] = json::object();
    for (const auto& [v, c] : w.by_version_) j["by_version"][v] = {c.served, c.failed};
    j["keys"] = json::object();
    for (const auto& [k, rec] : w.keys_)
      j["keys"][k] = {{"calls", rec.calls},
                      {"applied", rec.applied},
                      {"failed", rec.failed},
                      {"done_at", rec.done_at},
                      {"value", to_json(rec.value)},
                      {"undo", rec.undo ? call_json(*rec.undo) : json(nullptr)}};
    j["replays"] = w.replays_;
    j["effects"] = json::array();
    for (const Effect& e : w.effects_) j["effects"].push_back({e.at_ms, e.kind, e.instance, e.op, e.detail, e.key});
    j["rule_uses"] = w.rule_uses_;
    j["host_fault_stage"] = w.host_fault_stage_;
    j["digest_tags"] = w.digest_tags_;
    return j;
  }

  static void load(World& w, const json& j) {
    w.now_ = j.at("now_ms").get<double>();
    std::istringstream rng(j.at("rng").get<std::string>());
    rng >> w.rng_;
    w.hosts_.clear();
    for (const json& h : j.value("hosts", json::array())) {
      Host x;
      x.name = h.at("name").get<std::string>();
      x.addr = h.at("addr").get<std::string>();
      x.port = h.at("port").get<int>();
      x.tags = h.at("tags").get<std::vector<std::string>>();
      w.set_version(x, h.at("version").get<std::string>());
      x.mode = h.at("mode").get<std::string>();
      parse_state(h.at("state").get<std::string>(), x.state);
      x.busy_until = time_of(h.at("busy_until"));
      x.next_version = h.at("next_version").get<std::string>();
      x.next_mode = h.at("next_mode").get<std::string>();
      x.served = h.at("served").get<double>();
      x.failed = h.at("failed").get<double>();
      w.hosts_.push_back(std::move(x));
    }
    w.gateways_.clear();
    for (const json& g : j.at("gateways")) {
      Gateway x;
      x.name = g.at("name").get<std::string>();
      auto spec = w.sc_.gateways.find(x.name);
      if (spec != w.sc_.gateways.end()) x.spec = spec->second;
      x.canary_percent = g.at("canary_percent").get<double>();
      x.scale[0] = g.at("scale").at(0).get<int>();
      x.scale[1] = g.at("scale").at(1).get<int>();
      for (const json& r : g.at("routes"))
        x.routes.push_back({r.at("match").get<std::string>(), r.at("name").get<std::string>(), r.at("op").get<std::string>(),
                            r.at("value").get<std::string>(), r.at("target").get<std::string>()});
      for (const json& s : g.at("servers")) {
        Server sv;
        sv.name = s.at("name").get<std::string>();
        sv.canary = s.at("canary").get<bool>();
        sv.rank = s.at("rank").get<int>();
        sv.state = server_state_of(s.at("state").get<std::string>());
        sv.sessions = s.at("sessions").get<double>();
        x.servers.push_back(sv);
      }
      w.gateways_.push_back(std::move(x));
    }
    w.registries_.clear();
    for (const json& r : j.at("registries")) {
      Registry x;
      x.name = r.at("name").get<std::string>();
      auto spec = w.sc_.registries.find(x.name);
      if (spec != w.sc_.registries.end()) x.spec = spec->second;
      x.generation = r.at("generation").get<std::uint64_t>();
      x.canary_percent = r.at("canary_percent").get<double>();
      x.every_host = r.at("every_host").get<bool>();
      for (const json& m : r.at("members")) {
        Member mb;
        mb.id = m.at("id").get<std::string>();
        mb.registered = m.at("registered").get<bool>();
        mb.enabled = m.at("enabled").get<bool>();
        mb.paused = m.at("paused").get<bool>();
        mb.weight = m.at("weight").get<double>();
        mb.metadata = from_json(m.at("metadata")).fields();
        mb.reregister_at = time_of(m.at("reregister_at"));
        x.by_id[mb.id] = x.members.size();
        x.members.push_back(std::move(mb));
      }
      for (const json& v : r.at("views")) {
        ClientView cv;
        cv.generation = v.at("generation").get<std::uint64_t>();
        cv.next_refresh = time_of(v.at("next_refresh"));
        cv.members = v.at("members").get<std::vector<size_t>>();
        cv.weights = v.at("weights").get<std::vector<double>>();
        x.views.push_back(std::move(cv));
      }
      w.registries_.push_back(std::move(x));
    }
    w.relink();
    w.meter_.from_json(j.at("meter"));
    w.total_ = {j.at("total").at(0).get<double>(), j.at("total").at(1).get<double>()};
    w.by_version_.clear();
    for (const auto& [v, c] : j.at("by_version").items()) w.by_version_[v] = {c.at(0).get<double>(), c.at(1).get<double>()};
    w.keys_.clear();
    for (const auto& [k, rec] : j.at("keys").items()) {
      KeyRecord kr;
      kr.calls = rec.at("calls").get<int>();
      kr.applied = rec.at("applied").get<int>();
      kr.failed = rec.value("failed", "");
      kr.done_at = rec.value("done_at", 0.0);
      kr.value = from_json(rec.at("value"));
      if (!rec.at("undo").is_null()) kr.undo = call_of(rec.at("undo"));
      w.keys_[k] = std::move(kr);
    }
    w.replays_ = j.at("replays").get<int>();
    w.effects_.clear();
    for (const json& e : j.at("effects"))
      w.effects_.push_back({e.at(0).get<double>(), e.at(1).get<std::string>(), e.at(2).get<std::string>(),
                            e.at(3).get<std::string>(), e.at(4).get<std::string>(), e.at(5).get<std::string>()});
    w.rule_uses_ = j.at("rule_uses").get<std::vector<int>>();
    w.host_fault_stage_ = j.at("host_fault_stage").get<std::vector<int>>();
    w.digest_tags_ = j.at("digest_tags").get<std::map<std::string, std::string>>();
  }
};

bool World::save(const std::string& path, std::string& error) const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  const std::string text = WorldState::save(*this).dump();
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    error = tmp + ": cannot write";
    return false;
  }
  // Flushed to disk before the rename, so a crash leaves either the old file or the new one.
  bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  written = std::fclose(f) == 0 && written;
  if (!written || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    error = path + ": cannot write";
    return false;
  }
  return true;
}

std::unique_ptr<World> World::load(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot read";
    return nullptr;
  }
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = path + ": not a saved world (bad JSON)";
    return nullptr;
  }
  if (j.value("format", "") != kFormat) {
    error = path + ": not a saved world of this version (expected format \"" + std::string(kFormat) + "\")";
    return nullptr;
  }
  std::unique_ptr<World> w = from_scenario(j.at("scenario"), error);
  if (!w) {
    error = path + ": " + error;
    return nullptr;
  }
  try {
    WorldState::load(*w, j);
  } catch (const json::exception& e) {
    error = path + ": damaged saved world: " + e.what();
    return nullptr;
  }
  return w;
}

Summary World::summary() const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Summary s;
  s.now_ms = now_;
  s.total = total_;
  s.by_version = by_version_;
  for (const Gateway& g : gateways_) s.weights[g.name] = g.canary_percent;
  for (const Registry& r : registries_) {
    std::vector<std::string>& ids = s.members[r.name];
    for (const Member& m : r.members)
      if (m.registered) ids.push_back(m.id);
  }
  for (const Host& h : hosts_) {
    s.host_versions[h.name] = h.version;
    s.host_states[h.name] = state_name(h.state);
  }
  for (const auto& [k, rec] : keys_)
    if (rec.applied > 0) s.applied[k] = rec.applied;
  s.replays = replays_;
  s.effects = effects_.size();
  return s;
}

json Summary::to_json() const {
  json j;
  j["now_ms"] = now_ms;
  j["total"] = {{"served", rounded(total.served)}, {"failed", rounded(total.failed)}};
  j["by_version"] = json::object();
  for (const auto& [v, c] : by_version) j["by_version"][v] = {{"served", rounded(c.served)}, {"failed", rounded(c.failed)}};
  j["weights"] = weights;
  j["registries"] = members;
  j["hosts"] = json::object();
  for (const auto& [name, version] : host_versions) j["hosts"][name] = {{"version", version}, {"state", host_states.at(name)}};
  json twice = json::array();
  for (const auto& [k, n] : applied)
    if (n > 1) twice.push_back(k);
  j["keys"] = {{"applied", applied.size()}, {"replayed", replays}, {"applied_twice", twice}};
  j["effects"] = effects;
  return j;
}

}  // namespace gray::sim
