// The `settle`, `explain` and `verify` commands over the embedded file book
// (cli.md). Each returns the process exit status: 0 done, 1 bad usage, 2 the
// rules or inputs refuse the run (nothing written), 3 the period is closed or
// out of order, or another run holds the book; 4 (verify only) a difference was found.
#ifndef CARECARD_BATCH_SETTLE_COMMAND_H_
#define CARECARD_BATCH_SETTLE_COMMAND_H_

#include <algorithm>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/data_folder.h"
#include "batch/book.h"
#include "batch/outputs.h"
#include "engine/settlement.h"
#include "engine/spill.h"
#include "rules/policy_loader.h"

namespace carecard {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitRefused = 2;
inline constexpr int kExitClosed = 3;
inline constexpr int kExitDifferent = 4;  // verify: a file or a link of the chain differs

// How a run cuts its work: sizes that change memory use and speed, never a
// result (tests settle with extreme values and compare every byte). Each is
// clamped to its range; the defaults suit a 2-core machine.
struct RunTuning {
  enum class Spill { kAuto, kMemory, kFile };
  Spill spill = Spill::kAuto;                 // kAuto: a temporary file from 32 MiB of transaction files
  uint64_t partition_bytes = 3u << 20;        // spilled bytes per elder partition, 1 KiB .. 1 GiB
  size_t exception_budget_bytes = 2u << 20;   // per exception log before it spills a sorted run, 1 KiB .. 256 MiB
  size_t block_bytes = size_t{4} << 20;       // bytes per parsed block of a transaction file, 64 KiB (a row) .. 64 MiB
  size_t render_rows = kDefaultRowsPerPiece;  // rows per rendered piece of an output file, 1 .. 1,048,576

  // CARECARD_SPILL=memory|file, CARECARD_PARTITION_KB, CARECARD_EXCEPTION_KB,
  // CARECARD_BLOCK_KB, CARECARD_RENDER_ROWS (benchmarks and experiments; bench/README.md). A value
  // that is not a number is ignored; numbers are clamped.
  static RunTuning FromEnvironment();
  RunTuning Clamped() const;
};

// The thread count of a run not given --threads: every CPU the process may
// use, at most kMaxDefaultThreads. A settlement's files never depend on it
// (semantics.md §9); each thread holds its own spill buffers and consumption
// sums (README "Resources and limits"), so a large server takes eight unless
// told otherwise, and more threads than that mostly wait for the one that
// reads and hashes the files.
inline constexpr int kMaxDefaultThreads = 8;
// The CPUs this process may run on: its affinity mask, lowered to its cgroup's
// CPU quota where one is set, as in a container given `--cpus` (cgroup v2
// `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, of its own group
// and every parent; rounded up). At least 1.
int UsableCpus();
// ceil(quota / period) of "QUOTA PERIOD", as in a cgroup v2 `cpu.max`
// ("200000 100000" -> 2), or nullopt for "max ..." and v1's "-1 ..." (no
// quota) and for anything it cannot read.
std::optional<int> CpusOfCgroupQuota(std::string_view cpu_max);
// The lowest CPU quota, in CPUs rounded up, of the groups that
// `proc_self_cgroup` (the text of /proc/self/cgroup) names, and their parents,
// in the cgroup file system mounted at `cgroup_root` (/sys/fs/cgroup; v2, or
// v1's cpu controller at cgroup_root/cpu or cpu,cpuacct); nullopt for none.
// In a container the hierarchy's root is often the container's own group and
// the path beneath it the host's: the walk up from a missing group reaches it.
std::optional<int> CgroupCpuLimit(std::string_view proc_self_cgroup, const std::string& cgroup_root);
inline int DefaultThreadCount(int usable_cpus) { return std::clamp(usable_cpus, 1, kMaxDefaultThreads); }

struct SettleOptions {
  std::string data_dir;
  std::string rules_path;
  std::string book_dir;
  std::string period;
  bool close = false;
  int threads = 1;  // the command line's default is DefaultThreadCount(UsableCpus())
  int64_t max_rejects = 1'000'000;
  bool progress = false;  // progress lines on stderr (a terminal)
  std::string sign_key;   // when set, manifest.json.sig holds an Ed25519 signature of the manifest
  std::string temp_dir;   // where spilled records go; empty: the book folder
  RunTuning tuning;
  Language language = Language::kEnglish;
};

int RunSettle(const SettleOptions& options, std::ostream& out, std::ostream& err);

struct ExplainOptions {
  std::string data_dir, rules_path, book_dir, card_no, month;
  bool json = false;
  Language language = Language::kEnglish;
};
int RunExplain(const ExplainOptions& options, std::ostream& out, std::ostream& err);

struct VerifyOptions {
  std::string data_dir, rules_path, book_dir, period;
  std::string pubkey;  // when set, the period's manifest.json.sig must verify with it
  int threads = 2;     // the command line's default is DefaultThreadCount(UsableCpus())
  RunTuning tuning;
};
int RunVerify(const VerifyOptions& options, std::ostream& out, std::ostream& err);

std::string EngineVersion();
// The compiler and build type the engine was built with, e.g. "GNU 12.2.0 Release".
std::string EngineBuild();

// The steps of a settlement shared by the file book (RunSettle) and the
// PostgreSQL store (batch/db_command.h): everything but where inputs come
// from and where results go.

// Everything a run computes, up to (not including) writing the book.
struct PreparedRun {
  PolicyLoadResult policy;
  std::string rules_sha256;
  std::optional<PayoutPeriod> period;
  std::vector<BookPeriod> periods;
  BookState book;
  std::vector<InputFileInfo> inputs;
  std::optional<std::string> previous_manifest_sha256;
  RunResult result;
};

// Loads and checks the rules file into run->policy and run->rules_sha256.
// Returns kExitOk, or kExitRefused after printing the errors to `err`.
int LoadPolicy(const std::string& path, Language language, PreparedRun* run, std::ostream& err);

// Where a run keeps its spilled records: unnamed temporary files in `dir`
// (FileSpillStore; the run makes a second such store for its events) for runs
// large enough to need it (or as `mode` forces), else memory. False
// with *error when no temporary file can be made.
bool MakeSpill(const std::string& dir, uint64_t transaction_bytes, RunTuning::Spill mode, std::unique_ptr<SpillStore>* spill,
               std::string* error);

// Reads the data folder into a SettlementRun and settles it into run->result
// (REQUIRES: run->policy, run->period, run->book). Returns kExitOk, or
// kExitRefused with a message.
int SettleFolder(const std::string& data_dir, const std::string& spill_dir, int threads, int64_t max_rejects, bool progress,
                 const RunTuning& tuning, const RunOptions& extra, PreparedRun* run, std::ostream& err);

// The refusal of --max-rejects on the final counts: kExitOk or kExitRefused with a message.
int CheckRejects(const PreparedRun& run, int64_t max_rejects, const std::string& where, std::ostream& err);

// Renders every file of the settled run into `sink`, the manifest last, and
// returns the manifest's bytes in *manifest. Returns kExitOk, or kExitRefused with a message.
int WriteFiles(const std::string& rules_path, int threads, const RunTuning& tuning, bool close, PreparedRun* run,
               OutputSink* sink, std::string* manifest, std::ostream& err);

// The refusals of semantics.md §7 against run.book and run.periods: a closed
// or earlier period, a close out of order or over an unclosed draft. Returns
// kExitOk, or kExitClosed after printing why to `err`.
int CheckPeriodOrder(const PayoutPeriod& period, bool close, const PreparedRun& run, std::ostream& err);

// The summary `settle` prints: totals and exceptions by code. `where` names the destination.
void PrintSummary(const PayoutPeriod& period, bool closed, const RunResult& r, const std::string& where, std::ostream& out);

// Wall-clock time (UTC, ISO 8601) and host name, for run logs only: never in a period's files.
std::string NowUtc();
std::string HostName();

}  // namespace carecard

#endif  // CARECARD_BATCH_SETTLE_COMMAND_H_
