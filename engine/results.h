// The results of a settlement run (formats.md "Outputs"), compact: card-months
// and statements name cards by index, and strings are looked up only when the
// files are written.
#ifndef CARECARD_ENGINE_RESULTS_H_
#define CARECARD_ENGINE_RESULTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/book_state.h"
#include "engine/calendar.h"
#include "engine/exceptions.h"
#include "engine/money.h"
#include "engine/policy.h"

namespace carecard {

enum class CardMonthStatus : uint8_t { kPaid, kBelowThreshold, kIneligible, kExcluded, kDuplicateCard, kDeceased };
const char* CardMonthStatusName(CardMonthStatus s);

// card_months.reason: the programme for excluded; not_eligible / no_policy_in_force for ineligible.
enum class CardMonthReason : uint8_t { kNone, kNotEligible, kNoPolicyInForce, kHomeBed, kGovHomeService };
std::string_view CardMonthReasonName(CardMonthReason r);
CardMonthReason ExcludedBy(Program p);

// One card and one accrual month (card_months.csv). 32 bytes.
struct CardMonth {
  YearMonth month;
  int32_t card = -1;  // registry index
  Money net_deposit;
  Money subsidy;
  int8_t tier = 0;  // 0 = nothing paid
  CardMonthStatus status = CardMonthStatus::kIneligible;
  CardMonthReason reason = CardMonthReason::kNone;
  int16_t version = -1;  // index into Policy::versions, -1 when none is in force
  std::string_view reason_name() const { return CardMonthReasonName(reason); }
};
static_assert(sizeof(CardMonth) == 32);
// `policy@version`, empty when no version was in force.
std::string RuleVersionOf(const Policy& policy, const CardMonth& cm);

struct AdjustmentLine {
  YearMonth original_month;
  std::string card_no;
  std::string center_id;
  Money recorded, recomputed, amount;
  std::string reason;
};

struct PayoutLine {
  std::string center_id, center_name, credit_code, bank_account;
  int64_t cards_paid = 0;
  Money subsidy_total, adjustment_total, carried_in, payout, carried_out;
};

// A card statement: a card of the registry (card >= 0), or one that left it
// and is known only to the book (book_card >= 0).
struct StatementLine {
  int32_t card = -1;
  int32_t book_card = -1;
  Money opening;
  Flows flows;
  // opening + flows, exactly (elder_settle.h checks it against the balance walk).
  Money closing() const { return opening + flows.Net(); }
};
static_assert(sizeof(StatementLine) == 56, "one per card");

// Centres are registry indices, the service an index into SettlementResult::services.
struct ConsumptionByCenterLine {
  int32_t serving_center = -1, home_center = -1;
  uint16_t service = 0;
  int64_t transactions = 0;
  Money amount;
};

struct HomebedExclusionLine {
  YearMonth month;
  std::string institution_id, person_id, reason;
};

struct ControlTotals {
  Money deposits, reversals, consumption, refunds, subsidies, adjustments, payouts, carried_out;
  int64_t card_months = 0, card_months_paid = 0, cards = 0;
};

struct SettlementResult {
  std::vector<CardMonth> card_months;  // the period's months, by month, card_no
  std::vector<AdjustmentLine> adjustments;
  std::vector<PayoutLine> payouts;
  std::vector<StatementLine> statements;  // by card_no
  std::vector<ConsumptionByCenterLine> consumption_by_center;  // by serving centre id, home centre id, service
  std::vector<std::string> services;                           // names of the services consumption names
  std::vector<HomebedExclusionLine> homebed_exclusions;
  ExceptionSet exceptions;  // every exception of the run, rows and card-months
  ControlTotals totals;
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_RESULTS_H_
