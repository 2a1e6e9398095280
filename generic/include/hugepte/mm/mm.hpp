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
// The semantics are the kernel's (spec uffd-hgm-kvm.md §1-§4), one function each, named as in
// Linux where there is a Linux function: handle_mm_fault, do_wp_page, mfill_atomic_copy, ...
//
// Rules kept everywhere:
//   - all or nothing: table pages are reserved before the first write (ENOMEM changes
//     nothing); errors are named (Err); a range ioctl makes progress unit by unit as the
//     kernel does, each unit all or nothing;
//   - installs into non-present slots do no invalidation and no notifier call (spec §1.4);
//     changes to present entries are bracketed by invalidate_range_start/end and followed by a
//     TLB invalidation;
//   - every table page, entry write, invalidation and userfault message is counted.
// One thread at a time (the caller's mmap_lock). Freestanding.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/mm/folio.hpp"
#include "hugepte/mm/types.hpp"
#include "hugepte/pte.hpp"
#include "hugepte/range.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte::mm {

// --- the table env and TLB sink an Mm runs on: counting wrappers ----------------------------------

// Counts table pages per level and entry writes, and can hold pages reserved ahead of an
// operation so that its commit cannot run out.
template <TableEnv Env>
class CountedEnv {
 public:
  static constexpr unsigned page_shift = Env::page_shift;
  static constexpr unsigned kLevels = 8;

  CountedEnv(Env& env, Counters& c) : env_(&env), c_(&c) {}

  Result<u64> alloc_table(unsigned level) {
    if (stash_[level] != 0) {
      u64 pa = stash_[level];
      u64* p = env_->table_ptr(pa);
      stash_[level] = p[0];
      p[0] = 0;
      --stashed_[level];
      ++c_->pt_alloc[level];
      return pa;
    }
    Result<u64> r = env_->alloc_table(level);
    if (r) ++c_->pt_alloc[level];
    return r;
  }
  void free_table(u64 pa, unsigned level) {
    ++c_->pt_free[level];
    env_->free_table(pa, level);
  }
  u64* table_ptr(u64 pa) { return env_->table_ptr(pa); }
  void on_entry_write(u64* slot, unsigned level, u64 old, u64 value) {
    ++c_->entries_written;
    if constexpr (EnvObservesWrites<Env>) env_->on_entry_write(slot, level, old, value);
  }

  // Takes `n[level]` pages per level from the Env now. ENOMEM: none are kept.
  Err reserve(const u64* n) {
    for (unsigned l = 0; l < kLevels; ++l)
      for (u64 i = 0; i < n[l]; ++i) {
        Result<u64> r = env_->alloc_table(l);
        if (!r) {
          unreserve();
          return r.err;
        }
        env_->table_ptr(r.value)[0] = stash_[l];
        stash_[l] = r.value;
        ++stashed_[l];
      }
    return Err::ok;
  }
  // Gives back what a reservation did not use.
  void unreserve() {
    for (unsigned l = 0; l < kLevels; ++l)
      while (stash_[l] != 0) {
        u64 pa = stash_[l];
        u64* p = env_->table_ptr(pa);
        stash_[l] = p[0];
        p[0] = 0;
        env_->free_table(pa, l);
        --stashed_[l];
      }
  }
  Env& inner() { return *env_; }

 private:
  Env* env_;
  Counters* c_;
  u64 stash_[kLevels] = {};
  u64 stashed_[kLevels] = {};
};

template <TlbSink Tlb>
struct CountedTlb {
  Tlb* tlb;
  Counters* c;
  void flush(const TlbFlush& f) {
    ++c->tlb_flush;
    c->last_flush = f;
    tlb->flush(f);
  }
  void flush_all() {
    ++c->tlb_flush_all;
    tlb->flush_all();
  }
  void publish() { tlb->publish(); }
};

// --- VMAs -----------------------------------------------------------------------------------------

enum class Backing : u8 { anon, file };

struct VmaSpec {
  u64 start = 0;
  u64 len = 0;
  Prot prot = kProtRW;   // read/write/exec the mapping allows
  bool shared = false;   // MAP_SHARED (file backings only)
  Backing backing = Backing::anon;
  u32 file = kNoFile;
  u64 pgoff = 0;         // byte offset of `start` in the file
  unsigned max_shift = 0;  // anonymous: the largest folio a fault may use (0: base pages)
};

struct Vma {
  bool used = false;
  u64 start = 0, end = 0;
  Prot prot{};
  bool shared = false;
  Backing backing = Backing::anon;
  u32 file = kNoFile;
  u64 pgoff = 0;
  unsigned max_shift = 0;
  unsigned hshift = 0;  // hugetlb: the hstate; otherwise the base page
  bool hugetlb = false;
  u32 uffd = 0;         // registered modes (kRegMissing | kRegWp | kRegMinor)
  bool hgm = false;     // MADV_SPLIT: HugeTLB high-granularity mapping allowed
  bool contains(u64 va) const { return va >= start && va < end; }
};

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
class Mm {
 public:
  using Mem = Memory<FE, F::page_shift>;
  using TEnv = CountedEnv<Env>;
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

  struct Options {
    PoisonPolicy poison = PoisonPolicy::h0;
    bool hw_accessed = AdCaps(F::ad_caps).hw_accessed;  // off: access-flag faults in software
    bool hw_dirty = AdCaps(F::ad_caps).hw_dirty;        // off: dirty faults in software
    bool user = true;  // user pages (bare-metal tests run privileged and map kernel pages)
  };

  Mm(Mem& mem, Env& env, Tlb& tlb) : Mm(mem, env, tlb, Options{}) {}
  Mm(Mem& mem, Env& env, Tlb& tlb, Options opt)
      : mem_(&mem), tenv_(env, c_), ctlb_{&tlb, &c_}, pt_(tenv_), ops_(pt_, ctlb_),
        range_(pt_, ctlb_), opt_(opt) {}
  Mm(const Mm&) = delete;
  Mm& operator=(const Mm&) = delete;
  ~Mm() {
    for (Vma& v : vmas_)
      if (v.used) munmap(v.start, v.end - v.start);
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

  // --- VMAs -------------------------------------------------------------------------------------

  // mmap(MAP_FIXED_NOREPLACE). Errors: EINVAL (len 0, misaligned start/len/pgoff - to the hstate
  // for hugetlbfs -, a shared anonymous or a file-less file mapping, a max_shift the format
  // cannot map, an hstate the format cannot map), ERANGE (outside the VA space), EEXIST
  // (overlaps a VMA), ENOSPC (no VMA slot).
  Result<Vma*> mmap(const VmaSpec& s) {
    if (s.len == 0 || !aligned(s.start, kPage) || !aligned(s.len, kPage)) return Err::einval;
    if (Err e = check_range<F>(s.start, s.start + s.len); e != Err::ok) return e;
    Vma v;
    v.used = true;
    v.start = s.start;
    v.end = s.start + s.len;
    v.prot = s.prot;
    v.shared = s.shared;
    v.backing = s.backing;
    v.file = s.file;
    v.pgoff = s.pgoff;
    v.hshift = kPage;
    if (s.backing == Backing::anon) {
      if (s.shared) return Err::einval;
      v.max_shift = s.max_shift == 0 ? kPage : s.max_shift;
      if (v.max_shift < kPage || !huge_or_page(v.max_shift)) return Err::einval;
    } else {
      if (s.file >= Mem::kMaxFiles || !mem_->file(s.file).used) return Err::einval;
      const File& f = mem_->file(s.file);
      v.hugetlb = f.kind == FileKind::hugetlb;
      v.hshift = f.shift;
      v.max_shift = f.shift;
      if (v.hugetlb && !huge_size<F>(f.shift)) return Err::einval;
      if (!aligned(s.start, f.shift) || !aligned(s.len, f.shift) || !aligned(s.pgoff, f.shift))
        return Err::einval;
    }
    for (const Vma& o : vmas_)
      if (o.used && o.start < v.end && v.start < o.end) return Err::eexist;
    for (Vma& slot : vmas_)
      if (!slot.used) return &(slot = v);
    return Err::enospc;
  }

  // munmap of whole VMAs in [start, start + len): every entry goes (markers too), the folios'
  // mapcounts and references drop, the tables left empty are freed. Errors: EINVAL (misaligned,
  // or the range cuts a VMA).
  Err munmap(u64 start, u64 len) {
    if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage)) return Err::einval;
    u64 end = start + len;
    for (const Vma& v : vmas_)
      if (v.used && v.start < end && start < v.end && (v.start < start || v.end > end))
        return Err::einval;
    for (Vma& v : vmas_) {
      if (!v.used || v.start < start || v.end > end) continue;
      notify_start({NotifyEvent::unmap, v.start, v.end});
      Err e = zap(v, v.start, v.end, /*drop_markers=*/true);
      notify_end({NotifyEvent::unmap, v.start, v.end});
      if (e != Err::ok) return e;
      if (pt_.has_root()) range_.unmap(v.start, v.end - v.start);  // frees the empty tables
      wake(v.start, v.end);
      v.used = false;
    }
    return Err::ok;
  }

  Vma* vma_at(u64 va) {
    for (Vma& v : vmas_)
      if (v.used && v.contains(va)) return &v;
    return nullptr;
  }

  // MADV_DONTNEED: zap, keeping what survives a zap (uffd-wp and guard markers; a uffd-wp
  // protected file page becomes a uffd-wp marker). Hugetlb ranges must be hstate aligned unless
  // the VMA has HGM. Errors: EINVAL (misaligned, not inside one VMA), ENOMEM (a split).
  Err madvise_dontneed(u64 start, u64 len) {
    Vma* v = one_vma(start, len);
    if (!v) return Err::einval;
    if (v->hugetlb && !v->hgm && (!aligned(start, v->hshift) || !aligned(len, v->hshift)))
      return Err::einval;
    notify_start({NotifyEvent::clear, start, start + len});
    Err e = zap(*v, start, start + len, false);
    notify_end({NotifyEvent::clear, start, start + len});
    return e;
  }

  // Guard regions (MADV_GUARD_INSTALL): none entries become guard markers; EEXIST if anything
  // else is there (the kernel zaps first; tests install into empty ranges).
  Err madvise_guard_install(u64 start, u64 len) {
    Vma* v = one_vma(start, len);
    if (!v || v->hugetlb) return Err::einval;
    return install_markers(*v, start, start + len, kMarkerGuard, /*strict_none=*/true);
  }

  // MADV_SPLIT (HGM series v1/v2): allows high-granularity mappings of this hugetlb VMA.
  // Errors: EINVAL (not a shared hugetlb VMA, misaligned, or the policy is S0: today's kernel
  // has no HGM).
  Err madvise_split(u64 start, u64 len) {
    Vma* v = one_vma(start, len);
    if (!v || !v->hugetlb || !v->shared || mem_->policy() == Policy::s0) return Err::einval;
    if (start != v->start || start + len != v->end) return Err::einval;
    v->hgm = true;
    return Err::ok;
  }

  // Page aging (ptep_test_and_clear_young over a range): clears the access flag of present
  // leaves, then one invalidation. The next access faults if the hardware does not set A.
  Err mkold(u64 start, u64 len) {
    Vma* v = one_vma(start, len);
    if (!v) return Err::einval;
    bool any = false;
    Err e = for_each_present(start, start + len, [&](const Handle& h, const Entry&) {
      Entry old = ops_.modify_prot_start(h);
      ops_.modify_prot_commit(h, old, pte::mkold(old));
      any = true;
    });
    if (any) flush(start, start + len);
    return e;
  }

  // --- the fault handler --------------------------------------------------------------------------

  // handle_mm_fault for every level: see the file comment. `exact` is the faulting address.
  FaultResult handle_fault(u64 va, Access access) {
    ++c_.faults;
    FaultResult r = fault(va, access);
    ++c_.fault_kind[static_cast<unsigned>(r.kind)];
    return r;
  }

  // --- userfaultfd ---------------------------------------------------------------------------------

  // UFFDIO_API: must come first and once. EINVAL on a second call or an unknown feature.
  Err uffd_api(u64 features) {
    if (uffd_open_ || (features & ~kFeatAll)) return Err::einval;
    uffd_open_ = true;
    features_ = features;
    return Err::ok;
  }

  // UFFDIO_REGISTER over whole VMAs in [start, start + len) (the range may span several; every
  // one must support the mode). Returns the usable ioctls. Errors: EINVAL (no API yet, bad mode,
  // misaligned - hstate for hugetlb -, a hole in the range, MINOR on anonymous memory, WP on a
  // format without a uffd-wp bit, a range that cuts a VMA).
  Result<u64> uffd_register(u64 start, u64 len, u32 mode) {
    if (!uffd_open_ || mode == 0 || (mode & ~(kRegMissing | kRegWp | kRegMinor))) return Err::einval;
    if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage) || start + len < start)
      return Err::einval;
    if ((mode & kRegWp) && !uffd_wp_supported()) return Err::einval;
    u64 end = start + len;
    u64 covered = 0;
    u64 ioctls = kIoctlWake | kIoctlCopy | kIoctlPoison | kIoctlZeropage;
    if (mode & kRegWp) ioctls |= kIoctlWriteprotect;
    if (mode & kRegMinor) ioctls |= kIoctlContinue;  // "CONTINUE is only supported for MINOR ranges"
    for (const Vma& v : vmas_) {
      if (!v.used || v.end <= start || v.start >= end) continue;
      // As userfaultfd_register: start aligned to the hstate of a hugetlb VMA holding it, end to
      // that of a hugetlb VMA holding it (other VMAs of the range do not constrain them).
      if (v.hugetlb && ((v.contains(start) && !aligned(start, v.hshift)) ||
                        (end > v.start && end <= v.end && !aligned(end, v.hshift))))
        return Err::einval;
      if (v.start < start || v.end > end) return Err::einval;
      if ((mode & kRegMinor) && v.backing == Backing::anon) return Err::einval;
      covered += v.end - v.start;
      if (v.hugetlb) ioctls &= ~kIoctlZeropage;
      if (v.backing == Backing::anon) ioctls &= ~kIoctlContinue;
    }
    if (covered != len) return Err::einval;
    for (Vma& v : vmas_)
      if (v.used && v.start >= start && v.end <= end) v.uffd = mode;
    return ioctls;
  }

  // UFFDIO_UNREGISTER: wakes the waiters; a VMA registered for WP has its uffd-wp bits and
  // markers reset first, as userfaultfd_unregister does (uffd_wp_range(.., false): one
  // PROTECTION_VMA notifier pair and a TLB invalidation per such VMA).
  Err uffd_unregister(u64 start, u64 len) {
    for (Vma& v : vmas_) {
      if (!v.used || v.start < start || v.end > start + len) continue;
      if (v.uffd & kRegWp) {
        notify_start({NotifyEvent::protection_vma, v.start, v.end});
        change_uffd_wp(v, v.start, v.end, false);
        flush(v.start, v.end);
        notify_end({NotifyEvent::protection_vma, v.start, v.end});
      }
      v.uffd = 0;
    }
    wake(start, start + len);
    return Err::ok;
  }

  // A non-cooperative event (fork, remap, remove, unmap) is pending: range ioctls say EAGAIN.
  void uffd_set_mmap_changing(bool on) { mmap_changing_ = on; }

  // read(uffd): the oldest queued message.
  Result<UffdMsg> uffd_read() {
    if (msg_n_ == 0) return Err::eagain;
    UffdMsg m = msgs_[0];
    for (unsigned i = 1; i < msg_n_; ++i) msgs_[i - 1] = msgs_[i];
    --msg_n_;
    return m;
  }
  unsigned uffd_pending() const { return msg_n_; }
  // Threads blocked in a userfault (one per faulting access that returned FaultKind::uffd).
  unsigned uffd_waiters() const { return waiter_n_; }
  bool uffd_waiting(u64 va) const {
    for (unsigned i = 0; i < waiter_n_; ++i)
      if (waiters_[i] == va) return true;
    return false;
  }

  // UFFDIO_COPY. Errors (spec §1.4): EINVAL, ENOENT, EEXIST, ENOMEM, EFAULT, EAGAIN.
  UffdResult uffd_copy(u64 dst, const void* src, u64 len, u32 mode) {
    return mfill(Mfill::copy, dst, len, mode, src);
  }
  // UFFDIO_ZEROPAGE (EINVAL on hugetlb).
  UffdResult uffd_zeropage(u64 dst, u64 len, u32 mode) {
    return mfill(Mfill::zeropage, dst, len, mode, nullptr);
  }
  // UFFDIO_CONTINUE (EFAULT nothing cached, EIO poisoned, EEXIST present).
  UffdResult uffd_continue(u64 dst, u64 len, u32 mode) {
    return mfill(Mfill::cont, dst, len, mode, nullptr);
  }
  // UFFDIO_POISON: MARKER(POISONED) into strictly none entries.
  UffdResult uffd_poison(u64 dst, u64 len, u32 mode) {
    return mfill(Mfill::poison, dst, len, mode, nullptr);
  }

  // UFFDIO_WRITEPROTECT. mode kWpModeWp: present entries become read-only + uffd-wp, none
  // entries of file-backed VMAs (and of anonymous ones with WP_UNPOPULATED) become uffd-wp
  // markers. mode 0: the uffd-wp bit goes, a marker that was only uffd-wp returns to none, and
  // waiters in range wake unless DONTWAKE. One invalidate_range pair (PROTECTION_VMA) and one
  // TLB invalidation. Errors: EINVAL (misaligned - hstate for hugetlb without HGM -, WP with
  // DONTWAKE), ENOENT (a VMA in range not registered for WP, or a hole), EAGAIN
  // (mmap_changing), ENOMEM (tables for markers; nothing changed).
  Err uffd_writeprotect(u64 start, u64 len, u32 mode) {
    if (!uffd_open_) return Err::einval;
    if ((mode & kWpModeWp) && (mode & kWpModeDontwake)) return Err::einval;
    if (mode & ~(kWpModeWp | kWpModeDontwake)) return Err::einval;
    if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage) || start + len < start)
      return Err::einval;
    if (mmap_changing_) return Err::eagain;
    u64 end = start + len;
    for (u64 va = start; va < end;) {
      Vma* v = vma_at(va);
      if (!v || !(v->uffd & kRegWp)) return Err::enoent;
      // mwriteprotect_range: the whole range's start and len, aligned to each hugetlb VMA's hstate.
      if (v->hugetlb && !v->hgm && (!aligned(start, v->hshift) || !aligned(len, v->hshift)))
        return Err::einval;
      va = v->end;
    }
    bool protect = mode & kWpModeWp;
    // A present leaf crossing an edge of a VMA's part of the range is split first (THP-style:
    // every mapping stays as it was; only the range's part changes protection below).
    for (u64 va = start; va < end;) {
      Vma& v = *vma_at(va);
      u64 e = min(end, v.end);
      if (Err err = split_edge(v, va); err != Err::ok) return err;
      if (Err err = split_edge(v, e); err != Err::ok) return err;
      va = e;
    }
    // Plan: the tables markers need, reserved before anything changes.
    u64 need[8] = {};
    if (protect) {
      for (u64 va = start; va < end;) {
        Vma& v = *vma_at(va);
        u64 e = min(end, v.end);
        if (wp_wants_markers(v)) count_marker_tables(v, va, e, need);
        va = e;
      }
      if (Err e = tenv_.reserve(need); e != Err::ok) return e;
    }
    notify_start({NotifyEvent::protection_vma, start, end});
    for (u64 va = start; va < end;) {
      Vma& v = *vma_at(va);
      u64 e = min(end, v.end);
      change_uffd_wp(v, va, e, protect);
      va = e;
    }
    flush(start, end);
    notify_end({NotifyEvent::protection_vma, start, end});
    tenv_.unreserve();
    if (!protect && !(mode & kWpModeDontwake)) wake(start, end);
    return Err::ok;
  }

  // UFFDIO_WAKE.
  Err uffd_wake(u64 start, u64 len) {
    if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage)) return Err::einval;
    wake(start, start + len);
    return Err::ok;
  }

  // --- HGM collapse and memory failure --------------------------------------------------------------

  // MADV_COLLAPSE on a hugetlb range (HGM series, spec §2.4): every hstate page in the range
  // that is mapped through lower tables becomes one hstate-level leaf again (holes filled from
  // the page cache, uffd-wp markers dropped, tables freed); one invalidate_range pair (CLEAR)
  // over the range and a TLB invalidation. Returns ok, or EHWPOISON when some hstate page was
  // skipped because its folio is poisoned (the others still collapse). Errors: EINVAL (not one
  // shared hugetlb VMA, misaligned), EBUSY (a folio is being migrated; nothing changed).
  // A VMA without HGM: ok, nothing done.
  Err madvise_collapse(u64 start, u64 len) {
    Vma* v = one_vma(start, len);
    if (!v || !v->hugetlb || !v->shared) return Err::einval;
    if (!aligned(start, v->hshift) || !aligned(len, v->hshift)) return Err::einval;
    if (!v->hgm) return Err::ok;
    u64 end = start + len;
    for (u64 h = start; h < end; h += bit(v->hshift)) {
      if (!split_below(*v, h)) continue;
      u32 id = mem_->cache_lookup(v->file, file_index(*v, h));
      if (id != kNoFolio && mem_->folio(id).migrating) return Err::ebusy;
    }
    Err result = Err::ok;
    notify_start({NotifyEvent::clear, start, end});
    for (u64 h = start; h < end; h += bit(v->hshift)) {
      if (!split_below(*v, h)) continue;
      u32 id = mem_->cache_lookup(v->file, file_index(*v, h));
      if (id != kNoFolio && mem_->folio(id).hwpoison) {
        result = Err::ehwpoison;
        continue;
      }
      zap(*v, h, h + bit(v->hshift), /*drop_markers=*/true);
      free_below(h, v->hshift);
      if (id != kNoFolio) {
        Handle hp = ops_.offset(h, v->hshift).value;
        install(*v, hp, id, mem_->folio(id).pa, v->prot.write, false, false);
      }
    }
    flush(start, end);
    notify_end({NotifyEvent::clear, start, end});
    return result;
  }

  // hugetlb_split_to_shift (HGM memory-failure series, spec §2.3b): the present leaf covering
  // va is split so that va is mapped by an entry of 1 << target_shift; everything stays mapped
  // with its write, dirty and uffd-wp bits (a 1G leaf split for 4K: 511 PMD leaves and a PTE
  // table of 512). One invalidate pair (CLEAR) over the original leaf; mapcount and references
  // move to the pieces as the policy says. A hugetlb VMA gets HGM.
  // Errors: EINVAL (no VMA; a hugetlb VMA that cannot have HGM: private, or policy S0; target
  // not a size below the leaf), EAGAIN (none or a marker there), EBUSY (a migration entry),
  // EHWPOISON (a hwpoison entry), ENOMEM (nothing changed).
  Err split_leaf(u64 va, unsigned target_shift) {
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
    u32 id = mem_->folio_at(e.addr);
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

  // memory_failure(pa) as this address space sees it: the folio holding pa is marked poisoned
  // (it stays in the page cache) and every mapping of it here is dealt with by the policy:
  //   H0: the mapping's folio-level entry becomes a hwpoison entry (one invalidate pair per
  //       mapped range); later accesses get SIGBUS with lsb = the folio's shift;
  //   H1: for a shared hugetlb VMA (HGM allowed unless S0), the leaf is split down to the base
  //       page (one invalidate pair over the leaf, tables as the split needs) and only that
  //       page's entry becomes a hwpoison entry (lsb = base page shift).
  // Returns how many mappings were changed. Errors: ENOENT (no folio at pa).
  Result<u64> memory_failure(u64 pa) {
    u32 id = mem_->folio_at(pa);
    if (id == kNoFolio) return Err::enoent;
    Folio& f = mem_->folio(id);
    if (!f.hwpoison) mem_->get(id);  // a poisoned folio never goes back to a pool
    f.hwpoison = true;
    f.poisoned_pa = align_down(pa, kPage);
    u64 n = 0;
    for (Vma& v : vmas_) {
      if (!v.used) continue;
      u64 va;
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

  // hole punch (fallocate PUNCH_HOLE) of [offset, offset + len) of a file: every mapping of it
  // is zapped (uffd-wp protected pages leave uffd-wp markers), then the cache drops the folios.
  // Errors: EINVAL (no such file, misaligned, beyond i_size).
  Err punch_hole(u32 file, u64 offset, u64 len) {
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

  // --- inspection -----------------------------------------------------------------------------------

  // The logical entry covering va (group aware) and its size; none entries report the size of
  // the slot that holds them.
  struct View {
    Entry entry{};
    unsigned level = 0;
    unsigned shift = 0;
  };
  View view(u64 va) const {
    Found f = find(pt_, va, 0).value;
    View w{F::decode(f.raw, f.level), f.level, F::shift(f.level)};
    if (present(w.entry) && w.entry.cont_shift != 0) {
      w.shift = w.entry.cont_shift;
      Handle h = group_handle(f, va);
      w.entry = ops_.get(h);
    }
    return w;
  }

  // Entries of `level` in [start, end) by kind (markers also by flag), for counter checks.
  struct Census {
    u64 leaves = 0, none = 0, markers = 0, uffd_wp_markers = 0, tables = 0, swap = 0;
  };
  Census census(u64 start, u64 end, unsigned level) const {
    Census c;
    walk(pt_, start, end, WalkFlags{true, true, false, false},
         [&](const VisitCtx& x, Visit v) -> Step {
           if (x.level != level) return Step::next();
           if (v == Visit::table_pre) return ++c.tables, Step::skip();
           Entry e = F::decode(x.old, x.level);
           if (e.kind == Kind::leaf || e.kind == Kind::protnone) ++c.leaves;
           else if (e.kind == Kind::none) ++c.none;
           else if (e.kind == Kind::marker) {
             ++c.markers;
             c.uffd_wp_markers += (e.swp.offset & kMarkerUffdWp) != 0;
           } else if (e.kind == Kind::swap) ++c.swap;
           return Step::next();
         });
    return c;
  }

 private:
  enum class Mfill : u8 { copy, zeropage, cont, poison };

  static constexpr u64 min(u64 a, u64 b) { return a < b ? a : b; }
  static constexpr u64 max(u64 a, u64 b) { return a > b ? a : b; }
  static constexpr bool present(const Entry& e) { return pte::present(e); }
  static constexpr bool huge_or_page(unsigned shift) {
    return shift == kPage || huge_size<F>(shift).ok();
  }

  static bool uffd_wp_supported() {
    Entry e;
    e.kind = Kind::leaf;
    e.prot = kProtR;
    e.shift = static_cast<u8>(F::shift(0));
    e.accessed = true;
    e.soft.uffd_wp = true;
    return F::encode(e, 0).ok();
  }

  Vma* one_vma(u64 start, u64 len) {
    if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage) || start + len < start)
      return nullptr;
    Vma* v = vma_at(start);
    return v && start + len <= v->end ? v : nullptr;
  }

  u64 file_index(const Vma& v, u64 va) const { return (v.pgoff + (va - v.start)) >> v.hshift; }
  u64 file_offset(const Vma& v, u64 va) const { return v.pgoff + (va - v.start); }

  // Where folio `id` would be mapped in v (file folios: by index; anonymous: where it was put).
  bool folio_va(const Vma& v, u32 id, u64& va) const {
    const Folio& f = mem_->folio(id);
    if (f.file != kNoFile) {
      if (v.backing != Backing::file || v.file != f.file) return false;
      u64 off = f.index << f.shift;
      if (off < v.pgoff || off >= v.pgoff + (v.end - v.start)) return false;
      va = v.start + (off - v.pgoff);
      return true;
    }
    if (f.anon_owner != this || !v.contains(f.anon_va)) return false;
    va = f.anon_va;
    return true;
  }

  // --- notifications and invalidations ---

  void notify_start(const Notification& n) {
    if (c_.notif_start < Counters::kLog) c_.notif_log[c_.notif_start] = n;
    ++c_.notif_start;
    if (hook_.start) hook_.start(hook_.self, n);
  }
  void notify_end(const Notification& n) {
    ++c_.notif_end;
    if (hook_.end) hook_.end(hook_.self, n);
  }
  void flush(u64 start, u64 end) {
    ctlb_.flush(TlbFlush{start, end, static_cast<u8>(kPage), kAnyLevel, true});
  }

  // --- handles ---

  Handle group_handle(const Found& f, u64 va) const {
    Entry e = F::decode(f.raw, f.level);
    unsigned s = F::shift(f.level);
    unsigned gs = e.cont_shift != 0 ? e.cont_shift : s;
    u64 first = (va >> s) & (bit(gs - s) - 1);
    return Handle{f.slot - first, align_down(va, gs), static_cast<u8>(f.level), static_cast<u8>(gs)};
  }

  // A leaf entry for folio memory at pa mapped by h in v.
  Entry make_leaf(const Vma& v, const Handle& h, u64 pa, bool writable, bool dirty, bool uffd_wp) const {
    Entry e;
    e.kind = Kind::leaf;
    e.addr = pa;
    e.shift = static_cast<u8>(F::shift(h.level));
    e.cont_shift = static_cast<u8>(h.group() ? h.shift : 0);
    e.prot = Prot{v.prot.read || v.prot.write || v.prot.exec, false, v.prot.exec, opt_.user};
    e.accessed = true;
    e.dirty = dirty;
    e.writable = writable && !uffd_wp;
    e.prot.write = pte::walker_writable<F>(e);
    e.soft.uffd_wp = uffd_wp;
    return e;
  }

  // --- table walks with allocation (HGM rules) ---

  // Plans a descent to the slot for a piece of 1 << shift at va: counts the tables it would
  // allocate (under none and marker entries; markers are replicated into the new table) and
  // fails with EEXIST where a present leaf or another non-present entry is in the way, which a
  // walk never splits.
  Err plan_walk(u64 va, unsigned shift, u64* need) const {
    HugeSize sz = huge_size_or_page(shift);
    u64* t = pt_.root_table();
    for (unsigned l = F::levels - 1; l > sz.level; --l) {
      u64 raw = Table::load(t + index_of<F>(va, l));
      if (F::is_table(raw, l)) {
        t = pt_.child(raw, l);
        continue;
      }
      Kind k = F::decode(raw, l).kind;
      if (k != Kind::none && k != Kind::marker) return Err::eexist;
      for (unsigned m = l; m > sz.level; --m) ++need[m - 1];
      return Err::ok;
    }
    return Err::ok;
  }

  // The descent itself (the tables were reserved). Returns the handle at the piece's level.
  Result<Handle> walk_alloc(u64 va, unsigned shift) {
    HugeSize sz = huge_size_or_page(shift);
    u64* t = pt_.root_table();
    for (unsigned l = F::levels - 1; l > sz.level; --l) {
      u64* slot = t + index_of<F>(va, l);
      u64 raw = Table::load(slot);
      if (!F::is_table(raw, l)) {
        Entry e = F::decode(raw, l);
        if (e.kind != Kind::none && e.kind != Kind::marker) return Err::eexist;
        Result<u64> page = pt_.alloc_table(l - 1);
        if (!page) return page.err;
        if (e.kind == Kind::marker) {  // HGM: the marker covers every piece of the new table
          u64 m = encode_at(pte::make_marker(e.swp.offset), l - 1);
          u64* nt = pt_.table(page.value);
          for (u64 i = 0; i < bit(F::index_bits(l - 1)); ++i) pt_.store(nt + i, l - 1, m);
        }
        pt_.store(slot, l, F::make_table(page.value, l));
        raw = Table::load(slot);
      }
      t = pt_.child(raw, l);
    }
    u64 base = align_down(va, shift);
    return Handle{t + index_of<F>(base, sz.level), base, static_cast<u8>(sz.level),
                  static_cast<u8>(shift)};
  }

  // F::encode of a non-present entry for a slot at `level`: its size is the slot's (formats
  // that check the value round-trips through decode, such as x86, refuse another size).
  static u64 encode_at(Entry e, unsigned level) {
    if (e.kind != Kind::none) e.shift = static_cast<u8>(F::shift(level));
    return F::encode(e, level).value;
  }

  static HugeSize huge_size_or_page(unsigned shift) {
    if (shift == kPage) return HugeSize{0, kPage, false};
    return huge_size<F>(shift).value;
  }

  bool all_none_mostly(const Handle& h, bool strict) const {
    for (u64 i = 0; i < h.count(); ++i) {
      u64 raw = Table::load(h.sub(i));
      if (h.level > 0 && F::is_table(raw, h.level)) return false;
      Kind k = F::decode(raw, h.level).kind;
      if (k != Kind::none && (strict || k != Kind::marker)) return false;
    }
    return true;
  }
  // The uffd-wp marker bit of the first sub-entry (markers are written identically).
  bool wp_marker(const Handle& h) const {
    Entry e = F::decode(Table::load(h.slot), h.level);
    return e.kind == Kind::marker && (e.swp.offset & kMarkerUffdWp);
  }

  // --- mapcount and references, per policy ---

  struct Pieces {
    u32 folio = kNoFolio;
    u32 vma = 0;
    u64 n = 0;
  };
  Pieces* pieces_of(u32 vma, u32 id, bool create) {
    for (unsigned i = 0; i < piece_n_; ++i)
      if (pieces_[i].folio == id && pieces_[i].vma == vma) return &pieces_[i];
    if (!create || piece_n_ == kMaxPieces) return nullptr;
    pieces_[piece_n_] = Pieces{id, vma, 0};
    return &pieces_[piece_n_++];
  }
  void drop_pieces(Pieces* p) { *p = pieces_[--piece_n_]; }
  u32 vma_index(const Vma& v) const { return static_cast<u32>(&v - vmas_); }

  // A new entry of 1 << shift maps folio `id` from pa in v.
  void account_map(const Vma& v, u32 id, u64 pa, unsigned shift) {
    Folio& f = mem_->folio(id);
    if (f.zero_page) return;
    bool whole = shift == f.shift;
    if (mem_->policy() == Policy::s3 && !whole) {
      mem_->account_pages(id, pa, shift, +1);
      mem_->get(id);
      return;
    }
    if (mem_->policy() == Policy::s3 || f.shift == kPage) {
      mem_->account_whole(id, +1);
      return;
    }
    Pieces* p = pieces_of(vma_index(v), id, true);
    if (p->n++ == 0) mem_->account_whole(id, +1);
  }
  // An entry of 1 << shift mapping folio `id` from pa in v went away.
  void account_unmap(const Vma& v, u32 id, u64 pa, unsigned shift) {
    Folio& f = mem_->folio(id);
    if (f.zero_page) return;
    bool whole = shift == f.shift;
    if (mem_->policy() == Policy::s3 && !whole) {
      mem_->account_pages(id, pa, shift, -1);
      mem_->put(id);
      return;
    }
    if (mem_->policy() == Policy::s3 || f.shift == kPage) {
      mem_->account_whole(id, -1);
      mem_->put(id);
      return;
    }
    Pieces* p = pieces_of(vma_index(v), id, false);
    if (!p || --p->n != 0) return;
    drop_pieces(p);
    mem_->account_whole(id, -1);
    mem_->put(id);
  }

  // Installs folio memory at pa through h (a none-mostly slot) and accounts it. No
  // invalidation: the slot was not present (spec §1.4, R3).
  // Whether install() can encode that leaf (checked before anything is reserved or written: a
  // PA beyond the format's width or a permission it cannot express is EINVAL, never a half-
  // done install).
  Err can_install(const Vma& v, unsigned shift, u64 pa, bool uffd_wp) const {
    HugeSize sz = huge_size_or_page(shift);
    Handle h{nullptr, align_down(pa, shift), static_cast<u8>(sz.level), static_cast<u8>(shift)};
    Entry e = make_leaf(v, h, align_down(pa, shift), v.prot.write && !uffd_wp, true, uffd_wp);
    return F::encode(e, sz.level).err;
  }

  void install(const Vma& v, const Handle& h, u32 id, u64 pa, bool writable, bool dirty,
               bool uffd_wp) {
    Folio& f = mem_->folio(id);
    if (v.hugetlb || f.shift > kPage) dirty = dirty || writable;  // make_huge_pte: mkdirty
    Entry e = make_leaf(v, h, pa, writable, dirty, uffd_wp);
    ops_.set(h, e);
    account_map(v, id, pa, h.shift);
    if (f.file == kNoFile && !f.zero_page) {
      f.anon_va = h.va - (pa - f.pa);
      f.anon_owner = this;
    }
  }

  // --- the fault path ---

  FaultResult sig(FaultKind k, unsigned lsb = 0) const {
    FaultResult r;
    r.kind = k;
    r.lsb = static_cast<u8>(lsb);
    return r;
  }
  FaultResult done(FaultHow how, unsigned shift) const {
    FaultResult r;
    r.how = how;
    r.shift = static_cast<u8>(shift);
    return r;
  }

  FaultResult fault(u64 va, Access access) {
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
        if (!(e.swp.offset & kMarkerUffdWp)) return sig(FaultKind::sigbus);  // an empty marker is a bug
        // A uffd-wp marker left in a VMA no longer registered for WP: core mm clears it
        // (pte_marker_handle_uffd_wp); hugetlb still maps write-protected, with no event.
        return fault_missing(v, va, access, f, v.hugetlb || (v.uffd & kRegWp));
      case Kind::none:
        return fault_missing(v, va, access, f, false);
      case Kind::table:
      case Kind::invalid:
        break;
    }
    return sig(FaultKind::sigbus);
  }

  // lsb of a SIGBUS for poison found at `level`: the hstate for an hstate-level entry of a
  // hugetlb VMA (VM_FAULT_HWPOISON_LARGE), otherwise the entry's own size.
  unsigned poison_lsb(const Vma& v, unsigned level) const {
    if (v.hugetlb && F::shift(level) >= F::shift(huge_size_or_page(v.hshift).level)) return v.hshift;
    return F::shift(level);
  }
  // The same for the entry f found at va. A contiguous hstate (arm64 CONT, riscv NAPOT) shares
  // its level with its pieces: the poison is hstate-wide only when the whole group holds it
  // (H0, or a POISON of the hstate), not when HGM split the group and one piece holds it (H1).
  unsigned poison_lsb(const Vma& v, const Found& f, u64 va) const {
    if (v.hugetlb) {
      HugeSize hs = huge_size_or_page(v.hshift);
      if (hs.cont && f.level == hs.level) {
        u64 n = bit(v.hshift - F::shift(f.level));
        u64* first = f.slot - ((va >> F::shift(f.level)) & (n - 1));
        for (u64 i = 0; i < n; ++i)
          if (Table::load(first + i) != f.raw) return F::shift(f.level);
      }
    }
    return poison_lsb(v, f.level);
  }

  UffdMsg make_msg(const Vma& v, u64 va, u32 flags) const {
    u64 a = align_down(va, kPage);
    if (features_ & kFeatExactAddress) a = va;
    else if (v.hugetlb && !v.hgm) a = align_down(va, v.hshift);
    return UffdMsg{a, flags};
  }
  FaultResult userfault(const Vma& v, u64 va, u32 flags) {
    FaultResult r;
    r.kind = FaultKind::uffd;
    r.msg = make_msg(v, va, flags);
    if (msg_n_ < kMaxMsgs) msgs_[msg_n_++] = r.msg;
    if (waiter_n_ < kMaxWaiters) {
      waiter_msg_[waiter_n_] = r.msg.address;
      waiters_[waiter_n_++] = va;
    }
    ++c_.uffd_msgs;
    return r;
  }
  // userfaultfd_wake_function: a waiter wakes when its message's address lies in the range
  // (the hstate-aligned address for hugetlb without EXACT_ADDRESS, not the faulting one).
  void wake(u64 start, u64 end) {
    unsigned k = 0;
    for (unsigned i = 0; i < waiter_n_; ++i) {
      if (waiter_msg_[i] >= start && waiter_msg_[i] < end) {
        ++c_.uffd_wakes;
      } else {
        waiter_msg_[k] = waiter_msg_[i];
        waiters_[k++] = waiters_[i];
      }
    }
    waiter_n_ = k;
  }

  // The slot a missing fault fills: the hstate-level slot of a hugetlb VMA (or, with HGM and
  // tables under it, the none entry the walk stopped at); for other VMAs the largest size the
  // VMA allows whose aligned block lies in the VMA and whose slot holds nothing.
  unsigned missing_shift(const Vma& v, u64 va, const Found& f) const {
    if (v.hugetlb) {
      unsigned hl = huge_size_or_page(v.hshift).level;
      if (f.level < hl) return F::shift(f.level);  // inside HGM tables: this piece
      if (v.hgm && f.level == hl && F::shift(hl) < v.hshift) {
        // A contiguous hstate group (arm64 CONT-PMD) whose other entries already hold pieces
        // or tables: only this entry is free.
        u64 first = (va >> F::shift(hl)) & (bit(v.hshift - F::shift(hl)) - 1);
        Handle g{f.slot - first, align_down(va, v.hshift), static_cast<u8>(hl), static_cast<u8>(v.hshift)};
        if (!all_none_mostly(g, false)) return F::shift(hl);
      }
      return v.hshift;
    }
    LeafSizes<F> sizes = leaf_sizes<F>();
    for (unsigned i = sizes.count; i-- > 0;) {
      unsigned s = sizes.shift[i];
      if (s > v.max_shift || s < kPage) continue;
      u64 base = align_down(va, s);
      if (base < v.start || base + bit(s) > v.end) continue;
      if (s > kPage && mem_->pool_free(s) == 0) continue;
      if (s > kPage && !mem_->has_pool(s)) continue;
      if (f.level < sizes.level[i]) continue;  // tables already hold something under this block
      if (slot_state_ok(base, s, false)) return s;
    }
    return kPage;
  }

  FaultResult fault_missing(Vma& v, u64 va, Access access, const Found& f, bool wp_marker) {
    bool write = access == Access::write;
    unsigned shift = missing_shift(v, va, f);
    u32 id = kNoFolio;
    bool cached = false;  // the folio comes from (or goes into) the page cache
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
          u64 bad_va = align_down(va, fo.shift) + (fo.poisoned_pa - fo.pa);
          bool h1 = opt_.poison == PoisonPolicy::h1 && v.hgm;
          if (!h1) return sig(FaultKind::sigbus, fo.shift);
          if (align_down(va, kPage) == bad_va) return sig(FaultKind::sigbus, kPage);
          shift = kPage;
        }
        if (v.uffd & kRegMinor) return userfault(v, va, kMsgMinor | (write ? kMsgWrite : 0));
      } else if (v.uffd & kRegMissing) {
        return userfault(v, va, write ? kMsgWrite : 0);
      }
    } else if (v.uffd & kRegMissing) {
      return userfault(v, va, write ? kMsgWrite : 0);
    }
    u64 base = align_down(va, shift);

    // Tables first (all or nothing), then the folio.
    u64 need[8] = {};
    if (plan_walk(base, shift, need) != Err::ok) return sig(FaultKind::retry);
    if (tenv_.reserve(need) != Err::ok) return sig(FaultKind::sigbus);  // VM_FAULT_OOM

    FaultHow how = cached ? FaultHow::page_cache : FaultHow::new_folio;
    bool allocated = false;
    if (!cached) {
      bool zero = v.backing == Backing::anon && !write && shift == kPage;
      Result<u32> r = zero ? mem_->zero_page() : mem_->alloc(v.hugetlb ? v.hshift : shift);
      if (!r) {
        tenv_.unreserve();
        return sig(FaultKind::sigbus);  // pool empty: SIGBUS (hugetlb), OOM otherwise
      }
      id = r.value;
      allocated = !zero;
      if (zero) how = FaultHow::zero_page;
      else mem_->env().zero(mem_->folio(id).pa, bit(mem_->folio(id).shift));
      // Shared files cache the new folio; shmem caches private misses too (and the private
      // mapping then copies on write); a private hugetlb miss is an anonymous folio.
      if (allocated && v.backing == Backing::file && (v.shared || !v.hugetlb)) {
        mem_->cache_add(v.file, file_index(v, va), id);
        cached = true;
      }
    }
    const Folio& fo = mem_->folio(id);
    u64 pa = v.backing == Backing::file ? fo.pa + (file_offset(v, base) & (bit(fo.shift) - 1))
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
      if (allocated) {
        if (cached) mem_->cache_remove(v.file, file_index(v, va));
        mem_->put(id);
      }
      return sig(FaultKind::sigbus);
    }
    Handle h = walk_alloc(base, shift).value;
    tenv_.unreserve();
    install(v, h, id, pa, writable && !wp_marker, dirty, wp_marker);
    if (allocated) mem_->put(id);  // the mapping (and the cache) hold their own references
    if (wp_marker && write && (v.uffd & kRegWp)) return userfault(v, va, kMsgWp | kMsgWrite);
    if (write && (!writable || wp_marker)) {  // the new entry is read-only: finish the write
      Found g = find(pt_, va, 0).value;
      return fault_present(v, va, access, g);  // a private write: copy on write right away
    }
    return done(how, shift);
  }

  FaultResult fault_present(Vma& v, u64 va, Access access, const Found& f) {
    Handle h = group_handle(f, va);
    Entry e = ops_.get(h);
    if (e.kind == Kind::protnone) {  // NUMA hinting: the VMA allows it, restore the permissions
      Entry old = ops_.modify_prot_start(h);
      Entry n = old;
      n.kind = Kind::leaf;
      n = pte::modify<F>(n, make_leaf(v, h, old.addr, old.writable, old.dirty, false).prot, old.writable);
      ops_.modify_prot_commit(h, old, n);
      flush(h.va, h.va + h.size());
      return done(FaultHow::numa, h.shift);
    }
    if (access == Access::write) {
      if (!e.writable) {
        if (e.soft.uffd_wp && (v.uffd & kRegWp)) return userfault(v, va, kMsgWp | kMsgWrite);
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
    ctlb_.flush(TlbFlush{h.va, h.va + h.size(), static_cast<u8>(F::shift(h.level)),
                         static_cast<u8>(h.level), true});
    return done(FaultHow::spurious, h.shift);
  }

  // Write to a present, read-only entry of a VMA that allows writes.
  FaultResult do_wp_page(Vma& v, u64 va, const Handle& h, const Entry& e) {
    u32 old = mem_->folio_at(e.addr);
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
    Result<u32> r = mem_->alloc(shift);
    if (!r) return sig(FaultKind::sigbus);
    Folio& nf = mem_->folio(r.value);
    u64 src = align_down(e.addr, shift);
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

  // --- userfaultfd ioctls ---

  // The units an mfill of [va, end) in v proceeds by: the hstate for hugetlb (a page-size-
  // aligned largest fit under HGM for CONTINUE and POISON), the base page otherwise.
  unsigned mfill_unit(const Vma& v, Mfill op, u64 va, u64 end) const {
    if (!v.hugetlb) return kPage;
    if (!v.hgm || op == Mfill::copy) return v.hshift;
    LeafSizes<F> sizes = leaf_sizes<F>();
    for (unsigned i = sizes.count; i-- > 0;) {
      unsigned s = sizes.shift[i];
      if (s > v.hshift) continue;
      if (aligned(va, s) && va + bit(s) <= end) return s;
    }
    return kPage;
  }

  UffdResult mfill(Mfill op, u64 dst, u64 len, u32 mode, const void* src) {
    if (!uffd_open_) return {Err::einval, 0};
    u32 allowed = op == Mfill::copy || op == Mfill::cont ? (kModeDontwake | kModeWp) : kModeDontwake;
    if (mode & ~allowed) return {Err::einval, 0};
    if (len == 0 || !aligned(dst, kPage) || !aligned(len, kPage) || dst + len < dst ||
        !F::canonical(dst) || !F::canonical(dst + len - 1))
      return {Err::einval, 0};
    if (mmap_changing_) return {Err::eagain, 0};
    Vma* vp = vma_at(dst);
    if (!vp || dst + len > vp->end || vp->uffd == 0) return {Err::enoent, 0};
    Vma& v = *vp;
    if ((mode & kModeWp) && !(v.uffd & kRegWp)) return {Err::einval, 0};
    if (op == Mfill::zeropage && v.hugetlb) return {Err::einval, 0};
    if (op == Mfill::cont && v.backing == Backing::anon) return {Err::einval, 0};
    if (op == Mfill::copy && src == nullptr) return {Err::efault, 0};
    bool hgm_units = v.hugetlb && v.hgm && op != Mfill::copy;
    if (v.hugetlb && !hgm_units && (!aligned(dst, v.hshift) || !aligned(len, v.hshift)))
      return {Err::einval, 0};

    u64 end = dst + len, va = dst;
    Err err = Err::ok;
    while (va < end) {
      unsigned s = mfill_unit(v, op, va, hgm_units ? min(end, align_down(va, v.hshift) + bit(v.hshift)) : end);
      const void* usrc = src ? static_cast<const unsigned char*>(src) + (va - dst) : nullptr;
      err = mfill_one(op, v, va, s, mode, usrc);
      if (err != Err::ok) break;
      va += bit(s);
    }
    u64 done_bytes = va - dst;
    if (!(mode & kModeDontwake) && done_bytes) wake(dst, va);
    if (done_bytes == 0) return {err, 0};
    return {done_bytes < len ? Err::eagain : Err::ok, done_bytes};
  }

  // One unit of an mfill ioctl, all or nothing.
  Err mfill_one(Mfill op, Vma& v, u64 va, unsigned shift, u32 mode, const void* src) {
    u64 need[8] = {};
    if (Err e = plan_walk(va, shift, need); e != Err::ok) return e;
    // The slot as it is now, to check the state the ioctl requires.
    bool strict = op == Mfill::poison || (op == Mfill::zeropage && !v.shared);
    if (!slot_state_ok(va, shift, strict)) return Err::eexist;
    u64 off = file_offset(v, va);
    u32 id = kNoFolio;
    u64 pa = 0;
    bool writable = false, dirty = !v.hugetlb;  // mfill_atomic_install_pte: mkdirty
    bool wp = mode & kModeWp;
    if (v.backing == Backing::file && off >= mem_->file(v.file).size) return Err::efault;
    switch (op) {
      case Mfill::copy:
      case Mfill::zeropage: {
        if (v.backing == Backing::file && v.shared &&
            mem_->cache_lookup(v.file, file_index(v, va)) != kNoFolio)
          return Err::eexist;
        bool zero_pfn = op == Mfill::zeropage && !v.shared;
        Result<u32> r = zero_pfn ? mem_->zero_page() : mem_->alloc(shift);
        if (!r) return r.err;
        id = r.value;
        pa = mem_->folio(id).pa;
        writable = !zero_pfn && v.prot.write && !wp;
        dirty = !zero_pfn;
        break;
      }
      case Mfill::cont: {
        id = mem_->cache_lookup(v.file, file_index(v, va));
        if (id == kNoFolio) return Err::efault;
        const Folio& fo = mem_->folio(id);
        if (fo.hwpoison) return Err::eio;
        pa = fo.pa + (off & (bit(fo.shift) - 1));
        writable = v.shared && v.prot.write && !wp;
        break;
      }
      case Mfill::poison:
        break;
    }
    if (op != Mfill::poison) {
      if (Err e = can_install(v, shift, pa, wp); e != Err::ok) {
        if (op == Mfill::copy || (op == Mfill::zeropage && v.shared)) mem_->put(id);
        return e;
      }
    }
    if (Err e = tenv_.reserve(need); e != Err::ok) {
      if (op == Mfill::copy || (op == Mfill::zeropage && v.shared)) mem_->put(id);
      return e;
    }
    Handle h = walk_alloc(va, shift).value;
    tenv_.unreserve();
    if (op == Mfill::poison) {
      ops_.set(h, pte::make_marker(kMarkerPoisoned));
      return Err::ok;
    }
    if (op == Mfill::copy || (op == Mfill::zeropage && v.shared)) {
      const Folio& fo = mem_->folio(id);
      if (op == Mfill::copy) mem_->env().copy_in(fo.pa, src, bit(shift));
      else mem_->env().zero(fo.pa, bit(shift));
      if (v.backing == Backing::file && v.shared) mem_->cache_add(v.file, file_index(v, va), id);
    }
    install(v, h, id, pa, writable, dirty, wp);
    if (op == Mfill::copy || (op == Mfill::zeropage && v.shared)) mem_->put(id);
    return Err::ok;
  }

  // The slot for a piece of 1 << shift at va holds none (strict) or none/markers, at its level
  // or above it; a table at its level (something finer is mapped) or a present leaf or swap
  // entry above it are not.
  bool slot_state_ok(u64 va, unsigned shift, bool strict) const {
    HugeSize sz = huge_size_or_page(shift);
    Found f = find(pt_, va, sz.level).value;
    if (f.level > sz.level) {
      Kind k = F::decode(f.raw, f.level).kind;
      return k == Kind::none || (!strict && k == Kind::marker);
    }
    Handle h{f.slot - ((va >> F::shift(sz.level)) & (bit(shift - F::shift(sz.level)) - 1)),
             align_down(va, shift), static_cast<u8>(sz.level), static_cast<u8>(shift)};
    return all_none_mostly(h, strict);
  }

  // --- write protection ---

  bool wp_wants_markers(const Vma& v) const {
    return v.backing == Backing::file || (features_ & kFeatWpUnpopulated);
  }
  // The size of the markers WRITEPROTECT puts into a none entry of v at va (up to end).
  unsigned marker_shift(const Vma& v, u64 va, u64 end) const {
    if (!v.hugetlb) return kPage;
    if (!v.hgm) return v.hshift;
    return mfill_unit(v, Mfill::poison, va, min(end, align_down(va, v.hshift) + bit(v.hshift)));
  }

  void count_marker_tables(const Vma& v, u64 start, u64 end, u64* need) const {
    // Tables the descent to each marker unit would allocate, counting each new table once.
    u64 last_base[8];
    for (u64& b : last_base) b = ~u64{0};
    for (u64 va = start; va < end;) {
      unsigned s = marker_shift(v, va, end);
      HugeSize sz = huge_size_or_page(s);
      u64* t = pt_.root_table();
      for (unsigned l = F::levels - 1; l > sz.level; --l) {
        u64 raw = Table::load(t + index_of<F>(va, l));
        if (F::is_table(raw, l)) {
          t = pt_.child(raw, l);
          continue;
        }
        Kind k = F::decode(raw, l).kind;
        if (k != Kind::none && k != Kind::marker) break;
        for (unsigned m = l; m > sz.level; --m) {
          u64 base = align_down(va, F::shift(m));
          if (last_base[m - 1] != base) ++need[m - 1], last_base[m - 1] = base;
        }
        break;
      }
      va += bit(s);
    }
  }

  // Applies (protect) or resolves uffd-wp over [start, end) of v.
  void change_uffd_wp(Vma& v, u64 start, u64 end, bool protect) {
    for (u64 va = start; va < end;) {
      Found f = find(pt_, va, 0).value;
      Entry e = F::decode(f.raw, f.level);
      u64 eb = align_down(va, F::shift(f.level)), ee = eb + bit(F::shift(f.level));
      if (present(e)) {
        Handle h = group_handle(f, va);
        if (h.va < start || h.va + h.size() > end) {  // split_edge() left none: cannot happen
          va = h.va + h.size();
          continue;
        }
        Entry old = ops_.modify_prot_start(h);
        Entry n = old;
        if (protect) n = pte::mkuffd_wp(old);
        else {
          n = pte::clear_uffd_wp(old);
          if (v.prot.write && v.shared) n = pte::mkwrite<F>(n);
        }
        ops_.modify_prot_commit(h, old, n);
        va = h.va + h.size();
        continue;
      }
      if (e.kind == Kind::marker || e.kind == Kind::none) {
        bool covered = eb >= start && ee <= end;
        unsigned want = marker_shift(v, va, end);
        bool fits = F::shift(f.level) <= want && covered;
        if (e.kind == Kind::none && (!protect || !wp_wants_markers(v))) {
          va = min(ee, end);
          continue;
        }
        // change_pte_range: poisoned and guard markers are skipped (spec §1.5), never made
        // uffd-wp nor replicated.
        if (e.kind == Kind::marker && (e.swp.offset & (kMarkerPoisoned | kMarkerGuard))) {
          va = min(ee, end);
          continue;
        }
        if (!fits && f.level > 0 && (protect || e.kind == Kind::marker)) {
          // replicate / allocate down to the marker's size (reserved when protecting)
          if (!walk_alloc(va, want)) va = min(ee, end);
          continue;
        }
        u64 flags = e.kind == Kind::marker ? e.swp.offset : 0;
        flags = protect ? (flags | kMarkerUffdWp) : (flags & ~kMarkerUffdWp);
        u64 raw = flags ? encode_at(pte::make_marker(flags), f.level) : 0;
        pt_.store(f.slot, f.level, raw);
        va = ee;
        continue;
      }
      if (pte::is_migration(e)) {
        Entry n = e;
        n.swp.uffd_wp = protect;
        pt_.store(f.slot, f.level, F::encode(n, f.level).value);
      }
      va = min(ee, end) > va ? min(ee, end) : va + bit(kPage);
    }
  }

  // Splits the present leaf that maps across `at` (if any) so that `at` is a leaf boundary,
  // moving its accounting to the pieces. ENOMEM changes nothing.
  Err split_edge(Vma& v, u64 at) {
    if (!pt_.has_root() || !F::canonical(at)) return Err::ok;
    Found f = find(pt_, at, 0).value;
    Entry e = F::decode(f.raw, f.level);
    if (!present(e)) return Err::ok;
    Handle h = group_handle(f, at);
    if (h.va == at) return Err::ok;
    if (Err err = range_.split(at, smaller_fit(h.shift, at)); err != Err::ok) return err;
    if (u32 id = mem_->folio_at(e.addr); id != kNoFolio) account_split(v, id, h.va, h.shift);
    return Err::ok;
  }

  // The largest leaf size below `have` to which `at` is aligned.
  static unsigned smaller_fit(unsigned have, u64 at) {
    LeafSizes<F> sizes = leaf_sizes<F>();
    for (unsigned i = sizes.count; i-- > 0;)
      if (sizes.shift[i] < have && aligned(at, sizes.shift[i])) return sizes.shift[i];
    return kPage;
  }

  Err install_markers(Vma& v, u64 start, u64 end, u64 flags, bool strict_none) {
    for (u64 va = start; va < end; va += bit(kPage))
      if (!slot_state_ok(va, kPage, strict_none)) return Err::eexist;
    u64 need[8] = {};
    count_marker_tables(v, start, end, need);
    if (Err e = tenv_.reserve(need); e != Err::ok) return e;
    for (u64 va = start; va < end; va += bit(kPage)) {
      Handle h = walk_alloc(va, kPage).value;
      Entry cur = F::decode(Table::load(h.slot), 0);
      u64 f = cur.kind == Kind::marker ? (cur.swp.offset | flags) : flags;
      ops_.set(h, pte::make_marker(f));
    }
    tenv_.unreserve();
    return Err::ok;
  }

  // --- zap ---

  // Calls fn(handle, entry) for every present logical leaf whose whole extent lies in
  // [start, end) (leaves crossing the edges are visited too; callers that care split first).
  template <class Fn>
  Err for_each_present(u64 start, u64 end, Fn fn) {
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

  // Removes the mappings of [start, end) in v: a present leaf is released (folio accounting)
  // and becomes none, or a uffd-wp marker on a file VMA registered for WP when it was uffd-wp
  // protected (unless drop_markers); uffd-wp and guard markers stay unless drop_markers;
  // poison markers and swap entries go. Leaves crossing the edges are split first. Tables
  // stay (munmap and collapse free them). One TLB invalidation at the end if a leaf went.
  Err zap(Vma& v, u64 start, u64 end, bool drop_markers) {
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
  Err replicate(const Found& f, const Entry& e) {
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

  // --- HGM ---

  // The hstate page at h is mapped through pieces: some sub-entry of its slot is a table, or
  // (a contiguous hstate such as arm64 CONT-PMD) a present leaf smaller than the hstate.
  bool split_below(const Vma& v, u64 h) const {
    HugeSize sz = huge_size_or_page(v.hshift);
    Found f = find(pt_, h, sz.level).value;
    if (f.level != sz.level) return false;
    u64 n = bit(v.hshift - F::shift(sz.level));
    for (u64 i = 0; i < n; ++i) {
      u64 raw = Table::load(f.slot + i);
      if (sz.level > 0 && F::is_table(raw, sz.level)) return true;
      Entry e = F::decode(raw, sz.level);
      if (sz.cont && present(e) && e.cont_shift != v.hshift) return true;
    }
    return false;
  }

  // Unlinks and frees the tables under the hstate slot at h (whose leaves were zapped).
  void free_below(u64 h, unsigned hshift) {
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
  void drain(unsigned level, u64 h, unsigned hshift) {
    ctlb_.flush(TlbFlush{h, h + bit(hshift), static_cast<u8>(kPage), kAnyLevel, false});
    for (unsigned i = 0; i < pending_n_; ++i) free_subtree(pending_free_[i], level);
    pending_n_ = 0;
  }
  void free_subtree(u64 table_raw, unsigned level) {
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

  // --- memory failure ---

  Err poison_h0(Vma& v, u32 id, u64 va) {
    const Folio& f = mem_->folio(id);
    u64 end = va + bit(f.shift);
    notify_start({NotifyEvent::clear, va, end});
    Err e = zap(v, va, end, true);
    if (e == Err::ok && f.shift > kPage) free_below(va, f.shift);
    if (e == Err::ok) {
      u64 need[8] = {};
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

  Err poison_h1(Vma& v, u32 id, u64 va) {
    const Folio& f = mem_->folio(id);
    u64 bad = va + (f.poisoned_pa - f.pa);
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

  // After a leaf of `have` at hva was split into pieces, moves its accounting to them.
  void account_split(Vma& v, u32 id, u64 hva, unsigned have) {
    const Folio& f = mem_->folio(id);
    u64 base_pa = f.pa + (hva - align_down(hva, f.shift));
    // Count the new entries first (map before unmap so S1's count never touches zero).
    for_each_present(hva, hva + bit(have), [&](const Handle& h, const Entry& e) {
      account_map(v, id, align_down(e.addr, h.shift), h.shift);
    });
    account_unmap(v, id, base_pa, have);
  }

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

  bool uffd_open_ = false;
  bool mmap_changing_ = false;
  u64 features_ = 0;
  UffdMsg msgs_[kMaxMsgs];
  unsigned msg_n_ = 0;
  u64 waiters_[kMaxWaiters] = {};     // the faulting addresses
  u64 waiter_msg_[kMaxWaiters] = {};  // their messages' addresses (what wake-ups match)
  unsigned waiter_n_ = 0;

  Pieces pieces_[kMaxPieces];
  unsigned piece_n_ = 0;

  static constexpr unsigned kPending = 64;
  u64 pending_free_[kPending] = {};
  unsigned pending_n_ = 0;
};

}  // namespace hugepte::mm
