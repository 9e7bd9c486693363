// BookState: what the engine needs of the book's closed periods, compact:
// per card, what each closed card-month holds (its original subsidy plus every
// closed adjustment) and the sums of its closed statements; per centre, the
// amount carried out of the latest closed period.
//
// Built period by period, oldest first, with BookStateBuilder (batch/book.h
// reads a file book with it, adapters/pg_store.h the PostgreSQL book). A book
// of P closed periods of N cards holds about N * 2P card-months: 16 bytes each.
#ifndef CARECARD_ENGINE_BOOK_STATE_H_
#define CARECARD_ENGINE_BOOK_STATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/calendar.h"
#include "engine/id_index.h"
#include "engine/money.h"

namespace carecard {

// The flows of a card statement.
struct Flows {
  Money deposits, reversals, subsidies, consumption, refunds;
  Money Net() const { return deposits - reversals + subsidies - consumption + refunds; }
  Flows& operator+=(const Flows& o);
  Flows operator-(const Flows& o) const;
  bool IsZero() const;
};

struct BookState {
  std::optional<PayoutPeriod> first_closed;  // the book's first period, when anything is closed
  std::optional<PayoutPeriod> latest_closed;

  struct RecordedMonth {
    int32_t month = 0;   // YearMonth index
    int32_t center = -1;  // into centers: the centre on the card-month in the book
    Money subsidy;        // original subsidy + every closed adjustment
  };
  struct Card {
    std::string card_no;
    uint32_t months_begin = 0, months_end = 0;  // into months, ascending by month
    bool has_statement = false;  // listed in some closed statement
    Flows flows_sum;             // summed over every closed statement of the card
    Money last_closing;          // its closing in the latest closed period (0 when not listed there)
    int32_t statement_center = -1;
  };
  std::vector<Card> cards;  // sorted by card_no (bytes)
  std::vector<RecordedMonth> months;
  std::vector<std::string> centers;
  std::map<std::string, Money> carried;  // centre -> carried_out of the latest closed period

  // The card, or nullptr.
  const Card* Find(std::string_view card_no) const;
  std::span<const RecordedMonth> MonthsOf(const Card& c) const { return {months.data() + c.months_begin, c.months_end - c.months_begin}; }
  // The recorded card-month, or nullptr.
  const RecordedMonth* FindMonth(std::string_view card_no, YearMonth month) const;
};

class BookStateBuilder {
 public:
  // Starts the next closed period (oldest first). Returns false with *error
  // when it does not follow the previous one.
  bool BeginPeriod(const PayoutPeriod& period, std::string* error);
  void AddCardMonth(std::string_view card_no, YearMonth month, Money subsidy, std::string_view center_id);
  void AddAdjustment(std::string_view card_no, YearMonth original_month, Money amount, std::string_view center_id);
  void AddStatement(std::string_view card_no, const Flows& flows, Money closing, std::string_view center_id);
  void AddCarried(std::string_view center_id, Money carried_out);
  BookState Finish();

 private:
  struct Building {
    std::vector<BookState::RecordedMonth> months;  // unsorted while building
    bool has_statement = false;
    Flows flows_sum;
    Money last_closing;
    int32_t statement_center = -1;
    int64_t closing_period = -1;  // which period last_closing is from
  };
  Building& CardOf(std::string_view card_no);
  BookState::RecordedMonth& MonthOf(Building& card, YearMonth month);
  int32_t Center(std::string_view center_id);

  BookState state_;
  int64_t period_count_ = 0;
  IdIndex card_ids_;
  std::vector<Building> cards_;
  IdIndex center_ids_;
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_BOOK_STATE_H_
