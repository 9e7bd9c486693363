// libFuzzer target: the rules loader (rules/policy_loader.h) on arbitrary text.
//
// Oracles: never crash, throw, overflow the stack or hang; a result is either
// ok with no errors, or not ok with at least one and at most kMaxRuleErrors
// errors, each naming the file, with a
// message, and a line and column that are both 0 (the whole file) or both >= 1;
// a loaded policy has versions, each with card types that have a rule.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "rules/policy_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const carecard::PolicyLoadResult result = carecard::LoadPolicyFromText(text, "fuzz.yaml");
  if (result.ok) {
    FUZZ_CHECK(result.errors.empty(), "ok with errors");
    FUZZ_CHECK(!result.policy.versions.empty(), "a loaded policy without versions");
    for (const auto& version : result.policy.versions) {
      for (const auto& card_type : version.card_types) {
        FUZZ_CHECK(card_type.eligible != nullptr, "a card type without an eligibility rule");
      }
    }
    return 0;
  }
  FUZZ_CHECK(!result.errors.empty(), "not ok without an error");
  FUZZ_CHECK(result.errors.size() <= carecard::kMaxRuleErrors, "too many errors: " + std::to_string(result.errors.size()));
  for (const carecard::RuleError& e : result.errors) {
    FUZZ_CHECK(e.file == "fuzz.yaml", "an error naming another file: " + e.file);
    FUZZ_CHECK(!e.message.empty(), "an error without a message");
    FUZZ_CHECK((e.line == 0) == (e.column == 0) && e.line >= 0 && e.column >= 0, e.ToString());
  }
  return 0;
}
