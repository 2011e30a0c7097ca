// Traffic through the simulated world: where requests go (gateway routes, weights and
// rotation; registry clients and their cached views), what fails, and how one constant-rate
// segment of time is booked into the meter, the totals and the sessions.
#include <algorithm>
#include <cmath>

#include "plugins/sim/world.h"

namespace gray::sim {

// --- traffic --------------------------------------------------------------------------------

bool World::in_rotation(const Gateway& g, const Server& s) const {
  int limit = g.scale[s.canary ? 1 : 0];
  return s.state == ServerState::Ready && (limit < 0 || s.rank < limit);
}

void World::deliver(int host, double rate, double t, Flow* group) {
  bool serving = host < 0 || hosts_[static_cast<size_t>(host)].serving();
  int v = host < 0 ? vid(sc_.version) : hosts_[static_cast<size_t>(host)].vid;
  const VersionPoint& p = behaviour(v, t);
  double failed = serving ? rate * p.error_rate : rate;  // nothing answers on a host that is not up
  double answered = serving ? rate : 0;
  all_flow_.add(rate, failed, p.latency_ms, answered);
  if (version_flow_.size() <= static_cast<size_t>(v)) version_flow_.resize(static_cast<size_t>(v) + 1);
  version_flow_[static_cast<size_t>(v)].add(rate, failed, p.latency_ms, answered);
  if (group) group->add(rate, failed, p.latency_ms, answered);
  if (host >= 0) {
    host_rate_[static_cast<size_t>(host)] += rate;
    host_fail_[static_cast<size_t>(host)] += failed;
  }
}

void World::unroutable(double rate, Flow* group) {
  all_flow_.add(rate, rate, 0, 0);
  if (group) group->add(rate, rate, 0, 0);
}

void World::send(Gateway& g, const std::string& target, double rate, double t, bool fallback) {
  if (rate <= 0) return;
  int group = target == "canary" ? 1 : target == "stable" ? 0 : -1;
  std::vector<Server*>& pick = pick_scratch_;  // reused: this runs for every segment of time
  pick.clear();
  auto collect = [&](int grp) {
    for (Server& s : g.servers) {
      if (!in_rotation(g, s)) continue;
      if (grp >= 0 ? s.canary == (grp == 1) : (s.host < 0 ? sc_.version : hosts_[static_cast<size_t>(s.host)].version) == target)
        pick.push_back(&s);
    }
  };
  collect(group);
  // A weighted group with nobody in rotation: the balancer sends its share to the others.
  if (pick.empty() && fallback && group >= 0) collect(1 - group);
  if (pick.empty()) {
    unroutable(rate, group >= 0 ? &g.group_flow[group] : nullptr);
    return;
  }
  // Redispatch: a request refused by a down server is retried on another, so when any server
  // of the share is live, only the live ones get it.
  if (g.spec.redispatch && std::any_of(pick.begin(), pick.end(), [&](const Server* s) {
        return s->host < 0 || hosts_[static_cast<size_t>(s->host)].serving();
      }))
    std::erase_if(pick, [&](const Server* s) { return s->host >= 0 && !hosts_[static_cast<size_t>(s->host)].serving(); });
  double each = rate / static_cast<double>(pick.size());
  for (Server* s : pick) {
    s->rate += each;
    deliver(s->host, each, t, &g.group_flow[s->canary ? 1 : 0]);
  }
}

void World::flow_gateway(Gateway& g, double rate, double t) {
  double rest = 1;
  std::vector<std::string> seen;
  for (const Route& r : g.routes) {
    // Requests carrying one header (cookie, client address) are routed by the first rule on it.
    std::string key = r.match == "ip" ? "ip" : r.match + " " + r.name;
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    auto m = g.spec.matches.find(key);
    double share = std::min(rest, m == g.spec.matches.end() ? g.spec.route_share : m->second);
    rest -= share;
    send(g, r.target, rate * share, t, false);
  }
  double w = std::clamp(g.canary_percent / 100.0, 0.0, 1.0);
  send(g, "canary", rate * rest * w, t, true);
  send(g, "stable", rate * rest * (1 - w), t, true);
}

void World::flow_registry(Registry& r, double rate, double t) {
  if (r.views.empty()) return;
  double per_view = rate / static_cast<double>(r.views.size());
  for (const ClientView& v : r.views) {
    double canary_w = 0, other_w = 0;
    for (size_t i = 0; i < v.members.size(); ++i) (r.members[v.members[i]].canary ? canary_w : other_w) += v.weights[i];
    if (canary_w + other_w <= 0) {
      unroutable(per_view, nullptr);  // the client knows no instance at all
      continue;
    }
    double canary_share = canary_w / (canary_w + other_w);
    if (r.canary_percent >= 0) canary_share = canary_w <= 0 ? 0 : other_w <= 0 ? 1 : r.canary_percent / 100.0;
    for (size_t i = 0; i < v.members.size(); ++i) {
      const Member& m = r.members[v.members[i]];
      double share = m.canary ? canary_share * v.weights[i] / canary_w : (1 - canary_share) * v.weights[i] / other_w;
      if (share > 0) deliver(m.host, per_view * share, t, nullptr);
    }
  }
}

void World::compute_flows(double t) {
  // Cleared in place, not rebuilt: this runs for every segment of time.
  all_flow_.clear();
  version_flow_.resize(version_names_.size());
  for (Flow& f : version_flow_) f.clear();
  host_rate_.assign(hosts_.size(), 0);
  host_fail_.assign(hosts_.size(), 0);
  for (Gateway& g : gateways_) {
    g.group_flow[0].clear();
    g.group_flow[1].clear();
    for (Server& s : g.servers) s.rate = 0;
  }
  auto gateway_rate = [&](const Gateway& g) { return g.spec.rps.value_or(sc_.rps) / 1000.0; };
  auto registry_rate = [&](const Registry& r) { return r.spec.rps.value_or(sc_.rps) / 1000.0; };
  if (sc_.via) {
    for (const std::string& name : *sc_.via) {
      if (Gateway* g = find_gateway(name)) flow_gateway(*g, gateway_rate(*g), t);
      if (Registry* r = find_registry(name)) flow_registry(*r, registry_rate(*r), t);
    }
    return;
  }
  bool any_gateway = false;
  for (Gateway& g : gateways_)
    if (!g.servers.empty()) {
      any_gateway = true;
      flow_gateway(g, gateway_rate(g), t);
    }
  if (!any_gateway)
    for (Registry& r : registries_) flow_registry(r, registry_rate(r), t);
}

// The meter's series this world feeds, by id: looked up by name once, not per segment.
void World::refresh_series_ids() {
  if (series_generation_ != meter_.generation()) {
    all_series_ = meter_.series_id("all");
    version_series_.clear();
    gateway_series_.clear();
    series_generation_ = meter_.generation();
  }
  while (version_series_.size() < version_names_.size())
    version_series_.push_back(meter_.series_id("v:" + version_names_[version_series_.size()]));
  while (gateway_series_.size() < gateways_.size()) {
    const std::string& name = gateways_[gateway_series_.size()].name;
    gateway_series_.push_back({meter_.series_id("g:" + name + "/stable"), meter_.series_id("g:" + name + "/canary")});
  }
}

void World::integrate(double from, double to) {
  if (to <= from) return;
  compute_flows(from);
  refresh_series_ids();
  const double dt = to - from;
  meter_.add(all_series_, from, to, all_flow_);
  total_.served += all_flow_.served * dt;
  total_.failed += all_flow_.failed * dt;
  for (size_t v = 0; v < version_flow_.size(); ++v) {
    const Flow& f = version_flow_[v];
    if (f.served <= 0) continue;
    meter_.add(version_series_[v], from, to, f);
    Counts& c = by_version_[version_names_[v]];
    c.served += f.served * dt;
    c.failed += f.failed * dt;
  }
  for (size_t i = 0; i < hosts_.size(); ++i) {
    hosts_[i].served += host_rate_[i] * dt;
    hosts_[i].failed += host_fail_[i] * dt;
  }
  for (size_t gi = 0; gi < gateways_.size(); ++gi) {
    Gateway& g = gateways_[gi];
    meter_.add(gateway_series_[gi][0], from, to, g.group_flow[0]);
    meter_.add(gateway_series_[gi][1], from, to, g.group_flow[1]);
    // Sessions start with requests and end after a mean duration: S' = lambda - S / tau, so S
    // approaches lambda * tau exponentially; a drained server (lambda = 0) empties with time
    // constant tau.
    const SessionSpec& ss = g.spec.sessions ? *g.spec.sessions : sc_.sessions;
    const double decay = ss.duration_ms > 0 ? std::exp(-dt / ss.duration_ms) : 0;
    for (Server& s : g.servers) {
      double target = s.rate * ss.per_request * ss.duration_ms;
      s.sessions = ss.duration_ms > 0 ? target + (s.sessions - target) * decay : 0;
    }
  }
}

void World::init_sessions(Gateway& g) {
  compute_flows(now_);
  const SessionSpec& ss = g.spec.sessions.value_or(sc_.sessions);
  for (Server& s : g.servers) s.sessions = s.rate * ss.per_request * ss.duration_ms;
}

}  // namespace gray::sim
