// mm_world.hpp - what the mm model's tests share: the userfaultfd tests (mm_uffd_test.cpp,
// mm_uffd_model_test.cpp), the HGM tests (mm_hgm_test.cpp) and the memory-failure tests
// (mm_hwpoison_test.cpp). The geometry of a format (the 1G-class hstate H, the 2M-class piece M,
// table and entry counts derived from them), one address space over host memory, and helpers to
// make files and VMAs and to inspect mappings. Sizes come from the format, never from constants.
//
// The hstate H is the largest leaf size <= 2^30 above the base page (x86 1G PUD, arm64-4K 1G,
// arm64-16K 1G CONT-PMD, arm64-64K 512M PMD, riscv 1G); M the largest leaf size <= 2^21 above
// the base page (arm64-16K/64K: a CONT-PTE group).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <utility>
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

namespace mm_world {

using namespace hugepte;      // NOLINT(google-build-using-namespace): test helpers
using namespace hugepte::mm;  // NOLINT(google-build-using-namespace): test helpers

// The mm suites run over one format per geometry (typed_formats.hpp: x86-64 4-level, arm64
// 4K/48, 16K/47, 64K/42, riscv Sv39, the fake exemplar), plus Sv39 with Svrsw60t59b: the riscv
// mode whose leaves hold a uffd-wp bit (whether a format's leaves hold one:
// hugepte::mm::uffd_wp_supported<F>()). The formats left out differ only in VA width and
// number of levels, which the walker's and range suites cover over every format; each format is
// a full instantiation of the mm model, and compile time is what make test's budget is spent on.
using RiscvSv39Rsw = RiscvFormat<3, true, true, true>;
using GeometryFormats = hpt_typed::GeometriesWithFake<RiscvSv39Rsw>;
using Formats = GeometryFormats;

}  // namespace mm_world

// The same formats spelled for the preprocessor, for the explicit instantiations below
// (mm_instances.cpp checks that the two lists agree).
#if HUGEPTE_TEST_FORMATS_ARCHES
#define HPT_MM_GEOMETRIES(X) X(hugepte::X86_4Level) X(hugepte::Arm64_4K_48) X(hugepte::Sv39)
#elif HUGEPTE_TEST_FORMATS_NATIVE && defined(__aarch64__)
#define HPT_MM_GEOMETRIES(X) \
  X(hugepte::Arm64_4K_48) X(hugepte::Arm64_16K_47) X(hugepte::Arm64_64K_42)
#elif HUGEPTE_TEST_FORMATS_NATIVE && defined(__riscv)
#define HPT_MM_GEOMETRIES(X) X(hugepte::Sv39) X(hugepte::Sv57)
#elif HUGEPTE_TEST_FORMATS_NATIVE
#define HPT_MM_GEOMETRIES(X) X(hugepte::X86_4Level) X(hugepte::X86_5Level)
#else
#define HPT_MM_GEOMETRIES(X)                                                  \
  X(hugepte::X86_4Level) X(hugepte::Arm64_4K_48) X(hugepte::Arm64_16K_47) \
  X(hugepte::Arm64_64K_42) X(hugepte::Sv39)
#endif
#define HPT_MM_FORMATS(X) X(mm_world::RiscvSv39Rsw) X(hugepte::fake::FakeFormat) HPT_MM_GEOMETRIES(X)
#define HPT_MM_OF(F) \
  hugepte::mm::Mm<F, hugepte::host::EnvFor<F>, hugepte::host::TlbModel, hugepte::host::Folios>

// The mm model is instantiated once per format, in mm_instances.cpp; every other test file
// only declares those instances. Each file would otherwise compile the whole model again for
// every format, and compile time is what make test's budget is spent on.
#define HPT_MM_EXTERN(F) extern template class HPT_MM_OF(F);
HPT_MM_FORMATS(HPT_MM_EXTERN)

namespace mm_world {

using namespace hugepte;      // NOLINT(google-build-using-namespace): test helpers
using namespace hugepte::mm;  // NOLINT(google-build-using-namespace): test helpers

inline uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

// --- geometry ----------------------------------------------------------------------------------

// The largest leaf size of F that is at most `cap` and above the base page (0: none).
template <class F>
constexpr unsigned class_shift(unsigned cap) {
  LeafSizes<F> s = leaf_sizes<F>();
  unsigned best = 0;
  for (unsigned i = 0; i < s.count; ++i)
    if (s.shift[i] <= cap && s.shift[i] > F::page_shift && s.shift[i] > best) best = s.shift[i];
  return best;
}
// "1 GiB-class" and "2M-class" hstates (x86 1G, arm64-16K CONT-PMD, 64K 512M...).
template <class F>
inline constexpr unsigned kH = class_shift<F>(30);
template <class F>
inline constexpr unsigned kM = class_shift<F>(21);

// Level of the entries of a huge size, and how many entries of that level one page of it takes
// (a contiguous group: several).
template <class F>
constexpr unsigned level_of(unsigned shift) {
  return shift == F::page_shift ? 0 : huge_size<F>(shift).value.level;
}
template <class F>
constexpr uint64_t subs_of(unsigned shift) {
  return bit(shift - F::shift(level_of<F>(shift)));
}

template <class F>
struct Geo {
  static constexpr unsigned P = F::page_shift;
  static constexpr unsigned H = kH<F>;                      // the "1 GiB class" hstate
  static constexpr unsigned M = kM<F>;                      // the "2 MiB class" piece
  static constexpr unsigned hl = H ? level_of<F>(H) : 0;    // level of H's slot
  static constexpr unsigned ml = M ? level_of<F>(M) : 0;
  static constexpr uint64_t N = H ? bit(H - P) : 0;              // base pages in one hstate page
  static constexpr uint64_t g = H ? subs_of<F>(H) : 0;           // entries of H's slot (group)
  static constexpr uint64_t gm = M ? subs_of<F>(M) : 0;          // entries of an M piece
  static constexpr uint64_t entries(unsigned l) { return bit(F::index_bits(l)); }
  // Tables holding level-l entries (l < hl) under one hstate page mapped entirely at base pages.
  static constexpr uint64_t full_tables(unsigned l) { return bit(H - F::shift(l + 1)); }
  static constexpr uint64_t full_tables_total() {
    uint64_t n = 0;
    for (unsigned l = 0; l < hl; ++l) n += full_tables(l);
    return n;
  }
  // Logical leaves after a present H leaf is split down to one base page: the other entries of
  // every level on the way stay leaves of that level (a group is broken into plain entries).
  static constexpr uint64_t split_leaves() {
    uint64_t n = g - 1;
    for (unsigned l = 1; l < hl; ++l) n += entries(l) - 1;
    return n + entries(0);
  }
  // The HGM tests' virtual layout: P at one hstate, an alias A two hstates further, a third
  // mapping B beyond. (The userfaultfd tests start at World::base().)
  static constexpr uint64_t base = H ? bit(H) : 0;
  static constexpr uint64_t alias = base + 2 * (H ? bit(H) : 0);
  static constexpr uint64_t third = base + 4 * (H ? bit(H) : 0);
};

// Table pages a descent from the root of an empty address space to a slot of `level`
// allocates, per level of the entries they hold: one for each level in [level, root).
template <class F>
std::vector<uint64_t> path_tables(unsigned level) {
  std::vector<uint64_t> v(8, 0);
  for (unsigned l = level; l + 1 < F::levels; ++l) v[l] = 1;
  return v;
}
inline std::vector<uint64_t> per_level(const Counters& c, bool alloc) {
  std::vector<uint64_t> v(8, 0);
  for (unsigned l = 0; l < 8; ++l) v[l] = alloc ? c.pt_alloc[l] : c.pt_free[l];
  return v;
}

// --- the address space ---------------------------------------------------------------------------

// Every feature but those that change what a userfault reports (EXACT_ADDRESS: the address;
// SIGBUS: a signal instead of a message; THREAD_ID: the thread) and the non-cooperative events
// (a DONTNEED, munmap, mremap or fork would wait for the monitor).
constexpr uint64_t kFeatures = kFeatAll & ~(kFeatExactAddress | kFeatSigbus | kFeatThreadId |
                                            kFeatEventFork | kFeatEventRemap |
                                            kFeatEventRemove | kFeatEventUnmap);

// A source address for UFFDIO_COPY: never dereferenced by the host folio memory.
inline const void* const kSrc = reinterpret_cast<const void*>(std::uintptr_t{1} << 20);

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

// One address space of format F over host memory. Two setups, each as its tests always had it:
//   World<F> w;                    policy S1, no hstate pools (each test sizes the pool of the
//                                  hstate it maps), room for 4096 folios: the userfaultfd tests;
//   World<F> w(policy, poison, n)  pools of n folios (4 unless said) of H and of M, room for 64
//                                  folios: the HGM and memory-failure tests.
template <class F>
struct World {
  using G = Geo<F>;
  using Env = host::EnvFor<F>;
  using MmT = Mm<F, Env, host::TlbModel, host::Folios>;
  using Mem = typename MmT::Mem;

  // Where the two setups put folio memory: far above the table pages (host::Env starts at
  // 4 GiB) and inside the format's physical address width (an output address the format cannot
  // encode would make every install fail) - high in it, or at 64 GiB, inside every format's.
  static constexpr uint64_t kFolioBaseHigh = bit(F::pa_bits - 2 < 44 ? F::pa_bits - 2 : 44);
  static constexpr uint64_t kFolioBase64G = uint64_t{1} << 36;

  Env env;
  host::TlbModel tlb;
  host::Folios folios;
  NotifyLog kvm;  // outlives mm, whose destructor still notifies
  Mem mem;
  MmT mm;
  Err init_err;

  World() : World(Policy::s1, typename MmT::Options{}, kFolioBaseHigh, 4096) {}
  explicit World(Policy p, PoisonPolicy pp = PoisonPolicy::h0, uint64_t pool = 4)
      : World(p, typename MmT::Options{.poison = pp}, kFolioBase64G, 64) {
    EXPECT_EQ(init_err, Err::ok);
    EXPECT_EQ(mem.set_pool(G::H, pool), Err::ok);
    EXPECT_EQ(mem.set_pool(G::M, pool), Err::ok);
  }

  // Where the userfaultfd tests put their first VMA: 1 GiB-class aligned, well inside every VA
  // space. (The HGM tests use Geo::base.)
  static uint64_t base() { return 4 * bit(kH<F> != 0 ? kH<F> : 30); }

  // --- files and VMAs ---

  uint32_t new_file(FileKind kind, unsigned shift, uint64_t pages) {
    Result<uint32_t> f = mem.create_file(kind, shift, pages << shift);
    EXPECT_TRUE(f.ok()) << err_name(f.err);
    return f.value;
  }
  // A hugetlbfs file of `pages` pages of 1 << shift, its pool set to `pool` folios.
  uint32_t hugetlb_file(unsigned shift, uint64_t pages, uint64_t pool) {
    EXPECT_EQ(mem.set_pool(shift, pool), Err::ok);
    return new_file(FileKind::hugetlb, shift, pages);
  }
  uint32_t shmem_file(uint64_t pages) { return new_file(FileKind::shmem, G::P, pages); }
  // A hugetlbfs file of `pages` hstate pages (H unless said), in the page cache when `fill`.
  uint32_t file(uint64_t pages, bool fill = true, unsigned hs = G::H) {
    uint32_t f = new_file(FileKind::hugetlb, hs, pages);
    if (fill) {
      EXPECT_EQ(mem.fallocate(f, 0, pages << hs), Err::ok);
    }
    return f;
  }

  // noreserve: MAP_NORESERVE (a hugetlbfs mapping reserves no pages; its faults may find the
  // pool empty).
  Result<Vma*> mmap_file(uint64_t start, uint64_t len, uint32_t file, bool shared = true,
                         uint64_t pgoff = 0, bool noreserve = false) {
    VmaSpec s;
    s.noreserve = noreserve;
    s.start = start;
    s.len = len;
    s.prot = kProtRW;
    s.shared = shared;
    s.backing = Backing::file;
    s.file = file;
    s.pgoff = pgoff;
    return mm.mmap(s);
  }
  Vma* map_file(uint64_t start, uint64_t len, uint32_t file, bool shared = true, uint64_t pgoff = 0,
                bool noreserve = false) {
    Result<Vma*> v = mmap_file(start, len, file, shared, pgoff, noreserve);
    EXPECT_TRUE(v.ok()) << err_name(v.err);
    return v.value;
  }
  // A MAP_SHARED (or private) mapping of `pages` hstate pages of file at va.
  Err map(uint64_t va, uint32_t file, uint64_t pages, bool shared = true) {
    return mmap_file(va, pages << mem.file(file).shift, file, shared).err;
  }
  Vma* map_anon(uint64_t start, uint64_t len, Prot prot = kProtRW) {
    VmaSpec s;
    s.start = start;
    s.len = len;
    s.prot = prot;
    Result<Vma*> v = mm.mmap(s);
    EXPECT_TRUE(v.ok()) << err_name(v.err);
    return v.value;
  }

  // The userfaultfd tests' preamble: anonymous [start, start + len), UFFDIO_API(features) and
  // REGISTER of the whole range for `mode`, on the first userfaultfd.
  void map_anon_registered(uint64_t start, uint64_t len, uint64_t features, uint32_t mode) {
    map_anon(start, len);
    EXPECT_EQ(mm.uffd_api(features), Err::ok);
    EXPECT_TRUE(mm.uffd_register(start, len, mode).ok());
  }

  // The folio the page cache holds at index (kNoFolio: none), and its physical address.
  uint32_t cached(uint32_t file, uint64_t index = 0) const { return mem.cache_lookup(file, index); }
  uint64_t cached_pa(uint32_t file, uint64_t index = 0) const {
    uint32_t id = mem.cache_lookup(file, index);
    return id == kNoFolio ? ~uint64_t{0} : mem.folio(id).pa;
  }

  // uffd-wp markers over [start, start + len) in units of `shift`: by UFFDIO_WRITEPROTECT where
  // the VMA is registered for WP, otherwise written directly (formats without a uffd-wp bit
  // still encode markers; the install rules do not depend on how the marker got there).
  void put_marker(uint64_t start, uint64_t len, unsigned shift, uint64_t flags) {
    for (uint64_t va = start; va < start + len; va += bit(shift)) {
      Result<HugePte<F>> h =
          shift == G::P ? Result<HugePte<F>>(page_handle(va)) : mm.ops().alloc(va, shift);
      ASSERT_TRUE(h.ok()) << err_name(h.err);
      ASSERT_EQ(mm.ops().set(h.value, pte::make_marker(flags)), Err::ok);
    }
  }
  HugePte<F> page_handle(uint64_t va) {
    Result<Found> f = find_or_alloc(mm.table(), va, 0);
    EXPECT_TRUE(f.ok());
    return HugePte<F>{f.value.slot, va, 0, static_cast<uint8_t>(G::P)};
  }

  // --- inspection ---

  using Snapshot = decltype(std::declval<Env&>().snapshot());
  Snapshot snap() const { return env.snapshot(); }
  Counters& c() { return mm.counters(); }
  typename MmT::Census census(uint64_t start, uint64_t end, unsigned level) const {
    return mm.census(start, end, level);
  }
  // Table pages reachable from the root (the root included).
  uint64_t reachable_tables() const {
    uint64_t n = 1;
    for (unsigned l = 1; l < F::levels; ++l) n += mm.census(0, top(), l).tables;
    return n;
  }
  static uint64_t top() {
    // The highest canonical address + 1 of the lower half (the test only maps there).
    return bit(F::shift(F::levels - 1) + F::index_bits(F::levels - 1) - 1);
  }

  // fn(va, view) for every entry covering [start, end): present leaves and none/marker/swap
  // slots, each once.
  template <class Fn>
  void each(uint64_t start, uint64_t end, Fn fn) const {
    for (uint64_t va = start; va < end;) {
      typename MmT::View v = mm.view(va);
      fn(va, v);
      va = align_down(va, v.shift) + bit(v.shift);
    }
  }
  // Logical present leaves in [start, end).
  uint64_t leaves(uint64_t start, uint64_t end) const {
    uint64_t n = 0;
    each(start, end, [&](uint64_t, const typename MmT::View& v) { n += pte::present(v.entry); });
    return n;
  }
  // Every present leaf in [start, end) maps file offset == va - start (the file's folios from
  // index `index0` on); returns the first disagreement, "" when there is none.
  std::string check_file_map(uint64_t start, uint64_t end, uint32_t file,
                             uint64_t index0 = 0) const {
    std::string why;
    const unsigned hs = mem.file(file).shift;
    each(start, end, [&](uint64_t va, const typename MmT::View& v) {
      if (!why.empty() || !pte::present(v.entry)) return;
      uint64_t off = va - start;
      uint64_t want =
          mem.folio(mem.cache_lookup(file, index0 + (off >> hs))).pa + (off & (bit(hs) - 1));
      uint64_t got = host::leaf_pa(v.entry, va);
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
  void shatter(uint64_t start, uint64_t end) {
    for (uint64_t va = start; va < end;) {
      typename MmT::View v = mm.view(va);
      if (pte::present(v.entry) && v.shift > G::P) {
        ASSERT_EQ(mm.split_leaf(va, G::P), Err::ok);
        continue;
      }
      va += bit(G::P);
    }
  }

  // The memory of World() with other Mm options (a profile, say).
  explicit World(typename MmT::Options o) : World(Policy::s1, o, kFolioBaseHigh, 4096) {}

 private:
  World(Policy p, typename MmT::Options o, uint64_t folio_base, uint32_t max_folios)
      : folios(folio_base), mem(folios, max_folios, p), mm(mem, env, tlb, o), init_err(mm.init()) {}
};

// Sets up an HGM-enabled MAP_SHARED mapping of `pages` fallocated hstate pages at base,
// registered with `reg` (0: not registered). Returns the file.
template <class F>
uint32_t hgm_setup(World<F>& w, uint64_t pages = 1, uint32_t reg = kRegMinor, bool split = true) {
  using G = Geo<F>;
  uint32_t file = w.file(pages);
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
void touch(World<F>& w, uint64_t start, uint64_t end, unsigned n = 8) {
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
}  // namespace mm_world

// The geometry names every typed HGM test body uses.
#define HGM_PRELUDE              \
  using F = TypeParam;           \
  using G = Geo<F>;              \
  constexpr unsigned P = G::P;   \
  constexpr unsigned H = G::H;   \
  constexpr unsigned hl = G::hl; \
  constexpr uint64_t base = G::base;  \
  (void)P, (void)H, (void)hl, (void)base
