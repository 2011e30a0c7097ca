#include "lang/lint/lint.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "lang/codes.h"
#include "lang/lint/rule.h"
#include "lang/text.h"

namespace gray::lint {

// ---- the registry: one function per rule, each in lang/lint/rule_<id>.cpp --------------

#define GRAY_LINT_RULES(X)                                                                                              \
  X(align_before_verify) X(approve_without_timeout) X(deploy_without_image_check) X(drain_wait_below_cache_refresh)     \
  X(duplicate_label) X(duplicate_server) X(guard_constant) X(guard_undeclared_metric) X(guard_window_below_interval)     \
  X(hold_shorter_than_samples) X(missing_rollback) X(ramp_max_jump) X(ramp_no_full_traffic) X(ramp_not_increasing)       \
  X(rollback_unreachable) X(rollback_without_undo_all) X(run_without_undo) X(same_version) X(secret_literal)             \
  X(traffic_weight_range) X(traffic_without_guard) X(unknown_reference) X(unreachable_after_abort)                      \
  X(unused_declaration) X(unused_param) X(wait_until_without_timeout)

#define GRAY_DECLARE_RULE(name) const Rule& rule_##name();
GRAY_LINT_RULES(GRAY_DECLARE_RULE)
#undef GRAY_DECLARE_RULE

namespace {

const Rule kBadSuppressionRule{
    {kBadSuppression, Level::Warning, "A '# gray: ignore=...' comment is malformed, has no reason, names an unknown rule or suppresses nothing", {}},
    nullptr};

}  // namespace

const std::vector<const Rule*>& rules() {
#define GRAY_RULE_ADDRESS(name) &rule_##name(),
  static const std::vector<const Rule*> all = [] {
    std::vector<const Rule*> v{GRAY_LINT_RULES(GRAY_RULE_ADDRESS) & kBadSuppressionRule};
    std::sort(v.begin(), v.end(), [](const Rule* a, const Rule* b) { return std::string_view(a->info.id) < b->info.id; });
    return v;
  }();
#undef GRAY_RULE_ADDRESS
  return all;
}

const Rule* find_rule(std::string_view id) {
  for (const Rule* r : rules())
    if (id == r->info.id) return r;
  return nullptr;
}

// ---- levels and configuration ---------------------------------------------------------

const char* level_name(Level l) {
  switch (l) {
    case Level::Off: return "off";
    case Level::Note: return "note";
    case Level::Warning: return "warning";
    case Level::Error: return "error";
  }
  return "off";
}

bool parse_level(std::string_view s, Level& out) {
  for (Level l : {Level::Off, Level::Note, Level::Warning, Level::Error})
    if (s == level_name(l)) {
      out = l;
      return true;
    }
  return false;
}

Severity severity_of(Level l) {
  switch (l) {
    case Level::Error: return Severity::Error;
    case Level::Warning: return Severity::Warning;
    default: return Severity::Note;
  }
}

Level Config::level(const Rule& r) const {
  auto it = rules.find(r.info.id);
  return it != rules.end() && it->second.has_level ? it->second.level : r.info.level;
}

double Config::option(const Rule& r, std::string_view name) const {
  auto it = rules.find(r.info.id);
  if (it != rules.end())
    if (auto o = it->second.options.find(std::string(name)); o != it->second.options.end()) return o->second;
  for (const OptionInfo& o : r.info.options)
    if (name == o.name) return o.value;
  return 0;
}

bool parse_option(const OptionInfo& o, const std::string& text, double& out) {
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return false;
  std::string digits = text.substr(0, i), unit = text.substr(i);
  char* end = nullptr;
  double v = std::strtod(digits.c_str(), &end);
  if (*end) return false;
  switch (o.type) {
    case OptionInfo::Type::Percent:
      if (unit != "%") return false;
      out = v;
      return true;
    case OptionInfo::Type::Count:
      if (!unit.empty() || v != static_cast<double>(static_cast<long long>(v))) return false;
      out = v;
      return true;
    case OptionInfo::Type::Duration: {
      static const std::pair<const char*, double> units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
      for (auto [u, scale] : units)
        if (unit == u) {
          out = v * scale;
          return true;
        }
      return false;
    }
  }
  return false;
}

namespace {

const char* option_example(OptionInfo::Type t) {
  switch (t) {
    case OptionInfo::Type::Percent: return "a percentage such as \"30%\"";
    case OptionInfo::Type::Duration: return "a duration such as \"30s\"";
    case OptionInfo::Type::Count: return "a whole number such as 3";
  }
  return "";
}

std::string suggest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best = closest_word(word, candidates);
  return best.empty() ? "" : "; did you mean '" + best + "'?";
}

}  // namespace

bool parse_config(const std::string& json_text, Config& out, std::string& error) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, false);
  if (doc.is_discarded()) {
    error = "not valid JSON";
    return false;
  }
  if (!doc.is_object()) {
    error = "expected a JSON object";
    return false;
  }
  auto lint = doc.find("lint");
  if (lint == doc.end()) return true;  // other sections belong to other commands
  if (!lint->is_object()) {
    error = "\"lint\" must be an object such as {\"rules\": {...}}";
    return false;
  }
  std::vector<std::string> rule_ids;
  for (const Rule* r : rules()) rule_ids.push_back(r->info.id);
  for (auto& [key, value] : lint->items()) {
    if (key != "rules") {
      error = "unknown key '" + key + "' in \"lint\"; it holds \"rules\"";
      return false;
    }
    if (!value.is_object()) {
      error = "\"lint.rules\" must be an object of rule ids";
      return false;
    }
    for (auto item = value.begin(); item != value.end(); ++item) {
      // Plain names, not a structured binding: clang 14 cannot capture those in the lambdas below.
      const std::string id = item.key();
      const nlohmann::json& setting = item.value();
      const Rule* rule = find_rule(id);
      if (!rule) {
        error = "unknown lint rule '" + id + "'" + suggest(id, rule_ids);
        return false;
      }
      Config::RuleConfig rc;
      auto set_level = [&](const nlohmann::json& v) {
        if (!v.is_string() || !parse_level(v.get<std::string>(), rc.level)) {
          error = "rule '" + id + "': the severity is \"off\", \"note\", \"warning\" or \"error\", not " + v.dump();
          return false;
        }
        rc.has_level = true;
        return true;
      };
      if (setting.is_string()) {
        if (!set_level(setting)) return false;
      } else if (setting.is_object()) {
        for (auto& [opt, v] : setting.items()) {
          if (opt == "severity") {
            if (!set_level(v)) return false;
            continue;
          }
          const OptionInfo* info = nullptr;
          std::vector<std::string> names = {"severity"};
          for (const OptionInfo& o : rule->info.options) {
            names.push_back(o.name);
            if (opt == o.name) info = &o;
          }
          if (!info) {
            error = "rule '" + id + "' has no option '" + opt + "'" + suggest(opt, names);
            return false;
          }
          double parsed = 0;
          bool ok = v.is_string() ? parse_option(*info, v.get<std::string>(), parsed)
                                  : (v.is_number() && info->type == OptionInfo::Type::Count &&
                                     parse_option(*info, v.dump(), parsed));
          if (!ok || parsed < 0) {
            error = "option '" + opt + "' of '" + id + "' takes " + option_example(info->type) + ", not " + v.dump();
            return false;
          }
          rc.options[opt] = parsed;
        }
      } else {
        error = "rule '" + id + "': expected a severity (\"off\", \"note\", \"warning\", \"error\") or an object such as {\"severity\": \"error\"}";
        return false;
      }
      out.rules[id] = std::move(rc);
    }
  }
  return true;
}

// ---- suppressions ------------------------------------------------------------------

namespace {

struct Suppression {
  Span span;                       // the comment
  uint32_t first_line = 0, last_line = 0;
  std::vector<std::string> ids;    // valid lint rule ids
  std::vector<bool> used;
};

void collect_statements(const std::vector<ast::StmtPtr>& body, std::vector<const ast::Stmt*>& out) {
  for (const ast::StmtPtr& s : body) {
    out.push_back(s.get());
    collect_statements(s->body, out);
    collect_statements(s->else_body, out);
  }
}

// Reads the module's `# gray: ...` comments. Those that are usable come back; the others are
// reported as bad-suppression findings.
std::vector<Suppression> read_suppressions(const ast::Module& m, Level level, Diagnostics& out) {
  std::vector<Suppression> result;
  const SourceFile& file = *m.file;
  std::vector<const ast::Stmt*> stmts;
  collect_statements(m.items, stmts);
  std::sort(stmts.begin(), stmts.end(), [](const ast::Stmt* a, const ast::Stmt* b) { return a->span.begin < b->span.begin; });
  std::vector<std::string> rule_ids;
  for (const Rule* r : rules()) rule_ids.push_back(r->info.id);
  auto bad = [&](Span at, std::string msg, std::string help = "") {
    if (level == Level::Off) return;
    Diagnostic d;
    d.severity = severity_of(level);
    d.code = kBadSuppression;
    d.message = std::move(msg);
    d.help = std::move(help);
    d.span = at;
    out.add(std::move(d));
  };
  for (const ast::Comment& c : m.comments) {
    std::string_view t = file.slice(c.span);
    size_t i = 1;
    while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i;
    if (t.substr(i, 5) != "gray:") continue;
    i += 5;
    while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i;
    const std::string form = "write it as '# gray: ignore=RULE -- reason'";
    if (t.substr(i, 7) != "ignore=") {
      bad(c.span, "unknown '# gray:' directive", form);
      continue;
    }
    i += 7;
    size_t e = i;
    while (e < t.size() && t[e] != ' ' && t[e] != '\t') ++e;
    std::string_view list = t.substr(i, e - i);
    std::string_view rest = t.substr(e);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    std::string_view reason;
    if (rest.substr(0, 2) == "--") {
      reason = rest.substr(2);
      while (!reason.empty() && (reason.front() == ' ' || reason.front() == '\t')) reason.remove_prefix(1);
      while (!reason.empty() && (reason.back() == ' ' || reason.back() == '\t' || reason.back() == '\r')) reason.remove_suffix(1);
    } else if (!rest.empty() && rest.front() != '\r') {
      bad(c.span, "unexpected text after the rule ids of a suppression", form);
      continue;
    }
    Suppression s;
    s.span = c.span;
    size_t b = 0;
    bool ok = true;
    while (b <= list.size()) {
      size_t comma = list.find(',', b);
      if (comma == std::string_view::npos) comma = list.size();
      std::string id(list.substr(b, comma - b));
      b = comma + 1;
      if (id.empty()) {
        bad(c.span, "a suppression names an empty rule id", form);
        ok = false;
        continue;
      }
      if (id == kBadSuppression) {
        bad(c.span, "'bad-suppression' cannot be suppressed; fix the suppression instead");
        ok = false;
      } else if (find_rule(id)) {
        s.ids.push_back(id);
      } else if (find_code(id)) {
        bad(c.span, "'" + id + "' is an error of the language, not a lint rule; it cannot be suppressed");
        ok = false;
      } else {
        std::string best = closest_word(id, rule_ids);
        bad(c.span, "unknown lint rule '" + id + "' in a suppression", best.empty() ? "" : "did you mean '" + best + "'?");
        ok = false;
      }
    }
    if (reason.empty()) {
      bad(c.span, "a suppression needs a reason: '# gray: ignore=" + std::string(list) + " -- why it is fine here'");
      continue;
    }
    if (!ok && s.ids.empty()) continue;
    // A comment after code covers its line; a comment on a line of its own covers the next
    // line of code, and the whole statement that starts there.
    LineCol at = file.line_col(c.span.begin);
    if (!c.own_line) {
      s.first_line = s.last_line = at.line;
    } else {
      uint32_t next = c.span.end;
      const std::string& text = file.text();
      while (next < text.size()) {
        char ch = text[next];
        if (ch == '#') {
          while (next < text.size() && text[next] != '\n') ++next;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
          ++next;
        } else {
          break;
        }
      }
      s.first_line = s.last_line = file.line_col(next).line;
      for (const ast::Stmt* st : stmts)
        if (st->span.begin >= next && file.line_col(st->span.begin).line == s.first_line) {
          s.last_line = std::max(s.last_line, file.line_col(st->span.end).line);
          break;
        }
    }
    s.used.assign(s.ids.size(), false);
    result.push_back(std::move(s));
  }
  return result;
}

}  // namespace

// ---- running the rules -----------------------------------------------------------------

void lint_module(const Project& project, int module, const CheckFacts& facts, const Config& config, Diagnostics& diags) {
  const ast::Module& m = project.module(module).ast;
  if (!m.file) return;
  Model model(project, module, facts);
  Diagnostics found;
  for (const Rule* r : rules()) {
    if (!r->check || config.level(*r) == Level::Off) continue;
    Context cx(model, *r, config, found);
    r->check(cx);
  }
  // One finding per rule and place.
  std::vector<Diagnostic>& list = found.list();
  std::set<std::tuple<std::string, uint32_t, uint32_t, std::string>> seen;
  std::vector<Diagnostic> unique;
  for (Diagnostic& d : list)
    if (seen.insert({d.code, d.span.file, d.span.begin, d.message}).second) unique.push_back(std::move(d));

  const Level bad_level = config.level(kBadSuppressionRule);
  Diagnostics meta;
  std::vector<Suppression> sups = read_suppressions(m, bad_level, meta);
  const SourceFile& file = *m.file;
  for (Diagnostic& d : unique) {
    bool suppressed = false;
    if (d.span.file == file.id()) {
      uint32_t line = file.line_col(d.span.begin).line;
      for (Suppression& s : sups) {
        if (line < s.first_line || line > s.last_line) continue;
        for (size_t i = 0; i < s.ids.size(); ++i)
          if (s.ids[i] == d.code) {
            s.used[i] = true;
            suppressed = true;
          }
      }
    }
    if (!suppressed) diags.add(std::move(d));
  }
  if (bad_level != Level::Off) {
    for (const Suppression& s : sups)
      for (size_t i = 0; i < s.ids.size(); ++i) {
        const Rule* r = find_rule(s.ids[i]);
        if (s.used[i] || !r || config.level(*r) == Level::Off) continue;
        Diagnostic d;
        d.severity = severity_of(bad_level);
        d.code = kBadSuppression;
        d.message = "this suppression of '" + s.ids[i] + "' suppresses nothing";
        d.help = "remove it, or move it onto the line the finding is reported at";
        d.span = s.span;
        meta.add(std::move(d));
      }
    for (Diagnostic& d : meta.list()) diags.add(std::move(d));
  }
}

}  // namespace gray::lint
