// rollback-unreachable: the pipeline has a rollback stage but nothing can start a rollback:
// every failure and every breach is handled by abort, pause or continue, and no gate defaults
// to rollback.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

// The action word of the `on EVENT` handler among `items`: "" when there is none, "block" for
// a block of steps.
std::string handler(const std::vector<Item>& items, const char* event) {
  for (const Item& it : items)
    if (it.stmt->kind == StmtKind::On && it.stmt->word.text == event) return it.stmt->word2.empty() ? "block" : it.stmt->word2.text;
  return "";
}

void check(Context& cx) {
  const Model& m = cx.model;
  if (!m.pipeline()) return;
  const Item* rollback = nullptr;
  for (const Item& stage : m.stages())
    if (stage.stmt->word.text == "rollback") rollback = &stage;
  if (!rollback) return;
  const std::string pipe_failure = handler(m.pipeline_handlers(), "failure");
  const std::string pipe_breach = handler(m.pipeline_handlers(), "breach");
  bool reachable = false;
  // Any explicit rollback action or answer.
  auto scan = [&](const Item& it, const StepCtx&) {
    const ast::Stmt& st = *it.stmt;
    if (st.kind == StmtKind::On && st.word2.text == "rollback") reachable = true;
    for (const ast::Clause& c : st.clauses)
      if ((c.key == "else" || c.key == "default") && c.word.text == "rollback") reachable = true;
    return true;
  };
  for (const Item& h : m.pipeline_handlers()) scan(h, {});
  for (const Item& g : m.pipeline_guards()) {
    scan(g, {});
    if (!g.stmt->clause("else") && (pipe_breach.empty() || pipe_breach == "rollback")) reachable = true;
  }
  for (const Item& stage : m.stages()) {
    if (&stage == rollback) continue;
    std::vector<Item> items = m.expand(stage.stmt->body, stage);
    m.walk(stage.stmt->body, stage, scan);
    // A failure without a handler rolls back; so does a breach of a guard without one.
    std::string failure = handler(items, "failure");
    if (failure.empty()) failure = pipe_failure;
    if (failure.empty() || failure == "rollback") reachable = true;
    std::string breach = handler(items, "breach");
    if (breach.empty()) breach = pipe_breach;
    for (const Item& g : items)
      if (g.stmt->kind == StmtKind::Guard && !g.stmt->clause("else") && (breach.empty() || breach == "rollback")) reachable = true;
    if (reachable) return;
  }
  if (reachable) return;
  const ast::Stmt& st = *rollback->stmt;
  cx.report(*rollback, st.keyword,
            "the rollback stage can never run: every failure and breach is handled by abort, pause or continue", true);
}

}  // namespace

const Rule& rule_rollback_unreachable() {
  static const Rule r{{"rollback-unreachable", Level::Warning, "Nothing in the pipeline can start the rollback stage", {}}, check};
  return r;
}

}  // namespace gray::lint
