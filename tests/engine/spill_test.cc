// The spill (engine/spill.h) and the record codecs that go through it
// (engine/ledger.h): what a partition reads back is the multiset of records
// written to it, and decoding its extents gives back every record as encoded,
// whatever the extent boundaries.
#include "engine/spill.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/ledger.h"
#include "engine/money.h"

namespace carecard {
namespace {

std::string Text(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string ReadBack(const SpillStore& store, uint64_t offset, size_t n) {
  std::string out(n, '\0');
  store.Read(offset, out.data(), n);
  return out;
}

// --- ByteBuffer ---

TEST(byte_buffer, resizing_keeps_the_bytes_already_there) {
  ByteBuffer b;
  EXPECT_TRUE(b.empty());
  b.resize(5);
  std::memcpy(b.data(), "hello", 5);
  b.resize(1 << 20);  // grows
  EXPECT_EQ(std::string(b.data(), 5), "hello");
  b.resize(3);
  b.resize(5);  // back within the capacity: the bytes were kept
  EXPECT_EQ(std::string(b.data(), 5), "hello");
  EXPECT_EQ(b.size(), 5u);
}

TEST(byte_buffer, clear_keeps_the_capacity_so_the_buffer_is_reused) {
  ByteBuffer b;
  b.resize(4096);
  const char* data = b.data();
  b.clear();
  EXPECT_TRUE(b.empty());
  b.resize(4096);
  EXPECT_EQ(b.data(), data);
}

// --- MemorySpillStore ---

TEST(memory_spill_store, append_returns_where_the_bytes_start_and_read_gives_them_back) {
  MemorySpillStore store;
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.Append("abc", 3), 0u);
  EXPECT_EQ(store.Append("", 0), 3u);
  EXPECT_EQ(store.Append("defgh", 5), 3u);
  EXPECT_EQ(store.size(), 8u);
  EXPECT_EQ(ReadBack(store, 0, 3), "abc");
  EXPECT_EQ(ReadBack(store, 3, 5), "defgh");
  EXPECT_EQ(ReadBack(store, 2, 3), "cde");  // any range of what was written
}

TEST(memory_spill_store, discard_gives_back_every_byte_and_appends_start_over) {
  MemorySpillStore store;
  const std::string big = Text(3'000'000, 7);  // three blocks
  store.Append(big.data(), big.size());
  EXPECT_GE(store.HeldBytes(), big.size());
  store.Discard();
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.HeldBytes(), 0u) << "the blocks are freed, not just forgotten";
  char byte;
  EXPECT_THROW(store.Read(0, &byte, 1), SpillError) << "the bytes are gone, not just hidden";
  EXPECT_EQ(store.Append("xyz", 3), 0u);
  EXPECT_EQ(ReadBack(store, 0, 3), "xyz");
}

TEST(memory_spill_store, a_new_store_starts_empty_and_keeps_its_bytes_apart) {
  MemorySpillStore store;
  store.Append("first", 5);
  std::unique_ptr<SpillStore> other = store.NewStore();
  EXPECT_EQ(other->size(), 0u);
  EXPECT_EQ(other->Append("second", 6), 0u);
  other->Discard();
  EXPECT_EQ(ReadBack(store, 0, 5), "first") << "discarding one store leaves the other alone";
  EXPECT_EQ(store.size(), 5u);
}

TEST(memory_spill_store, appends_larger_than_a_block_and_across_blocks_read_back_whole) {
  MemorySpillStore store;
  const std::string a = Text(700'000, 1), b = Text(1'500'000, 2), c = Text(3, 3);  // blocks are 1 MiB
  const uint64_t at_a = store.Append(a.data(), a.size());
  const uint64_t at_b = store.Append(b.data(), b.size());
  const uint64_t at_c = store.Append(c.data(), c.size());
  EXPECT_EQ(at_b, a.size());
  EXPECT_EQ(at_c, a.size() + b.size());
  EXPECT_EQ(ReadBack(store, at_a, a.size()), a);
  EXPECT_EQ(ReadBack(store, at_b, b.size()), b);
  EXPECT_EQ(ReadBack(store, at_c, c.size()), c);
  EXPECT_EQ(ReadBack(store, 0, a.size() + b.size() + c.size()), a + b + c);
}

TEST(memory_spill_store, appends_from_many_threads_each_read_back_at_their_offset) {
  MemorySpillStore store;
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::vector<std::pair<uint64_t, std::string>>> written(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string s = Text(1 + static_cast<size_t>(i * 37 % 3000), static_cast<uint32_t>(t * kEach + i));
        written[t].emplace_back(store.Append(s.data(), s.size()), std::move(s));
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t total = 0;
  for (const auto& w : written) {
    for (const auto& [offset, s] : w) {
      ASSERT_EQ(ReadBack(store, offset, s.size()), s);
      total += s.size();
    }
  }
  EXPECT_EQ(store.size(), total);
}

// --- PartitionedSpill ---

// Records of the tests below: [u8 length][that many bytes], so that a
// partition's bytes parse back into records without help.
std::string Record(uint32_t partition, int serial, size_t body) {
  std::string r = "p" + std::to_string(partition) + "#" + std::to_string(serial) + ":";
  r.append(body, static_cast<char>('a' + serial % 26));
  return std::string(1, static_cast<char>(r.size())) + r;
}

std::vector<std::string> Parse(const char* p, size_t n) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < n) {
    const size_t len = static_cast<unsigned char>(p[at]);
    EXPECT_LE(at + 1 + len, n) << "a record runs past its extent";
    out.emplace_back(p + at, std::min(n - at, 1 + len));
    at += 1 + len;
  }
  return out;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(partitioned_spill, a_partition_reads_back_the_records_written_to_it_and_no_others) {
  MemorySpillStore store;
  PartitionedSpill spill(&store, 3, 64);
  std::vector<std::vector<std::string>> expected(3);
  {
    PartitionedSpill::Writer w(&spill);
    for (int i = 0; i < 200; ++i) {
      const uint32_t p = static_cast<uint32_t>(i * i % 3);
      const std::string r = Record(p, i, static_cast<size_t>(i % 40));
      w.Append(p, r.data(), r.size());
      expected[p].push_back(r);
    }
  }  // the writer flushes as it goes out of scope
  uint64_t total = 0;
  for (uint32_t p = 0; p < 3; ++p) {
    ByteBuffer bytes;
    spill.ReadPartition(p, &bytes);
    EXPECT_EQ(Sorted(Parse(bytes.data(), bytes.size())), Sorted(expected[p])) << "partition " << p;
    EXPECT_EQ(spill.PartitionBytes(p), bytes.size());
    total += bytes.size();
  }
  EXPECT_EQ(spill.TotalBytes(), total);
  EXPECT_EQ(store.size(), total);
}

TEST(partitioned_spill, discard_empties_the_store_but_still_counts_what_was_spilled) {
  MemorySpillStore store;
  PartitionedSpill spill(&store, 2, 64);
  PartitionedSpill::Writer w(&spill);
  for (int i = 0; i < 50; ++i) {
    const std::string r = Record(static_cast<uint32_t>(i % 2), i, 10);
    w.Append(static_cast<uint32_t>(i % 2), r.data(), r.size());
  }
  w.Flush();
  const uint64_t total = spill.TotalBytes();
  ASSERT_GT(total, 0u);
  EXPECT_FALSE(spill.discarded());
  spill.Discard();
  EXPECT_TRUE(spill.discarded());
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(spill.TotalBytes(), total);
  ByteBuffer bytes;
  EXPECT_THROW(spill.ReadPartition(0, &bytes), std::logic_error) << "its extents would name bytes given back";
  const std::string late = Record(1, 99, 10);
  w.Append(1, late.data(), late.size());
  EXPECT_THROW(w.Flush(), std::logic_error) << "a record spilled after the discard would be lost";
  EXPECT_EQ(store.size(), 0u) << "nor is it written into the store given back";
}

// A store whose Discard fails (a file system that refuses to truncate).
class StickyStore : public MemorySpillStore {
 public:
  void Discard() override { throw SpillError("cannot truncate"); }
};

TEST(partitioned_spill, partitions_are_discarded_even_when_their_store_cannot_give_its_bytes_back) {
  StickyStore store;
  PartitionedSpill spill(&store, 1, 64);
  {
    PartitionedSpill::Writer w(&spill);
    w.Append(0, "abc", 3);
  }
  EXPECT_THROW(spill.Discard(), SpillError);
  EXPECT_TRUE(spill.discarded());
  ByteBuffer bytes;
  EXPECT_THROW(spill.ReadPartition(0, &bytes), std::logic_error);
}

// A store that records what it is told to forget.
class ForgetfulStore : public MemorySpillStore {
 public:
  void Forget(uint64_t offset, uint64_t n) override { forgotten.emplace_back(offset, n); }
  std::vector<std::pair<uint64_t, uint64_t>> forgotten;
};

TEST(partitioned_spill, forget_hands_the_store_each_run_of_adjacent_extents_and_keeps_its_other_records) {
  ForgetfulStore store;
  PartitionedSpill spill(&store, 3, 16);
  const uint64_t before = store.Append("exception-a", 11);  // another owner's records, around the spill's
  {
    PartitionedSpill::Writer w(&spill);
    for (int i = 0; i < 30; ++i) {
      const std::string r = Record(static_cast<uint32_t>(i % 3), i, 6);
      w.Append(static_cast<uint32_t>(i % 3), r.data(), r.size());
    }
  }  // one batch: its extents lie end to end
  const uint64_t between = store.Append("exception-b", 11);
  {
    PartitionedSpill::Writer w(&spill);
    const std::string r = Record(2, 99, 6);
    w.Append(2, r.data(), r.size());
  }
  const uint64_t spilled = spill.TotalBytes();
  spill.Forget();

  // Two runs, the other owner's bytes between them untouched.
  ASSERT_EQ(store.forgotten.size(), 2u);
  EXPECT_EQ(store.forgotten[0].first, before + 11);
  EXPECT_EQ(store.forgotten[0].first + store.forgotten[0].second, between);
  EXPECT_EQ(store.forgotten[1].first, between + 11);
  EXPECT_EQ(store.forgotten[0].second + store.forgotten[1].second, spilled);
  EXPECT_EQ(ReadBack(store, before, 11), "exception-a");
  EXPECT_EQ(ReadBack(store, between, 11), "exception-b");

  // As after Discard: the spill still counts its bytes, and refuses to read or take more.
  EXPECT_TRUE(spill.discarded());
  EXPECT_EQ(spill.TotalBytes(), spilled);
  ByteBuffer bytes;
  EXPECT_THROW(spill.ReadPartition(0, &bytes), std::logic_error) << "its extents would name forgotten bytes";
}

TEST(partitioned_spill, records_are_never_split_between_extents_and_extents_fit_the_buffer) {
  MemorySpillStore store;
  constexpr size_t kBuffer = 50;
  PartitionedSpill spill(&store, 1, kBuffer);
  std::vector<std::string> expected;
  {
    PartitionedSpill::Writer w(&spill);
    for (int i = 0; i < 300; ++i) {
      const std::string r = Record(0, i, static_cast<size_t>(i * 13 % 38));  // up to the whole buffer
      ASSERT_LE(r.size(), kBuffer);
      w.Append(0, r.data(), r.size());
      expected.push_back(r);
    }
  }
  ByteBuffer bytes;
  std::vector<uint32_t> extents;
  spill.ReadPartition(0, &bytes, &extents);
  ASSERT_GT(extents.size(), 1u);
  std::vector<std::string> records;
  size_t at = 0;
  for (uint32_t e : extents) {
    EXPECT_GT(e, 0u);
    EXPECT_LE(e, kBuffer);
    for (auto& r : Parse(bytes.data() + at, e)) records.push_back(std::move(r));  // each extent parses alone
    at += e;
  }
  EXPECT_EQ(at, bytes.size());
  EXPECT_EQ(Sorted(records), Sorted(expected));
}

TEST(partitioned_spill, only_what_writers_have_flushed_is_read) {
  MemorySpillStore store;
  PartitionedSpill spill(&store, 2, 1024);
  PartitionedSpill::Writer w(&spill);
  const std::string r = Record(1, 1, 10);
  w.Append(1, r.data(), r.size());
  EXPECT_EQ(spill.PartitionBytes(1), 0u);  // still in the writer's buffer
  ByteBuffer bytes;
  spill.ReadPartition(1, &bytes);
  EXPECT_TRUE(bytes.empty());
  w.Flush();
  EXPECT_EQ(spill.PartitionBytes(1), r.size());
  EXPECT_EQ(spill.PartitionBytes(0), 0u);
  spill.ReadPartition(1, &bytes);
  EXPECT_EQ(std::string(bytes.data(), bytes.size()), r);
}

TEST(partitioned_spill, a_record_written_in_place_is_read_like_an_appended_one) {
  MemorySpillStore store;
  PartitionedSpill spill(&store, 1, 32);
  PartitionedSpill::Writer w(&spill);
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) {
    const std::string r = Record(0, i, 5);
    char* out = w.Reserve(0, 32);  // room for more than it takes
    std::memcpy(out, r.data(), r.size());
    w.Commit(0, r.size());
    expected.push_back(r);
  }
  w.Flush();
  ByteBuffer bytes;
  spill.ReadPartition(0, &bytes);
  EXPECT_EQ(Sorted(Parse(bytes.data(), bytes.size())), Sorted(expected));
}

TEST(partitioned_spill, at_extent_start_says_when_the_next_record_begins_an_extent) {
  MemorySpillStore store;
  PartitionedSpill spill(&store, 2, 10);
  PartitionedSpill::Writer w(&spill);
  // Reserves room for n bytes, fills it, and says whether it starts an extent.
  auto put = [&](uint32_t partition, size_t n) {
    std::memset(w.Reserve(partition, n), 'r', n);
    const bool starts = w.AtExtentStart(partition);
    w.Commit(partition, n);
    return starts;
  };
  EXPECT_TRUE(put(0, 4));
  EXPECT_FALSE(put(0, 4));  // 4 more fit in 10
  EXPECT_TRUE(put(0, 4));   // 12 would not: the first 8 went out as an extent
  EXPECT_TRUE(put(1, 4));   // partitions have their own buffers
  EXPECT_FALSE(put(1, 6));
  w.Flush();
  EXPECT_TRUE(put(0, 1));  // after a flush
  w.Release();
  EXPECT_TRUE(put(0, 1));  // after a release, buffers come back on demand
  w.Flush();
  std::vector<uint32_t> extents;
  ByteBuffer bytes;
  spill.ReadPartition(0, &bytes, &extents);
  EXPECT_EQ(extents, (std::vector<uint32_t>{8, 4, 1, 1}));
  EXPECT_EQ(std::string(bytes.data(), bytes.size()), std::string(14, 'r'));
  EXPECT_EQ(spill.PartitionBytes(1), 10u);
}

TEST(partitioned_spill, a_reused_buffer_holds_only_the_partition_read_last) {
  MemorySpillStore store;
  PartitionedSpill spill(&store, 3, 64);
  const std::string r = Record(0, 1, 30);
  {
    PartitionedSpill::Writer w(&spill);
    for (int i = 0; i < 5; ++i) w.Append(0, r.data(), r.size());
  }
  // One buffer and one extent list for every partition, as a worker keeps them.
  ByteBuffer bytes;
  std::vector<uint32_t> extents;
  spill.ReadPartition(0, &bytes, &extents);
  EXPECT_EQ(bytes.size(), 5 * r.size());
  EXPECT_FALSE(extents.empty());
  spill.ReadPartition(2, &bytes, &extents);  // never written
  EXPECT_TRUE(bytes.empty());
  EXPECT_TRUE(extents.empty());
  EXPECT_EQ(spill.PartitionBytes(2), 0u);
}

// A MemorySpillStore that counts its writes.
class CountingStore : public MemorySpillStore {
 public:
  uint64_t Append(const void* data, size_t n) override {
    ++writes;
    return MemorySpillStore::Append(data, n);
  }
  uint64_t AppendAll(std::span<const SpillPiece> pieces) override {
    ++writes;
    return MemorySpillStore::AppendAll(pieces);
  }
  void Read(uint64_t offset, void* out, size_t n) const override {
    ++reads;
    MemorySpillStore::Read(offset, out, n);
  }
  int writes = 0;
  mutable int reads = 0;
};

// Full buffers wait until they add up to kBatchBytes and go in one write: with
// hundreds of partitions of a few KB each, a write per buffer cost a system
// call and the file's lock per few KB.
TEST(partitioned_spill, full_buffers_are_appended_in_batches_not_one_write_each) {
  CountingStore store;
  constexpr uint32_t kPartitions = 50;
  constexpr size_t kBuffer = 4096;
  PartitionedSpill spill(&store, kPartitions, kBuffer);
  std::vector<std::vector<std::string>> expected(kPartitions);
  {
    PartitionedSpill::Writer w(&spill);
    std::mt19937 rng(3);
    for (int i = 0; i < 40'000; ++i) {
      const auto p = static_cast<uint32_t>(rng() % kPartitions);
      const std::string r = Record(p, i, rng() % 200);
      w.Append(p, r.data(), r.size());
      expected[p].push_back(r);
    }
  }
  size_t extents = 0;
  uint64_t total = 0;
  for (uint32_t p = 0; p < kPartitions; ++p) {
    ByteBuffer bytes;
    std::vector<uint32_t> sizes;
    spill.ReadPartition(p, &bytes, &sizes);
    EXPECT_EQ(Sorted(Parse(bytes.data(), bytes.size())), Sorted(expected[p])) << "partition " << p;
    for (uint32_t e : sizes) EXPECT_LE(e, kBuffer);
    extents += sizes.size();
    total += bytes.size();
  }
  // ~4.3 MB in ~1,100 extents of at most 4 KB: a write per MB (and one at the end), not per extent.
  ASSERT_GT(total, 4 * PartitionedSpill::kBatchBytes);
  EXPECT_GT(extents, 1000u);
  EXPECT_LE(store.writes, static_cast<int>(total / PartitionedSpill::kBatchBytes) + 1);
  EXPECT_EQ(store.size(), total);
}

// Rows arrive grouped by elder, so a partition's buffers often fill one after
// another and go out in one batch, end to end: ReadPartition reads such a run
// of extents at once (at 40 M rows, a read per extent was 190,000 reads of
// ~5 KB), and still reports every extent's size, which the codecs restart at.
TEST(partitioned_spill, extents_that_lie_end_to_end_in_the_store_are_read_at_once) {
  CountingStore store;
  constexpr size_t kBuffer = 1024;
  PartitionedSpill spill(&store, 3, kBuffer);
  std::vector<std::vector<std::string>> expected(3);
  PartitionedSpill::Writer w(&spill);
  auto write = [&](uint32_t p, int i) {
    const std::string r = Record(p, i, 20);
    w.Append(p, r.data(), r.size());
    expected[p].push_back(r);
  };
  for (int i = 0; i < 1000; ++i) write(0, i);  // partition 0 alone: its buffers follow each other
  w.Flush();
  for (int i = 0; i < 1000; ++i) write(1 + static_cast<uint32_t>(i % 2), i);  // 1 and 2 take turns
  w.Flush();
  for (uint32_t p = 0; p < 3; ++p) {
    ByteBuffer bytes;
    std::vector<uint32_t> sizes;
    store.reads = 0;
    spill.ReadPartition(p, &bytes, &sizes);
    EXPECT_EQ(Parse(bytes.data(), bytes.size()), expected[p]) << "partition " << p;
    uint64_t sum = 0;
    for (uint32_t e : sizes) sum += e;
    EXPECT_EQ(sum, bytes.size());
    if (p == 0) {
      EXPECT_GT(sizes.size(), 20u);
      EXPECT_EQ(store.reads, 1);
    } else {
      EXPECT_GT(sizes.size(), 5u);
      EXPECT_EQ(store.reads, static_cast<int>(sizes.size())) << "partition " << p << ": no two extents lie end to end";
    }
  }
}

TEST(partitioned_spill, writers_on_many_threads_give_each_partition_the_multiset_of_their_records) {
  MemorySpillStore store;
  constexpr uint32_t kPartitions = 5;
  constexpr int kThreads = 4, kEach = 2000;
  PartitionedSpill spill(&store, kPartitions, 128);
  std::vector<std::vector<std::vector<std::string>>> written(kThreads, std::vector<std::vector<std::string>>(kPartitions));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      PartitionedSpill::Writer w(&spill);
      std::mt19937 rng(static_cast<uint32_t>(t));
      for (int i = 0; i < kEach; ++i) {
        const auto p = static_cast<uint32_t>(rng() % kPartitions);
        const std::string r = Record(p, t * kEach + i, rng() % 60);
        w.Append(p, r.data(), r.size());
        written[t][p].push_back(r);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (uint32_t p = 0; p < kPartitions; ++p) {
    std::vector<std::string> expected;
    for (int t = 0; t < kThreads; ++t) expected.insert(expected.end(), written[t][p].begin(), written[t][p].end());
    ByteBuffer bytes;
    std::vector<uint32_t> extents;
    spill.ReadPartition(p, &bytes, &extents);
    std::vector<std::string> records;
    size_t at = 0;
    for (uint32_t e : extents) {
      for (auto& r : Parse(bytes.data() + at, e)) records.push_back(std::move(r));
      at += e;
    }
    EXPECT_EQ(Sorted(records), Sorted(expected)) << "partition " << p;
  }
}

// --- The event codec (ledger.h) ---

struct Event {
  EventHeader h{};
  std::string txn_id, ref;
};

// The fields a record round-trips. For kinds other than consumption the
// serving centre is -1 and the service 0, as the ledger writes them.
Event MakeEvent(TxnKind kind, int32_t card, uint16_t file, uint32_t line, int64_t at_seconds, int32_t nanos,
                int64_t amount_fen, std::string txn_id, std::string ref = {}, int32_t serving = 0,
                uint16_t service = 0) {
  Event e;
  e.h.at_seconds = at_seconds;
  e.h.amount_fen = amount_fen;
  e.h.card = card;
  e.h.line = line;
  e.h.nanos_kind = static_cast<uint32_t>(nanos) | static_cast<uint32_t>(kind) << 30;
  const bool consumption = kind == TxnKind::kConsumption;
  e.h.serving_center = consumption ? serving : -1;
  e.h.file = file;
  e.h.service = consumption ? service : 0;
  e.h.id_len = static_cast<uint16_t>(txn_id.size());
  e.h.ref_len = static_cast<uint16_t>(ref.size());
  e.txn_id = std::move(txn_id);
  e.ref = std::move(ref);
  return e;
}

auto Key(const Event& e) {
  return std::make_tuple(e.h.at_seconds, e.h.amount_fen, e.h.card, e.h.line, e.h.nanos_kind, e.h.serving_center,
                         e.h.file, e.h.service, e.h.id_len, e.h.ref_len, e.txn_id, e.ref);
}
bool operator==(const Event& a, const Event& b) { return Key(a) == Key(b); }
bool operator<(const Event& a, const Event& b) { return Key(a) < Key(b); }
std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{card " << e.h.card << ", file " << e.h.file << ", line " << e.h.line << ", at " << e.h.at_seconds
            << "." << e.h.nanos() << ", kind " << static_cast<int>(e.h.kind()) << ", amount " << e.h.amount_fen
            << ", serving " << e.h.serving_center << ", service " << e.h.service << ", txn_id "
            << e.txn_id.size() << " bytes '" << e.txn_id.substr(0, 20) << "', ref " << e.ref.size() << " bytes}";
}

// The fixed-layout records DecodeEvents gives, back as events.
std::vector<Event> Decoded(const ByteBuffer& out) {
  std::vector<Event> events;
  size_t at = 0;
  while (at < out.size()) {
    EXPECT_LE(at + sizeof(EventHeader), out.size());
    const EventView v = EventView::Decode(out.data() + at);
    EXPECT_EQ(v.h.id_len, v.txn_id.size());
    EXPECT_EQ(v.h.ref_len, v.ref.size());
    events.push_back(Event{v.h, std::string(v.txn_id), std::string(v.ref)});
    at += v.h.record_bytes();
  }
  EXPECT_EQ(at, out.size());
  return events;
}

// Encodes `events` as one stream the way the ledger does: `fresh` starts an
// extent wherever `extent_starts` says. Returns the bytes, with the extents
// and each record's size.
struct Encoded {
  ByteBuffer bytes;
  std::vector<uint32_t> extents;
  std::vector<size_t> record_sizes;
};
Encoded EncodeStream(const std::vector<Event>& events, const std::vector<bool>& extent_starts) {
  Encoded e;
  auto prev = std::make_unique<EventDelta>();
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& ev = events[i];
    const bool fresh = i == 0 || extent_starts[i];
    const size_t at = e.bytes.size();
    e.bytes.resize(at + MaxEncodedEventBytes(ev.txn_id.size(), ev.ref.size()));
    const size_t n = EncodeEvent(ev.h, ev.txn_id, ev.ref, fresh, prev.get(), e.bytes.data() + at);
    EXPECT_LE(n, MaxEncodedEventBytes(ev.txn_id.size(), ev.ref.size())) << ev;
    e.bytes.resize(at + n);
    e.record_sizes.push_back(n);
    if (fresh) e.extents.push_back(0);
    e.extents.back() += static_cast<uint32_t>(n);
  }
  return e;
}

std::vector<Event> DecodeAll(const ByteBuffer& bytes, const std::vector<uint32_t>& extents) {
  ByteBuffer out;
  DecodeEvents(bytes, extents, &out);
  return Decoded(out);
}

// The rows of a few cards, each card's rows together, as files list them.
std::vector<Event> CardHistories(int cards, int rows_per_card, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Event> events;
  uint32_t line = 1;
  int64_t at = 1'704'038'400;  // 2024-01-01T00:00:00+08:00
  for (int c = 0; c < cards; ++c) {
    const auto file = static_cast<uint16_t>(c % 3);
    for (int r = 0; r < rows_per_card; ++r) {
      const auto kind = static_cast<TxnKind>(rng() % 4);
      line += 1 + static_cast<uint32_t>(rng() % 3);
      at += static_cast<int64_t>(rng() % 86'400);
      const int32_t nanos = rng() % 3 == 0 ? static_cast<int32_t>(rng() % 1'000'000'000) : 0;
      const int64_t amount = 1 + static_cast<int64_t>(rng() % 50'000);
      std::string id = "T2024" + std::to_string(100'000 + c * 1000 + r);
      std::string ref = kind == TxnKind::kReversal || kind == TxnKind::kRefund ? "T2024" + std::to_string(100'000 + c * 1000) : "";
      events.push_back(MakeEvent(kind, 10 + c, file, line, at, nanos, amount, std::move(id), std::move(ref),
                                 static_cast<int32_t>(rng() % 3), static_cast<uint16_t>(rng() % 2)));
    }
  }
  return events;
}

TEST(event_codec, a_stream_of_card_rows_decodes_to_the_records_encoded) {
  const std::vector<Event> events = CardHistories(6, 30, 1);
  const Encoded e = EncodeStream(events, std::vector<bool>(events.size(), false));
  ASSERT_EQ(e.extents.size(), 1u);
  EXPECT_EQ(DecodeAll(e.bytes, e.extents), events);
}

TEST(event_codec, delta_encoding_restarts_at_every_extent_so_each_extent_decodes_alone) {
  const std::vector<Event> events = CardHistories(5, 20, 2);
  std::vector<bool> starts(events.size());
  for (size_t i = 0; i < starts.size(); ++i) starts[i] = i % 7 == 0 || i % 11 == 0;
  const Encoded e = EncodeStream(events, starts);
  ASSERT_GT(e.extents.size(), 10u);
  EXPECT_EQ(DecodeAll(e.bytes, e.extents), events);
  // Any one extent, alone, decodes to its own records: nothing carries over.
  size_t at = 0, first = 0;
  for (uint32_t extent : e.extents) {
    ByteBuffer alone;
    alone.resize(extent);
    std::memcpy(alone.data(), e.bytes.data() + at, extent);
    size_t records = 0;
    for (size_t bytes = 0; bytes < extent; ++records) bytes += e.record_sizes[first + records];
    const std::vector<Event> want(events.begin() + static_cast<ptrdiff_t>(first),
                                  events.begin() + static_cast<ptrdiff_t>(first + records));
    EXPECT_EQ(DecodeAll(alone, {extent}), want) << "extent at byte " << at;
    at += extent;
    first += records;
  }
  EXPECT_EQ(first, events.size());
}

TEST(event_codec, every_field_survives_at_its_extremes) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();
  constexpr uint32_t kMaxLine = std::numeric_limits<uint32_t>::max();
  constexpr int32_t kMaxNanos = (1 << 30) - 1;  // what the header's 30 bits hold; real nanos stop at 999,999,999
  constexpr uint16_t kMaxFile = std::numeric_limits<uint16_t>::max();
  const std::string long_id = Text(kMaxTxnIdBytes, 9), long_ref = Text(kMaxTxnIdBytes, 10);
  const std::string shares_300 = long_id.substr(0, 300) + "-other";  // shares more than 255 bytes
  const int64_t kYear1 = -62'135'596'800, kYear9999 = 253'402'300'799;
  using K = TxnKind;
  std::vector<Event> events = {
      // Fresh starts at the extremes: each is the first of its extent.
      MakeEvent(K::kDeposit, 0, 0, 0, kMin, 0, 1, ""),
      MakeEvent(K::kDeposit, 0, 0, 0, kMax, kMaxNanos, kMax, "x"),
      // Within one extent from here on.
      MakeEvent(K::kConsumption, std::numeric_limits<int32_t>::max(), kMaxFile, kMaxLine, kYear1, 999'999'999,
                kMaxInputAmountFen, long_id, "", std::numeric_limits<int32_t>::max(), 65'535),
      MakeEvent(K::kConsumption, std::numeric_limits<int32_t>::max(), kMaxFile, kMaxLine, kYear9999, 1,
                kMaxInputAmountFen, shares_300, "", 0, 0),
      MakeEvent(K::kRefund, 5, kMaxFile, 0, kMax / 2, 0, 1, long_id, long_ref),
      MakeEvent(K::kReversal, 5, kMaxFile, 255, kMin / 2, 0, std::numeric_limits<uint32_t>::max(), "", long_id),
      MakeEvent(K::kReversal, 5, kMaxFile, 511, kMax / 2, 0, int64_t{std::numeric_limits<uint32_t>::max()} + 1,
                "T", std::string("\0r\0", 3)),
      MakeEvent(K::kDeposit, 5, kMaxFile, 510, -1, 0, 0, std::string("\0\0", 2)),  // a line before the last one
      MakeEvent(K::kDeposit, 5, 0, 1, 0, 0, -1, "TT"),
      MakeEvent(K::kConsumption, 5, 0, 2, 0, 0, kMin, "TTT", "", -1, 7),
      MakeEvent(K::kConsumption, 5, 0, 2, 0, 0, kMax, "TTT", "", -1, 7),  // everything as the record before
      MakeEvent(K::kConsumption, 0, 0, 0, 0, 0, 0, "TTTT", "", 0, 0),
  };
  std::vector<bool> starts(events.size(), false);
  starts[1] = starts[2] = true;
  const Encoded e = EncodeStream(events, starts);
  ASSERT_EQ(e.extents.size(), 3u);
  const std::vector<Event> back = DecodeAll(e.bytes, e.extents);
  ASSERT_EQ(back.size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(back[i], events[i]) << "record " << i;
}

// Time deltas within 2^23 s (97 days) and amounts below 2^24 fen take three
// bytes, an id's differing tail below 128 bytes takes a one-byte length; one
// step past any of these limits takes the whole field, and still round-trips.
TEST(event_codec, short_fields_give_way_to_whole_ones_exactly_at_their_limits) {
  constexpr int64_t kT = 1'704'038'400, kDelta = int64_t{1} << 23, kAmount = int64_t{1} << 24;
  using K = TxnKind;
  const std::string id127 = "a" + Text(126, 21), id128 = "b" + Text(127, 22);  // nothing shared with the id before
  const int64_t t1 = kT + kDelta - 1, t3 = t1 - kDelta, t4 = t3 - kDelta - 1, t5 = t4 + kDelta;
  const std::vector<Event> events = {
      MakeEvent(K::kDeposit, 1, 0, 2, kT, 0, 100, "A"),
      MakeEvent(K::kDeposit, 1, 0, 3, t1, 0, kAmount - 1, "B"),  // 1: +2^23 - 1 and 2^24 - 1: both short
      MakeEvent(K::kDeposit, 1, 0, 4, t1, 0, kAmount, "C"),      // 2: the amount whole
      MakeEvent(K::kDeposit, 1, 0, 5, t3, 0, 100, "D"),          // 3: -2^23: short
      MakeEvent(K::kDeposit, 1, 0, 6, t4, 0, 100, "E"),          // 4: -2^23 - 1: whole
      MakeEvent(K::kDeposit, 1, 0, 7, t5, 0, 100, "F"),          // 5: +2^23: whole
      MakeEvent(K::kDeposit, 1, 0, 8, t5, 0, 100, id127),        // 6: a 127-byte tail
      MakeEvent(K::kDeposit, 1, 0, 9, t5, 0, 100, id128),        // 7: a 128-byte tail
  };
  const Encoded e = EncodeStream(events, std::vector<bool>(events.size(), false));
  EXPECT_EQ(DecodeAll(e.bytes, e.extents), events);
  const auto& size = e.record_sizes;
  EXPECT_EQ(size[2], size[1] + 5);  // an eight-byte amount for a three-byte one
  EXPECT_EQ(size[4], size[3] + 5);  // an eight-byte time for a three-byte one
  EXPECT_EQ(size[5], size[3] + 5);
  EXPECT_EQ(size[7], size[6] + 1 + 1);  // one byte more of id, one more of its length
}

// What the codec is for: a card's next consumption row, as the generator and
// real files list them, takes 11 bytes: flags 2, line 1, time 3, amount 2,
// service 1, the id's shared and tail lengths in one byte, and its last digit.
TEST(event_codec, a_cards_next_consumption_row_takes_eleven_bytes) {
  const std::vector<Event> events = {
      MakeEvent(TxnKind::kConsumption, 7, 3, 100, 1'704'038'400, 0, 2350, "X00000001", "", 27, 1),
      MakeEvent(TxnKind::kConsumption, 7, 3, 101, 1'704'038'400 + 3 * 86'400 + 61, 0, 830, "X00000002", "", 27, 2),
  };
  const Encoded e = EncodeStream(events, std::vector<bool>(events.size(), false));
  EXPECT_EQ(DecodeAll(e.bytes, e.extents), events);
  EXPECT_EQ(e.record_sizes[1], 11u);
}

// Amounts below 2^16 fen take two bytes, a changed service below 256 one, and
// an id whose shared length and tail are both below 16 one byte for the two
// lengths; one step past each limit costs exactly one byte, and round-trips.
TEST(event_codec, tiny_fields_give_way_to_short_ones_exactly_at_their_limits) {
  constexpr int64_t kT = 1'704'038'400, kAmount = int64_t{1} << 16;
  using K = TxnKind;
  const std::vector<Event> events = {
      MakeEvent(K::kConsumption, 1, 0, 2, kT, 0, 100, "A", "", 5, 1),
      MakeEvent(K::kConsumption, 1, 0, 3, kT, 0, kAmount - 1, "B", "", 5, 255),  // 1: all tiny
      MakeEvent(K::kConsumption, 1, 0, 4, kT, 0, kAmount, "C", "", 5, 254),      // 2: a three-byte amount
      MakeEvent(K::kConsumption, 1, 0, 5, kT, 0, 100, "D", "", 5, 256),          // 3: a two-byte service
      MakeEvent(K::kConsumption, 1, 0, 6, kT, 0, 100, "E", "", 5, 65'535),       // 4: the largest service
      MakeEvent(K::kConsumption, 1, 0, 7, kT, 0, 100, "F", "", 5, 0),            // 5: service 0 again tiny
      MakeEvent(K::kConsumption, 1, 0, 8, kT, 0, 100, Text(15, 31), "", 5, 1),   // 6: 15 shared with nothing: packed
      MakeEvent(K::kConsumption, 1, 0, 9, kT, 0, 100, Text(16, 32), "", 5, 2),   // 7: a 16-byte tail: not packed
      MakeEvent(K::kConsumption, 1, 0, 10, kT, 0, 100, Text(16, 32).substr(0, 15) + "x", "", 5, 3),  // 8: 15 shared
      MakeEvent(K::kConsumption, 1, 0, 11, kT, 0, 100, Text(16, 32).substr(0, 15) + "xy", "", 5, 4),  // 9: 16 shared, 1 new
      MakeEvent(K::kDeposit, 1, 0, 12, kT, 0, kAmount - 1, "G"),                 // 10: a deposit's tiny amount
      MakeEvent(K::kRefund, 1, 0, 13, kT, 0, 0, "H", "G"),                        // 11: zero is tiny too
  };
  const Encoded e = EncodeStream(events, std::vector<bool>(events.size(), false));
  EXPECT_EQ(DecodeAll(e.bytes, e.extents), events);
  const auto& size = e.record_sizes;
  EXPECT_EQ(size[2], size[1] + 1);  // a three-byte amount for a two-byte one
  EXPECT_EQ(size[3], size[1] + 1);  // a two-byte service for a one-byte one
  EXPECT_EQ(size[4], size[3]);
  EXPECT_EQ(size[5], size[1]);
  EXPECT_EQ(size[7], size[6] + 1 + 1);  // one more byte of tail, one more for the lengths
  EXPECT_EQ(size[9], size[8] + 1);  // the same one-byte tail, its lengths in two bytes
}

// Random streams that mix every form of every field (same or new card, file
// and service; short and whole lines and times; tiny, short and whole
// amounts; packed and unpacked id lengths; nanos and refs or none), restarting
// at random extents: all of them decode to what was encoded.
TEST(event_codec, random_streams_of_every_form_round_trip) {
  std::mt19937_64 rng(27);
  auto pick = [&](std::initializer_list<int64_t> values) {
    return *(values.begin() + static_cast<ptrdiff_t>(rng() % values.size()));
  };
  for (int stream = 0; stream < 20; ++stream) {
    std::vector<Event> events;
    std::vector<bool> starts;
    int32_t card = 1;
    uint16_t file = 0;
    uint32_t line = 1;
    int64_t at = 1'704'038'400;
    std::string id = "X0000";
    for (int i = 0; i < 500; ++i) {
      const auto kind = static_cast<TxnKind>(rng() % 4);
      if (rng() % 4 == 0) card = static_cast<int32_t>(rng() % 1'000'000);
      if (rng() % 8 == 0) file = static_cast<uint16_t>(rng() % 70'000);
      line = rng() % 6 == 0 ? static_cast<uint32_t>(rng()) : line + static_cast<uint32_t>(rng() % 300);
      at = rng() % 6 == 0 ? static_cast<int64_t>(rng() % 600'000'000'000) - 300'000'000'000
                          : at + static_cast<int64_t>(rng() % (int64_t{1} << 25)) - (int64_t{1} << 24);
      const int32_t nanos = rng() % 5 == 0 ? static_cast<int32_t>(rng() % 1'000'000'000) : 0;
      const int64_t amount =
          pick({0, 1, 2350, 65'535, 65'536, 16'777'215, 16'777'216, kMaxInputAmountFen, -1});
      // Ids that share 0 to all of the last one's bytes, with tails of 0 to 40 bytes.
      const size_t keep = static_cast<size_t>(rng() % (id.size() + 1));
      id = id.substr(0, keep) + Text(static_cast<size_t>(rng() % 41), static_cast<uint32_t>(rng()));
      const std::string ref = rng() % 5 == 0 ? Text(static_cast<size_t>(rng() % 20), static_cast<uint32_t>(rng())) : "";
      const auto serving = static_cast<int32_t>(pick({-1, 0, 7, 7, 7, 1'000'000}));
      const auto service = static_cast<uint16_t>(pick({0, 1, 5, 5, 255, 256, 65'535}));
      events.push_back(MakeEvent(kind, card, file, line, at, nanos, amount, id, ref, serving, service));
      starts.push_back(rng() % 40 == 0);
    }
    const Encoded e = EncodeStream(events, starts);
    const std::vector<Event> back = DecodeAll(e.bytes, e.extents);
    ASSERT_EQ(back.size(), events.size()) << "stream " << stream;
    for (size_t i = 0; i < events.size(); ++i) ASSERT_EQ(back[i], events[i]) << "stream " << stream << ", record " << i;
  }
}

TEST(event_codec, instants_further_apart_than_int64_holds_round_trip_within_one_extent) {
  // Their difference overflows int64_t: the codec stores such instants whole.
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();
  const std::vector<Event> events = {
      MakeEvent(TxnKind::kDeposit, 1, 0, 2, kMin, 0, 100, "A"),
      MakeEvent(TxnKind::kDeposit, 1, 0, 3, kMax, 0, 100, "B"),
      MakeEvent(TxnKind::kDeposit, 1, 0, 4, kMin, 0, 100, "C"),
      MakeEvent(TxnKind::kDeposit, 1, 0, 5, 0, 0, 100, "D"),
      MakeEvent(TxnKind::kDeposit, 1, 0, 6, (int64_t{1} << 62) - 1, 0, 100, "E"),
      MakeEvent(TxnKind::kDeposit, 1, 0, 7, (int64_t{1} << 62) - 2, 0, 100, "F"),
  };
  const Encoded e = EncodeStream(events, std::vector<bool>(events.size(), false));
  ASSERT_EQ(e.extents.size(), 1u);
  EXPECT_EQ(DecodeAll(e.bytes, e.extents), events);
}

TEST(event_codec, extents_claiming_more_bytes_than_were_read_are_refused) {
  const std::vector<Event> events = {MakeEvent(TxnKind::kDeposit, 1, 0, 2, 1'700'000'000, 0, 100, "A")};
  const Encoded e = EncodeStream(events, std::vector<bool>(events.size(), false));
  ByteBuffer out;
  EXPECT_THROW(DecodeEvents(e.bytes, {e.extents[0] + 1}, &out), SpillError);
  EXPECT_THROW(DecodeEvents(e.bytes, {e.extents[0], 1}, &out), SpillError);
}

TEST(event_codec, ids_of_every_length_and_shared_prefix_round_trip) {
  // Consecutive ids share prefixes of every length, up to and past 255 bytes.
  std::vector<Event> events;
  const std::string base = Text(600, 11);
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{7}, size_t{8}, size_t{15},
                   size_t{16}, size_t{17}, size_t{254}, size_t{255}, size_t{256}, size_t{257}, size_t{600}}) {
    for (size_t shared : {size_t{0}, n / 2, n}) {
      std::string a = base.substr(0, n), b = base.substr(0, shared) + Text(n - shared, static_cast<uint32_t>(n));
      for (std::string* id : {&a, &b}) {
        const auto line = static_cast<uint32_t>(events.size() + 2);
        events.push_back(MakeEvent(TxnKind::kDeposit, 1, 0, line, 1'700'000'000, 0, 100, *id));
      }
    }
  }
  const Encoded e = EncodeStream(events, std::vector<bool>(events.size(), false));
  EXPECT_EQ(DecodeAll(e.bytes, e.extents), events);
}

TEST(event_codec, partitions_of_a_spill_decode_to_the_events_written_to_them) {
  // The ledger's way: per-partition delta state, `fresh` from AtExtentStart,
  // buffers small enough for many extents per partition.
  constexpr uint32_t kPartitions = 3;
  const std::vector<Event> events = CardHistories(12, 25, 3);
  MemorySpillStore store;
  PartitionedSpill spill(&store, kPartitions, 256);
  std::vector<EventDelta> deltas(kPartitions);
  std::vector<std::vector<Event>> expected(kPartitions);
  {
    PartitionedSpill::Writer w(&spill);
    for (const Event& ev : events) {
      const auto p = static_cast<uint32_t>(ev.h.card) % kPartitions;
      char* out = w.Reserve(p, MaxEncodedEventBytes(ev.txn_id.size(), ev.ref.size()));
      w.Commit(p, EncodeEvent(ev.h, ev.txn_id, ev.ref, w.AtExtentStart(p), &deltas[p], out));
      expected[p].push_back(ev);
    }
  }
  for (uint32_t p = 0; p < kPartitions; ++p) {
    ByteBuffer bytes;
    std::vector<uint32_t> extents;
    spill.ReadPartition(p, &bytes, &extents);
    EXPECT_GT(extents.size(), 3u);
    std::vector<Event> back = DecodeAll(bytes, extents);
    std::sort(back.begin(), back.end());
    std::sort(expected[p].begin(), expected[p].end());
    EXPECT_EQ(back, expected[p]) << "partition " << p;
  }
}

TEST(event_codec, an_extent_cut_inside_a_record_is_damaged) {
  const std::vector<Event> events = CardHistories(2, 6, 4);
  const Encoded e = EncodeStream(events, std::vector<bool>(events.size(), false));
  std::vector<size_t> ends;  // record boundaries
  size_t end = 0;
  for (size_t n : e.record_sizes) ends.push_back(end += n);
  for (uint32_t cut = 1; cut < e.extents[0]; ++cut) {
    ByteBuffer out;
    const size_t whole = static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), size_t{cut}) - ends.begin());
    if (std::binary_search(ends.begin(), ends.end(), size_t{cut})) {
      // Cut between records: the records before the cut.
      const std::vector<Event> want(events.begin(), events.begin() + static_cast<ptrdiff_t>(whole));
      EXPECT_EQ(DecodeAll(e.bytes, {cut}), want) << "cut at " << cut;
    } else {
      EXPECT_THROW(DecodeEvents(e.bytes, {cut}, &out), SpillError) << "cut at " << cut;
    }
  }
}

TEST(event_codec, decoding_into_a_reused_buffer_gives_only_the_extents_decoded) {
  const std::vector<Event> first = CardHistories(2, 5, 5), second = CardHistories(1, 3, 6);
  const Encoded a = EncodeStream(first, std::vector<bool>(first.size(), false));
  const Encoded b = EncodeStream(second, std::vector<bool>(second.size(), false));
  ByteBuffer out;
  DecodeEvents(a.bytes, a.extents, &out);
  EXPECT_EQ(Decoded(out), first);
  DecodeEvents(b.bytes, b.extents, &out);
  EXPECT_EQ(Decoded(out), second);
  DecodeEvents(ByteBuffer(), {}, &out);  // an empty partition
  EXPECT_TRUE(out.empty());
}

// --- The dedup codec (ledger.h) ---

auto Key(const DedupRecord& d) { return std::make_tuple(d.hash, d.locator, d.line, d.file, d.claimable, d.deposits); }

std::vector<DedupRecord> DecodedDedup(const ByteBuffer& bytes, const std::vector<uint32_t>& extents) {
  ByteBuffer out;
  DecodeDedup(bytes, extents, &out);
  EXPECT_EQ(out.size() % sizeof(DedupRecord), 0u);
  std::vector<DedupRecord> records(out.size() / sizeof(DedupRecord));
  if (!records.empty()) std::memcpy(records.data(), out.data(), out.size());
  return records;
}

// Encodes `records` as one extent: the bytes, and where each record ends.
struct EncodedDedup {
  ByteBuffer bytes;
  std::vector<size_t> ends;
};
EncodedDedup EncodeDedupExtent(const std::vector<DedupRecord>& records) {
  EncodedDedup e;
  DedupDelta prev;
  for (size_t i = 0; i < records.size(); ++i) {
    const size_t at = e.bytes.size();
    e.bytes.resize(at + kMaxEncodedDedupBytes);
    e.bytes.resize(at + EncodeDedup(records[i], i == 0, &prev, e.bytes.data() + at));
    e.ends.push_back(e.bytes.size());
  }
  return e;
}

TEST(dedup_codec, records_round_trip_at_their_extremes_across_extents) {
  constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();
  constexpr uint64_t kMaxHash = kDedupHashMask;  // a record's hash is DedupHash(...): 48 bits
  constexpr uint32_t kMaxLine = std::numeric_limits<uint32_t>::max();
  const std::vector<DedupRecord> records = {
      {0, 0, 0, 0, 0, 0},
      {kMaxHash, kMax64, kMaxLine, 65'535, 1, 1},
      {1, 0, 0, 65'535, 1, 0},  // same file, locator and line fall all the way back
      {kMaxHash - 1, kMax64, kMaxLine, 65'535, 0, 1},
      {12345, 1ull << 40, 2, 7, 1, 1},
      {12346, (1ull << 40) + 130, 3, 7, 1, 1},
      {12347, (1ull << 40) - 1'000'000, 1, 7, 0, 0},
      {12348, 0, 0, 0, 1, 1},
  };
  for (size_t restart_every : {size_t{1}, size_t{2}, size_t{3}, records.size()}) {
    ByteBuffer bytes;
    std::vector<uint32_t> extents;
    DedupDelta prev;
    for (size_t i = 0; i < records.size(); ++i) {
      const bool fresh = i % restart_every == 0;
      const size_t at = bytes.size();
      bytes.resize(at + kMaxEncodedDedupBytes);
      const size_t n = EncodeDedup(records[i], fresh, &prev, bytes.data() + at);
      EXPECT_LE(n, kMaxEncodedDedupBytes);
      bytes.resize(at + n);
      if (fresh) extents.push_back(0);
      extents.back() += static_cast<uint32_t>(n);
    }
    const std::vector<DedupRecord> back = DecodedDedup(bytes, extents);
    ASSERT_EQ(back.size(), records.size()) << "restarting every " << restart_every;
    for (size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(Key(back[i]), Key(records[i])) << "record " << i << ", restarting every " << restart_every;
    }
  }
}

// The codec keeps the 48 bits of a hash that the duplicate check compares
// (DedupHash): bits above them do not come back, and cost no bytes.
TEST(dedup_codec, a_record_keeps_the_low_48_bits_of_its_hash) {
  const std::vector<DedupRecord> records = {
      {0xFFFF'0000'0000'0001ull, 10, 2, 0, 1, 1},
      {0x1234'0000'0000'0001ull, 20, 3, 0, 1, 1},
      {0x0000'8000'0000'0000ull, 30, 4, 0, 1, 1},
  };
  const EncodedDedup e = EncodeDedupExtent(records);
  // Six bytes of hash, the line with the flags, the file and the locator.
  EXPECT_EQ(e.ends[0], 6u + 1 + 1 + 1);
  const std::vector<DedupRecord> back = DecodedDedup(e.bytes, {static_cast<uint32_t>(e.bytes.size())});
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].hash, 1u);
  EXPECT_EQ(back[1].hash, 1u);
  EXPECT_EQ(back[2].hash, DedupHash(records[2].hash));
  EXPECT_EQ(back[2].hash, 0x8000'0000'0000ull);
}

// What the codec is for: the next record of a hash partition is a row some
// 70 rows on in the same file (one of ~70 partitions per family at 4 M rows),
// and takes ten bytes: the hash 6, the line's delta with the three flags 2,
// the locator's delta 2.
TEST(dedup_codec, the_next_row_of_a_partition_takes_ten_bytes_its_flags_none) {
  const std::vector<DedupRecord> records = {
      {0x1111'2222'3333ull, 400'000, 5'000, 3, 1, 0},
      {0x4444'5555'6666ull, 405'100, 5'068, 3, 0, 1},  // same file: 68 lines and 5,100 bytes on
      {0x7777'8888'9999ull, 410'200, 5'136, 3, 1, 1},
  };
  const EncodedDedup e = EncodeDedupExtent(records);
  EXPECT_EQ(e.ends[1] - e.ends[0], 10u);
  EXPECT_EQ(e.ends[2] - e.ends[1], 10u);
  const std::vector<DedupRecord> back = DecodedDedup(e.bytes, {static_cast<uint32_t>(e.bytes.size())});
  ASSERT_EQ(back.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(Key(back[i]), Key(records[i])) << "record " << i;
}

// Random records, lines and locators moving both ways within a file and files
// changing at random, every flag set or not, extents restarting at random: all
// of them decode to what was encoded.
TEST(dedup_codec, random_records_round_trip) {
  std::mt19937_64 rng(28);
  ByteBuffer bytes;
  std::vector<uint32_t> extents;
  std::vector<DedupRecord> records;
  DedupDelta prev;
  uint64_t locator = 1000;
  uint32_t line = 10;
  uint16_t file = 0;
  for (int i = 0; i < 5000; ++i) {
    if (rng() % 10 == 0) file = static_cast<uint16_t>(rng() % 65'536);
    const int64_t step = static_cast<int64_t>(rng() % 2000) - (rng() % 8 == 0 ? 3000 : 0);
    line = rng() % 50 == 0 ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(int64_t{line} + step);
    locator = rng() % 50 == 0 ? rng() : locator + static_cast<uint64_t>(step * 75);
    const DedupRecord d{DedupHash(rng()), locator, line, file, static_cast<uint8_t>(rng() % 2), static_cast<uint8_t>(rng() % 2)};
    const bool fresh = i == 0 || rng() % 30 == 0;
    const size_t at = bytes.size();
    bytes.resize(at + kMaxEncodedDedupBytes);
    const size_t n = EncodeDedup(d, fresh, &prev, bytes.data() + at);
    ASSERT_LE(n, kMaxEncodedDedupBytes);
    bytes.resize(at + n);
    if (fresh) extents.push_back(0);
    extents.back() += static_cast<uint32_t>(n);
    records.push_back(d);
  }
  const std::vector<DedupRecord> back = DecodedDedup(bytes, extents);
  ASSERT_EQ(back.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) ASSERT_EQ(Key(back[i]), Key(records[i])) << "record " << i;
}

TEST(dedup_codec, an_extent_cut_inside_a_record_is_damaged_wherever_the_cut_falls) {
  // Records of every width (long varints too), many more bytes than one
  // record, so cuts fall both where the decoder reads a record's fields with
  // one bounds check and where it checks each one.
  std::vector<DedupRecord> records;
  for (uint32_t i = 0; i < 24; ++i) {
    records.push_back({DedupHash(i * 0x9E3779B97F4A7C15ull), i % 3 ? i * 1000ull : ~0ull - i, i % 4 ? i : 0xFFFFFFF0u + (i % 7),
                       static_cast<uint16_t>(i % 5 ? 3 : 65'535), static_cast<uint8_t>(i & 1), static_cast<uint8_t>(i % 3 == 0)});
  }
  const EncodedDedup e = EncodeDedupExtent(records);
  const ByteBuffer& bytes = e.bytes;
  const std::vector<size_t>& ends = e.ends;
  ASSERT_EQ(DecodedDedup(bytes, {static_cast<uint32_t>(bytes.size())}).size(), records.size());
  for (uint32_t cut = 1; cut < bytes.size(); ++cut) {
    const auto whole = static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), size_t{cut}) - ends.begin());
    if (std::binary_search(ends.begin(), ends.end(), size_t{cut})) {
      const std::vector<DedupRecord> back = DecodedDedup(bytes, {cut});
      ASSERT_EQ(back.size(), whole) << "cut at " << cut;
      for (size_t i = 0; i < whole; ++i) EXPECT_EQ(Key(back[i]), Key(records[i])) << "cut at " << cut;
    } else {
      ByteBuffer out;
      EXPECT_THROW(DecodeDedup(bytes, {cut}, &out), SpillError) << "cut at " << cut;
    }
  }
}

TEST(dedup_codec, partitions_of_a_spill_decode_to_the_records_written_to_them) {
  constexpr uint32_t kPerFamily = 4;
  MemorySpillStore store;
  PartitionedSpill spill(&store, 2 * kPerFamily, 128);
  std::vector<DedupDelta> deltas(2 * kPerFamily);
  std::vector<std::vector<DedupRecord>> expected(2 * kPerFamily);
  std::mt19937_64 rng(5);
  {
    PartitionedSpill::Writer w(&spill);
    uint64_t locator = 0;
    for (uint32_t i = 0; i < 3000; ++i) {
      const bool deposits = i % 5 != 0;
      // As the ledger does: the partition by the whole hash, the record with its low 48 bits.
      const uint64_t hash = rng();
      const DedupRecord d{DedupHash(hash), locator += rng() % 200, 2 + i, static_cast<uint16_t>(i / 1000),
                          static_cast<uint8_t>(rng() % 2), static_cast<uint8_t>(deposits ? 1 : 0)};
      const uint32_t p = DedupPartition(hash, deposits, kPerFamily);
      char* out = w.Reserve(p, kMaxEncodedDedupBytes);
      w.Commit(p, EncodeDedup(d, w.AtExtentStart(p), &deltas[p], out));
      expected[p].push_back(d);
    }
  }
  for (uint32_t p = 0; p < 2 * kPerFamily; ++p) {
    ByteBuffer bytes;
    std::vector<uint32_t> extents;
    spill.ReadPartition(p, &bytes, &extents);
    std::vector<DedupRecord> back = DecodedDedup(bytes, extents);
    auto less = [](const DedupRecord& a, const DedupRecord& b) { return Key(a) < Key(b); };
    std::sort(back.begin(), back.end(), less);
    std::sort(expected[p].begin(), expected[p].end(), less);
    ASSERT_EQ(back.size(), expected[p].size()) << "partition " << p;
    for (size_t i = 0; i < back.size(); ++i) ASSERT_EQ(Key(back[i]), Key(expected[p][i])) << "partition " << p;
  }
}

TEST(dedup_partition, deposit_and_consumption_ids_get_partitions_of_their_own_family) {
  constexpr uint32_t kPerFamily = 7;
  std::mt19937_64 rng(6);
  std::map<uint32_t, int> used;
  for (int i = 0; i < 10'000; ++i) {
    const uint64_t hash = rng();
    const uint32_t d = DedupPartition(hash, true, kPerFamily), c = DedupPartition(hash, false, kPerFamily);
    ASSERT_LT(d, kPerFamily);
    ASSERT_GE(c, kPerFamily);
    ASSERT_LT(c, 2 * kPerFamily);
    ++used[d];
    ++used[c];
  }
  EXPECT_EQ(used.size(), 2 * kPerFamily);  // every partition of both families is used
  for (const auto& [partition, ids] : used) EXPECT_GT(ids, 10'000 / kPerFamily / 2) << "partition " << partition;
}

}  // namespace
}  // namespace carecard
