#include "lang/lint/rule.h"

#include <cmath>
#include <cstdio>

namespace gray::lint {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;
using RefKind = CheckFacts::RefKind;

namespace {

constexpr int kMaxDepth = 16;  // templates using templates; names bound to names

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

Value make(Value::Kind k, double n) {
  Value v;
  v.kind = k;
  v.num = n;
  return v;
}

}  // namespace

Value duration(double ms) { return make(Value::Duration, ms); }
Value number(double n) { return make(Value::Number, n); }

std::string show_duration(double ms) {
  static const std::pair<double, const char*> units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  for (auto [size, name] : units)
    if (ms >= size && std::fmod(ms, size / 10) == 0) return number_text(ms / size) + name;
  return number_text(ms) + "ms";
}

std::string show(const Value& v) {
  switch (v.kind) {
    case Value::Number: return number_text(v.num);
    case Value::Duration: return show_duration(v.num);
    case Value::Percent: return number_text(v.num) + "%";
    case Value::Bytes: return number_text(v.num) + "B";
    case Value::String: return "\"" + v.str + "\"";
    case Value::Bool: return v.boolean ? "true" : "false";
    case Value::List: {
      std::string s = "[";
      for (const Value& i : v.items) s += (s.size() > 1 ? ", " : "") + show(i);
      return s + "]";
    }
    case Value::Plugin: return v.plugin ? v.plugin->name.text : "?";
    case Value::Unknown: break;
  }
  return "?";
}

// ---- the model ------------------------------------------------------------------------

Model::Model(const Project& project, int module, const CheckFacts& facts) : project_(project), module_(module), facts_(facts) {
  const ast::Module& m = this->module();
  for (const ast::StmtPtr& s : m.items)
    if (s->kind == StmtKind::Pipeline && !pipeline_) pipeline_ = s.get();
  if (pipeline_) {
    Item root{pipeline_, nullptr, nullptr, module_};
    for (const Item& it : expand(pipeline_->body, root)) {
      switch (it.stmt->kind) {
        case StmtKind::Stage: stages_.push_back(it); break;
        case StmtKind::Guard:
          if (!it.origin) guards_.push_back(it);
          break;
        case StmtKind::On:
          if (!it.origin) handlers_.push_back(it);
          break;
        default: break;
      }
    }
    for (const Item& st : stages_) scopes_.push_back({st, true, false});
  }
  for (const ast::StmtPtr& t : m.items) {
    if (t->kind != StmtKind::Template) continue;
    bool stages = false;
    for (const ast::StmtPtr& s : t->body) stages |= s->kind == StmtKind::Stage;
    if (stages) {
      for (const ast::StmtPtr& s : t->body)
        if (s->kind == StmtKind::Stage) scopes_.push_back({{s.get(), nullptr, nullptr, module_}, true, true});
    } else {
      scopes_.push_back({{t.get(), nullptr, nullptr, module_}, false, true});
    }
  }
}

const ast::Module& Model::module() const { return project_.module(module_).ast; }

const SourceFile& Model::file() const { return *module().file; }

std::string_view Model::source(Span s) const {
  const SourceFile* f = project_.sources().get(s.file);
  return f ? f->slice(s) : std::string_view();
}

std::string Model::template_name(const Stmt& use) {
  if (use.args.empty() || use.args[0]->kind != ExprKind::Call) return "?";
  const Expr& callee = *use.args[0]->items.at(0);
  if (callee.kind == ExprKind::Member && callee.items.at(0)->kind == ExprKind::Name) return callee.items[0]->text + "." + callee.text;
  return callee.text;
}

const std::vector<Item>& Model::expand(const std::vector<ast::StmtPtr>& body, const Item& parent) const {
  auto [it, fresh] = expanded_.try_emplace(Key{&body, parent.env, parent.origin});
  if (fresh) expand_into(it->second, body, parent, 0);
  return it->second;
}

std::optional<Item> Model::instantiate(const Item& use) const { return instantiate(use, 0); }

std::optional<Item> Model::instantiate(const Item& use, int depth) const {
  auto [cached, fresh] = instances_.try_emplace(Key{use.stmt, use.env, use.origin});
  if (!fresh) return cached->second;
  cached->second = instantiate_uncached(use, depth);
  return cached->second;
}

std::optional<Item> Model::instantiate_uncached(const Item& use, int depth) const {
  const Stmt& s = *use.stmt;
  const CheckFacts::TemplateUse* tu = s.kind == StmtKind::Use ? facts_.template_of(s) : nullptr;
  if (!tu || !tu->decl || depth >= kMaxDepth || s.args.empty() || s.args[0]->kind != ExprKind::Call) return std::nullopt;
  // A template that uses itself (directly or not) is not put in place again.
  for (const Origin* o = use.origin; o; o = o->outer)
    if (o->decl == tu->decl) return std::nullopt;
  // Bind the template's parameters: arguments (positional, then by name), else defaults.
  const Stmt& tmpl = *tu->decl;
  const Expr& call = *s.args[0];
  std::vector<const Expr*> args(tmpl.params.size(), nullptr);
  size_t pos = 0;
  for (const ast::Field& f : call.fields) {
    size_t idx = tmpl.params.size();
    if (f.name.empty()) idx = pos++;
    else
      for (size_t i = 0; i < tmpl.params.size(); ++i)
        if (tmpl.params[i].name.text == f.name) idx = i;
    if (idx < args.size()) args[idx] = f.value.get();
  }
  Env& env = envs_.emplace_back();
  for (size_t i = 0; i < tmpl.params.size(); ++i) {
    const ast::Param& p = tmpl.params[i];
    Value v = args[i] ? eval(*args[i], use.env, depth + 1) : (p.value ? eval(*p.value, nullptr, depth + 1) : Value{});
    v.bound = true;
    env.params[CheckFacts::key(p.name.span)] = std::move(v);
  }
  Origin& origin = origins_.emplace_back();
  origin.use = use.origin ? use.origin->use : &s;
  origin.tmpl = template_name(s);
  origin.decl = tu->decl;
  origin.outer = use.origin;
  return Item{&tmpl, &env, &origin, tu->module};
}

void Model::expand_into(std::vector<Item>& out, const std::vector<ast::StmtPtr>& body, const Item& parent, int depth) const {
  for (const ast::StmtPtr& sp : body) {
    Item it{sp.get(), parent.env, parent.origin, parent.module};
    std::optional<Item> inner = sp->kind == StmtKind::Use ? instantiate(it, depth) : std::nullopt;
    if (inner) expand_into(out, inner->stmt->body, *inner, depth + 1);
    else out.push_back(it);
  }
}

void Model::walk(const std::vector<ast::StmtPtr>& body, const Item& parent,
                 const std::function<bool(const Item&, const StepCtx&)>& fn, StepCtx ctx) const {
  if (body.empty()) return;
  for (const Item& it : expand(body, parent)) {
    if (!fn(it, ctx)) continue;
    const Stmt& s = *it.stmt;
    if (s.kind == StmtKind::If) {
      walk(s.body, it, fn, ctx);
      walk(s.else_body, it, fn, ctx);
    } else if (s.kind == StmtKind::On && s.has_body) {
      StepCtx c = ctx;
      c.handler = true;
      walk(s.body, it, fn, c);
    } else if (s.kind == StmtKind::Undo && s.has_body) {
      StepCtx c = ctx;
      c.undo = true;
      walk(s.body, it, fn, c);
    }
  }
}

// ---- values -------------------------------------------------------------------------

Value Model::eval(const Expr& e, const Env* env) const { return eval(e, env, 0); }

Value Model::eval_name(Span name, const Env* env, int depth) const {
  const CheckFacts::Ref* r = facts_.ref(name);
  if (!r || depth > kMaxDepth) return {};
  if (r->template_param) {
    if (!env) return {};
    auto it = env->params.find(CheckFacts::key(r->decl));
    return it == env->params.end() ? Value{} : it->second;
  }
  if (r->kind == RefKind::Plugin && r->stmt && r->stmt->kind == StmtKind::Plugin) {
    Value v;
    v.kind = Value::Plugin;
    v.plugin = r->stmt;
    return v;
  }
  if (r->kind == RefKind::Value && r->stmt && (r->stmt->kind == StmtKind::Param || r->stmt->kind == StmtKind::Let) &&
      r->stmt->value)
    return eval(*r->stmt->value, env, depth + 1);
  return {};
}

Value Model::eval(const Expr& e, const Env* env, int depth) const {
  if (depth > kMaxDepth) return {};
  switch (e.kind) {
    case ExprKind::Number: return make(Value::Number, e.number);
    case ExprKind::Duration: return make(Value::Duration, e.number);
    case ExprKind::Percent: return make(Value::Percent, e.number);
    case ExprKind::Bytes: return make(Value::Bytes, e.number);
    case ExprKind::Bool: {
      Value v;
      v.kind = Value::Bool;
      v.boolean = e.boolean;
      return v;
    }
    case ExprKind::String: {
      Value v;
      v.kind = Value::String;
      for (const ast::StrPart& p : e.parts) {
        if (!p.is_var) {
          v.str += p.text;
          continue;
        }
        Value x = p.path.size() == 1 ? eval_name(p.span, env, depth + 1) : Value{};
        v.bound |= x.bound;
        if (x.kind == Value::String) v.str += x.str;
        else if (x.known() && x.kind != Value::List && x.kind != Value::Plugin) v.str += show(x);
        else v.str += "${" + p.text + "}";
      }
      return v;
    }
    case ExprKind::List: {
      Value v;
      v.kind = Value::List;
      for (const ast::ExprPtr& i : e.items) {
        v.items.push_back(eval(*i, env, depth + 1));
        v.bound |= v.items.back().bound;
      }
      return v;
    }
    case ExprKind::Name: return eval_name(e.span, env, depth);
    case ExprKind::Unary: {
      Value v = eval(*e.items.at(0), env, depth + 1);
      if (e.text == "-" && (v.kind == Value::Number || v.kind == Value::Duration || v.kind == Value::Percent || v.kind == Value::Bytes))
        v.num = -v.num;
      else if (e.text == "not" && v.kind == Value::Bool)
        v.boolean = !v.boolean;
      else
        v = {};
      return v;
    }
    case ExprKind::Binary: {
      Value a = eval(*e.items.at(0), env, depth + 1);
      Value b = eval(*e.items.at(1), env, depth + 1);
      const std::string& op = e.text;
      auto numeric = [](const Value& v) {
        return v.kind == Value::Number || v.kind == Value::Duration || v.kind == Value::Percent || v.kind == Value::Bytes;
      };
      if (!numeric(a) || !numeric(b)) {
        if (op == "+" && a.kind == Value::String && b.kind == Value::String) {
          a.str += b.str;
          a.bound |= b.bound;
          return a;
        }
        return {};
      }
      Value r;
      r.bound = a.bound || b.bound;
      if ((op == "+" || op == "-") && a.kind == b.kind) {
        r.kind = a.kind;
        r.num = op == "+" ? a.num + b.num : a.num - b.num;
      } else if (op == "*" && (a.kind == Value::Number || b.kind == Value::Number)) {
        r.kind = a.kind == Value::Number ? b.kind : a.kind;
        r.num = a.num * b.num;
      } else if (op == "/" && b.kind == Value::Number && b.num != 0) {
        r.kind = a.kind;
        r.num = a.num / b.num;
      }
      return r;
    }
    case ExprKind::Call: {
      const Expr& callee = *e.items.at(0);
      const CheckFacts::Ref* r = callee.kind == ExprKind::Name ? facts_.ref(callee.span) : nullptr;
      if (!r || r->kind != RefKind::Function || (callee.text != "min" && callee.text != "max") || e.fields.empty()) return {};
      Value best;
      for (const ast::Field& f : e.fields) {
        Value v = eval(*f.value, env, depth + 1);
        if (!v.known() || (best.known() && v.kind != best.kind)) return {};
        bool better = !best.known() || (callee.text == "min" ? v.num < best.num : v.num > best.num);
        bool bound = best.bound || v.bound;
        if (better) best = v;
        best.bound = bound;
      }
      return best;
    }
    default: return {};
  }
}

bool Model::depends_on_use(const Expr& e, const Env* env) const {
  if (!env) return false;
  bool bound = false;
  each_subexpr(e, [&](const Expr& x) {
    if (x.kind == ExprKind::Name) bound |= eval_name(x.span, env, 0).bound;
    if (x.kind == ExprKind::String)
      for (const ast::StrPart& p : x.parts)
        if (p.is_var) bound |= eval_name(p.span, env, 0).bound;
  });
  return bound;
}

std::string Model::key(const Expr& e, const Env* env) const {
  Value v = eval(e, env);
  if (v.known() && v.kind != Value::Plugin) return "=" + show(v);
  switch (e.kind) {
    case ExprKind::Name: {
      const CheckFacts::Ref* r = facts_.ref(e.span);
      if (v.kind == Value::Plugin) return "plugin:" + std::to_string(CheckFacts::key(v.plugin->name.span));
      return r && r->decl.valid() ? "name:" + std::to_string(CheckFacts::key(r->decl)) : "name:" + e.text;
    }
    case ExprKind::Member: return key(*e.items.at(0), env) + "." + e.text;
    case ExprKind::Call: {
      std::string k = key(*e.items.at(0), env) + "(";
      for (const ast::Field& f : e.fields) k += f.name + ":" + key(*f.value, env) + ",";
      return k + ")";
    }
    case ExprKind::Unary: return e.text + "(" + key(*e.items.at(0), env) + ")";
    case ExprKind::Binary: return "(" + key(*e.items.at(0), env) + e.text + key(*e.items.at(1), env) + ")";
    default: return "src:" + std::string(source(e.span));
  }
}

const Stmt* Model::plugin_of(const Expr& e, const Env* env) const {
  if (e.kind != ExprKind::Name) return nullptr;
  Value v = eval(e, env);
  return v.kind == Value::Plugin ? v.plugin : nullptr;
}

bool Model::plugin_kind(const Expr& e, plugins::Kind& out) const {
  if (e.kind != ExprKind::Name) return false;
  const CheckFacts::Ref* r = facts_.ref(e.span);
  if (!r || r->kind != RefKind::Plugin) return false;
  out = r->plugin;
  return true;
}

// ---- helpers ------------------------------------------------------------------------

std::string describe_stage(const Stmt& stage) {
  if (stage.name.empty()) return "the " + stage.word.text + " stage";
  return stage.word.text + " '" + stage.name.text + "'";
}

Value clause_value(const Model& m, const Item& it, std::string_view key, Value fallback) {
  const ast::Clause* c = it.stmt->clause(key);
  if (!c || !c->value) return fallback;
  return m.eval(*c->value, it.env);
}

GuardTiming guard_timing(const Model& m, const Item& guard) {
  GuardTiming t;
  t.every = clause_value(m, guard, "every", duration(30000));
  t.window = clause_value(m, guard, "for", duration(0));
  t.samples = clause_value(m, guard, "samples", number(guard.stmt->word.text == "compare" ? 10 : 1));
  return t;
}

std::string guard_name(const Stmt& guard) {
  if (guard.str_span.valid()) return "guard '" + guard.str + "'";
  return "this guard";
}

void each_guard(const Model& m, const std::function<void(const Item& guard, const Scope* scope)>& fn) {
  for (const Item& g : m.pipeline_guards()) fn(g, nullptr);
  for (const Scope& s : m.scopes())
    m.walk(s, [&](const Item& it, const StepCtx&) {
      if (it.stmt->kind == StmtKind::Guard) fn(it, &s);
      return true;
    });
}

std::vector<RampStep> ramp_steps(const Model& m, const Item& stage) {
  std::vector<RampStep> out;
  for (const Item& it : m.expand(stage.stmt->body, stage)) {
    if (it.stmt->kind != StmtKind::Setting || it.stmt->word.text != "steps") continue;
    for (const ast::ExprPtr& a : it.stmt->args) {
      Value v = m.eval(*a, it.env);
      if (v.kind == Value::List)
        for (Value& i : v.items) {
          i.bound |= v.bound;
          out.push_back({std::move(i), it, a.get()});
        }
      else
        out.push_back({std::move(v), it, a.get()});
    }
  }
  return out;
}

const Expr* weight_share(const Model& m, const Stmt& s) {
  if (s.kind != StmtKind::Call || s.args.empty() || s.args[0]->kind != ExprKind::Call) return nullptr;
  const Expr& call = *s.args[0];
  const Expr& callee = *call.items.at(0);
  plugins::Kind k;
  if (callee.kind != ExprKind::Member || callee.text != "weight" || call.fields.empty()) return nullptr;
  if (!m.plugin_kind(*callee.items.at(0), k) || (k != plugins::Kind::Gateway && k != plugins::Kind::Registry)) return nullptr;
  return call.fields[0].value.get();
}

void each_subexpr(const Expr& e, const std::function<void(const Expr&)>& fn) {
  fn(e);
  for (const ast::ExprPtr& i : e.items)
    if (i) each_subexpr(*i, fn);
  for (const ast::Field& f : e.fields)
    if (f.value) each_subexpr(*f.value, fn);
}

void each_expr(const Stmt& s, const std::function<void(const Expr&)>& fn) {
  for (const ast::ExprPtr& a : s.args)
    if (a) fn(*a);
  if (s.value) fn(*s.value);
  for (const ast::Param& p : s.params)
    if (p.value) fn(*p.value);
  for (const ast::Clause& c : s.clauses)
    if (c.value) fn(*c.value);
}

Diagnostic* Context::report(const Item& at, Span span, std::string message, bool depends_on_use) {
  Level level = config_.level(rule_);
  if (level == Level::Off) return nullptr;
  if (at.origin) {
    if (!depends_on_use) return nullptr;
    const Stmt& use = *at.origin->use;
    span = use.args.empty() ? use.keyword : use.args[0]->kind == ExprKind::Call ? use.args[0]->items.at(0)->span : use.args[0]->span;
    message += " (in '" + at.origin->tmpl + "')";
  }
  Diagnostic d;
  d.severity = severity_of(level);
  d.code = rule_.info.id;
  d.message = std::move(message);
  d.span = span;
  out_.add(std::move(d));
  return &out_.list().back();
}

}  // namespace gray::lint
