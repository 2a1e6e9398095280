// hugepte/mm/mprotect.hpp - Linux mm/mprotect.c: mprotect(2). do_mprotect_pkey walks the VMAs
// of the range, mprotect_fixup splits each at the range's edges (split_vma) and gives it the
// new permissions, change_protection rewrites its present entries (pte_modify).
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// mprotect(start, len, prot): len rounds up to whole pages; the VMAs of the range get `prot`,
// VMA by VMA as do_mprotect_pkey does, so an error part way leaves the VMAs before it changed.
// Each present entry takes the new permissions (pte_modify): PROT_NONE makes it a protnone
// entry (present to software, not to the CPU); write permission is only ever kept, never
// granted - an entry that was read-only (copy on write, uffd-wp, a clean shared page) stays so
// and the next write fault decides, as without MM_CP_TRY_CHANGE_WRITABLE. uffd-wp bits and
// markers stay. A leaf crossing a VMA edge is split first.
// Errors: EINVAL (start not page aligned; an edge inside a hugetlb VMA off its hstate,
// hugetlb_vm_op_split), ENOMEM (start in no VMA, a hole in the range, the range wraps, no VMA
// slot or table page for a split).
// Invalidation: per VMA whose present entries change, one PROTECTION_VMA notifier pair around
// the change and one TLB invalidation of the range.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::mprotect(uint64_t start, uint64_t len, Prot prot) {
  if (!aligned(start, kPage)) return Err::einval;
  if (len == 0) return Err::ok;
  if (start + len + (bit(kPage) - 1) < start) return Err::enomem;
  const uint64_t end = align_down(start + len + (bit(kPage) - 1), kPage);
  Vma* v = vma_at(start);
  if (!v) return Err::enomem;
  for (uint64_t at = start;;) {
    const uint64_t e = min(end, v->end);
    if (Err err = mprotect_fixup(*v, at, e, prot); err != Err::ok) return err;
    if (e == end) return Err::ok;
    v = vma_at(e);
    if (!v) return Err::enomem;
    at = e;
  }
}

// PAGE_NONE: e made present to software only (protnone). Formats store its permissions their
// own way - some as read-only, kernel, no execute; some as no permission at all - so the first
// of those two spellings the format encodes is the one.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Entry Mm<F, Env, Tlb, FE>::page_none(Entry e, unsigned level) {
  e.kind = Kind::protnone;
  e.writable = false;
  e.prot = Prot{true, false, false, false};
  e.prot.write = false;
  if (F::encode(e, level)) return e;
  e.prot = Prot{};
  return e;
}

// mprotect_fixup for [start, end) of v: split v there, then the permissions of the VMA and of
// its entries, and the VMA merged with a neighbour it now fits (vma_merge). Nothing changes if
// v already has them.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::mprotect_fixup(Vma& v, uint64_t start, uint64_t end, Prot prot) {
  if (v.prot == prot) return Err::ok;
  if (v.hugetlb && ((start != v.start && !aligned(start, v.hshift)) ||
                    (end != v.end && !aligned(end, v.hshift))))
    return Err::einval;
  uint64_t need[F::levels] = {};
  split_tables(start, need);
  split_tables(end, need);
  if (Err e = tenv_.reserve(need); e != Err::ok) return e;
  if (Err e = split_vmas_at(start, end); e != Err::ok) {
    tenv_.unreserve();
    return e;
  }
  Vma& w = *vma_at(start);  // now exactly [start, end)
  Err err = split_edge(w, start);
  if (err == Err::ok) err = split_edge(w, end);
  tenv_.unreserve();
  if (err != Err::ok) return err;  // cannot happen: the table pages are reserved
  w.prot = prot;
  bool any = false;
  for_each_present(start, end, [&](const Handle&, const Entry&) { any = true; });
  if (any) change_protection(w, start, end, prot);
  vma_merge(w);  // with a neighbour that has these permissions already
  return Err::ok;
}

// change_protection of [start, end), all of VMA w: its present entries take prot.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::change_protection(const Vma& w, uint64_t start, uint64_t end,
                                            Prot prot) {
  const bool none = !prot.read && !prot.write && !prot.exec;
  notify_start({NotifyEvent::protection_vma, start, end});
  for_each_present(start, end, [&](const Handle& h, const Entry& old) {
    const bool writable = prot.write && old.writable && !old.soft.uffd_wp;
    Entry n = old;
    n.kind = Kind::leaf;
    n = pte::modify<F>(n, make_leaf(w, h, old.addr, writable, old.dirty, old.soft.uffd_wp).prot,
                       writable);
    if (none) n = page_none(n, h.level);
    if (!F::encode(n, h.level)) return;  // encoded before the entry is taken: cannot fail
    Entry o = ops_.modify_prot_start(h);
    ops_.modify_prot_commit(h, o, n);
  });
  flush(start, end);
  notify_end({NotifyEvent::protection_vma, start, end});
}

}  // namespace hugepte::mm
