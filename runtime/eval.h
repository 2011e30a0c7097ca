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
class Env {
 public:
  explicit Env(std::shared_ptr<const Env> parent = nullptr) : parent_(std::move(parent)) {}
  void set(const std::string& name, Value v) { vars_[name] = std::move(v); }
  const Value* find(const std::string& name) const {
    for (const Env* e = this; e; e = e->parent_.get())
      if (auto it = e->vars_.find(name); it != e->vars_.end()) return &it->second;
    return nullptr;
  }

 private:
  std::shared_ptr<const Env> parent_;
  std::map<std::string, Value> vars_;
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
// A string expression with its ${...} parts filled in.
Value interpolate(const ast::Expr& e, const Env& env);
// A shell command: a string expression whose ${...} parts are each quoted for a POSIX shell
// (shell_word), so no value can inject shell syntax; any other expression evaluated as is.
Value eval_command(const ast::Expr& e, const Env& env, EvalHost* host);
// `s` as one shell word: unchanged when it holds only characters no shell treats specially
// (letters, digits and _ - . / : = @ % + ,), else single-quoted ('it'\''s'); '' when empty.
std::string shell_word(std::string_view s);

}  // namespace gray
