// Lint golden files and rule pages. tests/golden/lint/<rule-id>/ holds, for every rule,
// bad-*.gray files that must fire it (their `gray lint` exit code and stderr are compared with
// bad-*.expected) and good-*.gray files that must produce no finding at all. A sub-folder with
// a gray.json tests the rule's configuration. Every rule has a page docs/rules/<id>.md with a
// "### Bad" and a "### Good" example, and those examples are linted too.
// GRAY_UPDATE_GOLDEN=1 rewrites the .expected files.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "lang/lint/lint.h"
#include "runtime/cli.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct InSourceDir {
  fs::path old = fs::current_path();
  InSourceDir() { fs::current_path(GRAY_SOURCE_DIR); }
  ~InSourceDir() { fs::current_path(old); }
};

struct Run {
  int rc;
  std::string out, err;
};

Run lint(std::vector<std::string> args) {
  args.insert(args.begin(), {"gray", "lint", "--color=never"});
  std::ostringstream out, err;
  int rc = gray::run_cli(args, out, err);
  return {rc, out.str(), err.str()};
}

const fs::path kGolden = "tests/golden/lint";

// The rule a golden file is about: the first folder under tests/golden/lint.
std::string rule_of(const fs::path& p) { return p.lexically_relative(kGolden).begin()->string(); }

// The ```gray block after each "### Bad" and "### Good" heading of a rule page.
struct Examples {
  std::vector<std::string> bad, good;
};

Examples examples(const std::string& md) {
  Examples ex;
  std::istringstream in(md);
  std::string line, cur;
  std::vector<std::string>* target = nullptr;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line.rfind("### Bad", 0) == 0) target = &ex.bad;
    else if (!inside && line.rfind("### Good", 0) == 0) target = &ex.good;
    else if (!inside && line.rfind("## ", 0) == 0) target = nullptr;
    else if (!inside && line == "```gray" && target) {
      inside = true;
      cur.clear();
    } else if (inside && line.rfind("```", 0) == 0) {
      inside = false;
      target->push_back(cur);
      target = nullptr;
    } else if (inside) {
      cur += line + "\n";
    }
  }
  return ex;
}

}  // namespace

TEST_CASE("lint golden files") {
  InSourceDir here;
  std::vector<fs::path> inputs;
  for (auto& e : fs::recursive_directory_iterator(kGolden))
    if (e.path().extension() == ".gray") inputs.push_back(e.path());
  std::sort(inputs.begin(), inputs.end());
  REQUIRE(inputs.size() >= 40);
  const bool update = std::getenv("GRAY_UPDATE_GOLDEN") != nullptr;
  for (const fs::path& in : inputs) {
    const std::string name = in.filename().string();
    const std::string rule = rule_of(in);
    Run r = lint({in.generic_string()});
    INFO("golden file " << in.generic_string() << "\n" << r.err);
    if (name.rfind("good-", 0) == 0) {
      CHECK(r.rc == 0);
      CHECK(r.err.empty());
      continue;
    }
    REQUIRE(name.rfind("bad-", 0) == 0);
    // A bad example fires its rule, and only lint findings: it checks clean.
    CHECK(r.err.find("[" + rule + "]") != std::string::npos);
    CHECK(r.rc == 1);
    std::string actual = "exit: " + std::to_string(r.rc) + "\n" + r.err;
    fs::path expected_path = in;
    expected_path.replace_extension(".expected");
    if (update) {
      std::ofstream(expected_path, std::ios::binary) << actual;
      continue;
    }
    INFO("(GRAY_UPDATE_GOLDEN=1 to rewrite)");
    REQUIRE(fs::exists(expected_path));
    CHECK(actual == slurp(expected_path));
    std::ostringstream out, err;
    CHECK(gray::run_cli({"gray", "check", "--color=never", in.generic_string()}, out, err) == 0);
  }
}

TEST_CASE("every rule has golden files and a page, and the index lists it") {
  InSourceDir here;
  const std::string index = slurp("docs/rules/README.md");
  for (const gray::lint::Rule* r : gray::lint::rules()) {
    const std::string id = r->info.id;
    INFO("rule " << id);
    size_t bad = 0, good = 0;
    if (fs::is_directory(kGolden / id))
      for (auto& e : fs::recursive_directory_iterator(kGolden / id)) {
        std::string n = e.path().filename().string();
        bad += n.rfind("bad-", 0) == 0 && e.path().extension() == ".gray";
        good += n.rfind("good-", 0) == 0 && e.path().extension() == ".gray";
      }
    CHECK(bad >= 1);
    CHECK(good >= 1);
    CHECK(fs::exists("docs/rules/" + id + ".md"));
    CHECK(index.find("[`" + id + "`](" + id + ".md)") != std::string::npos);
  }
  // No page or golden folder for a rule that does not exist.
  for (auto& e : fs::directory_iterator("docs/rules")) {
    std::string stem = e.path().stem().string();
    if (stem != "README") CHECK(gray::lint::find_rule(stem) != nullptr);
  }
  for (auto& e : fs::directory_iterator(kGolden)) CHECK(gray::lint::find_rule(e.path().filename().string()) != nullptr);
}

TEST_CASE("the examples on every rule page do what the page says") {
  InSourceDir here;
  fs::path dir = (fs::temp_directory_path() / ("gray-rule-examples-" + std::to_string(::getpid())));
  fs::remove_all(dir);
  fs::create_directories(dir);
  size_t pages = 0;
  for (const gray::lint::Rule* r : gray::lint::rules()) {
    const std::string id = r->info.id;
    Examples ex = examples(slurp("docs/rules/" + id + ".md"));
    INFO("docs/rules/" << id << ".md");
    CHECK(ex.bad.size() >= 1);
    CHECK(ex.good.size() >= 1);
    ++pages;
    auto run = [&](const std::string& code, const std::string& tag, size_t i) {
      fs::path p = dir / (id + "-" + tag + "-" + std::to_string(i) + ".gray");
      std::ofstream(p, std::ios::binary) << code;
      return lint({"--root", dir.string(), p.string()});
    };
    for (size_t i = 0; i < ex.bad.size(); ++i) {
      Run r = run(ex.bad[i], "bad", i);
      INFO("bad example " << i << ":\n" << ex.bad[i] << "\n" << r.err);
      CHECK(r.err.find("[" + id + "]") != std::string::npos);
      // Only lint findings: the example itself is a valid pipeline.
      std::ostringstream out, err;
      CHECK(gray::run_cli({"gray", "check", "--root", dir.string(), (dir / (id + "-bad-" + std::to_string(i) + ".gray")).string()}, out, err) == 0);
    }
    for (size_t i = 0; i < ex.good.size(); ++i) {
      Run r = run(ex.good[i], "good", i);
      INFO("good example " << i << ":\n" << ex.good[i] << "\n" << r.err);
      CHECK(r.rc == 0);
      CHECK(r.err.empty());
    }
  }
  CHECK(pages >= 20);
}

TEST_CASE("the bundled pipelines and stdlib lint clean") {
  InSourceDir here;
  Run r = lint({"pipelines", "stdlib"});
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(r.err.empty());
}
