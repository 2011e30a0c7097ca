// duplicate-server: a gateway lists a server twice, or in both its stable and its canary group,
// so the traffic split it is given is not the split it applies.
#include "lang/lint/rule.h"

#include <map>

namespace gray::lint {
namespace {

using ast::ExprKind;

void check(Context& cx) {
  const Model& m = cx.model;
  if (!m.pipeline()) return;
  for (const ast::StmtPtr& p : m.pipeline()->body) {
    if (p->kind != ast::StmtKind::Plugin || p->word.text != "gateway" || !p->value) continue;
    Item at{p.get(), nullptr, nullptr, m.module_index()};
    std::map<std::string, std::string> group_of;  // server -> the group it was first listed in
    for (const ast::Field& f : p->value->fields) {
      if ((f.name != "stable" && f.name != "canary") || f.value->kind != ExprKind::List) continue;
      for (const ast::ExprPtr& i : f.value->items) {
        Value v = m.eval(*i, nullptr);
        if (v.kind != Value::String) continue;
        auto [it, fresh] = group_of.emplace(v.str, f.name);
        if (fresh) continue;
        if (it->second == f.name)
          cx.report(at, i->span, "server '" + v.str + "' is listed twice in the " + f.name + " group of '" + p->name.text + "'");
        else
          cx.report(at, i->span, "server '" + v.str + "' is in both the stable and the canary group of '" + p->name.text + "'");
      }
    }
  }
}

}  // namespace

const Rule& rule_duplicate_server() {
  static const Rule r{{"duplicate-server", Level::Error, "A gateway lists a server twice or in both groups", {}}, check};
  return r;
}

}  // namespace gray::lint
