// walk_test.cpp - the table primitives, the visitor walk, the cursor and the host TLB model,
// typed over the fake exemplar format and every real format.
//
// Walker invariants 130-139 of docs/arch.md §6.3, adapted: every entry of [start, end) is visited
// once at its deepest level, in ascending order; TABLE_PRE/POST bracket their children; a visitor
// may replace what it visits and the walker follows; stop and errors end the walk; ranges outside
// the VA space are ERANGE. The cursor visits exactly what the LEAF walk visits, without
// re-walking from the root.
#include "hugepte/walk.hpp"

#include <gtest/gtest.h>

#include <cinttypes>
#include <random>
#include <set>
#include <vector>

#include "fake_format.hpp"
#include "hugepte/env/host.hpp"
#include "hugepte/table.hpp"

#include "typed_formats.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file

using Formats = hpt_typed::AllWithFake<>;
using hpt_typed::FormatName;

template <class F>
Entry leaf_entry(uint64_t pa, unsigned level) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = pa;
  e.shift = static_cast<uint8_t>(F::shift(level));
  e.prot = {true, true, false, true};
  e.writable = true;
  e.accessed = true;
  e.dirty = true;
  return e;
}

template <class F>
Entry swap_entry(uint64_t offset, unsigned level) {
  Entry e;
  e.kind = Kind::swap;
  e.shift = static_cast<uint8_t>(F::shift(level));
  e.swp.type = 3;
  e.swp.offset = offset;
  return e;
}

template <class F>
class WalkTest : public ::testing::Test {
 protected:
  using Env = host::EnvFor<F>;
  using Table = PageTable<F, Env>;
  static constexpr unsigned kRoot = F::levels - 1;
  static constexpr uint64_t kPage = bit(F::page_shift);

  void SetUp() override { ASSERT_EQ(pt.init(), Err::ok); }

  // A region four level-1 entries wide around the boundary between two root entries (two
  // level-1 tables when the root is level 1), so walks cross tables at every level.
  static uint64_t middle() { return kRoot >= 2 ? bit(F::shift(kRoot)) : 4 * bit(F::shift(1)); }
  static uint64_t lo() { return middle() - 2 * bit(F::shift(1)); }
  static uint64_t hi() { return middle() + 2 * bit(F::shift(1)); }

  static uint64_t pa_for(uint64_t va) { return va & (bit(F::pa_bits < 40 ? F::pa_bits : 40) - 1); }

  // Installs a leaf at `level` for va, allocating tables; false if something is in the way.
  bool put_leaf(uint64_t va, unsigned level) {
    if (!F::leaf_ok(level)) return false;
    Result<Found> f = find_or_alloc(pt, va, level);
    if (!f || (level > 0 && F::is_table(f.value.raw, level))) return false;
    Result<uint64_t> raw =
        F::encode(leaf_entry<F>(pa_for(align_down(va, F::shift(level))), level), level);
    EXPECT_TRUE(raw.ok()) << "level " << level;
    if (!raw) return false;
    pt.store(f.value.slot, level, raw.value);
    return true;
  }

  bool put_swap(uint64_t va, unsigned level, uint64_t offset) {
    Result<uint64_t> raw = F::encode(swap_entry<F>(offset, level), level);
    if (!raw) return false;  // not every level holds swap entries in every format
    Result<Found> f = find_or_alloc(pt, va, level);
    if (!f || (level > 0 && F::is_table(f.value.raw, level))) return false;
    pt.store(f.value.slot, level, raw.value);
    return true;
  }

  // A seeded random tree over [lo, hi): leaves at levels 0..2, swap entries, bare tables.
  void build_random(std::mt19937_64& rng, int n) {
    unsigned max_level = kRoot < 2 ? kRoot : 2;
    for (int i = 0; i < n; ++i) {
      unsigned level = static_cast<unsigned>(rng() % (max_level + 1));
      uint64_t span = (hi() - lo()) >> F::shift(level);
      if (span == 0) continue;
      uint64_t va = lo() + ((rng() % span) << F::shift(level));
      switch (rng() % 5) {
        case 0:
        case 1:
        case 2:
          put_leaf(va, level);
          break;
        case 3:
          put_swap(va, level, 0x100 + static_cast<uint64_t>(i));
          break;
        default:
          (void)find_or_alloc(pt, va, level);
          break;
      }
    }
  }

  struct Seen {
    uint64_t* slot;
    uint64_t old;
    unsigned level;
    uint64_t addr;
    uint64_t end;
    bool operator==(const Seen&) const = default;
  };

  std::vector<Seen> leaf_visits(uint64_t start, uint64_t end, Err* err = nullptr) {
    std::vector<Seen> v;
    Err e = walk(pt, start, end, WalkFlags{.leaf = true}, [&](const VisitCtx& c, Visit what) {
      EXPECT_EQ(what, Visit::leaf);
      v.push_back({c.slot, c.old, c.level, c.addr, c.end});
      return Step::next();
    });
    if (err)
      *err = e;
    else
      EXPECT_EQ(e, Err::ok);
    return v;
  }

  std::vector<Seen> cursor_visits(uint64_t start, uint64_t end) {
    std::vector<Seen> v;
    Cursor<F, Env> c(pt, start, end);
    EXPECT_EQ(c.err(), Err::ok);
    for (; !c.done(); c.next()) v.push_back({c.slot(), c.old(), c.level(), c.addr(), c.end()});
    return v;
  }

  // Invariant 130/138: the leaf visits of [start, end) tile it exactly, in ascending order, and
  // each is the deepest entry for its addresses.
  void expect_tiles(const std::vector<Seen>& v, uint64_t start, uint64_t end) {
    ASSERT_FALSE(v.empty());
    EXPECT_EQ(v.front().addr, start);
    EXPECT_EQ(v.back().end, end);
    std::set<uint64_t*> slots;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const Seen& s = v[i];
      if (i > 0) {
        EXPECT_EQ(s.addr, v[i - 1].end) << "visit " << i;
      }
      if (s.end != 0) {
        EXPECT_LT(s.addr, s.end) << "visit " << i;
      }
      EXPECT_TRUE(slots.insert(s.slot).second) << "slot visited twice, visit " << i;
      Result<Found> f = find(pt, s.addr, 0);
      ASSERT_TRUE(f.ok());
      EXPECT_EQ(f.value.slot, s.slot) << "visit " << i << " at 0x" << std::hex << s.addr;
      EXPECT_EQ(f.value.level, s.level) << "visit " << i;
      EXPECT_FALSE(s.level > 0 && F::is_table(s.old, s.level)) << "a table visited as a leaf";
      EXPECT_EQ(align_down(s.end - 1, F::shift(s.level)), align_down(s.addr, F::shift(s.level)))
          << "a visit crosses its entry";
    }
  }

  host::Log log;
  Env env{Env::kDefaultBase, &log};
  Table pt{env};
};

TYPED_TEST_SUITE(WalkTest, Formats, FormatName);

// --- the table primitives and the host env ---------------------------------------------------

TYPED_TEST(WalkTest, TablePagesAreSimulatedPhysicalAddressesNotPointers) {
  using F = TypeParam;
  uint64_t root = this->pt.root();
  EXPECT_GE(root, TestFixture::Env::kDefaultBase);
  EXPECT_TRUE(aligned(root, F::page_shift));
  EXPECT_NE(reinterpret_cast<uint64_t>(this->pt.root_table()), root);
  EXPECT_EQ(this->env.live(F::levels - 1), 1u);
  EXPECT_EQ(this->env.live(), 1u);
}

TYPED_TEST(WalkTest, EveryEntryWriteIsLoggedWithTheValueItReplaced) {
  using F = TypeParam;
  this->log.clear();
  uint64_t* slot = this->pt.root_table() + 3;
  this->pt.store(slot, F::levels - 1, 0x1000);
  uint64_t old = this->pt.exchange(slot, F::levels - 1, 0x2000);
  uint64_t expected = 0x2000;
  EXPECT_TRUE(this->pt.cmpxchg(slot, F::levels - 1, expected, 0));
  expected = 0x5000;
  EXPECT_FALSE(this->pt.cmpxchg(slot, F::levels - 1, expected, 0x6000));
  EXPECT_EQ(expected, 0u);  // the current value comes back on failure
  EXPECT_EQ(old, 0x1000u);
  ASSERT_EQ(this->log.size(), 3u);  // the failed compare-exchange wrote nothing
  EXPECT_EQ(this->log[0].old, 0u);
  EXPECT_EQ(this->log[0].value, 0x1000u);
  EXPECT_EQ(this->log[1].old, 0x1000u);
  EXPECT_EQ(this->log[2].old, 0x2000u);
  EXPECT_EQ(this->log[2].value, 0u);
  EXPECT_EQ(this->log[2].slot, slot);
}

TYPED_TEST(WalkTest, FindOrAllocBuildsOneTablePerMissingLevel) {
  using F = TypeParam;
  uint64_t va = this->lo() + 5 * TestFixture::kPage;
  Result<Found> f = find_or_alloc(this->pt, va, 0);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.value.level, 0u);
  for (unsigned l = 0; l + 1 < F::levels; ++l) EXPECT_EQ(this->env.live(l), 1u) << "level " << l;
  Result<Found> again = find_or_alloc(this->pt, va, 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value.slot, f.value.slot);
  EXPECT_EQ(this->env.live(), F::levels);
  Result<Found> g = find(this->pt, va, 0);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g.value.slot, f.value.slot);
}

TYPED_TEST(WalkTest, FindOrAllocLeavesTablesBitIdenticalWhenAnyAllocationFails) {
  using F = TypeParam;
  uint64_t va = this->lo() + 7 * TestFixture::kPage;
  for (uint64_t nth = 1; nth < F::levels; ++nth) {
    auto before = this->env.snapshot();
    uint64_t live = this->env.live();
    this->env.fail_nth_alloc(nth);
    Result<Found> f = find_or_alloc(this->pt, va, 0);
    EXPECT_EQ(f.err, Err::enomem) << "failing allocation " << nth;
    EXPECT_EQ(this->env.live(), live);
    EXPECT_EQ(this->env.snapshot(), before) << "failing allocation " << nth;
  }
  this->env.fail_nth_alloc(0);
  EXPECT_TRUE(find_or_alloc(this->pt, va, 0).ok());
}

TYPED_TEST(WalkTest, FindOrAllocDoesNotDescendThroughALeaf) {
  using F = TypeParam;
  unsigned level = 1;
  if (!F::leaf_ok(level)) GTEST_SKIP() << "level 1 holds no leaves";
  uint64_t va = this->lo();
  ASSERT_TRUE(this->put_leaf(va, level));
  uint64_t live = this->env.live();
  EXPECT_EQ(find_or_alloc(this->pt, va + TestFixture::kPage, 0).err, Err::eexist);
  EXPECT_EQ(this->env.live(), live);
  Result<Found> f = find(this->pt, va + TestFixture::kPage, 0);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.value.level, level);  // find stops at the leaf that maps the address
}

TYPED_TEST(WalkTest, DestroyFreesEveryTablePage) {
  using F = TypeParam;
  std::mt19937_64 rng(42);
  this->build_random(rng, 60);
  EXPECT_GT(this->env.live(), 1u);
  this->pt.destroy();
  EXPECT_EQ(this->env.live(), 0u);
  for (unsigned l = 0; l < F::levels; ++l) EXPECT_EQ(this->env.allocs(l), this->env.frees(l));
  this->pt.destroy();  // idempotent
  EXPECT_EQ(this->env.live(), 0u);
}

TYPED_TEST(WalkTest, HostEnvFailsTheNthAllocationOnly) {
  this->env.fail_nth_alloc(2);
  EXPECT_TRUE(this->env.alloc_table(0).ok());
  EXPECT_EQ(this->env.alloc_table(0).err, Err::enomem);
  EXPECT_TRUE(this->env.alloc_table(0).ok());
  EXPECT_EQ(this->env.failed_allocs(), 1u);
  this->env.fail_nth_alloc(1, true);
  EXPECT_FALSE(this->env.alloc_table(0).ok());
  EXPECT_FALSE(this->env.alloc_table(0).ok());
  this->env.fail_nth_alloc(0);
  EXPECT_TRUE(this->env.alloc_table(0).ok());
  EXPECT_EQ(this->env.allocs(0), 3u);
}

TYPED_TEST(WalkTest, HostEnvAbortsOnUseOfAFreedTablePage) {
  Result<uint64_t> t = this->env.alloc_table(0);
  ASSERT_TRUE(t.ok());
  this->env.free_table(t.value, 0);
  EXPECT_DEATH((void)this->env.table_ptr(t.value), "freed table page");
  EXPECT_DEATH((void)this->env.table_ptr(t.value + 8), "no table page");
}

// --- the visitor walk ------------------------------------------------------------------------

TYPED_TEST(WalkTest, LeafVisitsTileTheRangeOnceInAscendingOrder) {
  using F = TypeParam;
  const uint64_t page = TestFixture::kPage;
  uint64_t l1 = bit(F::shift(1));
  ASSERT_TRUE(this->put_leaf(this->lo() + l1 + 3 * page, 0));
  ASSERT_TRUE(this->put_swap(this->lo() + l1 + 4 * page, 0, 77));
  if (F::leaf_ok(1)) {
    ASSERT_TRUE(this->put_leaf(this->lo() + 3 * l1, 1));
  }
  // From the middle of a page in the middle of a table to the middle of the last level-1 entry.
  uint64_t start = this->lo() + l1 - 2 * page + 123;
  uint64_t end = this->hi() - l1 / 2 + 7;
  auto v = this->leaf_visits(start, end);
  this->expect_tiles(v, start, end);
  // The swap entry and the leaves are among the visits, and none entries are too.
  bool saw_swap = false, saw_none = false;
  for (auto& s : v) {
    saw_swap = saw_swap || F::decode(s.old, s.level).kind == Kind::swap;
    saw_none = saw_none || s.old == 0;
  }
  EXPECT_TRUE(saw_swap);
  EXPECT_TRUE(saw_none);
}

TYPED_TEST(WalkTest, RandomTreesAreTiledByLeafVisitsForAnyRange) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    this->pt.destroy();
    ASSERT_EQ(this->pt.init(), Err::ok);
    this->build_random(rng, 40);
    for (int i = 0; i < 12; ++i) {
      uint64_t width = this->hi() - this->lo();
      uint64_t start = this->lo() + rng() % width;
      uint64_t len = 1 + rng() % (width / 3);
      uint64_t end = start + len > this->hi() ? this->hi() : start + len;
      SCOPED_TRACE(::testing::Message() << std::hex << "range 0x" << start << "-0x" << end);
      this->expect_tiles(this->leaf_visits(start, end), start, end);
    }
  }
}

TYPED_TEST(WalkTest, TablePreAndPostBracketEachTablesChildren) {
  using F = TypeParam;
  std::mt19937_64 rng(7);
  this->build_random(rng, 40);
  struct Open {
    uint64_t* slot;
    uint64_t raw;
    unsigned level;
  };
  std::vector<Open> stack;  // tables whose TABLE_PRE came and TABLE_POST did not yet
  unsigned pres = 0, posts = 0, leaves = 0;
  WalkFlags all{.leaf = true, .table_pre = true, .table_post = true};
  Err e = walk(this->pt, this->lo(), this->hi(), all, [&](const VisitCtx& c, Visit v) {
    if (v == Visit::table_post) {
      ++posts;
      EXPECT_FALSE(stack.empty());
      if (!stack.empty()) {
        EXPECT_EQ(stack.back().slot, c.slot) << "TABLE_POST closes the innermost open table";
        stack.pop_back();
      }
      return Step::next();
    }
    // Every other visit sits directly inside the innermost open table.
    EXPECT_EQ(stack.size(), F::levels - 1 - c.level) << visit_name(v) << " at level " << c.level;
    if (!stack.empty()) {
      uint64_t* table = this->pt.child(stack.back().raw, stack.back().level);
      EXPECT_GE(c.slot, table);
      EXPECT_LT(c.slot, table + bit(F::index_bits(c.level)));
    }
    if (v == Visit::table_pre) {
      ++pres;
      EXPECT_TRUE(F::is_table(c.old, c.level));
      stack.push_back({c.slot, c.old, c.level});
    } else {
      ++leaves;
    }
    return Step::next();
  });
  EXPECT_EQ(e, Err::ok);
  EXPECT_TRUE(stack.empty());
  EXPECT_GT(pres, 0u);
  EXPECT_EQ(pres, posts);
  EXPECT_GT(leaves, 0u);
}

TYPED_TEST(WalkTest, ALeafVisitorThatInstallsATableIsWalkedIntoIt) {
  using F = TypeParam;
  uint64_t x = this->lo() + bit(F::shift(1));
  ASSERT_TRUE(find_or_alloc(this->pt, x, 1).ok());  // level-1 slot for x exists and is none
  unsigned installed = 0, children = 0, posts = 0;
  Err e = walk(this->pt, x, x + bit(F::shift(1)), WalkFlags{.leaf = true, .table_post = true},
               [&](const VisitCtx& c, Visit v) -> Step {
                 if (v == Visit::table_post) {
                   posts += c.level == 1;  // the new table's entry (its ancestors close too)
                   return Step::next();
                 }
                 if (c.level == 1) {
                   EXPECT_EQ(c.old, 0u);
                   Result<uint64_t> t = this->pt.alloc_table(0);
                   if (!t) return t.err;
                   this->pt.store(c.slot, 1, F::make_table(t.value, 1));
                   ++installed;
                 } else {
                   EXPECT_EQ(c.level, 0u);
                   ++children;
                 }
                 return Step::next();
               });
  EXPECT_EQ(e, Err::ok);
  EXPECT_EQ(installed, 1u);
  EXPECT_EQ(children, bit(F::index_bits(0)));
  EXPECT_EQ(posts, 1u);
}

TYPED_TEST(WalkTest, APreVisitorThatReplacesATableWithABlockIsNotDescended) {
  using F = TypeParam;
  if (!F::leaf_ok(1)) GTEST_SKIP() << "level 1 holds no leaves";
  uint64_t x = this->lo() + bit(F::shift(1));
  ASSERT_TRUE(this->put_leaf(x + TestFixture::kPage, 0));
  unsigned level0 = 0, replaced = 0;
  Err e = walk(this->pt, x, x + 2 * bit(F::shift(1)), WalkFlags{.leaf = true, .table_pre = true},
               [&](const VisitCtx& c, Visit v) -> Step {
                 if (v == Visit::table_pre && c.level == 1 && c.base() == x) {
                   Result<uint64_t> blk = F::encode(leaf_entry<F>(this->pa_for(x), 1), 1);
                   if (!blk) return blk.err;
                   this->pt.store(c.slot, 1, blk.value);
                   this->pt.free_table(F::out_addr(c.old, 1), 0);
                   ++replaced;
                 }
                 if (v == Visit::leaf && c.level == 0) ++level0;
                 return Step::next();
               });
  EXPECT_EQ(e, Err::ok);
  EXPECT_EQ(replaced, 1u);
  EXPECT_EQ(level0, 0u) << "the freed table was walked";
}

TYPED_TEST(WalkTest, SkipKeepsTheWalkOutOfATable) {
  using F = TypeParam;
  uint64_t x = this->lo();
  ASSERT_TRUE(find_or_alloc(this->pt, x, 0).ok());
  ASSERT_TRUE(find_or_alloc(this->pt, x + bit(F::shift(1)), 0).ok());
  unsigned level0 = 0;
  Err e = walk(this->pt, x, x + 2 * bit(F::shift(1)), WalkFlags{.leaf = true, .table_pre = true},
               [&](const VisitCtx& c, Visit v) -> Step {
                 if (v == Visit::table_pre && c.level == 1 && c.base() == x) return Step::skip();
                 if (v == Visit::leaf && c.level == 0) ++level0;
                 return Step::next();
               });
  EXPECT_EQ(e, Err::ok);
  EXPECT_EQ(level0, bit(F::index_bits(0)));  // only the second table's entries
}

TYPED_TEST(WalkTest, StopEndsTheWalkSuccessfully) {
  ASSERT_TRUE(find_or_alloc(this->pt, this->lo(), 0).ok());
  unsigned n = 0;
  Err e = walk(this->pt, this->lo(), this->hi(), WalkFlags{.leaf = true},
               [&](const VisitCtx&, Visit) { return ++n == 3 ? Step::stop() : Step::next(); });
  EXPECT_EQ(e, Err::ok);
  EXPECT_EQ(n, 3u);
}

TYPED_TEST(WalkTest, AnErrorEndsTheWalkAndIsReturnedWithoutPostVisits) {
  using F = TypeParam;
  uint64_t x = this->lo() + bit(F::shift(1));
  ASSERT_TRUE(find_or_alloc(this->pt, x, 0).ok());
  unsigned leaves = 0, posts = 0;
  Err e = walk(this->pt, x, x + bit(F::shift(1)), WalkFlags{.leaf = true, .table_post = true},
               [&](const VisitCtx&, Visit v) -> Step {
                 if (v == Visit::table_post) ++posts;
                 if (v == Visit::leaf && ++leaves == 5) return Err::enomem;
                 return Step::next();
               });
  EXPECT_EQ(e, Err::enomem);
  EXPECT_EQ(leaves, 5u);
  EXPECT_EQ(posts, 0u);
}

TYPED_TEST(WalkTest, EagainEndsTheWalkUnlessIgnored) {
  ASSERT_TRUE(find_or_alloc(this->pt, this->lo(), 0).ok());
  auto visitor = [](unsigned& n) {
    return [&n](const VisitCtx&, Visit) -> Step {
      return ++n == 2 ? Step(Err::eagain) : Step::next();
    };
  };
  unsigned n = 0;
  EXPECT_EQ(walk(this->pt, this->lo(), this->hi(), WalkFlags{.leaf = true}, visitor(n)),
            Err::eagain);
  EXPECT_EQ(n, 2u);
  unsigned m = 0;
  EXPECT_EQ(walk(this->pt, this->lo(), this->hi(), WalkFlags{.leaf = true, .ignore_eagain = true},
                 visitor(m)),
            Err::ok);
  EXPECT_GT(m, 2u);
}

TYPED_TEST(WalkTest, RangesOutsideTheVaSpaceAreErangeAndEmptyRangesEinval) {
  using F = TypeParam;
  const uint64_t page = TestFixture::kPage;
  auto none = [](const VisitCtx&, Visit) { return Step::next(); };
  // The first address past the lower half (or past the whole space if there is no upper half).
  uint64_t top = F::canonical(bit(F::va_bits - 1)) ? bit(F::va_bits) : bit(F::va_bits - 1);
  EXPECT_EQ(walk(this->pt, top - page, top, WalkFlags{.leaf = true}, none), Err::ok);
  EXPECT_EQ(walk(this->pt, top - page, top + page, WalkFlags{.leaf = true}, none), Err::erange);
  EXPECT_EQ(walk(this->pt, top, top + page, WalkFlags{.leaf = true}, none), Err::erange);
  EXPECT_EQ(walk(this->pt, bit(63), bit(63) + page, WalkFlags{.leaf = true}, none), Err::erange);
  EXPECT_EQ(walk(this->pt, page, page, WalkFlags{.leaf = true}, none), Err::einval);
  EXPECT_EQ(walk(this->pt, 2 * page, page, WalkFlags{.leaf = true}, none), Err::einval);
  EXPECT_EQ(find(this->pt, top).err, Err::erange);
  EXPECT_EQ((Cursor<F, typename TestFixture::Env>(this->pt, top, top + page).err()), Err::erange);
  if (F::canonical(~uint64_t{0})) {
    // An upper half: its last page walks with end == 0, and a range across the hole is ERANGE.
    unsigned n = 0;
    EXPECT_EQ(walk(this->pt, uint64_t{0} - page, 0, WalkFlags{.leaf = true},
                   [&](const VisitCtx& c, Visit) {
                     EXPECT_EQ(c.end, 0u);
                     ++n;
                     return Step::next();
                   }),
              Err::ok);
    EXPECT_EQ(n, 1u);
    EXPECT_EQ(walk(this->pt, page, uint64_t{0} - page, WalkFlags{.leaf = true}, none), Err::erange);
  }
}

// --- the cursor ------------------------------------------------------------------------------

TYPED_TEST(WalkTest, CursorVisitsExactlyWhatTheLeafWalkVisits) {
  for (uint64_t seed : {11u, 12u, 13u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    this->pt.destroy();
    ASSERT_EQ(this->pt.init(), Err::ok);
    this->build_random(rng, 40);
    for (int i = 0; i < 10; ++i) {
      uint64_t width = this->hi() - this->lo();
      uint64_t start = this->lo() + rng() % width;
      uint64_t end = start + 1 + rng() % (this->hi() - start);
      SCOPED_TRACE(::testing::Message() << std::hex << "range 0x" << start << "-0x" << end);
      auto walked = this->leaf_visits(start, end);
      auto cursed = this->cursor_visits(start, end);
      ASSERT_EQ(walked.size(), cursed.size());
      for (std::size_t k = 0; k < walked.size(); ++k)
        ASSERT_EQ(walked[k], cursed[k]) << "position " << k;
    }
  }
}

TYPED_TEST(WalkTest, CursorAdvancesSidewaysWithoutRewalkingFromTheRoot) {
  using F = TypeParam;
  uint64_t x = this->lo();
  uint64_t l1 = bit(F::shift(1));
  ASSERT_TRUE(find_or_alloc(this->pt, x, 0).ok());
  ASSERT_TRUE(find_or_alloc(this->pt, x + l1, 0).ok());
  this->env.reset_table_ptr_calls();
  Cursor<F, typename TestFixture::Env> c(this->pt, x, x + 2 * l1);
  uint64_t positions = 0;
  for (; !c.done(); c.next()) ++positions;
  EXPECT_EQ(positions, 2 * bit(F::index_bits(0)));
  // The root and each table once on the way down, plus the second level-0 table: a re-walk per
  // step would cost levels lookups for each of the positions.
  EXPECT_EQ(this->env.table_ptr_calls(), F::levels + 1);
}

TYPED_TEST(WalkTest, CursorWalksIntoATableInstalledAtItsPosition) {
  using F = TypeParam;
  uint64_t x = this->lo() + bit(F::shift(1));
  ASSERT_TRUE(find_or_alloc(this->pt, x, 1).ok());
  Cursor<F, typename TestFixture::Env> c(this->pt, x, x + bit(F::shift(1)));
  ASSERT_FALSE(c.done());
  ASSERT_EQ(c.level(), 1u);
  Result<uint64_t> t = this->pt.alloc_table(0);
  ASSERT_TRUE(t.ok());
  this->pt.store(c.slot(), 1, F::make_table(t.value, 1));
  c.next();
  uint64_t n = 0;
  for (; !c.done(); c.next()) {
    EXPECT_EQ(c.level(), 0u);
    ++n;
  }
  EXPECT_EQ(n, bit(F::index_bits(0)));
}

TYPED_TEST(WalkTest, CursorRestartsFromTheRootWhereItStood) {
  using F = TypeParam;
  uint64_t x = this->lo();
  ASSERT_TRUE(this->put_leaf(x + 2 * TestFixture::kPage, 0));
  Cursor<F, typename TestFixture::Env> c(this->pt, x, x + 4 * TestFixture::kPage);
  c.next();
  c.next();
  uint64_t* slot = c.slot();
  c.restart();
  EXPECT_EQ(c.slot(), slot);
  EXPECT_EQ(c.addr(), x + 2 * TestFixture::kPage);
  EXPECT_EQ(F::decode(c.old(), 0).kind, Kind::leaf);
}

// The zap and uffd-wp loops of the mm layer step past a whole leaf or group with seek().
TYPED_TEST(WalkTest, CursorSeeksForwardClimbingOnlyOutOfTheTablesItLeaves) {
  using F = TypeParam;
  uint64_t x = this->lo();
  uint64_t l1 = bit(F::shift(1));
  ASSERT_TRUE(find_or_alloc(this->pt, x, 0).ok());
  ASSERT_TRUE(find_or_alloc(this->pt, x + l1, 0).ok());
  Cursor<F, typename TestFixture::Env> c(this->pt, x, x + 2 * l1);
  c.seek(x + 3 * TestFixture::kPage);  // inside the same level-0 table
  ASSERT_FALSE(c.done());
  EXPECT_EQ(c.addr(), x + 3 * TestFixture::kPage);
  EXPECT_EQ(c.level(), 0u);
  EXPECT_EQ(c.slot(), find(this->pt, c.addr(), 0).value.slot);
  this->env.reset_table_ptr_calls();
  c.seek(x + l1 + TestFixture::kPage);  // into the next level-0 table: one table read, no root
  EXPECT_EQ(this->env.table_ptr_calls(), 1u);
  EXPECT_EQ(c.slot(), find(this->pt, x + l1 + TestFixture::kPage, 0).value.slot);
  EXPECT_EQ(c.level(), 0u);
  c.seek(x);  // backwards: stays
  EXPECT_EQ(c.addr(), x + l1 + TestFixture::kPage);
  c.seek(x + 2 * l1);  // the end of the range
  EXPECT_TRUE(c.done());
}

// After a split installs a table where the cursor stands, refresh() stands on its entry.
TYPED_TEST(WalkTest, CursorRefreshWalksIntoATableInstalledWhereItStands) {
  using F = TypeParam;
  uint64_t x = this->lo() + bit(F::shift(1));
  ASSERT_TRUE(find_or_alloc(this->pt, x, 1).ok());
  Cursor<F, typename TestFixture::Env> c(this->pt, x + TestFixture::kPage, x + bit(F::shift(1)));
  ASSERT_EQ(c.level(), 1u);
  Result<uint64_t> t = this->pt.alloc_table(0);
  ASSERT_TRUE(t.ok());
  this->pt.store(c.slot(), 1, F::make_table(t.value, 1));
  c.refresh();
  EXPECT_EQ(c.level(), 0u);
  EXPECT_EQ(c.addr(), x + TestFixture::kPage);
  EXPECT_EQ(c.slot(), this->pt.table(t.value) + 1);
}

// --- the table walk: the loop under walk(), the range engine and the collapse scan -----------

// Visitors of the table walk used below (a local class cannot hold the member template).
template <class F, class Table>
struct ThreeAtATime {
  const Table& pt;
  uint64_t page;
  std::vector<uint64_t> places;
  std::vector<uint64_t> taken;  // entries each place had left in the walk
  template <unsigned Level, class W, class View>
  Result<uint64_t> at(W&, const Place<F, Level, View>& here) {
    static_assert(Level == 0);
    places.push_back(here.addr);
    taken.push_back(here.entries_from(here.addr));
    EXPECT_EQ(here.slot(here.addr), find(pt, here.addr, 0).value.slot);
    return align_down(here.addr, F::page_shift) + 3 * page - 1;
  }
};

struct Imagined {  // entry i holds i + 1; nothing in memory
  uint64_t load(uint64_t i, unsigned) const { return i + 1; }
  uint64_t* slots() const { return nullptr; }
};

template <class F>
struct ImaginedReader {
  std::vector<std::pair<uint64_t, uint64_t>> leaves;  // (address, entry the view gave)
  template <unsigned Level, class W, class View>
  Result<uint64_t> at(W& walk, const Place<F, Level, View>& here) {
    if constexpr (Level == 1) {
      if (Err e = walk.template table<0>(Imagined{}, here.addr, here.clipped_last()); e != Err::ok)
        return e;
      return here.clipped_last();
    } else {
      leaves.emplace_back(here.addr, here.load(here.addr));
      return here.clipped_last();
    }
  }
};

// A table walk's visitor may take several entries at once; the walk resumes after the last
// address it returns, and a place's slot is the one find() reaches for its address.
TYPED_TEST(WalkTest, TableWalkResumesAfterTheLastAddressTheVisitorTook) {
  using F = TypeParam;
  const uint64_t page = TestFixture::kPage;
  const uint64_t base = this->lo() + bit(F::shift(1));
  Result<Found> f = find_or_alloc(this->pt, base, 0);
  ASSERT_TRUE(f.ok());
  uint64_t* const t = f.value.slot;  // base is the first address of its level-0 table
  ThreeAtATime<F, typename TestFixture::Table> v{this->pt, page, {}, {}};
  const uint64_t first = base + page + 5, last = base + 10 * page - 1;
  ASSERT_EQ((walk_table<F, 0>(t, first, last, v)), Err::ok);
  EXPECT_EQ(v.places, (std::vector<uint64_t>{first, base + 4 * page, base + 7 * page}));
  EXPECT_EQ(v.taken, (std::vector<uint64_t>{9, 6, 3}));
}

// A visitor descends into tables that exist only in a view (the range engine's plan of a split
// it has not made): the walk reads entry i of such a table through the view.
TYPED_TEST(WalkTest, TableWalkDescendsIntoATableThatExistsOnlyInAView) {
  using F = TypeParam;
  ImaginedReader<F> v;
  const uint64_t l1 = bit(F::shift(1)), page = TestFixture::kPage;
  const uint64_t entries0 = bit(F::index_bits(0));
  // From the last two pages of one level-1 entry into the first three of the next.
  const uint64_t first = this->lo() + l1 - 2 * page;
  const uint64_t last = this->lo() + l1 + 3 * page - 1;
  ASSERT_EQ((TableWalk<F, ImaginedReader<F>>{v}.template table<1>(Imagined{}, first, last)),
            Err::ok);
  std::vector<std::pair<uint64_t, uint64_t>> want = {
      {first, entries0 - 1}, {first + page, entries0}, {first + 2 * page, 1},
      {first + 3 * page, 2}, {first + 4 * page, 3}};
  EXPECT_EQ(v.leaves, want);
}

// walk_below() walks a table that is not linked anywhere yet, as the range engine's commit walks
// the table it builds off-line before publishing it.
TYPED_TEST(WalkTest, WalkBelowWalksATableNotLinkedYet) {
  using F = TypeParam;
  const uint64_t base = this->lo() + bit(F::shift(1));
  const uint64_t live = this->env.live();
  Result<uint64_t> pa = this->pt.alloc_table(0);
  ASSERT_TRUE(pa.ok());
  uint64_t* t = this->pt.table(pa.value);
  for (uint64_t i : {uint64_t{0}, uint64_t{5}, bit(F::index_bits(0)) - 1}) {
    Result<uint64_t> raw =
        F::encode(leaf_entry<F>(this->pa_for(base) + (i << F::page_shift), 0), 0);
    ASSERT_TRUE(raw.ok());
    this->pt.store(t + i, 0, raw.value);
  }
  std::vector<uint64_t> leaves;
  Err e = walk_below<F, 1>(this->pt, F::make_table(pa.value, 1), base,
                           base + (bit(F::shift(1)) - 1), WalkFlags{.leaf = true},
                           [&](const VisitCtx& c, Visit) {
                             if (F::is_leaf(c.old, c.level)) leaves.push_back(c.addr - base);
                             return Step::next();
                           });
  EXPECT_EQ(e, Err::ok);
  const uint64_t page = TestFixture::kPage;
  EXPECT_EQ(leaves, (std::vector<uint64_t>{0, 5 * page, bit(F::shift(1)) - page}));
  this->pt.free_tables(pa.value, 0);
  EXPECT_EQ(this->env.live(), live);
}

}  // namespace
