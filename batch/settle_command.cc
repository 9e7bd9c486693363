#include "batch/settle_command.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <map>
#include <fstream>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "adapters/csv_reader.h"
#include "adapters/data_folder.h"
#include "adapters/spill_file.h"
#include "batch/book.h"
#include "batch/outputs.h"
#include "batch/signing.h"
#include "engine/settlement.h"
#include "rules/explain_render.h"

#ifndef CARECARD_VERSION
#define CARECARD_VERSION "0.0.0"
#endif

namespace carecard {
namespace fs = std::filesystem;

#ifndef CARECARD_BUILD
#define CARECARD_BUILD "unknown"
#endif

std::string EngineVersion() { return CARECARD_VERSION; }
std::string EngineBuild() { return CARECARD_BUILD; }

int LoadPolicy(const std::string& path, Language language, PreparedRun* run, std::ostream& err) {
  run->policy = LoadPolicyFromFile(path, language);
  if (!run->policy.ok) {
    for (const auto& e : run->policy.errors) err << e.ToString() << "\n";
    return kExitRefused;
  }
  std::string bytes, error;
  if (!ReadWholeFile(path, &bytes, &error)) {
    err << error << "\n";
    return kExitRefused;
  }
  run->rules_sha256 = Sha256Hex(bytes);
  return kExitOk;
}

namespace {

int LoadBook(const Book& book, PreparedRun* run, std::ostream& err) {
  std::string error;
  if (!book.ListPeriods(&run->periods, &error) || !book.ReadState(run->periods, &run->book, &error)) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  for (const auto& bp : run->periods) {
    if (bp.closed && run->book.latest_closed && bp.period == *run->book.latest_closed) {
      run->previous_manifest_sha256 = bp.manifest_sha256;
    }
  }
  return kExitOk;
}

}  // namespace

RunTuning RunTuning::Clamped() const {
  RunTuning t = *this;
  t.partition_bytes = std::clamp<uint64_t>(t.partition_bytes, 1u << 10, uint64_t{1} << 30);
  t.exception_budget_bytes = std::clamp<size_t>(t.exception_budget_bytes, 1u << 10, size_t{256} << 20);
  t.block_bytes = std::clamp<size_t>(t.block_bytes, kMaxRowBytes + 8, size_t{64} << 20);  // a block holds a whole row
  t.render_rows = std::clamp<size_t>(t.render_rows, 1, size_t{1} << 20);
  return t;
}

std::optional<int> CpusOfCgroupQuota(std::string_view cpu_max) {
  // "QUOTA PERIOD" in microseconds, or "max PERIOD".
  while (!cpu_max.empty() && (cpu_max.back() == '\n' || cpu_max.back() == ' ')) cpu_max.remove_suffix(1);
  const size_t space = cpu_max.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view quota_text = cpu_max.substr(0, space), period_text = cpu_max.substr(space + 1);
  uint64_t quota = 0, period = 0;
  auto whole = [](std::string_view text, uint64_t* value) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
    return ec == std::errc() && end == text.data() + text.size();
  };
  if (!whole(quota_text, &quota) || !whole(period_text, &period) || quota == 0 || period == 0) return std::nullopt;
  const uint64_t cpus = quota / period + (quota % period != 0);
  return static_cast<int>(std::min<uint64_t>(cpus, kMaxThreads));
}

namespace {

// The lowest CPU quota of the group `path` (as /proc/self/cgroup names it)
// and its parents under the hierarchy mounted at `root`; `quota_of(dir)` reads
// one group's quota as "QUOTA PERIOD". In a container the hierarchy's root is
// often the container's own group, and the path beneath it is the host's: the
// walk up reaches it either way.
template <typename QuotaOf>
std::optional<int> LowestQuota(const std::string& root, std::string_view path, QuotaOf quota_of) {
  std::optional<int> lowest;
  std::string dir = root + (path.empty() || path[0] != '/' ? "/" : "") + std::string(path);
  while (dir.size() > root.size() && dir.back() == '/') dir.pop_back();
  for (int depth = 0; depth < 64; ++depth) {
    if (auto quota = CpusOfCgroupQuota(quota_of(dir))) lowest = std::min(lowest.value_or(*quota), *quota);
    const size_t parent = dir.rfind('/');
    if (dir.size() <= root.size() || parent == std::string::npos || parent < root.size()) break;
    dir.resize(parent);
  }
  return lowest;
}

std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

std::optional<int> CgroupCpuLimit(std::string_view proc_self_cgroup, const std::string& cgroup_root) {
  // "0::/PATH" for cgroup v2 (cpu.max: "QUOTA PERIOD" or "max PERIOD");
  // "N:cpu,cpuacct:/PATH" for cgroup v1 (cpu.cfs_quota_us, -1 for none, and cpu.cfs_period_us).
  std::optional<int> limit;
  auto lower = [&](std::optional<int> quota) {
    if (quota) limit = std::min(limit.value_or(*quota), *quota);
  };
  while (!proc_self_cgroup.empty()) {
    const size_t end = std::min(proc_self_cgroup.find('\n'), proc_self_cgroup.size());
    const std::string_view line = proc_self_cgroup.substr(0, end);
    proc_self_cgroup.remove_prefix(std::min(end + 1, proc_self_cgroup.size()));
    const size_t first = line.find(':');
    const size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string controllers = "," + std::string(line.substr(first + 1, second - first - 1)) + ",";
    const std::string_view path = line.substr(second + 1);
    if (line.substr(0, 3) == "0::") {
      lower(LowestQuota(cgroup_root, path, [](const std::string& dir) { return FirstLine(dir + "/cpu.max"); }));
    } else if (controllers.find(",cpu,") != std::string::npos) {
      for (const char* name : {"/cpu", "/cpu,cpuacct", "/cpuacct,cpu"}) {
        std::error_code ec;
        if (!fs::is_directory(cgroup_root + name, ec)) continue;
        lower(LowestQuota(cgroup_root + name, path, [](const std::string& dir) {
          return FirstLine(dir + "/cpu.cfs_quota_us") + " " + FirstLine(dir + "/cpu.cfs_period_us");
        }));
        break;
      }
    }
  }
  return limit;
}

int UsableCpus() {
  int cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::ifstream in("/proc/self/cgroup");
  const std::string groups((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (auto limit = CgroupCpuLimit(groups, "/sys/fs/cgroup")) cpus = std::min(cpus, *limit);
  return std::max(cpus, 1);
}

RunTuning RunTuning::FromEnvironment() {
  RunTuning t;
  // The variable `name` as a whole decimal number, or false.
  auto number = [](const char* name, uint64_t* value) {
    const char* text = std::getenv(name);
    if (!text || !*text) return false;
    const char* end = text + std::strlen(text);
    const auto [ptr, ec] = std::from_chars(text, end, *value);
    return ec == std::errc() && ptr == end;
  };
  auto kib = [&](const char* name, auto* bytes) {
    uint64_t value = 0;
    if (!number(name, &value)) return;
    value = std::min<uint64_t>(value, uint64_t{1} << 30);  // KiB: keeps the shift below from overflowing
    *bytes = static_cast<std::remove_reference_t<decltype(*bytes)>>(value << 10);
  };
  kib("CARECARD_PARTITION_KB", &t.partition_bytes);
  kib("CARECARD_EXCEPTION_KB", &t.exception_budget_bytes);
  kib("CARECARD_BLOCK_KB", &t.block_bytes);
  if (uint64_t rows = 0; number("CARECARD_RENDER_ROWS", &rows)) t.render_rows = static_cast<size_t>(std::min<uint64_t>(rows, SIZE_MAX));
  if (const char* mode = std::getenv("CARECARD_SPILL")) {
    if (std::string_view(mode) == "memory") t.spill = Spill::kMemory;
    if (std::string_view(mode) == "file") t.spill = Spill::kFile;
  }
  return t.Clamped();
}

bool MakeSpill(const std::string& dir, uint64_t transaction_bytes, RunTuning::Spill mode, std::unique_ptr<SpillStore>* spill,
               std::string* error) {
  // Below this, records fit comfortably in memory and a file only costs system calls.
  constexpr uint64_t kFileSpillFrom = 32u << 20;
  if (mode == RunTuning::Spill::kMemory || (mode == RunTuning::Spill::kAuto && transaction_bytes < kFileSpillFrom)) {
    *spill = std::make_unique<MemorySpillStore>();
    return true;
  }
  auto file = FileSpillStore::Create(dir, error);
  if (!file) return false;
  *spill = std::move(file);
  return true;
}

namespace {

// CARECARD_TIMINGS=1 prints how long each phase took to stderr (benchmarks); never into a file.
class PhaseTimer {
 public:
  PhaseTimer() : enabled_(std::getenv("CARECARD_TIMINGS") != nullptr), start_(std::chrono::steady_clock::now()) {}
  void Memory(const std::string& what, size_t bytes) const {
    if (enabled_) std::cerr << "memory " << what << ": " << (bytes >> 20) << " MiB\n";
  }
  void Report(const std::string& name, int64_t ms) const {
    if (enabled_) std::cerr << "timing   " << name << ": " << ms << " ms\n";
  }
  void operator()(const char* name) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    struct rusage usage;
    ::getrusage(RUSAGE_SELF, &usage);
    const int64_t cpu = (int64_t{usage.ru_utime.tv_sec} + usage.ru_stime.tv_sec) * 1000 +
                        (int64_t{usage.ru_utime.tv_usec} + usage.ru_stime.tv_usec) / 1000;
    std::cerr << "timing " << name << ": " << std::chrono::duration_cast<std::chrono::milliseconds>(now - start_).count()
              << " ms (cpu " << cpu - cpu_ms_ << " ms, faults so far " << usage.ru_minflt << ", peak RSS "
              << (usage.ru_maxrss >> 10) << " MiB)\n";
    start_ = now;
    cpu_ms_ = cpu;
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  int64_t cpu_ms_ = 0;  // process CPU time (user + system) at start_
};

}  // namespace

int SettleFolder(const std::string& data_dir, const std::string& spill_dir, int threads, int64_t max_rejects, bool progress,
                 const RunTuning& requested, const RunOptions& extra, PreparedRun* run, std::ostream& err) {
  const RunTuning tuning = requested.Clamped();
  PhaseTimer phase;
  std::vector<InputFileInfo> listed;
  std::string error;
  if (!ListDataFiles(data_dir, &listed, &error)) {
    err << error << "\n";
    return kExitRefused;
  }
  RunOptions options = extra;
  options.threads = threads;
  options.expected_transaction_bytes = TransactionBytes(data_dir, listed);
  options.partition_bytes = tuning.partition_bytes;
  options.exception_budget_bytes = tuning.exception_budget_bytes;
  std::unique_ptr<SpillStore> spill;
  if (!MakeSpill(spill_dir, options.expected_transaction_bytes, tuning.spill, &spill, &error)) {
    err << error << "\n";
    return kExitRefused;
  }
  options.spill = spill.get();
  try {
    SettlementRun settlement(run->policy.policy, *run->period, run->book, options);
    DataFolderOptions folder;
    folder.max_rejects_per_file = max_rejects;
    folder.threads = threads;
    folder.block_bytes = tuning.block_bytes;
    if (progress) {
      folder.progress = [](const std::string& file, int64_t rows) {
        std::cerr << "\r  reading " << file << ": " << rows << " rows" << std::flush;
      };
    }
    std::unique_ptr<RowFetcher> fetcher;
    const bool loaded = LoadDataFolder(data_dir, listed, &settlement, folder, &run->inputs, &fetcher, &error);
    if (progress) std::cerr << "\r" << std::string(60, ' ') << "\r";
    if (!loaded) {
      err << error << "\n";
      return kExitRefused;
    }
    phase("read inputs");
    phase.Memory("registry", settlement.registry().MemoryBytes());
    run->result = settlement.Finish(fetcher.get());
    for (const auto& [name, ms] : run->result.phases) phase.Report(name, ms);
    phase.Memory("spilled records", run->result.spilled_bytes);
    phase("settle");
  } catch (const MoneyOverflow& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  } catch (const RefusedError& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  } catch (const SpillError& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  } catch (const std::length_error& e) {  // a limit of id_index.h
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  } catch (const std::bad_alloc&) {
    err << "refused: out of memory (see README, Resources and limits)\n";
    return kExitRefused;
  }
  // The spill outlives the run: the exceptions are read back from it.
  run->result.owned_spill = std::move(spill);
  return CheckRejects(*run, max_rejects, data_dir, err);
}

int CheckRejects(const PreparedRun& run, int64_t max_rejects, const std::string& where, std::ostream& err) {
  for (const auto& c : run.result.counts) {
    if (c.rejected > max_rejects) {
      err << (where.empty() ? c.file : (std::filesystem::path(where) / c.file).string()) << ": more than " << max_rejects
          << " rejected rows (--max-rejects); refusing to settle from a file that is mostly unusable\n";
      return kExitRefused;
    }
  }
  return kExitOk;
}

int WriteFiles(const std::string& rules_path, int threads, const RunTuning& tuning, bool close, PreparedRun* run,
               OutputSink* sink, std::string* manifest, std::ostream& err) {
  const Policy& policy = run->policy.policy;
  const PayoutPeriod period = *run->period;
  ManifestInputs m;
  m.engine_version = EngineVersion();
  m.engine_build = EngineBuild();
  m.policy = &policy;
  m.rules_file = fs::path(rules_path).filename().string();
  m.rules_sha256 = run->rules_sha256;
  m.period = period;
  m.book_first_period = (run->book.first_closed ? *run->book.first_closed : period).ToString();
  m.closed = close;
  m.inputs = run->inputs;
  m.counts = run->result.counts;
  m.previous_manifest_sha256 = run->previous_manifest_sha256;
  try {
    const std::vector<OutputInfo> outputs = RenderSettlementFiles(period, policy, run->result, run->book, sink, threads,
                                                                   tuning.Clamped().render_rows);
    *manifest = RenderManifest(m, outputs, run->result.settlement);
    WriteWholeFile(sink, "manifest.json", *manifest);
  } catch (const nlohmann::json::exception& e) {
    // Only text that is not UTF-8 (a rules file's name, say) can make the manifest fail.
    err << "refused: the manifest cannot be written: " << e.what() << "\n";
    return kExitRefused;
  } catch (const std::runtime_error& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  }
  return kExitOk;
}

std::string NowUtc() {
  std::time_t now = std::time(nullptr);
  char buffer[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string HostName() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) return "?";
  return host;
}

void PrintSummary(const PayoutPeriod& period, bool closed, const RunResult& run, const std::string& where,
                  std::ostream& out) {
  const SettlementResult& r = run.settlement;
  out << "settled " << period.ToString() << (closed ? " (closed)" : " (draft)") << " into " << where << "\n";
  out << "  cards with card-months: " << r.totals.cards << ", card-months: " << r.totals.card_months
      << ", paid: " << r.totals.card_months_paid << "\n";
  out << "  subsidies " << r.totals.subsidies.ToString() << ", adjustments " << r.totals.adjustments.ToString()
      << ", payouts " << r.totals.payouts.ToString() << " to " << r.payouts.size() << " centre(s)";
  if (!r.totals.carried_out.is_zero()) out << ", carried forward " << r.totals.carried_out.ToString();
  out << "\n";
  const auto& counts = r.exceptions.counts();
  std::string codes;
  for (int i = 0; i < kExceptionCodeCount; ++i) {
    if (counts[static_cast<size_t>(i)] > 0) {
      codes += " " + std::string(ExceptionCodeName(static_cast<ExceptionCode>(i))) + "=" +
               std::to_string(counts[static_cast<size_t>(i)]);
    }
  }
  out << (codes.empty() ? "  exceptions: none" : "  exceptions:" + codes) << "\n";
}

int CheckPeriodOrder(const PayoutPeriod& period, bool close, const PreparedRun& run, std::ostream& err) {
  const auto& latest = run.book.latest_closed;
  if (latest && period <= *latest) {
    err << "period " << period.ToString()
        << (period == *latest ? " is closed" : " is before the latest closed period " + latest->ToString())
        << "; a closed period is never rewritten: corrections are posted as adjustments in the open period\n";
    return kExitClosed;
  }
  if (close) {
    if (latest && period != latest->Next()) {
      err << "cannot close " << period.ToString() << ": periods close in order and the next to close is "
          << latest->Next().ToString() << "\n";
      return kExitClosed;
    }
    for (const auto& bp : run.periods) {
      if (!bp.closed && bp.period < period) {
        err << "cannot close " << period.ToString() << ": the earlier period " << bp.period.ToString()
            << " is settled as a draft but not closed; close it first\n";
        return kExitClosed;
      }
    }
  }
  return kExitOk;
}

int RunSettle(const SettleOptions& o, std::ostream& out, std::ostream& err) {
  PreparedRun run;
  if (int rc = LoadPolicy(o.rules_path, o.language, &run, err)) return rc;
  const Policy& policy = run.policy.policy;
  run.period = PayoutPeriod::Parse(o.period, policy.months_per_period);
  if (!run.period) {
    err << "period '" << o.period << "' is not a period of " << policy.months_per_period
        << " month(s) (expected e.g. " << PayoutPeriod::Containing(YearMonth::Of(2024, 1), policy.months_per_period).ToString()
        << ")\n";
    return kExitUsage;
  }
  const PayoutPeriod period = *run.period;
  Book book(o.book_dir, policy.months_per_period);
  // A refused first run leaves no book behind: the folder made only to hold the lock goes again.
  std::error_code exists_error;
  const bool book_existed = fs::exists(o.book_dir, exists_error);
  struct RemoveNewEmptyBook {
    const std::string& dir;
    bool active;
    ~RemoveNewEmptyBook() {
      if (!active) return;
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().filename() != ".lock") return;
      }
      fs::remove_all(dir, ec);
    }
  } remove_new_empty_book{o.book_dir, !book_existed};
  std::string holder;
  auto lock = BookLock::TryAcquire(o.book_dir, "pid " + std::to_string(::getpid()) + ", started " + NowUtc() + " on " +
                                                   HostName() + ", settle " + period.ToString(),
                                   &holder);
  if (!lock) {
    err << "book '" << o.book_dir << "' is held by another run (" << holder << "); try again when it has finished\n";
    return kExitClosed;
  }
  book.RemoveLeftovers();
  if (int rc = LoadBook(book, &run, err)) return rc;
  if (int rc = CheckPeriodOrder(period, o.close, run, err)) return rc;
  PhaseTimer phase;
  if (int rc = SettleFolder(o.data_dir, o.temp_dir.empty() ? o.book_dir : o.temp_dir, o.threads, o.max_rejects, o.progress,
                            o.tuning, RunOptions{}, &run, err)) {
    return rc;
  }
  std::string error;
  auto writer = PeriodWriter::Begin(book, period, &error);
  if (!writer) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  std::string manifest;
  if (int rc = WriteFiles(o.rules_path, o.threads, o.tuning, o.close, &run, writer.get(), &manifest, err)) return rc;
  if (!o.sign_key.empty()) {
    std::string signature;
    if (!SignMessage(o.sign_key, manifest, &signature, &error)) {
      err << "--sign-key: " << error << "\n";
      return kExitRefused;
    }
    try {
      WriteWholeFile(writer.get(), "manifest.json.sig", signature + "\n");
    } catch (const std::runtime_error& e) {
      err << "book: " << e.what() << "\n";
      return kExitRefused;
    }
  }
  const bool written = writer->Commit(&error);
  phase("write the book");
  if (!written) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  book.AppendRunLog(NowUtc() + " " + HostName() + " pid " + std::to_string(::getpid()) + " settle " + period.ToString() +
                    (o.close ? " --close" : "") + " threads " + std::to_string(o.threads) + " manifest " +
                    Sha256Hex(manifest));
  PrintSummary(period, o.close, run.result, book.PeriodDir(period), out);
  return kExitOk;
}

int RunExplain(const ExplainOptions& o, std::ostream& out, std::ostream& err) {
  PreparedRun run;
  if (int rc = LoadPolicy(o.rules_path, o.language, &run, err)) return rc;
  const Policy& policy = run.policy.policy;
  auto month = YearMonth::Parse(o.month);
  if (!month) {
    err << "month '" << o.month << "' is not YYYY-MM\n";
    return kExitUsage;
  }
  run.period = PayoutPeriod::Containing(*month, policy.months_per_period);
  Book book(o.book_dir, policy.months_per_period);
  if (int rc = LoadBook(book, &run, err)) return rc;
  // Explain as the month's own period would be settled now: closed periods as the book holds them.
  if (run.book.latest_closed && *run.period <= *run.book.latest_closed) {
    PayoutPeriod after = run.book.latest_closed->Next();
    run.period = after;
  }
  RunOptions explain;
  explain.explain_card = o.card_no;
  explain.explain_month = *month;
  const char* tmp = std::getenv("TMPDIR");
  if (int rc = SettleFolder(o.data_dir, tmp && *tmp ? tmp : "/tmp", 1, 1'000'000'000, false, RunTuning{}, explain, &run, err)) return rc;
  CardMonthExplanation x = run.result.explanation ? *run.result.explanation : CardMonthExplanation{};
  // A month before the book's first period is never settled in this book (semantics.md §7).
  const bool before_book = run.book.first_closed && *month < run.book.first_closed->first_month();
  std::string before_book_note;
  if (before_book) {
    const std::string first = run.book.first_closed->ToString();
    before_book_note = o.language == Language::kChinese
                           ? "注意:" + month->ToString() + " 早于本账簿的第一个结算期 " + first +
                                 ",本账簿不结算该月;以下为按现行规则的测算,不产生补贴或调整。"
                           : "note: " + month->ToString() + " is before the book's first period " + first +
                                 ": this book never settles it; what follows is what the rules would give, with no "
                                 "subsidy paid or adjusted";
  }
  if (o.json) {
    nlohmann::ordered_json j;
    j["card_no"] = o.card_no;
    j["month"] = month->ToString();
    j["found"] = x.found;
    if (x.found) {
      j["status"] = CardMonthStatusName(x.result.status);
      j["reason"] = std::string(x.result.reason_name());
      j["net_deposit"] = x.result.net_deposit.ToString();
      j["tier"] = x.result.tier ? nlohmann::ordered_json(x.result.tier) : nlohmann::ordered_json(nullptr);
      j["subsidy"] = x.result.subsidy.ToString();
      j["rule_version"] = RuleVersionOf(policy, x.result);
    }
    j["language"] = o.language == Language::kChinese ? "zh" : "en";
    nlohmann::ordered_json steps = nlohmann::ordered_json::array();
    for (const auto& step : x.steps) {
      nlohmann::ordered_json s;
      s["kind"] = ExplainStepKindName(step.kind);
      s["args"] = step.args;
      s["text"] = RenderExplainStep(step, o.language);
      steps.push_back(std::move(s));
    }
    j["steps"] = std::move(steps);
    j["settled_in_book"] = !before_book;
    if (before_book) j["note"] = before_book_note;
    out << j.dump(2) << "\n";
  } else {
    out << RenderExplainHeader(o.card_no, month->ToString(), o.language) << "\n";
    if (before_book) out << "  " << before_book_note << "\n";
    for (const auto& step : x.steps) out << "  " << RenderExplainStep(step, o.language) << "\n";
    if (x.found) out << RenderExplainResult(policy, x.result, o.language) << "\n";
  }
  return x.found ? kExitOk : kExitRefused;
}

namespace {

// Walks the chain of closed manifests up to and including `through`: each
// manifest names its predecessor's SHA-256, and each names its files' hashes.
bool VerifyChain(const Book& book, const std::vector<BookPeriod>& periods, const PayoutPeriod& through, std::ostream& out,
                 std::ostream& err) {
  std::optional<std::string> previous_sha;
  for (const auto& bp : periods) {
    if (through < bp.period) break;
    if (!bp.closed) continue;
    const std::string dir = book.PeriodDir(bp.period);
    std::string bytes, error;
    if (!ReadWholeFile(dir + "/manifest.json", &bytes, &error)) {
      err << error << "\n";
      return false;
    }
    auto manifest = nlohmann::json::parse(bytes, nullptr, false);
    const auto& link = manifest["previous_manifest_sha256"];
    std::optional<std::string> stated;
    if (link.is_string()) stated = link.get<std::string>();
    if (stated != previous_sha) {
      err << "broken chain: " << bp.period.ToString() << "/manifest.json names previous manifest "
          << (stated ? *stated : "none") << ", but the previous closed manifest's SHA-256 is "
          << (previous_sha ? *previous_sha : "none") << "\n";
      return false;
    }
    for (const auto& output : manifest["outputs"]) {
      const std::string name = output.value("file", "");
      std::string file_bytes;
      if (!ReadWholeFile(dir + "/" + name, &file_bytes, &error)) {
        err << bp.period.ToString() << ": " << error << "\n";
        return false;
      }
      if (Sha256Hex(file_bytes) != output.value("sha256", "")) {
        err << "changed: " << bp.period.ToString() << "/" << name << " does not match the SHA-256 in its manifest\n";
        return false;
      }
    }
    previous_sha = Sha256Hex(bytes);
    out << "chain ok: " << bp.period.ToString() << " " << *previous_sha << "\n";
  }
  return true;
}

// Compares what a fresh computation writes with the stored files, as it is written.
class CompareSink : public OutputSink {
 public:
  explicit CompareSink(std::string dir) : dir_(std::move(dir)) {}
  struct Verdict {
    bool missing = false;
    bool differs = false;
    int64_t line = 1;
  };
  std::unique_ptr<OutputFile> Create(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::make_unique<CompareFile>(dir_ + "/" + name, &verdicts_[name], &mutex_);
  }
  const std::map<std::string, Verdict>& verdicts() const { return verdicts_; }

 private:
  class CompareFile : public OutputFile {
   public:
    CompareFile(const std::string& path, Verdict* verdict, std::mutex* mutex)
        : in_(path, std::ios::binary), verdict_(verdict), mutex_(mutex) {
      mine_.missing = !in_;
    }
    void Write(std::string_view bytes) override {
      if (mine_.missing || mine_.differs) return;
      stored_.resize(bytes.size());
      in_.read(stored_.data(), static_cast<std::streamsize>(bytes.size()));
      const auto got = static_cast<size_t>(in_.gcount());
      for (size_t i = 0; i < bytes.size(); ++i) {
        if (i >= got || stored_[i] != bytes[i]) {
          mine_.differs = true;
          return;
        }
        if (bytes[i] == '\n') ++mine_.line;
      }
    }
    void Finish() override {
      if (!mine_.missing && !mine_.differs && in_.peek() != std::char_traits<char>::eof()) mine_.differs = true;
      std::lock_guard<std::mutex> lock(*mutex_);
      *verdict_ = mine_;
    }

   private:
    std::ifstream in_;
    Verdict* verdict_;
    std::mutex* mutex_;
    Verdict mine_;
    std::string stored_;
  };

  std::string dir_;
  std::mutex mutex_;
  std::map<std::string, Verdict> verdicts_;
};

}  // namespace

int RunVerify(const VerifyOptions& o, std::ostream& out, std::ostream& err) {
  PreparedRun run;
  if (int rc = LoadPolicy(o.rules_path, Language::kEnglish, &run, err)) return rc;
  const Policy& policy = run.policy.policy;
  run.period = PayoutPeriod::Parse(o.period, policy.months_per_period);
  if (!run.period) {
    err << "period '" << o.period << "' is not a period of " << policy.months_per_period << " month(s)\n";
    return kExitUsage;
  }
  const PayoutPeriod period = *run.period;
  Book book(o.book_dir, policy.months_per_period);
  std::vector<BookPeriod> all;
  std::string error;
  if (!book.ListPeriods(&all, &error)) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  auto target = std::find_if(all.begin(), all.end(), [&](const BookPeriod& bp) { return bp.period == period; });
  if (target == all.end()) {
    err << "the book has no period " << period.ToString() << "\n";
    return kExitRefused;
  }
  if (!VerifyChain(book, all, period, out, err)) return kExitDifferent;
  // The book as it stood before the period.
  std::vector<BookPeriod> before;
  for (const auto& bp : all) {
    if (bp.period < period) before.push_back(bp);
  }
  if (!book.ReadState(before, &run.book, &error)) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  run.periods = before;
  for (const auto& bp : before) {
    if (bp.closed && run.book.latest_closed && bp.period == *run.book.latest_closed) run.previous_manifest_sha256 = bp.manifest_sha256;
  }
  const char* tmp = std::getenv("TMPDIR");
  if (int rc = SettleFolder(o.data_dir, tmp && *tmp ? tmp : "/tmp", o.threads, 1'000'000'000, false, o.tuning, RunOptions{}, &run, err)) return rc;
  CompareSink sink(book.PeriodDir(period));
  std::string manifest;
  if (int rc = WriteFiles(o.rules_path, o.threads, o.tuning, target->closed, &run, &sink, &manifest, err)) return rc;
  for (const auto& [name, verdict] : sink.verdicts()) {
    if (name == "manifest.json.sig") continue;
    if (verdict.missing) {
      err << "missing: " << book.PeriodDir(period) << "/" << name << "\n";
      return kExitDifferent;
    }
    if (verdict.differs) {
      err << "differs: " << period.ToString() << "/" << name << " at line " << verdict.line
          << " (recomputed from the inputs and the book before " << period.ToString() << ")\n";
      return kExitDifferent;
    }
  }
  if (!o.pubkey.empty()) {
    std::string signature;
    const std::string dir = book.PeriodDir(period);
    if (!ReadWholeFile(dir + "/manifest.json.sig", &signature, &error)) {
      err << "unsigned: " << period.ToString() << " has no manifest.json.sig to check with --pubkey\n";
      return kExitDifferent;
    }
    if (!VerifySignature(o.pubkey, manifest, signature, &error)) {
      err << "bad signature: " << period.ToString() << "/manifest.json.sig: " << error << "\n";
      return kExitDifferent;
    }
    out << "signature ok: " << period.ToString() << "/manifest.json.sig\n";
  }
  out << "verified " << period.ToString() << (target->closed ? " (closed)" : " (draft)") << ": " << sink.verdicts().size()
      << " files byte-identical to a fresh computation; manifest " << Sha256Hex(manifest) << "\n";
  return kExitOk;
}

}  // namespace carecard
