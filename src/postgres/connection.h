// postgres: the one libpq wrapper — Connection (RAII over PGconn), Result (RAII over PGresult,
// so no caller ever calls PQclear) and Params (query parameters by value, text or binary).
// Every libpq return code becomes an absl::Status on the calling thread, with a code that says
// what the caller can do about it:
//   kUnavailable       the server is unreachable or the connection is broken (reconnect, retry
//                      later), or out of resources (disk full, too many connections, I/O);
//   kAborted           a serialization failure or deadlock (retry the transaction);
//   kInvalidArgument   the statement or its data were refused (a retry gives the same answer).
// Thread safety: a Connection is for one thread at a time; Result and Params are values.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace abgate::postgres {

// Parameters of one statement, copied (temporaries are fine). Text format unless Binary().
class Params {
 public:
  Params& Text(std::string_view s);
  Params& OptionalText(std::string_view s);  // empty → NULL
  Params& Int(int64_t v);
  Params& Bool(bool b);  // 0/1 integer columns
  Params& Double(double d);
  Params& OptionalDouble(const std::optional<double>& d);
  Params& Null();
  // Raw bytes for a bytea column, sent in binary (no escaping, any byte allowed).
  Params& Binary(std::string_view data);

  int size() const { return static_cast<int>(values_.size()); }
  // Arrays for libpq, valid while this object lives unchanged.
  std::vector<const char*> Pointers() const;
  std::vector<int> Lengths() const;
  std::vector<int> Formats() const;
  bool any_binary() const { return any_binary_; }

 private:
  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;
  bool any_binary_ = false;
};

// One PGresult, cleared when destroyed. Values of a text-format result are read with Text /
// Int; binary-format ones (resultFormat 1) with BinaryInt64 / BinaryDouble.
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result& operator=(Result&& o) noexcept {
    if (this != &o) {
      PQclear(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  explicit operator bool() const { return r_ != nullptr; }
  PGresult* get() const { return r_; }
  ExecStatusType status() const { return PQresultStatus(r_); }
  // COMMAND_OK or TUPLES_OK (or a single-row-mode row).
  bool ok() const;
  int rows() const { return r_ ? PQntuples(r_) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  // The value's bytes (text, or raw binary); empty for NULL. Lives as long as the Result.
  std::string_view View(int row, int col) const;
  std::string Text(int row, int col) const { return std::string(View(row, col)); }
  int64_t Int(int row, int col) const;  // a text-format integer; 0 for NULL
  int64_t BinaryInt64(int row, int col) const;
  double BinaryDouble(int row, int col) const;
  // The number of rows an INSERT/UPDATE/DELETE touched.
  int64_t AffectedRows() const;
  // The five-character SQLSTATE of an error result ("" otherwise).
  std::string_view SqlState() const;

 private:
  PGresult* r_ = nullptr;
};

// One connection. Blocking calls; connection problems come back as kUnavailable.
class Connection {
 public:
  Connection() = default;
  ~Connection() { PQfinish(c_); }
  Connection(Connection&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Connection& operator=(Connection&& o) noexcept {
    if (this != &o) {
      PQfinish(c_);
      c_ = std::exchange(o.c_, nullptr);
    }
    return *this;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects to a libpq URI (postgresql://user@host:port/db). A connect timeout of 5 s applies
  // unless the URI sets connect_timeout. kUnavailable when the server cannot be reached.
  static absl::StatusOr<Connection> Connect(const std::string& uri);

  // Connected and not broken (a lost connection is noticed by the call that failed on it).
  bool ok() const { return c_ != nullptr && PQstatus(c_) == CONNECTION_OK; }
  PGconn* get() { return c_; }

  // One or more statements without parameters.
  absl::Status Exec(const std::string& sql);
  // A parameterised statement; text-format results unless `binary_results`. Without
  // parameters (and text results) `sql` may hold several statements: the last one's result.
  absl::StatusOr<Result> Query(const std::string& sql, const Params& params = {}, bool binary_results = false);
  absl::Status Prepare(const char* name, const char* sql, int params);
  absl::StatusOr<Result> QueryPrepared(const char* name, const Params& params);
  // Streams the rows of a parameterised query in single-row mode (millions of rows without one
  // big result): `row` gets one single-row Result at a time.
  absl::Status ForEachRowStreamed(const std::string& sql, const Params& params,
                                  const std::function<void(const Result&)>& row);

  // Pipeline mode (libpq's): queue statements, Sync, then read one result per statement.
  absl::Status EnterPipeline();
  void ExitPipeline();
  bool SendPrepared(const char* name, const Params& params);
  bool SendQuery(const char* sql);
  bool PipelineSync();
  // The next result (null Result between statements and at the end).
  Result NextResult() { return Result(PQgetResult(c_)); }

  // A status for a failed call: `what` names the operation; the code follows the connection
  // state and, for `result`, its SQLSTATE (see the top of this file).
  absl::Status Error(std::string_view what, const Result* result = nullptr) const;

 private:
  explicit Connection(PGconn* c) : c_(c) {}
  PGconn* c_ = nullptr;
};

// The status code for a SQLSTATE (see the top of this file).
absl::StatusCode CodeForSqlState(std::string_view sqlstate);

}  // namespace abgate::postgres
