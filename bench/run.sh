#!/usr/bin/env bash
# Reproduces the performance figures of issue 7 in one command (see bench/README.md).
#
#   bench/run.sh                 # 200,000 cards (~4M transaction rows): carecard -t1/-t2, wc -l, DuckDB
#   bench/run.sh --large         # also 2,000,000 cards (~40M rows, ~3.6 GB of disk): scaling figures
#   bench/run.sh --history       # also 24 periods of 20,000 cards: cost of the 1st vs the 24th period
#   bench/run.sh --micro         # also the Google Benchmark micro-benchmarks (bench/micro)
#   bench/run.sh --probe         # also what first touches of memory cost here (on with --large)
#
# Environment: CARECARD_BENCH_DATA=DIR keeps the data sets elsewhere (default bench/data);
#   CARECARD_BENCH_BIN=PATH times that carecard binary instead of building build-bench/ (the
#   test suite's smoke run of this script; figures are only meaningful from a Release build).
# Options: --reps N (default 3; medians are reported), --cards N (default 200000),
#          --history-cards N (default 20000), --no-duckdb, --only-extra (skip the main comparison),
#          --no-probe (skip the first-touch probe that --large turns on).
# Builds carecard in Release into build-bench/ (ninja -j2) when needed, generates the data sets
# once into bench/data/ (ignored by git), installs DuckDB's npm package into bench/node_modules
# when missing (a benchmark peer only: carecard never loads it), and prints a table of medians.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build-bench"
# Absolute: the history's views are folders of symlinks to the data files.
data="$(realpath -m -- "${CARECARD_BENCH_DATA:-$here/data}")"  # override to share data sets between trees
work="$data/work"
results_dir="$data/results"
rules="$root/rules/qingdao-2022.yaml"

reps=3
cards=200000
large=0
history=0
micro=0
duckdb=1
main=1
history_cards=20000
large_cards=2000000
probe=-1  # -1: with --large

while (($#)); do
  case "$1" in
    --large) large=1 ;;
    --history) history=1 ;;
    --micro) micro=1 ;;
    --no-duckdb) duckdb=0 ;;
    --probe) probe=1 ;;
    --no-probe) probe=0 ;;
    --only-extra) main=0 ;;
    --reps) reps="$2"; shift ;;
    --cards) cards="$2"; shift ;;
    --history-cards) history_cards="$2"; shift ;;
    -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 1 ;;
  esac
  shift
done

((large && !main)) && { echo "run.sh: --large belongs to the main comparison, which --only-extra skips" >&2; exit 1; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed for peak RSS (apt-get install time)"
command -v python3 >/dev/null || die "python3 is needed for the summary table"

# --- build --------------------------------------------------------------------
if [[ -n "${CARECARD_BENCH_BIN:-}" ]]; then
  carecard="$CARECARD_BENCH_BIN"
  [[ -x "$carecard" ]] || die "CARECARD_BENCH_BIN=$carecard is not an executable"
  ((micro)) && die "--micro needs the build of build-bench/; unset CARECARD_BENCH_BIN"
  build_type="given binary"
else
  targets=(carecard)
  ((micro)) && targets+=(carecard_micro)
  # Reconfigured unless the cache says Release with the benchmarks on: a Debug build timed by
  # mistake would print plausible, meaningless figures.
  if [[ ! -f "$build/build.ninja" ]] || ! grep -q 'CARECARD_BENCH:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null ||
     ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt" 2>/dev/null; then
    log "configuring $build (Release)"
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCARECARD_TESTS=OFF -DCARECARD_BENCH=ON >/dev/null
  fi
  log "building ${targets[*]} (ninja -j2; a no-op when up to date)"
  ninja -C "$build" -j2 "${targets[@]}" >/dev/null
  carecard="$build/carecard"
  [[ -x "$carecard" ]] || die "no $carecard after the build"
  build_type=Release
fi
# What is timed, named now: the tree may change while the benchmark runs, the binary does not.
if [[ -n "${CARECARD_BENCH_LABEL:-}" ]]; then
  label="$CARECARD_BENCH_LABEL"
elif git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  label="commit $(git -C "$root" rev-parse --short HEAD)"
  git -C "$root" diff --quiet HEAD -- engine adapters batch rules || label+=" + uncommitted changes"
else
  label="source tree $root (not a git checkout)"
fi
binary_sha256=$(sha256sum "$carecard" | cut -c1-16)

# --- DuckDB (benchmark peer, npm) --------------------------------------------------
if ((duckdb && main)); then
  command -v node >/dev/null || die "node is needed for the DuckDB peer (or pass --no-duckdb)"
  if [[ ! -d "$here/node_modules/@duckdb/node-api" ]]; then
    log "installing @duckdb/node-api into bench/node_modules"
    # npm ci installs exactly what package-lock.json pins, and never rewrites it.
    (cd "$here" && npm ci --no-audit --no-fund >/dev/null) || die "npm ci failed in $here (or pass --no-duckdb)"
  fi
fi

# --- data sets --------------------------------------------------------------------
free_mb() { df -Pm "$1" | awk 'NR == 2 { print $4 }'; }

# The generator's fingerprint: the SHA-256 of what it writes for 50 cards. A data set made by a
# generator that behaves differently (a change to batch/generator.cc, or to a check it uses) is
# made again rather than silently reused.
generator_fingerprint() {  # prints it; the caller checks that it is not empty
  local t fp
  t=$(mktemp -d) || die "mktemp failed"
  "$carecard" gen --out "$t/g" --cards 50 --months 2024-01:2024-02 --seed 1 >/dev/null 2>&1 || { rm -rf "$t"; die "carecard gen failed"; }
  fp=$(cd "$t/g" && sha256sum -- * | sha256sum) || { rm -rf "$t"; die "cannot hash the generator's sample"; }
  rm -rf "$t"
  echo "${fp:0:16}"
}
generator=""
# gen_once DIR CARDS MONTHS: generates a data folder unless DIR/.done says it is there, made by
# this generator.
gen_once() {
  local dir="$1" n="$2" months="$3"
  [[ -n "$generator" ]] || generator=$(generator_fingerprint)
  [[ "$generator" =~ ^[0-9a-f]{16}$ ]] || die "no fingerprint of the generator (got '$generator')"
  local want="gen --cards $n --months $months --seed 1 (generator $generator)"
  if [[ -f "$dir/.done" && "$(head -1 "$dir/.done")" == "$want" ]]; then return 0; fi
  # ~1.8 MB per 1,000 cards and 2 months; ask for twice that free.
  local nmonths need
  nmonths=$(python3 -c "a,b='$months'.split(':');print((int(b[:4])-int(a[:4]))*12+int(b[5:])-int(a[5:])+1)")
  need=$(( n * nmonths * 9 / 10000 * 2 + 100 ))
  mkdir -p "$data"
  local free; free=$(free_mb "$data")
  ((free > need)) || die "generating $n cards x $nmonths months needs ~$need MB free in $data; only $free MB"
  log "generating $dir ($n cards, $months); needs ~$((need / 2)) MB"
  rm -rf "$dir"
  "$carecard" gen --out "$dir" --cards "$n" --months "$months" --seed 1 >&2
  local txn_rows all_rows
  txn_rows=$(cat "$dir"/deposits*.csv "$dir"/consumption*.csv | wc -l)
  txn_rows=$((txn_rows - $(ls "$dir"/deposits*.csv "$dir"/consumption*.csv | wc -l)))
  all_rows=$(cat "$dir"/*.csv | wc -l)
  all_rows=$((all_rows - $(ls "$dir"/*.csv | wc -l)))
  printf '%s\ntxn_rows=%s\nall_rows=%s\nbytes=%s\ncards=%s\n' "$want" "$txn_rows" "$all_rows" \
    "$(du -sb "$dir" | cut -f1)" "$n" >"$dir/.done"
}
meta() { sed -n "s/^$2=//p" "$1/.done"; }

mkdir -p "$work" "$results_dir"
stamp="$(date +%Y%m%d-%H%M%S)"
results="$results_dir/$stamp.tsv"
printf 'set\tcase\trep\tseconds\trss_kb\tcpu_s\textra\n' >"$results"

# measure SET CASE REP CMD...: runs CMD under /usr/bin/time -v, appends a row to $results.
# The wall time is taken around the command; for DuckDB the query time it prints replaces it.
measure() {
  local set="$1" case="$2" rep="$3"; shift 3
  local tv="$work/time.txt" out="$work/stdout.txt" err="$work/stderr.txt"
  local t0 t1 status=0
  t0=$(date +%s%N)
  /usr/bin/time -v -o "$tv" "$@" >"$out" 2>"$err" || status=$?
  t1=$(date +%s%N)
  if ((status != 0)); then
    cat "$err" >&2
    die "$case failed with status $status: $*"
  fi
  local seconds rss extra=""
  seconds=$(python3 -c "print(f'{($t1 - $t0) / 1e9:.3f}')")
  rss=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$tv")
  cpu=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ { s += $2 } END { printf "%.2f", s }' "$tv")
  case "$case" in
    duckdb*)
      extra="process_s=$seconds $(tail -1 "$out")"
      seconds=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['seconds'])" "$(tail -1 "$out")") ;;
    carecard*)
      extra="minor_faults=$(sed -n 's/^\s*Minor (reclaiming a frame) page faults: //p' "$tv") $(tr '\n' ' ' <"$out" | sed 's/\t/ /g')" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$case" "$rep" "$seconds" "$rss" "$cpu" "$extra" >>"$results"
  log "$set $case #$rep: ${seconds}s (CPU ${cpu}s), peak RSS $((rss / 1024)) MiB"
}

settle_cmd() {  # settle_cmd DATA BOOK PERIOD THREADS [--close]: the command line, in the array $cmd
  cmd=("$carecard" settle --data "$1" --rules "$rules" --book "$2" --period "$3" --threads "$4" "${@:5}")
}

# compare SET=DIR...: the three-way comparison, repeated $reps times. Each repetition runs every
# set in turn (wc, carecard --threads 1 and --threads 2, DuckDB on one set, then the next set), so
# that the machine's drift over the minutes of a run (±30 % seen here, other tenants of the host)
# falls on both sides of the scaling figure instead of on one set. Each set is read once, untimed,
# just before its turn: pages the guest dropped while the other set ran are back before `wc`.
# The two carecard runs swap places from one repetition to the next: the one that runs second
# finds the memory the first just freed still warm (bench/README.md, "First touches of memory"),
# and the thread speed-up should not owe anything to that. Their period folders are compared
# file by file through SHA-256 sums taken after each run, untimed (the same inputs settle to the
# same bytes whatever the thread count); the verdict goes into the results as an `identical` row.
compare() {
  local rep entry set dir t order
  for ((rep = 1; rep <= reps; rep++)); do
    if ((rep % 2)); then order=(1 2); else order=(2 1); fi
    for entry in "$@"; do
      set="${entry%%=*}" dir="${entry#*=}"
      log "reading $set once (untimed) before repetition $rep"
      cat "$dir"/*.csv >/dev/null
      measure "$set" wc "$rep" bash -c "cat '$dir'/*.csv | wc -l"
      for t in "${order[@]}"; do
        rm -rf "$work/book-$set"
        settle_cmd "$dir" "$work/book-$set" 2024-B1 "$t"
        measure "$set" "carecard_t$t" "$rep" "${cmd[@]}"
        (cd "$work/book-$set/2024-B1" && sha256sum -- *) >"$work/sums-t$t"
        rm -rf "$work/book-$set"
      done
      local same=yes
      cmp -s "$work/sums-t1" "$work/sums-t2" || same=no
      printf '%s\tidentical\t%s\t\t\t\t%s files, t%s first\n' "$set" "$rep" "$same $(wc -l <"$work/sums-t1")" \
        "${order[0]}" >>"$results"
      if [[ $same != yes ]]; then
        diff "$work/sums-t1" "$work/sums-t2" >&2 || true
        log "$set: --threads 1 and --threads 2 wrote different files (repetition $rep)"
        outputs_differ=1
      fi
      if ((duckdb)); then
        rm -rf "$work/duckdb-$set"
        measure "$set" duckdb_t2 "$rep" node "$here/duckdb_run.mjs" --data "$dir" --out "$work/duckdb-$set" --threads 2
      fi
      rm -rf "$work/duckdb-$set"
    done
  done
}

outputs_differ=0  # set by compare: the script reports it and exits 1 after the summary
sets=()
if ((main)); then
  small="$data/c$cards"
  gen_once "$small" "$cards" 2024-01:2024-02
  sets+=("c$cards=$small")
  if ((large)); then
    big="$data/c$large_cards"
    gen_once "$big" "$large_cards" 2024-01:2024-02
    sets+=("c$large_cards=$big")
  fi
  compare "${sets[@]}"
fi

# --- history: 24 periods ----------------------------------------------------------------
if ((history)); then
  hdir="$data/h$history_cards"
  gen_once "$hdir" "$history_cards" 2024-01:2027-12
  sets+=("h$history_cards=$hdir")
  periods=()
  for y in 2024 2025 2026 2027; do for b in 1 2 3 4 5 6; do periods+=("$y-B$b"); done; done
  # view K: the registry plus the monthly files up to period K's last month (what exists then).
  view() {
    local k="$1" v="$work/hview-$1"
    rm -rf "$v"; mkdir -p "$v"
    local last_month_index=$((k * 2))  # months 1..2k of 2024-01..
    for f in "$hdir"/*.csv; do
      local name; name=$(basename "$f")
      if [[ "$name" =~ ^(deposits|consumption)-([0-9]{4})-([0-9]{2})\.csv$ ]]; then
        local idx=$(( (10#${BASH_REMATCH[2]} - 2024) * 12 + 10#${BASH_REMATCH[3]} ))
        ((idx <= last_month_index)) || continue
      fi
      ln -s "$f" "$v/$name"
    done
    echo "$v"
  }
  view_rows() {  # transaction rows in a view, headers excluded
    local lines files
    lines=$(cat "$1"/deposits*.csv "$1"/consumption*.csv | wc -l)
    files=$(ls "$1"/deposits*.csv "$1"/consumption*.csv | wc -l)
    echo $((lines - files))
  }
  log "history: closing periods 1..23 in order in a scratch book (one run each)"
  rm -rf "$work/hbook"
  for ((k = 1; k <= 23; k++)); do
    v=$(view "$k")
    settle_cmd "$v" "$work/hbook" "${periods[k - 1]}" 2 --close
    measure "h$history_cards" "close_p$(printf %02d "$k")" 1 "${cmd[@]}"
    sed -i "\$s/\$/ view_rows=$(view_rows "$v")/" "$results"
  done
  v24=$(view 24)
  v1=$(view 1)
  for ((rep = 1; rep <= reps; rep++)); do
    rm -rf "$work/hbook1"
    settle_cmd "$v1" "$work/hbook1" "${periods[0]}" 2
    measure "h$history_cards" p01_fresh "$rep" "${cmd[@]}"
    sed -i "\$s/\$/ view_rows=$(view_rows "$v1")/" "$results"
    settle_cmd "$v24" "$work/hbook" "${periods[23]}" 2
    measure "h$history_cards" p24_after23 "$rep" "${cmd[@]}"
    sed -i "\$s/\$/ view_rows=$(view_rows "$v24")/" "$results"
  done
  rm -rf "$work"/hview-* "$work/hbook1"
fi

# --- first touches of memory ---------------------------------------------------------------
# How much a page the program touches for the first time costs on this machine, by amount. On a
# VM that hands freed memory back to its host (virtio-balloon free page reporting), the first few
# hundred MiB come from pages the guest still holds and cost what zeroing costs; beyond them,
# every page faults on the host too, and a run that needs 2 GB of new memory pays for it far more
# than ten times what a run needing 200 MB pays (bench/README.md, "First touches of memory").
# Measured with dd into a new file beside the books (its page cache is what a spill and the
# output files take), after 12 s idle (cold) and right after freeing as much (warm); each file is
# deleted at once, so hardly anything reaches the disk. Runs after the timed runs, never between.
((probe < 0)) && probe=$large
probe_results="$results_dir/$stamp-probe.tsv"
if ((probe)); then
  probe_mib=(256 512 1024 2048)
  if (($(free_mb "$work") < 2 * 2048 + 100)); then
    log "skipping the first-touch probe: it needs ~4.2 GB free in $work"
  else
    log "probing first touches of memory (~1 minute: 12 s idle before each cold write)"
    probe_file="$work/probe.bin"
    probe_write() {  # probe_write MIB: milliseconds to write MIB MiB into a new file
      local t0 t1
      t0=$(date +%s%N)
      dd if=/dev/zero of="$probe_file" bs=1M count="$1" status=none
      t1=$(date +%s%N)
      rm -f "$probe_file"
      echo $(((t1 - t0) / 1000000))
    }
    printf 'mib\tcold_ms\twarm_ms\n' >"$probe_results"
    for mib in "${probe_mib[@]}"; do
      sleep 12
      cold=$(probe_write "$mib")
      warm=$(probe_write "$mib")  # the same amount was freed a moment ago
      printf '%s\t%s\t%s\n' "$mib" "$cold" "$warm" >>"$probe_results"
      log "first touch of $mib MiB: ${cold} ms cold, ${warm} ms warm"
    done
  fi
fi

# --- micro-benchmarks -------------------------------------------------------------------------
if ((micro)); then
  log "running the Google Benchmark micro-benchmarks"
  "$build/bench/carecard_micro" --benchmark_min_time=0.5 --benchmark_out="$results_dir/$stamp-micro.json" \
    --benchmark_out_format=json | tee "$results_dir/$stamp-micro.txt" >&2
fi

# --- summary --------------------------------------------------------------------------------
summary="$results_dir/$stamp.txt"
{
  echo "carecard benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $label (as built before the runs: $build_type, carecard sha256 $binary_sha256…)"
  echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/^Mem:/ { print $2 }') GiB; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  default_threads=$("$carecard" settle --help | sed -n 's/.*--threads INT:INT in \[1 - 256\]=\([0-9]*\).*/\1/p')
  echo "carecard settle without --threads runs ${default_threads:-?} threads here (the CPUs it may use, at most 8)"
  python3 - "$results" "$reps" "$probe_results" "${sets[@]}" <<'PY'
import sys, statistics, collections, re, os
path, reps, probe_path, sets = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
meta = {}
for s in sets:
    name, d = s.split('=', 1)
    m = {}
    for line in open(d + '/.done'):
        if '=' in line:
            k, v = line.strip().split('=', 1); m[k] = int(v)
    meta[name] = m
rows = collections.defaultdict(list)
extra = collections.defaultdict(list)
identical = collections.defaultdict(list)  # set -> 'yes N files' / 'no N files', one a repetition
for i, line in enumerate(open(path)):
    if i == 0: continue
    st, case, rep, sec, rss, cpu, ex = (line.rstrip('\n').split('\t') + [''])[:7]
    if case == 'identical':
        identical[st].append(ex)
        continue
    rows[(st, case)].append((float(sec), int(rss) if rss else 0, float(cpu) if cpu else 0.0))
    extra[(st, case)].append(ex)
def med(st, case, idx=0):
    v = rows.get((st, case))
    return statistics.median(x[idx] for x in v) if v else None
MiB = 1024 * 1024
def card_months_of(st):
    # The card-months the run held (its own count, printed by settle), not cards x months: the
    # target is bytes per card-month, and cards without activity in a month have none.
    counts = [int(f.group(1)) for case in ('carecard_t2', 'carecard_t1') for e in extra.get((st, case), [])
              for f in [re.search(r'(?<!with )card-months: (\d+)', e)] if f]
    if len(set(counts)) > 1:
        return (max(counts), f'held by the run -- RUNS DISAGREE: {sorted(set(counts))}')
    return (counts[0], 'held by the run') if counts else (meta[st]['cards'] * 2, 'cards x 2 months')
for st in [s.split('=')[0] for s in sets if s.startswith('c')]:
    m = meta[st]; card_months, cm_source = card_months_of(st)
    print(f"\n## {st}: {m['cards']:,} cards, {m['txn_rows']:,} transaction rows ({m['all_rows']:,} rows in all), "
          f"{m['bytes'] / MiB:,.0f} MiB of CSV; medians of {reps}")
    print(f"| run | median wall s | each repetition, s | median CPU s | rows/s (txn, wall) | peak RSS MiB | bytes/card-month over 64 MiB ({card_months:,} card-months, {cm_source}) | page faults | vs DuckDB | vs wc |")
    print(f"|---|---|---|---|---|---|---|---|---|---|")
    dk, wc = med(st, 'duckdb_t2'), med(st, 'wc')
    for case, label in [('carecard_t1', 'carecard settle --threads 1'), ('carecard_t2', 'carecard settle --threads 2'),
                        ('duckdb_t2', 'DuckDB core aggregation, 2 threads'), ('wc', 'cat *.csv \\| wc -l')]:
        t = med(st, case)
        if t is None: continue
        rss = med(st, case, 1) * 1024
        per_cm = (rss - 64 * MiB) / card_months
        vs_dk = f"{t / dk:.2f}x" if dk and case.startswith('carecard') else ''
        vs_wc = f"{t / wc:.2f}x" if wc and case.startswith('carecard') else ''
        pcm = f"{per_cm:,.0f}" if case.startswith('carecard') else ''
        cpu = med(st, case, 2)
        faults = [int(f.group(1)) for e in extra.get((st, case), []) for f in [re.search(r'minor_faults=(\d+)', e)] if f]
        pf = f"{statistics.median(faults):,.0f}" if faults else ''
        each = ", ".join(f"{x[0]:.2f}" for x in rows[(st, case)])
        print(f"| {label} | {t:.2f} | {each} | {cpu:.2f} | {m['txn_rows'] / t / 1e6:.2f} M | {rss / MiB:,.0f} | {pcm} | {pf} | {vs_dk} | {vs_wc} |")
    t1, t2 = med(st, 'carecard_t1'), med(st, 'carecard_t2')
    if t1 and t2: print(f"\nthreads 2 vs 1 speed-up: {t1 / t2:.2f}x (target >= 1.7)")
    if dk and t2: print(f"carecard -t2 / DuckDB: {t2 / dk:.2f} (target <= 0.5)")
    if wc and t2: print(f"carecard -t2 / wc: {t2 / wc:.2f} (target <= 5)")
    same = identical.get(st, [])
    if same:
        yes = sum(1 for v in same if v.startswith('yes'))
        print(f"--threads 1 and --threads 2 wrote byte-identical period folders in {yes} of {len(same)} repetitions"
              + ("" if yes == len(same) else " -- OUTPUT DIFFERS"))
        # The run that comes second finds the memory the first just freed still warm: with an odd
        # number of repetitions one thread count came second once more than the other.
        t2_second = sum(1 for v in same if v.endswith('t1 first'))
        print(f"order: --threads 2 ran second in {t2_second} of {len(same)} repetitions, --threads 1 in {len(same) - t2_second}")
    d = extra.get((st, 'duckdb_t2'))
    c = extra.get((st, 'carecard_t2'))
    if d and c:
        dm = re.search(r'"paid":(\d+),"subsidy_total":"([\d.]+)"', d[-1])
        cp = re.search(r'paid: (\d+)', c[-1]); cs = re.search(r'subsidies ([\d.]+)', c[-1])
        if dm and cp and cs:
            dp = (float(dm.group(2)) - float(cs.group(1))) / max(float(cs.group(1)), 1) * 100
            print(f"cross-check: carecard paid {cp.group(1)} card-months, subsidies {cs.group(1)}; "
                  f"DuckDB (simplified rules) paid {dm.group(1)}, subsidies {dm.group(2)} ({dp:+.2f}%)")
big = [s.split('=')[0] for s in sets if s.startswith('c')]
if len(big) == 2:
    a, b = big
    ra = meta[b]['txn_rows'] / meta[a]['txn_rows']
    print(f"\n## scaling {a} -> {b} ({ra:.3f}x the rows; \"per 10x the rows\" scales each time ratio by 10 / {ra:.3f})")
    for case in ['carecard_t1', 'carecard_t2', 'duckdb_t2', 'wc']:
        x, y = med(a, case), med(b, case)
        if not (x and y): continue
        # The sets run in turn within a repetition, so a repetition's own ratio compares runs a
        # minute apart: their spread shows how far the machine moved during the benchmark.
        pairs = [f"{ly[0] / lx[0]:.2f}x" for lx, ly in zip(rows[(a, case)], rows[(b, case)])]
        print(f"- {case}: {y / x:.2f}x the time, {y / x * 10 / ra:.2f}x per 10x the rows (target for carecard <= 10.5); "
              f"repetition by repetition: {', '.join(pairs)}")
hist = [s.split('=')[0] for s in sets if s.startswith('h')]
for st in hist:
    m = meta[st]
    print(f"\n## history {st}: {m['cards']:,} cards, 48 months of deposit and consumption files, {m['txn_rows']:,} transaction rows in all")
    def vr(case):
        e = extra.get((st, case))
        r = re.search(r'view_rows=(\d+)', e[-1]) if e else None
        return int(r.group(1)) if r else 0
    p1, p24 = med(st, 'p01_fresh'), med(st, 'p24_after23')
    if p1 and p24:
        r1, r24 = vr('p01_fresh'), vr('p24_after23')
        print(f"| run | median wall s | median CPU s | transaction rows read | µs (wall) per row read | peak RSS MiB |")
        print(f"|---|---|---|---|---|---|")
        print(f"| period 1 (2024-B1), fresh book | {p1:.2f} | {med(st, 'p01_fresh', 2):.2f} | {r1:,} | {p1 / r1 * 1e6:.2f} | {med(st, 'p01_fresh', 1) / 1024:,.0f} |")
        print(f"| period 24 (2027-B6), 23 closed | {p24:.2f} | {med(st, 'p24_after23', 2):.2f} | {r24:,} | {p24 / r24 * 1e6:.2f} | {med(st, 'p24_after23', 1) / 1024:,.0f} |")
        print(f"\nperiod 24 / period 1: {p24 / p1:.1f}x the time for {r24 / r1:.1f}x the rows read (--threads 2)")
    closes = sorted(k for k in rows if k[0] == st and k[1].startswith('close_p'))
    if closes:
        print("closing runs (one each, --threads 2): " + ", ".join(
            f"p{k[1][7:]} {rows[k][0][0]:.2f}s" for k in closes))
if os.path.exists(probe_path):
    probe = [tuple(int(x) for x in line.split('\t')) for line in list(open(probe_path))[1:] if line.strip()]
    if probe:
        print("\n## first touches of memory on this machine (dd into a new file: cold after 12 s idle, warm right after freeing as much)")
        print("| MiB | cold ms | warm ms | cold ns per 4 KiB page | cold / warm |")
        print("|---|---|---|---|---|")
        for mib, cold, warm in probe:
            print(f"| {mib:,} | {cold:,} | {warm:,} | {cold * 1e6 / (mib * 256):,.0f} | {cold / max(warm, 1):.1f}x |")
        (m0, c0, _), (m1, c1, _) = probe[0], probe[-1]
        print(f"\ncold: {m1 / m0:.0f}x the memory took {c1 / max(c0, 1):.1f}x the time. A run's own code can scale "
              f"linearly and the run still not, when the larger run needs more new memory than the guest keeps "
              f"warm (bench/README.md, \"First touches of memory\").")
PY
} | tee "$summary"
log "results: $results, summary: $summary"
((outputs_differ == 0)) || die "--threads 1 and --threads 2 wrote different files (see the summary)"
