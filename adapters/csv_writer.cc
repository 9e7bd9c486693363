#include "adapters/csv_writer.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace carecard {

bool CsvWriter::LooksLikeFormula(std::string_view cell) {
  if (cell.empty()) return false;
  switch (cell[0]) {
    case '=':
    case '+':
    case '@':
    case '\t':
    case '\r':
      return true;
    case '-':
      return cell.size() < 2 || cell[1] < '0' || cell[1] > '9';
    default:
      return false;
  }
}

namespace {

constexpr std::array<bool, 256> MakeQuoteBytes() {
  std::array<bool, 256> t{};
  t[static_cast<unsigned char>(',')] = t[static_cast<unsigned char>('"')] = true;
  t[static_cast<unsigned char>('\r')] = t[static_cast<unsigned char>('\n')] = true;
  return t;
}
constexpr std::array<bool, 256> kQuoteBytes = MakeQuoteBytes();

}  // namespace

void CsvWriter::Grow(size_t n) {
  // Past the capacity, std::string doubles it; within it, nothing moves.
  out_.resize(used_ + std::max(n, kGrowBytes));
}

void CsvWriter::QuotedOrGuardedCell(std::string_view cell) {
  const bool formula = NeedsGuard(cell);
  bool quote = false;
  for (char c : cell) {  // a table, not memchr per character
    if (kQuoteBytes[static_cast<unsigned char>(c)]) {
      quote = true;
      break;
    }
  }
  if (!quote && !formula) return RawCell(cell);
  // At most: a comma, two quotes, the apostrophe and every byte doubled.
  char* const start = Room(2 * cell.size() + 4);
  char* p = start;
  if (row_started_) *p++ = ',';
  row_started_ = true;
  if (quote) *p++ = '"';
  if (formula) *p++ = '\'';
  for (char c : cell) {
    *p++ = c;
    if (c == '"') *p++ = '"';
  }
  if (quote) *p++ = '"';
  used_ += static_cast<size_t>(p - start);
}

void CsvWriter::WriteRow(std::initializer_list<std::string_view> cells) {
  for (auto c : cells) Cell(c);
  EndRow();
}

void CsvWriter::WriteRow(const std::vector<std::string>& cells) {
  for (const auto& c : cells) Cell(c);
  EndRow();
}

}  // namespace carecard
