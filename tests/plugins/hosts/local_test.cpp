// The local hosts driver, running real commands through /bin/sh on this machine.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "plugins/hosts/local.h"
#include "tests/plugins/hosts/hosts_support.h"

using namespace gray;
using namespace gray::plugins;
using namespace gray::testing;
using namespace gray::testing::hosts;
using Status = Result::Status;

namespace {

std::unique_ptr<Driver> local_driver(const TempDir& tmp, Map extra = {}) {
  extra["state_dir"] = Value::string(tmp.file("state"));
  return make_local("box", Value::of_map(std::move(extra)), DriverEnv::process(tmp.path));
}

size_t lines_in(const std::string& path) {
  std::string text = read_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("local: stdout, stderr and the exit code come back apart", "[hosts][local]") {
  TempDir tmp;
  auto d = local_driver(tmp);
  Result ok = d->call(run_call("localhost", "echo hello; echo warn >&2; printf 'no newline'"));
  REQUIRE(ok.status == Status::Ok);
  CHECK(field(ok, "stdout") == "hello\nno newline");
  CHECK(field(ok, "stderr") == "warn\n");
  CHECK(ok.value.fields().at("exit_code").num == 0);
  CHECK_FALSE(ok.replayed);
  CHECK(ok.elapsed_ms > 0);

  Result failed = d->call(run_call("localhost", "echo partial; echo 'disk full' >&2; echo more >&2; exit 3"));
  CHECK(failed.status == Status::Failed);
  CHECK(failed.message == "box on localhost (local): exit code 3: disk full");
  CHECK(failed.value.fields().at("exit_code").num == 3);
  CHECK(field(failed, "stdout") == "partial\n");

  // A command reading stdin gets end-of-file at once, never gray's own input.
  Result reads = d->call(run_call("localhost", "cat; echo done"));
  CHECK(field(reads, "stdout") == "done\n");

  // Binary output and large output survive.
  Result bin = d->call(run_call("localhost", "printf '\\000\\001\\377'; head -c 200000 /dev/zero | tr '\\0' x"));
  REQUIRE(bin.ok());
  CHECK(field(bin, "stdout").size() == 200003);
  CHECK(field(bin, "stdout").substr(0, 3) == std::string("\0\1\377", 3));
  // Unkeyed runs leave nothing behind in the state directory.
  CHECK(std::filesystem::is_empty(tmp.file("state")));
}

TEST_CASE("local: a timeout ends the command and everything it started", "[hosts][local]") {
  TempDir tmp;
  auto d = local_driver(tmp);
  const std::string pidfile = tmp.file("child.pid");
  auto t0 = std::chrono::steady_clock::now();
  Result r = d->call(run_call("localhost", "sleep 34 & echo $! > " + pidfile + "; sleep 35", "", 700));
  double took = ms_since(t0);
  CHECK(r.status == Status::Error);
  CHECK(r.message == "box on localhost (local): timed out after 700ms");
  CHECK(took < 2000);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(alive(std::stoi(read_file(pidfile))));

  // The same key after a timeout runs again: the command never finished, so no marker exists.
  Result again = d->call(run_call("localhost", "echo second", "k-timeout", 5000));
  CHECK(again.ok());
  CHECK_FALSE(again.replayed);
}

TEST_CASE("local: a daemon the command starts does not hold the call open", "[hosts][local]") {
  TempDir tmp;
  auto d = local_driver(tmp);
  const std::string pidfile = tmp.file("daemon.pid");
  auto t0 = std::chrono::steady_clock::now();
  Result r = d->call(run_call("localhost", "sleep 36 & echo $! > " + pidfile + "; echo started"));
  CHECK(ms_since(t0) < 2000);
  CHECK(field(r, "stdout") == "started\n");
  pid_t daemon = std::stoi(read_file(pidfile));
  CHECK(alive(daemon));  // left running: starting daemons is what deploy commands do
  ::kill(daemon, SIGKILL);
}

TEST_CASE("local: the same key never runs a command twice, across driver instances", "[hosts][local][idempotency]") {
  TempDir tmp;
  const std::string counter = tmp.file("runs");
  const std::string cmd = "echo run >> " + counter + "; echo out-$(wc -l < " + counter + ")";
  {
    auto d = local_driver(tmp);
    Result first = d->call(run_call("localhost", cmd, "run-1/step-4"));
    REQUIRE(first.ok());
    CHECK_FALSE(first.replayed);
    CHECK(field(first, "stdout") == "out-1\n");
    Result second = d->call(run_call("localhost", cmd, "run-1/step-4"));
    REQUIRE(second.ok());
    CHECK(second.replayed);
    CHECK(field(second, "stdout") == "out-1\n");  // the first run's output, replayed
    CHECK(lines_in(counter) == 1);
  }
  // A new driver (gray restarted after a crash) finds the marker.
  auto d = local_driver(tmp);
  Result after_restart = d->call(run_call("localhost", cmd, "run-1/step-4"));
  CHECK(after_restart.replayed);
  CHECK(lines_in(counter) == 1);
  // Another key, or the same key on another host, runs again.
  CHECK_FALSE(d->call(run_call("localhost", cmd, "run-1/step-5")).replayed);
  CHECK(lines_in(counter) == 2);
  CHECK(d->call(run_call("", cmd, "run-1/step-4")).ok());
  CHECK(lines_in(counter) == 3);
  // No key: always runs.
  d->call(run_call("localhost", cmd));
  d->call(run_call("localhost", cmd));
  CHECK(lines_in(counter) == 5);
}

TEST_CASE("local: a command that failed under a key fails again without running", "[hosts][local][idempotency]") {
  TempDir tmp;
  auto d = local_driver(tmp);
  const std::string counter = tmp.file("runs");
  const std::string cmd = "echo run >> " + counter + "; echo broken >&2; exit 4";
  Result first = d->call(run_call("localhost", cmd, "k"));
  CHECK(first.status == Status::Failed);
  CHECK_FALSE(first.replayed);
  Result second = d->call(run_call("localhost", cmd, "k"));
  CHECK(second.status == Status::Failed);
  CHECK(second.replayed);
  CHECK(second.value.fields().at("exit_code").num == 4);
  CHECK_THAT(second.message, Catch::Contains("exit code 4: broken") && Catch::Contains("not run again"));
  CHECK(lines_in(counter) == 1);
}

TEST_CASE("local: inventory, hosts operations and per-host environment", "[hosts][local]") {
  TempDir tmp;
  write_file(tmp.file("inv.json"), R"({"hosts":[
      {"name":"app-1","addr":"127.0.0.1","port":8081,"tags":["stable"]},
      {"name":"app-2","addr":"127.0.0.1","port":8082,"tags":["canary"],"role":"web"}]})");
  // A relative inventory path is read from the pipeline's directory (the env's base_dir).
  auto d = local_driver(tmp, {{"inventory", Value::string("inv.json")}});
  auto* hd = dynamic_cast<HostsDriver*>(d.get());
  REQUIRE(hd);
  REQUIRE(hd->inventory().size() == 2);
  CHECK(hd->inventory()[1].vars.at("role") == "web");
  Call tagged;
  tagged.op = "tagged";
  tagged.args["tag"] = Value::string("canary");
  Result canary = d->call(tagged);
  REQUIRE(canary.ok());
  REQUIRE(canary.value.items().size() == 1);
  CHECK(canary.value.items()[0].str == "app-2");

  Result env = d->call(run_call("app-2", "echo $GRAY_HOST $GRAY_HOST_ADDR $GRAY_HOST_PORT"));
  CHECK(field(env, "stdout") == "app-2 127.0.0.1 8082\n");
  Result unknown = d->call(run_call("app-9", "true"));
  CHECK(unknown.status == Status::Error);
  CHECK(unknown.message == "box on app-9 (local): unknown host \"app-9\" (not in the inventory)");

  // Without an inventory there is one host, localhost.
  auto plain = local_driver(tmp);
  Call all;
  all.op = "all";
  Result hosts = plain->call(all);
  REQUIRE(hosts.value.items().size() == 1);
  CHECK(hosts.value.items()[0].str == "localhost");
}

TEST_CASE("local: shell, state directory and bad arguments", "[hosts][local]") {
  TempDir tmp;
  auto bash = local_driver(tmp, {{"shell", Value::string("bash")}});
  Result r = bash->call(run_call("localhost", "echo ${BASH_VERSION:+bash}"));
  CHECK(field(r, "stdout") == "bash\n");
  CHECK_THROWS_WITH(local_driver(tmp, {{"shell", Value::string("/no/such/shell")}}),
                    "box: field 'shell': /no/such/shell is not an executable program");
  CHECK_THROWS_WITH(local_driver(tmp, {{"inventory", Value::string("missing.json")}}),
                    Catch::Contains("box: inventory " + tmp.file("missing.json") + ": cannot read it"));

  // A state directory that cannot be created: the command does not run, and the message says why.
  write_file(tmp.file("plain-file"), "x");
  auto d = make_local("box", Value::of_map({{"state_dir", Value::string(tmp.file("plain-file") + "/state")}}), DriverEnv::process("."));
  Result blocked = d->call(run_call("localhost", "echo ran > " + tmp.file("ran"), "k"));
  CHECK(blocked.status == Status::Error);
  CHECK_THAT(blocked.message, Catch::Contains("cannot create the state directory " + tmp.file("plain-file") + "/state"));
  CHECK_FALSE(std::filesystem::exists(tmp.file("ran")));

  auto ok = local_driver(tmp);
  Call no_command;
  no_command.op = "run";
  no_command.args["host"] = Value::string("localhost");
  CHECK(ok->call(no_command).message == "box on localhost (local): run needs a command");
  Call number = run_call("localhost", "x");
  number.args["command"] = Value::number(3);
  CHECK(ok->call(number).message == "box on localhost (local): run needs the command as a string, not a number");
  Call other;
  other.op = "reboot";
  CHECK(ok->call(other).status == Status::Error);
}

TEST_CASE("local: a command holding a secret keeps its output out of messages", "[hosts][local]") {
  TempDir tmp;
  auto d = local_driver(tmp);
  Call c = run_call("localhost", "echo token-s3cret >&2; exit 1");
  c.args["command"] = Value::string("echo token-s3cret >&2; exit 1", true);
  Result r = d->call(c);
  CHECK(r.status == Status::Failed);
  CHECK(r.message.find("s3cret") == std::string::npos);
  CHECK(r.value.fields().at("stderr").secret());
}
