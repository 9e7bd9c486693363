#include "adapters/data_folder.h"

#include <algorithm>
#include <filesystem>

#include "adapters/csv_reader.h"

namespace carecard {
namespace {

struct FixedFile {
  const char* name;
  InputKind kind;
  bool required;
};
constexpr FixedFile kRegistryFiles[] = {
    {"centers.csv", InputKind::kCenters, true},          {"stations.csv", InputKind::kStations, false},
    {"persons.csv", InputKind::kPersons, true},          {"assessments.csv", InputKind::kAssessments, false},
    {"cards.csv", InputKind::kCards, true},              {"enrollments.csv", InputKind::kEnrollments, false},
    {"platform_balances.csv", InputKind::kPlatformBalances, false},
};

bool StartsEnds(const std::string& name, const std::string& prefix) {
  return name.size() >= prefix.size() + 4 && name.compare(0, prefix.size(), prefix) == 0 &&
         name.compare(name.size() - 4, 4, ".csv") == 0;
}

// Reader problems become row codes: encodings and limits get codes of their own
// (formats.md allows them), broken quoting is a malformed row.
const char* ProblemCode(CsvProblem p) {
  switch (p) {
    case CsvProblem::kNone: return "";
    case CsvProblem::kInvalidUtf8: return "bad_encoding";
    case CsvProblem::kFieldTooLong:
    case CsvProblem::kRowTooLong:
    case CsvProblem::kTooManyColumns: return "too_long";
    case CsvProblem::kUnterminatedQuote:
    case CsvProblem::kBadQuote: return "bad_row";
  }
  return "bad_row";
}

}  // namespace

const char* InputKindName(InputKind kind) {
  switch (kind) {
    case InputKind::kCenters: return "centers";
    case InputKind::kStations: return "stations";
    case InputKind::kPersons: return "persons";
    case InputKind::kAssessments: return "assessments";
    case InputKind::kCards: return "cards";
    case InputKind::kEnrollments: return "enrollments";
    case InputKind::kPlatformBalances: return "platform_balances";
    case InputKind::kDeposits: return "deposits";
    case InputKind::kConsumption: return "consumption";
  }
  return "?";
}

bool ListDataFiles(const std::string& dir, std::vector<InputFileInfo>* files, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    *error = "data folder '" + dir + "' does not exist or is not a folder";
    return false;
  }
  files->clear();
  for (const auto& f : kRegistryFiles) {
    if (fs::is_regular_file(fs::path(dir) / f.name, ec)) {
      files->push_back(InputFileInfo{f.name, f.kind, 0, {}});
    } else if (f.required) {
      *error = "required file '" + (fs::path(dir) / f.name).string() + "' is missing";
      return false;
    }
  }
  std::vector<std::string> deposits, consumption;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().filename().string();
    if (StartsEnds(name, "deposits")) deposits.push_back(name);
    if (StartsEnds(name, "consumption")) consumption.push_back(name);
  }
  if (ec) {
    *error = "cannot list data folder '" + dir + "': " + ec.message();
    return false;
  }
  std::sort(deposits.begin(), deposits.end());
  std::sort(consumption.begin(), consumption.end());
  for (auto& n : deposits) files->push_back(InputFileInfo{n, InputKind::kDeposits, 0, {}});
  for (auto& n : consumption) files->push_back(InputFileInfo{n, InputKind::kConsumption, 0, {}});
  return true;
}

bool LoadDataFolder(const std::string& dir, Intake* intake, const DataFolderOptions& options,
                    std::vector<InputFileInfo>* files, std::string* error) {
  if (!ListDataFiles(dir, files, error)) return false;
  for (auto& info : *files) {
    const std::string path = (std::filesystem::path(dir) / info.file).string();
    if (!Sha256File(path, &info.sha256, &info.bytes, error)) return false;
    auto reader = CsvReader::Open(path, error);
    if (!reader) return false;
    CsvRow row;
    if (!reader->Next(&row)) {
      *error = path + ": the file is empty; expected a header row with " + std::to_string(RequiredColumns(info.kind).size()) +
               " columns starting '" + RequiredColumns(info.kind).front() + "'";
      return false;
    }
    if (row.problem != CsvProblem::kNone) {
      *error = path + ":" + std::to_string(row.line) + ": the header cannot be read: " + std::string(CsvProblemText(row.problem));
      return false;
    }
    std::string missing;
    if (!intake->BeginFile(info.kind, info.file, row.cells, &missing)) {
      *error = path + ": the header has no column '" + missing + "'";
      return false;
    }
    int64_t rows = 0;
    while (reader->Next(&row)) {
      intake->AddRow(row.line, row.cells, ProblemCode(row.problem),
                     row.problem == CsvProblem::kNone ? std::string_view() : CsvProblemText(row.problem));
      if (intake->current_file_rejected() > options.max_rejects_per_file) {
        *error = path + ": more than " + std::to_string(options.max_rejects_per_file) +
                 " rejected rows (--max-rejects); refusing to settle from a file that is mostly unusable";
        return false;
      }
      if (options.progress && (++rows & 0xFFFF) == 0) options.progress(info.file, rows);
    }
    if (!reader->error().empty()) {
      *error = reader->error();
      return false;
    }
    intake->EndFile();
  }
  return true;
}

}  // namespace carecard
