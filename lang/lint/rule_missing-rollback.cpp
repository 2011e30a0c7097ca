// missing-rollback: the pipeline moves traffic to the canary but has no rollback stage. A
// rollback then only runs `undo all`, newest first, so the canary keeps its traffic while the
// later steps are undone; a rollback stage cuts traffic off first.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

void check(Context& cx) {
  const Model& m = cx.model;
  if (!m.pipeline()) return;
  const Item* mover = nullptr;
  for (const Item& stage : m.stages()) {
    if (stage.stmt->word.text == "rollback") return;
    if (mover) continue;
    if (stage.stmt->word.text == "ramp") {
      mover = &stage;
      continue;
    }
    m.walk(stage.stmt->body, stage, [&](const Item& it, const StepCtx&) {
      const ast::Stmt& st = *it.stmt;
      bool moves = false;
      if (const ast::Expr* share = weight_share(m, st)) {
        Value v = m.eval(*share, it.env);
        moves = !(v.kind == Value::Percent && v.num <= 0);
      }
      moves |= st.kind == StmtKind::Route && st.match_kind != "clear";
      if (moves && !mover) mover = &stage;
      return true;
    });
  }
  if (!mover) return;
  const ast::Stmt& p = *m.pipeline();
  Item at{&p, nullptr, nullptr, m.module_index()};
  if (Diagnostic* d = cx.report(at, p.str_span,
                                "the pipeline moves traffic to the canary (" + describe_stage(*mover->stmt) +
                                    ") but has no rollback stage to cut it off first"))
    d->help = "add 'rollback { GATEWAY.weight(0%) undo all }', or use a template that provides one";
}

}  // namespace

const Rule& rule_missing_rollback() {
  static const Rule r{{"missing-rollback", Level::Warning, "The pipeline moves traffic but has no rollback stage", {}}, check};
  return r;
}

}  // namespace gray::lint
