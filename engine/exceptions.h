// ExceptionRecord: one line of exceptions.csv (formats.md), a rejected row, a
// warning about a kept row, or a card-month exception (duplicate_card).
#ifndef CARECARD_ENGINE_EXCEPTIONS_H_
#define CARECARD_ENGINE_EXCEPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace carecard {

enum class Severity { kError, kWarning };

struct ExceptionRecord {
  std::string code;  // bad_row, bad_amount, ..., see formats.md
  Severity severity = Severity::kError;
  std::string file;  // file name without folder
  int64_t line = 0;
  std::string txn_id;
  std::string card_no;
  std::string person_id;
  std::string month;  // YYYY-MM of the row's own date, where it has a valid one
  std::string detail; // for people: what was found, what was expected
};

// formats.md order: code, file, line (numeric), card_no, month; then txn_id and
// detail so that the order is total and independent of how the list was built.
bool ExceptionLess(const ExceptionRecord& a, const ExceptionRecord& b);
void SortExceptions(std::vector<ExceptionRecord>* records);
const char* SeverityName(Severity s);

}  // namespace carecard

#endif  // CARECARD_ENGINE_EXCEPTIONS_H_
