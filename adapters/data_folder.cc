#include "adapters/data_folder.h"

#include <algorithm>
#include <cstdio>
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

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A name for people that is printable whatever the bytes: invalid UTF-8 bytes as \xHH.
std::string Printable(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    // The UTF-8 character starting here, if one does (at most 4 bytes).
    size_t len = 0;
    for (size_t n = 1; n <= 4 && i + n <= name.size(); ++n) {
      if (IsValidUtf8(name.substr(i, n))) {
        len = n;
        break;
      }
    }
    if (len == 0) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto b = static_cast<unsigned char>(name[i]);
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
      continue;
    }
    out.append(name.substr(i, len));
    i += len - 1;
  }
  return out;
}

std::string JoinColumns(const std::vector<std::string>& columns) {
  std::string out;
  for (const auto& c : columns) out += (out.empty() ? "" : ",") + c;
  return out;
}

// A header cell that was probably meant to be `column`: the same letters once
// case, spaces, quotes and a stray BOM are ignored.
std::string Loosely(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i).starts_with("\xEF\xBB\xBF")) {
      i += 2;
      continue;
    }
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\r') continue;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

// Why a header lacks `missing`, when the header itself shows it.
std::string MissingColumnHint(const std::vector<std::string>& header, const std::string& missing) {
  for (const auto& cell : header) {
    if (cell != missing && Loosely(cell) == missing) {
      return " (found '" + Printable(cell) +
             "': header names must be written exactly, in lowercase, without spaces or quotes around them)";
    }
  }
  if (header.size() == 1) {
    if (header[0].find(';') != std::string::npos) return " (the header is one cell holding ';': cells must be separated by commas, not semicolons)";
    if (header[0].find('\t') != std::string::npos) return " (the header is one cell holding tabs: cells must be separated by commas, not tabs)";
  }
  for (const auto& cell : header) {
    if (cell.find('\r') != std::string::npos) {
      return " (the header holds a bare carriage return: lines must end with LF or CRLF, not CR alone)";
    }
  }
  return "";
}

// The first bytes of a file, to name an encoding that is not UTF-8.
std::string EncodingHint(const std::string& path) {
  unsigned char head[2] = {0, 0};
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "";
  const size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  if (n == 2 && ((head[0] == 0xFF && head[1] == 0xFE) || (head[0] == 0xFE && head[1] == 0xFF))) {
    return " (the file is UTF-16, as office suites write 'Unicode text'; save it as 'CSV UTF-8')";
  }
  return "";
}

}  // namespace

std::string_view RowProblemCode(CsvProblem p) {
  // Reader problems become row codes: encodings and limits get codes of their own
  // (formats.md allows them), broken quoting is a malformed row.
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

std::string RowProblemDetail(const CsvRow& row, const std::vector<std::string>& header) {
  auto column = [&](size_t i) {
    return "column " + std::to_string(i + 1) + (i < header.size() ? " ('" + header[i] + "')" : std::string());
  };
  // With these two problems the reader kept every cell whole (csv_reader.h), so
  // the cell at fault can be named.
  if (row.problem == CsvProblem::kInvalidUtf8) {
    for (size_t i = 0; i < row.cells.size(); ++i) {
      if (!IsValidUtf8(row.cells[i])) {
        return "the cell in " + column(i) +
               " is not valid UTF-8: files must be saved as UTF-8 (was it saved as GBK/ANSI, or does it hold binary data?)";
      }
    }
  }
  if (row.problem == CsvProblem::kFieldTooLong) {
    for (size_t i = 0; i < row.cells.size(); ++i) {
      if (row.cells[i].size() > kMaxFieldBytes) {
        return "the cell in " + column(i) + " is " + std::to_string(row.cells[i].size()) + " bytes long; the limit is " +
               std::to_string(kMaxFieldBytes) + " bytes per cell";
      }
    }
  }
  return std::string(CsvProblemText(row.problem));
}

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
    const bool deposit = StartsEnds(name, "deposits");
    const bool consume = StartsEnds(name, "consumption");
    if ((deposit || consume) && !IsValidUtf8(name)) {
      // Its name would go into exceptions.csv and the manifest, which are UTF-8.
      *error = "data folder '" + dir + "': the file name '" + Printable(name) +
               "' is not UTF-8 (written on a system using GBK?); rename the file and run again";
      return false;
    }
    if (deposit) deposits.push_back(name);
    if (consume) consumption.push_back(name);
    if (deposit || consume) continue;
    // A misnamed input file would be skipped silently; refuse instead.
    const std::string lower = AsciiLower(name);
    bool looks_like_input = StartsEnds(lower, "deposits") || StartsEnds(lower, "consumption");
    for (const auto& f : kRegistryFiles) looks_like_input = looks_like_input || (lower == f.name && name != f.name);
    if (looks_like_input) {
      *error = "data folder '" + dir + "': the file '" + Printable(name) +
               "' looks like an input file but is not named exactly as one (names are lowercase and end in .csv: "
               "centers.csv, deposits*.csv, ...); rename it, or move it out of the folder";
      return false;
    }
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
    const auto& required = RequiredColumns(info.kind);
    if (!reader->Next(&row)) {
      if (!reader->error().empty()) {
        *error = reader->error();
      } else {
        *error = path + ": the file is empty (no header row); expected a header row '" + JoinColumns(required) +
                 "' (a file with no rows still has its header, or may be left out unless it is required)";
      }
      return false;
    }
    if (row.problem != CsvProblem::kNone) {
      *error = path + ":" + std::to_string(row.line) + ": the header cannot be read: " + RowProblemDetail(row, {}) +
               EncodingHint(path) + "; expected '" + JoinColumns(required) + "'";
      return false;
    }
    const std::vector<std::string> header = row.cells;
    std::string missing;
    if (!intake->BeginFile(info.kind, info.file, header, &missing)) {
      *error = path + ": the header has no column '" + missing + "'" + MissingColumnHint(header, missing) +
               "; expected '" + JoinColumns(required) + "' (in any order)";
      return false;
    }
    int64_t rows = 0;
    while (reader->Next(&row)) {
      if (row.problem == CsvProblem::kNone) {
        intake->AddRow(row.line, row.cells);
      } else {
        intake->AddRow(row.line, row.cells, RowProblemCode(row.problem), RowProblemDetail(row, header));
      }
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
