#include "batch/outputs.h"

#include <openssl/evp.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

#include "adapters/csv_chunks.h"
#include "adapters/csv_reader.h"
#include "adapters/csv_writer.h"

namespace carecard {
namespace {

constexpr size_t kFlushBytes = 1u << 20;

// Rows of a file go into pieces: a piece is a range of rows rendered into its
// own buffers (chunks of about kFlushBytes), so that the pieces of one file
// can be rendered on several threads while one writer hashes and writes the
// chunks in order. A piece's bytes depend only on its rows, so where a file
// is cut and who renders which piece never changes a byte.
class PieceSink {
 public:
  virtual ~PieceSink() = default;
  // The next chunk of piece `piece` of file `file`, in the piece's order.
  virtual void Emit(size_t file, size_t piece, std::string&& chunk) = 0;
  // An empty buffer for the next chunk: one already written, handed back, or a
  // new one with room for kFlushBytes and a row past them.
  virtual std::string Buffer() = 0;
};

// Renders one piece: cells go through a CsvWriter buffer, handed to the
// PieceSink whenever it passes kFlushBytes and at Finish.
class PieceRenderer {
 public:
  PieceRenderer(PieceSink* sink, size_t file, size_t piece) : sink_(sink), file_(file), piece_(piece) {
    w_.Adopt(sink_->Buffer());
  }
  PieceRenderer(const PieceRenderer&) = delete;
  PieceRenderer& operator=(const PieceRenderer&) = delete;

  void Cell(std::string_view v) { w_.Cell(v); }
  // The engine's own words (status, code, period): never quoted or guarded.
  void Word(std::string_view v) { w_.RawCell(v); }
  void Cell(Money m) {
    char buffer[Money::kMaxFormattedBytes];
    w_.RawCell(std::string_view(buffer, m.FormatTo(buffer)));  // -12.00 is a number, not a formula
  }
  void Cell(int64_t n) {
    char buffer[24];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, n);
    (void)ec;
    w_.RawCell(std::string_view(buffer, static_cast<size_t>(end - buffer)));
  }
  void Month(int32_t index) {
    if (index < 0) return w_.RawCell({});
    char buffer[16];
    const YearMonth m = YearMonth::FromIndex(index);
    const int year = m.year();
    buffer[0] = static_cast<char>('0' + year / 1000 % 10);
    buffer[1] = static_cast<char>('0' + year / 100 % 10);
    buffer[2] = static_cast<char>('0' + year / 10 % 10);
    buffer[3] = static_cast<char>('0' + year % 10);
    buffer[4] = '-';
    buffer[5] = static_cast<char>('0' + m.month() / 10);
    buffer[6] = static_cast<char>('0' + m.month() % 10);
    w_.RawCell(std::string_view(buffer, 7));
  }
  void Row(std::initializer_list<std::string_view> cells) {
    for (auto c : cells) w_.Cell(c);
    EndRow();
  }
  void EndRow() {
    w_.EndRow();
    if (w_.bytes().size() >= kFlushBytes) {
      sink_->Emit(file_, piece_, w_.Release());
      w_.Adopt(sink_->Buffer());
    }
  }
  // Hands over what is left; the piece is complete after it.
  void Finish() {
    if (!w_.bytes().empty()) sink_->Emit(file_, piece_, w_.Release());
  }

 private:
  PieceSink* sink_;
  size_t file_, piece_;
  CsvWriter w_;
};

// One output file: how many pieces it has and how to render one.
struct FilePlan {
  std::string name;
  size_t pieces = 1;
  std::function<void(size_t piece, PieceRenderer& w)> render;
};

// The rows of piece `piece` when a file of `rows` rows is cut every `per_piece` rows.
struct RowRange {
  size_t begin, end;
};
RowRange PieceRows(size_t piece, size_t rows, size_t per_piece) {
  const size_t begin = std::min(rows, piece * per_piece);
  return {begin, std::min(rows, begin + per_piece)};
}
size_t PiecesFor(size_t rows, size_t per_piece) { return std::max<size_t>(1, (rows + per_piece - 1) / per_piece); }

// Hashes, counts and writes one file's chunks, in order.
class FileWriter {
 public:
  FileWriter(OutputSink* sink, const std::string& name) : file_(sink->Create(name)), sha_(EVP_MD_CTX_new()) {
    info_.file = name;
    if (!sha_ || EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr) != 1) throw std::runtime_error("cannot start SHA-256");
  }
  ~FileWriter() { EVP_MD_CTX_free(sha_); }
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void Write(const std::string& bytes) {
    if (bytes.empty()) return;
    EVP_DigestUpdate(sha_, bytes.data(), bytes.size());
    info_.bytes += bytes.size();
    info_.lines += CountLineFeeds(bytes.data(), bytes.size());
    file_->Write(bytes);
  }
  OutputInfo Finish(std::chrono::steady_clock::time_point started) {
    const auto t0 = std::chrono::steady_clock::now();
    file_->Finish();
    if (std::getenv("CARECARD_TIMINGS")) {
      std::fprintf(stderr, "timing     %s: written by %lld ms, synced in %lld ms\n", info_.file.c_str(),
                   static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(t0 - started).count()),
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(sha_, md, &length) != 1) throw std::runtime_error("cannot finish SHA-256");
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < length; ++i) {
      info_.sha256.push_back(kHex[md[i] >> 4]);
      info_.sha256.push_back(kHex[md[i] & 15]);
    }
    return info_;
  }

 private:
  std::unique_ptr<OutputFile> file_;
  EVP_MD_CTX* sha_;
  OutputInfo info_;
};

// Renders the files of `plans`: on the calling thread alone when threads <= 1,
// else on `threads` render threads while the calling thread and up to
// threads - 1 helpers write (WriteLoop). Pieces are
// taken in plan order; a render thread starts a piece only while fewer than
// kMaxChunksWaiting chunks wait to be written, so memory stays bounded (a piece
// under way may add its chunks; they are at most a piece's worth).
class PieceScheduler : public PieceSink {
 public:
  PieceScheduler(OutputSink* sink, std::vector<FilePlan> plans, int threads)
      : plans_(std::move(plans)), threads_(std::max(1, threads)) {
    for (const auto& plan : plans_) {
      if (plan.pieces < 1 || !plan.render) throw std::logic_error("an output file without pieces: " + plan.name);
      files_.emplace_back(std::make_unique<FileState>(sink, plan));
      for (size_t piece = 0; piece < plan.pieces; ++piece) tasks_.push_back({files_.size() - 1, piece});
    }
  }

  std::vector<OutputInfo> Run() {
    std::vector<OutputInfo> infos;
    if (threads_ <= 1) {
      serial_ = true;
      for (const Task& t : tasks_) {
        PieceRenderer w(this, t.file, t.piece);
        plans_[t.file].render(t.piece, w);
        w.Finish();
        FileState& f = *files_[t.file];
        if (t.piece + 1 == plans_[t.file].pieces) infos.push_back(f.writer.Finish(started_));
      }
      return infos;
    }
    std::vector<std::thread> pool;
    for (int i = 0; i < threads_; ++i) pool.emplace_back([this] { RenderLoop(); });
    try {
      WriteLoop(&infos);
    } catch (...) {
      Fail(std::current_exception());
    }
    for (auto& t : pool) t.join();
    if (failure_) std::rethrow_exception(failure_);
    return infos;
  }

  void Emit(size_t file, size_t piece, std::string&& chunk) override {
    if (serial_) {
      files_[file]->writer.Write(chunk);
      return HandBack(std::move(chunk));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    files_[file]->pieces[piece].chunks.push_back(std::move(chunk));
    ++waiting_;
    changed_.notify_all();
  }

  std::string Buffer() override {
    {
      std::lock_guard<std::mutex> lock(buffers_mutex_);
      if (!buffers_.empty()) {
        std::string b = std::move(buffers_.back());
        buffers_.pop_back();
        return b;
      }
    }
    std::string b;
    b.reserve(kFlushBytes + kFlushBytes / 8);
    return b;
  }

 private:
  static constexpr size_t kMaxChunksWaiting = 16;
  // Written chunks kept for reuse: fresh megabytes would each be faulted in
  // (a page fault per 4 KiB) and grown by copying. The cap keeps memory at
  // what the renderers and the writer hold at once; an outsized buffer (a piece
  // with a very long row) is let go.
  size_t MaxSpareBuffers() const { return 2 * static_cast<size_t>(threads_) + 2; }
  void HandBack(std::string&& chunk) {
    if (chunk.capacity() > 4 * kFlushBytes) return;
    std::lock_guard<std::mutex> lock(buffers_mutex_);
    if (buffers_.size() < MaxSpareBuffers()) buffers_.push_back(std::move(chunk));
  }
  struct Task {
    size_t file, piece;
  };
  struct Piece {
    std::deque<std::string> chunks;
    bool done = false;
  };
  struct FileState {
    FileState(OutputSink* sink, const FilePlan& plan) : writer(sink, plan.name), pieces(plan.pieces) {}
    FileWriter writer;
    std::vector<Piece> pieces;
    size_t head = 0;       // the piece being written
    bool writing = false;  // a writer has taken a chunk of it (WriteWork)
  };

  void Fail(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failure_) failure_ = e;
    changed_.notify_all();
  }

  void RenderLoop() {
    try {
      for (;;) {
        Task t;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          changed_.wait(lock, [&] { return failure_ || next_task_ == tasks_.size() || waiting_ < kMaxChunksWaiting; });
          if (failure_ || next_task_ == tasks_.size()) return;
          t = tasks_[next_task_++];
        }
        PieceRenderer w(this, t.file, t.piece);
        plans_[t.file].render(t.piece, w);
        w.Finish();
        std::lock_guard<std::mutex> lock(mutex_);
        files_[t.file]->pieces[t.piece].done = true;
        changed_.notify_all();
      }
    } catch (...) {
      Fail(std::current_exception());
    }
  }

  // Writes every file's chunks in order, each file as soon as its next chunk
  // is there, on the calling thread and helpers: one writer a file at a time
  // (a file's hash takes its chunks in order), but different files at once, so
  // that hashing and copying the largest file is not queued behind the others.
  // Infos come in plan order, whoever finished first.
  void WriteLoop(std::vector<OutputInfo>* infos) {
    syncing_.resize(files_.size());
    struct Collect {  // every sync ends before the files it syncs go away
      std::vector<std::future<OutputInfo>>& syncing;
      ~Collect() {
        for (auto& s : syncing) {
          if (s.valid()) s.wait();
        }
      }
    } collect{syncing_};
    const size_t writers = std::min(static_cast<size_t>(threads_), files_.size());
    std::vector<std::thread> helpers;
    for (size_t i = 1; i < writers; ++i) {
      helpers.emplace_back([this] {
        try {
          WriteWork();
        } catch (...) {
          Fail(std::current_exception());
        }
      });
    }
    try {
      WriteWork();
    } catch (...) {
      Fail(std::current_exception());
    }
    for (auto& h : helpers) h.join();
    {
      std::lock_guard<std::mutex> lock(mutex_);  // render threads may still be failing
      if (failure_) return;
    }
    for (auto& s : syncing_) infos->push_back(s.get());
  }

  // One writer's share of WriteLoop: returns when every file is written (or a failure).
  void WriteWork() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (finished_ < files_.size()) {
      if (failure_) return;
      bool progressed = false;
      for (size_t i = 0; i < files_.size(); ++i) {
        FileState& f = *files_[i];
        if (f.writing || f.head == f.pieces.size()) continue;
        Piece& piece = f.pieces[f.head];
        if (!piece.chunks.empty()) {
          std::string chunk = std::move(piece.chunks.front());
          piece.chunks.pop_front();
          --waiting_;
          f.writing = true;
          changed_.notify_all();
          lock.unlock();
          struct Release {  // the file is let go however the write ends
            std::unique_lock<std::mutex>& lock;
            FileState& f;
            ~Release() {
              if (!lock.owns_lock()) lock.lock();
              f.writing = false;
            }
          } release{lock, f};
          f.writer.Write(chunk);
          HandBack(std::move(chunk));
          lock.lock();
          progressed = true;
        } else if (piece.done) {
          ++f.head;
          progressed = true;
          if (f.head == f.pieces.size()) {
            // Syncing waits for the disk: the other files are written meanwhile.
            syncing_[i] = std::async(std::launch::async, [this, &f] { return f.writer.Finish(started_); });
            ++finished_;
            changed_.notify_all();
          }
        }
      }
      if (!progressed) changed_.wait(lock);
    }
  }

  std::vector<FilePlan> plans_;
  const int threads_;
  bool serial_ = false;
  std::vector<std::unique_ptr<FileState>> files_;
  std::vector<Task> tasks_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t next_task_ = 0;
  size_t waiting_ = 0;  // chunks emitted, not yet written
  size_t finished_ = 0;  // files written whole
  std::vector<std::future<OutputInfo>> syncing_;  // by file
  std::exception_ptr failure_;
  std::mutex buffers_mutex_;  // apart from mutex_: taking a buffer never waits on the scheduler
  std::vector<std::string> buffers_;
};

class MemoryFile : public OutputFile {
 public:
  MemoryFile(std::mutex* mutex, std::string* target) : mutex_(mutex), target_(target) {}
  void Write(std::string_view bytes) override { bytes_.append(bytes); }
  void Finish() override {
    std::lock_guard<std::mutex> lock(*mutex_);
    *target_ = std::move(bytes_);
  }

 private:
  std::mutex* mutex_;
  std::string* target_;
  std::string bytes_;
};

}  // namespace

std::unique_ptr<OutputFile> MemoryOutputSink::Create(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::make_unique<MemoryFile>(&mutex_, &files_[name]);
}

OutputInfo WriteWholeFile(OutputSink* sink, const std::string& name, std::string_view bytes) {
  auto file = sink->Create(name);
  file->Write(bytes);
  file->Finish();
  OutputInfo info;
  info.file = name;
  info.bytes = bytes.size();
  info.lines = CountLineFeeds(bytes.data(), bytes.size());
  info.sha256 = Sha256Hex(bytes);
  return info;
}

std::vector<OutputInfo> RenderSettlementFiles(const PayoutPeriod& period, const Policy& policy, const RunResult& run,
                                              const BookState& book, OutputSink* sink, int threads, size_t rows_per_piece) {
  rows_per_piece = std::max<size_t>(1, rows_per_piece);
  const std::string p = period.ToString();
  const Registry& reg = run.registry;
  const SettlementResult& r = run.settlement;
  std::vector<std::string> versions;
  for (const auto& v : policy.versions) versions.push_back(policy.RuleVersion(v));
  // Plans in the order pieces are taken: the exceptions (one piece: a merge of
  // sorted runs) first, as the longest piece; the two large files in pieces;
  // the small ones last.
  std::vector<FilePlan> plans;
  plans.push_back({"exceptions.csv", 1, [&](size_t, PieceRenderer& w) {
                     w.Row({"code", "severity", "file", "line", "txn_id", "card_no", "person_id", "month", "detail"});
                     const FileNames& files = *run.files;
                     r.exceptions.ForEach([&](const ExceptionView& e) {
                       w.Word(ExceptionCodeName(e.code));
                       w.Word(SeverityName(e.severity()));
                       w.Cell(files[e.file]);
                       w.Cell(e.line);
                       w.Cell(e.txn_id);
                       w.Cell(e.card_no);
                       w.Cell(e.person_id);
                       w.Month(e.month);
                       w.Cell(e.detail);
                       w.EndRow();
                     });
                   }});
  plans.push_back({"card_months.csv", PiecesFor(r.card_months.size(), rows_per_piece), [&](size_t piece, PieceRenderer& w) {
                     if (piece == 0) {
                       w.Row({"period", "month", "card_no", "person_id", "center_id", "card_type", "net_deposit", "tier",
                              "subsidy", "status", "reason", "rule_version"});
                     }
                     const RowRange rows = PieceRows(piece, r.card_months.size(), rows_per_piece);
                     for (size_t i = rows.begin; i < rows.end; ++i) {
                       const CardMonth& cm = r.card_months[i];
                       const Card& card = reg.card(cm.card);
                       w.Word(p);
                       w.Month(cm.month.index());
                       w.Cell(reg.card_no(cm.card));
                       w.Cell(reg.person_id(reg.elder(card.elder)));
                       w.Cell(reg.center_id(card.center));
                       w.Cell(int64_t{card.card_type});
                       w.Cell(cm.net_deposit);
                       if (cm.tier) {
                         w.Cell(int64_t{cm.tier});
                       } else {
                         w.Word(std::string_view());
                       }
                       w.Cell(cm.subsidy);
                       w.Word(CardMonthStatusName(cm.status));
                       w.Word(cm.reason_name());
                       w.Cell(cm.version >= 0 ? std::string_view(versions[static_cast<size_t>(cm.version)]) : std::string_view());
                       w.EndRow();
                     }
                   }});
  plans.push_back({"statements.csv", PiecesFor(r.statements.size(), rows_per_piece), [&](size_t piece, PieceRenderer& w) {
                     if (piece == 0) {
                       w.Row({"period", "card_no", "center_id", "opening", "deposits", "reversals", "subsidies",
                              "consumption", "refunds", "closing"});
                     }
                     const RowRange rows = PieceRows(piece, r.statements.size(), rows_per_piece);
                     for (size_t i = rows.begin; i < rows.end; ++i) {
                       const auto& s = r.statements[i];
                       w.Word(p);
                       if (s.card >= 0) {
                         w.Cell(reg.card_no(s.card));
                         w.Cell(reg.center_id(reg.card(s.card).center));
                       } else {
                         const BookState::Card& bc = book.cards[static_cast<size_t>(s.book_card)];
                         w.Cell(bc.card_no);
                         w.Cell(bc.statement_center >= 0
                                    ? std::string_view(book.centers[static_cast<size_t>(bc.statement_center)])
                                    : std::string_view());
                       }
                       w.Cell(s.opening);
                       w.Cell(s.flows.deposits);
                       w.Cell(s.flows.reversals);
                       w.Cell(s.flows.subsidies);
                       w.Cell(s.flows.consumption);
                       w.Cell(s.flows.refunds);
                       w.Cell(s.closing());
                       w.EndRow();
                     }
                   }});
  plans.push_back({"consumption_by_center.csv", 1, [&](size_t, PieceRenderer& w) {
                     w.Row({"period", "serving_center_id", "home_center_id", "service", "transactions", "amount"});
                     for (const auto& c : r.consumption_by_center) {
                       w.Word(p);
                       w.Cell(reg.center_id(c.serving_center));
                       w.Cell(reg.center_id(c.home_center));
                       w.Cell(r.services[c.service]);
                       w.Cell(c.transactions);
                       w.Cell(c.amount);
                       w.EndRow();
                     }
                   }});
  plans.push_back({"homebed_exclusions.csv", 1, [&](size_t, PieceRenderer& w) {
                     w.Row({"month", "institution_id", "person_id", "reason"});
                     for (const auto& h : r.homebed_exclusions) {
                       w.Month(h.month.index());
                       w.Cell(h.institution_id);
                       w.Cell(h.person_id);
                       w.Cell(h.reason);
                       w.EndRow();
                     }
                   }});
  plans.push_back({"payouts.csv", 1, [&](size_t, PieceRenderer& w) {
                     w.Row({"period", "center_id", "center_name", "credit_code", "bank_account", "cards_paid",
                            "subsidy_total", "adjustment_total", "carried_in", "payout", "carried_out"});
                     for (const auto& x : r.payouts) {
                       w.Cell(p);
                       w.Cell(x.center_id);
                       w.Cell(x.center_name);
                       w.Cell(x.credit_code);
                       w.Cell(x.bank_account);
                       w.Cell(x.cards_paid);
                       w.Cell(x.subsidy_total);
                       w.Cell(x.adjustment_total);
                       w.Cell(x.carried_in);
                       w.Cell(x.payout);
                       w.Cell(x.carried_out);
                       w.EndRow();
                     }
                   }});
  plans.push_back({"adjustments.csv", 1, [&](size_t, PieceRenderer& w) {
                     w.Row({"period", "original_month", "card_no", "center_id", "recorded_subsidy", "recomputed_subsidy",
                            "amount", "reason"});
                     for (const auto& a : r.adjustments) {
                       w.Cell(p);
                       w.Month(a.original_month.index());
                       w.Cell(a.card_no);
                       w.Cell(a.center_id);
                       w.Cell(a.recorded);
                       w.Cell(a.recomputed);
                       w.Cell(a.amount);
                       w.Cell(a.reason);
                       w.EndRow();
                     }
                   }});
  PieceScheduler scheduler(sink, std::move(plans), threads);
  std::vector<OutputInfo> infos = scheduler.Run();
  if (infos.size() != 7) throw std::logic_error("not every settlement file was written");
  std::sort(infos.begin(), infos.end(), [](const OutputInfo& a, const OutputInfo& b) { return a.file < b.file; });
  return infos;
}

std::string RenderManifest(const ManifestInputs& in, const std::vector<OutputInfo>& outputs, const SettlementResult& result) {
  using nlohmann::ordered_json;
  ordered_json m;
  m["schema"] = "carecard-manifest/1";
  m["engine"] = {{"name", "carecard"}, {"version", in.engine_version}, {"build", in.engine_build}};
  m["period"] = in.period.ToString();
  m["state"] = in.closed ? "closed" : "draft";
  ordered_json months = ordered_json::array();
  for (YearMonth x = in.period.first_month(); x <= in.period.last_month(); x = x.Next()) months.push_back(x.ToString());
  m["months"] = months;
  m["book_first_period"] = in.book_first_period;
  ordered_json versions = ordered_json::array();
  for (const auto& v : in.policy->versions) {
    versions.push_back({{"version", v.version}, {"from", v.from.ToString()}, {"to", v.to ? v.to->ToString() : ""}});
  }
  m["policy"] = {{"id", in.policy->policy_id},
                 {"file", in.rules_file},
                 {"sha256", in.rules_sha256},
                 {"timezone", in.policy->timezone.ToString()},
                 {"months_per_period", in.policy->months_per_period},
                 {"versions", versions}};
  ordered_json inputs = ordered_json::array();
  for (size_t i = 0; i < in.inputs.size(); ++i) {
    const auto& f = in.inputs[i];
    ordered_json entry = {{"file", f.file}, {"kind", InputKindName(f.kind)}, {"bytes", f.bytes}, {"sha256", f.sha256}};
    for (const auto& c : in.counts) {
      if (c.file != f.file) continue;
      entry["rows_read"] = c.read;
      entry["rows_accepted"] = c.accepted;
      entry["rows_rejected"] = c.rejected;
      entry["rows_deferred"] = c.deferred;
    }
    inputs.push_back(entry);
  }
  m["inputs"] = inputs;
  ordered_json outs = ordered_json::array();
  for (const auto& o : outputs) {
    outs.push_back({{"file", o.file}, {"bytes", o.bytes}, {"rows", o.lines > 0 ? o.lines - 1 : 0}, {"sha256", o.sha256}});
  }
  m["outputs"] = outs;
  const ControlTotals& t = result.totals;
  m["control_totals"] = {{"cards", t.cards},
                         {"card_months", t.card_months},
                         {"card_months_paid", t.card_months_paid},
                         {"deposits", t.deposits.ToString()},
                         {"reversals", t.reversals.ToString()},
                         {"consumption", t.consumption.ToString()},
                         {"refunds", t.refunds.ToString()},
                         {"subsidies", t.subsidies.ToString()},
                         {"adjustments", t.adjustments.ToString()},
                         {"payouts", t.payouts.ToString()},
                         {"carried_out", t.carried_out.ToString()}};
  ordered_json codes = ordered_json::object();
  const auto& counts = result.exceptions.counts();
  for (int i = 0; i < kExceptionCodeCount; ++i) {
    if (counts[static_cast<size_t>(i)] > 0) codes[ExceptionCodeName(static_cast<ExceptionCode>(i))] = counts[static_cast<size_t>(i)];
  }
  m["exceptions_by_code"] = codes;
  m["previous_manifest_sha256"] = in.previous_manifest_sha256 ? ordered_json(*in.previous_manifest_sha256) : ordered_json(nullptr);
  return m.dump(2) + "\n";
}

}  // namespace carecard
