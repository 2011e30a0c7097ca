// unreachable-after-abort: steps after an `abort` in the same block (or after an `if` whose
// every branch aborts) never run.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

bool is_step(const ast::Stmt& s) {
  return s.kind != StmtKind::Setting && s.kind != StmtKind::Guard && s.kind != StmtKind::On && s.kind != StmtKind::Stage;
}

bool always_aborts(const std::vector<ast::StmtPtr>& body);

bool aborts(const ast::Stmt& s) {
  if (s.kind == StmtKind::Abort) return true;
  return s.kind == StmtKind::If && s.has_else && always_aborts(s.body) && always_aborts(s.else_body);
}

bool always_aborts(const std::vector<ast::StmtPtr>& body) {
  for (const ast::StmtPtr& s : body)
    if (aborts(*s)) return true;
  return false;
}

void block(Context& cx, const std::vector<ast::StmtPtr>& body, const Item& parent) {
  bool dead = false;
  for (const ast::StmtPtr& sp : body) {
    const ast::Stmt& s = *sp;
    Item it{&s, parent.env, parent.origin, parent.module};
    if (dead && is_step(s)) {
      cx.report(it, s.span, "this step never runs: the 'abort' before it always ends the run");
      break;
    }
    block(cx, s.body, it);
    block(cx, s.else_body, it);
    if (aborts(s)) dead = true;
  }
}

void check(Context& cx) {
  for (const Scope& s : cx.model.scopes())
    if (!s.item.origin) block(cx, s.item.stmt->body, s.item);
}

}  // namespace

const Rule& rule_unreachable_after_abort() {
  static const Rule r{{"unreachable-after-abort", Level::Warning, "A step follows an abort that always ends the run", {}}, check};
  return r;
}

}  // namespace gray::lint
