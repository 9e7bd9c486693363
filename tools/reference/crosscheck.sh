#!/bin/bash
# Cross-checks the C++ engine against the reference implementation, cell by cell.
#
#   tools/reference/crosscheck.sh ENGINE [SEED ...]        (default seed: 1)
#   e.g. tools/reference/crosscheck.sh build/carecard 1 2 3
#
# For each seed: generates a data folder with `ENGINE gen` (3000 cards, 2024-01..04, 3% bad rows),
# settles 2024-B1 --close and then 2024-B2 with both the engine and settle.py (separate books),
# and compares every CSV of both periods (cellcompare.py).  Then the late-data scenario: after
# 2024-B1 is closed, a copy of the data folder gets late rows (late.py: a deposit dated in a
# closed month, a March reversal of a January deposit, a death registered late, an enrolment added
# late, a card removed from the registry, an earlier-issued second card), and 2024-B2 is settled
# again on both sides against copies of the closed books.  Finally the hand-made edge cases of
# edge_data.py, under the shipped policy and variant-rules.yaml.
# Environment: WORK=DIR keeps the work folder there (default: a new folder under /tmp, kept).
# Exit status: 0 when every file matches, 1 otherwise.
set -u
[[ $# -ge 1 ]] || { sed -n '2,16p' "$0"; exit 1; }
engine=$(realpath "$1"); shift
seeds=("${@:-1}")
here=$(cd "$(dirname "$0")" && pwd)
rules=${RULES:-$here/../../rules/qingdao-2022.yaml}
work=${WORK:-$(mktemp -d /tmp/crosscheck.XXXXXX)}
mkdir -p "$work"
rc=0

settle_both() {  # DATA ENGINE_BOOK REF_BOOK PERIOD [--close]
  local data=$1 eb=$2 rb=$3 p=$4; shift 4
  "$engine" settle --data "$data" --rules "$rules" --book "$eb" --period "$p" "$@" > "$eb.$p.log" 2>&1 \
    || { echo "engine settle $p failed (exit $?), see $eb.$p.log"; rc=1; }
  python3 "$here/settle.py" --data "$data" --rules "$rules" --book "$rb" --period "$p" "$@" > "$rb.$p.log" 2>&1 \
    || { echo "reference settle $p failed (exit $?), see $rb.$p.log"; rc=1; }
}

compare() {  # LABEL ENGINE_DIR REF_DIR
  echo "-- $1"
  python3 "$here/cellcompare.py" "$2" "$3" || rc=1
}

for seed in "${seeds[@]}"; do
  d=$work/seed$seed
  rm -rf "$d"; mkdir -p "$d"
  echo "== seed $seed (work folder $d)"
  "$engine" gen --out "$d/data" --cards 3000 --months 2024-01:2024-04 --seed "$seed" --bad-rows 0.03 > "$d/gen.log" \
    || { echo "gen failed"; rc=1; continue; }
  settle_both "$d/data" "$d/E" "$d/R" 2024-B1 --close
  cp -r "$d/E" "$d/E-late"; cp -r "$d/R" "$d/R-late"
  settle_both "$d/data" "$d/E" "$d/R" 2024-B2
  compare "seed $seed 2024-B1" "$d/E/2024-B1" "$d/R/2024-B1"
  compare "seed $seed 2024-B2" "$d/E/2024-B2" "$d/R/2024-B2"

  cp -r "$d/data" "$d/data-late"
  python3 "$here/late.py" "$d/data-late" "$d/R/2024-B1" | sed 's/^/   late: /'
  settle_both "$d/data-late" "$d/E-late" "$d/R-late" 2024-B2
  compare "seed $seed 2024-B2 with late rows" "$d/E-late/2024-B2" "$d/R-late/2024-B2"
done
# Hand-made edge cases (edge_data.py), under the shipped policy and a variant policy: 2024-B1
# closed, 2024-B2 closed (late rows), 2024-B3; then a draft of 2024-B3 right after closing
# 2024-B1 (a run may target any period after the latest closed one, semantics.md §7).
python3 "$here/edge_data.py" "$work/edge"
for r in "$rules:shipped" "$here/variant-rules.yaml:variant"; do
  rules=${r%:*}; tag=${r##*:}; d=$work/edge/$tag
  rm -rf "$d"; mkdir -p "$d"
  echo "== edge cases, $tag policy"
  settle_both "$work/edge/stage1" "$d/E" "$d/R" 2024-B1 --close
  cp -r "$d/E" "$d/E-gap"; cp -r "$d/R" "$d/R-gap"
  settle_both "$work/edge/stage2" "$d/E" "$d/R" 2024-B2 --close
  settle_both "$work/edge/stage3" "$d/E" "$d/R" 2024-B3
  settle_both "$work/edge/stage3" "$d/E-gap" "$d/R-gap" 2024-B3
  for p in 2024-B1 2024-B2 2024-B3; do compare "edge $tag $p" "$d/E/$p" "$d/R/$p"; done
  compare "edge $tag 2024-B3 drafted with 2024-B2 still open" "$d/E-gap/2024-B3" "$d/R-gap/2024-B3"
done
rules=${RULES:-$here/../../rules/qingdao-2022.yaml}
echo "work folder: $work"
exit $rc
