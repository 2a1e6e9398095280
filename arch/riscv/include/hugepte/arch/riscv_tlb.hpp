// hugepte/arch/riscv_tlb.hpp - the riscv64 invalidation sink (S mode).
//
// Privileged spec §10.2.1 (SFENCE.VMA): with rs1 = a virtual address it orders and drops only
// the *leaf* entries for that address; table entries cached for it stay. So a leaf-only change
// is one SFENCE.VMA per entry of the range (one per page of a NAPOT group, which the hardware
// may cache per page), and a table going away takes SFENCE.VMA x0, x0. An invalid -> valid
// change needs an SFENCE.VMA too unless the hart has Svvptc: publish() is one full fence.
// Only when compiled for riscv64 (the header is empty elsewhere). Freestanding.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/tlb.hpp"

#if defined(__riscv) && __riscv_xlen == 64
namespace hugepte {

struct RiscvTlb {
  // Above this many fences one full fence is cheaper (Linux: tlb_flush_all_threshold).
  static constexpr uint64_t kMaxSingle = 64;

  uint64_t flushes = 0;     // flush() calls
  uint64_t full = 0;        // of which ended in SFENCE.VMA x0, x0
  uint64_t by_va = 0;       // SFENCE.VMA by address issued

  void flush(const TlbFlush& f) {
    ++flushes;
    const uint64_t len = f.end - f.start;
    if (!f.leaf_only || len == 0 || (len >> f.stride_shift) > kMaxSingle) {
      ++full;
      asm volatile("sfence.vma zero, zero" ::: "memory");
      return;
    }
    for (uint64_t off = 0; off < len; off += bit(f.stride_shift)) {
      asm volatile("sfence.vma %0, zero" : : "r"(f.start + off) : "memory");
      ++by_va;
    }
  }
  void flush_all() {
    ++flushes;
    ++full;
    asm volatile("sfence.vma zero, zero" ::: "memory");
  }
  void publish() { asm volatile("sfence.vma zero, zero" ::: "memory"); }
};
static_assert(TlbSink<RiscvTlb>);

}  // namespace hugepte
#endif
