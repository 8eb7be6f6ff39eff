// Test helper: a fresh, empty event store for one test, on SQLite (a temp file) or on the
// throw-away PostgreSQL that scripts/test.sh starts (ABGATE_TEST_POSTGRES; a new database per
// store, dropped afterwards). Also runs scalar SQL against it. One owner; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace abgate::testing {

class TestStore {
 public:
  // backend: "sqlite" or "postgres". `dir` holds the SQLite file.
  TestStore(std::string backend, std::string dir);
  ~TestStore();
  TestStore(const TestStore&) = delete;
  TestStore& operator=(const TestStore&) = delete;

  // False when the backend is unavailable (postgres without ABGATE_TEST_POSTGRES, or a server
  // that refused the new database); see reason().
  bool ok() const { return !uri_.empty(); }
  // PostgreSQL was asked for and ABGATE_TEST_POSTGRES is not set (ctest run without
  // scripts/test.sh): the test skips (GTEST_SKIP() << reason(), which names the variable). Any
  // other unavailability is a failure.
  bool unconfigured() const { return unconfigured_; }
  const std::string& reason() const { return reason_; }
  const std::string& uri() const { return uri_; }  // sqlite:PATH or postgresql://...
  bool is_postgres() const { return backend_ == "postgres"; }
  // First column of the first row of `sql`, or -1 (and a gtest failure) when it fails.
  int64_t QueryInt(const std::string& sql) const;
  // First column of every row of `sql`, as text.
  std::vector<std::string> QueryStrings(const std::string& sql) const;

 private:
  std::string backend_, dir_, uri_, reason_, admin_uri_, database_;
  bool unconfigured_ = false;
};

// The backend integration tests run on: ABGATE_TEST_BACKEND (default sqlite).
std::string TestBackend();

}  // namespace abgate::testing
