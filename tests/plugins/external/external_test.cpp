// External plugins over the JSON-lines protocol (docs/plugin-protocol.md): the handshake, calls,
// undo_for, and plugins that crash, write garbage, hang or speak another version; the example
// file gateway (plugins/external/examples/file_gateway.py) with its state read back from disk.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "plugins/external/external.h"
#include "tests/support/process.h"

using namespace gray;
using namespace gray::plugins;
using namespace gray::testing;
using Status = Result::Status;
using json = nlohmann::json;

namespace {

const std::string kFake = std::string(GRAY_SOURCE_DIR) + "/tests/plugins/external/fake_plugin.py";
const std::string kGateway = std::string(GRAY_SOURCE_DIR) + "/plugins/external/examples/file_gateway.py";

// The system python starts in ~30 ms; a python3 found through a version manager's shims may
// take ten times as long, which only slows the tests down.
std::string python() {
  static const std::string p = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : find_program("python3");
  if (p.empty()) throw std::runtime_error("python3 is not installed");
  return p;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct TempDir {
  std::string path = make_temp_dir("gray-external-test");
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// Notes the driver writes, collected.
struct Notes {
  std::mutex mu;
  std::vector<std::string> lines;
  std::string all() {
    std::lock_guard<std::mutex> lock(mu);
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

DriverEnv env_with(Notes& notes, const std::string& base_dir = ".") {
  DriverEnv env = DriverEnv::process(base_dir);
  env.note = [&notes](const std::string& line) {
    std::lock_guard<std::mutex> lock(notes.mu);
    notes.lines.push_back(line);
  };
  return env;
}

Value fake_config(const std::vector<std::string>& flags, Map config = {}) {
  List cmd{Value::string(python()), Value::string(kFake)};
  for (const std::string& f : flags) cmd.push_back(Value::string(f));
  Map m{{"command", Value::of_list(std::move(cmd))}};
  if (!config.empty()) m["config"] = Value::of_map(std::move(config));
  return Value::of_map(std::move(m));
}

std::unique_ptr<Driver> fake(Notes& notes, const std::vector<std::string>& flags, Map config = {}, Kind kind = Kind::Gateway) {
  return make_external(kind, "ext", fake_config(flags, std::move(config)), env_with(notes));
}

Call call(const std::string& op, Map args = {}, const std::string& key = "", double timeout_ms = 5000) {
  Call c;
  c.op = op;
  c.args = std::move(args);
  c.key = key;
  c.timeout_ms = timeout_ms;
  return c;
}

const Value& at(const Value& v, const std::string& name) { return v.fields().at(name); }

std::vector<pid_t> pids_in(const std::string& path) {
  std::vector<pid_t> out;
  std::stringstream ss(read_file(path));
  int p;
  while (ss >> p) out.push_back(p);
  return out;
}

bool alive(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

}  // namespace

TEST_CASE("external: the handshake passes kind, instance and config, secrets marked", "[external]") {
  Notes notes;
  auto d = fake(notes, {}, {{"token", Value::string("tok-s3cret", true)}, {"url", Value::string("http://x")}, {"n", Value::number(3)}});
  REQUIRE(d->kind() == Kind::Gateway);
  Result r = d->call(call("config"));
  REQUIRE(r.ok());
  CHECK(at(r.value, "instance").str == "ext");
  CHECK(at(r.value, "kind").str == "gateway");
  CHECK(at(r.value, "protocol").num == 1);
  CHECK(at(at(r.value, "config"), "token").str == "tok-s3cret");  // the plugin needs it, so it gets it
  CHECK(at(at(r.value, "config"), "n").num == 3);
  REQUIRE(at(r.value, "secrets").items().size() == 1);
  CHECK(at(r.value, "secrets").items()[0].str == "/config/token");
  // The plugin printed the token on stderr: the note has it scrubbed.
  const std::string said = notes.all();
  CHECK_THAT(said, Catch::Contains("plugin ext: fake: started as ext with token <secret>"));
  CHECK(said.find("s3cret") == std::string::npos);
}

TEST_CASE("external: calls carry typed arguments, key and timeout; statuses map", "[external]") {
  Notes notes;
  auto d = fake(notes, {});
  Value host = Value::named(Value::Kind::Host, "app-4");
  Result r = d->call(call("echo",
                          {{"canary", Value::percent(5)},
                           {"hold", Value::duration_ms(30000)},
                           {"server", host},
                           {"tags", Value::of_list({Value::string("a"), Value::string("b")})},
                           {"meta", Value::of_map({{"version", Value::string("2.4.1")}})},
                           {"password", Value::string("pw-s3cret", true)}},
                          "run-1/ramp/2", 1234));
  REQUIRE(r.ok());
  const Value& args = at(r.value, "args");
  CHECK(at(args, "canary").num == 5);  // percent as written
  CHECK(at(args, "hold").num == 30000);  // durations in milliseconds
  CHECK(at(args, "server").str == "app-4");
  CHECK(at(args, "tags").items().size() == 2);
  CHECK(at(at(args, "meta"), "version").str == "2.4.1");
  CHECK(at(r.value, "key").str == "run-1/ramp/2");
  CHECK(at(r.value, "timeout_ms").num == 1234);
  REQUIRE(at(r.value, "secrets").items().size() == 1);
  CHECK(at(r.value, "secrets").items()[0].str == "/args/password");

  Result weight = d->call(call("weight", {{"canary", Value::percent(20)}}, "k"));
  REQUIRE(weight.ok());
  REQUIRE(weight.undo);
  CHECK(weight.undo->op == "weight");
  CHECK(weight.undo->args.at("canary") == Value::percent(0));  // typed by the catalog
  CHECK(weight.elapsed_ms > 0);

  Result failed = d->call(call("fail"));
  CHECK(failed.status == Status::Failed);
  CHECK(failed.message == "plugin ext (python3 fake_plugin.py): fail: refused by the fake");
  CHECK(d->call(call("nothing")).status == Status::NoData);

  Result unsupported = d->call(call("drain", {{"server", Value::string("x")}}));
  CHECK(unsupported.status == Status::Error);
  CHECK_THAT(unsupported.message, Catch::Contains("does not support \"drain\" (it supports: echo, config, weight, fail, nothing)"));
}

TEST_CASE("external: undo_for asks the plugin; none when it does not answer undo_for", "[external]") {
  Notes notes;
  auto d = fake(notes, {});
  std::optional<Call> undo = d->undo_for(call("weight", {{"canary", Value::percent(20)}}, "k"));
  REQUIRE(undo);
  CHECK(undo->op == "weight");
  CHECK(undo->args.at("canary") == Value::percent(42));
  auto without = fake(notes, {"--no-undo-for"});
  CHECK_FALSE(without->undo_for(call("weight", {{"canary", Value::percent(20)}})));
}

TEST_CASE("external: a plugin that crashes mid-call gives Error and is started again", "[external][faults]") {
  Notes notes;
  TempDir tmp;
  auto d = fake(notes, {"--ops", "echo,weight,boom", "--crash-on", "boom", "--pid-file", tmp.file("pids")});
  Result r = d->call(call("boom"));
  CHECK(r.status == Status::Error);
  CHECK(r.message ==
        "plugin ext (python3 fake_plugin.py): exited with code 3 during boom (its last words: fake: about to crash); it starts again "
        "on the next call");
  Result after = d->call(call("weight", {{"canary", Value::percent(5)}}));
  CHECK(after.ok());
  CHECK(pids_in(tmp.file("pids")).size() == 2);
}

TEST_CASE("external: a plugin that writes garbage gives Error and is started again", "[external][faults]") {
  Notes notes;
  TempDir tmp;
  auto d = fake(notes, {"--ops", "echo,junk,skew,odd", "--garbage-on", "junk", "--wrong-id-on", "skew", "--bad-status-on", "odd",
                        "--pid-file", tmp.file("pids")},
                {{"token", Value::string("tok-s3cret", true)}});
  Result junk = d->call(call("junk"));
  CHECK(junk.status == Status::Error);
  CHECK_THAT(junk.message, Catch::Contains("wrote something that is not a protocol message while answering junk: "
                                           "'Traceback (most recent call last): token=<secret>'"));
  CHECK(d->call(call("echo")).ok());
  Result skew = d->call(call("skew"));
  CHECK(skew.status == Status::Error);
  CHECK_THAT(skew.message, Catch::Contains("answered request id") && Catch::Contains("was waiting"));
  Result odd = d->call(call("odd"));
  CHECK(odd.status == Status::Error);
  CHECK_THAT(odd.message, Catch::Contains("a malformed answer to odd: unknown status \"maybe\""));
  CHECK(d->call(call("echo")).ok());
  CHECK(pids_in(tmp.file("pids")).size() == 4);  // started again after each of the three
}

TEST_CASE("external: a plugin that hangs past the timeout gives Error and is replaced", "[external][faults]") {
  Notes notes;
  TempDir tmp;
  auto d = fake(notes, {"--ops", "echo,stuck", "--hang-on", "stuck", "--pid-file", tmp.file("pids")});
  auto t0 = std::chrono::steady_clock::now();
  Result r = d->call(call("stuck", {}, "", 1000));
  double took = ms_since(t0);
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::Contains("did not answer stuck within 1s; stopped it (it starts again on the next call)"));
  CHECK(took >= 1000);
  CHECK(took < 3000);
  const pid_t hung = pids_in(tmp.file("pids")).at(0);
  CHECK_FALSE(alive(hung));
  CHECK(d->call(call("echo")).ok());
}

TEST_CASE("external: plugins that cannot start, or speak another protocol, stop the build", "[external][faults]") {
  Notes notes;
  CHECK_THROWS_WITH(fake(notes, {"--protocol", "2"}),
                    Catch::Contains("plugin ext (python3 fake_plugin.py): it speaks protocol version 2; this gray speaks version 1"));
  CHECK_THROWS_WITH(fake(notes, {"--kind", "registry"}), Catch::Contains("it is a registry plugin, not a gateway plugin"));
  // A refusal that quotes a secret has it scrubbed.
  try {
    fake(notes, {"--refuse", "bad token"}, {{"token", Value::string("tok-s3cret", true)}});
    FAIL("a refusing plugin was accepted");
  } catch (const DriverError& e) {
    CHECK_THAT(e.what(), Catch::EndsWith("it refused the configuration: bad token <secret>"));
  }
  CHECK_THROWS_WITH(fake(notes, {"--exit-at-start"}),
                    Catch::EndsWith("exited with code 2 during the handshake (its last words: fake: cannot open my database)"));
  CHECK_THROWS_WITH(make_external(Kind::Gateway, "ext", Value::of_map({{"command", Value::of_list({Value::string("./no-such-plugin")})}}),
                                  env_with(notes, "/tmp")),
                    "ext: field 'command': /tmp/no-such-plugin is not an executable file");
  CHECK_THROWS_WITH(make_external(Kind::Gateway, "ext", Value::of_map({}), env_with(notes)), "ext: field 'command' is required");
  CHECK_THROWS_WITH(make_external(Kind::Gateway, "ext",
                                  Value::of_map({{"command", Value::of_list({Value::string(python())})}, {"config", Value::string("x")}}),
                                  env_with(notes)),
                    "ext: field 'config' must be a map, not a string");
}

TEST_CASE("external: a plugin that never answers the handshake is stopped", "[external][faults]") {
  Notes notes;
  TempDir tmp;
  Map config = fake_config({"--silent-hello", "--pid-file", tmp.file("pids")}).fields();
  config["start_timeout"] = Value::duration_ms(1500);
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(make_external(Kind::Gateway, "ext", Value::of_map(config), env_with(notes)),
                    Catch::EndsWith("did not answer the handshake within 1.5s"));
  CHECK(ms_since(t0) < 3000);
  CHECK_FALSE(alive(pids_in(tmp.file("pids")).at(0)));
}

TEST_CASE("external: a plugin that exits between calls is started again; the driver stops it at the end", "[external][faults]") {
  Notes notes;
  TempDir tmp;
  auto d = fake(notes, {"--ops", "echo,weight", "--die-after-answer-on", "weight", "--pid-file", tmp.file("pids")});
  CHECK(d->call(call("weight", {{"canary", Value::percent(1)}})).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(d->call(call("echo")).ok());
  CHECK_THAT(notes.all(), Catch::Contains("plugin ext (python3 fake_plugin.py): exited with code 0 during idle time") &&
                              Catch::Contains("; starting it again"));
  auto pids = pids_in(tmp.file("pids"));
  REQUIRE(pids.size() == 2);
  CHECK(alive(pids[1]));
  d.reset();
  CHECK_FALSE(alive(pids[1]));
}

TEST_CASE("external: hosts plugins list their inventory and run commands", "[external]") {
  Notes notes;
  auto d = fake(notes, {"--ops", "inventory,run"}, {}, Kind::Hosts);
  auto* hosts = dynamic_cast<HostsDriver*>(d.get());
  REQUIRE(hosts);
  auto inv = hosts->inventory();
  REQUIRE(inv.size() == 2);
  CHECK(inv[1].vars.at("zone") == "b");
  Result tagged = d->call(call("tagged", {{"tag", Value::string("canary")}}));
  REQUIRE(tagged.ok());
  CHECK(tagged.value.items().at(0).str == "ext-1");
  Result ran = d->call(call("run", {{"host", Value::string("ext-1")}, {"command", Value::string("true")}}));
  REQUIRE(ran.ok());
  CHECK(at(ran.value, "stdout").str == "ran true on ext-1");
  CHECK_THROWS_WITH(fake(notes, {"--ops", "run"}, {}, Kind::Hosts),
                    Catch::Contains("a hosts plugin must answer \"inventory\""));
}

// --- the example file gateway ------------------------------------------------------------------

namespace {

std::unique_ptr<Driver> file_gateway(Notes& notes, const TempDir& tmp) {
  std::filesystem::create_directories(tmp.file("plugins"));
  std::filesystem::copy_file(kGateway, tmp.file("plugins/file_gateway.py"), std::filesystem::copy_options::overwrite_existing);
  Value config = Value::of_map(
      {{"command", Value::of_list({Value::string(python()), Value::string("plugins/file_gateway.py")})},
       {"config", Value::of_map({{"state", Value::string("edge-state.json")},
                                 {"stable", Value::of_list({Value::string("app-1"), Value::string("app-2")})},
                                 {"canary", Value::of_list({Value::string("app-3")})}})}});
  // The plugin runs in the pipeline's folder: its relative paths resolve there.
  return make_external(Kind::Gateway, "edge", config, env_with(notes, tmp.path));
}

json state_of(const TempDir& tmp) { return json::parse(read_file(tmp.file("edge-state.json"))); }

}  // namespace

TEST_CASE("file gateway: weights, server states and routes land in its state file", "[external][file_gateway]") {
  Notes notes;
  TempDir tmp;
  auto d = file_gateway(notes, tmp);
  CHECK(state_of(tmp)["canary_weight"] == 0);

  std::optional<Call> planned = d->undo_for(call("weight", {{"canary", Value::percent(5)}}));
  REQUIRE(planned);
  CHECK(planned->args.at("canary") == Value::percent(0));
  Result w = d->call(call("weight", {{"canary", Value::percent(5)}}, "run-1/ramp/1"));
  REQUIRE(w.ok());
  CHECK(state_of(tmp)["canary_weight"] == 5);
  REQUIRE(w.undo);
  CHECK(w.undo->args.at("canary") == Value::percent(0));
  Result share = d->call(call("weight_of", {{"group", Value::string("stable")}}));
  CHECK(share.value == Value::percent(95));

  // The same key again (a resumed run re-entering the step) is not applied twice.
  REQUIRE(d->call(call("weight", {{"canary", Value::percent(20)}}, "run-1/ramp/2")).ok());
  Result again = d->call(call("weight", {{"canary", Value::percent(5)}}, "run-1/ramp/1"));
  CHECK(again.replayed);
  CHECK(state_of(tmp)["canary_weight"] == 20);

  REQUIRE(d->call(call("drain", {{"server", Value::string("app-1")}})).ok());
  CHECK(state_of(tmp)["servers"]["app-1"]["state"] == "drain");
  std::optional<Call> back = d->undo_for(call("maint", {{"server", Value::string("app-1")}}));
  REQUIRE(back);
  CHECK(back->op == "drain");
  REQUIRE(d->call(call("maint", {{"server", Value::string("app-1")}})).ok());
  REQUIRE(d->call(call("ready", {{"server", Value::string("app-1")}})).ok());
  CHECK(state_of(tmp)["servers"]["app-1"]["state"] == "ready");
  Result unknown = d->call(call("drain", {{"server", Value::string("app-9")}}));
  CHECK(unknown.status == Status::Failed);
  CHECK_THAT(unknown.message, Catch::Contains("drain: no such server app-9"));

  Result routed = d->call(call("route", {{"match", Value::string("header")},
                                         {"name", Value::string("X-Canary")},
                                         {"op", Value::string("==")},
                                         {"value", Value::string("1")},
                                         {"target", Value::string("canary")}}));
  REQUIRE(routed.ok());
  CHECK(routed.undo->op == "unroute");
  REQUIRE(state_of(tmp)["routes"].size() == 1);
  CHECK(state_of(tmp)["routes"][0]["name"] == "X-Canary");
  Result cleared = d->call(call("clear_routes"));
  REQUIRE(cleared.ok());
  CHECK(state_of(tmp)["routes"].empty());
  // Its undo puts the routes back.
  REQUIRE(cleared.undo);
  REQUIRE(d->call(*cleared.undo).ok());
  CHECK(state_of(tmp)["routes"].size() == 1);

  CHECK(d->call(call("weight", {{"canary", Value::percent(150)}})).status == Status::Failed);
  CHECK_THAT(notes.all(), Catch::Contains("plugin edge: weight: canary 20% (was 5%)"));
}

TEST_CASE("file gateway: call round-trip time", "[external][file_gateway][timing]") {
  Notes notes;
  TempDir tmp;
  auto t0 = std::chrono::steady_clock::now();
  auto d = file_gateway(notes, tmp);
  const double start_ms = ms_since(t0);
  constexpr int kReads = 200, kWrites = 50;
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kReads; ++i) REQUIRE(d->call(call("weight_of", {{"group", Value::string("canary")}})).ok());
  const double read_ms = ms_since(t0) / kReads;
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kWrites; ++i) REQUIRE(d->call(call("weight", {{"canary", Value::percent(i % 100)}}, "k" + std::to_string(i))).ok());
  const double write_ms = ms_since(t0) / kWrites;
  std::cout << "external plugin: start and handshake " << start_ms << " ms; weight_of round trip " << read_ms
            << " ms; weight (file written and fsynced) " << write_ms << " ms\n";
  CHECK(read_ms < 20);
}
