// settle --db / import / db migrate against a real PostgreSQL 15 server: the
// database book gives byte for byte the files of the file book, writes all or
// nothing, serialises runs, and keeps closed periods closed.
#include "batch/db_command.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "adapters/pg_store.h"
#include "batch/generator.h"
#include "batch/settle_command.h"
#include "tests/batch/test_files.h"
#include "tests/support/pg_cluster.h"

namespace carecard {
namespace {
namespace fs = std::filesystem;
using testing::ExampleDir;
using testing::PgCluster;
using testing::Slurp;
using testing::TempDir;

std::string FreshDatabase() {
  std::string error;
  PgCluster* cluster = PgCluster::Shared(&error);
  if (!cluster) {
    ADD_FAILURE() << error;
    return {};
  }
  std::string conninfo = cluster->NewDatabase("db_command", &error);
  if (conninfo.empty()) ADD_FAILURE() << error;
  return conninfo;
}

std::string ExampleRules() { return ExampleDir() + "/rules.yaml"; }

int Import(const std::string& db, const std::string& data, std::string* output = nullptr) {
  ImportOptions o;
  o.db = db;
  o.data_dir = data;
  std::ostringstream out, err;
  int rc = RunImport(o, out, err);
  if (output) *output = out.str() + err.str();
  if (rc != 0) ADD_FAILURE() << "import " << data << ": " << err.str();
  return rc;
}

struct DbRun {
  std::string db, period, rules = ExampleRules(), out_dir;
  bool close = false;
  int threads = 1;
  std::function<void(const std::string&)> after_table;
  DbRun& Rules(const std::string& path) { rules = path; return *this; }
  DbRun& Out(const std::string& dir) { out_dir = dir; return *this; }
  DbRun& Close() { close = true; return *this; }
  DbRun& Threads(int n) { threads = n; return *this; }
  DbRun& AfterTable(std::function<void(const std::string&)> hook) { after_table = std::move(hook); return *this; }
};
DbRun DbRunOf(const std::string& db, const std::string& period) {
  DbRun r;
  r.db = db;
  r.period = period;
  return r;
}

int SettleDb(const DbRun& r, std::string* messages = nullptr) {
  DbSettleOptions o;
  o.db = r.db;
  o.rules_path = r.rules;
  o.period = r.period;
  o.close = r.close;
  o.threads = r.threads;
  o.out_dir = r.out_dir;
  o.after_table = r.after_table;
  std::ostringstream out, err;
  int rc = RunDbSettle(o, out, err);
  if (messages) *messages = out.str() + err.str();
  return rc;
}

int SettleFiles(const std::string& data, const std::string& book, const std::string& period, bool close,
                const std::string& rules = ExampleRules()) {
  SettleOptions o;
  o.data_dir = data;
  o.rules_path = rules;
  o.book_dir = book;
  o.period = period;
  o.close = close;
  std::ostringstream out, err;
  int rc = RunSettle(o, out, err);
  if (rc != 0) ADD_FAILURE() << "file settle " << period << ": " << err.str();
  return rc;
}

int64_t Count(const std::string& conninfo, const std::string& sql) {
  pqxx::connection conn(conninfo);
  pqxx::nontransaction tx(conn);
  return tx.exec1(sql)[0].as<int64_t>();
}

std::string WithoutInputs(const std::string& manifest) {
  auto json = nlohmann::ordered_json::parse(manifest, nullptr, false);
  if (json.is_discarded()) return "unreadable manifest";
  json.erase("inputs");
  return json.dump(2);
}

// Every file of the file book's period equals the database export's, byte for
// byte; the manifest except its inputs section (cli.md). Also checks that the
// database's period_files hold the same bytes.
void ExpectSamePeriod(const std::string& file_period_dir, const std::string& db_period_dir, const std::string& db,
                      const std::string& period) {
  int compared = 0;
  for (const auto& entry : fs::directory_iterator(file_period_dir)) {
    const std::string name = entry.path().filename().string();
    const std::string want = Slurp(entry.path().string());
    ASSERT_TRUE(fs::exists(db_period_dir + "/" + name)) << name << " missing from the --out export";
    const std::string got = Slurp(db_period_dir + "/" + name);
    if (name == "manifest.json") {
      EXPECT_EQ(WithoutInputs(got), WithoutInputs(want)) << period << "/" << name;
    } else {
      EXPECT_TRUE(got == want) << period << "/" << name << " differs between the file book and --db --out";
    }
    ++compared;
  }
  EXPECT_EQ(compared, 8) << "seven CSV files and the manifest";
  std::string error;
  auto store = PgStore::Open(db, &error);
  ASSERT_TRUE(store) << error;
  std::map<std::string, std::string> stored;
  ASSERT_TRUE(store->ReadPeriodFiles(period, &stored, &error)) << error;
  EXPECT_EQ(stored.size(), 8u);
  for (const auto& [name, bytes] : stored) EXPECT_TRUE(bytes == Slurp(db_period_dir + "/" + name)) << name;
}

TEST(db_command, the_worked_example_through_the_database_equals_the_file_book_byte_for_byte) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  TempDir book, out;
  ASSERT_EQ(SettleFiles(ExampleDir() + "/data", book.path(), "2024-B1", true), kExitOk);
  ASSERT_EQ(SettleFiles(ExampleDir() + "/data-2024-B2", book.path(), "2024-B2", false), kExitOk);

  ASSERT_EQ(Import(db, ExampleDir() + "/data"), kExitOk);
  std::string messages;
  ASSERT_EQ(SettleDb(DbRunOf(db, "2024-B1").Out(out.path()).Close(), &messages), kExitOk)
      << messages;
  ExpectSamePeriod(book / "2024-B1", out / "2024-B1", db, "2024-B1");
  ASSERT_EQ(Import(db, ExampleDir() + "/data-2024-B2"), kExitOk);  // late rows, a late death date
  ASSERT_EQ(SettleDb(DbRunOf(db, "2024-B2").Out(out.path()), &messages), kExitOk) << messages;
  ExpectSamePeriod(book / "2024-B2", out / "2024-B2", db, "2024-B2");
  // The delivered files are stored exactly, so even the inputs section agrees.
  EXPECT_EQ(Slurp(out / "2024-B2/manifest.json"), Slurp(book / "2024-B2/manifest.json"));
  EXPECT_EQ(Count(db, "SELECT count(*) FROM adjustments WHERE period = '2024-B2'"), 3);
}

TEST(db_command, a_generated_folder_imported_twice_with_late_rows_settles_as_the_file_book_does) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  TempDir work;
  GenOptions gen;
  gen.out_dir = work / "full";
  gen.cards = 2000;
  gen.first_month = YearMonth::Of(2024, 1);
  gen.last_month = YearMonth::Of(2024, 4);
  gen.seed = 3;
  gen.bad_row_share = 0.02;
  GenSummary summary;
  std::string error;
  ASSERT_TRUE(GenerateDataFolder(gen, &summary, &error)) << error;
  // The folder as it stood when 2024-B1 was settled: the March and April files not yet delivered.
  const std::string early = work / "early";
  fs::create_directories(early);
  for (const auto& entry : fs::directory_iterator(gen.out_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find("2024-03") != std::string::npos || name.find("2024-04") != std::string::npos) continue;
    fs::copy_file(entry.path(), fs::path(early) / name);
  }
  const std::string rules = testing::SourceDir() + "/rules/qingdao-2022.yaml";
  TempDir book, out;
  ASSERT_EQ(SettleFiles(early, book.path(), "2024-B1", true, rules), kExitOk);
  ASSERT_EQ(SettleFiles(gen.out_dir, book.path(), "2024-B2", false, rules), kExitOk);

  ASSERT_EQ(Import(db, early), kExitOk);
  const int64_t rows = Count(db, "SELECT (SELECT count(*) FROM deposits) + (SELECT count(*) FROM consumption)");
  ASSERT_EQ(Import(db, early), kExitOk);
  EXPECT_EQ(Count(db, "SELECT (SELECT count(*) FROM deposits) + (SELECT count(*) FROM consumption)"), rows);
  std::string messages;
  ASSERT_EQ(SettleDb(DbRunOf(db, "2024-B1").Rules(rules).Out(out.path()).Close().Threads(2),
                     &messages),
            kExitOk)
      << messages;
  ExpectSamePeriod(book / "2024-B1", out / "2024-B1", db, "2024-B1");
  ASSERT_EQ(Import(db, gen.out_dir), kExitOk);
  ASSERT_EQ(SettleDb(DbRunOf(db, "2024-B2").Rules(rules).Out(out.path()), &messages), kExitOk)
      << messages;
  ExpectSamePeriod(book / "2024-B2", out / "2024-B2", db, "2024-B2");
  EXPECT_GT(Count(db, "SELECT count(*) FROM adjustments WHERE period = '2024-B2'"), 0) << "late rows post adjustments";
}

TEST(db_command, a_failure_in_the_middle_of_a_settlement_rolls_back_and_nothing_is_visible) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  ASSERT_EQ(Import(db, ExampleDir() + "/data"), kExitOk);
  auto fail_at_statements = [](const std::string& table) {
    if (table == "statements") throw std::runtime_error("injected fault after " + table);
  };
  std::string messages;
  // A first run that dies half-way leaves no trace of the period.
  EXPECT_EQ(SettleDb(DbRunOf(db, "2024-B1").AfterTable(fail_at_statements), &messages), kExitRefused);
  EXPECT_NE(messages.find("injected fault"), std::string::npos) << messages;
  EXPECT_EQ(Count(db, "SELECT count(*) FROM periods"), 0);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM card_month_results"), 0);
  // Over an existing draft, the draft stays exactly as it was.
  ASSERT_EQ(SettleDb(DbRunOf(db, "2024-B1"), &messages), kExitOk) << messages;
  const int64_t card_months = Count(db, "SELECT count(*) FROM card_month_results WHERE period = '2024-B1'");
  ASSERT_GT(card_months, 0);
  pqxx::connection conn(db);
  auto manifest = [&] {
    pqxx::nontransaction tx(conn);
    return tx.exec1("SELECT manifest_sha256 || settled_at::text FROM periods WHERE period = '2024-B1'")[0].as<std::string>();
  };
  const std::string before = manifest();
  EXPECT_EQ(SettleDb(DbRunOf(db, "2024-B1").Close().AfterTable(fail_at_statements), &messages),
            kExitRefused);
  EXPECT_EQ(manifest(), before);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM periods WHERE state = 'closed'"), 0);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM card_month_results WHERE period = '2024-B1'"), card_months);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM period_files WHERE period = '2024-B1'"), 8);
  // And the next run proceeds normally.
  EXPECT_EQ(SettleDb(DbRunOf(db, "2024-B1").Close(), &messages), kExitOk) << messages;
}

TEST(db_command, a_second_concurrent_settlement_exits_3_at_once) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  ASSERT_EQ(Import(db, ExampleDir() + "/data"), kExitOk);
  std::mutex mutex;
  std::condition_variable changed;
  bool writing = false, release = false;
  auto hold_in_the_middle = [&](const std::string& table) {
    if (table != "card_month_results") return;
    std::unique_lock<std::mutex> lock(mutex);
    writing = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
  };
  std::atomic<int> first_rc{-1};
  std::thread first([&] { first_rc = SettleDb(DbRunOf(db, "2024-B1").AfterTable(hold_in_the_middle)); });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return writing; });
  }
  std::string messages;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(SettleDb(DbRunOf(db, "2024-B1"), &messages), kExitClosed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << "exits at once, does not wait";
  EXPECT_NE(messages.find("held by another settlement"), std::string::npos) << messages;
  {
    std::lock_guard<std::mutex> lock(mutex);
    release = true;
  }
  changed.notify_all();
  first.join();
  EXPECT_EQ(first_rc.load(), kExitOk);
  EXPECT_EQ(SettleDb(DbRunOf(db, "2024-B1"), &messages), kExitOk) << "the lock went with the first run";
}

TEST(db_command, closed_period_rows_cannot_be_changed_even_by_direct_sql) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  ASSERT_EQ(Import(db, ExampleDir() + "/data"), kExitOk);
  std::string messages;
  ASSERT_EQ(SettleDb(DbRunOf(db, "2024-B1").Close(), &messages), kExitOk) << messages;
  pqxx::connection conn(db);
  auto refused = [&](const std::string& sql) {
    try {
      pqxx::work tx(conn);
      tx.exec(sql);
      tx.commit();
      return std::string("accepted");
    } catch (const pqxx::sql_error& e) {
      return std::string(e.what());
    }
  };
  for (const std::string& sql : {
           std::string("UPDATE card_month_results SET subsidy = 0 WHERE period = '2024-B1'"),
           std::string("DELETE FROM payouts WHERE period = '2024-B1'"),
           std::string("INSERT INTO adjustments VALUES ('2024-B1', '2024-01', 'QD0001', 'C01', 0, 1, 1, 'paid')"),
           std::string("UPDATE period_files SET bytes = 'x' WHERE period = '2024-B1'"),
           std::string("UPDATE statements SET period = '2024-B2' WHERE period = '2024-B1'"),
           std::string("TRUNCATE exceptions"),
       }) {
    const std::string what = refused(sql);
    EXPECT_NE(what.find("closed"), std::string::npos) << sql << ": " << what;
  }
  EXPECT_NE(refused("UPDATE periods SET state = 'draft' WHERE period = '2024-B1'").find("is closed"), std::string::npos);
  EXPECT_NE(refused("DELETE FROM periods WHERE period = '2024-B1'").find("is closed"), std::string::npos);
  // The engine refuses too, with status 3, and writes nothing.
  EXPECT_EQ(SettleDb(DbRunOf(db, "2024-B1"), &messages), kExitClosed);
  EXPECT_EQ(SettleDb(DbRunOf(db, "2024-B3").Close(), &messages), kExitClosed);  // skips B2
  EXPECT_EQ(Count(db, "SELECT count(*) FROM periods"), 1);
}

TEST(db_command, the_cli_takes_the_connection_from_pg_environment_variables_without_a_password_argument) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  std::string error;
  PgCluster* cluster = PgCluster::Shared(&error);
  ASSERT_TRUE(cluster) << error;
  const std::string dbname = db.substr(db.find("dbname=") + 7);
  const std::string env = "PGHOST=127.0.0.1 PGPORT=" + std::to_string(cluster->port()) + " PGUSER=postgres PGDATABASE=" +
                          dbname + " ";
  TempDir out;
  ASSERT_EQ(std::system((env + std::string(CARECARD_BINARY) + " db migrate >/dev/null 2>&1").c_str()), 0);
  ASSERT_EQ(std::system((env + std::string(CARECARD_BINARY) + " import --data '" + ExampleDir() + "/data' >/dev/null 2>&1").c_str()), 0);
  ASSERT_EQ(std::system((env + std::string(CARECARD_BINARY) + " settle --db '' --rules '" + ExampleRules() +
                         "' --period 2024-B1 --out '" + out.path() + "' >/dev/null 2>&1")
                            .c_str()),
            0);
  EXPECT_TRUE(fs::exists(out / "2024-B1/card_months.csv"));
  EXPECT_EQ(Count(db, "SELECT count(*) FROM periods WHERE period = '2024-B1' AND state = 'draft'"), 1);
}

}  // namespace
}  // namespace carecard
