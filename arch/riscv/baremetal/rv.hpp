// rv.hpp - what the riscv64 bare-metal harness (platform.cpp) shares with its own in-guest cases
// (mmu_cases.cpp): CSR access, raw Sv39/Sv48/Sv57 PTE bits, a software table walker and a page
// bump allocator. Deliberately independent of the library's riscv64 format: this is the
// harness' own, minimal reading of the privileged spec (chapter "Supervisor-Level ISA",
// sections Sv39/Sv48/Sv57, Svnapot, Svpbmt), so the library can later be checked against it.
#pragma once

#include <stdint.h>

#include "guest.hpp"

#ifndef HPT_RISCV_LEVELS
#error \
    "HPT_RISCV_LEVELS (3 = Sv39, 4 = Sv48, 5 = Sv57) comes from arch/riscv/baremetal/CMakeLists.txt"
#endif

namespace hpt::rv {

// --- CSRs ----------------------------------------------------------------------------------
// One accessor per CSR: the CSR name must be an assembler literal.
#define HPT_RV_CSR_ACCESSORS(name)                                         \
  inline uint64_t read_##name() {                                               \
    uint64_t v;                                                                 \
    asm volatile("csrr %0, " #name : "=r"(v));                             \
    return v;                                                              \
  }                                                                        \
  inline void write_##name(uint64_t v) { asm volatile("csrw " #name ", %0" ::"r"(v) : "memory"); }
HPT_RV_CSR_ACCESSORS(satp)
HPT_RV_CSR_ACCESSORS(stvec)
HPT_RV_CSR_ACCESSORS(sstatus)
HPT_RV_CSR_ACCESSORS(sie)
#undef HPT_RV_CSR_ACCESSORS

inline void sfence_vma_all() { asm volatile("sfence.vma zero, zero" ::: "memory"); }
inline void sfence_vma(uint64_t va) { asm volatile("sfence.vma %0, zero" ::"r"(va) : "memory"); }

// sstatus bits the harness looks at.
constexpr uint64_t sstatus_sie = uint64_t{1} << 1;
constexpr uint64_t sstatus_spp = uint64_t{1} << 8;
constexpr uint64_t sstatus_sum = uint64_t{1} << 18;  // S-mode may load/store U pages
constexpr uint64_t sstatus_mxr = uint64_t{1} << 19;  // loads from execute-only pages succeed

// satp: MODE[63:60] ASID[59:44] PPN[43:0].
constexpr unsigned satp_mode_shift = 60;
constexpr uint64_t satp_ppn_mask = (uint64_t{1} << 44) - 1;
constexpr uint64_t satp_mode_bare = 0;
// Sv39 = 8, Sv48 = 9, Sv57 = 10: the mode number is levels + 5.
constexpr uint64_t satp_mode_for(unsigned levels) {
  return levels == 0 ? satp_mode_bare : levels + 5;
}
constexpr unsigned levels_for_satp_mode(uint64_t mode) {
  return mode >= 8 && mode <= 10 ? static_cast<unsigned>(mode - 5) : 0;
}
constexpr const char* satp_mode_name(uint64_t mode) {
  return mode == 8 ? "sv39" : mode == 9 ? "sv48" : mode == 10 ? "sv57" : mode == 0 ? "bare" : "?";
}

// --- PTE -----------------------------------------------------------------------------------
constexpr unsigned page_shift = 12;
constexpr unsigned level_bits = 9;  // 512 eight-byte entries per 4 KiB table
constexpr unsigned entries_per_table = 1u << level_bits;
constexpr unsigned napot_64k_shift = 16;  // the only Svnapot size defined so far

constexpr uint64_t pte_v = uint64_t{1} << 0;
constexpr uint64_t pte_r = uint64_t{1} << 1;
constexpr uint64_t pte_w = uint64_t{1} << 2;
constexpr uint64_t pte_x = uint64_t{1} << 3;
constexpr uint64_t pte_u = uint64_t{1} << 4;
constexpr uint64_t pte_g = uint64_t{1} << 5;
constexpr uint64_t pte_a = uint64_t{1} << 6;
constexpr uint64_t pte_d = uint64_t{1} << 7;
constexpr unsigned pte_ppn_shift = 10;
constexpr uint64_t pte_ppn_mask = ((uint64_t{1} << 44) - 1) << pte_ppn_shift;  // PPN[53:10]
constexpr unsigned pte_pbmt_shift = 61;                             // Svpbmt, bits 62:61
constexpr uint64_t pte_pbmt_mask = uint64_t{3} << pte_pbmt_shift;
constexpr uint64_t pte_n = uint64_t{1} << 63;  // Svnapot

constexpr uint64_t pte_rw = pte_r | pte_w;
constexpr uint64_t pte_rwx = pte_r | pte_w | pte_x;

// Shift of the region one entry at `level` maps (level 0 = 4 KiB PTE).
constexpr unsigned level_shift(unsigned level) { return page_shift + level_bits * level; }
constexpr unsigned va_bits(unsigned levels) { return level_shift(levels); }
constexpr unsigned index_of(uint64_t va, unsigned level) {
  return static_cast<unsigned>((va >> level_shift(level)) & (entries_per_table - 1));
}
constexpr uint64_t ppn_of(uint64_t pte) { return (pte & pte_ppn_mask) >> pte_ppn_shift; }
constexpr uint64_t pa_of(uint64_t pte) { return ppn_of(pte) << page_shift; }
constexpr uint64_t with_ppn(uint64_t pa) {
  return ((pa >> page_shift) << pte_ppn_shift) & pte_ppn_mask;
}

constexpr uint64_t table_pte(uint64_t table_pa) { return with_ppn(table_pa) | pte_v; }
constexpr uint64_t leaf_pte(uint64_t pa, uint64_t flags) { return with_ppn(pa) | flags | pte_v; }
// One of the 16 identical PTEs of a 64 KiB Svnapot group: PPN[3:0] = 1000b encodes the size.
constexpr uint64_t napot_64k_pte(uint64_t pa64k, uint64_t flags) {
  return with_ppn(pa64k & ~((uint64_t{1} << napot_64k_shift) - 1)) |
         (uint64_t{0b1000} << pte_ppn_shift) | pte_n | flags | pte_v;
}
constexpr bool is_leaf(uint64_t pte) { return (pte & pte_v) && (pte & (pte_r | pte_x)); }

// Canonical for the mode: bits 63..va_bits-1 all equal.
constexpr bool canonical(uint64_t va, unsigned levels) {
  const unsigned top = va_bits(levels) - 1;
  const uint64_t high = va >> top;
  return high == 0 || high == (~uint64_t{0} >> top);
}

inline volatile uint64_t* slot(uint64_t table_pa, unsigned index) {
  return reinterpret_cast<volatile uint64_t*>(table_pa) + index;  // tables are identity-mapped
}

// --- software walk -------------------------------------------------------------------------
// The privileged spec's translation algorithm (Sv39/48/57 + Svnapot), reading tables by PA.
struct Walk {
  bool leaf = false;        // a valid, well-formed leaf was found
  unsigned level = 0;       // level of the last entry read
  uint64_t pte = 0;              // that entry
  uint64_t pte_pa = 0;           // and where it lives
  uint64_t pa = 0;               // the translation (leaf only)
  const char* why = "";     // why there is no leaf
};

inline Walk walk(uint64_t root_pa, unsigned levels, uint64_t va) {
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
  uint64_t table = root_pa;
  for (unsigned level = levels; level-- > 0;) {
    w.level = level;
    w.pte_pa = table + index_of(va, level) * sizeof(uint64_t);
    const uint64_t pte = *slot(table, index_of(va, level));
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
    const uint64_t ppn = ppn_of(pte);
    if (pte & pte_n) {
      if (level != 0 || (ppn & 0xf) != 0b1000) {
        w.why = "reserved NAPOT encoding";
        return w;
      }
      const uint64_t napot_mask = (uint64_t{1} << napot_64k_shift) - 1;
      w.pa = ((ppn << page_shift) & ~napot_mask) | (va & napot_mask);
    } else {
      const uint64_t low = (uint64_t{1} << (level_shift(level) - page_shift)) - 1;
      if (ppn & low) {
        w.why = "misaligned superpage";
        return w;
      }
      w.pa = (ppn << page_shift) | (va & ((uint64_t{1} << level_shift(level)) - 1));
    }
    w.leaf = true;
    return w;
  }
  return w;
}

// Would a supervisor access of `kind` be allowed by this leaf (ignoring A/D)?
inline bool leaf_permits(uint64_t pte, guest::Access kind, uint64_t sstatus) {
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
  uint64_t next = 0;
  uint64_t end = 0;
  // A zeroed 4 KiB page, or 0 when exhausted.
  uint64_t page() {
    if (next + (uint64_t{1} << page_shift) > end) return 0;
    const uint64_t pa = next;
    next += uint64_t{1} << page_shift;
    for (unsigned i = 0; i < entries_per_table; ++i) *slot(pa, i) = 0;
    return pa;
  }
};

// Install `pte` as the entry for `va` at `level`, creating tables on the way down.
// Returns the entry's physical address, or 0 if a table page could not be had or a leaf
// already covers `va` above `level`.
inline uint64_t map(uint64_t root_pa, unsigned levels, uint64_t va, unsigned level, uint64_t pte,
                    PageBump& alloc) {
  uint64_t table = root_pa;
  for (unsigned l = levels - 1; l > level; --l) {
    volatile uint64_t* e = slot(table, index_of(va, l));
    if (!(*e & pte_v)) {
      const uint64_t next = alloc.page();
      if (!next) return 0;
      *e = table_pte(next);
    } else if (is_leaf(*e)) {
      return 0;
    }
    table = pa_of(*e);
  }
  volatile uint64_t* e = slot(table, index_of(va, level));
  *e = pte;
  return table + index_of(va, level) * sizeof(uint64_t);
}

// --- harness state (platform.cpp) ----------------------------------------------------------
unsigned wanted_levels();   // HPT_RISCV_LEVELS: the mode this image is built for
unsigned active_levels();   // what satp accepted (0 = bare: the emulator took no paging mode)
bool mode_active();         // active == wanted
const char* lacks_reason(); // "emulator lacks svNN", for HPT_SKIP
uint64_t boot_root();            // the harness' own table
uint64_t image_start();
uint64_t image_end();            // end of .bss (page-aligned)
uint64_t text_end();
uint64_t stack_bottom();
uint64_t stack_top();
uint64_t trap_entry();           // address of the assembly trap entry
uint64_t ram_base();
uint64_t ram_end();
bool has_svnapot();         // from the device tree's riscv,isa (S-mode cannot read misa)
bool has_svpbmt();

constexpr uint64_t uart_base = 0x1000'0000;       // 16550 on the virt machine
constexpr uint64_t test_finisher = 0x10'0000;     // sifive_test

}  // namespace hpt::rv
