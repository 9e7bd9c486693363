#include "engine/money.h"

#include <gtest/gtest.h>

namespace carecard {
namespace {

TEST(money, input_amounts_are_yuan_with_at_most_two_decimals) {
  EXPECT_EQ(Money::ParsePositive("100")->fen(), 10000);
  EXPECT_EQ(Money::ParsePositive("100.5")->fen(), 10050);
  EXPECT_EQ(Money::ParsePositive("0.01")->fen(), 1);
  EXPECT_EQ(Money::ParsePositive("999999999999.99")->fen(), kMaxInputAmountFen);
}

TEST(money, anything_else_is_rejected_never_a_silent_zero) {
  for (const char* bad : {"", "0", "0.00", "-1", "12.345", "1,000.00", " 100.00", "100.00 ", "5e1", ".5", "5.",
                          "1000000000000", "１００", "+5", "0x10", "NaN"}) {
    EXPECT_FALSE(Money::ParsePositive(bad).has_value()) << bad;
  }
}

TEST(money, the_longest_malformed_amounts_are_rejected_without_overflow) {
  // 15 bytes with a point third from the end take the one-pass path; bytes
  // below '0' there once overflowed a signed accumulator (policy_loader_fuzz).
  for (const char* bad : {"            .  ", "############.##", "//////////// .00", "999999999999. 9", "1234 6789012.00",
                          "zzzzzzzzzzzz.zz", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff.00"}) {
    EXPECT_FALSE(Money::ParsePositive(bad).has_value()) << bad;
  }
}

TEST(money, signed_amounts_allow_zero_and_a_minus_sign) {
  EXPECT_EQ(Money::ParseSigned("-12.50")->fen(), -1250);
  EXPECT_EQ(Money::ParseSigned("0")->fen(), 0);
  EXPECT_FALSE(Money::ParseSigned("--1").has_value());
  EXPECT_FALSE(Money::ParseSigned("-").has_value());
}

TEST(money, output_always_has_two_decimals) {
  EXPECT_EQ(Money::FromFen(5000).ToString(), "50.00");
  EXPECT_EQ(Money::FromFen(-12000).ToString(), "-120.00");
  EXPECT_EQ(Money::FromFen(1).ToString(), "0.01");
  EXPECT_EQ(Money::FromFen(-5).ToString(), "-0.05");
  EXPECT_EQ(Money().ToString(), "0.00");
  EXPECT_EQ(Money::FromFen(INT64_MIN).ToString(), "-92233720368547758.08");
}

TEST(money, sums_that_overflow_throw_instead_of_wrapping) {
  Money big = Money::FromFen(INT64_MAX - 1);
  EXPECT_THROW(big + Money::FromFen(2), MoneyOverflow);
  EXPECT_THROW(Money::FromFen(INT64_MIN) - Money::FromFen(1), MoneyOverflow);
  EXPECT_THROW(-Money::FromFen(INT64_MIN), MoneyOverflow);
  EXPECT_EQ((big + Money::FromFen(1)).fen(), INT64_MAX);
}

TEST(money, many_maximal_amounts_sum_exactly) {
  Money total;
  for (int i = 0; i < 90'000; ++i) total += Money::FromFen(kMaxInputAmountFen);
  EXPECT_EQ(total.fen(), kMaxInputAmountFen * 90'000);
}

TEST(money, proration_rounds_half_up_by_default) {
  // 50.00 * 15 / 30 = 25.00 exactly; 50.00 * 1 / 3 = 16.666.. -> 16.67
  EXPECT_EQ(Money::FromFen(5000).MultiplyRatio(15, 30, Rounding::kHalfUp).fen(), 2500);
  EXPECT_EQ(Money::FromFen(5000).MultiplyRatio(1, 3, Rounding::kHalfUp).fen(), 1667);
  // 0.05 / 2 = 0.025: half up -> 0.03, half even -> 0.02
  EXPECT_EQ(Money::FromFen(5).MultiplyRatio(1, 2, Rounding::kHalfUp).fen(), 3);
  EXPECT_EQ(Money::FromFen(5).MultiplyRatio(1, 2, Rounding::kHalfEven).fen(), 2);
  // 0.07 / 2 = 0.035: half even -> 0.04
  EXPECT_EQ(Money::FromFen(7).MultiplyRatio(1, 2, Rounding::kHalfEven).fen(), 4);
  // 120.00 * 10 / 31 = 38.709.. -> 38.71
  EXPECT_EQ(Money::FromFen(12000).MultiplyRatio(10, 31, Rounding::kHalfEven).fen(), 3871);
}

TEST(money, proration_of_huge_amounts_does_not_overflow_in_between) {
  Money m = Money::FromFen(INT64_MAX / 2);
  EXPECT_EQ(m.MultiplyRatio(31, 31, Rounding::kHalfUp), m);
}

}  // namespace
}  // namespace carecard
