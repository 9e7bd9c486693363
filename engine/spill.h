// Spill: where a run keeps what does not fit its memory budget.
//
// A settlement reads every transaction of the history, but holds in memory only
// the registry and the card-months: rows go to a SpillStore as compact records,
// partitioned by elder (and txn ids by hash), and come back one partition at a
// time. The engine does no I/O itself: it writes through this interface;
// MemorySpillStore keeps the bytes in memory (tests, small runs), and
// adapters/spill_file.h keeps them in an unnamed temporary file.
//
// Determinism: what a partition reads back is the multiset of records written
// to it; the order of its extents depends on thread timing, so every reader
// sorts by a unique key before using them.
#ifndef CARECARD_ENGINE_SPILL_H_
#define CARECARD_ENGINE_SPILL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <vector>

namespace carecard {

// A spill write or read failed (disk full, I/O error): the run is refused.
class SpillError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bytes that grow without being zeroed first (they are always written before
// they are read), and keep their capacity, so a worker reuses one buffer for
// every partition instead of faulting in fresh pages each time.
class ByteBuffer {
 public:
  char* data() { return bytes_.get(); }
  const char* data() const { return bytes_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Contents up to min(size(), n) are kept.
  void resize(size_t n) {
    if (n > capacity_) Grow(n);
    size_ = n;
  }
  void clear() { size_ = 0; }

 private:
  void Grow(size_t n);
  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Bytes to append, one of several laid end to end (SpillStore::AppendAll).
struct SpillPiece {
  const char* data;
  size_t size;
};

class SpillStore {
 public:
  virtual ~SpillStore() = default;
  // Appends `n` bytes and returns the offset they start at. Thread-safe.
  // An offset is a place, not a count: a store may keep several files and
  // name the file in the offset's top bits (FileSpillStore).
  virtual uint64_t Append(const void* data, size_t n) = 0;
  // Appends the pieces end to end, as one write (no other append falls
  // between them), and returns the offset the first starts at. Thread-safe.
  virtual uint64_t AppendAll(std::span<const SpillPiece> pieces) = 0;
  // Reads `n` bytes at `offset`. REQUIRES: they lie within what earlier
  // appends wrote end to end (one append, or several each of which began at
  // the offset where the one before ended). Thread-safe.
  virtual void Read(uint64_t offset, void* out, size_t n) const = 0;
  // Bytes appended so far.
  virtual uint64_t size() const = 0;
  // A new, empty store of the same kind in the same place. A run keeps the
  // records that die early (the events) in a store of their own, so that it
  // can Discard them while its exceptions live on. Throws SpillError.
  virtual std::unique_ptr<SpillStore> NewStore() const = 0;
  // Gives back, now, the memory or disk of every byte appended: on a machine
  // that hands freed pages back to its host, the next phase's first touches
  // then reuse pages still in the guest instead of faulting in new ones (a
  // 2,000,000-card run frees ~0.6 GB of events before writing ~0.7 GB of
  // files). The offsets handed out before are void; appends start again. Not
  // concurrent with any other call. Throws SpillError.
  virtual void Discard() = 0;
  // The bytes [offset, offset + n), laid down by earlier appends, will not be
  // read again, while the rest of the store lives on: a store may give back
  // the memory or disk of the whole pages among them now, so that the next
  // phase's first touches reuse them (see Discard). A hint, never a failure:
  // a store that cannot (MemorySpillStore, whose blocks mix records of
  // several owners; a file system without hole punching) keeps them. Reading
  // forgotten bytes gives unspecified bytes. Not concurrent with any other call.
  virtual void Forget(uint64_t offset, uint64_t n) {
    (void)offset;
    (void)n;
  }
};

// Keeps the bytes in memory, in blocks (no reallocation of what was written).
class MemorySpillStore : public SpillStore {
 public:
  uint64_t Append(const void* data, size_t n) override;
  uint64_t AppendAll(std::span<const SpillPiece> pieces) override;
  void Read(uint64_t offset, void* out, size_t n) const override;
  uint64_t size() const override;
  std::unique_ptr<SpillStore> NewStore() const override;
  void Discard() override;
  // The memory its blocks take now.
  uint64_t HeldBytes() const;

 private:
  static constexpr size_t kBlockBytes = size_t{1} << 20;
  void AppendLocked(const char* data, size_t n);
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  uint64_t size_ = 0;
};

// K partitions of records in one SpillStore. Each writer thread owns a
// Writer, which buffers `buffer_bytes` per partition; a full buffer becomes an
// extent. Extents are appended in batches of about kBatchBytes, one
// SpillStore::AppendAll each: with hundreds of partitions a buffer holds a few
// KB, and writing each on its own cost a system call and the file's lock per
// few KB, contended by the other writers. ReadPartition concatenates a
// partition's extents, reading each run of extents that lie end to end in the
// store at once (rows arrive grouped by elder, so a partition's buffers often
// fill one after another and go out in one batch: at 40 M rows, one read per
// extent was 190,000 reads of ~5 KB).
class PartitionedSpill {
 public:
  // REQUIRES: partitions >= 1, store outlives this.
  PartitionedSpill(SpillStore* store, uint32_t partitions, size_t buffer_bytes);

  // A writer appends its full buffers once they add up to this much.
  static constexpr size_t kBatchBytes = size_t{1} << 20;

  class Writer {
   public:
    explicit Writer(PartitionedSpill* spill);
    ~Writer();  // flushes
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    // Appends one record (never split between extents). REQUIRES: n <= buffer_bytes.
    void Append(uint32_t partition, const void* data, size_t n);
    // Room for `n` bytes in the partition's buffer, to write a record in place;
    // then Commit(n). REQUIRES: n <= buffer_bytes.
    char* Reserve(uint32_t partition, size_t n) {
      if (partition < used_.size() && buffers_[partition] && used_[partition] + n <= buffer_bytes_) {
        return buffers_[partition].get() + used_[partition];
      }
      return ReserveSlow(partition, n);
    }
    void Commit(uint32_t partition, size_t n) { used_[partition] += n; }
    // True when the partition's buffer holds nothing: the next record starts
    // an extent (delta encodings restart there). Call after Reserve.
    bool AtExtentStart(uint32_t partition) const { return used_[partition] == 0; }
    // Appends every record written so far: ReadPartition sees them.
    void Flush();
    // Flushes and frees the buffers (the writer may still be used: they come back on demand).
    void Release();

   private:
    // A full buffer waiting for the next batch.
    struct Staged {
      uint32_t partition;
      size_t bytes;
      std::unique_ptr<char[]> buffer;
    };
    // Moves the partition's buffer to the batch; it gets an empty one.
    void Stage(uint32_t partition);
    void AppendStaged();
    char* ReserveSlow(uint32_t partition, size_t n);
    PartitionedSpill* spill_;
    size_t buffer_bytes_;
    std::vector<std::unique_ptr<char[]>> buffers_;  // allocated on first use
    std::vector<size_t> used_;
    std::vector<Staged> staged_;
    size_t staged_bytes_ = 0;
    std::vector<std::unique_ptr<char[]>> spare_;  // buffers back from a batch, for the next full ones
    std::vector<SpillPiece> pieces_;              // scratch of AppendStaged
  };

  uint32_t partitions() const { return partitions_; }
  size_t buffer_bytes() const { return buffer_bytes_; }
  // Every byte appended to `partition` by writers that have flushed; with
  // `extents`, the size of each extent, in the order of `out`.
  // REQUIRES: not discarded (std::logic_error).
  void ReadPartition(uint32_t partition, ByteBuffer* out, std::vector<uint32_t>* extents = nullptr) const;
  uint64_t PartitionBytes(uint32_t partition) const;
  // Still the bytes that were spilled, after Discard too.
  uint64_t TotalBytes() const;
  // Every partition has been read for the last time: the store's bytes are
  // given back (SpillStore::Discard). REQUIRES: the store holds nothing but
  // these partitions, and every writer has flushed for the last time. The
  // partitions are discarded even when the store's Discard throws.
  void Discard();
  // Every partition has been read for the last time, but the store holds
  // other records too (a run's exceptions live beside its txn-id records):
  // the store is told to Forget each run of adjacent extents, and later reads
  // and writes are refused as after Discard. REQUIRES: every writer has
  // flushed for the last time. Asserts that no two extents overlap (a hole
  // punched over one would destroy the other's bytes): std::logic_error, and
  // nothing forgotten, if they do.
  void Forget();
  bool discarded() const;

 private:
  struct Extent {
    uint64_t offset;
    uint32_t bytes;
  };

  SpillStore* store_;
  uint32_t partitions_;
  size_t buffer_bytes_;
  mutable std::mutex mutex_;
  std::vector<std::vector<Extent>> extents_;
  std::vector<uint64_t> bytes_;
  bool discarded_ = false;
};

}  // namespace carecard

#endif  // CARECARD_ENGINE_SPILL_H_
