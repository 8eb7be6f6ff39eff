// Hash64: a stable 64-bit hash of a byte string (MurmurHash64A, Austin Appleby, public domain,
// with a fixed seed). Stable across processes, builds and machines, unlike absl::Hash, so keys
// computed by a gateway when it writes can be compared with keys computed later by a reader.
// Pure and thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace abgate::common {

inline uint64_t Hash64(std::string_view data, uint64_t seed = 0x6162676174650001ULL) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const size_t len = data.size();
  uint64_t h = seed ^ (len * m);
  const char* p = data.data();
  const char* end = p + (len & ~size_t{7});
  for (; p != end; p += 8) {
    uint64_t k;
    std::memcpy(&k, p, 8);  // little-endian hosts only (x86-64, arm64), as the reference
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const auto* tail = reinterpret_cast<const unsigned char*>(p);
  switch (len & 7) {
    case 7: h ^= uint64_t{tail[6]} << 48; [[fallthrough]];
    case 6: h ^= uint64_t{tail[5]} << 40; [[fallthrough]];
    case 5: h ^= uint64_t{tail[4]} << 32; [[fallthrough]];
    case 4: h ^= uint64_t{tail[3]} << 24; [[fallthrough]];
    case 3: h ^= uint64_t{tail[2]} << 16; [[fallthrough]];
    case 2: h ^= uint64_t{tail[1]} << 8; [[fallthrough]];
    case 1: h ^= uint64_t{tail[0]}; h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

}  // namespace abgate::common
