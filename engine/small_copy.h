// CopySmall: copies of a few bytes without a call to memcpy, for hot paths
// that copy one short field at a time (the tail of a txn id into a spill
// record, a cell into an output buffer). Ids, amounts and dates are 1 to 16
// bytes: two overlapping fixed-size moves cover any length from 4 to 16, and
// three single bytes any length from 1 to 3, within bounds of both buffers;
// a byte loop would be turned into a `rep movs`, slow to start. Longer copies
// go to memcpy.
#ifndef CARECARD_ENGINE_SMALL_COPY_H_
#define CARECARD_ENGINE_SMALL_COPY_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace carecard {

// REQUIRES: [src, src + n) and [dst, dst + n) are valid and do not overlap.
inline void CopySmall(char* dst, const char* src, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n > 0 && n < 4) {
    const char first = src[0], middle = src[n / 2], last = src[n - 1];
    dst[0] = first;
    dst[n / 2] = middle;
    dst[n - 1] = last;
  } else if (n > 16) {
    std::memcpy(dst, src, n);
  }
}

}  // namespace carecard

#endif  // CARECARD_ENGINE_SMALL_COPY_H_
