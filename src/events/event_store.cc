// The event-store factory: the only file that knows every backend.
#include "common/status_macros.h"
#include "common/strings.h"
#include "events/postgres_event_sink.h"
#include "events/sqlite_event_sink.h"

namespace abgate::events {

absl::StatusOr<std::unique_ptr<EventSink>> OpenEventSink(const std::string& uri) {
  if (uri.starts_with("sqlite:")) {
    ABGATE_ASSIGN_OR_RETURN(auto sink, SqliteEventSink::Open(uri.substr(7)));
    return std::unique_ptr<EventSink>(std::move(sink));
  }
  if (uri.starts_with("postgresql://") || uri.starts_with("postgres://")) {
    ABGATE_ASSIGN_OR_RETURN(auto sink, PostgresEventSink::Open(uri));
    return std::unique_ptr<EventSink>(std::move(sink));
  }
  return absl::InvalidArgumentError(
      StrCat("unsupported event store '", uri, "' (use sqlite:PATH or postgresql://user@host:port/db)"));
}

}  // namespace abgate::events
