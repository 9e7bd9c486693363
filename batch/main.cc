// carecard: the command line of cli.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "batch/generator.h"
#include "batch/settle_command.h"
#include "batch/signing.h"
#include "engine/settlement.h"
#include "rules/check_report.h"

namespace {

carecard::Language ParseLanguage(const std::string& lang) {
  return lang == "zh" ? carecard::Language::kChinese : carecard::Language::kEnglish;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace carecard;
  CLI::App app{"carecard: settlement of elderly-care consumption card subsidies"};
  app.require_subcommand(1);
  app.set_version_flag("--version", EngineVersion());
  std::string lang = "en";
  app.add_option("--lang", lang, "language of messages: en or zh")->check(CLI::IsMember({"en", "zh"}));

  SettleOptions settle;
  auto* settle_cmd = app.add_subcommand("settle", "settle one payout period into the book");
  settle_cmd->add_option("--data", settle.data_dir, "data folder")->required();
  settle_cmd->add_option("--rules", settle.rules_path, "policy rules file")->required();
  settle_cmd->add_option("--book", settle.book_dir, "book folder")->required();
  settle_cmd->add_option("--period", settle.period, "payout period, e.g. 2024-B1")->required();
  settle_cmd->add_flag("--close", settle.close, "close the period: its files become final");
  settle_cmd->add_option("--threads", settle.threads, "worker threads")->check(CLI::Range(1, kMaxThreads));
  settle_cmd->add_option("--sign-key", settle.sign_key, "sign the manifest with this Ed25519 secret key (carecard keygen)");
  settle_cmd->add_option("--max-rejects", settle.max_rejects, "refuse the run when one file has more rejected rows")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));

  std::string check_rules;
  auto* check_cmd = app.add_subcommand("check", "validate a rules file");
  check_cmd->add_option("--rules", check_rules, "policy rules file")->required();

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
  if (*settle_cmd) {
    settle.language = language;
    settle.progress = ::isatty(2) != 0;
    return RunSettle(settle, std::cout, std::cerr);
  }
  if (*check_cmd) return RunCheckCommand(check_rules, language, std::cout, std::cerr);
  if (*explain_cmd) {
    explain.language = language;
    return RunExplain(explain, std::cout, std::cerr);
  }
  if (*verify_cmd) return RunVerify(verify, std::cout, std::cerr);
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
