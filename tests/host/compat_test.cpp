// compat_test.cpp - the kernel-named layer (compat/linux.hpp), read as a porter would: the
// debug_vm_pgtable basic properties and the hugetlb helper contract, spelled with Linux's names,
// for every leaf level and huge size of every format. Every value the helpers produce must also
// survive the format's encode -> decode unchanged, so the kernel names never yield an entry the
// hardware format cannot hold.
#include "hugepte/compat/linux.hpp"

#include <gtest/gtest.h>

#include <string>

#include "typed_formats.hpp"
#include "hugepte/env/host.hpp"

namespace {

using namespace hugepte;          // NOLINT(google-build-using-namespace): test file
using namespace hugepte::compat;  // NOLINT(google-build-using-namespace): the point of the file

using hpt_typed::FormatName;

template <class F>
class CompatTest : public ::testing::Test {
 protected:
  using Env = host::EnvFor<F>;
  using Mm = HugePteOps<F, Env, host::TlbModel>;

  void SetUp() override { ASSERT_EQ(pt.init(), Err::ok); }

  // A user read/write leaf at `level`, young and clean, encodable by F.
  static pte_t leaf(unsigned level) {
    Entry e;
    e.kind = Kind::leaf;
    e.addr = 7 * bit(F::shift(level));
    e.shift = static_cast<uint8_t>(F::shift(level));
    e.prot = {true, false, false, true};
    e.accessed = true;
    return pte_mkwrite_novma<F>(e);
  }
  // The value as the format stores it: what a later huge_ptep_get would return.
  static bool encodable(pte_t e, unsigned level) {
    if (e.kind != Kind::none)
      e.shift = static_cast<uint8_t>(F::shift(level));  // the slot implies it
    Result<uint64_t> raw = F::encode(e, level);
    return raw.ok() && F::decode(raw.value, level) == e;
  }

  host::Env<F::page_shift> env;
  host::TlbModel tlb;
  PageTable<F, Env> pt{env};
  Mm mm{pt, tlb};
};

TYPED_TEST_SUITE(CompatTest, hpt_typed::AllWithFake<>, FormatName);

// debug_vm_pgtable pte_basic_tests / pmd_basic_tests / pud_basic_tests, at every leaf level.
TYPED_TEST(CompatTest, BasicHelpersKeepTheirPromisesAtEveryLeafLevel) {
  using F = TypeParam;
  for (unsigned level = 0; level < F::levels; ++level) {
    if (!F::leaf_ok(level)) continue;
    pte_t pte = this->leaf(level);
    ASSERT_TRUE(this->encodable(pte, level)) << "level " << level;
    EXPECT_TRUE(pte_young(pte_mkyoung(pte)));
    EXPECT_FALSE(pte_young(pte_mkold(pte)));
    EXPECT_TRUE(pte_dirty(pte_mkdirty<F>(pte)));
    EXPECT_FALSE(pte_dirty(pte_mkclean<F>(pte)));
    EXPECT_TRUE(pte_write(pte_mkwrite_novma<F>(pte)));
    EXPECT_FALSE(pte_write(pte_wrprotect(pte)));
    // A dirty entry stays dirty when write-protected (x86 SAVED_DIRTY, arm64 PTE_DIRTY).
    pte_t dirty_ro = pte_wrprotect(pte_mkdirty<F>(pte));
    EXPECT_TRUE(pte_dirty(dirty_ro));
    EXPECT_FALSE(pte_write(dirty_ro));
    for (pte_t v : {pte_mkyoung(pte), pte_mkold(pte), pte_mkdirty<F>(pte), pte_mkclean<F>(pte),
                    pte_wrprotect(pte), dirty_ro, pte_mkwrite_novma<F>(dirty_ro),
                    pte_mkclean<F>(pte_mkdirty<F>(pte))})
      EXPECT_TRUE(this->encodable(v, level)) << "level " << level;
    // pmd_/pud_ spellings are the same helpers.
    EXPECT_EQ(pmd_mkyoung(pte), pte_mkyoung(pte));
    EXPECT_EQ(pud_wrprotect(pte), pte_wrprotect(pte));
    // pte_modify keeps the output address, A/D and software bits.
    pte_t m = pte_modify<F>(pte_mkdirty<F>(pte), Prot{true, false, false, true}, false);
    EXPECT_EQ(m.addr, pte.addr);
    EXPECT_TRUE(pte_dirty(m) && pte_young(m));
    EXPECT_FALSE(pte_write(m));
  }
}

// Swap-format helpers: exclusive / soft-dirty / uffd-wp flags set and clear independently, and
// the (type, offset) pair survives them and the format's encoding.
TYPED_TEST(CompatTest, SwapFlagHelpersAreIndependent) {
  using F = TypeParam;
  pte_t swp = swp_entry_to_pte(swp_entry(3, 0x1234));
  EXPECT_TRUE(is_swap_pte(swp));
  EXPECT_FALSE(pte_present(swp));
  pte_t x = pte_swp_mkexclusive(swp);
  EXPECT_TRUE(pte_swp_exclusive(x));
  EXPECT_FALSE(pte_swp_exclusive(pte_swp_clear_exclusive(x)));
  pte_t u = pte_swp_mkuffd_wp(x);
  EXPECT_TRUE(pte_swp_uffd_wp(u) && pte_swp_exclusive(u));
  EXPECT_EQ(swp_type(pte_to_swp_entry(u)), 3u);
  EXPECT_EQ(swp_offset(pte_to_swp_entry(u)), 0x1234u);
  EXPECT_TRUE(this->encodable(x, 0));
  // Formats without the bit refuse it rather than drop it: arm64 has no swap soft-dirty bit,
  // riscv has swap soft-dirty/uffd-wp only with Svrsw60t59b.
  pte_t only_wp = pte_swp_mkuffd_wp(swp);
  only_wp.shift = static_cast<uint8_t>(F::shift(0));
  EXPECT_EQ(this->encodable(u, 0), F::encode(only_wp, 0).ok());
  if (this->encodable(pte_swp_mksoft_dirty(swp), 0)) {
    EXPECT_TRUE(pte_swp_soft_dirty(pte_swp_mksoft_dirty(swp)));
  }
  pte_t marker = make_pte_marker(kMarkerUffdWp);
  EXPECT_TRUE(is_pte_marker(marker));
  EXPECT_TRUE(huge_pte_none_mostly(marker));
  EXPECT_FALSE(huge_pte_none(marker));
  EXPECT_FALSE(huge_pte_none_mostly(swp));
  EXPECT_EQ(pte_marker_get(marker), kMarkerUffdWp);
}

// The hugetlb contract through the kernel names (docs/arch.md §6.1: 94, 95, 98, 101, 104, 106).
TYPED_TEST(CompatTest, HugetlbContractThroughTheKernelNames) {
  using F = TypeParam;
  using Mm = typename TestFixture::Mm;
  constexpr LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = 0; i < sizes.count; ++i) {
    unsigned shift = sizes.shift[i];
    uint64_t sz = bit(shift);
    uint64_t addr = 3 * sz;
    Result<typename Mm::Handle> ptep = huge_pte_alloc(this->mm, this->mm, addr + sz / 2, sz);
    ASSERT_TRUE(ptep.ok()) << "shift " << shift;
    Result<typename Mm::Handle> again = huge_pte_offset(this->mm, addr + sz - 1, sz);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value, ptep.value);  // 104: one slot for every address of the huge page

    pte_t base = this->leaf(sizes.level[i]);
    base.addr = 5 * sz;
    Result<pte_t> huge = arch_make_huge_pte(this->mm, base, shift, 0);
    ASSERT_TRUE(huge.ok());
    ASSERT_EQ(set_huge_pte_at(this->mm, addr, ptep.value, huge.value, sz), Err::ok);
    EXPECT_EQ(set_huge_pte_at(this->mm, addr, ptep.value, huge.value, sz * 2), Err::einval);
    pte_t got = huge_ptep_get(this->mm, addr, ptep.value);  // 94
    EXPECT_EQ(got.addr, huge.value.addr);
    EXPECT_EQ(huge_pte_write(got), huge_pte_write(huge.value));

    ASSERT_EQ(huge_ptep_set_wrprotect(this->mm, addr, ptep.value), Err::ok);  // 98
    EXPECT_FALSE(huge_pte_write(huge_ptep_get(this->mm, addr, ptep.value)));
    EXPECT_EQ(huge_ptep_set_access_flags(this->mm, addr, ptep.value, got, 1), 1);  // 99
    EXPECT_TRUE(huge_pte_dirty(huge_ptep_get(this->mm, addr, ptep.value)));

    pte_t wp = huge_pte_mkuffd_wp(got);  // 101
    EXPECT_TRUE(huge_pte_uffd_wp(wp) && !huge_pte_write(wp));
    EXPECT_FALSE(huge_pte_uffd_wp(huge_pte_clear_uffd_wp(wp)));

    pte_t old = huge_ptep_get_and_clear(this->mm, addr, ptep.value, sz);  // 95
    EXPECT_EQ(old.addr, huge.value.addr);
    EXPECT_TRUE(huge_pte_none(huge_ptep_get(this->mm, addr, ptep.value)));
    ASSERT_EQ(flush_hugetlb_tlb_range(this->mm, addr, addr + sz, hstate{shift}), Err::ok);
    // 106: the last huge page a missing table would hold.
    unsigned level = sizes.level[i];
    EXPECT_EQ(hugetlb_mask_last_page(this->mm, hstate{shift}) + sz,
              bit(F::shift(level) + F::index_bits(level)));
  }
}

}  // namespace
