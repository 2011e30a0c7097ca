// The prober behind `probe http` and `probe tcp`, against the test HTTP server and loopback ports.
#include <catch2/catch.hpp>
#include <chrono>

#include "plugins/driver.h"
#include "tests/plugins/http/http_support.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"

using namespace gray;
using namespace gray::plugins;
using namespace gray::testing;
using Status = Result::Status;

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::unique_ptr<Prober> prober() { return make_prober(DriverEnv::process(".")); }

}  // namespace

TEST_CASE("probe http: a 2xx answer is Ok with its status and body", "[probe]") {
  HttpServer server([](const HttpRequest& req) {
    HttpReply r;
    r.status = req.path == "/created" ? 201 : 200;
    r.body = "{\"status\":\"ok\",\"user\":\"" + req.header("x-gray-user") + "\",\"cookie\":\"" + req.header("cookie") + "\"}";
    return r;
  });
  auto p = prober();
  Result r = p->http(server.url() + "/health", {"X-Gray-User: test-1", "Cookie:  canary=1 "}, 2000);
  REQUIRE(r.status == Status::Ok);
  REQUIRE(r.value.kind == Value::Kind::Map);
  CHECK(r.value.fields().at("status").num == 200);
  CHECK(r.value.fields().at("body").str == "{\"status\":\"ok\",\"user\":\"test-1\",\"cookie\":\"canary=1\"}");
  CHECK(r.elapsed_ms > 0);
  CHECK(p->http(server.url() + "/created", {}, 2000).ok());
  auto seen = server.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].method == "GET");
  CHECK(seen[0].target == "/health");
}

TEST_CASE("probe http: other statuses fail once, with the status in the value", "[probe]") {
  int status = 503;
  HttpServer server([&](const HttpRequest& req) {
    HttpReply r;
    r.status = status;
    r.body = "unhealthy: key=" + req.header("x-api-key");
    if (status == 302) r.headers.push_back({"Location", "/login"});
    return r;
  });
  auto p = prober();
  Result r = p->http(server.url() + "/health", {"X-API-Key: k-77aa19"}, 2000);
  CHECK(r.status == Status::Failed);
  CHECK(r.value.fields().at("status").num == 503);
  CHECK_THAT(r.value.fields().at("body").str, Catch::StartsWith("unhealthy"));
  CHECK(r.message == "HTTP 503: unhealthy: key=<secret>");
  CHECK(server.requests().size() == 1);  // no retries: the pipeline's attempts decide

  status = 401;
  r = p->http(server.url() + "/health", {"Authorization: Bearer tk-5150aa", "X-API-Key: tk-5150aa"}, 2000);
  CHECK(r.status == Status::Failed);
  CHECK(r.message.find("tk-5150aa") == std::string::npos);

  status = 404;
  r = p->http(server.url() + "/missing", {}, 2000);
  CHECK(r.status == Status::Failed);
  CHECK(r.value.fields().at("status").num == 404);
  status = 302;  // redirects are not followed: the probe reports what it saw
  r = p->http(server.url() + "/", {}, 2000);
  CHECK(r.status == Status::Failed);
  CHECK(r.value.fields().at("status").num == 302);
}

TEST_CASE("probe http: no answer is an error", "[probe]") {
  auto p = prober();
  SECTION("slow") {
    HttpServer server([](const HttpRequest&) {
      HttpReply r;
      r.delay_ms = 1200;
      return r;
    });
    auto t0 = std::chrono::steady_clock::now();
    Result r = p->http(server.url() + "/slow?token=abc", {}, 300);
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::StartsWith("GET " + server.url() + "/slow: timed out after 300ms"));
    CHECK(ms_since(t0) < 1000);
  }
  SECTION("refused") {
    std::string url = "http://127.0.0.1:" + std::to_string(free_port()) + "/";
    Result r = p->http(url, {}, 1000);
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::StartsWith("GET " + url + ": "));
  }
  SECTION("never accepted") {
    SilentPort silent;
    auto t0 = std::chrono::steady_clock::now();
    Result r = p->http("http://127.0.0.1:" + std::to_string(silent.port()) + "/", {}, 300);
    CHECK(r.status == Status::Error);
    CHECK(ms_since(t0) < 1000);
  }
  SECTION("bad input") {
    Result r = p->http("127.0.0.1:8080/health", {}, 1000);
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("bad URL"));
    r = p->http("http://127.0.0.1:1/", {"Bearer abc-secret"}, 1000);
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("not written as \"Name: value\""));
    CHECK(r.message.find("abc-secret") == std::string::npos);
  }
}

TEST_CASE("probe http: large bodies are cut at 64 KiB", "[probe]") {
  HttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.body = std::string(200000, 'x');
    return r;
  });
  Result r = prober()->http(server.url() + "/", {}, 2000);
  REQUIRE(r.ok());
  CHECK(r.value.fields().at("body").str.size() == 64 * 1024);
}

TEST_CASE("probe tcp: open, refused, silent, and bad addresses", "[probe]") {
  auto p = prober();
  HttpServer open([](const HttpRequest&) { return HttpReply{}; });
  Result r = p->tcp("127.0.0.1:" + std::to_string(open.port()), 1000);
  REQUIRE(r.ok());
  CHECK(r.value.kind == Value::Kind::Bool);
  CHECK(r.value.flag);
  CHECK(p->tcp("localhost:" + std::to_string(open.port()), 1000).ok());

  std::string closed = "127.0.0.1:" + std::to_string(free_port());
  r = p->tcp(closed, 1000);
  CHECK(r.status == Status::Failed);
  CHECK(r.message == "connect " + closed + ": connection refused");

  SilentPort silent;
  auto t0 = std::chrono::steady_clock::now();
  r = p->tcp("127.0.0.1:" + std::to_string(silent.port()), 300);
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::Contains("timed out after 300ms"));
  CHECK(ms_since(t0) >= 250);
  CHECK(ms_since(t0) < 1000);

  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:0", "127.0.0.1:70000", "::1:80", "[::1:80"}) {
    r = p->tcp(bad, 500);
    INFO(bad << " -> " << r.message);
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("write host:port"));
  }
  r = p->tcp("no-such-host.invalid:80", 1000);
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::Contains("could not resolve no-such-host.invalid"));
}
