#!/usr/bin/env python3
"""edge_data.py OUT_DIR -- writes three hand-made data folders OUT_DIR/stage1..3 (as known when
2024-B1, 2024-B2 and 2024-B3 are settled) full of edge cases the generator does not produce:
BOM/CRLF/blank lines/multi-line cells, odd offsets, 29 February, assessment expiry on a leap
day, partial and unordered reversals, equal-time ordering, a centre serving directly, platform
balances, aliases, late corrections and a negative carry over two periods.  Rows tagged with a
stage appear from that stage on.
"""
import os
import sys

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CA = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CW = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def idn(body17, lower=False):
    c = "10X98765432"[sum(int(a) * w for a, w in zip(body17, W)) % 11]
    return body17 + (c.lower() if lower else c)


def credit(body17):
    return body17 + CA[(31 - sum(CA.index(a) * w for a, w in zip(body17, CW)) % 31) % 31]


FILES = {}


def add(name, header, rows, bom=False, crlf=False):
    FILES[name] = (header, rows, bom, crlf)


add("centers.csv", "center_id,name,district,credit_code,bank_account", [
    f"C01,Centre one,D1,{credit('12370211729436483')},6222",
    f"C02,\"Centre, two\",D2,{credit('12370211756893485')},6223",
    "C03,Bad code,D3,12370211756893485A,6224",
    f"C01,Duplicate,D1,{credit('12370211729436483')},6225",
    f",Empty id,D1,{credit('12370211729436483')},6226",
])
add("stations.csv", "station_id,center_id,village,name", [
    "S01,C01,V1,Station one",
    'S02,C02,V2,"Station\ntwo (two lines)"',
    "S03,C03,V3,under a rejected centre",
    "S01,C02,V1,duplicate",
    "S04,C02,V4,Station four",
], crlf=True)
P = lambda pid, body, birth, hukou="rural", flags="", death="", lower=False: \
    f"{pid},{idn(body, lower)},N{pid},{birth},{hukou},V,{flags},{death}"
add("persons.csv", "person_id,id_number,name,birth_date,hukou,village,flags,death_date", [
    P("P01", "37028519500310076", "1950-03-10"),
    P("P02", "37028219640229544", "1964-02-29"),                      # turns 60 on 29 Feb 2024
    P("P03", "37028319550101946", "1955-01-01"),                      # assessment expires 28 Feb
    P("P04", "37028219500101544", "1950-01-01", death="2024-02-10"),
    P("P05", "37028219400101888", "1940-01-01", hukou="urban", flags="dibao;;tekun"),
    P("P06", "37028319380909059", "1938-09-09", lower=True),          # check character x
    P("P07", "37028519500310076", "1930-01-01", flags="bogus", death="2020-01-01"),  # alias of P01
    P("P08", "37028219460101477", "1946-01-01", hukou="Rural"),
    P("P09", "37028219460101999", "1950-02-30"),
    P("P11", "37028219440505888", "1944-05-05"),
    P("P12", "37028119490101353", "1949-01-01", flags="left_behind;empty_nest"),
    P("P13", "37028219480101333", "1948-01-01"),
    P("P14", "37028119421201643", "1942-12-01"),
    P("P15", "37028219400606705", "1940-06-06"),
    "",
    P("P16", "37028219500505000", "1950-05-05"),
    P("P01", "37028219500505111", "1950-05-05"),                      # duplicate person_id
    P("P17", "37028219500707000", "1950-07-07", death="2023-12-31@2"),  # death registered late
    P("P18", "37028219500808000", "1950-08-08", death="2024-01-20"),
    P("P19", "37028219500909000", "1950-09-09"),
], bom=True, crlf=True)
add("assessments.csv", "person_id,assessed_on,level,standard", [
    "P03,2023-02-28,3,GB/T 42195-2022",
    "P11,2023-06-01,1,GB/T 42195-2022",
    "P11,2023-06-01,3,MZ/T 039-2013",
    "P07,2023-09-01,2,GB/T 42195-2022",          # the alias's assessment belongs to P01
    "P12,2023-07-31,4,MZ/T 039-2013",            # level outside MZ/T
    "P12,2023-07-31,2,GB/T 1",                   # unknown standard
    "P99,2023-07-31,2,GB/T 42195-2022",
    "P08,2023-07-31,2,GB/T 42195-2022",          # rejected person
    "P13,2023-02-31,2,GB/T 42195-2022",
    "P15,2023-03-31,2,GB/T 42195-2022",          # valid through 2024-03-31
    "P19,2024-01-01,3,GB/T 42195-2022",
    ",2024-01-01,3,GB/T 42195-2022",
])
add("cards.csv", "card_no,person_id,card_type,center_id,issued_on,closed_on", [
    "K01,P01,1,C01,2022-06-01,",
    "K02,P02,1,C01,2022-06-01,",
    "K03,P03,2,C02,2023-09-01,",
    "K04,P04,1,C01,2024-01-10,",
    "K05,P05,1,C02,2023-01-01,",
    "K06,P06,2,C02,2023-01-01,",
    "K07,P07,2,C01,2021-01-01,",                 # alias's card, issued earlier: it wins over K01
    "K08,P08,1,C01,2023-01-01,",
    "K11,P11,2,C02,2023-01-01,",
    "K12,P12,1,C01,2022-01-01,2024-01-15",
    "K12B,P12,1,C01,2024-01-20,",
    "K13,P13,3,C01,2023-01-01,",
    "K14,P14,2,C02,2023-01-01,",
    "K15,P15,2,C01,2023-01-01,2024-03-20",
    "K16,P16,1,C03,2023-01-01,",
    "K17,P13,1,C01,2024-02-01,2024-01-31",
    "K01,P16,1,C01,2023-01-01,",
    ",P16,1,C01,2023-01-01,",
    "K18,P16,1,C02,2023-01-01,",
    "K19,P17,1,C01,2023-01-01,",
    "K20,P16,2,C01,2024-03-01,@2",                # enters the registry in B2, then leaves in B3
    "K21,P19,2,C02,2024-04-26,",                  # 5 days in April: 99.99*5/30 is a half fen
    "K22,P18,1,C01,2023-01-01,2024-01-25",
])
add("enrollments.csv", "person_id,program,institution_id,start_on,end_on,choice", [
    "P13,gov_home_service,I01,2023-01-01,,card_subsidy",
    "P13,home_bed,I01,2023-01-01,,",
    "P13,home_bed,I01,2023-01-01,2022-01-01,card_subsidy",
    "P13,foo,I01,2023-01-01,,",
    "P14,home_bed,I02,2023-01-01,2024-01-31,home_bed_discount",
    "P14,home_bed,I03,2024-02-01,2024-02-29,card_subsidy",
    "P14,gov_home_service,I03,2024-02-29,2024-03-01,",
    "P07,gov_home_service,I09,2024-04-01,,",       # alias's enrolment: P01 excluded from April
    "P06,home_bed,I05,2024-01-01,,home_bed_discount@2",  # added late: K06 excluded Jan-Feb
])
D = "txn_id,card_no,kind,amount,at,channel,ref_txn_id"
add("deposits-a.csv", D, [
    "A00,K01,reversal,10.00,2024-01-05T09:00:00+08:00,cash,A01",     # before its deposit: unknown_ref
    "A01,K01,deposit,100.00,2024-01-05T10:00:00+08:00,cash,",
    "A02,K01,deposit,100,2024-01-06T10:00:00Z,cash,",
    "A02,K01,deposit,100.00,2024-01-06T10:00:00Z,cash,",               # conflicting
    "A02,K01,deposit,100,2024-01-06T10:00:00Z,cash,",                  # duplicate
    "A03,K01,reversal,30.00,2024-01-07T10:00:00+08:00,cash,A02",
    "A04,K01,reversal,30.00,2024-01-08T10:00:00+08:00,cash,A02",
    "A05,K01,reversal,50.00,2024-01-09T10:00:00+08:00,cash,A02",      # over_reversal
    "A06,K01,reversal,5.00,2024-01-09T10:00:00+08:00,cash,A03",       # reverses a reversal
    "A07,K02,reversal,5.00,2024-01-09T10:00:00+08:00,cash,A01",       # another card's deposit
    "A08,K02,deposit,0.00,2024-01-09T10:00:00+08:00,cash,",
    "A09,K02,deposit,1.,2024-01-09T10:00:00+08:00,cash,",
    "A10,K02,deposit, 100.00,2024-01-09T10:00:00+08:00,cash,",
    "A11,K02,deposit,1000000000000,2024-01-09T10:00:00+08:00,cash,",
    "A12,K02,Deposit,100.00,2024-01-09T10:00:00+08:00,cash,",
    "A13,K02,deposit,100.00,2024-02-30T10:00:00+08:00,cash,",
    "A14,K02,deposit,100.00,2024-01-09 10:00:00+08:00,cash,",
    "A15,K02,deposit,100.00,2024-01-31T11:00:00-05:00,cash,",          # 1 Feb in +08:00
    "A16,K02,deposit,100.00,2024-02-29T15:59:59.5Z,cash,",             # 29 Feb 23:59:59.5
    "A17,K02,deposit,100.00,2024-03-01T00:00:00+08:00,cash,",          # deferred from B1
    "A17,K02,deposit,100.00,2024-03-01T00:00:00+08:00,cash,",          # duplicate of a deferred row
    "A18,KXX,deposit,100.00,2024-03-02T00:00:00+08:00,cash,",          # deferred, unknown card
    "A19,K03,deposit,200.00,2024-01-03T08:00:00+08:00,cash,",
    "A20,K03,deposit,200.00,2024-02-03T08:00:00+08:00,cash,",
    "A21,K04,deposit,100.00,2024-01-09T23:59:59+08:00,cash,",         # before issue: inactive
    "A22,K04,deposit,100.00,2024-01-10T00:00:00+08:00,cash,",
    "A23,K04,deposit,100.00,2024-02-10T23:00:00+08:00,cash,",         # on the death day: counts
    "A24,K04,deposit,100.00,2024-02-11T00:00:00+08:00,cash,",         # after death
    "A25,K04,reversal,40.00,2024-02-12T00:00:00+08:00,cash,A24",      # reversal of an uncounted deposit
    "",
    "A26,K12,deposit,100.00,2024-01-15T12:00:00+08:00,cash,",         # closing day: counts
    "A27,K12,deposit,100.00,2024-01-16T12:00:00+08:00,cash,",         # after closing: inactive
    "A28,K12B,deposit,100.00,2024-02-16T12:00:00+08:00,cash,",
    "A29,K07,deposit,200.00,2024-01-16T12:00:00+08:00,cash,",
    "A30,K06,deposit,200.00,2024-01-16T12:00:00+08:00,cash,",
    "A31,K06,deposit,200.00,2024-02-16T12:00:00+08:00,cash,",
    "A32,K11,deposit,200.00,2024-01-16T12:00:00+08:00,cash,",
    "A33,K14,deposit,200.00,2024-01-16T12:00:00+08:00,cash,",
    "A34,K14,deposit,200.00,2024-02-16T12:00:00+08:00,cash,",
    "A35,K15,deposit,200.00,2024-02-16T12:00:00+08:00,cash,",
    "A36,K15,deposit,200.00,2024-03-16T12:00:00+08:00,cash,@2",
    "A37,K05,deposit,100.00,2024-01-16T12:00:00+08:00,cash,",
    "A38,K18,deposit,100.00,2024-01-16T12:00:00+08:00,cash,",
    "A39,K19,deposit,100.00,2024-01-16T12:00:00+08:00,cash,",
    "A40,K19,deposit,100.00,2024-02-16T12:00:00+08:00,cash,",
    "A41,K22,deposit,100.00,2024-01-28T10:00:00+08:00,cash,",         # closed card and dead holder
    "A42,K01,reversal,10.00,2024-02-25T10:00:00+08:00,cash,B01",      # original later in file order
    "A44,K02,deposit,50.00,2024-03-03T10:00:00+08:00,cash,",          # deferred in B1
    "A43,K02,reversal,10.00,2024-02-25T10:00:00+08:00,cash,A44",      # its original deferred in B1
])
add("deposits-b.csv", D, [
    "B01,K01,deposit,100.00,2024-02-05T10:00:00+08:00,cash,",
    "B02,K03,reversal,200.00,2024-03-05T10:00:00+08:00,cash,A19@2",   # late reversal: C02 goes negative
    "B03,K02,deposit,100.00,2024-02-20T10:00:00+08:00,cash,@2",       # late deposit in a closed month
    "B04,K03,deposit,200.00,2024-05-05T10:00:00+08:00,cash,@3",
    "B05,K20,deposit,300.00,2024-03-05T10:00:00+08:00,cash,@2",
    "B06,K01,deposit,100.00,2024-05-05T10:00:00+08:00,cash,@3",
    "A01,K01,deposit,100.00,2024-01-05T10:00:00+08:00,bank,",          # txn_id again, in another file
    "X01,K01,deposit,5.00,2024-01-20T10:00:00+08:00,cash,",           # a consumption's txn_id: own namespace
    "B07,K21,deposit,150.00,2024-04-27T10:00:00+08:00,cash,@2",
])
X = "txn_id,card_no,kind,amount,at,station_id,service,ref_txn_id"
add("consumption-2024.csv", X, [
    "X01,K05,consumption,50.00,2024-01-10T10:00:00+08:00,S01,助餐,",   # cross centre; overdraft
    "X02,K05,deposit,50.00,2024-01-10T10:00:00+08:00,S01,助餐,",       # wrong kind for this file
    "X03,K05,refund,10.00,2024-01-10T10:00:00+08:00,,,X01",
    "X04,K05,refund,10.00,2024-01-11T10:00:00+08:00,S99,,X01",         # unknown station
    "X05,K05,refund,50.00,2024-01-11T10:00:00+08:00,S02,,X01",         # over_reversal
    "X06,K05,refund,1.00,2024-01-11T10:00:00+08:00,,,X03",             # refund of a refund
    "X07,K05,consumption,10.00,2024-01-12T10:00:00+08:00,,助医,",       # empty station
    "X08,K05,consumption,10.00,2024-01-12T10:00:00+08:00,C02,助医,",    # the centre serves directly
    "X09,K05,consumption,10.00,2024-01-12T10:00:00+08:00,S03,助医,",    # station of a rejected centre
    "X10,K01,consumption,300.00,2024-01-31T23:59:59+08:00,S01,助浴,",
    "X11,K01,consumption,50.00,2024-02-01T00:00:00+08:00,S01,助浴,",    # right after January's subsidy
    "X12,K01,refund,50.00,2024-02-01T00:00:00+08:00,,,X10",            # same instant: refund first
    "X13,K12B,consumption,100.00,2024-02-16T12:00:00+08:00,S01,助洁,",  # same instant as deposit A28
    "X14,K12B,consumption,100.00,2024-02-16T04:00:00Z,S01,助洁,",       # same instant, txn_id order
    "X15,K05,refund,5.00,2024-03-10T10:00:00+08:00,S04,,X01@2",        # refund in B2 of a January cross-centre row
    "X16,K06,consumption,\"10.00\",2024-02-10T10:00:00+08:00,S02,\"助\n餐\",",
    "X17,K06,consumption,20.00,2024-02-10T10:00:00+08:00,S02,助餐",      # column count
])
add("platform_balances.csv", "card_no,as_of,balance", [
    "K01,2024-01-31,-110.00",
    "K01,2024-01-31,-60.00",
    "K05,2024-01-10,0",
    "K05,2024-01-10,-0.00",
    "K05,2024-01-10,+5",
    "K05,2024-13-01,5.00",
    "KZZ,2024-01-10,5.00",
    "K06,2024-12-31,5.00",
    "K02,2024-02-29,400.00",
])


def main():
    out = sys.argv[1]
    for stage in (1, 2, 3):
        d = os.path.join(out, f"stage{stage}")
        os.makedirs(d, exist_ok=True)
        for name, (header, rows, bom, crlf) in FILES.items():
            keep = []
            for r in rows:
                base, _, tag = r.rpartition("@") if "@" in r else (r, "", "")
                if tag and tag.isdigit():
                    if stage < int(tag):
                        # a row tagged for later: absent now, except a death date or closing date
                        # tagged on a cell, which is empty until then
                        if base.endswith(","):
                            pass
                        elif "," in base and name in ("persons.csv",):
                            keep.append(base.rsplit(",", 1)[0] + ",")
                        continue
                    r = base
                if name == "cards.csv" and r.startswith("K20,") and stage == 3:
                    continue  # K20 leaves the registry in B3
                keep.append(r)
            nl = "\r\n" if crlf else "\n"
            with open(os.path.join(d, name), "w", encoding="utf-8", newline="") as f:
                f.write(("\ufeff" if bom else "") + header + nl + nl.join(keep) + nl)


main()
