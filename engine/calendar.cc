#include "engine/calendar.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdio>
#include <cstring>

namespace carecard {
namespace {

// Howard Hinnant's days_from_civil / civil_from_days.
int32_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = static_cast<unsigned>((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1);
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int32_t>(doe) - 719468;
}

struct Civil {
  int year, month, day;
};

Civil CivilFromDays(int32_t z) {
  z += 719468;
  const int era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int y = static_cast<int>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), static_cast<int>(m), static_cast<int>(d)};
}

// The first day of every month from 1900-01 to 2199-12 (and 2200-01), so that
// the common conversions between days and months are a lookup, not arithmetic.
struct MonthStarts {
  static constexpr int kFirstYear = 1900;
  static constexpr int kMonths = 300 * 12;
  int32_t start[kMonths + 1];
  MonthStarts() {
    for (int i = 0; i <= kMonths; ++i) start[i] = DaysFromCivil(kFirstYear + i / 12, i % 12 + 1, 1);
  }
  // The table index of the month of `days`, or -1 outside the table.
  int MonthOf(int32_t days) const {
    if (days < start[0] || days >= start[kMonths]) return -1;
    int guess = static_cast<int>(static_cast<int64_t>(days - start[0]) * 400 / 12175);  // 30.4375 days a month
    if (guess >= kMonths) guess = kMonths - 1;
    while (start[guess] > days) --guess;
    while (start[guess + 1] <= days) ++guess;
    return guess;
  }
};
const MonthStarts& Months() {
  static const MonthStarts table;
  return table;
}

bool ParseDigits(std::string_view text, size_t pos, size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  out = value;
  return true;
}

}  // namespace

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  assert(month >= 1 && month <= 12);
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

Date Date::FromCivil(int year, int month, int day) { return Date(DaysFromCivil(year, month, day)); }

std::optional<Date> Date::Parse(std::string_view text) {
  int y, m, d;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  if (!ParseDigits(text, 0, 4, y) || !ParseDigits(text, 5, 2, m) || !ParseDigits(text, 8, 2, d)) return std::nullopt;
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) return std::nullopt;
  return FromCivil(y, m, d);
}

Date::Civil Date::ToCivil() const {
  const MonthStarts& t = Months();
  if (const int m = t.MonthOf(days_); m >= 0) {
    return Civil{MonthStarts::kFirstYear + m / 12, m % 12 + 1, days_ - t.start[m] + 1};
  }
  const auto c = CivilFromDays(days_);
  return Civil{c.year, c.month, c.day};
}

int Date::year() const { return CivilFromDays(days_).year; }
int Date::month() const { return CivilFromDays(days_).month; }
int Date::day() const { return CivilFromDays(days_).day; }

std::string Date::ToString() const {
  const auto c = CivilFromDays(days_);
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02d", c.year, c.month, c.day);
  return buffer;
}

YearMonth YearMonth::Of(Date date) {
  if (const int m = Months().MonthOf(date.days()); m >= 0) return YearMonth(MonthStarts::kFirstYear * 12 + m);
  const auto c = CivilFromDays(date.days());
  return Of(c.year, c.month);
}

Date YearMonth::first_day() const {
  const int m = index_ - MonthStarts::kFirstYear * 12;
  if (m >= 0 && m < MonthStarts::kMonths) return Date::FromDays(Months().start[m]);
  return Date::FromCivil(year(), month(), 1);
}

Date YearMonth::last_day() const {
  const int m = index_ - MonthStarts::kFirstYear * 12;
  if (m >= 0 && m < MonthStarts::kMonths) return Date::FromDays(Months().start[m + 1] - 1);
  return Date::FromCivil(year(), month(), DaysInMonth(year(), month()));
}

int YearMonth::days() const { return last_day().days() - first_day().days() + 1; }

std::optional<YearMonth> YearMonth::Parse(std::string_view text) {
  int y, m;
  if (text.size() != 7 || text[4] != '-') return std::nullopt;
  if (!ParseDigits(text, 0, 4, y) || !ParseDigits(text, 5, 2, m)) return std::nullopt;
  if (y < 1 || m < 1 || m > 12) return std::nullopt;
  return Of(y, m);
}

std::string YearMonth::ToString() const {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d", year(), month());
  return buffer;
}

std::optional<UtcOffset> UtcOffset::Parse(std::string_view text) {
  if (text == "Z") return UtcOffset{0};
  int h, m;
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-') || text[3] != ':') return std::nullopt;
  if (!ParseDigits(text, 1, 2, h) || !ParseDigits(text, 4, 2, m) || h > 23 || m > 59) return std::nullopt;
  int32_t seconds = (h * 60 + m) * 60;
  return UtcOffset{text[0] == '-' ? -seconds : seconds};
}

std::string UtcOffset::ToString() const {
  int32_t magnitude = seconds < 0 ? -seconds : seconds;
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%c%02d:%02d", seconds < 0 ? '-' : '+', magnitude / 3600, magnitude / 60 % 60);
  return buffer;
}

namespace {

static_assert(std::endian::native == std::endian::little, "the fast timestamp path reads words little-endian");

// The common form, YYYY-MM-DDTHH:MM:SS+HH:MM, checked eight bytes at a time:
// the digits of `w` where `digits` has 0xFF bytes, the other bytes equal to
// `fixed` where `check` has 0xFF bytes.
inline bool DigitsAndSeparators(uint64_t w, uint64_t digits, uint64_t check, uint64_t fixed) {
  constexpr uint64_t kHigh = 0xF0F0F0F0F0F0F0F0ull, kLow = 0x0F0F0F0F0F0F0F0Full, kSix = 0x0606060606060606ull;
  // A byte is an ASCII digit when its high nibble is 3 and its low nibble
  // plus 6 does not reach 16 (no carry leaves a byte: at most 15 + 6).
  const bool high = (w & digits & kHigh) == (0x3030303030303030ull & digits);
  const bool low = ((((w & kLow) + kSix) & digits & kHigh)) == 0;
  return high && low && (w & check) == fixed;
}

// Of a word of checked digits: byte i of the result is the two-digit number
// of bytes i and i+1 (10 * 9 + 9 fits a byte, so no byte carries into the next).
inline uint64_t Pairs(uint64_t w) {
  const uint64_t v = w & 0x0F0F0F0F0F0F0F0Full;
  return v * 10 + (v >> 8);
}
inline int ByteOf(uint64_t w, int byte) { return static_cast<int>((w >> (8 * byte)) & 0xFF); }

}  // namespace

std::optional<Instant> Instant::Parse(std::string_view text, UtcOffset zone, Date* local_date, YearMonth* local_month) {
  // The common form, without a fraction, parsed in place; anything else takes
  // the general parser (which gives the same results for this form: tested).
  if (text.size() == 25) {
    const char* p = text.data();
    uint64_t w0, w1, w2;
    std::memcpy(&w0, p, 8);       // YYYY-MM-
    std::memcpy(&w1, p + 8, 8);   // DDTHH:MM
    std::memcpy(&w2, p + 16, 8);  // :SS+HH:M
    const auto last = static_cast<unsigned char>(p[24]);
    const char sign = p[19];
    // (little-endian: byte i of a word is bits 8i..8i+7)
    if (DigitsAndSeparators(w0, 0x00FFFF00FFFFFFFFull, 0xFF0000FF00000000ull, 0x2D00002D00000000ull) &&
        DigitsAndSeparators(w1, 0xFFFF00FFFF00FFFFull, 0x0000FF0000FF0000ull, 0x00003A0000540000ull) &&
        DigitsAndSeparators(w2, 0xFF00FFFF00FFFF00ull, 0x00FF0000000000FFull, 0x003A00000000003Aull) &&
        (sign == '+' || sign == '-') && static_cast<unsigned>(last - '0') < 10u) {
      const uint64_t p0 = Pairs(w0), p1 = Pairs(w1), p2 = Pairs(w2);
      const int y = ByteOf(p0, 0) * 100 + ByteOf(p0, 2), mo = ByteOf(p0, 5);
      const int d = ByteOf(p1, 0), hh = ByteOf(p1, 3), mm = ByteOf(p1, 6);
      const int ss = ByteOf(p2, 1), oh = ByteOf(p2, 4), om = (ByteOf(w2, 7) & 0x0F) * 10 + static_cast<int>(last - '0');
      if (y < 1 || mo < 1 || mo > 12 || d < 1 || hh > 23 || mm > 59 || ss > 59 || oh > 23 || om > 59 ||
          (d > 28 && d > DaysInMonth(y, mo))) {
        return std::nullopt;
      }
      const int32_t offset = (sign == '-' ? -1 : 1) * ((oh * 60 + om) * 60);
      const int m = (y - MonthStarts::kFirstYear) * 12 + mo - 1;
      const int32_t days = m >= 0 && m < MonthStarts::kMonths ? Months().start[m] + d - 1 : DaysFromCivil(y, mo, d);
      const Instant at{int64_t(days) * 86400 + hh * 3600 + mm * 60 + ss - offset, 0};
      if (offset == zone.seconds) {
        *local_date = Date::FromDays(days);
        *local_month = YearMonth::Of(y, mo);
      } else {
        *local_date = at.LocalDate(zone);
        *local_month = YearMonth::Of(*local_date);
      }
      return at;
    }
  }
  auto at = Parse(text);
  if (at) {
    *local_date = at->LocalDate(zone);
    *local_month = YearMonth::Of(*local_date);
  }
  return at;
}

std::optional<Instant> Instant::Parse(std::string_view text) {
  if (text.size() < 20 || text[10] != 'T' || text[13] != ':' || text[16] != ':') return std::nullopt;
  auto date = Date::Parse(text.substr(0, 10));
  int hh, mm, ss;
  if (!date || !ParseDigits(text, 11, 2, hh) || !ParseDigits(text, 14, 2, mm) || !ParseDigits(text, 17, 2, ss)) {
    return std::nullopt;
  }
  if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
  size_t pos = 19;
  int32_t nanos = 0;
  if (text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits == 9) return std::nullopt;
      nanos = nanos * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (size_t i = digits; i < 9; ++i) nanos *= 10;
  }
  auto offset = UtcOffset::Parse(text.substr(pos));
  if (!offset) return std::nullopt;
  int64_t local = int64_t(date->days()) * 86400 + hh * 3600 + mm * 60 + ss;
  return Instant{local - offset->seconds, nanos};
}

Date Instant::LocalDate(UtcOffset zone) const {
  int64_t local = seconds + zone.seconds;
  int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
  return Date::FromDays(static_cast<int32_t>(days));
}

Instant StartOfDay(Date date, UtcOffset zone) { return Instant{int64_t(date.days()) * 86400 - zone.seconds, 0}; }

bool PayoutPeriod::IsValidLength(int months_per_period) {
  return months_per_period == 1 || months_per_period == 2 || months_per_period == 3 || months_per_period == 6 ||
         months_per_period == 12;
}

PayoutPeriod PayoutPeriod::Containing(YearMonth month, int months_per_period) {
  assert(IsValidLength(months_per_period));
  int index_in_year = (month.month() - 1) / months_per_period;
  return PayoutPeriod(YearMonth::Of(month.year(), index_in_year * months_per_period + 1), months_per_period);
}

std::optional<PayoutPeriod> PayoutPeriod::Parse(std::string_view text, int months_per_period) {
  if (!IsValidLength(months_per_period) || text.size() < 6 || text[4] != '-') return std::nullopt;
  int year;
  if (!ParseDigits(text, 0, 4, year) || year < 1) return std::nullopt;
  const int count = 12 / months_per_period;
  for (int i = 0; i < count; ++i) {
    PayoutPeriod candidate(YearMonth::Of(year, i * months_per_period + 1), months_per_period);
    if (candidate.ToString() == text) return candidate;
  }
  return std::nullopt;
}

std::string PayoutPeriod::ToString() const {
  char buffer[24];
  const int year = first_.year();
  const int index = (first_.month() - 1) / months_per_period_ + 1;
  switch (months_per_period_) {
    case 1: std::snprintf(buffer, sizeof buffer, "%04d-M%02d", year, index); break;
    case 2: std::snprintf(buffer, sizeof buffer, "%04d-B%d", year, index); break;
    case 3: std::snprintf(buffer, sizeof buffer, "%04d-Q%d", year, index); break;
    case 6: std::snprintf(buffer, sizeof buffer, "%04d-H%d", year, index); break;
    default: std::snprintf(buffer, sizeof buffer, "%04d-Y", year); break;
  }
  return buffer;
}

int CompletedYears(Date birth, Date on) {
  const Civil b = CivilFromDays(birth.days());
  const Civil o = CivilFromDays(on.days());
  int years = o.year - b.year;
  if (o.month < b.month || (o.month == b.month && o.day < b.day)) --years;
  return years;
}

Date AddMonthsClamped(Date start, int months) {
  YearMonth target = YearMonth::Of(start).Plus(months);
  int day = std::min(start.day(), target.days());
  return Date::FromCivil(target.year(), target.month(), day);
}

}  // namespace carecard
