// What the gateway drivers share: weight splits, address ranges, routing rules, and the files
// and map entries they write (no server needed).
#include <catch2/catch.hpp>

#include <regex>

#include "plugins/gateway/common.h"
#include "plugins/haproxy/haproxy_text.h"
#include "plugins/nginx/nginx_conf.h"
#include "tests/plugins/gateways/gateway_test_util.h"

using namespace gray;
using namespace gray::plugins;

TEST_CASE("gateways: weight splits are exact where integers allow, and closest otherwise", "[gateway-common]") {
  gateway::Split s = gateway::best_split(1, 2, 20, 256);  // one canary server, two stable
  CHECK(s.exact);
  CHECK(s.canary == 50);
  CHECK(s.stable == 100);
  CHECK(gateway::best_split(2, 2, 0, 256).canary == 0);
  CHECK(gateway::best_split(2, 2, 100, 256).stable == 0);
  gateway::Split third = gateway::best_split(1, 1, 100.0 / 3, 256);
  CHECK(third.exact);  // 1:2
  gateway::Split tiny = gateway::best_split(2, 2, 0.1, 256);
  CHECK_FALSE(tiny.exact);
  CHECK(tiny.share == Approx(100.0 / 257));
}

TEST_CASE("gateways: IPv4 ranges become patterns matching exactly their addresses", "[gateway-common]") {
  auto matches = [](const std::string& cidr, const std::string& ip) {
    gateway::Cidr c;
    std::string why;
    REQUIRE(gateway::parse_cidr(cidr, c, why));
    return std::regex_match(ip, std::regex(gateway::ipv4_regex(c)));
  };
  CHECK(matches("10.0.0.0/8", "10.200.3.4"));
  CHECK_FALSE(matches("10.0.0.0/8", "11.0.0.1"));
  CHECK(matches("192.168.64.0/18", "192.168.127.255"));
  CHECK_FALSE(matches("192.168.64.0/18", "192.168.128.1"));
  CHECK_FALSE(matches("192.168.64.0/18", "192.168.63.1"));
  CHECK(matches("1.2.3.4", "1.2.3.4"));
  CHECK_FALSE(matches("1.2.3.4", "1.2.3.40"));
  gateway::Cidr c;
  std::string why;
  CHECK_FALSE(gateway::parse_cidr("10.0.0.0/33", c, why));
  CHECK_FALSE(gateway::parse_cidr("pilot", c, why));
}

TEST_CASE("gateways: route arguments are checked with messages for people", "[gateway-common]") {
  gateway::Route r;
  std::string why;
  CHECK(gateway::route_from_args(testing::header_route("X-User", "==", "qa").args, r, why));
  CHECK_FALSE(gateway::route_from_args(testing::header_route("X User", "==", "qa").args, r, why));
  CHECK(why.find("header name") != std::string::npos);
  CHECK_FALSE(gateway::route_from_args(testing::header_route("X-User", "==", "qa", "2.4.1").args, r, why));
  CHECK(why.find("canary or stable") != std::string::npos);
  CHECK_FALSE(gateway::route_from_args({{"match", Value::string("ip")}, {"value", Value::string("10.0.0.0/99")}, {"target", Value::string("canary")}}, r, why));
}

TEST_CASE("gateways: haproxy map entries carry their rule and read back", "[gateway-common]") {
  gateway::Route r{"cookie", "beta", "~", "^y(es)?$", "canary"};
  std::string key, why;
  REQUIRE(haproxy::route_entry(r, "abc123", key, why));
  auto back = haproxy::read_gray_entry({"0x1", key, "canary"});
  REQUIRE(back);
  CHECK(back->route == r);
  CHECK(back->digest == "abc123");
  // Anchors in the middle cannot keep their meaning inside gray's pattern.
  CHECK_FALSE(haproxy::route_entry({"header", "X-A", "~", "a$|^b", "canary"}, "d", key, why));
  CHECK_FALSE(haproxy::read_gray_entry({"0x2", "^someone-else$", "canary"}));
}

TEST_CASE("gateways: the nginx include keeps its state on its first line", "[gateway-common]") {
  nginx::Layout l{"edge", "app", {"10.0.0.1:80", "10.0.0.2:80"}, {"10.0.0.3:80"}};
  nginx::State s;
  s.generation = 4;
  s.canary = 20;
  s.states["10.0.0.2:80"] = "drain";
  s.routes.push_back({"header", "X-User", "==", "qa-1", "canary"});
  std::string text, why;
  REQUIRE(nginx::render(l, s, text, why));
  CHECK(text.find("server 10.0.0.2:80 down;") != std::string::npos);
  CHECK(text.find("map $http_x_user $gray_app_r0") != std::string::npos);
  CHECK(text.find("default \"4\";") != std::string::npos);
  auto back = nginx::parse_state(text);
  REQUIRE(back);
  CHECK(back->same_traffic(s));
  CHECK(back->generation == 4);
  // One stable server ready and one canary: 20% is canary 25 : stable 100.
  CHECK(nginx::effective_share(l, s) == Approx(20));
  CHECK(text.find("server 10.0.0.3:80 weight=25;") != std::string::npos);
  CHECK_FALSE(nginx::parse_state("upstream app { server x; }\n"));
}
