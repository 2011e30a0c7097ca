#include "plugins/external/external.h"

#include <chrono>
#include <filesystem>
#include <mutex>

#include "plugins/external/link.h"
#include "plugins/hosts/inventory.h"
#include "plugins/hosts/subprocess.h"

namespace gray::plugins {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using external::Link;

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The conversation behind every external driver, whatever its kind.
class Core {
 public:
  Core(Kind kind, external::LinkSettings s) : kind_(kind), note_(s.note), link_(std::move(s)) {}

  // Starts the plugin at build time, so a plugin that cannot work stops the run before it begins.
  void start_or_throw() {
    std::string error;
    if (!link_.ensure_started(error)) throw DriverError(error);
  }

  Result call(const Call& c) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto t0 = std::chrono::steady_clock::now();
    Result r = call_locked(c);
    r.elapsed_ms = ms_since(t0);
    return r;
  }

  std::optional<Call> undo_for(const Call& c) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string error;
    if (!link_.ensure_started(error) || !link_.hello().undo_for || !supports(c.op)) return std::nullopt;
    std::optional<json> answer = link_.exchange(request_for(c, "undo_for"), c.timeout_ms, error);
    std::optional<Call> undo;
    std::string problem;
    if (!answer) return std::nullopt;  // the effect's own call meets the same trouble and reports it
    Result r;
    if (!external::read_result(*answer, kind_, c.op, r, problem)) {
      note(link_.who() + ": a malformed answer to undo_for " + c.op + ": " + problem);
      return std::nullopt;
    }
    if (r.status != Result::Status::Ok) return std::nullopt;
    return r.undo;
  }

  std::vector<HostRecord> inventory() {
    std::lock_guard<std::mutex> lock(mu_);
    return inventory_locked(nullptr);
  }

 private:
  Result call_locked(const Call& c) {
    std::string error;
    if (!link_.ensure_started(error)) return error_result(error);
    if (kind_ == Kind::Hosts && hosts::is_catalog_op(c.op) && !supports(c.op)) {
      std::string problem;
      std::vector<HostRecord> hosts = inventory_locked(&problem);
      if (!problem.empty()) return error_result(problem);
      return hosts::catalog_op(hosts, c);
    }
    if (!supports(c.op)) return error_result(link_.who() + ": the plugin does not support \"" + c.op + "\" (it supports: " + op_list() + ")");
    std::optional<json> answer = link_.exchange(request_for(c, "call"), c.timeout_ms, error);
    if (!answer) return error_result(error);
    Result r;
    std::string problem;
    if (!external::read_result(*answer, kind_, c.op, r, problem)) {
      link_.stop();
      return error_result(link_.who() + ": a malformed answer to " + c.op + ": " + problem + "; stopped it (it starts again on the next call)");
    }
    r.message = external::scrub(r.message, secrets_of(c));
    if (r.status == Result::Status::Failed || r.status == Result::Status::Error)
      r.message = link_.who() + ": " + c.op + ": " + (r.message.empty() ? "no reason given" : r.message);
    return r;
  }

  // The hosts a hosts plugin lists (op "inventory"), asked once per plugin process.
  std::vector<HostRecord> inventory_locked(std::string* problem) {
    std::string error;
    if (inventory_ && inventory_start_ == link_.starts() && link_.running()) return *inventory_;
    if (!link_.ensure_started(error)) return fail_inventory(error, problem);
    Call c;
    c.op = "inventory";
    c.timeout_ms = 30000;
    std::optional<json> answer = link_.exchange(request_for(c, "call"), c.timeout_ms, error);
    if (!answer) return fail_inventory(error, problem);
    if (!answer->contains("status") || (*answer)["status"] != "ok" || !answer->contains("value"))
      return fail_inventory(link_.who() + ": inventory: " + answer->value("message", std::string("no hosts in the answer")), problem);
    try {
      inventory_ = hosts::parse_inventory(link_.who(), "answer", (*answer)["value"].dump());
      inventory_start_ = link_.starts();
    } catch (const DriverError& e) {
      return fail_inventory(e.what(), problem);
    }
    return *inventory_;
  }

  std::vector<HostRecord> fail_inventory(const std::string& error, std::string* problem) {
    if (problem) *problem = error;
    else note(error);
    return {};
  }

  json request_for(const Call& c, const char* type) { return external::call_request(c, type); }

  bool supports(const std::string& op) const {
    const auto& ops = link_.hello().ops;
    return std::find(ops.begin(), ops.end(), op) != ops.end();
  }

  std::string op_list() const {
    std::string out;
    for (const std::string& op : link_.hello().ops) out += (out.empty() ? "" : ", ") + op;
    return out.empty() ? "nothing" : out;
  }

  std::vector<std::string> secrets_of(const Call& c) {
    std::vector<std::string> pointers, texts = link_.secret_texts();
    for (const auto& [k, v] : c.args) external::find_secrets(v, "/args", pointers, texts);
    return texts;
  }

  void note(const std::string& text) {
    if (note_) note_(text);
  }

  Kind kind_;
  std::function<void(const std::string&)> note_;
  Link link_;
  std::mutex mu_;
  std::optional<std::vector<HostRecord>> inventory_;
  int inventory_start_ = 0;
};

class ExternalDriver : public Driver {
 public:
  ExternalDriver(Kind kind, std::unique_ptr<Core> core) : kind_(kind), core_(std::move(core)) {}
  Kind kind() const override { return kind_; }
  Result call(const Call& c) override { return core_->call(c); }
  std::optional<Call> undo_for(const Call& c) override { return core_->undo_for(c); }

 private:
  Kind kind_;
  std::unique_ptr<Core> core_;
};

class ExternalHosts : public HostsDriver {
 public:
  explicit ExternalHosts(std::unique_ptr<Core> core) : core_(std::move(core)) {}
  Result call(const Call& c) override { return core_->call(c); }
  std::optional<Call> undo_for(const Call& c) override { return core_->undo_for(c); }
  std::vector<HostRecord> inventory() override { return core_->inventory(); }

 private:
  std::unique_ptr<Core> core_;
};

// The program of `command`: relative paths with a slash resolve against the pipeline's folder.
std::vector<std::string> resolve_command(const std::string& instance, const Value& config, const DriverEnv& env) {
  std::vector<std::string> argv = config_strings(instance, config, "command", true);
  if (argv.empty() || argv[0].empty()) throw DriverError(instance + ": field 'command' must name the plugin's program");
  std::string& program = argv[0];
  if (program.find('/') != std::string::npos && fs::path(program).is_relative())
    program = (fs::path(env.base_dir) / program).lexically_normal().string();
  if (proc::find_executable(program).empty())
    throw DriverError(instance + ": field 'command': " + program +
                      (program.find('/') == std::string::npos ? " is not a program in PATH" : " is not an executable file"));
  return argv;
}

// The plugin as messages name it: the file names of the program and of its first argument
// ("python3 file_gateway.py"), secrets hidden.
std::string shown_command(const Value& config) {
  const Value* cmd = config_field(config, "command");
  if (!cmd) return "";
  const List parts = cmd->kind == Value::Kind::List ? cmd->items() : List{*cmd};
  std::string out;
  for (size_t i = 0; i < parts.size() && i < 2; ++i) {
    out += i ? " " : "";
    out += parts[i].secret() ? std::string("<secret>") : fs::path(parts[i].text()).filename().string();
  }
  return out.size() > 100 ? out.substr(0, 100) + "..." : out;
}

}  // namespace

std::unique_ptr<Driver> make_external(Kind kind, const std::string& instance, const Value& config, const DriverEnv& env) {
  external::LinkSettings s;
  s.kind = kind;
  s.instance = instance;
  s.argv = resolve_command(instance, config, env);
  s.cwd = env.base_dir.empty() ? "." : env.base_dir;
  s.shown_command = shown_command(config);
  s.note = env.note;
  s.hello_timeout_ms = config_ms(instance, config, "start_timeout", 10000);
  if (const Value* given = config_field(config, "config")) {
    if (given->kind != Value::Kind::Map) throw DriverError(instance + ": field 'config' must be a map, not a " + kind_name(given->kind));
    s.config = external::to_protocol(*given);
    external::find_secrets(*given, "/config", s.config_secret_pointers, s.secret_texts);
  } else {
    s.config = json::object();
  }
  std::vector<std::string> ignored;
  external::find_secrets(*config_field(config, "command"), "", ignored, s.secret_texts);
  auto core = std::make_unique<Core>(kind, std::move(s));
  core->start_or_throw();
  if (kind == Kind::Hosts) return std::make_unique<ExternalHosts>(std::move(core));
  return std::make_unique<ExternalDriver>(kind, std::move(core));
}

}  // namespace gray::plugins
