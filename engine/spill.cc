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
  const auto* src = static_cast<const char*>(data);
  while (n > 0) {
    const size_t in_block = static_cast<size_t>(size_ % kBlockBytes);
    if (in_block == 0 && size_ / kBlockBytes == blocks_.size()) blocks_.push_back(std::unique_ptr<char[]>(new char[kBlockBytes]));
    const size_t take = std::min(n, kBlockBytes - in_block);
    std::memcpy(blocks_[static_cast<size_t>(size_ / kBlockBytes)].get() + in_block, src, take);
    src += take;
    n -= take;
    size_ += take;
  }
  return offset;
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

PartitionedSpill::PartitionedSpill(SpillStore* store, uint32_t partitions, size_t buffer_bytes)
    : store_(store), partitions_(partitions), buffer_bytes_(buffer_bytes), extents_(partitions), bytes_(partitions, 0) {
  assert(partitions >= 1 && buffer_bytes > 0);
}

void PartitionedSpill::AddExtent(uint32_t partition, const char* data, size_t n) {
  const uint64_t offset = store_->Append(data, n);
  std::lock_guard<std::mutex> lock(mutex_);
  extents_[partition].push_back(Extent{offset, static_cast<uint32_t>(n)});
  bytes_[partition] += n;
}

void PartitionedSpill::ReadPartition(uint32_t partition, ByteBuffer* out, std::vector<uint32_t>* sizes) const {
  std::vector<Extent> extents;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    extents = extents_[partition];
    out->resize(static_cast<size_t>(bytes_[partition]));
  }
  if (sizes) {
    sizes->clear();
    for (const Extent& e : extents) sizes->push_back(e.bytes);
  }
  size_t at = 0;
  for (const Extent& e : extents) {
    store_->Read(e.offset, out->data() + at, e.bytes);
    at += e.bytes;
  }
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
  if (partition >= used_.size() || n > spill_->buffer_bytes_) throw std::logic_error("a spill record larger than its buffer");
  if (!buffers_[partition]) buffers_[partition].reset(new char[spill_->buffer_bytes_]);
  if (used_[partition] + n > spill_->buffer_bytes_) FlushPartition(partition);
  return buffers_[partition].get() + used_[partition];
}

void PartitionedSpill::Writer::Append(uint32_t partition, const void* data, size_t n) {
  std::memcpy(Reserve(partition, n), data, n);
  Commit(partition, n);
}

void PartitionedSpill::Writer::FlushPartition(uint32_t partition) {
  if (used_[partition] == 0) return;
  spill_->AddExtent(partition, buffers_[partition].get(), used_[partition]);
  used_[partition] = 0;
}

void PartitionedSpill::Writer::Release() {
  Flush();
  for (auto& b : buffers_) b.reset();
}

void PartitionedSpill::Writer::Flush() {
  for (uint32_t p = 0; p < used_.size(); ++p) FlushPartition(p);
}

}  // namespace carecard
