#include "runtime/clock.h"

#include <ctime>

namespace gray {

RealClock::RealClock(double start_ms) : base_(std::chrono::steady_clock::now()), start_ms_(start_ms) {
  using namespace std::chrono;
  epoch_unix_ = duration<double>(system_clock::now().time_since_epoch()).count() - start_ms / 1000.0;
}

double RealClock::now_ms() const {
  using namespace std::chrono;
  return start_ms_ + duration<double, std::milli>(steady_clock::now() - base_).count();
}

std::string iso8601(double unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace gray
