#include "analysis/store_scan.h"

#include <cstdio>
#include <cstring>

#include "common/strings.h"
#include "events/event_blocks.h"

namespace abgate::analysis::internal {

bool IsPostgres(const std::string& uri) { return uri.starts_with("postgresql://") || uri.starts_with("postgres://"); }

SqliteReader::~SqliteReader() { sqlite3_close(db_); }

absl::Status SqliteReader::Open(const std::string& path) {
  // One connection per thread, so SQLite's own per-call mutex is not needed.
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    return absl::NotFoundError(StrCat("cannot open event store ", path, ": ", db_ ? sqlite3_errmsg(db_) : "?"));
  }
  // Readers opening a WAL store at the same moment contend briefly for its index (and a
  // writing gateway checkpoints now and then): wait instead of failing with "locked".
  sqlite3_busy_timeout(db_, 10'000);
  return absl::OkStatus();
}

bool SqliteReader::HasTable(const char* name) {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  const bool found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

std::pair<int64_t, int64_t> SqliteReader::RowidRange(const char* table) {
  // min() and max() of the rowid are one B-tree descent each.
  const std::string sql = StrCat("SELECT min(rowid), max(rowid) FROM ", table);
  sqlite3_stmt* st = nullptr;
  std::pair<int64_t, int64_t> range{1, 0};
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
      sqlite3_column_type(st, 0) != SQLITE_NULL) {
    range = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
  }
  sqlite3_finalize(st);
  return range;
}

bool SqliteReader::BlocksCoverRows() {
  sqlite3_stmt* st = nullptr;
  bool covered = false;
  const std::string sql = StrCat("SELECT count(*) = 2 FROM block_coverage WHERE intact = 1 AND last_rowid = ",
                                 events::kCoverageCurrentRowid);
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    covered = sqlite3_column_int(st, 0) == 1;
  }
  sqlite3_finalize(st);
  return covered;
}

int64_t SqliteReader::SumOf(const char* table, const char* column, const std::string& experiment) {
  const std::string sql = StrCat("SELECT coalesce(sum(", column, "), 0) FROM ", table, " WHERE experiment = ?");
  sqlite3_stmt* st = nullptr;
  int64_t sum = 0;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, experiment.c_str(), -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) sum = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return sum;
}

absl::Status SqliteReader::Error() const { return absl::InternalError(StrCat("sqlite: ", sqlite3_errmsg(db_))); }

absl::Status ScanSqlite(const std::string& path, const char* sql_template, const std::string& experiment,
                        const char* table, bool missing_ok, absl::FunctionRef<void(sqlite3_stmt*)> row) {
  SqliteReader db;
  if (auto s = db.Open(path); !s.ok()) return s;
  if (!db.HasTable(table)) {
    return missing_ok ? absl::OkStatus() : absl::FailedPreconditionError(StrCat(path, " has no ", table, " table"));
  }
  char sql[512];
  std::snprintf(sql, sizeof(sql), sql_template, "?");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.get(), sql, -1, &st, nullptr) != SQLITE_OK) return db.Error();
  sqlite3_bind_text(st, 1, experiment.c_str(), -1, SQLITE_TRANSIENT);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return db.Error();
  return absl::OkStatus();
}

absl::Status ScanPostgres(const std::string& uri, const char* sql_template, const std::string& experiment,
                          absl::FunctionRef<void(PGresult*)> row) {
  PGconn* c = PQconnectdb(uri.c_str());
  auto fail = [&](std::string_view what) {
    std::string msg = PQerrorMessage(c);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    PQfinish(c);
    return absl::UnavailableError(StrCat("postgresql ", what, ": ", msg));
  };
  if (PQstatus(c) != CONNECTION_OK) return fail("connect");
  char sql[512];
  std::snprintf(sql, sizeof(sql), sql_template, "$1");
  const char* params[] = {experiment.c_str()};
  if (PQsendQueryParams(c, sql, 1, nullptr, params, nullptr, nullptr, 0) != 1) return fail("query");
  PQsetSingleRowMode(c);
  absl::Status status;
  while (PGresult* r = PQgetResult(c)) {
    const auto s = PQresultStatus(r);
    if (s == PGRES_SINGLE_TUPLE) {
      row(r);
    } else if (s != PGRES_TUPLES_OK && status.ok()) {
      status = absl::UnavailableError(StrCat("postgresql query: ", PQresultErrorMessage(r)));
    }
    PQclear(r);
  }
  PQfinish(c);
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
  std::string msg = c_ ? PQerrorMessage(c_) : "out of memory";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return absl::UnavailableError(StrCat("postgresql ", what, ": ", msg));
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
