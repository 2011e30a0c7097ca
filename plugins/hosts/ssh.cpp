#include "plugins/hosts/ssh.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

#include "plugins/hosts/inventory.h"
#include "plugins/hosts/local.h"
#include "plugins/hosts/subprocess.h"
#include "plugins/hosts/wrapper.h"

namespace gray::plugins {

namespace hosts {

namespace {

std::string seconds_up(double ms) { return std::to_string(std::max(1L, static_cast<long>(std::ceil(ms / 1000.0)))); }

// Options shared by commands and control requests, up to and including the destination.
std::vector<std::string> common_argv(const SshSettings& s, const SshTarget& t) {
  std::vector<std::string> a = {"ssh", "-T"};
  // ssh keeps the first value it sees for an option: the configured options come first, so
  // they can change gray's defaults below (ControlPersist, or ControlPath=none to turn reuse off).
  for (const std::string& o : s.options) a.insert(a.end(), {"-o", o});
  a.insert(a.end(), {"-o", "BatchMode=yes",  // never prompt: there is no terminal to answer
                     "-o", "ConnectTimeout=" + seconds_up(s.connect_timeout_ms),
                     "-o", "ControlMaster=auto",
                     "-o", "ControlPath=" + s.control_dir + "/%C",
                     "-o", "ControlPersist=" + std::to_string(s.persist_s),
                     "-o", "ServerAliveInterval=15",
                     "-o", "ServerAliveCountMax=3",
                     "-o", "LogLevel=ERROR"});  // warnings stay out of stderr; errors do not
  if (!s.key.empty()) a.insert(a.end(), {"-i", s.key, "-o", "IdentitiesOnly=yes"});
  if (!s.known_hosts.empty())
    a.insert(a.end(), {"-o", "UserKnownHostsFile=" + s.known_hosts, "-o", "StrictHostKeyChecking=yes"});
  if (!t.user.empty()) a.insert(a.end(), {"-l", t.user});
  a.insert(a.end(), {"-p", std::to_string(t.port)});
  return a;
}

}  // namespace

std::vector<std::string> ssh_argv(const SshSettings& s, const SshTarget& t, const std::string& remote_command) {
  std::vector<std::string> a = common_argv(s, t);
  a.insert(a.end(), {"--", t.addr});  // "--": an address can never be read as an option
  if (!remote_command.empty()) a.push_back(remote_command);
  return a;
}

std::vector<std::string> ssh_exit_argv(const SshSettings& s, const SshTarget& t) {
  std::vector<std::string> a = common_argv(s, t);
  a.insert(a.end(), {"-O", "exit", "--", t.addr});
  return a;
}

}  // namespace hosts

namespace {

namespace fs = std::filesystem;
using hosts::Report;
using hosts::SshSettings;
using hosts::SshTarget;

// ssh's own exit code for "could not connect or authenticate" (and any error of its own).
constexpr int kSshFailure = 255;
// Time the remote watchdog gets to end a command and report before the local deadline.
constexpr double kReportMarginMs = 1500;

class SshHosts : public HostsDriver {
 public:
  SshHosts(std::string instance, std::vector<HostRecord> inventory, SshSettings settings, int default_port,
           std::string default_user, std::string state_dir)
      : instance_(std::move(instance)),
        inventory_(std::move(inventory)),
        settings_(std::move(settings)),
        default_port_(default_port),
        default_user_(std::move(default_user)),
        state_dir_(std::move(state_dir)) {}

  ~SshHosts() override { close_connections(); }

  std::vector<HostRecord> inventory() override { return inventory_; }

  Result call(const Call& c) override {
    if (hosts::is_catalog_op(c.op)) return hosts::catalog_op(inventory_, c);
    if (c.op != "run") return error_result(instance_ + ": the ssh hosts driver has no operation \"" + c.op + "\"");
    auto h = c.args.find("host");
    const std::string host = h == c.args.end() || h->second.is_null() ? "" : h->second.text();
    std::string command, problem;
    bool secret = false;
    if (!hosts::command_arg(c, command, secret, problem)) return error_result(who_for(host, nullptr) + ": " + problem);

    hosts::WrapperArgs a;
    a.command = command;
    a.marker = c.key.empty() ? "" : hosts::marker_name(host, c.key);
    a.nonce = hosts::new_nonce();
    if (host.empty()) {
      // No host (a `probe cmd` outside `on`): the command runs where gray runs, as everywhere.
      return hosts::run_on_this_machine(a, c.timeout_ms, instance_ + " (on this machine)", secret);
    }
    const HostRecord* rec = hosts::find_host(inventory_, host);
    if (!rec) return error_result(instance_ + " on " + host + ": unknown host \"" + host + "\" (not in the inventory)");
    SshTarget t;
    if (std::string why; !target_of(*rec, t, why)) return error_result(instance_ + " on " + host + ": " + why);
    a.state_dir = state_dir_;
    a.host = rec->name;
    a.addr = rec->addr;
    a.port = rec->port;
    // The remote watchdog ends the command at the timeout; ending ssh alone would leave it running.
    a.limit_s = std::max(1, static_cast<int>(std::ceil(c.timeout_ms / 1000.0)));
    return run_remote(a, t, c.timeout_ms, who_for(host, &t), secret);
  }

 private:
  std::string who_for(const std::string& host, const SshTarget* t) const {
    if (host.empty()) return instance_;
    std::string w = instance_ + " on " + host;
    if (t) w += " (" + (t->user.empty() ? "" : t->user + "@") + t->addr + ":" + std::to_string(t->port) + ")";
    return w;
  }

  bool target_of(const HostRecord& h, SshTarget& t, std::string& why) const {
    t.addr = h.addr.empty() ? h.name : h.addr;
    if (t.addr.front() == '-') {
      why = "address \"" + t.addr + "\" starts with '-'";
      return false;
    }
    t.port = default_port_;
    if (auto p = h.vars.find("ssh_port"); p != h.vars.end()) {
      char* end = nullptr;
      long v = std::strtol(p->second.c_str(), &end, 10);
      if (p->second.empty() || *end != '\0' || v < 1 || v > 65535) {
        why = "inventory field ssh_port \"" + p->second + "\" is not a port number";
        return false;
      }
      t.port = static_cast<int>(v);
    }
    auto u = h.vars.find("ssh_user");
    t.user = u != h.vars.end() ? u->second : default_user_;
    return true;
  }

  Result run_remote(const hosts::WrapperArgs& a, const SshTarget& t, double timeout_ms, const std::string& who, bool secret) {
    remember(t);
    proc::Outcome o = proc::run(hosts::ssh_argv(settings_, t, hosts::wrapper_command_line(a)), timeout_ms + kReportMarginMs);
    Result r;
    if (!o.started) {
      r = error_result(who + ": " + o.start_error);
    } else if (o.timed_out) {
      r = hosts::timeout_result(who, timeout_ms);
    } else {
      r = read_outcome(o, a, who, timeout_ms, secret);
    }
    r.elapsed_ms = o.elapsed_ms;
    return r;
  }

  static Result read_outcome(const proc::Outcome& o, const hosts::WrapperArgs& a, const std::string& who, double timeout_ms,
                             bool secret) {
    Report rep = hosts::parse_report(o.out, a.nonce);
    const std::string ssh_said = hosts::last_line(o.err);
    switch (rep.kind) {
      case Report::Kind::Done:
      case Report::Kind::Replayed: return hosts::command_result(rep, who, secret);
      case Report::Kind::Timeout: return hosts::timeout_result(who, timeout_ms);
      case Report::Kind::Setup: return error_result(who + ": " + rep.message);
      case Report::Kind::Short:
        return error_result(who + ": the connection was lost while the result came back" +
                            (a.marker.empty() ? std::string() : "; the host keeps the result under the key for a retry") +
                            (ssh_said.empty() ? "" : ": " + ssh_said));
      case Report::Kind::Missing: break;
    }
    if (o.exit_code == kSshFailure)
      return error_result(who + ": cannot reach the host: " + (ssh_said.empty() ? "ssh exited with 255" : ssh_said));
    return error_result(who + ": the remote shell did not run gray's wrapper (exit code " + std::to_string(o.exit_code) +
                        "); the login shell must be a POSIX shell" + (ssh_said.empty() ? "" : ": " + ssh_said));
  }

  void remember(const SshTarget& t) {
    std::lock_guard<std::mutex> lock(mu_);
    used_.insert({t.addr, t.port, t.user});
  }

  // Ends the connection masters this driver started, then removes their socket directory.
  void close_connections() {
    std::set<std::tuple<std::string, int, std::string>> used;
    {
      std::lock_guard<std::mutex> lock(mu_);
      used.swap(used_);
    }
    for (const auto& [addr, port, user] : used) {
      SshTarget t{addr, port, user};
      if (fs::exists(settings_.control_dir)) proc::run(hosts::ssh_exit_argv(settings_, t), 3000, 4096);
    }
    std::error_code ec;
    fs::remove_all(settings_.control_dir, ec);
  }

  std::string instance_;
  std::vector<HostRecord> inventory_;
  SshSettings settings_;
  int default_port_;
  std::string default_user_, state_dir_;
  std::mutex mu_;
  std::set<std::tuple<std::string, int, std::string>> used_;
};

// A private directory for the control sockets, with a short path: a unix socket path may not
// be longer than 107 bytes, and ssh's %C alone takes 40.
std::string make_control_dir(const std::string& instance) {
  std::string pattern = "/tmp/gray-ssh-XXXXXX";
  if (!::mkdtemp(pattern.data())) throw DriverError(instance + ": cannot create a directory for ssh's control sockets under /tmp");
  return pattern;
}

int port_field(const std::string& instance, const Value& config) {
  const Value* v = config_field(config, "port");
  if (!v) return 22;
  if (v->kind != Value::Kind::Number || v->num != std::floor(v->num) || v->num < 1 || v->num > 65535)
    throw DriverError(instance + ": field 'port' must be a port number from 1 to 65535");
  return static_cast<int>(v->num);
}

// A path field of this machine: "~/" is the user's home, other relative paths are the
// pipeline's folder's.
std::string local_path(const std::string& instance, const Value& config, const std::string& field, const DriverEnv& env) {
  std::string p = config_string(instance, config, field, std::string());
  if (p.rfind("~/", 0) == 0) {
    std::optional<std::string> home = env.getenv ? env.getenv("HOME") : std::nullopt;
    if (!home || home->empty()) throw DriverError(instance + ": field '" + field + "': " + p + " needs HOME, which is not set");
    return *home + p.substr(1);
  }
  return config_path(instance, config, field, env, std::string());
}

void require_readable(const std::string& instance, const std::string& field, const std::string& path) {
  if (path.empty()) return;
  if (::access(path.c_str(), R_OK) != 0) throw DriverError(instance + ": field '" + field + "': cannot read " + path);
}

}  // namespace

std::unique_ptr<Driver> make_ssh(const std::string& instance, const Value& config, const DriverEnv& env) {
  if (proc::find_executable("ssh").empty())
    throw DriverError(instance + ": the OpenSSH client (ssh) is not installed or not in PATH");
  std::vector<HostRecord> inventory = hosts::read_inventory(instance, config_path(instance, config, "inventory", env));
  SshSettings s;
  s.key = local_path(instance, config, "key", env);
  s.known_hosts = local_path(instance, config, "known_hosts", env);
  require_readable(instance, "key", s.key);
  require_readable(instance, "known_hosts", s.known_hosts);
  s.connect_timeout_ms = config_ms(instance, config, "connect_timeout", 10000);
  s.options = config_strings(instance, config, "options", false);
  for (const std::string& o : s.options)
    if (o.find('=') == std::string::npos || o.front() == '-')
      throw DriverError(instance + ": field 'options': \"" + o + "\" is not an ssh option such as \"ProxyJump=bastion\"");
  const int port = port_field(instance, config);
  std::string user = config_string(instance, config, "user", std::string());
  std::string state_dir = config_string(instance, config, "state_dir", std::string());
  s.control_dir = make_control_dir(instance);
  return std::make_unique<SshHosts>(instance, std::move(inventory), std::move(s), port, std::move(user), std::move(state_dir));
}

}  // namespace gray::plugins
