// The run lock: one run per target, as two runs (or a crashed one) meet it. Time, processes and
// hosts are played by a fake LockEnv, so waiting and expiry take no real time.
#include "runtime/lock.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "runtime/journal.h"

namespace fs = std::filesystem;
using namespace gray;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "gray-lock-test-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

constexpr int64_t kT0 = 1732243860000;  // 2024-11-22T02:51:00.000Z

// A pretend world: one clock, a set of live pids, and the hosts processes run on.
struct World {
  int64_t now = kT0;
  std::set<long> alive;
  std::vector<int64_t> sleeps;
  std::function<void()> on_sleep;

  LockEnv env(long pid, const std::string& host = "host-a") {
    alive.insert(pid);
    LockEnv e;
    e.now_ms = [this] { return now; };
    e.sleep_ms = [this](int64_t ms) {
      sleeps.push_back(ms);
      now += ms;
      if (on_sleep) on_sleep();
    };
    e.pid_alive = [this](long p) { return alive.count(p) != 0; };
    e.host = host;
    e.pid = pid;
    return e;
  }
};

LockOptions opts(const TempDir& d, World& w, const std::string& run, long pid, const std::string& host = "host-a") {
  LockOptions o;
  o.state_dir = d.str();
  o.holder = run;
  o.ttl_ms = 60000;
  o.timeout_ms = 0;
  o.poll_ms = 1000;
  o.env = w.env(pid, host);
  return o;
}

}  // namespace

TEST_CASE("lock: the lock file names its holder and expiry", "[lock]") {
  TempDir d;
  World w;
  AcquireResult a = RunLock::acquire(opts(d, w, "r1", 100), "checkout");
  REQUIRE(a.error == "");
  REQUIRE(a.lock);
  CHECK(a.notes.empty());
  CHECK(a.lock->path() == d.str() + "/locks/checkout.lock");
  CHECK(
      slurp(a.lock->path()) ==
      R"({"acquired_at":"2024-11-22T02:51:00.000Z","expires_at":"2024-11-22T02:52:00.000Z","holder":"r1","host":"host-a","pid":100})"
      "\n");
  LockRead r = read_lock(d.str(), "checkout");
  REQUIRE(r.info);
  CHECK(r.info->holder == "r1");
  CHECK(r.info->expires_at_ms == kT0 + 60000);

  CHECK(!a.lock->release());
  CHECK(!fs::exists(d.str() + "/locks/checkout.lock"));
  CHECK(!read_lock(d.str(), "checkout").info);
  CHECK(read_lock(d.str(), "checkout").error == "");
}

TEST_CASE("lock: a second run is refused, naming the holder and force-unlock", "[lock]") {
  TempDir d;
  World w;
  AcquireResult a = RunLock::acquire(opts(d, w, "r1", 100), "checkout");
  REQUIRE(a.lock);

  SECTION("without waiting") {
    AcquireResult b = RunLock::acquire(opts(d, w, "r2", 200), "checkout");
    CHECK(!b.lock);
    CHECK(
        b.error ==
        "checkout is locked by run r1 (pid 100 on host-a, since 2024-11-22T02:51:00.000Z, expires 2024-11-22T02:52:00.000Z); not "
        "waiting (--lock-timeout is 0). If that run is gone, remove the lock with: gray force-unlock checkout");
    CHECK(w.sleeps.empty());
  }
  SECTION("waiting up to the timeout, polling, while the holder refreshes") {
    LockOptions o = opts(d, w, "r2", 200);
    o.timeout_ms = 5000;
    o.poll_ms = 2000;
    AcquireResult b = RunLock::acquire(o, "checkout");
    CHECK(!b.lock);
    CHECK(w.sleeps == std::vector<int64_t>{2000, 2000, 1000});
    CHECK(b.error.find("; gave up after waiting 5s. If that run is gone, remove the lock with: gray force-unlock checkout") !=
          std::string::npos);
  }
  SECTION("getting it when the holder releases while we wait") {
    LockOptions o = opts(d, w, "r2", 200);
    o.timeout_ms = 10000;
    w.on_sleep = [&] {
      if (w.sleeps.size() == 3) CHECK(!a.lock->release());
    };
    AcquireResult b = RunLock::acquire(o, "checkout");
    REQUIRE(b.lock);
    CHECK(b.notes.empty());
    CHECK(w.sleeps.size() == 3);
    CHECK(b.lock->info().holder == "r2");
    CHECK(b.lock->info().acquired_at_ms == kT0 + 3000);
  }
  SECTION("other targets are independent") {
    AcquireResult b = RunLock::acquire(opts(d, w, "r2", 200), "search");
    CHECK(b.lock);
  }
}

TEST_CASE("lock: a stale lock is taken over, with a note", "[lock]") {
  TempDir d;
  World w;
  AcquireResult a = RunLock::acquire(opts(d, w, "r1", 100), "checkout");
  REQUIRE(a.lock);

  SECTION("expired") {
    w.now += 90000;
    AcquireResult b = RunLock::acquire(opts(d, w, "r2", 200, "host-b"), "checkout");
    REQUIRE(b.lock);
    REQUIRE(b.notes.size() == 1);
    CHECK(b.notes[0] ==
          "took over the stale lock on checkout from run r1 (pid 100 on host-a, since 2024-11-22T02:51:00.000Z, expires "
          "2024-11-22T02:52:00.000Z): it expired at 2024-11-22T02:52:00.000Z, 30s ago");
  }
  SECTION("its process is gone, on this host") {
    w.alive.erase(100);
    AcquireResult b = RunLock::acquire(opts(d, w, "r1", 300), "checkout");  // the same run, resumed
    REQUIRE(b.lock);
    REQUIRE(b.notes.size() == 1);
    CHECK(b.notes[0].find("): its process 100 is gone") != std::string::npos);
  }
  SECTION("a pid on another host is not ours to judge: only expiry counts there") {
    w.alive.erase(100);
    AcquireResult b = RunLock::acquire(opts(d, w, "r2", 200, "host-b"), "checkout");
    CHECK(!b.lock);
  }

  // The old holder finds out at its next refresh, and does not remove the new holder's lock.
  w.alive.erase(100);
  w.now += 90000;
  AcquireResult b = RunLock::acquire(opts(d, w, "r2", 200), "checkout");
  REQUIRE(b.lock);
  CHECK(a.lock->refresh() == "lost the lock on checkout: it is now held by run r2 (pid 200 on host-a, since " +
                                 iso8601_utc(b.lock->info().acquired_at_ms) + ", expires " +
                                 iso8601_utc(b.lock->info().expires_at_ms) + ")");
  auto e = a.lock->release();
  REQUIRE(e);
  CHECK(e->find("did not release the lock on checkout: it is no longer ours (held by run r2") == 0);
  CHECK(read_lock(d.str(), "checkout").info->holder == "r2");
}

TEST_CASE("lock: refresh moves the expiry", "[lock]") {
  TempDir d;
  World w;
  AcquireResult a = RunLock::acquire(opts(d, w, "r1", 100), "checkout");
  REQUIRE(a.lock);
  w.now += 50000;
  CHECK(!a.lock->refresh());
  CHECK(a.lock->info().expires_at_ms == kT0 + 110000);
  CHECK(read_lock(d.str(), "checkout").info->expires_at_ms == kT0 + 110000);
  w.now += 50000;  // past the first expiry, inside the refreshed one
  CHECK(!RunLock::acquire(opts(d, w, "r2", 200), "checkout").lock);
}

TEST_CASE("lock: force-unlock", "[lock]") {
  TempDir d;
  World w;
  CHECK(force_unlock(d.str(), "checkout", w.env(1)).message == "checkout is not locked");

  AcquireResult a = RunLock::acquire(opts(d, w, "r1", 100), "checkout");
  REQUIRE(a.lock);
  ForceUnlockResult f = force_unlock(d.str(), "checkout", w.env(1));
  CHECK(f.removed);
  CHECK(f.error == "");
  CHECK(f.message ==
        "removed the lock on checkout held by run r1 (pid 100 on host-a, since 2024-11-22T02:51:00.000Z, expires "
        "2024-11-22T02:52:00.000Z); its process 100 is still running on this host and will stop when it next refreshes the lock");
  CHECK(a.lock->refresh() == "lost the lock on checkout: the lock file was removed (gray force-unlock?)");

  AcquireResult b = RunLock::acquire(opts(d, w, "r2", 200), "checkout");
  REQUIRE(b.lock);
  CHECK(b.notes.empty());
  b.lock.reset();  // released on destruction
  CHECK(!read_lock(d.str(), "checkout").info);
}

TEST_CASE("lock: a file that is not a lock is not silently taken", "[lock]") {
  TempDir d;
  World w;
  fs::create_directories(d.path / "locks");
  std::ofstream(d.path / "locks" / "checkout.lock") << "hello";
  AcquireResult a = RunLock::acquire(opts(d, w, "r1", 100), "checkout");
  CHECK(!a.lock);
  CHECK(a.error == d.str() +
                       "/locks/checkout.lock is not a gray lock file (not JSON); if no run holds checkout, remove it with: gray "
                       "force-unlock checkout");
  ForceUnlockResult f = force_unlock(d.str(), "checkout", w.env(1));
  CHECK(f.message == "removed " + d.str() + "/locks/checkout.lock, which was not a gray lock file (not JSON)");
  CHECK(RunLock::acquire(opts(d, w, "r1", 100), "checkout").lock);
}

TEST_CASE("lock: target names map to plain file names", "[lock]") {
  CHECK(lock_path("/s", "checkout") == "/s/locks/checkout.lock");
  CHECK(lock_path("/s", "eu-west.checkout_v2") == "/s/locks/eu-west.checkout_v2.lock");
  CHECK(lock_path("/s", "../etc/passwd") == "/s/locks/%2E.%2Fetc%2Fpasswd.lock");
  CHECK(lock_path("/s", "a b/ü") == "/s/locks/a%20b%2F%C3%BC.lock");
  TempDir d;
  World w;
  CHECK(RunLock::acquire(opts(d, w, "r1", 1), "").error == "cannot lock an empty target name");
}

TEST_CASE("lock: real processes exclude each other", "[lock]") {
  // Four processes each take the lock 25 times and bump a counter file under it, with the real
  // clock, pids and flock. A lost update means two held the lock at once.
  TempDir d;
  const std::string counter = d.str() + "/counter";
  std::ofstream(counter) << 0;
  std::vector<pid_t> kids;
  for (int k = 0; k < 4; ++k) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int bad = 0;
      for (int i = 0; i < 25; ++i) {
        LockOptions o;
        o.state_dir = d.str();
        o.holder = "kid" + std::to_string(k);
        o.timeout_ms = 60000;
        o.poll_ms = 1;
        AcquireResult a = RunLock::acquire(o, "shared");
        if (!a.lock) {
          bad = 1;
          break;
        }
        int n = 0;
        std::ifstream(counter) >> n;
        std::ofstream(counter, std::ios::trunc) << n + 1;
        if (a.lock->release()) bad = 1;
      }
      std::_Exit(bad);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    REQUIRE(::waitpid(k, &status, 0) == k);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  int n = 0;
  std::ifstream(counter) >> n;
  CHECK(n == 100);
}
