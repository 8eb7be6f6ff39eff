#include "testing/test_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "gtest/gtest.h"
#include "postgres/connection.h"

namespace abgate::testing {

std::string TestBackend() {
  const char* b = std::getenv("ABGATE_TEST_BACKEND");
  return b && *b ? b : "sqlite";
}

namespace {

bool Exec(const std::string& uri, const std::string& sql, std::string* error) {
  auto c = postgres::Connection::Connect(uri);
  absl::Status s = c.ok() ? c->Exec(sql) : c.status();
  if (!s.ok() && error) *error = std::string(s.message());
  return s.ok();
}

}  // namespace

TestStore::TestStore(std::string backend, std::string dir) : backend_(std::move(backend)), dir_(std::move(dir)) {
  if (backend_ == "sqlite") {
    uri_ = "sqlite:" + dir_ + "/events.db";
    return;
  }
  const char* admin = std::getenv("ABGATE_TEST_POSTGRES");
  if (!admin || !*admin) {
    reason_ = "ABGATE_TEST_POSTGRES is not set: this test needs a PostgreSQL server (scripts/test.sh starts a "
              "throw-away one and sets it to its URI)";
    unconfigured_ = true;
    return;
  }
  admin_uri_ = admin;
  static std::atomic<int> counter{0};
  database_ = "abgate_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::string error;
  if (!Exec(admin_uri_, "CREATE DATABASE " + database_, &error)) {
    reason_ = "cannot create a test database: " + error;
    return;
  }
  // Same server and user, the new database.
  const size_t slash = admin_uri_.rfind('/');
  uri_ = admin_uri_.substr(0, slash + 1) + database_;
}

TestStore::~TestStore() {
  if (!database_.empty() && !uri_.empty()) Exec(admin_uri_, "DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)", nullptr);
}

int64_t TestStore::QueryInt(const std::string& sql) const {
  int64_t v = -1;
  if (backend_ == "sqlite") {
    sqlite3* db = nullptr;
    sqlite3_open_v2(uri_.substr(7).c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      v = sqlite3_column_int64(st, 0);
    } else {
      ADD_FAILURE() << "query failed: " << sql << ": " << sqlite3_errmsg(db);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }
  auto c = postgres::Connection::Connect(uri_);
  auto r = c.ok() ? c->Query(sql) : absl::StatusOr<postgres::Result>(c.status());
  if (r.ok() && r->rows() > 0) {
    v = r->Int(0, 0);
  } else {
    ADD_FAILURE() << "query failed: " << sql << ": " << (r.ok() ? "no row" : r.status().message());
  }
  return v;
}

std::vector<std::string> TestStore::QueryStrings(const std::string& sql) const {
  std::vector<std::string> out;
  if (backend_ == "sqlite") {
    sqlite3* db = nullptr;
    sqlite3_open_v2(uri_.substr(7).c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) ADD_FAILURE() << sqlite3_errmsg(db);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(st, 0);
      out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
  auto c = postgres::Connection::Connect(uri_);
  auto r = c.ok() ? c->Query(sql) : absl::StatusOr<postgres::Result>(c.status());
  if (!r.ok()) {
    ADD_FAILURE() << "query failed: " << sql << ": " << r.status().message();
    return out;
  }
  for (int i = 0; i < r->rows(); ++i) out.push_back(r->Text(i, 0));
  return out;
}

}  // namespace abgate::testing
