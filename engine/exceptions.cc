#include "engine/exceptions.h"

#include <algorithm>
#include <tuple>

namespace carecard {

bool ExceptionLess(const ExceptionRecord& a, const ExceptionRecord& b) {
  return std::tie(a.code, a.file, a.line, a.card_no, a.month, a.txn_id, a.person_id, a.detail) <
         std::tie(b.code, b.file, b.line, b.card_no, b.month, b.txn_id, b.person_id, b.detail);
}

void SortExceptions(std::vector<ExceptionRecord>* records) {
  std::sort(records->begin(), records->end(), ExceptionLess);
}

const char* SeverityName(Severity s) { return s == Severity::kError ? "error" : "warning"; }

}  // namespace carecard
