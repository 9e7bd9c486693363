#include "engine/money.h"

#include <boost/multiprecision/cpp_int.hpp>
#include <cassert>
#include <charconv>

namespace carecard {
namespace {

std::optional<int64_t> ParseUnsignedFen(std::string_view text) {
  const size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 12) return std::nullopt;
  if (dot != std::string_view::npos && (frac.empty() || frac.size() > 2)) return std::nullopt;
  int64_t fen = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    fen = fen * 10 + (c - '0');
  }
  int64_t cents = 0;
  for (size_t i = 0; i < 2; ++i) {
    char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9') return std::nullopt;
    cents = cents * 10 + (c - '0');
  }
  return fen * 100 + cents;
}

}  // namespace

std::optional<Money> Money::ParsePositive(std::string_view text) {
  // The common form, 1 to 12 digits, a point and 2 digits, in one pass.
  const size_t n = text.size();
  if (n >= 4 && n <= 15 && text[n - 3] == '.') {
    // Unsigned on purpose: a non-digit makes d huge and the sum wraps, which
    // is defined for uint64_t; the result is then discarded by `digits`.
    uint64_t fen = 0;
    bool digits = true;
    for (size_t i = 0; i < n; ++i) {
      if (i == n - 3) continue;
      const unsigned d = static_cast<unsigned char>(text[i]) - '0';
      digits &= d < 10;
      fen = fen * 10 + d;
    }
    if (!digits || fen == 0) return std::nullopt;
    return Money(static_cast<int64_t>(fen));
  }
  auto fen = ParseUnsignedFen(text);
  if (!fen || *fen == 0) return std::nullopt;
  return Money(*fen);
}

std::optional<Money> Money::ParseSigned(std::string_view text) {
  bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  auto fen = ParseUnsignedFen(text);
  if (!fen) return std::nullopt;
  return Money(negative ? -*fen : *fen);
}

size_t Money::FormatTo(char* out) const {
  uint64_t magnitude = fen_ < 0 ? uint64_t(0) - static_cast<uint64_t>(fen_) : static_cast<uint64_t>(fen_);
  char* p = out;
  if (fen_ < 0) *p++ = '-';
  auto [end, ec] = std::to_chars(p, out + kMaxFormattedBytes - 3, magnitude / 100);
  assert(ec == std::errc());
  (void)ec;
  p = end;
  *p++ = '.';
  *p++ = static_cast<char>('0' + magnitude % 100 / 10);
  *p++ = static_cast<char>('0' + magnitude % 10);
  return static_cast<size_t>(p - out);
}

std::string Money::ToString() const {
  // Work in unsigned to print INT64_MIN safely.
  uint64_t magnitude = fen_ < 0 ? uint64_t(0) - static_cast<uint64_t>(fen_) : static_cast<uint64_t>(fen_);
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, magnitude / 100);
  assert(ec == std::errc());
  std::string out;
  out.reserve(24);
  if (fen_ < 0) out.push_back('-');
  out.append(buffer, end);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + magnitude % 100 / 10));
  out.push_back(static_cast<char>('0' + magnitude % 10));
  return out;
}

void Money::ThrowOverflow(const char* what) { throw MoneyOverflow(what); }

Money Money::MultiplyRatio(int64_t numerator, int64_t denominator, Rounding rounding) const {
  assert(denominator > 0 && numerator >= 0);
  using boost::multiprecision::int128_t;
  int128_t product = int128_t(fen_) * numerator;
  int128_t quotient = product / denominator;
  int128_t remainder = product % denominator;  // same sign as product
  int128_t twice = (remainder < 0 ? -remainder : remainder) * 2;
  bool away = false;
  if (twice > denominator) {
    away = true;
  } else if (twice == denominator) {
    away = rounding == Rounding::kHalfUp || (quotient % 2 != 0);
  }
  if (away) quotient += product < 0 ? -1 : 1;
  if (quotient > INT64_MAX || quotient < INT64_MIN) throw MoneyOverflow("amount overflow in proration");
  return Money(static_cast<int64_t>(quotient));
}

}  // namespace carecard
