// libFuzzer target: the eligibility expression compiler (rules/expression.h).
//
// Oracles: never crash, throw, overflow the stack or hang; exactly one of a rule
// or an error; an error has a message and a position inside the text (1 to one
// past its last character); a compiled rule evaluates and explains itself for
// holders at the edges (no age, very old, no assessment, every flag).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "engine/policy.h"
#include "fuzz/fuzz_util.h"
#include "rules/expression.h"

namespace {

// Code points in a string (lead bytes; invalid bytes count one each, as a lenient reader would).
int CodePoints(std::string_view text) {
  int n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  for (carecard::Language language : {carecard::Language::kEnglish, carecard::Language::kChinese}) {
    const carecard::ExpressionCompileResult result = carecard::CompileEligibilityExpression(source, language);
    FUZZ_CHECK((result.rule != nullptr) != result.error.has_value(), "exactly one of rule and error");
    if (result.error) {
      FUZZ_CHECK(!result.error->message.empty(), "an error without a message");
      FUZZ_CHECK(result.error->position >= 1, "error position " + std::to_string(result.error->position));
      // Invalid UTF-8 may be counted either way; allow for it.
      FUZZ_CHECK(result.error->position <= static_cast<int>(size) + 1,
                 "error position " + std::to_string(result.error->position) + " past the text of " +
                     std::to_string(CodePoints(source)) + " characters");
      continue;
    }
    FUZZ_CHECK(result.rule->source() == source, "the rule keeps its source");
    const int ages[] = {0, 59, 60, 80, 150, std::numeric_limits<int>::max()};
    for (int age : ages) {
      for (int assessment = -1; assessment <= 4; ++assessment) {
        carecard::HolderFacts facts;
        facts.age = age;
        if (assessment >= 0) facts.assessment = assessment;
        facts.rural = (age & 1) == 0;
        facts.urban = !facts.rural;
        facts.flags = assessment < 0 ? 0u : (1u << carecard::kPersonFlagCount) - 1;
        const bool held = result.rule->Evaluate(facts);
        FUZZ_CHECK(held == result.rule->Evaluate(facts), "evaluation is deterministic");
        (void)result.rule->Explain(facts);
      }
    }
  }
  return 0;
}
