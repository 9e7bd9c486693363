#include "rules/spelling.h"

#include <algorithm>
#include <array>
#include <cassert>

namespace carecard {
namespace {

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

size_t AllowedEdits(size_t length) {
  if (length <= 4) return 1;
  if (length <= 8) return 2;
  return 3;
}

}  // namespace

size_t CountCodePoints(std::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if (!IsContinuationByte(c)) ++count;
  }
  return count;
}

std::string_view CodePointAt(std::string_view text, size_t offset) {
  assert(offset < text.size());
  size_t end = offset + 1;
  while (end < text.size() && end - offset < 4 && IsContinuationByte(text[end])) ++end;
  return text.substr(offset, end - offset);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  // Three rolling rows: the transposition step looks two rows back.
  const size_t width = b.size() + 1;
  std::array<size_t, kMaxSuggestedNameBytes + 1> before_previous{};
  std::array<size_t, kMaxSuggestedNameBytes + 1> previous{};
  std::array<size_t, kMaxSuggestedNameBytes + 1> current{};
  if (a.size() > kMaxSuggestedNameBytes || b.size() > kMaxSuggestedNameBytes) {
    return std::max(a.size(), b.size());  // callers never ask; a safe upper bound
  }
  for (size_t j = 0; j < width; ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j < width; ++j) {
      const size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      size_t best = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        best = std::min(best, before_previous[j - 2] + 1);
      }
      current[j] = best;
    }
    before_previous = previous;
    previous = current;
  }
  return previous[b.size()];
}

std::optional<std::string_view> NearestName(std::string_view found, std::span<const std::string_view> candidates) {
  if (found.empty() || found.size() > kMaxSuggestedNameBytes) return std::nullopt;
  std::optional<std::string_view> best;
  size_t best_distance = 0;
  for (std::string_view candidate : candidates) {
    if (candidate.size() > kMaxSuggestedNameBytes || candidate == found) continue;
    const size_t distance = EditDistance(found, candidate);
    if (distance > AllowedEdits(std::min(found.size(), candidate.size()))) continue;
    if (!best || distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace carecard
