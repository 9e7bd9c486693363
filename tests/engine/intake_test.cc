#include "engine/id_index.h"
#include "engine/ledger.h"
#include "engine/registry.h"
#include "engine/settlement.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "tests/engine/test_world.h"

namespace carecard {
namespace {
using testing::CountCode;
using testing::World;

const ExceptionRecord* Find(const testing::Settled& r, const std::string& code) {
  for (const auto& e : r.exceptions) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

TEST(intake, every_row_read_is_accepted_rejected_or_deferred) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  w.Deposit("D2", "K1", "12.345", "2024-01-08T09:00:00+08:00");
  w.Deposit("D3", "K1", "100.00", "2024-03-08T09:00:00+08:00");
  w.deposits.push_back({"D4", "K1", "deposit"});
  auto r = w.Build(YearMonth::Of(2024, 2));
  for (const auto& f : r.files) EXPECT_EQ(f.read, f.accepted + f.rejected + f.deferred) << f.file;
  const FileCounts& deposits = r.files[7];
  EXPECT_EQ(deposits.file, "deposits.csv");
  EXPECT_EQ(deposits.read, 4);
  EXPECT_EQ(deposits.accepted, 1);
  EXPECT_EQ(deposits.rejected, 2);
  EXPECT_EQ(deposits.deferred, 1);
}

// Rows usually come card by card in card-number order, and a card is looked
// for beside the last one first (Registry::CardShortlyAfter); rows in any
// other order, with gaps, repeats and unknown cards, find the same cards.
TEST(intake, cards_are_found_whatever_order_rows_name_them) {
  World w;
  const std::vector<std::string> listed = {"K07", "K02", "K11", "K01", "K05", "K12", "K03", "K09", "K04", "K10", "K06", "K08"};
  for (const auto& card : listed) {
    w.Person("P" + card, "1950-03-10");
    w.Card(card, "P" + card, 1);
  }
  const std::vector<std::string> named = {"K01", "K02", "K04", "K09", "K10", "K05X", "K11", "K03", "K12",
                                          "K12", "K13", "K01", "K06", "K06", "K05", "K08", "K07", "K00"};
  std::map<std::string, int> times;
  for (size_t i = 0; i < named.size(); ++i) {
    w.Deposit("D" + std::to_string(i), named[i], "60.00", "2024-01-08T09:00:00+08:00");
    ++times[named[i]];
  }
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "unknown_card"), 3);  // K05X, K13, K00
  for (const auto& card : listed) {
    const auto* cm = testing::FindCardMonth(r, w, card, "2024-01");
    ASSERT_TRUE(cm) << card;
    EXPECT_EQ(cm->net_deposit, Money::FromFen(6000 * times[card])) << card;
    EXPECT_EQ(cm->subsidy, times[card] >= 2 ? Money::FromFen(5000) : Money()) << card;
  }
}

// Files that name persons (cards, assessments, enrolments) usually list them
// in persons.csv order, and a person is looked for beside the last one found
// first (RegistryBuilder::FindPerson), the table only when that fails; a long
// run in order (after which the table is not even prefetched), then jumps
// forward and back, repeats, gaps and unknown persons find the same persons.
TEST(intake, persons_are_found_whatever_order_rows_name_them) {
  World w;
  std::vector<std::string> persons;
  for (int i = 100; i < 140; ++i) {
    persons.push_back("P" + std::to_string(i));
    w.Person(persons.back(), "1950-03-10");
  }
  std::vector<std::string> named;
  for (int i = 0; i < 25; ++i) named.push_back(persons[static_cast<size_t>(i)]);  // P100..P124, in order
  for (const char* p : {"P130", "P131", "P131", "P101", "P999", "P139", "P132", "P133", "P134", "P100"}) named.push_back(p);
  std::map<std::string, std::string> person_of;
  for (size_t i = 0; i < named.size(); ++i) {
    const std::string card = "K" + std::to_string(1000 + i);
    w.Card(card, named[i], 1);
    person_of[card] = named[i];
  }
  for (const char* p : {"P100", "P100", "P101", "P120", "P102", "P998"}) w.assessments.push_back({p, "2023-06-01", "3", "GB/T 42195-2022"});
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "unknown_person"), 2);  // P999's card, P998's assessment
  ASSERT_EQ(r.registry.cards.size(), named.size() - 1);
  for (size_t c = 0; c < r.registry.cards.size(); ++c) {
    const std::string card(r.registry.card_no(static_cast<int32_t>(c)));
    const Elder& holder = r.registry.elder(r.registry.cards[c].elder);
    EXPECT_EQ(r.registry.person_id(holder), person_of[card]) << card;
  }
  // Assessments belong to the persons they name: P100 has two, P101, P102 and P120 one each.
  std::map<std::string, size_t> assessed;
  for (size_t e = 0; e < r.registry.elders.size(); ++e) {
    const Elder& elder = r.registry.elder(static_cast<int32_t>(e));
    assessed[std::string(r.registry.person_id(elder))] = r.registry.AssessmentsOf(elder).size();
  }
  EXPECT_EQ(assessed["P100"], 2u);
  EXPECT_EQ(assessed["P101"], 1u);
  EXPECT_EQ(assessed["P102"], 1u);
  EXPECT_EQ(assessed["P120"], 1u);
  EXPECT_EQ(assessed["P103"], 0u);
}

// Each elder's assessments and cards come out as one range, the rows in the
// order their file lists them. Files usually list rows person by person (then
// RegistryBuilder::Finish moves nothing and does not even sort); rows in any
// other order give the same ranges.
TEST(intake, each_elders_rows_are_grouped_in_file_order_whether_or_not_files_list_them_by_person) {
  struct Row {
    const char* person;
    const char* assessed_on;
    const char* card;
  };
  auto grouped = [](const std::vector<Row>& rows) {
    World w;
    for (const char* p : {"P1", "P2", "P3"}) w.Person(p, "1950-03-10");
    for (const Row& row : rows) {
      w.assessments.push_back({row.person, row.assessed_on, "3", "GB/T 42195-2022"});
      w.Card(row.card, row.person, 1);
    }
    auto r = w.Build(YearMonth::Of(2024, 2));
    std::map<std::string, std::string> out;  // person: its assessment dates, then its cards
    for (size_t e = 0; e < r.registry.elders.size(); ++e) {
      const Elder& elder = r.registry.elder(static_cast<int32_t>(e));
      std::string& text = out[std::string(r.registry.person_id(elder))];
      for (const Assessment& a : r.registry.AssessmentsOf(elder)) text += a.assessed_on.ToString() + " ";
      text += "|";
      for (int32_t card : r.registry.CardsOf(elder)) text += " " + std::string(r.registry.card_no(card));
    }
    return out;
  };
  const auto by_person = grouped({{"P1", "2023-01-01", "K1"}, {"P1", "2023-02-01", "K2"}, {"P2", "2023-03-01", "K3"},
                                  {"P3", "2023-04-01", "K4"}});
  EXPECT_EQ(by_person.at("P1"), "2023-01-01 2023-02-01 | K1 K2");
  EXPECT_EQ(by_person.at("P2"), "2023-03-01 | K3");
  EXPECT_EQ(by_person.at("P3"), "2023-04-01 | K4");
  // Persons interleaved and out of order: each elder's rows stay in file order, its cards in card_no order.
  const auto mixed = grouped({{"P3", "2023-04-01", "K4"}, {"P1", "2023-02-01", "K2"}, {"P2", "2023-03-01", "K3"},
                              {"P1", "2023-01-01", "K1"}, {"P3", "2023-05-01", "K0"}});
  EXPECT_EQ(mixed.at("P1"), "2023-02-01 2023-01-01 | K1 K2");
  EXPECT_EQ(mixed.at("P2"), "2023-03-01 | K3");
  EXPECT_EQ(mixed.at("P3"), "2023-04-01 2023-05-01 | K0 K4");
}

TEST(intake, a_rejected_row_names_its_file_and_line) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  w.Deposit("D2", "K1", "1,000.00", "2024-01-08T09:00:00+08:00");
  auto r = w.Build(YearMonth::Of(2024, 2));
  auto* e = Find(r, "bad_amount");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->file, "deposits.csv");
  EXPECT_EQ(e->line, 3);
  EXPECT_EQ(e->txn_id, "D2");
  EXPECT_EQ(e->month, "2024-01");
  EXPECT_NE(e->detail.find("'1,000.00'"), std::string::npos);
}

TEST(intake, a_txn_id_seen_again_is_a_duplicate_or_a_conflict) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "200", "2024-01-08T09:00:00+08:00");
  w.Deposit("D1", "K1", "200", "2024-01-08T09:00:00+08:00");
  w.Deposit("D1", "K1", "200.00", "2024-01-08T09:00:00+08:00");  // 200 and 200.00 differ as written
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "duplicate_txn"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "conflicting_txn"), 1);
}

// The duplicate check keeps 48 bits of each id's hash (ledger.h DedupHash);
// ids that share them are fetched again and compared whole. These two were
// found by a search over "X%08u" for exactly such a pair.
TEST(intake, ids_whose_hashes_share_the_bits_the_duplicate_check_keeps_are_still_different_ids) {
  const std::string a = "X16286462", b = "X26927821";
  ASSERT_EQ(DedupHash(IdIndex::Hash(a)), DedupHash(IdIndex::Hash(b)));
  ASSERT_NE(IdIndex::Hash(a), IdIndex::Hash(b));
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit(a, "K1", "60.00", "2024-01-08T09:00:00+08:00");
  w.Deposit(b, "K1", "60.00", "2024-01-09T09:00:00+08:00");
  w.Deposit(a, "K1", "60.00", "2024-01-08T09:00:00+08:00");  // a itself, again
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "duplicate_txn"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "conflicting_txn"), 0);
  EXPECT_EQ(r.files[7].accepted, 2);
  const auto* cm = testing::FindCardMonth(r, w, "K1", "2024-01");
  ASSERT_TRUE(cm);
  EXPECT_EQ(cm->net_deposit, Money::FromFen(12000));
}

TEST(intake, a_row_claims_its_txn_id_only_after_the_amount_and_date_checks) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "abc", "2024-01-08T09:00:00+08:00");
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "bad_amount"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "conflicting_txn"), 0);
  EXPECT_EQ(r.files[7].accepted, 1);
}

TEST(intake, checks_run_in_the_documented_order) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  // Unknown kind beats a bad amount; a bad amount beats a bad date; a deferred row is not checked for its card.
  w.deposits.push_back({"T1", "K1", "withdrawal", "x", "bad"});
  w.deposits.back().resize(7);
  w.Deposit("T2", "K1", "x", "bad");
  w.Deposit("T3", "K1", "1.00", "2024-02-30T00:00:00+08:00");
  w.Deposit("T4", "NOCARD", "1.00", "2024-05-01T00:00:00+08:00");
  w.Deposit("T5", "NOCARD", "1.00", "2024-01-01T00:00:00+08:00");
  auto r = w.Build(YearMonth::Of(2024, 2));
  ASSERT_EQ(r.exceptions.size(), 4u);
  std::map<int64_t, std::string> code_of_line;
  for (const auto& e : r.exceptions) code_of_line[e.line] = e.code;
  EXPECT_EQ(code_of_line, (std::map<int64_t, std::string>{{2, "bad_row"}, {3, "bad_amount"}, {4, "bad_date"}, {6, "unknown_card"}}));
  EXPECT_EQ(r.files[7].deferred, 1);
}

TEST(intake, rejections_cascade_from_people_to_cards_to_transactions) {
  World w;
  w.Person("P1", "1950-03-10");
  w.persons[0][1][17] = w.persons[0][1][17] == '0' ? '1' : '0';  // break the check character
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "bad_id_number"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "unknown_person"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "unknown_card"), 1);
  // The id number is masked in the detail: personal data never circulates in full.
  EXPECT_EQ(Find(r, "bad_id_number")->detail.find(w.persons[0][1]), std::string::npos);
}

TEST(intake, an_unknown_flag_is_a_warning_and_is_ignored) {
  World w;
  w.Person("P1", "1950-03-10", "", "rural", "empty_nest;widowed");
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "unknown_flag"), 1);
  EXPECT_EQ(r.registry.elders[0].flags, static_cast<uint32_t>(PersonFlag::kEmptyNest));
}

TEST(intake, registry_rows_are_checked_in_order) {
  World w;
  w.centers.push_back({"C03", "x", "y", "12370211729436483X", "1"});
  w.stations.push_back({"S9", "C03", "v", "n"});
  w.Person("P1", "1950-03-10", "", "city");
  w.Person("P2", "1950-13-10");
  w.Person("P3", "1950-03-10");
  w.assessments.push_back({"P3", "2023-01-01", "4", "MZ/T 039-2013"});
  w.Card("K1", "P3", 3);
  w.Card("K2", "P3", 1, "2024-02-01", "2024-01-01");
  w.enrollments.push_back({"P3", "home_bed", "I1", "2024-01-01", "", ""});
  w.enrollments.push_back({"P3", "gov_home_service", "I1", "2024-01-01", "", "card_subsidy"});
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "bad_credit_code"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "unknown_center"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "bad_date"), 2);  // birth 1950-13-10, closed before issued
  EXPECT_EQ(CountCode(r.exceptions, "bad_row"), 5);   // hukou, level, card type, two choices
}

// Stations are remembered per home centre of the card, a few each
// (TxnLookupCache): more stations than that, away visits, a centre named as its
// own station and unknown stations must all resolve as the registry says,
// however the rows of cards of different centres interleave.
TEST(intake, stations_resolve_as_the_registry_says_whatever_the_lookup_cache_remembers) {
  World w;
  for (int s = 2; s <= 10; ++s) {
    for (const std::string centre : {"C01", "C02"}) {
      w.stations.push_back({centre + "S" + (s < 10 ? "0" : "") + std::to_string(s), centre, "村", "站"});
    }
  }
  w.Person("P1", "1950-03-10");
  w.Person("P2", "1951-03-10");
  w.Person("P3", "1952-03-10");
  w.Card("K1", "P1", 1, "2022-06-01", "", "C01");
  w.Card("K2", "P2", 1, "2022-06-01", "", "C02");
  w.Card("K3", "P3", 1, "2022-06-01", "", "C01");
  std::map<std::pair<std::string, std::string>, int64_t> expected;  // (serving, home) -> visits
  int unknown = 0;
  const char* homes[] = {"C01", "C02", "C01"};
  uint32_t x = 12345;
  for (int i = 0; i < 600; ++i) {
    x = x * 1103515245u + 12345u;
    const int card = static_cast<int>((x >> 8) % 3);
    const int pick = static_cast<int>((x >> 16) % 24);
    std::string station, serving;
    if (pick < 20) {  // one of the ten stations of either centre
      serving = pick % 2 == 0 ? "C01" : "C02";
      const int s = pick / 2 + 1;
      station = serving + "S" + (s < 10 ? "0" : "") + std::to_string(s);
    } else if (pick < 22) {  // a centre serving in person
      serving = pick == 20 ? "C01" : "C02";
      station = serving;
    } else {
      station = "C09S0" + std::to_string(pick - 21);
    }
    char txn[16];
    std::snprintf(txn, sizeof txn, "X%04d", i);
    w.Consume(txn, "K" + std::to_string(card + 1), "1.00", "2024-01-10T10:00:00+08:00", station);
    if (serving.empty()) {
      ++unknown;
    } else {
      ++expected[{serving, homes[card]}];
    }
  }
  auto r = w.Build(YearMonth::Of(2024, 2));
  EXPECT_EQ(CountCode(r.exceptions, "unknown_station"), unknown);
  ASSERT_GT(unknown, 0);
  std::map<std::pair<std::string, std::string>, int64_t> got;
  for (const auto& line : r.consumption_by_center) got[{line.serving_center_id, line.home_center_id}] += line.transactions;
  EXPECT_EQ(got, expected);
  EXPECT_EQ(expected.size(), 4u);  // home and away visits at both centres
}

// ServingCenter answers from a map built with the registry (InlineIdMap), or
// from the station and centre tables when an id is too long for that map: the
// same answers either way, and a centre id that is also a station id serves as
// that station (stations first).
TEST(intake, stations_resolve_the_same_whether_or_not_their_ids_fit_the_inline_map) {
  for (const bool long_id : {false, true}) {
    World w;
    w.stations.push_back({"C01", "C02", "村", "站"});  // a station of C02 named as centre C01
    const std::string far = long_id ? "C02-A-STATION-WITH-A-LONG-ID" : "C02S77";
    ASSERT_EQ(far.size() > InlineIdMap::kMaxKeyBytes, long_id);
    w.stations.push_back({far, "C02", "村", "站"});
    w.Person("P1", "1950-03-10");
    w.Card("K1", "P1", 1, "2022-06-01", "", "C01");
    w.Consume("X1", "K1", "1.00", "2024-01-10T10:00:00+08:00", "C01");  // the station: C02 serves
    w.Consume("X2", "K1", "2.00", "2024-01-10T11:00:00+08:00", far);
    w.Consume("X3", "K1", "4.00", "2024-01-10T12:00:00+08:00", "C02");  // the centre in person
    w.Consume("X4", "K1", "8.00", "2024-01-10T13:00:00+08:00", far + "X");
    w.Consume("X5", "K1", "16.00", "2024-01-10T14:00:00+08:00", "C0");
    auto r = w.Build(YearMonth::Of(2024, 2));
    SCOPED_TRACE(long_id ? "a long station id: the two tables" : "short ids: the inline map");
    EXPECT_EQ(r.registry.serving_by_station.empty(), long_id);
    EXPECT_EQ(r.registry.ServingCenter("C01"), 1);
    EXPECT_EQ(r.registry.ServingCenter(far), 1);
    EXPECT_EQ(r.registry.ServingCenter("C02"), 1);
    EXPECT_EQ(r.registry.ServingCenter(far + "X"), -1);
    EXPECT_EQ(r.registry.ServingCenter(""), -1);
    EXPECT_EQ(CountCode(r.exceptions, "unknown_station"), 2);
    std::map<std::pair<std::string, std::string>, Money> got;
    for (const auto& line : r.consumption_by_center) got[{line.serving_center_id, line.home_center_id}] += line.amount;
    const std::map<std::pair<std::string, std::string>, Money> expected = {{{"C02", "C01"}, Money::FromFen(700)}};
    EXPECT_EQ(got, expected);
  }
}

TEST(intake, identity_checks_follow_the_national_standards) {
  EXPECT_TRUE(IsValidResidentId("37028319380909059X"));
  EXPECT_TRUE(IsValidResidentId("37028319380909059x"));
  EXPECT_FALSE(IsValidResidentId("370283193809090591"));
  EXPECT_FALSE(IsValidResidentId("3702831938090905"));
  EXPECT_TRUE(IsValidCreditCode("12370211729436483J"));
  EXPECT_FALSE(IsValidCreditCode("12370211729436483K"));
  EXPECT_EQ(MaskIdNumber("370285195003100762"), "370285********0762");
}

}  // namespace
}  // namespace carecard
