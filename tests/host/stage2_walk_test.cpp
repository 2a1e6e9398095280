// stage2_walk_test.cpp - the stage-2 formats (EPT, NPT, arm64 stage 2, riscv G-stage) on the one
// walker, commit path and range operations every stage-1 format uses: roots of several pages,
// every leaf size, split and collapse, protect, ENOMEM, KVM's locked entries, and
// break-before-make exactly where the format asks for it (docs/design.md, "Stage 2").
#include <gtest/gtest.h>

#include <vector>

#include "hugepte/env/host.hpp"
#include "hugepte/range.hpp"
#include "typed_formats.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file

template <class F>
class Stage2Walk : public ::testing::Test {
 protected:
  using Env = host::EnvFor<F>;
  using Table = PageTable<F, Env>;
  using Ops = RangeOps<F, Env, host::TlbModel>;
  static constexpr unsigned kRoot = F::levels - 1;
  static constexpr LeafSizes<F> kSizes = leaf_sizes<F>();

  void SetUp() override { ASSERT_EQ(pt.init(), Err::ok); }

  // RAM as KVM maps it: read, write, execute (for the guest's user mode too), clean.
  static Attrs ram(bool exec = true) {
    Attrs a;
    a.prot = Prot{true, true, exec, false};
    a.writable = true;
    a.accessed = true;
    a.s2.user_exec = exec;
    return a;
  }
  // The largest leaf level below the root (the root's own when there is none), as KVM's
  // largest block below a 1G-class size.
  static unsigned big_level() {
    for (unsigned l = kRoot; l-- > 1;)
      if (F::leaf_ok(l)) return l;
    return F::leaf_ok(kRoot) ? kRoot : 0;
  }
  static uint64_t top_of_ipa(unsigned shift) { return bit(F::va_bits) - bit(shift); }

  void expect_not_stale() {
    auto stale = tlb.stale(pt);
    EXPECT_TRUE(stale.empty()) << stale.front().what << ": " << stale.front().why;
  }

  host::Log log;
  Env env{Env::kDefaultBase, &log};
  Table pt{env};
  host::TlbModel tlb{&log};
  Ops ops{pt, tlb};
};

TYPED_TEST_SUITE(Stage2Walk, hpt_typed::Stage2, hpt_typed::FormatName);

// Arm ARM stage-2 concatenated start level, riscv hgatp: the root is one allocation of 2^root_order pages, aligned to its
// size (VTTBR_EL2.BADDR, hgatp.PPN[1:0] = 0), and its last entry maps the top of the IPA space.
TYPED_TEST(Stage2Walk, TheRootIsOneAlignedAllocationCoveringTheWholeIpaSpace) {
  using F = TypeParam;
  constexpr unsigned order = root_order<F>();
  EXPECT_EQ(this->env.allocs(TestFixture::kRoot), 1u);
  EXPECT_TRUE(aligned(this->pt.root(), F::page_shift + order));
  const uint64_t top = this->top_of_ipa(F::page_shift);
  ASSERT_EQ(this->ops.map(top, 0x7000 << (F::page_shift - 12), bit(F::page_shift), this->ram()),
            Err::ok);
  ASSERT_EQ(this->ops.map(0, 0, bit(F::page_shift), this->ram()), Err::ok);
  Result<Found> f = find(this->pt, top, TestFixture::kRoot);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.value.slot - this->pt.root_table(), int64_t(bit(F::index_bits(TestFixture::kRoot)) - 1));
  auto t = this->ops.translate(top + 8);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value.pa, (uint64_t{0x7000} << (F::page_shift - 12)) + 8);
  EXPECT_EQ(this->ops.translate(bit(F::va_bits)).err, Err::erange);  // beyond the IPA size
  this->pt.destroy();
  EXPECT_EQ(this->env.live(), 0u);
}

TYPED_TEST(Stage2Walk, EveryLeafSizeMapsTranslatesAndUnmapsWithoutLeavingTables) {
  using F = TypeParam;
  const Attrs a = this->ram();
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    const unsigned s = TestFixture::kSizes.shift[i];
    if (s >= F::va_bits) continue;
    SCOPED_TRACE(::testing::Message() << "size 2^" << s);
    const uint64_t va = bit(s), pa = 3 * bit(s) < bit(F::pa_bits) ? 3 * bit(s) : bit(s);
    ASSERT_EQ(this->ops.map(va, pa, bit(s), a), Err::ok);
    for (uint64_t off : {uint64_t{0}, bit(s) - bit(F::page_shift)}) {
      auto t = this->ops.translate(va + off);
      ASSERT_TRUE(t.ok()) << err_name(t.err);
      EXPECT_EQ(t.value.pa, pa + off);
      EXPECT_EQ(t.value.shift, s);
      EXPECT_EQ(t.value.entry.prot, a.prot);
      EXPECT_EQ(t.value.entry.s2.user_exec, true);
      EXPECT_EQ(t.value.entry.cont_shift, TestFixture::kSizes.cont[i] ? s : 0u);
    }
    ASSERT_EQ(this->tlb.prime(this->pt, va, va + bit(F::page_shift)), Err::ok);
    ASSERT_EQ(this->ops.unmap(va, bit(s)), Err::ok);
    EXPECT_EQ(this->env.live(), 1u) << "only the root stays";
    this->expect_not_stale();
  }
}

// KVM: kvm_pgtable_stage2_split / tdp_mmu_split_huge_page, then recovery to the block
// (eager split, kvm_mmu_recover_huge_pages): the translation of every page is the same before and after.
TYPED_TEST(Stage2Walk, SplitToPagesAndCollapseBackKeepEveryTranslation) {
  using F = TypeParam;
  const unsigned l = this->big_level();
  if (l == 0) GTEST_SKIP() << "no block level";
  const unsigned s = F::shift(l);
  const uint64_t va = bit(s), pa = bit(s) < bit(F::pa_bits) / 4 ? 2 * bit(s) : 0;
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->ram()), Err::ok);
  ASSERT_EQ(this->tlb.prime(this->pt, va, va + bit(F::page_shift)), Err::ok);
  ASSERT_EQ(this->ops.split(va + bit(s) / 2, F::page_shift), Err::ok);
  this->expect_not_stale();
  for (uint64_t off : {uint64_t{0}, bit(s) / 2, bit(s) - bit(F::page_shift)}) {
    auto t = this->ops.translate(va + off);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.value.pa, pa + off);
  }
  EXPECT_EQ(this->ops.translate(va + bit(s) / 2).value.shift,
            leaf_sizes<F>().shift[0]);  // the smallest logical leaf (a group where there is one)
  ASSERT_EQ(this->ops.collapse(va, s), Err::ok);
  auto t = this->ops.translate(va + bit(s) - 1);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value.shift, s);
  EXPECT_EQ(t.value.pa, pa + bit(s) - 1);
  this->expect_not_stale();
}

// A format without a user/supervisor execute split keeps user_exec equal to exec through
// protect (KVM's permission changes: kvm_pgtable_stage2_relax_perms, write-protection).
TYPED_TEST(Stage2Walk, ProtectKeepsUserExecuteWithExecute) {
  using F = TypeParam;
  const uint64_t page = bit(F::page_shift);
  ASSERT_EQ(this->ops.map(0, page, 4 * page, this->ram(true)), Err::ok);
  ASSERT_EQ(this->ops.protect(0, 4 * page, Prot{true, false, false, false}, false), Err::ok);
  auto t = this->ops.translate(page);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t.value.entry.prot.exec);
  EXPECT_FALSE(t.value.entry.s2.user_exec);
  EXPECT_FALSE(t.value.entry.writable);
  ASSERT_EQ(this->ops.protect(0, 4 * page, Prot{true, true, true, false}, true), Err::ok);
  t = this->ops.translate(page);
  EXPECT_TRUE(t.value.entry.prot.exec && t.value.entry.s2.user_exec && t.value.entry.writable);
}

// range.hpp's contract on every stage-2 format: ENOMEM at any allocation changes nothing.
TYPED_TEST(Stage2Walk, EnomemAtEveryAllocationLeavesTheTablesUnchanged) {
  using F = TypeParam;
  const uint64_t page = bit(F::page_shift);
  ASSERT_EQ(this->ops.map(0, 0, page, this->ram()), Err::ok);
  const uint64_t va = this->top_of_ipa(F::page_shift + 1);
  for (uint64_t n = 1;; ++n) {
    ASSERT_LT(n, 16u);
    const auto before = this->env.snapshot();
    this->env.fail_nth_alloc(n);
    const Err e = this->ops.map(va, page, 2 * page, this->ram());
    this->env.fail_nth_alloc(0);
    if (e == Err::ok) break;
    ASSERT_EQ(e, Err::enomem);
    EXPECT_EQ(this->env.snapshot(), before) << "allocation " << n;
  }
  EXPECT_EQ(this->ops.translate(va + page).value.pa, 2 * page);
}

// KVM_INVALID_PTE_LOCKED / FROZEN_SPTE: a locked entry (KVM's frozen SPTE, arm64's locked PTE) belongs to
// a walker in the middle of a break-before-make; every range operation backs off with EAGAIN and
// changes nothing.
TYPED_TEST(Stage2Walk, ALockedEntryMakesEveryOperationRetry) {
  using F = TypeParam;
  Entry locked;
  locked.kind = Kind::locked;
  Result<uint64_t> lv = F::encode(locked, 0);
  if (!lv) GTEST_SKIP() << F::mode << " has no locked value (updates under the write lock)";
  const uint64_t page = bit(F::page_shift);
  ASSERT_EQ(this->ops.map(0, 0, 4 * page, this->ram()), Err::ok);
  Result<Found> f = find(this->pt, page, 0);
  ASSERT_TRUE(f.ok() && f.value.level == 0);
  this->pt.store(f.value.slot, 0, lv.value);
  const auto before = this->env.snapshot();
  EXPECT_EQ(this->ops.map(0, 0, 4 * page, this->ram(false)), Err::eagain);
  EXPECT_EQ(this->ops.unmap(0, 4 * page), Err::eagain);
  EXPECT_EQ(this->ops.protect(0, 4 * page, Prot{true, false, false, false}, false), Err::eagain);
  EXPECT_EQ(this->env.snapshot(), before);
  EXPECT_EQ(this->ops.unmap(2 * page, 2 * page), Err::ok);  // the rest of the table is free
}

// Moving a live leaf to another frame: arm64 stage 2 breaks before it makes (invalid, flush,
// new); x86 and riscv replace in place and flush after (Arm ARM break-before-make; docs/design.md's format notes).
TYPED_TEST(Stage2Walk, ANewFrameForALiveLeafBreaksBeforeMakeOnlyWhereTheFormatSays) {
  using F = TypeParam;
  const uint64_t page = bit(F::page_shift);
  ASSERT_EQ(this->ops.map(0, page, page, this->ram()), Err::ok);
  Result<Found> f = find(this->pt, 0, 0);
  ASSERT_TRUE(f.ok());
  const uint64_t old = f.value.raw;
  this->log.clear();
  ASSERT_EQ(this->ops.map(0, 2 * page, page, this->ram()), Err::ok);
  const uint64_t now = TestFixture::Table::load(f.value.slot);
  std::vector<uint64_t> writes;
  std::size_t first_flush = this->log.size();
  for (std::size_t k = 0; k < this->log.size(); ++k) {
    const auto& ev = this->log[k];
    if (ev.type == host::Event::Type::write && ev.slot == f.value.slot) writes.push_back(ev.value);
    if (ev.type == host::Event::Type::flush && first_flush == this->log.size()) first_flush = k;
  }
  ASSERT_LT(first_flush, this->log.size()) << "no invalidation for a live change";
  if (F::needs_bbm(old, now, 0)) {
    ASSERT_EQ(writes.size(), 2u);
    EXPECT_EQ(writes[0], 0u);
    EXPECT_EQ(writes[1], now);
    EXPECT_EQ(this->log[first_flush - 1].type, host::Event::Type::write);
  } else {
    ASSERT_EQ(writes.size(), 1u);
    EXPECT_EQ(writes[0], now);
  }
}

}  // namespace
