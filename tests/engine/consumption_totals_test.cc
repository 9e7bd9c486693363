// ConsumptionTotals: the consumption sums by (serving centre, home centre,
// service) that every thread keeps while it settles its partitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <tuple>
#include <vector>

#include "engine/elder_settle.h"

namespace carecard {
namespace {

ConsumptionKey Key(int32_t serving, int32_t home, uint16_t service) { return ConsumptionKey{serving, home, service}; }

std::tuple<int32_t, int32_t, uint16_t> Tuple(const ConsumptionKey& k) { return {k.serving, k.home, k.service}; }

// Adds to a ConsumptionTotals and to a std::map reference alike, then checks
// that the table holds the reference's sums, each key visited once: the home
// keys of the direct table by (centre, service), then the others in the order
// they were first seen.
class Reference {
 public:
  void Add(ConsumptionTotals* t, const ConsumptionKey& k, int64_t fen) {
    Note(k, 1, fen);
    t->Add(k, 1, Money::FromFen(fen));
  }
  // What `t` holds, as ExpectHeldBy sees it, is added here too (for Absorb).
  void NoteAll(ConsumptionTotals* t) {
    t->ForEach([&](const ConsumptionKey& k, const ConsumptionSum& sum) { Note(k, sum.transactions, sum.amount.fen()); });
  }
  void ExpectHeldBy(ConsumptionTotals* t) const {
    ASSERT_EQ(t->size(), expected_.size());
    std::vector<std::tuple<int32_t, int32_t, uint16_t>> visited;
    t->ForEach([&](const ConsumptionKey& k, const ConsumptionSum& sum) {
      visited.push_back(Tuple(k));
      const auto& want = expected_.at(Tuple(k));
      EXPECT_EQ(sum.transactions, want.first) << k.serving << " " << k.home << " " << k.service;
      EXPECT_EQ(sum.amount, Money::FromFen(want.second));
    });
    auto order = home_;
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return std::make_pair(std::get<1>(a), std::get<2>(a)) < std::make_pair(std::get<1>(b), std::get<2>(b));
    });
    order.insert(order.end(), first_seen_.begin(), first_seen_.end());
    EXPECT_EQ(visited, order);
  }

 private:
  void Note(const ConsumptionKey& k, int64_t transactions, int64_t fen) {
    auto [it, inserted] = expected_.try_emplace(Tuple(k), 0, 0);
    if (inserted) (ConsumptionTotals::InDirectTable(k) ? home_ : first_seen_).push_back(Tuple(k));
    it->second.first += transactions;
    it->second.second += fen;
  }
  std::map<std::tuple<int32_t, int32_t, uint16_t>, std::pair<int64_t, int64_t>> expected_;
  std::vector<std::tuple<int32_t, int32_t, uint16_t>> home_, first_seen_;
};

// The sum of one key as ForEach gives it; nullopt when it is not a key.
std::optional<ConsumptionSum> SumOf(ConsumptionTotals* t, const ConsumptionKey& key) {
  std::optional<ConsumptionSum> found;
  t->ForEach([&](const ConsumptionKey& k, const ConsumptionSum& sum) {
    if (k == key) found = sum;
  });
  return found;
}

TEST(consumption_totals, a_new_key_starts_at_zero_and_sums_what_is_added) {
  ConsumptionTotals t;
  t.Add(Key(1, 2, 3), 2, Money::FromFen(1050));
  t.Add(Key(1, 2, 4), 1, Money());  // another service: another key
  t.Add(Key(1, 2, 3), 0, Money::FromFen(50));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(SumOf(&t, Key(1, 2, 3))->transactions, 2);
  EXPECT_EQ(SumOf(&t, Key(1, 2, 3))->amount, Money::FromFen(1100));
  EXPECT_FALSE(SumOf(&t, Key(2, 1, 3)));  // serving and home are not interchangeable
  t.Add(Key(2, 1, 3), 0, Money::FromFen(-20));  // a refund alone: a key, its sum below zero
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(SumOf(&t, Key(2, 1, 3))->amount, Money::FromFen(-20));
  EXPECT_EQ(SumOf(&t, Key(2, 1, 3))->transactions, 0);
}

TEST(consumption_totals, additions_that_wait_in_batches_sum_as_if_each_went_in_at_once) {
  // Many batches of kPendingEntries, the table growing between them, a key
  // seen in the first batch added to again in later ones, runs of one key
  // (a card's rows) and keys that come back after a run of others.
  Reference reference;
  ConsumptionTotals t;
  const size_t adds = ConsumptionTotals::kPendingEntries * 37 + 5;
  for (size_t i = 0; i < adds; ++i) {
    const auto c = static_cast<int32_t>(i / 3);  // three in a row with the same key
    reference.Add(&t, Key(c % 5000, c % 4999 + 1, static_cast<uint16_t>(c % 3)), 1 + static_cast<int64_t>(i % 101));
    if (i % 1000 == 0) reference.Add(&t, Key(1, 2, 0), 7);  // the first key, again and again
  }
  reference.ExpectHeldBy(&t);
  // Waiting additions are part of what size() and ForEach see.
  reference.Add(&t, Key(1, 2, 0), 3);
  reference.Add(&t, Key(5, 90000, 9), 4);
  reference.ExpectHeldBy(&t);
}

TEST(consumption_totals, every_key_is_visited_once_home_keys_first_then_the_others_as_first_seen) {
  // Random keys from a small space, so that most lookups find a key again;
  // std::map is the reference for the sums.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> center(0, 299);
  std::uniform_int_distribution<int> service(0, 9);
  Reference reference;
  ConsumptionTotals t;
  for (int i = 0; i < 300000; ++i) {
    reference.Add(&t, Key(center(rng), center(rng), static_cast<uint16_t>(service(rng))), 1 + i % 997);
  }
  reference.ExpectHeldBy(&t);
}

TEST(consumption_totals, a_moved_table_keeps_its_sums_and_the_additions_still_waiting) {
  ConsumptionTotals t;
  for (int32_t i = 0; i < 5000; ++i) t.Add(Key(i, 0, 1), i, Money());  // the last of them still wait
  t.Add(Key(4999, 0, 1), 1, Money());
  ConsumptionTotals moved = std::move(t);
  EXPECT_EQ(moved.size(), 5000u);
  EXPECT_EQ(SumOf(&moved, Key(4999, 0, 1))->transactions, 5000);
  EXPECT_EQ(SumOf(&moved, Key(12, 0, 1))->transactions, 12);
  EXPECT_EQ(t.size(), 0u);  // the moved-from table is empty, and usable
  t.Add(Key(4999, 0, 1), 9, Money());
  EXPECT_EQ(SumOf(&t, Key(4999, 0, 1))->transactions, 9);
  EXPECT_EQ(SumOf(&moved, Key(4999, 0, 1))->transactions, 5000);
  moved = ConsumptionTotals();
  EXPECT_EQ(moved.size(), 0u);
  EXPECT_FALSE(SumOf(&moved, Key(12, 0, 1)));
}

// Keys served at the card's own centre (serving == home) are found through a
// direct table by (centre, service); the others, and home keys past the
// table's bounds, through the hash. Either way a key has one sum, and ForEach
// visits it once.
TEST(consumption_totals, keys_served_at_home_and_elsewhere_sum_alike_whichever_way_they_are_found) {
  std::mt19937 rng(11);
  const int32_t far_centre = static_cast<int32_t>(ConsumptionTotals::kLocalCentres) + 5;
  std::uniform_int_distribution<int32_t> center(0, 40);
  std::uniform_int_distribution<int> service(0, ConsumptionTotals::kLocalServices + 3);  // some past the table
  Reference reference;
  ConsumptionTotals t;
  for (int i = 0; i < 200000; ++i) {
    const int32_t home = i % 50 == 0 ? far_centre : center(rng);
    const int32_t serving = i % 10 == 0 ? center(rng) : home;  // mostly at home
    reference.Add(&t, Key(serving, home, static_cast<uint16_t>(service(rng))), 1 + i % 313);
  }
  reference.ExpectHeldBy(&t);
}

TEST(consumption_totals, a_home_key_asked_for_is_a_key_even_while_its_sum_is_zero) {
  // A refund may bring a key's sum back to zero: its line is still written.
  ConsumptionTotals t;
  ASSERT_TRUE(ConsumptionTotals::InDirectTable(Key(600, 600, 2)));  // in the second home block
  t.Add(Key(600, 600, 2), 0, Money());
  EXPECT_EQ(t.size(), 1u);
  std::vector<std::tuple<int32_t, int32_t, uint16_t>> visited;
  t.ForEach([&](const ConsumptionKey& k, const ConsumptionSum& sum) {
    visited.push_back(Tuple(k));
    EXPECT_EQ(sum.transactions, 0);
    EXPECT_TRUE(sum.amount.is_zero());
  });
  EXPECT_EQ(visited, (std::vector<std::tuple<int32_t, int32_t, uint16_t>>{{600, 600, 2}}));
  EXPECT_FALSE(ConsumptionTotals::InDirectTable(Key(600, 601, 2)));  // served away from home
  EXPECT_FALSE(ConsumptionTotals::InDirectTable(Key(600, 600, ConsumptionTotals::kLocalServices)));
  EXPECT_FALSE(ConsumptionTotals::InDirectTable(
      Key(ConsumptionTotals::kLocalCentres, ConsumptionTotals::kLocalCentres, 0)));
}

TEST(consumption_totals, a_moved_table_takes_its_home_keys_with_it) {
  ConsumptionTotals t;
  t.Add(Key(4, 4, 1), 7, Money());
  ConsumptionTotals moved = std::move(t);
  EXPECT_EQ(SumOf(&moved, Key(4, 4, 1))->transactions, 7);
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_EQ(t.size(), 0u);  // the moved-from table starts afresh
  t.Add(Key(4, 4, 1), 0, Money());
  EXPECT_EQ(SumOf(&t, Key(4, 4, 1))->transactions, 0);
  EXPECT_EQ(t.size(), 1u);
}

TEST(consumption_totals, absorbing_a_table_adds_its_sums_keys_first_seen_here_first) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> center(0, 120);
  Reference reference;
  ConsumptionTotals mine, theirs;
  for (int i = 0; i < 20000; ++i) reference.Add(&mine, Key(center(rng), center(rng), static_cast<uint16_t>(i % 4)), 1 + i % 50);
  for (int i = 0; i < 30000; ++i) {
    const int32_t home = center(rng);
    theirs.Add(Key(i % 3 ? home : center(rng), home, static_cast<uint16_t>(i % 5)), 1, Money::FromFen(1 + i % 70));
  }
  reference.NoteAll(&theirs);  // its keys in its own order, after mine
  mine.Absorb(std::move(theirs));
  reference.ExpectHeldBy(&mine);
  EXPECT_EQ(theirs.size(), 0u);
  ConsumptionTotals empty;
  empty.Absorb(std::move(mine));  // into an empty table: the whole table moves
  reference.ExpectHeldBy(&empty);
}

TEST(consumption_totals, a_sum_that_stops_fitting_names_its_key_however_it_was_added) {
  const Money almost = Money::FromFen(INT64_MAX - 100);
  {  // a run of one key: the additions that wait together
    ConsumptionTotals t;
    t.Add(Key(1, 2, 3), 1, almost);
    try {
      t.Add(Key(1, 2, 3), 1, Money::FromFen(101));
      FAIL() << "no overflow";
    } catch (const ConsumptionOverflow& e) {
      EXPECT_EQ(e.key(), Key(1, 2, 3));
    }
  }
  {  // the same key after others: the sum in the table
    ConsumptionTotals t;
    t.Add(Key(1, 2, 3), 1, almost);
    t.Add(Key(4, 5, 6), 1, Money::FromFen(1));
    t.Add(Key(1, 2, 3), 1, Money::FromFen(101));
    try {
      t.size();
      FAIL() << "no overflow";
    } catch (const ConsumptionOverflow& e) {
      EXPECT_EQ(e.key(), Key(1, 2, 3));
    }
  }
  {  // a home key
    ConsumptionTotals t;
    t.Add(Key(7, 7, 0), 1, almost);
    EXPECT_THROW(t.Add(Key(7, 7, 0), 1, Money::FromFen(101)), ConsumptionOverflow);
  }
}

TEST(consumption_totals, a_key_costs_its_entry_and_a_few_table_slots) {
  // 830,000 keys is what 2,000,000 generated cards give each thread: three
  // parallel arrays at most half full held 58 to 116 bytes a key. The
  // additions waiting for the table add a fixed 9 KiB.
  ConsumptionTotals t;
  const size_t keys = 830000;
  for (size_t i = 0; i < keys; ++i) {
    t.Add(Key(static_cast<int32_t>(i % 1000), static_cast<int32_t>(i / 1000), static_cast<uint16_t>(i % 7)), 1, Money());
  }
  ASSERT_EQ(t.size(), keys);
  EXPECT_LE(t.bytes(), keys * 48 + (size_t{256} << 10) + (size_t{9} << 10));
}

}  // namespace
}  // namespace carecard
