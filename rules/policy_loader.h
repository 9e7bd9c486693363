// Loading and validating `subsidy-rules/1` policy files (rules.md).
//
// A policy is validated completely before any input is read: every error in the
// file is reported at once, each with the file, line and column, what was found,
// what was expected and, for a misspelt key or variable, the nearest valid name.
// Amounts are read from the YAML scalar's text, never through a binary float.
#ifndef CARECARD_RULES_POLICY_LOADER_H_
#define CARECARD_RULES_POLICY_LOADER_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "engine/policy.h"
#include "rules/messages.h"

namespace carecard {

struct RuleError {
  std::string file;  // as given by the caller (the path on the command line)
  int line = 0;      // 1-based
  int column = 0;    // 1-based
  std::string message;
  // "file:line:col: message"; "file: message" when line is 0 (the file as a whole).
  std::string ToString() const;
};

struct PolicyLoadResult {
  bool ok = false;
  Policy policy;                  // valid only when ok
  std::vector<RuleError> errors;  // every error found, in file order
};

// The largest policy file accepted; policies are a few kilobytes.
inline constexpr size_t kMaxPolicyFileBytes = 1 << 20;
// The most errors reported for one file; past this the file is hopeless and
// the list would only hide the first, most useful errors.
inline constexpr size_t kMaxRuleErrors = 500;

// Parses and validates policy text. `file_name` is used in error messages.
// Columns count characters (code points), 1-based. Never throws on bad input.
PolicyLoadResult LoadPolicyFromText(std::string_view text, const std::string& file_name,
                                    Language language = Language::kEnglish);
// Reads `path` and loads it; an unreadable file is one error at line 0.
PolicyLoadResult LoadPolicyFromFile(const std::string& path, Language language = Language::kEnglish);

}  // namespace carecard

#endif  // CARECARD_RULES_POLICY_LOADER_H_
