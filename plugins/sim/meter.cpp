#include "plugins/sim/meter.h"

#include <algorithm>
#include <cmath>

namespace gray::sim {

namespace {

void merge_latency(std::vector<std::pair<double, double>>& into, double latency_ms, double weight) {
  if (weight <= 0) return;
  for (auto& [l, w] : into)
    if (l == latency_ms) {
      w += weight;
      return;
    }
  into.emplace_back(latency_ms, weight);
}

}  // namespace

void Flow::add(double served_per_ms, double failed_per_ms, double latency_ms, double answered_per_ms) {
  served += served_per_ms;
  failed += failed_per_ms;
  merge_latency(latency, latency_ms, answered_per_ms);
}

Meter::Meter(double bucket_ms, double retention_ms)
    : bucket_ms_(bucket_ms), retention_ms_(retention_ms), slots_(static_cast<size_t>(std::ceil(retention_ms / bucket_ms)) + 2) {}

Meter::Bucket& Meter::slot(std::vector<Bucket>& ring, long long id) {
  Bucket& b = ring[static_cast<size_t>(id) % slots_];
  if (b.id != id) b = Bucket{id, 0, 0, {}};  // the ring came round: this slot held older data
  return b;
}

void Meter::add(const std::string& series, double from_ms, double to_ms, const Flow& flow) {
  // Older than the retention, nobody can read it: skip it, so a jump of a day costs no more
  // than one window.
  double lo = std::max(from_ms, to_ms - retention_ms_);
  if (to_ms <= lo || (flow.served <= 0 && flow.failed <= 0)) return;
  std::vector<Bucket>& ring = series_[series];
  if (ring.empty()) ring.resize(slots_);
  for (long long id = static_cast<long long>(std::floor(lo / bucket_ms_)); id * bucket_ms_ < to_ms; ++id) {
    double overlap = std::min(to_ms, (id + 1) * bucket_ms_) - std::max(lo, id * bucket_ms_);
    if (overlap <= 0) continue;
    Bucket& b = slot(ring, id);
    b.served += flow.served * overlap;
    b.failed += flow.failed * overlap;
    for (const auto& [l, w] : flow.latency) merge_latency(b.latency, l, w * overlap);
  }
}

Meter::Reading Meter::read(const std::string& series, double now_ms, double window_ms) const {
  Reading r;
  auto it = series_.find(series);
  if (it == series_.end()) return r;
  const std::vector<Bucket>& ring = it->second;
  double lo = now_ms - std::min(window_ms, retention_ms_);
  std::vector<std::pair<double, double>> latency;
  for (long long id = static_cast<long long>(std::floor(lo / bucket_ms_)); id * bucket_ms_ <= now_ms; ++id) {
    if (id < 0) continue;
    const Bucket& b = ring[static_cast<size_t>(id) % slots_];
    if (b.id != id) continue;
    // A bucket holds data up to now at most; count the part of it inside the window, assuming
    // the requests were spread evenly over it.
    double start = id * bucket_ms_, end = std::min((id + 1) * bucket_ms_, now_ms);
    if (end <= start) continue;
    double frac = std::clamp((end - std::max(start, lo)) / (end - start), 0.0, 1.0);
    r.served += b.served * frac;
    r.failed += b.failed * frac;
    for (const auto& [l, w] : b.latency) merge_latency(latency, l, w * frac);
  }
  r.p99_ms = mixture_p99(latency);
  return r;
}

double mixture_p99(const std::vector<std::pair<double, double>>& parts) {
  double total = 0, lo = INFINITY, hi = 0;
  for (const auto& [l, w] : parts) {
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
    for (const auto& [l, w] : parts)
      if (w > 0 && l > 0) t += w * std::pow(0.01, x / l);
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
  for (const auto& [name, ring] : series_) {
    nlohmann::json buckets = nlohmann::json::array();
    for (const Bucket& b : ring)
      if (b.id >= 0) buckets.push_back({b.id, b.served, b.failed, b.latency});
    series[name] = buckets;
  }
  return {{"bucket_ms", bucket_ms_}, {"retention_ms", retention_ms_}, {"series", series}};
}

void Meter::from_json(const nlohmann::json& j) {
  *this = Meter(j.at("bucket_ms").get<double>(), j.at("retention_ms").get<double>());
  for (const auto& [name, buckets] : j.at("series").items()) {
    std::vector<Bucket>& ring = series_[name];
    ring.resize(slots_);
    for (const auto& b : buckets) {
      Bucket& s = slot(ring, b.at(0).get<long long>());
      s.served = b.at(1).get<double>();
      s.failed = b.at(2).get<double>();
      s.latency = b.at(3).get<std::vector<std::pair<double, double>>>();
    }
  }
}

}  // namespace gray::sim
