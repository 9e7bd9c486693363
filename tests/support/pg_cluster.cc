#include "tests/support/pg_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <pqxx/pqxx>
#include <sstream>

namespace carecard::testing {
namespace {

namespace fs = std::filesystem;

// A port the kernel considers free right now on 127.0.0.1.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Runs a shell command as the server's OS user; returns its exit status.
int RunAsServerUser(const std::string& command) {
  std::string full = ::geteuid() == 0 ? "runuser -u postgres -- " + command : command;
  int status = std::system(full.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

// initdb is most of a cluster's start-up: it runs once per machine into a
// template folder (under an flock, so parallel test processes wait for the
// first), and every cluster starts from a copy of it.
bool TemplateDataDir(std::string* data, std::string* error) {
  const std::string root = (fs::temp_directory_path() / "carecard-pg15-template").string();
  *data = root + "/data";
  const std::string lock_path = root + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
    *error = "cannot lock " + lock_path;
    if (fd >= 0) ::close(fd);
    return false;
  }
  bool ok = true;
  if (!fs::exists(*data + "/PG_VERSION")) {
    std::error_code ec;
    fs::remove_all(root, ec);
    fs::create_directories(root, ec);
    if (::geteuid() == 0 && std::system(("chown postgres:postgres '" + root + "'").c_str()) != 0) {
      *error = "cannot give " + root + " to the postgres user";
      ok = false;
    } else if (RunAsServerUser(std::string(kPgBinDir) + "/initdb -D '" + root + "/initdb' -A trust -U postgres -E UTF8 --locale=C --no-sync >'" +
                               root + "/initdb.log' 2>&1") != 0) {
      *error = "initdb failed: " + Tail(root + "/initdb.log");
      ok = false;
    } else {
      fs::rename(root + "/initdb", *data, ec);
      ok = !ec;
      if (!ok) *error = "cannot move the template cluster into place: " + ec.message();
    }
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
  return ok;
}

std::unique_ptr<PgCluster>& Instance() {
  static std::unique_ptr<PgCluster> instance;
  return instance;
}

}  // namespace

PgCluster* PgCluster::Shared(std::string* error) {
  static std::mutex mutex;
  static std::string failure;
  std::lock_guard<std::mutex> lock(mutex);
  auto& instance = Instance();
  if (instance) return instance.get();
  if (!failure.empty()) {
    *error = failure;
    return nullptr;
  }
  std::unique_ptr<PgCluster> cluster(new PgCluster());
  if (!cluster->Start(&failure)) {
    *error = failure;
    return nullptr;
  }
  instance = std::move(cluster);
  // Stop the server when the process ends normally (static destruction).
  return instance.get();
}

PgCluster::~PgCluster() { Stop(); }

bool PgCluster::Start(std::string* error) {
  const std::string bin = kPgBinDir;
  if (!fs::exists(bin + "/initdb") || !fs::exists(bin + "/pg_ctl")) {
    *error = "PostgreSQL 15 server binaries are missing (" + bin +
             "/initdb, pg_ctl): install the Debian package postgresql-15 (bash .ci/deps does)";
    return false;
  }
  std::string pattern = (fs::temp_directory_path() / "carecard-pg-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) {
    *error = "cannot create a temp folder for the test cluster";
    return false;
  }
  dir_ = pattern;
  if (::geteuid() == 0 && std::system(("chown postgres:postgres '" + dir_ + "'").c_str()) != 0) {
    *error = "cannot give " + dir_ + " to the postgres user";
    return false;
  }
  const std::string data = dir_ + "/data", log = dir_ + "/server.log";
  std::string template_data;
  if (!TemplateDataDir(&template_data, error)) return false;
  if (RunAsServerUser("cp -a '" + template_data + "' '" + data + "'") != 0) {
    *error = "cannot copy the template cluster " + template_data + " to " + data;
    return false;
  }
  for (int attempt = 0; attempt < 5 && !running_; ++attempt) {
    port_ = FreePort();
    const std::string options = "-p " + std::to_string(port_) + " -k " + dir_ +
                                " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
                                " -c full_page_writes=off -c max_connections=40";
    if (RunAsServerUser(bin + "/pg_ctl -D '" + data + "' -o '" + options + "' -l '" + log + "' -w -t 30 start >/dev/null 2>&1") == 0) {
      running_ = true;
    }
  }
  if (!running_) {
    *error = "pg_ctl start failed: " + Tail(log);
    return false;
  }
  return true;
}

void PgCluster::Stop() {
  if (running_) {
    RunAsServerUser(std::string(kPgBinDir) + "/pg_ctl -D '" + dir_ + "/data' -m immediate -w stop >/dev/null 2>&1");
    running_ = false;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
}

std::string PgCluster::NewDatabase(const std::string& prefix, std::string* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string name = prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
  const std::string base = "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres";
  try {
    pqxx::connection conn(base + " dbname=postgres");
    pqxx::nontransaction tx(conn);
    tx.exec("CREATE DATABASE " + tx.quote_name(name) + " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
  } catch (const std::exception& e) {
    *error = std::string("cannot create database ") + name + ": " + e.what();
    return {};
  }
  return base + " dbname=" + name;
}

}  // namespace carecard::testing
