// The ssh hosts driver against a real sshd on 127.0.0.1 (tests/plugins/hosts/hosts_support.h).
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <regex>
#include <set>
#include <thread>

#include "plugins/hosts/quote.h"
#include "plugins/hosts/ssh.h"
#include "plugins/hosts/wrapper.h"
#include "tests/plugins/hosts/hosts_support.h"

using namespace gray;
using namespace gray::plugins;
using namespace gray::testing;
using namespace gray::testing::hosts;
using Status = Result::Status;

namespace {

// An inventory with two names for the test sshd (two instances on one machine) and one whose
// ssh port has nothing listening.
std::string write_inventory(const TempDir& tmp, int sshd_port) {
  const std::string path = tmp.file("inventory.json");
  write_file(path, R"({"hosts":[
      {"name":"box","addr":"127.0.0.1","port":8080,"tags":["canary"],"ssh_port":)" + std::to_string(sshd_port) + R"(},
      {"name":"box-2","addr":"127.0.0.1","port":8081,"tags":["stable"],"ssh_port":)" + std::to_string(sshd_port) + R"(},
      {"name":"dead","addr":"127.0.0.1","port":8082,"tags":["stable"],"ssh_port":)" + std::to_string(free_port()) + R"(}]})");
  return path;
}

Map ssh_config(const TempDir& tmp, Map extra = {}) {
  SshdFixture& sshd = SshdFixture::get();
  Map m{{"inventory", Value::string(write_inventory(tmp, sshd.port()))},
        {"user", Value::string(sshd.user())},
        {"key", Value::string(sshd.client_key())},
        {"known_hosts", Value::string(sshd.known_hosts())},
        {"connect_timeout", Value::duration_ms(3000)},
        {"state_dir", Value::string(tmp.file("state"))}};
  for (auto& [k, v] : extra) m[k] = v;
  return m;
}

std::unique_ptr<Driver> ssh_driver(const TempDir& tmp, Map extra = {}) {
  return make_ssh("fleet", Value::of_map(ssh_config(tmp, std::move(extra))), DriverEnv::process(tmp.path));
}

size_t lines_in(const std::string& path) {
  std::string text = read_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("ssh: stdout, stderr and exit codes; the command's own 255 is Failed, not Error", "[hosts][ssh]") {
  TempDir tmp;
  auto d = ssh_driver(tmp);
  Result ok = d->call(run_call("box", "echo hello; echo warn >&2; echo $GRAY_HOST"));
  INFO(ok.message);
  REQUIRE(ok.status == Status::Ok);
  CHECK(field(ok, "stdout") == "hello\nbox\n");
  CHECK(field(ok, "stderr") == "warn\n");

  Result failed = d->call(run_call("box", "echo 'no space left' >&2; exit 3"));
  CHECK(failed.status == Status::Failed);
  CHECK(failed.message == "fleet on box (" + SshdFixture::get().user() + "@127.0.0.1:" + std::to_string(SshdFixture::get().port()) +
                              "): exit code 3: no space left");
  CHECK(failed.value.fields().at("exit_code").num == 3);

  // 255 is also what ssh exits with when it cannot connect; the wrapper's report tells them apart.
  Result own_255 = d->call(run_call("box", "exit 255"));
  CHECK(own_255.status == Status::Failed);
  CHECK(own_255.value.fields().at("exit_code").num == 255);
}

TEST_CASE("ssh: quoting survives the trip to the remote shell", "[hosts][ssh][quote]") {
  TempDir tmp;
  auto d = ssh_driver(tmp);
  const std::string canary = tmp.file("injected");
  const std::vector<std::string> values = {"", "it's", "$(touch " + canary + ")", "`touch " + canary + "`",
                                           "two\nlines", "back\\slash", "\"; touch " + canary + "; \"", "$HOME *"};
  for (const std::string& v : values) {
    Result r = d->call(run_call("box", "printf %s " + shell_quote(v)));
    REQUIRE(r.ok());
    CHECK(field(r, "stdout") == v);
  }
  // The command string itself, with its own quotes and a multi-line script.
  Result script = d->call(run_call("box", "x='a b'\nfor w in $x; do printf '[%s]' \"$w\"; done"));
  CHECK(field(script, "stdout") == "[a][b]");
  CHECK_FALSE(std::filesystem::exists(canary));
}

TEST_CASE("ssh: the second command reuses the connection", "[hosts][ssh][reuse]") {
  TempDir tmp;
  auto timed = [](Driver& d, int n) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      Result r = d.call(run_call("box", "true"));
      REQUIRE(r.ok());
      ms.push_back(ms_since(t0));
    }
    return ms;
  };
  auto reused = ssh_driver(tmp);
  std::vector<double> with = timed(*reused, 6);
  // The same, with connection reuse turned off through `options` (they take precedence).
  auto fresh = ssh_driver(tmp, {{"options", Value::of_list({Value::string("ControlMaster=no"), Value::string("ControlPath=none")})}});
  std::vector<double> without = timed(*fresh, 5);
  double with_avg = 0, without_avg = 0;
  for (size_t i = 1; i < with.size(); ++i) with_avg += with[i] / static_cast<double>(with.size() - 1);
  for (double v : without) without_avg += v / static_cast<double>(without.size());
  std::cout << "ssh latency: first command " << with[0] << " ms; later commands with reuse " << with_avg
            << " ms on average; without reuse " << without_avg << " ms on average\n";
  CHECK(with_avg < without_avg / 2);
  CHECK(with_avg < with[0]);
}

TEST_CASE("ssh: a timeout ends the remote command", "[hosts][ssh]") {
  TempDir tmp;
  auto d = ssh_driver(tmp);
  const std::string pidfile = tmp.file("remote.pid");
  auto t0 = std::chrono::steady_clock::now();
  Result r = d->call(run_call("box", "echo $$ > " + pidfile + "; exec sleep 37", "k-slow", 2000));
  double took = ms_since(t0);
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::EndsWith("timed out after 2s"));
  CHECK(took < 5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const pid_t remote = std::stoi(read_file(pidfile));
  CHECK_FALSE(alive(remote));  // the sshd test host is this machine: the process is gone
  // It never finished, so its key is free: the next call runs it.
  Result again = d->call(run_call("box", "echo ok", "k-slow", 5000));
  CHECK(again.ok());
  CHECK_FALSE(again.replayed);
}

TEST_CASE("ssh: unreachable hosts, refused keys and unknown host keys are Errors", "[hosts][ssh]") {
  TempDir tmp;
  auto d = ssh_driver(tmp);
  auto t0 = std::chrono::steady_clock::now();
  Result dead = d->call(run_call("dead", "echo never"));
  CHECK(dead.status == Status::Error);
  CHECK_THAT(dead.message, Catch::Contains("fleet on dead (") && Catch::Contains("cannot reach the host: ssh: connect to host 127.0.0.1 port") &&
                               Catch::Contains("Connection refused"));
  CHECK(ms_since(t0) < 3000);

  Result unknown = d->call(run_call("nope", "true"));
  CHECK(unknown.status == Status::Error);
  CHECK(unknown.message == "fleet on nope: unknown host \"nope\" (not in the inventory)");

  // A key the server does not know.
  run_shell("ssh-keygen -q -t ed25519 -N '' -f " + tmp.file("stranger") + " >/dev/null 2>&1");
  auto stranger = ssh_driver(tmp, {{"key", Value::string(tmp.file("stranger"))}});
  Result refused = stranger->call(run_call("box", "true"));
  CHECK(refused.status == Status::Error);
  CHECK_THAT(refused.message, Catch::Contains("cannot reach the host") && Catch::Contains("Permission denied"));

  // A host key that does not match known_hosts.
  run_shell("ssh-keygen -q -t ed25519 -N '' -f " + tmp.file("other_host") + " >/dev/null 2>&1");
  write_file(tmp.file("bad_known_hosts"),
             "[127.0.0.1]:" + std::to_string(SshdFixture::get().port()) + " " + read_file(tmp.file("other_host.pub")));
  auto spoofed = ssh_driver(tmp, {{"known_hosts", Value::string(tmp.file("bad_known_hosts"))}});
  Result mismatch = spoofed->call(run_call("box", "true"));
  CHECK(mismatch.status == Status::Error);
  CHECK_THAT(mismatch.message, Catch::Contains("Host key verification failed"));
}

TEST_CASE("ssh: the idempotency marker on the host keeps a key from running twice", "[hosts][ssh][idempotency]") {
  TempDir tmp;
  const std::string counter = tmp.file("runs");
  const std::string cmd = "echo run >> " + counter + "; echo out-$(wc -l < " + counter + "); echo note >&2";
  {
    auto d = ssh_driver(tmp);
    Result first = d->call(run_call("box", cmd, "run-7/deploy"));
    REQUIRE(first.ok());
    CHECK_FALSE(first.replayed);
    Result second = d->call(run_call("box", cmd, "run-7/deploy"));
    REQUIRE(second.ok());
    CHECK(second.replayed);
    CHECK(field(second, "stdout") == "out-1\n");
    CHECK(field(second, "stderr") == "note\n");
  }
  // The marker sits in the state directory on the host, named by the hash of host and key.
  CHECK(std::filesystem::exists(tmp.file("state") + "/" + plugins::hosts::marker_name("box", "run-7/deploy")));
  auto d = ssh_driver(tmp);
  CHECK(d->call(run_call("box", cmd, "run-7/deploy")).replayed);
  CHECK(lines_in(counter) == 1);
  CHECK_FALSE(d->call(run_call("box", cmd, "run-7/verify")).replayed);
  // Same address, other inventory host: its own marker.
  CHECK_FALSE(d->call(run_call("box-2", cmd, "run-7/deploy")).replayed);
  CHECK(lines_in(counter) == 3);
}

TEST_CASE("ssh: destroying the driver closes its connections", "[hosts][ssh][reuse]") {
  TempDir tmp;
  auto control_dirs = [] {
    std::set<std::string> dirs;
    for (const auto& e : std::filesystem::directory_iterator("/tmp"))
      if (e.path().filename().string().rfind("gray-ssh-", 0) == 0) dirs.insert(e.path().string());
    return dirs;
  };
  std::set<std::string> before = control_dirs();
  auto d = ssh_driver(tmp);
  REQUIRE(d->call(run_call("box", "true")).ok());
  std::string mine;
  for (const std::string& dir : control_dirs())
    if (!before.count(dir)) mine = dir;
  REQUIRE_FALSE(mine.empty());
  std::string socket;
  for (const auto& e : std::filesystem::directory_iterator(mine)) socket = e.path().string();
  REQUIRE_FALSE(socket.empty());
  std::string check = run_shell("ssh -o ControlPath=" + socket + " -O check x 2>&1");
  std::smatch m;
  REQUIRE(std::regex_search(check, m, std::regex("Master running \\(pid=(\\d+)\\)")));
  const pid_t master = std::stoi(m[1]);
  d.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(std::filesystem::exists(mine));
  CHECK_FALSE(alive(master));
}

TEST_CASE("ssh: calls from several threads, a command with no host, bad configuration", "[hosts][ssh]") {
  TempDir tmp;
  auto d = ssh_driver(tmp);
  auto a = std::async(std::launch::async, [&] { return d->call(run_call("box", "sleep 0.3; echo a")); });
  auto b = std::async(std::launch::async, [&] { return d->call(run_call("box-2", "sleep 0.3; echo b")); });
  CHECK(field(a.get(), "stdout") == "a\n");
  CHECK(field(b.get(), "stdout") == "b\n");

  // No host (a probe outside `on`): the command runs where gray runs.
  Result here = d->call(run_call("", "echo here"));
  CHECK(field(here, "stdout") == "here\n");

  auto hd = dynamic_cast<HostsDriver*>(d.get());
  REQUIRE(hd);
  CHECK(hd->inventory().size() == 3);
  Call count;
  count.op = "count";
  count.args["tag"] = Value::string("stable");
  CHECK(d->call(count).value.num == 2);

  CHECK_THROWS_WITH(ssh_driver(tmp, {{"key", Value::string(tmp.file("no-key"))}}), "fleet: field 'key': cannot read " + tmp.file("no-key"));
  const std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
  CHECK_THROWS_WITH(ssh_driver(tmp, {{"key", Value::string("~/no-such-key-gray")}}), "fleet: field 'key': cannot read " + home + "/no-such-key-gray");
  CHECK_THROWS_WITH(ssh_driver(tmp, {{"port", Value::number(70000)}}), "fleet: field 'port' must be a port number from 1 to 65535");
  CHECK_THROWS_WITH(ssh_driver(tmp, {{"options", Value::of_list({Value::string("-oProxyCommand")})}}),
                    Catch::Contains("is not an ssh option"));
  CHECK_THROWS_WITH(make_ssh("fleet", Value::of_map({}), DriverEnv::process(tmp.path)), "fleet: field 'inventory' is required");
}
