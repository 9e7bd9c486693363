#include "engine/id_index.h"

#include <algorithm>
#include <stdexcept>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace carecard {

IdIndex::IdIndex() : start_{0}, slots_(16, 0) {}

uint64_t IdIndex::Hash(std::string_view id) { return XXH3_64bits(id.data(), id.size()); }

int32_t IdIndex::Find(std::string_view id, uint64_t hash) const {
  if (slots_.empty()) throw std::logic_error("an id index used after its lookups were released");
  const uint64_t tag = hash >> 32;
  const size_t mask = slots_.size() - 1;
  for (size_t i = static_cast<size_t>(hash) & mask;; i = (i + 1) & mask) {
    const uint64_t slot = slots_[i];
    if (slot == 0) return -1;
    if ((slot >> 32) != tag) continue;
    const auto index = static_cast<int32_t>((slot & 0xffffffffu) - 1);
    if (SameId(key(index), id)) return index;
  }
}

void IdIndex::Place(std::vector<uint64_t>& slots, uint64_t hash, uint32_t index) {
  // (a free function of the table, so Grow and Reserve can fill a new one)
  const size_t mask = slots.size() - 1;
  size_t i = static_cast<size_t>(hash) & mask;
  while (slots[i] != 0) i = (i + 1) & mask;
  slots[i] = (hash >> 32) << 32 | (static_cast<uint64_t>(index) + 1);
}

void IdIndex::Grow() {
  std::vector<uint64_t> bigger(slots_.size() * 2, 0);
  for (size_t k = 0; k < size(); ++k) Place(bigger, Hash(key(static_cast<int32_t>(k))), static_cast<uint32_t>(k));
  slots_.swap(bigger);
}

int32_t IdIndex::Insert(std::string_view id, uint64_t hash, bool* inserted) {
  if (const int32_t found = Find(id, hash); found >= 0) {
    if (inserted) *inserted = false;
    return found;
  }
  if (static_cast<int64_t>(size()) >= kMaxIdIndexKeys) throw std::length_error("more than 1,000,000,000 distinct ids");
  if (bytes_.size() + id.size() > kMaxIdIndexBytes) throw std::length_error("more than 4 GB of distinct ids");
  if (slots_.empty()) throw std::logic_error("an id index used after its lookups were released");
  if ((size() + 1) * 2 > slots_.size()) Grow();
  const auto index = static_cast<uint32_t>(size());
  bytes_.insert(bytes_.end(), id.begin(), id.end());
  start_.push_back(static_cast<uint32_t>(bytes_.size()));
  Place(slots_, hash, index);
  if (inserted) *inserted = true;
  return static_cast<int32_t>(index);
}

void IdIndex::Reserve(size_t keys, size_t bytes) {
  if (slots_.empty()) throw std::logic_error("an id index reserved after its lookups were released");
  bytes_.reserve(std::min<size_t>(bytes, kMaxIdIndexBytes));
  start_.reserve(keys + 1);
  size_t want = slots_.size();
  while (want < keys * 2) want *= 2;
  if (want > slots_.size()) {
    std::vector<uint64_t> bigger(want, 0);
    for (size_t k = 0; k < size(); ++k) Place(bigger, Hash(key(static_cast<int32_t>(k))), static_cast<uint32_t>(k));
    slots_.swap(bigger);
  }
}

size_t IdIndex::MemoryBytes() const {
  return bytes_.capacity() + start_.capacity() * sizeof(uint32_t) + slots_.capacity() * sizeof(uint64_t);
}

void IdIndex::ReleaseLookup() {
  std::vector<uint64_t>().swap(slots_);
  bytes_.shrink_to_fit();
  start_.shrink_to_fit();
}

bool InlineIdMap::Build(const std::vector<std::string_view>& keys, const std::vector<int32_t>& values) {
  slots_.clear();
  mask_ = 0;
  if (keys.size() != values.size() || keys.size() > kMaxKeys) return false;
  size_t capacity = 16;
  while (capacity < 2 * keys.size()) capacity *= 2;  // at most half full
  std::vector<Slot> slots(capacity);
  const size_t mask = capacity - 1;
  for (size_t k = 0; k < keys.size(); ++k) {
    const std::string_view key = keys[k];
    if (key.empty() || key.size() > kMaxKeyBytes) return false;
    const uint64_t hash = IdIndex::Hash(key);
    size_t i = static_cast<size_t>(hash) & mask;
    for (; slots[i].length != 0; i = (i + 1) & mask) {
      if (std::string_view(slots[i].key, slots[i].length) == key) return false;  // a key twice: which value?
    }
    slots[i].tag = static_cast<uint32_t>(hash >> 32);
    slots[i].value = values[k];
    slots[i].length = static_cast<uint8_t>(key.size());
    std::memcpy(slots[i].key, key.data(), key.size());
  }
  slots_ = std::move(slots);
  mask_ = mask;
  return true;
}

int32_t InlineIdMap::Find(std::string_view id) const {
  if (slots_.empty() || id.empty() || id.size() > kMaxKeyBytes) return -1;
  const uint64_t hash = IdIndex::Hash(id);
  const auto tag = static_cast<uint32_t>(hash >> 32);
  for (size_t i = static_cast<size_t>(hash) & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.length == 0) return -1;
    if (slot.tag == tag && SameId(std::string_view(slot.key, slot.length), id)) return slot.value;
  }
}

}  // namespace carecard
