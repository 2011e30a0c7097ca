// Name resolution and checking: scopes, imports, templates, types and units, placement of
// statements, and plugin configurations against each driver's schema.
#pragma once

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "lang/diag.h"
#include "lang/load.h"
#include "plugins/catalog.h"

namespace gray {

// What the checker learned about names, for the passes that run after it (lint): which
// declaration each name refers to, which declarations are used, which template each `use`
// instantiates. Filled only when check_project is given one.
struct CheckFacts {
  enum class RefKind : uint8_t { Value, Metric, Plugin, Import, Template, Function, Host };
  struct Ref {
    RefKind kind = RefKind::Value;
    plugins::Type type = plugins::Type::Any;  // of a value, of a metric's reading, of a plugin instance
    plugins::Kind plugin = plugins::Kind::Gateway;
    Span decl;                                // the declared name; invalid for builtins
    const ast::Stmt* stmt = nullptr;          // the declaring param, let, metric, plugin or template
    bool template_param = false;              // a parameter of the template being checked
  };
  struct TemplateUse {
    const ast::Stmt* decl = nullptr;  // the template
    int module = -1;                  // the module that declares it
  };

  // The declaration a name (or an interpolated ${name}) starting at `use` refers to.
  const Ref* ref(Span use) const {
    auto it = std::lower_bound(refs.begin(), refs.end(), key(use), [](const auto& r, uint64_t k) { return r.first < k; });
    return it != refs.end() && it->first == key(use) ? &it->second : nullptr;
  }
  // Whether anything refers to the declaration whose name is at `decl`.
  bool used(Span decl) const { return std::binary_search(used_decls.begin(), used_decls.end(), key(decl)); }
  const TemplateUse* template_of(const ast::Stmt& use) const {
    auto it = uses.find(&use);
    return it == uses.end() ? nullptr : &it->second;
  }

  static uint64_t key(Span s) { return (static_cast<uint64_t>(s.file) << 32) | s.begin; }

  // Filled in any order while checking, then sorted by finish() for the lookups above.
  std::vector<std::pair<uint64_t, Ref>> refs;
  std::vector<uint64_t> used_decls;
  std::unordered_map<const ast::Stmt*, TemplateUse> uses;

  void finish() {
    std::stable_sort(refs.begin(), refs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    refs.erase(std::unique(refs.begin(), refs.end(), [](const auto& a, const auto& b) { return a.first == b.first; }), refs.end());
    std::sort(used_decls.begin(), used_decls.end());
    used_decls.erase(std::unique(used_decls.begin(), used_decls.end()), used_decls.end());
  }
};

// Checks every module loaded into the project (each once): its templates and its pipeline.
// Modules with syntax errors are skipped; their errors are already reported.
void check_project(const Project& project, Diagnostics& diags, CheckFacts* facts = nullptr);

}  // namespace gray
