// libFuzzer target: one fuzzed input file fed through the Intake, between the
// fixed files of a small valid data folder, then settled and rendered.
//
// Input: byte 0 picks the file's kind (centres ... consumption); bit 0 of byte
// 1 says whether the rest brings its own header row (otherwise the canonical
// header is put before it); the rest is the file, read by CsvReader as
// data_folder.cc does.
//
// Oracles: never crash, throw (MoneyOverflow, a refusal, aside) or hang; for
// every file rows read = accepted + rejected + deferred; every exception names
// a file and a line of it; every cell of every output CSV is strict UTF-8 and
// never starts like a formula; the manifest renders.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "adapters/csv_reader.h"
#include "adapters/data_folder.h"
#include "batch/outputs.h"
#include "engine/settlement.h"
#include "fuzz/fuzz_util.h"
#include "rules/policy_loader.h"

namespace {

using namespace carecard;

// A small valid folder from the worked example (spec/example/data).
struct FixedFile {
  InputKind kind;
  const char* name;
  const char* text;
};
const FixedFile kFixedFiles[] = {
    {InputKind::kCenters, "centers.csv",
     "center_id,name,district,credit_code,bank_account\n"
     "C01,大村镇居家社区养老服务中心,平度市,12370211729436483J,6222020300001111\n"
     "C02,李哥庄镇居家社区养老服务中心,胶州市,12370211756893485F,6222020300002222\n"},
    {InputKind::kStations, "stations.csv",
     "station_id,center_id,village,name\nC01S01,C01,东庄村,东庄村养老服务站\nC02S01,C02,西河村,西河村养老服务站\n"},
    {InputKind::kPersons, "persons.csv",
     "person_id,id_number,name,birth_date,hukou,village,flags,death_date\n"
     "P01,370285195003100762,张三,1950-03-10,rural,东庄村,,\n"
     "P02,370282194006017055,李四,1940-06-01,rural,东庄村,left_behind,\n"
     "P03,370283195501209469,王五,1955-01-20,rural,东庄村,disabled,\n"
     "P04,370282196402105443,赵六,1964-02-10,rural,东庄村,,\n"},
    {InputKind::kAssessments, "assessments.csv",
     "person_id,assessed_on,level,standard\nP03,2023-08-01,3,GB/T 42195-2022\n"},
    {InputKind::kCards, "cards.csv",
     "card_no,person_id,card_type,center_id,issued_on,closed_on\n"
     "QD0001,P01,1,C01,2022-06-01,\nQD0002,P02,2,C01,2022-06-01,\nQD0003,P03,2,C02,2023-09-01,\n"
     "QD0004,P04,1,C01,2024-01-05,\n"},
    {InputKind::kEnrollments, "enrollments.csv",
     "person_id,program,institution_id,start_on,end_on,choice\nP04,home_bed,I01,2023-06-01,,card_subsidy\n"
     "P04,gov_home_service,I01,2024-02-01,,\n"},
    {InputKind::kDeposits, "deposits-2024-01.csv",
     "txn_id,card_no,kind,amount,at,channel,ref_txn_id\n"
     "D001,QD0001,deposit,100.00,2024-01-08T09:15:00+08:00,cash,\n"
     "D002,QD0002,deposit,200,2024-01-09T10:00:00+08:00,bank,\n"
     "D003,QD0003,deposit,999999999999.99,2024-01-03T08:30:00+08:00,wechat,\n"},
    {InputKind::kConsumption, "consumption-2024-01.csv",
     "txn_id,card_no,kind,amount,at,station_id,service,ref_txn_id\n"
     "X001,QD0001,consumption,35.00,2024-01-15T11:30:00+08:00,C01S01,助餐,\n"
     "X002,QD0003,consumption,80.00,2024-01-26T15:00:00+08:00,C02S01,助洁,\n"},
};
constexpr InputKind kKinds[] = {InputKind::kCenters,  InputKind::kStations,    InputKind::kPersons,
                                InputKind::kAssessments, InputKind::kCards, InputKind::kEnrollments,
                                InputKind::kPlatformBalances, InputKind::kDeposits, InputKind::kConsumption};

const Policy* g_policy = nullptr;

std::string CanonicalHeader(InputKind kind) {
  std::string header;
  for (const std::string& column : RequiredColumns(kind)) header += (header.empty() ? "" : ",") + column;
  return header + "\n";
}

// Feeds one file as LoadDataFolder does. Returns false when the header refuses the run.
bool Feed(Intake& intake, InputKind kind, const std::string& name, std::string text) {
  auto reader = CsvReader::FromStringInChunks(std::move(text), name, 7);
  CsvRow row;
  if (!reader->Next(&row) || row.problem != CsvProblem::kNone) return false;
  std::string missing;
  if (!intake.BeginFile(kind, name, row.cells, &missing)) {
    FUZZ_CHECK(!missing.empty(), "a refused header names its missing column");
    return false;
  }
  const std::vector<std::string> header = row.cells;
  while (reader->Next(&row)) {
    if (row.problem == CsvProblem::kNone) {
      intake.AddRow(row.line, row.cells);
    } else {
      intake.AddRow(row.line, row.cells, RowProblemCode(row.problem), RowProblemDetail(row, header));
    }
  }
  intake.EndFile();
  return true;
}

bool LooksLikeFormula(const std::string& cell) {
  if (cell.empty()) return false;
  const char c = cell[0];
  if (c == '=' || c == '+' || c == '@' || c == '\t' || c == '\r') return true;
  return c == '-' && (cell.size() < 2 || cell[1] < '0' || cell[1] > '9');
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  static const PolicyLoadResult loaded = LoadPolicyFromFile(CARECARD_FUZZ_RULES);
  FUZZ_CHECK(loaded.ok, "cannot load " CARECARD_FUZZ_RULES);
  g_policy = &loaded.policy;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const InputKind kind = kKinds[data[0] % std::size(kKinds)];
  const bool own_header = (data[1] & 1) != 0;
  std::string text(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (!own_header) text = CanonicalHeader(kind) + text;
  const std::string fuzzed_name = kind == InputKind::kDeposits      ? "deposits-0.csv"
                                  : kind == InputKind::kConsumption ? "consumption-0.csv"
                                                                    : InputKindName(kind) + std::string(".csv");

  const PayoutPeriod period = *PayoutPeriod::Parse("2024-B1", 2);
  static const BookState no_book;
  Intake intake(*g_policy, period, no_book);
  bool fuzzed_fed = false;
  for (const FixedFile& fixed : kFixedFiles) {
    if (!fuzzed_fed && static_cast<int>(fixed.kind) >= static_cast<int>(kind)) {
      if (!Feed(intake, kind, fuzzed_name, text)) return 0;  // refused: status 2
      fuzzed_fed = true;
      if (fixed.kind == kind && kind != InputKind::kDeposits && kind != InputKind::kConsumption) continue;
    }
    FUZZ_CHECK(Feed(intake, fixed.kind, fixed.name, fixed.text), fixed.name);
  }
  if (!fuzzed_fed && !Feed(intake, kind, fuzzed_name, text)) return 0;

  RunResult taken;
  try {
    taken = intake.Finish();
  } catch (const MoneyOverflow&) {
    return 0;  // the run is refused with status 2
  } catch (const RefusedError&) {
    return 0;
  }
  for (const FileCounts& c : taken.counts) {
    FUZZ_CHECK(c.read == c.accepted + c.rejected + c.deferred, c.file + ": rows read != accepted + rejected + deferred");
    FUZZ_CHECK(c.accepted >= 0 && c.rejected >= 0 && c.deferred >= 0, c.file + ": a negative count");
  }
  int64_t rejected = 0;
  for (const FileCounts& c : taken.counts) rejected += c.rejected;
  int64_t errors = 0;
  for (const ExceptionRecord& e : taken.settlement.exceptions.Records()) {
    FUZZ_CHECK(!e.file.empty() && e.line >= 2, e.code + ": an exception without its file and line");
    if (e.code != "duplicate_card") errors += e.severity == Severity::kError;
  }
  FUZZ_CHECK(errors == rejected, "every rejected row has exactly one error, and no other row has one");

  MemoryOutputSink sink;
  const std::vector<OutputInfo> infos = RenderSettlementFiles(period, *g_policy, taken, no_book, &sink);
  for (const auto& [name, bytes] : sink.files()) {
    auto reader = CsvReader::FromString(bytes, name);
    CsvRow row;
    while (reader->Next(&row)) {
      FUZZ_CHECK(row.problem == CsvProblem::kNone, name + ": " + std::string(CsvProblemText(row.problem)));
      for (const std::string& cell : row.cells) FUZZ_CHECK(!LooksLikeFormula(cell), name + ": formula cell " + cell);
    }
  }
  ManifestInputs manifest;
  manifest.engine_version = "fuzz";
  manifest.policy = g_policy;
  manifest.rules_file = "rules.yaml";
  manifest.period = period;
  manifest.book_first_period = period.ToString();
  manifest.counts = taken.counts;
  FUZZ_CHECK(!RenderManifest(manifest, infos, taken.settlement).empty(), "an empty manifest");
  return 0;
}
