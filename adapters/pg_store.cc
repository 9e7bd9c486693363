#include "adapters/pg_store.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <utility>
#include <pqxx/pqxx>
#include <set>
#include <unordered_map>

#include "adapters/csv_reader.h"
#include "adapters/pg_schema.h"

namespace carecard {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNoRejectLimit = int64_t{1} << 62;
// The last month there is: nothing is deferred when the store's verdicts are recorded.
const YearMonth kFarFutureMonth = YearMonth::Of(9999, 12);


std::optional<InputKind> KindFromName(const std::string& name) {
  for (InputKind k : {InputKind::kCenters, InputKind::kStations, InputKind::kPersons, InputKind::kAssessments,
                      InputKind::kCards, InputKind::kEnrollments, InputKind::kPlatformBalances, InputKind::kDeposits,
                      InputKind::kConsumption}) {
    if (name == InputKindName(k)) return k;
  }
  return std::nullopt;
}

// libpqxx 6.4's stream_to takes rows as tuples (std::tuple, std::array), not as
// vectors; WriteRow picks the std::array of the row's width. A null pointer is
// written as NULL.
constexpr size_t kMaxCopyColumns = 24;
using CopyRow = std::vector<const char*>;

template <size_t... I>
void WriteFixedRow(pqxx::stream_to& stream, const CopyRow& row, std::index_sequence<I...>) {
  stream << std::array<const char*, sizeof...(I)>{row[I]...};
}
template <size_t N>
void WriteRowOf(pqxx::stream_to& stream, const CopyRow& row) {
  WriteFixedRow(stream, row, std::make_index_sequence<N + 1>{});
}
template <size_t... N>
constexpr auto MakeRowWriters(std::index_sequence<N...>) {
  return std::array<void (*)(pqxx::stream_to&, const CopyRow&), sizeof...(N)>{&WriteRowOf<N>...};
}

void WriteRow(pqxx::stream_to& stream, const CopyRow& row) {
  static constexpr auto kWriters = MakeRowWriters(std::make_index_sequence<kMaxCopyColumns>{});
  if (row.empty() || row.size() > kMaxCopyColumns) {
    throw std::logic_error("a COPY row of " + std::to_string(row.size()) + " columns (1.." + std::to_string(kMaxCopyColumns) + ")");
  }
  kWriters[row.size() - 1](stream, row);
}


std::string Join(const std::vector<std::string>& names, const std::string& prefix = "") {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += prefix + n;
  }
  return out;
}

// A PostgreSQL array literal of text elements.
std::string ArrayLiteral(const std::vector<std::string>& cells) {
  std::string out = "{";
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : cells[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::vector<std::string> ParseTextArray(const pqxx::field& f) {
  std::vector<std::string> out;
  pqxx::array_parser parser = f.as_array();
  for (;;) {
    auto [what, value] = parser.get_next();
    if (what == pqxx::array_parser::done) break;
    if (what == pqxx::array_parser::string_value) out.push_back(std::move(value));
    if (what == pqxx::array_parser::null_value) out.emplace_back();
  }
  return out;
}

// The columns stored for every input row, before the kind's own columns.
std::vector<std::string> StoredColumns(InputKind kind) {
  std::vector<std::string> cols = {"source_file", "line"};
  if (IsTransactionKind(kind)) cols.push_back("row_key");
  for (const char* c : {"problem_code", "problem_detail", "raw_cells"}) cols.push_back(c);
  for (const auto& c : RequiredColumns(kind)) cols.push_back(c);
  return cols;
}

// The columns that make a stored row's content (compared on re-delivery).
std::vector<std::string> ContentColumns(InputKind kind) {
  std::vector<std::string> cols = {"problem_code", "problem_detail", "raw_cells"};
  for (const auto& c : RequiredColumns(kind)) cols.push_back(c);
  return cols;
}

struct DeliveredFile {
  InputFileInfo info;
  size_t header_width = 0;
  int64_t rows = 0;
};

// Reads one delivered file into the staging table of its kind.
bool StageFile(pqxx::work& tx, const std::string& dir, DeliveredFile* file, std::string* error) {
  const InputKind kind = file->info.kind;
  const std::string path = (fs::path(dir) / file->info.file).string();
  if (!Sha256File(path, &file->info.sha256, &file->info.bytes, error)) return false;
  auto reader = CsvReader::Open(path, error);
  if (!reader) return false;
  CsvRow row;
  const auto& required = RequiredColumns(kind);
  if (!reader->Next(&row)) {
    *error = path + ": the file is empty; expected a header row with " + std::to_string(required.size()) +
             " columns starting '" + required.front() + "'";
    return false;
  }
  if (row.problem != CsvProblem::kNone) {
    *error = path + ":" + std::to_string(row.line) + ": the header cannot be read: " + std::string(CsvProblemText(row.problem));
    return false;
  }
  std::vector<size_t> column_of(required.size());
  for (size_t i = 0; i < required.size(); ++i) {
    auto it = std::find(row.cells.begin(), row.cells.end(), required[i]);
    if (it == row.cells.end()) {
      *error = path + ": the header has no column '" + required[i] + "'";
      return false;
    }
    column_of[i] = static_cast<size_t>(it - row.cells.begin());
  }
  file->header_width = row.cells.size();

  const std::vector<std::string> columns = StoredColumns(kind);
  pqxx::stream_to stream(tx, std::string("stage_") + InputKindName(kind), columns);
  std::unordered_map<std::string, int64_t> occurrences;
  std::vector<std::string> canonical(required.size());
  std::vector<const char*> values;
  while (reader->Next(&row)) {
    ++file->rows;
    const std::string line = std::to_string(row.line);
    const bool problem = row.problem != CsvProblem::kNone;
    const bool width_ok = !problem && row.cells.size() == file->header_width;
    std::string code = problem ? std::string(RowProblemCode(row.problem)) : "";
    std::string detail = problem ? std::string(CsvProblemText(row.problem)) : "";
    std::string raw = width_ok ? std::string() : ArrayLiteral(row.cells);
    if (width_ok) {
      for (size_t i = 0; i < required.size(); ++i) canonical[i] = row.cells[column_of[i]];
    }
    std::string row_key;
    if (IsTransactionKind(kind)) {
      if (width_ok && !canonical[0].empty()) {
        std::string base = "t:" + canonical[0];
        row_key = base + "#" + std::to_string(occurrences[base]++);
      } else {
        std::string content = code + '\x1f' + detail;
        for (const auto& c : row.cells) content += '\x1f' + c;
        std::string base = "r:" + Sha256Hex(content);
        row_key = base + "#" + std::to_string(occurrences[base]++);
      }
    }
    values.clear();
    values.push_back(file->info.file.c_str());
    values.push_back(line.c_str());
    if (IsTransactionKind(kind)) values.push_back(row_key.c_str());
    values.push_back(problem ? code.c_str() : nullptr);
    values.push_back(problem ? detail.c_str() : nullptr);
    values.push_back(width_ok ? nullptr : raw.c_str());
    for (size_t i = 0; i < required.size(); ++i) values.push_back(width_ok ? canonical[i].c_str() : nullptr);
    WriteRow(stream, values);
  }
  stream.complete();
  if (!reader->error().empty()) {
    *error = reader->error();
    return false;
  }
  return true;
}

std::string TupleOf(const std::string& alias, const std::vector<std::string>& cols) {
  return "(" + Join(cols, alias + ".") + ")";
}

// Feeds the store's rows into an Intake; see PgStore::FeedIntake.
bool FeedIntakeFrom(pqxx::transaction_base& tx, Intake* intake, int64_t max_rejects, std::vector<InputFileInfo>* files,
                    std::string* error) {
  files->clear();
  struct StoredFile {
    InputFileInfo info;
    size_t header_width = 0;
  };
  std::vector<StoredFile> stored;
  for (const auto& r : tx.exec("SELECT source_file, kind, header_width, bytes, sha256 FROM input_files")) {
    auto kind = KindFromName(r[1].as<std::string>());
    if (!kind) {
      *error = "input_files names an unknown kind '" + r[1].as<std::string>() + "'";
      return false;
    }
    StoredFile f;
    f.info.file = r[0].as<std::string>();
    f.info.kind = *kind;
    f.header_width = r[2].as<size_t>();
    f.info.bytes = r[3].as<uint64_t>();
    f.info.sha256 = r[4].as<std::string>();
    stored.push_back(std::move(f));
  }
  // The order of ListDataFiles: registry kinds in their fixed order, then
  // deposit files and consumption files by name (byte order).
  auto rank = [](InputKind k) { return static_cast<int>(k); };
  std::sort(stored.begin(), stored.end(), [&](const StoredFile& a, const StoredFile& b) {
    if (a.info.kind != b.info.kind) return rank(a.info.kind) < rank(b.info.kind);
    return a.info.file < b.info.file;
  });
  for (InputKind required : {InputKind::kCenters, InputKind::kPersons, InputKind::kCards}) {
    if (std::none_of(stored.begin(), stored.end(), [&](const StoredFile& f) { return f.info.kind == required; })) {
      *error = std::string("the store holds no ") + InputKindName(required) +
               ".csv; import a complete data folder first (carecard import --db URL --data DIR)";
      return false;
    }
  }
  for (const auto& f : stored) {
    const InputKind kind = f.info.kind;
    const auto& required = RequiredColumns(kind);
    std::vector<std::string> header = required;
    for (size_t i = header.size(); i < f.header_width; ++i) header.push_back("\x1f(extra column " + std::to_string(i) + ")");
    std::string missing;
    if (!intake->BeginFile(kind, f.info.file, header, &missing)) {
      *error = f.info.file + ": the stored header has no column '" + missing + "'";
      return false;
    }
    const std::vector<std::string> content = ContentColumns(kind);
    const std::string sql = "SELECT line, " + Join(content) + " FROM " + InputKindName(kind) +
                            " WHERE source_file = $1 ORDER BY line, id";
    pqxx::result rows = tx.exec_params(sql, f.info.file);
    std::vector<std::string> cells;
    for (const auto& r : rows) {
      const int64_t line = r[0].as<int64_t>();
      if (!r[1].is_null()) {
        intake->AddRow(line, {}, r[1].c_str(), r[2].is_null() ? std::string_view() : std::string_view(r[2].c_str()));
      } else if (!r[3].is_null()) {
        intake->AddRow(line, ParseTextArray(r[3]));
      } else {
        cells.assign(f.header_width, std::string());
        for (size_t i = 0; i < required.size(); ++i) cells[i] = r[static_cast<pqxx::row::size_type>(4 + i)].c_str();
        intake->AddRow(line, cells);
      }
      if (intake->current_file_rejected() > max_rejects) {
        *error = f.info.file + ": more than " + std::to_string(max_rejects) +
                 " rejected rows (--max-rejects); refusing to settle from a file that is mostly unusable";
        return false;
      }
    }
    intake->EndFile();
    files->push_back(f.info);
  }
  return true;
}

// The CSV files of a period and the tables that hold them.
struct ResultTable {
  const char* file;
  const char* table;
  bool has_period_column;  // the CSV carries `period` itself
  bool numbered;           // rows get a row_no (no natural key)
};
constexpr ResultTable kResultTables[] = {
    {"card_months.csv", "card_month_results", true, false},
    {"adjustments.csv", "adjustments", true, false},
    {"payouts.csv", "payouts", true, false},
    {"statements.csv", "statements", true, false},
    {"consumption_by_center.csv", "consumption_by_center", true, false},
    {"homebed_exclusions.csv", "homebed_exclusions", false, true},
    {"exceptions.csv", "exceptions", false, true},
};

const std::set<std::string>& NumericColumns() {
  static const std::set<std::string> numeric = {
      "card_type", "net_deposit", "tier", "subsidy", "recorded_subsidy", "recomputed_subsidy", "amount",
      "cards_paid", "subsidy_total", "adjustment_total", "carried_in", "payout", "carried_out", "opening", "deposits",
      "reversals", "subsidies", "consumption", "refunds", "closing", "transactions", "line"};
  return numeric;
}

std::string HexBytea(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

bool Fail(std::string* error, const std::string& message) {
  *error = message;
  return false;
}

std::string MoneyText(const pqxx::field& f) { return f.is_null() ? std::string("0.00") : f.as<std::string>(); }

bool ParseMoney(const std::string& text, const char* what, Money* out, std::string* error) {
  auto m = Money::ParseSigned(text);
  if (!m) return Fail(error, std::string("the store's ") + what + " '" + text + "' is not an amount");
  *out = *m;
  return true;
}

}  // namespace

struct PgStore::Impl {
  explicit Impl(const std::string& conninfo) : conn(conninfo) {}
  pqxx::connection conn;
  bool book_locked = false;
};

PgStore::PgStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgStore::~PgStore() = default;

std::unique_ptr<PgStore> PgStore::Open(const std::string& conninfo, std::string* error) {
  try {
    auto impl = std::make_unique<Impl>(conninfo);
    pqxx::nontransaction tx(impl->conn);
    tx.exec("SET client_min_messages = warning");
    return std::unique_ptr<PgStore>(new PgStore(std::move(impl)));
  } catch (const std::exception& e) {
    std::string message = e.what();
    while (!message.empty() && message.back() == '\n') message.pop_back();
    *error = "cannot connect to PostgreSQL: " + message;
    return nullptr;
  }
}

bool PgStore::Migrate(int* applied, std::string* error) {
  try {
    int count = 0;
    pqxx::work tx(impl_->conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kPgMigrateLockKey);
    // A role without CREATE on the schema (docs/postgresql.md: carecard_app) can
    // still run import and settle on an up-to-date database: nothing is created then.
    if (tx.exec1("SELECT to_regclass('schema_migrations') IS NULL")[0].as<bool>()) {
      tx.exec(
          "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
          "applied_at timestamptz NOT NULL DEFAULT now())");
    }
    const int current = tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].as<int>();
    if (current > PgSchemaVersion()) {
      return Fail(error, "the database's schema is version " + std::to_string(current) + ", newer than the " +
                             std::to_string(PgSchemaVersion()) + " this carecard knows; use a newer carecard");
    }
    for (const auto& m : PgMigrations()) {
      if (m.version <= current) continue;
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name);
      ++count;
    }
    tx.commit();
    if (applied) *applied = count;
    return true;
  } catch (const std::exception& e) {
    return Fail(error, std::string("migration failed: ") + e.what());
  }
}

PgResult PgStore::ImportFolder(const std::string& dir, UtcOffset zone, PgImportSummary* summary, std::string* error) {
  *summary = PgImportSummary();
  std::vector<InputFileInfo> listed;
  if (!ListDataFiles(dir, &listed, error)) return PgResult::kRefused;
  try {
    pqxx::work tx(impl_->conn);
    if (!tx.exec_params1("SELECT pg_try_advisory_xact_lock($1)", kPgImportLockKey)[0].as<bool>()) {
      *error = "another import is running on this database; try again when it has finished";
      return PgResult::kBusy;
    }
    const std::string absolute = fs::absolute(dir).lexically_normal().string();
    summary->import_id = tx.exec_params1("INSERT INTO imports (data_dir) VALUES ($1) RETURNING import_id", absolute)[0].as<int64_t>();
    const std::string import_id = std::to_string(summary->import_id);

    std::vector<DeliveredFile> delivered;
    for (const auto& info : listed) delivered.push_back(DeliveredFile{info, 0, 0});
    for (InputKind kind : {InputKind::kCenters, InputKind::kStations, InputKind::kPersons, InputKind::kAssessments,
                           InputKind::kCards, InputKind::kEnrollments, InputKind::kPlatformBalances, InputKind::kDeposits,
                           InputKind::kConsumption}) {
      const std::string table = InputKindName(kind);
      const std::string stage = "stage_" + table;
      const std::vector<std::string> stored = StoredColumns(kind);
      tx.exec("CREATE TEMP TABLE " + stage + " ON COMMIT DROP AS SELECT " + Join(stored) + " FROM " + table +
              " WITH NO DATA");
      std::vector<DeliveredFile*> mine;
      for (auto& f : delivered) {
        if (f.info.kind != kind) continue;
        if (!StageFile(tx, dir, &f, error)) return PgResult::kRefused;
        mine.push_back(&f);
      }
      std::map<std::string, PgImportFileSummary> per_file;
      for (auto* f : mine) per_file[f->info.file] = PgImportFileSummary{f->info.file, kind, f->rows, 0, 0, 0, 0, 0};
      if (!IsTransactionKind(kind)) {
        // Registry files replace what the store holds of their kind.
        tx.exec("DELETE FROM " + table);
        tx.exec("INSERT INTO " + table + " (" + Join(stored) + ") SELECT " + Join(stored) + " FROM " + stage +
                " ORDER BY source_file, line");
        tx.exec_params("DELETE FROM input_files WHERE kind = $1", table);
        for (auto& [name, s] : per_file) s.added = s.rows;
      } else {
        const std::vector<std::string> content = ContentColumns(kind);
        const std::string same = TupleOf("s", content) + " IS NOT DISTINCT FROM " + TupleOf("k", content);
        const std::string join = " FROM " + stage + " s JOIN " + table +
                                 " k ON k.source_file = s.source_file AND k.row_key = s.row_key";
        for (const auto& r : tx.exec("SELECT s.source_file, count(*) FILTER (WHERE " + same + " AND k.line = s.line), " +
                                     "count(*) FILTER (WHERE " + same + " AND k.line <> s.line), " +
                                     "count(*) FILTER (WHERE NOT (" + same + "))" + join + " GROUP BY s.source_file")) {
          auto& s = per_file[r[0].as<std::string>()];
          s.unchanged = r[1].as<int64_t>();
          s.moved = r[2].as<int64_t>();
          s.conflicts = r[3].as<int64_t>();
        }
        tx.exec("INSERT INTO import_log (import_id, code, file, line, txn_id, detail) SELECT " + import_id +
                ", 'conflicting_txn', s.source_file, s.line, s.txn_id, "
                "'delivered again with other content; the stored row (line ' || k.line || ') is kept'" +
                join + " WHERE NOT (" + same + ")");
        const std::string delivered_files = "(SELECT DISTINCT source_file FROM " + stage + ")";
        const std::string missing = " FROM " + table + " k WHERE k.source_file IN " + delivered_files +
                                    " AND NOT EXISTS (SELECT 1 FROM " + stage +
                                    " s WHERE s.source_file = k.source_file AND s.row_key = k.row_key)";
        for (const auto& r : tx.exec("SELECT k.source_file, count(*)" + missing + " GROUP BY k.source_file")) {
          per_file[r[0].as<std::string>()].kept = r[1].as<int64_t>();
        }
        tx.exec("INSERT INTO import_log (import_id, code, file, line, txn_id, detail) SELECT " + import_id +
                ", 'kept_not_in_delivery', k.source_file, k.line, k.txn_id, "
                "'stored row missing from the re-delivered file; kept (transactions are never removed)'" +
                missing);
        tx.exec("UPDATE " + table + " k SET line = s.line FROM " + stage +
                " s WHERE k.source_file = s.source_file AND k.row_key = s.row_key AND k.line <> s.line");
        tx.exec("INSERT INTO " + table + " (" + Join(stored) + ") SELECT " + Join(stored, "s.") + " FROM " + stage +
                " s WHERE NOT EXISTS (SELECT 1 FROM " + table +
                " k WHERE k.source_file = s.source_file AND k.row_key = s.row_key) ORDER BY s.source_file, s.line");
        for (auto& [name, s] : per_file) s.added = s.rows - s.unchanged - s.moved - s.conflicts;
      }
      for (auto* f : mine) {
        const auto& s = per_file[f->info.file];
        const bool exact = s.conflicts == 0 && s.kept == 0;
        tx.exec_params(
            "INSERT INTO input_files (source_file, kind, header_width, bytes, sha256, rows, exact, import_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source_file) DO UPDATE SET kind = EXCLUDED.kind, "
            "header_width = EXCLUDED.header_width, bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256, "
            "rows = EXCLUDED.rows, exact = EXCLUDED.exact, import_id = EXCLUDED.import_id",
            f->info.file, table, static_cast<int64_t>(f->header_width), static_cast<int64_t>(f->info.bytes), f->info.sha256,
            f->rows, exact, summary->import_id);
        summary->files.push_back(s);
        summary->rows_added += s.added;
      }
    }

    // The engine's verdicts on the store's content, as settle would give them.
    // Only the policy's time zone matters to row verdicts; no month is settled.
    Policy zone_only;
    zone_only.timezone = zone;
    const BookState no_book;
    RunOptions verdicts_only;
    verdicts_only.row_checks_only = true;
    Intake intake(zone_only, PayoutPeriod::Containing(kFarFutureMonth, 12), no_book, verdicts_only);
    std::vector<InputFileInfo> fed;
    if (!FeedIntakeFrom(tx, &intake, kNoRejectLimit, &fed, error)) return PgResult::kRefused;
    RunResult verdict_run = intake.Finish();
    const std::vector<ExceptionRecord> verdicts = verdict_run.settlement.exceptions.Records();
    {
      pqxx::stream_to stream(tx, "import_rejections",
                             std::vector<std::string>{"import_id", "code", "severity", "file", "line", "txn_id",
                                                      "card_no", "person_id", "month", "detail"});
      for (const auto& e : verdicts) {
        const std::string line = std::to_string(e.line);
        WriteRow(stream, CopyRow{import_id.c_str(), e.code.c_str(), SeverityName(e.severity), e.file.c_str(),
                                           line.c_str(), e.txn_id.c_str(), e.card_no.c_str(), e.person_id.c_str(),
                                           e.month.c_str(), e.detail.c_str()});
        ++summary->rejections_by_code[e.code];
        if (e.severity == Severity::kError) ++summary->rejected_rows;
      }
      stream.complete();
    }
    tx.exec_params("UPDATE imports SET rows_added = $2 WHERE import_id = $1", summary->import_id, summary->rows_added);
    tx.commit();
    return PgResult::kOk;
  } catch (const std::exception& e) {
    *error = std::string("import failed (nothing imported): ") + e.what();
    return PgResult::kRefused;
  }
}

bool PgStore::TryLockBook(bool* acquired, std::string* error) {
  try {
    pqxx::nontransaction tx(impl_->conn);
    *acquired = tx.exec_params1("SELECT pg_try_advisory_lock($1)", kPgBookLockKey)[0].as<bool>();
    impl_->book_locked = *acquired;
    return true;
  } catch (const std::exception& e) {
    return Fail(error, std::string("cannot take the book's lock: ") + e.what());
  }
}

void PgStore::ReleaseBook() {
  if (!impl_->book_locked) return;
  try {
    pqxx::nontransaction tx(impl_->conn);
    tx.exec_params("SELECT pg_advisory_unlock($1)", kPgBookLockKey);
  } catch (const std::exception&) {
    // The lock goes with the session anyway.
  }
  impl_->book_locked = false;
}

bool PgStore::ReadBook(int months_per_period, std::vector<PgPeriod>* periods, BookState* state, std::string* error) {
  periods->clear();
  *state = BookState();
  try {
    BookStateBuilder builder;
    std::optional<PayoutPeriod> latest_closed;
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(impl_->conn);
    std::vector<std::pair<PayoutPeriod, PgPeriod>> found;
    for (const auto& r : tx.exec("SELECT period, state, manifest_sha256 FROM periods")) {
      const std::string name = r[0].as<std::string>();
      auto period = PayoutPeriod::Parse(name, months_per_period);
      if (!period) {
        return Fail(error, "the book holds period '" + name + "', which is not a period of " +
                               std::to_string(months_per_period) + " month(s): the rules do not fit this book");
      }
      found.push_back({*period, PgPeriod{name, r[1].as<std::string>() == "closed", r[2].as<std::string>()}});
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [period, p] : found) {
      periods->push_back(p);
      if (!p.closed) continue;
      std::string why;
      if (!builder.BeginPeriod(period, &why)) return Fail(error, why);
      latest_closed = period;
    }
    if (!latest_closed) {
      tx.commit();
      return true;
    }
    const std::string latest = latest_closed->ToString();
    // Sums per card-month over the closed periods: the original subsidy plus every closed adjustment.
    for (const auto& r : tx.exec(
             "SELECT card_no, month, sum(amount)::numeric(19,2)::text, "
             "(array_agg(center_id ORDER BY src, period COLLATE \"C\"))[1] FROM ("
             " SELECT c.card_no, c.month, c.subsidy AS amount, c.center_id, 0 AS src, c.period FROM card_month_results c"
             " JOIN periods p ON p.period = c.period WHERE p.state = 'closed'"
             " UNION ALL SELECT a.card_no, a.original_month, a.amount, a.center_id, 1, a.period FROM adjustments a"
             " JOIN periods p ON p.period = a.period WHERE p.state = 'closed') x GROUP BY card_no, month")) {
      Money subsidy;
      if (!ParseMoney(MoneyText(r[2]), "card-month subsidy", &subsidy, error)) return false;
      const auto month = YearMonth::Parse(r[1].as<std::string>());
      if (!month) return Fail(error, "the book holds a card-month of month '" + r[1].as<std::string>() + "'");
      builder.AddCardMonth(r[0].as<std::string>(), *month, subsidy, r[3].is_null() ? std::string() : r[3].as<std::string>());
    }
    for (const auto& r : tx.exec_params(
             "SELECT s.card_no, sum(s.deposits)::text, sum(s.reversals)::text, sum(s.subsidies)::text, "
             "sum(s.consumption)::text, sum(s.refunds)::text, "
             "coalesce(max(s.closing) FILTER (WHERE s.period = $1), 0)::numeric(19,2)::text, "
             "(array_agg(s.center_id ORDER BY s.period COLLATE \"C\" DESC))[1] "
             "FROM statements s JOIN periods p ON p.period = s.period WHERE p.state = 'closed' GROUP BY s.card_no",
             latest)) {
      Flows sum;
      Money closing;
      if (!ParseMoney(MoneyText(r[1]), "statement deposits", &sum.deposits, error) ||
          !ParseMoney(MoneyText(r[2]), "statement reversals", &sum.reversals, error) ||
          !ParseMoney(MoneyText(r[3]), "statement subsidies", &sum.subsidies, error) ||
          !ParseMoney(MoneyText(r[4]), "statement consumption", &sum.consumption, error) ||
          !ParseMoney(MoneyText(r[5]), "statement refunds", &sum.refunds, error) ||
          !ParseMoney(MoneyText(r[6]), "statement closing", &closing, error)) {
        return false;
      }
      // Sums over the closed periods, and the closing of the latest: as the latest period's statement.
      builder.AddStatement(r[0].as<std::string>(), sum, closing, r[7].is_null() ? std::string() : r[7].as<std::string>());
    }
    for (const auto& r : tx.exec_params("SELECT center_id, carried_out::text FROM payouts WHERE period = $1", latest)) {
      Money carried;
      if (!ParseMoney(r[1].as<std::string>(), "carried_out", &carried, error)) return false;
      builder.AddCarried(r[0].as<std::string>(), carried);
    }
    tx.commit();
    *state = builder.Finish();
    return true;
  } catch (const std::exception& e) {
    return Fail(error, std::string("cannot read the book: ") + e.what());
  }
}

bool PgStore::FeedIntake(Intake* intake, int64_t max_rejects_per_file, std::vector<InputFileInfo>* files,
                         std::string* error) {
  try {
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(impl_->conn);
    if (!FeedIntakeFrom(tx, intake, max_rejects_per_file, files, error)) return false;
    tx.commit();
    return true;
  } catch (const std::exception& e) {
    return Fail(error, std::string("cannot read the inputs: ") + e.what());
  }
}

bool PgStore::WritePeriod(const PgPeriodWrite& w, std::string* error) {
  const std::string period = w.period.ToString();
  auto manifest = w.files.find("manifest.json");
  if (manifest == w.files.end()) return Fail(error, "no manifest.json to write for " + period);
  try {
    pqxx::work tx(impl_->conn);
    pqxx::result state = tx.exec_params("SELECT state FROM periods WHERE period = $1 FOR UPDATE", period);
    if (!state.empty() && state[0][0].as<std::string>() == "closed") {
      return Fail(error, "period " + period + " is closed; a closed period is never rewritten");
    }
    for (const char* table : {"period_files", "exceptions", "homebed_exclusions", "consumption_by_center", "statements",
                              "payouts", "adjustments", "card_month_results"}) {
      tx.exec_params(std::string("DELETE FROM ") + table + " WHERE period = $1", period);
    }
    const std::optional<std::string>& previous = w.previous_manifest_sha256;
    tx.exec_params(
        "INSERT INTO periods (period, state, manifest, manifest_sha256, previous_manifest_sha256) "
        "VALUES ($1, 'draft', $2, $3, $4) ON CONFLICT (period) DO UPDATE SET manifest = EXCLUDED.manifest, "
        "manifest_sha256 = EXCLUDED.manifest_sha256, previous_manifest_sha256 = EXCLUDED.previous_manifest_sha256, "
        "settled_at = now()",
        period, manifest->second, Sha256Hex(manifest->second), previous ? previous->c_str() : nullptr);
    for (const auto& t : kResultTables) {
      auto file = w.files.find(t.file);
      if (file == w.files.end()) return Fail(error, std::string("no ") + t.file + " to write for " + period);
      auto reader = CsvReader::FromString(file->second, t.file);
      CsvRow row;
      if (!reader->Next(&row)) return Fail(error, std::string(t.file) + " has no header");
      const std::vector<std::string> header = row.cells;
      std::vector<std::string> columns;
      if (!t.has_period_column) columns.push_back("period");
      if (t.numbered) columns.push_back("row_no");
      for (const auto& h : header) columns.push_back(h);
      std::vector<bool> numeric;
      for (const auto& h : header) numeric.push_back(NumericColumns().count(h) > 0);
      pqxx::stream_to stream(tx, t.table, columns);
      std::vector<const char*> values;
      int64_t row_no = 0;
      std::string row_text;
      while (reader->Next(&row)) {
        if (row.problem != CsvProblem::kNone || row.cells.size() != header.size()) {
          return Fail(error, std::string(t.file) + ":" + std::to_string(row.line) + ": cannot be stored (malformed row)");
        }
        row_text = std::to_string(++row_no);
        values.clear();
        if (!t.has_period_column) values.push_back(period.c_str());
        if (t.numbered) values.push_back(row_text.c_str());
        for (size_t i = 0; i < row.cells.size(); ++i) {
          // The tables hold the values themselves, not the spreadsheet guard of the files.
          if (!row.cells[i].empty() && row.cells[i][0] == '\'') row.cells[i].erase(0, 1);
          values.push_back(numeric[i] && row.cells[i].empty() ? nullptr : row.cells[i].c_str());
        }
        WriteRow(stream, values);
      }
      stream.complete();
      if (w.after_table) w.after_table(t.table);
    }
    {
      pqxx::stream_to stream(tx, "period_files", std::vector<std::string>{"period", "name", "bytes", "sha256"});
      for (const auto& [name, bytes] : w.files) {
        const std::string hex = HexBytea(bytes);
        const std::string sha = Sha256Hex(bytes);
        WriteRow(stream, CopyRow{period.c_str(), name.c_str(), hex.c_str(), sha.c_str()});
      }
      stream.complete();
      if (w.after_table) w.after_table("period_files");
    }
    if (w.close) tx.exec_params("UPDATE periods SET state = 'closed' WHERE period = $1", period);
    tx.commit();
    return true;
  } catch (const std::exception& e) {
    return Fail(error, "cannot write period " + period + " (nothing written): " + e.what());
  }
}

bool PgStore::ReadPeriodFiles(const std::string& period, std::map<std::string, std::string>* files, std::string* error) {
  files->clear();
  try {
    pqxx::transaction<pqxx::read_committed, pqxx::read_only> tx(impl_->conn);
    for (const auto& r : tx.exec_params("SELECT name, bytes FROM period_files WHERE period = $1", period)) {
      (*files)[r[0].as<std::string>()] = pqxx::binarystring(r[1]).str();
    }
    tx.commit();
    return true;
  } catch (const std::exception& e) {
    return Fail(error, std::string("cannot read the files of ") + period + ": " + e.what());
  }
}

}  // namespace carecard
