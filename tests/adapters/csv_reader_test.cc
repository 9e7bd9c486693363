#include "adapters/csv_reader.h"
#include "tests/batch/test_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace carecard {
namespace {

struct Row {
  int64_t line;
  std::vector<std::string> cells;
  CsvProblem problem;
  bool operator==(const Row&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Row& r) {
  os << "{line " << r.line << ", " << CsvProblemText(r.problem) << ", [";
  for (size_t i = 0; i < r.cells.size(); ++i) {
    os << (i ? "|" : "") << (r.cells[i].size() > 40 ? r.cells[i].substr(0, 40) + "..." : r.cells[i]);
  }
  return os << "]}";
}

std::vector<Row> Drain(CsvReader& reader) {
  std::vector<Row> rows;
  CsvRow row;  // one row object reused, as callers do
  while (reader.Next(&row)) rows.push_back({row.line, row.cells, row.problem});
  EXPECT_FALSE(reader.Next(&row)) << "Next must keep returning false at the end";
  EXPECT_TRUE(reader.error().empty()) << reader.error();
  return rows;
}

// Reads `data` whole, then again through buffers of many small sizes, and
// checks that every chunking gives the same rows: a row that straddles a
// buffer boundary (inside a CRLF, a doubled quote, a UTF-8 sequence) must read
// exactly like one that does not.
std::vector<Row> ReadAll(const std::string& data) {
  auto whole = CsvReader::FromString(data, "test.csv");
  std::vector<Row> expected = Drain(*whole);
  EXPECT_EQ(whole->bytes_read(), data.size());
  constexpr size_t kChunkSizes[] = {1, 2, 3, 4, 5, 7, 13, 64};
  for (size_t chunk : kChunkSizes) {
    auto reader = CsvReader::FromStringInChunks(data, "test.csv", chunk);
    EXPECT_EQ(Drain(*reader), expected) << "chunk size " << chunk;
  }
  return expected;
}

using Cells = std::vector<std::string>;
constexpr CsvProblem kOk = CsvProblem::kNone;

TEST(csv_reader, header_is_the_first_row_on_line_1) {
  EXPECT_EQ(ReadAll("card_no,amount\nC1,100.00\n"),
            (std::vector<Row>{{1, {"card_no", "amount"}, kOk}, {2, {"C1", "100.00"}, kOk}}));
}

TEST(csv_reader, crlf_and_bom_are_accepted) {
  EXPECT_EQ(ReadAll("\xEF\xBB\xBF" "a,b\r\n1,2\r\n"),
            (std::vector<Row>{{1, {"a", "b"}, kOk}, {2, {"1", "2"}, kOk}}));
}

TEST(csv_reader, bom_only_in_first_position_is_skipped) {
  // A BOM elsewhere is a character of the cell (U+FEFF), not skipped.
  EXPECT_EQ(ReadAll("a\n\xEF\xBB\xBFx\n"),
            (std::vector<Row>{{1, {"a"}, kOk}, {2, {"\xEF\xBB\xBFx"}, kOk}}));
}

TEST(csv_reader, empty_file_has_no_rows) {
  EXPECT_TRUE(ReadAll("").empty());
  EXPECT_TRUE(ReadAll("\xEF\xBB\xBF").empty());
  EXPECT_TRUE(ReadAll("\n\r\n\n").empty());
}

TEST(csv_reader, header_only_file_has_one_row) {
  EXPECT_EQ(ReadAll("a,b\n"), (std::vector<Row>{{1, {"a", "b"}, kOk}}));
}

TEST(csv_reader, last_row_without_newline_is_read) {
  EXPECT_EQ(ReadAll("a,b\n1,2"), (std::vector<Row>{{1, {"a", "b"}, kOk}, {2, {"1", "2"}, kOk}}));
  EXPECT_EQ(ReadAll("a,b\r\n1,2\r"), (std::vector<Row>{{1, {"a", "b"}, kOk}, {2, {"1", "2"}, kOk}}));
  EXPECT_EQ(ReadAll("a,\"b\""), (std::vector<Row>{{1, {"a", "b"}, kOk}}));
}

TEST(csv_reader, blank_lines_are_skipped_but_counted) {
  EXPECT_EQ(ReadAll("\na\n\n\r\nb\r\n\r\n\nc\n\n"),
            (std::vector<Row>{{2, {"a"}, kOk}, {5, {"b"}, kOk}, {8, {"c"}, kOk}}));
}

TEST(csv_reader, a_line_of_commas_or_empty_quotes_is_a_row_not_a_blank_line) {
  EXPECT_EQ(ReadAll(",\n\"\"\n"), (std::vector<Row>{{1, {"", ""}, kOk}, {2, {""}, kOk}}));
}

TEST(csv_reader, empty_cells_are_kept) {
  EXPECT_EQ(ReadAll("a,,c,\n"), (std::vector<Row>{{1, {"a", "", "c", ""}, kOk}}));
}

TEST(csv_reader, cells_are_never_trimmed) {
  EXPECT_EQ(ReadAll("id, 100.00 ,\t,\" x \"\n"),
            (std::vector<Row>{{1, {"id", " 100.00 ", "\t", " x "}, kOk}}));
}

TEST(csv_reader, quoted_cells_may_hold_commas_quotes_and_newlines) {
  EXPECT_EQ(ReadAll("\"a,b\",\"say \"\"hi\"\"\",\"\"\"\"\n"),
            (std::vector<Row>{{1, {"a,b", "say \"hi\"", "\""}, kOk}}));
}

TEST(csv_reader, rows_after_a_multi_line_cell_keep_their_physical_line) {
  const std::string data =
      "id,note\n"
      "1,\"line one\nline two\r\nline three\"\n"
      "2,plain\n"
      "\n"
      "3,\"x\n\ny\"\n"
      "4,end\n";
  EXPECT_EQ(ReadAll(data), (std::vector<Row>{
                               {1, {"id", "note"}, kOk},
                               {2, {"1", "line one\nline two\r\nline three"}, kOk},
                               {5, {"2", "plain"}, kOk},
                               {7, {"3", "x\n\ny"}, kOk},
                               {10, {"4", "end"}, kOk},
                           }));
}

TEST(csv_reader, a_lone_cr_is_data_and_does_not_end_a_line) {
  // Only LF ends a line, so line numbers match what editors and `grep -n` show.
  EXPECT_EQ(ReadAll("a\rb,\"c\rd\"\ne\n"),
            (std::vector<Row>{{1, {"a\rb", "c\rd"}, kOk}, {2, {"e"}, kOk}}));
}

TEST(csv_reader, unterminated_quote_returns_the_row_from_its_start_line_and_ends_reading) {
  EXPECT_EQ(ReadAll("a,b\n1,\"open\n2,x\n3,y\n"),
            (std::vector<Row>{{1, {"a", "b"}, kOk},
                              {2, {"1", "open\n2,x\n3,y\n"}, CsvProblem::kUnterminatedQuote}}));
}

TEST(csv_reader, quote_inside_an_unquoted_cell_is_a_bad_quote) {
  EXPECT_EQ(ReadAll("ab\"c,d\nnext\n"),
            (std::vector<Row>{{1, {"ab\"c", "d"}, CsvProblem::kBadQuote}, {2, {"next"}, kOk}}));
}

TEST(csv_reader, text_after_a_closing_quote_is_a_bad_quote_and_the_row_ends_at_its_line_end) {
  EXPECT_EQ(ReadAll("\"ab\"c,d\n\"x\" ,y\r\n\"p\"\rq\nok\n"),
            (std::vector<Row>{{1, {"abc", "d"}, CsvProblem::kBadQuote},
                              {2, {"x ", "y"}, CsvProblem::kBadQuote},
                              {3, {"p\rq"}, CsvProblem::kBadQuote},
                              {4, {"ok"}, kOk}}));
}

TEST(csv_reader, gbk_bytes_are_invalid_utf8) {
  // "张三" in GBK; the same name in UTF-8 reads fine.
  EXPECT_EQ(ReadAll("P1,\xd5\xc5\xc8\xfd\nP2,\xE5\xBC\xA0\xE4\xB8\x89\n"),
            (std::vector<Row>{{1, {"P1", "\xd5\xc5\xc8\xfd"}, CsvProblem::kInvalidUtf8},
                              {2, {"P2", "\xE5\xBC\xA0\xE4\xB8\x89"}, kOk}}));
}

TEST(csv_reader, utf8_is_validated_strictly) {
  const std::vector<std::string> bad = {
      "\xC0\xAF",          // overlong '/'
      "\xE0\x80\xAF",      // overlong, 3 bytes
      "\xF0\x80\x80\xAF",  // overlong, 4 bytes
      "\xED\xA0\x80",      // UTF-16 surrogate U+D800
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\xF5\x80\x80\x80",  // lead byte out of range
      "\x80",              // lone continuation byte
      "\xE4\xB8",          // truncated at the cell end
      "\xE4\xB8,x",        // truncated before a comma
      "\xE5\xBCx",         // a character's third byte is not a continuation
      "\xE5x\xA0",         // nor its second
      "\xE5\xBC\xA0\xE5\xBC",  // a good character, then a truncated one
      "x\xFF",             // never valid
      std::string("nul\0byte", 8),
  };
  for (const std::string& cell : bad) {
    const auto rows = ReadAll("a," + cell + "\n");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].problem, CsvProblem::kInvalidUtf8) << "cell bytes: " << cell;
  }
  const std::vector<std::string> good = {
      "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
      "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "long ascii text then \xE5\xBC\xA0",
  };
  for (const std::string& cell : good) {
    const auto rows = ReadAll("a," + cell + "\n");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].problem, kOk) << "cell bytes: " << cell;
  }
}

TEST(csv_reader, a_cell_longer_than_the_limit_is_too_long) {
  const std::string at_limit(kMaxFieldBytes, 'x');
  const std::string over(kMaxFieldBytes + 1, 'x');
  EXPECT_EQ(ReadAll("a," + at_limit + "\nb\n"),
            (std::vector<Row>{{1, {"a", at_limit}, kOk}, {2, {"b"}, kOk}}));
  EXPECT_EQ(ReadAll("a,\"" + over + "\"\nb\n"),
            (std::vector<Row>{{1, {"a", over}, CsvProblem::kFieldTooLong}, {2, {"b"}, kOk}}));
}

TEST(csv_reader, a_300_kb_line_is_rejected_in_bounded_memory_and_the_next_row_is_read) {
  const std::string huge(300 * 1024, 'x');
  const std::string data = "a,b\n1," + huge + "\n2,after\n";
  auto reader = CsvReader::FromStringInChunks(data, "big.csv", 4096);
  CsvRow row;
  ASSERT_TRUE(reader->Next(&row));
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.line, 2);
  EXPECT_EQ(row.problem, CsvProblem::kRowTooLong);
  size_t stored = 0;
  for (const auto& cell : row.cells) stored += cell.size();
  EXPECT_LE(stored, kMaxRowBytes) << "a long row must not be buffered whole";
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.line, 3);
  EXPECT_EQ(row.cells, (Cells{"2", "after"}));
  EXPECT_EQ(row.problem, kOk);
  EXPECT_FALSE(reader->Next(&row));
  // The verdict does not depend on the buffer size.
  const auto rows = ReadAll(data);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].problem, CsvProblem::kRowTooLong);
}

TEST(csv_reader, a_long_quoted_multi_line_row_is_skipped_to_its_real_end) {
  // The skipped part holds newlines and commas inside quotes: they must not
  // start new rows, and the lines they span are still counted.
  std::string note;
  for (int i = 0; i < 20000; ++i) note += "text, more\n";
  const auto rows = ReadAll("1,\"" + note + "\"\n2,ok\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].problem, CsvProblem::kRowTooLong);
  EXPECT_EQ(rows[1], (Row{20002, {"2", "ok"}, kOk}));
}

TEST(csv_reader, a_row_of_many_short_cells_can_be_too_long) {
  std::string data;
  for (size_t i = 0; i < kMaxRowBytes / 4 + 1; ++i) data += "abc,";
  const auto rows = ReadAll(data + "\nnext\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].problem, CsvProblem::kRowTooLong);
  EXPECT_EQ(rows[1], (Row{2, {"next"}, kOk}));
}

TEST(csv_reader, a_row_at_the_byte_limit_is_accepted) {
  const std::string row_text = std::string(kMaxFieldBytes, 'x') + ",";
  std::string data;
  while (data.size() + row_text.size() <= kMaxRowBytes) data += row_text;
  data += std::string(kMaxRowBytes - data.size(), 'y');  // exactly kMaxRowBytes
  ASSERT_EQ(data.size(), kMaxRowBytes);
  auto rows = ReadAll(data + "\r\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].problem, CsvProblem::kNone);
  rows = ReadAll(data + "y\n");
  EXPECT_EQ(rows[0].problem, CsvProblem::kRowTooLong);
}

TEST(csv_reader, more_than_the_column_limit_is_too_many_columns) {
  std::string at_limit(kMaxColumns - 1, ',');
  auto rows = ReadAll(at_limit + "\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].problem, kOk);
  EXPECT_EQ(rows[0].cells.size(), kMaxColumns);
  rows = ReadAll(at_limit + ",\nnext\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].problem, CsvProblem::kTooManyColumns);
  EXPECT_EQ(rows[0].cells.size(), kMaxColumns);
  EXPECT_EQ(rows[1], (Row{2, {"next"}, kOk}));
}

TEST(csv_reader, the_most_serious_problem_of_a_row_is_reported) {
  EXPECT_EQ(ReadAll("\xd5\xc5,a\"b\n")[0].problem, CsvProblem::kBadQuote);
  EXPECT_EQ(ReadAll("\xd5\xc5,\"open\n")[0].problem, CsvProblem::kUnterminatedQuote);
}

TEST(csv_reader, cells_reuse_the_callers_row) {
  auto reader = CsvReader::FromString("a,b,c\n1\nx,y\n", "t.csv");
  CsvRow row;
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.cells, (Cells{"a", "b", "c"}));
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.cells, (Cells{"1"}));
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.cells, (Cells{"x", "y"}));
  EXPECT_EQ(row.problem, kOk);
}

TEST(csv_reader, problem_is_reset_for_the_next_row) {
  auto reader = CsvReader::FromString("a\"b\nc\n", "t.csv");
  CsvRow row;
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.problem, CsvProblem::kBadQuote);
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.problem, kOk);
}

TEST(csv_reader, bytes_read_tracks_progress) {
  auto reader = CsvReader::FromString("ab\ncd\n", "t.csv");
  CsvRow row;
  EXPECT_EQ(reader->bytes_read(), 0u);
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(reader->bytes_read(), 3u);
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(reader->bytes_read(), 6u);
}

TEST(csv_reader, problem_texts_are_for_people) {
  EXPECT_EQ(CsvProblemText(CsvProblem::kInvalidUtf8),
            "invalid UTF-8 (the file must be UTF-8; was it saved as GBK?)");
  for (CsvProblem p : {CsvProblem::kFieldTooLong, CsvProblem::kRowTooLong,
                       CsvProblem::kTooManyColumns, CsvProblem::kUnterminatedQuote,
                       CsvProblem::kBadQuote}) {
    EXPECT_GT(CsvProblemText(p).size(), 10u);
  }
}

TEST(csv_reader, arbitrary_bytes_never_crash_or_hang) {
  // A cheap stand-in for the fuzzer: every pattern of the bytes that matter.
  const char alphabet[] = {',', '"', '\r', '\n', 'a', '\xE5', '\xBC', '\0'};
  std::string data;
  uint32_t seed = 12345;
  for (int round = 0; round < 300; ++round) {
    data.clear();
    for (int i = 0; i < 40; ++i) {
      seed = seed * 1103515245u + 12345u;
      data.push_back(alphabet[(seed >> 16) % sizeof(alphabet)]);
    }
    ReadAll(data);  // checks that chunking never changes the rows
  }
}

using testing::TempFile;

TEST(csv_reader, open_reads_a_file_larger_than_its_buffer) {
  // Rows straddle the 1 MiB read(2) boundaries; a BOM and a multi-line cell
  // are included; the result must match reading from memory.
  std::string data = "\xEF\xBB\xBFid,name,note\r\n";
  for (int i = 0; i < 60000; ++i) {
    data += std::to_string(i) + ",\xE5\xBC\xA0\xE4\xB8\x89,";
    data += (i % 7 == 0) ? "\"multi\nline, \"\"quoted\"\"\"\r\n" : "plain text\n";
    if (i % 1000 == 0) data += "\n";
  }
  TempFile file(data);
  std::string error;
  auto from_file = CsvReader::Open(file.path(), &error);
  ASSERT_NE(from_file, nullptr) << error;
  auto from_memory = CsvReader::FromString(data, "mem");
  const auto file_rows = Drain(*from_file);
  EXPECT_EQ(file_rows, Drain(*from_memory));
  EXPECT_EQ(from_file->bytes_read(), data.size());
  ASSERT_EQ(file_rows.size(), 60001u);
  EXPECT_EQ(file_rows.front().cells, (Cells{"id", "name", "note"}));
  EXPECT_EQ(file_rows.back().cells, (Cells{"59999", "\xE5\xBC\xA0\xE4\xB8\x89", "plain text"}));
}

TEST(csv_reader, open_handles_a_bom_only_and_an_empty_file) {
  for (const std::string content : {"", "\xEF\xBB\xBF", "\xEF\xBB"}) {
    TempFile file(content);
    std::string error;
    auto reader = CsvReader::Open(file.path(), &error);
    ASSERT_NE(reader, nullptr) << error;
    const auto rows = Drain(*reader);
    if (content == "\xEF\xBB") {
      ASSERT_EQ(rows.size(), 1u);  // not a BOM: two bytes of broken UTF-8
      EXPECT_EQ(rows[0].problem, CsvProblem::kInvalidUtf8);
    } else {
      EXPECT_TRUE(rows.empty());
    }
  }
}

TEST(csv_reader, open_of_a_missing_file_names_the_path) {
  std::string error;
  EXPECT_EQ(CsvReader::Open("/nonexistent/dir/cards.csv", &error), nullptr);
  EXPECT_EQ(error, "cannot open /nonexistent/dir/cards.csv: No such file or directory");
}

TEST(csv_reader, open_of_a_directory_names_the_path) {
  std::string error;
  EXPECT_EQ(CsvReader::Open("/tmp", &error), nullptr);
  EXPECT_EQ(error, "cannot read /tmp: Is a directory");
}

}  // namespace
}  // namespace carecard
