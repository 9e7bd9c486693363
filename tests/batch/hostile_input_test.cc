// Hostile data folders (issue 6): every malformed input ends in a defined
// outcome — status 0 with the bad rows in exceptions.csv (file, line, code), or
// status 2 with a message naming the file — never a crash, a hang, a silent
// skip or a wrong number. Each case starts from a copy of the worked example
// and damages one thing; the data is generated here, nothing is committed.
//
// Every settled run is also checked for what must hold whatever the input: the
// output CSVs parse cleanly as UTF-8, no cell starts like a formula, and for
// every input file rows read = accepted + rejected + deferred, with exactly one
// error in exceptions.csv per rejected row.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/csv_reader.h"
#include "batch/settle_command.h"
#include "rules/policy_loader.h"
#include "tests/batch/test_files.h"

namespace carecard {
namespace {
namespace fs = std::filesystem;
using testing::ExampleDir;
using testing::RunCarecardCapture;
using testing::Slurp;
using testing::TempDir;
using testing::WriteFile;

using Table = std::vector<std::vector<std::string>>;

const char* const kOutputCsvs[] = {"card_months.csv", "adjustments.csv",           "payouts.csv",
                                   "statements.csv",  "consumption_by_center.csv", "homebed_exclusions.csv",
                                   "exceptions.csv"};

// Parses CSV bytes properly (quotes, multi-line cells). A row the reader cannot
// read cleanly (bad quoting, not UTF-8, over a limit) fails the test.
Table ParseCsv(const std::string& bytes, const std::string& name) {
  Table rows;
  auto reader = CsvReader::FromString(bytes, name);
  CsvRow row;
  while (reader->Next(&row)) {
    EXPECT_EQ(row.problem, CsvProblem::kNone) << name << ":" << row.line << ": " << CsvProblemText(row.problem);
    rows.push_back(row.cells);
  }
  return rows;
}

// A spreadsheet runs a cell as a formula when it starts with = + @ TAB CR, or
// '-' followed by anything but a digit (formats.md; csv_writer.h).
bool LooksLikeFormula(const std::string& cell) {
  if (cell.empty()) return false;
  const char c = cell[0];
  if (c == '=' || c == '+' || c == '@' || c == '\t' || c == '\r') return true;
  return c == '-' && (cell.size() < 2 || cell[1] < '0' || cell[1] > '9');
}

// Writes one CSV cell, quoted where needed (for building inputs).
std::string CsvCell(const std::string& cell) {
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string out = "\"";
  for (char c : cell) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

std::string CsvText(const Table& rows) {
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + CsvCell(row[i]);
    out += "\n";
  }
  return out;
}

struct ExceptionRow {
  std::string code, severity, file;
  int64_t line = 0;
  std::string txn_id, card_no, person_id, detail;
};

struct Outcome {
  int status = -1;
  std::string out, err;
  std::string period_dir;  // BOOK/2024-B1
  std::vector<ExceptionRow> exceptions;
  nlohmann::json manifest;

  // The lines of `file` that have an exception with `code`, in file order.
  std::vector<int64_t> Lines(const std::string& code, const std::string& file) const {
    std::vector<int64_t> lines;
    for (const auto& e : exceptions) {
      if (e.code == code && e.file == file) lines.push_back(e.line);
    }
    return lines;
  }
  const ExceptionRow* At(const std::string& file, int64_t line) const {
    for (const auto& e : exceptions) {
      if (e.file == file && e.line == line) return &e;
    }
    return nullptr;
  }
  const nlohmann::json* Input(const std::string& file) const {
    for (const auto& input : manifest["inputs"]) {
      if (input["file"] == file) return &input;
    }
    return nullptr;
  }
  Table Output(const std::string& name) const { return ParseCsv(Slurp(period_dir + "/" + name), name); }
};

// A data folder: a copy of the example's, to damage.
class Folder {
 public:
  Folder() {
    fs::create_directories(data());
    for (const auto& entry : fs::directory_iterator(ExampleDir() + "/data")) {
      fs::copy_file(entry.path(), data() + "/" + entry.path().filename().string());
    }
  }
  std::string data() const { return dir_ / "data"; }
  std::string path(const std::string& file) const { return data() + "/" + file; }
  std::string Read(const std::string& file) const { return Slurp(path(file)); }
  void Write(const std::string& file, const std::string& bytes) const { WriteFile(path(file), bytes); }
  void Append(const std::string& file, const std::string& bytes) const { Write(file, Read(file) + bytes); }
  void Remove(const std::string& file) const { fs::remove(path(file)); }
  // The physical line the next appended line will have (files end with LF).
  int64_t NextLine(const std::string& file) const {
    const std::string bytes = Read(file);
    return 1 + static_cast<int64_t>(std::count(bytes.begin(), bytes.end(), '\n'));
  }

  // Settles 2024-B1 of this folder into a fresh book, in-process, with one
  // thread and again with two (the reader then works ahead in a thread of its
  // own): both must end alike, byte for byte.
  Outcome Settle(int64_t max_rejects = 1'000'000) const {
    Outcome one = SettleWith(max_rejects, 1);
    const Outcome two = SettleWith(max_rejects, 2);
    EXPECT_EQ(one.status, two.status);
    EXPECT_EQ(one.err, two.err);
    if (one.status == kExitOk && two.status == kExitOk) {
      for (const char* name : kOutputCsvs) {
        EXPECT_EQ(Slurp(one.period_dir + "/" + name), Slurp(two.period_dir + "/" + name)) << name << " with 2 threads";
      }
      EXPECT_EQ(one.manifest["inputs"], two.manifest["inputs"]);
    }
    return one;
  }

 private:
  Outcome SettleWith(int64_t max_rejects, int threads) const {
    SettleOptions o;
    o.threads = threads;
    o.data_dir = data();
    o.rules_path = ExampleDir() + "/rules.yaml";
    o.book_dir = dir_ / ("book-" + std::to_string(++runs_));
    o.period = "2024-B1";
    o.max_rejects = max_rejects;
    std::ostringstream out, err;
    Outcome run;
    run.status = RunSettle(o, out, err);
    run.out = out.str();
    run.err = err.str();
    run.period_dir = o.book_dir + "/2024-B1";
    if (run.status != kExitOk) {
      EXPECT_FALSE(fs::exists(run.period_dir)) << "a refused run writes nothing";
      return run;
    }
    Table exceptions = run.Output("exceptions.csv");
    EXPECT_FALSE(exceptions.empty());
    std::map<std::string, size_t> column;
    for (size_t i = 0; !exceptions.empty() && i < exceptions[0].size(); ++i) column[exceptions[0][i]] = i;
    for (size_t r = 1; r < exceptions.size(); ++r) {
      const auto& c = exceptions[r];
      run.exceptions.push_back(ExceptionRow{c[column["code"]], c[column["severity"]], c[column["file"]],
                                            std::stoll(c[column["line"]].empty() ? "0" : c[column["line"]]),
                                            c[column["txn_id"]], c[column["card_no"]], c[column["person_id"]],
                                            c[column["detail"]]});
    }
    run.manifest = nlohmann::json::parse(Slurp(run.period_dir + "/manifest.json"));
    ExpectSound(run);
    return run;
  }

  // What holds for every settled run, whatever the input.
  static void ExpectSound(const Outcome& run) {
    for (const char* name : kOutputCsvs) {
      for (const auto& row : run.Output(name)) {
        for (const auto& cell : row) EXPECT_FALSE(LooksLikeFormula(cell)) << name << ": cell '" << cell << "'";
      }
    }
    std::map<std::string, int64_t> errors_by_file;
    for (const auto& e : run.exceptions) {
      EXPECT_FALSE(e.file.empty()) << e.code;
      EXPECT_GE(e.line, 2) << e.code << " in " << e.file;
      // duplicate_card is an error about a card-month, not a rejected row.
      if (e.severity == "error" && e.code != "duplicate_card") ++errors_by_file[e.file];
    }
    for (const auto& input : run.manifest["inputs"]) {
      const std::string file = input["file"];
      const int64_t read = input["rows_read"], accepted = input["rows_accepted"], rejected = input["rows_rejected"],
                    deferred = input["rows_deferred"];
      EXPECT_EQ(read, accepted + rejected + deferred) << file;
      EXPECT_EQ(rejected, errors_by_file[file]) << file << ": one error per rejected row";
    }
  }

  TempDir dir_;
  mutable int runs_ = 0;
};

const std::string kDepositHeader = "txn_id,card_no,kind,amount,at,channel,ref_txn_id\n";
const std::string kConsumptionHeader = "txn_id,card_no,kind,amount,at,station_id,service,ref_txn_id\n";

// --- empty and header-only files -----------------------------------------------------------------

TEST(hostile_input, an_empty_required_file_refuses_the_run_naming_the_file) {
  for (const std::string& empty : {std::string(), std::string("\xEF\xBB\xBF"), std::string("\n\r\n\n")}) {
    Folder folder;
    folder.Write("cards.csv", empty);
    const Outcome run = folder.Settle();
    EXPECT_EQ(run.status, kExitRefused);
    EXPECT_NE(run.err.find("cards.csv: the file is empty"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("card_no,person_id,card_type,center_id,issued_on,closed_on"), std::string::npos) << run.err;
  }
}

TEST(hostile_input, an_empty_optional_file_refuses_the_run_too_but_an_absent_one_has_no_rows) {
  Folder folder;
  folder.Write("stations.csv", "");
  const Outcome empty = folder.Settle();
  EXPECT_EQ(empty.status, kExitRefused);
  EXPECT_NE(empty.err.find("stations.csv: the file is empty"), std::string::npos) << empty.err;
  folder.Remove("stations.csv");
  const Outcome absent = folder.Settle();
  EXPECT_EQ(absent.status, kExitOk) << absent.err;
  EXPECT_EQ(absent.Input("stations.csv"), nullptr);
}

TEST(hostile_input, a_header_only_file_is_accepted_with_no_rows) {
  Folder folder;
  folder.Write("deposits-2024-02.csv", kDepositHeader);
  folder.Write("consumption-2024-02.csv",
               "\xEF\xBB\xBF"
               "txn_id,card_no,kind,amount,at,station_id,service,ref_txn_id\r\n");
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  for (const char* file : {"deposits-2024-02.csv", "consumption-2024-02.csv"}) {
    const nlohmann::json* input = run.Input(file);
    ASSERT_NE(input, nullptr) << file;
    EXPECT_EQ((*input)["rows_read"], 0) << file;
  }
}

// --- garbage, long lines, encodings --------------------------------------------------------------

std::string Garbage(size_t bytes, uint32_t seed) {
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    seed = seed * 1103515245u + 12345u;
    out.push_back(static_cast<char>(seed >> 16));
  }
  return out;
}

TEST(hostile_input, binary_garbage_after_a_header_is_rejected_row_by_row) {
  Folder folder;
  folder.Write("deposits-2024-02.csv", kDepositHeader + Garbage(20000, 7));
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const nlohmann::json* input = run.Input("deposits-2024-02.csv");
  ASSERT_NE(input, nullptr);
  EXPECT_GT((*input)["rows_read"], 10);
  EXPECT_EQ((*input)["rows_accepted"], 0);
  for (const auto& e : run.exceptions) {
    if (e.file != "deposits-2024-02.csv") continue;
    EXPECT_TRUE(e.code == "bad_encoding" || e.code == "bad_row" || e.code == "too_long") << e.code << " " << e.detail;
  }
  EXPECT_FALSE(run.Lines("bad_encoding", "deposits-2024-02.csv").empty());
}

TEST(hostile_input, a_file_of_binary_garbage_refuses_the_run_naming_the_file) {
  Folder folder;
  folder.Write("consumption-2024-01.csv", Garbage(5000, 11));
  const Outcome run = folder.Settle();
  EXPECT_EQ(run.status, kExitRefused);
  EXPECT_NE(run.err.find("consumption-2024-01.csv"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("txn_id,card_no,kind,amount,at,station_id,service,ref_txn_id"), std::string::npos) << run.err;
}

TEST(hostile_input, a_utf16_file_refuses_the_run_saying_which_encoding_is_expected) {
  Folder folder;
  std::string utf16 = "\xFF\xFE";
  for (char c : folder.Read("centers.csv").substr(0, 60)) {
    utf16.push_back(c);
    utf16.push_back('\0');
  }
  folder.Write("centers.csv", utf16);
  const Outcome run = folder.Settle();
  EXPECT_EQ(run.status, kExitRefused);
  EXPECT_NE(run.err.find("centers.csv:1: the header cannot be read"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("UTF-16"), std::string::npos) << run.err;
}

TEST(hostile_input, a_line_of_hundreds_of_kilobytes_is_too_long_and_the_next_row_is_read) {
  Folder folder;
  const int64_t long_line = folder.NextLine("deposits-2024-02.csv");
  folder.Append("deposits-2024-02.csv", "D900,QD0001,deposit,1.00,2024-02-10T10:00:00+08:00," +
                                            std::string(300'000, 'x') +
                                            ",\nD901,QD0001,deposit,1.00,2024-02-10T10:00:00+08:00,cash,\n");
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  EXPECT_EQ(run.Lines("too_long", "deposits-2024-02.csv"), std::vector<int64_t>{long_line});
  const ExceptionRow* e = run.At("deposits-2024-02.csv", long_line);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->detail.find("65536"), std::string::npos) << e->detail;
  EXPECT_EQ(run.At("deposits-2024-02.csv", long_line + 1), nullptr) << "D901 is accepted";
  EXPECT_EQ((*run.Input("deposits-2024-02.csv"))["rows_read"], 12);
  EXPECT_EQ((*run.Input("deposits-2024-02.csv"))["rows_rejected"], 1);
}

TEST(hostile_input, a_cell_over_the_field_limit_is_too_long_naming_the_column_and_the_limit) {
  Folder folder;
  const int64_t line = folder.NextLine("deposits-2024-02.csv");
  folder.Append("deposits-2024-02.csv",
                "D900,QD0001,deposit,1.00,2024-02-10T10:00:00+08:00," + std::string(kMaxFieldBytes + 1, 'x') + ",\n");
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const ExceptionRow* e = run.At("deposits-2024-02.csv", line);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, "too_long");
  EXPECT_NE(e->detail.find("'channel'"), std::string::npos) << e->detail;
  EXPECT_NE(e->detail.find("4096"), std::string::npos) << e->detail;
}

TEST(hostile_input, more_cells_than_the_column_limit_is_too_long_naming_the_limit) {
  Folder folder;
  const int64_t line = folder.NextLine("deposits-2024-02.csv");
  folder.Append("deposits-2024-02.csv", "D900" + std::string(kMaxColumns + 5, ',') + "\n");
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const ExceptionRow* e = run.At("deposits-2024-02.csv", line);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, "too_long");
  EXPECT_NE(e->detail.find("256"), std::string::npos) << e->detail;
}

// LF + no BOM, CRLF + BOM: every output file but the manifest (which holds the
// input files' hashes) is byte-identical.
void ExpectSameOutputs(const Outcome& a, const Outcome& b) {
  for (const char* name : kOutputCsvs) {
    EXPECT_EQ(Slurp(a.period_dir + "/" + name), Slurp(b.period_dir + "/" + name)) << name;
  }
  EXPECT_EQ(a.manifest["control_totals"], b.manifest["control_totals"]);
}

TEST(hostile_input, crlf_line_ends_and_a_bom_give_the_same_results_as_lf) {
  Folder plain, windows;
  for (const auto& entry : fs::directory_iterator(windows.data())) {
    const std::string file = entry.path().filename().string();
    std::string crlf = "\xEF\xBB\xBF";
    for (char c : windows.Read(file)) {
      if (c == '\n') crlf.push_back('\r');
      crlf.push_back(c);
    }
    windows.Write(file, crlf);
  }
  const Outcome a = plain.Settle(), b = windows.Settle();
  ASSERT_EQ(a.status, kExitOk) << a.err;
  ASSERT_EQ(b.status, kExitOk) << b.err;
  EXPECT_GT(a.exceptions.size(), 5u);
  ExpectSameOutputs(a, b);
}

TEST(hostile_input, columns_in_another_order_and_extra_columns_give_the_same_results) {
  // Shuffled: every column elsewhere, extra ones among them. Trailing: the
  // columns in their order with one more after them (rows used as they are).
  Folder plain, shuffled, trailing;
  for (const auto& entry : fs::directory_iterator(shuffled.data())) {
    const std::string file = entry.path().filename().string();
    Table rows = ParseCsv(shuffled.Read(file), file);
    Table with_trailing = rows;
    for (size_t r = 0; r < rows.size(); ++r) {
      std::reverse(rows[r].begin(), rows[r].end());
      rows[r].insert(rows[r].begin() + 1, r == 0 ? "remark" : "=extra, \"ignored\"");
      rows[r].push_back(r == 0 ? "exported_by" : "office");
      with_trailing[r].push_back(r == 0 ? "exported_by" : "office");
    }
    shuffled.Write(file, CsvText(rows));
    trailing.Write(file, CsvText(with_trailing));
  }
  const Outcome a = plain.Settle(), b = shuffled.Settle(), c = trailing.Settle();
  ASSERT_EQ(a.status, kExitOk) << a.err;
  ASSERT_EQ(b.status, kExitOk) << b.err;
  ASSERT_EQ(c.status, kExitOk) << c.err;
  ExpectSameOutputs(a, b);
  ExpectSameOutputs(a, c);
}

// --- refusals: missing files and columns, file names ---------------------------------------------

TEST(hostile_input, a_missing_required_file_refuses_the_run_naming_it) {
  for (const char* file : {"centers.csv", "persons.csv", "cards.csv"}) {
    Folder folder;
    folder.Remove(file);
    const Outcome run = folder.Settle();
    EXPECT_EQ(run.status, kExitRefused) << file;
    EXPECT_NE(run.err.find(std::string(file) + "' is missing"), std::string::npos) << run.err;
  }
}

TEST(hostile_input, a_missing_required_column_refuses_the_run_naming_file_and_column) {
  Folder folder;
  folder.Write("deposits-2024-02.csv", "txn_id,card_no,kind,at,channel,ref_txn_id\nD900,QD0001,deposit,x,cash,\n");
  const Outcome run = folder.Settle();
  EXPECT_EQ(run.status, kExitRefused);
  EXPECT_NE(run.err.find("deposits-2024-02.csv: the header has no column 'amount'"), std::string::npos) << run.err;
}

TEST(hostile_input, a_misspelt_header_refuses_the_run_with_a_hint) {
  Folder folder;
  std::string bytes = folder.Read("cards.csv");
  bytes.replace(0, 7, "Card_No ");
  folder.Write("cards.csv", bytes);
  const Outcome cased = folder.Settle();
  EXPECT_EQ(cased.status, kExitRefused);
  EXPECT_NE(cased.err.find("no column 'card_no' (found 'Card_No '"), std::string::npos) << cased.err;

  Folder semicolons;
  std::string text = semicolons.Read("centers.csv");
  std::replace(text.begin(), text.end(), ',', ';');
  semicolons.Write("centers.csv", text);
  const Outcome run = semicolons.Settle();
  EXPECT_EQ(run.status, kExitRefused);
  EXPECT_NE(run.err.find("not semicolons"), std::string::npos) << run.err;
}

TEST(hostile_input, an_input_file_with_a_name_that_is_not_utf8_or_not_lowercase_refuses_the_run) {
  Folder gbk_name;
  gbk_name.Write("deposits-\xB2\xB9\xB5\xC7.csv",
                 kDepositHeader);  // 补登 in GBK
  const Outcome a = gbk_name.Settle();
  EXPECT_EQ(a.status, kExitRefused);
  EXPECT_NE(a.err.find("deposits-\\xB2\\xB9\\xB5\\xC7.csv' is not UTF-8"), std::string::npos) << a.err;

  Folder upper;
  upper.Write("Deposits-2024-03.csv", kDepositHeader);
  const Outcome b = upper.Settle();
  EXPECT_EQ(b.status, kExitRefused);
  EXPECT_NE(b.err.find("'Deposits-2024-03.csv' looks like an input file"), std::string::npos) << b.err;
}

// --- rows rejected with their line ---------------------------------------------------------------

TEST(hostile_input, gbk_encoded_names_are_rejected_as_bad_encoding_saying_utf8_was_expected) {
  Folder folder;
  const int64_t line = folder.NextLine("persons.csv");
  // 王小明 in GBK; a valid resident id.
  folder.Append("persons.csv", "P90,370285195003100762,\xCD\xF5\xD0\xA1\xC3\xF7,1950-03-10,rural,,,\n");
  const int64_t card_line = folder.NextLine("cards.csv");
  folder.Append("cards.csv", "QD0090,P90,1,C01,2022-06-01,\n");
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const ExceptionRow* e = run.At("persons.csv", line);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, "bad_encoding");
  EXPECT_NE(e->detail.find("column 3 ('name') is not valid UTF-8"), std::string::npos) << e->detail;
  EXPECT_NE(e->detail.find("saved as UTF-8"), std::string::npos) << e->detail;
  const ExceptionRow* card = run.At("cards.csv", card_line);
  ASSERT_NE(card, nullptr);
  EXPECT_EQ(card->code, "unknown_person");  // the rejection cascades
}

TEST(hostile_input, an_id_number_in_chinese_is_masked_without_breaking_utf8) {
  Folder folder;
  const int64_t line = folder.NextLine("persons.csv");
  folder.Append("persons.csv", "P91,身份证号码未知请补录谢谢,王小明,1950-03-10,rural,,,\n");
  const Outcome run = folder.Settle();  // parsing exceptions.csv checks it is UTF-8
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const ExceptionRow* e = run.At("persons.csv", line);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, "bad_id_number");
  // 12 characters: the first 6 and the last 4 kept, whole.
  EXPECT_NE(e->detail.find("身份证号码未**补录谢谢"), std::string::npos) << e->detail;
}

TEST(hostile_input, unterminated_and_stray_quotes_are_bad_rows_and_doubled_quotes_are_read) {
  Folder folder;
  const int64_t first = folder.NextLine("deposits-2024-02.csv");
  folder.Append("deposits-2024-02.csv",
                // accepted: doubled quotes inside a quoted cell
                "D900,QD0001,deposit,1.00,2024-02-10T10:00:00+08:00,\"we\"\"chat \"\"app\"\"\",\n"
                // a stray quote inside an unquoted cell
                "D901,QD0001,deposit,1.00,2024-02-10T10:00:00+08:00,we\"chat,\n"
                // text after a closing quote
                "D902,QD0001,deposit,1.00,2024-02-10T10:00:00+08:00,\"wechat\"x,\n"
                // a quote never closed: the row swallows D904
                "D903,QD0001,deposit,1.00,2024-02-10T10:00:00+08:00,\"wechat,\n"
                "D904,QD0001,deposit,1.00,2024-02-10T10:00:00+08:00,cash,\n");
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  EXPECT_EQ(run.At("deposits-2024-02.csv", first), nullptr);
  EXPECT_EQ(run.Lines("bad_row", "deposits-2024-02.csv"), (std::vector<int64_t>{first + 1, first + 2, first + 3}));
  const ExceptionRow* open = run.At("deposits-2024-02.csv", first + 3);
  ASSERT_NE(open, nullptr);
  EXPECT_NE(open->detail.find("not closed before the end of the file"), std::string::npos) << open->detail;
  // The open quote swallowed D904: one row, read and rejected, never lost.
  EXPECT_EQ((*run.Input("deposits-2024-02.csv"))["rows_read"], 10 + 4);
}

TEST(hostile_input, full_width_digits_thousands_separators_and_other_amount_forms_are_bad_amounts) {
  Folder folder;
  const int64_t first = folder.NextLine("deposits-2024-02.csv");
  const std::vector<std::string> amounts = {"１００.００", "\"1,000.00\"",    "1 000.00", " 100.00", "100.00 ", "1e2",
                                            "100.000",     "-5.00",           "0.00",     "+100",    "¥100",    "100.",
                                            ".50",         "1000000000000.00"};
  std::string rows;
  for (size_t i = 0; i < amounts.size(); ++i) {
    rows += "D9" + std::to_string(10 + i) + ",QD0001,deposit," + amounts[i] + ",2024-02-10T10:00:00+08:00,cash,\n";
  }
  folder.Append("deposits-2024-02.csv", rows);
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  std::vector<int64_t> expected;
  for (size_t i = 0; i < amounts.size(); ++i) expected.push_back(first + static_cast<int64_t>(i));
  EXPECT_EQ(run.Lines("bad_amount", "deposits-2024-02.csv"), expected);
}

TEST(hostile_input, impossible_dates_and_times_and_timestamps_without_offset_are_bad_dates) {
  Folder folder;
  const int64_t first = folder.NextLine("deposits-2024-02.csv");
  const std::vector<std::string> stamps = {
      "2024-02-30T10:00:00+08:00", "2023-02-29T10:00:00+08:00",  "2024-01-15T24:00:00+08:00",
      "2024-01-15T23:59:60+08:00", "2024-01-15T10:00:00",        "2024-01-15 10:00:00+08:00",
      "2024-13-01T10:00:00+08:00", "2024-01-15T10:00:00+24:00",  "2024-01-15",
      "15/01/2024 10:00",          "2024-01-15T10:00:00.+08:00", "２０２４-01-15T10:00:00+08:00"};
  std::string rows;
  for (size_t i = 0; i < stamps.size(); ++i) {
    rows += "D9" + std::to_string(10 + i) + ",QD0001,deposit,1.00," + stamps[i] + ",cash,\n";
  }
  folder.Append("deposits-2024-02.csv", rows);
  const int64_t person = folder.NextLine("persons.csv");
  folder.Append("persons.csv", "P92,370285195003100762,王小明,1950-02-30,rural,,,\n");
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  std::vector<int64_t> expected;
  for (size_t i = 0; i < stamps.size(); ++i) expected.push_back(first + static_cast<int64_t>(i));
  EXPECT_EQ(run.Lines("bad_date", "deposits-2024-02.csv"), expected);
  EXPECT_EQ(run.Lines("bad_date", "persons.csv"), std::vector<int64_t>{person});
}

// --- amounts at the limit ------------------------------------------------------------------------

std::string MaxDeposits(int rows) {
  std::string out = kDepositHeader;
  out.reserve(static_cast<size_t>(rows) * 72);
  for (int i = 0; i < rows; ++i) {
    out += "M" + std::to_string(i) + ",QD0002,deposit,999999999999.99,2024-01-20T10:00:00+08:00,bank,\n";
  }
  return out;
}

std::string StatementCell(const Outcome& run, const std::string& card_no, const std::string& column) {
  const Table t = run.Output("statements.csv");
  size_t card = 0, wanted = 0;
  for (size_t i = 0; i < t[0].size(); ++i) {
    if (t[0][i] == "card_no") card = i;
    if (t[0][i] == column) wanted = i;
  }
  for (const auto& row : t) {
    if (row[card] == card_no) return row[wanted];
  }
  return "";
}

TEST(hostile_input, the_largest_amounts_summed_over_many_rows_are_exact) {
  Folder folder;
  folder.Write("deposits-max.csv", MaxDeposits(1000));
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  // 200 + 150.00 of the example + 1000 x 999999999999.99, to the fen.
  EXPECT_EQ(StatementCell(run, "QD0002", "deposits"), "1000000000000340.00");
  EXPECT_EQ(run.manifest["control_totals"]["deposits"].get<std::string>().substr(0, 6), "100000");
}

TEST(hostile_input, a_sum_that_cannot_be_represented_refuses_the_run_with_a_clear_message) {
  // 92,234 x 999999999999.99 passes the largest 64-bit number of fen.
  Folder folder;
  folder.Write("deposits-max.csv", MaxDeposits(92'300));
  const Outcome run = folder.Settle();
  EXPECT_EQ(run.status, kExitRefused);
  // The message names the card and the file, so the data can be checked.
  EXPECT_NE(run.err.find("refused"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("'QD0002'"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("deposits-max.csv"), std::string::npos) << run.err;
}

// --- references and duplicates -------------------------------------------------------------------

TEST(hostile_input, the_same_txn_id_in_two_deposit_files_is_a_duplicate_or_a_conflict) {
  Folder folder;
  // D001 of deposits-2024-01.csv, delivered again as written, then changed.
  const int64_t line = folder.NextLine("deposits-2024-02.csv");
  folder.Append("deposits-2024-02.csv",
                "D001,QD0001,deposit,100.00,2024-01-08T09:15:00+08:00,cash,\n"
                "D003,QD0003,deposit,120,2024-01-03T08:30:00+08:00,wechat,\n");
  // The same id in the consumption family is another transaction.
  folder.Append("consumption-2024-02.csv", "D001,QD0001,consumption,1.00,2024-02-15T11:30:00+08:00,C01S01,助餐,\n");
  const int64_t consumption_line = folder.NextLine("consumption-2024-02.csv") - 1;
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  EXPECT_EQ(run.Lines("duplicate_txn", "deposits-2024-02.csv"), std::vector<int64_t>{line});
  EXPECT_EQ(run.Lines("conflicting_txn", "deposits-2024-02.csv"), std::vector<int64_t>{line + 1});
  EXPECT_EQ(run.At("consumption-2024-02.csv", consumption_line), nullptr);
}

TEST(hostile_input, a_reversal_before_its_deposit_is_an_unknown_ref) {
  Folder folder;
  const int64_t line = folder.NextLine("deposits-2024-01.csv");
  folder.Append("deposits-2024-01.csv",
                "D950,QD0001,reversal,10.00,2024-01-20T10:00:00+08:00,cash,D951\n"
                "D951,QD0001,deposit,10.00,2024-01-21T10:00:00+08:00,cash,\n");
  // In an earlier file than its deposit, too (files are read in name order).
  folder.Write("deposits-2024-00.csv",
               kDepositHeader + "D952,QD0002,reversal,5.00,2024-01-20T10:00:00+08:00,bank,D002\n");
  const Outcome run = folder.Settle();
  ASSERT_EQ(run.status, kExitOk) << run.err;
  EXPECT_EQ(run.Lines("unknown_ref", "deposits-2024-01.csv"), std::vector<int64_t>{line});
  EXPECT_EQ(run.At("deposits-2024-01.csv", line + 1), nullptr) << "the deposit itself is accepted";
  EXPECT_EQ(run.Lines("unknown_ref", "deposits-2024-00.csv"), std::vector<int64_t>{2});
}

// --- formula-safe outputs ------------------------------------------------------------------------

TEST(hostile_input, no_output_cell_starts_like_a_formula_whatever_the_input_held) {
  const std::vector<std::string> payloads = {"=cmd|' /C calc'!A0", "+1", "@SUM(1)", "-x", "\t=1", "=HYPERLINK(\"x\")"};
  for (size_t p = 0; p < payloads.size(); ++p) {
    const std::string& bad = payloads[p];
    Folder folder;
    // Every free-text cell that can reach an output: ids (kept consistent
    // across files so the rows still join), names, villages, services, channels.
    const std::string center = bad + "C1", station = bad + "S1", person = bad + "P1", card = bad + "K1";
    const std::string amount_row_at = ",2024-01-10T10:00:00+08:00,";
    folder.Append("centers.csv", CsvCell(center) + "," + CsvCell(bad) + "," + CsvCell(bad) + ",12370211729436483J," +
                                     CsvCell(bad) + "\n");
    folder.Append("stations.csv",
                  CsvCell(station) + "," + CsvCell(center) + "," + CsvCell(bad) + "," + CsvCell(bad) + "\n");
    folder.Append("persons.csv", CsvCell(person) + ",370285194805121237," + CsvCell(bad) + ",1950-03-10,rural," +
                                     CsvCell(bad) + "," + CsvCell(bad) + ",\n");
    folder.Append("assessments.csv", CsvCell(person) + ",2023-08-01,3,GB/T 42195-2022\n");
    folder.Append("cards.csv", CsvCell(card) + "," + CsvCell(person) + ",1," + CsvCell(center) + ",2022-06-01,\n" +
                                   CsvCell(bad) + "," + CsvCell(bad) + ",1,C01,2022-06-01,\n");
    folder.Append("enrollments.csv", CsvCell(person) + ",home_bed," + CsvCell(bad) + ",2023-06-01,,card_subsidy\n" +
                                         CsvCell(person) + ",gov_home_service," + CsvCell(bad) + ",2024-01-01,,\n");
    folder.Append("deposits-2024-01.csv",
                  CsvCell(bad + "T1") + "," + CsvCell(card) + ",deposit,150.00" + amount_row_at + CsvCell(bad) + ",\n" +
                      CsvCell(bad + "T2") + "," + CsvCell(card) + ",reversal,10.00" + amount_row_at + CsvCell(bad) +
                      "," + CsvCell(bad + "T1") + "\n" + CsvCell(bad) + "," + CsvCell(bad) + "," + CsvCell(bad) + "," +
                      CsvCell(bad) + "," + CsvCell(bad) + "," + CsvCell(bad) + "," + CsvCell(bad) + "\n");
    folder.Append("consumption-2024-01.csv",
                  CsvCell(bad + "X1") + "," + CsvCell(card) + ",consumption,20.00" + amount_row_at + CsvCell(station) +
                      "," + CsvCell(bad) + ",\n" + CsvCell(bad + "X2") + "," + CsvCell(card) + ",consumption,20.00" +
                      amount_row_at + "C02S01," + CsvCell(bad) + ",\n" + CsvCell(bad + "X3") +
                      ",QD0001,consumption,5.00" + amount_row_at + CsvCell(bad) + "," + CsvCell(bad) + ",\n");
    folder.Write("platform_balances.csv",
                 "card_no,as_of,balance\n" + CsvCell(card) + ",2024-01-31,1.00\n" + CsvCell(bad) + ",2024-01-31,0\n");
    const Outcome run = folder.Settle();  // checks every cell of every output
    ASSERT_EQ(run.status, kExitOk) << bad << ": " << run.err;
    // The payloads did reach the outputs (as text): the check above was not vacuous.
    bool seen = false;
    for (const auto& row : run.Output("card_months.csv")) {
      for (const auto& cell : row) seen = seen || cell == "'" + card;
    }
    EXPECT_TRUE(seen) << bad << ": card " << card << " not in card_months.csv";
    EXPECT_FALSE(run.Lines("unknown_card", "platform_balances.csv").empty()) << bad;
  }
}

// --- --max-rejects -------------------------------------------------------------------------------

TEST(hostile_input, max_rejects_refuses_the_run_when_one_file_has_more_rejected_rows) {
  Folder folder;
  std::string bad_rows;
  for (int i = 0; i < 4; ++i)
    bad_rows += "B" + std::to_string(i) + ",QD0001,deposit,x,2024-02-10T10:00:00+08:00,cash,\n";
  folder.Append("deposits-2024-02.csv", bad_rows);
  // deposits-2024-01.csv of the example has 3 rejected rows, deposits-2024-02.csv now 4.
  const Outcome at_limit = folder.Settle(4);
  EXPECT_EQ(at_limit.status, kExitOk) << at_limit.err;
  EXPECT_EQ((*at_limit.Input("deposits-2024-02.csv"))["rows_rejected"], 4);
  const Outcome over = folder.Settle(3);
  EXPECT_EQ(over.status, kExitRefused);
  EXPECT_NE(over.err.find("deposits-2024-02.csv: more than 3 rejected rows (--max-rejects)"), std::string::npos)
      << over.err;

  // The same through the command line.
  std::string output;
  const std::string common =
      "settle --data " + folder.data() + " --rules " + ExampleDir() + "/rules.yaml --period 2024-B1";
  TempDir book;
  EXPECT_EQ(RunCarecardCapture(common + " --book " + book.path() + " --max-rejects 3", &output), kExitRefused);
  EXPECT_NE(output.find("deposits-2024-02.csv: more than 3 rejected rows"), std::string::npos) << output;
  EXPECT_FALSE(fs::exists(book / "2024-B1"));
  EXPECT_EQ(RunCarecardCapture(common + " --book " + book.path() + " --max-rejects 4", &output), kExitOk) << output;
}

}  // namespace
}  // namespace carecard

namespace carecard {
namespace {

TEST(hostile_rules, a_policy_file_that_is_not_utf8_is_refused_with_its_line_and_column) {
  auto result = LoadPolicyFromText("schema: subsidy-rules/1\npolicy: q\xb9\xe6\n", "gbk.yaml");
  ASSERT_FALSE(result.ok);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].ToString(), "gbk.yaml:2:10: the file is not UTF-8 here (saved as GBK?); save it as UTF-8");
}

TEST(hostile_rules, a_rules_file_whose_name_is_not_utf8_refuses_the_run_instead_of_crashing) {
  testing::TempDir dir;
  const std::string rules = dir / "r\xb9\xe6.yaml";
  testing::WriteFile(rules, testing::Slurp(testing::ExampleDir() + "/rules.yaml"));
  EXPECT_EQ(testing::RunCarecard("settle --data " + testing::ExampleDir() + "/data --rules '" + rules + "' --book " +
                                 (dir / "book") + " --period 2024-B1"),
            2);
  EXPECT_FALSE(std::filesystem::exists(dir / "book/2024-B1"));
}

}  // namespace
}  // namespace carecard
