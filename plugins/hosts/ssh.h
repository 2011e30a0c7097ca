// The `ssh` hosts driver: commands on the inventory's hosts through the OpenSSH client, one
// reused connection per host (ControlMaster), with the idempotency markers of wrapper.h on the
// target host. See README.md here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "plugins/driver.h"

namespace gray::plugins {

// The driver is a HostsDriver (dynamic_cast for inventory()). Configuration: `inventory`
// (required), `user`, `key`, `port` (22), `connect_timeout` (10s), `known_hosts`, `options`
// (extra ssh -o settings), `state_dir` ($HOME/.gray/done on each host). Per host, the
// inventory fields `ssh_port` and `ssh_user` override `port` and `user`. Safe to call from
// several threads at once. Destroying it closes the connections it opened (ssh -O exit).
std::unique_ptr<Driver> make_ssh(const std::string& instance, const Value& config, const DriverEnv& env);

namespace hosts {

// Where and as whom the driver connects to one host.
struct SshTarget {
  std::string addr;
  int port = 22;
  std::string user;  // empty: ssh's default
};

// The ssh options the driver passes for every connection (exposed for tests and docs).
struct SshSettings {
  std::string control_dir;          // private directory of the control sockets
  double connect_timeout_ms = 10000;
  std::string key;                  // -i, with IdentitiesOnly
  std::string known_hosts;          // UserKnownHostsFile, with StrictHostKeyChecking=yes
  std::vector<std::string> options; // extra -o values
  int persist_s = 60;               // ControlPersist
};

// argv for `ssh ... -- ADDR REMOTE_COMMAND` (remote_command empty: none), and for `-O exit`.
std::vector<std::string> ssh_argv(const SshSettings& s, const SshTarget& t, const std::string& remote_command);
std::vector<std::string> ssh_exit_argv(const SshSettings& s, const SshTarget& t);

}  // namespace hosts

}  // namespace gray::plugins
