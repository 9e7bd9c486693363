// Sentences for `explain`: turns the engine's structured steps (ExplainStep,
// engine/elder_settle.h) into lines a finance officer reads, in English or
// Chinese.
//
// The engine states facts and checks as data and knows no language; this file
// holds, for every ExplainStepKind, one English and one Chinese template side
// by side, so that a step is never added in one language only. Used by the
// `explain` command (batch/) and by the policy-case runner (policy_cases.h)
// to say why a case failed. Thread-safety: the tables are constant; every
// function is pure.
#ifndef CARECARD_RULES_EXPLAIN_RENDER_H_
#define CARECARD_RULES_EXPLAIN_RENDER_H_

#include <string>
#include <string_view>

#include "engine/settlement.h"
#include "rules/messages.h"

namespace carecard {

// One step as a sentence (no newline), for example
//   check 5, type 1 deposit: net deposit 99.99 < minimum 100.00
//   第 5 项检查,第 1 类缴存标准:净缴存 99.99 < 最低 100.00,未达到
std::string RenderExplainStep(const ExplainStep& step, Language language);

// The first line of an explanation: "card QD0001, month 2024-01".
std::string RenderExplainHeader(std::string_view card_no, std::string_view month, Language language);

// The last line: "result: paid, net deposit 100.00, tier 1, subsidy 50.00".
// The status keeps the word card_months.csv writes, with a gloss in Chinese.
std::string RenderExplainResult(const Policy& policy, const CardMonth& result, Language language);

// The status as card_months.csv writes it, glossed in Chinese: "paid(已补贴)".
std::string StatusText(CardMonthStatus status, Language language);

// The raw templates of a step kind (for tests that check both languages exist).
std::string_view ExplainTemplate(ExplainStepKind kind, Language language);

}  // namespace carecard

#endif  // CARECARD_RULES_EXPLAIN_RENDER_H_
