#!/usr/bin/env bash
# The test suite's run of bench/run.sh (ctest bench_run_smoke): a few hundred cards, two
# repetitions, no DuckDB, the history of 24 periods at a few dozen cards, on the binary the
# suite built. It checks that the harness still runs end to end and that its summary says what
# bench/README.md says it says; the timings themselves are not judged here.
#   bench/smoke_test.sh CARECARD_BINARY SCRATCH_DIR
set -euo pipefail
carecard="$1" scratch="$(realpath -m -- "$2")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$scratch"
mkdir -p "$scratch"
fail() { echo "bench_run_smoke: $*" >&2; exit 1; }

CARECARD_BENCH_BIN="$carecard" CARECARD_BENCH_DATA="$scratch" CARECARD_BENCH_LABEL="smoke" \
  bash "$here/run.sh" --cards 300 --reps 2 --no-duckdb --history --history-cards 30 >"$scratch/stdout.txt" 2>"$scratch/stderr.txt" ||
  { cat "$scratch/stderr.txt" >&2; fail "run.sh failed"; }

summary=$(ls "$scratch"/results/*[0-9].txt 2>/dev/null | head -1) || true
tsv="${summary%.txt}.tsv"
[[ -n "$summary" && -f "$summary" && -f "$tsv" ]] || fail "no summary and results in $scratch/results"
expect() { grep -qF -- "$1" "$summary" || { cat "$summary" >&2; fail "the summary lacks: $1"; }; }
expect "smoke (as built before the runs: given binary, carecard sha256 "
expect "## c300: 300 cards"
expect "| carecard settle --threads 1 |"
expect "| carecard settle --threads 2 |"
expect "| cat *.csv \\| wc -l |"
# The card-months the run held (settle's "card-months: N", not its "cards with card-months: N").
held=$(awk -F'\t' '$2 == "carecard_t2" { if (match($7, /, card-months: [0-9]+/)) { print substr($7, RSTART + 15, RLENGTH - 15); exit } }' "$tsv")
[[ "$held" =~ ^[0-9]+$ ]] || fail "no card-month count in the carecard rows of $tsv"
expect "($held card-months, held by the run)"
expect "threads 2 vs 1 speed-up: "
expect "carecard -t2 / wc: "
expect "--threads 1 and --threads 2 wrote byte-identical period folders in 2 of 2 repetitions"
expect "order: --threads 2 ran second in 1 of 2 repetitions, --threads 1 in 1"
expect "period 24 / period 1: "
expect "closing runs (one each, --threads 2): p01 "
grep -qE "DuckDB core aggregation|carecard -t2 / DuckDB" "$summary" && fail "--no-duckdb, yet the summary has DuckDB figures"

# The two carecard runs swap places from one repetition to the next.
order=$(awk -F'\t' '$1 == "c300" && $2 ~ /^carecard_t/ { printf "%s:%s ", $3, $2 }' "$tsv")
[[ "$order" == "1:carecard_t1 1:carecard_t2 2:carecard_t2 2:carecard_t1 " ]] ||
  fail "carecard runs in the order '$order', not t1 t2 then t2 t1"
# Every timed row has a wall time, a peak RSS and a CPU time.
awk -F'\t' 'NR > 1 && $2 != "identical" && !($4 > 0 && $5 > 0 && $6 != "") { bad = 1; print "bad row: " $0 > "/dev/stderr" }
            END { exit bad }' "$tsv" || fail "a timed row lacks a figure"
echo "bench_run_smoke: ok ($summary)"
