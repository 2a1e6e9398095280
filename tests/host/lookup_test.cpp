// lookup_test.cpp - lookup(), the decode-free translation hot path, agrees with the entries the
// huge-PTE API wrote, for every leaf size of every format, including both group styles (arm64
// CONT: each sub-entry its own address; riscv NAPOT: every sub-entry the group base).
#include <gtest/gtest.h>

#include <string>

#include "typed_formats.hpp"
#include "hugepte/env/host.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/walk.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file

using hpt_typed::FormatName;

template <class F>
class LookupTest : public ::testing::Test {};
TYPED_TEST_SUITE(LookupTest, hpt_typed::AllWithFake<>, FormatName);

TYPED_TEST(LookupTest, EveryAddressOfEveryLeafSizeLandsAtItsOffset) {
  using F = TypeParam;
  using Env = host::EnvFor<F>;
  host::Env<F::page_shift> env;
  PageTable<F, Env> pt(env);
  ASSERT_EQ(pt.init(), Err::ok);
  NullTlb tlb;
  HugePteOps<F, Env, NullTlb> ops(pt, tlb);
  constexpr LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = 0; i < sizes.count; ++i) {
    unsigned shift = sizes.shift[i];
    uint64_t va = 2 * bit(shift), pa = 3 * bit(shift);
    if (pa >= bit(F::pa_bits)) pa = bit(shift);
    auto h = ops.alloc(va, shift);
    ASSERT_TRUE(h.ok());
    Entry e;
    e.kind = Kind::leaf;
    e.addr = pa;
    e.prot = {true, false, false, false};
    e.accessed = true;
    auto huge = HugePteOps<F, Env, NullTlb>::make_huge(e, shift);
    ASSERT_TRUE(huge.ok());
    ASSERT_EQ(ops.set(h.value, huge.value), Err::ok) << "shift " << shift;
    // First byte, last byte, and a byte in every sub-entry of a group.
    for (uint64_t off :
         {uint64_t{0}, bit(shift) - 1, bit(shift) / 2 + 8, bit(shift) - bit(F::page_shift) + 16}) {
      Result<Lookup> l = lookup(pt, va + off);
      ASSERT_TRUE(l.ok()) << "shift " << shift << " off " << off;
      EXPECT_EQ(l.value.pa, pa + off) << "shift " << shift << " off " << off;
      EXPECT_EQ(l.value.level, sizes.level[i]);
    }
    EXPECT_EQ(lookup(pt, va + bit(shift)).err, Err::enoent);
    ops.clear(h.value);
    EXPECT_EQ(lookup(pt, va).err, Err::enoent);
  }
  EXPECT_EQ(lookup(pt, bit(F::va_bits)).err, Err::erange);  // just above the VA space
}

}  // namespace
