// Request counts over a sliding window, the way a metrics system would see them: series of
// fixed-size time buckets ("all", "v:2.4.1", "g:edge/canary"), fed by constant-rate segments
// of simulated time and read back as totals and a p99 over the last `window`.
//
// Traffic is integrated analytically, so a bucket holds fractional request counts; latency is a
// small mixture of (p99, requests) pairs per bucket rather than samples, and the p99 of a mixture
// is solved assuming each component has an exponential tail.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gray::sim {

// What arrives on a series during one segment, per millisecond.
struct Flow {
  double served = 0;  // requests (including failed ones)
  double failed = 0;
  std::vector<std::pair<double, double>> latency;  // (p99 ms, requests per ms that were answered)

  void add(double served_per_ms, double failed_per_ms, double latency_ms, double answered_per_ms);
};

class Meter {
 public:
  explicit Meter(double bucket_ms = 5000, double retention_ms = 15 * 60000);

  // A constant flow over [from_ms, to_ms). Only the part inside the retention counts.
  void add(const std::string& series, double from_ms, double to_ms, const Flow& flow);

  struct Reading {
    double served = 0;
    double failed = 0;
    double p99_ms = -1;  // -1: nothing was answered in the window
  };
  // Totals over (now - window, now].
  Reading read(const std::string& series, double now_ms, double window_ms) const;

  double retention_ms() const { return retention_ms_; }

  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& j);

 private:
  struct Bucket {
    long long id = -1;  // floor(start / bucket_ms); -1: empty
    double served = 0;
    double failed = 0;
    std::vector<std::pair<double, double>> latency;
  };
  Bucket& slot(std::vector<Bucket>& ring, long long id);

  double bucket_ms_;
  double retention_ms_;
  size_t slots_;
  std::map<std::string, std::vector<Bucket>> series_;
};

// The p99 of a mixture of components (p99 ms, weight), each with an exponential tail.
double mixture_p99(const std::vector<std::pair<double, double>>& parts);

}  // namespace gray::sim
