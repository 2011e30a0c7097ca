#include "runtime/live.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sys/ioctl.h>

#include "runtime/report.h"

namespace gray {

namespace {

size_t terminal_width() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 100;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

LiveStatus::LiveStatus(EventSink& inner, std::ostream& out, std::ostream& term) : inner_(inner), out_(out), term_(term) {}

LiveStatus::~LiveStatus() { clear(); }

bool LiveStatus::terminal_can_redraw() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDERR_FILENO) && term && std::strcmp(term, "dumb") != 0;
}

void LiveStatus::on_event(const Event& e) {
  now_ms_ = e.at_ms;
  if (e.kind == "stage" && !e.stage.empty()) stage_ = e.stage;
  if (e.kind == "step" && !e.step.empty()) step_ = e.text;
  if (e.kind == "phase") phase_ = e.data.value("phase", "");
  if (e.kind == "weights") weights_[e.data.value("gateway", "")] = e.data.value("canary", 0.0);
  if (e.kind == "guard") {
    std::string v = e.data.value("verdict", "");
    if (!v.empty()) guards_[e.data.value("guard", "")] = v;
  }
  clear();
  inner_.on_event(e);
  out_.flush();
  if (e.kind != "outcome") draw();
}

std::string LiveStatus::line(size_t width) const {
  std::string s = "[" + clock_text(now_ms_) + "]";
  if (!phase_.empty()) s += " phase " + phase_ + " |";
  if (!stage_.empty()) s += " " + stage_;
  if (!step_.empty()) s += ": " + step_;
  for (const auto& [g, w] : weights_) s += " | " + g + " canary " + number_text(w) + "%";
  size_t pass = 0, fail = 0, other = 0;
  for (const auto& [g, v] : guards_) (v == "pass" ? pass : v == "fail" ? fail : other)++;
  if (!guards_.empty()) {
    s += " | guards " + std::to_string(pass) + " pass";
    if (fail) s += ", " + std::to_string(fail) + " FAIL";
    if (other) s += ", " + std::to_string(other) + " other";
  }
  // Cut at a character boundary: never in the middle of a UTF-8 sequence.
  if (s.size() > width) {
    size_t cut = width > 1 ? width - 1 : 0;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut) + "~";
  }
  return s;
}

void LiveStatus::clear() {
  if (!drawn_) return;
  term_ << "\r\033[K";
  term_.flush();
  drawn_ = false;
}

void LiveStatus::draw() {
  term_ << "\033[7m" << line(terminal_width() - 1) << "\033[0m";
  term_.flush();
  drawn_ = true;
}

}  // namespace gray
