#include "runtime/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace gray {

std::string clock_text(double ms) {
  long long total = static_cast<long long>(std::floor(ms));
  long long h = total / 3600000, m = (total / 60000) % 60, s = (total / 1000) % 60, rest = total % 1000;
  char buf[48];
  if (rest) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld.%03lld", h, m, s, rest);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  return buf;
}

EventPrinter::EventPrinter(std::ostream& out, Style style, bool show_guards) : out_(out), style_(style), show_guards_(show_guards) {}

nlohmann::json event_json(const Event& e) {
  nlohmann::json j = {{"v", 1}, {"at_ms", e.at_ms}, {"kind", e.kind}, {"text", e.text}};
  if (!e.stage.empty()) j["stage"] = e.stage;
  if (!e.step.empty()) j["step"] = e.step;
  if (!e.host.empty()) j["host"] = e.host;
  if (!e.data.empty()) j["data"] = e.data;
  return j;
}

void EventPrinter::on_event(const Event& e) {
  if (style_ == Style::Quiet) {
    events_.push_back(e);  // printed at the end, as one JSON document
    return;
  }
  if (style_ == Style::JsonLines) {
    // Streamed: a consumer reading a pipe (a dashboard, CI) sees each event when it happens.
    out_ << event_json(e).dump() << "\n" << std::flush;
    return;
  }
  if (e.kind == "guard" && !show_guards_) return;
  std::string where = e.stage.empty() ? e.kind : e.stage;
  if (where.size() > 12) where = where.substr(0, 11) + "~";
  char head[64];
  std::snprintf(head, sizeof head, "%12s  %-12s  ", clock_text(e.at_ms).c_str(), where.c_str());
  out_ << head << e.text;
  if (!e.host.empty() && e.text.find(e.host) == std::string::npos) out_ << "  [" << e.host << "]";
  out_ << "\n";
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least p of the samples at or below it.
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

nlohmann::json summarize_runs(const std::vector<RunSample>& runs) {
  size_t promoted = 0, rolled = 0, stuck = 0;
  std::vector<double> failed, duration;
  std::map<std::string, size_t> by_outcome;
  for (const RunSample& r : runs) {
    ++by_outcome[outcome_name(r.outcome)];
    if (r.outcome == Outcome::Kind::Promoted) ++promoted;
    else if (r.outcome == Outcome::Kind::RolledBack) ++rolled;
    else ++stuck;
    failed.push_back(r.failed_requests);
    duration.push_back(r.duration_ms);
  }
  double n = runs.empty() ? 1 : static_cast<double>(runs.size());
  return {{"runs", runs.size()},
          {"promoted", promoted / n},
          {"rolled_back", rolled / n},
          {"stuck", stuck / n},
          {"outcomes", by_outcome},
          {"failed_requests", {{"median", percentile(failed, 0.5)}, {"p95", percentile(failed, 0.95)}, {"max", percentile(failed, 1)}}},
          {"duration_ms", {{"p50", percentile(duration, 0.5)}, {"p95", percentile(duration, 0.95)}, {"max", percentile(duration, 1)}}}};
}

std::string render_runs_text(const nlohmann::json& s) {
  char buf[512];
  auto pct = [](double x) { return x * 100; };
  std::snprintf(buf, sizeof buf,
                "%zu runs: %.1f%% promoted, %.1f%% rolled back, %.1f%% stuck (paused, failed or needing attention)\n"
                "failed requests per run: median %.0f, p95 %.0f, max %.0f\n"
                "duration: p50 %s, p95 %s, max %s\n",
                s["runs"].get<size_t>(), pct(s["promoted"]), pct(s["rolled_back"]), pct(s["stuck"]),
                s["failed_requests"]["median"].get<double>(), s["failed_requests"]["p95"].get<double>(),
                s["failed_requests"]["max"].get<double>(), clock_text(s["duration_ms"]["p50"]).c_str(),
                clock_text(s["duration_ms"]["p95"]).c_str(), clock_text(s["duration_ms"]["max"]).c_str());
  std::string out = buf;
  out += "outcomes:";
  for (const auto& [k, v] : s["outcomes"].items()) out += " " + k + "=" + std::to_string(v.get<size_t>());
  return out + "\n";
}

}  // namespace gray
