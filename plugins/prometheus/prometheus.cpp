#include "plugins/prometheus/prometheus.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>

#include "plugins/http/http.h"

namespace gray::plugins {

namespace prometheus {

namespace {

using nlohmann::json;

constexpr size_t kSeriesShown = 3;

// The first bytes of an answer, on one line, for a message about an answer we cannot read.
std::string first_bytes(const std::string& body, size_t n = 120) {
  std::string text = body.substr(0, n);
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return "\"" + text + (body.size() > n ? "...\"" : "\"");
}

std::string garbage(const std::string& where, const std::string& what, const std::string& body) {
  return where + ": the answer is not Prometheus's query JSON (garbage: " + what + "); it begins " + first_bytes(body);
}

// `up{instance="a:9100", job="node"}`: how people write a series.
std::string label_set(const json& metric) {
  if (!metric.is_object()) return "{}";
  std::string name, labels;
  for (const auto& [key, value] : metric.items()) {
    std::string v = value.is_string() ? value.get<std::string>() : value.dump();
    if (key == "__name__") {
      name = v;
      continue;
    }
    labels += (labels.empty() ? "" : ", ") + key + "=\"" + v + "\"";
  }
  return name + "{" + labels + "}";
}

Result no_data(const std::string& where, const std::string& why) {
  Result r;
  r.status = Result::Status::NoData;
  r.message = where + ": " + why;
  return r;
}

// A [timestamp, "value"] pair as a number; NaN (0/0, a missing histogram bucket) is no data.
Result sample_value(const std::string& where, const json& pair, const std::string& body) {
  if (!pair.is_array() || pair.size() != 2 || !pair[1].is_string())
    return error_result(garbage(where, "a sample is not [time, \"value\"]", body));
  double v = 0;
  if (!parse_sample(pair[1].get<std::string>(), v))
    return error_result(garbage(where, "the sample value \"" + pair[1].get<std::string>() + "\" is not a number", body));
  if (std::isnan(v)) return no_data(where, "the query's value is NaN (for example 0/0: nothing was counted)");
  return ok_result(Value::number(v));
}

Result read_vector(const std::string& where, const json& result, const std::string& body) {
  if (!result.is_array()) return error_result(garbage(where, "data.result of a vector is not a list", body));
  if (result.empty()) return no_data(where, "the query matched no series");
  if (result.size() > 1) {
    std::string shown;
    for (size_t i = 0; i < result.size() && i < kSeriesShown; ++i)
      shown += (i ? ", " : "") + label_set(result[i].is_object() && result[i].contains("metric") ? result[i]["metric"] : json());
    if (result.size() > kSeriesShown) shown += " and " + std::to_string(result.size() - kSeriesShown) + " more";
    return failed_result(where + ": the query returned " + std::to_string(result.size()) +
                         " series; aggregate it (sum, avg, max) to one number: " + shown);
  }
  const json& series = result[0];
  if (!series.is_object()) return error_result(garbage(where, "a series is not an object", body));
  if (series.contains("histogram") && !series.contains("value"))
    return failed_result(
        where + ": the series " + label_set(series.value("metric", json())) +
        " is a native histogram, not a number; wrap it in histogram_quantile(), histogram_count() or histogram_sum()");
  if (!series.contains("value")) return error_result(garbage(where, "a series has no value", body));
  return sample_value(where, series["value"], body);
}

}  // namespace

bool parse_sample(const std::string& text, double& out) {
  if (text == "+Inf" || text == "Inf") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (text.empty()) return false;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

Result read_answer(const std::string& where, const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return error_result(garbage(where, "not a JSON object", body));
  if (doc.value("status", "") != "success") {
    std::string type = doc.value("errorType", ""), text = doc.value("error", "");
    if (doc.value("status", "") == "error" && !text.empty())
      return failed_result(where + ": Prometheus refused the query (" + type + "): " + text);
    return error_result(garbage(where, "status is not \"success\"", body));
  }
  const json* data = doc.contains("data") && doc["data"].is_object() ? &doc["data"] : nullptr;
  if (!data || !data->contains("resultType") || !(*data)["resultType"].is_string() || !data->contains("result"))
    return error_result(garbage(where, "no data.resultType and data.result", body));
  const std::string type = (*data)["resultType"].get<std::string>();
  const json& result = (*data)["result"];
  if (type == "vector") return read_vector(where, result, body);
  if (type == "scalar") return sample_value(where, result, body);
  if (type == "matrix")
    return failed_result(where +
                         ": the query returned a range vector (a selector with [duration]); "
                         "reduce it to an instant value, for example with rate(), avg_over_time() or last_over_time()");
  if (type == "string") return failed_result(where + ": the query returned a string, not a number");
  return error_result(garbage(where, "unknown resultType \"" + type + "\"", body));
}

}  // namespace prometheus

namespace {

// A long query shortened for messages: the point is to recognise it, not to read it.
std::string short_query(const std::string& q) { return q.size() <= 160 ? q : q.substr(0, 157) + "..."; }

std::string trim_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

class PrometheusDriver : public Driver {
 public:
  PrometheusDriver(std::string base_url, double timeout_ms, std::string token, const DriverEnv& env)
      : base_(trim_slashes(std::move(base_url))), timeout_ms_(timeout_ms), token_(std::move(token)), client_(env.sleep) {}

  Kind kind() const override { return Kind::Metrics; }

  Result call(const Call& call) override {
    if (call.op != "query")
      return failed_result("prometheus at " + http::display_url(base_) + ": no operation '" + call.op + "'; it has query");
    auto it = call.args.find("query");
    if (it == call.args.end() || it->second.kind != Value::Kind::String || it->second.str.empty())
      return failed_result("prometheus at " + http::display_url(base_) +
                           ": query needs a PromQL expression (a non-empty string)");
    const std::string& query = it->second.str;
    const std::string where = "prometheus at " + http::display_url(base_) + ": query '" + short_query(query) + "'";

    double budget = std::max(1.0, std::min(timeout_ms_, call.timeout_ms));
    http::Response resp = client_.send(request(query, budget));
    Result r = interpret(where, resp);
    // Whatever the server sent back (an error page, a proxy's complaint) may echo the token.
    r.message = http::redact(r.message, {token_});
    r.elapsed_ms = resp.elapsed_ms;
    return r;
  }

 private:
  http::Request request(const std::string& query, double budget_ms) const {
    // Prometheus is told to give up a little before we do, so that a slow query ends with its
    // own "query timed out" message rather than our transport timeout.
    double server_ms = std::max(1.0, budget_ms - std::min(250.0, budget_ms / 10));
    http::Request req;
    req.url =
        base_ + "/api/v1/query?query=" + http::url_encode(query) + "&timeout=" + std::to_string(std::llround(server_ms)) + "ms";
    req.headers.push_back({"Accept", "application/json"});
    if (!token_.empty()) {
      req.headers.push_back({"Authorization", "Bearer " + token_});
      req.secrets.push_back(token_);
    }
    req.timeout_ms = budget_ms;
    req.connect_timeout_ms = std::min(3000.0, budget_ms);
    // A guard asks again on its own schedule; retrying here would only stretch the call past
    // its timeout. (libcurl still re-sends once on a kept-alive connection the server closed.)
    req.retries = 0;
    return req;
  }

  Result interpret(const std::string& where, const http::Response& resp) const {
    if (!resp.transport_ok()) return error_result(where + ": " + resp.error);
    if (resp.status == 200) return prometheus::read_answer(where, resp.body);
    // 400 (bad_data) and 422 (execution) mean the query itself is wrong: the error text says why.
    if (resp.status == 400 || resp.status == 422) {
      Result r = prometheus::read_answer(where, resp.body);
      if (r.status == Result::Status::Failed) return r;
    }
    std::string detail = "HTTP " + std::to_string(resp.status);
    nlohmann::json doc = nlohmann::json::parse(resp.body, nullptr, false);
    if (doc.is_object() && doc.contains("error") && doc["error"].is_string())
      detail += " (" + doc.value("errorType", "error") + "): " + doc["error"].get<std::string>();
    else if (!resp.body.empty())
      detail += ": " + resp.body.substr(0, 200);
    if (resp.status == 401 || resp.status == 403) detail += "; check the token";
    if (resp.status == 404) detail += "; is the url the Prometheus base URL (without /api/v1)?";
    return error_result(where + ": " + detail);
  }

  std::string base_;
  double timeout_ms_;
  std::string token_;
  http::Client client_;
};

}  // namespace

std::unique_ptr<Driver> make_prometheus(const std::string& instance, const Value& config, const DriverEnv& env) {
  std::string url = config_string(instance, config, "url");
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    throw DriverError(instance + ": field 'url' must start with http:// or https:// (got \"" + http::display_url(url) + "\")");
  double timeout_ms = config_ms(instance, config, "timeout", 10000);
  std::string token;
  if (const Value* t = config_field(config, "token")) {
    if (t->kind != Value::Kind::String)
      throw DriverError(instance + ": field 'token' must be a string, such as env(\"PROM_TOKEN\")");
    token = t->str;
  }
  return std::make_unique<PrometheusDriver>(std::move(url), timeout_ms, std::move(token), env);
}

}  // namespace gray::plugins
