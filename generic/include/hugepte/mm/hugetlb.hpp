// hugepte/mm/hugetlb.hpp - Linux mm/hugetlb.c's reservations (and hugetlbfs_file_mmap, which
// takes them): a hugetlb mapping reserves its pages at mmap, so that its faults cannot run out
// of pages later; a fault, CoW or UFFDIO_COPY then takes the page its reservation holds.
//
//   - a shared mapping reserves, in the file's map, the page indices nobody reserved yet; the
//     reservation belongs to the file and lasts until its page is gone (hole punch);
//   - a private mapping reserves every page in a map of its own, shared by the pieces a split
//     makes; its map records the indices whose reservation a fault used, and unmapping a piece
//     gives back what that piece did not use (hugetlb_vm_op_close);
//   - MAP_NORESERVE reserves nothing; its faults take unreserved free pages only.
// The pool's count of reserved pages is Memory::pool_reserved (resv_huge_pages).
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// hugetlbfs_file_mmap: hugetlb_reserve_pages for the mapping v is about to become, unless
// MAP_NORESERVE, then a writable mapping past the file's end extends the file (i_size_write).
// All or nothing. Errors: ENOMEM (the pool has too few unreserved free pages; no room for a
// map or for the file to grow; no free private map).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::hugetlbfs_file_mmap(Vma& v) {
  const uint64_t first = v.pgoff >> v.hshift, n = (v.end - v.start) >> v.hshift;
  uint8_t slot = kNoResv;
  if (!v.noreserve && !v.shared) {
    for (uint8_t i = 0; i < kMaxVmas && slot == kNoResv; ++i)
      if (resv_maps_[i].refs == 0) slot = i;
    if (slot == kNoResv) return Err::enomem;
    if (Err e = mem_->resv_grow(resv_maps_[slot], first, n); e != Err::ok) return e;
    if (mem_->pool_free(v.hshift) - mem_->pool_reserved(v.hshift) < n) {
      mem_->resv_free(resv_maps_[slot]);
      return Err::enomem;
    }
  }
  if (!v.noreserve && v.shared) {
    if (Err e = mem_->reserve_file(v.file, first, n, /*check_only=*/true); e != Err::ok) return e;
  }
  if (v.prot.write) {
    if (Err e = mem_->grow_file(v.file, v.pgoff + (v.end - v.start)); e != Err::ok) {
      if (slot != kNoResv) mem_->resv_free(resv_maps_[slot]);
      return e;
    }
  }
  if (slot != kNoResv) {
    (void)mem_->reserve(v.hshift, n);  // checked above
    resv_maps_[slot].refs = 1;
    v.resv = slot;
  } else if (!v.noreserve) {
    (void)mem_->reserve_file(v.file, first, n, /*check_only=*/false);  // checked above
  }
  return Err::ok;
}

// hugetlb_vm_op_close: v (or the piece of it an unmap takes) goes; a private mapping gives the
// pool back the reservations of its pages no fault used, and drops its share of the map.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::hugetlb_vm_op_close(Vma& v) {
  ResvMap* m = vma_resv(v);
  if (!m) return;
  const uint64_t first = v.pgoff >> v.hshift, n = (v.end - v.start) >> v.hshift;
  mem_->unreserve(v.hshift, n - m->count(first, first + n));
  if (--m->refs == 0) mem_->resv_free(*m);
  v.resv = kNoResv;
}

// alloc_hugetlb_folio: a page of v's hstate for va, from the reservation the index holds if it
// holds one (vma_needs_reservation: a shared mapping's index in the file's map; a private
// mapping's index not yet in its own map), else from the free pages no reservation holds.
// The caller commits (hugetlb_commit) once the page is in place, or gives it back with
// Memory::free_unused (restore_reserve_on_error). Errors: ENOMEM (no page for it).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
auto Mm<F, Env, Tlb, FE>::alloc_hugetlb_folio(const Vma& v, uint64_t va) -> Result<HugeAlloc> {
  const uint64_t idx = file_index(v, va);
  bool reserved = false;
  if (v.shared) {
    reserved = mem_->file(v.file).resv.has(idx);
  } else if (const ResvMap* m = v.resv == kNoResv ? nullptr : &resv_maps_[v.resv]) {
    reserved = !m->has(idx);
  }
  Result<uint32_t> r = mem_->alloc(v.hshift, reserved);
  if (!r) return r.err;
  return HugeAlloc{r.value, reserved};
}

// vma_commit_reservation: the page for va is in place; its index enters the map (a shared
// mapping's: the file holds a page there; a private one's: its reservation is used).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::hugetlb_commit(const Vma& v, uint64_t va) {
  const uint64_t idx = file_index(v, va);
  if (v.shared) {
    mem_->file(v.file).resv.set(idx);
  } else if (ResvMap* m = vma_resv(v)) {
    m->set(idx);
  }
}

// unmap_ref_private, on the side of a process the owner forked: a private hugetlb owner whose
// copy on write found the pool empty takes the anonymous page back (Memory::unmap_ref_private).
// Each of this address space's private hugetlb VMAs that is not an owner (it holds no
// reservation map) and maps `folio` where its owner does unmaps it, and is marked
// HPAGE_RESV_UNMAPPED: its next missing fault is SIGBUS ("killed due to inadequate hugepage
// pool").
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::unmap_ref_private(uint32_t folio) {
  const Folio& f = mem_->folio(folio);
  if (!f.used || f.file != kNoFile) return;
  const uint64_t va = f.anon_va;
  for (Vma& v : vmas_) {
    if (!v.used || !v.hugetlb || v.shared || v.resv != kNoResv || !v.contains(va)) continue;
    const View w = view(va);
    if (!present(w.entry) || mem_->folio_at(w.entry.addr) != folio) continue;
    const uint64_t start = align_down(va, v.hshift), end = start + bit(v.hshift);
    notify_start({NotifyEvent::unmap, start, end});
    (void)zap(v, start, end, /*drop_markers=*/true);  // one whole leaf: no split, no table
    notify_end({NotifyEvent::unmap, start, end});
    v.resv_unmapped = true;
  }
}

}  // namespace hugepte::mm
