// hold-shorter-than-samples: a ramp's hold (or a stage's bake time, its waits) is shorter than a
// guard of the stage needs to collect its samples (samples x every). The stage then lasts
// longer than written: it waits for the samples.
#include "lang/lint/rule.h"

namespace gray::lint {
namespace {

using ast::StmtKind;

void check(Context& cx) {
  const Model& m = cx.model;
  for (const Scope& s : m.scopes()) {
    if (!s.stage) continue;
    const bool ramp = s.item.stmt->word.text == "ramp";
    std::vector<Item> guards;
    std::optional<Item> hold;
    std::optional<Item> last_wait;
    Value bake = duration(0);
    for (const Item& it : m.expand(s.item.stmt->body, s.item)) {
      const ast::Stmt& st = *it.stmt;
      if (st.kind == StmtKind::Guard) guards.push_back(it);
      if (st.kind == StmtKind::Setting && st.word.text == "hold") hold = it;
      if (st.kind == StmtKind::Wait) {
        Value w = m.eval(*st.args.at(0), it.env);
        if (w.kind != Value::Duration) bake = {};
        else if (bake.known()) {
          bake.num += w.num;
          bake.bound |= w.bound;
        }
        last_wait = it;
      }
    }
    if (guards.empty()) continue;
    // What the stage's time is: a ramp's hold, else the sum of its waits (its bake time).
    Value time;
    Item at;
    const ast::Expr* where = nullptr;
    if (ramp && hold) {
      time = m.eval(*hold->stmt->args.at(0), hold->env);
      at = *hold;
      where = hold->stmt->args[0].get();
    } else if (!ramp && last_wait) {
      time = bake;
      at = *last_wait;
      where = last_wait->stmt->args[0].get();
    }
    if (!where || time.kind != Value::Duration) continue;
    for (const Item& g : guards) {
      GuardTiming t = guard_timing(m, g);
      if (t.samples.kind != Value::Number || t.every.kind != Value::Duration || t.samples.num < 1) continue;
      double needed = t.samples.num * t.every.num;
      if (time.num >= needed) continue;
      std::string what = ramp ? "hold " + show(time) + " is shorter than" : "the stage waits " + show(time) + " in all, less than";
      std::string need = t.samples.num == 1 ? "for its first evaluation (every " + show(t.every) + ")"
                                            : "for " + show(t.samples) + " samples, one every " + show(t.every);
      cx.report(at, where->span,
                what + " the " + show_duration(needed) + " that " + guard_name(*g.stmt) + " needs " + need +
                    (ramp ? "; each step will last " : "; the stage will last ") + show_duration(needed),
                time.bound || t.samples.bound || t.every.bound || (g.origin != at.origin));
      break;
    }
  }
}

}  // namespace

const Rule& rule_hold_shorter_than_samples() {
  static const Rule r{{"hold-shorter-than-samples", Level::Warning,
                       "A ramp's hold or a stage's bake time is too short for a guard to collect its samples", {}},
                      check};
  return r;
}

}  // namespace gray::lint
