// FileSpillStore: a SpillStore in an unnamed temporary file (O_TMPFILE), so
// that a run's spilled records take disk (page cache), not resident memory,
// and vanish with the process however it ends.
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

 private:
  FileSpillStore(int fd, std::string dir) : fd_(fd), dir_(std::move(dir)) {}
  uint64_t Reserve(uint64_t n);
  [[noreturn]] void WriteFailed(ssize_t result) const;
  int fd_;
  std::string dir_;
  mutable std::mutex mutex_;
  uint64_t size_ = 0;
};

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_SPILL_FILE_H_
