#!/bin/bash
# Settles the worked example with the reference and compares it with expected/ (both periods).
here=$(cd "$(dirname "$0")" && pwd)
shared=$(cd "$here/../../../shared" && pwd)
ex=$shared/spec/example
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
python3 "$here/settle.py" --data "$ex/data" --rules "$ex/rules.yaml" --book "$t/book" --period 2024-B1 --close || exit 1
python3 "$here/settle.py" --data "$ex/data-2024-B2" --rules "$ex/rules.yaml" --book "$t/book" --period 2024-B2 || exit 1
rc=0
for p in 2024-B1 2024-B2; do
  echo "== $p"; python3 "$shared/tools/compare.py" "$t/book/$p" "$ex/expected/$p" || rc=1
done
[[ -n $KEEP ]] && cp -r "$t/book" "$KEEP"
exit $rc
