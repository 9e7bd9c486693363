#!/usr/bin/env python3
"""Independent reference implementation of the carecard settlement specification.

    python3 settle.py --data DIR --rules FILE --book DIR --period 2024-B1 [--close]

Written only from spec/semantics.md, formats.md, rules.md, cli.md and the worked example,
to cross-check the C++ engine cell by cell.  It is meant to be read next to the spec: section
numbers in comments (§5.2 ...) point into semantics.md.  Python 3.11 standard library plus
PyYAML (only its BaseLoader, so every scalar stays a string and amounts never become floats).

Money is integer fen everywhere; proration uses fractions.Fraction.  Not implemented (not
needed for cross-checking the CSV outputs): manifest.json, replay/verify, explain, PostgreSQL.

Book state: a closed period is the folder BOOK/PERIOD with an empty file CLOSED in it.
Everything the next runs need (recorded card-month subsidies, closed adjustments, carried-out
amounts, statement flows and closing balances) is read back from the closed CSV files.
"""
import argparse
import csv
import glob
import os
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

import yaml

# ----------------------------------------------------------------------------- money (§3)

AMOUNT_RE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")
SIGNED_RE = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,2})?")


def to_fen(text):
    whole, _, frac = text.lstrip("-").partition(".")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    return -fen if text.startswith("-") else fen


def parse_amount(text):
    """A positive input amount in fen, or None (bad_amount)."""
    if not AMOUNT_RE.fullmatch(text):
        return None
    fen = to_fen(text)
    return fen if fen > 0 else None


def parse_signed(text):
    """A signed amount (platform balances; zero allowed) in fen, or None."""
    return to_fen(text) if SIGNED_RE.fullmatch(text) else None


def fmt(fen):
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def round_fen(q, mode):
    """Rounds a non-negative Fraction of fen to whole fen (half_up or half_even)."""
    floor = q.numerator // q.denominator
    rest = q - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (mode == "half_up" or floor % 2 == 1)):
        floor += 1
    return floor


# ----------------------------------------------------------------------------- dates and months (§2)

DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
TS_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
                   r"(Z|[+-][0-9]{2}:[0-9]{2})")


def parse_date(text):
    m = DATE_RE.fullmatch(text)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def parse_offset(text):
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    h, mi = int(text[1:3]), int(text[4:6])
    if h > 23 or mi > 59:
        return None
    return timezone(sign * timedelta(hours=h, minutes=mi))


def parse_timestamp(text):
    """An aware datetime, or None.  The offset is required (formats.md)."""
    m = TS_RE.fullmatch(text)
    if not m:
        return None
    tz = parse_offset(m[8])
    if tz is None:
        return None
    try:
        micro = int((m[7][1:] + "000000")[:6]) if m[7] else 0
        return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]), micro, tz)
    except ValueError:
        return None


# A month is an int: year * 12 + (month - 1).
def month_of(d):
    return d.year * 12 + d.month - 1


def month_str(ym):
    return f"{ym // 12:04d}-{ym % 12 + 1:02d}"


def parse_month(text):
    m = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text)
    if not m or not 1 <= int(m[2]) <= 12:
        return None
    return int(m[1]) * 12 + int(m[2]) - 1


def first_day(ym):
    return date(ym // 12, ym % 12 + 1, 1)


def last_day(ym):
    return first_day(ym + 1) - timedelta(days=1)


def days_in(ym):
    return last_day(ym).day


def add_months_clamped(d, n):
    """Same day n months later, or that month's last day where the day does not exist."""
    ym = month_of(d) + n
    return date(ym // 12, ym % 12 + 1, min(d.day, days_in(ym)))


def completed_years(birth, on):
    """Age on a day; someone born on 29 Feb completes a year on 1 Mar in a common year."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# ----------------------------------------------------------------------------- payout periods (§2)

SUFFIX = {1: ("M", 12), 2: ("B", 6), 3: ("Q", 4), 6: ("H", 2), 12: ("Y", 1)}


class Period:
    def __init__(self, year, index, k):
        self.year, self.index, self.k = year, index, k

    @classmethod
    def parse(cls, name, k):
        letter, count = SUFFIX[k]
        if k == 12:
            m = re.fullmatch(r"([0-9]{4})-Y", name)
            return cls(int(m[1]), 1, k) if m else None
        m = re.fullmatch(r"([0-9]{4})-" + letter + (r"([0-9]{2})" if k == 1 else r"([0-9])"), name)
        if not m or not 1 <= int(m[2]) <= count:
            return None
        return cls(int(m[1]), int(m[2]), k)

    @classmethod
    def of_month(cls, ym, k):
        return cls(ym // 12, (ym % 12) // k + 1, k)

    @property
    def name(self):
        letter, _ = SUFFIX[self.k]
        if self.k == 12:
            return f"{self.year}-Y"
        return f"{self.year}-{letter}{self.index:02d}" if self.k == 1 else f"{self.year}-{letter}{self.index}"

    @property
    def months(self):
        start = self.year * 12 + (self.index - 1) * self.k
        return list(range(start, start + self.k))

    def key(self):
        return (self.year, self.index)

    def next(self):
        return Period.of_month(self.months[-1] + 1, self.k)


# ----------------------------------------------------------------------------- eligibility expressions

VARIABLES = {"age": "num", "assessment": "num", "has_assessment": "bool", "rural": "bool", "urban": "bool"}
FLAGS = ["left_behind", "living_alone", "empty_nest", "dibao", "tekun", "disabled", "special_family"]
VARIABLES.update({f: "bool" for f in FLAGS})
COMPARISONS = ["<=", ">=", "==", "!=", "<", ">"]
TOKEN_RE = re.compile(r"\s*(?:([0-9]+)|([A-Za-z_][A-Za-z0-9_]*)|(<=|>=|==|!=|<|>|\(|\)))")


class ExprError(Exception):
    pass


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character at position {pos + 1}")
        tokens.append(("num", int(m[1])) if m[1] else ("name", m[2]) if m[2] else ("op", m[3]))
        pos = m.end()
    return tokens


def parse_expression(text):
    """or > and > not > comparisons (chained, as in mathematics) > atoms.  Returns a tree of tuples."""
    tokens = tokenize(text)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def binary(word, sub):
        parts = [sub()]
        while peek() == ("name", word):
            take()
            parts.append(sub())
        return parts[0] if len(parts) == 1 else (word, parts)

    def p_or():
        return binary("or", p_and)

    def p_and():
        return binary("and", p_not)

    def p_not():
        if peek() == ("name", "not"):
            take()
            return ("not", p_not())
        return p_cmp()

    def p_cmp():
        operands, ops = [p_atom()], []
        while peek()[0] == "op" and peek()[1] in COMPARISONS:
            ops.append(take()[1])
            operands.append(p_atom())
        return operands[0] if not ops else ("cmp", operands, ops)

    def p_atom():
        kind, value = take() if pos < len(tokens) else (None, None)
        if kind == "num":
            return ("lit", value)
        if kind == "name" and value in ("true", "false"):
            return ("lit", value == "true")
        if kind == "name" and value in VARIABLES:
            return ("var", value)
        if (kind, value) == ("op", "("):
            inner = p_or()
            if peek() != ("op", ")"):
                raise ExprError("expected ')'")
            take()
            return inner
        raise ExprError(f"unexpected {value!r}")

    tree = p_or()
    if pos != len(tokens):
        raise ExprError(f"unexpected {tokens[pos][1]!r}")
    if type_of(tree) != "bool":
        raise ExprError("the expression must be a boolean")
    return tree


def type_of(node):
    kind = node[0]
    if kind == "lit":
        return "bool" if isinstance(node[1], bool) else "num"
    if kind == "var":
        return VARIABLES[node[1]]
    if kind == "not":
        if type_of(node[1]) != "bool":
            raise ExprError("'not' takes a boolean")
        return "bool"
    if kind in ("and", "or"):
        if any(type_of(p) != "bool" for p in node[1]):
            raise ExprError(f"'{kind}' takes booleans")
        return "bool"
    operands, ops = node[1], node[2]
    for a, op, b in zip(operands, ops, operands[1:]):
        ta, tb = type_of(a), type_of(b)
        if op in ("==", "!=") and ta != tb or op not in ("==", "!=") and (ta, tb) != ("num", "num"):
            raise ExprError(f"type error in '{op}'")
    return "bool"


def evaluate(node, env):
    """env maps a variable to its value; None is an absent value (any comparison with it is false)."""
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        return env[node[1]]
    if kind == "not":
        return not evaluate(node[1], env)
    if kind == "and":
        return all(evaluate(p, env) for p in node[1])
    if kind == "or":
        return any(evaluate(p, env) for p in node[1])
    values = [evaluate(p, env) for p in node[1]]
    for a, op, b in zip(values, node[2], values[1:]):
        if a is None or b is None:
            return False
        if not {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]:
            return False
    return True


# ----------------------------------------------------------------------------- rules file (rules.md)

class RulesError(Exception):
    pass


class CardType:
    def __init__(self, d):
        self.type = int(d["type"])
        self.eligible_text = d["eligible"]
        self.eligible = parse_expression(d["eligible"])
        self.min_deposit = rule_amount(d["min_monthly_deposit"])
        self.subsidy = rule_amount(d["monthly_subsidy"])


class Version:
    def __init__(self, d, policy):
        self.version = d["version"]
        self.rule_version = f"{policy}@{self.version}"
        self.start = parse_month(d["from"])
        self.end = parse_month(d["to"]) if d.get("to") else None
        self.valid_months = int(d.get("assessment_valid_months") or 12)
        self.allow_lower = (d.get("allow_lower_tier") or "true") == "true"
        self.proration = d.get("proration") or "none"
        self.rounding = d.get("rounding") or "half_up"
        self.types = {ct.type: ct for ct in (CardType(c) for c in d["card_types"])}
        self.exclusions = []
        for e in d.get("exclusions") or []:
            types = {int(t) for t in e["card_types"]} if e.get("card_types") else None
            self.exclusions.append((e["program"], e.get("choice") or None, types))

    def covers(self, ym):
        return self.start <= ym and (self.end is None or ym <= self.end)


class Policy:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            d = yaml.load(f, Loader=yaml.BaseLoader)  # every scalar a string: amounts stay exact
        if not isinstance(d, dict) or d.get("schema") != "subsidy-rules/1":
            raise RulesError(f"{path}: expected schema: subsidy-rules/1")
        try:
            self.policy = d["policy"]
            tz = d.get("timezone") or "+08:00"
            self.tz = parse_offset(tz) if re.fullmatch(r"[+-][0-9]{2}:[0-9]{2}", tz) else None
            self.k = int(d.get("months_per_period") or 2)
            self.versions = [Version(v, self.policy) for v in d["versions"]]
        except (KeyError, ValueError, ExprError, TypeError) as e:
            raise RulesError(f"{path}: {e}")
        if self.tz is None or self.k not in SUFFIX:
            raise RulesError(f"{path}: bad timezone or months_per_period")

    def version_for(self, ym):
        return next((v for v in self.versions if v.covers(ym)), None)


def rule_amount(text):
    fen = parse_amount(text)
    if fen is None:
        raise ValueError(f"bad amount {text!r}")
    return fen


# ----------------------------------------------------------------------------- reading CSV files

class Refused(Exception):
    """The inputs refuse the run (exit status 2)."""


def read_csv(path, columns):
    """Yields (line, row) for every non-blank row after the header; row is a dict of the file's
    columns, or None when the column count differs from the header's.  `line` is the physical line
    on which the row starts (header = line 1)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise Refused(f"{os.path.basename(path)}: no header")
        missing = [c for c in columns if c not in header]
        if missing:
            raise Refused(f"{os.path.basename(path)}: missing column {missing[0]}")
        index = {c: header.index(c) for c in columns}
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            if not cells:
                continue  # blank line: not a row
            if len(cells) != len(header):
                yield start, None, cells
            else:
                yield start, {c: cells[i] for c, i in index.items()}, cells


COLUMNS = {
    "centers": ["center_id", "name", "district", "credit_code", "bank_account"],
    "stations": ["station_id", "center_id", "village", "name"],
    "persons": ["person_id", "id_number", "name", "birth_date", "hukou", "village", "flags", "death_date"],
    "assessments": ["person_id", "assessed_on", "level", "standard"],
    "cards": ["card_no", "person_id", "card_type", "center_id", "issued_on", "closed_on"],
    "enrollments": ["person_id", "program", "institution_id", "start_on", "end_on", "choice"],
    "deposits": ["txn_id", "card_no", "kind", "amount", "at", "channel", "ref_txn_id"],
    "consumption": ["txn_id", "card_no", "kind", "amount", "at", "station_id", "service", "ref_txn_id"],
    "platform_balances": ["card_no", "as_of", "balance"],
}

WARNINGS = {"overdraft", "cross_center_consumption", "deposit_after_death", "deposit_on_inactive_card",
            "balance_mismatch", "duplicate_person", "unknown_flag"}

# ----------------------------------------------------------------------------- identity checks

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def normal_id_number(text):
    """The id number with x read as X, or None when it fails the MOD 11-2 check."""
    t = text[:17] + text[17:].upper()
    if len(t) != 18 or not re.fullmatch(r"[0-9]{17}[0-9X]", t):
        return None
    check = "10X98765432"[sum(int(c) * w for c, w in zip(t, ID_WEIGHTS)) % 11]
    return t if t[17] == check else None


def valid_credit_code(text):
    if len(text) != 18 or any(c not in CREDIT_ALPHABET for c in text):
        return False
    s = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(text, CREDIT_WEIGHTS))
    return CREDIT_ALPHABET[(31 - s % 31) % 31] == text[17]


# ----------------------------------------------------------------------------- the settlement run

class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Run:
    def __init__(self, data, policy, period, settled_months):
        self.data, self.policy, self.period = data, policy, period
        self.period_end = last_day(period.months[-1])
        self.settled = settled_months
        self.exceptions = []
        self.deferred = 0

    def exc(self, code, file, line, txn_id="", card_no="", person_id="", month="", detail=""):
        self.exceptions.append(dict(code=code, severity="warning" if code in WARNINGS else "error",
                                    file=file, line=line, txn_id=txn_id, card_no=card_no,
                                    person_id=person_id, month=month, detail=detail))

    def rows(self, name):
        path = os.path.join(self.data, name + ".csv")
        if not os.path.exists(path):
            if name in ("centers", "persons", "cards"):
                raise Refused(f"missing required file {name}.csv")
            return []
        return read_csv(path, COLUMNS[name])

    # ---- registry (§8 table, cascades, aliases)
    def load_registry(self):
        self.centers, self.stations, self.persons, self.alias = {}, {}, {}, {}
        by_id_number = {}
        for line, r, _ in self.rows("centers"):
            f = "centers.csv"
            if r is None or r["center_id"] == "":
                self.exc("bad_row", f, line, detail="column count or empty center_id")
            elif r["center_id"] in self.centers:
                self.exc("duplicate_id", f, line)
            elif not valid_credit_code(r["credit_code"]):
                self.exc("bad_credit_code", f, line)
            else:
                self.centers[r["center_id"]] = r
        for line, r, _ in self.rows("stations"):
            f = "stations.csv"
            if r is None or r["station_id"] == "":
                self.exc("bad_row", f, line)
            elif r["station_id"] in self.stations:
                self.exc("duplicate_id", f, line)
            elif r["center_id"] not in self.centers:
                self.exc("unknown_center", f, line)
            else:
                self.stations[r["station_id"]] = r["center_id"]
        seen_person_ids = set()
        for line, r, _ in self.rows("persons"):
            f = "persons.csv"
            pid = r["person_id"] if r else ""
            if r is None or pid == "":
                self.exc("bad_row", f, line)
                continue
            if pid in seen_person_ids:
                self.exc("duplicate_id", f, line, person_id=pid)
                continue
            idn = normal_id_number(r["id_number"])
            birth = parse_date(r["birth_date"])
            death = parse_date(r["death_date"]) if r["death_date"] else None
            if idn is None:
                self.exc("bad_id_number", f, line, person_id=pid)
            elif birth is None or (r["death_date"] and death is None):
                self.exc("bad_date", f, line, person_id=pid)
            elif r["hukou"] not in ("rural", "urban"):
                self.exc("bad_row", f, line, person_id=pid, detail="hukou")
            else:
                seen_person_ids.add(pid)
                flags = [x for x in r["flags"].split(";") if x] if r["flags"] else []
                unknown = [x for x in flags if x not in FLAGS]
                if idn in by_id_number:  # one elder, one resident id: an alias of the first row
                    self.alias[pid] = by_id_number[idn]
                    self.exc("duplicate_person", f, line, person_id=pid, detail=f"alias of {by_id_number[idn]}")
                else:
                    by_id_number[idn] = pid
                    self.alias[pid] = pid
                    self.persons[pid] = Obj(pid=pid, birth=birth, death=death, hukou=r["hukou"],
                                            flags={x for x in flags if x in FLAGS},
                                            assessments=[], enrollments=[], cards=[])
                if unknown:
                    self.exc("unknown_flag", f, line, person_id=pid, detail=";".join(unknown))
        for line, r, _ in self.rows("assessments"):
            f = "assessments.csv"
            if r is None:
                self.exc("bad_row", f, line)
                continue
            pid = r["person_id"]
            d = parse_date(r["assessed_on"])
            top = {"GB/T 42195-2022": 4, "MZ/T 039-2013": 3}.get(r["standard"])
            if pid not in self.alias:
                self.exc("unknown_person", f, line, person_id=pid)
            elif d is None:
                self.exc("bad_date", f, line, person_id=pid)
            elif top is None or not re.fullmatch(r"[0-9]+", r["level"]) or int(r["level"]) > top:
                self.exc("bad_row", f, line, person_id=pid, detail="standard or level")
            else:
                self.persons[self.alias[pid]].assessments.append((d, int(r["level"])))
        self.cards = {}
        for line, r, _ in self.rows("cards"):
            f = "cards.csv"
            if r is None or r["card_no"] == "":
                self.exc("bad_row", f, line, person_id=r["person_id"] if r else "")
                continue
            no, pid = r["card_no"], r["person_id"]
            issued = parse_date(r["issued_on"])
            closed = parse_date(r["closed_on"]) if r["closed_on"] else None
            if no in self.cards:
                self.exc("duplicate_id", f, line, card_no=no, person_id=pid)
            elif pid not in self.alias:
                self.exc("unknown_person", f, line, card_no=no, person_id=pid)
            elif r["center_id"] not in self.centers:
                self.exc("unknown_center", f, line, card_no=no, person_id=pid)
            elif issued is None or (r["closed_on"] and (closed is None or closed < issued)):
                self.exc("bad_date", f, line, card_no=no, person_id=pid)
            elif r["card_type"] not in ("1", "2"):
                self.exc("bad_row", f, line, card_no=no, person_id=pid, detail="card_type")
            else:
                holder = self.persons[self.alias[pid]]
                card = Obj(no=no, holder=holder, type=int(r["card_type"]), center=r["center_id"],
                           issued=issued, closed=closed, line=line)
                self.cards[no] = card
                holder.cards.append(card)
        for line, r, _ in self.rows("enrollments"):
            f = "enrollments.csv"
            if r is None:
                self.exc("bad_row", f, line)
                continue
            pid = r["person_id"]
            start = parse_date(r["start_on"])
            end = parse_date(r["end_on"]) if r["end_on"] else None
            prog, choice = r["program"], r["choice"]
            if pid not in self.alias:
                self.exc("unknown_person", f, line, person_id=pid)
            elif start is None or (r["end_on"] and (end is None or end < start)):
                self.exc("bad_date", f, line, person_id=pid)
            elif not (prog == "home_bed" and choice in ("card_subsidy", "home_bed_discount")
                      or prog == "gov_home_service" and choice == ""):
                self.exc("bad_row", f, line, person_id=pid, detail="program or choice")
            else:
                self.persons[self.alias[pid]].enrollments.append(
                    Obj(program=prog, institution=r["institution_id"], start=start, end=end, choice=choice))

    def serving_center(self, station_id):
        return self.stations.get(station_id) or (station_id if station_id in self.centers else None)

    # ---- transactions (§4, §6, §8)
    def load_transactions(self):
        self.txns = []  # accepted, undeferred
        tz = self.policy.tz
        for family, kinds, original_kind in (("deposits", ("deposit", "reversal"), "deposit"),
                                             ("consumption", ("consumption", "refund"), "consumption")):
            claimed, accepted, remaining = {}, {}, {}
            for path in sorted(glob.glob(os.path.join(self.data, family + "*.csv"))):
                f = os.path.basename(path)
                for line, r, cells in read_csv(path, COLUMNS[family]):
                    if r is None:
                        self.exc("bad_row", f, line, detail="column count")
                        continue
                    tid, no, kind = r["txn_id"], r["card_no"], r["kind"]
                    at = parse_timestamp(r["at"])
                    local = at.astimezone(tz).date() if at else None
                    month = month_str(month_of(local)) if local else ""  # where the row has a valid date
                    ids = dict(txn_id=tid, card_no=no, month=month)
                    if tid == "":
                        self.exc("bad_row", f, line, detail="empty txn_id", **ids)
                        continue
                    content = tuple(sorted(r.items()))
                    if tid in claimed:
                        self.exc("duplicate_txn" if claimed[tid] == content else "conflicting_txn", f, line, **ids)
                        continue
                    amount = parse_amount(r["amount"])
                    if kind not in kinds:
                        self.exc("bad_row", f, line, detail="kind", **ids)
                        continue
                    if amount is None:
                        self.exc("bad_amount", f, line, **ids)
                        continue
                    if at is None:
                        self.exc("bad_date", f, line, **ids)
                        continue
                    claimed[tid] = content
                    if local > self.period_end:
                        self.deferred += 1
                        continue
                    card = self.cards.get(no)
                    station = r.get("station_id", "")
                    if card is None:
                        self.exc("unknown_card", f, line, **ids)
                        continue
                    if (kind == "consumption" or kind == "refund" and station) and self.serving_center(station) is None:
                        self.exc("unknown_station", f, line, **ids)
                        continue
                    t = Obj(id=tid, card=card, kind=kind, amount=amount, at=at, date=local, month=month_of(local),
                            station=station, service=r.get("service", ""), file=f, line=line, ref=None,
                            counted=False)
                    if kind != original_kind:
                        orig = accepted.get(r["ref_txn_id"])
                        if orig is None or orig.card is not card or orig.kind != original_kind:
                            self.exc("unknown_ref", f, line, **ids)
                            continue
                        if amount > remaining[orig.id]:
                            self.exc("over_reversal", f, line, **ids)
                            continue
                        remaining[orig.id] -= amount
                        t.ref = orig
                    else:
                        accepted[tid] = t
                        remaining[tid] = amount
                    if kind == "deposit":
                        active = card.issued <= local and (card.closed is None or local <= card.closed)
                        alive = card.holder.death is None or local <= card.holder.death
                        if not active:
                            self.exc("deposit_on_inactive_card", f, line, **ids)
                        elif not alive:
                            self.exc("deposit_after_death", f, line, **ids)
                        t.counted = active and alive
                    if kind == "consumption" and self.serving_center(station) != card.center:
                        self.exc("cross_center_consumption", f, line, **ids)
                    self.txns.append(t)

    # ---- card-months (§5)
    def net_deposits(self):
        net = defaultdict(int)
        for t in self.txns:
            if t.kind == "deposit" and t.counted:
                net[(t.month, t.card.no)] += t.amount
            elif t.kind == "reversal" and t.ref.counted:
                net[(t.ref.month, t.card.no)] -= t.amount  # reduces the original deposit's month
        return net

    @staticmethod
    def active_in(card, ym):
        return card.issued <= last_day(ym) and (card.closed is None or card.closed >= first_day(ym))

    def compute_card_months(self):
        net = self.net_deposits()
        self.card_months = {}  # (ym, card_no) -> Obj
        for ym in self.settled:
            for card in self.cards.values():
                if self.active_in(card, ym):
                    self.card_months[(ym, card.no)] = self.card_month(card, ym, net[(ym, card.no)])

    def card_month(self, card, ym, net):
        holder, first, last = card.holder, first_day(ym), last_day(ym)
        cm = Obj(card=card, ym=ym, net=net, tier=None, subsidy=0, status="", reason="", rule_version="")
        v = self.policy.version_for(ym)
        if v is None:
            cm.status, cm.reason = "ineligible", "no_policy_in_force"
            return cm
        cm.rule_version = v.rule_version
        # 1. holder alive on the month's first day (the month of death still earns)
        if holder.death is not None and holder.death < first:
            cm.status = "deceased"
            return cm
        # 2. duplicate cards: of the holder's cards active in the month, the earliest issued wins
        rivals = [c for c in holder.cards if self.active_in(c, ym)]
        if min(rivals, key=lambda c: (c.issued, c.no)) is not card:
            cm.status = "duplicate_card"
            return cm
        # 3. exclusions, in the order written
        for program, choice, types in v.exclusions:
            if types is not None and card.type not in types:
                continue
            for e in holder.enrollments:
                if (e.program == program and e.start <= last and (e.end is None or e.end >= first)
                        and (choice is None or e.choice == choice)):
                    cm.status, cm.reason = "excluded", program
                    return cm
        # 4. eligibility for each card type of the version
        env = self.attributes(holder, ym, v)
        eligible = {t: evaluate(ct.eligible, env) for t, ct in v.types.items()}
        # 5. tier
        candidates = [t for t in v.types if t <= card.type] if v.allow_lower else \
            [t for t in v.types if t == card.type]
        tiers = [t for t in candidates if eligible[t] and net >= v.types[t].min_deposit]
        if tiers:
            cm.tier = max(tiers)
            cm.status = "paid"
            cm.subsidy = v.types[cm.tier].subsidy
            # 6. proration by days active and alive
            if v.proration == "by_days":
                days = sum(1 for d in range(1, days_in(ym) + 1)
                           if self.active_on(card, date(first.year, first.month, d)))
                cm.subsidy = round_fen(Fraction(cm.subsidy * days, days_in(ym)), v.rounding)
        elif any(eligible[t] for t in candidates):
            cm.status = "below_threshold"
        else:
            cm.status, cm.reason = "ineligible", "not_eligible"
        return cm

    @staticmethod
    def active_on(card, d):
        return card.issued <= d and (card.closed is None or d <= card.closed) and \
            (card.holder.death is None or d <= card.holder.death)

    @staticmethod
    def attributes(p, ym, v):
        last = last_day(ym)
        level = None
        dated = [a for a in p.assessments if a[0] <= last]
        if dated:
            d, lvl = max(dated)  # latest date; same date: the higher level
            if add_months_clamped(d, v.valid_months) >= last:
                level = lvl
        env = {"age": completed_years(p.birth, last), "assessment": level, "has_assessment": level is not None,
               "rural": p.hukou == "rural", "urban": p.hukou == "urban"}
        env.update({f: f in p.flags for f in FLAGS})
        return env

    # ---- balances, overdraft, platform balances (§6)
    def balances(self):
        tz = self.policy.tz
        events = defaultdict(list)
        rank = {"deposit": 0, "reversal": 0, "refund": 1, "consumption": 2}
        sign = {"deposit": 1, "reversal": -1, "refund": 1, "consumption": -1}
        for t in self.txns:
            events[t.card.no].append((t.at, rank[t.kind], t.id, sign[t.kind] * t.amount, t))
        for (ym, no), cm in self.card_months.items():
            if cm.subsidy:
                end = datetime.combine(first_day(ym + 1), datetime.min.time(), tz)
                events[no].append((end, -1, "", cm.subsidy, None))  # end of the month's last day
        self.events = events
        for no, evs in events.items():
            evs.sort(key=lambda e: (e[0], e[1], e[2]))
            balance = 0
            for _, _, _, delta, t in evs:
                balance += delta
                if t is not None and t.kind == "consumption" and balance < 0:
                    self.exc("overdraft", t.file, t.line, txn_id=t.id, card_no=no, month=month_str(t.month),
                             detail=f"balance {fmt(balance)}")

    def check_platform_balances(self):
        tz = self.policy.tz
        f = "platform_balances.csv"
        for line, r, _ in self.rows("platform_balances"):
            if r is None:
                self.exc("bad_row", f, line)
                continue
            as_of = parse_date(r["as_of"])
            reported = parse_signed(r["balance"])
            ids = dict(card_no=r["card_no"], month=month_str(month_of(as_of)) if as_of else "")
            if as_of is None:
                self.exc("bad_date", f, line, **ids)
            elif reported is None:
                self.exc("bad_amount", f, line, **ids)
            elif as_of > self.period_end:
                self.deferred += 1
            elif r["card_no"] not in self.cards:
                self.exc("unknown_card", f, line, **ids)
            else:
                cutoff = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tz)
                mine = sum(e[3] for e in self.events.get(r["card_no"], []) if e[0] < cutoff)
                if mine != reported:
                    self.exc("balance_mismatch", f, line, **ids,
                             detail=f"platform {fmt(reported)}, engine {fmt(mine)}")

    def flows(self):
        """Cumulative flows per card over the whole history up to the period's last day."""
        flows = defaultdict(lambda: dict(deposits=0, reversals=0, subsidies=0, consumption=0, refunds=0))
        name = {"deposit": "deposits", "reversal": "reversals", "consumption": "consumption", "refund": "refunds"}
        for t in self.txns:
            flows[t.card.no][name[t.kind]] += t.amount
        for (ym, no), cm in self.card_months.items():
            flows[no]["subsidies"] += cm.subsidy
        return flows


# ----------------------------------------------------------------------------- the book (§7)

def read_out(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


class Book:
    def __init__(self, root, k):
        self.root, self.k = root, k
        self.closed = []
        if os.path.isdir(root):
            for name in os.listdir(root):
                p = Period.parse(name, k)
                if p and os.path.exists(os.path.join(root, name, "CLOSED")):
                    self.closed.append(p)
        self.closed.sort(key=Period.key)

    def recorded(self):
        """(ym, card_no) -> [subsidy in the book (original + closed adjustments), centre]."""
        rec = {}
        for p in self.closed:
            for r in read_out(os.path.join(self.root, p.name, "card_months.csv")):
                rec[(parse_month(r["month"]), r["card_no"])] = [to_fen(r["subsidy"]), r["center_id"]]
        for p in self.closed:
            for r in read_out(os.path.join(self.root, p.name, "adjustments.csv")):
                key = (parse_month(r["original_month"]), r["card_no"])
                rec.setdefault(key, [0, r["center_id"]])[0] += to_fen(r["amount"])
        return rec

    def carried(self):
        if not self.closed:
            return {}
        rows = read_out(os.path.join(self.root, self.closed[-1].name, "payouts.csv"))
        return {r["center_id"]: to_fen(r["carried_out"]) for r in rows}

    def statements(self):
        """card_no -> (closing at the last close, centre, summed closed flows)."""
        out = {}
        for p in self.closed:
            for r in read_out(os.path.join(self.root, p.name, "statements.csv")):
                _, _, sums = out.get(r["card_no"], (0, "", defaultdict(int)))
                for fl in FLOW_NAMES:
                    sums[fl] += to_fen(r[fl])
                out[r["card_no"]] = (to_fen(r["closing"]), r["center_id"], sums)
        return out


FLOW_NAMES = ["deposits", "reversals", "subsidies", "consumption", "refunds"]
FLOW_SIGN = {"deposits": 1, "reversals": -1, "subsidies": 1, "consumption": -1, "refunds": 1}


# ----------------------------------------------------------------------------- outputs

HEADERS = {
    "card_months": "period,month,card_no,person_id,center_id,card_type,net_deposit,tier,subsidy,status,reason,rule_version",
    "adjustments": "period,original_month,card_no,center_id,recorded_subsidy,recomputed_subsidy,amount,reason",
    "payouts": "period,center_id,center_name,credit_code,bank_account,cards_paid,subsidy_total,adjustment_total,carried_in,payout,carried_out",
    "statements": "period,card_no,center_id,opening,deposits,reversals,subsidies,consumption,refunds,closing",
    "consumption_by_center": "period,serving_center_id,home_center_id,service,transactions,amount",
    "homebed_exclusions": "month,institution_id,person_id,reason",
    "exceptions": "code,severity,file,line,txn_id,card_no,person_id,month,detail",
}


def settle(args):
    policy = Policy(args.rules)
    period = Period.parse(args.period, policy.k)
    if period is None:
        print(f"bad period {args.period}", file=sys.stderr)
        return 1
    book = Book(args.book, policy.k)
    if book.closed:
        latest = book.closed[-1]
        if period.key() <= latest.key() or (args.close and period.key() != latest.next().key()):
            print(f"period {period.name} is closed or out of order (latest closed {latest.name})", file=sys.stderr)
            return 3
    first_period = book.closed[0] if book.closed else period
    settled = list(range(first_period.months[0], period.months[-1] + 1))
    closed_months = [m for p in book.closed for m in p.months]
    if not os.path.isdir(args.data):
        raise Refused(f"no data folder {args.data}")

    run = Run(args.data, policy, period, settled)
    run.load_registry()
    run.load_transactions()
    run.compute_card_months()
    run.balances()
    run.check_platform_balances()
    P = period.name
    out = {}

    # card_months.csv
    cms = [run.card_months[k] for k in sorted(run.card_months) if k[0] in period.months]
    out["card_months"] = [[P, month_str(c.ym), c.card.no, c.card.holder.pid, c.card.center, c.card.type, fmt(c.net),
                           c.tier or "", fmt(c.subsidy), c.status, c.reason, c.rule_version] for c in cms]
    for c in cms:
        if c.status == "duplicate_card":
            run.exc("duplicate_card", "cards.csv", c.card.line, card_no=c.card.no, person_id=c.card.holder.pid,
                    month=month_str(c.ym), detail="the holder has an earlier card active in the month")

    # adjustments.csv: closed months recomputed against what the book holds
    recorded = book.recorded()
    adjustments = []
    keys = {k for k in run.card_months if k[0] in closed_months} | set(recorded)
    for ym, no in sorted(keys):
        was, book_center = recorded.get((ym, no), [0, ""])
        cm = run.card_months.get((ym, no))
        now = cm.subsidy if cm else 0
        if now != was:
            center = run.cards[no].center if no in run.cards else book_center
            adjustments.append((ym, no, center, was, now, cm.status if cm else "removed"))
    out["adjustments"] = [[P, month_str(ym), no, c, fmt(was), fmt(now), fmt(now - was), why]
                          for ym, no, c, was, now, why in adjustments]

    # payouts.csv
    carried = book.carried()
    subsidy, adjust, paid = defaultdict(int), defaultdict(int), defaultdict(set)
    centers = set()
    for c in cms:
        centers.add(c.card.center)
        subsidy[c.card.center] += c.subsidy
        if c.status == "paid":
            paid[c.card.center].add(c.card.no)
    for a in adjustments:
        centers.add(a[2])
        adjust[a[2]] += a[4] - a[3]
    centers |= {c for c, v in carried.items() if v != 0}
    out["payouts"] = []
    for c in sorted(centers):
        info = run.centers.get(c, {})
        total = subsidy[c] + adjust[c] + carried.get(c, 0)
        out["payouts"].append([P, c, info.get("name", ""), info.get("credit_code", ""), info.get("bank_account", ""),
                               len(paid[c]), fmt(subsidy[c]), fmt(adjust[c]), fmt(carried.get(c, 0)),
                               fmt(max(total, 0)), fmt(min(total, 0))])

    # statements.csv: cumulative flows less the closed statements' flows
    flows, before = run.flows(), book.statements()
    out["statements"] = []
    for no in sorted(set(run.cards) | set(before) | set(flows)):
        opening, book_center, closed_flows = before.get(no, (0, "", defaultdict(int)))
        now = flows.get(no, dict.fromkeys(FLOW_NAMES, 0))
        delta = {fl: now[fl] - closed_flows[fl] for fl in FLOW_NAMES}
        closing = opening + sum(FLOW_SIGN[fl] * delta[fl] for fl in FLOW_NAMES)
        if opening or closing or any(delta.values()):
            center = run.cards[no].center if no in run.cards else book_center
            out["statements"].append([P, no, center, fmt(opening)] + [fmt(delta[fl]) for fl in FLOW_NAMES]
                                     + [fmt(closing)])

    # consumption_by_center.csv: refunds go to the original consumption's station and service
    groups = defaultdict(lambda: [0, 0])
    for t in run.txns:
        if t.month not in period.months or t.kind not in ("consumption", "refund"):
            continue
        orig = t if t.kind == "consumption" else t.ref
        g = groups[(run.serving_center(orig.station), t.card.center, orig.service)]
        if t.kind == "consumption":
            g[0] += 1
            g[1] += t.amount
        else:
            g[1] -= t.amount
    out["consumption_by_center"] = [[P, s, h, svc, n, fmt(a)] for (s, h, svc), (n, a) in
                                    sorted(groups.items(), key=lambda kv: tuple(x.encode() for x in kv[0]))]

    # homebed_exclusions.csv
    rows = set()
    for ym in period.months:
        first, last = first_day(ym), last_day(ym)
        for p in run.persons.values():
            live = [e for e in p.enrollments if e.start <= last and (e.end is None or e.end >= first)]
            gov = {e.institution for e in live if e.program == "gov_home_service"}
            bed = {e.institution for e in live if e.program == "home_bed"}
            rows |= {(month_str(ym), i, p.pid) for i in gov & bed}
    out["homebed_exclusions"] = [[m, i, pid, "gov_home_service"] for m, i, pid in
                                 sorted(rows, key=lambda r: tuple(x.encode() for x in r))]

    # exceptions.csv
    ex = sorted(run.exceptions, key=lambda e: (e["code"].encode(), e["file"].encode(), e["line"],
                                               e["card_no"].encode(), e["month"].encode()))
    out["exceptions"] = [[e[c] for c in HEADERS["exceptions"].split(",")] for e in ex]

    write_period(args.book, P, out, args.close)
    print(f"{P}: {len(cms)} card-months, {len(adjustments)} adjustments, {len(ex)} exceptions, "
          f"{run.deferred} deferred{' (closed)' if args.close else ''}")
    return 0


def write_period(book, name, out, close):
    """Writes all files into a fresh folder, then swaps it in: never a partial period."""
    os.makedirs(book, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=book)
    for fname, rows in out.items():
        with open(os.path.join(tmp, fname + ".csv"), "w", encoding="utf-8", newline="") as f:
            f.write(HEADERS[fname] + "\n")
            w = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            w.writerows([[str(x) for x in r] for r in rows])
    if close:
        open(os.path.join(tmp, "CLOSED"), "w").close()
    final = os.path.join(book, name)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.rename(tmp, final)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--book", required=True)
    ap.add_argument("--period", required=True)
    ap.add_argument("--close", action="store_true")
    args = ap.parse_args()
    try:
        return settle(args)
    except RulesError as e:
        print(e, file=sys.stderr)
        return 2
    except Refused as e:
        print(e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
