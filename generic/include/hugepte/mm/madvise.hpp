// hugepte/mm/madvise.hpp - Linux mm/madvise.c: MADV_DONTNEED (madvise_dontneed_single_vma),
// MADV_GUARD_INSTALL (madvise_guard_install), the HGM series' MADV_SPLIT, and MADV_COLLAPSE
// (madvise_collapse in mm/khugepaged.c; for HGM hugetlb_collapse, with split_below); mkold is
// page aging over a range (ptep_test_and_clear_young, as folio_referenced_one does it).
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// MADV_DONTNEED: zap, keeping what survives a zap (uffd-wp and guard markers; a uffd-wp
// protected file page becomes a uffd-wp marker). In a hugetlb VMA without HGM the start must
// be hstate aligned and the end is rounded down to the hstate, so that no huge page is dropped
// that the caller did not cover entirely (madvise_dontneed_free_valid_vma): a call shorter
// than one huge page does nothing. Errors: EINVAL (misaligned, not inside one VMA), ENOMEM
// (the tables a split at an edge needs; nothing has changed).
//
// With UFFD_FEATURE_EVENT_REMOVE on the VMA's userfaultfd (userfaultfd_remove): a REMOVE event
// for the range is queued, range ioctls say EAGAIN, and thread tid waits until the monitor
// reads it; only then are the pages zapped. The call returns at once with the thread blocked.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::madvise_dontneed(uint64_t start, uint64_t len, Tid tid) {
  Vma* v = one_vma(start, len);
  if (!v) return Err::einval;
  if (v->hugetlb && !v->hgm) {
    if (!aligned(start, v->hshift)) return Err::einval;
    len = align_down(len, v->hshift);
    if (len == 0) return Err::ok;
  }
  if (wants_event(*v, kFeatEventRemove)) {
    queue_event(v->uctx, UffdEvent::remove, start, start + len, tid);
    return Err::ok;
  }
  return dontneed_now(start, start + len);
}

// The zap of MADV_DONTNEED over [start, end) (madvise_dontneed_single_vma), the VMA found again
// as after userfaultfd_remove (none any more: ENOMEM).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::dontneed_now(uint64_t start, uint64_t end) {
  Vma* v = one_vma(start, end - start);
  if (!v) return Err::enomem;
  notify_start({NotifyEvent::clear, start, end});
  Err e = zap(*v, start, end, false);
  notify_end({NotifyEvent::clear, start, end});
  return e;
}

// Guard regions (MADV_GUARD_INSTALL): none entries become guard markers; EEXIST if anything
// else is there (the kernel zaps first; tests install into empty ranges).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::madvise_guard_install(uint64_t start, uint64_t len) {
  Vma* v = one_vma(start, len);
  if (!v || v->hugetlb) return Err::einval;
  return install_markers(*v, start, start + len, kMarkerGuard, /*strict_none=*/true);
}

// MADV_SPLIT (HGM series v1/v2): allows high-granularity mappings of this hugetlb VMA.
// Errors: EINVAL (not a shared hugetlb VMA, misaligned, or the policy is S0: today's kernel
// has no HGM).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::madvise_split(uint64_t start, uint64_t len) {
  Vma* v = one_vma(start, len);
  if (!v || !v->hugetlb || !v->shared || mem_->policy() == Policy::s0) return Err::einval;
  if (start != v->start || start + len != v->end) return Err::einval;
  v->hgm = true;
  return Err::ok;
}

// Page aging (ptep_test_and_clear_young over a range): clears the access flag of present
// leaves, then one invalidation. The next access faults if the hardware does not set A.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::mkold(uint64_t start, uint64_t len) {
  Vma* v = one_vma(start, len);
  if (!v) return Err::einval;
  bool any = false;
  Err e = for_each_present(start, start + len, [&](const Handle& h, const Entry&) {
    Entry old = ops_.modify_prot_start(h);
    ops_.modify_prot_commit(h, old, pte::mkold(old));
    any = true;
  });
  if (any) flush(start, start + len);
  return e;
}

// MADV_COLLAPSE on a hugetlb range (HGM series, docs/mm.md §2.4): every hstate page in the range
// that is mapped through lower tables becomes one hstate-level leaf again (holes filled from
// the page cache, uffd-wp markers dropped, tables freed); one invalidate_range pair (CLEAR)
// over the range and a TLB invalidation. Returns ok, or EHWPOISON when some hstate page was
// skipped because its folio is poisoned (the others still collapse). Errors: EINVAL (not one
// shared hugetlb VMA, misaligned), EBUSY (a folio is being migrated; nothing changed).
// A VMA without HGM: ok, nothing done.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::madvise_collapse(uint64_t start, uint64_t len) {
  Vma* v = one_vma(start, len);
  if (!v || !v->hugetlb || !v->shared) return Err::einval;
  if (!aligned(start, v->hshift) || !aligned(len, v->hshift)) return Err::einval;
  if (!v->hgm) return Err::ok;
  uint64_t end = start + len;
  for (uint64_t h = start; h < end; h += bit(v->hshift)) {
    if (!split_below(*v, h)) continue;
    uint32_t id = mem_->cache_lookup(v->file, file_index(*v, h));
    if (id != kNoFolio && mem_->folio(id).migrating) return Err::ebusy;
  }
  Err result = Err::ok;
  notify_start({NotifyEvent::clear, start, end});
  for (uint64_t h = start; h < end; h += bit(v->hshift)) {
    if (!split_below(*v, h)) continue;
    uint32_t id = mem_->cache_lookup(v->file, file_index(*v, h));
    if (id != kNoFolio && mem_->folio(id).hwpoison) {
      result = Err::ehwpoison;
      continue;
    }
    zap(*v, h, h + bit(v->hshift), /*drop_markers=*/true);
    free_below(h, v->hshift);
    if (id != kNoFolio) {
      Handle hp = ops_.offset(h, v->hshift).value;
      install(*v, hp, id, mem_->folio(id).pa, v->prot.write, false, false);
    }
  }
  flush(start, end);
  notify_end({NotifyEvent::clear, start, end});
  return result;
}

// The VMA holding all of [start, start + len), page aligned (madvise's range checks).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Vma* Mm<F, Env, Tlb, FE>::one_vma(uint64_t start, uint64_t len) {
  if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage) || start + len < start)
    return nullptr;
  Vma* v = vma_at(start);
  return v && start + len <= v->end ? v : nullptr;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::install_markers(Vma& v, uint64_t start, uint64_t end, uint64_t flags,
                                         bool strict_none) {
  for (uint64_t va = start; va < end; va += bit(kPage))
    if (!slot_state_ok(va, kPage, strict_none)) return Err::eexist;
  uint64_t need[F::levels] = {};
  count_marker_tables(v, start, end, need);
  if (Err e = tenv_.reserve(need); e != Err::ok) return e;
  for (uint64_t va = start; va < end; va += bit(kPage)) {
    Handle h = walk_alloc(va, kPage).value;
    Entry cur = F::decode(Table::load(h.slot), 0);
    uint64_t f = cur.kind == Kind::marker ? (cur.swp.offset | flags) : flags;
    ops_.set(h, pte::make_marker(f));
  }
  tenv_.unreserve();
  return Err::ok;
}

// The hstate page at h is mapped through pieces: some sub-entry of its slot is a table, or
// (a contiguous hstate such as arm64 CONT-PMD) a present leaf smaller than the hstate.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::split_below(const Vma& v, uint64_t h) const {
  HugeSize sz = huge_size_or_page(v.hshift);
  Found f = find(pt_, h, sz.level).value;
  if (f.level != sz.level) return false;
  uint64_t n = bit(v.hshift - F::shift(sz.level));
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t raw = Table::load(f.slot + i);
    if (sz.level > 0 && F::is_table(raw, sz.level)) return true;
    Entry e = F::decode(raw, sz.level);
    if (sz.cont && present(e) && e.cont_shift != v.hshift) return true;
  }
  return false;
}

}  // namespace hugepte::mm
