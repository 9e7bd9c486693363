#include "engine/settlement.h"

#include <algorithm>
#include <cassert>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <unordered_map>

namespace carecard {

const char* CardMonthStatusName(CardMonthStatus s) {
  switch (s) {
    case CardMonthStatus::kPaid: return "paid";
    case CardMonthStatus::kBelowThreshold: return "below_threshold";
    case CardMonthStatus::kIneligible: return "ineligible";
    case CardMonthStatus::kExcluded: return "excluded";
    case CardMonthStatus::kDuplicateCard: return "duplicate_card";
    case CardMonthStatus::kDeceased: return "deceased";
  }
  return "ineligible";
}

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

namespace {

// The months this run settles (semantics.md §7): every month from the book's
// first period to the period's last. Months of closed periods are recomputed
// for adjustments; months of a draft period lying between the latest closed
// period and this one are computed too, so that their subsidies are on card
// balances, but they are neither paid nor adjusted by this run.
struct SettledMonths {
  std::vector<YearMonth> closed;  // ascending
  std::vector<YearMonth> current; // ascending
  std::vector<YearMonth> all;     // ascending, from the book's first month
};

SettledMonths ComputeSettledMonths(const PayoutPeriod& period, const BookState& book) {
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

int TxnClass(TxnKind k) {
  switch (k) {
    case TxnKind::kDeposit:
    case TxnKind::kReversal: return 0;
    case TxnKind::kRefund: return 1;
    case TxnKind::kConsumption: return 2;
  }
  return 0;
}

struct Context {
  const Policy& policy;
  const PayoutPeriod& period;
  const IntakeResult& intake;
  const Registry& reg;
  const SettledMonths& months;
  // Per card: indices of its transactions, in balance order (semantics.md §6).
  const std::vector<std::vector<int32_t>>& card_txns;
  const std::vector<std::vector<int32_t>>& card_balances;  // platform balance indices by as_of
};

// Net deposit of each (card, month): counted deposits dated in the month less
// the reversals of those deposits, whenever the reversal is dated.
Money NetDeposit(const Context& ctx, int32_t card, YearMonth month) {
  Money net;
  for (int32_t i : ctx.card_txns[static_cast<size_t>(card)]) {
    const Transaction& t = ctx.reg.transactions[static_cast<size_t>(i)];
    if (t.kind == TxnKind::kDeposit && t.counted && YearMonth::Of(t.local_date) == month) net += t.amount;
    if (t.kind == TxnKind::kReversal && t.counted) {
      const Transaction& orig = ctx.reg.transactions[static_cast<size_t>(t.ref)];
      if (YearMonth::Of(orig.local_date) == month) net -= t.amount;
    }
  }
  return net;
}

std::optional<int> AssessmentLevel(const Elder& elder, YearMonth month, int valid_months, ExplainStep* why) {
  const Date last = month.last_day();
  const Assessment* latest = nullptr;
  for (const auto& a : elder.assessments) {
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
  Date valid_through = AddMonthsClamped(latest->assessed_on, valid_months);
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

// semantics.md §5, in order. `explain` (optional) receives one step per fact and check.
CardMonth EvaluateCardMonth(const Context& ctx, int32_t card_index, YearMonth month, std::vector<ExplainStep>* explain,
                            const Money* known_net_deposit = nullptr) {
  const Card& card = ctx.reg.cards[static_cast<size_t>(card_index)];
  const Elder& elder = ctx.reg.elders[static_cast<size_t>(card.elder)];
  auto say = [&](ExplainStepKind kind, std::vector<std::string> args = {}) {
    explain->push_back(ExplainStep{kind, std::move(args)});
  };
  CardMonth cm;
  cm.month = month;
  cm.card = card_index;
  cm.net_deposit = known_net_deposit ? *known_net_deposit : NetDeposit(ctx, card_index, month);
  if (explain) say(ExplainStepKind::kNetDeposit, {month.ToString(), cm.net_deposit.ToString()});

  const PolicyVersion* version = ctx.policy.VersionFor(month);
  if (!version) {
    if (explain) say(ExplainStepKind::kNoPolicyInForce, {month.ToString()});
    cm.status = CardMonthStatus::kIneligible;
    cm.reason = "no_policy_in_force";
    return cm;
  }
  cm.rule_version = ctx.policy.RuleVersion(*version);
  if (explain) {
    say(ExplainStepKind::kVersionInForce,
        {cm.rule_version, version->from.ToString(), version->to ? version->to->ToString() : std::string()});
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
  int32_t kept = -1;
  for (int32_t other : elder.cards) {
    const Card& o = ctx.reg.cards[static_cast<size_t>(other)];
    if (!o.ActiveIn(month)) continue;
    if (kept < 0) {
      kept = other;
      continue;
    }
    const Card& k = ctx.reg.cards[static_cast<size_t>(kept)];
    if (std::tie(o.issued_on, o.card_no) < std::tie(k.issued_on, k.card_no)) kept = other;
  }
  if (kept != card_index) {
    if (explain) {
      const Card& k = ctx.reg.cards[static_cast<size_t>(kept)];
      say(ExplainStepKind::kDuplicateCard, {k.card_no, k.issued_on.ToString()});
    }
    cm.status = CardMonthStatus::kDuplicateCard;
    return cm;
  }
  if (explain) {
    int active = 0;
    for (int32_t other : elder.cards) active += ctx.reg.cards[static_cast<size_t>(other)].ActiveIn(month) ? 1 : 0;
    say(ExplainStepKind::kElderCard, {std::to_string(active)});
  }

  // 3. Exclusions, in the order written.
  for (const auto& exclusion : version->exclusions) {
    auto choice_name = [&] { return exclusion.choice ? std::string(ChoiceName(*exclusion.choice)) : std::string(); };
    if (!exclusion.AppliesTo(card.card_type)) {
      if (explain) {
        say(ExplainStepKind::kExclusionNotForType,
            {std::string(ProgramName(exclusion.program)), choice_name(), std::to_string(card.card_type)});
      }
      continue;
    }
    for (const auto& e : elder.enrollments) {
      if (e.program != exclusion.program || !e.Overlaps(month.first_day(), month.last_day())) continue;
      if (exclusion.choice && e.choice != *exclusion.choice) continue;
      cm.status = CardMonthStatus::kExcluded;
      cm.reason = std::string(ProgramName(exclusion.program));
      if (explain) {
        say(ExplainStepKind::kExcluded, {cm.reason, choice_name(), e.institution_id, e.start_on.ToString(),
                                         e.end_on ? e.end_on->ToString() : std::string()});
      }
      return cm;
    }
    if (explain) say(ExplainStepKind::kExclusionNotEnrolled, {std::string(ProgramName(exclusion.program)), choice_name()});
  }
  if (explain && version->exclusions.empty()) say(ExplainStepKind::kNoExclusions);

  // 4. Eligibility facts.
  HolderFacts facts;
  facts.age = CompletedYears(elder.birth_date, month.last_day());
  ExplainStep assessment_why;
  facts.assessment = AssessmentLevel(elder, month, version->assessment_valid_months, explain ? &assessment_why : nullptr);
  facts.rural = elder.rural;
  facts.urban = !elder.rural;
  facts.flags = elder.flags;
  if (explain) {
    say(ExplainStepKind::kAge, {month.last_day().ToString(), std::to_string(facts.age), elder.birth_date.ToString()});
    explain->push_back(std::move(assessment_why));
    say(ExplainStepKind::kHukouFact, {facts.rural ? "rural" : "urban"});
    std::string flags;
    for (int i = 0; i < kPersonFlagCount; ++i) {
      if (elder.flags & (1u << i)) flags += (flags.empty() ? "" : ", ") + std::string(PersonFlagName(i));
    }
    say(ExplainStepKind::kFlagsFact, {flags});
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
      cm.tier = t;
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
    if (!eligible_somewhere) cm.reason = "not_eligible";
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

struct ConsumptionKey {
  int32_t serving, home, service;
  friend auto operator<=>(const ConsumptionKey&, const ConsumptionKey&) = default;
};
struct ConsumptionKeyHash {
  size_t operator()(const ConsumptionKey& k) const {
    uint64_t h = static_cast<uint32_t>(k.serving);
    h = h * 0x9E3779B97F4A7C15ull ^ static_cast<uint32_t>(k.home);
    h = h * 0x9E3779B97F4A7C15ull ^ static_cast<uint32_t>(k.service);
    return static_cast<size_t>(h ^ (h >> 29));
  }
};
struct ConsumptionSum {
  int64_t transactions = 0;
  Money amount;
};

// What one worker produces for its share of elders.
struct WorkerOutput {
  std::vector<CardMonth> period_card_months;
  std::vector<CardMonth> closed_card_months;  // recomputed months of closed periods
  std::vector<StatementLine> statements;
  std::vector<ExceptionRecord> exceptions;
  std::vector<HomebedExclusionLine> homebed;
  std::unordered_map<ConsumptionKey, ConsumptionSum, ConsumptionKeyHash> consumption;  // merged sorted later
};

class ElderSettler {
 public:
  ElderSettler(const Context& ctx, const BookState& book, WorkerOutput* out) : ctx_(ctx), book_(book), out_(out) {}

  void Settle(int32_t elder_index) {
    const Elder& elder = ctx_.reg.elders[static_cast<size_t>(elder_index)];
    for (int32_t card : elder.cards) SettleCard(card, elder);
    HomebedExclusions(elder);
  }

 private:
  void SettleCard(int32_t card_index, const Elder& elder) {
    current_ = nullptr;
    try {
      SettleCardSums(card_index, elder);
    } catch (const MoneyOverflow&) {
      // Name the card and the row at which its sums stopped fitting, so the data can be checked.
      const Card& card = ctx_.reg.cards[static_cast<size_t>(card_index)];
      std::string where;
      if (current_) {
        where = " at " + ctx_.intake.files[static_cast<size_t>(current_->file)].file + " line " +
                std::to_string(current_->line);
      }
      throw MoneyOverflow("the amounts of card '" + card.card_no + "'" + where +
                          " add up to more than 92,233,720,368,547,758.07 yuan, the most the engine holds exactly");
    }
  }

  void SettleCardSums(int32_t card_index, const Elder& elder) {
    const Card& card = ctx_.reg.cards[static_cast<size_t>(card_index)];
    // Card-months of every settled month in which the card is active.
    std::vector<std::pair<YearMonth, Money>> subsidies;  // month -> subsidy, ascending
    // Net deposits of every settled month in one pass over the card's ledger.
    const auto& months = ctx_.months.all;
    nets_.assign(months.size(), Money());
    auto slot = [&](YearMonth m) -> Money* {
      auto it = std::lower_bound(months.begin(), months.end(), m);
      return it != months.end() && *it == m ? &nets_[static_cast<size_t>(it - months.begin())] : nullptr;
    };
    for (int32_t i : ctx_.card_txns[static_cast<size_t>(card_index)]) {
      const Transaction& t = ctx_.reg.transactions[static_cast<size_t>(i)];
      current_ = &t;
      if (!t.counted) continue;
      if (t.kind == TxnKind::kDeposit) {
        if (Money* net = slot(YearMonth::Of(t.local_date))) *net += t.amount;
      } else if (t.kind == TxnKind::kReversal) {
        const Transaction& orig = ctx_.reg.transactions[static_cast<size_t>(t.ref)];
        if (Money* net = slot(YearMonth::Of(orig.local_date))) *net -= t.amount;
      }
    }
    for (size_t mi = 0; mi < months.size(); ++mi) {
      const YearMonth m = months[mi];
      if (!card.ActiveIn(m)) continue;
      CardMonth cm = EvaluateCardMonth(ctx_, card_index, m, nullptr, &nets_[mi]);
      subsidies.emplace_back(m, cm.subsidy);
      if (ctx_.period.Contains(m)) {
        if (cm.status == CardMonthStatus::kDuplicateCard) {
          out_->exceptions.push_back(ExceptionRecord{"duplicate_card", Severity::kError, "cards.csv", card.line, "",
                                                     card.card_no, elder.person_id, m.ToString(),
                                                     "the elder has an earlier-issued card active this month"});
        }
        out_->period_card_months.push_back(std::move(cm));
      } else if (!ctx_.months.closed.empty() && m <= ctx_.months.closed.back()) {
        out_->closed_card_months.push_back(std::move(cm));
      }
    }
    Balances(card_index, card, subsidies);
  }

  // Walks the card's events in time order: overdrafts, platform balance checks,
  // statement flows and consumption by centre (semantics.md §6).
  void Balances(int32_t card_index, const Card& card, const std::vector<std::pair<YearMonth, Money>>& subsidies) {
    const auto& txns = ctx_.card_txns[static_cast<size_t>(card_index)];
    const auto& checks = ctx_.card_balances[static_cast<size_t>(card_index)];
    Money balance;
    Flows cumulative;
    size_t next_subsidy = 0;
    size_t next_check = 0;
    auto credit_through = [&](Date day) {  // subsidies of months ending on or before `day`
      while (next_subsidy < subsidies.size() && subsidies[next_subsidy].first.last_day() <= day) {
        balance += subsidies[next_subsidy].second;
        cumulative.subsidies += subsidies[next_subsidy].second;
        ++next_subsidy;
      }
    };
    auto check_through = [&](Date day) {  // platform balances reported for days before `day`
      while (next_check < checks.size()) {
        const PlatformBalance& pb = ctx_.reg.platform_balances[static_cast<size_t>(checks[next_check])];
        if (!(pb.as_of < day)) break;
        credit_through(pb.as_of);
        if (pb.balance != balance) {
          out_->exceptions.push_back(ExceptionRecord{"balance_mismatch", Severity::kWarning, pb.file, pb.line, "",
                                                     card.card_no, "", YearMonth::Of(pb.as_of).ToString(),
                                                     "platform reports " + pb.balance.ToString() + " at the end of " +
                                                         pb.as_of.ToString() + ", the engine computes " + balance.ToString()});
        }
        ++next_check;
      }
    };
    for (int32_t i : txns) {
      const Transaction& t = ctx_.reg.transactions[static_cast<size_t>(i)];
      current_ = &t;
      check_through(t.local_date);
      credit_through(YearMonth::Of(t.local_date).first_day().AddDays(-1));
      const YearMonth month = YearMonth::Of(t.local_date);
      const bool in_period = ctx_.period.Contains(month);
      switch (t.kind) {
        case TxnKind::kDeposit:
          balance += t.amount;
          cumulative.deposits += t.amount;
          break;
        case TxnKind::kReversal:
          balance -= t.amount;
          cumulative.reversals += t.amount;
          break;
        case TxnKind::kRefund:
          balance += t.amount;
          cumulative.refunds += t.amount;
          if (in_period) out_->consumption[{t.serving_center, card.center, t.service}].amount -= t.amount;
          break;
        case TxnKind::kConsumption:
          balance -= t.amount;
          cumulative.consumption += t.amount;
          if (in_period) {
            auto& sum = out_->consumption[{t.serving_center, card.center, t.service}];
            sum.transactions += 1;
            sum.amount += t.amount;
          }
          if (balance.is_negative()) {
            out_->exceptions.push_back(ExceptionRecord{
                "overdraft", Severity::kWarning, ctx_.intake.files[static_cast<size_t>(t.file)].file, t.line,
                std::string(ctx_.reg.TxnId(t)),
                card.card_no, "", month.ToString(), "balance after this consumption is " + balance.ToString()});
          }
          break;
      }
    }
    check_through(ctx_.period.last_month().last_day().AddDays(1));
    credit_through(ctx_.period.last_month().last_day());
    assert(next_subsidy == subsidies.size());
    // Invariant: the running balance is the sum of the flows.
    if (balance != cumulative.Net()) throw std::logic_error("balance walk disagrees with its flows for card " + card.card_no);
    Statement(card, cumulative);
  }

  void Statement(const Card& card, const Flows& cumulative) {
    StatementLine line;
    line.card_no = card.card_no;
    line.center_id = ctx_.reg.centers[static_cast<size_t>(card.center)].center_id;
    auto closed = book_.statements.find(card.card_no);
    Flows closed_sum;
    if (closed != book_.statements.end()) {
      line.opening = closed->second.last_closing;
      closed_sum = closed->second.flows_sum;
    }
    line.flows = cumulative - closed_sum;
    line.closing = line.opening + line.flows.Net();
    if (line.closing != cumulative.Net()) {
      throw std::runtime_error("the book's closed statements for card " + card.card_no +
                               " do not add up to their last closing balance; the book has been altered");
    }
    if (!line.opening.is_zero() || !line.flows.IsZero() || !line.closing.is_zero()) out_->statements.push_back(std::move(line));
  }

  void HomebedExclusions(const Elder& elder) {
    for (YearMonth m : ctx_.months.current) {
      std::set<std::string> institutions;
      for (const auto& gov : elder.enrollments) {
        if (gov.program != Program::kGovHomeService || !gov.Overlaps(m.first_day(), m.last_day())) continue;
        for (const auto& bed : elder.enrollments) {
          if (bed.program == Program::kHomeBed && bed.institution_id == gov.institution_id &&
              bed.Overlaps(m.first_day(), m.last_day())) {
            institutions.insert(gov.institution_id);
          }
        }
      }
      for (const auto& inst : institutions) {
        out_->homebed.push_back(HomebedExclusionLine{m, inst, elder.person_id, "gov_home_service"});
      }
    }
  }

  const Context& ctx_;
  const BookState& book_;
  WorkerOutput* out_;
  std::vector<Money> nets_;  // per settled month, reused between cards
  const Transaction* current_ = nullptr;  // the row being summed, for an overflow's message
};

template <typename T, typename Less>
void SortBy(std::vector<T>& v, Less less) {
  std::sort(v.begin(), v.end(), less);
}

}  // namespace

SettlementResult Settle(const Policy& policy, const PayoutPeriod& period, IntakeResult& intake, const BookState& book,
                        const SettlementOptions& options) {
  const Registry& reg = intake.registry;
  const SettledMonths months = ComputeSettledMonths(period, book);

  // Partition the ledger by card, in balance order.
  std::vector<std::vector<int32_t>> card_txns(reg.cards.size());
  for (size_t i = 0; i < reg.transactions.size(); ++i) {
    card_txns[static_cast<size_t>(reg.transactions[i].card)].push_back(static_cast<int32_t>(i));
  }
  std::vector<std::vector<int32_t>> card_balances(reg.cards.size());
  for (size_t i = 0; i < reg.platform_balances.size(); ++i) {
    card_balances[static_cast<size_t>(reg.platform_balances[i].card)].push_back(static_cast<int32_t>(i));
  }
  const Context ctx{policy, period, intake, reg, months, card_txns, card_balances};

  const int threads = std::clamp(options.threads, 1, kMaxThreads);
  std::vector<WorkerOutput> outputs(static_cast<size_t>(threads));
  const size_t elder_count = reg.elders.size();
  auto work = [&](int worker) {
    // Each worker owns a contiguous range of cards' and elders' sort work.
    const size_t card_begin = reg.cards.size() * static_cast<size_t>(worker) / static_cast<size_t>(threads);
    const size_t card_end = reg.cards.size() * static_cast<size_t>(worker + 1) / static_cast<size_t>(threads);
    for (size_t c = card_begin; c < card_end; ++c) {
      auto& list = card_txns[c];
      std::sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
        const Transaction& x = reg.transactions[static_cast<size_t>(a)];
        const Transaction& y = reg.transactions[static_cast<size_t>(b)];
        const int cx = TxnClass(x.kind), cy = TxnClass(y.kind);
        if (x.at != y.at) return x.at < y.at;
        if (cx != cy) return cx < cy;
        return reg.TxnId(x) < reg.TxnId(y);
      });
      std::stable_sort(card_balances[c].begin(), card_balances[c].end(), [&](int32_t a, int32_t b) {
        return reg.platform_balances[static_cast<size_t>(a)].as_of < reg.platform_balances[static_cast<size_t>(b)].as_of;
      });
    }
  };
  auto settle = [&](int worker) {
    ElderSettler settler(ctx, book, &outputs[static_cast<size_t>(worker)]);
    const size_t begin = elder_count * static_cast<size_t>(worker) / static_cast<size_t>(threads);
    const size_t end = elder_count * static_cast<size_t>(worker + 1) / static_cast<size_t>(threads);
    for (size_t e = begin; e < end; ++e) settler.Settle(static_cast<int32_t>(e));
  };
  auto run_parallel = [&](auto&& fn) {
    if (threads == 1) {
      fn(0);
      return;
    }
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
    for (int w = 0; w < threads; ++w) {
      pool.emplace_back([&, w] {
        try {
          fn(w);
        } catch (...) {
          errors[static_cast<size_t>(w)] = std::current_exception();
        }
      });
    }
    for (auto& t : pool) t.join();
    for (auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  };
  run_parallel(work);
  run_parallel(settle);

  // Merge by centre and sort: the order is fixed by the data, never by the threads.
  SettlementResult result;
  std::vector<CardMonth> closed_card_months;
  std::map<ConsumptionKey, ConsumptionSum> consumption;
  result.exceptions = std::move(intake.exceptions);
  for (auto& out : outputs) {
    std::move(out.period_card_months.begin(), out.period_card_months.end(), std::back_inserter(result.card_months));
    std::move(out.closed_card_months.begin(), out.closed_card_months.end(), std::back_inserter(closed_card_months));
    std::move(out.statements.begin(), out.statements.end(), std::back_inserter(result.statements));
    std::move(out.exceptions.begin(), out.exceptions.end(), std::back_inserter(result.exceptions));
    std::move(out.homebed.begin(), out.homebed.end(), std::back_inserter(result.homebed_exclusions));
    for (auto& [key, sum] : out.consumption) {
      auto& total = consumption[key];
      total.transactions += sum.transactions;
      total.amount += sum.amount;
    }
  }
  auto card_no = [&](int32_t card) -> const std::string& { return reg.cards[static_cast<size_t>(card)].card_no; };
  auto center_of = [&](int32_t card) -> const std::string& {
    return reg.centers[static_cast<size_t>(reg.cards[static_cast<size_t>(card)].center)].center_id;
  };
  SortBy(result.card_months, [&](const CardMonth& a, const CardMonth& b) {
    return std::tie(a.month, card_no(a.card)) < std::tie(b.month, card_no(b.card));
  });

  // Adjustments against closed periods (semantics.md §7).
  std::set<std::pair<std::string, std::string>> recomputed_keys;
  for (const CardMonth& cm : closed_card_months) {
    std::pair<std::string, std::string> key{card_no(cm.card), cm.month.ToString()};
    recomputed_keys.insert(key);
    auto recorded_it = book.card_months.find(key);
    Money recorded = recorded_it == book.card_months.end() ? Money() : recorded_it->second.subsidy;
    if (recorded == cm.subsidy) continue;
    result.adjustments.push_back(AdjustmentLine{cm.month, key.first, center_of(cm.card), recorded, cm.subsidy,
                                                cm.subsidy - recorded, CardMonthStatusName(cm.status)});
  }
  for (const auto& [key, recorded] : book.card_months) {
    if (recomputed_keys.count(key) || recorded.subsidy.is_zero()) continue;
    auto month = YearMonth::Parse(key.second);
    if (!month || std::find(months.closed.begin(), months.closed.end(), *month) == months.closed.end()) continue;
    auto card = reg.card_index.find(key.first);
    std::string center = card == reg.card_index.end() ? recorded.center_id : center_of(card->second);
    result.adjustments.push_back(
        AdjustmentLine{*month, key.first, center, recorded.subsidy, Money(), -recorded.subsidy, "removed"});
  }
  SortBy(result.adjustments, [](const AdjustmentLine& a, const AdjustmentLine& b) {
    return std::tie(a.original_month, a.card_no) < std::tie(b.original_month, b.card_no);
  });

  // Statements of cards that left the registry: their balance leaves with them.
  for (const auto& [card, closed] : book.statements) {
    if (reg.card_index.count(card)) continue;
    StatementLine line{card, closed.center_id, closed.last_closing, Flows() - closed.flows_sum, Money()};
    if (line.opening + line.flows.Net() != line.closing) {
      throw std::runtime_error("the book's closed statements for card " + card + " do not add up; the book has been altered");
    }
    if (!line.opening.is_zero() || !line.flows.IsZero()) result.statements.push_back(std::move(line));
  }
  SortBy(result.statements, [](const StatementLine& a, const StatementLine& b) { return a.card_no < b.card_no; });

  // Payouts by centre.
  struct PayoutSum {
    std::set<int32_t> paid_cards;
    Money subsidy, adjustment;
  };
  std::map<std::string, PayoutSum> by_center;
  for (const CardMonth& cm : result.card_months) {
    auto& sum = by_center[center_of(cm.card)];
    sum.subsidy += cm.subsidy;
    if (cm.status == CardMonthStatus::kPaid) sum.paid_cards.insert(cm.card);
  }
  for (const auto& adj : result.adjustments) by_center[adj.center_id].adjustment += adj.amount;
  for (const auto& [center, carried] : book.carried) {
    if (!carried.is_zero()) by_center[center];
  }
  for (auto& [center, sum] : by_center) {
    PayoutLine line;
    line.center_id = center;
    if (auto it = reg.center_index.find(center); it != reg.center_index.end()) {
      const Center& c = reg.centers[static_cast<size_t>(it->second)];
      line.center_name = c.name;
      line.credit_code = c.credit_code;
      line.bank_account = c.bank_account;
    }
    line.cards_paid = static_cast<int64_t>(sum.paid_cards.size());
    line.subsidy_total = sum.subsidy;
    line.adjustment_total = sum.adjustment;
    if (auto it = book.carried.find(center); it != book.carried.end()) line.carried_in = it->second;
    Money due = line.subsidy_total + line.adjustment_total + line.carried_in;
    line.payout = due.is_negative() ? Money() : due;
    line.carried_out = due.is_negative() ? due : Money();
    // Invariant: what is paid plus what is carried is exactly what is due.
    assert(line.payout + line.carried_out == line.subsidy_total + line.adjustment_total + line.carried_in);
    result.payouts.push_back(std::move(line));
  }

  for (auto& [key, sum] : consumption) {
    result.consumption_by_center.push_back(ConsumptionByCenterLine{reg.centers[static_cast<size_t>(key.serving)].center_id,
                                                                   reg.centers[static_cast<size_t>(key.home)].center_id,
                                                                   reg.services[static_cast<size_t>(key.service)],
                                                                   sum.transactions, sum.amount});
  }
  SortBy(result.consumption_by_center, [](const ConsumptionByCenterLine& a, const ConsumptionByCenterLine& b) {
    return std::tie(a.serving_center_id, a.home_center_id, a.service) <
           std::tie(b.serving_center_id, b.home_center_id, b.service);
  });
  SortBy(result.homebed_exclusions, [](const HomebedExclusionLine& a, const HomebedExclusionLine& b) {
    return std::tie(a.month, a.institution_id, a.person_id) < std::tie(b.month, b.institution_id, b.person_id);
  });
  SortExceptions(&result.exceptions);

  // Control totals.
  ControlTotals& t = result.totals;
  for (const auto& s : result.statements) {
    t.deposits += s.flows.deposits;
    t.reversals += s.flows.reversals;
    t.consumption += s.flows.consumption;
    t.refunds += s.flows.refunds;
  }
  std::set<int32_t> cards;
  for (const auto& cm : result.card_months) {
    t.subsidies += cm.subsidy;
    ++t.card_months;
    if (cm.status == CardMonthStatus::kPaid) ++t.card_months_paid;
    cards.insert(cm.card);
  }
  t.cards = static_cast<int64_t>(cards.size());
  for (const auto& a : result.adjustments) t.adjustments += a.amount;
  for (const auto& p : result.payouts) {
    t.payouts += p.payout;
    t.carried_out += p.carried_out;
  }
  return result;
}

CardMonthExplanation ExplainCardMonth(const Policy& policy, const PayoutPeriod& period, const IntakeResult& intake,
                                      const BookState& book, const std::string& card_no, YearMonth month) {
  CardMonthExplanation out;
  auto say = [&](ExplainStepKind kind, std::vector<std::string> args = {}) {
    out.steps.push_back(ExplainStep{kind, std::move(args)});
  };
  const Registry& reg = intake.registry;
  auto it = reg.card_index.find(card_no);
  if (it == reg.card_index.end()) {
    say(ExplainStepKind::kCardNotFound, {card_no});
    return out;
  }
  const SettledMonths months = ComputeSettledMonths(period, book);
  std::vector<std::vector<int32_t>> card_txns(reg.cards.size());
  for (size_t i = 0; i < reg.transactions.size(); ++i) {
    if (reg.transactions[i].card == it->second) card_txns[static_cast<size_t>(it->second)].push_back(static_cast<int32_t>(i));
  }
  std::vector<std::vector<int32_t>> card_balances(reg.cards.size());
  const Context ctx{policy, period, intake, reg, months, card_txns, card_balances};
  const Card& card = reg.cards[static_cast<size_t>(it->second)];
  const Elder& elder = reg.elders[static_cast<size_t>(card.elder)];
  say(ExplainStepKind::kCard, {card.card_no, std::to_string(card.card_type), reg.centers[static_cast<size_t>(card.center)].center_id,
                               card.issued_on.ToString(), card.closed_on ? card.closed_on->ToString() : std::string()});
  std::string flags;
  for (int i = 0; i < kPersonFlagCount; ++i) {
    if (elder.flags & (1u << i)) flags += (flags.empty() ? "" : ", ") + std::string(PersonFlagName(i));
  }
  say(ExplainStepKind::kHolder, {elder.person_id, elder.birth_date.ToString(), elder.rural ? "rural" : "urban",
                                 elder.death_date ? elder.death_date->ToString() : std::string(), flags});
  for (const auto& a : elder.assessments) {
    say(ExplainStepKind::kAssessmentOnFile, {std::to_string(a.level), a.assessed_on.ToString()});
  }
  if (elder.assessments.empty()) say(ExplainStepKind::kNoAssessmentOnFile);
  for (const auto& e : elder.enrollments) {
    say(ExplainStepKind::kEnrollmentOnFile, {std::string(ProgramName(e.program)), e.institution_id, e.start_on.ToString(),
                                             e.end_on ? e.end_on->ToString() : std::string(), std::string(ChoiceName(e.choice))});
  }
  // The deposits dated in the month and the reversals of them, whenever dated.
  for (int32_t i : card_txns[static_cast<size_t>(it->second)]) {
    const Transaction& t = reg.transactions[static_cast<size_t>(i)];
    const bool deposit_side = t.kind == TxnKind::kDeposit || t.kind == TxnKind::kReversal;
    if (!deposit_side) continue;
    const Transaction& dated = t.kind == TxnKind::kReversal ? reg.transactions[static_cast<size_t>(t.ref)] : t;
    if (YearMonth::Of(dated.local_date) != month) continue;
    std::vector<std::string> args{std::string(reg.TxnId(t)), t.amount.ToString(), t.local_date.ToString()};
    if (t.kind == TxnKind::kReversal) {
      args.emplace_back(reg.TxnId(dated));
      if (t.counted) args.push_back(dated.local_date.ToString());
      say(t.counted ? ExplainStepKind::kReversalCounted : ExplainStepKind::kReversalNotCounted, std::move(args));
    } else if (t.counted) {
      say(ExplainStepKind::kDepositCounted, std::move(args));
    } else if (!card.ActiveOn(t.local_date) || !elder.death_date) {
      say(ExplainStepKind::kDepositNotCountedInactive, std::move(args));
    } else {
      args.push_back(elder.death_date->ToString());
      say(ExplainStepKind::kDepositNotCountedDeceased, std::move(args));
    }
  }
  if (!card.ActiveIn(month)) {
    say(ExplainStepKind::kCardNotActive, {month.ToString()});
    return out;
  }
  out.found = true;
  out.result = EvaluateCardMonth(ctx, it->second, month, &out.steps);
  return out;
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
