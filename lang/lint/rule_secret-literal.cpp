// secret-literal: a secret written into the file instead of read with env("NAME"): a secret
// field of a plugin's configuration given as text, a value named like a password or a token,
// or text that looks like a credential (an access key, a bearer token, a private key, a
// password in a URL or on a command line).
#include "lang/lint/rule.h"

#include <cctype>

#include "plugins/catalog.h"

namespace gray::lint {
namespace {

using ast::ExprKind;
using ast::StmtKind;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool secret_name(std::string_view name) {
  static const char* const names[] = {"password", "passwd",     "secret",      "token",         "api_key",     "apikey",
                                      "access_key", "secret_key", "private_key", "client_secret", "signing_key", "credentials"};
  std::string n = lower(name);
  for (const char* s : names) {
    std::string_view w(s);
    if (n == w) return true;
    if (n.size() > w.size() && n.compare(n.size() - w.size(), w.size(), w) == 0 && n[n.size() - w.size() - 1] == '_') return true;
  }
  return false;
}

// The literal text of a string, with its ${...} parts left out; "" when it has none.
std::string literal_text(const ast::Expr& e) {
  std::string out;
  for (const ast::StrPart& p : e.parts)
    if (!p.is_var) out += p.text;
  return out;
}

bool is_token_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/' || c == '+' || c == '='; }

size_t run_of(const std::string& s, size_t from, bool (*ok)(char)) {
  size_t i = from;
  while (i < s.size() && ok(s[i])) ++i;
  return i - from;
}

bool upper_or_digit(char c) { return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)); }
bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool word_char(char c) { return alnum(c) || c == '_' || c == '-'; }

struct Found {
  std::string what;  // "an AWS access key"; empty when nothing was found
  size_t pos = 0, len = 0;
};

// Options and query parameters that carry a credential. A constant table: the list is walked
// for every 'p', 't', 's', 'a' and '-' of every string.
constexpr std::string_view kCommandLineKeys[] = {"password=", "passwd=", "token=", "secret=", "api_key=", "apikey=", "--password ",
                                                 "--password=", "--token ", "--token=", "--secret ", "--secret=", "--api-key ", "--api-key="};

// The first credential in a piece of literal text. Every string of the file goes through
// here, so the first character picks the patterns worth comparing.
Found credential(const std::string& s) {
  auto token = [](char c) { return is_token_char(c); };
  auto value = [](char c) { return c != ' ' && c != '&' && c != '\'' && c != '"'; };
  for (size_t i = 0; i < s.size(); ++i) {
    auto at = [&](std::string_view w) { return s.compare(i, w.size(), w) == 0; };
    switch (s[i]) {
      case 'A':
        if (at("AKIA") && run_of(s, i + 4, upper_or_digit) >= 16) return {"an AWS access key", i, 20};
        break;
      case 'g':
        if ((at("ghp_") || at("gho_") || at("ghu_") || at("ghs_") || at("ghr_")) && run_of(s, i + 4, alnum) >= 30)
          return {"a GitHub token", i, 4 + run_of(s, i + 4, alnum)};
        if (at("github_pat_") && run_of(s, i + 11, word_char) >= 20) return {"a GitHub token", i, 11 + run_of(s, i + 11, word_char)};
        break;
      case 'x':
        if ((at("xoxb-") || at("xoxp-") || at("xoxa-") || at("xoxs-") || at("xoxr-")) && run_of(s, i + 5, word_char) >= 10)
          return {"a Slack token", i, 5 + run_of(s, i + 5, word_char)};
        break;
      case 'e':
        if (at("eyJ")) {
          size_t a = run_of(s, i, word_char);
          if (a >= 10 && i + a < s.size() && s[i + a] == '.') {
            size_t b = run_of(s, i + a + 1, word_char);
            size_t c = i + a + 1 + b < s.size() && s[i + a + 1 + b] == '.' ? run_of(s, i + a + b + 2, word_char) : 0;
            if (b >= 10 && c >= 10) return {"a JSON web token", i, a + b + c + 2};
          }
        }
        break;
      case 'B':
        if (at("Bearer ") && run_of(s, i + 7, token) >= 16) return {"a bearer token", i + 7, run_of(s, i + 7, token)};
        if (at("Basic ") && run_of(s, i + 6, token) >= 12) return {"basic-auth credentials", i + 6, run_of(s, i + 6, token)};
        break;
      case ':':
        if (at("://")) {
          // scheme://user:password@host
          size_t j = i + 3, colon = std::string::npos;
          while (j < s.size() && s[j] != '/' && s[j] != '@' && s[j] != ' ') {
            if (s[j] == ':' && colon == std::string::npos) colon = j;
            ++j;
          }
          if (j < s.size() && s[j] == '@' && colon != std::string::npos && j > colon + 1)
            return {"a password in a URL", colon + 1, j - colon - 1};
        }
        break;
      case '-':
        if (at("-----BEGIN")) {
          size_t k = s.find("PRIVATE KEY-----", i);
          if (k != std::string::npos) return {"a private key", i, k + 16 - i};
        }
        [[fallthrough]];
      case 'p':
      case 't':
      case 's':
      case 'a':
        for (std::string_view key : kCommandLineKeys) {
          if (key[0] != s[i] || !at(key)) continue;
          size_t n = run_of(s, i + key.size(), value);
          if (n >= 4)
            return {std::string(key.find("pass") != std::string_view::npos ? "a password" : "a token") + " on a command line or in a URL",
                    i + key.size(), n};
        }
        break;
      default: break;
    }
  }
  return {};
}

class Scan {
 public:
  Scan(Context& cx) : cx_(cx) {}

  void stmts(const std::vector<ast::StmtPtr>& body, const Item& parent) {
    for (const ast::StmtPtr& sp : body) {
      const ast::Stmt& s = *sp;
      Item it{&s, parent.env, parent.origin, parent.module};
      if (s.kind == StmtKind::Plugin) plugin(it);
      if ((s.kind == StmtKind::Let || s.kind == StmtKind::Param) && s.value) value(it, *s.value, s.name.text);
      for (const ast::Param& p : s.params)
        if (p.value) value(it, *p.value, p.name.text);
      for (const ast::ExprPtr& a : s.args) expr(it, *a);
      for (const ast::Clause& c : s.clauses)
        if (c.value) expr(it, *c.value);
      if (s.kind != StmtKind::Plugin && s.kind != StmtKind::Let && s.kind != StmtKind::Param && s.value) expr(it, *s.value);
      stmts(s.body, it);
      stmts(s.else_body, it);
    }
  }

 private:
  void plugin(const Item& it) {
    const ast::Stmt& s = *it.stmt;
    if (!s.value) return;
    plugins::Kind kind;
    const plugins::DriverSpec* drv = plugins::parse_kind(s.word.text, kind) ? plugins::find_driver(kind, s.word2.text) : nullptr;
    for (const ast::Field& f : s.value->fields) {
      bool secret = false;
      if (drv)
        for (const plugins::FieldSpec& fs : drv->fields) secret |= fs.secret && f.name == fs.name;
      if (secret && f.value->kind == ExprKind::String) {
        report(it, *f.value, "field '" + f.name + "' of the " + s.word2.text + " driver is a secret, written here as text");
        continue;
      }
      value(it, *f.value, f.name);
    }
  }

  // A value bound to a name: a secret if the name says so and the value is text.
  void value(const Item& it, const ast::Expr& e, const std::string& name) {
    if (e.kind == ExprKind::String && secret_name(name) && !literal_text(e).empty()) {
      report(it, e, "'" + name + "' holds a secret, written here as text");
      return;
    }
    expr(it, e);
  }

  void expr(const Item& it, const ast::Expr& e) {
    if (e.kind == ExprKind::Call && e.items.at(0)->kind == ExprKind::Name && e.items[0]->text == "env") return;
    if (e.kind == ExprKind::String) {
      // Literal pieces only: "${user}:${password}@" holds no secret, it reads them.
      for (const ast::StrPart& p : e.parts) {
        if (p.is_var) continue;
        Found f = credential(p.text);
        if (f.what.empty()) continue;
        Span at = e.span;
        if (cx_.model.source(p.span) == p.text)  // no escapes: offsets in the text are offsets in the file
          at = {p.span.file, p.span.begin + static_cast<uint32_t>(f.pos), p.span.begin + static_cast<uint32_t>(f.pos + f.len)};
        report(it, at, "this text holds " + f.what);
        break;
      }
      return;
    }
    if (e.kind == ExprKind::Map || e.kind == ExprKind::Call) {
      for (const ast::Field& f : e.fields) {
        if (!f.name.empty()) value(it, *f.value, f.name);
        else expr(it, *f.value);
      }
      for (const ast::ExprPtr& i : e.items) expr(it, *i);
      return;
    }
    for (const ast::ExprPtr& i : e.items) expr(it, *i);
  }

  void report(const Item& it, const ast::Expr& e, const std::string& message) { report(it, e.span, message); }
  void report(const Item& it, Span at, const std::string& message) {
    if (Diagnostic* d = cx_.report(it, at, message))
      d->help = "read it from the environment with env(\"NAME\"): secrets never belong in a pipeline file";
  }

  Context& cx_;
};

void check(Context& cx) {
  const Model& m = cx.model;
  Scan scan(cx);
  scan.stmts(m.module().items, Item{nullptr, nullptr, nullptr, m.module_index()});
}

}  // namespace

const Rule& rule_secret_literal() {
  static const Rule r{{"secret-literal", Level::Error, "A secret is written into the file instead of read with env()", {}}, check};
  return r;
}

}  // namespace gray::lint
