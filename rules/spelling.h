// Text helpers for messages: UTF-8 code point counting and "did you mean".
//
// Positions shown to people count characters (Unicode code points), not bytes,
// so that a column in a Chinese-language line matches what an editor shows.
// Thread-safety: pure functions.
#ifndef CARECARD_RULES_SPELLING_H_
#define CARECARD_RULES_SPELLING_H_

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace carecard {

// The longest name NearestName compares; longer input never gets a suggestion
// (bounds the quadratic edit-distance work on hostile input).
inline constexpr size_t kMaxSuggestedNameBytes = 64;

// The number of code points in `text`. Malformed UTF-8 counts one per byte that
// is not a continuation byte, so the count is always defined.
size_t CountCodePoints(std::string_view text);

// The bytes of the code point that starts at `offset` (1 byte for malformed input).
// REQUIRES: offset < text.size().
std::string_view CodePointAt(std::string_view text, size_t offset);

// Optimal-string-alignment distance (Levenshtein plus adjacent transposition),
// over bytes; names here are ASCII.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate nearest to `found`, when it is close enough to be a likely slip:
// at most 1 edit for names up to 4 characters, 2 up to 8, 3 beyond. Ties go to
// the earlier candidate. nullopt when nothing is close or `found` is too long.
std::optional<std::string_view> NearestName(std::string_view found, std::span<const std::string_view> candidates);

}  // namespace carecard

#endif  // CARECARD_RULES_SPELLING_H_
