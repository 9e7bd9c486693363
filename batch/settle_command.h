// The `settle`, `explain` and `verify` commands over the embedded file book
// (cli.md). Each returns the process exit status: 0 done, 1 bad usage, 2 the
// rules or inputs refuse the run (nothing written), 3 the period is closed or
// out of order, or another run holds the book; 4 (verify only) a difference was found.
#ifndef CARECARD_BATCH_SETTLE_COMMAND_H_
#define CARECARD_BATCH_SETTLE_COMMAND_H_

#include <cstdint>
#include <iosfwd>
#include <string>

#include "rules/policy_loader.h"

namespace carecard {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitRefused = 2;
inline constexpr int kExitClosed = 3;
inline constexpr int kExitDifferent = 4;  // verify: a file or a link of the chain differs

struct SettleOptions {
  std::string data_dir;
  std::string rules_path;
  std::string book_dir;
  std::string period;
  bool close = false;
  int threads = 1;
  int64_t max_rejects = 1'000'000;
  bool progress = false;  // progress lines on stderr (a terminal)
  std::string sign_key;   // when set, manifest.json.sig holds an Ed25519 signature of the manifest
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
};
int RunVerify(const VerifyOptions& options, std::ostream& out, std::ostream& err);

std::string EngineVersion();

}  // namespace carecard

#endif  // CARECARD_BATCH_SETTLE_COMMAND_H_
