// Shared helpers of the fuzz targets: a fatal check that stays on in release
// builds (libFuzzer reports the abort together with the input that caused it).
#ifndef CARECARD_FUZZ_FUZZ_UTIL_H_
#define CARECARD_FUZZ_FUZZ_UTIL_H_

#include <cstdio>
#include <cstdlib>
#include <string>

namespace carecard::fuzz {

[[noreturn]] inline void CheckFailed(const char* file, int line, const char* condition, const std::string& what) {
  std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", file, line, condition, what.c_str());
  std::abort();
}

}  // namespace carecard::fuzz

// Aborts with `what` when `condition` is false. Not an assert: NDEBUG builds keep it.
#define FUZZ_CHECK(condition, what) \
  ((condition) ? void(0) : ::carecard::fuzz::CheckFailed(__FILE__, __LINE__, #condition, (what)))

#endif  // CARECARD_FUZZ_FUZZ_UTIL_H_
