// Time for the interpreter: one interface, a real clock and a virtual one. Nothing else in gray
// sleeps; the scheduler waits through the clock.
#pragma once

#include <chrono>
#include <string>

namespace gray {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the run's epoch.
  virtual double now_ms() const = 0;
  virtual bool is_virtual() const = 0;
  // Wall-clock time of the epoch, for journals and status (seconds since 1970).
  virtual double epoch_unix_s() const = 0;
};

// Starts at `start_ms` (0 for a new run; the journal's last time on resume) and moves only when
// the scheduler advances it: two hours of holds pass in microseconds.
class VirtualClock : public Clock {
 public:
  explicit VirtualClock(double start_ms = 0, double epoch_unix_s = 0) : now_(start_ms), epoch_(epoch_unix_s) {}
  double now_ms() const override { return now_; }
  bool is_virtual() const override { return true; }
  double epoch_unix_s() const override { return epoch_; }
  void advance_to(double t_ms) {
    if (t_ms > now_) now_ = t_ms;
  }

 private:
  double now_;
  double epoch_;
};

// Monotonic time, offset so that a resumed run continues its own timeline.
class RealClock : public Clock {
 public:
  explicit RealClock(double start_ms = 0);
  double now_ms() const override;
  bool is_virtual() const override { return false; }
  double epoch_unix_s() const override { return epoch_unix_; }

 private:
  std::chrono::steady_clock::time_point base_;
  double start_ms_;
  double epoch_unix_;
};

// "2026-11-22T02:12:00Z" for a unix time in seconds.
std::string iso8601(double unix_s);

}  // namespace gray
