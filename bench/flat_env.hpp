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
  static constexpr uint64_t kBytes = uint64_t{1} << 32;
  static unsigned char* base() { return base_; }

  static uint64_t take(uint64_t bytes) {
    for (auto it = holes().begin(); it != holes().end(); ++it) {
      if (it->second < bytes) continue;
      uint64_t pa = it->first;
      it->first += bytes;
      it->second -= bytes;
      if (it->second == 0) holes().erase(it);
      return pa;
    }
    std::abort();
  }
  static void give(uint64_t pa, uint64_t bytes) {
    holes().emplace_back(pa, bytes);  // regions come back whole; no need to merge for reuse
  }

 private:
  static std::vector<std::pair<uint64_t, uint64_t>>& holes() {
    static std::vector<std::pair<uint64_t, uint64_t>> h{{0, kBytes}};
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
  static constexpr uint64_t kPage = uint64_t{1} << PageShift;

  explicit FlatEnv(uint64_t bytes) : first_(PhysMem::take(bytes)), size_(bytes) {
    std::memset(mem(first_), 0,
                bytes);  // fault every page in now: no benchmark measures first touch
  }
  ~FlatEnv() { PhysMem::give(first_, size_); }
  FlatEnv(const FlatEnv&) = delete;
  FlatEnv& operator=(const FlatEnv&) = delete;

  Result<uint64_t> alloc_table(unsigned) {
    uint64_t pa;
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
  void free_table(uint64_t pa, unsigned) { free_.push_back(pa); }
  uint64_t* table_ptr(uint64_t pa) { return reinterpret_cast<uint64_t*>(PhysMem::base() + pa); }
  static unsigned char* mem(uint64_t pa) { return PhysMem::base() + pa; }

  void reset() {  // every page free again (their contents stay until handed out)
    next_ = 0;
    free_.clear();
  }
  uint64_t first_pa() const { return first_; }  // the region's first page (the root, usually)
  uint64_t free_pa() const { return first_ + next_; }  // where the next new page would come from
  uint64_t end_pa() const { return first_ + size_; }

  // The allocator's state plus the contents of some pages, so that a benchmark can put a table
  // back as it was before the measured operation without rebuilding it. Pages not saved must
  // be ones the operation does not write (it may free them: freeing leaves a page as it is).
  struct Snapshot {
    uint64_t next = 0;
    std::vector<uint64_t> free;
    std::vector<std::pair<uint64_t, std::vector<unsigned char>>> pages;
  };
  Snapshot snapshot(const std::vector<uint64_t>& page_pas) const {
    Snapshot s{next_, free_, {}};
    for (uint64_t pa : page_pas)
      s.pages.emplace_back(pa, std::vector<unsigned char>(mem(pa), mem(pa) + kPage));
    return s;
  }
  void restore(const Snapshot& s) {
    next_ = s.next;
    free_ = s.free;
    for (const auto& [pa, bytes] : s.pages) std::memcpy(mem(pa), bytes.data(), kPage);
  }

 private:
  uint64_t first_;
  uint64_t size_;
  uint64_t next_ = 0;
  std::vector<uint64_t> free_;
};

}  // namespace hugepte::bench
