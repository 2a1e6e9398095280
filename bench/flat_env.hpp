// flat_env.hpp - the benchmarks' environment. One block of host memory stands for physical
// memory, and a physical address is an offset into it, so table_ptr() is one add to a global
// base, as a kernel's linear map (__va) is. Every FlatEnv takes its own region of that block,
// so several page tables can live at once. The hand-written baselines address the same block
// the same way, so both sides pay the same.
#pragma once

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "hugepte/entry.hpp"

namespace hugepte::bench {

// The simulated physical memory: reserved once (touched only where a region is in use) and
// handed out in regions, first fit.
class PhysMem {
 public:
  static constexpr u64 kBytes = u64{1} << 32;
  static unsigned char* base() { return base_; }

  static u64 take(u64 bytes) {
    for (auto it = holes().begin(); it != holes().end(); ++it) {
      if (it->second < bytes) continue;
      u64 pa = it->first;
      it->first += bytes;
      it->second -= bytes;
      if (it->second == 0) holes().erase(it);
      return pa;
    }
    std::abort();
  }
  static void give(u64 pa, u64 bytes) {
    holes().emplace_back(pa, bytes);  // regions come back whole; no need to merge for reuse
  }

 private:
  static std::vector<std::pair<u64, u64>>& holes() {
    static std::vector<std::pair<u64, u64>> h{{0, kBytes}};
    return h;
  }
  static unsigned char* map() {
    void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) std::abort();
    return static_cast<unsigned char*>(p);
  }
  static inline unsigned char* const base_ = map();
};

template <unsigned PageShift>
class FlatEnv {
 public:
  static constexpr unsigned page_shift = PageShift;
  static constexpr u64 kPage = u64{1} << PageShift;

  explicit FlatEnv(u64 bytes) : first_(PhysMem::take(bytes)), size_(bytes) {
    std::memset(mem(first_), 0, bytes);  // fault every page in now: no benchmark measures first touch
  }
  ~FlatEnv() { PhysMem::give(first_, size_); }
  FlatEnv(const FlatEnv&) = delete;
  FlatEnv& operator=(const FlatEnv&) = delete;

  Result<u64> alloc_table(unsigned) {
    u64 pa;
    if (!free_.empty()) {
      pa = free_.back();
      free_.pop_back();
    } else {
      if (next_ + kPage > size_) return Err::enomem;
      pa = first_ + next_;
      next_ += kPage;
    }
    std::memset(mem(pa), 0, kPage);
    return pa;
  }
  void free_table(u64 pa, unsigned) { free_.push_back(pa); }
  u64* table_ptr(u64 pa) { return reinterpret_cast<u64*>(PhysMem::base() + pa); }
  static unsigned char* mem(u64 pa) { return PhysMem::base() + pa; }

  void reset() {  // every page free again (their contents stay until handed out)
    next_ = 0;
    free_.clear();
  }
  u64 first_pa() const { return first_; }         // the region's first page (the root, usually)
  u64 free_pa() const { return first_ + next_; }  // where the next new page would come from
  u64 end_pa() const { return first_ + size_; }

  // The allocator's state plus the contents of some pages, so that a benchmark can put a table
  // back as it was before the measured operation without rebuilding it. Pages not saved must
  // be ones the operation does not write (it may free them: freeing leaves a page as it is).
  struct Snapshot {
    u64 next = 0;
    std::vector<u64> free;
    std::vector<std::pair<u64, std::vector<unsigned char>>> pages;
  };
  Snapshot snapshot(const std::vector<u64>& page_pas) const {
    Snapshot s{next_, free_, {}};
    for (u64 pa : page_pas) s.pages.emplace_back(pa, std::vector<unsigned char>(mem(pa), mem(pa) + kPage));
    return s;
  }
  void restore(const Snapshot& s) {
    next_ = s.next;
    free_ = s.free;
    for (const auto& [pa, bytes] : s.pages) std::memcpy(mem(pa), bytes.data(), kPage);
  }

 private:
  u64 first_;
  u64 size_;
  u64 next_ = 0;
  std::vector<u64> free_;
};

}  // namespace hugepte::bench
