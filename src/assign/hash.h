// GrowthBook-compatible hashing (hash versions 1 and 2), bit-exact with the JavaScript SDK.
//
// GrowthBook hashes the UTF-16 code units of a JavaScript string with FNV-1a 32-bit. abgate's
// strings are UTF-8, so the hash decodes UTF-8 to UTF-16 code units on the fly (a code point
// above U+FFFF becomes a surrogate pair, exactly as `charCodeAt` sees it). Malformed UTF-8
// decodes to U+FFFD per maximal subpart, as the WHATWG TextDecoder does, so every byte string
// has a defined hash; the gateway rejects malformed UTF-8 before it gets here.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace abgate::assign {

inline constexpr uint32_t kFnvOffsetBasis = 0x811C9DC5u;
inline constexpr uint32_t kFnvPrime = 0x01000193u;

// FNV-1a 32 state after feeding the UTF-16 code units of `utf8` into `state`.
uint32_t Fnv1a32Update(uint32_t state, std::string_view utf8);

// FNV-1a 32 of the UTF-16 code units of `utf8` (GrowthBook's `hashFnv32a`).
inline uint32_t Fnv1a32(std::string_view utf8) { return Fnv1a32Update(kFnvOffsetBasis, utf8); }

// GrowthBook hash version 2 given the FNV state after the seed (see SeededHasher):
// fnv1a32(decimal(fnv1a32(seed + unit))) % 10000, an integer bucket in [0, 10000).
uint32_t BucketV2FromSeedState(uint32_t seed_state, std::string_view unit);

// GrowthBook `hash(seed, value, 2)`: bucket / 10000 in [0, 1).
double HashV2(std::string_view seed, std::string_view unit);
// GrowthBook `hash(seed, value, 1)`: (fnv1a32(value + seed) % 1000) / 1000. Kept for the
// published vectors; abgate assigns with version 2 only.
double HashV1(std::string_view seed, std::string_view unit);

// Hashes many units under one seed; caches the FNV state after the seed, which is where the
// per-experiment salt enters. Copyable, immutable after construction.
class SeededHasher {
 public:
  explicit SeededHasher(std::string_view seed) : seed_state_(Fnv1a32(seed)) {}
  // Integer bucket in [0, 10000); HashV2(seed, unit) == Bucket(unit) / 10000.0.
  uint32_t Bucket(std::string_view unit) const { return BucketV2FromSeedState(seed_state_, unit); }

 private:
  uint32_t seed_state_;
};

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, max U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace abgate::assign
