#include "adapters/csv_chunks.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace carecard {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// The offset just after the last LF outside quotes in [p, p + n), or 0.
// `p` is a row start. A quote opens a quoted cell only at a cell's start
// (the first byte, or after ',' or LF), as CsvReader reads it; a quote at the
// very end of the buffer leaves the state open, so the row is cut before it.
size_t LastRowEnd(const char* p, size_t n) {
  size_t i = 0, last = 0;
  for (;;) {
    const auto* q = static_cast<const char*>(std::memchr(p + i, '"', n - i));
    const size_t segment_end = q ? static_cast<size_t>(q - p) : n;
    if (segment_end > i) {
      if (const auto* lf = static_cast<const char*>(memrchr(p + i, '\n', segment_end - i))) last = static_cast<size_t>(lf - p) + 1;
    }
    if (!q) return last;
    const auto at = static_cast<size_t>(q - p);
    const bool opens = at == 0 || p[at - 1] == ',' || p[at - 1] == '\n';
    i = at + 1;
    if (!opens) continue;
    for (;;) {
      const auto* close = static_cast<const char*>(std::memchr(p + i, '"', n - i));
      if (!close) return last;
      const auto j = static_cast<size_t>(close - p);
      if (j + 1 >= n) return last;
      if (p[j + 1] == '"') {
        i = j + 2;
        continue;
      }
      i = j + 1;
      break;
    }
  }
}

// The quote state across reads while a long row is skipped.
struct QuoteState {
  enum Mode : uint8_t { kOutside, kInside, kInsideQuote } mode = kOutside;
  char previous = '\n';  // outside: the byte before, '\n' at a row start
};

// Follows `state` over [p, p + n): the offset just after the first LF outside
// quotes, or 0 (then the state is the state at the end). *lfs counts the LF
// bytes consumed.
size_t FirstRowEnd(const char* p, size_t n, QuoteState* state, int64_t* lfs) {
  for (size_t i = 0; i < n; ++i) {
    const char c = p[i];
    switch (state->mode) {
      case QuoteState::kOutside:
        if (c == '\n') {
          ++*lfs;
          state->previous = '\n';
          return i + 1;
        }
        if (c == '"' && (state->previous == ',' || state->previous == '\n')) {
          state->mode = QuoteState::kInside;
        }
        state->previous = c;
        break;
      case QuoteState::kInside:
        if (c == '\n') ++*lfs;
        if (c == '"') state->mode = QuoteState::kInsideQuote;
        break;
      case QuoteState::kInsideQuote:
        if (c == '"') {
          state->mode = QuoteState::kInside;  // a doubled quote
        } else {
          state->mode = QuoteState::kOutside;
          state->previous = '"';
          --i;  // this byte is read again, outside
        }
        break;
    }
  }
  return 0;
}

}  // namespace

bool IdentifyFile(const std::string& path, FileIdentity* identity, std::string* error) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  identity->size = static_cast<uint64_t>(st.st_size);
  identity->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  identity->inode = static_cast<uint64_t>(st.st_ino);
  return true;
}

PartialSha256::~PartialSha256() {
  if (ctx) EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx));
}

namespace {

// A fresh SHA-256 in *state; false when OpenSSL cannot start one.
bool StartSha256(PartialSha256* state) {
  auto* ctx = EVP_MD_CTX_new();
  state->ctx = ctx;
  state->bytes = 0;
  return ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1;
}

void UpdateSha256(PartialSha256* state, const char* data, size_t n) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(state->ctx), data, n);
  state->bytes += n;
}

// The digest as lowercase hex; the state is spent (ctx freed) either way.
bool FinishSha256(PartialSha256* state, std::string* hex) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const bool ok = EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(state->ctx), md, &length) == 1;
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(state->ctx));
  state->ctx = nullptr;
  if (!ok) return false;
  static constexpr char kHex[] = "0123456789abcdef";
  hex->clear();
  for (unsigned int i = 0; i < length; ++i) {
    hex->push_back(kHex[md[i] >> 4]);
    hex->push_back(kHex[md[i] & 15]);
  }
  return true;
}

}  // namespace

bool HashFile(const std::string& path, std::string* sha256_hex, uint64_t* bytes, FileIdentity* identity,
              const std::atomic<bool>* stop, std::unique_ptr<PartialSha256>* partial, std::string* error) {
  if (!IdentifyFile(path, identity, error)) return false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  auto state = std::make_unique<PartialSha256>();
  bool ok = StartSha256(state.get());
  ByteBuffer buffer;
  buffer.resize(1 << 20);
  while (ok) {
    if (stop && stop->load(std::memory_order_relaxed)) {
      if (partial && state->bytes > 0) *partial = std::move(state);
      ok = false;
      break;
    }
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = "cannot read " + path + ": " + std::strerror(errno);
      ok = false;
      break;
    }
    if (n == 0) break;
    UpdateSha256(state.get(), buffer.data(), static_cast<size_t>(n));
  }
  if (ok) {
    *bytes = state->bytes;
    ok = FinishSha256(state.get(), sha256_hex);
  }
  ::close(fd);
  return ok;
}

int64_t CountLineFeeds(const char* p, size_t n) {
  int64_t count = 0;
  size_t i = 0;
#if defined(__SSE2__)
  // Sixteen bytes at a time: a compare gives -1 in the lane of each LF, which
  // is subtracted into per-lane byte counters; those are summed into 64-bit
  // ones (psadbw) every 255 steps, before a lane could pass 255.
  const __m128i kLf = _mm_set1_epi8('\n');
  const __m128i kZero = _mm_setzero_si128();
  while (n - i >= 16) {
    const size_t steps = std::min<size_t>((n - i) / 16, 255);
    __m128i lanes = kZero;
    for (size_t s = 0; s < steps; ++s, i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(v, kLf));
    }
    const __m128i sums = _mm_sad_epu8(lanes, kZero);
    count += _mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums));
  }
#else
  // Eight bytes at a time: a byte equal to LF becomes 0x80 in `hits`.
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  constexpr uint64_t kLf = kOnes * '\n';
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    const uint64_t x = w ^ kLf;  // zero bytes where LF was
    const uint64_t hits = ~(((x & ~kHigh) + ~kHigh) | x) & kHigh;
    // One bit per LF byte, at the byte's top; summing the bytes counts them (no popcount needed).
    count += static_cast<int64_t>(((hits >> 7) * kOnes) >> 56);
  }
#endif
  for (; i < n; ++i) count += p[i] == '\n';
  return count;
}

CsvChunkReader::~CsvChunkReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<CsvChunkReader> CsvChunkReader::Open(const std::string& path, size_t block_bytes, std::string* error,
                                                     bool hash, std::unique_ptr<PartialSha256> resume) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<CsvChunkReader> r(new CsvChunkReader());
  r->path_ = path;
  r->fd_ = fd;
  r->block_bytes_ = std::max(block_bytes, kMaxRowBytes + 8);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (hash && resume && resume->ctx) {
    r->sha_ = std::move(resume);
    return r;
  }
  r->sha_ = std::make_unique<PartialSha256>();  // without `hash` it has no ctx: nothing is hashed
  if (hash && !StartSha256(r->sha_.get())) {
    *error = "cannot start SHA-256 for " + path;
    return nullptr;
  }
  return r;
}

bool CsvChunkReader::Fill(ByteBuffer* buffer, size_t from, size_t* filled) {
  size_t at = from;
  while (at < buffer->size() && !eof_) {
    const ssize_t n = ::pread(fd_, buffer->data() + at, buffer->size() - at, static_cast<off_t>(read_));
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = "cannot read " + path_ + ": " + std::strerror(errno);
      return false;
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    if (sha_->ctx && read_ + static_cast<uint64_t>(n) > sha_->bytes) {
      // Resumed: the bytes before sha_->bytes are in the hash already.
      const uint64_t skip = sha_->bytes > read_ ? sha_->bytes - read_ : 0;
      UpdateSha256(sha_.get(), buffer->data() + at + skip, static_cast<size_t>(static_cast<uint64_t>(n) - skip));
    }
    read_ += static_cast<uint64_t>(n);
    at += static_cast<size_t>(n);
  }
  *filled = at;
  return true;
}

bool CsvChunkReader::Next(CsvBlock* block) {
  block->long_row = false;
  if (done_) return false;
  ByteBuffer& bytes = block->bytes;
  if (bytes.size() != block_bytes_) bytes.resize(block_bytes_);
  if (!carry_.empty()) std::memcpy(bytes.data(), carry_.data(), carry_.size());
  // The file offset of bytes[0]: what was read, less what is carried.
  const uint64_t base = read_ - carry_.size();
  size_t filled = 0;
  if (!Fill(&bytes, carry_.size(), &filled)) return false;
  carry_.clear();
  size_t begin = 0;
  if (first_) {
    first_ = false;
    if (std::string_view(bytes.data(), filled).starts_with(kBom)) begin = kBom.size();
  }
  if (filled == begin && eof_) {
    done_ = true;
    return false;
  }
  block->begin = begin;
  block->offset = base + begin;
  block->first_line = lines_ + 1;
  if (eof_) {
    block->end = filled;
    block->ends_file = true;
    done_ = true;
    lines_ += CountLineFeeds(bytes.data() + begin, filled - begin);
    return true;
  }
  const size_t cut = LastRowEnd(bytes.data() + begin, filled - begin);
  if (cut == 0) return SkipLongRow(block, filled);
  block->end = begin + cut;
  block->ends_file = false;
  carry_.assign(bytes.data() + block->end, bytes.data() + filled);
  lines_ += CountLineFeeds(bytes.data() + begin, cut);
  return true;
}

// The block holds no row end: its first row is longer than a block, so longer
// than kMaxRowBytes. Skip to its real end, keeping nothing of it.
bool CsvChunkReader::SkipLongRow(CsvBlock* block, size_t filled) {
  ByteBuffer& bytes = block->bytes;
  block->long_row = true;
  block->long_row_line = block->first_line;
  block->long_row_offset = block->offset;
  block->end = block->begin;
  block->ends_file = false;
  QuoteState state;
  int64_t lfs = 0;
  size_t from = block->begin;
  for (;;) {
    const size_t end = FirstRowEnd(bytes.data() + from, filled - from, &state, &lfs);
    if (end != 0) {
      lines_ += lfs;
      carry_.assign(bytes.data() + from + end, bytes.data() + filled);
      block->long_row_problem = CsvProblem::kRowTooLong;
      return true;
    }
    if (eof_) {
      lines_ += lfs;
      done_ = true;
      block->ends_file = true;
      block->long_row_problem = state.mode == QuoteState::kInside ? CsvProblem::kUnterminatedQuote : CsvProblem::kRowTooLong;
      return true;
    }
    if (!Fill(&bytes, 0, &filled)) return false;
    from = 0;
  }
}

bool CsvChunkReader::Digest(std::string* sha256_hex, uint64_t* bytes) {
  if (!done_ || !error_.empty() || !sha_->ctx || sha_->bytes != read_) return false;
  if (!FinishSha256(sha_.get(), sha256_hex)) return false;
  *bytes = read_;
  return true;
}

FileRowFetcher::FileRowFetcher(std::vector<std::string> paths, std::vector<std::vector<int>> column_of,
                               std::vector<size_t> widths)
    : paths_(std::move(paths)), column_of_(std::move(column_of)), widths_(std::move(widths)), fds_(paths_.size(), -1) {
  for (size_t i = 0; i < paths_.size(); ++i) {
    if (!paths_[i].empty()) fds_[i] = ::open(paths_[i].c_str(), O_RDONLY | O_CLOEXEC);
  }
}

FileRowFetcher::~FileRowFetcher() {
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

void FileRowFetcher::Fetch(uint16_t file, uint64_t locator, std::vector<std::string>* cells) const {
  auto changed = [&](const std::string& why) {
    return RefusedError(paths_[file] + ": the row at byte " + std::to_string(locator) + " " + why +
                        ": did the file change during the run?");
  };
  if (file >= fds_.size() || fds_[file] < 0) throw changed("cannot be read again");
  struct stat st;
  if (::fstat(fds_[file], &st) != 0) throw changed("cannot be read again");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (locator >= size) throw changed("is past the end of the file");
  const size_t want = static_cast<size_t>(std::min<uint64_t>(kMaxRowBytes + 8, size - locator));
  std::vector<char> bytes(want);
  size_t got = 0;
  while (got < want) {
    const ssize_t n = ::pread(fds_[file], bytes.data() + got, want - got, static_cast<off_t>(locator + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw changed("cannot be read again");
    got += static_cast<size_t>(n);
  }
  // Only the first row is parsed, and a row that was kept is at most kMaxRowBytes:
  // it is whole in these bytes, whatever follows it.
  CsvBlockParser parser(bytes.data(), bytes.data() + got, 0, locator);
  CsvRowView row;
  if (!parser.Next(&row) || row.problem != CsvProblem::kNone || row.cells.size() != widths_[file]) {
    throw changed("reads differently now");
  }
  const auto& column_of = column_of_[file];
  cells->resize(column_of.size());
  for (size_t i = 0; i < column_of.size(); ++i) (*cells)[i] = std::string(row.cells[static_cast<size_t>(column_of[i])]);
}

}  // namespace carecard
