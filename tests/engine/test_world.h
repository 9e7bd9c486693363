// A small world for engine tests: a Qingdao-like policy built in code and a
// settlement run fed with rows written the way the files write them.
#ifndef CARECARD_TESTS_ENGINE_TEST_WORLD_H_
#define CARECARD_TESTS_ENGINE_TEST_WORLD_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/policy.h"
#include "engine/settlement.h"

namespace carecard::testing {

class FunctionRule : public EligibilityRule {
 public:
  FunctionRule(std::function<bool(const HolderFacts&)> fn, std::string source) : fn_(std::move(fn)), source_(std::move(source)) {}
  bool Evaluate(const HolderFacts& f) const override { return fn_(f); }
  std::string Explain(const HolderFacts& f) const override { return Evaluate(f) ? "true" : "false"; }
  const std::string& source() const override { return source_; }

 private:
  std::function<bool(const HolderFacts&)> fn_;
  std::string source_;
};

// The Qingdao reading: type 1 rural and 60+, deposit 100 -> 50; type 2 rural and
// (80+ or 60+ with assessment >= 2), deposit 200 -> 120; two exclusions.
inline Policy QingdaoPolicy() {
  Policy p;
  p.policy_id = "qingdao-rural-care-card";
  PolicyVersion v;
  v.version = "2022.1";
  v.from = YearMonth::Of(2022, 3);
  CardTypeRule t1;
  t1.type = 1;
  t1.eligible = std::make_shared<FunctionRule>([](const HolderFacts& f) { return f.rural && f.age >= 60; }, "rural and age >= 60");
  t1.min_monthly_deposit = Money::FromFen(10000);
  t1.monthly_subsidy = Money::FromFen(5000);
  CardTypeRule t2;
  t2.type = 2;
  t2.eligible = std::make_shared<FunctionRule>(
      [](const HolderFacts& f) { return f.rural && (f.age >= 80 || (f.age >= 60 && f.assessment && *f.assessment >= 2)); },
      "rural and (age >= 80 or (age >= 60 and assessment >= 2))");
  t2.min_monthly_deposit = Money::FromFen(20000);
  t2.monthly_subsidy = Money::FromFen(12000);
  v.card_types = {t1, t2};
  ExclusionRule gov;
  gov.program = Program::kGovHomeService;
  gov.card_types = {1, 2};
  ExclusionRule bed;
  bed.program = Program::kHomeBed;
  bed.choice = EnrollmentChoice::kHomeBedDiscount;
  bed.card_types = {2};
  v.exclusions = {gov, bed};
  p.versions = {v};
  return p;
}

// Rows by file; Build() feeds them to an Intake in the order files are read.
struct World {
  std::vector<std::vector<std::string>> centers = {
      {"C01", "大村镇居家社区养老服务中心", "平度市", "12370211729436483J", "6222020300001111"},
      {"C02", "李哥庄镇居家社区养老服务中心", "胶州市", "12370211756893485F", "6222020300002222"}};
  std::vector<std::vector<std::string>> stations = {{"C01S01", "C01", "东庄村", "站"}, {"C02S01", "C02", "西河村", "站"}};
  std::vector<std::vector<std::string>> persons;
  std::vector<std::vector<std::string>> assessments;
  std::vector<std::vector<std::string>> cards;
  std::vector<std::vector<std::string>> enrollments;
  std::vector<std::vector<std::string>> balances;
  std::vector<std::vector<std::string>> deposits;
  std::vector<std::vector<std::string>> consumption;

  // A rural elder with a valid id number derived from `serial`.
  void Person(const std::string& id, const std::string& birth, const std::string& death = "",
              const std::string& hukou = "rural", const std::string& flags = "") {
    persons.push_back({id, ResidentId(birth, static_cast<int>(persons.size())), "某某", birth, hukou, "村", flags, death});
  }
  void Card(const std::string& card_no, const std::string& person, int type, const std::string& issued = "2022-06-01",
            const std::string& closed = "", const std::string& center = "C01") {
    cards.push_back({card_no, person, std::to_string(type), center, issued, closed});
  }
  void Deposit(const std::string& txn, const std::string& card, const std::string& amount, const std::string& at) {
    deposits.push_back({txn, card, "deposit", amount, at, "cash", ""});
  }
  void Reversal(const std::string& txn, const std::string& card, const std::string& amount, const std::string& at,
                const std::string& ref) {
    deposits.push_back({txn, card, "reversal", amount, at, "cash", ref});
  }
  void Consume(const std::string& txn, const std::string& card, const std::string& amount, const std::string& at,
               const std::string& station = "C01S01", const std::string& service = "助餐") {
    consumption.push_back({txn, card, "consumption", amount, at, station, service, ""});
  }
  void Refund(const std::string& txn, const std::string& card, const std::string& amount, const std::string& at,
              const std::string& ref, const std::string& station = "") {
    consumption.push_back({txn, card, "refund", amount, at, station, "", ref});
  }

  static std::string ResidentId(const std::string& birth, int serial) {
    std::string id = "370282" + birth.substr(0, 4) + birth.substr(5, 2) + birth.substr(8, 2);
    const int sequence = (serial % 1000 + 1000) % 1000;
    id += static_cast<char>('0' + sequence / 100);
    id += static_cast<char>('0' + sequence / 10 % 10);
    id += static_cast<char>('0' + sequence % 10);
    id.push_back(ResidentIdCheckCharacter(id));
    return id;
  }

  // Settles `period_name` under `policy` with `options` (threads, spill, explain...).
  struct Settled Run(const std::string& period_name, const BookState& book = {}, const Policy& policy = QingdaoPolicy(),
                     RunOptions options = {}) const;
  // The period of `last_month`, settled on an empty book: for tests of the row checks.
  struct Settled Build(YearMonth last_month, UtcOffset zone = UtcOffset{8 * 3600}) const;
  struct Settled Settle(const std::string& period_name, const BookState& book = {}, int threads = 1,
                        const Policy& policy = QingdaoPolicy()) const;
};

// A card-month with its reason and rule version as the files write them.
struct CardMonthView : CardMonth {
  std::string reason;
  std::string rule_version;
};
// A statement line with its card and centre named.
struct StatementView {
  std::string card_no, center_id;
  Money opening;
  Flows flows;
  Money closing;
};

struct ConsumptionView {
  std::string serving_center_id, home_center_id, service;
  int64_t transactions = 0;
  Money amount;
};

// What a run gives, as plain values.
struct Settled {
  std::vector<FileCounts> files;
  Registry registry;
  std::vector<CardMonthView> card_months;
  std::vector<AdjustmentLine> adjustments;
  std::vector<PayoutLine> payouts;
  std::vector<StatementView> statements;
  std::vector<ConsumptionView> consumption_by_center;
  std::vector<HomebedExclusionLine> homebed_exclusions;
  std::vector<ExceptionRecord> exceptions;
  ControlTotals totals;
  std::optional<CardMonthExplanation> explanation;
};

inline Settled World::Run(const std::string& period_name, const BookState& book, const Policy& policy,
                          RunOptions options) const {
  const auto period = *PayoutPeriod::Parse(period_name, policy.months_per_period);
  Intake intake(policy, period, book, std::move(options));
  auto feed = [&](InputKind kind, const std::string& name, const std::vector<std::vector<std::string>>& rows) {
    std::string missing;
    intake.BeginFile(kind, name, RequiredColumns(kind), &missing);
    int64_t line = 2;
    for (const auto& r : rows) intake.AddRow(line++, r);
    intake.EndFile();
  };
  feed(InputKind::kCenters, "centers.csv", centers);
  feed(InputKind::kStations, "stations.csv", stations);
  feed(InputKind::kPersons, "persons.csv", persons);
  feed(InputKind::kAssessments, "assessments.csv", assessments);
  feed(InputKind::kCards, "cards.csv", cards);
  feed(InputKind::kEnrollments, "enrollments.csv", enrollments);
  feed(InputKind::kPlatformBalances, "platform_balances.csv", balances);
  feed(InputKind::kDeposits, "deposits.csv", deposits);
  feed(InputKind::kConsumption, "consumption.csv", consumption);
  RunResult run = intake.Finish();
  Settled out;
  const SettlementResult& r = run.settlement;
  for (const CardMonth& cm : r.card_months) {
    CardMonthView v;
    static_cast<CardMonth&>(v) = cm;
    v.reason = std::string(cm.reason_name());
    v.rule_version = RuleVersionOf(policy, cm);
    out.card_months.push_back(std::move(v));
  }
  for (const StatementLine& s : r.statements) {
    StatementView v;
    if (s.card >= 0) {
      v.card_no = std::string(run.registry.card_no(s.card));
      v.center_id = std::string(run.registry.center_id(run.registry.card(s.card).center));
    } else {
      const auto& bc = book.cards[static_cast<size_t>(s.book_card)];
      v.card_no = bc.card_no;
      v.center_id = bc.statement_center >= 0 ? book.centers[static_cast<size_t>(bc.statement_center)] : "";
    }
    v.opening = s.opening;
    v.flows = s.flows;
    v.closing = s.closing();
    out.statements.push_back(std::move(v));
  }
  out.adjustments = r.adjustments;
  out.payouts = r.payouts;
  for (const auto& c : r.consumption_by_center) {
    out.consumption_by_center.push_back(ConsumptionView{std::string(run.registry.center_id(c.serving_center)),
                                                        std::string(run.registry.center_id(c.home_center)),
                                                        r.services[c.service], c.transactions, c.amount});
  }
  out.homebed_exclusions = r.homebed_exclusions;
  out.exceptions = r.exceptions.Records();
  out.totals = r.totals;
  out.files = run.counts;
  out.explanation = run.explanation;
  out.registry = std::move(run.registry);
  return out;
}

inline Settled World::Build(YearMonth last_month, UtcOffset zone) const {
  Policy policy = QingdaoPolicy();
  policy.timezone = zone;
  return Run(PayoutPeriod::Containing(last_month, policy.months_per_period).ToString(), {}, policy);
}

inline Settled World::Settle(const std::string& period_name, const BookState& book, int threads, const Policy& policy) const {
  RunOptions options;
  options.threads = threads;
  return Run(period_name, book, policy, options);
}

// The card-month of `card_no` in `month`, or a default (card -1) when absent.
inline const CardMonthView* FindCardMonth(const Settled& r, [[maybe_unused]] const World& w, const std::string& card_no,
                                          const std::string& month) {
  for (const auto& cm : r.card_months) {
    if (cm.month.ToString() == month && r.registry.card_no(cm.card) == card_no) return &cm;
  }
  return nullptr;
}

inline int CountCode(const std::vector<ExceptionRecord>& ex, const std::string& code) {
  int n = 0;
  for (const auto& e : ex) n += e.code == code;
  return n;
}

}  // namespace carecard::testing

#endif  // CARECARD_TESTS_ENGINE_TEST_WORLD_H_
