// What the metrics and image tests share: one real Prometheus per test binary (its first sample
// takes ~6 s, so it is started once, on first use, and scrapes an exporter whose text the tests
// set), and small builders for driver configurations and calls.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "plugins/api.h"
#include "plugins/driver.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"

namespace gray::testing::metrics {

inline plugins::Call query_call(const std::string& query, double timeout_ms = 5000) {
  plugins::Call c;
  c.op = "query";
  c.args["query"] = Value::string(query);
  c.timeout_ms = timeout_ms;
  return c;
}

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// A real Prometheus on 127.0.0.1 scraping, every second, an exporter that serves `metrics_text`.
class PrometheusFixture {
 public:
  static PrometheusFixture& get() {
    static PrometheusFixture fixture;
    if (!fixture.error_.empty()) throw std::runtime_error(fixture.error_);
    return fixture;
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void set_metrics(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    text_ = text;
  }

  ~PrometheusFixture() {
    prometheus_.stop();
    if (exporter_) exporter_->stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

 private:
  PrometheusFixture() {
    try {
      start();
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }

  void start() {
    if (find_program("prometheus").empty())
      throw std::runtime_error("prometheus is not installed: apt-get install prometheus (see .ci/deps)");
    exporter_ = std::make_unique<HttpServer>([this](const HttpRequest&) {
      std::lock_guard<std::mutex> lock(mu_);
      HttpReply r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = text_;
      return r;
    });
    dir_ = make_temp_dir("gray-prometheus");
    port_ = free_port();
    write_file(dir_ + "/prometheus.yml",
               "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
               "scrape_configs:\n  - job_name: gray\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
               "    static_configs:\n      - targets: ['127.0.0.1:" +
                   std::to_string(exporter_->port()) + "']\n");
    prometheus_ = Process({"prometheus", "--config.file=" + dir_ + "/prometheus.yml", "--storage.tsdb.path=" + dir_ + "/data",
                           "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
                          dir_ + "/prometheus.log");
    if (!wait_for_http(url() + "/-/ready", 15000))
      throw std::runtime_error("prometheus did not become ready on port " + std::to_string(port_) + ": " +
                               read_file(dir_ + "/prometheus.log"));
  }

  std::string error_;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<HttpServer> exporter_;
  Process prometheus_;
  std::mutex mu_;
  std::string text_ = "gray_test_up 1\n";
};

}  // namespace gray::testing::metrics
