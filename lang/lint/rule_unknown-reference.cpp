// unknown-reference: a name the checker takes as free text but that must name something that
// exists: a server group (route targets, scale, weight_of: 'canary' or 'stable'), or a server
// of a gateway whose groups are listed in its configuration (drain, restore and the server
// operations).
#include "lang/lint/rule.h"

#include "lang/text.h"

namespace gray::lint {
namespace {

using ast::ExprKind;
using ast::StmtKind;

const std::vector<std::string> kGroups = {"canary", "stable"};

bool is_group(const std::string& w) { return w == "canary" || w == "stable"; }

void unknown_group(Context& cx, const Item& at, Span span, const std::string& word, bool bound) {
  Diagnostic* d = cx.report(at, span, "unknown server group '" + word + "': a gateway's groups are 'canary' and 'stable'", bound);
  std::string best = closest_word(word, kGroups);
  if (d && !best.empty()) d->help = "did you mean '" + best + "'?";
}

// The servers of a gateway whose configuration lists them literally, else nothing.
std::optional<std::vector<std::string>> servers(const ast::Stmt& plugin) {
  const std::string& driver = plugin.word2.text;
  if (plugin.word.text != "gateway" || !plugin.value || (driver != "haproxy" && driver != "nginx" && driver != "sim")) return std::nullopt;
  std::vector<std::string> out;
  for (const ast::Field& f : plugin.value->fields) {
    if (f.name != "stable" && f.name != "canary") continue;
    if (f.value->kind != ExprKind::List) return std::nullopt;
    for (const ast::ExprPtr& i : f.value->items) {
      if (i->kind != ExprKind::String || i->parts.size() != 1 || i->parts[0].is_var) return std::nullopt;
      out.push_back(i->parts[0].text);
    }
  }
  return out;
}

void check_server(Context& cx, const Item& at, const ast::Stmt* plugin, const ast::Expr& subject, bool bound) {
  if (!plugin) return;
  std::optional<std::vector<std::string>> names = servers(*plugin);
  if (!names) return;
  Value v = cx.model.eval(subject, at.env);
  if (v.kind != Value::String || v.str.find("${") != std::string::npos) return;
  for (const std::string& n : *names)
    if (n == v.str) return;
  std::string list;
  for (const std::string& n : *names) list += (list.empty() ? "" : ", ") + n;
  Diagnostic* d = cx.report(at, subject.span, "gateway '" + plugin->name.text + "' has no server '" + v.str + "'", bound || v.bound);
  if (d) {
    std::string best = closest_word(v.str, *names);
    d->help = best.empty() ? "its servers are " + list : "did you mean '" + best + "'? its servers are " + list;
  }
}

void check(Context& cx) {
  const Model& m = cx.model;
  for (const Scope& s : m.scopes())
    m.walk(s, [&](const Item& it, const StepCtx&) {
      const ast::Stmt& st = *it.stmt;
      if (st.kind == StmtKind::Route && st.match_kind != "clear") {
        const ast::Expr& target = *st.args.back();
        const CheckFacts::Ref* r = target.kind == ExprKind::Name ? m.ref(target.span) : nullptr;
        if (target.kind == ExprKind::Name && (!r || r->kind != CheckFacts::RefKind::Value) && !is_group(target.text))
          unknown_group(cx, it, target.span, target.text, false);
      }
      if (st.kind == StmtKind::Scale && !is_group(st.word.text)) unknown_group(cx, it, st.word.span, st.word.text, false);
      if ((st.kind == StmtKind::Drain || st.kind == StmtKind::Restore) && !st.args.empty()) {
        Value target = m.eval_name(st.name.span, it.env);
        if (target.kind == Value::Plugin) check_server(cx, it, target.plugin, *st.args[0], target.bound);
      }
      each_expr(st, [&](const ast::Expr& root) {
        each_subexpr(root, [&](const ast::Expr& e) {
          if (e.kind != ExprKind::Call || e.fields.empty() || e.items.at(0)->kind != ExprKind::Member) return;
          const ast::Expr& callee = *e.items[0];
          const ast::Expr& subject = *e.fields[0].value;
          plugins::Kind k;
          if (!m.plugin_kind(*callee.items.at(0), k) || k != plugins::Kind::Gateway) return;
          if (callee.text == "weight_of") {
            Value v = m.eval(subject, it.env);
            if (v.kind == Value::String && v.str.find("${") == std::string::npos && !is_group(v.str))
              unknown_group(cx, it, subject.span, v.str, v.bound);
          } else if (callee.text == "drain" || callee.text == "ready" || callee.text == "maint" || callee.text == "sessions" ||
                     callee.text == "connections") {
            Value target = m.eval(*callee.items[0], it.env);
            if (target.kind == Value::Plugin) check_server(cx, it, target.plugin, subject, target.bound);
          }
        });
      });
      return true;
    });
}

}  // namespace

const Rule& rule_unknown_reference() {
  static const Rule r{{"unknown-reference", Level::Error, "A server group or gateway server that does not exist", {}}, check};
  return r;
}

}  // namespace gray::lint
