// hugepte/arch/x86_tlb.hpp - the x86-64 invalidation sink: what a TlbFlush means on this CPU.
//
// Intel SDM vol. 3A §4.10.4: INVLPG drops the TLB entries for one linear address (whatever
// page size maps it) and every paging-structure-cache entry of the current PCID, whatever its
// address; a write to CR3 drops every non-global entry, toggling CR4.PGE every entry. Stores to
// paging structures are seen by later walks without any instruction, so publish() is empty.
// Only when compiled for x86-64 (the header is empty elsewhere). Freestanding.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/tlb.hpp"

#if defined(__x86_64__)
namespace hugepte {

struct X86Tlb {
  // Above this many INVLPGs one full flush is cheaper (Linux: tlb_single_page_flush_ceiling).
  static constexpr uint64_t kMaxSingle = 33;

  uint64_t flushes = 0;      // flush() calls
  uint64_t full = 0;         // of which ended in a full flush
  uint64_t invlpg = 0;       // INVLPG instructions issued

  void flush(const TlbFlush& f) {
    ++flushes;
    const uint64_t len = f.end - f.start;  // end 0: the top of the address space
    // One INVLPG per entry of the range: a leaf is dropped by any address inside it. A table
    // going away (leaf_only false) leaves leaves of any size under it, but the paging-structure
    // caches go with any INVLPG; the leaves are dropped one page at a time too.
    const unsigned step = f.leaf_only ? f.stride_shift : 12;
    if ((len >> step) > kMaxSingle || len == 0) {
      ++full;
      flush_all_now();
      return;
    }
    for (uint64_t off = 0; off < len; off += bit(step)) {
      asm volatile("invlpg (%0)" : : "r"(f.start + off) : "memory");
      ++invlpg;
    }
  }
  void flush_all() {
    ++flushes;
    ++full;
    flush_all_now();
  }
  void publish() {}  // x86 walks see stores to the tables; invalid -> valid needs nothing

 private:
  static void flush_all_now() {
    uint64_t cr4;
    asm volatile("mov %%cr4, %0" : "=r"(cr4));
    if (cr4 & bit(7)) {  // CR4.PGE: global translations survive a CR3 write
      asm volatile("mov %0, %%cr4" : : "r"(cr4 & ~bit(7)) : "memory");
      asm volatile("mov %0, %%cr4" : : "r"(cr4) : "memory");
    } else {
      uint64_t cr3;
      asm volatile("mov %%cr3, %0" : "=r"(cr3));
      asm volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
    }
  }
};
static_assert(TlbSink<X86Tlb>);

}  // namespace hugepte
#endif
