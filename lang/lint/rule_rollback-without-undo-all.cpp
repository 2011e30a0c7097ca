// rollback-without-undo-all: a rollback stage that never says `undo all` leaves the undo stack
// alone, so what the run did stays done (docs/language.md §8.1).
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

void check(Context& cx) {
  const Model& m = cx.model;
  for (const Scope& s : m.scopes()) {
    if (!s.stage || s.item.stmt->word.text != "rollback") continue;
    bool undo_all = false;
    m.walk(s, [&](const Item& it, const StepCtx&) {
      undo_all |= it.stmt->kind == ast::StmtKind::Undo && it.stmt->word.text == "all";
      return true;
    });
    if (undo_all) continue;
    if (Diagnostic* d = cx.report(s.item, s.item.stmt->keyword,
                                  "the rollback stage never says 'undo all': what the run did stays done, apart from what its own steps revert"))
      d->help = "end it with 'undo all'";
  }
}

}  // namespace

const Rule& rule_rollback_without_undo_all() {
  static const Rule r{{"rollback-without-undo-all", Level::Warning, "A rollback stage does not run 'undo all'", {}}, check};
  return r;
}

}  // namespace gray::lint
