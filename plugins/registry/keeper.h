// A background thread that runs a task every interval for as long as its owner lives: lease
// keep-alives, heartbeats and held-out instances of the registry drivers. The task runs on the
// keeper's thread, so it must use its own HTTP client (http::Client is not thread-safe).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace gray::plugins::registry {

class Keeper {
 public:
  // `task` runs first after `interval_ms`, then every `interval_ms`; an exception it throws is
  // swallowed (the next round tries again).
  Keeper(double interval_ms, std::function<void()> task);
  ~Keeper();
  Keeper(const Keeper&) = delete;
  Keeper& operator=(const Keeper&) = delete;

  // Runs the task now instead of at the end of the current interval.
  void wake();
  // Stops and joins the thread; the task is not called again. Idempotent.
  void stop();

 private:
  void loop();

  double interval_ms_;
  std::function<void()> task_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace gray::plugins::registry
