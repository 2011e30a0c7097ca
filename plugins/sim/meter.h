// Request counts over a sliding window, the way a metrics system would see them: series of
// fixed-size time buckets ("all", "v:2.4.1", "g:edge/canary"), fed by constant-rate segments
// of simulated time and read back as totals and a p99 over the last `window`.
//
// Traffic is integrated analytically, so a bucket holds fractional request counts; latency is a
// small mixture of (p99, requests) pairs per bucket rather than samples, and the p99 of a mixture
// is solved assuming each component has an exponential tail.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gray::sim {

// A latency mixture: (p99 ms, requests) per distinct latency, in the order they were first
// added. There is one component per version behaviour in play, so almost always one or two:
// they live inline, and only a fifth one onwards goes to the heap. Buckets and flows hold one
// each and are filled for every segment of simulated time.
class Mix {
 public:
  // Merged into the component of the same latency; nothing for a weight <= 0.
  void add(double latency_ms, double weight);
  void clear() {
    size_ = 0;
    spill_.clear();
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::pair<double, double>& operator[](size_t i) const { return i < kInline ? inline_[i] : spill_[i - kInline]; }

 private:
  static constexpr size_t kInline = 4;
  std::array<std::pair<double, double>, kInline> inline_{};
  std::vector<std::pair<double, double>> spill_;
  size_t size_ = 0;
};

// What arrives on a series during one segment, per millisecond.
struct Flow {
  double served = 0;  // requests (including failed ones)
  double failed = 0;
  Mix latency;  // (p99 ms, requests per ms that were answered)

  void add(double served_per_ms, double failed_per_ms, double latency_ms, double answered_per_ms);
  void clear();
};

class Meter {
 public:
  explicit Meter(double bucket_ms = 5000, double retention_ms = 15 * 60000);

  // A series by name, created empty when new: add() and read() by id skip the lookup by name,
  // which the world would otherwise do for every series in every segment of time.
  size_t series_id(const std::string& name);
  // Changes whenever from_json replaces the series: ids taken before are void.
  unsigned long long generation() const { return generation_; }

  // A constant flow over [from_ms, to_ms). Only the part inside the retention counts.
  void add(size_t series, double from_ms, double to_ms, const Flow& flow);
  void add(const std::string& series, double from_ms, double to_ms, const Flow& flow) { add(series_id(series), from_ms, to_ms, flow); }

  struct Reading {
    double served = 0;
    double failed = 0;
    double p99_ms = -1;  // -1: nothing was answered in the window
  };
  // Totals over (now - window, now]; the p99 only when asked for (it is the costly part).
  Reading read(const std::string& series, double now_ms, double window_ms, bool want_p99 = true) const;
  Reading read(size_t series, double now_ms, double window_ms, bool want_p99 = true) const;

  double retention_ms() const { return retention_ms_; }

  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& j);

 private:
  struct Bucket {
    long long id = -1;  // floor(start / bucket_ms); -1: empty
    double served = 0;
    double failed = 0;
    Mix latency;
  };
  Bucket& slot(std::vector<Bucket>& ring, long long id);
  static void claim(Bucket& b, long long id);
  long long id_slot(long long id) const { return static_cast<long long>(static_cast<size_t>(id) % slots_); }
  long long next_slot(long long at) const { return at + 1 == static_cast<long long>(slots_) ? 0 : at + 1; }

  double bucket_ms_;
  double retention_ms_;
  size_t slots_;
  std::map<std::string, size_t> index_;      // name -> id
  std::vector<std::vector<Bucket>> rings_;  // by id; empty until something was added
  unsigned long long generation_;
};

// The p99 of a mixture of components (p99 ms, weight), each with an exponential tail.
double mixture_p99(const Mix& parts);

}  // namespace gray::sim
