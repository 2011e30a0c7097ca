// The simulated world: what a pipeline does to traffic, registries and hosts must show in what
// it measures, reproducibly, and survive a save and load.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "plugins/sim/drivers.h"
#include "plugins/sim/world.h"

using namespace gray;
using namespace gray::sim;
using plugins::Kind;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<World> make_world(const std::string& text) {
  std::string error;
  auto w = World::from_scenario(json::parse(text), error);
  INFO(error);
  REQUIRE(w);
  return w;
}

Call op(std::string name, std::map<std::string, Value> args = {}, std::string key = "") {
  Call c;
  c.op = std::move(name);
  c.args = std::move(args);
  c.key = std::move(key);
  c.timeout_ms = 600000;
  return c;
}

Value str(const std::string& s) { return Value::string(s); }

Value gateway_config(std::vector<std::string> stable, std::vector<std::string> canary) {
  List s, c;
  for (auto& x : stable) s.push_back(str(x));
  for (auto& x : canary) c.push_back(str(x));
  return Value::of_map({{"stable", Value::of_list(s)}, {"canary", Value::of_list(c)}});
}

const char* kGatewayWorld = R"json({
  "noise": 0,
  "version": "1.0",
  "traffic": {"rps": 100, "sessions": {"duration": "1m", "per_request": 1}},
  "hosts": [
    {"name": "a", "addr": "10.0.0.1", "port": 8080, "tags": ["stable"]},
    {"name": "b", "addr": "10.0.0.2", "port": 8080, "tags": ["stable"]},
    {"name": "c", "addr": "10.0.0.3", "port": 8080, "tags": ["canary"]}
  ],
  "versions": {"1.0": {"error_rate": 0, "latency_ms": 100}, "default": {"error_rate": 0, "latency_ms": 120}},
  "commands": [{"match": "deploy\\.sh (\\S+)", "action": "install", "version": "$1", "duration": "20s"}],
  "call_latency": "0"
})json";

// A world with one gateway `edge` (stable a, b; canary c) and a clock the test moves.
struct GatewayFixture {
  double t = 0;
  std::unique_ptr<World> world = make_world(kGatewayWorld);
  std::unique_ptr<plugins::Driver> edge =
      make_sim_driver(Kind::Gateway, "edge", gateway_config({"a", "b"}, {"c"}), *world, [this] { return t; });
  std::unique_ptr<plugins::Driver> fleet = make_sim_driver(Kind::Hosts, "fleet", Value::of_map({}), *world, [this] { return t; });
  std::unique_ptr<plugins::Driver> prom = make_sim_driver(Kind::Metrics, "prom", Value::of_map({}), *world, [this] { return t; });

  const Host& host(const char* name) { return *world->host(name); }
  void at(double ms) {
    t = ms;
    world->advance_to(t);
  }
};

const char* kRegistryWorld = R"({
  "noise": 0,
  "version": "1.0",
  "traffic": {"rps": 80},
  "hosts": [
    {"name": "u1", "addr": "10.0.4.11", "port": 9000},
    {"name": "u2", "addr": "10.0.4.11", "port": 9001},
    {"name": "u3", "addr": "10.0.4.12", "port": 9000},
    {"name": "u4", "addr": "10.0.4.12", "port": 9001}
  ],
  "versions": {"default": {"error_rate": 0}},
  "registries": {"names": {"client_cache": "15s", "client_groups": 4, "self_register_after": "5s"}},
  "call_latency": "0"
})";

struct RegistryFixture {
  double t = 0;
  std::unique_ptr<World> world = make_world(kRegistryWorld);
  std::unique_ptr<plugins::Driver> names =
      make_sim_driver(Kind::Registry, "names", Value::of_map({}), *world, [this] { return t; });
  void at(double ms) {
    t = ms;
    world->advance_to(t);
  }
  double served(const char* h) { return world->host(h)->served; }
};

}  // namespace

TEST_CASE("traffic splits between the groups by the gateway's weight", "[sim]") {
  GatewayFixture f;
  REQUIRE(f.edge->call(op("weight", {{"canary", Value::percent(20)}})).ok());
  f.at(60000);
  // 100 rps for 60 s: 20% to the one canary server, 80% over two stable servers.
  CHECK(f.host("c").served == Approx(1200));
  CHECK(f.host("a").served == Approx(2400));
  CHECK(f.host("b").served == Approx(2400));
  CHECK(f.world->reading("g:edge/canary", 60000).served == Approx(1200));
  Result share = f.edge->call(op("weight_of", {{"group", str("canary")}}));
  CHECK(share.value.kind == Value::Kind::Percent);
  CHECK(share.value.num == Approx(20));
}

TEST_CASE("a drained server gets no new traffic and its sessions fall off", "[sim]") {
  GatewayFixture f;
  f.at(10000);
  double sessions_before = f.edge->call(op("sessions", {{"server", str("a")}})).value.num;
  CHECK(sessions_before == Approx(50 * 60).margin(1));  // 50 rps x 1 session per request x 1 m
  Result drain = f.edge->call(op("drain", {{"server", str("a")}}));
  REQUIRE(drain.ok());
  REQUIRE(drain.undo);
  CHECK(drain.undo->op == "ready");
  double served = f.host("a").served;
  f.at(10000 + 5 * 60000);
  CHECK(f.host("a").served == Approx(served));
  CHECK(f.host("b").served == Approx(50 * 10 + 100 * 300));  // b carries all of the stable share
  // Five time constants later, about e^-5 of the sessions are left.
  double after = f.edge->call(op("sessions", {{"server", str("a")}})).value.num;
  CHECK(after == Approx(sessions_before * std::exp(-5.0)).margin(1));
  CHECK(after < 25);
  // `ready` brings it back.
  f.edge->call(*drain.undo);
  f.at(10000 + 6 * 60000);
  CHECK(f.host("a").served == Approx(served + 50 * 60));
}

TEST_CASE("clients keep sending to a deregistered instance until their caches refresh", "[sim]") {
  RegistryFixture f;
  f.at(60000);
  REQUIRE(f.names->call(op("deregister", {{"instance", str("u1")}})).ok());
  REQUIRE(f.names->call(op("pause_registration", {{"instance", str("u1")}})).ok());
  double before = f.served("u1");
  f.at(61000);
  CHECK(f.served("u1") > before);  // most clients still have it cached
  f.at(60000 + 15001);             // every client group has polled once since
  double forgotten = f.served("u1");
  f.at(200000);
  CHECK(f.served("u1") == Approx(forgotten));
  CHECK_FALSE(f.names->call(op("registered", {{"instance", str("u1")}})).value.flag);
  // The other three carry everything, and nothing failed.
  CHECK(f.world->summary().total.failed == Approx(0));
}

TEST_CASE("a node's agent registers its instance again unless registration was paused", "[sim]") {
  RegistryFixture f;
  f.at(1000);
  REQUIRE(f.names->call(op("deregister", {{"instance", str("10.0.4.11:9000")}})).ok());
  REQUIRE(f.names->call(op("deregister", {{"instance", str("u2")}})).ok());
  REQUIRE(f.names->call(op("pause_registration", {{"instance", str("u2")}})).ok());
  f.at(5000);
  CHECK_FALSE(f.names->call(op("registered", {{"instance", str("u1")}})).value.flag);
  f.at(6001);
  CHECK(f.names->call(op("registered", {{"instance", str("u1")}})).value.flag);  // forgot to pause: it is back
  CHECK_FALSE(f.names->call(op("registered", {{"instance", str("u2")}})).value.flag);
  f.at(120000);
  CHECK_FALSE(f.names->call(op("registered", {{"instance", str("u2")}})).value.flag);
  // Resuming lets the agent do its job again.
  Result resume = f.names->call(op("resume_registration", {{"instance", str("u2")}}));
  REQUIRE(resume.undo);
  CHECK(resume.undo->op == "pause_registration");
  f.at(126000);
  CHECK(f.names->call(op("registered", {{"instance", str("u2")}})).value.flag);
}

TEST_CASE("an install takes the host down: requests to it fail unless it was drained first", "[sim]") {
  GatewayFixture f;
  f.at(1000);
  Result run = f.fleet->call(op("run", {{"host", Value::named(Value::Kind::Host, "a")}, {"command", str("deploy.sh 2.0")}}));
  REQUIRE(run.ok());
  CHECK(run.value.fields().at("exit_code").num == 0);
  CHECK(run.elapsed_ms == 20000);
  CHECK(f.host("a").state == HostState::Installing);
  f.at(21000);
  CHECK(f.host("a").state == HostState::Up);
  CHECK(f.host("a").version == "2.0");
  CHECK(f.host("a").failed == Approx(50 * 20));  // its whole share for 20 s

  // Host b, drained first: nothing reaches it while it is down.
  REQUIRE(f.edge->call(op("drain", {{"server", str("b")}})).ok());
  f.fleet->call(op("run", {{"host", str("b")}, {"command", str("deploy.sh 2.0")}}));
  f.at(45000);
  CHECK(f.host("b").failed == Approx(0));
  CHECK(f.host("b").version == "2.0");
  CHECK(f.world->summary().by_version.at("1.0").failed == Approx(50 * 20));
}

TEST_CASE("a version's error-rate schedule shows in its metric", "[sim]") {
  GatewayFixture f;
  json sc = json::parse(kGatewayWorld);
  sc["versions"]["2.0"] = json::parse(R"([{"at": "0s", "error_rate": 0.001}, {"at": "12m", "error_rate": 0.06}])");
  sc["metrics"] = {{"error_rate", {{"measure", "error_rate"}, {"version", "$v"}}}};
  std::string error;
  f.world = World::from_scenario(sc, error);
  REQUIRE(f.world);
  f.edge = make_sim_driver(Kind::Gateway, "edge", gateway_config({"a", "b"}, {"c"}), *f.world, [&] { return f.t; });
  f.fleet = make_sim_driver(Kind::Hosts, "fleet", Value::of_map({}), *f.world, [&] { return f.t; });
  f.prom = make_sim_driver(Kind::Metrics, "prom", Value::of_map({}), *f.world, [&] { return f.t; });
  f.fleet->call(op("run", {{"host", str("c")}, {"command", str("deploy.sh 2.0")}}));
  f.edge->call(op("weight", {{"canary", Value::percent(10)}}));
  auto rate = [&] {
    return f.prom->call(
        op("query", {{"query", str("...")}, {"metric", str("error_rate")}, {"params", Value::of_map({{"v", str("2.0")}})}}));
  };
  f.at(10 * 60000);
  Result early = rate();
  REQUIRE(early.ok());
  CHECK(early.value.num == Approx(0.001));
  f.at(12 * 60000 + 30000);
  CHECK(rate().value.num == Approx((30 * 0.001 + 30 * 0.06) / 60));  // half the window on each side
  f.at(14 * 60000);
  CHECK(rate().value.num == Approx(0.06));
}

TEST_CASE("metrics without data answer NoData", "[sim]") {
  json sc = json::parse(kGatewayWorld);
  sc["metrics"] = json::parse(R"({
    "broken": {"measure": "error_rate", "nodata": true},
    "gap": {"measure": "error_rate", "nodata": [{"from": "1m", "to": "2m"}]},
    "canary_errors": {"measure": "error_rate", "version": "canary"}
  })");
  GatewayFixture f;
  std::string error;
  f.world = World::from_scenario(sc, error);
  f.edge = make_sim_driver(Kind::Gateway, "edge", gateway_config({"a", "b"}, {"c"}), *f.world, [&] { return f.t; });
  f.prom = make_sim_driver(Kind::Metrics, "prom", Value::of_map({}), *f.world, [&] { return f.t; });
  auto query = [&](const char* m) { return f.prom->call(op("query", {{"query", str("q")}, {"metric", str(m)}})).status; };
  f.at(30000);
  CHECK(query("broken") == Result::Status::NoData);
  CHECK(query("gap") == Result::Status::Ok);
  CHECK(query("canary_errors") == Result::Status::NoData);  // weight 0%: the canary served nothing
  CHECK(query("unknown_thing") == Result::Status::NoData);  // not described, not guessable
  f.at(90000);
  CHECK(query("gap") == Result::Status::NoData);
  f.edge->call(op("weight", {{"canary", Value::percent(5)}}));
  f.at(150000);
  CHECK(query("gap") == Result::Status::Ok);
  CHECK(query("canary_errors") == Result::Status::Ok);
}

TEST_CASE("an effect is applied once per idempotency key", "[sim]") {
  GatewayFixture f;
  Result first = f.edge->call(op("weight", {{"canary", Value::percent(5)}}, "run1/ramp/1"));
  REQUIRE(first.ok());
  CHECK_FALSE(first.replayed);
  f.edge->call(op("weight", {{"canary", Value::percent(50)}}));  // unkeyed: applied
  Result again = f.edge->call(op("weight", {{"canary", Value::percent(5)}}, "run1/ramp/1"));
  CHECK(again.ok());
  CHECK(again.replayed);
  CHECK(again.undo->args.at("canary").num == 0);          // the first answer's undo
  CHECK(f.world->gateway("edge")->canary_percent == 50);  // the replay changed nothing
  CHECK(f.world->keys().at("run1/ramp/1").calls == 2);
  CHECK(f.world->keys().at("run1/ramp/1").applied == 1);

  // A command under a key runs once: one install, one rule use.
  Call deploy = op("run", {{"host", str("c")}, {"command", str("deploy.sh 2.0")}}, "run1/deploy/c");
  f.fleet->call(deploy);
  f.at(30000);
  CHECK(f.fleet->call(deploy).replayed);
  CHECK(f.host("c").state == HostState::Up);  // not installing again
  Summary s = f.world->summary();
  CHECK(s.applied.at("run1/deploy/c") == 1);
  CHECK(s.replays == 2);
  CHECK(s.effects == 3);
}

TEST_CASE("a lost reply leaves the effect applied, and the retry is a replay", "[sim]") {
  json sc = json::parse(kGatewayWorld);
  sc["faults"] = json::parse(R"({"calls": [{"kind": "gateway", "op": "weight", "to": "1s", "lost_reply": true}]})");
  GatewayFixture f;
  std::string error;
  f.world = World::from_scenario(sc, error);
  f.edge = make_sim_driver(Kind::Gateway, "edge", gateway_config({"a", "b"}, {"c"}), *f.world, [&] { return f.t; });
  Call w = op("weight", {{"canary", Value::percent(5)}}, "k1");
  Result lost = f.edge->call(w);
  CHECK(lost.status == Result::Status::Error);
  CHECK(f.world->gateway("edge")->canary_percent == 5);
  f.at(2000);
  Result retry = f.edge->call(w);
  CHECK(retry.ok());
  CHECK(retry.replayed);
  CHECK(f.world->keys().at("k1").applied == 1);
}

TEST_CASE("a registry outage fails calls and freezes client caches", "[sim]") {
  json sc = json::parse(kRegistryWorld);
  sc["faults"] = json::parse(R"({"calls": [{"kind": "registry", "from": "3m", "to": "5m"}]})");
  RegistryFixture f;
  std::string error;
  f.world = World::from_scenario(sc, error);
  f.names = make_sim_driver(Kind::Registry, "names", Value::of_map({}), *f.world, [&] { return f.t; });
  f.at(2 * 60000 + 59000);
  REQUIRE(f.names->call(op("deregister", {{"instance", str("u1")}})).ok());
  REQUIRE(f.names->call(op("pause_registration", {{"instance", str("u1")}})).ok());
  f.at(3 * 60000);
  Result down = f.names->call(op("register", {{"instance", str("u1")}}));
  CHECK(down.status == Result::Status::Error);
  // Clients that had not polled before the outage still send to u1 until it ends.
  double during = f.served("u1");
  f.at(4 * 60000);
  CHECK(f.served("u1") > during);
  f.at(5 * 60000 + 15001);
  double after = f.served("u1");
  f.at(6 * 60000);
  CHECK(f.served("u1") == Approx(after));
  CHECK(f.names->call(op("registered", {{"instance", str("u1")}})).ok());
}

TEST_CASE("probes see the host, its version and the gateway's routes", "[sim]") {
  json sc = json::parse(kGatewayWorld);
  sc["endpoints"] = {{"shop.example.com", "edge"}};
  GatewayFixture f;
  std::string error;
  f.world = World::from_scenario(sc, error);
  f.edge = make_sim_driver(Kind::Gateway, "edge", gateway_config({"a", "b"}, {"c"}), *f.world, [&] { return f.t; });
  f.fleet = make_sim_driver(Kind::Hosts, "fleet", Value::of_map({}), *f.world, [&] { return f.t; });
  auto probe = make_sim_prober(*f.world, [&] { return f.t; });
  f.fleet->call(op("run", {{"host", str("c")}, {"command", str("deploy.sh 2.0")}}));
  Result installing = probe->http("http://10.0.0.3:8080/health", {}, 5000);
  CHECK(installing.status == Result::Status::Failed);
  CHECK(installing.value.fields().at("status").num == 503);
  CHECK(probe->tcp("10.0.0.3:8080", 5000).status == Result::Status::Failed);
  f.at(20000);
  Result up = probe->http("http://10.0.0.3:8080/health", {}, 5000);
  REQUIRE(up.ok());
  CHECK(up.value.fields().at("body").str.find("\"version\":\"2.0\"") != std::string::npos);
  // Test users reach the canary through the gateway; everybody else the stable group at 0%.
  REQUIRE(f.edge
              ->call(op("route", {{"match", str("header")},
                                  {"name", str("X-Gray-User")},
                                  {"op", str("~")},
                                  {"value", str("^qa-")},
                                  {"target", str("canary")}}))
              .ok());
  for (int i = 0; i < 10; ++i) {
    CHECK(probe->http("https://shop.example.com/x", {"X-Gray-User: qa-1"}, 5000).value.fields().at("body").str.find("2.0") !=
          std::string::npos);
    CHECK(probe->http("https://shop.example.com/x", {"X-Gray-User: bob"}, 5000).value.fields().at("body").str.find("1.0") !=
          std::string::npos);
  }
}

TEST_CASE("save and load give the same world", "[sim]") {
  json sc = json::parse(kGatewayWorld);
  sc["noise"] = 0.05;
  sc["metrics"] = {{"p99", {{"measure", "latency_p99_ms"}}}};
  sc["registries"] = {{"names", {{"client_cache", "10s"}}}};
  std::string error;
  auto a = World::from_scenario(sc, error);
  double t = 0;
  auto edge = make_sim_driver(Kind::Gateway, "edge", gateway_config({"a", "b"}, {"c"}), *a, [&] { return t; });
  auto names = make_sim_driver(Kind::Registry, "names", Value::of_map({}), *a, [&] { return t; });
  auto fleet = make_sim_driver(Kind::Hosts, "fleet", Value::of_map({}), *a, [&] { return t; });
  edge->call(op("weight", {{"canary", Value::percent(20)}}, "k1"));
  edge->call(op("route", {{"match", str("ip")}, {"value", str("10.20.0.0/16")}, {"target", str("canary")}}, "k2"));
  names->call(op("deregister", {{"instance", str("a")}}, "k3"));
  t = 7000;
  fleet->call(op("run", {{"host", str("b")}, {"command", str("deploy.sh 2.0")}}, "k4"));
  t = 12000;
  a->advance_to(t);

  fs::path file = fs::temp_directory_path() / ("gray-sim-world-test-" + std::to_string(::getpid()) + ".json");
  REQUIRE(a->save(file.string(), error));
  auto b = World::load(file.string(), error);
  INFO(error);
  REQUIRE(b);
  CHECK(a->summary() == b->summary());
  json report = b->summary_json();
  CHECK(report["total"]["served"].get<double>() == Approx(a->summary().total.served).epsilon(1e-6));
  CHECK(report["hosts"]["b"]["state"] == "installing");
  CHECK(report["registries"]["names"].size() == 3);  // a is back: registration was not paused

  // Both go on identically: the same traffic, events, registry and random draws.
  auto continue_on = [&](World& w) {
    double tt = 12000;
    auto e = make_sim_driver(Kind::Gateway, "edge", gateway_config({"a", "b"}, {"c"}), w, [&] { return tt; });
    auto m = make_sim_driver(Kind::Metrics, "prom", Value::of_map({}), w, [&] { return tt; });
    tt = 40000;
    double p99 = m->call(op("query", {{"query", str("q")}, {"metric", str("p99")}})).value.num;
    e->call(op("weight", {{"canary", Value::percent(50)}}, "k5"));
    tt = 90000;
    w.advance_to(tt);
    return std::make_pair(p99, w.summary());
  };
  auto ra = continue_on(*a);
  auto rb = continue_on(*b);
  CHECK(ra.first == rb.first);
  CHECK(ra.second == rb.second);
  CHECK(ra.second.host_versions.at("b") == "2.0");
  fs::remove(file);
}

TEST_CASE("a seed reproduces metric noise and random faults", "[sim]") {
  json sc = json::parse(kGatewayWorld);
  sc["noise"] = 0.1;
  sc["metrics"] = {{"p99", {{"measure", "latency_p99_ms"}}}};
  sc["faults"] = json::parse(R"({"calls": [{"kind": "gateway", "error_probability": 0.3}]})");
  auto trace = [&](std::uint64_t seed) {
    std::string error;
    auto w = World::from_scenario(sc, error);
    w->reseed(seed);
    double t = 0;
    auto edge = make_sim_driver(Kind::Gateway, "edge", gateway_config({"a", "b"}, {"c"}), *w, [&] { return t; });
    auto m = make_sim_driver(Kind::Metrics, "prom", Value::of_map({}), *w, [&] { return t; });
    std::vector<double> out;
    for (int i = 1; i <= 20; ++i) {
      t = i * 10000.0;
      out.push_back(m->call(op("query", {{"query", str("q")}, {"metric", str("p99")}})).value.num);
      out.push_back(edge->call(op("weight", {{"canary", Value::percent(i)}})).ok() ? 1 : 0);
    }
    return out;
  };
  auto one = trace(7), two = trace(7), other = trace(8);
  CHECK(one == two);
  CHECK(one != other);
  CHECK(std::count(one.begin(), one.end(), 0.0) > 0);  // some calls failed...
  CHECK(std::count(one.begin(), one.end(), 1.0) > 0);  // ...and some went through
}

TEST_CASE("zero noise gives exact readings", "[sim]") {
  GatewayFixture f;
  f.at(120000);
  Result r = f.prom->call(op("query", {{"query", str("q")}, {"metric", str("p99_latency")}}));
  REQUIRE(r.ok());
  CHECK(r.value.num == Approx(100));  // the default guess for "p99": latency of all traffic
}

TEST_CASE("installs by image digest count as the tag's version", "[sim]") {
  GatewayFixture f;
  auto img = make_sim_driver(Kind::Images, "img", Value::of_map({}), *f.world, [&] { return f.t; });
  Result digest = img->call(op("digest", {{"ref", str("2.0")}}));
  REQUIRE(digest.ok());
  CHECK(digest.value.str.rfind("sha256:", 0) == 0);
  CHECK(digest.value.str.size() == 7 + 64);
  f.fleet->call(op("run", {{"host", str("c")}, {"command", str("deploy.sh registry.example.com/shop@" + digest.value.str)}}));
  f.at(25000);
  CHECK(f.host("c").version == "2.0");
}

TEST_CASE("commands follow the scenario's rules", "[sim]") {
  json sc = json::parse(kGatewayWorld);
  sc["commands"] = json::parse(R"json([
    {"match": "deploy\\.sh (\\S+)", "host": "b", "times": 1, "action": "install", "version": "$1", "exit_code": 1},
    {"match": "deploy\\.sh (\\S+)", "action": "install", "version": "$1", "duration": "10s"},
    {"match": "^systemctl stop", "action": "stop"},
    {"match": "^systemctl start", "action": "start"},
    {"match": "^reboot", "action": "crash"},
    {"match": "^testcall", "action": "check"}
  ])json");
  GatewayFixture f;
  std::string error;
  f.world = World::from_scenario(sc, error);
  f.fleet = make_sim_driver(Kind::Hosts, "fleet", Value::of_map({}), *f.world, [&] { return f.t; });
  auto run = [&](const char* host, const char* cmd) {
    return f.fleet->call(op("run", {{"host", str(host)}, {"command", str(cmd)}}));
  };
  Result first = run("b", "deploy.sh 2.0");
  CHECK(first.status == Result::Status::Failed);
  CHECK(first.message == "exit code 1: install of 2.0 failed");
  CHECK(first.elapsed_ms == 30000);  // the default install duration
  f.at(31000);
  CHECK(f.host("b").version == "1.0");  // came back on what it had
  CHECK(run("b", "deploy.sh 2.0").ok());
  f.at(42000);
  CHECK(f.host("b").version == "2.0");
  CHECK(run("a", "systemctl stop app").ok());
  CHECK(f.host("a").state == HostState::Stopped);
  CHECK(run("a", "testcall").status == Result::Status::Failed);
  CHECK(run("a", "systemctl start app").ok());
  CHECK(run("a", "testcall").ok());
  CHECK(run("a", "echo anything").ok());
  CHECK(run("a", "reboot").status == Result::Status::Error);
  CHECK(run("a", "echo anything").status == Result::Status::Error);  // unreachable now
  CHECK(run("nope", "echo").status == Result::Status::Error);
}

TEST_CASE("scenario validation names the bad field", "[sim]") {
  struct Case {
    const char* scenario;
    const char* error;
  };
  const Case cases[] = {
      {R"([])", "scenario: expected an object, got a list"},
      {R"({"hostz": []})", "hostz: unknown field (did you mean 'hosts'?)"},
      {R"({"frobnicate": 1})", "frobnicate: unknown field"},
      {R"({"call_latency": "5x"})", "call_latency: bad duration \"5x\" (write a number and a unit: 250ms, 30s, 10m, 1h, 1d)"},
      {R"({"call_latency": 50})", "call_latency: expected a duration such as \"30s\", got a number"},
      {R"({"hosts": [{"name": "a", "port": "80"}]})", "hosts[0].port: expected a whole number, got a string"},
      {R"({"hosts": [{"addr": "10.0.0.1"}]})", "hosts[0].name: required"},
      {R"({"hosts": [{"name": "a"}, {"name": "a"}]})", "hosts[1].name: duplicate host \"a\""},
      {R"({"hosts": [{"name": "a", "state": "sleeping"}]})", "hosts[0].state: unknown state \"sleeping\" (up, stopped, down)"},
      {R"({"hosts": [{"name": "a", "colour": "red"}]})", "hosts[0].colour: unknown field"},
      {R"({"versions": {"2.0": {"error_rate": 1.5}}})", "versions.2.0.error_rate: must be between 0 and 1, got 1.5"},
      {R"({"versions": {"2.0": [{"at": "5m"}, {"at": "1m"}]}})", "versions.2.0[1].at: times must increase"},
      {R"({"versions": {"2.0": [{"at": "0s"}, {"error_rate": 0.1}]}})", "versions.2.0[1].at: required"},
      {R"({"versions": {"2.0": "bad"}})", "versions.2.0: expected an object or a list of {at, ...} points, got a string"},
      {R"({"traffic": {"rps": -1}})", "traffic.rps: must be at least 0, got -1"},
      {R"({"traffic": {"sessions": {"duration": "1 m"}}})",
       "traffic.sessions.duration: bad duration \"1 m\" (write a number and a unit: 250ms, 30s, 10m, 1h, 1d)"},
      {R"({"gateways": {"edge": {"stable": ["a", 2]}}})", "gateways.edge.stable[1]: expected a string, got a number"},
      {R"({"gateways": {"edge": {"matches": {"query q": 0.1}}}})",
       "gateways.edge.matches.query q: a match is \"header NAME\", \"cookie NAME\" or \"ip\""},
      {R"({"registries": {"names": {"client_groups": 0}}})", "registries.names.client_groups: must be between 1 and 64, got 0"},
      {R"({"metrics": {"p99": {"measure": "p95"}}})",
       "metrics.p99.measure: unknown measure \"p95\" (error_rate, latency_p99_ms, request_rate, sessions, connections, "
       "instances, value)"},
      {R"({"metrics": {"p99": {"version": "canary"}}})", "metrics.p99.measure: required"},
      {R"({"metrics": {"cpu": {"measure": "value"}}})", "metrics.cpu.value: required for measure \"value\""},
      {R"({"metrics": {"x": {"measure": "error_rate", "nodata": "yes"}}})",
       "metrics.x.nodata: expected true, false or a list of {from, to}, got a string"},
      {R"({"commands": [{"match": "(", "action": "noop"}]})", "commands[0].match: bad regular expression \"(\""},
      {R"({"commands": [{"match": "x", "action": "reboot"}]})",
       "commands[0].action: unknown action \"reboot\" (install, stop, start, fail, crash, check, noop)"},
      {R"({"commands": [{"match": "x", "action": "install"}]})", "commands[0].version: required for action \"install\""},
      {R"({"commands": [{"match": "x", "action": "noop", "host": "zz"}], "hosts": [{"name": "a"}]})",
       "commands[0].host: unknown host \"zz\""},
      {R"({"faults": {"calls": [{"kind": "dns"}]}})",
       "faults.calls[0].kind: unknown kind \"dns\" (gateway, registry, hosts, metrics, images, probe, *)"},
      {R"({"faults": {"calls": [{"from": "5m", "to": "3m"}]}})", "faults.calls[0].to: must be later than from"},
      {R"({"faults": {"hosts": [{"host": "a"}]}})", "faults.hosts[0].down_at: required"},
      {R"({"faults": {"hosts": [{"host": "b", "down_at": "1m"}]}, "hosts": [{"name": "a"}]})",
       "faults.hosts[0].host: unknown host \"b\""},
      {R"({"seed": 1.5})", "seed: expected a whole number, got 1.5"},
      {R"({"noise": true})", "noise: expected a number, got a boolean"},
  };
  for (const Case& c : cases) {
    std::string error;
    auto w = World::from_scenario(json::parse(c.scenario), error);
    INFO(c.scenario);
    CHECK_FALSE(w);
    CHECK(error == c.error);
  }
}

TEST_CASE("an align over 1,000 hosts stays cheap", "[sim][perf]") {
  json sc = json::parse(R"({"noise": 0, "call_latency": "0", "versions": {"default": {"error_rate": 0}},
    "commands": [{"match": "deploy", "action": "install", "version": "2.0", "duration": "20s"}]})");
  List stable;
  for (int i = 0; i < 1000; ++i) {
    std::string name = "h" + std::to_string(i);
    sc["hosts"].push_back(
        {{"name", name}, {"addr", "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250)}, {"port", 8080}});
    stable.push_back(str(name));
  }
  std::string error;
  auto w = World::from_scenario(sc, error);
  REQUIRE(w);
  double t = 0;
  auto edge =
      make_sim_driver(Kind::Gateway, "edge", Value::of_map({{"stable", Value::of_list(stable)}, {"canary", Value::of_list({})}}),
                      *w, [&] { return t; });
  auto fleet = make_sim_driver(Kind::Hosts, "fleet", Value::of_map({}), *w, [&] { return t; });
  auto probe = make_sim_prober(*w, [&] { return t; });
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    Value h = str("h" + std::to_string(i));
    edge->call(op("drain", {{"server", h}}, "d" + std::to_string(i)));
    t += 1000;
    t += fleet->call(op("run", {{"host", h}, {"command", str("deploy")}}, "r" + std::to_string(i))).elapsed_ms;
    probe->http("http://h" + std::to_string(i) + ":8080/health", {}, 3000);
    edge->call(op("ready", {{"server", h}}, "u" + std::to_string(i)));
    t += 1000;
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  Summary s = w->summary();
  CHECK(s.total.failed == Approx(0));  // drained first, every time
  CHECK(std::all_of(s.host_versions.begin(), s.host_versions.end(), [](const auto& kv) { return kv.second == "2.0"; }));
  INFO("world work per host: " << ms / 1000 << " ms");
#if defined(__SANITIZE_ADDRESS__)
  CHECK(ms / 1000 < 10.0);  // sanitizers slow everything down several times
#else
  CHECK(ms / 1000 < 1.0);
#endif
}

// Every scenario shipped with the pipelines loads, and describes the hosts of its pipeline's
// inventory.
TEST_CASE("the pipelines' scenarios load and match their inventories", "[sim]") {
  const fs::path root = fs::path(GRAY_SOURCE_DIR) / "pipelines";
  const char* required[] = {"good.json", "bad-canary.json", "flaky-host.json", "no-data.json", "registry-outage.json"};
  int pipelines = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.path().extension() != ".gray") continue;
    ++pipelines;
    const fs::path dir = root / "scenarios" / entry.path().stem();
    std::ifstream src(entry.path());
    std::stringstream text;
    text << src.rdbuf();
    std::smatch m;
    std::string pipeline = text.str();
    REQUIRE(std::regex_search(pipeline, m, std::regex("inventory: \"([^\"]+)\"")));
    std::ifstream inv_file(root / m[1].str());
    json inventory = json::parse(inv_file);
    for (const char* name : required) {
      INFO(dir / name);
      std::ifstream f(dir / name);
      REQUIRE(f);
      std::string error;
      auto w = World::from_scenario(json::parse(f), error);
      INFO(error);
      REQUIRE(w);
      CHECK(!w->scenario().description.empty());
      REQUIRE(w->hosts().size() == inventory["hosts"].size());
      for (const auto& h : inventory["hosts"]) {
        const Host* mine = w->host(h["name"].get<std::string>());
        REQUIRE(mine);
        CHECK(mine->addr == h["addr"].get<std::string>());
        CHECK(mine->port == h["port"].get<int>());
      }
    }
  }
  CHECK(pipelines == 6);
}

namespace {

std::unique_ptr<World> pipeline_world(const std::string& pipeline, const std::string& variant) {
  std::ifstream f(fs::path(GRAY_SOURCE_DIR) / "pipelines" / "scenarios" / pipeline / (variant + ".json"));
  REQUIRE(f);
  std::string error;
  auto w = World::from_scenario(json::parse(f), error);
  INFO(error);
  REQUIRE(w);
  return w;
}

}  // namespace

// The commands each pipeline really sends (interpolated by hand) meet the rule meant for them.
TEST_CASE("the pipelines' commands do what their scenarios mean", "[sim]") {
  struct Step {
    const char* host;  // "" for the machine running gray
    std::string command;
    const char* version;  // the host's version afterwards ("" to skip)
    HostState state;
  };
  struct Case {
    const char* pipeline;
    std::vector<Step> steps;
  };
  const std::string image = "registry.example.com/shop/orders@";
  const Case cases[] = {
      {"canary",
       {{"app-4", "/opt/checkout/bin/deploy.sh 2.4.1", "2.4.1", HostState::Up},
        {"app-4", "/opt/checkout/bin/deploy.sh 2.4.0", "2.4.0", HostState::Up}}},
      {"container-gray",
       {{"gray-1", "docker run -d --name orders-gray -p 8080:8080 -e APP_MODE=gray -e GRAY_TAG=5.13.0 " + image + "DIGEST",
         "5.13.0", HostState::Up},
        {"prod-1", "docker rm -f orders && docker run -d --name orders -p 8080:8080 -e APP_MODE=prod " + image + "DIGEST",
         "5.13.0", HostState::Up},
        {"prod-1",
         "docker rm -f orders && docker run -d --name orders -p 8080:8080 -e APP_MODE=prod "
         "registry.example.com/shop/orders:5.12.4",
         "5.12.4", HostState::Up},
        {"gray-1", "docker rm -f orders-gray", "5.13.0", HostState::Stopped}}},
      {"flow-periods",
       {{"pay-g1", "/opt/payments/release.sh install 3.2.0", "3.2.0", HostState::Up},
        {"", "/opt/payments/bin/e2e --cookie teller=gray-test --suite smoke", "", HostState::Up}}},
      {"node-handover",
       {{"cc-1", "ccctl groups move --from cc-1 --to cc-2", "7.3.2", HostState::Up},
        {"cc-1", "ccctl node upgrade --version 7.4.0", "7.4.0", HostState::Up},
        {"cc-1", "cc-testcall --group test-group --expect answered", "7.4.0", HostState::Up}}},
      {"registry-rolling",
       {{"user-1", "systemctl stop user-service@9000", "3.8.2", HostState::Stopped},
        {"user-1", "/opt/user-service/install.sh 3.9.0 --port 9000", "3.9.0", HostState::Up},
        {"user-1", "systemctl start user-service@9000", "3.9.0", HostState::Up},
        {"user-1", "/opt/user-service/install.sh 3.8.2 --port 9000 --restart", "3.8.2", HostState::Up}}},
      {"versioned-routing", {{"b-1", "/opt/esb/bin/upgrade.sh 11.5.0", "11.5.0", HostState::Up}}},
  };
  for (const Case& c : cases) {
    auto w = pipeline_world(c.pipeline, "good");
    double t = 0;
    auto fleet = make_sim_driver(Kind::Hosts, "fleet", Value::of_map({}), *w, [&] { return t; });
    auto img = make_sim_driver(Kind::Images, "img", Value::of_map({}), *w, [&] { return t; });
    auto edge = make_sim_driver(Kind::Gateway, "edge", Value::of_map({}), *w, [&] { return t; });
    const std::string digest = img->call(op("digest", {{"ref", str("5.13.0")}})).value.str;
    for (Step s : c.steps) {
      s.command = std::regex_replace(s.command, std::regex("DIGEST"), digest);
      INFO(c.pipeline << ": " << s.command);
      Result r = fleet->call(op("run", {{"host", s.host[0] ? str(s.host) : Value::null()}, {"command", str(s.command)}}));
      CHECK(r.ok());
      CHECK(r.elapsed_ms != 1000 + 50);  // a command no rule matches takes 1s
      t += r.elapsed_ms + 1000;
      w->advance_to(t);
      if (s.version[0]) {
        CHECK(w->host(s.host)->version == s.version);
        CHECK(w->host(s.host)->state == s.state);
      }
    }
  }
}

// Method 5 against its shipped world: the careful sequence loses no call; forgetting to pause
// self-registration sends callers to a stopped instance, and the run-wide guard would see it.
TEST_CASE("registry-rolling: forgetting to pause registration is visible to callers", "[sim]") {
  for (bool pause : {true, false}) {
    auto w = pipeline_world("registry-rolling", "good");
    double t = 0;
    auto names = make_sim_driver(Kind::Registry, "names", Value::of_map({}), *w, [&] { return t; });
    auto fleet = make_sim_driver(Kind::Hosts, "instances", Value::of_map({}), *w, [&] { return t; });
    auto prom = make_sim_driver(Kind::Metrics, "prom", Value::of_map({}), *w, [&] { return t; });
    auto step = [&](Result r) {
      CHECK(r.ok());
      t += r.elapsed_ms;
    };
    Value host = str("user-1");
    t = 60000;
    step(names->call(op("deregister", {{"instance", host}})));
    if (pause) step(names->call(op("pause_registration", {{"instance", host}})));
    t += 20000;  // wait cache_wait
    step(fleet->call(op("run", {{"host", host}, {"command", str("systemctl stop user-service@9000")}})));
    t += 10000;
    double errors = prom->call(op("query", {{"query", str("q")}, {"metric", str("caller_errors")}})).value.num;
    INFO("pause: " << pause << ", caller errors: " << errors);
    if (pause)
      CHECK(errors < 0.001);
    else
      CHECK(errors > 0.01);  // the agent re-registered it 5s after the deregistration
  }
}

// Method 1 against its shipped world: a drained node empties below T1 = 5 users and T2 = 2
// agents well within the pipeline's patience of 2h.
TEST_CASE("node-handover: a drained node empties", "[sim]") {
  auto w = pipeline_world("node-handover", "good");
  double t = 0;
  auto dispatch = make_sim_driver(Kind::Gateway, "dispatch", gateway_config({"cc-2"}, {"cc-1"}), *w, [&] { return t; });
  auto prom = make_sim_driver(Kind::Metrics, "prom", Value::of_map({}), *w, [&] { return t; });
  auto users = [&] { return dispatch->call(op("sessions", {{"server", str("cc-1")}})).value.num; };
  auto agents = [&] {
    return prom
        ->call(op("query", {{"query", str("q")}, {"metric", str("agents")}, {"params", Value::of_map({{"node", str("cc-1")}})}}))
        .value.num;
  };
  CHECK(users() == Approx(75).margin(1));
  REQUIRE(dispatch->call(op("drain", {{"server", str("cc-1")}})).ok());
  double emptied = -1;
  for (t = 0; t <= 2 * 3600000.0; t += 30000)
    if (users() < 5 && agents() < 2) {
      emptied = t;
      break;
    }
  INFO("emptied after " << emptied / 60000 << " min");
  CHECK(emptied > 5 * 60000);
  CHECK(emptied < 20 * 60000);
  CHECK(w->host("cc-2")->failed < w->host("cc-2")->served * 0.002);  // cc-2 took the calls over
}

TEST_CASE("the README's example scenario is valid", "[sim]") {
  std::ifstream f(fs::path(GRAY_SOURCE_DIR) / "plugins" / "sim" / "README.md");
  std::stringstream text;
  text << f.rdbuf();
  std::string md = text.str();
  size_t start = md.find("```json\n");
  REQUIRE(start != std::string::npos);
  start += 8;
  std::string example = md.substr(start, md.find("```", start) - start);
  std::string error;
  auto w = World::from_scenario(json::parse(example), error);
  INFO(error);
  REQUIRE(w);
  double t = 0;
  auto fleet = make_sim_driver(Kind::Hosts, "fleet", Value::of_map({}), *w, [&] { return t; });
  auto deploy = [&](const char* h) {
    return fleet->call(op("run", {{"host", str(h)}, {"command", str("/opt/checkout/bin/deploy.sh 2.4.1")}})).status;
  };
  CHECK(deploy("app-2") == Result::Status::Failed);
  CHECK(deploy("app-2") == Result::Status::Ok);
}
