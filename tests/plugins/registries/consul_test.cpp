// The Consul registry driver against a fake agent that follows the documented HTTP API (no Consul
// can be installed here): tests/plugins/registries/consul_fake.h.
#include "plugins/consul/consul.h"

#include <catch2/catch.hpp>
#include <iostream>

#include "tests/plugins/registries/consul_fake.h"
#include "tests/plugins/registries/support.h"

using namespace gray;
using namespace gray::regtest;
using nlohmann::json;
using plugins::Result;

namespace {

Value consul_config(const ConsulFake& fake, std::map<std::string, Value> extra = {}) {
  extra["address"] = str(fake.url());
  extra["service"] = str("web");
  return map(std::move(extra));
}

std::unique_ptr<plugins::Driver> make(const Value& config, std::vector<std::string>* notes = nullptr) {
  return plugins::make_consul("names", config, test_env(notes));
}

bool registered(plugins::Driver& d, const std::string& name) {
  Result r = d.call(call("registered", {{"instance", str(name)}}));
  REQUIRE(r.status == Result::Status::Ok);
  return r.value.flag;
}

json web(const std::string& id, const std::string& addr, int port, const std::string& version) {
  return json{{"ID", id},           {"Name", "web"}, {"Address", addr}, {"Port", port}, {"Meta", {{"version", version}}},
              {"Tags", {"primary"}}};
}

}  // namespace

TEST_CASE("consul: register, list, deregister, register back", "[consul]") {
  ConsulFake fake({});
  auto d = make(consul_config(fake));
  Result r = d->call(
      call("register", with(host("web-1", "10.2.0.1", 8000, {{"version", str("1.0")}}), "metadata", map({{"zone", str("a")}}))));
  REQUIRE(r.status == Result::Status::Ok);
  auto def = fake.service("web-1");
  REQUIRE(def);
  CHECK((*def)["Service"] == "web");
  CHECK((*def)["Address"] == "10.2.0.1");
  CHECK((*def)["Port"] == 8000);
  CHECK((*def)["Meta"]["version"] == "1.0");
  CHECK((*def)["Meta"]["zone"] == "a");
  CHECK((*def)["Tags"] == json::array({"version=1.0"}));
  CHECK(registered(*d, "web-1"));
  CHECK(registered(*d, "10.2.0.1:8000"));
  CHECK(d->call(call("count", {{"version", str("1.0")}})).value.num == 1);

  r = d->call(call("deregister", {{"instance", str("web-1")}}));
  REQUIRE(r.ok());
  CHECK_FALSE(fake.service("web-1"));
  CHECK(d->call(call("deregister", {{"instance", str("web-1")}})).replayed);
  REQUIRE(r.undo);
  // The undo carries the whole definition: it works from the journal after a restart.
  d = make(consul_config(fake));
  r.undo->timeout_ms = 5000;
  REQUIRE(d->call(*r.undo).ok());
  def = fake.service("web-1");
  REQUIRE(def);
  CHECK((*def)["Meta"]["zone"] == "a");
  CHECK((*def)["Address"] == "10.2.0.1");
  CHECK(d->call(call("register", {{"instance", str("web-1")}})).replayed);
}

TEST_CASE("consul: maintenance is the drain; weights, tags and meta", "[consul]") {
  ConsulFake fake({});
  fake.put(web("web-2", "10.2.0.2", 8000, "1.0"));
  auto d = make(consul_config(fake));
  auto app = host("node-2", "10.2.0.2", 8000);

  Result r = d->call(call("disable", app));
  REQUIRE(r.ok());
  CHECK(fake.maintenance("web-2") == std::optional<std::string>("gray: disabled"));
  CHECK_FALSE(registered(*d, "web-2"));  // out of ?passing
  CHECK(d->call(call("disable", app)).replayed);
  REQUIRE(d->call(call("enable", app)).ok());
  CHECK_FALSE(fake.maintenance("web-2"));
  CHECK(registered(*d, "web-2"));

  r = d->call(call("set_weight", with(app, "weight", Value::number(10))));
  REQUIRE(r.ok());
  CHECK((*fake.service("web-2"))["Weights"]["Passing"] == 10);
  CHECK((*fake.service("web-2"))["Meta"]["version"] == "1.0");
  CHECK(r.undo->args.at("weight").num == 1);
  r = d->call(call("set_weight", with(app, "weight", Value::number(0))));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("1 to 65535") != std::string::npos);

  r = d->call(call("tag", with(app, "metadata", map({{"version", str("2.0")}}))));
  REQUIRE(r.ok());
  auto def = *fake.service("web-2");
  CHECK(def["Meta"]["version"] == "2.0");
  CHECK(def["Tags"] == json::array({"primary", "version=2.0"}));
  CHECK(def["Weights"]["Passing"] == 10);
  r.undo->timeout_ms = 5000;
  REQUIRE(d->call(*r.undo).ok());
  CHECK((*fake.service("web-2"))["Meta"]["version"] == "1.0");

  // A Meta key Consul refuses: its 400 text reaches the user.
  r = d->call(call("tag", with(app, "metadata", map({{"consul-x", str("1")}}))));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("reserved for internal use") != std::string::npos);
}

TEST_CASE("consul: a service on another node's agent", "[consul]") {
  ConsulFake catalog({});
  catalog.put_remote(web("web-9", "10.2.0.9", 8000, "1.0"));
  auto d = make(consul_config(catalog));
  Result r = d->call(call("deregister", host("node-9", "10.2.0.9", 8000)));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("consul_agent") != std::string::npos);

  ConsulFake node_agent({});
  node_agent.put(web("web-9", "10.2.0.9", 8000, "1.0"));
  r = d->call(call("disable", host("node-9", "10.2.0.9", 8000, {{"consul_agent", str(node_agent.url())}})));
  REQUIRE(r.ok());
  CHECK(node_agent.maintenance("web-9"));
}

TEST_CASE("consul pause: a re-registration while paused is held in maintenance until resume", "[consul]") {
  ConsulFake fake({});
  fake.put(web("web-3", "10.2.0.3", 8000, "1.0"));
  auto d = make(consul_config(fake));
  auto app = host("node-3", "10.2.0.3", 8000);
  REQUIRE(d->call(call("deregister", app)).ok());
  REQUIRE(d->call(call("pause_registration", app)).ok());
  fake.put(web("web-3", "10.2.0.3", 8000, "2.0"));  // the node registers itself again
  double held = wait_until([&] { return fake.maintenance("web-3").has_value(); }, 3000);
  CHECK(held >= 0);
  CHECK(fake.maintenance("web-3") == std::optional<std::string>("gray: registration paused"));
  REQUIRE(d->call(call("resume_registration", app)).ok());
  CHECK_FALSE(fake.maintenance("web-3"));
  CHECK(registered(*d, "node-3"));
  std::cerr << "figure: consul re-registration held out after " << held << " ms\n";
}

TEST_CASE("consul weight: Weights.Passing split, maintenance for a group at 0%, undo", "[consul]") {
  ConsulFake fake({});
  fake.put(web("w-1", "10.2.1.1", 80, "1.0"));
  fake.put(web("w-2", "10.2.1.2", 80, "1.0"));
  fake.put(web("w-3", "10.2.1.3", 80, "2.0"));
  auto d = make(consul_config(fake, {{"canary_version", str("2.0")}}));
  auto passing = [&](const std::string& id) { return (*fake.service(id))["Weights"]["Passing"].get<double>(); };
  plugins::Call w = call("weight", {{"canary", Value::percent(20)}});
  auto undo = d->undo_for(w);
  REQUIRE(d->call(w).ok());
  CHECK(passing("w-3") / (passing("w-3") + 2 * passing("w-1")) == Approx(0.2));
  REQUIRE(d->call(call("weight", {{"canary", Value::percent(0)}})).ok());
  CHECK(fake.maintenance("w-3") == std::optional<std::string>("gray: weight 0%"));
  CHECK_FALSE(fake.maintenance("w-1"));
  REQUIRE(d->call(call("weight", {{"canary", Value::percent(50)}})).ok());
  CHECK_FALSE(fake.maintenance("w-3"));
  CHECK(passing("w-3") / (passing("w-3") + 2 * passing("w-1")) == Approx(0.5));
  REQUIRE(undo);
  undo->timeout_ms = 5000;
  REQUIRE(d->call(*undo).ok());
  for (const char* id : {"w-1", "w-2", "w-3"}) CHECK(passing(id) == 1);
}

TEST_CASE("consul tokens and bad answers", "[consul]") {
  ConsulFake::Options o;
  o.token = "acl-secret-token";
  ConsulFake fake(o);
  fake.put(web("t-1", "10.2.2.1", 80, "1"));
  auto d = make(consul_config(fake, {{"token", Value::string("acl-secret-token", true)}}));
  CHECK(registered(*d, "t-1"));
  CHECK(fake.requests().back().header("x-consul-token") == "acl-secret-token");
  auto wrong = make(consul_config(fake, {{"token", Value::string("not-the-token", true)}}));
  Result r = wrong->call(call("disable", {{"instance", str("t-1")}}));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("permission denied") != std::string::npos);
  CHECK(r.message.find("not-the-token") == std::string::npos);

  testing::HttpServer junk([](const testing::HttpRequest&) {
    testing::HttpReply reply;
    reply.body = "{\"not\":\"a list\"}";
    return reply;
  });
  auto bad = make(map({{"address", str(junk.url())}, {"service", str("web")}}));
  r = bad->call(call("count"));
  CHECK(r.status == Result::Status::Error);
  CHECK(r.message.find("did not answer a list") != std::string::npos);
  auto down = make(map({{"address", str("http://127.0.0.1:" + std::to_string(testing::free_port()))}, {"service", str("web")}}));
  r = down->call(call("registered", {{"instance", str("x")}}));
  CHECK(r.status == Result::Status::Error);
  CHECK_THROWS_AS(make(map({{"address", str("127.0.0.1:8500")}, {"service", str("web")}})), plugins::DriverError);
}
