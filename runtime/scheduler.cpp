#include "runtime/scheduler.h"

#include <algorithm>
#include <stdexcept>

namespace gray {

std::atomic<bool> Scheduler::interrupted{false};

void CancelScope::cancel(Scheduler& s) {
  if (cancelled_) return;
  cancelled_ = true;
  s.cancel_sleepers();
}

Scheduler::Scheduler(Clock& clock, VirtualClock* virtual_clock) : clock_(clock), virtual_(virtual_clock) {
  if (clock.is_virtual() && !virtual_clock) throw std::logic_error("a virtual clock must be passed as such");
}

Scheduler::~Scheduler() {
  for (std::thread& t : workers_)
    if (t.joinable()) t.join();
  spawned_.clear();  // destroys frames of tasks that never finished
}

void Scheduler::SleepAwaiter::await_suspend(std::coroutine_handle<> h) {
  sleeper_ = std::make_shared<Sleeper>();
  sleeper_->handle = h;
  sleeper_->at = at_;
  sleeper_->scope = scope_;
  s_.timers_.push(sleeper_);
  if (scope_) s_.sleeping_.push_back(sleeper_);
}

void Scheduler::SleepAwaiter::await_resume() const {
  if ((sleeper_ && sleeper_->cancelled) || (scope_ && scope_->cancelled())) throw Cancelled{};
}

void Scheduler::cancel_sleepers() {
  std::vector<std::weak_ptr<Sleeper>> still;
  for (auto& w : sleeping_) {
    auto s = w.lock();
    if (!s || s->fired) continue;
    if (s->scope && s->scope->cancelled()) {
      s->fired = true;
      s->cancelled = true;
      ready_.push_back(s->handle);
    } else {
      still.push_back(w);
    }
  }
  sleeping_.swap(still);
}

void Scheduler::spawn(Task<void> task) {
  ready_.push_back(task.handle());
  spawned_.push_back(std::move(task));
}

void Scheduler::start_worker(std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++busy_workers_;
  }
  workers_.emplace_back(std::move(work));
}

void Scheduler::complete(std::coroutine_handle<> h) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    completed_.push_back(h);
    --busy_workers_;
  }
  cv_.notify_one();
}

void Scheduler::drive(std::coroutine_handle<> root, const std::function<bool()>& done) {
  ready_.push_back(root);
  for (;;) {
    if (interrupted && !interrupt_seen_ && on_interrupt) {
      interrupt_seen_ = true;
      on_interrupt();
    }
    while (!ready_.empty()) {
      auto h = ready_.front();
      ready_.pop_front();
      if (!h.done()) h.resume();
    }
    // Finished detached tasks free their frames.
    spawned_.erase(std::remove_if(spawned_.begin(), spawned_.end(), [](const Task<void>& t) { return t.done(); }), spawned_.end());
    if (done()) return;

    // Pop timers that already fired through cancellation.
    while (!timers_.empty() && timers_.top()->fired) timers_.pop();

    if (clock_.is_virtual()) {
      if (timers_.empty()) throw std::logic_error("the run is stuck: no task can make progress");
      double t = timers_.top()->at;
      virtual_->advance_to(t);
      while (!timers_.empty() && timers_.top()->at <= t) {
        auto s = timers_.top();
        timers_.pop();
        if (s->fired) continue;
        s->fired = true;
        ready_.push_back(s->handle);
      }
      continue;
    }

    // Real time: wait for a worker, the next timer, or a signal check, whichever comes first.
    if (on_tick) {
      on_tick();
      if (!ready_.empty()) continue;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (completed_.empty()) {
      if (timers_.empty() && busy_workers_ == 0) throw std::logic_error("the run is stuck: no task can make progress");
      double wait_ms = 200;
      if (!timers_.empty()) wait_ms = std::clamp(timers_.top()->at - clock_.now_ms(), 0.0, 200.0);
      cv_.wait_for(lock, std::chrono::duration<double, std::milli>(wait_ms), [&] { return !completed_.empty(); });
    }
    while (!completed_.empty()) {
      ready_.push_back(completed_.front());
      completed_.pop_front();
    }
    lock.unlock();
    double now = clock_.now_ms();
    while (!timers_.empty() && timers_.top()->at <= now) {
      auto s = timers_.top();
      timers_.pop();
      if (s->fired) continue;
      s->fired = true;
      ready_.push_back(s->handle);
    }
  }
}

namespace {

struct AllState {
  size_t running = 0;
  std::exception_ptr first_error;
  std::coroutine_handle<> waiter;
};

}  // namespace

Task<void> Scheduler::all(std::vector<std::function<Task<void>()>> makers, size_t limit, CancelScope& scope) {
  if (limit == 0) limit = 1;
  auto state = std::make_shared<AllState>();
  size_t next = 0;
  // Each lane is a detached task that reports to the shared state and wakes the waiter.
  auto lane = [](Scheduler& s, std::shared_ptr<AllState> st, std::function<Task<void>()> make, CancelScope& sc) -> Task<void> {
    try {
      Task<void> task = make();
      co_await task;
    } catch (const Cancelled&) {
      // stopped with its scope: not an error of its own
    } catch (...) {
      if (!st->first_error) st->first_error = std::current_exception();
      sc.cancel(s);
    }
    --st->running;
    if (st->waiter) {
      auto w = std::exchange(st->waiter, {});
      s.make_ready(w);
    }
  };
  struct Wait {
    std::shared_ptr<AllState> st;
    bool await_ready() const { return false; }
    void await_suspend(std::coroutine_handle<> h) { st->waiter = h; }
    void await_resume() const {}
  };
  while (next < makers.size() || state->running > 0) {
    while (next < makers.size() && state->running < limit && !scope.cancelled()) {
      ++state->running;
      spawn(lane(*this, state, std::move(makers[next++]), scope));
    }
    if (state->running == 0) break;
    Wait wait{state};
    co_await wait;
  }
  if (state->first_error) std::rethrow_exception(state->first_error);
  if (scope.cancelled()) throw Cancelled{};
}

}  // namespace gray
