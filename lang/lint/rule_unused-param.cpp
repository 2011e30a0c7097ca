// unused-param: a run parameter or a template parameter that nothing uses.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

void check(Context& cx) {
  const Model& m = cx.model;
  const CheckFacts& f = m.facts();
  for (const ast::StmtPtr& item : m.module().items) {
    Item at{item.get(), nullptr, nullptr, m.module_index()};
    if (item->kind == StmtKind::Template) {
      for (const ast::Param& p : item->params)
        if (!f.used(p.name.span))
          cx.report(at, p.name.span, "parameter '" + p.name.text + "' of template '" + item->name.text + "' is never used");
    } else if (item->kind == StmtKind::Pipeline) {
      for (const ast::StmtPtr& s : item->body)
        if (s->kind == StmtKind::Param && !f.used(s->name.span))
          if (Diagnostic* d = cx.report(at, s->name.span, "parameter '" + s->name.text + "' is never used"))
            d->help = "remove it, or use it: a run parameter nothing reads is a --set that does nothing";
    }
  }
}

}  // namespace

const Rule& rule_unused_param() {
  static const Rule r{{"unused-param", Level::Warning, "A run or template parameter is never used", {}}, check};
  return r;
}

}  // namespace gray::lint
