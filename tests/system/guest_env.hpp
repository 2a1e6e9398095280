// guest_env.hpp - the library's environment inside a bare-metal guest: table pages from guest RAM
// (identity mapped, so a physical address is its own pointer), folio memory for the mm model, and
// the architecture's own TLB sink.
#pragma once

#include "guest.hpp"
#include "guest_format.hpp"
#if defined(__x86_64__)
#include "hugepte/arch/x86_tlb.hpp"
#elif defined(__aarch64__)
#include "hugepte/arch/arm64_tlb.hpp"
#elif defined(__riscv)
#include "hugepte/arch/riscv_tlb.hpp"
#endif
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

  GuestEnv(uint64_t base, uint64_t end) : next_(align_up(base)), end_(end) {}

  hugepte::Result<uint64_t> alloc_table(unsigned) {
    uint64_t pa;
    if (free_) {
      pa = free_;
      free_ = *reinterpret_cast<uint64_t*>(pa);
    } else {
      if (next_ + kPage > end_) return hugepte::Err::enomem;
      pa = next_;
      next_ += kPage;
    }
    auto* p = reinterpret_cast<volatile uint64_t*>(pa);
    for (uint64_t i = 0; i < kPage / 8; ++i) p[i] = 0;
    ++live_;
    return pa;
  }
  void free_table(uint64_t pa, unsigned) {
    *reinterpret_cast<uint64_t*>(pa) = free_;
    free_ = pa;
    --live_;
  }
  uint64_t* table_ptr(uint64_t pa) { return reinterpret_cast<uint64_t*>(pa); }

  uint64_t live() const { return live_; }

 private:
  static constexpr uint64_t kPage = uint64_t{1} << PageShift;
  static constexpr uint64_t align_up(uint64_t v) { return (v + kPage - 1) & ~(kPage - 1); }
  uint64_t next_, end_;
  uint64_t free_ = 0;
  uint64_t live_ = 0;
};

// Bulk data movement over identity-mapped RAM, with each architecture's fastest plain way (the
// emulator runs these over whole 1 GiB folios): x86 rep stos / rep movs, arm64 DC ZVA, otherwise
// unrolled volatile 8-byte stores (volatile: the compiler must not turn them into calls to the
// bytewise memset/memcpy of libc.cpp).
inline void ram_zero(uint64_t pa, uint64_t len) {
#if defined(__x86_64__)
  if (((pa | len) & 7) == 0) {
    uint64_t n = len / 8;
    asm volatile("rep stosq" : "+D"(pa), "+c"(n) : "a"(uint64_t{0}) : "memory");
    return;
  }
#elif defined(__aarch64__)
  uint64_t dczid;
  asm volatile("mrs %0, dczid_el0" : "=r"(dczid));
  const uint64_t block = uint64_t{4} << (dczid & 0xf);
  if (!(dczid & 0x10) && ((pa | len) & (block - 1)) == 0) {  // DZP clear: DC ZVA allowed
    for (uint64_t p = pa; p < pa + len; p += block)
      asm volatile("dc zva, %0" : : "r"(p) : "memory");
    asm volatile("dsb ish" ::: "memory");
    return;
  }
#endif
  auto* w = reinterpret_cast<volatile uint64_t*>(pa);
  uint64_t n = len / 8, i = 0;
  for (; i + 8 <= n; i += 8) {
    w[i] = 0;
    w[i + 1] = 0;
    w[i + 2] = 0;
    w[i + 3] = 0;
    w[i + 4] = 0;
    w[i + 5] = 0;
    w[i + 6] = 0;
    w[i + 7] = 0;
  }
  for (; i < n; ++i) w[i] = 0;
  for (uint64_t b = n * 8; b < len; ++b) reinterpret_cast<volatile unsigned char*>(pa)[b] = 0;
}

inline void ram_copy(uint64_t dst, uint64_t src, uint64_t len) {
#if defined(__x86_64__)
  if (((dst | src | len) & 7) == 0) {
    uint64_t n = len / 8;
    asm volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return;
  }
#endif
  if (((dst | src | len) & 7) == 0) {
    auto* d = reinterpret_cast<volatile uint64_t*>(dst);
    const auto* s = reinterpret_cast<const volatile uint64_t*>(src);
    for (uint64_t i = 0; i < len / 8; ++i) d[i] = s[i];
    return;
  }
  auto* d = reinterpret_cast<volatile unsigned char*>(dst);
  const auto* s = reinterpret_cast<const volatile unsigned char*>(src);
  for (uint64_t i = 0; i < len; ++i) d[i] = s[i];
}

// The mm layer's FolioEnv (hugepte/mm/folio.hpp) over guest RAM: folios aligned to their size
// from up to two RAM regions (free RAM, then the harness' high RAM), small ones (up to 2 MiB)
// bumped up from a region's bottom and larger ones down from its top, so neither starves the
// other; a free list per size; really zeroed and copied. Metadata from its own bump region,
// zeroed, never reused (a case builds one of these and drops it whole). Counts what is live.
class GuestFolios {
 public:
  struct Region {
    uint64_t base = 0, end = 0;
  };
  GuestFolios(Region meta, Region a, Region b) : meta_next_(meta.base), meta_end_(meta.end) {
    lo_[0] = a.base, hi_[0] = a.end;
    lo_[1] = b.base, hi_[1] = b.end;
  }

  hugepte::Result<uint64_t> alloc_folio(unsigned shift) {
    if (shift >= 64) return hugepte::Err::einval;
    if (uint64_t pa = free_[shift]) {
      free_[shift] = *reinterpret_cast<volatile uint64_t*>(pa);
      ++live_;
      return pa;
    }
    for (unsigned r = 0; r < 2; ++r) {
      uint64_t pa = 0;
      if (!fits(r, shift, pa)) continue;
      if (shift <= kSmallShift) lo_[r] = pa + (uint64_t{1} << shift);
      else hi_[r] = pa;
      ++live_;
      return pa;
    }
    return hugepte::Err::enomem;
  }
  void free_folio(uint64_t pa, unsigned shift) {
    *reinterpret_cast<volatile uint64_t*>(pa) = free_[shift];
    free_[shift] = pa;
    --live_;
  }
  void zero(uint64_t pa, uint64_t n) { ram_zero(pa, n); }
  void copy_in(uint64_t pa, const void* src, uint64_t n) {
    ram_copy(pa, reinterpret_cast<uint64_t>(src), n);
  }
  void copy(uint64_t dst, uint64_t src, uint64_t n) { ram_copy(dst, src, n); }
  void* alloc_meta(uint64_t n) {
    const uint64_t p = (meta_next_ + 7) & ~uint64_t{7};
    if (p > meta_end_ || meta_end_ - p < n) return nullptr;
    meta_next_ = p + n;
    ram_zero(p, (n + 7) & ~uint64_t{7});
    return reinterpret_cast<void*>(p);
  }
  void free_meta(void*, uint64_t) {}

  uint64_t live() const { return live_; }
  // Whether a folio of 1 << shift can still be had.
  bool room_for(unsigned shift) const {
    uint64_t pa = 0;
    return shift < 64 && (free_[shift] != 0 || fits(0, shift, pa) || fits(1, shift, pa));
  }

 private:
  static constexpr unsigned kSmallShift = 21;
  bool fits(unsigned r, unsigned shift, uint64_t& pa) const {
    const uint64_t size = uint64_t{1} << shift;
    if (hi_[r] < lo_[r] || hi_[r] - lo_[r] < size) return false;
    if (shift <= kSmallShift) {
      pa = (lo_[r] + size - 1) & ~(size - 1);
      return pa >= lo_[r] && pa <= hi_[r] && hi_[r] - pa >= size;
    }
    pa = (hi_[r] - size) & ~(size - 1);
    return pa >= lo_[r];
  }

  uint64_t lo_[2] = {}, hi_[2] = {};
  uint64_t free_[64] = {};
  uint64_t meta_next_, meta_end_;
  uint64_t live_ = 0;
};

// The invalidation sink is the architecture's own (arch/*/include/hugepte/arch/*_tlb.hpp):
// x86 INVLPG / CR3 or CR4.PGE, arm64 TLBI VALE1IS or VAE1IS with the level hint plus DSB/ISB,
// riscv SFENCE.VMA by address. Its publish() is not a flush, so a missing invalidation shows.
#if defined(__x86_64__)
using GuestTlb = hugepte::X86Tlb;
#elif defined(__aarch64__)
using GuestTlb = hugepte::Arm64Tlb<GuestFormat>;
#elif defined(__riscv)
using GuestTlb = hugepte::RiscvTlb;
#endif
static_assert(hugepte::TlbSink<GuestTlb>);

// Lets the MMU walk a table the library built: one slot of the harness' live root (the one for
// kVa, far above the identity map) is pointed at what the library's root holds there. A leaf in
// the library's root itself lives in a page the MMU does not walk, so refresh() after changing
// it; the destructor unlinks the slot before the library's tables go away.
template <hugepte::Format F, class Env>
class Graft {
 public:
  static constexpr uint64_t kVa = uint64_t{1} << (F::va_bits - 2);

  explicit Graft(const hugepte::PageTable<F, Env>& pt) : pt_(&pt) {}
  Graft(const Graft&) = delete;
  Graft& operator=(const Graft&) = delete;
  ~Graft() {
    live_slot() = 0;
    tlb_flush_all();
  }
  // Only a changed slot is written and invalidated, so that what the library's own sink does
  // (or fails to do) below the root is what the MMU sees.
  void refresh() {
    const uint64_t now = hugepte::PageTable<F, Env>::load(pt_->root_table() + index());
    if (live_slot() == now) return;
    live_slot() = now;
    tlb_flush_all();
  }

 private:
  static unsigned index() { return hugepte::index_of<F>(kVa, F::levels - 1); }
  static volatile uint64_t& live_slot() {
    return reinterpret_cast<volatile uint64_t*>(current_root())[index()];
  }
  const hugepte::PageTable<F, Env>* pt_;
};

}  // namespace hpt::guest
