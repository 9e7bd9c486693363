#include "engine/settlement.h"

#include <gtest/gtest.h>

#include "tests/engine/test_world.h"

namespace carecard {
namespace {
using testing::CountCode;
using testing::FindCardMonth;
using testing::World;

constexpr CardMonthStatus kPaid = CardMonthStatus::kPaid;

TEST(settlement, a_deposit_reaching_the_threshold_earns_the_subsidy) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:15:00+08:00");
  w.Deposit("D2", "K1", "99.99", "2024-02-08T09:15:00+08:00");
  auto r = w.Settle("2024-B1");
  auto* jan = FindCardMonth(r, w, "K1", "2024-01");
  auto* feb = FindCardMonth(r, w, "K1", "2024-02");
  ASSERT_TRUE(jan && feb);
  EXPECT_EQ(jan->status, kPaid);
  EXPECT_EQ(jan->subsidy.ToString(), "50.00");
  EXPECT_EQ(jan->tier, 1);
  EXPECT_EQ(feb->status, CardMonthStatus::kBelowThreshold);
  EXPECT_EQ(feb->subsidy.ToString(), "0.00");
  EXPECT_EQ(feb->net_deposit.ToString(), "99.99");
}

TEST(settlement, a_deposit_at_the_last_second_of_the_month_counts_in_that_month_in_the_policy_zone) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-31T15:59:59Z");  // 23:59:59 on 31 Jan in +08:00
  w.Deposit("D2", "K1", "100.00", "2024-02-29T16:00:00Z");  // 00:00 on 1 March in +08:00: after the period
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->status, kPaid);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->net_deposit.ToString(), "0.00");
}

TEST(settlement, the_birthday_month_counts) {
  World w;
  w.Person("P1", "1964-02-10");
  w.Card("K1", "P1", 1, "2024-01-05");
  w.Deposit("D1", "K1", "100.00", "2024-01-10T09:00:00+08:00");
  w.Deposit("D2", "K1", "100.00", "2024-02-10T09:00:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->status, CardMonthStatus::kIneligible);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->reason, "not_eligible");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->status, kPaid);
}

TEST(settlement, the_death_month_still_earns_and_later_months_are_deceased) {
  World w;
  w.Person("P1", "1936-04-04", "2024-01-20");
  w.Card("K1", "P1", 2);
  w.Deposit("D1", "K1", "200.00", "2024-01-05T09:00:00+08:00");
  w.Deposit("D2", "K1", "200.00", "2024-02-03T09:00:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->subsidy.ToString(), "120.00");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->status, CardMonthStatus::kDeceased);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->net_deposit.ToString(), "0.00");
  EXPECT_EQ(CountCode(r.exceptions, "deposit_after_death"), 1);
  // Money was received: the uncounted deposit is on the balance.
  EXPECT_EQ(r.statements.at(0).flows.deposits.ToString(), "400.00");
}

TEST(settlement, a_death_on_the_first_of_the_month_still_earns_that_month) {
  World w;
  w.Person("P1", "1936-04-04", "2024-02-01");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-02-01T09:00:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->status, kPaid);
}

TEST(settlement, a_reversal_in_a_later_month_reduces_the_original_deposits_month) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  w.Reversal("R1", "K1", "0.01", "2024-02-08T09:00:00+08:00", "D1");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->net_deposit.ToString(), "99.99");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->status, CardMonthStatus::kBelowThreshold);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->net_deposit.ToString(), "0.00");
}

TEST(settlement, reversing_more_than_remains_is_an_error_row) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  w.Reversal("R1", "K1", "60.00", "2024-01-09T09:00:00+08:00", "D1");
  w.Reversal("R2", "K1", "40.01", "2024-01-10T09:00:00+08:00", "D1");
  w.Reversal("R3", "K1", "1.00", "2024-01-10T09:00:00+08:00", "NOPE");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(CountCode(r.exceptions, "over_reversal"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "unknown_ref"), 1);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->net_deposit.ToString(), "40.00");
}

TEST(settlement, a_reversal_before_its_deposit_in_file_order_is_unknown_ref) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Reversal("R1", "K1", "10.00", "2024-01-09T09:00:00+08:00", "D1");
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  auto r = w.Settle("2024-B1");
  ASSERT_EQ(CountCode(r.exceptions, "unknown_ref"), 1);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->status, kPaid);
}

TEST(settlement, only_the_earliest_issued_card_of_an_elder_is_considered) {
  World w;
  w.Person("P1", "1950-10-10");
  w.Card("K2", "P1", 1, "2023-09-01");
  w.Card("K1", "P1", 1, "2022-05-01");
  w.Deposit("D1", "K1", "100.00", "2024-01-06T09:00:00+08:00");
  w.Deposit("D2", "K2", "100.00", "2024-01-06T09:30:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->status, kPaid);
  EXPECT_EQ(FindCardMonth(r, w, "K2", "2024-01")->status, CardMonthStatus::kDuplicateCard);
  EXPECT_EQ(CountCode(r.exceptions, "duplicate_card"), 2);  // both months of the period
}

TEST(settlement, duplicate_cards_tie_on_issue_date_by_card_number) {
  World w;
  w.Person("P1", "1950-10-10");
  w.Card("K9", "P1", 1, "2022-05-01");
  w.Card("K1", "P1", 1, "2022-05-01");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K9", "2024-01")->status, CardMonthStatus::kDuplicateCard);
  EXPECT_NE(FindCardMonth(r, w, "K1", "2024-01")->status, CardMonthStatus::kDuplicateCard);
}

TEST(settlement, an_elder_registered_twice_is_paid_once) {
  World w;
  w.Person("P1", "1950-03-10");
  w.persons.push_back(w.persons[0]);
  w.persons[1][0] = "P9";
  w.Card("K1", "P1", 1, "2022-06-01");
  w.Card("K2", "P9", 1, "2023-05-01");
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  w.Deposit("D2", "K2", "100.00", "2024-01-08T09:00:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(CountCode(r.exceptions, "duplicate_person"), 1);
  EXPECT_EQ(FindCardMonth(r, w, "K2", "2024-01")->status, CardMonthStatus::kDuplicateCard);
  EXPECT_EQ(r.totals.subsidies.ToString(), "50.00");
}

TEST(settlement, exclusions_apply_to_listed_card_types_and_choices) {
  World w;
  w.Person("P1", "1942-12-01");
  w.Person("P2", "1942-12-01");
  w.Person("P3", "1940-01-01");
  w.Card("K1", "P1", 2);
  w.Card("K2", "P2", 2);
  w.Card("K3", "P3", 1);
  w.enrollments.push_back({"P1", "home_bed", "I02", "2024-02-15", "", "home_bed_discount"});
  w.enrollments.push_back({"P2", "home_bed", "I02", "2024-01-01", "", "card_subsidy"});
  w.enrollments.push_back({"P3", "home_bed", "I02", "2024-01-01", "", "home_bed_discount"});
  for (const char* k : {"K1", "K2"}) w.Deposit(std::string("D") + k, k, "200.00", "2024-02-12T10:00:00+08:00");
  w.Deposit("DK3", "K3", "100.00", "2024-02-12T10:00:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->status, CardMonthStatus::kExcluded);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->reason, "home_bed");
  EXPECT_EQ(FindCardMonth(r, w, "K2", "2024-02")->status, kPaid);  // chose the card subsidy
  EXPECT_EQ(FindCardMonth(r, w, "K3", "2024-02")->status, kPaid);  // type 1 is not listed for home_bed
}

TEST(settlement, home_visits_and_home_beds_with_one_institution_are_listed_for_the_operating_subsidy) {
  World w;
  w.Person("P1", "1946-07-07");
  w.Card("K1", "P1", 1);
  w.enrollments.push_back({"P1", "home_bed", "I01", "2023-06-01", "", "card_subsidy"});
  w.enrollments.push_back({"P1", "gov_home_service", "I01", "2024-02-01", "", ""});
  auto r = w.Settle("2024-B1");
  ASSERT_EQ(r.homebed_exclusions.size(), 1u);
  EXPECT_EQ(r.homebed_exclusions[0].month.ToString(), "2024-02");
  EXPECT_EQ(r.homebed_exclusions[0].institution_id, "I01");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-02")->reason, "gov_home_service");
}

TEST(settlement, a_type_two_card_falls_back_to_the_lower_tier) {
  World w;
  w.Person("P1", "1940-06-01");
  w.Person("P2", "1944-05-05");
  w.Card("K1", "P1", 2);
  w.Card("K2", "P2", 2);
  w.assessments.push_back({"P2", "2023-10-15", "1", "GB/T 42195-2022"});
  w.Deposit("D1", "K1", "150.00", "2024-01-09T10:00:00+08:00");
  w.Deposit("D2", "K2", "200.00", "2024-01-09T10:00:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->tier, 1);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->subsidy.ToString(), "50.00");
  EXPECT_EQ(FindCardMonth(r, w, "K2", "2024-01")->tier, 1);  // 79 and level 1: eligible for type 1 only
}

TEST(settlement, without_lower_tiers_only_the_cards_own_type_applies) {
  World w;
  w.Person("P1", "1940-06-01");
  w.Card("K1", "P1", 2);
  w.Deposit("D1", "K1", "150.00", "2024-01-09T10:00:00+08:00");
  Policy p = testing::QingdaoPolicy();
  p.versions[0].allow_lower_tier = false;
  auto r = w.Settle("2024-B1", {}, 1, p);
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->status, CardMonthStatus::kBelowThreshold);
}

TEST(settlement, an_assessment_is_valid_through_the_same_day_a_year_later) {
  World w;
  w.Person("P1", "1955-01-20");
  w.Card("K1", "P1", 2);
  w.assessments.push_back({"P1", "2023-03-15", "3", "GB/T 42195-2022"});
  w.Deposit("D1", "K1", "200.00", "2024-02-03T08:30:00+08:00");
  w.Deposit("D2", "K1", "200.00", "2024-03-03T08:30:00+08:00");
  auto r = w.Settle("2024-B2", {});
  // 2024-03: valid through 2024-03-15, not on the month's last day -> only type 1 (69, rural).
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-03")->tier, 1);
  auto r1 = w.Settle("2024-B1", {});
  EXPECT_EQ(FindCardMonth(r1, w, "K1", "2024-02")->tier, 2);
}

TEST(settlement, a_month_without_a_policy_version_is_ineligible) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1, "2021-01-01");
  w.Deposit("D1", "K1", "100.00", "2022-01-08T09:00:00+08:00");
  auto r = w.Settle("2022-B1");
  ASSERT_TRUE(FindCardMonth(r, w, "K1", "2022-01"));
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2022-01")->reason, "no_policy_in_force");
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2022-01")->rule_version, "");
}

TEST(settlement, proration_by_days_counts_days_active_and_alive) {
  World w;
  w.Person("P1", "1950-03-10", "2024-01-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  Policy p = testing::QingdaoPolicy();
  p.versions[0].proration = Proration::kByDays;
  auto r = w.Settle("2024-B1", {}, 1, p);
  // 50.00 * 10 / 31 = 16.129.. -> 16.13
  EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->subsidy.ToString(), "16.13");
}

TEST(settlement, overdraft_is_flagged_when_consumption_takes_the_balance_below_zero) {
  World w;
  w.Person("P1", "1949-11-11");
  w.Card("K1", "P1", 1);
  w.Consume("X1", "K1", "30.00", "2024-01-15T11:30:00+08:00", "C02S01");
  w.Deposit("D1", "K1", "100.00", "2024-01-31T23:30:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(CountCode(r.exceptions, "overdraft"), 1);
  EXPECT_EQ(CountCode(r.exceptions, "cross_center_consumption"), 1);
  EXPECT_EQ(r.statements.at(0).closing.ToString(), "120.00");
}

TEST(settlement, at_equal_times_deposits_come_before_consumption) {
  World w;
  w.Person("P1", "1949-11-11");
  w.Card("K1", "P1", 1);
  w.Consume("A1", "K1", "30.00", "2024-01-15T11:30:00+08:00");
  w.Deposit("Z1", "K1", "100.00", "2024-01-15T11:30:00+08:00");
  auto r = w.Settle("2024-B1");
  EXPECT_EQ(CountCode(r.exceptions, "overdraft"), 0);
}

TEST(settlement, a_refund_is_attributed_to_the_station_and_service_of_its_consumption) {
  World w;
  w.Person("P1", "1949-11-11");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-01T09:00:00+08:00");
  w.Consume("X1", "K1", "80.00", "2024-01-26T15:00:00+08:00", "C02S01", "助洁");
  w.Refund("X2", "K1", "20.00", "2024-01-27T10:00:00+08:00", "X1");
  auto r = w.Settle("2024-B1");
  ASSERT_EQ(r.consumption_by_center.size(), 1u);
  EXPECT_EQ(r.consumption_by_center[0].serving_center_id, "C02");
  EXPECT_EQ(r.consumption_by_center[0].transactions, 1);
  EXPECT_EQ(r.consumption_by_center[0].amount.ToString(), "60.00");
}

// consumption_by_center.csv is in the order of serving centre id, home centre
// id, then service name (bytes), whatever order the registry lists centres in,
// services are first named in, or rows come in.
TEST(settlement, consumption_by_center_lines_come_by_serving_centre_home_centre_and_service) {
  World w;
  std::swap(w.centers[0], w.centers[1]);  // the registry lists C02 first
  w.Person("P1", "1949-11-11");
  w.Person("P2", "1949-11-12");
  w.Card("K1", "P1", 1, "2022-06-01", "", "C01");
  w.Card("K2", "P2", 1, "2022-06-01", "", "C02");
  w.Deposit("D1", "K1", "500.00", "2024-01-01T09:00:00+08:00");
  w.Deposit("D2", "K2", "500.00", "2024-01-01T09:00:00+08:00");
  struct Visit {
    const char* card;
    const char* station;
    const char* service;
  };
  const std::vector<Visit> visits = {{"K2", "C02S01", "康复"}, {"K1", "C02S01", "助餐"}, {"K2", "C01S01", "助浴"},
                                     {"K1", "C01S01", "康复"}, {"K2", "C02S01", "助洁"}, {"K1", "C01S01", "助洁"},
                                     {"K1", "C02S01", "助洁"}, {"K2", "C01S01", "助餐"}, {"K1", "C01S01", "助餐"},
                                     {"K2", "C02S01", "康复"}};
  for (size_t i = 0; i < visits.size(); ++i) {
    w.Consume("X" + std::to_string(i), visits[i].card, "10.00", "2024-01-1" + std::to_string(i % 9 + 1) + "T10:00:00+08:00",
              visits[i].station, visits[i].service);
  }
  auto r = w.Settle("2024-B1");
  std::vector<std::string> got;
  for (const auto& l : r.consumption_by_center) {
    got.push_back(l.serving_center_id + " " + l.home_center_id + " " + l.service + " " + std::to_string(l.transactions));
  }
  // 助洁 (E5 8A A9 E6 B4 81) < 助浴 (.. E6 B5 B4) < 助餐 (.. E9 A4 90) < 康复 (E5 BA B7 ..).
  const std::vector<std::string> expected = {"C01 C01 助洁 1", "C01 C01 助餐 1", "C01 C01 康复 1", "C01 C02 助浴 1",
                                             "C01 C02 助餐 1", "C02 C01 助洁 1", "C02 C01 助餐 1", "C02 C02 助洁 1",
                                             "C02 C02 康复 2"};
  EXPECT_EQ(got, expected);
}

// A consumption sum by centre and service adds up many cards' rows: when it
// stops fitting, the message names the centres and the service, not the card
// whose row came last. Two cards of C01, each within what a card may hold
// (46,200 rows of the largest amount the formats allow, 46.2 of the 92.2
// quadrillion yuan a Money holds), whose visits to C02 under 助洁 add up to
// more; each card then visits C02 once more under `then_service` (not when empty).
World TwoCardsWhoseVisitsAwayOverflow(const std::string& then_service) {
  World w;
  w.Person("P1", "1949-11-11");
  w.Person("P2", "1949-11-12");
  w.Card("K1", "P1", 1, "2022-06-01", "", "C01");
  w.Card("K2", "P2", 1, "2022-06-01", "", "C01");
  for (const std::string card : {"K1", "K2"}) {
    for (int i = 0; i < 46200; ++i) {
      const std::string at = "2024-01-" + std::string(i % 28 < 9 ? "0" : "") + std::to_string(i % 28 + 1) + "T10:00:00+08:00";
      w.Consume(card + "-" + std::to_string(i), card, "999999999999.99", at, "C02S01", "助洁");
    }
    if (!then_service.empty()) w.Consume(card + "-last", card, "1.00", "2024-01-29T10:00:00+08:00", "C02S01", then_service);
  }
  return w;
}

void ExpectTheOverflowNamesTheCentresAndTheService(const World& w) {
  try {
    w.Settle("2024-B1");
    FAIL() << "the sum fitted";
  } catch (const ConsumptionOverflow& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("centre 'C02' of cards of centre 'C01' under service '助洁'"), std::string::npos) << what;
    EXPECT_EQ(what.find("K1"), std::string::npos) << what;
    EXPECT_EQ(what.find("K2"), std::string::npos) << what;
  }
}

TEST(settlement, a_consumption_sum_by_centre_that_stops_fitting_names_the_centres_and_the_service) {
  // One card's run follows the other's: they add up while they wait to go into the table.
  ExpectTheOverflowNamesTheCentresAndTheService(TwoCardsWhoseVisitsAwayOverflow(""));
}

TEST(settlement, a_consumption_sum_that_stops_fitting_when_additions_go_into_the_table_is_named_too) {
  // Each run followed by another key: the runs wait apart, and the sum stops
  // fitting only when the partition's waiting additions go into the table
  // (left for the merge, the run's own consumption total would overflow
  // first, naming nothing).
  ExpectTheOverflowNamesTheCentresAndTheService(TwoCardsWhoseVisitsAwayOverflow("助餐"));
}

TEST(settlement, opening_plus_flows_is_closing_and_payouts_add_up) {
  World w;
  for (int i = 0; i < 30; ++i) {
    const std::string p = "P" + std::to_string(i), k = "K" + std::to_string(i);
    w.Person(p, i % 3 ? "1940-01-01" : "1970-01-01");
    w.Card(k, p, 1 + i % 2, "2022-01-01", "", i % 2 ? "C01" : "C02");
    w.Deposit("D" + std::to_string(i), k, std::to_string(50 * (i % 6)) + ".00", "2024-01-05T09:00:00+08:00");
    w.Consume("X" + std::to_string(i), k, "7.50", "2024-02-05T09:00:00+08:00");
  }
  auto r = w.Settle("2024-B1");
  Money subsidies;
  // Each card: its deposit, its subsidies and its one consumption, nothing else.
  for (const auto& s : r.statements) {
    EXPECT_EQ(s.opening.ToString(), "0.00") << s.card_no;
    EXPECT_EQ(s.flows.consumption.ToString(), "7.50") << s.card_no;
    EXPECT_EQ(s.closing, s.flows.deposits + s.flows.subsidies - s.flows.consumption) << s.card_no;
  }
  for (const auto& p : r.payouts) {
    EXPECT_EQ(p.payout + p.carried_out, p.subsidy_total + p.adjustment_total + p.carried_in);
    subsidies += p.subsidy_total;
  }
  EXPECT_EQ(subsidies, r.totals.subsidies);
  EXPECT_GT(r.totals.subsidies.fen(), 0);
}

TEST(settlement, the_result_does_not_depend_on_the_thread_count) {
  World w;
  for (int i = 0; i < 50; ++i) {
    const std::string p = "P" + std::to_string(i), k = "K" + std::to_string(i);
    w.Person(p, "1940-01-01");
    w.Card(k, p, 1);
    w.Deposit("D" + std::to_string(i), k, "100.00", "2024-01-05T09:00:00+08:00");
    w.Consume("X" + std::to_string(i), k, "150.00", "2024-01-06T09:00:00+08:00");
  }
  auto one = w.Settle("2024-B1", {}, 1);
  auto four = w.Settle("2024-B1", {}, 4);
  ASSERT_EQ(one.card_months.size(), four.card_months.size());
  for (size_t i = 0; i < one.card_months.size(); ++i) EXPECT_EQ(one.card_months[i].card, four.card_months[i].card);
  ASSERT_EQ(one.exceptions.size(), four.exceptions.size());
  for (size_t i = 0; i < one.exceptions.size(); ++i) EXPECT_EQ(one.exceptions[i].line, four.exceptions[i].line);
  EXPECT_EQ(one.totals.payouts, four.totals.payouts);
}

TEST(settlement, late_corrections_to_closed_months_become_adjustments) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  BookStateBuilder closed;
  std::string error;
  ASSERT_TRUE(closed.BeginPeriod(*PayoutPeriod::Parse("2024-B1", 2), &error));
  closed.AddCardMonth("K1", YearMonth::Of(2024, 1), Money::FromFen(0), "C01");
  closed.AddCardMonth("K1", YearMonth::Of(2024, 2), Money::FromFen(5000), "C01");
  closed.AddCardMonth("GONE", YearMonth::Of(2024, 2), Money::FromFen(5000), "C02");
  closed.AddStatement("K1", Flows{Money::FromFen(10000), {}, Money::FromFen(5000), {}, {}}, Money::FromFen(15000), "C01");
  closed.AddCarried("C02", Money::FromFen(-1000));
  const BookState book = closed.Finish();
  auto r = w.Settle("2024-B2", book);
  ASSERT_EQ(r.adjustments.size(), 3u);
  EXPECT_EQ(r.adjustments[0].original_month.ToString(), "2024-01");
  EXPECT_EQ(r.adjustments[0].amount.ToString(), "50.00");
  EXPECT_EQ(r.adjustments[0].reason, "paid");
  EXPECT_EQ(r.adjustments[1].card_no, "GONE");
  EXPECT_EQ(r.adjustments[1].reason, "removed");
  EXPECT_EQ(r.adjustments[2].amount.ToString(), "-50.00");
  // C02: -50 removed, -10 carried in -> paid 0, -60 carried on.
  ASSERT_EQ(r.payouts.size(), 2u);
  EXPECT_EQ(r.payouts[1].center_id, "C02");
  EXPECT_EQ(r.payouts[1].payout.ToString(), "0.00");
  EXPECT_EQ(r.payouts[1].carried_out.ToString(), "-60.00");
  // The statement moves by exactly the adjustment.
  ASSERT_EQ(r.statements.size(), 1u);
  EXPECT_EQ(r.statements[0].opening.ToString(), "150.00");
  EXPECT_EQ(r.statements[0].flows.subsidies.ToString(), "0.00");
}

// The run's spill, recording the stores it makes for records that die early.
class RecordingSpill : public MemorySpillStore {
 public:
  std::unique_ptr<SpillStore> NewStore() const override {
    ++stores_made;
    return std::make_unique<Child>(&bytes_at_discard);
  }
  mutable int stores_made = 0;
  mutable std::vector<uint64_t> bytes_at_discard;  // what each held when it was discarded

 private:
  class Child : public MemorySpillStore {
   public:
    explicit Child(std::vector<uint64_t>* log) : log_(log) {}
    void Discard() override {
      log_->push_back(size());
      MemorySpillStore::Discard();
    }

   private:
    std::vector<uint64_t>* log_;
  };
};

TEST(settlement, the_spilled_events_are_given_back_before_the_results_are_returned) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:15:00+08:00");
  w.Consume("X1", "K1", "20.00", "2024-01-09T09:00:00+08:00");
  for (int threads : {1, 2}) {
    RecordingSpill spill;
    RunOptions options;
    options.threads = threads;
    options.spill = &spill;
    auto r = w.Run("2024-B1", {}, testing::QingdaoPolicy(), options);
    EXPECT_EQ(FindCardMonth(r, w, "K1", "2024-01")->status, kPaid) << threads << " threads";
    EXPECT_EQ(spill.stores_made, 1) << "the events' own store";
    ASSERT_EQ(spill.bytes_at_discard.size(), 1u) << threads << " threads";
    EXPECT_GT(spill.bytes_at_discard[0], 0u) << "it held the events until then";
  }
}

// A spill whose event store cannot give its bytes back.
class StickySpill : public MemorySpillStore {
 public:
  std::unique_ptr<SpillStore> NewStore() const override { return std::make_unique<Sticky>(); }

 private:
  class Sticky : public MemorySpillStore {
   public:
    void Discard() override { throw SpillError("cannot truncate"); }
  };
};

TEST(settlement, a_store_that_cannot_give_its_events_back_costs_memory_not_the_results) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Deposit("D1", "K1", "100.00", "2024-01-08T09:15:00+08:00");
  StickySpill spill;
  RunOptions options;
  options.threads = 2;
  options.spill = &spill;
  auto r = w.Run("2024-B1", {}, testing::QingdaoPolicy(), options);
  const auto* jan = FindCardMonth(r, w, "K1", "2024-01");
  ASSERT_NE(jan, nullptr);
  EXPECT_EQ(jan->status, kPaid);
  EXPECT_EQ(r.totals.subsidies.ToString(), "50.00");
}

TEST(settlement, explain_walks_the_steps_in_order) {
  World w;
  w.Person("P1", "1964-02-10");
  w.Card("K1", "P1", 1, "2024-01-05");
  w.Deposit("D1", "K1", "100.00", "2024-01-10T09:00:00+08:00");
  RunOptions explain;
  explain.explain_card = "K1";
  explain.explain_month = YearMonth::Of(2024, 1);
  auto settled = w.Run("2024-B1", {}, testing::QingdaoPolicy(), explain);
  ASSERT_TRUE(settled.explanation);
  const CardMonthExplanation& x = *settled.explanation;
  ASSERT_TRUE(x.found);
  EXPECT_EQ(x.result.status, CardMonthStatus::kIneligible);
  auto find = [&](ExplainStepKind kind) -> const ExplainStep* {
    for (const auto& step : x.steps) {
      if (step.kind == kind) return &step;
    }
    return nullptr;
  };
  auto position = [&](ExplainStepKind kind) {
    for (size_t i = 0; i < x.steps.size(); ++i) {
      if (x.steps[i].kind == kind) return i;
    }
    return x.steps.size();
  };
  const ExplainStep* age = find(ExplainStepKind::kAge);
  ASSERT_NE(age, nullptr);
  EXPECT_EQ(age->args, (std::vector<std::string>{"2024-01-31", "59", "1964-02-10"}));
  const ExplainStep* deposit = find(ExplainStepKind::kDepositCounted);
  ASSERT_NE(deposit, nullptr);
  EXPECT_EQ(deposit->args, (std::vector<std::string>{"D1", "100.00", "2024-01-10"}));
  EXPECT_LT(position(ExplainStepKind::kAlive), position(ExplainStepKind::kElderCard));
  EXPECT_LT(position(ExplainStepKind::kElderCard), position(ExplainStepKind::kNotEligible));
  EXPECT_EQ(x.steps.back().kind, ExplainStepKind::kIneligible);
}

TEST(settlement, explain_says_why_a_deposit_after_death_is_not_counted) {
  World w;
  w.Person("P1", "1940-01-01", "2024-01-20");
  w.Card("K1", "P1", 1, "2022-06-01");
  w.Deposit("D1", "K1", "100.00", "2024-01-25T09:00:00+08:00");
  RunOptions explain;
  explain.explain_card = "K1";
  explain.explain_month = YearMonth::Of(2024, 1);
  auto settled = w.Run("2024-B1", {}, testing::QingdaoPolicy(), explain);
  ASSERT_TRUE(settled.explanation);
  const CardMonthExplanation& x = *settled.explanation;
  ASSERT_TRUE(x.found);
  bool seen = false;
  for (const auto& step : x.steps) {
    if (step.kind != ExplainStepKind::kDepositNotCountedDeceased) continue;
    seen = true;
    EXPECT_EQ(step.args, (std::vector<std::string>{"D1", "100.00", "2024-01-25", "2024-01-20"}));
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(x.result.status, CardMonthStatus::kBelowThreshold);
}

TEST(settlement, a_period_spanning_a_version_change_settles_each_month_under_its_own_version) {
  // 2022.1 to 2024-01 (100 -> 50, 200 -> 120); 2024.1 from 2024-02 (150 -> 70, 300 -> 160).
  Policy p = testing::QingdaoPolicy();
  p.versions[0].to = YearMonth::Of(2024, 1);
  PolicyVersion next = p.versions[0];
  next.version = "2024.1";
  next.from = YearMonth::Of(2024, 2);
  next.to.reset();
  next.card_types[0].min_monthly_deposit = Money::FromFen(15000);
  next.card_types[0].monthly_subsidy = Money::FromFen(7000);
  next.card_types[1].min_monthly_deposit = Money::FromFen(30000);
  next.card_types[1].monthly_subsidy = Money::FromFen(16000);
  p.versions.push_back(next);
  World w;
  w.Person("P1", "1950-03-10");
  w.Card("K1", "P1", 1);
  w.Person("P2", "1940-06-01");
  w.Card("K2", "P2", 2);
  w.Deposit("D1", "K1", "150.00", "2024-01-10T09:00:00+08:00");
  w.Deposit("D2", "K1", "150.00", "2024-02-10T09:00:00+08:00");
  w.Deposit("D3", "K2", "200.00", "2024-01-10T09:00:00+08:00");
  w.Deposit("D4", "K2", "200.00", "2024-02-10T09:00:00+08:00");
  auto r = w.Settle("2024-B1", {}, 1, p);
  const auto* k1_jan = FindCardMonth(r, w, "K1", "2024-01");
  const auto* k1_feb = FindCardMonth(r, w, "K1", "2024-02");
  const auto* k2_jan = FindCardMonth(r, w, "K2", "2024-01");
  const auto* k2_feb = FindCardMonth(r, w, "K2", "2024-02");
  ASSERT_TRUE(k1_jan && k1_feb && k2_jan && k2_feb);
  EXPECT_EQ(k1_jan->subsidy.ToString(), "50.00");
  EXPECT_EQ(k1_jan->rule_version, "qingdao-rural-care-card@2022.1");
  EXPECT_EQ(k1_feb->subsidy.ToString(), "70.00");
  EXPECT_EQ(k1_feb->rule_version, "qingdao-rural-care-card@2024.1");
  // 200 reaches type 2 under 2022.1, only type 1 under 2024.1.
  EXPECT_EQ(k2_jan->tier, 2);
  EXPECT_EQ(k2_jan->subsidy.ToString(), "120.00");
  EXPECT_EQ(k2_jan->rule_version, "qingdao-rural-care-card@2022.1");
  EXPECT_EQ(k2_feb->tier, 1);
  EXPECT_EQ(k2_feb->subsidy.ToString(), "70.00");
  EXPECT_EQ(k2_feb->rule_version, "qingdao-rural-care-card@2024.1");
  EXPECT_EQ(r.totals.subsidies.ToString(), "310.00");
}

}  // namespace
}  // namespace carecard

namespace carecard {
namespace {

TEST(settlement, cards_listed_out_of_number_order_come_out_in_card_no_order) {
  World w;
  w.Person("P1", "1950-03-10");
  w.Person("P2", "1951-03-10");
  w.Person("P3", "1952-03-10");
  w.Card("K9", "P1", 1);
  w.Card("K1", "P2", 1);
  w.Card("K5", "P3", 1);
  w.Deposit("D1", "K9", "100.00", "2024-01-08T09:00:00+08:00");
  w.Deposit("D2", "K1", "100.00", "2024-01-08T09:00:00+08:00");
  w.Deposit("D3", "K5", "99.00", "2024-01-08T09:00:00+08:00");
  // The platform's balance of K9 (cards.csv's first row) is checked against K9's own: 150.00.
  w.balances.push_back({"K9", "2024-01-31", "120.00"});
  auto r = w.Settle("2024-B1");
  std::vector<std::string> order;
  for (const auto& cm : r.card_months) {
    if (cm.month == YearMonth::Of(2024, 1)) order.push_back(std::string(r.registry.card_no(cm.card)));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"K1", "K5", "K9"}));
  ASSERT_EQ(r.statements.size(), 3u);
  EXPECT_EQ(r.statements[0].card_no, "K1");
  EXPECT_EQ(r.statements[2].card_no, "K9");
  EXPECT_EQ(r.statements[2].closing.ToString(), "150.00");  // 100 + January's 50
  EXPECT_EQ(FindCardMonth(r, w, "K5", "2024-01")->status, CardMonthStatus::kBelowThreshold);
  ASSERT_EQ(CountCode(r.exceptions, "balance_mismatch"), 1);
  for (const auto& e : r.exceptions) {
    if (e.code == "balance_mismatch") {
      EXPECT_EQ(e.card_no, "K9");
    }
  }
}

}  // namespace
}  // namespace carecard
