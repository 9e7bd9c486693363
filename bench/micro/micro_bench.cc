// Google Benchmark micro-benchmarks for the hot paths of a settlement run
// (issue 7): the CSV reader, money and timestamp parsing, the intake of a data
// folder, and the card-month evaluation (Settle).
//
// Every benchmark works on data written once per process by the generator of
// `carecard gen` (batch/generator.h) into a temporary folder, so the figures
// come from the same shapes as the end-to-end benchmark (bench/run.sh).
//
//   build-bench/bench/carecard_micro [--benchmark_filter=Csv] [--benchmark_min_time=0.5]
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/csv_reader.h"
#include "adapters/data_folder.h"
#include "batch/generator.h"
#include "engine/calendar.h"
#include "engine/intake.h"
#include "engine/money.h"
#include "engine/settlement.h"
#include "rules/policy_loader.h"

namespace carecard {
namespace {

namespace fs = std::filesystem;

// A generated data folder that lives as long as the process.
class GeneratedFolder {
 public:
  GeneratedFolder(int64_t cards, YearMonth first, YearMonth last) {
    dir_ = fs::temp_directory_path() /
           ("carecard-micro-" + std::to_string(::getpid()) + "-" + std::to_string(cards) + "-" +
            first.ToString() + "-" + last.ToString());
    GenOptions options;
    options.out_dir = dir_.string();
    options.cards = cards;
    options.first_month = first;
    options.last_month = last;
    options.seed = 1;
    GenSummary summary;
    std::string error;
    if (!GenerateDataFolder(options, &summary, &error)) {
      std::cerr << "carecard_micro: cannot generate data: " << error << "\n";
      std::exit(1);
    }
  }
  ~GeneratedFolder() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& file) const { return (dir_ / file).string(); }
  std::string dir() const { return dir_.string(); }

 private:
  fs::path dir_;
};

// 5,000 cards, one month: ~45,000 consumption rows (~3.8 MB), ~5,500 deposit rows.
const GeneratedFolder& OneMonth() {
  static const GeneratedFolder folder(5000, YearMonth::Of(2024, 1), YearMonth::Of(2024, 1));
  return folder;
}
// 2,000 cards, one payout period (2024-B1): the registry for the Settle benchmark.
const GeneratedFolder& OnePeriod() {
  static const GeneratedFolder folder(2000, YearMonth::Of(2024, 1), YearMonth::Of(2024, 2));
  return folder;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string& ConsumptionBytes() {
  static const std::string bytes = ReadAll(OneMonth().path("consumption-2024-01.csv"));
  return bytes;
}

// The cells of one column of the consumption file (amounts, timestamps).
const std::vector<std::string>& ConsumptionColumn(size_t column) {
  static std::vector<std::vector<std::string>> columns;
  if (columns.empty()) {
    auto reader = CsvReader::FromString(ConsumptionBytes(), "consumption-2024-01.csv");
    CsvRow row;
    bool header = true;
    while (reader->Next(&row)) {
      if (columns.empty()) columns.resize(row.cells.size());
      if (header) {
        header = false;
        continue;
      }
      for (size_t i = 0; i < row.cells.size() && i < columns.size(); ++i) columns[i].push_back(row.cells[i]);
    }
  }
  return columns.at(column);
}

const Policy& QingdaoPolicy() {
  static const Policy policy = [] {
    PolicyLoadResult loaded = LoadPolicyFromFile(std::string(CARECARD_SOURCE_DIR) + "/rules/qingdao-2022.yaml");
    if (!loaded.ok) {
      std::cerr << "carecard_micro: cannot load rules/qingdao-2022.yaml\n";
      std::exit(1);
    }
    return loaded.policy;
  }();
  return policy;
}

IntakeResult LoadFolder(const std::string& dir, YearMonth last_month) {
  Intake intake(QingdaoPolicy().timezone, last_month);
  std::vector<InputFileInfo> files;
  std::string error;
  if (!LoadDataFolder(dir, &intake, DataFolderOptions{}, &files, &error)) {
    std::cerr << "carecard_micro: cannot load " << dir << ": " << error << "\n";
    std::exit(1);
  }
  return intake.Finish();
}

// --- CSV reader -------------------------------------------------------------

// Parsing a consumption file held in memory (the bytes are copied into the
// reader outside the timed region, since FromString takes ownership).
void BM_CsvReaderFromString(benchmark::State& state) {
  const std::string& bytes = ConsumptionBytes();
  int64_t rows = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string copy = bytes;
    state.ResumeTiming();
    auto reader = CsvReader::FromString(std::move(copy), "consumption-2024-01.csv");
    CsvRow row;
    int64_t n = 0;
    while (reader->Next(&row)) ++n;
    benchmark::DoNotOptimize(n);
    rows += n;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes.size()));
  state.SetItemsProcessed(rows);
}
BENCHMARK(BM_CsvReaderFromString)->Unit(benchmark::kMillisecond);

// The same file through Open (the streaming path settle uses; the file is in the page cache).
void BM_CsvReaderOpenFile(benchmark::State& state) {
  const std::string path = OneMonth().path("consumption-2024-01.csv");
  const auto bytes = static_cast<int64_t>(fs::file_size(path));
  int64_t rows = 0;
  for (auto _ : state) {
    std::string error;
    auto reader = CsvReader::Open(path, &error);
    CsvRow row;
    int64_t n = 0;
    while (reader->Next(&row)) ++n;
    benchmark::DoNotOptimize(n);
    rows += n;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes);
  state.SetItemsProcessed(rows);
}
BENCHMARK(BM_CsvReaderOpenFile)->Unit(benchmark::kMillisecond);

// --- Money and timestamps ----------------------------------------------------

void BM_MoneyParsePositive(benchmark::State& state) {
  const std::vector<std::string>& amounts = ConsumptionColumn(3);  // "amount"
  for (auto _ : state) {
    int64_t sum = 0;
    for (const std::string& a : amounts) {
      auto m = Money::ParsePositive(a);
      sum += m ? m->fen() : 0;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(amounts.size()));
}
BENCHMARK(BM_MoneyParsePositive);

void BM_InstantParse(benchmark::State& state) {
  const std::vector<std::string>& stamps = ConsumptionColumn(4);  // "at"
  for (auto _ : state) {
    int64_t sum = 0;
    for (const std::string& s : stamps) {
      auto t = Instant::Parse(s);
      sum += t ? t->seconds : 0;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(stamps.size()));
}
BENCHMARK(BM_InstantParse);

// Instant::Parse followed by the local date in +08:00 (what intake does per row).
void BM_InstantParseLocalDate(benchmark::State& state) {
  const std::vector<std::string>& stamps = ConsumptionColumn(4);
  const UtcOffset zone{8 * 3600};
  for (auto _ : state) {
    int64_t sum = 0;
    for (const std::string& s : stamps) {
      auto t = Instant::Parse(s);
      sum += t ? t->LocalDate(zone).days() : 0;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(stamps.size()));
}
BENCHMARK(BM_InstantParseLocalDate);

// --- Intake and settlement ----------------------------------------------------

// Reading and validating a whole data folder (2,000 cards, 2 months, ~40,000
// transaction rows): CSV reading, hashing and every intake check of semantics.md §8.
void BM_LoadDataFolder(benchmark::State& state) {
  const std::string dir = OnePeriod().dir();
  int64_t rows = 0;
  for (auto _ : state) {
    IntakeResult intake = LoadFolder(dir, YearMonth::Of(2024, 2));
    for (const auto& f : intake.files) rows += f.read;
    benchmark::DoNotOptimize(intake.registry.transactions.size());
  }
  state.SetItemsProcessed(rows);
  state.SetLabel("items = input rows");
}
BENCHMARK(BM_LoadDataFolder)->Unit(benchmark::kMillisecond);

// The card-month evaluation: Settle over an accepted registry of 2,000 cards for
// 2024-B1 with an empty book (net deposits, eligibility, tiers, balances,
// statements, payouts). The intake is copied outside the timed region because
// Settle consumes its exceptions. Argument: threads.
void BM_SettleCardMonths(benchmark::State& state) {
  const Policy& policy = QingdaoPolicy();
  const PayoutPeriod period = *PayoutPeriod::Parse("2024-B1", policy.months_per_period);
  static const IntakeResult loaded = LoadFolder(OnePeriod().dir(), period.last_month());
  const BookState book;
  SettlementOptions options;
  options.threads = static_cast<int>(state.range(0));
  int64_t card_months = 0;
  for (auto _ : state) {
    state.PauseTiming();
    IntakeResult intake = loaded;
    state.ResumeTiming();
    SettlementResult result = Settle(policy, period, intake, book, options);
    card_months += static_cast<int64_t>(result.card_months.size());
    benchmark::DoNotOptimize(result.payouts.size());
  }
  state.SetItemsProcessed(card_months);
  state.SetLabel("items = card-months");
}
BENCHMARK(BM_SettleCardMonths)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace carecard

BENCHMARK_MAIN();
