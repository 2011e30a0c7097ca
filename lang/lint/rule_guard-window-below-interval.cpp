// guard-window-below-interval: a guard's `for` window is shorter than its evaluation interval
// (`every`, 30s by default), so it cannot be observed: the guard acts as if `for` were `every`.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

void check(Context& cx) {
  const Model& m = cx.model;
  each_guard(m, [&](const Item& g, const Scope*) {
    const ast::Clause* window = g.stmt->clause("for");
    if (!window) return;
    GuardTiming t = guard_timing(m, g);
    if (t.window.kind != Value::Duration || t.every.kind != Value::Duration) return;
    if (t.window.num <= 0 || t.window.num >= t.every.num) return;
    cx.report(g, window->span,
              guard_name(*g.stmt) + " waits 'for " + show(t.window) + "', less than its evaluation interval (every " + show(t.every) +
                  "): it acts as 'for " + show(t.every) + "'",
              t.window.bound || t.every.bound);
  });
}

}  // namespace

const Rule& rule_guard_window_below_interval() {
  static const Rule r{{"guard-window-below-interval", Level::Warning, "A guard's 'for' window is shorter than its evaluation interval", {}},
                      check};
  return r;
}

}  // namespace gray::lint
