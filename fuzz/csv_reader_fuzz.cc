// libFuzzer target: CsvReader on arbitrary bytes.
//
// Oracles: never crash, hang or read out of bounds (ASan, UBSan); the rows are
// identical whether the input arrives whole (FromString) or in chunks of any
// size (FromStringInChunks, the path Open takes), as csv_reader.h promises;
// rows start on strictly increasing lines; a row read without a problem has at
// most kMaxColumns cells, each at most kMaxFieldBytes of strict UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "adapters/csv_reader.h"
#include "fuzz/fuzz_util.h"

namespace {

using carecard::CsvProblem;
using carecard::CsvReader;
using carecard::CsvRow;

struct Row {
  int64_t line;
  std::vector<std::string> cells;
  CsvProblem problem;
  bool operator==(const Row&) const = default;
};

// Bounded: a row is at least one byte and one line end, so no more rows than bytes.
std::vector<Row> Drain(CsvReader& reader, size_t input_bytes) {
  std::vector<Row> rows;
  CsvRow row;
  while (reader.Next(&row)) {
    rows.push_back({row.line, row.cells, row.problem});
    FUZZ_CHECK(rows.size() <= input_bytes, "more rows than input bytes");
  }
  FUZZ_CHECK(!reader.Next(&row), "Next must keep returning false at the end");
  FUZZ_CHECK(reader.error().empty(), reader.error());
  FUZZ_CHECK(reader.bytes_read() == input_bytes, "bytes_read must reach the end of the input");
  return rows;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk size; the rest is the file.
  const size_t chunk_bytes = 1 + data[0] % 17;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto whole_reader = CsvReader::FromString(text, "fuzz.csv");
  const std::vector<Row> whole = Drain(*whole_reader, text.size());
  auto chunked_reader = CsvReader::FromStringInChunks(text, "fuzz.csv", chunk_bytes);
  const std::vector<Row> chunked = Drain(*chunked_reader, text.size());
  FUZZ_CHECK(whole == chunked, "rows differ between whole and chunk size " + std::to_string(chunk_bytes));

  int64_t previous_line = 0;
  for (const Row& row : whole) {
    FUZZ_CHECK(row.line > previous_line, "lines must increase, got " + std::to_string(row.line));
    previous_line = row.line;
    FUZZ_CHECK(!row.cells.empty(), "a row has at least one cell");
    if (row.problem != CsvProblem::kNone) continue;
    FUZZ_CHECK(row.cells.size() <= carecard::kMaxColumns, "too many cells in a clean row");
    for (const std::string& cell : row.cells) {
      FUZZ_CHECK(cell.size() <= carecard::kMaxFieldBytes, "a clean cell over the field limit");
      FUZZ_CHECK(carecard::IsValidUtf8(cell), "a clean cell that is not UTF-8");
    }
  }
  return 0;
}
