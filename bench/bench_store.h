// What the event-store benches share: a clock helper, percentiles, their timestamps, and the
// store they run on (a SQLite file in a temporary folder of their own, or the one given).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "events/event_reader.h"
#include "events/event_sink.h"

namespace abgate::bench {

inline double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The value at quantile q of v (0 when empty).
inline double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Where the benches' events start, whatever the day they run.
constexpr int64_t kStartUs = 1'790'000'000'000'000;

struct BenchStore {
  std::filesystem::path dir;  // the bench's own temporary folder (holds the store when none was given)
  std::string uri;            // as opened
  bool sqlite = false;
  std::string db;             // the SQLite file, for the sqlite3 anchor
  std::unique_ptr<events::EventSink> sink;
  std::unique_ptr<events::EventReader> reader;
};

// `given`: "" for a new SQLite file in a temporary folder named after `name` and the pid,
// "sqlite:PATH", or a postgresql:// URI.
inline absl::StatusOr<BenchStore> OpenBenchStore(const std::string& name, const std::string& given) {
  BenchStore s;
  s.dir = std::filesystem::temp_directory_path() / ("abgate_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(s.dir);
  s.sqlite = given.empty() || given.starts_with("sqlite:");
  s.db = given.empty() ? (s.dir / "events.db").string() : given.starts_with("sqlite:") ? given.substr(7) : "";
  s.uri = given.empty() ? "sqlite:" + s.db : given;
  auto sink = events::OpenEventSink(s.uri);
  if (!sink.ok()) return sink.status();
  auto reader = events::OpenEventReader(s.uri);
  if (!reader.ok()) return reader.status();
  s.sink = *std::move(sink);
  s.reader = *std::move(reader);
  return s;
}

}  // namespace abgate::bench
