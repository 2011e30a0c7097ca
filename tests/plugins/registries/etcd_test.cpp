// The etcd registry driver against a real etcd (3.4, JSON gateway) on 127.0.0.1, and against test
// servers that misbehave on purpose.
#include "plugins/etcd/etcd.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "plugins/etcd/etcd_client.h"
#include "tests/plugins/registries/support.h"
#include "tests/support/http_server.h"

using namespace gray;
using namespace gray::regtest;
using nlohmann::json;
using plugins::Result;

namespace {

EtcdServer& shared_etcd() {
  static std::unique_ptr<EtcdServer> server = std::make_unique<EtcdServer>();
  return *server;
}

Value etcd_config(const std::string& url, const std::string& prefix, std::map<std::string, Value> extra = {}) {
  extra["endpoints"] = list({url});
  extra["prefix"] = str(prefix);
  return map(std::move(extra));
}

std::unique_ptr<plugins::Driver> make(const Value& config, std::vector<std::string>* notes = nullptr) {
  return plugins::make_etcd("names", config, test_env(notes));
}

// Direct access to etcd, as another writer would have it.
struct Raw {
  explicit Raw(const std::string& url) : client({{url}, "", ""}, {}) {}
  std::optional<plugins::etcd::KeyValue> get(const std::string& key) {
    std::vector<plugins::etcd::KeyValue> kvs;
    REQUIRE(client.range(key, false, 3000, kvs).ok());
    if (kvs.empty()) return std::nullopt;
    return kvs.front();
  }
  std::vector<plugins::etcd::KeyValue> under(const std::string& prefix) {
    std::vector<plugins::etcd::KeyValue> kvs;
    REQUIRE(client.range(prefix, true, 3000, kvs).ok());
    return kvs;
  }
  void put(const std::string& key, const std::string& value) {
    bool ok = false;
    REQUIRE(client.txn({}, {{true, key, value, 0}}, 3000, ok).ok());
    REQUIRE(ok);
  }
  plugins::etcd::Client client;
};

bool registered(plugins::Driver& d, const std::string& name) {
  Result r = d.call(call("registered", {{"instance", str(name)}}));
  REQUIRE(r.status == Result::Status::Ok);
  return r.value.flag;
}

double count(plugins::Driver& d, std::optional<std::string> version = std::nullopt) {
  std::map<std::string, Value> args;
  if (version) args["version"] = str(*version);
  Result r = d.call(call("count", args));
  REQUIRE(r.status == Result::Status::Ok);
  return r.value.num;
}

Result apply_undo(plugins::Driver& d, const plugins::Call& effect) {
  auto undo = d.undo_for(effect);
  Result r = d.call(effect);
  REQUIRE(r.status == Result::Status::Ok);
  REQUIRE(undo.has_value());
  undo->key = effect.key + ":undo";
  undo->timeout_ms = 5000;
  return d.call(*undo);
}

json value_of(Raw& raw, const std::string& key) {
  auto kv = raw.get(key);
  REQUIRE(kv.has_value());
  return json::parse(kv->value);
}

std::string fresh_prefix(const std::string& name) {
  static int n = 0;
  return "/microservices-" + std::to_string(++n) + "/" + name;
}

}  // namespace

TEST_CASE("etcd kratos: register, list, deregister with a parked copy, register back", "[etcd]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = fresh_prefix("checkout");
  auto d = make(etcd_config(etcd.url(), prefix));
  Raw raw(etcd.url());

  Result r = d->call(
      call("register", with(host("app-1", "10.0.0.5", 8000), "metadata", map({{"version", str("1.0")}, {"zone", str("a")}}))));
  REQUIRE(r.status == Result::Status::Ok);
  REQUIRE(r.undo);
  CHECK(r.undo->op == "deregister");
  CHECK(registered(*d, "app-1"));
  CHECK(count(*d) == 1);
  CHECK(count(*d, "1.0") == 1);
  CHECK(count(*d, "2.0") == 0);

  json doc = value_of(raw, prefix + "/app-1");
  CHECK(doc["id"] == "app-1");
  CHECK(doc["name"] == "checkout");
  CHECK(doc["version"] == "1.0");
  CHECK(doc["metadata"]["zone"] == "a");
  CHECK(doc["endpoints"][0] == "http://10.0.0.5:8000?isSecure=false");
  CHECK(raw.get(prefix + "/app-1")->lease != 0);

  // Another service under the same prefix is not ours: kratos readers filter on the name.
  raw.put(prefix + "/other-1",
          R"({"id":"other-1","name":"payments","version":"9","endpoints":["http://10.0.0.9:1?isSecure=false"]})");
  CHECK(count(*d) == 1);

  r = d->call(call("deregister", {{"instance", str("app-1")}}));
  REQUIRE(r.status == Result::Status::Ok);
  CHECK_FALSE(registered(*d, "app-1"));
  CHECK_FALSE(raw.get(prefix + "/app-1"));
  auto parked = raw.get("/gray/parked/checkout/app-1");
  REQUIRE(parked);
  json record = json::parse(parked->value);
  CHECK(record["key"] == prefix + "/app-1");
  CHECK(record["reason"] == "deregistered");
  // Nothing under the service prefix but the other service: frameworks list everything there.
  CHECK(raw.under(prefix + "/").size() == 1);

  // Again: harmless, and said so.
  r = d->call(call("deregister", {{"instance", str("app-1")}}));
  CHECK(r.status == Result::Status::Ok);
  CHECK(r.replayed);

  // Back from the parked copy, by name alone (as undo and `restore` send it), after a restart.
  d.reset();
  d = make(etcd_config(etcd.url(), prefix));
  r = d->call(call("register", {{"instance", str("app-1")}}));
  REQUIRE(r.status == Result::Status::Ok);
  doc = value_of(raw, prefix + "/app-1");
  CHECK(doc["version"] == "1.0");
  CHECK(doc["metadata"]["zone"] == "a");
  CHECK_FALSE(raw.get("/gray/parked/checkout/app-1"));
  r = d->call(call("register", {{"instance", str("app-1")}}));
  CHECK(r.replayed);

  // Found by address too.
  CHECK(d->call(call("registered", {{"instance", str("10.0.0.5:8000")}})).value.flag);
  r = d->call(call("register", {{"instance", str("app-9")}}));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("address is unknown") != std::string::npos);
}

TEST_CASE("etcd kratos: disable parks, enable restores, tag and set_weight change metadata", "[etcd]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = fresh_prefix("cart");
  auto d = make(etcd_config(etcd.url(), prefix, {{"control_prefix", str("/ctl")}}));
  Raw raw(etcd.url());
  REQUIRE(d->call(call("register", host("cart-1", "10.0.0.7", 9000, {{"version", str("3.1")}}))).ok());
  CHECK(value_of(raw, prefix + "/cart-1")["version"] == "3.1");

  Result r = d->call(call("disable", {{"instance", str("cart-1")}}));
  REQUIRE(r.ok());
  CHECK(r.undo->op == "enable");
  CHECK_FALSE(registered(*d, "cart-1"));
  CHECK(json::parse(raw.get("/ctl/parked/cart/cart-1")->value)["reason"] == "disabled");
  REQUIRE(d->call(call("enable", {{"instance", str("cart-1")}})).ok());
  CHECK(registered(*d, "cart-1"));
  CHECK(d->call(call("enable", {{"instance", str("cart-1")}})).replayed);

  r = d->call(call("tag", {{"instance", str("cart-1")}, {"metadata", map({{"version", str("3.2")}, {"lane", str("gray")}})}}));
  REQUIRE(r.ok());
  json doc = value_of(raw, prefix + "/cart-1");
  CHECK(doc["version"] == "3.2");
  CHECK(doc["metadata"]["lane"] == "gray");
  CHECK(count(*d, "3.2") == 1);

  r = d->call(call("set_weight", {{"instance", str("cart-1")}, {"weight", Value::number(40)}}));
  REQUIRE(r.ok());
  CHECK(value_of(raw, prefix + "/cart-1")["metadata"]["weight"] == "40");
  // Metadata changes keep the registration's lease.
  CHECK(raw.get(prefix + "/cart-1")->lease != 0);

  r = d->call(call("set_weight", {{"instance", str("cart-1")}, {"weight", Value::number(2.5)}}));
  CHECK(r.status == Result::Status::Failed);
  r = d->call(call("tag", {{"instance", str("nope")}, {"metadata", map({{"a", str("b")}})}}));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("nope is not registered") != std::string::npos);
  r = d->call(call("enable", {{"instance", str("nope")}}));
  CHECK(r.status == Result::Status::Failed);
}

TEST_CASE("etcd go-zero: lease-named keys holding host:port, no metadata", "[etcd]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = "user.rpc." + std::to_string(testing::free_port());
  auto d = make(etcd_config(etcd.url(), prefix, {{"layout", str("go-zero")}}));
  Raw raw(etcd.url());

  REQUIRE(d->call(call("register", host("rpc-1", "10.0.1.1", 8080))).ok());
  REQUIRE(d->call(call("register", host("rpc-2", "10.0.1.2", 8080))).ok());
  auto kvs = raw.under(prefix + "/");
  REQUIRE(kvs.size() == 2);
  for (const auto& kv : kvs) {
    CHECK(kv.key == prefix + "/" + std::to_string(kv.lease));  // the key is named by its lease
    CHECK((kv.value == "10.0.1.1:8080" || kv.value == "10.0.1.2:8080"));
  }
  CHECK(count(*d) == 2);
  CHECK(registered(*d, "10.0.1.1:8080"));
  CHECK(d->call(call("registered", host("rpc-1", "10.0.1.1", 8080))).value.flag);

  REQUIRE(d->call(call("deregister", host("rpc-1", "10.0.1.1", 8080))).ok());
  CHECK(raw.under(prefix + "/").size() == 1);
  CHECK(raw.get("/gray/parked/" + prefix + "/10.0.1.1:8080"));
  REQUIRE(d->call(call("register", {{"instance", str("10.0.1.1:8080")}})).ok());
  CHECK(count(*d) == 2);

  Result r = d->call(call("tag", with(host("rpc-1", "10.0.1.1", 8080), "metadata", map({{"version", str("2")}}))));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("go-zero") != std::string::npos);
  r = d->call(call("set_weight", with(host("rpc-1", "10.0.1.1", 8080), "weight", Value::number(5))));
  CHECK(r.status == Result::Status::Failed);
  r = d->call(call("weight", {{"canary", Value::percent(10)}}));
  CHECK(r.status == Result::Status::Failed);
  r = d->call(call("count", {{"version", str("2")}}));
  CHECK(r.status == Result::Status::Failed);

  // The pause flag of a go-zero instance is named by its address.
  REQUIRE(d->call(call("pause_registration", host("rpc-2", "10.0.1.2", 8080))).ok());
  CHECK(raw.get("/gray/paused/" + prefix + "/10.0.1.2:8080"));
}

TEST_CASE("etcd leases: kept alive while the driver lives, expire after it is gone", "[etcd]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = fresh_prefix("lease");
  Raw raw(etcd.url());
  auto d = make(etcd_config(etcd.url(), prefix, {{"lease_ttl", Value::duration_ms(2000)}}));
  REQUIRE(d->call(call("register", host("l-1", "10.0.2.1", 80))).ok());
  // Twice the TTL: without keep-alives the key would be gone.
  std::this_thread::sleep_for(std::chrono::milliseconds(4000));
  CHECK(raw.get(prefix + "/l-1"));
  double gone_at = now_ms();
  d.reset();
  double took = wait_until([&] { return !raw.get(prefix + "/l-1"); }, 6000);
  CHECK(took >= 0);
  CHECK(took < 3500);
  std::cerr << "figure: etcd lease of 2s expired " << (now_ms() - gone_at) / 1000 << " s after the driver was destroyed\n";
}

TEST_CASE("etcd compare-and-swap: a concurrent writer is not clobbered; a busy key gives up cleanly", "[etcd]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = fresh_prefix("cas");
  const std::string key = prefix + "/c-1";
  Raw seed(etcd.url());
  seed.put(key, R"({"id":"c-1","name":"cas","version":"1","metadata":{},"endpoints":["http://10.0.3.1:80?isSecure=false"]})");

  // A proxy in front of etcd that lets another writer change the key just before gray's write.
  std::atomic<int> interfere{1};
  std::atomic<int> writes{0};
  testing::HttpServer proxy([&](const testing::HttpRequest& req) {
    if (req.path == "/v3/kv/txn" && interfere > 0) {
      --interfere;
      // No REQUIRE here: this runs on the server's thread.
      plugins::etcd::Client other({{etcd.url()}, "", ""}, {});
      std::vector<plugins::etcd::KeyValue> kvs;
      bool ok = false;
      if (other.range(key, false, 3000, kvs).ok() && !kvs.empty()) {
        json doc = json::parse(kvs.front().value);
        doc["metadata"]["owner"] = "other-" + std::to_string(++writes);
        other.txn({}, {{true, key, doc.dump(), 0}}, 3000, ok);
      }
    }
    http::Client c;
    http::Request fwd;
    fwd.method = req.method;
    fwd.url = etcd.url() + req.target;
    fwd.body = req.body;
    fwd.headers.push_back({"Content-Type", "application/json"});
    http::Response resp = c.send(fwd);
    testing::HttpReply reply;
    reply.status = static_cast<int>(resp.status);
    reply.body = resp.body;
    return reply;
  });
  auto d = make(etcd_config(proxy.url(), prefix));

  Result r = d->call(call("tag", {{"instance", str("c-1")}, {"metadata", map({{"version", str("2")}})}}));
  REQUIRE(r.status == Result::Status::Ok);
  json doc = value_of(seed, key);
  CHECK(doc["version"] == "2");                  // gray's change
  CHECK(doc["metadata"]["owner"] == "other-1");  // and the other writer's, both kept

  interfere = 100;
  r = d->call(call("tag", {{"instance", str("c-1")}, {"metadata", map({{"version", str("3")}})}}));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("changed under gray 5 times") != std::string::npos);
  CHECK(value_of(seed, key)["version"] == "2");
  interfere = 0;
}

TEST_CASE("etcd weight: registry weights give the canary its share; undo puts back what was there", "[etcd]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = fresh_prefix("orders");
  Raw raw(etcd.url());
  auto d = make(etcd_config(etcd.url(), prefix, {{"canary_version", str("2.0")}}));
  for (int i = 1; i <= 3; ++i)
    REQUIRE(d->call(call("register", with(host("o-" + std::to_string(i), "10.0.4." + std::to_string(i), 80), "metadata",
                                          map({{"version", str("1.0")}}))))
                .ok());
  REQUIRE(d->call(call("register", with(host("o-4", "10.0.4.4", 80), "metadata", map({{"version", str("2.0")}})))).ok());

  auto weight = [&](const std::string& id) {
    return std::stod(value_of(raw, prefix + "/" + id)["metadata"]["weight"].get<std::string>());
  };
  plugins::Call w = call("weight", {{"canary", Value::percent(5)}}, "run:ramp.5");
  auto undo = d->undo_for(w);
  REQUIRE(d->call(w).ok());
  double canary = weight("o-4"), stable = weight("o-1");
  CHECK(canary / (canary + 3 * stable) == Approx(0.05));
  CHECK(weight("o-2") == stable);
  CHECK(d->call(w).replayed);

  REQUIRE(d->call(call("weight", {{"canary", Value::percent(50)}})).ok());
  CHECK(weight("o-4") / (weight("o-4") + 3 * weight("o-1")) == Approx(0.5));

  // The undo read before the first weight call: no instance had a weight then.
  REQUIRE(undo);
  CHECK(undo->args.at("canary").is_null());
  undo->timeout_ms = 5000;
  REQUIRE(d->call(*undo).ok());
  for (const char* id : {"o-1", "o-2", "o-3", "o-4"})
    CHECK_FALSE(value_of(raw, prefix + "/" + id)["metadata"].contains("weight"));

  // An undo read at 50% puts 50% back exactly.
  REQUIRE(d->call(call("weight", {{"canary", Value::percent(50)}})).ok());
  double w4 = weight("o-4");
  CHECK(apply_undo(*d, call("weight", {{"canary", Value::percent(100)}})).ok());
  CHECK(weight("o-4") == w4);

  auto bare = make(etcd_config(etcd.url(), prefix));
  Result r = bare->call(call("weight", {{"canary", Value::percent(5)}}));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("canary_version") != std::string::npos);
  auto none = make(etcd_config(etcd.url(), prefix, {{"canary_version", str("9.9")}}));
  r = none->call(call("weight", {{"canary", Value::percent(5)}}));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("no registered instance") != std::string::npos);
  r = d->call(call("weight", {{"canary", Value::percent(120)}}));
  CHECK(r.status == Result::Status::Failed);
}

TEST_CASE("etcd undo_for: every effect's compensation restores the state before it", "[etcd]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = fresh_prefix("undo");
  Raw raw(etcd.url());
  auto d = make(etcd_config(etcd.url(), prefix));
  REQUIRE(
      d->call(call("register", with(host("u-1", "10.0.5.1", 80), "metadata", map({{"version", str("1")}, {"weight", str("7")}}))))
          .ok());
  const std::string key = prefix + "/u-1";
  const json before = value_of(raw, key);

  CHECK(apply_undo(*d, call("tag", {{"instance", str("u-1")}, {"metadata", map({{"version", str("2")}, {"new", str("x")}})}}))
            .ok());
  CHECK(value_of(raw, key) == before);
  CHECK(apply_undo(*d, call("set_weight", {{"instance", str("u-1")}, {"weight", Value::number(1)}})).ok());
  CHECK(value_of(raw, key) == before);
  CHECK(apply_undo(*d, call("deregister", {{"instance", str("u-1")}})).ok());
  CHECK(value_of(raw, key) == before);
  CHECK(apply_undo(*d, call("disable", {{"instance", str("u-1")}})).ok());
  CHECK(value_of(raw, key) == before);
  CHECK(apply_undo(*d, call("pause_registration", {{"instance", str("u-1")}})).ok());
  CHECK_FALSE(raw.get("/gray/paused/undo/u-1"));
  CHECK(apply_undo(*d, call("register", host("u-2", "10.0.5.2", 80))).ok());
  CHECK_FALSE(registered(*d, "u-2"));

  // An agent that put the instance back between a drain's deregister and its pause: the pause
  // takes that registration out again.
  REQUIRE(d->call(call("deregister", {{"instance", str("u-1")}})).ok());
  raw.put(key, before.dump());
  REQUIRE(d->call(call("pause_registration", {{"instance", str("u-1")}})).ok());
  CHECK_FALSE(raw.get(key));
  CHECK(raw.get("/gray/paused/undo/u-1"));
  REQUIRE(d->call(call("resume_registration", {{"instance", str("u-1")}})).ok());
  REQUIRE(d->call(call("register", {{"instance", str("u-1")}})).ok());
  CHECK(value_of(raw, key) == before);

  // A call that would change nothing has nothing to undo.
  CHECK_FALSE(d->undo_for(call("resume_registration", {{"instance", str("u-1")}})));
  CHECK_FALSE(d->undo_for(call("deregister", {{"instance", str("u-9")}})));
}

TEST_CASE("etcd pause flag: the node's agent stays away while paused and comes back on resume", "[etcd][agent]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = fresh_prefix("agent");
  std::string python = testing::find_program("python3");
  REQUIRE_FALSE(python.empty());
  TempDir temp("gray-agent");
  const std::string& dir = temp.path;
  testing::write_file(dir + "/version", "1.0\n");
  testing::Process agent(
      {python, std::string(GRAY_SOURCE_DIR) + "/tests/agents/etcd_agent.py", "--endpoint", etcd.url(), "--prefix", prefix, "--id",
       "node-1", "--addr", "127.0.0.1:7001", "--version-file", dir + "/version", "--ttl", "3", "--interval", "0.2"},
      dir + "/agent.log");
  auto d = make(etcd_config(etcd.url(), prefix, {{"lease_ttl", Value::duration_ms(3000)}}));
  Raw raw(etcd.url());
  REQUIRE(wait_until([&] { return registered(*d, "node-1"); }, 5000) >= 0);

  // Deregistered but not paused: the agent puts it straight back (method 5's trap).
  REQUIRE(d->call(call("deregister", {{"instance", str("node-1")}})).ok());
  double back = wait_until([&] { return registered(*d, "node-1"); }, 3000);
  CHECK(back >= 0);

  // Deregistered and paused: it stays out.
  REQUIRE(d->call(call("deregister", {{"instance", str("node-1")}})).ok());
  REQUIRE(d->call(call("pause_registration", {{"instance", str("node-1")}})).ok());
  CHECK(raw.get("/gray/paused/agent/node-1"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK_FALSE(registered(*d, "node-1"));

  // The node is upgraded meanwhile; on resume the agent registers the new version.
  testing::write_file(dir + "/version", "2.0\n");
  double t0 = now_ms();
  REQUIRE(d->call(call("resume_registration", {{"instance", str("node-1")}})).ok());
  double came_back = wait_until([&] { return registered(*d, "node-1"); }, 3000);
  CHECK(came_back >= 0);
  CHECK(value_of(raw, prefix + "/node-1")["version"] == "2.0");
  std::cerr << "figure: agent (poll 0.2s) re-registered " << (now_ms() - t0)
            << " ms after resume_registration; after a plain deregister " << back << " ms\n";

  // gray restores from the parked copy: back onto the agent's own lease, which the agent kept
  // alive while paused, so the registration does not depend on gray.
  long long agent_lease = raw.get(prefix + "/node-1")->lease;
  REQUIRE(d->call(call("deregister", {{"instance", str("node-1")}})).ok());
  REQUIRE(d->call(call("pause_registration", {{"instance", str("node-1")}})).ok());
  REQUIRE(d->call(call("register", {{"instance", str("node-1")}, {"metadata", map({{"version", str("2.0")}})}})).ok());
  CHECK(raw.get(prefix + "/node-1")->lease == agent_lease);
  CHECK_FALSE(raw.get("/gray/leases/" + std::to_string(agent_lease)));
  REQUIRE(d->call(call("resume_registration", {{"instance", str("node-1")}})).ok());

  // A registration gray makes itself (the agent's lease gone) is on a lease of gray's, marked as
  // such; when the agent takes the key over, gray's lease is revoked.
  REQUIRE(d->call(call("deregister", {{"instance", str("node-1")}})).ok());
  REQUIRE(d->call(call("pause_registration", {{"instance", str("node-1")}})).ok());
  agent.stop(3000);  // revokes the agent's lease
  REQUIRE(d->call(call("register", {{"instance", str("node-1")}})).ok());
  long long gray_lease = raw.get(prefix + "/node-1")->lease;
  CHECK(gray_lease != agent_lease);
  CHECK(raw.get("/gray/leases/" + std::to_string(gray_lease)));
  agent = testing::Process(
      {python, std::string(GRAY_SOURCE_DIR) + "/tests/agents/etcd_agent.py", "--endpoint", etcd.url(), "--prefix", prefix, "--id",
       "node-1", "--addr", "127.0.0.1:7001", "--version-file", dir + "/version", "--ttl", "3", "--interval", "0.2"},
      dir + "/agent.log");
  REQUIRE(d->call(call("resume_registration", {{"instance", str("node-1")}})).ok());
  CHECK(wait_until(
            [&] {
              auto kv = raw.get(prefix + "/node-1");
              return kv && kv->lease != gray_lease;
            },
            3000) >= 0);
  // The keeper's next round (every lease_ttl/3) finds gray's lease holding only its marker.
  CHECK(wait_until([&] { return !raw.get("/gray/leases/" + std::to_string(gray_lease)); }, 3000) >= 0);

  agent.stop(3000);
  CHECK(wait_until([&] { return !registered(*d, "node-1"); }, 3000) >= 0);  // the agent revokes its lease on exit
}

TEST_CASE("etcd failures: down, garbage, slow, refused, bad configuration", "[etcd]") {
  SECTION("nobody listening") {
    int port = testing::free_port();
    auto d = make(etcd_config("http://127.0.0.1:" + std::to_string(port), "/ms/x"));
    Result r = d->call(call("register", host("a", "10.0.0.1", 80)));
    CHECK(r.status == Result::Status::Error);
    CHECK(r.message.find("cannot reach etcd") != std::string::npos);
    CHECK(r.message.find("register a") != std::string::npos);
    r = d->call(call("count"));
    CHECK(r.status == Result::Status::Error);
  }
  SECTION("an answer that is not the gateway's") {
    testing::HttpServer junk([](const testing::HttpRequest&) {
      testing::HttpReply reply;
      reply.body = "<html>hello</html>";
      reply.content_type = "text/html";
      return reply;
    });
    auto d = make(etcd_config(junk.url(), "/ms/x"));
    Result r = d->call(call("registered", {{"instance", str("a")}}));
    CHECK(r.status == Result::Status::Error);
    CHECK(r.message.find("not an etcd v3 JSON gateway reply") != std::string::npos);
    testing::HttpServer broken([](const testing::HttpRequest&) {
      testing::HttpReply reply;
      reply.status = 500;
      reply.body = "oops";
      return reply;
    });
    d = make(etcd_config(broken.url(), "/ms/x"));
    r = d->call(call("deregister", {{"instance", str("a")}}));
    CHECK(r.status == Result::Status::Error);
    CHECK(r.message.find("HTTP 500") != std::string::npos);
    testing::HttpServer odd([](const testing::HttpRequest&) {
      testing::HttpReply reply;
      reply.body = R"({"header":{},"kvs":[{"key":"!!!","value":"???"}]})";
      return reply;
    });
    d = make(etcd_config(odd.url(), "/ms/x"));
    r = d->call(call("count"));
    CHECK(r.status == Result::Status::Error);
    CHECK(r.message.find("base64") != std::string::npos);
  }
  SECTION("slower than the call's timeout") {
    testing::HttpServer slow([](const testing::HttpRequest&) {
      testing::HttpReply reply;
      reply.delay_ms = 1500;
      reply.body = "{}";
      return reply;
    });
    auto d = make(etcd_config(slow.url(), "/ms/x"));
    plugins::Call c = call("count");
    c.timeout_ms = 300;
    double t0 = now_ms();
    Result r = d->call(c);
    CHECK(r.status == Result::Status::Error);
    CHECK(now_ms() - t0 < 1500);
  }
  SECTION("bad configuration") {
    CHECK_THROWS_AS(make(etcd_config("127.0.0.1:2379", "/ms/x")), plugins::DriverError);
    CHECK_THROWS_AS(make(etcd_config("http://127.0.0.1:2379", "/")), plugins::DriverError);
    CHECK_THROWS_AS(make(etcd_config("http://127.0.0.1:2379", "/ms/x", {{"layout", str("eureka")}})), plugins::DriverError);
    CHECK_THROWS_AS(make(etcd_config("http://127.0.0.1:2379", "/ms/x", {{"control_prefix", str("/ms/x/ctl")}})),
                    plugins::DriverError);
    CHECK_THROWS_AS(make(etcd_config("http://127.0.0.1:2379", "/ms/x", {{"username", str("root")}})), plugins::DriverError);
  }
}

TEST_CASE("etcd authentication: token from user and password, never shown", "[etcd]") {
  EtcdServer etcd;
  std::string etcdctl = testing::find_program("etcdctl");
  REQUIRE_FALSE(etcdctl.empty());
  std::string cmd = "ETCDCTL_API=3 " + etcdctl + " --endpoints=" + etcd.url() +
                    " user add root:s3cret-pw >/dev/null 2>&1 && ETCDCTL_API=3 " + etcdctl + " --endpoints=" + etcd.url() +
                    " auth enable >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);

  auto d = make(etcd_config(etcd.url(), "/ms/auth", {{"username", str("root")}, {"password", Value::string("s3cret-pw", true)}}));
  Result r = d->call(call("register", host("a-1", "10.0.6.1", 80)));
  REQUIRE(r.status == Result::Status::Ok);
  CHECK(registered(*d, "a-1"));

  auto wrong =
      make(etcd_config(etcd.url(), "/ms/auth", {{"username", str("root")}, {"password", Value::string("nope-pw", true)}}));
  r = wrong->call(call("count"));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("authentication as root failed") != std::string::npos);
  CHECK(r.message.find("nope-pw") == std::string::npos);

  auto anonymous = make(etcd_config(etcd.url(), "/ms/auth"));
  r = anonymous->call(call("count"));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("set username and password") != std::string::npos);
}

TEST_CASE("etcd figures: call latency on loopback", "[etcd][figures]") {
  EtcdServer& etcd = shared_etcd();
  const std::string prefix = fresh_prefix("latency");
  auto d = make(etcd_config(etcd.url(), prefix));
  REQUIRE(d->call(call("register", host("f-1", "10.0.7.1", 80))).ok());
  const int n = 20;
  double reads = 0, writes = 0;
  for (int i = 0; i < n; ++i) {
    reads += d->call(call("registered", {{"instance", str("f-1")}})).elapsed_ms;
    Result r = d->call(call("tag", {{"instance", str("f-1")}, {"metadata", map({{"n", str(std::to_string(i))}})}}));
    REQUIRE(r.ok());
    writes += r.elapsed_ms;
  }
  std::cerr << "figure: etcd registered (1 range) " << reads / n << " ms, tag (3 ranges + 1 txn) " << writes / n
            << " ms on average\n";
  CHECK(writes / n < 200);
}
