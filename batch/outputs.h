// The settlement files of formats.md, rendered from a SettlementResult, and the
// manifest of semantics.md §9. Rendering is byte-deterministic: no clock, no
// locale, no host, no thread count enters the bytes.
#ifndef CARECARD_BATCH_OUTPUTS_H_
#define CARECARD_BATCH_OUTPUTS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapters/data_folder.h"
#include "engine/policy.h"
#include "engine/settlement.h"

namespace carecard {

// File name -> bytes, for the seven CSV files (not the manifest).
// With `threads` above 1 the files are rendered concurrently; the bytes are the same.
std::map<std::string, std::string> RenderSettlementFiles(const PayoutPeriod& period, const Registry& registry,
                                                         const SettlementResult& result, int threads = 1);

struct ManifestInputs {
  std::string engine_version;
  std::string engine_build;
  const Policy* policy = nullptr;
  std::string rules_file;    // name without folder
  std::string rules_sha256;
  PayoutPeriod period = PayoutPeriod::Containing(YearMonth::Of(2024, 1), 2);
  std::string book_first_period;
  bool closed = false;
  std::vector<InputFileInfo> inputs;
  std::vector<FileCounts> counts;
  std::optional<std::string> previous_manifest_sha256;
};

// The manifest's bytes (JSON, keys in a fixed order, two-space indent, final LF).
std::string RenderManifest(const ManifestInputs& in, const std::map<std::string, std::string>& outputs,
                           const SettlementResult& result);

}  // namespace carecard

#endif  // CARECARD_BATCH_OUTPUTS_H_
