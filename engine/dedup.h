// Duplicate and conflicting txn_ids (semantics.md §8).
//
// A row claims its txn_id once it passes the column, kind, amount and date
// checks; every later row with the same id (within the deposit files, or
// within the consumption files) is a duplicate delivery when every cell is as
// the claimer's, a conflict otherwise, whatever else is wrong with it. Rows
// before the claimer keep their own verdicts.
//
// The check runs per hash partition of DedupRecords: only ids that share a
// hash are read back (RowFetcher) and compared exactly, so the common case of
// unique ids costs a sort and no reads.
#ifndef CARECARD_ENGINE_DEDUP_H_
#define CARECARD_ENGINE_DEDUP_H_

#include <cstdint>
#include <vector>

#include "engine/exceptions.h"
#include "engine/ledger.h"

namespace carecard {

// What the duplicate check decided about rows whose step-1 verdict it replaces.
struct DedupOutcome {
  std::vector<std::vector<uint64_t>> rejected_events;  // by elder partition: row keys, unsorted
  std::vector<std::pair<uint64_t, ExceptionCode>> superseded;  // tentative rejections replaced
  CountDeltas counts;  // by file
};

// Resolves one partition of DedupRecords (`records`, in any order). The
// verdicts (duplicate_txn, conflicting_txn) go to `log`. Throws RefusedError
// when a row read back is not the row that was read (an input changed).
// `table` is scratch, reused between calls.
void ResolveDuplicates(const LedgerContext& ctx, const RowFetcher& fetcher, const ByteBuffer& records,
                       std::vector<uint64_t>* table, ExceptionLog* log, DedupOutcome* out);

}  // namespace carecard

#endif  // CARECARD_ENGINE_DEDUP_H_
