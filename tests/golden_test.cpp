// Golden files: every tests/golden/<group>/<name>.gray is checked with `gray check` and its
// exit code and stderr compared with <name>.expected. GRAY_UPDATE_GOLDEN=1 rewrites them.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

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

}  // namespace

TEST_CASE("golden diagnostics") {
  InSourceDir here;
  std::vector<fs::path> inputs;
  for (auto& e : fs::recursive_directory_iterator("tests/golden")) {
    // lint/ and fmt/ have harnesses of their own (lint_test.cpp, fmt_test.cpp).
    std::string group = e.path().lexically_relative("tests/golden").begin()->string();
    if (group == "lint" || group == "fmt") continue;
    if (e.path().extension() == ".gray" && e.path().parent_path().filename() != "modules") inputs.push_back(e.path());
  }
  std::sort(inputs.begin(), inputs.end());
  REQUIRE(inputs.size() >= 40);
  const bool update = std::getenv("GRAY_UPDATE_GOLDEN") != nullptr;
  for (const fs::path& in : inputs) {
    std::ostringstream out, err;
    int rc = gray::run_cli({"gray", "check", "--color=never", in.generic_string()}, out, err);
    std::string actual = "exit: " + std::to_string(rc) + "\n" + err.str();
    fs::path expected_path = in;
    expected_path.replace_extension(".expected");
    if (update) {
      std::ofstream(expected_path, std::ios::binary) << actual;
      continue;
    }
    INFO("golden file " << expected_path.generic_string() << " (GRAY_UPDATE_GOLDEN=1 to rewrite)");
    REQUIRE(fs::exists(expected_path));
    CHECK(actual == slurp(expected_path));
  }
}
