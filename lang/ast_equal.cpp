#include "lang/ast_equal.h"

namespace gray::ast {
namespace {

// Compares two trees node by node; the first difference is described in `why`.
class Compare {
 public:
  Compare(const SourceFile* file, std::string* why) : file_(file), why_(why) {}

  bool expr(const Expr& a, const Expr& b) {
    if (a.kind != b.kind) return differ(a.span, "expression kind");
    if (a.number != b.number || a.boolean != b.boolean) return differ(a.span, "value of '" + a.text + "'");
    if (a.text != b.text) return differ(a.span, "text '" + a.text + "' vs '" + b.text + "'");
    if (a.parts.size() != b.parts.size()) return differ(a.span, "string parts");
    for (size_t i = 0; i < a.parts.size(); ++i) {
      const StrPart& p = a.parts[i];
      const StrPart& q = b.parts[i];
      if (p.is_var != q.is_var || p.text != q.text || p.path != q.path) return differ(p.span, "string part");
    }
    if (a.items.size() != b.items.size()) return differ(a.span, "number of operands or items");
    for (size_t i = 0; i < a.items.size(); ++i)
      if (!opt_expr(a.items[i].get(), b.items[i].get(), a.span)) return false;
    return fields(a.fields, b.fields, a.span);
  }

  bool stmt(const Stmt& a, const Stmt& b) {
    const std::string what = std::string("'") + stmt_kind_name(a.kind) + "' statement";
    if (a.kind != b.kind) return differ(a.span, "statement kind (" + what + ")");
    if (a.name.text != b.name.text) return differ(a.span, "name of the " + what);
    if (a.word.text != b.word.text || a.word2.text != b.word2.text) return differ(a.span, "words of the " + what);
    if (a.str != b.str) return differ(a.span, "string of the " + what);
    if (a.match_kind != b.match_kind || a.match_op != b.match_op) return differ(a.span, "route of the " + what);
    if (a.has_body != b.has_body || a.has_else != b.has_else) return differ(a.span, "blocks of the " + what);
    if (!exprs(a.args, b.args, a.span)) return false;
    if (!opt_expr(a.value.get(), b.value.get(), a.span)) return false;
    if (a.params.size() != b.params.size()) return differ(a.span, "parameters of the " + what);
    for (size_t i = 0; i < a.params.size(); ++i) {
      const Param& p = a.params[i];
      const Param& q = b.params[i];
      if (p.name.text != q.name.text || p.type.text != q.type.text) return differ(p.span, "parameter");
      if (!opt_expr(p.value.get(), q.value.get(), p.span)) return false;
    }
    if (a.clauses.size() != b.clauses.size()) return differ(a.span, "clauses of the " + what);
    for (size_t i = 0; i < a.clauses.size(); ++i) {
      const Clause& c = a.clauses[i];
      const Clause& d = b.clauses[i];
      if (c.key != d.key || c.word.text != d.word.text) return differ(c.span, "clause '" + c.key + "'");
      if (!opt_expr(c.value.get(), d.value.get(), c.span)) return false;
    }
    return stmts(a.body, b.body, a.span) && stmts(a.else_body, b.else_body, a.span);
  }

  bool stmts(const std::vector<StmtPtr>& a, const std::vector<StmtPtr>& b, Span at) {
    if (a.size() != b.size()) return differ(at, "number of statements (" + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + ")");
    for (size_t i = 0; i < a.size(); ++i)
      if (!stmt(*a[i], *b[i])) return false;
    return true;
  }

 private:
  bool opt_expr(const Expr* a, const Expr* b, Span at) {
    if (!a || !b) return a == b ? true : differ(at, "an expression is missing");
    return expr(*a, *b);
  }

  bool exprs(const std::vector<ExprPtr>& a, const std::vector<ExprPtr>& b, Span at) {
    if (a.size() != b.size()) return differ(at, "number of expressions");
    for (size_t i = 0; i < a.size(); ++i)
      if (!opt_expr(a[i].get(), b[i].get(), at)) return false;
    return true;
  }

  bool fields(const std::vector<Field>& a, const std::vector<Field>& b, Span at) {
    if (a.size() != b.size()) return differ(at, "number of fields or arguments");
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].name != b[i].name) return differ(a[i].name_span.valid() ? a[i].name_span : at, "field or argument name");
      if (!opt_expr(a[i].value.get(), b[i].value.get(), at)) return false;
    }
    return true;
  }

  bool differ(Span at, const std::string& what) {
    if (why_) {
      *why_ = what;
      if (file_ && at.valid()) {
        LineCol lc = file_->line_col(at.begin);
        *why_ = file_->path() + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.column) + ": " + what;
      }
    }
    return false;
  }

  const SourceFile* file_;
  std::string* why_;
};

}  // namespace

bool equal(const Expr& a, const Expr& b) { return Compare(nullptr, nullptr).expr(a, b); }

bool equal(const Stmt& a, const Stmt& b) { return Compare(nullptr, nullptr).stmt(a, b); }

bool equal(const Module& a, const Module& b, std::string* why) {
  return Compare(a.file, why).stmts(a.items, b.items, {});
}

}  // namespace gray::ast
