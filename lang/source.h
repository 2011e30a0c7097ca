// Source files, byte spans, and line/column lookup.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gray {

// A half-open byte range [begin, end) in one source file.
struct Span {
  uint32_t file = 0;
  uint32_t begin = 0;
  uint32_t end = 0;

  bool valid() const { return file != 0; }
  static Span join(Span a, Span b) { return {a.file, a.begin < b.begin ? a.begin : b.begin, a.end > b.end ? a.end : b.end}; }
};

struct LineCol {
  uint32_t line = 1;    // 1-based
  uint32_t column = 1;  // 1-based, counted in Unicode code points
};

class SourceFile {
 public:
  SourceFile(uint32_t id, std::string path, std::string text);

  uint32_t id() const { return id_; }
  const std::string& path() const { return path_; }
  const std::string& text() const { return text_; }

  LineCol line_col(uint32_t offset) const;
  // The text of a 1-based line, without its line terminator.
  std::string_view line_text(uint32_t line) const;
  // Whether a 1-based line holds only ASCII bytes (then a column is a byte count).
  bool line_is_ascii(uint32_t line) const;
  uint32_t line_count() const { return static_cast<uint32_t>(line_starts_.size()); }
  std::string_view slice(Span s) const;

 private:
  uint32_t id_;
  std::string path_;
  std::string text_;
  std::vector<uint32_t> line_starts_;
  std::vector<bool> non_ascii_lines_;  // by 0-based line; empty when the whole file is ASCII
};

// Owns every loaded file; file ids start at 1 so a default Span is "no location".
class SourceMap {
 public:
  const SourceFile& add(std::string path, std::string text);
  const SourceFile* get(uint32_t id) const;
  size_t size() const { return files_.size(); }

 private:
  std::vector<std::unique_ptr<SourceFile>> files_;
};

}  // namespace gray
