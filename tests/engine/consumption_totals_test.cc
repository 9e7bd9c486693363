// ConsumptionTotals: the consumption sums by (serving centre, home centre,
// service) that every thread keeps while it settles its partitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
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
    auto [it, inserted] = expected_.try_emplace(Tuple(k), 0, 0);
    if (inserted) (ConsumptionTotals::InDirectTable(k) ? home_ : first_seen_).push_back(Tuple(k));
    it->second.first += 1;
    it->second.second += fen;
    ConsumptionSum& sum = (*t)[k];
    sum.transactions += 1;
    sum.amount += Money::FromFen(fen);
  }
  void ExpectHeldBy(const ConsumptionTotals& t) const {
    ASSERT_EQ(t.size(), expected_.size());
    std::vector<std::tuple<int32_t, int32_t, uint16_t>> visited;
    t.ForEach([&](const ConsumptionKey& k, const ConsumptionSum& sum) {
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
  std::map<std::tuple<int32_t, int32_t, uint16_t>, std::pair<int64_t, int64_t>> expected_;
  std::vector<std::tuple<int32_t, int32_t, uint16_t>> home_, first_seen_;
};

TEST(consumption_totals, a_new_key_starts_at_zero_and_sums_what_is_added) {
  ConsumptionTotals t;
  auto& a = t[Key(1, 2, 3)];
  EXPECT_EQ(a.transactions, 0);
  EXPECT_TRUE(a.amount.is_zero());
  a.transactions += 2;
  a.amount += Money::FromFen(1050);
  t[Key(1, 2, 4)].transactions += 1;  // another service: another key
  t[Key(1, 2, 3)].amount += Money::FromFen(50);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t[Key(1, 2, 3)].transactions, 2);
  EXPECT_EQ(t[Key(1, 2, 3)].amount, Money::FromFen(1100));
  EXPECT_EQ(t[Key(2, 1, 3)].transactions, 0);  // serving and home are not interchangeable
  EXPECT_EQ(t.size(), 3u);
}

TEST(consumption_totals, a_sum_stays_where_it_is_while_the_table_grows) {
  ConsumptionTotals t;
  ConsumptionSum& first = t[Key(7, 7, 0)];
  first.transactions = 1;
  for (int32_t i = 0; i < 100000; ++i) t[Key(i, i + 1, static_cast<uint16_t>(i % 11))].transactions += 1;
  first.transactions += 41;  // the reference taken before 100,000 keys came in
  EXPECT_EQ(t[Key(7, 7, 0)].transactions, 42);
  EXPECT_EQ(&t[Key(7, 7, 0)], &first);
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
  reference.ExpectHeldBy(t);
}

TEST(consumption_totals, a_moved_table_keeps_its_sums_and_its_last_key) {
  ConsumptionTotals t;
  for (int32_t i = 0; i < 5000; ++i) t[Key(i, 0, 1)].transactions = i;
  t[Key(4999, 0, 1)].transactions += 1;  // the last key found: cached
  ConsumptionTotals moved = std::move(t);
  EXPECT_EQ(moved.size(), 5000u);
  EXPECT_EQ(moved[Key(4999, 0, 1)].transactions, 5000);
  EXPECT_EQ(moved[Key(12, 0, 1)].transactions, 12);
  EXPECT_EQ(t.size(), 0u);  // the moved-from table is empty, and usable
  EXPECT_EQ(t[Key(4999, 0, 1)].transactions, 0);
  t[Key(4999, 0, 1)].transactions = 9;
  EXPECT_EQ(moved[Key(4999, 0, 1)].transactions, 5000);
  moved = ConsumptionTotals();
  EXPECT_EQ(moved.size(), 0u);
  EXPECT_EQ(moved[Key(12, 0, 1)].transactions, 0);
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
  reference.ExpectHeldBy(t);
  // A home key is the same sum however often it is asked for, before and after the table grows.
  ConsumptionSum* home = &t[Key(3, 3, 2)];
  for (int32_t i = 0; i < 50000; ++i) t[Key(i, i + 7, 1)].transactions += 1;
  EXPECT_EQ(&t[Key(3, 3, 2)], home);
}

TEST(consumption_totals, a_home_key_asked_for_is_a_key_even_while_its_sum_is_zero) {
  // A refund may bring a key's sum back to zero: its line is still written.
  ConsumptionTotals t;
  ASSERT_TRUE(ConsumptionTotals::InDirectTable(Key(600, 600, 2)));  // in the second home block
  EXPECT_TRUE(t[Key(600, 600, 2)].amount.is_zero());
  EXPECT_EQ(t.size(), 1u);
  std::vector<std::tuple<int32_t, int32_t, uint16_t>> visited;
  t.ForEach([&](const ConsumptionKey& k, const ConsumptionSum& sum) {
    visited.push_back(Tuple(k));
    EXPECT_EQ(sum.transactions, 0);
  });
  EXPECT_EQ(visited, (std::vector<std::tuple<int32_t, int32_t, uint16_t>>{{600, 600, 2}}));
  EXPECT_FALSE(ConsumptionTotals::InDirectTable(Key(600, 601, 2)));  // served away from home
  EXPECT_FALSE(ConsumptionTotals::InDirectTable(Key(600, 600, ConsumptionTotals::kLocalServices)));
  EXPECT_FALSE(ConsumptionTotals::InDirectTable(
      Key(ConsumptionTotals::kLocalCentres, ConsumptionTotals::kLocalCentres, 0)));
}

TEST(consumption_totals, a_moved_table_takes_its_home_keys_with_it) {
  ConsumptionTotals t;
  t[Key(4, 4, 1)].transactions = 7;
  ConsumptionTotals moved = std::move(t);
  EXPECT_EQ(moved[Key(4, 4, 1)].transactions, 7);
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_EQ(t[Key(4, 4, 1)].transactions, 0);  // the moved-from table starts afresh
  EXPECT_EQ(t.size(), 1u);
}

TEST(consumption_totals, a_key_costs_its_entry_and_a_few_table_slots) {
  // 830,000 keys is what 2,000,000 generated cards give each thread: three
  // parallel arrays at most half full held 58 to 116 bytes a key.
  ConsumptionTotals t;
  const size_t keys = 830000;
  for (size_t i = 0; i < keys; ++i) {
    t[Key(static_cast<int32_t>(i % 1000), static_cast<int32_t>(i / 1000), static_cast<uint16_t>(i % 7))].transactions += 1;
  }
  ASSERT_EQ(t.size(), keys);
  EXPECT_LE(t.bytes(), keys * 48 + (size_t{256} << 10));
}

}  // namespace
}  // namespace carecard
