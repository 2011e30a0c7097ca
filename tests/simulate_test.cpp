// Golden plans and simulations of every example pipeline against every one of its scenarios,
// so a change in the interpreter or the simulated world shows up as a reviewed diff.
// GRAY_UPDATE_GOLDEN=1 rewrites the expected files.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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

// The version each example releases (the scenarios run the previous one).
const std::map<std::string, std::string> kVersions = {
    {"canary", "2.4.1"},           {"container-gray", "5.13.0"}, {"flow-periods", "3.2.0"},
    {"node-handover", "7.4.0"},    {"registry-rolling", "3.9.0"}, {"versioned-routing", "11.5.0"}};

// Pipelines whose gates need an answer; the simulation answers them with promote.
const std::set<std::string> kApproved = {"flow-periods", "versioned-routing"};

void compare(const fs::path& expected, const std::string& actual) {
  if (std::getenv("GRAY_UPDATE_GOLDEN")) {
    fs::create_directories(expected.parent_path());
    std::ofstream(expected, std::ios::binary) << actual;
    return;
  }
  INFO("golden file " << expected.generic_string() << " (GRAY_UPDATE_GOLDEN=1 to rewrite)");
  REQUIRE(fs::exists(expected));
  CHECK(actual == slurp(expected));
}

}  // namespace

TEST_CASE("plans of the example pipelines") {
  InSourceDir here;
  for (const auto& [name, version] : kVersions) {
    std::ostringstream out, err;
    int rc = gray::run_cli({"gray", "plan", "pipelines/" + name + ".gray", "--set", "version=" + version}, out, err);
    INFO(err.str());
    CHECK(rc == 0);
    compare("tests/golden/plan/" + name + ".plan", out.str());
  }
}

TEST_CASE("simulations of the example pipelines against their scenarios") {
  InSourceDir here;
  size_t n = 0;
  for (const auto& [name, version] : kVersions) {
    for (auto& e : fs::directory_iterator("pipelines/scenarios/" + name)) {
      if (e.path().extension() != ".json") continue;
      std::vector<std::string> args = {"gray", "simulate", "pipelines/" + name + ".gray", "--set", "version=" + version,
                                       "--scenario", e.path().generic_string()};
      if (kApproved.count(name)) args.insert(args.end(), {"--approve", "promote"});
      std::ostringstream out, err;
      int rc = gray::run_cli(args, out, err);
      INFO(e.path() << "\n" << err.str());
      CHECK((rc == 0 || rc == 1));
      compare("tests/golden/simulate/" + name + "/" + e.path().stem().string() + ".out",
              "exit: " + std::to_string(rc) + "\n" + out.str() + (err.str().empty() ? "" : "stderr:\n" + err.str()));
      ++n;
    }
  }
  CHECK(n >= 30);
}
