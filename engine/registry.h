// Registry: the accepted rows of the registry files (centres, stations,
// persons, assessments, cards, enrolments, platform balances), compact and
// read-only once built, shared by every thread of a run.
//
// Everything a card-month needs belongs to one elder (one resident id): an
// elder's assessments, enrolments and cards are contiguous ranges, so a worker
// settling an elder reads only that elder's slice.
//
// RegistryBuilder applies the registry checks of semantics.md §8 in file
// order (centres, stations, persons, assessments, cards, enrolments, platform
// balances), each row against what was accepted before it.
#ifndef CARECARD_ENGINE_REGISTRY_H_
#define CARECARD_ENGINE_REGISTRY_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/calendar.h"
#include "engine/exceptions.h"
#include "engine/id_index.h"
#include "engine/money.h"
#include "engine/policy.h"

namespace carecard {

enum class InputKind {
  kCenters,
  kStations,
  kPersons,
  kAssessments,
  kCards,
  kEnrollments,
  kPlatformBalances,
  kDeposits,
  kConsumption,
};
inline bool IsTransactionKind(InputKind k) { return k == InputKind::kDeposits || k == InputKind::kConsumption; }

// The columns a file of this kind must have (formats.md), in canonical order.
const std::vector<std::string>& RequiredColumns(InputKind kind);
// Positions of the required columns of `kind` in `header`; false with
// *missing naming the first required column the header lacks.
bool MapColumns(InputKind kind, std::span<const std::string> header, std::vector<int>* column_of, std::string* missing);

using Cells = std::span<const std::string_view>;

struct Center {
  std::string center_id, name, district, credit_code, bank_account;
};

struct Assessment {
  Date assessed_on;
  int32_t level = 0;
};

struct Enrollment {
  Program program = Program::kHomeBed;
  EnrollmentChoice choice = EnrollmentChoice::kNone;
  int32_t institution = -1;  // index into Registry::institution_ids
  Date start_on;
  std::optional<Date> end_on;
  bool Overlaps(Date first, Date last) const { return start_on <= last && (!end_on || *end_on >= first); }
};

// One elder: one resident id. Attributes come from the first accepted person row.
// Its assessments, enrolments and cards start at the begins here and end where
// the next elder's start (Registry::AssessmentsOf etc.). 32 bytes.
struct Elder {
  int32_t person = -1;  // that row's index in Registry::person_ids: its person_id names the elder in outputs
  Date birth_date;
  std::optional<Date> death_date;
  uint32_t assessments_begin = 0;  // into Registry::assessments
  uint32_t enrollments_begin = 0;  // into Registry::enrollments
  uint32_t cards_begin = 0;        // into Registry::elder_cards, by card index
  bool rural = false;
  uint8_t flags = 0;
  bool AliveOn(Date d) const { return !death_date || *death_date >= d; }
};
static_assert(sizeof(Elder) <= 32, "millions of elders are held at once");

// 28 bytes.
struct Card {
  int32_t elder = -1;
  int32_t center = -1;
  Date issued_on;
  std::optional<Date> closed_on;
  uint32_t line = 0;  // its row in cards.csv
  int8_t card_type = 1;
  bool ActiveOn(Date d) const { return issued_on <= d && (!closed_on || d <= *closed_on); }
  bool ActiveIn(YearMonth m) const { return issued_on <= m.last_day() && (!closed_on || *closed_on >= m.first_day()); }
};
static_assert(sizeof(Card) <= 28, "millions of cards are held at once");

struct PlatformBalance {
  int32_t card = -1;
  Date as_of;
  Money balance;
  uint16_t file = 0;
  int64_t line = 0;
};

struct Registry {
  std::vector<Center> centers;
  IdIndex center_ids;
  IdIndex station_ids;
  std::vector<int32_t> station_center;
  IdIndex person_ids;                // every accepted person row, aliases included (keys only, once built)
  std::vector<int32_t> person_elder; // while building
  std::vector<Elder> elders;
  IdIndex card_ids;                  // in card_no order: card indices sort as card numbers do
  std::vector<Card> cards;
  std::vector<Assessment> assessments;
  std::vector<Enrollment> enrollments;
  std::vector<int32_t> elder_cards;
  IdIndex institution_ids;
  std::vector<PlatformBalance> platform_balances;  // by card, then as_of, then file order
  std::vector<uint32_t> card_balances_begin;       // cards.size() + 1 offsets into platform_balances; empty without any

  std::string_view card_no(int32_t card) const { return card_ids.key(card); }
  // The card numbered `card_no` when it is one of the few cards after `card`
  // in index order, else -1 (look it up). Rows come card by card in card-number
  // order in most files, and card indices follow card numbers, so the next
  // card is usually one to three ahead: its key is beside the last one's,
  // where no hash or table slot has to be read.
  int32_t CardShortlyAfter(int32_t card, std::string_view card_no) const {
    constexpr int64_t kAhead = 8;
    return card_ids.FindAmong(card_no, int64_t{card} + 1, kAhead);
  }
  std::string_view center_id(int32_t center) const { return centers[static_cast<size_t>(center)].center_id; }
  std::string_view person_id(const Elder& e) const { return person_ids.key(e.person); }
  std::string_view institution_id(int32_t i) const { return institution_ids.key(i); }
  const Card& card(int32_t i) const { return cards[static_cast<size_t>(i)]; }
  const Elder& elder(int32_t i) const { return elders[static_cast<size_t>(i)]; }
  const Elder& elder_of(int32_t card) const { return elders[static_cast<size_t>(cards[static_cast<size_t>(card)].elder)]; }
  std::span<const Assessment> AssessmentsOf(const Elder& e) const {
    const Elder* next = &e + 1;
    const uint32_t end = next == elders.data() + elders.size() ? static_cast<uint32_t>(assessments.size()) : next->assessments_begin;
    return {assessments.data() + e.assessments_begin, end - e.assessments_begin};
  }
  std::span<const Enrollment> EnrollmentsOf(const Elder& e) const {
    const Elder* next = &e + 1;
    const uint32_t end = next == elders.data() + elders.size() ? static_cast<uint32_t>(enrollments.size()) : next->enrollments_begin;
    return {enrollments.data() + e.enrollments_begin, end - e.enrollments_begin};
  }
  std::span<const int32_t> CardsOf(const Elder& e) const {
    const Elder* next = &e + 1;
    const uint32_t end = next == elders.data() + elders.size() ? static_cast<uint32_t>(elder_cards.size()) : next->cards_begin;
    return {elder_cards.data() + e.cards_begin, end - e.cards_begin};
  }
  std::span<const PlatformBalance> BalancesOf(int32_t card) const {
    if (card_balances_begin.empty()) return {};
    const auto c = static_cast<size_t>(card);
    return {platform_balances.data() + card_balances_begin[c], card_balances_begin[c + 1] - card_balances_begin[c]};
  }
  // The same answers as ServingCenter's two tables, built by RegistryBuilder::Finish
  // (empty before, or when an id is too long for it): one cache line a lookup.
  InlineIdMap serving_by_station;
  // The centre serving at `station_id` (a station, or a centre serving directly), or -1.
  int32_t ServingCenter(std::string_view station_id) const {
    if (!serving_by_station.empty()) return serving_by_station.Find(station_id);
    if (const int32_t s = station_ids.Find(station_id); s >= 0) return station_center[static_cast<size_t>(s)];
    return center_ids.Find(station_id);
  }
  // The bytes its tables reserve (capacities: room never touched counts, though it takes no memory).
  size_t MemoryBytes() const;
};

// Outcome of one row, for the file's counts.
enum class RowOutcome { kAccepted, kRejected, kDeferred };

class RegistryBuilder {
 public:
  // Platform balances dated after `last_month` are deferred.
  RegistryBuilder(YearMonth last_month, ExceptionLog* log);

  // One row of a registry file. REQUIRES: kind is not a transaction kind, and
  // cells are in canonical column order (RequiredColumns(kind)).
  RowOutcome AddRow(InputKind kind, uint16_t file, int64_t line, Cells cells);

  // Starts loading what AddRow will look up for this row (the indexes are far
  // larger than the caches): callers that see rows ahead call it a few rows early.
  void Prefetch(InputKind kind, Cells cells) const;
  // Room for about `rows` rows of `kind` (an estimate from the file's size), so that indexes do not grow.
  void Reserve(InputKind kind, size_t rows);
  // Groups each elder's rows and sorts platform balances; the builder is spent.
  Registry Finish();

 private:
  bool AddCenter(uint16_t file, int64_t line, Cells c);
  bool AddStation(uint16_t file, int64_t line, Cells c);
  bool AddPerson(uint16_t file, int64_t line, Cells c);
  bool AddAssessment(uint16_t file, int64_t line, Cells c);
  bool AddCard(uint16_t file, int64_t line, Cells c);
  bool AddEnrollment(uint16_t file, int64_t line, Cells c);
  RowOutcome AddPlatformBalance(uint16_t file, int64_t line, Cells c);
  void Reject(ExceptionCode code, uint16_t file, int64_t line, const std::string& detail, std::string_view card_no = {},
              std::string_view person_id = {}, int32_t month = -1);
  void Warn(ExceptionCode code, uint16_t file, int64_t line, const std::string& detail, std::string_view person_id);
  // The index of person `id`, or -1. The files that refer to persons (cards,
  // assessments, enrolments) mostly list them in persons.csv order, so the
  // person last found and the next two are compared first (ids are unique: a
  // key equal to `id` is its index) and the table, far larger than the caches
  // at millions of persons, is probed only when none is the one.
  int32_t FindPerson(std::string_view id);
  // Starts loading the table slot FindPerson would probe for `id`, unless the
  // last finds came without the table.
  void PrefetchPerson(std::string_view id) const;
  // Consecutive FindPerson calls answered without the table; while there are
  // kSkipPrefetchAfter of them, Prefetch leaves the person table alone.
  static constexpr int kSkipPrefetchAfter = 16;

  YearMonth last_month_;
  int32_t person_cursor_ = -1;
  int near_person_streak_ = 0;
  ExceptionLog* log_;
  Registry reg_;
  IdIndex id_numbers_;               // normalised resident ids of elders, index = elder
  std::vector<std::pair<int32_t, Assessment>> assessments_;  // (elder, assessment) in file order
  std::vector<std::pair<int32_t, Enrollment>> enrollments_;
};

// Checks of formats.md, exposed for tests and the generator.
bool IsValidResidentId(std::string_view id_number);  // 18 chars, MOD 11-2 (x read as X)
// The ISO 7064 MOD 11-2 check character ('0'..'9' or 'X') of a resident id's first
// 17 characters. REQUIRES: first17 is 17 ASCII digits.
char ResidentIdCheckCharacter(std::string_view first17);
bool IsValidCreditCode(std::string_view code);  // GB 32100-2015 check character
// Masks an id number for circulation: first 6 and last 4 characters kept.
std::string MaskIdNumber(std::string_view id_number);

}  // namespace carecard

#endif  // CARECARD_ENGINE_REGISTRY_H_
