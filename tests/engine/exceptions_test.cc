// ExceptionLog and ExceptionSet: exceptions come out in formats.md order
// (code, file, line as a number, card_no, month; then txn_id, person_id and
// detail), the same whatever the memory budget, the spilled runs and the
// split of rows between logs.
#include "engine/exceptions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "engine/calendar.h"
#include "engine/spill.h"

namespace carecard {
namespace {

// Names whose byte order is not their index order, and one beyond ASCII.
const FileNames kFiles = {"persons.csv", "cards.csv", "deposits_2024.csv", "deposits_2023.csv", "消费.csv", "Z.csv"};

struct Input {
  ExceptionCode code;
  uint16_t file;
  int64_t line;
  std::string txn_id, card_no, person_id;
  int32_t month;  // YearMonth index or -1
  std::string detail;
  bool tentative = false;
};

// What ExceptionSet::Records gives for `in`, built from the input alone.
ExceptionRecord Expected(const Input& in) {
  return ExceptionRecord{ExceptionCodeName(in.code),
                         SeverityOf(in.code),
                         kFiles[in.file],
                         in.line,
                         in.txn_id,
                         in.card_no,
                         in.person_id,
                         in.month >= 0 ? YearMonth::FromIndex(in.month).ToString() : "",
                         in.detail};
}

auto Fields(const ExceptionRecord& r) {
  return std::tie(r.code, r.severity, r.file, r.line, r.txn_id, r.card_no, r.person_id, r.month, r.detail);
}

// formats.md: by code, file, line (as a number), card_no, month; the engine
// adds txn_id, person_id and detail so that the order is total. Strings compare
// as bytes (std::string compares chars as unsigned).
bool FormatsOrder(const ExceptionRecord& a, const ExceptionRecord& b) {
  return std::tie(a.code, a.file, a.line, a.card_no, a.month, a.txn_id, a.person_id, a.detail) <
         std::tie(b.code, b.file, b.line, b.card_no, b.month, b.txn_id, b.person_id, b.detail);
}

void ExpectSameRecords(const std::vector<ExceptionRecord>& got, const std::vector<ExceptionRecord>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(Fields(got[i]), Fields(want[i])) << "record " << i << ": got " << got[i].code << " " << got[i].file
                                               << ":" << got[i].line << " card '" << got[i].card_no << "' month '"
                                               << got[i].month << "' txn '" << got[i].txn_id << "', want "
                                               << want[i].code << " " << want[i].file << ":" << want[i].line
                                               << " card '" << want[i].card_no << "' txn '" << want[i].txn_id << "'";
  }
}

std::vector<ExceptionRecord> InFormatsOrder(const std::vector<Input>& inputs) {
  std::vector<ExceptionRecord> want;
  for (const Input& in : inputs) want.push_back(Expected(in));
  std::sort(want.begin(), want.end(), FormatsOrder);
  return want;
}

// A few hundred exceptions that tie on every prefix of the order: the same
// code, file and line with different cards, months, txn ids, people, details;
// lines whose text order is not their numeric order; exact duplicates; cards
// beyond ASCII ("助医" sorts before "助餐"); one detail larger than the merge's
// read buffer.
std::vector<Input> ManyExceptions() {
  std::mt19937 rng(2024);
  const ExceptionCode codes[] = {ExceptionCode::kBadRow, ExceptionCode::kUnknownCard, ExceptionCode::kOverdraft,
                                 ExceptionCode::kDuplicateTxn, ExceptionCode::kBadAmount, ExceptionCode::kUnknownStation,
                                 ExceptionCode::kOverReversal, ExceptionCode::kDuplicateCard};
  const int64_t lines[] = {2, 9, 10, 100, 11, 1'000'000, kMaxLinesPerFile};
  const std::string cards[] = {"", "K1", "K10", "K2", "助医", "助餐", "k1"};
  const int32_t months[] = {-1, YearMonth::Of(2023, 12).index(), YearMonth::Of(2024, 1).index(),
                            YearMonth::Of(2024, 10).index()};
  const std::string people[] = {"", "P1", "P10"};
  std::vector<Input> v;
  for (int i = 0; i < 300; ++i) {
    Input in;
    in.code = codes[rng() % std::size(codes)];
    in.file = static_cast<uint16_t>(rng() % kFiles.size());
    in.line = lines[rng() % std::size(lines)];
    in.txn_id = rng() % 4 == 0 ? "" : "T" + std::to_string(rng() % 5);
    in.card_no = cards[rng() % std::size(cards)];
    in.person_id = people[rng() % std::size(people)];
    in.month = months[rng() % std::size(months)];
    in.detail = rng() % 3 == 0 ? "" : "detail " + std::to_string(rng() % 3);
    v.push_back(in);
    if (i % 25 == 0) v.push_back(in);  // the same exception twice
  }
  Input big{ExceptionCode::kTooLong, 0, 5, "T-big", "K1", "", -1, std::string(300 * 1024, 'd')};
  v.push_back(big);
  big.detail.back() = 'e';
  v.push_back(big);
  return v;
}

void AddTo(ExceptionLog* log, const Input& in) {
  log->Add(in.code, in.file, in.line, in.txn_id, in.card_no, in.person_id, in.month, in.detail, in.tentative);
}

// The set of `inputs` added in their order to `logs` logs (input i to log
// assign(i)), each with `budget` bytes and the spill (nullptr: in memory).
std::vector<ExceptionRecord> Merged(const std::vector<Input>& inputs, SpillStore* spill, size_t budget, int logs,
                                    const std::function<int(size_t)>& assign) {
  std::vector<ExceptionLog> log;
  for (int i = 0; i < logs; ++i) log.emplace_back(&kFiles, spill, budget);
  for (size_t i = 0; i < inputs.size(); ++i) AddTo(&log[static_cast<size_t>(assign(i))], inputs[i]);
  ExceptionSet set(&kFiles, spill);
  for (auto& l : log) set.Absorb(std::move(l));
  set.Seal();
  EXPECT_EQ(set.size(), static_cast<int64_t>(inputs.size()));
  return set.Records();
}

std::vector<ExceptionRecord> OneLog(const std::vector<Input>& inputs, SpillStore* spill, size_t budget) {
  return Merged(inputs, spill, budget, 1, [](size_t) { return 0; });
}

TEST(exception_codes, are_declared_in_the_byte_order_of_their_names) {
  for (int i = 0; i < kExceptionCodeCount; ++i) {
    const auto code = static_cast<ExceptionCode>(i);
    EXPECT_EQ(ExceptionCodeFromName(ExceptionCodeName(code)), code);
    if (i > 0) {
      EXPECT_LT(std::string(ExceptionCodeName(static_cast<ExceptionCode>(i - 1))), ExceptionCodeName(code));
    }
  }
  EXPECT_EQ(ExceptionCodeFromName("bad_row"), ExceptionCode::kBadRow);
  EXPECT_FALSE(ExceptionCodeFromName("no_such_code").has_value());
  EXPECT_FALSE(ExceptionCodeFromName("").has_value());
}

TEST(exception_codes, warnings_are_the_codes_that_keep_their_row) {
  EXPECT_EQ(SeverityOf(ExceptionCode::kOverdraft), Severity::kWarning);
  EXPECT_EQ(SeverityOf(ExceptionCode::kCrossCenterConsumption), Severity::kWarning);
  EXPECT_EQ(SeverityOf(ExceptionCode::kDuplicatePerson), Severity::kWarning);
  EXPECT_EQ(SeverityOf(ExceptionCode::kBadRow), Severity::kError);
  EXPECT_EQ(SeverityOf(ExceptionCode::kDuplicateTxn), Severity::kError);
  EXPECT_STREQ(SeverityName(Severity::kError), "error");
  EXPECT_STREQ(SeverityName(Severity::kWarning), "warning");
}

TEST(exception_set, a_log_in_memory_yields_its_exceptions_in_formats_md_order) {
  const std::vector<Input> inputs = ManyExceptions();
  ExpectSameRecords(OneLog(inputs, nullptr, 0), InFormatsOrder(inputs));
}

TEST(exception_set, lines_compare_as_numbers_and_files_by_name_not_by_index) {
  const std::vector<Input> inputs = {
      {ExceptionCode::kBadRow, 0, 10, "", "", "", -1, ""},  // persons.csv
      {ExceptionCode::kBadRow, 1, 9, "", "", "", -1, ""},   // cards.csv
      {ExceptionCode::kBadRow, 0, 9, "", "", "", -1, ""},
      {ExceptionCode::kBadRow, 0, 100, "", "", "", -1, ""},
      {ExceptionCode::kBadAmount, 5, 2, "", "", "", -1, ""},  // Z.csv, but bad_amount sorts first
  };
  const std::vector<ExceptionRecord> got = OneLog(inputs, nullptr, 0);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0].code, "bad_amount");
  EXPECT_EQ(std::tie(got[1].file, got[1].line), std::make_tuple(std::string("cards.csv"), int64_t{9}));
  EXPECT_EQ(std::tie(got[2].file, got[2].line), std::make_tuple(std::string("persons.csv"), int64_t{9}));
  EXPECT_EQ(got[3].line, 10);
  EXPECT_EQ(got[4].line, 100);
}

TEST(exception_set, a_tiny_budget_spills_many_runs_and_merges_to_what_a_large_budget_gives) {
  const std::vector<Input> inputs = ManyExceptions();
  const std::vector<ExceptionRecord> want = InFormatsOrder(inputs);
  for (size_t budget : {size_t{1}, size_t{700}, size_t{5000}, size_t{400'000}, size_t{64} << 20}) {
    SCOPED_TRACE("budget " + std::to_string(budget));
    MemorySpillStore spill;
    ExpectSameRecords(OneLog(inputs, &spill, budget), want);
    if (budget < 400'000) {
      EXPECT_GT(spill.size(), 0u);  // runs were spilled
    } else if (budget > 1'000'000) {
      EXPECT_EQ(spill.size(), 0u);  // everything fit
    }
  }
}

TEST(exception_set, the_order_does_not_depend_on_how_rows_are_split_between_logs) {
  const std::vector<Input> inputs = ManyExceptions();
  const std::vector<ExceptionRecord> want = InFormatsOrder(inputs);
  const size_t n = inputs.size();
  std::mt19937 rng(3);
  std::vector<int> random_log(n);
  for (auto& l : random_log) l = static_cast<int>(rng() % 5);
  struct Split {
    const char* name;
    int logs;
    std::function<int(size_t)> log_of;
  };
  const Split splits[] = {
      {"round robin over 3", 3, [](size_t i) { return static_cast<int>(i % 3); }},
      {"contiguous halves", 2, [n](size_t i) { return i < n / 2 ? 0 : 1; }},
      {"all in the last of 4", 4, [](size_t) { return 3; }},  // empty logs too
      {"random over 5", 5, [&](size_t i) { return random_log[i]; }},
  };
  for (const Split& split : splits) {
    for (size_t budget : {size_t{600}, size_t{64} << 20}) {
      SCOPED_TRACE(std::string(split.name) + ", budget " + std::to_string(budget));
      MemorySpillStore spill;
      ExpectSameRecords(Merged(inputs, &spill, budget, split.logs, split.log_of), want);
    }
    SCOPED_TRACE(std::string(split.name) + ", in memory");
    ExpectSameRecords(Merged(inputs, nullptr, 0, split.logs, split.log_of), want);
  }
}

TEST(exception_set, superseded_tentative_rejections_are_skipped_whatever_the_budget) {
  // Row (file 2, line 7) had a tentative unknown_card; a later duplicate verdict
  // replaces it. The duplicate verdict itself and a firm exception on the same
  // row stay, and so does a tentative rejection of another row.
  const std::vector<Input> inputs = {
      {ExceptionCode::kUnknownCard, 2, 7, "T1", "K9", "", -1, "card_no 'K9' is not a known card", true},
      {ExceptionCode::kDuplicateTxn, 2, 7, "T1", "K9", "", -1, "", false},
      {ExceptionCode::kOverdraft, 2, 7, "T1", "K9", "", -1, "", false},
      {ExceptionCode::kUnknownCard, 2, 8, "T2", "K9", "", -1, "", true},
      {ExceptionCode::kBadAmount, 3, 7, "T1", "K9", "", -1, "", true},  // line 7 of another file
  };
  std::vector<ExceptionRecord> want;
  for (size_t i = 1; i < inputs.size(); ++i) want.push_back(Expected(inputs[i]));
  std::sort(want.begin(), want.end(), FormatsOrder);
  for (size_t budget : {size_t{1}, size_t{64} << 20}) {
    SCOPED_TRACE("budget " + std::to_string(budget));
    MemorySpillStore spill;
    ExceptionLog log(&kFiles, &spill, budget);
    for (const Input& in : inputs) AddTo(&log, in);
    EXPECT_EQ(log.count(), 5);
    ExceptionSet set(&kFiles, &spill);
    set.Absorb(std::move(log));
    set.Supersede(RowKey(2, 7), ExceptionCode::kUnknownCard);
    set.Seal();
    ExpectSameRecords(set.Records(), want);
    EXPECT_EQ(set.size(), 4);
    EXPECT_EQ(set.counts()[static_cast<size_t>(ExceptionCode::kUnknownCard)], 1);
    EXPECT_EQ(set.counts()[static_cast<size_t>(ExceptionCode::kDuplicateTxn)], 1);
  }
}

TEST(exception_set, counts_are_by_code_over_every_log) {
  const std::vector<Input> inputs = ManyExceptions();
  std::array<int64_t, kExceptionCodeCount> want{};
  for (const Input& in : inputs) ++want[static_cast<size_t>(in.code)];
  MemorySpillStore spill;
  ExceptionLog a(&kFiles, &spill, 1000), b(&kFiles, &spill, 1000);
  for (size_t i = 0; i < inputs.size(); ++i) AddTo(i % 2 ? &a : &b, inputs[i]);
  EXPECT_EQ(a.count() + b.count(), static_cast<int64_t>(inputs.size()));
  ExceptionSet set(&kFiles, &spill);
  set.Absorb(std::move(a));
  set.Absorb(std::move(b));
  set.Seal();
  EXPECT_EQ(set.counts(), want);
  EXPECT_EQ(set.size(), static_cast<int64_t>(inputs.size()));
}

TEST(exception_set, a_view_carries_the_fields_as_added) {
  FileNames files = {"deposits.csv"};
  ExceptionLog log(&files, nullptr, 0);
  log.Add(ExceptionCode::kOverdraft, 0, 42, "T7", "K1", "P1", YearMonth::Of(2024, 2), "balance -3.00");
  log.Add(ExceptionCode::kBadDate, 0, 43, "T8", "K1", "", std::nullopt, "at 'x'");
  ExceptionSet set(&files, nullptr);
  set.Absorb(std::move(log));
  set.Seal();
  std::vector<std::string> seen;
  set.ForEach([&](const ExceptionView& v) {
    seen.push_back(std::string(ExceptionCodeName(v.code)) + "|" + files[v.file] + "|" + std::to_string(v.line) + "|" +
                   std::string(v.txn_id) + "|" + std::string(v.card_no) + "|" + std::string(v.person_id) + "|" +
                   std::to_string(v.month) + "|" + std::string(v.detail) + "|" + SeverityName(v.severity()));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "bad_date|deposits.csv|43|T8|K1||-1|at 'x'|error",
                      "overdraft|deposits.csv|42|T7|K1|P1|" + std::to_string(YearMonth::Of(2024, 2).index()) +
                          "|balance -3.00|warning",
                  }));
  const std::vector<ExceptionRecord> records = set.Records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].month, "");
  EXPECT_EQ(records[1].month, "2024-02");
}

}  // namespace
}  // namespace carecard
