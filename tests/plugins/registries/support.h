// Helpers for the registry driver tests: configurations, calls and a real etcd on 127.0.0.1.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "plugins/api.h"
#include "plugins/driver.h"
#include "runtime/value.h"
#include "tests/support/process.h"

namespace gray::regtest {

inline Value str(const std::string& s) { return Value::string(s); }
inline Value list(std::vector<std::string> items) {
  List l;
  for (auto& s : items) l.push_back(Value::string(std::move(s)));
  return Value::of_list(std::move(l));
}
inline Value map(std::map<std::string, Value> m) { return Value::of_map(Map(m.begin(), m.end())); }

inline plugins::Call call(const std::string& op, std::map<std::string, Value> args = {}, const std::string& key = "") {
  plugins::Call c;
  c.op = op;
  c.args = std::move(args);
  c.key = key.empty() ? "test-run:" + op : key;
  c.timeout_ms = 5000;
  return c;
}

// An instance as the interpreter passes it: the host name plus its inventory record.
inline std::map<std::string, Value> host(const std::string& name, const std::string& addr, int port,
                                         std::map<std::string, Value> vars = {}) {
  return {{"instance", str(name)}, {"addr", str(addr)}, {"port", Value::number(port)}, {"vars", map(std::move(vars))}};
}

inline std::map<std::string, Value> with(std::map<std::string, Value> args, const std::string& k, Value v) {
  args[k] = std::move(v);
  return args;
}

inline plugins::DriverEnv test_env(std::vector<std::string>* notes = nullptr) {
  plugins::DriverEnv env = plugins::DriverEnv::process(".");
  env.note = [notes](const std::string& n) {
    if (notes) notes->push_back(n);
  };
  return env;
}

inline double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Polls `pred` every 20 ms until it holds or `timeout_ms` passes; returns how long it took, or -1.
template <typename Pred>
double wait_until(Pred pred, double timeout_ms) {
  double t0 = now_ms();
  while (now_ms() - t0 < timeout_ms) {
    if (pred()) return now_ms() - t0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred() ? now_ms() - t0 : -1;
}

// A temporary directory, removed when the test leaves its scope (also on a failed REQUIRE).
struct TempDir {
  explicit TempDir(const std::string& prefix) : path(testing::make_temp_dir(prefix)) {}
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path;
};

// A real etcd on free loopback ports, in a temporary data dir removed on destruction.
class EtcdServer {
 public:
  EtcdServer() {
    if (testing::find_program("etcd").empty()) throw std::runtime_error("etcd is not installed (apt-get install etcd-server)");
    dir_ = testing::make_temp_dir("gray-etcd");
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = testing::free_port();
      int peer = testing::free_port(), metrics = testing::free_port();
      std::string client = "http://127.0.0.1:" + std::to_string(port_);
      std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
      proc_ = testing::Process({"etcd",
                                "--name",
                                "t",
                                "--data-dir",
                                dir_ + "/data",
                                "--listen-client-urls",
                                client,
                                "--advertise-client-urls",
                                client,
                                "--listen-peer-urls",
                                peer_url,
                                "--initial-advertise-peer-urls",
                                peer_url,
                                "--initial-cluster",
                                "t=" + peer_url,
                                "--initial-cluster-state",
                                "new",
                                "--listen-metrics-urls",
                                "http://127.0.0.1:" + std::to_string(metrics),
                                "--log-level",
                                "warn",
                                "--logger",
                                "zap"},
                               dir_ + "/etcd.log");
      if (testing::wait_for_http(client + "/health", 10000)) return;
      proc_.stop(1000);
      std::filesystem::remove_all(dir_ + "/data");
    }
    throw std::runtime_error("etcd did not start; log: " + testing::read_file(dir_ + "/etcd.log"));
  }
  ~EtcdServer() {
    proc_.stop(3000);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  void stop() { proc_.stop(3000); }

 private:
  std::string dir_;
  int port_ = 0;
  testing::Process proc_;
};

}  // namespace gray::regtest
