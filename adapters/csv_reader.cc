#include "adapters/csv_reader.h"

#include <openssl/evp.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>

namespace carecard {

namespace {

// Open() reads this much per read(2): large enough that system calls do not
// show in a profile, small enough not to matter for memory.
constexpr size_t kFileChunkBytes = 1 << 20;

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// Bytes that end the fast scan of an unquoted field.
constexpr std::array<bool, 256> MakeUnquotedStops() {
  std::array<bool, 256> t{};
  t[static_cast<unsigned char>(',')] = true;
  t[static_cast<unsigned char>('"')] = true;
  t[static_cast<unsigned char>('\r')] = true;
  t[static_cast<unsigned char>('\n')] = true;
  return t;
}
constexpr std::array<bool, 256> kUnquotedStops = MakeUnquotedStops();

// Higher wins: see CsvRow::problem. Kept as a table so that the order in which
// problems are noticed (which depends on buffer boundaries) does not matter.
int Severity(CsvProblem p) {
  switch (p) {
    case CsvProblem::kNone: return 0;
    case CsvProblem::kInvalidUtf8: return 1;
    case CsvProblem::kFieldTooLong: return 2;
    case CsvProblem::kBadQuote: return 3;
    case CsvProblem::kTooManyColumns: return 4;
    case CsvProblem::kRowTooLong: return 5;
    case CsvProblem::kUnterminatedQuote: return 6;
  }
  return 0;
}

// Strict UTF-8 (Unicode 15, table 3-7): no overlongs, no surrogates, nothing
// above U+10FFFF, no truncated sequences. NUL is rejected too: no input file of
// ours holds one, so it means binary garbage.
bool IsValidUtf8Bytes(const char* data, size_t n) {
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  size_t i = 0;
  while (i < n) {
    // Fast path for ASCII, eight bytes at a time.
    if (n - i >= 8) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      const bool has_zero = ((w - kOnes) & ~w & kHigh) != 0;
      if ((w & kHigh) == 0 && !has_zero) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (c < 0x80) {
      if (c == 0) return false;
      ++i;
      continue;
    }
    // Most of China's characters (U+1000..U+CFFF: every common hanzi): a lead
    // E1..EC takes any two continuation bytes, with no range to check.
    if (c >= 0xE1 && c <= 0xEC && n - i >= 3 && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
      i += 3;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3;
      lo = 0xA0;  // below: overlong
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = 3;
    } else if (c == 0xED) {
      len = 3;
      hi = 0x9F;  // above: UTF-16 surrogates
    } else if (c == 0xF0) {
      len = 4;
      lo = 0x90;  // below: overlong
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4;
      hi = 0x8F;  // above: beyond U+10FFFF
    } else {
      return false;  // continuation byte, C0/C1 overlong lead, F5..FF
    }
    if (n - i < len) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace

bool IsValidUtf8(std::string_view bytes) { return IsValidUtf8Bytes(bytes.data(), bytes.size()); }

std::string_view CsvProblemText(CsvProblem p) {
  switch (p) {
    case CsvProblem::kNone:
      return "no problem";
    case CsvProblem::kInvalidUtf8:
      return "invalid UTF-8 (the file must be UTF-8; was it saved as GBK?)";
    case CsvProblem::kFieldTooLong:
      return "a cell longer than 4096 bytes";
    case CsvProblem::kRowTooLong:
      return "a row longer than 65536 bytes (the rest of it was skipped)";
    case CsvProblem::kTooManyColumns:
      return "more than 256 cells in the row";
    case CsvProblem::kUnterminatedQuote:
      return "a quoted cell is not closed before the end of the file (a missing '\"'?)";
    case CsvProblem::kBadQuote:
      return "a stray '\"' (a quote inside an unquoted cell, or text after a closing quote; "
             "write a quote inside a quoted cell as \"\")";
  }
  return "unknown problem";
}

// The parser is one state machine that can stop at any byte and resume when the
// next chunk arrives, so a row may straddle any number of buffer boundaries and
// memory stays bounded by the chunk plus kMaxRowBytes of cells.
//
// Positions are absolute byte offsets in the input (BOM included), which makes
// the row-length limit and line numbers independent of chunking.
struct CsvReader::Impl {
  enum class State : uint8_t {
    kFieldStart,   // nothing of the current cell read yet
    kUnquoted,     // inside an unquoted cell
    kQuoted,       // inside a quoted cell
    kQuotedQuote,  // just after a '"' inside a quoted cell: escape or close?
    kAfterQuote,   // after a closing quote: expect ',' or the line end
  };

  std::string name;

  // Source. For a string, `data` holds the input and the window is a slice of
  // it; for a file, `data` is the read buffer.
  int fd = -1;
  std::string data;
  size_t chunk_bytes = 0;
  bool first_fill = true;  // file: the BOM check is still to do
  bool done = false;       // no more rows (end of input or read error)
  std::string error;

  // The window [pos, end) of bytes not yet parsed; `base` is the absolute
  // offset of data[0].
  const char* pos = nullptr;
  const char* end = nullptr;
  uint64_t base = 0;
  int64_t line = 1;  // physical line of `pos`: 1 + the LF bytes consumed

  // The row being built; lives only during one Next() call.
  CsvRow* row = nullptr;
  std::string* cell = nullptr;  // where cell bytes go; null when not stored
  size_t cells_started = 0;
  size_t cells_stored = 0;
  bool storing = true;          // false once the row passed kMaxRowBytes
  uint64_t row_start = 0;
  int64_t row_line = 0;
  CsvProblem problem = CsvProblem::kNone;

  // File mode: the SHA-256 of every byte read, so that the manifest's hash
  // costs no second pass over the file.
  EVP_MD_CTX* digest = nullptr;
  uint64_t file_bytes = 0;
  bool at_eof = false;

  ~Impl() {
    if (fd >= 0) ::close(fd);
    if (digest) EVP_MD_CTX_free(digest);
  }

  uint64_t Offset(const char* p) const { return base + static_cast<uint64_t>(p - data.data()); }

  // Makes more bytes available in [pos, end). Returns false at the end of the
  // input or on a read error (then `error` is set).
  bool Refill() {
    if (fd < 0) {
      const size_t exposed = static_cast<size_t>(end - data.data());
      if (exposed == data.size()) return false;
      end = data.data() + exposed + std::min(chunk_bytes, data.size() - exposed);
      return true;
    }
    base += static_cast<uint64_t>(end - data.data());
    size_t filled = 0;
    // The first fill reads at least the three bytes a BOM needs, or the whole file.
    const size_t want = first_fill ? kBom.size() : 1;
    while (filled < want) {
      const ssize_t n = ::read(fd, data.data() + filled, data.size() - filled);
      if (n < 0) {
        if (errno == EINTR) continue;
        error = "cannot read " + name + ": " + ErrnoText(errno);
        pos = end = data.data();
        return false;
      }
      if (n == 0) {
        at_eof = true;
        break;
      }
      if (digest) EVP_DigestUpdate(digest, data.data() + filled, static_cast<size_t>(n));
      file_bytes += static_cast<uint64_t>(n);
      filled += static_cast<size_t>(n);
    }
    pos = data.data();
    end = data.data() + filled;
    if (first_fill) {
      // A file holding only a BOM leaves pos == end: the caller refills again
      // and meets the end of the file.
      first_fill = false;
      if (std::string_view(pos, filled).starts_with(kBom)) pos += kBom.size();
    }
    return filled > 0;
  }

  void Flag(CsvProblem p) {
    if (Severity(p) > Severity(problem)) problem = p;
  }

  void BeginCell() {
    ++cells_started;
    if (!storing || cells_started > kMaxColumns) {
      if (cells_started > kMaxColumns) Flag(CsvProblem::kTooManyColumns);
      cell = nullptr;
      return;
    }
    auto& cells = row->cells;
    if (cells_stored == cells.size()) cells.emplace_back();
    cell = &cells[cells_stored++];
    cell->clear();  // keeps its capacity from earlier rows
  }

  void EndCell() {
    if (cell == nullptr) return;
    if (cell->size() > kMaxFieldBytes) Flag(CsvProblem::kFieldTooLong);
    if (problem == CsvProblem::kNone && !IsValidUtf8Bytes(cell->data(), cell->size())) {
      Flag(CsvProblem::kInvalidUtf8);
    }
    cell = nullptr;
  }

  // Appends n cell bytes whose raw input ends at absolute offset `end_offset`.
  // Bytes past kMaxRowBytes of the row are dropped, and storing stops.
  void Append(const char* s, size_t n, uint64_t end_offset) {
    if (cell == nullptr) return;
    const uint64_t limit = row_start + kMaxRowBytes;
    if (end_offset > limit) {
      const uint64_t over = end_offset - limit;
      if (over < n) cell->append(s, n - static_cast<size_t>(over));
      RowTooLong();
      return;
    }
    cell->append(s, n);
  }

  void RowTooLong() {
    Flag(CsvProblem::kRowTooLong);
    storing = false;
    cell = nullptr;
  }

  void StartRowAttempt() {
    row_start = Offset(pos);
    row_line = line;
    cells_started = 0;
    cells_stored = 0;
    storing = true;
    problem = CsvProblem::kNone;
    BeginCell();
  }

  // The row's content ended at absolute offset `content_end` (its line end
  // excluded). Returns false for a blank line, which is no row.
  bool FinishRow(uint64_t content_end) {
    if (content_end == row_start) return false;
    if (content_end - row_start > kMaxRowBytes) RowTooLong();
    EndCell();
    row->cells.resize(cells_stored);
    row->line = row_line;
    row->problem = problem;
    return true;
  }

  // Called just after consuming an LF outside quotes (preceded by a CR when
  // `cr_pending`). Returns true when a row is complete; false for a blank line,
  // after which a new row attempt has started.
  bool EndLine(bool cr_pending) {
    const uint64_t content_end = Offset(pos - 1) - (cr_pending ? 1 : 0);
    ++line;
    if (FinishRow(content_end)) return true;
    StartRowAttempt();
    return false;
  }

  bool Next(CsvRow* out);
};

bool CsvReader::Impl::Next(CsvRow* out) {
  if (done) return false;
  row = out;
  StartRowAttempt();
  State state = State::kFieldStart;
  bool cr_pending = false;  // a CR outside quotes: line end if LF (or EOF) follows

  for (;;) {
    while (pos == end) {
      if (Refill()) continue;
      done = true;
      if (!error.empty()) return false;  // a half-read row is no row
      // The end of the input ends the row, like a line end. An open quote
      // swallowed the rest of the file; the row says where it started.
      if (state == State::kQuoted) Flag(CsvProblem::kUnterminatedQuote);
      return FinishRow(Offset(pos) - (cr_pending ? 1 : 0));
    }

    if (cr_pending && *pos != '\n') {
      // A lone CR outside quotes is cell data (only LF ends a line).
      cr_pending = false;
      if (state == State::kAfterQuote) Flag(CsvProblem::kBadQuote);
      Append("\r", 1, Offset(pos));
      state = State::kUnquoted;
    }

    switch (state) {
      case State::kFieldStart:
      case State::kUnquoted: {
        const char* s = pos;
        const char* p = pos;
        while (p != end && !kUnquotedStops[static_cast<unsigned char>(*p)]) ++p;
        if (p != s) {
          state = State::kUnquoted;
          Append(s, static_cast<size_t>(p - s), Offset(p));
        }
        pos = p;
        if (p == end) break;
        const char c = *pos++;
        if (c == ',') {
          EndCell();
          BeginCell();
          state = State::kFieldStart;
        } else if (c == '"') {
          if (state == State::kFieldStart) {
            state = State::kQuoted;
          } else {
            Flag(CsvProblem::kBadQuote);
            Append(pos - 1, 1, Offset(pos));
          }
        } else if (c == '\r') {
          cr_pending = true;
        } else {  // '\n'
          if (EndLine(cr_pending)) return true;
          state = State::kFieldStart;  // a blank line: counted, not a row
          cr_pending = false;
        }
        break;
      }
      case State::kQuoted: {
        const auto avail = static_cast<size_t>(end - pos);
        const auto* q = static_cast<const char*>(std::memchr(pos, '"', avail));
        const char* stop = q != nullptr ? q : end;
        line += std::count(pos, stop, '\n');
        Append(pos, static_cast<size_t>(stop - pos), Offset(stop));
        pos = stop;
        if (q != nullptr) {
          ++pos;
          state = State::kQuotedQuote;
        }
        break;
      }
      case State::kQuotedQuote:
        if (*pos == '"') {  // a doubled quote stands for one
          ++pos;
          Append("\"", 1, Offset(pos));
          state = State::kQuoted;
        } else {
          state = State::kAfterQuote;  // that quote closed the cell
        }
        break;
      case State::kAfterQuote: {
        const char c = *pos++;
        if (c == ',') {
          EndCell();
          BeginCell();
          state = State::kFieldStart;
        } else if (c == '\r') {
          cr_pending = true;
        } else if (c == '\n') {
          if (EndLine(cr_pending)) return true;
          state = State::kFieldStart;  // not reached: a quoted cell is content
          cr_pending = false;
        } else {
          // `"ab"c`: keep the text so the cell reads as best it can.
          Flag(CsvProblem::kBadQuote);
          Append(pos - 1, 1, Offset(pos));
          state = State::kUnquoted;
        }
        break;
      }
    }
  }
}

CsvReader::CsvReader() : impl_(std::make_unique<Impl>()) {}
CsvReader::~CsvReader() = default;

std::unique_ptr<CsvReader> CsvReader::Open(const std::string& path, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + ErrnoText(errno);
    return nullptr;
  }
  std::unique_ptr<CsvReader> reader(new CsvReader());
  Impl& s = *reader->impl_;
  s.name = path;
  s.fd = fd;
  s.data.resize(kFileChunkBytes);
  s.chunk_bytes = kFileChunkBytes;
  s.digest = EVP_MD_CTX_new();
  if (!s.digest || EVP_DigestInit_ex(s.digest, EVP_sha256(), nullptr) != 1) {
    *error = "cannot start SHA-256 for " + path;
    return nullptr;
  }
  s.pos = s.end = s.data.data();
  // Read the first chunk now: the BOM check needs it, and an unreadable file
  // (EISDIR and the like) is better reported by Open than by Next.
  if (!s.Refill() && !s.error.empty()) {
    *error = s.error;
    return nullptr;
  }
  return reader;
}

std::unique_ptr<CsvReader> CsvReader::FromString(std::string data, std::string name) {
  return FromStringInChunks(std::move(data), std::move(name), std::numeric_limits<size_t>::max());
}

std::unique_ptr<CsvReader> CsvReader::FromStringInChunks(std::string data, std::string name,
                                                         size_t chunk_bytes) {
  std::unique_ptr<CsvReader> reader(new CsvReader());
  Impl& s = *reader->impl_;
  s.name = std::move(name);
  s.data = std::move(data);
  s.chunk_bytes = std::max<size_t>(chunk_bytes, 1);
  s.first_fill = false;
  s.pos = s.end = s.data.data();
  if (std::string_view(s.data).starts_with(kBom)) s.pos = s.end = s.data.data() + kBom.size();
  return reader;
}

bool CsvReader::Next(CsvRow* row) { return impl_->Next(row); }

uint64_t CsvReader::bytes_read() const { return impl_->Offset(impl_->pos); }

bool CsvReader::FileDigest(std::string* sha256_hex, uint64_t* bytes) {
  Impl& s = *impl_;
  if (!s.digest || !s.at_eof || !s.error.empty()) return false;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(s.digest, md, &length) != 1) return false;
  static constexpr char kHex[] = "0123456789abcdef";
  sha256_hex->clear();
  for (unsigned int i = 0; i < length; ++i) {
    sha256_hex->push_back(kHex[md[i] >> 4]);
    sha256_hex->push_back(kHex[md[i] & 15]);
  }
  *bytes = s.file_bytes;
  EVP_MD_CTX_free(s.digest);
  s.digest = nullptr;
  return true;
}

const std::string& CsvReader::error() const { return impl_->error; }

CsvBlockParser::CsvBlockParser(const char* begin, const char* end, int64_t first_line, uint64_t offset)
    : begin_(begin), pos_(begin), end_(end), offset_(offset), line_(first_line) {
}

void CsvBlockParser::BeginCell() {
  ++cells_started_;
  if (!storing_ || cells_started_ > kMaxColumns) {
    if (cells_started_ > kMaxColumns && Severity(CsvProblem::kTooManyColumns) > Severity(problem_)) {
      problem_ = CsvProblem::kTooManyColumns;
    }
    cell_open_ = false;
    return;
  }
  cell_open_ = true;
  raw_begin_ = raw_end_ = nullptr;
  copied_ = false;
}

void CsvBlockParser::EndCell() {
  if (!cell_open_) return;
  cell_open_ = false;
  const std::string_view cell = copied_ ? std::string_view(row_->scratch.data() + scratch_begin_, row_->scratch.size() - scratch_begin_)
                                        : std::string_view(raw_begin_, static_cast<size_t>(raw_end_ - raw_begin_));
  if (cell.size() > kMaxFieldBytes && Severity(CsvProblem::kFieldTooLong) > Severity(problem_)) {
    problem_ = CsvProblem::kFieldTooLong;
  }
  if (problem_ == CsvProblem::kNone && !IsValidUtf8Bytes(cell.data(), cell.size())) problem_ = CsvProblem::kInvalidUtf8;
  row_->cells.push_back(cell);
}

void CsvBlockParser::RowTooLong() {
  if (Severity(CsvProblem::kRowTooLong) > Severity(problem_)) problem_ = CsvProblem::kRowTooLong;
  storing_ = false;
  if (cell_open_) {
    // The cell read so far stays, as CsvReader keeps it.
    row_->cells.push_back(copied_ ? std::string_view(row_->scratch.data() + scratch_begin_, row_->scratch.size() - scratch_begin_)
                                  : std::string_view(raw_begin_, static_cast<size_t>(raw_end_ - raw_begin_)));
    cell_open_ = false;
  }
}

void CsvBlockParser::Append(const char* s, size_t n) {
  if (!cell_open_) return;
  const char* limit = row_start_ + kMaxRowBytes;
  size_t take = n;
  bool too_long = false;
  if (s + n > limit) {
    const auto over = static_cast<size_t>((s + n) - limit);
    take = over < n ? n - over : 0;
    too_long = true;
  }
  if (take > 0) {
    if (!copied_ && raw_begin_ == raw_end_) {
      raw_begin_ = s;
      raw_end_ = s + take;
    } else if (!copied_ && s == raw_end_) {
      raw_end_ = s + take;
    } else {
      if (!copied_) {
        scratch_begin_ = row_->scratch.size();
        row_->scratch.append(raw_begin_, static_cast<size_t>(raw_end_ - raw_begin_));
        copied_ = true;
      }
      row_->scratch.append(s, take);
    }
  }
  if (too_long) RowTooLong();
}

bool CsvBlockParser::FinishRow(const char* content_end) {
  if (content_end == row_start_) return false;
  if (static_cast<size_t>(content_end - row_start_) > kMaxRowBytes) RowTooLong();
  EndCell();
  row_->problem = problem_;
  return true;
}

void CsvBlockParser::LoadWindow(const char* window) {
  window_ = window;
  window_bytes_ = static_cast<size_t>(std::min<ptrdiff_t>(64, end_ - window));
  const char* src = window;
  alignas(16) char tail[64];
  if (window_bytes_ < 64) {
    // The block's last bytes: padding that is none of the bytes looked for.
    std::memset(tail, 'a', sizeof tail);
    std::memcpy(tail, window, window_bytes_);
    src = tail;
  }
  uint64_t comma = 0, lf = 0, quote = 0, special = 0;
#if defined(__SSE2__)
  // A byte >= 0x80 or NUL is, as a signed byte, below 1: one compare finds both.
  const __m128i kComma = _mm_set1_epi8(','), kLf = _mm_set1_epi8('\n'), kQuote = _mm_set1_epi8('"'),
                kOne = _mm_set1_epi8(1);
  for (int i = 0; i < 4; ++i) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * i));
    const int shift = 16 * i;
    comma |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, kComma)))) << shift;
    lf |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, kLf)))) << shift;
    quote |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, kQuote)))) << shift;
    special |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmplt_epi8(v, kOne)))) << shift;
  }
#else
  for (int i = 0; i < 64; ++i) {
    const auto c = static_cast<unsigned char>(src[i]);
    const uint64_t bit = uint64_t{1} << i;
    if (c == ',') comma |= bit;
    if (c == '\n') lf |= bit;
    if (c == '"') quote |= bit;
    if (c >= 0x80 || c == 0) special |= bit;
  }
#endif
  window_comma_ = comma;
  window_lf_ = lf;
  window_quote_ = quote;
  window_special_ = special;
}

namespace {
// The set bits of `x`, inline: the portable build has no POPCNT instruction,
// and __builtin_popcountll would call into libgcc on every row.
size_t BitCount(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ULL;
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<size_t>((x * 0x0101010101010101ULL) >> 56);
}
}  // namespace

bool CsvBlockParser::Next(CsvRowView* row) {
  // The common row: no quote, at most kMaxRowBytes. Its commas, its line end
  // and whether any byte is not ASCII (or is NUL) come from bit masks of the
  // 64-byte window around it (windows sit at fixed places from the block's
  // start, so the next row reuses the masks); any other row goes to the state
  // machine (NextSlow).
  for (;;) {
    // `cells` keeps its size from row to row: resizing it to the same width
    // every row would construct every view again.
    if (pos_ >= end_) {
      row->cells.clear();
      return false;
    }
    uint32_t commas[kMaxColumns + 1 + 4];  // 4 spare: a window's commas are stored four at a time
    size_t comma_count = 0;  // counts past kMaxColumns, stores at most kMaxColumns
    bool special = false;    // a byte >= 0x80 or NUL: cells need the UTF-8 check
    // The cells holding the first and the last such byte: commas before them.
    size_t first_special_cell = 0, last_special_cell = 0;
    const char* last_special = nullptr;
    const char* p = pos_;
    const char* lf = nullptr;
    const char* const scan_end = end_ - pos_ > static_cast<ptrdiff_t>(kMaxRowBytes + 2) ? pos_ + kMaxRowBytes + 2 : end_;
    for (;;) {
      if (window_ == nullptr || p < window_ || p >= window_ + 64) {
        LoadWindow(begin_ + (static_cast<size_t>(p - begin_) & ~size_t{63}));
      }
      const auto from = static_cast<unsigned>(p - window_);
      const auto limit = static_cast<size_t>(std::min<ptrdiff_t>(scan_end - window_, static_cast<ptrdiff_t>(window_bytes_)));
      uint64_t live = (limit >= 64 ? ~uint64_t{0} : (uint64_t{1} << limit) - 1) & (~uint64_t{0} << from);
      const uint64_t lf_bits = window_lf_ & live;
      if (lf_bits) live &= (lf_bits & (~lf_bits + 1)) - 1;  // the bytes before the line end
      if (window_quote_ & live) return NextSlow(row);
      const uint64_t window_commas = window_comma_ & live;
      if (const uint64_t m = window_special_ & live) {
        const int first = __builtin_ctzll(m), last = 63 - __builtin_clzll(m);
        if (!special) first_special_cell = comma_count + BitCount(window_commas & ((uint64_t{1} << first) - 1));
        last_special_cell = comma_count + BitCount(window_commas & ((uint64_t{1} << last) - 1));
        last_special = window_ + last;
        special = true;
      }
      // Four positions at a time, whether or not the window has that many
      // commas (past the last, the slot gets 63 and is unused or overwritten;
      // the top bit set keeps ctz defined without a branch): a loop of one
      // step per comma ended at a different step in every window, a branch
      // mispredicted about twice a row. (Simulated at 20,000 cards: 1.3 M
      // fewer mispredicts for 30 M more instructions; eight at a time cost
      // 54 M and saved less, two at a time saved less.)
      if (comma_count < kMaxColumns) {
        const auto base = static_cast<uint32_t>(window_ - pos_);
        uint64_t m = window_commas;
        size_t k = comma_count;
        do {
          for (int j = 0; j < 4; ++j) {
            commas[k + static_cast<size_t>(j)] = base + static_cast<uint32_t>(__builtin_ctzll(m | (uint64_t{1} << 63)));
            m &= m - 1;
          }
          k += 4;
        } while (m != 0 && k < kMaxColumns);
      }
      comma_count += BitCount(window_commas);
      if (lf_bits) {
        lf = window_ + __builtin_ctzll(lf_bits);
        break;
      }
      if (limit < 64) break;  // at scan_end
      p = window_ + 64;
      if (p >= scan_end) break;
    }
    if (!lf && scan_end != end_) return NextSlow(row);  // longer than kMaxRowBytes
    const char* stop = lf ? lf : end_;
    const char* content_end = stop;
    if (content_end > pos_ && content_end[-1] == '\r') --content_end;
    if (content_end == pos_) {  // a blank line: counted, not a row
      if (!lf) {
        pos_ = end_;
        row->cells.clear();
        return false;
      }
      pos_ = lf + 1;
      ++line_;
      continue;
    }
    if (static_cast<size_t>(content_end - pos_) > kMaxRowBytes) return NextSlow(row);
    // Every CR but the one before the line end is data.
    row->line = line_;
    row->offset = offset_ + static_cast<uint64_t>(pos_ - begin_);
    CsvProblem problem = CsvProblem::kNone;
    const size_t cells = comma_count + 1;
    const size_t stored = std::min(cells, kMaxColumns);
    if (cells > kMaxColumns) problem = CsvProblem::kTooManyColumns;
    row->cells.resize(stored);
    std::string_view* out = row->cells.data();
    // The last cell ends at the row's end: a comma there, when every comma is stored.
    if (comma_count < kMaxColumns) commas[comma_count] = static_cast<uint32_t>(content_end - pos_);
    const char* cell = pos_;
    for (size_t i = 0; i < stored; ++i) {
      const char* cell_end = pos_ + commas[i];
      out[i] = std::string_view(cell, static_cast<size_t>(cell_end - cell));
      cell = cell_end + 1;
    }
    if (static_cast<size_t>(content_end - pos_) > kMaxFieldBytes) {  // else no cell can be too long
      size_t longest = 0;
      for (size_t i = 0; i < stored; ++i) longest = std::max(longest, out[i].size());
      if (longest > kMaxFieldBytes && Severity(CsvProblem::kFieldTooLong) > Severity(problem)) {
        problem = CsvProblem::kFieldTooLong;
      }
    }
    // Cells are the row cut at ASCII commas, so the cells from the one holding
    // the first byte that is not plain ASCII to the one holding the last are
    // UTF-8 exactly when each of them is; the others are ASCII. The
    // lowest-ranked problem, it matters only when there is no other. (No
    // problem: every comma is stored, so both cells are among `out`.) A CR
    // before the line end is not in the last cell, nor in the check.
    if (special && problem == CsvProblem::kNone) {
      const char* from = out[first_special_cell].data();
      const char* to = last_special >= content_end ? content_end
                                                   : out[last_special_cell].data() + out[last_special_cell].size();
      if (!IsValidUtf8Bytes(from, static_cast<size_t>(to - from))) problem = CsvProblem::kInvalidUtf8;
    }
    row->problem = problem;
    if (lf) {
      pos_ = lf + 1;
      ++line_;
    } else {
      pos_ = end_;
    }
    return true;
  }
}

// The state machine of CsvReader::Impl::Next over bytes in memory.
bool CsvBlockParser::NextSlow(CsvRowView* row) {
  enum class State : uint8_t { kFieldStart, kUnquoted, kQuoted, kQuotedQuote, kAfterQuote };
  row_ = row;
  // A row stores at most kMaxRowBytes of cell bytes: its scratch never reallocates under its views.
  if (row->scratch.capacity() < kMaxRowBytes + 64) row->scratch.reserve(kMaxRowBytes + 64);
  auto start_attempt = [&] {
    row->cells.clear();
    row_->scratch.clear();
    row_start_ = pos_;
    row->line = line_;
    row->offset = offset_ + static_cast<uint64_t>(pos_ - begin_);
    cells_started_ = 0;
    storing_ = true;
    problem_ = CsvProblem::kNone;
    BeginCell();
  };
  auto flag = [&](CsvProblem p) {
    if (Severity(p) > Severity(problem_)) problem_ = p;
  };
  start_attempt();
  State state = State::kFieldStart;
  bool cr_pending = false;
  for (;;) {
    if (pos_ == end_) {
      // The end of the block is the end of the file: it ends the row, like a line end.
      if (state == State::kQuoted) flag(CsvProblem::kUnterminatedQuote);
      return FinishRow(pos_ - (cr_pending ? 1 : 0));
    }
    if (cr_pending && *pos_ != '\n') {
      cr_pending = false;
      if (state == State::kAfterQuote) flag(CsvProblem::kBadQuote);
      Append(pos_ - 1, 1);
      state = State::kUnquoted;
    }
    switch (state) {
      case State::kFieldStart:
      case State::kUnquoted: {
        const char* p = pos_;
        while (p != end_ && !kUnquotedStops[static_cast<unsigned char>(*p)]) ++p;
        if (p != pos_) {
          state = State::kUnquoted;
          Append(pos_, static_cast<size_t>(p - pos_));
        }
        pos_ = p;
        if (p == end_) break;
        const char c = *pos_++;
        if (c == ',') {
          EndCell();
          BeginCell();
          state = State::kFieldStart;
        } else if (c == '"') {
          if (state == State::kFieldStart) {
            state = State::kQuoted;
          } else {
            flag(CsvProblem::kBadQuote);
            Append(pos_ - 1, 1);
          }
        } else if (c == '\r') {
          cr_pending = true;
        } else {  // '\n'
          const char* content_end = pos_ - 1 - (cr_pending ? 1 : 0);
          ++line_;
          if (FinishRow(content_end)) return true;
          start_attempt();
          state = State::kFieldStart;
          cr_pending = false;
        }
        break;
      }
      case State::kQuoted: {
        const auto avail = static_cast<size_t>(end_ - pos_);
        const auto* q = static_cast<const char*>(std::memchr(pos_, '"', avail));
        const char* stop = q != nullptr ? q : end_;
        line_ += std::count(pos_, stop, '\n');
        Append(pos_, static_cast<size_t>(stop - pos_));
        pos_ = stop;
        if (q != nullptr) {
          ++pos_;
          state = State::kQuotedQuote;
        }
        break;
      }
      case State::kQuotedQuote:
        if (*pos_ == '"') {
          ++pos_;
          Append(pos_ - 1, 1);
          state = State::kQuoted;
        } else {
          state = State::kAfterQuote;
        }
        break;
      case State::kAfterQuote: {
        const char c = *pos_++;
        if (c == ',') {
          EndCell();
          BeginCell();
          state = State::kFieldStart;
        } else if (c == '\r') {
          cr_pending = true;
        } else if (c == '\n') {
          const char* content_end = pos_ - 1 - (cr_pending ? 1 : 0);
          ++line_;
          if (FinishRow(content_end)) return true;
          start_attempt();
          state = State::kFieldStart;
          cr_pending = false;
        } else {
          flag(CsvProblem::kBadQuote);
          Append(pos_ - 1, 1);
          state = State::kUnquoted;
        }
        break;
      }
    }
  }
}

}  // namespace carecard
