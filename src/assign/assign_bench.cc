// Assignments per second per core for 16-byte unit ids (goal: >= 20M/s).
#include <string>
#include <vector>

#include "assign/allocation.h"
#include "assign/hash.h"
#include "benchmark/benchmark.h"
#include "common/random.h"

namespace {

std::vector<std::string> MakeIds(size_t n) {
  abgate::common::Xoshiro256 rng(42);
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::vector<std::string> ids(n);
  for (auto& id : ids) {
    id.resize(16);
    for (auto& c : id) c = kAlnum[rng() % 36];
  }
  return ids;
}

void BM_AssignUserHash16ByteIds(benchmark::State& state) {
  const auto ids = MakeIds(4096);
  const abgate::assign::SeededHasher hasher("hyatt_booking_ab");
  const auto alloc = *abgate::assign::Allocation::Create({80, 20}, 1.0);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(alloc.ArmForBucket(hasher.Bucket(ids[i++ & 4095]), 0));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AssignUserHash16ByteIds);

void BM_HashV2Only(benchmark::State& state) {
  const auto ids = MakeIds(4096);
  const abgate::assign::SeededHasher hasher("hyatt_booking_ab");
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(hasher.Bucket(ids[i++ & 4095]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HashV2Only);

}  // namespace
