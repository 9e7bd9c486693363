// libFuzzer target: CsvReader on arbitrary bytes.
//
// Oracles: never crash, hang or read out of bounds (ASan, UBSan); the rows are
// identical whether the input arrives whole (FromString) or in chunks of any
// size (FromStringInChunks, the path Open takes), as csv_reader.h promises;
// the path of transaction files (CsvChunkReader cutting blocks, CsvBlockParser
// parsing them in place) reads the same rows, lines and problems, and the
// same cells wherever a caller uses them, and hashes the same SHA-256;
// rows start on strictly increasing lines; a row read without a problem has at
// most kMaxColumns cells, each at most kMaxFieldBytes of strict UTF-8.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "adapters/csv_chunks.h"
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

// Cells matter to callers only for a clean row and for the problems whose
// detail names a cell (data_folder.h); other problem rows are rejected without them.
bool CellsMatter(CsvProblem p) {
  return p == CsvProblem::kNone || p == CsvProblem::kInvalidUtf8 || p == CsvProblem::kFieldTooLong;
}

// The input as a file (one memfd for the process), read through blocks as the data folder does.
std::vector<Row> DrainBlocks(const std::string& text) {
  static const int fd = memfd_create("csv_reader_fuzz", 0);
  FUZZ_CHECK(fd >= 0, "memfd_create failed");
  FUZZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()),
             "writing the memfd failed");
  std::string error;
  auto reader = carecard::CsvChunkReader::Open("/proc/self/fd/" + std::to_string(fd), carecard::kMaxRowBytes + 8, &error);
  FUZZ_CHECK(reader != nullptr, error);
  std::vector<Row> rows;
  carecard::CsvBlock block;
  carecard::CsvRowView view;
  while (reader->Next(&block)) {
    if (block.long_row) {
      rows.push_back({block.long_row_line, {}, block.long_row_problem});
      continue;
    }
    carecard::CsvBlockParser parser(block.bytes.data() + block.begin, block.bytes.data() + block.end, block.first_line,
                                    block.offset);
    while (parser.Next(&view)) {
      Row r{view.line, {}, view.problem};
      if (CellsMatter(view.problem)) r.cells.assign(view.cells.begin(), view.cells.end());
      rows.push_back(std::move(r));
      FUZZ_CHECK(rows.size() <= text.size(), "more rows than input bytes");
    }
  }
  FUZZ_CHECK(reader->error().empty(), reader->error());
  std::string sha;
  uint64_t bytes = 0;
  FUZZ_CHECK(reader->Digest(&sha, &bytes), "no digest after the last block");
  FUZZ_CHECK(bytes == text.size() && sha == carecard::Sha256Hex(text), "the blocks' SHA-256 is not the file's");
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
  std::vector<Row> expected = whole;
  for (Row& r : expected) {
    if (!CellsMatter(r.problem)) r.cells.clear();
  }
  FUZZ_CHECK(DrainBlocks(text) == expected, "the block parser reads other rows than CsvReader");

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
