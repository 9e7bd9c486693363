#include "adapters/data_folder.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "adapters/csv_reader.h"

namespace carecard {
namespace {

struct FixedFile {
  const char* name;
  InputKind kind;
  bool required;
};
constexpr FixedFile kRegistryFiles[] = {
    {"centers.csv", InputKind::kCenters, true},          {"stations.csv", InputKind::kStations, false},
    {"persons.csv", InputKind::kPersons, true},          {"assessments.csv", InputKind::kAssessments, false},
    {"cards.csv", InputKind::kCards, true},              {"enrollments.csv", InputKind::kEnrollments, false},
    {"platform_balances.csv", InputKind::kPlatformBalances, false},
};

bool StartsEnds(const std::string& name, const std::string& prefix) {
  return name.size() >= prefix.size() + 4 && name.compare(0, prefix.size(), prefix) == 0 &&
         name.compare(name.size() - 4, 4, ".csv") == 0;
}

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A name for people that is printable whatever the bytes: invalid UTF-8 bytes as \xHH.
std::string Printable(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    // The UTF-8 character starting here, if one does (at most 4 bytes).
    size_t len = 0;
    for (size_t n = 1; n <= 4 && i + n <= name.size(); ++n) {
      if (IsValidUtf8(name.substr(i, n))) {
        len = n;
        break;
      }
    }
    if (len == 0) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto b = static_cast<unsigned char>(name[i]);
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
      continue;
    }
    out.append(name.substr(i, len));
    i += len - 1;
  }
  return out;
}

std::string JoinColumns(const std::vector<std::string>& columns) {
  std::string out;
  for (const auto& c : columns) out += (out.empty() ? "" : ",") + c;
  return out;
}

// A header cell that was probably meant to be `column`: the same letters once
// case, spaces, quotes and a stray BOM are ignored.
std::string Loosely(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i).starts_with("\xEF\xBB\xBF")) {
      i += 2;
      continue;
    }
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\r') continue;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

// Why a header lacks `missing`, when the header itself shows it.
std::string MissingColumnHint(const std::vector<std::string>& header, const std::string& missing) {
  for (const auto& cell : header) {
    if (cell != missing && Loosely(cell) == missing) {
      return " (found '" + Printable(cell) +
             "': header names must be written exactly, in lowercase, without spaces or quotes around them)";
    }
  }
  if (header.size() == 1) {
    if (header[0].find(';') != std::string::npos) return " (the header is one cell holding ';': cells must be separated by commas, not semicolons)";
    if (header[0].find('\t') != std::string::npos) return " (the header is one cell holding tabs: cells must be separated by commas, not tabs)";
  }
  for (const auto& cell : header) {
    if (cell.find('\r') != std::string::npos) {
      return " (the header holds a bare carriage return: lines must end with LF or CRLF, not CR alone)";
    }
  }
  return "";
}

// The first bytes of a file, to name an encoding that is not UTF-8.
std::string EncodingHint(const std::string& path) {
  unsigned char head[2] = {0, 0};
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "";
  const size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  if (n == 2 && ((head[0] == 0xFF && head[1] == 0xFE) || (head[0] == 0xFE && head[1] == 0xFF))) {
    return " (the file is UTF-16, as office suites write 'Unicode text'; save it as 'CSV UTF-8')";
  }
  return "";
}

}  // namespace

std::string_view RowProblemCode(CsvProblem p) {
  // Reader problems become row codes: encodings and limits get codes of their own
  // (formats.md allows them), broken quoting is a malformed row.
  switch (p) {
    case CsvProblem::kNone: return "";
    case CsvProblem::kInvalidUtf8: return "bad_encoding";
    case CsvProblem::kFieldTooLong:
    case CsvProblem::kRowTooLong:
    case CsvProblem::kTooManyColumns: return "too_long";
    case CsvProblem::kUnterminatedQuote:
    case CsvProblem::kBadQuote: return "bad_row";
  }
  return "bad_row";
}

std::string RowProblemDetail(const CsvRow& row, const std::vector<std::string>& header) {
  auto column = [&](size_t i) {
    return "column " + std::to_string(i + 1) + (i < header.size() ? " ('" + header[i] + "')" : std::string());
  };
  // With these two problems the reader kept every cell whole (csv_reader.h), so
  // the cell at fault can be named.
  if (row.problem == CsvProblem::kInvalidUtf8) {
    for (size_t i = 0; i < row.cells.size(); ++i) {
      if (!IsValidUtf8(row.cells[i])) {
        return "the cell in " + column(i) +
               " is not valid UTF-8: files must be saved as UTF-8 (was it saved as GBK/ANSI, or does it hold binary data?)";
      }
    }
  }
  if (row.problem == CsvProblem::kFieldTooLong) {
    for (size_t i = 0; i < row.cells.size(); ++i) {
      if (row.cells[i].size() > kMaxFieldBytes) {
        return "the cell in " + column(i) + " is " + std::to_string(row.cells[i].size()) + " bytes long; the limit is " +
               std::to_string(kMaxFieldBytes) + " bytes per cell";
      }
    }
  }
  return std::string(CsvProblemText(row.problem));
}

const char* InputKindName(InputKind kind) {
  switch (kind) {
    case InputKind::kCenters: return "centers";
    case InputKind::kStations: return "stations";
    case InputKind::kPersons: return "persons";
    case InputKind::kAssessments: return "assessments";
    case InputKind::kCards: return "cards";
    case InputKind::kEnrollments: return "enrollments";
    case InputKind::kPlatformBalances: return "platform_balances";
    case InputKind::kDeposits: return "deposits";
    case InputKind::kConsumption: return "consumption";
  }
  return "?";
}

bool ListDataFiles(const std::string& dir, std::vector<InputFileInfo>* files, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    *error = "data folder '" + dir + "' does not exist or is not a folder";
    return false;
  }
  files->clear();
  for (const auto& f : kRegistryFiles) {
    if (fs::is_regular_file(fs::path(dir) / f.name, ec)) {
      files->push_back(InputFileInfo{f.name, f.kind, 0, {}});
    } else if (f.required) {
      *error = "required file '" + (fs::path(dir) / f.name).string() + "' is missing";
      return false;
    }
  }
  std::vector<std::string> deposits, consumption;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().filename().string();
    const bool deposit = StartsEnds(name, "deposits");
    const bool consume = StartsEnds(name, "consumption");
    if ((deposit || consume) && !IsValidUtf8(name)) {
      // Its name would go into exceptions.csv and the manifest, which are UTF-8.
      *error = "data folder '" + dir + "': the file name '" + Printable(name) +
               "' is not UTF-8 (written on a system using GBK?); rename the file and run again";
      return false;
    }
    if (deposit) deposits.push_back(name);
    if (consume) consumption.push_back(name);
    if (deposit || consume) continue;
    // A misnamed input file would be skipped silently; refuse instead.
    const std::string lower = AsciiLower(name);
    bool looks_like_input = StartsEnds(lower, "deposits") || StartsEnds(lower, "consumption");
    for (const auto& f : kRegistryFiles) looks_like_input = looks_like_input || (lower == f.name && name != f.name);
    if (looks_like_input) {
      *error = "data folder '" + dir + "': the file '" + Printable(name) +
               "' looks like an input file but is not named exactly as one (names are lowercase and end in .csv: "
               "centers.csv, deposits*.csv, ...); rename it, or move it out of the folder";
      return false;
    }
  }
  if (ec) {
    *error = "cannot list data folder '" + dir + "': " + ec.message();
    return false;
  }
  std::sort(deposits.begin(), deposits.end());
  std::sort(consumption.begin(), consumption.end());
  for (auto& n : deposits) files->push_back(InputFileInfo{n, InputKind::kDeposits, 0, {}});
  for (auto& n : consumption) files->push_back(InputFileInfo{n, InputKind::kConsumption, 0, {}});
  return true;
}

namespace {

// A slice of one file as the reader produced it. The first batch of a file
// carries its header (or the error that kept it from being read); the last one
// says the file ended, with its digest.
struct RowBatch {
  size_t file = 0;
  bool has_header = false;
  CsvRow header;
  std::vector<CsvRow> rows;
  size_t row_count = 0;  // rows[0, row_count) are filled; the rest keep capacity for reuse
  std::vector<PreparsedTransaction> preparsed;  // parallel to rows, for clean transaction rows
  std::vector<char> is_preparsed;
  bool end_of_file = false;
  std::string error;  // a read error: the run is refused
  std::string sha256;
  uint64_t bytes = 0;
};

constexpr size_t kRowsPerBatch = 4096;
constexpr size_t kBatchesInFlight = 8;  // bounds the memory the reader may run ahead

// Reads the folder's files in order and cuts them into batches.
class BatchSource {
 public:
  BatchSource(const std::string& dir, const std::vector<InputFileInfo>& files) : dir_(dir), files_(files) {}

  // Fills *batch with the next slice; false when every file is done.
  bool Next(RowBatch* batch) {
    batch->row_count = 0;
    batch->has_header = false;
    batch->end_of_file = false;
    batch->error.clear();
    if (file_ >= files_.size()) return false;
    batch->file = file_;
    const InputFileInfo& info = files_[file_];
    if (!reader_) {
      const std::string path = (std::filesystem::path(dir_) / info.file).string();
      reader_ = CsvReader::Open(path, &batch->error);
      if (!reader_) return Finish(batch);
      batch->has_header = true;
      if (!reader_->Next(&batch->header)) {
        batch->header.cells.clear();
        batch->header.line = 0;  // no header at all
        batch->error = reader_->error();
        return Finish(batch);
      }
      transaction_file_ = info.kind == InputKind::kDeposits || info.kind == InputKind::kConsumption;
      std::string missing;
      columns_ok_ = batch->header.problem == CsvProblem::kNone &&
                    Intake::MapColumns(info.kind, batch->header.cells, &column_of_, &missing);
      width_ = batch->header.cells.size();
    }
    if (batch->rows.size() < kRowsPerBatch) batch->rows.resize(kRowsPerBatch);
    batch->preparsed.resize(kRowsPerBatch);
    batch->is_preparsed.assign(kRowsPerBatch, 0);
    while (batch->row_count < kRowsPerBatch) {
      CsvRow& row = batch->rows[batch->row_count];
      if (!reader_->Next(&row)) {
        batch->error = reader_->error();
        if (batch->error.empty() && !reader_->FileDigest(&batch->sha256, &batch->bytes)) {
          batch->error = "cannot compute the SHA-256 of " + info.file;
        }
        return Finish(batch);
      }
      if (transaction_file_ && columns_ok_ && row.problem == CsvProblem::kNone && row.cells.size() == width_) {
        batch->preparsed[batch->row_count] = Intake::Preparse(info.kind, column_of_, row.cells);
        batch->is_preparsed[batch->row_count] = 1;
      }
      ++batch->row_count;
    }
    return true;
  }

 private:
  bool Finish(RowBatch* batch) {
    batch->end_of_file = true;
    reader_.reset();
    ++file_;
    return true;
  }

  const std::string& dir_;
  const std::vector<InputFileInfo>& files_;
  size_t file_ = 0;
  std::unique_ptr<CsvReader> reader_;
  bool transaction_file_ = false;
  bool columns_ok_ = false;
  size_t width_ = 0;
  std::vector<int> column_of_;
};

// Runs a BatchSource on its own thread, handing batches over through a bounded
// queue and taking used ones back for reuse.
class ThreadedBatchSource {
 public:
  ThreadedBatchSource(const std::string& dir, const std::vector<InputFileInfo>& files) : source_(dir, files) {
    for (size_t i = 0; i < kBatchesInFlight; ++i) free_.push_back(std::make_unique<RowBatch>());
    thread_ = std::thread([this] { Run(); });
  }
  ~ThreadedBatchSource() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  // The next batch, or nullptr at the end. Give it back with Recycle.
  std::unique_ptr<RowBatch> Next() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return !ready_.empty() || finished_; });
    if (ready_.empty()) return nullptr;
    auto batch = std::move(ready_.front());
    ready_.pop_front();
    return batch;
  }
  void Recycle(std::unique_ptr<RowBatch> batch) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      free_.push_back(std::move(batch));
    }
    changed_.notify_all();
  }

 private:
  void Run() {
    for (;;) {
      std::unique_ptr<RowBatch> batch;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return !free_.empty() || stop_; });
        if (stop_) break;
        batch = std::move(free_.back());
        free_.pop_back();
      }
      const bool more = source_.Next(batch.get());
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (more) {
          ready_.push_back(std::move(batch));
        } else {
          finished_ = true;
        }
      }
      changed_.notify_all();
      if (!more) break;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    changed_.notify_all();
  }

  BatchSource source_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<RowBatch>> ready_, free_;
  bool finished_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace

bool LoadDataFolder(const std::string& dir, Intake* intake, const DataFolderOptions& options,
                    std::vector<InputFileInfo>* files, std::string* error) {
  if (!ListDataFiles(dir, files, error)) return false;
  // Room for the transaction rows, estimated from the files' sizes (rows of about 80 bytes).
  int64_t deposit_bytes = 0, consumption_bytes = 0;
  for (const auto& info : *files) {
    if (info.kind != InputKind::kDeposits && info.kind != InputKind::kConsumption) continue;
    std::error_code ec;
    const auto size = std::filesystem::file_size(std::filesystem::path(dir) / info.file, ec);
    if (!ec) (info.kind == InputKind::kDeposits ? deposit_bytes : consumption_bytes) += static_cast<int64_t>(size);
  }
  intake->ReserveTransactions(deposit_bytes / 80, consumption_bytes / 80);

  std::unique_ptr<ThreadedBatchSource> threaded;
  std::unique_ptr<BatchSource> inline_source;
  std::unique_ptr<RowBatch> inline_batch;
  if (options.threads >= 2) {
    threaded = std::make_unique<ThreadedBatchSource>(dir, *files);
  } else {
    inline_source = std::make_unique<BatchSource>(dir, *files);
    inline_batch = std::make_unique<RowBatch>();
  }
  auto next = [&]() -> std::unique_ptr<RowBatch> {
    if (threaded) return threaded->Next();
    if (!inline_source->Next(inline_batch.get())) return nullptr;
    return std::move(inline_batch);
  };
  auto recycle = [&](std::unique_ptr<RowBatch> batch) {
    if (threaded) {
      threaded->Recycle(std::move(batch));
    } else {
      inline_batch = std::move(batch);
    }
  };

  std::vector<std::string> header;
  int64_t rows = 0;
  while (auto batch = next()) {
    InputFileInfo& info = (*files)[batch->file];
    const std::string path = (std::filesystem::path(dir) / info.file).string();
    const auto& required = RequiredColumns(info.kind);
    if (batch->has_header) {
      if (batch->header.line == 0 || (!batch->error.empty() && batch->header.cells.empty())) {
        if (!batch->error.empty()) {
          *error = batch->error;
        } else {
          *error = path + ": the file is empty (no header row); expected a header row '" + JoinColumns(required) +
                   "' (a file with no rows still has its header, or may be left out unless it is required)";
        }
        return false;
      }
      const CsvRow& row = batch->header;
      if (row.problem != CsvProblem::kNone) {
        *error = path + ":" + std::to_string(row.line) + ": the header cannot be read: " + RowProblemDetail(row, {}) +
                 EncodingHint(path) + "; expected '" + JoinColumns(required) + "'";
        return false;
      }
      header = row.cells;
      std::string missing;
      if (!intake->BeginFile(info.kind, info.file, header, &missing)) {
        *error = path + ": the header has no column '" + missing + "'" + MissingColumnHint(header, missing) +
                 "; expected '" + JoinColumns(required) + "' (in any order)";
        return false;
      }
      rows = 0;
    }
    constexpr size_t kPrefetchDistance = 16;
    for (size_t i = 0; i < batch->row_count; ++i) {
      const CsvRow& row = batch->rows[i];
      if (i + kPrefetchDistance < batch->row_count && batch->is_preparsed[i + kPrefetchDistance]) {
        intake->Prefetch(batch->preparsed[i + kPrefetchDistance]);
      }
      if (batch->is_preparsed[i]) {
        intake->AddPreparsedRow(row.line, row.cells, batch->preparsed[i]);
      } else if (row.problem == CsvProblem::kNone) {
        intake->AddRow(row.line, row.cells);
      } else {
        intake->AddRow(row.line, row.cells, RowProblemCode(row.problem), RowProblemDetail(row, header));
      }
      if (intake->current_file_rejected() > options.max_rejects_per_file) {
        *error = path + ": more than " + std::to_string(options.max_rejects_per_file) +
                 " rejected rows (--max-rejects); refusing to settle from a file that is mostly unusable";
        return false;
      }
      if (options.progress && (++rows & 0xFFFF) == 0) options.progress(info.file, rows);
    }
    if (batch->end_of_file) {
      if (!batch->error.empty()) {
        *error = batch->error;
        return false;
      }
      info.sha256 = batch->sha256;
      info.bytes = batch->bytes;
      intake->EndFile();
    }
    recycle(std::move(batch));
  }
  return true;
}

}  // namespace carecard
