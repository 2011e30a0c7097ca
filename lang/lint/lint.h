// Lint: release-safety rules over modules that checked clean, with suppressions written in the
// file (`# gray: ignore=RULE -- reason`) and per-project configuration (gray.json). The rules
// live one per file in lang/lint/rule_<id>.cpp; docs/rules/<id>.md describes each.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lang/check.h"
#include "lang/diag.h"
#include "lang/load.h"

namespace gray::lint {

enum class Level : uint8_t { Off, Note, Warning, Error };

const char* level_name(Level l);
bool parse_level(std::string_view s, Level& out);
Severity severity_of(Level l);

struct OptionInfo {
  enum class Type : uint8_t { Percent, Duration, Count };
  const char* name;
  Type type;
  double value;     // the default: a percentage as written (30 for 30%), a duration in ms, a count
  const char* doc;
};

struct RuleInfo {
  const char* id;          // kebab-case, stable
  Level level;             // default severity
  const char* summary;     // one line: what the rule finds
  std::vector<OptionInfo> options;
};

class Context;

struct Rule {
  RuleInfo info;
  void (*check)(Context& cx);  // null for bad-suppression, which lint_module applies itself
};

// Every rule, sorted by id.
const std::vector<const Rule*>& rules();
const Rule* find_rule(std::string_view id);

inline constexpr const char* kBadSuppression = "bad-suppression";

// The "lint" section of a project's gray.json:
//   {"lint": {"rules": {"ramp-max-jump": {"severity": "warning", "max": "30%"}, "unused-param": "off"}}}
struct Config {
  struct RuleConfig {
    bool has_level = false;
    Level level = Level::Warning;
    std::map<std::string, double> options;
  };
  std::map<std::string, RuleConfig> rules;

  Level level(const Rule& r) const;
  double option(const Rule& r, std::string_view name) const;
};

// Parses the text of gray.json. Unknown rules, unknown options and bad values are errors: on
// one, returns false with a message that names it ("unknown lint rule 'x'; did you mean 'y'?").
bool parse_config(const std::string& json_text, Config& out, std::string& error);

// Parses an option value as gray.json writes it ("30%", "20s", 3).
bool parse_option(const OptionInfo& o, const std::string& text, double& out);

// Runs the rules on one module that checked clean (with its imports) and applies the
// module's suppressions. Findings are appended to `diags`, one per problem, with the rule's id
// as the code and its configured level as the severity.
void lint_module(const Project& project, int module, const CheckFacts& facts, const Config& config, Diagnostics& diags);

}  // namespace gray::lint
