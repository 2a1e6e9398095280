// hugepte/mm/mm.hpp - one address space: its page table, its VMAs, the one fault handler for
// every level, userfaultfd, HGM and memory failure, all over the generic walker and huge-PTE API.
//
// There is no hugetlb-only path. A fault walks to the entry that covers the address and asks
// the VMA's backing what belongs there:
//   - hugetlbfs: a folio of the hstate size, mapped by the hstate-level entry (a PUD, a PMD, or
//     a contiguous group such as arm64 CONT-PMD or riscv NAPOT); with HGM enabled on the VMA,
//     by whatever smaller entry the tables under the hstate slot already hold;
//   - anonymous: the largest folio the VMA allows (max_shift) that is aligned, fits in the VMA,
//     finds a free slot and a folio in its pool: PUD, else PMD, else PTE (huge_fault with
//     VM_FAULT_FALLBACK, as core mm does for DAX and VFIO today);
//   - shmem: base pages from the page cache.
// The semantics are the kernel's (docs/mm.md §1-§4), one function each, named as in
// Linux where there is a Linux function: handle_mm_fault, do_wp_page, mfill_atomic_copy, ...
//
// Rules kept everywhere:
//   - all or nothing: table pages are reserved before the first write (ENOMEM changes
//     nothing); errors are named (Err); a range ioctl makes progress unit by unit as the
//     kernel does, each unit all or nothing;
//   - installs into non-present slots do no invalidation and no notifier call (docs/mm.md §1.4);
//     changes to present entries are bracketed by invalidate_range_start/end and followed by a
//     TLB invalidation;
//   - every table page, entry write, invalidation and userfault message is counted.
// One thread at a time (the caller's mmap_lock). Freestanding.
//
// This file holds the address space's state and the declarations; the behaviours live in files
// named after Linux's, each included at the end (so including mm.hpp gives everything):
//   mmap.hpp            mmap, munmap, vma_at, split, vma_merge      (mm/mmap.c, mm/vma.c)
//   mprotect.hpp        mprotect                                    (mm/mprotect.c)
//   mremap.hpp          mremap: move_vma, move_page_tables          (mm/mremap.c)
//   fork.hpp            fork: dup_mmap, copy_page_range             (kernel/fork.c, mm/memory.c)
//   memory.hpp          handle_fault and the fault path, install    (mm/memory.c)
//   access.hpp          access: the CPU's fault-and-retry loop      (arch/*/mm/fault.c)
//   zap.hpp             zap, free_below, unmap_mapping_range         (mm/memory.c)
//   fs_userfaultfd.hpp  UFFDIO_API/REGISTER/UNREGISTER/WAKE, read,   (fs/userfaultfd.c)
//                       close, handle_userfault and its waiters
//   userfaultfd.hpp     COPY/ZEROPAGE/CONTINUE/POISON, WRITEPROTECT (mm/userfaultfd.c)
//   hugetlb.hpp         reservations: hugetlb_reserve_pages, alloc_hugetlb_folio (mm/hugetlb.c)
//   madvise.hpp         MADV_DONTNEED/GUARD_INSTALL/SPLIT/COLLAPSE  (mm/madvise.c, mm/khugepaged.c)
//   memory_failure.hpp  memory_failure, split_leaf                  (mm/memory-failure.c)
//   rmap.hpp            mapcount and references per policy          (mm/rmap.c)
//   pagewalk.hpp        view, census                                (mm/pagewalk.c)
//   task_mmu.hpp        pagemap                                     (fs/proc/task_mmu.c)
//   counted.hpp         the counting table env and TLB sink; folio.hpp folios, pools, page cache
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/mm/counted.hpp"
#include "hugepte/mm/folio.hpp"
#include "hugepte/mm/types.hpp"
#include "hugepte/pte.hpp"
#include "hugepte/range.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte::mm {

// --- VMAs
// -----------------------------------------------------------------------------------------

enum class Backing : uint8_t { anon, file };

struct VmaSpec {
  uint64_t start = 0;
  uint64_t len = 0;
  Prot prot = kProtRW;   // read/write/exec the mapping allows
  bool shared = false;   // MAP_SHARED (file backings only)
  Backing backing = Backing::anon;
  uint32_t file = kNoFile;
  uint64_t pgoff = 0;         // byte offset of `start` in the file
  unsigned max_shift = 0;  // anonymous: the largest folio a fault may use (0: base pages)
  bool noreserve = false;  // MAP_NORESERVE: hugetlbfs reserves no pages at mmap
};

inline constexpr uint8_t kNoResv = 0xff;

struct Vma {
  bool used = false;
  uint64_t start = 0, end = 0;
  Prot prot{};
  bool shared = false;
  Backing backing = Backing::anon;
  uint32_t file = kNoFile;
  uint64_t pgoff = 0;
  unsigned max_shift = 0;
  unsigned hshift = 0;  // hugetlb: the hstate; otherwise the base page
  bool hugetlb = false;
  uint32_t uffd = 0;         // registered modes (kRegMissing | kRegWp | kRegMinor)
  uint8_t uctx = 0;          // ... with this userfaultfd (Ufd) when uffd != 0
  bool hgm = false;     // MADV_SPLIT: HugeTLB high-granularity mapping allowed
  bool noreserve = false;  // VM_NORESERVE
  uint32_t anon_vma = 0;   // its anon_vma (anon_vma_prepare; 0: none yet): fork copies the VMA
  bool anon_vma_forked = false;  // a fork child's: its anon_vma chain is not singular
  bool resv_unmapped = false;  // HPAGE_RESV_UNMAPPED: the owner took a page back (hugetlb.hpp)
  uint8_t resv = kNoResv;    // a private hugetlb mapping's reservation map (Mm::resv_maps_)
  bool contains(uint64_t va) const { return va >= start && va < end; }
};

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
class Mm {
 public:
  using Mem = Memory<FE, F::page_shift>;
  using TEnv = CountedEnv<F, Env>;
  using Table = PageTable<F, TEnv>;
  using CTlb = CountedTlb<Tlb>;
  using Ops = HugePteOps<F, TEnv, CTlb>;
  using Handle = HugePte<F>;
  using Range = RangeOps<F, TEnv, CTlb>;
  static constexpr unsigned kPage = F::page_shift;
  static constexpr unsigned kMaxVmas = 16;
  static constexpr unsigned kMaxWaiters = 64;
  static constexpr unsigned kMaxMsgs = 64;
  static constexpr unsigned kMaxPieces = 512;
  static constexpr unsigned kMaxUffds = 4;  // userfaultfds open at once

  struct Options {
    PoisonPolicy poison = PoisonPolicy::h0;
    bool hw_accessed = AdCaps(F::ad_caps).hw_accessed;  // off: access-flag faults in software
    bool hw_dirty = AdCaps(F::ad_caps).hw_dirty;        // off: dirty faults in software
    bool user = true;  // user pages (bare-metal tests run privileged and map kernel pages)
    Profile profile = Profile::upstream;  // which kernel's userfaultfd (types.hpp)
  };

  Mm(Mem& mem, Env& env, Tlb& tlb) : Mm(mem, env, tlb, Options{}) {}
  Mm(Mem& mem, Env& env, Tlb& tlb, Options opt)
      : mem_(&mem), tenv_(env, c_), ctlb_{&tlb, &c_}, pt_(tenv_), ops_(pt_, ctlb_),
        range_(pt_, ctlb_), opt_(opt) {
    mem.add_mapper({this,
                    [](void* self, uint32_t folio) {
                      static_cast<Mm*>(self)->unmap_ref_private(folio);
                    },
                    [](void* self, uint32_t file, uint64_t start, uint64_t end) {
                      return static_cast<Mm*>(self)->unmap_mapping_range(file, start, end);
                    }});
  }
  Mm(const Mm&) = delete;
  Mm& operator=(const Mm&) = delete;
  ~Mm() {
    forget_fork();
    for (Vma& v : vmas_)
      if (v.used) munmap(v.start, v.end - v.start);
    mem_->remove_mapper(this);
  }

  Err init() { return pt_.init(); }

  Table& table() { return pt_; }
  const Table& table() const { return pt_; }
  Ops& ops() { return ops_; }
  Range& range() { return range_; }
  Mem& memory() { return *mem_; }
  Counters& counters() { return c_; }
  const Counters& counters() const { return c_; }
  void reset_counters() {
    Counters fresh;  // not `c_ = Counters{}`: GCC 12 ICEs on it (gimplify.cc:772) in some TUs
    c_ = fresh;
  }
  const Options& options() const { return opt_; }
  void set_notifier(NotifierHook h) { hook_ = h; }

  // --- VMAs: mmap.hpp ---------------------------------------------------------------------------
  Result<Vma*> mmap(const VmaSpec& s);  // mmap(MAP_FIXED_NOREPLACE)
  // munmap by thread tid: splits the VMAs at its edges; with UFFD_FEATURE_EVENT_UNMAP the thread
  // then waits until the monitor reads the UNMAP event (fs_userfaultfd.hpp).
  Err munmap(uint64_t start, uint64_t len, Tid tid = 0);
  Err mprotect(uint64_t start, uint64_t len, Prot prot);  // mprotect.hpp
  // mremap(2) by thread tid (mremap.hpp): where the mapping is now.
  Result<uint64_t> mremap(uint64_t addr, uint64_t old_len, uint64_t new_len, uint32_t flags,
                          uint64_t new_addr = 0, Tid tid = 0);
  // fork(2) by thread tid: this address space copied into `child`, an empty one over the same
  // Memory (fork.hpp: dup_mmap, copy_page_range); with UFFD_FEATURE_EVENT_FORK the child gets
  // a userfaultfd of its own and the thread waits until the monitor reads the FORK message.
  Err fork(Mm& child, Tid tid = 0);
  Vma* vma_at(uint64_t va);
  Vma* unused_vma();  // a free VMA slot, or null
  // find_vma: the lowest VMA that ends above va (null if none) - /proc/PID/maps in a loop.
  const Vma* find_vma(uint64_t va) const;

  // --- madvise: madvise.hpp ---------------------------------------------------------------------
  // MADV_DONTNEED by thread tid; with UFFD_FEATURE_EVENT_REMOVE the thread waits until the
  // monitor reads the REMOVE event, and the pages go after it (uffd_blocked(tid) says so).
  Err madvise_dontneed(uint64_t start, uint64_t len, Tid tid = 0);
  Err madvise_guard_install(uint64_t start, uint64_t len);
  Err madvise_split(uint64_t start, uint64_t len);     // HGM: allow high-granularity mappings
  Err mkold(uint64_t start, uint64_t len);             // page aging: clear the access flags
  Err madvise_collapse(uint64_t start, uint64_t len);  // HGM: back to hstate-level leaves

  // --- the fault handler: memory.hpp ------------------------------------------------------------
  FaultResult handle_fault(uint64_t va, Access access);  // handle_mm_fault for every level
  // The access as thread `tid` performs it: fault and retry until the entry allows it, the
  // thread blocks in a userfault, or a signal (access.hpp).
  AccessResult access(uint64_t va, Access a, Tid tid = 0);
  bool allows(const Entry& e, Access a) const;  // the entry lets the CPU do it, fault-free

  // --- userfaultfd: fs_userfaultfd.hpp and userfaultfd.hpp ------------------------------------
  // Every call names its userfaultfd last (the fd of the ioctl); Ufd::first by default.
  // The address space starts with one userfaultfd created (userfaultfd(2)), before UFFDIO_API;
  // uffd_open creates another (up to kMaxUffds). close (userfaultfd_release): every VMA
  // registered with it is unregistered and every thread waiting on it woken; its messages go;
  // its calls are EBADF from then on.
  Err uffd_api(uint64_t features, Ufd fd = Ufd::first);
  Err uffd_close(Ufd fd = Ufd::first);
  Result<Ufd> uffd_open();
  // UFFDIO_REGISTER: returns the usable ioctls.
  Result<uint64_t> uffd_register(uint64_t start, uint64_t len, uint32_t mode,
                                 Ufd fd = Ufd::first);
  Err uffd_unregister(uint64_t start, uint64_t len, Ufd fd = Ufd::first);
  // A non-cooperative event (fork, remap, remove, unmap) is pending: range ioctls say EAGAIN.
  void uffd_set_mmap_changing(bool on, Ufd fd = Ufd::first) {
    if (UffdCtx* c = ctx_of(fd)) c->mmap_changing = on;
  }
  Result<UffdMsg> uffd_read(Ufd fd = Ufd::first);  // read(uffd): the oldest queued message
  unsigned uffd_pending(Ufd fd = Ufd::first) const;
  // Threads blocked in a userfault, on any userfaultfd (one per faulting access that returned
  // FaultKind::uffd).
  unsigned uffd_waiters() const { return waiter_n_; }
  bool uffd_waiting(uint64_t va) const;  // a thread blocked on a fault at va
  bool uffd_blocked(Tid tid) const;      // thread tid is blocked in a userfault
  UffdResult uffd_copy(uint64_t dst, const void* src, uint64_t len, uint32_t mode,
                       Ufd fd = Ufd::first);
  // UFFDIO_COPY whose source is this address space's memory at src_va (as in the kernel).
  UffdResult uffd_copy_from(uint64_t dst, uint64_t src_va, uint64_t len, uint32_t mode,
                            Ufd fd = Ufd::first);
  UffdResult uffd_zeropage(uint64_t dst, uint64_t len, uint32_t mode, Ufd fd = Ufd::first);
  UffdResult uffd_continue(uint64_t dst, uint64_t len, uint32_t mode, Ufd fd = Ufd::first);
  UffdResult uffd_poison(uint64_t dst, uint64_t len, uint32_t mode, Ufd fd = Ufd::first);
  Err uffd_writeprotect(uint64_t start, uint64_t len, uint32_t mode, Ufd fd = Ufd::first);
  Err uffd_wake(uint64_t start, uint64_t len, Ufd fd = Ufd::first);

  // --- memory failure and leaf splitting: memory_failure.hpp ----------------------------------
  Err split_leaf(uint64_t va, unsigned target_shift);  // hugetlb_split_to_shift
  Result<uint64_t> memory_failure(uint64_t pa);              // how many mappings changed
  Result<uint64_t> memory_failure_pfn(uint64_t pfn) {        // Linux's memory_failure(pfn, 0)
    return pfn > (~uint64_t{0} >> kPage) ? Result<uint64_t>(Err::einval)
                                         : memory_failure(pfn << kPage);
  }
  Result<uint64_t> madvise_hwpoison(uint64_t va, Tid tid = 0);  // MADV_HWPOISON of the page at va


  // --- inspection: pagewalk.hpp -----------------------------------------------------------------

  // The logical entry covering va (group aware) and its size; none entries report the size of
  // the slot that holds them.
  struct View {
    Entry entry{};
    unsigned level = 0;
    unsigned shift = 0;
  };
  View view(uint64_t va) const;

  // Entries of `level` in [start, end) by kind (markers also by flag), for counter checks.
  struct Census {
    uint64_t leaves = 0, none = 0, markers = 0, uffd_wp_markers = 0, tables = 0, swap = 0;
  };
  Census census(uint64_t start, uint64_t end, unsigned level) const;

  // /proc/PID/pagemap's value for the base page at va (task_mmu.hpp: kPm* bits).
  uint64_t pagemap(uint64_t va) const;

 private:
  enum class Mfill : uint8_t { copy, zeropage, cont, poison };

  static constexpr uint64_t min(uint64_t a, uint64_t b) { return a < b ? a : b; }
  static constexpr uint64_t max(uint64_t a, uint64_t b) { return a > b ? a : b; }
  static constexpr bool present(const Entry& e) { return pte::present(e); }
  static constexpr bool huge_or_page(unsigned shift) {
    return shift == kPage || huge_size<F>(shift).ok();
  }
  uint64_t file_index(const Vma& v, uint64_t va) const {
    return (v.pgoff + (va - v.start)) >> v.hshift;
  }
  uint64_t file_offset(const Vma& v, uint64_t va) const { return v.pgoff + (va - v.start); }

  // --- notifications and invalidations (mmu_notifier_invalidate_range_start/end, flush_tlb_range)

  void notify_start(const Notification& n) {
    if (c_.notif_start < Counters::kLog) c_.notif_log[c_.notif_start] = n;
    ++c_.notif_start;
    if (hook_.start) hook_.start(hook_.self, n);
  }
  void notify_end(const Notification& n) {
    ++c_.notif_end;
    if (hook_.end) hook_.end(hook_.self, n);
  }
  void flush(uint64_t start, uint64_t end) {
    ctlb_.flush(TlbFlush{start, end, static_cast<uint8_t>(kPage), kAnyLevel, true});
  }

  // --- mmap.hpp ---
  // split_vma where a VMA crosses start or end, with `spare` more free slots left for the caller.
  Err split_vmas_at(uint64_t start, uint64_t end, unsigned spare = 0);
  Vma& vma_merge(Vma& v);                           // v joined with its neighbours if they fit
  bool vma_mergeable(const Vma& v, const Vma& nb) const;
  // fn(v) for each VMA meeting [start, end), lowest first, as the kernel's loops over a range
  // visit them: fn may merge v with its neighbours (a VMA that grew past v's end is visited
  // again, so fn skips one that is done).
  template <class Fn>
  void each_vma(uint64_t start, uint64_t end, Fn fn) {
    for (uint64_t at = start; at < end;) {
      Vma* v = nullptr;
      for (Vma& o : vmas_)
        if (o.used && o.end > at && o.start < end && (!v || o.start < v->start)) v = &o;
      if (!v) return;
      const uint64_t next = v->end;
      fn(*v);
      at = next;
    }
  }
  void vma_absorb(Vma& keep, Vma& gone);
  void anon_vma_prepare(Vma& v);
  Err mprotect_fixup(Vma& v, uint64_t start, uint64_t end, Prot prot);  // mprotect.hpp
  void change_protection(const Vma& w, uint64_t start, uint64_t end, Prot prot);
  // --- mremap.hpp ---
  Result<uint64_t> unmapped_area(uint64_t len, unsigned shift, uint64_t from) const;
  Err move_vma(uint64_t addr, uint64_t old_len, uint64_t new_len, uint64_t new_addr,
               uint32_t flags, Tid tid);
  Err plan_move(uint64_t start, uint64_t end, uint64_t delta, uint64_t* need) const;
  void move_page_tables(Vma& ov, Vma& nv, uint64_t start, uint64_t end, uint64_t delta);
  static Entry page_none(Entry e, unsigned level);
  Err copy_entry(const Vma& v, uint64_t va, unsigned shift, const Entry& e,
                 uint32_t id);  // fork.hpp

  // --- memory.hpp: the fault path and installing a leaf ---
  FaultResult fault(uint64_t va, Access access);
  unsigned poison_lsb(const Vma& v, unsigned level) const;
  unsigned poison_lsb(const Vma& v, const Found& f, uint64_t va) const;
  unsigned missing_shift(const Vma& v, uint64_t va, const Found& f) const;
  FaultResult fault_missing(Vma& v, uint64_t va, Access access, const Found& f, bool wp_marker);
  FaultResult fault_present(Vma& v, uint64_t va, Access access, const Found& f);
  FaultResult do_wp_page(Vma& v, uint64_t va, const Handle& h, const Entry& e);
  FaultResult sig(FaultKind k, unsigned lsb = 0) const;
  FaultResult done(FaultHow how, unsigned shift) const;
  Handle group_handle(const Found& f, uint64_t va) const;
  Entry make_leaf(const Vma& v, const Handle& h, uint64_t pa, bool writable, bool dirty,
                  bool uffd_wp) const;
  Err plan_walk(uint64_t va, unsigned shift, uint64_t* need) const;
  Result<Handle> walk_alloc(uint64_t va, unsigned shift);
  struct MarkerTables;  // walk_alloc's table source
  void write_entry(uint64_t va, const Found& f, uint64_t next);
  static uint64_t encode_at(Entry e, unsigned level);
  static HugeSize huge_size_or_page(unsigned shift);
  bool all_none_mostly(const Handle& h, bool strict) const;
  bool slot_state_ok(uint64_t va, unsigned shift, bool strict) const;
  Err can_install(const Vma& v, unsigned shift, uint64_t pa, bool uffd_wp) const;
  void install(Vma& v, const Handle& h, uint32_t id, uint64_t pa, bool writable, bool dirty,
               bool uffd_wp);

  // --- zap.hpp ---
  // Where a cursor over a range stands: the address, the entry there, decoded, and its extent.
  struct Here {
    uint64_t va;
    Found f;
    Entry e;
    uint64_t eb, ee;
  };
  static Here here(const Cursor<F, TEnv>& c) {
    const Found f{c.slot(), c.old(), c.level()};
    return Here{c.addr(), f, F::decode(f.raw, f.level), c.base(),
                c.base() + bit(F::shift(f.level))};
  }
  Err zap(Vma& v, uint64_t start, uint64_t end, bool drop_markers);
  Err unmap_mapping_range(uint32_t file, uint64_t start, uint64_t end);  // Memory::punch_hole
  bool zap_keeps(const Vma& v, const Entry& e, bool drop_markers) const;
  void zap_edge_tables(const Vma& v, uint64_t start, uint64_t end, bool drop_markers,
                       uint64_t* need);
  void split_tables(uint64_t at, uint64_t* need) const;
  Err replicate(uint64_t va, const Found& f, const Entry& e);
  static unsigned smaller_fit(unsigned have, uint64_t at);
  template <class Fn>
  Err for_each_present(uint64_t start, uint64_t end, Fn fn);
  void free_below(uint64_t h, unsigned hshift);

  // --- userfaultfd.hpp ---
  struct UffdCtx;
  UffdCtx* ctx_of(Ufd fd) {
    const unsigned i = static_cast<unsigned>(fd);
    return i < kMaxUffds && ctx_[i].file ? &ctx_[i] : nullptr;
  }
  Err uffd_range_ok(uint64_t start, uint64_t len) const;
  Err uffd_vmas_ok(uint64_t start, uint64_t end, bool check_end) const;
  UffdMsg make_msg(const Vma& v, uint64_t va, uint32_t flags) const;
  struct Waiter;
  Err copy_source_ready(const Vma& dst_vma, uint64_t src, uint64_t len);
  void userfaultfd_clear_vma(Vma& v);
  Waiter* queue_event(uint8_t ctx, UffdEvent ev, uint64_t start, uint64_t end, Tid tid,
                      uint64_t to = 0);
  void queue_msg(uint8_t ctx, const UffdMsg& m);
  void complete_event(const Waiter& w, bool released);
  void forget_fork();
  Waiter take_waiter(unsigned i);
  bool wants_event(const Vma& v, uint64_t feature) const;
  Err dontneed_now(uint64_t start, uint64_t end);
  FaultResult handle_userfault(const Vma& v, uint64_t va, uint32_t flags);
  void wake_userfault(uint8_t ctx, uint64_t start, uint64_t end);
  unsigned mfill_unit(const Vma& v, Mfill op, uint64_t va, uint64_t end) const;
  UffdResult mfill_atomic(Mfill op, uint64_t dst, uint64_t len, uint32_t mode, const void* src,
                          Ufd fd);
  Err mfill_atomic_pte(Mfill op, Vma& v, uint64_t va, unsigned shift, uint32_t mode,
                       const void* src);
  bool wp_wants_markers(const Vma& v) const;
  unsigned marker_shift(const Vma& v, uint64_t va, uint64_t end) const;
  void count_marker_tables(const Vma& v, uint64_t start, uint64_t end, uint64_t* need) const;
  void change_uffd_wp(Vma& v, uint64_t start, uint64_t end, bool protect);
  Err split_edge(Vma& v, uint64_t at);
  bool wp_marker(const Handle& h) const;

  // --- madvise.hpp ---
  Vma* one_vma(uint64_t start, uint64_t len);
  Err install_markers(Vma& v, uint64_t start, uint64_t end, uint64_t flags, bool strict_none);
  bool split_below(const Vma& v, uint64_t h) const;

  // --- hugetlb.hpp: reservations ---
  struct HugeAlloc {
    uint32_t id = kNoFolio;
    bool reserved = false;  // it took a reservation (free_unused gives it back)
  };
  Err hugetlbfs_file_mmap(Vma& v);
  void hugetlb_vm_op_close(Vma& v);
  Result<HugeAlloc> alloc_hugetlb_folio(const Vma& v, uint64_t va);
  void hugetlb_commit(const Vma& v, uint64_t va);
  void unmap_ref_private(uint32_t folio);
  ResvMap* vma_resv(const Vma& v) { return v.resv == kNoResv ? nullptr : &resv_maps_[v.resv]; }

  // --- memory_failure.hpp ---
  Err poison_h0(Vma& v, uint32_t id, uint64_t va);
  Err poison_h1(Vma& v, uint32_t id, uint64_t va);
  bool folio_va(const Vma& v, uint32_t id, uint64_t& va) const;
  void account_split(Vma& v, uint32_t id, uint64_t hva, unsigned have);

  // --- rmap.hpp: mapcount and references, per policy ---
  struct Pieces {  // S1: how many entries map pieces of one folio in one VMA
    uint32_t folio = kNoFolio;
    uint32_t vma = 0;
    uint64_t n = 0;
  };
  Pieces* pieces_of(uint32_t vma, uint32_t id, bool create);
  void drop_pieces(Pieces* p) { *p = pieces_[--piece_n_]; }
  uint32_t vma_index(const Vma& v) const { return static_cast<uint32_t>(&v - vmas_); }
  void account_map(const Vma& v, uint32_t id, uint64_t pa, unsigned shift);
  void account_unmap(const Vma& v, uint32_t id, uint64_t pa, unsigned shift);
  // A mapping's folio reference: dropped now, or - while zap gathers (mmu_gather) - once its
  // TLB flush has been issued.
  void drop_ref(uint32_t id) {
    if (defer_puts_)
      mem_->put_later(id);
    else
      mem_->put(id);
  }

  // --- the address space's state ---
  Mem* mem_;
  Counters c_;
  TEnv tenv_;
  CTlb ctlb_;
  Table pt_;
  Ops ops_;
  Range range_;
  Options opt_;
  NotifierHook hook_{};
  Vma vmas_[kMaxVmas];

  bool defer_puts_ = false;  // zap is gathering (drop_ref)
  // The userfaultfds (struct userfaultfd_ctx), indexed by Ufd; the first exists from the start.
  struct UffdCtx {
    bool file = false;           // it exists (userfaultfd(2) / uffd_open, until close)
    bool api = false;            // ... and has had its UFFDIO_API
    bool mmap_changing = false;  // uffd_set_mmap_changing
    unsigned changing = 0;       // ctx->mmap_changing: events queued and not yet completed
    uint64_t features = 0;
  };
  UffdCtx ctx_[kMaxUffds] = {{.file = true}};
  UffdMsg msgs_[kMaxMsgs];     // every userfaultfd's queued messages, oldest first ...
  uint8_t msg_ctx_[kMaxMsgs];  // ... and whose each is
  unsigned msg_n_ = 0;
  struct Waiter {
    uint64_t va = 0;        // the faulting address (an event: the start of its range)
    uint64_t msg_addr = 0;  // its message's address (what wake-ups match)
    Tid tid = 0;
    // A thread waiting for its non-cooperative event to be read
    // (userfaultfd_event_wait_completion), and what it does then: nothing more (UNMAP, done before
    // the event) or the zap (REMOVE).
    UffdEvent event = UffdEvent::pagefault;
    uint64_t end = 0;
    Mm* forked = nullptr;  // FORK: the child whose userfaultfd the message announces
    uint8_t ctx = 0;       // the userfaultfd it waits on
  };
  Waiter waiters_[kMaxWaiters] = {};
  unsigned waiter_n_ = 0;
  Tid current_ = 0;  // the thread whose fault is being handled (Linux's `current`)
  Mm* fork_parent_ = nullptr;   // the address space whose FORK message announces ours, unread
  uint32_t next_anon_vma_ = 1;  // the next anon_vma's id
  bool src_va_mode_ = false;  // uffd_copy_from is running: the source is at va + src_delta_
  uint64_t src_delta_ = 0;

  Pieces pieces_[kMaxPieces];
  unsigned piece_n_ = 0;

  ResvMap resv_maps_[kMaxVmas];  // private hugetlb mappings' (Vma::resv; refs 0: free)

};

}  // namespace hugepte::mm

// The behaviours (each file defines members of Mm declared above and includes this file).
#include "hugepte/mm/access.hpp"
#include "hugepte/mm/fork.hpp"
#include "hugepte/mm/fs_userfaultfd.hpp"
#include "hugepte/mm/hugetlb.hpp"
#include "hugepte/mm/madvise.hpp"
#include "hugepte/mm/memory.hpp"
#include "hugepte/mm/memory_failure.hpp"
#include "hugepte/mm/mmap.hpp"
#include "hugepte/mm/mprotect.hpp"
#include "hugepte/mm/mremap.hpp"
#include "hugepte/mm/pagewalk.hpp"
#include "hugepte/mm/rmap.hpp"
#include "hugepte/mm/task_mmu.hpp"
#include "hugepte/mm/userfaultfd.hpp"
#include "hugepte/mm/zap.hpp"
