// What people read while a release runs and after it: a timeline (or JSON lines) of events, and
// the statistics of many simulated runs.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/interp.h"

namespace gray {

// "0:12:30" for 750000 ms (hours:minutes:seconds, milliseconds when not whole).
std::string clock_text(double ms);

// Prints events as they happen: a timeline for people, or versioned JSON lines for machines.
class EventPrinter : public EventSink {
 public:
  enum class Style { Timeline, JsonLines, Quiet };
  EventPrinter(std::ostream& out, Style style, bool show_guards = true);
  void on_event(const Event& e) override;
  // The events so far, kept in Quiet style only (for one JSON document at the end): a timeline
  // or a stream has printed them already, and a long run would hold them all in memory.
  const std::vector<Event>& events() const { return events_; }

 private:
  std::ostream& out_;
  Style style_;
  bool show_guards_;
  std::vector<Event> events_;
};

nlohmann::json event_json(const Event& e);

// One simulated run, as counted for statistics.
struct RunSample {
  Outcome::Kind outcome;
  double failed_requests = 0;
  double duration_ms = 0;
};

// Share of runs promoted / rolled back / stuck, failed requests per run (median, p95), duration
// percentiles.
nlohmann::json summarize_runs(const std::vector<RunSample>& runs);
std::string render_runs_text(const nlohmann::json& summary);

double percentile(std::vector<double> v, double p);

}  // namespace gray
