#include "adapters/csv_writer.h"

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

// False when no byte of `cell` is below ',' (0x2C): every byte that needs
// quotes (',' '"' CR LF) is, while ids, codes and numbers have none, so most
// cells are cleared eight bytes at a time and only the rest are looked at byte
// by byte.
bool MayNeedQuotes(std::string_view cell) {
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

}  // namespace

void CsvWriter::Cell(std::string_view cell) {
  if (row_started_) out_.push_back(',');
  row_started_ = true;
  const bool formula = NeedsGuard(cell);
  bool quote = false;
  if (MayNeedQuotes(cell)) {
    for (char c : cell) {  // a table, not memchr per character
      if (kQuoteBytes[static_cast<unsigned char>(c)]) {
        quote = true;
        break;
      }
    }
  }
  if (!quote && !formula) {
    out_.append(cell);
    return;
  }
  if (quote) out_.push_back('"');
  if (formula) out_.push_back('\'');
  // Runs between quotes are appended whole; each quote is doubled.
  for (size_t at = 0;;) {
    const size_t q = cell.find('"', at);
    if (q == std::string_view::npos) {
      out_.append(cell.substr(at));
      break;
    }
    out_.append(cell.substr(at, q + 1 - at));
    out_.push_back('"');
    at = q + 1;
  }
  if (quote) out_.push_back('"');
}

void CsvWriter::EndRow() {
  out_.push_back('\n');
  row_started_ = false;
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
