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

// The months this run settles: the closed periods' months (recomputed for
// adjustments) and the period's own. Months of an unclosed period between them
// are not settled by this run: they earn nothing until their own period is settled.
struct SettledMonths {
  std::vector<YearMonth> closed;  // ascending
  std::vector<YearMonth> current; // ascending
  std::vector<YearMonth> all;     // closed then current
};

SettledMonths ComputeSettledMonths(const PayoutPeriod& period, const BookState& book) {
  SettledMonths m;
  if (book.first_closed && book.latest_closed) {
    for (YearMonth x = book.first_closed->first_month(); x <= book.latest_closed->last_month(); x = x.Next()) {
      m.closed.push_back(x);
    }
  }
  for (YearMonth x = period.first_month(); x <= period.last_month(); x = x.Next()) m.current.push_back(x);
  m.all = m.closed;
  m.all.insert(m.all.end(), m.current.begin(), m.current.end());
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

std::optional<int> AssessmentLevel(const Elder& elder, YearMonth month, int valid_months, std::string* why) {
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
    if (why) *why = "no assessment dated on or before " + last.ToString();
    return std::nullopt;
  }
  Date valid_through = AddMonthsClamped(latest->assessed_on, valid_months);
  if (valid_through < last) {
    if (why) {
      *why = "latest assessment (level " + std::to_string(latest->level) + ", " + latest->assessed_on.ToString() +
             ") expired on " + valid_through.ToString();
    }
    return std::nullopt;
  }
  if (why) {
    *why = "level " + std::to_string(latest->level) + " assessed " + latest->assessed_on.ToString() + ", valid through " +
           valid_through.ToString();
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

// semantics.md §5, in order. `explain` (optional) receives one line per fact and check.
CardMonth EvaluateCardMonth(const Context& ctx, int32_t card_index, YearMonth month, std::vector<std::string>* explain) {
  const Card& card = ctx.reg.cards[static_cast<size_t>(card_index)];
  const Elder& elder = ctx.reg.elders[static_cast<size_t>(card.elder)];
  auto say = [&](std::string line) {
    if (explain) explain->push_back(std::move(line));
  };
  CardMonth cm;
  cm.month = month;
  cm.card = card_index;
  cm.net_deposit = NetDeposit(ctx, card_index, month);
  say("net deposit in " + month.ToString() + ": " + cm.net_deposit.ToString());

  const PolicyVersion* version = ctx.policy.VersionFor(month);
  if (!version) {
    say("no policy version is in force for " + month.ToString() + " -> ineligible (no_policy_in_force)");
    cm.status = CardMonthStatus::kIneligible;
    cm.reason = "no_policy_in_force";
    return cm;
  }
  cm.rule_version = ctx.policy.RuleVersion(*version);
  say("rule version in force: " + cm.rule_version);

  // 1. Holder alive on the month's first day.
  if (elder.death_date && *elder.death_date < month.first_day()) {
    say("1. holder alive on " + month.first_day().ToString() + ": no, died " + elder.death_date->ToString() + " -> deceased");
    cm.status = CardMonthStatus::kDeceased;
    return cm;
  }
  say(std::string("1. holder alive on ") + month.first_day().ToString() + ": yes" +
      (elder.death_date ? " (died " + elder.death_date->ToString() + ", the month of death still earns)" : ""));

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
    say("2. one card per elder: card " + ctx.reg.cards[static_cast<size_t>(kept)].card_no +
        " (issued earlier) is the elder's card this month -> duplicate_card");
    cm.status = CardMonthStatus::kDuplicateCard;
    return cm;
  }
  say("2. one card per elder: this is the elder's card for the month");

  // 3. Exclusions, in the order written.
  for (const auto& exclusion : version->exclusions) {
    if (!exclusion.AppliesTo(card.card_type)) continue;
    for (const auto& e : elder.enrollments) {
      if (e.program != exclusion.program || !e.Overlaps(month.first_day(), month.last_day())) continue;
      if (exclusion.choice && e.choice != *exclusion.choice) continue;
      cm.status = CardMonthStatus::kExcluded;
      cm.reason = std::string(ProgramName(exclusion.program));
      say("3. exclusion " + cm.reason + (exclusion.choice ? " (" + std::string(ChoiceName(*exclusion.choice)) + ")" : "") +
          ": enrolled with " + e.institution_id + " from " + e.start_on.ToString() +
          (e.end_on ? " to " + e.end_on->ToString() : "") + " -> excluded");
      return cm;
    }
  }
  say("3. exclusions: none applies");

  // 4. Eligibility facts.
  HolderFacts facts;
  facts.age = CompletedYears(elder.birth_date, month.last_day());
  std::string assessment_why;
  facts.assessment = AssessmentLevel(elder, month, version->assessment_valid_months, explain ? &assessment_why : nullptr);
  facts.rural = elder.rural;
  facts.urban = !elder.rural;
  facts.flags = elder.flags;
  say("4. facts on " + month.last_day().ToString() + ": age " + std::to_string(facts.age) + " (born " +
      elder.birth_date.ToString() + "), assessment " +
      (facts.assessment ? std::to_string(*facts.assessment) : std::string("absent")) + " (" + assessment_why + "), " +
      (facts.rural ? "rural" : "urban"));

  // 5. Tier: the highest type up to the card's own that the holder is eligible
  // for and that the month's net deposit reaches.
  bool eligible_somewhere = false;
  const int lowest = version->allow_lower_tier ? 1 : card.card_type;
  for (int t = card.card_type; t >= lowest; --t) {
    const CardTypeRule* rule = version->FindCardType(t);
    if (!rule) continue;
    const bool eligible = rule->eligible->Evaluate(facts);
    if (explain) {
      say("5. type " + std::to_string(t) + " eligibility '" + rule->eligible->source() + "': " +
          (eligible ? "yes" : "no") + " [" + rule->eligible->Explain(facts) + "]");
    }
    if (!eligible) continue;
    eligible_somewhere = true;
    if (cm.net_deposit >= rule->min_monthly_deposit) {
      cm.tier = t;
      cm.subsidy = rule->monthly_subsidy;
      cm.status = CardMonthStatus::kPaid;
      say("   net deposit " + cm.net_deposit.ToString() + " >= " + rule->min_monthly_deposit.ToString() + " -> tier " +
          std::to_string(t) + ", subsidy " + rule->monthly_subsidy.ToString());
      break;
    }
    say("   net deposit " + cm.net_deposit.ToString() + " < " + rule->min_monthly_deposit.ToString());
  }
  if (cm.tier == 0) {
    cm.status = eligible_somewhere ? CardMonthStatus::kBelowThreshold : CardMonthStatus::kIneligible;
    if (!eligible_somewhere) cm.reason = "not_eligible";
    say(std::string("-> ") + CardMonthStatusName(cm.status) + ", subsidy 0.00");
    return cm;
  }
  // 6. Proration by days active and alive.
  if (version->proration == Proration::kByDays) {
    const int days = ActiveAliveDays(card, elder, month);
    cm.subsidy = cm.subsidy.MultiplyRatio(days, month.days(), version->rounding);
    say("6. prorated by days: " + std::to_string(days) + "/" + std::to_string(month.days()) + " -> " + cm.subsidy.ToString());
  }
  say("-> paid, subsidy " + cm.subsidy.ToString());
  return cm;
}

struct ConsumptionKey {
  int32_t serving, home, service;
  friend auto operator<=>(const ConsumptionKey&, const ConsumptionKey&) = default;
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
  std::map<ConsumptionKey, ConsumptionSum> consumption;
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
    const Card& card = ctx_.reg.cards[static_cast<size_t>(card_index)];
    // Card-months of every settled month in which the card is active.
    std::vector<std::pair<YearMonth, Money>> subsidies;  // month -> subsidy, ascending
    for (YearMonth m : ctx_.months.all) {
      if (!card.ActiveIn(m)) continue;
      CardMonth cm = EvaluateCardMonth(ctx_, card_index, m, nullptr);
      subsidies.emplace_back(m, cm.subsidy);
      if (ctx_.period.Contains(m)) {
        if (cm.status == CardMonthStatus::kDuplicateCard) {
          out_->exceptions.push_back(ExceptionRecord{"duplicate_card", Severity::kError, "cards.csv", card.line, "",
                                                     card.card_no, elder.person_id, m.ToString(),
                                                     "the elder has an earlier-issued card active this month"});
        }
        out_->period_card_months.push_back(std::move(cm));
      } else {
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
                "overdraft", Severity::kWarning, ctx_.intake.files[static_cast<size_t>(t.file)].file, t.line, t.txn_id,
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
        return std::tie(x.at, cx, x.txn_id) < std::tie(y.at, cy, y.txn_id);
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
  const Registry& reg = intake.registry;
  auto it = reg.card_index.find(card_no);
  if (it == reg.card_index.end()) {
    out.lines.push_back("card " + card_no + " is not an accepted card of the registry (see exceptions.csv)");
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
  out.lines.push_back("card " + card.card_no + ", type " + std::to_string(card.card_type) + ", centre " +
                      reg.centers[static_cast<size_t>(card.center)].center_id + ", issued " + card.issued_on.ToString() +
                      (card.closed_on ? ", closed " + card.closed_on->ToString() : ", open"));
  std::string flags;
  for (int i = 0; i < kPersonFlagCount; ++i) {
    if (elder.flags & (1u << i)) flags += (flags.empty() ? "" : ", ") + std::string(PersonFlagName(i));
  }
  out.lines.push_back("holder " + elder.person_id + ", born " + elder.birth_date.ToString() + ", " +
                      (elder.rural ? "rural" : "urban") + " hukou" +
                      (elder.death_date ? ", died " + elder.death_date->ToString() : "") +
                      (flags.empty() ? "" : ", flags: " + flags));
  for (const auto& a : elder.assessments) {
    out.lines.push_back("assessment: level " + std::to_string(a.level) + " on " + a.assessed_on.ToString());
  }
  for (const auto& e : elder.enrollments) {
    out.lines.push_back("enrolment: " + std::string(ProgramName(e.program)) + " with " + e.institution_id + " from " +
                        e.start_on.ToString() + (e.end_on ? " to " + e.end_on->ToString() : " (ongoing)") +
                        (e.choice != EnrollmentChoice::kNone ? ", choice " + std::string(ChoiceName(e.choice)) : ""));
  }
  for (int32_t i : card_txns[static_cast<size_t>(it->second)]) {
    const Transaction& t = reg.transactions[static_cast<size_t>(i)];
    const bool deposit_side = t.kind == TxnKind::kDeposit || t.kind == TxnKind::kReversal;
    if (!deposit_side) continue;
    const Transaction& dated = t.kind == TxnKind::kReversal ? reg.transactions[static_cast<size_t>(t.ref)] : t;
    if (YearMonth::Of(dated.local_date) != month) continue;
    out.lines.push_back(std::string(t.kind == TxnKind::kDeposit ? "deposit " : "reversal ") + t.txn_id + " " +
                        t.amount.ToString() + " on " + t.local_date.ToString() +
                        (t.kind == TxnKind::kReversal ? " of " + dated.txn_id : "") +
                        (t.counted ? " (counted)" : " (not counted: card inactive or holder deceased)"));
  }
  if (!card.ActiveIn(month)) {
    out.lines.push_back("the card is not active on any day of " + month.ToString() + ": no card-month");
    return out;
  }
  out.found = true;
  out.result = EvaluateCardMonth(ctx, it->second, month, &out.lines);
  return out;
}

}  // namespace carecard
