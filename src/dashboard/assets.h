// The dashboard's static files (src/dashboard/assets/), compiled into the binary by
// cmake/embed_assets.cmake, so the page works offline and needs no files at run time.
// Immutable data: thread-safe.
#pragma once

#include <span>
#include <string_view>

namespace abgate::dashboard {

struct Asset {
  std::string_view name;          // file name, e.g. "app.js"
  std::string_view content_type;  // from the extension
  std::string_view body;
};

// Every embedded file, in the order CMake listed them.
std::span<const Asset> Assets();

// The file named `name`, or nullptr.
inline const Asset* FindAsset(std::string_view name) {
  for (const Asset& a : Assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace abgate::dashboard
