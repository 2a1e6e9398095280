// hugepte/pte.hpp - the pte_mk* / pte_* value helpers, once for every format.
//
// Linux spells each of these per architecture because each stores write and dirty differently
// (x86: RW, D and SAVED_DIRTY; arm64: DBM as the write bit, RDONLY, software PTE_DIRTY; riscv:
// W and D). In the vocabulary the difference is one fact the format declares, its DirtyModel:
// whether the walker's write permission (Entry::prot.write) follows Linux's write bit directly, or
// only once the entry is dirty (DBM). Everything else is a field of Entry. The format's encode then
// produces exactly the bits the kernel's helper would. Freestanding.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"

namespace hugepte::pte {

template <Format F>
inline constexpr bool kDbm = AdCaps(F::ad_caps).model == DirtyModel::dbm_rdonly;

// The walker may write: Linux-writable, and under DBM also dirty (a clean DBM entry stays
// read-only to the walker until hardware or the fault path records the first write).
template <Format F>
constexpr bool walker_writable(const Entry& e) {
  return e.writable && (!kDbm<F> || e.dirty);
}

constexpr bool young(const Entry& e) { return e.accessed; }
constexpr bool dirty(const Entry& e) { return e.dirty; }
constexpr bool write(const Entry& e) { return e.writable; }
constexpr bool special(const Entry& e) { return e.soft.special; }
constexpr bool soft_dirty(const Entry& e) { return e.soft.soft_dirty; }
constexpr bool uffd_wp(const Entry& e) { return e.soft.uffd_wp; }
constexpr bool protnone(const Entry& e) { return e.kind == Kind::protnone; }
constexpr bool present(const Entry& e) { return e.kind == Kind::leaf || e.kind == Kind::protnone; }
constexpr bool none(const Entry& e) { return e.kind == Kind::none; }
constexpr bool is_swap(const Entry& e) { return e.kind == Kind::swap || e.kind == Kind::marker; }
constexpr bool is_marker(const Entry& e) { return e.kind == Kind::marker; }

constexpr Entry mkyoung(Entry e) { return e.accessed = true, e; }
constexpr Entry mkold(Entry e) { return e.accessed = false, e; }
constexpr Entry mkspecial(Entry e) { return e.soft.special = true, e; }
constexpr Entry mksoft_dirty(Entry e) { return e.soft.soft_dirty = true, e; }
constexpr Entry clear_soft_dirty(Entry e) { return e.soft.soft_dirty = false, e; }
constexpr Entry clear_uffd_wp(Entry e) { return e.soft.uffd_wp = false, e; }

template <Format F>
constexpr Entry mkwrite(Entry e) {  // pte_mkwrite_novma
  e.writable = true;
  e.prot.write = walker_writable<F>(e);
  return e;
}
constexpr Entry wrprotect(Entry e) {  // dirty stays: the format keeps a read-only dirty page
  e.writable = false;
  e.prot.write = false;
  return e;
}
template <Format F>
constexpr Entry mkdirty(Entry e) {
  e.dirty = true;
  e.prot.write = walker_writable<F>(e);
  return e;
}
template <Format F>
constexpr Entry mkclean(Entry e) {
  e.dirty = false;
  e.prot.write = walker_writable<F>(e);
  return e;
}
constexpr Entry mkuffd_wp(Entry e) {  // uffd-wp implies write-protected
  e.soft.uffd_wp = true;
  return wrprotect(e);
}

// pte_modify: new permissions, everything else (output address, A/D, software bits) kept.
template <Format F>
constexpr Entry modify(Entry e, Prot prot, bool writable) {
  e.prot = prot;
  e.writable = writable;
  e.prot.write = walker_writable<F>(e);
  return e;
}

// --- swap-format entries -----------------------------------------------------------------------

constexpr Entry swp_entry(uint32_t type, uint64_t offset) {
  Entry e;
  e.kind = type == kSwpPteMarker ? Kind::marker : Kind::swap;
  e.swp.type = type;
  e.swp.offset = offset;
  return e;
}
constexpr Entry make_marker(uint64_t flags) { return swp_entry(kSwpPteMarker, flags); }
constexpr bool swp_exclusive(const Entry& e) { return e.swp.exclusive; }
constexpr Entry swp_mkexclusive(Entry e) { return e.swp.exclusive = true, e; }
constexpr Entry swp_clear_exclusive(Entry e) { return e.swp.exclusive = false, e; }
constexpr bool swp_soft_dirty(const Entry& e) { return e.swp.soft_dirty; }
constexpr Entry swp_mksoft_dirty(Entry e) { return e.swp.soft_dirty = true, e; }
constexpr Entry swp_clear_soft_dirty(Entry e) { return e.swp.soft_dirty = false, e; }
constexpr bool swp_uffd_wp(const Entry& e) { return e.swp.uffd_wp; }
constexpr Entry swp_mkuffd_wp(Entry e) { return e.swp.uffd_wp = true, e; }
constexpr Entry swp_clear_uffd_wp(Entry e) { return e.swp.uffd_wp = false, e; }
constexpr bool is_migration(const Entry& e) {
  return e.kind == Kind::swap && e.swp.type >= kSwpMigrationRead &&
         e.swp.type <= kSwpMigrationWrite;
}
constexpr bool is_hwpoison(const Entry& e) {
  return e.kind == Kind::swap && e.swp.type == kSwpHwpoison;
}

}  // namespace hugepte::pte
