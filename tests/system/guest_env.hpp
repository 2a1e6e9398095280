// guest_env.hpp - the library's environment inside a bare-metal guest: table pages from guest RAM
// (identity mapped, so a physical address is its own pointer) and a TLB sink that executes the
// architecture's real invalidation instructions through the harness (guest.hpp).
#pragma once

#include "guest.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"

namespace hpt::guest {

// Bump allocator over [base, end) with a free list threaded through freed pages. Counts what it
// hands out so tests can check that nothing leaks.
template <unsigned PageShift>
class GuestEnv {
 public:
  static constexpr unsigned page_shift = PageShift;

  GuestEnv(u64 base, u64 end) : next_(align_up(base)), end_(end) {}

  hugepte::Result<u64> alloc_table(unsigned) {
    u64 pa;
    if (free_) {
      pa = free_;
      free_ = *reinterpret_cast<u64*>(pa);
    } else {
      if (next_ + kPage > end_) return hugepte::Err::enomem;
      pa = next_;
      next_ += kPage;
    }
    auto* p = reinterpret_cast<volatile u64*>(pa);
    for (u64 i = 0; i < kPage / 8; ++i) p[i] = 0;
    ++live_;
    return pa;
  }
  void free_table(u64 pa, unsigned) {
    *reinterpret_cast<u64*>(pa) = free_;
    free_ = pa;
    --live_;
  }
  u64* table_ptr(u64 pa) { return reinterpret_cast<u64*>(pa); }

  u64 live() const { return live_; }

 private:
  static constexpr u64 kPage = u64{1} << PageShift;
  static constexpr u64 align_up(u64 v) { return (v + kPage - 1) & ~(kPage - 1); }
  u64 next_, end_;
  u64 free_ = 0;
  u64 live_ = 0;
};

// The real instructions, one per stride step of the range (arm64 TLBI VAE1IS / riscv sfence.vma
// per page; x86 invlpg per page), or a full flush for very large ranges and walk-cache flushes.
struct GuestTlb {
  unsigned flushes = 0;
  void flush(const hugepte::TlbFlush& f) {
    ++flushes;
    u64 stride = u64{1} << f.stride_shift;
    if (!f.leaf_only || f.end - f.start > 64 * stride) {
      tlb_flush_all();
      return;
    }
    for (u64 va = f.start; va - f.start < f.end - f.start; va += stride) tlb_flush_va(va);
  }
  void flush_all() {
    ++flushes;
    tlb_flush_all();
  }
  void publish() { tlb_flush_all(); }  // make fresh entries visible to the walker (DSB/ISB etc.)
};
static_assert(hugepte::TlbSink<GuestTlb>);

// Lets the MMU walk a table the library built: one slot of the harness' live root (the one for
// kVa, far above the identity map) is pointed at what the library's root holds there. A leaf in
// the library's root itself lives in a page the MMU does not walk, so refresh() after changing
// it; the destructor unlinks the slot before the library's tables go away.
template <hugepte::Format F, class Env>
class Graft {
 public:
  static constexpr u64 kVa = u64{1} << (F::va_bits - 2);

  explicit Graft(const hugepte::PageTable<F, Env>& pt) : pt_(&pt) {}
  Graft(const Graft&) = delete;
  Graft& operator=(const Graft&) = delete;
  ~Graft() {
    live_slot() = 0;
    tlb_flush_all();
  }
  void refresh() {
    live_slot() = hugepte::PageTable<F, Env>::load(pt_->root_table() + index());
    tlb_flush_all();
  }

 private:
  static unsigned index() { return hugepte::index_of<F>(kVa, F::levels - 1); }
  static volatile u64& live_slot() { return reinterpret_cast<volatile u64*>(current_root())[index()]; }
  const hugepte::PageTable<F, Env>* pt_;
};

}  // namespace hpt::guest
