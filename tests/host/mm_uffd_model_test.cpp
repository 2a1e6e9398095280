// mm_uffd_model_test.cpp - seeded random sequences of faults and userfaultfd ioctls over a small
// shared shmem VMA and a small shared hugetlb VMA (2M-class hstate), checked after every step
// against a reference model written here from docs/mm.md §1:
//   per page (shmem) / per hstate page (hugetlb): none, marker{flags}, or
//   present{folio, writable, uffd_wp}; per file index: cached (which folio) or not; the pool;
//   the message queue, the blocked threads, and the message / wake-up counts.
// Each step also checks: the folio mapcount / refcount the policy (S1) implies, that a TLB primed
// before the step holds nothing stale after it, that installs (COPY, ZEROPAGE, CONTINUE, POISON,
// faults into none entries) never notify nor flush, that a successful WRITEPROTECT is exactly
// one PROTECTION_VMA notifier pair and one flush, and that every failing call (an error and no
// progress) leaves the page tables bit-identical (host::Env::snapshot). Allocation failures
// are injected into some single-unit calls: ENOMEM (SIGBUS for a fault) with nothing changed.
//
// Registration modes, EXACT_ADDRESS and the pool are drawn per seed. HPT_UFFD_SEED replays one
// seed, HPT_UFFD_STEPS changes the length; a failure prints the seed, the step and the last ops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

#include "hpt_test.hpp"
#include "mm_world.hpp"

namespace {

using namespace mm_world;  // NOLINT(google-build-using-namespace): test file
using hpt_typed::FormatName;

template <class F>
class UffdModelRun {
 public:
  static constexpr unsigned kPage = F::page_shift;
  static constexpr uint64_t P = bit(kPage);
  static constexpr unsigned M = kM<F>;
  static constexpr uint64_t kHugePages = 4, kShmemPages = 16;
  using Mm_ = typename World<F>::MmT;

  enum class St : uint8_t { none, marker, present };
  struct Slot {
    St st = St::none;
    uint64_t flags = 0;  // marker
    uint32_t folio = kNoFolio;
    bool writable = false;
    bool wp = false;
  };
  struct Region {
    bool hugetlb = false;
    uint64_t start = 0;
    unsigned shift = 0;  // the unit: hstate or base page
    uint64_t n = 0;
    uint32_t file = 0;
    uint32_t mode = 0;  // registered
    std::vector<Slot> slot;
    std::vector<uint32_t> cache;  // folio per file index (one index per unit: pgoff 0)
    uint64_t end() const { return start + (n << shift); }
    uint64_t unit(uint64_t va) const { return (va - start) >> shift; }
  };

  World<F> w;
  Region reg[2];  // [0] hugetlb, [1] shmem, adjacent; a hole after the shmem VMA
  uint64_t pool = 0;
  bool exact = false, wp_ok = false, changing = false;
  std::deque<UffdMsg> msgs;
  struct Waiter {
    uint64_t va;    // where the thread faulted
    uint64_t addr;  // its message's address: what a wake-up range is matched against
  };
  std::vector<Waiter> waiters;
  uint64_t n_msgs = 0, n_wakes = 0;
  hpt::Rng rng{0};
  std::deque<std::string> recent;
  unsigned stats_fail = 0, stats_partial = 0, stats_enomem = 0, stats_uffd = 0, stats_filled = 0,
           stats_wp = 0;

  uint64_t rnd(uint64_t n) { return rng.below(n); }

  void setup(uint64_t seed) {
    rng = hpt::Rng{seed};
    ASSERT_EQ(w.init_err, Err::ok);
    wp_ok = uffd_wp_supported<F>();
    exact = rnd(2) == 0;
    pool = 2 + rnd(3);  // 2..4 hugepages for 4 hstate pages: the pool may run dry
    Region& h = reg[0];
    h.hugetlb = true;
    h.start = w.base();
    h.shift = M;
    h.n = kHugePages;
    h.file = w.hugetlb_file(M, kHugePages, pool);
    Region& s = reg[1];
    s.start = h.end();
    s.shift = kPage;
    s.n = kShmemPages;
    s.file = w.shmem_file(kShmemPages);
    for (Region& r : reg) {
      r.slot.assign(r.n, Slot{});
      r.cache.assign(r.n, kNoFolio);
      w.map_file(r.start, r.n << r.shift, r.file, true, 0, /*noreserve=*/true);  // may run dry
    }
    ASSERT_EQ(w.mm.uffd_api(exact ? kFeatExactAddress : 0), Err::ok);
    for (Region& r : reg) {
      do {
        r.mode = static_cast<uint32_t>(rnd(8)) & (kRegMissing | kRegMinor | (wp_ok ? kRegWp : 0));
      } while (r.mode == 0);
      if (!wp_ok) {
        EXPECT_EQ(w.mm.uffd_register(r.start, r.n << r.shift, r.mode | kRegWp).err, Err::einval);
      }
      ASSERT_TRUE(w.mm.uffd_register(r.start, r.n << r.shift, r.mode).ok());
    }
  }

  Region* region_at(uint64_t va) {
    for (Region& r : reg)
      if (va >= r.start && va < r.end()) return &r;
    return nullptr;
  }

  // --- the reference semantics ---------------------------------------------------------------

  void push_msg(uint64_t va, const Region& r, uint32_t flags) {
    uint64_t a = exact ? va : align_down(va, r.shift);
    if (msgs.size() < Mm_::kMaxMsgs) msgs.push_back(UffdMsg{a, flags});
    if (waiters.size() < Mm_::kMaxWaiters) waiters.push_back(Waiter{va, a});
    ++n_msgs;
  }
  void wake(uint64_t start, uint64_t end) {
    std::vector<Waiter> keep;
    for (const Waiter& x : waiters) {
      if (x.addr >= start && x.addr < end)
        ++n_wakes;
      else
        keep.push_back(x);
    }
    waiters = keep;
  }
  // A new folio in the cache at index i of r (the model knows that one appears; its identity
  // is read from the cache after the real call).
  void take_new_folio(Region& r, uint64_t i) {
    uint32_t id = w.cached(r.file, i);
    EXPECT_NE(id, kNoFolio) << "a new page-cache folio at index " << i;
    for (const Region& o : reg)
      for (uint32_t c : o.cache)
        EXPECT_TRUE(id == kNoFolio || c != id) << "folio " << id << " reused while cached";
    r.cache[i] = id;
    if (r.hugetlb) --pool;
  }
  void map(Region& r, uint64_t i, bool writable, bool wp) {
    r.slot[i] = Slot{St::present, 0, r.cache[i], writable && !wp, wp};
  }

  struct FaultWant {
    FaultKind kind = FaultKind::handled;
    uint8_t lsb = 0;
    UffdMsg msg{};
  };
  FaultWant model_fault(uint64_t va, Access a) {
    Region& r = *region_at(va);
    const uint64_t i = r.unit(va);
    Slot& s = r.slot[i];
    const bool write = a == Access::write;
    FaultWant want;
    auto uffd = [&](uint32_t flags) {
      push_msg(va, r, flags);
      want.kind = FaultKind::uffd;
      want.msg = UffdMsg{exact ? va : align_down(va, r.shift), flags};
      return want;
    };
    if (s.st == St::present) {
      if (write && !s.writable) {
        if (s.wp && (r.mode & kRegWp)) return uffd(kMsgWp | kMsgWrite);
        s.writable = true;  // a shared page the VMA may write (a stale uffd-wp bit stays)
      }
      return want;
    }
    bool wp_marker = false;
    if (s.st == St::marker) {
      if (s.flags & kMarkerPoisoned)
        return FaultWant{FaultKind::sigbus, static_cast<uint8_t>(r.shift), {}};
      // A uffd-wp marker left from an earlier WP registration: shmem drops it, hugetlb still
      // maps write-protected (without an event).
      wp_marker = (s.flags & kMarkerUffdWp) && (r.hugetlb || (r.mode & kRegWp));
    }
    if (r.cache[i] != kNoFolio) {
      if (r.mode & kRegMinor) return uffd(kMsgMinor | (write ? kMsgWrite : 0));
    } else {
      if (r.mode & kRegMissing) return uffd(write ? kMsgWrite : 0);
      if (r.hugetlb && pool == 0) return FaultWant{FaultKind::sigbus, 0, {}};
      take_new_folio(r, i);
    }
    map(r, i, true, wp_marker);
    if (wp_marker && write) {
      if (r.mode & kRegWp) return uffd(kMsgWp | kMsgWrite);
      s.writable = true;
    }
    return want;
  }

  enum class Op : uint8_t { copy, zeropage, cont, poison };
  static const char* op_name(Op op) {
    return op == Op::copy       ? "COPY"
           : op == Op::zeropage ? "ZEROPAGE"
           : op == Op::cont     ? "CONTINUE"
                                : "POISON";
  }

  UffdResult model_mfill(Op op, uint64_t dst, uint64_t len, uint32_t mode) {
    // Refused before anything is read (mmap changing first, as userfaultfd_copy & co. check it
    // before they copy the arguments in), then the arguments: the result field is not written.
    const uint32_t allowed =
        op == Op::copy || op == Op::cont ? (kModeDontwake | kModeWp) : kModeDontwake;
    if (changing) return {Err::eagain, 0, false};
    if (mode & ~allowed) return {Err::einval, 0, false};
    if (len == 0 || !aligned(dst, kPage) || !aligned(len, kPage)) return {Err::einval, 0, false};
    Region* rp = region_at(dst);
    if (!rp || dst + len > rp->end()) return {Err::enoent, 0};
    Region& r = *rp;
    if ((mode & kModeWp) && !(r.mode & kRegWp)) return {Err::einval, 0};
    if (op == Op::zeropage && r.hugetlb) return {Err::einval, 0};
    if (!aligned(dst, r.shift) || !aligned(len, r.shift)) return {Err::einval, 0};
    const bool wp = mode & kModeWp;
    uint64_t va = dst;
    Err err = Err::ok;
    for (; va < dst + len; va += bit(r.shift)) {
      const uint64_t i = r.unit(va);
      Slot& s = r.slot[i];
      if (s.st == St::present || (op == Op::poison && s.st == St::marker)) {
        err = Err::eexist;
        break;
      }
      if (op == Op::copy || op == Op::zeropage) {
        if (r.cache[i] != kNoFolio) {
          err = Err::eexist;
          break;
        }
        if (r.hugetlb && pool == 0) {
          err = Err::enomem;
          break;
        }
        take_new_folio(r, i);
        map(r, i, true, wp);
      } else if (op == Op::cont) {
        if (r.cache[i] == kNoFolio) {
          err = Err::efault;
          break;
        }
        map(r, i, true, wp);
      } else {
        s = Slot{St::marker, kMarkerPoisoned, kNoFolio, false, false};
      }
    }
    const uint64_t done = va - dst;
    if (done && !(mode & kModeDontwake)) wake(dst, va);
    if (done == 0) return {err, 0};
    return {done < len ? Err::eagain : Err::ok, done};
  }

  Err model_writeprotect(uint64_t start, uint64_t len, uint32_t mode) {
    if ((mode & kWpModeWp) && (mode & kWpModeDontwake)) return Err::einval;
    if (mode & ~(kWpModeWp | kWpModeDontwake)) return Err::einval;
    if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage)) return Err::einval;
    if (changing) return Err::eagain;
    const uint64_t end = start + len;
    for (uint64_t va = start; va < end;) {
      Region* r = region_at(va);
      if (!r || !(r->mode & kRegWp)) return Err::enoent;
      if (r->hugetlb && (!aligned(start, r->shift) || !aligned(len, r->shift))) return Err::einval;
      va = r->end();
    }
    const bool protect = mode & kWpModeWp;
    for (uint64_t va = start; va < end;) {
      Region& r = *region_at(va);
      Slot& s = r.slot[r.unit(va)];
      if (s.st == St::present) {
        s.wp = protect;
        s.writable = !protect;
      } else if (s.st == St::marker) {
        if (!(s.flags & (kMarkerPoisoned | kMarkerGuard))) {  // those are skipped
          s.flags = protect ? (s.flags | kMarkerUffdWp) : (s.flags & ~kMarkerUffdWp);
          if (s.flags == 0) s = Slot{};
        }
      } else if (protect) {
        s = Slot{St::marker, kMarkerUffdWp, kNoFolio, false, false};
      }
      va += bit(r.shift);
    }
    if (!protect && !(mode & kWpModeDontwake)) wake(start, end);
    return Err::ok;
  }

  // The zap of MADV_DONTNEED and hole punch on unit i of r.
  void model_zap(Region& r, uint64_t i) {
    Slot& s = r.slot[i];
    if (s.st == St::present) {
      bool keep_wp = s.wp && (r.mode & kRegWp);
      s = keep_wp ? Slot{St::marker, kMarkerUffdWp, kNoFolio, false, false} : Slot{};
    } else if (s.st == St::marker) {
      bool keep = (s.flags & (kMarkerUffdWp | kMarkerGuard)) && !(s.flags & kMarkerPoisoned);
      if (!keep) s = Slot{};
    }
  }
  Err model_dontneed(uint64_t start, uint64_t len) {
    if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage)) return Err::einval;
    Region* r = region_at(start);
    if (!r || start + len > r->end()) return Err::einval;
    // A hugetlb range: the start on the hstate, the end rounded down to it (Linux 6.1, checked
    // by the linux ring's dontneed_hugetlb_rounds_down).
    if (!aligned(start, r->shift)) return Err::einval;
    len = align_down(len, r->shift);
    for (uint64_t va = start; va < start + len; va += bit(r->shift)) model_zap(*r, r->unit(va));
    return Err::ok;
  }
  void model_punch(Region& r, uint64_t i) {
    model_zap(r, i);
    if (r.cache[i] != kNoFolio && r.hugetlb) ++pool;
    r.cache[i] = kNoFolio;
  }
  Err model_fallocate(Region& r, uint64_t i) {
    if (r.cache[i] != kNoFolio) return Err::ok;
    if (r.hugetlb && pool == 0) return Err::enospc;  // hugetlbfs_fallocate
    take_new_folio(r, i);
    return Err::ok;
  }

  // --- checks ----------------------------------------------------------------------------------

  void check(const char* when) {
    SCOPED_TRACE(when);
    for (Region& r : reg) {
      const unsigned lvl = level_of<F>(r.shift);
      const uint64_t subs = subs_of<F>(r.shift);
      for (uint64_t i = 0; i < r.n; ++i) {
        // The unit's first entry in detail, every entry of it by a census (a group's entries
        // one by one would cost a group-wide get() each).
        const Slot& s = r.slot[i];
        const uint64_t va = r.start + (i << r.shift), end = va + bit(r.shift);
        auto v = w.mm.view(va);
        auto cen = w.mm.census(va, end, lvl);
        switch (s.st) {
          case St::none:
            ASSERT_EQ(v.entry.kind, Kind::none) << std::hex << va;
            if (v.level == lvl) {
              ASSERT_EQ(cen.none, subs) << std::hex << va;
            }
            break;
          case St::marker:
            ASSERT_EQ(v.entry.kind, Kind::marker) << std::hex << va;
            ASSERT_EQ(v.entry.swp.offset, s.flags) << std::hex << va;
            ASSERT_EQ(v.level, lvl) << std::hex << va;
            ASSERT_EQ(cen.markers, subs) << std::hex << va;
            ASSERT_EQ(cen.uffd_wp_markers, (s.flags & kMarkerUffdWp) ? subs : 0) << std::hex << va;
            break;
          case St::present:
            ASSERT_EQ(v.entry.kind, Kind::leaf) << std::hex << va;
            ASSERT_EQ(v.shift, r.shift) << std::hex << va;
            ASSERT_EQ(v.entry.addr, w.mem.folio(s.folio).pa) << std::hex << va;
            ASSERT_EQ(v.entry.writable, s.writable) << std::hex << va;
            ASSERT_EQ(v.entry.soft.uffd_wp, s.wp) << std::hex << va;
            ASSERT_EQ(cen.leaves, subs) << std::hex << va;
            break;
        }
      }
      for (uint64_t i = 0; i < r.n; ++i) {
        ASSERT_EQ(w.cached(r.file, i), r.cache[i])
            << (r.hugetlb ? "hugetlb" : "shmem") << " index " << i;
        if (r.cache[i] == kNoFolio) continue;
        const uint64_t maps = r.slot[i].st == St::present ? 1 : 0;
        ASSERT_EQ(w.mem.mapcount(r.cache[i]), maps) << "index " << i;
        ASSERT_EQ(w.mem.folio(r.cache[i]).refcount, 1 + maps) << "the cache's and the mapping's";
      }
    }
    ASSERT_EQ(w.mem.pool_free(M), pool);
    const Counters& c = w.mm.counters();
    ASSERT_EQ(c.uffd_msgs, n_msgs);
    ASSERT_EQ(c.uffd_wakes, n_wakes);
    ASSERT_EQ(w.mm.uffd_pending(), msgs.size());
    ASSERT_EQ(w.mm.uffd_waiters(), waiters.size());
    for (const Waiter& x : waiters) ASSERT_TRUE(w.mm.uffd_waiting(x.va)) << std::hex << x.va;
    auto stale = w.tlb.stale(w.mm.table());
    ASSERT_TRUE(stale.empty()) << stale.front().what << ": " << stale.front().why;
  }

  // --- random operations -----------------------------------------------------------------------

  // A range for an ioctl: mostly whole units inside one VMA, sometimes misaligned, empty,
  // across both VMAs or into the hole after them.
  void pick_range(uint64_t& start, uint64_t& len) {
    const uint64_t k = rnd(24);
    if (k < 13) {
      Region& r = reg[rnd(2)];
      uint64_t a = rnd(r.n), n = 1 + rnd(std::min<uint64_t>(3, r.n - a));
      start = r.start + (a << r.shift);
      len = n << r.shift;
    } else if (k < 17) {
      Region& r = reg[rnd(2)];
      uint64_t a = rnd(r.n);
      start = r.start + (a << r.shift) + (rnd(2) ? P * rnd(3) : 0);
      len = (1 + rnd(3)) * P;
    } else if (k < 19) {  // across the two VMAs
      start = reg[0].end() - (rnd(2) ? bit(M) : P);
      len = (reg[1].start - start) + (1 + rnd(3)) * P;
    } else if (k < 21) {  // into the hole
      start = reg[1].end() - P * (1 + rnd(2));
      len = 3 * P;
    } else if (k < 22) {
      start = reg[1].start;
      len = 0;
    } else if (k < 23) {
      start = reg[1].start + 1 + rnd(P - 1);
      len = P;
    } else {  // the whole of both
      start = reg[0].start;
      len = reg[1].end() - start;
    }
  }
  // Half of the time, a range the ioctl can fill: units with the state it needs (COPY and
  // ZEROPAGE: nothing cached or mapped; CONTINUE: cached, not mapped; POISON: none).
  void pick_fill_range(Op op, uint64_t& start, uint64_t& len) {
    if (rnd(2) == 0) return pick_range(start, len);
    Region& r = reg[op == Op::zeropage ? (rnd(5) != 0) : rnd(2)];
    auto fits = [&](uint64_t i) {
      const Slot& s = r.slot[i];
      switch (op) {
        case Op::copy:
        case Op::zeropage:
          return r.cache[i] == kNoFolio && s.st != St::present;
        case Op::cont:
          return r.cache[i] != kNoFolio && s.st != St::present;
        case Op::poison:
          return s.st == St::none;
      }
      return false;
    };
    std::vector<uint64_t> c;
    for (uint64_t i = 0; i < r.n; ++i)
      if (fits(i)) c.push_back(i);
    if (c.empty()) return pick_range(start, len);
    uint64_t a = c[rnd(c.size())], n = 1;
    while (n < 3 && a + n < r.n && fits(a + n) && rnd(2)) ++n;
    start = r.start + (a << r.shift);
    len = n << r.shift;
  }
  uint64_t pick_va() {
    Region& r = reg[rnd(2)];
    return r.start + rnd(r.n << r.shift);
  }
  // A single unit in a VMA (for failure injection).
  bool single_unit(uint64_t start, uint64_t len) const {
    for (const Region& r : reg)
      if (start >= r.start && start < r.end())
        return len == bit(r.shift) && aligned(start, r.shift);
    return false;
  }

  void note(const std::string& s) {
    recent.push_back(s);
    if (recent.size() > env_u64("HPT_UFFD_RECENT", 12)) recent.pop_front();
  }

  // Runs `call` once with an allocation failure armed (when `inject`): if the failure fired,
  // the call must have failed cleanly (checked by `failed_cleanly` against the snapshot) and
  // is then made again for real.
  template <class Call, class Clean>
  auto with_injection(bool inject, Call call, Clean failed_cleanly) {
    if (inject) {
      auto before = w.snap();
      const uint64_t failed = w.env.failed_allocs();
      w.env.fail_nth_alloc(1);
      auto r = call();
      w.env.fail_nth_alloc(0);
      if (w.env.failed_allocs() == failed) return r;  // nothing to allocate: a normal call
      ++stats_enomem;
      EXPECT_TRUE(failed_cleanly(r)) << "an allocation failure was not reported as such";
      EXPECT_TRUE(w.snap() == before) << "an allocation failure changed the tables";
      check("after an injected allocation failure");
    }
    return call();
  }

  // The hardware caches what the tables map in [start, start + len) (clamped to the VMAs): a
  // step that takes a permission away there or unmaps must invalidate it. (Priming only the
  // range a step works on keeps the software TLB small; the model checks the rest.)
  void prime(uint64_t start, uint64_t len) {
    const uint64_t lo = std::max(start, reg[0].start), hi = std::min(start + len, reg[1].end());
    if (lo < hi) {
      ASSERT_EQ(w.tlb.prime(w.mm.table(), align_down(lo, M), hi), Err::ok);
    }
  }

  void step(unsigned n) {
    w.tlb.flush_all();
    const Counters before_c = w.mm.counters();
    auto before = w.snap();
    const uint64_t kind = rnd(100);
    char what[160];
    auto fail_unchanged = [&](bool failed) {
      if (!failed) return;
      ++stats_fail;
      EXPECT_TRUE(w.snap() == before) << "a failing call changed the tables";
      EXPECT_EQ(w.mm.counters().pt_alloc_total(), before_c.pt_alloc_total());
    };
    auto installs_only = [&]() {
      EXPECT_EQ(w.mm.counters().notif_start, before_c.notif_start) << "an install notified";
      EXPECT_EQ(w.mm.counters().tlb_flush, before_c.tlb_flush) << "an install flushed";
      EXPECT_EQ(w.mm.counters().tlb_flush_all, before_c.tlb_flush_all);
    };
    if (kind < 24) {  // a fault
      const uint64_t va = pick_va();
      const Access a = rnd(2) ? Access::write : Access::read;
      std::snprintf(what, sizeof what, "step %u: %s fault at 0x%llx", n, access_name(a),
                    static_cast<unsigned long long>(va));
      note(what);
      SCOPED_TRACE(what);
      FaultResult got = with_injection(
          rnd(2) == 0, [&] { return w.mm.handle_fault(va, a); },
          [](const FaultResult& r) { return r.kind == FaultKind::sigbus && r.lsb == 0; });
      FaultWant want = model_fault(va, a);
      EXPECT_EQ(got.kind, want.kind);
      if (want.kind == FaultKind::sigbus) {
        EXPECT_EQ(got.lsb, want.lsb);
      }
      if (want.kind == FaultKind::uffd) {
        EXPECT_EQ(got.msg, want.msg);
        ++stats_uffd;
      }
      EXPECT_EQ(w.mm.counters().notif_start, before_c.notif_start) << "a fault notified";
    } else if (kind < 56) {  // COPY / ZEROPAGE / CONTINUE / POISON
      const Op op = kind < 34   ? Op::copy
                    : kind < 39 ? Op::zeropage
                    : kind < 51 ? Op::cont
                                : Op::poison;
      uint64_t dst, len;
      pick_fill_range(op, dst, len);
      const uint32_t modes[] = {0, kModeDontwake, kModeWp, kModeWp | kModeDontwake, 0, 0, 0,
                                0, kModeWp};
      const uint32_t mode = modes[rnd(9)];
      std::snprintf(what, sizeof what, "step %u: %s [0x%llx, +0x%llx) mode %u", n, op_name(op),
                    static_cast<unsigned long long>(dst), static_cast<unsigned long long>(len),
                    mode);
      note(what);
      SCOPED_TRACE(what);
      auto call = [&]() -> UffdResult {
        switch (op) {
          case Op::copy:
            return w.mm.uffd_copy(dst, kSrc, len, mode);
          case Op::zeropage:
            return w.mm.uffd_zeropage(dst, len, mode);
          case Op::cont:
            return w.mm.uffd_continue(dst, len, mode);
          case Op::poison:
            return w.mm.uffd_poison(dst, len, mode);
        }
        return {};
      };
      UffdResult got =
          with_injection(single_unit(dst, len) && rnd(2) == 0, call,
                         [](const UffdResult& r) { return r.err == Err::enomem && r.done == 0; });
      UffdResult want = model_mfill(op, dst, len, mode);
      EXPECT_EQ(got.err, want.err);
      EXPECT_EQ(got.done, want.done);
      EXPECT_EQ(got.reported, want.reported);
      if (got.done != 0 && got.done < len) ++stats_partial;
      if (got.err == Err::ok) ++stats_filled;
      fail_unchanged(got.err != Err::ok && got.done == 0);
      installs_only();
    } else if (kind < 68) {  // WRITEPROTECT
      uint64_t start, len;
      pick_range(start, len);
      prime(start, len);
      const uint32_t modes[] = {kWpModeWp, 0, kWpModeDontwake, kWpModeWp | kWpModeDontwake,
                                kWpModeWp};
      const uint32_t mode = modes[rnd(5)];
      std::snprintf(what, sizeof what, "step %u: WRITEPROTECT [0x%llx, +0x%llx) mode %u", n,
                    static_cast<unsigned long long>(start), static_cast<unsigned long long>(len),
                    mode);
      note(what);
      SCOPED_TRACE(what);
      Err got = with_injection(
          rnd(2) == 0, [&] { return w.mm.uffd_writeprotect(start, len, mode); },
          [](Err e) { return e == Err::enomem; });
      Err want = model_writeprotect(start, len, mode);
      EXPECT_EQ(got, want);
      const Counters& c = w.mm.counters();
      if (got == Err::ok) {
        ++stats_wp;
        EXPECT_EQ(c.notif_start - before_c.notif_start, 1u);
        EXPECT_EQ(c.notif_end - before_c.notif_end, 1u);
        EXPECT_EQ(c.tlb_flush - before_c.tlb_flush, 1u);
        if (c.notif_start <= Counters::kLog) {
          EXPECT_EQ(c.notif_log[c.notif_start - 1],
                    (Notification{NotifyEvent::protection_vma, start, start + len}));
        }
      } else {
        fail_unchanged(true);
        EXPECT_EQ(c.notif_start, before_c.notif_start);
        EXPECT_EQ(c.tlb_flush, before_c.tlb_flush);
      }
    } else if (kind < 71) {  // WAKE
      uint64_t start, len;
      pick_range(start, len);
      std::snprintf(what, sizeof what, "step %u: WAKE [0x%llx, +0x%llx)", n,
                    static_cast<unsigned long long>(start), static_cast<unsigned long long>(len));
      note(what);
      Err got = w.mm.uffd_wake(start, len);
      Err want = len == 0 || !aligned(start, kPage) || !aligned(len, kPage) ? Err::einval : Err::ok;
      if (want == Err::ok) wake(start, start + len);
      EXPECT_EQ(got, want) << what;
      fail_unchanged(got != Err::ok);
    } else if (kind < 76) {  // an alias writes a page into the cache
      Region& r = reg[rnd(2)];
      const uint64_t i = rnd(r.n);
      std::snprintf(what, sizeof what, "step %u: fallocate %s index %llu", n,
                    r.hugetlb ? "hugetlb" : "shmem", static_cast<unsigned long long>(i));
      note(what);
      Err got = w.mem.fallocate(r.file, i << r.shift, bit(r.shift));
      EXPECT_EQ(got, model_fallocate(r, i)) << what;
      EXPECT_TRUE(w.snap() == before) << what << ": the page cache is not the page tables";
    } else if (kind < 86) {  // hole punch
      Region& r = reg[rnd(2)];
      const uint64_t i = rnd(r.n);
      prime(r.start + (i << r.shift), bit(r.shift));
      std::snprintf(what, sizeof what, "step %u: punch %s index %llu", n,
                    r.hugetlb ? "hugetlb" : "shmem", static_cast<unsigned long long>(i));
      note(what);
      EXPECT_EQ(w.mem.punch_hole(r.file, i << r.shift, bit(r.shift)), Err::ok) << what;
      model_punch(r, i);
      EXPECT_EQ(w.mm.counters().notif_start - before_c.notif_start, 1u)
          << what << ": one VMA maps the file";
    } else if (kind < 93) {  // MADV_DONTNEED
      uint64_t start, len;
      pick_range(start, len);
      prime(start, len);
      std::snprintf(what, sizeof what, "step %u: MADV_DONTNEED [0x%llx, +0x%llx)", n,
                    static_cast<unsigned long long>(start), static_cast<unsigned long long>(len));
      note(what);
      Err got = w.mm.madvise_dontneed(start, len);
      Err want = model_dontneed(start, len);
      EXPECT_EQ(got, want) << what;
      fail_unchanged(got != Err::ok);
    } else if (kind < 95) {  // register again with another mode, sometimes unregistering first
      Region& r = reg[rnd(2)];
      const bool unreg = rnd(2) == 0;
      uint32_t mode;
      do {
        mode = static_cast<uint32_t>(rnd(8)) & (kRegMissing | kRegMinor | (wp_ok ? kRegWp : 0));
      } while (mode == 0);
      std::snprintf(what, sizeof what, "step %u: %sregister %s mode %u", n,
                    unreg ? "unregister + " : "", r.hugetlb ? "hugetlb" : "shmem", mode);
      note(what);
      if (unreg) {
        prime(r.start, r.n << r.shift);
        EXPECT_EQ(w.mm.uffd_unregister(r.start, r.n << r.shift), Err::ok) << what;
        const bool had_wp = r.mode & kRegWp;
        EXPECT_EQ(w.mm.counters().notif_start - before_c.notif_start, had_wp ? 1u : 0u)
            << what << ": resetting uffd-wp is one PROTECTION_VMA pair";
        if (had_wp) {  // userfaultfd_unregister resets the uffd-wp bits and markers
          for (Slot& sl : r.slot) {
            if (sl.st == St::present) {
              sl.wp = false;
              sl.writable = true;
            } else if (sl.st == St::marker && !(sl.flags & (kMarkerPoisoned | kMarkerGuard))) {
              sl.flags &= ~kMarkerUffdWp;
              if (sl.flags == 0) sl = Slot{};
            }
          }
        }
        // userfaultfd_unregister wakes the waiters of a VMA registered for MISSING only.
        if (r.mode & kRegMissing) wake(r.start, r.end());
        r.mode = 0;
        if (!changing) {
          EXPECT_EQ(w.mm.uffd_copy(r.start, kSrc, bit(r.shift), 0).err, Err::enoent)
              << "unregistered";
        }
      }
      Result<uint64_t> got = w.mm.uffd_register(r.start, r.n << r.shift, mode);
      EXPECT_TRUE(got.ok()) << what;
      r.mode = mode;
    } else if (kind < 97) {  // munmap and map again: the tables go, the cache stays
      Region& r = reg[rnd(2)];
      std::snprintf(what, sizeof what, "step %u: munmap + mmap %s", n,
                    r.hugetlb ? "hugetlb" : "shmem");
      note(what);
      EXPECT_EQ(w.mm.munmap(r.start, r.n << r.shift), Err::ok) << what;
      EXPECT_EQ(w.mm.counters().notif_start - before_c.notif_start, 1u) << what;
      if (before_c.notif_start < Counters::kLog) {
        EXPECT_EQ(w.mm.counters().notif_log[before_c.notif_start].event, NotifyEvent::unmap);
      }
      w.map_file(r.start, r.n << r.shift, r.file, true, 0, /*noreserve=*/true);  // may run dry
      EXPECT_TRUE(w.mm.uffd_register(r.start, r.n << r.shift, r.mode).ok()) << what;
      for (Slot& sl : r.slot) sl = Slot{};  // munmap wakes no waiter: they stay blocked
    } else if (kind < 99) {  // read(uffd)
      note("read(uffd)");
      Result<UffdMsg> got = w.mm.uffd_read();
      if (msgs.empty()) {
        EXPECT_EQ(got.err, Err::eagain);
      } else {
        EXPECT_TRUE(got.ok());
        EXPECT_EQ(got.value, msgs.front()) << "read(uffd)";
        msgs.pop_front();
      }
    } else {  // a non-cooperative event starts or ends
      changing = !changing;
      note(changing ? "mmap_changing on" : "mmap_changing off");
      w.mm.uffd_set_mmap_changing(changing);
    }
    if (!::testing::Test::HasFailure()) check(what);
  }

  void run(uint64_t seed, unsigned steps) {
    setup(seed);
    if (::testing::Test::HasFailure()) return;
    check("after setup");
    for (unsigned n = 0; n < steps && !::testing::Test::HasFailure(); ++n) {
      // A non-cooperative event does not last: end it most of the time.
      if (changing && rnd(3) == 0) {
        changing = false;
        w.mm.uffd_set_mmap_changing(false);
      }
      step(n);
    }
    if (::testing::Test::HasFailure()) {
      std::printf("uffd model test failed: HPT_UFFD_SEED=%llu; last operations:\n",
                  static_cast<unsigned long long>(seed));
      for (const std::string& s : recent) std::printf("  %s\n", s.c_str());
    }
  }
};

template <class F>
class MmUffdModelTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmUffdModelTest, Formats, FormatName);

TYPED_TEST(MmUffdModelTest, RandomFaultsAndIoctlsOnShmemAndHugetlbAgreeWithAReferenceModel) {
  using F = TypeParam;
  if (kM<F> == 0) GTEST_SKIP() << "the format has no 2M-class leaf size";
  const uint64_t one = env_u64("HPT_UFFD_SEED", 0);
  const unsigned steps = static_cast<unsigned>(env_u64("HPT_UFFD_STEPS", 300));
  const unsigned seeds = one ? 1 : 6;
  unsigned fails = 0, partial = 0, enomem = 0, uffd = 0, filled = 0, wp = 0;
  for (unsigned k = 0; k < seeds && !::testing::Test::HasFailure(); ++k) {
    const uint64_t seed = one ? one : 0x75ffd000ull + 7919 * k;
    SCOPED_TRACE(::testing::Message() << "seed " << seed << " (HPT_UFFD_SEED to replay)");
    UffdModelRun<F> run;
    run.run(seed, steps);
    fails += run.stats_fail;
    partial += run.stats_partial;
    enomem += run.stats_enomem;
    uffd += run.stats_uffd;
    filled += run.stats_filled;
    wp += run.stats_wp;
  }
  std::printf(
      "  %u seeds x %u steps: %u whole fills, %u partial, %u WRITEPROTECTs, %u failing calls, %u "
      "injected ENOMEM, %u userfaults\n",
      seeds, steps, filled, partial, wp, fails, enomem, uffd);
}

}  // namespace
