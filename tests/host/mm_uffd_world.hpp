// mm_uffd_world.hpp - what the userfaultfd tests (mm_uffd_test.cpp, mm_uffd_model_test.cpp)
// share: one address space over host memory, the size classes of a format, and small helpers
// to make files and VMAs. Sizes come from the format's geometry, never from constants.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "hugepte/env/host.hpp"
#include "hugepte/mm/mm.hpp"
#include "typed_formats.hpp"

namespace mm_uffd {

using namespace hugepte;      // NOLINT(google-build-using-namespace): test helpers
using namespace hugepte::mm;  // NOLINT(google-build-using-namespace): test helpers

// Every format, plus Sv39 with Svrsw60t59b: the riscv mode whose leaves hold a uffd-wp bit.
using Formats = hpt_typed::AllWithFake<RiscvFormat<3, true, true, true>>;

// The largest leaf size of F that is at most `cap` and above the base page (0: none).
template <class F>
constexpr unsigned class_shift(unsigned cap) {
  LeafSizes<F> s = leaf_sizes<F>();
  unsigned best = 0;
  for (unsigned i = 0; i < s.count; ++i)
    if (s.shift[i] <= cap && s.shift[i] > F::page_shift) best = s.shift[i];
  return best;
}
// "1 GiB-class" and "2M-class" hstates (see the brief: x86 1G, arm64-16K CONT-PMD, 64K 512M...).
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
constexpr u64 subs_of(unsigned shift) {
  return bit(shift - F::shift(level_of<F>(shift)));
}

// Whether F's leaves can carry Linux's uffd-wp bit (what UFFDIO_REGISTER_MODE_WP needs).
template <class F>
bool has_uffd_wp() {
  Entry e;
  e.kind = Kind::leaf;
  e.prot = kProtR;
  e.shift = static_cast<u8>(F::shift(0));
  e.accessed = true;
  e.soft.uffd_wp = true;
  return F::encode(e, 0).ok();
}

// Table pages a descent from the root of an empty address space to a slot of `level`
// allocates, per level of the entries they hold: one for each level in [level, root).
template <class F>
std::vector<u64> path_tables(unsigned level) {
  std::vector<u64> v(8, 0);
  for (unsigned l = level; l + 1 < F::levels; ++l) v[l] = 1;
  return v;
}
inline std::vector<u64> per_level(const Counters& c, bool alloc) {
  std::vector<u64> v(8, 0);
  for (unsigned l = 0; l < 8; ++l) v[l] = alloc ? c.pt_alloc[l] : c.pt_free[l];
  return v;
}

// A source address for UFFDIO_COPY: never dereferenced by the host folio memory.
inline const void* const kSrc = reinterpret_cast<const void*>(std::uintptr_t{1} << 20);

template <class F>
struct World {
  using Env = host::EnvFor<F>;
  using M = Mm<F, Env, host::TlbModel, host::Folios>;
  using Mem = typename M::Mem;
  static constexpr unsigned kPage = F::page_shift;
  static constexpr u64 kPageSize = bit(F::page_shift);

  host::Folios folios;
  Mem mem;
  Env env;
  host::TlbModel tlb;
  M mm;
  Err init_err;

  // Folio memory far above the table pages but inside the format's physical address width
  // (an output address the format cannot encode would make every install fail).
  static constexpr u64 kFolioBase = bit(F::pa_bits - 2 < 44 ? F::pa_bits - 2 : 44);

  explicit World(Policy p = Policy::s1, typename M::Options o = {})
      : folios(kFolioBase), mem(folios, 4096, p), mm(mem, env, tlb, o), init_err(mm.init()) {}

  // Where tests put their first VMA: 1 GiB-class aligned, well inside every VA space.
  static u64 base() { return 4 * bit(kH<F> != 0 ? kH<F> : 30); }

  u32 hugetlb_file(unsigned shift, u64 pages, u64 pool) {
    EXPECT_EQ(mem.set_pool(shift, pool), Err::ok);
    Result<u32> f = mem.create_file(FileKind::hugetlb, shift, pages << shift);
    EXPECT_TRUE(f.ok()) << err_name(f.err);
    return f.value;
  }
  u32 shmem_file(u64 pages) {
    Result<u32> f = mem.create_file(FileKind::shmem, kPage, pages << kPage);
    EXPECT_TRUE(f.ok()) << err_name(f.err);
    return f.value;
  }
  Vma* map_file(u64 start, u64 len, u32 file, bool shared = true, u64 pgoff = 0) {
    VmaSpec s;
    s.start = start;
    s.len = len;
    s.shared = shared;
    s.backing = Backing::file;
    s.file = file;
    s.pgoff = pgoff;
    Result<Vma*> v = mm.mmap(s);
    EXPECT_TRUE(v.ok()) << err_name(v.err);
    return v.value;
  }
  Vma* map_anon(u64 start, u64 len) {
    VmaSpec s;
    s.start = start;
    s.len = len;
    Result<Vma*> v = mm.mmap(s);
    EXPECT_TRUE(v.ok()) << err_name(v.err);
    return v.value;
  }

  u32 cached(u32 file, u64 index) const { return mem.cache_lookup(file, index); }
  u64 cached_pa(u32 file, u64 index) const {
    u32 id = mem.cache_lookup(file, index);
    return id == kNoFolio ? ~u64{0} : mem.folio(id).pa;
  }

  using Snapshot = decltype(std::declval<Env&>().snapshot());
  Snapshot snap() const { return env.snapshot(); }

  // uffd-wp markers over [start, start + len) in units of `shift`: by UFFDIO_WRITEPROTECT where
  // the VMA is registered for WP, otherwise written directly (formats without a uffd-wp bit
  // still encode markers; the install rules do not depend on how the marker got there).
  void put_marker(u64 start, u64 len, unsigned shift, u64 flags) {
    for (u64 va = start; va < start + len; va += bit(shift)) {
      Result<HugePte<F>> h =
          shift == kPage ? Result<HugePte<F>>(page_handle(va)) : mm.ops().alloc(va, shift);
      ASSERT_TRUE(h.ok()) << err_name(h.err);
      ASSERT_EQ(mm.ops().set(h.value, pte::make_marker(flags)), Err::ok);
    }
  }
  HugePte<F> page_handle(u64 va) {
    Result<Found> f = find_or_alloc(mm.table(), va, 0);
    EXPECT_TRUE(f.ok());
    return HugePte<F>{f.value.slot, va, 0, static_cast<u8>(kPage)};
  }
};

}  // namespace mm_uffd
