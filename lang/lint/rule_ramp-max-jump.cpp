// ramp-max-jump: a rise between two consecutive ramp steps larger than the configured maximum.
// The first step is not a jump: how much a ramp starts with is its own choice (a blue-green
// switch starts at 100%).
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

void check(Context& cx) {
  const Model& m = cx.model;
  const double max = cx.option("max");
  for (const Scope& s : m.scopes()) {
    if (!s.stage || s.item.stmt->word.text != "ramp") continue;
    std::vector<RampStep> steps = ramp_steps(m, s.item);
    for (size_t i = 1; i < steps.size(); ++i) {
      const Value& a = steps[i - 1].value;
      const Value& b = steps[i].value;
      if (a.kind != Value::Percent || b.kind != Value::Percent || b.num - a.num <= max) continue;
      Value jump = b;
      jump.num = b.num - a.num;
      Value limit = b;
      limit.num = max;
      cx.report(steps[i].at, steps[i].expr->span,
                "ramp jumps from " + show(a) + " to " + show(b) + " in one step (+" + show(jump) + "); the largest step allowed is +" +
                    show(limit),
                a.bound || b.bound);
    }
  }
}

}  // namespace

const Rule& rule_ramp_max_jump() {
  static const Rule r{{"ramp-max-jump",
                       Level::Warning,
                       "Traffic rises between two ramp steps by more than the allowed maximum",
                       {{"max", OptionInfo::Type::Percent, 50, "the largest rise between two consecutive steps"}}},
                      check};
  return r;
}

}  // namespace gray::lint
