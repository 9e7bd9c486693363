#include "batch/book.h"

#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adapters/csv_reader.h"
#include "adapters/csv_writer.h"

namespace carecard {
namespace fs = std::filesystem;

namespace {

constexpr const char* kTempPrefix = ".tmp-";

void SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Reads a CSV written by this engine, calling fn with the cells of `columns`
// (in that order, unguarded) for every row.
bool ForEachBookRow(const std::string& path, const std::vector<std::string>& columns,
                    const std::function<bool(const std::vector<std::string_view>&)>& fn, std::string* error) {
  auto reader = CsvReader::Open(path, error);
  if (!reader) return false;
  CsvRow row;
  if (!reader->Next(&row)) return true;
  std::vector<size_t> at;
  for (const auto& c : columns) {
    auto it = std::find(row.cells.begin(), row.cells.end(), c);
    if (it == row.cells.end()) {
      *error = path + ": the book's file has no column '" + c + "'; the book is damaged";
      return false;
    }
    at.push_back(static_cast<size_t>(it - row.cells.begin()));
  }
  const size_t width = row.cells.size();
  std::vector<std::string_view> cells(columns.size());
  while (reader->Next(&row)) {
    if (row.problem != CsvProblem::kNone || row.cells.size() != width) {
      *error = path + ":" + std::to_string(row.line) + ": the book's file is damaged";
      return false;
    }
    for (size_t i = 0; i < at.size(); ++i) cells[i] = CsvWriter::Unguard(row.cells[at[i]]);
    if (!fn(cells)) {
      *error = path + ":" + std::to_string(row.line) + ": " + *error;
      return false;
    }
  }
  if (!reader->error().empty()) {
    *error = reader->error();
    return false;
  }
  return true;
}

bool BookMoney(std::string_view text, Money* out, std::string* error) {
  auto m = Money::ParseSigned(text);
  if (!m) {
    *error = "'" + std::string(text) + "' is not an amount; the book's file is damaged";
    return false;
  }
  *out = *m;
  return true;
}

bool BookMonth(std::string_view text, YearMonth* out, std::string* error) {
  auto m = YearMonth::Parse(text);
  if (!m) {
    *error = "'" + std::string(text) + "' is not a month YYYY-MM; the book's file is damaged";
    return false;
  }
  *out = *m;
  return true;
}

// A period's file, synced when finished. A large period's files are hundreds
// of MB that nobody reads soon, so the disk starts on each MB as soon as it is
// written (sync_file_range: the final fsync finds little left to do), and the
// pages more than kCachedBytes behind are waited for and dropped from the page
// cache: a file holds at most that much of it, does not evict the inputs the
// next run reads, and waits for a disk slower than the renderers. (Direct I/O
// was tried first: one synchronous 1 MB write at a time left the renderers
// waiting on the disk, 5% of a 200,000-card run.)
class SyncedFile : public OutputFile {
 public:
  SyncedFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~SyncedFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void Write(std::string_view bytes) override {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t w = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw std::runtime_error("cannot write '" + path_ + "': " + std::strerror(errno));
      done += static_cast<size_t>(w);
    }
    written_ += bytes.size();
    if (written_ - flushed_ >= kWritebackBytes) {
      // Hints and waits only: fsync in Finish is what makes the file durable.
      ::sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(written_ - flushed_), SYNC_FILE_RANGE_WRITE);
      flushed_ = written_;
      if (flushed_ - dropped_ > kCachedBytes + kWritebackBytes) {
        const uint64_t until = flushed_ - kCachedBytes;
        ::sync_file_range(fd_, static_cast<off_t>(dropped_), static_cast<off_t>(until - dropped_),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        ::posix_fadvise(fd_, static_cast<off_t>(dropped_), static_cast<off_t>(until - dropped_), POSIX_FADV_DONTNEED);
        dropped_ = until;
      }
    }
  }
  void Finish() override {
    if (::fsync(fd_) != 0) throw std::runtime_error("cannot sync '" + path_ + "': " + std::strerror(errno));
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);  // clean pages now: dropping them loses nothing
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw std::runtime_error("cannot close '" + path_ + "': " + std::strerror(errno));
  }

 private:
  static constexpr uint64_t kWritebackBytes = 1u << 20;
  static constexpr uint64_t kCachedBytes = 64u << 20;

  std::string path_;
  int fd_;
  uint64_t written_ = 0;  // bytes written
  uint64_t flushed_ = 0;  // bytes whose writeback was started
  uint64_t dropped_ = 0;  // bytes written back and dropped from the page cache
};

}  // namespace

bool ReadWholeFile(const std::string& path, std::string* bytes, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read '" + path + "'";
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *bytes = ss.str();
  return true;
}

std::unique_ptr<BookLock> BookLock::TryAcquire(const std::string& book_dir, const std::string& description,
                                               std::string* holder) {
  std::error_code ec;
  fs::create_directories(book_dir, ec);
  const std::string path = (fs::path(book_dir) / ".lock").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    *holder = "cannot open lock file '" + path + "': " + std::strerror(errno);
    return nullptr;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buffer[512] = {0};
    ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
    *holder = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string("another run");
    while (!holder->empty() && holder->back() == '\n') holder->pop_back();
    ::close(fd);
    return nullptr;
  }
  // The lock is the flock, not the file: a holder that died released it, so a
  // stale file is simply overwritten.
  if (::ftruncate(fd, 0) == 0) {
    ssize_t ignored = ::pwrite(fd, description.data(), description.size(), 0);
    (void)ignored;
  }
  return std::unique_ptr<BookLock>(new BookLock(fd));
}

BookLock::~BookLock() {
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

std::string Book::PeriodDir(const PayoutPeriod& period) const { return (fs::path(dir_) / period.ToString()).string(); }

bool Book::ListPeriods(std::vector<BookPeriod>* periods, std::string* error) const {
  periods->clear();
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return true;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const std::string name = it->path().filename().string();
    auto period = PayoutPeriod::Parse(name, months_per_period_);
    if (!period) continue;
    BookPeriod bp{*period, false, {}};
    std::string manifest;
    const std::string manifest_path = (it->path() / "manifest.json").string();
    if (!ReadWholeFile(manifest_path, &manifest, error)) return false;
    auto json = nlohmann::json::parse(manifest, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
      *error = manifest_path + ": not a valid manifest";
      return false;
    }
    bp.closed = json.value("state", "") == "closed";
    bp.manifest_sha256 = Sha256Hex(manifest);
    periods->push_back(bp);
  }
  if (ec) {
    *error = "cannot list book '" + dir_ + "': " + ec.message();
    return false;
  }
  std::sort(periods->begin(), periods->end(), [](const BookPeriod& a, const BookPeriod& b) { return a.period < b.period; });
  return true;
}

bool Book::ReadState(const std::vector<BookPeriod>& periods, BookState* state, std::string* error) const {
  BookStateBuilder builder;
  for (const auto& bp : periods) {
    if (!bp.closed) continue;
    if (!builder.BeginPeriod(bp.period, error)) return false;
    const std::string dir = PeriodDir(bp.period);
    Money amount;
    YearMonth month;
    if (!ForEachBookRow(dir + "/card_months.csv", {"card_no", "month", "subsidy", "center_id"},
                        [&](const std::vector<std::string_view>& c) {
                          if (!BookMonth(c[1], &month, error) || !BookMoney(c[2], &amount, error)) return false;
                          builder.AddCardMonth(c[0], month, amount, c[3]);
                          return true;
                        },
                        error)) {
      return false;
    }
    if (!ForEachBookRow(dir + "/adjustments.csv", {"card_no", "original_month", "amount", "center_id"},
                        [&](const std::vector<std::string_view>& c) {
                          if (!BookMonth(c[1], &month, error) || !BookMoney(c[2], &amount, error)) return false;
                          builder.AddAdjustment(c[0], month, amount, c[3]);
                          return true;
                        },
                        error)) {
      return false;
    }
    if (!ForEachBookRow(dir + "/statements.csv",
                        {"card_no", "center_id", "deposits", "reversals", "subsidies", "consumption", "refunds", "closing"},
                        [&](const std::vector<std::string_view>& c) {
                          Flows f;
                          Money closing;
                          if (!BookMoney(c[2], &f.deposits, error) || !BookMoney(c[3], &f.reversals, error) ||
                              !BookMoney(c[4], &f.subsidies, error) || !BookMoney(c[5], &f.consumption, error) ||
                              !BookMoney(c[6], &f.refunds, error) || !BookMoney(c[7], &closing, error)) {
                            return false;
                          }
                          builder.AddStatement(c[0], f, closing, c[1]);
                          return true;
                        },
                        error)) {
      return false;
    }
    if (!ForEachBookRow(dir + "/payouts.csv", {"center_id", "carried_out"},
                        [&](const std::vector<std::string_view>& c) {
                          if (!BookMoney(c[1], &amount, error)) return false;
                          builder.AddCarried(c[0], amount);
                          return true;
                        },
                        error)) {
      return false;
    }
  }
  *state = builder.Finish();
  return true;
}

void Book::RemoveLeftovers() const {
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(kTempPrefix, 0) == 0) fs::remove_all(it->path(), ec);
  }
}

std::unique_ptr<PeriodWriter> PeriodWriter::Begin(const Book& book, const PayoutPeriod& period, std::string* error) {
  std::error_code ec;
  fs::create_directories(book.dir(), ec);
  const std::string temp_dir =
      (fs::path(book.dir()) / (std::string(kTempPrefix) + period.ToString() + "-" + std::to_string(::getpid()))).string();
  fs::remove_all(temp_dir, ec);
  if (!fs::create_directory(temp_dir, ec)) {
    *error = "cannot create '" + temp_dir + "': " + ec.message();
    return nullptr;
  }
  return std::unique_ptr<PeriodWriter>(new PeriodWriter(book.dir(), temp_dir, book.PeriodDir(period)));
}

PeriodWriter::~PeriodWriter() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(temp_dir_, ec);
}

std::unique_ptr<OutputFile> PeriodWriter::Create(const std::string& name) {
  const std::string path = temp_dir_ + "/" + name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create '" + path + "': " + std::strerror(errno));
  return std::make_unique<SyncedFile>(path, fd);
}

bool PeriodWriter::Commit(std::string* error) {
  std::error_code ec;
  SyncDir(temp_dir_);
  if (fs::exists(final_dir_, ec)) {
    if (::renameat2(AT_FDCWD, temp_dir_.c_str(), AT_FDCWD, final_dir_.c_str(), RENAME_EXCHANGE) != 0) {
      *error = "cannot replace '" + final_dir_ + "': " + std::strerror(errno);
      return false;
    }
    committed_ = true;
    SyncDir(book_dir_);
    fs::remove_all(temp_dir_, ec);  // now the old draft
  } else {
    if (::rename(temp_dir_.c_str(), final_dir_.c_str()) != 0) {
      *error = "cannot move '" + temp_dir_ + "' to '" + final_dir_ + "': " + std::strerror(errno);
      return false;
    }
    committed_ = true;
    SyncDir(book_dir_);
  }
  return true;
}

bool Book::WritePeriod(const PayoutPeriod& period, const std::map<std::string, std::string>& files,
                       std::string* error) const {
  auto writer = PeriodWriter::Begin(*this, period, error);
  if (!writer) return false;
  try {
    // The manifest goes last: a folder is only ever complete when it has one.
    for (const auto& [name, bytes] : files) {
      if (name != "manifest.json") WriteWholeFile(writer.get(), name, bytes);
    }
    if (auto it = files.find("manifest.json"); it != files.end()) WriteWholeFile(writer.get(), it->first, it->second);
  } catch (const std::runtime_error& e) {
    *error = e.what();
    return false;
  }
  return writer->Commit(error);
}

void Book::AppendRunLog(const std::string& line) const {
  std::ofstream out((fs::path(dir_) / "runs.log").string(), std::ios::app);
  out << line << '\n';
}

}  // namespace carecard
