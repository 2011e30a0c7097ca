// The syntax tree of a .gray file. Every node carries its source span; comments are kept
// beside the tree (Module::comments) so the formatter can put them back.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lang/source.h"

namespace gray::ast {

// ---- expressions ----------------------------------------------------------

enum class ExprKind : uint8_t {
  Number,    // 42, 0.5
  Duration,  // 30s, 10m, 300ms  (value in milliseconds)
  Percent,   // 5%               (value as written: 5)
  Bytes,     // 512MB            (value in bytes)
  String,    // "text ${var}"
  Bool,      // true, false
  List,      // [a, b]
  Map,       // {key: value}
  Name,      // version
  Member,    // object.name
  Call,      // callee(args)
  Unary,     // -x, not x
  Binary,    // a + b, a < b, a and b
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// A piece of a string literal: literal text (escapes already decoded) or ${a.b.c}.
struct StrPart {
  bool is_var = false;
  std::string text;               // decoded text, or the dotted path as written
  std::vector<std::string> path;  // for variables: the path's segments
  Span span;
};

// A named field of a map literal, or an argument of a call (name empty when positional).
struct Field {
  std::string name;
  Span name_span;
  ExprPtr value;
};

struct Expr {
  ExprKind kind;
  Span span;
  double number = 0;            // Number, Duration (ms), Percent (as written), Bytes
  bool boolean = false;         // Bool
  std::string text;             // Name, Member's member name, operator, literal as written
  std::vector<StrPart> parts;   // String
  std::vector<ExprPtr> items;   // List items; Member/Call: items[0] is the object/callee; Unary: 1, Binary: 2 operands
  std::vector<Field> fields;    // Map entries; Call arguments
  uint32_t depth = 1;           // height of this subtree

  Expr(ExprKind k, Span s) : kind(k), span(s) {}

  // Sets depth from the direct children; call after attaching them.
  void update_depth() {
    uint32_t d = 0;
    for (const ExprPtr& i : items) d = i && i->depth > d ? i->depth : d;
    for (const Field& f : fields) d = f.value && f.value->depth > d ? f.value->depth : d;
    depth = d + 1;
  }
};

// ---- statements -----------------------------------------------------------

enum class StmtKind : uint8_t {
  Import,    // import "path" [as name]            str, name
  Template,  // template name(params) { items }    name, params, body
  Pipeline,  // pipeline "name" { items }          str, body
  Param,     // param name [: type] [= default]    name, word(type), value
  Let,       // let name = expr                     name, value
  Metric,    // metric name[(params)] = expr [unit u]   name, params, value, word(unit)
  Plugin,    // KIND name = driver [{config}]       word(kind), name, word2(driver), value(config map)
  Stage,     // KIND [name] { items }               word(kind), name, body
  Guard,     // guard ["label"] cond | compare a vs b within p | probe ...  [clauses]
  On,        // on breach|failure|success|timeout ACTION | { steps }   word(event), word2(action), body
  Setting,   // on EXPR | batch EXPR | parallel EXPR | via NAME | steps a -> b | hold D | timeout D   word(key), args
  Run,       // run EXPR [clauses]                  args[0]
  Probe,     // probe http|tcp|cmd EXPR [clauses]  word(kind), args[0]
  Wait,      // wait D                              args[0]
  WaitUntil, // wait until COND [clauses]           args[0]
  Approve,   // approve ["message"] [clauses]       str
  Route,     // route GW header|cookie "k" ==|~ "v" -> TARGET | route GW ip EXPR -> TARGET | route GW clear
  Drain,     // drain TARGET [EXPR] [wait D]        name, args, clauses
  Restore,   // restore TARGET [EXPR]               name, args
  Scale,     // scale GW GROUP to N                 name, word(group), args[0]
  Phase,     // phase "name"                        str
  Undo,      // undo all | undo "command" | undo { steps }   word("all"), args, body
  Abort,     // abort ["reason"]                    str
  If,        // if COND { steps } [else ...]        args[0], body, else_body
  Use,       // use a.b(args)                       args[0] (a Call expression)
  Call,      // gw.weight(0%)                       args[0] (a Call expression)
};

const char* stmt_kind_name(StmtKind k);

// An identifier occurrence with its span.
struct Name {
  std::string text;
  Span span;
  bool empty() const { return text.empty(); }
};

// A trailing option of a statement, for example `timeout 5m`, `every 30s`, `on breach rollback`.
struct Clause {
  std::string key;   // "timeout", "every", "nodata", "on breach", ...
  Span span;         // the whole clause
  ExprPtr value;     // the value, when it is an expression
  Name word;         // the value, when it is a bare word (pass, rollback, ...)
};

// A declared parameter of a template or a parametrised metric.
struct Param {
  Name name;
  Name type;      // optional type name
  ExprPtr value;  // optional default
  Span span;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;

struct Stmt {
  StmtKind kind;
  Span span;
  Span keyword;                     // the leading keyword
  Name name;                        // declared or referenced name (see StmtKind)
  Name word;                        // kind / type / unit / event / probe kind / setting key
  Name word2;                       // driver / action
  std::string str;                  // decoded string head: import path, pipeline name, phase, message
  Span str_span;
  std::vector<ExprPtr> args;        // head expressions
  ExprPtr value;                    // declared value / default / config
  std::vector<Param> params;
  std::vector<Clause> clauses;
  std::vector<StmtPtr> body;
  std::vector<StmtPtr> else_body;
  bool has_body = false;            // a { } block was written
  bool has_else = false;

  // Route: the matcher.
  std::string match_kind;           // "header", "cookie", "ip", "clear"
  std::string match_op;             // "==" or "~"

  Stmt(StmtKind k, Span s) : kind(k), span(s) {}

  const Clause* clause(std::string_view key) const {
    for (const Clause& c : clauses)
      if (c.key == key) return &c;
    return nullptr;
  }
};

struct Comment {
  Span span;          // includes the leading '#'
  bool own_line;      // nothing but whitespace before it on its line
};

// One parsed file.
struct Module {
  const SourceFile* file = nullptr;
  std::vector<StmtPtr> items;      // imports, templates, pipelines
  std::vector<Comment> comments;   // in source order
};

}  // namespace gray::ast
