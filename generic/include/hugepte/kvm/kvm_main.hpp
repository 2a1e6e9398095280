// hugepte/kvm/kvm_main.hpp - memslots and the mmu-notifier protocol (virt/kvm/kvm_main.c).
// Included by kvm_host.hpp.
#pragma once

#include "hugepte/kvm/kvm_host.hpp"

namespace hugepte::kvm {

template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
const Memslot* Vm<F, HostMm, Env, Tlb>::slot_of(uint64_t gpa) const {
  for (const Memslot& m : slots_)
    if (m.used && m.contains(gpa)) return &m;
  return nullptr;
}

// kvm_set_memory_region - Linux: __kvm_set_memory_region(), kvm_arch_commit_memory_region().
// Create: the GPA range must be free. Flags change: logging on write-protects the slot (and
// splits it with the policy's eager split); logging or userfault off recovers huge mappings per
// the policy. Delete: the slot's GPA range is zapped (kvm_arch_flush_shadow_memslot).
// Errors: as declared in kvm_host.hpp; nothing changes on any of them.
// Invalidation: through zap / protect / split / collapse (range.hpp's rules).
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
Err Vm<F, HostMm, Env, Tlb>::set_memory_region(const MemslotSpec& s) {
  constexpr uint32_t kKnown = kMemLogDirtyPages | kMemReadonly | kMemUserfault;
  if (s.id >= kMaxSlots || (s.flags & ~kKnown)) return Err::einval;
  Memslot& m = slots_[s.id];
  if (s.size == 0) {  // delete
    if (!m.used) return Err::enoent;
    if (!pt_.has_root()) return Err::einval;
    unmap_gfn_range(m.s.gpa, m.s.size);
    m = Memslot{};
    return Err::ok;
  }
  if (!aligned(s.gpa | s.size | s.hva, kPage) || !F::canonical(s.gpa) ||
      s.size > bit(F::va_bits) - s.gpa)
    return Err::einval;
  if ((s.flags & kMemLogDirtyPages) && !s.dirty_bitmap) return Err::einval;
  if ((s.flags & kMemUserfault) && !s.userfault_bitmap) return Err::einval;
  if (!pt_.has_root()) return Err::einval;
  if (m.used) {  // only the flags (and their bitmaps) may change
    if (s.gpa != m.s.gpa || s.size != m.s.size || s.hva != m.s.hva) return Err::einval;
    if ((s.flags ^ m.s.flags) & kMemReadonly) return Err::einval;  // KVM forbids it too
    const uint32_t was = m.s.flags;
    m.s = s;
    if ((s.flags & kMemLogDirtyPages) && !(was & kMemLogDirtyPages)) slot_log_enable(m);
    const uint32_t off = was & ~s.flags & (kMemLogDirtyPages | kMemUserfault);
    if (off && !(s.flags & (kMemLogDirtyPages | kMemUserfault))) slot_recover(m);
    return Err::ok;
  }
  for (const Memslot& o : slots_)
    if (o.used && s.gpa < o.s.gpa + o.s.size && o.s.gpa < s.gpa + s.size) return Err::eexist;
  m.used = true;
  m.s = s;
  if (s.flags & kMemLogDirtyPages) slot_log_enable(m);
  return Err::ok;
}

// kvm_mmu_notifier_invalidate_range_start - for each memslot the HVA range meets: begin an
// invalidation (in_progress++, the range reset when none was open), widen the pending GPA
// range, zap the GPA range (every event zaps: KVM filters none).
// Invalidation: the zap's (range.hpp: a leaf flush per leaf or group cleared).
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
void Vm<F, HostMm, Env, Tlb>::invalidate_range_start(const Notification& n) {
  ++c_.notifier_start[static_cast<unsigned>(n.event)];
  each_slot_in(n.start, n.end, [&](const Memslot&, uint64_t gpa, uint64_t len) {
    // kvm_mmu_invalidate_begin + kvm_mmu_invalidate_range_add
    if (in_progress_++ == 0) range_start_ = range_end_ = gpa;
    if (range_start_ == range_end_) {
      range_start_ = gpa;
      range_end_ = gpa + len;
    } else {
      if (gpa < range_start_) range_start_ = gpa;
      if (gpa + len > range_end_) range_end_ = gpa + len;
    }
    tenv_.zapping = true;
    unmap_gfn_range(align_down(gpa, kPage), len);
    tenv_.zapping = false;
  });
}

// kvm_mmu_notifier_invalidate_range_end - kvm_mmu_invalidate_end for each memslot begun:
// mmu_invalidate_seq++, then in_progress--.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
void Vm<F, HostMm, Env, Tlb>::invalidate_range_end(const Notification& n) {
  ++c_.notifier_end;
  each_slot_in(n.start, n.end, [&](const Memslot&, uint64_t, uint64_t) {
    if (in_progress_ == 0) return;
    ++seq_;
    if (--in_progress_ == 0) range_start_ = range_end_ = 0;
  });
}

// mmu_invalidate_retry_gfn (x86) / mmu_invalidate_retry (arm64, riscv): the fault that read
// mmu_seq must not install.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
bool Vm<F, HostMm, Env, Tlb>::invalidate_retry(uint64_t mmu_seq, uint64_t gpa) const {
  if (in_progress_ != 0) {
    if (kPolicy.retry_on_any_invalidation) return true;
    if (gpa >= range_start_ && gpa < range_end_) return true;
  }
  return seq_ != mmu_seq;
}

// kvm_age_gfn - clears the accessed bit of every stage-2 leaf the HVA range maps; true if
// one was set. Invalidation: none (clear_young; clear_flush_young's flush is the caller's).
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
bool Vm<F, HostMm, Env, Tlb>::clear_young(uint64_t hva_start, uint64_t hva_end) {
  ++c_.age_calls;
  bool young = false;
  each_slot_in(hva_start, hva_end, [&](const Memslot&, uint64_t gpa, uint64_t len) {
    walk(pt_, gpa, gpa + len, WalkFlags{.leaf = true},
         [&](const VisitCtx& x, Visit) -> Step {
           uint64_t old = x.old;
           for (;;) {
             if (!F::is_leaf(old, x.level)) return Step::next();
             Entry e = F::decode(old, x.level);
             if (!e.accessed) return Step::next();
             e.accessed = false;
             Result<uint64_t> v = F::encode(e, x.level);
             if (!v) return Step::next();
             if (pt_.cmpxchg(x.slot, x.level, old, v.value)) break;  // old reloaded on failure
           }
           young = true;
           return Step::next();
         });
  });
  return young;
}

// kvm_test_age_gfn - whether any stage-2 leaf the HVA range maps is young; changes nothing.
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
bool Vm<F, HostMm, Env, Tlb>::test_young(uint64_t hva_start, uint64_t hva_end) {
  ++c_.age_calls;
  bool young = false;
  each_slot_in(hva_start, hva_end, [&](const Memslot&, uint64_t gpa, uint64_t len) {
    walk(pt_, gpa, gpa + len, WalkFlags{.leaf = true}, [&](const VisitCtx& x, Visit) -> Step {
      if (F::is_leaf(x.old, x.level) && F::decode(x.old, x.level).accessed) young = true;
      return Step::next();
    });
  });
  return young;
}

}  // namespace hugepte::kvm
