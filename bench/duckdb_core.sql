-- The core aggregation of one carecard period, written for DuckDB, as the
-- benchmark peer of issue 7 (bench/run.sh runs it through bench/duckdb_run.mjs).
-- It is NOT part of carecard and nothing of DuckDB is a runtime dependency.
--
-- Period 2024-B1 (months 2024-01 and 2024-02), policy rules/qingdao-2022.yaml.
-- ${DATA} is the data folder written by `carecard gen`, ${OUT} a scratch folder
-- that receives the result files (carecard writes its files too, so DuckDB does).
-- Statements are separated by a line that ends with ';'.
--
-- What it computes, as carecard does (semantics.md §4-§6):
--   * net deposit per card-month: deposits dated in the month (+08:00) minus
--     reversals, each reversal charged to its original deposit's month;
--   * card-months: every card active on at least one day of a month;
--     `deceased` (died before the month), `duplicate_card` (a second active
--     card of the same resident id; the earliest issued_on, then card_no, wins),
--     `excluded` (gov_home_service enrolment overlapping the month; home_bed with
--     home_bed_discount for type 2), eligibility (rural and age >= 60 for type 1;
--     rural and (age >= 80 or (age >= 60 and latest valid assessment >= 2)) for
--     type 2; age in completed years on the month's last day; assessments valid
--     12 months), tier with allow_lower_tier (thresholds 100 / 200 -> 50 / 120);
--   * subsidy per centre (cards paid, subsidy total);
--   * consumption per card (consumption minus refunds dated up to the period end).
-- Simplifications (cheaper than carecard, so they favour DuckDB): no row
-- validation or exception list, no duplicate/conflicting txn_id detection, no
-- "counted" check of each deposit against card activity and death date, no
-- person aliases (duplicate_person) beyond grouping cards by id number, no
-- balances, statements, running overdraft, adjustments or manifest hashing.

CREATE TEMP TABLE months AS
SELECT * FROM (VALUES ('2024-01', DATE '2024-01-01', DATE '2024-01-31'),
                      ('2024-02', DATE '2024-02-01', DATE '2024-02-29')) m(month, first_day, last_day);

CREATE TEMP TABLE deposits AS
SELECT txn_id, card_no, kind, amount, ref_txn_id,
       strftime(make_timestamp(epoch_us("at") + 28800000000), '%Y-%m') AS month
FROM read_csv('${DATA}/deposits*.csv', header = true, auto_detect = false,
              columns = {'txn_id': 'VARCHAR', 'card_no': 'VARCHAR', 'kind': 'VARCHAR', 'amount': 'DECIMAL(14,2)',
                         'at': 'TIMESTAMPTZ', 'channel': 'VARCHAR', 'ref_txn_id': 'VARCHAR'});

CREATE TEMP TABLE net AS
SELECT card_no, month, sum(amount) AS net_deposit
FROM (
  SELECT card_no, month, amount FROM deposits WHERE kind = 'deposit'
  UNION ALL
  SELECT r.card_no, o.month, -r.amount
  FROM deposits r JOIN deposits o ON o.txn_id = r.ref_txn_id
  WHERE r.kind = 'reversal' AND o.kind = 'deposit'
)
WHERE month IN ('2024-01', '2024-02')
GROUP BY card_no, month;

CREATE TEMP TABLE persons AS
SELECT * FROM read_csv('${DATA}/persons.csv', header = true, auto_detect = false,
              columns = {'person_id': 'VARCHAR', 'id_number': 'VARCHAR', 'name': 'VARCHAR', 'birth_date': 'DATE',
                         'hukou': 'VARCHAR', 'village': 'VARCHAR', 'flags': 'VARCHAR', 'death_date': 'DATE'});

CREATE TEMP TABLE cards AS
SELECT * FROM read_csv('${DATA}/cards.csv', header = true, auto_detect = false,
              columns = {'card_no': 'VARCHAR', 'person_id': 'VARCHAR', 'card_type': 'INTEGER', 'center_id': 'VARCHAR',
                         'issued_on': 'DATE', 'closed_on': 'DATE'});

CREATE TEMP TABLE latest_assessment AS
SELECT a.person_id, m.month, arg_max(a.level, date_diff('day', DATE '1970-01-01', a.assessed_on) * 10 + a.level) AS level
FROM read_csv('${DATA}/assessments.csv', header = true, auto_detect = false,
              columns = {'person_id': 'VARCHAR', 'assessed_on': 'DATE', 'level': 'INTEGER', 'standard': 'VARCHAR'}) a
JOIN months m ON a.assessed_on <= m.last_day AND CAST(a.assessed_on + INTERVAL 12 MONTH AS DATE) >= m.last_day
GROUP BY a.person_id, m.month;

CREATE TEMP TABLE excluded AS
SELECT DISTINCT e.person_id, m.month, e.program, e.choice
FROM read_csv('${DATA}/enrollments.csv', header = true, auto_detect = false,
              columns = {'person_id': 'VARCHAR', 'program': 'VARCHAR', 'institution_id': 'VARCHAR', 'start_on': 'DATE',
                         'end_on': 'DATE', 'choice': 'VARCHAR'}) e
JOIN months m ON e.start_on <= m.last_day AND (e.end_on IS NULL OR e.end_on >= m.first_day)
WHERE e.program = 'gov_home_service' OR (e.program = 'home_bed' AND e.choice = 'home_bed_discount');

CREATE TEMP TABLE card_months AS
WITH base AS (
  SELECT m.month, m.first_day, m.last_day, c.card_no, c.person_id, c.center_id, c.card_type,
         coalesce(n.net_deposit, 0) AS net_deposit, p.id_number, p.death_date, p.hukou = 'rural' AS rural,
         year(m.last_day) - year(p.birth_date)
           - CASE WHEN strftime(m.last_day, '%m-%d') < strftime(p.birth_date, '%m-%d') THEN 1 ELSE 0 END AS age,
         la.level AS assessment,
         row_number() OVER (PARTITION BY p.id_number, m.month ORDER BY c.issued_on, c.card_no) AS card_rank
  FROM cards c
  JOIN months m ON c.issued_on <= m.last_day AND (c.closed_on IS NULL OR c.closed_on >= m.first_day)
  JOIN persons p ON p.person_id = c.person_id
  LEFT JOIN net n ON n.card_no = c.card_no AND n.month = m.month
  LEFT JOIN latest_assessment la ON la.person_id = c.person_id AND la.month = m.month
), judged AS (
  SELECT b.*,
         EXISTS (SELECT 1 FROM excluded x WHERE x.person_id = b.person_id AND x.month = b.month
                 AND (x.program = 'gov_home_service' OR b.card_type = 2)) AS is_excluded,
         b.rural AND b.age >= 60 AS elig1,
         b.rural AND (b.age >= 80 OR (b.age >= 60 AND coalesce(b.assessment >= 2, false))) AS elig2
  FROM base b
), tiered AS (
  SELECT *,
         CASE WHEN death_date IS NOT NULL AND death_date < first_day THEN 'deceased'
              WHEN card_rank > 1 THEN 'duplicate_card'
              WHEN is_excluded THEN 'excluded'
              WHEN card_type >= 2 AND elig2 AND net_deposit >= 200 THEN 'paid2'
              WHEN elig1 AND net_deposit >= 100 THEN 'paid1'
              WHEN (card_type >= 2 AND elig2) OR elig1 THEN 'below_threshold'
              ELSE 'ineligible' END AS verdict
  FROM judged
)
SELECT month, card_no, person_id, center_id, card_type, net_deposit,
       CASE verdict WHEN 'paid2' THEN 2 WHEN 'paid1' THEN 1 END AS tier,
       CAST(CASE verdict WHEN 'paid2' THEN 120 WHEN 'paid1' THEN 50 ELSE 0 END AS DECIMAL(14,2)) AS subsidy,
       CASE WHEN verdict LIKE 'paid%' THEN 'paid' ELSE verdict END AS status
FROM tiered;

CREATE TEMP TABLE consumption_per_card AS
SELECT card_no,
       count(*) FILTER (WHERE kind = 'consumption') AS transactions,
       sum(CASE WHEN kind = 'consumption' THEN amount ELSE 0 END) AS consumption,
       sum(CASE WHEN kind = 'refund' THEN amount ELSE 0 END) AS refunds
FROM read_csv('${DATA}/consumption*.csv', header = true, auto_detect = false,
              columns = {'txn_id': 'VARCHAR', 'card_no': 'VARCHAR', 'kind': 'VARCHAR', 'amount': 'DECIMAL(14,2)',
                         'at': 'TIMESTAMPTZ', 'station_id': 'VARCHAR', 'service': 'VARCHAR', 'ref_txn_id': 'VARCHAR'})
WHERE strftime(make_timestamp(epoch_us("at") + 28800000000), '%Y-%m') <= '2024-02'
GROUP BY card_no;

COPY (SELECT * FROM card_months ORDER BY month, card_no) TO '${OUT}/card_months.csv' (HEADER);

COPY (SELECT center_id, count(DISTINCT card_no) FILTER (WHERE status = 'paid') AS cards_paid,
             sum(subsidy) AS subsidy_total
      FROM card_months GROUP BY center_id ORDER BY center_id) TO '${OUT}/subsidy_by_center.csv' (HEADER);

COPY (SELECT * FROM consumption_per_card ORDER BY card_no) TO '${OUT}/consumption_per_card.csv' (HEADER);
