// mm_hgm_world.hpp - what the HGM tests (mm_hgm_test.cpp) and the memory-failure tests
// (mm_hwpoison_test.cpp) share: the geometry of a format (the 1G-class hstate H, the 2M-class
// piece M, table and entry counts derived from them), one address space over host memory, and
// helpers to build and inspect mappings. Sizes come from the format, never from constants.
//
// The hstate H is the largest leaf size <= 2^30 above the base page (x86 1G PUD, arm64-4K 1G,
// arm64-16K 1G CONT-PMD, arm64-64K 512M PMD, riscv 1G); M the largest leaf size <= 2^21 above
// the base page (arm64-16K/64K: a CONT-PTE group).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "fake_format.hpp"
#include "hpt_test.hpp"
#include "hugepte/env/host.hpp"
#include "hugepte/mm/mm.hpp"
#include "typed_formats.hpp"

namespace hugepte {
// gtest prints errors by name (internal linkage: other test files may print them their way).
[[maybe_unused]] static void PrintTo(Err e, std::ostream* os) { *os << err_name(e); }
namespace mm {
[[maybe_unused]] static void PrintTo(FaultKind k, std::ostream* os) { *os << fault_kind_name(k); }
}  // namespace mm
}  // namespace hugepte

namespace mm_hgm {

using namespace hugepte;      // NOLINT(google-build-using-namespace): test helpers
using namespace hugepte::mm;  // NOLINT(google-build-using-namespace): test helpers

using RiscvSv39Rsw = RiscvFormat<3, true, true, true>;  // Sv39 + Svrsw60t59b: uffd-wp leaves
using Formats = hpt_typed::AllWithFake<RiscvSv39Rsw>;

inline u64 env_u64(const char* name, u64 fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

// --- geometry ----------------------------------------------------------------------------------

template <class F>
struct Geo {
  static constexpr unsigned P = F::page_shift;

  // The largest leaf size <= cap and above the base page; 0 if the format has none.
  static constexpr unsigned pick(unsigned cap) {
    LeafSizes<F> s = leaf_sizes<F>();
    unsigned best = 0;
    for (unsigned i = 0; i < s.count; ++i)
      if (s.shift[i] <= cap && s.shift[i] > P && s.shift[i] > best) best = s.shift[i];
    return best;
  }
  static constexpr unsigned H = pick(30);                              // the "1 GiB class" hstate
  static constexpr unsigned M = pick(21);                              // the "2 MiB class" piece
  static constexpr unsigned hl = H ? huge_size<F>(H).value.level : 0;  // level of H's slot
  static constexpr unsigned ml = M ? huge_size<F>(M).value.level : 0;
  static constexpr u64 N = H ? bit(H - P) : 0;              // base pages in one hstate page
  static constexpr u64 g = H ? bit(H - F::shift(hl)) : 0;   // entries of H's slot (group)
  static constexpr u64 gm = M ? bit(M - F::shift(ml)) : 0;  // entries of an M piece
  static constexpr u64 entries(unsigned l) { return bit(F::index_bits(l)); }
  // Tables holding level-l entries (l < hl) under one hstate page mapped entirely at base pages.
  static constexpr u64 full_tables(unsigned l) { return bit(H - F::shift(l + 1)); }
  static constexpr u64 full_tables_total() {
    u64 n = 0;
    for (unsigned l = 0; l < hl; ++l) n += full_tables(l);
    return n;
  }
  // Logical leaves after a present H leaf is split down to one base page: the other entries of
  // every level on the way stay leaves of that level (a group is broken into plain entries).
  static constexpr u64 split_leaves() {
    u64 n = g - 1;
    for (unsigned l = 1; l < hl; ++l) n += entries(l) - 1;
    return n + entries(0);
  }
  // Leaves a uffd-wp bit can be kept in.
  static bool wp_leaves() {
    Entry e;
    e.kind = Kind::leaf;
    e.prot = kProtR;
    e.shift = static_cast<u8>(F::shift(0));
    e.accessed = true;
    e.soft.uffd_wp = true;
    return F::encode(e, 0).ok();
  }
  // Virtual layout: P at one hstate, an alias A two hstates further, a third mapping B beyond.
  static constexpr u64 base = H ? bit(H) : 0;
  static constexpr u64 alias = base + 2 * (H ? bit(H) : 0);
  static constexpr u64 third = base + 4 * (H ? bit(H) : 0);
};

constexpr u64 kFeatures = kFeatAll & ~kFeatExactAddress;
// Folio memory at 64 GiB: above the table pages (host::Env starts at 4 GiB) and inside every
// format's output address range (the fake format has 40 bits).
constexpr u64 kFolioBase = u64{1} << 36;

// Records what a secondary MMU would see.
struct NotifyLog {
  std::vector<Notification> starts, ends;
  NotifierHook hook() {
    return NotifierHook{
        this,
        [](void* s, const Notification& n) { static_cast<NotifyLog*>(s)->starts.push_back(n); },
        [](void* s, const Notification& n) { static_cast<NotifyLog*>(s)->ends.push_back(n); }};
  }
};

// One address space of format F over host memory, with a hugetlbfs pool of H folios.
template <class F>
struct World {
  using G = Geo<F>;
  using E = host::EnvFor<F>;
  using MmT = Mm<F, E, host::TlbModel, host::Folios>;
  using Mem = typename MmT::Mem;

  E env;
  host::TlbModel tlb;
  host::Folios folios;
  NotifyLog kvm;  // outlives mm, whose destructor still notifies
  Mem mem;
  MmT mm;

  explicit World(Policy p, PoisonPolicy pp = PoisonPolicy::h0, u64 pool = 4)
      : folios(kFolioBase),
        mem(folios, 64, p),
        mm(mem, env, tlb, typename MmT::Options{.poison = pp}) {
    EXPECT_EQ(mm.init(), Err::ok);
    EXPECT_EQ(mem.set_pool(G::H, pool), Err::ok);
    EXPECT_EQ(mem.set_pool(G::M, pool), Err::ok);
  }

  // A hugetlbfs file of `pages` hstate pages (H unless said), in the page cache when `fill`.
  u32 file(u64 pages, bool fill = true, unsigned hs = G::H) {
    Result<u32> f = mem.create_file(FileKind::hugetlb, hs, pages << hs);
    EXPECT_TRUE(f.ok());
    if (fill) {
      EXPECT_EQ(mem.fallocate(f.value, 0, pages << hs), Err::ok);
    }
    return f.value;
  }
  // A MAP_SHARED (or private) mapping of `pages` hstate pages of file at va.
  Err map(u64 va, u32 file, u64 pages, bool shared = true) {
    VmaSpec s;
    s.start = va;
    s.len = pages << mem.file(file).shift;
    s.prot = kProtRW;
    s.shared = shared;
    s.backing = Backing::file;
    s.file = file;
    Result<Vma*> r = mm.mmap(s);
    return r.err;
  }
  u32 folio(u32 file, u64 index = 0) const { return mem.cache_lookup(file, index); }
  u64 pa(u32 file, u64 index = 0) const { return mem.folio(folio(file, index)).pa; }

  Counters& c() { return mm.counters(); }
  typename MmT::Census census(u64 start, u64 end, unsigned level) const {
    return mm.census(start, end, level);
  }
  // Table pages reachable from the root (the root included).
  u64 reachable_tables() const {
    u64 n = 1;
    for (unsigned l = 1; l < F::levels; ++l) n += mm.census(0, top(), l).tables;
    return n;
  }
  static u64 top() {
    // The highest canonical address + 1 of the lower half (the test only maps there).
    return bit(F::shift(F::levels - 1) + F::index_bits(F::levels - 1) - 1);
  }

  // fn(va, view) for every entry covering [start, end): present leaves and none/marker/swap
  // slots, each once.
  template <class Fn>
  void each(u64 start, u64 end, Fn fn) const {
    for (u64 va = start; va < end;) {
      typename MmT::View v = mm.view(va);
      fn(va, v);
      va = align_down(va, v.shift) + bit(v.shift);
    }
  }
  // Logical present leaves in [start, end).
  u64 leaves(u64 start, u64 end) const {
    u64 n = 0;
    each(start, end, [&](u64, const typename MmT::View& v) { n += pte::present(v.entry); });
    return n;
  }
  // Every present leaf in [start, end) maps file offset == va - start (the file's folios from
  // index `index0` on); returns the first disagreement, "" when there is none.
  std::string check_file_map(u64 start, u64 end, u32 file, u64 index0 = 0) const {
    std::string why;
    const unsigned hs = mem.file(file).shift;
    each(start, end, [&](u64 va, const typename MmT::View& v) {
      if (!why.empty() || !pte::present(v.entry)) return;
      u64 off = va - start;
      u64 want = mem.folio(mem.cache_lookup(file, index0 + (off >> hs))).pa + (off & (bit(hs) - 1));
      u64 got = host::leaf_pa(v.entry, va);
      if (got != want) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "va 0x%llx maps pa 0x%llx, want 0x%llx",
                      static_cast<unsigned long long>(va), static_cast<unsigned long long>(got),
                      static_cast<unsigned long long>(want));
        why = buf;
      }
    });
    return why;
  }

  // Maps every base page of [start, end) of a faulted-in HGM-able VMA by its own entry, with
  // split_leaf (cheap: one split per bigger leaf, then one view per page).
  void shatter(u64 start, u64 end) {
    for (u64 va = start; va < end;) {
      typename MmT::View v = mm.view(va);
      if (pte::present(v.entry) && v.shift > G::P) {
        ASSERT_EQ(mm.split_leaf(va, G::P), Err::ok);
        continue;
      }
      va += bit(G::P);
    }
  }
};

// Sets up an HGM-enabled MAP_SHARED mapping of `pages` fallocated hstate pages at base,
// registered with `reg` (0: not registered). Returns the file.
template <class F>
u32 hgm_setup(World<F>& w, u64 pages = 1, u32 reg = kRegMinor, bool split = true) {
  using G = Geo<F>;
  u32 file = w.file(pages);
  EXPECT_EQ(w.map(G::base, file, pages), Err::ok);
  if (split) {
    EXPECT_EQ(w.mm.madvise_split(G::base, pages << G::H), Err::ok);
  }
  EXPECT_EQ(w.mm.uffd_api(kFeatures), Err::ok);
  if (reg) {
    EXPECT_TRUE(w.mm.uffd_register(G::base, pages << G::H, reg).ok());
  }
  return file;
}

// Caches a few translations and walk-cache entries of [start, end) the way hardware would.
template <class F>
void touch(World<F>& w, u64 start, u64 end, unsigned n = 8) {
  for (unsigned i = 0; i < n; ++i)
    (void)w.tlb.access(
        w.mm.table(),
        align_down(start + (end - start) / n * i + 7 * i * bit(F::page_shift), F::page_shift));
}

template <class F>
std::string stale(const World<F>& w) {
  auto s = w.tlb.stale(w.mm.table());
  return s.empty() ? std::string() : s.front().what + ": " + s.front().why;
}
}  // namespace mm_hgm

// The geometry names every typed test body uses.
#define HGM_PRELUDE              \
  using F = TypeParam;           \
  using G = Geo<F>;              \
  constexpr unsigned P = G::P;   \
  constexpr unsigned H = G::H;   \
  constexpr unsigned hl = G::hl; \
  constexpr u64 base = G::base;  \
  (void)P, (void)H, (void)hl, (void)base
