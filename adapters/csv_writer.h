// CsvWriter: deterministic CSV output (formats.md "Outputs").
//
// UTF-8, LF line ends, RFC 4180 quoting only where needed (a comma, a quote, CR
// or LF in the cell). A cell that an office suite would run as a formula — one
// starting with '=', '+', '@', a tab or CR, or '-' not followed by a digit — is
// written with a leading apostrophe, so no output cell can start a formula
// whatever the input held. Appends to an in-memory buffer; the caller decides
// where the bytes go (the book writes them atomically). The buffer's length
// is room to write in, so a cell costs no capacity check of a std::string and
// no call to memcpy: output files run to tens of millions of cells.
#ifndef CARECARD_ADAPTERS_CSV_WRITER_H_
#define CARECARD_ADAPTERS_CSV_WRITER_H_

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/small_copy.h"

namespace carecard {

class CsvWriter {
 public:
  CsvWriter() = default;
  // A moved-from writer is empty and usable (its count goes with its buffer).
  CsvWriter(CsvWriter&& other) noexcept { *this = std::move(other); }
  CsvWriter& operator=(CsvWriter&& other) noexcept {
    if (this != &other) {
      out_ = std::move(other.out_);
      other.out_.clear();
      used_ = std::exchange(other.used_, 0);
      row_started_ = std::exchange(other.row_started_, false);
    }
    return *this;
  }
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;

  void WriteRow(std::initializer_list<std::string_view> cells);
  void WriteRow(const std::vector<std::string>& cells);
  // Cell by cell: Cell(...) for each cell, then EndRow().
  void Cell(std::string_view cell) {
    if (NeedsGuard(cell) || MayNeedQuotes(cell)) return QuotedOrGuardedCell(cell);
    RawCell(cell);
  }
  // A cell known to need neither quotes nor a guard (amounts, numbers,
  // months, words of the engine's own): appended as it is.
  void RawCell(std::string_view cell) {
    char* p = Room(cell.size() + 1);
    *p = ',';
    p += row_started_ ? 1 : 0;
    row_started_ = true;
    CopySmall(p, cell.data(), cell.size());
    used_ = static_cast<size_t>(p + cell.size() - out_.data());
  }
  void EndRow() {
    *Room(1) = '\n';
    ++used_;
    row_started_ = false;
  }

  // The bytes written so far.
  std::string_view bytes() const { return {out_.data(), used_}; }
  // Hands over the bytes written so far; the writer starts an empty buffer.
  std::string Release() {
    out_.resize(used_);
    used_ = 0;
    return std::exchange(out_, std::string());
  }
  // Writes on into `buffer`, keeping its capacity (a buffer handed back after
  // its bytes were written, so pages are reused); what it held is written over.
  // REQUIRES: bytes() is empty and no row is under way.
  void Adopt(std::string&& buffer) {
    out_ = std::move(buffer);
    used_ = 0;
  }
  void Reserve(size_t bytes) { out_.reserve(bytes); }

  // True when `cell` would be read as a formula by a spreadsheet.
  static bool LooksLikeFormula(std::string_view cell);
  // A cell that looks like a formula, or that starts with an apostrophe itself,
  // is written with one more leading apostrophe; Unguard undoes exactly that,
  // so cells read back from the book (closed periods) equal what was written.
  static bool NeedsGuard(std::string_view cell) {
    if (cell.empty()) return false;
    const auto c = static_cast<unsigned char>(cell[0]);
    // Every byte that starts a formula or a guard is at most '-' ('\t', '\r', '+', '\'', '-'), or '=' or '@'.
    if (c > '-' && c != '=' && c != '@') return false;
    return c == '\'' || LooksLikeFormula(cell);
  }
  static std::string_view Unguard(std::string_view cell) { return !cell.empty() && cell[0] == '\'' ? cell.substr(1) : cell; }

 private:
  // False when no byte of `cell` is below '-' (0x2D): every byte that needs
  // quotes (',' '"' CR LF) is, while ids, codes and numbers have none, so most
  // cells are cleared eight bytes at a time.
  static bool MayNeedQuotes(std::string_view cell) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= cell.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, cell.data() + i, 8);
      if (((w - kOnes * 0x2D) & ~w & kHigh) != 0) return true;  // some byte < 0x2D
    }
    for (; i < cell.size(); ++i) {
      if (static_cast<unsigned char>(cell[i]) < 0x2D) return true;
    }
    return false;
  }
  // Where the next n bytes go, with room for them.
  char* Room(size_t n) {
    if (out_.size() - used_ < n) Grow(n);
    return out_.data() + used_;
  }
  // Room for n more bytes, made kGrowBytes at a time: resize zero-fills what it
  // adds, so room is added as it is needed, not a whole buffer ahead.
  void Grow(size_t n);
  static constexpr size_t kGrowBytes = 64 * 1024;
  void QuotedOrGuardedCell(std::string_view cell);

  // [0, used_) is written; the rest, up to out_.size(), is room.
  std::string out_;
  size_t used_ = 0;
  bool row_started_ = false;
};

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_CSV_WRITER_H_
