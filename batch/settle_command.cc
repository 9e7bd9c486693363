#include "batch/settle_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "adapters/csv_reader.h"
#include "adapters/data_folder.h"
#include "batch/book.h"
#include "batch/outputs.h"
#include "batch/signing.h"
#include "engine/intake.h"
#include "engine/settlement.h"
#include "rules/explain_render.h"

#ifndef CARECARD_VERSION
#define CARECARD_VERSION "0.0.0"
#endif

namespace carecard {
namespace fs = std::filesystem;

#ifndef CARECARD_BUILD
#define CARECARD_BUILD "unknown"
#endif

std::string EngineVersion() { return CARECARD_VERSION; }
std::string EngineBuild() { return CARECARD_BUILD; }

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

namespace {

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

int LoadInputs(const std::string& data_dir, int64_t max_rejects, bool progress, PreparedRun* run, std::ostream& err,
               int threads = 1) {
  Intake intake(run->policy.policy.timezone, run->period->last_month());
  DataFolderOptions options;
  options.max_rejects_per_file = max_rejects;
  options.threads = threads;
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

}  // namespace

// Settles the prepared run and renders every file of the period, manifest included.
int ComputeFiles(const std::string& rules_path, int threads, bool close, PreparedRun* run, SettlementResult* result,
                 std::map<std::string, std::string>* files, std::ostream& err) {
  const Policy& policy = run->policy.policy;
  const PayoutPeriod period = *run->period;
  run->book_first_period = (run->book.first_closed ? *run->book.first_closed : period).ToString();
  try {
    SettlementOptions options;
    options.threads = threads;
    *result = Settle(policy, period, run->intake, run->book, options);
    // The ledger is not needed to render the files: give its memory back before they are built.
    std::vector<Transaction>().swap(run->intake.registry.transactions);
    run->intake.registry.deposit_ids = TxnIdTable();
    run->intake.registry.consumption_ids = TxnIdTable();
    *files = RenderSettlementFiles(period, run->intake.registry, *result, threads);
  } catch (const MoneyOverflow& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  } catch (const std::runtime_error& e) {
    err << "refused: " << e.what() << "\n";
    return kExitRefused;
  }
  ManifestInputs m;
  m.engine_version = EngineVersion();
  m.engine_build = EngineBuild();
  m.policy = &policy;
  m.rules_file = fs::path(rules_path).filename().string();
  m.rules_sha256 = run->rules_sha256;
  m.period = period;
  m.book_first_period = run->book_first_period;
  m.closed = close;
  m.inputs = run->inputs;
  m.counts = run->intake.files;
  m.previous_manifest_sha256 = run->previous_manifest_sha256;
  try {
    (*files)["manifest.json"] = RenderManifest(m, *files, *result);
  } catch (const nlohmann::json::exception& e) {
    // Only text that is not UTF-8 (a rules file's name, say) can make the manifest fail.
    err << "refused: the manifest cannot be written: " << e.what() << "\n";
    return kExitRefused;
  }
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

int CheckPeriodOrder(const PayoutPeriod& period, bool close, const PreparedRun& run, std::ostream& err) {
  const auto& latest = run.book.latest_closed;
  if (latest && period <= *latest) {
    err << "period " << period.ToString()
        << (period == *latest ? " is closed" : " is before the latest closed period " + latest->ToString())
        << "; a closed period is never rewritten: corrections are posted as adjustments in the open period\n";
    return kExitClosed;
  }
  if (close) {
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
  return kExitOk;
}

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
  // A refused first run leaves no book behind: the folder made only to hold the lock goes again.
  std::error_code exists_error;
  const bool book_existed = fs::exists(o.book_dir, exists_error);
  struct RemoveNewEmptyBook {
    const std::string& dir;
    bool active;
    ~RemoveNewEmptyBook() {
      if (!active) return;
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().filename() != ".lock") return;
      }
      fs::remove_all(dir, ec);
    }
  } remove_new_empty_book{o.book_dir, !book_existed};
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
  if (int rc = CheckPeriodOrder(period, o.close, run, err)) return rc;
  // CARECARD_TIMINGS=1 prints how long each phase took to stderr (benchmarks); never into a file.
  const bool timings = std::getenv("CARECARD_TIMINGS") != nullptr;
  auto phase_start = std::chrono::steady_clock::now();
  auto phase = [&](const char* name) {
    if (!timings) return;
    const auto now = std::chrono::steady_clock::now();
    std::cerr << "timing " << name << ": "
              << std::chrono::duration_cast<std::chrono::milliseconds>(now - phase_start).count() << " ms\n";
    phase_start = now;
  };
  if (int rc = LoadInputs(o.data_dir, o.max_rejects, o.progress, &run, err, o.threads)) return rc;
  phase("read inputs");
  SettlementResult result;
  std::map<std::string, std::string> files;
  if (int rc = ComputeFiles(o.rules_path, o.threads, o.close, &run, &result, &files, err)) return rc;
  phase("settle and render");
  const std::string manifest = files["manifest.json"];
  if (!o.sign_key.empty()) {
    std::string signature, error;
    if (!SignMessage(o.sign_key, manifest, &signature, &error)) {
      err << "--sign-key: " << error << "\n";
      return kExitRefused;
    }
    files["manifest.json.sig"] = signature + "\n";
  }
  std::string error;
  const bool written = book.WritePeriod(period, files, &error);
  phase("write the book");
  if (!written) {
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
  // A month before the book's first period is never settled in this book (semantics.md §7).
  const bool before_book = run.book.first_closed && *month < run.book.first_closed->first_month();
  std::string before_book_note;
  if (before_book) {
    const std::string first = run.book.first_closed->ToString();
    before_book_note = o.language == Language::kChinese
                           ? "注意:" + month->ToString() + " 早于本账簿的第一个结算期 " + first +
                                 ",本账簿不结算该月;以下为按现行规则的测算,不产生补贴或调整。"
                           : "note: " + month->ToString() + " is before the book's first period " + first +
                                 ": this book never settles it; what follows is what the rules would give, with no "
                                 "subsidy paid or adjusted";
  }
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
    j["language"] = o.language == Language::kChinese ? "zh" : "en";
    nlohmann::ordered_json steps = nlohmann::ordered_json::array();
    for (const auto& step : x.steps) {
      nlohmann::ordered_json s;
      s["kind"] = ExplainStepKindName(step.kind);
      s["args"] = step.args;
      s["text"] = RenderExplainStep(step, o.language);
      steps.push_back(std::move(s));
    }
    j["steps"] = std::move(steps);
    j["settled_in_book"] = !before_book;
    if (before_book) j["note"] = before_book_note;
    out << j.dump(2) << "\n";
  } else {
    out << RenderExplainHeader(o.card_no, month->ToString(), o.language) << "\n";
    if (before_book) out << "  " << before_book_note << "\n";
    for (const auto& step : x.steps) out << "  " << RenderExplainStep(step, o.language) << "\n";
    if (x.found) out << RenderExplainResult(x.result, o.language) << "\n";
  }
  return x.found ? kExitOk : kExitRefused;
}

namespace {

// The first line (1-based) on which two texts differ.
int64_t FirstDifferentLine(const std::string& a, const std::string& b) {
  int64_t line = 1;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i] != b[i]) return line;
    if (a[i] == '\n') ++line;
  }
  return line;
}

// Walks the chain of closed manifests up to and including `through`: each
// manifest names its predecessor's SHA-256, and each names its files' hashes.
bool VerifyChain(const Book& book, const std::vector<BookPeriod>& periods, const PayoutPeriod& through, std::ostream& out,
                 std::ostream& err) {
  std::optional<std::string> previous_sha;
  for (const auto& bp : periods) {
    if (through < bp.period) break;
    if (!bp.closed) continue;
    const std::string dir = book.PeriodDir(bp.period);
    std::string bytes, error;
    if (!ReadWholeFile(dir + "/manifest.json", &bytes, &error)) {
      err << error << "\n";
      return false;
    }
    auto manifest = nlohmann::json::parse(bytes, nullptr, false);
    const auto& link = manifest["previous_manifest_sha256"];
    std::optional<std::string> stated;
    if (link.is_string()) stated = link.get<std::string>();
    if (stated != previous_sha) {
      err << "broken chain: " << bp.period.ToString() << "/manifest.json names previous manifest "
          << (stated ? *stated : "none") << ", but the previous closed manifest's SHA-256 is "
          << (previous_sha ? *previous_sha : "none") << "\n";
      return false;
    }
    for (const auto& output : manifest["outputs"]) {
      const std::string name = output.value("file", "");
      std::string file_bytes;
      if (!ReadWholeFile(dir + "/" + name, &file_bytes, &error)) {
        err << bp.period.ToString() << ": " << error << "\n";
        return false;
      }
      if (Sha256Hex(file_bytes) != output.value("sha256", "")) {
        err << "changed: " << bp.period.ToString() << "/" << name << " does not match the SHA-256 in its manifest\n";
        return false;
      }
    }
    previous_sha = Sha256Hex(bytes);
    out << "chain ok: " << bp.period.ToString() << " " << *previous_sha << "\n";
  }
  return true;
}

}  // namespace

int RunVerify(const VerifyOptions& o, std::ostream& out, std::ostream& err) {
  PreparedRun run;
  if (int rc = LoadPolicy(o.rules_path, Language::kEnglish, &run, err)) return rc;
  const Policy& policy = run.policy.policy;
  run.period = PayoutPeriod::Parse(o.period, policy.months_per_period);
  if (!run.period) {
    err << "period '" << o.period << "' is not a period of " << policy.months_per_period << " month(s)\n";
    return kExitUsage;
  }
  const PayoutPeriod period = *run.period;
  Book book(o.book_dir, policy.months_per_period);
  std::vector<BookPeriod> all;
  std::string error;
  if (!book.ListPeriods(&all, &error)) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  auto target = std::find_if(all.begin(), all.end(), [&](const BookPeriod& bp) { return bp.period == period; });
  if (target == all.end()) {
    err << "the book has no period " << period.ToString() << "\n";
    return kExitRefused;
  }
  if (!VerifyChain(book, all, period, out, err)) return kExitDifferent;
  // The book as it stood before the period.
  std::vector<BookPeriod> before;
  for (const auto& bp : all) {
    if (bp.period < period) before.push_back(bp);
  }
  if (!book.ReadState(before, &run.book, &error)) {
    err << "book: " << error << "\n";
    return kExitRefused;
  }
  run.periods = before;
  for (const auto& bp : before) {
    if (bp.closed && run.book.latest_closed && bp.period == *run.book.latest_closed) run.previous_manifest_sha256 = bp.manifest_sha256;
  }
  if (int rc = LoadInputs(o.data_dir, 1'000'000'000, false, &run, err)) return rc;
  SettlementResult result;
  std::map<std::string, std::string> files;
  if (int rc = ComputeFiles(o.rules_path, 1, target->closed, &run, &result, &files, err)) return rc;
  for (const auto& [name, bytes] : files) {
    std::string stored;
    const std::string path = book.PeriodDir(period) + "/" + name;
    if (!ReadWholeFile(path, &stored, &error)) {
      err << "missing: " << path << "\n";
      return kExitDifferent;
    }
    if (stored != bytes) {
      err << "differs: " << period.ToString() << "/" << name << " at line " << FirstDifferentLine(stored, bytes)
          << " (recomputed from the inputs and the book before " << period.ToString() << ")\n";
      return kExitDifferent;
    }
  }
  if (!o.pubkey.empty()) {
    std::string signature;
    const std::string dir = book.PeriodDir(period);
    if (!ReadWholeFile(dir + "/manifest.json.sig", &signature, &error)) {
      err << "unsigned: " << period.ToString() << " has no manifest.json.sig to check with --pubkey\n";
      return kExitDifferent;
    }
    if (!VerifySignature(o.pubkey, files["manifest.json"], signature, &error)) {
      err << "bad signature: " << period.ToString() << "/manifest.json.sig: " << error << "\n";
      return kExitDifferent;
    }
    out << "signature ok: " << period.ToString() << "/manifest.json.sig\n";
  }
  out << "verified " << period.ToString() << (target->closed ? " (closed)" : " (draft)") << ": " << files.size()
      << " files byte-identical to a fresh computation; manifest " << Sha256Hex(files["manifest.json"]) << "\n";
  return kExitOk;
}

}  // namespace carecard
