// Policy cases: tests of a policy file written by policy staff, in the spirit
// of OpenFisca's YAML tests (docs/policy-staff.md).
//
// A cases file sits next to its policy (rules/qingdao-2022.cases.yaml) and
// lists cases: an elder, their cards, deposits and enrolments, a month, and the
// expected status, tier and subsidy of a card in that month:
//
//   cases:
//     - name: type 1 pays 50 at a deposit of 100.00
//       month: 2024-01
//       elder: {birth_date: 1950-03-10}
//       cards: [{card_type: 1, issued_on: 2022-06-01}]
//       deposits: [{amount: 100.00, date: 2024-01-05}]
//       expect: {status: paid, tier: 1, subsidy: 50.00}
//
// Each case is run as the engine would settle it: its rows are synthesized
// (valid resident id, a default centre) and fed into an Intake, the period
// containing the month is settled with an empty book, and the card-month is
// compared with the expectation. The file is validated completely first, with
// file:line:col errors and "did you mean" for misspelt keys, like policy files.
// Thread-safety: pure functions; nothing here touches shared state.
#ifndef CARECARD_RULES_POLICY_CASES_H_
#define CARECARD_RULES_POLICY_CASES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/calendar.h"
#include "engine/money.h"
#include "engine/policy.h"
#include "engine/settlement.h"
#include "rules/messages.h"
#include "rules/policy_loader.h"

namespace carecard {

struct CaseAssessment {
  Date assessed_on;
  int level = 0;
  std::string standard = "GB/T 42195-2022";
};

struct CaseCard {
  std::string card_no;  // default QD0001, QD0002, ... in the order written
  int card_type = 1;
  Date issued_on;
  std::optional<Date> closed_on;
};

// A moment: a full timestamp with its offset as written, or a date (read as
// noon of that day in the policy's time zone).
struct CaseMoment {
  std::string at;
  std::optional<Date> date;
};

struct CaseReversal {
  Money amount;
  CaseMoment when;
};

struct CaseDeposit {
  std::string card_no;  // default: the case's first card
  Money amount;
  CaseMoment when;
  std::vector<CaseReversal> reversals;
};

struct CaseEnrollment {
  Program program = Program::kGovHomeService;
  std::string institution_id = "I01";
  Date start_on;
  std::optional<Date> end_on;
  EnrollmentChoice choice = EnrollmentChoice::kNone;
};

struct CaseExpectation {
  std::string card_no;  // default: the case's first card
  CardMonthStatus status = CardMonthStatus::kPaid;
  int tier = 0;         // 0 = no tier
  Money subsidy;
  std::optional<std::string> reason;
  std::optional<Money> net_deposit;
  std::optional<std::string> rule_version;  // policy@version, "" when none is in force
};

struct PolicyCase {
  std::string name;
  int line = 0;  // where the case starts in the file
  YearMonth month;
  Date birth_date;
  bool rural = true;
  uint32_t flags = 0;  // PersonFlag bits
  std::optional<Date> death_date;
  std::vector<CaseAssessment> assessments;
  std::vector<CaseCard> cards;
  std::vector<CaseDeposit> deposits;
  std::vector<CaseEnrollment> enrollments;
  std::vector<CaseExpectation> expectations;  // one, or a list
};

struct PolicyCasesLoadResult {
  bool ok = false;
  std::vector<PolicyCase> cases;  // valid only when ok
  std::vector<RuleError> errors;  // every error found, in file order
};

// Limits on one cases file; real files are a few kilobytes.
inline constexpr size_t kMaxCasesFileBytes = 1 << 20;
inline constexpr size_t kMaxCases = 1000;
inline constexpr size_t kMaxEntriesPerCase = 100;  // cards, deposits, reversals, enrolments, assessments

// Parses and validates a cases file. Never throws on bad input.
PolicyCasesLoadResult LoadPolicyCasesFromText(std::string_view text, const std::string& file_name,
                                              Language language = Language::kEnglish);
PolicyCasesLoadResult LoadPolicyCasesFromFile(const std::string& path, Language language = Language::kEnglish);

struct PolicyCaseResult {
  std::string name;
  bool passed = false;
  std::string difference;  // when failed: what differs and why, in the requested language
};

// Runs one case under `policy`.
PolicyCaseResult RunPolicyCase(const Policy& policy, const PolicyCase& policy_case, Language language);

inline constexpr int kCasesPassed = 0;
inline constexpr int kCasesFailed = 1;
inline constexpr int kCasesMalformed = 2;  // the rules or the cases file is not valid

// The `test` command: loads both files, runs every case, writes one line per
// case ("ok  name" or "FAIL name: difference") and "N passed, M failed" to
// `out`; errors in either file go to `err` as file:line:col lines. Returns
// kCasesPassed, kCasesFailed or kCasesMalformed.
int RunPolicyCasesCommand(const std::string& rules_path, const std::string& cases_path, Language language,
                          std::ostream& out, std::ostream& err);

}  // namespace carecard

#endif  // CARECARD_RULES_POLICY_CASES_H_
