#include "engine/settlement.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include "engine/dedup.h"
#include "engine/parallel.h"

namespace carecard {

const char* CardMonthStatusName(CardMonthStatus s) {
  switch (s) {
    case CardMonthStatus::kPaid: return "paid";
    case CardMonthStatus::kBelowThreshold: return "below_threshold";
    case CardMonthStatus::kIneligible: return "ineligible";
    case CardMonthStatus::kExcluded: return "excluded";
    case CardMonthStatus::kDuplicateCard: return "duplicate_card";
    case CardMonthStatus::kDeceased: return "deceased";
  }
  return "ineligible";
}

std::string_view CardMonthReasonName(CardMonthReason r) {
  switch (r) {
    case CardMonthReason::kNone: return "";
    case CardMonthReason::kNotEligible: return "not_eligible";
    case CardMonthReason::kNoPolicyInForce: return "no_policy_in_force";
    case CardMonthReason::kHomeBed: return ProgramName(Program::kHomeBed);
    case CardMonthReason::kGovHomeService: return ProgramName(Program::kGovHomeService);
  }
  return "";
}

CardMonthReason ExcludedBy(Program p) {
  return p == Program::kHomeBed ? CardMonthReason::kHomeBed : CardMonthReason::kGovHomeService;
}

std::string RuleVersionOf(const Policy& policy, const CardMonth& cm) {
  if (cm.version < 0) return {};
  return policy.RuleVersion(policy.versions[static_cast<size_t>(cm.version)]);
}

namespace {

// Partitions of a few MB of records each: small enough that a thread holds
// one comfortably, large enough that reading one back is a few large reads.
constexpr uint32_t kMaxElderPartitions = 8192;
// A worker's write buffers, one per partition, share these budgets (they are
// what it writes to for every row, so they should stay in its caches), with
// each buffer between the bounds.
constexpr size_t kEventBuffersBytes = 4u << 20;
constexpr size_t kDedupBuffersBytes = 2u << 20;
constexpr size_t kMinDedupBufferBytes = 4096;
constexpr size_t kMaxBufferBytes = 32u << 10;
// Txn-id records go to a partition picked by their hash, so every row writes
// to a buffer at random: more partitions than the budget holds at the
// smallest buffer would spill the buffers out of the worker's caches (at
// 2,000,000 cards, 628 partitions a family against 256: the transaction files
// took 4,724 ms against 4,685, means of four pairs, and the duplicate check
// 448-460 ms against 423-430). Past this many, partitions grow instead.
constexpr uint32_t kMaxDedupPartitionsPerFamily = kDedupBuffersBytes / kMinDedupBufferBytes / 2;
static_assert(kMaxDedupPartitionsPerFamily == 256);
// `smallest`: at least one record of the largest size fits.
size_t BufferBytes(size_t budget, uint32_t partitions, size_t smallest) {
  return std::clamp<size_t>(budget / std::max<uint32_t>(partitions, 1), smallest, std::max(smallest, kMaxBufferBytes));
}

uint32_t PartitionsFor(uint64_t bytes, uint64_t partition_bytes, uint32_t cap) {
  partition_bytes = std::max<uint64_t>(partition_bytes, 1);
  const uint64_t n = (bytes + partition_bytes - 1) / partition_bytes;
  return static_cast<uint32_t>(std::clamp<uint64_t>(n, 1, cap));
}

// Reads a row back from the archive for pushed files, from `files` otherwise.
class CompositeFetcher : public RowFetcher {
 public:
  CompositeFetcher(const RowArchive* archive, const std::vector<bool>* pushed, const RowFetcher* files)
      : archive_(archive), pushed_(pushed), files_(files) {}
  void Fetch(uint16_t file, uint64_t locator, std::vector<std::string>* cells) const override {
    if ((*pushed_)[file]) return archive_->Fetch(file, locator, cells);
    if (!files_) throw std::logic_error("a row to read back but no way to read it");
    files_->Fetch(file, locator, cells);
  }

 private:
  const RowArchive* archive_;
  const std::vector<bool>* pushed_;
  const RowFetcher* files_;
};

}  // namespace

SettlementRun::Worker::Worker(const LedgerContext* ctx, PartitionedSpill* events, PartitionedSpill* dedup,
                              const FileNames* names, SpillStore* spill, size_t budget,
                              std::vector<const TxnFile*> files, size_t file_count)
    : log_(names, spill, budget),
      counts_(file_count),
      classifier_(ctx, events, dedup, &log_, &counts_),
      files_(std::move(files)) {}

struct SettlementRun::Impl {
  Impl(const Policy& p, const PayoutPeriod& per, const BookState& b, RunOptions o)
      : policy(p), period(per), book(b), options(std::move(o)), names(std::make_unique<FileNames>()) {
    options.threads = std::clamp(options.threads, 1, kMaxThreads);
    if (!options.spill) {
      owned_spill = std::make_unique<MemorySpillStore>();
      spill = owned_spill.get();
    } else {
      spill = options.spill;
    }
    registry_log = std::make_unique<ExceptionLog>(names.get(), spill, options.exception_budget_bytes);
    builder = std::make_unique<RegistryBuilder>(period.last_month(), registry_log.get());
  }

  const Policy& policy;
  PayoutPeriod period;
  const BookState& book;
  RunOptions options;
  std::unique_ptr<SpillStore> owned_spill;
  SpillStore* spill = nullptr;

  std::unique_ptr<FileNames> names;
  std::vector<InputKind> kinds;
  std::vector<std::vector<int>> columns;  // by file
  std::vector<size_t> widths;
  std::vector<std::unique_ptr<TxnFile>> txn_files;  // by file; null for registry files
  std::vector<bool> pushed;

  std::unique_ptr<ExceptionLog> registry_log;
  CountDeltas registry_counts;
  std::unique_ptr<RegistryBuilder> builder;
  Registry registry;
  bool registry_done = false;

  ServiceNames services;
  LedgerContext ledger;
  uint32_t elder_partitions = 1, dedup_per_family = 1;
  std::vector<std::pair<int32_t, int32_t>> partition_elders;  // [begin, end)
  // The events in a store of their own, discarded once the elders have read
  // them; txn-id records, exceptions and archived rows stay in `spill`.
  std::unique_ptr<SpillStore> event_store;
  std::unique_ptr<PartitionedSpill> events, dedup;
  std::mutex workers_mutex;
  std::vector<std::unique_ptr<Worker>> workers;

  std::unique_ptr<RowArchive> archive;
  Worker* push_worker = nullptr;
  std::vector<std::string_view> canonical;
  // PrefetchRegistryRow's cells, kept: a local array of views would be zeroed
  // on every row (a `rep stos`, half of that function's samples).
  std::array<std::string_view, 8> prefetch_cells;

  Worker* MakeWorker() {
    std::vector<const TxnFile*> files;
    for (auto& f : txn_files) files.push_back(f.get());
    std::lock_guard<std::mutex> lock(workers_mutex);
    workers.emplace_back(new Worker(&ledger, events.get(), dedup.get(), names.get(), spill,
                                    options.exception_budget_bytes, std::move(files), names->size()));
    return workers.back().get();
  }
};

SettlementRun::SettlementRun(const Policy& policy, const PayoutPeriod& period, const BookState& book, RunOptions options)
    : impl_(std::make_unique<Impl>(policy, period, book, std::move(options))) {}

SettlementRun::~SettlementRun() = default;

uint16_t SettlementRun::AddFile(InputKind kind, const std::string& name) {
  Impl& s = *impl_;
  if (s.names->size() >= kMaxFiles) throw RefusedError("more than 65,535 input files");
  if (s.registry_done && !IsTransactionKind(kind)) throw std::logic_error("a registry file after the registry was finished");
  const auto file = static_cast<uint16_t>(s.names->size());
  s.names->push_back(name);
  s.kinds.push_back(kind);
  s.columns.emplace_back();
  s.widths.push_back(0);
  s.txn_files.emplace_back();
  s.pushed.push_back(false);
  s.registry_counts.resize(s.names->size());
  if (IsTransactionKind(kind)) {
    auto f = std::make_unique<TxnFile>();
    f->file = file;
    f->deposits = kind == InputKind::kDeposits;
    s.txn_files.back() = std::move(f);
  }
  if (s.push_worker) {
    // Rows fed one at a time may add files as they go.
    s.push_worker->counts_.resize(s.names->size());
    s.push_worker->files_.push_back(s.txn_files.back().get());
  }
  return file;
}

bool SettlementRun::SetHeader(uint16_t file, std::span<const std::string> header, std::string* missing) {
  Impl& s = *impl_;
  std::vector<int> column_of;
  if (!MapColumns(s.kinds[file], header, &column_of, missing)) return false;
  s.widths[file] = header.size();
  if (s.txn_files[file]) {
    TxnFile& f = *s.txn_files[file];
    if (column_of.size() > txn_col::kCount) throw std::logic_error("a transaction file with more canonical columns than there are");
    f.column_of = column_of;
    f.width = header.size();
    f.columns_in_order = true;
    for (size_t i = 0; i < column_of.size(); ++i) f.columns_in_order &= column_of[i] == static_cast<int>(i);
  }
  s.columns[file] = std::move(column_of);
  return true;
}

const TxnFile& SettlementRun::txn_file(uint16_t file) const { return *impl_->txn_files[file]; }

void SettlementRun::ReserveRegistryRows(uint16_t file, size_t rows) {
  constexpr size_t kMostReserved = 100'000'000;  // an estimate, not a promise: never reserve absurd amounts
  impl_->builder->Reserve(impl_->kinds[file], std::min(rows, kMostReserved));
}

void SettlementRun::PrefetchRegistryRow(uint16_t file, Cells cells) {
  Impl& s = *impl_;
  if (cells.size() != s.widths[file]) return;
  const auto& column_of = s.columns[file];
  std::array<std::string_view, 8>& canonical = s.prefetch_cells;
  if (column_of.size() > canonical.size()) return;
  for (size_t i = 0; i < column_of.size(); ++i) canonical[i] = cells[static_cast<size_t>(column_of[i])];
  s.builder->Prefetch(s.kinds[file], Cells(canonical.data(), column_of.size()));
}

RowOutcome SettlementRun::AddRegistryRow(uint16_t file, int64_t line, Cells cells) {
  Impl& s = *impl_;
  CountDelta& count = s.registry_counts[file];
  ++count.read;
  if (cells.size() != s.widths[file]) {
    ++count.rejected;
    s.registry_log->Add(ExceptionCode::kBadRow, file, line, {}, {}, {}, -1,
                        "row has " + std::to_string(cells.size()) + " columns, the header has " +
                            std::to_string(s.widths[file]));
    return RowOutcome::kRejected;
  }
  const auto& column_of = s.columns[file];
  s.canonical.resize(column_of.size());
  for (size_t i = 0; i < column_of.size(); ++i) s.canonical[i] = cells[static_cast<size_t>(column_of[i])];
  const RowOutcome outcome = s.builder->AddRow(s.kinds[file], file, line, Cells(s.canonical));
  switch (outcome) {
    case RowOutcome::kAccepted: ++count.accepted; break;
    case RowOutcome::kRejected: ++count.rejected; break;
    case RowOutcome::kDeferred: ++count.deferred; break;
  }
  return outcome;
}

void SettlementRun::AddProblemRow(uint16_t file, int64_t line, ExceptionCode code, std::string_view detail) {
  Impl& s = *impl_;
  if (s.txn_files[file] && s.registry_done) {
    if (!s.push_worker) s.push_worker = s.MakeWorker();
    s.push_worker->AddProblemRow(file, line, code, detail);
    return;
  }
  CountDelta& count = s.registry_counts[file];
  ++count.read;
  ++count.rejected;
  s.registry_log->Add(code, file, line, {}, {}, {}, -1, detail);
}

int64_t SettlementRun::rejected(uint16_t file) const {
  const Impl& s = *impl_;
  int64_t n = s.registry_counts[file].rejected;
  if (s.push_worker) n += s.push_worker->rejected(file);
  return n;
}

void SettlementRun::FinishRegistry() {
  Impl& s = *impl_;
  if (s.registry_done) return;
  s.registry_done = true;
  s.registry = s.builder->Finish();
  s.builder.reset();
  const auto elders = static_cast<uint32_t>(s.registry.elders.size());
  // Records are ~0.6 of the CSV bytes they come from, txn id records ~0.3.
  const uint64_t expected = s.options.expected_transaction_bytes;
  const uint64_t per = s.options.partition_bytes;
  s.elder_partitions =
      std::max<uint32_t>(1, std::min(PartitionsFor(expected * 6 / 10, per, kMaxElderPartitions), std::max(elders, 1u)));
  // Txn id records are checked through a table twice their size: partitions
  // of a quarter of the others keep it in the caches, up to the count whose
  // write buffers still fit theirs (kMaxDedupPartitionsPerFamily).
  s.dedup_per_family = PartitionsFor(expected * 3 / 10 / 2, std::max<uint64_t>(per / 4, 1), kMaxDedupPartitionsPerFamily);
  s.ledger.registry = &s.registry;
  s.ledger.zone = s.policy.timezone;
  s.ledger.last_month = s.period.last_month();
  s.ledger.services = &s.services;
  s.ledger.files = s.names.get();
  s.ledger.elder_partition.resize(elders);
  const uint32_t k = s.elder_partitions;
  s.partition_elders.assign(k, {0, 0});
  for (uint32_t e = 0; e < elders; ++e) {
    const auto p = static_cast<uint32_t>(static_cast<uint64_t>(e) * k / elders);
    s.ledger.elder_partition[e] = p;
  }
  s.ledger.card_partition.resize(s.registry.cards.size());
  for (size_t c = 0; c < s.registry.cards.size(); ++c) {
    s.ledger.card_partition[c] = s.ledger.elder_partition[static_cast<size_t>(s.registry.cards[c].elder)];
  }
  for (uint32_t p = 0, e = 0; p < k; ++p) {
    s.partition_elders[p].first = static_cast<int32_t>(e);
    while (e < elders && s.ledger.elder_partition[e] == p) ++e;
    s.partition_elders[p].second = static_cast<int32_t>(e);
  }
  s.event_store = s.spill->NewStore();
  s.events = std::make_unique<PartitionedSpill>(
      s.event_store.get(), k, BufferBytes(kEventBuffersBytes, k, MaxEncodedEventBytes(kMaxTxnIdBytes, kMaxTxnIdBytes)));
  s.dedup = std::make_unique<PartitionedSpill>(s.spill, 2 * s.dedup_per_family,
                                               BufferBytes(kDedupBuffersBytes, 2 * s.dedup_per_family, kMinDedupBufferBytes));
}

const Registry& SettlementRun::registry() const { return impl_->registry; }

SettlementRun::Worker* SettlementRun::NewWorker() {
  if (!impl_->registry_done) throw std::logic_error("NewWorker before FinishRegistry");
  return impl_->MakeWorker();
}

void SettlementRun::AddTxnRow(uint16_t file, int64_t line, Cells cells) {
  Impl& s = *impl_;
  if (!s.registry_done) throw std::logic_error("a transaction row before FinishRegistry");
  if (!s.archive) s.archive = std::make_unique<RowArchive>(s.spill);
  if (!s.push_worker) s.push_worker = s.MakeWorker();
  s.pushed[file] = true;
  const TxnFile& f = *s.txn_files[file];
  uint64_t locator = 0;
  if (cells.size() == f.width) {
    // Archived in canonical order: what the duplicate check compares.
    s.canonical.resize(f.column_of.size());
    for (size_t i = 0; i < f.column_of.size(); ++i) s.canonical[i] = cells[static_cast<size_t>(f.column_of[i])];
    locator = s.archive->Keep(Cells(s.canonical));
  }
  s.push_worker->AddRow(file, line, locator, cells);
}

RunResult SettlementRun::Finish(const RowFetcher* fetcher) {
  Impl& s = *impl_;
  if (!s.registry_done) FinishRegistry();
  const int threads = s.options.threads;
  const size_t file_count = s.names->size();
  for (auto& w : s.workers) w->Release();  // every row is in: the write buffers go

  RunResult result;
  auto phase_start = std::chrono::steady_clock::now();
  auto phase = [&](const char* name) {
    const auto now = std::chrono::steady_clock::now();
    result.phases.emplace_back(name, std::chrono::duration_cast<std::chrono::milliseconds>(now - phase_start).count());
    phase_start = now;
  };
  const Registry& reg = s.registry;
  s.ledger.elder_partition.shrink_to_fit();

  // Step 2a: duplicate txn_ids, by hash partition.
  CompositeFetcher composite(s.archive.get(), &s.pushed, fetcher);
  struct DedupWork {
    std::unique_ptr<ExceptionLog> log;
    DedupOutcome outcome;
    ByteBuffer encoded, bytes;
    std::vector<uint32_t> extents;
    std::vector<uint64_t> table;
  };
  std::vector<DedupWork> dedup_work(static_cast<size_t>(threads));
  for (auto& w : dedup_work) {
    w.log = std::make_unique<ExceptionLog>(s.names.get(), s.spill, s.options.exception_budget_bytes);
    w.outcome.rejected_events.resize(s.elder_partitions);
    w.outcome.counts.resize(file_count);
  }
  ParallelFor(threads, s.dedup->partitions(), [&](size_t p, int worker) {
    DedupWork& w = dedup_work[static_cast<size_t>(worker)];
    s.dedup->ReadPartition(static_cast<uint32_t>(p), &w.encoded, &w.extents);
    DecodeDedup(w.encoded, w.extents, &w.bytes);
    ResolveDuplicates(s.ledger, composite, w.bytes, &w.table, w.log.get(), &w.outcome);
  });
  std::vector<std::vector<uint64_t>> rejected_events(s.elder_partitions);
  for (auto& w : dedup_work) {
    w.bytes = ByteBuffer();
    w.encoded = ByteBuffer();
    std::vector<uint64_t>().swap(w.table);
    for (uint32_t p = 0; p < s.elder_partitions; ++p) {
      auto& from = w.outcome.rejected_events[p];
      rejected_events[p].insert(rejected_events[p].end(), from.begin(), from.end());
    }
  }
  for (auto& r : rejected_events) std::sort(r.begin(), r.end());
  phase("duplicates");
  result.spilled_bytes = s.events->TotalBytes() + s.dedup->TotalBytes();
  // The txn-id records are read: their pages go back now, for the slots below
  // to reuse (bench/README.md, "First touches of memory").
  s.dedup->Forget();

  // Step 2b: elders, by partition.
  SettleContext ctx;
  ctx.policy = &s.policy;
  ctx.period = s.period;
  ctx.registry = &reg;
  ctx.book = &s.book;
  ctx.months = SettledMonths::For(s.period, s.book);
  ctx.zone = s.policy.timezone;
  ctx.files = s.names.get();
  ctx.services = &s.services;
  ctx.row_checks_only = s.options.row_checks_only;
  for (size_t f = 0; f < file_count; ++f) {
    if (s.kinds[f] == InputKind::kCards) ctx.cards_file = static_cast<uint16_t>(f);
  }
  std::vector<bool> book_card_matched(s.book.cards.size(), false);  // a card of the registry too
  if (!s.book.cards.empty()) {
    ctx.book_card_of.assign(reg.cards.size(), -1);
    for (size_t b = 0; b < s.book.cards.size(); ++b) {
      const int32_t card = reg.card_ids.Find(s.book.cards[b].card_no);
      if (card >= 0) ctx.book_card_of[static_cast<size_t>(card)] = static_cast<int32_t>(b);
      book_card_matched[b] = card >= 0;
    }
  }
  const size_t period_months = ctx.months.current.size();
  std::vector<CardMonth> card_month_slots;
  std::vector<StatementLine> statement_slots;
  if (!s.options.row_checks_only) {  // row checks write no card-month and no statement
    // Two vectors of about the same size, filled on two threads: one would leave the other core idle.
    ParallelFor(threads, 2, [&](size_t task, int) {
      if (task == 0) {
        card_month_slots.resize(reg.cards.size() * period_months);  // month by month, then card by card
      } else {
        statement_slots.resize(reg.cards.size());
      }
    });
  }
  ctx.card_month_slots = card_month_slots.data();
  ctx.statement_slots = statement_slots.data();
  ctx.card_slot_count = statement_slots.size();
  std::vector<uint32_t> partitions(s.elder_partitions);
  std::iota(partitions.begin(), partitions.end(), 0u);
  const bool explaining = s.options.explain_card.has_value();
  if (explaining) {
    const int32_t card = reg.card_ids.Find(*s.options.explain_card);
    partitions.clear();
    if (card >= 0) {
      ctx.explain_card = card;
      ctx.explain_month = s.options.explain_month;
      partitions.push_back(s.ledger.elder_partition[static_cast<size_t>(reg.cards[static_cast<size_t>(card)].elder)]);
    } else {
      CardMonthExplanation x;
      x.steps.push_back(ExplainStep{ExplainStepKind::kCardNotFound, {*s.options.explain_card}});
      result.explanation = std::move(x);
    }
  }
  // Cards are not looked up by number again: only their numbers are needed now;
  // rows are not routed to partitions again.
  s.registry.card_ids.ReleaseLookup();
  std::vector<uint32_t>().swap(s.ledger.card_partition);
  struct SettleWork {
    std::unique_ptr<ExceptionLog> log;
    PartitionOutput out;
    ByteBuffer encoded, bytes;
    std::vector<uint32_t> extents;
  };
  std::vector<SettleWork> settle_work(static_cast<size_t>(threads));
  for (auto& w : settle_work) {
    w.log = std::make_unique<ExceptionLog>(s.names.get(), s.spill, s.options.exception_budget_bytes);
    w.out.counts.resize(file_count);
  }
  ParallelFor(threads, partitions.size(), [&](size_t task, int worker) {
    const uint32_t p = partitions[task];
    SettleWork& w = settle_work[static_cast<size_t>(worker)];
    s.events->ReadPartition(p, &w.encoded, &w.extents);
    DecodeEvents(w.encoded, w.extents, &w.bytes);
    SettlePartition(ctx, s.partition_elders[p].first, s.partition_elders[p].second, w.bytes, rejected_events[p],
                    w.log.get(), &w.out);
  });

  for (auto& w : settle_work) {
    w.bytes = ByteBuffer();
    w.encoded = ByteBuffer();
  }
  phase("elders");
  // Counts: every row read is accepted, rejected or deferred exactly once.
  result.counts.resize(file_count);
  CountDeltas total(file_count);
  for (size_t f = 0; f < file_count; ++f) total[f] += s.registry_counts[f];
  for (auto& w : s.workers) {
    for (size_t f = 0; f < file_count && f < w->counts_.size(); ++f) total[f] += w->counts_[f];
  }
  for (auto& w : dedup_work) {
    for (size_t f = 0; f < file_count; ++f) total[f] += w.outcome.counts[f];
  }
  for (auto& w : settle_work) {
    for (size_t f = 0; f < file_count; ++f) total[f] += w.out.counts[f];
  }
  for (size_t f = 0; f < file_count; ++f) {
    FileCounts& c = result.counts[f];
    c.file = (*s.names)[f];
    c.kind = s.kinds[f];
    c.read = total[f].read;
    c.accepted = total[f].accepted;
    c.rejected = total[f].rejected;
    c.deferred = total[f].deferred;
    if (!explaining && c.read != c.accepted + c.rejected + c.deferred) {
      throw std::logic_error("rows of " + c.file + " do not add up: read " + std::to_string(c.read) + ", accepted " +
                             std::to_string(c.accepted) + ", rejected " + std::to_string(c.rejected) + ", deferred " +
                             std::to_string(c.deferred));
    }
  }

  // The steps that put the workers' results together, run below as two
  // chains on two threads.
  SettlementResult& r = result.settlement;
  ConsumptionTotals consumption;
  // The events given back and the exceptions of every step in one ordered set.
  auto gather_exceptions = [&] {
    try {
      s.events->Discard();  // the output files' pages reuse these
    } catch (const SpillError&) {
      // Only memory is at stake: the bytes stay until the run ends, the results are whole.
    }
    r.exceptions = ExceptionSet(s.names.get(), s.spill);
    r.exceptions.Absorb(std::move(*s.registry_log));
    for (auto& w : s.workers) r.exceptions.Absorb(std::move(w->log_));
    for (auto& w : dedup_work) {
      r.exceptions.Absorb(std::move(*w.log));
      for (const auto& [key, code] : w.outcome.superseded) r.exceptions.Supersede(key, code);
    }
    for (auto& w : settle_work) r.exceptions.Absorb(std::move(*w.log));
    r.exceptions.Seal();
  };
  // Merge by centre and sort: the order is fixed by the data, never by the threads.
  // Card-months by month, then card_no; statements by card_no. Card indices
  // sort as card numbers do (RegistryBuilder::Finish) and the slots are laid
  // out month by month, so both are their slots with the empty ones left out.
  auto gather_results = [&] {
    auto compact = [](auto& slots) {
      size_t kept = 0;
      for (size_t i = 0; i < slots.size(); ++i) {
        if (slots[i].card >= 0) slots[kept++] = slots[i];
      }
      slots.resize(kept);
    };
    compact(card_month_slots);
    r.card_months = std::move(card_month_slots);
    compact(statement_slots);
    r.statements = std::move(statement_slots);
    for (auto& w : settle_work) {
      std::move(w.out.adjustments.begin(), w.out.adjustments.end(), std::back_inserter(r.adjustments));
      std::move(w.out.homebed.begin(), w.out.homebed.end(), std::back_inserter(r.homebed_exclusions));
    }
    std::sort(r.homebed_exclusions.begin(), r.homebed_exclusions.end(),
              [](const HomebedExclusionLine& a, const HomebedExclusionLine& b) {
                return std::tie(a.month, a.institution_id, a.person_id) < std::tie(b.month, b.institution_id, b.person_id);
              });
  };
  // Consumption sums of every worker in one table (each worker's freed as it is merged).
  auto gather_consumption = [&] {
    try {
      for (auto& w : settle_work) consumption.Absorb(std::move(w.out.consumption));
      consumption.Flush();
    } catch (const ConsumptionOverflow& e) {
      throw ConsumptionOverflow(e.key(), ConsumptionOverflowMessage(reg, s.services, e.key()));
    }
  };
  const bool merging = !s.options.row_checks_only && !explaining;  // else only the exceptions are wanted
  for (auto& w : settle_work) {
    if (w.out.explanation) result.explanation = std::move(w.out.explanation);
  }
  result.elder_partitions = s.elder_partitions;
  if (!merging) {
    gather_exceptions();
    result.files = std::move(s.names);
    result.registry = std::move(s.registry);
    result.owned_spill = std::move(s.owned_spill);
    return result;
  }

  auto leavers_and_adjustments = [&] {
    // Cards that left the registry: their balance leaves with them, and their
    // paid closed months are reversed.
    const SettledMonths& months = ctx.months;
    const size_t registry_statements = r.statements.size();
    for (size_t b = 0; b < s.book.cards.size(); ++b) {
      const BookState::Card& bc = s.book.cards[b];
      if (book_card_matched[b]) continue;
      if (bc.has_statement) {
        StatementLine line;
        line.book_card = static_cast<int32_t>(b);
        line.opening = bc.last_closing;
        line.flows = Flows() - bc.flows_sum;
        if (!line.closing().is_zero()) {
          throw std::runtime_error("the book's closed statements for card " + bc.card_no + " do not add up; the book has been altered");
        }
        if (!line.opening.is_zero() || !line.flows.IsZero()) r.statements.push_back(line);
      }
      for (const auto& m : s.book.MonthsOf(bc)) {
        const YearMonth month = YearMonth::FromIndex(m.month);
        if (m.subsidy.is_zero() || !std::binary_search(months.closed.begin(), months.closed.end(), month)) continue;
        r.adjustments.push_back(AdjustmentLine{month, bc.card_no, m.center >= 0 ? s.book.centers[static_cast<size_t>(m.center)] : "",
                                               m.subsidy, Money(), -m.subsidy, "removed"});
      }
    }
    // The cards that left come in card_no order (the book's); merge them in.
    if (r.statements.size() > registry_statements) {
      auto statement_card_no = [&](const StatementLine& l) -> std::string_view {
        return l.card >= 0 ? reg.card_no(l.card) : std::string_view(s.book.cards[static_cast<size_t>(l.book_card)].card_no);
      };
      std::inplace_merge(r.statements.begin(), r.statements.begin() + static_cast<ptrdiff_t>(registry_statements),
                         r.statements.end(), [&](const StatementLine& a, const StatementLine& b) {
                           return statement_card_no(a) < statement_card_no(b);
                         });
    }
    std::sort(r.adjustments.begin(), r.adjustments.end(), [](const AdjustmentLine& a, const AdjustmentLine& b) {
      return std::tie(a.original_month, a.card_no) < std::tie(b.original_month, b.card_no);
    });
  };
  auto payouts_and_totals = [&] {
    // Payouts by centre, and the card-months' control totals, in one pass over
    // the card-months (3.9 M of them, 125 MB, at 2,000,000 cards: each pass
    // out of cache costs ~20 ms).
    struct PayoutSum {
      int64_t paid_cards = 0;
      Money subsidy, adjustment;
      bool has_card_month = false;
    };
    ControlTotals& t = r.totals;
    std::vector<PayoutSum> by_center_index(reg.centers.size());
    std::vector<uint8_t> paid(reg.cards.size(), 0);
    std::vector<uint8_t> listed(reg.cards.size(), 0);
    for (const CardMonth& cm : r.card_months) {
      const auto card = static_cast<size_t>(cm.card);
      PayoutSum& sum = by_center_index[static_cast<size_t>(reg.cards[card].center)];
      sum.has_card_month = true;
      sum.subsidy += cm.subsidy;
      t.subsidies += cm.subsidy;
      ++t.card_months;
      if (cm.status == CardMonthStatus::kPaid) {
        ++t.card_months_paid;
        if (!paid[card]) {
          paid[card] = 1;
          ++sum.paid_cards;
        }
      }
      t.cards += listed[card] ^ 1;
      listed[card] = 1;
    }
    std::map<std::string, PayoutSum> by_center;
    for (size_t c = 0; c < reg.centers.size(); ++c) {
      if (by_center_index[c].has_card_month) by_center[reg.centers[c].center_id] = by_center_index[c];
    }
    for (const auto& adj : r.adjustments) by_center[adj.center_id].adjustment += adj.amount;
    for (const auto& [center, carried] : s.book.carried) {
      if (!carried.is_zero()) by_center[center];
    }
    for (auto& [center, sum] : by_center) {
      PayoutLine line;
      line.center_id = center;
      if (const int32_t c = reg.center_ids.Find(center); c >= 0) {
        const Center& known = reg.centers[static_cast<size_t>(c)];
        line.center_name = known.name;
        line.credit_code = known.credit_code;
        line.bank_account = known.bank_account;
      }
      line.cards_paid = sum.paid_cards;
      line.subsidy_total = sum.subsidy;
      line.adjustment_total = sum.adjustment;
      if (auto it = s.book.carried.find(center); it != s.book.carried.end()) line.carried_in = it->second;
      const Money due = line.subsidy_total + line.adjustment_total + line.carried_in;
      line.payout = due.is_negative() ? Money() : due;
      line.carried_out = due.is_negative() ? due : Money();
      // Invariant: what is paid plus what is carried is exactly what is due.
      if (line.payout + line.carried_out != line.subsidy_total + line.adjustment_total + line.carried_in) {
        throw std::logic_error("payout of centre " + center + " does not add up");
      }
      r.payouts.push_back(std::move(line));
    }

    // The other control totals.
    for (const auto& st : r.statements) {
      t.deposits += st.flows.deposits;
      t.reversals += st.flows.reversals;
      t.consumption += st.flows.consumption;
      t.refunds += st.flows.refunds;
    }
    for (const auto& a : r.adjustments) t.adjustments += a.amount;
    for (const auto& p : r.payouts) {
      t.payouts += p.payout;
      t.carried_out += p.carried_out;
    }
    // Invariant: every centre is paid what its lines add up to.
    Money paid_total;
    for (const auto& p : r.payouts) paid_total += p.payout + p.carried_out - p.carried_in;
    if (paid_total != t.subsidies + t.adjustments) throw std::logic_error("payouts do not add up to subsidies and adjustments");
  };
  auto consumption_lines = [&] {
    // In the file's order: centres and services ranked by their ids and names
    // once, then the lines sorted by ranks, not strings.
    {
      std::vector<uint32_t> center_rank(reg.centers.size());
      std::vector<uint32_t> center_of_rank(reg.centers.size());
      std::iota(center_of_rank.begin(), center_of_rank.end(), 0u);
      std::sort(center_of_rank.begin(), center_of_rank.end(),
                [&](uint32_t a, uint32_t b) { return reg.centers[a].center_id < reg.centers[b].center_id; });
      for (uint32_t i = 0; i < center_of_rank.size(); ++i) center_rank[center_of_rank[i]] = i;
      std::vector<std::string>& service_names = r.services;
      service_names.resize(s.services.size());
      for (size_t i = 0; i < service_names.size(); ++i) service_names[i] = std::string(s.services.name(static_cast<uint16_t>(i)));
      std::vector<uint32_t> service_rank(service_names.size());
      std::vector<uint32_t> service_of_rank(service_names.size());
      std::iota(service_of_rank.begin(), service_of_rank.end(), 0u);
      std::sort(service_of_rank.begin(), service_of_rank.end(),
                [&](uint32_t a, uint32_t b) { return service_names[a] < service_names[b]; });
      for (uint32_t i = 0; i < service_of_rank.size(); ++i) service_rank[service_of_rank[i]] = i;
      auto& lines = r.consumption_by_center;
      lines.reserve(consumption.size());
      consumption.ForEach([&](const ConsumptionKey& key, const ConsumptionSum& sum) {
        lines.push_back(ConsumptionByCenterLine{key.serving, key.home, key.service, sum.transactions, sum.amount});
      });
      consumption = ConsumptionTotals();
      // Sorted in place with their ranks in the places of their ids, which go back
      // after: the lines grow with the pairs of centres that serve each other's
      // cards (833,000 lines at 2,000,000 cards and 1,000 centres, against 22,000
      // at 200,000), and a comparison that looked the ranks up every time was
      // 0.4 % of that run, on one thread, while sorting keys on the side took
      // as long in first touches of their memory.
      for (ConsumptionByCenterLine& l : lines) {
        l.serving_center = static_cast<int32_t>(center_rank[static_cast<size_t>(l.serving_center)]);
        l.home_center = static_cast<int32_t>(center_rank[static_cast<size_t>(l.home_center)]);
        l.service = static_cast<uint16_t>(service_rank[l.service]);
      }
      // One 64-bit key per comparison, not three branches, while the ranks fit
      // 24 bits (16,777,216 centres).
      if (reg.centers.size() < (size_t{1} << 24)) {
        auto key = [](const ConsumptionByCenterLine& l) {
          return uint64_t{static_cast<uint32_t>(l.serving_center)} << 40 | uint64_t{static_cast<uint32_t>(l.home_center)} << 16 |
                 l.service;
        };
        std::sort(lines.begin(), lines.end(),
                  [&](const ConsumptionByCenterLine& a, const ConsumptionByCenterLine& b) { return key(a) < key(b); });
      } else {
        std::sort(lines.begin(), lines.end(), [](const ConsumptionByCenterLine& a, const ConsumptionByCenterLine& b) {
          if (a.serving_center != b.serving_center) return a.serving_center < b.serving_center;
          if (a.home_center != b.home_center) return a.home_center < b.home_center;
          return a.service < b.service;
        });
      }
      for (ConsumptionByCenterLine& l : lines) {
        l.serving_center = static_cast<int32_t>(center_of_rank[static_cast<size_t>(l.serving_center)]);
        l.home_center = static_cast<int32_t>(center_of_rank[static_cast<size_t>(l.home_center)]);
        l.service = static_cast<uint16_t>(service_of_rank[l.service]);
      }
    }
  };
  // Two chains that share nothing, on two threads: the exceptions,
  // card-months, statements, adjustments and home-bed lines gathered, then
  // the payouts and control totals; and meanwhile the consumption sums, whose
  // lines grow with the pairs of centres that serve each other's cards
  // (833,000 at 2,000,000 cards), merged and sorted. Only the second chain
  // touches `consumption`, r.services and r.consumption_by_center; only the
  // first, every other field of r.
  ParallelFor(threads, 2, [&](size_t task, int) {
    if (task == 0) {
      gather_exceptions();
      gather_results();
      leavers_and_adjustments();
      payouts_and_totals();
    } else {
      gather_consumption();
      consumption_lines();
    }
  });

  phase("merge");
  result.files = std::move(s.names);
  result.registry = std::move(s.registry);
  result.owned_spill = std::move(s.owned_spill);
  return result;
}

Intake::Intake(const Policy& policy, const PayoutPeriod& period, const BookState& book, RunOptions options)
    : run_(policy, period, book, std::move(options)) {}

bool Intake::BeginFile(InputKind kind, const std::string& file_name, const std::vector<std::string>& header,
                       std::string* missing) {
  if (IsTransactionKind(kind) && !registry_done_) {
    run_.FinishRegistry();
    registry_done_ = true;
  }
  file_ = run_.AddFile(kind, file_name);
  in_file_ = true;
  return run_.SetHeader(file_, header, missing);
}

void Intake::AddRow(int64_t line, const std::vector<std::string>& cells, std::string_view problem_code,
                    std::string_view problem_detail) {
  if (!problem_code.empty()) {
    const auto code = ExceptionCodeFromName(problem_code);
    run_.AddProblemRow(file_, line, code ? *code : ExceptionCode::kBadRow, problem_detail);
    return;
  }
  views_.assign(cells.begin(), cells.end());
  if (registry_done_) {
    run_.AddTxnRow(file_, line, Cells(views_));
  } else {
    run_.AddRegistryRow(file_, line, Cells(views_));
  }
}

int64_t Intake::current_file_rejected() const { return in_file_ ? run_.rejected(file_) : 0; }

RunResult Intake::Finish() { return run_.Finish(nullptr); }

}  // namespace carecard
