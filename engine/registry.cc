#include "engine/registry.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <stdexcept>

namespace carecard {
namespace {

const std::vector<std::string> kCenterColumns = {"center_id", "name", "district", "credit_code", "bank_account"};
const std::vector<std::string> kStationColumns = {"station_id", "center_id", "village", "name"};
const std::vector<std::string> kPersonColumns = {"person_id", "id_number", "name",  "birth_date",
                                                 "hukou",     "village",   "flags", "death_date"};
const std::vector<std::string> kAssessmentColumns = {"person_id", "assessed_on", "level", "standard"};
const std::vector<std::string> kCardColumns = {"card_no", "person_id", "card_type", "center_id", "issued_on", "closed_on"};
const std::vector<std::string> kEnrollmentColumns = {"person_id", "program", "institution_id",
                                                     "start_on",  "end_on",  "choice"};
const std::vector<std::string> kBalanceColumns = {"card_no", "as_of", "balance"};
const std::vector<std::string> kDepositColumns = {"txn_id", "card_no", "kind", "amount", "at", "channel", "ref_txn_id"};
const std::vector<std::string> kConsumptionColumns = {"txn_id", "card_no",    "kind",    "amount",
                                                      "at",     "station_id", "service", "ref_txn_id"};

// Column positions in the canonical order above.
namespace col {
enum Center { kCenterId, kCenterName, kDistrict, kCreditCode, kBankAccount };
enum Station { kStationId, kStationCenter };
enum Person { kPersonId, kIdNumber, kName, kBirth, kHukou, kVillage, kFlags, kDeath };
enum Assessment { kAssessPerson, kAssessedOn, kLevel, kStandard };
enum Card { kCardNo, kCardPerson, kCardType, kCardCenter, kIssuedOn, kClosedOn };
enum Enrollment { kEnrollPerson, kProgram, kInstitution, kStartOn, kEndOn, kChoice };
enum Balance { kBalanceCard, kAsOf, kBalance };
}  // namespace col

std::string Quote(std::string_view v) { return "'" + std::string(v) + "'"; }

}  // namespace

const std::vector<std::string>& RequiredColumns(InputKind kind) {
  switch (kind) {
    case InputKind::kCenters: return kCenterColumns;
    case InputKind::kStations: return kStationColumns;
    case InputKind::kPersons: return kPersonColumns;
    case InputKind::kAssessments: return kAssessmentColumns;
    case InputKind::kCards: return kCardColumns;
    case InputKind::kEnrollments: return kEnrollmentColumns;
    case InputKind::kPlatformBalances: return kBalanceColumns;
    case InputKind::kDeposits: return kDepositColumns;
    case InputKind::kConsumption: return kConsumptionColumns;
  }
  return kCenterColumns;
}

bool MapColumns(InputKind kind, std::span<const std::string> header, std::vector<int>* column_of, std::string* missing) {
  const auto& required = RequiredColumns(kind);
  column_of->assign(required.size(), -1);
  for (size_t i = 0; i < required.size(); ++i) {
    auto it = std::find(header.begin(), header.end(), required[i]);
    if (it == header.end()) {
      *missing = required[i];
      return false;
    }
    (*column_of)[i] = static_cast<int>(it - header.begin());
  }
  return true;
}

char ResidentIdCheckCharacter(std::string_view first17) {
  static constexpr int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  static constexpr char kCheck[] = "10X98765432";
  assert(first17.size() >= 17);
  int sum = 0;
  for (size_t i = 0; i < 17; ++i) sum += (first17[i] - '0') * kWeights[i];
  return kCheck[sum % 11];
}

bool IsValidResidentId(std::string_view id) {
  if (id.size() != 18) return false;
  for (size_t i = 0; i < 17; ++i) {
    if (id[i] < '0' || id[i] > '9') return false;
  }
  const char last = id[17] == 'x' ? 'X' : id[17];
  return last == ResidentIdCheckCharacter(id);
}

bool IsValidCreditCode(std::string_view code) {
  static constexpr std::string_view kCharset = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  static constexpr int kWeights[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
  if (code.size() != 18) return false;
  int sum = 0;
  for (size_t i = 0; i < 17; ++i) {
    size_t v = kCharset.find(code[i]);
    if (v == std::string_view::npos) return false;
    sum += static_cast<int>(v) * kWeights[i];
  }
  size_t check = static_cast<size_t>((31 - sum % 31) % 31);
  return code[17] == kCharset[check];
}

std::string MaskIdNumber(std::string_view id) {
  // Counted in characters, not bytes: a cell may hold any UTF-8 ("身份证号码未知"),
  // and cutting inside a character would write invalid UTF-8 into exceptions.csv.
  std::vector<size_t> starts;  // byte offset of each character
  for (size_t i = 0; i < id.size(); ++i) {
    if ((static_cast<unsigned char>(id[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  const size_t chars = starts.size();
  if (chars <= 10) return std::string(chars, '*');
  return std::string(id.substr(0, starts[6])) + std::string(chars - 10, '*') + std::string(id.substr(starts[chars - 4]));
}

size_t Registry::MemoryBytes() const {
  size_t n = centers.capacity() * sizeof(Center) + center_ids.MemoryBytes() + station_ids.MemoryBytes() +
             station_center.capacity() * 4 + person_ids.MemoryBytes() + person_elder.capacity() * 4 +
             elders.capacity() * sizeof(Elder) + card_ids.MemoryBytes() + cards.capacity() * sizeof(Card) +
             assessments.capacity() * sizeof(Assessment) + enrollments.capacity() * sizeof(Enrollment) +
             elder_cards.capacity() * 4 + institution_ids.MemoryBytes() +
             platform_balances.capacity() * sizeof(PlatformBalance) + card_balances_begin.capacity() * 4 +
             serving_by_station.MemoryBytes();
  return n;
}

RegistryBuilder::RegistryBuilder(YearMonth last_month, ExceptionLog* log) : last_month_(last_month), log_(log) {}

void RegistryBuilder::Prefetch(InputKind kind, Cells c) const {
  switch (kind) {
    case InputKind::kPersons:
      reg_.person_ids.Prefetch(IdIndex::Hash(c[col::kPersonId]));
      if (c[col::kIdNumber].size() == 18 && c[col::kIdNumber][17] != 'x') {
        id_numbers_.Prefetch(IdIndex::Hash(c[col::kIdNumber]));
      }
      break;
    case InputKind::kCards:
      reg_.card_ids.Prefetch(IdIndex::Hash(c[col::kCardNo]));
      PrefetchPerson(c[col::kCardPerson]);
      break;
    case InputKind::kAssessments: PrefetchPerson(c[col::kAssessPerson]); break;
    case InputKind::kEnrollments: PrefetchPerson(c[col::kEnrollPerson]); break;
    default: break;
  }
}

int32_t RegistryBuilder::FindPerson(std::string_view id) {
  if (const int32_t p = reg_.person_ids.FindAmong(id, person_cursor_, 3); p >= 0) {  // the last one, or the next two
    person_cursor_ = p;
    near_person_streak_ = std::min(near_person_streak_ + 1, kSkipPrefetchAfter);
    return p;
  }
  near_person_streak_ = 0;
  const int32_t p = reg_.person_ids.Find(id);
  if (p >= 0) person_cursor_ = p;
  return p;
}

void RegistryBuilder::PrefetchPerson(std::string_view id) const {
  if (near_person_streak_ < kSkipPrefetchAfter) reg_.person_ids.Prefetch(IdIndex::Hash(id));
}

void RegistryBuilder::Reserve(InputKind kind, size_t rows) {
  switch (kind) {
    case InputKind::kPersons:
      reg_.person_ids.Reserve(rows, rows * 10);
      reg_.person_elder.reserve(rows);
      reg_.elders.reserve(rows);
      id_numbers_.Reserve(rows, rows * 18);
      break;
    case InputKind::kCards:
      reg_.card_ids.Reserve(rows, rows * 10);
      reg_.cards.reserve(rows);
      break;
    case InputKind::kAssessments: assessments_.reserve(rows); break;
    case InputKind::kEnrollments: enrollments_.reserve(rows); break;
    default: break;
  }
}

void RegistryBuilder::Reject(ExceptionCode code, uint16_t file, int64_t line, const std::string& detail,
                             std::string_view card_no, std::string_view person_id, int32_t month) {
  log_->Add(code, file, line, {}, card_no, person_id, month, detail);
}

void RegistryBuilder::Warn(ExceptionCode code, uint16_t file, int64_t line, const std::string& detail,
                           std::string_view person_id) {
  log_->Add(code, file, line, {}, {}, person_id, -1, detail);
}

RowOutcome RegistryBuilder::AddRow(InputKind kind, uint16_t file, int64_t line, Cells c) {
  assert(c.size() == RequiredColumns(kind).size());
  bool ok = false;
  switch (kind) {
    case InputKind::kCenters: ok = AddCenter(file, line, c); break;
    case InputKind::kStations: ok = AddStation(file, line, c); break;
    case InputKind::kPersons: ok = AddPerson(file, line, c); break;
    case InputKind::kAssessments: ok = AddAssessment(file, line, c); break;
    case InputKind::kCards: ok = AddCard(file, line, c); break;
    case InputKind::kEnrollments: ok = AddEnrollment(file, line, c); break;
    case InputKind::kPlatformBalances: return AddPlatformBalance(file, line, c);
    case InputKind::kDeposits:
    case InputKind::kConsumption: throw std::logic_error("a transaction row given to the registry");
  }
  return ok ? RowOutcome::kAccepted : RowOutcome::kRejected;
}

bool RegistryBuilder::AddCenter(uint16_t file, int64_t line, Cells c) {
  const std::string_view id = c[col::kCenterId];
  if (id.empty()) return Reject(ExceptionCode::kBadRow, file, line, "empty center_id"), false;
  if (reg_.center_ids.Find(id) >= 0) {
    return Reject(ExceptionCode::kDuplicateId, file, line, "center_id " + Quote(id) + " seen before"), false;
  }
  const std::string_view code = c[col::kCreditCode];
  if (!IsValidCreditCode(code)) {
    return Reject(ExceptionCode::kBadCreditCode, file, line,
                  "credit_code " + Quote(code) + " is not an 18-character unified social credit code with a valid check character"),
           false;
  }
  reg_.center_ids.Insert(id);
  reg_.centers.push_back(Center{std::string(id), std::string(c[col::kCenterName]), std::string(c[col::kDistrict]),
                                std::string(code), std::string(c[col::kBankAccount])});
  return true;
}

bool RegistryBuilder::AddStation(uint16_t file, int64_t line, Cells c) {
  const std::string_view id = c[col::kStationId];
  if (id.empty()) return Reject(ExceptionCode::kBadRow, file, line, "empty station_id"), false;
  if (reg_.station_ids.Find(id) >= 0) {
    return Reject(ExceptionCode::kDuplicateId, file, line, "station_id " + Quote(id) + " seen before"), false;
  }
  const int32_t center = reg_.center_ids.Find(c[col::kStationCenter]);
  if (center < 0) {
    return Reject(ExceptionCode::kUnknownCenter, file, line,
                  "center_id " + Quote(c[col::kStationCenter]) + " is not a known centre"),
           false;
  }
  reg_.station_ids.Insert(id);
  reg_.station_center.push_back(center);
  return true;
}

bool RegistryBuilder::AddPerson(uint16_t file, int64_t line, Cells c) {
  const std::string_view id = c[col::kPersonId];
  if (id.empty()) return Reject(ExceptionCode::kBadRow, file, line, "empty person_id"), false;
  const uint64_t id_hash = IdIndex::Hash(id);
  if (reg_.person_ids.Find(id, id_hash) >= 0) {
    return Reject(ExceptionCode::kDuplicateId, file, line, "person_id " + Quote(id) + " seen before", {}, id), false;
  }
  const std::string_view id_number = c[col::kIdNumber];
  if (!IsValidResidentId(id_number)) {
    return Reject(ExceptionCode::kBadIdNumber, file, line,
                  "id_number " + MaskIdNumber(id_number) +
                      " is not an 18-character resident id with a valid MOD 11-2 check character",
                  {}, id),
           false;
  }
  auto birth = Date::Parse(c[col::kBirth]);
  if (!birth) {
    return Reject(ExceptionCode::kBadDate, file, line, "birth_date " + Quote(c[col::kBirth]) + " is not a date YYYY-MM-DD", {}, id),
           false;
  }
  std::optional<Date> death;
  if (!c[col::kDeath].empty()) {
    death = Date::Parse(c[col::kDeath]);
    if (!death) {
      return Reject(ExceptionCode::kBadDate, file, line, "death_date " + Quote(c[col::kDeath]) + " is not a date YYYY-MM-DD", {}, id),
             false;
    }
  }
  const std::string_view hukou = c[col::kHukou];
  if (hukou != "rural" && hukou != "urban") {
    return Reject(ExceptionCode::kBadRow, file, line, "hukou " + Quote(hukou) + " is not 'rural' or 'urban'", {}, id), false;
  }
  uint32_t flags = 0;
  std::string unknown;
  std::string_view rest = c[col::kFlags];
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    const std::string_view flag = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (flag.empty()) continue;
    if (auto f = PersonFlagFromName(flag)) {
      flags |= static_cast<uint32_t>(*f);
    } else {
      unknown += (unknown.empty() ? "" : ", ") + Quote(flag);
    }
  }
  char normalized[18];
  std::memcpy(normalized, id_number.data(), 18);
  if (normalized[17] == 'x') normalized[17] = 'X';
  const auto person = static_cast<int32_t>(reg_.person_ids.size());
  reg_.person_ids.Insert(id, id_hash);
  bool new_elder = false;
  const int32_t elder = id_numbers_.Insert(std::string_view(normalized, 18), &new_elder);
  if (!new_elder) {
    Warn(ExceptionCode::kDuplicatePerson, file, line,
         "same resident id as person " + Quote(reg_.person_id(reg_.elders[static_cast<size_t>(elder)])) +
             "; kept as an alias of that elder, whose attributes apply",
         id);
  } else {
    Elder e;
    e.person = person;
    e.birth_date = *birth;
    e.death_date = death;
    e.rural = hukou == "rural";
    e.flags = static_cast<uint8_t>(flags);
    reg_.elders.push_back(e);
  }
  if (!unknown.empty()) Warn(ExceptionCode::kUnknownFlag, file, line, "flag " + unknown + " is not a known flag and is ignored", id);
  reg_.person_elder.push_back(elder);
  return true;
}

bool RegistryBuilder::AddAssessment(uint16_t file, int64_t line, Cells c) {
  const std::string_view person = c[col::kAssessPerson];
  const int32_t p = FindPerson(person);
  if (p < 0) {
    return Reject(ExceptionCode::kUnknownPerson, file, line, "person_id " + Quote(person) + " is not a known person", {}, person),
           false;
  }
  auto date = Date::Parse(c[col::kAssessedOn]);
  if (!date) {
    return Reject(ExceptionCode::kBadDate, file, line,
                  "assessed_on " + Quote(c[col::kAssessedOn]) + " is not a date YYYY-MM-DD", {}, person),
           false;
  }
  const std::string_view standard = c[col::kStandard];
  int max_level;
  if (standard == "GB/T 42195-2022") {
    max_level = 4;
  } else if (standard == "MZ/T 039-2013") {
    max_level = 3;
  } else {
    return Reject(ExceptionCode::kBadRow, file, line,
                  "standard " + Quote(standard) + " is not 'GB/T 42195-2022' or 'MZ/T 039-2013'", {}, person),
           false;
  }
  const std::string_view level = c[col::kLevel];
  if (level.size() != 1 || level[0] < '0' || level[0] - '0' > max_level) {
    return Reject(ExceptionCode::kBadRow, file, line,
                  "level " + Quote(level) + " is not a level 0.." + std::to_string(max_level) + " of " + std::string(standard),
                  {}, person),
           false;
  }
  assessments_.emplace_back(reg_.person_elder[static_cast<size_t>(p)], Assessment{*date, level[0] - '0'});
  return true;
}

bool RegistryBuilder::AddCard(uint16_t file, int64_t line, Cells c) {
  const std::string_view card_no = c[col::kCardNo];
  const std::string_view person = c[col::kCardPerson];
  if (card_no.empty()) return Reject(ExceptionCode::kBadRow, file, line, "empty card_no", {}, person), false;
  const uint64_t card_hash = IdIndex::Hash(card_no);
  if (reg_.card_ids.Find(card_no, card_hash) >= 0) {
    return Reject(ExceptionCode::kDuplicateId, file, line, "card_no " + Quote(card_no) + " seen before", card_no, person), false;
  }
  const int32_t p = FindPerson(person);
  if (p < 0) {
    return Reject(ExceptionCode::kUnknownPerson, file, line, "person_id " + Quote(person) + " is not a known person", card_no,
                  person),
           false;
  }
  const int32_t center = reg_.center_ids.Find(c[col::kCardCenter]);
  if (center < 0) {
    return Reject(ExceptionCode::kUnknownCenter, file, line,
                  "center_id " + Quote(c[col::kCardCenter]) + " is not a known centre", card_no, person),
           false;
  }
  auto issued = Date::Parse(c[col::kIssuedOn]);
  if (!issued) {
    return Reject(ExceptionCode::kBadDate, file, line, "issued_on " + Quote(c[col::kIssuedOn]) + " is not a date YYYY-MM-DD",
                  card_no, person),
           false;
  }
  std::optional<Date> closed;
  if (!c[col::kClosedOn].empty()) {
    closed = Date::Parse(c[col::kClosedOn]);
    if (!closed) {
      return Reject(ExceptionCode::kBadDate, file, line, "closed_on " + Quote(c[col::kClosedOn]) + " is not a date YYYY-MM-DD",
                    card_no, person),
             false;
    }
    if (*closed < *issued) {
      return Reject(ExceptionCode::kBadDate, file, line,
                    "closed_on " + closed->ToString() + " is before issued_on " + issued->ToString(), card_no, person),
             false;
    }
  }
  const std::string_view type = c[col::kCardType];
  if (type != "1" && type != "2") {
    return Reject(ExceptionCode::kBadRow, file, line, "card_type " + Quote(type) + " is not 1 or 2", card_no, person), false;
  }
  Card card;
  card.elder = reg_.person_elder[static_cast<size_t>(p)];
  card.center = center;
  card.card_type = static_cast<int8_t>(type[0] - '0');
  card.issued_on = *issued;
  card.closed_on = closed;
  card.line = static_cast<uint32_t>(line);
  reg_.card_ids.Insert(card_no, card_hash);
  reg_.cards.push_back(card);
  return true;
}

bool RegistryBuilder::AddEnrollment(uint16_t file, int64_t line, Cells c) {
  const std::string_view person = c[col::kEnrollPerson];
  const int32_t p = FindPerson(person);
  if (p < 0) {
    return Reject(ExceptionCode::kUnknownPerson, file, line, "person_id " + Quote(person) + " is not a known person", {}, person),
           false;
  }
  auto start = Date::Parse(c[col::kStartOn]);
  if (!start) {
    return Reject(ExceptionCode::kBadDate, file, line, "start_on " + Quote(c[col::kStartOn]) + " is not a date YYYY-MM-DD", {},
                  person),
           false;
  }
  std::optional<Date> end;
  if (!c[col::kEndOn].empty()) {
    end = Date::Parse(c[col::kEndOn]);
    if (!end) {
      return Reject(ExceptionCode::kBadDate, file, line, "end_on " + Quote(c[col::kEndOn]) + " is not a date YYYY-MM-DD", {},
                    person),
             false;
    }
    if (*end < *start) {
      return Reject(ExceptionCode::kBadDate, file, line, "end_on " + end->ToString() + " is before start_on " + start->ToString(),
                    {}, person),
             false;
    }
  }
  auto program = ProgramFromName(c[col::kProgram]);
  if (!program) {
    return Reject(ExceptionCode::kBadRow, file, line,
                  "program " + Quote(c[col::kProgram]) + " is not 'home_bed' or 'gov_home_service'", {}, person),
           false;
  }
  auto choice = ChoiceFromName(c[col::kChoice]);
  if (*program == Program::kHomeBed && (!choice || *choice == EnrollmentChoice::kNone)) {
    return Reject(ExceptionCode::kBadRow, file, line,
                  "choice " + Quote(c[col::kChoice]) + " of a home_bed enrolment is not 'card_subsidy' or 'home_bed_discount'",
                  {}, person),
           false;
  }
  if (*program == Program::kGovHomeService && !c[col::kChoice].empty()) {
    return Reject(ExceptionCode::kBadRow, file, line,
                  "a gov_home_service enrolment has no choice, found " + Quote(c[col::kChoice]), {}, person),
           false;
  }
  Enrollment e;
  e.program = *program;
  e.choice = *choice;
  e.institution = reg_.institution_ids.Insert(c[col::kInstitution]);
  e.start_on = *start;
  e.end_on = end;
  enrollments_.emplace_back(reg_.person_elder[static_cast<size_t>(p)], e);
  return true;
}

RowOutcome RegistryBuilder::AddPlatformBalance(uint16_t file, int64_t line, Cells c) {
  const std::string_view card_no = c[col::kBalanceCard];
  auto as_of = Date::Parse(c[col::kAsOf]);
  if (!as_of) {
    Reject(ExceptionCode::kBadDate, file, line, "as_of " + Quote(c[col::kAsOf]) + " is not a date YYYY-MM-DD", card_no);
    return RowOutcome::kRejected;
  }
  const int32_t month = YearMonth::Of(*as_of).index();
  auto balance = Money::ParseSigned(c[col::kBalance]);
  if (!balance) {
    Reject(ExceptionCode::kBadAmount, file, line,
           "balance " + Quote(c[col::kBalance]) + " is not a signed amount with at most two decimals", card_no, {}, month);
    return RowOutcome::kRejected;
  }
  if (*as_of > last_month_.last_day()) return RowOutcome::kDeferred;
  const int32_t card = reg_.card_ids.Find(card_no);
  if (card < 0) {
    Reject(ExceptionCode::kUnknownCard, file, line, "card_no " + Quote(card_no) + " is not a known card", card_no, {}, month);
    return RowOutcome::kRejected;
  }
  reg_.platform_balances.push_back(PlatformBalance{card, *as_of, *balance, file, line});
  return RowOutcome::kAccepted;
}

Registry RegistryBuilder::Finish() {
  const size_t elders = reg_.elders.size();
  // Cards numbered in card_no order, so that card-months and statements come
  // out in their files' order by index, with no sort: files usually list
  // cards in that order already, and then nothing moves.
  {
    const size_t n = reg_.cards.size();
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; ++i) {
      sorted = reg_.card_ids.key(static_cast<int32_t>(i - 1)) < reg_.card_ids.key(static_cast<int32_t>(i));
    }
    if (!sorted) {
      std::vector<int32_t> order(n);
      for (size_t i = 0; i < n; ++i) order[i] = static_cast<int32_t>(i);
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return reg_.card_ids.key(a) < reg_.card_ids.key(b); });
      std::vector<int32_t> renumbered(n);
      IdIndex ids;
      ids.Reserve(n, 0);
      std::vector<Card> cards(n);
      for (size_t i = 0; i < n; ++i) {
        renumbered[static_cast<size_t>(order[i])] = static_cast<int32_t>(i);
        ids.Insert(reg_.card_ids.key(order[i]));
        cards[i] = reg_.cards[static_cast<size_t>(order[i])];
      }
      for (auto& pb : reg_.platform_balances) pb.card = renumbered[static_cast<size_t>(pb.card)];
      reg_.card_ids = std::move(ids);
      reg_.cards = std::move(cards);
    }
  }
  // Each elder's rows as one contiguous range, in file order within the elder.
  // Files usually list rows in persons.csv order already: then nothing moves,
  // and the sort is skipped (a stable sort of sorted rows still merges them
  // all: 94 ms at 2,000,000 cards, against a pass that finds them sorted).
  auto by_elder = [](const auto& a, const auto& b) { return a.first < b.first; };
  auto group_by_elder = [&](auto& rows) {
    if (!std::is_sorted(rows.begin(), rows.end(), by_elder)) std::stable_sort(rows.begin(), rows.end(), by_elder);
  };
  group_by_elder(assessments_);
  group_by_elder(enrollments_);
  // An elder's cards by index (card_no order), as settling walks them.
  std::vector<std::pair<int32_t, int32_t>> cards;  // (elder, card)
  cards.reserve(reg_.cards.size());
  for (size_t i = 0; i < reg_.cards.size(); ++i) cards.emplace_back(reg_.cards[i].elder, static_cast<int32_t>(i));
  group_by_elder(cards);
  reg_.assessments.reserve(assessments_.size());
  reg_.enrollments.reserve(enrollments_.size());
  reg_.elder_cards.reserve(cards.size());
  size_t a = 0, e = 0, k = 0;
  for (size_t i = 0; i < elders; ++i) {
    Elder& elder = reg_.elders[i];
    const auto me = static_cast<int32_t>(i);
    elder.assessments_begin = static_cast<uint32_t>(reg_.assessments.size());
    for (; a < assessments_.size() && assessments_[a].first == me; ++a) reg_.assessments.push_back(assessments_[a].second);
    elder.enrollments_begin = static_cast<uint32_t>(reg_.enrollments.size());
    for (; e < enrollments_.size() && enrollments_[e].first == me; ++e) reg_.enrollments.push_back(enrollments_[e].second);
    elder.cards_begin = static_cast<uint32_t>(reg_.elder_cards.size());
    for (; k < cards.size() && cards[k].first == me; ++k) reg_.elder_cards.push_back(cards[k].second);
  }
  assert(a == assessments_.size() && e == enrollments_.size() && k == cards.size());
  std::stable_sort(reg_.platform_balances.begin(), reg_.platform_balances.end(),
                   [](const PlatformBalance& x, const PlatformBalance& y) {
                     return x.card != y.card ? x.card < y.card : x.as_of < y.as_of;
                   });
  // Offsets by card only when there are balances at all (most runs have none).
  if (!reg_.platform_balances.empty()) {
    reg_.card_balances_begin.assign(reg_.cards.size() + 1, 0);
    for (const auto& pb : reg_.platform_balances) ++reg_.card_balances_begin[static_cast<size_t>(pb.card) + 1];
    for (size_t i = 1; i < reg_.card_balances_begin.size(); ++i) reg_.card_balances_begin[i] += reg_.card_balances_begin[i - 1];
  }
  // Stations first: a centre id that is also a station id serves as the station.
  {
    std::vector<std::string_view> keys;
    std::vector<int32_t> serving;
    keys.reserve(reg_.station_ids.size() + reg_.center_ids.size());
    serving.reserve(keys.capacity());
    for (size_t s = 0; s < reg_.station_ids.size(); ++s) {
      keys.push_back(reg_.station_ids.key(static_cast<int32_t>(s)));
      serving.push_back(reg_.station_center[s]);
    }
    for (size_t c = 0; c < reg_.center_ids.size(); ++c) {
      const std::string_view id = reg_.center_ids.key(static_cast<int32_t>(c));
      if (reg_.station_ids.Find(id) >= 0) continue;
      keys.push_back(id);
      serving.push_back(static_cast<int32_t>(c));
    }
    reg_.serving_by_station.Build(keys, serving);  // when it cannot, ServingCenter uses the two tables
  }
  // The registry lives for the whole run: a vector that growth or an estimate
  // from a file's size left more than a quarter unused gives the rest back.
  // Below that the room is kept: capacity never touched takes no memory, and
  // copying millions of elders and cards into new memory took 54 ms at
  // 2,000,000 cards.
  auto shrink_if_wasteful = [](auto& v) {
    if (v.capacity() - v.size() > v.size() / 4) v.shrink_to_fit();
  };
  shrink_if_wasteful(reg_.elders);
  shrink_if_wasteful(reg_.cards);
  shrink_if_wasteful(reg_.station_center);
  shrink_if_wasteful(reg_.platform_balances);
  // Persons are looked up only while the registry is read; their ids name elders in outputs.
  std::vector<int32_t>().swap(reg_.person_elder);
  reg_.person_ids.ReleaseLookup();
  std::vector<std::pair<int32_t, Assessment>>().swap(assessments_);
  std::vector<std::pair<int32_t, Enrollment>>().swap(enrollments_);
  id_numbers_ = IdIndex();
  return std::move(reg_);
}

}  // namespace carecard
