#include "plugins/nginx/nginx.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "plugins/gateway/common.h"
#include "plugins/http/http.h"
#include "plugins/nginx/command.h"
#include "plugins/nginx/nginx_conf.h"

namespace gray::plugins {

namespace {

namespace fs = std::filesystem;
using gateway::Route;
using nginx::State;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

struct Config {
  nginx::Layout layout;
  std::string include, binary = "nginx", prefix, conf, probe_url, status_url;
};

struct Stop {
  Result result;
};

Call make_call(std::string op, std::map<std::string, Value> args) {
  Call c;
  c.op = std::move(op);
  c.args = std::move(args);
  return c;
}

// The include file as found: gray's state, or none yet.
struct Loaded {
  State state;
  bool exists = false;
  bool ours = false;  // written by gray (has the state line)
  std::string text;
};

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `text` to a temporary file beside `path` and renames it over `path`, so nginx never
// reads half a file.
bool write_atomically(const std::string& path, const std::string& text, std::string& error) {
  std::string tmp = path + ".gray-tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot write " + tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) {
      error = "cannot write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot replace " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

// nginx's complaint without the noise: its [emerg]/[alert] lines, else everything.
std::string nginx_complaint(const std::string& output) {
  std::string out, line;
  std::istringstream in(output);
  while (std::getline(in, line))
    if (line.find("[emerg]") != std::string::npos || line.find("[alert]") != std::string::npos || line.find("[error]") != std::string::npos)
      out += (out.empty() ? "" : "; ") + line;
  if (out.empty()) out = output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "no output" : out;
}

// The worker processes of an nginx master (children in /proc).
std::set<int> children_of(int master) {
  std::set<int> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    std::optional<std::string> stat = read_text(std::string("/proc/") + e->d_name + "/stat");
    if (!stat) continue;
    size_t close = stat->rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat->substr(close + 2));
    char state;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == master && state != 'Z') out.insert(std::atoi(e->d_name));
  }
  ::closedir(d);
  return out;
}

class NginxDriver final : public Driver {
 public:
  NginxDriver(std::string instance, Config cfg, DriverEnv env) : instance_(std::move(instance)), cfg_(std::move(cfg)), env_(std::move(env)) {}

  Kind kind() const override { return Kind::Gateway; }

  Result call(const Call& c) override {
    double t0 = now_ms();
    deadline_ = t0 + c.timeout_ms;
    Result r;
    try {
      r = dispatch(c);
    } catch (const Stop& s) {
      r = s.result;
    }
    r.elapsed_ms = now_ms() - t0;
    if (r.ok()) applied_.add(c.key);
    return r;
  }

  std::optional<Call> undo_for(const Call& c) override {
    try {
      Loaded cur = load();
      return undo_from(cur.state, c);
    } catch (const Stop&) {
      return std::nullopt;
    }
  }

 private:
  std::string where() const { return "nginx " + cfg_.include; }

  Result dispatch(const Call& c) {
    const std::string& op = c.op;
    if (op == "weight_of") return weight_of(c);
    if (op == "sessions" || op == "connections") return counts(c);
    static const std::set<std::string> effects = {"weight", "drain", "ready", "maint", "scale", "set_states",
                                                  "route", "unroute", "clear_routes", "set_routes"};
    if (!effects.count(op)) return failed_result(where() + ": the nginx driver has no operation '" + op + "'");
    Loaded cur = load();
    State next = cur.state;
    std::string note = change(c, next);
    std::optional<Call> undo = undo_from(cur.state, c);
    Result r = commit(c, cur, next);
    if (r.ok()) {
      r.undo = undo;
      r.message = note + (r.message.empty() ? "" : "; " + r.message);
      if (op == "weight") r.value = Value::percent(std::round(nginx::effective_share(cfg_.layout, next) * 100) / 100);
    }
    return r;
  }

  // ---- the desired state -------------------------------------------------------------------

  Loaded load() const {
    Loaded l;
    std::error_code ec;
    if (!fs::exists(cfg_.include, ec)) return l;
    std::optional<std::string> text = read_text(cfg_.include);
    if (!text) throw Stop{error_result(where() + ": cannot read the include file: " + std::strerror(errno))};
    l.exists = true;
    l.text = *text;
    if (std::optional<State> s = nginx::parse_state(*text)) {
      l.state = *s;
      l.ours = true;
    }
    return l;
  }

  // Applies the operation to `s`; returns a note for people. Throws Stop on bad arguments.
  std::string change(const Call& c, State& s) const {
    const std::string& op = c.op;
    std::string why;
    if (op == "weight") {
      double p = 0;
      if (!gateway::percent_arg(c, "canary", p, why)) throw Stop{failed_result(where() + ": weight: " + why)};
      s.canary = p;
      return "canary " + gateway::format_percent(p);
    }
    if (op == "drain" || op == "ready" || op == "maint") {
      std::string server = resolve(c);
      set_server_state(s, server, op);
      return "server " + server + " " + op + (op == "ready" ? "" : " (nginx marks it down: no new requests)");
    }
    if (op == "scale") {
      std::string group = gateway::text_arg(c, "group");
      int count = 0;
      if (group != "canary" && group != "stable") throw Stop{failed_result(where() + ": scale: group must be canary or stable, not \"" + group + "\"")};
      if (!gateway::count_arg(c, "count", count, why)) throw Stop{failed_result(where() + ": scale: " + why)};
      const auto& names = members(group);
      if (count > static_cast<int>(names.size()))
        throw Stop{failed_result(where() + ": scale " + group + " to " + std::to_string(count) + ": the group has " + std::to_string(names.size()) + " servers")};
      for (size_t i = 0; i < names.size(); ++i) set_server_state(s, names[i], static_cast<int>(i) < count ? "ready" : "maint");
      return group + " served by " + std::to_string(count) + " of " + std::to_string(names.size()) + " servers";
    }
    if (op == "set_states") {
      auto it = c.args.find("states");
      if (it == c.args.end() || it->second.kind != Value::Kind::Map) throw Stop{failed_result(where() + ": set_states: states must be a map of server to state")};
      for (const auto& [server, st] : it->second.fields()) {
        if (!known(server)) throw Stop{failed_result(where() + ": set_states: no server " + server + " in upstream " + cfg_.layout.upstream)};
        std::string state = st.text();
        if (state != "ready" && state != "drain" && state != "maint") throw Stop{failed_result(where() + ": set_states: " + server + ": state must be ready, drain or maint")};
        set_server_state(s, server, state);
      }
      return "server states restored";
    }
    if (op == "route" || op == "unroute") {
      Route rt;
      if (!gateway::route_from_args(c.args, rt, why)) throw Stop{failed_result(where() + ": " + why)};
      bool present = std::find(s.routes.begin(), s.routes.end(), rt) != s.routes.end();
      if (op == "route" && !present) s.routes.push_back(rt);
      if (op == "unroute") s.routes.erase(std::remove(s.routes.begin(), s.routes.end(), rt), s.routes.end());
      return (op == "route" ? "route " : "route removed: ") + rt.describe() + (op == "route" && present ? " (already present)" : "");
    }
    std::vector<Route> routes;
    if (op == "set_routes" && !gateway::routes_from_call(c, routes, why)) throw Stop{failed_result(where() + ": " + why)};
    s.routes = routes;
    return std::to_string(routes.size()) + " route(s)";
  }

  std::optional<Call> undo_from(const State& before, const Call& c) const {
    const std::string& op = c.op;
    if (op == "weight") return make_call("weight", {{"canary", Value::percent(before.canary)}});
    if (op == "drain" || op == "ready" || op == "maint") {
      Call undo = c;
      undo.key.clear();
      try {
        undo.op = before.state_of(resolve(c));
      } catch (const Stop&) {
        return std::nullopt;
      }
      return undo;
    }
    if (op == "scale" || op == "set_states") {
      Map states;
      for (const auto* group : {&cfg_.layout.stable, &cfg_.layout.canary})
        for (const std::string& srv : *group) states[srv] = Value::string(before.state_of(srv));
      return make_call("set_states", {{"states", Value::of_map(std::move(states))}});
    }
    if (op == "route" || op == "unroute") {
      Route rt;
      std::string why;
      if (!gateway::route_from_args(c.args, rt, why)) return std::nullopt;
      bool present = std::find(before.routes.begin(), before.routes.end(), rt) != before.routes.end();
      if (op == "route" && !present) return make_call("unroute", gateway::route_args(rt));
      if (op == "unroute" && present) return make_call("route", gateway::route_args(rt));
      return std::nullopt;
    }
    if (op == "clear_routes" || op == "set_routes") return make_call("set_routes", {{"routes", gateway::routes_value(before.routes)}});
    return std::nullopt;
  }

  const std::vector<std::string>& members(const std::string& group) const { return group == "canary" ? cfg_.layout.canary : cfg_.layout.stable; }

  bool known(const std::string& server) const {
    return std::count(cfg_.layout.stable.begin(), cfg_.layout.stable.end(), server) ||
           std::count(cfg_.layout.canary.begin(), cfg_.layout.canary.end(), server);
  }

  static void set_server_state(State& s, const std::string& server, const std::string& state) {
    if (state == "ready") s.states.erase(server);
    else s.states[server] = state;
  }

  // The configured server a call names: by host:port, by the inventory record's address, or
  // by address alone when only one server has it.
  std::string resolve(const Call& c) const {
    std::string name = gateway::text_arg(c, "server");
    if (known(name)) return name;
    std::string addr_port = gateway::record_address(c);
    if (known(addr_port)) return addr_port;
    std::string addr = gateway::record_addr(c).empty() ? name : gateway::record_addr(c);
    std::vector<std::string> hits;
    for (const auto* group : {&cfg_.layout.stable, &cfg_.layout.canary})
      for (const std::string& srv : *group)
        if (srv.substr(0, srv.rfind(':')) == addr) hits.push_back(srv);
    if (hits.size() == 1) return hits[0];
    std::string all;
    for (const auto* group : {&cfg_.layout.stable, &cfg_.layout.canary})
      for (const std::string& srv : *group) all += (all.empty() ? "" : ", ") + srv;
    throw Stop{failed_result(where() + ": upstream " + cfg_.layout.upstream + " has " + (hits.empty() ? "no server " : "several servers at ") + name +
                             " (its servers: " + all + ")")};
  }

  // ---- writing, testing, reloading ---------------------------------------------------------

  std::vector<std::string> nginx_argv(std::vector<std::string> tail) const {
    std::vector<std::string> argv = {cfg_.binary};
    if (!cfg_.prefix.empty()) argv.insert(argv.end(), {"-p", cfg_.prefix});
    if (!cfg_.conf.empty()) argv.insert(argv.end(), {"-c", cfg_.conf});
    argv.insert(argv.end(), tail.begin(), tail.end());
    return argv;
  }

  double left_ms() const { return deadline_ - now_ms(); }

  void pause(double ms) const {
    if (env_.sleep) env_.sleep(ms);
    else std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(ms)));
  }

  Result commit(const Call& c, const Loaded& cur, State next) {
    const std::string digest = gateway::key_digest(c.key);
    if (cur.ours && next.same_traffic(cur.state)) {
      // Nothing to write; make sure nginx serves what the file says (a crash may have come
      // between the write and the reload).
      Result r = ensure_serving(cur.state.generation);
      r.replayed = r.ok() && (std::count(cur.state.keys.begin(), cur.state.keys.end(), digest) > 0 || applied_.seen(c.key));
      return r;
    }
    next.generation = cur.state.generation + 1;
    if (!c.key.empty()) next.remember(digest);
    std::string text, why, error;
    if (!nginx::render(cfg_.layout, next, text, why)) return failed_result(where() + ": " + why);
    if (cur.exists && !cur.ours) keep_foreign(cur.text);
    if (!write_atomically(cfg_.include, text, error)) return error_result(where() + ": " + error);
    Result tested = test_config(cur);
    if (!tested.ok()) return tested;
    return reload_and_confirm(cur, next.generation);
  }

  // A hand-written include gray takes over is kept beside it, once.
  void keep_foreign(const std::string& text) const {
    std::string backup = cfg_.include + ".before-gray";
    std::string error;
    if (!fs::exists(backup) && write_atomically(backup, text, error) && env_.note)
      env_.note(instance_ + ": " + cfg_.include + " had no gray state line; its content is kept in " + backup);
  }

  void restore(const Loaded& cur) const {
    std::string error;
    if (cur.exists) write_atomically(cfg_.include, cur.text, error);
    else ::unlink(cfg_.include.c_str());
  }

  Result test_config(const Loaded& cur) {
    // -T tests like -t and also prints the configuration, where the pid file is named.
    nginx::CommandResult t = nginx::run_command(nginx_argv({"-T"}), std::clamp(left_ms(), 100.0, 60000.0));
    if (t.ok()) {
      pid_file_ = pid_file_from(t.output);
      return ok_result();
    }
    restore(cur);
    if (!t.started) return error_result(where() + ": " + t.output);
    if (t.timed_out) return error_result(where() + ": nginx -t did not finish in time; the previous include is back");
    return failed_result(where() + ": nginx -t rejected the new include, the previous one is back: " + nginx_complaint(t.output));
  }

  Result reload_and_confirm(const Loaded& cur, int generation) {
    int master = master_pid();
    if (cfg_.probe_url.empty() && master <= 0) {
      restore(cur);
      return error_result(where() + ": cannot tell whether a reload happened: no probe_url, and no nginx master in pid file " + pid_file_ +
                          "; the previous include is back");
    }
    std::set<int> old_workers = master > 0 ? children_of(master) : std::set<int>{};
    double t0 = now_ms();
    nginx::CommandResult r = nginx::run_command(nginx_argv({"-s", "reload"}), std::clamp(left_ms(), 100.0, 30000.0));
    if (!r.ok()) {
      restore(cur);
      return error_result(where() + ": nginx -s reload failed, the previous include is back: " + nginx_complaint(r.output));
    }
    Result confirmed = wait_for_switch(generation, master, old_workers);
    if (confirmed.ok()) confirmed.message = "generation " + std::to_string(generation) + " served " + std::to_string(static_cast<int>(now_ms() - t0)) + " ms after the reload";
    return confirmed;
  }

  // The switch has happened when the probe answers with the new generation and, where the
  // master is known, new workers run and every old one has stopped accepting (it then calls
  // itself "worker process is shutting down") or is gone: until then an old worker may still
  // take a new connection and answer with the old configuration.
  Result wait_for_switch(int generation, int master, const std::set<int>& old_workers) {
    const std::string want = std::to_string(generation);
    std::string seen, problem;
    bool generation_seen = cfg_.probe_url.empty(), workers_switched = master <= 0;
    while (left_ms() > 0) {
      if (!generation_seen) generation_seen = (seen = probe_generation(&problem)) == want;
      if (!workers_switched) workers_switched = new_workers(master, old_workers) && old_workers_retired(old_workers);
      if (generation_seen && workers_switched) return ok_result();
      pause(5);
    }
    if (!generation_seen)
      return error_result(where() + ": nginx was reloaded but " + http::display_url(cfg_.probe_url) + " does not serve generation " + want +
                          " yet (" + (seen.empty() ? problem : "it answers generation " + seen) +
                          "); the include stays in place; is X-Gray-Generation set from $gray_generation_" + nginx::variable_name(cfg_.layout.upstream) + "?");
    return error_result(where() + ": nginx (master " + std::to_string(master) + ") has not replaced its workers after the reload; see nginx's error log");
  }

  static bool new_workers(int master, const std::set<int>& old_workers) {
    for (int pid : children_of(master))
      if (!old_workers.count(pid)) return true;
    return false;
  }

  static bool old_workers_retired(const std::set<int>& old_workers) {
    for (int pid : old_workers) {
      std::optional<std::string> title = read_text("/proc/" + std::to_string(pid) + "/cmdline");
      if (title && !title->empty() && title->find("shutting down") == std::string::npos) return false;
    }
    return true;
  }

  Result ensure_serving(int generation) {
    if (!cfg_.probe_url.empty() && probe_generation() == std::to_string(generation)) return ok_result();
    Loaded cur = load();
    Result tested = test_config(cur);
    if (!tested.ok()) return tested;
    return reload_and_confirm(cur, generation);
  }

  // The generation the probe URL answers with now ("" when it does not answer).
  std::string probe_generation(std::string* problem = nullptr) {
    http::Request req;
    req.url = cfg_.probe_url;
    // A new connection each time: a kept-alive one may still belong to an old worker.
    req.headers = {{"Connection", "close"}};
    req.retries = 0;
    req.timeout_ms = std::clamp(left_ms(), 50.0, 2000.0);
    req.connect_timeout_ms = req.timeout_ms;
    http::Response resp = client_.send(req);
    if (!resp.transport_ok()) {
      if (problem) *problem = resp.describe(req);
      return "";
    }
    std::string gen = resp.header("x-gray-generation");
    if (gen.empty() && problem) *problem = "HTTP " + std::to_string(resp.status) + " without an X-Gray-Generation header";
    return gen;
  }

  int master_pid() const {
    if (pid_file_.empty()) return -1;
    std::optional<std::string> text = read_text(pid_file_);
    return text ? std::atoi(text->c_str()) : -1;
  }

  // The pid file nginx uses: its `pid` directive in the dump of `nginx -T`, else the built-in
  // path `nginx -V` shows; relative paths are relative to the prefix.
  std::string pid_file_from(const std::string& dump) const {
    std::smatch m;
    static const std::regex directive(R"((?:^|\n)\s*pid\s+([^;\s]+)\s*;)");
    std::string path;
    if (std::regex_search(dump, m, directive)) {
      path = m[1];
    } else {
      if (built_in_pid_.empty()) {
        nginx::CommandResult v = nginx::run_command({cfg_.binary, "-V"}, 5000);
        static const std::regex built_in(R"(--pid-path=(\S+))");
        if (std::regex_search(v.output, m, built_in)) built_in_pid_ = m[1];
      }
      path = built_in_pid_;
    }
    if (!path.empty() && path[0] != '/') path = (fs::path(cfg_.prefix.empty() ? "/" : cfg_.prefix) / path).string();
    return path;
  }

  // ---- reads -------------------------------------------------------------------------------

  Result weight_of(const Call& c) {
    std::string group = gateway::text_arg(c, "group");
    if (group != "canary" && group != "stable") return failed_result(where() + ": weight_of: group must be canary or stable, not \"" + group + "\"");
    Loaded cur = load();
    double share = nginx::effective_share(cfg_.layout, cur.state);
    return ok_result(Value::percent(std::round((group == "canary" ? share : 100 - share) * 100) / 100));
  }

  Result counts(const Call& c) {
    resolve(c);
    if (cfg_.status_url.empty())
      return failed_result(where() + ": " + c.op + " is not available: nginx keeps no per-server counts; set status_url to a stub_status location for nginx-wide ones");
    http::Request req;
    req.url = cfg_.status_url;
    req.timeout_ms = std::clamp(left_ms(), 50.0, 5000.0);
    http::Response resp = client_.send(req);
    if (!resp.success()) return error_result(where() + ": stub_status: " + resp.describe(req));
    std::smatch m;
    static const std::regex active(R"(Active connections:\s*(\d+))"), rw(R"(Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+))");
    bool a = std::regex_search(resp.body, m, active);
    double connections = a ? std::stod(m[1]) : 0;
    if (!a || !std::regex_search(resp.body, m, rw)) return error_result(where() + ": " + http::display_url(cfg_.status_url) + " is not a stub_status page");
    // Connections with a request in progress: all but the idle keep-alive ones.
    double sessions = std::stod(m[1]) + std::stod(m[2]);
    Result r = ok_result(Value::number(c.op == "sessions" ? sessions : connections));
    r.message = "nginx-wide count (stub_status has no per-server counts)";
    return r;
  }

  std::string instance_;
  Config cfg_;
  DriverEnv env_;
  http::Client client_;
  gateway::AppliedKeys applied_;
  std::string pid_file_;
  mutable std::string built_in_pid_;  // from `nginx -V`, read once
  double deadline_ = 0;
};

Config read_config(const std::string& instance, const Value& config, const DriverEnv& env) {
  Config cfg;
  cfg.layout.instance = instance;
  cfg.include = config_path(instance, config, "include", env);
  cfg.layout.upstream = config_string(instance, config, "upstream");
  cfg.layout.stable = config_strings(instance, config, "stable");
  cfg.layout.canary = config_strings(instance, config, "canary");
  cfg.binary = config_string(instance, config, "nginx", "nginx");
  cfg.prefix = config_path(instance, config, "prefix", env, "");
  cfg.conf = config_path(instance, config, "conf", env, "");
  cfg.probe_url = config_string(instance, config, "probe_url", "");
  cfg.status_url = config_string(instance, config, "status_url", "");
  if (cfg.include.empty()) throw DriverError(instance + ": field 'include' must not be empty");
  if (cfg.layout.upstream.empty() || cfg.layout.upstream.find_first_of(" \t;{}\"'$") != std::string::npos)
    throw DriverError(instance + ": field 'upstream' must be an nginx upstream name");
  if (cfg.layout.stable.empty() || cfg.layout.canary.empty()) throw DriverError(instance + ": fields 'stable' and 'canary' must each list at least one server");
  std::set<std::string> seen;
  for (const auto* names : {&cfg.layout.stable, &cfg.layout.canary})
    for (const std::string& n : *names) {
      if (n.empty() || n.find_first_of(" \t;{}\"'$") != std::string::npos) throw DriverError(instance + ": \"" + n + "\" is not an nginx server address (host:port)");
      if (!seen.insert(n).second) throw DriverError(instance + ": server " + n + " is listed twice in 'stable' and 'canary'");
    }
  if (!fs::is_directory(fs::path(cfg.include).parent_path()))
    throw DriverError(instance + ": the directory of 'include' (" + fs::path(cfg.include).parent_path().string() + ") does not exist");
  return cfg;
}

}  // namespace

std::unique_ptr<Driver> make_nginx(const std::string& instance, const Value& config, const DriverEnv& env) {
  return std::make_unique<NginxDriver>(instance, read_config(instance, config, env), env);
}

}  // namespace gray::plugins
