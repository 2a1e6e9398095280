// range_test.cpp - map / unmap / protect / split / collapse / translate (range.hpp), typed over
// the fake exemplar and every real format: scenarios in the style of Hafnium's mm_test.cc (names
// read as the spec), bad input, ENOMEM injected at every allocation point, and
// break-before-make asserted from the event log.
//
// Sizes are picked generically from the format: "2M" is the smallest leaf level above pages,
// "1G" the largest leaf level below the root (the root's own if there is none), groups are the
// format's contiguous sizes.
#include "hugepte/range.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fake_format.hpp"
#include "hugepte/env/host.hpp"
#include "hugepte/huge_pte.hpp"

#include "typed_formats.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file

using Formats = hpt_typed::AllWithFake<>;
using hpt_typed::FormatName;

template <class F>
class RangeTest : public ::testing::Test {
 protected:
  using Env = host::EnvFor<F>;
  using Table = PageTable<F, Env>;
  using Ops = RangeOps<F, Env, host::TlbModel>;
  using Huge = HugePteOps<F, Env, host::TlbModel>;
  static constexpr LeafSizes<F> kSizes = leaf_sizes<F>();
  static constexpr unsigned kPage = F::page_shift;

  void SetUp() override { ASSERT_EQ(pt.init(), Err::ok); }

  // --- attributes every leaf level of the format can encode ---
  static bool encodable(const Attrs& a) {
    for (unsigned i = 0; i < kSizes.count; ++i) {
      unsigned l = kSizes.level[i];
      Entry e;
      e.kind = Kind::leaf;
      e.shift = static_cast<uint8_t>(F::shift(l));
      e.cont_shift = static_cast<uint8_t>(kSizes.cont[i] ? kSizes.shift[i] : 0);
      e.prot = a.prot;
      e.writable = a.writable;
      e.mem = a.mem;
      e.global = a.global;
      e.accessed = a.accessed;
      e.dirty = a.dirty;
      e.soft = a.soft;
      if (!F::encode(e, l)) return false;
    }
    return true;
  }
  static Attrs rw() {
    return Attrs{{true, true, false, true}, true, MemType::normal, false, true, true, {}};
  }
  static Attrs ro() {
    return Attrs{{true, false, false, true}, false, MemType::normal, false, true, true, {}};
  }
  static Attrs rx() {
    return Attrs{{true, false, true, false}, false, MemType::normal, false, true, true, {}};
  }

  // --- sizes and places ---
  // The smallest leaf level above pages ("2M"), the largest below the root ("1G").
  static unsigned small_level() {
    for (unsigned l = 1; l < F::levels; ++l)
      if (F::leaf_ok(l)) return l;
    return 0;
  }
  static unsigned big_level() {
    for (unsigned l = F::levels - 1; l-- > 1;)
      if (F::leaf_ok(l)) return l;
    return F::leaf_ok(F::levels - 1) ? F::levels - 1 : 0;
  }
  static uint64_t va_for(unsigned shift, uint64_t k = 3) { return k * bit(shift); }
  static uint64_t pa_for(unsigned shift, uint64_t k = 5) {
    uint64_t pa = k * bit(shift);
    return pa < bit(F::pa_bits) ? pa : bit(shift);
  }

  // --- observing the tables ---
  Result<Translated> tr(uint64_t va) const { return ops.translate(va); }

  // Table pages reachable from the root (root included), and whether any non-root one is empty.
  uint64_t reachable(bool* empty_table = nullptr) const {
    uint64_t n = 1;
    walk(pt, 0, bit(F::va_bits - 1), WalkFlags{.table_pre = true},
         [&](const VisitCtx& c, Visit) -> Step {
           ++n;
           if (empty_table) {
             uint64_t* t = pt.child(c.old, c.level);
             bool any = false;
             for (uint64_t i = 0; i < bit(F::index_bits(c.level - 1)); ++i)
               any = any || F::decode(Table::load(t + i), c.level - 1).kind != Kind::none;
             if (!any) *empty_table = true;
           }
           return Step::next();
         });
    return n;
  }

  void expect_balanced() {
    bool empty = false;
    EXPECT_EQ(env.live(), reachable(&empty)) << "table pages leaked or lost";
    EXPECT_FALSE(empty) << "an empty table stayed linked";
  }

  void expect_not_stale() {
    auto stale = tlb.stale(pt);
    EXPECT_TRUE(stale.empty()) << stale.front().what << ": " << stale.front().why;
  }

  // What the hardware would have cached for [va, va + len): the leaves and table entries of its
  // first, middle and last few pages (all of a big range would cost the model more than it
  // finds: invalidations are by range).
  void prime(uint64_t va, uint64_t len) {
    const uint64_t span = 4 * bit(F::page_shift);
    if (len <= 3 * span) {
      ASSERT_EQ(tlb.prime(pt, va, va + len), Err::ok);
      return;
    }
    for (uint64_t at : {va, va + len / 2, va + len - span})
      ASSERT_EQ(tlb.prime(pt, at, at + span), Err::ok);
  }

  // The raw slot of the entry at `level` for va (the slot a table descent ends at).
  uint64_t* slot(uint64_t va, unsigned level) const {
    Result<Found> f = find(pt, va, level);
    return f ? f.value.slot : nullptr;
  }

  // Break-before-make in the log since it was cleared, for the live slots `slots` going to
  // `next`: each changed valid slot written 0, then a flush that reaches every one of them
  // (`reaches`), then the new values; no new value before that flush. "" or what is wrong.
  template <class Reaches>
  std::string bbm_problem(const std::vector<uint64_t*>& slots, const std::vector<uint64_t>& next,
                          Reaches reaches) const {
    const auto& ev = log.events();
    std::size_t fi = ev.size();
    for (std::size_t k = 0; k < ev.size(); ++k)
      if (ev[k].type == host::Event::Type::flush && reaches(ev[k].flush)) {
        fi = k;
        break;
      }
    if (fi == ev.size()) return "no invalidation reaches the entries";
    for (std::size_t i = 0; i < slots.size(); ++i) {
      bool broke = false, made = next[i] == 0;
      for (std::size_t k = 0; k < ev.size(); ++k) {
        if (ev[k].type != host::Event::Type::write || ev[k].slot != slots[i]) continue;
        if (k < fi && ev[k].value == 0) broke = true;
        if (k < fi && ev[k].value != 0)
          return "slot " + std::to_string(i) + " written valid before the flush";
        if (k > fi && ev[k].value == next[i]) made = true;
      }
      if (!broke) return "slot " + std::to_string(i) + " not made invalid before the flush";
      if (!made) return "slot " + std::to_string(i) + " not written after the flush";
    }
    return "";
  }

  // No slot of `slots` was ever written invalid, and an invalidation reaching them came after
  // their last write.
  template <class Reaches>
  std::string in_place_problem(const std::vector<uint64_t*>& slots, Reaches reaches) const {
    const auto& ev = log.events();
    std::size_t last_write = 0;
    bool wrote = false;
    for (std::size_t k = 0; k < ev.size(); ++k) {
      if (ev[k].type != host::Event::Type::write) continue;
      for (uint64_t* s : slots) {
        if (ev[k].slot != s) continue;
        if (ev[k].value == 0) return "a live slot went through invalid";
        last_write = k;
        wrote = true;
      }
    }
    if (!wrote) return "nothing was written";
    for (std::size_t k = last_write + 1; k < ev.size(); ++k)
      if (ev[k].type == host::Event::Type::flush && reaches(ev[k].flush)) return "";
    return "no invalidation after the change";
  }

  std::optional<Entry> swap_entry(unsigned level) const {
    Entry e;
    e.kind = Kind::swap;
    e.shift = static_cast<uint8_t>(F::shift(level));
    e.swp.type = 2;
    e.swp.offset = 0x4242;
    Result<uint64_t> raw = F::encode(e, level);
    if (!raw) return std::nullopt;
    return F::decode(raw.value, level);
  }

  host::Log log;
  Env env{Env::kDefaultBase, &log};
  host::TlbModel tlb{&log};
  Table pt{env};
  Ops ops{pt, tlb};
  Huge huge{pt, tlb};
};

TYPED_TEST_SUITE(RangeTest, Formats, FormatName);

// --- basic mapping -----------------------------------------------------------------------------

TYPED_TEST(RangeTest, EveryLeafSizeMapsTranslatesAndUnmapsWithoutLeavingTables) {
  using F = TypeParam;
  const Attrs a = this->rw();
  ASSERT_TRUE(this->encodable(a));
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    unsigned s = TestFixture::kSizes.shift[i];
    SCOPED_TRACE(::testing::Message() << "size 2^" << s);
    uint64_t va = this->va_for(s), pa = this->pa_for(s);
    ASSERT_EQ(this->ops.map(va, pa, bit(s), a), Err::ok);
    for (uint64_t off : {uint64_t{0}, bit(s) / 2, bit(s) - bit(F::page_shift)}) {
      auto t = this->tr(va + off);
      ASSERT_TRUE(t.ok()) << err_name(t.err);
      EXPECT_EQ(t.value.pa, pa + off);
      EXPECT_EQ(t.value.shift, s);
      EXPECT_EQ(t.value.va, va);
      EXPECT_EQ(t.value.entry.addr, pa);
      EXPECT_EQ(t.value.entry.prot, a.prot);
      EXPECT_EQ(t.value.entry.writable, a.writable);
      EXPECT_EQ(t.value.entry.cont_shift, TestFixture::kSizes.cont[i] ? s : 0u);
    }
    EXPECT_EQ(this->tr(va - bit(F::page_shift)).err, Err::enoent);
    EXPECT_EQ(this->tr(va + bit(s)).err, Err::enoent);
    this->expect_balanced();
    ASSERT_EQ(this->ops.unmap(va, bit(s)), Err::ok);
    EXPECT_EQ(this->tr(va).err, Err::enoent);
    EXPECT_EQ(this->env.live(), 1u) << "only the root is left";
  }
}

TYPED_TEST(RangeTest, MapChoosesTheLargestLeafThatIsAlignedAndFits) {
  using F = TypeParam;
  for (unsigned l = 1; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    SCOPED_TRACE(::testing::Message() << "level " << l);
    unsigned s = F::shift(l);
    uint64_t va = this->va_for(s), pa = this->pa_for(s);
    uint64_t len = bit(s) + bit(F::page_shift);
    ASSERT_EQ(this->ops.map(va, pa, len, this->rw()), Err::ok);
    auto first = this->tr(va);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first.value.shift, s) << "one leaf of the level's size";
    auto tail = this->tr(va + bit(s));
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(tail.value.shift, F::page_shift) << "the page left over";
    EXPECT_EQ(tail.value.pa, pa + bit(s));
    ASSERT_EQ(this->ops.unmap(va, len), Err::ok);
    EXPECT_EQ(this->env.live(), 1u);
  }
}

TYPED_TEST(RangeTest, MappingAtAPaUnalignedToTheLeafGetsSmallerLeaves) {
  using F = TypeParam;
  unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  uint64_t va = this->va_for(s), pa = this->pa_for(s) + bit(F::page_shift);
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw()), Err::ok);
  for (uint64_t off = 0; off < bit(s); off += bit(s) / 8) {
    auto t = this->tr(va + off);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.value.pa, pa + off);
    EXPECT_LT(t.value.shift, s);
  }
  this->expect_balanced();
}

TYPED_TEST(RangeTest, MapA2MLeafAtAnUnalignedPaIsEinvalWhenOnly2MLeavesAreAllowed) {
  using F = TypeParam;
  unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  auto before = this->env.snapshot();
  EXPECT_EQ(this->ops.map(va, pa + bit(F::page_shift), bit(s), this->rw(), s, MapMode::replace, s),
            Err::einval);
  EXPECT_EQ(this->ops.map(va + bit(F::page_shift), pa, bit(s), this->rw(), s, MapMode::replace, s),
            Err::einval);
  EXPECT_EQ(this->env.snapshot(), before);
  // Aligned, the same request maps exactly one leaf of that size.
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw(), s, MapMode::replace, s), Err::ok);
  EXPECT_EQ(this->tr(va).value.shift, s);
}

TYPED_TEST(RangeTest, MaxShiftBelowALeafSizeKeepsMapFromUsingIt) {
  using F = TypeParam;
  unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw(), s - 1), Err::ok);
  EXPECT_LT(this->tr(va).value.shift, s);
  EXPECT_EQ(this->tr(va + bit(s) - 1).value.pa, pa + bit(s) - 1);
}

TYPED_TEST(RangeTest, MapChoosesContiguousGroupsWhereAligned) {
  using F = TypeParam;
  bool any = false;
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    if (!TestFixture::kSizes.cont[i]) continue;
    any = true;
    unsigned c = TestFixture::kSizes.shift[i], l = TestFixture::kSizes.level[i], s = F::shift(l);
    SCOPED_TRACE(::testing::Message() << "group 2^" << c << " at level " << l);
    uint64_t va = this->va_for(c), pa = this->pa_for(c);
    uint64_t len = bit(c) + bit(s);
    ASSERT_EQ(this->ops.map(va, pa, len, this->rw()), Err::ok);
    auto g = this->tr(va + bit(c) - 1);
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(g.value.shift, c);
    EXPECT_EQ(g.value.entry.cont_shift, c);
    EXPECT_EQ(g.value.pa, pa + bit(c) - 1);
    EXPECT_EQ(this->tr(va + bit(c)).value.shift, s) << "the entry left over is plain";
    // Sub-entry k is what the format's group_entry makes of sub-entry 0.
    uint64_t* first = this->slot(va, l);
    ASSERT_NE(first, nullptr);
    for (uint64_t k = 0; k < bit(c - s); ++k)
      EXPECT_EQ(TestFixture::Table::load(first + k),
                F::group_entry(*first, l, static_cast<unsigned>(k)));
    ASSERT_EQ(this->ops.unmap(va, len), Err::ok);
    // Off by one entry of the level, the group does not fit anywhere.
    ASSERT_EQ(this->ops.map(va, pa + bit(s), bit(c), this->rw()), Err::ok);
    EXPECT_EQ(this->tr(va).value.shift, s);
    EXPECT_EQ(this->tr(va).value.entry.cont_shift, 0u);
    ASSERT_EQ(this->ops.unmap(va, bit(c)), Err::ok);
    EXPECT_EQ(this->env.live(), 1u);
  }
  if (!any) GTEST_SKIP() << "no contiguous sizes in this format";
}

TYPED_TEST(RangeTest, TranslateGivesEveryPageOfAGroupItsOwnOutputAddress) {
  using F = TypeParam;
  bool any = false;
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    if (!TestFixture::kSizes.cont[i]) continue;
    any = true;
    unsigned c = TestFixture::kSizes.shift[i], s = F::shift(TestFixture::kSizes.level[i]);
    uint64_t va = this->va_for(c, 7), pa = this->pa_for(c, 9);
    ASSERT_EQ(this->ops.map(va, pa, bit(c), this->ro()), Err::ok);
    for (uint64_t k = 0; k < bit(c - s); ++k) {
      auto t = this->tr(va + (k << s) + 8);
      ASSERT_TRUE(t.ok());
      EXPECT_EQ(t.value.pa, pa + (k << s) + 8) << "sub-entry " << k;
      EXPECT_EQ(t.value.entry.addr, pa);
      EXPECT_EQ(t.value.va, va);
    }
  }
  if (!any) GTEST_SKIP() << "no contiguous sizes in this format";
}

// --- replacing and splitting -------------------------------------------------------------------

TYPED_TEST(RangeTest, MappingOverPartOfABlockSplitsIt) {
  using F = TypeParam;
  for (unsigned l = 1; l < F::levels; ++l) {
    if (!F::leaf_ok(l) || F::shift(l) > 40) continue;
    SCOPED_TRACE(::testing::Message() << "block level " << l);
    unsigned s = F::shift(l);
    uint64_t va = this->va_for(s), pa = this->pa_for(s);
    ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw()), Err::ok);
    uint64_t live = this->env.live();
    this->prime(va, bit(s));
    uint64_t mid = va + bit(s) / 2, other = this->pa_for(F::page_shift, 3);
    ASSERT_EQ(this->ops.map(mid, other, bit(F::page_shift), this->ro()), Err::ok);
    EXPECT_EQ(this->env.live(), live + l) << "one new table per level below the block";
    auto t = this->tr(mid);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.value.pa, other);
    EXPECT_EQ(t.value.shift, F::page_shift);
    EXPECT_EQ(t.value.entry.writable, false);
    for (uint64_t off : {uint64_t{0}, bit(s) / 2 - bit(F::page_shift),
                         bit(s) / 2 + bit(F::page_shift), bit(s) - 1}) {
      auto rest = this->tr(va + off);
      ASSERT_TRUE(rest.ok()) << "offset 0x" << std::hex << off;
      EXPECT_EQ(rest.value.pa, pa + off) << "the rest of the block stays mapped as before";
      EXPECT_TRUE(rest.value.entry.writable);
      EXPECT_TRUE(rest.value.entry.dirty);
      EXPECT_LT(rest.value.shift, s);
    }
    this->expect_not_stale();
    this->expect_balanced();
    ASSERT_EQ(this->ops.unmap(va, bit(s)), Err::ok);
    EXPECT_EQ(this->env.live(), 1u);
  }
}

TYPED_TEST(RangeTest, MapWithNoReplaceOverAnythingMappedIsEexistAndChangesNothing) {
  using F = TypeParam;
  unsigned s = F::shift(this->small_level());
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw()), Err::ok);
  auto before = this->env.snapshot();
  EXPECT_EQ(
      this->ops.map(va + bit(s) / 2, pa, bit(F::page_shift), this->rw(), 64, MapMode::no_replace),
      Err::eexist);
  EXPECT_EQ(this->ops.map(va - bit(s), pa, 2 * bit(s), this->rw(), 64, MapMode::no_replace),
            Err::eexist);
  EXPECT_EQ(this->env.snapshot(), before);
  // Next to it, nothing is in the way; an emptied table is no obstacle either.
  EXPECT_EQ(this->ops.map(va + bit(s), pa, bit(s), this->rw(), 64, MapMode::no_replace), Err::ok);
  ASSERT_EQ(this->ops.map(va + 2 * bit(s), pa, bit(F::page_shift), this->rw()), Err::ok);
  ASSERT_EQ(this->ops.unmap(va + 2 * bit(s), bit(F::page_shift)), Err::ok);
  EXPECT_EQ(this->ops.map(va + 2 * bit(s), pa, bit(s), this->rw(), 64, MapMode::no_replace),
            Err::ok);
  this->expect_balanced();
}

TYPED_TEST(RangeTest, MappingABlockOverATableFreesTheTable) {
  using F = TypeParam;
  unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  ASSERT_EQ(this->ops.map(va, pa, bit(F::page_shift), this->rw()), Err::ok);
  ASSERT_EQ(this->ops.map(va + bit(s) - bit(F::page_shift), pa, bit(F::page_shift), this->rw()),
            Err::ok);
  uint64_t live = this->env.live();
  this->prime(va, bit(s));
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->ro()), Err::ok);
  EXPECT_EQ(this->env.live(), live - l);
  EXPECT_EQ(this->tr(va).value.shift, s);
  this->expect_not_stale();
  this->expect_balanced();
}

// --- unmapping ---------------------------------------------------------------------------------

TYPED_TEST(RangeTest, UnmapFreesEveryTableItEmptied) {
  using F = TypeParam;
  uint64_t va = this->va_for(F::shift(F::levels - 1) > 40 ? 40 : F::shift(F::levels - 1), 1);
  ASSERT_EQ(this->ops.map(va, 0, 4 * bit(F::page_shift), this->rw()), Err::ok);
  EXPECT_EQ(this->env.live(), F::levels);
  this->prime(va, 4 * bit(F::page_shift));
  ASSERT_EQ(this->ops.unmap(va, 2 * bit(F::page_shift)), Err::ok);
  EXPECT_EQ(this->env.live(), F::levels) << "half of it is still mapped";
  ASSERT_EQ(this->ops.unmap(va, 4 * bit(F::page_shift)), Err::ok);
  EXPECT_EQ(this->env.live(), 1u);
  EXPECT_EQ(this->env.snapshot().size(), 1u);
  this->expect_not_stale();
  EXPECT_TRUE(this->tlb.walk_entries().empty()) << "walk caches of freed tables were dropped";
  // A range with nothing in it is fine.
  EXPECT_EQ(this->ops.unmap(va, bit(F::page_shift)), Err::ok);
}

TYPED_TEST(RangeTest, UnmappingPartOfAGroupBreaksItIntoPlainLeaves) {
  using F = TypeParam;
  bool any = false;
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    if (!TestFixture::kSizes.cont[i]) continue;
    any = true;
    unsigned c = TestFixture::kSizes.shift[i], l = TestFixture::kSizes.level[i], s = F::shift(l);
    SCOPED_TRACE(::testing::Message() << "group 2^" << c);
    uint64_t va = this->va_for(c), pa = this->pa_for(c);
    ASSERT_EQ(this->ops.map(va, pa, bit(c), this->rw()), Err::ok);
    this->prime(va, bit(c));
    uint64_t hole = va + bit(c) - bit(s);
    ASSERT_EQ(this->ops.unmap(hole, bit(s)), Err::ok);
    EXPECT_EQ(this->tr(hole).err, Err::enoent);
    for (uint64_t k = 0; k + 1 < bit(c - s); ++k) {
      auto t = this->tr(va + (k << s));
      ASSERT_TRUE(t.ok());
      EXPECT_EQ(t.value.shift, s);
      EXPECT_EQ(t.value.entry.cont_shift, 0u);
      EXPECT_EQ(t.value.pa, pa + (k << s));
      EXPECT_TRUE(t.value.entry.dirty) << "A/D of the group carried to every piece";
    }
    this->expect_not_stale();
    ASSERT_EQ(this->ops.unmap(va, bit(c)), Err::ok);
    EXPECT_EQ(this->env.live(), 1u);
  }
  if (!any) GTEST_SKIP() << "no contiguous sizes in this format";
}

TYPED_TEST(RangeTest, BreakingAGroupGathersAccessedAndDirtyIntoEveryPiece) {
  using F = TypeParam;
  using Table = typename TestFixture::Table;
  Attrs clean = this->ro();
  clean.accessed = clean.dirty = false;
  ASSERT_TRUE(this->encodable(clean));
  bool any = false;
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    if (!TestFixture::kSizes.cont[i]) continue;
    any = true;
    unsigned c = TestFixture::kSizes.shift[i], l = TestFixture::kSizes.level[i], s = F::shift(l);
    SCOPED_TRACE(::testing::Message() << "group 2^" << c);
    uint64_t va = this->va_for(c), pa = this->pa_for(c);
    ASSERT_EQ(this->ops.map(va, pa, bit(c), clean), Err::ok);
    // The hardware sets A and D in the one sub-entry it used (the last).
    uint64_t* last = this->slot(va, l) + (bit(c - s) - 1);
    Entry d = F::decode(Table::load(last), l);
    d.accessed = d.dirty = true;
    d.addr = align_down(d.addr, c);
    Result<uint64_t> raw = F::encode(d, l);
    ASSERT_TRUE(raw.ok());
    this->pt.store(last, l, F::group_entry(raw.value, l, static_cast<unsigned>(bit(c - s) - 1)));
    EXPECT_TRUE(this->tr(va).value.entry.dirty) << "translate gathers it";
    ASSERT_EQ(this->ops.unmap(va, bit(s)), Err::ok);
    for (uint64_t k = 1; k < bit(c - s); ++k) {
      Entry e = F::decode(Table::load(this->slot(va, l) + k), l);
      EXPECT_EQ(e.cont_shift, 0u);
      EXPECT_TRUE(e.accessed && e.dirty) << "piece " << k;
    }
    ASSERT_EQ(this->ops.unmap(va, bit(c)), Err::ok);
  }
  if (!any) GTEST_SKIP() << "no contiguous sizes in this format";
}

TYPED_TEST(RangeTest, PunchA4KHoleInA1GLeafThenCollapseBack) {
  using F = TypeParam;
  unsigned l = this->big_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  const Attrs a = this->rw();
  ASSERT_EQ(this->ops.map(va, pa, bit(s), a), Err::ok);
  uint64_t* top = this->slot(va, l);
  ASSERT_NE(top, nullptr);
  const uint64_t original = TestFixture::Table::load(top);
  const uint64_t live = this->env.live();
  this->prime(va, bit(s));

  uint64_t hole = va + bit(s) / 2 + 3 * bit(F::page_shift);
  ASSERT_EQ(this->ops.unmap(hole, bit(F::page_shift)), Err::ok);
  EXPECT_EQ(this->tr(hole).err, Err::enoent);
  EXPECT_EQ(this->env.live(), live + l) << "a table per level from the leaf down to pages";
  for (uint64_t off :
       {uint64_t{0}, hole - va - bit(F::page_shift), hole - va + bit(F::page_shift), bit(s) - 1})
    EXPECT_EQ(this->tr(va + off).value.pa, pa + off) << "offset 0x" << std::hex << off;
  this->expect_not_stale();
  this->expect_balanced();

  // Not collapsible while the hole is there.
  auto holed = this->env.snapshot();
  EXPECT_EQ(this->ops.collapse(va, s), Err::einval);
  EXPECT_EQ(this->env.snapshot(), holed);

  // Fill the hole with the same page and attributes, then collapse back to one leaf.
  ASSERT_EQ(this->ops.map(hole, pa + (hole - va), bit(F::page_shift), a), Err::ok);
  this->prime(va, bit(s));
  ASSERT_EQ(this->ops.collapse(va + 5 * bit(F::page_shift), s), Err::ok);
  EXPECT_EQ(TestFixture::Table::load(top), original) << "the very entry we started from";
  EXPECT_EQ(this->env.live(), live) << "every table below it freed";
  EXPECT_EQ(this->tr(hole).value.pa, pa + (hole - va));
  EXPECT_EQ(this->tr(hole).value.shift, s);
  this->expect_not_stale();
  this->expect_balanced();
  EXPECT_EQ(this->ops.collapse(va, s), Err::ok)
      << "collapsing what is one leaf already does nothing";
}

// --- protect -------------------------------------------------------------------------------------

TYPED_TEST(RangeTest, ProtectChangesPermissionsAndKeepsAddressAndAccessFlags) {
  using F = TypeParam;
  unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw()), Err::ok);
  this->prime(va, bit(s));
  const Attrs r = this->ro();
  ASSERT_EQ(this->ops.protect(va, bit(s), r.prot, r.writable), Err::ok);
  auto t = this->tr(va);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value.shift, s) << "a whole leaf changes in place";
  EXPECT_EQ(t.value.entry.prot, r.prot);
  EXPECT_FALSE(t.value.entry.writable);
  EXPECT_EQ(t.value.entry.addr, pa);
  EXPECT_TRUE(t.value.entry.accessed);
  EXPECT_TRUE(t.value.entry.dirty);
  this->expect_not_stale();

  // One page back to writable: the leaf is split, the rest keeps the new permissions.
  const Attrs w = this->rw();
  uint64_t page = va + bit(s) / 4;
  this->prime(va, bit(s));
  ASSERT_EQ(this->ops.protect(page, bit(F::page_shift), w.prot, w.writable), Err::ok);
  EXPECT_TRUE(this->tr(page).value.entry.writable);
  EXPECT_EQ(this->tr(page).value.pa, pa + bit(s) / 4);
  EXPECT_FALSE(this->tr(page + bit(F::page_shift)).value.entry.writable);
  EXPECT_FALSE(this->tr(va).value.entry.writable);
  this->expect_not_stale();
  this->expect_balanced();

  // Permissions a leaf already has need no split.
  uint64_t live = this->env.live();
  ASSERT_EQ(this->ops.protect(va + bit(s) / 2, bit(F::page_shift), r.prot, r.writable), Err::ok);
  EXPECT_EQ(this->env.live(), live);
}

TYPED_TEST(RangeTest, ProtectMakesACleanPageWritableInTheFormatsOwnSpelling) {
  using F = TypeParam;
  Attrs clean = this->ro();
  clean.accessed = clean.dirty = false;
  ASSERT_TRUE(this->encodable(clean));
  unsigned s = F::shift(this->small_level());
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  ASSERT_EQ(this->ops.map(va, pa, bit(s), clean), Err::ok);
  const Attrs w = this->rw();
  ASSERT_EQ(this->ops.protect(va, bit(s), w.prot, true), Err::ok);
  auto t = this->tr(va);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t.value.entry.writable);
  EXPECT_FALSE(t.value.entry.dirty) << "protect does not dirty a page";
  EXPECT_EQ(t.value.shift, s);
  // Asking again changes nothing, and needs no split for part of the leaf.
  auto before = this->env.snapshot();
  ASSERT_EQ(this->ops.protect(va + bit(F::page_shift), bit(F::page_shift), w.prot, true), Err::ok);
  EXPECT_EQ(this->env.snapshot(), before);
}

TYPED_TEST(RangeTest, ProtectSkipsHolesAndNonPresentEntries) {
  using F = TypeParam;
  auto swp = this->swap_entry(0);
  ASSERT_TRUE(swp);
  uint64_t va = this->va_for(F::shift(1)), p = bit(F::page_shift);
  ASSERT_EQ(this->ops.map(va, 0, p, this->rw()), Err::ok);
  auto h = this->huge.alloc(va + 2 * p, F::page_shift);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(this->huge.set(h.value, *swp), Err::ok);
  uint64_t swap_raw = TestFixture::Table::load(h.value.slot);
  const Attrs r = this->ro();
  ASSERT_EQ(this->ops.protect(va, 4 * p, r.prot, r.writable), Err::ok);
  EXPECT_FALSE(this->tr(va).value.entry.writable);
  EXPECT_EQ(this->tr(va + p).err, Err::enoent);
  EXPECT_EQ(TestFixture::Table::load(h.value.slot), swap_raw);
}

TYPED_TEST(RangeTest, ProtectOfAWholeGroupKeepsItAGroup) {
  bool any = false;
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    if (!TestFixture::kSizes.cont[i]) continue;
    any = true;
    unsigned c = TestFixture::kSizes.shift[i];
    uint64_t va = this->va_for(c), pa = this->pa_for(c);
    ASSERT_EQ(this->ops.map(va, pa, bit(c), this->rw()), Err::ok);
    this->prime(va, bit(c));
    const Attrs r = this->ro();
    ASSERT_EQ(this->ops.protect(va, bit(c), r.prot, r.writable), Err::ok);
    auto t = this->tr(va + bit(c) - 1);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.value.shift, c);
    EXPECT_FALSE(t.value.entry.writable);
    EXPECT_EQ(t.value.pa, pa + bit(c) - 1);
    this->expect_not_stale();
    ASSERT_EQ(this->ops.unmap(va, bit(c)), Err::ok);
  }
  if (!any) GTEST_SKIP() << "no contiguous sizes in this format";
}

// --- split and collapse --------------------------------------------------------------------------

TYPED_TEST(RangeTest, SplitPreservesEveryAttributeDownToEachSmallerSize) {
  Attrs a = this->rx();
  a.global = true;
  a.soft.special = true;
  if (!this->encodable(a)) a = this->rx();
  ASSERT_TRUE(this->encodable(a));
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    unsigned s = TestFixture::kSizes.shift[i];
    if (s > 40) continue;
    for (unsigned j = 0; j < i; ++j) {
      unsigned t = TestFixture::kSizes.shift[j];
      if (t >= s) continue;
      SCOPED_TRACE(::testing::Message() << "2^" << s << " -> 2^" << t);
      uint64_t va = this->va_for(s), pa = this->pa_for(s);
      ASSERT_EQ(this->ops.map(va, pa, bit(s), a), Err::ok);
      Entry before = this->tr(va).value.entry;
      this->prime(va, bit(s));
      uint64_t at = va + bit(s) / 2 + bit(t);
      ASSERT_EQ(this->ops.split(at, t), Err::ok);
      auto got = this->tr(at);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(got.value.shift, t);
      EXPECT_EQ(got.value.pa, pa + (at - va));
      Entry e = got.value.entry, want = before;
      want.addr = align_down(pa + (at - va), t);
      want.shift = e.shift;
      want.cont_shift = e.cont_shift;
      want.keep = e.keep;
      EXPECT_EQ(e, want) << "every attribute kept";
      for (uint64_t off : {uint64_t{0}, bit(s) / 2, bit(s) - 1})
        EXPECT_EQ(this->tr(va + off).value.pa, pa + off);
      this->expect_not_stale();
      this->expect_balanced();
      ASSERT_EQ(this->ops.unmap(va, bit(s)), Err::ok);
      ASSERT_EQ(this->env.live(), 1u);
    }
  }
}

TYPED_TEST(RangeTest, SplitRefusesWhatIsNotALargerPresentLeaf) {
  using F = TypeParam;
  unsigned s = F::shift(this->small_level());
  uint64_t va = this->va_for(s);
  EXPECT_EQ(this->ops.split(va, F::page_shift), Err::einval) << "nothing mapped";
  ASSERT_EQ(this->ops.map(va, this->pa_for(s), bit(s), this->rw()), Err::ok);
  auto before = this->env.snapshot();
  EXPECT_EQ(this->ops.split(va, s), Err::einval) << "not smaller";
  EXPECT_EQ(this->ops.split(va, F::page_shift + 1), Err::einval) << "not a leaf size";
  EXPECT_EQ(this->ops.split(va, 63), Err::einval);
  EXPECT_EQ(this->ops.split(bit(63) + 5, F::page_shift), Err::erange);
  EXPECT_EQ(this->env.snapshot(), before);
}

TYPED_TEST(RangeTest, CollapseRefusesHolesForeignAttributesGapsAndNonPresentEntries) {
  using F = TypeParam;
  unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  const uint64_t p = bit(F::page_shift);
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  auto refused = [&](Err want, const char* why) {
    auto before = this->env.snapshot();
    EXPECT_EQ(this->ops.collapse(va, s), want) << why;
    EXPECT_EQ(this->env.snapshot(), before) << why;
  };
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw(), F::page_shift), Err::ok);
  ASSERT_EQ(this->ops.unmap(va + 2 * p, p), Err::ok);
  refused(Err::einval, "a hole");
  ASSERT_EQ(this->ops.map(va + 2 * p, pa + 2 * p, p, this->ro()), Err::ok);
  refused(Err::einval, "other attributes");
  ASSERT_EQ(this->ops.map(va + 2 * p, pa + 9 * p, p, this->rw()), Err::ok);
  refused(Err::einval, "not contiguous");
  if (auto swp = this->swap_entry(0)) {
    auto h = this->huge.alloc(va + 2 * p, F::page_shift);
    ASSERT_TRUE(h.ok());
    ASSERT_EQ(this->huge.set(h.value, *swp), Err::ok);
    refused(Err::ebusy, "a swap entry");
  }
  ASSERT_EQ(this->ops.map(va + 2 * p, pa + 2 * p, p, this->rw()), Err::ok);
  ASSERT_EQ(this->ops.map(va, pa + p, p, this->rw()), Err::ok);
  ASSERT_EQ(this->ops.map(va + p, pa + 2 * p, bit(s) - p, this->rw(), F::page_shift), Err::ok);
  refused(Err::einval, "contiguous, but from a misaligned output address");
  EXPECT_EQ(this->ops.collapse(va, F::page_shift + 1), Err::einval) << "not a leaf size";
  EXPECT_EQ(this->ops.collapse(bit(63), s), Err::erange);
}

TYPED_TEST(RangeTest, CollapseOrsAccessedAndDirtyOfTheLeavesItJoins) {
  using F = TypeParam;
  unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  Attrs clean = this->ro();
  clean.accessed = clean.dirty = false;
  Attrs dirty = clean;
  dirty.accessed = dirty.dirty = true;
  ASSERT_TRUE(this->encodable(clean) && this->encodable(dirty));
  uint64_t va = this->va_for(s), pa = this->pa_for(s), p = bit(F::page_shift);
  ASSERT_EQ(this->ops.map(va, pa, bit(s), clean, F::page_shift), Err::ok);
  ASSERT_EQ(this->ops.map(va + 7 * p, pa + 7 * p, p, dirty), Err::ok);
  EXPECT_FALSE(this->tr(va).value.entry.dirty);
  ASSERT_EQ(this->ops.collapse(va, s), Err::ok);
  auto t = this->tr(va);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value.shift, s);
  EXPECT_TRUE(t.value.entry.accessed);
  EXPECT_TRUE(t.value.entry.dirty);
  EXPECT_FALSE(t.value.entry.writable);
  this->expect_balanced();
}

TYPED_TEST(RangeTest, CollapseIntoAGroupJoinsPlainLeavesAndTables) {
  using F = TypeParam;
  bool any = false;
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    if (!TestFixture::kSizes.cont[i]) continue;
    any = true;
    unsigned c = TestFixture::kSizes.shift[i], l = TestFixture::kSizes.level[i], s = F::shift(l);
    SCOPED_TRACE(::testing::Message() << "group 2^" << c);
    uint64_t va = this->va_for(c), pa = this->pa_for(c);
    ASSERT_EQ(this->ops.map(va, pa, bit(c), this->rw(), s), Err::ok);  // plain leaves only
    if (l > 0) {
      ASSERT_EQ(this->ops.split(va + bit(s), F::page_shift), Err::ok);  // and a table
    }
    this->prime(va, bit(c));
    ASSERT_EQ(this->ops.collapse(va + bit(c) - 1, c), Err::ok);
    auto t = this->tr(va + bit(s) + 5);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.value.shift, c);
    EXPECT_EQ(t.value.pa, pa + bit(s) + 5);
    EXPECT_EQ(this->env.live(), F::levels - 1 - l + 1);
    this->expect_not_stale();
    this->expect_balanced();
    ASSERT_EQ(this->ops.unmap(va, bit(c)), Err::ok);
  }
  if (!any) GTEST_SKIP() << "no contiguous sizes in this format";
}

// --- non-present huge entries ------------------------------------------------------------------

TYPED_TEST(RangeTest, SplittingANonPresentHugeEntryIsEbusyAndChangesNothing) {
  using F = TypeParam;
  unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  auto swp = this->swap_entry(l);
  if (!swp) GTEST_SKIP() << "no swap entries at level " << l;
  unsigned s = F::shift(l);
  uint64_t va = this->va_for(s);
  auto h = this->huge.alloc(va, s);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(this->huge.set(h.value, *swp), Err::ok);
  auto before = this->env.snapshot();
  EXPECT_EQ(this->ops.map(va + bit(F::page_shift), 0, bit(F::page_shift), this->rw()), Err::ebusy);
  EXPECT_EQ(this->ops.unmap(va, bit(F::page_shift)), Err::ebusy);
  EXPECT_EQ(this->ops.split(va, F::page_shift), Err::einval) << "not a present leaf";
  EXPECT_EQ(this->env.snapshot(), before);
  // Covered whole, it is simply replaced.
  ASSERT_EQ(this->ops.map(va, this->pa_for(s), bit(s), this->rw()), Err::ok);
  EXPECT_EQ(this->tr(va).value.shift, s);
  ASSERT_EQ(this->huge.set(h.value, *swp), Err::ok);
  ASSERT_EQ(this->ops.unmap(va, bit(s)), Err::ok);
  EXPECT_EQ(this->tr(va).value.entry.kind, Kind::none);
  EXPECT_EQ(this->env.live(), 1u) << "cleared, and its table freed with it";
}

// --- bad input ---------------------------------------------------------------------------------

TYPED_TEST(RangeTest, BadInputIsANamedErrorAndChangesNothing) {
  using F = TypeParam;
  const uint64_t p = bit(F::page_shift);
  uint64_t va = this->va_for(F::shift(this->small_level()));
  ASSERT_EQ(this->ops.map(va, 0, 4 * p, this->rw()), Err::ok);
  auto before = this->env.snapshot();
  const Attrs a = this->rw();
  Attrs unencodable = a;
  unencodable.prot = {false, true, false, false};  // write without read: no format has it
  uint64_t noncanonical = F::canonical(bit(F::va_bits - 1)) ? bit(F::va_bits) : bit(F::va_bits - 1);
  ASSERT_FALSE(F::canonical(noncanonical));
  struct Case {
    const char* what;
    Err got, want;
  };
  const Case cases[] = {
      {"empty map", this->ops.map(va, 0, 0, a), Err::einval},
      {"va not page aligned", this->ops.map(va + 1, 0, p, a), Err::einval},
      {"pa not page aligned", this->ops.map(va, 8, p, a), Err::einval},
      {"len not page aligned", this->ops.map(va, 0, p + 8, a), Err::einval},
      {"pa beyond the format", this->ops.map(va, bit(F::pa_bits), p, a), Err::einval},
      {"pa + len beyond the format", this->ops.map(va, bit(F::pa_bits) - p, 2 * p, a), Err::einval},
      {"attributes the format cannot encode", this->ops.map(va, 0, p, unencodable), Err::einval},
      {"max_shift below a page", this->ops.map(va, 0, p, a, F::page_shift - 1), Err::einval},
      {"non-canonical va", this->ops.map(noncanonical, 0, p, a), Err::erange},
      {"range leaving the VA space", this->ops.map(noncanonical - p, 0, 2 * p, a), Err::erange},
      {"wrapping range", this->ops.map(~uint64_t{0} - p + 1, 0, 2 * p, a), Err::erange},
      {"empty unmap", this->ops.unmap(va, 0), Err::einval},
      {"unaligned unmap", this->ops.unmap(va + 8, p), Err::einval},
      {"non-canonical unmap", this->ops.unmap(noncanonical, p), Err::erange},
      {"empty protect", this->ops.protect(va, 0, kProtR, false), Err::einval},
      {"non-canonical protect", this->ops.protect(noncanonical, p, kProtR, false), Err::erange},
      {"protect to what the format cannot encode",
       this->ops.protect(va, p, unencodable.prot, unencodable.writable), Err::einval},
      {"translate non-canonical", this->ops.translate(noncanonical).err, Err::erange},
  };
  for (const Case& c : cases) EXPECT_EQ(c.got, c.want) << c.what;
  EXPECT_EQ(this->env.snapshot(), before);
}

TYPED_TEST(RangeTest, TheLastPageOfTheAddressSpaceMapsAndUnmaps) {
  using F = TypeParam;
  const uint64_t p = bit(F::page_shift);
  uint64_t top = F::canonical(~uint64_t{0}) ? ~uint64_t{0} - p + 1 : bit(F::va_bits) - p;
  ASSERT_EQ(this->ops.map(top, 0, p, this->rw()), Err::ok);
  auto t = this->tr(top + 7);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value.pa, 7u);
  this->prime(top, p);
  ASSERT_EQ(this->ops.unmap(top, p), Err::ok);
  EXPECT_EQ(this->env.live(), 1u);
  this->expect_not_stale();
}

// --- ENOMEM at every allocation point ----------------------------------------------------------

TYPED_TEST(RangeTest, EveryOperationIsAllOrNothingWhenATableAllocationFails) {
  using F = TypeParam;
  const uint64_t p = bit(F::page_shift);
  unsigned l = this->big_level();
  if (l == 0) GTEST_SKIP() << "no leaf above pages";
  unsigned s = F::shift(l);
  uint64_t va = this->va_for(s), pa = this->pa_for(s);
  uint64_t mid = va + bit(s) / 2;
  ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw()), Err::ok);
  const Attrs r = this->ro();
  struct Op {
    const char* what;
    unsigned allocations;
    std::function<Err()> run;
  };
  uint64_t fresh = va + 2 * bit(s);
  const unsigned fresh_tables = l;  // missing tables from the block's level down to pages
  std::vector<Op> cases = {
      {"map a page where no table is", fresh_tables,
       [&] { return this->ops.map(fresh, 0, p, this->rw()); }},
      {"map a page inside the block", l, [&] { return this->ops.map(mid, 0, p, this->ro()); }},
      {"unmap a page of the block", l, [&] { return this->ops.unmap(mid, p); }},
      {"protect a page of the block", l,
       [&] { return this->ops.protect(mid, p, r.prot, r.writable); }},
      {"split the block down to a page", l, [&] { return this->ops.split(mid, F::page_shift); }},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    this->prime(va, 3 * bit(s));
    unsigned failures = 0;
    for (uint64_t nth = 1;; ++nth) {
      auto before = this->env.snapshot();
      uint64_t live = this->env.live();
      this->env.fail_nth_alloc(nth);
      Err e = c.run();
      this->env.fail_nth_alloc(0);
      if (e == Err::ok) break;
      ++failures;
      ASSERT_EQ(e, Err::enomem) << "allocation " << nth;
      EXPECT_EQ(this->env.snapshot(), before) << "allocation " << nth;
      EXPECT_EQ(this->env.live(), live) << "allocation " << nth;
      ASSERT_LT(nth, 16u);
    }
    EXPECT_EQ(failures, c.allocations) << "one allocation point per table the operation needs";
    this->expect_not_stale();
    this->expect_balanced();
    // Back to the block for the next case.
    ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw()), Err::ok);
    ASSERT_EQ(this->ops.unmap(fresh, bit(s)), Err::ok);
  }
}

// --- break-before-make ---------------------------------------------------------------------------

// For each live change that may need it (a block becoming a table, a group broken, a table
// collapsed into a block), the log shows invalid -> invalidate -> new exactly where the format's
// needs_bbm says so (and for every collapse of a table), and an in-place store followed by its
// invalidation everywhere else.
TYPED_TEST(RangeTest, BreakBeforeMakeOrderIsThatOfTheFormat) {
  using F = TypeParam;
  using Table = typename TestFixture::Table;
  const uint64_t p = bit(F::page_shift);
  unsigned checked = 0;
  auto check = [&](const char* what, std::vector<uint64_t*> slots,
                   const std::vector<uint64_t>& before, unsigned level, uint64_t va, uint64_t len,
                   bool breaks_anyway = false) {
    SCOPED_TRACE(what);
    std::vector<uint64_t> next;
    bool bbm = false;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      next.push_back(Table::load(slots[i]));
      auto valid = [&](uint64_t raw) {
        return F::is_leaf(raw, level) || (level > 0 && F::is_table(raw, level));
      };
      bbm = bbm || (valid(before[i]) && valid(next[i]) && next[i] != before[i] &&
                    F::needs_bbm(before[i], next[i], level));
    }
    auto reaches = [&](const TlbFlush& f) {
      for (uint64_t a = va; a < va + len; a += bit(F::shift(level)))
        if ((f.level != kAnyLevel && f.level != level) || !flush_hits(f, a, F::shift(level)))
          return false;
      return true;
    };
    if (bbm || breaks_anyway) {
      EXPECT_EQ(this->bbm_problem(slots, next, reaches), "");
    } else {
      EXPECT_EQ(this->in_place_problem(slots, reaches), "");
    }
    if (std::string(F::arch) == "x86_64") {
      EXPECT_FALSE(bbm) << "x86 never needs break-before-make";
    }
    this->expect_not_stale();
    ++checked;
  };

  unsigned l = this->small_level();
  if (l != 0) {
    unsigned s = F::shift(l);
    uint64_t va = this->va_for(s), pa = this->pa_for(s);
    ASSERT_EQ(this->ops.map(va, pa, bit(s), this->rw()), Err::ok);
    uint64_t* sl = this->slot(va, l);
    uint64_t block = Table::load(sl);
    this->prime(va, bit(s));
    this->log.clear();
    ASSERT_EQ(this->ops.split(va + p, F::page_shift), Err::ok);
    check("a live block becomes a table", {sl}, {block}, l, va, bit(s));

    uint64_t table = Table::load(sl);
    this->prime(va, bit(s));
    this->log.clear();
    ASSERT_EQ(this->ops.collapse(va, s), Err::ok);
    // Collapse breaks whatever the format requires, as Linux's pmdp_collapse_flush does.
    check("a live table becomes a block", {sl}, {table}, l, va, bit(s), true);
    ASSERT_EQ(this->ops.unmap(va, bit(s)), Err::ok);
  }
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    if (!TestFixture::kSizes.cont[i]) continue;
    unsigned c = TestFixture::kSizes.shift[i], gl = TestFixture::kSizes.level[i], s = F::shift(gl);
    uint64_t va = this->va_for(c), pa = this->pa_for(c);
    ASSERT_EQ(this->ops.map(va, pa, bit(c), this->rw()), Err::ok);
    std::vector<uint64_t*> slots;
    std::vector<uint64_t> before;
    for (uint64_t k = 0; k < bit(c - s); ++k) {
      slots.push_back(this->slot(va, gl) + k);
      before.push_back(Table::load(slots.back()));
    }
    this->prime(va, bit(c));
    this->log.clear();
    ASSERT_EQ(this->ops.protect(va + bit(c) - bit(s), bit(s), this->ro().prot, false), Err::ok);
    check("a live group is broken", slots, before, gl, va, bit(c));
    for (uint64_t k = 0; k < slots.size(); ++k) before[k] = Table::load(slots[k]);
    this->prime(va, bit(c));
    this->log.clear();
    ASSERT_EQ(this->ops.protect(va, bit(c), this->rw().prot, true), Err::ok);
    ASSERT_EQ(this->ops.collapse(va, c), Err::ok);
    this->log.clear();
    for (uint64_t k = 0; k < slots.size(); ++k) before[k] = Table::load(slots[k]);
    ASSERT_EQ(this->ops.map(va, pa + bit(c), bit(c), this->rw()), Err::ok);
    check("a live group is moved", slots, before, gl, va, bit(c));
    ASSERT_EQ(this->ops.unmap(va, bit(c)), Err::ok);
  }
  if (checked == 0) GTEST_SKIP() << "no block or group sizes";
}

// A sink whose first invalidation lets a "CPU" write through the translation it still holds.
struct LateWriter {
  std::function<void()> before_first_flush;
  void flush(const TlbFlush&) {
    if (before_first_flush) std::exchange(before_first_flush, nullptr)();
  }
  void flush_all() {}
  void publish() {}
};

// A CPU may write through a translation it cached until the flush after the break reaches it;
// collapse gathers A/D only after that flush (as khugepaged's collapse_huge_page reads the PTEs
// after pmdp_collapse_flush), so a dirty bit written then is in the new leaf.
TYPED_TEST(RangeTest, CollapseKeepsADirtyBitWrittenThroughACachedTranslationBeforeTheFlush) {
  using F = TypeParam;
  using Table = typename TestFixture::Table;
  const unsigned l = this->small_level();
  if (l == 0) GTEST_SKIP() << "no block size";
  const unsigned s = F::shift(l);
  const uint64_t p = bit(F::page_shift), va = this->va_for(s), pa = this->pa_for(s);
  Attrs clean = this->rw();
  clean.dirty = false;
  if (!this->encodable(clean)) clean.prot.write = false;  // dirt kept in the write permission
  ASSERT_TRUE(this->encodable(clean));
  ASSERT_EQ(this->ops.map(va, pa, bit(s), clean), Err::ok);
  ASSERT_EQ(this->ops.split(va, F::page_shift), Err::ok);
  uint64_t* leaf = this->slot(va + 3 * p, 0);
  ASSERT_FALSE(F::decode(Table::load(leaf), 0).dirty);

  LateWriter sink;
  sink.before_first_flush = [&] {
    Entry e = F::decode(Table::load(leaf), 0);  // the table is unlinked, not yet freed
    e.dirty = true;
    e.prot.write = true;
    Result<uint64_t> raw = F::encode(e, 0);
    ASSERT_TRUE(raw.ok());
    this->pt.store(leaf, 0, raw.value);
  };
  RangeOps<F, typename TestFixture::Env, LateWriter> ops(this->pt, sink);
  ASSERT_EQ(ops.collapse(va, s), Err::ok);
  EXPECT_EQ(sink.before_first_flush, nullptr) << "collapse invalidated nothing";
  Entry block = F::decode(Table::load(this->slot(va, l)), l);
  EXPECT_EQ(block.kind, Kind::leaf);
  EXPECT_TRUE(block.dirty);
  EXPECT_EQ(block.addr, pa);
}

}  // namespace
