// unused-declaration: a `let`, metric, plugin instance or import that nothing uses.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

void lets(Context& cx, const std::vector<ast::StmtPtr>& body, const Item& parent) {
  for (const ast::StmtPtr& s : body) {
    Item it{s.get(), parent.env, parent.origin, parent.module};
    if (s->kind == StmtKind::Let && !cx.model.facts().used(s->name.span))
      cx.report(it, s->name.span, "let '" + s->name.text + "' is never used");
    lets(cx, s->body, it);
    lets(cx, s->else_body, it);
  }
}

void check(Context& cx) {
  const Model& m = cx.model;
  const CheckFacts& f = m.facts();
  for (const ast::StmtPtr& item : m.module().items) {
    Item at{item.get(), nullptr, nullptr, m.module_index()};
    if (item->kind == StmtKind::Import) {
      Span decl = item->name.empty() ? item->str_span : item->name.span;
      const std::string alias = item->name.empty() ? default_alias(item->str) : item->name.text;
      if (!f.used(decl)) cx.report(at, decl, "import '" + alias + "' is never used");
      continue;
    }
    if (item->kind == StmtKind::Template) {
      lets(cx, item->body, at);
      continue;
    }
    if (item->kind != StmtKind::Pipeline) continue;
    for (const ast::StmtPtr& s : item->body) {
      Item it{s.get(), nullptr, nullptr, m.module_index()};
      switch (s->kind) {
        case StmtKind::Let:
        case StmtKind::Metric:
        case StmtKind::Plugin:
          if (!f.used(s->name.span)) {
            std::string what = s->kind == StmtKind::Let ? "let" : s->kind == StmtKind::Metric ? "metric" : s->word.text;
            cx.report(it, s->name.span, what + " '" + s->name.text + "' is never used");
          }
          break;
        case StmtKind::Stage: lets(cx, s->body, it); break;
        default: break;
      }
    }
  }
}

}  // namespace

const Rule& rule_unused_declaration() {
  static const Rule r{{"unused-declaration", Level::Warning, "A let, metric, plugin instance or import is never used", {}}, check};
  return r;
}

}  // namespace gray::lint
