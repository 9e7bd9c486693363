#include "engine/ledger.h"

#include <algorithm>
#include <cassert>

namespace carecard {
namespace {

std::string Quote(std::string_view v) { return "'" + std::string(v) + "'"; }

}  // namespace

uint16_t ServiceNames::Intern(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  bool inserted = false;
  const int32_t id = names_.Insert(name, &inserted);
  if (inserted && names_.size() > kMaxServices) {
    throw RefusedError("the consumption files name more than 65,535 distinct services; is the service column right?");
  }
  return static_cast<uint16_t>(id);
}

std::string_view ServiceNames::name(uint16_t id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return names_.key(id);
}

size_t ServiceNames::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return names_.size();
}

TxnVerdict CheckTxnRow(const LedgerContext& ctx, bool deposits, Cells c, std::string* detail, TxnLookupCache* cache) {
  using namespace txn_col;
  TxnVerdict v;
  Date local;
  YearMonth local_month;
  const std::optional<Instant> instant = Instant::Parse(c[kAt], ctx.zone, &local, &local_month);
  if (instant) v.month = local_month.index();
  auto reject = [&](ExceptionCode code, auto&& make_detail) {
    v.outcome = TxnVerdict::kRejected;
    v.code = code;
    if (detail) *detail = make_detail();
    return v;
  };
  const std::string_view kind_text = c[kKind];
  if (deposits && kind_text == "deposit") {
    v.kind = TxnKind::kDeposit;
  } else if (deposits && kind_text == "reversal") {
    v.kind = TxnKind::kReversal;
  } else if (!deposits && kind_text == "consumption") {
    v.kind = TxnKind::kConsumption;
  } else if (!deposits && kind_text == "refund") {
    v.kind = TxnKind::kRefund;
  } else {
    return reject(ExceptionCode::kBadRow, [&] {
      return "kind " + Quote(kind_text) + (deposits ? " is not 'deposit' or 'reversal'" : " is not 'consumption' or 'refund'");
    });
  }
  const std::optional<Money> amount = Money::ParsePositive(c[kAmount]);
  if (!amount) {
    return reject(ExceptionCode::kBadAmount, [&] {
      return "amount " + Quote(c[kAmount]) + " is not a positive amount of at most 12 digits and 2 decimals, such as 100.00";
    });
  }
  if (!instant) {
    return reject(ExceptionCode::kBadDate, [&] {
      return "at " + Quote(c[kAt]) + " is not a timestamp with its offset, such as 2024-01-31T23:59:59+08:00";
    });
  }
  v.claimable = true;
  v.amount = *amount;
  v.at = *instant;
  if (v.month > ctx.last_month.index()) {
    v.outcome = TxnVerdict::kDeferred;
    return v;
  }
  const Registry& reg = *ctx.registry;
  if (cache && cache->has_card && cache->card_no == c[kCardNo]) {
    v.card = cache->card;
  } else {
    v.card = reg.card_ids.Find(c[kCardNo]);
    if (cache) {
      cache->card_no.assign(c[kCardNo]);
      cache->card = v.card;
      cache->partition = v.card >= 0 ? ctx.card_partition[static_cast<size_t>(v.card)] : 0;
      cache->has_card = true;
    }
  }
  if (v.card < 0) {
    return reject(ExceptionCode::kUnknownCard, [&] { return "card_no " + Quote(c[kCardNo]) + " is not a known card"; });
  }
  const std::string_view station = deposits ? std::string_view() : c[kChannelOrStation];
  if (v.kind == TxnKind::kConsumption || (v.kind == TxnKind::kRefund && !station.empty())) {
    int32_t serving = -2;
    if (cache) {
      for (int i = 0; i < cache->stations; ++i) {
        if (cache->station[i] == station) {
          serving = cache->serving[i];
          break;
        }
      }
    }
    if (serving == -2) {
      serving = reg.ServingCenter(station);
      if (cache) {
        const int slot = cache->next_station;
        cache->station[slot].assign(station);
        cache->serving[slot] = serving;
        cache->next_station = (slot + 1) % TxnLookupCache::kStations;
        cache->stations = std::max(cache->stations, slot + 1);
      }
    }
    if (serving < 0) {
      return reject(ExceptionCode::kUnknownStation,
                    [&] { return "station_id " + Quote(station) + " is not a known station or centre"; });
    }
    // A refund is attributed to its consumption's station (elder_settle.h); its own only has to exist.
    if (v.kind == TxnKind::kConsumption) v.serving_center = serving;
  }
  v.outcome = TxnVerdict::kEvent;
  return v;
}

TxnClassifier::TxnClassifier(const LedgerContext* ctx, PartitionedSpill* events, PartitionedSpill* dedup,
                             ExceptionLog* log, CountDeltas* counts)
    : ctx_(ctx), events_(events), dedup_(dedup), log_(log), counts_(counts), dedup_per_family_(dedup->partitions() / 2) {}

void TxnClassifier::AddProblemRow(const TxnFile& f, int64_t line, ExceptionCode code, std::string_view detail) {
  CountDelta& count = (*counts_)[f.file];
  ++count.read;
  ++count.rejected;
  log_->Add(code, f.file, line, {}, {}, {}, -1, detail);
}

void TxnClassifier::AddRow(const TxnFile& f, int64_t line, uint64_t locator, Cells cells) {
  using namespace txn_col;
  CountDelta& count = (*counts_)[f.file];
  ++count.read;
  if (cells.size() != f.width) {
    ++count.rejected;
    log_->Add(ExceptionCode::kBadRow, f.file, line, {}, {}, {}, -1,
              "row has " + std::to_string(cells.size()) + " columns, the header has " + std::to_string(f.width));
    return;
  }
  std::string_view canonical[8];
  const size_t width = f.column_of.size();
  for (size_t i = 0; i < width; ++i) canonical[i] = cells[static_cast<size_t>(f.column_of[i])];
  const Cells c(canonical, width);
  const std::string_view txn_id = c[kTxnId];
  if (txn_id.empty()) {
    ++count.rejected;
    int32_t month = -1;
    if (auto instant = Instant::Parse(c[kAt])) month = YearMonth::Of(instant->LocalDate(ctx_->zone)).index();
    log_->Add(ExceptionCode::kBadRow, f.file, line, {}, c[kCardNo], {}, month, "empty txn_id");
    return;
  }
  TxnVerdict v = CheckTxnRow(*ctx_, f.deposits, c, &detail_, &lookups_);
  const uint64_t hash = IdIndex::Hash(txn_id);
  const DedupRecord d{hash, locator, static_cast<uint32_t>(line), f.file, static_cast<uint8_t>(v.claimable ? 1 : 0),
                      static_cast<uint8_t>(f.deposits ? 1 : 0)};
  dedup_.Append(DedupPartition(hash, f.deposits, dedup_per_family_), &d, sizeof d);
  switch (v.outcome) {
    case TxnVerdict::kRejected:
      ++count.rejected;
      log_->Add(v.code, f.file, line, txn_id, c[kCardNo], {}, v.month, detail_, /*tentative=*/true);
      return;
    case TxnVerdict::kDeferred: ++count.deferred; return;
    case TxnVerdict::kEvent: break;
  }
  ++count.accepted;
  EventHeader h{};
  h.at_seconds = v.at.seconds;
  h.amount_fen = v.amount.fen();
  h.card = v.card;
  h.line = static_cast<uint32_t>(line);
  h.nanos_kind = static_cast<uint32_t>(v.at.nanos) | static_cast<uint32_t>(v.kind) << 30;
  h.serving_center = v.serving_center;
  h.file = f.file;
  h.service = 0;
  if (v.kind == TxnKind::kConsumption) {
    const std::string_view service = c[kDepositRefOrService];
    if (has_last_service_ && service == last_service_) {
      h.service = last_service_id_;
    } else {
      const uint64_t service_hash = IdIndex::Hash(service);
      int32_t local = service_cache_.Find(service, service_hash);
      if (local < 0) {
        local = service_cache_.Insert(service, service_hash);
        service_ids_.push_back(ctx_->services->Intern(service));
      }
      h.service = service_ids_[static_cast<size_t>(local)];
      last_service_.assign(service);
      last_service_id_ = h.service;
      has_last_service_ = true;
    }
  }
  std::string_view ref;
  if (v.kind == TxnKind::kReversal) ref = c[kDepositRefOrService];
  if (v.kind == TxnKind::kRefund) ref = c[kConsumptionRef];
  h.id_len = static_cast<uint16_t>(txn_id.size());
  h.ref_len = static_cast<uint16_t>(ref.size());
  const size_t bytes = h.record_bytes();
  if (lookups_.card != v.card || !lookups_.has_card) throw std::logic_error("the card lookup cache lost its card");
  const uint32_t partition = lookups_.partition;
  char* out = events_.Reserve(partition, bytes);
  std::memcpy(out, &h, sizeof h);
  std::memcpy(out + sizeof h, txn_id.data(), txn_id.size());
  if (!ref.empty()) std::memcpy(out + sizeof h + txn_id.size(), ref.data(), ref.size());
  events_.Commit(partition, bytes);
}

void TxnClassifier::Prefetch(const TxnFile& f, Cells cells) {
  if (cells.size() != f.width || f.column_of.size() <= txn_col::kCardNo) return;
  const std::string_view card_no = cells[static_cast<size_t>(f.column_of[txn_col::kCardNo])];
  if (card_no == last_prefetched_) return;  // rows of one card come together
  last_prefetched_.assign(card_no);
  ctx_->registry->card_ids.Prefetch(IdIndex::Hash(card_no));
}

void TxnClassifier::Flush() {
  events_.Flush();
  dedup_.Flush();
}

uint64_t RowArchive::Keep(Cells cells) {
  // [u32 total][u32 count][u32 length]... then the bytes.
  scratch_.clear();
  const auto count = static_cast<uint32_t>(cells.size());
  uint32_t total = 8 + 4 * count;
  for (auto c : cells) total += static_cast<uint32_t>(c.size());
  scratch_.append(reinterpret_cast<const char*>(&total), 4);
  scratch_.append(reinterpret_cast<const char*>(&count), 4);
  for (auto c : cells) {
    const auto n = static_cast<uint32_t>(c.size());
    scratch_.append(reinterpret_cast<const char*>(&n), 4);
  }
  for (auto c : cells) scratch_.append(c);
  return store_->Append(scratch_.data(), scratch_.size());
}

void RowArchive::Fetch(uint16_t, uint64_t locator, std::vector<std::string>* cells) const {
  uint32_t head[2];
  store_->Read(locator, head, sizeof head);
  std::string bytes(head[0], '\0');
  store_->Read(locator, bytes.data(), bytes.size());
  const uint32_t count = head[1];
  cells->assign(count, std::string());
  size_t at = 8 + 4 * static_cast<size_t>(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t n;
    std::memcpy(&n, bytes.data() + 8 + 4 * static_cast<size_t>(i), 4);
    (*cells)[i] = bytes.substr(at, n);
    at += n;
  }
}

}  // namespace carecard
