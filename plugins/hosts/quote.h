// Quoting for POSIX shells. Commands reach the hosts drivers as finished shell text; values that
// are put into such text (a version, a path, a message) must become exactly one word whatever
// bytes they hold, so that no value can add shell syntax of its own.
#pragma once

#include <string>
#include <string_view>

namespace gray::plugins {

// `s` as one POSIX shell word, always in single quotes: 'abc', '' for the empty string, and
// 'it'\''s' for a quote inside. Inside single quotes every byte but the quote itself is literal
// (newlines, $, `, \, NUL-free binary), so this is safe for any input without a NUL byte; a NUL
// cannot be passed in a shell word at all and is dropped.
std::string shell_quote(std::string_view s);

}  // namespace gray::plugins
