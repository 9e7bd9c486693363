// Calendar: dates, accrual months, instants with UTC offsets, payout periods.
//
// Everything here is a value type computed from the proleptic Gregorian
// calendar; nothing reads a clock or the process time zone, so results are the
// same on every machine (semantics.md §2, §9). Parsers are strict and return
// nullopt for anything that is not exactly the documented form.
#ifndef CARECARD_ENGINE_CALENDAR_H_
#define CARECARD_ENGINE_CALENDAR_H_

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace carecard {

// A calendar date, stored as days since 1970-01-01. Years 0001..9999.
class Date {
 public:
  constexpr Date() = default;
  static constexpr Date FromDays(int32_t days) { return Date(days); }
  static Date FromCivil(int year, int month, int day);  // REQUIRES: a valid date
  // Exactly YYYY-MM-DD, a date that exists ("2024-02-30" -> nullopt).
  static std::optional<Date> Parse(std::string_view text);

  constexpr int32_t days() const { return days_; }
  struct Civil {
    int year, month, day;
  };
  // Year, month and day at once (each of year(), month(), day() computes all three).
  Civil ToCivil() const;
  int year() const;
  int month() const;  // 1..12
  int day() const;    // 1..31
  std::string ToString() const;
  Date AddDays(int32_t n) const { return Date(days_ + n); }

  friend constexpr auto operator<=>(Date, Date) = default;

 private:
  constexpr explicit Date(int32_t days) : days_(days) {}
  int32_t days_ = 0;
};

bool IsLeapYear(int year);
int DaysInMonth(int year, int month);

// An accrual month YYYY-MM, stored as year * 12 + (month - 1).
class YearMonth {
 public:
  constexpr YearMonth() = default;
  static constexpr YearMonth FromIndex(int32_t index) { return YearMonth(index); }
  static YearMonth Of(int year, int month) { return YearMonth(year * 12 + month - 1); }
  static YearMonth Of(Date date);
  // Exactly YYYY-MM with month 01..12.
  static std::optional<YearMonth> Parse(std::string_view text);

  constexpr int32_t index() const { return index_; }
  int year() const { return index_ / 12; }
  int month() const { return index_ % 12 + 1; }
  Date first_day() const;
  Date last_day() const;
  int days() const;
  YearMonth Next() const { return YearMonth(index_ + 1); }
  YearMonth Plus(int32_t months) const { return YearMonth(index_ + months); }
  std::string ToString() const;

  friend constexpr auto operator<=>(YearMonth, YearMonth) = default;

 private:
  constexpr explicit YearMonth(int32_t index) : index_(index) {}
  int32_t index_ = 0;
};

// A UTC offset such as +08:00, in seconds east of UTC.
struct UtcOffset {
  int32_t seconds = 0;
  // "+HH:MM" or "-HH:MM" (HH 00..23, MM 00..59), or "Z".
  static std::optional<UtcOffset> Parse(std::string_view text);
  std::string ToString() const;
  friend constexpr auto operator<=>(UtcOffset, UtcOffset) = default;
};

// A point in time: seconds since the Unix epoch in UTC plus nanoseconds.
struct Instant {
  int64_t seconds = 0;
  int32_t nanos = 0;
  // ISO 8601 with an explicit offset: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM).
  // No offset, 24:00:00, 23:59:60 or a date that does not exist -> nullopt.
  static std::optional<Instant> Parse(std::string_view text);
  // Parse, and the calendar date and month in `zone`, in one go: when the
  // text carries the zone's own offset, they are the ones written.
  static std::optional<Instant> Parse(std::string_view text, UtcOffset zone, Date* local_date, YearMonth* local_month);
  // The calendar date this instant falls on in the given zone.
  Date LocalDate(UtcOffset zone) const;
  friend constexpr auto operator<=>(const Instant&, const Instant&) = default;
};

// The first instant of `date` in `zone` (midnight local time).
Instant StartOfDay(Date date, UtcOffset zone);

// A payout period: `months_per_period` consecutive months anchored at January.
// Named YYYY-Bn (2 months), YYYY-Mnn (1), YYYY-Qn (3), YYYY-Hn (6), YYYY-Y (12).
class PayoutPeriod {
 public:
  // REQUIRES: months_per_period divides 12.
  static PayoutPeriod Containing(YearMonth month, int months_per_period);
  // Parses a period name for the given period length ("2024-B1" with 2).
  static std::optional<PayoutPeriod> Parse(std::string_view text, int months_per_period);
  static bool IsValidLength(int months_per_period);

  YearMonth first_month() const { return first_; }
  YearMonth last_month() const { return first_.Plus(months_per_period_ - 1); }
  int months_per_period() const { return months_per_period_; }
  bool Contains(YearMonth m) const { return first_month() <= m && m <= last_month(); }
  PayoutPeriod Next() const { return PayoutPeriod(first_.Plus(months_per_period_), months_per_period_); }
  PayoutPeriod Previous() const { return PayoutPeriod(first_.Plus(-months_per_period_), months_per_period_); }
  std::string ToString() const;

  friend bool operator==(const PayoutPeriod&, const PayoutPeriod&) = default;
  friend auto operator<=>(const PayoutPeriod& a, const PayoutPeriod& b) { return a.first_ <=> b.first_; }

 private:
  PayoutPeriod(YearMonth first, int months_per_period) : first_(first), months_per_period_(months_per_period) {}
  YearMonth first_;
  int months_per_period_ = 2;
};

// Completed years on `on` for someone born on `birth`; a 29 February birthday
// completes on 1 March in a common year.
int CompletedYears(Date birth, Date on);

// The last day through which something dated `start` stays valid for `months`
// months: the same day `months` later, or that month's last day where it does not exist.
Date AddMonthsClamped(Date start, int months);

}  // namespace carecard

#endif  // CARECARD_ENGINE_CALENDAR_H_
