#!/usr/bin/env python3
"""cellcompare.py ENGINE_DIR REFERENCE_DIR [N] -- compares two period folders cell by cell.

Rows are keyed as /work/shared/tools/compare.py keys them, but every column is compared
(exceptions: severity, txn_id, card_no, person_id, month; `detail` is free text and skipped).
Also checks the row order of each file against the reference.  Prints up to N differences per
file (default 8) and a last line 'N of M files match'; exit status 0 when all match.
"""
import csv
import os
import sys

KEYS = {
    "card_months.csv": ["month", "card_no"],
    "adjustments.csv": ["original_month", "card_no"],
    "payouts.csv": ["center_id"],
    "statements.csv": ["card_no"],
    "consumption_by_center.csv": ["serving_center_id", "home_center_id", "service"],
    "homebed_exclusions.csv": ["month", "institution_id", "person_id"],
    "exceptions.csv": ["code", "file", "line"],
}
SKIP = {"exceptions.csv": {"detail"}}


def key_of(name, r):
    if name == "exceptions.csv" and r.get("code") == "duplicate_card":
        return ("duplicate_card", r.get("card_no"), r.get("month"))
    return tuple(r.get(c) for c in KEYS[name])


def load(path, name):
    rows, order, dup = {}, [], 0
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        for r in reader:
            k = key_of(name, r)
            if k in rows:
                dup += 1
                k = k + (f"#dup{dup}",)
            rows[k] = r
            order.append(k)
    return header, rows, order


def main():
    eng, ref = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    ok = 0
    for name in KEYS:
        ep, rp = os.path.join(eng, name), os.path.join(ref, name)
        if not os.path.exists(ep) or not os.path.exists(rp):
            print(f"{name}: missing ({'engine' if not os.path.exists(ep) else 'reference'})")
            continue
        eh, e, eo = load(ep, name)
        rh, r, ro = load(rp, name)
        problems = []
        if eh[:len(rh)] != rh:
            problems.append(f"  header: engine {eh} reference {rh}")
        cols = [c for c in rh if c not in SKIP.get(name, set())]
        only_ref = [k for k in ro if k not in e]
        only_eng = [k for k in eo if k not in r]
        differ = []
        for k in ro:
            if k in e:
                cells = [(c, e[k].get(c), r[k].get(c)) for c in cols if e[k].get(c) != r[k].get(c)]
                if cells:
                    differ.append((k, cells))
        common_e = [k for k in eo if k in r]
        common_r = [k for k in ro if k in e]
        if common_e != common_r:
            i = next(i for i, (a, b) in enumerate(zip(common_e, common_r)) if a != b)
            problems.append(f"  row order differs at common row {i}: engine {common_e[i]} reference {common_r[i]}")
        if only_ref or only_eng or differ:
            problems.insert(0, f"  {len(only_ref)} rows only in reference, {len(only_eng)} only in engine, "
                               f"{len(differ)} rows differ (reference has {len(r)} rows)")
        for k in only_ref[:limit]:
            problems.append(f"  only reference {k}: {dict((c, r[k][c]) for c in cols if r[k][c])}")
        for k in only_eng[:limit]:
            problems.append(f"  only engine    {k}: {dict((c, e[k][c]) for c in cols if e[k].get(c))}")
        # group differing cells by kind, so that one systematic difference shows as one line
        kinds = {}
        for k, cells in differ:
            for c, a, b in cells:
                code = r[k].get("code", "")
                kind = (c, code, "engine empty" if not a else "reference empty" if not b else "both filled")
                kinds.setdefault(kind, []).append((k, a, b))
        for kind, hits in sorted(kinds.items()):
            k, a, b = hits[0]
            problems.append(f"  {len(hits)} x column {kind[0]}{' of ' + kind[1] if kind[1] else ''} ({kind[2]}), "
                            f"e.g. {k}: engine={a!r} reference={b!r}")
        for k, cells in differ[:limit]:
            problems.append(f"  differ {k}: " + "; ".join(f"{c}: engine={a!r} reference={b!r}" for c, a, b in cells))
        if problems:
            print(f"{name}:")
            print("\n".join(problems))
        else:
            ok += 1
    print(f"{ok} of {len(KEYS)} files match")
    sys.exit(0 if ok == len(KEYS) else 1)


if __name__ == "__main__":
    main()
