// drain-wait-below-cache-refresh: an instance is taken out of a registry (drain, deregister,
// disable) and stopped before its clients can have noticed: the wait is shorter than the
// registry's `cache_refresh`, the time its clients take to refresh their cached copy.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::ExprKind;
using ast::StmtKind;

// The cache_refresh a registry declares.
Value refresh_of(const Model& m, const ast::Stmt* plugin) {
  if (!plugin || plugin->word.text != "registry" || !plugin->value) return {};
  for (const ast::Field& f : plugin->value->fields)
    if (f.name == "cache_refresh") return m.eval(*f.value, nullptr);
  return {};
}

void check(Context& cx) {
  const Model& m = cx.model;
  for (const Scope& s : m.scopes()) {
    std::function<void(const std::vector<ast::StmtPtr>&, const Item&)> block = [&](const std::vector<ast::StmtPtr>& body, const Item& parent) {
      std::vector<Item> items = m.expand(body, parent);
      for (size_t i = 0; i < items.size(); ++i) {
        const Item& it = items[i];
        const ast::Stmt& st = *it.stmt;
        block(st.body, it);
        block(st.else_body, it);
        if (st.kind == StmtKind::Drain) {
          Value reg = m.eval_name(st.name.span, it.env);
          Value refresh = refresh_of(m, reg.plugin);
          if (reg.kind != Value::Plugin || refresh.kind != Value::Duration) continue;
          const ast::Clause* c = st.clause("wait");
          Value wait = c && c->value ? m.eval(*c->value, it.env) : duration(0);
          if (wait.kind != Value::Duration || wait.num >= refresh.num) continue;
          cx.report(it, c ? c->value->span : st.keyword,
                    "drain waits " + show(wait) + ", less than the " + show(refresh) + " the clients of '" + reg.plugin->name.text +
                        "' take to refresh their cache: they may still call the instance after it stops",
                    reg.bound || wait.bound);
          continue;
        }
        // REG.deregister(...) / REG.disable(...), then waits, then the instance stops (a run).
        if (st.kind != StmtKind::Call || st.args.empty() || st.args[0]->kind != ExprKind::Call) continue;
        const ast::Expr& callee = *st.args[0]->items.at(0);
        if (callee.kind != ExprKind::Member || (callee.text != "deregister" && callee.text != "disable")) continue;
        Value reg = m.eval(*callee.items.at(0), it.env);
        Value refresh = refresh_of(m, reg.plugin);
        if (reg.kind != Value::Plugin || refresh.kind != Value::Duration) continue;
        Value waited = duration(0);
        bool stops = false;
        for (size_t j = i + 1; j < items.size() && waited.known(); ++j) {
          const ast::Stmt& next = *items[j].stmt;
          if (next.kind == StmtKind::Wait) {
            Value w = m.eval(*next.args.at(0), items[j].env);
            if (w.kind != Value::Duration) waited = {};
            else waited.num += w.num, waited.bound |= w.bound;
          } else if (next.kind == StmtKind::Run) {
            stops = true;
            break;
          }
        }
        if (!stops || waited.kind != Value::Duration || waited.num >= refresh.num) continue;
        cx.report(it, st.args[0]->span,
                  "the instance stops " + show(waited) + " after it leaves '" + reg.plugin->name.text + "', less than the " + show(refresh) +
                      " its clients take to refresh their cache",
                  reg.bound || waited.bound);
      }
    };
    block(s.item.stmt->body, s.item);
  }
}

}  // namespace

const Rule& rule_drain_wait_below_cache_refresh() {
  static const Rule r{{"drain-wait-below-cache-refresh", Level::Warning,
                       "An instance leaves a registry and stops sooner than the registry's clients refresh their cache", {}},
                      check};
  return r;
}

}  // namespace gray::lint
