// Eligibility expressions (rules.md "Eligibility expressions").
//
// A small, safe language over a holder's facts for one month:
//   literals   whole numbers, true, false
//   variables  age, assessment (may be absent), has_assessment, rural, urban and
//              one boolean per person flag (left_behind, living_alone, ...)
//   operators  loosest first: or, and, not, then < <= > >= == != ; parentheses
// A chain of comparisons reads as in mathematics: `60 <= age < 80` means
// `60 <= age and age < 80`. Types are checked when compiling: age, assessment
// and numbers are numbers, everything else is a boolean; the ordering operators
// compare numbers, == and != compare two values of one type, not/and/or take
// booleans, and the whole expression must be a boolean. Any comparison with an
// absent value (an absent assessment) is false, == and != alike, so
// `not (assessment >= 2)` holds for someone with no valid assessment.
//
// An expression is compiled once into a flat array of nodes; evaluating it
// allocates nothing and touches only that array. A compiled rule is immutable
// and safe to evaluate from many threads.
#ifndef CARECARD_RULES_EXPRESSION_H_
#define CARECARD_RULES_EXPRESSION_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/policy.h"
#include "rules/messages.h"

namespace carecard {

// Limits on an expression's text and on how deeply parentheses and `not` nest
// (the compiler and evaluator recurse once per level).
inline constexpr size_t kMaxExpressionBytes = 4096;
inline constexpr int kMaxExpressionDepth = 64;

struct ExpressionError {
  // 1-based position of the offending token inside the expression, counted in
  // characters (code points), not bytes.
  int position = 1;
  // What was found and what was expected, in the requested language; names the
  // position itself ("unknown variable 'assesment' at position 40; did you mean
  // 'assessment'?").
  std::string message;
};

struct ExpressionCompileResult {
  std::shared_ptr<const EligibilityRule> rule;  // null exactly when error is set
  std::optional<ExpressionError> error;         // the first error in the text
};

// Compiles `source`. Reports the first error found (syntax, unknown name or
// type) and never throws on bad input. `language` is that of the error and of
// the compiled rule's Explain ("age >= 60: age is 73 -> true" or
// "age >= 60: age 为 73 -> 成立").
ExpressionCompileResult CompileEligibilityExpression(std::string_view source,
                                                     Language language = Language::kEnglish);

// Every variable name the language knows, for documentation and suggestions.
std::span<const std::string_view> ExpressionVariableNames();

}  // namespace carecard

#endif  // CARECARD_RULES_EXPRESSION_H_
