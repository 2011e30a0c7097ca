// The command line as a user meets it: exit codes, streams, formats.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/cli.h"

namespace fs = std::filesystem;

namespace {

struct Run {
  int rc;
  std::string out, err;
};

Run gray_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "gray");
  std::ostringstream out, err;
  int rc = gray::run_cli(args, out, err);
  return {rc, out.str(), err.str()};
}

fs::path temp_file(const std::string& name, const std::string& text) {
  fs::path dir = (fs::temp_directory_path() / ("gray-cli-test-" + std::to_string(::getpid())));
  fs::create_directories(dir);
  fs::path p = dir / name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

const char* kClean = R"(pipeline "ok" {
  param version
  gateway edge = sim {}
  ramp traffic {
    via edge
    steps 5% -> 50% -> 100%
    hold 1m
  }
}
)";

}  // namespace

TEST_CASE("no arguments is a usage error") {
  Run r = gray_cli({});
  CHECK(r.rc == 2);
  CHECK(r.err.find("usage: gray") != std::string::npos);
}

TEST_CASE("unknown command and unknown flag are usage errors") {
  CHECK(gray_cli({"frobnicate"}).rc == 2);
  Run r = gray_cli({"check", "--bogus", "x.gray"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("unknown option '--bogus'") != std::string::npos);
  CHECK(gray_cli({"check", "--format", "yaml", "x.gray"}).rc == 2);
  CHECK(gray_cli({"check", "--format"}).rc == 2);
  CHECK(gray_cli({"check"}).rc == 2);
}

TEST_CASE("a missing file is reported and is a usage error") {
  Run r = gray_cli({"check", "/nonexistent/dir/x.gray"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("cannot read '/nonexistent/dir/x.gray'") != std::string::npos);
}

TEST_CASE("a clean file prints nothing and exits 0") {
  fs::path p = temp_file("clean.gray", kClean);
  Run r = gray_cli({"check", p.string()});
  CHECK(r.err.empty());
  CHECK(r.out.empty());
  CHECK(r.rc == 0);
}

TEST_CASE("errors go to stderr in text and exit 1") {
  fs::path p = temp_file("bad.gray", "pipeline \"x\" {\n  parm version\n}\n");
  Run r = gray_cli({"check", "--color=never", p.string()});
  CHECK(r.rc == 1);
  CHECK(r.out.empty());
  CHECK(r.err.find("bad.gray:2:3: error: unknown statement 'parm'") != std::string::npos);
  CHECK(r.err.find("did you mean 'param'?") != std::string::npos);
}

TEST_CASE("json output is versioned and goes to stdout") {
  fs::path p = temp_file("bad.gray", "pipeline \"x\" {\n  parm version\n}\n");
  Run r = gray_cli({"check", "--format=json", p.string()});
  CHECK(r.rc == 1);
  CHECK(r.err.empty());
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["format"] == "gray-diagnostics");
  CHECK(doc["version"] == 1);
  REQUIRE(doc["diagnostics"].size() == 1);
  auto d = doc["diagnostics"][0];
  CHECK(d["code"] == "syntax");
  CHECK(d["severity"] == "error");
  CHECK(d["span"]["start"]["line"] == 2);
  CHECK(d["span"]["start"]["column"] == 3);
  CHECK(d["help"] == "did you mean 'param'?");
}

TEST_CASE("sarif output is SARIF 2.1.0 with rules and regions") {
  fs::path p = temp_file("bad.gray", "pipeline \"x\" {\n  parm version\n}\n");
  Run r = gray_cli({"check", "--format", "sarif", p.string()});
  CHECK(r.rc == 1);
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["version"] == "2.1.0");
  auto run = doc["runs"][0];
  CHECK(run["tool"]["driver"]["name"] == "gray");
  CHECK(run["tool"]["driver"]["rules"][0]["id"] == "syntax");
  auto res = run["results"][0];
  CHECK(res["ruleId"] == "syntax");
  CHECK(res["level"] == "error");
  auto region = res["locations"][0]["physicalLocation"]["region"];
  CHECK(region["startLine"] == 2);
  CHECK(region["startColumn"] == 3);
  CHECK(region["endColumn"] == 7);
}

TEST_CASE("many files in one invocation, clean and bad") {
  fs::path a = temp_file("many-a.gray", kClean);
  fs::path b = temp_file("many-b.gray", "pipeline \"b\" {\n  wait\n}\n");
  fs::path c = temp_file("many-c.gray", kClean);
  Run r = gray_cli({"check", "--color=never", a.string(), b.string(), c.string()});
  CHECK(r.rc == 1);
  CHECK(r.err.find("many-b.gray:2:") != std::string::npos);
  CHECK(r.err.find("many-a.gray") == std::string::npos);
}

TEST_CASE("NO_COLOR and --color") {
  fs::path p = temp_file("bad.gray", "pipeline \"x\" {\n  parm version\n}\n");
  Run always = gray_cli({"check", "--color=always", p.string()});
  CHECK(always.err.find("\x1b[") != std::string::npos);
  Run never = gray_cli({"check", "--color=never", p.string()});
  CHECK(never.err.find("\x1b[") == std::string::npos);
}
