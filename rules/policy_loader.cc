#include "rules/policy_loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <utility>

#include "rules/expression.h"
#include "rules/spelling.h"
#include "rules/yaml_documents.h"
#include "rules/yaml_source.h"

namespace carecard {
namespace {

constexpr std::string_view kSchema = "subsidy-rules/1";

// Named limits on what one file may hold; real policies are far below them.
constexpr size_t kMaxVersions = 100;
constexpr size_t kMaxCardTypesPerVersion = 8;  // only 1 and 2 are valid; the rest are reported
constexpr size_t kMaxExclusionsPerVersion = 64;
constexpr int64_t kMaxAssessmentValidMonths = 1200;

// The keys each level accepts (rules.md "Keys and defaults").
constexpr std::array<std::string_view, 7> kTopKeys = {"schema",   "policy",            "title",   "source",
                                                      "timezone", "months_per_period", "versions"};
constexpr std::array<std::string_view, 3> kTopRequired = {"schema", "policy", "versions"};
constexpr std::array<std::string_view, 10> kVersionKeys = {
    "version",  "from",     "to",         "assessment_valid_months", "allow_lower_tier",
    "proration", "rounding", "card_types", "exclusions",              "note"};
constexpr std::array<std::string_view, 3> kVersionRequired = {"version", "from", "card_types"};
constexpr std::array<std::string_view, 6> kCardTypeKeys = {"type",          "name", "eligible", "min_monthly_deposit",
                                                           "monthly_subsidy", "note"};
constexpr std::array<std::string_view, 4> kCardTypeRequired = {"type", "eligible", "min_monthly_deposit",
                                                               "monthly_subsidy"};
constexpr std::array<std::string_view, 4> kExclusionKeys = {"program", "choice", "card_types", "note"};
constexpr std::array<std::string_view, 1> kExclusionRequired = {"program"};

constexpr std::array<std::string_view, 2> kProrationNames = {"none", "by_days"};
constexpr std::array<std::string_view, 2> kRoundingNames = {"half_up", "half_even"};
constexpr std::array<std::string_view, 2> kProgramNames = {"home_bed", "gov_home_service"};
constexpr std::array<std::string_view, 2> kChoiceNames = {"card_subsidy", "home_bed_discount"};


// A key of a mapping, its value, and where the key was written.
struct Field {
  std::string name;
  YAML::Node key;
  YAML::Node value;
};

struct Fields {
  YAML::Node map;
  std::vector<Field> items;  // first occurrence of each key, in file order
  std::vector<Field> duplicates;  // later occurrences, reported by CheckKeys
  std::vector<int> first_line_of_duplicate;

  const Field* Find(std::string_view name) const {
    for (const Field& field : items) {
      if (field.name == name) return &field;
    }
    return nullptr;
  }
};

bool IsPlain(const YAML::Node& node) { return node.Tag() == "?"; }

std::optional<int64_t> ParseWholeNumber(std::string_view text) {
  // Nine digits bound every value below any int overflow; limits are checked by callers.
  if (text.empty() || text.size() > 9) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::optional<bool> ParseBoolean(std::string_view text) {
  // The YAML 1.2 core schema's spellings; yes/no/on/off are not booleans here.
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

std::string RangeText(YearMonth from, std::optional<YearMonth> to) {
  return from.ToString() + ".." + (to ? to->ToString() : std::string());
}

// What the cross-version checks need to know about one version.
struct VersionSpan {
  std::string id;
  YearMonth from;
  std::optional<YearMonth> to;
  Location from_location;
  Location to_location;  // the `to` key, or the version's first line when `to` is not written
};

class Loader {
 public:
  Loader(std::string_view text, const std::string& file_name, Language language)
      : text_(text), source_(text), file_name_(file_name), language_(language) {}

  PolicyLoadResult Run() {
    try {
      ReadDocument();
    } catch (const YAML::Exception& e) {
      // Parse errors, and anything yaml-cpp throws while walking the tree.
      Report(source_.At(e.mark), Message(MessageId::kYamlSyntax, {e.msg}));
    }
    PolicyLoadResult result;
    std::stable_sort(errors_.begin(), errors_.end(), [](const RuleError& a, const RuleError& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    result.errors = std::move(errors_);
    result.ok = result.errors.empty();
    if (result.ok) {
      std::stable_sort(policy_.versions.begin(), policy_.versions.end(),
                       [](const PolicyVersion& a, const PolicyVersion& b) { return a.from < b.from; });
      result.policy = std::move(policy_);
    }
    return result;
  }

 private:
  // --- reporting ------------------------------------------------------------

  std::string Message(MessageId id, std::initializer_list<std::string_view> args = {}) const {
    return Format(id, language_, args);
  }

  std::string Hint(std::string_view found, std::span<const std::string_view> candidates) const {
    const std::optional<std::string_view> nearest = NearestName(found, candidates);
    return nearest ? Message(MessageId::kHintDidYouMean, {*nearest}) : std::string();
  }

  void Report(Location where, std::string message) {
    if (errors_.size() >= kMaxRuleErrors) return;
    errors_.push_back(RuleError{file_name_, where.line, where.column, std::move(message)});
  }

  Location At(const YAML::Node& node) const { return source_.At(node.Mark()); }

  // "a mapping", "a list", "nothing", "'text'" or the quoted form.
  std::string Describe(const YAML::Node& node) const {
    if (node.IsMap()) return Message(MessageId::kKindMapping);
    if (node.IsSequence()) return Message(MessageId::kKindList);
    if (!node.IsDefined() || node.IsNull()) return Message(MessageId::kKindNothing);
    if (!IsPlain(node)) return Message(MessageId::kKindQuotedText, {node.Scalar()});
    return Message(MessageId::kKindText, {node.Scalar()});
  }

  // --- mappings -------------------------------------------------------------

  // Reads `node` as a mapping, reporting a node of another kind and non-text
  // keys. Duplicate, unknown and missing keys are reported by CheckKeys, once
  // the caller has read enough (a version id, a card type) to name the place.
  std::optional<Fields> ReadMapping(const YAML::Node& node, const std::string& place) {
    if (!node.IsMap()) {
      Report(At(node), Message(MessageId::kExpectedMapping, {place, Describe(node)}));
      return std::nullopt;
    }
    Fields fields;
    fields.map = node;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        Report(At(key), Message(MessageId::kNonTextKey, {place}));
        continue;
      }
      if (const Field* first = fields.Find(key.Scalar())) {
        fields.duplicates.push_back(Field{key.Scalar(), key, it->second});
        fields.first_line_of_duplicate.push_back(At(first->key).line);
        continue;
      }
      fields.items.push_back(Field{key.Scalar(), key, it->second});
    }
    return fields;
  }

  void CheckKeys(const Fields& fields, std::span<const std::string_view> allowed,
                 std::span<const std::string_view> required, const std::string& place) {
    for (size_t i = 0; i < fields.duplicates.size(); ++i) {
      const Field& field = fields.duplicates[i];
      Report(At(field.key), Message(MessageId::kDuplicateKey,
                                    {field.name, place, std::to_string(fields.first_line_of_duplicate[i])}));
    }
    std::vector<std::string_view> suggested;
    for (const Field& field : fields.items) {
      if (std::find(allowed.begin(), allowed.end(), field.name) != allowed.end()) continue;
      const std::optional<std::string_view> nearest = NearestName(field.name, allowed);
      if (nearest) suggested.push_back(*nearest);
      Report(At(field.key), Message(MessageId::kUnknownKey,
                                    {field.name, place,
                                     nearest ? Message(MessageId::kHintDidYouMean, {*nearest}) : std::string()}));
    }
    for (std::string_view name : required) {
      if (fields.Find(name)) continue;
      // A misspelt required key is one slip, already reported with its fix.
      if (std::find(suggested.begin(), suggested.end(), name) != suggested.end()) continue;
      Report(At(fields.map), Message(MessageId::kMissingKey, {name, place}));
    }
  }

  // --- scalars --------------------------------------------------------------

  // A field's text, from a plain or quoted scalar. An empty value is reported
  // when `required`, and reads as "" otherwise.
  // `expected` describes a good value for the message; empty means "text".
  std::optional<std::string> ReadText(const Field& field, const std::string& place, bool required,
                                      std::string expected = {}) {
    if (expected.empty()) expected = Message(MessageId::kExpectText);
    if (field.value.IsNull() || (field.value.IsScalar() && field.value.Scalar().empty())) {
      if (!required) return std::string();
      Report(At(field.key), Message(MessageId::kNoValue, {field.name, place, expected}));
      return std::nullopt;
    }
    if (!field.value.IsScalar()) {
      Report(At(field.value), Message(MessageId::kWrongKind, {field.name, place, expected, Describe(field.value)}));
      return std::nullopt;
    }
    return field.value.Scalar();
  }

  // The text of a plain (unquoted) scalar, for numbers and booleans: quotes make
  // YAML text, and a policy editor should see that a number was not written as one.
  std::optional<std::string> ReadPlain(const Field& field, const std::string& place, const std::string& expected) {
    if (field.value.IsNull()) {
      Report(At(field.key), Message(MessageId::kNoValue, {field.name, place, expected}));
      return std::nullopt;
    }
    if (!field.value.IsScalar() || !IsPlain(field.value)) {
      Report(At(field.value), Message(MessageId::kWrongKind, {field.name, place, expected, Describe(field.value)}));
      return std::nullopt;
    }
    return field.value.Scalar();
  }

  void ReportBadValue(const Field& field, const std::string& place, std::string_view found,
                      const std::string& expected, const std::string& hint = {}) {
    Report(At(field.value), Message(MessageId::kBadValue, {field.name, place, found, expected, hint}));
  }

  std::optional<YearMonth> ReadMonth(const Field& field, const std::string& place, MessageId expected) {
    const std::optional<std::string> text = ReadText(field, place, /*required=*/true, Message(expected));
    if (!text) return std::nullopt;
    // YAML hands over `2022-03` as text; reading it ourselves also rejects 2024-13.
    std::optional<YearMonth> month = YearMonth::Parse(*text);
    if (!month) ReportBadValue(field, place, *text, Message(expected));
    return month;
  }

  std::optional<int64_t> ReadWholeNumber(const Field& field, const std::string& place, const std::string& expected,
                                         int64_t low, int64_t high) {
    const std::optional<std::string> text = ReadPlain(field, place, expected);
    if (!text) return std::nullopt;
    const std::optional<int64_t> value = ParseWholeNumber(*text);
    if (!value || *value < low || *value > high) {
      ReportBadValue(field, place, *text, expected);
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> ReadBoolean(const Field& field, const std::string& place) {
    const std::string expected = Message(MessageId::kExpectBoolean);
    const std::optional<std::string> text = ReadPlain(field, place, expected);
    if (!text) return std::nullopt;
    const std::optional<bool> value = ParseBoolean(*text);
    if (!value) ReportBadValue(field, place, *text, expected);
    return value;
  }

  std::optional<Money> ReadAmount(const Field& field, const std::string& place) {
    const std::string expected = Message(MessageId::kExpectAmount);
    const std::optional<std::string> text = ReadPlain(field, place, expected);
    if (!text) return std::nullopt;
    // The scalar's own text, never a float: 50, 50.0 and 50.00 are one amount;
    // 50.005, 5e1, -50 and .5 are not amounts.
    std::optional<Money> amount = Money::ParsePositive(*text);
    if (!amount) ReportBadValue(field, place, *text, expected);
    return amount;
  }

  // One of two words (proration, rounding, program, choice), with a suggestion.
  std::optional<std::string> ReadWord(const Field& field, const std::string& place,
                                      std::span<const std::string_view> words) {
    const std::string expected = Message(MessageId::kExpectEither, {words[0], words[1]});
    const std::optional<std::string> text = ReadText(field, place, /*required=*/true, expected);
    if (!text) return std::nullopt;
    if (std::find(words.begin(), words.end(), *text) != words.end()) return text;
    ReportBadValue(field, place, *text, expected, Hint(*text, words));
    return std::nullopt;
  }

  // The list under `field`, or nullopt after reporting what was there instead.
  std::optional<YAML::Node> ReadList(const Field& field, const std::string& place, MessageId expected) {
    if (field.value.IsNull()) {
      Report(At(field.key), Message(MessageId::kNoValue, {field.name, place, Message(expected)}));
      return std::nullopt;
    }
    if (!field.value.IsSequence()) {
      Report(At(field.value), Message(MessageId::kWrongKind, {field.name, place, Message(expected), Describe(field.value)}));
      return std::nullopt;
    }
    return field.value;
  }

  bool CheckListSize(const Field& field, const YAML::Node& list, const std::string& place, size_t limit) {
    if (list.size() <= limit) return true;
    Report(At(field.key), Message(MessageId::kTooMany, {field.name, place, std::to_string(limit)}));
    return false;
  }

  // --- the document ---------------------------------------------------------

  void ReadDocument() {
    // Not YAML::LoadAll, which never returns on some input (rules/yaml_documents.h).
    const YamlDocuments documents = LoadFirstYamlDocument(text_);
    if (documents.first.IsNull()) {
      Report(Location{}, Message(MessageId::kEmptyFile));
      return;
    }
    if (documents.second) Report(source_.At(*documents.second), Message(MessageId::kSecondDocument));
    ReadPolicy(documents.first);
  }

  void ReadPolicy(const YAML::Node& root) {
    const std::string place = Message(MessageId::kPlaceTopLevel);
    const std::optional<Fields> fields = ReadMapping(root, place);
    if (!fields) return;
    CheckKeys(*fields, kTopKeys, kTopRequired, place);

    if (const Field* field = fields->Find("schema")) {
      const std::optional<std::string> schema = ReadText(*field, place, /*required=*/true);
      if (schema && *schema != kSchema) Report(At(field->value), Message(MessageId::kBadSchema, {*schema}));
    }
    if (const Field* field = fields->Find("policy")) {
      policy_.policy_id = ReadText(*field, place, /*required=*/true).value_or("");
    }
    if (const Field* field = fields->Find("title")) policy_.title = ReadText(*field, place, false).value_or("");
    if (const Field* field = fields->Find("source")) policy_.source = ReadText(*field, place, false).value_or("");
    if (const Field* field = fields->Find("timezone")) {
      const std::string expected = Message(MessageId::kExpectTimezone);
      if (const std::optional<std::string> text = ReadText(*field, place, /*required=*/true, expected)) {
        // rules.md asks for +HH:MM; UtcOffset::Parse would also take "Z".
        const std::optional<UtcOffset> offset =
            text->starts_with('+') || text->starts_with('-') ? UtcOffset::Parse(*text) : std::nullopt;
        if (offset) {
          policy_.timezone = *offset;
        } else {
          ReportBadValue(*field, place, *text, expected);
        }
      }
    }
    if (const Field* field = fields->Find("months_per_period")) {
      const std::string expected = Message(MessageId::kExpectMonthsPerPeriod);
      if (const std::optional<std::string> text = ReadPlain(*field, place, expected)) {
        const std::optional<int64_t> months = ParseWholeNumber(*text);
        if (months && *months <= 12 && PayoutPeriod::IsValidLength(static_cast<int>(*months))) {
          policy_.months_per_period = static_cast<int>(*months);
        } else {
          ReportBadValue(*field, place, *text, expected);
        }
      }
    }
    if (const Field* field = fields->Find("versions")) ReadVersions(*field, place);
  }

  void ReadVersions(const Field& field, const std::string& place) {
    const std::optional<YAML::Node> list = ReadList(field, place, MessageId::kExpectVersionList);
    if (!list || !CheckListSize(field, *list, place, kMaxVersions)) return;
    if (list->size() == 0) {
      Report(At(field.key), Message(MessageId::kNoVersions));
      return;
    }
    std::vector<VersionSpan> spans;
    std::map<std::string, int, std::less<>> first_line_of_version;
    for (size_t i = 0; i < list->size(); ++i) {
      ReadVersion((*list)[i], i + 1, spans, first_line_of_version);
    }
    CheckVersionsCoverTime(spans);
  }

  void ReadVersion(const YAML::Node& node, size_t entry, std::vector<VersionSpan>& spans,
                   std::map<std::string, int, std::less<>>& first_line_of_version) {
    std::string place = Message(MessageId::kPlaceVersionEntry, {std::to_string(entry)});
    const std::optional<Fields> fields = ReadMapping(node, place);
    if (!fields) return;
    PolicyVersion version;
    bool complete = true;  // false once a value is missing or wrong: the version joins no cross-checks

    if (const Field* field = fields->Find("version")) {
      if (std::optional<std::string> id = ReadText(*field, place, /*required=*/true)) {
        version.version = *id;
        place = Message(MessageId::kPlaceVersion, {*id});
        const auto [it, inserted] = first_line_of_version.emplace(*id, At(field->value).line);
        if (!inserted) {
          Report(At(field->value), Message(MessageId::kDuplicateVersion, {*id, std::to_string(it->second)}));
        }
      } else {
        complete = false;
      }
    }
    CheckKeys(*fields, kVersionKeys, kVersionRequired, place);

    VersionSpan span;
    span.to_location = At(fields->map);
    std::optional<YearMonth> from;
    if (const Field* field = fields->Find("from")) {
      from = ReadMonth(*field, place, MessageId::kExpectMonth);
      span.from_location = At(field->value);
    }
    if (from) {
      version.from = *from;
    } else {
      complete = false;
    }
    if (const Field* field = fields->Find("to")) {
      span.to_location = At(field->key);
      // An empty `to:` means still in force.
      if (!field->value.IsNull()) {
        if (std::optional<YearMonth> to = ReadMonth(*field, place, MessageId::kExpectMonthOrEmpty)) {
          version.to = *to;
          if (from && *to < *from) {
            Report(At(field->value), Message(MessageId::kToBeforeFrom,
                                             {version.version, to->ToString(), version.from.ToString()}));
            complete = false;
          }
        } else {
          complete = false;
        }
      }
    }
    if (const Field* field = fields->Find("assessment_valid_months")) {
      const std::string expected =
          Message(MessageId::kExpectPositiveWholeNumber, {std::to_string(kMaxAssessmentValidMonths)});
      if (auto months = ReadWholeNumber(*field, place, expected, 1, kMaxAssessmentValidMonths)) {
        version.assessment_valid_months = static_cast<int>(*months);
      }
    }
    if (const Field* field = fields->Find("allow_lower_tier")) {
      if (auto allow = ReadBoolean(*field, place)) version.allow_lower_tier = *allow;
    }
    if (const Field* field = fields->Find("proration")) {
      if (auto word = ReadWord(*field, place, kProrationNames)) {
        version.proration = *word == "by_days" ? Proration::kByDays : Proration::kNone;
      }
    }
    if (const Field* field = fields->Find("rounding")) {
      if (auto word = ReadWord(*field, place, kRoundingNames)) {
        version.rounding = *word == "half_even" ? Rounding::kHalfEven : Rounding::kHalfUp;
      }
    }
    if (const Field* field = fields->Find("note")) version.note = ReadText(*field, place, false).value_or("");

    bool every_type_known = true;
    if (const Field* field = fields->Find("card_types")) {
      every_type_known = ReadCardTypes(*field, place, version);
    }
    if (const Field* field = fields->Find("exclusions")) {
      ReadExclusions(*field, place, every_type_known, version);
    }

    if (complete && !version.version.empty()) {
      span.id = version.version;
      span.from = version.from;
      span.to = version.to;
      spans.push_back(span);
    }
    policy_.versions.push_back(std::move(version));
  }

  // Returns true when every entry's type was readable, so that exclusions can
  // be checked against the set of types without false alarms.
  bool ReadCardTypes(const Field& field, const std::string& version_place, PolicyVersion& version) {
    const std::optional<YAML::Node> list = ReadList(field, version_place, MessageId::kExpectCardTypeList);
    if (!list || !CheckListSize(field, *list, version_place, kMaxCardTypesPerVersion)) return false;
    if (list->size() == 0) {
      Report(At(field.key), Message(MessageId::kNoCardTypes, {version_place}));
      return false;
    }
    bool every_type_known = true;
    std::map<int, int> first_line_of_type;
    for (size_t i = 0; i < list->size(); ++i) {
      std::optional<CardTypeRule> rule = ReadCardType((*list)[i], i + 1, version.version, first_line_of_type);
      if (!rule) {
        every_type_known = false;
      } else if (rule->type != 0) {
        version.card_types.push_back(std::move(*rule));
      }
    }
    std::stable_sort(version.card_types.begin(), version.card_types.end(),
                     [](const CardTypeRule& a, const CardTypeRule& b) { return a.type < b.type; });
    return every_type_known;
  }

  // nullopt when the entry's type could not be read; a rule with type 0 for a
  // duplicate type (already reported).
  std::optional<CardTypeRule> ReadCardType(const YAML::Node& node, size_t entry, const std::string& version_id,
                                           std::map<int, int>& first_line_of_type) {
    std::string place = Message(MessageId::kPlaceCardTypeEntry, {std::to_string(entry)});
    const std::optional<Fields> fields = ReadMapping(node, place);
    if (!fields) return std::nullopt;
    CardTypeRule rule;
    rule.type = 0;
    const Field* type_field = fields->Find("type");
    if (type_field) {
      const std::string expected = Message(MessageId::kExpectCardType);
      if (auto type = ReadWholeNumber(*type_field, place, expected, 1, 2)) {
        rule.type = static_cast<int>(*type);
        place = Message(MessageId::kPlaceCardType, {std::to_string(rule.type)});
      }
    }
    CheckKeys(*fields, kCardTypeKeys, kCardTypeRequired, place);
    bool duplicate = false;
    if (rule.type != 0) {
      const int line = At(type_field->value).line;
      const auto [it, inserted] = first_line_of_type.emplace(rule.type, line);
      if (!inserted) {
        Report(At(type_field->value), Message(MessageId::kDuplicateCardType,
                                              {std::to_string(rule.type), version_id, std::to_string(it->second)}));
        duplicate = true;
      }
    }
    if (const Field* field = fields->Find("name")) rule.name = ReadText(*field, place, false).value_or("");
    if (const Field* field = fields->Find("eligible")) rule.eligible = ReadEligibility(*field, place);
    if (const Field* field = fields->Find("min_monthly_deposit")) {
      if (auto amount = ReadAmount(*field, place)) rule.min_monthly_deposit = *amount;
    }
    if (const Field* field = fields->Find("monthly_subsidy")) {
      if (auto amount = ReadAmount(*field, place)) rule.monthly_subsidy = *amount;
    }
    if (rule.type == 0) return std::nullopt;
    if (duplicate) rule.type = 0;
    return rule;
  }

  std::shared_ptr<const EligibilityRule> ReadEligibility(const Field& field, const std::string& place) {
    const std::optional<std::string> text = ReadText(field, place, /*required=*/true, Message(MessageId::kExpectExpression));
    if (!text) return nullptr;
    ExpressionCompileResult compiled = CompileEligibilityExpression(*text, language_);
    if (compiled.error) {
      Report(ExpressionTokenLocation(field.value, compiled.error->position),
             Message(MessageId::kInExpression, {field.name, place, compiled.error->message}));
    }
    return compiled.rule;
  }

  // The file position of character `position` (1-based) of an expression. For an
  // expression written on one line — plain, or quoted without escapes — that is
  // the scalar's column plus the offset; otherwise (folded, block, escapes) the
  // scalar's start, and the message's position says where inside it.
  Location ExpressionTokenLocation(const YAML::Node& value, int position) const {
    const YAML::Mark mark = value.Mark();
    const Location start = source_.At(mark);
    const std::string_view line = source_.Line(mark.line);
    if (mark.column < 0 || static_cast<size_t>(mark.column) > line.size()) return start;
    const std::string_view written = line.substr(static_cast<size_t>(mark.column));
    const std::string& scalar = value.Scalar();
    size_t quote = 0;
    if (!written.empty() && (written[0] == '"' || written[0] == '\'')) quote = 1;
    if (!written.substr(quote).starts_with(scalar)) return start;
    if (quote == 1 && (written.size() <= scalar.size() + 1 || written[scalar.size() + 1] != written[0])) return start;
    return Location{start.line, start.column + static_cast<int>(quote) + position - 1};
  }

  void ReadExclusions(const Field& field, const std::string& version_place, bool every_type_known,
                      PolicyVersion& version) {
    if (field.value.IsNull()) return;  // `exclusions:` with nothing under it: none
    const std::optional<YAML::Node> list = ReadList(field, version_place, MessageId::kExpectExclusionList);
    if (!list || !CheckListSize(field, *list, version_place, kMaxExclusionsPerVersion)) return;
    for (size_t i = 0; i < list->size(); ++i) {
      if (std::optional<ExclusionRule> rule = ReadExclusion((*list)[i], i + 1, every_type_known, version)) {
        version.exclusions.push_back(std::move(*rule));
      }
    }
  }

  std::optional<ExclusionRule> ReadExclusion(const YAML::Node& node, size_t entry, bool every_type_known,
                                             const PolicyVersion& version) {
    const std::string place = Message(MessageId::kPlaceExclusion, {std::to_string(entry), version.version});
    const std::optional<Fields> fields = ReadMapping(node, place);
    if (!fields) return std::nullopt;
    CheckKeys(*fields, kExclusionKeys, kExclusionRequired, place);
    ExclusionRule rule;
    std::optional<Program> program;
    if (const Field* field = fields->Find("program")) {
      if (auto word = ReadWord(*field, place, kProgramNames)) program = ProgramFromName(*word);
    }
    if (program) rule.program = *program;
    if (const Field* field = fields->Find("choice"); field && !field->value.IsNull()) {
      if (auto word = ReadWord(*field, place, kChoiceNames)) {
        if (program && *program != Program::kHomeBed) {
          Report(At(field->value),
                 Message(MessageId::kChoiceOnlyForHomeBed, {*word, place, ProgramName(*program)}));
        } else {
          rule.choice = ChoiceFromName(*word);
        }
      }
    }
    if (const Field* field = fields->Find("card_types")) {
      ReadExclusionCardTypes(*field, place, every_type_known, version, rule);
    }
    if (const Field* field = fields->Find("note")) rule.note = ReadText(*field, place, false).value_or("");
    return rule;
  }

  void ReadExclusionCardTypes(const Field& field, const std::string& place, bool every_type_known,
                              const PolicyVersion& version, ExclusionRule& rule) {
    const std::optional<YAML::Node> list = ReadList(field, place, MessageId::kExpectList);
    if (!list || !CheckListSize(field, *list, place, kMaxCardTypesPerVersion)) return;
    if (list->size() == 0) {
      Report(At(field.value), Message(MessageId::kEmptyCardTypeList, {place}));
      return;
    }
    std::string defined;
    for (const CardTypeRule& card_type : version.card_types) {
      if (!defined.empty()) defined += ", ";
      defined += std::to_string(card_type.type);
    }
    const std::string expected = Message(MessageId::kExpectCardType);
    for (size_t i = 0; i < list->size(); ++i) {
      const Field item{field.name, field.key, (*list)[i]};
      const std::optional<int64_t> type = ReadWholeNumber(item, place, expected, 1, 2);
      if (!type) continue;
      const int card_type = static_cast<int>(*type);
      if (std::find(rule.card_types.begin(), rule.card_types.end(), card_type) != rule.card_types.end()) {
        Report(At(item.value), Message(MessageId::kDuplicateListedType, {std::to_string(card_type), place}));
        continue;
      }
      if (every_type_known && !version.FindCardType(card_type)) {
        Report(At(item.value), Message(MessageId::kUndefinedCardType,
                                       {std::to_string(card_type), place, version.version, defined}));
        continue;
      }
      rule.card_types.push_back(card_type);
    }
  }

  // --- versions against each other ------------------------------------------

  // rules.md: versions may not overlap, and between the first `from` and the
  // last `to` there is no gap; only the last version may leave `to` empty.
  void CheckVersionsCoverTime(std::vector<VersionSpan> spans) {
    std::stable_sort(spans.begin(), spans.end(),
                     [](const VersionSpan& a, const VersionSpan& b) { return a.from < b.from; });
    std::vector<bool> open_but_not_last(spans.size(), false);
    for (size_t i = 0; i + 1 < spans.size(); ++i) {
      if (spans[i].to) continue;
      const VersionSpan& next = spans[i + 1];
      open_but_not_last[i] = true;
      Report(spans[i].to_location,
             Message(MessageId::kOpenVersionNotLast, {spans[i].id, spans[i].from.ToString(), next.id,
                                                      next.from.ToString(), next.from.Plus(-1).ToString()}));
    }
    for (size_t i = 0; i < spans.size(); ++i) {
      if (open_but_not_last[i]) continue;
      for (size_t j = i + 1; j < spans.size(); ++j) {
        if (open_but_not_last[j]) continue;
        const VersionSpan& a = spans[i];
        const VersionSpan& b = spans[j];
        // Sorted by `from`, so they overlap exactly when b starts before a ends;
        // a has a `to` here, being open only when it is last.
        if (b.from > *a.to) continue;
        const YearMonth overlap_end = b.to ? std::min(*a.to, *b.to) : *a.to;
        Report(b.from_location, Message(MessageId::kVersionsOverlap,
                                        {a.id, RangeText(a.from, a.to), b.id, RangeText(b.from, b.to),
                                         RangeText(b.from, overlap_end)}));
      }
    }
    // Gaps: walk in order of `from`, remembering the version that reaches furthest.
    const VersionSpan* furthest = nullptr;
    for (size_t i = 0; i < spans.size(); ++i) {
      const VersionSpan& next = spans[i];
      if (furthest && furthest->to && next.from > furthest->to->Next()) {
        Report(next.from_location, Message(MessageId::kVersionsGap,
                                           {furthest->id, RangeText(furthest->from, furthest->to), next.id,
                                            RangeText(next.from, next.to),
                                            RangeText(furthest->to->Next(), next.from.Plus(-1))}));
      }
      if (!furthest || !next.to || (furthest->to && *next.to > *furthest->to)) furthest = &next;
      if (!furthest->to) break;  // open: nothing after it can leave a gap
    }
  }

  const std::string_view text_;
  const SourceText source_;
  const std::string& file_name_;
  const Language language_;
  Policy policy_;
  std::vector<RuleError> errors_;
};

}  // namespace

std::string RuleError::ToString() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

// The offset of the first byte that is not part of well-formed UTF-8, or npos.
size_t FirstInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    size_t n;
    uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      n = 2, cp = b & 0x1Fu;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3, cp = b & 0x0Fu;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4, cp = b & 0x07u;
    } else {
      return i;
    }
    if (i + n > text.size()) return i;
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = cp << 6 | (c & 0x3Fu);
    }
    const bool overlong = (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n;
  }
  return std::string_view::npos;
}

}  // namespace

PolicyLoadResult LoadPolicyFromText(std::string_view text, const std::string& file_name, Language language) {
  if (text.size() > kMaxPolicyFileBytes) {
    PolicyLoadResult result;
    result.errors.push_back(RuleError{file_name, 0, 0,
                                      Format(MessageId::kFileTooLarge, language, {std::to_string(kMaxPolicyFileBytes)})});
    return result;
  }
  // Names and versions travel into every output file: a policy must be UTF-8 text.
  if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    int line = 1, column = 1;
    for (size_t i = 0; i < bad; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
        ++column;
      }
    }
    PolicyLoadResult result;
    result.errors.push_back(RuleError{
        file_name, line, column,
        language == Language::kChinese ? std::string("文件不是 UTF-8 编码(是否以 GBK 保存?);请以 UTF-8 保存")
                                       : std::string("the file is not UTF-8 here (saved as GBK?); save it as UTF-8")});
    return result;
  }
  return Loader(text, file_name, language).Run();
}

PolicyLoadResult LoadPolicyFromFile(const std::string& path, Language language) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  std::string text;
  if (in) {
    // Read one byte past the limit so that an oversized file is reported as such.
    text.resize(kMaxPolicyFileBytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
  }
  if (!in && !in.eof()) {
    const int error_number = errno;
    PolicyLoadResult result;
    result.errors.push_back(RuleError{
        path, 0, 0,
        Format(MessageId::kFileUnreadable, language, {error_number != 0 ? std::strerror(error_number) : "I/O error"})});
    return result;
  }
  return LoadPolicyFromText(text, path, language);
}

}  // namespace carecard
