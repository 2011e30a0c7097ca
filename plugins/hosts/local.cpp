#include "plugins/hosts/local.h"

#include <filesystem>

#include "plugins/hosts/inventory.h"
#include "plugins/hosts/subprocess.h"

namespace gray::plugins {

namespace hosts {

bool command_arg(const Call& call, std::string& command, bool& secret, std::string& error) {
  auto it = call.args.find("command");
  if (it == call.args.end() || it->second.is_null()) {
    error = "run needs a command";
    return false;
  }
  if (it->second.kind != Value::Kind::String) {
    error = std::string("run needs the command as a string, not a ") + kind_name(it->second.kind);
    return false;
  }
  if (it->second.str.find_first_not_of(" \t\r\n") == std::string::npos) {
    error = "run got an empty command";
    return false;
  }
  command = it->second.str;
  secret = it->second.secret();
  return true;
}

Result run_on_this_machine(const WrapperArgs& args, double timeout_ms, const std::string& who, bool secret) {
  proc::Outcome o = proc::run(wrapper_argv(args), timeout_ms);
  Result r;
  if (!o.started) {
    r = error_result(who + ": " + o.start_error);
  } else if (o.timed_out) {
    r = timeout_result(who, timeout_ms);
  } else {
    Report rep = parse_report(o.out, args.nonce);
    switch (rep.kind) {
      case Report::Kind::Done:
      case Report::Kind::Replayed: r = command_result(rep, who, secret); break;
      case Report::Kind::Timeout: r = timeout_result(who, timeout_ms); break;
      case Report::Kind::Setup: r = error_result(who + ": " + rep.message); break;
      case Report::Kind::Short:
      case Report::Kind::Missing: {
        std::string why = last_line(o.err);
        r = error_result(who + ": /bin/sh did not report the command's result (exit code " + std::to_string(o.exit_code) + ")" +
                         (why.empty() ? "" : ": " + why));
        break;
      }
    }
  }
  r.elapsed_ms = o.elapsed_ms;
  return r;
}

}  // namespace hosts

namespace {

namespace fs = std::filesystem;

class LocalHosts : public HostsDriver {
 public:
  LocalHosts(std::string instance, std::vector<HostRecord> inventory, std::string shell, std::string state_dir)
      : instance_(std::move(instance)), inventory_(std::move(inventory)), shell_(std::move(shell)), state_dir_(std::move(state_dir)) {}

  std::vector<HostRecord> inventory() override { return inventory_; }

  Result call(const Call& c) override {
    if (hosts::is_catalog_op(c.op)) return hosts::catalog_op(inventory_, c);
    if (c.op != "run") return error_result(instance_ + ": the local hosts driver has no operation \"" + c.op + "\"");
    auto h = c.args.find("host");
    const std::string host = h == c.args.end() || h->second.is_null() ? "" : h->second.text();
    const std::string who = host.empty() ? instance_ + " (local)" : instance_ + " on " + host + " (local)";
    const HostRecord* rec = host.empty() ? nullptr : hosts::find_host(inventory_, host);
    if (!host.empty() && !rec) return error_result(who + ": unknown host \"" + host + "\" (not in the inventory)");
    std::string command, problem;
    bool secret = false;
    if (!hosts::command_arg(c, command, secret, problem)) return error_result(who + ": " + problem);

    hosts::WrapperArgs a;
    a.command = command;
    a.marker = c.key.empty() ? "" : hosts::marker_name(host, c.key);
    a.state_dir = state_dir_;
    a.shell = shell_;
    a.nonce = hosts::new_nonce();
    if (rec) {
      a.host = rec->name;
      a.addr = rec->addr;
      a.port = rec->port;
    }
    return hosts::run_on_this_machine(a, c.timeout_ms, who, secret);
  }

 private:
  std::string instance_;
  std::vector<HostRecord> inventory_;
  std::string shell_, state_dir_;
};

}  // namespace

std::unique_ptr<Driver> make_local(const std::string& instance, const Value& config, const DriverEnv& env) {
  std::vector<HostRecord> inventory;
  if (config_field(config, "inventory")) {
    inventory = hosts::read_inventory(instance, config_path(instance, config, "inventory", env));
  } else {
    inventory.push_back(HostRecord{"localhost", "127.0.0.1", 0, {}, {}});
  }
  std::string shell = config_string(instance, config, "shell", "/bin/sh");
  if (proc::find_executable(shell).empty())
    throw DriverError(instance + ": field 'shell': " + shell + " is not an executable program" +
                      (shell.find('/') == std::string::npos ? " in PATH" : ""));
  std::string state_dir = config_path(instance, config, "state_dir", env, std::string());
  return std::make_unique<LocalHosts>(instance, std::move(inventory), std::move(shell), std::move(state_dir));
}

}  // namespace gray::plugins
