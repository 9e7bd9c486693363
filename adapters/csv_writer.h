// CsvWriter: deterministic CSV output (formats.md "Outputs").
//
// UTF-8, LF line ends, RFC 4180 quoting only where needed (a comma, a quote, CR
// or LF in the cell). A cell that an office suite would run as a formula — one
// starting with '=', '+', '@', a tab or CR, or '-' not followed by a digit — is
// written with a leading apostrophe, so no output cell can start a formula
// whatever the input held. Appends to an in-memory buffer; the caller decides
// where the bytes go (the book writes them atomically).
#ifndef CARECARD_ADAPTERS_CSV_WRITER_H_
#define CARECARD_ADAPTERS_CSV_WRITER_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace carecard {

class CsvWriter {
 public:
  CsvWriter() = default;

  void WriteRow(std::initializer_list<std::string_view> cells);
  void WriteRow(const std::vector<std::string>& cells);
  // Cell by cell: Cell(...) for each cell, then EndRow().
  void Cell(std::string_view cell);
  // A cell known to need neither quotes nor a guard (amounts, numbers,
  // months, words of the engine's own): appended as it is.
  void RawCell(std::string_view cell) {
    if (row_started_) out_.push_back(',');
    row_started_ = true;
    out_.append(cell);
  }
  void EndRow();

  const std::string& bytes() const { return out_; }
  // Hands over the bytes written so far; the writer starts an empty buffer.
  std::string Release() { return std::exchange(out_, std::string()); }
  // Writes on into `buffer`, emptied first but keeping its capacity (a
  // buffer handed back after its bytes were written, so pages are reused).
  // REQUIRES: bytes() is empty and no row is under way.
  void Adopt(std::string&& buffer) {
    out_ = std::move(buffer);
    out_.clear();
  }
  void Reserve(size_t bytes) { out_.reserve(bytes); }

  // True when `cell` would be read as a formula by a spreadsheet.
  static bool LooksLikeFormula(std::string_view cell);
  // A cell that looks like a formula, or that starts with an apostrophe itself,
  // is written with one more leading apostrophe; Unguard undoes exactly that,
  // so cells read back from the book (closed periods) equal what was written.
  static bool NeedsGuard(std::string_view cell) { return LooksLikeFormula(cell) || (!cell.empty() && cell[0] == '\''); }
  static std::string_view Unguard(std::string_view cell) { return !cell.empty() && cell[0] == '\'' ? cell.substr(1) : cell; }

 private:
  std::string out_;
  bool row_started_ = false;
};

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_CSV_WRITER_H_
