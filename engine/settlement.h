// Settlement: computes one payout period from an accepted registry and ledger,
// the policy, and what the book holds of earlier closed periods
// (semantics.md §5-§7). Pure and deterministic: no I/O, no clock; the same
// inputs give the same rows whatever the thread count.
//
// The seam for scale: everything a card-month needs belongs to one elder, so the
// work is partitioned by elder (SettleElder) and only payouts and control
// totals are merged across elders, by centre.
#ifndef CARECARD_ENGINE_SETTLEMENT_H_
#define CARECARD_ENGINE_SETTLEMENT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/calendar.h"
#include "engine/exceptions.h"
#include "engine/intake.h"
#include "engine/money.h"
#include "engine/policy.h"

namespace carecard {

enum class CardMonthStatus { kPaid, kBelowThreshold, kIneligible, kExcluded, kDuplicateCard, kDeceased };
const char* CardMonthStatusName(CardMonthStatus s);

// One card and one accrual month (card_months.csv).
struct CardMonth {
  YearMonth month;
  int32_t card = -1;
  Money net_deposit;
  int tier = 0;  // 0 = nothing paid
  Money subsidy;
  CardMonthStatus status = CardMonthStatus::kIneligible;
  std::string reason;        // programme for excluded; not_eligible / no_policy_in_force
  std::string rule_version;  // policy@version, empty when no version is in force
};

// The flows of a card statement.
struct Flows {
  Money deposits, reversals, subsidies, consumption, refunds;
  Money Net() const { return deposits - reversals + subsidies - consumption + refunds; }
  Flows& operator+=(const Flows& o);
  Flows operator-(const Flows& o) const;
  bool IsZero() const;
};

// What the book holds of its closed periods, as the engine needs it.
struct BookState {
  std::optional<PayoutPeriod> first_closed;   // the book's first period, when anything is closed
  std::optional<PayoutPeriod> latest_closed;
  struct RecordedCardMonth {
    Money subsidy;  // original subsidy + every closed adjustment
    std::string center_id;
  };
  std::map<std::pair<std::string, std::string>, RecordedCardMonth> card_months;  // (card_no, YYYY-MM)
  struct ClosedStatement {
    Flows flows_sum;   // summed over every closed statement of the card
    Money last_closing;  // closing of the card in the latest closed period (0 when not listed)
    std::string center_id;
  };
  std::map<std::string, ClosedStatement> statements;  // by card_no
  std::map<std::string, Money> carried;               // centre -> carried_out of the latest closed period
};

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

struct StatementLine {
  std::string card_no, center_id;
  Money opening;
  Flows flows;
  Money closing;
};

struct ConsumptionByCenterLine {
  std::string serving_center_id, home_center_id, service;
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
  std::vector<CardMonth> card_months;  // the period's months, sorted by month, card_no
  std::vector<AdjustmentLine> adjustments;
  std::vector<PayoutLine> payouts;
  std::vector<StatementLine> statements;
  std::vector<ConsumptionByCenterLine> consumption_by_center;
  std::vector<HomebedExclusionLine> homebed_exclusions;
  std::vector<ExceptionRecord> exceptions;  // sorted; includes the intake's
  ControlTotals totals;
};

struct SettlementOptions {
  int threads = 1;  // 1..kMaxThreads; the result does not depend on it
};
inline constexpr int kMaxThreads = 256;

// REQUIRES: `period` uses policy.months_per_period and is after book.latest_closed.
// Consumes intake.exceptions. Throws MoneyOverflow when a sum does not fit.
SettlementResult Settle(const Policy& policy, const PayoutPeriod& period, IntakeResult& intake, const BookState& book,
                        const SettlementOptions& options);

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
CardMonthExplanation ExplainCardMonth(const Policy& policy, const PayoutPeriod& period, const IntakeResult& intake,
                                      const BookState& book, const std::string& card_no, YearMonth month);

}  // namespace carecard

#endif  // CARECARD_ENGINE_SETTLEMENT_H_
