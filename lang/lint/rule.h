// What a lint rule sees: the linted module through its pipeline's eyes (stage and step templates
// put in place where they are used, values worked out where they are constant), and a way to
// report. Shared by the rule_<id>.cpp files; nothing here reports on its own.
#pragma once

#include <deque>
#include <functional>
#include <tuple>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lang/lint/lint.h"

namespace gray::lint {

// A value lint could work out: a literal, or a name bound to one (a `let`, a parameter's
// default, a template argument).
struct Value {
  enum Kind : uint8_t { Unknown, Number, Duration, Percent, Bytes, String, Bool, List, Plugin };
  Kind kind = Unknown;
  double num = 0;                      // Duration in ms, Percent as written (5 for 5%)
  std::string str;                     // String: decoded, with unknown ${...} kept as written
  bool boolean = false;
  std::vector<Value> items;            // List
  const ast::Stmt* plugin = nullptr;   // Plugin: its declaration
  bool bound = false;                  // it came through a template parameter bound at a `use`

  bool known() const { return kind != Unknown; }
};

// "20%", "30s", "1.5h", "3", "\"text\"".
std::string show(const Value& v);
std::string show_duration(double ms);

// Template parameters bound at one `use`: the parameter's declaration -> its value.
struct Env {
  std::unordered_map<uint64_t, Value> params;
};

// A statement put in place by a `use`: the outermost `use` in the linted module, and the
// template it came from as named at the innermost one ("canary.judged").
struct Origin {
  const ast::Stmt* use = nullptr;
  std::string tmpl;
  const ast::Stmt* decl = nullptr;   // the template
  const Origin* outer = nullptr;     // the use this one is inside of, if any
};

// One statement as the linted pipeline sees it.
struct Item {
  const ast::Stmt* stmt = nullptr;
  const Env* env = nullptr;        // template bindings in force; null when there are none
  const Origin* origin = nullptr;  // null when the statement is written in the linted module
  int module = -1;                 // the module the statement is written in
};

// A body to look into: a stage of the pipeline (perhaps from a stage template), or a template
// of the linted module on its own, its parameters unknown.
struct Scope {
  Item item;         // the stage, or the step template
  bool stage = true;
  bool standalone = false;
};

struct StepCtx {
  bool handler = false;  // inside an `on EVENT { }` block
  bool undo = false;     // inside an `undo { }` block
};

class Model {
 public:
  Model(const Project& project, int module, const CheckFacts& facts);

  const Project& project() const { return project_; }
  const CheckFacts& facts() const { return facts_; }
  int module_index() const { return module_; }
  const ast::Module& module() const;
  const ast::Stmt* pipeline() const { return pipeline_; }

  // The pipeline's stages in run order, stage templates put in place.
  const std::vector<Item>& stages() const { return stages_; }
  // Pipeline-level guards and `on EVENT` handlers.
  const std::vector<Item>& pipeline_guards() const { return guards_; }
  const std::vector<Item>& pipeline_handlers() const { return handlers_; }
  // Every stage of the pipeline, then every template of the module on its own.
  const std::vector<Scope>& scopes() const { return scopes_; }

  // The statements of a block written under `parent`, step templates put in place.
  const std::vector<Item>& expand(const std::vector<ast::StmtPtr>& body, const Item& parent) const;
  // Visits every statement under a block, in order, going into `if`/`else`, `on` and `undo`
  // blocks and into used templates. The function returns false to skip an item's blocks.
  void walk(const std::vector<ast::StmtPtr>& body, const Item& parent,
            const std::function<bool(const Item&, const StepCtx&)>& fn, StepCtx ctx = {}) const;
  // The body of a scope: a stage's statements or a step template's.
  void walk(const Scope& s, const std::function<bool(const Item&, const StepCtx&)>& fn) const {
    walk(s.item.stmt->body, s.item, fn);
  }

  // The template a `use` item instantiates, with its parameters bound: an item whose statement
  // is the template (walk its body). Nothing when the `use` did not resolve.
  std::optional<Item> instantiate(const Item& use) const;

  Value eval(const ast::Expr& e, const Env* env) const;
  // The value of the name (or ${name}) at `name`.
  Value eval_name(Span name, const Env* env) const { return eval_name(name, env, 0); }
  // Whether a value in `e` comes through a template parameter bound at a `use`.
  bool depends_on_use(const ast::Expr& e, const Env* env) const;
  // Equal for two expressions that certainly mean the same value (a constant, or the same
  // names and calls).
  std::string key(const ast::Expr& e, const Env* env) const;
  const CheckFacts::Ref* ref(Span name) const { return facts_.ref(name); }
  // The plugin declaration an expression names (a plugin, or a template parameter bound to one).
  const ast::Stmt* plugin_of(const ast::Expr& e, const Env* env) const;
  // The kind of plugin an expression names, also for unbound template parameters.
  bool plugin_kind(const ast::Expr& e, plugins::Kind& out) const;
  // The template a `use` instantiates, as written ("canary.judged").
  static std::string template_name(const ast::Stmt& use);

  const SourceFile& file() const;
  std::string_view source(Span s) const;

 private:
  Value eval_name(Span name, const Env* env, int depth) const;
  Value eval(const ast::Expr& e, const Env* env, int depth) const;
  void expand_into(std::vector<Item>& out, const std::vector<ast::StmtPtr>& body, const Item& parent, int depth) const;
  std::optional<Item> instantiate(const Item& use, int depth) const;
  std::optional<Item> instantiate_uncached(const Item& use, int depth) const;

  const Project& project_;
  int module_;
  const CheckFacts& facts_;
  const ast::Stmt* pipeline_ = nullptr;
  std::vector<Item> stages_, guards_, handlers_;
  std::vector<Scope> scopes_;
  mutable std::deque<Env> envs_;
  mutable std::deque<Origin> origins_;
  // Rules ask for the same blocks and templates again and again: each is expanded once.
  using Key = std::tuple<const void*, const Env*, const Origin*>;
  struct KeyHash {
    size_t operator()(const Key& k) const {
      auto h = [](const void* p) { return std::hash<const void*>()(p); };
      return h(std::get<0>(k)) ^ (h(std::get<1>(k)) * 31) ^ (h(std::get<2>(k)) * 1000003);
    }
  };
  // Node-based maps: references to the vectors stay valid while more are added.
  mutable std::unordered_map<Key, std::vector<Item>, KeyHash> expanded_;
  mutable std::unordered_map<Key, std::optional<Item>, KeyHash> instances_;
};

// ---- small helpers over statements ----------------------------------------------------

// "ramp 'traffic'", "the rollback stage".
std::string describe_stage(const ast::Stmt& stage);
// A clause's value, or `fallback` when the clause is not written.
Value clause_value(const Model& m, const Item& it, std::string_view key, Value fallback);
Value duration(double ms);
Value number(double n);

// A guard's timing with the defaults of docs/language.md §9.
struct GuardTiming {
  Value every, window, samples;  // `every`, `for`, `samples`
};
GuardTiming guard_timing(const Model& m, const Item& guard);
std::string guard_name(const ast::Stmt& guard);  // "guard 'label'" or "this guard"
// Every guard: the pipeline's, then those of each scope (stage or step template).
void each_guard(const Model& m, const std::function<void(const Item& guard, const Scope* scope)>& fn);
// The `steps` of a ramp stage, each with the expression it comes from.
struct RampStep {
  Value value;
  Item at;
  const ast::Expr* expr;
};
std::vector<RampStep> ramp_steps(const Model& m, const Item& stage);
// The share of a `GW.weight(p)` or `REG.weight(p)` step, or null when `s` is not one.
const ast::Expr* weight_share(const Model& m, const ast::Stmt& s);
// Calls every expression of a statement (head, value, clauses; not nested statements).
void each_expr(const ast::Stmt& s, const std::function<void(const ast::Expr&)>& fn);
// Calls `fn` on `e` and every expression inside it.
void each_subexpr(const ast::Expr& e, const std::function<void(const ast::Expr&)>& fn);

class Context {
 public:
  Context(const Model& m, const Rule& rule, const Config& config, Diagnostics& out)
      : model(m), rule_(rule), config_(config), out_(out) {}

  const Model& model;

  double option(std::string_view name) const { return config_.option(rule_, name); }

  // Reports a finding at `span`. When `at` was put in place by a `use`, the finding is moved to
  // that `use` (and names the template) if `depends_on_use`: the problem comes from the
  // arguments or from the pipeline around it. Otherwise it belongs to the template, is reported
  // where the template is written, and is dropped here.
  Diagnostic* report(const Item& at, Span span, std::string message, bool depends_on_use = false);

 private:
  const Rule& rule_;
  const Config& config_;
  Diagnostics& out_;
};

}  // namespace gray::lint
