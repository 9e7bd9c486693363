#include "batch/settle_command.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <sstream>
#include <thread>
#include <vector>

#include "batch/book.h"
#include "tests/batch/test_files.h"

namespace carecard {
namespace {
using testing::ExampleDir;
using testing::RunCarecard;
using testing::RunCarecardCapture;
using testing::Slurp;
using testing::TempDir;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Cells of an exceptions row that the example judges: code, severity, file, line, txn_id, card_no.
std::string JudgedExceptionCells(const std::string& line) {
  std::string out;
  int commas = 0;
  for (char c : line) {
    if (c == ',' && ++commas == 6) break;
    out.push_back(c);
  }
  return out;
}

int Settle(const std::string& data, const std::string& book, const std::string& period, bool close, int threads = 1) {
  SettleOptions o;
  o.data_dir = data;
  o.rules_path = ExampleDir() + "/rules.yaml";
  o.book_dir = book;
  o.period = period;
  o.close = close;
  o.threads = threads;
  std::ostringstream out, err;
  return RunSettle(o, out, err);
}

void ExpectMatchesExample(const std::string& got_dir, const std::string& want_dir) {
  for (const char* name : {"card_months.csv", "adjustments.csv", "payouts.csv", "statements.csv",
                           "consumption_by_center.csv", "homebed_exclusions.csv"}) {
    EXPECT_EQ(Slurp(got_dir + "/" + name), Slurp(want_dir + "/" + name)) << name;
  }
  auto got = Lines(Slurp(got_dir + "/exceptions.csv"));
  auto want = Lines(Slurp(want_dir + "/exceptions.csv"));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(JudgedExceptionCells(got[i]), JudgedExceptionCells(want[i]));
}

TEST(settle_command, the_worked_example_settles_to_the_expected_files_in_both_periods) {
  TempDir book;
  ASSERT_EQ(Settle(ExampleDir() + "/data", book.path(), "2024-B1", true), kExitOk);
  ExpectMatchesExample(book / "2024-B1", ExampleDir() + "/expected/2024-B1");
  ASSERT_EQ(Settle(ExampleDir() + "/data-2024-B2", book.path(), "2024-B2", false), kExitOk);
  ExpectMatchesExample(book / "2024-B2", ExampleDir() + "/expected/2024-B2");
}

TEST(settle_command, a_closed_or_earlier_period_is_refused_with_status_3_and_nothing_written) {
  TempDir book;
  ASSERT_EQ(Settle(ExampleDir() + "/data", book.path(), "2024-B2", true), kExitOk);
  const std::string before = Slurp(book / "2024-B2/manifest.json");
  EXPECT_EQ(Settle(ExampleDir() + "/data-2024-B2", book.path(), "2024-B2", false), kExitClosed);
  EXPECT_EQ(Settle(ExampleDir() + "/data-2024-B2", book.path(), "2024-B1", false), kExitClosed);
  EXPECT_EQ(Settle(ExampleDir() + "/data-2024-B2", book.path(), "2024-B4", true), kExitClosed);  // skips B3
  EXPECT_EQ(Slurp(book / "2024-B2/manifest.json"), before);
  EXPECT_FALSE(std::filesystem::exists(book / "2024-B1"));
  EXPECT_FALSE(std::filesystem::exists(book / "2024-B4"));
}

TEST(settle_command, a_draft_is_replaced_and_settling_twice_posts_nothing_new) {
  TempDir book;
  ASSERT_EQ(Settle(ExampleDir() + "/data", book.path(), "2024-B1", true), kExitOk);
  ASSERT_EQ(Settle(ExampleDir() + "/data-2024-B2", book.path(), "2024-B2", false), kExitOk);
  const std::string first = Slurp(book / "2024-B2/adjustments.csv");
  ASSERT_EQ(Settle(ExampleDir() + "/data-2024-B2", book.path(), "2024-B2", false), kExitOk);
  EXPECT_EQ(Slurp(book / "2024-B2/adjustments.csv"), first);
  EXPECT_EQ(Lines(first).size(), 4u);
}

TEST(settle_command, closing_is_refused_while_an_earlier_draft_is_open) {
  TempDir book;
  ASSERT_EQ(Settle(ExampleDir() + "/data", book.path(), "2024-B1", false), kExitOk);
  EXPECT_EQ(Settle(ExampleDir() + "/data-2024-B2", book.path(), "2024-B2", true), kExitClosed);
}

TEST(settle_command, a_missing_required_file_or_column_refuses_the_run_with_status_2) {
  TempDir data, book;
  std::filesystem::copy(ExampleDir() + "/data", data.path(), std::filesystem::copy_options::recursive);
  std::filesystem::remove(data / "cards.csv");
  EXPECT_EQ(Settle(data.path(), book.path(), "2024-B1", false), kExitRefused);
  testing::WriteFile(data / "cards.csv", "card_no,person_id,card_type,center_id,issued_on\n");
  std::ostringstream out, err;
  SettleOptions o;
  o.data_dir = data.path();
  o.rules_path = ExampleDir() + "/rules.yaml";
  o.book_dir = book.path();
  o.period = "2024-B1";
  EXPECT_EQ(RunSettle(o, out, err), kExitRefused);
  EXPECT_NE(err.str().find("cards.csv: the header has no column 'closed_on'"), std::string::npos) << err.str();
  EXPECT_FALSE(std::filesystem::exists(book / "2024-B1"));
}

TEST(settle_command, verify_proves_closed_periods_and_names_the_first_difference) {
  TempDir book;
  const std::string rules = " --rules " + ExampleDir() + "/rules.yaml --book " + book.path();
  ASSERT_EQ(Settle(ExampleDir() + "/data", book.path(), "2024-B1", true), kExitOk);
  ASSERT_EQ(Settle(ExampleDir() + "/data-2024-B2", book.path(), "2024-B2", true), kExitOk);
  EXPECT_EQ(RunCarecard("verify --data " + ExampleDir() + "/data" + rules + " --period 2024-B1"), 0);
  EXPECT_EQ(RunCarecard("verify --data " + ExampleDir() + "/data-2024-B2" + rules + " --period 2024-B2"), 0);

  // A changed byte in a closed CSV is caught, and the file named.
  std::string payouts = Slurp(book / "2024-B1/payouts.csv");
  std::string tampered = payouts;
  tampered[tampered.find("490.00")] = '5';
  testing::WriteFile(book / "2024-B1/payouts.csv", tampered);
  std::string output;
  EXPECT_EQ(RunCarecardCapture("verify --data " + ExampleDir() + "/data" + rules + " --period 2024-B1", &output), kExitDifferent);
  EXPECT_NE(output.find("2024-B1/payouts.csv"), std::string::npos) << output;
  testing::WriteFile(book / "2024-B1/payouts.csv", payouts);

  // A changed hash in the first manifest breaks the chain for the second.
  std::string manifest = Slurp(book / "2024-B1/manifest.json");
  std::string altered = manifest;
  size_t at = altered.find("\"sha256\": \"") + 11;
  altered[at] = altered[at] == '0' ? '1' : '0';
  testing::WriteFile(book / "2024-B1/manifest.json", altered);
  EXPECT_EQ(RunCarecardCapture("verify --data " + ExampleDir() + "/data-2024-B2" + rules + " --period 2024-B2", &output),
            kExitDifferent);
  EXPECT_NE(output.find("broken chain: 2024-B2"), std::string::npos) << output;
}

TEST(settle_command, files_are_byte_identical_whatever_the_threads_time_zone_or_locale) {
  TempDir a, b;
  const std::string args = " --data " + ExampleDir() + "/data --rules " + ExampleDir() + "/rules.yaml --period 2024-B1";
  ASSERT_EQ(RunCarecard("settle" + args + " --book " + a.path() + " --threads 1"), 0);
  ASSERT_EQ(RunCarecard("settle" + args + " --book " + b.path() + " --threads 3", "TZ=America/Los_Angeles LC_ALL=C.UTF-8 LANG=zh_CN.UTF-8"), 0);
  for (const auto& entry : std::filesystem::directory_iterator(a / "2024-B1")) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(Slurp(entry.path().string()), Slurp(b / ("2024-B1/" + name))) << name;
  }
}

// Without --threads a run takes every CPU the process may use, at most eight:
// the files do not depend on it (above), only the time does.
TEST(settle_command, the_default_thread_count_is_the_usable_cpus_at_most_eight) {
  EXPECT_EQ(DefaultThreadCount(1), 1);
  EXPECT_EQ(DefaultThreadCount(2), 2);
  EXPECT_EQ(DefaultThreadCount(8), 8);
  EXPECT_EQ(DefaultThreadCount(64), kMaxDefaultThreads);
  EXPECT_EQ(DefaultThreadCount(0), 1);
}

// A container given `--cpus 1.5` has the quota "150000 100000" in cpu.max.
TEST(settle_command, a_cgroup_cpu_quota_counts_as_its_cpus_rounded_up) {
  EXPECT_EQ(CpusOfCgroupQuota("200000 100000\n"), 2);
  EXPECT_EQ(CpusOfCgroupQuota("150000 100000"), 2);
  EXPECT_EQ(CpusOfCgroupQuota("50000 100000"), 1);
  EXPECT_EQ(CpusOfCgroupQuota("99999999999 1"), kMaxThreads);
  EXPECT_EQ(CpusOfCgroupQuota("max 100000"), std::nullopt);
  for (const char* unreadable : {"", "100000", "100000 0", "0 100000", "-1 100000", "1.5 1", "100000 100000 x"}) {
    EXPECT_EQ(CpusOfCgroupQuota(unreadable), std::nullopt) << unreadable;
  }
}

// A cgroup file system laid out in a temporary folder, as CgroupCpuLimit reads it.
void WriteGroupFile(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  testing::WriteFile(file.string(), text + "\n");
}

TEST(settle_command, the_lowest_cpu_quota_of_a_cgroup_and_its_parents_binds) {
  TempDir root;
  WriteGroupFile(root / "cpu.max", "max 100000");
  WriteGroupFile(root / "a/cpu.max", "300000 100000");
  WriteGroupFile(root / "a/b/cpu.max", "max 100000");
  WriteGroupFile(root / "a/b/c/cpu.max", "150000 100000");
  EXPECT_EQ(CgroupCpuLimit("0::/a/b/c\n", root.path()), 2);
  EXPECT_EQ(CgroupCpuLimit("0::/a/b\n", root.path()), 3);   // its parent's quota
  EXPECT_EQ(CgroupCpuLimit("0::/\n", root.path()), std::nullopt);
  EXPECT_EQ(CgroupCpuLimit("", root.path()), std::nullopt);
  EXPECT_EQ(CgroupCpuLimit("garbage\n", root.path()), std::nullopt);
  EXPECT_EQ(CgroupCpuLimit("0::a/b/c\n", root.path()), 2);  // no leading slash: still beneath the root
}

// In a container the file system's root is the container's own group, while
// /proc/self/cgroup names the host's path to it.
TEST(settle_command, a_container_group_is_found_by_walking_up_from_the_host_path) {
  TempDir root;
  WriteGroupFile(root / "cpu.max", "200000 100000");
  EXPECT_EQ(CgroupCpuLimit("0::/system.slice/docker-0123.scope\n", root.path()), 2);
}

// A cgroup v1 group's quota over the usual period of 100 ms.
void WriteV1Quota(const std::string& group, const std::string& quota_us) {
  WriteGroupFile(group + "/cpu.cfs_quota_us", quota_us);
  WriteGroupFile(group + "/cpu.cfs_period_us", "100000");
}

TEST(settle_command, cgroup_v1_quotas_are_read_from_the_cpu_controller) {
  TempDir root;
  WriteV1Quota(root / "cpu,cpuacct/docker/x", "250000");
  WriteV1Quota(root / "cpu,cpuacct", "-1");
  const std::string groups = "12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n1:name=systemd:/docker/x\n";
  EXPECT_EQ(CgroupCpuLimit(groups, root.path()), 3);
  EXPECT_EQ(CgroupCpuLimit("4:cpu,cpuacct:/\n", root.path()), std::nullopt);  // -1: no quota
  EXPECT_EQ(CgroupCpuLimit("12:memory:/docker/x\n", root.path()), std::nullopt);  // not the cpu controller
}

// The first CPU of this process's affinity mask.
int FirstUsableCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) return cpu;
  }
  return 0;
}

TEST(settle_command, usable_cpus_follow_the_affinity_mask) {
  int before = 0, pinned = 0;
  std::thread([&] {  // a thread of its own, so that the test process keeps its mask
    before = UsableCpus();
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(FirstUsableCpu(), &one);
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    pinned = UsableCpus();
  }).join();
  EXPECT_GE(before, 1);
  if (before == 1) GTEST_SKIP() << "one usable CPU: pinning to it changes nothing to see";
  EXPECT_EQ(pinned, 1);
  EXPECT_EQ(UsableCpus(), before);
}

// The run log says how many threads a run had; pinned to one CPU, a run
// without --threads has one.
TEST(settle_command, a_run_without_threads_takes_the_default_and_logs_it) {
  const std::string args = " --data " + ExampleDir() + "/data --rules " + ExampleDir() + "/rules.yaml --period 2024-B1";
  TempDir free_run, pinned_run;
  ASSERT_EQ(RunCarecard("settle" + args + " --book " + free_run.path()), 0);
  ASSERT_EQ(RunCarecard("settle" + args + " --book " + pinned_run.path(),
                        "taskset -c " + std::to_string(FirstUsableCpu())),
            0);
  const std::string expected = " threads " + std::to_string(DefaultThreadCount(UsableCpus())) + " manifest ";
  EXPECT_NE(Slurp(free_run / "runs.log").find(expected), std::string::npos) << Slurp(free_run / "runs.log");
  EXPECT_NE(Slurp(pinned_run / "runs.log").find(" threads 1 manifest "), std::string::npos)
      << Slurp(pinned_run / "runs.log");
  EXPECT_EQ(Slurp(free_run / "2024-B1/manifest.json"), Slurp(pinned_run / "2024-B1/manifest.json"));
}

TEST(settle_command, a_second_run_on_a_held_book_exits_3_at_once) {
  TempDir book;
  std::string holder;
  auto lock = BookLock::TryAcquire(book.path(), "test holder pid 1", &holder);
  ASSERT_TRUE(lock);
  std::string output;
  EXPECT_EQ(RunCarecardCapture("settle --data " + ExampleDir() + "/data --rules " + ExampleDir() + "/rules.yaml --book " +
                                   book.path() + " --period 2024-B1",
                               &output),
            kExitClosed);
  EXPECT_NE(output.find("held by another run (test holder pid"), std::string::npos) << output;
}

}  // namespace
}  // namespace carecard

namespace carecard {
namespace {

TEST(settle_command, a_card_number_that_looks_like_a_formula_is_guarded_and_read_back_from_the_book) {
  TempDir data, book;
  std::filesystem::copy(ExampleDir() + "/data", data.path(), std::filesystem::copy_options::recursive);
  for (const auto& entry : std::filesystem::directory_iterator(data.path())) {
    std::string text = Slurp(entry.path().string());
    auto replace_all = [&](const std::string& from, const std::string& to) {
      for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) text.replace(at, from.size(), to);
    };
    replace_all("QD0001,", "=QD0001,");
    replace_all("\nP02,", "\n'P02,");
    replace_all(",P02,", ",'P02,");
    testing::WriteFile(entry.path().string(), text);
  }
  ASSERT_EQ(Settle(data.path(), book.path(), "2024-B1", true), kExitOk);
  const std::string card_months = Slurp(book / "2024-B1/card_months.csv");
  EXPECT_NE(card_months.find(",'=QD0001,"), std::string::npos) << card_months;
  EXPECT_NE(card_months.find(",''P02,"), std::string::npos);
  // Read back from the closed period, the guarded cells are the ids themselves: nothing to adjust.
  ASSERT_EQ(Settle(data.path(), book.path(), "2024-B2", false), kExitOk);
  EXPECT_EQ(Lines(Slurp(book / "2024-B2/adjustments.csv")).size(), 1u);
  std::string statements = Slurp(book / "2024-B2/statements.csv");
  EXPECT_NE(statements.find("2024-B2,'=QD0001,C01,174.99,"), std::string::npos) << statements;
}

}  // namespace
}  // namespace carecard

namespace carecard {
namespace {

TEST(settle_command, explain_says_when_a_month_lies_before_the_books_first_period) {
  TempDir book;
  ASSERT_EQ(Settle(ExampleDir() + "/data", book.path(), "2024-B1", true), kExitOk);
  const std::string args = "explain --data " + ExampleDir() + "/data --rules " + ExampleDir() + "/rules.yaml --book " +
                           book.path() + " --card QD0001 --month ";
  std::string output;
  RunCarecardCapture(args + "2023-12", &output);
  EXPECT_NE(output.find("before the book's first period 2024-B1"), std::string::npos) << output;
  RunCarecardCapture(args + "2024-01", &output);
  EXPECT_EQ(output.find("before the book's first period"), std::string::npos) << output;
}

}  // namespace
}  // namespace carecard
