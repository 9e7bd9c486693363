#include "engine/exceptions.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <memory>
#include <queue>
#include <stdexcept>
#include <tuple>

namespace carecard {
namespace {

constexpr const char* kCodeNames[kExceptionCodeCount] = {
    "bad_amount",     "bad_credit_code",         "bad_date",
    "bad_encoding",   "bad_id_number",           "bad_row",
    "balance_mismatch", "conflicting_txn",       "cross_center_consumption",
    "deposit_after_death", "deposit_on_inactive_card", "duplicate_card",
    "duplicate_id",   "duplicate_person",        "duplicate_txn",
    "over_reversal",  "overdraft",               "too_long",
    "unknown_card",   "unknown_center",          "unknown_flag",
    "unknown_person", "unknown_ref",             "unknown_station",
};

// An encoded exception: this header, then txn_id, card_no, person_id, detail.
struct Header {
  uint32_t size;  // of the whole record
  uint8_t code;
  uint8_t tentative;
  uint16_t file;
  int32_t month;
  uint32_t lengths[4];
  uint64_t line;
};
static_assert(sizeof(Header) == 40);

struct Decoded {
  Header h;
  const char* text;  // the four strings, back to back
  std::string_view field(int i) const {
    size_t at = 0;
    for (int k = 0; k < i; ++k) at += h.lengths[k];
    return {text + at, h.lengths[i]};
  }
};

Decoded Decode(const char* record) {
  Decoded d;
  std::memcpy(&d.h, record, sizeof(Header));
  d.text = record + sizeof(Header);
  return d;
}

// formats.md order on encoded records. Strings compare as bytes, like std::string.
bool RecordLess(const FileNames& files, const char* a_bytes, const char* b_bytes) {
  const Decoded a = Decode(a_bytes);
  const Decoded b = Decode(b_bytes);
  if (a.h.code != b.h.code) return a.h.code < b.h.code;
  if (a.h.file != b.h.file) {
    const int c = files[a.h.file].compare(files[b.h.file]);
    if (c != 0) return c < 0;
  }
  if (a.h.line != b.h.line) return a.h.line < b.h.line;
  const std::string_view ac = a.field(1), bc = b.field(1);
  if (ac != bc) return ac < bc;
  if (a.h.month != b.h.month) return a.h.month < b.h.month;
  for (int f : {0, 2, 3}) {
    const std::string_view x = a.field(f), y = b.field(f);
    if (x != y) return x < y;
  }
  return false;
}

ExceptionView ViewOf(const char* record) {
  const Decoded d = Decode(record);
  ExceptionView v;
  v.code = static_cast<ExceptionCode>(d.h.code);
  v.file = d.h.file;
  v.line = static_cast<int64_t>(d.h.line);
  v.month = d.h.month;
  v.txn_id = d.field(0);
  v.card_no = d.field(1);
  v.person_id = d.field(2);
  v.detail = d.field(3);
  return v;
}

// Reads one sorted run back, record by record, through a bounded buffer.
class RunCursor {
 public:
  // A run in a spill store, as extents that each hold whole records.
  RunCursor(const SpillStore* spill, std::vector<std::pair<uint64_t, uint64_t>> extents)
      : spill_(spill), extents_(std::move(extents)) {
    // An eighth of the run, within [4 KiB, 256 KiB] and never more than the
    // run: merging many small runs costs an eighth of their bytes, not 256 KiB
    // each. (Ensure grows it for a record that does not fit.)
    uint64_t run_bytes = 0;
    for (const auto& e : extents_) run_bytes += e.second;
    buffer_.resize(static_cast<size_t>(
        std::min<uint64_t>(run_bytes, std::clamp<uint64_t>(run_bytes / 8, kMinBufferBytes, kBufferBytes))));
    if (!extents_.empty()) {
      next_ = extents_[0].first;
      end_ = next_ + extents_[0].second;
    }
  }
  // A run in memory: records at `starts` (sorted) in `bytes`.
  RunCursor(const std::vector<char>* bytes, const std::vector<uint64_t>* starts) : memory_(bytes), starts_(starts) {}

  // The current record, or nullptr at the end.
  const char* Current() {
    if (memory_) return index_ < starts_->size() ? memory_->data() + (*starts_)[index_] : nullptr;
    for (;;) {
      if (Ensure(sizeof(uint32_t))) break;
      if (filled_ != at_) throw SpillError("a spilled run of exceptions ends inside a record");
      if (++extent_ >= extents_.size()) return nullptr;
      next_ = extents_[extent_].first;
      end_ = next_ + extents_[extent_].second;
    }
    uint32_t size;
    std::memcpy(&size, buffer_.data() + at_, sizeof size);
    if (!Ensure(size)) throw SpillError("a spilled run of exceptions ends inside a record");
    return buffer_.data() + at_;
  }
  void Advance() {
    if (memory_) {
      ++index_;
      return;
    }
    uint32_t size;
    std::memcpy(&size, buffer_.data() + at_, sizeof size);
    at_ += size;
  }

 private:
  static constexpr size_t kBufferBytes = 256 * 1024;
  static constexpr size_t kMinBufferBytes = 4 * 1024;
  // At least `n` bytes from at_ are in the buffer; false when the extent has no more.
  bool Ensure(size_t n) {
    if (filled_ - at_ >= n) return true;
    std::memmove(buffer_.data(), buffer_.data() + at_, filled_ - at_);
    filled_ -= at_;
    at_ = 0;
    if (buffer_.size() < n) buffer_.resize(n);
    const size_t take = static_cast<size_t>(std::min<uint64_t>(buffer_.size() - filled_, end_ - next_));
    if (take > 0) spill_->Read(next_, buffer_.data() + filled_, take);
    next_ += take;
    filled_ += take;
    return filled_ - at_ >= n;
  }

  const SpillStore* spill_ = nullptr;
  std::vector<std::pair<uint64_t, uint64_t>> extents_;
  size_t extent_ = 0;
  uint64_t next_ = 0, end_ = 0;
  std::vector<char> buffer_;
  size_t at_ = 0, filled_ = 0;
  const std::vector<char>* memory_ = nullptr;
  const std::vector<uint64_t>* starts_ = nullptr;
  size_t index_ = 0;
};

}  // namespace

const char* SeverityName(Severity s) { return s == Severity::kError ? "error" : "warning"; }

const char* ExceptionCodeName(ExceptionCode code) { return kCodeNames[static_cast<int>(code)]; }

std::optional<ExceptionCode> ExceptionCodeFromName(std::string_view name) {
  for (int i = 0; i < kExceptionCodeCount; ++i) {
    if (name == kCodeNames[i]) return static_cast<ExceptionCode>(i);
  }
  return std::nullopt;
}

Severity SeverityOf(ExceptionCode code) {
  switch (code) {
    case ExceptionCode::kOverdraft:
    case ExceptionCode::kCrossCenterConsumption:
    case ExceptionCode::kDepositAfterDeath:
    case ExceptionCode::kDepositOnInactiveCard:
    case ExceptionCode::kBalanceMismatch:
    case ExceptionCode::kDuplicatePerson:
    case ExceptionCode::kUnknownFlag: return Severity::kWarning;
    default: return Severity::kError;
  }
}

bool ExceptionLess(const ExceptionRecord& a, const ExceptionRecord& b) {
  return std::tie(a.code, a.file, a.line, a.card_no, a.month, a.txn_id, a.person_id, a.detail) <
         std::tie(b.code, b.file, b.line, b.card_no, b.month, b.txn_id, b.person_id, b.detail);
}

ExceptionLog::ExceptionLog(const FileNames* files, SpillStore* spill, size_t budget_bytes)
    : files_(files), spill_(spill), budget_(budget_bytes) {}
ExceptionLog::ExceptionLog(ExceptionLog&&) noexcept = default;
ExceptionLog& ExceptionLog::operator=(ExceptionLog&&) noexcept = default;
ExceptionLog::~ExceptionLog() = default;

void ExceptionLog::Add(ExceptionCode code, uint16_t file, int64_t line, std::string_view txn_id, std::string_view card_no,
                       std::string_view person_id, int32_t month, std::string_view detail, bool tentative) {
  Header h{};
  const std::string_view fields[4] = {txn_id, card_no, person_id, detail};
  size_t size = sizeof(Header);
  for (int i = 0; i < 4; ++i) {
    h.lengths[i] = static_cast<uint32_t>(fields[i].size());
    size += fields[i].size();
  }
  if (size > UINT32_MAX / 2) throw std::length_error("an exception record of more than 2 GB");
  h.size = static_cast<uint32_t>(size);
  h.code = static_cast<uint8_t>(code);
  h.tentative = tentative ? 1 : 0;
  h.file = file;
  h.month = month;
  h.line = static_cast<uint64_t>(line);
  const size_t at = buffer_.size();
  buffer_.resize(at + size);
  char* out = buffer_.data() + at;
  std::memcpy(out, &h, sizeof h);
  out += sizeof h;
  for (const auto& f : fields) {
    if (!f.empty()) std::memcpy(out, f.data(), f.size());
    out += f.size();
  }
  offsets_.push_back(at);
  ++count_;
  ++by_code_[static_cast<size_t>(code)];
  if (spill_ && buffer_.size() + offsets_.size() * sizeof(uint64_t) > budget_) SpillRun();
}

void ExceptionLog::SortBuffer() {
  const FileNames& files = *files_;
  const char* base = buffer_.data();
  std::sort(offsets_.begin(), offsets_.end(),
            [&](uint64_t a, uint64_t b) { return RecordLess(files, base + a, base + b); });
}

void ExceptionLog::SpillRun() {
  if (offsets_.empty()) return;
  SortBuffer();
  // Written in sorted order, in pieces of bounded size that hold whole records.
  std::vector<char> out;
  out.reserve(1 << 20);
  Run run;
  auto flush = [&] {
    if (out.empty()) return;
    run.push_back(Extent{spill_->Append(out.data(), out.size()), out.size()});
    out.clear();
  };
  for (uint64_t offset : offsets_) {
    uint32_t size;
    std::memcpy(&size, buffer_.data() + offset, sizeof size);
    out.insert(out.end(), buffer_.data() + offset, buffer_.data() + offset + size);
    if (out.size() >= (1 << 20)) flush();
  }
  flush();
  runs_.push_back(std::move(run));
  buffer_.clear();  // capacity kept: the next run fills it again
  offsets_.clear();
}

ExceptionSet::ExceptionSet(const FileNames* files, SpillStore* spill) : files_(files), spill_(spill) {}

void ExceptionSet::Absorb(ExceptionLog&& log) {
  if (!log.runs_.empty() && log.spill_ != spill_) throw std::logic_error("an exception log spilled into another store");
  for (int i = 0; i < kExceptionCodeCount; ++i) by_code_[static_cast<size_t>(i)] += log.by_code_[static_cast<size_t>(i)];
  log.SortBuffer();
  logs_.push_back(std::move(log));
}

void ExceptionSet::Supersede(uint64_t row_key, ExceptionCode code) {
  superseded_.push_back(row_key);
  --by_code_[static_cast<size_t>(code)];
}

void ExceptionSet::Seal() { std::sort(superseded_.begin(), superseded_.end()); }

int64_t ExceptionSet::size() const {
  int64_t n = 0;
  for (int64_t c : by_code_) n += c;
  return n;
}

void ExceptionSet::ForEach(const std::function<void(const ExceptionView&)>& fn) const {
  std::vector<std::unique_ptr<RunCursor>> cursors;
  for (const ExceptionLog& log : logs_) {
    for (const auto& run : log.runs_) {
      std::vector<std::pair<uint64_t, uint64_t>> extents;
      for (const auto& e : run) extents.emplace_back(e.offset, e.bytes);
      cursors.push_back(std::make_unique<RunCursor>(spill_, std::move(extents)));
    }
    if (!log.offsets_.empty()) cursors.push_back(std::make_unique<RunCursor>(&log.buffer_, &log.offsets_));
  }
  const FileNames& files = *files_;
  auto greater = [&](RunCursor* a, RunCursor* b) { return RecordLess(files, b->Current(), a->Current()); };
  std::priority_queue<RunCursor*, std::vector<RunCursor*>, decltype(greater)> heap(greater);
  for (auto& c : cursors) {
    if (c->Current()) heap.push(c.get());
  }
  while (!heap.empty()) {
    RunCursor* c = heap.top();
    heap.pop();
    const char* record = c->Current();
    const Decoded d = Decode(record);
    const bool skip = d.h.tentative &&
                      std::binary_search(superseded_.begin(), superseded_.end(), RowKey(d.h.file, static_cast<int64_t>(d.h.line)));
    if (!skip) fn(ViewOf(record));
    c->Advance();
    if (c->Current()) heap.push(c);
  }
}

std::vector<ExceptionRecord> ExceptionSet::Records() const {
  std::vector<ExceptionRecord> out;
  ForEach([&](const ExceptionView& v) {
    out.push_back(ExceptionRecord{ExceptionCodeName(v.code), v.severity(), (*files_)[v.file], v.line,
                                  std::string(v.txn_id), std::string(v.card_no), std::string(v.person_id),
                                  v.month >= 0 ? YearMonth::FromIndex(v.month).ToString() : std::string(),
                                  std::string(v.detail)});
  });
  return out;
}

}  // namespace carecard
