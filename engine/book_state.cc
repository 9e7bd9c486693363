#include "engine/book_state.h"

#include <algorithm>
#include <numeric>

namespace carecard {

Flows& Flows::operator+=(const Flows& o) {
  deposits += o.deposits;
  reversals += o.reversals;
  subsidies += o.subsidies;
  consumption += o.consumption;
  refunds += o.refunds;
  return *this;
}

Flows Flows::operator-(const Flows& o) const {
  return Flows{deposits - o.deposits, reversals - o.reversals, subsidies - o.subsidies, consumption - o.consumption,
               refunds - o.refunds};
}

bool Flows::IsZero() const {
  return deposits.is_zero() && reversals.is_zero() && subsidies.is_zero() && consumption.is_zero() && refunds.is_zero();
}

const BookState::Card* BookState::Find(std::string_view card_no) const {
  auto it = std::lower_bound(cards.begin(), cards.end(), card_no,
                             [](const Card& c, std::string_view k) { return std::string_view(c.card_no) < k; });
  return it != cards.end() && it->card_no == card_no ? &*it : nullptr;
}

const BookState::RecordedMonth* BookState::FindMonth(std::string_view card_no, YearMonth month) const {
  const Card* c = Find(card_no);
  if (!c) return nullptr;
  for (const auto& m : MonthsOf(*c)) {
    if (m.month == month.index()) return &m;
  }
  return nullptr;
}

bool BookStateBuilder::BeginPeriod(const PayoutPeriod& period, std::string* error) {
  if (state_.latest_closed && period != state_.latest_closed->Next()) {
    *error = "the book's closed periods are not consecutive: " + state_.latest_closed->ToString() + " then " +
             period.ToString();
    return false;
  }
  if (!state_.first_closed) state_.first_closed = period;
  state_.latest_closed = period;
  ++period_count_;
  state_.carried.clear();
  return true;
}

BookStateBuilder::Building& BookStateBuilder::CardOf(std::string_view card_no) {
  bool inserted = false;
  const int32_t i = card_ids_.Insert(card_no, &inserted);
  if (inserted) cards_.emplace_back();
  return cards_[static_cast<size_t>(i)];
}

int32_t BookStateBuilder::Center(std::string_view center_id) {
  bool inserted = false;
  const int32_t i = center_ids_.Insert(center_id, &inserted);
  if (inserted) state_.centers.emplace_back(center_id);
  return i;
}

BookState::RecordedMonth& BookStateBuilder::MonthOf(Building& card, YearMonth month) {
  // Card-months arrive period by period, so the one wanted is almost always the last.
  for (auto it = card.months.rbegin(); it != card.months.rend(); ++it) {
    if (it->month == month.index()) return *it;
  }
  card.months.push_back(BookState::RecordedMonth{month.index(), -1, Money()});
  return card.months.back();
}

void BookStateBuilder::AddCardMonth(std::string_view card_no, YearMonth month, Money subsidy, std::string_view center_id) {
  auto& m = MonthOf(CardOf(card_no), month);
  m.subsidy += subsidy;
  m.center = Center(center_id);
}

void BookStateBuilder::AddAdjustment(std::string_view card_no, YearMonth original_month, Money amount,
                                     std::string_view center_id) {
  auto& m = MonthOf(CardOf(card_no), original_month);
  m.subsidy += amount;
  if (m.center < 0) m.center = Center(center_id);
}

void BookStateBuilder::AddStatement(std::string_view card_no, const Flows& flows, Money closing, std::string_view center_id) {
  Building& c = CardOf(card_no);
  c.has_statement = true;
  c.flows_sum += flows;
  c.last_closing = closing;
  c.closing_period = period_count_;
  c.statement_center = Center(center_id);
}

void BookStateBuilder::AddCarried(std::string_view center_id, Money carried_out) {
  state_.carried[std::string(center_id)] = carried_out;
}

BookState BookStateBuilder::Finish() {
  std::vector<uint32_t> order(cards_.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return card_ids_.key(static_cast<int32_t>(a)) < card_ids_.key(static_cast<int32_t>(b));
  });
  state_.cards.reserve(order.size());
  for (uint32_t i : order) {
    Building& b = cards_[i];
    BookState::Card c;
    c.card_no = std::string(card_ids_.key(static_cast<int32_t>(i)));
    std::sort(b.months.begin(), b.months.end(),
              [](const BookState::RecordedMonth& x, const BookState::RecordedMonth& y) { return x.month < y.month; });
    c.months_begin = static_cast<uint32_t>(state_.months.size());
    state_.months.insert(state_.months.end(), b.months.begin(), b.months.end());
    c.months_end = static_cast<uint32_t>(state_.months.size());
    c.has_statement = b.has_statement;
    c.flows_sum = b.flows_sum;
    // A card not listed in the latest closed statement closed it at zero.
    c.last_closing = b.closing_period == period_count_ ? b.last_closing : Money();
    c.statement_center = b.statement_center;
    state_.cards.push_back(std::move(c));
    std::vector<BookState::RecordedMonth>().swap(b.months);
  }
  cards_.clear();
  card_ids_ = IdIndex();
  center_ids_ = IdIndex();
  return std::move(state_);
}

}  // namespace carecard
