#include "postgres/connection.h"

#include <charconv>
#include <cstring>

#include "common/strings.h"

namespace abgate::postgres {

Params& Params::Text(std::string_view s) {
  values_.emplace_back(std::string(s));
  formats_.push_back(0);
  return *this;
}

Params& Params::OptionalText(std::string_view s) { return s.empty() ? Null() : Text(s); }

Params& Params::Int(int64_t v) { return Text(std::to_string(v)); }

Params& Params::Bool(bool b) { return Text(b ? "1" : "0"); }

Params& Params::Double(double d) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  return Text(std::string_view(buf, r.ptr - buf));
}

Params& Params::OptionalDouble(const std::optional<double>& d) { return d ? Double(*d) : Null(); }

Params& Params::Null() {
  values_.emplace_back(std::nullopt);
  formats_.push_back(0);
  return *this;
}

Params& Params::Binary(std::string_view data) {
  values_.emplace_back(std::string(data));
  formats_.push_back(1);
  any_binary_ = true;
  return *this;
}

std::vector<const char*> Params::Pointers() const {
  std::vector<const char*> p;
  p.reserve(values_.size());
  for (const auto& v : values_) p.push_back(v ? v->c_str() : nullptr);
  return p;
}

std::vector<int> Params::Lengths() const {
  std::vector<int> n;
  n.reserve(values_.size());
  for (const auto& v : values_) n.push_back(v ? static_cast<int>(v->size()) : 0);
  return n;
}

std::vector<int> Params::Formats() const { return formats_; }

bool Result::ok() const {
  const auto s = status();
  return r_ && (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_SINGLE_TUPLE);
}

std::string_view Result::View(int row, int col) const {
  if (PQgetisnull(r_, row, col)) return {};
  return std::string_view(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}

int64_t Result::Int(int row, int col) const {
  const std::string_view v = View(row, col);
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

namespace {
uint64_t LoadBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
}  // namespace

int64_t Result::BinaryInt64(int row, int col) const {
  return PQgetlength(r_, row, col) == 8 ? static_cast<int64_t>(LoadBigEndian64(PQgetvalue(r_, row, col))) : 0;
}

double Result::BinaryDouble(int row, int col) const {
  if (PQgetlength(r_, row, col) != 8) return 0;
  const uint64_t bits = LoadBigEndian64(PQgetvalue(r_, row, col));
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

int64_t Result::AffectedRows() const {
  const char* n = PQcmdTuples(r_);
  int64_t out = 0;
  if (n) std::from_chars(n, n + std::strlen(n), out);
  return out;
}

std::string_view Result::SqlState() const {
  const char* s = r_ ? PQresultErrorField(r_, PG_DIAG_SQLSTATE) : nullptr;
  return s ? std::string_view(s) : std::string_view();
}

absl::StatusCode CodeForSqlState(std::string_view sqlstate) {
  if (sqlstate.size() != 5) return absl::StatusCode::kUnavailable;  // no server answer
  const std::string_view cls = sqlstate.substr(0, 2);
  // 08 connection exception, 53 insufficient resources (disk full, out of memory, too many
  // connections), 57 operator intervention (shutdown, crash recovery), 58 system error (I/O),
  // XX internal error: nothing wrong with the data, the server is not able to take it now.
  if (cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "XX") {
    return absl::StatusCode::kUnavailable;
  }
  if (cls == "40") return absl::StatusCode::kAborted;  // serialization failure, deadlock
  return absl::StatusCode::kInvalidArgument;
}

absl::StatusOr<Connection> Connection::Connect(const std::string& uri) {
  // The URI comes last, so a connect_timeout it sets wins over ours.
  const char* keys[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"5", uri.c_str(), nullptr};
  Connection c(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!c.ok()) return c.Error(StrCat("connect to ", uri));
  return c;
}

absl::Status Connection::Error(std::string_view what, const Result* result) const {
  std::string message = c_ ? OneLine(PQerrorMessage(c_)) : "out of memory";
  if (result && *result) {
    if (const char* m = PQresultErrorMessage(result->get()); m && *m) message = OneLine(m);
  }
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  if (c_ && PQstatus(c_) == CONNECTION_OK && result && *result) code = CodeForSqlState(result->SqlState());
  return absl::Status(code, StrCat("postgresql ", what, ": ", message));
}

absl::Status Connection::Exec(const std::string& sql) {
  Result r(PQexec(c_, sql.c_str()));
  if (!r.ok()) return Error("query", &r);
  return absl::OkStatus();
}

absl::StatusOr<Result> Connection::Query(const std::string& sql, const Params& params, bool binary_results) {
  if (params.size() == 0 && !binary_results) {
    // Several statements allowed (the last one's result is returned), as PQexec does.
    Result r(PQexec(c_, sql.c_str()));
    if (!r.ok()) return Error("query", &r);
    return r;
  }
  const auto p = params.Pointers();
  const auto lengths = params.Lengths();
  const auto formats = params.Formats();
  Result r(PQexecParams(c_, sql.c_str(), params.size(), nullptr, p.data(), lengths.data(), formats.data(),
                        binary_results ? 1 : 0));
  if (!r.ok()) return Error("query", &r);
  return r;
}

absl::Status Connection::Prepare(const char* name, const char* sql, int params) {
  Result r(PQprepare(c_, name, sql, params, nullptr));
  if (!r.ok()) return Error(StrCat("prepare ", name), &r);
  return absl::OkStatus();
}

absl::StatusOr<Result> Connection::QueryPrepared(const char* name, const Params& params) {
  const auto p = params.Pointers();
  const auto lengths = params.Lengths();
  const auto formats = params.Formats();
  Result r(PQexecPrepared(c_, name, params.size(), p.data(), lengths.data(), formats.data(), 0));
  if (!r.ok()) return Error(name, &r);
  return r;
}

absl::Status Connection::ForEachRowStreamed(const std::string& sql, const Params& params,
                                            const std::function<void(const Result&)>& row) {
  const auto p = params.Pointers();
  const auto lengths = params.Lengths();
  const auto formats = params.Formats();
  if (PQsendQueryParams(c_, sql.c_str(), params.size(), nullptr, p.data(), lengths.data(), formats.data(), 0) != 1) {
    return Error("query");
  }
  PQsetSingleRowMode(c_);
  absl::Status status;
  while (Result r = NextResult()) {
    if (r.status() == PGRES_SINGLE_TUPLE) {
      row(r);
    } else if (!r.ok() && status.ok()) {
      status = Error("query", &r);
    }
  }
  return status;
}

absl::Status Connection::EnterPipeline() {
  if (PQenterPipelineMode(c_) != 1) return Error("pipeline");
  return absl::OkStatus();
}

void Connection::ExitPipeline() { PQexitPipelineMode(c_); }

bool Connection::SendPrepared(const char* name, const Params& params) {
  const auto p = params.Pointers();
  const auto lengths = params.Lengths();
  const auto formats = params.Formats();
  return PQsendQueryPrepared(c_, name, params.size(), p.data(), params.any_binary() ? lengths.data() : nullptr,
                             params.any_binary() ? formats.data() : nullptr, 0) == 1;
}

bool Connection::SendQuery(const char* sql) {
  return PQsendQueryParams(c_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
}

bool Connection::PipelineSync() { return PQpipelineSync(c_) == 1; }

}  // namespace abgate::postgres
