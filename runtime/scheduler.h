// The scheduler: runs coroutine tasks on one thread, with timers on the injected clock. With a
// virtual clock it jumps straight to the next timer; with a real clock it waits for it. Blocking
// plugin calls go to worker threads in real time and run inline in virtual time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "runtime/clock.h"
#include "runtime/task.h"

namespace gray {

class Scheduler;

// Tasks that can be stopped together: the steps and guards of a stage, one host's lane. A
// cancelled scope wakes its sleeping tasks, which then see Cancelled thrown.
class CancelScope {
 public:
  explicit CancelScope(CancelScope* parent = nullptr) : parent_(parent) {}
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;
  bool cancelled() const { return cancelled_ || (parent_ && parent_->cancelled()); }
  void cancel(Scheduler& s);

 private:
  CancelScope* parent_;
  bool cancelled_ = false;
};

class Scheduler {
 public:
  explicit Scheduler(Clock& clock, VirtualClock* virtual_clock = nullptr);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  Clock& clock() { return clock_; }
  double now() const { return clock_.now_ms(); }

  // Runs a task to completion and returns its result (rethrowing its exception).
  template <typename T>
  T run(Task<T> root) {
    drive(root.handle(), [&] { return root.done(); });
    return root.await_resume();
  }

  // Starts a task that runs beside the others until it returns or its scope is cancelled. It
  // must not outlive what it refers to: cancel its scope before that goes away.
  void spawn(Task<void> task);

  struct Sleeper {
    std::coroutine_handle<> handle;
    double at = 0;
    CancelScope* scope = nullptr;
    bool fired = false;
    bool cancelled = false;
  };

  class SleepAwaiter {
   public:
    SleepAwaiter(Scheduler& s, double at, CancelScope* scope) : s_(s), at_(at), scope_(scope) {}
    bool await_ready() const { return (scope_ && scope_->cancelled()) || at_ <= s_.now(); }
    void await_suspend(std::coroutine_handle<> h);
    void await_resume() const;

   private:
    Scheduler& s_;
    double at_;
    CancelScope* scope_;
    std::shared_ptr<Sleeper> sleeper_;
  };

  SleepAwaiter sleep_until(double t_ms, CancelScope* scope) { return SleepAwaiter(*this, t_ms, scope); }
  SleepAwaiter sleep_for(double ms, CancelScope* scope) { return SleepAwaiter(*this, now() + ms, scope); }

  // Runs `fn` away from the scheduler thread (real clock) or right here (virtual clock).
  template <typename R>
  class OffloadAwaiter {
   public:
    OffloadAwaiter(Scheduler& s, std::function<R()> fn) : s_(s), fn_(std::move(fn)) {}
    bool await_ready() {
      if (!s_.clock_.is_virtual()) return false;
      result_ = fn_();
      return true;
    }
    void await_suspend(std::coroutine_handle<> h) {
      s_.start_worker([this, h] {
        try {
          result_ = fn_();
        } catch (...) {
          error_ = std::current_exception();
        }
        s_.complete(h);
      });
    }
    R await_resume() {
      if (error_) std::rethrow_exception(error_);
      return std::move(*result_);
    }

   private:
    Scheduler& s_;
    std::function<R()> fn_;
    std::optional<R> result_;
    std::exception_ptr error_;
  };

  template <typename R>
  OffloadAwaiter<R> offload(std::function<R()> fn) {
    return OffloadAwaiter<R>(*this, std::move(fn));
  }

  // Wakes sleepers whose scope is now cancelled.
  void cancel_sleepers();
  // Set from a signal handler: the run loop notices within a fraction of a second and calls
  // `on_interrupt` once, on the scheduler thread.
  static std::atomic<bool> interrupted;
  std::function<void()> on_interrupt;
  // Real time only: called on the scheduler thread at least every 200 ms, between tasks (for
  // operator requests such as `gray abort` on a running run).
  std::function<void()> on_tick;

  // Runs tasks with at most `limit` at a time; the first exception cancels `scope` (so the others
  // stop at their next wait) and is rethrown once all have finished.
  Task<void> all(std::vector<std::function<Task<void>()>> makers, size_t limit, CancelScope& scope);

 private:
  friend class CancelScope;
  void drive(std::coroutine_handle<> root, const std::function<bool()>& done);
  void start_worker(std::function<void()> work);
  void complete(std::coroutine_handle<> h);
  void make_ready(std::coroutine_handle<> h) { ready_.push_back(h); }

  struct Later {
    bool operator()(const std::shared_ptr<Sleeper>& a, const std::shared_ptr<Sleeper>& b) const { return a->at > b->at; }
  };

  Clock& clock_;
  VirtualClock* virtual_;
  std::deque<std::coroutine_handle<>> ready_;
  std::priority_queue<std::shared_ptr<Sleeper>, std::vector<std::shared_ptr<Sleeper>>, Later> timers_;
  std::vector<std::weak_ptr<Sleeper>> sleeping_;
  std::vector<Task<void>> spawned_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::coroutine_handle<>> completed_;  // guarded by mu_
  std::vector<std::thread> workers_;
  size_t busy_workers_ = 0;                         // guarded by mu_
  bool interrupt_seen_ = false;
};

}  // namespace gray
