// The checker: one pass over each module with a chain of scopes. Templates are checked once,
// against their declared parameter types (they are hygienic: a template sees only its
// parameters, its module and the builtins), and every use is checked against the parameters.
#include "lang/check.h"

#include <map>
#include <set>
#include <unordered_map>

#include "lang/codes.h"
#include "lang/text.h"
#include "plugins/catalog.h"

namespace gray {
namespace {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;
using plugins::Kind;
using plugins::Type;

// ---- symbols and scopes -------------------------------------------------------

// The same order as CheckFacts::RefKind.
enum class SymKind { Value, Metric, Plugin, Import, Template, Function, Host };

struct Sym {
  SymKind kind = SymKind::Value;
  Type type = Type::Any;  // value type; for metrics, the type of one reading
  Kind plugin = Kind::Gateway;
  Span span;
  const Stmt* decl = nullptr;   // template or metric declaration
  int module = -1;              // import target
  std::string what;             // "param", "let", ... for messages
};

class Scope {
 public:
  explicit Scope(const Scope* parent) : parent_(parent) {}
  const Sym* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent_)
      if (auto it = s->names_.find(name); it != s->names_.end()) return &it->second;
    return nullptr;
  }
  const Sym* find_local(const std::string& name) const {
    auto it = names_.find(name);
    return it == names_.end() ? nullptr : &it->second;
  }
  void put(const std::string& name, Sym s) { names_[name] = std::move(s); }
  void names(std::vector<std::string>& out) const {
    for (const Scope* s = this; s; s = s->parent_)
      for (auto& [n, _] : s->names_) out.push_back(n);
  }

 private:
  const Scope* parent_;
  std::unordered_map<std::string, Sym> names_;
};

bool is_numeric(Type t) { return t == Type::Number || t == Type::Percent || t == Type::Duration || t == Type::Bytes || t == Type::Any; }

// Dimension of a numeric type; numbers and percentages share one (5% == 0.05).
int dimension(Type t) {
  switch (t) {
    case Type::Number:
    case Type::Percent: return 1;
    case Type::Duration: return 2;
    case Type::Bytes: return 3;
    default: return 0;
  }
}

bool accepts(Type want, Type got) {
  if (want == Type::Any || got == Type::Any) return true;
  if (want == got) return true;
  if (want == Type::Percent && got == Type::Number) return false;
  if ((want == Type::Number && got == Type::Percent)) return true;
  if (want == Type::Hosts && (got == Type::HostsPlugin || got == Type::Host)) return true;
  if (want == Type::String && got == Type::Host) return true;
  return false;
}

std::string a_type(Type t) {
  if (t == Type::Percent) return "a percentage";
  std::string n = plugins::type_name(t);
  bool vowel = !n.empty() && std::string("aeiou").find(n[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + n;
}

bool parse_value_type(const std::string& s, Type& out) {
  static const std::pair<const char*, Type> names[] = {
      {"string", Type::String}, {"number", Type::Number},     {"duration", Type::Duration}, {"percent", Type::Percent},
      {"bytes", Type::Bytes},   {"bool", Type::Bool},         {"list", Type::List},         {"map", Type::Map},
      {"hosts", Type::Hosts},   {"gateway", Type::Gateway},   {"registry", Type::Registry}, {"metrics", Type::Metrics},
      {"images", Type::Images}, {"metric", Type::Metric},     {"any", Type::Any}};
  for (auto& [n, t] : names)
    if (s == n) {
      out = t;
      return true;
    }
  return false;
}

const std::vector<std::string_view>& value_type_names() {
  static const std::vector<std::string_view> v = {"string", "number", "duration", "percent", "bytes",  "bool",   "list", "map",
                                                  "hosts",  "gateway", "registry", "metrics", "images", "metric", "any"};
  return v;
}

bool plugin_of_type(Type t, Kind& k) {
  switch (t) {
    case Type::Gateway: k = Kind::Gateway; return true;
    case Type::Registry: k = Kind::Registry; return true;
    case Type::HostsPlugin: k = Kind::Hosts; return true;
    case Type::Metrics: k = Kind::Metrics; return true;
    case Type::Images: k = Kind::Images; return true;
    default: return false;
  }
}

// ---- per-template facts found while checking it ---------------------------------

struct TemplateInfo {
  bool stages = false;               // a body of stages (use at pipeline level) rather than steps
  bool uses_host = false;            // refers to `host`: needs a stage with `on`
  std::set<std::string> settings;    // stage settings a step template provides (via, steps, ...)
};

// ---- the checker ------------------------------------------------------------------

struct Ctx {
  const Scope* scope = nullptr;
  const Stmt* stage = nullptr;   // enclosing stage
  bool host = false;             // `host` is bound
  bool rollback = false;         // inside the rollback stage or an `on` handler
  bool in_template = false;
  TemplateInfo* tmpl = nullptr;  // the template being checked
};

class Checker {
 public:
  Checker(const Project& project, Diagnostics& diags, CheckFacts* facts) : project_(project), diags_(diags), facts_(facts) {}

  void run() {
    builtins_ = std::make_unique<Scope>(nullptr);
    builtins_->put("env", {SymKind::Function, Type::String, Kind::Gateway, {}, nullptr, -1, "function"});
    builtins_->put("len", {SymKind::Function, Type::Number, Kind::Gateway, {}, nullptr, -1, "function"});
    builtins_->put("min", {SymKind::Function, Type::Any, Kind::Gateway, {}, nullptr, -1, "function"});
    builtins_->put("max", {SymKind::Function, Type::Any, Kind::Gateway, {}, nullptr, -1, "function"});
    builtins_->put("run_id", {SymKind::Value, Type::String, Kind::Gateway, {}, nullptr, -1, "builtin"});
    builtins_->put("pipeline", {SymKind::Value, Type::String, Kind::Gateway, {}, nullptr, -1, "builtin"});

    for (size_t i = 0; i < project_.module_count(); ++i) module_scope(static_cast<int>(i));
    for (size_t i = 0; i < project_.module_count(); ++i) {
      const LoadedModule& m = project_.module(static_cast<int>(i));
      if (!m.syntax_ok) continue;
      check_module(static_cast<int>(i), m);
    }
  }

 private:
  // ---- modules ----

  Scope& module_scope(int index) {
    auto it = module_scopes_.find(index);
    if (it != module_scopes_.end()) return *it->second;
    auto scope = std::make_unique<Scope>(builtins_.get());
    Scope& s = *scope;
    module_scopes_[index] = std::move(scope);
    const LoadedModule& m = project_.module(index);
    size_t imp = 0;
    for (const ast::StmtPtr& item : m.ast.items) {
      if (item->kind == StmtKind::Import) {
        const Import& in = m.imports.at(imp++);
        Span at = item->name.empty() ? item->str_span : item->name.span;
        declare(s, in.alias, {SymKind::Import, Type::Module, Kind::Gateway, at, nullptr, in.module, "import"}, m.syntax_ok);
      } else if (item->kind == StmtKind::Template) {
        declare(s, item->name.text, {SymKind::Template, Type::Template, Kind::Gateway, item->name.span, item.get(), index, "template"},
                m.syntax_ok);
      }
    }
    return s;
  }

  void declare(Scope& s, const std::string& name, Sym sym, bool report = true) {
    if (const Sym* old = s.find_local(name)) {
      if (report) {
        Diagnostic& d = diags_.error(code::kDuplicateName, sym.span, "'" + name + "' is already declared in this scope");
        if (old->span.valid()) d.secondary.push_back({old->span, "first declared here (" + old->what + ")"});
      }
      return;
    }
    s.put(name, std::move(sym));
  }

  bool is_imported(int index) const {
    for (size_t i = 0; i < project_.module_count(); ++i)
      for (const Import& imp : project_.module(static_cast<int>(i)).imports)
        if (imp.module == index) return true;
    return false;
  }

  void check_module(int index, const LoadedModule& m) {
    Scope& scope = module_scope(index);
    const Stmt* first_pipeline = nullptr;
    // Templates first, so their shape is known when a pipeline uses them.
    for (const ast::StmtPtr& item : m.ast.items)
      if (item->kind == StmtKind::Template) template_info(index, *item);
    for (const ast::StmtPtr& item : m.ast.items) {
      if (item->kind != StmtKind::Pipeline) continue;
      if (first_pipeline) {
        Diagnostic& d = diags_.error(code::kModuleShape, item->keyword, "a file holds one pipeline; this is the second");
        d.secondary.push_back({first_pipeline->keyword, "the first pipeline is here"});
        continue;
      }
      first_pipeline = item.get();
      if (is_imported(index)) {
        Diagnostic& d = diags_.error(code::kModuleShape, item->keyword, "an imported module cannot declare a pipeline");
        d.help = "keep pipelines in their own files and put shared parts in templates";
        continue;
      }
      check_pipeline(scope, *item);
    }
  }

  // ---- templates ----

  TemplateInfo& template_info(int module, const Stmt& t) {
    auto it = templates_.find(&t);
    if (it != templates_.end()) return it->second;
    TemplateInfo& info = templates_[&t];
    // Shape: stages, or steps; not both.
    const Stmt* first_stage = nullptr;
    const Stmt* first_step = nullptr;
    for (const ast::StmtPtr& s : t.body) {
      if (s->kind == StmtKind::Stage) {
        if (!first_stage) first_stage = s.get();
      } else if (s->kind != StmtKind::Metric && s->kind != StmtKind::Plugin && s->kind != StmtKind::Param) {
        if (!first_step) first_step = s.get();
      }
    }
    info.stages = first_stage != nullptr;
    if (first_stage && first_step) {
      Diagnostic& d = diags_.error(code::kModuleShape, first_step->keyword,
                                   "a template holds either stages or steps; this one mixes them");
      d.secondary.push_back({first_stage->keyword, "a stage is declared here"});
    }

    Scope scope(&module_scope(module));
    for (const ast::Param& p : t.params) {
      Type ty = Type::Any;
      if (!p.type.empty() && !parse_value_type(p.type.text, ty)) {
        Diagnostic& d = diags_.error(code::kType, p.type.span, "unknown type '" + p.type.text + "'");
        std::string best = closest_word(p.type.text, value_type_names());
        d.help = best.empty() ? "types are string, number, duration, percent, bytes, bool, list, map, hosts, gateway, registry, metrics, images, metric"
                              : "did you mean '" + best + "'?";
      }
      Ctx dctx;
      dctx.scope = &scope;
      if (p.value) {
        Type dt = expr_type(*p.value, dctx);
        if (p.type.empty()) ty = dt;
        else expect_type(*p.value, ty, dt, "the default of '" + p.name.text + "'");
      }
      Sym sym{SymKind::Value, ty, Kind::Gateway, p.name.span, nullptr, -1, "template parameter"};
      Kind k;
      if (plugin_of_type(ty, k)) sym = {SymKind::Plugin, ty, k, p.name.span, nullptr, -1, "template parameter"};
      if (ty == Type::Hosts) sym.type = Type::Hosts;
      if (ty == Type::Metric) sym = {SymKind::Metric, Type::Any, Kind::Gateway, p.name.span, nullptr, -1, "template parameter"};
      declare(scope, p.name.text, sym);
    }
    Ctx ctx;
    ctx.scope = &scope;
    ctx.in_template = true;
    ctx.tmpl = &info;
    if (info.stages) {
      check_items(scope, t.body, ctx, /*pipeline_level=*/true);
    } else {
      // A step template runs inside some stage; `host` is bound if that stage has `on`.
      Scope inner(&scope);
      inner.put("host", {SymKind::Host, Type::Host, Kind::Gateway, {}, nullptr, -1, "host"});
      ctx.scope = &inner;
      ctx.host = true;
      check_stage_body(inner, t.body, ctx, nullptr);
      for (const ast::StmtPtr& item : t.body)
        if (item->kind == StmtKind::Setting) info.settings.insert(item->word.text);
    }
    return info;
  }

  // ---- pipelines ----

  void check_pipeline(const Scope& module, const Stmt& p) {
    if (p.str.empty()) diags_.error(code::kValue, p.str_span, "the pipeline needs a name");
    Scope scope(&module);
    Ctx ctx;
    ctx.scope = &scope;
    check_items(scope, p.body, ctx, true);
  }

  // Items of a pipeline or of a stage template: declarations first (in order), then stages.
  void check_items(Scope& scope, const std::vector<ast::StmtPtr>& items, Ctx ctx, bool pipeline_level) {
    std::map<std::string, const Stmt*> stage_names;
    const Stmt* rollback = nullptr;
    for (const ast::StmtPtr& sp : items) {
      const Stmt& s = *sp;
      ctx.scope = &scope;
      switch (s.kind) {
        case StmtKind::Param: check_param(scope, s, ctx); break;
        case StmtKind::Let: check_let(scope, s, ctx); break;
        case StmtKind::Metric: check_metric(scope, s, ctx); break;
        case StmtKind::Plugin: check_plugin(scope, s, ctx); break;
        case StmtKind::Guard: check_guard(s, ctx); break;
        case StmtKind::On: check_on(s, ctx); break;
        case StmtKind::Use: check_use(s, ctx, /*stages=*/true); break;
        case StmtKind::Stage: {
          if (s.word.text == "rollback") {
            if (rollback) {
              Diagnostic& d = diags_.error(code::kDuplicateName, s.keyword, "a pipeline has at most one rollback stage");
              d.secondary.push_back({rollback->keyword, "the first rollback stage is here"});
            }
            rollback = &s;
          } else if (s.name.empty()) {
            diags_.error(code::kSyntax, s.keyword, "a " + s.word.text + " stage needs a name, as in '" + s.word.text + " canary { ... }'");
          }
          if (!s.name.empty()) {
            auto [it, fresh] = stage_names.emplace(s.name.text, &s);
            if (!fresh) {
              Diagnostic& d = diags_.error(code::kDuplicateName, s.name.span, "stage '" + s.name.text + "' is declared twice");
              d.secondary.push_back({it->second->name.span, "first declared here"});
            }
          }
          check_stage(scope, s, ctx);
          break;
        }
        default:
          if (ctx.in_template) break;  // a template mixing stages and steps is reported once, as such
          if (s.kind == StmtKind::Call)
            diags_.error(code::kPlacement, s.span, "a plugin operation is a step; put it inside a stage");
          else
            diags_.error(code::kPlacement, s.keyword,
                         std::string("'") + ast::stmt_kind_name(s.kind) + "' is a step; put it inside a stage");
          break;
      }
    }
    (void)pipeline_level;
  }

  void check_param(Scope& scope, const Stmt& s, const Ctx& ctx) {
    if (ctx.in_template) {
      diags_.error(code::kPlacement, s.keyword, "templates take parameters in their header, not with 'param'");
      return;
    }
    Type ty = Type::Any;
    if (!s.word.empty() && !parse_value_type(s.word.text, ty)) {
      Diagnostic& d = diags_.error(code::kType, s.word.span, "unknown type '" + s.word.text + "'");
      std::string best = closest_word(s.word.text, value_type_names());
      if (!best.empty()) d.help = "did you mean '" + best + "'?";
    }
    Kind k;
    if (plugin_of_type(ty, k) || ty == Type::Metric || ty == Type::Hosts)
      diags_.error(code::kType, s.word.span, "a run parameter holds a value; '" + s.word.text + "' is not one");
    if (s.value) {
      Type dt = expr_type(*s.value, ctx);
      if (s.word.empty()) ty = dt;
      else expect_type(*s.value, ty, dt, "the default of '" + s.name.text + "'");
    } else if (s.word.empty()) {
      ty = Type::String;  // supplied with --set, as text
    }
    declare(scope, s.name.text, {SymKind::Value, ty, Kind::Gateway, s.name.span, &s, -1, "param"});
  }

  void check_let(Scope& scope, const Stmt& s, const Ctx& ctx) {
    Type ty = expr_type(*s.value, ctx);
    Sym sym{SymKind::Value, ty, Kind::Gateway, s.name.span, &s, -1, "let"};
    Kind k;
    if (plugin_of_type(ty, k)) sym = {SymKind::Plugin, ty, k, s.name.span, nullptr, -1, "let"};
    declare(scope, s.name.text, sym);
  }

  void check_metric(Scope& scope, const Stmt& s, const Ctx& ctx) {
    Scope inner(ctx.scope);
    for (const ast::Param& p : s.params) {
      Type ty = Type::String;
      if (!p.type.empty() && !parse_value_type(p.type.text, ty))
        diags_.error(code::kType, p.type.span, "unknown type '" + p.type.text + "'");
      inner.put(p.name.text, {SymKind::Value, ty, Kind::Gateway, p.name.span, nullptr, -1, "metric parameter"});
    }
    Ctx ictx = ctx;
    ictx.scope = &inner;
    Type vt = expr_type(*s.value, ictx);
    if (!accepts(Type::Number, vt) && !is_numeric(vt))
      diags_.error(code::kType, s.value->span, "a metric reads a number; this is " + a_type(vt));
    Type ty = Type::Number;
    if (!s.word.empty()) {
      const std::string& u = s.word.text;
      if (u == "ms" || u == "s" || u == "m" || u == "h" || u == "d") ty = Type::Duration;
      else if (u == "%") ty = Type::Percent;
      else if (u == "B" || u == "KB" || u == "MB" || u == "GB" || u == "KiB" || u == "MiB" || u == "GiB") ty = Type::Bytes;
      else {
        Diagnostic& d = diags_.error(code::kBadUnit, s.word.span, "unknown unit '" + u + "' for a metric");
        d.help = "units are ms, s, m, h, d, %, B, KB, MB, GB, KiB, MiB, GiB";
      }
    }
    declare(scope, s.name.text, {SymKind::Metric, ty, Kind::Gateway, s.name.span, &s, -1, "metric"});
  }

  void check_plugin(Scope& scope, const Stmt& s, const Ctx& ctx) {
    Kind kind;
    if (!plugins::parse_kind(s.word.text, kind)) return;  // the grammar only admits the five kinds
    declare(scope, s.name.text, {SymKind::Plugin, plugins::instance_type(kind), kind, s.name.span, &s, -1, s.word.text});
    const plugins::DriverSpec* drv = plugins::find_driver(kind, s.word2.text);
    if (!drv) {
      Diagnostic& d = diags_.error(code::kUnknownDriver, s.word2.span,
                                   "unknown " + s.word.text + " driver '" + s.word2.text + "'");
      auto names = plugins::driver_names(kind);
      std::string best = closest_word(s.word2.text, names);
      std::string list;
      for (auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
      d.help = best.empty() ? s.word.text + " drivers are " + list : "did you mean '" + best + "'?";
      if (s.value) (void)expr_type(*s.value, ctx);
      return;
    }
    std::set<std::string> given;
    std::set<std::string> suggested;  // fields an unknown field was probably meant to be
    if (s.value) {
      for (const ast::Field& f : s.value->fields) {
        if (!given.insert(f.name).second) {
          diags_.error(code::kDuplicateName, f.name_span, "field '" + f.name + "' is given twice");
          continue;
        }
        const plugins::FieldSpec* spec = nullptr;
        for (const auto& fs : drv->fields)
          if (f.name == fs.name) spec = &fs;
        Type vt = expr_type(*f.value, ctx);
        if (!spec) {
          Diagnostic& d = diags_.error(code::kUnknownField, f.name_span,
                                       "the " + std::string(drv->name) + " driver has no field '" + f.name + "'");
          std::vector<std::string_view> names;
          for (const auto& fs : drv->fields) names.push_back(fs.name);
          std::string best = closest_word(f.name, names);
          std::string list;
          for (auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
          d.help = best.empty() ? "its fields are " + list : "did you mean '" + best + "'?";
          if (!best.empty()) suggested.insert(best);
          continue;
        }
        if (!accepts(spec->type, vt)) {
          diags_.error(code::kFieldType, f.value->span,
                       "field '" + f.name + "' takes " + a_type(spec->type) + "; this is " + a_type(vt));
        } else if (spec->type == Type::List && f.value->kind == ExprKind::List) {
          for (const ast::ExprPtr& item : f.value->items) {
            Type it = expr_type(*item, ctx);
            if (!accepts(Type::String, it))
              diags_.error(code::kFieldType, item->span, "field '" + f.name + "' lists strings; this is " + a_type(it));
          }
        }
      }
    }
    for (const auto& fs : drv->fields)
      if (fs.required && !given.count(fs.name) && !suggested.count(fs.name))
        diags_.error(code::kMissingField, s.word2.span,
                     "the " + std::string(drv->name) + " driver needs field '" + fs.name + "' (" + fs.doc + ")");
    for (const auto& group : drv->one_of) {
      std::vector<const ast::Field*> present;
      std::string names;
      bool near_miss = false;
      for (const char* f : group) {
        if (s.value)
          for (const ast::Field& fld : s.value->fields)
            if (fld.name == f) present.push_back(&fld);
        near_miss |= suggested.count(f) > 0;
        names += (names.empty() ? "'" : " or '") + std::string(f) + "'";
      }
      if (present.empty() && !near_miss)
        diags_.error(code::kMissingField, s.word2.span, "the " + std::string(drv->name) + " driver needs " + names);
      if (present.size() > 1) {
        Diagnostic& d = diags_.error(code::kConflict, present[1]->name_span, "give " + names + ", not both");
        d.secondary.push_back({present[0]->name_span, "already given here"});
      }
    }
  }

  // ---- stages ----

  void check_stage(const Scope& outer, const Stmt& s, Ctx ctx) {
    Scope scope(&outer);
    ctx.stage = &s;
    ctx.rollback = s.word.text == "rollback";
    const Stmt* on = nullptr;
    for (const ast::StmtPtr& item : s.body)
      if (item->kind == StmtKind::Setting && item->word.text == "on") on = item.get();
    if (on) {
      scope.put("host", {SymKind::Host, Type::Host, Kind::Gateway, on->span, nullptr, -1, "host"});
      ctx.host = true;
    }
    ctx.scope = &scope;
    check_stage_body(scope, s.body, ctx, &s);
  }

  void check_stage_body(Scope& scope, const std::vector<ast::StmtPtr>& body, Ctx ctx, const Stmt* stage) {
    std::map<std::string, const Stmt*> settings;
    const std::string kind = stage ? stage->word.text : "";
    for (const ast::StmtPtr& sp : body) {
      const Stmt& s = *sp;
      if (s.kind == StmtKind::Setting) {
        check_setting(s, ctx, kind, settings);
        continue;
      }
      if (s.kind == StmtKind::Guard) {
        check_guard(s, ctx);
        continue;
      }
      if (s.kind == StmtKind::On) {
        check_on(s, ctx);
        continue;
      }
      if (s.kind == StmtKind::Stage || s.kind == StmtKind::Param || s.kind == StmtKind::Metric || s.kind == StmtKind::Plugin) {
        diags_.error(code::kPlacement, s.keyword,
                     std::string("'") + (s.kind == StmtKind::Stage ? s.word.text : ast::stmt_kind_name(s.kind)) +
                         "' cannot appear inside a stage");
        continue;
      }
    }
    check_steps(scope, body, ctx);
    if (stage) {
      for (const ast::StmtPtr& sp : body)
        if (sp->kind == StmtKind::Use)
          if (const TemplateInfo* info = used_template_info(*sp, ctx))
            for (const std::string& k : info->settings) settings.emplace(k, sp.get());
      if (kind == "ramp") {
        if (!settings.count("via"))
          diags_.error(code::kPlacement, stage->keyword, "a ramp needs 'via' and the gateway or registry whose traffic it shifts");
        if (!settings.count("steps"))
          diags_.error(code::kPlacement, stage->keyword, "a ramp needs 'steps', such as steps 5% -> 20% -> 50% -> 100%");
      }
      for (const char* k : {"batch", "parallel"})
        if (settings.count(k) && !settings.count("on"))
          diags_.error(code::kPlacement, settings[k]->keyword, std::string("'") + k + "' needs 'on' in the same stage: it bounds the hosts worked on at once");
    }
  }

  void check_setting(const Stmt& s, const Ctx& ctx, const std::string& kind, std::map<std::string, const Stmt*>& seen) {
    const std::string& key = s.word.text;
    auto [it, fresh] = seen.emplace(key, &s);
    if (!fresh) {
      Diagnostic& d = diags_.error(code::kDuplicateName, s.keyword, "'" + key + "' is set twice in this stage");
      d.secondary.push_back({it->second->keyword, "first set here"});
    }
    const bool ramp_only = key == "via" || key == "steps" || key == "hold";
    if (!kind.empty()) {
      if (ramp_only && kind != "ramp")
        diags_.error(code::kPlacement, s.keyword, "'" + key + "' belongs in a ramp stage, not in " + a_kind(kind));
      if (key == "on" && kind == "ramp")
        diags_.error(code::kPlacement, s.keyword, "a ramp shifts traffic 'via' a gateway or registry; it does not run 'on' hosts");
    }
    if (key == "on") {
      Type t = expr_type(*s.args.at(0), ctx);
      if (!accepts(Type::Hosts, t))
        diags_.error(code::kType, s.args[0]->span, "'on' takes hosts, such as fleet.tagged(\"canary\"); this is " + a_type(t));
    } else if (key == "batch") {
      Type t = expr_type(*s.args.at(0), ctx);
      if (!(t == Type::Number || t == Type::Percent || t == Type::Any))
        diags_.error(code::kType, s.args[0]->span, "'batch' takes a host count or a percentage; this is " + a_type(t));
      positive(*s.args[0], "batch");
    } else if (key == "parallel") {
      expect_count(*s.args.at(0), expr_type(*s.args[0], ctx), "'parallel'");
      positive(*s.args[0], "parallel");
    } else if (key == "via") {
      const Expr& e = *s.args.at(0);
      const Sym* sym = lookup(e.text, e.span, ctx);
      if (sym && !(sym->kind == SymKind::Plugin && (sym->plugin == Kind::Gateway || sym->plugin == Kind::Registry)))
        diags_.error(code::kType, e.span, "'via' takes a gateway or a registry; '" + e.text + "' is " + describe(*sym));
    } else if (key == "steps") {
      // 5% -> 20% -> 50%, or one list (a parameter such as shares: [5%, 20%, 50%]).
      if (s.args.size() == 1 && expr_type(*s.args[0], ctx) == Type::List) {
        if (s.args[0]->kind == ExprKind::List)
          for (const ast::ExprPtr& v : s.args[0]->items)
            if (Type t = expr_type(*v, ctx); !accepts(Type::Percent, t)) {
              diags_.error(code::kUnit, v->span, "a ramp step is a share of traffic such as 20%; this is " + a_type(t));
              break;
            }
        return;
      }
      for (const ast::ExprPtr& v : s.args) {
        Type t = expr_type(*v, ctx);
        if (!accepts(Type::Percent, t)) {
          Diagnostic& d = diags_.error(code::kUnit, v->span, "a ramp step is a share of traffic such as 20%; this is " + a_type(t));
          if (v->kind == ExprKind::Number) d.help = "write it as a percentage: " + v->text + "%";
          break;  // one message for the line
        }
      }
    } else if (key == "hold") {
      expect_type(*s.args.at(0), Type::Duration, expr_type(*s.args[0], ctx), "'hold'");
    }
  }

  static std::string a_kind(const std::string& kind) {
    return (kind == "align" ? "an " : "a ") + kind + " stage";
  }

  void positive(const Expr& e, const char* what) {
    if ((e.kind == ExprKind::Number || e.kind == ExprKind::Percent) && e.number <= 0)
      diags_.error(code::kValue, e.span, std::string("'") + what + "' must be greater than zero");
  }

  // ---- guards and handlers ----

  void check_guard(const Stmt& s, const Ctx& ctx) {
    if (s.word.text == "compare") {
      Type a = expr_type(*s.args.at(0), ctx);
      Type b = expr_type(*s.args.at(1), ctx);
      if (!is_numeric(a)) diags_.error(code::kType, s.args[0]->span, "a comparison judge compares numbers; this is " + a_type(a));
      else if (!is_numeric(b)) diags_.error(code::kType, s.args[1]->span, "a comparison judge compares numbers; this is " + a_type(b));
      else if (dimension(a) && dimension(b) && dimension(a) != dimension(b))
        diags_.error(code::kUnit, s.args[1]->span, "the canary reads " + a_type(a) + " but the baseline reads " + a_type(b));
      Type tol = expr_type(*s.args.at(2), ctx);
      if (!accepts(Type::Percent, tol))
        diags_.error(code::kUnit, s.args[2]->span, "the tolerance after 'within' is a percentage such as 10%; this is " + a_type(tol));
    } else if (s.word.text == "probe") {
      check_probe_target(s.word2, *s.args.at(0), ctx);
    } else {
      Type t = expr_type(*s.args.at(0), ctx);
      if (!accepts(Type::Bool, t))
        diags_.error(code::kType, s.args[0]->span, "a guard's condition must be true or false; this is " + a_type(t));
    }
    static const std::set<std::string> allowed = {"for", "every", "limit", "errors", "samples", "nodata", "else", "timeout",
                                                  "header", "expect", "contains"};
    check_clauses(s, ctx, allowed);
    if (s.word.text != "probe")
      for (const char* k : {"header", "expect", "contains", "timeout"})
        if (const ast::Clause* c = s.clause(k))
          diags_.error(code::kClause, c->span, std::string("'") + k + "' applies to probe guards only");
  }

  void check_on(const Stmt& s, const Ctx& ctx) {
    if (!s.word2.empty()) {
      static const std::vector<std::string_view> actions = {"rollback", "pause", "abort", "continue"};
      check_word(s.word2, actions, "action");
      if (s.word.text == "success" && s.word2.text != "continue")
        diags_.error(code::kValue, s.word2.span, "'on success' takes a block of steps");
      return;
    }
    Scope scope(ctx.scope);
    Ctx inner = ctx;
    inner.scope = &scope;
    inner.rollback = true;
    check_steps(scope, s.body, inner);
  }

  // ---- steps ----

  void check_steps(Scope& scope, const std::vector<ast::StmtPtr>& body, Ctx ctx) {
    const Stmt* prev = nullptr;  // the step an `undo` would compensate
    bool after_abort = false;
    (void)after_abort;
    for (const ast::StmtPtr& sp : body) {
      const Stmt& s = *sp;
      ctx.scope = &scope;
      switch (s.kind) {
        case StmtKind::Setting:
        case StmtKind::Guard:
        case StmtKind::On:
        case StmtKind::Stage:
        case StmtKind::Param:
        case StmtKind::Metric:
        case StmtKind::Plugin: continue;  // handled by the caller
        case StmtKind::Let: check_let(scope, s, ctx); break;
        case StmtKind::Run:
          expect_type(*s.args.at(0), Type::String, expr_type(*s.args[0], ctx), "'run'");
          check_clauses(s, ctx, {"timeout"});
          break;
        case StmtKind::Probe:
          check_probe_target(s.word, *s.args.at(0), ctx);
          check_clauses(s, ctx, {"header", "expect", "contains", "attempts", "every", "timeout"});
          if (s.word.text != "http")
            for (const char* k : {"header", "expect", "contains"})
              if (const ast::Clause* c = s.clause(k))
                diags_.error(code::kClause, c->span, std::string("'") + k + "' applies to http probes only");
          break;
        case StmtKind::Wait: expect_type(*s.args.at(0), Type::Duration, expr_type(*s.args[0], ctx), "'wait'"); break;
        case StmtKind::WaitUntil: {
          Type t = expr_type(*s.args.at(0), ctx);
          if (!accepts(Type::Bool, t))
            diags_.error(code::kType, s.args[0]->span, "'wait until' needs a condition that is true or false; this is " + a_type(t));
          check_clauses(s, ctx, {"timeout", "every"});
          break;
        }
        case StmtKind::Approve: check_clauses(s, ctx, {"timeout", "default"}); break;
        case StmtKind::Route: check_route(s, ctx); break;
        case StmtKind::Drain:
        case StmtKind::Restore: check_drain(s, ctx); break;
        case StmtKind::Scale: {
          plugin_ref(s.name, ctx, {Kind::Gateway}, "'scale'");
          expect_count(*s.args.at(0), expr_type(*s.args[0], ctx), "'scale ... to'");
          break;
        }
        case StmtKind::Phase:
          if (s.str.empty()) diags_.error(code::kValue, s.str_span, "a phase needs a name, such as \"gray\"");
          break;
        case StmtKind::Undo: check_undo(scope, s, prev, ctx); break;
        case StmtKind::Abort: break;
        case StmtKind::If: {
          Type t = expr_type(*s.args.at(0), ctx);
          if (!accepts(Type::Bool, t))
            diags_.error(code::kType, s.args[0]->span, "'if' needs a condition that is true or false; this is " + a_type(t));
          Scope a(&scope), b(&scope);
          check_steps(a, s.body, ctx);
          check_steps(b, s.else_body, ctx);
          break;
        }
        case StmtKind::Use: check_use(s, ctx, /*stages=*/false); break;
        case StmtKind::Call: check_call_step(s, ctx); break;
        default:
          diags_.error(code::kPlacement, s.keyword, std::string("'") + ast::stmt_kind_name(s.kind) + "' cannot appear here");
          break;
      }
      if (s.kind != StmtKind::Undo) prev = &s;
    }
  }

  void check_probe_target(const ast::Name& kind, const Expr& target, const Ctx& ctx) {
    static const std::vector<std::string_view> kinds = {"http", "tcp", "cmd"};
    check_word(kind, kinds, "probe kind");
    expect_type(target, Type::String, expr_type(target, ctx), "the probe target");
  }

  void check_route(const Stmt& s, const Ctx& ctx) {
    plugin_ref(s.name, ctx, {Kind::Gateway}, "'route'");
    if (s.match_kind == "clear") return;
    size_t target = s.args.size() - 1;
    for (size_t i = 0; i < target; ++i) {
      Type t = expr_type(*s.args[i], ctx);
      bool ok = accepts(Type::String, t) || (s.match_kind == "ip" && t == Type::List);
      if (!ok) diags_.error(code::kType, s.args[i]->span, "a route matches on text; this is " + a_type(t));
    }
    // The target is a server group (canary, stable) or a version string; a bare name that is
    // not declared is a group label.
    const Expr& t = *s.args[target];
    if (t.kind == ExprKind::Name) {
      const Sym* sym = ctx.scope->find(t.text);
      if (!sym || sym->kind != SymKind::Value) return;
    }
    expect_type(t, Type::String, expr_type(t, ctx), "the route target");
  }

  void check_drain(const Stmt& s, const Ctx& ctx) {
    const char* verb = s.kind == StmtKind::Drain ? "'drain'" : "'restore'";
    plugin_ref(s.name, ctx, {Kind::Gateway, Kind::Registry}, verb);
    if (!s.args.empty()) {
      Type t = expr_type(*s.args[0], ctx);
      if (!(accepts(Type::String, t) || t == Type::Hosts))
        diags_.error(code::kType, s.args[0]->span, std::string(verb) + " takes an instance or server name; this is " + a_type(t));
    } else if (!ctx.host) {
      Diagnostic& d = diags_.error(code::kPlacement, s.span, std::string(verb) + " needs to know what to drain: no host is bound here");
      d.help = "add 'on HOSTS' to the stage, or name the instance: drain " + s.name.text + " \"10.0.0.5:8080\"";
    } else if (ctx.tmpl) {
      ctx.tmpl->uses_host = true;
    }
    check_clauses(s, ctx, {"wait"});
  }

  void check_undo(Scope& scope, const Stmt& s, const Stmt* prev, const Ctx& ctx) {
    if (s.word.text == "all") {
      if (!ctx.rollback)
        diags_.error(code::kPlacement, s.keyword, "'undo all' belongs in the rollback stage or an 'on' handler");
      return;
    }
    if (!prev) {
      Diagnostic& d = diags_.error(code::kPlacement, s.keyword, "'undo' compensates the step just before it, and there is none");
      d.help = "put 'undo' right after the 'run' (or other effect) it reverses";
    } else if (!is_effect(*prev, ctx)) {
      Diagnostic& d = diags_.error(code::kPlacement, s.keyword,
                                   "'undo' compensates the step just before it, and that step ('" +
                                       std::string(ast::stmt_kind_name(prev->kind)) + "') changes nothing");
      d.secondary.push_back({prev->keyword, "the step before"});
      d.help = "put 'undo' right after the 'run' (or other effect) it reverses";
    }
    if (!s.args.empty()) expect_type(*s.args[0], Type::String, expr_type(*s.args[0], ctx), "'undo'");
    if (s.has_body) {
      Scope inner(&scope);
      check_steps(inner, s.body, ctx);
    }
  }

  bool is_effect(const Stmt& s, const Ctx& ctx) {
    switch (s.kind) {
      case StmtKind::Run:
      case StmtKind::Route:
      case StmtKind::Drain:
      case StmtKind::Restore:
      case StmtKind::Scale:
      case StmtKind::Use:
      case StmtKind::If: return true;
      case StmtKind::Call: {
        const plugins::OpSpec* op = op_of(*s.args.at(0), ctx);
        return !op || op->effect;
      }
      default: return false;
    }
  }

  void check_call_step(const Stmt& s, const Ctx& ctx) {
    const Expr& call = *s.args.at(0);
    if (call.kind != ExprKind::Call) return;  // reported by the parser
    Type t = expr_type(call, ctx);
    const plugins::OpSpec* op = op_of(call, ctx);
    if (op && !op->effect) {
      diags_.error(code::kPlacement, call.span,
                   "'" + std::string(op->name) + "' reads " + a_type(t) + " and changes nothing; as a step it has no effect");
    } else if (!op && t != Type::Any) {
      diags_.error(code::kPlacement, call.span, "only plugin operations can be steps, such as edge.weight(0%)");
    }
  }

  const plugins::OpSpec* op_of(const Expr& call, const Ctx& ctx) {
    if (call.kind != ExprKind::Call) return nullptr;
    const Expr& callee = *call.items.at(0);
    if (callee.kind != ExprKind::Member) return nullptr;
    const Expr& obj = *callee.items.at(0);
    if (obj.kind != ExprKind::Name) return nullptr;
    const Sym* sym = ctx.scope->find(obj.text);
    if (!sym || sym->kind != SymKind::Plugin) return nullptr;
    return plugins::find_op(sym->plugin, callee.text);
  }

  struct TemplateRef {
    const Stmt* decl = nullptr;
    int module = -1;
  };

  // The template a `use` names: `name(...)` from this module or `alias.name(...)` from an import.
  // Reports what it cannot resolve when `report` is set.
  TemplateRef resolve_template(const Expr& callee, const Ctx& ctx, bool report) {
    auto error = [&](const char* c, Span at, const std::string& msg) -> Diagnostic* {
      return report ? &diags_.error(c, at, msg) : nullptr;
    };
    if (callee.kind == ExprKind::Name) {
      const Sym* sym = report ? lookup(callee.text, callee.span, ctx) : ctx.scope->find(callee.text);
      if (!sym) return {};
      if (sym->kind != SymKind::Template) {
        error(code::kType, callee.span, "'use' takes a template; '" + callee.text + "' is " + describe(*sym));
        return {};
      }
      return {sym->decl, sym->module};
    }
    if (callee.kind == ExprKind::Member && callee.items.at(0)->kind == ExprKind::Name) {
      const Expr& mod = *callee.items[0];
      const Sym* sym = report ? lookup(mod.text, mod.span, ctx) : ctx.scope->find(mod.text);
      if (!sym) return {};
      if (sym->kind != SymKind::Import) {
        error(code::kType, mod.span, "'" + mod.text + "' is " + describe(*sym) + ", not an imported module");
        return {};
      }
      if (sym->module < 0) return {};  // the import failed and was reported
      const Sym* t = module_scope(sym->module).find_local(callee.text);
      if (!t || t->kind != SymKind::Template) {
        if (Diagnostic* d = error(code::kUnknownName, callee.span, "module '" + mod.text + "' has no template '" + callee.text + "'")) {
          std::vector<std::string> names;
          for (const ast::StmtPtr& item : project_.module(sym->module).ast.items)
            if (item->kind == StmtKind::Template) names.push_back(item->name.text);
          std::string best = closest_word(callee.text, names);
          if (!best.empty()) d->help = "did you mean '" + best + "'?";
        }
        return {};
      }
      return {t->decl, sym->module};
    }
    error(code::kSyntax, callee.span, "'use' takes a template name, such as canary.ramp");
    return {};
  }

  const TemplateInfo* used_template_info(const Stmt& use, const Ctx& ctx) {
    const Expr& call = *use.args.at(0);
    if (call.kind != ExprKind::Call) return nullptr;
    TemplateRef ref = resolve_template(*call.items.at(0), ctx, false);
    if (!ref.decl || !project_.module(ref.module).syntax_ok) return nullptr;
    return &template_info(ref.module, *ref.decl);
  }

  void check_use(const Stmt& s, const Ctx& ctx, bool stages) {
    const Expr& call = *s.args.at(0);
    if (call.kind != ExprKind::Call) return;  // reported by the parser
    TemplateRef ref = resolve_template(*call.items.at(0), ctx, true);
    if (!ref.decl) return;
    const Stmt* tmpl = ref.decl;
    const int tmodule = ref.module;
    if (facts_) facts_->uses[&s] = {tmpl, tmodule};
    if (!project_.module(tmodule).syntax_ok) return;
    TemplateInfo& info = template_info(tmodule, *tmpl);
    if (info.stages != stages) {
      Diagnostic& d = diags_.error(code::kPlacement, s.span,
                                   stages ? "template '" + tmpl->name.text + "' holds steps; use it inside a stage"
                                          : "template '" + tmpl->name.text + "' holds stages; use it at the pipeline level");
      d.secondary.push_back({tmpl->name.span, "declared here"});
      return;
    }
    if (!stages && info.uses_host && !ctx.host) {
      Diagnostic& d = diags_.error(code::kPlacement, s.span, "template '" + tmpl->name.text + "' works on the current host, and no host is bound here");
      d.help = "add 'on HOSTS' to the stage";
    }
    if (ctx.tmpl && info.uses_host) ctx.tmpl->uses_host = true;
    check_args(call, tmpl->params, "template '" + tmpl->name.text + "'", ctx, tmpl->name.span);
  }

  // Arguments against declared parameters: positional first, then by name; every parameter
  // without a default must be given.
  void check_args(const Expr& call, const std::vector<ast::Param>& params, const std::string& what, const Ctx& ctx, Span decl) {
    std::vector<const ast::Field*> bound(params.size(), nullptr);
    bool named_seen = false;
    size_t pos = 0;
    for (const ast::Field& a : call.fields) {
      size_t idx = params.size();
      if (a.name.empty()) {
        if (named_seen) {
          diags_.error(code::kArguments, a.value->span, "a positional argument cannot follow a named one");
          continue;
        }
        idx = pos++;
        if (idx >= params.size()) {
          Diagnostic& d = diags_.error(code::kArguments, a.value->span,
                                       what + " takes " + std::to_string(params.size()) + " argument" + (params.size() == 1 ? "" : "s"));
          d.secondary.push_back({decl, "declared here"});
          continue;
        }
      } else {
        named_seen = true;
        for (size_t i = 0; i < params.size(); ++i)
          if (params[i].name.text == a.name) idx = i;
        if (idx == params.size()) {
          Diagnostic& d = diags_.error(code::kArguments, a.name_span, what + " has no parameter '" + a.name + "'");
          std::vector<std::string> names;
          for (const auto& p : params) names.push_back(p.name.text);
          std::string best = closest_word(a.name, names);
          if (!best.empty()) d.help = "did you mean '" + best + "'?";
          continue;
        }
      }
      if (bound[idx]) {
        diags_.error(code::kArguments, a.value->span, "parameter '" + params[idx].name.text + "' is given twice");
        continue;
      }
      bound[idx] = &a;
      check_arg(*a.value, params[idx], ctx);
    }
    for (size_t i = 0; i < params.size(); ++i)
      if (!bound[i] && !params[i].value) {
        Diagnostic& d = diags_.error(code::kArguments, call.span, what + " needs parameter '" + params[i].name.text + "'");
        d.secondary.push_back({params[i].span, "declared here"});
      }
  }

  void check_arg(const Expr& value, const ast::Param& p, const Ctx& ctx) {
    Type want = Type::Any;
    if (!p.type.empty()) parse_value_type(p.type.text, want);
    else if (p.value) want = literal_type(*p.value);
    if (want == Type::Metric) {
      const Sym* sym = value.kind == ExprKind::Name ? lookup(value.text, value.span, ctx) : nullptr;
      if (value.kind != ExprKind::Name)
        diags_.error(code::kType, value.span, "parameter '" + p.name.text + "' takes a metric by name");
      else if (sym && sym->kind != SymKind::Metric)
        diags_.error(code::kType, value.span, "parameter '" + p.name.text + "' takes a metric; '" + value.text + "' is " + describe(*sym));
      return;
    }
    Type got = expr_type(value, ctx);
    Kind wk;
    if (plugin_of_type(want, wk)) {
      if (got != want && got != Type::Any)
        diags_.error(code::kType, value.span, "parameter '" + p.name.text + "' takes " + a_type(want) + "; this is " + a_type(got));
      return;
    }
    expect_type(value, want, got, "parameter '" + p.name.text + "'");
  }

  static Type literal_type(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Number: return Type::Number;
      case ExprKind::Duration: return Type::Duration;
      case ExprKind::Percent: return Type::Percent;
      case ExprKind::Bytes: return Type::Bytes;
      case ExprKind::String: return Type::String;
      case ExprKind::Bool: return Type::Bool;
      case ExprKind::List: return Type::List;
      case ExprKind::Map: return Type::Map;
      default: return Type::Any;
    }
  }

  // ---- clauses ----

  void check_clauses(const Stmt& s, const Ctx& ctx, const std::set<std::string>& allowed) {
    std::map<std::string, const ast::Clause*> seen;
    for (const ast::Clause& c : s.clauses) {
      if (!allowed.count(c.key)) {
        diags_.error(code::kClause, c.span, "'" + c.key + "' does not apply to '" + ast::stmt_kind_name(s.kind) + "'");
        continue;
      }
      auto [it, fresh] = seen.emplace(c.key, &c);
      if (!fresh) {
        Diagnostic& d = diags_.error(code::kClause, c.span, "'" + c.key + "' is given twice");
        d.secondary.push_back({it->second->span, "first given here"});
        continue;
      }
      if (c.key == "timeout" || c.key == "every" || c.key == "for" || c.key == "wait") {
        expect_type(*c.value, Type::Duration, expr_type(*c.value, ctx), "'" + c.key + "'");
        if (c.value->kind == ExprKind::Duration && c.value->number <= 0)
          diags_.error(code::kValue, c.value->span, "'" + c.key + "' must be longer than zero");
      } else if (c.key == "attempts" || c.key == "limit" || c.key == "errors" || c.key == "samples") {
        expect_type(*c.value, Type::Number, expr_type(*c.value, ctx), "'" + c.key + "'");
        if (c.value->kind == ExprKind::Number && (c.value->number < 0 || c.value->number != static_cast<double>(static_cast<long long>(c.value->number))))
          diags_.error(code::kValue, c.value->span, "'" + c.key + "' is a whole number of zero or more");
        if (c.key == "attempts" && c.value->kind == ExprKind::Number && c.value->number < 1)
          diags_.error(code::kValue, c.value->span, "'attempts' must be at least 1");
      } else if (c.key == "header") {
        Type t = expr_type(*c.value, ctx);
        expect_type(*c.value, Type::String, t, "'header'");
        if (c.value->kind == ExprKind::String && !c.value->parts.empty() && !c.value->parts[0].is_var &&
            c.value->parts[0].text.find(':') == std::string::npos)
          diags_.error(code::kValue, c.value->span, "a header is written \"Name: value\"");
      } else if (c.key == "expect") {
        Type t = expr_type(*c.value, ctx);
        if (!(t == Type::Number || t == Type::List || t == Type::Any))
          diags_.error(code::kType, c.value->span, "'expect' takes a status code such as 200, or a list of them; this is " + a_type(t));
        if (c.value->kind == ExprKind::Number && (c.value->number < 100 || c.value->number > 599))
          diags_.error(code::kValue, c.value->span, "an HTTP status code is between 100 and 599");
      } else if (c.key == "contains") {
        expect_type(*c.value, Type::String, expr_type(*c.value, ctx), "'contains'");
      } else if (c.key == "nodata") {
        check_word(c.word, {"pass", "fail", "inconclusive"}, "no-data outcome");
      } else if (c.key == "else") {
        check_word(c.word, {"rollback", "pause", "abort"}, "action");
      } else if (c.key == "default") {
        check_word(c.word, {"promote", "abort", "rollback"}, "default");
      }
    }
  }

  void check_word(const ast::Name& w, const std::vector<std::string_view>& allowed, const char* what) {
    for (std::string_view a : allowed)
      if (w.text == a) return;
    std::string list;
    for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    Diagnostic& d = diags_.error(code::kValue, w.span, "unknown " + std::string(what) + " '" + w.text + "'; expected " + list);
    std::string best = closest_word(w.text, allowed);
    if (!best.empty()) d.help = "did you mean '" + best + "'?";
  }

  // ---- names ----

  const Sym* lookup(const std::string& name, Span at, const Ctx& ctx, bool text_expected = false) {
    if (const Sym* s = ctx.scope->find(name)) {
      if (s->kind == SymKind::Host && ctx.tmpl) ctx.tmpl->uses_host = true;
      return note(s, at);
    }
    Diagnostic& d = diags_.error(code::kUnknownName, at, "unknown name '" + name + "'");
    if (name == "host") {
      d.help = "'host' is bound only inside a stage with 'on HOSTS'";
      return nullptr;
    }
    std::vector<std::string> names;
    ctx.scope->names(names);
    std::string best = closest_word(name, names);
    if (!best.empty()) d.help = "did you mean '" + best + "'?";
    else if (text_expected) d.help = "if you mean the text, quote it: \"" + name + "\"";
    return nullptr;
  }

  void plugin_ref(const ast::Name& n, const Ctx& ctx, std::initializer_list<Kind> kinds, const char* verb) {
    const Sym* s = lookup(n.text, n.span, ctx);
    if (!s) return;
    if (s->kind == SymKind::Plugin)
      for (Kind k : kinds)
        if (s->plugin == k) return;
    std::string want;
    for (Kind k : kinds) want += (want.empty() ? "a " : " or a ") + std::string(plugins::kind_name(k));
    diags_.error(code::kType, n.span, std::string(verb) + " works on " + want + "; '" + n.text + "' is " + describe(*s));
  }

  static std::string describe(const Sym& s) {
    switch (s.kind) {
      case SymKind::Plugin: return a_type(plugins::instance_type(s.plugin));
      case SymKind::Metric: return "a metric";
      case SymKind::Import: return "an imported module";
      case SymKind::Template: return "a template";
      case SymKind::Function: return "a function";
      case SymKind::Host: return "the current host";
      case SymKind::Value: return a_type(s.type);
    }
    return "something else";
  }

  // A count is a plain number: 3, not 3% or 3s.
  void expect_count(const Expr& e, Type got, const std::string& what) {
    if (got == Type::Number || got == Type::Any) return;
    diags_.error(dimension(got) ? code::kUnit : code::kType, e.span, what + " takes a count such as 3; this is " + a_type(got));
  }

  void expect_type(const Expr& e, Type want, Type got, const std::string& what) {
    if (accepts(want, got)) return;
    const char* c = (dimension(want) && dimension(got) && dimension(want) != dimension(got)) ? code::kUnit : code::kType;
    Diagnostic& d = diags_.error(c, e.span, what + " takes " + a_type(want) + "; this is " + a_type(got));
    if (want == Type::Duration && got == Type::Number && e.kind == ExprKind::Number)
      d.help = "add a unit: " + e.text + "s, " + e.text + "m or " + e.text + "ms";
    if (want == Type::Percent && got == Type::Number && e.kind == ExprKind::Number) d.help = "write it as a percentage: " + e.text + "%";
  }

  // ---- expressions ----

  Type expr_type(const Expr& e, const Ctx& ctx) {
    switch (e.kind) {
      case ExprKind::Number: return Type::Number;
      case ExprKind::Duration: return Type::Duration;
      case ExprKind::Percent: return Type::Percent;
      case ExprKind::Bytes: return Type::Bytes;
      case ExprKind::Bool: return Type::Bool;
      case ExprKind::String:
        for (const ast::StrPart& p : e.parts)
          if (p.is_var) check_interpolation(p, ctx);
        return Type::String;
      case ExprKind::List:
        for (const ast::ExprPtr& i : e.items) (void)expr_type(*i, ctx);
        return Type::List;
      case ExprKind::Map:
        for (const ast::Field& f : e.fields) (void)expr_type(*f.value, ctx);
        return Type::Map;
      case ExprKind::Name: {
        const Sym* s = lookup(e.text, e.span, ctx);
        if (!s) return Type::Any;
        switch (s->kind) {
          case SymKind::Value: return s->type;
          case SymKind::Metric:
            if (s->decl && !s->decl->params.empty()) {
              diags_.error(code::kArguments, e.span, "metric '" + e.text + "' takes arguments: " + e.text + "(...)");
              return s->type;
            }
            return s->type;
          case SymKind::Plugin: return plugins::instance_type(s->plugin);
          case SymKind::Host: return Type::Host;
          case SymKind::Import:
          case SymKind::Template:
            diags_.error(code::kType, e.span, "'" + e.text + "' is " + describe(*s) + " and has no value");
            return Type::Any;
          case SymKind::Function:
            diags_.error(code::kType, e.span, "'" + e.text + "' is a function; call it as " + e.text + "(...)");
            return Type::Any;
        }
        return Type::Any;
      }
      case ExprKind::Member: return member_type(e, ctx, /*called=*/false);
      case ExprKind::Call: return call_type(e, ctx);
      case ExprKind::Unary: {
        Type t = expr_type(*e.items.at(0), ctx);
        if (e.text == "not") {
          if (!accepts(Type::Bool, t)) diags_.error(code::kType, e.items[0]->span, "'not' needs true or false; this is " + a_type(t));
          return Type::Bool;
        }
        if (!is_numeric(t)) diags_.error(code::kType, e.items[0]->span, "'-' needs a number; this is " + a_type(t));
        return t;
      }
      case ExprKind::Binary: return binary_type(e, ctx);
    }
    return Type::Any;
  }

  Type binary_type(const Expr& e, const Ctx& ctx) {
    const Expr& l = *e.items.at(0);
    const Expr& r = *e.items.at(1);
    Type a = expr_type(l, ctx);
    Type b = expr_type(r, ctx);
    const std::string& op = e.text;
    if (op == "and" || op == "or") {
      if (!accepts(Type::Bool, a)) diags_.error(code::kType, l.span, "'" + op + "' needs true or false on both sides; this is " + a_type(a));
      if (!accepts(Type::Bool, b)) diags_.error(code::kType, r.span, "'" + op + "' needs true or false on both sides; this is " + a_type(b));
      return Type::Bool;
    }
    if (op == "==" || op == "!=") {
      if (a != Type::Any && b != Type::Any && dimension(a) != dimension(b) && !(accepts(a, b) || accepts(b, a)))
        unit_error(e, l, a, r, b);
      return Type::Bool;
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      if (!is_numeric(a)) diags_.error(code::kType, l.span, "'" + op + "' compares numbers; this is " + a_type(a));
      else if (!is_numeric(b)) diags_.error(code::kType, r.span, "'" + op + "' compares numbers; this is " + a_type(b));
      else if (dimension(a) && dimension(b) && dimension(a) != dimension(b)) unit_error(e, l, a, r, b);
      return Type::Bool;
    }
    if (op == "+" && (a == Type::String || b == Type::String)) {
      if (!accepts(Type::String, a) || !accepts(Type::String, b))
        diags_.error(code::kType, e.span, "'+' joins two strings or adds two numbers; this mixes " + a_type(a) + " and " + a_type(b));
      return Type::String;
    }
    if (!is_numeric(a)) {
      diags_.error(code::kType, l.span, "'" + op + "' needs numbers; this is " + a_type(a));
      return Type::Any;
    }
    if (!is_numeric(b)) {
      diags_.error(code::kType, r.span, "'" + op + "' needs numbers; this is " + a_type(b));
      return Type::Any;
    }
    if (a == Type::Any || b == Type::Any) return a == Type::Any ? b : a;
    if (op == "+" || op == "-") {
      if (dimension(a) != dimension(b)) {
        diags_.error(code::kUnit, e.span,
                     std::string(op == "+" ? "cannot add " : "cannot subtract ") + show(op == "+" ? l : r) + " (" + a_type(op == "+" ? a : b) +
                         (op == "+" ? ") and " : ") from ") + show(op == "+" ? r : l) + " (" + a_type(op == "+" ? b : a) + ")");
        return a;
      }
      return a == b ? a : Type::Number;
    }
    if (op == "*") {
      if (a == Type::Number) return b;
      if (b == Type::Number || b == Type::Percent) return a;
      if (a == Type::Percent) return b;
      diags_.error(code::kUnit, e.span, "cannot multiply " + a_type(a) + " by " + a_type(b));
      return a;
    }
    // '/'
    if (b == Type::Number || b == Type::Percent) return a;
    if (dimension(a) == dimension(b)) return Type::Number;
    diags_.error(code::kUnit, e.span, "cannot divide " + a_type(a) + " by " + a_type(b));
    return a;
  }

  void unit_error(const Expr& e, const Expr& l, Type a, const Expr& r, Type b) {
    Diagnostic& d = diags_.error(code::kUnit, e.span,
                                 "cannot compare " + show(l) + " (" + a_type(a) + ") with " + show(r) + " (" + a_type(b) + ")");
    const Expr* metric = l.kind == ExprKind::Name ? &l : (r.kind == ExprKind::Name ? &r : nullptr);
    if (metric && (a == Type::Duration || b == Type::Duration))
      d.help = "if '" + metric->text + "' measures time, declare it with a unit: metric " + metric->text + " = ... unit ms";
  }

  static std::string show(const Expr& e) {
    if (e.kind == ExprKind::Name) return "'" + e.text + "'";
    if (!e.text.empty() && e.kind != ExprKind::Binary && e.kind != ExprKind::Unary && e.kind != ExprKind::Member) return e.text;
    return "this value";
  }

  Type member_type(const Expr& e, const Ctx& ctx, bool called) {
    const Expr& obj = *e.items.at(0);
    if (obj.kind == ExprKind::Name) {
      const Sym* s = note(ctx.scope->find(obj.text), obj.span);
      if (s && s->kind == SymKind::Plugin) {
        if (ctx.tmpl && s->kind == SymKind::Host) ctx.tmpl->uses_host = true;
        const plugins::OpSpec* op = plugins::find_op(s->plugin, e.text);
        if (!op) {
          Diagnostic& d = diags_.error(code::kUnknownName, e.span,
                                       std::string("a ") + plugins::kind_name(s->plugin) + " has no operation '" + e.text + "'");
          std::vector<std::string_view> names;
          for (const auto& o : plugins::ops(s->plugin)) names.push_back(o.name);
          std::string best = closest_word(e.text, names);
          std::string list;
          for (auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
          d.help = best.empty() ? "its operations are " + list : "did you mean '" + best + "'?";
          return Type::Any;
        }
        if (!called && !op->member)
          diags_.error(code::kArguments, e.span, "'" + e.text + "' is an operation; call it: " + obj.text + "." + e.text + "(...)");
        if (called && op->member)
          diags_.error(code::kArguments, e.span, "'" + e.text + "' is a value, not an operation: write " + obj.text + "." + e.text);
        return op->result;
      }
      if (s && s->kind == SymKind::Import) {
        diags_.error(code::kType, e.span, "'" + obj.text + "." + e.text + "' is a template; templates are instantiated with 'use'");
        return Type::Any;
      }
    }
    Type ot = expr_type(obj, ctx);
    if (ot == Type::Host) {
      static const std::set<std::string> fields = {"name", "addr", "port", "tags"};
      if (e.text == "port") return Type::Number;
      if (e.text == "tags") return Type::List;
      (void)fields;
      return Type::String;  // name, addr, and any inventory variable
    }
    if (ot == Type::Map || ot == Type::Any) return Type::Any;
    diags_.error(code::kType, e.span, show(obj) + " is " + a_type(ot) + " and has no field '" + e.text + "'");
    return Type::Any;
  }

  Type call_type(const Expr& e, const Ctx& ctx) {
    const Expr& callee = *e.items.at(0);
    if (callee.kind == ExprKind::Member) {
      Type result = member_type(callee, ctx, /*called=*/true);
      if (const plugins::OpSpec* op = op_of(e, ctx)) check_op_args(e, *op, ctx);
      else
        for (const ast::Field& f : e.fields) (void)expr_type(*f.value, ctx);
      return result;
    }
    if (callee.kind != ExprKind::Name) {
      diags_.error(code::kType, callee.span, "this cannot be called");
      return Type::Any;
    }
    const Sym* s = lookup(callee.text, callee.span, ctx);
    if (!s) {
      for (const ast::Field& f : e.fields) (void)expr_type(*f.value, ctx);
      return Type::Any;
    }
    if (s->kind == SymKind::Metric) {
      if (s->decl) {
        size_t want = s->decl->params.size();
        if (want == 0) diags_.error(code::kArguments, e.span, "metric '" + callee.text + "' takes no arguments; write " + callee.text);
        else if (e.fields.size() != want)
          diags_.error(code::kArguments, e.span,
                       "metric '" + callee.text + "' takes " + std::to_string(want) + " argument" + (want == 1 ? "" : "s"));
      }
      for (const ast::Field& f : e.fields) (void)expr_type(*f.value, ctx);
      return s->type;
    }
    if (s->kind == SymKind::Function) return builtin_call(callee.text, e, ctx);
    if (s->kind == SymKind::Template) {
      diags_.error(code::kType, callee.span, "'" + callee.text + "' is a template; templates are instantiated with 'use'");
      return Type::Any;
    }
    diags_.error(code::kType, callee.span, "'" + callee.text + "' is " + describe(*s) + " and cannot be called");
    return Type::Any;
  }

  void check_op_args(const Expr& call, const plugins::OpSpec& op, const Ctx& ctx) {
    std::vector<bool> bound(op.params.size(), false);
    bool bad_named = false;
    size_t pos = 0;
    for (const ast::Field& a : call.fields) {
      size_t idx = op.params.size();
      if (a.name.empty()) idx = pos++;
      else
        for (size_t i = 0; i < op.params.size(); ++i)
          if (a.name == op.params[i].name) idx = i;
      // An unknown bare name where text is expected is most likely unquoted text.
      if (idx < op.params.size() && op.params[idx].type == Type::String && a.value->kind == ExprKind::Name &&
          !ctx.scope->find(a.value->text)) {
        bound[idx] = true;
        (void)lookup(a.value->text, a.value->span, ctx, /*text_expected=*/true);
        continue;
      }
      Type t = expr_type(*a.value, ctx);
      if (idx >= op.params.size()) {
        bad_named |= !a.name.empty();
        diags_.error(code::kArguments, a.name.empty() ? a.value->span : a.name_span,
                     a.name.empty() ? "'" + std::string(op.name) + "' takes " + std::to_string(op.params.size()) + " argument" +
                                          (op.params.size() == 1 ? "" : "s")
                                    : "'" + std::string(op.name) + "' has no parameter '" + a.name + "'");
        continue;
      }
      bound[idx] = true;
      const plugins::ParamSpec& p = op.params[idx];
      // Name what the user wrote: the operation for a positional argument, the name for a named one.
      const std::string what = a.name.empty() ? "'" + std::string(op.name) + "'" : "'" + std::string(op.name) + "(" + a.name + ": ...)'";
      if (p.type == Type::Any) {
        if (!(accepts(Type::String, t) || t == Type::Map))
          diags_.error(code::kType, a.value->span, what + " takes an instance or server name; this is " + a_type(t));
      } else {
        expect_type(*a.value, p.type, t, what);
      }
    }
    if (bad_named) return;  // the misspelt argument was reported; "needs X" would only repeat it
    for (size_t i = 0; i < op.params.size(); ++i)
      if (!bound[i] && op.params[i].required)
        diags_.error(code::kArguments, call.span, "'" + std::string(op.name) + "' needs '" + op.params[i].name + "'");
  }

  Type builtin_call(const std::string& name, const Expr& e, const Ctx& ctx) {
    std::vector<Type> args;
    for (const ast::Field& f : e.fields) {
      if (!f.name.empty()) diags_.error(code::kArguments, f.name_span, "'" + name + "' takes positional arguments");
      args.push_back(expr_type(*f.value, ctx));
    }
    auto arity = [&](size_t n) {
      if (args.size() != n) {
        diags_.error(code::kArguments, e.span, "'" + name + "' takes " + std::to_string(n) + " argument" + (n == 1 ? "" : "s"));
        return false;
      }
      return true;
    };
    if (name == "env") {
      if (arity(1)) expect_type(*e.fields[0].value, Type::String, args[0], "'env'");
      return Type::String;
    }
    if (name == "len") {
      if (arity(1) && !(args[0] == Type::List || args[0] == Type::String || args[0] == Type::Map || args[0] == Type::Hosts ||
                        args[0] == Type::Any))
        diags_.error(code::kType, e.fields[0].value->span, "'len' takes a list, a map, a string or hosts; this is " + a_type(args[0]));
      return Type::Number;
    }
    // min, max
    if (args.size() < 2) {
      diags_.error(code::kArguments, e.span, "'" + name + "' takes two or more arguments");
      return Type::Any;
    }
    Type t = Type::Any;
    for (size_t i = 0; i < args.size(); ++i) {
      if (!is_numeric(args[i])) {
        diags_.error(code::kType, e.fields[i].value->span, "'" + name + "' takes numbers; this is " + a_type(args[i]));
        continue;
      }
      if (t == Type::Any) t = args[i];
      else if (args[i] != Type::Any && dimension(args[i]) != dimension(t))
        diags_.error(code::kUnit, e.fields[i].value->span, "'" + name + "' mixes " + a_type(t) + " and " + a_type(args[i]));
    }
    return t;
  }

  void check_interpolation(const ast::StrPart& p, const Ctx& ctx) {
    const std::string& head = p.path.at(0);
    const Sym* s = note(ctx.scope->find(head), p.span);
    if (!s) {
      Diagnostic& d = diags_.error(code::kInterpolation, p.span, "unknown name '" + head + "' in ${...}");
      if (head == "host") {
        d.help = "'host' is bound only inside a stage with 'on HOSTS'";
      } else {
        std::vector<std::string> names;
        ctx.scope->names(names);
        std::string best = closest_word(head, names);
        if (!best.empty()) d.help = "did you mean '" + best + "'?";
      }
      return;
    }
    if (s->kind == SymKind::Host) {
      if (ctx.tmpl) ctx.tmpl->uses_host = true;
      if (p.path.size() > 2) diags_.error(code::kInterpolation, p.span, "a host has fields one level deep, such as ${host.addr}");
      return;
    }
    if (s->kind != SymKind::Value) {
      diags_.error(code::kInterpolation, p.span, "cannot interpolate '" + head + "': it is " + describe(*s) + ", not a value");
      return;
    }
    if (p.path.size() > 1 && s->type != Type::Map && s->type != Type::Any)
      diags_.error(code::kInterpolation, p.span, "'" + head + "' is " + a_type(s->type) + " and has no field '" + p.path[1] + "'");
  }

  // Records, for lint, that the name at `use` refers to `s`.
  const Sym* note(const Sym* s, Span use) {
    if (!s || !facts_) return s;
    CheckFacts::Ref r;
    r.kind = static_cast<CheckFacts::RefKind>(s->kind);
    r.type = s->type;
    r.plugin = s->plugin;
    r.decl = s->span;
    r.stmt = s->decl;
    r.template_param = s->what == "template parameter";
    facts_->refs.emplace_back(CheckFacts::key(use), r);
    if (s->span.valid()) facts_->used_decls.push_back(CheckFacts::key(s->span));
    return s;
  }

  const Project& project_;
  Diagnostics& diags_;
  CheckFacts* facts_;
  std::unique_ptr<Scope> builtins_;
  std::map<int, std::unique_ptr<Scope>> module_scopes_;
  std::map<const Stmt*, TemplateInfo> templates_;
};

}  // namespace

void check_project(const Project& project, Diagnostics& diags, CheckFacts* facts) {
  Checker c(project, diags, facts);
  c.run();
  if (facts) facts->finish();
}

}  // namespace gray
