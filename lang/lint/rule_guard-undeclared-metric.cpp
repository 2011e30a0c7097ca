// guard-undeclared-metric: a guard that queries a metrics plugin directly (prom.query("...")) instead
// of a declared metric, so status, the journal and the other guards cannot name what it watches.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::ExprKind;

void check(Context& cx) {
  const Model& m = cx.model;
  each_guard(m, [&](const Item& g, const Scope*) {
    if (g.stmt->word.text == "probe") return;
    for (const ast::ExprPtr& a : g.stmt->args)
      each_subexpr(*a, [&](const ast::Expr& e) {
        if (e.kind != ExprKind::Call) return;
        const ast::Expr& callee = *e.items.at(0);
        plugins::Kind k;
        if (callee.kind == ExprKind::Member && m.plugin_kind(*callee.items.at(0), k) && k == plugins::Kind::Metrics) {
          const std::string name = callee.items[0]->text + "." + callee.text;
          Diagnostic* d = cx.report(g, e.span, guard_name(*g.stmt) + " queries " + name + "(...) directly instead of a declared metric");
          if (d) d->help = "declare it, as in 'metric error_rate = " + name + "(\"...\")', and guard on the metric";
        }
      });
  });
}

}  // namespace

const Rule& rule_guard_undeclared_metric() {
  static const Rule r{{"guard-undeclared-metric", Level::Warning, "A guard queries a metrics plugin directly instead of a declared metric", {}},
                      check};
  return r;
}

}  // namespace gray::lint
