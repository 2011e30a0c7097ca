// `gray plan`: the ordered actions a run would take, with parameters expanded, the hosts each
// stage works on, and the guards that protect each stage. Nothing is called: values that only
// the running world knows (metrics, live counts, the current host) stay as written.
#include "runtime/plan.h"

#include <nlohmann/json.hpp>

#include "runtime/eval.h"
#include "runtime/interp.h"

namespace gray {

namespace {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;

class Planner {
 public:
  Planner(const Project& project, int module, const std::map<std::string, std::string>& params)
      : project_(project), module_(module), params_(params) {}

  nlohmann::json build() {
    const Stmt* pipeline = nullptr;
    for (const ast::StmtPtr& item : project_.module(module_).ast.items)
      if (item->kind == StmtKind::Pipeline) pipeline = item.get();
    if (!pipeline) throw SetupError{{}, "this file declares no pipeline"};
    auto env = std::make_shared<Env>(module_env(module_));
    nlohmann::json doc = {{"format", "gray-plan"}, {"version", 1}, {"pipeline", pipeline->str}};
    nlohmann::json params = nlohmann::json::object();
    nlohmann::json plugins = nlohmann::json::array();
    for (const ast::StmtPtr& sp : pipeline->body) {
      const Stmt& s = *sp;
      if (s.kind == StmtKind::Param) {
        Value v;
        auto given = params_.find(s.name.text);
        if (given != params_.end()) v = param_value(given->second, s.word.text, s.name.span);
        else if (s.value) v = eval(*s.value, *env, nullptr);
        else throw SetupError{s.name.span, "missing required parameter " + s.name.text + "; give it with --set " + s.name.text + "=..."};
        env->set(s.name.text, v);
        params[s.name.text] = v.shown();
      } else if (s.kind == StmtKind::Let) {
        try {
          env->set(s.name.text, eval(*s.value, *env, nullptr));
        } catch (const NotStatic&) {
          env->set(s.name.text, Value::string("<" + s.name.text + " at run time>"));
        }
      } else if (s.kind == StmtKind::Plugin) {
        env->set(s.name.text, Value::named(Value::Kind::Plugin, s.name.text));
        plugins.push_back({{"name", s.name.text}, {"kind", s.word.text}, {"driver", s.word2.text}});
      } else if (s.kind == StmtKind::Metric) {
        env->set(s.name.text, Value::named(Value::Kind::Metric, s.name.text));
      }
    }
    for (const auto& [name, _] : params_)
      if (!params.contains(name)) throw SetupError{pipeline->keyword, "the pipeline has no parameter '" + name + "'"};
    doc["params"] = params;
    doc["plugins"] = plugins;

    nlohmann::json pipeline_guards = nlohmann::json::array();
    std::string on_breach = "rollback";
    for (const ast::StmtPtr& sp : pipeline->body) {
      if (sp->kind == StmtKind::Guard) pipeline_guards.push_back(guard(*sp, *env));
      if (sp->kind == StmtKind::On && sp->word.text == "breach") on_breach = sp->word2.text;
    }
    nlohmann::json stages = nlohmann::json::array();
    nlohmann::json rollback;
    stage_list(pipeline->body, env, pipeline_guards, on_breach, stages, rollback);
    doc["stages"] = stages;
    if (rollback.is_null()) rollback = {{"name", "rollback"}, {"actions", nlohmann::json::array()}};
    doc["rollback"] = rollback;
    return doc;
  }

 private:
  std::shared_ptr<const Env> module_env(int m) {
    auto env = std::make_shared<Env>();
    env->set("__module", Value::number(m));
    env->set("run_id", Value::string("<run id>"));
    return env;
  }

  // Text of an expression: its value when it is known before the run, else as written.
  std::string show(const Expr& e, const Env& env) {
    try {
      Value v = e.kind == ExprKind::String ? interpolate_known(e, env) : eval(e, env, nullptr);
      return v.shown();
    } catch (const NotStatic&) {
    } catch (const EvalError&) {
    }
    return source(e.span);
  }

  // A string with what is known filled in and the rest (${host}) kept as written.
  Value interpolate_known(const Expr& e, const Env& env) {
    std::string out;
    bool secret = false;
    for (const ast::StrPart& p : e.parts) {
      if (!p.is_var) {
        out += p.text;
        continue;
      }
      const Value* v = env.find(p.path.at(0));
      if (!v || p.path.size() > 1 || v->kind == Value::Kind::Host) {
        out += "${" + p.text + "}";
        continue;
      }
      secret |= v->secret();
      out += v->text();
    }
    return Value::string(out, secret);
  }

  std::string source(Span s) {
    const SourceFile* f = project_.sources().get(s.file);
    return f ? std::string(f->slice(s)) : "?";
  }

  nlohmann::json guard(const Stmt& s, const Env& env) {
    std::string text = s.str.empty() ? source(s.span).substr(6) : s.str;
    nlohmann::json g = {{"guard", text}};
    for (const ast::Clause& c : s.clauses) g[c.key] = c.value ? show(*c.value, env) : c.word.text;
    if (!g.contains("every")) g["every"] = "30s";
    return g;
  }

  void stage_list(const std::vector<ast::StmtPtr>& items, std::shared_ptr<Env> env, const nlohmann::json& pipeline_guards,
                  const std::string& on_breach, nlohmann::json& stages, nlohmann::json& rollback) {
    for (const ast::StmtPtr& sp : items) {
      const Stmt& s = *sp;
      if (s.kind == StmtKind::Use) {
        auto tenv = instantiate(s, *env);
        if (tenv.first) stage_list(tenv.first->body, tenv.second, pipeline_guards, on_breach, stages, rollback);
        continue;
      }
      if (s.kind != StmtKind::Stage) continue;
      nlohmann::json st = {{"kind", s.word.text}, {"name", s.name.text}};
      nlohmann::json guards = pipeline_guards;
      nlohmann::json actions = nlohmann::json::array();
      std::string breach = on_breach;
      stage_body(s.body, env, st, guards, actions, breach, s.word.text == "ramp");
      if (s.word.text == "rollback") {
        st["name"] = s.name.empty() ? "rollback" : s.name.text;
        st["actions"] = actions;
        rollback = st;
        continue;
      }
      st["guards"] = guards;
      st["on_breach"] = breach;
      st["actions"] = actions;
      stages.push_back(st);
    }
  }

  void stage_body(const std::vector<ast::StmtPtr>& body, std::shared_ptr<Env> env, nlohmann::json& st, nlohmann::json& guards,
                  nlohmann::json& actions, std::string& breach, bool ramp) {
    const Expr* via = nullptr;
    std::vector<const Expr*> steps;
    const Expr* hold = nullptr;
    std::shared_ptr<Env> ramp_env = env;
    for (const ast::StmtPtr& sp : body) {
      const Stmt& s = *sp;
      if (s.kind == StmtKind::Setting) {
        const std::string& k = s.word.text;
        if (k == "on") st["on"] = show(*s.args[0], *env);
        else if (k == "batch") st["batch"] = show(*s.args[0], *env);
        else if (k == "parallel") st["parallel"] = show(*s.args[0], *env);
        else if (k == "via") via = s.args[0].get(), ramp_env = env;
        else if (k == "hold") hold = s.args[0].get(), ramp_env = env;
        else if (k == "steps")
          for (const ast::ExprPtr& e : s.args) steps.push_back(e.get()), ramp_env = env;
      } else if (s.kind == StmtKind::Guard) {
        guards.push_back(guard(s, *env));
      } else if (s.kind == StmtKind::On) {
        if (s.word.text == "breach") breach = s.word2.text;
        nlohmann::json h = {{"on", s.word.text}};
        if (!s.word2.empty()) h["action"] = s.word2.text;
        else {
          nlohmann::json inner = nlohmann::json::array();
          steps_of(s.body, env, inner);
          h["actions"] = inner;
        }
        st["handlers"].push_back(h);
      } else if (s.kind == StmtKind::Use) {
        auto t = instantiate(s, *env);
        if (t.first) stage_body(t.first->body, t.second, st, guards, actions, breach, ramp);
      } else {
        steps_of_one(s, env, actions);
      }
    }
    if (ramp && via) {
      st["via"] = source(via->span);
      std::vector<Value> weights;
      for (const Expr* e : steps) {
        try {
          Value v = eval(*e, *ramp_env, nullptr);
          if (v.kind == Value::Kind::List)
            for (const Value& w : v.items()) weights.push_back(w);
          else
            weights.push_back(v);
        } catch (...) {
          weights.push_back(Value::string(source(e->span)));
        }
      }
      std::string h = hold ? show(*hold, *ramp_env) : "";
      for (const Value& w : weights) {
        nlohmann::json a = {{"action", source(via->span) + ".weight(canary: " + w.text() + ")"}, {"undo", "restore the previous weight"}};
        if (!h.empty()) a["hold"] = h;
        actions.push_back(a);
      }
    }
  }

  void steps_of(const std::vector<ast::StmtPtr>& body, std::shared_ptr<Env> env, nlohmann::json& out) {
    for (const ast::StmtPtr& sp : body) steps_of_one(*sp, env, out);
  }

  void steps_of_one(const Stmt& s, std::shared_ptr<Env> env, nlohmann::json& out) {
    auto add = [&](std::string text) -> nlohmann::json& {
      out.push_back({{"action", std::move(text)}});
      return out.back();
    };
    auto clause_text = [&](const Stmt& st) {
      std::string t;
      for (const ast::Clause& c : st.clauses) t += " " + c.key + " " + (c.value ? show(*c.value, *env) : c.word.text);
      return t;
    };
    switch (s.kind) {
      case StmtKind::Run: add("run " + show(*s.args[0], *env) + clause_text(s)); break;
      case StmtKind::Probe: add("probe " + s.word.text + " " + show(*s.args[0], *env) + clause_text(s)); break;
      case StmtKind::Wait: add("wait " + show(*s.args[0], *env)); break;
      case StmtKind::WaitUntil: add("wait until " + source(s.args[0]->span) + clause_text(s)); break;
      case StmtKind::Approve: add("approve" + (s.str.empty() ? "" : " \"" + s.str + "\"") + clause_text(s)); break;
      case StmtKind::Route:
        if (s.match_kind == "clear") add("route " + s.name.text + " clear");
        else add("route " + s.name.text + " " + source({s.span.file, s.args[0]->span.begin, s.span.end}).insert(0, s.match_kind + " "));
        out.back()["undo"] = "remove the route";
        break;
      case StmtKind::Drain: {
        std::string who = s.args.empty() ? "${host}" : show(*s.args[0], *env);
        add("drain " + s.name.text + " " + who + clause_text(s))["undo"] = "restore " + s.name.text + " " + who;
        break;
      }
      case StmtKind::Restore: add("restore " + s.name.text + " " + (s.args.empty() ? "${host}" : show(*s.args[0], *env))); break;
      case StmtKind::Scale: add("scale " + s.name.text + " " + s.word.text + " to " + show(*s.args[0], *env)); break;
      case StmtKind::Phase: add("phase \"" + s.str + "\""); break;
      case StmtKind::Abort: add("abort" + (s.str.empty() ? "" : " \"" + s.str + "\"")); break;
      case StmtKind::Undo:
        if (s.word.text == "all") {
          add("undo everything done so far, newest first");
        } else if (!out.empty()) {
          std::string u = s.args.empty() ? "the block at line " + std::to_string(line(s.span)) : "run " + show(*s.args[0], *env);
          out.back()["undo"] = u;
        }
        break;
      case StmtKind::If: {
        nlohmann::json& a = add("if " + source(s.args[0]->span));
        nlohmann::json then = nlohmann::json::array(), otherwise = nlohmann::json::array();
        steps_of(s.body, env, then);
        steps_of(s.else_body, env, otherwise);
        a["then"] = then;
        if (s.has_else) a["else"] = otherwise;
        break;
      }
      case StmtKind::Use: {
        auto t = instantiate(s, *env);
        if (t.first) steps_of(t.first->body, t.second, out);
        break;
      }
      case StmtKind::Call: add(source(s.span)); break;
      case StmtKind::Let: {
        try {
          env->set(s.name.text, eval(*s.value, *env, nullptr));
        } catch (...) {
        }
        break;
      }
      default: break;
    }
  }

  uint32_t line(Span s) {
    const SourceFile* f = project_.sources().get(s.file);
    return f ? f->line_col(s.begin).line : 0;
  }

  std::pair<const Stmt*, std::shared_ptr<Env>> instantiate(const Stmt& use, const Env& caller) {
    const Expr& call = *use.args.at(0);
    const Expr& callee = *call.items.at(0);
    const Value* mv = caller.find("__module");
    int m = mv ? static_cast<int>(mv->num) : module_;
    if (callee.kind == ExprKind::Member) {
      int found = -1;
      for (const Import& imp : project_.module(m).imports)
        if (imp.alias == callee.items.at(0)->text) found = imp.module;
      if (found < 0) return {nullptr, nullptr};
      m = found;
    }
    const Stmt* tmpl = nullptr;
    for (const ast::StmtPtr& item : project_.module(m).ast.items)
      if (item->kind == StmtKind::Template && item->name.text == callee.text) tmpl = item.get();
    if (!tmpl) return {nullptr, nullptr};
    auto env = std::make_shared<Env>(module_env(m));
    size_t pos = 0;
    std::vector<bool> bound(tmpl->params.size());
    for (const ast::Field& f : call.fields) {
      size_t idx = tmpl->params.size();
      if (f.name.empty()) idx = pos++;
      else
        for (size_t k = 0; k < tmpl->params.size(); ++k)
          if (tmpl->params[k].name.text == f.name) idx = k;
      if (idx >= tmpl->params.size()) continue;
      bound[idx] = true;
      const std::string& pname = tmpl->params[idx].name.text;
      if (f.value->kind == ExprKind::Name)
        if (const Value* v = caller.find(f.value->text); v && (v->kind == Value::Kind::Plugin || v->kind == Value::Kind::Metric)) {
          env->set(pname, *v);
          continue;
        }
      try {
        env->set(pname, f.value->kind == ExprKind::String ? interpolate_known(*f.value, caller) : eval(*f.value, caller, nullptr));
      } catch (...) {
        env->set(pname, Value::string(source(f.value->span)));
      }
    }
    for (size_t k = 0; k < tmpl->params.size(); ++k)
      if (!bound[k] && tmpl->params[k].value) {
        try {
          env->set(tmpl->params[k].name.text, eval(*tmpl->params[k].value, *env, nullptr));
        } catch (...) {
        }
      }
    return {tmpl, env};
  }

  const Project& project_;
  int module_;
  std::map<std::string, std::string> params_;
};

void render_actions(std::string& out, const nlohmann::json& actions, const std::string& indent, const std::string& number) {
  int i = 0;
  for (const auto& a : actions) {
    std::string n = number + std::to_string(++i);
    out += indent + n + ". " + a.value("action", "") ;
    if (a.contains("hold")) out += ", then hold " + a["hold"].get<std::string>();
    out += "\n";
    if (a.contains("undo")) out += indent + std::string(n.size() + 2, ' ') + "undo: " + a["undo"].get<std::string>() + "\n";
    if (a.contains("then")) {
      out += indent + std::string(n.size() + 2, ' ') + "then:\n";
      render_actions(out, a["then"], indent + std::string(n.size() + 4, ' '), n + ".");
    }
    if (a.contains("else")) {
      out += indent + std::string(n.size() + 2, ' ') + "else:\n";
      render_actions(out, a["else"], indent + std::string(n.size() + 4, ' '), n + ".");
    }
  }
}

}  // namespace

nlohmann::json build_plan(const Project& project, int module, const std::map<std::string, std::string>& params) {
  return Planner(project, module, params).build();
}

std::string render_plan_text(const nlohmann::json& plan) {
  std::string out = "plan for pipeline \"" + plan["pipeline"].get<std::string>() + "\"\n";
  if (!plan["params"].empty()) {
    out += "parameters:";
    for (const auto& [k, v] : plan["params"].items()) out += " " + k + "=" + v.get<std::string>();
    out += "\n";
  }
  for (const auto& p : plan["plugins"])
    out += "plugin " + p["kind"].get<std::string>() + " " + p["name"].get<std::string>() + " = " + p["driver"].get<std::string>() + "\n";
  int n = 0;
  for (const auto& st : plan["stages"]) {
    ++n;
    out += "\n" + std::to_string(n) + ". " + st["kind"].get<std::string>() + " " + st["name"].get<std::string>();
    if (st.contains("on")) out += " on " + st["on"].get<std::string>();
    if (st.contains("batch")) out += ", batch " + st["batch"].get<std::string>();
    if (st.contains("parallel")) out += ", parallel " + st["parallel"].get<std::string>();
    if (st.contains("via")) out += " via " + st["via"].get<std::string>();
    out += "\n";
    if (!st["guards"].empty()) {
      out += "   guarded by (on breach: " + st["on_breach"].get<std::string>() + "):\n";
      for (const auto& g : st["guards"]) {
        out += "     - " + g["guard"].get<std::string>();
        for (const auto& [k, v] : g.items())
          if (k != "guard") out += ", " + k + " " + v.get<std::string>();
        out += "\n";
      }
    }
    render_actions(out, st["actions"], "   ", std::to_string(n) + ".");
    if (st.contains("handlers"))
      for (const auto& h : st["handlers"]) {
        out += "   on " + h["on"].get<std::string>() + ":";
        if (h.contains("action")) out += " " + h["action"].get<std::string>() + "\n";
        else {
          out += "\n";
          render_actions(out, h["actions"], "     ", "");
        }
      }
  }
  out += "\nrollback (on breach or failure): undo what was done, newest first";
  const auto& rb = plan["rollback"]["actions"];
  if (rb.empty()) out += "\n";
  else {
    out += ", then:\n";
    render_actions(out, rb, "   ", "R");
  }
  return out;
}

}  // namespace gray
