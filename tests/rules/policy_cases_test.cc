#include "rules/policy_cases.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace carecard {
namespace {

std::string RulesDir() { return std::string(CARECARD_SOURCE_DIR) + "/rules"; }

// Writes `text` to a file in the temp folder and returns its path.
std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::temp_directory_path() / ("carecard-cases-" + name)).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return path;
}

struct CommandOutput {
  int status = -1;
  std::string out, err;
};

CommandOutput RunCases(const std::string& rules, const std::string& cases, Language language = Language::kEnglish) {
  std::ostringstream out, err;
  CommandOutput result;
  result.status = RunPolicyCasesCommand(rules, cases, language, out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

constexpr const char* kPaidCase = R"(cases:
  - name: type 1 card, deposit 100.00 earns 50.00
    month: 2024-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 100.00, date: 2024-01-05}]
    expect: {status: paid, tier: 1, subsidy: 50.00}
)";

TEST(policy_cases, the_shipped_qingdao_cases_all_pass) {
  const CommandOutput r =
      RunCases(RulesDir() + "/qingdao-2022.yaml", RulesDir() + "/qingdao-2022.cases.yaml");
  EXPECT_EQ(r.status, kCasesPassed) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" passed, 0 failed\n"), std::string::npos) << r.out;
}

TEST(policy_cases, the_shipped_2025_example_cases_all_pass) {
  const CommandOutput r =
      RunCases(RulesDir() + "/qingdao-2025-example.yaml", RulesDir() + "/qingdao-2025-example.cases.yaml");
  EXPECT_EQ(r.status, kCasesPassed) << r.out << r.err;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

TEST(policy_cases, a_case_is_settled_under_the_rules_it_is_given) {
  // 100.00 in 2025-01 is below the example's 2025.1 threshold but pays under
  // the 2022 file, where 2022.1 is still in force.
  const std::string cases = WriteTemp("2025-amounts.yaml", R"(cases:
  - name: 100.00 in 2025-01 under the 2022 policy
    month: 2025-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 100.00, date: 2025-01-05}]
    expect: {status: below_threshold, tier: none, subsidy: 0}
)");
  EXPECT_EQ(RunCases(RulesDir() + "/qingdao-2025-example.yaml", cases).status, kCasesPassed);
  const CommandOutput old = RunCases(RulesDir() + "/qingdao-2022.yaml", cases);
  EXPECT_EQ(old.status, kCasesFailed) << old.out;
  std::remove(cases.c_str());
}

TEST(policy_cases, a_passing_case_prints_ok_and_the_count) {
  const std::string cases = WriteTemp("pass.yaml", kPaidCase);
  const CommandOutput r = RunCases(RulesDir() + "/qingdao-2022.yaml", cases);
  EXPECT_EQ(r.status, kCasesPassed);
  EXPECT_EQ(r.out, "ok  type 1 card, deposit 100.00 earns 50.00\n1 passed, 0 failed\n");
  std::remove(cases.c_str());
}

TEST(policy_cases, a_failing_case_is_reported_with_its_name_the_difference_and_why) {
  const std::string cases = WriteTemp("fail.yaml", R"(cases:
  - name: 99.99 should pay (it does not)
    month: 2024-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 99.99, date: 2024-01-05}]
    expect: {status: paid, tier: 1, subsidy: 50.00}
  - name: 100.00 pays
    month: 2024-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 100.00, date: 2024-01-05}]
    expect: {status: paid, tier: 1, subsidy: 50.00}
)");
  const CommandOutput r = RunCases(RulesDir() + "/qingdao-2022.yaml", cases);
  EXPECT_EQ(r.status, kCasesFailed);
  EXPECT_EQ(r.out,
            "FAIL 99.99 should pay (it does not): expected status paid, got below_threshold; expected tier 1, got none; "
            "expected subsidy 50.00, got 0.00 (check 5, type 1 deposit: net deposit 99.99 < minimum 100.00)\n"
            "ok  100.00 pays\n"
            "1 passed, 1 failed\n");
  std::remove(cases.c_str());
}

TEST(policy_cases, a_failing_case_is_reported_in_chinese) {
  const std::string cases = WriteTemp("fail-zh.yaml", R"(cases:
  - name: 城镇户籍
    month: 2024-01
    elder: {birth_date: 1945-08-08, hukou: urban}
    cards: [{card_type: 1, issued_on: 2023-03-01}]
    deposits: [{amount: 100.00, date: 2024-01-05}]
    expect: {status: paid, tier: 1, subsidy: 50.00}
)");
  const CommandOutput r = RunCases(RulesDir() + "/qingdao-2022.yaml", cases, Language::kChinese);
  EXPECT_EQ(r.status, kCasesFailed);
  EXPECT_NE(r.out.find("FAIL 城镇户籍: status 应为 paid,实际为 ineligible"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("不符合"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("通过 0 个,失败 1 个"), std::string::npos) << r.out;
  std::remove(cases.c_str());
}

TEST(policy_cases, each_expectation_of_a_case_names_its_card) {
  const std::string cases = WriteTemp("two-cards.yaml", R"(cases:
  - name: two cards
    month: 2024-01
    elder: {birth_date: 1950-10-10}
    cards:
      - {card_no: A1, card_type: 1, issued_on: 2022-05-01}
      - {card_no: A2, card_type: 1, issued_on: 2023-09-01}
    deposits:
      - {card: A1, amount: 100.00, date: 2024-01-05}
      - {card: A2, amount: 100.00, date: 2024-01-06}
    expect:
      - {card: A1, status: paid, tier: 1, subsidy: 50.00}
      - {card: A2, status: paid, tier: 1, subsidy: 50.00}
)");
  const CommandOutput r = RunCases(RulesDir() + "/qingdao-2022.yaml", cases);
  EXPECT_EQ(r.status, kCasesFailed);
  EXPECT_NE(r.out.find("FAIL two cards: A2: expected status paid, got duplicate_card"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("card A1, issued 2022-05-01, is the elder's card this month"), std::string::npos) << r.out;
  std::remove(cases.c_str());
}

TEST(policy_cases, a_row_the_intake_rejects_fails_the_case_and_says_which) {
  const std::string cases = WriteTemp("rejected.yaml", R"(cases:
  - name: closed before issued
    month: 2024-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2024-01-10, closed_on: 2024-01-01}]
    expect: {status: paid, tier: 1, subsidy: 50.00}
)");
  const CommandOutput r = RunCases(RulesDir() + "/qingdao-2022.yaml", cases);
  EXPECT_EQ(r.status, kCasesFailed);
  EXPECT_NE(r.out.find("FAIL closed before issued: the case's rows were rejected by intake: cards.csv:2 bad_date"),
            std::string::npos)
      << r.out;
  std::remove(cases.c_str());
}

TEST(policy_cases, a_malformed_cases_file_gives_file_line_col_and_status_2) {
  const std::string cases = WriteTemp("malformed.yaml", R"(cases:
  - name: slips
    month: 2024-13
    elder: {birth_date: 1950-03-10, hukuo: rural}
    cards: [{card_type: 3, issued_on: 2022-06-01}]
    deposits: [{amount: 5e1, date: 2024-01-05}]
    expect: {status: pid, tier: 1, subsidy: 50.00}
)");
  const CommandOutput r = RunCases(RulesDir() + "/qingdao-2022.yaml", cases);
  EXPECT_EQ(r.status, kCasesMalformed);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(cases + ":3:12: 'month' in case 'slips' is '2024-13'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(cases + ":4:37: unknown key 'hukuo' in the elder of case 'slips'; did you mean 'hukou'?"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(cases + ":5:25: 'card_type' in card 1 of case 'slips' is '3'; expected 1 or 2"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(cases + ":6:25: 'amount' in deposit 1 of case 'slips' is '5e1'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(cases + ":7:22: 'status' in the expectation of case 'slips' is 'pid'"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("did you mean 'paid'?"), std::string::npos) << r.err;
  std::remove(cases.c_str());
}

TEST(policy_cases, unknown_and_missing_keys_are_named_with_a_suggestion) {
  const PolicyCasesLoadResult r = LoadPolicyCasesFromText(R"(cases:
  - name: a
    month: 2024-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 100.00, date: 2024-01-05, card: QD0002}]
    enrolments: [{program: home_bed, start_on: 2024-01-01}]
    expcet: {status: paid, tier: 1, subsidy: 50.00}
)",
                                                          "c.yaml");
  ASSERT_FALSE(r.ok);
  std::vector<std::string> lines;
  for (const auto& e : r.errors) lines.push_back(e.ToString());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "c.yaml:6:57: 'card' in deposit 1 of case 'a' is 'QD0002'; expected the card_no of a card of this case: "
            "QD0001; did you mean 'QD0001'?");
  EXPECT_EQ(lines[1], "c.yaml:7:18: missing required key 'choice' in enrolment 1 of case 'a'");
  EXPECT_EQ(lines[2], "c.yaml:8:5: unknown key 'expcet' in case 'a'; did you mean 'expect'?");
}

TEST(policy_cases, a_yaml_syntax_error_has_its_position) {
  const PolicyCasesLoadResult r = LoadPolicyCasesFromText("cases:\n  - name: [unclosed\n", "c.yaml");
  ASSERT_FALSE(r.ok);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].file, "c.yaml");
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_NE(r.errors[0].message.find("YAML syntax error"), std::string::npos);
}

TEST(policy_cases, duplicate_case_names_and_a_deposit_without_a_time_are_errors) {
  const PolicyCasesLoadResult r = LoadPolicyCasesFromText(R"(cases:
  - name: same
    month: 2024-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 100.00}]
    expect: {status: paid, tier: 1, subsidy: 50.00}
  - name: same
    month: 2024-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    expect: {status: paid, tier: 1, subsidy: 50.00}
)",
                                                          "c.yaml", Language::kChinese);
  ASSERT_FALSE(r.ok);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].ToString(), "c.yaml:6:16: 用例 'same' 的第 1 笔缴存 需要 'at'(带时区的时间)或 'date'");
  EXPECT_EQ(r.errors[1].ToString(), "c.yaml:8:11: 名为 'same' 的用例已在第 2 行出现;应使用不同的名称");
}

TEST(policy_cases, an_unreadable_or_empty_cases_file_is_malformed) {
  CommandOutput r = RunCases(RulesDir() + "/qingdao-2022.yaml", "/nonexistent/cases.yaml");
  EXPECT_EQ(r.status, kCasesMalformed);
  EXPECT_NE(r.err.find("/nonexistent/cases.yaml: cannot read the cases file"), std::string::npos) << r.err;
  const PolicyCasesLoadResult empty = LoadPolicyCasesFromText("# nothing\n", "c.yaml");
  ASSERT_EQ(empty.errors.size(), 1u);
  EXPECT_EQ(empty.errors[0].ToString(), "c.yaml: the file is empty; expected a mapping with 'cases'");
}

TEST(policy_cases, a_broken_policy_file_is_malformed_too) {
  const std::string rules = WriteTemp("broken-rules.yaml", "schema: subsidy-rules/1\npolicy: x\n");
  const std::string cases = WriteTemp("ok.yaml", kPaidCase);
  const CommandOutput r = RunCases(rules, cases);
  EXPECT_EQ(r.status, kCasesMalformed);
  EXPECT_NE(r.err.find(rules + ":1:1: missing required key 'versions'"), std::string::npos) << r.err;
  std::remove(rules.c_str());
  std::remove(cases.c_str());
}

TEST(policy_cases, a_version_change_inside_a_period_settles_each_month_under_its_own_version) {
  const std::string rules = WriteTemp("mid-period.yaml", R"(schema: subsidy-rules/1
policy: test-policy
months_per_period: 2
versions:
  - version: "2022.1"
    from: 2022-03
    to: 2024-01
    card_types:
      - {type: 1, eligible: rural and age >= 60, min_monthly_deposit: 100, monthly_subsidy: 50}
  - version: "2024.1"
    from: 2024-02
    card_types:
      - {type: 1, eligible: rural and age >= 60, min_monthly_deposit: 150, monthly_subsidy: 70}
)");
  const std::string cases = WriteTemp("mid-period.cases.yaml", R"(cases:
  - name: January of 2024-B1 under 2022.1
    month: 2024-01
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 150.00, date: 2024-01-05}]
    expect: {status: paid, tier: 1, subsidy: 50.00, rule_version: test-policy@2022.1}
  - name: February of 2024-B1 under 2024.1
    month: 2024-02
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 150.00, date: 2024-02-05}]
    expect: {status: paid, tier: 1, subsidy: 70.00, rule_version: test-policy@2024.1}
  - name: February of 2024-B1, 100.00 is below the new threshold
    month: 2024-02
    elder: {birth_date: 1950-03-10}
    cards: [{card_type: 1, issued_on: 2022-06-01}]
    deposits: [{amount: 100.00, date: 2024-02-05}]
    expect: {status: below_threshold, tier: none, subsidy: 0, rule_version: test-policy@2024.1}
)");
  const CommandOutput r = RunCases(rules, cases);
  EXPECT_EQ(r.status, kCasesPassed) << r.out << r.err;
  EXPECT_NE(r.out.find("3 passed, 0 failed"), std::string::npos) << r.out;
  std::remove(rules.c_str());
  std::remove(cases.c_str());
}

}  // namespace
}  // namespace carecard
