// IdIndex: string ids (card numbers, person ids, txn ids) to dense indices
// 0..size()-1, in the order they were first inserted.
//
// Built for millions of keys: the keys live in one byte arena (no string per
// key), and an open-addressing table of 64-bit slots (a hash tag and the
// index) finds them, so a lookup that misses almost never touches the arena.
// The table stays at most half full. At most kMaxIdIndexKeys keys and
// kMaxIdIndexBytes bytes of keys; Insert throws std::length_error beyond.
// Once lookups are over, ReleaseLookup frees the table and keeps the keys.
// Not thread-safe for writers; any number of readers once writing is done.
#ifndef CARECARD_ENGINE_ID_INDEX_H_
#define CARECARD_ENGINE_ID_INDEX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace carecard {

inline constexpr int64_t kMaxIdIndexKeys = 1'000'000'000;
inline constexpr uint64_t kMaxIdIndexBytes = 0xFFFFFFFFull;

// a == b, for the short ids of the hot paths (card numbers, stations, txn ids
// are 4..16 bytes): two overlapping word loads instead of a call to memcmp.
inline bool SameId(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  if (n >= 8 && n <= 16) {
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a.data(), 8);
    std::memcpy(&b0, b.data(), 8);
    std::memcpy(&a1, a.data() + n - 8, 8);
    std::memcpy(&b1, b.data() + n - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  if (n >= 4 && n < 8) {
    uint32_t a0, a1, b0, b1;
    std::memcpy(&a0, a.data(), 4);
    std::memcpy(&b0, b.data(), 4);
    std::memcpy(&a1, a.data() + n - 4, 4);
    std::memcpy(&b1, b.data() + n - 4, 4);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  return n == 0 || std::memcmp(a.data(), b.data(), n) == 0;
}

class IdIndex {
 public:
  IdIndex();

  // The 64-bit hash every index uses (XXH3): callers that look an id up in
  // several places hash it once.
  static uint64_t Hash(std::string_view id);

  // The index of `id`, or -1.
  int32_t Find(std::string_view id) const { return Find(id, Hash(id)); }
  int32_t Find(std::string_view id, uint64_t hash) const;
  // The index of `id` among the keys [first, first + count) (clipped to the
  // keys there are), or -1: no hash and no table slot, only keys beside each
  // other, for callers that know where an id probably is (ids are unique, so
  // a key equal to `id` is its index).
  int32_t FindAmong(std::string_view id, int64_t first, int64_t count) const {
    const int64_t end = std::min<int64_t>(first + count, static_cast<int64_t>(size()));
    for (int64_t i = std::max<int64_t>(first, 0); i < end; ++i) {
      if (SameId(key(static_cast<int32_t>(i)), id)) return static_cast<int32_t>(i);
    }
    return -1;
  }
  // The index of `id`, inserting it when new (*inserted says which).
  int32_t Insert(std::string_view id, bool* inserted = nullptr) { return Insert(id, Hash(id), inserted); }
  int32_t Insert(std::string_view id, uint64_t hash, bool* inserted = nullptr);

  std::string_view key(int32_t index) const {
    const auto i = static_cast<size_t>(index);
    return {bytes_.data() + start_[i], static_cast<size_t>(start_[i + 1] - start_[i])};
  }
  size_t size() const { return start_.size() - 1; }
  // Room for `keys` keys of `bytes` bytes in all, so that the table does not grow.
  void Reserve(size_t keys, size_t bytes);
  // Starts loading the slot `hash` probes first (for lookups known in advance).
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&slots_[static_cast<size_t>(hash) & (slots_.size() - 1)]); }
  size_t MemoryBytes() const;
  // Frees the lookup table: key() still works; Find, Insert and Reserve throw std::logic_error after it.
  void ReleaseLookup();
  bool can_look_up() const { return !slots_.empty(); }

 private:
  void Grow();
  static void Place(std::vector<uint64_t>& slots, uint64_t hash, uint32_t index);

  std::vector<char> bytes_;
  std::vector<uint32_t> start_;  // size() + 1 offsets into bytes_
  std::vector<uint64_t> slots_;  // (high 32 bits of the hash) << 32 | (index + 1); 0 = empty
};

// A small read-only map from short ids to int32 values whose slots hold their
// keys: one cache line per lookup, where IdIndex reads three that depend on
// each other (slot, key offset, key bytes). For tables looked up on every row
// that are small but not small enough to stay in cache between lookups (the
// stations: at 2,000,000 cards, 5,600 of them cost IdIndex 3 misses a
// cross-centre row). Build refuses (and the map stays empty) when a key is
// empty or longer than kMaxKeyBytes, when two keys are equal, or past
// kMaxKeys: callers keep their IdIndex for that case.
class InlineIdMap {
 public:
  static constexpr size_t kMaxKeyBytes = 23;
  static constexpr size_t kMaxKeys = size_t{1} << 18;  // a table of at most 16 MiB

  // Replaces the contents with `keys[i]` -> `values[i]`. Returns false, leaving
  // the map empty, on any key it cannot hold (see above).
  bool Build(const std::vector<std::string_view>& keys, const std::vector<int32_t>& values);
  // The value of `id`, or -1. Out of line: inlined into a row check, its loop
  // cost every row more than it saved the rows that call it.
  int32_t Find(std::string_view id) const;
  bool empty() const { return slots_.empty(); }
  size_t MemoryBytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  struct alignas(32) Slot {  // two to a cache line, never across one
    uint32_t tag = 0;        // the hash's high half
    int32_t value = -1;
    uint8_t length = 0;      // 0 = empty (keys are never empty)
    char key[kMaxKeyBytes] = {};
  };
  static_assert(sizeof(Slot) == 32);
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_ID_INDEX_H_
