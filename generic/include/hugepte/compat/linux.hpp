// hugepte/compat/linux.hpp - the kernel's names, as one-line wrappers, so that a porter can hold
// this library side by side with include/asm-generic/hugetlb.h and include/linux/hugetlb.h.
//
// Mapping of the kernel's types:
//   pte_t             hugepte::Entry (decoded, level-free; encode happens inside the operations)
//   mm / vma          a HugePteOps (the page table plus its TLB sink)
//   pte_t *ptep       a HugePte handle (slot, level, span) from huge_pte_offset / huge_pte_alloc
//   unsigned long sz  the huge page size in bytes (converted to a shift)
//   NULL              an error code (huge_pte_offset/alloc return Result<handle>)
// Value helpers that depend on how a format stores write/dirty take the format explicitly:
// pte_mkwrite<F>(pte). Semantics: docs/arch.md §1 and §4. Freestanding.
#pragma once

#include "hugepte/huge_pte.hpp"
#include "hugepte/pte.hpp"

namespace hugepte::compat {

using pte_t = Entry;
using swp_entry_t = Swap;

struct hstate {
  unsigned shift;  // huge_page_shift(h)
};

constexpr unsigned size_shift(uint64_t sz) { return static_cast<unsigned>(__builtin_ctzll(sz)); }

// --- include/asm-generic/hugetlb.h ---------------------------------------------------------------

template <class Mm>
pte_t huge_ptep_get(const Mm& mm, uint64_t /*addr*/, const typename Mm::Handle& ptep) {
  return mm.get(ptep);
}
template <class Mm>
Err set_huge_pte_at(const Mm& mm, uint64_t /*addr*/, const typename Mm::Handle& ptep,
                    const pte_t& pte, uint64_t sz) {
  return sz == ptep.size() ? mm.set(ptep, pte) : Err::einval;
}
template <class Mm>
pte_t huge_ptep_get_and_clear(const Mm& mm, uint64_t /*addr*/, const typename Mm::Handle& ptep,
                              uint64_t /*sz*/) {
  return mm.get_and_clear(ptep);  // the handle carries the size, as sz does for the kernel
}
template <class Mm>
void huge_pte_clear(const Mm& mm, uint64_t /*addr*/, const typename Mm::Handle& ptep,
                    uint64_t /*sz*/) {
  mm.clear(ptep);
}
template <class Mm>
pte_t huge_ptep_clear_flush(const Mm& vma, uint64_t /*addr*/, const typename Mm::Handle& ptep) {
  return vma.clear_flush(ptep);
}
template <class Mm>
Err huge_ptep_set_wrprotect(const Mm& mm, uint64_t /*addr*/, const typename Mm::Handle& ptep) {
  return mm.set_wrprotect(ptep);
}
template <class Mm>
int huge_ptep_set_access_flags(const Mm& vma, uint64_t /*addr*/, const typename Mm::Handle& ptep,
                               pte_t pte, int dirty) {
  return vma.set_access_flags(ptep, dirty ? pte::mkdirty<typename Mm::format>(pte) : pte).value ? 1
                                                                                                : 0;
}
constexpr bool huge_pte_none(const pte_t& pte) { return pte::none(pte); }
constexpr bool huge_pte_none_mostly(const pte_t& pte) {
  return pte::none(pte) || pte::is_marker(pte);
}
constexpr bool huge_pte_write(const pte_t& pte) { return pte::write(pte); }
constexpr bool huge_pte_dirty(const pte_t& pte) { return pte::dirty(pte); }
template <Format F>
constexpr pte_t huge_pte_mkwrite(pte_t pte) { return pte::mkwrite<F>(pte); }
template <Format F>
constexpr pte_t huge_pte_mkdirty(pte_t pte) { return pte::mkdirty<F>(pte); }
constexpr pte_t huge_pte_wrprotect(pte_t pte) { return pte::wrprotect(pte); }
template <Format F>
constexpr pte_t huge_pte_modify(pte_t pte, Prot prot, bool writable) {
  return pte::modify<F>(pte, prot, writable);
}
constexpr pte_t huge_pte_mkuffd_wp(pte_t pte) { return pte::mkuffd_wp(pte); }
constexpr bool huge_pte_uffd_wp(const pte_t& pte) { return pte::uffd_wp(pte); }
constexpr pte_t huge_pte_clear_uffd_wp(pte_t pte) { return pte::clear_uffd_wp(pte); }

// --- include/linux/hugetlb.h ---------------------------------------------------------------------

template <class Mm>
Result<typename Mm::Handle> huge_pte_offset(const Mm& mm, uint64_t addr, uint64_t sz) {
  return mm.offset(addr, size_shift(sz));
}
template <class Mm>
Result<typename Mm::Handle> huge_pte_alloc(const Mm& mm, const Mm& /*vma*/, uint64_t addr,
                                           uint64_t sz) {
  return mm.alloc(addr, size_shift(sz));
}
template <class Mm>
pte_t huge_ptep_modify_prot_start(const Mm& vma, uint64_t /*addr*/,
                                  const typename Mm::Handle& ptep) {
  return vma.modify_prot_start(ptep);
}
template <class Mm>
Err huge_ptep_modify_prot_commit(const Mm& vma, uint64_t /*addr*/, const typename Mm::Handle& ptep,
                                 const pte_t& old, const pte_t& pte) {
  return vma.modify_prot_commit(ptep, old, pte);
}
template <class Mm>
Result<pte_t> arch_make_huge_pte(const Mm&, pte_t entry, unsigned shift, uint64_t /*vm_flags*/) {
  return Mm::make_huge(entry, shift);
}
template <class Mm>
constexpr uint64_t hugetlb_mask_last_page(const Mm&, hstate h) {
  return Mm::mask_last_page(h.shift);
}
template <class Mm>
Err flush_hugetlb_tlb_range(const Mm& vma, uint64_t start, uint64_t end, hstate h) {
  return vma.flush_range(start, end, h.shift);
}
constexpr bool is_hugetlb_entry_migration(const pte_t& pte) { return pte::is_migration(pte); }
constexpr bool is_hugetlb_entry_hwpoisoned(const pte_t& pte) { return pte::is_hwpoison(pte); }

// --- pte_/pmd_/pud_ value helpers (the vocabulary is level-free, so the three are one) ----------

#define HUGEPTE_COMPAT_LEVEL_HELPERS(p)                                                      \
  constexpr bool p##_young(const pte_t& e) { return pte::young(e); }                         \
  constexpr bool p##_dirty(const pte_t& e) { return pte::dirty(e); }                         \
  constexpr bool p##_write(const pte_t& e) { return pte::write(e); }                         \
  constexpr bool p##_special(const pte_t& e) { return pte::special(e); }                     \
  constexpr bool p##_protnone(const pte_t& e) { return pte::protnone(e); }                   \
  constexpr bool p##_present(const pte_t& e) { return pte::present(e); }                     \
  constexpr bool p##_none(const pte_t& e) { return pte::none(e); }                           \
  constexpr bool p##_soft_dirty(const pte_t& e) { return pte::soft_dirty(e); }               \
  constexpr bool p##_uffd_wp(const pte_t& e) { return pte::uffd_wp(e); }                     \
  constexpr pte_t p##_mkyoung(pte_t e) { return pte::mkyoung(e); }                           \
  constexpr pte_t p##_mkold(pte_t e) { return pte::mkold(e); }                               \
  constexpr pte_t p##_mkspecial(pte_t e) { return pte::mkspecial(e); }                       \
  constexpr pte_t p##_mksoft_dirty(pte_t e) { return pte::mksoft_dirty(e); }                 \
  constexpr pte_t p##_clear_soft_dirty(pte_t e) { return pte::clear_soft_dirty(e); }         \
  constexpr pte_t p##_wrprotect(pte_t e) { return pte::wrprotect(e); }                       \
  constexpr pte_t p##_mkuffd_wp(pte_t e) { return pte::mkuffd_wp(e); }                       \
  constexpr pte_t p##_clear_uffd_wp(pte_t e) { return pte::clear_uffd_wp(e); }               \
  template <Format F>                                                                        \
  constexpr pte_t p##_mkwrite_novma(pte_t e) {                                               \
    return pte::mkwrite<F>(e);                                                               \
  }                                                                                          \
  template <Format F>                                                                        \
  constexpr pte_t p##_mkdirty(pte_t e) {                                                     \
    return pte::mkdirty<F>(e);                                                               \
  }                                                                                          \
  template <Format F>                                                                        \
  constexpr pte_t p##_mkclean(pte_t e) {                                                     \
    return pte::mkclean<F>(e);                                                               \
  }                                                                                          \
  template <Format F>                                                                        \
  constexpr pte_t p##_modify(pte_t e, Prot prot, bool writable) {                            \
    return pte::modify<F>(e, prot, writable);                                                \
  }                                                                                          \
  constexpr bool p##_swp_exclusive(const pte_t& e) { return pte::swp_exclusive(e); }         \
  constexpr pte_t p##_swp_mkexclusive(pte_t e) { return pte::swp_mkexclusive(e); }           \
  constexpr pte_t p##_swp_clear_exclusive(pte_t e) { return pte::swp_clear_exclusive(e); }   \
  constexpr bool p##_swp_soft_dirty(const pte_t& e) { return pte::swp_soft_dirty(e); }       \
  constexpr pte_t p##_swp_mksoft_dirty(pte_t e) { return pte::swp_mksoft_dirty(e); }         \
  constexpr pte_t p##_swp_clear_soft_dirty(pte_t e) { return pte::swp_clear_soft_dirty(e); } \
  constexpr bool p##_swp_uffd_wp(const pte_t& e) { return pte::swp_uffd_wp(e); }             \
  constexpr pte_t p##_swp_mkuffd_wp(pte_t e) { return pte::swp_mkuffd_wp(e); }               \
  constexpr pte_t p##_swp_clear_uffd_wp(pte_t e) { return pte::swp_clear_uffd_wp(e); }

HUGEPTE_COMPAT_LEVEL_HELPERS(pte)
HUGEPTE_COMPAT_LEVEL_HELPERS(pmd)
HUGEPTE_COMPAT_LEVEL_HELPERS(pud)
#undef HUGEPTE_COMPAT_LEVEL_HELPERS

constexpr bool is_swap_pte(const pte_t& pte) { return pte::is_swap(pte); }
constexpr bool is_pte_marker(const pte_t& pte) { return pte::is_marker(pte); }
constexpr swp_entry_t pte_to_swp_entry(const pte_t& pte) { return pte.swp; }
constexpr pte_t swp_entry_to_pte(swp_entry_t s) {
  pte_t e = pte::swp_entry(s.type, s.offset);
  e.swp = s;
  return e;
}
constexpr swp_entry_t swp_entry(uint32_t type, uint64_t offset) { return Swap{type, offset}; }
constexpr uint32_t swp_type(swp_entry_t s) { return s.type; }
constexpr uint64_t swp_offset(swp_entry_t s) { return s.offset; }
constexpr pte_t make_pte_marker(uint64_t flags) { return pte::make_marker(flags); }
constexpr uint64_t pte_marker_get(const pte_t& pte) { return pte.swp.offset; }

}  // namespace hugepte::compat
