#!/usr/bin/env python3
"""late.py DATA_DIR B1_DIR -- adds late rows to a (copied) data folder after 2024-B1 was closed.

B1_DIR is a closed 2024-B1 period folder (its card_months.csv picks the victims).  Each change
below is a "late correction" of semantics.md §7 and should produce an adjustment in 2024-B2:
  1. a deposit dated in February (closed) that lifts a below-threshold card-month to paid;
  2. a deposit dated in February that lifts a type-2 card paid at the lower tier to tier 2;
  3. a reversal, dated in March, of a January deposit of a card paid in January;
  4. a death date registered late (15 January) for an elder with paid January and February;
  5. an enrolment added late (gov_home_service from 10 February), plus a home_bed at the same
     institution, so homebed_exclusions lists the elder in March and April;
  6. a card that left the registry (its row deleted): its card-months are `removed`;
  7. a new card, issued earlier, for an elder paid in January: the old card becomes duplicate_card.
Prints what it changed.
"""
import csv
import glob
import os
import re
import sys

data, b1 = sys.argv[1], sys.argv[2]
cms = list(csv.DictReader(open(os.path.join(b1, "card_months.csv"), encoding="utf-8")))
cm = {(r["month"], r["card_no"]): r for r in cms}
used_cards, used_persons = set(), set()


def fen(s):
    w, _, f = s.partition(".")
    return int(w) * 100 + int((f + "00")[:2])


def yuan(n):
    return f"{n // 100}.{n % 100:02d}"


def pick(pred):
    for r in cms:
        if r["card_no"] not in used_cards and r["person_id"] not in used_persons and pred(r):
            used_cards.add(r["card_no"])
            used_persons.add(r["person_id"])
            return r
    raise SystemExit("late.py: no candidate")


def append(path, line):
    with open(path, "rb") as f:
        ends_nl = f.read().endswith(b"\n")
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(("" if ends_nl else "\n") + line + "\n")


deposits = []  # valid-looking January deposits: (txn_id, card, amount)
referenced = set()
for path in sorted(glob.glob(os.path.join(data, "deposits*.csv"))):
    for r in csv.DictReader(open(path, encoding="utf-8-sig", newline="")):
        if r.get("ref_txn_id"):
            referenced.add(r["ref_txn_id"])
        if (r.get("kind") == "deposit" and re.fullmatch(r"[0-9]{1,12}\.[0-9]{2}", r.get("amount") or "")
                and re.fullmatch(r"2024-01-1[0-9]T..:..:..\+08:00", r.get("at") or "")):
            deposits.append((r["txn_id"], r["card_no"], r["amount"]))
txn_counts = {}
for t, c, a in deposits:
    txn_counts[t] = txn_counts.get(t, 0) + 1
dep_file = os.path.join(data, "deposits-2024-03.csv")
log = []

# 1. late deposit dated in a closed month: below_threshold -> paid
r = pick(lambda r: r["month"] == "2024-02" and r["status"] == "below_threshold" and r["card_type"] == "1"
         and 0 < fen(r["net_deposit"]) < 10000)
append(dep_file, f"DLATE0001,{r['card_no']},deposit,{yuan(10000 - fen(r['net_deposit']))},"
                 f"2024-02-20T10:00:00+08:00,cash,")
log.append(f"1. late Feb deposit on {r['card_no']} (net {r['net_deposit']} -> 100.00)")

# 2. late deposit lifts the lower tier to the card's own tier
r = pick(lambda r: r["month"] == "2024-02" and r["status"] == "paid" and r["card_type"] == "2" and r["tier"] == "1"
         and fen(r["net_deposit"]) < 20000)
append(dep_file, f"DLATE0002,{r['card_no']},deposit,{yuan(20000 - fen(r['net_deposit']))},"
                 f"2024-02-21T10:00:00+08:00,bank,")
log.append(f"2. late Feb deposit on {r['card_no']} (net {r['net_deposit']} -> 200.00)")

# 3. a March reversal of a January deposit of a card paid in January
cands = {c: (t, a) for t, c, a in reversed(deposits) if t not in referenced and txn_counts[t] == 1}
r = pick(lambda r: r["month"] == "2024-01" and r["status"] == "paid" and r["card_no"] in cands)
t, a = cands[r["card_no"]]
append(dep_file, f"DLATE0003,{r['card_no']},reversal,{a},2024-03-10T09:00:00+08:00,cash,{t}")
log.append(f"3. March reversal of January deposit {t} ({a}) on {r['card_no']} (Jan net {r['net_deposit']})")

# 4. a death date registered late
paid_feb = {x["person_id"] for x in cms if x["month"] == "2024-02" and x["status"] == "paid"}
r = pick(lambda r: r["month"] == "2024-01" and r["status"] == "paid" and r["person_id"] in paid_feb)
path = os.path.join(data, "persons.csv")
lines = open(path, encoding="utf-8", newline="").read().split("\n")
for i, ln in enumerate(lines):
    if ln.startswith(r["person_id"] + ",") and ln.endswith(","):
        lines[i] = ln + "2024-01-15"
        break
else:
    raise SystemExit("late.py: person row not found")
open(path, "w", encoding="utf-8", newline="").write("\n".join(lines))
log.append(f"4. death date 2024-01-15 registered late for {r['person_id']} (card {r['card_no']})")

# 5. an enrolment added late
r = pick(lambda r: r["month"] == "2024-02" and r["status"] == "paid")
append(os.path.join(data, "enrollments.csv"), f"{r['person_id']},gov_home_service,ILATE,2024-02-10,,")
append(os.path.join(data, "enrollments.csv"), f"{r['person_id']},home_bed,ILATE,2023-06-01,,card_subsidy")
log.append(f"5. gov_home_service from 2024-02-10 (and home_bed) added late for {r['person_id']} (card {r['card_no']})")

# 6. a card leaves the registry
r = pick(lambda r: r["month"] == "2024-01" and r["status"] == "paid")
path = os.path.join(data, "cards.csv")
lines = open(path, encoding="utf-8", newline="").read().split("\n")
lines = [ln for ln in lines if not ln.startswith(r["card_no"] + ",")]
open(path, "w", encoding="utf-8", newline="").write("\n".join(lines))
log.append(f"6. card {r['card_no']} deleted from cards.csv")

# 7. a new card issued earlier for an elder paid in January
r = pick(lambda r: r["month"] == "2024-01" and r["status"] == "paid")
append(os.path.join(data, "cards.csv"), f"QDLATE0007,{r['person_id']},1,{r['center_id']},2020-01-01,")
log.append(f"7. new card QDLATE0007 issued 2020-01-01 for {r['person_id']} (old card {r['card_no']})")

print("\n".join(log))
