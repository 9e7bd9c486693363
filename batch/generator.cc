#include "batch/generator.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <system_error>
#include <vector>

#include "adapters/csv_writer.h"
#include "engine/registry.h"
#include "engine/money.h"

namespace carecard {
namespace {

// ---------------------------------------------------------------------------
// Randomness: a keyed hash (splitmix64 finaliser) and xoshiro256**.

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

constexpr uint64_t SplitMix(uint64_t x) {
  x += kGolden;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Stream tags: each kind of decision draws from its own keyed stream, so adding a
// draw in one place never shifts the values drawn elsewhere.
enum Tag : uint64_t {
  kTagBlock = 1,
  kTagPerson,
  kTagCard,
  kTagCenter,
  kTagCardMonth,
  kTagFeistel,
  kTagBad,
  kTagEnrollment,
  kTagAssessment,
};

uint64_t Key(uint64_t seed, uint64_t tag, uint64_t a = 0, uint64_t b = 0) {
  uint64_t h = SplitMix(seed ^ (tag * 0xD6E8FEB86659FD93ULL));
  h = SplitMix(h ^ a);
  return SplitMix(h ^ (b * 0xA0761D6478BD642FULL));
}

class Rng {
 public:
  explicit Rng(uint64_t key) {
    for (auto& word : s_) {
      key += kGolden;
      word = SplitMix(key);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n >= 1 and < 2^32 (multiply-shift on the top 32 bits).
  int64_t Below(int64_t n) { return static_cast<int64_t>(((Next() >> 32) * static_cast<uint64_t>(n)) >> 32); }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) { return lo + Below(hi - lo + 1); }
  // True with probability ppm / 1,000,000.
  bool Chance(int64_t ppm) { return Below(1'000'000) < ppm; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_{};
};

// ---------------------------------------------------------------------------
// Check characters.

// GB 32100-2015: unified social credit code, 17 characters + check.
constexpr std::string_view kCreditCharset = "0123456789ABCDEFGHJKLMNPQRTUWXY";
constexpr std::array<int, 17> kCreditWeights = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

char CreditCheckChar(std::string_view first17) {
  int sum = 0;
  for (size_t i = 0; i < 17; ++i) {
    sum += static_cast<int>(kCreditCharset.find(first17[i])) * kCreditWeights[i];
  }
  return kCreditCharset[static_cast<size_t>((31 - sum % 31) % 31)];
}

// The resident id's MOD 11-2 check characters, to make deliberately wrong ones
// (the right one comes from ResidentIdCheckCharacter in engine/registry.h).
constexpr std::string_view kIdCheckChars = "10X98765432";

// ---------------------------------------------------------------------------
// Formatting helpers: append to a std::string, no streams.

void AppendInt(std::string& out, int64_t value, int width = 0) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  (void)ec;
  const auto length = static_cast<int>(end - buffer);
  for (int i = length; i < width; ++i) out.push_back('0');
  out.append(buffer, end);
}

void Append2(std::string& out, int value) {
  out.push_back(static_cast<char>('0' + value / 10));
  out.push_back(static_cast<char>('0' + value % 10));
}

void AppendDate(std::string& out, Date date) {
  AppendInt(out, date.year(), 4);
  out.push_back('-');
  Append2(out, date.month());
  out.push_back('-');
  Append2(out, date.day());
}

void AppendMoney(std::string& out, int64_t fen) { out += Money::FromFen(fen).ToString(); }

// ---------------------------------------------------------------------------
// Name tables (UTF-8).

constexpr std::array<std::string_view, 80> kSurnames = {
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "段", "雷", "侯", "龙"};
constexpr std::array<std::string_view, 48> kGivenChars = {
    "秀", "英", "桂", "兰", "玉", "珍", "凤", "华", "淑", "芳", "建", "国", "明", "德", "文", "志",
    "春", "梅", "海", "成", "金", "福", "永", "刚", "素", "荣", "家", "宝", "立", "新", "光", "秋",
    "香", "云", "学", "胜", "振", "清", "庆", "月", "美", "俊", "广", "树", "长", "有", "恩", "书"};
constexpr std::array<std::string_view, 32> kTowns = {
    "大村", "李哥庄", "南村", "蓼兰", "崔家集", "明村", "田庄", "新河",   "店子", "仁兆",  "白沙河",
    "古岘", "云山",   "东阁", "同和", "李园",   "凤台", "万家", "胶莱",   "铺集", "里岔",  "洋河",
    "胶西", "九龙",   "马店", "店埠", "院上",   "日庄", "南墅", "河头店", "姜山", "夏格庄"};
constexpr std::array<std::string_view, 20> kVillagePrefixes = {"东", "西", "南", "北",   "前",   "后",   "大",
                                                               "小", "上", "下", "张家", "李家", "王家", "刘家",
                                                               "河", "山", "新", "老",   "高",   "石"};
constexpr std::array<std::string_view, 16> kVillageSuffixes = {"庄", "河", "疃", "岭", "沟", "屯", "埠", "洼",
                                                               "泉", "台", "营", "集", "店", "园", "坡", "湾"};

struct District {
  std::string_view code;
  std::string_view name;
};
constexpr std::array<District, 7> kDistricts = {{{"370283", "平度市"},
                                                 {"370281", "胶州市"},
                                                 {"370285", "莱西市"},
                                                 {"370215", "即墨区"},
                                                 {"370211", "黄岛区"},
                                                 {"370214", "城阳区"},
                                                 {"370212", "崂山区"}}};

constexpr std::array<std::string_view, 7> kFlagNames = {"left_behind", "living_alone", "empty_nest",    "dibao",
                                                        "tekun",       "disabled",     "special_family"};
constexpr std::array<int64_t, 7> kFlagPpm = {80'000, 100'000, 120'000, 50'000, 20'000, 60'000, 10'000};

constexpr std::array<std::string_view, 4> kChannels = {"cash", "bank", "wechat", "alipay"};
constexpr std::array<std::string_view, 4> kServices = {"助餐", "助浴", "助洁", "助医"};
constexpr std::array<int64_t, 4> kServiceBaseFen = {1200, 3000, 4000, 2500};

// ---------------------------------------------------------------------------
// Limits and shares (per million unless named otherwise).

constexpr size_t kFlushBytes = 4 << 20;
constexpr int32_t kBirthRangeDays = 16437;  // ~45 years, from first_year - 100
constexpr int64_t kIdSequences = 1000;
constexpr uint64_t kFeistelHalfBits = 14;  // a 28-bit domain, > kBirthRangeDays * 7 * 1000
constexpr int32_t kNoDay = std::numeric_limits<int32_t>::max();
constexpr int32_t kSecondsPerDay = 86400;

constexpr int64_t kTwoCardsBlockPpm = 10'000;        // ~0.5% of persons hold two cards
constexpr int64_t kRegisteredTwiceBlockPpm = 6'000;  // ~0.3% of persons are registered twice
constexpr int64_t kDeathPerMonthPpm = 833;           // ~1% a year
constexpr int64_t kType2Ppm = 350'000;
constexpr int64_t kIssuedInRangePpm = 50'000;
constexpr int64_t kClosedInRangePpm = 10'000;

// ---------------------------------------------------------------------------
// The world: attributes of every entity as a pure function of (seed, index).

struct PersonInfo {
  int64_t index = 0;     // person_id P<index>
  int64_t identity = 0;  // whose id number, name and birth this row carries
  bool alias = false;    // second registration of the same elder
  bool urban = false;
  uint32_t flags = 0;
  int32_t center = 0;
  int32_t home_station = 1;
  int32_t death_day = kNoDay;
  int64_t card = 0;  // the person's first card
};

struct CardInfo {
  int64_t index = 0;
  int64_t person = 0;
  int32_t type = 1;
  int32_t center = 0;
  int32_t home_station = 1;
  int32_t issued_day = 0;
  int32_t closed_day = kNoDay;
  int32_t death_day = kNoDay;  // the elder's
};

struct Block {
  int card_count = 0;
  int person_count = 0;
  std::array<CardInfo, 2> cards;
  std::array<PersonInfo, 2> persons;
};

class World {
 public:
  explicit World(const GenOptions& options) : options_(options), seed_(options.seed) {
    centers_ = options.centers > 0 ? options.centers : static_cast<int32_t>(std::max<int64_t>(2, options.cards / 2000));
    range_first_day_ = options.first_month.first_day().days();
    range_last_day_ = options.last_month.last_day().days();
    months_ = options.last_month.index() - options.first_month.index() + 1;
    birth_first_day_ = Date::FromCivil(options.first_month.year() - 100, 1, 1).days();
  }

  int32_t centers() const { return centers_; }
  int32_t range_first_day() const { return range_first_day_; }
  int32_t range_last_day() const { return range_last_day_; }
  int32_t months() const { return months_; }
  uint64_t seed() const { return seed_; }
  int64_t blocks() const { return (options_.cards + 1) / 2; }

  int32_t StationsOf(int32_t center) const {
    return static_cast<int32_t>(3 + SplitMix(Key(seed_, kTagCenter, static_cast<uint64_t>(center), 1)) % 6);
  }

  // Cards 2k and 2k+1 form block k: two persons with one card each, one person
  // with two cards, or one elder registered twice (two person rows, one card each).
  Block Describe(int64_t k) const {
    Block block;
    const int64_t first = 2 * k;
    block.card_count = first + 1 < options_.cards ? 2 : 1;
    Rng rng(Key(seed_, kTagBlock, static_cast<uint64_t>(k)));
    const int64_t draw = rng.Below(1'000'000);
    const bool two_cards = block.card_count == 2 && draw < kTwoCardsBlockPpm;
    const bool registered_twice =
        block.card_count == 2 && !two_cards && draw < kTwoCardsBlockPpm + kRegisteredTwiceBlockPpm;

    for (int c = 0; c < block.card_count; ++c) block.cards[c] = DescribeCard(first + c);
    block.person_count = two_cards ? 1 : block.card_count;
    for (int p = 0; p < block.person_count; ++p) {
      PersonInfo& person = block.persons[p];
      person = DescribePerson(first + p, block.cards[p]);
      if (registered_twice && p == 1) {
        person.alias = true;
        person.identity = first;
        person.death_day = block.persons[0].death_day;
      }
    }
    if (two_cards) {
      CardInfo& second = block.cards[1];
      const CardInfo& first_card = block.cards[0];
      second.person = first;
      second.center = first_card.center;
      second.home_station = first_card.home_station;
      const int32_t earliest = std::max(first_card.issued_day + 30, range_first_day_ - 700);
      second.issued_day = static_cast<int32_t>(rng.Between(earliest, std::max(earliest, range_last_day_)));
      second.closed_day = kNoDay;
      if (rng.Below(10) >= 7 && first_card.closed_day == kNoDay) {
        // A replacement: the first card closes the day before the second is issued.
        block.cards[0].closed_day = second.issued_day - 1;
      }
    }
    for (int c = 0; c < block.card_count; ++c) {
      const int64_t owner = block.cards[c].person - first;
      block.cards[c].death_day = block.persons[owner].death_day;
    }
    return block;
  }

  // The injective map person identity -> (birth day, region, sequence).
  struct Identity {
    int32_t birth_day;
    int32_t region;
    int32_t sequence;
  };
  Identity IdentityOf(int64_t identity) const {
    const uint64_t domain = static_cast<uint64_t>(kBirthRangeDays) * kDistricts.size() * kIdSequences;
    uint64_t v = static_cast<uint64_t>(identity);
    do {
      v = Feistel(v);
    } while (v >= domain);
    Identity out;
    out.birth_day = birth_first_day_ + static_cast<int32_t>(v % kBirthRangeDays);
    v /= kBirthRangeDays;
    out.region = static_cast<int32_t>(v % kDistricts.size());
    out.sequence = static_cast<int32_t>(v / kDistricts.size());
    return out;
  }

  void AppendIdNumber(std::string& out, int64_t identity) const {
    const Identity id = IdentityOf(identity);
    const size_t start = out.size();
    out += kDistricts[static_cast<size_t>(id.region)].code;
    const Date birth = Date::FromDays(id.birth_day);
    AppendInt(out, birth.year(), 4);
    Append2(out, birth.month());
    Append2(out, birth.day());
    AppendInt(out, id.sequence, 3);
    out.push_back(ResidentIdCheckCharacter(std::string_view(out).substr(start, 17)));
  }

  void AppendName(std::string& out, int64_t identity) const {
    const uint64_t h = Key(seed_, kTagPerson, static_cast<uint64_t>(identity), 7);
    out += kSurnames[h % kSurnames.size()];
    out += kGivenChars[(h >> 16) % kGivenChars.size()];
    if ((h >> 32) % 10 < 6) out += kGivenChars[(h >> 40) % kGivenChars.size()];
  }

  void AppendVillage(std::string& out, int32_t center, int32_t station) const {
    const uint64_t h = Key(seed_, kTagCenter, static_cast<uint64_t>(center), 100 + static_cast<uint64_t>(station));
    out += kVillagePrefixes[h % kVillagePrefixes.size()];
    out += kVillageSuffixes[(h >> 20) % kVillageSuffixes.size()];
    out += "村";
  }

  static void AppendCenterId(std::string& out, int32_t center) {
    out.push_back('C');
    AppendInt(out, center + 1, 5);
  }
  // Station 0 is the centre itself (a centre may serve directly).
  static void AppendStationId(std::string& out, int32_t center, int32_t station) {
    AppendCenterId(out, center);
    if (station == 0) return;
    out.push_back('S');
    AppendInt(out, station, 2);
  }
  static void AppendCardNo(std::string& out, int64_t card) {
    out += "QD";
    AppendInt(out, card + 1, 8);
  }
  static void AppendPersonId(std::string& out, int64_t person) {
    out.push_back('P');
    AppendInt(out, person + 1, 8);
  }

 private:
  CardInfo DescribeCard(int64_t index) const {
    Rng rng(Key(seed_, kTagCard, static_cast<uint64_t>(index)));
    CardInfo card;
    card.index = index;
    card.person = index;
    card.type = rng.Chance(kType2Ppm) ? 2 : 1;
    card.center = static_cast<int32_t>(rng.Below(centers_));
    card.home_station = static_cast<int32_t>(rng.Between(1, StationsOf(card.center)));
    if (rng.Chance(kIssuedInRangePpm)) {
      card.issued_day = static_cast<int32_t>(rng.Between(range_first_day_, range_last_day_));
    } else {
      card.issued_day = range_first_day_ - 1 - static_cast<int32_t>(rng.Below(3 * 365));
    }
    if (rng.Chance(kClosedInRangePpm)) {
      card.closed_day = static_cast<int32_t>(rng.Between(std::max(card.issued_day, range_first_day_), range_last_day_));
    }
    return card;
  }

  PersonInfo DescribePerson(int64_t index, const CardInfo& card) const {
    Rng rng(Key(seed_, kTagPerson, static_cast<uint64_t>(index)));
    PersonInfo person;
    person.index = index;
    person.identity = index;
    person.card = card.index;
    person.center = card.center;
    person.home_station = card.home_station;
    person.urban = rng.Below(100) < 15;
    for (size_t f = 0; f < kFlagPpm.size(); ++f) {
      if (rng.Chance(kFlagPpm[f])) person.flags |= 1u << f;
    }
    if (rng.Chance(kDeathPerMonthPpm * months_)) {
      person.death_day = static_cast<int32_t>(rng.Between(range_first_day_, range_last_day_));
    }
    return person;
  }

  // A keyed 4-round Feistel permutation of [0, 2^28), cycle-walked into the domain.
  uint64_t Feistel(uint64_t v) const {
    constexpr uint64_t mask = (1ULL << kFeistelHalfBits) - 1;
    uint64_t left = (v >> kFeistelHalfBits) & mask;
    uint64_t right = v & mask;
    for (uint64_t round = 0; round < 4; ++round) {
      const uint64_t f = SplitMix(Key(seed_, kTagFeistel, round) ^ right) & mask;
      const uint64_t next = left ^ f;
      left = right;
      right = next;
    }
    return (left << kFeistelHalfBits) | right;
  }

  const GenOptions& options_;
  uint64_t seed_;
  int32_t centers_ = 2;
  int32_t range_first_day_ = 0;
  int32_t range_last_day_ = 0;
  int32_t months_ = 1;
  int32_t birth_first_day_ = 0;
};

// ---------------------------------------------------------------------------
// Output: a CsvWriter flushed to a FILE every few MB.

class FileSink {
 public:
  FileSink() = default;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  ~FileSink() {
    if (file_ != nullptr) std::fclose(file_);
  }

  bool Open(const std::filesystem::path& path, std::string_view header, std::string* error) {
    path_ = path.string();
    file_ = std::fopen(path_.c_str(), "wb");
    if (file_ == nullptr) {
      *error = "cannot create " + path_ + ": " + std::strerror(errno);
      return false;
    }
    writer_ = CsvWriter();
    size_t start = 0;
    while (start <= header.size()) {
      size_t comma = header.find(',', start);
      if (comma == std::string_view::npos) comma = header.size();
      writer_.Cell(header.substr(start, comma - start));
      start = comma + 1;
    }
    writer_.EndRow();
    return true;
  }

  CsvWriter& writer() { return writer_; }
  void RowDone() {
    ++rows_;
    if (writer_.bytes().size() >= kFlushBytes) Flush();
  }
  int64_t rows() const { return rows_; }

  bool Close(std::string* error) {
    Flush();
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (failed_ || !closed) {
      *error = "cannot write " + path_ + ": " + std::strerror(errno);
      return false;
    }
    return true;
  }

 private:
  void Flush() {
    const std::string bytes = writer_.Release();
    writer_ = CsvWriter();
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) failed_ = true;
  }

  std::FILE* file_ = nullptr;
  std::string path_;
  CsvWriter writer_;
  int64_t rows_ = 0;
  bool failed_ = false;
};

// Cells of one row, reused between rows to avoid allocation.
struct Cells {
  std::array<std::string, 10> cell;
  size_t count = 0;
  std::string& Next() {
    std::string& c = cell[count++];
    c.clear();
    return c;
  }
  void Write(FileSink& sink) const {
    for (size_t i = 0; i < count; ++i) sink.writer().Cell(cell[i]);
    sink.writer().EndRow();
    sink.RowDone();
  }
};

// ---------------------------------------------------------------------------
// Registry files.

constexpr std::string_view kCentersHeader = "center_id,name,district,credit_code,bank_account";
constexpr std::string_view kStationsHeader = "station_id,center_id,village,name";
constexpr std::string_view kPersonsHeader = "person_id,id_number,name,birth_date,hukou,village,flags,death_date";
constexpr std::string_view kAssessmentsHeader = "person_id,assessed_on,level,standard";
constexpr std::string_view kCardsHeader = "card_no,person_id,card_type,center_id,issued_on,closed_on";
constexpr std::string_view kEnrollmentsHeader = "person_id,program,institution_id,start_on,end_on,choice";
constexpr std::string_view kDepositsHeader = "txn_id,card_no,kind,amount,at,channel,ref_txn_id";
constexpr std::string_view kConsumptionHeader = "txn_id,card_no,kind,amount,at,station_id,service,ref_txn_id";

constexpr std::string_view kGbStandard = "GB/T 42195-2022";
constexpr std::string_view kMzStandard = "MZ/T 039-2013";

class Generator {
 public:
  Generator(const GenOptions& options, GenSummary* summary)
      : options_(options), world_(options), summary_(summary), out_(options.out_dir) {
    const double share = options.bad_row_share;
    // Extra bad rows are added after good ones: p / (1 - p) per good row gives share p.
    bad_ppm_ = share <= 0.0 ? 0 : static_cast<int64_t>(std::llround(share / (1.0 - share) * 1e6));
  }

  bool Run(std::string* error) {
    if (!WriteCenters(error) || !WriteStations(error) || !WritePersonsAndCards(error)) return false;
    for (int32_t m = 0; m < world_.months(); ++m) {
      if (!WriteMonth(options_.first_month.Plus(m), m + 1 == world_.months(), error)) return false;
    }
    return true;
  }

 private:
  // ---- registry -----------------------------------------------------------

  void AppendCreditCode(std::string& out, int32_t center, bool valid) const {
    const size_t start = out.size();
    const uint64_t h = Key(world_.seed(), kTagCenter, static_cast<uint64_t>(center), 2);
    out.push_back(h % 2 == 0 ? '1' : '5');
    out.push_back('2');
    out += kDistricts[static_cast<size_t>(center) % kDistricts.size()].code;
    // 9-character organisation code, distinct per centre (7919 is coprime with 10^9).
    const uint64_t org = (static_cast<uint64_t>(center) * 7919 + (h >> 8) % 1'000'000'000) % 1'000'000'000;
    AppendInt(out, static_cast<int64_t>(org), 9);
    char check = CreditCheckChar(std::string_view(out).substr(start, 17));
    if (!valid) check = kCreditCharset[(kCreditCharset.find(check) + 1) % kCreditCharset.size()];
    out.push_back(check);
  }

  void CenterCells(Cells& row, int32_t center, bool valid_code) {
    row.count = 0;
    std::string& id = row.Next();
    World::AppendCenterId(id, center);
    std::string& name = row.Next();
    name += kTowns[static_cast<size_t>(center) % kTowns.size()];
    if (static_cast<size_t>(center) >= kTowns.size()) AppendInt(name, center / static_cast<int32_t>(kTowns.size()));
    name += "镇居家社区养老服务中心";
    row.Next() = kDistricts[static_cast<size_t>(center) % kDistricts.size()].name;
    AppendCreditCode(row.Next(), center, valid_code);
    std::string& account = row.Next();
    account += "62220203";
    AppendInt(account, center + 1, 8);
  }

  bool WriteCenters(std::string* error) {
    FileSink sink;
    if (!sink.Open(out_ / "centers.csv", kCentersHeader, error)) return false;
    Rng bad(Key(world_.seed(), kTagBad, 1));
    Cells row;
    for (int32_t c = 0; c < world_.centers(); ++c) {
      CenterCells(row, c, true);
      row.Write(sink);
      if (bad.Chance(bad_ppm_)) {
        // A centre with a wrong credit-code check character (no stations or cards).
        CenterCells(row, c, false);
        row.cell[0] = "CB";
        AppendInt(row.cell[0], ++bad_serial_, 5);
        row.Write(sink);
        ++summary_->bad_rows;
      }
    }
    return sink.Close(error);
  }

  bool WriteStations(std::string* error) {
    FileSink sink;
    if (!sink.Open(out_ / "stations.csv", kStationsHeader, error)) return false;
    Rng bad(Key(world_.seed(), kTagBad, 2));
    Cells row;
    for (int32_t c = 0; c < world_.centers(); ++c) {
      const int32_t stations = world_.StationsOf(c);
      for (int32_t s = 1; s <= stations; ++s) {
        row.count = 0;
        World::AppendStationId(row.Next(), c, s);
        World::AppendCenterId(row.Next(), c);
        std::string& village = row.Next();
        world_.AppendVillage(village, c, s);
        row.Next() = village + "养老服务站";
        row.Write(sink);
        if (bad.Chance(bad_ppm_)) {
          // A station under a centre that does not exist.
          row.cell[0] = "SB";
          AppendInt(row.cell[0], ++bad_serial_, 5);
          row.cell[1] = "CX0001";
          row.Write(sink);
          ++summary_->bad_rows;
        }
      }
    }
    return sink.Close(error);
  }

  void PersonCells(Cells& row, const PersonInfo& person) const {
    row.count = 0;
    World::AppendPersonId(row.Next(), person.index);
    world_.AppendIdNumber(row.Next(), person.identity);
    world_.AppendName(row.Next(), person.identity);
    AppendDate(row.Next(), Date::FromDays(world_.IdentityOf(person.identity).birth_day));
    row.Next() = person.urban ? "urban" : "rural";
    world_.AppendVillage(row.Next(), person.center, person.home_station);
    std::string& flags = row.Next();
    for (size_t f = 0; f < kFlagNames.size(); ++f) {
      if ((person.flags & (1u << f)) == 0) continue;
      if (!flags.empty()) flags.push_back(';');
      flags += kFlagNames[f];
    }
    std::string& death = row.Next();
    if (person.death_day != kNoDay) AppendDate(death, Date::FromDays(person.death_day));
  }

  void CardCells(Cells& row, const CardInfo& card) const {
    row.count = 0;
    World::AppendCardNo(row.Next(), card.index);
    World::AppendPersonId(row.Next(), card.person);
    AppendInt(row.Next(), card.type);
    World::AppendCenterId(row.Next(), card.center);
    AppendDate(row.Next(), Date::FromDays(card.issued_day));
    std::string& closed = row.Next();
    if (card.closed_day != kNoDay) AppendDate(closed, Date::FromDays(card.closed_day));
  }

  void WriteBadPerson(Rng& bad, Cells& row, FileSink& sink, const PersonInfo& person) {
    PersonCells(row, person);
    std::string& id = row.cell[0];
    id = "PB";
    AppendInt(id, ++bad_serial_, 7);
    switch (bad.Below(6)) {
      case 0: {  // wrong check character
        std::string& number = row.cell[1];
        const size_t pos = kIdCheckChars.find(number.back());
        number.back() = kIdCheckChars[(pos + 1) % kIdCheckChars.size()];
        break;
      }
      case 1:  // 17 characters
        row.cell[1].pop_back();
        break;
      case 2:  // a letter among the digits
        row.cell[1][10] = 'A';
        break;
      case 3:
        row.cell[3] = "1950-02-30";
        break;
      case 4:
        row.cell[4] = "农村";
        break;
      default:  // the person_id of the row just written, other content
        id.clear();
        World::AppendPersonId(id, person.index);
        row.cell[2] = "重复";
        break;
    }
    row.Write(sink);
    ++summary_->bad_rows;
  }

  void WriteBadCard(Rng& bad, Cells& row, FileSink& sink, const CardInfo& card) {
    CardCells(row, card);
    std::string& no = row.cell[0];
    no = "QB";
    AppendInt(no, ++bad_serial_, 8);
    switch (bad.Below(6)) {
      case 0:
        row.cell[1] = "PZ";
        AppendInt(row.cell[1], card.index + 1, 8);
        break;
      case 1:
        row.cell[3] = "CX0001";
        break;
      case 2:
        row.cell[4] = "2023-02-29";
        break;
      case 3:
        row.cell[4] = "2023-06-01";
        row.cell[5] = "2023-05-31";
        break;
      case 4:
        row.cell[2] = "3";
        break;
      default:  // the card_no of the row just written
        no.clear();
        World::AppendCardNo(no, card.index);
        break;
    }
    row.Write(sink);
    ++summary_->bad_rows;
  }

  void WriteAssessments(Rng& bad, Cells& row, FileSink& sink, const PersonInfo& person) {
    Rng rng(Key(world_.seed(), kTagAssessment, static_cast<uint64_t>(person.index)));
    if (person.alias || rng.Below(100) >= 70) return;
    const int count = rng.Below(5) == 0 ? 2 : 1;
    int32_t day = world_.range_last_day() - static_cast<int32_t>(rng.Below(900));
    for (int a = 0; a < count; ++a) {
      const bool mz = rng.Below(100) < 15;
      const int64_t r = rng.Below(100);
      int64_t level = r < 40 ? 0 : r < 65 ? 1 : r < 80 ? 2 : r < 92 ? 3 : 4;
      if (mz) level = std::min<int64_t>(level, 3);
      row.count = 0;
      World::AppendPersonId(row.Next(), person.index);
      AppendDate(row.Next(), Date::FromDays(day));
      AppendInt(row.Next(), level);
      row.Next() = mz ? kMzStandard : kGbStandard;
      row.Write(sink);
      if (bad.Chance(bad_ppm_)) {
        switch (bad.Below(4)) {
          case 0:
            row.cell[2] = "5";
            row.cell[3] = kGbStandard;
            break;
          case 1:
            row.cell[2] = "4";
            row.cell[3] = kMzStandard;
            break;
          case 2:
            row.cell[0] = "PZ";
            AppendInt(row.cell[0], person.index + 1, 8);
            break;
          default:
            row.cell[1] = "2023-06-31";
            break;
        }
        row.Write(sink);
        ++summary_->bad_rows;
      }
      day = std::min(world_.range_last_day(), day + static_cast<int32_t>(rng.Between(90, 400)));
    }
  }

  void WriteEnrollments(Rng& bad, Cells& row, FileSink& sink, const PersonInfo& person) {
    Rng rng(Key(world_.seed(), kTagEnrollment, static_cast<uint64_t>(person.index)));
    if (person.alias) return;
    const int64_t r = rng.Below(1000);
    const bool home_visit = r < 40 || (r >= 80 && r < 90);
    const bool home_bed = (r >= 40 && r < 90);
    const int32_t span = world_.range_last_day() - world_.range_first_day() + 1;
    for (int program = 0; program < 2; ++program) {
      if ((program == 0 && !home_visit) || (program == 1 && !home_bed)) continue;
      const int32_t start = world_.range_first_day() - 730 + static_cast<int32_t>(rng.Below(730 + span));
      row.count = 0;
      World::AppendPersonId(row.Next(), person.index);
      row.Next() = program == 0 ? "gov_home_service" : "home_bed";
      std::string& institution = row.Next();
      institution.push_back('I');
      AppendInt(institution, person.center + 1, 5);
      AppendDate(row.Next(), Date::FromDays(start));
      std::string& end = row.Next();
      if (rng.Below(100) < 20) AppendDate(end, Date::FromDays(start + static_cast<int32_t>(rng.Between(30, 400))));
      std::string& choice = row.Next();
      if (program == 1) choice = rng.Below(2) == 0 ? "card_subsidy" : "home_bed_discount";
      row.Write(sink);
      if (bad.Chance(bad_ppm_)) {
        switch (bad.Below(3)) {
          case 0:
            row.cell[1] = "home_care";
            break;
          case 1:
            row.cell[1] = "gov_home_service";
            row.cell[5] = "card_subsidy";
            break;
          default:
            row.cell[4] = "2000-01-01";
            break;
        }
        row.Write(sink);
        ++summary_->bad_rows;
      }
    }
  }

  bool WritePersonsAndCards(std::string* error) {
    FileSink persons, assessments, cards, enrollments;
    if (!persons.Open(out_ / "persons.csv", kPersonsHeader, error) ||
        !assessments.Open(out_ / "assessments.csv", kAssessmentsHeader, error) ||
        !cards.Open(out_ / "cards.csv", kCardsHeader, error) ||
        !enrollments.Open(out_ / "enrollments.csv", kEnrollmentsHeader, error)) {
      return false;
    }
    Rng bad(Key(world_.seed(), kTagBad, 3));
    Cells row;
    for (int64_t k = 0; k < world_.blocks(); ++k) {
      const Block block = world_.Describe(k);
      for (int p = 0; p < block.person_count; ++p) {
        const PersonInfo& person = block.persons[p];
        PersonCells(row, person);
        row.Write(persons);
        if (bad.Chance(bad_ppm_)) WriteBadPerson(bad, row, persons, person);
        WriteAssessments(bad, row, assessments, person);
        WriteEnrollments(bad, row, enrollments, person);
      }
      for (int c = 0; c < block.card_count; ++c) {
        CardCells(row, block.cards[c]);
        row.Write(cards);
        if (bad.Chance(bad_ppm_)) WriteBadCard(bad, row, cards, block.cards[c]);
      }
    }
    summary_->persons = persons.rows();
    summary_->cards = cards.rows();
    return persons.Close(error) && assessments.Close(error) && cards.Close(error) && enrollments.Close(error);
  }

  // ---- transactions -------------------------------------------------------

  struct Txn {
    uint64_t id = 0;
    uint64_t ref_id = 0;  // 0 = none
    int64_t amount_fen = 0;
    int64_t card = 0;
    int32_t day = 0;     // local date (+08:00), days since the epoch
    int32_t second = 0;  // local second of the day
    int32_t station_center = -1;
    int32_t station = 0;
    int16_t ref_local = -1;  // index of the original within the card-month, before ids are set
    uint8_t reverse = 0;     // 1 = reversal / refund
    uint8_t detail = 0;      // channel or service
    bool utc = false;        // written with Z
    bool empty_station = false;
    bool empty_service = false;
  };

  void AppendTimestamp(std::string& out, int32_t day, int32_t second, bool utc) const {
    if (utc) {
      second -= 8 * 3600;
      if (second < 0) {
        second += kSecondsPerDay;
        --day;
      }
    }
    AppendDay(out, day);
    out.push_back('T');
    Append2(out, second / 3600);
    out.push_back(':');
    Append2(out, second / 60 % 60);
    out.push_back(':');
    Append2(out, second % 60);
    out += utc ? "Z" : "+08:00";
  }

  // Dates near the range come from a cache: civil conversion once per day.
  void AppendDay(std::string& out, int32_t day) const {
    const int64_t slot = static_cast<int64_t>(day) - day_cache_first_;
    if (slot >= 0 && slot < static_cast<int64_t>(day_cache_.size())) {
      out += day_cache_[static_cast<size_t>(slot)];
    } else {
      AppendDate(out, Date::FromDays(day));
    }
  }

  void TxnCells(Cells& row, const Txn& txn, bool deposit) const {
    row.count = 0;
    std::string& id = row.Next();
    id.push_back(deposit ? 'D' : 'X');
    AppendInt(id, static_cast<int64_t>(txn.id), 8);
    World::AppendCardNo(row.Next(), txn.card);
    row.Next() = deposit ? (txn.reverse ? "reversal" : "deposit") : (txn.reverse ? "refund" : "consumption");
    AppendMoney(row.Next(), txn.amount_fen);
    AppendTimestamp(row.Next(), txn.day, txn.second, txn.utc);
    if (deposit) {
      row.Next() = kChannels[txn.detail];
    } else {
      std::string& station = row.Next();
      if (!txn.empty_station) World::AppendStationId(station, txn.station_center, txn.station);
      std::string& service = row.Next();
      if (!txn.empty_service) service = kServices[txn.detail];
    }
    std::string& ref = row.Next();
    if (txn.ref_id != 0) {
      ref.push_back(deposit ? 'D' : 'X');
      AppendInt(ref, static_cast<int64_t>(txn.ref_id), 8);
    }
  }

  void WriteTxn(const Txn& txn, bool deposit, FileSink& sink, Rng& bad, uint64_t& sequence) {
    Cells& row = cells_;
    TxnCells(row, txn, deposit);
    row.Write(sink);
    if (!bad.Chance(bad_ppm_)) return;
    ++summary_->bad_rows;
    const char family = deposit ? 'D' : 'X';
    const auto fresh_id = [&] {
      row.cell[0].clear();
      row.cell[0].push_back(family);
      AppendInt(row.cell[0], static_cast<int64_t>(++sequence), 8);
    };
    const YearMonth month = YearMonth::Of(Date::FromDays(txn.day));
    switch (bad.Below(deposit ? 11 : 12)) {
      case 0: {  // bad amount
        static constexpr std::array<std::string_view, 10> kBadAmounts = {
            "12.345", "1,000.00", " 100", "5e1", "１００.００", "-50.00", "0", "100.", ".5", ""};
        fresh_id();
        row.cell[3] = kBadAmounts[static_cast<size_t>(bad.Below(kBadAmounts.size()))];
        break;
      }
      case 1: {  // impossible date or time
        fresh_id();
        std::string& at = row.cell[4];
        at.clear();
        switch (bad.Below(4)) {
          case 0:
            AppendInt(at, month.year(), 4);
            at.push_back('-');
            Append2(at, month.month());
            at.push_back('-');
            Append2(at, month.days() + 1);
            at += "T10:00:00+08:00";
            break;
          case 1:
            AppendDay(at, txn.day);
            at += "T24:00:00+08:00";
            break;
          case 2:
            AppendDay(at, txn.day);
            at += "T10:00:00";
            break;
          default:
            AppendDay(at, txn.day);
            at += " 10:00:00+08:00";
            break;
        }
        break;
      }
      case 2:  // unknown card
        fresh_id();
        row.cell[1] = "QX";
        AppendInt(row.cell[1], bad.Below(100'000'000), 8);
        break;
      case 3:  // the same delivery again, identical
        break;
      case 4:  // the same txn_id with other content
        row.cell[3].clear();
        AppendMoney(row.cell[3], txn.amount_fen + 100);
        break;
      case 5:  // reversal / refund of something that does not exist
        fresh_id();
        row.cell[2] = deposit ? "reversal" : "refund";
        row.cell[3] = "10.00";
        row.cell[row.count - 1] = row.cell[0] + "X";
        break;
      case 6: {  // a reversal / refund of this row (or of its original), too large
        const std::string original = txn.reverse ? row.cell[row.count - 1] : row.cell[0];
        fresh_id();
        row.cell[2] = deposit ? "reversal" : "refund";
        row.cell[3].clear();
        // Beyond what remains of any original: larger than the original row itself.
        AppendMoney(row.cell[3], txn.reverse ? 9'999'900 : txn.amount_fen + 1000);
        row.cell[4].clear();
        AppendTimestamp(row.cell[4], txn.day, std::min(txn.second + 60, kSecondsPerDay - 1), txn.utc);
        row.cell[row.count - 1] = original;
        break;
      }
      case 7:  // unknown kind
        fresh_id();
        row.cell[2] = deposit ? "Deposit" : "purchase";
        break;
      case 8:  // a cell missing
        fresh_id();
        --row.count;
        break;
      case 9:  // empty own key
        row.cell[0].clear();
        break;
      case 10:  // empty card reference: unknown
        fresh_id();
        row.cell[1] = "";
        break;
      default:  // unknown station
        fresh_id();
        row.cell[5] = "C99999S99";
        break;
    }
    row.Write(sink);
  }

  // One card's deposits and consumption in one month.
  void GenerateCardMonth(const CardInfo& card, YearMonth month, bool last_month) {
    deposits_.clear();
    consumption_.clear();
    Rng rng(Key(world_.seed(), kTagCardMonth, static_cast<uint64_t>(card.index), static_cast<uint64_t>(month.index())));
    const int32_t first = month.first_day().days();
    const int32_t last = month.last_day().days();
    const int64_t threshold = card.type == 2 ? 20000 : 10000;

    const int32_t active_from = std::max(first, card.issued_day);
    const int32_t active_to = std::min(last, card.closed_day);
    const auto deposit_at = [&](int32_t day, int64_t amount) {
      Txn t;
      t.card = card.index;
      t.day = day;
      t.second = static_cast<int32_t>(rng.Between(8 * 3600, 18 * 3600));
      t.amount_fen = amount;
      t.detail = static_cast<uint8_t>(rng.Below(kChannels.size()));
      t.utc = rng.Below(100) < 2;
      deposits_.push_back(t);
    };
    if (active_from > active_to) {
      // Closed before this month: now and then a deposit arrives anyway.
      if (card.closed_day < first && rng.Below(100) < 3)
        deposit_at(first + static_cast<int32_t>(rng.Below(20)), threshold);
      return;
    }
    if (card.death_day < first) {
      // The holder died before the month: the family sometimes keeps depositing.
      if (rng.Below(100) < 10)
        deposit_at(active_from + static_cast<int32_t>(rng.Below(active_to - active_from + 1)), threshold);
      return;
    }
    const int32_t alive_to = std::min(active_to, card.death_day);
    int32_t first_deposit_day = alive_to;
    if (rng.Below(100) < 92) {
      first_deposit_day = active_from + static_cast<int32_t>(rng.Below(std::min(5, alive_to - active_from + 1)));
      const int64_t pattern = rng.Below(100);
      if (pattern < 55) {
        deposit_at(first_deposit_day, threshold);
      } else if (pattern < 65) {  // just below the threshold
        static constexpr std::array<int64_t, 4> kShortFen = {1, 50, 100, 500};
        deposit_at(first_deposit_day, threshold - kShortFen[static_cast<size_t>(rng.Below(4))]);
      } else if (pattern < 85) {  // above it
        deposit_at(first_deposit_day, threshold + 1000 * rng.Between(1, 30) + (rng.Below(4) == 0 ? rng.Below(100) : 0));
      } else {  // split in two: meets the threshold exactly, or misses by a fen
        const int64_t part = threshold * rng.Between(30, 70) / 100 / 100 * 100;
        deposit_at(first_deposit_day, part);
        const int64_t rest = threshold - part - (rng.Below(10) < 3 ? 1 : 0);
        deposit_at(static_cast<int32_t>(rng.Between(first_deposit_day, alive_to)), rest);
      }
      Txn& lead = deposits_.front();
      const int64_t midnight = rng.Below(100);
      if (midnight < 3 && lead.day == first) {
        // Early on the 1st, written in UTC: its text shows the previous month's last day.
        lead.second = static_cast<int32_t>(rng.Below(8 * 3600));
        lead.utc = true;
      } else if (midnight < 5) {
        lead.second = static_cast<int32_t>(rng.Between(23 * 3600, 23 * 3600 + 3540));
      }
    }
    if (card.death_day >= first && card.death_day < active_to && rng.Below(100) < 15) {
      deposit_at(static_cast<int32_t>(rng.Between(card.death_day + 1, active_to)), threshold);
    }

    // Reversals: some in the same month, a few in the next month (carried).
    int64_t net_fen = 0;
    const size_t original_deposits = deposits_.size();
    for (size_t i = 0; i < original_deposits; ++i) {
      const Txn original = deposits_[i];
      // Only money in before consumption starts can be spent this month.
      if (original.day <= first_deposit_day) net_fen += original.amount_fen;
      const int64_t r = rng.Below(1000);
      if (r >= 25) continue;
      Txn rev = original;
      rev.reverse = 1;
      rev.utc = false;
      rev.ref_local = static_cast<int16_t>(i);
      rev.amount_fen = rng.Below(10) < 4 || original.amount_fen < 200
                           ? original.amount_fen
                           : rng.Between(1, original.amount_fen / 100 - 1) * 100;
      if (r < 20) {
        rev.day = std::min(last, original.day + static_cast<int32_t>(rng.Below(3)));
        rev.second = rev.day == original.day
                         ? std::min(kSecondsPerDay - 1, original.second + 60 + static_cast<int32_t>(rng.Below(3600)))
                         : static_cast<int32_t>(rng.Between(8 * 3600, 18 * 3600));
        net_fen -= rev.amount_fen;
        deposits_.push_back(rev);
      } else if (!last_month) {
        rev.day = last + 1 + static_cast<int32_t>(rng.Below(10));
        rev.second = static_cast<int32_t>(rng.Between(8 * 3600, 18 * 3600));
        deposits_.push_back(rev);
        deposits_.back().ref_local = static_cast<int16_t>(i | 0x4000);  // marks: carried
      }
    }

    // Consumption within 95% of what was deposited (net of this month's reversals)
    // by the first deposit day, spent after it: balances rarely go negative.
    const int32_t consume_from = first_deposit_day + 1;
    const int64_t budget_fen = net_fen * 95 / 100;
    if (consume_from <= alive_to && budget_fen >= 1000) {
      int64_t visits = rng.Between(6, 14);
      visits = std::min<int64_t>(visits, budget_fen / 300);
      int64_t total_fen = 0;
      const int32_t stations = world_.StationsOf(card.center);
      for (int64_t v = 0; v < visits; ++v) {
        Txn t;
        t.card = card.index;
        t.day = static_cast<int32_t>(rng.Between(consume_from, alive_to));
        t.second = static_cast<int32_t>(rng.Between(7 * 3600, 19 * 3600));
        const int64_t s = rng.Below(100);
        t.detail = static_cast<uint8_t>(s < 70 ? 0 : s < 80 ? 1 : s < 90 ? 2 : 3);
        t.amount_fen = kServiceBaseFen[t.detail] * rng.Between(80, 120) / 100;
        total_fen += t.amount_fen;
        const int64_t where = rng.Below(100);
        t.station_center = card.center;
        if (where < 80) {
          t.station = card.home_station;
        } else if (where < 97) {
          t.station = static_cast<int32_t>(rng.Below(stations + 1));
        } else {
          t.station_center = static_cast<int32_t>(rng.Below(world_.centers()));
          t.station = static_cast<int32_t>(rng.Below(world_.StationsOf(t.station_center) + 1));
        }
        consumption_.push_back(t);
      }
      if (total_fen > budget_fen) {
        for (Txn& t : consumption_)
          t.amount_fen = std::max<int64_t>(100, t.amount_fen * budget_fen / total_fen / 10 * 10);
      }
      const size_t purchases = consumption_.size();
      for (size_t i = 0; i < purchases; ++i) {
        const int64_t r = rng.Below(1000);
        if (r >= 23) continue;
        const Txn original = consumption_[i];
        Txn refund = original;
        refund.reverse = 1;
        refund.ref_local = static_cast<int16_t>(i);
        refund.amount_fen = rng.Below(2) == 0 || original.amount_fen < 200
                                ? original.amount_fen
                                : rng.Between(1, original.amount_fen / 100 - 1) * 100;
        refund.empty_station = rng.Below(10) < 6;
        refund.empty_service = rng.Below(10) < 6;
        if (r < 20) {
          refund.day = std::min(last, original.day + static_cast<int32_t>(rng.Below(3)));
          refund.second = refund.day == original.day ? std::min(kSecondsPerDay - 1, original.second + 600) : 10 * 3600;
          consumption_.push_back(refund);
        } else if (!last_month) {
          refund.day = last + 1 + static_cast<int32_t>(rng.Below(10));
          refund.second = 10 * 3600;
          refund.ref_local = static_cast<int16_t>(i | 0x4000);
          consumption_.push_back(refund);
        }
      }
    }

    // Late delivery: a deposit of this month that reaches the next month's file.
    if (!last_month && !deposits_.empty() && rng.Below(1000) < 3) {
      bool referenced = false;
      for (const Txn& t : deposits_) referenced |= (t.ref_local & 0x3FFF) == 0 && t.ref_local >= 0;
      if (!referenced) deposits_.front().ref_local = -2;  // marks: late
    }
  }

  // Sorts a card-month's rows by time, numbers them, resolves references, and
  // writes them (or carries them to the next month's file).
  void EmitCardMonth(std::vector<Txn>& rows, bool deposit, FileSink& sink, Rng& bad, uint64_t& sequence,
                     std::vector<Txn>& carry) {
    if (rows.empty()) return;
    order_.resize(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
      if (rows[a].day != rows[b].day) return rows[a].day < rows[b].day;
      if (rows[a].second != rows[b].second) return rows[a].second < rows[b].second;
      return a < b;
    });
    for (size_t i : order_) rows[i].id = ++sequence;
    for (size_t i : order_) {
      Txn& t = rows[i];
      if (t.ref_local >= 0) t.ref_id = rows[static_cast<size_t>(t.ref_local & 0x3FFF)].id;
      if (t.ref_local == -2 || (t.ref_local >= 0 && (t.ref_local & 0x4000) != 0)) {
        carry.push_back(t);
      } else {
        WriteTxn(t, deposit, sink, bad, sequence);
      }
    }
  }

  bool WriteMonth(YearMonth month, bool last_month, std::string* error) {
    day_cache_first_ = month.first_day().days() - 40;
    day_cache_.clear();
    for (int32_t d = 0; d < 80; ++d) {
      std::string text;
      AppendDate(text, Date::FromDays(day_cache_first_ + d));
      day_cache_.push_back(std::move(text));
    }
    const std::string suffix = month.ToString() + ".csv";
    FileSink deposits, consumption;
    if (!deposits.Open(out_ / ("deposits-" + suffix), kDepositsHeader, error) ||
        !consumption.Open(out_ / ("consumption-" + suffix), kConsumptionHeader, error)) {
      return false;
    }
    Rng bad_deposits(Key(world_.seed(), kTagBad, 10, static_cast<uint64_t>(month.index())));
    Rng bad_consumption(Key(world_.seed(), kTagBad, 11, static_cast<uint64_t>(month.index())));
    std::vector<Txn> carried_deposits;
    std::vector<Txn> carried_consumption;
    carried_deposits.swap(carry_deposits_);
    carried_consumption.swap(carry_consumption_);
    for (const Txn& t : carried_deposits) WriteTxn(t, true, deposits, bad_deposits, deposit_sequence_);
    for (const Txn& t : carried_consumption) WriteTxn(t, false, consumption, bad_consumption, consumption_sequence_);

    for (int64_t k = 0; k < world_.blocks(); ++k) {
      const Block block = world_.Describe(k);
      for (int c = 0; c < block.card_count; ++c) {
        GenerateCardMonth(block.cards[c], month, last_month);
        EmitCardMonth(deposits_, true, deposits, bad_deposits, deposit_sequence_, carry_deposits_);
        EmitCardMonth(consumption_, false, consumption, bad_consumption, consumption_sequence_, carry_consumption_);
      }
    }
    summary_->deposit_rows += deposits.rows();
    summary_->consumption_rows += consumption.rows();
    return deposits.Close(error) && consumption.Close(error);
  }

  const GenOptions& options_;
  World world_;
  GenSummary* summary_;
  std::filesystem::path out_;
  int64_t bad_ppm_ = 0;
  int64_t bad_serial_ = 0;
  uint64_t deposit_sequence_ = 0;
  uint64_t consumption_sequence_ = 0;
  std::vector<Txn> deposits_, consumption_, carry_deposits_, carry_consumption_;
  std::vector<size_t> order_;
  std::vector<std::string> day_cache_;
  int32_t day_cache_first_ = 0;
  Cells cells_;
};

}  // namespace

bool GenerateDataFolder(const GenOptions& options, GenSummary* summary, std::string* error) {
  *summary = GenSummary{};
  if (options.out_dir.empty()) {
    *error = "gen: --out is required";
    return false;
  }
  if (options.cards < 1 || options.cards > kMaxGeneratedCards) {
    *error = "gen: --cards must be 1.." + std::to_string(kMaxGeneratedCards) + ", got " + std::to_string(options.cards);
    return false;
  }
  if (options.first_month.year() < 1900 || options.last_month.year() > 9000 ||
      options.last_month < options.first_month ||
      options.last_month.index() - options.first_month.index() >= kMaxGeneratedMonths) {
    *error = "gen: --months must be FIRST:LAST with FIRST <= LAST, years 1900..9000, at most " +
             std::to_string(kMaxGeneratedMonths) + " months";
    return false;
  }
  if (!(options.bad_row_share >= 0.0 && options.bad_row_share <= kMaxBadRowShare)) {
    *error = "gen: --bad-rows must be a share between 0 and 0.5";
    return false;
  }
  if (options.centers < 0 || options.centers > kMaxGeneratedCenters) {
    *error = "gen: centers must be 0 (derived) or 1.." + std::to_string(kMaxGeneratedCenters);
    return false;
  }
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) {
    *error = "gen: cannot create " + options.out_dir + ": " + ec.message();
    return false;
  }
  Generator generator(options, summary);
  return generator.Run(error);
}

}  // namespace carecard
