// Commands on simulated hosts: the first scenario rule whose pattern matches decides what the
// command does to the host (install a version, stop, start, crash...) and what it answers.
#include <algorithm>

#include "plugins/sim/args.h"
#include "plugins/sim/world.h"

namespace gray::sim {

using namespace detail;

namespace {

Result output(int exit_code, const std::string& out, const std::string& err, double duration_ms) {
  Result r = ok(
      Value::of_map({{"exit_code", Value::number(exit_code)}, {"stdout", Value::string(out)}, {"stderr", Value::string(err)}}));
  if (exit_code != 0) {
    r.status = Result::Status::Failed;
    r.message = "exit code " + std::to_string(exit_code) + (err.empty() ? "" : ": " + err.substr(0, err.find('\n')));
  }
  r.elapsed_ms = duration_ms;
  return r;
}

// $1..$9 from the rule's match.
std::string substitute(const std::string& s, const std::smatch& m) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] >= '1' && s[i + 1] <= '9') {
      size_t n = static_cast<size_t>(s[i + 1] - '0');
      if (n < m.size()) out += m[n].str();
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result World::run_command(const Value& host_arg, const std::string& command, const Call& c) {
  // No host: the command runs on the machine running gray (a `probe cmd` outside `on`).
  const std::string name = host_arg.is_null() ? "" : host_arg.text();
  int hi = -1;
  if (!name.empty()) {
    hi = find_host(name);
    if (hi < 0) return error("ssh: unknown host \"" + name + "\"");
    if (hosts_[static_cast<size_t>(hi)].state == HostState::Down) {
      Result r = error("ssh: connect to host " + name + ": connection timed out");
      r.elapsed_ms = std::min(10000.0, c.timeout_ms);
      return r;
    }
  }

  const CommandRule* rule = nullptr;
  std::smatch m;
  for (size_t i = 0; i < sc_.commands.size(); ++i) {
    const CommandRule& cr = sc_.commands[i];
    if (!cr.host.empty() && (hi < 0 || hosts_[static_cast<size_t>(hi)].name != cr.host)) continue;
    if (cr.times >= 0 && rule_uses_[i] >= cr.times) continue;
    if (!std::regex_search(command, m, cr.re)) continue;
    if (cr.probability < 1 && uniform() >= cr.probability) continue;
    rule = &cr;
    rule_uses_[i]++;
    break;
  }
  if (!rule) return output(0, "", "", 1000);

  int exit_code = rule->exit_code.value_or(rule->action == Action::Fail ? 1 : 0);
  std::string out = substitute(rule->out, m), err = substitute(rule->err, m);
  const double d = rule->duration_ms;
  Host* h = hi >= 0 ? &hosts_[static_cast<size_t>(hi)] : nullptr;
  const bool needs_host = rule->action == Action::Install || rule->action == Action::Stop || rule->action == Action::Start ||
                          rule->action == Action::Crash;
  if (needs_host && !h) return output(1, out, std::string(action_name(rule->action)) + ": no host to act on", d);
  if (h && h->state == HostState::Installing &&
      (rule->action == Action::Install || rule->action == Action::Stop || rule->action == Action::Start))
    return output(1, out, "busy: an install is in progress on " + h->name, d);

  switch (rule->action) {
    case Action::Install: {
      // Down for `duration`, then up on the new version; an install that exits non-zero comes
      // back on the version it had.
      std::string version = resolve_version(substitute(rule->version, m));
      h->state = HostState::Installing;
      h->next_version = exit_code == 0 ? version : h->version;
      h->next_mode = rule->mode.empty() ? h->mode : substitute(rule->mode, m);
      h->busy_until = now_ + d;
      if (d <= 0) apply_events();
      if (exit_code != 0 && err.empty()) err = "install of " + version + " failed";
      break;
    }
    case Action::Stop:
      h->state = HostState::Stopped;
      break;
    case Action::Start:
      if (h->state == HostState::Stopped) h->state = HostState::Up;
      break;
    case Action::Fail:
      if (err.empty()) err = "simulated failure";
      break;
    case Action::Crash: {
      h->state = HostState::Down;
      h->busy_until = kForever;
      Result r = error("ssh: connection to " + h->name + " lost");
      r.elapsed_ms = d;
      return r;
    }
    case Action::Check: {
      std::vector<int> targets;
      const std::string& t = rule->target;
      size_t slash = t.find('/');
      if (t.empty()) {
        if (hi < 0) return output(1, out, "check: no host to check", d);
        targets.push_back(hi);
      } else if (slash != std::string::npos) {
        const Gateway* g = gateway(t.substr(0, slash));
        bool canary = t.substr(slash + 1) == "canary";
        if (g)
          for (const Server& s : g->servers)
            if (s.canary == canary && in_rotation(*g, s)) targets.push_back(s.host);
      } else {
        targets.push_back(find_host(t));
      }
      for (int target : targets) {
        const VersionPoint& p = behaviour_of(target, now_);
        const Host* th = target >= 0 ? &hosts_[static_cast<size_t>(target)] : nullptr;
        std::string who = th ? th->name : t;
        if (th && !th->serving())
          err = "check failed: " + who + " is " + state_name(th->state);
        else if (!p.healthy)
          err = "check failed: " + who + " is unhealthy";
        else if (p.error_rate > rule->max_error_rate)
          err = "check failed: " + who + " fails too many requests";
        else
          continue;
        if (!rule->exit_code) exit_code = 1;
        break;
      }
      break;
    }
    case Action::Noop:
      break;
  }
  return output(exit_code, out, err, d);
}

}  // namespace gray::sim
