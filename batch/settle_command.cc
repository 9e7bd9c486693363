#include "batch/settle_command.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "adapters/csv_reader.h"
#include "adapters/data_folder.h"
#include "batch/book.h"
#include "batch/outputs.h"
#include "engine/intake.h"
#include "engine/settlement.h"

#ifndef CARECARD_VERSION
#define CARECARD_VERSION "0.0.0"
#endif

namespace carecard {
namespace fs = std::filesystem;

std::string EngineVersion() { return CARECARD_VERSION; }

namespace {

// Everything a run computes, up to (not including) writing the book.
struct PreparedRun {
  PolicyLoadResult policy;
  std::string rules_sha256;
  std::optional<PayoutPeriod> period;
  std::vector<BookPeriod> periods;
  BookState book;
  IntakeResult intake;
  std::vector<InputFileInfo> inputs;
  std::optional<std::string> previous_manifest_sha256;
  std::string book_first_period;
};

int LoadPolicy(const std::string& path, Language language, PreparedRun* run, std::ostream& err) {
  run->policy = LoadPolicyFromFile(path, language);
  if (!run->policy.ok) {
    for (const auto& e : run->policy.errors) err << e.ToString() << "\n";
    return kExitRefused;
  }
  std::string bytes, error;
  if (!ReadWholeFile(path, &bytes, &error)) {
    err << error << "\n";
    return kExitRefused;
  }
  run->rules_sha256 = Sha256Hex(bytes);
  return kExitOk;
}

int LoadBook(const Book& book, PreparedRun* run, std::ostream& err) {
  std::string error;
  if (!book.ListPeriods(&run->periods, &error) || !book.ReadState(run->periods, &run->book, &error)) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  for (const auto& bp : run->periods) {
    if (bp.closed && run->book.latest_closed && bp.period == *run->book.latest_closed) {
      run->previous_manifest_sha256 = bp.manifest_sha256;
    }
  }
  return kExitOk;
}

int LoadInputs(const std::string& data_dir, int64_t max_rejects, bool progress, PreparedRun* run, std::ostream& err) {
  Intake intake(run->policy.policy.timezone, run->period->last_month());
  DataFolderOptions options;
  options.max_rejects_per_file = max_rejects;
  if (progress) {
    options.progress = [](const std::string& file, int64_t rows) {
      std::cerr << "\r  reading " << file << ": " << rows << " rows" << std::flush;
    };
  }
  std::string error;
  if (!LoadDataFolder(data_dir, &intake, options, &run->inputs, &error)) {
    if (progress) std::cerr << "\n";
    err << error << "\n";
    return kExitRefused;
  }
  if (progress) std::cerr << "\r" << std::string(60, ' ') << "\r";
  run->intake = intake.Finish();
  return kExitOk;
}

std::string NowUtc() {
  std::time_t now = std::time(nullptr);
  char buffer[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string HostName() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) return "?";
  return host;
}

void PrintSummary(const PayoutPeriod& period, bool closed, const SettlementResult& r, const std::string& where,
                  std::ostream& out) {
  out << "settled " << period.ToString() << (closed ? " (closed)" : " (draft)") << " into " << where << "\n";
  out << "  cards with card-months: " << r.totals.cards << ", card-months: " << r.totals.card_months
      << ", paid: " << r.totals.card_months_paid << "\n";
  out << "  subsidies " << r.totals.subsidies.ToString() << ", adjustments " << r.totals.adjustments.ToString()
      << ", payouts " << r.totals.payouts.ToString() << " to " << r.payouts.size() << " centre(s)";
  if (!r.totals.carried_out.is_zero()) out << ", carried forward " << r.totals.carried_out.ToString();
  out << "\n";
  std::map<std::string, int64_t> by_code;
  for (const auto& e : r.exceptions) ++by_code[e.code];
  if (by_code.empty()) {
    out << "  exceptions: none\n";
  } else {
    out << "  exceptions:";
    for (const auto& [code, n] : by_code) out << " " << code << "=" << n;
    out << "\n";
  }
}

}  // namespace

int RunSettle(const SettleOptions& o, std::ostream& out, std::ostream& err) {
  PreparedRun run;
  if (int rc = LoadPolicy(o.rules_path, o.language, &run, err)) return rc;
  const Policy& policy = run.policy.policy;
  run.period = PayoutPeriod::Parse(o.period, policy.months_per_period);
  if (!run.period) {
    err << "period '" << o.period << "' is not a period of " << policy.months_per_period
        << " month(s) (expected e.g. " << PayoutPeriod::Containing(YearMonth::Of(2024, 1), policy.months_per_period).ToString()
        << ")\n";
    return kExitUsage;
  }
  const PayoutPeriod period = *run.period;
  Book book(o.book_dir, policy.months_per_period);
  std::string holder;
  auto lock = BookLock::TryAcquire(o.book_dir, "pid " + std::to_string(::getpid()) + ", started " + NowUtc() + " on " +
                                                   HostName() + ", settle " + period.ToString(),
                                   &holder);
  if (!lock) {
    err << "book '" << o.book_dir << "' is held by another run (" << holder << "); try again when it has finished\n";
    return kExitClosed;
  }
  book.RemoveLeftovers();
  if (int rc = LoadBook(book, &run, err)) return rc;
  const auto& latest = run.book.latest_closed;
  if (latest && period <= *latest) {
    err << "period " << period.ToString()
        << (period == *latest ? " is closed" : " is before the latest closed period " + latest->ToString())
        << "; a closed period is never rewritten: corrections are posted as adjustments in the open period\n";
    return kExitClosed;
  }
  if (o.close) {
    if (latest && period != latest->Next()) {
      err << "cannot close " << period.ToString() << ": periods close in order and the next to close is "
          << latest->Next().ToString() << "\n";
      return kExitClosed;
    }
    for (const auto& bp : run.periods) {
      if (!bp.closed && bp.period < period) {
        err << "cannot close " << period.ToString() << ": the earlier period " << bp.period.ToString()
            << " is settled as a draft but not closed; close it first\n";
        return kExitClosed;
      }
    }
  }
  run.book_first_period = (run.book.first_closed ? *run.book.first_closed : period).ToString();
  if (int rc = LoadInputs(o.data_dir, o.max_rejects, o.progress, &run, err)) return rc;

  SettlementResult result;
  std::map<std::string, std::string> files;
  try {
    SettlementOptions options;
    options.threads = o.threads;
    result = Settle(policy, period, run.intake, run.book, options);
    files = RenderSettlementFiles(period, run.intake.registry, result);
  } catch (const MoneyOverflow& e) {
    err << "refused: " << e.what() << " (amounts too large to add exactly)\n";
    return kExitRefused;
  } catch (const std::runtime_error& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  }
  ManifestInputs m;
  m.engine_version = EngineVersion();
  m.policy = &policy;
  m.rules_file = fs::path(o.rules_path).filename().string();
  m.rules_sha256 = run.rules_sha256;
  m.period = period;
  m.book_first_period = run.book_first_period;
  m.closed = o.close;
  m.inputs = run.inputs;
  m.counts = run.intake.files;
  m.previous_manifest_sha256 = run.previous_manifest_sha256;
  const std::string manifest = RenderManifest(m, files, result);
  files["manifest.json"] = manifest;
  std::string error;
  if (!book.WritePeriod(period, files, &error)) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  book.AppendRunLog(NowUtc() + " " + HostName() + " pid " + std::to_string(::getpid()) + " settle " + period.ToString() +
                    (o.close ? " --close" : "") + " threads " + std::to_string(o.threads) + " manifest " +
                    Sha256Hex(manifest));
  PrintSummary(period, o.close, result, book.PeriodDir(period), out);
  return kExitOk;
}

int RunExplain(const ExplainOptions& o, std::ostream& out, std::ostream& err) {
  PreparedRun run;
  if (int rc = LoadPolicy(o.rules_path, o.language, &run, err)) return rc;
  const Policy& policy = run.policy.policy;
  auto month = YearMonth::Parse(o.month);
  if (!month) {
    err << "month '" << o.month << "' is not YYYY-MM\n";
    return kExitUsage;
  }
  run.period = PayoutPeriod::Containing(*month, policy.months_per_period);
  Book book(o.book_dir, policy.months_per_period);
  if (int rc = LoadBook(book, &run, err)) return rc;
  // Explain as the month's own period would be settled now: closed periods as the book holds them.
  if (run.book.latest_closed && *run.period <= *run.book.latest_closed) {
    PayoutPeriod after = run.book.latest_closed->Next();
    run.period = after;
  }
  if (int rc = LoadInputs(o.data_dir, 1'000'000'000, false, &run, err)) return rc;
  CardMonthExplanation x = ExplainCardMonth(policy, *run.period, run.intake, run.book, o.card_no, *month);
  if (o.json) {
    nlohmann::ordered_json j;
    j["card_no"] = o.card_no;
    j["month"] = month->ToString();
    j["found"] = x.found;
    if (x.found) {
      j["status"] = CardMonthStatusName(x.result.status);
      j["reason"] = x.result.reason;
      j["net_deposit"] = x.result.net_deposit.ToString();
      j["tier"] = x.result.tier ? nlohmann::ordered_json(x.result.tier) : nlohmann::ordered_json(nullptr);
      j["subsidy"] = x.result.subsidy.ToString();
      j["rule_version"] = x.result.rule_version;
    }
    j["steps"] = x.lines;
    out << j.dump(2) << "\n";
  } else {
    out << "card " << o.card_no << ", month " << month->ToString() << "\n";
    for (const auto& line : x.lines) out << "  " << line << "\n";
    if (x.found) {
      out << "result: " << CardMonthStatusName(x.result.status)
          << (x.result.reason.empty() ? "" : " (" + x.result.reason + ")") << ", net deposit "
          << x.result.net_deposit.ToString() << ", tier " << (x.result.tier ? std::to_string(x.result.tier) : "-")
          << ", subsidy " << x.result.subsidy.ToString() << "\n";
    }
  }
  return x.found ? kExitOk : kExitRefused;
}

int RunVerify(const VerifyOptions&, std::ostream&, std::ostream& err) {
  err << "verify is not implemented yet\n";
  return kExitUsage;
}

}  // namespace carecard
