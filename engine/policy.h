// Policy: the in-memory form of a `subsidy-rules/1` file (rules.md).
//
// The engine only reads a Policy; rules/ builds and validates it. Eligibility
// expressions are compiled by rules/ into an EligibilityRule, so that the engine
// evaluates them without knowing the expression language. A Policy is immutable
// once built and safe to share between threads.
#ifndef CARECARD_ENGINE_POLICY_H_
#define CARECARD_ENGINE_POLICY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/calendar.h"
#include "engine/money.h"

namespace carecard {

// Person flags of formats.md (persons.csv `flags`), one bit each.
enum class PersonFlag : uint32_t {
  kLeftBehind = 1u << 0,
  kLivingAlone = 1u << 1,
  kEmptyNest = 1u << 2,
  kDibao = 1u << 3,
  kTekun = 1u << 4,
  kDisabled = 1u << 5,
  kSpecialFamily = 1u << 6,
};
inline constexpr int kPersonFlagCount = 7;
// The flag's name in files and expressions ("left_behind"); index 0..kPersonFlagCount-1.
std::string_view PersonFlagName(int index);
// nullopt for a name that is not a flag.
std::optional<PersonFlag> PersonFlagFromName(std::string_view name);

// The holder's attributes for one month (semantics.md §5.4).
struct HolderFacts {
  int age = 0;                     // completed years on the month's last day
  std::optional<int> assessment;   // latest valid level, absent when none
  bool rural = false;
  bool urban = false;
  uint32_t flags = 0;              // PersonFlag bits
  bool has(PersonFlag f) const { return (flags & static_cast<uint32_t>(f)) != 0; }
};

// A compiled eligibility expression. Implementations are immutable and thread-safe.
class EligibilityRule {
 public:
  virtual ~EligibilityRule() = default;
  virtual bool Evaluate(const HolderFacts& facts) const = 0;
  // For `explain`: a human-readable account of which parts held and which failed.
  virtual std::string Explain(const HolderFacts& facts) const = 0;
  // The expression as written in the rules file.
  virtual const std::string& source() const = 0;
};

enum class Program { kHomeBed, kGovHomeService };
enum class EnrollmentChoice { kNone, kCardSubsidy, kHomeBedDiscount };
enum class Proration { kNone, kByDays };

std::string_view ProgramName(Program p);                  // "home_bed", "gov_home_service"
std::optional<Program> ProgramFromName(std::string_view name);
std::string_view ChoiceName(EnrollmentChoice c);          // "", "card_subsidy", "home_bed_discount"
std::optional<EnrollmentChoice> ChoiceFromName(std::string_view name);  // "" -> kNone

struct CardTypeRule {
  int type = 1;                                   // 1 or 2
  std::string name;                               // optional, e.g. 第一类
  std::shared_ptr<const EligibilityRule> eligible;  // never null in a loaded policy
  Money min_monthly_deposit;
  Money monthly_subsidy;
};

struct ExclusionRule {
  Program program = Program::kGovHomeService;
  std::optional<EnrollmentChoice> choice;  // when set, only enrolments recording this choice
  std::vector<int> card_types;             // empty = every type
  std::string note;
  bool AppliesTo(int card_type) const;
};

struct PolicyVersion {
  std::string version;                 // "2022.1"
  YearMonth from;
  std::optional<YearMonth> to;         // nullopt = still in force
  int assessment_valid_months = 12;
  bool allow_lower_tier = true;
  Proration proration = Proration::kNone;
  Rounding rounding = Rounding::kHalfUp;
  std::vector<CardTypeRule> card_types;  // sorted by type
  std::vector<ExclusionRule> exclusions; // in the order written
  std::string note;

  bool InForce(YearMonth m) const { return from <= m && (!to || m <= *to); }
  const CardTypeRule* FindCardType(int type) const;
};

struct Policy {
  std::string policy_id;     // "qingdao-rural-care-card"
  std::string title;
  std::string source;
  UtcOffset timezone{8 * 3600};
  int months_per_period = 2;
  std::vector<PolicyVersion> versions;  // sorted by `from`, non-overlapping

  // The version in force for `month`, or nullptr (status ineligible / no_policy_in_force).
  const PolicyVersion* VersionFor(YearMonth month) const;
  // `policy@version`, the card-month's rule_version.
  std::string RuleVersion(const PolicyVersion& v) const { return policy_id + "@" + v.version; }
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_POLICY_H_
