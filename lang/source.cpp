#include "lang/source.h"

#include <algorithm>
#include <cstring>

namespace gray {

SourceFile::SourceFile(uint32_t id, std::string path, std::string text)
    : id_(id), path_(std::move(path)), text_(std::move(text)) {
  // A UTF-8 byte order mark says nothing a UTF-8 file needs; drop it so columns start at 1.
  if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) text_.erase(0, 3);
  const char* const base = text_.data();
  const char* const end = base + text_.size();
  line_starts_.push_back(0);
  for (const char* p = base; (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)))) != nullptr; ++p)
    line_starts_.push_back(static_cast<uint32_t>(p - base + 1));
  // Most files are all ASCII, where a column is a byte count; otherwise note which lines are not.
  unsigned char high = 0;
  for (const char c : text_) high |= static_cast<unsigned char>(c);
  if (high & 0x80) {
    non_ascii_lines_.assign(line_starts_.size(), false);
    for (size_t i = 0; i < text_.size(); ++i)
      if (static_cast<unsigned char>(text_[i]) & 0x80) {
        const size_t line = static_cast<size_t>(std::upper_bound(line_starts_.begin(), line_starts_.end(), i) - line_starts_.begin()) - 1;
        non_ascii_lines_[line] = true;
        i = line + 1 < line_starts_.size() ? line_starts_[line + 1] - 1 : text_.size();  // on to the next line
      }
  }
}

bool SourceFile::line_is_ascii(uint32_t line) const {
  return non_ascii_lines_.empty() || line == 0 || line > non_ascii_lines_.size() || !non_ascii_lines_[line - 1];
}

LineCol SourceFile::line_col(uint32_t offset) const {
  offset = std::min<uint32_t>(offset, static_cast<uint32_t>(text_.size()));
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  uint32_t line = static_cast<uint32_t>(it - line_starts_.begin());
  const uint32_t start = line_starts_[line - 1];
  if (line_is_ascii(line)) return {line, offset - start + 1};
  uint32_t col = 1;
  // Count code points, not bytes: continuation bytes (10xxxxxx) do not start a column.
  for (uint32_t i = start; i < offset; ++i)
    if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80) ++col;
  return {line, col};
}

std::string_view SourceFile::line_text(uint32_t line) const {
  if (line == 0 || line > line_starts_.size()) return {};
  uint32_t b = line_starts_[line - 1];
  uint32_t e = line < line_starts_.size() ? line_starts_[line] : static_cast<uint32_t>(text_.size());
  while (e > b && (text_[e - 1] == '\n' || text_[e - 1] == '\r')) --e;
  return std::string_view(text_).substr(b, e - b);
}

std::string_view SourceFile::slice(Span s) const {
  uint32_t b = std::min<uint32_t>(s.begin, static_cast<uint32_t>(text_.size()));
  uint32_t e = std::min<uint32_t>(std::max(s.end, b), static_cast<uint32_t>(text_.size()));
  return std::string_view(text_).substr(b, e - b);
}

const SourceFile& SourceMap::add(std::string path, std::string text) {
  uint32_t id = static_cast<uint32_t>(files_.size() + 1);
  files_.push_back(std::make_unique<SourceFile>(id, std::move(path), std::move(text)));
  return *files_.back();
}

const SourceFile* SourceMap::get(uint32_t id) const {
  if (id == 0 || id > files_.size()) return nullptr;
  return files_[id - 1].get();
}

}  // namespace gray
