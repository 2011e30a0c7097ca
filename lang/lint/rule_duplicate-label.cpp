// duplicate-label: two guards with one label watch the same stage (a stage's guards, those its
// step templates add, and the pipeline's), so status and the journal cannot tell them apart.
#include "lang/lint/rule.h"

#include <map>

namespace gray::lint {
namespace {

void check(Context& cx) {
  const Model& m = cx.model;
  std::map<std::string, Item> pipeline;
  for (const Item& g : m.pipeline_guards()) {
    if (!g.stmt->str_span.valid()) continue;
    auto [it, fresh] = pipeline.emplace(g.stmt->str, g);
    if (!fresh) cx.report(g, g.stmt->str_span, "guard label '" + g.stmt->str + "' is used twice by the pipeline's guards");
  }
  for (const Scope& s : m.scopes()) {
    std::map<std::string, Item> seen;
    const std::string where = s.stage ? describe_stage(*s.item.stmt) : "template '" + s.item.stmt->name.text + "'";
    m.walk(s, [&](const Item& g, const StepCtx&) {
      if (g.stmt->kind != ast::StmtKind::Guard || !g.stmt->str_span.valid()) return true;
      const std::string& label = g.stmt->str;
      if (auto p = pipeline.find(label); p != pipeline.end() && !s.standalone) {
        cx.report(g, g.stmt->str_span, "guard label '" + label + "' is also the label of a pipeline guard", true);
        return true;
      }
      auto [it, fresh] = seen.emplace(label, g);
      if (!fresh)
        cx.report(g, g.stmt->str_span, "guard label '" + label + "' is used twice in " + where + "; status and the journal could not tell them apart",
                  it->second.origin != g.origin);
      return true;
    });
  }
}

}  // namespace

const Rule& rule_duplicate_label() {
  static const Rule r{{"duplicate-label", Level::Warning, "Two guards watching one stage have the same label", {}}, check};
  return r;
}

}  // namespace gray::lint
