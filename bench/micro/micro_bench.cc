// Google Benchmark micro-benchmarks for the hot paths of a settlement run
// (issue 7): the CSV readers (the streaming CsvReader of registry files and
// the block parser of transaction files), money and timestamp parsing, the
// row checks of transaction rows, the spill encoding, the card-month
// evaluation, and a whole run over a data folder.
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
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/csv_chunks.h"
#include "adapters/csv_reader.h"
#include "adapters/csv_writer.h"
#include "adapters/data_folder.h"
#include "batch/generator.h"
#include "engine/calendar.h"
#include "engine/elder_settle.h"
#include "engine/ledger.h"
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

// 5,000 cards, one month: ~46,000 consumption rows (~3.8 MB, 3.6 MiB), ~5,500 deposit rows.
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

// A whole run over a folder: read, classify, settle (no files written).
RunResult SettleFolderOnce(const std::string& dir, const PayoutPeriod& period, int threads) {
  static const BookState book;
  std::vector<InputFileInfo> listed, files;
  std::string error;
  if (!ListDataFiles(dir, &listed, &error)) {
    std::cerr << "carecard_micro: " << error << "\n";
    std::exit(1);
  }
  RunOptions options;
  options.threads = threads;
  options.expected_transaction_bytes = TransactionBytes(dir, listed);
  SettlementRun run(QingdaoPolicy(), period, book, options);
  DataFolderOptions folder;
  folder.threads = threads;
  std::unique_ptr<RowFetcher> fetcher;
  if (!LoadDataFolder(dir, listed, &run, folder, &files, &fetcher, &error)) {
    std::cerr << "carecard_micro: cannot load " << dir << ": " << error << "\n";
    std::exit(1);
  }
  return run.Finish(fetcher.get());
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

// The same file through Open (the streaming path of registry files; the file is in the page cache).
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

// The block parser of transaction files over the same bytes in memory: rows in place, no copies.
void BM_CsvBlockParser(benchmark::State& state) {
  const std::string& bytes = ConsumptionBytes();
  int64_t rows = 0;
  for (auto _ : state) {
    CsvBlockParser parser(bytes.data(), bytes.data() + bytes.size(), 1, 0);
    CsvRowView row;
    int64_t n = 0;
    while (parser.Next(&row)) n += static_cast<int64_t>(row.cells.size());
    benchmark::DoNotOptimize(n);
    rows += parser.line();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes.size()));
  state.SetItemsProcessed(rows);
}
BENCHMARK(BM_CsvBlockParser)->Unit(benchmark::kMillisecond);

// Cutting the file into blocks of whole rows with SHA-256 (what the reading thread does), then parsing them.
void BM_CsvChunkReaderAndParser(benchmark::State& state) {
  const std::string path = OneMonth().path("consumption-2024-01.csv");
  const auto bytes = static_cast<int64_t>(fs::file_size(path));
  for (auto _ : state) {
    std::string error;
    auto reader = CsvChunkReader::Open(path, kDefaultBlockBytes, &error);
    CsvBlock block;
    CsvRowView row;
    int64_t n = 0;
    while (reader->Next(&block)) {
      CsvBlockParser parser(block.bytes.data() + block.begin, block.bytes.data() + block.end, block.first_line,
                            block.offset);
      while (parser.Next(&row)) ++n;
    }
    std::string sha;
    uint64_t size = 0;
    reader->Digest(&sha, &size);
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes);
}
BENCHMARK(BM_CsvChunkReaderAndParser)->Unit(benchmark::kMillisecond);

// --- Output -------------------------------------------------------------------

// The consumption file's rows written back through CsvWriter cell by cell, as
// the output files are rendered: chunks of ~1 MiB handed over and their
// buffers adopted again (batch/outputs.cc), so nothing is allocated per cell.
// Checks that the bytes written are the file read (the generator writes with
// the same writer).
void BM_CsvWriterRows(benchmark::State& state) {
  constexpr size_t kColumns = 8;
  std::vector<const std::vector<std::string>*> columns;
  for (size_t c = 0; c < kColumns; ++c) columns.push_back(&ConsumptionColumn(c));
  const size_t rows = columns[0]->size();
  auto write_all = [&](CsvWriter& w, std::string* all) {
    int64_t bytes = 0;
    auto hand_over = [&] {  // the chunk goes, its buffer comes back
      bytes += static_cast<int64_t>(w.bytes().size());
      if (all) all->append(w.bytes());
      w.Adopt(w.Release());
    };
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < kColumns; ++c) w.Cell((*columns[c])[r]);
      w.EndRow();
      if (w.bytes().size() >= (1u << 20)) hand_over();
    }
    hand_over();
    return bytes;
  };
  CsvWriter w;
  std::string all;
  const std::string& file = ConsumptionBytes();
  write_all(w, &all);
  if (all != file.substr(file.find('\n') + 1)) {
    state.SkipWithError("the rows written back are not the file's");
    return;
  }
  int64_t bytes = 0;
  for (auto _ : state) bytes += write_all(w, nullptr);
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(rows * kColumns));
  state.SetLabel("items = cells");
}
BENCHMARK(BM_CsvWriterRows)->Unit(benchmark::kMillisecond);

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

// The timestamp with its local date and month in +08:00, in one go (what the row checks do).
void BM_InstantParseLocalDate(benchmark::State& state) {
  const std::vector<std::string>& stamps = ConsumptionColumn(4);
  const UtcOffset zone{8 * 3600};
  for (auto _ : state) {
    int64_t sum = 0;
    for (const std::string& s : stamps) {
      Date local;
      YearMonth month;
      auto t = Instant::Parse(s, zone, &local, &month);
      sum += t ? local.days() + month.index() : 0;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(stamps.size()));
}
BENCHMARK(BM_InstantParseLocalDate);

// --- Row checks, spill encoding, card-months, a whole run ----------------------

const RunResult& OnePeriodRun() {
  static const RunResult run = SettleFolderOnce(OnePeriod().dir(), *PayoutPeriod::Parse("2024-B1", 2), 1);
  return run;
}

// The row-local checks of a consumption row (kind, amount, timestamp, card, station).
void BM_CheckTxnRow(benchmark::State& state) {
  const RunResult& run = OnePeriodRun();
  ServiceNames services;
  LedgerContext ctx;
  ctx.registry = &run.registry;
  ctx.zone = QingdaoPolicy().timezone;
  ctx.last_month = YearMonth::Of(2024, 2);
  ctx.services = &services;
  ctx.files = run.files.get();
  // The consumption file of the 2,000-card folder, canonical columns.
  auto reader = CsvReader::FromString(ReadAll(OnePeriod().path("consumption-2024-01.csv")), "c");
  std::vector<std::vector<std::string>> rows;
  CsvRow row;
  reader->Next(&row);
  while (reader->Next(&row)) rows.push_back(row.cells);
  std::vector<std::vector<std::string_view>> views;
  for (const auto& r : rows) views.emplace_back(r.begin(), r.end());
  // The registry's card index has released its lookups after the run: rebuild it.
  Registry reg = run.registry;
  reg.card_ids = IdIndex();
  for (size_t i = 0; i < run.registry.cards.size(); ++i) reg.card_ids.Insert(run.registry.card_no(static_cast<int32_t>(i)));
  ctx.registry = &reg;
  ctx.card_partition.assign(reg.cards.size(), 0);
  TxnLookupCache cache;
  for (auto _ : state) {
    int64_t events = 0;
    for (const auto& v : views) events += CheckTxnRow(ctx, false, Cells(v), nullptr, &cache).outcome == TxnVerdict::kEvent;
    benchmark::DoNotOptimize(events);
    // A benchmark of rejections would measure the wrong path: the generated rows are valid.
    if (events * 10 < static_cast<int64_t>(views.size()) * 9) {
      state.SkipWithError("fewer than 90% of the rows were accepted: the set-up is wrong");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(views.size()));
}
BENCHMARK(BM_CheckTxnRow);

// Delta encoding of spilled events and decoding them back (a card's rows in sequence).
void BM_SpillEncodeDecode(benchmark::State& state) {
  std::vector<EventHeader> headers;
  std::vector<std::string> ids;
  for (int i = 0; i < 20000; ++i) {
    EventHeader h{};
    h.card = i / 10;
    h.file = 7;
    h.line = static_cast<uint32_t>(i + 2);
    h.at_seconds = 1'704'000'000 + i * 3600;
    h.amount_fen = 1000 + i % 977;
    h.nanos_kind = static_cast<uint32_t>(TxnKind::kConsumption) << 30;
    h.serving_center = i / 40;
    h.service = static_cast<uint16_t>(i % 4);
    ids.push_back("X" + std::to_string(10'000'000 + i));
    h.id_len = static_cast<uint16_t>(ids.back().size());
    headers.push_back(h);
  }
  auto delta = std::make_unique<EventDelta>();
  std::vector<char> encoded(headers.size() * 64);
  ByteBuffer in, out;
  for (auto _ : state) {
    size_t at = 0;
    for (size_t i = 0; i < headers.size(); ++i) at += EncodeEvent(headers[i], ids[i], {}, i == 0, delta.get(), encoded.data() + at);
    in.resize(at);
    std::memcpy(in.data(), encoded.data(), at);
    DecodeEvents(in, {static_cast<uint32_t>(at)}, &out);
    benchmark::DoNotOptimize(out.size());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(headers.size()));
}
BENCHMARK(BM_SpillEncodeDecode);

// The card-month evaluation of semantics.md §5, for every card of the folder
// active in January, with net deposits cycling below, between and above the
// tiers (0, 50, 100, 150, 200, 250 yuan), so that every outcome is timed.
void BM_EvaluateCardMonth(benchmark::State& state) {
  const RunResult& run = OnePeriodRun();
  const Policy& policy = QingdaoPolicy();
  const YearMonth month = YearMonth::Of(2024, 1);
  std::vector<int32_t> active;
  for (size_t c = 0; c < run.registry.cards.size(); ++c) {
    if (run.registry.card(static_cast<int32_t>(c)).ActiveIn(month)) active.push_back(static_cast<int32_t>(c));
  }
  constexpr int64_t kNetDepositFen[] = {0, 5000, 10000, 15000, 20000, 25000};
  int64_t paid = 0;
  for (auto _ : state) {
    paid = 0;
    for (size_t i = 0; i < active.size(); ++i) {
      const Money net = Money::FromFen(kNetDepositFen[i % std::size(kNetDepositFen)]);
      paid += EvaluateCardMonth(policy, run.registry, active[i], month, net, nullptr).status == CardMonthStatus::kPaid;
    }
    benchmark::DoNotOptimize(paid);
  }
  if (paid == 0 || paid == static_cast<int64_t>(active.size())) {
    state.SkipWithError("expected some card-months paid and some not");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(active.size()));
  state.SetLabel("items = active card-months evaluated");
}
BENCHMARK(BM_EvaluateCardMonth);

// The consumption sums of visits away from the card's own centre: 2,000,000
// additions of keys (serving centre, home centre, service) drawn at random,
// two in three a run of two rows of the same key (one card's visits), into a
// new table each time. Argument: centres. 100 centres give 59,400 keys, a
// table that fits in cache; 1,000 give 1.09 M keys over ~50 MB, about what a
// 2,000,000-card province gives each thread (830,000), where every lookup was
// two cache misses before additions were batched (bench/README.md).
void BM_ConsumptionTotalsAwayFromHome(benchmark::State& state) {
  const auto centres = static_cast<uint32_t>(state.range(0));
  std::vector<ConsumptionKey> keys;
  keys.reserve(2'000'000);
  uint64_t x = 88172645463325252ull;  // xorshift: the same keys on every machine
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  while (keys.size() < 2'000'000) {
    const uint64_t r = next();
    const auto home = static_cast<int32_t>(r % centres);
    auto serving = static_cast<int32_t>((r >> 20) % centres);
    if (serving == home) serving = (serving + 1) % static_cast<int32_t>(centres);
    const ConsumptionKey key{serving, home, static_cast<uint16_t>((r >> 40) % 6)};
    keys.push_back(key);
    if ((r >> 50) % 3 != 0 && keys.size() < 2'000'000) keys.push_back(key);
  }
  size_t held = 0;
  for (auto _ : state) {
    ConsumptionTotals totals;
    for (const ConsumptionKey& key : keys) totals.Add(key, 1, Money::FromFen(1250));
    held = totals.size();
    benchmark::DoNotOptimize(held);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(keys.size()));
  state.SetLabel("items = additions; keys held " + std::to_string(held));
}
BENCHMARK(BM_ConsumptionTotalsAwayFromHome)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

// A whole run over a data folder (2,000 cards, 2 months, ~40,000 transaction
// rows): reading, hashing, every check of semantics.md §8, settling and the
// merge; no files are written. Argument: threads.
void BM_SettleFolder(benchmark::State& state) {
  const PayoutPeriod period = *PayoutPeriod::Parse("2024-B1", 2);
  int64_t rows = 0;
  for (auto _ : state) {
    RunResult run = SettleFolderOnce(OnePeriod().dir(), period, static_cast<int>(state.range(0)));
    for (const auto& f : run.counts) rows += f.read;
    benchmark::DoNotOptimize(run.settlement.card_months.size());
  }
  state.SetItemsProcessed(rows);
  state.SetLabel("items = input rows");
}
BENCHMARK(BM_SettleFolder)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace carecard

BENCHMARK_MAIN();
