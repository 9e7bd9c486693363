#include "rules/policy_loader.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace carecard {
namespace {

// The example file at the top of spec/rules.md, byte for byte, so that line and
// column numbers in these tests are those of the messages rules.md quotes.
constexpr std::string_view kExample = R"(schema: subsidy-rules/1
policy: qingdao-rural-care-card           # id written into every output
title: 青岛市农村养老服务消费卡补贴
source: 青岛市农村养老服务工作提质升级三年行动方案(2022—2024年) 三(三)6、7
timezone: "+08:00"
months_per_period: 2                       # 1, 2, 3, 6 or 12, anchored at January
versions:
  - version: "2022.1"
    from: 2022-03                          # first month in force
    to:                                    # last month in force; empty = still in force
    assessment_valid_months: 12
    allow_lower_tier: true
    proration: none                        # none | by_days
    rounding: half_up                      # half_up | half_even
    card_types:
      - type: 1
        name: 第一类
        eligible: rural and age >= 60
        min_monthly_deposit: 100.00
        monthly_subsidy: 50.00
      - type: 2
        name: 第二类
        eligible: rural and (age >= 80 or (age >= 60 and assessment >= 2))
        min_monthly_deposit: 200.00
        monthly_subsidy: 120.00
    exclusions:
      - program: gov_home_service
        card_types: [1, 2]
        note: 政府购买居家上门基本养老服务对象不重复享受消费卡补贴
      - program: home_bed
        choice: home_bed_discount
        card_types: [2]
        note: 第二类卡持卡人在消费卡补贴与家庭养老床位优惠折扣中二选一
)";

constexpr const char* kFile = "rules/qingdao-2022.yaml";

// A second version appended after line 33, starting on line 34.
constexpr std::string_view kSecondVersion = R"(  - version: "2024.1"
    from: 2024-06
    card_types:
      - type: 1
        eligible: rural and age >= 60
        min_monthly_deposit: 100
        monthly_subsidy: 50
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in{std::string(text)};
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// `text` with the first `from` on 1-based line `line` replaced by `to`; fails
// the test when the line does not hold `from`, so edits cannot silently miss.
std::string Edit(std::string_view text, int line, std::string_view from, std::string_view to) {
  std::vector<std::string> lines = Lines(text);
  std::string& target = lines.at(static_cast<size_t>(line - 1));
  const size_t at = target.find(from);
  EXPECT_NE(at, std::string::npos) << "line " << line << " does not contain '" << from << "': " << target;
  if (at != std::string::npos) target.replace(at, from.size(), to);
  return Join(lines);
}

// `text` without lines first..last (1-based, inclusive).
std::string DeleteLines(std::string_view text, int first, int last) {
  std::vector<std::string> lines = Lines(text);
  lines.erase(lines.begin() + (first - 1), lines.begin() + last);
  return Join(lines);
}

// `text` with `inserted` (whole lines) placed after 1-based line `after`.
std::string InsertAfter(std::string_view text, int after, std::string_view inserted) {
  std::vector<std::string> lines = Lines(text);
  std::vector<std::string> extra = Lines(inserted);
  lines.insert(lines.begin() + after, extra.begin(), extra.end());
  return Join(lines);
}

PolicyLoadResult Load(std::string_view text, Language language = Language::kEnglish) {
  return LoadPolicyFromText(text, kFile, language);
}

std::vector<std::string> ErrorLines(const PolicyLoadResult& result) {
  std::vector<std::string> lines;
  for (const RuleError& error : result.errors) lines.push_back(error.ToString());
  return lines;
}

// The single error a one-slip file must produce, as "file:line:col: message".
std::string OnlyError(std::string_view text, Language language = Language::kEnglish) {
  const PolicyLoadResult result = Load(text, language);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.errors.size(), 1u) << ::testing::PrintToString(ErrorLines(result));
  return result.errors.empty() ? std::string("(no error)") : result.errors.front().ToString();
}

std::string Located(int line, int column, std::string_view message) {
  return std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + std::string(message);
}

// --- the example and the shipped files -------------------------------------

TEST(policy_loader, the_test_copy_of_the_example_is_the_one_in_rules_md) {
  const std::string spec = ReadFile(std::string(CARECARD_SHARED_DIR) + "/spec/rules.md");
  if (spec.empty()) GTEST_SKIP() << "spec/rules.md not found";
  const size_t start = spec.find("```yaml\n");
  ASSERT_NE(start, std::string::npos);
  const size_t body = start + 8;
  const size_t end = spec.find("```", body);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(spec.substr(body, end - body), kExample);
}

TEST(policy_loader, the_example_loads_with_every_value_read) {
  const PolicyLoadResult result = Load(kExample);
  ASSERT_TRUE(result.ok) << ::testing::PrintToString(ErrorLines(result));
  const Policy& policy = result.policy;
  EXPECT_EQ(policy.policy_id, "qingdao-rural-care-card");
  EXPECT_EQ(policy.title, "青岛市农村养老服务消费卡补贴");
  EXPECT_EQ(policy.timezone.seconds, 8 * 3600);
  EXPECT_EQ(policy.months_per_period, 2);
  ASSERT_EQ(policy.versions.size(), 1u);
  const PolicyVersion& version = policy.versions[0];
  EXPECT_EQ(version.version, "2022.1");
  EXPECT_EQ(version.from, YearMonth::Of(2022, 3));
  EXPECT_FALSE(version.to);
  EXPECT_EQ(version.assessment_valid_months, 12);
  EXPECT_TRUE(version.allow_lower_tier);
  EXPECT_EQ(version.proration, Proration::kNone);
  EXPECT_EQ(version.rounding, Rounding::kHalfUp);
  ASSERT_EQ(version.card_types.size(), 2u);
  EXPECT_EQ(version.card_types[0].type, 1);
  EXPECT_EQ(version.card_types[0].name, "第一类");
  EXPECT_EQ(version.card_types[0].min_monthly_deposit, Money::FromFen(10000));
  EXPECT_EQ(version.card_types[0].monthly_subsidy, Money::FromFen(5000));
  EXPECT_EQ(version.card_types[1].min_monthly_deposit, Money::FromFen(20000));
  EXPECT_EQ(version.card_types[1].monthly_subsidy, Money::FromFen(12000));
  ASSERT_TRUE(version.card_types[1].eligible);
  EXPECT_EQ(version.card_types[1].eligible->source(),
            "rural and (age >= 80 or (age >= 60 and assessment >= 2))");
  ASSERT_EQ(version.exclusions.size(), 2u);
  EXPECT_EQ(version.exclusions[0].program, Program::kGovHomeService);
  EXPECT_FALSE(version.exclusions[0].choice);
  EXPECT_EQ(version.exclusions[0].card_types, (std::vector<int>{1, 2}));
  EXPECT_EQ(version.exclusions[1].program, Program::kHomeBed);
  EXPECT_EQ(version.exclusions[1].choice, EnrollmentChoice::kHomeBedDiscount);
  EXPECT_EQ(version.exclusions[1].card_types, (std::vector<int>{2}));
  EXPECT_EQ(version.exclusions[1].note, "第二类卡持卡人在消费卡补贴与家庭养老床位优惠折扣中二选一");
}

TEST(policy_loader, the_shipped_qingdao_policy_loads) {
  const PolicyLoadResult result =
      LoadPolicyFromFile(std::string(CARECARD_SOURCE_DIR) + "/rules/qingdao-2022.yaml");
  ASSERT_TRUE(result.ok) << ::testing::PrintToString(ErrorLines(result));
  ASSERT_EQ(result.policy.versions.size(), 1u);
  const PolicyVersion& version = result.policy.versions[0];
  EXPECT_EQ(version.version, "2022.1");
  EXPECT_EQ(version.from, YearMonth::Of(2022, 3));
  EXPECT_FALSE(version.to);
  EXPECT_EQ(version.exclusions.size(), 2u);
  EXPECT_EQ(result.policy.RuleVersion(version), "qingdao-rural-care-card@2022.1");
}

TEST(policy_loader, the_shipped_policy_reproduces_the_positions_quoted_in_rules_md) {
  // Lines 1-33 of the shipped file are the example's, so its error examples hold for it.
  const std::string shipped = ReadFile(std::string(CARECARD_SOURCE_DIR) + "/rules/qingdao-2022.yaml");
  ASSERT_FALSE(shipped.empty());
  EXPECT_EQ(OnlyError(Edit(shipped, 19, "min_monthly_deposit", "min_montly_deposit")),
            Located(19, 9, "unknown key 'min_montly_deposit' in card type 1; did you mean 'min_monthly_deposit'?"));
  EXPECT_EQ(OnlyError(Edit(shipped, 23, "and assessment", "and assesment")),
            Located(23, 58, "in 'eligible' of card type 2: unknown variable 'assesment' at position 40; did you "
                            "mean 'assessment'?"));
}

TEST(policy_loader, the_shipped_example_with_two_versions_loads_in_order) {
  const PolicyLoadResult result =
      LoadPolicyFromFile(std::string(CARECARD_SOURCE_DIR) + "/rules/qingdao-2025-example.yaml");
  ASSERT_TRUE(result.ok) << ::testing::PrintToString(ErrorLines(result));
  const Policy& policy = result.policy;
  ASSERT_EQ(policy.versions.size(), 2u);
  EXPECT_EQ(policy.versions[0].to, YearMonth::Of(2024, 12));
  ASSERT_NE(policy.VersionFor(YearMonth::Of(2024, 12)), nullptr);
  EXPECT_EQ(policy.VersionFor(YearMonth::Of(2024, 12))->version, "2022.1");
  const PolicyVersion* later = policy.VersionFor(YearMonth::Of(2025, 1));
  ASSERT_NE(later, nullptr);
  EXPECT_EQ(later->version, "2025.1");
  EXPECT_EQ(later->card_types[0].min_monthly_deposit, Money::FromFen(12000));
  EXPECT_EQ(later->card_types[0].monthly_subsidy, Money::FromFen(6000));
  EXPECT_EQ(later->card_types[1].min_monthly_deposit, Money::FromFen(24000));
  EXPECT_EQ(later->card_types[1].monthly_subsidy, Money::FromFen(14000));
  EXPECT_NE(later->note.find("EXAMPLE"), std::string::npos);
}

// --- the messages rules.md quotes -------------------------------------------

TEST(policy_loader, misspelt_key_reads_exactly_as_in_rules_md) {
  EXPECT_EQ(OnlyError(Edit(kExample, 19, "min_monthly_deposit", "min_montly_deposit")),
            "rules/qingdao-2022.yaml:19:9: unknown key 'min_montly_deposit' in card type 1; did you mean "
            "'min_monthly_deposit'?");
}

TEST(policy_loader, misspelt_variable_reads_exactly_as_in_rules_md) {
  EXPECT_EQ(OnlyError(Edit(kExample, 23, "and assessment", "and assesment")),
            "rules/qingdao-2022.yaml:23:58: in 'eligible' of card type 2: unknown variable 'assesment' at "
            "position 40; did you mean 'assessment'?");
}

TEST(policy_loader, overlapping_versions_read_exactly_as_in_rules_md) {
  const std::string text = Edit(kExample, 10, "to: ", "to: 2024-12") + std::string(kSecondVersion);
  EXPECT_EQ(OnlyError(text),
            "rules/qingdao-2022.yaml:35:11: versions '2022.1' (2022-03..2024-12) and '2024.1' (2024-06..) "
            "overlap in 2024-06..2024-12");
}

TEST(policy_loader, messages_read_in_chinese) {
  EXPECT_EQ(OnlyError(Edit(kExample, 19, "min_monthly_deposit", "min_montly_deposit"), Language::kChinese),
            "rules/qingdao-2022.yaml:19:9: 未知的键 'min_montly_deposit'(第 1 类卡);是否应为 'min_monthly_deposit'?");
  EXPECT_EQ(OnlyError(Edit(kExample, 23, "and assessment", "and assesment"), Language::kChinese),
            "rules/qingdao-2022.yaml:23:58: 第 2 类卡的 'eligible' 中:位置 40 处的变量 'assesment' 未知;是否应为 "
            "'assessment'?");
  const std::string overlap = Edit(kExample, 10, "to: ", "to: 2024-12") + std::string(kSecondVersion);
  EXPECT_EQ(OnlyError(overlap, Language::kChinese),
            "rules/qingdao-2022.yaml:35:11: 版本 '2022.1'(2022-03..2024-12)与 '2024.1'(2024-06..)在 2024-06..2024-12 "
            "重叠");
}

// --- every error at once ------------------------------------------------------

TEST(policy_loader, every_error_is_reported_at_once_in_file_order) {
  std::string text = Edit(kExample, 13, "none", "by_day");
  text = Edit(text, 19, "100.00", "100.005");
  text = Edit(text, 6, "2", "4");
  const PolicyLoadResult result = Load(text);
  EXPECT_FALSE(result.ok);
  ASSERT_EQ(result.errors.size(), 3u) << ::testing::PrintToString(ErrorLines(result));
  EXPECT_EQ(result.errors[0].line, 6);
  EXPECT_EQ(result.errors[1].line, 13);
  EXPECT_EQ(result.errors[2].line, 19);
}

TEST(policy_loader, errors_in_different_versions_are_all_reported) {
  std::string text = Edit(kExample, 10, "to: ", "to: 2024-05") + std::string(kSecondVersion);
  text = Edit(text, 18, "age", "aeg");  // version 1
  text = Edit(text, 38, "age", "agge");  // version 2
  text = Edit(text, 39, "100", "0");     // version 2
  const PolicyLoadResult result = Load(text);
  ASSERT_EQ(result.errors.size(), 3u) << ::testing::PrintToString(ErrorLines(result));
  EXPECT_EQ(result.errors[0].line, 18);
  EXPECT_EQ(result.errors[1].line, 38);
  EXPECT_EQ(result.errors[2].line, 39);
}

// --- keys -------------------------------------------------------------------

TEST(policy_loader, unknown_keys_are_reported_at_every_level) {
  EXPECT_EQ(OnlyError(Edit(kExample, 5, "timezone", "timezon")),
            Located(5, 1, "unknown key 'timezon' in the policy; did you mean 'timezone'?"));
  EXPECT_EQ(OnlyError(Edit(kExample, 12, "allow_lower_tier", "allow_lower_tiers")),
            Located(12, 5, "unknown key 'allow_lower_tiers' in version '2022.1'; did you mean 'allow_lower_tier'?"));
  EXPECT_EQ(OnlyError(Edit(kExample, 31, "choice", "choise")),
            Located(31, 9, "unknown key 'choise' in exclusion 2 of version '2022.1'; did you mean 'choice'?"));
  EXPECT_EQ(OnlyError(Edit(kExample, 22, "name", "colour")), Located(22, 9, "unknown key 'colour' in card type 2"));
}

TEST(policy_loader, missing_required_keys_are_reported_at_their_mapping) {
  EXPECT_EQ(OnlyError(DeleteLines(kExample, 18, 18)), Located(16, 9, "missing required key 'eligible' in card type 1"));
  EXPECT_EQ(OnlyError(DeleteLines(kExample, 1, 1)), Located(1, 1, "missing required key 'schema' in the policy"));
  EXPECT_EQ(OnlyError(DeleteLines(kExample, 9, 9)), Located(8, 5, "missing required key 'from' in version '2022.1'"));
  EXPECT_EQ(OnlyError(Edit(kExample, 27, "program: gov_home_service", "choice: card_subsidy")),
            Located(27, 9, "missing required key 'program' in exclusion 1 of version '2022.1'"));
}

TEST(policy_loader, a_duplicate_key_is_an_error_naming_the_first) {
  EXPECT_EQ(OnlyError(InsertAfter(kExample, 14, "    rounding: half_even")),
            Located(15, 5, "duplicate key 'rounding' in version '2022.1'; it was first given on line 14"));
  EXPECT_EQ(OnlyError(InsertAfter(kExample, 20, "        monthly_subsidy: 60.00")),
            Located(21, 9, "duplicate key 'monthly_subsidy' in card type 1; it was first given on line 20"));
}

TEST(policy_loader, wrong_kinds_of_value_are_errors) {
  EXPECT_EQ(OnlyError(Edit(kExample, 28, "[1, 2]", "1")),
            Located(28, 21, "'card_types' in exclusion 1 of version '2022.1' must be a list such as [1, 2], found '1'"));
  EXPECT_EQ(OnlyError(Edit(kExample, 3, "青岛市农村养老服务消费卡补贴", "[a, b]")),
            Located(3, 8, "'title' in the policy must be text, found a list"));
  EXPECT_EQ(OnlyError(Edit(kExample, 12, "true", "\"true\"")),
            Located(12, 23, "'allow_lower_tier' in version '2022.1' must be true or false, found the quoted text "
                            "\"true\" (remove the quotes)"));
  EXPECT_EQ(OnlyError("- just\n- a list\n"),
            Located(1, 1, "the policy must be a mapping (key: value lines), found a list"));
}

// --- values -----------------------------------------------------------------

TEST(policy_loader, schema_must_be_subsidy_rules_1) {
  EXPECT_EQ(OnlyError(Edit(kExample, 1, "subsidy-rules/1", "subsidy-rules/2")),
            Located(1, 9, "unsupported schema 'subsidy-rules/2'; expected 'subsidy-rules/1'"));
}

TEST(policy_loader, amounts_are_exact_decimals_with_at_most_two_places) {
  for (std::string_view bad : {"5e1", "50.005", "-50", ".5", "0", "0.00", "50.", "+50", "1,000", "50 元"}) {
    EXPECT_EQ(OnlyError(Edit(kExample, 20, "50.00", bad)),
              Located(20, 26, "'monthly_subsidy' in card type 1 is '" + std::string(bad) +
                                  "'; expected an amount in yuan greater than 0 with at most two decimals, such as "
                                  "100 or 100.00"));
  }
  for (std::string_view good : {"50", "50.0", "50.00", "050.00"}) {
    const PolicyLoadResult result = Load(Edit(kExample, 20, "50.00", good));
    ASSERT_TRUE(result.ok) << good;
    EXPECT_EQ(result.policy.versions[0].card_types[0].monthly_subsidy, Money::FromFen(5000)) << good;
  }
  // Never through a float: 0.29 is exactly 29 fen.
  const PolicyLoadResult cents = Load(Edit(kExample, 20, "50.00", "0.29"));
  ASSERT_TRUE(cents.ok);
  EXPECT_EQ(cents.policy.versions[0].card_types[0].monthly_subsidy, Money::FromFen(29));
}

TEST(policy_loader, months_must_be_real_months) {
  EXPECT_EQ(OnlyError(Edit(kExample, 9, "2022-03", "2024-13")),
            Located(9, 11, "'from' in version '2022.1' is '2024-13'; expected a month YYYY-MM such as 2022-03"));
  EXPECT_EQ(OnlyError(Edit(kExample, 9, "2022-03", "2022-3")),
            Located(9, 11, "'from' in version '2022.1' is '2022-3'; expected a month YYYY-MM such as 2022-03"));
  EXPECT_EQ(OnlyError(Edit(kExample, 10, "to: ", "to: March")),
            Located(10, 9, "'to' in version '2022.1' is 'March'; expected a month YYYY-MM such as 2024-12, or "
                           "nothing (still in force)"));
  // Quoted or not, a month is a month.
  EXPECT_TRUE(Load(Edit(kExample, 9, "2022-03", "\"2022-03\"")).ok);
}

TEST(policy_loader, to_before_from_is_an_error) {
  EXPECT_EQ(OnlyError(Edit(kExample, 10, "to: ", "to: 2022-02")),
            Located(10, 9, "'to' 2022-02 of version '2022.1' is before its 'from' 2022-03"));
  const PolicyLoadResult same_month = Load(Edit(kExample, 10, "to: ", "to: 2022-03"));
  EXPECT_TRUE(same_month.ok);
}

TEST(policy_loader, timezone_must_be_an_offset) {
  EXPECT_EQ(OnlyError(Edit(kExample, 5, "\"+08:00\"", "\"08:00\"")),
            Located(5, 11, "'timezone' in the policy is '08:00'; expected a UTC offset +HH:MM such as \"+08:00\""));
  EXPECT_FALSE(Load(Edit(kExample, 5, "\"+08:00\"", "\"+8:00\"")).ok);
  EXPECT_FALSE(Load(Edit(kExample, 5, "\"+08:00\"", "Z")).ok);
  const PolicyLoadResult west = Load(Edit(kExample, 5, "\"+08:00\"", "\"-05:30\""));
  ASSERT_TRUE(west.ok);
  EXPECT_EQ(west.policy.timezone.seconds, -(5 * 3600 + 30 * 60));
}

TEST(policy_loader, months_per_period_divides_the_year) {
  for (std::string_view bad : {"4", "0", "24", "2.0", "-2"}) {
    EXPECT_EQ(OnlyError(Edit(kExample, 6, "2 ", std::string(bad) + " ")),
              Located(6, 20, "'months_per_period' in the policy is '" + std::string(bad) +
                                 "'; expected 1, 2, 3, 6 or 12"));
  }
  for (int good : {1, 2, 3, 6, 12}) {
    const PolicyLoadResult result = Load(Edit(kExample, 6, "2 ", std::to_string(good) + " "));
    ASSERT_TRUE(result.ok) << good;
    EXPECT_EQ(result.policy.months_per_period, good);
  }
}

TEST(policy_loader, proration_and_rounding_are_closed_lists_with_suggestions) {
  EXPECT_EQ(OnlyError(Edit(kExample, 13, "none", "by_day")),
            Located(13, 16, "'proration' in version '2022.1' is 'by_day'; expected none or by_days; did you mean "
                            "'by_days'?"));
  EXPECT_EQ(OnlyError(Edit(kExample, 14, "half_up", "bankers")),
            Located(14, 15, "'rounding' in version '2022.1' is 'bankers'; expected half_up or half_even"));
  const PolicyLoadResult result =
      Load(Edit(Edit(kExample, 13, "none", "by_days"), 14, "half_up", "half_even"));
  ASSERT_TRUE(result.ok);
  EXPECT_EQ(result.policy.versions[0].proration, Proration::kByDays);
  EXPECT_EQ(result.policy.versions[0].rounding, Rounding::kHalfEven);
}

TEST(policy_loader, allow_lower_tier_is_a_boolean) {
  EXPECT_EQ(OnlyError(Edit(kExample, 12, "true", "yes")),
            Located(12, 23, "'allow_lower_tier' in version '2022.1' is 'yes'; expected true or false"));
  const PolicyLoadResult result = Load(Edit(kExample, 12, "true", "false"));
  ASSERT_TRUE(result.ok);
  EXPECT_FALSE(result.policy.versions[0].allow_lower_tier);
}

TEST(policy_loader, assessment_valid_months_is_a_positive_whole_number) {
  for (std::string_view bad : {"0", "-1", "1.5", "twelve", "1201"}) {
    EXPECT_EQ(OnlyError(Edit(kExample, 11, "12", bad)),
              Located(11, 30, "'assessment_valid_months' in version '2022.1' is '" + std::string(bad) +
                                  "'; expected a whole number from 1 to 1200"));
  }
  const PolicyLoadResult result = Load(Edit(kExample, 11, "12", "6"));
  ASSERT_TRUE(result.ok);
  EXPECT_EQ(result.policy.versions[0].assessment_valid_months, 6);
}

TEST(policy_loader, card_types_are_1_or_2_and_unique) {
  EXPECT_EQ(OnlyError(Edit(kExample, 21, "2", "3")),
            Located(21, 15, "'type' in card_types entry 2 is '3'; expected 1 or 2"));
  const PolicyLoadResult twice = Load(Edit(kExample, 21, "2", "1"));
  ASSERT_FALSE(twice.ok);
  EXPECT_EQ(twice.errors.front().ToString(),
            Located(21, 15, "card type 1 is defined twice in version '2022.1'; it was first defined on line 16"));
}

TEST(policy_loader, card_types_come_out_sorted_by_type) {
  // Swap the two card types (lines 16-20 and 21-25).
  const std::vector<std::string> lines = Lines(kExample);
  std::vector<std::string> swapped(lines.begin(), lines.begin() + 15);
  swapped.insert(swapped.end(), lines.begin() + 20, lines.begin() + 25);
  swapped.insert(swapped.end(), lines.begin() + 15, lines.begin() + 20);
  swapped.insert(swapped.end(), lines.begin() + 25, lines.end());
  const PolicyLoadResult result = Load(Join(swapped));
  ASSERT_TRUE(result.ok) << ::testing::PrintToString(ErrorLines(result));
  EXPECT_EQ(result.policy.versions[0].card_types[0].type, 1);
  EXPECT_EQ(result.policy.versions[0].card_types[1].type, 2);
}

TEST(policy_loader, exclusion_program_and_choice_are_checked) {
  EXPECT_EQ(OnlyError(Edit(kExample, 27, "gov_home_service", "gov_home_servic")),
            Located(27, 18, "'program' in exclusion 1 of version '2022.1' is 'gov_home_servic'; expected home_bed or "
                            "gov_home_service; did you mean 'gov_home_service'?"));
  EXPECT_EQ(OnlyError(Edit(kExample, 31, "home_bed_discount", "discount")),
            Located(31, 17, "'choice' in exclusion 2 of version '2022.1' is 'discount'; expected card_subsidy or "
                            "home_bed_discount"));
  EXPECT_EQ(OnlyError(Edit(kExample, 30, "home_bed", "gov_home_service")),
            Located(31, 17, "'choice' in exclusion 2 of version '2022.1' is 'home_bed_discount', but program "
                            "gov_home_service records no choice; only home_bed does"));
}

TEST(policy_loader, exclusion_card_types_must_exist_in_the_version) {
  // Without card type 2 (lines 21-25) the exclusions, now on lines 21-28, list a type that is not there.
  const PolicyLoadResult result = Load(DeleteLines(kExample, 21, 25));
  ASSERT_EQ(result.errors.size(), 2u) << ::testing::PrintToString(ErrorLines(result));
  EXPECT_EQ(result.errors[0].ToString(),
            Located(23, 25, "exclusion 1 of version '2022.1' lists card type 2, which version '2022.1' does not "
                            "define; it defines 1"));
  EXPECT_EQ(result.errors[1].ToString(),
            Located(27, 22, "exclusion 2 of version '2022.1' lists card type 2, which version '2022.1' does not "
                            "define; it defines 1"));
  EXPECT_EQ(OnlyError(Edit(kExample, 28, "[1, 2]", "[1, 3]")),
            Located(28, 25, "'card_types' in exclusion 1 of version '2022.1' is '3'; expected 1 or 2"));
  EXPECT_EQ(OnlyError(Edit(kExample, 28, "[1, 2]", "[1, 1]")),
            Located(28, 25, "card type 1 is listed twice in exclusion 1 of version '2022.1'"));
  EXPECT_EQ(OnlyError(Edit(kExample, 28, "[1, 2]", "[]")),
            Located(28, 21, "'card_types' in exclusion 1 of version '2022.1' is an empty list; leave 'card_types' out "
                            "to apply to every card type"));
}

TEST(policy_loader, an_exclusion_without_card_types_applies_to_every_type) {
  const PolicyLoadResult result = Load(DeleteLines(kExample, 28, 28));
  ASSERT_TRUE(result.ok) << ::testing::PrintToString(ErrorLines(result));
  EXPECT_TRUE(result.policy.versions[0].exclusions[0].card_types.empty());
  EXPECT_TRUE(result.policy.versions[0].exclusions[0].AppliesTo(1));
  EXPECT_TRUE(result.policy.versions[0].exclusions[0].AppliesTo(2));
}

// --- versions against each other -----------------------------------------------

TEST(policy_loader, a_gap_between_versions_is_an_error) {
  const std::string text = Edit(kExample, 10, "to: ", "to: 2023-12") + std::string(kSecondVersion);
  EXPECT_EQ(OnlyError(text), Located(35, 11, "versions '2022.1' (2022-03..2023-12) and '2024.1' (2024-06..) leave a "
                                             "gap in 2024-01..2024-05; no version is in force then"));
}

TEST(policy_loader, adjacent_versions_load_sorted_by_from) {
  // Written newest first; the policy lists them oldest first.
  const std::vector<std::string> example = Lines(kExample);
  const std::string newest_first = "schema: subsidy-rules/1\npolicy: p\nversions:\n" + std::string(kSecondVersion) +
                                   Join(std::vector<std::string>(example.begin() + 7, example.end()));
  const PolicyLoadResult result = Load(Edit(newest_first, 13, "to: ", "to: 2024-05"));
  ASSERT_TRUE(result.ok) << ::testing::PrintToString(ErrorLines(result));
  ASSERT_EQ(result.policy.versions.size(), 2u);
  EXPECT_EQ(result.policy.versions[0].version, "2022.1");
  EXPECT_EQ(result.policy.versions[1].version, "2024.1");
}

TEST(policy_loader, only_the_last_version_may_leave_to_empty) {
  const std::string text = std::string(kExample) + std::string(kSecondVersion);
  EXPECT_EQ(OnlyError(text),
            Located(10, 5, "version '2022.1' (2022-03..) has an empty 'to' (still in force), but version '2024.1' "
                           "starts later, in 2024-06; only the last version may leave 'to' empty; set 'to: 2024-05'"));
}

TEST(policy_loader, a_version_id_may_be_used_once) {
  const std::string text =
      Edit(kExample, 10, "to: ", "to: 2024-05") + Edit(kSecondVersion, 1, "2024.1", "2022.1");
  EXPECT_EQ(OnlyError(text), Located(34, 14, "version '2022.1' is defined twice; it was first defined on line 8"));
}

TEST(policy_loader, a_version_inside_another_overlaps_it) {
  std::string text = Edit(kExample, 10, "to: ", "to: 2030-12") + std::string(kSecondVersion);
  text = InsertAfter(text, 35, "    to: 2024-08");
  EXPECT_EQ(OnlyError(text), Located(35, 11, "versions '2022.1' (2022-03..2030-12) and '2024.1' (2024-06..2024-08) "
                                             "overlap in 2024-06..2024-08"));
}

// --- eligibility in the file ---------------------------------------------------

TEST(policy_loader, expression_errors_point_at_the_token_in_the_file) {
  EXPECT_EQ(OnlyError(Edit(kExample, 18, "rural and age", "rural and age >= 3 and rural >= 3 and age")),
            Located(18, 42, "in 'eligible' of card type 1: '>=' compares numbers, but 'rural' at position 24 is a "
                            "boolean"));
  EXPECT_EQ(OnlyError(Edit(kExample, 18, "age >= 60", "age >=")),
            Located(18, 35, "in 'eligible' of card type 1: the expression ends at position 17; expected a value (a "
                            "number, true, false, a variable or '(')"));
}

TEST(policy_loader, expression_errors_in_quoted_scalars_count_the_quote) {
  EXPECT_EQ(OnlyError(Edit(kExample, 18, "rural and age >= 60", "\"rural and aeg >= 60\"")),
            Located(18, 30, "in 'eligible' of card type 1: unknown variable 'aeg' at position 11; did you mean 'age'?"));
  EXPECT_EQ(OnlyError(Edit(kExample, 18, "rural and age >= 60", "'rural and aeg >= 60'")),
            Located(18, 30, "in 'eligible' of card type 1: unknown variable 'aeg' at position 11; did you mean 'age'?"));
}

TEST(policy_loader, expression_errors_in_folded_scalars_point_at_the_scalar) {
  // Written over two lines, the column inside the file is unknown: the scalar's
  // start is given, and the message still names the position.
  const std::string text = Edit(kExample, 18, "rural and age >= 60", ">-\n          rural and\n          aeg >= 60");
  const PolicyLoadResult result = Load(text);
  ASSERT_EQ(result.errors.size(), 1u) << ::testing::PrintToString(ErrorLines(result));
  EXPECT_EQ(result.errors[0].line, 18);
  EXPECT_EQ(result.errors[0].column, 19);
  EXPECT_NE(result.errors[0].message.find("at position 11"), std::string::npos);
}

TEST(policy_loader, columns_count_characters_not_bytes) {
  // A card type on one line after Chinese text: 第一类 is 3 columns (9 bytes).
  const std::string text = DeleteLines(
      Edit(kExample, 16, "- type: 1",
           "- {type: 1, name: 第一类, eligible: rural and aeg >= 60, min_monthly_deposit: 100, monthly_subsidy: 50}"),
      17, 20);
  EXPECT_EQ(OnlyError(text),
            Located(16, 50, "in 'eligible' of card type 1: unknown variable 'aeg' at position 11; did you mean 'age'?"));
}

TEST(policy_loader, an_empty_eligible_is_an_error) {
  EXPECT_EQ(OnlyError(Edit(kExample, 18, "rural and age >= 60", "")),
            Located(18, 9, "'eligible' in card type 1 has no value; expected an eligibility expression such as 'rural "
                           "and age >= 60'"));
}

// --- the file as a whole --------------------------------------------------------

TEST(policy_loader, a_yaml_syntax_error_has_a_position) {
  const std::string error = OnlyError(Edit(kExample, 2, "qingdao-rural-care-card", "qingdao: rural"));
  EXPECT_EQ(error.substr(0, std::string(kFile).size() + 3), std::string(kFile) + ":2:");
  EXPECT_NE(error.find("YAML syntax error: "), std::string::npos) << error;
}

TEST(policy_loader, an_empty_file_is_one_error) {
  EXPECT_EQ(OnlyError(""), Located(1, 1, "the file is empty; expected a mapping with 'schema', 'policy' and "
                                         "'versions'"));
  EXPECT_EQ(OnlyError("# only a comment\n"), Located(1, 1, "the file is empty; expected a mapping with 'schema', "
                                                           "'policy' and 'versions'"));
}

TEST(policy_loader, a_byte_order_mark_and_crlf_line_ends_change_nothing) {
  std::string crlf = "\xEF\xBB\xBF";
  for (const std::string& line : Lines(Edit(kExample, 19, "min_monthly_deposit", "min_montly_deposit"))) {
    crlf += line + "\r\n";
  }
  EXPECT_EQ(OnlyError(crlf), Located(19, 9, "unknown key 'min_montly_deposit' in card type 1; did you mean "
                                            "'min_monthly_deposit'?"));
  std::string clean = "\xEF\xBB\xBF";
  for (const std::string& line : Lines(kExample)) clean += line + "\r\n";
  EXPECT_TRUE(Load(clean).ok);
}

TEST(policy_loader, defaults_apply_when_optional_keys_are_left_out) {
  const std::string minimal =
      "schema: subsidy-rules/1\n"
      "policy: minimal\n"
      "versions:\n"
      "  - version: v1\n"
      "    from: 2024-01\n"
      "    card_types:\n"
      "      - type: 1\n"
      "        eligible: age >= 60\n"
      "        min_monthly_deposit: 1\n"
      "        monthly_subsidy: 1\n";
  const PolicyLoadResult result = Load(minimal);
  ASSERT_TRUE(result.ok) << ::testing::PrintToString(ErrorLines(result));
  EXPECT_EQ(result.policy.timezone.seconds, 8 * 3600);
  EXPECT_EQ(result.policy.months_per_period, 2);
  const PolicyVersion& version = result.policy.versions[0];
  EXPECT_FALSE(version.to);
  EXPECT_EQ(version.assessment_valid_months, 12);
  EXPECT_TRUE(version.allow_lower_tier);
  EXPECT_EQ(version.proration, Proration::kNone);
  EXPECT_EQ(version.rounding, Rounding::kHalfUp);
  EXPECT_TRUE(version.exclusions.empty());
}

TEST(policy_loader, an_unreadable_file_is_one_error_at_line_0) {
  const PolicyLoadResult result = LoadPolicyFromFile("/nonexistent/rules.yaml");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].line, 0);
  EXPECT_EQ(result.errors[0].ToString().rfind("/nonexistent/rules.yaml: cannot read the policy file: ", 0), 0u)
      << result.errors[0].ToString();
}

TEST(policy_loader, an_oversized_file_is_refused_before_parsing) {
  const PolicyLoadResult result = Load(std::string(kMaxPolicyFileBytes + 1, '#'));
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].message, "the policy file is larger than 1048576 bytes");
}

}  // namespace
}  // namespace carecard
