// Sha256File / Sha256Hex (declared in csv_reader.h): the digests the manifest
// records for every input and output file (semantics.md section 9).
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "adapters/csv_reader.h"

namespace carecard {

namespace {

constexpr size_t kHashChunkBytes = 1 << 20;  // memory does not grow with the file

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

std::string ToHex(const unsigned char* digest, unsigned int n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kDigits[digest[i] >> 4]);
    hex.push_back(kDigits[digest[i] & 0xF]);
  }
  return hex;
}

// Failures of OpenSSL itself (out of memory) are not the user's doing, but they
// must not yield a wrong digest either: they are reported like a read failure.
EvpMdCtx NewSha256() {
  EvpMdCtx ctx(EVP_MD_CTX_new());
  if (ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) ctx.reset();
  return ctx;
}

bool Finish(EVP_MD_CTX* ctx, std::string* hex) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &n) != 1) return false;
  *hex = ToHex(digest, n);
  return true;
}

}  // namespace

bool Sha256File(const std::string& path, std::string* hex, uint64_t* size, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  FdCloser closer{fd};
  EvpMdCtx ctx = NewSha256();
  if (!ctx) {
    *error = "cannot hash " + path + ": OpenSSL SHA-256 unavailable";
    return false;
  }
  std::vector<char> buffer(kHashChunkBytes);
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = "cannot read " + path + ": " + std::strerror(errno);
      return false;
    }
    if (n == 0) break;
    if (EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n)) != 1) {
      *error = "cannot hash " + path + ": OpenSSL error";
      return false;
    }
    total += static_cast<uint64_t>(n);
  }
  if (!Finish(ctx.get(), hex)) {
    *error = "cannot hash " + path + ": OpenSSL error";
    return false;
  }
  *size = total;
  return true;
}

std::string Sha256Hex(std::string_view bytes) {
  EvpMdCtx ctx = NewSha256();
  std::string hex;
  // Only an allocation failure inside OpenSSL can fail here; an empty string
  // never equals a digest, so a caller comparing digests cannot be fooled.
  if (!ctx || EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
      !Finish(ctx.get(), &hex)) {
    return std::string();
  }
  return hex;
}

}  // namespace carecard
