// align-before-verify: an align stage rolls the new version out to the rest of the fleet before
// anything verified it: no verify stage, no probe and no guard ran before it.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

bool verifies(const Model& m, const Item& stage) {
  if (stage.stmt->word.text == "verify") return true;
  bool found = false;
  m.walk(stage.stmt->body, stage, [&](const Item& it, const StepCtx& ctx) {
    if (!ctx.handler && !ctx.undo && (it.stmt->kind == StmtKind::Probe || it.stmt->kind == StmtKind::Guard)) found = true;
    return !found;
  });
  return found;
}

void check(Context& cx) {
  const Model& m = cx.model;
  for (const Item& stage : m.stages()) {
    if (stage.stmt->word.text == "align") {
      if (Diagnostic* d = cx.report(stage, stage.stmt->keyword,
                                    describe_stage(*stage.stmt) + " rolls the new version out before anything verified it", true))
        d->help = "verify the canary first: a verify stage, a probe in the deploy stage, or a guarded ramp";
      return;
    }
    if (verifies(m, stage)) return;
  }
}

}  // namespace

const Rule& rule_align_before_verify() {
  static const Rule r{{"align-before-verify", Level::Warning, "An align stage starts before any verify stage, probe or guard", {}}, check};
  return r;
}

}  // namespace gray::lint
