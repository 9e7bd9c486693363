// `explain` over the worked example (spec/example): for every card-month of
// 2024-B1, in English and in Chinese, the explanation ends in the status, tier
// and subsidy of the expected card_months.csv.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "batch/settle_command.h"
#include "tests/batch/test_files.h"

namespace carecard {
namespace {
using testing::ExampleDir;
using testing::Slurp;
using testing::TempDir;

struct ExpectedCardMonth {
  std::string month, card_no, tier, subsidy, status;
};

// card_months.csv of the example (no quoted cells in it).
std::vector<ExpectedCardMonth> ExpectedCardMonths() {
  std::vector<ExpectedCardMonth> out;
  std::istringstream in(Slurp(ExampleDir() + "/expected/2024-B1/card_months.csv"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::istringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    if (cells.size() < 10) continue;
    out.push_back({cells[1], cells[2], cells[7], cells[8], cells[9]});
  }
  return out;
}

class ExplainWorkedExample : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    book_ = new TempDir();
    SettleOptions o;
    o.data_dir = ExampleDir() + "/data";
    o.rules_path = ExampleDir() + "/rules.yaml";
    o.book_dir = book_->path();
    o.period = "2024-B1";
    o.close = true;
    std::ostringstream out, err;
    ASSERT_EQ(RunSettle(o, out, err), kExitOk) << err.str();
  }
  static void TearDownTestSuite() {
    delete book_;
    book_ = nullptr;
  }

  static int Explain(const std::string& card, const std::string& month, Language language, bool json, std::string* text) {
    ExplainOptions o;
    o.data_dir = ExampleDir() + "/data";
    o.rules_path = ExampleDir() + "/rules.yaml";
    o.book_dir = book_->path();
    o.card_no = card;
    o.month = month;
    o.json = json;
    o.language = language;
    std::ostringstream out, err;
    const int status = RunExplain(o, out, err);
    *text = out.str() + err.str();
    return status;
  }

  static TempDir* book_;
};
TempDir* ExplainWorkedExample::book_ = nullptr;

bool HasChinese(const std::string& text) {
  for (unsigned char c : text) {
    if (c >= 0xE4 && c <= 0xE9) return true;
  }
  return false;
}

TEST_F(ExplainWorkedExample, every_card_month_agrees_with_card_months_csv_in_english_and_chinese) {
  const auto expected = ExpectedCardMonths();
  ASSERT_EQ(expected.size(), 28u);
  for (const auto& want : expected) {
    for (Language language : {Language::kEnglish, Language::kChinese}) {
      SCOPED_TRACE(want.card_no + " " + want.month + (language == Language::kChinese ? " zh" : " en"));
      std::string json_text;
      ASSERT_EQ(Explain(want.card_no, want.month, language, /*json=*/true, &json_text), kExitOk) << json_text;
      const auto j = nlohmann::json::parse(json_text);
      EXPECT_EQ(j["status"], want.status);
      EXPECT_EQ(j["subsidy"], want.subsidy);
      EXPECT_EQ(j["tier"].is_null() ? std::string() : std::to_string(j["tier"].get<int>()), want.tier);
      ASSERT_FALSE(j["steps"].empty());
      for (const auto& step : j["steps"]) {
        ASSERT_TRUE(step.contains("kind") && step.contains("args") && step.contains("text"));
        if (language == Language::kChinese) {
          EXPECT_TRUE(HasChinese(step["text"])) << step["text"];
        }
      }

      std::string text;
      ASSERT_EQ(Explain(want.card_no, want.month, language, /*json=*/false, &text), kExitOk) << text;
      const std::string result_line = text.substr(text.rfind('\n', text.size() - 2) + 1);
      const std::string tier = want.tier.empty() ? "-" : want.tier;
      if (language == Language::kEnglish) {
        EXPECT_EQ(result_line.rfind("result: " + want.status, 0), 0u) << result_line;
        EXPECT_NE(result_line.find(", tier " + tier + ", subsidy " + want.subsidy), std::string::npos) << result_line;
      } else {
        EXPECT_EQ(result_line.rfind("结果:" + want.status, 0), 0u) << result_line;
        EXPECT_NE(result_line.find(",档次 " + tier + ",补贴 " + want.subsidy), std::string::npos) << result_line;
        // Every line, header and result included, is in Chinese.
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);) EXPECT_TRUE(HasChinese(line)) << line;
      }
    }
  }
}

TEST_F(ExplainWorkedExample, the_steps_come_in_the_order_of_the_rules) {
  std::string text;
  ASSERT_EQ(Explain("QD0003", "2024-02", Language::kEnglish, false, &text), kExitOk);
  const std::vector<std::string> in_order = {
      "card QD0003, month 2024-02",
      "card QD0003: type 2, centre C02, issued 2023-09-01, open",
      "holder P03: born 1955-01-20, rural hukou, flags: disabled",
      "assessment on file: level 3 on 2023-08-01",
      "reversal ",
      "net deposit for 2024-02: 150.00",
      "policy version in force: qingdao-rural-care-card@2022.1",
      "check 1, holder alive on 2024-02-01: yes",
      "check 2, one card per elder",
      "check 3, exclusion gov_home_service",
      "fact: age 69 on 2024-02-29",
      "fact: assessment level 3, assessed 2023-08-01, valid through 2024-08-01",
      "check 4, type 2",
      "check 5, type 2 deposit: net deposit 150.00 < minimum 200.00",
      "check 4, type 1",
      "check 5, type 1 deposit: net deposit 150.00 >= minimum 100.00 -> tier 1, subsidy 50.00",
      "result: paid, net deposit 150.00, tier 1, subsidy 50.00",
  };
  size_t at = 0;
  for (const auto& piece : in_order) {
    const size_t found = text.find(piece, at);
    ASSERT_NE(found, std::string::npos) << "'" << piece << "' after position " << at << " in\n" << text;
    at = found + piece.size();
  }
}

TEST_F(ExplainWorkedExample, deposits_not_counted_say_why_in_both_languages) {
  std::string en, zh;
  ASSERT_EQ(Explain("QD0009", "2024-02", Language::kEnglish, false, &en), kExitOk);
  ASSERT_EQ(Explain("QD0009", "2024-02", Language::kChinese, false, &zh), kExitOk);
  EXPECT_NE(en.find(": not counted, the holder died on 2024-01-20"), std::string::npos) << en;
  EXPECT_NE(en.find("check 1, holder alive on 2024-02-01: no, died 2024-01-20 -> deceased"), std::string::npos) << en;
  EXPECT_NE(zh.find("不计入:持卡人已于 2024-01-20 去世"), std::string::npos) << zh;
}

TEST_F(ExplainWorkedExample, an_exclusion_names_the_enrolment_that_excludes) {
  std::string en;
  ASSERT_EQ(Explain("QD0007", "2024-02", Language::kEnglish, false, &en), kExitOk);
  EXPECT_NE(en.find("check 3, exclusion home_bed (choice home_bed_discount): enrolled with I02 from 2024-02-15 -> excluded"),
            std::string::npos)
      << en;
}

TEST_F(ExplainWorkedExample, an_unknown_card_is_refused_with_a_reason) {
  std::string en;
  EXPECT_EQ(Explain("QD0014", "2024-01", Language::kEnglish, false, &en), kExitRefused);
  EXPECT_NE(en.find("card QD0014 is not an accepted card of the registry"), std::string::npos) << en;
}

}  // namespace
}  // namespace carecard
