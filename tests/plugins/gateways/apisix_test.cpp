// The apisix driver against a fake of the Admin API v3 that follows the documented shapes
// (APISIX itself cannot be installed here).
#include <catch2/catch.hpp>

#include "plugins/apisix/apisix.h"
#include "tests/plugins/gateways/apisix_fake.h"
#include "tests/plugins/gateways/gateway_test_util.h"

using namespace gray;
using namespace gray::testing;
using json = nlohmann::json;
using plugins::Result;
using Status = plugins::Result::Status;

namespace {

const char* kKey = "edd1c9f034335f136f87ad84b625c8f1";

struct ApisixLab {
  ApisixFake fake{kKey};
  ApisixLab() {
    fake.put("upstreams", "checkout-stable", {{"type", "roundrobin"}, {"nodes", {{"10.0.0.1:80", 1}}}});
    fake.put("upstreams", "checkout-canary", {{"type", "roundrobin"}, {"nodes", {{"10.0.0.2:80", 1}}}});
    // A route with another plugin and a rule of its own that gray must keep.
    fake.put("routes", "checkout",
             {{"uri", "/orders/*"},
              {"upstream_id", "checkout-stable"},
              {"plugins",
               {{"limit-count", {{"count", 100}, {"time_window", 60}}},
                {"traffic-split",
                 {{"rules", json::array({{{"match", json::array({{{"vars", json::array({json::array({"arg_beta", "==", "1"})})}}})},
                                          {"weighted_upstreams", json::array({{{"upstream_id", "checkout-canary"}}})}}})}}}}}});
  }
  std::unique_ptr<plugins::Driver> driver(const std::string& key = kKey, const std::string& route = "checkout") {
    Value cfg = Value::of_map({{"admin_url", Value::string(fake.url())},
                               {"api_key", Value::string(key, true)},
                               {"route_id", Value::string(route)},
                               {"stable_upstream", Value::string("checkout-stable")},
                               {"canary_upstream", Value::string("checkout-canary")}});
    return plugins::make_apisix("api", cfg, quiet_env());
  }
  json rules() { return fake.get("routes", "checkout")["plugins"]["traffic-split"]["rules"]; }
};

}  // namespace

TEST_CASE("apisix: weight writes a weighted rule and keeps the route's other plugins and rules", "[apisix]") {
  ApisixLab lab;
  auto gw = lab.driver();
  Result r = gw->call(weight_call(10));
  INFO(r.message);
  REQUIRE(r.ok());
  json rules = lab.rules();
  REQUIRE(rules.size() == 2);
  CHECK(rules[0]["match"][0]["vars"][0][0] == "arg_beta");
  CHECK(rules[1]["weighted_upstreams"] == json::parse(R"([{"upstream_id":"checkout-canary","weight":10},{"weight":90}])"));
  CHECK(lab.fake.get("routes", "checkout")["plugins"].contains("limit-count"));
  CHECK(gw->call(gw_call("weight_of", {{"group", Value::string("canary")}})).value.num == Approx(10));

  auto undo = gw->undo_for(weight_call(40, "k2"));
  REQUIRE(undo);
  CHECK(undo->args.at("canary").num == Approx(10));
  REQUIRE(gw->call(weight_call(12.5, "k3")).ok());
  CHECK(lab.rules()[1]["weighted_upstreams"][0]["weight"] == 1250);
  CHECK(lab.rules().size() == 2);  // replaced in place, not added
}

TEST_CASE("apisix: re-applying the same weight writes nothing", "[apisix]") {
  ApisixLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(30, "same")).ok());
  size_t puts = 0;
  for (const auto& req : lab.fake.requests()) puts += req.method == "PUT";
  Result again = gw->call(weight_call(30, "same"));
  CHECK(again.ok());
  CHECK(again.replayed);
  size_t puts_after = 0;
  for (const auto& req : lab.fake.requests()) puts_after += req.method == "PUT";
  CHECK(puts_after == puts);
}

TEST_CASE("apisix: routes become match rules before the weighted rule, and clear removes only them", "[apisix]") {
  ApisixLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(5)).ok());
  REQUIRE(gw->call(header_route("X-User", "==", "qa-1", "canary", "r1")).ok());
  REQUIRE(gw->call(gw_call("route", {{"match", Value::string("ip")}, {"value", strings({"10.0.0.0/8"})}, {"target", Value::string("stable")}}, "r2")).ok());
  json rules = lab.rules();
  REQUIRE(rules.size() == 4);
  CHECK(rules[1] == json::parse(R"({"match":[{"vars":[["http_x_user","==","qa-1"]]}],"weighted_upstreams":[{"upstream_id":"checkout-canary"}]})"));
  CHECK(rules[2]["match"][0]["vars"][0] == json::parse(R"(["remote_addr","ipmatch",["10.0.0.0/8"]])"));
  CHECK_FALSE(rules[3].contains("match"));  // the weighted rule stays last

  Result cleared = gw->call(gw_call("clear_routes", {}, "c"));
  REQUIRE(cleared.ok());
  CHECK(lab.rules().size() == 2);  // the operator's own rule and the weighted one
  REQUIRE(cleared.undo);
  REQUIRE(gw->call(*cleared.undo).ok());
  CHECK(lab.rules() == rules);
}

TEST_CASE("apisix: a regular expression route uses ~~", "[apisix]") {
  ApisixLab lab;
  auto gw = lab.driver();
  Result r = gw->call(header_route("X-User", "~", "^qa-", "canary", "rx"));
  REQUIRE(r.ok());
  CHECK(lab.rules()[1]["match"][0]["vars"][0] == json::parse(R"(["http_x_user","~~","^qa-"])"));
  REQUIRE(r.undo);
  CHECK(r.undo->op == "unroute");
  REQUIRE(gw->call(*r.undo).ok());
  CHECK(lab.rules().size() == 1);
}

TEST_CASE("apisix: a route changed by someone else meanwhile is read again", "[apisix]") {
  ApisixLab lab;
  lab.fake.on_route_get = [&](int n) {
    if (n == 2) lab.fake.put("routes", "checkout", [&] { json v = lab.fake.get("routes", "checkout"); v["desc"] = "edited"; return v; }());
  };
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(20)).ok());
  CHECK(lab.fake.get("routes", "checkout")["desc"] == "edited");  // their change survived
  CHECK(lab.rules().size() == 2);
}

TEST_CASE("apisix: a bad key, a missing route or upstream are Failed; the key never shows", "[apisix]") {
  ApisixLab lab;
  Result bad = lab.driver("wrong-key-123")->call(weight_call(10));
  CHECK(bad.status == Status::Failed);
  CHECK(bad.message.find("wrong apikey") != std::string::npos);
  CHECK(bad.message.find("wrong-key-123") == std::string::npos);

  Result missing = lab.driver(kKey, "nope")->call(weight_call(10));
  CHECK(missing.status == Status::Failed);
  CHECK(missing.message.find("does not exist") != std::string::npos);

  Result unsupported = lab.driver()->call(server_call("drain", "10.0.0.1:80"));
  CHECK(unsupported.status == Status::Failed);
  CHECK(unsupported.message.find("not supported by the apisix driver") != std::string::npos);
}

TEST_CASE("apisix: an unreachable Admin API is an Error", "[apisix]") {
  Value cfg = Value::of_map({{"admin_url", Value::string("http://127.0.0.1:1")}, {"api_key", Value::string(kKey, true)},
                             {"route_id", Value::string("r")}, {"stable_upstream", Value::string("s")}, {"canary_upstream", Value::string("c")}});
  plugins::Call c = weight_call(10);
  c.timeout_ms = 2000;
  Result r = plugins::make_apisix("api", cfg, quiet_env())->call(c);
  CHECK(r.status == Status::Error);
  CHECK(r.message.find(kKey) == std::string::npos);
}
