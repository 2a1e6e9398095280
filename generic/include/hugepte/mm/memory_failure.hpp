// hugepte/mm/memory_failure.hpp - Linux mm/memory-failure.c: memory_failure and, per mapping,
// poison_h0 (hwpoison_user_mappings: the hstate entry becomes a hwpoison entry) or poison_h1
// (the HGM series: split, then unmap only the poisoned page); split_leaf is the HGM series'
// proposed hugetlb_split_to_shift, and account_split moves a split leaf's mapcount to its pieces.
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// madvise(MADV_HWPOISON) of the page at va by thread tid (madvise_inject_error): the page is
// faulted in as a read would (get_user_pages), then memory_failure on the page it maps.
// Errors: EINVAL (va not page aligned), EFAULT (the fault fails: no VMA, SIGBUS, SIGSEGV),
// EAGAIN (a userfault: the thread is blocked in it, as its madvise would be), and
// memory_failure's.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Result<uint64_t> Mm<F, Env, Tlb, FE>::madvise_hwpoison(uint64_t va, Tid tid) {
  if (!aligned(va, kPage)) return Err::einval;
  const AccessResult r = access(va, Access::read, tid);
  if (r.kind == AccessKind::blocked) return Err::eagain;
  if (r.kind != AccessKind::ok) return Err::efault;
  return memory_failure(r.pa);
}

// memory_failure(pa) as this address space sees it: the folio holding pa is marked poisoned
// (it stays in the page cache) and every mapping of it here is dealt with by the policy:
//   H0: the mapping's folio-level entry becomes a hwpoison entry (one invalidate pair per
//       mapped range); later accesses get SIGBUS with lsb = the folio's shift;
//   H1: for a shared hugetlb VMA (HGM allowed unless S0), the leaf is split down to the base
//       page (one invalidate pair over the leaf, tables as the split needs) and only that
//       page's entry becomes a hwpoison entry (lsb = base page shift).
// Returns how many mappings were changed. Errors: ENOENT (no folio at pa).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Result<uint64_t> Mm<F, Env, Tlb, FE>::memory_failure(uint64_t pa) {
  uint32_t id = mem_->folio_at(pa);
  if (id == kNoFolio) return Err::enoent;
  Folio& f = mem_->folio(id);
  if (!f.hwpoison) mem_->get(id);  // a poisoned folio never goes back to a pool
  f.hwpoison = true;
  f.poisoned_pa = align_down(pa, kPage);
  uint64_t n = 0;
  for (Vma& v : vmas_) {
    if (!v.used) continue;
    uint64_t va;
    if (!folio_va(v, id, va)) continue;
    bool mapped = false;
    for_each_present(va, va + bit(f.shift), [&](const Handle&, const Entry& e) {
      mapped = mapped || mem_->folio_at(e.addr) == id;
    });
    if (!mapped) continue;
    bool h1 = opt_.poison == PoisonPolicy::h1 && f.shift > kPage && v.hugetlb && v.shared &&
              mem_->policy() != Policy::s0;
    Err e = h1 ? poison_h1(v, id, va) : poison_h0(v, id, va);
    if (e != Err::ok) return e;
    ++n;
  }
  return n;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::poison_h0(Vma& v, uint32_t id, uint64_t va) {
  const Folio& f = mem_->folio(id);
  uint64_t end = va + bit(f.shift);
  notify_start({NotifyEvent::clear, va, end});
  Err e = zap(v, va, end, true);
  if (e == Err::ok && f.shift > kPage) free_below(va, f.shift);
  if (e == Err::ok) {
    uint64_t need[F::levels] = {};
    plan_walk(va, f.shift, need);
    e = tenv_.reserve(need);
    if (e == Err::ok) {
      Handle h = walk_alloc(va, f.shift).value;
      tenv_.unreserve();
      ops_.set(h, pte::swp_entry(kSwpHwpoison, f.pa >> kPage));
    }
  }
  notify_end({NotifyEvent::clear, va, end});
  return e;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::poison_h1(Vma& v, uint32_t id, uint64_t va) {
  const Folio& f = mem_->folio(id);
  uint64_t bad = va + (f.poisoned_pa - f.pa);
  Found fd = find(pt_, bad, 0).value;
  Entry e = F::decode(fd.raw, fd.level);
  if (!present(e)) return Err::ok;
  if (group_handle(fd, bad).shift > kPage) {
    if (Err err = split_leaf(bad, kPage); err != Err::ok) return err;
  }
  // try_to_unmap of the raw page only.
  Handle p = group_handle(find(pt_, bad, 0).value, bad);
  Notification n{NotifyEvent::clear, p.va, p.va + p.size()};
  notify_start(n);
  Entry old = ops_.clear_flush(p);
  account_unmap(v, id, align_down(old.addr, p.shift), p.shift);
  ops_.set(p, pte::swp_entry(kSwpHwpoison, f.poisoned_pa >> kPage));
  notify_end(n);
  return Err::ok;
}

// Where folio `id` would be mapped in v (file folios: by index; anonymous: where it was put).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::folio_va(const Vma& v, uint32_t id, uint64_t& va) const {
  const Folio& f = mem_->folio(id);
  if (f.file != kNoFile) {
    if (v.backing != Backing::file || v.file != f.file) return false;
    uint64_t off = f.index << f.shift;
    if (off < v.pgoff || off >= v.pgoff + (v.end - v.start)) return false;
    va = v.start + (off - v.pgoff);
    return true;
  }
  if (f.anon_owner != this || !v.contains(f.anon_va)) return false;
  va = f.anon_va;
  return true;
}

// hugetlb_split_to_shift (HGM memory-failure series, docs/mm.md §2.3b): the present leaf covering
// va is split so that va is mapped by an entry of 1 << target_shift; everything stays mapped
// with its write, dirty and uffd-wp bits (a 1G leaf split for 4K: 511 PMD leaves and a PTE
// table of 512). One invalidate pair (CLEAR) over the original leaf; mapcount and references
// move to the pieces as the policy says. A hugetlb VMA gets HGM.
// Errors: EINVAL (no VMA; a hugetlb VMA that cannot have HGM: private, or policy S0; target
// not a size below the leaf), EAGAIN (none or a marker there), EBUSY (a migration entry),
// EHWPOISON (a hwpoison entry), ENOMEM (nothing changed).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::split_leaf(uint64_t va, unsigned target_shift) {
  Vma* v = vma_at(va);
  if (!v) return Err::einval;
  if (v->hugetlb && (!v->shared || mem_->policy() == Policy::s0)) return Err::einval;
  Result<Found> fr = find(pt_, va, 0);
  if (!fr) return fr.err;
  Entry e = F::decode(fr.value.raw, fr.value.level);
  if (e.kind == Kind::none || e.kind == Kind::marker) return Err::eagain;
  if (pte::is_migration(e)) return Err::ebusy;
  if (pte::is_hwpoison(e)) return Err::ehwpoison;
  if (!present(e)) return Err::einval;
  Handle h = group_handle(fr.value, va);
  if (target_shift >= h.shift || !huge_or_page(target_shift)) return Err::einval;
  uint32_t id = mem_->folio_at(e.addr);
  Notification n{NotifyEvent::clear, h.va, h.va + h.size()};
  notify_start(n);
  Err err = range_.split(va, target_shift);
  if (err == Err::ok) {
    if (v->hugetlb) v->hgm = true;
    if (id != kNoFolio) account_split(*v, id, h.va, h.shift);
  }
  notify_end(n);
  return err;
}

// After a leaf of `have` at hva was split into pieces, moves its accounting to them.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::account_split(Vma& v, uint32_t id, uint64_t hva, unsigned have) {
  const Folio& f = mem_->folio(id);
  uint64_t base_pa = f.pa + (hva - align_down(hva, f.shift));
  // Count the new entries first (map before unmap so S1's count never touches zero).
  for_each_present(hva, hva + bit(have), [&](const Handle& h, const Entry& e) {
    account_map(v, id, align_down(e.addr, h.shift), h.shift);
  });
  account_unmap(v, id, base_pa, have);
}

}  // namespace hugepte::mm
