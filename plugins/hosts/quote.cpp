#include "plugins/hosts/quote.h"

namespace gray::plugins {

std::string shell_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  for (char c : s) {
    if (c == '\'') out += "'\\''";  // close the quote, an escaped quote, open again
    else if (c != '\0') out += c;
  }
  out += '\'';
  return out;
}

}  // namespace gray::plugins
