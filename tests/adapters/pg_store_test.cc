// PgStore against a real PostgreSQL 15 server (tests/support/pg_cluster.h).
#include "adapters/pg_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <pqxx/pqxx>

#include "adapters/pg_schema.h"
#include "tests/batch/test_files.h"
#include "tests/support/pg_cluster.h"

namespace carecard {
namespace {
namespace fs = std::filesystem;
using testing::ExampleDir;
using testing::PgCluster;
using testing::Slurp;
using testing::TempDir;
using testing::WriteFile;

const UtcOffset kZone = *UtcOffset::Parse("+08:00");

// A fresh database; fails the test (never skips) when no server can be started.
std::string FreshDatabase() {
  std::string error;
  PgCluster* cluster = PgCluster::Shared(&error);
  if (!cluster) {
    ADD_FAILURE() << error;
    return {};
  }
  std::string conninfo = cluster->NewDatabase("pg_store", &error);
  if (conninfo.empty()) ADD_FAILURE() << error;
  return conninfo;
}

std::unique_ptr<PgStore> OpenMigrated(const std::string& conninfo) {
  std::string error;
  auto store = PgStore::Open(conninfo, &error);
  EXPECT_TRUE(store) << error;
  if (store) {
    EXPECT_TRUE(store->Migrate(nullptr, &error)) << error;
  }
  return store;
}

int64_t Count(const std::string& conninfo, const std::string& sql) {
  pqxx::connection conn(conninfo);
  pqxx::nontransaction tx(conn);
  return tx.exec1(sql)[0].as<int64_t>();
}

std::string One(const std::string& conninfo, const std::string& sql) {
  pqxx::connection conn(conninfo);
  pqxx::nontransaction tx(conn);
  auto row = tx.exec1(sql);
  return row[0].is_null() ? std::string("NULL") : row[0].as<std::string>();
}

void CopyFolder(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  for (const auto& entry : fs::directory_iterator(from)) {
    fs::copy_file(entry.path(), fs::path(to) / entry.path().filename(), fs::copy_options::overwrite_existing);
    fs::permissions(fs::path(to) / entry.path().filename(), fs::perms::owner_read | fs::perms::owner_write);
  }
}

const PgImportFileSummary* FileSummary(const PgImportSummary& s, const std::string& file) {
  for (const auto& f : s.files) {
    if (f.file == file) return &f;
  }
  return nullptr;
}

TEST(pg_store, migrations_are_applied_once_and_recorded_in_schema_migrations) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  std::string error;
  auto store = PgStore::Open(db, &error);
  ASSERT_TRUE(store) << error;
  int applied = -1;
  ASSERT_TRUE(store->Migrate(&applied, &error)) << error;
  EXPECT_EQ(applied, static_cast<int>(PgMigrations().size()));
  ASSERT_TRUE(store->Migrate(&applied, &error)) << error;
  EXPECT_EQ(applied, 0);
  EXPECT_EQ(Count(db, "SELECT max(version) FROM schema_migrations"), PgSchemaVersion());
}

TEST(pg_store, a_connection_that_cannot_be_made_is_an_error_naming_postgresql_not_a_crash) {
  std::string error;
  auto store = PgStore::Open("host=127.0.0.1 port=1 connect_timeout=2", &error);
  EXPECT_FALSE(store);
  EXPECT_NE(error.find("cannot connect to PostgreSQL"), std::string::npos) << error;
}

TEST(pg_store, importing_a_folder_twice_adds_nothing) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  auto store = OpenMigrated(db);
  ASSERT_TRUE(store);
  PgImportSummary first, second;
  std::string error;
  ASSERT_EQ(store->ImportFolder(ExampleDir() + "/data", kZone, &first, &error), PgResult::kOk) << error;
  EXPECT_GT(first.rows_added, 50);
  const int64_t deposits = Count(db, "SELECT count(*) FROM deposits");
  const int64_t consumption = Count(db, "SELECT count(*) FROM consumption");
  const int64_t persons = Count(db, "SELECT count(*) FROM persons");
  ASSERT_EQ(store->ImportFolder(ExampleDir() + "/data", kZone, &second, &error), PgResult::kOk) << error;
  int64_t transaction_rows_added = 0;
  for (const auto& f : second.files) {
    if (f.kind == InputKind::kDeposits || f.kind == InputKind::kConsumption) transaction_rows_added += f.added;
  }
  EXPECT_EQ(transaction_rows_added, 0);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM deposits"), deposits);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM consumption"), consumption);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM persons"), persons);  // replaced by the same rows
  // The engine's verdicts are the same both times, and name the duplicate delivery of D002.
  EXPECT_EQ(first.rejections_by_code, second.rejections_by_code);
  EXPECT_EQ(first.rejections_by_code.at("duplicate_txn"), 1);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM import_rejections WHERE import_id = " + std::to_string(second.import_id) +
                          " AND code = 'duplicate_txn' AND file = 'deposits-2024-01.csv' AND line = 18"),
            1);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM import_log"), 0);
}

TEST(pg_store, a_redelivered_file_with_rows_added_adds_only_those_rows) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  auto store = OpenMigrated(db);
  ASSERT_TRUE(store);
  PgImportSummary s;
  std::string error;
  ASSERT_EQ(store->ImportFolder(ExampleDir() + "/data", kZone, &s, &error), PgResult::kOk) << error;
  ASSERT_EQ(store->ImportFolder(ExampleDir() + "/data-2024-B2", kZone, &s, &error), PgResult::kOk) << error;
  const auto* feb = FileSummary(s, "consumption-2024-02.csv");
  ASSERT_NE(feb, nullptr);
  EXPECT_EQ(feb->added, 1);  // X103, the late consumption
  EXPECT_EQ(feb->unchanged, 2);
  EXPECT_EQ(feb->conflicts, 0);
  EXPECT_EQ(One(db, "SELECT line FROM consumption WHERE txn_id = 'X103'"), "4");
  EXPECT_EQ(One(db, "SELECT exact::text FROM input_files WHERE source_file = 'consumption-2024-02.csv'"), "true");
  // The late death date replaced the person row: registry files replace.
  EXPECT_EQ(One(db, "SELECT death_date FROM persons WHERE person_id = 'P10'"), "2023-12-31");
}

TEST(pg_store, a_row_inserted_into_a_redelivered_file_moves_the_rows_after_it_to_their_new_lines) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  auto store = OpenMigrated(db);
  ASSERT_TRUE(store);
  TempDir folder;
  CopyFolder(ExampleDir() + "/data", folder.path());
  PgImportSummary s;
  std::string error;
  ASSERT_EQ(store->ImportFolder(folder.path(), kZone, &s, &error), PgResult::kOk) << error;
  std::string deposits = Slurp(folder / "deposits-2024-01.csv");
  const size_t second_line = deposits.find('\n') + 1;
  deposits.insert(second_line, "D900,QD0001,deposit,5.00,2024-01-02T09:00:00+08:00,cash,\n");
  WriteFile(folder / "deposits-2024-01.csv", deposits);
  ASSERT_EQ(store->ImportFolder(folder.path(), kZone, &s, &error), PgResult::kOk) << error;
  const auto* jan = FileSummary(s, "deposits-2024-01.csv");
  ASSERT_NE(jan, nullptr);
  EXPECT_EQ(jan->added, 1);
  EXPECT_EQ(jan->moved, jan->rows - 1);
  EXPECT_EQ(One(db, "SELECT line FROM deposits WHERE txn_id = 'D900'"), "2");
  EXPECT_EQ(One(db, "SELECT string_agg(line::text, ',' ORDER BY line) FROM deposits WHERE txn_id = 'D002'"), "4,19");
  EXPECT_EQ(Count(db, "SELECT count(*) FROM deposits WHERE source_file = 'deposits-2024-01.csv'"), jan->rows);
  // The engine's verdict follows the file: the duplicate delivery is now on line 19.
  EXPECT_EQ(Count(db, "SELECT count(*) FROM import_rejections WHERE import_id = " + std::to_string(s.import_id) +
                          " AND code = 'duplicate_txn' AND line = 19"),
            1);
}

TEST(pg_store, a_transaction_delivered_again_with_other_content_keeps_the_stored_row_and_is_logged) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  auto store = OpenMigrated(db);
  ASSERT_TRUE(store);
  TempDir folder;
  CopyFolder(ExampleDir() + "/data", folder.path());
  PgImportSummary s;
  std::string error;
  ASSERT_EQ(store->ImportFolder(folder.path(), kZone, &s, &error), PgResult::kOk) << error;
  std::string deposits = Slurp(folder / "deposits-2024-01.csv");
  const std::string original = "D001,QD0001,deposit,100.00,";
  ASSERT_NE(deposits.find(original), std::string::npos);
  deposits.replace(deposits.find(original), original.size(), "D001,QD0001,deposit,900.00,");
  WriteFile(folder / "deposits-2024-01.csv", deposits);
  ASSERT_EQ(store->ImportFolder(folder.path(), kZone, &s, &error), PgResult::kOk) << error;
  const auto* jan = FileSummary(s, "deposits-2024-01.csv");
  ASSERT_NE(jan, nullptr);
  EXPECT_EQ(jan->conflicts, 1);
  EXPECT_EQ(jan->added, 0);
  EXPECT_EQ(One(db, "SELECT amount FROM deposits WHERE txn_id = 'D001'"), "100.00");
  EXPECT_EQ(One(db, "SELECT code || ' ' || file || ':' || line FROM import_log WHERE txn_id = 'D001'"),
            "conflicting_txn deposits-2024-01.csv:2");
  EXPECT_EQ(One(db, "SELECT exact::text FROM input_files WHERE source_file = 'deposits-2024-01.csv'"), "false");
}

TEST(pg_store, a_header_without_a_required_column_refuses_the_import_and_nothing_is_stored) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  auto store = OpenMigrated(db);
  ASSERT_TRUE(store);
  TempDir folder;
  CopyFolder(ExampleDir() + "/data", folder.path());
  std::string cards = Slurp(folder / "cards.csv");
  cards.replace(cards.find("issued_on"), 9, "issued");
  WriteFile(folder / "cards.csv", cards);
  PgImportSummary s;
  std::string error;
  EXPECT_EQ(store->ImportFolder(folder.path(), kZone, &s, &error), PgResult::kRefused);
  EXPECT_NE(error.find("cards.csv: the header has no column 'issued_on'"), std::string::npos) << error;
  EXPECT_EQ(Count(db, "SELECT count(*) FROM centers"), 0);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM imports"), 0);
}

TEST(pg_store, the_typed_columns_hold_valid_amounts_and_null_for_bad_ones) {
  const std::string db = FreshDatabase();
  ASSERT_FALSE(db.empty());
  auto store = OpenMigrated(db);
  ASSERT_TRUE(store);
  PgImportSummary s;
  std::string error;
  ASSERT_EQ(store->ImportFolder(ExampleDir() + "/data", kZone, &s, &error), PgResult::kOk) << error;
  EXPECT_EQ(One(db, "SELECT amount_value::text FROM deposits WHERE txn_id = 'D002' AND line = 3"), "200.00");
  EXPECT_EQ(One(db, "SELECT amount_value::text FROM deposits WHERE txn_id = 'D015'"), "NULL");  // 12.345
  EXPECT_EQ(One(db, "SELECT (at AT TIME ZONE 'UTC')::text FROM deposits_typed WHERE txn_id = 'D001'"),
            "2024-01-08 01:15:00");
}

}  // namespace
}  // namespace carecard
