// Properties that hold for any data: generated folders with bad rows, late rows
// and late death registrations, settled over two periods.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adapters/csv_reader.h"
#include "batch/generator.h"
#include "batch/outputs.h"
#include "batch/settle_command.h"
#include "tests/batch/test_files.h"

namespace carecard {
namespace {
namespace fs = std::filesystem;
using testing::Slurp;
using testing::TempDir;

using Row = std::map<std::string, std::string>;

std::vector<Row> ReadCsv(const std::string& path) {
  std::string error;
  auto reader = CsvReader::Open(path, &error);
  EXPECT_TRUE(reader) << error;
  std::vector<Row> rows;
  CsvRow row;
  if (!reader || !reader->Next(&row)) return rows;
  const std::vector<std::string> header = row.cells;
  while (reader->Next(&row)) {
    Row r;
    for (size_t i = 0; i < header.size() && i < row.cells.size(); ++i) r[header[i]] = row.cells[i];
    rows.push_back(std::move(r));
  }
  return rows;
}

Money M(const std::string& text) {
  auto m = Money::ParseSigned(text);
  EXPECT_TRUE(m) << text;
  return m.value_or(Money());
}

class GeneratedBook : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    GenOptions gen;
    gen.out_dir = *dir_ / "data";
    gen.cards = 2500;
    gen.first_month = YearMonth::Of(2024, 1);
    gen.last_month = YearMonth::Of(2024, 4);
    gen.seed = 20240101;
    gen.bad_row_share = 0.03;
    GenSummary summary;
    std::string error;
    ASSERT_TRUE(GenerateDataFolder(gen, &summary, &error)) << error;
    ASSERT_EQ(Settle("2024-B1", true), kExitOk);
    // Late news after the close: a death registered late and a late deposit in a closed month.
    AddLateRows(*dir_ / "data");
    ASSERT_EQ(Settle("2024-B2", false), kExitOk);
  }
  static void TearDownTestSuite() { delete dir_; }

  static int Settle(const std::string& period, bool close, int threads = 1, const std::string& book = "book",
                    const RunTuning& tuning = RunTuning{}) {
    SettleOptions o;
    o.data_dir = *dir_ / "data";
    o.rules_path = testing::SourceDir() + "/rules/qingdao-2022.yaml";
    o.book_dir = *dir_ / book;
    o.period = period;
    o.close = close;
    o.threads = threads;
    o.tuning = tuning;
    std::ostringstream out, err;
    int rc = RunSettle(o, out, err);
    EXPECT_EQ(rc, 0) << err.str();
    return rc;
  }

  static void AddLateRows(const std::string& data) {
    auto cards = ReadCsv(data + "/cards.csv");
    auto persons = ReadCsv(data + "/persons.csv");
    // Register a death on 2023-12-31 for the first few persons with no death date.
    std::string text = Slurp(data + "/persons.csv");
    int changed = 0;
    for (const auto& p : persons) {
      if (changed == 5) break;
      if (!p.count("death_date") || !p.at("death_date").empty() || p.at("person_id").empty()) continue;
      const std::string line_start = "\n" + p.at("person_id") + ",";
      size_t at = text.find(line_start);
      if (at == std::string::npos) continue;
      size_t end = text.find('\n', at + 1);
      if (end == std::string::npos || text[end - 1] != ',') continue;
      text.insert(end, "2023-12-31");
      ++changed;
    }
    testing::WriteFile(data + "/persons.csv", text);
    std::ofstream late(data + "/deposits-zz-late.csv");
    late << "txn_id,card_no,kind,amount,at,channel,ref_txn_id\n";
    for (size_t i = 0; i < 20 && i < cards.size(); ++i) {
      late << "LATE" << i << "," << cards[i]["card_no"] << ",deposit,150.00,2024-02-10T10:00:00+08:00,cash,\n";
    }
  }

  static TempDir* dir_;
};
TempDir* GeneratedBook::dir_ = nullptr;

TEST_F(GeneratedBook, opening_plus_flows_is_closing_for_every_card) {
  for (const char* period : {"2024-B1", "2024-B2"}) {
    auto rows = ReadCsv(*dir_ / (std::string("book/") + period + "/statements.csv"));
    ASSERT_GT(rows.size(), 1000u);
    for (auto& r : rows) {
      EXPECT_EQ(M(r["opening"]) + M(r["deposits"]) - M(r["reversals"]) + M(r["subsidies"]) - M(r["consumption"]) +
                    M(r["refunds"]),
                M(r["closing"]))
          << period << " " << r["card_no"];
    }
  }
}

TEST_F(GeneratedBook, each_statement_opens_with_the_last_closing_balance) {
  std::map<std::string, Money> closing;
  for (auto& r : ReadCsv(*dir_ / "book/2024-B1/statements.csv")) closing[r["card_no"]] = M(r["closing"]);
  for (auto& r : ReadCsv(*dir_ / "book/2024-B2/statements.csv")) EXPECT_EQ(M(r["opening"]), closing[r["card_no"]]) << r["card_no"];
}

TEST_F(GeneratedBook, payouts_are_subsidies_plus_adjustments_plus_carry_for_every_centre) {
  for (const char* period : {"2024-B1", "2024-B2"}) {
    const std::string dir = *dir_ / (std::string("book/") + period);
    std::map<std::string, Money> subsidies, adjustments;
    for (auto& r : ReadCsv(dir + "/card_months.csv")) subsidies[r["center_id"]] += M(r["subsidy"]);
    for (auto& r : ReadCsv(dir + "/adjustments.csv")) {
      adjustments[r["center_id"]] += M(r["amount"]);
      EXPECT_EQ(M(r["recorded_subsidy"]) + M(r["amount"]), M(r["recomputed_subsidy"]));
    }
    for (auto& p : ReadCsv(dir + "/payouts.csv")) {
      const std::string c = p["center_id"];
      EXPECT_EQ(M(p["subsidy_total"]), subsidies[c]) << period << " " << c;
      EXPECT_EQ(M(p["adjustment_total"]), adjustments[c]) << period << " " << c;
      EXPECT_EQ(M(p["payout"]) + M(p["carried_out"]), M(p["subsidy_total"]) + M(p["adjustment_total"]) + M(p["carried_in"]));
      EXPECT_FALSE(M(p["payout"]).is_negative());
      EXPECT_FALSE(M(p["carried_out"]) > Money());
    }
  }
}

TEST_F(GeneratedBook, late_news_about_closed_months_becomes_adjustments) {
  auto adjustments = ReadCsv(*dir_ / "book/2024-B2/adjustments.csv");
  int deceased = 0, paid = 0;
  for (auto& r : adjustments) {
    EXPECT_TRUE(r["original_month"] == "2024-01" || r["original_month"] == "2024-02") << r["original_month"];
    deceased += r["reason"] == "deceased";
    paid += r["reason"] == "paid";
  }
  EXPECT_GT(deceased, 0);
  EXPECT_GT(paid, 0);
}

TEST_F(GeneratedBook, rows_read_are_accepted_plus_rejected_plus_deferred_for_every_file) {
  auto manifest = nlohmann::json::parse(Slurp(*dir_ / "book/2024-B1/manifest.json"));
  int64_t rejected = 0, deferred = 0;
  for (const auto& f : manifest["inputs"]) {
    EXPECT_EQ(f["rows_read"].get<int64_t>(),
              f["rows_accepted"].get<int64_t>() + f["rows_rejected"].get<int64_t>() + f["rows_deferred"].get<int64_t>())
        << f["file"];
    // Every non-blank line after the header is a row read.
    std::string text = Slurp(*dir_ / ("data/" + f["file"].get<std::string>()));
    int64_t lines = 0;
    for (char c : text) lines += c == '\n';
    EXPECT_LE(f["rows_read"].get<int64_t>(), lines - 1) << f["file"];
    rejected += f["rows_rejected"].get<int64_t>();
    deferred += f["rows_deferred"].get<int64_t>();
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(deferred, 0);  // March and April rows wait for their period
  // Every rejected row is in exceptions.csv with its file and line.
  int64_t errors = 0;
  for (auto& e : ReadCsv(*dir_ / "book/2024-B1/exceptions.csv")) {
    if (e["severity"] == "error" && e["code"] != "duplicate_card") {
      ++errors;
      EXPECT_FALSE(e["file"].empty());
      EXPECT_GT(std::stoll(e["line"]), 1);
    }
  }
  EXPECT_EQ(errors, rejected);
}

TEST_F(GeneratedBook, paid_card_months_and_only_they_carry_a_subsidy_and_a_tier) {
  for (auto& r : ReadCsv(*dir_ / "book/2024-B2/card_months.csv")) {
    const bool paid = r["status"] == "paid";
    EXPECT_EQ(paid, M(r["subsidy"]) > Money()) << r["card_no"] << " " << r["month"];
    EXPECT_EQ(paid, !r["tier"].empty());
  }
}

TEST_F(GeneratedBook, two_threads_write_the_same_bytes_as_one) {
  fs::create_directories(*dir_ / "book2");
  fs::copy(*dir_ / "book/2024-B1", *dir_ / "book2/2024-B1", fs::copy_options::recursive);
  ASSERT_EQ(Settle("2024-B2", false, 2, "book2"), kExitOk);
  for (const auto& entry : fs::directory_iterator(*dir_ / "book/2024-B2")) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(Slurp(entry.path().string()), Slurp(*dir_ / ("book2/2024-B2/" + name))) << name;
  }
}

TEST_F(GeneratedBook, the_way_a_run_cuts_its_work_never_changes_a_byte) {
  // Partitions of 1 KiB (hundreds of them), exception logs that spill a run
  // every few rows, the smallest read blocks (one row's worth, 64 KiB: each
  // file is cut into many) and a spill file: every merge and every sort across
  // those cuts is exercised, and must land on the same bytes.
  RunTuning tiny;
  tiny.spill = RunTuning::Spill::kFile;
  tiny.partition_bytes = 1 << 10;
  tiny.exception_budget_bytes = 1 << 10;
  tiny.block_bytes = 1 << 10;
  tiny.render_rows = 3;  // output files in pieces of three rows, rendered out of order
  for (int threads : {1, 2, 3}) {
    const std::string book = "book-tiny-" + std::to_string(threads);
    fs::create_directories(*dir_ / book);
    fs::copy(*dir_ / "book/2024-B1", *dir_ / (book + "/2024-B1"), fs::copy_options::recursive);
    ASSERT_EQ(Settle("2024-B2", false, threads, book, tiny), kExitOk);
    int files = 0;
    for (const auto& entry : fs::directory_iterator(*dir_ / "book/2024-B2")) {
      const std::string name = entry.path().filename().string();
      EXPECT_EQ(Slurp(entry.path().string()), Slurp(*dir_ / (book + "/2024-B2/" + name))) << name << ", threads " << threads;
      ++files;
    }
    EXPECT_GE(files, 7);
  }
}

// A sink whose file `failing` refuses bytes past `limit`, as a full disk would.
class FullDiskSink : public OutputSink {
 public:
  FullDiskSink(std::string failing, size_t limit) : failing_(std::move(failing)), limit_(limit) {}
  std::unique_ptr<OutputFile> Create(const std::string& name) override {
    return std::make_unique<File>(name == failing_ ? limit_ : SIZE_MAX);
  }

 private:
  class File : public OutputFile {
   public:
    explicit File(size_t limit) : limit_(limit) {}
    void Write(std::string_view bytes) override {
      written_ += bytes.size();
      if (written_ > limit_) throw std::runtime_error("disk full");
    }
    void Finish() override {}

   private:
    size_t limit_, written_ = 0;
  };
  std::string failing_;
  size_t limit_;
};

TEST_F(GeneratedBook, rendered_files_are_the_same_bytes_however_they_are_cut_and_a_failed_write_fails_the_run) {
  PreparedRun run;
  std::ostringstream err;
  ASSERT_EQ(LoadPolicy(testing::SourceDir() + "/rules/qingdao-2022.yaml", Language::kEnglish, &run, err), kExitOk);
  run.period = PayoutPeriod::Parse("2024-B1", run.policy.policy.months_per_period);
  ASSERT_EQ(SettleFolder(*dir_ / "data", *dir_ / "", 2, 1'000'000, false, RunTuning{}, RunOptions{}, &run, err), kExitOk)
      << err.str();
  const Policy& policy = run.policy.policy;
  MemoryOutputSink whole;
  RenderSettlementFiles(*run.period, policy, run.result, run.book, &whole, 1, size_t{1} << 20);
  ASSERT_EQ(whole.files().size(), 7u);
  EXPECT_GT(whole.files()["card_months.csv"].size(), 100'000u);  // many pieces below
  for (int threads : {1, 2, 5}) {
    for (size_t rows : {size_t{1}, size_t{7}, size_t{500}}) {
      MemoryOutputSink cut;
      const auto infos = RenderSettlementFiles(*run.period, policy, run.result, run.book, &cut, threads, rows);
      EXPECT_EQ(cut.files(), whole.files()) << threads << " threads, pieces of " << rows << " rows";
      ASSERT_EQ(infos.size(), 7u);
      EXPECT_EQ(infos[0].file, "adjustments.csv");  // by name
      EXPECT_EQ(infos[1].sha256, Sha256Hex(whole.files()["card_months.csv"]));
    }
  }
  // A file that fails at its start, in its middle or near its end fails the
  // whole render with the sink's error, on one thread or several, and every
  // thread is gone when the error arrives (no hang, no abort).
  for (const char* failing : {"card_months.csv", "exceptions.csv", "payouts.csv"}) {
    const size_t size = whole.files()[failing].size();
    for (size_t limit : {size_t{0}, size / 2, size - 1}) {
      for (int threads : {1, 3}) {
        FullDiskSink sink(failing, limit);
        try {
          RenderSettlementFiles(*run.period, policy, run.result, run.book, &sink, threads, 64);
          ADD_FAILURE() << failing << " at " << limit << ": no error";
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "disk full");
        }
      }
    }
  }
}

TEST(RunTuning, clamps_what_it_is_given_to_a_range_that_cannot_exhaust_memory) {
  RunTuning t;
  t.partition_bytes = 0;
  t.exception_budget_bytes = size_t{1} << 40;
  t.block_bytes = 1;
  t.render_rows = 0;
  const RunTuning c = t.Clamped();
  EXPECT_EQ(c.partition_bytes, 1u << 10);
  EXPECT_EQ(c.exception_budget_bytes, size_t{256} << 20);
  EXPECT_EQ(c.block_bytes, kMaxRowBytes + 8);  // a block must hold the longest row
  EXPECT_EQ(c.render_rows, 1u);
}

}  // namespace
}  // namespace carecard
