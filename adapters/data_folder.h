// Reading a data folder (formats.md "Inputs") into an Intake, file by file in
// the order the intake needs, with each file's size and SHA-256 for the manifest.
//
// A missing folder, a missing required file (centers.csv, persons.csv,
// cards.csv), an unreadable file, a header without a required column, or more
// rejected rows in one file than `max_rejects_per_file` refuse the run: Load
// returns false with a message naming the file (and the column).
#ifndef CARECARD_ADAPTERS_DATA_FOLDER_H_
#define CARECARD_ADAPTERS_DATA_FOLDER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

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

}  // namespace carecard

#endif  // CARECARD_ADAPTERS_DATA_FOLDER_H_
