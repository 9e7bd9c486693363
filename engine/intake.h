// Intake: turns the rows of a data folder into an accepted registry and ledger,
// rejecting every row that cannot be used with its file, line and code
// (semantics.md §8). Pure: the caller reads files and hands over rows; nothing
// here touches the file system.
//
// Files must be fed in dependency order — centres, stations, persons,
// assessments, cards, enrolments, platform balances, then deposit files and
// consumption files each in name order — because a row can only refer to what
// was accepted before it ("references are resolved in file order").
// Not thread-safe; one Intake per run.
#ifndef CARECARD_ENGINE_INTAKE_H_
#define CARECARD_ENGINE_INTAKE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/calendar.h"
#include "engine/exceptions.h"
#include "engine/money.h"
#include "engine/policy.h"
#include "engine/txn_id_table.h"

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

// The columns a file of this kind must have (formats.md), in canonical order.
const std::vector<std::string>& RequiredColumns(InputKind kind);

struct Center {
  std::string center_id, name, district, credit_code, bank_account;
};

struct Person {
  std::string person_id;
  int32_t elder = -1;  // index of the elder (the first accepted row with this id number)
};

struct Assessment {
  Date assessed_on;
  int level = 0;
};

struct Enrollment {
  Program program = Program::kHomeBed;
  std::string institution_id;
  Date start_on;
  std::optional<Date> end_on;
  EnrollmentChoice choice = EnrollmentChoice::kNone;
  bool Overlaps(Date first, Date last) const { return start_on <= last && (!end_on || *end_on >= first); }
};

// One elder: one resident id. Attributes come from the first accepted person row.
struct Elder {
  std::string person_id;  // the first row's person_id: the name used in outputs
  Date birth_date;
  std::optional<Date> death_date;
  bool rural = false;
  uint32_t flags = 0;
  std::vector<Assessment> assessments;
  std::vector<Enrollment> enrollments;
  std::vector<int32_t> cards;  // indices into Registry::cards, in cards.csv order
  bool AliveOn(Date d) const { return !death_date || *death_date >= d; }
};

struct Card {
  std::string card_no;
  int32_t elder = -1;
  int32_t center = -1;  // index into Registry::centers
  int card_type = 1;
  Date issued_on;
  std::optional<Date> closed_on;
  int64_t line = 0;  // its row in cards.csv
  bool ActiveOn(Date d) const { return issued_on <= d && (!closed_on || d <= *closed_on); }
  bool ActiveIn(YearMonth m) const { return issued_on <= m.last_day() && (!closed_on || *closed_on >= m.first_day()); }
};

enum class TxnKind : uint8_t { kDeposit, kReversal, kConsumption, kRefund };

// An accepted, undeferred transaction row.
struct Transaction {
  // Members ordered by size: tens of millions of these are held at once.
  Instant at;
  Money amount;
  int64_t line = 0;
  int32_t claim = -1;   // its txn_id: a claim in Registry::deposit_ids or consumption_ids (by kind)
  int32_t card = -1;
  Date local_date;      // in the policy's time zone
  int32_t ref = -1;     // reversal/refund: index of the original transaction
  int32_t serving_center = -1;  // consumption: the station's centre
  int32_t service = -1;         // consumption: index into Registry::services
  int32_t file = -1;    // index into IntakeResult::files
  TxnKind kind = TxnKind::kDeposit;
  bool counted = true;  // deposit: counts toward subsidies (card active, holder alive)
};
static_assert(sizeof(Transaction) <= 72, "keep Transaction compact");

struct PlatformBalance {
  int32_t card = -1;
  Date as_of;
  Money balance;
  std::string file;
  int64_t line = 0;
};

// Hash for maps keyed by ids: looks up by string_view without building a string.
struct IdHash {
  using is_transparent = void;
  size_t operator()(std::string_view id) const { return static_cast<size_t>(TxnIdTable::Hash(id)); }
};
template <typename V>
using IdMap = std::unordered_map<std::string, V, IdHash, std::equal_to<>>;

struct Registry {
  std::vector<Center> centers;
  IdMap<int32_t> center_index;
  IdMap<int32_t> station_center;  // station_id (or centre id) -> centre
  std::vector<Person> persons;
  IdMap<int32_t> person_index;
  std::vector<Elder> elders;
  std::vector<Card> cards;
  IdMap<int32_t> card_index;
  TxnIdTable card_ids;  // the same cards again (claim == card index): the flat table the ledger's hot path uses
  std::vector<std::string> services;  // interned service names
  std::vector<Transaction> transactions;  // in file order
  TxnIdTable deposit_ids;      // txn_ids of the deposit files
  TxnIdTable consumption_ids;  // txn_ids of the consumption files
  std::string_view TxnId(const Transaction& t) const {
    return t.kind == TxnKind::kDeposit || t.kind == TxnKind::kReversal ? deposit_ids.id(t.claim)
                                                                        : consumption_ids.id(t.claim);
  }
  std::vector<PlatformBalance> platform_balances;
};

struct FileCounts {
  std::string file;  // name without folder
  InputKind kind = InputKind::kCenters;
  int64_t read = 0, accepted = 0, rejected = 0, deferred = 0;
};

struct IntakeResult {
  Registry registry;
  std::vector<ExceptionRecord> exceptions;  // row-level, unsorted
  std::vector<FileCounts> files;            // in the order fed
};

// The parts of a transaction row's checks that depend on the row alone, so
// that a reader thread can compute them ahead of the (sequential) intake.
struct PreparsedTransaction {
  std::optional<Money> amount;   // Money::ParsePositive of the amount cell
  std::optional<Instant> at;     // Instant::Parse of the `at` cell
  uint64_t txn_hash = 0;         // TxnIdTable::Hash of the txn_id cell
  uint64_t content_hash = 0;     // of every required cell as written
};

class Intake {
 public:
  // Positions of the required columns of `kind` in `header`; false with
  // *missing naming the first required column the header lacks.
  static bool MapColumns(InputKind kind, const std::vector<std::string>& header, std::vector<int>* column_of,
                         std::string* missing);
  // Pure and thread-safe. REQUIRES: kind is kDeposits or kConsumption and
  // cells.size() equals the header's width.
  static PreparsedTransaction Preparse(InputKind kind, const std::vector<int>& column_of,
                                       const std::vector<std::string>& cells);

  // Transactions dated after `last_month` (in the policy's zone) are deferred.
  Intake(UtcOffset zone, YearMonth last_month);

  // Starts a file. `header` is the file's first row. Returns false and fills
  // *missing with the first required column the header lacks (the run is refused).
  bool BeginFile(InputKind kind, const std::string& file_name, const std::vector<std::string>& header,
                 std::string* missing);
  // One data row. `problem_code` is empty for a cleanly read row, otherwise the
  // code to reject it with (the reader could not read it: encoding, limits, quoting).
  void AddRow(int64_t line, const std::vector<std::string>& cells, std::string_view problem_code = {},
              std::string_view problem_detail = {});
  // The same for a clean transaction row whose pure checks were done by Preparse.
  void AddPreparsedRow(int64_t line, const std::vector<std::string>& cells, const PreparsedTransaction& pre);
  // A hint that a row with these preparsed fields comes soon (see TxnIdTable::Prefetch).
  void Prefetch(const PreparsedTransaction& upcoming) const {
    (kind_ == InputKind::kDeposits ? result_.registry.deposit_ids : result_.registry.consumption_ids).Prefetch(upcoming.txn_hash);
  }
  // Room for about `deposit_rows` and `consumption_rows` rows, so that growing tables do not rehash.
  void ReserveTransactions(int64_t deposit_rows, int64_t consumption_rows);
  void EndFile();

  // Rows rejected so far in the current file (for --max-rejects).
  int64_t current_file_rejected() const;

  IntakeResult Finish();

 private:
  std::string_view Cell(const std::vector<std::string>& cells, int column) const;
  void Reject(std::string_view code, int64_t line, std::string detail, std::string txn_id = {}, std::string card_no = {},
              std::string person_id = {}, std::string month = {});
  void Warn(std::string_view code, int64_t line, std::string detail, std::string txn_id = {}, std::string card_no = {},
            std::string person_id = {}, std::string month = {});
  bool AddCenter(int64_t line, const std::vector<std::string>& c);
  bool AddStation(int64_t line, const std::vector<std::string>& c);
  bool AddPerson(int64_t line, const std::vector<std::string>& c);
  bool AddAssessment(int64_t line, const std::vector<std::string>& c);
  bool AddCard(int64_t line, const std::vector<std::string>& c);
  bool AddEnrollment(int64_t line, const std::vector<std::string>& c);
  int AddPlatformBalance(int64_t line, const std::vector<std::string>& c);  // 1 accepted, 0 rejected, 2 deferred
  int AddTransaction(int64_t line, const std::vector<std::string>& c, const PreparsedTransaction& pre);  // same
  void CountOutcome(int outcome);
  int32_t InternService(std::string_view name);

  UtcOffset zone_;
  YearMonth last_month_;
  IntakeResult result_;
  std::unordered_map<std::string, int32_t> elder_by_id_number_;
  IdMap<int32_t> service_index_;
  std::vector<Money> remaining_;  // per accepted transaction: amount not yet reversed/refunded
  InputKind kind_ = InputKind::kCenters;
  std::vector<int> column_of_;    // canonical column -> position in the file
  size_t header_width_ = 0;
  FileCounts* counts_ = nullptr;
};

// Checks of formats.md, exposed for tests and the generator.
bool IsValidResidentId(std::string_view id_number);  // 18 chars, MOD 11-2 (x read as X)
// The ISO 7064 MOD 11-2 check character ('0'..'9' or 'X') of a resident id's first
// 17 characters. REQUIRES: first17 is 17 ASCII digits.
char ResidentIdCheckCharacter(std::string_view first17);
bool IsValidCreditCode(std::string_view code);       // GB 32100-2015 check character
// Masks an id number for circulation: first 6 and last 4 characters kept.
std::string MaskIdNumber(std::string_view id_number);

}  // namespace carecard

#endif  // CARECARD_ENGINE_INTAKE_H_
