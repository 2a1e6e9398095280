// hugepte/mm/userfaultfd.hpp - Linux mm/userfaultfd.c: mfill_atomic and mfill_atomic_pte for
// UFFDIO_COPY, ZEROPAGE, CONTINUE and POISON; mwriteprotect_range and uffd_wp_range
// (change_protection with MM_CP_UFFD_WP) for UFFDIO_WRITEPROTECT. The userfaultfd file itself
// (API, REGISTER, read, WAKE, close, handle_userfault) is fs_userfaultfd.hpp.
#pragma once

#include "hugepte/format.hpp"
#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// --- mm/userfaultfd.c: mfill_atomic
// ---------------------------------------------------------------

// UFFDIO_COPY. Errors (docs/mm.md §1.4): EINVAL, ENOENT, EEXIST, ENOMEM, EFAULT, EAGAIN.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
UffdResult Mm<F, Env, Tlb, FE>::uffd_copy(uint64_t dst, const void* src, uint64_t len,
                                          uint32_t mode, Ufd fd) {
  return mfill_atomic(Mfill::copy, dst, len, mode, src, fd);
}

// UFFDIO_COPY from memory of this address space at src_va, as the kernel copies from the
// monitor's own buffer: the copy first reads the source with page faults disabled
// (copy_huge_page_from_user); where a source page is not mapped yet it falls back to a copy
// with faults enabled - for hugetlb through a temporary huge page (alloc_huge_page_vma: from
// the buddy allocator, or for a gigantic size from the pool's unreserved free pages, else
// ENOMEM; Memory::temporary_page) - and the source pages are faulted in (read). The data is copied
// from the source pages. Errors: as uffd_copy, and EFAULT where a source page cannot be read (no
// VMA, a signal, a userfault).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
UffdResult Mm<F, Env, Tlb, FE>::uffd_copy_from(uint64_t dst, uint64_t src_va, uint64_t len,
                                               uint32_t mode, Ufd fd) {
  static const unsigned char kVaSource = 0;  // mfill_atomic wants a source: the VA says where
  src_va_mode_ = true;
  src_delta_ = src_va - dst;
  UffdResult r = mfill_atomic(Mfill::copy, dst, len, mode, &kVaSource, fd);
  src_va_mode_ = false;
  return r;
}

// The source of one COPY unit, [src, src + len) of this address space, ready to be read
// (see uffd_copy_from). All or nothing but for the source pages faulted in.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::copy_source_ready(const Vma& dst_vma, uint64_t src, uint64_t len) {
  bool populated = true;
  for (uint64_t p = src; p < src + len; p += bit(kPage)) {
    const Vma* sv = vma_at(p);
    if (!sv || !(sv->prot.read || sv->prot.write || sv->prot.exec)) return Err::efault;
    populated = populated && allows(view(p).entry, Access::read);
  }
  if (populated) return Err::ok;
  if (dst_vma.hugetlb && mem_->temporary_page(dst_vma.hshift) != Err::ok) return Err::enomem;
  for (uint64_t p = src; p < src + len; p += bit(kPage))
    if (access(p, Access::read, current_).kind != AccessKind::ok) return Err::efault;
  return Err::ok;
}

// UFFDIO_ZEROPAGE (EINVAL on hugetlb).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
UffdResult Mm<F, Env, Tlb, FE>::uffd_zeropage(uint64_t dst, uint64_t len, uint32_t mode, Ufd fd) {
  return mfill_atomic(Mfill::zeropage, dst, len, mode, nullptr, fd);
}

// UFFDIO_CONTINUE (EFAULT nothing cached, EIO poisoned, EEXIST present).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
UffdResult Mm<F, Env, Tlb, FE>::uffd_continue(uint64_t dst, uint64_t len, uint32_t mode, Ufd fd) {
  return mfill_atomic(Mfill::cont, dst, len, mode, nullptr, fd);
}

// UFFDIO_POISON: MARKER(POISONED) into strictly none entries.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
UffdResult Mm<F, Env, Tlb, FE>::uffd_poison(uint64_t dst, uint64_t len, uint32_t mode, Ufd fd) {
  return mfill_atomic(Mfill::poison, dst, len, mode, nullptr, fd);
}

// The units an mfill of [va, end) in v proceeds by: the hstate for hugetlb (a page-size-
// aligned largest fit under HGM for CONTINUE and POISON), the base page otherwise.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
unsigned Mm<F, Env, Tlb, FE>::mfill_unit(const Vma& v, Mfill op, uint64_t va, uint64_t end) const {
  if (!v.hugetlb) return kPage;
  if (!v.hgm || op == Mfill::copy) return v.hshift;
  LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = sizes.count; i-- > 0;) {
    unsigned s = sizes.shift[i];
    if (s > v.hshift) continue;
    if (aligned(va, s) && va + bit(s) <= end) return s;
  }
  return kPage;
}

// mfill_atomic (mfill_atomic_hugetlb for hugetlb VMAs): unit by unit, each all or nothing.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
UffdResult Mm<F, Env, Tlb, FE>::mfill_atomic(Mfill op, uint64_t dst, uint64_t len, uint32_t mode,
                                             const void* src, Ufd fd) {
  // Refused before it starts: the result field is not written (reported = false).
  const bool v61 = opt_.profile == Profile::linux_6_1;
  const UffdCtx* c = ctx_of(fd);
  if (!c) return {Err::ebadf, 0, false};
  if (!c->api || (op == Mfill::poison && v61)) return {Err::einval, 0, false};
  uint32_t allowed = op == Mfill::copy || (op == Mfill::cont && !v61) ? (kModeDontwake | kModeWp)
                                                                  : kModeDontwake;
  if (c->mmap_changing || c->changing) return {Err::eagain, 0, false};
  if (mode & ~allowed) return {Err::einval, 0, false};
  if (len == 0 || !aligned(dst, kPage) || !aligned(len, kPage) || dst + len < dst ||
      !F::canonical(dst) || !F::canonical(dst + len - 1))
    return {Err::einval, 0, false};
  Vma* vp = vma_at(dst);
  // Registered with any userfaultfd (find_dst_vma); the wake-up is on fd's.
  if (!vp || dst + len > vp->end || vp->uffd == 0) return {Err::enoent, 0};
  Vma& v = *vp;
  if ((mode & kModeWp) && !(v.uffd & kRegWp)) return {Err::einval, 0};
  if (op == Mfill::zeropage && v.hugetlb) return {Err::einval, 0};
  if (op == Mfill::cont && v.backing == Backing::anon) return {Err::einval, 0};
  if (op == Mfill::copy && src == nullptr) return {Err::efault, 0};
  if (!v.shared) anon_vma_prepare(v);  // mfill_atomic: anon_vma_prepare for a private VMA
  bool hgm_units = v.hugetlb && v.hgm && op != Mfill::copy;
  if (v.hugetlb && !hgm_units && (!aligned(dst, v.hshift) || !aligned(len, v.hshift)))
    return {Err::einval, 0};

  uint64_t end = dst + len, va = dst;
  Err err = Err::ok;
  while (va < end) {
    unsigned s =
        mfill_unit(v, op, va, hgm_units ? min(end, align_down(va, v.hshift) + bit(v.hshift)) : end);
    const void* usrc = src ? static_cast<const unsigned char*>(src) + (va - dst) : nullptr;
    err = mfill_atomic_pte(op, v, va, s, mode, usrc);
    if (err != Err::ok) break;
    va += bit(s);
  }
  uint64_t done_bytes = va - dst;
  if (!(mode & kModeDontwake) && done_bytes) wake_userfault(static_cast<uint8_t>(fd), dst, va);
  if (done_bytes == 0) return {err, 0};
  return {done_bytes < len ? Err::eagain : Err::ok, done_bytes};
}

// mfill_atomic_pte (mfill_atomic_pte_copy / _zeropage / _continue / _poison):
// One unit of an mfill ioctl, all or nothing.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::mfill_atomic_pte(Mfill op, Vma& v, uint64_t va, unsigned shift,
                                          uint32_t mode, const void* src) {
  uint64_t need[F::levels] = {};
  if (Err e = plan_walk(va, shift, need); e != Err::ok) return e;
  // The slot as it is now, to check the state the ioctl requires.
  bool strict = op == Mfill::poison || (op == Mfill::zeropage && !v.shared);
  if (!slot_state_ok(va, shift, strict)) return Err::eexist;
  uint64_t off = file_offset(v, va);
  uint32_t id = kNoFolio;
  uint64_t pa = 0;
  bool reserved = false;  // a hugetlb page that took a reservation
  bool writable = false, dirty = !v.hugetlb;  // mfill_atomic_install_pte: mkdirty
  bool wp = mode & kModeWp;
  if (v.backing == Backing::file && off >= mem_->file(v.file).size) return Err::efault;
  switch (op) {
    case Mfill::copy:
    case Mfill::zeropage: {
      if (v.backing == Backing::file && v.shared &&
          mem_->cache_lookup(v.file, file_index(v, va)) != kNoFolio)
        return Err::eexist;
      if (op == Mfill::copy && src_va_mode_) {
        if (Err e = copy_source_ready(v, va + src_delta_, bit(shift)); e != Err::ok) return e;
      }
      bool zero_pfn = op == Mfill::zeropage && !v.shared;
      Result<uint32_t> r = Err::enomem;
      if (zero_pfn) {
        r = mem_->zero_page();
      } else if (v.hugetlb && shift == v.hshift) {  // hugetlb_mfill_atomic_pte
        Result<HugeAlloc> a = alloc_hugetlb_folio(v, va);
        if (!a) return a.err;
        r = a.value.id, reserved = a.value.reserved;
      } else {
        r = mem_->alloc(shift);
      }
      if (!r) return r.err;
      id = r.value;
      pa = mem_->folio(id).pa;
      writable = !zero_pfn && v.prot.write && !wp;
      dirty = !zero_pfn;
      break;
    }
    case Mfill::cont: {
      id = mem_->cache_lookup(v.file, file_index(v, va));
      if (id == kNoFolio) return Err::efault;
      const Folio& fo = mem_->folio(id);
      if (fo.hwpoison) return Err::eio;
      pa = fo.pa + (off & (bit(fo.shift) - 1));
      writable = v.shared && v.prot.write && !wp;
      break;
    }
    case Mfill::poison:
      break;
  }
  if (op != Mfill::poison) {
    if (Err e = can_install(v, shift, pa, wp); e != Err::ok) {
      if (op == Mfill::copy || (op == Mfill::zeropage && v.shared)) mem_->free_unused(id, reserved);
      return e;
    }
  }
  if (Err e = tenv_.reserve(need); e != Err::ok) {
    if (op == Mfill::copy || (op == Mfill::zeropage && v.shared)) mem_->free_unused(id, reserved);
    return e;
  }
  Handle h = walk_alloc(va, shift).value;
  tenv_.unreserve();
  if (op == Mfill::poison) {
    ops_.set(h, pte::make_marker(kMarkerPoisoned));
    return Err::ok;
  }
  if (op == Mfill::copy || (op == Mfill::zeropage && v.shared)) {
    const Folio& fo = mem_->folio(id);
    if (op == Mfill::copy && src_va_mode_) {
      for (uint64_t off = 0; off < bit(shift); off += bit(kPage)) {
        const View sv = view(va + src_delta_ + off);
        mem_->env().copy(fo.pa + off,
                         sv.entry.addr + ((va + src_delta_ + off) & (bit(sv.shift) - 1)),
                         bit(kPage));
      }
    } else if (op == Mfill::copy) {
      mem_->env().copy_in(fo.pa, src, bit(shift));
    }
    else mem_->env().zero(fo.pa, bit(shift));
    if (v.backing == Backing::file && v.shared) mem_->cache_add(v.file, file_index(v, va), id);
    if (v.hugetlb && shift == v.hshift) hugetlb_commit(v, va);
  }
  install(v, h, id, pa, writable, dirty, wp);
  if (op == Mfill::copy || (op == Mfill::zeropage && v.shared)) mem_->put(id);
  return Err::ok;
}

// --- mm/userfaultfd.c: mwriteprotect_range, uffd_wp_range
// -----------------------------------------

// UFFDIO_WRITEPROTECT. mode kWpModeWp: present entries become read-only + uffd-wp, none
// entries of file-backed VMAs (and of anonymous ones with WP_UNPOPULATED) become uffd-wp
// markers. mode 0: the uffd-wp bit goes, a marker that was only uffd-wp returns to none, and
// waiters in range wake unless DONTWAKE. One invalidate_range pair (PROTECTION_VMA) and one
// TLB invalidation. Errors: EINVAL (misaligned - hstate for hugetlb without HGM -, WP with
// DONTWAKE), ENOENT (a VMA in range not registered for WP, or a hole), EAGAIN
// (mmap_changing), ENOMEM (tables for markers; nothing changed).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::uffd_writeprotect(uint64_t start, uint64_t len, uint32_t mode,
                                          Ufd fd) {
  const UffdCtx* c = ctx_of(fd);
  if (!c) return Err::ebadf;
  if (!c->api) return Err::einval;
  if ((mode & kWpModeWp) && (mode & kWpModeDontwake)) return Err::einval;
  if (mode & ~(kWpModeWp | kWpModeDontwake)) return Err::einval;
  if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage) || start + len < start)
    return Err::einval;
  if (c->mmap_changing || c->changing) return Err::eagain;
  uint64_t end = start + len;
  for (uint64_t va = start; va < end;) {
    Vma* v = vma_at(va);
    if (!v || !(v->uffd & kRegWp)) return Err::enoent;
    // mwriteprotect_range: the whole range's start and len, aligned to each hugetlb VMA's hstate.
    if (v->hugetlb && !v->hgm && (!aligned(start, v->hshift) || !aligned(len, v->hshift)))
      return Err::einval;
    va = v->end;
  }
  bool protect = mode & kWpModeWp;
  // Plan: the tables the edge splits and the markers need, reserved before anything changes.
  uint64_t need[F::levels] = {};
  for (uint64_t va = start; va < end;) {
    Vma& v = *vma_at(va);
    uint64_t e = min(end, v.end);
    split_tables(va, need);
    split_tables(e, need);
    if (protect && wp_wants_markers(v)) count_marker_tables(v, va, e, need);
    va = e;
  }
  if (Err e = tenv_.reserve(need); e != Err::ok) return e;
  // A present leaf crossing an edge of a VMA's part of the range is split first (THP-style:
  // every mapping stays as it was; only the range's part changes protection below).
  for (uint64_t va = start; va < end;) {
    Vma& v = *vma_at(va);
    uint64_t e = min(end, v.end);
    Err err = split_edge(v, va);
    if (err == Err::ok) err = split_edge(v, e);
    if (err != Err::ok) {  // cannot happen: the pages are reserved
      tenv_.unreserve();
      return err;
    }
    va = e;
  }
  notify_start({NotifyEvent::protection_vma, start, end});
  for (uint64_t va = start; va < end;) {
    Vma& v = *vma_at(va);
    uint64_t e = min(end, v.end);
    change_uffd_wp(v, va, e, protect);
    va = e;
  }
  flush(start, end);
  notify_end({NotifyEvent::protection_vma, start, end});
  tenv_.unreserve();
  if (!protect && !(mode & kWpModeDontwake)) wake_userfault(static_cast<uint8_t>(fd), start, end);
  return Err::ok;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::wp_wants_markers(const Vma& v) const {
  return v.backing == Backing::file || (ctx_[v.uctx].features & kFeatWpUnpopulated);
}

// The size of the markers WRITEPROTECT puts into a none entry of v at va (up to end).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
unsigned Mm<F, Env, Tlb, FE>::marker_shift(const Vma& v, uint64_t va, uint64_t end) const {
  if (!v.hugetlb) return kPage;
  if (!v.hgm) return v.hshift;
  return mfill_unit(v, Mfill::poison, va, min(end, align_down(va, v.hshift) + bit(v.hshift)));
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::count_marker_tables(const Vma& v, uint64_t start, uint64_t end,
                                              uint64_t* need) const {
  // Tables the descent to each marker unit would allocate (the walker's find, as plan_walk),
  // counting each new table once.
  uint64_t last_base[F::levels];
  for (uint64_t& b : last_base) b = ~uint64_t{0};
  for (uint64_t va = start; va < end;) {
    unsigned s = marker_shift(v, va, end);
    HugeSize sz = huge_size_or_page(s);
    Result<Found> f = find(pt_, va, sz.level);
    if (f && f.value.level > sz.level) {
      Kind k = F::decode(f.value.raw, f.value.level).kind;
      if (k == Kind::none || k == Kind::marker) {
        for (unsigned m = f.value.level; m > sz.level; --m) {
          uint64_t base = align_down(va, F::shift(m));
          if (last_base[m - 1] != base) ++need[m - 1], last_base[m - 1] = base;
        }
      }
    }
    va += bit(s);
  }
}

// uffd_wp_range: change_protection(MM_CP_UFFD_WP / MM_CP_UFFD_WP_RESOLVE).
// Applies (protect) or resolves uffd-wp over [start, end) of v.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::change_uffd_wp(Vma& v, uint64_t start, uint64_t end, bool protect) {
  // The walker's cursor over [start, end): one entry after the other, sideways in a table,
  // into a table installed where it stands (refresh), past a whole group (seek).
  for (Cursor<F, TEnv> c(pt_, start, end); !c.done();) {
    const auto [va, f, e, eb, ee] = here(c);
    if (present(e)) {
      Handle h = group_handle(f, va);
      if (h.va < start || h.va + h.size() > end) {  // split_edge() left none: cannot happen
        c.seek(h.va + h.size());
        continue;
      }
      Entry old = ops_.modify_prot_start(h);
      Entry n = old;
      if (protect) n = pte::mkuffd_wp(old);
      else {
        n = pte::clear_uffd_wp(old);
        if (v.prot.write && v.shared) n = pte::mkwrite<F>(n);
      }
      ops_.modify_prot_commit(h, old, n);
      c.seek(h.va + h.size());
      continue;
    }
    if (e.kind == Kind::marker || e.kind == Kind::none) {
      bool covered = eb >= start && ee <= end;
      unsigned want = marker_shift(v, va, end);
      bool fits = F::shift(f.level) <= want && covered;
      if (e.kind == Kind::none && (!protect || !wp_wants_markers(v))) {
        c.next();
        continue;
      }
      // change_pte_range: poisoned and guard markers are skipped (docs/mm.md §1.5), never
      // made uffd-wp nor replicated.
      if (e.kind == Kind::marker && (e.swp.offset & (kMarkerPoisoned | kMarkerGuard))) {
        c.next();
        continue;
      }
      if (!fits && f.level > 0 && (protect || e.kind == Kind::marker)) {
        // replicate / allocate down to the marker's size (reserved when protecting), then
        // stand on what the new tables hold for va
        if (walk_alloc(va, want)) {
          c.refresh();
        } else {
          c.next();
        }
        continue;
      }
      uint64_t flags = e.kind == Kind::marker ? e.swp.offset : 0;
      flags = protect ? (flags | kMarkerUffdWp) : (flags & ~kMarkerUffdWp);
      uint64_t raw = flags ? encode_at(pte::make_marker(flags), f.level) : 0;
      write_entry(va, f, raw);
      c.next();
      continue;
    }
    if (pte::is_migration(e)) {
      Entry n = e;
      n.swp.uffd_wp = protect;
      write_entry(va, f, F::encode(n, f.level).value);
    }
    c.next();
  }
}

// Splits the present leaf that maps across `at` (if any) so that `at` is a leaf boundary,
// moving its accounting to the pieces. ENOMEM changes nothing.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::split_edge(Vma& v, uint64_t at) {
  if (!pt_.has_root() || !F::canonical(at)) return Err::ok;
  Found f = find(pt_, at, 0).value;
  Entry e = F::decode(f.raw, f.level);
  if (!present(e)) return Err::ok;
  Handle h = group_handle(f, at);
  if (h.va == at) return Err::ok;
  if (Err err = range_.split(at, smaller_fit(h.shift, at)); err != Err::ok) return err;
  if (uint32_t id = mem_->folio_at(e.addr); id != kNoFolio) account_split(v, id, h.va, h.shift);
  return Err::ok;
}

// The uffd-wp marker bit of the first sub-entry (markers are written identically).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::wp_marker(const Handle& h) const {
  Entry e = F::decode(Table::load(h.slot), h.level);
  return e.kind == Kind::marker && (e.swp.offset & kMarkerUffdWp);
}

}  // namespace hugepte::mm
