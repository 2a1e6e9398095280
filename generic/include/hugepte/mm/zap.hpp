// hugepte/mm/zap.hpp - what Linux keeps in mm/memory.c beside the fault path: zapping.
// zap is zap_page_range_single / unmap_page_range down to zap_pte_range (leaves crossing the
// range split first, as zap_pmd_range splits a THP); free_below and free_subtree are
// free_pgtables for the tables under one hstate slot; punch_hole is unmap_mapping_range + the
// page-cache truncation of hugetlbfs_punch_hole / shmem_fallocate(PUNCH_HOLE).
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// Here, not in mmap.hpp: hole punch is unmap_mapping_range (zap, mm/memory.c), then truncation.
// hole punch (fallocate PUNCH_HOLE) of [offset, offset + len) of a file: every mapping of it
// is zapped (uffd-wp protected pages leave uffd-wp markers), then the cache drops the folios.
// Errors: EINVAL (no such file, misaligned, beyond i_size).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::punch_hole(u32 file, u64 offset, u64 len) {
  if (file >= Mem::kMaxFiles || !mem_->file(file).used) return Err::einval;
  const File& fl = mem_->file(file);
  if (len == 0 || !aligned(offset, fl.shift) || !aligned(len, fl.shift) || offset + len > fl.size ||
      offset + len < offset)
    return Err::einval;
  for (Vma& v : vmas_) {
    if (!v.used || v.file != file) continue;
    u64 vs = v.pgoff, ve = v.pgoff + (v.end - v.start);
    u64 s = max(vs, offset), e = min(ve, offset + len);
    if (s >= e) continue;
    u64 a = v.start + (s - vs), b = v.start + (e - vs);
    notify_start({NotifyEvent::clear, a, b});
    Err err = zap(v, a, b, false);
    notify_end({NotifyEvent::clear, a, b});
    if (err != Err::ok) return err;
  }
  for (u64 i = offset >> fl.shift; i < (offset + len) >> fl.shift; ++i) mem_->cache_remove(file, i);
  return Err::ok;
}

// Removes the mappings of [start, end) in v: a present leaf is released (folio accounting)
// and becomes none, or a uffd-wp marker on a file VMA registered for WP when it was uffd-wp
// protected (unless drop_markers); uffd-wp and guard markers stay unless drop_markers;
// poison markers and swap entries go. Leaves crossing the edges are split first. Tables
// stay (munmap and collapse free them). One TLB invalidation at the end if a leaf went.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::zap(Vma& v, u64 start, u64 end, bool drop_markers) {
  bool flushed_any = false;
  for (u64 va = start; va < end;) {
    Found f = find(pt_, va, 0).value;
    Entry e = F::decode(f.raw, f.level);
    u64 eb = align_down(va, F::shift(f.level)), ee = eb + bit(F::shift(f.level));
    if (present(e)) {
      Handle h = group_handle(f, va);
      if (h.va < start || h.va + h.size() > end) {
        u64 at = h.va < start ? start : end;
        if (Err err = range_.split(at, smaller_fit(h.shift, at)); err != Err::ok) return err;
        if (u32 id = mem_->folio_at(e.addr); id != kNoFolio) account_split(v, id, h.va, h.shift);
        continue;
      }
      Entry old = ops_.get_and_clear(h);
      flushed_any = true;
      u32 id = mem_->folio_at(old.addr);
      if (id != kNoFolio) account_unmap(v, id, align_down(old.addr, h.shift), h.shift);
      if (!drop_markers && old.soft.uffd_wp && v.backing == Backing::file && (v.uffd & kRegWp))
        ops_.set(h, pte::make_marker(kMarkerUffdWp));
      va = h.va + h.size();
      continue;
    }
    if (e.kind == Kind::none) {
      va = ee;
      continue;
    }
    // zap_pte_range: guard markers stay; uffd-wp markers stay on file VMAs only ("for anon:
    // always drop the marker"); poison markers go.
    bool keep = e.kind == Kind::marker && !drop_markers && !(e.swp.offset & kMarkerPoisoned) &&
                ((e.swp.offset & kMarkerGuard) ||
                 ((e.swp.offset & kMarkerUffdWp) && v.backing == Backing::file));
    if (keep) {
      va = ee;
      continue;
    }
    if (eb < start || ee > end) {  // a non-present entry bigger than the range: replicate it
      if (Err err = replicate(f, e); err != Err::ok) return err;
      continue;
    }
    pt_.store(f.slot, f.level, 0);
    va = ee;
  }
  if (flushed_any) flush(start, end);
  return Err::ok;
}

// Replaces the non-present entry at f (level > 0) by a table of copies of it.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::replicate(const Found& f, const Entry& e) {
  u64 need[8] = {};
  need[f.level - 1] = 1;
  if (Err err = tenv_.reserve(need); err != Err::ok) return err;
  u64 page = pt_.alloc_table(f.level - 1).value;
  tenv_.unreserve();
  u64* nt = pt_.table(page);
  u64 m = encode_at(e, f.level - 1);
  for (u64 i = 0; i < bit(F::index_bits(f.level - 1)); ++i) pt_.store(nt + i, f.level - 1, m);
  pt_.store(f.slot, f.level, F::make_table(page, f.level));
  return Err::ok;
}

// The largest leaf size below `have` to which `at` is aligned.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
unsigned Mm<F, Env, Tlb, FE>::smaller_fit(unsigned have, u64 at) {
  LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = sizes.count; i-- > 0;)
    if (sizes.shift[i] < have && aligned(at, sizes.shift[i])) return sizes.shift[i];
  return kPage;
}

// Calls fn(handle, entry) for every present logical leaf whose whole extent lies in
// [start, end) (leaves crossing the edges are visited too; callers that care split first).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
template <class Fn>
Err Mm<F, Env, Tlb, FE>::for_each_present(u64 start, u64 end, Fn fn) {
  for (u64 va = start; va < end;) {
    Found f = find(pt_, va, 0).value;
    Entry e = F::decode(f.raw, f.level);
    if (present(e)) {
      Handle h = group_handle(f, va);
      fn(h, ops_.get(h));
      va = h.va + h.size();
    } else {
      va = align_down(va, F::shift(f.level)) + bit(F::shift(f.level));
    }
    if (va == 0) break;
  }
  return Err::ok;
}

// Unlinks and frees the tables under the hstate slot at h (whose leaves were zapped).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::free_below(u64 h, unsigned hshift) {
  HugeSize sz = huge_size_or_page(hshift);
  Found f = find(pt_, h, sz.level).value;
  if (f.level != sz.level || sz.level == 0) return;
  u64 n = bit(hshift - F::shift(sz.level));
  bool any = false;
  for (u64 i = 0; i < n; ++i) {
    u64 raw = Table::load(f.slot + i);
    if (!F::is_table(raw, sz.level)) continue;
    pt_.store(f.slot + i, sz.level, 0);
    any = true;
    pending_free_[pending_n_++] = raw;
    if (pending_n_ == kPending) drain(sz.level, h, hshift);
  }
  if (any) drain(sz.level, h, hshift);
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::drain(unsigned level, u64 h, unsigned hshift) {
  ctlb_.flush(TlbFlush{h, h + bit(hshift), static_cast<u8>(kPage), kAnyLevel, false});
  for (unsigned i = 0; i < pending_n_; ++i) free_subtree(pending_free_[i], level);
  pending_n_ = 0;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::free_subtree(u64 table_raw, unsigned level) {
  u64 pa = F::out_addr(table_raw, level);
  if (level - 1 > 0) {
    u64* t = pt_.table(pa);
    for (u64 i = 0; i < bit(F::index_bits(level - 1)); ++i) {
      u64 raw = Table::load(t + i);
      if (F::is_table(raw, level - 1)) free_subtree(raw, level - 1);
    }
  }
  pt_.free_table(pa, level - 1);
}

}  // namespace hugepte::mm
