// The event-store factories: the only file that knows every backend, for writing and reading.
#include "common/status_macros.h"
#include "common/store_uri.h"
#include "events/event_reader.h"
#include "events/postgres_event_reader.h"
#include "events/postgres_event_sink.h"
#include "events/sqlite_event_reader.h"
#include "events/sqlite_event_sink.h"

namespace abgate::events {

absl::StatusOr<std::unique_ptr<EventSink>> OpenEventSink(const std::string& uri) {
  ABGATE_ASSIGN_OR_RETURN(const common::StoreUri store, common::ParseStoreUri(uri));
  switch (store.backend) {
    case common::StoreBackend::kSqlite: {
      ABGATE_ASSIGN_OR_RETURN(auto sink, SqliteEventSink::Open(store.location));
      return std::unique_ptr<EventSink>(std::move(sink));
    }
    case common::StoreBackend::kPostgres: {
      ABGATE_ASSIGN_OR_RETURN(auto sink, PostgresEventSink::Open(store.location));
      return std::unique_ptr<EventSink>(std::move(sink));
    }
  }
  return absl::InternalError("unknown store backend");
}

absl::StatusOr<std::unique_ptr<EventReader>> OpenEventReader(const std::string& uri) {
  ABGATE_ASSIGN_OR_RETURN(const common::StoreUri store, common::ParseStoreUri(uri));
  switch (store.backend) {
    case common::StoreBackend::kSqlite:
      return std::unique_ptr<EventReader>(std::make_unique<SqliteEventReader>(store.location));
    case common::StoreBackend::kPostgres:
      return std::unique_ptr<EventReader>(std::make_unique<PostgresEventReader>(store.location));
  }
  return absl::InternalError("unknown store backend");
}

}  // namespace abgate::events
