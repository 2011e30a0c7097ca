// `gray lint` and `gray fmt` as a user meets them: exit codes, streams, formats, configuration.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lang/lint/lint.h"
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

// A fresh folder per test, marked as a project root so no gray.json above it is found.
fs::path project(const std::string& name) {
  fs::path dir = (fs::temp_directory_path() / ("gray-lint-cli-" + std::to_string(::getpid()))) / name;
  fs::remove_all(dir);
  fs::create_directories(dir / ".git");
  return dir;
}

fs::path write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const char* kClean = R"(pipeline "ok" {
  gateway edge = sim { stable: ["a"], canary: ["b"] }
  metrics prom = sim {}
  metric error_rate = prom.query("errors")

  ramp traffic {
    via edge
    steps 5% -> 50% -> 100%
    hold 10m
    guard error_rate < 1%
  }

  rollback {
    edge.weight(0%)
    undo all
  }
}
)";

// One warning (ramp-max-jump, 10% -> 100%) at line 8, column 24.
const char* kJump = R"(pipeline "jump" {
  gateway edge = sim { stable: ["a"], canary: ["b"] }
  metrics prom = sim {}
  metric error_rate = prom.query("errors")

  ramp traffic {
    via edge
    steps 1% -> 10% -> 100%
    hold 10m
    guard error_rate < 1%
  }

  rollback {
    edge.weight(0%)
    undo all
  }
}
)";

}  // namespace

TEST_CASE("lint: a clean file prints nothing and exits 0") {
  fs::path p = write(project("clean") / "ok.gray", kClean);
  Run r = gray_cli({"lint", p.string()});
  CHECK(r.rc == 0);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
}

TEST_CASE("lint: findings in text on stderr, exit 1; --fail-level decides what fails") {
  fs::path p = write(project("jump") / "jump.gray", kJump);
  Run r = gray_cli({"lint", "--color=never", p.string()});
  CHECK(r.rc == 1);
  CHECK(r.out.empty());
  CHECK(r.err.find("jump.gray:8:24: warning: ramp jumps from 10% to 100% in one step (+90%); the largest step allowed is +50% "
                   "[ramp-max-jump]") != std::string::npos);
  Run lenient = gray_cli({"lint", "--color=never", "--fail-level", "error", p.string()});
  CHECK(lenient.rc == 0);
  CHECK(lenient.err == r.err);  // still shown
  CHECK(gray_cli({"lint", "--fail-level", "note", p.string()}).rc == 1);
  CHECK(gray_cli({"lint", "--fail-level", "fatal", p.string()}).rc == 2);
}

TEST_CASE("lint: language errors are reported as by gray check, and the rules skip that file") {
  fs::path dir = project("broken");
  std::string text = kJump;
  text.replace(text.find("hold 10m"), 8, "hold tenm");
  fs::path p = write(dir / "broken.gray", text);
  Run r = gray_cli({"lint", "--color=never", p.string()});
  CHECK(r.rc == 1);
  CHECK(r.err.find("[unknown-name]") != std::string::npos);
  CHECK(r.err.find("[ramp-max-jump]") == std::string::npos);
  // Even at --fail-level error a language error fails.
  CHECK(gray_cli({"lint", "--fail-level", "error", p.string()}).rc == 1);
}

TEST_CASE("lint: json and sarif on stdout, with the rule id and its description") {
  fs::path p = write(project("formats") / "jump.gray", kJump);
  Run j = gray_cli({"lint", "--format", "json", p.string()});
  CHECK(j.rc == 1);
  CHECK(j.err.empty());
  auto doc = nlohmann::json::parse(j.out);
  REQUIRE(doc["diagnostics"].size() == 1);
  CHECK(doc["diagnostics"][0]["code"] == "ramp-max-jump");
  CHECK(doc["diagnostics"][0]["severity"] == "warning");
  CHECK(doc["diagnostics"][0]["span"]["start"]["line"] == 8);

  Run s = gray_cli({"lint", "--format=sarif", p.string()});
  auto sarif = nlohmann::json::parse(s.out);
  auto rule = sarif["runs"][0]["tool"]["driver"]["rules"][0];
  CHECK(rule["id"] == "ramp-max-jump");
  CHECK(rule["shortDescription"]["text"] == gray::lint::find_rule("ramp-max-jump")->info.summary);
  auto res = sarif["runs"][0]["results"][0];
  CHECK(res["level"] == "warning");
  CHECK(res["locations"][0]["physicalLocation"]["region"]["startColumn"] == 24);
  CHECK(res["locations"][0]["physicalLocation"]["region"]["endColumn"] == 28);
}

TEST_CASE("lint: github annotations, escaped") {
  fs::path p = write(project("github") / "a,b:c.gray", kJump);
  Run r = gray_cli({"lint", "--format", "github", p.string()});
  CHECK(r.rc == 1);
  CHECK(r.err.empty());
  std::string file = p.string();
  std::string escaped;
  for (char c : file) escaped += c == ',' ? "%2C" : c == ':' ? "%3A" : std::string(1, c);
  CHECK(r.out == "::warning file=" + escaped +
                     ",line=8,col=24,endLine=8,endColumn=27,title=ramp-max-jump::ramp jumps from 10%25 to 100%25 in one step "
                     "(+90%25); the largest step allowed is +50%25\n");
  // Language errors too, with help on a second line.
  fs::path bad = write(project("github-error") / "bad.gray", "pipeline \"x\" {\n  parm version\n}\n");
  Run e = gray_cli({"lint", "--format", "github", bad.string()});
  CHECK(e.rc == 1);
  CHECK(e.out.rfind("::error file=", 0) == 0);
  CHECK(e.out.find(",title=syntax::unknown statement 'parm'") != std::string::npos);
  CHECK(e.out.find("%0Ahelp: did you mean 'param'?") != std::string::npos);
}

TEST_CASE("lint: gray.json turns rules off, changes severities, sets options") {
  fs::path dir = project("config");
  fs::path p = write(dir / "jump.gray", kJump);
  write(dir / "gray.json", R"({"lint": {"rules": {"ramp-max-jump": "off"}}})");
  CHECK(gray_cli({"lint", p.string()}).rc == 0);
  write(dir / "gray.json", R"({"lint": {"rules": {"ramp-max-jump": {"max": "90%"}}}})");
  CHECK(gray_cli({"lint", p.string()}).rc == 0);
  write(dir / "gray.json", R"({"lint": {"rules": {"ramp-max-jump": {"severity": "note"}}}})");
  Run note = gray_cli({"lint", "--color=never", p.string()});
  CHECK(note.rc == 0);  // notes do not fail at the default level
  CHECK(note.err.find("note: ramp jumps") != std::string::npos);
  CHECK(gray_cli({"lint", "--fail-level", "note", p.string()}).rc == 1);
  // Other sections belong to other commands.
  write(dir / "gray.json", R"({"name": "shop", "lint": {"rules": {"ramp-max-jump": {"severity": "error", "max": "95%"}}}})");
  CHECK(gray_cli({"lint", p.string()}).rc == 0);
}

TEST_CASE("lint: a bad gray.json is a usage error that names the problem") {
  fs::path dir = project("bad-config");
  fs::path p = write(dir / "jump.gray", kJump);
  auto with = [&](const std::string& json) {
    write(dir / "gray.json", json);
    return gray_cli({"lint", p.string()});
  };
  Run r = with(R"({"lint": {"rules": {"ramp-max-jmp": "off"}}})");
  CHECK(r.rc == 2);
  CHECK(r.err.find("gray.json: unknown lint rule 'ramp-max-jmp'; did you mean 'ramp-max-jump'?") != std::string::npos);
  r = with(R"({"lint": {"rules": {"ramp-max-jump": {"maximum": "30%"}}}})");
  CHECK(r.rc == 2);
  CHECK(r.err.find("rule 'ramp-max-jump' has no option 'maximum'") != std::string::npos);
  r = with(R"({"lint": {"rules": {"ramp-max-jump": {"max": "30s"}}}})");
  CHECK(r.rc == 2);
  CHECK(r.err.find("option 'max' of 'ramp-max-jump' takes a percentage such as \"30%\", not \"30s\"") != std::string::npos);
  r = with(R"({"lint": {"rules": {"ramp-max-jump": "loud"}}})");
  CHECK(r.rc == 2);
  CHECK(r.err.find("the severity is \"off\", \"note\", \"warning\" or \"error\", not \"loud\"") != std::string::npos);
  r = with(R"({"lint": {"rulez": {}}})");
  CHECK(r.rc == 2);
  CHECK(r.err.find("unknown key 'rulez'") != std::string::npos);
  r = with("{ not json");
  CHECK(r.rc == 2);
  CHECK(r.err.find("gray.json: not valid JSON") != std::string::npos);
  // --config names the file instead.
  fs::path other = write(dir / "strict.json", R"({"lint": {"rules": {"ramp-max-jump": "error"}}})");
  write(dir / "gray.json", "{}");
  Run strict = gray_cli({"lint", "--color=never", "--config", other.string(), p.string()});
  CHECK(strict.rc == 1);
  CHECK(strict.err.find("error: ramp jumps") != std::string::npos);
  CHECK(gray_cli({"lint", "--config", (dir / "missing.json").string(), p.string()}).rc == 2);
}

TEST_CASE("lint: --list-rules lists every rule") {
  Run r = gray_cli({"lint", "--list-rules"});
  CHECK(r.rc == 0);
  for (const gray::lint::Rule* rule : gray::lint::rules()) CHECK(r.out.find(std::string(rule->info.id) + " ") != std::string::npos);
  CHECK(gray::lint::rules().size() >= 21);
}

TEST_CASE("fmt: --check lists what would change, --diff shows how, and neither writes") {
  fs::path dir = project("fmt-check");
  const std::string messy = "pipeline   \"x\"{\n    param version\n}\n";
  fs::path a = write(dir / "a.gray", messy);
  fs::path b = write(dir / "b.gray", "pipeline \"y\" {\n  param version\n}\n");
  Run check = gray_cli({"fmt", "--check", dir.string()});
  CHECK(check.rc == 1);
  CHECK(check.out == a.string() + "\n");
  CHECK(slurp(a) == messy);
  Run diff = gray_cli({"fmt", "--diff", a.string()});
  CHECK(diff.rc == 1);
  // An absolute path has no a/ b/ prefixes (a relative one does, as in git).
  CHECK(diff.out == "--- " + a.string() + "\n+++ " + a.string() +
                        "\n@@ -1,3 +1,3 @@\n-pipeline   \"x\"{\n-    param version\n+pipeline \"x\" {\n+  param version\n }\n");
  CHECK(slurp(a) == messy);
  Run clean = gray_cli({"fmt", "--check", b.string()});
  CHECK(clean.rc == 0);
  CHECK(clean.out.empty());
}

TEST_CASE("fmt: rewrites files in place, and leaves files with syntax errors alone") {
  fs::path dir = project("fmt-write");
  fs::path a = write(dir / "a.gray", "pipeline \"x\" {\n    param version   # kept\n}\n");
  Run r = gray_cli({"fmt", a.string()});
  CHECK(r.rc == 0);
  CHECK(r.out.empty());
  CHECK(slurp(a) == "pipeline \"x\" {\n  param version  # kept\n}\n");
  CHECK(gray_cli({"fmt", "--check", a.string()}).rc == 0);

  const std::string broken = "pipeline \"x\" {\n  parm version\n}\n";
  fs::path b = write(dir / "b.gray", broken);
  Run e = gray_cli({"fmt", "--color=never", b.string()});
  CHECK(e.rc == 1);
  CHECK(e.err.find("b.gray:2:3: error: unknown statement 'parm'") != std::string::npos);
  CHECK(slurp(b) == broken);

  CHECK(gray_cli({"fmt", (dir / "missing.gray").string()}).rc == 2);
  CHECK(gray_cli({"fmt"}).rc == 2);
}
