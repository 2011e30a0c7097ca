// Structural equality of syntax trees, ignoring spans and comments: what `gray fmt` must keep.
#pragma once

#include <string>

#include "lang/ast.h"

namespace gray::ast {

bool equal(const Expr& a, const Expr& b);
bool equal(const Stmt& a, const Stmt& b);

// True when both modules hold the same statements and expressions. Spans, comments and the
// layout of the text do not count; literals count as written (`5%` and `5.0%` differ). On a
// difference, `why` (when given) names the first node that differs and where it is in `a`.
bool equal(const Module& a, const Module& b, std::string* why = nullptr);

}  // namespace gray::ast
