#include "runtime/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/journal.h"  // iso8601_utc
#include "runtime/value.h"    // format_duration

namespace gray {

using json = nlohmann::json;

LockEnv LockEnv::system() {
  LockEnv e;
  e.now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  e.sleep_ms = [](int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  e.pid_alive = [](long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); };
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) std::strcpy(name, "localhost");
  e.host = name;
  e.pid = static_cast<long>(::getpid());
  return e;
}

std::string lock_path(const std::string& state_dir, const std::string& target) {
  std::string name;
  for (unsigned char c : target) {
    const bool plain = std::isalnum(c) || c == '-' || c == '_' || (c == '.' && !name.empty());
    if (plain) {
      name += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      name += buf;
    }
  }
  return state_dir + "/locks/" + name + ".lock";
}

std::string describe_holder(const LockInfo& i) {
  return "run " + i.holder + " (pid " + std::to_string(i.pid) + " on " + i.host + ", since " + iso8601_utc(i.acquired_at_ms) +
         ", expires " + iso8601_utc(i.expires_at_ms) + ")";
}

namespace {

std::string errno_text(int e) { return std::strerror(e); }

std::string lock_json(const LockInfo& i) {
  json j = json::object();
  j["holder"] = i.holder;
  j["pid"] = i.pid;
  j["host"] = i.host;
  j["acquired_at"] = iso8601_utc(i.acquired_at_ms);
  j["expires_at"] = iso8601_utc(i.expires_at_ms);
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

// Empty string when `text` is a lock; otherwise what is wrong with it.
std::string parse_lock(const std::string& text, LockInfo& out) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "not JSON";
  auto str = [&](const char* k, std::string& v) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    v = it->get<std::string>();
    return true;
  };
  std::string acquired, expires;
  auto pid = j.find("pid");
  if (!str("holder", out.holder) || !str("host", out.host) || !str("acquired_at", acquired) || !str("expires_at", expires) ||
      pid == j.end() || !pid->is_number_integer())
    return "a field is missing";
  out.pid = pid->get<long>();
  auto a = parse_iso8601_utc(acquired), e = parse_iso8601_utc(expires);
  if (!a || !e) return "a time is not ISO 8601 UTC";
  out.acquired_at_ms = *a;
  out.expires_at_ms = *e;
  return "";
}

// The lock file, open and flock'ed, and what it held at that moment.
class Guarded {
 public:
  ~Guarded() {
    if (fd_ >= 0) ::close(fd_);  // also drops the flock
  }

  // Opens (creating if needed) and locks the file at `path`, making sure the file locked is the one
  // the path names now. False with `error` set if that cannot be done.
  bool open(const std::string& path, std::string& error) {
    path_ = path;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (ec) return (error = "cannot create " + std::filesystem::path(path).parent_path().string() + ": " + ec.message()), false;
    for (int attempt = 0; attempt < 1000; ++attempt) {
      fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) return (error = "cannot open " + path + ": " + errno_text(errno)), false;
      // Critical sections last microseconds; wait for one without blocking forever on a stuck one.
      bool locked = false;
      for (int i = 0; i < 5000 && !locked; ++i) {
        locked = ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
        if (!locked && errno != EWOULDBLOCK && errno != EINTR)
          return (error = "cannot flock " + path + ": " + errno_text(errno)), false;
        if (!locked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (!locked) return (error = "cannot flock " + path + ": another process holds it for more than 5s"), false;
      struct stat mine, named;
      if (::fstat(fd_, &mine) == 0 && ::stat(path.c_str(), &named) == 0 && mine.st_dev == named.st_dev &&
          mine.st_ino == named.st_ino)
        return read(error);
      ::close(fd_);  // replaced or removed while we waited: start over
      fd_ = -1;
    }
    return (error = "cannot lock " + path + ": it keeps changing"), false;
  }

  bool empty() const { return text_.find_first_not_of(" \t\r\n") == std::string::npos; }
  const std::string& text() const { return text_; }

  // Replaces the file's content (by rename, so it is whole or absent) and syncs it.
  bool write(const LockInfo& info, std::string& error) {
    const std::string tmp = path_ + "." + std::to_string(::getpid()) + ".tmp";
    const std::string text = lock_json(info);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return (error = "cannot write " + tmp + ": " + errno_text(errno)), false;
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (ok && ::rename(tmp.c_str(), path_.c_str()) != 0) ok = false, err = errno;
    if (!ok) {
      ::unlink(tmp.c_str());
      return (error = "cannot write " + path_ + ": " + errno_text(err)), false;
    }
    sync_dir();
    return true;
  }

  bool remove(std::string& error) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
      return (error = "cannot remove " + path_ + ": " + errno_text(errno)), false;
    sync_dir();
    return true;
  }

 private:
  bool read(std::string& error) {
    text_.clear();
    char buf[4096];
    for (;;) {
      ssize_t n = ::pread(fd_, buf, sizeof buf, static_cast<off_t>(text_.size()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return (error = "cannot read " + path_ + ": " + errno_text(errno)), false;
      if (n == 0) return true;
      text_.append(buf, static_cast<size_t>(n));
      if (text_.size() > (1 << 20)) return (error = path_ + " is not a gray lock file (it is over 1 MB)"), false;
    }
  }
  void sync_dir() {
    int d = ::open(std::filesystem::path(path_).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
      (void)::fsync(d);
      ::close(d);
    }
  }

  std::string path_;
  int fd_ = -1;
  std::string text_;
};

std::string not_a_lock(const std::string& path, const std::string& target, const std::string& why) {
  return path + " is not a gray lock file (" + why + "); if no run holds " + target + ", remove it with: gray force-unlock " +
         target;
}

bool same_holder(const LockInfo& a, const LockInfo& b) {
  return a.holder == b.holder && a.pid == b.pid && a.host == b.host && a.acquired_at_ms == b.acquired_at_ms;
}

// Why a lock is stale, or "" if its holder may still be running.
std::string stale_reason(const LockInfo& i, const LockEnv& env, int64_t now) {
  if (now >= i.expires_at_ms)
    return "it expired at " + iso8601_utc(i.expires_at_ms) + ", " + format_duration(double(now - i.expires_at_ms)) + " ago";
  if (i.host == env.host && !env.pid_alive(i.pid)) return "its process " + std::to_string(i.pid) + " is gone";
  return "";
}

}  // namespace

RunLock::RunLock(LockOptions options, std::string target, std::string path, LockInfo info)
    : options_(std::move(options)), target_(std::move(target)), path_(std::move(path)), info_(std::move(info)) {}

RunLock::~RunLock() {
  if (held_) (void)release();
}

AcquireResult RunLock::acquire(const LockOptions& o, const std::string& target) {
  AcquireResult out;
  if (target.empty()) return {nullptr, "cannot lock an empty target name", {}};
  if (o.holder.empty()) return {nullptr, "cannot lock " + target + " without a run id", {}};
  const std::string path = lock_path(o.state_dir, target);
  const int64_t start = o.env.now_ms();
  for (;;) {
    LockInfo held;
    {
      Guarded g;
      std::string error;
      if (!g.open(path, error)) return {nullptr, error, {}};
      const int64_t now = o.env.now_ms();
      bool free = g.empty();
      if (!free) {
        if (std::string why = parse_lock(g.text(), held); !why.empty()) return {nullptr, not_a_lock(path, target, why), {}};
        if (std::string why = stale_reason(held, o.env, now); !why.empty()) {
          out.notes.push_back("took over the stale lock on " + target + " from " + describe_holder(held) + ": " + why);
          free = true;
        }
      }
      if (free) {
        LockInfo mine{o.holder, o.env.pid, o.env.host, now, now + o.ttl_ms};
        if (!g.write(mine, error)) return {nullptr, error, {}};
        out.lock.reset(new RunLock(o, target, path, mine));
        return out;
      }
    }  // the flock is dropped here, before waiting
    const int64_t waited = o.env.now_ms() - start;
    if (waited >= o.timeout_ms) {
      out.error = target + " is locked by " + describe_holder(held) + "; " +
                  (o.timeout_ms > 0 ? "gave up after waiting " + format_duration(double(waited))
                                    : std::string("not waiting (--lock-timeout is 0)")) +
                  ". If that run is gone, remove the lock with: gray force-unlock " + target;
      return out;
    }
    o.env.sleep_ms(std::max<int64_t>(1, std::min(o.poll_ms, o.timeout_ms - waited)));
  }
}

std::optional<std::string> RunLock::refresh() {
  if (!held_) return "the lock on " + target_ + " was released";
  Guarded g;
  std::string error;
  if (!g.open(path_, error)) return error;
  if (g.empty()) return "lost the lock on " + target_ + ": the lock file was removed (gray force-unlock?)";
  LockInfo now_held;
  if (std::string why = parse_lock(g.text(), now_held); !why.empty())
    return "lost the lock on " + target_ + ": " + not_a_lock(path_, target_, why);
  if (!same_holder(now_held, info_)) return "lost the lock on " + target_ + ": it is now held by " + describe_holder(now_held);
  LockInfo next = info_;
  next.expires_at_ms = options_.env.now_ms() + options_.ttl_ms;
  if (!g.write(next, error)) return error;
  info_ = next;
  return std::nullopt;
}

std::optional<std::string> RunLock::release() {
  if (!held_) return std::nullopt;
  held_ = false;
  Guarded g;
  std::string error;
  if (!g.open(path_, error)) return error;
  if (g.empty()) return g.remove(error) ? std::nullopt : std::optional<std::string>(error);  // force-unlocked meanwhile
  LockInfo now_held;
  if (!parse_lock(g.text(), now_held).empty() || !same_holder(now_held, info_))
    return "did not release the lock on " + target_ + ": it is no longer ours (" +
           (parse_lock(g.text(), now_held).empty() ? "held by " + describe_holder(now_held)
                                                   : std::string("the file was rewritten")) +
           ")";
  if (!g.remove(error)) return error;
  return std::nullopt;
}

LockRead read_lock(const std::string& state_dir, const std::string& target) {
  LockRead out;
  const std::string path = lock_path(state_dir, target);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) out.error = "cannot read " + path + ": " + errno_text(errno);
    return out;
  }
  Guarded g;
  if (!g.open(path, out.error)) return out;
  if (g.empty()) return out;
  LockInfo info;
  if (std::string why = parse_lock(g.text(), info); !why.empty())
    out.error = not_a_lock(path, target, why);
  else
    out.info = info;
  return out;
}

ForceUnlockResult force_unlock(const std::string& state_dir, const std::string& target, const LockEnv& env) {
  ForceUnlockResult out;
  const std::string path = lock_path(state_dir, target);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    out.message = target + " is not locked";
    return out;
  }
  Guarded g;
  if (!g.open(path, out.error)) return out;
  LockInfo info;
  const bool empty = g.empty();
  const std::string why = empty ? "" : parse_lock(g.text(), info);
  if (!g.remove(out.error)) return out;
  out.removed = !empty;
  if (empty)
    out.message = target + " is not locked";
  else if (!why.empty())
    out.message = "removed " + path + ", which was not a gray lock file (" + why + ")";
  else {
    out.message = "removed the lock on " + target + " held by " + describe_holder(info);
    if (info.host == env.host && env.pid_alive(info.pid) && env.now_ms() < info.expires_at_ms)
      out.message += "; its process " + std::to_string(info.pid) +
                     " is still running on this host and will stop when it next refreshes the lock";
  }
  return out;
}

}  // namespace gray
