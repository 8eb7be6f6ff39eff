// Event store URIs: "sqlite:PATH" (one machine, one gateway) or "postgresql://user@host:port/db"
// (also "postgres://": a store shared by a fleet of gateways). The one place that tells the
// backends apart: the config check, the store factories (events/event_store.cc) and the gateway
// ask here. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/strings.h"

namespace abgate::common {

enum class StoreBackend { kSqlite, kPostgres };

struct StoreUri {
  StoreBackend backend = StoreBackend::kSqlite;
  std::string location;  // the file path (SQLite) or the whole libpq URI (PostgreSQL)
};

// InvalidArgument, naming both accepted forms, for any other scheme.
inline absl::StatusOr<StoreUri> ParseStoreUri(std::string_view uri) {
  if (uri.starts_with("sqlite:")) return StoreUri{StoreBackend::kSqlite, std::string(uri.substr(7))};
  if (uri.starts_with("postgresql://") || uri.starts_with("postgres://")) {
    return StoreUri{StoreBackend::kPostgres, std::string(uri)};
  }
  return absl::InvalidArgumentError(
      StrCat("unsupported event store '", uri, "' (use sqlite:PATH or postgresql://user@host:port/db)"));
}

// A store several gateways can share (PostgreSQL); false for SQLite and for invalid URIs.
inline bool IsSharedStore(std::string_view uri) {
  auto parsed = ParseStoreUri(uri);
  return parsed.ok() && parsed->backend == StoreBackend::kPostgres;
}

}  // namespace abgate::common
