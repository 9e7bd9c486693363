// A run killed at any moment leaves the book exactly as it was, or exactly as
// the finished run would have left it; the next run proceeds normally.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "adapters/csv_reader.h"
#include "batch/generator.h"
#include "tests/batch/test_files.h"

namespace carecard {
namespace {
namespace fs = std::filesystem;
using testing::Slurp;
using testing::TempDir;

// Every file a period's manifest names is there with the hash the manifest gives.
bool PeriodIsComplete(const std::string& dir, std::string* why) {
  const std::string manifest = Slurp(dir + "/manifest.json");
  auto json = nlohmann::json::parse(manifest, nullptr, false);
  if (json.is_discarded()) {
    *why = dir + ": manifest missing or unreadable";
    return false;
  }
  for (const auto& out : json["outputs"]) {
    const std::string name = out["file"];
    if (Sha256Hex(Slurp(dir + "/" + name)) != out["sha256"]) {
      *why = dir + "/" + name + " does not match its manifest";
      return false;
    }
  }
  return true;
}

// Starts carecard with `args` and returns its pid.
pid_t Spawn(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string binary = CARECARD_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(crash_safety, a_run_killed_at_any_moment_leaves_the_book_as_before_or_as_after) {
  TempDir work;
  GenOptions gen;
  gen.out_dir = work / "data";
  gen.cards = 6000;
  gen.first_month = YearMonth::Of(2024, 1);
  gen.last_month = YearMonth::Of(2024, 4);
  gen.seed = 11;
  GenSummary summary;
  std::string error;
  ASSERT_TRUE(GenerateDataFolder(gen, &summary, &error)) << error;
  const std::string rules = testing::SourceDir() + "/rules/qingdao-2022.yaml";
  auto settle_args = [&](const std::string& book, const std::string& period, bool close) {
    std::vector<std::string> a = {"settle", "--data", work / "data", "--rules", rules, "--book", book, "--period", period};
    if (close) a.push_back("--close");
    return a;
  };
  // The book before: 2024-B1 closed, a draft of 2024-B2.
  const std::string base = work / "base";
  ASSERT_EQ(WaitExit(Spawn(settle_args(base, "2024-B1", true))), 0);
  ASSERT_EQ(WaitExit(Spawn(settle_args(base, "2024-B2", false))), 0);
  const std::string b1_before = Slurp(base + "/2024-B1/manifest.json");
  const std::string b2_before = Slurp(base + "/2024-B2/manifest.json");
  // The book after an uninterrupted run that closes 2024-B2.
  const std::string reference = work / "reference";
  fs::copy(base, reference, fs::copy_options::recursive);
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(WaitExit(Spawn(settle_args(reference, "2024-B2", true))), 0);
  const auto run_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  const std::string b2_after = Slurp(reference + "/2024-B2/manifest.json");
  ASSERT_NE(b2_before, b2_after);

  int saw_before = 0, saw_after = 0;
  constexpr int kKillPoints = 12;
  for (int i = 0; i < kKillPoints; ++i) {
    const std::string book = work / ("book" + std::to_string(i));
    fs::copy(base, book, fs::copy_options::recursive);
    pid_t pid = Spawn(settle_args(book, "2024-B2", true));
    std::this_thread::sleep_for(std::chrono::microseconds(run_us * (i + 1) / kKillPoints));
    ::kill(pid, SIGKILL);
    WaitExit(pid);
    std::string why;
    ASSERT_TRUE(PeriodIsComplete(book + "/2024-B1", &why)) << "kill point " << i << ": " << why;
    ASSERT_TRUE(PeriodIsComplete(book + "/2024-B2", &why)) << "kill point " << i << ": " << why;
    EXPECT_EQ(Slurp(book + "/2024-B1/manifest.json"), b1_before);
    const std::string b2 = Slurp(book + "/2024-B2/manifest.json");
    ASSERT_TRUE(b2 == b2_before || b2 == b2_after) << "kill point " << i << ": a third state";
    (b2 == b2_before ? saw_before : saw_after) += 1;
    // The next run proceeds normally and reaches the reference.
    int rc = WaitExit(Spawn(settle_args(book, "2024-B2", true)));
    if (b2 == b2_after) {
      EXPECT_EQ(rc, 3) << "the period was already closed";
    } else {
      EXPECT_EQ(rc, 0);
    }
    EXPECT_EQ(Slurp(book + "/2024-B2/manifest.json"), b2_after);
    for (const auto& entry : fs::directory_iterator(book)) {
      EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << "leftover " << entry.path();
    }
    fs::remove_all(book);
  }
  EXPECT_GT(saw_before, 0);  // some kills landed before the rename
}

}  // namespace
}  // namespace carecard
