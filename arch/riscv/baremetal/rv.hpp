// rv.hpp - what the riscv64 bare-metal harness (platform.cpp) shares with its own in-guest cases
// (mmu_cases.cpp): CSR access, raw Sv39/Sv48/Sv57 PTE bits, a software table walker and a page
// bump allocator. Deliberately independent of the library's riscv64 format: this is the
// harness' own, minimal reading of the privileged spec (chapter "Supervisor-Level ISA",
// sections Sv39/Sv48/Sv57, Svnapot, Svpbmt), so the library can later be checked against it.
#pragma once

#include <cstdint>

#include "guest.hpp"

#ifndef HPT_RISCV_LEVELS
#error "HPT_RISCV_LEVELS (3 = Sv39, 4 = Sv48, 5 = Sv57) comes from arch/riscv/baremetal/CMakeLists.txt"
#endif

namespace hpt::rv {

using u64 = std::uint64_t;

// --- CSRs ----------------------------------------------------------------------------------
// One accessor per CSR: the CSR name must be an assembler literal.
#define HPT_RV_CSR_ACCESSORS(name)                                         \
  inline u64 read_##name() {                                               \
    u64 v;                                                                 \
    asm volatile("csrr %0, " #name : "=r"(v));                             \
    return v;                                                              \
  }                                                                        \
  inline void write_##name(u64 v) { asm volatile("csrw " #name ", %0" ::"r"(v) : "memory"); }
HPT_RV_CSR_ACCESSORS(satp)
HPT_RV_CSR_ACCESSORS(stvec)
HPT_RV_CSR_ACCESSORS(sstatus)
HPT_RV_CSR_ACCESSORS(sie)
#undef HPT_RV_CSR_ACCESSORS

inline void sfence_vma_all() { asm volatile("sfence.vma zero, zero" ::: "memory"); }
inline void sfence_vma(u64 va) { asm volatile("sfence.vma %0, zero" ::"r"(va) : "memory"); }

// sstatus bits the harness looks at.
constexpr u64 sstatus_sie = u64{1} << 1;
constexpr u64 sstatus_spp = u64{1} << 8;
constexpr u64 sstatus_sum = u64{1} << 18;  // S-mode may load/store U pages
constexpr u64 sstatus_mxr = u64{1} << 19;  // loads from execute-only pages succeed

// satp: MODE[63:60] ASID[59:44] PPN[43:0].
constexpr unsigned satp_mode_shift = 60;
constexpr u64 satp_ppn_mask = (u64{1} << 44) - 1;
constexpr u64 satp_mode_bare = 0;
// Sv39 = 8, Sv48 = 9, Sv57 = 10: the mode number is levels + 5.
constexpr u64 satp_mode_for(unsigned levels) { return levels == 0 ? satp_mode_bare : levels + 5; }
constexpr unsigned levels_for_satp_mode(u64 mode) {
  return mode >= 8 && mode <= 10 ? static_cast<unsigned>(mode - 5) : 0;
}
constexpr const char* satp_mode_name(u64 mode) {
  return mode == 8 ? "sv39" : mode == 9 ? "sv48" : mode == 10 ? "sv57" : mode == 0 ? "bare" : "?";
}

// --- PTE -----------------------------------------------------------------------------------
constexpr unsigned page_shift = 12;
constexpr unsigned level_bits = 9;  // 512 eight-byte entries per 4 KiB table
constexpr unsigned entries_per_table = 1u << level_bits;
constexpr unsigned napot_64k_shift = 16;  // the only Svnapot size defined so far

constexpr u64 pte_v = u64{1} << 0;
constexpr u64 pte_r = u64{1} << 1;
constexpr u64 pte_w = u64{1} << 2;
constexpr u64 pte_x = u64{1} << 3;
constexpr u64 pte_u = u64{1} << 4;
constexpr u64 pte_g = u64{1} << 5;
constexpr u64 pte_a = u64{1} << 6;
constexpr u64 pte_d = u64{1} << 7;
constexpr unsigned pte_ppn_shift = 10;
constexpr u64 pte_ppn_mask = ((u64{1} << 44) - 1) << pte_ppn_shift;  // PPN[53:10]
constexpr unsigned pte_pbmt_shift = 61;                             // Svpbmt, bits 62:61
constexpr u64 pte_pbmt_mask = u64{3} << pte_pbmt_shift;
constexpr u64 pte_n = u64{1} << 63;  // Svnapot

constexpr u64 pte_rw = pte_r | pte_w;
constexpr u64 pte_rwx = pte_r | pte_w | pte_x;

// Shift of the region one entry at `level` maps (level 0 = 4 KiB PTE).
constexpr unsigned level_shift(unsigned level) { return page_shift + level_bits * level; }
constexpr unsigned va_bits(unsigned levels) { return level_shift(levels); }
constexpr unsigned index_of(u64 va, unsigned level) {
  return static_cast<unsigned>((va >> level_shift(level)) & (entries_per_table - 1));
}
constexpr u64 ppn_of(u64 pte) { return (pte & pte_ppn_mask) >> pte_ppn_shift; }
constexpr u64 pa_of(u64 pte) { return ppn_of(pte) << page_shift; }
constexpr u64 with_ppn(u64 pa) { return ((pa >> page_shift) << pte_ppn_shift) & pte_ppn_mask; }

constexpr u64 table_pte(u64 table_pa) { return with_ppn(table_pa) | pte_v; }
constexpr u64 leaf_pte(u64 pa, u64 flags) { return with_ppn(pa) | flags | pte_v; }
// One of the 16 identical PTEs of a 64 KiB Svnapot group: PPN[3:0] = 1000b encodes the size.
constexpr u64 napot_64k_pte(u64 pa64k, u64 flags) {
  return with_ppn(pa64k & ~((u64{1} << napot_64k_shift) - 1)) |
         (u64{0b1000} << pte_ppn_shift) | pte_n | flags | pte_v;
}
constexpr bool is_leaf(u64 pte) { return (pte & pte_v) && (pte & (pte_r | pte_x)); }

// Canonical for the mode: bits 63..va_bits-1 all equal.
constexpr bool canonical(u64 va, unsigned levels) {
  const unsigned top = va_bits(levels) - 1;
  const u64 high = va >> top;
  return high == 0 || high == (~u64{0} >> top);
}

inline volatile u64* slot(u64 table_pa, unsigned index) {
  return reinterpret_cast<volatile u64*>(table_pa) + index;  // tables are identity-mapped
}

// --- software walk -------------------------------------------------------------------------
// The privileged spec's translation algorithm (Sv39/48/57 + Svnapot), reading tables by PA.
struct Walk {
  bool leaf = false;        // a valid, well-formed leaf was found
  unsigned level = 0;       // level of the last entry read
  u64 pte = 0;              // that entry
  u64 pte_pa = 0;           // and where it lives
  u64 pa = 0;               // the translation (leaf only)
  const char* why = "";     // why there is no leaf
};

inline Walk walk(u64 root_pa, unsigned levels, u64 va) {
  Walk w;
  if (levels == 0) {
    w.leaf = true;  // bare: identity
    w.pa = va;
    w.pte = pte_rwx | pte_a | pte_d | pte_v;
    return w;
  }
  if (!canonical(va, levels)) {
    w.why = "non-canonical address";
    return w;
  }
  u64 table = root_pa;
  for (unsigned level = levels; level-- > 0;) {
    w.level = level;
    w.pte_pa = table + index_of(va, level) * sizeof(u64);
    const u64 pte = *slot(table, index_of(va, level));
    w.pte = pte;
    if (!(pte & pte_v)) {
      w.why = "invalid entry (V=0)";
      return w;
    }
    if ((pte & pte_w) && !(pte & pte_r)) {
      w.why = "reserved encoding W=1 R=0";
      return w;
    }
    if ((pte & pte_pbmt_mask) == pte_pbmt_mask) {
      w.why = "reserved PBMT value 3";
      return w;
    }
    if (!is_leaf(pte)) {
      if (pte & (pte_a | pte_d | pte_u | pte_n | pte_pbmt_mask)) {
        w.why = "non-leaf with A/D/U/N/PBMT set";
        return w;
      }
      if (level == 0) {
        w.why = "table pointer at level 0";
        return w;
      }
      table = pa_of(pte);
      continue;
    }
    const u64 ppn = ppn_of(pte);
    if (pte & pte_n) {
      if (level != 0 || (ppn & 0xf) != 0b1000) {
        w.why = "reserved NAPOT encoding";
        return w;
      }
      const u64 napot_mask = (u64{1} << napot_64k_shift) - 1;
      w.pa = ((ppn << page_shift) & ~napot_mask) | (va & napot_mask);
    } else {
      const u64 low = (u64{1} << (level_shift(level) - page_shift)) - 1;
      if (ppn & low) {
        w.why = "misaligned superpage";
        return w;
      }
      w.pa = (ppn << page_shift) | (va & ((u64{1} << level_shift(level)) - 1));
    }
    w.leaf = true;
    return w;
  }
  return w;
}

// Would a supervisor access of `kind` be allowed by this leaf (ignoring A/D)?
inline bool leaf_permits(u64 pte, guest::Access kind, u64 sstatus) {
  if (pte & pte_u) {
    if (kind == guest::Access::exec || !(sstatus & sstatus_sum)) return false;
  }
  switch (kind) {
    case guest::Access::read:
      return (pte & pte_r) || ((pte & pte_x) && (sstatus & sstatus_mxr));
    case guest::Access::write: return (pte & pte_w) != 0;
    case guest::Access::exec: return (pte & pte_x) != 0;
  }
  return false;
}

// --- page bump allocator -------------------------------------------------------------------
struct PageBump {
  u64 next = 0;
  u64 end = 0;
  // A zeroed 4 KiB page, or 0 when exhausted.
  u64 page() {
    if (next + (u64{1} << page_shift) > end) return 0;
    const u64 pa = next;
    next += u64{1} << page_shift;
    for (unsigned i = 0; i < entries_per_table; ++i) *slot(pa, i) = 0;
    return pa;
  }
};

// Install `pte` as the entry for `va` at `level`, creating tables on the way down.
// Returns the entry's physical address, or 0 if a table page could not be had or a leaf
// already covers `va` above `level`.
inline u64 map(u64 root_pa, unsigned levels, u64 va, unsigned level, u64 pte, PageBump& alloc) {
  u64 table = root_pa;
  for (unsigned l = levels - 1; l > level; --l) {
    volatile u64* e = slot(table, index_of(va, l));
    if (!(*e & pte_v)) {
      const u64 next = alloc.page();
      if (!next) return 0;
      *e = table_pte(next);
    } else if (is_leaf(*e)) {
      return 0;
    }
    table = pa_of(*e);
  }
  volatile u64* e = slot(table, index_of(va, level));
  *e = pte;
  return table + index_of(va, level) * sizeof(u64);
}

// --- harness state (platform.cpp) ----------------------------------------------------------
unsigned wanted_levels();   // HPT_RISCV_LEVELS: the mode this image is built for
unsigned active_levels();   // what satp accepted (0 = bare: the emulator took no paging mode)
bool mode_active();         // active == wanted
const char* lacks_reason(); // "emulator lacks svNN", for HPT_SKIP
u64 boot_root();            // the harness' own table
u64 image_start();
u64 image_end();            // end of .bss (page-aligned)
u64 text_end();
u64 stack_bottom();
u64 stack_top();
u64 trap_entry();           // address of the assembly trap entry
u64 ram_base();
u64 ram_end();
bool has_svnapot();         // from the device tree's riscv,isa (S-mode cannot read misa)
bool has_svpbmt();

constexpr u64 uart_base = 0x1000'0000;       // 16550 on the virt machine
constexpr u64 test_finisher = 0x10'0000;     // sifive_test

}  // namespace hpt::rv
