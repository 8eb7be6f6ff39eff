#include "sqlite/database.h"

#include <type_traits>

#include "common/status_macros.h"
#include "common/strings.h"

namespace abgate::sqlite {

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path, int flags, std::string owner,
                                                         int busy_ms) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(
        StrCat("cannot open ", owner, " ", path, ": ", db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, busy_ms);
  return std::unique_ptr<Database>(new Database(db, std::move(owner)));
}

Database::~Database() {
  for (auto& [sql, st] : statements_) sqlite3_finalize(st);
  sqlite3_close(db_);
}

absl::Status Database::ExecScript(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(StrCat(owner_, ": ", msg));
  }
  return absl::OkStatus();
}

absl::Status Database::Exec(const std::string& sql, const std::vector<Value>& args) {
  return Query(sql, args, [](sqlite3_stmt*) {});
}

absl::Status Database::Query(const std::string& sql, const std::vector<Value>& args,
                             const std::function<void(sqlite3_stmt*)>& row) {
  sqlite3_stmt*& st = statements_[sql];
  if (st == nullptr && sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return Error("prepare");
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  for (size_t i = 0; i < args.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::nullptr_t>) {
            sqlite3_bind_null(st, index);
          } else if constexpr (std::is_same_v<V, int64_t>) {
            sqlite3_bind_int64(st, index, v);
          } else if constexpr (std::is_same_v<V, double>) {
            sqlite3_bind_double(st, index, v);
          } else if constexpr (std::is_same_v<V, Blob>) {
            sqlite3_bind_blob(st, index, v.bytes.data(), static_cast<int>(v.bytes.size()), SQLITE_STATIC);
          } else {
            sqlite3_bind_text(st, index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
          }
        },
        args[i]);
  }
  for (;;) {
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      absl::Status s = Error("step");
      sqlite3_reset(st);
      return s;
    }
    row(st);
  }
  sqlite3_reset(st);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Database::QueryInt(const std::string& sql, const std::vector<Value>& args, int64_t otherwise) {
  int64_t value = otherwise;
  bool first = true;
  ABGATE_RETURN_IF_ERROR(Query(sql, args, [&](sqlite3_stmt* st) {
    if (first && sqlite3_column_type(st, 0) != SQLITE_NULL) value = sqlite3_column_int64(st, 0);
    first = false;
  }));
  return value;
}

absl::Status Database::Transaction(const std::function<absl::Status()>& body) {
  ABGATE_RETURN_IF_ERROR(ExecScript("BEGIN IMMEDIATE"));
  absl::Status s = body();
  if (s.ok()) s = ExecScript("COMMIT");
  if (!s.ok()) (void)ExecScript("ROLLBACK");
  return s;
}

bool Database::HasTable(std::string_view table) {
  auto n = QueryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", {std::string(table)});
  return n.ok() && *n > 0;
}

bool Database::HasColumn(std::string_view table, std::string_view column) {
  auto n = QueryInt("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", {std::string(table), std::string(column)});
  return n.ok() && *n > 0;
}

absl::Status Database::Error(std::string_view what) const {
  return absl::InternalError(StrCat(owner_, " ", what, ": ", sqlite3_errmsg(db_)));
}

}  // namespace abgate::sqlite
