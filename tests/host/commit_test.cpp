// commit_test.cpp - the one commit path (commit.hpp) on every format: the order of writes and
// invalidations replace() produces, read from the host log, the reservation pool's all-or-
// nothing rule, and table pages freed only after the walk-cache invalidation.
// Facts: docs/arch.md §2 (break-before-make), §6 (walker invariants, table lifetime).
#include "hugepte/commit.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hugepte/env/host.hpp"
#include "hugepte/walk.hpp"
#include "typed_formats.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file
using hpt_typed::FormatName;

template <class F>
class CommitTest : public ::testing::Test {
 protected:
  using Env = host::EnvFor<F>;
  using Table = PageTable<F, Env>;
  static constexpr LeafSizes<F> kSizes = leaf_sizes<F>();

  void SetUp() override {
    env.set_log(&log);
    tlb.set_log(&log);
    ASSERT_EQ(pt.init(), Err::ok);
  }

  // The slots of the unit of 1 << shift at va, at `level` (tables allocated on the way).
  uint64_t* slots_for(uint64_t va, unsigned level) {
    Result<Found> f = find_or_alloc(pt, va, level);
    EXPECT_TRUE(f.ok());
    return f.value.slot;
  }

  // The values of a present leaf unit of size index i mapping pa (every sub-entry of a group).
  std::vector<uint64_t> leaf_unit(unsigned i, uint64_t pa, bool writable = true) {
    unsigned level = kSizes.level[i], shift = kSizes.shift[i];
    Entry e;
    e.kind = Kind::leaf;
    e.addr = pa;
    e.shift = static_cast<uint8_t>(F::shift(level));
    e.cont_shift = static_cast<uint8_t>(kSizes.cont[i] ? shift : 0);
    e.prot.read = true;
    e.prot.write = writable;
    e.writable = writable;
    e.accessed = true;
    e.dirty = writable;
    Result<uint64_t> raw0 = F::encode(e, level);
    EXPECT_TRUE(raw0.ok()) << "size " << shift;
    std::vector<uint64_t> v;
    for (uint64_t k = 0; k < bit(shift - F::shift(level)); ++k)
      v.push_back(kSizes.cont[i] ? F::group_entry(raw0.value, level, static_cast<unsigned>(k))
                                 : raw0.value);
    return v;
  }

  uint64_t va_for(unsigned shift) const { return bit(shift) * 3; }
  uint64_t pa_for(unsigned shift, uint64_t n) const { return bit(shift) * (8 + n); }

  TlbFlush leaf_flush(uint64_t va, unsigned i) const {
    unsigned level = kSizes.level[i];
    return TlbFlush{va, va + bit(kSizes.shift[i]), static_cast<uint8_t>(F::shift(level)),
                    static_cast<uint8_t>(level), true};
  }

  void replace_unit(uint64_t* slots, unsigned level, std::vector<uint64_t> old,
                    std::vector<uint64_t> next, const TlbFlush& f, Owed owed = Owed::by_replace) {
    Invalidations<F, Env, host::TlbModel> inv(pt, tlb);
    replace(pt, inv, slots, level, old.size(), old.data(), next.data(), f, owed);
    inv.finish();
  }

  // A sink that records, at each invalidation, how many level-0 tables were freed so far.
  struct FreesAtFlush {
    Env* env;
    std::vector<uint64_t> frees_at_flush;
    std::vector<TlbFlush> flushes;
    void flush(const TlbFlush& f) {
      frees_at_flush.push_back(env->frees(0));
      flushes.push_back(f);
    }
    void flush_all() {}
    void publish() {}
  };

  std::vector<host::Event::Type> types() const {
    std::vector<host::Event::Type> t;
    for (const host::Event& e : log.events()) t.push_back(e.type);
    return t;
  }

  host::Log log;
  Env env{Env::kDefaultBase};
  host::TlbModel tlb;
  Table pt{env};
};

TYPED_TEST_SUITE(CommitTest, hpt_typed::AllWithFake<>, FormatName);

using T = host::Event::Type;

// docs/arch.md §2: installing into a non-present slot needs no invalidation, only a publish.
TYPED_TEST(CommitTest, InstallingIntoNoneWritesEverySubEntryAndInvalidatesNothing) {
  using F = TypeParam;
  for (unsigned i = 0; i < this->kSizes.count; ++i) {
    SCOPED_TRACE(this->kSizes.shift[i]);
    const unsigned level = this->kSizes.level[i], shift = this->kSizes.shift[i];
    const uint64_t va = this->va_for(shift);
    uint64_t* s = this->slots_for(va, level);
    std::vector<uint64_t> next = this->leaf_unit(i, this->pa_for(shift, 0));
    this->log.clear();
    this->replace_unit(s, level, std::vector<uint64_t>(next.size(), 0), next,
                       this->leaf_flush(va, i));
    std::vector<T> want(next.size(), T::write);
    want.push_back(T::publish);
    EXPECT_EQ(this->types(), want);
    for (uint64_t k = 0; k < next.size(); ++k) EXPECT_EQ(F::is_leaf(s[k], level), true);
  }
}

// §2: a live change the format says needs it goes invalid (every sub-entry), invalidate, new;
// any other live change is written in place and its invalidation follows; x86 never breaks.
TYPED_TEST(CommitTest, ALiveChangeBreaksBeforeMakingExactlyWhereTheFormatSaysSo) {
  using F = TypeParam;
  for (unsigned i = 0; i < this->kSizes.count; ++i) {
    SCOPED_TRACE(this->kSizes.shift[i]);
    const unsigned level = this->kSizes.level[i], shift = this->kSizes.shift[i];
    const uint64_t va = this->va_for(shift);
    uint64_t* s = this->slots_for(va, level);
    std::vector<uint64_t> before = this->leaf_unit(i, this->pa_for(shift, 0));
    this->replace_unit(s, level, std::vector<uint64_t>(before.size(), 0), before,
                       this->leaf_flush(va, i));
    for (bool move : {true, false}) {  // a new output address, or only the permissions
      SCOPED_TRACE(move ? "new output address" : "write permission removed");
      std::vector<uint64_t> old(s, s + before.size());
      std::vector<uint64_t> next = this->leaf_unit(i, this->pa_for(shift, move ? 1 : 0), !move);
      bool bbm = false;
      for (uint64_t k = 0; k < old.size(); ++k) bbm = bbm || F::needs_bbm(old[k], next[k], level);
      if (std::string(F::arch) == "x86_64") {
        EXPECT_FALSE(bbm) << "x86 never breaks before making";
      }
      this->log.clear();
      this->replace_unit(s, level, old, next, this->leaf_flush(va, i));
      const auto& ev = this->log.events();
      // Break: every sub-entry invalid, the flush, every new value. In place: every new value,
      // then the flush it owes.
      std::vector<T> want(old.size(), T::write);
      want.push_back(T::flush);
      if (bbm) want.insert(want.end(), old.size(), T::write);
      want.push_back(T::publish);
      ASSERT_EQ(this->types(), want);
      if (bbm) {
        for (uint64_t k = 0; k < old.size(); ++k) EXPECT_EQ(ev[k].value, 0u) << "sub-entry " << k;
        for (uint64_t k = 0; k < old.size(); ++k) EXPECT_EQ(ev[old.size() + 1 + k].value, next[k]);
      }
      EXPECT_EQ(ev[old.size()].flush, this->leaf_flush(va, i));
      for (uint64_t k = 0; k < old.size(); ++k) EXPECT_EQ(s[k], next[k]);
    }
  }
}

// §2: who owes the invalidation of an in-place change can be the caller (set_huge_pte_at).
TYPED_TEST(CommitTest, AnInvalidationOwedByTheCallerIsNotIssuedUnlessABreakNeedsIt) {
  using F = TypeParam;
  const unsigned i = 0;  // the base page
  const unsigned level = this->kSizes.level[i], shift = this->kSizes.shift[i];
  const uint64_t va = this->va_for(shift);
  uint64_t* s = this->slots_for(va, level);
  std::vector<uint64_t> before = this->leaf_unit(i, this->pa_for(shift, 0));
  this->replace_unit(s, level, {0}, before, this->leaf_flush(va, i));
  std::vector<uint64_t> next = this->leaf_unit(i, this->pa_for(shift, 0), false);
  const bool bbm = F::needs_bbm(before[0], next[0], level);
  this->log.clear();
  this->replace_unit(s, level, before, next, this->leaf_flush(va, i), Owed::by_caller);
  EXPECT_EQ(this->log.count(T::flush), bbm ? 1u : 0u);
  EXPECT_EQ(s[0], next[0]);
}

// §6: a table page is freed only after the invalidation that drops walks cached through it.
TYPED_TEST(CommitTest, ATableReplacedIsFreedOnlyAfterAWalkCacheInvalidation) {
  using F = TypeParam;
  using Env = typename TestFixture::Env;
  if (F::levels < 2) GTEST_SKIP() << "one level";
  const unsigned level = 1;
  const uint64_t va = bit(F::shift(level)) * 5;
  uint64_t* leaf_slot =
      this->slots_for(va, 0);  // allocates the level-0 table under the level-1 slot
  ASSERT_NE(leaf_slot, nullptr);
  uint64_t* s = this->slots_for(va, level);
  const uint64_t table = s[0];
  ASSERT_TRUE(F::is_table(table, level));
  typename TestFixture::FreesAtFlush rec{&this->env, {}, {}};
  const uint64_t frees0 = this->env.frees(0);
  Invalidations<F, Env, typename TestFixture::FreesAtFlush> inv(this->pt, rec);
  uint64_t old = table, next = 0;
  const TlbFlush f{align_down(va, F::shift(level)),
                   align_down(va, F::shift(level)) + bit(F::shift(level)),
                   static_cast<uint8_t>(F::page_shift), kAnyLevel, false};
  replace(this->pt, inv, s, level, 1, &old, &next, f);
  inv.finish();
  ASSERT_EQ(rec.flushes.size(), 1u);
  EXPECT_FALSE(rec.flushes[0].leaf_only);
  EXPECT_EQ(rec.frees_at_flush[0], frees0) << "freed before the walk-cache invalidation";
  EXPECT_EQ(this->env.frees(0), frees0 + 1);
  EXPECT_EQ(s[0], 0u);
}

// §6: tables unlinked one after another under one range owe one invalidation, and all of them
// are freed after it (free_pgtables: unlink all, flush once, free).
TYPED_TEST(CommitTest, TablesRetiredUnderOneRangeAreFreedAfterOneInvalidation) {
  using F = TypeParam;
  using Env = typename TestFixture::Env;
  if (F::levels < 2) GTEST_SKIP() << "one level";
  const unsigned level = 1;
  const uint64_t span = bit(F::shift(level));
  const uint64_t va = span * 4;
  for (uint64_t k = 0; k < 3; ++k) ASSERT_NE(this->slots_for(va + k * span, 0), nullptr);
  uint64_t* s = this->slots_for(va, level);
  typename TestFixture::FreesAtFlush rec{&this->env, {}, {}};
  const uint64_t frees0 = this->env.frees(0);
  const TlbFlush whole{va, va + 3 * span, static_cast<uint8_t>(F::page_shift), kAnyLevel, false};
  {
    Invalidations<F, Env, typename TestFixture::FreesAtFlush> inv(this->pt, rec);
    for (uint64_t k = 0; k < 3; ++k) {
      uint64_t old = s[k], next = 0;
      ASSERT_TRUE(F::is_table(old, level));
      replace(this->pt, inv, s + k, level, 1, &old, &next, whole);
    }
    EXPECT_TRUE(rec.flushes.empty()) << "queued, not issued, until the operation ends";
    EXPECT_EQ(this->env.frees(0), frees0) << "nothing freed before its invalidation";
    inv.finish();
  }
  ASSERT_EQ(rec.flushes.size(), 1u);
  EXPECT_EQ(rec.flushes[0], whole);
  EXPECT_EQ(rec.frees_at_flush[0], frees0);
  EXPECT_EQ(this->env.frees(0), frees0 + 3);
}

// A unit whose values do not change is not written: a table slot handed over unchanged stays
// linked and allocated (the range engine hands whole units over, changed or not).
TYPED_TEST(CommitTest, AnUnchangedTableSlotIsNeitherWrittenNorFreed) {
  using F = TypeParam;
  if (F::levels < 2) GTEST_SKIP() << "one level";
  const uint64_t va = bit(F::shift(1)) * 6;
  ASSERT_NE(this->slots_for(va, 0), nullptr);
  uint64_t* s = this->slots_for(va, 1);
  const uint64_t table = s[0];
  const uint64_t frees0 = this->env.frees(0);
  this->log.clear();
  this->replace_unit(
      s, 1, {table}, {table},
      TlbFlush{va, va + bit(F::shift(1)), static_cast<uint8_t>(F::page_shift), kAnyLevel, false});
  EXPECT_TRUE(this->log.events().empty());
  EXPECT_EQ(this->env.frees(0), frees0);
  EXPECT_EQ(s[0], table);
}

// The pool is all or nothing: a reservation that cannot be met leaves nothing taken.
TYPED_TEST(CommitTest, AReservationThatRunsOutTakesNothing) {
  using F = TypeParam;
  const uint64_t live0 = this->env.live();
  uint64_t need[F::levels] = {};
  for (unsigned l = 0; l < F::levels; ++l) need[l] = 2;
  for (uint64_t fail = 1; fail <= 2 * F::levels; ++fail) {
    SCOPED_TRACE(fail);
    TablePool<F, typename TestFixture::Env> pool(this->env);
    this->env.fail_nth_alloc(fail);
    EXPECT_EQ(pool.reserve(need), Err::enomem);
    for (unsigned l = 0; l < F::levels; ++l) EXPECT_EQ(pool.count(l), 0u);
    EXPECT_EQ(this->env.live(), live0);
    this->env.fail_nth_alloc(0);
  }
  {
    TablePool<F, typename TestFixture::Env> pool(this->env);
    ASSERT_EQ(pool.reserve(need), Err::ok);
    EXPECT_EQ(this->env.live(), live0 + 2 * F::levels);
    uint64_t pa = pool.take(0);
    EXPECT_EQ(this->pt.table(pa)[0], 0u) << "a page handed out is zeroed";
    this->pt.free_table(pa, 0);
  }
  EXPECT_EQ(this->env.live(), live0) << "unused pages go back when the pool goes";
}

}  // namespace
