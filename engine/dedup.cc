#include "engine/dedup.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

namespace carecard {
namespace {

std::string Quote(std::string_view v) { return "'" + std::string(v) + "'"; }

}  // namespace

void ResolveDuplicates(const LedgerContext& ctx, const RowFetcher& fetcher, const ByteBuffer& bytes,
                       std::vector<uint64_t>* scratch, ExceptionLog* log, DedupOutcome* out) {
  const size_t n = bytes.size() / sizeof(DedupRecord);
  auto hash_of = [&](size_t i) {
    uint64_t h;
    std::memcpy(&h, bytes.data() + i * sizeof(DedupRecord) + offsetof(DedupRecord, hash), sizeof h);
    return h;
  };
  // One pass through a table at most half full finds the hashes seen twice;
  // almost always there are none, and nothing more is done.
  size_t slots = 16;
  while (slots < 2 * n) slots *= 2;
  std::vector<uint64_t>& table = *scratch;
  table.assign(slots, 0);
  const size_t mask = slots - 1;
  std::vector<uint64_t> repeated;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t h = hash_of(i) | 1;  // 0 marks an empty slot
    for (size_t at = static_cast<size_t>(h >> 7) & mask;; at = (at + 1) & mask) {
      if (table[at] == 0) {
        table[at] = h;
        break;
      }
      if (table[at] == h) {
        repeated.push_back(h);
        break;
      }
    }
  }
  if (repeated.empty()) return;
  std::sort(repeated.begin(), repeated.end());
  repeated.erase(std::unique(repeated.begin(), repeated.end()), repeated.end());
  std::vector<DedupRecord> records;
  for (size_t i = 0; i < n; ++i) {
    if (!std::binary_search(repeated.begin(), repeated.end(), hash_of(i) | 1)) continue;
    DedupRecord r;
    std::memcpy(&r, bytes.data() + i * sizeof(DedupRecord), sizeof r);
    records.push_back(r);
  }
  auto row_order = [](const DedupRecord& a, const DedupRecord& b) {
    if (a.hash != b.hash) return a.hash < b.hash;
    if (a.file != b.file) return a.file < b.file;  // files are numbered in reading order
    return a.line < b.line;
  };
  std::sort(records.begin(), records.end(), row_order);
  std::vector<std::string> cells;
  std::vector<std::pair<std::string, std::vector<std::string>>> claimers;  // txn_id -> claimer's cells, per hash run
  for (size_t i = 0; i < records.size();) {
    size_t j = i + 1;
    while (j < records.size() && records[j].hash == records[i].hash) ++j;
    if (j - i == 1) {  // shares only the low bit with another hash
      i = j;
      continue;
    }
    // Rows sharing a hash: usually one id delivered more than once, rarely ids that collide.
    claimers.clear();
    for (size_t k = i; k < j; ++k) {
      const DedupRecord& r = records[k];
      fetcher.Fetch(r.file, r.locator, &cells);
      if (cells.empty() || DedupHash(IdIndex::Hash(cells[txn_col::kTxnId])) != r.hash) {
        throw RefusedError("the row at " + (*ctx.files)[r.file] + " line " + std::to_string(r.line) +
                           " reads differently now than when it was read: did an input file change during the run?");
      }
      const std::string& txn_id = cells[txn_col::kTxnId];
      auto it = std::find_if(claimers.begin(), claimers.end(), [&](const auto& c) { return c.first == txn_id; });
      if (it == claimers.end()) {
        if (r.claimable) claimers.emplace_back(txn_id, cells);
        continue;
      }
      // A later row with a claimed id: rejected, whatever its own verdict was.
      std::vector<std::string_view> views(cells.begin(), cells.end());
      const TxnVerdict verdict = CheckTxnRow(ctx, r.deposits != 0, Cells(views), nullptr);
      const bool same = it->second == cells;
      log->Add(same ? ExceptionCode::kDuplicateTxn : ExceptionCode::kConflictingTxn, r.file, r.line, txn_id,
               cells[txn_col::kCardNo], {}, verdict.month,
               same ? "txn_id " + Quote(txn_id) + " delivered again with identical content"
                    : "txn_id " + Quote(txn_id) + " seen before with different content");
      if (static_cast<bool>(verdict.claimable) != static_cast<bool>(r.claimable)) {
        throw RefusedError("the row at " + (*ctx.files)[r.file] + " line " + std::to_string(r.line) +
                           " reads differently now than when it was read: did an input file change during the run?");
      }
      CountDelta& count = out->counts[r.file];
      switch (verdict.outcome) {
        case TxnVerdict::kRejected:
          out->superseded.emplace_back(RowKey(r.file, r.line), verdict.code);
          break;
        case TxnVerdict::kDeferred:
          --count.deferred;
          ++count.rejected;
          break;
        case TxnVerdict::kEvent: {
          const int32_t elder = ctx.registry->cards[static_cast<size_t>(verdict.card)].elder;
          out->rejected_events[ctx.elder_partition[static_cast<size_t>(elder)]].push_back(RowKey(r.file, r.line));
          --count.accepted;
          ++count.rejected;
          break;
        }
      }
    }
    i = j;
  }
}

}  // namespace carecard
