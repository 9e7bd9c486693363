#include "batch/generator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/calendar.h"
#include "engine/money.h"

namespace carecard {
namespace {

namespace fs = std::filesystem;

using Row = std::vector<std::string>;

// A small RFC 4180 reader, enough for the generator's output (LF, no multi-line cells).
std::vector<Row> ReadCsv(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<Row> rows;
  std::string line;
  while (std::getline(in, line)) {
    Row row;
    std::string cell;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          cell.push_back('"');
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          cell.push_back(c);
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        row.push_back(cell);
        cell.clear();
      } else {
        cell.push_back(c);
      }
    }
    row.push_back(cell);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Independent check of GB 32100-2015 (unified social credit code).
bool IsValidCreditCode(const std::string& code) {
  static const std::string kCharset = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  static const int kWeights[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
  if (code.size() != 18) return false;
  int sum = 0;
  for (size_t i = 0; i < 17; ++i) {
    const size_t value = kCharset.find(code[i]);
    if (value == std::string::npos) return false;
    sum += static_cast<int>(value) * kWeights[i];
  }
  return code[17] == kCharset[static_cast<size_t>((31 - sum % 31) % 31)];
}

// Independent check of ISO 7064 MOD 11-2 (18-character resident id).
bool IsValidIdNumber(const std::string& id) {
  static const int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  if (id.size() != 18) return false;
  int sum = 0;
  for (size_t i = 0; i < 17; ++i) {
    if (id[i] < '0' || id[i] > '9') return false;
    sum += (id[i] - '0') * kWeights[i];
  }
  return id[17] == "10X98765432"[sum % 11];
}

// ^[0-9]{1,12}(\.[0-9]{1,2})?$
bool IsWellFormedAmount(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i < 1 || i > 12) return false;
  if (i == text.size()) return true;
  if (text[i] != '.') return false;
  const size_t decimals = text.size() - i - 1;
  if (decimals < 1 || decimals > 2) return false;
  for (size_t j = i + 1; j < text.size(); ++j) {
    if (text[j] < '0' || text[j] > '9') return false;
  }
  return true;
}

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ =
        fs::temp_directory_path() / ("carecard_gen_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  GenOptions Options(const std::string& name, uint64_t seed = 7, double bad_row_share = 0.0) const {
    GenOptions options;
    options.out_dir = (root_ / name).string();
    options.cards = 300;
    options.first_month = YearMonth::Of(2024, 1);
    options.last_month = YearMonth::Of(2024, 2);
    options.seed = seed;
    options.bad_row_share = bad_row_share;
    return options;
  }

  GenSummary Generate(const GenOptions& options) const {
    GenSummary summary;
    std::string error;
    EXPECT_TRUE(GenerateDataFolder(options, &summary, &error)) << error;
    return summary;
  }

  static std::vector<fs::path> Files(const std::string& dir) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
  }

  static std::vector<fs::path> TransactionFiles(const std::string& dir) {
    std::vector<fs::path> files;
    for (const auto& file : Files(dir)) {
      const std::string name = file.filename().string();
      if (name.starts_with("deposits-") || name.starts_with("consumption-")) files.push_back(file);
    }
    return files;
  }

  fs::path root_;
};

TEST_F(GeneratorTest, writes_every_file_of_a_data_folder_one_transaction_file_pair_per_month) {
  const GenOptions options = Options("out");
  Generate(options);
  std::vector<std::string> names;
  for (const auto& file : Files(options.out_dir)) names.push_back(file.filename().string());
  const std::vector<std::string> expected = {"assessments.csv",
                                             "cards.csv",
                                             "centers.csv",
                                             "consumption-2024-01.csv",
                                             "consumption-2024-02.csv",
                                             "deposits-2024-01.csv",
                                             "deposits-2024-02.csv",
                                             "enrollments.csv",
                                             "persons.csv",
                                             "stations.csv"};
  EXPECT_EQ(names, expected);
}

TEST_F(GeneratorTest, same_options_give_byte_identical_files) {
  const GenOptions a = Options("a", 42, 0.05);
  const GenOptions b = Options("b", 42, 0.05);
  const GenSummary summary_a = Generate(a);
  const GenSummary summary_b = Generate(b);
  EXPECT_EQ(summary_a.deposit_rows, summary_b.deposit_rows);
  EXPECT_EQ(summary_a.bad_rows, summary_b.bad_rows);
  for (const auto& file : Files(a.out_dir)) {
    EXPECT_EQ(ReadBytes(file), ReadBytes(fs::path(b.out_dir) / file.filename())) << file.filename();
  }
}

TEST_F(GeneratorTest, a_different_seed_gives_different_files) {
  const GenOptions a = Options("a", 1);
  const GenOptions b = Options("b", 2);
  Generate(a);
  Generate(b);
  for (const char* name : {"persons.csv", "cards.csv", "deposits-2024-01.csv", "consumption-2024-02.csv"}) {
    EXPECT_NE(ReadBytes(fs::path(a.out_dir) / name), ReadBytes(fs::path(b.out_dir) / name)) << name;
  }
}

TEST_F(GeneratorTest, the_independent_checks_accept_the_worked_example) {
  EXPECT_TRUE(IsValidCreditCode("12370211729436483J"));
  EXPECT_FALSE(IsValidCreditCode("12370211729436483K"));
  EXPECT_TRUE(IsValidIdNumber("37028319380909059X"));
  EXPECT_FALSE(IsValidIdNumber("370283193809090591"));
}

TEST_F(GeneratorTest, every_id_number_and_credit_code_passes_its_check) {
  const GenOptions options = Options("out");
  Generate(options);
  const auto centers = ReadCsv(fs::path(options.out_dir) / "centers.csv");
  ASSERT_GE(centers.size(), 3u);  // header + at least 2 centres
  for (size_t i = 1; i < centers.size(); ++i) EXPECT_TRUE(IsValidCreditCode(centers[i][3])) << centers[i][3];

  const auto persons = ReadCsv(fs::path(options.out_dir) / "persons.csv");
  ASSERT_GT(persons.size(), 250u);
  for (size_t i = 1; i < persons.size(); ++i) {
    const Row& row = persons[i];
    EXPECT_TRUE(IsValidIdNumber(row[1])) << row[1];
    // The birth date is the one embedded in the id number.
    std::string embedded = row[1].substr(6, 8);
    embedded.insert(6, "-");
    embedded.insert(4, "-");
    EXPECT_EQ(row[3], embedded);
    EXPECT_TRUE(row[4] == "rural" || row[4] == "urban") << row[4];
  }
}

TEST_F(GeneratorTest, every_header_has_the_columns_of_formats_md) {
  const GenOptions options = Options("out");
  Generate(options);
  const std::map<std::string, std::string> headers = {
      {"centers.csv", "center_id,name,district,credit_code,bank_account"},
      {"stations.csv", "station_id,center_id,village,name"},
      {"persons.csv", "person_id,id_number,name,birth_date,hukou,village,flags,death_date"},
      {"assessments.csv", "person_id,assessed_on,level,standard"},
      {"cards.csv", "card_no,person_id,card_type,center_id,issued_on,closed_on"},
      {"enrollments.csv", "person_id,program,institution_id,start_on,end_on,choice"},
      {"deposits-", "txn_id,card_no,kind,amount,at,channel,ref_txn_id"},
      {"consumption-", "txn_id,card_no,kind,amount,at,station_id,service,ref_txn_id"},
  };
  for (const auto& file : Files(options.out_dir)) {
    const std::string name = file.filename().string();
    std::string key = name;
    if (name.starts_with("deposits-")) key = "deposits-";
    if (name.starts_with("consumption-")) key = "consumption-";
    ASSERT_TRUE(headers.count(key)) << name;
    const std::string bytes = ReadBytes(file);
    EXPECT_EQ(bytes.substr(0, bytes.find('\n')), headers.at(key)) << name;
  }
}

TEST_F(GeneratorTest, without_bad_rows_every_amount_and_timestamp_is_well_formed) {
  const GenOptions options = Options("out");
  const GenSummary summary = Generate(options);
  EXPECT_EQ(summary.bad_rows, 0);
  int64_t rows = 0;
  for (const auto& file : TransactionFiles(options.out_dir)) {
    const auto table = ReadCsv(file);
    const size_t columns = table[0].size();
    for (size_t i = 1; i < table.size(); ++i) {
      const Row& row = table[i];
      ASSERT_EQ(row.size(), columns) << file.filename() << " line " << i + 1;
      EXPECT_TRUE(IsWellFormedAmount(row[3])) << row[3];
      EXPECT_TRUE(Money::ParsePositive(row[3]).has_value()) << row[3];
      EXPECT_TRUE(Instant::Parse(row[4]).has_value()) << row[4];
      ++rows;
    }
  }
  EXPECT_EQ(rows, summary.deposit_rows + summary.consumption_rows);
}

TEST_F(GeneratorTest, without_bad_rows_txn_ids_are_unique_and_references_name_an_earlier_row_of_the_card) {
  const GenOptions options = Options("out");
  Generate(options);
  for (const char* family : {"deposits-", "consumption-"}) {
    std::map<std::string, std::pair<std::string, int64_t>> seen;  // txn_id -> card, amount fen
    int64_t references = 0;
    for (const auto& file : TransactionFiles(options.out_dir)) {
      if (!file.filename().string().starts_with(family)) continue;
      const auto table = ReadCsv(file);
      for (size_t i = 1; i < table.size(); ++i) {
        const Row& row = table[i];
        const int64_t amount_fen = Money::ParsePositive(row[3])->fen();
        ASSERT_TRUE(seen.emplace(row[0], std::make_pair(row[1], amount_fen)).second) << row[0];
        const std::string& ref = row.back();
        if (ref.empty()) continue;
        ++references;
        ASSERT_TRUE(seen.count(ref)) << row[0] << " names " << ref;
        EXPECT_EQ(seen[ref].first, row[1]);
        EXPECT_LE(amount_fen, seen[ref].second);
      }
    }
    EXPECT_GT(references, 0) << family;
  }
}

TEST_F(GeneratorTest, with_a_bad_row_share_of_five_percent_bad_rows_appear) {
  const GenOptions options = Options("out", 7, 0.05);
  const GenSummary summary = Generate(options);
  int64_t all_rows = 0;
  for (const auto& file : Files(options.out_dir)) all_rows += static_cast<int64_t>(ReadCsv(file).size()) - 1;
  EXPECT_GT(summary.bad_rows, all_rows * 3 / 100);
  EXPECT_LT(summary.bad_rows, all_rows * 7 / 100);

  int64_t bad_amounts = 0, bad_timestamps = 0, short_rows = 0;
  std::set<std::string> ids;
  int64_t repeated_ids = 0;
  for (const auto& file : TransactionFiles(options.out_dir)) {
    const auto table = ReadCsv(file);
    for (size_t i = 1; i < table.size(); ++i) {
      const Row& row = table[i];
      if (row.size() != table[0].size()) {
        ++short_rows;
        continue;
      }
      if (!IsWellFormedAmount(row[3]) || !Money::ParsePositive(row[3])) ++bad_amounts;
      if (!Instant::Parse(row[4])) ++bad_timestamps;
      if (!row[0].empty() && !ids.insert(row[0]).second) ++repeated_ids;
    }
  }
  EXPECT_GT(bad_amounts, 0);
  EXPECT_GT(bad_timestamps, 0);
  EXPECT_GT(short_rows, 0);
  EXPECT_GT(repeated_ids, 0);

  int64_t bad_id_numbers = 0;
  const auto persons = ReadCsv(fs::path(options.out_dir) / "persons.csv");
  for (size_t i = 1; i < persons.size(); ++i) bad_id_numbers += IsValidIdNumber(persons[i][1]) ? 0 : 1;
  EXPECT_GT(bad_id_numbers, 0);
}

TEST_F(GeneratorTest, rows_per_card_month_are_about_ten) {
  GenOptions options = Options("out");
  options.cards = 600;
  const GenSummary summary = Generate(options);
  const int64_t card_months = options.cards * 2;
  const int64_t rows = summary.deposit_rows + summary.consumption_rows;
  EXPECT_GE(rows, card_months * 85 / 10);
  EXPECT_LE(rows, card_months * 115 / 10);
  EXPECT_GE(summary.deposit_rows, card_months * 8 / 10);
  EXPECT_EQ(summary.cards, options.cards);
}

TEST_F(GeneratorTest, the_data_holds_the_cases_the_rules_must_handle) {
  GenOptions options = Options("out");
  options.cards = 1000;
  Generate(options);
  const fs::path dir(options.out_dir);

  const auto persons = ReadCsv(dir / "persons.csv");
  std::map<std::string, int> id_numbers;
  for (size_t i = 1; i < persons.size(); ++i) ++id_numbers[persons[i][1]];
  EXPECT_TRUE(std::any_of(id_numbers.begin(), id_numbers.end(), [](const auto& e) { return e.second == 2; }))
      << "an elder registered twice";

  const auto cards = ReadCsv(dir / "cards.csv");
  std::map<std::string, int> cards_per_person;
  int type2 = 0, issued_in_range = 0;
  for (size_t i = 1; i < cards.size(); ++i) {
    ++cards_per_person[cards[i][1]];
    type2 += cards[i][2] == "2";
    issued_in_range += cards[i][4] >= "2024-01-01";
  }
  EXPECT_TRUE(std::any_of(cards_per_person.begin(), cards_per_person.end(), [](const auto& e) {
    return e.second == 2;
  })) << "an elder with two cards";
  EXPECT_GT(type2, 0);
  EXPECT_GT(issued_in_range, 0);

  int64_t utc_rows = 0, rows_of_another_month = 0, just_below = 0, reversals = 0;
  for (const auto& file : TransactionFiles(options.out_dir)) {
    const std::string month = file.filename().string().substr(file.filename().string().size() - 11, 7);
    const bool deposits = file.filename().string().starts_with("deposits-");
    const auto table = ReadCsv(file);
    for (size_t i = 1; i < table.size(); ++i) {
      const Row& row = table[i];
      if (row[4].ends_with("Z")) ++utc_rows;
      if (!row[4].starts_with(month)) ++rows_of_another_month;
      if (deposits && (row[3] == "99.99" || row[3] == "199.99")) ++just_below;
      if (row[2] == "reversal") ++reversals;
    }
  }
  EXPECT_GT(utc_rows, 0);
  EXPECT_GT(rows_of_another_month, 0);
  EXPECT_GT(just_below, 0);
  EXPECT_GT(reversals, 0);

  const auto enrollments = ReadCsv(dir / "enrollments.csv");
  std::set<std::string> programs;
  for (size_t i = 1; i < enrollments.size(); ++i) programs.insert(enrollments[i][1] + "/" + enrollments[i][5]);
  EXPECT_EQ(programs,
            (std::set<std::string>{"gov_home_service/", "home_bed/card_subsidy", "home_bed/home_bed_discount"}));
}

TEST_F(GeneratorTest, options_out_of_range_are_refused_with_a_message) {
  GenSummary summary;
  std::string error;
  GenOptions options = Options("out");
  options.cards = 0;
  EXPECT_FALSE(GenerateDataFolder(options, &summary, &error));
  EXPECT_NE(error.find("--cards"), std::string::npos) << error;

  options = Options("out");
  options.last_month = YearMonth::Of(2023, 12);
  EXPECT_FALSE(GenerateDataFolder(options, &summary, &error));
  EXPECT_NE(error.find("--months"), std::string::npos) << error;

  options = Options("out");
  options.bad_row_share = 0.6;
  EXPECT_FALSE(GenerateDataFolder(options, &summary, &error));
  EXPECT_NE(error.find("--bad-rows"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(options.out_dir));
}

}  // namespace
}  // namespace carecard
