#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "adapters/csv_reader.h"
#include "tests/batch/test_files.h"

namespace carecard {
namespace {

// FIPS 180-2 test vectors.
constexpr const char* kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kMillionA = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

TEST(sha256, hex_of_abc_is_the_known_vector) {
  EXPECT_EQ(Sha256Hex("abc"), kAbc);
  EXPECT_EQ(Sha256Hex(""), kEmpty);
}

using testing::TempFile;

TEST(sha256, file_is_hashed_in_chunks_with_its_size) {
  // A million 'a' spans a 1 MiB read boundary only if the chunk is smaller;
  // 1.5 million of them certainly do, so also check against Sha256Hex.
  const std::string million(1000000, 'a');
  TempFile file(million);
  std::string hex, error;
  uint64_t size = 0;
  ASSERT_TRUE(Sha256File(file.path(), &hex, &size, &error)) << error;
  EXPECT_EQ(hex, kMillionA);
  EXPECT_EQ(size, 1000000u);

  const std::string big(1500000, 'b');
  TempFile big_file(big);
  ASSERT_TRUE(Sha256File(big_file.path(), &hex, &size, &error)) << error;
  EXPECT_EQ(hex, Sha256Hex(big));
  EXPECT_EQ(size, 1500000u);
}

TEST(sha256, empty_file_has_the_empty_digest) {
  TempFile file("");
  std::string hex, error;
  uint64_t size = 7;
  ASSERT_TRUE(Sha256File(file.path(), &hex, &size, &error)) << error;
  EXPECT_EQ(hex, kEmpty);
  EXPECT_EQ(size, 0u);
}

TEST(sha256, missing_file_is_an_error_naming_the_path) {
  std::string hex, error;
  uint64_t size = 0;
  EXPECT_FALSE(Sha256File("/nonexistent/cards.csv", &hex, &size, &error));
  EXPECT_EQ(error, "cannot open /nonexistent/cards.csv: No such file or directory");
}

TEST(sha256, directory_is_an_error_naming_the_path) {
  std::string hex, error;
  uint64_t size = 0;
  EXPECT_FALSE(Sha256File("/tmp", &hex, &size, &error));
  EXPECT_EQ(error, "cannot read /tmp: Is a directory");
}

}  // namespace
}  // namespace carecard
