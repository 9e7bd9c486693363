#include "engine/intake.h"

#include <algorithm>
#include <cassert>

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
enum Txn { kTxnId, kTxnCard, kKind, kAmount, kAt, kChannelOrStation, kDepositRefOrService, kConsumptionRef };
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

Intake::Intake(UtcOffset zone, YearMonth last_month) : zone_(zone), last_month_(last_month) {}

bool Intake::MapColumns(InputKind kind, const std::vector<std::string>& header, std::vector<int>* column_of,
                        std::string* missing) {
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

PreparsedTransaction Intake::Preparse(InputKind kind, const std::vector<int>& column_of,
                                      const std::vector<std::string>& cells) {
  auto cell = [&](int column) -> std::string_view {
    return cells[static_cast<size_t>(column_of[static_cast<size_t>(column)])];
  };
  PreparsedTransaction p;
  p.amount = Money::ParsePositive(cell(col::kAmount));
  p.at = Instant::Parse(cell(col::kAt));
  p.txn_hash = TxnIdTable::Hash(cell(col::kTxnId));
  uint64_t content = 0xcbf29ce484222325ull;
  const size_t width = RequiredColumns(kind).size();
  for (size_t i = 0; i < width; ++i) {
    for (unsigned char ch : cell(static_cast<int>(i))) content = (content ^ ch) * 0x100000001b3ull;
    content = (content ^ 0x1fu) * 0x100000001b3ull;  // unit separator: "a,bc" differs from "ab,c"
  }
  p.content_hash = content;
  return p;
}

void Intake::ReserveTransactions(int64_t deposit_rows, int64_t consumption_rows) {
  constexpr int64_t kLimit = 1'000'000'000;  // an estimate, not a promise: never reserve absurd amounts
  deposit_rows = std::clamp<int64_t>(deposit_rows, 0, kLimit);
  consumption_rows = std::clamp<int64_t>(consumption_rows, 0, kLimit);
  const auto rows = static_cast<size_t>(deposit_rows + consumption_rows);
  result_.registry.transactions.reserve(rows);
  remaining_.reserve(rows);
  result_.registry.deposit_ids.Reserve(static_cast<size_t>(deposit_rows), static_cast<size_t>(deposit_rows) * 12);
  result_.registry.consumption_ids.Reserve(static_cast<size_t>(consumption_rows), static_cast<size_t>(consumption_rows) * 12);
}

bool Intake::BeginFile(InputKind kind, const std::string& file_name, const std::vector<std::string>& header,
                       std::string* missing) {
  kind_ = kind;
  if (!MapColumns(kind, header, &column_of_, missing)) return false;
  header_width_ = header.size();
  result_.files.push_back(FileCounts{file_name, kind, 0, 0, 0, 0});
  counts_ = &result_.files.back();
  return true;
}

void Intake::EndFile() { counts_ = nullptr; }

int64_t Intake::current_file_rejected() const { return counts_ ? counts_->rejected : 0; }

std::string_view Intake::Cell(const std::vector<std::string>& cells, int column) const {
  return cells[static_cast<size_t>(column_of_[static_cast<size_t>(column)])];
}

void Intake::Reject(std::string_view code, int64_t line, std::string detail, std::string txn_id, std::string card_no,
                    std::string person_id, std::string month) {
  result_.exceptions.push_back(ExceptionRecord{std::string(code), Severity::kError, counts_->file, line,
                                               std::move(txn_id), std::move(card_no), std::move(person_id),
                                               std::move(month), std::move(detail)});
}

void Intake::Warn(std::string_view code, int64_t line, std::string detail, std::string txn_id, std::string card_no,
                  std::string person_id, std::string month) {
  result_.exceptions.push_back(ExceptionRecord{std::string(code), Severity::kWarning, counts_->file, line,
                                               std::move(txn_id), std::move(card_no), std::move(person_id),
                                               std::move(month), std::move(detail)});
}

void Intake::AddRow(int64_t line, const std::vector<std::string>& cells, std::string_view problem_code,
                    std::string_view problem_detail) {
  assert(counts_ != nullptr);
  ++counts_->read;
  if (!problem_code.empty()) {
    Reject(problem_code, line, std::string(problem_detail));
    ++counts_->rejected;
    return;
  }
  if (cells.size() != header_width_) {
    Reject("bad_row", line,
           "row has " + std::to_string(cells.size()) + " columns, the header has " + std::to_string(header_width_));
    ++counts_->rejected;
    return;
  }
  int outcome = 0;
  switch (kind_) {
    case InputKind::kCenters: outcome = AddCenter(line, cells); break;
    case InputKind::kStations: outcome = AddStation(line, cells); break;
    case InputKind::kPersons: outcome = AddPerson(line, cells); break;
    case InputKind::kAssessments: outcome = AddAssessment(line, cells); break;
    case InputKind::kCards: outcome = AddCard(line, cells); break;
    case InputKind::kEnrollments: outcome = AddEnrollment(line, cells); break;
    case InputKind::kPlatformBalances: outcome = AddPlatformBalance(line, cells); break;
    case InputKind::kDeposits:
    case InputKind::kConsumption: outcome = AddTransaction(line, cells, Preparse(kind_, column_of_, cells)); break;
  }
  CountOutcome(outcome);
}

void Intake::AddPreparsedRow(int64_t line, const std::vector<std::string>& cells, const PreparsedTransaction& pre) {
  assert(counts_ != nullptr);
  assert(kind_ == InputKind::kDeposits || kind_ == InputKind::kConsumption);
  ++counts_->read;
  if (cells.size() != header_width_) {
    Reject("bad_row", line,
           "row has " + std::to_string(cells.size()) + " columns, the header has " + std::to_string(header_width_));
    ++counts_->rejected;
    return;
  }
  CountOutcome(AddTransaction(line, cells, pre));
}

void Intake::CountOutcome(int outcome) {
  if (outcome == 1) {
    ++counts_->accepted;
  } else if (outcome == 2) {
    ++counts_->deferred;
  } else {
    ++counts_->rejected;
  }
  assert(counts_->read == counts_->accepted + counts_->rejected + counts_->deferred);
}

bool Intake::AddCenter(int64_t line, const std::vector<std::string>& c) {
  std::string id(Cell(c, col::kCenterId));
  if (id.empty()) return Reject("bad_row", line, "empty center_id"), false;
  if (result_.registry.center_index.count(id)) return Reject("duplicate_id", line, "center_id " + Quote(id) + " seen before"), false;
  std::string_view code = Cell(c, col::kCreditCode);
  if (!IsValidCreditCode(code)) {
    return Reject("bad_credit_code", line,
                  "credit_code " + Quote(code) + " is not an 18-character unified social credit code with a valid check character"),
           false;
  }
  auto& reg = result_.registry;
  reg.center_index.emplace(id, static_cast<int32_t>(reg.centers.size()));
  reg.centers.push_back(Center{id, std::string(Cell(c, col::kCenterName)), std::string(Cell(c, col::kDistrict)),
                               std::string(code), std::string(Cell(c, col::kBankAccount))});
  return true;
}

bool Intake::AddStation(int64_t line, const std::vector<std::string>& c) {
  std::string id(Cell(c, col::kStationId));
  auto& reg = result_.registry;
  if (id.empty()) return Reject("bad_row", line, "empty station_id"), false;
  if (reg.station_center.count(id)) return Reject("duplicate_id", line, "station_id " + Quote(id) + " seen before"), false;
  auto center = reg.center_index.find(std::string(Cell(c, col::kStationCenter)));
  if (center == reg.center_index.end()) {
    return Reject("unknown_center", line, "center_id " + Quote(Cell(c, col::kStationCenter)) + " is not a known centre"), false;
  }
  reg.station_center.emplace(std::move(id), center->second);
  return true;
}

bool Intake::AddPerson(int64_t line, const std::vector<std::string>& c) {
  auto& reg = result_.registry;
  std::string id(Cell(c, col::kPersonId));
  if (id.empty()) return Reject("bad_row", line, "empty person_id"), false;
  if (reg.person_index.count(id)) return Reject("duplicate_id", line, "person_id " + Quote(id) + " seen before", {}, {}, id), false;
  std::string_view id_number = Cell(c, col::kIdNumber);
  if (!IsValidResidentId(id_number)) {
    return Reject("bad_id_number", line,
                  "id_number " + MaskIdNumber(id_number) +
                      " is not an 18-character resident id with a valid MOD 11-2 check character",
                  {}, {}, id),
           false;
  }
  auto birth = Date::Parse(Cell(c, col::kBirth));
  if (!birth) return Reject("bad_date", line, "birth_date " + Quote(Cell(c, col::kBirth)) + " is not a date YYYY-MM-DD", {}, {}, id), false;
  std::optional<Date> death;
  if (!Cell(c, col::kDeath).empty()) {
    death = Date::Parse(Cell(c, col::kDeath));
    if (!death) return Reject("bad_date", line, "death_date " + Quote(Cell(c, col::kDeath)) + " is not a date YYYY-MM-DD", {}, {}, id), false;
  }
  std::string_view hukou = Cell(c, col::kHukou);
  if (hukou != "rural" && hukou != "urban") {
    return Reject("bad_row", line, "hukou " + Quote(hukou) + " is not 'rural' or 'urban'", {}, {}, id), false;
  }
  uint32_t flags = 0;
  std::string unknown;
  std::string_view rest = Cell(c, col::kFlags);
  while (!rest.empty()) {
    size_t semi = rest.find(';');
    std::string_view flag = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (flag.empty()) continue;
    if (auto f = PersonFlagFromName(flag)) {
      flags |= static_cast<uint32_t>(*f);
    } else {
      unknown += (unknown.empty() ? "" : ", ") + Quote(flag);
    }
  }
  std::string normalized(id_number);
  if (normalized[17] == 'x') normalized[17] = 'X';
  int32_t elder;
  auto existing = elder_by_id_number_.find(normalized);
  if (existing != elder_by_id_number_.end()) {
    elder = existing->second;
    Warn("duplicate_person", line,
         "same resident id as person " + Quote(reg.elders[static_cast<size_t>(elder)].person_id) +
             "; kept as an alias of that elder, whose attributes apply",
         {}, {}, id);
  } else {
    elder = static_cast<int32_t>(reg.elders.size());
    elder_by_id_number_.emplace(normalized, elder);
    Elder e;
    e.person_id = id;
    e.birth_date = *birth;
    e.death_date = death;
    e.rural = hukou == "rural";
    e.flags = flags;
    reg.elders.push_back(std::move(e));
  }
  if (!unknown.empty()) {
    Warn("unknown_flag", line, "flag " + unknown + " is not a known flag and is ignored", {}, {}, id);
  }
  reg.person_index.emplace(id, static_cast<int32_t>(reg.persons.size()));
  reg.persons.push_back(Person{id, elder});
  return true;
}

bool Intake::AddAssessment(int64_t line, const std::vector<std::string>& c) {
  auto& reg = result_.registry;
  std::string person(Cell(c, col::kAssessPerson));
  auto p = reg.person_index.find(person);
  if (p == reg.person_index.end()) return Reject("unknown_person", line, "person_id " + Quote(person) + " is not a known person", {}, {}, person), false;
  auto date = Date::Parse(Cell(c, col::kAssessedOn));
  if (!date) return Reject("bad_date", line, "assessed_on " + Quote(Cell(c, col::kAssessedOn)) + " is not a date YYYY-MM-DD", {}, {}, person), false;
  std::string_view standard = Cell(c, col::kStandard);
  int max_level;
  if (standard == "GB/T 42195-2022") {
    max_level = 4;
  } else if (standard == "MZ/T 039-2013") {
    max_level = 3;
  } else {
    return Reject("bad_row", line, "standard " + Quote(standard) + " is not 'GB/T 42195-2022' or 'MZ/T 039-2013'", {}, {}, person), false;
  }
  std::string_view level = Cell(c, col::kLevel);
  if (level.size() != 1 || level[0] < '0' || level[0] - '0' > max_level) {
    return Reject("bad_row", line, "level " + Quote(level) + " is not a level 0.." + std::to_string(max_level) + " of " + std::string(standard), {}, {}, person), false;
  }
  auto& elder = reg.elders[static_cast<size_t>(reg.persons[static_cast<size_t>(p->second)].elder)];
  elder.assessments.push_back(Assessment{*date, level[0] - '0'});
  return true;
}

bool Intake::AddCard(int64_t line, const std::vector<std::string>& c) {
  auto& reg = result_.registry;
  std::string card_no(Cell(c, col::kCardNo));
  std::string person(Cell(c, col::kCardPerson));
  if (card_no.empty()) return Reject("bad_row", line, "empty card_no", {}, {}, person), false;
  if (reg.card_index.count(card_no)) return Reject("duplicate_id", line, "card_no " + Quote(card_no) + " seen before", {}, card_no, person), false;
  auto p = reg.person_index.find(person);
  if (p == reg.person_index.end()) return Reject("unknown_person", line, "person_id " + Quote(person) + " is not a known person", {}, card_no, person), false;
  auto center = reg.center_index.find(std::string(Cell(c, col::kCardCenter)));
  if (center == reg.center_index.end()) {
    return Reject("unknown_center", line, "center_id " + Quote(Cell(c, col::kCardCenter)) + " is not a known centre", {}, card_no, person), false;
  }
  auto issued = Date::Parse(Cell(c, col::kIssuedOn));
  if (!issued) return Reject("bad_date", line, "issued_on " + Quote(Cell(c, col::kIssuedOn)) + " is not a date YYYY-MM-DD", {}, card_no, person), false;
  std::optional<Date> closed;
  if (!Cell(c, col::kClosedOn).empty()) {
    closed = Date::Parse(Cell(c, col::kClosedOn));
    if (!closed) return Reject("bad_date", line, "closed_on " + Quote(Cell(c, col::kClosedOn)) + " is not a date YYYY-MM-DD", {}, card_no, person), false;
    if (*closed < *issued) return Reject("bad_date", line, "closed_on " + closed->ToString() + " is before issued_on " + issued->ToString(), {}, card_no, person), false;
  }
  std::string_view type = Cell(c, col::kCardType);
  if (type != "1" && type != "2") return Reject("bad_row", line, "card_type " + Quote(type) + " is not 1 or 2", {}, card_no, person), false;
  Card card;
  card.card_no = card_no;
  card.elder = reg.persons[static_cast<size_t>(p->second)].elder;
  card.center = center->second;
  card.card_type = type[0] - '0';
  card.issued_on = *issued;
  card.closed_on = closed;
  card.line = line;
  int32_t index = static_cast<int32_t>(reg.cards.size());
  reg.elders[static_cast<size_t>(card.elder)].cards.push_back(index);
  reg.card_index.emplace(card_no, index);
  [[maybe_unused]] const int32_t claim = reg.card_ids.Insert(card_no, 0);
  assert(claim == index);
  reg.cards.push_back(std::move(card));
  return true;
}

bool Intake::AddEnrollment(int64_t line, const std::vector<std::string>& c) {
  auto& reg = result_.registry;
  std::string person(Cell(c, col::kEnrollPerson));
  auto p = reg.person_index.find(person);
  if (p == reg.person_index.end()) return Reject("unknown_person", line, "person_id " + Quote(person) + " is not a known person", {}, {}, person), false;
  auto start = Date::Parse(Cell(c, col::kStartOn));
  if (!start) return Reject("bad_date", line, "start_on " + Quote(Cell(c, col::kStartOn)) + " is not a date YYYY-MM-DD", {}, {}, person), false;
  std::optional<Date> end;
  if (!Cell(c, col::kEndOn).empty()) {
    end = Date::Parse(Cell(c, col::kEndOn));
    if (!end) return Reject("bad_date", line, "end_on " + Quote(Cell(c, col::kEndOn)) + " is not a date YYYY-MM-DD", {}, {}, person), false;
    if (*end < *start) return Reject("bad_date", line, "end_on " + end->ToString() + " is before start_on " + start->ToString(), {}, {}, person), false;
  }
  auto program = ProgramFromName(Cell(c, col::kProgram));
  if (!program) return Reject("bad_row", line, "program " + Quote(Cell(c, col::kProgram)) + " is not 'home_bed' or 'gov_home_service'", {}, {}, person), false;
  auto choice = ChoiceFromName(Cell(c, col::kChoice));
  if (*program == Program::kHomeBed && (!choice || *choice == EnrollmentChoice::kNone)) {
    return Reject("bad_row", line, "choice " + Quote(Cell(c, col::kChoice)) + " of a home_bed enrolment is not 'card_subsidy' or 'home_bed_discount'", {}, {}, person), false;
  }
  if (*program == Program::kGovHomeService && !Cell(c, col::kChoice).empty()) {
    return Reject("bad_row", line, "a gov_home_service enrolment has no choice, found " + Quote(Cell(c, col::kChoice)), {}, {}, person), false;
  }
  auto& elder = reg.elders[static_cast<size_t>(reg.persons[static_cast<size_t>(p->second)].elder)];
  elder.enrollments.push_back(Enrollment{*program, std::string(Cell(c, col::kInstitution)), *start, end, *choice});
  return true;
}

int Intake::AddPlatformBalance(int64_t line, const std::vector<std::string>& c) {
  auto& reg = result_.registry;
  std::string card_no(Cell(c, col::kBalanceCard));
  auto as_of = Date::Parse(Cell(c, col::kAsOf));
  if (!as_of) return Reject("bad_date", line, "as_of " + Quote(Cell(c, col::kAsOf)) + " is not a date YYYY-MM-DD", {}, card_no), 0;
  std::string month = YearMonth::Of(*as_of).ToString();
  auto balance = Money::ParseSigned(Cell(c, col::kBalance));
  if (!balance) return Reject("bad_amount", line, "balance " + Quote(Cell(c, col::kBalance)) + " is not a signed amount with at most two decimals", {}, card_no, {}, month), 0;
  if (*as_of > last_month_.last_day()) return 2;
  auto card = reg.card_index.find(card_no);
  if (card == reg.card_index.end()) return Reject("unknown_card", line, "card_no " + Quote(card_no) + " is not a known card", {}, card_no, {}, month), 0;
  reg.platform_balances.push_back(PlatformBalance{card->second, *as_of, *balance, counts_->file, line});
  return 1;
}

int32_t Intake::InternService(std::string_view name) {
  if (auto found = service_index_.find(name); found != service_index_.end()) return found->second;
  auto [it, inserted] = service_index_.try_emplace(std::string(name), static_cast<int32_t>(result_.registry.services.size()));
  if (inserted) result_.registry.services.emplace_back(name);
  return it->second;
}

int Intake::AddTransaction(int64_t line, const std::vector<std::string>& c, const PreparsedTransaction& pre) {
  auto& reg = result_.registry;
  const bool deposit_file = kind_ == InputKind::kDeposits;
  const std::string_view txn_view = Cell(c, col::kTxnId);
  const std::string_view card_view = Cell(c, col::kTxnCard);
  auto txn_id = [&] { return std::string(txn_view); };
  auto card_no = [&] { return std::string(card_view); };
  // The month of the row's own date goes on every exception about it, whatever the code.
  const std::optional<Instant>& instant = pre.at;
  auto month = [&]() -> std::string { return instant ? YearMonth::Of(instant->LocalDate(zone_)).ToString() : std::string(); };
  if (txn_view.empty()) return Reject("bad_row", line, "empty txn_id", {}, card_no(), {}, month()), 0;

  // Duplicate delivery or conflict: the content is every required cell as written.
  TxnIdTable& claims = deposit_file ? reg.deposit_ids : reg.consumption_ids;
  const uint64_t content = pre.content_hash;
  const uint64_t txn_hash = pre.txn_hash;
  if (const int32_t seen = claims.Find(txn_view, txn_hash); seen >= 0) {
    if (claims.content_hash(seen) == content) return Reject("duplicate_txn", line, "txn_id " + Quote(txn_view) + " delivered again with identical content", txn_id(), card_no(), {}, month()), 0;
    return Reject("conflicting_txn", line, "txn_id " + Quote(txn_view) + " seen before with different content", txn_id(), card_no(), {}, month()), 0;
  }

  std::string_view kind_text = Cell(c, col::kKind);
  TxnKind kind;
  if (deposit_file && kind_text == "deposit") {
    kind = TxnKind::kDeposit;
  } else if (deposit_file && kind_text == "reversal") {
    kind = TxnKind::kReversal;
  } else if (!deposit_file && kind_text == "consumption") {
    kind = TxnKind::kConsumption;
  } else if (!deposit_file && kind_text == "refund") {
    kind = TxnKind::kRefund;
  } else {
    return Reject("bad_row", line,
                  "kind " + Quote(kind_text) + (deposit_file ? " is not 'deposit' or 'reversal'" : " is not 'consumption' or 'refund'"),
                  txn_id(), card_no(), {}, month()),
           0;
  }
  const std::optional<Money>& amount = pre.amount;
  if (!amount) {
    return Reject("bad_amount", line,
                  "amount " + Quote(Cell(c, col::kAmount)) + " is not a positive amount of at most 12 digits and 2 decimals, such as 100.00",
                  txn_id(), card_no(), {}, month()),
           0;
  }
  if (!instant) {
    return Reject("bad_date", line,
                  "at " + Quote(Cell(c, col::kAt)) + " is not a timestamp with its offset, such as 2024-01-31T23:59:59+08:00",
                  txn_id(), card_no()),
           0;
  }
  const int32_t mine = claims.Insert(txn_view, txn_hash, content);

  const Date local = instant->LocalDate(zone_);
  if (YearMonth::Of(local) > last_month_) return 2;

  const int32_t card_index = reg.card_ids.Find(card_view);
  if (card_index < 0) return Reject("unknown_card", line, "card_no " + Quote(card_view) + " is not a known card", txn_id(), card_no(), {}, month()), 0;
  const Card& the_card = reg.cards[static_cast<size_t>(card_index)];

  Transaction t;
  t.claim = mine;
  t.card = card_index;
  t.kind = kind;
  t.amount = *amount;
  t.at = *instant;
  t.local_date = local;
  t.file = static_cast<int32_t>(result_.files.size() - 1);
  t.line = line;

  std::string_view station = deposit_file ? std::string_view() : Cell(c, col::kChannelOrStation);
  if (kind == TxnKind::kConsumption || (kind == TxnKind::kRefund && !station.empty())) {
    int32_t serving = -1;
    if (auto s = reg.station_center.find(station); s != reg.station_center.end()) {
      serving = s->second;
    } else if (auto direct = reg.center_index.find(station); direct != reg.center_index.end()) {
      serving = direct->second;  // a centre may serve directly under its own id
    }
    if (serving < 0) {
      return Reject("unknown_station", line, "station_id " + Quote(station) + " is not a known station or centre", txn_id(), card_no(), {}, month()), 0;
    }
    t.serving_center = serving;
  }
  if (kind == TxnKind::kReversal || kind == TxnKind::kRefund) {
    const std::string_view ref = Cell(c, deposit_file ? col::kDepositRefOrService : col::kConsumptionRef);
    const int32_t original = ref.empty() ? -1 : claims.Find(ref);
    const int32_t ref_index = original < 0 ? -1 : claims.accepted(original);
    const TxnKind wanted = kind == TxnKind::kReversal ? TxnKind::kDeposit : TxnKind::kConsumption;
    if (ref_index < 0 || reg.transactions[static_cast<size_t>(ref_index)].card != t.card ||
        reg.transactions[static_cast<size_t>(ref_index)].kind != wanted) {
      return Reject("unknown_ref", line,
                    "ref_txn_id " + Quote(ref) + " is not an accepted " + (kind == TxnKind::kReversal ? "deposit" : "consumption") +
                        " of card " + Quote(card_view) + " earlier in file order",
                    txn_id(), card_no(), {}, month()),
             0;
    }
    Money remaining = remaining_[static_cast<size_t>(ref_index)];
    if (t.amount > remaining) {
      return Reject("over_reversal", line,
                    "amount " + t.amount.ToString() + " is more than the " + remaining.ToString() + " that remains of " + Quote(ref),
                    txn_id(), card_no(), {}, month()),
             0;
    }
    remaining_[static_cast<size_t>(ref_index)] = remaining - t.amount;
    t.ref = ref_index;
    const Transaction& orig = reg.transactions[static_cast<size_t>(ref_index)];
    if (kind == TxnKind::kRefund) {
      t.serving_center = orig.serving_center;  // attributed to the consumption's station and service
      t.service = orig.service;
    } else {
      t.counted = orig.counted;
    }
  }
  if (kind == TxnKind::kConsumption) {
    t.service = InternService(Cell(c, col::kDepositRefOrService));
    if (t.serving_center != the_card.center) {
      Warn("cross_center_consumption", line,
           "served by centre " + Quote(reg.centers[static_cast<size_t>(t.serving_center)].center_id) + ", card belongs to " +
               Quote(reg.centers[static_cast<size_t>(the_card.center)].center_id),
           txn_id(), card_no(), {}, month());
    }
  }
  if (kind == TxnKind::kDeposit) {
    const Elder& elder = reg.elders[static_cast<size_t>(the_card.elder)];
    if (!the_card.ActiveOn(local)) {
      t.counted = false;
      Warn("deposit_on_inactive_card", line, "card is not active on " + local.ToString() + "; not counted toward a subsidy",
           txn_id(), card_no(), {}, month());
    } else if (!elder.AliveOn(local)) {
      t.counted = false;
      Warn("deposit_after_death", line,
           "holder died on " + elder.death_date->ToString() + ", deposit dated " + local.ToString() + "; not counted toward a subsidy",
           txn_id(), card_no(), {}, month());
    }
  }
  claims.set_accepted(mine, static_cast<int32_t>(reg.transactions.size()));
  remaining_.push_back(t.amount);
  reg.transactions.push_back(std::move(t));
  return 1;
}

IntakeResult Intake::Finish() { return std::move(result_); }

}  // namespace carecard
