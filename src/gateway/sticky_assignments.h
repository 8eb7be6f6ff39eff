// StickyAssignments: the in-memory view of the `assignments` table, so the request path never
// waits for the database. Loaded from the event store at startup (and when an experiment is
// created); every change is written through the event writer. Thread-safe: 16 shards, each a
// mutex and a hash map, so concurrent requests rarely contend.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"

namespace abgate::gateway {

struct StoredAssignment {
  std::string arm;
  std::string source;  // "hash", "override" or "bulk"
  int64_t bucket_version = 0;
  int64_t assigned_at_us = 0;
};

class StickyAssignments {
 public:
  std::optional<StoredAssignment> Lookup(std::string_view experiment, std::string_view unit) const;
  void Put(std::string_view experiment, std::string_view unit, StoredAssignment a);
  // Returns the removed entry, if there was one.
  std::optional<StoredAssignment> Remove(std::string_view experiment, std::string_view unit);
  // Entries held; a request path with no stored assignments at all skips the lookup.
  bool empty() const { return size_.load(std::memory_order_relaxed) == 0; }

 private:
  struct Shard {
    mutable common::Mutex mu;
    absl::flat_hash_map<std::string, StoredAssignment> map ABSL_GUARDED_BY(mu);
  };
  static std::string Key(std::string_view experiment, std::string_view unit);
  Shard& ShardFor(const std::string& key) const;
  mutable std::array<Shard, 16> shards_;
  std::atomic<int64_t> size_{0};
};

}  // namespace abgate::gateway
