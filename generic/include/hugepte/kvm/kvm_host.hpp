// hugepte/kvm/kvm_host.hpp - one VM's secondary MMU over a host address space: memslots, the
// stage-2 table, the mmu-notifier state, the one fault handler for every stage-2 format, dirty
// logging and KVM userfault, with everything observable counted.
//
// The stage-2 format F (EPT, NPT, arm64 stage 2, riscv G-stage) runs on the same walker, commit
// path and range operations as every stage-1 format; what each architecture's KVM does
// differently is F::kvm (kvm/policy.hpp), never a test of the architecture here.
//
// The host side is an mm::Mm: the fault handler resolves a GPA through the memslot to an HVA
// and takes it through the host's own fault path (get_user_pages: Mm::access), so userfaultfd
// events, SIGBUS and hwpoison surface as they do under KVM; the host leaf size read through
// the walker (Mm::view) bounds the stage-2 leaf (rule R1). The host's invalidations arrive
// through its notifier hook (invalidate_range_start/end) and zap what they cover.
//
// One thread at a time (the caller's locks: kvm->mmu_lock, mmap_lock). Freestanding.
//
// This file holds the state and the declarations; the behaviours live in files named after
// Linux's, included at the end:
//   kvm_main.hpp   memslots (kvm_set_memory_region), the mmu-notifier callbacks and the
//                  invalidation sequence (virt/kvm/kvm_main.c)
//   mmu.hpp        the fault path (kvm_tdp_page_fault / user_mem_abort / kvm_riscv_mmu_map),
//                  level selection, zap, dirty logging, eager split, recovery (arch/*/kvm/mmu.c)
#pragma once

#include "hugepte/commit.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/kvm/policy.hpp"
#include "hugepte/mm/types.hpp"
#include "hugepte/range.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte::kvm {

using mm::Access;
using mm::Notification;
using mm::NotifyEvent;
using mm::Tid;

// --- memslots (include/uapi/linux/kvm.h) -------------------------------------------------------

inline constexpr uint32_t kMemLogDirtyPages = 1u << 0;  // KVM_MEM_LOG_DIRTY_PAGES
inline constexpr uint32_t kMemReadonly = 1u << 1;       // KVM_MEM_READONLY
inline constexpr uint32_t kMemUserfault = 1u << 3;      // KVM_MEM_USERFAULT (posted, unmerged)

// KVM_SET_USER_MEMORY_REGION2. Size 0 deletes the slot. Bitmaps are the caller's, one bit per
// page of the slot: the userfault bitmap as userspace hands it to KVM (a set bit: the page has
// not arrived), the dirty bitmap as KVM_GET_DIRTY_LOG reads it.
struct MemslotSpec {
  uint32_t id = 0;
  uint64_t gpa = 0;
  uint64_t size = 0;
  uint64_t hva = 0;
  uint32_t flags = 0;
  uint64_t* dirty_bitmap = nullptr;     // needed with kMemLogDirtyPages
  uint64_t* userfault_bitmap = nullptr;  // needed with kMemUserfault
};

struct Memslot {
  bool used = false;
  MemslotSpec s{};
  bool contains(uint64_t gpa) const { return gpa >= s.gpa && gpa - s.gpa < s.size; }
  uint64_t hva_of(uint64_t gpa) const { return s.hva + (gpa - s.gpa); }
};

// --- what a fault did ------------------------------------------------------------------------

enum class FaultKind : uint8_t {
  mapped,        // a stage-2 leaf now allows the access: the vCPU re-enters
  spurious,      // it already did (another vCPU's fault, a stale TLB entry): nothing written
  retry,         // an invalidation raced with it (mmu_invalidate_retry): the vCPU refaults
  uffd,          // the host fault queued a userfault and the vCPU thread waits in GUP
  memory_fault,  // KVM_EXIT_MEMORY_FAULT: gpa and size for userspace (KVM userfault)
  mmio,          // no memslot (or a write to a read-only one): KVM_EXIT_MMIO
  sigbus,        // the host page is poisoned: SIGBUS BUS_MCEERR_AR with lsb
  efault,        // GUP failed otherwise (no VMA, a VMA that forbids the access): -EFAULT
  enomem,        // the table-page cache could not be topped up: nothing changed on either side
};

constexpr const char* fault_kind_name(FaultKind k) {
  switch (k) {
    case FaultKind::mapped: return "mapped";
    case FaultKind::spurious: return "spurious";
    case FaultKind::retry: return "retry";
    case FaultKind::uffd: return "uffd";
    case FaultKind::memory_fault: return "memory_fault";
    case FaultKind::mmio: return "mmio";
    case FaultKind::sigbus: return "sigbus";
    case FaultKind::efault: return "efault";
    case FaultKind::enomem: return "ENOMEM";
  }
  return "?";
}

inline constexpr uint64_t kMemoryExitFlagUserfault = 1u << 4;  // KVM_MEMORY_EXIT_FLAG_USERFAULT

struct FaultResult {
  FaultKind kind = FaultKind::mapped;
  uint8_t shift = 0;     // mapped/spurious: log2 of the stage-2 leaf that now maps the gpa
  uint8_t lsb = 0;       // sigbus
  uint64_t gpa = 0;      // memory_fault: the page-aligned gpa; mmio: the gpa
  uint64_t size = 0;     // memory_fault: bytes
  uint64_t flags = 0;    // memory_fault: KVM_MEMORY_EXIT_FLAG_*
  mm::UffdMsg msg{};     // uffd
};

// The first half of a fault (kvm_mmu_faultin_pfn / __kvm_faultin_pfn): what the second half
// (installing, under mmu_lock) needs. Faults may be split in two to interleave an invalidation
// between them, which is how the retry protocol is observed.
struct Faultin {
  FaultResult early{};  // kind != mapped: the fault ends here with this result
  uint64_t gpa = 0;
  Access access = Access::read;
  uint32_t slot = 0;
  uint64_t mmu_seq = 0;
  uint64_t hva = 0;
  uint64_t pa = 0;            // host physical address of hva
  unsigned host_shift = 0;    // the host leaf size at hva (the walker's, group aware)
  bool host_huge_is_thp = false;  // the host leaf is not hugetlb (THP policy applies)
  bool writable = false;      // map writable: the slot and the host mapping allow writes
};

// What the guest's own access did (Vm::guest_access): performed at hpa after `faults` stage-2
// faults, or stopped at the last fault's result (a userfault, an exit, a signal).
struct GuestAccess {
  bool done = false;
  uint64_t hpa = 0;
  unsigned faults = 0;
  FaultResult last{};
};

// --- counters ---------------------------------------------------------------------------------

struct Counters {
  static constexpr unsigned kLevels = 8;
  uint64_t tables_alloc[kLevels] = {};  // stage-2 table pages, per level of the entries held
  uint64_t tables_free[kLevels] = {};
  uint64_t leaf_install[kLevels] = {};  // leaf entries written over none/locked, per level
  uint64_t leaf_zap[kLevels] = {};      // leaf entries made none, per level
  uint64_t leaf_zap_by_notifier = 0;    // of those, inside invalidate_range_start
  uint64_t splits[kLevels] = {};        // a leaf replaced by a table, per level of the leaf
  uint64_t collapses[kLevels] = {};     // a table replaced by a leaf, per level of the leaf
  uint64_t entries_written = 0;
  uint64_t tlb_flush_leaf = 0;          // one entry (TLBI IPAS2E1, INVEPT of a gfn, HFENCE gpa)
  uint64_t tlb_flush_range = 0;         // a range of entries or a walk-cache flush
  uint64_t tlb_flush_all = 0;           // the whole VM (INVEPT single-context, VMALLS12E1)
  uint64_t faults = 0;
  uint64_t fault_kind[9] = {};          // per FaultKind
  uint64_t retry_invalidate = 0;        // faults retried because of an invalidation
  uint64_t notifier_start[4] = {};      // invalidate_range_start calls per NotifyEvent
  uint64_t notifier_end = 0;
  uint64_t age_calls = 0;               // clear_young / test_young
  uint64_t memory_fault_exits = 0;
  uint64_t dirty_logged = 0;            // pages marked in a dirty bitmap
  uint64_t relax_perms = 0;             // permission added in place (no break)
  uint64_t recovered = 0;               // huge mappings rebuilt (eager recovery, or on fault)

  uint64_t total(const uint64_t (&a)[kLevels]) const {
    uint64_t n = 0;
    for (uint64_t v : a) n += v;
    return n;
  }
};

// The stage-2 table env: counts table pages and classifies every entry write, and holds the
// table-page cache a fault tops up before it touches the host (kvm_mmu_topup_memory_cache), so
// that no fault runs out of table pages after its GUP.
template <Format F, TableEnv Env>
class CountedEnv {
 public:
  static constexpr unsigned page_shift = Env::page_shift;
  CountedEnv(Env& env, Counters& c) : env_(&env), c_(&c), cache_(env) {}

  Result<uint64_t> alloc_table(unsigned level) {
    if (!cache_.empty(level)) return count(cache_.take(level), level);
    return count(env_->alloc_table(level), level);
  }
  // One page per level below the root: the most one fault's map takes. ENOMEM: none taken.
  Err topup() {
    uint64_t need[F::levels] = {};
    for (unsigned l = 0; l + 1 < F::levels; ++l) need[l] = cache_.empty(l) ? 1 : 0;
    return cache_.reserve(need);
  }
  Result<uint64_t> alloc_table(unsigned level, unsigned order)
    requires EnvAllocsRoots<Env>
  {
    return count(env_->alloc_table(level, order), level);
  }
  void free_table(uint64_t pa, unsigned level) {
    ++c_->tables_free[level];
    env_->free_table(pa, level);
  }
  void free_table(uint64_t pa, unsigned level, unsigned order)
    requires EnvAllocsRoots<Env>
  {
    ++c_->tables_free[level];
    env_->free_table(pa, level, order);
  }
  uint64_t* table_ptr(uint64_t pa) { return env_->table_ptr(pa); }

  // Every write classified by what the slot held before and holds after. A break-before-make
  // writes the slot twice (invalid, then the new value after the flush): the first write is
  // remembered, and when the second lands in the same slot the pair counts as the one change it
  // is (a block split into a table, a table collapsed into a block, a leaf replaced by a leaf).
  void on_entry_write(uint64_t* slot, unsigned level, uint64_t old, uint64_t value) {
    ++c_->entries_written;
    uint64_t before = old;
    if (old == 0 || is_locked<F>(old)) {
      for (Broken& b : broken_)
        if (b.slot == slot) {
          before = b.old;
          if (F::is_leaf(before, level)) {  // counted as a zap when it broke: it was not one
            --c_->leaf_zap[level];
            if (b.by_notifier) --c_->leaf_zap_by_notifier;
          }
          b.slot = nullptr;
          break;
        }
    }
    classify(level, before, value);
    if ((value == 0 || is_locked<F>(value)) &&
        (F::is_leaf(old, level) || F::is_table(old, level))) {
      broken_[next_broken_] = Broken{slot, old, zapping};
      next_broken_ = (next_broken_ + 1) % kBroken;
    }
    if constexpr (EnvObservesWrites<Env>) env_->on_entry_write(slot, level, old, value);
  }

  bool zapping = false;  // inside invalidate_range_start's zap

 private:
  Result<uint64_t> count(Result<uint64_t> r, unsigned level) {
    if (r) ++c_->tables_alloc[level];
    return r;
  }
  void classify(unsigned level, uint64_t old, uint64_t value) {
    const bool was_leaf = F::is_leaf(old, level), is_leaf = F::is_leaf(value, level);
    const bool was_table = F::is_table(old, level), is_table = F::is_table(value, level);
    if (is_leaf && !was_leaf && !was_table) ++c_->leaf_install[level];
    if (was_leaf && !is_leaf && !is_table) {
      ++c_->leaf_zap[level];
      if (zapping) ++c_->leaf_zap_by_notifier;
    }
    if (was_leaf && is_table) ++c_->splits[level];
    if (was_table && is_leaf) ++c_->collapses[level];
  }

  struct Broken {
    uint64_t* slot = nullptr;
    uint64_t old = 0;
    bool by_notifier = false;
  };
  static constexpr unsigned kBroken = 16;  // slots broken and not yet made again

  Env* env_;
  Counters* c_;
  TablePool<F, Env> cache_;
  Broken broken_[kBroken] = {};
  unsigned next_broken_ = 0;
};

template <TlbSink Tlb>
struct CountedTlb {
  Tlb* tlb;
  Counters* c;
  void flush(const TlbFlush& f) {
    if (f.end - f.start <= bit(f.stride_shift)) ++c->tlb_flush_leaf;
    else ++c->tlb_flush_range;
    tlb->flush(f);
  }
  void flush_all() {
    ++c->tlb_flush_all;
    tlb->flush_all();
  }
  void publish() { tlb->publish(); }
};

// --- the VM ---------------------------------------------------------------------------------

// HostMm: an mm::Mm whose page size is the stage-2 format's (KVM maps host pages).
template <Format F, class HostMm, TableEnv Env, TlbSink Tlb>
class Vm {
  static_assert(stage_of<F>() == 2, "a VM's secondary MMU runs a stage-2 format");
  static_assert(HostMm::kPage == F::page_shift, "stage 2 maps host pages of the same size");

 public:
  using TEnv = CountedEnv<F, Env>;
  using Table = PageTable<F, TEnv>;
  using CTlb = CountedTlb<Tlb>;
  using Range = RangeOps<F, TEnv, CTlb>;
  using Huge = HugePteOps<F, TEnv, CTlb>;
  static constexpr Policy kPolicy = F::kvm;
  static constexpr unsigned kPage = F::page_shift;
  static constexpr unsigned kMaxSlots = 8;
  // Whether the format holds KVM x86's host-writable bit (EPT 57, NPT 9).
  static constexpr bool kHasHostWritable = [] {
    Entry e;
    e.kind = Kind::leaf;
    e.shift = static_cast<uint8_t>(F::page_shift);
    e.prot = kProtR;
    e.s2.host_writable = true;
    return F::encode(e, 0).ok();
  }();

  struct Options {
    // Dirty logging by the hardware's dirty bits (Intel PML): logging clears the D bits of base
    // pages instead of write-protecting them, and the log is harvested from them. Needs a
    // format whose hardware sets a plain D bit at stage 2 (EPT with A/D, NPT).
    bool dirty_log_by_d_bits = false;
  };

  Vm(HostMm& host, Env& env, Tlb& tlb, Options o = {})
      : host_(&host), tenv_(env, c_), ctlb_{&tlb, &c_}, pt_(tenv_), range_(pt_, ctlb_),
        huge_(pt_, ctlb_), opt_(o) {
    host.set_notifier(mm::NotifierHook{
        this,
        [](void* self, const Notification& n) { static_cast<Vm*>(self)->invalidate_range_start(n); },
        [](void* self, const Notification& n) { static_cast<Vm*>(self)->invalidate_range_end(n); }});
  }
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;
  ~Vm() { host_->set_notifier(mm::NotifierHook{}); }

  Err init() { return pt_.init(); }

  // --- memslots: kvm_main.hpp ---
  // KVM_SET_USER_MEMORY_REGION2 - create a slot, change its flags, or delete it (size 0).
  // Errors (nothing changes): EINVAL an id beyond kMaxSlots, an unaligned or empty range, a GPA
  //   range beyond the format's, a change of gpa/size/hva of an existing slot, a flag needing a
  //   bitmap without one, unknown flags; EEXIST a GPA range overlapping another slot; ENOSPC
  //   no free slot; ENOENT deleting a slot that does not exist; ENOMEM (eager split).
  Err set_memory_region(const MemslotSpec& s);
  const Memslot* slot_of(uint64_t gpa) const;
  const Memslot* slot(uint32_t id) const { return id < kMaxSlots && slots_[id].used ? &slots_[id] : nullptr; }

  // --- the mmu notifier: kvm_main.hpp ---
  void invalidate_range_start(const Notification& n);  // begin + zap (+ flush)
  void invalidate_range_end(const Notification& n);    // seq++, in_progress--
  // kvm_age_gfn / kvm_test_age_gfn over an HVA range: whether anything was young (cleared).
  bool clear_young(uint64_t hva_start, uint64_t hva_end);
  bool test_young(uint64_t hva_start, uint64_t hva_end);
  uint64_t mmu_invalidate_seq() const { return seq_; }
  unsigned mmu_invalidate_in_progress() const { return in_progress_; }

  // --- the fault: mmu.hpp ---
  // A guest access to gpa that faulted at stage 2 (EPT violation, NPF, stage-2 abort, guest-page
  // fault) on thread tid: both halves at once.
  FaultResult handle_fault(uint64_t gpa, Access a, Tid tid = 0) { return map(faultin(gpa, a, tid)); }
  // The guest's access to gpa as the hardware performs it: through a stage-2 leaf that allows
  // it, setting A (and D on a write) where the hardware does; otherwise a stage-2 fault,
  // handled, and the access retried, as a vCPU re-enters (at most a few times).
  GuestAccess guest_access(uint64_t gpa, Access a, Tid tid = 0);
  Faultin faultin(uint64_t gpa, Access a, Tid tid = 0);  // seq, memslot, userfault bit, GUP
  FaultResult map(const Faultin& f);                      // retry check, level, install
  // The stage-2 leaf size (log2) a fault at gpa would map now (rule R1), from the host leaf.
  unsigned max_mapping_shift(const Memslot& m, uint64_t gpa, unsigned host_shift,
                             bool thp) const;

  // --- dirty logging: mmu.hpp ---
  // KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG in one: copies and clears the slot's bitmap and
  // write-protects the pages it reported again (with dirty_log_by_d_bits: first harvests the D
  // bits of the slot's base pages into the bitmap, the PML flush, and clears them again).
  // Errors: ENOENT no such slot, EINVAL not logging or a bitmap too small.
  Err get_dirty_log(uint32_t id, uint64_t* out, uint64_t words);

  // --- inspection ---
  Result<Translated> translate(uint64_t gpa) const { return range_.translate(gpa); }
  Table& table() { return pt_; }
  const Table& table() const { return pt_; }
  Range& range() { return range_; }
  Counters& counters() { return c_; }
  const Counters& counters() const { return c_; }
  void reset_counters() {
    Counters fresh;  // not `c_ = Counters{}`: GCC 12 ICEs on it in some TUs (mm.hpp)
    c_ = fresh;
  }
  HostMm& host() { return *host_; }

 private:
  // fn(slot, gpa, len) for each slot the HVA range [start, end) meets, with the GPA range of the
  // part it meets (the notifier's and aging's kvm_handle_hva_range).
  template <class Fn>
  void each_slot_in(uint64_t start, uint64_t end, Fn fn) const {
    for (const Memslot& m : slots_) {
      if (!m.used) continue;
      const uint64_t lo = start > m.s.hva ? start : m.s.hva;
      const uint64_t hi = end < m.s.hva + m.s.size ? end : m.s.hva + m.s.size;
      if (lo < hi) fn(m, m.s.gpa + (lo - m.s.hva), hi - lo);
    }
  }
  // kvm_mmu_invalidate_retry(_gfn)
  bool invalidate_retry(uint64_t mmu_seq, uint64_t gpa) const;
  // kvm_unmap_gfn_range: zap [gpa, gpa + len), whole leaves; returns whether anything went.
  bool unmap_gfn_range(uint64_t gpa, uint64_t len);
  void slot_log_enable(Memslot& m);    // write-protect, eager split
  void slot_recover(Memslot& m);       // dirty logging / userfault switched off
  void mark_dirty(const Memslot& m, uint64_t gpa);
  Attrs attrs_for(const Faultin& f, const Entry* old, bool log) const;
  // Sets or clears the dirty bit of the base-page leaf at gpa (compare-exchange, as against the
  // hardware's own updates); whether it was set before.
  bool test_and_set_dirty(uint64_t gpa, bool dirty);
  bool log_by_d_bits(const Memslot& m) const {
    return opt_.dirty_log_by_d_bits && (m.s.flags & kMemLogDirtyPages);
  }
  Err install(const Faultin& f, const Attrs& a, uint64_t base, uint64_t pa, unsigned s);

  HostMm* host_;
  Counters c_{};
  TEnv tenv_;
  CTlb ctlb_;
  Table pt_;
  Range range_;
  Huge huge_;
  Options opt_;
  Memslot slots_[kMaxSlots] = {};
  // The invalidation state under mmu_lock (kvm->mmu_invalidate_*).
  uint64_t seq_ = 0;
  unsigned in_progress_ = 0;
  uint64_t range_start_ = 0, range_end_ = 0;  // GPA range of the open invalidations
};

}  // namespace hugepte::kvm

#include "hugepte/kvm/kvm_main.hpp"
#include "hugepte/kvm/mmu.hpp"
