// FileSpillStore keeps a run's spilled records in unnamed temporary files
// ("lanes", one per concurrent writer): it reads back exactly what
// MemorySpillStore does for the same writes, and leaves no name in its folder.
#include "adapters/spill_file.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/spill.h"

namespace carecard {
namespace {

// A fresh folder under /tmp, removed with what is left in it.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/carecard_spill_file_XXXXXX";
    EXPECT_NE(mkdtemp(name), nullptr);
    path_ = name;
  }
  ~TempDir() {
    for (const auto& n : Names()) ::unlink((path_ + "/" + n).c_str());
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // Every name in the folder but . and ..
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(path_.c_str())) {
      while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      ::closedir(d);
    }
    return names;
  }

 private:
  std::string path_;
};

std::unique_ptr<FileSpillStore> MakeStore(const TempDir& dir) {
  std::string error;
  auto store = FileSpillStore::Create(dir.path(), &error);
  EXPECT_NE(store, nullptr) << error;
  return store;
}

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

TEST(file_spill_store, reads_back_what_a_memory_store_does_for_the_same_writes) {
  TempDir dir;
  auto file = MakeStore(dir);
  ASSERT_NE(file, nullptr);
  MemorySpillStore memory;
  // Small pieces, an empty one, and pieces larger than the memory store's 1 MiB blocks.
  std::vector<std::string> pieces = {"abc", "", Text(1, 1), Text(1'500'000, 2), Text(4095, 3), Text(2'100'000, 4)};
  for (int i = 0; i < 200; ++i) pieces.push_back(Text(static_cast<size_t>(i * 31 % 700), static_cast<uint32_t>(10 + i)));
  std::vector<uint64_t> offsets;
  for (const auto& p : pieces) {
    const uint64_t at = file->Append(p.data(), p.size());
    // One writer keeps to one lane: its appends lie end to end there, as in the memory store.
    EXPECT_EQ(at - (offsets.empty() ? at : offsets[0]), memory.Append(p.data(), p.size()));
    offsets.push_back(at);
  }
  ASSERT_EQ(file->size(), memory.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    ASSERT_EQ(ReadBack(*file, offsets[i], pieces[i].size()), pieces[i]) << "piece " << i;
  }
  // Any range across one writer's pieces reads the same from both.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    const uint64_t at = rng() % memory.size();
    const size_t n = static_cast<size_t>(rng() % std::min<uint64_t>(memory.size() - at, 3'000'000));
    ASSERT_EQ(ReadBack(*file, offsets[0] + at, n), ReadBack(memory, at, n)) << "at " << at << ", " << n << " bytes";
  }
}

// AppendAll lays its pieces end to end as one write: more pieces than one
// pwritev takes (IOV_MAX, 1024 on Linux), empty ones, large ones.
TEST(file_spill_store, append_all_lays_the_pieces_end_to_end_like_a_memory_store) {
  TempDir dir;
  auto file = MakeStore(dir);
  ASSERT_NE(file, nullptr);
  MemorySpillStore memory;
  const std::string before = Text(10, 99);
  const uint64_t first = file->Append(before.data(), before.size());
  EXPECT_EQ(memory.Append(before.data(), before.size()), 0u);
  std::vector<std::string> texts;
  for (int i = 0; i < 2500; ++i) texts.push_back(Text(static_cast<size_t>(i % 7 == 0 ? 0 : i * 37 % 500), static_cast<uint32_t>(i)));
  texts.push_back(Text(3'000'000, 5));
  texts.push_back("");
  std::vector<SpillPiece> pieces;
  std::string joined;
  for (const auto& t : texts) {
    pieces.push_back(SpillPiece{t.data(), t.size()});
    joined += t;
  }
  const uint64_t at = file->AppendAll(pieces);
  EXPECT_EQ(at, first + before.size());
  EXPECT_EQ(memory.AppendAll(pieces), before.size());
  EXPECT_EQ(file->size(), before.size() + joined.size());
  EXPECT_EQ(ReadBack(*file, at, joined.size()), joined);
  EXPECT_EQ(ReadBack(memory, before.size(), joined.size()), joined);
  // Nothing to write: the offset where the writer's next bytes would go.
  EXPECT_EQ(file->AppendAll({}), at + joined.size());
  EXPECT_EQ(memory.AppendAll({}), memory.size());
}

// Two threads that append at once write to two files, so that neither waits
// for the file system's lock on the other's file; each keeps to its own lane,
// and everything reads back at the offset it was given.
TEST(file_spill_store, concurrent_writers_append_to_lanes_of_their_own) {
  TempDir dir;
  auto store = MakeStore(dir);
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 2, kEach = 200;
  std::vector<std::vector<std::pair<uint64_t, std::string>>> written(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string a = Text(1 + static_cast<size_t>(i * 97 % 20'000), static_cast<uint32_t>(t * kEach + i));
        std::string b = Text(static_cast<size_t>(i % 50), static_cast<uint32_t>(100'000 + t * kEach + i));
        const SpillPiece pieces[] = {{a.data(), a.size()}, {b.data(), b.size()}};
        written[t].emplace_back(store->AppendAll(pieces), a + b);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint64_t> lanes;
  uint64_t total = 0;
  for (const auto& w : written) {
    const uint64_t lane = w.front().first >> FileSpillStore::kOffsetBits;
    EXPECT_LT(lane, static_cast<uint64_t>(FileSpillStore::kLanes));
    lanes.push_back(lane);
    uint64_t next = w.front().first;
    for (const auto& [offset, s] : w) {
      EXPECT_EQ(offset >> FileSpillStore::kOffsetBits, lane) << "a writer changed lanes";
      EXPECT_EQ(offset, next) << "a writer's appends lie end to end in its lane";
      ASSERT_EQ(ReadBack(*store, offset, s.size()), s);
      next = offset + s.size();
      total += s.size();
    }
  }
  EXPECT_NE(lanes[0], lanes[1]);
  EXPECT_EQ(store->size(), total);
}

TEST(file_spill_store, an_offset_in_no_lane_is_refused) {
  TempDir dir;
  auto store = MakeStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string bytes = Text(100, 6);
  const uint64_t at = store->Append(bytes.data(), bytes.size());
  char out[100];
  EXPECT_THROW(store->Read(uint64_t{FileSpillStore::kLanes} << FileSpillStore::kOffsetBits | at, out, sizeof out),
               SpillError);
  EXPECT_THROW(store->Read(at + 1, out, sizeof out), SpillError);  // past the end of its lane
}

TEST(file_spill_store, partitions_read_back_the_same_bytes_as_from_a_memory_store) {
  TempDir dir;
  auto file = MakeStore(dir);
  ASSERT_NE(file, nullptr);
  MemorySpillStore memory;
  constexpr uint32_t kPartitions = 4;
  PartitionedSpill on_file(file.get(), kPartitions, 100), in_memory(&memory, kPartitions, 100);
  {
    PartitionedSpill::Writer fw(&on_file), mw(&in_memory);
    std::mt19937 rng(1);
    for (int i = 0; i < 5000; ++i) {
      const auto p = static_cast<uint32_t>(rng() % kPartitions);
      const std::string r = Text(1 + rng() % 100, static_cast<uint32_t>(i));
      fw.Append(p, r.data(), r.size());
      mw.Append(p, r.data(), r.size());
    }
  }
  for (uint32_t p = 0; p < kPartitions; ++p) {
    ByteBuffer from_file, from_memory;
    std::vector<uint32_t> file_extents, memory_extents;
    on_file.ReadPartition(p, &from_file, &file_extents);
    in_memory.ReadPartition(p, &from_memory, &memory_extents);
    // One writer each, written alike: the same extents in the same order.
    EXPECT_EQ(file_extents, memory_extents) << "partition " << p;
    ASSERT_EQ(from_file.size(), from_memory.size()) << "partition " << p;
    EXPECT_EQ(std::string(from_file.data(), from_file.size()), std::string(from_memory.data(), from_memory.size()))
        << "partition " << p;
  }
  EXPECT_EQ(on_file.TotalBytes(), in_memory.TotalBytes());
}

TEST(file_spill_store, appends_from_many_threads_each_read_back_at_their_offset) {
  TempDir dir;
  auto store = MakeStore(dir);
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 4, kEach = 300;
  std::vector<std::vector<std::pair<uint64_t, std::string>>> written(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string s = Text(1 + static_cast<size_t>(i * 53 % 5000), static_cast<uint32_t>(t * kEach + i));
        written[t].emplace_back(store->Append(s.data(), s.size()), std::move(s));
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t total = 0;
  for (const auto& w : written) {
    for (const auto& [offset, s] : w) {
      ASSERT_EQ(ReadBack(*store, offset, s.size()), s);
      total += s.size();
    }
  }
  EXPECT_EQ(store->size(), total);
}

TEST(file_spill_store, discard_truncates_every_lane_and_gives_its_disk_back) {
  TempDir dir;
  auto store = MakeStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string bytes = Text(1 << 20, 11);
  std::vector<std::thread> threads;  // writers on several lanes
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 4; ++i) store->Append(bytes.data(), bytes.size());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(store->size(), 16u << 20);
  EXPECT_GE(store->AllocatedBytes(), 16u << 20);
  store->Discard();
  EXPECT_EQ(store->size(), 0u);
  EXPECT_EQ(store->AllocatedBytes(), 0u);
  const uint64_t at = store->Append("again", 5);
  EXPECT_EQ(at & ((uint64_t{1} << FileSpillStore::kOffsetBits) - 1), 0u) << "a lane starts over at its first byte";
  EXPECT_EQ(ReadBack(*store, at, 5), "again");
}

TEST(file_spill_store, forget_gives_back_the_whole_pages_of_a_range_and_keeps_every_other_byte) {
  TempDir dir;
  auto store = MakeStore(dir);
  ASSERT_NE(store, nullptr);
  // One lane: [100 bytes kept][8 MiB forgotten][100 bytes kept], not aligned to pages.
  const std::string head = Text(100, 1), body = Text(8 << 20, 2), tail = Text(100, 3);
  const SpillPiece pieces[] = {{head.data(), head.size()}, {body.data(), body.size()}, {tail.data(), tail.size()}};
  const uint64_t at = store->AppendAll(pieces);
  const uint64_t allocated = store->AllocatedBytes();
  ASSERT_GE(allocated, 8u << 20);

  store->Forget(at + head.size(), body.size());

  EXPECT_LE(store->AllocatedBytes(), allocated - (8u << 20) + 2 * 4096) << "every whole page of the range is given back";
  EXPECT_EQ(store->size(), head.size() + body.size() + tail.size()) << "the lane keeps its size: later offsets stay valid";
  EXPECT_EQ(ReadBack(*store, at, head.size()), head) << "the page the range starts in is kept";
  EXPECT_EQ(ReadBack(*store, at + head.size() + body.size(), tail.size()), tail) << "and the page it ends in";
  const uint64_t next = store->Append("next", 4);
  EXPECT_EQ(ReadBack(*store, next, 4), "next");
  EXPECT_EQ(next, at + head.size() + body.size() + tail.size()) << "appends go on after the hole";

  store->Forget(next, 4);  // less than a page: nothing to give back
  EXPECT_EQ(ReadBack(*store, next, 4), "next");
}

TEST(file_spill_store, a_new_store_is_another_unnamed_file_in_the_same_folder) {
  TempDir dir;
  auto store = MakeStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string a = Text(70'000, 12), b = Text(90'000, 13);
  const uint64_t at_a = store->Append(a.data(), a.size());
  std::unique_ptr<SpillStore> other = store->NewStore();
  ASSERT_NE(dynamic_cast<FileSpillStore*>(other.get()), nullptr);
  const uint64_t at_b = other->Append(b.data(), b.size());
  EXPECT_EQ(ReadBack(*other, at_b, b.size()), b);
  EXPECT_EQ(dir.Names(), std::vector<std::string>{});
  other->Discard();
  EXPECT_EQ(ReadBack(*store, at_a, a.size()), a) << "discarding one store leaves the other alone";
}

TEST(file_spill_store, the_temporary_file_has_no_name_in_its_folder) {
  TempDir dir;
  {
    auto store = MakeStore(dir);
    ASSERT_NE(store, nullptr);
    const std::string bytes = Text(100'000, 5);
    store->Append(bytes.data(), bytes.size());
    EXPECT_EQ(dir.Names(), std::vector<std::string>{}) << "while the store is open";
  }
  EXPECT_EQ(dir.Names(), std::vector<std::string>{}) << "after it is closed";
}

TEST(file_spill_store, a_folder_that_does_not_exist_is_named_in_the_error) {
  TempDir dir;
  const std::string missing = dir.path() + "/no-such-folder";
  std::string error;
  EXPECT_EQ(FileSpillStore::Create(missing, &error), nullptr);
  EXPECT_NE(error.find("'" + missing + "'"), std::string::npos) << error;
  EXPECT_EQ(dir.Names(), std::vector<std::string>{});  // nothing made beside it either
}

TEST(file_spill_store, a_path_that_is_a_file_is_not_a_folder_for_the_spill) {
  TempDir dir;
  const std::string file = dir.path() + "/plain";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  std::string error;
  EXPECT_EQ(FileSpillStore::Create(file, &error), nullptr);
  EXPECT_NE(error.find(file), std::string::npos) << error;
}

}  // namespace
}  // namespace carecard
