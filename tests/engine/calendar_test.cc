#include "engine/calendar.h"

#include <gtest/gtest.h>

namespace carecard {
namespace {

TEST(calendar, dates_are_strict_and_must_exist) {
  EXPECT_EQ(Date::Parse("2024-02-29")->ToString(), "2024-02-29");
  EXPECT_FALSE(Date::Parse("2023-02-29"));
  EXPECT_FALSE(Date::Parse("2024-02-30"));
  EXPECT_FALSE(Date::Parse("2024-13-01"));
  EXPECT_FALSE(Date::Parse("2024-1-01"));
  EXPECT_FALSE(Date::Parse("2024/01/01"));
  EXPECT_FALSE(Date::Parse(" 2024-01-01"));
  EXPECT_FALSE(Date::Parse("0000-01-01"));
  EXPECT_EQ(Date::Parse("1970-01-01")->days(), 0);
  EXPECT_EQ(Date::Parse("1969-12-31")->days(), -1);
}

TEST(calendar, a_timestamp_needs_its_offset) {
  EXPECT_TRUE(Instant::Parse("2024-01-31T23:59:59+08:00"));
  EXPECT_TRUE(Instant::Parse("2024-02-29T16:30:00Z"));
  EXPECT_FALSE(Instant::Parse("2024-01-31T23:59:59"));
  EXPECT_FALSE(Instant::Parse("2024-01-31T24:00:00+08:00"));
  EXPECT_FALSE(Instant::Parse("2024-01-31T23:59:60+08:00"));
  EXPECT_FALSE(Instant::Parse("2024-02-30T10:00:00+08:00"));
  EXPECT_FALSE(Instant::Parse("2024-01-31 23:59:59+08:00"));
  EXPECT_FALSE(Instant::Parse("2024-01-31T23:59:59+0800"));
  EXPECT_FALSE(Instant::Parse("2024-01-31T23:59:59+08:00 "));
}

TEST(calendar, the_policy_zone_decides_the_month) {
  const UtcOffset beijing = *UtcOffset::Parse("+08:00");
  // Written in UTC on the last day of February, it is already March in +08:00.
  auto late = Instant::Parse("2024-02-29T16:30:00Z");
  EXPECT_EQ(late->LocalDate(beijing).ToString(), "2024-03-01");
  // 23:59:59 on the last day, written in UTC, is the next morning in +08:00.
  auto edge = Instant::Parse("2024-01-31T23:59:59Z");
  EXPECT_EQ(YearMonth::Of(edge->LocalDate(beijing)).ToString(), "2024-02");
  auto same = Instant::Parse("2024-01-31T23:59:59+08:00");
  EXPECT_EQ(YearMonth::Of(same->LocalDate(beijing)).ToString(), "2024-01");
  // Before the epoch too.
  EXPECT_EQ(Instant::Parse("1969-12-31T23:00:00Z")->LocalDate(UtcOffset{0}).ToString(), "1969-12-31");
}

// The row checks parse timestamps with the zone at hand (a fast path for the
// common 25-byte form); every answer must be the general parser's.
void ExpectSameAsGeneralParser(const std::string& text, UtcOffset zone) {
  Date local;
  YearMonth month;
  const auto fast = Instant::Parse(text, zone, &local, &month);
  const auto general = Instant::Parse(text);
  ASSERT_EQ(fast.has_value(), general.has_value()) << text;
  if (!general) return;
  EXPECT_EQ(fast->seconds, general->seconds) << text;
  EXPECT_EQ(fast->nanos, general->nanos) << text;
  EXPECT_EQ(local, general->LocalDate(zone)) << text;
  EXPECT_EQ(month, YearMonth::Of(general->LocalDate(zone))) << text;
}

TEST(calendar, the_zone_aware_parser_agrees_with_the_general_one_on_every_byte) {
  const UtcOffset beijing = *UtcOffset::Parse("+08:00");
  const UtcOffset utc{0};
  const std::vector<std::string> seeds = {
      "2024-01-31T23:59:59+08:00", "2024-02-29T16:30:00-05:30", "2023-02-29T10:00:00+08:00",
      "1899-12-31T23:59:59+08:00", "2200-01-01T00:00:00+00:00", "0001-01-01T00:00:00+08:00",
      "9999-12-31T23:59:59-23:59", "2024-12-31T16:00:00+00:00"};
  // Every byte of each seed replaced by each of a few telling bytes: digits
  // at their edges, the separators, '/' and ':' (next to '0' and '9'), a
  // letter, a NUL, a byte >= 0x80 and the nibble look-alikes 0x3A..0x3F, 0x20..0x29.
  const std::string probes = std::string("0123456789-:T+Z/ a") + '\0' + "\x80\xB0\x3A\x3F\x20\x29\x40\x70";
  int checked = 0;
  for (const auto& seed : seeds) {
    ExpectSameAsGeneralParser(seed, beijing);
    for (size_t i = 0; i < seed.size(); ++i) {
      for (char c : probes) {
        std::string t = seed;
        t[i] = c;
        ExpectSameAsGeneralParser(t, beijing);
        ExpectSameAsGeneralParser(t, utc);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, static_cast<int>(seeds.size() * 25 * probes.size()));
  // Valid ones across the whole range the tables cover and beyond.
  for (int y : {1, 1899, 1900, 1970, 2024, 2199, 2200, 9999}) {
    for (int m = 1; m <= 12; ++m) {
      char text[32];
      std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d+08:00", y, m, 28 + m % 4, m, 59 - m, m * 4);
      ExpectSameAsGeneralParser(text, beijing);
      ExpectSameAsGeneralParser(text, utc);
    }
  }
}

TEST(calendar, fractions_of_a_second_order_instants) {
  auto a = Instant::Parse("2024-01-01T00:00:00.5+08:00");
  auto b = Instant::Parse("2024-01-01T00:00:00.25+08:00");
  ASSERT_TRUE(a && b);
  EXPECT_LT(*b, *a);
}

TEST(calendar, payout_periods_are_anchored_at_january) {
  auto b1 = PayoutPeriod::Parse("2024-B1", 2);
  ASSERT_TRUE(b1);
  EXPECT_EQ(b1->first_month().ToString(), "2024-01");
  EXPECT_EQ(b1->last_month().ToString(), "2024-02");
  EXPECT_EQ(b1->Next().ToString(), "2024-B2");
  EXPECT_EQ(PayoutPeriod::Parse("2024-B6", 2)->Next().ToString(), "2025-B1");
  EXPECT_FALSE(PayoutPeriod::Parse("2024-B7", 2));
  EXPECT_FALSE(PayoutPeriod::Parse("2024-Q1", 2));
  EXPECT_EQ(PayoutPeriod::Containing(YearMonth::Of(2024, 5), 1).ToString(), "2024-M05");
  EXPECT_EQ(PayoutPeriod::Containing(YearMonth::Of(2024, 5), 3).ToString(), "2024-Q2");
  EXPECT_EQ(PayoutPeriod::Containing(YearMonth::Of(2024, 7), 6).ToString(), "2024-H2");
  EXPECT_EQ(PayoutPeriod::Containing(YearMonth::Of(2024, 7), 12).ToString(), "2024-Y");
  EXPECT_EQ(PayoutPeriod::Parse("2024-Y", 12)->last_month().ToString(), "2024-12");
}

TEST(calendar, age_counts_from_the_birthday_and_leap_day_births_complete_on_march_first) {
  Date born = *Date::Parse("1964-02-10");
  EXPECT_EQ(CompletedYears(born, *Date::Parse("2024-01-31")), 59);
  EXPECT_EQ(CompletedYears(born, *Date::Parse("2024-02-29")), 60);
  Date leap = *Date::Parse("1964-02-29");
  EXPECT_EQ(CompletedYears(leap, *Date::Parse("2023-02-28")), 58);
  EXPECT_EQ(CompletedYears(leap, *Date::Parse("2023-03-01")), 59);
  EXPECT_EQ(CompletedYears(leap, *Date::Parse("2024-02-29")), 60);
}

TEST(calendar, validity_runs_to_the_same_day_months_later_or_that_months_end) {
  EXPECT_EQ(AddMonthsClamped(*Date::Parse("2023-03-15"), 12).ToString(), "2024-03-15");
  EXPECT_EQ(AddMonthsClamped(*Date::Parse("2023-01-31"), 1).ToString(), "2023-02-28");
  EXPECT_EQ(AddMonthsClamped(*Date::Parse("2023-02-28"), 12).ToString(), "2024-02-28");
  EXPECT_EQ(AddMonthsClamped(*Date::Parse("2024-02-29"), 12).ToString(), "2025-02-28");
}

}  // namespace
}  // namespace carecard
