// Fast non-cryptographic random numbers (xoshiro256++, seeded through SplitMix64).
// Not thread-safe: keep one generator per thread or per owner.
#pragma once

#include <cstdint>
#include <random>

namespace abgate::common {

// SplitMix64 (Steele, Lea, Flood 2014): expands one 64-bit seed into well-mixed words.
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256++ 1.0 (Blackman & Vigna, https://prng.di.unimi.it/). Satisfies
// UniformRandomBitGenerator, so it plugs into <random> distributions.
class Xoshiro256 {
 public:
  using result_type = uint64_t;
  explicit Xoshiro256(uint64_t seed) {
    for (auto& word : s_) word = SplitMix64(seed);
  }
  // Seeded from std::random_device; for request ids and request_random routing.
  static Xoshiro256 FromEntropy() {
    std::random_device rd;
    return Xoshiro256((uint64_t{rd()} << 32) ^ rd());
  }
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }

  result_type operator()() {
    const uint64_t result = Rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform double in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace abgate::common
