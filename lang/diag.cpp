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

// Tabs are shown as single spaces so the caret lines up in any terminal.
std::string display_line(std::string_view line) {
  std::string out(line);
  std::replace(out.begin(), out.end(), '\t', ' ');
  return out;
}

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

void render_snippet(std::string& out, const SourceFile& file, Span span, const std::string& label, bool color, const char* mark_color,
                    char mark) {
  LineCol lc = file.line_col(span.begin);
  std::string_view line = file.line_text(lc.line);
  std::string num = std::to_string(lc.line);
  std::string pad(num.size(), ' ');
  out += pad + " |\n";
  out += num + " | " + display_line(line) + "\n";
  // Underline to the end of the span or of the line, whichever comes first; at least one mark.
  size_t line_begin = span.begin - (static_cast<size_t>(0));
  (void)line_begin;
  std::string_view rest = file.slice({span.file, span.begin, span.end});
  size_t nl = rest.find('\n');
  if (nl != std::string_view::npos) rest = rest.substr(0, nl);
  size_t width = std::max<size_t>(1, code_points(rest));
  out += pad + " | " + std::string(lc.column - 1, ' ');
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

}  // namespace gray
