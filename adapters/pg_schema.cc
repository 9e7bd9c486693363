#include "adapters/pg_schema.h"

namespace carecard {
namespace {

// Version 1: inputs, the book, import records, and the closed-period guard.
//
// Input cells are text exactly as written (formats.md: "cells are read exactly
// as written"); NULL only where the reader could not hand over the row's cells
// (problem_code set, or a row whose column count differs from its header:
// raw_cells then holds what was read). The typed columns *_value are computed
// only where the text is valid, for SQL reporting; the engine never reads them.
constexpr const char* kMigration1 = R"SQL(
CREATE TABLE input_files (
  source_file  text PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('centers','stations','persons','assessments','cards',
                                             'enrollments','platform_balances','deposits','consumption')),
  header_width integer NOT NULL CHECK (header_width > 0),
  bytes        bigint NOT NULL,
  sha256       text NOT NULL,
  rows         bigint NOT NULL,
  exact        boolean NOT NULL,   -- the stored rows of the file are exactly the last delivery's
  import_id    bigint NOT NULL
);

CREATE TABLE centers (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  center_id text, name text, district text, credit_code text, bank_account text);
CREATE TABLE stations (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  station_id text, center_id text, village text, name text);
CREATE TABLE persons (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  person_id text, id_number text, name text, birth_date text, hukou text, village text, flags text,
  death_date text);
CREATE TABLE assessments (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  person_id text, assessed_on text, level text, standard text);
CREATE TABLE cards (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  card_no text, person_id text, card_type text, center_id text, issued_on text, closed_on text);
CREATE TABLE enrollments (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  person_id text, program text, institution_id text, start_on text, end_on text, choice text);
CREATE TABLE platform_balances (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  card_no text, as_of text, balance text,
  balance_value numeric(14,2) GENERATED ALWAYS AS (
    CASE WHEN balance ~ '^-?[0-9]{1,12}(\.[0-9]{1,2})?$' THEN balance::numeric(14,2) END) STORED);
CREATE TABLE deposits (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  row_key text NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  txn_id text, card_no text, kind text, amount text, at text, channel text, ref_txn_id text,
  amount_value numeric(14,2) GENERATED ALWAYS AS (
    CASE WHEN amount ~ '^[0-9]{1,12}(\.[0-9]{1,2})?$' THEN amount::numeric(14,2) END) STORED,
  UNIQUE (source_file, row_key));
CREATE TABLE consumption (
  id bigserial PRIMARY KEY, source_file text NOT NULL, line bigint NOT NULL,
  row_key text NOT NULL,
  problem_code text, problem_detail text, raw_cells text[],
  txn_id text, card_no text, kind text, amount text, at text, station_id text, service text, ref_txn_id text,
  amount_value numeric(14,2) GENERATED ALWAYS AS (
    CASE WHEN amount ~ '^[0-9]{1,12}(\.[0-9]{1,2})?$' THEN amount::numeric(14,2) END) STORED,
  UNIQUE (source_file, row_key));
CREATE INDEX deposits_by_file ON deposits (source_file, line);
CREATE INDEX consumption_by_file ON consumption (source_file, line);
CREATE INDEX deposits_by_txn ON deposits (txn_id);
CREATE INDEX consumption_by_txn ON consumption (txn_id);

-- A timestamp cell as timestamptz, or NULL where it is not one.
CREATE FUNCTION carecard_try_timestamptz(t text) RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF t !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$' THEN
    RETURN NULL;
  END IF;
  RETURN t::timestamptz;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;

-- Typed views of the transaction rows the reader could read, for reporting.
-- The engine does not read them: a settlement replays the text cells.
CREATE VIEW deposits_typed AS
  SELECT source_file, line, txn_id, card_no, kind, amount_value AS amount,
         carecard_try_timestamptz(at) AS at, channel, ref_txn_id
  FROM deposits WHERE problem_code IS NULL AND raw_cells IS NULL;
CREATE VIEW consumption_typed AS
  SELECT source_file, line, txn_id, card_no, kind, amount_value AS amount,
         carecard_try_timestamptz(at) AS at, station_id, service, ref_txn_id
  FROM consumption WHERE problem_code IS NULL AND raw_cells IS NULL;

CREATE TABLE imports (
  import_id   bigserial PRIMARY KEY,
  data_dir    text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  rows_added  bigint NOT NULL DEFAULT 0,
  summary     text NOT NULL DEFAULT ''
);
-- What the store did with delivered rows beyond adding them: a transaction row
-- delivered again with different content (the stored row is kept), a stored
-- row missing from a re-delivered file (kept), a row moved to another line.
CREATE TABLE import_log (
  import_id bigint NOT NULL REFERENCES imports,
  code      text NOT NULL,
  file      text NOT NULL,
  line      bigint NOT NULL,
  txn_id    text,
  detail    text NOT NULL
);
-- The rows the engine rejects or warns about, as `settle --data` would, for the
-- store's content after the import (all periods: nothing deferred).
CREATE TABLE import_rejections (
  import_id bigint NOT NULL REFERENCES imports,
  code      text NOT NULL,
  severity  text NOT NULL CHECK (severity IN ('error','warning')),
  file      text NOT NULL,
  line      bigint NOT NULL,
  txn_id    text, card_no text, person_id text, month text,
  detail    text NOT NULL
);
CREATE INDEX import_rejections_by_import ON import_rejections (import_id, code);

-- The book.
CREATE TABLE periods (
  period                   text PRIMARY KEY,
  state                    text NOT NULL CHECK (state IN ('draft','closed')),
  manifest                 text NOT NULL,
  manifest_json            jsonb GENERATED ALWAYS AS (manifest::jsonb) STORED,
  manifest_sha256          text NOT NULL,
  previous_manifest_sha256 text,
  settled_at               timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE card_month_results (
  period text NOT NULL REFERENCES periods,
  month text NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
  card_no text NOT NULL, person_id text NOT NULL, center_id text NOT NULL,
  card_type smallint NOT NULL,
  net_deposit numeric(19,2) NOT NULL,
  tier smallint,
  subsidy numeric(19,2) NOT NULL,
  status text NOT NULL CHECK (status IN ('paid','below_threshold','ineligible','excluded','duplicate_card','deceased')),
  reason text, rule_version text,
  PRIMARY KEY (period, month, card_no));
CREATE INDEX card_month_results_by_card ON card_month_results (card_no, month);
CREATE TABLE adjustments (
  period text NOT NULL REFERENCES periods,
  original_month text NOT NULL CHECK (original_month ~ '^[0-9]{4}-[0-9]{2}$'),
  card_no text NOT NULL, center_id text NOT NULL,
  recorded_subsidy numeric(19,2) NOT NULL, recomputed_subsidy numeric(19,2) NOT NULL,
  amount numeric(19,2) NOT NULL,
  reason text,
  PRIMARY KEY (period, original_month, card_no));
CREATE TABLE payouts (
  period text NOT NULL REFERENCES periods,
  center_id text NOT NULL, center_name text, credit_code text, bank_account text,
  cards_paid bigint NOT NULL,
  subsidy_total numeric(19,2) NOT NULL, adjustment_total numeric(19,2) NOT NULL,
  carried_in numeric(19,2) NOT NULL, payout numeric(19,2) NOT NULL CHECK (payout >= 0),
  carried_out numeric(19,2) NOT NULL,
  PRIMARY KEY (period, center_id));
CREATE TABLE statements (
  period text NOT NULL REFERENCES periods,
  card_no text NOT NULL, center_id text NOT NULL,
  opening numeric(19,2) NOT NULL, deposits numeric(19,2) NOT NULL, reversals numeric(19,2) NOT NULL,
  subsidies numeric(19,2) NOT NULL, consumption numeric(19,2) NOT NULL, refunds numeric(19,2) NOT NULL,
  closing numeric(19,2) NOT NULL,
  CHECK (opening + deposits - reversals + subsidies - consumption + refunds = closing),
  PRIMARY KEY (period, card_no));
CREATE TABLE consumption_by_center (
  period text NOT NULL REFERENCES periods,
  serving_center_id text NOT NULL, home_center_id text NOT NULL, service text NOT NULL,
  transactions bigint NOT NULL, amount numeric(19,2) NOT NULL,
  PRIMARY KEY (period, serving_center_id, home_center_id, service));
CREATE TABLE homebed_exclusions (
  period text NOT NULL REFERENCES periods,
  row_no integer NOT NULL,
  month text NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
  institution_id text, person_id text, reason text,
  PRIMARY KEY (period, row_no));
CREATE TABLE exceptions (
  period text NOT NULL REFERENCES periods,
  row_no integer NOT NULL,
  code text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('error','warning')),
  file text, line bigint, txn_id text, card_no text, person_id text, month text, detail text,
  PRIMARY KEY (period, row_no));
CREATE TABLE period_files (
  period text NOT NULL REFERENCES periods,
  name   text NOT NULL,
  bytes  bytea NOT NULL,
  sha256 text NOT NULL,
  PRIMARY KEY (period, name));

-- Closed periods are final, whoever connects (semantics.md §7).
CREATE FUNCTION carecard_guard_closed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND
     EXISTS (SELECT 1 FROM periods WHERE period = OLD.period AND state = 'closed') THEN
    RAISE EXCEPTION 'period % is closed: its rows in % cannot be changed or deleted', OLD.period, TG_TABLE_NAME
      USING ERRCODE = 'restrict_violation',
            HINT = 'corrections are posted as adjustments in the next open period';
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    IF EXISTS (SELECT 1 FROM periods WHERE period = NEW.period AND state = 'closed') THEN
      RAISE EXCEPTION 'period % is closed: no rows can be added to %', NEW.period, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
  END IF;
  RETURN OLD;
END $$;

CREATE FUNCTION carecard_guard_closed_period() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.state = 'closed' THEN
    RAISE EXCEPTION 'period % is closed: it cannot be changed or deleted', OLD.period
      USING ERRCODE = 'restrict_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION carecard_guard_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM periods WHERE state = 'closed') THEN
    RAISE EXCEPTION 'the book has closed periods: % cannot be truncated', TG_TABLE_NAME
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER periods_closed_guard BEFORE UPDATE OR DELETE ON periods
  FOR EACH ROW EXECUTE FUNCTION carecard_guard_closed_period();
CREATE TRIGGER periods_truncate_guard BEFORE TRUNCATE ON periods
  FOR EACH STATEMENT EXECUTE FUNCTION carecard_guard_truncate();

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['card_month_results','adjustments','payouts','statements','consumption_by_center',
                           'homebed_exclusions','exceptions','period_files'] LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE ON %I
                      FOR EACH ROW EXECUTE FUNCTION carecard_guard_closed_rows()', t || '_closed_guard', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
                      FOR EACH STATEMENT EXECUTE FUNCTION carecard_guard_truncate()', t || '_truncate_guard', t);
  END LOOP;
END $$;
)SQL";

}  // namespace

const std::vector<PgMigration>& PgMigrations() {
  static const std::vector<PgMigration> migrations = {
      {1, "inputs_book_and_closed_period_guard", kMigration1},
  };
  return migrations;
}

int PgSchemaVersion() { return PgMigrations().back().version; }

}  // namespace carecard
