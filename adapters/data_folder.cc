#include "adapters/data_folder.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include <sys/resource.h>

#include "adapters/csv_chunks.h"
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

namespace {

template <typename CellList>
std::string ProblemDetail(CsvProblem problem, const CellList& cells, const std::vector<std::string>& header) {
  auto column = [&](size_t i) {
    return "column " + std::to_string(i + 1) + (i < header.size() ? " ('" + header[i] + "')" : std::string());
  };
  // With these two problems the reader kept every cell whole (csv_reader.h), so
  // the cell at fault can be named.
  if (problem == CsvProblem::kInvalidUtf8) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (!IsValidUtf8(cells[i])) {
        return "the cell in " + column(i) +
               " is not valid UTF-8: files must be saved as UTF-8 (was it saved as GBK/ANSI, or does it hold binary data?)";
      }
    }
  }
  if (problem == CsvProblem::kFieldTooLong) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (cells[i].size() > kMaxFieldBytes) {
        return "the cell in " + column(i) + " is " + std::to_string(cells[i].size()) + " bytes long; the limit is " +
               std::to_string(kMaxFieldBytes) + " bytes per cell";
      }
    }
  }
  return std::string(CsvProblemText(problem));
}

}  // namespace

std::string RowProblemDetail(const CsvRow& row, const std::vector<std::string>& header) {
  return ProblemDetail(row.problem, row.cells, header);
}

std::string RowProblemDetail(const CsvRowView& row, const std::vector<std::string>& header) {
  return ProblemDetail(row.problem, row.cells, header);
}

ExceptionCode RowProblemExceptionCode(CsvProblem p) {
  switch (p) {
    case CsvProblem::kInvalidUtf8: return ExceptionCode::kBadEncoding;
    case CsvProblem::kFieldTooLong:
    case CsvProblem::kRowTooLong:
    case CsvProblem::kTooManyColumns: return ExceptionCode::kTooLong;
    default: return ExceptionCode::kBadRow;
  }
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

std::string EmptyFileError(const std::string& path, InputKind kind) {
  return path + ": the file is empty (no header row); expected a header row '" + JoinColumns(RequiredColumns(kind)) +
         "' (a file with no rows still has its header, or may be left out unless it is required)";
}

// Checks a header row and maps it; false with *error when it refuses the run.
template <typename Row>
bool AcceptHeader(SettlementRun* run, uint16_t file, InputKind kind, const std::string& path, const Row& row,
                  std::vector<std::string>* header, std::string* error) {
  const auto& required = RequiredColumns(kind);
  if (row.problem != CsvProblem::kNone) {
    *error = path + ":" + std::to_string(row.line) + ": the header cannot be read: " + RowProblemDetail(row, {}) +
             EncodingHint(path) + "; expected '" + JoinColumns(required) + "'";
    return false;
  }
  header->assign(row.cells.begin(), row.cells.end());
  std::string missing;
  if (!run->SetHeader(file, *header, &missing)) {
    *error = path + ": the header has no column '" + missing + "'" + MissingColumnHint(*header, missing) + "; expected '" +
             JoinColumns(required) + "' (in any order)";
    return false;
  }
  return true;
}

std::string TooManyRejects(const std::string& path, int64_t max_rejects) {
  return path + ": more than " + std::to_string(max_rejects) +
         " rejected rows (--max-rejects); refusing to settle from a file that is mostly unusable";
}

// `reused_block` is the registry files' one read buffer, carried from file to file.
bool LoadRegistryFile(const std::string& dir, uint16_t file, InputFileInfo* info, SettlementRun* run,
                      const DataFolderOptions& options, CsvBlock* reused_block, std::string* error) {
  CsvBlock& block = *reused_block;
  const std::string path = (std::filesystem::path(dir) / info->file).string();
  std::error_code size_error;
  const auto size = std::filesystem::file_size(path, size_error);
  auto reader = CsvChunkReader::Open(path, options.block_bytes, error);
  if (!reader) return false;
  CsvRowView row;
  std::vector<std::string> header;
  bool have_header = false;
  int64_t rows = 0;
  bool reserved = false;
  while (reader->Next(&block)) {
    if (!reserved && !size_error && block.end > block.begin) {
      // Room for the rows the file holds, estimated from the first block's
      // lines per byte, so that the indexes do not grow while it is read.
      reserved = true;
      const auto lines = static_cast<uint64_t>(CountLineFeeds(block.bytes.data() + block.begin, block.end - block.begin));
      const uint64_t estimate = (lines + 1) * static_cast<uint64_t>(size) / (block.end - block.begin);
      run->ReserveRegistryRows(file, static_cast<size_t>(estimate + estimate / 16 + 16));
    }
    if (block.long_row) {
      if (!have_header) {
        row.line = block.long_row_line;
        row.problem = block.long_row_problem;
        AcceptHeader(run, file, info->kind, path, row, &header, error);  // refuses: too long
        return false;
      }
      run->AddProblemRow(file, block.long_row_line, RowProblemExceptionCode(block.long_row_problem),
                         CsvProblemText(block.long_row_problem));
    } else {
      CsvBlockParser parser(block.bytes.data() + block.begin, block.bytes.data() + block.end, block.first_line,
                            block.offset);
      // Rows are parsed a few ahead of their checks, so that the index slots
      // they will look up are already on their way into the cache.
      constexpr size_t kAhead = 8;
      CsvRowView ahead[kAhead];
      size_t parsed = 0, checked = 0;
      for (;;) {
        while (parsed - checked < kAhead && parser.Next(&ahead[parsed % kAhead])) {
          const CsvRowView& r = ahead[parsed % kAhead];
          if (have_header && r.problem == CsvProblem::kNone) run->PrefetchRegistryRow(file, Cells(r.cells));
          ++parsed;
          if (!have_header) break;  // the header first: it maps the columns the others are read by
        }
        if (checked == parsed) break;
        CsvRowView& next = ahead[checked++ % kAhead];
        if (!have_header) {
          if (!AcceptHeader(run, file, info->kind, path, next, &header, error)) return false;
          have_header = true;
          continue;
        }
        if (next.line > kMaxLinesPerFile) {
          *error = path + ": more than 4,294,967,295 lines; split the file";
          return false;
        }
        if (next.problem != CsvProblem::kNone) {
          run->AddProblemRow(file, next.line, RowProblemExceptionCode(next.problem), RowProblemDetail(next, header));
        } else {
          run->AddRegistryRow(file, next.line, Cells(next.cells));
        }
        if (run->rejected(file) > options.max_rejects_per_file) {
          *error = TooManyRejects(path, options.max_rejects_per_file);
          return false;
        }
        if (options.progress && (++rows & 0xFFFF) == 0) options.progress(info->file, rows);
      }
    }
  }
  if (!reader->error().empty()) {
    *error = reader->error();
    return false;
  }
  if (!have_header) {
    *error = EmptyFileError(path, info->kind);
    return false;
  }
  if (!reader->Digest(&info->sha256, &info->bytes)) {
    *error = "cannot compute the SHA-256 of " + info->file;
    return false;
  }
  return true;
}

// Reads the transaction files on `threads` threads: a thread reads the next
// block of a file no other thread is reading (hashing it and finding where its
// rows end), or parses a block already read; blocks in flight are bounded.
class TransactionPipeline {
 public:
  // `hashed` (by file index): files already hashed, with their identity then.
  // `partial` (by file index): files whose hash was begun then, to be carried on.
  TransactionPipeline(const std::string& dir, std::vector<InputFileInfo>* infos, std::vector<uint16_t> files,
                      SettlementRun* run, const DataFolderOptions& options, const std::vector<bool>& hashed,
                      const std::vector<FileIdentity>& identities,
                      std::vector<std::unique_ptr<PartialSha256>>* partial)
      : dir_(dir), infos_(infos), run_(run), options_(options) {
    for (uint16_t f : files) {
      FileState s;
      s.file = f;
      s.hashed = hashed[f];
      s.identity = identities[f];
      if (!s.hashed && (*partial)[f]) {
        s.resume = std::move((*partial)[f]);
        s.resumed = true;
      }
      s.path = (std::filesystem::path(dir_) / (*infos_)[f].file).string();
      files_.push_back(std::move(s));
    }
    max_in_flight_ = static_cast<size_t>(std::max(options.threads, 1)) * 2 + 1;
  }

  bool Run(std::string* error) {
    const int threads = std::max(1, options_.threads);
    std::vector<SettlementRun::Worker*> workers;
    for (int t = 0; t < threads; ++t) workers.push_back(run_->NewWorker());
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back([this, w = workers[static_cast<size_t>(t)]] { Loop(w); });
    Loop(workers[0]);
    for (auto& t : pool) t.join();
    for (auto* w : workers) w->Flush();
    if (failed_) {
      *error = error_;
      return false;
    }
    return true;
  }

  const std::vector<std::string>& header(uint16_t file) const {
    for (const auto& f : files_) {
      if (f.file == file) return f.header;
    }
    static const std::vector<std::string> none;
    return none;
  }

 private:
  struct FileState {
    uint16_t file = 0;
    std::string path;
    std::unique_ptr<CsvChunkReader> reader;
    bool started = false, busy = false, finished = false;
    bool hashed = false;      // hashed before, while the registry was read
    bool resumed = false;     // or its hash begun then, carried on by the reader
    std::unique_ptr<PartialSha256> resume;
    FileIdentity identity;    // what it was then (hashed or resumed)
    uint64_t bytes_read = 0;
    std::vector<std::string> header;
  };
  struct Task {
    size_t file_state;
    std::unique_ptr<CsvBlock> block;
  };

  void Fail(const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failed_) {
      failed_ = true;
      error_ = why;
    }
    changed_.notify_all();
  }

  void Loop(SettlementRun::Worker* worker) {
    try {
      LoopOrThrow(worker);
    } catch (const std::exception& e) {
      Fail(e.what());
    }
  }

  void LoopOrThrow(SettlementRun::Worker* worker) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (failed_) return;
      if (!ready_.empty()) {
        Task task = std::move(ready_.front());
        ready_.pop_front();
        lock.unlock();
        Parse(worker, files_[task.file_state], *task.block);
        lock.lock();
        free_.push_back(std::move(task.block));
        --in_flight_;
        changed_.notify_all();
        continue;
      }
      size_t pick = files_.size();
      if (in_flight_ < max_in_flight_) {
        for (size_t i = 0; i < files_.size(); ++i) {
          if (!files_[i].busy && !files_[i].finished) {
            pick = i;
            break;
          }
        }
      }
      if (pick < files_.size()) {
        FileState& f = files_[pick];
        f.busy = true;
        ++in_flight_;
        std::unique_ptr<CsvBlock> block;
        if (!free_.empty()) {
          block = std::move(free_.back());
          free_.pop_back();
        } else {
          block = std::make_unique<CsvBlock>();
        }
        lock.unlock();
        const bool got = Read(f, block.get());
        lock.lock();
        f.busy = false;
        if (got) {
          ready_.push_back(Task{pick, std::move(block)});
        } else {
          f.finished = true;
          free_.push_back(std::move(block));
          --in_flight_;
        }
        changed_.notify_all();
        continue;
      }
      bool all_done = in_flight_ == 0;
      for (const auto& f : files_) all_done = all_done && f.finished;
      if (all_done) return;
      changed_.wait(lock);
    }
  }

  // Reads the next block of `f`; false at its end (or on failure).
  bool Read(FileState& f, CsvBlock* block) {
    InputFileInfo& info = (*infos_)[f.file];
    std::string error;
    if (!f.started) {
      f.started = true;
      f.reader = CsvChunkReader::Open(f.path, options_.block_bytes, &error, !f.hashed, std::move(f.resume));
      if (!f.reader) return Fail(error), false;
      if (!f.reader->Next(block)) {
        Fail(f.reader->error().empty() ? EmptyFileError(f.path, info.kind) : f.reader->error());
        return false;
      }
      // The header is the first row; blocks of blank lines before it hold none.
      CsvRowView row;
      for (;;) {
        if (block->long_row) {
          row.line = block->long_row_line;
          row.problem = block->long_row_problem;
          AcceptHeader(run_, f.file, info.kind, f.path, row, &f.header, &error);  // refuses: too long
          return Fail(error), false;
        }
        CsvBlockParser parser(block->bytes.data() + block->begin, block->bytes.data() + block->end, block->first_line,
                              block->offset);
        if (parser.Next(&row)) {
          if (!AcceptHeader(run_, f.file, info.kind, f.path, row, &f.header, &error)) return Fail(error), false;
          // The rest of the block holds rows.
          const auto consumed = static_cast<size_t>(parser.position() - (block->bytes.data() + block->begin));
          block->begin += consumed;
          block->offset += consumed;
          block->first_line = parser.line();
          break;
        }
        if (block->ends_file || !f.reader->Next(block)) {
          Fail(f.reader->error().empty() ? EmptyFileError(f.path, info.kind) : f.reader->error());
          return false;
        }
      }
      return true;
    }
    if (f.reader->Next(block)) return true;
    if (!f.reader->error().empty()) return Fail(f.reader->error()), false;
    if (f.hashed || f.resumed) {
      // Read twice: the hash holds only if the file is the one that was hashed
      // (or whose start was).
      FileIdentity now;
      if (!IdentifyFile(f.path, &now, &error)) return Fail(error), false;
      if (f.resumed && now == f.identity && !f.reader->Digest(&info.sha256, &info.bytes)) {
        return Fail("cannot compute the SHA-256 of " + info.file), false;
      }
      if (!(now == f.identity) || info.bytes != now.size) {
        return Fail(f.path + " changed while it was read (size or modification time); run again when it is complete"),
               false;
      }
      return false;
    }
    if (!f.reader->Digest(&info.sha256, &info.bytes)) return Fail("cannot compute the SHA-256 of " + info.file), false;
    return false;
  }

  void Parse(SettlementRun::Worker* worker, const FileState& f, const CsvBlock& block) {
    const uint16_t file = f.file;
    if (block.long_row) {
      worker->AddProblemRow(file, block.long_row_line, RowProblemExceptionCode(block.long_row_problem),
                            CsvProblemText(block.long_row_problem));
      return;
    }
    CsvBlockParser parser(block.bytes.data() + block.begin, block.bytes.data() + block.end, block.first_line, block.offset);
    // Rows are parsed a few ahead of their checks, so that the card they name
    // is on its way into the cache when it is looked up.
    constexpr size_t kAhead = 8;
    CsvRowView* ahead = ahead_.rows;
    size_t parsed = 0, checked = 0;
    for (;;) {
      while (parsed - checked < kAhead && parser.Next(&ahead[parsed % kAhead])) {
        const CsvRowView& r = ahead[parsed % kAhead];
        if (r.problem == CsvProblem::kNone) worker->Prefetch(file, Cells(r.cells));
        ++parsed;
      }
      if (checked == parsed) break;
      const CsvRowView& row = ahead[checked++ % kAhead];
      if (row.line > kMaxLinesPerFile) throw RefusedError(f.path + ": more than 4,294,967,295 lines; split the file");
      if (row.problem != CsvProblem::kNone) {
        worker->AddProblemRow(file, row.line, RowProblemExceptionCode(row.problem), RowProblemDetail(row, f.header));
      } else {
        worker->AddRow(file, row.line, row.offset, Cells(row.cells));
      }
    }
    if (worker->rejected(file) > options_.max_rejects_per_file) {
      throw RefusedError(TooManyRejects(f.path, options_.max_rejects_per_file));
    }
    if (options_.progress) {
      const int64_t rows = rows_.fetch_add(parser.line() - block.first_line) + (parser.line() - block.first_line);
      std::lock_guard<std::mutex> lock(progress_mutex_);
      options_.progress((*infos_)[file].file, rows);
    }
  }

  const std::string& dir_;
  std::vector<InputFileInfo>* infos_;
  SettlementRun* run_;
  const DataFolderOptions& options_;
  std::vector<FileState> files_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Task> ready_;
  std::vector<std::unique_ptr<CsvBlock>> free_;
  size_t in_flight_ = 0, max_in_flight_ = 3;
  bool failed_ = false;
  std::string error_;
  std::atomic<int64_t> rows_{0};
  std::mutex progress_mutex_;
  // Rows parsed ahead, per thread (each thread parses one block at a time).
  struct Ahead {
    CsvRowView rows[8];
  };
  static thread_local Ahead ahead_;
};

thread_local TransactionPipeline::Ahead TransactionPipeline::ahead_;

// CPU time of every thread of the process so far (user + system), for CARECARD_TIMINGS.
int64_t ProcessCpuMs() {
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  return (int64_t{usage.ru_utime.tv_sec} + usage.ru_stime.tv_sec) * 1000 +
         (int64_t{usage.ru_utime.tv_usec} + usage.ru_stime.tv_usec) / 1000;
}

}  // namespace

uint64_t TransactionBytes(const std::string& dir, const std::vector<InputFileInfo>& files) {
  uint64_t total = 0;
  for (const auto& info : files) {
    if (!IsTransactionKind(info.kind)) continue;
    std::error_code ec;
    const auto size = std::filesystem::file_size(std::filesystem::path(dir) / info.file, ec);
    if (!ec) total += size;
  }
  return total;
}

bool LoadDataFolder(const std::string& dir, const std::vector<InputFileInfo>& listed, SettlementRun* run,
                    const DataFolderOptions& options, std::vector<InputFileInfo>* files,
                    std::unique_ptr<RowFetcher>* fetcher, std::string* error) {
  *files = listed;
  const bool timings = std::getenv("CARECARD_TIMINGS") != nullptr;
  auto started = std::chrono::steady_clock::now();
  int64_t cpu_started = timings ? ProcessCpuMs() : 0;
  auto report = [&](const char* what) {
    if (!timings) return;
    const auto now = std::chrono::steady_clock::now();
    const int64_t cpu = ProcessCpuMs();
    std::cerr << "timing   " << what << ": " << std::chrono::duration_cast<std::chrono::milliseconds>(now - started).count()
              << " ms (cpu " << cpu - cpu_started << " ms)\n";
    started = now;
    cpu_started = cpu;
  };
  std::vector<uint16_t> index;
  for (const auto& info : *files) index.push_back(run->AddFile(info.kind, info.file));
  // With a second thread, the transaction files are hashed while the registry
  // is read (the registry must be complete before their rows can be checked).
  std::vector<bool> hashed(files->size(), false);
  std::vector<FileIdentity> identities(files->size());
  // A file half hashed when the registry is complete: its reader carries the hash on.
  std::vector<std::unique_ptr<PartialSha256>> partial(files->size());
  std::atomic<bool> stop_hashing{false};
  std::thread hasher;
  if (options.threads >= 2) {
    hasher = std::thread([&] {
      for (size_t i = 0; i < files->size() && !stop_hashing; ++i) {
        InputFileInfo& info = (*files)[i];
        if (!IsTransactionKind(info.kind)) continue;
        std::string ignored;  // a file that cannot be hashed now is hashed, or refused, when it is read
        const std::string path = (std::filesystem::path(dir) / info.file).string();
        if (HashFile(path, &info.sha256, &info.bytes, &identities[i], &stop_hashing, &partial[i], &ignored)) {
          hashed[i] = true;
        }
      }
    });
  }
  struct JoinHasher {
    std::thread& t;
    std::atomic<bool>& stop;
    ~JoinHasher() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_hasher{hasher, stop_hashing};
  {
    CsvBlock registry_block;  // let go before the transaction files' blocks are taken
    for (size_t i = 0; i < files->size(); ++i) {
      if (IsTransactionKind((*files)[i].kind)) continue;
      if (!LoadRegistryFile(dir, index[i], &(*files)[i], run, options, &registry_block, error)) return false;
      if (timings) report((*files)[i].file.c_str());
    }
  }
  run->FinishRegistry();
  stop_hashing = true;
  if (hasher.joinable()) hasher.join();
  report("registry files");
  std::vector<uint16_t> transaction_files;
  for (size_t i = 0; i < files->size(); ++i) {
    if (IsTransactionKind((*files)[i].kind)) transaction_files.push_back(index[i]);
  }
  TransactionPipeline pipeline(dir, files, transaction_files, run, options, hashed, identities, &partial);
  if (!pipeline.Run(error)) return false;
  report("transaction files");
  std::vector<std::string> paths(files->size());
  std::vector<std::vector<int>> columns(files->size());
  std::vector<size_t> widths(files->size(), 0);
  for (uint16_t f : transaction_files) {
    paths[f] = (std::filesystem::path(dir) / (*files)[f].file).string();
    columns[f] = run->txn_file(f).column_of;
    widths[f] = run->txn_file(f).width;
  }
  *fetcher = std::make_unique<FileRowFetcher>(std::move(paths), std::move(columns), std::move(widths));
  return true;
}

}  // namespace carecard
