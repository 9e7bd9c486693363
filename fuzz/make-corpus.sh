#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets from the worked example, the
# policies in the tree and a small `carecard gen` folder (some bad rows included).
#
#   fuzz/make-corpus.sh OUT_DIR [CARECARD_BINARY]
#
# Writes OUT_DIR/{csv_reader,intake,policy_loader,expression}/ (small files,
# generated on demand; nothing here is committed). Without a binary, or when it
# cannot run, the gen seeds are left out.
set -euo pipefail
out=${1:?usage: fuzz/make-corpus.sh OUT_DIR [CARECARD_BINARY]}
binary=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
example="$root/../shared/spec/example"
mkdir -p "$out"/{csv_reader,intake,policy_loader,expression}

csv_sources=()
for f in "$example"/data/*.csv "$example"/data-2024-B2/*.csv "$example"/expected/*/*.csv; do
  [[ -f $f ]] && csv_sources+=("$f")
done
if [[ -n $binary && -x $binary ]]; then
  gen="$out/.gen"
  rm -rf "$gen"
  if "$binary" gen --out "$gen" --cards 40 --months 2024-01:2024-03 --seed 7 --bad-rows 0.2 >/dev/null 2>&1; then
    for f in "$gen"/*.csv; do csv_sources+=("$f"); done
  else
    echo "make-corpus: '$binary gen' failed; seeds from the example only" >&2
  fi
fi

# The intake target's first byte picks the kind: its index in kKinds of intake_fuzz.cc.
kind_byte() {
  case $(basename "$1") in
    centers.csv) echo 0 ;; stations.csv) echo 1 ;; persons.csv) echo 2 ;; assessments.csv) echo 3 ;;
    cards.csv) echo 4 ;; enrollments.csv) echo 5 ;; platform_balances.csv) echo 6 ;;
    deposits*.csv) echo 7 ;; consumption*.csv) echo 8 ;; *) echo "" ;;
  esac
}

n=0
for f in "${csv_sources[@]}"; do
  n=$((n + 1))
  # Seeds stay small (40 lines) so that libFuzzer's length limit stays small too.
  # csv_reader: a chunk-size byte, then the file; a CRLF copy as well.
  { printf '\x05'; head -n 40 "$f"; } >"$out/csv_reader/seed-$n"
  { printf '\x02'; head -n 40 "$f" | sed 's/$/\r/'; } >"$out/csv_reader/seed-$n-crlf"
  kind=$(kind_byte "$f")
  if [[ -n $kind && $f != */expected/* ]]; then
    # intake: the kind byte, a flag byte (1: the file brings its own header), the file.
    { printf "\\x$(printf %02x "$kind")\\x01"; head -n 40 "$f"; } >"$out/intake/seed-$n"
  fi
done

n=0
for f in "$root"/rules/*.yaml "$example"/rules.yaml "$root"/tools/reference/*.yaml; do
  [[ -f $f ]] || continue
  n=$((n + 1))
  cp "$f" "$out/policy_loader/seed-$n"
  # expression: every `eligible:` of the policies, comments removed.
  { grep -h 'eligible:' "$f" || true; } | sed -e 's/^[[:space:]]*eligible:[[:space:]]*//' -e 's/[[:space:]]*#.*$//' |
    while IFS= read -r expression; do
      printf '%s' "$expression" >"$out/expression/seed-$(printf '%s' "$expression" | sha1sum | cut -c1-12)"
    done
done
for expression in '60 <= age < 80' 'not (assessment >= 2)' 'has_assessment and assessment != 0' \
  'urban or left_behind or living_alone or empty_nest or dibao or tekun or disabled or special_family' \
  'true == (age > 1)' '((((rural))))'; do
  printf '%s' "$expression" >"$out/expression/seed-$(printf '%s' "$expression" | sha1sum | cut -c1-12)"
done
rm -rf "$out/.gen"
echo "corpus in $out: $(ls "$out/csv_reader" | wc -l) csv_reader, $(ls "$out/intake" | wc -l) intake," \
  "$(ls "$out/policy_loader" | wc -l) policy_loader, $(ls "$out/expression" | wc -l) expression seeds"
