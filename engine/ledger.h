// Ledger: transaction rows (deposit and consumption files) turned into
// compact records, partitioned by elder, without holding them in memory.
//
// A row goes through the checks of semantics.md §8 in two steps:
//  1. Row-local checks, as the row is read (TxnClassifier, one per thread):
//     the column count, an empty txn_id, the kind, amount and date, the
//     deferral, the card and the station. A row that passes becomes an
//     EventRecord in its elder's partition; every row with a txn_id also
//     leaves a DedupRecord in a partition by the id's hash.
//  2. Checks that need other rows: duplicate and conflicting txn_ids (dedup.h,
//     by hash partition) and references (unknown_ref, over_reversal; by elder,
//     in elder_settle.h). Their verdicts supersede step 1's where the order of
//     §8 puts them first, so a row's tentative verdict from step 1 is final
//     only once step 2 has not replaced it.
// Every row read is counted accepted, rejected or deferred exactly once, and
// the counts are adjusted whenever a verdict is replaced.
#ifndef CARECARD_ENGINE_LEDGER_H_
#define CARECARD_ENGINE_LEDGER_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/calendar.h"
#include "engine/exceptions.h"
#include "engine/id_index.h"
#include "engine/money.h"
#include "engine/registry.h"
#include "engine/spill.h"

namespace carecard {

enum class TxnKind : uint8_t { kDeposit, kReversal, kConsumption, kRefund };

// The longest txn_id or ref_txn_id the ledger keeps (the file reader rejects
// longer cells as too_long; rows fed one at a time are held to the same).
inline constexpr size_t kMaxTxnIdBytes = 4096;

// The inputs refuse the run (exit status 2): too many distinct services, a
// file too long, an input that changed while it was read.
class RefusedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Distinct service names of consumption rows, shared by a run's threads.
// Ids depend on thread timing; outputs sort by name, never by id.
inline constexpr size_t kMaxServices = 65'535;
class ServiceNames {
 public:
  // Throws RefusedError beyond kMaxServices names.
  uint16_t Intern(std::string_view name);
  std::string_view name(uint16_t id) const;
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  IdIndex names_;
};

// Row counts of one input file (the manifest's rows read/accepted/rejected/deferred).
struct FileCounts {
  std::string file;  // name without folder
  InputKind kind = InputKind::kCenters;
  int64_t read = 0, accepted = 0, rejected = 0, deferred = 0;
};
// Per-file deltas a thread accumulates; summed into FileCounts at the end.
struct CountDelta {
  int64_t read = 0, accepted = 0, rejected = 0, deferred = 0;
  CountDelta& operator+=(const CountDelta& o) {
    read += o.read, accepted += o.accepted, rejected += o.rejected, deferred += o.deferred;
    return *this;
  }
};
using CountDeltas = std::vector<CountDelta>;  // by file index

// A transaction file being read.
struct TxnFile {
  uint16_t file = 0;          // index into the run's file names
  bool deposits = true;       // deposit files, or consumption files
  std::vector<int> column_of; // canonical column -> position in the row
  size_t width = 0;           // cells in the header
  bool columns_in_order = false;  // column_of is 0, 1, 2, ...: a row's cells are used as they are
};

// The canonical columns of transaction files.
namespace txn_col {
enum : size_t {
  kTxnId, kCardNo, kKind, kAmount, kAt, kChannelOrStation, kDepositRefOrService, kConsumptionRef,
  kCount  // not a column: how many there are
};
}

// Everything a run's threads share while classifying rows.
struct LedgerContext {
  const Registry* registry = nullptr;
  UtcOffset zone;
  YearMonth last_month;          // rows dated after it are deferred
  std::vector<uint32_t> elder_partition;  // by elder
  std::vector<uint32_t> card_partition;   // by card: its elder's partition (a row's hot path reads this, not the card)
  ServiceNames* services = nullptr;
  const FileNames* files = nullptr;
};

// An accepted (so far) transaction row, as spilled: this header, then the
// txn_id and ref_txn_id bytes. 40 bytes plus the ids.
struct EventHeader {
  int64_t at_seconds;
  int64_t amount_fen;
  int32_t card;
  uint32_t line;
  uint32_t nanos_kind;  // nanoseconds | kind << 30
  int32_t serving_center;  // consumption only (a refund takes its consumption's, elder_settle.h); else -1
  uint16_t file;
  uint16_t service;  // consumption only; else 0
  uint16_t id_len;
  uint16_t ref_len;

  TxnKind kind() const { return static_cast<TxnKind>(nanos_kind >> 30); }
  int32_t nanos() const { return static_cast<int32_t>(nanos_kind & ((1u << 30) - 1)); }
  Instant at() const { return Instant{at_seconds, nanos()}; }
  size_t record_bytes() const { return sizeof(EventHeader) + id_len + ref_len; }
};
static_assert(sizeof(EventHeader) == 40);

// A view of one spilled event.
struct EventView {
  EventHeader h;
  std::string_view txn_id, ref;
  static EventView Decode(const char* record) {
    EventView v;
    std::memcpy(&v.h, record, sizeof v.h);
    v.txn_id = {record + sizeof v.h, v.h.id_len};
    v.ref = {record + sizeof v.h + v.h.id_len, v.h.ref_len};
    return v;
  }
};

// Spilled records are delta-encoded against the record before them in the
// same extent (rows of a card come together: the card, file and service
// repeat, lines and times grow by little, txn ids share their prefix) and
// common values take short forms (an amount below 655.36 yuan two bytes, a
// service among the first 256 named one): a card's next consumption row takes
// 11 bytes against 49 decoded (spill_test.cc). Decoding an extent gives
// the fixed layouts above and below back. Encoders keep one state per
// partition; an extent starts afresh (PartitionedSpill::Writer::AtExtentStart).
struct EventDelta {
  int32_t card = 0;
  uint16_t file = 0;
  uint32_t line = 0;
  int64_t at_seconds = 0;
  int32_t serving = -1;
  uint16_t service = 0;
  uint16_t txn_id_len = 0;
  char txn_id[kMaxTxnIdBytes];
  void Reset() {
    card = 0, file = 0, line = 0, at_seconds = 0, serving = -1, service = 0, txn_id_len = 0;
  }
};
// The encoded size is at most this for a record with these ids.
inline size_t MaxEncodedEventBytes(size_t id_len, size_t ref_len) { return 64 + id_len + ref_len; }
// Encodes `h` (and its ids) at `out`, relative to *prev (updated); returns the bytes written.
size_t EncodeEvent(const EventHeader& h, std::string_view txn_id, std::string_view ref, bool fresh, EventDelta* prev,
                   char* out);
// Decodes the extents of a partition into fixed-layout records (EventHeader + ids).
// Throws SpillError on malformed bytes.
void DecodeEvents(const ByteBuffer& bytes, const std::vector<uint32_t>& extents, ByteBuffer* out);

// The duplicate check compares 48 bits of an id's hash: rows whose ids share
// them are fetched again and their ids compared whole (dedup.h), so a shorter
// hash costs only a rare fetch, and saves two bytes a row of every spill.
// (Within a partition of ~30,000 rows, two ids share 48 bits about once in
// 600,000 partitions.)
inline constexpr uint64_t kDedupHashMask = (uint64_t{1} << 48) - 1;
inline uint64_t DedupHash(uint64_t id_hash) { return id_hash & kDedupHashMask; }

// Where a row with a txn_id was, for the duplicate check. 24 bytes.
struct DedupRecord {
  uint64_t hash;     // DedupHash(IdIndex::Hash(txn_id)); the codec keeps only these 48 bits
  uint64_t locator;  // finds the row again (RowFetcher)
  uint32_t line;
  uint16_t file;
  uint8_t claimable;  // passed the kind, amount and date checks: it claims its txn_id if first
  uint8_t deposits;   // family
};
static_assert(sizeof(DedupRecord) == 24);

struct DedupDelta {
  uint64_t locator = 0;
  uint32_t line = 0;
  uint16_t file = 0;
};
inline constexpr size_t kMaxEncodedDedupBytes = 40;
size_t EncodeDedup(const DedupRecord& r, bool fresh, DedupDelta* prev, char* out);
void DecodeDedup(const ByteBuffer& bytes, const std::vector<uint32_t>& extents, ByteBuffer* out);

// The dedup partition of a txn_id hash (per family).
inline uint32_t DedupPartition(uint64_t hash, bool deposits, uint32_t per_family) {
  return (deposits ? 0 : per_family) + static_cast<uint32_t>((hash >> 32) * per_family >> 32);
}

// The row-local verdict on a transaction row with a txn_id (semantics.md §8,
// from the kind check on). Pure.
struct TxnVerdict {
  enum Outcome : uint8_t { kRejected, kDeferred, kEvent };
  Outcome outcome = kRejected;
  ExceptionCode code = ExceptionCode::kBadRow;  // kRejected
  bool claimable = false;
  int32_t month = -1;  // the row's own month, when its date is valid
  TxnKind kind = TxnKind::kDeposit;
  Money amount;
  Instant at;
  int32_t card = -1;
  int32_t serving_center = -1;
};
// The last card and station looked up: files list a card's rows together, so
// most lookups are the one before (a cache per thread, not shared).
// The last N short ids looked up and what they gave, newest replacing
// oldest: compared word-wise (SameId) before any hash is taken.
template <int N, typename Value>
class RecentIds {
 public:
  const Value* Find(std::string_view id) const {
    for (int i = 0; i < size_; ++i) {
      if (SameId(ids_[i], id)) return &values_[i];
    }
    return nullptr;
  }
  void Put(std::string_view id, Value value) {
    ids_[next_].assign(id);
    values_[next_] = value;
    next_ = (next_ + 1) % N;
    size_ = std::min(size_ + 1, N);
  }

 private:
  std::string ids_[N];
  Value values_[N] = {};
  int size_ = 0, next_ = 0;
};

struct TxnLookupCache {
  TxnLookupCache() = default;
  TxnLookupCache(const TxnLookupCache&) = delete;  // `stations` points into its own lists
  TxnLookupCache& operator=(const TxnLookupCache&) = delete;
  std::string card_no;
  int32_t card = -1;
  uint32_t partition = 0;
  bool has_card = false;
  // The last change of card found the card shortly after the last one in
  // index order (Registry::CardShortlyAfter): no hash or table slot was read.
  bool card_was_next = false;
  // Serving centre by station, the last few of each home centre: a card's rows
  // name two or three stations, mostly of its own centre, and the next card is
  // usually another centre's, so one list of the last stations missed at nearly
  // every change of card, and the station table behind it misses the cache at
  // millions of cards. Centres from kStationCacheCentres on share no list.
  static constexpr int32_t kStationCacheCentres = 1 << 16;
  using Stations = RecentIds<8, int32_t>;
  std::vector<Stations> stations_by_home;
  Stations* stations = nullptr;  // the list of the card's home centre, set with the card; null past the limit
  // The list of `home`, made on first use (growing moves the lists: pointers to them are taken anew).
  Stations* StationsOf(int32_t home) {
    if (home < 0 || home >= kStationCacheCentres) return nullptr;
    const auto at = static_cast<size_t>(home);
    if (at >= stations_by_home.size()) stations_by_home.resize(at + 1);
    return &stations_by_home[at];
  }
};
// `cells` in canonical column order. The detail of a rejection is built only
// when `detail` is not null; `cache` (optional) speeds up repeated lookups.
TxnVerdict CheckTxnRow(const LedgerContext& ctx, bool deposits, Cells cells, std::string* detail,
                       TxnLookupCache* cache = nullptr);

// Turns rows into records; one per thread. Rows of one file may be split over
// several classifiers in any way: results depend only on the rows.
class TxnClassifier {
 public:
  TxnClassifier(const LedgerContext* ctx, PartitionedSpill* events, PartitionedSpill* dedup, ExceptionLog* log,
                CountDeltas* counts);

  // A row the reader could not read cleanly: rejected with `code`.
  void AddProblemRow(const TxnFile& f, int64_t line, ExceptionCode code, std::string_view detail);
  // A cleanly read row, all its cells. `locator` finds it again (RowFetcher).
  void AddRow(const TxnFile& f, int64_t line, uint64_t locator, Cells cells);
  // A hint that AddRow(f, ..., cells) comes soon: starts loading its card's
  // slot, unless cards have been coming in index order (nothing to load then).
  void Prefetch(const TxnFile& f, Cells cells);
  void Flush();
  // Flushes and frees the buffers, once the rows are all in: the classifier is spent.
  void Release();

 private:
  const LedgerContext* ctx_;
  PartitionedSpill::Writer events_;
  PartitionedSpill::Writer dedup_;
  ExceptionLog* log_;
  CountDeltas* counts_;
  std::string detail_;
  std::string_view canonical_[txn_col::kCount];  // a row's cells in canonical order, when its file has them in another
  uint32_t dedup_per_family_;
  std::vector<EventDelta> event_delta_;  // by elder partition
  std::vector<DedupDelta> dedup_delta_;  // by dedup partition
  TxnLookupCache lookups_;
  std::string last_prefetched_;
  // Local cache of service ids: most rows name one of a few services, so the
  // last few are compared first (no hash), then this thread's index of them.
  uint16_t ServiceId(std::string_view service);
  IdIndex service_cache_;
  std::vector<uint16_t> service_ids_;
  RecentIds<8, uint16_t> recent_services_;
};

// Finds a transaction row again by its locator, as its canonical cells.
class RowFetcher {
 public:
  virtual ~RowFetcher() = default;
  // Thread-safe. Throws RefusedError when the row cannot be read back as it was.
  virtual void Fetch(uint16_t file, uint64_t locator, std::vector<std::string>* canonical_cells) const = 0;
};

// Rows fed one by one (tests, the PostgreSQL store) have no file to read them
// back from: the archive keeps each row's canonical cells in a SpillStore.
class RowArchive : public RowFetcher {
 public:
  explicit RowArchive(SpillStore* store) : store_(store) {}
  uint64_t Keep(Cells canonical_cells);
  void Fetch(uint16_t file, uint64_t locator, std::vector<std::string>* canonical_cells) const override;

 private:
  SpillStore* store_;
  std::string scratch_;
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_LEDGER_H_
