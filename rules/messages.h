// Messages for people who edit policy files, in English and Chinese.
//
// Every text the rules layer shows to a person (an error in a rule file, a line
// of `check` output) is one entry of a single table that holds both languages
// side by side, so a message is never added in one language only. A template
// names its arguments {0}, {1}, ...; Format() substitutes them in the order the
// language needs, so a Chinese sentence may put them in another order.
// Thread-safety: the table is constant; every function is pure.
#ifndef CARECARD_RULES_MESSAGES_H_
#define CARECARD_RULES_MESSAGES_H_

#include <initializer_list>
#include <string>
#include <string_view>

namespace carecard {

enum class Language { kEnglish, kChinese };

// One entry per message; the table in messages.cc is indexed by this value.
enum class MessageId {
  // Where something is: the nouns that end a message ("in card type 1").
  kPlaceTopLevel,
  kPlaceVersion,          // {0} version id
  kPlaceVersionEntry,     // {0} 1-based entry number, for a version without a readable id
  kPlaceCardType,         // {0} type
  kPlaceCardTypeEntry,    // {0} 1-based entry number, for a card type without a readable type
  kPlaceExclusion,        // {0} 1-based number, {1} version
  // What a value is, for "expected X, found Y".
  kKindMapping,
  kKindList,
  kKindText,              // {0} the text
  kKindNothing,
  kKindQuotedText,        // {0} the text
  // Hints appended to a message.
  kHintDidYouMean,        // {0} suggestion
  // The file as a whole.
  kFileUnreadable,        // {0} reason
  kFileTooLarge,          // {0} size limit in bytes
  kYamlSyntax,            // {0} parser's description
  kEmptyFile,
  kSecondDocument,
  // Keys and shapes.
  kUnknownKey,            // {0} key, {1} place, {2} hint
  kNonTextKey,            // {0} place
  kDuplicateKey,          // {0} key, {1} place, {2} first line
  kMissingKey,            // {0} key, {1} place
  kExpectedMapping,       // {0} place, {1} found kind
  kWrongKind,             // {0} key, {1} place, {2} expected, {3} found kind
  kNoValue,               // {0} key, {1} place, {2} expected
  // Expected-value descriptions, used as {2} of kWrongKind / kNoValue / kBadValue.
  kExpectText,
  kExpectList,
  kExpectVersionList,
  kExpectCardTypeList,
  kExpectExclusionList,
  kExpectAmount,
  kExpectMonth,
  kExpectMonthOrEmpty,
  kExpectTimezone,
  kExpectMonthsPerPeriod,
  kExpectPositiveWholeNumber,  // {0} largest allowed
  kExpectBoolean,
  kExpectCardType,
  kExpectEither,          // {0}, {1} the two allowed words: "none or by_days"
  kExpectExpression,
  // Values.
  kBadValue,              // {0} key, {1} place, {2} found text, {3} expected, {4} hint
  kBadSchema,             // {0} found
  kChoiceOnlyForHomeBed,  // {0} choice, {1} place, {2} program
  kNoVersions,
  kNoCardTypes,           // {0} place
  kEmptyCardTypeList,     // {0} place
  kTooMany,               // {0} key, {1} place, {2} limit
  kDuplicateCardType,     // {0} type, {1} version, {2} first line
  kDuplicateListedType,   // {0} type, {1} place
  kUndefinedCardType,     // {0} type, {1} place, {2} version, {3} types the version defines
  kDuplicateVersion,      // {0} version, {1} first line
  kToBeforeFrom,          // {0} version, {1} to, {2} from
  kVersionsOverlap,       // {0} a, {1} a's range, {2} b, {3} b's range, {4} overlap
  kVersionsGap,           // {0} a, {1} a's range, {2} b, {3} b's range, {4} gap
  kOpenVersionNotLast,    // {0} open version, {1} its from, {2} next version, {3} next from, {4} month before
  kInExpression,          // {0} key, {1} place, {2} the expression's own message
  // Expression errors; {p} is the 1-based position inside the expression.
  kExprEmpty,
  kExprTooLong,           // {0} limit in bytes
  kExprTooDeep,           // {0} position, {1} limit
  kExprUnexpectedCharacter,  // {0} character, {1} position, {2} hint
  kExprNumberTooLarge,    // {0} number, {1} position
  kExprUnknownVariable,   // {0} name, {1} position, {2} hint
  kExprExpectedValue,     // {0} found, {1} position, {2} hint
  kExprExpectedValueAtEnd,   // {0} position
  kExprExpectedOperator,  // {0} found, {1} position, {2} hint
  kExprUnclosedParenthesis,  // {0} position
  kExprUnopenedParenthesis,  // {0} position
  kExprOrderingNeedsNumbers,  // {0} operator, {1} operand, {2} position
  kExprEqualityMixesTypes,    // {0} operator, {1} position, {2} left, {3} right
  kExprLogicNeedsBooleans,    // {0} operator, {1} operand, {2} position
  kExprNotABoolean,           // {0} expression
  // `check` output.
  kCheckCardType,         // {0} type, {1} " name" or "", {2} deposit, {3} subsidy
  // Policy cases (policy_cases.h): the cases file.
  kCasesFileUnreadable,   // {0} reason
  kCasesFileTooLarge,     // {0} size limit in bytes
  kCasesEmptyFile,
  kCasesNone,
  kPlaceCasesFile,
  kPlaceCase,             // {0} case name
  kPlaceCaseEntry,        // {0} 1-based entry number, for a case without a readable name
  kPlaceCaseElder,        // {0} case name
  kPlaceCaseAssessment,   // {0} case name, {1} 1-based number
  kPlaceCaseCard,         // {0} case name, {1} 1-based number
  kPlaceCaseDeposit,      // {0} case name, {1} 1-based number
  kPlaceCaseReversal,     // {0} case name, {1} deposit number, {2} reversal number
  kPlaceCaseEnrollment,   // {0} case name, {1} 1-based number
  kPlaceCaseExpect,       // {0} case name
  kExpectCaseList,
  kExpectEntryList,       // a list of mappings
  kExpectDate,
  kExpectTimestamp,
  kExpectHukou,
  kExpectFlag,            // {0} the flags
  kExpectLevel,
  kExpectStandard,
  kExpectProgram,
  kExpectChoice,
  kExpectStatus,          // {0} the statuses
  kExpectTier,
  kExpectAmountOrZero,
  kExpectCaseCardNo,      // {0} the case's card numbers
  kCaseDepositNeedsTime,  // {0} place
  kCaseDepositTwoTimes,   // {0} place
  kDuplicateCaseName,     // {0} name, {1} first line
  kDuplicateCaseCardNo,   // {0} card_no, {1} place
  // Policy cases: the runner's report.
  kCaseDifference,        // {0} field, {1} expected, {2} got
  kCaseNoCardMonth,       // {0} card_no, {1} month
  kCaseRowsRejected,      // {0} the intake's codes and details
  kCasesSummary,          // {0} passed, {1} failed
  kCount,  // not a message: the number of entries
};

// The template with {0}, {1}, ... replaced by `args`; a placeholder without an
// argument is left as written (a programmer error the tests catch).
std::string Format(MessageId id, Language language, std::initializer_list<std::string_view> args = {});

// The raw template (for tests that check both languages exist).
std::string_view MessageTemplate(MessageId id, Language language);

}  // namespace carecard

#endif  // CARECARD_RULES_MESSAGES_H_
