#include "batch/book.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adapters/csv_reader.h"
#include "adapters/csv_writer.h"

namespace carecard {
namespace fs = std::filesystem;

namespace {

constexpr const char* kTempPrefix = ".tmp-";

bool WriteFileSynced(const std::string& path, const std::string& bytes, std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot create '" + path + "': " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = "cannot write '" + path + "': " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    *error = "cannot sync '" + path + "': " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  return ::close(fd) == 0;
}

void SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Reads a CSV written by this engine into rows of name -> cell.
bool ReadBookCsv(const std::string& path, std::vector<std::map<std::string, std::string>>* rows, std::string* error) {
  rows->clear();
  auto reader = CsvReader::Open(path, error);
  if (!reader) return false;
  CsvRow row;
  if (!reader->Next(&row)) return true;
  std::vector<std::string> header = row.cells;
  while (reader->Next(&row)) {
    if (row.problem != CsvProblem::kNone || row.cells.size() != header.size()) {
      *error = path + ":" + std::to_string(row.line) + ": the book's file is damaged";
      return false;
    }
    std::map<std::string, std::string> r;
    for (size_t i = 0; i < header.size(); ++i) r[header[i]] = std::string(CsvWriter::Unguard(row.cells[i]));
    rows->push_back(std::move(r));
  }
  return true;
}

bool BookMoney(const std::string& text, const std::string& where, Money* out, std::string* error) {
  auto m = Money::ParseSigned(text);
  if (!m) {
    *error = where + ": '" + text + "' is not an amount; the book's file is damaged";
    return false;
  }
  *out = *m;
  return true;
}

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
  *state = BookState();
  for (const auto& bp : periods) {
    if (!bp.closed) continue;
    if (!state->first_closed) state->first_closed = bp.period;
    if (state->latest_closed && bp.period != state->latest_closed->Next()) {
      *error = "the book's closed periods are not consecutive: " + state->latest_closed->ToString() + " then " +
               bp.period.ToString();
      return false;
    }
    state->latest_closed = bp.period;
    const std::string dir = PeriodDir(bp.period);
    std::vector<std::map<std::string, std::string>> rows;
    if (!ReadBookCsv(dir + "/card_months.csv", &rows, error)) return false;
    for (auto& r : rows) {
      auto& rec = state->card_months[{r["card_no"], r["month"]}];
      Money subsidy;
      if (!BookMoney(r["subsidy"], dir + "/card_months.csv", &subsidy, error)) return false;
      rec.subsidy += subsidy;
      rec.center_id = r["center_id"];
    }
    if (!ReadBookCsv(dir + "/adjustments.csv", &rows, error)) return false;
    for (auto& r : rows) {
      auto& rec = state->card_months[{r["card_no"], r["original_month"]}];
      Money amount;
      if (!BookMoney(r["amount"], dir + "/adjustments.csv", &amount, error)) return false;
      rec.subsidy += amount;
      if (rec.center_id.empty()) rec.center_id = r["center_id"];
    }
    if (!ReadBookCsv(dir + "/statements.csv", &rows, error)) return false;
    for (auto& [card, st] : state->statements) st.last_closing = Money();
    for (auto& r : rows) {
      auto& st = state->statements[r["card_no"]];
      Flows f;
      const std::string where = dir + "/statements.csv";
      if (!BookMoney(r["deposits"], where, &f.deposits, error) || !BookMoney(r["reversals"], where, &f.reversals, error) ||
          !BookMoney(r["subsidies"], where, &f.subsidies, error) ||
          !BookMoney(r["consumption"], where, &f.consumption, error) ||
          !BookMoney(r["refunds"], where, &f.refunds, error) || !BookMoney(r["closing"], where, &st.last_closing, error)) {
        return false;
      }
      st.flows_sum += f;
      st.center_id = r["center_id"];
    }
    if (!ReadBookCsv(dir + "/payouts.csv", &rows, error)) return false;
    state->carried.clear();
    for (auto& r : rows) {
      Money carried;
      if (!BookMoney(r["carried_out"], dir + "/payouts.csv", &carried, error)) return false;
      state->carried[r["center_id"]] = carried;
    }
  }
  return true;
}

void Book::RemoveLeftovers() const {
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(kTempPrefix, 0) == 0) fs::remove_all(it->path(), ec);
  }
}

bool Book::WritePeriod(const PayoutPeriod& period, const std::map<std::string, std::string>& files,
                       std::string* error) const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  const std::string final_dir = PeriodDir(period);
  const std::string temp_dir =
      (fs::path(dir_) / (std::string(kTempPrefix) + period.ToString() + "-" + std::to_string(::getpid()))).string();
  fs::remove_all(temp_dir, ec);
  if (!fs::create_directory(temp_dir, ec)) {
    *error = "cannot create '" + temp_dir + "': " + ec.message();
    return false;
  }
  // The manifest goes last: a folder is only ever complete when it has one.
  for (const auto& [name, bytes] : files) {
    if (name == "manifest.json") continue;
    if (!WriteFileSynced(temp_dir + "/" + name, bytes, error)) return false;
  }
  if (auto it = files.find("manifest.json"); it != files.end()) {
    if (!WriteFileSynced(temp_dir + "/manifest.json", it->second, error)) return false;
  }
  SyncDir(temp_dir);
  if (fs::exists(final_dir, ec)) {
    if (::renameat2(AT_FDCWD, temp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0) {
      *error = "cannot replace '" + final_dir + "': " + std::strerror(errno);
      return false;
    }
    SyncDir(dir_);
    fs::remove_all(temp_dir, ec);  // now the old draft
  } else {
    if (::rename(temp_dir.c_str(), final_dir.c_str()) != 0) {
      *error = "cannot move '" + temp_dir + "' to '" + final_dir + "': " + std::strerror(errno);
      return false;
    }
    SyncDir(dir_);
  }
  return true;
}

void Book::AppendRunLog(const std::string& line) const {
  std::ofstream out((fs::path(dir_) / "runs.log").string(), std::ios::app);
  out << line << '\n';
}

}  // namespace carecard
