#include "engine/elder_settle.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <cassert>
#include <set>
#include <stdexcept>
#include <tuple>

namespace carecard {

SettledMonths SettledMonths::For(const PayoutPeriod& period, const BookState& book) {
  SettledMonths m;
  if (book.first_closed && book.latest_closed) {
    for (YearMonth x = book.first_closed->first_month(); x <= book.latest_closed->last_month(); x = x.Next()) {
      m.closed.push_back(x);
    }
  }
  for (YearMonth x = period.first_month(); x <= period.last_month(); x = x.Next()) m.current.push_back(x);
  const YearMonth first = book.first_closed ? book.first_closed->first_month() : period.first_month();
  for (YearMonth x = first; x <= period.last_month(); x = x.Next()) m.all.push_back(x);
  return m;
}

ConsumptionSum& ConsumptionTotals::AddHome(size_t at) {
  const size_t block = at >> kHomeBlockShift;
  assert(block < (size_t{kLocalCentres} * kLocalServices) >> kHomeBlockShift);
  if (block >= home_.size()) home_.resize(block + 1);
  if (home_[block] == nullptr) home_[block] = std::make_unique<HomeBlock>();  // value-initialized: zero sums, none seen
  HomeBlock& b = *home_[block];
  const size_t i = at & (kHomeBlockKeys - 1);
  if (!b.seen[i]) {
    b.seen[i] = true;
    ++home_size_;
  }
  return b.sums[i];
}

std::string ConsumptionOverflowMessage(const Registry& registry, const ServiceNames& services,
                                       const ConsumptionKey& key) {
  return "the consumption at centre '" + std::string(registry.center_id(key.serving)) + "' of cards of centre '" +
         std::string(registry.center_id(key.home)) + "' under service '" + std::string(services.name(key.service)) +
         "' adds up to more than 92,233,720,368,547,758.07 yuan, the most the engine holds exactly";
}

void ConsumptionTotals::Flush() {
  const size_t n = pending_.size();
  if (n == 0) return;
  // Whatever happens below, no addition waits to be made twice.
  struct ClearWhenDone {
    std::vector<Entry>& pending;
    ~ClearWhenDone() { pending.clear(); }
  } clear_when_done{pending_};
  // Room for every waiting key to be new, so that the slots computed below
  // stay where they are while the batch goes in.
  if ((size_ + n + 1) * 2 > slots_.size()) Grow(size_ + n);
  const size_t mask = slots_.size() - 1;
  std::array<uint32_t, kPendingEntries> first_slot;  // each waiting key's place in the table
  // Three stages a few lookups apart: the slot's line is fetched, then the
  // entry it names, then the lookup runs on what is by then in cache. A key
  // added in between only makes a fetch useless: each lookup reads the table
  // as it is when it runs.
  constexpr size_t kAhead = 16;
  for (size_t i = 0; i < n + 2 * kAhead; ++i) {
    if (i < n) {
      first_slot[i] = static_cast<uint32_t>(ConsumptionKeyHash()(pending_[i].key) & mask);
      __builtin_prefetch(&slots_[first_slot[i]]);
    }
    if (i >= kAhead && i - kAhead < n) {
      const uint32_t e = slots_[first_slot[i - kAhead]];
      if (e != 0) __builtin_prefetch(&entry(e - 1));
    }
    if (i < 2 * kAhead || i - 2 * kAhead >= n) continue;
    const Entry& add = pending_[i - 2 * kAhead];
    size_t at = first_slot[i - 2 * kAhead];
    while (slots_[at] != 0 && !(entry(slots_[at] - 1).key == add.key)) at = (at + 1) & mask;
    if (slots_[at] == 0) {  // a new key: the next entry (blocks are value-initialized, so its sum is zero)
      if (size_ >= kMaxKeys) throw std::length_error("more than 2^30 consumption keys (centre, centre, service)");
      if ((size_ & (kBlockEntries - 1)) == 0) blocks_.push_back(std::make_unique<Entry[]>(kBlockEntries));
      entry(size_).key = add.key;
      slots_[at] = static_cast<uint32_t>(++size_);
    }
    AddTo(&entry(slots_[at] - 1).sum, add.key, add.sum.transactions, add.sum.amount);
  }
}

void ConsumptionTotals::Grow(size_t keys) {
  // Only the table is rebuilt: the entries stay where they are.
  std::vector<uint32_t>().swap(slots_);  // let the old table go first: it is never needed again
  // A quarter full after, as far as the keys held go; at most half full once
  // `keys` are in. (Four slots for each of `keys` would cross a power of two
  // early, for keys that are mostly there already: 16 MB where 8 do.)
  slots_.assign(std::bit_ceil(std::max({size_t{64}, 4 * size_, 2 * keys + 2})), 0);
  const size_t mask = slots_.size() - 1;
  for (size_t n = 0; n < size_; ++n) {
    size_t i = ConsumptionKeyHash()(entry(n).key) & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = static_cast<uint32_t>(n + 1);
  }
}

void ConsumptionTotals::Absorb(ConsumptionTotals&& other) {
  if (&other == this) return;
  if (size() == 0) {
    *this = std::move(other);
    return;
  }
  other.ForEach([&](const ConsumptionKey& key, const ConsumptionSum& sum) { Add(key, sum.transactions, sum.amount); });
  Flush();
  other = ConsumptionTotals();
}

namespace {

std::string Quote(std::string_view v) { return "'" + std::string(v) + "'"; }

std::optional<int> AssessmentLevel(const Registry& reg, const Elder& elder, YearMonth month, int valid_months,
                                   ExplainStep* why) {
  const Date last = month.last_day();
  const Assessment* latest = nullptr;
  for (const auto& a : reg.AssessmentsOf(elder)) {
    if (a.assessed_on > last) continue;
    if (!latest || a.assessed_on > latest->assessed_on ||
        (a.assessed_on == latest->assessed_on && a.level > latest->level)) {
      latest = &a;
    }
  }
  if (!latest) {
    if (why) *why = ExplainStep{ExplainStepKind::kAssessmentNone, {last.ToString()}};
    return std::nullopt;
  }
  const Date valid_through = AddMonthsClamped(latest->assessed_on, valid_months);
  if (valid_through < last) {
    if (why) {
      *why = ExplainStep{ExplainStepKind::kAssessmentExpired,
                         {std::to_string(latest->level), latest->assessed_on.ToString(), valid_through.ToString()}};
    }
    return std::nullopt;
  }
  if (why) {
    *why = ExplainStep{ExplainStepKind::kAssessmentValid,
                       {std::to_string(latest->level), latest->assessed_on.ToString(), valid_through.ToString()}};
  }
  return latest->level;
}

int ActiveAliveDays(const Card& card, const Elder& elder, YearMonth month) {
  Date from = std::max(month.first_day(), card.issued_on);
  Date to = month.last_day();
  if (card.closed_on) to = std::min(to, *card.closed_on);
  if (elder.death_date) to = std::min(to, *elder.death_date);
  return to < from ? 0 : to.days() - from.days() + 1;
}

std::string FlagsText(uint32_t flags) {
  std::string out;
  for (int i = 0; i < kPersonFlagCount; ++i) {
    if (flags & (1u << i)) out += (out.empty() ? "" : ", ") + std::string(PersonFlagName(i));
  }
  return out;
}

int TxnClass(TxnKind k) {
  switch (k) {
    case TxnKind::kDeposit:
    case TxnKind::kReversal: return 0;
    case TxnKind::kRefund: return 1;
    case TxnKind::kConsumption: return 2;
  }
  return 0;
}

// One event of a card while it is settled.
struct Event {
  // From the decoded view: `Event e{}` would first zero all 104 bytes (a `rep stos`
  // per row, 17 % of SettleCard's samples) before every field is set anyway.
  explicit Event(const EventView& view) : v(view) {}
  EventView v;
  Date local;       // in the policy's zone
  YearMonth month;  // of `local`
  Date month_start;
  int32_t orig = -1;  // reversal/refund: index of the original among the card's events
  int32_t serving = -1;
  uint16_t service = 0;
  bool counted = true;   // deposit or reversal: counts toward subsidies
  bool accepted = true;  // false: rejected here (unknown_ref, over_reversal)
  Money remaining;       // deposit/consumption: not yet reversed or refunded
  TxnKind kind() const { return v.h.kind(); }
  Money amount() const { return Money::FromFen(v.h.amount_fen); }
};

class PartitionSettler {
 public:
  PartitionSettler(const SettleContext& ctx, ExceptionLog* log, PartitionOutput* out)
      : ctx_(ctx), reg_(*ctx.registry), log_(log), out_(out) {}

  void SettleElder(int32_t elder_index, std::span<const char* const> events) {
    const Elder& elder = reg_.elder(elder_index);
    // events are sorted by card, then file order
    size_t at = 0;
    for (int32_t card : reg_.CardsOf(elder)) {
      size_t end = at;
      while (end < events.size() && CardOf(events[end]) == card) ++end;
      SettleCard(card, elder, events.subspan(at, end - at));
      at = end;
    }
    if (at != events.size()) throw std::logic_error("events of a card that is not its elder's");
    if (!ctx_.row_checks_only) HomebedExclusions(elder);
  }

 private:
  static int32_t CardOf(const char* record) {
    int32_t card;
    std::memcpy(&card, record + offsetof(EventHeader, card), sizeof card);
    return card;
  }
  std::string_view FileName(uint16_t file) const { return (*ctx_.files)[file]; }

  void SettleCard(int32_t card_index, const Elder& elder, std::span<const char* const> records) {
    current_ = nullptr;
    try {
      CheckRows(card_index, elder, records);
      if (card_index == ctx_.explain_card) Explain(card_index, elder);
      if (ctx_.row_checks_only) return;
      SettleSums(card_index, elder);
    } catch (const ConsumptionOverflow&) {
      throw;  // a sum over many cards' rows, not this card's: SettlePartition names it
    } catch (const MoneyOverflow&) {
      // Name the card and the row at which its sums stopped fitting, so the data can be checked.
      std::string where;
      if (current_) where = " at " + std::string(FileName(current_->v.h.file)) + " line " + std::to_string(current_->v.h.line);
      throw MoneyOverflow("the amounts of card '" + std::string(reg_.card_no(card_index)) + "'" + where +
                          " add up to more than 92,233,720,368,547,758.07 yuan, the most the engine holds exactly");
    }
  }

  void Reject(Event& e, ExceptionCode code, const std::string& detail, int32_t card_index) {
    e.accepted = false;
    CountDelta& c = out_->counts[e.v.h.file];
    --c.accepted;
    ++c.rejected;
    log_->Add(code, e.v.h.file, e.v.h.line, e.v.txn_id, reg_.card_no(card_index), {},
              e.month.index(), detail);
  }

  void Warn(const Event& e, ExceptionCode code, const std::string& detail, int32_t card_index) {
    log_->Add(code, e.v.h.file, e.v.h.line, e.v.txn_id, reg_.card_no(card_index), {}, e.month.index(), detail);
  }

  // References and row warnings, in file order (semantics.md §8).
  void CheckRows(int32_t card_index, const Elder& elder, std::span<const char* const> records) {
    const Card& card = reg_.card(card_index);
    events_.clear();
    events_.reserve(records.size());
    index_.clear();
    indexed_ = 0;
    for (const char* r : records) {
      Event& e = events_.emplace_back(EventView::Decode(r));
      e.local = e.v.h.at().LocalDate(ctx_.zone);
      // A card's rows fall in a few months: the month of the last row is the likely one.
      if (!(month_start_ <= e.local && e.local < month_end_)) {
        const Date::Civil civil = e.local.ToCivil();
        month_ = YearMonth::Of(civil.year, civil.month);
        month_start_ = e.local.AddDays(1 - civil.day);
        month_end_ = month_.last_day().AddDays(1);
      }
      e.month = month_;
      e.month_start = month_start_;
      e.serving = e.v.h.serving_center;
      e.service = e.v.h.service;
      e.remaining = e.amount();
    }
    for (size_t i = 0; i < events_.size(); ++i) {
      Event& e = events_[i];
      current_ = &e;
      const TxnKind kind = e.kind();
      if (kind == TxnKind::kReversal || kind == TxnKind::kRefund) {
        const TxnKind wanted = kind == TxnKind::kReversal ? TxnKind::kDeposit : TxnKind::kConsumption;
        const int32_t orig = e.v.ref.empty() ? -1 : FindAccepted(e.v.ref, i);
        if (orig < 0 || events_[static_cast<size_t>(orig)].kind() != wanted) {
          Reject(e, ExceptionCode::kUnknownRef,
                 "ref_txn_id " + Quote(e.v.ref) + " is not an accepted " +
                     (kind == TxnKind::kReversal ? "deposit" : "consumption") + " of card " +
                     Quote(reg_.card_no(card_index)) + " earlier in file order",
                 card_index);
          continue;
        }
        Event& o = events_[static_cast<size_t>(orig)];
        if (e.amount() > o.remaining) {
          Reject(e, ExceptionCode::kOverReversal,
                 "amount " + e.amount().ToString() + " is more than the " + o.remaining.ToString() + " that remains of " +
                     Quote(e.v.ref),
                 card_index);
          continue;
        }
        o.remaining = o.remaining - e.amount();
        e.orig = orig;
        if (kind == TxnKind::kRefund) {
          e.serving = o.serving;  // attributed to the consumption's station and service
          e.service = o.service;
        } else {
          e.counted = o.counted;
        }
      } else if (kind == TxnKind::kConsumption) {
        if (e.serving != card.center) {
          // One row in ten or so: the detail is built in a buffer kept from row to row.
          detail_.assign("served by centre '").append(reg_.center_id(e.serving)).append("', card belongs to '");
          detail_.append(reg_.center_id(card.center)).push_back('\'');
          Warn(e, ExceptionCode::kCrossCenterConsumption, detail_, card_index);
        }
      } else {  // deposit
        if (!card.ActiveOn(e.local)) {
          e.counted = false;
          Warn(e, ExceptionCode::kDepositOnInactiveCard,
               "card is not active on " + e.local.ToString() + "; not counted toward a subsidy", card_index);
        } else if (!elder.AliveOn(e.local)) {
          e.counted = false;
          Warn(e, ExceptionCode::kDepositAfterDeath,
               "holder died on " + elder.death_date->ToString() + ", deposit dated " + e.local.ToString() +
                   "; not counted toward a subsidy",
               card_index);
        }
      }
    }
    current_ = nullptr;
  }

  // The accepted event before `before` whose txn_id is `id`, or -1. Within a
  // family only one row can be accepted with an id, and reversals and refunds
  // are never originals of the right kind, so the first match decides.
  int32_t FindAccepted(std::string_view id, size_t before) {
    if (before <= kLinearSearchEvents) {
      for (size_t j = 0; j < before; ++j) {
        if (events_[j].accepted && events_[j].v.txn_id == id && SameFamily(events_[j], events_[before])) {
          return static_cast<int32_t>(j);
        }
      }
      return -1;
    }
    // A card with very many rows: index its originals as they go by, then look up.
    for (; indexed_ < before; ++indexed_) {
      const Event& e = events_[indexed_];
      const TxnKind k = e.kind();
      if (e.accepted && (k == TxnKind::kDeposit || k == TxnKind::kConsumption)) {
        index_.emplace(std::make_pair(Family(e), e.v.txn_id), static_cast<int32_t>(indexed_));
      }
    }
    auto it = index_.find(std::make_pair(Family(events_[before]), id));
    return it == index_.end() ? -1 : it->second;
  }
  static bool Family(const Event& e) { return e.kind() == TxnKind::kDeposit || e.kind() == TxnKind::kReversal; }
  static bool SameFamily(const Event& a, const Event& b) { return Family(a) == Family(b); }

  void SettleSums(int32_t card_index, const Elder& elder) {
    const Card& card = reg_.card(card_index);
    const auto& months = ctx_.months.all;
    // Net deposits of every settled month in one pass over the card's events.
    nets_.assign(months.size(), Money());
    auto slot = [&](YearMonth m) -> Money* {
      if (months.empty() || m < months.front() || m > months.back()) return nullptr;
      return &nets_[static_cast<size_t>(m.index() - months.front().index())];
    };
    for (Event& e : events_) {
      if (!e.accepted || !e.counted) continue;
      current_ = &e;
      if (e.kind() == TxnKind::kDeposit) {
        if (Money* net = slot(e.month)) *net += e.amount();
      } else if (e.kind() == TxnKind::kReversal) {
        if (Money* net = slot(events_[static_cast<size_t>(e.orig)].month)) *net -= e.amount();
      }
    }
    current_ = nullptr;
    subsidies_.clear();
    recomputed_closed_.clear();
    for (size_t mi = 0; mi < months.size(); ++mi) {
      const YearMonth m = months[mi];
      if (!card.ActiveIn(m)) continue;
      const CardMonth cm = EvaluateCardMonth(*ctx_.policy, reg_, card_index, m, nets_[mi], nullptr);
      subsidies_.push_back(Credit{m.last_day(), cm.subsidy});
      if (ctx_.period.Contains(m)) {
        if (cm.status == CardMonthStatus::kDuplicateCard) {
          log_->Add(ExceptionCode::kDuplicateCard, ctx_.cards_file, card.line, {}, reg_.card_no(card_index),
                    reg_.person_id(elder), m.index(), "the elder has an earlier-issued card active this month");
        }
        if (static_cast<size_t>(card_index) >= ctx_.card_slot_count) throw std::logic_error("a card-month without its slot");
        ctx_.card_month_slots[static_cast<size_t>(m.index() - ctx_.period.first_month().index()) * ctx_.card_slot_count +
                              static_cast<size_t>(card_index)] = cm;
      } else if (!ctx_.months.closed.empty() && m <= ctx_.months.closed.back()) {
        recomputed_closed_.push_back(cm);
      }
    }
    Balances(card_index, card);
    Adjustments(card_index, card);
  }

  // Walks the card's events in time order: overdrafts, platform balance checks,
  // statement flows and consumption by centre (semantics.md §6).
  void Balances(int32_t card_index, const Card& card) {
    // Time order (semantics.md §6): instant, then deposits and reversals, refunds, consumption, then txn_id.
    keys_.clear();
    for (size_t i = 0; i < events_.size(); ++i) {
      const Event& e = events_[i];
      if (!e.accepted) continue;
      keys_.push_back(OrderKey{e.v.h.at_seconds,
                               static_cast<uint32_t>(e.v.h.nanos()) << 2 | static_cast<uint32_t>(TxnClass(e.kind())),
                               static_cast<uint32_t>(i)});
    }
    std::sort(keys_.begin(), keys_.end(), [&](const OrderKey& a, const OrderKey& b) {
      if (a.seconds != b.seconds) return a.seconds < b.seconds;
      if (a.nanos_class != b.nanos_class) return a.nanos_class < b.nanos_class;
      return events_[a.index].v.txn_id < events_[b.index].v.txn_id;
    });
    const auto checks = reg_.BalancesOf(card_index);
    Money balance;
    Flows cumulative;
    size_t next_subsidy = 0;
    size_t next_check = 0;
    auto credit_through = [&](Date day) {  // subsidies of months ending on or before `day`
      while (next_subsidy < subsidies_.size() && subsidies_[next_subsidy].last_day <= day) {
        balance += subsidies_[next_subsidy].subsidy;
        cumulative.subsidies += subsidies_[next_subsidy].subsidy;
        ++next_subsidy;
      }
    };
    auto check_through = [&](Date day) {  // platform balances reported for days before `day`
      while (next_check < checks.size()) {
        const PlatformBalance& pb = checks[next_check];
        if (!(pb.as_of < day)) break;
        credit_through(pb.as_of);
        if (pb.balance != balance) {
          log_->Add(ExceptionCode::kBalanceMismatch, pb.file, pb.line, {}, reg_.card_no(card_index), {},
                    YearMonth::Of(pb.as_of).index(),
                    "platform reports " + pb.balance.ToString() + " at the end of " + pb.as_of.ToString() +
                        ", the engine computes " + balance.ToString());
        }
        ++next_check;
      }
    };
    for (const OrderKey& key : keys_) {
      Event& t = events_[key.index];
      current_ = &t;
      if (next_check < checks.size()) check_through(t.local);  // most cards have no platform balances: no call
      credit_through(t.month_start.AddDays(-1));
      const YearMonth month = t.month;
      const bool in_period = ctx_.period.Contains(month);
      const Money amount = t.amount();
      switch (t.kind()) {
        case TxnKind::kDeposit:
          balance += amount;
          cumulative.deposits += amount;
          break;
        case TxnKind::kReversal:
          balance -= amount;
          cumulative.reversals += amount;
          break;
        case TxnKind::kRefund:
          balance += amount;
          cumulative.refunds += amount;
          if (in_period) out_->consumption.Add({t.serving, card.center, t.service}, 0, -amount);
          break;
        case TxnKind::kConsumption:
          balance -= amount;
          cumulative.consumption += amount;
          if (in_period) out_->consumption.Add({t.serving, card.center, t.service}, 1, amount);
          if (balance.is_negative()) {
            log_->Add(ExceptionCode::kOverdraft, t.v.h.file, t.v.h.line, t.v.txn_id, reg_.card_no(card_index), {},
                      month.index(), "balance after this consumption is " + balance.ToString());
          }
          break;
      }
    }
    current_ = nullptr;
    check_through(ctx_.period.last_month().last_day().AddDays(1));
    credit_through(ctx_.period.last_month().last_day());
    assert(next_subsidy == subsidies_.size());
    // Invariant: the running balance is the sum of the flows.
    if (balance != cumulative.Net()) {
      throw std::logic_error("balance walk disagrees with its flows for card " + std::string(reg_.card_no(card_index)));
    }
    Statement(card_index, cumulative);
  }

  void Statement(int32_t card_index, const Flows& cumulative) {
    StatementLine line;
    line.card = card_index;
    const int32_t b = ctx_.book_card_of.empty() ? -1 : ctx_.book_card_of[static_cast<size_t>(card_index)];
    Flows closed_sum;
    if (b >= 0) {
      const BookState::Card& closed = ctx_.book->cards[static_cast<size_t>(b)];
      if (closed.has_statement) {
        line.opening = closed.last_closing;
        closed_sum = closed.flows_sum;
      }
    }
    line.flows = cumulative - closed_sum;
    if (line.closing() != cumulative.Net()) {
      throw std::runtime_error("the book's closed statements for card " + std::string(reg_.card_no(card_index)) +
                               " do not add up to their last closing balance; the book has been altered");
    }
    if (!line.opening.is_zero() || !line.flows.IsZero() || !line.closing().is_zero()) {
      if (static_cast<size_t>(card_index) >= ctx_.card_slot_count) throw std::logic_error("a statement without its slot");
      ctx_.statement_slots[static_cast<size_t>(card_index)] = line;
    }
  }

  // Closed months recomputed from today's inputs against what the book holds (semantics.md §7).
  void Adjustments(int32_t card_index, const Card& card) {
    const int32_t b = ctx_.book_card_of.empty() ? -1 : ctx_.book_card_of[static_cast<size_t>(card_index)];
    std::span<const BookState::RecordedMonth> recorded;
    if (b >= 0) recorded = ctx_.book->MonthsOf(ctx_.book->cards[static_cast<size_t>(b)]);
    const std::string_view card_no = reg_.card_no(card_index);
    const std::string center(reg_.center_id(card.center));
    size_t r = 0;
    for (const CardMonth& cm : recomputed_closed_) {
      // Recorded months before this one that are not recomputed any more: removed.
      for (; r < recorded.size() && recorded[r].month < cm.month.index(); ++r) Removed(recorded[r], card_no, center);
      Money was;
      if (r < recorded.size() && recorded[r].month == cm.month.index()) was = recorded[r++].subsidy;
      if (was == cm.subsidy) continue;
      out_->adjustments.push_back(AdjustmentLine{cm.month, std::string(card_no), center, was, cm.subsidy, cm.subsidy - was,
                                                 CardMonthStatusName(cm.status)});
    }
    for (; r < recorded.size(); ++r) Removed(recorded[r], card_no, center);
  }

  void Removed(const BookState::RecordedMonth& m, std::string_view card_no, const std::string& center) {
    if (m.subsidy.is_zero()) return;
    const YearMonth month = YearMonth::FromIndex(m.month);
    const auto& closed = ctx_.months.closed;
    if (!std::binary_search(closed.begin(), closed.end(), month)) return;
    out_->adjustments.push_back(AdjustmentLine{month, std::string(card_no), center, m.subsidy, Money(), -m.subsidy, "removed"});
  }

  void HomebedExclusions(const Elder& elder) {
    const auto enrollments = reg_.EnrollmentsOf(elder);
    for (YearMonth m : ctx_.months.current) {
      std::set<std::string_view> institutions;
      for (const auto& gov : enrollments) {
        if (gov.program != Program::kGovHomeService || !gov.Overlaps(m.first_day(), m.last_day())) continue;
        for (const auto& bed : enrollments) {
          if (bed.program == Program::kHomeBed && bed.institution == gov.institution &&
              bed.Overlaps(m.first_day(), m.last_day())) {
            institutions.insert(reg_.institution_id(gov.institution));
          }
        }
      }
      for (const auto& inst : institutions) {
        out_->homebed.push_back(
            HomebedExclusionLine{m, std::string(inst), std::string(reg_.person_id(elder)), "gov_home_service"});
      }
    }
  }

  // The facts and checks behind one card-month, for `explain`.
  void Explain(int32_t card_index, const Elder& elder) {
    CardMonthExplanation x;
    auto say = [&](ExplainStepKind kind, std::vector<std::string> args = {}) {
      x.steps.push_back(ExplainStep{kind, std::move(args)});
    };
    const Card& card = reg_.card(card_index);
    const YearMonth month = ctx_.explain_month;
    say(ExplainStepKind::kCard, {std::string(reg_.card_no(card_index)), std::to_string(card.card_type),
                                 std::string(reg_.center_id(card.center)), card.issued_on.ToString(),
                                 card.closed_on ? card.closed_on->ToString() : std::string()});
    say(ExplainStepKind::kHolder, {std::string(reg_.person_id(elder)), elder.birth_date.ToString(),
                                   elder.rural ? "rural" : "urban",
                                   elder.death_date ? elder.death_date->ToString() : std::string(), FlagsText(elder.flags)});
    for (const auto& a : reg_.AssessmentsOf(elder)) {
      say(ExplainStepKind::kAssessmentOnFile, {std::to_string(a.level), a.assessed_on.ToString()});
    }
    if (reg_.AssessmentsOf(elder).empty()) say(ExplainStepKind::kNoAssessmentOnFile);
    for (const auto& e : reg_.EnrollmentsOf(elder)) {
      say(ExplainStepKind::kEnrollmentOnFile,
          {std::string(ProgramName(e.program)), std::string(reg_.institution_id(e.institution)), e.start_on.ToString(),
           e.end_on ? e.end_on->ToString() : std::string(), std::string(ChoiceName(e.choice))});
    }
    // The deposits dated in the month and the reversals of them, whenever dated, in file order.
    Money net;
    for (const Event& t : events_) {
      if (!t.accepted) continue;
      const TxnKind kind = t.kind();
      if (kind != TxnKind::kDeposit && kind != TxnKind::kReversal) continue;
      const Event& dated = kind == TxnKind::kReversal ? events_[static_cast<size_t>(t.orig)] : t;
      if (dated.month != month) continue;
      if (t.counted) net = kind == TxnKind::kDeposit ? net + t.amount() : net - t.amount();
      std::vector<std::string> args{std::string(t.v.txn_id), t.amount().ToString(), t.local.ToString()};
      if (kind == TxnKind::kReversal) {
        args.emplace_back(dated.v.txn_id);
        if (t.counted) args.push_back(dated.local.ToString());
        say(t.counted ? ExplainStepKind::kReversalCounted : ExplainStepKind::kReversalNotCounted, std::move(args));
      } else if (t.counted) {
        say(ExplainStepKind::kDepositCounted, std::move(args));
      } else if (!card.ActiveOn(t.local) || !elder.death_date) {
        say(ExplainStepKind::kDepositNotCountedInactive, std::move(args));
      } else {
        args.push_back(elder.death_date->ToString());
        say(ExplainStepKind::kDepositNotCountedDeceased, std::move(args));
      }
    }
    if (!card.ActiveIn(month)) {
      say(ExplainStepKind::kCardNotActive, {month.ToString()});
    } else {
      x.found = true;
      x.result = EvaluateCardMonth(*ctx_.policy, reg_, card_index, month, net, &x.steps);
    }
    out_->explanation = std::move(x);
  }

  static constexpr size_t kLinearSearchEvents = 64;

  const SettleContext& ctx_;
  const Registry& reg_;
  ExceptionLog* log_;
  PartitionOutput* out_;
  // Reused between cards.
  std::vector<Event> events_;
  std::string detail_;  // a warning's detail, built in place
  struct OrderKey {
    int64_t seconds;
    uint32_t nanos_class;
    uint32_t index;
  };
  std::vector<OrderKey> keys_;
  std::vector<Money> nets_;
  struct Credit {
    Date last_day;  // of the month: credited at the end of it
    Money subsidy;
  };
  std::vector<Credit> subsidies_;
  // The month of the last event (CheckRows).
  YearMonth month_;
  Date month_start_ = Date::FromDays(1), month_end_ = Date::FromDays(0);
  std::vector<CardMonth> recomputed_closed_;
  std::map<std::pair<bool, std::string_view>, int32_t> index_;
  size_t indexed_ = 0;
  const Event* current_ = nullptr;  // the row being summed, for an overflow's message
};

}  // namespace

CardMonth EvaluateCardMonth(const Policy& policy, const Registry& reg, int32_t card_index, YearMonth month,
                            Money net_deposit, std::vector<ExplainStep>* explain) {
  const Card& card = reg.card(card_index);
  const Elder& elder = reg.elder(card.elder);
  auto say = [&](ExplainStepKind kind, std::vector<std::string> args = {}) {
    explain->push_back(ExplainStep{kind, std::move(args)});
  };
  CardMonth cm;
  cm.month = month;
  cm.card = card_index;
  cm.net_deposit = net_deposit;
  if (explain) say(ExplainStepKind::kNetDeposit, {month.ToString(), cm.net_deposit.ToString()});

  const PolicyVersion* version = policy.VersionFor(month);
  if (!version) {
    if (explain) say(ExplainStepKind::kNoPolicyInForce, {month.ToString()});
    cm.status = CardMonthStatus::kIneligible;
    cm.reason = CardMonthReason::kNoPolicyInForce;
    return cm;
  }
  cm.version = static_cast<int16_t>(version - policy.versions.data());
  if (explain) {
    say(ExplainStepKind::kVersionInForce,
        {policy.RuleVersion(*version), version->from.ToString(), version->to ? version->to->ToString() : std::string()});
  }

  // 1. Holder alive on the month's first day.
  if (elder.death_date && *elder.death_date < month.first_day()) {
    if (explain) say(ExplainStepKind::kDeceased, {month.first_day().ToString(), elder.death_date->ToString()});
    cm.status = CardMonthStatus::kDeceased;
    return cm;
  }
  if (explain) {
    if (elder.death_date) {
      say(ExplainStepKind::kAliveDiedInMonth, {month.first_day().ToString(), elder.death_date->ToString()});
    } else {
      say(ExplainStepKind::kAlive, {month.first_day().ToString()});
    }
  }

  // 2. One card per elder: the earliest issued (ties: smallest card_no).
  const auto cards = reg.CardsOf(elder);
  int32_t kept = -1;
  for (int32_t other : cards) {
    const Card& o = reg.card(other);
    if (!o.ActiveIn(month)) continue;
    if (kept < 0) {
      kept = other;
      continue;
    }
    const Card& k = reg.card(kept);
    if (o.issued_on < k.issued_on || (o.issued_on == k.issued_on && reg.card_no(other) < reg.card_no(kept))) kept = other;
  }
  if (kept != card_index) {
    if (explain) say(ExplainStepKind::kDuplicateCard, {std::string(reg.card_no(kept)), reg.card(kept).issued_on.ToString()});
    cm.status = CardMonthStatus::kDuplicateCard;
    return cm;
  }
  if (explain) {
    int active = 0;
    for (int32_t other : cards) active += reg.card(other).ActiveIn(month) ? 1 : 0;
    say(ExplainStepKind::kElderCard, {std::to_string(active)});
  }

  // 3. Exclusions, in the order written.
  const auto enrollments = reg.EnrollmentsOf(elder);
  for (const auto& exclusion : version->exclusions) {
    auto choice_name = [&] { return exclusion.choice ? std::string(ChoiceName(*exclusion.choice)) : std::string(); };
    if (!exclusion.AppliesTo(card.card_type)) {
      if (explain) {
        say(ExplainStepKind::kExclusionNotForType,
            {std::string(ProgramName(exclusion.program)), choice_name(), std::to_string(card.card_type)});
      }
      continue;
    }
    bool excluded = false;
    for (const auto& e : enrollments) {
      if (e.program != exclusion.program || !e.Overlaps(month.first_day(), month.last_day())) continue;
      if (exclusion.choice && e.choice != *exclusion.choice) continue;
      cm.status = CardMonthStatus::kExcluded;
      cm.reason = ExcludedBy(exclusion.program);
      if (explain) {
        say(ExplainStepKind::kExcluded, {std::string(ProgramName(exclusion.program)), choice_name(),
                                         std::string(reg.institution_id(e.institution)), e.start_on.ToString(),
                                         e.end_on ? e.end_on->ToString() : std::string()});
      }
      excluded = true;
      break;
    }
    if (excluded) return cm;
    if (explain) say(ExplainStepKind::kExclusionNotEnrolled, {std::string(ProgramName(exclusion.program)), choice_name()});
  }
  if (explain && version->exclusions.empty()) say(ExplainStepKind::kNoExclusions);

  // 4. Eligibility facts.
  HolderFacts facts;
  facts.age = CompletedYears(elder.birth_date, month.last_day());
  ExplainStep assessment_why;
  facts.assessment = AssessmentLevel(reg, elder, month, version->assessment_valid_months, explain ? &assessment_why : nullptr);
  facts.rural = elder.rural;
  facts.urban = !elder.rural;
  facts.flags = elder.flags;
  if (explain) {
    say(ExplainStepKind::kAge, {month.last_day().ToString(), std::to_string(facts.age), elder.birth_date.ToString()});
    explain->push_back(std::move(assessment_why));
    say(ExplainStepKind::kHukouFact, {facts.rural ? "rural" : "urban"});
    say(ExplainStepKind::kFlagsFact, {FlagsText(elder.flags)});
    if (!version->allow_lower_tier && card.card_type > 1) {
      say(ExplainStepKind::kLowerTierNotAllowed, {std::to_string(card.card_type)});
    }
  }

  // 5. Tier: the highest type up to the card's own that the holder is eligible
  // for and that the month's net deposit reaches.
  bool eligible_somewhere = false;
  const int lowest = version->allow_lower_tier ? 1 : card.card_type;
  for (int t = card.card_type; t >= lowest; --t) {
    const CardTypeRule* rule = version->FindCardType(t);
    if (!rule) {
      if (explain) say(ExplainStepKind::kTypeNotInVersion, {std::to_string(t)});
      continue;
    }
    const bool eligible = rule->eligible->Evaluate(facts);
    if (explain) {
      say(eligible ? ExplainStepKind::kEligible : ExplainStepKind::kNotEligible,
          {std::to_string(t), rule->name, rule->eligible->source(), rule->eligible->Explain(facts)});
    }
    if (!eligible) continue;
    eligible_somewhere = true;
    if (cm.net_deposit >= rule->min_monthly_deposit) {
      cm.tier = static_cast<int8_t>(t);
      cm.subsidy = rule->monthly_subsidy;
      cm.status = CardMonthStatus::kPaid;
      if (explain) {
        say(ExplainStepKind::kThresholdMet, {std::to_string(t), cm.net_deposit.ToString(),
                                             rule->min_monthly_deposit.ToString(), rule->monthly_subsidy.ToString()});
      }
      break;
    }
    if (explain) {
      say(ExplainStepKind::kThresholdNotMet,
          {std::to_string(t), cm.net_deposit.ToString(), rule->min_monthly_deposit.ToString()});
    }
  }
  if (cm.tier == 0) {
    cm.status = eligible_somewhere ? CardMonthStatus::kBelowThreshold : CardMonthStatus::kIneligible;
    if (!eligible_somewhere) cm.reason = CardMonthReason::kNotEligible;
    if (explain) say(eligible_somewhere ? ExplainStepKind::kBelowThreshold : ExplainStepKind::kIneligible);
    return cm;
  }
  // 6. Proration by days active and alive.
  if (version->proration == Proration::kByDays) {
    const int days = ActiveAliveDays(card, elder, month);
    cm.subsidy = cm.subsidy.MultiplyRatio(days, month.days(), version->rounding);
    if (explain) say(ExplainStepKind::kProrated, {std::to_string(days), std::to_string(month.days()), cm.subsidy.ToString()});
  }
  if (explain) say(ExplainStepKind::kPaid, {std::to_string(cm.tier), cm.subsidy.ToString()});
  return cm;
}

void SettlePartition(const SettleContext& ctx, int32_t elder_begin, int32_t elder_end, const ByteBuffer& records,
                     const std::vector<uint64_t>& rejected, ExceptionLog* log, PartitionOutput* out) {
  // The partition's events, less the rejected, by elder (a counting sort),
  // then within each elder by card (an elder's cards are in cards.csv order,
  // which is index order) and file order.
  using Item = PartitionOutput::Item;
  const auto elders = static_cast<size_t>(elder_end - elder_begin);
  std::vector<uint32_t>& start = out->start;
  std::vector<std::pair<uint32_t, Item>>& found = out->found;  // (elder offset, item)
  std::vector<Item>& items = out->items;
  std::vector<const char*>& events = out->events;
  start.assign(elders + 1, 0);
  found.clear();
  for (size_t at = 0; at < records.size();) {
    EventHeader h;
    std::memcpy(&h, records.data() + at, sizeof h);
    if (rejected.empty() || !std::binary_search(rejected.begin(), rejected.end(), RowKey(h.file, h.line))) {
      const int32_t elder = ctx.registry->cards[static_cast<size_t>(h.card)].elder;
      if (elder < elder_begin || elder >= elder_end) throw std::logic_error("events of an elder outside its partition");
      const auto e = static_cast<uint32_t>(elder - elder_begin);
      ++start[e + 1];
      found.emplace_back(e, Item{static_cast<uint32_t>(h.card), RowKey(h.file, h.line), records.data() + at});
    }
    at += h.record_bytes();
  }
  for (size_t e = 0; e < elders; ++e) start[e + 1] += start[e];
  items.resize(found.size());
  {
    std::vector<uint32_t> next(start.begin(), start.end() - 1);
    for (const auto& [e, item] : found) items[next[e]++] = item;
  }
  auto item_less = [](const Item& a, const Item& b) {
    return a.card != b.card ? a.card < b.card : a.file_line < b.file_line;
  };
  events.resize(items.size());
  PartitionSettler settler(ctx, log, out);
  try {
    // Records sit in the order they were spilled, elders in another: the
    // records of the elders a few ahead are fetched while this one is settled
    // (a partition is larger than the core's own cache).
    constexpr size_t kPrefetchRecords = 48;
    size_t prefetched = 0;
    for (size_t e = 0; e < elders; ++e) {
      const auto begin = items.begin() + start[e], end = items.begin() + start[e + 1];
      if (!std::is_sorted(begin, end, item_less)) std::sort(begin, end, item_less);
      for (const size_t until = std::min<size_t>(start[e + 1] + kPrefetchRecords, items.size()); prefetched < until;
           ++prefetched) {
        __builtin_prefetch(items[prefetched].record);
      }
      for (size_t i = start[e]; i < start[e + 1]; ++i) events[i] = items[i].record;
      settler.SettleElder(elder_begin + static_cast<int32_t>(e),
                          std::span<const char* const>(events.data() + start[e], start[e + 1] - start[e]));
    }
    // The partition's waiting additions go into the table here, where a sum
    // that stops fitting is still named by its centres and service; left for
    // the merge, the run's consumption total would overflow first, unnamed.
    out->consumption.Flush();
  } catch (const ConsumptionOverflow& e) {
    throw ConsumptionOverflow(e.key(), ConsumptionOverflowMessage(*ctx.registry, *ctx.services, e.key()));
  }
}

const char* ExplainStepKindName(ExplainStepKind kind) {
  switch (kind) {
    case ExplainStepKind::kCardNotFound: return "card_not_found";
    case ExplainStepKind::kCard: return "card";
    case ExplainStepKind::kHolder: return "holder";
    case ExplainStepKind::kAssessmentOnFile: return "assessment_on_file";
    case ExplainStepKind::kNoAssessmentOnFile: return "no_assessment_on_file";
    case ExplainStepKind::kEnrollmentOnFile: return "enrollment_on_file";
    case ExplainStepKind::kDepositCounted: return "deposit_counted";
    case ExplainStepKind::kDepositNotCountedInactive: return "deposit_not_counted_inactive";
    case ExplainStepKind::kDepositNotCountedDeceased: return "deposit_not_counted_deceased";
    case ExplainStepKind::kReversalCounted: return "reversal_counted";
    case ExplainStepKind::kReversalNotCounted: return "reversal_not_counted";
    case ExplainStepKind::kCardNotActive: return "card_not_active";
    case ExplainStepKind::kNetDeposit: return "net_deposit";
    case ExplainStepKind::kNoPolicyInForce: return "no_policy_in_force";
    case ExplainStepKind::kVersionInForce: return "version_in_force";
    case ExplainStepKind::kAlive: return "alive";
    case ExplainStepKind::kAliveDiedInMonth: return "alive_died_in_month";
    case ExplainStepKind::kDeceased: return "deceased";
    case ExplainStepKind::kElderCard: return "elder_card";
    case ExplainStepKind::kDuplicateCard: return "duplicate_card";
    case ExplainStepKind::kExclusionNotForType: return "exclusion_not_for_type";
    case ExplainStepKind::kExclusionNotEnrolled: return "exclusion_not_enrolled";
    case ExplainStepKind::kExcluded: return "excluded";
    case ExplainStepKind::kNoExclusions: return "no_exclusions";
    case ExplainStepKind::kAge: return "age";
    case ExplainStepKind::kAssessmentValid: return "assessment_valid";
    case ExplainStepKind::kAssessmentExpired: return "assessment_expired";
    case ExplainStepKind::kAssessmentNone: return "assessment_none";
    case ExplainStepKind::kHukouFact: return "hukou";
    case ExplainStepKind::kFlagsFact: return "flags";
    case ExplainStepKind::kLowerTierNotAllowed: return "lower_tier_not_allowed";
    case ExplainStepKind::kTypeNotInVersion: return "type_not_in_version";
    case ExplainStepKind::kEligible: return "eligible";
    case ExplainStepKind::kNotEligible: return "not_eligible";
    case ExplainStepKind::kThresholdMet: return "threshold_met";
    case ExplainStepKind::kThresholdNotMet: return "threshold_not_met";
    case ExplainStepKind::kProrated: return "prorated";
    case ExplainStepKind::kPaid: return "paid";
    case ExplainStepKind::kBelowThreshold: return "below_threshold";
    case ExplainStepKind::kIneligible: return "ineligible";
  }
  return "unknown";
}

}  // namespace carecard
