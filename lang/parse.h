// Parsing: source text to syntax tree. The grammar lives in parse.cpp, behind this one function.
#pragma once

#include "lang/ast.h"
#include "lang/diag.h"

namespace gray {

struct ParseLimits {
  unsigned max_depth = 128;   // nesting of blocks and expressions
  unsigned max_errors = 50;   // syntax errors reported per file before giving up
};

// Parses one file. Reports every syntax error it can find (it recovers at statement and block
// ends) and returns the statements it could read; `diags` tells whether the tree is complete.
ast::Module parse(const SourceFile& file, Diagnostics& diags, const ParseLimits& limits = {});

// Whether a word is reserved (cannot name a parameter, template, plugin or module alias).
bool is_reserved(std::string_view word);

// Number of problems PEGTL's grammar analysis finds (0 for a well-formed grammar). For tests.
size_t analyze_grammar(bool verbose);

}  // namespace gray
