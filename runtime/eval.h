// Evaluating expressions and strings at run time (and statically, for plans).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lang/ast.h"
#include "runtime/value.h"

namespace gray {

// A chain of scopes holding values: builtins, a module, a pipeline, a stage, a host's lane.
// A scope holds a handful of names, and lookups run for every name of every guard evaluation:
// a linear scan of a vector beats a tree. A scope is filled when it is made and only read after
// that; a pointer from find() stays valid until the next set() on the same scope.
class Env {
 public:
  explicit Env(std::shared_ptr<const Env> parent = nullptr) : parent_(std::move(parent)) {}
  void set(const std::string& name, Value v) {
    for (auto& [n, old] : vars_)
      if (n == name) {
        old = std::move(v);
        return;
      }
    vars_.emplace_back(name, std::move(v));
  }
  const Value* find(const std::string& name) const {
    for (const Env* e = this; e; e = e->parent_.get())
      for (const auto& [n, v] : e->vars_)
        if (n == name) return &v;
    return nullptr;
  }

 private:
  std::shared_ptr<const Env> parent_;
  std::vector<std::pair<std::string, Value>> vars_;
};

// A user-facing evaluation failure, with where it happened.
struct EvalError {
  Span span;
  std::string message;
};

// What an expression may need from the running world. Static evaluation (plans) passes none,
// and anything that would read the world throws NotStatic.
class EvalHost {
 public:
  virtual ~EvalHost() = default;
  // A read operation of a plugin: fleet.tagged("x"), edge.sessions("v1-a"), prom.query("...").
  virtual Value plugin_read(const std::string& plugin, const std::string& op, const std::map<std::string, Value>& args,
                            Span at) = 0;
  // A declared metric with its arguments.
  virtual Value metric(const std::string& name, const std::vector<Value>& args, Span at) = 0;
  // env("NAME"): a secret from the environment.
  virtual Value env_var(const std::string& name, Span at) = 0;
};

struct NotStatic {
  Span span;
};

// A metric read found no data; guards turn this into their no-data outcome.
struct NoData {
  std::string metric;
  Span span;
};

Value eval(const ast::Expr& e, const Env& env, EvalHost* host);
bool eval_bool(const ast::Expr& e, const Env& env, EvalHost* host);
// A call of a plugin operation (prom.query("...")): the plugin, else nullptr. Its arguments as
// eval passes them to EvalHost::plugin_read (positional ones as arg0, arg1, ...).
const Value* plugin_callee(const ast::Expr& e, const Env& env);
std::map<std::string, Value> call_args(const ast::Expr& call, const Env& env, EvalHost* host);
// Whether evaluating `e` in `env` cannot reach the EvalHost (no metric, plugin read or env()):
// its value then depends on `env` alone.
bool reads_nothing(const ast::Expr& e, const Env& env);
// The same value in every respect (kind, unit, secrecy, contents): unlike ==, 5% and 0.05 differ.
bool identical(const Value& a, const Value& b);
// A string expression with its ${...} parts filled in.
Value interpolate(const ast::Expr& e, const Env& env);
// A shell command: a string expression whose ${...} parts are each quoted for a POSIX shell
// (shell_word), so no value can inject shell syntax; any other expression evaluated as is.
Value eval_command(const ast::Expr& e, const Env& env, EvalHost* host);
// `s` as one shell word: unchanged when it holds only characters no shell treats specially
// (letters, digits and _ - . / : = @ % + ,), else single-quoted ('it'\''s'); '' when empty.
std::string shell_word(std::string_view s);

}  // namespace gray
