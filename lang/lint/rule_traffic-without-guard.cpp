// traffic-without-guard: a ramp shifts traffic while no guard watches it (none in the stage,
// none at pipeline level).
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

void check(Context& cx) {
  const Model& m = cx.model;
  if (!m.pipeline() || !m.pipeline_guards().empty()) return;
  for (const Item& stage : m.stages()) {
    if (stage.stmt->word.text != "ramp") continue;
    bool guarded = false;
    for (const Item& it : m.expand(stage.stmt->body, stage)) guarded |= it.stmt->kind == ast::StmtKind::Guard;
    if (!guarded)
      cx.report(stage, stage.stmt->keyword,
                describe_stage(*stage.stmt) + " shifts traffic with no guard watching it: a failing canary would get every step",
                true);
  }
}

}  // namespace

const Rule& rule_traffic_without_guard() {
  static const Rule r{{"traffic-without-guard", Level::Warning, "A ramp shifts traffic with no guard in the stage or the pipeline", {}}, check};
  return r;
}

}  // namespace gray::lint
