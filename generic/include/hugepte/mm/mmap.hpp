// hugepte/mm/mmap.hpp - Linux mm/mmap.c and mm/vma.c: the VMAs of an Mm. mmap is
// do_mmap/mmap_region with MAP_FIXED_NOREPLACE, munmap is do_vmi_munmap (split_vma at its
// edges, zap, free_pgtables, then the VMAs go), vma_at is vma_lookup.
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// mmap(MAP_FIXED_NOREPLACE). len rounds up to whole pages (hstate pages for a hugetlbfs file).
// A hugetlbfs mapping reserves its pages unless MAP_NORESERVE, and a writable one reaching past
// the file's end extends the file (hugetlb.hpp). Errors: EINVAL (len 0, misaligned start or
// pgoff - to the hstate for hugetlbfs -, a shared anonymous or a
// file-less file mapping, a max_shift the format cannot map, an hstate the format cannot map),
// ERANGE (outside the VA space), EEXIST (overlaps a VMA), ENOSPC (no VMA slot), ENOMEM (too
// few free hugetlb pages to reserve, or the file cannot grow).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Result<Vma*> Mm<F, Env, Tlb, FE>::mmap(const VmaSpec& s) {
  if (s.len == 0 || !aligned(s.start, kPage)) return Err::einval;
  // The length rounds up to whole pages - to whole hstate pages for a hugetlbfs file
  // (ksys_mmap_pgoff) - as in do_mmap.
  unsigned len_shift = kPage;
  if (s.backing == Backing::file && s.file < Mem::kMaxFiles && mem_->file(s.file).used &&
      mem_->file(s.file).kind == FileKind::hugetlb)
    len_shift = mem_->file(s.file).shift;
  if (s.len > ~uint64_t{0} - bit(len_shift)) return Err::enomem;
  const uint64_t len = align_down(s.len + bit(len_shift) - 1, len_shift);
  if (Err e = check_range<F>(s.start, s.start + len); e != Err::ok) return e;
  Vma v;
  v.used = true;
  v.start = s.start;
  v.end = s.start + len;
  v.prot = s.prot;
  v.shared = s.shared;
  v.backing = s.backing;
  v.file = s.file;
  v.pgoff = s.backing == Backing::anon ? s.start : s.pgoff;  // anonymous: vm_pgoff is the address
  v.noreserve = s.noreserve;
  v.hshift = kPage;
  if (s.backing == Backing::anon) {
    if (s.shared) return Err::einval;
    v.max_shift = s.max_shift == 0 ? kPage : s.max_shift;
    if (v.max_shift < kPage || !huge_or_page(v.max_shift)) return Err::einval;
  } else {
    if (s.file >= Mem::kMaxFiles || !mem_->file(s.file).used) return Err::einval;
    const File& f = mem_->file(s.file);
    v.hugetlb = f.kind == FileKind::hugetlb;
    v.hshift = f.shift;
    v.max_shift = f.shift;
    if (v.hugetlb && !huge_size<F>(f.shift)) return Err::einval;
    if (!aligned(s.start, f.shift) || !aligned(len, f.shift) || !aligned(s.pgoff, f.shift))
      return Err::einval;
  }
  if (const Vma* o = find_vma(v.start); o && o->start < v.end) return Err::eexist;
  Vma* slot = unused_vma();
  if (!slot) return Err::enospc;
  // hugetlbfs reserves the pages and a writable mapping extends the file (hugetlbfs_file_mmap);
  // a shmem file does not grow (a fault past its end is SIGBUS).
  if (v.hugetlb) {
    if (Err e = hugetlbfs_file_mmap(v); e != Err::ok) return e;
  }
  *slot = v;
  return &vma_merge(*slot);  // mmap_region: the new mapping joins a neighbour it fits
}

// munmap of [start, start + len) with len rounded up to whole pages, as do_vmi_munmap: the VMAs
// crossing its edges are split there first (split_vma), then every VMA inside goes: every entry
// (markers too), the folios' mapcounts and references, the tables left empty. Threads blocked
// in a userfault there stay blocked (a wake covering them lets them fault again: SIGSEGV). With
// UFFD_FEATURE_EVENT_UNMAP an UNMAP event follows and thread tid waits for its read. A range
// with no VMA in it is no error. Errors (nothing changes): EINVAL (empty or misaligned start,
// an edge inside a hugetlb VMA off its hstate), ENOMEM (no VMA slot for a split).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::munmap(uint64_t start, uint64_t len, Tid tid) {
  if (len == 0 || !aligned(start, kPage) || len > ~uint64_t{0} - bit(kPage) ||
      start + len + (bit(kPage) - 1) < start)
    return Err::einval;
  const uint64_t end = align_down(start + len + (bit(kPage) - 1), kPage);  // PAGE_ALIGN(len)
  for (const Vma& v : vmas_)
    if (v.used && v.hugetlb && ((v.start < start && start < v.end && !aligned(start, v.hshift)) ||
                                (v.start < end && end < v.end && !aligned(end, v.hshift))))
      return Err::einval;  // hugetlb_vm_op_split
  if (Err e = split_vmas_at(start, end); e != Err::ok) return e;
  // userfaultfd_unmap_prep: each userfaultfd with EVENT_UNMAP that a VMA in the range is
  // registered with hears of it, once.
  bool unmap_event[kMaxUffds] = {};
  for (const Vma& v : vmas_)
    if (v.used && v.start < end && start < v.end && wants_event(v, kFeatEventUnmap))
      unmap_event[v.uctx] = true;
  for (Vma& v : vmas_) {
    if (!v.used || v.start < start || v.end > end) continue;
    notify_start({NotifyEvent::unmap, v.start, v.end});
    Err e = zap(v, v.start, v.end, /*drop_markers=*/true);
    notify_end({NotifyEvent::unmap, v.start, v.end});
    if (e != Err::ok) return e;
    if (pt_.has_root()) range_.unmap(v.start, v.end - v.start);  // frees the empty tables
    hugetlb_vm_op_close(v);
    v.used = false;
  }
  // userfaultfd_unmap_complete: the UNMAP events, and thread tid waits until they are read.
  for (unsigned i = 0; i < kMaxUffds; ++i)
    if (unmap_event[i]) queue_event(static_cast<uint8_t>(i), UffdEvent::unmap, start, end, tid);
  return Err::ok;
}

// Splits the VMAs that cross start or end there (split_vma), so that [start, end) holds whole
// VMAs. All or nothing: ENOMEM (too few free VMA slots for the splits and `spare` more) before
// any split.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::split_vmas_at(uint64_t start, uint64_t end, unsigned spare) {
  unsigned need = spare, free = 0;
  for (const Vma& v : vmas_) {
    if (!v.used) {
      ++free;
      continue;
    }
    need += (v.start < start && start < v.end) + (v.start < end && end < v.end);
  }
  if (need > free) return Err::enomem;
  for (const uint64_t at : {start, end}) {
    Vma* v = nullptr;
    for (Vma& c : vmas_)
      if (c.used && c.start < at && at < c.end) v = &c;
    if (!v) continue;
    Vma* tail = unused_vma();  // counted above
    *tail = *v;
    if (ResvMap* m = vma_resv(*v)) ++m->refs;  // both pieces share a private reservation map
    tail->start = at;
    tail->pgoff = v->pgoff + (at - v->start);
    v->end = at;
    // S1's piece counts follow the folio to the VMA that now maps it.
    for (unsigned i = 0; i < piece_n_; ++i) {
      uint64_t va = 0;
      if (pieces_[i].vma == vma_index(*v) && folio_va(*tail, pieces_[i].folio, va))
        pieces_[i].vma = vma_index(*tail);
    }
  }
  return Err::ok;
}

// Whether v - changed or new - and its neighbour nb could be one VMA: is_mergeable_vma (the
// same flags, file and userfaultfd, contiguous offsets - an anonymous VMA's offset is its
// address - and not hugetlb, whose VM_DONTEXPAND makes it VM_SPECIAL) and
// is_mergeable_anon_vma: the same anon_vma, or one of the two has none and nb's chain is
// singular (nb has an anon_vma of its own, not a fork child's). A neighbour with no anon_vma
// has an empty chain: v must have none either.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::vma_mergeable(const Vma& v, const Vma& nb) const {
  const Vma& a = nb.end == v.start ? nb : v;
  const Vma& b = nb.end == v.start ? v : nb;
  if (a.end != b.start || a.hugetlb || b.hugetlb) return false;
  if (!(a.prot == b.prot) || a.shared != b.shared || a.backing != b.backing || a.file != b.file ||
      a.noreserve != b.noreserve || a.max_shift != b.max_shift || a.hgm != b.hgm ||
      a.uffd != b.uffd || (a.uffd && a.uctx != b.uctx) || b.pgoff != a.pgoff + (a.end - a.start))
    return false;
  const bool singular = nb.anon_vma != 0 && !nb.anon_vma_forked;
  if ((v.anon_vma == 0 || nb.anon_vma == 0) && singular) return true;
  return v.anon_vma == nb.anon_vma;
}

// keep takes gone's range (they are adjacent) and its anon_vma if it has none; S1's piece
// counts follow (a folio both map counts once).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::vma_absorb(Vma& keep, Vma& gone) {
  if (gone.start < keep.start) {
    keep.start = gone.start;
    keep.pgoff = gone.pgoff;
  } else {
    keep.end = gone.end;
  }
  if (keep.anon_vma == 0) {
    keep.anon_vma = gone.anon_vma;
    keep.anon_vma_forked = gone.anon_vma_forked;
  }
  const uint32_t to = vma_index(keep), from = vma_index(gone);
  for (unsigned i = 0; i < piece_n_;) {
    if (pieces_[i].vma != from) {
      ++i;
      continue;
    }
    if (Pieces* k = pieces_of(to, pieces_[i].folio, false)) {
      const uint32_t id = pieces_[i].folio;
      k->n += pieces_[i].n;
      drop_pieces(&pieces_[i]);
      folio_account_whole(*mem_, id, -1);
      drop_ref(id);
    } else {
      pieces_[i++].vma = to;
    }
  }
  gone.used = false;
}

// vma_merge: v joins the VMA that ends where it starts and the one that starts where it ends,
// where they fit (vma_mergeable; both only if their anon_vmas fit each other too, cases 1 and
// 6 of vma_merge). Returns the VMA that holds v's range now.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Vma& Mm<F, Env, Tlb, FE>::vma_merge(Vma& v) {
  Vma* prev = nullptr;
  Vma* next = nullptr;
  for (Vma& o : vmas_) {
    if (!o.used || &o == &v) continue;
    if (o.end == v.start) prev = &o;
    if (o.start == v.end) next = &o;
  }
  const bool after = prev && vma_mergeable(v, *prev);
  const bool before = next && vma_mergeable(v, *next);
  if (after) {
    const bool both = before && (prev->anon_vma == 0 || next->anon_vma == 0 ||
                                 prev->anon_vma == next->anon_vma);
    vma_absorb(*prev, v);
    if (both) vma_absorb(*prev, *next);
    return *prev;
  }
  if (before) {
    vma_absorb(*next, v);
    return *next;
  }
  return v;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
const Vma* Mm<F, Env, Tlb, FE>::find_vma(uint64_t va) const {
  const Vma* best = nullptr;
  for (const Vma& v : vmas_)
    if (v.used && v.end > va && (!best || v.start < best->start)) best = &v;
  return best;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Vma* Mm<F, Env, Tlb, FE>::unused_vma() {
  for (Vma& v : vmas_)
    if (!v.used) return &v;
  return nullptr;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Vma* Mm<F, Env, Tlb, FE>::vma_at(uint64_t va) {
  for (Vma& v : vmas_)
    if (v.used && v.contains(va)) return &v;
  return nullptr;
}

}  // namespace hugepte::mm
