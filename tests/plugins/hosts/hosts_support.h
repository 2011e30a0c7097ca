// What the hosts tests share: a real sshd on 127.0.0.1 (started once per test binary, with its
// own host key and a client key that may log in as the current user), and builders for
// configurations and run calls.
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "plugins/api.h"
#include "plugins/driver.h"
#include "tests/support/process.h"

namespace gray::testing::hosts {

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

inline plugins::Call run_call(const std::string& host, const std::string& command, const std::string& key = "",
                              double timeout_ms = 10000) {
  plugins::Call c;
  c.op = "run";
  c.args["host"] = Value::string(host);
  c.args["command"] = Value::string(command);
  c.key = key;
  c.timeout_ms = timeout_ms;
  return c;
}

inline std::string field(const plugins::Result& r, const std::string& name) {
  auto it = r.value.fields().find(name);
  return it == r.value.fields().end() ? "<missing>" : it->second.text();
}

// A temporary directory removed at the end of the scope.
struct TempDir {
  std::string path = make_temp_dir("gray-hosts-test");
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// Whether `pid` is a live process. A zombie is not: the container's init may never reap the
// orphans (daemons, ssh masters) it inherits.
inline bool alive(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

inline std::string run_shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// One sshd for the whole test binary, listening on 127.0.0.1:port().
class SshdFixture {
 public:
  static SshdFixture& get() {
    static SshdFixture fixture;
    if (!fixture.error_.empty()) throw std::runtime_error(fixture.error_);
    return fixture;
  }

  int port() const { return port_; }
  std::string client_key() const { return dir_.file("client_key"); }
  std::string known_hosts() const { return dir_.file("known_hosts"); }
  std::string dir() const { return dir_.path; }
  std::string user() const { return user_; }

  ~SshdFixture() { sshd_.stop(); }

 private:
  SshdFixture() {
    const std::string sshd = find_program("sshd"), keygen = find_program("ssh-keygen");
    if (sshd.empty() || keygen.empty() || find_program("ssh").empty()) {
      error_ = "OpenSSH is not installed (need sshd, ssh and ssh-keygen; run .ci/deps)";
      return;
    }
    const char* login = ::getenv("USER");
    user_ = login && *login ? login : (::getuid() == 0 ? "root" : "");
    std::error_code ec;
    std::filesystem::create_directories("/run/sshd", ec);
    for (const char* key : {"host_key", "client_key"}) {
      std::string cmd = keygen + " -q -t ed25519 -N '' -f " + dir_.file(key) + " >/dev/null 2>&1";
      if (std::system(cmd.c_str()) != 0) {
        error_ = "ssh-keygen failed to make " + dir_.file(key);
        return;
      }
    }
    write_file(dir_.file("authorized_keys"), read_file(dir_.file("client_key.pub")));
    port_ = free_port();
    write_file(dir_.file("known_hosts"), "[127.0.0.1]:" + std::to_string(port_) + " " + read_file(dir_.file("host_key.pub")));
    write_file(dir_.file("sshd_config"), "Port " + std::to_string(port_) +
                                             "\nListenAddress 127.0.0.1\nHostKey " + dir_.file("host_key") +
                                             "\nPidFile " + dir_.file("sshd.pid") + "\nAuthorizedKeysFile " +
                                             dir_.file("authorized_keys") +
                                             "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                                             "StrictModes no\nPermitRootLogin prohibit-password\nMaxStartups 100\n"
                                             "MaxSessions 100\n"
                                             // bash sources ~/.bashrc for ssh commands only at shell
                                             // level 1; this machine's root .bashrc spends ~200 ms
                                             // in `pyenv init`, which would drown what the tests
                                             // measure (ssh and connection reuse).
                                             "SetEnv SHLVL=1\n");
    sshd_ = Process({sshd, "-D", "-e", "-f", dir_.file("sshd_config")}, dir_.file("sshd.log"));
    if (!wait_for_port(port_, 10000)) error_ = "sshd did not listen on 127.0.0.1:" + std::to_string(port_) + ": " + read_file(dir_.file("sshd.log"));
  }

  TempDir dir_;
  int port_ = 0;
  std::string user_, error_;
  Process sshd_;
};

}  // namespace gray::testing::hosts
