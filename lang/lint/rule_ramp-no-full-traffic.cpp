// ramp-no-full-traffic: traffic never reaches 100% and no align stage brings the rest of the
// fleet to the new version, so the release ends half done.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

void check(Context& cx) {
  const Model& m = cx.model;
  if (!m.pipeline()) return;
  bool full = false;
  std::optional<RampStep> last;
  for (const Item& stage : m.stages()) {
    const std::string& kind = stage.stmt->word.text;
    if (kind == "align") return;
    if (kind == "ramp") {
      for (const RampStep& st : ramp_steps(m, stage)) {
        if (st.value.kind != Value::Percent || st.value.num >= 100) full = true;  // unknown: it may
        last = st;
      }
    }
    if (kind == "rollback") continue;
    m.walk(stage.stmt->body, stage, [&](const Item& it, const StepCtx&) {
      if (const ast::Expr* share = weight_share(m, *it.stmt)) {
        Value v = m.eval(*share, it.env);
        if (v.kind != Value::Percent || v.num >= 100) full = true;
      }
      return true;
    });
  }
  if (full || !last) return;
  cx.report(last->at, last->expr->span,
            "traffic never reaches 100%: the last ramp stops at " + show(last->value) +
                " and no align stage brings the rest of the fleet to the new version",
            true);
}

}  // namespace

const Rule& rule_ramp_no_full_traffic() {
  static const Rule r{{"ramp-no-full-traffic", Level::Warning, "No ramp reaches 100% and no align stage follows", {}}, check};
  return r;
}

}  // namespace gray::lint
