// The envoy driver against a fake of Envoy's admin interface that follows the documented
// shapes (Envoy itself cannot be installed here).
#include <catch2/catch.hpp>

#include "plugins/envoy/envoy.h"
#include "tests/plugins/gateways/envoy_fake.h"
#include "tests/plugins/gateways/gateway_test_util.h"

using namespace gray;
using namespace gray::testing;
using json = nlohmann::json;
using plugins::Result;
using Status = plugins::Result::Status;

namespace {

std::unique_ptr<plugins::Driver> envoy(const EnvoyFake& fake, bool clusters = true) {
  Map m = {{"admin_url", Value::string(fake.url())}, {"runtime_key", Value::string("routing.traffic_split.checkout")}};
  if (clusters) {
    m["stable"] = strings({"checkout_v1"});
    m["canary"] = strings({"checkout_v2"});
  }
  return plugins::make_envoy("mesh", Value::of_map(m), quiet_env());
}

}  // namespace

TEST_CASE("envoy: weight sets the runtime weights of the canary and stable clusters", "[envoy]") {
  EnvoyFake fake;
  auto gw = envoy(fake);
  // Before any override the route's configured weights apply: undo removes gray's overrides.
  auto first_undo = gw->undo_for(weight_call(20));
  REQUIRE(first_undo);
  CHECK(first_undo->op == "reset_weight");
  CHECK(gw->call(gw_call("weight_of", {{"group", Value::string("canary")}})).status == Status::NoData);

  Result r = gw->call(weight_call(20));
  REQUIRE(r.ok());
  CHECK(fake.final_value("routing.traffic_split.checkout.checkout_v2") == "25");
  CHECK(fake.final_value("routing.traffic_split.checkout.checkout_v1") == "100");
  CHECK(gw->call(gw_call("weight_of", {{"group", Value::string("canary")}})).value.num == Approx(20));
  auto undo = gw->undo_for(weight_call(50, "k2"));
  REQUIRE(undo);
  CHECK(undo->args.at("canary").num == Approx(20));

  Result again = gw->call(weight_call(20));
  CHECK(again.replayed);
  REQUIRE(gw->call(*first_undo).ok());
  CHECK(fake.final_value("routing.traffic_split.checkout.checkout_v2").empty());
}

TEST_CASE("envoy: without cluster lists the runtime key is a runtime_fraction percentage", "[envoy]") {
  EnvoyFake fake;
  fake.set_static("routing.traffic_split.checkout", "0");
  auto gw = envoy(fake, false);
  Result r = gw->call(weight_call(12.4));
  REQUIRE(r.ok());
  CHECK(fake.final_value("routing.traffic_split.checkout") == "12");
  CHECK(r.value.num == Approx(12));
  CHECK(r.message.find("closest") != std::string::npos);
  CHECK(gw->undo_for(weight_call(30))->args.at("canary").num == Approx(12));
}

TEST_CASE("envoy: no admin layer is Failed with a hint; an unreachable admin is an Error", "[envoy]") {
  EnvoyFake fake(false);
  Result r = envoy(fake)->call(weight_call(10));
  CHECK(r.status == Status::Failed);
  CHECK(r.message.find("No admin layer specified") != std::string::npos);
  CHECK(r.message.find("admin_layer") != std::string::npos);

  Value cfg = Value::of_map({{"admin_url", Value::string("http://127.0.0.1:1")}, {"runtime_key", Value::string("k")}});
  plugins::Call c = weight_call(10);
  c.timeout_ms = 2000;
  CHECK(plugins::make_envoy("mesh", cfg, quiet_env())->call(c).status == Status::Error);
}

TEST_CASE("envoy: sessions and connections come from the host's stats in /clusters", "[envoy]") {
  EnvoyFake fake;
  fake.set_clusters(json::parse(R"({"cluster_statuses":[{"name":"checkout_v2","host_statuses":[
    {"address":{"socket_address":{"address":"10.0.0.7","port_value":8080}},
     "stats":[{"name":"cx_active","value":"4"},{"name":"rq_active","value":"2"}],
     "health_status":{"eds_health_status":"HEALTHY"},"weight":1}]}]})"));
  auto gw = envoy(fake);
  CHECK(gw->call(gw_call("connections", {{"server", Value::string("10.0.0.7:8080")}})).value.num == 4);
  plugins::Call by_host = gw_call("sessions", {{"server", Value::string("app-7")}, {"addr", Value::string("10.0.0.7")}, {"port", Value::number(8080)}});
  CHECK(gw->call(by_host).value.num == 2);
  CHECK(gw->call(gw_call("sessions", {{"server", Value::string("10.0.0.8:8080")}})).status == Status::Failed);
}

TEST_CASE("envoy: per-server drain and routes are refused plainly", "[envoy]") {
  EnvoyFake fake;
  auto gw = envoy(fake);
  Result r = gw->call(server_call("drain", "10.0.0.7:8080"));
  CHECK(r.status == Status::Failed);
  CHECK(r.message.find("not supported by the envoy driver") != std::string::npos);
  CHECK(gw->call(header_route("X-User", "==", "qa")).status == Status::Failed);
  CHECK_THROWS_WITH(plugins::make_envoy("mesh", Value::of_map({{"admin_url", Value::string(fake.url())}, {"runtime_key", Value::string("k")},
                                                               {"canary", strings({"v2"})}}), quiet_env()),
                    Catch::Contains("both 'stable' and 'canary'"));
}
