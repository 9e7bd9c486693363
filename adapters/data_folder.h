// Reading a data folder (formats.md "Inputs") into an Intake, file by file in
// the order the intake needs, with each file's size and SHA-256 for the manifest.
//
// Every malformed input has one defined outcome (docs/data-quality.md):
//
// The run is refused (Load returns false, with a message naming the file, and
// the line or column where there is one) for: a missing folder; a missing
// required file (centers.csv, persons.csv, cards.csv); an unreadable file; an
// empty file of any kind (no header row: zero bytes, only a BOM, or only blank
// lines; an optional file may be absent, but a present one is a delivery that
// went wrong); a header row that cannot be read or lacks a required column; a
// file whose name is not UTF-8, or that looks like an input file but is not
// named exactly as one ("Deposits-01.csv", "cards.CSV"), since it would be
// skipped silently; more rejected rows in one file than `max_rejects_per_file`.
//
// A header-only file is accepted: it has no rows.
//
// Every other problem rejects the row with its file and line (RowProblemCode
// for what the reader could not read: bad_encoding, too_long, bad_row; the
// Intake's codes for the rest) and the run goes on.
#ifndef CARECARD_ADAPTERS_DATA_FOLDER_H_
#define CARECARD_ADAPTERS_DATA_FOLDER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/csv_reader.h"
#include "engine/intake.h"

namespace carecard {

struct InputFileInfo {
  std::string file;  // name without folder
  InputKind kind;
  uint64_t bytes = 0;
  std::string sha256;
};

struct DataFolderOptions {
  int64_t max_rejects_per_file = 1'000'000;
  // With 2 or more, a reader thread parses files (CSV, UTF-8, SHA-256 and the
  // row-only checks of transactions) ahead of the sequential intake. The rows
  // reach the intake in the same order either way, so results are identical.
  int threads = 1;
  // Called now and then with the file being read and rows so far (progress on a terminal).
  std::function<void(const std::string& file, int64_t rows)> progress;
};

// The files of a folder in reading order, with their kinds. Fails when the
// folder or a required file is missing.
bool ListDataFiles(const std::string& dir, std::vector<InputFileInfo>* files, std::string* error);

// Reads every file of `dir` into `intake`. On success fills *files (hashes included).
bool LoadDataFolder(const std::string& dir, Intake* intake, const DataFolderOptions& options,
                    std::vector<InputFileInfo>* files, std::string* error);

// A stable name for an input kind ("deposits"), for the manifest.
const char* InputKindName(InputKind kind);

// The exception code of a row the reader could not read cleanly: bad_encoding
// (not UTF-8), too_long (a limit of csv_reader.h), bad_row (broken quoting);
// empty for CsvProblem::kNone.
std::string_view RowProblemCode(CsvProblem problem);
// The exception detail of such a row, for people: what was found, naming the
// column (from `header`) where one cell is at fault, and what is expected.
std::string RowProblemDetail(const CsvRow& row, const std::vector<std::string>& header);

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_DATA_FOLDER_H_
