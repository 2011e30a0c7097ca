#include "runtime/eval.h"

#include <cctype>
#include <cstring>

#include <cmath>

#include "plugins/catalog.h"

namespace gray {

namespace {

using ast::Expr;
using ast::ExprKind;
using K = Value::Kind;

[[noreturn]] void fail(Span at, std::string msg) { throw EvalError{at, std::move(msg)}; }

Value member_of(const Value& obj, const std::string& name, Span at) {
  if (obj.kind == K::Host) {
    if (name == "name") return Value::string(obj.str);
    auto it = obj.fields().find(name);
    if (it != obj.fields().end()) return it->second;
    fail(at, "host '" + obj.str + "' has no field '" + name + "' in the inventory");
  }
  if (obj.kind == K::Map) {
    auto it = obj.fields().find(name);
    if (it == obj.fields().end()) fail(at, "the map has no field '" + name + "'");
    return it->second;
  }
  fail(at, std::string("a ") + kind_name(obj.kind) + " has no field '" + name + "'");
}

double as_number(const Value& v, Span at) {
  if (!v.is_numeric()) fail(at, std::string("expected a number, got a ") + kind_name(v.kind));
  return v.num;
}

// Appends a value's text, without copying the ones that already are text.
void append_text(std::string& out, const Value& v) {
  switch (v.kind) {
    case K::String:
    case K::Host:
    case K::Plugin:
    case K::Metric: out += v.str; return;
    default: out += v.text();
  }
}

// A binary operator, told from its text by length and characters: guards evaluate operators
// every few seconds of virtual time, and comparing strings to literals costs a strlen and a
// memcmp each. The parser writes no other operator; anything else counts as '/' (as before).
enum class Op : unsigned char { And, Or, Eq, Ne, Lt, Le, Gt, Ge, Add, Sub, Mul, Div };

Op binary_op(const std::string& op) {
  if (op.size() == 3) return op == "and" ? Op::And : Op::Div;
  if (op.size() == 2) {
    if (op[1] != '=') return op == "or" ? Op::Or : Op::Div;
    switch (op[0]) {
      case '=': return Op::Eq;
      case '!': return Op::Ne;
      case '<': return Op::Le;
      case '>': return Op::Ge;
      default: return Op::Div;
    }
  }
  if (op.size() == 1) {
    switch (op[0]) {
      case '<': return Op::Lt;
      case '>': return Op::Gt;
      case '+': return Op::Add;
      case '-': return Op::Sub;
      case '*': return Op::Mul;
      default: return Op::Div;
    }
  }
  return Op::Div;
}

bool is_comparison(Op op) { return op >= Op::Eq && op <= Op::Ge; }

// `a` by value: concatenation reuses its string (metric queries are built this way per read).
Value arith(Op op, Value a, const Value& b, Span at) {
  if (op == Op::Add && (a.kind == K::String || b.kind == K::String)) {
    const bool secret = a.secret() || b.secret();
    std::string s = a.kind == K::String ? std::move(a.str) : a.text();
    s.reserve(s.size() + (b.kind == K::String ? b.str.size() : 16));
    append_text(s, b);
    return Value::string(std::move(s), secret);
  }
  double x = as_number(a, at), y = as_number(b, at);
  auto same = [&](double v) {
    Value r = a;
    r.num = v;
    return r;
  };
  if (op == Op::Add || op == Op::Sub) {
    // Mixed number/percent: compare as fractions, keep the left operand's unit.
    if (a.kind != b.kind) y = a.kind == K::Percent ? b.scalar() * 100 : b.scalar();
    return same(op == Op::Add ? x + y : x - y);
  }
  if (op == Op::Mul) {
    if (a.kind == K::Number) {
      Value r = b;
      r.num = x * y;
      return r;
    }
    return same(x * (b.kind == K::Percent ? b.scalar() : y));
  }
  // '/'
  if (y == 0) fail(at, "division by zero");
  if (a.kind == b.kind && a.kind != K::Number) return Value::number(x / y);
  return same(x / (b.kind == K::Percent ? b.scalar() : y));
}

bool compare(Op op, const Value& a, const Value& b, Span at) {
  if (op == Op::Eq) return a == b;
  if (op == Op::Ne) return a != b;
  if (a.is_null() || b.is_null()) fail(at, "a value has no data");
  double x = a.is_numeric() ? a.scalar() : as_number(a, at);
  double y = b.is_numeric() ? b.scalar() : as_number(b, at);
  if (op == Op::Lt) return x < y;
  if (op == Op::Le) return x <= y;
  if (op == Op::Gt) return x > y;
  return x >= y;
}

std::map<std::string, Value> op_args(const plugins::OpSpec* op, const Expr& call, const Env& env, EvalHost* host) {
  std::map<std::string, Value> args;
  size_t pos = 0;
  for (const ast::Field& f : call.fields) {
    std::string name = f.name;
    if (name.empty()) name = op && pos < op->params.size() ? op->params[pos].name : "arg" + std::to_string(pos);
    if (f.name.empty()) ++pos;
    args[name] = eval(*f.value, env, host);
  }
  return args;
}

}  // namespace

namespace {

Value interpolate_parts(const Expr& e, const Env& env, bool quote) {
  // One allocation for the usual case: the literal text plus a short value per placeholder.
  size_t size = 0;
  for (const ast::StrPart& p : e.parts) size += p.is_var ? 16 : p.text.size();
  std::string out;
  out.reserve(size);
  bool secret = false;
  for (const ast::StrPart& p : e.parts) {
    if (!p.is_var) {
      out += p.text;
      continue;
    }
    const Value* cur = env.find(p.path.at(0));
    if (!cur) fail(p.span, "'" + p.path[0] + "' has no value here");
    Value member;  // only for paths such as host.addr
    for (size_t i = 1; i < p.path.size(); ++i) {
      member = member_of(*cur, p.path[i], p.span);
      cur = &member;
    }
    secret |= cur->secret();
    if (quote) out += shell_word(cur->text());
    else append_text(out, *cur);
  }
  return Value::string(std::move(out), secret);
}

}  // namespace

Value interpolate(const Expr& e, const Env& env) { return interpolate_parts(e, env, false); }

const Value* plugin_callee(const Expr& e, const Env& env) {
  if (e.kind != ExprKind::Call) return nullptr;
  const Expr& callee = *e.items.at(0);
  if (callee.kind != ExprKind::Member || callee.items.at(0)->kind != ExprKind::Name) return nullptr;
  const Value* v = env.find(callee.items[0]->text);
  return v && v->kind == K::Plugin ? v : nullptr;
}

std::map<std::string, Value> call_args(const Expr& call, const Env& env, EvalHost* host) { return op_args(nullptr, call, env, host); }

bool reads_nothing(const Expr& e, const Env& env) {
  switch (e.kind) {
    case ExprKind::Call: return false;  // metrics, env(), plugin reads (len/min/max are not worth telling apart)
    case ExprKind::Name: {
      const Value* v = env.find(e.text);
      return !v || v->kind != K::Metric;
    }
    case ExprKind::Member: {
      const Expr& obj = *e.items.at(0);
      if (obj.kind == ExprKind::Name)
        if (const Value* v = env.find(obj.text); v && v->kind == K::Plugin) return false;
      break;
    }
    default: break;
  }
  for (const ast::ExprPtr& i : e.items)
    if (!reads_nothing(*i, env)) return false;
  for (const ast::Field& f : e.fields)
    if (!reads_nothing(*f.value, env)) return false;
  return true;
}

bool identical(const Value& a, const Value& b) {
  if (a.kind != b.kind || a.num != b.num || a.flag != b.flag || a.str != b.str) return false;
  const List &la = a.items(), &lb = b.items();
  const Map &ma = a.fields(), &mb = b.fields();
  if (la.size() != lb.size() || ma.size() != mb.size()) return false;
  for (size_t i = 0; i < la.size(); ++i)
    if (!identical(la[i], lb[i])) return false;
  for (auto i = ma.begin(), j = mb.begin(); i != ma.end(); ++i, ++j)
    if (i->first != j->first || !identical(i->second, j->second)) return false;
  return true;
}

Value eval_command(const Expr& e, const Env& env, EvalHost* host) {
  return e.kind == ExprKind::String ? interpolate_parts(e, env, true) : eval(e, env, host);
}

std::string shell_word(std::string_view s) {
  if (s.empty()) return "''";
  bool plain = true;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || std::strchr("_-./:=@%+,", c))) {
      plain = false;
      break;
    }
  if (plain) return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

Value eval(const Expr& e, const Env& env, EvalHost* host) {
  switch (e.kind) {
    case ExprKind::Number: return Value::number(e.number);
    case ExprKind::Duration: return Value::duration_ms(e.number);
    case ExprKind::Percent: return Value::percent(e.number);
    case ExprKind::Bytes: return Value::bytes(e.number);
    case ExprKind::Bool: return Value::boolean(e.boolean);
    case ExprKind::String: return interpolate(e, env);
    case ExprKind::List: {
      List items;
      for (const ast::ExprPtr& i : e.items) items.push_back(eval(*i, env, host));
      return Value::of_list(std::move(items));
    }
    case ExprKind::Map: {
      Map m;
      for (const ast::Field& f : e.fields) m[f.name] = eval(*f.value, env, host);
      return Value::of_map(std::move(m));
    }
    case ExprKind::Name: {
      const Value* v = env.find(e.text);
      if (!v) fail(e.span, "'" + e.text + "' has no value here");
      if (v->kind == K::Metric) {
        if (!host) throw NotStatic{e.span};
        return host->metric(v->str, {}, e.span);
      }
      return *v;
    }
    case ExprKind::Member: {
      const Expr& obj = *e.items.at(0);
      if (obj.kind == ExprKind::Name) {
        const Value* v = env.find(obj.text);
        if (v && v->kind == K::Plugin) {
          if (!host) throw NotStatic{e.span};
          return host->plugin_read(v->str, e.text, {}, e.span);
        }
      }
      return member_of(eval(obj, env, host), e.text, e.span);
    }
    case ExprKind::Call: {
      const Expr& callee = *e.items.at(0);
      if (const Value* v = plugin_callee(e, env)) {
        if (!host) throw NotStatic{e.span};
        return host->plugin_read(v->str, callee.text, op_args(nullptr, e, env, host), e.span);
      }
      if (callee.kind != ExprKind::Name) fail(callee.span, "this cannot be called");
      const std::string& fn = callee.text;
      std::vector<Value> args;
      for (const ast::Field& f : e.fields) args.push_back(eval(*f.value, env, host));
      if (const Value* v = env.find(fn); v && v->kind == K::Metric) {
        if (!host) throw NotStatic{e.span};
        return host->metric(v->str, args, e.span);
      }
      if (fn == "env") {
        if (!host) throw NotStatic{e.span};
        return host->env_var(args.at(0).text(), e.span);
      }
      if (fn == "len") {
        const Value& a = args.at(0);
        if (a.kind == K::String) return Value::number(static_cast<double>(a.str.size()));
        if (a.kind == K::Map) return Value::number(static_cast<double>(a.fields().size()));
        return Value::number(static_cast<double>(a.items().size()));
      }
      if (fn == "min" || fn == "max") {
        Value best = args.at(0);
        for (size_t i = 1; i < args.size(); ++i) {
          if (args[i].is_null() || best.is_null()) return Value::null();
          bool less = args[i].scalar() < best.scalar();
          if ((fn == "min") == less) best = args[i];
        }
        return best;
      }
      fail(callee.span, "'" + fn + "' cannot be called");
    }
    case ExprKind::Unary: {
      Value v = eval(*e.items.at(0), env, host);
      if (e.text == "not") {
        if (v.kind != K::Bool) fail(e.span, "'not' needs true or false");
        return Value::boolean(!v.flag);
      }
      if (!v.is_numeric()) fail(e.span, "'-' needs a number");
      v.num = -v.num;
      return v;
    }
    case ExprKind::Binary: {
      const Op op = binary_op(e.text);
      if (op == Op::And || op == Op::Or) {
        bool a = eval_bool(*e.items.at(0), env, host);
        if (op == Op::And && !a) return Value::boolean(false);
        if (op == Op::Or && a) return Value::boolean(true);
        return Value::boolean(eval_bool(*e.items.at(1), env, host));
      }
      Value a = eval(*e.items.at(0), env, host);
      Value b = eval(*e.items.at(1), env, host);
      if (is_comparison(op)) return Value::boolean(compare(op, a, b, e.span));
      return arith(op, std::move(a), b, e.span);
    }
  }
  fail(e.span, "cannot evaluate this expression");
}

bool eval_bool(const Expr& e, const Env& env, EvalHost* host) {
  Value v = eval(e, env, host);
  if (v.kind != K::Bool) fail(e.span, std::string("expected true or false, got a ") + kind_name(v.kind));
  return v.flag;
}

}  // namespace gray
