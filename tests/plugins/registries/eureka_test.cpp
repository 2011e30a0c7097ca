// The Eureka registry driver against a fake server that follows the documented REST operations
// (no Eureka server can be installed here): tests/plugins/registries/eureka_fake.h.
#include "plugins/eureka/eureka.h"

#include <catch2/catch.hpp>
#include <iostream>

#include "tests/plugins/registries/eureka_fake.h"
#include "tests/plugins/registries/support.h"

using namespace gray;
using namespace gray::regtest;
using nlohmann::json;
using plugins::Result;

namespace {

Value eureka_config(const EurekaFake& fake, std::map<std::string, Value> extra = {}) {
  extra["url"] = str(fake.url());
  extra["app"] = str("orders");
  return map(std::move(extra));
}

std::unique_ptr<plugins::Driver> make(const Value& config) { return plugins::make_eureka("names", config, test_env()); }

bool registered(plugins::Driver& d, const std::string& name) {
  Result r = d.call(call("registered", {{"instance", str(name)}}));
  REQUIRE(r.status == Result::Status::Ok);
  return r.value.flag;
}

// What a node's Eureka client registers.
json client_doc(const std::string& id, const std::string& ip, int port, const std::string& version) {
  return json{{"instanceId", id},
              {"hostName", ip},
              {"app", "ORDERS"},
              {"ipAddr", ip},
              {"status", "UP"},
              {"port", {{"$", port}, {"@enabled", "true"}}},
              {"dataCenterInfo", {{"@class", "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"}, {"name", "MyOwn"}}},
              {"metadata", {{"version", version}}}};
}

}  // namespace

TEST_CASE("eureka: register (minimal body), list, deregister, register back; /eureka/v2 base", "[eureka]") {
  EurekaFake::Options o;
  o.base = "/eureka/v2";
  EurekaFake fake(o);
  auto d = make(eureka_config(fake));
  Result r = d->call(
      call("register", with(host("ord-1", "10.3.0.1", 8080, {{"version", str("1.0")}}), "metadata", map({{"zone", str("a")}}))));
  REQUIRE(r.status == Result::Status::Ok);
  auto doc = fake.instance("ORDERS", "ord-1");
  REQUIRE(doc);
  CHECK((*doc)["app"] == "ORDERS");
  CHECK((*doc)["dataCenterInfo"]["@class"] == "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo");
  CHECK((*doc)["port"]["$"] == 8080);
  CHECK((*doc)["metadata"]["version"] == "1.0");
  CHECK((*doc)["metadata"]["zone"] == "a");
  auto reqs = fake.requests();
  CHECK(reqs.front().path == "/eureka/v2/apps/ORDERS");
  CHECK(reqs.front().header("accept") == "application/json");

  CHECK(registered(*d, "ord-1"));
  CHECK(registered(*d, "10.3.0.1:8080"));
  CHECK(d->call(call("count", {{"version", str("1.0")}})).value.num == 1);

  r = d->call(call("deregister", {{"instance", str("ord-1")}}));
  REQUIRE(r.ok());
  CHECK_FALSE(fake.instance("ORDERS", "ord-1"));
  CHECK(d->call(call("deregister", {{"instance", str("ord-1")}})).replayed);
  REQUIRE(d->call(call("register", {{"instance", str("ord-1")}})).ok());
  CHECK((*fake.instance("ORDERS", "ord-1"))["metadata"]["zone"] == "a");
  CHECK(d->call(call("register", {{"instance", str("ord-1")}})).replayed);

  // The undo of a deregistration works from the journal alone, in a fresh driver.
  r = d->call(call("deregister", {{"instance", str("ord-1")}}));
  d = make(eureka_config(fake));
  r.undo->timeout_ms = 5000;
  REQUIRE(d->call(*r.undo).ok());
  CHECK((*fake.instance("ORDERS", "ord-1"))["metadata"]["zone"] == "a");
}

TEST_CASE("eureka: OUT_OF_SERVICE is the drain; metadata for tags and weights", "[eureka]") {
  EurekaFake::Options o;
  o.single_as_object = true;
  EurekaFake fake(o);
  fake.put("orders", client_doc("10.3.0.2:orders:8080", "10.3.0.2", 8080, "1.0"));
  auto d = make(eureka_config(fake));
  auto app = host("node-2", "10.3.0.2", 8080);

  Result r = d->call(call("disable", app));
  REQUIRE(r.ok());
  CHECK((*fake.instance("ORDERS", "10.3.0.2:orders:8080"))["status"] == "OUT_OF_SERVICE");
  CHECK_FALSE(registered(*d, "node-2"));
  CHECK(d->call(call("disable", app)).replayed);
  REQUIRE(d->call(call("enable", app)).ok());
  CHECK((*fake.instance("ORDERS", "10.3.0.2:orders:8080"))["status"] == "UP");
  CHECK(registered(*d, "node-2"));

  r = d->call(call("set_weight", with(app, "weight", Value::number(5))));
  REQUIRE(r.ok());
  CHECK((*fake.instance("ORDERS", "10.3.0.2:orders:8080"))["metadata"]["weight"] == "5");
  CHECK(d->call(call("set_weight", with(app, "weight", Value::number(0)))).status == Result::Status::Failed);

  r = d->call(call("tag", with(app, "metadata", map({{"version", str("2.0")}, {"lane", str("gray")}}))));
  REQUIRE(r.ok());
  auto md = (*fake.instance("ORDERS", "10.3.0.2:orders:8080"))["metadata"];
  CHECK(md["version"] == "2.0");
  CHECK(md["lane"] == "gray");
  CHECK(d->call(call("count", {{"version", str("2.0")}})).value.num == 1);
  // Eureka never removes a metadata key: the undo empties the one the tag added.
  r.undo->timeout_ms = 5000;
  REQUIRE(d->call(*r.undo).ok());
  md = (*fake.instance("ORDERS", "10.3.0.2:orders:8080"))["metadata"];
  CHECK(md["version"] == "1.0");
  CHECK(md["lane"] == "");
}

TEST_CASE("eureka pause: the node's client registers again; gray holds it OUT_OF_SERVICE until resume", "[eureka]") {
  EurekaFake fake({});
  const std::string id = "10.3.0.3:orders:8080";
  fake.put("orders", client_doc(id, "10.3.0.3", 8080, "1.0"));
  auto d = make(eureka_config(fake));
  auto app = host("node-3", "10.3.0.3", 8080);
  REQUIRE(d->call(call("deregister", app)).ok());
  REQUIRE(d->call(call("pause_registration", app)).ok());
  fake.put("orders", client_doc(id, "10.3.0.3", 8080, "2.0"));  // its next heartbeat got 404: it registers again
  double held = wait_until(
      [&] {
        auto doc = fake.instance("ORDERS", id);
        return doc && (*doc)["status"] == "OUT_OF_SERVICE";
      },
      3000);
  CHECK(held >= 0);
  CHECK_FALSE(registered(*d, "node-3"));
  REQUIRE(d->call(call("resume_registration", app)).ok());
  CHECK((*fake.instance("ORDERS", id))["status"] == "UP");
  CHECK(registered(*d, "node-3"));
  std::cerr << "figure: eureka re-registration held out after " << held << " ms\n";
}

TEST_CASE("eureka weight: metadata weights, OUT_OF_SERVICE for a group at 0%, undo", "[eureka]") {
  EurekaFake fake({});
  fake.put("orders", client_doc("a", "10.3.1.1", 80, "1.0"));
  fake.put("orders", client_doc("b", "10.3.1.2", 80, "1.0"));
  fake.put("orders", client_doc("c", "10.3.1.3", 80, "2.0"));
  auto d = make(eureka_config(fake, {{"canary", list({"c"})}}));
  auto weight = [&](const std::string& id) {
    return std::stod((*fake.instance("ORDERS", id))["metadata"]["weight"].get<std::string>());
  };
  plugins::Call w = call("weight", {{"canary", Value::percent(25)}});
  auto undo = d->undo_for(w);
  REQUIRE(d->call(w).ok());
  CHECK(weight("c") / (weight("c") + 2 * weight("a")) == Approx(0.25));
  REQUIRE(d->call(call("weight", {{"canary", Value::percent(0)}})).ok());
  CHECK((*fake.instance("ORDERS", "c"))["status"] == "OUT_OF_SERVICE");
  CHECK(d->call(call("count")).value.num == 2);
  REQUIRE(d->call(call("weight", {{"canary", Value::percent(50)}})).ok());
  CHECK((*fake.instance("ORDERS", "c"))["status"] == "UP");
  CHECK(weight("c") / (weight("c") + 2 * weight("a")) == Approx(0.5));
  REQUIRE(undo);
  CHECK(undo->args.at("canary").is_null());  // nobody had a weight before
  undo->timeout_ms = 5000;
  REQUIRE(d->call(*undo).ok());
  for (const char* id : {"a", "b", "c"}) CHECK((*fake.instance("ORDERS", id))["metadata"]["weight"] == "");
}

TEST_CASE("eureka heartbeats: renewed while the driver lives, registered again after a lapse", "[eureka]") {
  EurekaFake fake({});
  auto d = make(eureka_config(fake, {{"heartbeat", Value::duration_ms(1000)}}));
  REQUIRE(d->call(call("register", host("hb-1", "10.3.2.1", 80))).ok());
  CHECK((*fake.instance("ORDERS", "hb-1"))["leaseInfo"]["renewalIntervalInSecs"] == 1);
  CHECK(wait_until([&] { return fake.renewals("ORDERS", "hb-1") >= 2; }, 4000) >= 0);
  fake.drop("ORDERS", "hb-1");
  CHECK(wait_until([&] { return fake.instance("ORDERS", "hb-1").has_value(); }, 3000) >= 0);
}

TEST_CASE("eureka bad answers and configuration", "[eureka]") {
  EurekaFake fake({});
  fake.put("orders", client_doc("x", "10.3.3.1", 80, "1"));
  // Without the JSON Accept header the server would answer XML; the driver always asks for JSON.
  auto d = make(eureka_config(fake));
  CHECK(registered(*d, "x"));

  testing::HttpServer xml([](const testing::HttpRequest&) {
    testing::HttpReply r;
    r.content_type = "application/xml";
    r.body = "<applications/>";
    return r;
  });
  auto bad = make(map({{"url", str(xml.url() + "/eureka")}, {"app", str("orders")}}));
  Result r = bad->call(call("count"));
  CHECK(r.status == Result::Status::Error);
  CHECK(r.message.find("not Eureka JSON") != std::string::npos);

  // HTTP Basic credentials in the URL are sent, and shown nowhere.
  auto basic = make(map({{"url", str("http://gray:basic-pw-9@127.0.0.1:" + fake.url().substr(fake.url().rfind(':') + 1))},
                         {"app", str("orders")}}));
  CHECK(registered(*basic, "x"));
  CHECK(fake.requests().back().header("authorization").rfind("Basic ", 0) == 0);
  r = basic->call(call("tag", with(host("nobody", "10.9.9.9", 1), "metadata", map({{"a", str("b")}}))));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("basic-pw-9") == std::string::npos);

  auto down = make(map({{"url", str("http://gray:basic-pw-9@127.0.0.1:" + std::to_string(testing::free_port()) + "/eureka")},
                        {"app", str("orders")}}));
  r = down->call(call("deregister", host("x", "10.3.3.1", 80)));
  CHECK(r.status == Result::Status::Error);
  CHECK(r.message.find("cannot reach") != std::string::npos);
  CHECK(r.message.find("basic-pw-9") == std::string::npos);
  CHECK_THROWS_AS(make(map({{"url", str("eureka.local")}, {"app", str("orders")}})), plugins::DriverError);
  CHECK_THROWS_AS(make(eureka_config(fake, {{"heartbeat", Value::duration_ms(100)}})), plugins::DriverError);
}
