#include "rules/policy_cases.h"
#include "rules/yaml_documents.h"
#include "rules/yaml_source.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <span>
#include <sstream>

#include "engine/settlement.h"
#include "rules/explain_render.h"
#include "rules/spelling.h"

namespace carecard {
namespace {

// The keys each level accepts.
constexpr std::array<std::string_view, 2> kTopKeys = {"cases", "note"};
constexpr std::array<std::string_view, 1> kTopRequired = {"cases"};
constexpr std::array<std::string_view, 10> kCaseKeys = {"name",     "note",        "month",       "elder", "cards",
                                                        "deposits", "enrolments", "enrollments", "expect", "card"};
constexpr std::array<std::string_view, 4> kCaseRequired = {"name", "month", "elder", "expect"};
constexpr std::array<std::string_view, 6> kElderKeys = {"birth_date", "hukou", "flags", "death_date", "assessments", "note"};
constexpr std::array<std::string_view, 1> kElderRequired = {"birth_date"};
constexpr std::array<std::string_view, 3> kAssessmentKeys = {"assessed_on", "level", "standard"};
constexpr std::array<std::string_view, 2> kAssessmentRequired = {"assessed_on", "level"};
constexpr std::array<std::string_view, 4> kCardKeys = {"card_no", "card_type", "issued_on", "closed_on"};
constexpr std::array<std::string_view, 2> kCardRequired = {"card_type", "issued_on"};
constexpr std::array<std::string_view, 5> kDepositKeys = {"amount", "at", "date", "card", "reversals"};
constexpr std::array<std::string_view, 1> kDepositRequired = {"amount"};
constexpr std::array<std::string_view, 3> kReversalKeys = {"amount", "at", "date"};
constexpr std::array<std::string_view, 1> kReversalRequired = {"amount"};
constexpr std::array<std::string_view, 5> kEnrollmentKeys = {"program", "start_on", "end_on", "choice", "institution_id"};
constexpr std::array<std::string_view, 2> kEnrollmentRequired = {"program", "start_on"};
constexpr std::array<std::string_view, 7> kExpectKeys = {"card",   "status",      "tier",        "subsidy",
                                                        "reason", "net_deposit", "rule_version"};
constexpr std::array<std::string_view, 3> kExpectRequired = {"status", "tier", "subsidy"};

constexpr std::array<std::string_view, 2> kHukouNames = {"rural", "urban"};
constexpr std::array<std::string_view, 2> kStandardNames = {"GB/T 42195-2022", "MZ/T 039-2013"};
constexpr std::array<std::string_view, 2> kProgramNames = {"home_bed", "gov_home_service"};
constexpr std::array<std::string_view, 2> kChoiceNames = {"card_subsidy", "home_bed_discount"};
constexpr std::array<std::string_view, 6> kStatusNames = {"paid",     "below_threshold", "ineligible",
                                                          "excluded", "duplicate_card",  "deceased"};
constexpr std::array<CardMonthStatus, 6> kStatuses = {CardMonthStatus::kPaid,     CardMonthStatus::kBelowThreshold,
                                                      CardMonthStatus::kIneligible, CardMonthStatus::kExcluded,
                                                      CardMonthStatus::kDuplicateCard, CardMonthStatus::kDeceased};

// The synthesized world every case lives in.
constexpr std::string_view kCenterId = "C01";
constexpr std::string_view kCenterCreditCode = "12370211729436483J";
constexpr std::string_view kPersonId = "P01";

std::string Join(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}


struct Field {
  std::string name;
  YAML::Node key;
  YAML::Node value;
};

struct Fields {
  YAML::Node map;
  std::vector<Field> items;
  const Field* Find(std::string_view name) const {
    for (const Field& f : items) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
};

bool IsPlain(const YAML::Node& node) { return node.Tag() == "?"; }

class CasesLoader {
 public:
  CasesLoader(std::string_view text, const std::string& file_name, Language language)
      : text_(text), source_(text), file_name_(file_name), language_(language) {}

  PolicyCasesLoadResult Run() {
    try {
      ReadDocument();
    } catch (const YAML::Exception& e) {
      Report(source_.At(e.mark), M(MessageId::kYamlSyntax, {e.msg}));
    }
    PolicyCasesLoadResult result;
    std::stable_sort(errors_.begin(), errors_.end(), [](const RuleError& a, const RuleError& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    result.errors = std::move(errors_);
    result.ok = result.errors.empty();
    if (result.ok) result.cases = std::move(cases_);
    return result;
  }

 private:
  std::string M(MessageId id, std::initializer_list<std::string_view> args = {}) const {
    return Format(id, language_, args);
  }
  void Report(Location where, std::string message) {
    if (errors_.size() >= kMaxRuleErrors) return;
    errors_.push_back(RuleError{file_name_, where.line, where.column, std::move(message)});
  }
  Location At(const YAML::Node& node) const { return source_.At(node.Mark()); }

  std::string Describe(const YAML::Node& node) const {
    if (node.IsMap()) return M(MessageId::kKindMapping);
    if (node.IsSequence()) return M(MessageId::kKindList);
    if (!node.IsDefined() || node.IsNull()) return M(MessageId::kKindNothing);
    if (!IsPlain(node)) return M(MessageId::kKindQuotedText, {node.Scalar()});
    return M(MessageId::kKindText, {node.Scalar()});
  }

  std::string Hint(std::string_view found, std::span<const std::string_view> candidates) const {
    const auto nearest = NearestName(found, candidates);
    return nearest ? M(MessageId::kHintDidYouMean, {*nearest}) : std::string();
  }

  // Reads a mapping and checks its keys: duplicates, unknown (with a
  // suggestion) and missing ones.
  std::optional<Fields> ReadMapping(const YAML::Node& node, const std::string& place,
                                    std::span<const std::string_view> allowed,
                                    std::span<const std::string_view> required) {
    if (!node.IsMap()) {
      Report(At(node), M(MessageId::kExpectedMapping, {place, Describe(node)}));
      return std::nullopt;
    }
    Fields fields;
    fields.map = node;
    std::vector<std::string_view> suggested;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        Report(At(key), M(MessageId::kNonTextKey, {place}));
        continue;
      }
      if (const Field* first = fields.Find(key.Scalar())) {
        Report(At(key), M(MessageId::kDuplicateKey, {key.Scalar(), place, std::to_string(At(first->key).line)}));
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), key.Scalar()) == allowed.end()) {
        const auto nearest = NearestName(key.Scalar(), allowed);
        if (nearest) suggested.push_back(*nearest);
        Report(At(key), M(MessageId::kUnknownKey,
                          {key.Scalar(), place, nearest ? M(MessageId::kHintDidYouMean, {*nearest}) : std::string()}));
        continue;
      }
      fields.items.push_back(Field{key.Scalar(), key, it->second});
    }
    for (std::string_view name : required) {
      if (fields.Find(name)) continue;
      if (std::find(suggested.begin(), suggested.end(), name) != suggested.end()) continue;
      Report(At(node), M(MessageId::kMissingKey, {name, place}));
    }
    return fields;
  }

  static bool IsEmpty(const YAML::Node& v) { return v.IsNull() || (v.IsScalar() && v.Scalar().empty()); }

  // A scalar's text; nullopt (and an error when required) when empty or not a scalar.
  std::optional<std::string> ReadText(const Field& f, const std::string& place, const std::string& expected,
                                      bool required = true) {
    if (IsEmpty(f.value)) {
      if (required) Report(At(f.key), M(MessageId::kNoValue, {f.name, place, expected}));
      return std::nullopt;
    }
    if (!f.value.IsScalar()) {
      Report(At(f.value), M(MessageId::kWrongKind, {f.name, place, expected, Describe(f.value)}));
      return std::nullopt;
    }
    return f.value.Scalar();
  }

  void BadValue(const Field& f, const std::string& place, std::string_view found, const std::string& expected,
                const std::string& hint = {}) {
    Report(At(f.value), M(MessageId::kBadValue, {f.name, place, found, expected, hint}));
  }

  std::optional<Date> ReadDate(const Field& f, const std::string& place) {
    const std::string expected = M(MessageId::kExpectDate);
    auto text = ReadText(f, place, expected);
    if (!text) return std::nullopt;
    auto date = Date::Parse(*text);
    if (!date) BadValue(f, place, *text, expected);
    return date;
  }

  // An optional date: absent or empty is nullopt without an error; *bad is set on a bad value.
  std::optional<Date> ReadOptionalDate(const Fields& fields, std::string_view key, const std::string& place, bool* bad) {
    const Field* f = fields.Find(key);
    if (!f || IsEmpty(f->value)) return std::nullopt;
    auto date = ReadDate(*f, place);
    if (!date) *bad = true;
    return date;
  }

  std::optional<Money> ReadAmount(const Field& f, const std::string& place, bool zero_allowed) {
    const std::string expected = M(zero_allowed ? MessageId::kExpectAmountOrZero : MessageId::kExpectAmount);
    auto text = ReadText(f, place, expected);
    if (!text) return std::nullopt;
    if (!IsPlain(f.value)) {
      Report(At(f.value), M(MessageId::kWrongKind, {f.name, place, expected, Describe(f.value)}));
      return std::nullopt;
    }
    std::optional<Money> amount = zero_allowed ? Money::ParseSigned(*text) : Money::ParsePositive(*text);
    if (amount && amount->is_negative()) amount.reset();
    if (!amount) BadValue(f, place, *text, expected);
    return amount;
  }

  // One of `names`, with a suggestion for a slip.
  std::optional<std::string> ReadWord(const Field& f, const std::string& place, std::span<const std::string_view> names,
                                      const std::string& expected) {
    auto text = ReadText(f, place, expected);
    if (!text) return std::nullopt;
    if (std::find(names.begin(), names.end(), *text) == names.end()) {
      BadValue(f, place, *text, expected, Hint(*text, names));
      return std::nullopt;
    }
    return text;
  }

  std::optional<int> ReadSmallNumber(const Field& f, const std::string& place, const std::string& expected, int low,
                                     int high) {
    auto text = ReadText(f, place, expected);
    if (!text) return std::nullopt;
    if (text->size() == 1 && (*text)[0] >= '0' + low && (*text)[0] <= '0' + high && IsPlain(f.value)) {
      return (*text)[0] - '0';
    }
    BadValue(f, place, *text, expected);
    return std::nullopt;
  }

  std::optional<CaseMoment> ReadMoment(const Fields& fields, const std::string& place) {
    const Field* at = fields.Find("at");
    const Field* date = fields.Find("date");
    if (at && date) {
      Report(At(date->key), M(MessageId::kCaseDepositTwoTimes, {place}));
      return std::nullopt;
    }
    if (!at && !date) {
      Report(At(fields.map), M(MessageId::kCaseDepositNeedsTime, {place}));
      return std::nullopt;
    }
    CaseMoment moment;
    if (date) {
      moment.date = ReadDate(*date, place);
      if (!moment.date) return std::nullopt;
      return moment;
    }
    const std::string expected = M(MessageId::kExpectTimestamp);
    auto text = ReadText(*at, place, expected);
    if (!text) return std::nullopt;
    if (!Instant::Parse(*text)) {
      BadValue(*at, place, *text, expected);
      return std::nullopt;
    }
    moment.at = *text;
    return moment;
  }

  // The entries of a list field (a single mapping is one entry).
  std::vector<YAML::Node> Entries(const Field& f, const std::string& place) {
    std::vector<YAML::Node> out;
    if (IsEmpty(f.value)) return out;
    if (f.value.IsMap()) {
      out.push_back(f.value);
      return out;
    }
    if (!f.value.IsSequence()) {
      Report(At(f.value), M(MessageId::kWrongKind, {f.name, place, M(MessageId::kExpectEntryList), Describe(f.value)}));
      return out;
    }
    for (const auto& entry : f.value) {
      if (out.size() >= kMaxEntriesPerCase) {
        Report(At(entry), M(MessageId::kTooMany, {f.name, place, std::to_string(kMaxEntriesPerCase)}));
        break;
      }
      out.push_back(entry);
    }
    return out;
  }

  void ReadDocument() {
    // Not YAML::LoadAll, which never returns on some input (rules/yaml_documents.h).
    const YamlDocuments documents = LoadFirstYamlDocument(text_);
    if (documents.first.IsNull() || IsEmpty(documents.first)) {
      Report(Location{0, 0}, M(MessageId::kCasesEmptyFile));
      return;
    }
    if (documents.second) Report(source_.At(*documents.second), M(MessageId::kSecondDocument));
    const std::string place = M(MessageId::kPlaceCasesFile);
    auto top = ReadMapping(documents.first, place, kTopKeys, kTopRequired);
    if (!top) return;
    const Field* cases = top->Find("cases");
    if (!cases) return;
    if (!cases->value.IsSequence()) {
      Report(At(cases->value), M(MessageId::kWrongKind, {"cases", place, M(MessageId::kExpectCaseList), Describe(cases->value)}));
      return;
    }
    if (cases->value.size() == 0) {
      Report(At(cases->key), M(MessageId::kCasesNone));
      return;
    }
    std::map<std::string, int> first_line;
    size_t entry = 0;
    for (const auto& node : cases->value) {
      if (++entry > kMaxCases) {
        Report(At(node), M(MessageId::kTooMany, {"cases", place, std::to_string(kMaxCases)}));
        break;
      }
      ReadCase(node, entry, &first_line);
    }
  }

  void ReadCase(const YAML::Node& node, size_t entry, std::map<std::string, int>* first_line) {
    // The case's name, if readable, names the place in every message.
    std::string name;
    if (node.IsMap() && node["name"] && node["name"].IsScalar()) name = node["name"].Scalar();
    const std::string place =
        name.empty() ? M(MessageId::kPlaceCaseEntry, {std::to_string(entry)}) : M(MessageId::kPlaceCase, {name});
    auto fields = ReadMapping(node, place, kCaseKeys, kCaseRequired);
    if (!fields) return;
    const size_t errors_before = errors_.size();
    PolicyCase c;
    c.name = name;
    c.line = At(node).line;
    if (const Field* f = fields->Find("name")) {
      if (ReadText(*f, place, M(MessageId::kExpectText)) && !name.empty()) {
        auto [it, inserted] = first_line->emplace(name, c.line);
        if (!inserted) Report(At(f->value), M(MessageId::kDuplicateCaseName, {name, std::to_string(it->second)}));
      }
    }
    if (const Field* f = fields->Find("month")) {
      const std::string expected = M(MessageId::kExpectMonth);
      if (auto text = ReadText(*f, place, expected)) {
        if (auto month = YearMonth::Parse(*text)) {
          c.month = *month;
        } else {
          BadValue(*f, place, *text, expected);
        }
      }
    }
    if (const Field* f = fields->Find("elder")) ReadElder(f->value, name, &c);
    // Cards: `cards` (a list) or `card` (one).
    const Field* cards = fields->Find("cards");
    const Field* card = fields->Find("card");
    if (cards && card) {
      Report(At(card->key), M(MessageId::kUnknownKey, {"card", place, M(MessageId::kHintDidYouMean, {"cards"})}));
    } else if (!cards && !card) {
      Report(At(node), M(MessageId::kMissingKey, {"cards", place}));
    } else {
      const Field& f = cards ? *cards : *card;
      size_t n = 0;
      for (const auto& entry_node : Entries(f, place)) ReadCard(entry_node, name, ++n, &c);
      if (n == 0) Report(At(f.key), M(MessageId::kNoValue, {f.name, place, M(MessageId::kExpectEntryList)}));
    }
    std::vector<std::string_view> card_nos;
    for (const auto& k : c.cards) card_nos.push_back(k.card_no);
    if (const Field* f = fields->Find("deposits")) {
      size_t n = 0;
      for (const auto& entry_node : Entries(*f, place)) ReadDeposit(entry_node, name, ++n, card_nos, &c);
    }
    for (std::string_view key : {"enrolments", "enrollments"}) {
      if (const Field* f = fields->Find(key)) {
        size_t n = 0;
        for (const auto& entry_node : Entries(*f, place)) ReadEnrollment(entry_node, name, ++n, &c);
      }
    }
    if (const Field* f = fields->Find("expect")) {
      const std::string expect_place = M(MessageId::kPlaceCaseExpect, {name});
      if (f->value.IsSequence()) {
        for (const auto& entry_node : Entries(*f, expect_place)) ReadExpect(entry_node, name, card_nos, &c);
      } else {
        ReadExpect(f->value, name, card_nos, &c);
      }
      if (c.expectations.empty() && errors_.size() == errors_before) {
        Report(At(f->key), M(MessageId::kNoValue, {"expect", place, M(MessageId::kExpectEntryList)}));
      }
    }
    if (errors_.size() == errors_before) cases_.push_back(std::move(c));
  }

  void ReadElder(const YAML::Node& node, const std::string& name, PolicyCase* c) {
    const std::string place = M(MessageId::kPlaceCaseElder, {name});
    auto fields = ReadMapping(node, place, kElderKeys, kElderRequired);
    if (!fields) return;
    if (const Field* f = fields->Find("birth_date")) {
      if (auto d = ReadDate(*f, place)) c->birth_date = *d;
    }
    bool bad = false;
    c->death_date = ReadOptionalDate(*fields, "death_date", place, &bad);
    if (const Field* f = fields->Find("hukou")) {
      if (auto word = ReadWord(*f, place, kHukouNames, M(MessageId::kExpectHukou))) c->rural = *word == "rural";
    }
    if (const Field* f = fields->Find("flags")) ReadFlags(*f, place, c);
    if (const Field* f = fields->Find("assessments")) {
      size_t n = 0;
      for (const auto& entry : Entries(*f, place)) {
        const std::string a_place = M(MessageId::kPlaceCaseAssessment, {name, std::to_string(++n)});
        auto a_fields = ReadMapping(entry, a_place, kAssessmentKeys, kAssessmentRequired);
        if (!a_fields) continue;
        CaseAssessment a;
        if (const Field* d = a_fields->Find("assessed_on")) {
          if (auto date = ReadDate(*d, a_place)) a.assessed_on = *date;
        }
        if (const Field* s = a_fields->Find("standard")) {
          if (auto word = ReadWord(*s, a_place, kStandardNames, M(MessageId::kExpectStandard))) a.standard = *word;
        }
        if (const Field* l = a_fields->Find("level")) {
          const int high = a.standard == "MZ/T 039-2013" ? 3 : 4;
          if (auto level = ReadSmallNumber(*l, a_place, M(MessageId::kExpectLevel), 0, high)) a.level = *level;
        }
        c->assessments.push_back(std::move(a));
      }
    }
  }

  void ReadFlags(const Field& f, const std::string& place, PolicyCase* c) {
    std::vector<std::string_view> names;
    for (int i = 0; i < kPersonFlagCount; ++i) names.push_back(PersonFlagName(i));
    const std::string expected = M(MessageId::kExpectFlag, {Join(names)});
    std::vector<std::pair<std::string, YAML::Node>> written;
    if (IsEmpty(f.value)) return;
    if (f.value.IsSequence()) {
      for (const auto& item : f.value) {
        if (!item.IsScalar()) {
          Report(At(item), M(MessageId::kWrongKind, {f.name, place, expected, Describe(item)}));
          continue;
        }
        written.emplace_back(item.Scalar(), item);
      }
    } else if (f.value.IsScalar()) {
      // "left_behind;dibao" as persons.csv writes it.
      std::string_view rest = f.value.Scalar();
      while (!rest.empty()) {
        const size_t semi = rest.find(';');
        std::string_view flag = rest.substr(0, semi);
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        if (!flag.empty()) written.emplace_back(std::string(flag), f.value);
      }
    } else {
      Report(At(f.value), M(MessageId::kWrongKind, {f.name, place, expected, Describe(f.value)}));
      return;
    }
    for (const auto& [flag, where] : written) {
      if (auto bit = PersonFlagFromName(flag)) {
        c->flags |= static_cast<uint32_t>(*bit);
      } else {
        Report(At(where), M(MessageId::kBadValue, {f.name, place, flag, expected, Hint(flag, names)}));
      }
    }
  }

  void ReadCard(const YAML::Node& node, const std::string& name, size_t n, PolicyCase* c) {
    const std::string place = M(MessageId::kPlaceCaseCard, {name, std::to_string(n)});
    auto fields = ReadMapping(node, place, kCardKeys, kCardRequired);
    if (!fields) return;
    CaseCard card;
    char fallback[16];
    std::snprintf(fallback, sizeof fallback, "QD%04zu", n);
    card.card_no = fallback;
    if (const Field* f = fields->Find("card_no")) {
      if (auto text = ReadText(*f, place, M(MessageId::kExpectText))) {
        card.card_no = *text;
        for (const auto& other : c->cards) {
          if (other.card_no == card.card_no) {
            Report(At(f->value), M(MessageId::kDuplicateCaseCardNo, {card.card_no, M(MessageId::kPlaceCase, {name})}));
          }
        }
      }
    }
    if (const Field* f = fields->Find("card_type")) {
      if (auto type = ReadSmallNumber(*f, place, M(MessageId::kExpectCardType), 1, 2)) card.card_type = *type;
    }
    if (const Field* f = fields->Find("issued_on")) {
      if (auto d = ReadDate(*f, place)) card.issued_on = *d;
    }
    bool bad = false;
    card.closed_on = ReadOptionalDate(*fields, "closed_on", place, &bad);
    c->cards.push_back(std::move(card));
  }

  // A card of the case named by `field`, or the first card when absent.
  std::string ReadCardRef(const Fields& fields, std::string_view key, const std::string& place,
                          const std::vector<std::string_view>& card_nos) {
    const Field* f = fields.Find(key);
    if (!f || IsEmpty(f->value)) return card_nos.empty() ? std::string() : std::string(card_nos.front());
    const std::string expected = M(MessageId::kExpectCaseCardNo, {Join(card_nos)});
    auto text = ReadText(*f, place, expected);
    if (!text) return {};
    if (std::find(card_nos.begin(), card_nos.end(), *text) == card_nos.end()) {
      BadValue(*f, place, *text, expected, Hint(*text, card_nos));
      return {};
    }
    return *text;
  }

  void ReadDeposit(const YAML::Node& node, const std::string& name, size_t n,
                   const std::vector<std::string_view>& card_nos, PolicyCase* c) {
    const std::string place = M(MessageId::kPlaceCaseDeposit, {name, std::to_string(n)});
    auto fields = ReadMapping(node, place, kDepositKeys, kDepositRequired);
    if (!fields) return;
    CaseDeposit d;
    if (const Field* f = fields->Find("amount")) {
      if (auto amount = ReadAmount(*f, place, /*zero_allowed=*/false)) d.amount = *amount;
    }
    if (auto moment = ReadMoment(*fields, place)) d.when = *moment;
    d.card_no = ReadCardRef(*fields, "card", place, card_nos);
    if (const Field* f = fields->Find("reversals")) {
      size_t r = 0;
      for (const auto& entry : Entries(*f, place)) {
        const std::string r_place = M(MessageId::kPlaceCaseReversal, {name, std::to_string(n), std::to_string(++r)});
        auto r_fields = ReadMapping(entry, r_place, kReversalKeys, kReversalRequired);
        if (!r_fields) continue;
        CaseReversal reversal;
        if (const Field* a = r_fields->Find("amount")) {
          if (auto amount = ReadAmount(*a, r_place, /*zero_allowed=*/false)) reversal.amount = *amount;
        }
        if (auto moment = ReadMoment(*r_fields, r_place)) reversal.when = *moment;
        d.reversals.push_back(std::move(reversal));
      }
    }
    c->deposits.push_back(std::move(d));
  }

  void ReadEnrollment(const YAML::Node& node, const std::string& name, size_t n, PolicyCase* c) {
    const std::string place = M(MessageId::kPlaceCaseEnrollment, {name, std::to_string(n)});
    auto fields = ReadMapping(node, place, kEnrollmentKeys, kEnrollmentRequired);
    if (!fields) return;
    CaseEnrollment e;
    if (const Field* f = fields->Find("program")) {
      if (auto word = ReadWord(*f, place, kProgramNames, M(MessageId::kExpectProgram))) e.program = *ProgramFromName(*word);
    }
    if (const Field* f = fields->Find("start_on")) {
      if (auto d = ReadDate(*f, place)) e.start_on = *d;
    }
    bool bad = false;
    e.end_on = ReadOptionalDate(*fields, "end_on", place, &bad);
    if (const Field* f = fields->Find("institution_id")) {
      if (auto text = ReadText(*f, place, M(MessageId::kExpectText))) e.institution_id = *text;
    }
    const Field* choice = fields->Find("choice");
    if (choice && !IsEmpty(choice->value)) {
      if (auto word = ReadWord(*choice, place, kChoiceNames, M(MessageId::kExpectChoice))) {
        e.choice = *ChoiceFromName(*word);
        if (e.program != Program::kHomeBed) {
          Report(At(choice->value), M(MessageId::kChoiceOnlyForHomeBed, {*word, place, ProgramName(e.program)}));
        }
      }
    } else if (e.program == Program::kHomeBed) {
      Report(choice ? At(choice->key) : At(node), M(MessageId::kMissingKey, {"choice", place}));
    }
    c->enrollments.push_back(std::move(e));
  }

  void ReadExpect(const YAML::Node& node, const std::string& name, const std::vector<std::string_view>& card_nos,
                  PolicyCase* c) {
    const std::string place = M(MessageId::kPlaceCaseExpect, {name});
    auto fields = ReadMapping(node, place, kExpectKeys, kExpectRequired);
    if (!fields) return;
    CaseExpectation x;
    x.card_no = ReadCardRef(*fields, "card", place, card_nos);
    if (const Field* f = fields->Find("status")) {
      if (auto word = ReadWord(*f, place, kStatusNames, M(MessageId::kExpectStatus, {Join(kStatusNames)}))) {
        for (size_t i = 0; i < kStatusNames.size(); ++i) {
          if (kStatusNames[i] == *word) x.status = kStatuses[i];
        }
      }
    }
    if (const Field* f = fields->Find("tier")) {
      if (IsEmpty(f->value) || (f->value.IsScalar() && f->value.Scalar() == "none")) {
        x.tier = 0;
      } else if (auto tier = ReadSmallNumber(*f, place, M(MessageId::kExpectTier), 0, 2)) {
        x.tier = *tier;
      }
    }
    if (const Field* f = fields->Find("subsidy")) {
      if (auto amount = ReadAmount(*f, place, /*zero_allowed=*/true)) x.subsidy = *amount;
    }
    if (const Field* f = fields->Find("reason")) {
      x.reason = IsEmpty(f->value) ? std::string() : ReadText(*f, place, M(MessageId::kExpectText)).value_or("");
    }
    if (const Field* f = fields->Find("net_deposit")) x.net_deposit = ReadAmount(*f, place, /*zero_allowed=*/true);
    if (const Field* f = fields->Find("rule_version")) {
      x.rule_version = IsEmpty(f->value) ? std::string() : ReadText(*f, place, M(MessageId::kExpectText)).value_or("");
    }
    c->expectations.push_back(std::move(x));
  }

  std::string_view text_;
  SourceText source_;
  const std::string& file_name_;
  Language language_;
  std::vector<RuleError> errors_;
  std::vector<PolicyCase> cases_;
};

// --- running -----------------------------------------------------------------

// An 18-character resident id for `birth` with a valid MOD 11-2 check character.
std::string ResidentId(Date birth) {
  char digits[64];
  std::snprintf(digits, sizeof digits, "370282%04d%02d%02d001", birth.year() % 10000, birth.month(), birth.day());
  std::string id(digits, 17);
  id.push_back(ResidentIdCheckCharacter(id));
  return id;
}

std::string MomentText(const CaseMoment& m, UtcOffset zone) {
  if (!m.date) return m.at;
  return m.date->ToString() + "T12:00:00" + zone.ToString();
}

std::string OptionalDate(const std::optional<Date>& d) { return d ? d->ToString() : std::string(); }

// Settles the case's data folder (its rows, in the order files are read).
RunResult SettleCase(const Policy& policy, const PolicyCase& c, const PayoutPeriod& period, RunOptions options = {}) {
  using Rows = std::vector<std::vector<std::string>>;
  Rows centers = {{std::string(kCenterId), "养老服务中心", "区", std::string(kCenterCreditCode), "6222020300001111"}};
  Rows stations;
  std::string flags;
  for (int i = 0; i < kPersonFlagCount; ++i) {
    if (c.flags & (1u << i)) flags += (flags.empty() ? "" : ";") + std::string(PersonFlagName(i));
  }
  Rows persons = {{std::string(kPersonId), ResidentId(c.birth_date), "某某", c.birth_date.ToString(),
                   c.rural ? "rural" : "urban", "村", flags, OptionalDate(c.death_date)}};
  Rows assessments;
  for (const auto& a : c.assessments) {
    assessments.push_back({std::string(kPersonId), a.assessed_on.ToString(), std::to_string(a.level), a.standard});
  }
  Rows cards;
  for (const auto& k : c.cards) {
    cards.push_back({k.card_no, std::string(kPersonId), std::to_string(k.card_type), std::string(kCenterId),
                     k.issued_on.ToString(), OptionalDate(k.closed_on)});
  }
  Rows enrollments;
  for (const auto& e : c.enrollments) {
    enrollments.push_back({std::string(kPersonId), std::string(ProgramName(e.program)), e.institution_id,
                           e.start_on.ToString(), OptionalDate(e.end_on), std::string(ChoiceName(e.choice))});
  }
  Rows deposits;
  int serial = 0;
  for (const auto& d : c.deposits) {
    const std::string id = "D" + std::to_string(++serial);
    deposits.push_back({id, d.card_no, "deposit", d.amount.ToString(), MomentText(d.when, policy.timezone), "cash", ""});
    int r = 0;
    for (const auto& rev : d.reversals) {
      deposits.push_back({id + "-R" + std::to_string(++r), d.card_no, "reversal", rev.amount.ToString(),
                          MomentText(rev.when, policy.timezone), "cash", id});
    }
  }
  const BookState no_book;
  Intake intake(policy, period, no_book, std::move(options));
  auto feed = [&](InputKind kind, const std::string& file, const Rows& rows) {
    std::string missing;
    intake.BeginFile(kind, file, RequiredColumns(kind), &missing);
    int64_t line = 2;
    for (const auto& row : rows) intake.AddRow(line++, row);
    intake.EndFile();
  };
  feed(InputKind::kCenters, "centers.csv", centers);
  feed(InputKind::kStations, "stations.csv", stations);
  feed(InputKind::kPersons, "persons.csv", persons);
  feed(InputKind::kAssessments, "assessments.csv", assessments);
  feed(InputKind::kCards, "cards.csv", cards);
  feed(InputKind::kEnrollments, "enrollments.csv", enrollments);
  feed(InputKind::kPlatformBalances, "platform_balances.csv", {});
  feed(InputKind::kDeposits, "deposits.csv", deposits);
  feed(InputKind::kConsumption, "consumption.csv", {});
  return intake.Finish();
}

// The steps that decided the outcome, for a failing case's report.
bool IsDecisive(ExplainStepKind kind) {
  switch (kind) {
    case ExplainStepKind::kCardNotActive:
    case ExplainStepKind::kNoPolicyInForce:
    case ExplainStepKind::kDeceased:
    case ExplainStepKind::kDuplicateCard:
    case ExplainStepKind::kExcluded:
    case ExplainStepKind::kNotEligible:
    case ExplainStepKind::kThresholdMet:
    case ExplainStepKind::kThresholdNotMet:
    case ExplainStepKind::kProrated:
    case ExplainStepKind::kDepositNotCountedInactive:
    case ExplainStepKind::kDepositNotCountedDeceased:
    case ExplainStepKind::kReversalNotCounted:
      return true;
    default: return false;
  }
}

std::string TierText(int tier) { return tier ? std::to_string(tier) : std::string("none"); }

}  // namespace

PolicyCasesLoadResult LoadPolicyCasesFromText(std::string_view text, const std::string& file_name, Language language) {
  if (text.size() > kMaxCasesFileBytes) {
    PolicyCasesLoadResult result;
    result.errors.push_back(
        RuleError{file_name, 0, 0, Format(MessageId::kCasesFileTooLarge, language, {std::to_string(kMaxCasesFileBytes)})});
    return result;
  }
  return CasesLoader(text, file_name, language).Run();
}

PolicyCasesLoadResult LoadPolicyCasesFromFile(const std::string& path, Language language) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    PolicyCasesLoadResult result;
    result.errors.push_back(RuleError{path, 0, 0, Format(MessageId::kCasesFileUnreadable, language, {std::strerror(errno)})});
    return result;
  }
  std::string bytes;
  char buffer[8192];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    bytes.append(buffer, static_cast<size_t>(in.gcount()));
    if (bytes.size() > kMaxCasesFileBytes) break;
  }
  return LoadPolicyCasesFromText(bytes, path, language);
}

PolicyCaseResult RunPolicyCase(const Policy& policy, const PolicyCase& c, Language language) {
  PolicyCaseResult result;
  result.name = c.name;
  const PayoutPeriod period = PayoutPeriod::Containing(c.month, policy.months_per_period);
  RunResult settled = SettleCase(policy, c, period);
  // A row the intake rejects means the case does not say what its author meant.
  std::string rejected;
  for (const auto& e : settled.settlement.exceptions.Records()) {
    if (e.code == "duplicate_card") continue;  // a card-month verdict, not a rejected row
    if (e.severity != Severity::kError) continue;
    rejected += (rejected.empty() ? "" : "; ") + e.file + ":" + std::to_string(e.line) + " " + e.code + " " + e.detail;
  }
  if (!rejected.empty()) {
    result.difference = Format(MessageId::kCaseRowsRejected, language, {rejected});
    return result;
  }
  std::vector<std::string> differences;
  std::string why;
  for (const CaseExpectation& x : c.expectations) {
    const CardMonth* got = nullptr;
    for (const auto& cm : settled.settlement.card_months) {
      if (cm.month == c.month && settled.registry.card_no(cm.card) == x.card_no) got = &cm;
    }
    const std::string prefix = c.expectations.size() > 1 || x.card_no != c.cards.front().card_no ? x.card_no + ": " : "";
    if (!got) {
      differences.push_back(prefix + Format(MessageId::kCaseNoCardMonth, language, {x.card_no, c.month.ToString()}));
      continue;
    }
    std::vector<std::string> mine;
    auto differ = [&](std::string_view field, const std::string& want, const std::string& have) {
      if (want != have) mine.push_back(Format(MessageId::kCaseDifference, language, {field, want, have}));
    };
    differ("status", CardMonthStatusName(x.status), CardMonthStatusName(got->status));
    differ("tier", TierText(x.tier), TierText(got->tier));
    differ("subsidy", x.subsidy.ToString(), got->subsidy.ToString());
    if (x.reason) differ("reason", *x.reason, std::string(got->reason_name()));
    if (x.net_deposit) differ("net_deposit", x.net_deposit->ToString(), got->net_deposit.ToString());
    if (x.rule_version) differ("rule_version", *x.rule_version, RuleVersionOf(policy, *got));
    if (mine.empty()) continue;
    std::string line = prefix;
    for (size_t i = 0; i < mine.size(); ++i) line += (i ? "; " : "") + mine[i];
    // Why the engine decided as it did: the deciding steps of its explanation.
    RunOptions explain;
    explain.explain_card = x.card_no;
    explain.explain_month = c.month;
    const RunResult explained = SettleCase(policy, c, period, explain);
    const CardMonthExplanation x_explained = explained.explanation ? *explained.explanation : CardMonthExplanation{};
    std::string reasons;
    for (const auto& step : x_explained.steps) {
      if (!IsDecisive(step.kind)) continue;
      reasons += (reasons.empty() ? "" : "; ") + RenderExplainStep(step, language);
    }
    if (!reasons.empty()) line += " (" + reasons + ")";
    differences.push_back(std::move(line));
  }
  result.passed = differences.empty();
  for (size_t i = 0; i < differences.size(); ++i) result.difference += (i ? "; " : "") + differences[i];
  return result;
}

int RunPolicyCasesCommand(const std::string& rules_path, const std::string& cases_path, Language language,
                          std::ostream& out, std::ostream& err) {
  const PolicyLoadResult policy = LoadPolicyFromFile(rules_path, language);
  const PolicyCasesLoadResult cases = LoadPolicyCasesFromFile(cases_path, language);
  for (const RuleError& e : policy.errors) err << e.ToString() << '\n';
  for (const RuleError& e : cases.errors) err << e.ToString() << '\n';
  if (!policy.ok || !cases.ok) return kCasesMalformed;
  int passed = 0;
  int failed = 0;
  for (const PolicyCase& c : cases.cases) {
    const PolicyCaseResult r = RunPolicyCase(policy.policy, c, language);
    if (r.passed) {
      ++passed;
      out << "ok  " << r.name << '\n';
    } else {
      ++failed;
      out << "FAIL " << r.name << ": " << r.difference << '\n';
    }
  }
  out << Format(MessageId::kCasesSummary, language, {std::to_string(passed), std::to_string(failed)}) << '\n';
  return failed == 0 ? kCasesPassed : kCasesFailed;
}

}  // namespace carecard
