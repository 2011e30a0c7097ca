// The live view of a run on a terminal: the timeline scrolls as usual, and the bottom line of the
// terminal always shows where the run is (stage, step, traffic weights, the latest verdict of
// each guard, time running). Off when the terminal is not a TTY: then only the plain lines.
#pragma once

#include <iosfwd>
#include <map>
#include <string>

#include "runtime/interp.h"

namespace gray {

class LiveStatus : public EventSink {
 public:
  // `inner` prints the timeline to `out`; the status line goes to `term` (stderr).
  LiveStatus(EventSink& inner, std::ostream& out, std::ostream& term);
  ~LiveStatus() override;
  void on_event(const Event& e) override;

  // The status line as it would be drawn, `width` columns at most (for tests).
  std::string line(size_t width) const;

  // Whether standard error is a terminal that can redraw a line (and NO_COLOR-style opt-outs:
  // TERM=dumb turns it off).
  static bool terminal_can_redraw();

 private:
  void clear();
  void draw();

  EventSink& inner_;
  std::ostream& out_;
  std::ostream& term_;
  bool drawn_ = false;
  double now_ms_ = 0;
  std::string stage_;
  std::string step_;
  std::string phase_;
  std::map<std::string, double> weights_;       // gateway -> canary %
  std::map<std::string, std::string> guards_;   // guard -> latest verdict
};

}  // namespace gray
