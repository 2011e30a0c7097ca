// deploy-without-image-check: the pipeline has an image registry, and a deploy stage starts its
// commands before anything checked that the image exists (IMG.exists(...), or IMG.digest(...),
// which fails on a missing tag).
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::ExprKind;
using ast::StmtKind;

bool checks_image(const Model& m, const ast::Stmt& s) {
  bool found = false;
  each_expr(s, [&](const ast::Expr& root) {
    each_subexpr(root, [&](const ast::Expr& e) {
      if (e.kind != ExprKind::Call || e.items.at(0)->kind != ExprKind::Member) return;
      const ast::Expr& callee = *e.items[0];
      plugins::Kind k;
      if ((callee.text == "exists" || callee.text == "digest") && m.plugin_kind(*callee.items.at(0), k) && k == plugins::Kind::Images)
        found = true;
    });
  });
  return found;
}

void check(Context& cx) {
  const Model& m = cx.model;
  if (!m.pipeline()) return;
  bool images = false, checked = false;
  for (const ast::StmtPtr& s : m.pipeline()->body) {
    images |= s->kind == StmtKind::Plugin && s->word.text == "images";
    checked |= (s->kind == StmtKind::Let || s->kind == StmtKind::Guard) && checks_image(m, *s);
  }
  if (!images) return;
  for (const Item& stage : m.stages()) {
    if (checked) return;
    bool deploys = false;
    m.walk(stage.stmt->body, stage, [&](const Item& it, const StepCtx& ctx) {
      if (checked || deploys || ctx.handler || ctx.undo) return false;
      if (checks_image(m, *it.stmt)) checked = true;
      else if (it.stmt->kind == StmtKind::Run && stage.stmt->word.text == "deploy") deploys = true;
      return !checked && !deploys;
    });
    if (deploys)
      if (Diagnostic* d = cx.report(stage, stage.stmt->keyword,
                                    describe_stage(*stage.stmt) + " starts before anything checked that the image exists", true))
        d->help = "check it first, as in 'let digest = img.digest(version)' or 'if not img.exists(version) { abort \"...\" }'";
  }
}

}  // namespace

const Rule& rule_deploy_without_image_check() {
  static const Rule r{{"deploy-without-image-check", Level::Warning,
                       "A deploy runs before anything checked that the image exists in the declared image registry", {}},
                      check};
  return r;
}

}  // namespace gray::lint
