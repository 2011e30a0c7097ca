#include "plugins/sim/meter.h"

#include <algorithm>
#include <atomic>
#include <cmath>

namespace gray::sim {

void Mix::add(double latency_ms, double weight) {
  if (weight <= 0) return;
  for (size_t i = 0; i < size_; ++i) {
    auto& [l, w] = i < kInline ? inline_[i] : spill_[i - kInline];
    if (l == latency_ms) {
      w += weight;
      return;
    }
  }
  if (size_ < kInline) inline_[size_] = {latency_ms, weight};
  else spill_.emplace_back(latency_ms, weight);
  ++size_;
}

void Flow::add(double served_per_ms, double failed_per_ms, double latency_ms, double answered_per_ms) {
  served += served_per_ms;
  failed += failed_per_ms;
  latency.add(latency_ms, answered_per_ms);
}

namespace {
std::atomic<unsigned long long> meters_made{0};
}  // namespace

Meter::Meter(double bucket_ms, double retention_ms)
    : bucket_ms_(bucket_ms),
      retention_ms_(retention_ms),
      slots_(static_cast<size_t>(std::ceil(retention_ms / bucket_ms)) + 2),
      generation_(++meters_made) {}

size_t Meter::series_id(const std::string& name) {
  auto [it, added] = index_.try_emplace(name, rings_.size());
  if (added) rings_.emplace_back();
  return it->second;
}

void Flow::clear() {
  served = failed = 0;
  latency.clear();
}

void Meter::claim(Bucket& b, long long id) {
  if (b.id == id) return;
  // The ring came round: this slot held older data.
  b.id = id;
  b.served = b.failed = 0;
  b.latency.clear();
}

Meter::Bucket& Meter::slot(std::vector<Bucket>& ring, long long id) {
  Bucket& b = ring[static_cast<size_t>(id_slot(id))];
  claim(b, id);
  return b;
}

void Meter::add(size_t series, double from_ms, double to_ms, const Flow& flow) {
  // Older than the retention, nobody can read it: skip it, so a jump of a day costs no more
  // than one window.
  double lo = std::max(from_ms, to_ms - retention_ms_);
  if (to_ms <= lo || (flow.served <= 0 && flow.failed <= 0)) return;
  std::vector<Bucket>& ring = rings_[series];
  if (ring.empty()) ring.resize(slots_);
  const long long first = static_cast<long long>(std::floor(lo / bucket_ms_));
  // The slot index steps along with the bucket id: no division per bucket.
  for (long long id = first, at = id_slot(first); id * bucket_ms_ < to_ms; ++id, at = next_slot(at)) {
    double overlap = std::min(to_ms, (id + 1) * bucket_ms_) - std::max(lo, id * bucket_ms_);
    if (overlap <= 0) continue;
    Bucket& b = ring[static_cast<size_t>(at)];
    claim(b, id);
    b.served += flow.served * overlap;
    b.failed += flow.failed * overlap;
    for (size_t i = 0; i < flow.latency.size(); ++i) b.latency.add(flow.latency[i].first, flow.latency[i].second * overlap);
  }
}

Meter::Reading Meter::read(const std::string& series, double now_ms, double window_ms, bool want_p99) const {
  auto it = index_.find(series);
  return it == index_.end() ? Reading{} : read(it->second, now_ms, window_ms, want_p99);
}

Meter::Reading Meter::read(size_t series, double now_ms, double window_ms, bool want_p99) const {
  Reading r;
  const std::vector<Bucket>& ring = rings_[series];
  if (ring.empty()) return r;
  double lo = now_ms - std::min(window_ms, retention_ms_);
  Mix latency;
  const long long first = std::max(0LL, static_cast<long long>(std::floor(lo / bucket_ms_)));
  for (long long id = first, at = id_slot(first); id * bucket_ms_ <= now_ms; ++id, at = next_slot(at)) {
    const Bucket& b = ring[static_cast<size_t>(at)];
    if (b.id != id) continue;
    // A bucket holds data up to now at most; count the part of it inside the window, assuming
    // the requests were spread evenly over it.
    double start = id * bucket_ms_, end = std::min((id + 1) * bucket_ms_, now_ms);
    if (end <= start) continue;
    double frac = std::clamp((end - std::max(start, lo)) / (end - start), 0.0, 1.0);
    r.served += b.served * frac;
    r.failed += b.failed * frac;
    if (want_p99)
      for (size_t i = 0; i < b.latency.size(); ++i) latency.add(b.latency[i].first, b.latency[i].second * frac);
  }
  if (want_p99) r.p99_ms = mixture_p99(latency);
  return r;
}

double mixture_p99(const Mix& parts) {
  double total = 0, lo = INFINITY, hi = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& [l, w] = parts[i];
    if (w <= 0) continue;
    total += w;
    lo = std::min(lo, l);
    hi = std::max(hi, l);
  }
  if (total <= 0) return -1;
  if (hi <= lo) return hi;
  // P(latency > x) of a component with p99 L is 0.01^(x/L); find x where the mix's tail is 1%.
  auto tail = [&](double x) {
    double t = 0;
    for (size_t i = 0; i < parts.size(); ++i)
      if (const auto& [l, w] = parts[i]; w > 0 && l > 0) t += w * std::pow(0.01, x / l);
    return t / total;
  };
  for (int i = 0; i < 60; ++i) {
    double mid = (lo + hi) / 2;
    (tail(mid) > 0.01 ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

nlohmann::json Meter::to_json() const {
  nlohmann::json series = nlohmann::json::object();
  for (const auto& [name, id] : index_) {
    const std::vector<Bucket>& ring = rings_[id];
    if (ring.empty()) continue;  // named, never fed
    nlohmann::json buckets = nlohmann::json::array();
    for (const Bucket& b : ring)
      if (b.id >= 0) {
        std::vector<std::pair<double, double>> latency;
        for (size_t i = 0; i < b.latency.size(); ++i) latency.push_back(b.latency[i]);
        buckets.push_back({b.id, b.served, b.failed, latency});
      }
    series[name] = buckets;
  }
  return {{"bucket_ms", bucket_ms_}, {"retention_ms", retention_ms_}, {"series", series}};
}

void Meter::from_json(const nlohmann::json& j) {
  *this = Meter(j.at("bucket_ms").get<double>(), j.at("retention_ms").get<double>());
  for (const auto& [name, buckets] : j.at("series").items()) {
    std::vector<Bucket>& ring = rings_[series_id(name)];
    ring.resize(slots_);
    for (const auto& b : buckets) {
      Bucket& s = slot(ring, b.at(0).get<long long>());
      s.served = b.at(1).get<double>();
      s.failed = b.at(2).get<double>();
      for (const auto& [l, w] : b.at(3).get<std::vector<std::pair<double, double>>>()) s.latency.add(l, w);
    }
  }
}

}  // namespace gray::sim
