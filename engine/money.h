// Money: an exact, signed amount of Chinese yuan held as integer fen (1/100 yuan).
//
// Never a binary float. Every arithmetic operation is overflow-checked: an
// overflow throws MoneyOverflow, which the batch layer turns into a refused run
// (status 2) rather than a wrong number. Values are small (8 bytes) and cheap to copy.
// Thread-safety: a value type; no shared state.
#ifndef CARECARD_ENGINE_MONEY_H_
#define CARECARD_ENGINE_MONEY_H_

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace carecard {

class MoneyOverflow : public std::overflow_error {
 public:
  using std::overflow_error::overflow_error;
};

// The largest input amount the formats allow: 12 digits of yuan and 2 of fen.
inline constexpr int64_t kMaxInputAmountFen = 99'999'999'999'999;

enum class Rounding { kHalfUp, kHalfEven };

class Money {
 public:
  constexpr Money() = default;
  static constexpr Money FromFen(int64_t fen) { return Money(fen); }
  static constexpr Money Zero() { return Money(0); }

  // An input amount (semantics.md §3): ^[0-9]{1,12}(\.[0-9]{1,2})?$ and > 0.
  // Returns nullopt for anything else ("", " 1", "1.234", "5e1", "0", "-1").
  static std::optional<Money> ParsePositive(std::string_view text);
  // A signed amount: -?[0-9]{1,12}(\.[0-9]{1,2})?, zero allowed (platform balances).
  static std::optional<Money> ParseSigned(std::string_view text);

  constexpr int64_t fen() const { return fen_; }
  constexpr bool is_zero() const { return fen_ == 0; }
  constexpr bool is_negative() const { return fen_ < 0; }

  // Always two decimals, a leading '-' when negative: "50.00", "-120.00", "0.01".
  std::string ToString() const;
  // The same into `out` (at least kMaxFormattedBytes); returns the length.
  static constexpr size_t kMaxFormattedBytes = 24;
  size_t FormatTo(char* out) const;

  // Inline: sums run once or more for every transaction row; an overflow is
  // thrown from a cold out-of-line path.
  Money operator+(Money other) const {
    int64_t sum;
    if (__builtin_add_overflow(fen_, other.fen_, &sum)) [[unlikely]] ThrowOverflow("amount overflow in a sum");
    return Money(sum);
  }
  Money operator-(Money other) const {
    int64_t difference;
    if (__builtin_sub_overflow(fen_, other.fen_, &difference)) [[unlikely]] {
      ThrowOverflow("amount overflow in a difference");
    }
    return Money(difference);
  }
  Money operator-() const { return Money(0) - *this; }
  Money& operator+=(Money other) { return *this = *this + other; }
  Money& operator-=(Money other) { return *this = *this - other; }

  // this * numerator / denominator, the exact quotient rounded to fen.
  // REQUIRES: denominator > 0, numerator >= 0.
  Money MultiplyRatio(int64_t numerator, int64_t denominator, Rounding rounding) const;

  friend constexpr auto operator<=>(Money, Money) = default;

 private:
  constexpr explicit Money(int64_t fen) : fen_(fen) {}
  [[noreturn, gnu::cold, gnu::noinline]] static void ThrowOverflow(const char* what);
  int64_t fen_ = 0;
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_MONEY_H_
