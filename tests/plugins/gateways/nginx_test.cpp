// The nginx driver against a real nginx (started with its own prefix, `daemon off`), proxying
// to four small backend servers.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "plugins/nginx/nginx.h"
#include "plugins/nginx/nginx_conf.h"
#include "tests/plugins/gateways/gateway_test_util.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"

using namespace gray;
using namespace gray::testing;
using plugins::Result;
using Status = plugins::Result::Status;

namespace {

struct NginxLab {
  std::string dir = make_temp_dir("gray-nginx");
  std::string include = dir + "/conf/gray/app.conf";
  int port = free_port();
  std::vector<std::unique_ptr<HttpServer>> apps;
  std::vector<std::string> stable, canary;
  std::map<std::string, std::string> name_of;  // host:port -> name
  Process nginx;

  NginxLab() {
    if (find_program("nginx").empty()) FAIL("nginx is not installed (run .ci/deps)");
    for (std::string name : {"v1-a", "v1-b", "v2-a", "v2-b"}) {
      apps.push_back(std::make_unique<HttpServer>([name](const HttpRequest&) {
        HttpReply reply;
        reply.body = name;
        reply.content_type = "text/plain";
        return reply;
      }));
      std::string addr = "127.0.0.1:" + std::to_string(apps.back()->port());
      (name[1] == '1' ? stable : canary).push_back(addr);
      name_of[addr] = name;
    }
    for (const char* sub : {"/conf/gray", "/logs", "/tmp"}) std::filesystem::create_directories(dir + sub);
    write_file(dir + "/conf/nginx.conf", config());
    // The include must exist before nginx starts: what the README's first-use step writes.
    std::string first, why;
    REQUIRE(plugins::nginx::render(layout(), plugins::nginx::State{}, first, why));
    write_file(include, first);
    nginx = Process({"nginx", "-p", dir, "-c", dir + "/conf/nginx.conf", "-e", dir + "/logs/error.log"}, dir + "/logs/stdout.log");
    if (!wait_for_port(port, 5000)) FAIL("nginx did not start: " + read_file(dir + "/logs/error.log"));
  }
  ~NginxLab() {
    nginx.stop();
    apps.clear();
    std::filesystem::remove_all(dir);
  }

  plugins::nginx::Layout layout() const { return {"edge", "app", stable, canary}; }

  std::string config() const {
    std::string d = dir;
    return "daemon off;\nworker_processes 2;\npid " + d + "/logs/nginx.pid;\nerror_log " + d + "/logs/error.log warn;\n"
           "events { worker_connections 256; }\nhttp {\n  access_log off;\n"
           "  client_body_temp_path " + d + "/tmp/body;\n  proxy_temp_path " + d + "/tmp/proxy;\n  fastcgi_temp_path " + d +
           "/tmp/fastcgi;\n  uwsgi_temp_path " + d + "/tmp/uwsgi;\n  scgi_temp_path " + d + "/tmp/scgi;\n"
           "  include " + include + ";\n"
           "  server {\n    listen 127.0.0.1:" + std::to_string(port) + ";\n"
           "    location / {\n      proxy_pass http://$gray_upstream_app;\n"
           "      add_header X-Gray-Generation $gray_generation_app always;\n    }\n"
           "    location = /gray-generation {\n      add_header X-Gray-Generation $gray_generation_app always;\n      return 204;\n    }\n"
           "    location = /nginx_status { stub_status; }\n  }\n}\n";
  }

  std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port) + path; }

  Value driver_config(bool with_probe = true) const {
    Map m = {{"include", Value::string(include)},
             {"upstream", Value::string("app")},
             {"stable", strings(stable)},
             {"canary", strings(canary)},
             {"prefix", Value::string(dir)},
             {"conf", Value::string(dir + "/conf/nginx.conf")},
             {"status_url", Value::string(url("/nginx_status"))}};
    if (with_probe) m["probe_url"] = Value::string(url("/gray-generation"));
    return Value::of_map(std::move(m));
  }
  std::unique_ptr<plugins::Driver> driver(bool with_probe = true) const { return plugins::make_nginx("edge", driver_config(with_probe), quiet_env()); }

  std::map<std::string, int> count(int n, std::vector<std::pair<std::string, std::string>> headers = {}) const {
    return count_answers(url(), n, std::move(headers));
  }
  int generation() const { return plugins::nginx::parse_state(read_file(include))->generation; }
};

}  // namespace

TEST_CASE("nginx: weight splits traffic once nginx serves the new generation", "[nginx]") {
  NginxLab lab;
  auto gw = lab.driver();
  Result r = gw->call(weight_call(20));
  INFO(r.message);
  REQUIRE(r.ok());
  CHECK(r.value.num == Approx(20));
  CHECK(r.message.find("generation 1 served") != std::string::npos);
  WARN("nginx reload to confirmed: " << r.message);
  auto seen = lab.count(100);
  CHECK(std::abs(sum_prefix(seen, "v2-") - 20) <= 3);
  CHECK(sum_prefix(seen, "v1-") + sum_prefix(seen, "v2-") == 100);
  CHECK(gw->call(gw_call("weight_of", {{"group", Value::string("canary")}})).value.num == Approx(20));
  REQUIRE(gw->call(weight_call(100, "all")).ok());
  CHECK(sum_prefix(lab.count(20), "v2-") == 20);
}

TEST_CASE("nginx: re-applying a change is harmless and reports replayed", "[nginx]") {
  NginxLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(30, "same")).ok());
  int gen = lab.generation();
  Result again = gw->call(weight_call(30, "same"));
  CHECK(again.ok());
  CHECK(again.replayed);
  CHECK(lab.generation() == gen);  // nothing rewritten, no reload
}

TEST_CASE("nginx: the desired state lives in the include, so a new gray process can undo", "[nginx]") {
  NginxLab lab;
  // A hand-written include (no state line) is taken over and kept aside.
  std::string hand = read_file(lab.include);
  hand = hand.substr(hand.find('\n') + 1);
  write_file(lab.include, hand);
  REQUIRE(lab.driver()->call(weight_call(30)).ok());
  auto fresh = lab.driver();
  auto undo = fresh->undo_for(weight_call(50, "k2"));
  REQUIRE(undo);
  CHECK(undo->args.at("canary").num == Approx(30));
  CHECK(fresh->call(gw_call("weight_of", {{"group", Value::string("stable")}})).value.num == Approx(70));
  CHECK(read_file(lab.include + ".before-gray") == hand);
}

TEST_CASE("nginx: drain marks a server down and its undo puts it back", "[nginx]") {
  NginxLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(0)).ok());
  Result r = gw->call(server_call("drain", lab.stable[0]));
  REQUIRE(r.ok());
  CHECK(lab.count(10)[lab.name_of[lab.stable[1]]] == 10);
  REQUIRE(r.undo);
  CHECK(r.undo->op == "ready");
  REQUIRE(gw->call(*r.undo).ok());
  CHECK(lab.count(10)[lab.name_of[lab.stable[0]]] == 5);
  CHECK(gw->call(server_call("drain", "10.9.9.9:80")).status == Status::Failed);
}

TEST_CASE("nginx: routes by header and cookie send matching requests to the canary", "[nginx]") {
  NginxLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(header_route("X-Gray-User", "==", "qa-1", "canary", "r1")).ok());
  REQUIRE(gw->call(header_route("X-Tenant", "~", "^beta-[0-9]+$", "canary", "r2")).ok());
  CHECK(sum_prefix(lab.count(6, {{"X-Gray-User", "qa-1"}}), "v2-") == 6);
  CHECK(sum_prefix(lab.count(6, {{"X-Gray-User", "QA-1"}}), "v1-") == 6);  // == is exact, case included
  CHECK(sum_prefix(lab.count(6, {{"X-Tenant", "beta-7"}}), "v2-") == 6);
  CHECK(sum_prefix(lab.count(6), "v1-") == 6);
  Result cleared = gw->call(gw_call("clear_routes", {}, "c"));
  REQUIRE(cleared.ok());
  CHECK(sum_prefix(lab.count(6, {{"X-Gray-User", "qa-1"}}), "v1-") == 6);
  REQUIRE(cleared.undo);
  CHECK(cleared.undo->args.at("routes").items().size() == 2);
}

TEST_CASE("nginx: a configuration nginx -t rejects is rolled back and the old one keeps serving", "[nginx]") {
  NginxLab lab;
  auto gw = lab.driver();
  REQUIRE(gw->call(weight_call(100)).ok());
  std::string before = read_file(lab.include);
  Result r = gw->call(header_route("X-Bad", "~", "(unclosed", "canary", "bad"));
  CHECK(r.status == Status::Failed);
  CHECK(r.message.find("nginx -t rejected") != std::string::npos);
  CHECK(r.message.find("[emerg]") != std::string::npos);
  CHECK(read_file(lab.include) == before);
  CHECK(sum_prefix(lab.count(6), "v2-") == 6);
}

TEST_CASE("nginx: without probe_url a reload is confirmed by nginx's new workers", "[nginx]") {
  NginxLab lab;
  auto gw = lab.driver(false);
  Result r = gw->call(weight_call(100));
  INFO(r.message);
  REQUIRE(r.ok());
  CHECK(r.message.find("served") != std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // old workers finish their keep-alive connections
  CHECK(sum_prefix(lab.count(6), "v2-") == 6);
}

TEST_CASE("nginx: sessions and connections are nginx-wide stub_status counts", "[nginx]") {
  NginxLab lab;
  auto gw = lab.driver();
  Result r = gw->call(gw_call("connections", {{"server", Value::string(lab.stable[0])}}));
  REQUIRE(r.ok());
  CHECK(r.value.num >= 1);  // at least the status request itself
  Map m = lab.driver_config().fields();
  m.erase("status_url");
  auto bare = plugins::make_nginx("edge", Value::of_map(m), quiet_env());
  Result none = bare->call(gw_call("sessions", {{"server", Value::string(lab.stable[0])}}));
  CHECK(none.status == Status::Failed);
  CHECK(none.message.find("not available") != std::string::npos);
}

TEST_CASE("nginx: a reload nginx never confirms is an Error, not a switch", "[nginx]") {
  NginxLab lab;
  Map m = lab.driver_config().fields();
  m["probe_url"] = Value::string(lab.url("/nginx_status"));  // answers, but without the generation header
  auto gw = plugins::make_nginx("edge", Value::of_map(m), quiet_env());
  plugins::Call c = weight_call(10);
  c.timeout_ms = 600;
  Result r = gw->call(c);
  CHECK(r.status == Status::Error);
  CHECK(r.message.find("does not serve generation 1") != std::string::npos);
}

TEST_CASE("nginx: keep-alive clients across reloads", "[nginx][measure]") {
  // Idle keep-alive connections of old workers are closed when they retire; a client that
  // sends on one at that moment gets a transport error (no HTTP error status).
  NginxLab lab;
  auto gw = lab.driver();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread load([&] {
    http::Client client;
    while (!stop) {
      http::Request req;
      req.url = lab.url();
      req.retries = 0;  // count every failure; the default client retries idempotent requests
      (client.send(req).success() ? ok : failed)++;
    }
  });
  // wrk as well, when installed: it does not retry and keeps 8 connections busy.
  Process wrk;
  std::string wrk_log = lab.dir + "/logs/wrk.log";
  if (!find_program("wrk").empty()) wrk = Process({"wrk", "-t1", "-c8", "-d2s", lab.url()}, wrk_log);
  for (int i = 0; i < 5; ++i) REQUIRE(gw->call(weight_call(i % 2 ? 20 : 40, "ka" + std::to_string(i))).ok());
  stop = true;
  load.join();
  if (wrk.pid() > 0) wrk.wait();
  WARN("keep-alive client during 5 reloads: " << ok << " ok, " << failed << " transport errors without retries\nwrk: "
                                              << read_file(wrk_log));
  CHECK(ok > 0);
}
