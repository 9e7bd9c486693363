#include "engine/txn_id_table.h"

#include <sys/mman.h>

#include <cassert>
#include <cstring>
#include <stdexcept>

namespace carecard {

TxnIdTable::TxnIdTable() : start_{0}, slots_(1024, 0) {}

uint64_t TxnIdTable::Hash(std::string_view bytes) {
  // FNV-1a, then a murmur finaliser to spread the low bits used for slots.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

int32_t TxnIdTable::Find(std::string_view key, uint64_t h) const {
  const uint64_t tag = h >> 32;
  const size_t mask = slots_.size() - 1;
  for (size_t i = static_cast<size_t>(h) & mask;; i = (i + 1) & mask) {
    const uint64_t slot = slots_[i];
    if (slot == 0) return -1;
    if ((slot >> 32) != tag) continue;
    const int32_t claim = static_cast<int32_t>((slot & 0xffffffffu) - 1);
    if (id(claim) == key) return claim;
  }
}

int32_t TxnIdTable::Insert(std::string_view key, uint64_t h, uint64_t content_hash) {
  assert(Find(key, h) == -1);
  if (static_cast<int64_t>(content_.size()) >= kMaxClaimsPerFamily) {
    throw std::length_error("more than " + std::to_string(kMaxClaimsPerFamily) + " transaction ids in one family");
  }
  if ((content_.size() + 1) * 2 > slots_.size()) Grow();
  const int32_t claim = static_cast<int32_t>(content_.size());
  bytes_.insert(bytes_.end(), key.begin(), key.end());
  start_.push_back(bytes_.size());
  content_.push_back(content_hash);
  accepted_.push_back(-1);
  Place(slots_, h, claim);
  return claim;
}

void TxnIdTable::Place(std::vector<uint64_t>& slots, uint64_t h, int32_t claim) {
  const size_t mask = slots.size() - 1;
  size_t i = static_cast<size_t>(h) & mask;
  while (slots[i] != 0) i = (i + 1) & mask;
  slots[i] = (h >> 32) << 32 | static_cast<uint64_t>(claim + 1);
}

namespace {

// Asks the kernel for huge pages under a large table: its lookups are random,
// and with 4 KiB pages nearly every one would also miss the TLB.
void AdviseHugePagesRaw(uint64_t* data, size_t count) {
  constexpr uintptr_t kHuge = 2u << 20;
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t end = begin + count * sizeof(uint64_t);
  const uintptr_t aligned_begin = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t aligned_end = end & ~(kHuge - 1);
  if (aligned_end > aligned_begin) {
    ::madvise(reinterpret_cast<void*>(aligned_begin), aligned_end - aligned_begin, MADV_HUGEPAGE);
  }
}

}  // namespace

void TxnIdTable::Reserve(size_t claims, size_t id_bytes) {
  bytes_.reserve(id_bytes);
  start_.reserve(claims + 1);
  content_.reserve(claims);
  accepted_.reserve(claims);
  size_t wanted = slots_.size();
  while (wanted < claims * 2) wanted *= 2;
  if (wanted == slots_.size()) return;
  std::vector<uint64_t> bigger;
  bigger.reserve(wanted);
  AdviseHugePagesRaw(bigger.data(), wanted);
  bigger.assign(wanted, 0);
  for (size_t claim = 0; claim < content_.size(); ++claim) {
    Place(bigger, Hash(id(static_cast<int32_t>(claim))), static_cast<int32_t>(claim));
  }
  slots_.swap(bigger);
}

void TxnIdTable::Grow() {
  std::vector<uint64_t> bigger;
  bigger.reserve(slots_.size() * 2);
  AdviseHugePagesRaw(bigger.data(), slots_.size() * 2);
  bigger.assign(slots_.size() * 2, 0);
  for (size_t claim = 0; claim < content_.size(); ++claim) {
    Place(bigger, Hash(id(static_cast<int32_t>(claim))), static_cast<int32_t>(claim));
  }
  slots_.swap(bigger);
}

}  // namespace carecard
