// The live status line of `gray run` on a terminal.
#include <catch2/catch.hpp>

#include <sstream>

#include "runtime/live.h"
#include "runtime/report.h"

using namespace gray;

namespace {

Event ev(double at, std::string kind, std::string stage, std::string text, nlohmann::json data = nlohmann::json::object()) {
  Event e;
  e.at_ms = at;
  e.kind = std::move(kind);
  e.stage = std::move(stage);
  e.text = std::move(text);
  e.step = e.kind == "step" ? "traffic.step1" : "";
  e.data = std::move(data);
  return e;
}

}  // namespace

TEST_CASE("the live status line shows stage, step, weights and guard verdicts, and clears itself for each timeline line") {
  std::ostringstream out, term;
  EventPrinter printer(out, EventPrinter::Style::Timeline);
  LiveStatus live(printer, out, term);
  live.on_event(ev(0, "stage", "traffic", "ramp traffic"));
  live.on_event(ev(1000, "step", "traffic", "shift 5% of traffic to the canary"));
  live.on_event(ev(1050, "weights", "traffic", "edge: canary 5%", {{"gateway", "edge"}, {"canary", 5}}));
  live.on_event(ev(31050, "guard", "traffic", "errors ok", {{"guard", "errors"}, {"verdict", "pass"}}));
  live.on_event(ev(61050, "guard", "traffic", "p99 high", {{"guard", "p99"}, {"verdict", "fail"}}));
  CHECK(live.line(200) == "[0:01:01.050] traffic: shift 5% of traffic to the canary | edge canary 5% | guards 1 pass, 1 FAIL");
  CHECK(live.line(20) == "[0:01:01.050] traff~");
  // The timeline itself is unchanged; the status line lives on the terminal stream only.
  CHECK(out.str().find("\033") == std::string::npos);
  CHECK(out.str().find("shift 5% of traffic to the canary") != std::string::npos);
  // Every redraw is preceded by a clear of the previous one.
  std::string t = term.str();
  size_t draws = 0, clears = 0;
  for (size_t p = t.find("\033[7m"); p != std::string::npos; p = t.find("\033[7m", p + 1)) ++draws;
  for (size_t p = t.find("\r\033[K"); p != std::string::npos; p = t.find("\r\033[K", p + 1)) ++clears;
  CHECK(draws == 5);
  CHECK(clears == 4);
}
