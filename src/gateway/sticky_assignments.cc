#include "gateway/sticky_assignments.h"

#include "assign/hash.h"

namespace abgate::gateway {

std::string StickyAssignments::Key(std::string_view experiment, std::string_view unit) {
  std::string key;
  key.reserve(experiment.size() + unit.size() + 1);
  key.append(experiment);
  key.push_back('\x1f');  // cannot appear in an experiment name
  key.append(unit);
  return key;
}

StickyAssignments::Shard& StickyAssignments::ShardFor(const std::string& key) const {
  return shards_[assign::Fnv1a32(key) % shards_.size()];
}

std::optional<StoredAssignment> StickyAssignments::Lookup(std::string_view experiment, std::string_view unit) const {
  const std::string key = Key(experiment, unit);
  Shard& shard = ShardFor(key);
  common::MutexLock lock(shard.mu);
  auto it = shard.map.find(key);
  if (it == shard.map.end()) return std::nullopt;
  return it->second;
}

void StickyAssignments::Put(std::string_view experiment, std::string_view unit, StoredAssignment a) {
  std::string key = Key(experiment, unit);
  Shard& shard = ShardFor(key);
  common::MutexLock lock(shard.mu);
  auto [it, inserted] = shard.map.insert_or_assign(std::move(key), std::move(a));
  if (inserted) size_.fetch_add(1, std::memory_order_relaxed);
}

std::optional<StoredAssignment> StickyAssignments::Remove(std::string_view experiment, std::string_view unit) {
  const std::string key = Key(experiment, unit);
  Shard& shard = ShardFor(key);
  common::MutexLock lock(shard.mu);
  auto it = shard.map.find(key);
  if (it == shard.map.end()) return std::nullopt;
  StoredAssignment out = std::move(it->second);
  shard.map.erase(it);
  size_.fetch_sub(1, std::memory_order_relaxed);
  return out;
}

}  // namespace abgate::gateway
