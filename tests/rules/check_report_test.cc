#include "rules/check_report.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace carecard {
namespace {

std::string WriteTemporary(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(check_report, a_valid_policy_prints_ok_and_one_line_per_version) {
  std::ostringstream out, err;
  const int status = RunCheckCommand(std::string(CARECARD_SOURCE_DIR) + "/rules/qingdao-2025-example.yaml",
                                     Language::kEnglish, out, err);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(err.str(), "");
  EXPECT_EQ(out.str(),
            "ok\n"
            "2022.1  2022-03..2024-12  qingdao-rural-care-card  type 1 第一类: deposit >= 100.00, subsidy 50.00; "
            "type 2 第二类: deposit >= 200.00, subsidy 120.00\n"
            "2025.1  2025-01..  qingdao-rural-care-card  type 1 第一类: deposit >= 120.00, subsidy 60.00; "
            "type 2 第二类: deposit >= 240.00, subsidy 140.00\n");
}

TEST(check_report, the_summary_reads_in_chinese_but_ok_stays_ok) {
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckCommand(std::string(CARECARD_SOURCE_DIR) + "/rules/qingdao-2022.yaml", Language::kChinese, out,
                            err),
            0);
  EXPECT_EQ(out.str(),
            "ok\n"
            "2022.1  2022-03..  qingdao-rural-care-card  第 1 类 第一类:缴存 >= 100.00,补贴 50.00; "
            "第 2 类 第二类:缴存 >= 200.00,补贴 120.00\n");
}

TEST(check_report, an_invalid_policy_prints_every_error_and_returns_2) {
  const std::string path = WriteTemporary("check_report_bad.yaml",
                                          "schema: subsidy-rules/9\n"
                                          "policy: p\n"
                                          "months_per_period: 5\n"
                                          "versions: []\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckCommand(path, Language::kEnglish, out, err), 2);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), path + ":1:9: unsupported schema 'subsidy-rules/9'; expected 'subsidy-rules/1'\n" + path +
                           ":3:20: 'months_per_period' in the policy is '5'; expected 1, 2, 3, 6 or 12\n" + path +
                           ":4:1: 'versions' is empty; expected at least one version\n");
  std::remove(path.c_str());
}

TEST(check_report, a_missing_file_is_reported_without_a_position) {
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckCommand("/nonexistent/policy.yaml", Language::kChinese, out, err), 2);
  EXPECT_EQ(err.str().rfind("/nonexistent/policy.yaml: 无法读取策略文件:", 0), 0u) << err.str();
}

}  // namespace
}  // namespace carecard
