// Ed25519 signatures of manifests (libsodium), for books whose auditors want
// more than the hash chain. Keys are files of lowercase hex: the secret key
// (64 bytes, mode 0600) and the public key (32 bytes). Ed25519 signatures are
// deterministic, so a signed period stays byte-identical across reruns.
#ifndef CARECARD_BATCH_SIGNING_H_
#define CARECARD_BATCH_SIGNING_H_

#include <string>

namespace carecard {

// Writes PREFIX.key and PREFIX.pub. False with *error when a file cannot be written.
bool GenerateKeyPair(const std::string& prefix, std::string* error);
// The detached signature of `message` as hex, with the secret key in `key_path`.
bool SignMessage(const std::string& key_path, const std::string& message, std::string* signature_hex, std::string* error);
// True when `signature_hex` is a valid signature of `message` by the key in `pub_path`.
bool VerifySignature(const std::string& pub_path, const std::string& message, const std::string& signature_hex,
                     std::string* error);

}  // namespace carecard

#endif  // CARECARD_BATCH_SIGNING_H_
