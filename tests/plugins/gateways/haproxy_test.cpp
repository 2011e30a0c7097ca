// The haproxy driver against a real HAProxy (haproxy -db) with four small backend servers.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "plugins/haproxy/haproxy.h"
#include "plugins/haproxy/haproxy_text.h"
#include "plugins/haproxy/runtime_api.h"
#include "tests/plugins/gateways/gateway_test_util.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"

using namespace gray;
using namespace gray::testing;
using plugins::Result;
using Status = plugins::Result::Status;

namespace {

// A HAProxy in front of stable servers v1-a, v1-b and canary servers v2-a, v2-b, with the
// routing lines the README asks for.
struct HaproxyLab {
  std::string dir = make_temp_dir("gray-haproxy");
  std::string socket = dir + "/admin.sock";
  std::string map = dir + "/routes.map";
  int port = free_port();
  int admin_port = free_port();  // the same runtime API over TCP
  std::vector<std::unique_ptr<HttpServer>> apps;
  std::map<std::string, int> app_ports;
  Process haproxy;

  explicit HaproxyLab(const std::string& stats_timeout = "10s") {
    if (find_program("haproxy").empty()) FAIL("haproxy is not installed (run .ci/deps)");
    for (std::string name : {"v1-a", "v1-b", "v2-a", "v2-b"}) {
      apps.push_back(std::make_unique<HttpServer>([name](const HttpRequest& r) {
        HttpReply reply;
        reply.body = name;
        reply.content_type = "text/plain";
        if (r.path == "/slow") reply.delay_ms = 1500;
        return reply;
      }));
      app_ports[name] = apps.back()->port();
    }
    write_file(map, "");
    write_file(dir + "/haproxy.cfg", config(stats_timeout));
    haproxy = Process({"haproxy", "-db", "-f", dir + "/haproxy.cfg"}, dir + "/haproxy.log");
    if (!wait_for_port(port, 5000)) FAIL("haproxy did not start: " + read_file(dir + "/haproxy.log"));
    // The stats socket appears (renamed into place) a moment after the listeners.
    for (int i = 0; i < 250 && !plugins::haproxy::RuntimeApi(socket, "").run("show info", true, 500).delivered; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ~HaproxyLab() {
    haproxy.stop();
    apps.clear();
    std::filesystem::remove_all(dir);
  }

  std::string server_lines(const std::vector<std::string>& names, const std::string& track) {
    std::string out;
    for (const std::string& n : names)
      out += "  server " + n + " 127.0.0.1:" + std::to_string(app_ports[n]) +
             (track.empty() ? " weight 100 check inter 300ms" : " track " + track + "/" + n) + "\n";
    return out;
  }

  std::string config(const std::string& stats_timeout) {
    return "global\n  stats socket " + socket + " mode 600 level admin\n  stats socket ipv4@127.0.0.1:" + std::to_string(admin_port) +
           " level admin\n  stats timeout " + stats_timeout +
           "\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
           "frontend web\n  bind 127.0.0.1:" + std::to_string(port) + "\n"
           "  http-request set-var-fmt(txn.gray_in) \"gray-src: %[src]\\r\\n%[req.hdrs]\"\n"
           "  http-request set-var(txn.gray_route) var(txn.gray_in),map_reg(" + map + ")\n"
           "  use_backend app_canary if { var(txn.gray_route) -m str canary }\n"
           "  use_backend app_stable if { var(txn.gray_route) -m str stable }\n"
           "  default_backend app\n"
           "backend app\n  balance roundrobin\n" + server_lines({"v1-a", "v1-b", "v2-a", "v2-b"}, "") +
           "backend app_canary\n" + server_lines({"v2-a", "v2-b"}, "app") +
           "backend app_stable\n" + server_lines({"v1-a", "v1-b"}, "app");
  }

  Value driver_config(const std::string& sock = "") const {
    return Value::of_map({{"socket", Value::string(sock.empty() ? socket : sock)},
                          {"backend", Value::string("app")},
                          {"stable", strings({"v1-a", "v1-b"})},
                          {"canary", strings({"v2-a", "v2-b"})},
                          {"map", Value::string(map)},
                          {"timeout", Value::duration_ms(2000)}});
  }
  std::unique_ptr<plugins::Driver> driver() const { return plugins::make_haproxy("edge", driver_config(), quiet_env()); }

  std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port) + path; }

  std::string admin(const std::string& command) {
    plugins::haproxy::RuntimeApi api(socket, "");
    return api.run(command, true, 2000).text;
  }
  // The status column of `show stat` for one server.
  std::string status_of(const std::string& server) {
    std::vector<std::map<std::string, std::string>> rows;
    REQUIRE(plugins::haproxy::parse_stat_csv(admin("show stat app 4 -1"), rows));
    for (auto& row : rows)
      if (row["svname"] == server) return row["status"];
    FAIL("no server " + server + " in show stat");
    return "";
  }
};

double percent_of(const Result& r) { return r.value.num; }

}  // namespace

TEST_CASE("haproxy: weight gives the requested split, exactly at 0% and 100%", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  Result r = gw->call(weight_call(20));
  INFO(r.message);
  REQUIRE(r.ok());
  CHECK(percent_of(r) == Approx(20));
  auto seen = count_answers(lab.url(), 200);
  // Weighted round robin: within a request or two of 20% over any stretch of requests.
  CHECK(std::abs(sum_prefix(seen, "v2-") - 40) <= 3);
  CHECK(sum_prefix(seen, "v1-") + sum_prefix(seen, "v2-") == 200);
  CHECK(gw->call(gw_call("weight_of", {{"group", Value::string("canary")}})).value.num == Approx(20));

  REQUIRE(gw->call(weight_call(0, "k0")).ok());
  CHECK(count_answers(lab.url(), 40) == std::map<std::string, int>{{"v1-a", 20}, {"v1-b", 20}});
  REQUIRE(gw->call(weight_call(100, "k100")).ok());
  CHECK(sum_prefix(count_answers(lab.url(), 40), "v2-") == 40);
}

TEST_CASE("haproxy: a share the weights cannot give exactly is reported as the closest one", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  Result r = gw->call(weight_call(0.1));
  REQUIRE(r.ok());
  CHECK(percent_of(r) == Approx(0.39));  // weights 1 and 256: 1/257 is the smallest share above 0
  CHECK(r.message.find("closest share") != std::string::npos);
}

TEST_CASE("haproxy: undo_for reads the previous share and re-applying is harmless", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(20, "k1")).ok());
  auto undo = gw->undo_for(weight_call(50, "k2"));
  REQUIRE(undo);
  CHECK(undo->op == "weight");
  CHECK(undo->args.at("canary").num == Approx(20));
  Result first = gw->call(weight_call(50, "k2"));
  REQUIRE(first.ok());
  REQUIRE(first.undo);
  CHECK(first.undo->args.at("canary").num == Approx(20));
  Result again = gw->call(weight_call(50, "k2"));
  CHECK(again.ok());
  CHECK(again.replayed);
  CHECK(gw->call(gw_call("weight_of", {{"group", Value::string("stable")}})).value.num == Approx(50));
}

TEST_CASE("haproxy: drain, ready and maint show in show stat and keep the canary share", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(20)).ok());
  Result drained = gw->call(server_call("drain", "v1-a"));
  REQUIRE(drained.ok());
  CHECK(lab.status_of("v1-a").rfind("DRAIN", 0) == 0);
  REQUIRE(drained.undo);
  CHECK(drained.undo->op == "ready");
  // v1-b carries the whole stable part alone: the canary stays at 20%.
  auto seen = count_answers(lab.url(), 100);
  CHECK(seen["v1-a"] == 0);
  CHECK(std::abs(sum_prefix(seen, "v2-") - 20) <= 3);
  CHECK(gw->undo_for(server_call("maint", "v1-a"))->op == "drain");
  REQUIRE(gw->call(server_call("maint", "v1-a")).ok());
  CHECK(lab.status_of("v1-a") == "MAINT");
  REQUIRE(gw->call(server_call("ready", "v1-a")).ok());
  CHECK(lab.status_of("v1-a").rfind("UP", 0) == 0);  // "UP 1/3" while checks rise
  CHECK(std::abs(sum_prefix(count_answers(lab.url(), 100), "v2-") - 20) <= 3);
}

TEST_CASE("haproxy: a server is found by its inventory address", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  plugins::Call c = gw_call("drain", {{"server", Value::string("host-7")}, {"addr", Value::string("127.0.0.1")},
                                      {"port", Value::number(lab.app_ports["v2-b"])}}, "k-addr");
  REQUIRE(gw->call(c).ok());
  CHECK(lab.status_of("v2-b").rfind("DRAIN", 0) == 0);
}

TEST_CASE("haproxy: routes by header, cookie and address go through the map", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(0)).ok());
  REQUIRE(gw->call(header_route("X-Gray-User", "==", "qa-1", "canary", "r1")).ok());
  CHECK(sum_prefix(count_answers(lab.url(), 10, {{"X-Gray-User", "qa-1"}}), "v2-") == 10);
  CHECK(sum_prefix(count_answers(lab.url(), 10, {{"X-Gray-User", "qa-12"}}), "v1-") == 10);
  CHECK(sum_prefix(count_answers(lab.url(), 10), "v1-") == 10);

  REQUIRE(gw->call(header_route("X-Tenant", "~", "^beta-[0-9]+$", "canary", "r2")).ok());
  CHECK(sum_prefix(count_answers(lab.url(), 4, {{"X-Tenant", "beta-42"}}), "v2-") == 4);
  CHECK(sum_prefix(count_answers(lab.url(), 4, {{"X-Tenant", "beta-42x"}}), "v1-") == 4);

  plugins::Call cookie = gw_call("route", {{"match", Value::string("cookie")}, {"name", Value::string("beta")}, {"op", Value::string("==")},
                                           {"value", Value::string("yes")}, {"target", Value::string("canary")}}, "r3");
  REQUIRE(gw->call(cookie).ok());
  CHECK(sum_prefix(count_answers(lab.url(), 4, {{"Cookie", "a=1; beta=yes"}}), "v2-") == 4);
  CHECK(sum_prefix(count_answers(lab.url(), 4, {{"Cookie", "beta=yesno"}}), "v1-") == 4);

  // Replayed with the same key: nothing is added twice.
  Result again = gw->call(cookie);
  CHECK(again.replayed);
  CHECK(gw->undo_for(gw_call("clear_routes", {}, "c1"))->args.at("routes").items().size() == 3);

  Result cleared = gw->call(gw_call("clear_routes", {}, "c1"));
  REQUIRE(cleared.ok());
  CHECK(sum_prefix(count_answers(lab.url(), 4, {{"X-Gray-User", "qa-1"}}), "v1-") == 4);
  // Its undo puts the three rules back, in order.
  REQUIRE(gw->call(*cleared.undo).ok());
  CHECK(sum_prefix(count_answers(lab.url(), 4, {{"X-Gray-User", "qa-1"}}), "v2-") == 4);
}

TEST_CASE("haproxy: an address route and its removal", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(100)).ok());
  // A client cannot claim an address with a header named like the address line.
  REQUIRE(gw->call(gw_call("route", {{"match", Value::string("ip")}, {"value", Value::string("10.0.0.0/8")},
                                     {"target", Value::string("stable")}}, "ip0")).ok());
  CHECK(sum_prefix(count_answers(lab.url(), 4, {{"gray-src", "10.1.2.3"}}), "v2-") == 4);
  plugins::Call ip = gw_call("route", {{"match", Value::string("ip")}, {"value", strings({"10.0.0.0/8", "127.0.0.0/24"})},
                                       {"target", Value::string("stable")}}, "ip1");
  Result r = gw->call(ip);
  REQUIRE(r.ok());
  CHECK(sum_prefix(count_answers(lab.url(), 4), "v1-") == 4);
  REQUIRE(r.undo);
  CHECK(r.undo->op == "unroute");
  REQUIRE(gw->call(*r.undo).ok());
  CHECK(sum_prefix(count_answers(lab.url(), 4), "v2-") == 4);
}

TEST_CASE("haproxy: scale serves a group from its first servers and undo restores", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(50)).ok());
  plugins::Call c = gw_call("scale", {{"group", Value::string("canary")}, {"count", Value::number(1)}}, "s1");
  auto planned = gw->undo_for(c);
  REQUIRE(planned);
  CHECK(planned->op == "scale");
  CHECK(planned->args.at("count").num == 2);
  REQUIRE(gw->call(c).ok());
  CHECK(lab.status_of("v2-b") == "MAINT");
  auto seen = count_answers(lab.url(), 100);
  CHECK(std::abs(seen["v2-a"] - 50) <= 3);  // the share holds with one canary server
  REQUIRE(gw->call(*planned).ok());
  CHECK(lab.status_of("v2-b").rfind("UP", 0) == 0);
  CHECK(gw->call(gw_call("scale", {{"group", Value::string("canary")}, {"count", Value::number(3)}}, "s2")).status == Status::Failed);
}

TEST_CASE("haproxy: sessions and connections come from show stat", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(100)).ok());
  REQUIRE(gw->call(server_call("maint", "v2-b")).ok());
  std::thread slow([&] { count_answers(lab.url("/slow"), 1); });
  double sessions = 0;
  for (int i = 0; i < 50 && sessions < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    sessions = gw->call(gw_call("sessions", {{"server", Value::string("v2-a")}})).value.num;
  }
  Result conns = gw->call(gw_call("connections", {{"server", Value::string("v2-a")}}));
  slow.join();
  CHECK(sessions == 1);
  CHECK(conns.value.num >= 1);
  CHECK(gw->call(gw_call("sessions", {{"server", Value::string("v1-a")}})).value.num == 0);
}

TEST_CASE("haproxy: HAProxy's refusals are Failed with its text", "[haproxy]") {
  HaproxyLab lab;
  auto gw = lab.driver();
  Result r = gw->call(server_call("drain", "nope"));
  CHECK(r.status == Status::Failed);
  CHECK(r.message.find("No such server") != std::string::npos);
  CHECK(r.message.find(lab.socket) != std::string::npos);

  Value cfg = lab.driver_config();
  Map m = cfg.fields();
  m["backend"] = Value::string("missing");
  auto wrong = plugins::make_haproxy("edge", Value::of_map(m), quiet_env());
  Result w = wrong->call(weight_call(10));
  CHECK(w.status == Status::Failed);
  CHECK(w.message.find("Can't find backend") != std::string::npos);
}

TEST_CASE("haproxy: an unreachable socket is an Error that names it", "[haproxy]") {
  HaproxyLab lab;
  auto gw = plugins::make_haproxy("edge", lab.driver_config(lab.dir + "/missing.sock"), quiet_env());
  Result r = gw->call(weight_call(10));
  CHECK(r.status == Status::Error);
  CHECK(r.message.find("missing.sock") != std::string::npos);
  CHECK(r.message.find("No such file") != std::string::npos);
  CHECK_FALSE(gw->undo_for(weight_call(10)));
}

TEST_CASE("haproxy: the runtime API over TCP; refused and silent endpoints are Errors", "[haproxy]") {
  HaproxyLab lab;
  auto tcp_config = [&](const std::string& address) {
    Map m = lab.driver_config().fields();
    m.erase("socket");
    m["address"] = Value::string(address);
    m["timeout"] = Value::duration_ms(300);
    return plugins::make_haproxy("edge", Value::of_map(m), quiet_env());
  };
  auto gw = tcp_config("127.0.0.1:" + std::to_string(lab.admin_port));
  REQUIRE(gw->call(weight_call(10)).ok());
  CHECK(gw->call(gw_call("weight_of", {{"group", Value::string("canary")}})).value.num == Approx(10));

  Result refused = tcp_config("127.0.0.1:" + std::to_string(free_port()))->call(weight_call(10));
  CHECK(refused.status == Status::Error);
  CHECK(refused.message.find("Connection refused") != std::string::npos);

  // Something that accepts connections and never answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  Result silent = tcp_config("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)))->call(weight_call(10));
  ::close(fd);
  CHECK(silent.status == Status::Error);
  CHECK(silent.message.find("timed out") != std::string::npos);
}

TEST_CASE("haproxy: a connection HAProxy closed while idle is replaced", "[haproxy]") {
  HaproxyLab lab("300ms");
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(10, "a")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(gw->call(weight_call(30, "b")).ok());
  CHECK(gw->call(gw_call("weight_of", {{"group", Value::string("canary")}})).value.num == Approx(30));
}

TEST_CASE("haproxy: runtime API latency in prompt mode", "[haproxy][measure]") {
  HaproxyLab lab;
  plugins::haproxy::RuntimeApi api(lab.socket, "");
  REQUIRE(api.run("set server app/v2-a weight 10", true, 2000).delivered);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) REQUIRE(api.run("set server app/v2-a weight " + std::to_string(i % 200 + 1), true, 2000).delivered);
  double per = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 1000;
  auto gw = lab.driver();
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) REQUIRE(gw->call(weight_call(i % 2 ? 20 : 30, "m" + std::to_string(i))).ok());
  double per_weight = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 100;
  WARN("haproxy runtime API: " << per << " us per command in prompt mode; " << per_weight << " us per weight call");
  CHECK(per < 5000);
}

TEST_CASE("haproxy: configuration mistakes are found when the driver is built", "[haproxy]") {
  Value base = Value::of_map({{"backend", Value::string("app")}, {"stable", strings({"a"})}, {"canary", strings({"b"})}});
  CHECK_THROWS_WITH(plugins::make_haproxy("edge", base, quiet_env()), Catch::Contains("exactly one of the fields 'socket'"));
  Map both = base.fields();
  both["socket"] = Value::string("/x.sock");
  both["canary"] = strings({"a"});
  CHECK_THROWS_WITH(plugins::make_haproxy("edge", Value::of_map(both), quiet_env()), Catch::Contains("listed twice"));
}
