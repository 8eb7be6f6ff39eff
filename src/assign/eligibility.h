// Who may enter an experiment at all, before its arms are chosen: GrowthBook namespaces (mutual
// exclusion between experiments) and the global holdout. Pure and thread-safe; values are
// immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "assign/hash.h"

namespace abgate::assign {

// A slice [low, high) of a namespace. Experiments whose slices of one namespace do not overlap
// never share a unit.
struct NamespaceRange {
  std::string name;
  double low = 0;
  double high = 1;
};

// GrowthBook's `inNamespace(unit, [name, low, high])`: hash("__" + name, unit, version 1) — the
// FNV-1a of unit + "__" + name, mod 1000, over 1000 — is in [low, high). Bit-exact with the SDKs.
bool InNamespace(const NamespaceRange& ns, std::string_view unit);

// The global holdout: a unit is held out of every experiment when its hash-v2 bucket under
// `seed` (independent of every experiment's seed) is below percent * 100, so the same units are
// held out everywhere and after every restart.
class Holdout {
 public:
  Holdout() = default;  // holds no one
  Holdout(std::string_view seed, double percent)
      : hasher_(seed), buckets_(static_cast<uint32_t>(percent * 100 + 0.5)) {}
  bool active() const { return buckets_ > 0; }
  bool Contains(std::string_view unit) const { return buckets_ > 0 && hasher_.Bucket(unit) < buckets_; }

 private:
  SeededHasher hasher_{""};
  uint32_t buckets_ = 0;  // of 10000
};

}  // namespace abgate::assign
