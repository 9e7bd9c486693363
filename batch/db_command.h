// The PostgreSQL commands of cli.md: `db migrate`, `import`, and the `--db`
// form of `settle` (docs/postgresql.md tells operators how to use them).
//
// Connection: `db` is a libpq URL (postgresql://user@host:5432/carecard) or a
// key=value string (host=... dbname=...). Empty means libpq's defaults:
// PGSERVICE / PGHOST / PGPORT / PGUSER / PGDATABASE and ~/.pgpass for the
// password, so no password ever needs to be on the command line.
//
// Each returns the process exit status: 0 done, 1 bad usage, 2 the rules,
// inputs or database refuse the run (nothing written), 3 the period is closed
// or out of order, or another run holds the book (settle) or the store (import).
#ifndef CARECARD_BATCH_DB_COMMAND_H_
#define CARECARD_BATCH_DB_COMMAND_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

#include "rules/policy_loader.h"

namespace carecard {

struct DbMigrateOptions {
  std::string db;
};
// Applies the migrations the database lacks and prints the schema version.
int RunDbMigrate(const DbMigrateOptions& options, std::ostream& out, std::ostream& err);

struct ImportOptions {
  std::string db;
  std::string data_dir;
  // Optional: the policy whose time zone dates the recorded verdicts (months of
  // exceptions, deposit-after-death checks). Without it, +08:00 (semantics.md §2).
  std::string rules_path;
};
// Migrates, then imports a complete data folder (adapters/pg_store.h says
// what is added, replaced and logged) and prints a summary.
int RunImport(const ImportOptions& options, std::ostream& out, std::ostream& err);

struct DbSettleOptions {
  std::string db;
  std::string rules_path;
  std::string period;
  bool close = false;
  int threads = 1;
  int64_t max_rejects = 1'000'000;
  // When set, the period's files are also written to OUT/PERIOD/ (atomically,
  // replacing an earlier export), byte-identical to the file book's.
  std::string out_dir;
  Language language = Language::kEnglish;
  // Testing only: called inside the write transaction after each table.
  std::function<void(const std::string& table)> after_table;
};
// Migrates, takes the book's advisory lock (held: 3 at once), reads the book
// and the inputs from the store, settles with the engine of RunSettle, and
// writes the period's rows and files in one transaction.
int RunDbSettle(const DbSettleOptions& options, std::ostream& out, std::ostream& err);

}  // namespace carecard

#endif  // CARECARD_BATCH_DB_COMMAND_H_
