#include "adapters/csv_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adapters/csv_reader.h"

namespace carecard {
namespace {

TEST(csv_writer, plain_cells_are_not_quoted_and_rows_end_with_lf) {
  CsvWriter w;
  w.WriteRow({"period", "card_no", "subsidy"});
  w.WriteRow({"2024-B1", "C001", "120.00"});
  EXPECT_EQ(w.bytes(), "period,card_no,subsidy\n2024-B1,C001,120.00\n");
}

TEST(csv_writer, cells_are_quoted_only_where_needed) {
  CsvWriter w;
  w.WriteRow({"a,b", "say \"hi\"", "two\nlines", "cr\rhere", "plain", ""});
  EXPECT_EQ(w.bytes(), "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",plain,\n");
}

TEST(csv_writer, a_byte_that_needs_quotes_is_found_at_any_place_in_a_cell_of_any_length) {
  // Cells are cleared eight bytes at a time: every place in and out of a word.
  for (size_t length = 1; length <= 20; ++length) {
    for (size_t at = 0; at < length; ++at) {
      for (char special : {',', '"', '\r', '\n'}) {
        std::string cell(length, 'Q');
        cell[at] = special;
        CsvWriter w;
        w.Cell(cell);
        ASSERT_FALSE(w.bytes().empty());
        EXPECT_EQ(w.bytes().front(), '"') << "length " << length << ", byte " << at << " is " << int{special};
      }
    }
  }
  // Bytes just above ',' and non-ASCII bytes are not a reason to quote; a space is not either.
  for (const char* plain : {"QD-00000001./", "\xE5\xBC\xA0\xE4\xB8\x89\xFF\x80-", "a space or two here"}) {
    CsvWriter w;
    w.Cell(plain);
    EXPECT_EQ(w.bytes(), plain);
  }
}

TEST(csv_writer, quotes_at_the_edges_and_in_runs_are_each_doubled) {
  CsvWriter w;
  w.WriteRow({"\"", "\"\"", "\"a\"", "a\"\"\"b", "=\"x\""});
  EXPECT_EQ(w.bytes(), "\"\"\"\",\"\"\"\"\"\",\"\"\"a\"\"\",\"a\"\"\"\"\"\"b\",\"'=\"\"x\"\"\"\n");
}

TEST(csv_writer, utf8_and_spaces_are_written_as_is) {
  CsvWriter w;
  w.WriteRow({"\xE5\x8A\xA9\xE9\xA4\x90", " 100.00 "});
  EXPECT_EQ(w.bytes(), "\xE5\x8A\xA9\xE9\xA4\x90, 100.00 \n");
}

TEST(csv_writer, formula_like_cells_get_a_leading_apostrophe) {
  CsvWriter w;
  w.WriteRow({"=SUM(A1:A9)", "+1", "@cmd", "-x", "\tx", "-", "=a,b"});
  EXPECT_EQ(w.bytes(), "'=SUM(A1:A9),'+1,'@cmd,'-x,'\tx,'-,\"'=a,b\"\n");
}

TEST(csv_writer, a_cell_starting_with_cr_is_quoted_and_escaped) {
  CsvWriter w;
  w.WriteRow({"\r=1"});
  EXPECT_EQ(w.bytes(), "\"'\r=1\"\n");
}

TEST(csv_writer, negative_amounts_stay_as_they_are) {
  CsvWriter w;
  w.WriteRow({"-120.00", "-0.01", "-5"});
  EXPECT_EQ(w.bytes(), "-120.00,-0.01,-5\n");
  EXPECT_FALSE(CsvWriter::LooksLikeFormula("-120.00"));
  EXPECT_TRUE(CsvWriter::LooksLikeFormula("-x"));
  EXPECT_TRUE(CsvWriter::LooksLikeFormula("-"));
  EXPECT_FALSE(CsvWriter::LooksLikeFormula(""));
  EXPECT_FALSE(CsvWriter::LooksLikeFormula("a=b"));
}

TEST(csv_writer, cell_by_cell_equals_write_row) {
  CsvWriter by_cell;
  by_cell.Cell("a");
  by_cell.Cell("");
  by_cell.Cell("c,d");
  by_cell.EndRow();
  by_cell.EndRow();  // an empty row is one empty cell's worth: a bare line end
  CsvWriter by_row;
  by_row.WriteRow(std::vector<std::string>{"a", "", "c,d"});
  by_row.WriteRow(std::vector<std::string>{});
  EXPECT_EQ(by_cell.bytes(), by_row.bytes());
  EXPECT_EQ(by_cell.Release(), "a,,\"c,d\"\n\n");
}

TEST(csv_writer, what_it_writes_reads_back_through_csv_reader) {
  const std::vector<std::string> cells = {"a,b", "q\"q", "multi\nline", "", " x ", "-1.00",
                                          "\xE5\xBC\xA0"};
  CsvWriter w;
  w.WriteRow(cells);
  w.WriteRow({"next"});
  auto reader = CsvReader::FromString(std::string(w.bytes()), "out.csv");
  CsvRow row;
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.cells, cells);
  EXPECT_EQ(row.problem, CsvProblem::kNone);
  ASSERT_TRUE(reader->Next(&row));
  EXPECT_EQ(row.line, 3);
  EXPECT_EQ(row.cells, std::vector<std::string>{"next"});
}

// Cells are copied by length class (below 4, 4..7, 8..16 bytes with two
// overlapping words, longer with memcpy): every length comes out whole.
TEST(csv_writer, cells_of_every_length_are_copied_whole) {
  for (size_t length = 0; length <= 70; ++length) {
    std::string cell;
    for (size_t i = 0; i < length; ++i) cell.push_back(static_cast<char>('A' + i % 26));
    CsvWriter w;
    w.Cell(cell);
    w.RawCell(cell);
    w.Cell("x");
    w.EndRow();
    EXPECT_EQ(w.bytes(), cell + "," + cell + ",x\n") << "length " << length;
  }
}

// A buffer handed back keeps its capacity and is written over from its first
// byte; a row longer than its room makes it grow, and nothing is lost.
TEST(csv_writer, an_adopted_buffer_is_written_over_and_grows_when_a_row_outruns_it) {
  std::string old = "stale bytes of a chunk written before";
  old.reserve(48);
  CsvWriter w;
  w.Adopt(std::move(old));
  EXPECT_TRUE(w.bytes().empty());
  const std::string long_cell(300, 'z');
  w.Cell("a");
  w.Cell(long_cell);
  w.Cell("say \"hi\", =1");
  w.EndRow();
  const std::string expected = "a," + long_cell + ",\"say \"\"hi\"\", =1\"\n";
  EXPECT_EQ(w.bytes(), expected);
  const std::string released = w.Release();
  EXPECT_EQ(released, expected);
  EXPECT_TRUE(w.bytes().empty());
  w.RawCell("next");
  w.EndRow();
  EXPECT_EQ(w.bytes(), "next\n");
}

// A writer moved from is empty and writes on from nothing; the one moved to
// has the bytes, and its row goes on where it was.
TEST(csv_writer, a_moved_writer_takes_its_bytes_and_leaves_an_empty_one) {
  CsvWriter from;
  from.Cell("a");
  from.Cell("b");
  CsvWriter to = std::move(from);
  EXPECT_TRUE(from.bytes().empty());  // NOLINT(bugprone-use-after-move): the contract under test
  to.Cell("c");
  to.EndRow();
  EXPECT_EQ(to.bytes(), "a,b,c\n");
  from.Cell("fresh");
  from.EndRow();
  EXPECT_EQ(from.bytes(), "fresh\n");
  to = std::move(from);
  EXPECT_EQ(to.bytes(), "fresh\n");
}

}  // namespace
}  // namespace carecard
