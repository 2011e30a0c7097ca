// The formatter. tests/golden/fmt/<name>.gray formats to <name>.fmt; and on every input we
// have (the golden files, the bundled pipelines and stdlib, every example in the docs) the
// formatter keeps the tree (ast::equal), keeps every comment, and is idempotent. The bundled
// pipelines and stdlib are already formatted. GRAY_UPDATE_GOLDEN=1 rewrites the .fmt files.
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lang/ast_equal.h"
#include "lang/format.h"
#include "lang/parse.h"
#include "runtime/cli.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

fs::path src(const std::string& rel) { return fs::path(GRAY_SOURCE_DIR) / rel; }

std::vector<std::string> comments(const gray::ast::Module& m) {
  std::vector<std::string> out;
  for (const gray::ast::Comment& c : m.comments) {
    std::string t(m.file->slice(c.span));
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.pop_back();
    out.push_back(t);
  }
  return out;
}

struct Formatted {
  bool parsed = false;  // the input has no syntax errors
  std::string text;
};

// Formats `text` and checks what formatting promises. Inputs with syntax errors are skipped.
Formatted check_format(const std::string& name, const std::string& text) {
  gray::SourceMap sources;
  gray::Diagnostics d1;
  const gray::SourceFile& f1 = sources.add(name, text);
  gray::ast::Module m1 = gray::parse(f1, d1);
  if (d1.has_errors()) return {};
  std::string once = gray::format_module(m1);

  gray::Diagnostics d2;
  const gray::SourceFile& f2 = sources.add(name + " (formatted)", once);
  gray::ast::Module m2 = gray::parse(f2, d2);
  INFO(name << " formatted:\n" << once);
  REQUIRE_FALSE(d2.has_errors());
  std::string why;
  CHECK(gray::ast::equal(m1, m2, &why));
  INFO(why);
  CHECK(comments(m1) == comments(m2));

  gray::Diagnostics d3;
  const gray::SourceFile& f3 = sources.add(name + " (twice)", once);
  std::string twice = gray::format_module(gray::parse(f3, d3));
  CHECK(twice == once);
  return {true, once};
}

std::vector<std::string> gray_blocks(const std::string& md) {
  std::vector<std::string> out;
  std::istringstream in(md);
  std::string line, cur;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```gray") {
      inside = true;
      cur.clear();
    } else if (inside && line.rfind("```", 0) == 0) {
      inside = false;
      out.push_back(cur);
    } else if (inside) {
      cur += line + "\n";
    }
  }
  return out;
}

}  // namespace

TEST_CASE("fmt golden files") {
  std::vector<fs::path> inputs;
  for (auto& e : fs::directory_iterator(src("tests/golden/fmt")))
    if (e.path().extension() == ".gray") inputs.push_back(e.path());
  std::sort(inputs.begin(), inputs.end());
  REQUIRE(inputs.size() >= 10);
  const bool update = std::getenv("GRAY_UPDATE_GOLDEN") != nullptr;
  for (const fs::path& in : inputs) {
    INFO("golden file " << in.filename().string());
    Formatted f = check_format(in.filename().string(), slurp(in));
    REQUIRE(f.parsed);
    fs::path expected = in;
    expected.replace_extension(".fmt");
    if (update) {
      std::ofstream(expected, std::ios::binary) << f.text;
      continue;
    }
    REQUIRE(fs::exists(expected));
    CHECK(f.text == slurp(expected));
    // The expected output is itself canonical.
    CHECK(check_format(expected.filename().string(), f.text).text == f.text);
  }
}

TEST_CASE("fmt keeps the tree and the comments, and is idempotent, on every input we have") {
  size_t n = 0;
  for (const char* dir : {"tests/golden", "pipelines", "stdlib", "tests/fuzz/corpus"}) {
    if (!fs::exists(src(dir))) continue;
    for (auto& e : fs::recursive_directory_iterator(src(dir))) {
      if (!e.is_regular_file() || (e.path().extension() != ".gray" && e.path().extension() != ".fmt")) continue;
      INFO(e.path().string());
      n += check_format(e.path().string(), slurp(e.path())).parsed;
    }
  }
  for (auto& e : fs::recursive_directory_iterator(src("docs"))) {
    if (e.path().extension() != ".md") continue;
    std::vector<std::string> blocks = gray_blocks(slurp(e.path()));
    for (size_t i = 0; i < blocks.size(); ++i) {
      INFO(e.path().string() << " example " << i << ":\n" << blocks[i]);
      CHECK(check_format(e.path().filename().string() + "#" + std::to_string(i), blocks[i]).parsed);
      ++n;
    }
  }
  CHECK(n >= 300);
}

TEST_CASE("the bundled pipelines and stdlib are formatted") {
  for (const char* dir : {"pipelines", "stdlib"})
    for (auto& e : fs::directory_iterator(src(dir))) {
      if (e.path().extension() != ".gray") continue;
      INFO(e.path().string() << " is not formatted: run gray fmt " << dir);
      std::string text = slurp(e.path());
      CHECK(check_format(e.path().string(), text).text == text);
    }
}
