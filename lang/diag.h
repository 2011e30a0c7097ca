// One diagnostic model for the parser, the checker and the linter, and its renderers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lang/source.h"

namespace gray {

enum class Severity { Error, Warning, Note };

const char* severity_name(Severity s);

struct Label {
  Span span;
  std::string message;
};

struct Diagnostic {
  Severity severity = Severity::Error;
  std::string code;     // stable id, for example "E0101" or "syntax"
  std::string message;  // one line, no trailing period
  Span span;            // primary location
  std::vector<Label> secondary;
  std::vector<std::string> notes;
  std::string help;
};

class Diagnostics {
 public:
  Diagnostic& error(std::string code, Span span, std::string message);
  Diagnostic& warning(std::string code, Span span, std::string message);
  void add(Diagnostic d) { list_.push_back(std::move(d)); }

  const std::vector<Diagnostic>& list() const { return list_; }
  std::vector<Diagnostic>& list() { return list_; }
  size_t error_count() const;
  bool has_errors() const { return error_count() > 0; }
  // Orders by file, then position, keeping insertion order for ties.
  void sort();

 private:
  std::vector<Diagnostic> list_;
};

struct CodeInfo;

struct RenderOptions {
  bool color = false;
  std::string tool_version;
  // Describes the codes lang/codes.h does not know (the lint rules), for SARIF's rule list.
  const CodeInfo* (*describe)(std::string_view code) = nullptr;
};

// file:line:col: severity: message [code], the source line, a caret underline, notes and help.
std::string render_text(const SourceMap& sources, const std::vector<Diagnostic>& diags, const RenderOptions& opt);
// {"format":"gray-diagnostics","version":1,"diagnostics":[...]}
std::string render_json(const SourceMap& sources, const std::vector<Diagnostic>& diags, const RenderOptions& opt);
// SARIF 2.1.0, one run, rules listed from the codes that occur.
std::string render_sarif(const SourceMap& sources, const std::vector<Diagnostic>& diags, const RenderOptions& opt);
// GitHub Actions workflow commands, one per diagnostic:
// ::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=CODE::message
std::string render_github(const SourceMap& sources, const std::vector<Diagnostic>& diags, const RenderOptions& opt);

}  // namespace gray
