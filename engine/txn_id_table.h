// TxnIdTable: the txn_ids claimed in one transaction family (deposit files
// together, consumption files together), for duplicate and reference checks.
//
// Built for tens of millions of rows: ids live in one byte arena (no string per
// row), an open-addressing table of 32-bit slots finds them, and each claim keeps
// a 64-bit hash of the row's content. The content hash only tells a duplicate
// delivery (identical cells) from a conflict (different cells); both are
// rejected, so a hash collision could at worst swap those two codes, never
// accept or drop a row. Not thread-safe.
#ifndef CARECARD_ENGINE_TXN_ID_TABLE_H_
#define CARECARD_ENGINE_TXN_ID_TABLE_H_

#include <cstdint>
#include <string_view>
#include <vector>

namespace carecard {

// Claims beyond this refuse the run rather than grow without bound.
inline constexpr int64_t kMaxClaimsPerFamily = 1'000'000'000;

class TxnIdTable {
 public:
  TxnIdTable();

  // The claim of `id`, or -1. `id_hash` is Hash(id), computed once by callers that also insert.
  int32_t Find(std::string_view id) const { return Find(id, Hash(id)); }
  int32_t Find(std::string_view id, uint64_t id_hash) const;
  // Claims `id`. REQUIRES: Find(id) == -1. Throws std::length_error past kMaxClaimsPerFamily.
  int32_t Insert(std::string_view id, uint64_t content_hash) { return Insert(id, Hash(id), content_hash); }
  int32_t Insert(std::string_view id, uint64_t id_hash, uint64_t content_hash);

  std::string_view id(int32_t claim) const {
    return {bytes_.data() + start_[static_cast<size_t>(claim)],
            static_cast<size_t>(start_[static_cast<size_t>(claim) + 1] - start_[static_cast<size_t>(claim)])};
  }
  uint64_t content_hash(int32_t claim) const { return content_[static_cast<size_t>(claim)]; }
  // The accepted transaction of a claim, or -1 when the claiming row was rejected later or deferred.
  int32_t accepted(int32_t claim) const { return accepted_[static_cast<size_t>(claim)]; }
  void set_accepted(int32_t claim, int32_t transaction) { accepted_[static_cast<size_t>(claim)] = transaction; }
  size_t size() const { return content_.size(); }
  // Starts loading the slot `id_hash` probes first: the table is far larger than
  // the caches, so callers that know upcoming ids hide most of the miss.
  void Prefetch(uint64_t id_hash) const { __builtin_prefetch(&slots_[static_cast<size_t>(id_hash) & (slots_.size() - 1)]); }
  // Room for `claims` ids of about `id_bytes` bytes in all, so that the table never rehashes.
  void Reserve(size_t claims, size_t id_bytes);

  static uint64_t Hash(std::string_view bytes);

 private:
  void Grow();
  static void Place(std::vector<uint64_t>& slots, uint64_t id_hash, int32_t claim);

  std::vector<char> bytes_;
  std::vector<uint64_t> start_;    // size() + 1 offsets into bytes_
  std::vector<uint64_t> content_;
  std::vector<int32_t> accepted_;
  // A slot holds (high 32 bits of Hash(id)) << 32 | (claim + 1); 0 = empty. The
  // tag skips almost every string compare without touching the arena.
  std::vector<uint64_t> slots_;    // size a power of two, at most half full: misses stay short
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_TXN_ID_TABLE_H_
