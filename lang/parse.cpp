// The .gray grammar (PEGTL 3) and the lowering of its parse tree into the AST.
//
// Shape: while matching, the grammar records a syntax tree of selected rules only (node_kind,
// built by `control` into one flat vector); `Lower` turns that tree into ast:: nodes. Errors are raised with a message per expectation (error_text<Rule>),
// caught at the nearest statement (recoverable<>), recorded, and parsing resumes after the
// statement, so one run reports every syntax error in the file.
#include "lang/parse.h"

#include <tao/pegtl.hpp>
#include <tao/pegtl/contrib/analyze.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "lang/codes.h"
#include "lang/text.h"

namespace gray {
namespace {

namespace pegtl = tao::pegtl;

// ---- parse state shared by the custom rules ---------------------------------

// ---- the syntax tree the grammar builds -----------------------------------------

// Kinds of the rules that make tree nodes (node_kind<Rule> below); other rules leave no node.
enum class N : uint8_t {
  None, Name, Word, Number, String, StrText, StrEsc, StrInterp, Bool, List, Map, Field, FieldKey, Paren, Postfix, Member,
  CallArgs, Arg, ArgName, Neg, OpNeg, OpNot, Mul, Add, Cmp, And, Or, Op,
  Clause, ClauseKey,
  Param, Let, TParam, TParams, TypeAnn, Default, Metric, MetricUnit, Unit, PluginKind, Plugin, PluginConfig,
  SetOn, SetBatch, SetParallel, SetVia, SetSteps, SetHold, OnStmt, OnEvent, OnAction,
  Guard, GuardLabel, GuardCompare, GuardProbe, ProbeKind,
  Run, Probe, WaitUntil, Wait, Approve, ApproveMessage, Route, RouteKind, RouteOp, RouteClear, RouteMatch, RouteIp,
  Drain, DrainSubject, Restore, Scale, Group, Phase, Undo, UndoAll, UndoBlock, Abort, AbortMessage, If, Else, Use, Call,
  StageKind, StageName, Stage, Pipeline, Template, Import, ImportAlias, Driver,
};

struct Node;

// The children of a node, in source order.
class Kids {
 public:
  Kids() = default;
  Kids(const Node* const* data, uint32_t size) : data_(data), size_(size) {}
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const Node* operator[](size_t i) const { return data_[i]; }
  const Node* at(size_t i) const {
    if (i >= size_) throw std::out_of_range("syntax tree: no child " + std::to_string(i));
    return data_[i];
  }
  const Node* front() const { return at(0); }
  const Node* const* begin() const { return data_; }
  const Node* const* end() const { return data_ + size_; }

 private:
  const Node* const* data_ = nullptr;
  uint32_t size_ = 0;
};

// A node of the syntax tree. The grammar appends nodes in pre-order to one vector as rules
// start, and an attempt that fails is undone by truncating the vector: no allocation per node
// or per failed attempt. Children are linked once the parse is over (link_children).
// Trivial on purpose: NodeBuffer leaves its slots uninitialised until the grammar fills them.
struct Node {
  static constexpr uint32_t kNotTrimmed = UINT32_MAX;
  N kind;
  uint32_t begin;  // byte offsets of the matched text, trailing blanks and comments included
  uint32_t end;
  uint32_t next;   // pre-order index one past this node's subtree
  mutable uint32_t trimmed;  // `end` without the trailing blanks (Lower::trim_end), once known
  uint32_t kid_count;
  const Node* const* kids;

  Kids children() const { return Kids(kids, kid_count); }
};

// The nodes of the tree being built. The grammar's hot path only appends and cuts back, so
// this is a plain stack: a push is two stores and an increment, a cut is one store. Untouched
// capacity costs address space only, so it can be reserved generously.
class NodeBuffer {
 public:
  size_t size() const { return size_; }
  Node& operator[](size_t i) { return slots_[i]; }
  void push(N kind, uint32_t begin) {
    if (size_ == capacity_) reserve(std::max<size_t>(1024, capacity_ * 2));
    Node& n = slots_[size_++];
    n.kind = kind;
    n.begin = begin;
  }
  void truncate(size_t size) { size_ = size; }
  void reserve(size_t capacity) {
    if (capacity <= capacity_) return;
    std::unique_ptr<Node[]> bigger(new Node[capacity]);
    if (size_) std::memcpy(bigger.get(), slots_.get(), size_ * sizeof(Node));
    slots_ = std::move(bigger);
    capacity_ = capacity;
  }

 private:
  std::unique_ptr<Node[]> slots_;
  size_t size_ = 0, capacity_ = 0;
};
static_assert(std::is_trivially_default_constructible_v<Node> && std::is_trivially_copyable_v<Node>);

struct SyntaxError {
  uint32_t begin;
  uint32_t end;
  std::string message;
  std::string help;
  uint32_t related = UINT32_MAX;  // an earlier offset worth pointing at (an opening brace)
  std::string related_label;
  const char* code = code::kSyntax;
};

struct TooManyErrors {};

struct ParseState {
  const char* base = nullptr;
  const ParseLimits* limits = nullptr;
  std::vector<SyntaxError> errors;
  std::vector<ast::Comment> comments;
  uint32_t next_comment = 0;  // comments before this offset are already recorded
  unsigned depth = 0;
  unsigned brackets = 0;  // open (, [ or map {: newlines are blanks inside them
  uint32_t string_start = 0;            // opening quote of the string being read
  uint32_t op_begin = 0, op_end = 0;    // the last binary operator read
  std::vector<uint32_t> opens;          // offsets of the open ( [ { of expressions
  NodeBuffer nodes;                     // the syntax tree so far, in pre-order

  void add_comment(const char* b, const char* e) {
    uint32_t bo = offset(b);
    if (bo < next_comment) return;  // seen before backtracking
    next_comment = offset(e);
    bool own_line = true;
    for (const char* p = b; p > base && p[-1] != '\n'; --p)
      if (p[-1] != ' ' && p[-1] != '\t') {
        own_line = false;
        break;
      }
    comments.push_back({{0, bo, offset(e)}, own_line});
  }

  uint32_t offset(const char* p) const { return static_cast<uint32_t>(p - base); }

  void report(SyntaxError e) {
    // A missing '}' at the end of a file is seen by every enclosing block: say it once.
    for (const SyntaxError& old : errors)
      if (old.begin == e.begin && old.message == e.message) return;
    errors.push_back(std::move(e));
    if (errors.size() >= limits->max_errors) throw TooManyErrors{};
  }
};

inline void pick(ParseState*& out, ParseState& s) { out = &s; }
template <typename T>
inline void pick(ParseState*&, T&) {}

template <typename... States>
ParseState& state_of(States&... st) {
  ParseState* p = nullptr;
  (pick(p, st), ...);
  return *p;
}

// ---- lexical helpers ----------------------------------------------------------

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

// What is at `p`, for "found ..." in messages.
// Length of the UTF-8 sequence starting at p (1 for a stray byte).
size_t utf8_len(const char* p, const char* end) {
  unsigned char c = static_cast<unsigned char>(*p);
  size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
  return std::min<size_t>(n, static_cast<size_t>(end - p));
}

// The extent of the token at p, for underlining it.
size_t token_length(const char* p, const char* end) {
  if (p >= end) return 0;
  if (is_ident_char(*p)) {
    const char* q = p;
    while (q < end && (is_ident_char(*q) || *q == '%')) ++q;
    return static_cast<size_t>(q - p);
  }
  static const char* const two[] = {"->", "==", "!=", "<=", ">=", "//", "/*", "&&", "||"};
  for (const char* t : two)
    if (end - p >= 2 && p[0] == t[0] && p[1] == t[1]) return 2;
  if (*p == '\n' || *p == '\r') return 0;
  return utf8_len(p, end);
}

std::string describe_at(const char* p, const char* end) {
  if (p >= end) return "end of file";
  char c = *p;
  if (c != '"' && c != '\n' && c != '\r' && static_cast<unsigned char>(c) >= 0x20 && !is_ident_char(c)) {
    size_t n = token_length(p, end);
    if (n > 1 || static_cast<unsigned char>(c) >= 0x80) return "'" + std::string(p, n) + "'";
  }
  if (is_ident_char(c)) {
    const char* q = p;
    while (q < end && (is_ident_char(*q) || *q == '.' || *q == '%') && q - p < 40) ++q;
    return "'" + std::string(p, q) + "'";
  }
  if (c == '"') return "a string";
  if (c == '\n' || c == '\r') return "end of line";
  if (static_cast<unsigned char>(c) < 0x20) return "a control character";
  return std::string("'") + c + "'";
}

constexpr std::string_view kUnits[] = {"ms", "s", "m", "h", "d", "%", "B", "KB", "MB", "GB", "KiB", "MiB", "GiB"};

bool known_unit(std::string_view u) {
  for (std::string_view k : kUnits)
    if (k == u) return true;
  return false;
}

// Spellings people reach for, and the unit gray uses for them.
std::string unit_alias(std::string_view u) {
  static const std::pair<std::string_view, std::string_view> aliases[] = {
      {"min", "m"},  {"mins", "m"}, {"minute", "m"}, {"minutes", "m"}, {"sec", "s"},     {"secs", "s"},  {"second", "s"},
      {"seconds", "s"}, {"hr", "h"}, {"hrs", "h"},  {"hour", "h"},      {"hours", "h"},   {"day", "d"},    {"days", "d"},
      {"msec", "ms"}, {"millis", "ms"}, {"pct", "%"}, {"percent", "%"}, {"kb", "KB"},    {"mb", "MB"},   {"gb", "GB"}};
  for (auto& [from, to] : aliases)
    if (from == u) return std::string(to);
  return {};
}

const std::vector<std::string_view>& unit_names() {
  static const std::vector<std::string_view> v(std::begin(kUnits), std::end(kUnits));
  return v;
}

// ---- the grammar --------------------------------------------------------------

namespace g {

using namespace pegtl;

// Whitespace. A statement ends at the end of its line, so `sp` skips only blanks, comments and
// `\`-continued line breaks, except inside brackets (ParseState::brackets > 0) where newlines
// are blanks too. `nsp` always skips newlines: between statements and after binary operators.
template <bool Newlines>
struct ws {
  using rule_t = ws;
  using subs_t = empty_list;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st) {
    ParseState& ps = state_of(st...);
    const bool nl = Newlines || ps.brackets > 0;
    const char* p = in.current();
    const char* end = in.end();
    while (p < end) {
      char c = *p;
      if (c == ' ' || c == '\t' || c == '\r' || (c == '\n' && nl)) {
        ++p;
      } else if (c == '\\' && p + 1 < end && (p[1] == '\n' || (p[1] == '\r' && p + 2 < end && p[2] == '\n'))) {
        p += p[1] == '\n' ? 2 : 3;
      } else if (c == '#') {
        const char* b = p;
        while (p < end && *p != '\n') ++p;
        ps.add_comment(b, p);
      } else {
        break;
      }
    }
    in.bump(static_cast<size_t>(p - in.current()));
    return true;
  }
};
struct sp : ws<false> {};
struct nsp : ws<true> {};

// Reserved words start statements or are operators; they cannot be names. The other keywords
// (clause words such as timeout, every, limit) have meaning only where the grammar expects
// them, so they stay free for names.
#define GRAY_RESERVED(X)                                                                                          \
  X(import) X(template) X(pipeline) X(param) X(let) X(metric) X(gateway) X(registry) X(hosts) X(metrics)          \
  X(images) X(deploy) X(verify) X(ramp) X(align) X(rollback) X(guard) X(use) X(on) X(batch) X(parallel) X(via)    \
  X(steps) X(hold) X(run) X(probe) X(wait) X(approve) X(route) X(drain) X(restore) X(scale) X(phase) X(undo)      \
  X(abort) X(if) X(else) X(true) X(false) X(and) X(or) X(not) X(compare)
#define GRAY_CONTEXT_KEYWORDS(X)                                                                                  \
  X(as) X(unit) X(until) X(vs) X(within) X(for) X(every) X(limit) X(errors) X(samples) X(nodata) X(timeout)       \
  X(attempts) X(expect) X(contains) X(header) X(cookie) X(ip) X(to) X(default) X(all) X(clear) X(breach)          \
  X(failure) X(success)

// A word as a template argument, for kw<"if">.
template <size_t N>
struct Literal {
  char text[N - 1];
  static constexpr size_t size = N - 1;
  constexpr Literal(const char (&s)[N]) { std::copy_n(s, N - 1, text); }
};

// A keyword: the word, not followed by a letter, digit or '_', exactly as PEGTL's keyword<>
// (which is seq<string<...>, not_at<identifier_other>>), including where it leaves the input
// when the word is a prefix of a longer name and nothing rewinds: `scale a b topx` reports the
// missing 'to' after "to". Written out so that a statement that starts with another word fails
// at its first byte: every item of a block tries the statements in turn.
template <Literal W>
struct kw {
  using rule_t = kw;
  using subs_t = empty_list;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&...) {
    constexpr size_t n = decltype(W)::size;
    const char* p = in.current();
    const size_t avail = static_cast<size_t>(in.end() - p);
    if (avail < n || p[0] != W.text[0] || std::memcmp(p + 1, W.text + 1, n - 1) != 0) return false;
    if (avail > n && is_ident_char(p[n])) {
      if constexpr (M != rewind_mode::required) in.bump(n);
      return false;
    }
    in.bump(n);
    return true;
  }
};

#define GRAY_DEFINE_KW(w) \
  struct w##_w : kw<#w> {}; \
  struct k_##w : seq<w##_w, sp> {};
GRAY_RESERVED(GRAY_DEFINE_KW)
GRAY_CONTEXT_KEYWORDS(GRAY_DEFINE_KW)
#undef GRAY_DEFINE_KW

bool reserved_word(std::string_view w) {
  // Bucketed by first letter: names are checked against this list at every use.
  static const auto by_letter = [] {
    std::array<std::vector<std::string_view>, 26> t;
#define GRAY_KW_NAME(k) #k,
    for (std::string_view k : {GRAY_RESERVED(GRAY_KW_NAME)}) t[static_cast<size_t>(k[0] - 'a')].push_back(k);
#undef GRAY_KW_NAME
    return t;
  }();
  if (w.size() < 2 || w[0] < 'a' || w[0] > 'z') return false;
  for (std::string_view k : by_letter[static_cast<size_t>(w[0] - 'a')])
    if (k == w) return true;
  return false;
}

// A reserved word (the whole identifier here is one), as the alternatives of its keywords.
struct reserved {
  using rule_t = reserved;
  using subs_t = empty_list;
  template <typename ParseInput>
  static bool match(ParseInput& in) {
    const char* p = in.current();
    const char* q = p;
    while (q < in.end() && is_ident_char(*q)) ++q;
    if (!reserved_word(std::string_view(p, static_cast<size_t>(q - p)))) return false;
    in.bump(static_cast<size_t>(q - p));
    return true;
  }
};

template <char C>
struct sym : seq<one<C>, sp> {};
struct arrow : seq<string<'-', '>'>, nsp> {};
struct comma : seq<one<','>, nsp> {};
struct semi : sym<';'> {};

struct name : seq<not_at<reserved>, identifier> {};
struct name_tok : seq<name, sp> {};
struct word : identifier {};  // any identifier, reserved or not: member names, map keys, enum words
struct word_tok : seq<word, sp> {};

// A number with an optional unit suffix (5, 0.5, 30s, 5%, 512MiB); an unknown suffix is an error
// with a suggestion, raised here so that it takes part in recovery.
struct number_lit {
  using rule_t = number_lit;
  using subs_t = empty_list;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st) {
    const char* b = in.current();
    const char* end = in.end();
    const char* p = b;
    while (p < end && *p >= '0' && *p <= '9') ++p;
    if (p == b) return false;
    if (p + 1 < end && *p == '.' && p[1] >= '0' && p[1] <= '9') {
      ++p;
      while (p < end && *p >= '0' && *p <= '9') ++p;
    }
    const char* u = p;
    if (p < end && *p == '%') ++p;
    else
      while (p < end && is_ident_char(*p)) ++p;
    std::string_view unit(u, static_cast<size_t>(p - u));
    if (!unit.empty() && !known_unit(unit)) {
      ParseState& ps = state_of(st...);
      std::string best = unit_alias(unit);
      if (best.empty() && unit.size() >= 2) best = closest_word(unit, unit_names());
      throw SyntaxError{ps.offset(u), ps.offset(p),
                        "unknown unit '" + std::string(unit) + "' in '" + std::string(b, p) + "'",
                        best.empty() ? "units are ms, s, m, h, d (durations), % (percentages), B, KB, MB, GB, KiB, MiB, GiB (sizes)"
                                     : "did you mean '" + std::string(b, u) + best + "'?",
                        UINT32_MAX, {}, code::kBadUnit};
    }
    in.bump(static_cast<size_t>(p - b));
    return true;
  }
};

// Strings: one line, escapes, and ${a.b} interpolation of names.
struct esc_char : one<'"', '\\', 'n', 't', 'r', '$', '0'> {};
struct str_esc : seq<one<'\\'>, must<esc_char>> {};
struct interp_path : seq<identifier, star<one<'.'>, identifier>> {};
struct interp_close : one<'}'> {};
struct str_interp : seq<string<'$', '{'>, star<one<' ', '\t'>>, must<interp_path>, star<one<' ', '\t'>>, must<interp_close>> {};
struct str_text : plus<sor<not_one<'"', '\\', '$', '\n', '\r'>, seq<one<'$'>, not_at<one<'{'>>>>> {};
struct str_close : one<'"'> {};
// The opening quote; remembered so that an unterminated string is reported where it starts.
struct string_open {
  using rule_t = string_open;
  using subs_t = empty_list;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st) {
    if (in.empty() || in.peek_char() != '"') return false;
    state_of(st...).string_start = state_of(st...).offset(in.current());
    in.bump(1);
    return true;
  }
};
struct string_lit : seq<string_open, star<sor<str_text, str_esc, str_interp>>, must<str_close>> {};
struct string_tok : seq<string_lit, sp> {};

// Depth guard: nesting beyond the limit is an error, not a stack overflow. Brackets also make
// newlines insignificant inside them; a block of statements makes them significant again.
enum class Lines { Keep, Blank, Significant };

template <typename R, Lines L = Lines::Keep>
struct nested {
  using rule_t = nested;
  using subs_t = type_list<R>;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st) {
    ParseState& ps = state_of(st...);
    if (ps.depth >= ps.limits->max_depth) {
      uint32_t at = ps.offset(in.current());
      throw SyntaxError{at, at + 1,
                        "nesting is deeper than " + std::to_string(ps.limits->max_depth) + " levels",
                        "split the expression or block into named parts", UINT32_MAX, {}};
    }
    struct Restore {
      ParseState& ps;
      unsigned brackets;
      size_t opens;
      ~Restore() {
        --ps.depth;
        ps.brackets = brackets;
        ps.opens.resize(opens);
      }
    } restore{ps, ps.brackets, ps.opens.size()};
    ++ps.depth;
    if constexpr (L == Lines::Blank) {
      ++ps.brackets;
      ps.opens.push_back(ps.offset(in.current()) - 1);  // entered just after the bracket
    }
    if constexpr (L == Lines::Significant) ps.brackets = 0;
    return Control<R>::template match<A, M, Action, Control>(in, st...);
  }
};

template <typename R>
struct bracketed : nested<R, Lines::Blank> {};

// A binary operator; remembered so that a missing right operand is reported at the operator.
template <typename R>
struct op_mark {
  using rule_t = op_mark;
  using subs_t = type_list<R>;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st) {
    const char* b = in.current();
    if (!Control<R>::template match<A, M, Action, Control>(in, st...)) return false;
    ParseState& ps = state_of(st...);
    ps.op_begin = ps.offset(b);
    ps.op_end = ps.offset(in.current());
    return true;
  }
};

// ---- expressions ----

struct expr;
struct expr_value : seq<expr> {};  // an expression that must be there (after '(' or ',')
struct close_paren : one<')'> {};
struct close_args : one<')'> {};
struct close_bracket : one<']'> {};
struct close_brace_map : one<'}'> {};

struct paren : seq<one<'('>, bracketed<seq<sp, must<expr_value>, must<close_paren>>>, sp> {};
struct list_items : seq<expr, star<comma, expr>, opt<comma>> {};
struct list_lit : seq<one<'['>, bracketed<seq<sp, opt<list_items>, must<close_bracket>>>, sp> {};

struct field_key : sor<word, string_lit> {};
struct field_colon : sym<':'> {};
struct field : seq<field_key, sp, must<field_colon>, must<expr_value>> {};
// A '{' starts a map only when a key and ':' (or '}') follow; otherwise it is a block, as in `if x {`.
struct map_space : star<sor<one<' ', '\t', '\r', '\n'>, seq<one<'#'>, star<not_one<'\n'>>>>> {};
struct map_start : seq<one<'{'>, map_space, sor<one<'}'>, seq<sor<identifier, seq<one<'"'>, star<not_one<'"', '\n'>>, one<'"'>>>, star<one<' ', '\t'>>, one<':'>>>> {};
struct map_lit : seq<one<'{'>, bracketed<seq<sp, star<field, opt<comma>>, must<close_brace_map>>>, sp> {};
struct map_expr : seq<at<map_start>, map_lit> {};

struct bool_lit : sor<true_w, false_w> {};
struct primary : sor<seq<number_lit, sp>, string_tok, seq<bool_lit, sp>, list_lit, map_expr, paren, name_tok> {};

struct arg_name : seq<word, sp, one<':'>, not_at<one<':'>>, sp> {};
struct arg : sor<seq<arg_name, must<expr_value>>, expr> {};
struct call_args : seq<one<'('>, bracketed<seq<sp, opt<arg, star<comma, arg>, opt<comma>>, must<close_args>>>, sp> {};
struct member_name : identifier {};
struct member : seq<one<'.'>, must<member_name>, sp> {};
struct postfix : seq<primary, star<sor<member, call_args>>> {};

struct op_neg : seq<one<'-'>, not_at<one<'>'>>> {};
struct op_not : not_w {};
struct unary;
struct unary_operand : seq<unary> {};
struct neg_expr : seq<sor<op_neg, op_not>, sp, nested<must<unary_operand>>> {};
struct unary : sor<neg_expr, postfix> {};

struct op_mul : one<'*', '/'> {};
struct op_add : sor<one<'+'>, seq<one<'-'>, not_at<one<'>'>>>> {};
struct op_cmp : sor<string<'=', '='>, string<'!', '='>, string<'<', '='>, string<'>', '='>, one<'<'>, one<'>'>> {};
struct op_and : and_w {};
struct op_or : or_w {};

struct operand : seq<unary> {};
struct mul_expr : seq<unary, star<op_mark<op_mul>, nsp, must<operand>>> {};
struct add_operand : seq<mul_expr> {};
struct add_expr : seq<mul_expr, star<op_mark<op_add>, nsp, must<add_operand>>> {};
struct cmp_operand : seq<add_expr> {};
struct cmp_expr : seq<add_expr, opt<op_mark<op_cmp>, nsp, must<cmp_operand>>> {};
struct and_operand : seq<cmp_expr> {};
struct and_expr : seq<cmp_expr, star<op_mark<op_and>, nsp, must<and_operand>>> {};
struct or_operand : seq<and_expr> {};
struct or_expr : seq<and_expr, star<op_mark<op_or>, nsp, must<or_operand>>> {};
struct expr : seq<or_expr> {};

// ---- clauses: `key value` options after a statement's head ----

template <typename K>
struct ckey : K {};  // the clause keyword, kept in the tree
template <typename K, typename V>
struct clause : seq<ckey<K>, sp, must<V>> {};

// Words that follow a value; a value never starts with one, so `hold for 10m` says the duration
// is missing instead of reading `for` as a name.
struct clause_word : sor<for_w, every_w, limit_w, errors_w, samples_w, nodata_w, timeout_w, attempts_w, expect_w, contains_w,
                         header_w, else_w, wait_w, default_w, vs_w, within_w, to_w, unit_w> {};

// Expected values, one type per message (see error_text below).
#define GRAY_EXPECT(N, R) \
  struct N : seq<not_at<clause_word>, R> {};
GRAY_EXPECT(v_duration, expr)
GRAY_EXPECT(v_count, expr)
GRAY_EXPECT(v_nodata, word_tok)
GRAY_EXPECT(v_else, word_tok)
GRAY_EXPECT(v_default, word_tok)
GRAY_EXPECT(v_header, expr)
GRAY_EXPECT(v_expect, expr)
GRAY_EXPECT(v_contains, expr)
GRAY_EXPECT(v_tolerance, expr)

// Every statement reads any clause; the checker says which ones apply where, so a clause in the
// wrong statement gets "does not apply" rather than a syntax error.
struct any_clause
    : sor<clause<timeout_w, v_duration>, clause<every_w, v_duration>, clause<for_w, v_duration>, clause<wait_w, v_duration>,
          clause<attempts_w, v_count>, clause<limit_w, v_count>, clause<errors_w, v_count>, clause<samples_w, v_count>,
          clause<nodata_w, v_nodata>, clause<else_w, v_else>, clause<default_w, v_default>, clause<header_w, v_header>,
          clause<expect_w, v_expect>, clause<contains_w, v_contains>> {};
struct clauses : star<any_clause> {};

// ---- statements ----

template <typename Item, bool Braced>
struct item_list;
template <typename Item>
struct block;
template <typename Bad>
struct bad_item;

struct s_name : seq<name_tok> {};
struct s_string : seq<string_tok> {};
struct s_eq : sym<'='> {};
struct s_lparen : sym<'('> {};
struct s_arrow : seq<arrow> {};
struct s_to : seq<k_to> {};
struct s_vs : seq<k_vs> {};
struct s_within : seq<k_within> {};
struct s_type : seq<word_tok> {};
struct s_driver : seq<word_tok> {};
struct s_unit : seq<sor<seq<one<'%'>, sp>, word_tok>> {};
struct s_probe_kind : seq<word_tok> {};
struct s_group : seq<word_tok> {};
struct s_call : seq<postfix> {};
struct s_on_action : seq<word_tok> {};

// Values after a statement keyword, each with its own message.
GRAY_EXPECT(x_hold, expr)
GRAY_EXPECT(x_batch, expr)
GRAY_EXPECT(x_parallel, expr)
GRAY_EXPECT(x_steps, expr)
GRAY_EXPECT(x_step, expr)
GRAY_EXPECT(x_on, expr)
GRAY_EXPECT(x_run, expr)
GRAY_EXPECT(x_probe, expr)
GRAY_EXPECT(x_wait, expr)
GRAY_EXPECT(x_until, expr)
GRAY_EXPECT(x_let, expr)
GRAY_EXPECT(x_default, expr)
GRAY_EXPECT(x_metric, expr)
GRAY_EXPECT(x_if, expr)
GRAY_EXPECT(x_guard, expr)
GRAY_EXPECT(x_compare, expr)
GRAY_EXPECT(x_scale, expr)
GRAY_EXPECT(x_route_key, string_tok)
GRAY_EXPECT(x_route_value, postfix)
GRAY_EXPECT(x_route_target, expr)
GRAY_EXPECT(x_route_ip, postfix)

struct type_ann : seq<sym<':'>, must<s_type>> {};
struct default_val : seq<s_eq, must<x_default>> {};

struct param_stmt : seq<k_param, must<s_name>, opt<type_ann>, opt<default_val>> {};
struct let_stmt : seq<k_let, must<s_name>, must<s_eq>, must<x_let>> {};

struct tparam : seq<name_tok, opt<type_ann>, opt<default_val>> {};
struct tparams : seq<one<'('>, bracketed<seq<sp, opt<tparam, star<comma, tparam>, opt<comma>>, must<close_paren>>>, sp> {};
struct metric_unit : seq<k_unit, must<s_unit>> {};
struct metric_stmt : seq<k_metric, must<s_name>, opt<tparams>, must<s_eq>, must<x_metric>, opt<metric_unit>> {};

struct plugin_kind : sor<gateway_w, registry_w, hosts_w, metrics_w, images_w> {};
struct plugin_config : seq<map_lit> {};
struct plugin_stmt : seq<plugin_kind, sp, must<s_name>, must<s_eq>, must<s_driver>, opt<plugin_config>> {};

// Stage settings.
struct set_on : seq<k_on, must<x_on>> {};
struct set_batch : seq<k_batch, must<x_batch>> {};
struct set_parallel : seq<k_parallel, must<x_parallel>> {};
struct set_via : seq<k_via, must<s_name>> {};
struct set_steps : seq<k_steps, must<x_steps>, star<arrow, must<x_step>>> {};
struct set_hold : seq<k_hold, must<x_hold>> {};

// on breach|failure|success|timeout ACTION | { steps }
struct on_event : sor<breach_w, failure_w, success_w, timeout_w> {};
struct step_item;
struct on_body : sor<block<step_item>, s_on_action> {};
struct on_stmt : seq<k_on, on_event, sp, must<on_body>> {};

struct guard_compare : seq<k_compare, must<x_compare>, must<s_vs>, must<x_compare>, must<s_within>, must<v_tolerance>> {};
struct guard_probe : seq<k_probe, must<s_probe_kind>, must<x_probe>> {};
struct guard_label : seq<string_tok> {};
struct guard_body : sor<guard_compare, guard_probe, x_guard> {};
struct guard_stmt : seq<k_guard, opt<guard_label>, must<guard_body>, clauses> {};

struct run_stmt : seq<k_run, must<x_run>, clauses> {};
struct probe_stmt : seq<k_probe, must<s_probe_kind>, must<x_probe>, clauses> {};
struct wait_until_stmt : seq<k_wait, k_until, must<x_until>, clauses> {};
struct wait_stmt : seq<k_wait, must<x_wait>> {};
struct approve_message : seq<string_tok> {};
struct approve_stmt : seq<k_approve, opt<approve_message>, clauses> {};

struct route_kind : sor<header_w, cookie_w> {};
struct route_op : sor<string<'=', '='>, one<'~'>> {};
struct s_route_op : seq<route_op, sp> {};
struct route_clear : seq<clear_w, sp> {};
struct route_match : seq<route_kind, sp, must<x_route_key>, must<s_route_op>, must<x_route_value>, must<s_arrow>, must<x_route_target>> {};
struct route_ip : seq<ip_w, sp, must<x_route_ip>, must<s_arrow>, must<x_route_target>> {};
struct route_body : sor<route_clear, route_match, route_ip> {};
struct route_stmt : seq<k_route, must<s_name>, must<route_body>> {};

struct drain_subject : seq<postfix> {};
struct drain_stmt : seq<k_drain, must<s_name>, opt<drain_subject>, clauses> {};
struct restore_stmt : seq<k_restore, must<s_name>, opt<drain_subject>, clauses> {};
struct scale_stmt : seq<k_scale, must<s_name>, must<s_group>, must<s_to>, must<x_scale>> {};
struct phase_stmt : seq<k_phase, must<s_string>> {};
struct undo_all : seq<all_w, sp> {};
struct undo_block : seq<block<step_item>> {};
struct undo_body : sor<undo_all, undo_block, x_run> {};
struct undo_stmt : seq<k_undo, must<undo_body>> {};
struct abort_message : seq<string_tok> {};
struct abort_stmt : seq<k_abort, opt<abort_message>> {};
struct if_stmt;
struct else_body : sor<if_stmt, block<step_item>> {};
struct else_part : seq<k_else, must<else_body>> {};
struct if_stmt : seq<k_if, must<x_if>, must<block<step_item>>, opt<else_part>> {};
struct use_stmt : seq<k_use, must<s_call>> {};
// A plugin call used as a step, for example `edge.weight(0%)`.
struct call_head : seq<not_at<reserved>, identifier, at<one<'.', '('>>> {};
struct call_stmt_rule : seq<at<call_head>, postfix> {};

struct step : sor<run_stmt, probe_stmt, wait_until_stmt, wait_stmt, approve_stmt, route_stmt, drain_stmt, restore_stmt,
                  scale_stmt, phase_stmt, undo_stmt, abort_stmt, if_stmt, use_stmt, let_stmt, call_stmt_rule, semi> {};
struct setting : sor<set_batch, set_parallel, set_via, set_steps, set_hold> {};
struct bad_step {};
struct bad_stage_item {};
struct bad_pipeline_item {};
struct bad_template_item {};
struct bad_top_item {};

struct step_item : sor<step, bad_item<bad_step>> {};
struct stage_item : sor<on_stmt, set_on, setting, guard_stmt, step, bad_item<bad_stage_item>> {};

struct stage_kind : sor<deploy_w, verify_w, ramp_w, align_w, rollback_w> {};
struct stage_name : seq<name_tok> {};
struct x_stage_name : seq<stage_name> {};
// Every stage is named, except the one rollback stage.
struct stage_stmt : sor<seq<at<rollback_w>, stage_kind, sp, opt<stage_name>, must<block<stage_item>>>,
                        seq<stage_kind, sp, must<x_stage_name>, must<block<stage_item>>>> {};

struct pipeline_item : sor<param_stmt, let_stmt, metric_stmt, plugin_stmt, stage_stmt, guard_stmt, use_stmt, on_stmt, semi,
                           bad_item<bad_pipeline_item>> {};
struct pipeline_stmt : seq<k_pipeline, must<s_string>, must<block<pipeline_item>>> {};

struct template_item : sor<param_stmt, metric_stmt, plugin_stmt, stage_stmt, on_stmt, set_on, setting, guard_stmt, step,
                           bad_item<bad_template_item>> {};
struct template_stmt : seq<k_template, must<s_name>, must<tparams>, must<block<template_item>>> {};

struct import_alias : seq<k_as, must<s_name>> {};
struct import_stmt : seq<k_import, must<s_string>, opt<import_alias>> {};

struct top_item : sor<import_stmt, template_stmt, pipeline_stmt, semi, bad_item<bad_top_item>> {};

// Skips the rest of a broken statement: to the end of its line, or past the block it opens.
// Skips the rest of a broken statement. It ends at a line break (or ';') that comes at or after
// the error and outside any '{' it opened, so a statement continued over lines (after '->',
// inside a map) is skipped whole. Unclosed '(' and '[' do not hold it open: they are the likely
// mistake. A '{' on the next line still belongs to the statement; a line indented no deeper
// than the statement that starts with a name ends even an unclosed map.
template <typename ParseInput>
void skip_statement(ParseInput& in, const char* from, const char* error_at = nullptr) {
  const char* p = from;
  const char* end = in.end();
  const char* line = from;
  while (line > in.begin() && line[-1] != '\n') --line;
  const long indent = from - line;
  int braces = 0;
  while (p < end) {
    char c = *p;
    if (c == '"') {
      ++p;
      while (p < end && *p != '"' && *p != '\n') p += (*p == '\\' && p + 1 < end && p[1] != '\n') ? 2 : 1;
      if (p < end && *p == '"') ++p;
      continue;
    }
    if (c == '#') {
      while (p < end && *p != '\n') ++p;
      continue;
    }
    if (c == '{') ++braces;
    if (c == '}') {
      if (braces == 0) break;  // belongs to the enclosing block
      --braces;
    }
    if ((c == '\n' || c == ';') && p >= error_at) {
      const char* q = p + 1;
      while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')) ++q;
      if (braces == 0) {
        if (c == '\n' && q < end && *q == '{') {
          p = q;  // the block of a statement whose '{' went to the next line
          continue;
        }
        break;
      }
      const char* bol = q;
      while (bol > p + 1 && bol[-1] != '\n') --bol;
      if (c == '\n' && q < end && q - bol <= indent && is_ident_start(*q)) break;
    }
    ++p;
  }
  if (p == from && p < end && *p != '}') p += utf8_len(p, end);  // always make progress
  in.bump(static_cast<size_t>(p - in.current()));
}

// Matches one item; on a syntax error records it, skips the statement and carries on.
template <typename R>
struct recoverable {
  using rule_t = recoverable;
  using subs_t = type_list<R>;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st) {
    ParseState& ps = state_of(st...);
    const char* start = in.current();
    const size_t nodes = ps.nodes.size();
    try {
      return Control<R>::template match<A, rewind_mode::required, Action, Control>(in, st...);
    } catch (SyntaxError& e) {
      const char* at = ps.base + e.begin;
      ps.nodes.truncate(nodes);  // the statement's partial tree
      ps.report(std::move(e));
      in.iterator() = start;
      skip_statement(in, start, at);
    }
    return true;
  }
};

// Statements one per line (or separated by ';'), each recovered on its own. Braced: the list
// ends at '}'; a missing '}' is reported and the list ends at the end of the file, keeping what
// was read.
template <typename Item, bool Braced>
struct item_list {
  using rule_t = item_list;
  using subs_t = type_list<nsp, Item>;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st) {
    ParseState& ps = state_of(st...);
    const uint32_t open = ps.offset(in.current()) - (Braced ? 1 : 0);
    for (;;) {
      (void)Control<nsp>::template match<A, M, Action, Control>(in, st...);
      if (in.empty()) {
        if constexpr (Braced) {
          // Point at the end of the last line with text, not past the final newline.
          const char* e = in.current();
          while (e > ps.base && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) --e;
          uint32_t at = ps.offset(e);
          ps.report({at, at, "expected '}' to close this block, found end of file", {}, open, "the block opens here"});
        }
        return true;
      }
      if (in.peek_char() == '}') {
        if constexpr (Braced) {
          in.bump(1);
          return true;
        }
        uint32_t at = ps.offset(in.current());
        ps.report({at, at + 1, "unexpected '}' with no block open", {}, UINT32_MAX, {}});
        in.bump(1);
        continue;
      }
      const size_t before = ps.errors.size();
      (void)Control<recoverable<Item>>::template match<A, M, Action, Control>(in, st...);
      if (!in.empty() && in.peek_char() == ';') {
        in.bump(1);
        continue;
      }
      if (ps.errors.size() != before || in.empty()) continue;
      char c = in.peek_char();
      if (c == '\n' || (Braced && c == '}')) continue;
      // Something follows a complete statement on the same line.
      ps.report(junk_error(in, ps));
      skip_statement(in, in.current());
    }
  }

  // "10 secs", "5 %": a unit separated from its number reads as a second statement.
  template <typename ParseInput>
  static SyntaxError junk_error(const ParseInput& in, const ParseState& ps) {
    const char* p = in.current();
    const char* end = in.end();
    const uint32_t at = ps.offset(p);
    SyntaxError e{at, at + static_cast<uint32_t>(std::max<size_t>(1, token_length(p, end))),
                  "expected the end of the statement (a new line or ';'), found " + describe_at(p, end), {}, UINT32_MAX, {}};
    std::string_view tok(p, e.end - e.begin);
    const char* before = p;
    while (before > ps.base && (before[-1] == ' ' || before[-1] == '\t')) --before;
    if (before > ps.base && before[-1] >= '0' && before[-1] <= '9' && (known_unit(tok) || !unit_alias(tok).empty())) {
      std::string unit = known_unit(tok) ? std::string(tok) : unit_alias(tok);
      e.message = "a unit is written right after its number, with no space";
      const char* num = before;
      while (num > ps.base && ((num[-1] >= '0' && num[-1] <= '9') || num[-1] == '.')) --num;
      e.begin = ps.offset(num);
      e.help = "write " + std::string(num, before) + unit;
    }
    return e;
  }
};

template <typename Item>
struct block : seq<one<'{'>, nested<item_list<Item, true>, Lines::Significant>, sp> {};

// The last alternative of an item list: raises "unknown statement" with a suggestion.
template <typename Bad>
struct bad_item {
  using rule_t = bad_item;
  using subs_t = empty_list;
  template <apply_mode A, rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st);
};

struct grammar : seq<nested<item_list<top_item, false>, Lines::Significant>, eof> {};

}  // namespace g
}  // namespace
}  // namespace gray

// The custom rules take part in PEGTL's grammar analysis like the built-in rules they resemble.
namespace tao::pegtl {
template <typename Name, typename R>
struct analyze_traits<Name, gray::g::recoverable<R>> : analyze_seq_traits<R> {};
template <typename Name, typename R, gray::g::Lines L>
struct analyze_traits<Name, gray::g::nested<R, L>> : analyze_seq_traits<R> {};
template <typename Name, typename R>
struct analyze_traits<Name, gray::g::bracketed<R>> : analyze_seq_traits<R> {};
template <typename Name, typename I, bool B>
struct analyze_traits<Name, gray::g::item_list<I, B>> : analyze_opt_traits<I> {};
template <typename Name, bool N>
struct analyze_traits<Name, gray::g::ws<N>> : analyze_opt_traits<> {};
template <typename Name>
struct analyze_traits<Name, gray::g::number_lit> : analyze_any_traits<> {};
template <typename Name, gray::g::Literal W>
struct analyze_traits<Name, gray::g::kw<W>> : analyze_any_traits<> {};
template <typename Name>
struct analyze_traits<Name, gray::g::reserved> : analyze_any_traits<> {};
template <typename Name>
struct analyze_traits<Name, gray::g::string_open> : analyze_any_traits<> {};
template <typename Name, typename R>
struct analyze_traits<Name, gray::g::op_mark<R>> : analyze_seq_traits<R> {};
template <typename Name, typename B>
struct analyze_traits<Name, gray::g::bad_item<B>> : analyze_any_traits<> {};
}  // namespace tao::pegtl

namespace gray {
namespace {

// ---- which rules make nodes ------------------------------------------------------

template <typename Rule>
inline constexpr N node_kind = N::None;

#define GRAY_NODE(R, K) \
  template <>           \
  inline constexpr N node_kind<g::R> = N::K;
GRAY_NODE(name, Name)
GRAY_NODE(word, Word)
GRAY_NODE(member_name, Word)
GRAY_NODE(number_lit, Number)
GRAY_NODE(string_lit, String)
GRAY_NODE(str_text, StrText)
GRAY_NODE(str_esc, StrEsc)
GRAY_NODE(interp_path, StrInterp)
GRAY_NODE(bool_lit, Bool)
GRAY_NODE(list_lit, List)
GRAY_NODE(map_lit, Map)
GRAY_NODE(field, Field)
GRAY_NODE(field_key, FieldKey)
GRAY_NODE(postfix, Postfix)
GRAY_NODE(member, Member)
GRAY_NODE(call_args, CallArgs)
GRAY_NODE(arg, Arg)
GRAY_NODE(arg_name, ArgName)
GRAY_NODE(neg_expr, Neg)
GRAY_NODE(op_neg, Op)
GRAY_NODE(op_not, Op)
GRAY_NODE(op_mul, Op)
GRAY_NODE(op_add, Op)
GRAY_NODE(op_cmp, Op)
GRAY_NODE(op_and, Op)
GRAY_NODE(op_or, Op)
GRAY_NODE(mul_expr, Mul)
GRAY_NODE(add_expr, Add)
GRAY_NODE(cmp_expr, Cmp)
GRAY_NODE(and_expr, And)
GRAY_NODE(or_expr, Or)
GRAY_NODE(param_stmt, Param)
GRAY_NODE(let_stmt, Let)
GRAY_NODE(tparam, TParam)
GRAY_NODE(tparams, TParams)
GRAY_NODE(type_ann, TypeAnn)
GRAY_NODE(default_val, Default)
GRAY_NODE(metric_stmt, Metric)
GRAY_NODE(s_unit, Unit)
GRAY_NODE(plugin_kind, PluginKind)
GRAY_NODE(plugin_stmt, Plugin)
GRAY_NODE(plugin_config, PluginConfig)
GRAY_NODE(s_driver, Driver)
GRAY_NODE(set_on, SetOn)
GRAY_NODE(set_batch, SetBatch)
GRAY_NODE(set_parallel, SetParallel)
GRAY_NODE(set_via, SetVia)
GRAY_NODE(set_steps, SetSteps)
GRAY_NODE(set_hold, SetHold)
GRAY_NODE(on_stmt, OnStmt)
GRAY_NODE(on_event, OnEvent)
GRAY_NODE(s_on_action, OnAction)
GRAY_NODE(guard_stmt, Guard)
GRAY_NODE(guard_label, GuardLabel)
GRAY_NODE(guard_compare, GuardCompare)
GRAY_NODE(guard_probe, GuardProbe)
GRAY_NODE(s_probe_kind, ProbeKind)
GRAY_NODE(run_stmt, Run)
GRAY_NODE(probe_stmt, Probe)
GRAY_NODE(wait_until_stmt, WaitUntil)
GRAY_NODE(wait_stmt, Wait)
GRAY_NODE(approve_stmt, Approve)
GRAY_NODE(approve_message, ApproveMessage)
GRAY_NODE(route_stmt, Route)
GRAY_NODE(route_kind, RouteKind)
GRAY_NODE(route_op, RouteOp)
GRAY_NODE(route_clear, RouteClear)
GRAY_NODE(route_match, RouteMatch)
GRAY_NODE(route_ip, RouteIp)
GRAY_NODE(drain_stmt, Drain)
GRAY_NODE(drain_subject, DrainSubject)
GRAY_NODE(restore_stmt, Restore)
GRAY_NODE(scale_stmt, Scale)
GRAY_NODE(s_group, Group)
GRAY_NODE(phase_stmt, Phase)
GRAY_NODE(undo_stmt, Undo)
GRAY_NODE(undo_all, UndoAll)
GRAY_NODE(undo_block, UndoBlock)
GRAY_NODE(abort_stmt, Abort)
GRAY_NODE(abort_message, AbortMessage)
GRAY_NODE(if_stmt, If)
GRAY_NODE(else_part, Else)
GRAY_NODE(use_stmt, Use)
GRAY_NODE(call_stmt_rule, Call)
GRAY_NODE(stage_kind, StageKind)
GRAY_NODE(stage_name, StageName)
GRAY_NODE(stage_stmt, Stage)
GRAY_NODE(pipeline_stmt, Pipeline)
GRAY_NODE(template_stmt, Template)
GRAY_NODE(import_stmt, Import)
GRAY_NODE(import_alias, ImportAlias)
#undef GRAY_NODE

template <typename K>
inline constexpr N node_kind<g::ckey<K>> = N::ClauseKey;
template <typename K, typename V>
inline constexpr N node_kind<g::clause<K, V>> = N::Clause;


// ---- messages -----------------------------------------------------------------

template <typename Rule>
inline constexpr const char* error_text = nullptr;

#define GRAY_MSG(R, M) \
  template <>          \
  inline constexpr const char* error_text<g::R> = M;

GRAY_MSG(esc_char, "unknown escape")
GRAY_MSG(interp_path, "expected a name inside '${...}', such as ${version}")
GRAY_MSG(interp_close, "expected '}' to end the interpolation")
GRAY_MSG(str_close, "unterminated string: expected '\"' before the end of the line")
GRAY_MSG(expr_value, "expected an expression")
GRAY_MSG(close_paren, "expected ')'")
GRAY_MSG(close_bracket, "expected ',' or ']' in the list")
GRAY_MSG(close_brace_map, "expected a 'key: value' field or '}' to end the map")
GRAY_MSG(field_colon, "expected ':' after the map key")
GRAY_MSG(member_name, "expected a name after '.'")
GRAY_MSG(unary_operand, "expected an expression after the operator")
GRAY_MSG(operand, "expected an expression after the operator")
GRAY_MSG(add_operand, "expected an expression after the operator")
GRAY_MSG(cmp_operand, "expected an expression after the comparison")
GRAY_MSG(and_operand, "expected an expression after 'and'")
GRAY_MSG(or_operand, "expected an expression after 'or'")
GRAY_MSG(v_duration, "expected a duration such as 30s")
GRAY_MSG(v_count, "expected a count such as 3")
GRAY_MSG(v_nodata, "expected the no-data outcome after 'nodata': pass, fail or inconclusive")
GRAY_MSG(v_else, "expected the action after 'else': rollback, pause or abort")
GRAY_MSG(v_default, "expected the default answer after 'default': promote, abort or rollback")
GRAY_MSG(close_args, "expected ',' or ')' after the argument")
GRAY_MSG(x_stage_name, "expected the stage's name, as in 'deploy canary {'")
GRAY_MSG(v_header, "expected a header such as \"X-Gray-User: test-1\" after 'header'")
GRAY_MSG(v_expect, "expected a status code such as 200 after 'expect'")
GRAY_MSG(v_contains, "expected a string after 'contains'")
GRAY_MSG(v_tolerance, "expected a tolerance such as 10% after 'within'")
GRAY_MSG(s_name, "expected a name")
GRAY_MSG(s_string, "expected a string in double quotes")
GRAY_MSG(s_eq, "expected '='")
GRAY_MSG(s_arrow, "expected '->' and the target")
GRAY_MSG(s_to, "expected 'to' and a count, as in 'scale edge canary to 3'")
GRAY_MSG(s_vs, "expected 'vs' and the baseline, as in 'compare error_rate(canary) vs error_rate(stable) within 10%'")
GRAY_MSG(s_within, "expected 'within' and a tolerance such as 10%")
GRAY_MSG(s_type, "expected a type such as string, number, duration, percent or bool")
GRAY_MSG(s_driver, "expected a driver name such as haproxy, etcd, ssh or prometheus")
GRAY_MSG(s_unit, "expected a unit such as ms, s or %")
GRAY_MSG(s_probe_kind, "expected a probe kind: http, tcp or cmd")
GRAY_MSG(s_group, "expected a server group such as canary")
GRAY_MSG(s_call, "expected a template call such as canary.ramp(gw: edge)")
GRAY_MSG(s_route_op, "expected '==' or '~' (regular expression) after the header or cookie name")
GRAY_MSG(x_hold, "expected a duration such as 10m after 'hold'")
GRAY_MSG(x_batch, "expected a host count or a percentage such as 2 or 25% after 'batch'")
GRAY_MSG(x_parallel, "expected a count such as 4 after 'parallel'")
GRAY_MSG(x_steps, "expected a list of percentages such as 5% -> 20% -> 50% after 'steps'")
GRAY_MSG(x_step, "expected a percentage such as 50% after '->'")
GRAY_MSG(x_on, "expected the hosts to run on, such as fleet.tagged(\"canary\"), after 'on'")
GRAY_MSG(x_run, "expected a command string such as \"deploy.sh ${version}\"")
GRAY_MSG(x_probe, "expected a probe target such as \"http://${host}:8080/health\"")
GRAY_MSG(x_wait, "expected a duration such as 30s, or 'until' and a condition, after 'wait'")
GRAY_MSG(x_until, "expected a condition after 'wait until'")
GRAY_MSG(x_let, "expected a value after '='")
GRAY_MSG(x_default, "expected a default value after '='")
GRAY_MSG(x_metric, "expected a query such as prom.query(\"...\") after '='")
GRAY_MSG(x_if, "expected a condition after 'if'")
GRAY_MSG(x_compare, "expected a metric such as error_rate(version)")
GRAY_MSG(x_scale, "expected a count after 'to'")
GRAY_MSG(x_route_key, "expected the header or cookie name as a quoted string, such as \"X-Gray-User\"")
GRAY_MSG(x_route_value, "expected the value to match as a string")
GRAY_MSG(x_route_target, "expected the target group or version after '->'")
GRAY_MSG(x_route_ip, "expected an address range such as \"10.0.0.0/8\" after 'ip'")
GRAY_MSG(tparams, "expected '(' and the template's parameters")
GRAY_MSG(undo_body, "expected 'all', a command string or a block of steps after 'undo'")
GRAY_MSG(on_body, "expected an action (rollback, pause, abort, continue) or a block of steps")
GRAY_MSG(guard_body, "expected a condition such as error_rate < 1% after 'guard'")
GRAY_MSG(else_body, "expected 'if' or a block after 'else'")
GRAY_MSG(route_body, "expected 'header', 'cookie', 'ip' or 'clear' after the gateway name")

#undef GRAY_MSG

template <typename Rule>
struct block_message {
  static constexpr bool is_block = false;
};
template <typename Item>
struct block_message<g::block<Item>> {
  static constexpr bool is_block = true;
};

template <typename Rule>
constexpr bool is_operand_rule = std::is_same_v<Rule, g::operand> || std::is_same_v<Rule, g::add_operand> ||
                                 std::is_same_v<Rule, g::cmp_operand> || std::is_same_v<Rule, g::and_operand> ||
                                 std::is_same_v<Rule, g::or_operand>;

// Look-alike characters from word processors and other languages.
std::string unicode_hint(const char* p, const char* end) {
  std::string_view c(p, std::min<size_t>(3, static_cast<size_t>(end - p)));
  if (c == "\u2192") return "write '->'";
  if (c == "\u201C" || c == "\u201D") return "use straight double quotes \"...\"";
  if (c == "\u2018" || c == "\u2019") return "strings use straight double quotes \"...\"";
  if (c == "\u2264") return "write '<='";
  if (c == "\u2265") return "write '>='";
  if (c == "\u2260") return "write '!='";
  return {};
}

// Builds the error for a failed must<Rule>: the rule's message, what was found instead, and the
// found token underlined; a few rules know better what the user probably meant.
template <typename Rule, typename ParseInput>
SyntaxError expectation_error(const ParseInput& in, ParseState& ps) {
  const char* p = in.current();
  const char* end = in.end();
  uint32_t at = ps.offset(p);
  SyntaxError e{at, at + static_cast<uint32_t>(std::max<size_t>(1, token_length(p, end))), {}, {}, UINT32_MAX, {}};
  std::string found = describe_at(p, end);
  if constexpr (block_message<Rule>::is_block) {
    e.message = "expected '{' to start a block, found " + found;
    if (p < end && *p == '"') e.help = "names are not quoted";
    const char* q = p;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')) ++q;
    if ((p == end || *p == '\n' || *p == '\r') && q < end && *q == '{') e.help = "put '{' on the same line as the statement it opens";
    return e;
  } else if constexpr (is_operand_rule<Rule>) {
    // Point at the operator that lacks its right side.
    std::string op(ps.base + ps.op_begin, ps.op_end - ps.op_begin);
    bool next_line = std::find(ps.base + ps.op_end, p, '\n') != p;
    e.begin = ps.op_begin;
    e.end = ps.op_end;
    e.message = "expected an expression after '" + op + "', found " + (next_line ? std::string("end of line") : found);
    return e;
  } else if constexpr (std::is_same_v<Rule, g::esc_char>) {
    e.begin = at - 1;
    e.end = at + static_cast<uint32_t>(p < end && *p != '\n' ? utf8_len(p, end) : 0);
    e.message = "unknown escape '\\" + std::string(p < end && *p != '\n' ? std::string(p, utf8_len(p, end)) : "") +
                "' in a string; the escapes are \\\", \\\\, \\n, \\t, \\r, \\$ and \\0";
    e.help = "write '\\\\' for a backslash";
    return e;
  } else if constexpr (std::is_same_v<Rule, g::str_close>) {
    e.begin = ps.string_start;
    e.end = ps.string_start + 1;
    e.message = "unterminated string: this string has no closing '\"' on its line";
    e.help = "strings end on the line they start; write \\n for a line break";
    return e;
  } else if constexpr (std::is_same_v<Rule, g::interp_close>) {
    if (p < end && *p != '"' && *p != '\n') {
      e.message = "only a name can be interpolated, such as ${version}; found " + found;
      e.help = "compute the value with 'let' and interpolate that name";
    } else {
      e.message = "expected '}' to end the interpolation, found " + (p < end && *p == '"' ? std::string("'\"'") : found);
    }
    return e;
  } else if constexpr (std::is_same_v<Rule, g::member_name>) {
    if (p < end && *p >= '0' && *p <= '9') {
      e.message = "expected a name after '.', found a number";
      e.help = "a version is text: quote it, as in \"2.4.0\"";
      return e;
    }
  }
  static_assert(block_message<Rule>::is_block || error_text<Rule> != nullptr, "every must<> needs an error_text");
  e.message = std::string(error_text<Rule>) + ", found " + found;
  if constexpr (std::is_same_v<Rule, g::close_paren> || std::is_same_v<Rule, g::close_args> ||
                std::is_same_v<Rule, g::close_bracket> || std::is_same_v<Rule, g::close_brace_map>) {
    if (!ps.opens.empty()) {
      e.related = ps.opens.back();
      e.related_label = "this bracket is not closed";
    }
  }
  if constexpr (std::is_same_v<Rule, g::s_name> || std::is_same_v<Rule, g::x_stage_name>) {
    if (p < end && is_ident_start(*p)) {
      const char* q = p;
      while (q < end && is_ident_char(*q)) ++q;
      std::string w(p, q);
      if (is_reserved(w)) e.message = "'" + w + "' is a reserved word and cannot be a name";
    } else if (p < end && *p == '"') {
      e.help = "names are not quoted";
    }
  }
  // A name with a non-ASCII letter in it: the identifier stopped short.
  if (p > ps.base && p < end && static_cast<unsigned char>(*p) >= 0x80 && is_ident_char(p[-1]))
    e.help = "names use ASCII letters, digits and '_'";
  if (p < end && static_cast<unsigned char>(*p) >= 0x80)
    if (std::string hint = unicode_hint(p, end); !hint.empty()) e.help = hint;
  return e;
}

// Builds the syntax tree while matching: a rule of node_kind N starts a node where it starts
// and closes it where it ends; any rule that fails drops the nodes its attempt appended.
// Nodes left by an attempt cut short by a syntax error are dropped by recoverable<>.
template <typename Rule>
struct control : pegtl::normal<Rule> {
  template <pegtl::apply_mode A, pegtl::rewind_mode M, template <typename...> class Action, template <typename...> class Control,
            typename ParseInput, typename... States>
  static bool match(ParseInput& in, States&&... st) {
    ParseState& ps = state_of(st...);
    const size_t mark = ps.nodes.size();
    if constexpr (node_kind<Rule> != N::None) ps.nodes.push(node_kind<Rule>, ps.offset(in.current()));
    if (pegtl::normal<Rule>::template match<A, M, Action, Control>(in, st...)) {
      if constexpr (node_kind<Rule> != N::None) {
        Node& n = ps.nodes[mark];
        n.end = ps.offset(in.current());
        n.next = static_cast<uint32_t>(ps.nodes.size());
      }
      return true;
    }
    ps.nodes.truncate(mark);
    return false;
  }

  template <typename ParseInput, typename... States>
  [[noreturn]] static void raise(const ParseInput& in, States&&... st) {
    throw expectation_error<Rule>(in, state_of(st...));
  }
};

// Links every node to its children once the tree is complete; returns the top-level nodes.
// `kids` holds each node's children contiguously and must outlive the tree's use.
Kids link_children(NodeBuffer& nodes, std::vector<const Node*>& kids) {
  const uint32_t total = static_cast<uint32_t>(nodes.size());
  kids.resize(total);
  size_t pos = 0;
  const auto collect = [&](uint32_t from, uint32_t to, const Node* const*& first, uint32_t& count) {
    first = kids.data() + pos;
    count = 0;
    for (uint32_t c = from; c < to; c = nodes[c].next, ++count) kids[pos++] = &nodes[c];
  };
  Kids top;
  {
    const Node* const* first;
    uint32_t count;
    collect(0, total, first, count);
    top = Kids(first, count);
  }
  for (uint32_t i = 0; i < total; ++i) {
    Node& n = nodes[i];
    n.trimmed = Node::kNotTrimmed;
    collect(i + 1, n.next, n.kids, n.kid_count);
  }
  return top;
}

// Statements each context accepts, for "did you mean".
const std::vector<std::string_view>& words_for(int context) {
  static const std::vector<std::string_view> step = {"run", "probe", "wait", "approve", "route", "drain", "restore", "scale",
                                                      "phase", "undo", "abort", "if", "use", "let"};
  static const std::vector<std::string_view> stage = [] {
    auto v = step;
    for (auto w : {"on", "batch", "parallel", "via", "steps", "hold", "guard"}) v.push_back(w);
    return v;
  }();
  static const std::vector<std::string_view> pipeline = {"param", "let", "metric", "gateway", "registry", "hosts", "metrics",
                                                          "images", "deploy", "verify", "ramp", "align", "rollback", "guard",
                                                          "use", "on"};
  static const std::vector<std::string_view> tmpl = [] {
    auto v = stage;
    for (auto w : pipeline) v.push_back(w);
    return v;
  }();
  static const std::vector<std::string_view> top = {"import", "template", "pipeline"};
  switch (context) {
    case 0: return step;
    case 1: return stage;
    case 2: return pipeline;
    case 3: return tmpl;
    default: return top;
  }
}

template <typename Bad>
constexpr int context_of() {
  if constexpr (std::is_same_v<Bad, g::bad_step>) return 0;
  if constexpr (std::is_same_v<Bad, g::bad_stage_item>) return 1;
  if constexpr (std::is_same_v<Bad, g::bad_pipeline_item>) return 2;
  if constexpr (std::is_same_v<Bad, g::bad_template_item>) return 3;
  return 4;
}

template <typename Bad>
template <pegtl::apply_mode A, pegtl::rewind_mode M, template <typename...> class Action, template <typename...> class Control,
          typename ParseInput, typename... States>
bool g::bad_item<Bad>::match(ParseInput& in, States&&... st) {
  ParseState& ps = state_of(st...);
  const char* p = in.current();
  const char* end = in.end();
  uint32_t at = ps.offset(p);
  constexpr int ctx = context_of<Bad>();
  static const char* const what[] = {"a step", "a stage setting, guard or step", "a declaration or a stage",
                                     "a declaration, stage or step", "'import', 'template' or 'pipeline'"};
  SyntaxError e{at, at + static_cast<uint32_t>(std::max<size_t>(1, token_length(p, end))), {}, {}, UINT32_MAX, {}};
  if (p < end && is_ident_start(*p)) {
    const char* q = p;
    while (q < end && is_ident_char(*q)) ++q;
    const std::string w(p, q);
    auto in_set = [&](std::initializer_list<std::string_view> set) { return std::find(set.begin(), set.end(), w) != set.end(); };
    const bool stage = in_set({"deploy", "verify", "ramp", "align", "rollback"});
    const bool decl = in_set({"param", "metric", "gateway", "registry", "hosts", "metrics", "images"});
    const bool setting = in_set({"on", "batch", "parallel", "via", "steps", "hold"});
    const bool file_level = in_set({"import", "template", "pipeline"});
    const bool step = in_set({"run", "probe", "wait", "approve", "route", "drain", "restore", "scale", "phase", "undo",
                              "abort", "if", "use"});
    const std::string q_w = "'" + w + "'";
    if (w == "else") {
      e.message = "'else' must follow the '}' of its 'if' on the same line";
    } else if (file_level && ctx != 4) {
      e.message = q_w + " belongs at the top level of a file, outside any block";
    } else if (ctx == 4 && (stage || decl || setting || step || w == "let" || w == "guard")) {
      e.message = q_w + " belongs inside a pipeline or template block";
    } else if (stage && ctx <= 1) {
      e.message = q_w + " starts a stage, and stages do not nest";
      e.help = "is a '}' missing before this line?";
    } else if (decl && ctx <= 1) {
      e.message = q_w + " declarations belong at the pipeline level, not inside a stage";
    } else if (setting && ctx == 0) {
      e.message = q_w + " is a stage setting; it cannot appear in a block of steps";
    } else if (w == "guard" && ctx == 0) {
      e.message = "guards belong to a stage or the pipeline, not to a block of steps";
    } else if ((step || setting) && ctx == 2) {
      e.message = q_w + (step ? " is a step" : " is a stage setting") + "; put it inside a stage";
      if (w == "on") e.help = "at the pipeline level 'on' takes an event: on breach|failure ACTION";
    } else {
      e.message = "unknown statement " + q_w + "; expected " + what[ctx];
      std::string best = closest_word(w, words_for(ctx));
      if (!best.empty()) e.help = "did you mean '" + best + "'?";
    }
  } else if (end - p >= 2 && p[0] == '/' && (p[1] == '/' || p[1] == '*')) {
    e.message = "expected " + std::string(what[ctx]) + ", found '" + std::string(p, 2) + "'";
    e.help = "comments start with '#'";
  } else {
    e.message = "expected " + std::string(what[ctx]) + ", found " + describe_at(p, end);
    if (p < end && static_cast<unsigned char>(*p) >= 0x80) e.help = unicode_hint(p, end);
  }
  throw e;
}

template <typename Rule>
struct action : pegtl::nothing<Rule> {};

// ---- lowering: parse tree -> AST ------------------------------------------------

class Lower {
 public:
  Lower(const SourceFile& file, Diagnostics& diags) : file_(file), diags_(diags) {}

  Span span(const Node& n) const {
    // Trim trailing whitespace and comments that tokens swallow, so spans end at the text.
    if (n.trimmed == Node::kNotTrimmed) n.trimmed = trim_end(n.begin, n.end);
    return {file_.id(), n.begin, n.trimmed};
  }

  // The end of the code in [b, e): trailing blanks and comments dropped, strings kept whole;
  // what code_end(b, e) finds. Strings end at the end of their line, so each line can be
  // judged on its own: walk back line by line from e, and read the answer for the last line
  // with code from that line's scan (scan_line), shared by all the nodes that end on it. (A
  // backslash before a line break may escape it inside a string: then code_end decides.)
  uint32_t trim_end(uint32_t b, uint32_t e) const {
    const std::string& t = file_.text();
    uint32_t hi = e;
    while (hi > b) {
      const LineScan& line = scan_line(hi - 1);
      const uint32_t lo = std::max(b, line.start);
      if (lo > b && lo >= 2 && t[lo - 2] == '\\') return std::max(code_end(b, e), b);
      // A scan from the line's start agrees with one from lo when it is outside strings and
      // comments at lo, which it is at the start of a node, except inside a string's parts.
      const uint32_t last = line.neutral[lo - line.start] ? line.last[hi - line.start] : code_end(lo, hi);
      if (last > lo) return last;
      hi = lo;
    }
    return b;
  }

  // code_end() from the start of one line to every position of it.
  struct LineScan {
    uint32_t start = 1, end = 0;   // the line [start, end), its '\n' included; empty at first
    std::vector<uint32_t> last;    // last[k]: code_end(start, start + k)
    std::vector<uint8_t> neutral;  // neutral[k]: that scan is outside strings and comments at start + k
  };

  const LineScan& scan_line(uint32_t at) const {
    if (at >= line_.start && at < line_.end) return line_;
    const std::string& t = file_.text();
    uint32_t start = at, end = at;
    while (start > 0 && t[start - 1] != '\n') --start;
    while (end < t.size() && t[end] != '\n') ++end;
    if (end < t.size()) ++end;
    line_.start = start;
    line_.end = end;
    line_.last.resize(end - start + 1);
    line_.neutral.resize(end - start + 1);
    // code_end's loop, one character at a time, recording its state after each.
    uint32_t last = start;
    bool in_string = false, in_comment = false, escaped = false;
    line_.last[0] = last;
    line_.neutral[0] = 1;
    for (uint32_t i = start; i < end; ++i) {
      const char c = t[i];
      if (escaped) {
        escaped = false;
      } else if (in_comment) {
        if (c == '\n') in_comment = false;
      } else if (in_string) {
        if (c == '\\') {
          escaped = true;
          last = i + 2;
        } else {
          if (c == '"' || c == '\n') in_string = false;
          last = i + 1;
        }
      } else if (c == '"') {
        in_string = true;
        last = i + 1;
      } else if (c == '#') {
        in_comment = true;
      } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
        last = i + 1;
      }
      line_.last[i + 1 - start] = last;
      line_.neutral[i + 1 - start] = !in_string && !in_comment && !escaped;
    }
    return line_;
  }

  // One past the last code character of [b, e) scanned from b outside any string or comment;
  // b when there is none.
  uint32_t code_end(uint32_t b, uint32_t e) const {
    const std::string& t = file_.text();
    uint32_t last = b;
    bool in_string = false;
    for (uint32_t i = b; i < e; ++i) {
      char c = t[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
          last = i + 1;
          continue;
        }
        if (c == '"' || c == '\n') in_string = false;
        last = i + 1;
        continue;
      }
      if (c == '"') {
        in_string = true;
        last = i + 1;
        continue;
      }
      if (c == '#') {
        while (i < e && t[i] != '\n') ++i;
        continue;
      }
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') last = i + 1;
    }
    return last;
  }

  std::string_view view(const Node& n) const { return std::string_view(file_.text()).substr(n.begin, n.end - n.begin); }
  std::string text(const Node& n) const { return std::string(view(n)); }

  const Node* child(const Node& n, N kind) const {
    for (const auto& c : n.children())
      if (c->kind == kind) return c;
    return nullptr;
  }

  ast::Name name_of(const Node* n) const {
    if (!n) return {};
    // s_name / stage_name wrap a name node; words are their own content.
    const Node* leaf = n;
    while (!leaf->children().empty() && leaf->kind != N::Name && leaf->kind != N::Word) leaf = leaf->children().front();
    ast::Name out;
    out.text = text(*leaf);
    out.span = span(*leaf);
    return out;
  }

  // ---- expressions ----

  // Long operator or member chains make trees deeper than any nesting; the checker walks them
  // recursively, so cap the depth here with a clear error instead of risking the stack.
  static constexpr uint32_t kMaxExprDepth = 256;

  ast::ExprPtr expr(const Node& n) {
    ast::ExprPtr e = expr_unchecked(n);
    if (e->depth > kMaxExprDepth && !too_deep_reported_) {
      too_deep_reported_ = true;
      Diagnostic& d = diags_.error(code::kSyntax, {e->span.file, e->span.begin, e->span.begin + 1},
                                   "this expression is too long: more than " + std::to_string(kMaxExprDepth) + " operators or calls deep");
      d.help = "split it into named parts with 'let'";
    }
    if (e->depth > kMaxExprDepth) {
      auto placeholder = std::make_unique<ast::Expr>(ast::ExprKind::Number, e->span);
      placeholder->text = "0";
      return placeholder;
    }
    return e;
  }

  ast::ExprPtr expr_unchecked(const Node& n) {
    switch (n.kind) {
      case N::Number: return number(n);
      case N::String: return string(n);
      case N::Bool: {
        auto e = std::make_unique<ast::Expr>(ast::ExprKind::Bool, span(n));
        e->boolean = view(n) == "true";
        e->text = text(n);
        return e;
      }
      case N::Name: {
        auto e = std::make_unique<ast::Expr>(ast::ExprKind::Name, span(n));
        e->text = text(n);
        return e;
      }
      case N::List: {
        auto e = std::make_unique<ast::Expr>(ast::ExprKind::List, span(n));
        for (const auto& c : n.children()) e->items.push_back(expr(*c));
        e->update_depth();
        return e;
      }
      case N::Map: {
        auto e = std::make_unique<ast::Expr>(ast::ExprKind::Map, span(n));
        for (const auto& f : n.children()) {
          ast::Field field;
          const Node& key = *f->children().at(0);
          const Node& k = *key.children().at(0);
          field.name_span = span(k);
          field.name = k.kind == N::String ? decode_plain(k) : text(k);
          field.value = expr(*f->children().at(1));
          e->fields.push_back(std::move(field));
        }
        e->update_depth();
        return e;
      }
      case N::Postfix: return postfix(n);
      case N::Neg: {
        auto e = std::make_unique<ast::Expr>(ast::ExprKind::Unary, span(n));
        std::string op = text(*n.children().at(0));
        e->text = op == "-" ? "-" : "not";
        e->items.push_back(expr(*n.children().at(1)));
        e->update_depth();
        return e;
      }
      case N::Mul:
      case N::Add:
      case N::Cmp:
      case N::And:
      case N::Or: {
        ast::ExprPtr left = expr(*n.children().at(0));
        for (size_t i = 1; i + 1 < n.children().size(); i += 2) {
          auto e = std::make_unique<ast::Expr>(ast::ExprKind::Binary, Span::join(left->span, span(*n.children()[i + 1])));
          e->text = text(*n.children()[i]);
          e->items.push_back(std::move(left));
          e->items.push_back(expr(*n.children()[i + 1]));
          e->update_depth();
          left = std::move(e);
          if (left->depth > kMaxExprDepth) break;  // reported by expr(); stop growing the chain
        }
        return left;
      }
      default:
        // Wrapper nodes (expectations) hold exactly the expression.
        if (!n.children().empty()) return expr(*n.children().front());
        return std::make_unique<ast::Expr>(ast::ExprKind::Name, span(n));
    }
  }

  ast::ExprPtr postfix(const Node& n) {
    ast::ExprPtr cur = expr(*n.children().at(0));
    for (size_t i = 1; i < n.children().size(); ++i) {
      const Node& s = *n.children()[i];
      Span sp = Span::join(cur->span, span(s));
      if (s.kind == N::Member) {
        auto e = std::make_unique<ast::Expr>(ast::ExprKind::Member, sp);
        e->text = text(*s.children().at(0));
        e->items.push_back(std::move(cur));
        e->update_depth();
        cur = std::move(e);
      } else {
        auto e = std::make_unique<ast::Expr>(ast::ExprKind::Call, sp);
        e->items.push_back(std::move(cur));
        for (const auto& a : s.children()) {
          ast::Field f;
          size_t vi = 0;
          if (a->children().size() == 2) {
            const Node& an = *a->children()[0];
            f.name = text(*an.children().at(0));
            f.name_span = span(*an.children().at(0));
            vi = 1;
          }
          f.value = expr(*a->children().at(vi));
          e->fields.push_back(std::move(f));
        }
        e->update_depth();
        cur = std::move(e);
      }
      if (cur->depth > kMaxExprDepth) break;  // reported by expr(); stop growing the chain
    }
    return cur;
  }

  ast::ExprPtr number(const Node& n) {
    std::string_view t = view(n);
    size_t i = 0;
    while (i < t.size() && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.')) ++i;
    std::string digits(t.substr(0, i));
    std::string_view unit = t.substr(i);
    double v = std::strtod(digits.c_str(), nullptr);
    Span s = span(n);
    auto e = std::make_unique<ast::Expr>(ast::ExprKind::Number, s);
    e->text = std::string(t);
    struct U {
      std::string_view name;
      ast::ExprKind kind;
      double scale;
    };
    static const U units[] = {{"ms", ast::ExprKind::Duration, 1},          {"s", ast::ExprKind::Duration, 1000},
                              {"m", ast::ExprKind::Duration, 60000},       {"h", ast::ExprKind::Duration, 3600000},
                              {"d", ast::ExprKind::Duration, 86400000},    {"%", ast::ExprKind::Percent, 1},
                              {"B", ast::ExprKind::Bytes, 1},              {"KB", ast::ExprKind::Bytes, 1e3},
                              {"MB", ast::ExprKind::Bytes, 1e6},           {"GB", ast::ExprKind::Bytes, 1e9},
                              {"KiB", ast::ExprKind::Bytes, 1024.0},       {"MiB", ast::ExprKind::Bytes, 1048576.0},
                              {"GiB", ast::ExprKind::Bytes, 1073741824.0}};
    if (unit.empty()) {
      e->number = v;
      return e;
    }
    for (const U& u : units)
      if (u.name == unit) {
        e->kind = u.kind;
        e->number = v * u.scale;
        return e;
      }
    e->number = v;  // unreachable: the grammar accepts known units only
    return e;
  }

  std::string decode_plain(const Node& str) {
    std::string out;
    for (const auto& p : str.children()) {
      if (p->kind == N::StrText) out += view(*p);
      else if (p->kind == N::StrEsc) out += unescape(view(*p)[1]);
      else out += "${" + text(*p) + "}";
    }
    return out;
  }

  static char unescape(char c) {
    switch (c) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case '0': return '\0';
      default: return c;
    }
  }

  ast::ExprPtr string(const Node& n) {
    auto e = std::make_unique<ast::Expr>(ast::ExprKind::String, span(n));
    e->text = text(n);
    for (const auto& p : n.children()) {
      if (p->kind == N::StrInterp) {
        ast::StrPart part;
        part.is_var = true;
        part.text = text(*p);
        part.span = span(*p);
        size_t start = 0;
        std::string_view t = view(*p);
        for (size_t i = 0; i <= t.size(); ++i)
          if (i == t.size() || t[i] == '.') {
            part.path.emplace_back(t.substr(start, i - start));
            start = i + 1;
          }
        e->parts.push_back(std::move(part));
        continue;
      }
      std::string piece = p->kind == N::StrText ? std::string(view(*p)) : std::string(1, unescape(view(*p)[1]));
      if (!e->parts.empty() && !e->parts.back().is_var) {
        e->parts.back().text += piece;
        e->parts.back().span = Span::join(e->parts.back().span, span(*p));
      } else {
        e->parts.push_back({false, piece, {}, span(*p)});
      }
    }
    return e;
  }

  // ---- statements ----

  ast::StmtPtr stmt(const Node& n) {
    auto s = std::make_unique<ast::Stmt>(ast::StmtKind::Call, span(n));
    s->keyword = keyword_span(n);
    switch (n.kind) {
      case N::Import:
        s->kind = ast::StmtKind::Import;
        str_head(*s, *n.children().at(0));
        if (const Node* a = child(n, N::ImportAlias)) s->name = name_of(a->children().at(0));
        break;
      case N::Template:
        s->kind = ast::StmtKind::Template;
        s->name = name_of(n.children().at(0));
        params(*s, child(n, N::TParams));
        body(*s, n, 2);
        break;
      case N::Pipeline:
        s->kind = ast::StmtKind::Pipeline;
        str_head(*s, *n.children().at(0));
        body(*s, n, 1);
        break;
      case N::Param:
        s->kind = ast::StmtKind::Param;
        s->name = name_of(n.children().at(0));
        if (const Node* t = child(n, N::TypeAnn)) s->word = name_of(t->children().at(0));
        if (const Node* d = child(n, N::Default)) s->value = expr(*d->children().at(0));
        break;
      case N::Let:
        s->kind = ast::StmtKind::Let;
        s->name = name_of(n.children().at(0));
        s->value = expr(*n.children().at(1));
        break;
      case N::Metric: {
        s->kind = ast::StmtKind::Metric;
        s->name = name_of(n.children().at(0));
        params(*s, child(n, N::TParams));
        size_t vi = child(n, N::TParams) ? 2 : 1;
        s->value = expr(*n.children().at(vi));
        if (const Node* u = child(n, N::Unit)) {
          s->word.span = span(*u);
          s->word.text = std::string(file_.slice(s->word.span));
        }
        break;
      }
      case N::Plugin:
        s->kind = ast::StmtKind::Plugin;
        s->word = {text(*n.children().at(0)), span(*n.children().at(0))};
        s->name = name_of(n.children().at(1));
        s->word2 = name_of(n.children().at(2));
        if (const Node* c = child(n, N::PluginConfig)) s->value = expr(*c->children().at(0));
        break;
      case N::SetOn:
      case N::SetBatch:
      case N::SetParallel:
      case N::SetVia:
      case N::SetSteps:
      case N::SetHold: {
        static const std::pair<N, const char*> keys[] = {{N::SetOn, "on"},       {N::SetBatch, "batch"}, {N::SetParallel, "parallel"},
                                                         {N::SetVia, "via"},     {N::SetSteps, "steps"}, {N::SetHold, "hold"}};
        s->kind = ast::StmtKind::Setting;
        for (auto& [k, w] : keys)
          if (k == n.kind) s->word = {w, s->keyword};
        for (const auto& c : n.children()) {
          if (n.kind == N::SetVia) {
            ast::Name v = name_of(c);
            auto e = std::make_unique<ast::Expr>(ast::ExprKind::Name, v.span);
            e->text = v.text;
            s->args.push_back(std::move(e));
          } else {
            s->args.push_back(expr(*c));
          }
        }
        break;
      }
      case N::OnStmt:
        s->kind = ast::StmtKind::On;
        s->word = {text(*n.children().at(0)), span(*n.children().at(0))};
        if (const Node* a = child(n, N::OnAction)) s->word2 = name_of(a->children().at(0));
        else body(*s, n, 1);
        break;
      case N::Guard: guard(*s, n); break;
      case N::Run:
        s->kind = ast::StmtKind::Run;
        s->args.push_back(expr(*n.children().at(0)));
        clauses(*s, n);
        break;
      case N::Probe:
        s->kind = ast::StmtKind::Probe;
        s->word = name_of(n.children().at(0));
        s->args.push_back(expr(*n.children().at(1)));
        clauses(*s, n);
        break;
      case N::WaitUntil:
        s->kind = ast::StmtKind::WaitUntil;
        s->args.push_back(expr(*n.children().at(0)));
        clauses(*s, n);
        break;
      case N::Wait:
        s->kind = ast::StmtKind::Wait;
        s->args.push_back(expr(*n.children().at(0)));
        break;
      case N::Approve:
        s->kind = ast::StmtKind::Approve;
        if (const Node* m = child(n, N::ApproveMessage)) str_head(*s, *m);
        clauses(*s, n);
        break;
      case N::Route: route(*s, n); break;
      case N::Drain:
      case N::Restore:
        s->kind = n.kind == N::Drain ? ast::StmtKind::Drain : ast::StmtKind::Restore;
        s->name = name_of(n.children().at(0));
        if (const Node* d = child(n, N::DrainSubject)) s->args.push_back(expr(*d->children().at(0)));
        clauses(*s, n);
        break;
      case N::Scale:
        s->kind = ast::StmtKind::Scale;
        s->name = name_of(n.children().at(0));
        s->word = name_of(n.children().at(1));
        s->args.push_back(expr(*n.children().at(2)));
        break;
      case N::Phase:
        s->kind = ast::StmtKind::Phase;
        str_head(*s, *n.children().at(0));
        break;
      case N::Undo: {
        s->kind = ast::StmtKind::Undo;
        const Node& b = *n.children().at(0);
        if (b.kind == N::UndoAll) s->word = {"all", span(b)};
        else if (b.kind == N::UndoBlock) body(*s, b, 0);
        else s->args.push_back(expr(b));
        break;
      }
      case N::Abort:
        s->kind = ast::StmtKind::Abort;
        if (const Node* m = child(n, N::AbortMessage)) str_head(*s, *m);
        break;
      case N::If: {
        s->kind = ast::StmtKind::If;
        s->args.push_back(expr(*n.children().at(0)));
        s->has_body = true;
        size_t i = 1;
        for (; i < n.children().size() && n.children()[i]->kind != N::Else; ++i) push_stmt(s->body, *n.children()[i]);
        if (i < n.children().size()) {
          s->has_else = true;
          const Node& el = *n.children()[i];
          for (const auto& c : el.children()) push_stmt(s->else_body, *c);
        }
        break;
      }
      case N::Use:
      case N::Call:
        s->kind = n.kind == N::Use ? ast::StmtKind::Use : ast::StmtKind::Call;
        s->args.push_back(expr(*n.children().at(0)));
        if (s->args[0]->kind != ast::ExprKind::Call)
          diags_.error(code::kSyntax, s->args[0]->span,
                       n.kind == N::Use ? "expected a template call with arguments in parentheses after 'use'"
                                        : "expected a step; a plugin operation is called with parentheses, as in edge.weight(0%)");
        break;
      case N::Stage:
        s->kind = ast::StmtKind::Stage;
        s->word = {text(*n.children().at(0)), span(*n.children().at(0))};
        if (const Node* nm = child(n, N::StageName)) s->name = name_of(nm);
        body(*s, n, child(n, N::StageName) ? 2 : 1);
        break;
      default: return nullptr;
    }
    return s;
  }

  Span keyword_span(const Node& n) const {
    Span s = span(n);
    uint32_t e = s.begin;
    const std::string& t = file_.text();
    while (e < s.end && is_ident_char(t[e])) ++e;
    return {s.file, s.begin, e};
  }

  void str_head(ast::Stmt& s, const Node& wrapper) {
    const Node* str = &wrapper;
    while (str->kind != N::String && !str->children().empty()) str = str->children().front();
    s.str = decode_plain(*str);
    s.str_span = span(*str);
  }

  void push_stmt(std::vector<ast::StmtPtr>& out, const Node& c) {
    if (auto st = stmt(c)) out.push_back(std::move(st));
  }

  void body(ast::Stmt& s, const Node& n, size_t from) {
    s.has_body = true;
    for (size_t i = from; i < n.children().size(); ++i) push_stmt(s.body, *n.children()[i]);
  }

  void params(ast::Stmt& s, const Node* tp) {
    if (!tp) return;
    for (const auto& p : tp->children()) {
      ast::Param prm;
      prm.span = span(*p);
      prm.name = name_of(p->children().at(0));
      if (const Node* t = child(*p, N::TypeAnn)) prm.type = name_of(t->children().at(0));
      if (const Node* d = child(*p, N::Default)) prm.value = expr(*d->children().at(0));
      s.params.push_back(std::move(prm));
    }
  }

  void clauses(ast::Stmt& s, const Node& n) {
    for (const auto& c : n.children()) {
      if (c->kind != N::Clause) continue;
      ast::Clause cl;
      cl.key = text(*c->children().at(0));
      cl.span = span(*c);
      const Node& v = *c->children().at(1);
      if (v.kind == N::Word) cl.word = name_of(&v);
      else cl.value = expr(v);
      s.clauses.push_back(std::move(cl));
    }
  }

  void guard(ast::Stmt& s, const Node& n) {
    s.kind = ast::StmtKind::Guard;
    for (const auto& c : n.children()) {
      switch (c->kind) {
        case N::GuardLabel: str_head(s, *c); break;
        case N::GuardCompare:
          s.word = {"compare", keyword_span(*c)};
          for (const auto& a : c->children()) s.args.push_back(expr(*a));
          break;
        case N::GuardProbe:
          s.word = {"probe", keyword_span(*c)};
          s.word2 = name_of(c->children().at(0));
          s.args.push_back(expr(*c->children().at(1)));
          break;
        case N::Clause: break;
        default: s.args.push_back(expr(*c)); break;
      }
    }
    clauses(s, n);
  }

  void route(ast::Stmt& s, const Node& n) {
    s.kind = ast::StmtKind::Route;
    s.name = name_of(n.children().at(0));
    const Node& b = *n.children().at(1);
    switch (b.kind) {
      case N::RouteClear: s.match_kind = "clear"; break;
      case N::RouteMatch:
        s.match_kind = text(*b.children().at(0));
        s.args.push_back(expr(*b.children().at(1)));
        s.match_op = text(*b.children().at(2));
        s.args.push_back(expr(*b.children().at(3)));
        s.args.push_back(expr(*b.children().at(4)));
        break;
      default:
        s.match_kind = "ip";
        s.args.push_back(expr(*b.children().at(0)));
        s.args.push_back(expr(*b.children().at(1)));
        break;
    }
  }

 private:
  const SourceFile& file_;
  Diagnostics& diags_;
  bool too_deep_reported_ = false;
  mutable LineScan line_;  // the line trim_end looked at last
};

}  // namespace

ast::Module parse(const SourceFile& file, Diagnostics& diags, const ParseLimits& limits) {
  ast::Module mod;
  mod.file = &file;
  const std::string& text = file.text();

  // Text files only: a NUL byte or invalid UTF-8 stops here with the offending position.
  if (size_t bad = first_invalid_utf8(text); bad != std::string::npos) {
    bool nul = text[bad] == '\0';
    Diagnostic& d = diags.error(code::kEncoding, {file.id(), static_cast<uint32_t>(bad), static_cast<uint32_t>(bad + 1)},
                                nul ? "file contains a NUL byte; .gray files are text" : "file is not valid UTF-8");
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[bad])));
    d.notes.push_back(std::string("the byte at this position is ") + hex);
    return mod;
  }

  // Classic Mac line endings would make the whole file one line (and, after a '#', one comment).
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) {
      Diagnostic& d = diags.error(code::kEncoding, {file.id(), static_cast<uint32_t>(i), static_cast<uint32_t>(i + 1)},
                                  "a line ends with a lone carriage return (CR)");
      d.help = "save the file with LF (or CRLF) line endings";
      return mod;
    }

  ParseState ps;
  ps.base = text.data();
  ps.limits = &limits;
  ps.nodes.reserve(text.size() / 2 + 16);  // typical text makes a node per 3 bytes
  pegtl::memory_input<pegtl::tracking_mode::lazy, pegtl::eol::lf_crlf, std::string_view> in(text.data(), text.size(), file.path());
  bool complete = false;
  try {
    complete = pegtl::parse<g::grammar, action, control>(in, ps);
  } catch (const TooManyErrors&) {
    complete = false;
  } catch (const SyntaxError& e) {
    ps.errors.push_back(e);
  }

  for (const SyntaxError& e : ps.errors) {
    // A span never reaches past the end of the file (an error "found end of file" is empty there).
    const uint32_t size = static_cast<uint32_t>(text.size());
    const uint32_t b = std::min(e.begin, size);
    Diagnostic& d = diags.error(e.code, {file.id(), b, std::min(std::max(b, e.end), size)}, e.message);
    if (!e.help.empty()) d.help = e.help;
    if (e.related != UINT32_MAX) d.secondary.push_back({{file.id(), e.related, e.related + 1}, e.related_label});
  }
  if (ps.errors.size() >= limits.max_errors)
    diags.list().back().notes.push_back("too many syntax errors; stopped after " + std::to_string(limits.max_errors));
  for (ast::Comment c : ps.comments) {
    c.span.file = file.id();
    mod.comments.push_back(c);
  }
  if (!complete) return mod;

  std::vector<const Node*> kids;
  const Kids top = link_children(ps.nodes, kids);
  Lower lower(file, diags);
  for (const Node* c : top)
    if (auto s = lower.stmt(*c)) mod.items.push_back(std::move(s));
  return mod;
}

bool is_reserved(std::string_view w) { return g::reserved_word(w); }

size_t analyze_grammar(bool verbose) { return pegtl::analyze<g::grammar>(verbose ? 1 : 0); }

}  // namespace gray

