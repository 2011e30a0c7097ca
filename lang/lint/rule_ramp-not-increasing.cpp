// ramp-not-increasing: a ramp whose steps repeat or change direction. A ramp must keep rising;
// one that only falls (steps 50% -> 0%, traffic going home) is a ramp-down and is fine.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

void check(Context& cx) {
  const Model& m = cx.model;
  for (const Scope& s : m.scopes()) {
    if (!s.stage || s.item.stmt->word.text != "ramp") continue;
    std::vector<RampStep> steps = ramp_steps(m, s.item);
    int direction = 0;  // +1 rising, -1 falling
    const RampStep* prev = nullptr;
    for (const RampStep& cur : steps) {
      if (cur.value.kind != Value::Percent) {
        prev = nullptr;  // an unknown step: compare only neighbours that are both known
        continue;
      }
      if (prev) {
        const bool bound = cur.value.bound || prev->value.bound;
        if (cur.value.num == prev->value.num) {
          cx.report(cur.at, cur.expr->span, "ramp step " + show(cur.value) + " repeats the step before it", bound);
        } else {
          // The first move sets the ramp's direction; each move against it is reported.
          int d = cur.value.num > prev->value.num ? 1 : -1;
          if (!direction) direction = d;
          else if (d != direction)
            cx.report(cur.at, cur.expr->span,
                      direction > 0 ? "ramp goes back down from " + show(prev->value) + " to " + show(cur.value) +
                                          ": a ramp's steps must keep rising"
                                    : "ramp-down goes back up from " + show(prev->value) + " to " + show(cur.value) +
                                          ": a ramp-down's steps must keep falling",
                      bound);
        }
      }
      prev = &cur;
    }
  }
}

}  // namespace

const Rule& rule_ramp_not_increasing() {
  static const Rule r{{"ramp-not-increasing", Level::Warning, "A ramp's steps repeat a share or change direction", {}}, check};
  return r;
}

}  // namespace gray::lint
