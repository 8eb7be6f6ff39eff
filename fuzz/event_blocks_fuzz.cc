// Event blocks as read back from a store: a damaged blob is refused, never read out of bounds.
// The first byte picks the exposure or the outcome decoder; every accessor of a parsed block
// is read.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "events/event_blocks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view blob(reinterpret_cast<const char*>(data) + 1, size - 1);
  volatile uint64_t sink = 0;
  if (data[0] & 1) {
    auto b = abgate::events::OutcomeBlock::Parse(blob);
    if (!b.ok()) return 0;
    for (size_t i = 0; i < b->size(); ++i) {
      sink = sink + b->key(i) + static_cast<uint64_t>(b->ts(i)) + (b->value(i) > 0) + b->by_request(i);
      sink = sink + b->metrics()[b->metric(i)].size();
    }
  } else {
    auto b = abgate::events::ExposureBlock::Parse(blob);
    if (!b.ok()) return 0;
    for (size_t i = 0; i < b->size(); ++i) {
      sink = sink + b->unit_key(i) + b->request_key(i) + static_cast<uint64_t>(b->ts(i)) + b->has_unit(i) + b->scored(i);
      sink = sink + static_cast<uint64_t>(b->score(i) > 0) + b->arms()[b->arm(i)].name.size();
    }
  }
  return 0;
}
