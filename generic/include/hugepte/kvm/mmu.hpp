// hugepte/kvm/mmu.hpp - the secondary-MMU fault path, level selection, zap, dirty logging and
// huge-mapping recovery: x86 arch/x86/kvm/mmu/{mmu,tdp_mmu}.c, arm64 arch/arm64/kvm/mmu.c,
// riscv arch/riscv/kvm/mmu.c, written once; where they differ, F::kvm says how (policy.hpp).
// Included by kvm_host.hpp.
#pragma once

#include "hugepte/kvm/kvm_host.hpp"

namespace hugepte::kvm {

// kvm_mmu_faultin_pfn / __kvm_faultin_pfn - the first half of a fault: the memslot (none: an
// MMIO exit; a write to a read-only slot as well), the KVM-userfault bit (set: a memory-fault
// exit for the page), mmu_seq read before resolving the HVA, then GUP through the host's own
// fault path (a userfault blocks the vCPU thread; a poisoned page is SIGBUS with the policy's
// lsb; any other failure -EFAULT). No stage-2 entry is touched.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
Faultin Vm<F, HostMm, Env, Tlb>::faultin(uint64_t gpa, Access a, Tid tid) {
  Faultin f;
  f.gpa = align_down(gpa, kPage);
  f.access = a;
  ++c_.faults;
  const Memslot* m = slot_of(gpa);
  if (!m || (a == Access::write && (m->s.flags & kMemReadonly))) {
    f.early.kind = FaultKind::mmio;
    f.early.gpa = gpa;
    return f;
  }
  f.slot = m->s.id;
  if (tenv_.topup() != Err::ok) {  // before the host is touched
    f.early.kind = FaultKind::enomem;
    return f;
  }
  if (m->s.flags & kMemUserfault) {
    const uint64_t page = (f.gpa - m->s.gpa) >> kPage;
    if (m->s.userfault_bitmap[page / 64] & bit(page % 64)) {
      ++c_.memory_fault_exits;
      f.early.kind = FaultKind::memory_fault;
      f.early.gpa = f.gpa;
      f.early.size = bit(kPage);
      f.early.flags = kMemoryExitFlagUserfault;
      return f;
    }
  }
  f.mmu_seq = seq_;  // then smp_rmb(): GUP below may run an invalidation of its own
  f.hva = m->hva_of(gpa);
  const mm::AccessResult r = host_->access(f.hva, a == Access::write ? Access::write : Access::read, tid);
  switch (r.kind) {
    case mm::AccessKind::ok: break;
    case mm::AccessKind::blocked:
      f.early.kind = FaultKind::uffd;
      f.early.msg = r.msg;
      return f;
    case mm::AccessKind::sigbus:
      if (r.lsb != 0) {  // hwpoison: kvm_send_hwpoison_signal
        f.early.kind = FaultKind::sigbus;
        const auto* v = host_->vma_at(f.hva);
        f.early.lsb = static_cast<uint8_t>(
            kPolicy.poison_lsb_is_vma_shift && v ? (v->hugetlb ? v->hshift : kPage) : kPage);
        return f;
      }
      [[fallthrough]];
    default:
      f.early.kind = FaultKind::efault;
      return f;
  }
  f.pa = r.pa;
  const auto view = host_->view(f.hva);
  f.host_shift = view.shift;
  const auto* v = host_->vma_at(f.hva);
  f.host_huge_is_thp = !(v && v->hugetlb);
  // hva_to_pfn's writable: the host mapping allows writes (pte_write), the slot is not read-only.
  f.writable = view.entry.writable && !(m->s.flags & kMemReadonly);
  return f;
}

// kvm_mmu_max_mapping_level / user_mem_abort's size choice / kvm_riscv_mmu_map's (rule R1):
// the largest plain stage-2 leaf (KVM never writes contiguous or NAPOT entries at stage 2) that
//   - is no larger than the host's leaf at the HVA (read through the walker), and for a
//     transparent huge page no larger than the policy's THP level;
//   - has the GPA and HVA congruent modulo its size, and lies wholly inside the slot
//     (lpage_info's disallow, fault_supports_stage2_huge_mapping);
//   - is the base page when the slot logs dirty pages or has KVM userfault on.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
unsigned Vm<F, HostMm, Env, Tlb>::max_mapping_shift(const Memslot& m, uint64_t gpa,
                                                    unsigned host_shift, bool thp) const {
  if (m.s.flags & (kMemLogDirtyPages | kMemUserfault)) return kPage;
  const uint64_t hva = m.hva_of(gpa);
  constexpr LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = sizes.count; i-- > 0;) {
    const unsigned s = sizes.shift[i];
    if (sizes.cont[i] || s > host_shift) continue;
    if (thp && kPolicy.thp_max_level != 0xff && sizes.level[i] > kPolicy.thp_max_level) continue;
    if (((gpa ^ hva) & (bit(s) - 1)) != 0) continue;
    const uint64_t base = align_down(gpa, s);
    if (base < m.s.gpa || base + bit(s) > m.s.gpa + m.s.size) continue;
    return s;
  }
  return kPage;
}

// The stage-2 attributes of a fault's mapping: read always; write when the host and the slot
// allow it, except that with dirty logging a read fault maps read-only (the first write must
// fault to be logged); execute per policy (arm64: only after an instruction fault, kept once
// given); A set, D after a write (or always, per policy); KVM x86's host-writable bit.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
Attrs Vm<F, HostMm, Env, Tlb>::attrs_for(const Faultin& f, const Entry* old, bool log) const {
  Attrs a;
  const bool write = f.writable && (f.access == Access::write || !log);
  const bool exec = !kPolicy.exec_on_fault || f.access == Access::exec ||
                    (old && old->prot.exec);
  a.prot = Prot{true, write, exec, false};
  // A logical write permission apart from the hardware's (x86 MMU-writable) survives the
  // write protection of dirty logging, so that the write fault only sets W again.
  a.writable = write || (kPolicy.wrprotect_keeps_writable && f.writable);
  a.accessed = true;
  a.dirty = kPolicy.dirty_on_create;  // elsewhere the hardware sets D (x86) or there is none
  a.s2.user_exec = exec;
  a.s2.host_writable = f.writable && kHasHostWritable;
  return a;
}

// The second half of a fault, under mmu_lock: the retry check against the sequence read in
// faultin (an invalidation in between, or one still open over the gfn), then the level (R1),
// then one map of that size through the common commit path, replacing what is there: a
// table where a block goes (arm64 and x86 collapse on fault; riscv keeps a smaller leaf), a
// block where a smaller leaf goes (split: x86 and riscv keep the rest, arm64 leaves it to
// later faults). A leaf already allowing the access is spurious; one of the same size and
// frame gains the permission in place (relax_perms / fast_page_fault).
// Invalidation: map's (range.hpp), plus a flush of the installed leaf where the policy says
// an install into an invalid slot needs one (riscv without Svvptc).
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
FaultResult Vm<F, HostMm, Env, Tlb>::map(const Faultin& f) {
  FaultResult r = f.early;
  auto done = [&](FaultResult x) {
    ++c_.fault_kind[static_cast<unsigned>(x.kind)];
    return x;
  };
  if (r.kind != FaultKind::mapped) return done(r);
  if (invalidate_retry(f.mmu_seq, f.gpa)) {
    ++c_.retry_invalidate;
    r.kind = FaultKind::retry;
    return done(r);
  }
  Memslot& m = slots_[f.slot];
  const bool log = (m.s.flags & kMemLogDirtyPages) != 0;
  unsigned s = max_mapping_shift(m, f.gpa, f.host_shift, f.host_huge_is_thp);
  // What stage 2 holds at the gpa now.
  Result<Found> found = find(pt_, f.gpa, 0);
  if (!found) return done(FaultResult{FaultKind::efault});
  const Found& at = found.value;
  const bool leaf_now = F::is_leaf(at.raw, at.level);
  const Entry old = F::decode(at.raw, at.level);
  if (is_locked<F>(at.raw)) {  // another walker's break-before-make: refault
    r.kind = FaultKind::retry;
    return done(r);
  }
  // riscv: what is mapped smaller stays so (a smaller leaf only gets its permissions, a table
  // is not replaced by a block).
  if (kPolicy.recovery == Recovery::none && F::shift(at.level) < s) {
    constexpr LeafSizes<F> sizes = leaf_sizes<F>();
    for (unsigned i = sizes.count; i-- > 0;)
      if (!sizes.cont[i] && sizes.shift[i] <= F::shift(at.level)) {
        s = sizes.shift[i];
        break;
      }
  }
  // Logging by write protection maps a read fault read-only, so that the first write faults;
  // logging by D bits maps it writable and clean.
  const Attrs a = attrs_for(f, leaf_now ? &old : nullptr, log && !opt_.dirty_log_by_d_bits);
  const uint64_t base = align_down(f.gpa, s);
  const uint64_t pa = align_down(f.pa, s);
  if (leaf_now && F::shift(at.level) == s && old.addr == pa) {
    const bool enough = (f.access != Access::write || old.prot.write) &&
                        (f.access != Access::exec || old.prot.exec);
    if (enough) {
      r.kind = FaultKind::spurious;
      r.shift = static_cast<uint8_t>(s);
      return done(r);
    }
    ++c_.relax_perms;
  }
  if (at.raw == 0 && F::shift(at.level) >= s) {
    // Nothing on the path at or above the leaf's slot (tdp_mmu_map's common case): the tables
    // down to it and one store, through the huge-PTE API (set_huge_pte_at into none needs no
    // invalidation).
    Result<typename Huge::Handle> h = huge_.alloc(base, s);
    const Err e = h ? huge_.set(h.value, leaf_of(a, pa)) : h.err;
    if (e != Err::ok) {
      r.kind = FaultKind::efault;
      return done(r);
    }
  } else if (const Err e = install(f, a, base, pa, s); e != Err::ok) {
    r.kind = e == Err::eagain ? FaultKind::retry : FaultKind::efault;
    return done(r);
  }
  if (kPolicy.flush_on_install && !leaf_now)
    ctlb_.flush(TlbFlush{base, base + bit(s), static_cast<uint8_t>(s),
                         static_cast<uint8_t>(level_of_shift<F>(s)), true});
  if (f.access == Access::write && log) mark_dirty(m, f.gpa);
  r.kind = FaultKind::mapped;
  r.shift = static_cast<uint8_t>(s);
  return done(r);
}

// The general install: whatever is on the path (a table where the block goes, a block around
// the leaf, a leaf to relax) replaced by one map of the leaf's size through the commit path.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
Err Vm<F, HostMm, Env, Tlb>::install(const Faultin&, const Attrs& a, uint64_t base, uint64_t pa,
                                     unsigned s) {
  const uint64_t before_collapse = c_.total(c_.collapses);
  const Err e = range_.map(base, pa, bit(s), a, s, MapMode::replace, s,
                           kPolicy.split_keeps_rest ? SplitFill::rest : SplitFill::none);
  if (e == Err::ok && c_.total(c_.collapses) != before_collapse) ++c_.recovered;
  return e;
}

// kvm_unmap_gfn_range - every leaf meeting the range goes whole; the tables it empties are
// freed where the architecture's KVM frees them (policy.zap_frees_tables).
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
bool Vm<F, HostMm, Env, Tlb>::unmap_gfn_range(uint64_t gpa, uint64_t len) {
  const uint64_t end = align_down(gpa + len + bit(kPage) - 1, kPage);
  gpa = align_down(gpa, kPage);
  Result<uint64_t> n = kPolicy.zap_frees_tables ? range_.template zap<true>(gpa, end - gpa)
                                                : range_.template zap<false>(gpa, end - gpa);
  return n.ok() && n.value != 0;
}

template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
void Vm<F, HostMm, Env, Tlb>::mark_dirty(const Memslot& m, uint64_t gpa) {
  const uint64_t page = (gpa - m.s.gpa) >> kPage;
  uint64_t& w = m.s.dirty_bitmap[page / 64];
  if (!(w & bit(page % 64))) ++c_.dirty_logged;
  w |= bit(page % 64);
}

// kvm_mmu_slot_apply_flags with logging on: with the policy's eager split, every huge leaf is
// split down to pages first; then every leaf is write-protected (x86 keeps MMU-writable so that
// the fault can restore W; elsewhere the write permission goes), or, logging by D bits, the
// base pages get their D bit cleared and only huge leaves are write-protected (PML).
// Invalidation: split's and protect's (range.hpp); a leaf flush per D bit cleared.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
void Vm<F, HostMm, Env, Tlb>::slot_log_enable(Memslot& m) {
  const uint64_t start = m.s.gpa, end = m.s.gpa + m.s.size;
  auto each_leaf = [&](auto fn) {
    for (uint64_t va = start; va < end;) {
      Result<Found> f = find(pt_, va, 0);
      if (!f) break;
      const unsigned sz = F::shift(f.value.level);
      if (F::is_leaf(f.value.raw, f.value.level)) {
        if (!fn(align_down(va, sz), f.value)) continue;  // changed the tables here: look again
      }
      va = align_down(va, sz) + bit(sz);
    }
  };
  if (kPolicy.eager_split)  // ENOMEM leaves a leaf huge: the write fault splits it later
    each_leaf([&](uint64_t va, const Found& f) {
      return f.level == 0 || range_.split(va, kPage) != Err::ok;
    });
  each_leaf([&](uint64_t va, const Found& f) {
    const Entry e = F::decode(f.raw, f.level);
    if (log_by_d_bits(m) && f.level == 0) {
      if (e.dirty) test_and_set_dirty(va, false);
    } else if (e.prot.write) {
      Prot p = e.prot;
      p.write = false;
      range_.protect(va, bit(F::shift(f.level)), p,
                     kPolicy.wrprotect_keeps_writable && e.writable);
    }
    return true;
  });
}

template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
bool Vm<F, HostMm, Env, Tlb>::test_and_set_dirty(uint64_t gpa, bool dirty) {
  Result<Found> f = find(pt_, gpa, 0);
  if (!f || f.value.level != 0) return false;
  uint64_t old = f.value.raw;
  for (;;) {
    if (!F::is_leaf(old, 0)) return false;
    Entry e = F::decode(old, 0);
    if (e.dirty == dirty) return e.dirty;
    e.dirty = dirty;
    Result<uint64_t> v = F::encode(e, 0);
    if (!v) return !dirty;
    if (pt_.cmpxchg(f.value.slot, 0, old, v.value)) break;  // old reloaded on failure
  }
  if (!dirty)  // a cached translation may hold the dirty state: the next write must set D
    ctlb_.flush(TlbFlush{align_down(gpa, kPage), align_down(gpa, kPage) + bit(kPage),
                         static_cast<uint8_t>(kPage), 0, true});
  return !dirty;
}

// The guest's access as the hardware performs it (see kvm_host.hpp).
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
GuestAccess Vm<F, HostMm, Env, Tlb>::guest_access(uint64_t gpa, Access a, Tid tid) {
  GuestAccess r;
  for (unsigned tries = 0; tries < 8; ++tries) {
    Result<Found> f = find(pt_, gpa, 0);
    if (f && F::is_leaf(f.value.raw, f.value.level)) {
      Entry e = F::decode(f.value.raw, f.value.level);
      const bool ok = a == Access::read ? e.prot.read : a == Access::write ? e.prot.write
                                                                            : e.prot.exec;
      if (ok) {
        // The walker's A/D update (a compare-exchange against software's own changes).
        const bool set_a = AdCaps(F::ad_caps).hw_accessed && !e.accessed;
        const bool set_d = a == Access::write && AdCaps(F::ad_caps).hw_dirty &&
                           AdCaps(F::ad_caps).model == DirtyModel::hw_d && !e.dirty;
        if (set_a || set_d) {
          e.accessed = e.accessed || set_a;
          e.dirty = e.dirty || set_d;
          uint64_t expected = f.value.raw;
          if (Result<uint64_t> v = F::encode(e, f.value.level); v)
            if (!pt_.cmpxchg(f.value.slot, f.value.level, expected, v.value)) continue;
        }
        const unsigned s = F::leaf_shift(f.value.raw, f.value.level);
        r.done = true;
        r.hpa = F::out_addr(f.value.raw, f.value.level) + (gpa & (bit(s) - 1));
        return r;
      }
    }
    ++r.faults;
    r.last = handle_fault(gpa, a, tid);
    if (r.last.kind != FaultKind::mapped && r.last.kind != FaultKind::spurious &&
        r.last.kind != FaultKind::retry)
      return r;
  }
  return r;
}

// Dirty logging (or KVM userfault) switched off: huge mappings come back per the policy.
// eager (x86 kvm_mmu_recover_huge_pages): every region the host and the slot allow at a larger
// size is collapsed in place now; on_fault (arm64) and none (riscv): nothing now.
// Invalidation: collapse's (range.hpp).
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
void Vm<F, HostMm, Env, Tlb>::slot_recover(Memslot& m) {
  if (kPolicy.recovery != Recovery::eager) return;
  const uint64_t start = m.s.gpa, end = m.s.gpa + m.s.size;
  for (uint64_t gpa = start; gpa < end;) {
    Result<Translated> t = range_.translate(gpa);
    if (!t) {
      gpa += bit(kPage);
      continue;
    }
    const uint64_t hva = m.hva_of(gpa);
    const auto view = host_->view(hva);
    const auto* v = host_->vma_at(hva);
    unsigned s = view.entry.kind == Kind::leaf
                     ? max_mapping_shift(m, gpa, view.shift, !(v && v->hugetlb))
                     : kPage;
    if (s > t.value.shift) {
      const uint64_t before = c_.total(c_.collapses);
      if (range_.collapse(gpa, s) == Err::ok && c_.total(c_.collapses) != before)
        ++c_.recovered;
    } else {
      s = t.value.shift;
    }
    gpa = align_down(gpa, s) + bit(s);
  }
}

// KVM_GET_DIRTY_LOG with KVM_CLEAR_DIRTY_LOG: the bitmap out and cleared, and every page it
// reported write-protected again so that its next write is logged.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
Err Vm<F, HostMm, Env, Tlb>::get_dirty_log(uint32_t id, uint64_t* out, uint64_t words) {
  if (id >= kMaxSlots || !slots_[id].used) return Err::enoent;
  Memslot& m = slots_[id];
  if (!(m.s.flags & kMemLogDirtyPages)) return Err::einval;
  const uint64_t pages = m.s.size >> kPage, need = (pages + 63) / 64;
  if (words < need) return Err::einval;
  if (log_by_d_bits(m)) {  // the PML buffer's flush: every page the hardware dirtied
    for (uint64_t i = 0; i < pages; ++i) {
      Result<Found> f = find(pt_, m.s.gpa + (i << kPage), 0);
      if (f && f.value.level == 0 && F::is_leaf(f.value.raw, 0) &&
          F::decode(f.value.raw, 0).dirty)
        mark_dirty(m, m.s.gpa + (i << kPage));
    }
  }
  for (uint64_t w = 0; w < need; ++w) {
    out[w] = m.s.dirty_bitmap[w];
    m.s.dirty_bitmap[w] = 0;
    for (uint64_t b = 0; b < 64 && w * 64 + b < pages; ++b) {
      if (!(out[w] & bit(static_cast<unsigned>(b)))) continue;
      const uint64_t gpa = m.s.gpa + ((w * 64 + b) << kPage);
      if (log_by_d_bits(m)) {  // kvm_mmu_clear_dirty_pt_masked
        test_and_set_dirty(gpa, false);
        continue;
      }
      Result<Translated> t = range_.translate(gpa);
      if (!t || !t.value.entry.prot.write) continue;
      Prot p = t.value.entry.prot;
      p.write = false;
      range_.protect(gpa, bit(kPage), p, kPolicy.wrprotect_keeps_writable);
    }
  }
  return Err::ok;
}

}  // namespace hugepte::kvm
