// flat_env.hpp - the benchmarks' environment: one contiguous block of host memory standing for
// physical memory, so that table_ptr() is a single add, as in a kernel's linear map. The
// hand-written baselines address the same block the same way, so both sides pay the same.
#pragma once

#include <cstdlib>
#include <cstring>
#include <vector>

#include "hugepte/entry.hpp"

namespace hugepte::bench {

template <unsigned PageShift>
class FlatEnv {
 public:
  static constexpr unsigned page_shift = PageShift;
  static constexpr u64 kPage = u64{1} << PageShift;

  explicit FlatEnv(u64 bytes) : size_(bytes) {
    mem_ = static_cast<unsigned char*>(std::aligned_alloc(kPage, bytes));
    if (!mem_) std::abort();
  }
  ~FlatEnv() { std::free(mem_); }
  FlatEnv(const FlatEnv&) = delete;
  FlatEnv& operator=(const FlatEnv&) = delete;

  Result<u64> alloc_table(unsigned) {
    u64 pa;
    if (!free_.empty()) {
      pa = free_.back();
      free_.pop_back();
    } else {
      if (next_ + kPage > size_) return Err::enomem;
      pa = next_;
      next_ += kPage;
    }
    std::memset(mem_ + pa, 0, kPage);
    return pa;
  }
  void free_table(u64 pa, unsigned) { free_.push_back(pa); }
  u64* table_ptr(u64 pa) { return reinterpret_cast<u64*>(mem_ + pa); }
  unsigned char* base() { return mem_; }
  void reset() {
    next_ = 0;
    free_.clear();
  }

 private:
  unsigned char* mem_;
  u64 size_;
  u64 next_ = 0;
  std::vector<u64> free_;
};

}  // namespace hugepte::bench
