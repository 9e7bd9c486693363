// CsvReader: a streaming RFC 4180 reader for the input files of formats.md.
//
// Reads a file in bounded chunks (memory does not grow with the file), accepts a
// leading UTF-8 BOM and LF or CRLF line ends, and keeps for every row the
// physical line on which it starts (the header is line 1; a quoted field may
// span lines; blank lines are skipped and are not rows). Cells are returned
// exactly as written after unquoting, never trimmed.
//
// A row that cannot be read cleanly is still returned, with `problem` set, so
// the caller can reject it with its line: rows are never dropped silently.
// Thread-safety: one reader per thread.
#ifndef CARECARD_ADAPTERS_CSV_READER_H_
#define CARECARD_ADAPTERS_CSV_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace carecard {

inline constexpr size_t kMaxFieldBytes = 4096;      // a longer cell rejects its row
inline constexpr size_t kMaxRowBytes = 64 * 1024;   // a longer row is rejected
inline constexpr size_t kMaxColumns = 256;

enum class CsvProblem {
  kNone,
  kInvalidUtf8,        // the row's bytes are not UTF-8 (e.g. GBK-encoded names)
  kFieldTooLong,       // a cell longer than kMaxFieldBytes
  kRowTooLong,         // a row longer than kMaxRowBytes (the rest of it is skipped)
  kTooManyColumns,     // more than kMaxColumns cells
  kUnterminatedQuote,  // a quoted field still open at the end of the file
  kBadQuote,           // a quote inside an unquoted field, or text after a closing quote
};
std::string_view CsvProblemText(CsvProblem p);  // for people: "invalid UTF-8 (expected UTF-8)" ...

struct CsvRow {
  int64_t line = 0;                 // physical line on which the row starts
  std::vector<std::string> cells;   // unquoted cells (reused between calls)
  // When a row has several problems, the one reported is the first in this
  // order: kUnterminatedQuote, kRowTooLong, kTooManyColumns, kBadQuote,
  // kFieldTooLong, kInvalidUtf8 (so the verdict never depends on where the
  // reader's buffer boundaries fell).
  CsvProblem problem = CsvProblem::kNone;
};

class CsvReader {
 public:
  // Opens `path`. On failure returns nullptr and sets *error to a message naming the file.
  static std::unique_ptr<CsvReader> Open(const std::string& path, std::string* error);
  // Reads from memory (tests, fuzzing). `name` is used in messages.
  static std::unique_ptr<CsvReader> FromString(std::string data, std::string name);
  // As FromString, but hands the bytes to the parser `chunk_bytes` at a time, as
  // Open does with its buffer, so tests and fuzzers can put a buffer boundary
  // anywhere (inside a CRLF, a doubled quote, a UTF-8 sequence). Rows read are
  // identical for every chunk size. REQUIRES: chunk_bytes > 0.
  static std::unique_ptr<CsvReader> FromStringInChunks(std::string data, std::string name,
                                                       size_t chunk_bytes);
  ~CsvReader();

  // Reads the next row into *row. Returns false at the end of the file.
  bool Next(CsvRow* row);

  // Total bytes consumed so far (for progress).
  uint64_t bytes_read() const;

  // For a file read to its end by Next(): the SHA-256 (lowercase hex) and size
  // of every byte of it, computed while reading. False before the end, after a
  // read error, for a reader made from a string, or when called twice.
  bool FileDigest(std::string* sha256_hex, uint64_t* bytes);

  // Empty unless the file could not be read to its end (an I/O error): Next then
  // returned false early, and this names the file and the cause. Callers must
  // check it after the last row, or a truncated read would pass as a short file.
  const std::string& error() const;

 private:
  CsvReader();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A row parsed in place: cells point into the parsed bytes, or into the
// parser's scratch for cells that are not one contiguous run of input bytes
// (a doubled quote, text after a closing quote). Valid until the next row.
struct CsvRowView {
  int64_t line = 0;      // physical line on which the row starts
  uint64_t offset = 0;   // byte offset in the file at which the row starts
  CsvProblem problem = CsvProblem::kNone;  // as CsvRow::problem
  std::vector<std::string_view> cells;
  // The bytes of copied cells: the row's own, so that rows parsed ahead of
  // use keep their cells.
  std::string scratch;
};

// CsvBlockParser: the rows of a block of a file, parsed in place, exactly as
// CsvReader reads them (same cells, lines and problems: tests hold the two to
// it on arbitrary bytes). A block starts at a row start and holds whole rows:
// it ends just after an LF outside quotes, or at the end of the file.
// CsvChunkReader (csv_chunks.h) cuts files into such blocks.
class CsvBlockParser {
 public:
  // `first_line` is the line of `begin`, `offset` its byte offset in the file.
  // REQUIRES: [begin, end) ends at a row's end or at the file's end (CsvChunkReader
  // cuts blocks so): the bytes after the last line end are the file's last row.
  CsvBlockParser(const char* begin, const char* end, int64_t first_line, uint64_t offset);
  // Reads the next row into *row. Returns false at the end of the block.
  bool Next(CsvRowView* row);
  // Physical line of the next byte (after the last row: the block's end).
  int64_t line() const { return line_; }
  // The next byte not yet parsed.
  const char* position() const { return pos_; }

 private:
  bool NextSlow(CsvRowView* row);
  void BeginCell();
  void EndCell();
  void Append(const char* s, size_t n);
  void RowTooLong();
  bool FinishRow(const char* content_end);
  // Fills the masks of the 64 bytes from `window` (fewer at the block's end).
  void LoadWindow(const char* window);

  const char* begin_;
  const char* pos_;
  const char* end_;
  uint64_t offset_;
  int64_t line_;
  // The row being built.
  CsvRowView* row_ = nullptr;
  const char* row_start_ = nullptr;
  size_t cells_started_ = 0;
  bool storing_ = true;
  bool cell_open_ = false;    // a stored cell is being built
  const char* raw_begin_ = nullptr;  // the cell as a run of input bytes...
  const char* raw_end_ = nullptr;
  bool copied_ = false;       // ...or copied into row_->scratch from scratch_begin_
  size_t scratch_begin_ = 0;
  CsvProblem problem_ = CsvProblem::kNone;
  // Bit i of each mask: byte window_[i] is a comma, an LF, a quote, >= 0x80 or NUL.
  const char* window_ = nullptr;
  size_t window_bytes_ = 0;
  uint64_t window_comma_ = 0, window_lf_ = 0, window_quote_ = 0, window_special_ = 0;
};

// True when `bytes` is strict UTF-8 (Unicode 15, table 3-7: no overlongs, no
// surrogates, nothing above U+10FFFF, no truncated sequence) and holds no NUL.
// The reader applies it to every cell; outputs use it for names from elsewhere.
bool IsValidUtf8(std::string_view bytes);

// The SHA-256 of a file's bytes as lowercase hex, and its size. Returns false
// (with *error naming the file) when it cannot be read.
bool Sha256File(const std::string& path, std::string* hex, uint64_t* size, std::string* error);
std::string Sha256Hex(std::string_view bytes);

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_CSV_READER_H_
