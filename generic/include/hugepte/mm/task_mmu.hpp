// hugepte/mm/task_mmu.hpp - Linux fs/proc/task_mmu.c: /proc/PID/pagemap, one 64-bit value per
// base page as the kernel builds it (pte_to_pagemap_entry, pagemap_pmd_range's huge case,
// pagemap_hugetlb_range), for a reader who may see PFNs (CAP_SYS_ADMIN).
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// The bits (Documentation/admin-guide/mm/pagemap.rst). Bit 55, soft-dirty, is not modelled.
inline constexpr uint64_t kPmPresent = bit(63);
inline constexpr uint64_t kPmSwap = bit(62);
inline constexpr uint64_t kPmFile = bit(61);  // a file page or shared anonymous: not PageAnon
inline constexpr uint64_t kPmUffdWp = bit(57);
inline constexpr uint64_t kPmMmapExclusive = bit(56);  // the page is mapped exactly once
inline constexpr uint64_t kPmFrameMask = bit(55) - 1;  // present: the PFN; swap: type | offset << 5

// The pagemap value of the base page at va:
//   - no VMA: 0;
//   - present (protnone too): PRESENT, the PFN, UFFD_WP from the entry, and - when the page is
//     a normal page (vm_normal_page: not the zero page) - FILE if it is not anonymous and
//     MMAP_EXCLUSIVE if its mapcount is 1;
//   - hugetlb, not present: only UFFD_WP, for a uffd-wp marker or swap entry (a hwpoison
//     entry shows nothing);
//   - otherwise a swap-format entry: SWAP, type | offset << 5, UFFD_WP for a uffd-wp bit or
//     marker; a hwpoison or migration entry names its page: FILE as above, MMAP_EXCLUSIVE when
//     not migrating and mapped once.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
uint64_t Mm<F, Env, Tlb, FE>::pagemap(uint64_t va) const {
  const Vma* v = nullptr;
  for (const Vma& c : vmas_)
    if (c.used && c.contains(va)) v = &c;
  if (!v) return 0;
  const View w = view(va);
  const Entry& e = w.entry;
  uint64_t pm = 0;
  uint32_t page = kNoFolio;  // the page the entry names, if a normal one
  bool migration = false;
  if (present(e)) {
    const uint64_t pa = e.addr + (va & (bit(w.shift) - 1));
    pm = kPmPresent | ((pa >> kPage) & kPmFrameMask);
    if (e.soft.uffd_wp) pm |= kPmUffdWp;
    page = mem_->folio_at(pa);
    if (page != kNoFolio && mem_->folio(page).zero_page) page = kNoFolio;
  } else if (v->hugetlb) {
    if ((e.kind == Kind::marker && (e.swp.offset & kMarkerUffdWp)) ||
        (e.kind == Kind::swap && e.swp.uffd_wp))
      pm = kPmUffdWp;
    return pm;
  } else if (e.kind == Kind::swap || e.kind == Kind::marker) {
    pm = kPmSwap | ((uint64_t{e.swp.type} | (e.swp.offset << kSwapTypeBits)) & kPmFrameMask);
    if (e.swp.uffd_wp || (e.kind == Kind::marker && (e.swp.offset & kMarkerUffdWp)))
      pm |= kPmUffdWp;
    migration = e.swp.type >= kSwpMigrationRead && e.swp.type <= kSwpMigrationWrite;
    if (e.kind == Kind::swap && (e.swp.type == kSwpHwpoison || migration))
      page = mem_->folio_at(e.swp.offset << kPage);
  }
  if (page != kNoFolio) {
    if (mem_->folio(page).file != kNoFile) pm |= kPmFile;
    if (!migration && mem_->mapcount(page) == 1) pm |= kPmMmapExclusive;
  }
  return pm;
}

}  // namespace hugepte::mm
