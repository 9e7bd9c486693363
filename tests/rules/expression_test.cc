#include "rules/expression.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

// Counts every allocation through the global operator new, so that a test can
// check that evaluating a compiled rule allocates nothing. Sanitizers bring
// their own operator new, so under them the count is off and the test skips.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CARECARD_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CARECARD_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef CARECARD_COUNT_ALLOCATIONS
#define CARECARD_COUNT_ALLOCATIONS 1
#endif

namespace carecard {
namespace {
std::atomic<long> allocation_count{0};
}  // namespace
}  // namespace carecard

#if CARECARD_COUNT_ALLOCATIONS
// noinline: inlined into callers, GCC would pair a new-expression with free()
// and warn (-Wmismatched-new-delete) although the pair is ours and consistent.
__attribute__((noinline)) void* operator new(std::size_t size) {
  carecard::allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace carecard {
namespace {

HolderFacts Facts(int age, std::optional<int> assessment = std::nullopt, bool rural = true) {
  HolderFacts facts;
  facts.age = age;
  facts.assessment = assessment;
  facts.rural = rural;
  facts.urban = !rural;
  return facts;
}

std::shared_ptr<const EligibilityRule> Compile(std::string_view text) {
  ExpressionCompileResult result = CompileEligibilityExpression(text);
  EXPECT_FALSE(result.error) << text << ": " << (result.error ? result.error->message : "");
  EXPECT_TRUE(result.rule) << text;
  return result.rule;
}

bool Eval(std::string_view text, const HolderFacts& facts) {
  auto rule = Compile(text);
  return rule && rule->Evaluate(facts);
}

ExpressionError CompileError(std::string_view text, Language language = Language::kEnglish) {
  ExpressionCompileResult result = CompileEligibilityExpression(text, language);
  EXPECT_TRUE(result.error) << "expected an error for: " << text;
  EXPECT_FALSE(result.rule) << text;
  return result.error.value_or(ExpressionError{0, "(no error)"});
}

TEST(expression, or_is_looser_than_and) {
  HolderFacts facts = Facts(70);
  facts.rural = true;
  facts.urban = false;
  // rural or (urban and dibao) is true; (rural or urban) and dibao would be false.
  EXPECT_TRUE(Eval("rural or urban and dibao", facts));
  EXPECT_FALSE(Eval("(rural or urban) and dibao", facts));
}

TEST(expression, not_binds_tighter_than_and_but_looser_than_comparisons) {
  HolderFacts facts = Facts(85);
  facts.rural = true;
  facts.urban = false;
  // not rural and urban == (not rural) and urban.
  EXPECT_FALSE(Eval("not rural and urban", facts));
  EXPECT_TRUE(Eval("not (rural and urban)", facts));
  // not age >= 80 == not (age >= 80).
  EXPECT_FALSE(Eval("not age >= 80", Facts(85)));
  EXPECT_TRUE(Eval("not age >= 80", Facts(79)));
  EXPECT_TRUE(Eval("not not rural", facts));
}

TEST(expression, chained_comparison_reads_as_in_mathematics) {
  auto rule = Compile("60 <= age < 80");
  ASSERT_TRUE(rule);
  EXPECT_FALSE(rule->Evaluate(Facts(59)));
  EXPECT_TRUE(rule->Evaluate(Facts(60)));
  EXPECT_TRUE(rule->Evaluate(Facts(79)));
  EXPECT_FALSE(rule->Evaluate(Facts(80)));
  // A chain is not ((60 <= age) < 80), which would not even type-check.
  EXPECT_TRUE(Eval("80 > age >= 60 > 1", Facts(70)));
  EXPECT_FALSE(Eval("1 < 2 < 2", Facts(70)));
}

TEST(expression, every_comparison_operator_compares_numbers) {
  const HolderFacts facts = Facts(60);
  EXPECT_TRUE(Eval("age < 61", facts));
  EXPECT_FALSE(Eval("age < 60", facts));
  EXPECT_TRUE(Eval("age <= 60", facts));
  EXPECT_FALSE(Eval("age <= 59", facts));
  EXPECT_TRUE(Eval("age > 59", facts));
  EXPECT_FALSE(Eval("age > 60", facts));
  EXPECT_TRUE(Eval("age >= 60", facts));
  EXPECT_FALSE(Eval("age >= 61", facts));
  EXPECT_TRUE(Eval("age == 60", facts));
  EXPECT_FALSE(Eval("age == 61", facts));
  EXPECT_TRUE(Eval("age != 61", facts));
  EXPECT_FALSE(Eval("age != 60", facts));
}

TEST(expression, booleans_compare_with_equality_only) {
  HolderFacts facts = Facts(70);
  EXPECT_TRUE(Eval("rural == true", facts));
  EXPECT_TRUE(Eval("rural != urban", facts));
  EXPECT_FALSE(Eval("rural == urban", facts));
  EXPECT_TRUE(Eval("(age >= 60) == rural", facts));
  EXPECT_TRUE(Eval("true", facts));
  EXPECT_FALSE(Eval("false", facts));
}

TEST(expression, a_comparison_with_an_absent_assessment_is_false) {
  const HolderFacts none = Facts(70, std::nullopt);
  EXPECT_FALSE(Eval("assessment >= 2", none));
  EXPECT_FALSE(Eval("assessment < 2", none));
  EXPECT_FALSE(Eval("assessment == 3", none));
  EXPECT_FALSE(Eval("assessment != 3", none));  // != too
  EXPECT_FALSE(Eval("0 <= assessment", none));
  EXPECT_TRUE(Eval("not (assessment >= 2)", none));
  EXPECT_FALSE(Eval("has_assessment", none));
  // Present, the same expressions behave as plain comparisons.
  const HolderFacts two = Facts(70, 2);
  EXPECT_TRUE(Eval("assessment >= 2", two));
  EXPECT_TRUE(Eval("assessment != 3", two));
  EXPECT_FALSE(Eval("not (assessment >= 2)", two));
  EXPECT_TRUE(Eval("has_assessment", two));
}

TEST(expression, each_person_flag_is_its_own_boolean) {
  for (int i = 0; i < kPersonFlagCount; ++i) {
    const std::string name(PersonFlagName(i));
    auto rule = Compile(name);
    ASSERT_TRUE(rule) << name;
    for (int j = 0; j < kPersonFlagCount; ++j) {
      HolderFacts facts = Facts(70);
      facts.flags = 1u << j;
      EXPECT_EQ(rule->Evaluate(facts), i == j) << name << " with flag bit " << j;
    }
  }
}

TEST(expression, rural_and_urban_come_from_the_facts) {
  HolderFacts facts = Facts(70);
  facts.rural = false;
  facts.urban = true;
  EXPECT_FALSE(Eval("rural", facts));
  EXPECT_TRUE(Eval("urban", facts));
}

TEST(expression, the_qingdao_rules_select_the_right_elders) {
  auto type2 = Compile("rural and (age >= 80 or (age >= 60 and assessment >= 2))");
  ASSERT_TRUE(type2);
  EXPECT_TRUE(type2->Evaluate(Facts(80)));
  EXPECT_FALSE(type2->Evaluate(Facts(79)));
  EXPECT_TRUE(type2->Evaluate(Facts(60, 2)));
  EXPECT_FALSE(type2->Evaluate(Facts(60, 1)));
  EXPECT_FALSE(type2->Evaluate(Facts(59, 3)));
  EXPECT_FALSE(type2->Evaluate(Facts(85, 3, /*rural=*/false)));
}

TEST(expression, source_is_the_text_as_written) {
  auto rule = Compile("rural  and age>=60");
  ASSERT_TRUE(rule);
  EXPECT_EQ(rule->source(), "rural  and age>=60");
}

TEST(expression, explain_lists_every_leaf_with_its_value_and_result) {
  auto rule = Compile("rural and age >= 60");
  ASSERT_TRUE(rule);
  EXPECT_EQ(rule->Explain(Facts(59)), "rural = true; age >= 60: age is 59 -> false");
  EXPECT_EQ(rule->Explain(Facts(61, std::nullopt, false)), "rural = false; age >= 60: age is 61 -> true");
}

TEST(expression, explain_shows_absent_values_and_each_link_of_a_chain) {
  auto rule = Compile("60 <= age < 80 or assessment >= 2");
  ASSERT_TRUE(rule);
  EXPECT_EQ(rule->Explain(Facts(85)),
            "60 <= age: age is 85 -> true; age < 80: age is 85 -> false; "
            "assessment >= 2: assessment is absent -> false");
}

TEST(expression, explain_of_a_literal_still_says_something) {
  auto rule = Compile("true");
  ASSERT_TRUE(rule);
  EXPECT_EQ(rule->Explain(Facts(70)), "true -> true");
}

TEST(expression, evaluation_allocates_nothing) {
  if (!CARECARD_COUNT_ALLOCATIONS) GTEST_SKIP() << "allocation counting is off under sanitizers";
  const long before_compile = allocation_count.load();
  auto rule = Compile("rural and (60 <= age < 80 or (age >= 60 and assessment >= 2)) and not dibao");
  ASSERT_TRUE(rule);
  ASSERT_GT(allocation_count.load(), before_compile) << "the counter must see compilation allocate";
  const HolderFacts facts = Facts(75, 2);
  const long before = allocation_count.load();
  bool any = false;
  for (int i = 0; i < 1000; ++i) any = rule->Evaluate(facts) || any;
  EXPECT_EQ(allocation_count.load(), before);
  EXPECT_TRUE(any);
}

TEST(expression, ordering_a_boolean_is_a_type_error_at_the_boolean) {
  const ExpressionError error = CompileError("rural >= 3");
  EXPECT_EQ(error.position, 1);
  EXPECT_EQ(error.message, "'>=' compares numbers, but 'rural' at position 1 is a boolean");
  EXPECT_EQ(CompileError("1 < rural").position, 5);
}

TEST(expression, equality_of_a_number_and_a_boolean_points_at_the_operator) {
  const ExpressionError error = CompileError("age == rural");
  EXPECT_EQ(error.position, 5);
  EXPECT_EQ(error.message, "'==' at position 5 compares a number with a boolean ('age' and 'rural')");
}

TEST(expression, logic_on_a_number_is_a_type_error_at_the_number) {
  EXPECT_EQ(CompileError("age and rural").position, 1);
  const ExpressionError error = CompileError("rural and age");
  EXPECT_EQ(error.position, 11);
  EXPECT_EQ(error.message, "'and' takes booleans, but 'age' at position 11 is a number");
  EXPECT_EQ(CompileError("rural or (assessment)").position, 10);
  EXPECT_EQ(CompileError("not age").position, 5);
}

TEST(expression, the_whole_expression_must_be_a_boolean) {
  const ExpressionError error = CompileError("age");
  EXPECT_EQ(error.position, 1);
  EXPECT_EQ(error.message,
            "the expression 'age' is a number, not a condition; expected a boolean such as 'age >= 60'");
}

TEST(expression, unknown_variable_suggests_the_nearest_name) {
  const ExpressionError error = CompileError("rural and (age >= 80 or (age >= 60 and assesment >= 2))");
  EXPECT_EQ(error.position, 40);
  EXPECT_EQ(error.message, "unknown variable 'assesment' at position 40; did you mean 'assessment'?");
  EXPECT_EQ(CompileError("livingalone").message, "unknown variable 'livingalone' at position 1; did you mean 'living_alone'?");
  EXPECT_EQ(CompileError("rural and ture").message, "unknown variable 'ture' at position 11; did you mean 'true'?");
}

TEST(expression, a_name_far_from_every_variable_gets_no_suggestion) {
  const ExpressionError error = CompileError("income > 1000");
  EXPECT_EQ(error.message, "unknown variable 'income' at position 1");
}

TEST(expression, a_misspelt_connective_suggests_and_or_or) {
  const ExpressionError error = CompileError("rural adn age >= 60");
  EXPECT_EQ(error.position, 7);
  EXPECT_EQ(error.message,
            "unexpected 'adn' at position 7; expected 'and', 'or', a comparison or the end of the expression; "
            "did you mean 'and'?");
}

TEST(expression, c_style_and_full_width_operators_get_a_hint) {
  EXPECT_EQ(CompileError("age = 60").message, "unexpected character '=' at position 5; did you mean '=='?");
  EXPECT_EQ(CompileError("rural && age > 1").message, "unexpected character '&' at position 7; did you mean 'and'?");
  EXPECT_EQ(CompileError("!rural").message, "unexpected character '!' at position 1; did you mean 'not'?");
  const ExpressionError wide = CompileError("age ≥ 60");
  EXPECT_EQ(wide.position, 5);
  EXPECT_EQ(wide.message, "unexpected character '≥' at position 5; did you mean '>='?");
  EXPECT_EQ(CompileError("rural and （age > 60）").message,
            "unexpected character '（' at position 11; did you mean '('?");
}

TEST(expression, syntax_errors_name_the_position) {
  EXPECT_EQ(CompileError("rural and").message,
            "the expression ends at position 10; expected a value (a number, true, false, a variable or '(')");
  EXPECT_EQ(CompileError("(rural and urban").message, "'(' at position 1 is never closed; expected ')'");
  EXPECT_EQ(CompileError("rural)").message, "')' at position 6 closes nothing; no '(' is open");
  EXPECT_EQ(CompileError("rural and and").position, 11);
  EXPECT_EQ(CompileError("age >= >= 60").position, 8);
  EXPECT_EQ(CompileError("age >= 60 70").position, 11);
  EXPECT_EQ(CompileError("age >= 60.5").position, 10);
  EXPECT_EQ(CompileError("age >= -1").position, 8);
  EXPECT_EQ(CompileError("age >= 60years").position, 10);
}

TEST(expression, empty_and_oversized_expressions_are_errors) {
  EXPECT_EQ(CompileError("   ").message, "the expression is empty; expected a condition such as 'age >= 60'");
  EXPECT_EQ(CompileError("age > 99999999999").message, "the number 99999999999 at position 7 is too large");
  std::string deep;
  for (int i = 0; i < kMaxExpressionDepth + 1; ++i) deep += "(";
  deep += "rural";
  for (int i = 0; i < kMaxExpressionDepth + 1; ++i) deep += ")";
  EXPECT_NE(CompileError(deep).message.find("nests more than 64 levels"), std::string::npos);
  std::string long_text = "rural";
  while (long_text.size() <= kMaxExpressionBytes) long_text += " and rural";
  EXPECT_EQ(CompileError(long_text).message, "the expression is longer than 4096 bytes");
}

TEST(expression, nesting_up_to_the_limit_compiles) {
  std::string deep;
  for (int i = 0; i < kMaxExpressionDepth; ++i) deep += "(";
  deep += "rural";
  for (int i = 0; i < kMaxExpressionDepth; ++i) deep += ")";
  EXPECT_TRUE(Eval(deep, Facts(70)));
}

TEST(expression, long_chains_of_and_stay_shallow) {
  // n-ary and/or: 300 terms neither hit the depth limit nor recurse 300 deep.
  std::string text = "rural";
  for (int i = 0; i < 300; ++i) text += " and age >= 1";
  ASSERT_LE(text.size(), kMaxExpressionBytes);
  EXPECT_TRUE(Eval(text, Facts(70)));
}

TEST(expression, errors_read_in_chinese_too) {
  EXPECT_EQ(CompileError("rural and agee >= 60", Language::kChinese).message,
            "位置 11 处的变量 'agee' 未知;是否应为 'age'?");
  EXPECT_EQ(CompileError("rural >= 3", Language::kChinese).message,
            "'>=' 比较的是数字,但位置 1 处的 'rural' 是布尔值");
}

TEST(expression, variable_names_cover_every_person_flag) {
  const auto names = ExpressionVariableNames();
  ASSERT_EQ(names.size(), static_cast<size_t>(5 + kPersonFlagCount));
  for (int i = 0; i < kPersonFlagCount; ++i) EXPECT_EQ(names[static_cast<size_t>(5 + i)], PersonFlagName(i));
}

TEST(expression, explain_speaks_the_language_the_rule_was_compiled_in) {
  HolderFacts facts;
  facts.age = 73;
  facts.rural = true;
  auto en = CompileEligibilityExpression("rural and age >= 80 and assessment >= 2", Language::kEnglish);
  auto zh = CompileEligibilityExpression("rural and age >= 80 and assessment >= 2", Language::kChinese);
  ASSERT_TRUE(en.rule && zh.rule);
  EXPECT_EQ(en.rule->Explain(facts),
            "rural = true; age >= 80: age is 73 -> false; assessment >= 2: assessment is absent -> false");
  EXPECT_EQ(zh.rule->Explain(facts),
            "rural = 成立; age >= 80: age 为 73 -> 不成立; assessment >= 2: assessment 为 缺失 -> 不成立");
}

}  // namespace
}  // namespace carecard
