// Book: the embedded file store of settled periods, BOOK/PERIOD/ folders.
//
// A period folder holds the settlement files and manifest.json. The manifest's
// "state" is "draft" or "closed": a period is closed exactly when its manifest
// says so, and a closed folder is never written again. Each run writes into a
// hidden temporary folder in the book, fsyncs every file and the folder, then
// swaps it into place with one rename (renameat2 RENAME_EXCHANGE over a draft),
// so a run that dies at any point leaves the book as it was; leftovers are
// removed by the next run. One run at a time: an flock on BOOK/.lock, held
// for the whole run, released by the kernel if the process dies.
#ifndef CARECARD_BATCH_BOOK_H_
#define CARECARD_BATCH_BOOK_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "batch/outputs.h"
#include "engine/book_state.h"
#include "engine/calendar.h"

namespace carecard {

struct BookPeriod {
  PayoutPeriod period;
  bool closed = false;
  std::string manifest_sha256;  // of manifest.json as stored
};

class BookLock {
 public:
  // Takes the book's lock without waiting. On failure returns nullptr and
  // *holder describes the run that holds it (pid and start).
  static std::unique_ptr<BookLock> TryAcquire(const std::string& book_dir, const std::string& description,
                                              std::string* holder);
  ~BookLock();

 private:
  explicit BookLock(int fd) : fd_(fd) {}
  int fd_;
};

class Book {
 public:
  explicit Book(std::string dir, int months_per_period) : dir_(std::move(dir)), months_per_period_(months_per_period) {}

  // Lists the period folders (ignores hidden and unrelated entries), ascending.
  bool ListPeriods(std::vector<BookPeriod>* periods, std::string* error) const;
  // Reads what the engine needs of the closed periods.
  bool ReadState(const std::vector<BookPeriod>& periods, BookState* state, std::string* error) const;
  // Removes temporary folders left by runs that died.
  void RemoveLeftovers() const;
  // Writes `files` (name -> bytes) as the folder of `period`, atomically replacing a draft.
  // REQUIRES: the period is not closed and the lock is held.
  bool WritePeriod(const PayoutPeriod& period, const std::map<std::string, std::string>& files, std::string* error) const;
  // Appends one line to BOOK/runs.log (wall-clock time and host live here, never in a period).
  void AppendRunLog(const std::string& line) const;

  std::string PeriodDir(const PayoutPeriod& period) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int months_per_period_;
};

// A period's folder being written: files stream into a hidden temporary
// folder of the book (OutputSink), each synced when finished; Commit syncs the
// folder and swaps it into place. Destroyed uncommitted, it leaves nothing.
// The manifest must be the last file created: a folder is complete only with one.
class PeriodWriter : public OutputSink {
 public:
  // REQUIRES: the period is not closed and the lock is held.
  static std::unique_ptr<PeriodWriter> Begin(const Book& book, const PayoutPeriod& period, std::string* error);
  ~PeriodWriter() override;
  std::unique_ptr<OutputFile> Create(const std::string& name) override;
  bool Commit(std::string* error);

 private:
  PeriodWriter(std::string book_dir, std::string temp_dir, std::string final_dir)
      : book_dir_(std::move(book_dir)), temp_dir_(std::move(temp_dir)), final_dir_(std::move(final_dir)) {}
  std::string book_dir_, temp_dir_, final_dir_;
  bool committed_ = false;
};

// Reads a whole file; false with *error naming it when it cannot.
bool ReadWholeFile(const std::string& path, std::string* bytes, std::string* error);

}  // namespace carecard

#endif  // CARECARD_BATCH_BOOK_H_
