// Runs bench/duckdb_core.sql over a data folder with DuckDB (the npm package
// @duckdb/node-api, installed into bench/node_modules by bench/run.sh) and
// prints one JSON line: the query time in seconds (from just before the first
// statement to just after the last file is written; the instance is created
// before the clock starts) and a few control figures to compare with carecard.
//
//   node bench/duckdb_run.mjs --data DIR --out DIR [--threads 2]
//
// A benchmark peer only: carecard never loads DuckDB.
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) {
    console.error(`usage: node duckdb_run.mjs --data DIR --out DIR [--threads N]  (missing --${name})`);
    process.exit(1);
  }
  return fallback;
}

const here = dirname(fileURLToPath(import.meta.url));
const data = resolve(arg('data'));
const out = resolve(arg('out'));
const threads = arg('threads', '2');
mkdirSync(out, { recursive: true });

const sql = readFileSync(join(here, 'duckdb_core.sql'), 'utf8')
  .replaceAll('${DATA}', data.replaceAll("'", "''"))
  .replaceAll('${OUT}', out.replaceAll("'", "''"));
// Statements end with ';' at the end of a line; drop comment-only chunks.
const statements = sql
  .split(/;\s*\n/)
  .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
  .filter((s) => s.length > 0);

const instance = await DuckDBInstance.create(':memory:', { threads: String(threads) });
const connection = await instance.connect();

const start = process.hrtime.bigint();
for (const statement of statements) {
  await connection.run(statement);
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;

const check = await connection.runAndReadAll(
  `SELECT count(*), count(*) FILTER (WHERE status = 'paid'), CAST(sum(subsidy) AS VARCHAR) FROM card_months`);
const [cardMonths, paid, subsidy] = check.getRows()[0];
const deposits = (await connection.runAndReadAll('SELECT count(*) FROM deposits')).getRows()[0][0];
console.log(JSON.stringify({
  engine: 'duckdb',
  threads: Number(threads),
  seconds: Number(seconds.toFixed(3)),
  card_months: Number(cardMonths),
  paid: Number(paid),
  subsidy_total: subsidy,
  deposit_rows: Number(deposits),
}));
