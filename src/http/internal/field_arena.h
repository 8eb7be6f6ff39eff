// FieldArena: a bump allocator over a fixed block for Beast's header fields, after Beast's
// http_server_fast example (fields_alloc). Beast allocates every header field of a parsed
// message separately; one request's or reply's fields die together when its parser is reset, so
// they are carved from one block per connection (or exchange) instead of a malloc and a free
// each (the largest source of heap calls on the request path in profiles, issue 16).
// Allocations that do not fit fall back to the heap. Not thread-safe: one parser at a time,
// on its connection's loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace abgate::http::internal {

template <size_t kBytes>
class FieldArena {
 public:
  FieldArena() = default;
  FieldArena(const FieldArena&) = delete;
  FieldArena& operator=(const FieldArena&) = delete;

  void* Allocate(size_t n, size_t align) {
    const size_t start = (used_ + align - 1) & ~(align - 1);
    if (start + n <= kBytes) {
      used_ = start + n;
      return block_ + start;
    }
    return ::operator new(n);
  }
  void Deallocate(void* p) {
    // The block's memory is reclaimed all at once by Reset.
    if (!Owns(p)) ::operator delete(p);
  }
  // Call only once everything allocated from the block has been deallocated (the parser using
  // it is destroyed).
  void Reset() { used_ = 0; }

 private:
  bool Owns(void* p) const {
    const auto a = reinterpret_cast<uintptr_t>(p);
    const auto b = reinterpret_cast<uintptr_t>(block_);
    return a >= b && a < b + kBytes;
  }

  alignas(std::max_align_t) unsigned char block_[kBytes];
  size_t used_ = 0;
};

// A std allocator over a FieldArena (what basic_fields<Allocator> rebinds for its elements).
template <class T, size_t kBytes>
class FieldAllocator {
 public:
  using value_type = T;
  template <class U>
  struct rebind {
    using other = FieldAllocator<U, kBytes>;
  };

  explicit FieldAllocator(FieldArena<kBytes>& arena) noexcept : arena_(&arena) {}
  template <class U>
  FieldAllocator(const FieldAllocator<U, kBytes>& other) noexcept : arena_(other.arena()) {}

  T* allocate(size_t n) { return static_cast<T*>(arena_->Allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T* p, size_t) noexcept { arena_->Deallocate(p); }
  FieldArena<kBytes>* arena() const noexcept { return arena_; }

  template <class U>
  bool operator==(const FieldAllocator<U, kBytes>& other) const noexcept {
    return arena_ == other.arena();
  }
  template <class U>
  bool operator!=(const FieldAllocator<U, kBytes>& other) const noexcept {
    return arena_ != other.arena();
  }

 private:
  FieldArena<kBytes>* arena_;
};

}  // namespace abgate::http::internal
