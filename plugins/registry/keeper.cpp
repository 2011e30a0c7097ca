#include "plugins/registry/keeper.h"

#include <chrono>

namespace gray::plugins::registry {

Keeper::Keeper(double interval_ms, std::function<void()> task) : interval_ms_(interval_ms), task_(std::move(task)) {
  thread_ = std::thread([this] { loop(); });
}

Keeper::~Keeper() { stop(); }

void Keeper::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

void Keeper::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Keeper::loop() {
  const auto interval = std::chrono::microseconds(static_cast<long long>(interval_ms_ * 1000));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, interval, [this] { return stopping_ || woken_; });
    if (stopping_) break;
    woken_ = false;
    lock.unlock();
    try {
      task_();
    } catch (...) {
      // A failed round (a server away for a moment) is retried at the next one.
    }
    lock.lock();
  }
}

}  // namespace gray::plugins::registry
