// run-without-undo: a `run` in a deploy or align stage has no `undo`, so a rollback cannot
// revert what it changed. A run that repeats the command of an earlier `undo` is the forward
// path settling that undo (docs/language.md §8.3) and needs none.
#include "lang/lint/rule.h"

#include <set>

namespace gray::lint {
namespace {

using ast::StmtKind;

class Walker {
 public:
  Walker(Context& cx, const Item& stage) : cx_(cx), m_(cx.model), stage_(stage) {}

  // The commands of `undo COMMAND` seen so far, in run order.
  std::set<std::string> pending;

  void block(const std::vector<ast::StmtPtr>& body, const Item& parent, bool covered) {
    for (size_t i = 0; i < body.size(); ++i) {
      const ast::Stmt& s = *body[i];
      Item it{&s, parent.env, parent.origin, parent.module};
      const bool has_undo = i + 1 < body.size() && body[i + 1]->kind == StmtKind::Undo;
      switch (s.kind) {
        case StmtKind::Undo:
          if (!s.args.empty()) pending.insert(m_.key(*s.args[0], it.env));
          break;
        case StmtKind::Run: {
          if (has_undo || covered) break;
          std::string k = m_.key(*s.args.at(0), it.env);
          if (pending.count(k)) break;  // it settles an earlier undo
          if (Diagnostic* d = cx_.report(it, s.keyword, "this 'run' changes the hosts but has no 'undo': a rollback cannot revert it",
                                         it.origin != stage_.origin || m_.depends_on_use(*s.args[0], it.env)))
            d->help = "add 'undo \"...\"' (or 'undo { ... }') right after it";
          break;
        }
        case StmtKind::If:
          block(s.body, it, covered || has_undo);
          block(s.else_body, it, covered || has_undo);
          break;
        case StmtKind::Use:
          if (std::optional<Item> t = m_.instantiate(it)) block(t->stmt->body, *t, covered || has_undo);
          break;
        default: break;  // handlers and undo blocks: compensation, not forward work
      }
    }
  }

 private:
  Context& cx_;
  const Model& m_;
  const Item& stage_;
};

void check(Context& cx) {
  const Model& m = cx.model;
  std::set<std::string> pending;  // across the pipeline's stages, in run order
  for (const Scope& s : m.scopes()) {
    if (!s.stage) continue;
    Walker w(cx, s.item);
    if (!s.standalone) w.pending = pending;
    const std::string& kind = s.item.stmt->word.text;
    if (kind == "deploy" || kind == "align") {
      w.block(s.item.stmt->body, s.item, false);
    } else {
      // Other stages do no forward work to undo, but their undos still count for settling.
      m.walk(s, [&](const Item& it, const StepCtx&) {
        if (it.stmt->kind == StmtKind::Undo && !it.stmt->args.empty()) w.pending.insert(m.key(*it.stmt->args[0], it.env));
        return true;
      });
    }
    if (!s.standalone) pending = std::move(w.pending);
  }
}

}  // namespace

const Rule& rule_run_without_undo() {
  static const Rule r{{"run-without-undo", Level::Warning, "A 'run' in a deploy or align stage has no 'undo'", {}}, check};
  return r;
}

}  // namespace gray::lint
