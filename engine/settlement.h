// Settlement: one payout period computed from the whole input history, the
// policy and what the book holds of earlier closed periods (semantics.md
// §5-§7). Pure and deterministic: no I/O (spilled records go through a
// SpillStore), no clock; the same inputs give the same rows whatever the
// thread count, partition count or spill.
//
// The seam for scale: everything a card-month needs belongs to one elder, so
// rows are partitioned by elder and settled partition by partition on any
// number of threads (elder_settle.h); only payouts, consumption by centre and
// control totals are merged across elders, by centre. Memory holds the
// registry, the card-months and one partition per thread; transaction rows
// live in the spill.
//
// Use: AddFile for every input file in reading order (registry files, then
// deposit files and consumption files by name); SetHeader per file; registry
// rows with AddRegistryRow, in file order; FinishRegistry; transaction rows
// through Workers (one per thread, any split of any file) or AddTxnRow;
// Finish.
#ifndef CARECARD_ENGINE_SETTLEMENT_H_
#define CARECARD_ENGINE_SETTLEMENT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/book_state.h"
#include "engine/calendar.h"
#include "engine/elder_settle.h"
#include "engine/exceptions.h"
#include "engine/ledger.h"
#include "engine/policy.h"
#include "engine/registry.h"
#include "engine/results.h"
#include "engine/spill.h"

namespace carecard {

inline constexpr int kMaxThreads = 256;

struct RunOptions {
  int threads = 1;  // 1..kMaxThreads; the result does not depend on it
  // Where transaction records and exception runs go; nullptr keeps them in memory.
  SpillStore* spill = nullptr;
  // About how many bytes of transaction files the run will read: sizes the
  // partitions so that each holds a few MB of records. 0 for small runs.
  uint64_t expected_transaction_bytes = 0;
  // About how many bytes of records a partition holds (a thread settles one
  // at a time). Smaller means more partitions; results do not depend on it.
  uint64_t partition_bytes = 3u << 20;
  // Bytes of exceptions a thread keeps before it sorts and spills a run.
  size_t exception_budget_bytes = 2u << 20;
  // Only the row verdicts (what an import records): no card-months,
  // balances, statements or adjustments.
  bool row_checks_only = false;
  // explain: settle only the partition of this card, and explain this month.
  std::optional<std::string> explain_card;
  YearMonth explain_month;
};

struct RunResult {
  std::unique_ptr<FileNames> files;  // by file index; the exceptions refer to it
  std::vector<FileCounts> counts;    // by file index: read = accepted + rejected + deferred
  Registry registry;
  SettlementResult settlement;
  std::optional<CardMonthExplanation> explanation;  // explain runs; found = false for an unknown card
  std::unique_ptr<SpillStore> owned_spill;  // the in-memory spill, when RunOptions::spill was null
  uint32_t elder_partitions = 0;
  uint64_t spilled_bytes = 0;  // transaction and txn id records, as spilled
  // How long each step of Finish took, in milliseconds (CARECARD_TIMINGS prints them).
  std::vector<std::pair<std::string, int64_t>> phases;
};

class SettlementRun {
 public:
  // REQUIRES: `period` uses policy.months_per_period and is after book.latest_closed.
  // policy and book must outlive the run.
  SettlementRun(const Policy& policy, const PayoutPeriod& period, const BookState& book, RunOptions options);
  ~SettlementRun();
  SettlementRun(const SettlementRun&) = delete;
  SettlementRun& operator=(const SettlementRun&) = delete;

  // Declares the next input file; returns its index. Throws RefusedError past kMaxFiles.
  uint16_t AddFile(InputKind kind, const std::string& name);
  // Maps the file's header. false with *missing when it lacks a required column.
  bool SetHeader(uint16_t file, std::span<const std::string> header, std::string* missing);
  const TxnFile& txn_file(uint16_t file) const;

  // Room for about `rows` rows in a registry file (an estimate: indexes then do not grow).
  void ReserveRegistryRows(uint16_t file, size_t rows);
  // A hint that AddRegistryRow(file, ..., cells) comes soon (RegistryBuilder::Prefetch).
  void PrefetchRegistryRow(uint16_t file, Cells cells);
  // A registry row, all its cells as read. Single-threaded, in file order.
  RowOutcome AddRegistryRow(uint16_t file, int64_t line, Cells cells);
  // A row of any file that the reader could not read cleanly.
  void AddProblemRow(uint16_t file, int64_t line, ExceptionCode code, std::string_view detail);
  // Ends the registry. REQUIRES: every file has been added.
  void FinishRegistry();
  const Registry& registry() const;

  // Classifies transaction rows on one thread.
  class Worker {
   public:
    void AddRow(uint16_t file, int64_t line, uint64_t locator, Cells cells) { classifier_.AddRow(*files_[file], line, locator, cells); }
    void AddProblemRow(uint16_t file, int64_t line, ExceptionCode code, std::string_view detail) {
      classifier_.AddProblemRow(*files_[file], line, code, detail);
    }
    // A hint that AddRow(file, ..., cells) comes soon.
    void Prefetch(uint16_t file, Cells cells) { classifier_.Prefetch(*files_[file], cells); }
    // Rows of `file` this worker rejected so far (for --max-rejects).
    int64_t rejected(uint16_t file) const { return counts_[file].rejected; }
    void Flush() { classifier_.Flush(); }
    void Release() { classifier_.Release(); }

   private:
    friend class SettlementRun;
    Worker(const LedgerContext* ctx, PartitionedSpill* events, PartitionedSpill* dedup, const FileNames* names,
           SpillStore* spill, size_t budget, std::vector<const TxnFile*> files, size_t file_count);
    ExceptionLog log_;
    CountDeltas counts_;
    TxnClassifier classifier_;
    std::vector<const TxnFile*> files_;
  };
  // REQUIRES: FinishRegistry. Thread-safe.
  Worker* NewWorker();

  // A transaction row with no file to read it back from (tests, the
  // PostgreSQL store): its cells are archived for the duplicate check.
  // Single-threaded. REQUIRES: FinishRegistry.
  void AddTxnRow(uint16_t file, int64_t line, Cells cells);

  // Settles. `fetcher` reads back rows given to Workers (nullptr when every
  // transaction row came through AddTxnRow). Throws MoneyOverflow, RefusedError, SpillError.
  RunResult Finish(const RowFetcher* fetcher);

  // Rows rejected so far in `file`, by the registry or AddTxnRow (for --max-rejects).
  int64_t rejected(uint16_t file) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The convenience form for tests, policy cases and fuzzing: files fed one at a
// time, as rows of strings, all in memory.
class Intake {
 public:
  Intake(const Policy& policy, const PayoutPeriod& period, const BookState& book, RunOptions options = {});
  // Starts a file; false with *missing when the header lacks a required column.
  bool BeginFile(InputKind kind, const std::string& file_name, const std::vector<std::string>& header,
                 std::string* missing);
  // One data row; `problem_code` non-empty for a row the reader could not read cleanly.
  void AddRow(int64_t line, const std::vector<std::string>& cells, std::string_view problem_code = {},
              std::string_view problem_detail = {});
  void EndFile() {}
  int64_t current_file_rejected() const;
  RunResult Finish();

 private:
  SettlementRun run_;
  uint16_t file_ = 0;
  bool in_file_ = false;
  bool registry_done_ = false;
  std::vector<std::string_view> views_;
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_SETTLEMENT_H_
