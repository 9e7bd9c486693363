#include "rules/explain_render.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace carecard {
namespace {

// The distinct placeholders of a template ({0} may appear twice in one language only).
std::set<std::string> Placeholders(std::string_view text) {
  std::set<std::string> out;
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    if (text[i] == '{' && text[i + 2] == '}') out.insert(std::string(text.substr(i, 3)));
  }
  return out;
}

bool HasChinese(std::string_view text) {
  // Every CJK Unified Ideograph is 3 bytes in UTF-8, lead byte 0xE4..0xE9.
  for (unsigned char c : text) {
    if (c >= 0xE4 && c <= 0xE9) return true;
  }
  return false;
}

TEST(explain_render, every_step_kind_has_english_and_chinese_with_the_same_arguments) {
  for (int i = 0; i < kExplainStepKindCount; ++i) {
    const auto kind = static_cast<ExplainStepKind>(i);
    const std::string_view english = ExplainTemplate(kind, Language::kEnglish);
    const std::string_view chinese = ExplainTemplate(kind, Language::kChinese);
    EXPECT_FALSE(english.empty()) << ExplainStepKindName(kind);
    EXPECT_TRUE(HasChinese(chinese)) << ExplainStepKindName(kind) << ": " << chinese;
    EXPECT_FALSE(HasChinese(english)) << ExplainStepKindName(kind) << ": " << english;
    EXPECT_EQ(Placeholders(english), Placeholders(chinese)) << ExplainStepKindName(kind);
  }
}

TEST(explain_render, a_threshold_step_reads_as_a_sentence_in_both_languages) {
  const ExplainStep step{ExplainStepKind::kThresholdNotMet, {"1", "99.99", "100.00"}};
  EXPECT_EQ(RenderExplainStep(step, Language::kEnglish), "check 5, type 1 deposit: net deposit 99.99 < minimum 100.00");
  EXPECT_EQ(RenderExplainStep(step, Language::kChinese), "第 5 项检查,第 1 类缴存标准:净缴存 99.99 < 最低 100.00,未达到");
}

TEST(explain_render, optional_arguments_become_phrases) {
  EXPECT_EQ(RenderExplainStep({ExplainStepKind::kCard, {"QD0001", "1", "C01", "2022-06-01", ""}}, Language::kEnglish),
            "card QD0001: type 1, centre C01, issued 2022-06-01, open");
  EXPECT_EQ(RenderExplainStep({ExplainStepKind::kCard, {"QD0001", "1", "C01", "2022-06-01", "2024-03-31"}},
                              Language::kChinese),
            "卡 QD0001:第 1 类,所属中心 C01,2022-06-01 发卡,2024-03-31 注销");
  EXPECT_EQ(RenderExplainStep({ExplainStepKind::kExcluded, {"home_bed", "home_bed_discount", "I02", "2024-02-15", ""}},
                              Language::kEnglish),
            "check 3, exclusion home_bed (choice home_bed_discount): enrolled with I02 from 2024-02-15 -> excluded");
  EXPECT_EQ(RenderExplainStep({ExplainStepKind::kVersionInForce, {"p@2022.1", "2022-03", "2024-12"}}, Language::kEnglish),
            "policy version in force: p@2022.1 (2022-03..2024-12)");
}

TEST(explain_render, the_result_line_keeps_the_csv_status_word) {
  Policy policy;
  policy.policy_id = "p";
  policy.versions.emplace_back();
  policy.versions[0].version = "2022.1";
  CardMonth cm;
  cm.status = CardMonthStatus::kIneligible;
  cm.reason = CardMonthReason::kNotEligible;
  cm.net_deposit = Money::FromFen(10000);
  cm.version = 0;
  EXPECT_EQ(RenderExplainResult(policy, cm, Language::kEnglish),
            "result: ineligible (not_eligible), net deposit 100.00, tier -, subsidy 0.00, rule version p@2022.1");
  EXPECT_EQ(RenderExplainResult(policy, cm, Language::kChinese),
            "结果:ineligible(不符合条件),原因 not_eligible,净缴存 100.00,档次 -,补贴 0.00,规则版本 p@2022.1");
}

}  // namespace
}  // namespace carecard
