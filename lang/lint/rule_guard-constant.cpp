// guard-constant: a guard whose condition reads no metric, plugin value or host: it never
// changes, so it passes forever or breaches at its first evaluation.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::ExprKind;
using RefKind = CheckFacts::RefKind;

bool live(const Model& m, const ast::Expr& root) {
  bool found = false;
  each_subexpr(root, [&](const ast::Expr& e) {
    if (e.kind != ExprKind::Name) return;
    const CheckFacts::Ref* r = m.ref(e.span);
    if (!r) return;
    // A template parameter of no declared type may be anything; give it the benefit of the doubt.
    if (r->kind == RefKind::Metric || r->kind == RefKind::Plugin || r->kind == RefKind::Host ||
        (r->template_param && r->type == plugins::Type::Any))
      found = true;
  });
  return found;
}

void check(Context& cx) {
  const Model& m = cx.model;
  each_guard(m, [&](const Item& g, const Scope*) {
    const ast::Stmt& st = *g.stmt;
    if (st.word.text == "probe" || st.args.empty()) return;
    bool any = live(m, *st.args[0]);
    if (st.word.text == "compare" && st.args.size() > 1) any |= live(m, *st.args[1]);
    if (any) return;
    Span at = st.word.text == "compare" ? Span::join(st.args[0]->span, st.args[1]->span) : st.args[0]->span;
    cx.report(g, at, guard_name(st) + " reads no metric or live value, so it never changes: it passes always or breaches at once");
  });
}

}  // namespace

const Rule& rule_guard_constant() {
  static const Rule r{{"guard-constant", Level::Warning, "A guard's condition reads no metric, plugin value or host", {}}, check};
  return r;
}

}  // namespace gray::lint
