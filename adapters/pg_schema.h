// The PostgreSQL schema of the carecard store, as numbered migrations.
//
// Each migration is a fixed SQL text, applied once, in order, in its own
// transaction, and recorded in `schema_migrations` (version, name, applied_at).
// A migration is never edited once released: a change is a new migration.
// Applying is serialised by a transaction-level advisory lock, so two
// processes that migrate at once do not race (the second waits, then finds
// nothing left to do).
//
// What the schema holds (docs/postgresql.md describes it for operators):
//  - input tables, one per kind of formats.md (centers, stations, persons,
//    assessments, cards, enrollments, platform_balances, deposits,
//    consumption): the formats.md columns as text, exactly as written, plus
//    source_file, line, and the reader's verdict (problem_code,
//    problem_detail, raw_cells) so a settlement replays every row as the file
//    reader would have handed it over; input_files (one row per delivered file);
//  - the book: periods (draft|closed, the manifest and its chain),
//    card_month_results, adjustments, payouts, statements, exceptions,
//    consumption_by_center, homebed_exclusions with exact types, and
//    period_files (the rendered bytes). Triggers refuse any insert, update or
//    delete touching a closed period's rows, any change to a closed period's
//    row, and TRUNCATE of a book table once anything is closed;
//  - imports, import_log and import_rejections: what each import did.
//
// Thread-safety: the functions here share no state.
#ifndef CARECARD_ADAPTERS_PG_SCHEMA_H_
#define CARECARD_ADAPTERS_PG_SCHEMA_H_

#include <string>
#include <vector>

namespace carecard {

struct PgMigration {
  int version = 0;     // 1, 2, ...: applied in this order
  const char* name;    // short, snake_case
  const char* sql;     // one or more statements
};

// Every migration this engine knows, ascending by version.
const std::vector<PgMigration>& PgMigrations();

// The schema version this engine needs (the last migration's version).
int PgSchemaVersion();

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_PG_SCHEMA_H_
