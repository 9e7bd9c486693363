#include "batch/signing.h"

#include <sodium.h>
#include <sys/stat.h>

#include <fstream>
#include <vector>

#include "batch/book.h"

namespace carecard {
namespace {

std::string ToHex(const unsigned char* bytes, size_t n) {
  std::string hex(n * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes, n);
  hex.pop_back();
  return hex;
}

bool FromHexFile(const std::string& path, size_t expected, std::vector<unsigned char>* out, std::string* error) {
  std::string text;
  if (!ReadWholeFile(path, &text, error)) return false;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  out->assign(expected, 0);
  size_t length = 0;
  if (sodium_hex2bin(out->data(), out->size(), text.data(), text.size(), nullptr, &length, nullptr) != 0 ||
      length != expected) {
    *error = "'" + path + "' is not a key of " + std::to_string(expected) + " bytes in hex";
    return false;
  }
  return true;
}

bool Init(std::string* error) {
  if (sodium_init() < 0) {
    *error = "libsodium could not be initialised";
    return false;
  }
  return true;
}

}  // namespace

bool GenerateKeyPair(const std::string& prefix, std::string* error) {
  if (!Init(error)) return false;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  const std::string key_path = prefix + ".key", pub_path = prefix + ".pub";
  {
    std::ofstream key(key_path, std::ios::trunc);
    key << ToHex(sk, sizeof sk) << "\n";
    if (!key) {
      *error = "cannot write '" + key_path + "'";
      return false;
    }
  }
  ::chmod(key_path.c_str(), 0600);
  sodium_memzero(sk, sizeof sk);
  std::ofstream pub(pub_path, std::ios::trunc);
  pub << ToHex(pk, sizeof pk) << "\n";
  if (!pub) {
    *error = "cannot write '" + pub_path + "'";
    return false;
  }
  return true;
}

bool SignMessage(const std::string& key_path, const std::string& message, std::string* signature_hex,
                 std::string* error) {
  if (!Init(error)) return false;
  std::vector<unsigned char> sk;
  if (!FromHexFile(key_path, crypto_sign_SECRETKEYBYTES, &sk, error)) return false;
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(message.data()), message.size(), sk.data());
  sodium_memzero(sk.data(), sk.size());
  *signature_hex = ToHex(sig, sizeof sig);
  return true;
}

bool VerifySignature(const std::string& pub_path, const std::string& message, const std::string& signature_hex,
                     std::string* error) {
  if (!Init(error)) return false;
  std::vector<unsigned char> pk;
  if (!FromHexFile(pub_path, crypto_sign_PUBLICKEYBYTES, &pk, error)) return false;
  std::string hex = signature_hex;
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
  unsigned char sig[crypto_sign_BYTES];
  size_t length = 0;
  if (sodium_hex2bin(sig, sizeof sig, hex.data(), hex.size(), nullptr, &length, nullptr) != 0 || length != sizeof sig) {
    *error = "the signature is not " + std::to_string(sizeof sig) + " bytes in hex";
    return false;
  }
  if (crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(message.data()), message.size(), pk.data()) !=
      0) {
    *error = "the signature does not match the manifest and the public key";
    return false;
  }
  return true;
}

}  // namespace carecard
