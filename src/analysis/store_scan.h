// Internal to the analysis library: reading rows out of the event store (SQLite or
// PostgreSQL), shared by the readers in readers.cc and event_store_reader.cc. Connections are
// for one thread each; the free functions are thread-safe.
#pragma once

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sqlite/database.h"

namespace abgate::analysis::internal {

bool IsPostgres(const std::string& uri);

// A read-only connection to an event store file, for one thread. It waits on locks: readers
// opening a WAL store at the same moment contend briefly for its index, and a writing gateway
// checkpoints now and then.
absl::StatusOr<std::unique_ptr<sqlite::Database>> OpenForReading(const std::string& path);
// (min(rowid), max(rowid)) of `table`; (1, 0) when it is empty.
std::pair<int64_t, int64_t> RowidRange(sqlite::Database& db, const char* table);
// Whether the event blocks hold every exposure and outcome row (table block_coverage of the
// SQLite sink: intact, and no row past the last one the sink wrote).
bool BlocksCoverRows(sqlite::Database& db);

// The text (or raw binary) value of column `i` of a single-row-mode result; empty for NULL.
inline std::string_view PgView(PGresult* r, int i) {
  return PQgetisnull(r, 0, i) ? std::string_view()
                              : std::string_view(PQgetvalue(r, 0, i), static_cast<size_t>(PQgetlength(r, 0, i)));
}
inline std::string_view PgView(PGresult* r, int row, int i) {
  return PQgetisnull(r, row, i) ? std::string_view()
                                : std::string_view(PQgetvalue(r, row, i), static_cast<size_t>(PQgetlength(r, row, i)));
}
// A binary-format bigint / double precision value (network byte order).
int64_t PgInt64(PGresult* r, int row, int i);
double PgDouble(PGresult* r, int row, int i);

// One PostgreSQL connection for one thread.
class PgConnection {
 public:
  PgConnection() = default;
  ~PgConnection();
  PgConnection(PgConnection&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  absl::Status Connect(const std::string& uri);
  absl::Status Exec(const std::string& sql);
  using Result = std::unique_ptr<PGresult, void (*)(PGresult*)>;
  absl::StatusOr<Result> Query(const std::string& sql);
  // Runs `select` through a cursor inside the current transaction and calls fn(result, row)
  // for every row, fetched in binary, `batch` rows at a time.
  absl::Status ForEachRow(const std::string& select, const std::function<void(PGresult*, int)>& fn, int batch = 20000);
  absl::Status Error(std::string_view what) const;
  PGconn* get() { return c_; }

 private:
  PGconn* c_ = nullptr;
};

// Streams the rows of `sql_template` (with the experiment as its one parameter, written %s)
// from a SQLite file to `row`. A missing `table` is no rows when `missing_ok`, else an error.
absl::Status ScanSqlite(const std::string& path, const char* sql_template, const std::string& experiment,
                        const char* table, bool missing_ok, absl::FunctionRef<void(sqlite3_stmt*)> row);

// The same from PostgreSQL, in libpq's single-row mode, so millions of rows stream without
// being held in one result set.
absl::Status ScanPostgres(const std::string& uri, const char* sql_template, const std::string& experiment,
                          absl::FunctionRef<void(PGresult*)> row);

}  // namespace abgate::analysis::internal
