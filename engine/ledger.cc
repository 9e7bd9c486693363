#include "engine/ledger.h"

#include <algorithm>
#include <bit>
#include <cassert>

#include "engine/small_copy.h"

namespace carecard {
namespace {

std::string Quote(std::string_view v) { return "'" + std::string(v) + "'"; }

inline char* PutVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
inline uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
inline int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

// Reads one extent of encoded records, with bounds checks: spilled bytes are
// the engine's own, but a damaged temp file must not read out of bounds.
class Reader {
 public:
  Reader(const char* p, const char* end) : p_(p), end_(end) {}
  bool done() const { return p_ >= end_; }
  uint8_t Byte() {
    if (p_ >= end_) Bad();
    return static_cast<uint8_t>(*p_++);
  }
  // kChecked false: the caller made sure (Has) that the bytes are there, so
  // a record's fixed fields are read with one bounds check instead of one each.
  template <bool kChecked = true>
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = kChecked ? Byte() : static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    Bad();
  }
  template <typename T, bool kChecked = true>
  T Get() {
    T v;
    if constexpr (kChecked) {
      std::memcpy(&v, Bytes(sizeof v), sizeof v);
    } else {
      std::memcpy(&v, p_, sizeof v);
      p_ += sizeof v;
    }
    return v;
  }
  // Three bytes, little-endian (Put24). Unchecked, it loads four: the caller made
  // sure (Has) of room for the longest record, which covers the fourth.
  template <bool kChecked = true>
  uint32_t Get24() {
    if constexpr (kChecked) {
      const auto* b = reinterpret_cast<const uint8_t*>(Bytes(3));
      return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16;
    } else {
      uint32_t v;
      std::memcpy(&v, p_, sizeof v);
      p_ += 3;
      if constexpr (std::endian::native != std::endian::little) v = __builtin_bswap32(v);
      return v & 0xFFFFFF;
    }
  }
  template <bool kChecked = true>
  size_t IdLength() {
    const uint8_t first = Get<uint8_t, kChecked>();
    if (!(first & 0x80)) return first;
    return size_t{first & 0x7Fu} | size_t{Get<uint8_t, kChecked>()} << 7;
  }
  bool Has(size_t n) const { return static_cast<size_t>(end_ - p_) >= n; }
  // Unchecked, like Get<T, false>: the caller knows (Has) the bytes are there.
  template <typename T>
  T Peek() const {
    T v;
    std::memcpy(&v, p_, sizeof v);
    return v;
  }
  void Skip(size_t n) { p_ += n; }
  const char* Bytes(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) Bad();
    const char* at = p_;
    p_ += n;
    return at;
  }
  [[noreturn]] static void Bad() { throw SpillError("a spilled record is damaged"); }

 private:
  const char* p_;
  const char* end_;
};

// Event flags: what repeats the record before, and which fields are short.
enum EventFlags : uint16_t {
  kSameCard = 1,
  kSameFile = 2,
  kHasNanos = 4,
  kSameServing = 8,
  kSameService = 16,
  kHasRef = 32,
  kShortLine = 64,     // line - previous line fits one byte
  kShortTime = 128,    // at - previous at fits 24 bits (signed): 97 days
  kShortAmount = 256,  // amount fits 24 bits: 167,772.15 yuan
  kKindShift = 9,      // two bits
  // Shorter still, for the common row (2,048 and up; kTinyAmount comes with kShortAmount,
  // and a decoder tests it first):
  kTinyAmount = 2048,        // amount fits 16 bits: 655.35 yuan (a deposit of 100 or 200, most consumption)
  kTinyService = 4096,       // a changed service fits one byte (the first 256 services named)
  kPackedIdLengths = 8192,   // the id's shared length and its tail's length both below 16: one byte
};

template <typename T>
inline char* Put(char* p, T v) {
  std::memcpy(p, &v, sizeof v);
  return p + sizeof v;
}

// The low 24 bits of `v`, little-endian, in three bytes. Stores four: the
// fourth is overwritten by what follows or lies in the record's reserved room
// (MaxEncodedEventBytes).
inline char* Put24(char* p, uint32_t v) {
  const uint32_t le = std::endian::native == std::endian::little ? v : __builtin_bswap32(v);
  std::memcpy(p, &le, sizeof le);
  return p + 3;
}
inline constexpr int64_t kShortTimeLimit = int64_t{1} << 23;      // |delta| below it: kShortTime
inline constexpr int64_t kShortAmountLimit = int64_t{1} << 24;    // amount below it: kShortAmount
inline constexpr int64_t kTinyAmountLimit = int64_t{1} << 16;     // amount below it: kTinyAmount
// The tiny forms keep the low bytes of a whole field stored in place.
static_assert(std::endian::native == std::endian::little, "the event codec's short fields are low bytes");
// A txn id's differing tail's length: one byte below 128, else two (15 bits, enough for kMaxTxnIdBytes).
static_assert(kMaxTxnIdBytes < (1u << 15));
inline char* PutIdLength(char* p, size_t n) {
  if (n < 0x80) return Put(p, static_cast<uint8_t>(n));
  p = Put(p, static_cast<uint8_t>(0x80 | (n & 0x7F)));
  return Put(p, static_cast<uint8_t>(n >> 7));
}

}  // namespace

size_t EncodeEvent(const EventHeader& h, std::string_view txn_id, std::string_view ref, bool fresh, EventDelta* prev,
                   char* out) {
  if (fresh) prev->Reset();
  const bool consumption = h.kind() == TxnKind::kConsumption;
  uint16_t flags = static_cast<uint16_t>(static_cast<unsigned>(h.kind()) << kKindShift);
  if (!fresh && h.card == prev->card) flags |= kSameCard;
  const bool same_file = !fresh && h.file == prev->file;
  if (same_file) flags |= kSameFile;
  const uint32_t line_delta = h.line - (same_file ? prev->line : 0);
  if (same_file && line_delta < 256) flags |= kShortLine;
  // Timestamps are 4-digit years (about +-2^38 s); anything beyond +-2^62 is stored whole, so
  // the difference below cannot overflow.
  constexpr int64_t kNear = int64_t{1} << 62;
  const bool near = h.at_seconds > -kNear && h.at_seconds < kNear && prev->at_seconds > -kNear && prev->at_seconds < kNear;
  const int64_t time_delta = near ? h.at_seconds - prev->at_seconds : INT64_MAX;
  if (time_delta >= -kShortTimeLimit && time_delta < kShortTimeLimit) flags |= kShortTime;
  if (h.nanos() != 0) flags |= kHasNanos;
  if (h.amount_fen >= 0 && h.amount_fen < kShortAmountLimit) flags |= kShortAmount;
  if (h.amount_fen >= 0 && h.amount_fen < kTinyAmountLimit) flags |= kTinyAmount;
  if (consumption && !fresh && h.serving_center == prev->serving) flags |= kSameServing;
  // (The service changes from row to row at random: selected, not branched on, here and below.)
  const bool same_service = consumption & !fresh & (h.service == prev->service);
  flags |= static_cast<uint16_t>(static_cast<unsigned>(same_service) * kSameService);
  const bool tiny_service = h.service < 256;
  flags |= static_cast<uint16_t>(static_cast<unsigned>(consumption & tiny_service) * kTinyService);
  // The txn id as the length of what it shares with the last one, and the rest.
  size_t common = 0;
  const size_t limit = std::min<size_t>({txn_id.size(), prev->txn_id_len, 255});
  bool differ = false;
  while (common + 8 <= limit) {
    uint64_t x, y;
    std::memcpy(&x, txn_id.data() + common, 8);
    std::memcpy(&y, prev->txn_id + common, 8);
    if (x != y) {
      // The first differing byte, from the lowest set bit (words load little-endian): no byte loop
      // whose exit moves from id to id.
      if constexpr (std::endian::native == std::endian::little) {
        common += static_cast<size_t>(__builtin_ctzll(x ^ y)) / 8;
        differ = true;
      }
      break;
    }
    common += 8;
  }
  if (!differ) {
    while (common < limit && txn_id[common] == prev->txn_id[common]) ++common;
  }
  const auto rest = static_cast<uint16_t>(txn_id.size() - common);
  if (common < 16 && rest < 16) flags |= kPackedIdLengths;
  if (!ref.empty()) flags |= kHasRef;
  char* p = Put(out, flags);
  if (!(flags & kSameCard)) p = Put(p, h.card);
  if (!same_file) p = Put(p, h.file);
  p = (flags & kShortLine) ? Put(p, static_cast<uint8_t>(line_delta)) : Put(p, h.line);
  p = (flags & kShortTime) ? Put24(p, static_cast<uint32_t>(time_delta)) : Put(p, h.at_seconds);
  if (flags & kHasNanos) p = Put(p, static_cast<uint32_t>(h.nanos()));
  // The whole amount, then kept to its short length: a short amount is its low bytes (little-endian).
  Put(p, h.amount_fen);
  p += (flags & kTinyAmount) ? 2 : (flags & kShortAmount) ? 3 : 8;
  if (consumption && !(flags & kSameServing)) p = Put(p, h.serving_center);
  if (consumption) {
    // Within the record's reserved room (MaxEncodedEventBytes) even when not kept; a tiny one keeps
    // its low byte (little-endian).
    Put(p, h.service);
    p += static_cast<size_t>(!same_service) * (tiny_service ? 1 : sizeof h.service);
  }
  if (flags & kPackedIdLengths) {
    p = Put(p, static_cast<uint8_t>(common << 4 | rest));
  } else {
    p = Put(p, static_cast<uint8_t>(common));
    p = PutIdLength(p, rest);
  }
  CopySmall(p, txn_id.data() + common, rest);
  p += rest;
  if (!ref.empty()) {
    p = Put(p, static_cast<uint16_t>(ref.size()));
    std::memcpy(p, ref.data(), ref.size());
    p += ref.size();
  }
  prev->card = h.card;
  prev->file = h.file;
  prev->line = h.line;
  prev->at_seconds = h.at_seconds;
  if (consumption) {
    prev->serving = h.serving_center;
    prev->service = h.service;
  }
  CopySmall(prev->txn_id + common, txn_id.data() + common, rest);
  prev->txn_id_len = static_cast<uint16_t>(txn_id.size());
  return static_cast<size_t>(p - out);
}

namespace {

// What an event record holds before its txn id's bytes, at most: flags, card,
// file, line, time, nanos, amount, station, service, and the id's two lengths;
// and one more, for the fourth byte that Reader::Get24 loads.
constexpr size_t kMostFixedEventBytes = 2 + 4 + 2 + 4 + 8 + 4 + 8 + 4 + 2 + 1 + 2 + 1;

// The fields of an event record before its txn id's bytes; kChecked false when
// kMostFixedEventBytes are known to be there. Returns the flags.
template <bool kChecked>
uint16_t DecodeEventFields(Reader* reader, const EventDelta& prev, EventHeader* out, size_t* common, size_t* rest) {
  Reader& r = *reader;
  EventHeader& h = *out;
  const auto flags = r.Get<uint16_t, kChecked>();
  const auto kind = static_cast<TxnKind>((flags >> kKindShift) & 3);
  h.card = (flags & kSameCard) ? prev.card : r.Get<int32_t, kChecked>();
  h.file = (flags & kSameFile) ? prev.file : r.Get<uint16_t, kChecked>();
  h.line = (flags & kShortLine) ? prev.line + r.Get<uint8_t, kChecked>() : r.Get<uint32_t, kChecked>();
  // (A 24-bit delta is sign-extended by shifting it to the top of 32 bits and back. Added
  // unsigned: a damaged record must not overflow a signed sum; a sound one never wraps.)
  h.at_seconds = (flags & kShortTime)
                     ? static_cast<int64_t>(static_cast<uint64_t>(prev.at_seconds) +
                                            static_cast<uint64_t>(int64_t{static_cast<int32_t>(r.Get24<kChecked>() << 8) >> 8}))
                     : r.Get<int64_t, kChecked>();
  const uint32_t nanos = (flags & kHasNanos) ? r.Get<uint32_t, kChecked>() : 0u;
  if (nanos >= (1u << 30)) Reader::Bad();
  h.nanos_kind = nanos | static_cast<uint32_t>(kind) << 30;
  h.amount_fen = (flags & kTinyAmount)    ? int64_t{r.Get<uint16_t, kChecked>()}
                 : (flags & kShortAmount) ? int64_t{r.Get24<kChecked>()}
                                          : r.Get<int64_t, kChecked>();
  h.serving_center = -1;
  if (kind == TxnKind::kConsumption) {
    h.serving_center = (flags & kSameServing) ? prev.serving : r.Get<int32_t, kChecked>();
    const bool tiny = (flags & kTinyService) != 0;
    if constexpr (kChecked) {
      h.service = (flags & kSameService) ? prev.service : tiny ? r.Get<uint8_t>() : r.Get<uint16_t>();
    } else {  // the two bytes are there (kMostFixedEventBytes): read them either way, keep what was stored
      const auto read = static_cast<uint16_t>(r.Peek<uint16_t>() & (tiny ? 0xFFu : 0xFFFFu));
      const bool same = (flags & kSameService) != 0;
      const auto keep_prev = static_cast<uint16_t>(-static_cast<int>(same));  // all ones when same
      h.service = static_cast<uint16_t>((prev.service & keep_prev) | (read & ~keep_prev));
      r.Skip(static_cast<size_t>(!same) * (tiny ? 1 : sizeof read));
    }
  }
  if (flags & kPackedIdLengths) {
    const auto both = r.Get<uint8_t, kChecked>();
    *common = both >> 4;
    *rest = both & 0x0F;
  } else {
    *common = r.Get<uint8_t, kChecked>();
    *rest = r.IdLength<kChecked>();
  }
  return flags;
}

// A dedup record before its end: the hash and three varints (line and flags, file, locator) of at most ten bytes.
constexpr size_t kDedupHashBytes = 6;
static_assert(kDedupHashMask == (uint64_t{1} << (8 * kDedupHashBytes)) - 1);
constexpr size_t kMostDedupBytes = kDedupHashBytes + 3 * 10;

template <bool kChecked>
DedupRecord DecodeDedupRecord(Reader* reader, const DedupDelta& prev) {
  Reader& r = *reader;
  DedupRecord d{};
  if constexpr (kChecked) {
    const auto* b = reinterpret_cast<const uint8_t*>(r.Bytes(kDedupHashBytes));
    for (size_t i = 0; i < kDedupHashBytes; ++i) d.hash |= uint64_t{b[i]} << (8 * i);
  } else {  // the eight bytes are there (kMostDedupBytes)
    d.hash = r.Peek<uint64_t>();
    if constexpr (std::endian::native != std::endian::little) d.hash = __builtin_bswap64(d.hash);
    d.hash &= kDedupHashMask;
    r.Skip(kDedupHashBytes);
  }
  const uint64_t line_and_flags = r.Varint<kChecked>();
  const uint64_t flags = line_and_flags & 7;
  d.line = static_cast<uint32_t>(int64_t{(flags & 1) ? prev.line : 0} + UnZigZag(line_and_flags >> 3));
  d.file = (flags & 1) ? prev.file : static_cast<uint16_t>(r.Varint<kChecked>());
  // Added unsigned: a damaged record must not overflow a signed sum (locators are below 2^50).
  d.locator = ((flags & 1) ? prev.locator : 0) + static_cast<uint64_t>(UnZigZag(r.Varint<kChecked>()));
  d.claimable = (flags & 2) ? 1 : 0;
  d.deposits = (flags & 4) ? 1 : 0;
  return d;
}

}  // namespace

void DecodeEvents(const ByteBuffer& bytes, const std::vector<uint32_t>& extents, ByteBuffer* out) {
  out->clear();
  size_t at = 0;
  auto holder = std::make_unique<EventDelta>();  // 4 KB of id: not on the stack of a worker
  EventDelta& prev = *holder;
  for (uint32_t extent : extents) {
    if (extent > bytes.size() - at) Reader::Bad();  // extents that claim more than was read
    Reader r(bytes.data() + at, bytes.data() + at + extent);
    at += extent;
    prev.Reset();
    while (!r.done()) {
      EventHeader h{};
      size_t common, rest;
      const uint16_t flags = r.Has(kMostFixedEventBytes) ? DecodeEventFields<false>(&r, prev, &h, &common, &rest)
                                                         : DecodeEventFields<true>(&r, prev, &h, &common, &rest);
      const bool consumption = h.kind() == TxnKind::kConsumption;
      if (common > prev.txn_id_len || common + rest > kMaxTxnIdBytes) Reader::Bad();
      CopySmall(prev.txn_id + common, r.Bytes(rest), rest);
      prev.txn_id_len = static_cast<uint16_t>(common + rest);
      std::string_view ref;
      if (flags & kHasRef) {
        const size_t n = r.Get<uint16_t>();
        ref = std::string_view(r.Bytes(n), n);
      }
      h.id_len = prev.txn_id_len;
      h.ref_len = static_cast<uint16_t>(ref.size());
      const size_t size = out->size();
      out->resize(size + h.record_bytes());
      char* o = out->data() + size;
      std::memcpy(o, &h, sizeof h);
      CopySmall(o + sizeof h, prev.txn_id, prev.txn_id_len);
      if (!ref.empty()) CopySmall(o + sizeof h + prev.txn_id_len, ref.data(), ref.size());
      prev.card = h.card;
      prev.file = h.file;
      prev.line = h.line;
      prev.at_seconds = h.at_seconds;
      if (consumption) {
        prev.serving = h.serving_center;
        prev.service = h.service;
      }
    }
  }
}

size_t EncodeDedup(const DedupRecord& d, bool fresh, DedupDelta* prev, char* out) {
  if (fresh) *prev = DedupDelta();
  const bool same_file = !fresh && d.file == prev->file;
  char* p = out;
  // Six bytes of the hash, little-endian; the eight stored are overwritten from the seventh on.
  const uint64_t hash = std::endian::native == std::endian::little ? d.hash : __builtin_bswap64(d.hash);
  std::memcpy(p, &hash, sizeof hash);
  p += kDedupHashBytes;
  // The three flags ride in the line's varint, below its delta: a line delta
  // below 2^10 (a row in ~70 of a family's hash partitions, 680 at 40 M rows)
  // still takes two bytes, and the flags no byte of their own.
  const uint64_t flags = (same_file ? 1u : 0u) | (d.claimable ? 2u : 0u) | (d.deposits ? 4u : 0u);
  p = PutVarint(p, ZigZag(int64_t{d.line} - int64_t{same_file ? prev->line : 0}) << 3 | flags);
  if (!same_file) p = PutVarint(p, d.file);
  p = PutVarint(p, ZigZag(static_cast<int64_t>(d.locator - (same_file ? prev->locator : 0))));
  prev->file = d.file;
  prev->locator = d.locator;
  prev->line = d.line;
  return static_cast<size_t>(p - out);
}

void DecodeDedup(const ByteBuffer& bytes, const std::vector<uint32_t>& extents, ByteBuffer* out) {
  out->clear();
  size_t at = 0;
  for (uint32_t extent : extents) {
    if (extent > bytes.size() - at) Reader::Bad();  // extents that claim more than was read
    Reader r(bytes.data() + at, bytes.data() + at + extent);
    at += extent;
    DedupDelta prev;
    while (!r.done()) {
      const DedupRecord d = r.Has(kMostDedupBytes) ? DecodeDedupRecord<false>(&r, prev) : DecodeDedupRecord<true>(&r, prev);
      const size_t size = out->size();
      out->resize(size + sizeof d);
      std::memcpy(out->data() + size, &d, sizeof d);
      prev.file = d.file;
      prev.locator = d.locator;
      prev.line = d.line;
    }
  }
}

uint16_t ServiceNames::Intern(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  bool inserted = false;
  const int32_t id = names_.Insert(name, &inserted);
  if (inserted && names_.size() > kMaxServices) {
    throw RefusedError("the consumption files name more than 65,535 distinct services; is the service column right?");
  }
  return static_cast<uint16_t>(id);
}

std::string_view ServiceNames::name(uint16_t id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return names_.key(id);
}

size_t ServiceNames::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return names_.size();
}

TxnVerdict CheckTxnRow(const LedgerContext& ctx, bool deposits, Cells c, std::string* detail, TxnLookupCache* cache) {
  using namespace txn_col;
  TxnVerdict v;
  Date local;
  YearMonth local_month;
  const std::optional<Instant> instant = Instant::Parse(c[kAt], ctx.zone, &local, &local_month);
  if (instant) v.month = local_month.index();
  auto reject = [&](ExceptionCode code, auto&& make_detail) {
    v.outcome = TxnVerdict::kRejected;
    v.code = code;
    if (detail) *detail = make_detail();
    return v;
  };
  const std::string_view kind_text = c[kKind];
  // (SameId: word compares; the kinds are 6 to 11 bytes.)
  if (deposits && SameId(kind_text, "deposit")) {
    v.kind = TxnKind::kDeposit;
  } else if (deposits && SameId(kind_text, "reversal")) {
    v.kind = TxnKind::kReversal;
  } else if (!deposits && SameId(kind_text, "consumption")) {
    v.kind = TxnKind::kConsumption;
  } else if (!deposits && SameId(kind_text, "refund")) {
    v.kind = TxnKind::kRefund;
  } else {
    return reject(ExceptionCode::kBadRow, [&] {
      return "kind " + Quote(kind_text) + (deposits ? " is not 'deposit' or 'reversal'" : " is not 'consumption' or 'refund'");
    });
  }
  const std::optional<Money> amount = Money::ParsePositive(c[kAmount]);
  if (!amount) {
    return reject(ExceptionCode::kBadAmount, [&] {
      return "amount " + Quote(c[kAmount]) + " is not a positive amount of at most 12 digits and 2 decimals, such as 100.00";
    });
  }
  if (!instant) {
    return reject(ExceptionCode::kBadDate, [&] {
      return "at " + Quote(c[kAt]) + " is not a timestamp with its offset, such as 2024-01-31T23:59:59+08:00";
    });
  }
  v.claimable = true;
  v.amount = *amount;
  v.at = *instant;
  if (v.month > ctx.last_month.index()) {
    v.outcome = TxnVerdict::kDeferred;
    return v;
  }
  const Registry& reg = *ctx.registry;
  if (cache && cache->has_card && SameId(cache->card_no, c[kCardNo])) {
    v.card = cache->card;
  } else {
    const int32_t next = cache && cache->has_card && cache->card >= 0 ? reg.CardShortlyAfter(cache->card, c[kCardNo]) : -1;
    const bool is_next = next >= 0;
    v.card = is_next ? next : reg.card_ids.Find(c[kCardNo]);
    if (cache) {
      cache->card_was_next = is_next;
      cache->card_no.assign(c[kCardNo]);
      cache->card = v.card;
      cache->partition = v.card >= 0 ? ctx.card_partition[static_cast<size_t>(v.card)] : 0;
      cache->stations = v.card >= 0 ? cache->StationsOf(reg.card(v.card).center) : nullptr;
      cache->has_card = true;
    }
  }
  if (v.card < 0) {
    return reject(ExceptionCode::kUnknownCard, [&] { return "card_no " + Quote(c[kCardNo]) + " is not a known card"; });
  }
  const std::string_view station = deposits ? std::string_view() : c[kChannelOrStation];
  if (v.kind == TxnKind::kConsumption || (v.kind == TxnKind::kRefund && !station.empty())) {
    TxnLookupCache::Stations* stations = cache ? cache->stations : nullptr;
    const int32_t* recent = stations ? stations->Find(station) : nullptr;
    int32_t serving;
    if (recent) {
      serving = *recent;
    } else {
      serving = reg.ServingCenter(station);
      if (stations) stations->Put(station, serving);
    }
    if (serving < 0) {
      return reject(ExceptionCode::kUnknownStation,
                    [&] { return "station_id " + Quote(station) + " is not a known station or centre"; });
    }
    // A refund is attributed to its consumption's station (elder_settle.h); its own only has to exist.
    if (v.kind == TxnKind::kConsumption) v.serving_center = serving;
  }
  v.outcome = TxnVerdict::kEvent;
  return v;
}

TxnClassifier::TxnClassifier(const LedgerContext* ctx, PartitionedSpill* events, PartitionedSpill* dedup,
                             ExceptionLog* log, CountDeltas* counts)
    : ctx_(ctx),
      events_(events),
      dedup_(dedup),
      log_(log),
      counts_(counts),
      dedup_per_family_(dedup->partitions() / 2),
      event_delta_(events->partitions()),
      dedup_delta_(dedup->partitions()) {}

void TxnClassifier::AddProblemRow(const TxnFile& f, int64_t line, ExceptionCode code, std::string_view detail) {
  CountDelta& count = (*counts_)[f.file];
  ++count.read;
  ++count.rejected;
  log_->Add(code, f.file, line, {}, {}, {}, -1, detail);
}

void TxnClassifier::AddRow(const TxnFile& f, int64_t line, uint64_t locator, Cells cells) {
  using namespace txn_col;
  CountDelta& count = (*counts_)[f.file];
  ++count.read;
  if (cells.size() != f.width) {
    ++count.rejected;
    log_->Add(ExceptionCode::kBadRow, f.file, line, {}, {}, {}, -1,
              "row has " + std::to_string(cells.size()) + " columns, the header has " + std::to_string(f.width));
    return;
  }
  const size_t width = f.column_of.size();  // at most txn_col::kCount (SettlementRun::SetHeader)
  Cells c = cells.first(width);
  if (!f.columns_in_order) {
    for (size_t i = 0; i < width; ++i) canonical_[i] = cells[static_cast<size_t>(f.column_of[i])];
    c = Cells(canonical_, width);
  }
  const std::string_view txn_id = c[kTxnId];
  const std::string_view ref_cell = c[f.deposits ? kDepositRefOrService : kConsumptionRef];
  if (txn_id.size() > kMaxTxnIdBytes || ref_cell.size() > kMaxTxnIdBytes) {
    ++count.rejected;
    log_->Add(ExceptionCode::kTooLong, f.file, line, {}, {}, {}, -1, "a cell longer than 4096 bytes");
    return;
  }
  if (txn_id.empty()) {
    ++count.rejected;
    int32_t month = -1;
    if (auto instant = Instant::Parse(c[kAt])) month = YearMonth::Of(instant->LocalDate(ctx_->zone)).index();
    log_->Add(ExceptionCode::kBadRow, f.file, line, {}, c[kCardNo], {}, month, "empty txn_id");
    return;
  }
  TxnVerdict v = CheckTxnRow(*ctx_, f.deposits, c, &detail_, &lookups_);
  const uint64_t hash = IdIndex::Hash(txn_id);
  const DedupRecord d{DedupHash(hash), locator, static_cast<uint32_t>(line), f.file, static_cast<uint8_t>(v.claimable ? 1 : 0),
                      static_cast<uint8_t>(f.deposits ? 1 : 0)};
  {
    const uint32_t p = DedupPartition(hash, f.deposits, dedup_per_family_);
    char* out = dedup_.Reserve(p, kMaxEncodedDedupBytes);
    dedup_.Commit(p, EncodeDedup(d, dedup_.AtExtentStart(p), &dedup_delta_[p], out));
  }
  switch (v.outcome) {
    case TxnVerdict::kRejected:
      ++count.rejected;
      log_->Add(v.code, f.file, line, txn_id, c[kCardNo], {}, v.month, detail_, /*tentative=*/true);
      return;
    case TxnVerdict::kDeferred: ++count.deferred; return;
    case TxnVerdict::kEvent: break;
  }
  ++count.accepted;
  EventHeader h{};
  h.at_seconds = v.at.seconds;
  h.amount_fen = v.amount.fen();
  h.card = v.card;
  h.line = static_cast<uint32_t>(line);
  h.nanos_kind = static_cast<uint32_t>(v.at.nanos) | static_cast<uint32_t>(v.kind) << 30;
  h.serving_center = v.serving_center;
  h.file = f.file;
  h.service = 0;
  if (v.kind == TxnKind::kConsumption) h.service = ServiceId(c[kDepositRefOrService]);
  std::string_view ref;
  if (v.kind == TxnKind::kReversal) ref = c[kDepositRefOrService];
  if (v.kind == TxnKind::kRefund) ref = c[kConsumptionRef];
  h.id_len = static_cast<uint16_t>(txn_id.size());
  h.ref_len = static_cast<uint16_t>(ref.size());
  if (lookups_.card != v.card || !lookups_.has_card) throw std::logic_error("the card lookup cache lost its card");
  const uint32_t partition = lookups_.partition;
  char* out = events_.Reserve(partition, MaxEncodedEventBytes(txn_id.size(), ref.size()));
  events_.Commit(partition,
                 EncodeEvent(h, txn_id, ref, events_.AtExtentStart(partition), &event_delta_[partition], out));
}

uint16_t TxnClassifier::ServiceId(std::string_view service) {
  if (const uint16_t* recent = recent_services_.Find(service)) return *recent;
  const uint64_t hash = IdIndex::Hash(service);
  int32_t local = service_cache_.Find(service, hash);
  if (local < 0) {
    local = service_cache_.Insert(service, hash);
    service_ids_.push_back(ctx_->services->Intern(service));
  }
  const uint16_t id = service_ids_[static_cast<size_t>(local)];
  recent_services_.Put(service, id);
  return id;
}

void TxnClassifier::Prefetch(const TxnFile& f, Cells cells) {
  if (cells.size() != f.width || f.column_of.size() <= txn_col::kCardNo) return;
  const std::string_view card_no = cells[static_cast<size_t>(f.column_of[txn_col::kCardNo])];
  if (lookups_.card_was_next) return;  // the next card's key is beside the last one's
  if (SameId(card_no, last_prefetched_)) return;  // rows of one card come together
  last_prefetched_.assign(card_no);
  ctx_->registry->card_ids.Prefetch(IdIndex::Hash(card_no));
}

void TxnClassifier::Release() {
  events_.Release();
  dedup_.Release();
  std::vector<EventDelta>().swap(event_delta_);
  std::vector<DedupDelta>().swap(dedup_delta_);
}

void TxnClassifier::Flush() {
  events_.Flush();
  dedup_.Flush();
}

uint64_t RowArchive::Keep(Cells cells) {
  // [u32 total][u32 count][u32 length]... then the bytes.
  scratch_.clear();
  const auto count = static_cast<uint32_t>(cells.size());
  uint32_t total = 8 + 4 * count;
  for (auto c : cells) total += static_cast<uint32_t>(c.size());
  scratch_.append(reinterpret_cast<const char*>(&total), 4);
  scratch_.append(reinterpret_cast<const char*>(&count), 4);
  for (auto c : cells) {
    const auto n = static_cast<uint32_t>(c.size());
    scratch_.append(reinterpret_cast<const char*>(&n), 4);
  }
  for (auto c : cells) scratch_.append(c);
  return store_->Append(scratch_.data(), scratch_.size());
}

void RowArchive::Fetch(uint16_t, uint64_t locator, std::vector<std::string>* cells) const {
  uint32_t head[2];
  store_->Read(locator, head, sizeof head);
  std::string bytes(head[0], '\0');
  store_->Read(locator, bytes.data(), bytes.size());
  const uint32_t count = head[1];
  cells->assign(count, std::string());
  size_t at = 8 + 4 * static_cast<size_t>(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t n;
    std::memcpy(&n, bytes.data() + 8 + 4 * static_cast<size_t>(i), 4);
    (*cells)[i] = bytes.substr(at, n);
    at += n;
  }
}

}  // namespace carecard
