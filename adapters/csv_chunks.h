// Reading large CSV files in parallel: CsvChunkReader cuts a file into blocks
// of whole rows for CsvBlockParser, and FileRowFetcher reads one row back.
//
// The reader is sequential (one per file: it hashes every byte with SHA-256
// for the manifest, and follows quotes to know where rows end), and cheap
// next to parsing, so blocks can be parsed on other threads while it reads on.
// Memory stays bounded: a block holds `block_bytes` plus at most one row; a
// row longer than kMaxRowBytes is skipped to its real end without being kept
// and reported as a long row (too_long, or an unterminated quote at the end).
#ifndef CARECARD_ADAPTERS_CSV_CHUNKS_H_
#define CARECARD_ADAPTERS_CSV_CHUNKS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "adapters/csv_reader.h"
#include "engine/ledger.h"
#include "engine/spill.h"

namespace carecard {

inline constexpr size_t kDefaultBlockBytes = size_t{4} << 20;


struct CsvBlock {
  // Reused between blocks (and files: pass the same block on). A ByteBuffer is
  // sized without zeroing, so only the pages a read fills are ever touched: a
  // 9 KB file in a 4 MB block costs 3 pages, not 1,024 zeroed ones.
  ByteBuffer bytes;
  size_t begin = 0, end = 0;  // the rows are bytes[begin, end)
  int64_t first_line = 1;     // line of bytes[begin]
  uint64_t offset = 0;        // file offset of bytes[begin]
  bool ends_file = false;
  // Instead of rows: one row too long to keep, at this line and offset.
  bool long_row = false;
  CsvProblem long_row_problem = CsvProblem::kRowTooLong;
  int64_t long_row_line = 0;
  uint64_t long_row_offset = 0;
};

// A SHA-256 over a file's first `bytes` bytes. HashFile hands one over when it
// is told to stop, and a reader of the file carries it on instead of starting
// over; the reader keeps its own hash in one too.
struct PartialSha256 {
  PartialSha256() = default;
  PartialSha256(const PartialSha256&) = delete;
  PartialSha256& operator=(const PartialSha256&) = delete;
  ~PartialSha256();
  void* ctx = nullptr;  // an EVP_MD_CTX, owned
  uint64_t bytes = 0;
};

class CsvChunkReader {
 public:
  // Opens `path`. nullptr with *error naming the file when it cannot be read.
  // Without `hash`, Digest is unavailable (the caller hashed the file already).
  // With `resume` (and `hash`), the hash goes on from resume's state, taking
  // only the bytes after its first resume->bytes: the caller must check that
  // the file is still the one whose start was hashed (FileIdentity).
  // REQUIRES: block_bytes > kMaxRowBytes.
  static std::unique_ptr<CsvChunkReader> Open(const std::string& path, size_t block_bytes, std::string* error,
                                              bool hash = true, std::unique_ptr<PartialSha256> resume = nullptr);
  ~CsvChunkReader();

  // The next block; false at the end of the file or on a read error (error()).
  bool Next(CsvBlock* block);
  const std::string& error() const { return error_; }
  // After the last block: the SHA-256 (lowercase hex) and size of every byte.
  bool Digest(std::string* sha256_hex, uint64_t* bytes);

 private:
  CsvChunkReader() = default;
  bool Fill(ByteBuffer* buffer, size_t from, size_t* filled);
  bool SkipLongRow(CsvBlock* block, size_t filled);

  std::string path_;
  int fd_ = -1;
  uint64_t read_ = 0;      // bytes read so far
  bool eof_ = false;
  bool first_ = true;
  bool done_ = false;
  size_t block_bytes_ = 0;
  std::vector<char> carry_;  // the start of a row cut by the last read
  int64_t lines_ = 0;        // LF bytes before the next block
  std::string error_;
  std::unique_ptr<PartialSha256> sha_;  // no ctx without `hash`; its bytes run ahead of read_ when resumed
};

// Reads transaction rows back by their byte offset (the duplicate check).
class FileRowFetcher : public RowFetcher {
 public:
  // `paths` and `column_of` by file index (empty for files never read back).
  FileRowFetcher(std::vector<std::string> paths, std::vector<std::vector<int>> column_of, std::vector<size_t> widths);
  ~FileRowFetcher() override;
  void Fetch(uint16_t file, uint64_t locator, std::vector<std::string>* canonical_cells) const override;

 private:
  std::vector<std::string> paths_;
  std::vector<std::vector<int>> column_of_;
  std::vector<size_t> widths_;
  std::vector<int> fds_;
};

// What identifies a file's content for a run that reads it twice: size,
// modification time and inode, from fstat.
struct FileIdentity {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;
  friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};
bool IdentifyFile(const std::string& path, FileIdentity* identity, std::string* error);

// SHA-256 of a whole file (lowercase hex), its size, and its identity before
// reading. `stop` (optional) abandons the file when it becomes true: false
// then, and *partial (when given) holds the hash of what was read so far.
bool HashFile(const std::string& path, std::string* sha256_hex, uint64_t* bytes, FileIdentity* identity,
              const std::atomic<bool>* stop, std::unique_ptr<PartialSha256>* partial, std::string* error);

// The number of LF bytes in [p, p + n).
int64_t CountLineFeeds(const char* p, size_t n);

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_CSV_CHUNKS_H_
