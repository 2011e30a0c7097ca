// traffic-weight-range: a traffic share outside 0%..100%, in a ramp's steps or a weight() step.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

void check_share(Context& cx, const Item& at, const ast::Expr& e, const Value& v, const char* what) {
  if (v.kind == Value::Percent && (v.num < 0 || v.num > 100))
    cx.report(at, e.span, std::string(what) + " " + show(v) + " is outside 0%..100%", v.bound);
}

void check(Context& cx) {
  const Model& m = cx.model;
  for (const Scope& s : m.scopes())
    m.walk(s, [&](const Item& it, const StepCtx&) {
      const ast::Stmt& st = *it.stmt;
      if (st.kind == StmtKind::Setting && st.word.text == "steps") {
        for (const ast::ExprPtr& a : st.args) {
          Value v = m.eval(*a, it.env);
          if (v.kind == Value::List)
            for (Value& i : v.items) {
              i.bound |= v.bound;
              check_share(cx, it, *a, i, "ramp step");
            }
          else
            check_share(cx, it, *a, v, "ramp step");
        }
      } else if (const ast::Expr* share = weight_share(m, st)) {
        check_share(cx, it, *share, m.eval(*share, it.env), "traffic share");
      }
      return true;
    });
}

}  // namespace

const Rule& rule_traffic_weight_range() {
  static const Rule r{{"traffic-weight-range", Level::Error, "A ramp step or weight() share is below 0% or above 100%", {}}, check};
  return r;
}

}  // namespace gray::lint
