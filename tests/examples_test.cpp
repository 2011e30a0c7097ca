// The bundled pipelines, the standard library and every example in the language spec must
// check clean, so none of them can rot.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "plugins/catalog.h"
#include "runtime/cli.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Blocks {
  std::vector<std::string> code;
  std::vector<int> line;
};

// ```gray fenced blocks of a Markdown file, with the line each starts on.
Blocks gray_blocks(const std::string& md) {
  Blocks b;
  std::istringstream in(md);
  std::string l, cur;
  bool inside = false;
  int n = 0, start = 0;
  while (std::getline(in, l)) {
    ++n;
    if (!inside && l.rfind("```gray", 0) == 0 && l.size() == 7) {
      inside = true;
      cur.clear();
      start = n + 1;
    } else if (inside && l.rfind("```", 0) == 0) {
      inside = false;
      b.code.push_back(cur);
      b.line.push_back(start);
    } else if (inside) {
      cur += l + "\n";
    }
  }
  return b;
}

}  // namespace

TEST_CASE("bundled pipelines and stdlib check clean") {
  std::ostringstream out, err;
  const std::string src = GRAY_SOURCE_DIR;
  int rc = gray::run_cli({"gray", "check", "--color=never", src + "/pipelines", src + "/stdlib"}, out, err);
  INFO(err.str());
  CHECK(rc == 0);
  CHECK(err.str().empty());
  size_t n = 0;
  for (auto& e : fs::directory_iterator(src + "/pipelines")) n += e.path().extension() == ".gray";
  CHECK(n >= 6);
}

TEST_CASE("every example in docs/language.md checks clean") {
  const std::string src = GRAY_SOURCE_DIR;
  Blocks b = gray_blocks(slurp(src + "/docs/language.md"));
  REQUIRE(b.code.size() >= 30);
  fs::path dir = (fs::temp_directory_path() / ("gray-spec-examples-" + std::to_string(::getpid())));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (size_t i = 0; i < b.code.size(); ++i) {
    fs::path p = dir / ("example-line-" + std::to_string(b.line[i]) + ".gray");
    std::ofstream(p, std::ios::binary) << b.code[i];
    std::ostringstream out, err;
    int rc = gray::run_cli({"gray", "check", "--color=never", "--root", dir.string(), p.string()}, out, err);
    INFO("docs/language.md example starting at line " << b.line[i] << "\n" << b.code[i] << "\n" << err.str());
    CHECK(rc == 0);
  }
}

TEST_CASE("the driver table in docs/language.md lists every driver and every field of the catalog") {
  std::string md = slurp(fs::path(GRAY_SOURCE_DIR) / "docs/language.md");
  std::map<std::string, std::string> rows;  // "kind driver" -> the table row
  std::istringstream in(md);
  std::string l;
  std::regex row(R"(^\| (\w+) \| `(\w+)` \|.*)");
  std::smatch m;
  while (std::getline(in, l))
    if (std::regex_match(l, m, row)) rows[m[1].str() + " " + m[2].str()] = l;
  for (const gray::plugins::DriverSpec& d : gray::plugins::drivers()) {
    std::string id = std::string(gray::plugins::kind_name(d.kind)) + " " + d.name;
    INFO(id);
    REQUIRE(rows.count(id));
    for (const gray::plugins::FieldSpec& f : d.fields) {
      INFO(f.name);
      CHECK(rows[id].find(std::string("`") + f.name + "`") != std::string::npos);
    }
  }
}
