// Exceptions: the rows of exceptions.csv (formats.md): rejected rows, warnings
// about kept rows, and card-month exceptions (duplicate_card).
//
// A run may find an exception for every row it reads, so they are not held as
// objects: ExceptionLog encodes each one compactly, sorts them in runs of a
// bounded size, spills full runs to a SpillStore, and ExceptionSet merges the
// runs of every log of a run into the order of formats.md.
#ifndef CARECARD_ENGINE_EXCEPTIONS_H_
#define CARECARD_ENGINE_EXCEPTIONS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/calendar.h"
#include "engine/spill.h"

namespace carecard {

enum class Severity { kError, kWarning };
const char* SeverityName(Severity s);

// Every exception code (formats.md, plus bad_encoding and too_long for what the
// reader cannot read). Declared in the byte order of their names, which is the
// order of exceptions.csv.
enum class ExceptionCode : uint8_t {
  kBadAmount,
  kBadCreditCode,
  kBadDate,
  kBadEncoding,
  kBadIdNumber,
  kBadRow,
  kBalanceMismatch,
  kConflictingTxn,
  kCrossCenterConsumption,
  kDepositAfterDeath,
  kDepositOnInactiveCard,
  kDuplicateCard,
  kDuplicateId,
  kDuplicatePerson,
  kDuplicateTxn,
  kOverReversal,
  kOverdraft,
  kTooLong,
  kUnknownCard,
  kUnknownCenter,
  kUnknownFlag,
  kUnknownPerson,
  kUnknownRef,
  kUnknownStation,
};
inline constexpr int kExceptionCodeCount = static_cast<int>(ExceptionCode::kUnknownStation) + 1;
const char* ExceptionCodeName(ExceptionCode code);
std::optional<ExceptionCode> ExceptionCodeFromName(std::string_view name);
// Warnings keep their row; everything else is an error.
Severity SeverityOf(ExceptionCode code);

// One exception as plain strings (tests, explain, the PostgreSQL store).
struct ExceptionRecord {
  std::string code;
  Severity severity = Severity::kError;
  std::string file;  // file name without folder
  int64_t line = 0;
  std::string txn_id;
  std::string card_no;
  std::string person_id;
  std::string month;   // YYYY-MM of the row's own date, where it has a valid one
  std::string detail;  // for people: what was found, what was expected
};

// formats.md order: code, file, line (numeric), card_no, month; then txn_id,
// person_id and detail, so that the order is total.
bool ExceptionLess(const ExceptionRecord& a, const ExceptionRecord& b);

// One exception as the log holds it; the views point into the log's buffers
// and live until the callback returns.
struct ExceptionView {
  ExceptionCode code = ExceptionCode::kBadRow;
  uint16_t file = 0;  // index into the run's file names
  int64_t line = 0;
  int32_t month = -1;  // YearMonth index, -1 for none
  std::string_view txn_id, card_no, person_id, detail;
  Severity severity() const { return SeverityOf(code); }
};

// The file names exceptions refer to by index, shared by a run's logs. Names
// are appended, never changed. Not thread-safe while appending.
using FileNames = std::vector<std::string>;

// (file, line) of a row, packed for sets: file << 40 | line.
inline uint64_t RowKey(uint16_t file, int64_t line) { return static_cast<uint64_t>(file) << 40 | static_cast<uint64_t>(line); }
// Rows are numbered in 32 bits in the engine's records; a longer file refuses the run.
inline constexpr int64_t kMaxLinesPerFile = 4'294'967'295;
inline constexpr size_t kMaxFiles = 65'535;

class ExceptionSet;

// Collects exceptions of one thread. A log with a SpillStore sorts and spills
// a run whenever its buffer passes `budget_bytes`; without one, it keeps
// everything in memory.
class ExceptionLog {
 public:
  ExceptionLog(const FileNames* files, SpillStore* spill, size_t budget_bytes);
  ExceptionLog(ExceptionLog&&) noexcept;
  ExceptionLog& operator=(ExceptionLog&&) noexcept;
  ~ExceptionLog();

  // `tentative` marks a rejection that a later duplicate verdict on the same
  // row may replace (see ExceptionSet::ForEach). `month` is a YearMonth index or -1.
  void Add(ExceptionCode code, uint16_t file, int64_t line, std::string_view txn_id, std::string_view card_no,
           std::string_view person_id, int32_t month, std::string_view detail, bool tentative = false);
  void Add(ExceptionCode code, uint16_t file, int64_t line, std::string_view txn_id, std::string_view card_no,
           std::string_view person_id, std::optional<YearMonth> month, std::string_view detail, bool tentative = false) {
    Add(code, file, line, txn_id, card_no, person_id, month ? month->index() : -1, detail, tentative);
  }
  // Added so far, tentative ones included.
  int64_t count() const { return count_; }

 private:
  friend class ExceptionSet;
  // A sorted run in the spill, in pieces that each hold whole records.
  struct Extent {
    uint64_t offset = 0;
    uint64_t bytes = 0;
  };
  using Run = std::vector<Extent>;
  void SpillRun();
  void SortBuffer();

  const FileNames* files_;
  SpillStore* spill_;
  size_t budget_;
  std::vector<char> buffer_;
  std::vector<uint64_t> offsets_;  // record starts in buffer_
  std::vector<Run> runs_;
  int64_t count_ = 0;
  std::array<int64_t, kExceptionCodeCount> by_code_{};
};

// The exceptions of a run: every log's runs, merged in order.
class ExceptionSet {
 public:
  ExceptionSet() = default;
  ExceptionSet(const FileNames* files, SpillStore* spill);
  // Takes the log's records. REQUIRES: the log spilled into this set's store.
  void Absorb(ExceptionLog&& log);
  // Rows whose tentative rejection is superseded (by duplicate_txn or
  // conflicting_txn): their tentative records are skipped. `code` is the
  // tentative code, to keep the counts right.
  void Supersede(uint64_t row_key, ExceptionCode code);
  // After the last Absorb and Supersede: ForEach may run.
  void Seal();
  // Calls `fn` for every exception in formats.md order. REQUIRES: Seal().
  void ForEach(const std::function<void(const ExceptionView&)>& fn) const;
  // Exceptions by code (superseded ones excluded).
  const std::array<int64_t, kExceptionCodeCount>& counts() const { return by_code_; }
  int64_t size() const;
  // Everything as plain records (tests and small runs).
  std::vector<ExceptionRecord> Records() const;
  const FileNames* files() const { return files_; }

 private:
  const FileNames* files_ = nullptr;
  SpillStore* spill_ = nullptr;
  std::vector<ExceptionLog> logs_;
  std::vector<uint64_t> superseded_;  // sorted by Seal
  std::array<int64_t, kExceptionCodeCount> by_code_{};
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_EXCEPTIONS_H_
