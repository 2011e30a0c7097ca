#include <catch2/catch.hpp>

#include "lang/parse.h"

TEST_CASE("the grammar has no PEGTL analysis problems") { REQUIRE(gray::analyze_grammar(false) == 0); }

#include <string>

#include "lang/load.h"

namespace {

struct Parsed {
  gray::SourceMap sources;
  gray::Diagnostics diags;
  gray::ast::Module mod;
};

std::unique_ptr<Parsed> parse_text(std::string text) {
  auto p = std::make_unique<Parsed>();
  const gray::SourceFile& f = p->sources.add("t.gray", std::move(text));
  p->mod = gray::parse(f, p->diags);
  return p;
}

std::string first_message(const Parsed& p) { return p.diags.list().empty() ? "" : p.diags.list()[0].message; }

}  // namespace

TEST_CASE("an empty file and a file of comments parse clean") {
  CHECK(parse_text("")->diags.list().empty());
  auto p = parse_text("# only a comment\n\n   # another\n");
  CHECK(p->diags.list().empty());
  CHECK(p->mod.comments.size() == 2);
  CHECK(p->mod.comments[0].own_line);
}

TEST_CASE("statements and expressions become the expected tree") {
  auto p = parse_text(
      "pipeline \"p\" {\n"
      "  param version: string = \"1.0\"\n"
      "  ramp r {\n"
      "    steps 5% -> 20% ->\n"
      "      100%\n"
      "    guard a + b * 2 < 1% and not c for 2m else pause  # trailing\n"
      "  }\n"
      "}\n");
  REQUIRE(p->diags.list().empty());
  REQUIRE(p->mod.items.size() == 1);
  const auto& pipe = *p->mod.items[0];
  CHECK(pipe.kind == gray::ast::StmtKind::Pipeline);
  CHECK(pipe.str == "p");
  REQUIRE(pipe.body.size() == 2);
  CHECK(pipe.body[0]->kind == gray::ast::StmtKind::Param);
  CHECK(pipe.body[0]->word.text == "string");
  const auto& ramp = *pipe.body[1];
  REQUIRE(ramp.body.size() == 2);
  CHECK(ramp.body[0]->args.size() == 3);
  CHECK(ramp.body[0]->args[2]->kind == gray::ast::ExprKind::Percent);
  CHECK(ramp.body[0]->args[2]->number == 100);
  const auto& guard = *ramp.body[1];
  const auto& cond = *guard.args.at(0);
  CHECK(cond.text == "and");  // `and` binds loosest
  CHECK(cond.items[0]->text == "<");
  CHECK(cond.items[0]->items[0]->text == "+");  // a + (b * 2)
  CHECK(cond.items[0]->items[0]->items[1]->text == "*");
  REQUIRE(guard.clauses.size() == 2);
  CHECK(guard.clauses[0].key == "for");
  CHECK(guard.clauses[0].value->number == 120000);
  CHECK(guard.clauses[1].word.text == "pause");
  CHECK(p->mod.comments.size() == 1);
  CHECK_FALSE(p->mod.comments[0].own_line);
}

TEST_CASE("string escapes and interpolation") {
  auto p = parse_text("pipeline \"a\\\"b\" {\n  let x = \"v=${version} \\$5 ${host.addr}\\n\"\n}\n");
  REQUIRE(p->diags.list().empty());
  CHECK(p->mod.items[0]->str == "a\"b");
  const auto& s = *p->mod.items[0]->body[0]->value;
  REQUIRE(s.parts.size() == 5);
  CHECK(s.parts[0].text == "v=");
  CHECK(s.parts[1].is_var);
  CHECK(s.parts[1].path == std::vector<std::string>{"version"});
  CHECK(s.parts[2].text == " $5 ");
  CHECK(s.parts[3].path == std::vector<std::string>{"host", "addr"});
}

TEST_CASE("every syntax error in a file is reported, not just the first") {
  auto p = parse_text(
      "pipeline \"x\" {\n"
      "  ramp r {\n"
      "    hold\n"
      "    hodl 10m\n"
      "    wait 5min\n"
      "  }\n"
      "  deploy d {\n"
      "    run \"abc\n"
      "  }\n"
      "}\n");
  const auto& d = p->diags.list();
  REQUIRE(d.size() == 4);
  CHECK(d[0].message == "expected a duration such as 10m after 'hold', found end of line");
  CHECK(d[1].message == "unknown statement 'hodl'; expected a stage setting, guard or step");
  CHECK(d[1].help == "did you mean 'hold'?");
  CHECK(d[2].message == "unknown unit 'min' in '5min'");
  CHECK(d[2].help == "did you mean '5m'?");
  CHECK(d[3].message.rfind("unterminated string", 0) == 0);
  // The statements around the errors survive.
  REQUIRE(p->mod.items.size() == 1);
  CHECK(p->mod.items[0]->body.size() == 2);
}

TEST_CASE("deep nesting is an error, not a stack overflow") {
  std::string deep = "pipeline \"x\" {\n  let a = " + std::string(10000, '(') + "1" + std::string(10000, ')') + "\n}\n";
  auto p = parse_text(deep);
  REQUIRE_FALSE(p->diags.list().empty());
  CHECK(first_message(*p).find("nesting is deeper than") != std::string::npos);

  std::string blocks = "pipeline \"x\" {\n  deploy d {\n";
  for (int i = 0; i < 10000; ++i) blocks += "if true {\n";
  auto q = parse_text(blocks);
  CHECK(q->diags.has_errors());

  std::string nots = "pipeline \"x\" {\n  let a = " + std::string(40000, '-') + "1\n}\n";
  CHECK(parse_text(nots)->diags.has_errors());
}

TEST_CASE("long operator and member chains are refused before they can overflow the checker") {
  std::string sum = "pipeline \"x\" {\n  let a = 1";
  for (int i = 0; i < 40000; ++i) sum += " + 1";
  sum += "\n}\n";
  auto p = parse_text(sum);
  REQUIRE(p->diags.list().size() == 1);
  CHECK(p->diags.list()[0].message.find("this expression is too long") == 0);
  std::string members = "pipeline \"x\" {\n  let a = b";
  for (int i = 0; i < 20000; ++i) members += ".b";
  members += "\n}\n";
  CHECK(parse_text(members)->diags.has_errors());
  std::string calls = "pipeline \"x\" {\n  let a = f";
  for (int i = 0; i < 20000; ++i) calls += "()";
  calls += "\n}\n";
  CHECK(parse_text(calls)->diags.has_errors());
}

TEST_CASE("binary garbage, NUL bytes and invalid UTF-8 are refused with a position") {
  std::string nul = std::string("pipeline \"x\" {\n") + '\0' + "}\n";
  auto p = parse_text(nul);
  REQUIRE(p->diags.list().size() == 1);
  CHECK(p->diags.list()[0].code == "encoding");
  CHECK(p->diags.list()[0].span.begin == 15);
  auto q = parse_text("pipeline \"\xff\xfe\" {}\n");
  REQUIRE(q->diags.list().size() == 1);
  CHECK(q->diags.list()[0].message == "file is not valid UTF-8");
  CHECK(q->diags.list()[0].span.begin == 10);
  // Valid multi-byte text is fine, and columns count characters.
  auto r = parse_text("pipeline \"häfen ✓\" {\n  hodl\n}\n");
  REQUIRE(r->diags.list().size() == 1);
}

TEST_CASE("a 10 MB file parses") {
  std::string big = "pipeline \"big\" {\n";
  int i = 0;
  while (big.size() < 10u * 1024 * 1024) {
    big += "  let v" + std::to_string(i++) + " = \"some value ${x}\" # comment\n";
  }
  big += "}\n";
  auto p = parse_text(big);
  CHECK(p->diags.list().empty());
  CHECK(p->mod.items.at(0)->body.size() == static_cast<size_t>(i));
}

TEST_CASE("a flood of errors stops at the limit") {
  std::string bad;
  for (int i = 0; i < 500; ++i) bad += "@@@\n";
  auto p = parse_text(bad);
  REQUIRE(p->diags.list().size() == 50);
  REQUIRE(p->diags.list().back().notes.size() == 1);
  CHECK(p->diags.list().back().notes[0] == "too many syntax errors; stopped after 50");
}
