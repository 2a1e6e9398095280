// hugepte/mm/zap.hpp - what Linux keeps in mm/memory.c beside the fault path: zapping.
// zap is zap_page_range_single / unmap_page_range down to zap_pte_range (leaves crossing the
// range split first, as zap_pmd_range splits a THP); free_below is free_pgtables for the
// tables under one hstate slot; punch_hole is unmap_mapping_range + the
// page-cache truncation of hugetlbfs_punch_hole / shmem_fallocate(PUNCH_HOLE).
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// unmap_mapping_range for this address space: every VMA mapping the file's bytes [start,
// end) has that part zapped (uffd-wp protected pages leave uffd-wp markers), inside a CLEAR
// notifier pair per VMA. Memory::punch_hole calls it on every address space, then truncates.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::unmap_mapping_range(uint32_t file, uint64_t start, uint64_t end) {
  for (Vma& v : vmas_) {
    if (!v.used || v.file != file) continue;
    const uint64_t vs = v.pgoff, ve = v.pgoff + (v.end - v.start);
    const uint64_t s = max(vs, start), e = min(ve, end);
    if (s >= e) continue;
    const uint64_t a = v.start + (s - vs), b = v.start + (e - vs);
    notify_start({NotifyEvent::clear, a, b});
    Err err = zap(v, a, b, false);
    notify_end({NotifyEvent::clear, a, b});
    if (err != Err::ok) return err;
  }
  return Err::ok;
}

// Removes the mappings of [start, end) in v: a present leaf is released (folio accounting)
// and becomes none, or a uffd-wp marker on a file VMA registered for WP when it was uffd-wp
// protected (unless drop_markers); uffd-wp and guard markers stay unless drop_markers;
// poison markers and swap entries go. Leaves crossing the edges are split first. Tables
// stay (munmap and collapse free them). One TLB invalidation at the end if a leaf went, and
// only after it are the folio references dropped (mmu_gather: tlb_finish_mmu).
// Errors: ENOMEM when the tables the edges need (a split leaf, a replicated non-present entry)
// cannot be had; they are reserved before anything changes, so nothing has.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::zap(Vma& v, uint64_t start, uint64_t end, bool drop_markers) {
  uint64_t need[F::levels] = {};
  zap_edge_tables(v, start, end, drop_markers, need);
  if (Err e = tenv_.reserve(need); e != Err::ok) return e;
  defer_puts_ = true;
  bool flushed_any = false;
  Err err = Err::ok;
  // The walker's cursor over [start, end) (zap_pte_range's loop): it walks into the tables a
  // split installs where it stands (refresh) and past a whole leaf or group (seek).
  for (Cursor<F, TEnv> c(pt_, start, end); !c.done();) {
    const auto [va, f, e, eb, ee] = here(c);
    if (present(e)) {
      Handle h = group_handle(f, va);
      if (h.va < start || h.va + h.size() > end) {
        uint64_t at = h.va < start ? start : end;
        if ((err = range_.split(at, smaller_fit(h.shift, at))) != Err::ok) break;  // reserved
        if (uint32_t id = mem_->folio_at(e.addr); id != kNoFolio)
          account_split(v, id, h.va, h.shift);
        c.refresh();
        continue;
      }
      Entry old = ops_.get_and_clear(h);
      flushed_any = true;
      uint32_t id = mem_->folio_at(old.addr);
      if (id != kNoFolio) account_unmap(v, id, align_down(old.addr, h.shift), h.shift);
      if (!drop_markers && old.soft.uffd_wp && v.backing == Backing::file && (v.uffd & kRegWp))
        ops_.set(h, pte::make_marker(kMarkerUffdWp));
      c.seek(h.va + h.size());
      continue;
    }
    if (e.kind == Kind::none || zap_keeps(v, e, drop_markers)) {
      c.next();
      continue;
    }
    if (eb < start || ee > end) {  // a non-present entry bigger than the range: replicate it
      if ((err = replicate(va, f, e)) != Err::ok) break;  // reserved
      c.refresh();
      continue;
    }
    write_entry(va, f, 0);
    c.next();
  }
  if (flushed_any) flush(start, end);
  defer_puts_ = false;
  mem_->put_deferred();
  tenv_.unreserve();
  return err;
}

// zap_pte_range: guard markers stay; uffd-wp markers stay on file VMAs only ("for anon: always
// drop the marker"); poison markers go.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::zap_keeps(const Vma& v, const Entry& e, bool drop_markers) const {
  return e.kind == Kind::marker && !drop_markers && !(e.swp.offset & kMarkerPoisoned) &&
         ((e.swp.offset & kMarkerGuard) ||
          ((e.swp.offset & kMarkerUffdWp) && v.backing == Backing::file));
}

// The table pages zap may need at the edges of [start, end), by level, added to need: a
// present leaf crossing an edge is split (one table per level from below its own down to the
// size that fits the edge), a non-present entry crossing it is replicated level by level until
// the copies fit. Both edges are counted as they are now; if one split serves both, the
// reservation holds a page too many, which zap gives back.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::zap_edge_tables(const Vma& v, uint64_t start, uint64_t end,
                                          bool drop_markers, uint64_t* need) {
  for (const uint64_t inside : {start, end - 1}) {
    Result<Found> fr = find(pt_, inside, 0);
    if (!fr || fr.value.level == 0) continue;  // no table is finer than a page table
    const Found f = fr.value;
    const Entry e = F::decode(f.raw, f.level);
    if (present(e)) {
      split_tables(inside == start ? start : end, need);
    } else if (e.kind != Kind::none && !zap_keeps(v, e, drop_markers)) {
      const uint64_t eb = align_down(inside, F::shift(f.level)), ee = eb + bit(F::shift(f.level));
      if (eb >= start && ee <= end) continue;
      const uint64_t at = eb < start ? start : end;
      for (unsigned l = f.level; l-- > 0;) {
        ++need[l];
        if (aligned(at, F::shift(l))) break;  // the copies at l fit the edge
      }
    }
  }
}

// Replaces the non-present entry at f (level > 0, covering va) by a table of copies of it:
// the walker's find_or_alloc, all or nothing (ENOMEM changes nothing).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::replicate(uint64_t va, const Found& f, const Entry& e) {
  struct Copies {
    const Mm* mm;
    Entry e;
    Result<uint64_t> alloc(unsigned level) { return mm->pt_.alloc_table(level); }
    void free(uint64_t pa, unsigned level) { mm->pt_.free_table(pa, level); }
    bool adopt(uint64_t raw, unsigned level) { return !present(F::decode(raw, level)); }
    void init(uint64_t* t, unsigned level, uint64_t) {
      const uint64_t m = encode_at(e, level);
      mm->pt_.fill_offline(t, level, bit(F::index_bits(level)), [m](uint64_t) { return m; });
    }
  } src{this, e};
  return find_or_alloc(pt_, va, f.level - 1, src).err;
}

// The table pages, by level, added to need, that splitting the present leaf holding `at` so
// that `at` becomes an edge takes (zap's and uffd-wp's edges): one per level from below the
// leaf down to the largest size `at` is aligned to. None if no leaf holds at or it starts there.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::split_tables(uint64_t at, uint64_t* need) const {
  if (!F::canonical(at)) return;
  Result<Found> fr = find(pt_, at, 0);
  if (!fr || fr.value.level == 0 || !present(F::decode(fr.value.raw, fr.value.level))) return;
  const Handle h = group_handle(fr.value, at);
  if (h.va == at) return;
  for (unsigned l = huge_size_or_page(smaller_fit(h.shift, at)).level; l < fr.value.level; ++l)
    ++need[l];
}

// The largest leaf size below `have` to which `at` is aligned.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
unsigned Mm<F, Env, Tlb, FE>::smaller_fit(unsigned have, uint64_t at) {
  LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = sizes.count; i-- > 0;)
    if (sizes.shift[i] < have && aligned(at, sizes.shift[i])) return sizes.shift[i];
  return kPage;
}

// Calls fn(handle, entry) for every present logical leaf whose whole extent lies in
// [start, end) (leaves crossing the edges are visited too; callers that care split first).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
template <class Fn>
Err Mm<F, Env, Tlb, FE>::for_each_present(uint64_t start, uint64_t end, Fn fn) {
  for (Cursor<F, TEnv> c(pt_, start, end); !c.done();) {
    const Found f{c.slot(), c.old(), c.level()};
    if (present(F::decode(f.raw, f.level))) {
      Handle h = group_handle(f, c.addr());
      fn(h, ops_.get(h));
      c.seek(h.va + h.size());
    } else {
      c.next();
    }
  }
  return Err::ok;
}

// Unlinks and frees the tables under the hstate slot at h (whose leaves were zapped): each
// goes through the commit path, which invalidates the walk caches over the slot once and frees
// the tables after it (free_pgtables).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::free_below(uint64_t h, unsigned hshift) {
  HugeSize sz = huge_size_or_page(hshift);
  Result<Found> fr = find(pt_, h, sz.level);
  if (!fr || fr.value.level != sz.level || sz.level == 0) return;
  const TlbFlush walks{h, h + bit(hshift), static_cast<uint8_t>(kPage), kAnyLevel, false};
  Invalidations<F, TEnv, CTlb> inv(pt_, ctlb_);
  for (uint64_t i = 0; i < bit(hshift - F::shift(sz.level)); ++i) {
    uint64_t* slot = fr.value.slot + i;
    uint64_t old = Table::load(slot), none = 0;
    if (F::is_table(old, sz.level)) replace(pt_, inv, slot, sz.level, 1, &old, &none, walks);
  }
  inv.finish();
}

}  // namespace hugepte::mm
