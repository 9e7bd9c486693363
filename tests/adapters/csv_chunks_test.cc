// The parallel reading path (CsvChunkReader cutting a file into blocks,
// CsvBlockParser parsing each in place) reads every file exactly as CsvReader
// does: same rows, lines, problems and cells, whatever the block size.
#include "adapters/csv_chunks.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/csv_reader.h"
#include "tests/batch/test_files.h"

namespace carecard {
namespace {

struct Row {
  int64_t line;
  CsvProblem problem;
  std::vector<std::string> cells;  // compared only where callers use them
  bool operator==(const Row&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Row& r) {
  os << "{line " << r.line << ", " << CsvProblemText(r.problem) << ", [";
  for (size_t i = 0; i < r.cells.size(); ++i) os << (i ? "|" : "") << r.cells[i].substr(0, 30);
  return os << "]}";
}

// Cells matter to callers only for a clean row and for the two problems whose
// detail names a cell (data_folder.h); other problem rows reject without them.
bool CellsMatter(CsvProblem p) {
  return p == CsvProblem::kNone || p == CsvProblem::kInvalidUtf8 || p == CsvProblem::kFieldTooLong;
}

std::vector<Row> ByReader(const std::string& data) {
  std::vector<Row> rows;
  auto reader = CsvReader::FromString(data, "t.csv");
  CsvRow row;
  while (reader->Next(&row)) {
    rows.push_back({row.line, row.problem, CellsMatter(row.problem) ? row.cells : std::vector<std::string>{}});
  }
  return rows;
}

using testing::TempFile;

// Reads a file through blocks of `block_bytes`, as the data folder loader does.
// `reused`: a block that read other files before, as the registry's does.
std::vector<Row> ByBlocks(const std::string& path, size_t block_bytes, std::string* sha256 = nullptr,
                          std::unique_ptr<PartialSha256> resume = nullptr, CsvBlock* reused = nullptr) {
  std::string error;
  auto reader = CsvChunkReader::Open(path, block_bytes, &error, true, std::move(resume));
  EXPECT_NE(reader, nullptr) << error;
  std::vector<Row> rows;
  if (!reader) return rows;
  CsvBlock own;
  CsvBlock& block = reused ? *reused : own;
  CsvRowView row;
  int64_t next_line = 1;
  while (reader->Next(&block)) {
    EXPECT_EQ(block.first_line >= next_line, true) << "blocks go forward";
    if (block.long_row) {
      rows.push_back({block.long_row_line, block.long_row_problem, {}});
      continue;
    }
    CsvBlockParser parser(block.bytes.data() + block.begin, block.bytes.data() + block.end, block.first_line,
                          block.offset);
    while (parser.Next(&row)) {
      Row r{row.line, row.problem, {}};
      if (CellsMatter(row.problem)) r.cells.assign(row.cells.begin(), row.cells.end());
      rows.push_back(std::move(r));
    }
    next_line = parser.line();
  }
  EXPECT_TRUE(reader->error().empty()) << reader->error();
  uint64_t bytes = 0;
  std::string digest;
  EXPECT_TRUE(reader->Digest(&digest, &bytes));
  if (sha256) *sha256 = digest;
  return rows;
}

void ExpectSameRows(const std::string& data, const std::vector<size_t>& block_sizes) {
  const std::vector<Row> expected = ByReader(data);
  TempFile file(data);
  for (size_t block : block_sizes) {
    std::string sha;
    EXPECT_EQ(ByBlocks(file.path(), block, &sha), expected) << "block size " << block;
    EXPECT_EQ(sha, Sha256Hex(data)) << "block size " << block;
  }
}

constexpr size_t kSmallestBlock = kMaxRowBytes + 8;

TEST(csv_chunks, blocks_read_rows_exactly_as_the_reader_does) {
  std::string data = "\xEF\xBB\xBFtxn_id,card_no,service\r\n";
  for (int i = 0; i < 20000; ++i) {
    data += "X" + std::to_string(i) + ",QD" + std::to_string(i % 97) + ",";
    data += i % 5 == 0 ? "\"助餐, \"\"hot\"\"\nmeal\"" : "助浴";
    data += i % 3 ? "\n" : "\r\n";
    if (i % 777 == 0) data += "\n\r\n";
  }
  ExpectSameRows(data, {kSmallestBlock, kSmallestBlock + 1, 100'000, 1 << 20});
}

TEST(csv_chunks, a_block_carried_from_file_to_file_holds_only_the_file_it_reads) {
  // Its bytes are not cleared between files (nor zeroed when it is sized), so
  // whatever a longer file left behind must never reach a shorter file's rows:
  // not after its last line end, nor after a last row without one.
  std::string longer = "txn_id,card_no,service\n";
  for (int i = 0; i < 30000; ++i) longer += "X" + std::to_string(i) + ",QD" + std::to_string(i % 97) + ",\"助餐\nhot\"\n";
  const std::string shorter = "txn_id,card_no\nA1,QD1\nA2,QD2";  // no line end after the last row
  const std::string shortest = "t\n";
  TempFile longer_file(longer), shorter_file(shorter), shortest_file(shortest);
  for (size_t block_bytes : {kSmallestBlock, size_t{1} << 20}) {
    CsvBlock block;
    EXPECT_EQ(ByBlocks(longer_file.path(), block_bytes, nullptr, nullptr, &block), ByReader(longer));
    ASSERT_GT(block.bytes.size(), shorter.size());
    EXPECT_EQ(ByBlocks(shorter_file.path(), block_bytes, nullptr, nullptr, &block), ByReader(shorter));
    EXPECT_EQ(ByBlocks(shortest_file.path(), block_bytes, nullptr, nullptr, &block), ByReader(shortest));
    EXPECT_EQ(ByBlocks(longer_file.path(), block_bytes, nullptr, nullptr, &block), ByReader(longer));
  }
}

TEST(csv_chunks, rows_of_any_width_and_density_of_commas_read_as_the_reader_reads_them) {
  // Commas are stored eight at a time per 64-byte window: windows with none,
  // with more than eight (empty cells), rows at and past the 256-column limit.
  std::string data;
  uint32_t seed = 11;
  for (size_t width : {1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 200, 255, 256, 257, 258, 300, 1000}) {
    for (int variant = 0; variant < 4; ++variant) {
      for (size_t c = 0; c < width; ++c) {
        seed = seed * 1103515245u + 12345u;
        const size_t length = variant == 0 ? 0 : variant == 1 ? 1 : (seed >> 16) % (variant == 2 ? 4 : 40);
        if (c > 0) data += ',';
        data += std::string(length, static_cast<char>('a' + c % 26));
      }
      data += variant % 2 ? "\r\n" : "\n";
    }
  }
  ExpectSameRows(data, {kSmallestBlock, 1 << 20});
  const std::vector<Row> rows = ByReader(data);
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(), [](const Row& r) { return r.problem == CsvProblem::kTooManyColumns; }),
            4 * 4);  // the rows of 257, 258, 300 and 1000 cells, and none below
}

TEST(csv_chunks, arbitrary_bytes_read_the_same_in_blocks) {
  // Every pattern of the bytes that matter, in files long enough to span blocks.
  const char alphabet[] = {',', '"', '\r', '\n', 'a', 'b', '\xE5', '\xBC', '\xA0', '\0', '\xFF', ' '};
  uint32_t seed = 2024;
  for (int round = 0; round < 40; ++round) {
    std::string data;
    const int length = 70'000 + round * 1000;
    for (int i = 0; i < length; ++i) {
      seed = seed * 1103515245u + 12345u;
      const uint32_t r = seed >> 16;
      // Mostly plain rows, with runs of the awkward bytes.
      data.push_back(r % 4 == 0 ? alphabet[(r >> 3) % sizeof(alphabet)] : (r % 11 == 0 ? '\n' : (r % 7 == 0 ? ',' : 'x')));
    }
    ExpectSameRows(data, {kSmallestBlock, kSmallestBlock + 13});
  }
}

TEST(csv_chunks, a_row_longer_than_a_block_is_too_long_and_the_next_row_is_read) {
  std::string data = "a,b\n1,2\n";
  data += std::string(300'000, 'x') + ",y\n";                                 // one long unquoted row
  data += "3,4\n\"" + std::string(200'000, 'q') + "\nstill\"\"quoted\",z\n";  // a long quoted multi-line row
  data += "5,6\n";
  const std::vector<Row> rows = ByReader(data);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[2].problem, CsvProblem::kRowTooLong);
  EXPECT_EQ(rows[4].problem, CsvProblem::kRowTooLong);
  EXPECT_EQ(rows[5].line, 7);
  ExpectSameRows(data, {kSmallestBlock, 100'000, 150'000});
}

TEST(csv_chunks, an_unterminated_quote_swallows_the_rest_of_the_file) {
  std::string data = "a,b\n1,\"open\n" + std::string(200'000, 'z') + "\n2,3\n";
  const std::vector<Row> rows = ByReader(data);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].problem, CsvProblem::kUnterminatedQuote);
  ExpectSameRows(data, {kSmallestBlock, 1 << 20});
  ExpectSameRows("a,b\n1,\"short open\n2,3\n", {kSmallestBlock});
}

TEST(csv_chunks, empty_and_bom_only_files_have_no_rows) {
  for (const std::string data : {"", "\xEF\xBB\xBF", "\n\n\r\n", "\xEF\xBB"}) ExpectSameRows(data, {kSmallestBlock});
}

TEST(csv_chunks, rows_parsed_ahead_keep_their_cells) {
  // Quoted cells with doubled quotes are copied out of the input: each row keeps its own copy.
  const std::string data = "\"a\"\"1\",x\n\"b\"\"2\",y\n\"c\"\"3\",z\n";
  CsvBlockParser parser(data.data(), data.data() + data.size(), 1, 0);
  CsvRowView rows[3];
  for (auto& r : rows) ASSERT_TRUE(parser.Next(&r));
  EXPECT_EQ(rows[0].cells[0], "a\"1");
  EXPECT_EQ(rows[1].cells[0], "b\"2");
  EXPECT_EQ(rows[2].cells[0], "c\"3");
  EXPECT_EQ(rows[2].cells[1], "z");
}

TEST(csv_chunks, a_row_is_read_back_by_its_offset) {
  const std::string data = "txn_id,amount\nD1,100.00\n\"D,2\",\"2\"\"00\"\r\nD3,3.00";
  TempFile file(data);
  FileRowFetcher fetcher({file.path()}, {{1, 0}}, {2});
  std::vector<std::string> cells;
  fetcher.Fetch(0, data.find("D1"), &cells);
  EXPECT_EQ(cells, (std::vector<std::string>{"100.00", "D1"}));
  fetcher.Fetch(0, data.find("\"D,2\""), &cells);
  EXPECT_EQ(cells, (std::vector<std::string>{"2\"00", "D,2"}));
  fetcher.Fetch(0, data.find("D3"), &cells);  // the last row, without a line end
  EXPECT_EQ(cells, (std::vector<std::string>{"3.00", "D3"}));
  EXPECT_THROW(fetcher.Fetch(0, data.size() + 5, &cells), RefusedError);
}

// What the hashing thread hands over when it is stopped in the middle of a file.
std::unique_ptr<PartialSha256> HashOfFirst(const std::string& data, size_t bytes) {
  auto partial = std::make_unique<PartialSha256>();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EXPECT_EQ(EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr), 1);
  EVP_DigestUpdate(ctx, data.data(), bytes);
  partial->ctx = ctx;
  partial->bytes = bytes;
  return partial;
}

TEST(csv_chunks, a_hash_begun_by_another_thread_is_carried_on_by_the_reader) {
  std::string data = "txn_id,card_no,service\n";
  for (int i = 0; i < 9000; ++i) data += "X" + std::to_string(i) + ",QD" + std::to_string(i % 97) + ",助餐\n";
  const std::vector<Row> expected = ByReader(data);
  TempFile file(data);
  // Stopped before the first read, inside the first block, at a block's end, in a later block, at the end.
  for (size_t hashed : {size_t{0}, size_t{1}, size_t{5000}, kSmallestBlock - 1, kSmallestBlock, kSmallestBlock + 7,
                        2 * kSmallestBlock + 3, data.size() - 1, data.size()}) {
    std::string sha;
    EXPECT_EQ(ByBlocks(file.path(), kSmallestBlock, &sha, HashOfFirst(data, hashed)), expected) << hashed;
    EXPECT_EQ(sha, Sha256Hex(data)) << "hash carried on after " << hashed << " bytes";
  }
}

TEST(csv_chunks, a_carried_on_hash_of_more_bytes_than_the_file_has_gives_no_digest) {
  const std::string data = "txn_id\nX1\nX2\n";
  TempFile file(data);
  std::string error;
  auto reader = CsvChunkReader::Open(file.path(), kSmallestBlock, &error, true, HashOfFirst(data + "X3\n", data.size() + 3));
  ASSERT_NE(reader, nullptr) << error;
  CsvBlock block;
  while (reader->Next(&block)) {
  }
  std::string sha;
  uint64_t bytes = 0;
  EXPECT_FALSE(reader->Digest(&sha, &bytes)) << "the file shrank below what was hashed";
}

TEST(csv_chunks, a_hash_stopped_before_it_began_hands_nothing_over) {
  TempFile file("txn_id\nX1\n");
  const std::atomic<bool> stop{true};
  std::unique_ptr<PartialSha256> partial;
  std::string sha, error;
  uint64_t bytes = 0;
  FileIdentity identity;
  EXPECT_FALSE(HashFile(file.path(), &sha, &bytes, &identity, &stop, &partial, &error));
  EXPECT_EQ(partial, nullptr);
  const std::atomic<bool> go{false};
  EXPECT_TRUE(HashFile(file.path(), &sha, &bytes, &identity, &go, &partial, &error)) << error;
  EXPECT_EQ(sha, Sha256Hex("txn_id\nX1\n"));
  EXPECT_EQ(partial, nullptr);
}

TEST(csv_chunks, a_hash_stopped_midway_and_carried_on_is_the_hash_of_the_file) {
  // Where the stop lands depends on timing; whatever it is, the digest must be the file's.
  std::string data;
  for (int i = 0; data.size() < (size_t{8} << 20); ++i) data += "X" + std::to_string(i) + ",QD" + std::to_string(i % 89) + "\n";
  TempFile file(data);
  const std::string expected = Sha256Hex(data);
  int carried_on = 0;
  for (int delay_us : {0, 200, 500, 1000, 2000, 4000}) {
    std::atomic<bool> stop{false};
    std::unique_ptr<PartialSha256> partial;
    std::string sha, error;
    uint64_t bytes = 0;
    FileIdentity identity;
    bool whole = false;
    std::thread hasher([&] { whole = HashFile(file.path(), &sha, &bytes, &identity, &stop, &partial, &error); });
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    stop = true;
    hasher.join();
    if (whole) {
      EXPECT_EQ(sha, expected);
      EXPECT_EQ(bytes, data.size());
      continue;
    }
    if (!partial) continue;  // stopped before the first read
    EXPECT_GT(partial->bytes, 0u);
    EXPECT_LE(partial->bytes, data.size());
    ++carried_on;
    ByBlocks(file.path(), 1 << 20, &sha, std::move(partial));
    EXPECT_EQ(sha, expected) << "stopped after " << delay_us << " µs";
  }
  RecordProperty("carried_on", carried_on);
}

TEST(csv_chunks, line_feeds_are_counted_whatever_the_alignment_the_length_and_the_density) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += std::string(static_cast<size_t>(i % 13), 'a') + "\n\n\x8a";
  EXPECT_EQ(CountLineFeeds(data.data(), data.size()), 2000);
  EXPECT_EQ(CountLineFeeds(data.data() + 3, 5), std::count(data.begin() + 3, data.begin() + 8, '\n'));
  // Nothing but line feeds: a counter per byte lane would wrap at 256.
  const std::string lfs(100'000, '\n');
  EXPECT_EQ(CountLineFeeds(lfs.data(), lfs.size()), 100'000);
  for (size_t n : {size_t{4079}, size_t{4080}, size_t{4081}, size_t{4096}, size_t{8160}, size_t{8161}}) {
    EXPECT_EQ(CountLineFeeds(lfs.data() + 1, n), static_cast<int64_t>(n)) << n;
  }
  // Bytes of every value (LF among them, and bytes that differ from it in one bit) at every offset and length.
  std::string mixed;
  uint32_t seed = 7;
  for (int i = 0; i < 9000; ++i) {
    seed = seed * 1103515245u + 12345u;
    mixed.push_back(static_cast<char>(seed % 3 == 0 ? '\n' : static_cast<char>(seed >> 16)));
  }
  for (size_t offset = 0; offset < 17; ++offset) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{4085}, mixed.size() - offset}) {
      EXPECT_EQ(CountLineFeeds(mixed.data() + offset, n),
                std::count(mixed.begin() + static_cast<ptrdiff_t>(offset), mixed.begin() + static_cast<ptrdiff_t>(offset + n), '\n'))
          << offset << " + " << n;
    }
  }
}

}  // namespace
}  // namespace carecard
