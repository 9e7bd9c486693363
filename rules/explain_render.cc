#include "rules/explain_render.h"

#include <array>
#include <cstddef>
#include <vector>

namespace carecard {
namespace {

struct StepText {
  ExplainStepKind kind;  // repeated so that a misordered table fails the check below
  std::string_view english;
  std::string_view chinese;
};

// {0}, {1}, ... are the step's arguments after Prepare() below has turned the
// optional ones into phrases (", closed 2024-03-31" or ", open").
constexpr std::array<StepText, static_cast<size_t>(kExplainStepKindCount)> kSteps = {{
    {ExplainStepKind::kCardNotFound, "card {0} is not an accepted card of the registry (see exceptions.csv)",
     "卡 {0} 不是登记册中已接受的卡(见 exceptions.csv)"},
    {ExplainStepKind::kCard, "card {0}: type {1}, centre {2}, issued {3}{4}", "卡 {0}:第 {1} 类,所属中心 {2},{3} 发卡{4}"},
    {ExplainStepKind::kHolder, "holder {0}: born {1}, {2}{3}{4}", "持卡人 {0}:{1} 出生,{2}{3}{4}"},
    {ExplainStepKind::kAssessmentOnFile, "assessment on file: level {0} on {1}", "档案中的能力评估:{1} 评估为 {0} 级"},
    {ExplainStepKind::kNoAssessmentOnFile, "no assessment on file", "档案中没有能力评估"},
    {ExplainStepKind::kEnrollmentOnFile, "enrolment on file: {0} with {1} from {2}{3}{4}",
     "档案中的参加记录:{0},机构 {1},自 {2}{3}{4}"},
    {ExplainStepKind::kDepositCounted, "deposit {0} of {1} on {2}: counted", "缴存 {0}:{2} 缴存 {1} 元,计入"},
    {ExplainStepKind::kDepositNotCountedInactive, "deposit {0} of {1} on {2}: not counted, the card was not active that day",
     "缴存 {0}:{2} 缴存 {1} 元,不计入:当天卡不在有效期内"},
    {ExplainStepKind::kDepositNotCountedDeceased, "deposit {0} of {1} on {2}: not counted, the holder died on {3}",
     "缴存 {0}:{2} 缴存 {1} 元,不计入:持卡人已于 {3} 去世"},
    {ExplainStepKind::kReversalCounted,
     "reversal {0} of {1} on {2}, of deposit {3} dated {4}: subtracted from the deposit's month",
     "冲正 {0}:{2} 冲正 {1} 元,冲的是 {4} 的缴存 {3},从该缴存所在月份扣除"},
    {ExplainStepKind::kReversalNotCounted, "reversal {0} of {1} on {2}, of deposit {3}: not counted, nor was its deposit",
     "冲正 {0}:{2} 冲正 {1} 元,冲的是缴存 {3},不计入:该缴存本身未计入"},
    {ExplainStepKind::kCardNotActive, "the card is not active on any day of {0}: there is no card-month",
     "卡在 {0} 没有任何一天处于有效期:该月没有卡月记录"},
    {ExplainStepKind::kNetDeposit, "net deposit for {0}: {1}", "{0} 的净缴存:{1} 元"},
    {ExplainStepKind::kNoPolicyInForce, "no policy version is in force for {0} -> ineligible (no_policy_in_force)",
     "{0} 没有有效的政策版本 -> ineligible(不符合条件,no_policy_in_force)"},
    {ExplainStepKind::kVersionInForce, "policy version in force: {0} ({1}..{2})", "适用的政策版本:{0}({1}..{2})"},
    {ExplainStepKind::kAlive, "check 1, holder alive on {0}: yes", "第 1 项检查,{0} 持卡人是否在世:是"},
    {ExplainStepKind::kAliveDiedInMonth, "check 1, holder alive on {0}: yes (died {1}; the month of death still earns)",
     "第 1 项检查,{0} 持卡人是否在世:是(于 {1} 去世;去世当月仍享受,次月停发)"},
    {ExplainStepKind::kDeceased, "check 1, holder alive on {0}: no, died {1} -> deceased",
     "第 1 项检查,{0} 持卡人是否在世:否,已于 {1} 去世 -> deceased(已去世)"},
    {ExplainStepKind::kElderCard,
     "check 2, one card per elder: this is the elder's card for the month ({0} of the elder's cards active)",
     "第 2 项检查,每人一卡:本卡是该老人本月的有效卡(本月有效卡 {0} 张)"},
    {ExplainStepKind::kDuplicateCard,
     "check 2, one card per elder: card {0}, issued {1}, is the elder's card this month -> duplicate_card",
     "第 2 项检查,每人一卡:该老人本月以 {1} 发放的卡 {0} 为准 -> duplicate_card(重复卡)"},
    {ExplainStepKind::kExclusionNotForType, "check 3, exclusion {0}{1}: does not apply to type {2} cards",
     "第 3 项检查,排除规则 {0}{1}:不适用于第 {2} 类卡"},
    {ExplainStepKind::kExclusionNotEnrolled, "check 3, exclusion {0}{1}: no such enrolment in the month -> passes",
     "第 3 项检查,排除规则 {0}{1}:本月没有相应的参加记录 -> 通过"},
    {ExplainStepKind::kExcluded, "check 3, exclusion {0}{1}: enrolled with {2} from {3}{4} -> excluded",
     "第 3 项检查,排除规则 {0}{1}:自 {3}{4} 参加机构 {2} 的该项目 -> excluded(排除)"},
    {ExplainStepKind::kNoExclusions, "check 3, exclusions: the version has none", "第 3 项检查,排除规则:该版本没有排除规则"},
    {ExplainStepKind::kAge, "fact: age {1} on {0}, the month's last day (born {2})", "事实:{0}(月末)年龄 {1} 周岁(出生于 {2})"},
    {ExplainStepKind::kAssessmentValid, "fact: assessment level {0}, assessed {1}, valid through {2}",
     "事实:能力评估 {0} 级,{1} 评估,有效期至 {2}"},
    {ExplainStepKind::kAssessmentExpired,
     "fact: no valid assessment; the latest (level {0}, assessed {1}) was valid through {2} only",
     "事实:没有有效的能力评估;最近一次({1} 评估为 {0} 级)有效期只到 {2}"},
    {ExplainStepKind::kAssessmentNone, "fact: no assessment dated on or before {0}", "事实:{0} 及以前没有能力评估"},
    {ExplainStepKind::kHukouFact, "fact: {0}", "事实:{0}"},
    {ExplainStepKind::kFlagsFact, "fact: flags {0}", "事实:人员标记 {0}"},
    {ExplainStepKind::kLowerTierNotAllowed, "the version allows no lower tier: only type {0} can apply",
     "该版本不允许降档:只能适用第 {0} 类"},
    {ExplainStepKind::kTypeNotInVersion, "check 4, type {0}: not defined in this version", "第 4 项检查,第 {0} 类:该版本未定义"},
    {ExplainStepKind::kEligible, "check 4, type {0}{1} eligibility \"{2}\": yes [{3}]",
     "第 4 项检查,第 {0} 类{1}资格条件 \"{2}\":符合 [{3}]"},
    {ExplainStepKind::kNotEligible, "check 4, type {0}{1} eligibility \"{2}\": no [{3}]",
     "第 4 项检查,第 {0} 类{1}资格条件 \"{2}\":不符合 [{3}]"},
    {ExplainStepKind::kThresholdMet, "check 5, type {0} deposit: net deposit {1} >= minimum {2} -> tier {0}, subsidy {3}",
     "第 5 项检查,第 {0} 类缴存标准:净缴存 {1} >= 最低 {2} -> 第 {0} 档,补贴 {3} 元"},
    {ExplainStepKind::kThresholdNotMet, "check 5, type {0} deposit: net deposit {1} < minimum {2}",
     "第 5 项检查,第 {0} 类缴存标准:净缴存 {1} < 最低 {2},未达到"},
    {ExplainStepKind::kProrated, "check 6, prorated by days: {0} of {1} days -> subsidy {2}",
     "第 6 项,按天折算:{1} 天中的 {0} 天 -> 补贴 {2} 元"},
    {ExplainStepKind::kPaid, "-> paid: tier {0}, subsidy {1}", "-> paid(已补贴):第 {0} 档,补贴 {1} 元"},
    {ExplainStepKind::kBelowThreshold, "-> below_threshold: eligible, but the net deposit reaches no tier; subsidy 0.00",
     "-> below_threshold(未达缴存标准):符合资格,但净缴存未达到任何档次;补贴 0.00 元"},
    {ExplainStepKind::kIneligible,
     "-> ineligible (not_eligible): not eligible for any type this card can pay; subsidy 0.00",
     "-> ineligible(不符合条件,not_eligible):不符合本卡可适用的任何类别;补贴 0.00 元"},
}};

constexpr bool TableIsInOrder() {
  for (size_t i = 0; i < kSteps.size(); ++i) {
    if (static_cast<size_t>(kSteps[i].kind) != i) return false;
  }
  return true;
}
static_assert(TableIsInOrder(), "kSteps must list every ExplainStepKind once, in declaration order");

bool Zh(Language language) { return language == Language::kChinese; }

std::string ProgramText(const std::string& program, Language language) {
  if (!Zh(language)) return program;
  if (program == "gov_home_service") return program + "(政府购买居家上门服务)";
  if (program == "home_bed") return program + "(家庭养老床位)";
  return program;
}

std::string HukouText(const std::string& hukou, Language language) {
  if (Zh(language)) return hukou == "rural" ? "农业户籍(rural)" : "非农业户籍(urban)";
  return hukou + " hukou";
}

// " (choice home_bed_discount)" or "".
std::string ChoiceText(const std::string& choice, Language language) {
  if (choice.empty()) return {};
  return Zh(language) ? "(选择 " + choice + ")" : " (choice " + choice + ")";
}

// The arguments in the form the templates use: optional values become phrases.
std::vector<std::string> Prepare(const ExplainStep& step, Language language) {
  std::vector<std::string> a = step.args;
  const bool zh = Zh(language);
  switch (step.kind) {
    case ExplainStepKind::kCard: {
      a.resize(5);
      a[4] = a[4].empty() ? (zh ? ",未注销" : ", open") : (zh ? "," + a[4] + " 注销" : ", closed " + a[4]);
      break;
    }
    case ExplainStepKind::kHolder: {
      a.resize(5);
      a[2] = HukouText(a[2], language);
      if (!a[3].empty()) a[3] = zh ? "," + a[3] + " 去世" : ", died " + a[3];
      if (!a[4].empty()) a[4] = zh ? ",标记:" + a[4] : ", flags: " + a[4];
      break;
    }
    case ExplainStepKind::kEnrollmentOnFile: {
      a.resize(5);
      a[0] = ProgramText(a[0], language);
      a[3] = a[3].empty() ? (zh ? " 起,仍在参加" : " (ongoing)") : (zh ? " 至 " + a[3] : " to " + a[3]);
      if (!a[4].empty()) a[4] = zh ? ",选择 " + a[4] : ", choice " + a[4];
      break;
    }
    case ExplainStepKind::kExclusionNotForType:
    case ExplainStepKind::kExclusionNotEnrolled:
    case ExplainStepKind::kExcluded: {
      a.resize(step.kind == ExplainStepKind::kExcluded ? 5 : 3);
      a[0] = ProgramText(a[0], language);
      a[1] = ChoiceText(a[1], language);
      if (step.kind == ExplainStepKind::kExcluded) {
        a[4] = a[4].empty() ? (zh ? " 起" : "") : (zh ? " 至 " + a[4] : " to " + a[4]);
      }
      break;
    }
    case ExplainStepKind::kVersionInForce: {
      a.resize(3);
      if (a[2].empty()) a[2] = zh ? ",仍然有效" : ", still in force";
      break;
    }
    case ExplainStepKind::kHukouFact: {
      a.resize(1);
      a[0] = HukouText(a[0], language);
      break;
    }
    case ExplainStepKind::kFlagsFact: {
      a.resize(1);
      if (a[0].empty()) a[0] = zh ? "无" : "none";
      break;
    }
    case ExplainStepKind::kEligible:
    case ExplainStepKind::kNotEligible: {
      a.resize(4);
      if (!a[1].empty()) a[1] = zh ? "(" + a[1] + ")" : " (" + a[1] + ")";
      break;
    }
    default: break;
  }
  return a;
}

std::string Substitute(std::string_view pattern, const std::vector<std::string>& args) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    // Placeholders are a single digit: no step has more than ten arguments.
    if (pattern[i] == '{' && i + 2 < pattern.size() && pattern[i + 1] >= '0' && pattern[i + 1] <= '9' &&
        pattern[i + 2] == '}') {
      const size_t index = static_cast<size_t>(pattern[i + 1] - '0');
      if (index < args.size()) {
        out.append(args[index]);
        i += 2;
        continue;
      }
    }
    out.push_back(pattern[i]);
  }
  return out;
}

}  // namespace

std::string_view ExplainTemplate(ExplainStepKind kind, Language language) {
  const StepText& text = kSteps.at(static_cast<size_t>(kind));
  return Zh(language) ? text.chinese : text.english;
}

std::string RenderExplainStep(const ExplainStep& step, Language language) {
  return Substitute(ExplainTemplate(step.kind, language), Prepare(step, language));
}

std::string RenderExplainHeader(std::string_view card_no, std::string_view month, Language language) {
  std::vector<std::string> args{std::string(card_no), std::string(month)};
  return Substitute(Zh(language) ? "卡 {0},月份 {1}" : "card {0}, month {1}", args);
}

std::string StatusText(CardMonthStatus status, Language language) {
  std::string name = CardMonthStatusName(status);
  if (!Zh(language)) return name;
  switch (status) {
    case CardMonthStatus::kPaid: return name + "(已补贴)";
    case CardMonthStatus::kBelowThreshold: return name + "(未达缴存标准)";
    case CardMonthStatus::kIneligible: return name + "(不符合条件)";
    case CardMonthStatus::kExcluded: return name + "(排除)";
    case CardMonthStatus::kDuplicateCard: return name + "(重复卡)";
    case CardMonthStatus::kDeceased: return name + "(已去世)";
  }
  return name;
}

std::string RenderExplainResult(const Policy& policy, const CardMonth& result, Language language) {
  const bool zh = Zh(language);
  std::string reason;
  const std::string why(result.reason_name());
  if (!why.empty()) reason = zh ? ",原因 " + why : " (" + why + ")";
  const std::string version = RuleVersionOf(policy, result);
  std::vector<std::string> args{StatusText(result.status, language), reason, result.net_deposit.ToString(),
                                result.tier ? std::to_string(result.tier) : std::string("-"), result.subsidy.ToString(),
                                version.empty() ? std::string("-") : version};
  return Substitute(zh ? "结果:{0}{1},净缴存 {2},档次 {3},补贴 {4},规则版本 {5}"
                       : "result: {0}{1}, net deposit {2}, tier {3}, subsidy {4}, rule version {5}",
                    args);
}

}  // namespace carecard
