#include "adapters/spill_file.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace carecard {

namespace {

int OpenUnnamed(const std::string& dir, std::string* error) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    // File systems without O_TMPFILE: a named file, unlinked at once.
    std::string name = dir + "/.carecard-spill-XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(name.c_str());
  }
  if (fd < 0) {
    *error = "cannot make a temporary file in '" + dir + "' for the run's spilled records: " + std::strerror(errno);
  }
  return fd;
}

// The lane a thread tries first: threads spread over the lanes, so that two
// writers rarely meet even before try_lock.
int PreferredLane() {
  static std::atomic<int> next{0};
  thread_local const int lane = next.fetch_add(1, std::memory_order_relaxed);
  return lane;
}

}  // namespace

std::unique_ptr<FileSpillStore> FileSpillStore::Create(const std::string& dir, std::string* error) {
  std::unique_ptr<FileSpillStore> store(new FileSpillStore(dir));
  for (Lane& lane : store->lanes_) {
    lane.fd = OpenUnnamed(dir, error);
    if (lane.fd < 0) return nullptr;
  }
  return store;
}

FileSpillStore::~FileSpillStore() {
  for (Lane& lane : lanes_) {
    if (lane.fd >= 0) ::close(lane.fd);
  }
}

void FileSpillStore::WriteFailed(ssize_t result) const {
  throw SpillError("cannot write the run's spilled records in '" + dir_ +
                   "': " + (result < 0 ? std::strerror(errno) : std::string("no space")));
}

uint64_t FileSpillStore::Append(const void* data, size_t n) {
  const SpillPiece piece{static_cast<const char*>(data), n};
  return AppendAll(std::span<const SpillPiece>(&piece, 1));
}

uint64_t FileSpillStore::AppendAll(std::span<const SpillPiece> pieces) {
  const int first = PreferredLane();
  for (int i = 0; i < kLanes; ++i) {
    const int k = (first + i) % kLanes;
    std::unique_lock<std::mutex> lock(lanes_[k].mutex, std::try_to_lock);
    if (lock.owns_lock()) return AppendLocked(&lanes_[k], static_cast<uint64_t>(k), pieces);
  }
  const int k = first % kLanes;
  std::lock_guard<std::mutex> lock(lanes_[k].mutex);
  return AppendLocked(&lanes_[k], static_cast<uint64_t>(k), pieces);
}

uint64_t FileSpillStore::AppendLocked(Lane* lane, uint64_t lane_index, std::span<const SpillPiece> pieces) {
  uint64_t total = 0;
  for (const SpillPiece& p : pieces) total += p.size;
  const uint64_t offset = lane->size;
  if (total >= (uint64_t{1} << kOffsetBits) - offset) WriteFailed(0);
  // pwritev takes at most IOV_MAX pieces a call, and may write fewer bytes
  // than asked: the rest is written from where it stopped.
  std::vector<iovec> iov;
  iov.reserve(std::min<size_t>(pieces.size(), IOV_MAX));
  uint64_t at = offset;
  size_t next = 0;    // first piece not yet in iov
  size_t skip = 0;    // bytes of pieces[next] already written
  while (next < pieces.size()) {
    iov.clear();
    for (size_t i = next; i < pieces.size() && iov.size() < IOV_MAX; ++i) {
      const size_t from = i == next ? skip : 0;
      if (pieces[i].size > from) iov.push_back(iovec{const_cast<char*>(pieces[i].data) + from, pieces[i].size - from});
    }
    if (iov.empty()) break;
    const ssize_t w = ::pwritev(lane->fd, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) WriteFailed(w);
    at += static_cast<uint64_t>(w);
    // Step past what was written.
    size_t left = static_cast<size_t>(w);
    while (next < pieces.size() && left >= pieces[next].size - skip) {
      left -= pieces[next].size - skip;
      skip = 0;
      ++next;
    }
    skip += left;
  }
  if (at != offset + total) WriteFailed(0);
  lane->size = at;
  return lane_index << kOffsetBits | offset;
}

void FileSpillStore::Read(uint64_t locator, void* out, size_t n) const {
  const uint64_t lane = locator >> kOffsetBits;
  if (lane >= kLanes) throw SpillError("cannot read the run's spilled records back: no such place");
  const int fd = lanes_[lane].fd;
  const uint64_t offset = locator & ((uint64_t{1} << kOffsetBits) - 1);
  auto* p = static_cast<char*>(out);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw SpillError("cannot read the run's spilled records back: " + std::string(r < 0 ? std::strerror(errno) : "short read"));
    done += static_cast<size_t>(r);
  }
}

uint64_t FileSpillStore::size() const {
  uint64_t total = 0;
  for (Lane& lane : lanes_) {
    std::lock_guard<std::mutex> lock(lane.mutex);
    total += lane.size;
  }
  return total;
}

std::unique_ptr<SpillStore> FileSpillStore::NewStore() const {
  std::string error;
  std::unique_ptr<FileSpillStore> store = Create(dir_, &error);
  if (!store) throw SpillError(error);
  return store;
}

uint64_t FileSpillStore::AllocatedBytes() const {
  uint64_t total = 0;
  for (Lane& lane : lanes_) {
    struct stat st;
    if (::fstat(lane.fd, &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

void FileSpillStore::Discard() {
  for (Lane& lane : lanes_) {
    std::lock_guard<std::mutex> lock(lane.mutex);
    if (::ftruncate(lane.fd, 0) != 0) {
      throw SpillError("cannot give back the disk of the run's spilled records in '" + dir_ + "': " + std::strerror(errno));
    }
    lane.size = 0;
  }
}

void FileSpillStore::Forget(uint64_t locator, uint64_t n) {
  const uint64_t lane = locator >> kOffsetBits;
  if (lane >= kLanes) return;
  const uint64_t offset = locator & ((uint64_t{1} << kOffsetBits) - 1);
  // Whole pages only: the first and last may hold bytes that are still wanted.
  constexpr uint64_t kPage = 4096;
  const uint64_t from = (offset + kPage - 1) / kPage * kPage;
  const uint64_t to = (offset + n) / kPage * kPage;
  if (to <= from) return;
  std::lock_guard<std::mutex> lock(lanes_[lane].mutex);
  // A hint: when the file system cannot, the pages stay, and nothing else changes.
  (void)::fallocate(lanes_[lane].fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                    static_cast<off_t>(to - from));
}

}  // namespace carecard
