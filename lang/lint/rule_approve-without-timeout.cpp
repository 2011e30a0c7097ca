// approve-without-timeout: a manual gate that can wait forever (no timeout), or whose timeout
// has no default answer and no `on timeout` handler to take over.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

bool handles_timeout(const Model& m, const std::vector<Item>& items) {
  for (const Item& it : items)
    if (it.stmt->kind == StmtKind::On && it.stmt->word.text == "timeout") return true;
  return false;
}

void check(Context& cx) {
  const Model& m = cx.model;
  const bool pipeline_handles = handles_timeout(m, m.pipeline_handlers());
  for (const Scope& s : m.scopes()) {
    const bool stage_handles = s.stage && handles_timeout(m, m.expand(s.item.stmt->body, s.item));
    m.walk(s, [&](const Item& it, const StepCtx&) {
      const ast::Stmt& st = *it.stmt;
      if (st.kind != StmtKind::Approve) return true;
      if (!st.clause("timeout")) {
        if (Diagnostic* d = cx.report(it, st.keyword, "manual gate has no 'timeout': without an answer it waits forever"))
          d->help = "add 'timeout 4h default rollback' (or default abort, promote)";
      } else if (!st.clause("default") && s.stage && !stage_handles && !pipeline_handles) {
        if (Diagnostic* d = cx.report(it, st.keyword,
                                      "manual gate times out with no 'default' answer and no 'on timeout' handler: the stage fails",
                                      it.origin != s.item.origin))
          d->help = "say what a missing answer means: 'default rollback', 'default abort' or 'default promote'";
      }
      return true;
    });
  }
}

}  // namespace

const Rule& rule_approve_without_timeout() {
  static const Rule r{{"approve-without-timeout", Level::Warning, "A manual gate has no timeout, or no default answer when it times out", {}},
                      check};
  return r;
}

}  // namespace gray::lint
