#include "engine/spill.h"

#include <cassert>
#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace carecard {

void ByteBuffer::Grow(size_t n) {
  const size_t capacity = std::max(n, capacity_ + capacity_ / 2);
  std::unique_ptr<char[]> bigger(new char[capacity]);
  if (size_ > 0) std::memcpy(bigger.get(), bytes_.get(), size_);
  bytes_ = std::move(bigger);
  capacity_ = capacity;
}

uint64_t MemorySpillStore::Append(const void* data, size_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t offset = size_;
  AppendLocked(static_cast<const char*>(data), n);
  return offset;
}

uint64_t MemorySpillStore::AppendAll(std::span<const SpillPiece> pieces) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t offset = size_;
  for (const SpillPiece& piece : pieces) AppendLocked(piece.data, piece.size);
  return offset;
}

void MemorySpillStore::AppendLocked(const char* src, size_t n) {
  while (n > 0) {
    const size_t in_block = static_cast<size_t>(size_ % kBlockBytes);
    if (in_block == 0 && size_ / kBlockBytes == blocks_.size()) blocks_.push_back(std::unique_ptr<char[]>(new char[kBlockBytes]));
    const size_t take = std::min(n, kBlockBytes - in_block);
    std::memcpy(blocks_[static_cast<size_t>(size_ / kBlockBytes)].get() + in_block, src, take);
    src += take;
    n -= take;
    size_ += take;
  }
}

void MemorySpillStore::Read(uint64_t offset, void* out, size_t n) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (offset + n > size_) throw SpillError("read past the end of the in-memory spill");
  auto* dst = static_cast<char*>(out);
  while (n > 0) {
    const size_t in_block = static_cast<size_t>(offset % kBlockBytes);
    const size_t take = std::min(n, kBlockBytes - in_block);
    std::memcpy(dst, blocks_[static_cast<size_t>(offset / kBlockBytes)].get() + in_block, take);
    dst += take;
    n -= take;
    offset += take;
  }
}

uint64_t MemorySpillStore::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return size_;
}

std::unique_ptr<SpillStore> MemorySpillStore::NewStore() const { return std::make_unique<MemorySpillStore>(); }

uint64_t MemorySpillStore::HeldBytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<uint64_t>(blocks_.size()) * kBlockBytes;
}

void MemorySpillStore::Discard() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::unique_ptr<char[]>>().swap(blocks_);
  size_ = 0;
}

namespace {
// Calls run(offset, bytes) once for each maximal run of extents, in their
// order, in which each extent begins where the one before it ends.
template <typename Extents, typename Run>
void ForEachRunEndToEnd(const Extents& extents, Run run) {
  for (size_t i = 0; i < extents.size();) {
    const uint64_t begin = extents[i].offset;
    uint64_t end = begin + extents[i].bytes;
    for (++i; i < extents.size() && extents[i].offset == end; ++i) end += extents[i].bytes;
    if (end > begin) run(begin, end - begin);
  }
}
}  // namespace

PartitionedSpill::PartitionedSpill(SpillStore* store, uint32_t partitions, size_t buffer_bytes)
    : store_(store), partitions_(partitions), buffer_bytes_(buffer_bytes), extents_(partitions), bytes_(partitions, 0) {
  assert(partitions >= 1 && buffer_bytes > 0);
}

void PartitionedSpill::ReadPartition(uint32_t partition, ByteBuffer* out, std::vector<uint32_t>* sizes) const {
  std::vector<Extent> extents;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (discarded_) throw std::logic_error("a spilled partition read after its records were discarded");
    extents = extents_[partition];
    out->resize(static_cast<size_t>(bytes_[partition]));
  }
  if (sizes) sizes->clear();
  uint64_t sum = 0;
  for (const Extent& e : extents) {
    sum += e.bytes;
    if (sizes) sizes->push_back(e.bytes);
  }
  if (sum != out->size()) throw std::logic_error("a spilled partition's extents do not add up to its bytes");
  size_t at = 0;
  ForEachRunEndToEnd(extents, [&](uint64_t offset, uint64_t bytes) {
    store_->Read(offset, out->data() + at, static_cast<size_t>(bytes));
    at += static_cast<size_t>(bytes);
  });
}

uint64_t PartitionedSpill::PartitionBytes(uint32_t partition) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_[partition];
}

uint64_t PartitionedSpill::TotalBytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t total = 0;
  for (uint64_t b : bytes_) total += b;
  return total;
}

void PartitionedSpill::Discard() {
  std::lock_guard<std::mutex> lock(mutex_);
  // Void first: if the store fails halfway, no extent is left naming bytes it gave back.
  for (auto& e : extents_) std::vector<Extent>().swap(e);
  discarded_ = true;
  store_->Discard();
}

void PartitionedSpill::Forget() {
  std::vector<Extent> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t count = 0;
    for (const auto& e : extents_) count += e.size();
    all.reserve(count);
    for (auto& e : extents_) {
      all.insert(all.end(), e.begin(), e.end());
      std::vector<Extent>().swap(e);
    }
    discarded_ = true;
  }
  // A writer's batch is one append of many extents end to end: one range each,
  // so that the pages shared by neighbouring extents are given back too.
  std::sort(all.begin(), all.end(), [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  // Forgetting is the one spill operation that destroys bytes: extents that
  // overlapped would take other records' bytes along, so none is forgotten then.
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].offset < all[i - 1].offset + all[i - 1].bytes) throw std::logic_error("two extents of a spill overlap");
  }
  ForEachRunEndToEnd(all, [&](uint64_t offset, uint64_t bytes) { store_->Forget(offset, bytes); });
}

bool PartitionedSpill::discarded() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return discarded_;
}

PartitionedSpill::Writer::Writer(PartitionedSpill* spill)
    : spill_(spill), buffer_bytes_(spill->buffer_bytes_), buffers_(spill->partitions_), used_(spill->partitions_, 0) {}

PartitionedSpill::Writer::~Writer() {
  // A writer destroyed by an exception must not throw again.
  try {
    Flush();
  } catch (...) {
  }
}

char* PartitionedSpill::Writer::ReserveSlow(uint32_t partition, size_t n) {
  if (partition >= used_.size() || n > buffer_bytes_) throw std::logic_error("a spill record larger than its buffer");
  if (used_[partition] + n > buffer_bytes_) {
    Stage(partition);
    if (staged_bytes_ >= kBatchBytes) AppendStaged();
  }
  if (!buffers_[partition]) {
    if (!spare_.empty()) {
      buffers_[partition] = std::move(spare_.back());
      spare_.pop_back();
    } else {
      buffers_[partition].reset(new char[buffer_bytes_]);
    }
  }
  return buffers_[partition].get() + used_[partition];
}

void PartitionedSpill::Writer::Append(uint32_t partition, const void* data, size_t n) {
  std::memcpy(Reserve(partition, n), data, n);
  Commit(partition, n);
}

void PartitionedSpill::Writer::Stage(uint32_t partition) {
  if (used_[partition] == 0) return;
  staged_bytes_ += used_[partition];
  staged_.push_back(Staged{partition, used_[partition], std::move(buffers_[partition])});
  used_[partition] = 0;
}

void PartitionedSpill::Writer::AppendStaged() {
  if (staged_.empty()) return;
  if (spill_->discarded()) {  // refused before they are written: they would fill the store given back
    staged_.clear();
    staged_bytes_ = 0;
    throw std::logic_error("records spilled after their partitions were discarded");
  }
  pieces_.clear();
  for (const Staged& s : staged_) pieces_.push_back(SpillPiece{s.buffer.get(), s.bytes});
  uint64_t offset = spill_->store_->AppendAll(pieces_);
  {
    std::lock_guard<std::mutex> lock(spill_->mutex_);
    for (const Staged& s : staged_) {
      spill_->extents_[s.partition].push_back(Extent{offset, static_cast<uint32_t>(s.bytes)});
      spill_->bytes_[s.partition] += s.bytes;
      offset += s.bytes;
    }
  }
  for (Staged& s : staged_) spare_.push_back(std::move(s.buffer));
  staged_.clear();
  staged_bytes_ = 0;
}

void PartitionedSpill::Writer::Release() {
  Flush();
  for (auto& b : buffers_) b.reset();
  spare_.clear();
  spare_.shrink_to_fit();
  staged_.shrink_to_fit();
}

void PartitionedSpill::Writer::Flush() {
  for (uint32_t p = 0; p < used_.size(); ++p) Stage(p);
  AppendStaged();
}

}  // namespace carecard
