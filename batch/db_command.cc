#include "batch/db_command.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <iostream>
#include <cstdlib>
#include <map>
#include <memory>

#include "adapters/csv_reader.h"
#include "adapters/pg_schema.h"
#include "adapters/pg_store.h"
#include "batch/book.h"
#include "batch/settle_command.h"

namespace carecard {
namespace {

// True when the connection string carries a password: on a command line it
// would show in `ps` and in shell history, so carecard refuses it.
bool HasPassword(const std::string& db) {
  if (db.empty()) return false;
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(db.c_str(), &parse_error);
  if (parse_error) PQfreemem(parse_error);
  if (!options) return false;  // libpq will report the malformed string itself
  bool found = false;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (std::string(o->keyword) == "password" && o->val && *o->val) found = true;
  }
  PQconninfoFree(options);
  return found;
}

// Connects and migrates; nullptr after printing why.
std::unique_ptr<PgStore> OpenStore(const std::string& db, std::ostream& err, int* applied = nullptr) {
  if (HasPassword(db)) {
    err << "--db holds a password; a password on the command line shows in ps and in shell history. "
           "Leave it out and use ~/.pgpass, PGPASSFILE or a service file (docs/postgresql.md)\n";
    return nullptr;
  }
  std::string error;
  auto store = PgStore::Open(db, &error);
  if (!store) {
    err << error << "\n";
    if (db.empty()) err << "  (no --db given: libpq's PGSERVICE / PGHOST / PGDATABASE / PGUSER and ~/.pgpass were used)\n";
    return nullptr;
  }
  if (!store->Migrate(applied, &error)) {
    err << error << "\n";
    return nullptr;
  }
  return store;
}

// The book's lock, released when the run ends (the session ending releases it too).
class BookLockGuard {
 public:
  explicit BookLockGuard(PgStore* store) : store_(store) {}
  ~BookLockGuard() { store_->ReleaseBook(); }

 private:
  PgStore* store_;
};

}  // namespace

int RunDbMigrate(const DbMigrateOptions& o, std::ostream& out, std::ostream& err) {
  int applied = 0;
  auto store = OpenStore(o.db, err, &applied);
  if (!store) return kExitRefused;
  out << "schema version " << PgSchemaVersion() << " (" << applied << " migration(s) applied)\n";
  return kExitOk;
}

int RunImport(const ImportOptions& o, std::ostream& out, std::ostream& err) {
  UtcOffset zone = *UtcOffset::Parse("+08:00");
  if (!o.rules_path.empty()) {
    PreparedRun run;
    if (int rc = LoadPolicy(o.rules_path, Language::kEnglish, &run, err)) return rc;
    zone = run.policy.policy.timezone;
  }
  auto store = OpenStore(o.db, err);
  if (!store) return kExitRefused;
  PgImportSummary summary;
  std::string error;
  switch (store->ImportFolder(o.data_dir, zone, &summary, &error)) {
    case PgResult::kOk: break;
    case PgResult::kBusy: err << error << "\n"; return kExitClosed;
    case PgResult::kRefused: err << error << "\n"; return kExitRefused;
  }
  out << "imported " << o.data_dir << " (import " << summary.import_id << "): " << summary.rows_added
      << " row(s) added\n";
  for (const auto& f : summary.files) {
    out << "  " << f.file << ": " << f.rows << " row(s)";
    if (f.kind == InputKind::kDeposits || f.kind == InputKind::kConsumption) {
      out << ", " << f.added << " added, " << f.unchanged + f.moved << " already stored";
      if (f.moved) out << " (" << f.moved << " on another line now)";
      if (f.conflicts) out << ", " << f.conflicts << " with other content than stored (stored kept; see import_log)";
      if (f.kept) out << ", " << f.kept << " stored row(s) not in this delivery (kept; see import_log)";
    } else {
      out << " (replaces the store's " << InputKindName(f.kind) << ")";
    }
    out << "\n";
  }
  if (summary.rejections_by_code.empty()) {
    out << "  engine verdicts: none\n";
  } else {
    out << "  engine verdicts (import_rejections): " << summary.rejected_rows << " row(s) rejected;";
    for (const auto& [code, n] : summary.rejections_by_code) out << " " << code << "=" << n;
    out << "\n";
  }
  return kExitOk;
}

int RunDbSettle(const DbSettleOptions& o, std::ostream& out, std::ostream& err) {
  PreparedRun run;
  if (int rc = LoadPolicy(o.rules_path, o.language, &run, err)) return rc;
  const Policy& policy = run.policy.policy;
  run.period = PayoutPeriod::Parse(o.period, policy.months_per_period);
  if (!run.period) {
    err << "period '" << o.period << "' is not a period of " << policy.months_per_period << " month(s) (expected e.g. "
        << PayoutPeriod::Containing(YearMonth::Of(2024, 1), policy.months_per_period).ToString() << ")\n";
    return kExitUsage;
  }
  const PayoutPeriod period = *run.period;
  auto store = OpenStore(o.db, err);
  if (!store) return kExitRefused;
  std::string error;
  bool locked = false;
  if (!store->TryLockBook(&locked, &error)) {
    err << error << "\n";
    return kExitRefused;
  }
  if (!locked) {
    err << "the database's book is held by another settlement; try again when it has finished\n";
    return kExitClosed;
  }
  BookLockGuard guard(store.get());

  std::vector<PgPeriod> stored;
  if (!store->ReadBook(policy.months_per_period, &stored, &run.book, &error)) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  for (const auto& p : stored) {
    BookPeriod bp{*PayoutPeriod::Parse(p.period, policy.months_per_period), p.closed, p.manifest_sha256};
    if (bp.closed && run.book.latest_closed && bp.period == *run.book.latest_closed) {
      run.previous_manifest_sha256 = bp.manifest_sha256;
    }
    run.periods.push_back(bp);
  }
  if (int rc = CheckPeriodOrder(period, o.close, run, err)) return rc;

  RunOptions options;
  options.threads = o.threads;
  std::unique_ptr<SpillStore> spill;
  const char* tmp = std::getenv("TMPDIR");
  // The store does not say how large its inputs are before they are read: spill to a file when asked to.
  if (!MakeSpill(tmp && *tmp ? tmp : "/tmp", 0, RunTuning::FromEnvironment().spill, &spill, &error)) {
    err << error << "\n";
    return kExitRefused;
  }
  options.spill = spill.get();
  try {
    Intake intake(policy, period, run.book, options);
    if (!store->FeedIntake(&intake, o.max_rejects, &run.inputs, &error)) {
      err << error << "\n";
      return kExitRefused;
    }
    run.result = intake.Finish();
  } catch (const MoneyOverflow& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  } catch (const RefusedError& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  } catch (const SpillError& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  }
  run.result.owned_spill = std::move(spill);
  if (int rc = CheckRejects(run, o.max_rejects, "", err)) return rc;
  MemoryOutputSink sink;
  std::string manifest;
  if (int rc = WriteFiles(o.rules_path, o.threads, RunTuning{}, o.close, &run, &sink, &manifest, err)) return rc;
  const std::map<std::string, std::string>& files = sink.files();

  PgPeriodWrite write;
  write.period = period;
  write.close = o.close;
  write.files = files;
  write.previous_manifest_sha256 = run.previous_manifest_sha256;
  write.after_table = o.after_table;
  try {
    if (!store->WritePeriod(write, &error)) {
      err << "database: " << error << "\n";
      return kExitRefused;
    }
  } catch (const std::exception& e) {  // only a test hook throws here; the transaction rolled back
    err << "database: cannot write period " << period.ToString() << " (nothing written): " << e.what() << "\n";
    return kExitRefused;
  }
  std::string where = "the database";
  if (!o.out_dir.empty()) {
    Book out_book(o.out_dir, policy.months_per_period);
    if (!out_book.WritePeriod(period, files, &error)) {
      err << "--out: " << error << " (the database holds the period; export it again with --out)\n";
      return kExitRefused;
    }
    where += " and " + out_book.PeriodDir(period);
  }
  PrintSummary(period, o.close, run.result, where, out);
  return kExitOk;
}

}  // namespace carecard
