#include "lang/diag.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "lang/codes.h"

namespace gray {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Note: return "note";
  }
  return "error";
}

Diagnostic& Diagnostics::error(std::string code, Span span, std::string message) {
  list_.push_back(Diagnostic{Severity::Error, std::move(code), std::move(message), span, {}, {}, {}});
  return list_.back();
}

Diagnostic& Diagnostics::warning(std::string code, Span span, std::string message) {
  list_.push_back(Diagnostic{Severity::Warning, std::move(code), std::move(message), span, {}, {}, {}});
  return list_.back();
}

size_t Diagnostics::error_count() const {
  return static_cast<size_t>(std::count_if(list_.begin(), list_.end(), [](const Diagnostic& d) { return d.severity == Severity::Error; }));
}

void Diagnostics::sort() {
  std::stable_sort(list_.begin(), list_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.span.file != b.span.file) return a.span.file < b.span.file;
    return a.span.begin < b.span.begin;
  });
}

namespace {

const char* color_of(Severity s) {
  switch (s) {
    case Severity::Error: return "\x1b[1;31m";
    case Severity::Warning: return "\x1b[1;33m";
    case Severity::Note: return "\x1b[1;36m";
  }
  return "";
}

// The line as shown under a diagnostic is a sequence of display units: a UTF-8 character as
// it is, a tab as one space (so the caret lines up), a control character or a byte that is not
// part of valid UTF-8 as '?' (so nothing raw reaches the terminal).

// The length in bytes of the unit that starts at line[i].
size_t unit_bytes(std::string_view line, size_t i) {
  unsigned char c = static_cast<unsigned char>(line[i]);
  size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  bool ok = n > 0 && i + n <= line.size();
  for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(line[i + k]) & 0xC0) == 0x80;
  return ok ? n : 1;
}

// Appends the unit of n bytes that starts at line[i], as displayed.
void append_unit(std::string& out, std::string_view line, size_t i, size_t n) {
  unsigned char c = static_cast<unsigned char>(line[i]);
  if (n == 1 && c >= 0x80) out += '?';  // not valid UTF-8
  else if (c == '\t') out += ' ';
  else if (c < 0x20 || c == 0x7F) out += '?';
  else out.append(line.substr(i, n));
}

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// Long lines are cut to a window around the caret: `from` and `to` are unit indexes.
constexpr size_t kMaxUnits = 160, kUnitsBefore = 60;

struct Window {
  std::string text;  // the units shown, with "..." where the line is cut
  size_t from = 0, to = 0;
  bool long_line = false;  // more than kMaxUnits units: cut to the window
  bool cut_left = false;
};

// Only the units in the window are decoded: on an ASCII line a unit is a byte, so the window is
// found directly; otherwise units are counted from the start of the line up to the window's end.
// Either way a long line with many diagnostics costs a window per diagnostic, not the line.
Window window(std::string_view line, bool ascii, size_t col) {
  Window w;
  size_t count;  // units in the line, counted up to the point where the answer is known
  if (ascii) {
    count = line.size();
  } else {
    count = 0;
    for (size_t i = 0; i < line.size() && count <= kMaxUnits; i += unit_bytes(line, i)) ++count;
  }
  const bool long_line = w.long_line = count > kMaxUnits;
  w.from = long_line && col > kUnitsBefore ? col - kUnitsBefore : 0;
  const size_t limit = long_line ? w.from + kMaxUnits - 20 : count;
  w.cut_left = w.from > 0;
  if (w.cut_left) w.text = "...";
  bool more;  // units remain after the window
  if (ascii) {
    w.to = std::min(line.size(), limit);
    for (size_t i = w.from; i < w.to; ++i) append_unit(w.text, line, i, 1);
    more = w.to < line.size();
  } else {
    size_t i = 0, u = 0;
    for (; u < w.from && i < line.size(); ++u) i += unit_bytes(line, i);
    for (; u < limit && i < line.size(); ++u) {
      const size_t n = unit_bytes(line, i);
      append_unit(w.text, line, i, n);
      i += n;
    }
    w.to = u;
    more = i < line.size();
  }
  if (long_line && more) w.text += "...";
  return w;
}

void render_snippet(std::string& out, const SourceFile& file, Span span, const std::string& label, bool color, const char* mark_color,
                    char mark) {
  LineCol lc = file.line_col(span.begin);
  std::string_view line = file.line_text(lc.line);
  std::string_view rest = file.slice({span.file, span.begin, span.end});
  size_t nl = rest.find('\n');
  if (nl != std::string_view::npos) rest = rest.substr(0, nl);
  size_t col = lc.column - 1;
  size_t width = std::max<size_t>(1, code_points(rest));
  const Window w = window(line, file.line_is_ascii(lc.line), col);
  if (w.long_line) width = std::min(width, w.to > col ? w.to - col : 1);
  size_t caret = col - w.from + (w.cut_left ? 3 : 0);
  std::string num = std::to_string(lc.line);
  std::string pad(num.size(), ' ');
  out += pad + " |\n";
  out += num + " | " + w.text + "\n";
  out += pad + " | " + std::string(caret, ' ');
  if (color) out += mark_color;
  out += std::string(width, mark);
  if (!label.empty()) out += " " + label;
  if (color) out += "\x1b[0m";
  out += "\n";
}

std::string location(const SourceMap& sources, Span span) {
  const SourceFile* f = sources.get(span.file);
  if (!f) return "gray";
  LineCol lc = f->line_col(span.begin);
  return f->path() + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.column);
}

}  // namespace

std::string render_text(const SourceMap& sources, const std::vector<Diagnostic>& diags, const RenderOptions& opt) {
  std::string out;
  for (const Diagnostic& d : diags) {
    const char* c = color_of(d.severity);
    out += location(sources, d.span) + ": ";
    if (opt.color) out += c;
    out += severity_name(d.severity);
    if (opt.color) out += "\x1b[0m\x1b[1m";
    out += ": " + d.message;
    if (!d.code.empty()) out += " [" + d.code + "]";
    if (opt.color) out += "\x1b[0m";
    out += "\n";
    if (const SourceFile* f = sources.get(d.span.file)) render_snippet(out, *f, d.span, "", opt.color, c, '^');
    for (const Label& l : d.secondary) {
      const SourceFile* f = sources.get(l.span.file);
      if (!f) continue;
      out += location(sources, l.span) + ": note: " + l.message + "\n";
      render_snippet(out, *f, l.span, "", opt.color, color_of(Severity::Note), '-');
    }
    for (const std::string& n : d.notes) out += "  = note: " + n + "\n";
    if (!d.help.empty()) out += "  = help: " + d.help + "\n";
  }
  return out;
}

namespace {

nlohmann::json span_json(const SourceMap& sources, Span span) {
  const SourceFile* f = sources.get(span.file);
  if (!f) return nullptr;
  LineCol b = f->line_col(span.begin);
  LineCol e = f->line_col(std::max(span.end, span.begin));
  return {{"file", f->path()},
          {"start", {{"line", b.line}, {"column", b.column}, {"offset", span.begin}}},
          {"end", {{"line", e.line}, {"column", e.column}, {"offset", std::max(span.end, span.begin)}}}};
}

}  // namespace

std::string render_json(const SourceMap& sources, const std::vector<Diagnostic>& diags, const RenderOptions& opt) {
  nlohmann::json arr = nlohmann::json::array();
  for (const Diagnostic& d : diags) {
    nlohmann::json sec = nlohmann::json::array();
    for (const Label& l : d.secondary) sec.push_back({{"message", l.message}, {"span", span_json(sources, l.span)}});
    arr.push_back({{"severity", severity_name(d.severity)},
                   {"code", d.code},
                   {"message", d.message},
                   {"span", span_json(sources, d.span)},
                   {"secondary", sec},
                   {"notes", d.notes},
                   {"help", d.help}});
  }
  nlohmann::json doc = {{"format", "gray-diagnostics"}, {"version", 1}, {"tool", {{"name", "gray"}, {"version", opt.tool_version}}},
                        {"diagnostics", arr}};
  return doc.dump(2) + "\n";
}

std::string render_sarif(const SourceMap& sources, const std::vector<Diagnostic>& diags, const RenderOptions& opt) {
  std::map<std::string, size_t> rule_index;
  nlohmann::json rules = nlohmann::json::array();
  nlohmann::json results = nlohmann::json::array();
  for (const Diagnostic& d : diags) {
    std::string code = d.code.empty() ? "gray" : d.code;
    auto it = rule_index.find(code);
    if (it == rule_index.end()) {
      it = rule_index.emplace(code, rules.size()).first;
      const CodeInfo* info = find_code(code);
      if (!info && opt.describe) info = opt.describe(code);
      nlohmann::json rule = {{"id", code}, {"shortDescription", {{"text", info ? info->summary : code}}}};
      if (info && info->help_uri && *info->help_uri) rule["helpUri"] = info->help_uri;
      rules.push_back(rule);
    }
    nlohmann::json loc = nlohmann::json::object();
    if (const SourceFile* f = sources.get(d.span.file)) {
      LineCol b = f->line_col(d.span.begin);
      LineCol e = f->line_col(std::max(d.span.end, d.span.begin));
      nlohmann::json region = {{"startLine", b.line}, {"startColumn", b.column}, {"endLine", e.line}, {"endColumn", e.column}};
      if (e.line == b.line && e.column == b.column) region["endColumn"] = b.column + 1;
      loc = {{"physicalLocation", {{"artifactLocation", {{"uri", f->path()}}}, {"region", region}}}};
    }
    std::string text = d.message;
    for (const std::string& n : d.notes) text += "\nnote: " + n;
    if (!d.help.empty()) text += "\nhelp: " + d.help;
    const char* level = d.severity == Severity::Error ? "error" : d.severity == Severity::Warning ? "warning" : "note";
    nlohmann::json r = {{"ruleId", code}, {"ruleIndex", it->second}, {"level", level}, {"message", {{"text", text}}}};
    if (!loc.empty()) r["locations"] = nlohmann::json::array({loc});
    results.push_back(r);
  }
  nlohmann::json doc = {
      {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
      {"version", "2.1.0"},
      {"runs",
       nlohmann::json::array({{{"tool",
                                {{"driver",
                                  {{"name", "gray"},
                                   {"semanticVersion", opt.tool_version},
                                   {"rules", rules}}}}},
                               {"results", results}}})}};
  return doc.dump(2) + "\n";
}

namespace {

// GitHub's escaping of workflow command values: the message, and (more strictly) properties.
std::string github_escape(std::string_view s, bool property) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '%': out += "%25"; break;
      case '\r': out += "%0D"; break;
      case '\n': out += "%0A"; break;
      case ':': out += property ? "%3A" : ":"; break;
      case ',': out += property ? "%2C" : ","; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string render_github(const SourceMap& sources, const std::vector<Diagnostic>& diags, const RenderOptions& opt) {
  (void)opt;
  std::string out;
  for (const Diagnostic& d : diags) {
    const char* level = d.severity == Severity::Error ? "error" : d.severity == Severity::Warning ? "warning" : "notice";
    std::vector<std::string> props;
    if (const SourceFile* f = sources.get(d.span.file)) {
      LineCol b = f->line_col(d.span.begin);
      // The end is inclusive: the position of the span's last character.
      LineCol e = f->line_col(d.span.end > d.span.begin ? d.span.end - 1 : d.span.begin);
      props.push_back("file=" + github_escape(f->path(), true));
      props.push_back("line=" + std::to_string(b.line));
      props.push_back("col=" + std::to_string(b.column));
      props.push_back("endLine=" + std::to_string(e.line));
      props.push_back("endColumn=" + std::to_string(e.column));
    }
    if (!d.code.empty()) props.push_back("title=" + github_escape(d.code, true));
    std::string message = d.message;
    for (const std::string& n : d.notes) message += "\nnote: " + n;
    if (!d.help.empty()) message += "\nhelp: " + d.help;
    out += std::string("::") + level;
    for (size_t i = 0; i < props.size(); ++i) out += (i ? "," : " ") + props[i];
    out += "::" + github_escape(message, false) + "\n";
  }
  return out;
}

}  // namespace gray
