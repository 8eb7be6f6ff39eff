#include "assign/hash.h"

#include <charconv>

namespace abgate::assign {
namespace {

inline uint32_t Step(uint32_t state, uint32_t code_unit) { return (state ^ code_unit) * kFnvPrime; }

// Decodes one code point starting at s[i]; advances i. Returns 0xFFFD for a malformed
// sequence, consuming its maximal valid prefix (at least one byte), as TextDecoder does.
uint32_t DecodeOne(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len;
  uint32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // max U+10FFFF
  } else {
    ++i;
    return 0xFFFD;
  }
  ++i;
  for (int k = 1; k < len; ++k) {
    if (i >= s.size()) return 0xFFFD;
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < lo || b > hi) return 0xFFFD;
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
    ++i;
  }
  return cp;
}

}  // namespace

uint32_t Fnv1a32Update(uint32_t state, std::string_view utf8) {
  size_t i = 0;
  while (i < utf8.size()) {
    const auto b = static_cast<unsigned char>(utf8[i]);
    if (b < 0x80) {  // ASCII fast path: one byte is one UTF-16 code unit.
      state = Step(state, b);
      ++i;
      continue;
    }
    const uint32_t cp = DecodeOne(utf8, i);
    if (cp >= 0x10000) {
      const uint32_t v = cp - 0x10000;
      state = Step(state, 0xD800 | (v >> 10));
      state = Step(state, 0xDC00 | (v & 0x3FF));
    } else {
      state = Step(state, cp);
    }
  }
  return state;
}

uint32_t BucketV2FromSeedState(uint32_t seed_state, std::string_view unit) {
  const uint32_t inner = Fnv1a32Update(seed_state, unit);
  char digits[10];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), inner);
  (void)ec;  // 10 digits always fit a uint32.
  return Fnv1a32(std::string_view(digits, end - digits)) % 10000u;
}

double HashV2(std::string_view seed, std::string_view unit) {
  return BucketV2FromSeedState(Fnv1a32(seed), unit) / 10000.0;
}

double HashV1(std::string_view seed, std::string_view unit) {
  return (Fnv1a32Update(Fnv1a32(unit), seed) % 1000u) / 1000.0;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t start = i;
    const uint32_t cp = DecodeOne(s, i);
    // A genuine U+FFFD is 3 bytes (EF BF BD); a replacement for bad input never is.
    if (cp == 0xFFFD && !(i - start == 3 && s.substr(start, 3) == "\xEF\xBF\xBD")) return false;
  }
  return true;
}

}  // namespace abgate::assign
