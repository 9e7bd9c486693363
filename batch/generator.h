// Generator: synthetic data folders for demos, tests and benchmarks (`carecard gen`).
//
// GenerateDataFolder writes a complete data folder in the formats of formats.md:
// centers.csv, stations.csv, persons.csv, assessments.csv, cards.csv,
// enrollments.csv, and one deposits-YYYY-MM.csv and consumption-YYYY-MM.csv per
// month of the range. The data exercises every rule of semantics.md: two card
// types, deposits just below and at the 100/200 thresholds, split deposits,
// partial and next-month reversals, Z timestamps near midnight whose month differs
// from their UTC date, late-delivered rows (file of month M, dated in M-1),
// deaths inside the range with some deposits after death, cards issued and closed
// inside the range, elders with two cards, elders registered twice under one
// id number, home-bed and home-visit enrolments, cross-centre consumption, refunds.
// With `bad_row_share` > 0 it adds deliberately bad rows of every kind the engine
// must reject (bad amounts and dates, unknown cards/stations/persons/centres,
// duplicate and conflicting txn_id deliveries, unknown references, over-reversals,
// bad id numbers and credit codes, wrong column counts).
//
// Shape: about 10 transaction rows per card-month (~1.1 deposit rows, ~9
// consumption rows, ~70% 助餐); ~0.5% of elders hold two cards, ~0.3% are
// registered twice; ~1%/year die inside the range. Consumption stays within what
// was deposited, so overdrafts are rare. Ids: centres C00001, stations C00001S01
// (the centre id also serves as a station), persons P00000001, cards QD00000001,
// deposits D00000001, consumption X00000001 (one sequence per family, in file
// order except for late-delivered rows); bad registry rows use PB/QB/CB/SB ids.
//
// Determinism: the output is a pure function of GenOptions (minus out_dir). The
// generator uses its own PRNG (xoshiro256** seeded by splitmix64) and integer
// arithmetic only, so the same options give byte-identical files on every machine.
//
// Memory stays bounded whatever the size: entity attributes are derived from
// (seed, index) on demand, and rows are flushed to disk every few MB.
//
// Thread-safety: GenerateDataFolder shares no state; concurrent calls with
// different out_dir are safe.
#ifndef CARECARD_BATCH_GENERATOR_H_
#define CARECARD_BATCH_GENERATOR_H_

#include <cstdint>
#include <string>

#include "engine/calendar.h"

namespace carecard {

inline constexpr int64_t kMaxGeneratedCards = 50'000'000;
inline constexpr int kMaxGeneratedCenters = 99'998;
inline constexpr int kMaxGeneratedMonths = 120;
inline constexpr double kMaxBadRowShare = 0.5;

struct GenOptions {
  std::string out_dir;
  int64_t cards = 1000;  // 1..kMaxGeneratedCards
  YearMonth first_month = YearMonth::Of(2024, 1);
  YearMonth last_month = YearMonth::Of(2024, 2);  // first..last at most kMaxGeneratedMonths
  uint64_t seed = 1;
  // Expected share of all transaction and registry rows that are deliberately bad,
  // 0..kMaxBadRowShare. Converted once to an integer per-million threshold.
  double bad_row_share = 0.0;
  int centers = 0;  // 0 = one per ~2000 cards, at least 2; else 1..kMaxGeneratedCenters
};

struct GenSummary {
  int64_t persons = 0;           // rows in persons.csv (bad rows included)
  int64_t cards = 0;             // rows in cards.csv (bad rows included)
  int64_t deposit_rows = 0;      // rows in all deposits-*.csv (bad rows included)
  int64_t consumption_rows = 0;  // rows in all consumption-*.csv (bad rows included)
  int64_t bad_rows = 0;          // deliberately bad rows, in every file together
};

// Writes a complete data folder into options.out_dir (created if missing),
// replacing files of the same names. Returns true and fills *summary on success.
// Returns false with a message for people in *error when the options are out of
// range (nothing written) or on an I/O failure (files may be partly written).
// REQUIRES: summary != nullptr, error != nullptr.
bool GenerateDataFolder(const GenOptions& options, GenSummary* summary, std::string* error);

}  // namespace carecard

#endif  // CARECARD_BATCH_GENERATOR_H_
