// Database: one SQLite connection with cached prepared statements, binds by value (copied, so
// temporaries are fine), row callbacks and transactions — the one wrapper the registry store,
// the event store, the controller's state and the analysis readers share. For one thread at a
// time (callers serialise); statements the caller prepares itself (a hot insert, an aggregate
// function) go through raw().
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace abgate::sqlite {

class Database {
 public:
  // Bound as a BLOB (a std::string binds as TEXT).
  struct Blob {
    std::string_view bytes;  // must outlive the call
  };
  using Value = std::variant<std::nullptr_t, int64_t, double, std::string, Blob>;

  // `flags`: SQLITE_OPEN_* (NOMUTEX is added). Waits up to `busy_ms` for another connection's
  // lock instead of failing with "locked". Errors name `owner` ("registry store", ...).
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path, int flags, std::string owner,
                                                        int busy_ms = 5000);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Several statements without parameters (schemas, pragmas, BEGIN/COMMIT).
  absl::Status ExecScript(const char* sql);
  absl::Status Exec(const std::string& sql, const std::vector<Value>& args = {});
  // Calls `row` for every result row; the statement is cached by its text.
  absl::Status Query(const std::string& sql, const std::vector<Value>& args,
                     const std::function<void(sqlite3_stmt*)>& row);
  // The first column of the first row as an integer; `otherwise` without a row or for NULL.
  absl::StatusOr<int64_t> QueryInt(const std::string& sql, const std::vector<Value>& args = {}, int64_t otherwise = 0);
  // BEGIN IMMEDIATE, `body`, COMMIT; ROLLBACK when either fails.
  absl::Status Transaction(const std::function<absl::Status()>& body);

  bool HasTable(std::string_view table);
  bool HasColumn(std::string_view table, std::string_view column);

  // InternalError "<owner> <what>: <sqlite's message>".
  absl::Status Error(std::string_view what) const;
  sqlite3* raw() { return db_; }

 private:
  Database(sqlite3* db, std::string owner) : db_(db), owner_(std::move(owner)) {}

  sqlite3* db_;
  std::string owner_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

// Column `i` of the current row as text; empty for NULL. The view lives until the next step.
inline std::string_view TextView(sqlite3_stmt* st, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(st, i))) : std::string_view();
}
inline std::string Text(sqlite3_stmt* st, int i) { return std::string(TextView(st, i)); }

}  // namespace abgate::sqlite
