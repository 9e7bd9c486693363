// Settling elders: everything that needs one elder's rows together.
//
// A partition is a contiguous range of elders (an elder is every card of one
// resident id). SettlePartition takes the partition's spilled events, drops
// those the duplicate check rejected, and for each card, in file order,
// resolves references (unknown_ref, over_reversal) and warns about deposits on
// inactive cards or after death and cross-centre consumption; then evaluates
// every settled month (semantics.md §5), walks the card's events in time order
// (overdrafts, platform balances, statement flows, consumption by centre, §6),
// and compares closed months with the book (adjustments, §7).
//
// Pure: no I/O, no clock. A partition's results depend only on its elders'
// rows, whatever thread settles it and in whatever order partitions run.
#ifndef CARECARD_ENGINE_ELDER_SETTLE_H_
#define CARECARD_ENGINE_ELDER_SETTLE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/book_state.h"
#include "engine/calendar.h"
#include "engine/exceptions.h"
#include "engine/ledger.h"
#include "engine/policy.h"
#include "engine/registry.h"
#include "engine/results.h"

namespace carecard {

// The months a run settles (semantics.md §7): every month from the book's
// first period to the period's last. Months of closed periods are recomputed
// for adjustments; months of a draft period between the latest closed period
// and this one are computed so that their subsidies are on card balances, but
// they are neither paid nor adjusted by this run.
struct SettledMonths {
  std::vector<YearMonth> closed;   // ascending
  std::vector<YearMonth> current;  // ascending
  std::vector<YearMonth> all;      // ascending, from the book's first month
  static SettledMonths For(const PayoutPeriod& period, const BookState& book);
};

// One fact or check behind a card-month, for `explain`. The engine states what
// it found as data; rules/explain_render.h turns a step into a sentence in
// English or Chinese. Arguments are plain values as the files write them
// (dates YYYY-MM-DD, months YYYY-MM, amounts 0.00, ids, names); the comment on
// each kind lists them in order. An empty argument means "none".
enum class ExplainStepKind {
  // Facts on file.
  kCardNotFound,              // card_no
  kCard,                      // card_no, card_type, center_id, issued_on, closed_on
  kHolder,                    // person_id, birth_date, hukou (rural|urban), death_date, flags ("a, b")
  kAssessmentOnFile,          // level, assessed_on
  kNoAssessmentOnFile,        //
  kEnrollmentOnFile,          // program, institution_id, start_on, end_on, choice
  kDepositCounted,            // txn_id, amount, date
  kDepositNotCountedInactive, // txn_id, amount, date (the card was not active that day)
  kDepositNotCountedDeceased, // txn_id, amount, date, death_date
  kReversalCounted,           // txn_id, amount, date, deposit txn_id, deposit date
  kReversalNotCounted,        // txn_id, amount, date, deposit txn_id (its deposit was not counted)
  kCardNotActive,             // month (no card-month)
  // The evaluation, in the order of semantics.md §5.
  kNetDeposit,                // month, amount
  kNoPolicyInForce,           // month
  kVersionInForce,            // rule_version, from, to
  kAlive,                     // the month's first day
  kAliveDiedInMonth,          // the month's first day, death_date
  kDeceased,                  // the month's first day, death_date
  kElderCard,                 // number of the elder's cards active in the month
  kDuplicateCard,             // the kept card_no, its issued_on
  kExclusionNotForType,       // program, choice, card_type
  kExclusionNotEnrolled,      // program, choice
  kExcluded,                  // program, choice, institution_id, start_on, end_on
  kNoExclusions,              //
  kAge,                       // the month's last day, age, birth_date
  kAssessmentValid,           // level, assessed_on, valid_through
  kAssessmentExpired,         // level, assessed_on, valid_through
  kAssessmentNone,            // the month's last day
  kHukouFact,                 // rural|urban
  kFlagsFact,                 // flags ("a, b")
  kLowerTierNotAllowed,       // card_type
  kTypeNotInVersion,          // type
  kEligible,                  // type, type name, expression, the rule's own account of its parts
  kNotEligible,               // type, type name, expression, the rule's own account of its parts
  kThresholdMet,              // type, net deposit, minimum, subsidy
  kThresholdNotMet,           // type, net deposit, minimum
  kProrated,                  // days, days in the month, subsidy
  kPaid,                      // tier, subsidy
  kBelowThreshold,            //
  kIneligible,                //
};
inline constexpr int kExplainStepKindCount = static_cast<int>(ExplainStepKind::kIneligible) + 1;
// A stable identifier for tools ("threshold_not_met").
const char* ExplainStepKindName(ExplainStepKind kind);

struct ExplainStep {
  ExplainStepKind kind = ExplainStepKind::kCardNotFound;
  std::vector<std::string> args;
};

// The facts and checks behind one card-month, in order, for `explain`.
struct CardMonthExplanation {
  bool found = false;  // false: the card is unknown or not active in the month
  CardMonth result;
  std::vector<ExplainStep> steps;
};

// Everything settling needs besides the partition's rows; read-only, shared by threads.
struct SettleContext {
  const Policy* policy = nullptr;
  PayoutPeriod period = PayoutPeriod::Containing(YearMonth::Of(2024, 1), 2);
  const Registry* registry = nullptr;
  const BookState* book = nullptr;
  std::vector<int32_t> book_card_of;  // registry card -> index in book->cards, or -1
  SettledMonths months;
  UtcOffset zone;
  const FileNames* files = nullptr;
  uint16_t cards_file = 0;  // cards.csv, named by duplicate_card
  const ServiceNames* services = nullptr;
  // Only the row checks that need the elder's rows (references, row warnings):
  // the verdicts an import records. No card-months, balances or adjustments.
  bool row_checks_only = false;
  // Where results go, one slot per card (and period month): threads settle
  // different cards, so they write different slots. A slot whose card is -1
  // holds nothing (the card has no card-month that month, or no statement).
  CardMonth* card_month_slots = nullptr;   // months.current.size() * cards, by month then card
  StatementLine* statement_slots = nullptr;  // by card
  size_t card_slot_count = 0;                // cards the slots are for
  // explain: the card and month to explain (the card's partition only).
  int32_t explain_card = -1;
  YearMonth explain_month;
};

struct ConsumptionKey {
  int32_t serving = -1, home = -1;
  uint16_t service = 0;
  friend bool operator==(const ConsumptionKey&, const ConsumptionKey&) = default;
};
struct ConsumptionKeyHash {
  size_t operator()(const ConsumptionKey& k) const {
    uint64_t h = static_cast<uint32_t>(k.serving);
    h = h * 0x9E3779B97F4A7C15ull ^ static_cast<uint32_t>(k.home);
    h = h * 0x9E3779B97F4A7C15ull ^ k.service;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};
struct ConsumptionSum {
  int64_t transactions = 0;
  Money amount;
};

// A consumption sum by (serving centre, home centre, service) that stops
// fitting in a Money: a sum over many cards, so no one card's row is to blame.
class ConsumptionOverflow : public MoneyOverflow {
 public:
  explicit ConsumptionOverflow(const ConsumptionKey& key)
      : MoneyOverflow("a consumption sum by centre and service overflows"), key_(key) {}
  ConsumptionOverflow(const ConsumptionKey& key, const std::string& what) : MoneyOverflow(what), key_(key) {}
  const ConsumptionKey& key() const { return key_; }

 private:
  ConsumptionKey key_;
};

// Consumption sums by (serving centre, home centre, service), each thread's
// own. Most visits are to the card's own centre under one of a few services:
// those keys ("home keys", InDirectTable) are summed in place in dense blocks
// by (centre, service), so the sums every consumption row touches stay in a few
// hundred KB of cache-friendly memory. The other keys grow with centres squared
// (cross-centre visits; 830,000 at 2,000,000 generated cards, bench/README.md):
// they are kept in first-seen order in fixed blocks that never move, found
// through a table of 32-bit entry numbers at most half full (40 to 48 bytes a
// key; growing rebuilds only the table). Either way a key has one sum.
//
// Additions to the other keys are batched: up to kPendingEntries of them wait
// in a small buffer (one entry for a run of the same key, as a card's rows
// often are) and go into the table together, each lookup's table slot and
// entry fetched from memory a few lookups ahead. Found one at a time, every
// such row waited for two cache misses in a table far larger than the caches
// (~400 ns a row at 2,000,000 cards, 4 % of a one-thread run; bench/README.md).
// The sums, and the order in which keys are first seen, are those of the
// additions in the order they were made.
class ConsumptionTotals {
 public:
  ConsumptionTotals() = default;
  // A moved-from table is empty (and usable).
  ConsumptionTotals(ConsumptionTotals&& other) noexcept { *this = std::move(other); }
  ConsumptionTotals& operator=(ConsumptionTotals&& other) noexcept {
    if (this != &other) {
      blocks_ = std::move(other.blocks_);
      slots_ = std::move(other.slots_);
      size_ = std::exchange(other.size_, 0);
      pending_ = std::move(other.pending_);
      home_ = std::move(other.home_);
      home_size_ = std::exchange(other.home_size_, 0);
      other.blocks_.clear();
      other.slots_.clear();
      other.pending_.clear();
      other.home_.clear();
    }
    return *this;
  }
  ConsumptionTotals(const ConsumptionTotals&) = delete;
  ConsumptionTotals& operator=(const ConsumptionTotals&) = delete;

  // The direct table covers the first services of the first centres, served
  // at home: at most 8,192 centres x 16 services; other keys go through the hash.
  static constexpr uint32_t kLocalCentres = 8192;
  static constexpr uint16_t kLocalServices = 16;
  static bool InDirectTable(const ConsumptionKey& key) {
    return key.serving == key.home && static_cast<uint32_t>(key.home) < kLocalCentres && key.service < kLocalServices;
  }
  // Additions to the other keys that wait to go into the table together.
  static constexpr size_t kPendingEntries = 256;

  // Adds `transactions` and `amount` to the sum of `key`, which is a key from
  // now on even when both are zero (a refund's line is written). Throws
  // ConsumptionOverflow (naming the key) when a sum stops fitting: at this
  // call, or at a later one that sends the batch holding it into the table.
  void Add(const ConsumptionKey& key, int64_t transactions, Money amount) {
    ConsumptionSum* sum;
    if (InDirectTable(key)) {
      const size_t at = static_cast<size_t>(key.home) * kLocalServices + key.service;
      sum = HomeSum(at);
    } else {
      if (pending_.empty() || !(pending_.back().key == key)) {
        if (pending_.size() >= kPendingEntries) Flush();
        pending_.push_back(Entry{key, {}});
      }
      sum = &pending_.back().sum;  // a run of the same key may span cards
    }
    AddTo(sum, key, transactions, amount);
  }
  // Adds every sum of `other` to this table's, keys first seen here first.
  void Absorb(ConsumptionTotals&& other);
  // Every key with its sum, each once: the home keys by (centre, service),
  // then the others in the order they were first seen. Sends waiting
  // additions into the table first.
  template <typename Fn>
  void ForEach(Fn&& fn) {
    Flush();
    for (size_t block = 0; block < home_.size(); ++block) {
      if (home_[block] == nullptr) continue;
      const HomeBlock& b = *home_[block];
      for (size_t i = 0; i < kHomeBlockKeys; ++i) {
        if (!b.seen[i]) continue;
        const size_t at = (block << kHomeBlockShift) + i;
        const auto centre = static_cast<int32_t>(at / kLocalServices);
        fn(ConsumptionKey{centre, centre, static_cast<uint16_t>(at % kLocalServices)}, b.sums[i]);
      }
    }
    for (size_t i = 0; i < size_; ++i) {
      const Entry& e = entry(i);
      fn(e.key, e.sum);
    }
  }
  // Sends the waiting additions into the table now, in the order they were
  // made (ForEach and size do it too), so that a sum that stops fitting is
  // found here.
  void Flush();
  // Keys (sending waiting additions into the table first).
  size_t size() {
    Flush();
    return home_size_ + size_;
  }
  // Bytes held (benchmarks and tests).
  size_t bytes() const {
    size_t home_blocks = 0;
    for (const auto& b : home_) home_blocks += b != nullptr;
    return blocks_.size() * sizeof(Entry) * kBlockEntries + slots_.size() * sizeof(uint32_t) +
           home_.capacity() * sizeof(void*) + home_blocks * sizeof(HomeBlock) + pending_.capacity() * sizeof(Entry);
  }

  // Limits: entry numbers are 32-bit, the table at most half full.
  static constexpr size_t kMaxKeys = size_t{1} << 30;

 private:
  struct Entry {
    ConsumptionKey key;
    ConsumptionSum sum;
  };
  static constexpr size_t kBlockShift = 13;  // 8,192 entries (256 KB) a block
  static constexpr size_t kBlockEntries = size_t{1} << kBlockShift;
  // 512 centres x 16 services a home block: 128 KiB of sums and 8 KiB of flags.
  static constexpr size_t kHomeBlockShift = 13;
  static constexpr size_t kHomeBlockKeys = size_t{1} << kHomeBlockShift;
  struct HomeBlock {
    ConsumptionSum sums[kHomeBlockKeys];
    bool seen[kHomeBlockKeys];
  };
  Entry& entry(size_t i) { return blocks_[i >> kBlockShift][i & (kBlockEntries - 1)]; }
  const Entry& entry(size_t i) const { return blocks_[i >> kBlockShift][i & (kBlockEntries - 1)]; }
  // A new table with room for `keys` keys (the entries stay where they are).
  void Grow(size_t keys);
  // Adds to one sum; a sum that stops fitting is named by its key.
  static void AddTo(ConsumptionSum* sum, const ConsumptionKey& key, int64_t transactions, Money amount) {
    sum->transactions += transactions;
    try {
      sum->amount += amount;
    } catch (const MoneyOverflow&) {
      throw ConsumptionOverflow(key);
    }
  }
  ConsumptionSum* HomeSum(size_t at) {
    const size_t block = at >> kHomeBlockShift;
    if (block < home_.size() && home_[block] != nullptr) {
      HomeBlock& b = *home_[block];
      const size_t i = at & (kHomeBlockKeys - 1);
      if (b.seen[i]) return &b.sums[i];
    }
    return &AddHome(at);
  }
  ConsumptionSum& AddHome(size_t at);

  std::vector<std::unique_ptr<Entry[]>> blocks_;
  std::vector<uint32_t> slots_;  // 0: free; otherwise 1 + the entry's number
  size_t size_ = 0;              // keys in blocks_
  std::vector<Entry> pending_;   // additions waiting, at most kPendingEntries
  // Home keys by (centre * kLocalServices + service) >> kHomeBlockShift; allocated as first used.
  std::vector<std::unique_ptr<HomeBlock>> home_;
  size_t home_size_ = 0;  // home keys seen
};

// What a ConsumptionOverflow of `key` tells the user: the centres by id, the service by name.
std::string ConsumptionOverflowMessage(const Registry& registry, const ServiceNames& services,
                                       const ConsumptionKey& key);

// What settling partitions produces, before the merge by centre.
struct PartitionOutput {
  std::vector<AdjustmentLine> adjustments;
  ConsumptionTotals consumption;
  std::vector<HomebedExclusionLine> homebed;
  CountDeltas counts;
  std::optional<CardMonthExplanation> explanation;
  // Scratch reused from partition to partition.
  struct Item {
    uint64_t card;
    uint64_t file_line;
    const char* record;
  };
  std::vector<uint32_t> start;
  std::vector<std::pair<uint32_t, Item>> found;  // (elder offset, item): the scatter reads no record again
  std::vector<Item> items;
  std::vector<const char*> events;
};

// Settles the elders [elder_begin, elder_end) from their events (`records`,
// every EventRecord of the partition, in any order), less those whose row key
// is in `rejected` (sorted: the duplicate check's verdicts). Exceptions go to
// `log`. Throws MoneyOverflow naming the card and row where a sum stops fitting.
void SettlePartition(const SettleContext& ctx, int32_t elder_begin, int32_t elder_end, const ByteBuffer& records,
                     const std::vector<uint64_t>& rejected, ExceptionLog* log, PartitionOutput* out);

// The card-month of semantics.md §5 for a card with `net_deposit` in `month`;
// `explain` (optional) receives one step per fact and check.
CardMonth EvaluateCardMonth(const Policy& policy, const Registry& reg, int32_t card, YearMonth month, Money net_deposit,
                            std::vector<ExplainStep>* explain);

}  // namespace carecard

#endif  // CARECARD_ENGINE_ELDER_SETTLE_H_
