#include "rules/messages.h"

#include <array>
#include <cassert>
#include <cstddef>

namespace carecard {
namespace {

struct MessageText {
  MessageId id;  // repeated here so that a misordered table fails the check below
  std::string_view english;
  std::string_view chinese;
};

// Chinese punctuation follows the project's examples: ASCII brackets, semicolons
// and question marks, so that messages line up in a terminal and stay greppable.
constexpr std::array<MessageText, static_cast<size_t>(MessageId::kCount)> kMessages = {{
    {MessageId::kPlaceTopLevel, "the policy", "策略顶层"},
    {MessageId::kPlaceVersion, "version '{0}'", "版本 '{0}'"},
    {MessageId::kPlaceVersionEntry, "versions entry {0}", "versions 第 {0} 项"},
    {MessageId::kPlaceCardType, "card type {0}", "第 {0} 类卡"},
    {MessageId::kPlaceCardTypeEntry, "card_types entry {0}", "card_types 第 {0} 项"},
    {MessageId::kPlaceExclusion, "exclusion {0} of version '{1}'", "版本 '{1}' 的第 {0} 条排除规则"},
    {MessageId::kKindMapping, "a mapping (key: value lines)", "映射(键: 值)"},
    {MessageId::kKindList, "a list", "列表"},
    {MessageId::kKindText, "'{0}'", "'{0}'"},
    {MessageId::kKindNothing, "nothing", "空值"},
    {MessageId::kKindQuotedText, "the quoted text \"{0}\" (remove the quotes)", "带引号的文本 \"{0}\"(请去掉引号)"},
    {MessageId::kHintDidYouMean, "; did you mean '{0}'?", ";是否应为 '{0}'?"},
    {MessageId::kFileUnreadable, "cannot read the policy file: {0}", "无法读取策略文件:{0}"},
    {MessageId::kFileTooLarge, "the policy file is larger than {0} bytes", "策略文件超过 {0} 字节"},
    {MessageId::kYamlSyntax, "YAML syntax error: {0}", "YAML 语法错误:{0}"},
    {MessageId::kEmptyFile, "the file is empty; expected a mapping with 'schema', 'policy' and 'versions'",
     "文件为空;应为包含 'schema'、'policy' 和 'versions' 的映射"},
    {MessageId::kSecondDocument, "a second YAML document starts here; expected exactly one",
     "此处开始了第二个 YAML 文档;应只有一个"},
    {MessageId::kUnknownKey, "unknown key '{0}' in {1}{2}", "未知的键 '{0}'({1}){2}"},
    {MessageId::kNonTextKey, "a key in {0} is not plain text; expected a name such as 'version'",
     "{0} 中的键不是纯文本;应为名称,如 'version'"},
    {MessageId::kDuplicateKey, "duplicate key '{0}' in {1}; it was first given on line {2}",
     "重复的键 '{0}'({1});首次出现在第 {2} 行"},
    {MessageId::kMissingKey, "missing required key '{0}' in {1}", "缺少必需的键 '{0}'({1})"},
    {MessageId::kExpectedMapping, "{0} must be a mapping (key: value lines), found {1}", "{0} 应为映射(键: 值),实际为 {1}"},
    {MessageId::kWrongKind, "'{0}' in {1} must be {2}, found {3}", "'{0}'({1})应为 {2},实际为 {3}"},
    {MessageId::kNoValue, "'{0}' in {1} has no value; expected {2}", "'{0}'({1})没有值;应为 {2}"},
    {MessageId::kExpectText, "text", "文本"},
    {MessageId::kExpectList, "a list such as [1, 2]", "列表,如 [1, 2]"},
    {MessageId::kExpectVersionList, "a list of versions (lines starting with '- version:')",
     "版本列表(以 '- version:' 开头的行)"},
    {MessageId::kExpectCardTypeList, "a list of card types (lines starting with '- type:')",
     "卡类型列表(以 '- type:' 开头的行)"},
    {MessageId::kExpectExclusionList, "a list of exclusions (lines starting with '- program:')",
     "排除规则列表(以 '- program:' 开头的行)"},
    {MessageId::kExpectAmount, "an amount in yuan greater than 0 with at most two decimals, such as 100 or 100.00",
     "大于 0、最多两位小数的金额(元),如 100 或 100.00"},
    {MessageId::kExpectMonth, "a month YYYY-MM such as 2022-03", "YYYY-MM 格式的月份,如 2022-03"},
    {MessageId::kExpectMonthOrEmpty, "a month YYYY-MM such as 2024-12, or nothing (still in force)",
     "YYYY-MM 格式的月份(如 2024-12),或留空(仍然有效)"},
    {MessageId::kExpectTimezone, "a UTC offset +HH:MM such as \"+08:00\"", "+HH:MM 格式的 UTC 偏移,如 \"+08:00\""},
    {MessageId::kExpectMonthsPerPeriod, "1, 2, 3, 6 or 12", "1、2、3、6 或 12"},
    {MessageId::kExpectPositiveWholeNumber, "a whole number from 1 to {0}", "1 到 {0} 之间的整数"},
    {MessageId::kExpectBoolean, "true or false", "true 或 false"},
    {MessageId::kExpectCardType, "1 or 2", "1 或 2"},
    {MessageId::kExpectEither, "{0} or {1}", "{0} 或 {1}"},
    {MessageId::kExpectExpression, "an eligibility expression such as 'rural and age >= 60'",
     "资格条件表达式,如 'rural and age >= 60'"},
    {MessageId::kBadValue, "'{0}' in {1} is '{2}'; expected {3}{4}", "'{0}'({1})为 '{2}';应为 {3}{4}"},
    {MessageId::kBadSchema, "unsupported schema '{0}'; expected 'subsidy-rules/1'",
     "不支持的 schema '{0}';应为 'subsidy-rules/1'"},
    {MessageId::kChoiceOnlyForHomeBed,
     "'choice' in {1} is '{0}', but program {2} records no choice; only home_bed does",
     "'choice'({1})为 '{0}',但项目 {2} 不记录选择;只有 home_bed 记录选择"},
    {MessageId::kNoVersions, "'versions' is empty; expected at least one version", "'versions' 为空;应至少有一个版本"},
    {MessageId::kNoCardTypes, "'card_types' in {0} is empty; expected card type 1, 2 or both",
     "'card_types'({0})为空;应列出第 1 类、第 2 类或两者"},
    {MessageId::kEmptyCardTypeList,
     "'card_types' in {0} is an empty list; leave 'card_types' out to apply to every card type",
     "'card_types'({0})为空列表;如适用于所有卡类型,请删除 'card_types'"},
    {MessageId::kTooMany, "'{0}' in {1} has more than {2} entries", "'{0}'({1})超过 {2} 项"},
    {MessageId::kDuplicateCardType, "card type {0} is defined twice in version '{1}'; it was first defined on line {2}",
     "第 {0} 类卡在版本 '{1}' 中重复定义;首次定义在第 {2} 行"},
    {MessageId::kDuplicateListedType, "card type {0} is listed twice in {1}", "第 {0} 类卡在 {1} 中重复列出"},
    {MessageId::kUndefinedCardType, "{1} lists card type {0}, which version '{2}' does not define; it defines {3}",
     "{1} 列出了第 {0} 类卡,但版本 '{2}' 未定义该类卡;已定义:{3}"},
    {MessageId::kDuplicateVersion, "version '{0}' is defined twice; it was first defined on line {1}",
     "版本 '{0}' 重复定义;首次定义在第 {1} 行"},
    {MessageId::kToBeforeFrom, "'to' {1} of version '{0}' is before its 'from' {2}",
     "版本 '{0}' 的 'to' {1} 早于 'from' {2}"},
    {MessageId::kVersionsOverlap, "versions '{0}' ({1}) and '{2}' ({3}) overlap in {4}",
     "版本 '{0}'({1})与 '{2}'({3})在 {4} 重叠"},
    {MessageId::kVersionsGap, "versions '{0}' ({1}) and '{2}' ({3}) leave a gap in {4}; no version is in force then",
     "版本 '{0}'({1})与 '{2}'({3})之间在 {4} 存在空档;该期间没有有效版本"},
    {MessageId::kOpenVersionNotLast,
     "version '{0}' ({1}..) has an empty 'to' (still in force), but version '{2}' starts later, in {3}; only the "
     "last version may leave 'to' empty; set 'to: {4}'",
     "版本 '{0}'({1}..)的 'to' 为空(仍然有效),但版本 '{2}' 从 {3} 开始;只有最后一个版本可以不填 'to';请设置 "
     "'to: {4}'"},
    {MessageId::kInExpression, "in '{0}' of {1}: {2}", "{1}的 '{0}' 中:{2}"},
    {MessageId::kExprEmpty, "the expression is empty; expected a condition such as 'age >= 60'",
     "表达式为空;应为条件,如 'age >= 60'"},
    {MessageId::kExprTooLong, "the expression is longer than {0} bytes", "表达式超过 {0} 字节"},
    {MessageId::kExprTooDeep, "the expression nests more than {1} levels deep at position {0}",
     "表达式在位置 {0} 处嵌套超过 {1} 层"},
    {MessageId::kExprUnexpectedCharacter, "unexpected character '{0}' at position {1}{2}",
     "位置 {1} 处有意外的字符 '{0}'{2}"},
    {MessageId::kExprNumberTooLarge, "the number {0} at position {1} is too large", "位置 {1} 处的数字 {0} 过大"},
    {MessageId::kExprUnknownVariable, "unknown variable '{0}' at position {1}{2}", "位置 {1} 处的变量 '{0}' 未知{2}"},
    {MessageId::kExprExpectedValue,
     "unexpected '{0}' at position {1}; expected a value (a number, true, false, a variable or '('){2}",
     "位置 {1} 处有意外的 '{0}';应为值(数字、true、false、变量或 '('){2}"},
    {MessageId::kExprExpectedValueAtEnd,
     "the expression ends at position {0}; expected a value (a number, true, false, a variable or '(')",
     "表达式在位置 {0} 处结束;应为值(数字、true、false、变量或 '(')"},
    {MessageId::kExprExpectedOperator,
     "unexpected '{0}' at position {1}; expected 'and', 'or', a comparison or the end of the expression{2}",
     "位置 {1} 处有意外的 '{0}';应为 'and'、'or'、比较运算符或表达式结尾{2}"},
    {MessageId::kExprUnclosedParenthesis, "'(' at position {0} is never closed; expected ')'",
     "位置 {0} 处的 '(' 没有闭合;应有 ')'"},
    {MessageId::kExprUnopenedParenthesis, "')' at position {0} closes nothing; no '(' is open",
     "位置 {0} 处的 ')' 没有对应的 '('"},
    {MessageId::kExprOrderingNeedsNumbers, "'{0}' compares numbers, but '{1}' at position {2} is a boolean",
     "'{0}' 比较的是数字,但位置 {2} 处的 '{1}' 是布尔值"},
    {MessageId::kExprEqualityMixesTypes, "'{0}' at position {1} compares a number with a boolean ('{2}' and '{3}')",
     "位置 {1} 处的 '{0}' 将数字与布尔值比较('{2}' 与 '{3}')"},
    {MessageId::kExprLogicNeedsBooleans, "'{0}' takes booleans, but '{1}' at position {2} is a number",
     "'{0}' 的操作数应为布尔值,但位置 {2} 处的 '{1}' 是数字"},
    {MessageId::kExprNotABoolean,
     "the expression '{0}' is a number, not a condition; expected a boolean such as 'age >= 60'",
     "表达式 '{0}' 是数字而不是条件;应为布尔值,如 'age >= 60'"},
    {MessageId::kCheckCardType, "type {0}{1}: deposit >= {2}, subsidy {3}", "第 {0} 类{1}:缴存 >= {2},补贴 {3}"},
    {MessageId::kCasesFileUnreadable, "cannot read the cases file: {0}", "无法读取用例文件:{0}"},
    {MessageId::kCasesFileTooLarge, "the cases file is larger than {0} bytes", "用例文件超过 {0} 字节"},
    {MessageId::kCasesEmptyFile, "the file is empty; expected a mapping with 'cases'", "文件为空;应为包含 'cases' 的映射"},
    {MessageId::kCasesNone, "'cases' is empty; expected at least one case", "'cases' 为空;应至少有一个用例"},
    {MessageId::kPlaceCasesFile, "the cases file", "用例文件顶层"},
    {MessageId::kPlaceCase, "case '{0}'", "用例 '{0}'"},
    {MessageId::kPlaceCaseEntry, "cases entry {0}", "cases 第 {0} 项"},
    {MessageId::kPlaceCaseElder, "the elder of case '{0}'", "用例 '{0}' 的老人"},
    {MessageId::kPlaceCaseAssessment, "assessment {1} of case '{0}'", "用例 '{0}' 的第 {1} 条能力评估"},
    {MessageId::kPlaceCaseCard, "card {1} of case '{0}'", "用例 '{0}' 的第 {1} 张卡"},
    {MessageId::kPlaceCaseDeposit, "deposit {1} of case '{0}'", "用例 '{0}' 的第 {1} 笔缴存"},
    {MessageId::kPlaceCaseReversal, "reversal {2} of deposit {1} of case '{0}'", "用例 '{0}' 第 {1} 笔缴存的第 {2} 笔冲正"},
    {MessageId::kPlaceCaseEnrollment, "enrolment {1} of case '{0}'", "用例 '{0}' 的第 {1} 条参加记录"},
    {MessageId::kPlaceCaseExpect, "the expectation of case '{0}'", "用例 '{0}' 的预期结果"},
    {MessageId::kExpectCaseList, "a list of cases (lines starting with '- name:')", "用例列表(以 '- name:' 开头的行)"},
    {MessageId::kExpectEntryList, "a list of entries (lines starting with '- ')", "条目列表(以 '- ' 开头的行)"},
    {MessageId::kExpectDate, "a date YYYY-MM-DD such as 2024-01-15", "YYYY-MM-DD 格式的日期,如 2024-01-15"},
    {MessageId::kExpectTimestamp, "a time with its offset such as 2024-01-31T23:30:00+08:00",
     "带时区的时间,如 2024-01-31T23:30:00+08:00"},
    {MessageId::kExpectHukou, "rural or urban", "rural 或 urban"},
    {MessageId::kExpectFlag, "a person flag: {0}", "人员标记之一:{0}"},
    {MessageId::kExpectLevel, "a level from 0 to 4", "0 到 4 之间的等级"},
    {MessageId::kExpectStandard, "'GB/T 42195-2022' or 'MZ/T 039-2013'", "'GB/T 42195-2022' 或 'MZ/T 039-2013'"},
    {MessageId::kExpectProgram, "home_bed or gov_home_service", "home_bed 或 gov_home_service"},
    {MessageId::kExpectChoice, "card_subsidy or home_bed_discount (home_bed only), or nothing",
     "card_subsidy 或 home_bed_discount(仅 home_bed),或留空"},
    {MessageId::kExpectStatus, "one of {0}", "以下之一:{0}"},
    {MessageId::kExpectTier, "0, 1, 2 or none", "0、1、2 或 none"},
    {MessageId::kExpectAmountOrZero, "an amount in yuan with at most two decimals, such as 50.00 or 0",
     "最多两位小数的金额(元),如 50.00 或 0"},
    {MessageId::kExpectCaseCardNo, "the card_no of a card of this case: {0}", "本用例中某张卡的 card_no:{0}"},
    {MessageId::kCaseDepositNeedsTime, "{0} needs 'at' (a time with its offset) or 'date'",
     "{0} 需要 'at'(带时区的时间)或 'date'"},
    {MessageId::kCaseDepositTwoTimes, "{0} has both 'at' and 'date'; expected one of them",
     "{0} 同时有 'at' 和 'date';只应有其中一个"},
    {MessageId::kDuplicateCaseName, "a case named '{0}' is already on line {1}; expected a different name",
     "名为 '{0}' 的用例已在第 {1} 行出现;应使用不同的名称"},
    {MessageId::kDuplicateCaseCardNo, "card_no '{0}' is used twice in {1}", "card_no '{0}' 在{1}中出现两次"},
    {MessageId::kCaseDifference, "expected {0} {1}, got {2}", "{0} 应为 {1},实际为 {2}"},
    {MessageId::kCaseNoCardMonth, "card {0} has no card-month in {1}: it is not active in that month",
     "卡 {0} 在 {1} 没有卡月记录:该月卡不在有效期内"},
    {MessageId::kCaseRowsRejected, "the case's rows were rejected by intake: {0}", "用例的数据行被拒收:{0}"},
    {MessageId::kCasesSummary, "{0} passed, {1} failed", "通过 {0} 个,失败 {1} 个"},
}};

constexpr bool TableIsInOrder() {
  for (size_t i = 0; i < kMessages.size(); ++i) {
    if (static_cast<size_t>(kMessages[i].id) != i) return false;
  }
  return true;
}
static_assert(TableIsInOrder(), "kMessages must list every MessageId once, in declaration order");

}  // namespace

std::string_view MessageTemplate(MessageId id, Language language) {
  const MessageText& text = kMessages.at(static_cast<size_t>(id));
  return language == Language::kChinese ? text.chinese : text.english;
}

std::string Format(MessageId id, Language language, std::initializer_list<std::string_view> args) {
  const std::string_view pattern = MessageTemplate(id, language);
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    // Placeholders are a single digit: no message has more than ten arguments.
    if (pattern[i] == '{' && i + 2 < pattern.size() && pattern[i + 1] >= '0' && pattern[i + 1] <= '9' &&
        pattern[i + 2] == '}') {
      const size_t index = static_cast<size_t>(pattern[i + 1] - '0');
      if (index < args.size()) {
        out.append(*(args.begin() + index));
        i += 2;
        continue;
      }
    }
    out.push_back(pattern[i]);
  }
  return out;
}

}  // namespace carecard
