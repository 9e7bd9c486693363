// IdIndex maps string ids to dense indices 0..size()-1 in first-insert order,
// and SameId is the short-id equality the hot paths use instead of ==.
#include "engine/id_index.h"
#include "engine/ledger.h"  // RecentIds

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace carecard {
namespace {

std::string CardNo(int i) { return "370200" + std::to_string(1'000'000 + i); }

TEST(id_index, keys_keep_the_order_they_were_first_inserted_in) {
  IdIndex ids;
  EXPECT_EQ(ids.size(), 0u);
  EXPECT_EQ(ids.Insert("K3"), 0);
  EXPECT_EQ(ids.Insert("K1"), 1);
  EXPECT_EQ(ids.Insert("K2"), 2);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.key(0), "K3");
  EXPECT_EQ(ids.key(1), "K1");
  EXPECT_EQ(ids.key(2), "K2");
  EXPECT_EQ(ids.Find("K1"), 1);
}

TEST(id_index, inserting_a_known_key_returns_its_index_and_says_nothing_was_inserted) {
  IdIndex ids;
  bool inserted = false;
  EXPECT_EQ(ids.Insert("P1", &inserted), 0);
  EXPECT_TRUE(inserted);
  EXPECT_EQ(ids.Insert("P2", &inserted), 1);
  EXPECT_TRUE(inserted);
  EXPECT_EQ(ids.Insert("P1", &inserted), 0);
  EXPECT_FALSE(inserted);
  EXPECT_EQ(ids.size(), 2u);
}

TEST(id_index, a_key_never_inserted_is_not_found) {
  IdIndex ids;
  EXPECT_EQ(ids.Find("K1"), -1);
  EXPECT_EQ(ids.Find(""), -1);
  ids.Insert("K1");
  ids.Insert("K12345678");
  // Prefixes, extensions and case variants of keys are other keys.
  EXPECT_EQ(ids.Find("K"), -1);
  EXPECT_EQ(ids.Find("K12"), -1);
  EXPECT_EQ(ids.Find("k1"), -1);
  EXPECT_EQ(ids.Find("K1234567"), -1);
  EXPECT_EQ(ids.Find("K123456789"), -1);
  EXPECT_EQ(ids.Find(std::string_view("K1\0", 3)), -1);
  EXPECT_EQ(ids.Find(""), -1);
  EXPECT_EQ(ids.size(), 2u);  // Find never inserts
}

TEST(id_index, the_empty_string_and_bytes_beyond_ascii_are_keys_like_any_other) {
  IdIndex ids;
  const std::string with_nul("a\0b", 3);
  const std::string utf8 = "助餐";
  const std::string high("\xff\x80\x00\x01", 4);
  EXPECT_EQ(ids.Insert(""), 0);
  EXPECT_EQ(ids.Insert(with_nul), 1);
  EXPECT_EQ(ids.Insert(utf8), 2);
  EXPECT_EQ(ids.Insert(high), 3);
  EXPECT_EQ(ids.Find(""), 0);
  EXPECT_EQ(ids.Find(with_nul), 1);
  EXPECT_EQ(ids.Find("a"), -1);  // the key is not cut at its NUL
  EXPECT_EQ(ids.Find(utf8), 2);
  EXPECT_EQ(ids.Find(high), 3);
  EXPECT_EQ(ids.key(0), "");
  EXPECT_EQ(ids.key(1), with_nul);
  EXPECT_EQ(ids.key(2), utf8);
  EXPECT_EQ(ids.key(3), high);
}

TEST(id_index, two_hundred_thousand_keys_survive_the_table_growing) {
  constexpr int kKeys = 200'000;
  IdIndex ids;
  for (int i = 0; i < kKeys; ++i) {
    bool inserted = false;
    ASSERT_EQ(ids.Insert(CardNo(i), &inserted), i);
    ASSERT_TRUE(inserted);
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kKeys));
  int wrong = 0;
  for (int i = 0; i < kKeys; ++i) {
    const std::string k = CardNo(i);
    if (ids.Find(k) != i || ids.key(i) != k) ++wrong;
    if (ids.Find(CardNo(kKeys + i)) != -1) ++wrong;  // same shape, never inserted
  }
  EXPECT_EQ(wrong, 0);
}

TEST(id_index, keys_of_every_length_up_to_a_few_hundred_bytes_are_told_apart) {
  // Keys that share long prefixes and differ in one byte, at every length the
  // comparison has a separate path for.
  IdIndex ids;
  std::vector<std::string> keys;
  for (size_t n = 1; n <= 300; ++n) {
    std::string k(n, 'x');
    keys.push_back(k);
    k[n - 1] = 'y';
    keys.push_back(k);
    k[0] = 'y';
    keys.push_back(k);
  }
  for (const auto& k : keys) ids.Insert(k);
  ASSERT_EQ(ids.size(), keys.size() - 1);  // "y" is made twice at n == 1
  for (const auto& k : keys) {
    const int32_t i = ids.Find(k);
    ASSERT_GE(i, 0) << k;
    EXPECT_EQ(ids.key(i), k);
  }
}

TEST(id_index, reserve_then_insert_gives_the_indices_inserting_alone_gives) {
  constexpr int kKeys = 20'000;
  IdIndex plain, reserved, reserved_midway;
  reserved.Reserve(kKeys, kKeys * CardNo(0).size());
  for (int i = 0; i < kKeys; ++i) {
    if (i == kKeys / 3) reserved_midway.Reserve(kKeys, kKeys * CardNo(0).size());  // keys already in must move
    const std::string k = CardNo((i * 7919) % kKeys);
    EXPECT_EQ(plain.Insert(k), i);
    EXPECT_EQ(reserved.Insert(k), i);
    EXPECT_EQ(reserved_midway.Insert(k), i);
  }
  for (int i = 0; i < kKeys; ++i) {
    const std::string k = CardNo(i);
    ASSERT_EQ(reserved.Find(k), plain.Find(k));
    ASSERT_EQ(reserved_midway.Find(k), plain.Find(k));
  }
  EXPECT_EQ(reserved.Find("K-none"), -1);
}

TEST(id_index, find_among_looks_only_at_the_keys_it_is_given) {
  IdIndex ids;
  for (int i = 0; i < 5; ++i) ids.Insert(CardNo(i));
  EXPECT_EQ(ids.FindAmong(CardNo(2), 1, 3), 2);
  EXPECT_EQ(ids.FindAmong(CardNo(0), 1, 3), -1);   // before the range: not looked at
  EXPECT_EQ(ids.FindAmong(CardNo(4), 1, 3), -1);   // after it
  EXPECT_EQ(ids.FindAmong(CardNo(0), -1, 2), 0);   // a range starting before the first key is clipped
  EXPECT_EQ(ids.FindAmong(CardNo(4), 3, 100), 4);  // and one running past the last
  EXPECT_EQ(ids.FindAmong(CardNo(9), 0, 100), -1);
}

TEST(id_index, a_hash_computed_once_finds_the_same_key_as_the_id_alone) {
  IdIndex ids;
  const uint64_t h1 = IdIndex::Hash("K1");
  EXPECT_EQ(h1, IdIndex::Hash(std::string("K1")));  // a function of the bytes only
  EXPECT_NE(h1, IdIndex::Hash("K2"));
  ids.Prefetch(h1);  // a hint, no effect on results
  EXPECT_EQ(ids.Insert("K1", h1), 0);
  EXPECT_EQ(ids.Insert("K2"), 1);
  EXPECT_EQ(ids.Find("K1", h1), 0);
  EXPECT_EQ(ids.Find("K2", IdIndex::Hash("K2")), 1);
  bool inserted = true;
  EXPECT_EQ(ids.Insert("K2", IdIndex::Hash("K2"), &inserted), 1);
  EXPECT_FALSE(inserted);
}

TEST(id_index, release_lookup_keeps_the_keys_but_find_and_insert_then_throw) {
  IdIndex ids;
  for (int i = 0; i < 1000; ++i) ids.Insert(CardNo(i));
  EXPECT_TRUE(ids.can_look_up());
  const size_t before = ids.MemoryBytes();
  ids.ReleaseLookup();
  EXPECT_FALSE(ids.can_look_up());
  EXPECT_LT(ids.MemoryBytes(), before);  // the table is freed
  ASSERT_EQ(ids.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(ids.key(i), CardNo(i));
  EXPECT_THROW(ids.Find(CardNo(0)), std::logic_error);
  EXPECT_THROW(ids.Find("never inserted"), std::logic_error);
  EXPECT_THROW(ids.Insert(CardNo(0)), std::logic_error);
  EXPECT_THROW(ids.Insert("new"), std::logic_error);
  EXPECT_THROW(ids.Reserve(10, 100), std::logic_error);  // would otherwise loop on an empty table
  EXPECT_EQ(ids.size(), 1000u);
}

// SameId(a, b) is a == b. The strings are cut from larger buffers at every
// offset 0..7, so their data is unaligned the way a row's cells are.
class SameIdBuffers {
 public:
  static constexpr size_t kMaxLength = 40;
  SameIdBuffers() : a_(kMaxLength + 16, '\0'), b_(kMaxLength + 16, '\0') {}
  // The same pseudo-random text of length n at a_ + a_offset and b_ + b_offset.
  std::pair<std::string_view, std::string_view> Equal(size_t n, size_t a_offset, size_t b_offset, uint32_t seed) {
    std::mt19937 rng(seed);
    for (auto& c : a_) c = static_cast<char>(rng());
    for (auto& c : b_) c = static_cast<char>(rng());  // different bytes around the strings
    for (size_t i = 0; i < n; ++i) b_[b_offset + i] = a_[a_offset + i];
    return {std::string_view(a_.data() + a_offset, n), std::string_view(b_.data() + b_offset, n)};
  }
  char& b(size_t i) { return b_[i]; }

 private:
  std::string a_, b_;
};

TEST(same_id, equal_strings_of_every_length_and_alignment_are_the_same_id) {
  SameIdBuffers buffers;
  int wrong = 0;
  for (size_t n = 0; n <= SameIdBuffers::kMaxLength; ++n) {
    for (size_t ao = 0; ao < 8; ++ao) {
      for (size_t bo = 0; bo < 8; ++bo) {
        auto [a, b] = buffers.Equal(n, ao, bo, static_cast<uint32_t>(n * 64 + ao * 8 + bo));
        ASSERT_EQ(a, b);
        if (!SameId(a, b) || !SameId(b, a)) {
          ++wrong;
          ADD_FAILURE() << "length " << n << ", offsets " << ao << " and " << bo;
        }
      }
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST(same_id, strings_that_differ_in_any_one_byte_are_not_the_same_id) {
  SameIdBuffers buffers;
  int wrong = 0;
  for (size_t n = 1; n <= SameIdBuffers::kMaxLength; ++n) {
    for (size_t ao = 0; ao < 8; ++ao) {
      for (size_t bo = 0; bo < 8; ++bo) {
        auto [a, b] = buffers.Equal(n, ao, bo, static_cast<uint32_t>(n * 64 + ao * 8 + bo));
        for (size_t at = 0; at < n; ++at) {
          for (const char flip : {'\x01', '\x80', '\xff'}) {
            char& byte = buffers.b(bo + at);
            byte ^= flip;
            ASSERT_NE(a, b);
            if (SameId(a, b) || SameId(b, a)) {
              ++wrong;
              ADD_FAILURE() << "length " << n << ", offsets " << ao << " and " << bo << ", byte " << at
                            << " flipped by " << (flip & 0xff);
            }
            byte ^= flip;
            ASSERT_EQ(a, b);
          }
        }
      }
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST(same_id, strings_of_different_lengths_are_never_the_same_id) {
  const std::string text(64, 'k');  // a prefix of the other, every byte alike
  for (size_t n = 0; n <= SameIdBuffers::kMaxLength; ++n) {
    for (size_t m = 0; m <= SameIdBuffers::kMaxLength; ++m) {
      const std::string_view a(text.data() + 1, n), b(text.data() + 3, m);
      EXPECT_EQ(SameId(a, b), n == m) << n << " vs " << m;
    }
  }
  EXPECT_TRUE(SameId("", ""));
  EXPECT_TRUE(SameId(std::string_view(), std::string_view("", 0)));  // no data pointer at all
  EXPECT_FALSE(SameId("", std::string_view("\0", 1)));
}

TEST(same_id, agrees_with_equality_on_ids_from_a_small_alphabet) {
  // Random ids over two letters collide often, so both answers come up.
  std::mt19937 rng(7);
  int same = 0, wrong = 0;
  for (int i = 0; i < 20'000; ++i) {
    const size_t n = rng() % 20;
    const size_t m = rng() % 4 == 0 ? rng() % 20 : n;
    std::string a(n + 7, 'a'), b(m + 5, 'a');
    for (auto& c : a) c = "ab"[rng() % 2];
    for (auto& c : b) c = "ab"[rng() % 2];
    const std::string_view av(a.data() + 7, n), bv(b.data() + 5, m);
    if (av == bv) ++same;
    if (SameId(av, bv) != (av == bv)) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(same, 100);  // the equal case was exercised
}

TEST(recent_ids, finds_each_of_the_last_n_ids_put_and_forgets_the_oldest) {
  RecentIds<4, int> recent;
  EXPECT_EQ(recent.Find("S1"), nullptr);
  for (int i = 1; i <= 6; ++i) recent.Put("C00027S0" + std::to_string(i), i);
  // S3..S6 are the last four; S1 and S2 have been replaced, newest first or not.
  for (int i = 3; i <= 6; ++i) {
    const int* found = recent.Find("C00027S0" + std::to_string(i));
    ASSERT_NE(found, nullptr) << i;
    EXPECT_EQ(*found, i);
  }
  EXPECT_EQ(recent.Find("C00027S01"), nullptr);
  EXPECT_EQ(recent.Find("C00027S02"), nullptr);
  EXPECT_EQ(recent.Find("C00027S0"), nullptr);  // a prefix is another id
  recent.Put("C00027S07", 7);                    // replaces S3, the oldest
  EXPECT_EQ(recent.Find("C00027S03"), nullptr);
  EXPECT_EQ(*recent.Find("C00027S04"), 4);
  EXPECT_EQ(*recent.Find("C00027S07"), 7);
}

TEST(inline_id_map, finds_every_key_with_its_value_and_nothing_else) {
  // Station-like ids of every length the map holds, bytes beyond ASCII among them.
  std::vector<std::string> ids;
  for (int i = 0; i < 6000; ++i) ids.push_back("C" + std::to_string(i % 1000) + "S" + std::to_string(i));
  ids.push_back("站");
  ids.push_back(std::string(InlineIdMap::kMaxKeyBytes, 'z'));
  ids.push_back("q");
  std::vector<std::string_view> keys(ids.begin(), ids.end());
  std::vector<int32_t> values;
  for (size_t i = 0; i < ids.size(); ++i) values.push_back(static_cast<int32_t>(i * 7 % 1000));
  InlineIdMap map;
  EXPECT_TRUE(map.empty());
  ASSERT_TRUE(map.Build(keys, values));
  EXPECT_FALSE(map.empty());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(map.Find(ids[i]), values[i]) << ids[i];
  // Prefixes, extensions, other cases, the empty id and ids longer than any key are absent.
  EXPECT_EQ(map.Find("C1S"), -1);
  EXPECT_EQ(map.Find("C1S10010"), -1);
  EXPECT_EQ(map.Find("c1S1"), -1);
  EXPECT_EQ(map.Find(""), -1);
  EXPECT_EQ(map.Find(std::string(InlineIdMap::kMaxKeyBytes + 1, 'z')), -1);
  EXPECT_EQ(map.Find(std::string_view("q\0", 2)), -1);
  EXPECT_GE(map.MemoryBytes(), 2 * ids.size() * 32);  // at most half full
}

TEST(inline_id_map, refuses_keys_it_cannot_hold_and_is_then_empty) {
  InlineIdMap map;
  ASSERT_TRUE(map.Build({"S1", "S2"}, {1, 2}));
  const std::string long_key(InlineIdMap::kMaxKeyBytes + 1, 'k');
  EXPECT_FALSE(map.Build({"S1", long_key}, {1, 2}));  // too long
  EXPECT_TRUE(map.empty());
  ASSERT_TRUE(map.Build({"S1"}, {1}));
  EXPECT_FALSE(map.Build({"S1", ""}, {1, 2}));  // empty
  EXPECT_TRUE(map.empty());
  EXPECT_FALSE(map.Build({"S1", "S2", "S1"}, {1, 2, 3}));  // a key twice
  EXPECT_TRUE(map.empty());
  EXPECT_FALSE(map.Build({"S1", "S2"}, {1}));  // a key without its value
  EXPECT_TRUE(map.empty());
  ASSERT_TRUE(map.Build({}, {}));  // no keys: a map that finds nothing
  EXPECT_FALSE(map.empty());
  EXPECT_EQ(map.Find("S1"), -1);
}

}  // namespace
}  // namespace carecard
