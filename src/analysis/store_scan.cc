#include "analysis/store_scan.h"

#include <cstdio>
#include <cstring>

#include "common/strings.h"
#include "events/event_blocks.h"

namespace abgate::analysis::internal {

bool IsPostgres(const std::string& uri) { return uri.starts_with("postgresql://") || uri.starts_with("postgres://"); }

absl::StatusOr<std::unique_ptr<sqlite::Database>> OpenForReading(const std::string& path) {
  return sqlite::Database::Open(path, SQLITE_OPEN_READONLY, "event store", 10'000);
}

std::pair<int64_t, int64_t> RowidRange(sqlite::Database& db, const char* table) {
  // min() and max() of the rowid are one B-tree descent each.
  std::pair<int64_t, int64_t> range{1, 0};
  (void)db.Query(StrCat("SELECT min(rowid), max(rowid) FROM ", table), {}, [&](sqlite3_stmt* st) {
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) range = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
  });
  return range;
}

bool BlocksCoverRows(sqlite::Database& db) {
  auto covered = db.QueryInt(StrCat("SELECT count(*) = 2 FROM block_coverage WHERE intact = 1 AND last_rowid = ",
                                    events::kCoverageCurrentRowid));
  return covered.ok() && *covered == 1;
}

absl::Status ScanSqlite(const std::string& path, const char* sql_template, const std::string& experiment,
                        const char* table, bool missing_ok, absl::FunctionRef<void(sqlite3_stmt*)> row) {
  auto db = OpenForReading(path);
  if (!db.ok()) return db.status();
  if (!(*db)->HasTable(table)) {
    return missing_ok ? absl::OkStatus() : absl::FailedPreconditionError(StrCat(path, " has no ", table, " table"));
  }
  char sql[512];
  std::snprintf(sql, sizeof(sql), sql_template, "?");
  return (*db)->Query(sql, {experiment}, [&](sqlite3_stmt* st) { row(st); });
}

absl::Status ScanPostgres(const std::string& uri, const char* sql_template, const std::string& experiment,
                          absl::FunctionRef<void(PGresult*)> row) {
  PgConnection c;
  if (auto s = c.Connect(uri); !s.ok()) return s;
  char sql[512];
  std::snprintf(sql, sizeof(sql), sql_template, "$1");
  const char* params[] = {experiment.c_str()};
  if (PQsendQueryParams(c.get(), sql, 1, nullptr, params, nullptr, nullptr, 0) != 1) return c.Error("query");
  PQsetSingleRowMode(c.get());
  absl::Status status;
  while (PGresult* r = PQgetResult(c.get())) {
    const auto s = PQresultStatus(r);
    if (s == PGRES_SINGLE_TUPLE) {
      row(r);
    } else if (s != PGRES_TUPLES_OK && status.ok()) {
      status = absl::UnavailableError(StrCat("postgresql query: ", OneLine(PQresultErrorMessage(r))));
    }
    PQclear(r);
  }
  return status;
}

namespace {
uint64_t LoadBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
}  // namespace

int64_t PgInt64(PGresult* r, int row, int i) {
  return PQgetlength(r, row, i) == 8 ? static_cast<int64_t>(LoadBigEndian64(PQgetvalue(r, row, i))) : 0;
}

double PgDouble(PGresult* r, int row, int i) {
  if (PQgetlength(r, row, i) != 8) return 0;
  const uint64_t bits = LoadBigEndian64(PQgetvalue(r, row, i));
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

PgConnection::~PgConnection() { PQfinish(c_); }

absl::Status PgConnection::Error(std::string_view what) const {
  return absl::UnavailableError(StrCat("postgresql ", what, ": ", c_ ? OneLine(PQerrorMessage(c_)) : "out of memory"));
}

absl::Status PgConnection::Connect(const std::string& uri) {
  c_ = PQconnectdb(uri.c_str());
  if (PQstatus(c_) != CONNECTION_OK) return Error("connect");
  return absl::OkStatus();
}

absl::Status PgConnection::Exec(const std::string& sql) {
  PGresult* r = PQexec(c_, sql.c_str());
  const auto status = PQresultStatus(r);
  PQclear(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return Error("query");
  return absl::OkStatus();
}

absl::StatusOr<PgConnection::Result> PgConnection::Query(const std::string& sql) {
  Result r(PQexec(c_, sql.c_str()), PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return Error("query");
  return r;
}

absl::Status PgConnection::ForEachRow(const std::string& select, const std::function<void(PGresult*, int)>& fn,
                                      int batch) {
  if (auto s = Exec(StrCat("DECLARE abgate_rows NO SCROLL CURSOR FOR ", select)); !s.ok()) return s;
  const std::string fetch = StrCat("FETCH FORWARD ", batch, " FROM abgate_rows");
  for (;;) {
    Result r(PQexecParams(c_, fetch.c_str(), 0, nullptr, nullptr, nullptr, nullptr, /*resultFormat=*/1), PQclear);
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return Error("fetch");
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) fn(r.get(), i);
    if (n < batch) break;
  }
  return Exec("CLOSE abgate_rows");
}

}  // namespace abgate::analysis::internal
