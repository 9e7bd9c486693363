// PgCluster: a throwaway PostgreSQL 15 server for tests against a real database.
//
// Shared() starts one cluster per test process, lazily, on first use: initdb
// (as the `postgres` OS user when the tests run as root; once per machine into
// a template under $TMPDIR, copied for each cluster) into a fresh temp
// folder, a free port on 127.0.0.1, fsync off; it is stopped and removed when
// the process exits. Tests that never ask for it start nothing.
// NewDatabase() creates an empty database per test, so tests never see each
// other's rows even when the whole binary runs in one process.
//
// When the PostgreSQL 15 server binaries are missing or the cluster cannot
// start, Shared() returns nullptr with the reason in *error: tests must FAIL
// with it (ASSERT), never skip — .ci/deps installs postgresql-15.
// Thread-safety: Shared() and NewDatabase() may be called from any thread.
#ifndef CARECARD_TESTS_SUPPORT_PG_CLUSTER_H_
#define CARECARD_TESTS_SUPPORT_PG_CLUSTER_H_

#include <mutex>
#include <string>

namespace carecard::testing {

inline constexpr const char* kPgBinDir = "/usr/lib/postgresql/15/bin";

class PgCluster {
 public:
  static PgCluster* Shared(std::string* error);
  ~PgCluster();

  // Creates an empty database (name prefix + a counter) and returns its
  // key=value connection string. Empty with *error on failure.
  std::string NewDatabase(const std::string& prefix, std::string* error);

  int port() const { return port_; }

 private:
  PgCluster() = default;
  bool Start(std::string* error);
  void Stop();

  std::string dir_;  // temp folder: data/, the socket, the log
  int port_ = 0;
  bool running_ = false;
  int databases_ = 0;
  std::mutex mutex_;
};

}  // namespace carecard::testing

#endif  // CARECARD_TESTS_SUPPORT_PG_CLUSTER_H_
