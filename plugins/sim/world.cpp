#include "plugins/sim/world.h"

#include <algorithm>
#include <cmath>
#include <fstream>

namespace gray::sim {

const char* server_state_name(ServerState s) {
  switch (s) {
    case ServerState::Ready:
      return "ready";
    case ServerState::Drain:
      return "drain";
    case ServerState::Maint:
      return "maint";
  }
  return "?";
}

namespace {

// The behaviour of a version nobody described: healthy, a little noisy, quick.
const std::vector<VersionPoint> kDefaultBehaviour = {VersionPoint{}};

double retention_for(const Scenario& sc) {
  double longest = 60000;
  for (const auto& [name, m] : sc.metrics) longest = std::max(longest, m.window_ms);
  return std::max(15 * 60000.0, longest + 60000);
}

}  // namespace

World::World(Scenario sc) : sc_(std::move(sc)), rng_(sc_.seed), meter_(5000, retention_for(sc_)) {
  rule_uses_.assign(sc_.commands.size(), 0);
  host_fault_stage_.assign(sc_.host_faults.size(), 0);
  for (const auto& [tag, digest] : sc_.digests) digest_tags_[digest] = tag;
  for (const auto& [name, points] : sc_.versions)
    for (const VersionPoint& p : points)
      if (p.at_ms > 0) schedule_times_.push_back(p.at_ms);
  std::sort(schedule_times_.begin(), schedule_times_.end());
  vid(sc_.version);
  for (const HostSpec& h : sc_.hosts) push_host(h);
  relink();
  for (const auto& [name, spec] : sc_.registries) add_registry(name);
  for (const auto& [name, spec] : sc_.gateways)
    if (!spec.stable.empty() || !spec.canary.empty()) add_gateway(name, {}, {});
  apply_events();  // faults at time 0
}

std::unique_ptr<World> World::from_scenario(const nlohmann::json& scenario, std::string& error) {
  std::optional<Scenario> sc = parse_scenario(scenario, error);
  if (!sc) return nullptr;
  return std::unique_ptr<World>(new World(std::move(*sc)));
}

std::unique_ptr<World> World::from_parsed(const Scenario& scenario) { return std::unique_ptr<World>(new World(scenario)); }

void World::reseed(std::uint64_t seed) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  rng_.seed(seed);
}

// --- hosts, gateways, registries ------------------------------------------------------------

void World::add_host(const HostSpec& spec) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (push_host(spec)) relink();
}

bool World::push_host(const HostSpec& spec) {
  for (const Host& h : hosts_)
    if (h.name == spec.name) return false;
  Host h;
  h.name = spec.name;
  h.addr = spec.addr.empty() ? spec.name : spec.addr;
  h.port = spec.port;
  h.tags = spec.tags;
  h.mode = spec.mode;
  h.state = spec.state;
  set_version(h, spec.version.empty() ? sc_.version : spec.version);
  hosts_.push_back(std::move(h));
  return true;
}

bool World::add_inventory(const std::string& path, std::string& error) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::ifstream in(path);
  if (!in) {
    error = path + ": cannot read the inventory";
    return false;
  }
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("hosts") || !j["hosts"].is_array()) {
    error = path + ": expected {\"hosts\": [...]}";
    return false;
  }
  for (const auto& e : j["hosts"]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) continue;
    HostSpec h;
    h.name = e["name"].get<std::string>();
    if (e.contains("addr") && e["addr"].is_string()) h.addr = e["addr"].get<std::string>();
    if (e.contains("port") && e["port"].is_number_integer()) h.port = e["port"].get<int>();
    if (e.contains("tags") && e["tags"].is_array())
      for (const auto& t : e["tags"])
        if (t.is_string()) h.tags.push_back(t.get<std::string>());
    push_host(h);
  }
  relink();
  return true;
}

void World::add_gateway(const std::string& name, const std::vector<std::string>& stable, const std::vector<std::string>& canary) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Gateway* existing = find_gateway(name);
  if (existing && !existing->servers.empty()) return;
  if (!existing) {
    gateways_.push_back(Gateway{});
    existing = &gateways_.back();
    existing->name = name;
    auto it = sc_.gateways.find(name);
    if (it != sc_.gateways.end()) existing->spec = it->second;
    existing->canary_percent = existing->spec.weight;
  }
  Gateway& g = *existing;
  const auto& s = g.spec.stable.empty() && g.spec.canary.empty() ? stable : g.spec.stable;
  const auto& c = g.spec.stable.empty() && g.spec.canary.empty() ? canary : g.spec.canary;
  g.servers.clear();
  for (int group = 0; group < 2; ++group) {
    const auto& names = group ? c : s;
    for (size_t i = 0; i < names.size(); ++i) {
      Server sv;
      sv.name = names[i];
      sv.canary = group == 1;
      sv.rank = static_cast<int>(i);
      g.servers.push_back(sv);
    }
  }
  relink();
  init_sessions(g);
}

void World::add_registry(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (find_registry(name)) return;
  registries_.push_back(Registry{});
  Registry& r = registries_.back();
  r.name = name;
  auto it = sc_.registries.find(name);
  if (it != sc_.registries.end()) r.spec = it->second;
  r.every_host = !r.spec.members.has_value();
  if (r.spec.members)
    for (const std::string& id : *r.spec.members) member(r, id);
  relink();
  r.views.resize(static_cast<size_t>(r.spec.client_groups));
  for (ClientView& v : r.views) refresh(r, v);
}

Member& World::member(Registry& r, const std::string& id) {
  auto it = r.by_id.find(id);
  if (it != r.by_id.end()) return r.members[it->second];
  Member m;
  m.id = id;
  m.host = find_host(id);
  if (m.host >= 0) m.metadata["version"] = Value::string(hosts_[static_cast<size_t>(m.host)].version);
  r.by_id[id] = r.members.size();
  r.members.push_back(std::move(m));
  return r.members.back();
}

void World::relink() {
  host_index_.clear();
  std::map<std::string, int> addr_count;
  for (const Host& h : hosts_) addr_count[h.addr]++;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const Host& h = hosts_[i];
    int idx = static_cast<int>(i);
    host_index_.emplace(h.name, idx);
    host_index_.emplace(h.id(), idx);
    if (addr_count[h.addr] == 1) host_index_.emplace(h.addr, idx);
  }
  for (Gateway& g : gateways_)
    for (Server& s : g.servers) s.host = find_host(s.name);
  for (Registry& r : registries_) {
    if (r.every_host)
      for (const Host& h : hosts_) member(r, h.id());
    for (Member& m : r.members) {
      m.host = find_host(m.id);
      bool tagged = m.host >= 0 && std::count(hosts_[static_cast<size_t>(m.host)].tags.begin(),
                                              hosts_[static_cast<size_t>(m.host)].tags.end(), "canary");
      m.canary = r.spec.canary.empty() ? tagged : std::count(r.spec.canary.begin(), r.spec.canary.end(), m.id) > 0;
    }
  }
}

int World::find_host(const std::string& name_or_id) const {
  auto it = host_index_.find(name_or_id);
  return it == host_index_.end() ? -1 : it->second;
}

const Host* World::host(const std::string& name) const {
  int i = find_host(name);
  return i < 0 ? nullptr : &hosts_[static_cast<size_t>(i)];
}

Gateway* World::find_gateway(const std::string& name) {
  for (Gateway& g : gateways_)
    if (g.name == name) return &g;
  return nullptr;
}

Registry* World::find_registry(const std::string& name) {
  for (Registry& r : registries_)
    if (r.name == name) return &r;
  return nullptr;
}

const Gateway* World::gateway(const std::string& name) const { return const_cast<World*>(this)->find_gateway(name); }
const Registry* World::registry(const std::string& name) const { return const_cast<World*>(this)->find_registry(name); }

std::vector<plugins::HostRecord> World::inventory() const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::vector<plugins::HostRecord> out;
  for (const Host& h : hosts_) out.push_back({h.name, h.addr, h.port, h.tags, {}});
  return out;
}

// --- versions -------------------------------------------------------------------------------

int World::vid(const std::string& version) {
  auto it = version_ids_.find(version);
  if (it != version_ids_.end()) return it->second;
  int id = static_cast<int>(version_names_.size());
  version_ids_[version] = id;
  version_names_.push_back(version);
  auto spec = sc_.versions.find(version);
  if (spec == sc_.versions.end()) spec = sc_.versions.find("default");
  version_points_.push_back(spec == sc_.versions.end() ? &kDefaultBehaviour : &spec->second);
  return id;
}

const VersionPoint& World::behaviour(int v, double t) const {
  const std::vector<VersionPoint>& points = *version_points_[static_cast<size_t>(v)];
  const VersionPoint* p = &points.front();
  for (const VersionPoint& q : points)
    if (q.at_ms <= t) p = &q;
  return *p;
}

const VersionPoint& World::behaviour_of(int host, double t) {
  return behaviour(host < 0 ? vid(sc_.version) : hosts_[static_cast<size_t>(host)].vid, t);
}

void World::set_version(Host& h, const std::string& version) {
  h.version = version;
  h.vid = vid(version);
}

// Commands name what they install in several ways; behaviour is keyed by the version tag.
// "registry.example.com/shop/orders@sha256:..." -> the tag whose digest that is;
// "registry.example.com/shop/orders:5.12.4" -> "5.12.4".
std::string World::resolve_version(const std::string& text) const {
  size_t sha = text.find("sha256:");
  if (sha != std::string::npos) {
    auto it = digest_tags_.find(text.substr(sha));
    return it == digest_tags_.end() ? text.substr(sha) : it->second;
  }
  size_t slash = text.rfind('/');
  size_t colon = text.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash) && text.find("://") == std::string::npos)
    return text.substr(colon + 1);
  return text;
}

// --- time -----------------------------------------------------------------------------------

void World::advance_to(double t) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  while (now_ < t) {
    double next = std::min(t, next_event());
    integrate(now_, next);
    now_ = next;
    apply_events();
  }
}

double World::next_event() const {
  double n = kForever;
  auto consider = [&](double t) {
    if (t > now_ && t < n) n = t;
  };
  for (const Host& h : hosts_)
    if (h.state == HostState::Installing) consider(h.busy_until);
  for (size_t i = 0; i < sc_.host_faults.size(); ++i)
    consider(host_fault_stage_[i] == 0   ? sc_.host_faults[i].down_ms
             : host_fault_stage_[i] == 1 ? sc_.host_faults[i].up_ms
                                         : kForever);
  auto s = std::upper_bound(schedule_times_.begin(), schedule_times_.end(), now_);
  if (s != schedule_times_.end()) consider(*s);
  for (const Registry& r : registries_) {
    for (const Member& m : r.members) consider(m.reregister_at);
    for (const ClientView& v : r.views) consider(v.next_refresh);
  }
  return n;
}

void World::apply_events() {
  for (Host& h : hosts_)
    if (h.state == HostState::Installing && h.busy_until <= now_) {
      h.state = HostState::Up;
      set_version(h, h.next_version);
      h.mode = h.next_mode;
      h.busy_until = kForever;
    }
  for (size_t i = 0; i < sc_.host_faults.size(); ++i) {
    const HostFault& f = sc_.host_faults[i];
    int hi = find_host(f.host);
    if (hi < 0) continue;
    Host& h = hosts_[static_cast<size_t>(hi)];
    if (host_fault_stage_[i] == 0 && f.down_ms <= now_) {
      h.state = HostState::Down;  // a crash loses an install in progress
      h.busy_until = kForever;
      host_fault_stage_[i] = 1;
    }
    if (host_fault_stage_[i] == 1 && f.up_ms <= now_) {
      h.state = HostState::Up;
      host_fault_stage_[i] = 2;
    }
  }
  for (Registry& r : registries_) {
    bool reachable = registry_reachable(r.name, now_);
    for (Member& m : r.members) {
      if (m.reregister_at > now_) continue;
      bool alive = m.host < 0 || hosts_[static_cast<size_t>(m.host)].serving();
      if (alive && reachable && !m.paused) {
        // The node's agent registers its instance again, as the version it now runs.
        m.registered = true;
        if (m.host >= 0) m.metadata["version"] = Value::string(hosts_[static_cast<size_t>(m.host)].version);
        m.reregister_at = kForever;
        touch(r);
      } else {
        m.reregister_at = m.paused ? kForever : now_ + r.spec.self_register_ms;  // the agent retries
      }
    }
    for (ClientView& v : r.views) {
      if (v.next_refresh > now_) continue;
      if (reachable) {
        refresh(r, v);
      } else {
        // Clients cannot reach the registry: they keep their cached view and poll again later.
        while (v.next_refresh <= now_) v.next_refresh += r.spec.client_cache_ms;
      }
    }
  }
}

bool World::registry_reachable(const std::string& name, double t) const {
  for (const CallFault& f : sc_.call_faults)
    if (f.matches("registry", name, "*") && f.op == "*" && f.error_probability >= 1 && !f.lost_reply && f.when.contains(t))
      return false;
  return true;
}

void World::touch(Registry& r) {
  r.generation++;
  const double cache = r.spec.client_cache_ms;
  const double groups = static_cast<double>(r.views.size());
  for (size_t i = 0; i < r.views.size(); ++i) {
    ClientView& v = r.views[i];
    if (v.next_refresh < kForever) continue;
    // Group i polls at phase + k * cache; the groups are spread evenly over one period.
    double phase = cache * static_cast<double>(i + 1) / groups;
    v.next_refresh = phase + (std::floor((now_ - phase) / cache) + 1) * cache;
  }
}

void World::refresh(Registry& r, ClientView& v) {
  v.members.clear();
  v.weights.clear();
  for (size_t i = 0; i < r.members.size(); ++i) {
    const Member& m = r.members[i];
    if (m.registered && m.enabled && m.weight > 0) {
      v.members.push_back(i);
      v.weights.push_back(m.weight);
    }
  }
  v.generation = r.generation;
  v.next_refresh = kForever;
}

// --- randomness -----------------------------------------------------------------------------

// Our own transforms instead of std:: distributions: those differ between standard libraries,
// and a seed must give the same run everywhere.
double World::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

double World::gaussian() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

}  // namespace gray::sim
