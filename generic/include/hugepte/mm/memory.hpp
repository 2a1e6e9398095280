// hugepte/mm/memory.hpp - Linux mm/memory.c: the fault path. handle_fault is handle_mm_fault
// (fault: __handle_mm_fault and handle_pte_marker), fault_missing the none-entry faults
// (do_anonymous_page, do_fault, hugetlb_no_page, with the huge_fault PUD -> PMD -> PTE fallback
// chosen by missing_shift), fault_present handle_pte_fault's present cases, do_wp_page CoW; and
// what installs a leaf: make_leaf (mk_pte / make_huge_pte), plan_walk and walk_alloc (__pud_alloc,
// __pmd_alloc, pte_alloc under the HGM rules), install (set_pte_range + the rmap).
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// handle_mm_fault for every level: see mm.hpp's file comment. `exact` is the faulting address.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
FaultResult Mm<F, Env, Tlb, FE>::handle_fault(uint64_t va, Access access) {
  ++c_.faults;
  FaultResult r = fault(va, access);
  ++c_.fault_kind[static_cast<unsigned>(r.kind)];
  return r;
}

// __handle_mm_fault: the VMA's permissions, then the entry found (markers: handle_pte_marker).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
FaultResult Mm<F, Env, Tlb, FE>::fault(uint64_t va, Access access) {
  Vma* vp = vma_at(va);
  if (!vp) return sig(FaultKind::sigsegv);
  Vma& v = *vp;
  bool write = access == Access::write;
  if ((write && !v.prot.write) || (access == Access::exec && !v.prot.exec) ||
      (access == Access::read && !v.prot.read && !v.prot.write && !v.prot.exec))
    return sig(FaultKind::sigsegv);
  Result<Found> fr = find(pt_, va, 0);
  if (!fr) return sig(FaultKind::sigsegv);
  Found f = fr.value;
  Entry e = F::decode(f.raw, f.level);
  switch (e.kind) {
    case Kind::leaf:
    case Kind::protnone:
      return fault_present(v, va, access, f);
    case Kind::swap:
      if (pte::is_hwpoison(e)) return sig(FaultKind::sigbus, poison_lsb(v, f, va));
      if (pte::is_migration(e)) return sig(FaultKind::retry);
      return sig(FaultKind::sigbus);
    case Kind::marker:
      // handle_pte_marker's order: poisoned, guard, uffd-wp.
      if (e.swp.offset & kMarkerPoisoned) return sig(FaultKind::sigbus, poison_lsb(v, f, va));
      if (e.swp.offset & kMarkerGuard) return sig(FaultKind::sigsegv);
      if (!(e.swp.offset & kMarkerUffdWp))
        return sig(FaultKind::sigbus);  // an empty marker is a bug
      // A uffd-wp marker left in a VMA no longer registered for WP: core mm clears it
      // (pte_marker_handle_uffd_wp); hugetlb still maps write-protected, with no event.
      return fault_missing(v, va, access, f, v.hugetlb || (v.uffd & kRegWp));
    case Kind::none:
      return fault_missing(v, va, access, f, false);
    case Kind::table:
    case Kind::locked:  // stage 2 only
    case Kind::invalid:
      break;
  }
  return sig(FaultKind::sigbus);
}

// lsb of a SIGBUS for poison found at `level`: the hstate for an hstate-level entry of a
// hugetlb VMA (VM_FAULT_HWPOISON_LARGE), otherwise the entry's own size.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
unsigned Mm<F, Env, Tlb, FE>::poison_lsb(const Vma& v, unsigned level) const {
  if (v.hugetlb && F::shift(level) >= F::shift(huge_size_or_page(v.hshift).level)) return v.hshift;
  return F::shift(level);
}

// The same for the entry f found at va. A contiguous hstate (arm64 CONT, riscv NAPOT) shares
// its level with its pieces: the poison is hstate-wide only when the whole group holds it
// (H0, or a POISON of the hstate), not when HGM split the group and one piece holds it (H1).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
unsigned Mm<F, Env, Tlb, FE>::poison_lsb(const Vma& v, const Found& f, uint64_t va) const {
  if (v.hugetlb) {
    HugeSize hs = huge_size_or_page(v.hshift);
    if (hs.cont && f.level == hs.level) {
      uint64_t n = bit(v.hshift - F::shift(f.level));
      uint64_t* first = f.slot - ((va >> F::shift(f.level)) & (n - 1));
      for (uint64_t i = 0; i < n; ++i)
        if (Table::load(first + i) != f.raw) return F::shift(f.level);
    }
  }
  return poison_lsb(v, f.level);
}

// The slot a missing fault fills: the hstate-level slot of a hugetlb VMA (or, with HGM and
// tables under it, the none entry the walk stopped at); for other VMAs the largest size the
// VMA allows whose aligned block lies in the VMA and whose slot holds nothing.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
unsigned Mm<F, Env, Tlb, FE>::missing_shift(const Vma& v, uint64_t va, const Found& f) const {
  if (v.hugetlb) {
    unsigned hl = huge_size_or_page(v.hshift).level;
    if (f.level < hl) return F::shift(f.level);  // inside HGM tables: this piece
    if (v.hgm && f.level == hl && F::shift(hl) < v.hshift) {
      // A contiguous hstate group (arm64 CONT-PMD) whose other entries already hold pieces
      // or tables: only this entry is free.
      uint64_t first = (va >> F::shift(hl)) & (bit(v.hshift - F::shift(hl)) - 1);
      Handle g{f.slot - first, align_down(va, v.hshift), static_cast<uint8_t>(hl),
               static_cast<uint8_t>(v.hshift)};
      if (!all_none_mostly(g, false)) return F::shift(hl);
    }
    return v.hshift;
  }
  LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = sizes.count; i-- > 0;) {
    unsigned s = sizes.shift[i];
    if (s > v.max_shift || s < kPage) continue;
    uint64_t base = align_down(va, s);
    if (base < v.start || base + bit(s) > v.end) continue;
    if (s > kPage && mem_->pool_free(s) == 0) continue;
    if (s > kPage && !mem_->has_pool(s)) continue;
    if (f.level < sizes.level[i]) continue;  // tables already hold something under this block
    if (slot_state_ok(base, s, false)) return s;
  }
  return kPage;
}

// A none entry or a uffd-wp marker: do_anonymous_page, do_fault (shmem), hugetlb_no_page.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
FaultResult Mm<F, Env, Tlb, FE>::fault_missing(Vma& v, uint64_t va, Access access, const Found& f,
                                               bool wp_marker) {
  bool write = access == Access::write;
  unsigned shift = missing_shift(v, va, f);
  uint32_t id = kNoFolio;
  bool cached = false;  // the folio comes from (or goes into) the page cache
  // A private hugetlb mapping whose owner took a page back (unmap_ref_private): SIGBUS, first
  // thing in hugetlb_no_page ("killed due to inadequate hugepage pool").
  if (v.hugetlb && v.resv_unmapped) return sig(FaultKind::sigbus);
  if (v.backing == Backing::file) {
    // Beyond i_size: SIGBUS, before any userfault (hugetlb_no_page, shmem_get_folio_gfp).
    if (file_offset(v, va) >= mem_->file(v.file).size) return sig(FaultKind::sigbus);
    id = mem_->cache_lookup(v.file, file_index(v, va));
    cached = id != kNoFolio;
    if (cached) {
      const Folio& fo = mem_->folio(id);
      if (fo.hwpoison) {
        // H0: the whole hstate page is gone (VM_FAULT_HWPOISON_LARGE). H1 with HGM: only the
        // poisoned base page; the healthy ones map one by one.
        uint64_t bad_va = align_down(va, fo.shift) + (fo.poisoned_pa - fo.pa);
        bool h1 = opt_.poison == PoisonPolicy::h1 && v.hgm;
        if (!h1) return sig(FaultKind::sigbus, fo.shift);
        if (align_down(va, kPage) == bad_va) return sig(FaultKind::sigbus, kPage);
        shift = kPage;
      }
      if (v.uffd & kRegMinor) return handle_userfault(v, va, kMsgMinor | (write ? kMsgWrite : 0));
    } else if (v.uffd & kRegMissing) {
      return handle_userfault(v, va, write ? kMsgWrite : 0);
    }
  } else if (v.uffd & kRegMissing) {
    return handle_userfault(v, va, write ? kMsgWrite : 0);
  }
  uint64_t base = align_down(va, shift);

  // Tables first (all or nothing), then the folio.
  uint64_t need[F::levels] = {};
  if (plan_walk(base, shift, need) != Err::ok) return sig(FaultKind::retry);
  if (tenv_.reserve(need) != Err::ok) return sig(FaultKind::sigbus);  // VM_FAULT_OOM

  FaultHow how = cached ? FaultHow::page_cache : FaultHow::new_folio;
  bool allocated = false, reserved = false, to_cache = false;
  if (!cached) {
    bool zero = v.backing == Backing::anon && !write && shift == kPage;
    Result<uint32_t> r = Err::enomem;
    if (zero) {
      r = mem_->zero_page();
    } else if (v.hugetlb) {  // from the reservation the index holds, if any
      Result<HugeAlloc> a = alloc_hugetlb_folio(v, va);
      if (a) r = a.value.id, reserved = a.value.reserved;
    } else {
      r = mem_->alloc(shift);
    }
    if (!r) {
      tenv_.unreserve();
      return sig(FaultKind::sigbus);  // pool empty: SIGBUS (hugetlb), OOM otherwise
    }
    id = r.value;
    allocated = !zero;
    if (zero) how = FaultHow::zero_page;
    else mem_->env().zero(mem_->folio(id).pa, bit(mem_->folio(id).shift));
    // Shared files cache the new folio; shmem caches private misses too (and the private
    // mapping then copies on write); a private hugetlb miss is an anonymous folio. It enters
    // the cache once nothing can fail.
    to_cache = allocated && v.backing == Backing::file && (v.shared || !v.hugetlb);
    cached = to_cache;
  }
  const Folio& fo = mem_->folio(id);
  uint64_t pa = v.backing == Backing::file ? fo.pa + (file_offset(v, base) & (bit(fo.shift) - 1))
                                      : fo.pa + (base - align_down(base, fo.shift));
  bool writable = false, dirty = false;
  if (v.shared) {
    writable = v.prot.write;
    dirty = write;
  } else if (!cached && how != FaultHow::zero_page) {
    // A private new folio is the faulting process's own: writable at once on a write fault;
    // a read maps it read-only and a later write reuses it (hugetlb_no_page + hugetlb_wp).
    writable = write && v.prot.write;
    dirty = write;
  }
  if (can_install(v, shift, pa, wp_marker) != Err::ok) {
    tenv_.unreserve();
    if (allocated) mem_->free_unused(id, reserved);
    return sig(FaultKind::sigbus);
  }
  Handle h = walk_alloc(base, shift).value;
  tenv_.unreserve();
  if (to_cache) mem_->cache_add(v.file, file_index(v, va), id);
  if (allocated && v.hugetlb) hugetlb_commit(v, va);
  install(v, h, id, pa, writable && !wp_marker, dirty, wp_marker);
  if (allocated) mem_->put(id);  // the mapping (and the cache) hold their own references
  if (wp_marker && write && (v.uffd & kRegWp)) return handle_userfault(v, va, kMsgWp | kMsgWrite);
  if (write && (!writable || wp_marker)) {  // the new entry is read-only: finish the write
    Found g = find(pt_, va, 0).value;
    return fault_present(v, va, access, g);  // a private write: copy on write right away
  }
  return done(how, shift);
}

// handle_pte_fault on a present entry: NUMA hinting, write protection, software A/D, spurious.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
FaultResult Mm<F, Env, Tlb, FE>::fault_present(Vma& v, uint64_t va, Access access, const Found& f) {
  Handle h = group_handle(f, va);
  Entry e = ops_.get(h);
  if (e.kind == Kind::protnone) {  // NUMA hinting: the VMA allows it, restore the permissions
    Entry old = ops_.modify_prot_start(h);
    Entry n = old;
    n.kind = Kind::leaf;
    n = pte::modify<F>(n, make_leaf(v, h, old.addr, old.writable, old.dirty, false).prot,
                       old.writable);
    ops_.modify_prot_commit(h, old, n);
    flush(h.va, h.va + h.size());
    return done(FaultHow::numa, h.shift);
  }
  if (access == Access::write) {
    if (!e.writable) {
      if (e.soft.uffd_wp && (v.uffd & kRegWp)) return handle_userfault(v, va, kMsgWp | kMsgWrite);
      return do_wp_page(v, va, h, e);
    }
    if (!e.prot.write || !e.dirty) {  // DBM without hardware dirty: record the write
      Entry want = pte::mkdirty<F>(pte::mkyoung(e));
      ops_.set_access_flags(h, want);
      return done(FaultHow::dirty, h.shift);
    }
  }
  if (!e.accessed) {
    ops_.set_access_flags(h, pte::mkyoung(e));
    return done(FaultHow::young, h.shift);
  }
  // flush_tlb_fix_spurious_fault: the walker had a stale, stricter entry.
  ctlb_.flush(TlbFlush{h.va, h.va + h.size(), static_cast<uint8_t>(F::shift(h.level)),
                       static_cast<uint8_t>(h.level), true});
  return done(FaultHow::spurious, h.shift);
}

// Write to a present, read-only entry of a VMA that allows writes.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
FaultResult Mm<F, Env, Tlb, FE>::do_wp_page(Vma& v, uint64_t va, const Handle& h, const Entry& e) {
  uint32_t old = mem_->folio_at(e.addr);
  if (old == kNoFolio) return sig(FaultKind::sigbus);
  Folio& of = mem_->folio(old);
  if (v.shared) {  // a shared page the VMA may write: just allow it
    ops_.set_access_flags(h, pte::mkdirty<F>(pte::mkwrite<F>(pte::mkyoung(e))));
    return done(FaultHow::wp_shared, h.shift);
  }
  if (of.file == kNoFile && !of.zero_page && mem_->mapcount(old) == 1) {  // exclusive anon
    ops_.set_access_flags(h, pte::mkdirty<F>(pte::mkwrite<F>(pte::mkyoung(e))));
    return done(FaultHow::reuse, h.shift);
  }
  // Copy what this entry maps into a new folio of the entry's size.
  unsigned shift = h.shift;
  if (shift != kPage && !mem_->has_pool(shift)) {  // a piece of a huge folio: copy 4K of it
    if (range_.split(va, kPage) != Err::ok) return sig(FaultKind::sigbus);
    account_split(v, old, h.va, h.shift);
    Found g = find(pt_, va, 0).value;
    return fault_present(v, va, Access::write, g);
  }
  Result<uint32_t> r = Err::enomem;
  const bool hstate = v.hugetlb && shift == v.hshift;
  if (hstate) {  // hugetlb_wp: the copy takes the reservation the index holds, if any
    Result<HugeAlloc> a = alloc_hugetlb_folio(v, va);
    if (a) r = a.value.id;
  } else {
    r = mem_->alloc(shift);
  }
  if (!r && hstate && v.resv != kNoResv && of.file == kNoFile) {
    // The owner of a private mapping (outside_reserve) takes its anonymous page back from the
    // processes it forked (unmap_ref_private) and, mapping it alone now, reuses it.
    mem_->unmap_ref_private(this, old);
    if (mem_->mapcount(old) == 1) {
      ops_.set_access_flags(h, pte::mkdirty<F>(pte::mkwrite<F>(pte::mkyoung(e))));
      return done(FaultHow::reuse, h.shift);
    }
  }
  if (!r) return sig(FaultKind::sigbus);
  if (hstate) hugetlb_commit(v, va);
  Folio& nf = mem_->folio(r.value);
  uint64_t src = align_down(e.addr, shift);
  mem_->env().copy(nf.pa, src, bit(shift));
  notify_start({NotifyEvent::clear, h.va, h.va + h.size()});
  ops_.clear_flush(h);
  account_unmap(v, old, src, shift);
  install(v, h, r.value, nf.pa, true, true, false);
  mem_->put(r.value);
  notify_end({NotifyEvent::clear, h.va, h.va + h.size()});
  ++c_.cow;
  return done(FaultHow::cow, shift);
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
FaultResult Mm<F, Env, Tlb, FE>::sig(FaultKind k, unsigned lsb) const {
  FaultResult r;
  r.kind = k;
  r.lsb = static_cast<uint8_t>(lsb);
  return r;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
FaultResult Mm<F, Env, Tlb, FE>::done(FaultHow how, unsigned shift) const {
  FaultResult r;
  r.how = how;
  r.shift = static_cast<uint8_t>(shift);
  return r;
}

// --- installing a leaf
// ----------------------------------------------------------------------------

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
auto Mm<F, Env, Tlb, FE>::group_handle(const Found& f, uint64_t va) const -> Handle {
  Entry e = F::decode(f.raw, f.level);
  unsigned s = F::shift(f.level);
  unsigned gs = e.cont_shift != 0 ? e.cont_shift : s;
  uint64_t first = (va >> s) & (bit(gs - s) - 1);
  return Handle{f.slot - first, align_down(va, gs), static_cast<uint8_t>(f.level),
                static_cast<uint8_t>(gs)};
}

// A leaf entry for folio memory at pa mapped by h in v.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Entry Mm<F, Env, Tlb, FE>::make_leaf(const Vma& v, const Handle& h, uint64_t pa, bool writable,
                                     bool dirty, bool uffd_wp) const {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = pa;
  e.shift = static_cast<uint8_t>(F::shift(h.level));
  e.cont_shift = static_cast<uint8_t>(h.group() ? h.shift : 0);
  e.prot = Prot{v.prot.read || v.prot.write || v.prot.exec, false, v.prot.exec, opt_.user};
  e.accessed = true;
  e.dirty = dirty;
  e.writable = writable && !uffd_wp;
  e.prot.write = pte::walker_writable<F>(e);
  e.soft.uffd_wp = uffd_wp;
  return e;
}

// Plans a descent to the slot for a piece of 1 << shift at va: counts the tables it would
// allocate (under none and marker entries; markers are replicated into the new table) and
// fails with EEXIST where a present leaf or another non-present entry is in the way, which a
// walk never splits.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::plan_walk(uint64_t va, unsigned shift, uint64_t* need) const {
  HugeSize sz = huge_size_or_page(shift);
  Result<Found> f = find(pt_, va, sz.level);
  if (!f) return f.err;
  if (f.value.level == sz.level) return Err::ok;
  Kind k = F::decode(f.value.raw, f.value.level).kind;
  if (k != Kind::none && k != Kind::marker) return Err::eexist;
  for (unsigned m = f.value.level; m > sz.level; --m) ++need[m - 1];
  return Err::ok;
}

// find_or_alloc's table source on the fault and uffd paths (__pte_alloc & co.): pages from the
// reservation, and a PTE marker standing where the new table goes is replicated into each of
// its entries (HGM: the marker covers every piece under it).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
struct Mm<F, Env, Tlb, FE>::MarkerTables {
  const Mm* mm;
  Result<uint64_t> alloc(unsigned level) { return mm->pt_.alloc_table(level); }
  void free(uint64_t pa, unsigned level) { mm->pt_.free_table(pa, level); }
  bool adopt(uint64_t raw, unsigned level) {
    Kind k = F::decode(raw, level).kind;
    return k == Kind::none || k == Kind::marker;
  }
  void init(uint64_t* t, unsigned level, uint64_t parent) {
    Entry e = F::decode(parent, level + 1);
    if (e.kind != Kind::marker) return;
    const uint64_t m = encode_at(pte::make_marker(e.swp.offset), level);
    mm->pt_.fill_offline(t, level, bit(F::index_bits(level)), [m](uint64_t) { return m; });
  }
};

// The descent itself (the tables were reserved): the walker's find_or_alloc with the marker
// rule above. Returns the handle at the piece's level.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
auto Mm<F, Env, Tlb, FE>::walk_alloc(uint64_t va, unsigned shift) -> Result<Handle> {
  HugeSize sz = huge_size_or_page(shift);
  uint64_t base = align_down(va, shift);
  MarkerTables src{this};
  Result<Found> f = find_or_alloc(pt_, base, sz.level, src);
  if (!f) return f.err;
  return Handle{f.value.slot, base, static_cast<uint8_t>(sz.level), static_cast<uint8_t>(shift)};
}

// One entry found at f (for va) changed to `next` through the commit path (commit.hpp): the
// invalidation its old value needs, if the hardware may have cached it, is issued before
// returning; none for the non-present values the callers change this way.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::write_entry(uint64_t va, const Found& f, uint64_t next) {
  const unsigned s = F::shift(f.level);
  const uint64_t b = align_down(va, s);
  Invalidations<F, TEnv, CTlb> inv(pt_, ctlb_);
  uint64_t old = f.raw;
  replace(pt_, inv, f.slot, f.level, 1, &old, &next,
          TlbFlush{b, b + bit(s), static_cast<uint8_t>(s), static_cast<uint8_t>(f.level), true});
  inv.finish();
}

// F::encode of a non-present entry for a slot at `level`: its size is the slot's (formats
// that check the value round-trips through decode, such as x86, refuse another size).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
uint64_t Mm<F, Env, Tlb, FE>::encode_at(Entry e, unsigned level) {
  if (e.kind != Kind::none) e.shift = static_cast<uint8_t>(F::shift(level));
  return F::encode(e, level).value;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
HugeSize Mm<F, Env, Tlb, FE>::huge_size_or_page(unsigned shift) {
  if (shift == kPage) return HugeSize{0, kPage, false};
  return huge_size<F>(shift).value;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::all_none_mostly(const Handle& h, bool strict) const {
  for (uint64_t i = 0; i < h.count(); ++i) {
    uint64_t raw = Table::load(h.sub(i));
    if (h.level > 0 && F::is_table(raw, h.level)) return false;
    Kind k = F::decode(raw, h.level).kind;
    if (k != Kind::none && (strict || k != Kind::marker)) return false;
  }
  return true;
}

// The slot for a piece of 1 << shift at va holds none (strict) or none/markers, at its level
// or above it; a table at its level (something finer is mapped) or a present leaf or swap
// entry above it are not.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::slot_state_ok(uint64_t va, unsigned shift, bool strict) const {
  HugeSize sz = huge_size_or_page(shift);
  Found f = find(pt_, va, sz.level).value;
  if (f.level > sz.level) {
    Kind k = F::decode(f.raw, f.level).kind;
    return k == Kind::none || (!strict && k == Kind::marker);
  }
  Handle h{f.slot - ((va >> F::shift(sz.level)) & (bit(shift - F::shift(sz.level)) - 1)),
           align_down(va, shift), static_cast<uint8_t>(sz.level), static_cast<uint8_t>(shift)};
  return all_none_mostly(h, strict);
}

// Whether install() can encode that leaf (checked before anything is reserved or written: a
// PA beyond the format's width or a permission it cannot express is EINVAL, never a half-
// done install).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::can_install(const Vma& v, unsigned shift, uint64_t pa,
                                     bool uffd_wp) const {
  HugeSize sz = huge_size_or_page(shift);
  Handle h{nullptr, align_down(pa, shift), static_cast<uint8_t>(sz.level),
           static_cast<uint8_t>(shift)};
  Entry e = make_leaf(v, h, align_down(pa, shift), v.prot.write && !uffd_wp, true, uffd_wp);
  return F::encode(e, sz.level).err;
}

// Installs folio memory at pa through h (a none-mostly slot) and accounts it. No
// invalidation: the slot was not present (docs/mm.md §1.4, R3 of §3.1).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::install(Vma& v, const Handle& h, uint32_t id, uint64_t pa, bool writable,
                                  bool dirty, bool uffd_wp) {
  Folio& f = mem_->folio(id);
  if (v.hugetlb || f.shift > kPage) dirty = dirty || writable;  // make_huge_pte: mkdirty
  Entry e = make_leaf(v, h, pa, writable, dirty, uffd_wp);
  ops_.set(h, e);
  account_map(v, id, pa, h.shift);
  if (f.file == kNoFile && !f.zero_page) {
    anon_vma_prepare(v);
    f.anon_va = h.va - (pa - f.pa);
    f.anon_owner = this;
  }
}

}  // namespace hugepte::mm
