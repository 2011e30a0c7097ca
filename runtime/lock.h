// The run lock: one run per target at a time.
//
// A lock is the file <state-dir>/locks/<target>.lock holding one JSON object:
//   {"holder":RUN_ID,"pid":PID,"host":HOSTNAME,"acquired_at":ISO8601,"expires_at":ISO8601}
// No file (or an empty one) means the target is free. The holder refreshes the expiry while it
// runs and removes the file when it ends. A lock whose expiry has passed, or whose process is gone
// (same host, pid not running), is stale and the next run takes it over, with a note saying so.
//
// Every read-decide-write happens under flock() on the lock file, and new content replaces the
// file by rename(), so a reader sees the old holder or the new one, never half of either. A
// process that waited on the flock of a file that was meanwhile replaced or removed notices (the
// inode differs) and starts over.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gray {

struct LockInfo {
  std::string holder;  // run id
  long pid = 0;
  std::string host;
  int64_t acquired_at_ms = 0;  // wall clock, ms since the Unix epoch
  int64_t expires_at_ms = 0;
};

// What the lock needs from the world. Tests replace parts of it to run fast and to play other
// processes and hosts.
struct LockEnv {
  std::function<int64_t()> now_ms;           // wall clock, ms since the Unix epoch
  std::function<void(int64_t ms)> sleep_ms;  // between polls while waiting
  std::function<bool(long pid)> pid_alive;   // is this pid running on this host?
  std::string host;                          // this host's name
  long pid = 0;                              // this process

  static LockEnv system();
};

struct LockOptions {
  std::string state_dir;
  std::string holder;       // the run id that takes the lock
  int64_t ttl_ms = 120000;  // a lock not refreshed for this long is stale
  int64_t timeout_ms = 0;   // --lock-timeout: how long acquire waits for a live holder
  int64_t poll_ms = 1000;   // how often it looks again
  LockEnv env = LockEnv::system();
};

class RunLock;
struct AcquireResult {
  std::unique_ptr<RunLock> lock;   // null on failure
  std::string error;               // why not, naming the holder and how to force-unlock
  std::vector<std::string> notes;  // a stale lock was taken over: from whom, and why it was stale
};

class RunLock {
 public:
  // Takes the lock on `target`, waiting up to options.timeout_ms while a live run holds it.
  static AcquireResult acquire(const LockOptions& options, const std::string& target);

  ~RunLock();  // releases the lock if it is still held (errors ignored)
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  // Moves the expiry to now + ttl. Fails, changing nothing, if the lock is no longer ours (it
  // expired and another run took it over, or it was force-unlocked): the run must stop.
  std::optional<std::string> refresh();
  // Removes the lock if it is still ours; fails (and leaves the file) if someone else holds it.
  std::optional<std::string> release();

  const LockInfo& info() const { return info_; }
  const std::string& target() const { return target_; }
  const std::string& path() const { return path_; }
  bool held() const { return held_; }

 private:
  RunLock(LockOptions options, std::string target, std::string path, LockInfo info);

  LockOptions options_;
  std::string target_;
  std::string path_;
  LockInfo info_;
  bool held_ = true;
};

// <state-dir>/locks/<target>.lock; characters outside [A-Za-z0-9._-] in the target are written as
// %XX, so any target name maps to one plain file name.
std::string lock_path(const std::string& state_dir, const std::string& target);

// Who holds the lock on a target, for `gray status`. No info and no error: the target is free.
struct LockRead {
  std::optional<LockInfo> info;
  std::string error;
};
LockRead read_lock(const std::string& state_dir, const std::string& target);

// `gray force-unlock TARGET`: removes the lock whoever holds it. `message` says what was removed
// (or that the target was not locked); `error` is set when it could not be done.
struct ForceUnlockResult {
  bool removed = false;
  std::string message;
  std::string error;
};
ForceUnlockResult force_unlock(const std::string& state_dir, const std::string& target, const LockEnv& env = LockEnv::system());

// "run r-1 (pid 4242 on build-1, since 2024-11-22T02:51:00.000Z, expires 2024-11-22T02:53:00.000Z)"
std::string describe_holder(const LockInfo& info);

}  // namespace gray
