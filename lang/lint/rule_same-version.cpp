// same-version: the canary and the version it is compared with are the same: a judge that
// compares a metric with itself, or an `undo` that runs the very command it should revert.
#include "lang/lint/rule.h"

#include <functional>

namespace gray::lint {
namespace {

using ast::StmtKind;

void check(Context& cx) {
  const Model& m = cx.model;
  auto judge = [&](const Item& g, const Scope*) {
    const ast::Stmt& st = *g.stmt;
    if (st.word.text != "compare" || st.args.size() < 2) return;
    if (m.key(*st.args[0], g.env) != m.key(*st.args[1], g.env)) return;
    cx.report(g, st.args[1]->span,
              guard_name(st) + " compares '" + std::string(m.source(st.args[0]->span)) +
                  "' with the same version: canary and baseline are equal, so it can never fail",
              m.depends_on_use(*st.args[0], g.env) || m.depends_on_use(*st.args[1], g.env));
  };
  each_guard(m, judge);
  // A run followed by an undo of the same command, in any block.
  std::function<void(const std::vector<ast::StmtPtr>&, const Item&)> block = [&](const std::vector<ast::StmtPtr>& body, const Item& parent) {
    for (size_t i = 0; i < body.size(); ++i) {
      const ast::Stmt& s = *body[i];
      Item it{&s, parent.env, parent.origin, parent.module};
      if (s.kind == StmtKind::Run && i + 1 < body.size() && body[i + 1]->kind == StmtKind::Undo && !body[i + 1]->args.empty()) {
        const ast::Stmt& undo = *body[i + 1];
        if (m.key(*s.args.at(0), it.env) == m.key(*undo.args[0], it.env))
          cx.report(it, undo.args[0]->span, "this undo runs the same command as the step it compensates: a rollback would redo it, not revert it",
                    m.depends_on_use(*s.args[0], it.env) || m.depends_on_use(*undo.args[0], it.env));
      }
      if (s.kind == StmtKind::Use)
        if (std::optional<Item> t = m.instantiate(it)) block(t->stmt->body, *t);
      block(s.body, it);
      block(s.else_body, it);
    }
  };
  for (const Scope& s : m.scopes()) block(s.item.stmt->body, s.item);
}

}  // namespace

const Rule& rule_same_version() {
  static const Rule r{{"same-version", Level::Error, "A judge compares a version with itself, or an undo repeats its step", {}}, check};
  return r;
}

}  // namespace gray::lint
