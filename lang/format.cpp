// The formatter. Statements are printed one per line by a small block printer; the text of a
// statement is built as a document of groups (Wadler's "prettier printer", as in prettier) so
// that a group that does not fit is broken one item per line. Comments are not in the tree:
// they are placed when the output starts a new line, before the first token whose source
// offset follows them, so every comment ends up in the same gap between tokens (or a later
// one) where a line break is allowed. A group with a comment inside is always broken.
#include "lang/format.h"

#include <algorithm>
#include <string_view>

namespace gray {
namespace {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;

constexpr uint32_t kNoSrc = UINT32_MAX;
constexpr int kIndent = 2;
// Lists and argument lists shorter than this stay on their line: breaking `[200, 204]` or
// `error_rate(version)` over lines helps nobody.
constexpr int kShortGroup = 32;

int columns(std::string_view s) {
  int n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// ---- documents ------------------------------------------------------------------

struct Doc {
  enum Kind : uint8_t { Text, FlatText, Line, Group, Indent, Cat };
  Kind kind = Cat;
  bool space = false;      // Line: a blank when flat
  bool closer = false;     // Text: a closing bracket; comments before it sit one level deeper
  bool breakable = true;   // Group: may be broken when it does not fit
  bool force = false;      // Group: holds a comment, so it is always broken
  int indent = 0;          // Indent
  uint32_t src = kNoSrc;   // Text: the source offset it comes from
  std::string text;
  std::vector<Doc> kids;
};

Doc text(std::string s, uint32_t src = kNoSrc) {
  Doc d;
  d.kind = Doc::Text;
  d.text = std::move(s);
  d.src = src;
  return d;
}

Doc closer(std::string s, uint32_t src) {
  Doc d = text(std::move(s), src);
  d.closer = true;
  return d;
}

Doc flat_text(std::string s) {
  Doc d;
  d.kind = Doc::FlatText;
  d.text = std::move(s);
  return d;
}

Doc line(bool space) {
  Doc d;
  d.kind = Doc::Line;
  d.space = space;
  return d;
}

Doc cat(std::vector<Doc> kids) {
  Doc d;
  d.kind = Doc::Cat;
  d.kids = std::move(kids);
  return d;
}

Doc indent(int n, std::vector<Doc> kids) {
  Doc d;
  d.kind = Doc::Indent;
  d.indent = n;
  d.kids = std::move(kids);
  return d;
}

Doc group(std::vector<Doc> kids, bool breakable, bool force) {
  Doc d;
  d.kind = Doc::Group;
  d.breakable = breakable;
  d.force = force;
  d.kids = std::move(kids);
  return d;
}

int flat_width(const Doc& d) {
  switch (d.kind) {
    case Doc::Text:
    case Doc::FlatText: return columns(d.text);
    case Doc::Line: return d.space ? 1 : 0;
    default: {
      int n = 0;
      for (const Doc& k : d.kids) n += flat_width(k);
      return n;
    }
  }
}

// ---- output lines, and where comments go ------------------------------------------

class Out {
 public:
  Out(const SourceFile& file, std::vector<ast::Comment> comments) : file_(file), comments_(std::move(comments)) {
    std::stable_sort(comments_.begin(), comments_.end(),
                     [](const ast::Comment& a, const ast::Comment& b) { return a.span.begin < b.span.begin; });
  }

  int column() const {
    if (pending_ || lines_.empty()) return pending_ ? pending_indent_ : 0;
    return lines_.back().indent + columns(lines_.back().code);
  }

  bool has_comments(uint32_t begin, uint32_t end) const {
    auto it = std::lower_bound(comments_.begin(), comments_.end(), begin,
                               [](const ast::Comment& c, uint32_t b) { return c.span.begin < b; });
    return it != comments_.end() && it->span.begin < end;
  }

  // A line break inside a statement; it is written when the next text comes.
  void newline(int indent) {
    pending_ = true;
    pending_indent_ = indent;
  }

  void text(std::string_view s, uint32_t src, bool is_closer) {
    if (pending_) {
      if (src != kNoSrc) flush(src, is_closer ? pending_indent_ + kIndent : pending_indent_, false);
      start_line(pending_indent_);
      pending_ = false;
    }
    if (lines_.empty()) start_line(0);
    lines_.back().code += s;
  }

  // Starts a statement at `indent`: first the comments before it, and a blank line where the
  // source had one (but not at the start of a block).
  void statement(int indent, uint32_t src) {
    flush(src, indent, true);
    if (!block_start_ && blank_between(last_end_, src)) lines_.push_back({});
    start_line(indent);
    block_start_ = false;
  }

  void open_block() { block_start_ = true; }
  void end_statement(uint32_t end) { last_end_ = std::max(last_end_, end); }

  // Before the '}' at `close`: the comments still inside the block, then the line of the '}'.
  void close_block(int body_indent, int indent, uint32_t close) {
    flush(close, body_indent, true);
    start_line(indent);
    block_start_ = false;
  }

  std::string finish() {
    flush(UINT32_MAX, 0, true);
    align_comments();
    std::string out;
    for (const Line& l : lines_) {
      if (l.code.empty() && l.comment.empty()) {
        out += '\n';
        continue;
      }
      out.append(static_cast<size_t>(l.indent), ' ');
      out += l.code;
      if (!l.comment.empty()) {
        if (!l.code.empty()) out.append(static_cast<size_t>(std::max(1, l.pad)), ' ');
        out += l.comment;
      }
      out += '\n';
    }
    return out;
  }

 private:
  struct Line {
    int indent = 0;
    std::string code;
    std::string comment;
    int pad = 2;  // blanks between the code and a trailing comment
  };

  // Writes the comments that start before `limit`. The first may follow the code of the current
  // line if it followed code in the source; the others get lines of their own at `indent`.
  void flush(uint32_t limit, int indent, bool statement_level) {
    bool trailing = true;
    while (next_ < comments_.size() && comments_[next_].span.begin < limit) {
      const ast::Comment& c = comments_[next_++];
      std::string t(file_.slice(c.span));
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.pop_back();
      Line* cur = lines_.empty() ? nullptr : &lines_.back();
      if (trailing && !c.own_line && cur && !cur->code.empty() && cur->comment.empty()) {
        cur->comment = std::move(t);
      } else {
        if (statement_level && !block_start_ && blank_between(last_end_, c.span.begin)) lines_.push_back({});
        lines_.push_back({indent, "", std::move(t), 0});
        if (statement_level) block_start_ = false;
      }
      trailing = false;
      last_end_ = std::max(last_end_, c.span.end);
    }
  }

  void start_line(int indent) { lines_.push_back({indent, "", "", 2}); }

  bool blank_between(uint32_t a, uint32_t b) const {
    const std::string& t = file_.text();
    int newlines = 0;
    for (uint32_t i = a; i < b && i < t.size(); ++i)
      if (t[i] == '\n' && ++newlines >= 2) return true;
    return false;
  }

  // Trailing comments of consecutive lines at one indentation line up, two blanks after the
  // longest code.
  void align_comments() {
    size_t i = 0;
    while (i < lines_.size()) {
      auto trailing = [&](size_t k) { return !lines_[k].code.empty() && !lines_[k].comment.empty(); };
      if (!trailing(i)) {
        ++i;
        continue;
      }
      size_t j = i;
      int width = 0;
      while (j < lines_.size() && trailing(j) && lines_[j].indent == lines_[i].indent) {
        width = std::max(width, columns(lines_[j].code));
        ++j;
      }
      for (size_t k = i; k < j; ++k) lines_[k].pad = width - columns(lines_[k].code) + 2;
      i = j;
    }
  }

  const SourceFile& file_;
  std::vector<ast::Comment> comments_;
  size_t next_ = 0;
  std::vector<Line> lines_;
  bool pending_ = false;
  int pending_indent_ = 0;
  bool block_start_ = true;
  uint32_t last_end_ = 0;
};

// ---- precedence -------------------------------------------------------------------

constexpr int kPrecUnary = 6;
constexpr int kPrecPostfix = 7;
constexpr int kPrecPrimary = 8;

int op_prec(const std::string& op) {
  if (op == "or") return 1;
  if (op == "and") return 2;
  if (op == "+" || op == "-") return 4;
  if (op == "*" || op == "/") return 5;
  return 3;  // comparisons
}

int prec(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Binary: return op_prec(e.text);
    case ExprKind::Unary: return kPrecUnary;
    case ExprKind::Member:
    case ExprKind::Call: return kPrecPostfix;
    default: return kPrecPrimary;
  }
}

// Comparisons do not chain, so a comparison on the left of one needs parentheses too.
int left_ctx(const Expr& e) { return op_prec(e.text) == 3 ? 4 : op_prec(e.text); }
int right_ctx(const Expr& e) { return op_prec(e.text) + 1; }

bool breakable_op(const std::string& op) { return op == "and" || op == "or" || op == "+" || op == "-"; }

// Words that end an expression where a statement expects a value (`hold for 10m` is an
// error, not a name), so a value that starts with one is parenthesised.
bool is_clause_word(std::string_view w) {
  static const std::string_view words[] = {"for",    "every", "limit",  "errors",  "samples", "nodata", "timeout",
                                           "attempts", "expect", "contains", "header", "else",  "wait",   "default",
                                           "vs",     "within", "to",     "unit"};
  return std::find(std::begin(words), std::end(words), w) != std::end(words);
}

// The first token of `e` as printed at precedence `ctx`.
std::string_view first_token(const Expr& e, int ctx) {
  if (prec(e) < ctx) return "(";
  switch (e.kind) {
    case ExprKind::Binary: return first_token(*e.items.at(0), left_ctx(e));
    case ExprKind::Member:
    case ExprKind::Call: return first_token(*e.items.at(0), kPrecPostfix);
    case ExprKind::String: return "\"";
    case ExprKind::List: return "[";
    case ExprKind::Map: return "{";
    default: return e.text;
  }
}

// ---- the printer ------------------------------------------------------------------

class Printer {
 public:
  explicit Printer(const ast::Module& m) : m_(m), file_(*m.file), out_(*m.file, m.comments) {}

  std::string run() {
    out_.open_block();
    for (const ast::StmtPtr& s : m_.items) {
      out_.statement(0, s->span.begin);
      stmt(*s, 0);
      out_.end_statement(s->span.end);
    }
    return out_.finish();
  }

 private:
  // ---- rendering a document ----

  struct Cmd {
    int indent;
    bool flat;
    const Doc* doc;
  };

  void render(const Doc& d, int base) {
    std::vector<Cmd> cmds{{base, false, &d}};
    while (!cmds.empty()) {
      Cmd c = cmds.back();
      cmds.pop_back();
      const Doc& x = *c.doc;
      switch (x.kind) {
        case Doc::Text: out_.text(x.text, x.src, x.closer); break;
        case Doc::FlatText:
          if (c.flat) out_.text(x.text, kNoSrc, false);
          break;
        case Doc::Line:
          if (!c.flat) out_.newline(c.indent);
          else if (x.space) out_.text(" ", kNoSrc, false);
          break;
        case Doc::Cat:
        case Doc::Indent: {
          int in = c.indent + (x.kind == Doc::Indent ? x.indent : 0);
          for (auto it = x.kids.rbegin(); it != x.kids.rend(); ++it) cmds.push_back({in, c.flat, &*it});
          break;
        }
        case Doc::Group: {
          bool flat = !x.force && (c.flat || !x.breakable || fits(x, cmds, kFormatWidth - out_.column()));
          for (auto it = x.kids.rbegin(); it != x.kids.rend(); ++it) cmds.push_back({c.indent, flat, &*it});
          break;
        }
      }
    }
  }

  // Whether `g` fits flat in `width` columns, together with what follows it up to the next
  // place where the line may break.
  static bool fits(const Doc& g, const std::vector<Cmd>& rest, int width) {
    std::vector<Cmd> stack;
    for (auto it = g.kids.rbegin(); it != g.kids.rend(); ++it) stack.push_back({0, true, &*it});
    size_t r = rest.size();
    while (width >= 0) {
      if (stack.empty()) {
        if (r == 0) return true;
        stack.push_back(rest[--r]);
        continue;
      }
      Cmd c = stack.back();
      stack.pop_back();
      const Doc& x = *c.doc;
      switch (x.kind) {
        case Doc::Text: width -= columns(x.text); break;
        case Doc::FlatText:
          if (c.flat) width -= columns(x.text);
          break;
        case Doc::Line:
          if (!c.flat) return true;
          width -= x.space ? 1 : 0;
          break;
        case Doc::Cat:
        case Doc::Indent:
          for (auto it = x.kids.rbegin(); it != x.kids.rend(); ++it) stack.push_back({0, c.flat, &*it});
          break;
        case Doc::Group: {
          bool flat = !x.force && (!x.breakable || c.flat);
          for (auto it = x.kids.rbegin(); it != x.kids.rend(); ++it) stack.push_back({0, flat, &*it});
          break;
        }
      }
    }
    return false;
  }

  // ---- source positions ----

  // The offset of the first `ch` at or after `from` that is not in a comment or a string.
  uint32_t find_char(uint32_t from, char ch) const {
    const std::string& t = file_.text();
    uint32_t p = from;
    while (p < t.size() && t[p] != ch) {
      if (t[p] == '#') {
        while (p < t.size() && t[p] != '\n') ++p;
        continue;
      }
      if (t[p] == '"') {
        ++p;
        while (p < t.size() && t[p] != '"' && t[p] != '\n') p += t[p] == '\\' ? 2 : 1;
      }
      ++p;
    }
    return p;
  }

  // The offset of the next token at or after `from`: blanks, line breaks, continuations,
  // comments and ';' are skipped.
  uint32_t skip_trivia(uint32_t from) const {
    const std::string& t = file_.text();
    uint32_t p = from;
    while (p < t.size()) {
      char c = t[p];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '\\') {
        ++p;
      } else if (c == '#') {
        while (p < t.size() && t[p] != '\n') ++p;
      } else {
        break;
      }
    }
    return p;
  }

  struct BlockPos {
    uint32_t open = 0, close = 0;
    bool empty = true;  // no statements and no comments: printed "{}"
  };

  BlockPos block_pos(const std::vector<ast::StmtPtr>& body, uint32_t open) const {
    BlockPos b;
    b.open = open;
    b.close = find_char(body.empty() ? open + 1 : body.back()->span.end, '}');
    b.empty = body.empty() && !out_.has_comments(b.open, b.close);
    return b;
  }

  Doc opener(const BlockPos& b) const { return text(b.empty ? " {}" : " {"); }

  void block_body(const std::vector<ast::StmtPtr>& body, int ind, const BlockPos& b) {
    if (b.empty) return;
    out_.open_block();
    for (const ast::StmtPtr& s : body) {
      out_.statement(ind + kIndent, s->span.begin);
      stmt(*s, ind + kIndent);
      out_.end_statement(s->span.end);
    }
    out_.close_block(ind + kIndent, ind, b.close);
    out_.text("}", b.close, false);
    out_.end_statement(b.close + 1);
  }

  // A statement with a block: its head, then the block.
  void with_block(Doc head, const std::vector<ast::StmtPtr>& body, int ind, uint32_t head_end) {
    BlockPos b = block_pos(body, find_char(head_end, '{'));
    head.kids.push_back(opener(b));
    render(head, ind);
    block_body(body, ind, b);
  }

  // ---- expressions ----

  Doc src_text(Span s) const { return text(std::string(file_.slice(s)), s.begin); }

  Doc expr(const Expr& e, int ctx, bool sole = false) {
    if (prec(e) < ctx) return cat({text("(", e.span.begin), expr(e, 0), text(")")});
    switch (e.kind) {
      case ExprKind::Number:
      case ExprKind::Duration:
      case ExprKind::Percent:
      case ExprKind::Bytes:
      case ExprKind::String:
      case ExprKind::Bool:
      case ExprKind::Name: return text(e.text, e.span.begin);
      case ExprKind::List: return list(e);
      case ExprKind::Map: return map(e);
      case ExprKind::Member: return cat({expr(*e.items.at(0), kPrecPostfix), text("." + e.text)});
      case ExprKind::Call: return call(e);
      case ExprKind::Unary: {
        const Expr& operand = *e.items.at(0);
        if (e.text == "not") return cat({text("not ", e.span.begin), expr(operand, kPrecUnary)});
        // -(-x), not --x.
        if (first_token(operand, kPrecUnary) == "-") return cat({text("-(", e.span.begin), expr(operand, 0), text(")")});
        return cat({text("-", e.span.begin), expr(operand, kPrecUnary)});
      }
      case ExprKind::Binary: return binary(e, sole);
    }
    return text(e.text, e.span.begin);
  }

  // A value where a statement expects one: parenthesised when it would start with a word that
  // the grammar reads as the end of the value (or as another form of the statement).
  Doc slot(const Expr& e, std::initializer_list<std::string_view> also = {}) {
    std::string_view first = first_token(e, 0);
    bool wrap = is_clause_word(first);
    for (std::string_view a : also) wrap |= first == a;
    if (wrap) return cat({text("(", e.span.begin), expr(e, 0), text(")")});
    return expr(e, 0);
  }

  Doc binary(const Expr& e, bool sole) {
    const int p = op_prec(e.text);
    if (!breakable_op(e.text))
      return cat({expr(*e.items.at(0), left_ctx(e)), text(" " + e.text + " "), expr(*e.items.at(1), right_ctx(e))});
    // A left-leaning chain of one precedence: a + b - c.
    std::vector<const Expr*> chain;
    const Expr* cur = &e;
    while (cur->kind == ExprKind::Binary && op_prec(cur->text) == p) {
      chain.push_back(cur);
      cur = cur->items.at(0).get();
    }
    std::reverse(chain.begin(), chain.end());
    std::vector<Doc> rest;
    for (const Expr* b : chain) {
      rest.push_back(text(" " + b->text));
      rest.push_back(line(true));
      rest.push_back(expr(*b->items.at(1), right_ctx(*b)));
    }
    return group({expr(*cur, p), indent(sole ? 0 : kIndent, std::move(rest))}, true, out_.has_comments(e.span.begin, e.span.end));
  }

  // `open items close`: one line, or one item per line.
  Doc bracketed(const char* open, std::vector<Doc> items, const char* close, uint32_t close_src, bool commas, bool spaces,
                bool breakable, bool force) {
    if (items.empty() && !force) return text(std::string(open) + close);
    std::vector<Doc> inner;
    inner.push_back(line(spaces));
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) {
        inner.push_back(commas ? text(",") : flat_text(","));
        inner.push_back(line(true));
      }
      inner.push_back(std::move(items[i]));
    }
    return group({text(open), indent(kIndent, std::move(inner)), line(spaces), closer(close, close_src)}, breakable, force);
  }

  Doc list(const Expr& e) {
    std::vector<Doc> items;
    for (const ast::ExprPtr& i : e.items) items.push_back(expr(*i, 0, e.items.size() == 1));
    Doc d = bracketed("[", std::move(items), "]", e.span.end - 1, true, false, true, out_.has_comments(e.span.begin, e.span.end));
    if (d.kind == Doc::Group) d.breakable = flat_width(d) >= kShortGroup;
    return d;
  }

  Doc map(const Expr& e) {
    std::vector<Doc> items;
    for (const ast::Field& f : e.fields)
      items.push_back(cat({text(std::string(file_.slice(f.name_span)) + ": ", f.name_span.begin), expr(*f.value, 0)}));
    return bracketed("{", std::move(items), "}", e.span.end - 1, false, true, true, out_.has_comments(e.span.begin, e.span.end));
  }

  Doc call(const Expr& e) {
    const Expr& callee = *e.items.at(0);
    std::vector<Doc> items;
    for (const ast::Field& f : e.fields) {
      if (f.name.empty()) items.push_back(expr(*f.value, 0, e.fields.size() == 1));
      else items.push_back(cat({text(f.name + ": ", f.name_span.begin), expr(*f.value, 0)}));
    }
    Doc args = bracketed("(", std::move(items), ")", e.span.end - 1, true, false, true,
                         out_.has_comments(callee.span.end, e.span.end));
    if (args.kind == Doc::Group) args.breakable = flat_width(args) >= kShortGroup;
    return cat({expr(callee, kPrecPostfix), std::move(args)});
  }

  // Parameters of a template or a metric, with the offset of their ')'.
  Doc params(const Stmt& s, uint32_t& close) {
    uint32_t from = s.params.empty() ? s.name.span.end : s.params.back().span.end;
    close = find_char(from, ')');
    uint32_t open = find_char(s.name.span.end, '(');
    std::vector<Doc> items;
    for (const ast::Param& p : s.params) {
      std::vector<Doc> parts{text(p.name.text, p.name.span.begin)};
      if (!p.type.empty()) parts.push_back(text(": " + p.type.text));
      if (p.value) {
        parts.push_back(text(" = "));
        parts.push_back(slot(*p.value));
      }
      items.push_back(cat(std::move(parts)));
    }
    return bracketed("(", std::move(items), ")", close, true, false, true, out_.has_comments(open, close));
  }

  // ---- statements ----

  Doc kw(const Stmt& s, std::string word) const { return text(std::move(word), s.span.begin); }

  void clauses(std::vector<Doc>& d, const Stmt& s) {
    for (const ast::Clause& c : s.clauses) {
      d.push_back(text(" " + c.key + " "));
      d.push_back(c.value ? slot(*c.value) : text(c.word.text));
    }
  }

  void stmt(const Stmt& s, int ind) {
    std::vector<Doc> d;
    switch (s.kind) {
      case StmtKind::Import:
        d = {kw(s, "import "), src_text(s.str_span)};
        if (!s.name.empty()) d.push_back(text(" as " + s.name.text));
        break;
      case StmtKind::Template: {
        uint32_t close = 0;
        Doc ps = params(s, close);
        with_block(cat({kw(s, "template " + s.name.text), std::move(ps)}), s.body, ind, close + 1);
        return;
      }
      case StmtKind::Pipeline:
        with_block(cat({kw(s, "pipeline "), src_text(s.str_span)}), s.body, ind, s.str_span.end);
        return;
      case StmtKind::Param:
        d = {kw(s, "param " + s.name.text)};
        if (!s.word.empty()) d.push_back(text(": " + s.word.text));
        if (s.value) {
          d.push_back(text(" = "));
          d.push_back(slot(*s.value));
        }
        break;
      case StmtKind::Let: d = {kw(s, "let " + s.name.text + " = "), slot(*s.value)}; break;
      case StmtKind::Metric: {
        d = {kw(s, "metric " + s.name.text)};
        if (!s.params.empty()) {
          uint32_t close = 0;
          d.push_back(params(s, close));
        }
        d.push_back(text(" = "));
        d.push_back(slot(*s.value));
        if (!s.word.empty()) d.push_back(text(" unit " + s.word.text));
        break;
      }
      case StmtKind::Plugin:
        d = {kw(s, s.word.text + " " + s.name.text + " = " + s.word2.text)};
        if (s.value) {
          d.push_back(text(" "));
          d.push_back(map(*s.value));
        }
        break;
      case StmtKind::Stage: {
        uint32_t head_end = s.name.empty() ? s.keyword.end : s.name.span.end;
        with_block(cat({kw(s, s.name.empty() ? s.word.text : s.word.text + " " + s.name.text)}), s.body, ind, head_end);
        return;
      }
      case StmtKind::Guard:
        d = {kw(s, "guard")};
        if (s.str_span.valid()) {
          d.push_back(text(" "));
          d.push_back(src_text(s.str_span));
        }
        if (s.word.text == "compare") {
          d.push_back(text(" compare "));
          d.push_back(slot(*s.args.at(0)));
          d.push_back(text(" vs "));
          d.push_back(slot(*s.args.at(1)));
          d.push_back(text(" within "));
          d.push_back(slot(*s.args.at(2)));
        } else if (s.word.text == "probe") {
          d.push_back(text(" probe " + s.word2.text + " "));
          d.push_back(slot(*s.args.at(0)));
        } else {
          d.push_back(text(" "));
          // Without a label, a condition that starts with a string would read as the label.
          d.push_back(s.str_span.valid() ? slot(*s.args.at(0)) : slot(*s.args.at(0), {"\""}));
        }
        clauses(d, s);
        break;
      case StmtKind::On:
        if (!s.word2.empty()) {
          d = {kw(s, "on " + s.word.text + " " + s.word2.text)};
          break;
        }
        with_block(cat({kw(s, "on " + s.word.text)}), s.body, ind, s.word.span.end);
        return;
      case StmtKind::Setting:
        d = {kw(s, s.word.text + " ")};
        if (s.word.text == "steps") {
          std::vector<Doc> rest;
          for (size_t i = 1; i < s.args.size(); ++i) {
            rest.push_back(text(" ->"));
            rest.push_back(line(true));
            rest.push_back(slot(*s.args[i]));
          }
          bool force = out_.has_comments(s.args.front()->span.begin, s.args.back()->span.end);
          d.push_back(group({slot(*s.args.at(0)), indent(kIndent, std::move(rest))}, true, force));
        } else {
          d.push_back(slot(*s.args.at(0)));
        }
        break;
      case StmtKind::Run:
        d = {kw(s, "run "), slot(*s.args.at(0))};
        clauses(d, s);
        break;
      case StmtKind::Probe:
        d = {kw(s, "probe " + s.word.text + " "), slot(*s.args.at(0))};
        clauses(d, s);
        break;
      case StmtKind::Wait: d = {kw(s, "wait "), slot(*s.args.at(0), {"until"})}; break;
      case StmtKind::WaitUntil:
        d = {kw(s, "wait until "), slot(*s.args.at(0))};
        clauses(d, s);
        break;
      case StmtKind::Approve:
        d = {kw(s, "approve")};
        if (s.str_span.valid()) {
          d.push_back(text(" "));
          d.push_back(src_text(s.str_span));
        }
        clauses(d, s);
        break;
      case StmtKind::Route:
        d = {kw(s, "route " + s.name.text + " " + s.match_kind)};
        if (s.match_kind == "ip") {
          d.push_back(text(" "));
          d.push_back(expr(*s.args.at(0), kPrecPostfix));
          d.push_back(text(" -> "));
          d.push_back(slot(*s.args.at(1)));
        } else if (s.match_kind != "clear") {
          d.push_back(text(" "));
          d.push_back(expr(*s.args.at(0), kPrecPrimary));
          d.push_back(text(" " + s.match_op + " "));
          d.push_back(expr(*s.args.at(1), kPrecPostfix));
          d.push_back(text(" -> "));
          d.push_back(slot(*s.args.at(2)));
        }
        break;
      case StmtKind::Drain:
      case StmtKind::Restore:
        d = {kw(s, std::string(s.kind == StmtKind::Drain ? "drain " : "restore ") + s.name.text)};
        if (!s.args.empty()) {
          d.push_back(text(" "));
          d.push_back(expr(*s.args[0], kPrecPostfix));
        }
        clauses(d, s);
        break;
      case StmtKind::Scale: d = {kw(s, "scale " + s.name.text + " " + s.word.text + " to "), slot(*s.args.at(0))}; break;
      case StmtKind::Phase: d = {kw(s, "phase "), src_text(s.str_span)}; break;
      case StmtKind::Undo:
        if (s.word.text == "all") {
          d = {kw(s, "undo all")};
        } else if (s.has_body) {
          with_block(cat({kw(s, "undo")}), s.body, ind, s.keyword.end);
          return;
        } else {
          d = {kw(s, "undo "), slot(*s.args.at(0), {"all", "{"})};
        }
        break;
      case StmtKind::Abort:
        d = {kw(s, "abort")};
        if (s.str_span.valid()) {
          d.push_back(text(" "));
          d.push_back(src_text(s.str_span));
        }
        break;
      case StmtKind::If: if_stmt(s, ind); return;
      case StmtKind::Use: d = {kw(s, "use "), expr(*s.args.at(0), kPrecPostfix)}; break;
      case StmtKind::Call: d = {expr(*s.args.at(0), kPrecPostfix)}; break;
    }
    render(cat(std::move(d)), ind);
  }

  void if_stmt(const Stmt& s, int ind) {
    BlockPos body = block_pos(s.body, find_char(s.args.at(0)->span.end, '{'));
    render(cat({text("if ", s.keyword.begin), slot(*s.args[0]), opener(body)}), ind);
    block_body(s.body, ind, body);
    if (!s.has_else) return;
    // `} else if c {` or `} else {`, as written: both mean the same, and the block may hold comments.
    const uint32_t else_at = skip_trivia(body.close + 1);
    const uint32_t after = skip_trivia(else_at + 4);
    const bool chained = s.else_body.size() == 1 && s.else_body[0]->kind == StmtKind::If && after < file_.text().size() &&
                         file_.text()[after] != '{';
    out_.text(" else ", kNoSrc, false);
    if (chained) {
      if_stmt(*s.else_body[0], ind);
      return;
    }
    BlockPos eb = block_pos(s.else_body, after);
    out_.text(eb.empty ? "{}" : "{", kNoSrc, false);
    block_body(s.else_body, ind, eb);
  }

  const ast::Module& m_;
  const SourceFile& file_;
  Out out_;
};

}  // namespace

std::string format_module(const ast::Module& module) {
  if (!module.file) return {};
  return Printer(module).run();
}

}  // namespace gray
