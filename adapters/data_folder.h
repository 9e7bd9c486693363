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
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/csv_chunks.h"
#include "adapters/csv_reader.h"
#include "engine/ledger.h"
#include "engine/registry.h"
#include "engine/settlement.h"

namespace carecard {

struct InputFileInfo {
  std::string file;  // name without folder
  InputKind kind;
  uint64_t bytes = 0;
  std::string sha256;
};

struct DataFolderOptions {
  int64_t max_rejects_per_file = 1'000'000;
  // Transaction files are read and classified on this many threads, in blocks
  // of `block_bytes`; results do not depend on either.
  int threads = 1;
  size_t block_bytes = kDefaultBlockBytes;
  // Called now and then with the file being read and rows so far (progress on a terminal).
  std::function<void(const std::string& file, int64_t rows)> progress;
};

// The files of a folder in reading order, with their kinds. Fails when the
// folder or a required file is missing.
bool ListDataFiles(const std::string& dir, std::vector<InputFileInfo>* files, std::string* error);

// The bytes of the folder's transaction files (RunOptions::expected_transaction_bytes).
uint64_t TransactionBytes(const std::string& dir, const std::vector<InputFileInfo>& files);

// Reads the files `listed` (ListDataFiles) of `dir` into `run`: declares
// them, reads the registry files in order, finishes the registry, and
// classifies the transaction files' rows. On success fills *files (sizes and
// hashes) and *fetcher (reads transaction rows back for SettlementRun::Finish).
bool LoadDataFolder(const std::string& dir, const std::vector<InputFileInfo>& listed, SettlementRun* run,
                    const DataFolderOptions& options, std::vector<InputFileInfo>* files,
                    std::unique_ptr<RowFetcher>* fetcher, std::string* error);

// A stable name for an input kind ("deposits"), for the manifest.
const char* InputKindName(InputKind kind);

// The exception code of a row the reader could not read cleanly: bad_encoding
// (not UTF-8), too_long (a limit of csv_reader.h), bad_row (broken quoting);
// empty for CsvProblem::kNone.
std::string_view RowProblemCode(CsvProblem problem);
// The exception detail of such a row, for people: what was found, naming the
// column (from `header`) where one cell is at fault, and what is expected.
std::string RowProblemDetail(const CsvRow& row, const std::vector<std::string>& header);
std::string RowProblemDetail(const CsvRowView& row, const std::vector<std::string>& header);
ExceptionCode RowProblemExceptionCode(CsvProblem problem);

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_DATA_FOLDER_H_
