// hugepte/mm/fork.hpp - fork(2)'s address-space half: Linux kernel/fork.c dup_mmap (the VMAs)
// and mm/memory.c copy_page_range / copy_hugetlb_page_range (the entries).
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// fork: copies this address space into `child`, an empty one over the same Memory (its own
// tables, TLB and counters), as dup_mmap does:
//   - every VMA is copied; a private hugetlb VMA without its reservation map
//     (hugetlb_dup_vma_private: the child is not the owner);
//   - userfaultfd registrations (dup_userfaultfd): without UFFD_FEATURE_EVENT_FORK the child's
//     VMAs are not registered. With it, and if any VMA is registered, they keep their modes
//     under a userfaultfd of the child's own (child.uffd_*: UFFDIO_API done, the same
//     features), a FORK message is queued here and thread `tid` waits until the monitor reads
//     it (uffd_blocked(tid); range ioctls say EAGAIN meanwhile). If this userfaultfd is closed
//     first, the child's VMAs lose their registration and its userfaultfd is gone (EBADF);
//   - entries are copied only where copy_page_range would (vma_needs_copy): a child VMA
//     registered for WP, or a private VMA that ever held an anonymous page (anon_vma). Shared
//     and never-written private VMAs start empty in the child, which faults the pages in again;
//   - an anonymous page becomes shared by both and read-only in both (copy on write); a file
//     page and the zero page are mapped as they are; uffd-wp bits and uffd-wp markers are
//     copied only into a child VMA registered for WP; poison and guard markers, hwpoison and
//     migration entries always are.
// Errors: EINVAL (child not empty, not initialised, or over another Memory), ENOMEM (a table
// page of the child); after ENOMEM the child holds part of the copy and is to be destroyed
// (Linux tears the child down), no FORK message is queued - the parent is as before, but its
// copied anonymous pages stay read-only until their next write fault.
// Invalidation: per VMA with anonymous pages, one PROTECTION_PAGE notifier pair in the parent
// around its write-protection (copy_page_range's is_cow range) and, once at the end, a TLB
// invalidation of the whole parent (flush_tlb_mm).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::fork(Mm& child, Tid tid) {
  if (&child == this || child.mem_ != mem_ || !child.pt_.has_root()) return Err::einval;
  for (const Vma& c : child.vmas_)
    if (c.used) return Err::einval;
  bool event[kMaxUffds] = {};  // dup_userfaultfd: the userfaultfds the child gets a copy of
  for (const Vma& v : vmas_)
    if (v.used && wants_event(v, kFeatEventFork)) event[v.uctx] = true;
  child.opt_ = opt_;
  bool wrprotected = false;
  for (unsigned i = 0; i < kMaxVmas; ++i) {
    const Vma& v = vmas_[i];
    if (!v.used) continue;
    Vma& cv = child.vmas_[i];
    cv = v;
    cv.uffd = v.uffd && event[v.uctx] ? v.uffd : 0;
    cv.uctx = cv.uffd ? v.uctx : 0;
    cv.resv = kNoResv;
    // anon_vma_fork: a new anon_vma of the child's, chained to the parent's.
    cv.anon_vma = v.anon_vma ? child.next_anon_vma_++ : 0;
    cv.anon_vma_forked = v.anon_vma != 0;
    const bool keep_wp = (cv.uffd & kRegWp) != 0;  // userfaultfd_wp(dst_vma)
    if (!keep_wp && (v.shared || !v.anon_vma)) continue;  // vma_needs_copy
    bool cow_range = false;
    for (Cursor<F, TEnv> c(pt_, v.start, v.end); !c.done();) {
      const auto [va, f, e, eb, ee] = here(c);
      if (present(e)) {
        Handle h = group_handle(f, va);
        Entry pe = ops_.get(h);
        const uint32_t id = mem_->folio_at(pe.addr);
        const bool anon = id != kNoFolio && mem_->folio(id).file == kNoFile &&
                          !mem_->folio(id).zero_page;
        if (anon && pe.writable) {  // copy on write: read-only in the parent too
          if (!cow_range) {
            notify_start({NotifyEvent::protection_page, v.start, v.end});
            cow_range = true;
          }
          Entry old = ops_.modify_prot_start(h);
          ops_.modify_prot_commit(h, old, pte::wrprotect(old));
          pe = pte::wrprotect(pe);
          wrprotected = true;
        }
        const Entry ce = keep_wp ? pe : pte::clear_uffd_wp(pe);
        if (Err err = child.copy_entry(cv, h.va, h.shift, ce, id); err != Err::ok) {
          if (cow_range) notify_end({NotifyEvent::protection_page, v.start, v.end});
          if (wrprotected) ctlb_.flush_all();
          return err;
        }
        c.seek(h.va + h.size());
        continue;
      }
      const bool copy =
          (e.kind == Kind::swap) ||
          (e.kind == Kind::marker &&
           (keep_wp || (e.swp.offset & (kMarkerPoisoned | kMarkerGuard))));
      if (copy) {
        Entry ce = e;
        if (!keep_wp && ce.kind == Kind::marker)
          ce = pte::make_marker(ce.swp.offset & ~kMarkerUffdWp);
        else if (!keep_wp)
          ce.swp.uffd_wp = false;
        if (Err err = child.copy_entry(cv, va, F::shift(f.level), ce, kNoFolio); err != Err::ok) {
          if (cow_range) notify_end({NotifyEvent::protection_page, v.start, v.end});
          if (wrprotected) ctlb_.flush_all();
          return err;
        }
      }
      c.next();
    }
    if (cow_range) notify_end({NotifyEvent::protection_page, v.start, v.end});
  }
  if (wrprotected) ctlb_.flush_all();  // flush_tlb_mm(oldmm)
  // dup_userfaultfd_complete: the child's userfaultfds (each under the Ufd of the parent's it
  // copies), each announced by a FORK message on the parent's.
  for (unsigned i = 0; i < kMaxUffds; ++i) {
    if (!event[i]) continue;
    child.ctx_[i] = UffdCtx{};
    child.ctx_[i].file = true;
    child.ctx_[i].api = true;
    child.ctx_[i].features = ctx_[i].features;
    if (Waiter* w = queue_event(static_cast<uint8_t>(i), UffdEvent::fork, 0, 0, tid)) {
      w->forked = &child;
      child.fork_parent_ = this;
    }
  }
  return Err::ok;
}

// One entry of a fork's copy in this (the child's) tables: the leaf or non-present entry e of
// 1 << shift at va, and the folio it maps accounted (mapcount, reference). All or nothing:
// ENOMEM (a table page) changes nothing.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::copy_entry(const Vma& v, uint64_t va, unsigned shift, const Entry& e,
                                    uint32_t id) {
  uint64_t need[F::levels] = {};
  if (Err err = plan_walk(va, shift, need); err != Err::ok) return err;
  if (Err err = tenv_.reserve(need); err != Err::ok) return err;
  Result<Handle> h = walk_alloc(va, shift);
  tenv_.unreserve();
  if (!h) return h.err;
  ops_.set(h.value, e);
  if (id != kNoFolio && present(e)) account_map(v, id, e.addr, shift);
  return Err::ok;
}

}  // namespace hugepte::mm
