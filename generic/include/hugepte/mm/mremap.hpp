// hugepte/mm/mremap.hpp - Linux mm/mremap.c: mremap(2). Shrink in place, grow in place, or
// move: the VMA is copied to the new place (copy_vma), its entries move there as they are
// (move_page_tables), and the old range is unmapped (unless MREMAP_DONTUNMAP). With
// UFFD_FEATURE_EVENT_REMAP the moved VMA keeps its userfaultfd registration and a REMAP event
// tells the monitor (mremap_userfaultfd_prep / _complete); without it the registration is gone.
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// mremap(addr, old_len, new_len, flags, new_addr) by thread tid, as Linux 6.1 has it. Lengths
// round up to whole pages (hstate pages for hugetlb). Returns where the mapping is now.
//   - old_len >= new_len without MREMAP_FIXED: the tail goes (munmap) and addr stays;
//   - growing: in place if the VMA ends at addr + old_len and nothing follows it, else moved
//     (MREMAP_MAYMOVE) to the lowest free range above - the kernel's choice of address differs,
//     so a caller that compares with Linux moves with MREMAP_FIXED;
//   - MREMAP_FIXED: whatever is at [new_addr, new_addr + new_len) is unmapped first, then the
//     range moves there; MREMAP_DONTUNMAP leaves the old VMA in place, empty (and without its
//     anon_vma).
// A move keeps every entry as it is (uffd-wp bits and markers included, as 6.1 does) and each
// folio's mapcount; a private hugetlb VMA's reservations go with it (clear_vma_resv_huge_pages).
// Events, each waited on by thread tid until read: UNMAP for what a FIXED or shrinking move
// unmaps first, then REMAP {from: addr, to: new address, len: old_len}, then UNMAP of the old
// range.
// Errors: EINVAL (unknown flags, FIXED or DONTUNMAP without MAYMOVE, DONTUNMAP with a new
// length, addr or new_addr misaligned - to the hstate for hugetlb -, new_len 0, the new range
// overlapping the old, outside the address space; hugetlb growing or with DONTUNMAP), EFAULT
// (no VMA at addr, the old range not inside it, growing a hugetlb VMA in place), ENOMEM
// (cannot grow in place without MAYMOVE, no free range, no VMA slot or table page).
// The model's limit: a move of a non-hugetlb VMA mapping a folio larger than a page must keep
// its alignment (EINVAL; Linux splits it).
// Invalidation: a move is one UNMAP notifier pair over the old range around the entries'
// move and one TLB invalidation of it (move_page_tables), then the munmap of the old range
// with its own pair (unmap_region), as in Linux; shrinking is a munmap.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Result<uint64_t> Mm<F, Env, Tlb, FE>::mremap(uint64_t addr, uint64_t old_len, uint64_t new_len,
                                             uint32_t flags, uint64_t new_addr, Tid tid) {
  if (flags & ~(kMremapMaymove | kMremapFixed | kMremapDontunmap)) return Err::einval;
  if ((flags & kMremapFixed) && !(flags & kMremapMaymove)) return Err::einval;
  if ((flags & kMremapDontunmap) && (!(flags & kMremapMaymove) || old_len != new_len))
    return Err::einval;
  if (!aligned(addr, kPage)) return Err::einval;
  const uint64_t round = bit(kPage) - 1;
  if (old_len > ~uint64_t{0} - round || new_len > ~uint64_t{0} - round) return Err::einval;
  old_len = align_down(old_len + round, kPage);
  new_len = align_down(new_len + round, kPage);
  if (new_len == 0) return Err::einval;
  Vma* v = vma_at(addr);
  if (v && v->hugetlb) {
    const unsigned h = v->hshift;
    if (!aligned(addr, h) || ((flags & kMremapFixed) && !aligned(new_addr, h)))
      return Err::einval;
    old_len = align_down(old_len + bit(h) - 1, h);
    new_len = align_down(new_len + bit(h) - 1, h);
    if (new_len > old_len || (flags & kMremapDontunmap)) return Err::einval;
  }
  const bool to = flags & (kMremapFixed | kMremapDontunmap);
  if (!to && old_len >= new_len) {  // shrink (or nothing) in place
    if (old_len > new_len) {
      if (Err e = munmap(addr + new_len, old_len - new_len, tid); e != Err::ok) return e;
    }
    return addr;
  }
  if (to) {  // mremap_to
    if ((flags & kMremapFixed) &&
        (!aligned(new_addr, kPage) || check_range<F>(new_addr, new_addr + new_len) != Err::ok ||
         (addr + old_len > new_addr && new_addr + new_len > addr)))
      return Err::einval;
    if (flags & kMremapFixed) {
      if (Err e = munmap(new_addr, new_len, tid); e != Err::ok) return e;
    }
    if (old_len > new_len) {
      if (Err e = munmap(addr + new_len, old_len - new_len, tid); e != Err::ok) return e;
      old_len = new_len;
    }
  }
  // vma_to_resize
  v = vma_at(addr);
  if (!v || old_len > v->end - addr) return Err::efault;
  if (new_len > old_len && v->hugetlb) return Err::efault;
  if (!to) {
    // Grow in place: the range ends the VMA and nothing lies after it (vma_expandable).
    const uint64_t e = v->end, grown = e + (new_len - old_len);
    const Vma* next = find_vma(e);
    if (addr + old_len == e && grown > e && check_range<F>(e, grown) == Err::ok &&
        !(next && next->start < grown)) {
      v->end = grown;
      return addr;
    }
    if (!(flags & kMremapMaymove)) return Err::enomem;
  }
  if (!(flags & kMremapFixed)) {
    Result<uint64_t> at = unmapped_area(new_len, v->hshift, addr + old_len);
    if (!at) return at.err;
    new_addr = at.value;
  }
  if (Err e = move_vma(addr, old_len, new_len, new_addr, flags, tid); e != Err::ok) return e;
  return new_addr;
}

// get_unmapped_area, the model's way: the lowest range of len at or above `from`, aligned to
// 1 << shift, that no VMA meets. ENOMEM if there is none.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Result<uint64_t> Mm<F, Env, Tlb, FE>::unmapped_area(uint64_t len, unsigned shift,
                                                     uint64_t from) const {
  for (uint64_t at = align_down(from + bit(shift) - 1, shift);;) {
    if (at + len < at || check_range<F>(at, at + len) != Err::ok) return Err::enomem;
    const Vma* in = find_vma(at);
    if (!in || in->start >= at + len) return at;
    at = align_down(in->end + bit(shift) - 1, shift);
  }
}

// move_vma: [addr, addr + old_len), inside one VMA, becomes a VMA of its own; a copy of it goes to
// [new_addr, new_addr + new_len) (merging with its new neighbours where it fits), the entries
// move, the REMAP event is queued, and the old range is unmapped (DONTUNMAP: left empty).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::move_vma(uint64_t addr, uint64_t old_len, uint64_t new_len,
                                  uint64_t new_addr, uint32_t flags, Tid tid) {
  const uint64_t end = addr + old_len, delta = new_addr - addr;
  // Everything that can fail comes first: the entries' alignment, the new tables, the VMA
  // slots for the split and the copy.
  uint64_t need[F::levels] = {};
  if (Err e = plan_move(addr, end, delta, need); e != Err::ok) return e;
  if (Err e = tenv_.reserve(need); e != Err::ok) return e;
  if (Err e = split_vmas_at(addr, end, /*spare=*/1); e != Err::ok) {
    tenv_.unreserve();
    return e;
  }
  Vma& ov = *vma_at(addr);  // exactly the old range now
  Vma& nv = *unused_vma();  // the spare slot
  nv = ov;
  nv.start = new_addr;
  nv.end = new_addr + new_len;
  // mremap_userfaultfd_prep: the registration goes with the VMA only for EVENT_REMAP.
  const bool remap_event = wants_event(ov, kFeatEventRemap);
  if (!remap_event) {
    nv.uffd = 0;
    nv.uctx = 0;
  }
  // clear_vma_resv_huge_pages: the old VMA hands a private reservation map to the copy.
  ov.resv = kNoResv;
  move_page_tables(ov, nv, addr, end, delta);
  tenv_.unreserve();
  const uint8_t ctx = ov.uctx;
  if (flags & kMremapDontunmap) {
    if (!ov.shared) ov.anon_vma = 0;  // unlink_anon_vmas
    ov.anon_vma_forked = false;
  }
  vma_merge(nv);  // copy_vma
  if (remap_event) queue_event(ctx, UffdEvent::remap, addr, end, tid, new_addr);
  if (!(flags & kMremapDontunmap)) return munmap(addr, old_len, tid);
  return Err::ok;
}

// move_page_tables' plan for [start, end) moving delta bytes: every entry must land on an
// address aligned as it is (the model keeps large leaves whole: EINVAL otherwise), and `need`
// gets the table pages the new places lack.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::plan_move(uint64_t start, uint64_t end, uint64_t delta,
                                   uint64_t* need) const {
  for (Cursor<F, TEnv> c(pt_, start, end); !c.done();) {
    const auto [va, f, e, eb, ee] = here(c);
    const unsigned s = present(e) ? group_handle(f, va).shift : F::shift(f.level);
    if (e.kind != Kind::none) {
      if (!aligned(delta, s)) return Err::einval;
      if (Err err = plan_walk(align_down(va, s) + delta, s, need); err != Err::ok) return err;
    }
    c.seek(align_down(va, s) + bit(s));
  }
  return Err::ok;
}

// move_page_tables: every entry of [start, end) in ov goes to the same place in nv, delta
// bytes away, as it is - but if ov is registered with a userfaultfd without EVENT_REMAP, the
// uffd-wp bits go and uffd-wp markers are dropped (move_ptes' need_clear_uffd_wp; Debian's
// 6.1 has it); each folio keeps its mapcount and references (the new entry is accounted
// before the old one goes). The new tables are reserved (plan_move). One UNMAP notifier pair
// over the old range, one TLB invalidation.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::move_page_tables(Vma& ov, Vma& nv, uint64_t start, uint64_t end,
                                           uint64_t delta) {
  const bool clear_wp = ov.uffd && !(ctx_[ov.uctx].features & kFeatEventRemap);
  notify_start({NotifyEvent::unmap, start, end});
  for (Cursor<F, TEnv> c(pt_, start, end); !c.done();) {
    const auto [va, f, e, eb, ee] = here(c);
    if (present(e)) {
      const Handle h = group_handle(f, va);
      Entry pe = ops_.get(h);
      const uint32_t id = mem_->folio_at(pe.addr);
      if (clear_wp) pe = pte::clear_uffd_wp(pe);
      Result<Handle> nh = walk_alloc(h.va + delta, h.shift);  // reserved: cannot fail
      if (nh) {
        ops_.set(nh.value, pe);
        if (id != kNoFolio) account_map(nv, id, align_down(pe.addr, h.shift), h.shift);
      }
      (void)ops_.get_and_clear(h);
      if (id != kNoFolio) {
        account_unmap(ov, id, align_down(pe.addr, h.shift), h.shift);
        Folio& fo = mem_->folio(id);
        if (fo.anon_owner == this && fo.file == kNoFile && ov.contains(fo.anon_va))
          fo.anon_va += delta;
      }
      c.seek(h.va + h.size());
      continue;
    }
    if (e.kind != Kind::none) {
      const unsigned s = F::shift(f.level);
      Entry ne = e;
      if (clear_wp) ne.swp.uffd_wp = false;
      const bool drop = clear_wp && e.kind == Kind::marker && (e.swp.offset & kMarkerUffdWp);
      Result<Handle> nh = walk_alloc(align_down(va, s) + delta, s);  // reserved
      if (nh && !drop) ops_.set(nh.value, ne);
      write_entry(va, f, 0);
    }
    c.next();
  }
  flush(start, end);
  notify_end({NotifyEvent::unmap, start, end});
}

}  // namespace hugepte::mm
