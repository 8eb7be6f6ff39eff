// Assignments per second per core for 16-byte unit ids (goal: >= 20M/s).
#include <string>
#include <vector>

#include "assign/allocation.h"
#include "assign/hash.h"
#include "benchmark/benchmark.h"
#include "common/random.h"

namespace {

// Ids live in one contiguous buffer, as units do in a request buffer: the benchmark measures
// the assignment, not std::string's heap layout (16 bytes exceed libstdc++'s inline capacity).
struct Ids {
  std::string storage;
  std::vector<std::string_view> views;
};

Ids MakeIds(size_t n) {
  abgate::common::Xoshiro256 rng(42);
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  Ids ids;
  ids.storage.resize(16 * n);
  for (auto& c : ids.storage) c = kAlnum[rng() % 36];
  for (size_t i = 0; i < n; ++i) ids.views.emplace_back(ids.storage.data() + 16 * i, 16);
  return ids;
}

void BM_AssignUserHash16ByteIds(benchmark::State& state) {
  const auto ids = MakeIds(4096);
  const abgate::assign::SeededHasher hasher("hyatt_booking_ab");
  const auto alloc = *abgate::assign::Allocation::Create({80, 20}, 1.0);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(alloc.ArmForBucket(hasher.Bucket(ids.views[i++ & 4095]), 0));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AssignUserHash16ByteIds);

void BM_HashV2Only(benchmark::State& state) {
  const auto ids = MakeIds(4096);
  const abgate::assign::SeededHasher hasher("hyatt_booking_ab");
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(hasher.Bucket(ids.views[i++ & 4095]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HashV2Only);

}  // namespace
