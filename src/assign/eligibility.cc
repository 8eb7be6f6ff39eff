#include "assign/eligibility.h"

namespace abgate::assign {

bool InNamespace(const NamespaceRange& ns, std::string_view unit) {
  // GrowthBook hash v1 concatenates value + seed; the seed here is "__" + name. Feeding the
  // pieces in order is the same FNV-1a as hashing the concatenated string.
  uint32_t state = Fnv1a32Update(Fnv1a32(unit), "__");
  state = Fnv1a32Update(state, ns.name);
  const double n = (state % 1000u) / 1000.0;
  return n >= ns.low && n < ns.high;
}

}  // namespace abgate::assign
