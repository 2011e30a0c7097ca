// Small text utilities shared by the front end.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gray {

// Offset of the first byte that is not valid UTF-8 (or is NUL), or npos.
size_t first_invalid_utf8(std::string_view s);

// Edit distance (Levenshtein) between two short words.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a likely typo, else "".
std::string closest_word(std::string_view word, const std::vector<std::string_view>& candidates);
std::string closest_word(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace gray
