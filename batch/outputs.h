// The settlement files of formats.md, rendered from a RunResult, and the
// manifest of semantics.md §9. Rendering is byte-deterministic: no clock, no
// locale, no host, no thread count enters the bytes.
//
// Files stream into an OutputSink in buffers of bounded size, hashed
// (SHA-256) and counted as they go: nothing holds a whole file in memory
// unless the sink does (MemoryOutputSink, for the PostgreSQL store and tests).
#ifndef CARECARD_BATCH_OUTPUTS_H_
#define CARECARD_BATCH_OUTPUTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/data_folder.h"
#include "engine/book_state.h"
#include "engine/policy.h"
#include "engine/settlement.h"

namespace carecard {

// One file of a period being written. Write and Finish throw std::runtime_error on failure.
class OutputFile {
 public:
  virtual ~OutputFile() = default;
  virtual void Write(std::string_view bytes) = 0;
  virtual void Finish() = 0;
};

// Where a period's files go. Create is thread-safe; a file is written by one
// thread at a time (not always the same one: writers hand files over under a lock).
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual std::unique_ptr<OutputFile> Create(const std::string& name) = 0;
};

// Keeps every file in memory, by name.
class MemoryOutputSink : public OutputSink {
 public:
  std::unique_ptr<OutputFile> Create(const std::string& name) override;
  std::map<std::string, std::string>& files() { return files_; }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> files_;
};

// What the manifest says of an output file.
struct OutputInfo {
  std::string file;
  uint64_t bytes = 0;
  int64_t lines = 0;  // LF bytes; the manifest's rows are lines - 1 (the header)
  std::string sha256;
};

// Writes the seven CSV files of the period into `sink`. With `threads` > 1,
// the files are cut into pieces of `rows_per_piece` rows rendered on that many
// threads while the calling thread and up to threads - 1 helpers hash and
// write them, each file in order and by one writer at a time; the bytes
// are the same whatever the threads and the cut. Returns the files by name.
inline constexpr size_t kDefaultRowsPerPiece = 8192;
std::vector<OutputInfo> RenderSettlementFiles(const PayoutPeriod& period, const Policy& policy, const RunResult& run,
                                              const BookState& book, OutputSink* sink, int threads = 1,
                                              size_t rows_per_piece = kDefaultRowsPerPiece);

// Writes `bytes` as one file of `sink`, and describes it.
OutputInfo WriteWholeFile(OutputSink* sink, const std::string& name, std::string_view bytes);

struct ManifestInputs {
  std::string engine_version;
  std::string engine_build;
  const Policy* policy = nullptr;
  std::string rules_file;  // name without folder
  std::string rules_sha256;
  PayoutPeriod period = PayoutPeriod::Containing(YearMonth::Of(2024, 1), 2);
  std::string book_first_period;
  bool closed = false;
  std::vector<InputFileInfo> inputs;
  std::vector<FileCounts> counts;
  std::optional<std::string> previous_manifest_sha256;
};

// The manifest's bytes (JSON, keys in a fixed order, two-space indent, final LF).
std::string RenderManifest(const ManifestInputs& in, const std::vector<OutputInfo>& outputs, const SettlementResult& result);

}  // namespace carecard

#endif  // CARECARD_BATCH_OUTPUTS_H_
