// wait-until-without-timeout: `wait until` with no `timeout` waits for as long as the condition
// takes, which is forever when it never holds (docs/language.md §7.4).
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

void check(Context& cx) {
  const Model& m = cx.model;
  for (const Scope& s : m.scopes())
    m.walk(s, [&](const Item& it, const StepCtx&) {
      const ast::Stmt& st = *it.stmt;
      if (st.kind == ast::StmtKind::WaitUntil && !st.clause("timeout"))
        if (Diagnostic* d = cx.report(it, st.keyword, "'wait until' has no 'timeout': if the condition never holds, the run waits forever"))
          d->help = "add 'timeout D', and 'on timeout' in the stage if a timeout should not fail it";
      return true;
    });
}

}  // namespace

const Rule& rule_wait_until_without_timeout() {
  static const Rule r{{"wait-until-without-timeout", Level::Warning, "A 'wait until' has no timeout", {}}, check};
  return r;
}

}  // namespace gray::lint
