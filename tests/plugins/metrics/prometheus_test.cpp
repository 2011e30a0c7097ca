// The Prometheus driver against a real Prometheus (scraping a test exporter), and against a test
// HTTP server for the answers a healthy Prometheus does not give (500, garbage, slow).
#include "plugins/prometheus/prometheus.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <iostream>
#include <vector>

#include "tests/plugins/metrics/metrics_support.h"

using namespace gray;
using namespace gray::plugins;
using namespace gray::testing;
using namespace gray::testing::metrics;
using Status = Result::Status;

namespace {

const char* kExporterText =
    "# TYPE gray_test_up gauge\n"
    "gray_test_up 1\n"
    "gray_test_errors{version=\"v1\"} 0.5\n"
    "gray_test_errors{version=\"v2\"} 2\n"
    "gray_test_errors{version=\"v3\"} 4\n"
    "gray_test_errors{version=\"v4\"} 8\n"
    "gray_test_nan NaN\n"
    "gray_test_inf +Inf\n"
    "gray_test_neg_inf -Inf\n"
    "gray_test_driven{stage=\"canary\"} 1\n";

Value config(const std::string& url, double timeout_ms = 5000, const std::string& token = "") {
  Map m{{"url", Value::string(url)}, {"timeout", Value::duration_ms(timeout_ms)}};
  if (!token.empty()) m["token"] = Value::string(token, true);
  return Value::of_map(std::move(m));
}

std::unique_ptr<Driver> driver_for(const std::string& url, double timeout_ms = 5000, const std::string& token = "") {
  return make_prometheus("prom", config(url, timeout_ms, token), DriverEnv::process("."));
}

// The shared Prometheus, once it has scraped the exporter at least once (~6 s the first time).
PrometheusFixture& scraped_prometheus() {
  PrometheusFixture& p = PrometheusFixture::get();
  static bool ready = [&] {
    p.set_metrics(kExporterText);
    auto d = driver_for(p.url());
    auto t0 = std::chrono::steady_clock::now();
    while (ms_since(t0) < 30000) {
      if (d->call(query_call("gray_test_errors{version=\"v4\"}")).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }();
  if (!ready) throw std::runtime_error("prometheus at " + p.url() + " has no sample from the test exporter after 30 s");
  return p;
}

// Polls until `done` accepts the result of `query`, for up to `ms`.
Result wait_for(Driver& d, const std::string& query, const std::function<bool(const Result&)>& done, double ms = 8000) {
  auto t0 = std::chrono::steady_clock::now();
  Result r = d.call(query_call(query));
  while (!done(r) && ms_since(t0) < ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    r = d.call(query_call(query));
  }
  return r;
}

HttpReply json_reply(int status, const std::string& body) {
  HttpReply r;
  r.status = status;
  r.body = body;
  return r;
}

}  // namespace

TEST_CASE("prometheus: a one-sample vector and a scalar become numbers", "[prometheus][real]") {
  auto& p = scraped_prometheus();
  auto d = driver_for(p.url());
  Result r = d->call(query_call("gray_test_errors{version=\"v2\"}"));
  REQUIRE(r.status == Status::Ok);
  CHECK(r.value.kind == Value::Kind::Number);
  CHECK(r.value.num == 2);
  CHECK(r.elapsed_ms > 0);

  r = d->call(query_call("sum(gray_test_errors)"));
  REQUIRE(r.ok());
  CHECK(r.value.num == Approx(14.5));

  // scalar() and plain arithmetic answer with resultType "scalar".
  r = d->call(query_call("scalar(gray_test_up) * 3"));
  REQUIRE(r.ok());
  CHECK(r.value.num == 3);
  r = d->call(query_call("0.25"));
  REQUIRE(r.ok());
  CHECK(r.value.num == 0.25);
}

TEST_CASE("prometheus: no series and NaN are no data, infinities are numbers", "[prometheus][real]") {
  auto& p = scraped_prometheus();
  auto d = driver_for(p.url());
  Result r = d->call(query_call("gray_test_not_there{job=\"gray\"}"));
  CHECK(r.status == Status::NoData);
  CHECK_THAT(r.message, Catch::Contains("matched no series"));
  CHECK_THAT(r.message, Catch::Contains("gray_test_not_there"));

  r = d->call(query_call("gray_test_nan"));
  CHECK(r.status == Status::NoData);
  CHECK_THAT(r.message, Catch::Contains("NaN"));
  // 0/0 is how a rate ratio looks when nothing was counted.
  r = d->call(query_call("sum(gray_test_up) * 0 / 0"));
  CHECK(r.status == Status::NoData);

  r = d->call(query_call("gray_test_inf"));
  REQUIRE(r.ok());
  CHECK(std::isinf(r.value.num));
  CHECK(r.value.num > 0);
  r = d->call(query_call("gray_test_neg_inf"));
  REQUIRE(r.ok());
  CHECK(std::isinf(r.value.num));
  CHECK(r.value.num < 0);
}

TEST_CASE("prometheus: several series fail and ask for an aggregation", "[prometheus][real]") {
  auto& p = scraped_prometheus();
  auto d = driver_for(p.url());
  Result r = d->call(query_call("gray_test_errors"));
  REQUIRE(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("the query returned 4 series; aggregate it (sum, avg, max) to one number"));
  CHECK_THAT(r.message, Catch::Contains("gray_test_errors{"));
  CHECK_THAT(r.message, Catch::Contains("version=\""));
  CHECK_THAT(r.message, Catch::Contains("and 1 more"));
}

TEST_CASE("prometheus: a bad query fails with Prometheus's own error text", "[prometheus][real]") {
  auto& p = scraped_prometheus();
  auto d = driver_for(p.url());
  Result r = d->call(query_call("sum(rate(gray_test_up[1m]"));
  REQUIRE(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("Prometheus refused the query (bad_data)"));
  CHECK_THAT(r.message, Catch::Contains("parse error"));
  CHECK_THAT(r.message, Catch::StartsWith("prometheus at " + p.url() + ": query 'sum(rate(gray_test_up[1m]'"));

  r = d->call(query_call("gray_test_up[1m]"));
  REQUIRE(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("range vector"));

  r = d->call(query_call("\"a string\""));
  REQUIRE(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("a string, not a number"));

  Call empty = query_call("");
  CHECK(d->call(empty).status == Status::Failed);
}

TEST_CASE("prometheus: the value follows what the target exports", "[prometheus][real]") {
  auto& p = scraped_prometheus();
  auto d = driver_for(p.url());
  std::string text = kExporterText;
  auto swap = [&](const std::string& from, const std::string& to) { text.replace(text.find(from), from.size(), to); };
  swap("gray_test_driven{stage=\"canary\"} 1", "gray_test_driven{stage=\"canary\"} 42");
  p.set_metrics(text);
  Result r = wait_for(*d, "gray_test_driven", [](const Result& x) { return x.ok() && x.value.num == 42; });
  CHECK(r.ok());
  CHECK(r.value.num == 42);
  p.set_metrics(kExporterText);
  r = wait_for(*d, "gray_test_driven", [](const Result& x) { return x.ok() && x.value.num == 1; });
  CHECK(r.value.num == 1);
}

TEST_CASE("prometheus: unreachable is an error, quickly", "[prometheus]") {
  int closed = free_port();
  auto d = driver_for("http://127.0.0.1:" + std::to_string(closed));
  auto t0 = std::chrono::steady_clock::now();
  Result r = d->call(query_call("up"));
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::StartsWith("prometheus at http://127.0.0.1:" + std::to_string(closed) + ": query 'up': "));
  CHECK(ms_since(t0) < 2000);
}

TEST_CASE("prometheus: the query is url-encoded and carries the timeout; the token is sent but never shown",
          "[prometheus][fake]") {
  const std::string token = "tok-3f9a7e1c55";
  HttpServer fake([&](const HttpRequest& req) {
    if (req.header("authorization") != "Bearer " + token)
      return json_reply(401, "{\"status\":\"error\",\"errorType\":\"unauthorized\",\"error\":\"bad token " +
                                 req.header("authorization") + "\"}");
    return json_reply(
        200, R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"0.125"]}]}})");
  });
  std::string query = "sum(rate(http_errors{version=\"2.4.1\", path=~\"/a&b\"}[1m])) / 100";
  auto d = driver_for(fake.url() + "/", 4000, token);
  Result r = d->call(query_call(query, 2000));
  REQUIRE(r.ok());
  CHECK(r.value.num == 0.125);
  auto seen = fake.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "GET");
  CHECK(seen[0].path == "/api/v1/query");
  CHECK(seen[0].query.at("query") == query);
  CHECK(seen[0].target.find("&b") == std::string::npos);  // the & inside the query is encoded
  // The call's 2 s budget wins over the configured 4 s; Prometheus is told a little less.
  CHECK(seen[0].query.at("timeout") == "1800ms");

  auto wrong = driver_for(fake.url(), 4000, "wrong-secret-77");
  r = wrong->call(query_call("up"));
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::Contains("401"));
  CHECK_THAT(r.message, Catch::Contains("check the token"));
  CHECK(r.message.find("wrong-secret-77") == std::string::npos);
}

TEST_CASE("prometheus: answers a healthy Prometheus does not give", "[prometheus][fake]") {
  std::string answer_status = "200", answer_body;
  int delay = 0;
  HttpServer fake([&](const HttpRequest&) {
    HttpReply r = json_reply(std::stoi(answer_status), answer_body);
    r.delay_ms = delay;
    return r;
  });
  auto d = driver_for(fake.url(), 5000);

  SECTION("HTTP 500 is an error") {
    answer_status = "500";
    answer_body = "internal trouble";
    Result r = d->call(query_call("up"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("HTTP 500"));
    CHECK_THAT(r.message, Catch::Contains("internal trouble"));
  }
  SECTION("Prometheus's own timeout (503) is an error") {
    answer_status = "503";
    answer_body = R"({"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"})";
    Result r = d->call(query_call("up"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("(timeout): query timed out in expression evaluation"));
  }
  SECTION("an execution error (422) fails with its text") {
    answer_status = "422";
    answer_body = R"({"status":"error","errorType":"execution","error":"found duplicate series for the match group"})";
    Result r = d->call(query_call("a / on(x) b"));
    CHECK(r.status == Status::Failed);
    CHECK_THAT(r.message, Catch::Contains("found duplicate series"));
  }
  SECTION("HTML instead of JSON is garbage, with its first bytes") {
    answer_body = "<html><body>Login required</body></html>";
    Result r = d->call(query_call("up"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("garbage"));
    CHECK_THAT(r.message, Catch::Contains("<html><body>Login"));
  }
  SECTION("JSON of another shape is garbage") {
    answer_body = R"({"status":"success","data":{"result":[]}})";
    CHECK(d->call(query_call("up")).status == Status::Error);
    answer_body = R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}})";
    Result r = d->call(query_call("up"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("is not [time"));
    answer_body = R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"many"]}]}})";
    r = d->call(query_call("up"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("\"many\" is not a number"));
    answer_body = "";
    CHECK(d->call(query_call("up")).status == Status::Error);
  }
  SECTION("a native histogram asks for a function") {
    answer_body =
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"h"},"histogram":[1,{"count":"3","sum":"1"}]}]}})";
    Result r = d->call(query_call("h"));
    CHECK(r.status == Status::Failed);
    CHECK_THAT(r.message, Catch::Contains("histogram_quantile"));
  }
  SECTION("a slow answer times out within the call's timeout") {
    delay = 1500;
    answer_body = R"({"status":"success","data":{"resultType":"scalar","result":[1,"1"]}})";
    auto t0 = std::chrono::steady_clock::now();
    Result r = d->call(query_call("up", 300));
    double took = ms_since(t0);
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("imed out"));
    CHECK(took < 1000);
  }
}

TEST_CASE("prometheus: sample values as Prometheus writes them", "[prometheus]") {
  double v = 0;
  CHECK(prometheus::parse_sample("1.5e3", v));
  CHECK(v == 1500);
  CHECK(prometheus::parse_sample("+Inf", v));
  CHECK(std::isinf(v));
  CHECK(prometheus::parse_sample("-Inf", v));
  CHECK(v < 0);
  CHECK(prometheus::parse_sample("NaN", v));
  CHECK(std::isnan(v));
  CHECK_FALSE(prometheus::parse_sample("", v));
  CHECK_FALSE(prometheus::parse_sample("12abc", v));
}

TEST_CASE("prometheus: a bad configuration is refused when the driver is built", "[prometheus]") {
  auto env = DriverEnv::process(".");
  CHECK_THROWS_WITH(make_prometheus("prom", Value::of_map({}), env), Catch::Contains("prom: field 'url' is required"));
  CHECK_THROWS_WITH(make_prometheus("prom", Value::of_map({{"url", Value::string("127.0.0.1:9090")}}), env),
                    Catch::Contains("must start with http://"));
  CHECK_THROWS_WITH(
      make_prometheus("prom", Value::of_map({{"url", Value::string("http://x")}, {"timeout", Value::number(5)}}), env),
      Catch::Contains("duration"));
  CHECK_THROWS_WITH(
      make_prometheus("prom", Value::of_map({{"url", Value::string("http://x")}, {"token", Value::number(5)}}), env),
      Catch::Contains("'token' must be a string"));
}

TEST_CASE("prometheus: query latency against the real server", "[prometheus][real][figures]") {
  auto& p = scraped_prometheus();
  auto d = driver_for(p.url());
  std::vector<double> took;
  for (int i = 0; i < 50; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(d->call(query_call("sum(gray_test_errors)")).ok());
    took.push_back(ms_since(t0));
  }
  std::sort(took.begin(), took.end());
  std::cout << "prometheus query latency over 50 queries: median " << took[25] << " ms, p90 " << took[45] << " ms, max "
            << took.back() << " ms\n";
  CHECK(took[25] < 200);
}
