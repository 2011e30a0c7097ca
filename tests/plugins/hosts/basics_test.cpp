// The pieces under both hosts drivers: shell quoting (checked by a real /bin/sh), SHA-256,
// inventories, child processes, and the wrapper's report.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <thread>

#include "plugins/driver.h"
#include "plugins/hosts/inventory.h"
#include "plugins/hosts/quote.h"
#include "plugins/sha256.h"
#include "plugins/hosts/subprocess.h"
#include "plugins/hosts/wrapper.h"
#include "tests/plugins/hosts/hosts_support.h"

using namespace gray;
using namespace gray::plugins;
using namespace gray::testing;
using namespace gray::testing::hosts;

TEST_CASE("shell_quote: every nasty value comes back byte for byte from a real sh", "[hosts][quote]") {
  TempDir tmp;
  const std::string canary = tmp.file("injected");
  const std::vector<std::string> values = {
      "",
      "plain",
      "two words",
      "$(touch " + canary + ")",
      "`touch " + canary + "`",
      "'; touch " + canary + "; echo '",
      "it's",
      "''''",
      "\"double\" quotes",
      "back\\slash\\n",
      "line one\nline two\n",
      "$HOME ${HOME} $1 $@ $$ !",
      "*?[a-z] ~root",
      "tab\there",
      "-n",
      "a;b|c&d>e<f(g)h{i}",
      std::string("\x01\x7f\xc3\xa9\xff", 5),
  };
  for (const std::string& v : values) {
    // printf %s, not echo: dash's echo would interpret the backslashes itself.
    proc::Outcome o = proc::run({"/bin/sh", "-c", "printf %s " + shell_quote(v)}, 5000);
    REQUIRE(o.started);
    CHECK(o.exit_code == 0);
    CHECK(o.out == v);
  }
  // Inside a longer command too, next to other words.
  proc::Outcome o = proc::run({"/bin/sh", "-c", "printf '<%s>' " + shell_quote("a b") + " " + shell_quote("") + " x"}, 5000);
  CHECK(o.out == "<a b><><x>");
  CHECK_FALSE(std::filesystem::exists(canary));
  CHECK(shell_quote("") == "''");
  CHECK(shell_quote("it's") == "'it'\\''s'");
}

TEST_CASE("sha256 matches the FIPS 180-4 test vectors", "[hosts][sha256]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Lengths around the padding boundary (55, 56, 63, 64 bytes) against sha256sum.
  for (size_t n : {55u, 56u, 63u, 64u, 65u, 119u, 120u}) {
    std::string data(n, 'x');
    std::string expected = run_shell("printf '%s' " + std::string(n, 'x') + " | sha256sum").substr(0, 64);
    CHECK(sha256_hex(data) == expected);
  }
}

TEST_CASE("inventories: the pipelines' files read, bad ones named clearly", "[hosts][inventory]") {
  auto hosts = plugins::hosts::read_inventory("fleet", std::string(GRAY_SOURCE_DIR) + "/pipelines/inventory/orders.json");
  REQUIRE(hosts.size() == 10);
  CHECK(hosts[0].name == "gray-1");
  CHECK(hosts[0].addr == "10.0.3.31");
  CHECK(hosts[0].port == 8080);
  CHECK(hosts[0].tags == std::vector<std::string>{"gray", "gray-first"});

  auto extra = plugins::hosts::parse_inventory(
      "fleet", "inline", R"({"hosts":[{"name":"a","ssh_port":2222,"zone":"b","tags":["x"]},{"name":"b","addr":"10.0.0.2"}]})");
  CHECK(extra[0].addr == "a");  // no addr: the name
  CHECK(extra[0].vars.at("ssh_port") == "2222");
  CHECK(extra[0].vars.at("zone") == "b");

  Call all;
  all.op = "all";
  Result r = plugins::hosts::catalog_op(extra, all);
  REQUIRE(r.ok());
  REQUIRE(r.value.kind == Value::Kind::Hosts);
  REQUIRE(r.value.items().size() == 2);
  CHECK(r.value.items()[0].kind == Value::Kind::Host);
  CHECK(r.value.items()[0].fields().at("zone").text() == "b");
  Call tagged;
  tagged.op = "tagged";
  tagged.args["tag"] = Value::string("x");
  CHECK(plugins::hosts::catalog_op(extra, tagged).value.items().size() == 1);
  Call count;
  count.op = "count";
  CHECK(plugins::hosts::catalog_op(extra, count).value.num == 2);
  Call named;
  named.op = "named";
  named.args["name"] = Value::string("b");
  CHECK(plugins::hosts::catalog_op(extra, named).value.items().at(0).str == "b");

  auto fails_with = [](const std::string& text, const std::string& what) {
    try {
      plugins::hosts::parse_inventory("fleet", "inv.json", text);
      FAIL("accepted: " << text);
    } catch (const DriverError& e) {
      CHECK_THAT(e.what(), Catch::Contains(what));
      CHECK_THAT(e.what(), Catch::Contains("fleet: inventory inv.json"));
    }
  };
  fails_with("{", "not valid JSON");
  fails_with("[]", "expected {\"hosts\": [...]}");
  fails_with(R"({"hosts":[{"addr":"x"}]})", "hosts[0] needs a \"name\"");
  fails_with(R"({"hosts":[{"name":"a"},{"name":"a"}]})", "listed twice");
  fails_with(R"({"hosts":[{"name":"a","port":"80"}]})", "hosts[0].port must be a whole number");
  fails_with(R"({"hosts":[{"name":"a","tags":[1]}]})", "tags must hold only strings");
  CHECK_THROWS_WITH(plugins::hosts::read_inventory("fleet", "/nonexistent/inv.json"),
                    Catch::Contains("fleet: inventory /nonexistent/inv.json: cannot read it: No such file"));
}

TEST_CASE("run: output, exit codes, missing programs", "[hosts][process]") {
  proc::Outcome o = proc::run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 5000);
  CHECK(o.started);
  CHECK(o.out == "out\n");
  CHECK(o.err == "err\n");
  CHECK(o.exit_code == 3);
  CHECK_FALSE(o.timed_out);

  proc::Outcome missing = proc::run({"no-such-program-gray"}, 1000);
  CHECK_FALSE(missing.started);
  CHECK(missing.start_error == "cannot run no-such-program-gray: not found in PATH");

  proc::Outcome big = proc::run({"/bin/sh", "-c", "head -c 300000 /dev/zero"}, 5000, 1000);
  CHECK(big.out.size() == 1000);
  CHECK(big.truncated);
}

TEST_CASE("run: a child that leaves something holding the pipe does not block", "[hosts][process]") {
  TempDir tmp;
  const std::string pidfile = tmp.file("daemon.pid");
  auto t0 = std::chrono::steady_clock::now();
  // The background sleep inherits stdout and keeps it open for 30 s after sh exits.
  proc::Outcome o = proc::run({"/bin/sh", "-c", "sleep 31 & echo $! > " + pidfile + "; echo started"}, 10000);
  double took = ms_since(t0);
  CHECK(o.out == "started\n");
  CHECK(o.exit_code == 0);
  CHECK(took < 2000);
  ::kill(std::stoi(read_file(pidfile)), SIGKILL);  // the stray sleep this test started
}

TEST_CASE("run: the timeout ends the whole process group", "[hosts][process]") {
  TempDir tmp;
  const std::string pidfile = tmp.file("grandchild.pid");
  auto t0 = std::chrono::steady_clock::now();
  proc::Outcome o = proc::run({"/bin/sh", "-c", "sleep 32 & echo $! > " + pidfile + "; wait"}, 500);
  double took = ms_since(t0);
  CHECK(o.timed_out);
  CHECK(took < 1500);
  pid_t grandchild = std::stoi(read_file(pidfile));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(alive(grandchild));  // gone with its group
}

TEST_CASE("parse_report reads the wrapper's header and output", "[hosts][wrapper]") {
  using plugins::hosts::parse_report;
  using Kind = plugins::hosts::Report::Kind;
  auto r = parse_report("motd noise\ngray-result n1 done 3 4 2\nout\ner", "n1");
  CHECK(r.kind == Kind::Done);
  CHECK(r.exit_code == 3);
  CHECK(r.out == "out\n");
  CHECK(r.err == "er");
  CHECK(parse_report("gray-result n1 replayed 0 0 0\n", "n1").kind == Kind::Replayed);
  CHECK(parse_report("gray-result n1 done 0 10 0\nshort", "n1").kind == Kind::Short);
  CHECK(parse_report("gray-result other done 0 0 0\n", "n1").kind == Kind::Missing);
  CHECK(parse_report("x gray-result n1 done 0 0 0\n", "n1").kind == Kind::Missing);  // not at a line start
  auto s = parse_report("gray-result n1 setup cannot create the state directory /x\n", "n1");
  CHECK(s.kind == Kind::Setup);
  CHECK(s.message == "cannot create the state directory /x");
  CHECK(parse_report("gray-result n1 timeout\n", "n1").kind == Kind::Timeout);
}
