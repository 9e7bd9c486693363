// PgStore: the PostgreSQL store of carecard (libpqxx 6.4): the input rows of
// data folders, and the book of settled periods.
//
// Identical results by construction: the store keeps every delivered row with
// its source file, line, the formats.md cells as written (text) and the file
// reader's verdict, and FeedIntake hands them to an Intake file by file in the
// order LoadDataFolder uses (registry files in their fixed order, then deposit
// files and consumption files by name), with a header of the file's width. So
// an Intake fed from the store sees what it would have seen reading a folder
// holding the same rows, and rejects, warns and accepts the same rows.
//
// Import (ImportFolder) of a complete data folder, in one transaction:
//  - registry files (centres ... platform balances) replace what the store
//    holds of their kind; an optional file absent from the folder empties it;
//  - transaction files (deposits*, consumption*) only add: within a file,
//    rows are identified by txn_id and occurrence (the n-th row with that
//    txn_id in the file; rows without a readable txn_id by their content and
//    occurrence). A row already stored with identical content is not added
//    again (it takes the line it has in the new delivery, so a re-delivered
//    file with rows inserted reads as that file); a row whose stored content
//    differs keeps the stored content and is logged (import_log,
//    conflicting_txn); a stored row missing from a re-delivered file is kept
//    and logged (kept_not_in_delivery). Files absent from the folder are kept.
//    Rows with the same txn_id in two files, or twice in one file, are all
//    stored: the engine rejects the later ones as duplicate_txn /
//    conflicting_txn, exactly as `settle --data` does on a folder holding them.
//  - then an Intake (no period limit) runs over the store's content and its
//    exceptions are recorded in import_rejections.
// Importing the same folder twice adds nothing.
//
// The book: ReadBook gives what Book::ReadState gives for a file book;
// WritePeriod replaces a draft period's rows and files in one transaction
// (all or nothing). Closed periods are guarded by triggers in the database.
//
// Connection: `conninfo` is a libpq URL or key=value string; empty means
// libpq's defaults (PGSERVICE, PGHOST, PGUSER, ... and ~/.pgpass).
// Errors: every call returns false with a message for people in *error;
// no exception escapes this class.
// Thread-safety: one PgStore per thread (it owns one connection).
#ifndef CARECARD_ADAPTERS_PG_STORE_H_
#define CARECARD_ADAPTERS_PG_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/data_folder.h"
#include "engine/calendar.h"
#include "engine/book_state.h"
#include "engine/settlement.h"

namespace carecard {

// Advisory lock keys (pg_try_advisory_lock): one settlement per database at a
// time, one import per database at a time.
inline constexpr int64_t kPgBookLockKey = 0x6361726563617264;    // "carecard"
inline constexpr int64_t kPgImportLockKey = 0x6361726563617269;  // "carecari"
inline constexpr int64_t kPgMigrateLockKey = 0x636172656361726d; // "carecarm"

struct PgImportFileSummary {
  std::string file;
  InputKind kind = InputKind::kCenters;
  int64_t rows = 0;        // rows in the delivered file
  int64_t added = 0;       // rows new to the store (registry files: every row)
  int64_t unchanged = 0;   // rows already stored, identical
  int64_t moved = 0;       // rows already stored, now on another line
  int64_t conflicts = 0;   // rows already stored with other content (stored kept)
  int64_t kept = 0;        // stored rows not in this delivery of the file (kept)
};

struct PgImportSummary {
  int64_t import_id = 0;
  std::vector<PgImportFileSummary> files;
  int64_t rows_added = 0;
  std::map<std::string, int64_t> rejections_by_code;  // engine verdicts (errors and warnings)
  int64_t rejected_rows = 0;                          // errors among them
};

enum class PgResult {
  kOk,
  kBusy,     // another run holds the lock
  kRefused,  // the folder, the store or the database refuses (message in *error)
};

struct PgPeriod {
  std::string period;
  bool closed = false;
  std::string manifest_sha256;
};

struct PgPeriodWrite {
  PayoutPeriod period = PayoutPeriod::Containing(YearMonth::Of(2024, 1), 2);
  bool close = false;
  // Every file of the period by name, manifest.json included, as rendered.
  std::map<std::string, std::string> files;
  std::optional<std::string> previous_manifest_sha256;
  // Testing only: called inside the transaction after each table is written,
  // with its name; an exception thrown here aborts the write (rolled back).
  std::function<void(const std::string& table)> after_table;
};

class PgStore {
 public:
  // Connects. nullptr with *error when the server cannot be reached.
  static std::unique_ptr<PgStore> Open(const std::string& conninfo, std::string* error);
  ~PgStore();
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // Applies the migrations the database lacks; *applied (may be null) counts them.
  // Fails when the database has a newer schema than this engine knows.
  bool Migrate(int* applied, std::string* error);

  // Imports a complete data folder (see the file comment). `zone` is the
  // policy's time zone, used by the engine's verdicts recorded for the import.
  // kBusy when another import runs; kRefused on a missing folder or required
  // file, a header without a required column, or a database error (nothing
  // written).
  PgResult ImportFolder(const std::string& dir, UtcOffset zone, PgImportSummary* summary, std::string* error);

  // Takes the book's session-level advisory lock without waiting; held until
  // ReleaseBook or the connection ends. false (no error) when another session holds it.
  bool TryLockBook(bool* acquired, std::string* error);
  void ReleaseBook();

  // The periods of the book, ascending (months_per_period names them), and
  // what the engine needs of the closed ones (as Book::ReadState).
  bool ReadBook(int months_per_period, std::vector<PgPeriod>* periods, BookState* state, std::string* error);

  // Feeds every stored input row into `intake` (see the file comment), in one
  // snapshot. Fills *files (name, kind, bytes and SHA-256 of the file's last
  // delivery). Fails when the store has no centers, persons or cards file,
  // or a file has more than `max_rejects_per_file` rejected rows.
  bool FeedIntake(Intake* intake, int64_t max_rejects_per_file, std::vector<InputFileInfo>* files,
                  std::string* error);

  // Writes one period in one transaction: the draft's rows and files are
  // replaced, the periods row updated; with close, the period becomes closed.
  // REQUIRES: the book lock is held. Fails (nothing written) when the period is closed.
  bool WritePeriod(const PgPeriodWrite& write, std::string* error);

  // The stored bytes of a period's files.
  bool ReadPeriodFiles(const std::string& period, std::map<std::string, std::string>* files, std::string* error);

 private:
  struct Impl;
  explicit PgStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_PG_STORE_H_
