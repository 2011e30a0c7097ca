// The http_json driver against the test HTTP server: JSON pointers into a served document, and
// the answers that are not a number.
#include "plugins/http_json/http_json.h"

#include <catch2/catch.hpp>
#include <cmath>

#include "plugins/http_json/json_pointer.h"
#include "tests/plugins/metrics/metrics_support.h"

using namespace gray;
using namespace gray::plugins;
using namespace gray::testing;
using namespace gray::testing::metrics;
using Status = Result::Status;

namespace {

const char* kStats = R"({
  "service": "checkout",
  "healthy": true,
  "errors": {"rate": 0.012, "count": 7, "as_text": "0.5", "inf": "+Inf", "nan": "NaN", "none": null, "words": "12 ms"},
  "latency": [{"p50": 12.5}, {"p50": 14}],
  "a/b": {"m~n": 3},
  "big": 18446744073709551615,
  "neg": -4e-3
})";

std::unique_ptr<Driver> driver_for(const std::string& url, double timeout_ms = 5000) {
  return make_http_json("stats", Value::of_map({{"url", Value::string(url)}, {"timeout", Value::duration_ms(timeout_ms)}}),
                        DriverEnv::process("."));
}

}  // namespace

TEST_CASE("http_json: numbers and numeric strings", "[http_json]") {
  HttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.body = kStats;
    return r;
  });
  auto d = driver_for(server.url() + "/stats?token=abc");
  auto number = [&](const std::string& pointer) {
    Result r = d->call(query_call(pointer));
    INFO(pointer << ": " << r.message);
    REQUIRE(r.status == Status::Ok);
    REQUIRE(r.value.kind == Value::Kind::Number);
    return r.value.num;
  };
  CHECK(number("/errors/rate") == 0.012);
  CHECK(number("/errors/count") == 7);
  CHECK(number("/errors/as_text") == 0.5);
  CHECK(std::isinf(number("/errors/inf")));
  CHECK(number("/latency/1/p50") == 14);
  CHECK(number("/a~1b/m~0n") == 3);   // escapes: ~1 is '/', ~0 is '~'
  CHECK(number("#/a~1b/m~0n") == 3);  // the URI fragment form
  CHECK(number("#/latency/0/p50") == 12.5);
  CHECK(number("/big") == Approx(1.8446744073709552e19));
  CHECK(number("/neg") == -0.004);
  auto seen = server.requests();
  REQUIRE(!seen.empty());
  CHECK(seen[0].method == "GET");
  CHECK(seen[0].target == "/stats?token=abc");
  CHECK(seen[0].header("accept") == "application/json");
}

TEST_CASE("http_json: null and missing are no data; other types fail clearly", "[http_json]") {
  HttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.body = kStats;
    return r;
  });
  auto d = driver_for(server.url() + "/stats");
  auto call = [&](const std::string& pointer) { return d->call(query_call(pointer)); };

  Result r = call("/errors/none");
  CHECK(r.status == Status::NoData);
  CHECK_THAT(r.message, Catch::Contains("'/errors/none' is null"));
  r = call("/errors/missing");
  CHECK(r.status == Status::NoData);
  CHECK_THAT(r.message, Catch::Contains("'/errors' has no member \"missing\""));
  r = call("/latency/5/p50");
  CHECK(r.status == Status::NoData);
  CHECK_THAT(r.message, Catch::Contains("'/latency' has 2 elements, no index 5"));
  CHECK(call("/latency/-").status == Status::NoData);
  CHECK(call("/errors/none/deeper").status == Status::NoData);
  CHECK(call("/errors/nan").status == Status::NoData);

  r = call("/service");
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("'/service' is a string (\"checkout\"), not a number"));
  r = call("/healthy");
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("is a bool (true)"));
  r = call("/errors");
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("is an object"));
  r = call("/latency");
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("is a list"));
  CHECK(call("/errors/words").status == Status::Failed);
  CHECK(call("").status == Status::Failed);  // the whole document is an object

  r = call("/service/name");
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("'/service' is a string, which has no member \"name\""));
  r = call("/latency/01/p50");
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("\"01\" is not an index"));

  r = call("errors/rate");
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("must start with '/' (for example /errors/rate)"));
  r = call("/errors~2rate");
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("'~' must be followed by 0"));
  CHECK(call("#/bad%zz").status == Status::Failed);
  CHECK(server.requests().size() >= 10);
}

TEST_CASE("http_json: a whole document that is a number", "[http_json]") {
  HttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.body = "42\n";
    return r;
  });
  Result r = driver_for(server.url())->call(query_call(""));
  REQUIRE(r.ok());
  CHECK(r.value.num == 42);
}

TEST_CASE("http_json: server trouble is an error", "[http_json]") {
  int status = 200, delay = 0;
  std::string body;
  HttpServer server([&](const HttpRequest&) {
    HttpReply r;
    r.status = status;
    r.body = body;
    r.delay_ms = delay;
    return r;
  });
  auto d = driver_for(server.url() + "/stats");

  SECTION("not JSON") {
    body = "<html>maintenance</html>";
    Result r = d->call(query_call("/a"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("not JSON (garbage)"));
    CHECK_THAT(r.message, Catch::Contains("<html>maintenance"));
  }
  SECTION("HTTP 500, once: no retries") {
    status = 500;
    body = "{\"error\":\"db down\"}";
    Result r = d->call(query_call("/a"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("HTTP 500"));
    CHECK_THAT(r.message, Catch::Contains("db down"));
    CHECK(server.requests().size() == 1);
  }
  SECTION("HTTP 404") {
    status = 404;
    Result r = d->call(query_call("/a"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("HTTP 404"));
  }
  SECTION("slow") {
    delay = 1200;
    body = "{\"a\":1}";
    auto t0 = std::chrono::steady_clock::now();
    Result r = d->call(query_call("/a", 250));
    CHECK(r.status == Status::Error);
    CHECK(ms_since(t0) < 900);
  }
  SECTION("unreachable") {
    auto gone = driver_for("http://127.0.0.1:" + std::to_string(free_port()) + "/stats");
    Result r = gone->call(query_call("/a"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::StartsWith("http_json at http://127.0.0.1:"));
  }
}

TEST_CASE("http_json: pointers parse by RFC 6901", "[http_json]") {
  std::vector<std::string> tokens;
  std::string error;
  REQUIRE(json_pointer::parse("", tokens, error));
  CHECK(tokens.empty());
  REQUIRE(json_pointer::parse("/", tokens, error));
  CHECK(tokens == std::vector<std::string>{""});
  REQUIRE(json_pointer::parse("/a~01/~1/c%25d", tokens, error));
  CHECK(tokens == std::vector<std::string>{"a~1", "/", "c%25d"});
  REQUIRE(json_pointer::parse("#/c%25d/e%20f", tokens, error));
  CHECK(tokens == std::vector<std::string>{"c%d", "e f"});
  CHECK(json_pointer::text_of({"a/b", "~"}, 2) == "/a~1b/~0");
  CHECK_FALSE(json_pointer::parse("a", tokens, error));
  CHECK_FALSE(json_pointer::parse("/~", tokens, error));

  nlohmann::json doc = nlohmann::json::parse(R"({"": 1, " ": 2, "k": [10, 20]})");
  REQUIRE(json_pointer::parse("/", tokens, error));
  auto found = json_pointer::resolve(doc, tokens);
  REQUIRE(found.outcome == json_pointer::Lookup::Outcome::Found);
  CHECK(*found.value == 1);
  REQUIRE(json_pointer::parse("/k/1", tokens, error));
  CHECK(*json_pointer::resolve(doc, tokens).value == 20);
}

TEST_CASE("http_json: a bad configuration is refused", "[http_json]") {
  auto env = DriverEnv::process(".");
  CHECK_THROWS_WITH(make_http_json("stats", Value::of_map({}), env), Catch::Contains("stats: field 'url' is required"));
  CHECK_THROWS_WITH(make_http_json("stats", Value::of_map({{"url", Value::string("ftp://x")}}), env), Catch::Contains("http://"));
}
