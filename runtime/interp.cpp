// The interpreter. A pipeline is a sequence of stages; a stage runs its steps (once, or per host
// in batches), while its guards run beside it on their own schedule. Every step is journaled
// under an idempotency key made of the run id, the step's path in the pipeline and the host, so
// a replay after a crash walks the same path, skips what completed and re-enters what was in
// flight. Effects push their compensation on an undo stack that rollback runs newest first.
#include "runtime/interp.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "lang/text.h"
#include "runtime/eval.h"

namespace gray {

const char* outcome_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::Promoted: return "promoted";
    case Outcome::Kind::RolledBack: return "rolled-back";
    case Outcome::Kind::Aborted: return "aborted";
    case Outcome::Kind::Failed: return "failed";
    case Outcome::Kind::Paused: return "paused";
    case Outcome::Kind::NeedsAttention: return "needs-attention";
    case Outcome::Kind::Stopped: return "stopped";
  }
  return "?";
}

namespace {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;
using plugins::Call;
using plugins::Kind;
using plugins::Result;

// A step that failed: the stage's failure handling decides what happens next.
struct StepFailed {
  std::string step;
  std::string reason;
};

// Control flow that ends the stage at once.
struct AbortRun {
  std::string reason;
};
struct RollbackRequested {
  std::string reason;
};
struct PauseRequested {
  std::string reason;
};

constexpr double kRunTimeoutMs = 10 * 60000;  // a command's default timeout

double duration_ms(const Value& v, double fallback) {
  if (v.kind == Value::Kind::Duration) return v.num;
  if (v.kind == Value::Kind::Number) return v.num * 1000;  // unreachable for checked pipelines
  return fallback;
}

std::string describe_call(const std::string& plugin, const Call& c) {
  std::string out = plugin + "." + c.op + "(";
  bool first = true;
  for (const auto& [k, v] : c.args) {
    if (k == "metric" || k == "params") continue;
    out += (first ? "" : ", ") + k + ": " + v.shown();
    first = false;
  }
  return out + ")";
}

nlohmann::json args_json(const Call& c) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : c.args) j[k] = to_json(v);
  return j;
}

}  // namespace

Value param_value(const std::string& text, const std::string& type, Span at) {
  auto bad = [&](const std::string& what) -> Value { throw SetupError{at, "'" + text + "' is not " + what}; };
  if (type.empty() || type == "string" || type == "any") return Value::string(text);
  if (type == "bool") {
    if (text == "true") return Value::boolean(true);
    if (text == "false") return Value::boolean(false);
    return bad("true or false");
  }
  if (type == "list") {
    List items;
    size_t start = 0;
    for (size_t i = 0; i <= text.size(); ++i)
      if (i == text.size() || text[i] == ',') {
        std::string part = text.substr(start, i - start);
        if (!part.empty()) items.push_back(Value::string(part));
        start = i + 1;
      }
    return Value::of_list(std::move(items));
  }
  // Numbers with units, written as in the language: 10m, 5%, 512MB.
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.' || (i == 0 && text[i] == '-'))) ++i;
  if (i == 0) return bad(type == "duration" ? "a duration such as 10m" : type == "percent" ? "a percentage such as 5%" : "a number");
  double v = std::strtod(text.substr(0, i).c_str(), nullptr);
  std::string unit = text.substr(i);
  if (type == "number") return unit.empty() ? Value::number(v) : bad("a plain number");
  if (type == "percent") return unit == "%" ? Value::percent(v) : bad("a percentage such as 5%");
  if (type == "duration") {
    static const std::pair<const char*, double> units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    for (auto& [u, scale] : units)
      if (unit == u) return Value::duration_ms(v * scale);
    return bad("a duration such as 10m");
  }
  if (type == "bytes") {
    static const std::pair<const char*, double> units[] = {{"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
    for (auto& [u, scale] : units)
      if (unit == u) return Value::bytes(v * scale);
    return bad("a size such as 512MB");
  }
  return Value::string(text);
}

// ---- the interpreter ------------------------------------------------------------

class Interpreter::Impl : public EvalHost {
 public:
  Impl(const Project& project, int module, Scheduler& sched, Services services, RunConfig config)
      : project_(project), module_(module), sched_(sched), svc_(std::move(services)), cfg_(std::move(config)) {
    for (const ast::StmtPtr& item : project_.module(module).ast.items)
      if (item->kind == StmtKind::Pipeline) pipeline_ = item.get();
    if (!pipeline_) throw SetupError{{}, "this file declares no pipeline"};
  }

  // ---- setup ----

  void prepare() {
    auto builtins = std::make_shared<Env>();
    builtins->set("run_id", Value::string(cfg_.run_id));
    builtins->set("pipeline", Value::string(pipeline_->str));
    builtins_ = builtins;
    auto env = std::make_shared<Env>(module_env(module_));
    std::vector<std::string> missing;
    std::set<std::string> declared;
    for (const ast::StmtPtr& sp : pipeline_->body) {
      const Stmt& s = *sp;
      if (s.kind == StmtKind::Param) {
        declared.insert(s.name.text);
        auto given = cfg_.params.find(s.name.text);
        if (given != cfg_.params.end()) {
          std::string type = s.word.text;
          if (type.empty() && s.value) type = literal_type(*s.value);
          env->set(s.name.text, param_value(given->second, type, s.name.span));
        } else if (s.value) {
          env->set(s.name.text, eval(*s.value, *env, nullptr));
        } else {
          missing.push_back(s.name.text);
        }
      } else if (s.kind == StmtKind::Plugin) {
        declare_plugin(s, *env);
      } else if (s.kind == StmtKind::Metric) {
        metrics_[s.name.text] = {&s, env};
        env->set(s.name.text, Value::named(Value::Kind::Metric, s.name.text));
      } else if (s.kind == StmtKind::Let) {
        try {
          env->set(s.name.text, eval(*s.value, *env, this));
        } catch (const EvalError& e) {
          throw SetupError{e.span, "before the first stage: " + e.message, false};
        } catch (const NoData& e) {
          throw SetupError{e.span, "before the first stage: metric " + e.metric + " has no data", false};
        }
      }
    }
    for (const auto& [name, _] : cfg_.params)
      if (!declared.count(name)) {
        std::vector<std::string> names(declared.begin(), declared.end());
        std::string best = closest_word(name, names);
        throw SetupError{pipeline_->keyword, "the pipeline has no parameter '" + name + "'" + (best.empty() ? "" : "; did you mean '" + best + "'?")};
      }
    if (!missing.empty()) {
      std::string list;
      for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
      std::string example;
      for (const std::string& m : missing) example += " --set " + m + "=...";
      throw SetupError{pipeline_->keyword, "missing required parameter" + std::string(missing.size() > 1 ? "s " : " ") + list +
                                               "; give " + (missing.size() > 1 ? "them" : "it") + " with" + example};
    }
    pipeline_env_ = env;
  }

  static std::string literal_type(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Duration: return "duration";
      case ExprKind::Percent: return "percent";
      case ExprKind::Number: return "number";
      case ExprKind::Bool: return "bool";
      case ExprKind::Bytes: return "bytes";
      case ExprKind::List: return "list";
      default: return "string";
    }
  }

  void declare_plugin(const Stmt& s, Env& env) {
    PluginDecl d;
    d.name = s.name.text;
    plugins::parse_kind(s.word.text, d.kind);
    d.driver = s.word2.text;
    try {
      d.config = s.value ? eval(*s.value, env, this) : Value::of_map({});
    } catch (const NotStatic& e) {
      throw SetupError{e.span, "a plugin configuration cannot read from plugins"};
    }
    auto drv = svc_.make_driver(d);
    if (!drv) throw SetupError{s.word2.span, "no " + s.word.text + " driver '" + d.driver + "' is available here"};
    decls_.push_back(d);
    plugins_[d.name] = {d, std::move(drv)};
    env.set(d.name, Value::named(Value::Kind::Plugin, d.name));
  }

  std::shared_ptr<const Env> module_env(int m) {
    auto it = module_envs_.find(m);
    if (it != module_envs_.end()) return it->second;
    auto env = std::make_shared<Env>(builtins_);
    env->set("__module", Value::number(m));  // not a valid name in the language: cannot clash
    module_envs_[m] = env;
    return env;
  }

  // ---- EvalHost ----

  struct Instance {
    PluginDecl decl;
    std::unique_ptr<plugins::Driver> driver;
  };

  Value plugin_read(const std::string& plugin, const std::string& op, const std::map<std::string, Value>& args, Span at) override {
    std::optional<NoData> missing;
    Value v = read_plugin(plugin, op, args, at, missing);
    if (missing) throw std::move(*missing);
    return v;
  }

  // The ..._value / read_... / send_read functions below report a read that found nothing in
  // `missing` instead of throwing NoData: guards read metrics every 30 s, and unwinding an
  // exception through the evaluator costs more than the read itself.
  Value read_plugin(const std::string& plugin, const std::string& op, const std::map<std::string, Value>& args, Span at,
                    std::optional<NoData>& missing) {
    auto it = plugins_.find(plugin);
    if (it == plugins_.end()) throw EvalError{at, "no plugin '" + plugin + "'"};
    return send_read(it->second, plugin, read_call(it->second, op, args), at, metric_name_, missing);
  }

  // The call of a read, as its driver receives it.
  Call read_call(const Instance& instance, const std::string& op, const std::map<std::string, Value>& args) const {
    Call c;
    c.op = op;
    // Positional arguments arrive as arg0, arg1...: give them the operation's parameter names.
    const plugins::OpSpec* spec = plugins::find_op(instance.decl.kind, op);
    for (const auto& [k, v] : args) {
      if (spec && k.rfind("arg", 0) == 0) {
        size_t i = static_cast<size_t>(std::atoi(k.c_str() + 3));
        if (i < spec->params.size()) {
          c.args[spec->params[i].name] = v;
          continue;
        }
      }
      c.args[k] = v;
    }
    if (!metric_name_.empty()) {
      c.args["metric"] = Value::string(metric_name_);
      c.args["params"] = metric_params_;
    }
    return c;
  }

  // `metric`: the metric being read, if any, for the no-data message.
  Value send_read(Instance& instance, const std::string& plugin, const Call& c, Span at, const std::string& metric,
                  std::optional<NoData>& missing) {
    // Reads are quick and have no effect: they run inline, and the decision they feed is what
    // gets journaled.
    Result r = instance.driver->call(c);
    if (r.status == Result::Status::NoData) {
      missing = NoData{metric.empty() ? plugin + "." + c.op : metric, at};
      return {};
    }
    if (!r.ok()) throw EvalError{at, plugin + "." + c.op + ": " + (r.message.empty() ? "failed" : r.message)};
    return std::move(r.value);
  }

  Value metric(const std::string& name, const std::vector<Value>& args, Span at) override {
    std::optional<NoData> missing;
    Value v = metric_value(name, args, at, missing);
    if (missing) throw std::move(*missing);
    return v;
  }

  Value metric_value(const std::string& name, const std::vector<Value>& args, Span at, std::optional<NoData>& missing) {
    std::string cache_key;
    if (metric_cache_) {
      cache_key = name;
      for (const Value& a : args) {
        cache_key += '\x1f';
        cache_key += a.text();
      }
      for (const auto& [key, cached] : *metric_cache_)
        if (key == cache_key) return cached;
    }
    Value v = read_metric(name, args, at, missing);
    if (metric_cache_ && !missing) metric_cache_->emplace_back(std::move(cache_key), v);
    return v;
  }

  // A metric whose declaration is one plugin read with arguments that read nothing themselves
  // (the usual prom.query("...${v}...")) sends the same call every time for the same metric
  // arguments, once the pipeline's scope is complete: the call is built once and kept.
  struct PreparedRead {
    std::string metric;
    std::vector<Value> args;
    Instance* instance;
    std::string plugin;
    Call call;
    Span at;
  };
  std::vector<PreparedRead> prepared_reads_;

  PreparedRead* prepared_read(const std::string& metric, const std::vector<Value>& args) {
    for (PreparedRead& p : prepared_reads_)
      if (p.metric == metric && p.args.size() == args.size() && std::equal(args.begin(), args.end(), p.args.begin(), identical))
        return &p;
    return nullptr;
  }

  Value read_metric(const std::string& name, const std::vector<Value>& args, Span at, std::optional<NoData>& missing) {
    auto it = metrics_.find(name);
    if (it == metrics_.end()) throw EvalError{at, "no metric '" + name + "'"};
    const Stmt& decl = *it->second.stmt;
    Value v;
    if (PreparedRead* p = prepared_read(name, args)) {
      v = send_read(*p->instance, p->plugin, p->call, p->at, name, missing);
    } else {
      Env env(it->second.env);
      Map params;
      for (size_t i = 0; i < decl.params.size() && i < args.size(); ++i) {
        env.set(decl.params[i].name.text, args[i]);
        params[decl.params[i].name.text] = args[i];
      }
      // The plugin read inside learns which metric asks, with which arguments; a metric read
      // while evaluating another puts the outer one back when it is done.
      struct Restore {
        Impl& self;
        std::string name;
        Value params;
        ~Restore() {
          self.metric_name_ = std::move(name);
          self.metric_params_ = std::move(params);
        }
      } restore{*this, std::exchange(metric_name_, name), std::exchange(metric_params_, Value::of_map(std::move(params)))};
      // The usual declaration is one plugin read (prom.query("...")): read it here, as eval
      // would, so that no data comes back without an exception.
      const Value* plugin = plugin_callee(*decl.value, env);
      auto instance = plugin ? plugins_.find(plugin->str) : plugins_.end();
      if (instance != plugins_.end()) {
        const std::string& op = decl.value->items[0]->text;
        Call call = read_call(instance->second, op, call_args(*decl.value, env, this));
        if (pipeline_env_ && std::all_of(decl.value->fields.begin(), decl.value->fields.end(),
                                         [&](const ast::Field& f) { return reads_nothing(*f.value, env); }))
          prepared_reads_.push_back({name, args, &instance->second, plugin->str, call, decl.value->span});
        v = send_read(instance->second, plugin->str, call, decl.value->span, name, missing);
      } else {
        v = eval(*decl.value, env, this);
      }
    }
    if (missing) return {};
    if (v.is_null()) {
      missing = NoData{name, at};
      return {};
    }
    const std::string& unit = decl.word.text;
    double n = v.num;
    if (unit == "ms") return Value::duration_ms(n);
    if (unit == "s") return Value::duration_ms(n * 1000);
    if (unit == "m") return Value::duration_ms(n * 60000);
    if (unit == "h") return Value::duration_ms(n * 3600000);
    if (unit == "%") return Value::percent(n);
    if (!unit.empty() && unit != "d") return Value::bytes(n);
    return Value::number(n);
  }

  Value env_var(const std::string& name, Span at) override {
    std::optional<std::string> v = svc_.getenv ? svc_.getenv(name) : std::nullopt;
    if (!v) throw EvalError{at, "environment variable " + name + " is not set"};
    return Value::string(*v, /*secret=*/true);
  }

  // ---- running ----

  struct Ctx {
    std::shared_ptr<Env> env;
    std::string path;
    std::string stage;
    std::string host;           // empty outside a host lane
    std::string hosts_plugin;   // the plugin that runs commands on `host`
    CancelScope* scope = nullptr;
    bool rolling_back = false;
  };

  struct UndoEntry {
    std::string key;
    std::string what;
    std::vector<std::pair<std::string, Call>> calls;  // plugin, call
  };

  struct StageItem {
    const Stmt* stmt;
    std::shared_ptr<Env> env;
    std::string path;
  };

  struct Breach {
    std::string guard;
    std::string action;
    std::string reason;
  };

  struct StageState {
    CancelScope scope;
    CancelScope guard_scope;
    std::optional<Breach> breach;
    std::string on_breach;  // the stage's `on breach` action, if any
    std::string name;
    explicit StageState(CancelScope* parent) : scope(parent), guard_scope(parent) {}
  };

  static std::string breach_reason(const StageState& st) {
    if (st.breach->guard == "operator") return st.breach->reason + " in stage " + st.name;
    return "guard " + st.breach->guard + " breached in stage " + st.name + ": " + st.breach->reason;
  }

  Task<Outcome> run() {
    emit("run", "", "", "", "run " + cfg_.run_id + " of pipeline \"" + pipeline_->str + "\" started");
    std::vector<StageItem> stages;
    const Stmt* rollback = nullptr;
    std::shared_ptr<Env> rollback_env;
    collect_stages(pipeline_->body, pipeline_env_, "", stages, rollback, rollback_env);
    for (const ast::StmtPtr& sp : pipeline_->body) {
      if (sp->kind == StmtKind::Guard) pipeline_guards_.push_back({sp.get(), pipeline_env_, "pipeline"});
      if (sp->kind == StmtKind::On && sp->word.text == "breach") pipeline_on_breach_ = sp->word2.text;
      if (sp->kind == StmtKind::On && sp->word.text == "failure") pipeline_on_failure_ = sp->word2.text;
    }
    rollback_stmt_ = rollback;
    rollback_env_ = rollback_env;
    if (svc_.log) resumed_rollback_ = svc_.log->rollback_decided();

    Outcome out;
    for (const StageItem& st : stages) {
      if (stop_) co_return stopped(st);
      std::string action;
      std::string reason;
      std::string step;
      try {
        if (!pending_request_.empty()) {
          action = pending_request_;
          reason = action == "abort" ? "aborted by the operator" : "rollback asked for by the operator";
        } else {
          auto result = co_await run_stage(st);
          action = result.first;
          reason = result.second;
        }
      } catch (const AbortRun& a) {
        action = "abort";
        reason = a.reason;
      } catch (const RollbackRequested& r) {
        action = "rollback";
        reason = r.reason;
      } catch (const PauseRequested& p) {
        action = "pause";
        reason = p.reason;
      }
      if (action.empty() || action == "continue") continue;
      if (stop_) co_return stopped(st);
      out.stage = st.stmt->name.text;
      out.reason = reason;
      if (action == "abort") {
        out.kind = Outcome::Kind::Aborted;
        finish(out);
        co_return out;
      }
      if (action == "pause") {
        out.kind = Outcome::Kind::Paused;
        finish(out);
        co_return out;
      }
      out = co_await roll_back(st.stmt->name.text, reason);
      finish(out);
      co_return out;
    }
    out.kind = Outcome::Kind::Promoted;
    out.reason = "every stage completed";
    finish(out);
    co_return out;
  }

  Outcome stopped(const StageItem& st) {
    Outcome o;
    o.kind = Outcome::Kind::Stopped;
    o.stage = st.stmt->name.text;
    o.reason = "stopped on request before stage '" + st.stmt->name.text + "'";
    finish(o);
    return o;
  }

  void finish(Outcome& o) {
    for (auto it = undo_.rbegin(); it != undo_.rend() && o.kind == Outcome::Kind::NeedsAttention; ++it)
      o.remaining_undo.push_back(it->what);
    Event e;
    e.kind = "outcome";
    e.stage = o.stage;
    e.text = std::string(outcome_name(o.kind)) + (o.reason.empty() ? "" : ": " + o.reason);
    e.data = {{"outcome", outcome_name(o.kind)}, {"stage", o.stage}, {"reason", o.reason}, {"remaining_undo", o.remaining_undo}};
    publish(e);
  }

  // Stages in order, with the stage templates used at pipeline level expanded in place.
  void collect_stages(const std::vector<ast::StmtPtr>& items, std::shared_ptr<Env> env, const std::string& prefix,
                      std::vector<StageItem>& out, const Stmt*& rollback, std::shared_ptr<Env>& rollback_env) {
    size_t i = 0;
    for (const ast::StmtPtr& sp : items) {
      const Stmt& s = *sp;
      ++i;
      if (s.kind == StmtKind::Stage) {
        if (s.word.text == "rollback") {
          rollback = &s;
          rollback_env = env;
        } else {
          out.push_back({&s, env, prefix + s.name.text});
        }
      } else if (s.kind == StmtKind::Use) {
        auto [tmpl, tenv] = instantiate(s, *env);
        collect_stages(tmpl->body, tenv, prefix + "use" + std::to_string(i) + ".", out, rollback, rollback_env);
      }
    }
  }

  // `use name(args)`: the template and an environment binding its parameters to the arguments.
  std::pair<const Stmt*, std::shared_ptr<Env>> instantiate(const Stmt& use, const Env& caller) {
    const Expr& call = *use.args.at(0);
    const Expr& callee = *call.items.at(0);
    int m = module_of(callee, caller);
    const Stmt* tmpl = nullptr;
    std::string name = callee.kind == ExprKind::Member ? callee.text : callee.text;
    for (const ast::StmtPtr& item : project_.module(m).ast.items)
      if (item->kind == StmtKind::Template && item->name.text == name) tmpl = item.get();
    if (!tmpl) throw EvalError{callee.span, "no template '" + name + "'"};
    auto env = std::make_shared<Env>(module_env(m));
    std::vector<bool> bound(tmpl->params.size(), false);
    size_t pos = 0;
    for (const ast::Field& f : call.fields) {
      size_t idx = tmpl->params.size();
      if (f.name.empty()) idx = pos++;
      else
        for (size_t k = 0; k < tmpl->params.size(); ++k)
          if (tmpl->params[k].name.text == f.name) idx = k;
      if (idx >= tmpl->params.size()) continue;
      bound[idx] = true;
      const ast::Param& p = tmpl->params[idx];
      // Metrics and plugins are passed by reference, not evaluated.
      if (f.value->kind == ExprKind::Name) {
        const Value* v = caller.find(f.value->text);
        if (v && (v->kind == Value::Kind::Metric || v->kind == Value::Kind::Plugin)) {
          env->set(p.name.text, *v);
          continue;
        }
      }
      env->set(p.name.text, eval(*f.value, caller, this));
    }
    for (size_t k = 0; k < tmpl->params.size(); ++k)
      if (!bound[k] && tmpl->params[k].value) env->set(tmpl->params[k].name.text, eval(*tmpl->params[k].value, *env, this));
    return {tmpl, env};
  }

  // The module a template reference points into: alias.name, or a name in the current module.
  int module_of(const Expr& callee, const Env& env) {
    const Value* mv = env.find("__module");
    int m = mv ? static_cast<int>(mv->num) : module_;
    if (callee.kind == ExprKind::Member) {
      const std::string& alias = callee.items.at(0)->text;
      for (const Import& imp : project_.module(m).imports)
        if (imp.alias == alias) return imp.module;
      throw EvalError{callee.span, "no module '" + alias + "'"};
    }
    return m;
  }

  // ---- stages ----

  struct Settings {
    const Expr* on = nullptr;
    std::shared_ptr<Env> on_env;
    const Expr* batch = nullptr;
    const Expr* parallel = nullptr;
    const Expr* via = nullptr;
    std::vector<const Expr*> steps;
    const Expr* hold = nullptr;
    std::shared_ptr<Env> env;  // where via/steps/hold are evaluated
    std::vector<StageItem> guards;
    std::string on_breach, on_failure;
    const Stmt* failure_block = nullptr;
    const Stmt* success_block = nullptr;
  };

  void gather(const std::vector<ast::StmtPtr>& body, std::shared_ptr<Env> env, Settings& st, const std::string& path) {
    size_t i = 0;
    for (const ast::StmtPtr& sp : body) {
      const Stmt& s = *sp;
      ++i;
      if (s.kind == StmtKind::Setting) {
        const std::string& k = s.word.text;
        const Expr* a = s.args.empty() ? nullptr : s.args[0].get();
        if (k == "on") st.on = a, st.on_env = env;
        else if (k == "batch") st.batch = a;
        else if (k == "parallel") st.parallel = a;
        else if (k == "via") st.via = a;
        else if (k == "hold") st.hold = a;
        else if (k == "steps")
          for (const ast::ExprPtr& e : s.args) st.steps.push_back(e.get());
        if (k == "via" || k == "steps" || k == "hold") st.env = env;
      } else if (s.kind == StmtKind::Guard) {
        st.guards.push_back({&s, env, path + "guard" + std::to_string(i)});
      } else if (s.kind == StmtKind::On) {
        const std::string& ev = s.word.text;
        if (ev == "breach") st.on_breach = s.word2.text;
        if (ev == "failure") {
          if (s.word2.empty()) st.failure_block = &s;
          else st.on_failure = s.word2.text;
        }
        if (ev == "success" && s.word2.empty()) st.success_block = &s;
      } else if (s.kind == StmtKind::Use && has_stage_parts(s, *env)) {
        // Only templates that bring settings, guards or handlers are bound here; the others
        // run as steps, where `host` has its value.
        auto [tmpl, tenv] = instantiate(s, *env);
        gather(tmpl->body, tenv, st, path + "use" + std::to_string(i) + ".");
      }
    }
  }

  bool has_stage_parts(const Stmt& use, const Env& env) {
    const Stmt* t = template_decl(use, env);
    if (!t) return false;
    for (const ast::StmtPtr& b : t->body)
      if (b->kind == StmtKind::Setting || b->kind == StmtKind::Guard || b->kind == StmtKind::On) return true;
    return false;
  }

  const Stmt* template_decl(const Stmt& use, const Env& env) {
    const Expr& callee = *use.args.at(0)->items.at(0);
    int m = module_of(callee, env);
    for (const ast::StmtPtr& item : project_.module(m).ast.items)
      if (item->kind == StmtKind::Template && item->name.text == callee.text) return item.get();
    return nullptr;
  }

  // Runs one stage. Returns the action to take ("" to go on) and why.
  Task<std::pair<std::string, std::string>> run_stage(StageItem item) {
    const Stmt& s = *item.stmt;
    const std::string name = s.name.text;
    // Shared with the guard loops, which may wake after this stage has ended.
    auto shared_state = std::make_shared<StageState>(&root_scope_);
    StageState& state = *shared_state;
    state.name = name;
    Settings set;
    set.env = item.env;
    gather(s.body, item.env, set, item.path + ".");
    state.on_breach = set.on_breach;
    emit("stage", name, item.path, "", s.word.text + " " + name);

    // Pipeline guards watch from the moment traffic first moves to the new version. A run
    // resumed in its rollback needs no verdicts: it only replays its way back to the rollback.
    if (!resumed_rollback_)
      for (const StageItem& g : set.guards) sched_.spawn(guard_loop(g, shared_state, name));
    current_stage_ = shared_state;
    current_stage_name_ = name;
    if (traffic_moved_) start_pipeline_guards();

    Ctx ctx{item.env, item.path, name, "", "", &state.scope};
    std::string failure;
    std::string failed_step;
    std::pair<std::string, std::string> control;  // abort / rollback / pause asked for by a step
    try {
      if (s.word.text == "ramp") co_await run_ramp(ctx, set, s);
      else if (set.on) co_await run_fanout(ctx, set, s);
      else co_await run_steps(s.body, ctx);
    } catch (const Cancelled&) {
    } catch (const StepFailed& f) {
      failure = f.reason;
      failed_step = f.step;
    } catch (const EvalError& e) {
      failure = e.message;
    } catch (const NoData& e) {
      failure = "metric " + e.metric + " has no data";
    } catch (const AbortRun& a) {
      control = {"abort", a.reason};
    } catch (const RollbackRequested& r) {
      control = {"rollback", r.reason};
    } catch (const PauseRequested& p) {
      control = {"pause", p.reason};
    }
    state.guard_scope.cancel(sched_);
    state.scope.cancel(sched_);
    if (!control.first.empty()) co_return control;

    if (state.breach) {
      std::string action = state.breach->action;
      emit("stage", name, item.path, "", "stage " + name + ": guard breached (" + state.breach->reason + "), action " + action);
      co_return std::make_pair(action, breach_reason(state));
    }
    if (stop_) co_return std::make_pair(std::string("stop"), std::string("stopped on request"));
    if (!failure.empty()) {
      emit("stage", name, item.path, "", "stage " + name + " failed: " + failure);
      if (set.failure_block) {
        Ctx hctx{item.env, item.path + ".on-failure", name, "", "", &root_scope_, true};
        co_await run_steps(set.failure_block->body, hctx);
        co_return std::make_pair(std::string("continue"), failure);
      }
      std::string action = !set.on_failure.empty() ? set.on_failure : !pipeline_on_failure_.empty() ? pipeline_on_failure_ : "rollback";
      co_return std::make_pair(action, "step " + failed_step + " failed: " + failure);
    }
    if (set.success_block) {
      Ctx hctx{item.env, item.path + ".on-success", name, "", "", &root_scope_};
      co_await run_steps(set.success_block->body, hctx);
    }
    emit("stage", name, item.path, "", "stage " + name + " completed");
    co_return std::make_pair(std::string(), std::string());
  }

  Task<void> run_ramp(Ctx ctx, const Settings& set, const Stmt& s) {
    co_await run_steps(s.body, ctx);  // steps written in a ramp run once, before the first shift
    if (!set.via) co_return;
    const Value* via = set.env->find(set.via->text);
    if (!via || via->kind != Value::Kind::Plugin) throw StepFailed{ctx.path, "'via' does not name a plugin"};
    std::vector<Value> weights;
    for (const Expr* e : set.steps) {
      Value v = eval(*e, *set.env, this);
      if (v.kind == Value::Kind::List)
        for (const Value& w : v.items()) weights.push_back(w);
      else
        weights.push_back(v);
    }
    double hold = set.hold ? duration_ms(eval(*set.hold, *set.env, this), 0) : 0;
    for (size_t k = 0; k < weights.size(); ++k) {
      Ctx step = ctx;
      step.path = ctx.path + ".step" + std::to_string(k + 1);
      Call c;
      c.op = "weight";
      c.args["canary"] = weights[k];
      co_await effect(step, via->str, c, "shift " + weights[k].text() + " of traffic to the canary");
      Event e;
      e.kind = "weights";
      e.stage = ctx.stage;
      e.step = step.path;
      e.text = via->str + ": canary " + weights[k].text();
      e.data = {{"gateway", via->str}, {"canary", weights[k].num}};
      publish(e);
      if (hold > 0) {
        Ctx h = ctx;
        h.path = ctx.path + ".hold" + std::to_string(k + 1);
        co_await timed_wait(h, hold, "hold at " + weights[k].text());
      }
    }
  }

  Task<void> run_fanout(Ctx ctx, const Settings& set, const Stmt& s) {
    Value hosts = eval(*set.on, *set.on_env, this);
    std::string hosts_plugin = root_plugin(*set.on, *set.on_env);
    std::vector<Value> list = hosts.items();
    if (hosts.kind == Value::Kind::Plugin) list = plugin_read(hosts.str, "all", {}, set.on->span).items();
    size_t n = list.size();
    if (n == 0) {
      emit("note", ctx.stage, ctx.path, "", "no hosts matched; nothing to do");
      co_return;
    }
    size_t batch = 1;
    if (set.batch) {
      Value b = eval(*set.batch, *set.env, this);
      batch = b.kind == Value::Kind::Percent ? static_cast<size_t>(std::ceil(n * b.num / 100.0)) : static_cast<size_t>(b.num);
      batch = std::max<size_t>(1, batch);
    }
    size_t parallel = batch;
    if (set.parallel) parallel = std::max<size_t>(1, static_cast<size_t>(eval(*set.parallel, *set.env, this).num));
    for (size_t from = 0; from < n; from += batch) {
      size_t to = std::min(n, from + batch);
      std::string names;
      for (size_t i = from; i < to; ++i) names += (names.empty() ? "" : ", ") + list[i].str;
      emit("note", ctx.stage, ctx.path, "", "batch " + std::to_string(from / batch + 1) + ": " + names);
      std::vector<std::function<Task<void>()>> lanes;
      for (size_t i = from; i < to; ++i) {
        Value host = list[i];
        if (host.kind == Value::Kind::String) host = Value::named(Value::Kind::Host, host.str);
        lanes.push_back([this, ctx, host, hosts_plugin, &s]() -> Task<void> {
          Ctx lane = ctx;
          lane.env = std::make_shared<Env>(ctx.env);
          lane.env->set("host", host);
          lane.host = host.str;
          lane.hosts_plugin = hosts_plugin;
          co_await run_steps(s.body, lane);
        });
      }
      CancelScope batch_scope(ctx.scope);
      Task<void> batch_task = sched_.all(std::move(lanes), parallel, batch_scope);
      co_await batch_task;
    }
  }

  // The hosts plugin an `on` expression starts from (fleet in fleet.tagged("canary")).
  std::string root_plugin(const Expr& e, const Env& env) {
    const Expr* cur = &e;
    while (cur->kind == ExprKind::Member || cur->kind == ExprKind::Call) cur = cur->items.at(0).get();
    if (cur->kind == ExprKind::Name)
      if (const Value* v = env.find(cur->text); v && v->kind == Value::Kind::Plugin) return v->str;
    return first_plugin(Kind::Hosts);
  }

  std::string first_plugin(Kind k) {
    for (const PluginDecl& d : decls_)
      if (d.kind == k) return d.name;
    return {};
  }

  // ---- steps ----

  Task<void> run_steps(const std::vector<ast::StmtPtr>& body, Ctx ctx) {
    size_t i = 0;
    std::string last_effect;  // key of the last effect in this block, for `undo`
    for (const ast::StmtPtr& sp : body) {
      const Stmt& s = *sp;
      ++i;
      if (stop_) throw Cancelled{};
      Ctx step = ctx;
      step.path = ctx.path + "." + std::to_string(i);
      switch (s.kind) {
        case StmtKind::Setting:
        case StmtKind::Guard:
        case StmtKind::On: break;
        case StmtKind::Let: {
          Value v = co_await decide(step, s.value.get(), "let " + s.name.text);
          auto env = std::make_shared<Env>(ctx.env);
          env->set(s.name.text, v);
          ctx.env = env;
          break;
        }
        case StmtKind::Run: {
          Value cmd = eval_command(*s.args.at(0), *ctx.env, this);
          double timeout = clause_ms(s, "timeout", *ctx.env, kRunTimeoutMs);
          last_effect = co_await run_command(step, cmd, timeout);
          break;
        }
        case StmtKind::Probe: co_await probe(step, s); break;
        case StmtKind::Wait: co_await timed_wait(step, duration_ms(eval(*s.args.at(0), *ctx.env, this), 0), "wait"); break;
        case StmtKind::WaitUntil: co_await wait_until(step, s); break;
        case StmtKind::Approve: co_await approve(step, s); break;
        case StmtKind::Route: last_effect = co_await route(step, s); break;
        case StmtKind::Drain:
        case StmtKind::Restore: last_effect = co_await drain(step, s); break;
        case StmtKind::Scale: {
          Call c;
          c.op = "scale";
          c.args["group"] = Value::string(s.word.text);
          c.args["count"] = eval(*s.args.at(0), *ctx.env, this);
          last_effect = co_await effect(step, s.name.text, c, "scale " + s.word.text + " to " + c.args["count"].text());
          break;
        }
        case StmtKind::Phase: set_phase(step, s.str); break;
        case StmtKind::Undo:
          if (s.word.text == "all") {
            co_await undo_all(step);
          } else {
            add_user_undo(step, s, last_effect);
          }
          break;
        case StmtKind::Abort: throw AbortRun{s.str.empty() ? "aborted at " + step.path : s.str};
        case StmtKind::If: {
          bool cond = (co_await decide(step, s.args.at(0).get(), "if")).flag;
          Ctx branch = step;
          branch.path = step.path + (cond ? ".then" : ".else");
          co_await run_steps(cond ? s.body : s.else_body, branch);
          break;
        }
        case StmtKind::Use: {
          auto [tmpl, tenv] = instantiate(s, *ctx.env);
          Ctx inner = step;
          auto env = std::make_shared<Env>(tenv);
          if (const Value* h = ctx.env->find("host"); h && !ctx.host.empty()) env->set("host", *h);
          inner.env = env;
          inner.path = step.path + ".use";
          co_await run_steps(tmpl->body, inner);
          last_effect = step.path;
          break;
        }
        case StmtKind::Call: {
          const Expr& call = *s.args.at(0);
          const Expr& callee = *call.items.at(0);
          const Value* p = ctx.env->find(callee.items.at(0)->text);
          if (!p || p->kind != Value::Kind::Plugin) throw StepFailed{step.path, "not a plugin"};
          Call c;
          c.op = callee.text;
          const plugins::OpSpec* op = plugins::find_op(plugins_.at(p->str).decl.kind, c.op);
          size_t pos = 0;
          for (const ast::Field& f : call.fields) {
            std::string name = f.name;
            if (name.empty()) name = op && pos < op->params.size() ? op->params[pos].name : "arg" + std::to_string(pos);
            if (f.name.empty()) ++pos;
            c.args[name] = eval(*f.value, *ctx.env, this);
          }
          last_effect = co_await effect(step, p->str, c, describe_call(p->str, c));
          break;
        }
        default: break;
      }
    }
  }

  double clause_ms(const Stmt& s, const char* key, const Env& env, double fallback) {
    const ast::Clause* c = s.clause(key);
    return c && c->value ? duration_ms(eval(*c->value, env, this), fallback) : fallback;
  }

  double clause_num(const Stmt& s, const char* key, const Env& env, double fallback) {
    const ast::Clause* c = s.clause(key);
    return c && c->value ? eval(*c->value, env, this).num : fallback;
  }

  std::string key_of(const Ctx& c) const { return cfg_.run_id + ":" + c.path + (c.host.empty() ? "" : "@" + c.host); }

  // A decision read from the world (an `if`, a `let`): journaled so a replay takes the same path.
  Task<Value> decide(Ctx step, const Expr* e, const std::string& what) {
    std::string key = key_of(step);
    if (const StepRecord* r = svc_.log ? svc_.log->find(key) : nullptr; r && r->done) co_return r->result.value;
    starting_something_new(step);
    Value v;
    try {
      v = eval(*e, *step.env, this);
    } catch (const NoData& nd) {
      throw StepFailed{step.path, "metric " + nd.metric + " has no data"};
    }
    if (svc_.log) {
      svc_.log->started(key, what, nlohmann::json::object(), step.host, sched_.now());
      Result r;
      r.value = v;
      svc_.log->finished(key, r, sched_.now());
    }
    co_return v;
  }

  // One effect through a plugin, journaled before and after; on replay a completed key is not
  // called again. Returns the key, for `undo`.
  // A host named by `server` or `instance` travels as its name; real drivers also get its
  // inventory record.
  void add_host_record(Call& call) const {
    if (!svc_.host_records) return;
    for (const char* arg : {"server", "instance"}) {
      auto it = call.args.find(arg);
      if (it == call.args.end() || it->second.kind != Value::Kind::Host) continue;
      Value host = it->second;
      it->second = Value::string(host.str);
      if (!host.map) continue;
      Map vars;
      for (const auto& [k, v] : host.fields()) {
        if (k == "addr" || k == "port") call.args.emplace(k, v);
        else if (k != "name" && k != "tags") vars[k] = Value::string(v.text());
      }
      call.args.emplace("vars", Value::of_map(std::move(vars)));
    }
  }

  Task<std::string> effect(Ctx step, std::string plugin, Call call, std::string what) {
    std::string key = key_of(step);
    call.key = key;
    add_host_record(call);
    auto pit = plugins_.find(plugin);
    if (pit == plugins_.end()) throw StepFailed{step.path, "no plugin '" + plugin + "'"};
    Result r;
    const StepRecord* rec = svc_.log ? svc_.log->find(key) : nullptr;
    if (rec && rec->done) {
      r = rec->result;
    } else {
      starting_something_new(step);
      plugins::Driver* drv = pit->second.driver.get();
      // The compensation is read before the effect and journaled ahead of it. A step re-entered
      // after a crash keeps the one read the first time: the world may already have changed.
      std::optional<Call> planned = rec ? rec->planned_undo : std::nullopt;
      if (!rec) {
        std::function<std::optional<Call>()> read = [drv, call] { return drv->undo_for(call); };
        auto reading = sched_.offload<std::optional<Call>>(std::move(read));
        planned = co_await reading;
      }
      if (svc_.log) svc_.log->started(key, plugin + "." + call.op, args_json(call), step.host, sched_.now(), planned ? &*planned : nullptr);
      emit("step", step.stage, step.path, step.host, what);
      // Awaiters are named locals: g++ 12 mishandles temporaries in co_await operands.
      std::function<Result()> work = [drv, call] { return drv->call(call); };
      auto offload = sched_.offload<Result>(std::move(work));
      r = co_await offload;
      if (r.ok() && planned) r.undo = planned;
      if (sched_.clock().is_virtual() && r.elapsed_ms > 0) {
        auto pause = sched_.sleep_for(r.elapsed_ms, nullptr);
        co_await pause;
      }
      if (svc_.log) svc_.log->finished(key, r, sched_.now());
    }
    if (!r.ok()) {
      emit("step", step.stage, step.path, step.host, what + " failed: " + r.message);
      throw StepFailed{step.path, what + ": " + (r.message.empty() ? "failed" : r.message)};
    }
    if (r.undo) push_undo({key, describe_call(plugin, *r.undo) + " (undoes: " + what + ")", {{plugin, *r.undo}}});
    note_traffic(call);
    co_return key;
  }

  Task<std::string> run_command(Ctx step, const Value& cmd, double timeout) {
    std::string plugin = step.hosts_plugin.empty() ? first_plugin(Kind::Hosts) : step.hosts_plugin;
    if (plugin.empty()) throw StepFailed{step.path, "'run' needs a hosts plugin to run commands on"};
    Call c;
    c.op = "run";
    c.args["host"] = Value::string(step.host);
    c.args["command"] = cmd;
    c.timeout_ms = timeout;
    std::string key = co_await effect(step, plugin, c, "run " + cmd.shown());
    co_return key;
  }

  Task<void> timed_wait(Ctx step, double ms, const std::string& what) {
    std::string key = key_of(step);
    const StepRecord* rec = svc_.log ? svc_.log->find(key) : nullptr;
    if (rec && rec->done) co_return;
    starting_something_new(step);
    double start = rec ? rec->started_at : sched_.now();  // a resumed hold keeps its remaining time
    if (!rec && svc_.log) svc_.log->started(key, "wait", {{"ms", ms}}, step.host, start);
    emit("step", step.stage, step.path, step.host, what + " " + format_duration(ms));
    {
      auto sleep = sched_.sleep_until(start + ms, step.scope);
      co_await sleep;
    }
    if (svc_.log) svc_.log->finished(key, Result{}, sched_.now());
  }

  Task<void> wait_until(Ctx step, const Stmt& s) {
    std::string key = key_of(step);
    const StepRecord* rec = svc_.log ? svc_.log->find(key) : nullptr;
    if (rec && rec->done) co_return;
    starting_something_new(step);
    double timeout = clause_ms(s, "timeout", *step.env, 600000);
    double every = clause_ms(s, "every", *step.env, 10000);
    double start = rec ? rec->started_at : sched_.now();
    if (!rec && svc_.log) svc_.log->started(key, "wait until", nlohmann::json::object(), step.host, start);
    emit("step", step.stage, step.path, step.host, "wait until the condition holds (timeout " + format_duration(timeout) + ")");
    for (;;) {
      bool ok = false;
      try {
        ok = eval_bool(*s.args.at(0), *step.env, this);
      } catch (const NoData&) {
        ok = false;
      }
      if (ok) break;
      if (sched_.now() + every > start + timeout) {
        Result r;
        r.status = Result::Status::Failed;
        r.message = "still false after " + format_duration(timeout);
        if (svc_.log) svc_.log->finished(key, r, sched_.now());
        throw StepFailed{step.path, "the condition was still false after " + format_duration(timeout)};
      }
      {
      auto sleep = sched_.sleep_for(every, step.scope);
      co_await sleep;
    }
    }
    if (svc_.log) svc_.log->finished(key, Result{}, sched_.now());
  }

  Task<void> probe(Ctx step, const Stmt& s) {
    std::string key = key_of(step);
    const StepRecord* rec = svc_.log ? svc_.log->find(key) : nullptr;
    if (rec && rec->done) {
      if (!rec->result.ok()) throw StepFailed{step.path, rec->result.message};
      co_return;
    }
    starting_something_new(step);
    const Env& env = *step.env;
    std::string target = (s.word.text == "cmd" ? eval_command(*s.args.at(0), env, this) : eval(*s.args.at(0), env, this)).text();
    int attempts = static_cast<int>(clause_num(s, "attempts", env, 1));
    double every = clause_ms(s, "every", env, 5000);
    double timeout = clause_ms(s, "timeout", env, 10000);
    if (svc_.log) svc_.log->started(key, "probe " + s.word.text, {{"target", target}}, step.host, sched_.now());
    emit("step", step.stage, step.path, step.host, "probe " + s.word.text + " " + target);
    std::string last;
    for (int a = 1; a <= attempts; ++a) {
      Result r = co_await probe_once(step, s, target, timeout);
      if (r.ok()) {
        if (svc_.log) svc_.log->finished(key, r, sched_.now());
        co_return;
      }
      last = r.message;
      if (a < attempts) {
      auto sleep = sched_.sleep_for(every, step.scope);
      co_await sleep;
    }
    }
    Result r;
    r.status = Result::Status::Failed;
    r.message = "probe " + target + " failed after " + std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s") + ": " + last;
    if (svc_.log) svc_.log->finished(key, r, sched_.now());
    throw StepFailed{step.path, r.message};
  }

  Task<Result> probe_once(Ctx step, const Stmt& s, const std::string& target, double timeout) {
    Result r;
    const Env& env = *step.env;
    if (s.word.text == "cmd") {
      std::string plugin = step.hosts_plugin.empty() ? first_plugin(Kind::Hosts) : step.hosts_plugin;
      auto it = plugins_.find(plugin);
      if (it == plugins_.end()) {
        r.status = Result::Status::Error;
        r.message = "no hosts plugin";
        co_return r;
      }
      Call c;
      c.op = "run";
      c.args["host"] = Value::string(step.host);
      c.args["command"] = Value::string(target);
      c.timeout_ms = timeout;
      plugins::Driver* drv = it->second.driver.get();
      std::function<Result()> work = [drv, c] { return drv->call(c); };
      auto offload = sched_.offload<Result>(std::move(work));
      r = co_await offload;
    } else if (svc_.prober) {
      plugins::Prober* p = svc_.prober;
      std::function<Result()> work;
      if (s.word.text == "tcp") {
        work = [p, target, timeout] { return p->tcp(target, timeout); };
      } else {
        std::vector<std::string> headers;
        for (const ast::Clause& c : s.clauses)
          if (c.key == "header" && c.value) headers.push_back(eval(*c.value, env, this).text());
        work = [p, target, headers, timeout] { return p->http(target, headers, timeout); };
      }
      auto offload = sched_.offload<Result>(std::move(work));
      r = co_await offload;
      // Any answer is judged by `expect` (a probe may expect a 404 or a 302), not only a 2xx:
      // the prober marks non-2xx Failed, with the status in the value.
      if (s.word.text == "http" && r.status != Result::Status::Error && r.value.kind == Value::Kind::Map &&
          r.value.fields().count("status")) {
        std::string prober_says = r.message;
        r.status = Result::Status::Ok;
        r.message.clear();
        r = check_http(s, env, r);
        if (!r.ok() && !prober_says.empty() && r.message.rfind("status ", 0) == 0) r.message = prober_says;
      }
    } else {
      r.status = Result::Status::Error;
      r.message = "no prober";
    }
    if (sched_.clock().is_virtual() && r.elapsed_ms > 0) {
      auto pause = sched_.sleep_for(r.elapsed_ms, step.scope);
      co_await pause;
    }
    co_return r;
  }

  Result check_http(const Stmt& s, const Env& env, Result r) {
    double status = r.value.fields().count("status") ? r.value.fields().at("status").num : 0;
    std::vector<double> expected;
    if (const ast::Clause* c = s.clause("expect"); c && c->value) {
      Value v = eval(*c->value, env, this);
      if (v.kind == Value::Kind::List)
        for (const Value& x : v.items()) expected.push_back(x.num);
      else
        expected.push_back(v.num);
    }
    bool ok = expected.empty() ? (status >= 200 && status < 400) : std::find(expected.begin(), expected.end(), status) != expected.end();
    if (!ok) {
      r.status = Result::Status::Failed;
      r.message = "status " + Value::number(status).text();
      return r;
    }
    if (const ast::Clause* c = s.clause("contains"); c && c->value) {
      std::string want = eval(*c->value, env, this).text();
      std::string body = r.value.fields().count("body") ? r.value.fields().at("body").str : "";
      if (body.find(want) == std::string::npos) {
        r.status = Result::Status::Failed;
        r.message = "the response does not contain \"" + want + "\"";
      }
    }
    return r;
  }

  Task<void> approve(Ctx step, const Stmt& s) {
    std::string key = key_of(step);
    const StepRecord* rec = svc_.log ? svc_.log->find(key) : nullptr;
    std::string answer;
    if (rec && rec->done) {
      answer = rec->result.value.str;
    } else {
      starting_something_new(step);
      double timeout = clause_ms(s, "timeout", *step.env, -1);
      std::string dflt = s.clause("default") ? s.clause("default")->word.text : "";
      double start = rec ? rec->started_at : sched_.now();
      if (!rec && svc_.log) svc_.log->started(key, "approve", {{"message", s.str}}, step.host, start);
      emit("approval", step.stage, step.path, step.host,
           "waiting for approval" + (s.str.empty() ? "" : ": " + s.str) + " (gray promote / gray abort)");
      struct Waiting {
        int& n;
        explicit Waiting(int& count) : n(count) { ++n; }
        ~Waiting() { --n; }
      } waiting(gates_waiting_);
      for (;;) {
        if (svc_.answer)
          if (auto a = svc_.answer(key)) {
            answer = *a;
            break;
          }
        if (timeout >= 0 && sched_.now() >= start + timeout) {
          answer = dflt.empty() ? "abort" : dflt;
          emit("approval", step.stage, step.path, step.host, "no answer within " + format_duration(timeout) + "; taking the default: " + answer);
          break;
        }
        if (sched_.clock().is_virtual() && timeout < 0) throw PauseRequested{"waiting for approval at " + step.path};
        double next = sched_.now() + svc_.answer_poll_ms;
        if (timeout >= 0) next = std::min(next, start + timeout);
        {
      auto sleep = sched_.sleep_until(next, step.scope);
      co_await sleep;
    }
      }
      Result r;
      r.value = Value::string(answer);
      if (svc_.log) svc_.log->finished(key, r, sched_.now());
    }
    emit("approval", step.stage, step.path, step.host, "answer: " + answer);
    if (answer == "abort") throw AbortRun{"aborted at the approval gate " + step.path};
    if (answer == "rollback") throw RollbackRequested{"rollback chosen at the approval gate " + step.path};
  }

  Task<std::string> route(Ctx step, const Stmt& s) {
    Call c;
    if (s.match_kind == "clear") {
      c.op = "clear_routes";
      co_return co_await effect(step, s.name.text, c, "clear the routes of " + s.name.text);
    }
    c.op = "route";
    c.args["match"] = Value::string(s.match_kind);
    if (s.match_kind == "ip") {
      c.args["value"] = eval(*s.args.at(0), *step.env, this);
    } else {
      c.args["name"] = eval(*s.args.at(0), *step.env, this);
      c.args["op"] = Value::string(s.match_op);
      c.args["value"] = eval(*s.args.at(1), *step.env, this);
    }
    const Expr& t = *s.args.back();
    Value target = t.kind == ExprKind::Name && !(step.env->find(t.text) && step.env->find(t.text)->kind == Value::Kind::String)
                       ? Value::string(t.text)
                       : eval(t, *step.env, this);
    c.args["target"] = Value::string(target.text());
    co_return co_await effect(step, s.name.text, c, "route " + s.match_kind + " matches to " + target.text() + " on " + s.name.text);
  }

  Task<std::string> drain(Ctx step, const Stmt& s) {
    const Value* p = step.env->find(s.name.text);
    if (!p || p->kind != Value::Kind::Plugin) throw StepFailed{step.path, "'" + s.name.text + "' is not a plugin"};
    const PluginDecl& d = plugins_.at(p->str).decl;
    const Value* lane_host = step.env->find("host");
    Value subject = !s.args.empty()                                            ? eval(*s.args[0], *step.env, this)
                    : lane_host && lane_host->kind == Value::Kind::Host ? *lane_host
                                                                              : Value::string(step.host);
    std::string who = subject.text();
    bool is_drain = s.kind == StmtKind::Drain;
    std::string last;
    auto one = [&](const std::string& op, const std::string& arg, int n) -> Task<std::string> {
      Ctx sub = step;
      sub.path = step.path + "." + op;
      Call c;
      c.op = op;
      c.args[arg] = subject.kind == Value::Kind::Host && svc_.host_records ? subject : Value::string(who);
      (void)n;
      co_return co_await effect(sub, p->str, c, op + " " + who + " on " + p->str);
    };
    const size_t stack_before = undo_.size();
    if (d.kind == Kind::Registry) {
      if (is_drain) {
        last = co_await one("deregister", "instance", 1);
        last = co_await one("pause_registration", "instance", 2);
      } else {
        last = co_await one("register", "instance", 1);
        last = co_await one("resume_registration", "instance", 2);
      }
    } else {
      last = co_await one(is_drain ? "drain" : "ready", "server", 1);
    }
    if (!is_drain) {
      // A restore answers a drain: neither keeps a compensation on the stack.
      while (undo_.size() > stack_before) {
        log_undone(undo_.back().key);
        undo_.pop_back();
      }
      settle(p->str, who);
    }
    if (is_drain)
      if (double w = clause_ms(s, "wait", *step.env, 0); w > 0) {
        Ctx h = step;
        h.path = step.path + ".wait";
        co_await timed_wait(h, w, "let clients notice that " + who + " left");
      }
    co_return last;
  }

  // A restore settles the compensation of the drain it answers: rollback must not repeat it.
  void settle(const std::string& plugin, const std::string& who) {
    static const std::set<std::string> restoring = {"register", "resume_registration", "ready", "enable"};
    undo_.erase(std::remove_if(undo_.begin(), undo_.end(),
                               [&](const UndoEntry& u) {
                                 if (u.calls.size() != 1 || u.calls[0].first != plugin) return false;
                                 const Call& c = u.calls[0].second;
                                 if (!restoring.count(c.op)) return false;
                                 for (const auto& [k, v] : c.args)
                                   if ((k == "instance" || k == "server") && v.text() == who) {
                                     log_undone(u.key);
                                     return true;
                                   }
                                 return false;
                               }),
                undo_.end());
  }

  void log_undone(const std::string& key) {
    if (svc_.log) svc_.log->undone(key, sched_.now());
  }

  void add_user_undo(const Ctx& step, const Stmt& s, const std::string& last_effect) {
    UndoEntry u;
    u.key = last_effect.empty() ? key_of(step) : last_effect;
    if (!s.args.empty()) {
      Value cmd = eval_command(*s.args[0], *step.env, this);
      std::string plugin = step.hosts_plugin.empty() ? first_plugin(Kind::Hosts) : step.hosts_plugin;
      Call c;
      c.op = "run";
      c.args["host"] = Value::string(step.host);
      c.args["command"] = cmd;
      c.timeout_ms = kRunTimeoutMs;
      u.calls.push_back({plugin, c});
      u.what = "run " + cmd.shown() + (step.host.empty() ? "" : " on " + step.host);
    } else {
      // undo { ... }: its effect steps, evaluated now so the stack holds concrete calls.
      for (const ast::StmtPtr& sp : s.body) {
        const Stmt& b = *sp;
        if (b.kind == StmtKind::Run) {
          Call c;
          c.op = "run";
          c.args["host"] = Value::string(step.host);
          c.args["command"] = eval(*b.args.at(0), *step.env, this);
          c.timeout_ms = clause_ms(b, "timeout", *step.env, kRunTimeoutMs);
          u.calls.push_back({step.hosts_plugin.empty() ? first_plugin(Kind::Hosts) : step.hosts_plugin, c});
        } else if (b.kind == StmtKind::Call) {
          const Expr& call = *b.args.at(0);
          const Expr& callee = *call.items.at(0);
          const Value* p = step.env->find(callee.items.at(0)->text);
          if (!p) continue;
          Call c;
          c.op = callee.text;
          const plugins::OpSpec* op = plugins::find_op(plugins_.at(p->str).decl.kind, c.op);
          size_t pos = 0;
          for (const ast::Field& f : call.fields) {
            std::string name = f.name.empty() && op && pos < op->params.size() ? op->params[pos].name : f.name;
            if (f.name.empty()) ++pos;
            c.args[name] = eval(*f.value, *step.env, this);
          }
          u.calls.push_back({p->str, c});
        } else if (b.kind == StmtKind::Drain || b.kind == StmtKind::Restore) {
          const Value* p = step.env->find(b.name.text);
          if (!p || p->kind != Value::Kind::Plugin) continue;
          std::string who = b.args.empty() ? step.host : eval(*b.args[0], *step.env, this).text();
          bool registry = plugins_.at(p->str).decl.kind == Kind::Registry;
          bool is_drain = b.kind == StmtKind::Drain;
          std::vector<std::string> ops = registry ? (is_drain ? std::vector<std::string>{"deregister", "pause_registration"}
                                                              : std::vector<std::string>{"register", "resume_registration"})
                                                  : std::vector<std::string>{is_drain ? "drain" : "ready"};
          for (const std::string& op : ops) {
            Call c;
            c.op = op;
            c.args[registry ? "instance" : "server"] = Value::string(who);
            u.calls.push_back({p->str, c});
          }
          if (double w = is_drain ? clause_ms(b, "wait", *step.env, 0) : 0; w > 0) u.calls.push_back({"", wait_call(w)});
        } else if (b.kind == StmtKind::Wait) {
          u.calls.push_back({"", wait_call(duration_ms(eval(*b.args.at(0), *step.env, this), 0))});
        }
      }
      u.what = "undo block at " + step.path;
    }
    // A written undo replaces what the driver proposed for the same step.
    if (!undo_.empty() && undo_.back().key == u.key) undo_.pop_back();
    push_undo(std::move(u));
  }

  // A pause inside an undo block (clients must notice a drain before the downgrade).
  static Call wait_call(double ms) {
    Call c;
    c.op = "wait";
    c.args["ms"] = Value::number(ms);
    return c;
  }

  void push_undo(UndoEntry u) {
    if (rolling_back_) return;  // compensations do not get compensations of their own
    undo_.push_back(std::move(u));
  }

  // Runs the undo stack, newest first. A compensation that fails is kept (it is reported as
  // needing attention) and the others still run. Returns false if anything could not be undone.
  Task<bool> undo_all(Ctx step) {
    bool ok = true;
    rolling_back_ = true;
    std::vector<UndoEntry> failed;
    while (!undo_.empty()) {
      UndoEntry u = undo_.back();
      size_t i = 0;
      bool this_ok = true;
      for (auto& [plugin, call] : u.calls) {
        Ctx sub = step;
        sub.host = "";
        sub.path = "undo(" + u.key + ")." + std::to_string(++i);
        sub.scope = &root_scope_;
        try {
          if (plugin.empty() && call.op == "wait") {
            co_await timed_wait(sub, call.args.at("ms").num, "undo: wait");
            continue;
          }
          co_await effect(sub, plugin, call, "undo: " + describe_call(plugin, call));
        } catch (const StepFailed& f) {
          emit("undo", step.stage, sub.path, "", "undo failed: " + f.reason);
          this_ok = false;
        }
        if (!this_ok) break;  // the rest of this compensation depends on what just failed
      }
      undo_.pop_back();
      if (!this_ok) {
        ok = false;
        failed.insert(failed.begin(), u);
        continue;
      }
      log_undone(u.key);
    }
    undo_ = std::move(failed);
    rolling_back_ = false;
    co_return ok;
  }

  Task<Outcome> roll_back(const std::string& stage, const std::string& reason) {
    Outcome out;
    out.stage = stage;
    out.reason = reason;
    in_rollback_ = true;
    if (svc_.log && !resumed_rollback_ && !rollback_journaled_) svc_.log->rolling_back(reason, sched_.now());
    rollback_journaled_ = true;
    emit("stage", "rollback", "rollback", "", "rolling back: " + reason);
    Ctx ctx{rollback_env_ ? rollback_env_ : pipeline_env_, "rollback", "rollback", "", "", &root_scope_, true};
    bool ok = true;
    bool explicit_undo = false;
    if (rollback_stmt_)
      for (const ast::StmtPtr& s : rollback_stmt_->body)
        if (s->kind == StmtKind::Undo && s->word.text == "all") explicit_undo = true;
    try {
      if (!explicit_undo) ok = co_await undo_all(ctx);
      if (rollback_stmt_) {
        rolling_back_ = true;
        co_await run_steps(rollback_stmt_->body, ctx);
        rolling_back_ = false;
        if (!undo_.empty()) ok = false;
      }
    } catch (const StepFailed& f) {
      emit("undo", "rollback", f.step, "", "rollback step failed: " + f.reason);
      ok = false;
    } catch (const EvalError& e) {
      emit("undo", "rollback", "rollback", "", "rollback failed: " + e.message);
      ok = false;
    }
    rolling_back_ = false;
    out.kind = ok ? Outcome::Kind::RolledBack : Outcome::Kind::NeedsAttention;
    co_return out;
  }

  void set_phase(const Ctx& step, const std::string& name) {
    phase_ = name;
    Event e;
    e.kind = "phase";
    e.stage = step.stage;
    e.step = step.path;
    e.text = "phase " + name;
    e.data = {{"phase", name}};
    publish(e);
  }

  // ---- guards ----

  struct GuardSamples {
    std::vector<double> canary, baseline;
  };

  Task<void> guard_loop(StageItem g, std::shared_ptr<StageState> shared_state, std::string stage) {
    StageState& state = *shared_state;
    const Stmt& s = *g.stmt;
    const Env& env = *g.env;
    std::string label = !s.str.empty() ? s.str : guard_text(s);
    double every = clause_ms(s, "every", env, 30000);
    double sustain = clause_ms(s, "for", env, 0);
    int limit = static_cast<int>(clause_num(s, "limit", env, 0));
    int max_errors = static_cast<int>(clause_num(s, "errors", env, 3));
    int min_samples = static_cast<int>(clause_num(s, "samples", env, 10));
    std::string nodata = s.clause("nodata") ? s.clause("nodata")->word.text : "inconclusive";
    std::string action = s.clause("else") ? s.clause("else")->word.text
                         : !state.on_breach.empty() ? state.on_breach
                         : !pipeline_on_breach_.empty() ? pipeline_on_breach_
                                                        : "rollback";
    int failures = 0, errors = 0;
    double failing_since = -1;
    // A resumed run: pick up the count of trailing failures (and errors) and the evaluation
    // schedule where the run left them.
    double next_at = sched_.now() + every;
    if (svc_.log) {
      std::vector<RunLog::Verdict> past = svc_.log->guard_history(label, stage);
      for (auto it = past.rbegin(); it != past.rend() && it->verdict == "fail"; ++it) ++failures, failing_since = it->at;
      for (auto it = past.rbegin(); it != past.rend() && it->verdict == "error"; ++it) ++errors;
      if (!past.empty()) next_at = std::max(sched_.now(), past.back().at + every);
    }
    GuardSamples samples;
    try {
      for (bool first = true;; first = false) {
        {
      auto sleep = first ? sched_.sleep_until(next_at, &state.guard_scope) : sched_.sleep_for(every, &state.guard_scope);
      co_await sleep;
    }
        std::string verdict;
        std::string detail;
        try {
          if (s.word.text == "compare") {
            Value a = eval(*s.args.at(0), env, this);
            Value b;
            if (!eval_unless_no_data(*s.args.at(1), env, b)) {
              // Nothing to compare with (the baseline serves no traffic at 100%): no verdict.
              publish_guard(stage, label, "pending", "no baseline data");
              continue;
            }
            double tol = eval(*s.args.at(2), env, this).scalar();
            samples.canary.push_back(a.scalar());
            samples.baseline.push_back(b.scalar());
            double ca = mean(samples.canary), ba = mean(samples.baseline);
            if (static_cast<int>(samples.canary.size()) < min_samples) verdict = "pending";
            else verdict = ca <= ba * (1 + tol) + 1e-12 ? "pass" : "fail";
            // Only events and breaches show it: formatting numbers costs more than the judging.
            if (listening() || verdict == "fail")
              detail = "canary " + fmt(ca) + " vs baseline " + fmt(ba) + " (" + std::to_string(samples.canary.size()) + " samples)";
          } else if (s.word.text == "probe") {
            Ctx pctx{g.env, g.path, stage, "", "", &state.guard_scope};
            Result r = co_await probe_once(pctx, s, eval(*s.args.at(0), env, this).text(), clause_ms(s, "timeout", env, 10000));
            verdict = r.ok() ? "pass" : "fail";
            detail = r.ok() ? "probe ok" : r.message;
          } else {
            // Read each metric once per evaluation: the values shown are the ones judged. The
            // evaluation runs without suspending, so every guard can reuse the same buffers.
            MetricCache& cache = guard_cache_;
            cache.clear();
            struct Cache {
              Impl& self;
              ~Cache() { self.metric_cache_ = nullptr; }
            } scope{*this};
            metric_cache_ = &cache;
            GuardValues& shown = guard_shown_;
            shown.clear();
            read_guard_values(*s.args.at(0), env, shown);
            verdict = eval_bool(*s.args.at(0), env, this) ? "pass" : "fail";
            if (listening() || verdict == "fail") detail = guard_values_text(shown);
          }
          errors = 0;
        } catch (const NoData& nd) {
          detail = "no data for " + nd.metric;
          verdict = nodata == "pass" ? "pass" : nodata == "fail" ? "fail" : "inconclusive";
        } catch (const EvalError& e) {
          detail = e.message;
          verdict = "error";
        }
        publish_guard(stage, label, verdict, detail);
        if (verdict == "pass" || verdict == "pending") {
          failing_since = -1;
          continue;
        }
        if (verdict == "inconclusive") {
          trigger(state, label, "pause", "inconclusive: " + detail);
          co_return;
        }
        if (verdict == "error") {
          if (++errors > max_errors) {
            trigger(state, label, action, std::to_string(errors) + " evaluation errors in a row: " + detail);
            co_return;
          }
          continue;
        }
        // fail
        ++failures;
        if (failing_since < 0) failing_since = sched_.now();
        if (failures > limit && sched_.now() - failing_since >= sustain) {
          trigger(state, label, action, detail);
          co_return;
        }
      }
    } catch (const Cancelled&) {
    }
  }

  // Pipeline guards watch from the first step that sends users to the new version: a weight
  // above zero, a route, or an instance put back into rotation.
  void note_traffic(const Call& c) {
    if (traffic_moved_) return;
    static const std::set<std::string> moving = {"route", "scale", "register", "enable", "ready", "resume_registration"};
    bool moved = moving.count(c.op) > 0;
    if (c.op == "weight")
      if (auto it = c.args.find("canary"); it != c.args.end() && it->second.num > 0) moved = true;
    if (!moved || rolling_back_) return;
    traffic_moved_ = true;
    start_pipeline_guards();
  }

  void start_pipeline_guards() {
    if (!current_stage_ || current_stage_->guard_scope.cancelled() || resumed_rollback_) return;
    for (const StageItem& g : pipeline_guards_) sched_.spawn(guard_loop(g, current_stage_, current_stage_name_));
  }

  void trigger(StageState& state, const std::string& guard, const std::string& action, const std::string& reason) {
    if (state.breach) return;
    state.breach = Breach{guard, action, reason};
    // The decision is journaled at once: a run killed before its rollback begins still rolls
    // back when resumed, instead of going on forward.
    if (action == "rollback" && svc_.log && !resumed_rollback_ && !rollback_journaled_) {
      svc_.log->rolling_back(breach_reason(state), sched_.now());
      rollback_journaled_ = true;
    }
    state.scope.cancel(sched_);
    state.guard_scope.cancel(sched_);
  }

  static double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / static_cast<double>(v.size());
  }

  static std::string fmt(double v) { return Value::number(std::round(v * 1e6) / 1e6).text(); }

  // The metrics a condition reads, with their values, read in the order they appear (before
  // the condition itself, which then finds them in the metric cache).
  using GuardValues = std::vector<std::pair<const std::string*, Value>>;
  void read_guard_values(const Expr& x, const Env& env, GuardValues& out) {
    if (x.kind == ExprKind::Name || x.kind == ExprKind::Call) {
      const Expr& head = x.kind == ExprKind::Call ? *x.items.at(0) : x;
      if (head.kind == ExprKind::Name)
        if (const Value* v = env.find(head.text); v && v->kind == Value::Kind::Metric) {
          out.emplace_back(&head.text, eval(x, env, this));
          return;
        }
    }
    for (const ast::ExprPtr& i : x.items) read_guard_values(*i, env, out);
  }
  // For timelines: "error_rate=0.012, p99=120ms".
  static std::string guard_values_text(const GuardValues& values) {
    std::string out;
    for (const auto& [name, value] : values) out += (out.empty() ? "" : ", ") + *name + "=" + value.text();
    return out;
  }

  // A compare guard's baseline: false when it has no data. The exception stops here, in a small
  // frame: unwinding it through the guard's coroutine frame costs more than the whole read.
  bool eval_unless_no_data(const Expr& e, const Env& env, Value& out) {
    try {
      // A metric written directly (error_rate(previous), p99) is read as eval would read it,
      // with no exception at all when it has no data.
      const Expr& head = e.kind == ExprKind::Call ? *e.items.at(0) : e;
      if ((e.kind == ExprKind::Call || e.kind == ExprKind::Name) && head.kind == ExprKind::Name)
        if (const Value* m = env.find(head.text); m && m->kind == Value::Kind::Metric) {
          std::vector<Value> args;
          for (const ast::Field& f : e.fields) args.push_back(eval(*f.value, env, this));
          std::optional<NoData> missing;
          out = metric_value(m->str, args, e.span, missing);
          return !missing;
        }
      out = eval(e, env, this);
      return true;
    } catch (const NoData&) {
      return false;
    }
  }

  std::string guard_text(const Stmt& s) {
    const SourceFile* f = project_.sources().get(s.span.file);
    std::string t = f ? std::string(f->slice(s.span)) : "guard";
    if (t.rfind("guard ", 0) == 0) t = t.substr(6);
    return t;
  }

  void publish_guard(const std::string& stage, const std::string& guard, const std::string& verdict, const std::string& detail) {
    if (!listening()) return;  // `simulate --runs`: nobody reads events, building them is the cost
    Event e;
    e.kind = "guard";
    e.stage = stage;
    e.text = guard + ": " + verdict + (detail.empty() ? "" : " (" + detail + ")");
    e.data = {{"guard", guard}, {"verdict", verdict}, {"detail", detail}};
    publish(e);
  }

  // ---- events ----

  void emit(const std::string& kind, const std::string& stage, const std::string& step, const std::string& host, const std::string& text) {
    if (!listening()) return;
    Event e;
    e.kind = kind;
    e.stage = stage;
    e.step = step;
    e.host = host;
    e.text = text;
    publish(e);
  }

  bool listening() const { return svc_.events || svc_.log; }

  void publish(Event& e) {
    e.at_ms = sched_.now();
    if (!phase_.empty()) e.data["phase"] = phase_;
    if (svc_.events) svc_.events->on_event(e);
    if (svc_.log) svc_.log->event(e);
  }

  const Project& project_;
  int module_;
  Scheduler& sched_;
  Services svc_;
  RunConfig cfg_;
  const Stmt* pipeline_ = nullptr;
  std::shared_ptr<const Env> builtins_;
  std::shared_ptr<Env> pipeline_env_;
  std::map<int, std::shared_ptr<const Env>> module_envs_;
  std::map<std::string, Instance> plugins_;
  std::vector<PluginDecl> decls_;
  struct MetricDecl {
    const Stmt* stmt;
    std::shared_ptr<const Env> env;
  };
  std::map<std::string, MetricDecl> metrics_;
  std::string metric_name_;
  Value metric_params_;  // a Map: shared with every call of the read, not copied into each
  // The metrics one guard evaluation has read (name and arguments, value): a few at most.
  using MetricCache = std::vector<std::pair<std::string, Value>>;
  MetricCache* metric_cache_ = nullptr;
  MetricCache guard_cache_;    // threshold guards' buffers (see guard_loop)
  GuardValues guard_shown_;
  std::vector<StageItem> pipeline_guards_;
  bool traffic_moved_ = false;
  std::shared_ptr<StageState> current_stage_;
  std::string pending_request_;  // an operator's abort / rollback that arrived between stages
  std::optional<std::string> resumed_rollback_;  // the journal says the run was rolling back
  bool in_rollback_ = false;

  // Called before anything new starts (an effect, a wait, a probe, a gate, a decision). A run
  // resumed in the middle of its rollback replays what completed and rolls back at the first
  // step that did not: it never goes further forward than it went before.
  void starting_something_new(const Ctx& step) {
    // A breached stage starts nothing more, even if the step in flight ignored the cancel.
    if (step.scope && step.scope->cancelled()) throw Cancelled{};
    if (resumed_rollback_ && !in_rollback_) throw RollbackRequested{*resumed_rollback_};
  }
  bool rollback_journaled_ = false;
  int gates_waiting_ = 0;
  std::string current_stage_name_;
  std::string pipeline_on_breach_, pipeline_on_failure_;
  const Stmt* rollback_stmt_ = nullptr;
  std::shared_ptr<Env> rollback_env_;
  std::vector<UndoEntry> undo_;
  bool rolling_back_ = false;
  std::string phase_;
  CancelScope root_scope_;
  bool stop_ = false;

 public:
  void request_stop() {
    stop_ = true;
    root_scope_.cancel(sched_);
  }
  std::string operator_request(const std::string& action) {
    if (action != "abort" && action != "rollback") return "'" + action + "' is only an answer to an approval gate, and none is waiting";
    if (rolling_back_) return "the run is already rolling back";
    if (!current_stage_ || current_stage_->scope.cancelled()) {
      pending_request_ = action;
      return action + " at the start of the next stage";
    }
    emit("note", current_stage_name_, "", "", "operator asked to " + action);
    trigger(*current_stage_, "operator", action, action == "abort" ? "aborted by the operator" : "rollback asked for by the operator");
    return action + " now";
  }
  bool at_gate() const { return gates_waiting_ > 0; }
  const std::vector<PluginDecl>& decls() const { return decls_; }
  plugins::Driver* driver(const std::string& n) {
    auto it = plugins_.find(n);
    return it == plugins_.end() ? nullptr : it->second.driver.get();
  }
};

Interpreter::Interpreter(const Project& project, int module, Scheduler& scheduler, Services services, RunConfig config)
    : impl_(std::make_unique<Impl>(project, module, scheduler, std::move(services), std::move(config))) {}

Interpreter::~Interpreter() = default;
std::string Interpreter::operator_request(const std::string& action) { return impl_->operator_request(action); }
bool Interpreter::at_gate() const { return impl_->at_gate(); }
void Interpreter::prepare() { impl_->prepare(); }
Task<Outcome> Interpreter::run() { return impl_->run(); }
void Interpreter::request_stop() { impl_->request_stop(); }
const std::vector<PluginDecl>& Interpreter::plugin_decls() const { return impl_->decls(); }
plugins::Driver* Interpreter::driver(const std::string& name) { return impl_->driver(name); }

}  // namespace gray
