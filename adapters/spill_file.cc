#include "adapters/spill_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace carecard {

std::unique_ptr<FileSpillStore> FileSpillStore::Create(const std::string& dir, std::string* error) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    // File systems without O_TMPFILE: a named file, unlinked at once.
    std::string name = dir + "/.carecard-spill-XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(name.c_str());
  }
  if (fd < 0) {
    *error = "cannot make a temporary file in '" + dir + "' for the run's spilled records: " + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<FileSpillStore>(new FileSpillStore(fd, dir));
}

FileSpillStore::~FileSpillStore() { ::close(fd_); }

uint64_t FileSpillStore::Append(const void* data, size_t n) {
  uint64_t offset;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    offset = size_;
    size_ += n;
  }
  const auto* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(fd_, p + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      throw SpillError("cannot write the run's spilled records in '" + dir_ + "': " +
                       (w < 0 ? std::strerror(errno) : std::string("no space")));
    }
    done += static_cast<size_t>(w);
  }
  return offset;
}

void FileSpillStore::Read(uint64_t offset, void* out, size_t n) const {
  auto* p = static_cast<char*>(out);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw SpillError("cannot read the run's spilled records back: " + std::string(r < 0 ? std::strerror(errno) : "short read"));
    done += static_cast<size_t>(r);
  }
}

uint64_t FileSpillStore::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return size_;
}

}  // namespace carecard
