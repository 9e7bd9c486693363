// FileSpillStore: a SpillStore in unnamed temporary files (O_TMPFILE), so
// that a run's spilled records take disk (page cache), not resident memory,
// and vanish with the process however it ends.
//
// The store is kLanes files ("lanes"): an append takes a lane no other thread
// is writing to, because a file system serializes the writes to one file (the
// inode's lock), and a writer that waits for it spins on a core. An offset
// names its lane in its top 16 bits and the place in the lane below; a read
// stays within one lane, over appends laid end to end there (PartitionedSpill
// reads a run of adjacent extents at once; no append reaches a lane's end, so
// no two lanes' bytes are ever adjacent offsets).
#ifndef CARECARD_ADAPTERS_SPILL_FILE_H_
#define CARECARD_ADAPTERS_SPILL_FILE_H_

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "engine/spill.h"

namespace carecard {

class FileSpillStore : public SpillStore {
 public:
  // In folder `dir`. nullptr with *error when no temporary file can be made there.
  static std::unique_ptr<FileSpillStore> Create(const std::string& dir, std::string* error);
  ~FileSpillStore() override;
  uint64_t Append(const void* data, size_t n) override;
  uint64_t AppendAll(std::span<const SpillPiece> pieces) override;
  void Read(uint64_t offset, void* out, size_t n) const override;
  uint64_t size() const override;
  // Another FileSpillStore in the same folder.
  std::unique_ptr<SpillStore> NewStore() const override;
  // Truncates every lane to nothing: the page cache lets go of its pages at once.
  void Discard() override;
  // Punches a hole (FALLOC_FL_PUNCH_HOLE) over the whole pages of the range:
  // the page cache lets go of them at once, and the lane keeps its size, so
  // the offsets of everything else stay valid. Errors (a file system without
  // hole punching) leave the pages where they are.
  void Forget(uint64_t offset, uint64_t n) override;
  // What the lanes take on disk or in the page cache now (their blocks).
  uint64_t AllocatedBytes() const;

  static constexpr int kLanes = 4;
  static constexpr int kOffsetBits = 48;  // 256 TiB a lane

 private:
  struct Lane {
    int fd = -1;
    std::mutex mutex;  // held for a whole append
    uint64_t size = 0;
  };
  explicit FileSpillStore(std::string dir) : dir_(std::move(dir)) {}
  uint64_t AppendLocked(Lane* lane, uint64_t lane_index, std::span<const SpillPiece> pieces);
  [[noreturn]] void WriteFailed(ssize_t result) const;
  std::string dir_;
  mutable Lane lanes_[kLanes];
};

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_SPILL_FILE_H_
