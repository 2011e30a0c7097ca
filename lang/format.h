// The formatter: a syntax tree back to text, in the one canonical layout of `gray fmt`.
#pragma once

#include <string>

#include "lang/ast.h"

namespace gray {

// Lines of at most this many columns where a line can be broken (comments do not count).
inline constexpr int kFormatWidth = 100;

// Prints a module that parsed without syntax errors. The layout is fixed: two-space indent, one
// statement per line, single spaces around operators and after commas and colons, a group
// (map, list, arguments, parameters, an operator chain, ramp steps) on one line when it fits in
// kFormatWidth columns and one item per line when it does not, at most one blank line where
// the source had any. Every comment is kept where it was: on its own line before what follows
// it, or after the code on its line. Literals are printed as written; parentheses only where
// precedence needs them. The result parses to an equal tree (ast::equal) and formats to itself.
std::string format_module(const ast::Module& module);

}  // namespace gray
