// carecard: the command line of cli.md.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "batch/db_command.h"
#include "batch/generator.h"
#include "batch/settle_command.h"
#include "batch/signing.h"
#include "engine/settlement.h"
#include "rules/check_report.h"
#include "rules/policy_cases.h"

namespace {

carecard::Language ParseLanguage(const std::string& lang) {
  return lang == "zh" ? carecard::Language::kChinese : carecard::Language::kEnglish;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace carecard;
  // Memory is bounded by what a run holds. Blocks of up to 8 MiB (read blocks,
  // spill and output buffers: each phase frees some and allocates others of
  // the same sizes) come from the heap, whose freed blocks are reused without
  // touching the kernel; mapped and unmapped instead, every one of their
  // pages was faulted in again, 40 % of a run's page faults (bench/README.md).
  // Larger blocks (registry tables, card-month slots) are mapped and given
  // back whole; at most 16 MiB of free heap top is kept; threads share two
  // arenas instead of keeping one each. (Set here, these override GLIBC_TUNABLES.)
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
  mallopt(M_ARENA_MAX, 2);
  CLI::App app{"carecard: settlement of elderly-care consumption card subsidies"};
  app.require_subcommand(1);
  app.fallthrough();  // --lang may come before or after the subcommand
  app.set_version_flag("--version", EngineVersion());
  std::string lang = "en";
  app.add_option("--lang", lang, "language of messages: en or zh")->check(CLI::IsMember({"en", "zh"}));

  SettleOptions settle;
  auto* settle_cmd = app.add_subcommand("settle", "settle one payout period into the book");
  auto* settle_data = settle_cmd->add_option("--data", settle.data_dir, "data folder (file book form)");
  settle_cmd->add_option("--rules", settle.rules_path, "policy rules file")->required();
  auto* settle_book = settle_cmd->add_option("--book", settle.book_dir, "book folder (file book form)");
  std::string settle_db, settle_out;
  auto* settle_db_opt = settle_cmd->add_option(
      "--db", settle_db, "PostgreSQL URL or key=value string; empty: PGSERVICE/PG* variables and ~/.pgpass");
  auto* settle_out_opt = settle_cmd->add_option("--out", settle_out, "with --db: also write the period's files to OUT/PERIOD/");
  settle_db_opt->excludes(settle_data)->excludes(settle_book);
  settle_out_opt->needs(settle_db_opt);
  settle_cmd->add_option("--period", settle.period, "payout period, e.g. 2024-B1")->required();
  settle_cmd->add_flag("--close", settle.close, "close the period: its files become final");
  const int default_threads = DefaultThreadCount(UsableCpus());
  settle.threads = default_threads;
  settle_cmd->add_option("--threads", settle.threads, "worker threads; default: the CPUs this process may use, at most 8")
      ->check(CLI::Range(1, kMaxThreads))
      ->capture_default_str();
  settle_cmd->add_option("--temp-dir", settle.temp_dir,
                         "folder for the run's spilled records (an unnamed temporary file); default: the book folder");
  settle_cmd->add_option("--sign-key", settle.sign_key, "sign the manifest with this Ed25519 secret key (carecard keygen)");
  settle_cmd->add_option("--max-rejects", settle.max_rejects, "refuse the run when one file has more rejected rows")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));

  DbMigrateOptions migrate;
  auto* db_cmd = app.add_subcommand("db", "PostgreSQL store administration");
  db_cmd->require_subcommand(1);
  auto* migrate_cmd = db_cmd->add_subcommand("migrate", "apply the schema migrations the database lacks");
  migrate_cmd->add_option("--db", migrate.db, "PostgreSQL URL or key=value string; empty: PG* variables");

  ImportOptions import;
  auto* import_cmd = app.add_subcommand("import", "load a data folder into PostgreSQL");
  import_cmd->add_option("--db", import.db, "PostgreSQL URL or key=value string; empty: PG* variables");
  import_cmd->add_option("--data", import.data_dir, "data folder")->required();
  import_cmd->add_option("--rules", import.rules_path, "policy whose time zone dates the recorded verdicts");

  std::string check_rules;
  auto* check_cmd = app.add_subcommand("check", "validate a rules file");
  check_cmd->add_option("--rules", check_rules, "policy rules file")->required();

  std::string test_rules, test_cases;
  auto* test_cmd = app.add_subcommand("test", "run a policy's cases file (docs/policy-staff.md)");
  test_cmd->add_option("--rules", test_rules, "policy rules file")->required();
  test_cmd->add_option("--cases", test_cases, "cases file, e.g. rules/qingdao-2022.cases.yaml")->required();

  ExplainOptions explain;
  auto* explain_cmd = app.add_subcommand("explain", "print the facts and rules behind one card-month");
  explain_cmd->add_option("--data", explain.data_dir)->required();
  explain_cmd->add_option("--rules", explain.rules_path)->required();
  explain_cmd->add_option("--book", explain.book_dir)->required();
  explain_cmd->add_option("--card", explain.card_no)->required();
  explain_cmd->add_option("--month", explain.month)->required();
  explain_cmd->add_flag("--json", explain.json, "machine-readable output");

  VerifyOptions verify;
  auto* verify_cmd = app.add_subcommand("verify", "recompute a closed period and prove it unchanged");
  verify_cmd->add_option("--data", verify.data_dir)->required();
  verify_cmd->add_option("--rules", verify.rules_path)->required();
  verify_cmd->add_option("--book", verify.book_dir)->required();
  verify_cmd->add_option("--period", verify.period)->required();
  verify_cmd->add_option("--pubkey", verify.pubkey, "check the manifest's signature with this public key");
  verify.threads = default_threads;
  verify_cmd->add_option("--threads", verify.threads, "worker threads; default: the CPUs this process may use, at most 8")
      ->check(CLI::Range(1, kMaxThreads))
      ->capture_default_str();

  std::string keygen_out;
  auto* keygen_cmd = app.add_subcommand("keygen", "make an Ed25519 key pair for signing manifests");
  keygen_cmd->add_option("--out", keygen_out, "writes OUT.key (secret, 0600) and OUT.pub")->required();

  GenOptions gen;
  std::string gen_months = "2024-01:2024-06";
  auto* gen_cmd = app.add_subcommand("gen", "write a synthetic data folder");
  gen_cmd->add_option("--out", gen.out_dir)->required();
  gen_cmd->add_option("--cards", gen.cards)->required()->check(CLI::Range(int64_t{1}, int64_t{50'000'000}));
  gen_cmd->add_option("--months", gen_months, "first:last month, e.g. 2024-01:2024-06");
  gen_cmd->add_option("--seed", gen.seed);
  gen_cmd->add_option("--bad-rows", gen.bad_row_share, "share of deliberately bad rows, 0..0.5")->check(CLI::Range(0.0, 0.5));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  const Language language = ParseLanguage(lang);
  if (*settle_cmd && settle_db_opt->count() > 0) {
    DbSettleOptions db_settle;
    db_settle.db = settle_db;
    db_settle.rules_path = settle.rules_path;
    db_settle.period = settle.period;
    db_settle.close = settle.close;
    db_settle.threads = settle.threads;
    db_settle.max_rejects = settle.max_rejects;
    db_settle.out_dir = settle_out;
    db_settle.language = language;
    return RunDbSettle(db_settle, std::cout, std::cerr);
  }
  if (*settle_cmd && (settle_data->count() == 0 || settle_book->count() == 0)) {
    std::cerr << "settle needs --data DIR and --book DIR, or --db URL (cli.md)\n";
    return kExitUsage;
  }
  if (*migrate_cmd) return RunDbMigrate(migrate, std::cout, std::cerr);
  if (*import_cmd) return RunImport(import, std::cout, std::cerr);
  if (*settle_cmd) {
    settle.language = language;
    settle.progress = ::isatty(2) != 0;
    settle.tuning = RunTuning::FromEnvironment();
    return RunSettle(settle, std::cout, std::cerr);
  }
  if (*check_cmd) return RunCheckCommand(check_rules, language, std::cout, std::cerr);
  if (*test_cmd) return RunPolicyCasesCommand(test_rules, test_cases, language, std::cout, std::cerr);
  if (*explain_cmd) {
    explain.language = language;
    return RunExplain(explain, std::cout, std::cerr);
  }
  if (*verify_cmd) {
    verify.tuning = RunTuning::FromEnvironment();
    return RunVerify(verify, std::cout, std::cerr);
  }
  if (*keygen_cmd) {
    std::string error;
    if (!GenerateKeyPair(keygen_out, &error)) {
      std::cerr << error << "\n";
      return kExitRefused;
    }
    std::cout << "wrote " << keygen_out << ".key (keep it secret) and " << keygen_out << ".pub\n";
    return kExitOk;
  }
  if (*gen_cmd) {
    auto colon = gen_months.find(':');
    auto first = YearMonth::Parse(gen_months.substr(0, colon));
    auto last = colon == std::string::npos ? first : YearMonth::Parse(gen_months.substr(colon + 1));
    if (!first || !last || *last < *first) {
      std::cerr << "--months '" << gen_months << "' is not FIRST:LAST, e.g. 2024-01:2024-06\n";
      return kExitUsage;
    }
    gen.first_month = *first;
    gen.last_month = *last;
    GenSummary summary;
    std::string error;
    if (!GenerateDataFolder(gen, &summary, &error)) {
      std::cerr << error << "\n";
      return kExitRefused;
    }
    std::cout << "wrote " << gen.out_dir << ": " << summary.persons << " persons, " << summary.cards << " cards, "
              << summary.deposit_rows << " deposit rows, " << summary.consumption_rows << " consumption rows, "
              << summary.bad_rows << " deliberately bad rows\n";
    return kExitOk;
  }
  return kExitUsage;
}
