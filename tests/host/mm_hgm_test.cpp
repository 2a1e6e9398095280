// mm_hgm_test.cpp - HugeTLB high-granularity mapping and the mapcount policies (docs/mm.md
// §2, §5 T17-T26), typed over the fake exemplar and every real format, plus Sv39
// with Svrsw60t59b (a riscv mode whose leaves can hold a uffd-wp bit). Every expected table,
// entry and mapcount number is derived from the format's geometry (mm_world.hpp).
//
// The last test is a property test: seeded random CONTINUE / MADV_DONTNEED / split / collapse /
// fault sequences over one HGM VMA, checked after every step against a page -> mapped model.
// HPT_HGM_SEED and HPT_HGM_STEPS (environment) replay or lengthen it.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "hpt_test.hpp"
#include "mm_world.hpp"

namespace {

using namespace mm_world;  // NOLINT(google-build-using-namespace): test file

template <class F>
class MmHgm : public ::testing::Test {
 protected:
  using G = Geo<F>;
  void SetUp() override {
    if constexpr (G::H == 0) GTEST_SKIP() << "no leaf size between the base page and 2^30";
    if constexpr (G::M == 0) GTEST_SKIP() << "no leaf size between the base page and 2^21";
  }
};
TYPED_TEST_SUITE(MmHgm, Formats, hpt_typed::FormatName);

template <class F>
void expect_full_collapse(World<F>& w, uint32_t file, Policy pol);

// --- T17 - T20: HGM install (walks with allocation, largest fit) ---------------------------------

TYPED_TEST(MmHgm, T17FirstBasePageContinueAllocatesOneTablePerLevelBelowTheHstateAndNoNotifier) {
  HGM_PRELUDE;
  for (Policy pol : {Policy::s1, Policy::s3}) {
    SCOPED_TRACE(policy_name(pol));
    World<F> w(pol);
    uint32_t file = w.file(1);
    ASSERT_EQ(w.map(base, file, 1), Err::ok);
    ASSERT_EQ(w.mm.madvise_split(base, bit(H)), Err::ok);
    ASSERT_EQ(w.mm.uffd_api(kFeatures), Err::ok);
    ASSERT_TRUE(w.mm.uffd_register(base, bit(H), kRegMinor).ok());
    const uint64_t x = base + bit(P);
    // Out of table pages half way: nothing changes (the tables are reserved before any write).
    auto snap = w.env.snapshot();
    w.env.fail_nth_alloc(F::levels - 1);  // the last of the tables this CONTINUE needs
    UffdResult r = w.mm.uffd_continue(x, bit(P), 0);
    w.env.fail_nth_alloc(0);
    EXPECT_EQ(r.err, Err::enomem);
    EXPECT_EQ(r.done, 0u);
    EXPECT_TRUE(snap == w.env.snapshot());
    w.mm.reset_counters();

    r = w.mm.uffd_continue(x, bit(P), 0);
    EXPECT_EQ(r.err, Err::ok);
    EXPECT_EQ(r.done, bit(P));
    // One table per level below the hstate slot; a fresh address space also gets the tables
    // from the root down to the one holding the hstate slot.
    for (unsigned l = 0; l < F::levels; ++l)
      EXPECT_EQ(w.c().pt_alloc[l], l + 1 < F::levels ? 1u : 0u) << "level " << l;
    auto c0 = w.census(base, base + bit(H), 0);
    EXPECT_EQ(c0.leaves, 1u);
    EXPECT_EQ(c0.none, G::entries(0) - 1);
    for (unsigned l = 1; l < hl; ++l) {
      auto c = w.census(base, base + bit(H), l);
      EXPECT_EQ(c.tables, 1u) << "level " << l;
      EXPECT_EQ(c.none, G::entries(l) - 1) << "level " << l;
      EXPECT_EQ(c.leaves, 0u);
    }
    auto ch = w.census(base, base + bit(H), hl);
    EXPECT_EQ(ch.tables, 1u);
    EXPECT_EQ(ch.none, G::g - 1);
    EXPECT_EQ(w.c().notif_start, 0u);
    EXPECT_EQ(w.c().tlb_flush, 0u);
    EXPECT_EQ(w.c().uffd_msgs, 0u);
    typename World<F>::MmT::View v = w.mm.view(x);
    EXPECT_TRUE(pte::present(v.entry));
    EXPECT_EQ(v.shift, P);
    EXPECT_EQ(w.check_file_map(base, base + bit(H), file), "");
    // One mapping of anything under the hstate slot (S1) / one page mapped (S3); the page
    // cache and the one entry hold the references.
    uint32_t id = w.cached(file);
    EXPECT_EQ(w.mem.mapcount(id), 1u);
    EXPECT_EQ(w.mem.folio(id).refcount, 2u);
  }
}

TYPED_TEST(MmHgm, T18T23ContinueAtEveryBasePageBuildsOneTableTreeThatCollapseFreesInOnePair) {
  HGM_PRELUDE;
  World<F> w(Policy::s1);
  uint32_t file = w.file(1);
  ASSERT_EQ(w.map(base, file, 1), Err::ok);
  ASSERT_EQ(w.mm.madvise_split(base, bit(H)), Err::ok);
  ASSERT_EQ(w.mm.uffd_api(kFeatures), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(base, bit(H), kRegMinor).ok());
  ASSERT_EQ(w.mm.uffd_continue(base, bit(P), 0).err, Err::ok);
  Counters first = w.c();

  // Same last-level table: nothing new.
  w.mm.reset_counters();
  ASSERT_EQ(w.mm.uffd_continue(base + bit(P), bit(P), 0).err, Err::ok);
  EXPECT_EQ(w.c().pt_alloc_total(), 0u);
  // The next last-level table's span: one more last-level table.
  w.mm.reset_counters();
  // (A format whose hstate is one last-level table - arm64 64K, 512M - has no next one.)
  const uint64_t span0 = bit(F::shift(1));
  const bool two_tables = span0 < bit(H);
  if (two_tables) {
    ASSERT_EQ(w.mm.uffd_continue(base + span0, bit(P), 0).err, Err::ok);
    EXPECT_EQ(w.c().pt_alloc[0], 1u);
    EXPECT_EQ(w.c().pt_alloc_total(), 1u);
  }

  // Every other base page, one CONTINUE each.
  w.mm.reset_counters();
  for (uint64_t i = 2; i < G::N; ++i) {
    if (two_tables && i == (span0 >> P)) continue;
    UffdResult r = w.mm.uffd_continue(base + (i << P), bit(P), 0);
    if (r.err != Err::ok) FAIL() << "page " << i << ": " << err_name(r.err);
  }
  for (unsigned l = 0; l < hl; ++l)
    EXPECT_EQ(first.pt_alloc[l] + (l == 0 && two_tables) + w.c().pt_alloc[l], G::full_tables(l))
        << "level " << l;
  for (unsigned l = hl; l < F::levels; ++l) EXPECT_EQ(w.c().pt_alloc[l], 0u) << "level " << l;
  uint64_t tables = 0;
  for (unsigned l = 1; l <= hl; ++l) tables += w.census(base, base + bit(H), l).tables;
  EXPECT_EQ(tables, G::full_tables_total());
  auto c0 = w.census(base, base + bit(H), 0);
  EXPECT_EQ(c0.leaves, G::N);
  EXPECT_EQ(c0.none, 0u);
  EXPECT_EQ(w.c().notif_start, 0u);
  EXPECT_EQ(w.c().tlb_flush, 0u);
  EXPECT_EQ(w.mem.mapcount(w.cached(file)), 1u);
  EXPECT_EQ(w.mem.folio(w.cached(file)).refcount, 2u);

  // T23 (S1) from here: one full loop serves both scenarios.
  expect_full_collapse(w, file, Policy::s1);
}

TYPED_TEST(MmHgm, T19ContinueInstallsTheLargestLeafThatFitsAndNoTableBelowIt) {
  HGM_PRELUDE;
  constexpr unsigned M = G::M, ml = G::ml;
  for (Policy pol : {Policy::s1, Policy::s3}) {
    SCOPED_TRACE(policy_name(pol));
    {  // an aligned M piece: one M leaf (a group where M is one), tables only down to M's level
      World<F> w(pol);
      uint32_t file = hgm_setup(w);
      w.mm.reset_counters();
      UffdResult r = w.mm.uffd_continue(base + bit(M), bit(M), 0);
      EXPECT_EQ(r.err, Err::ok);
      EXPECT_EQ(r.done, bit(M));
      for (unsigned l = 0; l < F::levels; ++l)
        EXPECT_EQ(w.c().pt_alloc[l], l >= ml && l + 1 < F::levels ? 1u : 0u) << "level " << l;
      auto c = w.census(base + bit(M), base + 2 * bit(M), ml);
      EXPECT_EQ(c.leaves, G::gm);
      EXPECT_EQ(w.leaves(base, base + bit(H)), 1u);
      EXPECT_EQ(w.mm.view(base + bit(M)).shift, M);
      EXPECT_EQ(w.check_file_map(base, base + bit(H), file), "");
      uint32_t id = w.cached(file);
      EXPECT_EQ(w.mem.mapcount(id), pol == Policy::s3 ? bit(M - P) : 1u);
      EXPECT_EQ(w.mem.folio(id).refcount, 2u);
      EXPECT_EQ(w.c().notif_start, 0u);
    }
    {  // the whole hstate page on a none slot: one hstate leaf, no table below the slot
      World<F> w(pol);
      uint32_t file = hgm_setup(w);
      w.mm.reset_counters();
      UffdResult r = w.mm.uffd_continue(base, bit(H), 0);
      EXPECT_EQ(r.err, Err::ok);
      EXPECT_EQ(r.done, bit(H));
      for (unsigned l = 0; l < hl; ++l) EXPECT_EQ(w.c().pt_alloc[l], 0u) << "level " << l;
      EXPECT_EQ(w.census(base, base + bit(H), hl).leaves, G::g);
      EXPECT_EQ(w.mm.view(base).shift, H);
      EXPECT_EQ(w.check_file_map(base, base + bit(H), file), "");
      uint32_t id = w.cached(file);
      EXPECT_EQ(w.mem.mapcount(id), 1u);
      EXPECT_EQ(w.mem.folio(id).refcount, 2u);
      EXPECT_EQ(w.c().notif_start, 0u);
      EXPECT_EQ(w.c().tlb_flush, 0u);
    }
  }
}

TYPED_TEST(MmHgm, T20ContinueNeverSplitsAPresentLeaf) {
  HGM_PRELUDE;
  World<F> w(Policy::s1);
  hgm_setup(w);
  ASSERT_EQ(w.mm.uffd_continue(base, bit(H), 0).err, Err::ok);
  auto snap = w.env.snapshot();
  w.mm.reset_counters();
  UffdResult r = w.mm.uffd_continue(base + bit(P), bit(P), 0);
  EXPECT_EQ(r.err, Err::eexist);
  EXPECT_EQ(r.done, 0u);
  r = w.mm.uffd_continue(base + bit(G::M), bit(G::M), 0);
  EXPECT_EQ(r.err, Err::eexist);
  EXPECT_TRUE(snap == w.env.snapshot());
  EXPECT_EQ(w.c().pt_alloc_total(), 0u);
  EXPECT_EQ(w.c().entries_written, 0u);
  EXPECT_EQ(w.c().notif_start, 0u);
  EXPECT_EQ(w.mm.view(base).shift, H);
}

// --- T21: markers are replicated into the tables a walk allocates under them ---------------------

TYPED_TEST(MmHgm, T21ContinueUnderAUffdWpMarkerReplicatesItIntoEveryNewTable) {
  HGM_PRELUDE;
  const bool wp = uffd_wp_supported<F>();
  for (Policy pol : {Policy::s1, Policy::s3}) {
    SCOPED_TRACE(policy_name(pol));
    World<F> w(pol);
    uint32_t file = hgm_setup(w, 1, 0);
    if (wp) {
      ASSERT_TRUE(w.mm.uffd_register(base, bit(H), kRegWp).ok());
      ASSERT_EQ(w.mm.uffd_writeprotect(base, bit(H), kWpModeWp), Err::ok);
    } else {
      // No uffd-wp bit in this format's leaves: WP registration is refused; the marker is
      // written through the huge-PTE API (markers encode on every format).
      EXPECT_EQ(w.mm.uffd_register(base, bit(H), kRegWp).err, Err::einval);
      ASSERT_TRUE(w.mm.uffd_register(base, bit(H), kRegMinor).ok());
      Result<HugePte<F>> h = w.mm.ops().alloc(base, H);
      ASSERT_TRUE(h.ok());
      ASSERT_EQ(w.mm.ops().set(h.value, pte::make_marker(kMarkerUffdWp)), Err::ok);
    }
    auto before = w.census(base, base + bit(H), hl);
    EXPECT_EQ(before.uffd_wp_markers, G::g);
    w.mm.reset_counters();

    const uint64_t x = base + 3 * bit(P);
    ASSERT_EQ(w.mm.uffd_continue(x, bit(P), 0).err, Err::ok);
    for (unsigned l = 0; l < F::levels; ++l)
      EXPECT_EQ(w.c().pt_alloc[l], l < hl ? 1u : 0u) << "level " << l;
    auto ch = w.census(base, base + bit(H), hl);
    EXPECT_EQ(ch.tables, 1u);
    EXPECT_EQ(ch.uffd_wp_markers, G::g - 1);
    for (unsigned l = 1; l < hl; ++l) {
      auto c = w.census(base, base + bit(H), l);
      EXPECT_EQ(c.tables, 1u) << "level " << l;
      EXPECT_EQ(c.markers, G::entries(l) - 1) << "level " << l;
      EXPECT_EQ(c.uffd_wp_markers, G::entries(l) - 1) << "level " << l;
    }
    auto c0 = w.census(base, base + bit(H), 0);
    EXPECT_EQ(c0.leaves, 1u);
    EXPECT_EQ(c0.uffd_wp_markers, G::entries(0) - 1);
    EXPECT_EQ(c0.none, 0u);
    EXPECT_EQ(w.c().notif_start, 0u);
    // Without CONTINUE_MODE_WP the continued page itself is not write-protected (docs/mm.md §6.4).
    typename World<F>::MmT::View v = w.mm.view(x);
    EXPECT_TRUE(pte::present(v.entry));
    EXPECT_FALSE(v.entry.soft.uffd_wp);
    EXPECT_EQ(w.check_file_map(base, base + bit(H), file), "");

    // A write to another base page under a replicated marker.
    const uint64_t y = x + bit(P) + 5;
    FaultResult f = w.mm.handle_fault(y, Access::write);
    ASSERT_EQ(f.kind, FaultKind::uffd);
    EXPECT_EQ(w.c().uffd_msgs, 1u);
    if (wp) {  // WP-only registration: the cached page maps write-protected, then a WP message
      EXPECT_EQ(f.msg, (UffdMsg{align_down(y, P), kMsgWp | kMsgWrite}));
      typename World<F>::MmT::View vy = w.mm.view(y);
      EXPECT_TRUE(pte::present(vy.entry));
      EXPECT_TRUE(vy.entry.soft.uffd_wp);
      EXPECT_FALSE(vy.entry.writable);
      EXPECT_EQ(vy.shift, P);
    } else {  // MINOR registration: the marker counts as none, the page is cached: MINOR
      EXPECT_EQ(f.msg, (UffdMsg{align_down(y, P), kMsgMinor | kMsgWrite}));
    }
  }
}

// --- T22: walks stop at non-present entries that are not none-mostly --------------------------

TYPED_TEST(MmHgm, T22ContinueThroughAHwpoisonOrMigrationEntryAboveTheTargetIsEexist) {
  HGM_PRELUDE;
  for (uint32_t type : {kSwpHwpoison, kSwpMigrationRead}) {
    SCOPED_TRACE(type == kSwpHwpoison ? "hwpoison" : "migration");
    // At the hstate slot, and (where a level lies between the hstate and the base page) one
    // level above the base page.
    for (unsigned at : {hl, 1u}) {
      if (at == 1 && hl < 2) continue;
      SCOPED_TRACE(::testing::Message() << "entry at level " << at);
      World<F> w(Policy::s1);
      uint32_t file = hgm_setup(w);
      const unsigned s = at == hl ? H : F::shift(1);
      Result<HugePte<F>> h = w.mm.ops().alloc(base, s);
      ASSERT_TRUE(h.ok());
      ASSERT_EQ(w.mm.ops().set(h.value, pte::swp_entry(type, w.cached_pa(file) >> P)), Err::ok);
      auto snap = w.env.snapshot();
      w.mm.reset_counters();
      UffdResult r = w.mm.uffd_continue(base + bit(P), bit(P), 0);
      EXPECT_EQ(r.err, Err::eexist);
      EXPECT_EQ(r.done, 0u);
      if (G::M < s) {
        r = w.mm.uffd_continue(base + bit(G::M), bit(G::M), 0);
        EXPECT_EQ(r.err, Err::eexist);
      }
      EXPECT_TRUE(snap == w.env.snapshot());
      EXPECT_EQ(w.c().pt_alloc_total(), 0u);
      EXPECT_EQ(w.c().entries_written, 0u);
      // What a fault there sees: SIGBUS (hwpoison: lsb the hstate at the hstate slot, the
      // entry's size below it) or a retry (migration).
      FaultResult f = w.mm.handle_fault(base + bit(P), Access::read);
      if (type == kSwpHwpoison) {
        EXPECT_EQ(f.kind, FaultKind::sigbus);
        EXPECT_EQ(f.lsb, s);
      } else {
        EXPECT_EQ(f.kind, FaultKind::retry);
      }
      EXPECT_TRUE(snap == w.env.snapshot());
    }
  }
}

TYPED_TEST(MmHgm, T22CollapseSkipsAnHstatePageWhoseSlotWasNeverAllocated) {
  HGM_PRELUDE;
  World<F> w(Policy::s1);
  hgm_setup(w);
  auto snap = w.env.snapshot();
  w.mm.reset_counters();
  EXPECT_EQ(w.mm.madvise_collapse(base, bit(H)), Err::ok);
  EXPECT_TRUE(snap == w.env.snapshot());
  EXPECT_EQ(w.c().pt_alloc_total(), 0u);
  EXPECT_EQ(w.c().entries_written, 0u);
  EXPECT_EQ(w.leaves(base, base + bit(H)), 0u);
}

// --- T23 / T24: MADV_COLLAPSE -------------------------------------------------------------------

// T23 from an hstate page mapped entirely at base pages (T18-full): one CLEAR pair over the
// range, every table below the hstate slot freed, one hstate leaf; mapcount per policy.
template <class F>
void expect_full_collapse(World<F>& w, uint32_t file, Policy pol) {
  using G = Geo<F>;
  constexpr unsigned H = G::H, hl = G::hl;
  const uint64_t base = G::base;
  ASSERT_EQ(w.census(base, base + bit(H), 0).leaves, G::N);
  uint32_t id = w.cached(file);
  EXPECT_EQ(w.mem.mapcount(id), pol == Policy::s1 ? 1u : G::N);
  EXPECT_EQ(w.mem.folio(id).refcount, pol == Policy::s1 ? 2u : 1 + G::N);
  touch(w, base, base + bit(H));
  w.mm.set_notifier(w.kvm.hook());
  w.mm.reset_counters();
  const uint64_t updates = w.mem.counters().subpage_mapcount_updates;

  ASSERT_EQ(w.mm.madvise_collapse(base, bit(H)), Err::ok);
  const Notification want{NotifyEvent::clear, base, base + bit(H)};
  EXPECT_EQ(w.c().notif_start, 1u);
  EXPECT_EQ(w.c().notif_end, 1u);
  EXPECT_EQ(w.c().notif_log[0], want);
  ASSERT_EQ(w.kvm.starts.size(), 1u);
  EXPECT_EQ(w.kvm.starts[0], want);
  ASSERT_EQ(w.kvm.ends.size(), 1u);
  EXPECT_EQ(w.kvm.ends[0], want);
  for (unsigned l = 0; l < F::levels; ++l) {
    EXPECT_EQ(w.c().pt_free[l], l < hl ? G::full_tables(l) : 0u) << "level " << l;
    EXPECT_EQ(w.c().pt_alloc[l], 0u) << "level " << l;
  }
  EXPECT_EQ(w.c().pt_free_total(), G::full_tables_total());
  auto ch = w.census(base, base + bit(H), hl);
  EXPECT_EQ(ch.leaves, G::g);
  EXPECT_EQ(ch.tables, 0u);
  EXPECT_EQ(w.env.live(), w.reachable_tables());
  EXPECT_GE(w.c().tlb_flush, 1u);
  EXPECT_EQ(stale(w), "");
  EXPECT_EQ(w.mm.view(base + bit(H) - 1).shift, H);
  EXPECT_EQ(w.check_file_map(base, base + bit(H), file), "");
  // S1: one mapping before, one after (collapse leaves it as it is). S3: every base page's
  // count comes off, the entire mapcount takes one.
  EXPECT_EQ(w.mem.mapcount(id), 1u);
  EXPECT_EQ(w.mem.folio(id).mapcount, 1u);
  EXPECT_EQ(w.mem.folio(id).subpage_total, 0u);
  EXPECT_EQ(w.mem.counters().subpage_mapcount_updates - updates, pol == Policy::s3 ? G::N : 0u);
  EXPECT_EQ(w.mem.folio(id).refcount, 2u);
}

// (Under S1, T23 runs at the end of the T18 test, after its full CONTINUE loop.)
TYPED_TEST(MmHgm, T23UnderS3CollapseTakesEveryBasePageCountOffAndTheEntireCountOnce) {
  HGM_PRELUDE;
  World<F> w(Policy::s3);
  uint32_t file = hgm_setup(w);
  // T18-full's table shape, cheaper than N CONTINUEs: the hstate leaf split to every base page.
  ASSERT_EQ(w.mm.uffd_continue(base, bit(H), 0).err, Err::ok);
  w.shatter(base, base + bit(H));
  uint64_t tables = 0;
  for (unsigned l = 1; l <= hl; ++l) tables += w.census(base, base + bit(H), l).tables;
  EXPECT_EQ(tables, G::full_tables_total());
  expect_full_collapse(w, file, Policy::s3);
}

TYPED_TEST(MmHgm, T24CollapseFillsHolesFromThePageCacheAndDropsUffdWpMarkers) {
  HGM_PRELUDE;
  constexpr unsigned M = G::M;
  const bool wp = uffd_wp_supported<F>();
  for (Policy pol : {Policy::s1, Policy::s3}) {
    SCOPED_TRACE(policy_name(pol));
    World<F> w(pol);
    uint32_t file = hgm_setup(w, 1, wp ? (kRegMinor | kRegWp) : kRegMinor);
    // Ten base pages spread over the hstate page, and uffd-wp markers on the last M piece
    // (WRITEPROTECT where the format has the bit; the huge-PTE API where it has not).
    std::vector<uint64_t> pages;
    for (uint64_t i = 0; i < 10; ++i) pages.push_back(base + ((i * (G::N / 10) + i) << P));
    for (uint64_t va : pages) ASSERT_EQ(w.mm.uffd_continue(va, bit(P), 0).err, Err::ok);
    const uint64_t mk = base + bit(H) - bit(M);
    if (wp) {
      ASSERT_EQ(w.mm.uffd_writeprotect(mk, bit(M), kWpModeWp), Err::ok);
    } else {
      Result<HugePte<F>> h = w.mm.ops().alloc(mk, M);
      ASSERT_TRUE(h.ok());
      ASSERT_EQ(w.mm.ops().set(h.value, pte::make_marker(kMarkerUffdWp)), Err::ok);
    }
    // The tables that shape holds, per level, from the geometry.
    std::vector<std::set<uint64_t>> spans(hl);
    for (unsigned l = 0; l < hl; ++l) {
      for (uint64_t va : pages) spans[l].insert(va >> F::shift(l + 1));
      if (l >= G::ml) spans[l].insert(mk >> F::shift(l + 1));
    }
    uint64_t markers = 0;
    for (unsigned l = 0; l <= hl; ++l) markers += w.census(base, base + bit(H), l).uffd_wp_markers;
    EXPECT_EQ(markers, G::gm);
    uint32_t id = w.cached(file);
    EXPECT_EQ(w.mem.mapcount(id), pol == Policy::s1 ? 1u : pages.size());
    w.mm.reset_counters();

    ASSERT_EQ(w.mm.madvise_collapse(base, bit(H)), Err::ok);
    for (unsigned l = 0; l < hl; ++l) EXPECT_EQ(w.c().pt_free[l], spans[l].size()) << "level " << l;
    EXPECT_EQ(w.c().notif_start, 1u);
    EXPECT_EQ(w.census(base, base + bit(H), hl).leaves, G::g);
    markers = 0;
    for (unsigned l = 0; l <= hl; ++l) markers += w.census(base, base + bit(H), l).markers;
    EXPECT_EQ(markers, 0u);
    EXPECT_EQ(w.leaves(base, base + bit(H)), 1u);
    EXPECT_EQ(w.check_file_map(base, base + bit(H), file), "");  // holes filled: all mapped
    EXPECT_FALSE(w.mm.view(mk).entry.soft.uffd_wp);
    EXPECT_EQ(w.env.live(), w.reachable_tables());
    EXPECT_EQ(w.mem.mapcount(id), 1u);
    EXPECT_EQ(w.mem.folio(id).refcount, 2u);
  }
}

// A present hstate leaf split to the next smaller leaf size (x86: 512 PMD leaves in a table;
// arm64 16K: the CONT-PMD group broken into 32 plain PMD leaves and no table at all) collapses
// back into one hstate leaf.
TYPED_TEST(MmHgm, T24CollapseRestoresAnHstateLeafSplitIntoTheNextSmallerSize) {
  HGM_PRELUDE;
  unsigned next = P;
  LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = 0; i < sizes.count; ++i)
    if (sizes.shift[i] < H && sizes.shift[i] > next) next = sizes.shift[i];
  for (Policy pol : {Policy::s1, Policy::s3}) {
    SCOPED_TRACE(policy_name(pol));
    World<F> w(pol);
    uint32_t file = hgm_setup(w);
    ASSERT_EQ(w.mm.uffd_continue(base, bit(H), 0).err, Err::ok);
    ASSERT_EQ(w.mm.split_leaf(base, next), Err::ok);
    ASSERT_EQ(w.mm.view(base).shift, next);  // (a contiguous size only along the chain to base)
    ASSERT_GT(w.leaves(base, base + bit(H)), 1u);
    uint32_t id = w.cached(file);
    EXPECT_EQ(w.mem.mapcount(id), pol == Policy::s1 ? 1u : G::N);
    touch(w, base, base + bit(H));
    w.mm.reset_counters();
    EXPECT_EQ(w.mm.madvise_collapse(base, bit(H)), Err::ok);
    EXPECT_EQ(w.c().notif_start, 1u);
    EXPECT_EQ(w.mm.view(base).shift, H);
    EXPECT_EQ(w.leaves(base, base + bit(H)), 1u);
    EXPECT_EQ(w.census(base, base + bit(H), hl).leaves, G::g);
    EXPECT_EQ(w.env.live(), w.reachable_tables());
    EXPECT_EQ(w.check_file_map(base, base + bit(H), file), "");
    EXPECT_EQ(stale(w), "");
    EXPECT_EQ(w.mem.mapcount(id), 1u);
    EXPECT_EQ(w.mem.folio(id).refcount, 2u);
  }
}

TYPED_TEST(MmHgm, T24CollapseSkipsAPoisonedHstatePageAndCollapsesTheRest) {
  HGM_PRELUDE;
  World<F> w(Policy::s1);
  uint32_t file = hgm_setup(w, 2);
  const uint64_t second = base + bit(H);
  for (uint64_t va : {base + bit(P), second + 3 * bit(P)})
    ASSERT_EQ(w.mm.uffd_continue(va, bit(P), 0).err, Err::ok);
  Folio& bad = w.mem.folio(w.cached(file, 1));
  bad.hwpoison = true;
  bad.poisoned_pa = bad.pa + 5 * bit(P);
  w.mm.reset_counters();
  EXPECT_EQ(w.mm.madvise_collapse(base, 2 * bit(H)), Err::ehwpoison);
  EXPECT_EQ(w.c().notif_start, 1u);
  EXPECT_EQ(w.census(base, second, hl).leaves, G::g);           // collapsed
  EXPECT_EQ(w.census(second, second + bit(H), hl).tables, 1u);  // left as it was
  EXPECT_EQ(w.leaves(second, second + bit(H)), 1u);
  EXPECT_TRUE(pte::present(w.mm.view(second + 3 * bit(P)).entry));
  EXPECT_EQ(w.c().pt_free_total(), hl);  // the first page's table chain only
  EXPECT_EQ(w.check_file_map(base, base + 2 * bit(H), file), "");
}

TYPED_TEST(MmHgm, T24CollapseRefusesAMigratingFolioAndPrivateMappingsAndIgnoresNonHgmOnes) {
  HGM_PRELUDE;
  {  // a folio being migrated: EBUSY, nothing changed, no notifier
    World<F> w(Policy::s1);
    uint32_t file = hgm_setup(w);
    ASSERT_EQ(w.mm.uffd_continue(base + bit(P), bit(P), 0).err, Err::ok);
    w.mem.folio(w.cached(file)).migrating = true;
    auto snap = w.env.snapshot();
    w.mm.reset_counters();
    EXPECT_EQ(w.mm.madvise_collapse(base, bit(H)), Err::ebusy);
    EXPECT_TRUE(snap == w.env.snapshot());
    EXPECT_EQ(w.c().notif_start, 0u);
    EXPECT_EQ(w.c().pt_free_total(), 0u);
  }
  {  // a private mapping: EINVAL (and it cannot get HGM either)
    World<F> w(Policy::s1);
    uint32_t file = w.file(1);
    ASSERT_EQ(w.map(base, file, 1, /*shared=*/false), Err::ok);
    EXPECT_EQ(w.mm.madvise_split(base, bit(H)), Err::einval);
    ASSERT_TRUE(w.mm.handle_fault(base, Access::read).handled());
    auto snap = w.env.snapshot();
    w.mm.reset_counters();
    EXPECT_EQ(w.mm.madvise_collapse(base, bit(H)), Err::einval);
    EXPECT_TRUE(snap == w.env.snapshot());
    EXPECT_EQ(w.c().notif_start, 0u);
  }
  {  // a shared mapping without HGM: ok, nothing done
    World<F> w(Policy::s1);
    hgm_setup(w, 1, kRegMinor, /*split=*/false);
    ASSERT_EQ(w.mm.uffd_continue(base, bit(H), 0).err, Err::ok);
    EXPECT_EQ(w.mm.uffd_continue(base + bit(P), bit(P), 0).err, Err::einval);  // not hstate aligned
    auto snap = w.env.snapshot();
    w.mm.reset_counters();
    EXPECT_EQ(w.mm.madvise_collapse(base, bit(H)), Err::ok);
    EXPECT_TRUE(snap == w.env.snapshot());
    EXPECT_EQ(w.c().notif_start, 0u);
    EXPECT_EQ(w.c().tlb_flush, 0u);
  }
  {  // S0, today's kernel: no HGM at all
    World<F> w(Policy::s0);
    uint32_t file = w.file(1);
    ASSERT_EQ(w.map(base, file, 1), Err::ok);
    EXPECT_EQ(w.mm.madvise_split(base, bit(H)), Err::einval);
    ASSERT_TRUE(w.mm.handle_fault(base, Access::read).handled());
    auto snap = w.env.snapshot();
    EXPECT_EQ(w.mm.split_leaf(base + bit(P), P), Err::einval);
    EXPECT_EQ(w.mm.madvise_collapse(base, bit(H)), Err::ok);
    EXPECT_TRUE(snap == w.env.snapshot());
  }
}

// --- T25: present-leaf split
// ------------------------------------------------------------------------

TYPED_TEST(MmHgm, T25SplittingAPresentHstateLeafKeepsEverythingMappedUnderOneInvalidatePair) {
  HGM_PRELUDE;
  for (Policy pol : {Policy::s1, Policy::s3}) {
    SCOPED_TRACE(policy_name(pol));
    World<F> w(pol);
    uint32_t file = w.file(1);
    ASSERT_EQ(w.map(base, file, 1), Err::ok);
    ASSERT_EQ(w.mm.handle_fault(base, Access::write).kind, FaultKind::handled);  // writable, dirty
    uint32_t id = w.cached(file);
    ASSERT_EQ(w.mm.view(base).shift, H);
    EXPECT_EQ(w.mem.mapcount(id), 1u);
    touch(w, base, base + bit(H));
    w.mm.set_notifier(w.kvm.hook());
    w.mm.reset_counters();
    const uint64_t updates = w.mem.counters().subpage_mapcount_updates;

    const uint64_t x = base + bit(H) / 2 + 3 * bit(P);
    ASSERT_EQ(w.mm.split_leaf(x, P), Err::ok);
    const Notification want{NotifyEvent::clear, base, base + bit(H)};
    EXPECT_EQ(w.c().notif_start, 1u);
    EXPECT_EQ(w.c().notif_end, 1u);
    EXPECT_EQ(w.c().notif_log[0], want);
    ASSERT_EQ(w.kvm.starts.size(), 1u);
    EXPECT_EQ(w.kvm.starts[0], want);
    for (unsigned l = 0; l < F::levels; ++l)
      EXPECT_EQ(w.c().pt_alloc[l], l < hl ? 1u : 0u) << "level " << l;
    EXPECT_EQ(w.c().pt_free_total(), 0u);
    // Leaves per level: the other entries of every level on the way stay mapped at that level.
    auto ch = w.census(base, base + bit(H), hl);
    EXPECT_EQ(ch.leaves, G::g - 1);
    EXPECT_EQ(ch.tables, 1u);
    for (unsigned l = 1; l < hl; ++l) {
      auto c = w.census(base, base + bit(H), l);
      EXPECT_EQ(c.leaves, G::entries(l) - 1) << "level " << l;
      EXPECT_EQ(c.tables, 1u) << "level " << l;
    }
    EXPECT_EQ(w.census(base, base + bit(H), 0).leaves, G::entries(0));
    EXPECT_EQ(w.leaves(base, base + bit(H)), G::split_leaves());
    EXPECT_EQ(w.mm.view(x).shift, P);
    EXPECT_EQ(w.check_file_map(base, base + bit(H), file), "");
    uint64_t bad = 0;
    w.each(base, base + bit(H), [&](uint64_t, const typename World<F>::MmT::View& v) {
      bad += !(pte::present(v.entry) && v.entry.writable && v.entry.dirty && !v.entry.soft.uffd_wp);
    });
    EXPECT_EQ(bad, 0u) << "leaves that lost write or dirty";
    EXPECT_EQ(stale(w), "");
    EXPECT_TRUE(w.mm.vma_at(base)->hgm);  // the VMA now has HGM
    // S1: still one mapping of the hstate slot. S3: the entire count moves to every base page.
    if (pol == Policy::s1) {
      EXPECT_EQ(w.mem.mapcount(id), 1u);
      EXPECT_EQ(w.mem.folio(id).refcount, 2u);
    } else {
      const Folio& f = w.mem.folio(id);
      EXPECT_EQ(f.mapcount, 0u);
      EXPECT_EQ(f.subpage_total, G::N);
      uint64_t ones = 0;
      for (uint64_t i = 0; f.subpage && i < G::N; ++i) ones += f.subpage[i] == 1;
      EXPECT_EQ(ones, G::N);
      EXPECT_EQ(w.mem.counters().subpage_mapcount_updates - updates, G::N);
      EXPECT_EQ(f.refcount, 1 + G::split_leaves());
    }
  }
}

TYPED_TEST(MmHgm, T25SplitKeepsTheUffdWpBitOfEveryPiece) {
  HGM_PRELUDE;
  World<F> w(Policy::s1);
  if (!uffd_wp_supported<F>()) {  // no uffd-wp bit in the format's leaves: WP registration refused
    hgm_setup(w, 1, 0);
    EXPECT_EQ(w.mm.uffd_register(base, bit(H), kRegWp).err, Err::einval);
    return;
  }
  hgm_setup(w, 1, kRegMinor | kRegWp);
  ASSERT_EQ(w.mm.uffd_continue(base, bit(H), kModeWp).err, Err::ok);
  ASSERT_TRUE(w.mm.view(base).entry.soft.uffd_wp);
  ASSERT_EQ(w.mm.split_leaf(base + 7 * bit(P), P), Err::ok);
  uint64_t bad = 0, n = 0;
  w.each(base, base + bit(H), [&](uint64_t, const typename World<F>::MmT::View& v) {
    ++n;
    bad += !(pte::present(v.entry) && v.entry.soft.uffd_wp && !v.entry.writable);
  });
  EXPECT_EQ(n, G::split_leaves());
  EXPECT_EQ(bad, 0u) << "pieces that lost uffd-wp";
  FaultResult f = w.mm.handle_fault(base + bit(H) - 1, Access::write);
  EXPECT_EQ(f.kind, FaultKind::uffd);
  EXPECT_EQ(f.msg.flags, kMsgWp | kMsgWrite);
}

TYPED_TEST(MmHgm, T25SplitErrorsLeaveTheTablesAsTheyWere) {
  HGM_PRELUDE;
  World<F> w(Policy::s1);
  uint32_t file = hgm_setup(w, 2);
  auto snap = w.env.snapshot();
  EXPECT_EQ(w.mm.split_leaf(base, P), Err::eagain);  // nothing mapped
  EXPECT_TRUE(snap == w.env.snapshot());
  ASSERT_EQ(w.mm.uffd_continue(base, bit(H), 0).err, Err::ok);
  snap = w.env.snapshot();
  EXPECT_EQ(w.mm.split_leaf(base, H), Err::einval);      // not smaller than the leaf
  EXPECT_EQ(w.mm.split_leaf(base, P + 1), Err::einval);  // not a leaf size
  EXPECT_EQ(w.mm.split_leaf(G::third, P), Err::einval);  // no VMA
  EXPECT_TRUE(snap == w.env.snapshot());
  for (uint32_t type : {kSwpHwpoison, kSwpMigrationRead}) {
    Result<HugePte<F>> h = w.mm.ops().alloc(base + bit(H), H);
    ASSERT_TRUE(h.ok());
    ASSERT_EQ(w.mm.ops().set(h.value, pte::swp_entry(type, w.cached_pa(file, 1) >> P)), Err::ok);
    snap = w.env.snapshot();
    EXPECT_EQ(w.mm.split_leaf(base + bit(H), P),
              type == kSwpHwpoison ? Err::ehwpoison : Err::ebusy);
    EXPECT_TRUE(snap == w.env.snapshot());
  }
  w.env.fail_nth_alloc(1);
  snap = w.env.snapshot();
  w.mm.reset_counters();
  EXPECT_EQ(w.mm.split_leaf(base, P), Err::enomem);
  w.env.fail_nth_alloc(0);
  EXPECT_TRUE(snap == w.env.snapshot());
  EXPECT_EQ(w.mem.mapcount(w.cached(file)), 1u);
}

// --- T26: mapcount under two mappings of one folio ---------------------------------------------

// P maps the folio at base pages over its whole extent, A maps it whole. Run on the 2M-class
// hstate on every format (arm64 16K/64K: a CONT-PTE hstate), and on the 1G-class one where it has
// at most 2^16 base pages (16K and 64K granules), to stay within the time budget; the numbers
// come from the hstate's geometry either way.
TYPED_TEST(MmHgm, T26MapcountOfAFolioMappedAtBasePagesByOneVmaAndWholeByAnother) {
  HGM_PRELUDE;
  const uint64_t a = G::alias;
  for (unsigned hs : {G::M, H}) {
    if (hs == H && G::N > (uint64_t{1} << 16)) continue;
    const uint64_t n = bit(hs - P);
    for (Policy pol : {Policy::s1, Policy::s3}) {
      SCOPED_TRACE(::testing::Message() << policy_name(pol) << ", hstate 2^" << hs);
      World<F> w(pol);
      uint32_t file = w.file(1, true, hs);
      ASSERT_EQ(w.map(base, file, 1), Err::ok);  // P
      ASSERT_EQ(w.map(a, file, 1), Err::ok);     // A
      ASSERT_EQ(w.mm.madvise_split(base, bit(hs)), Err::ok);
      ASSERT_EQ(w.mm.handle_fault(a, Access::read).kind, FaultKind::handled);
      ASSERT_EQ(w.mm.handle_fault(base, Access::read).kind, FaultKind::handled);
      ASSERT_EQ(w.mm.view(base).shift, hs);
      w.shatter(base, base + bit(hs));
      ASSERT_EQ(w.census(base, base + bit(hs), 0).leaves, n);
      ASSERT_EQ(w.mm.view(a).shift, hs);
      EXPECT_EQ(w.check_file_map(base, base + bit(hs), file), "");
      uint32_t id = w.cached(file);
      const bool s3 = pol == Policy::s3;
      // S1: one per mapping. S3: every base page once (P) plus the entire mapping (A).
      EXPECT_EQ(w.mem.mapcount(id), s3 ? n + 1 : 2u);
      EXPECT_EQ(w.mem.folio(id).refcount, s3 ? 1 + n + 1 : 3u);

      ASSERT_EQ(w.mm.madvise_dontneed(base, bit(hs) / 2), Err::ok);
      EXPECT_EQ(w.mem.mapcount(id), s3 ? n / 2 + 1 : 2u);
      EXPECT_EQ(w.mem.folio(id).refcount, s3 ? 1 + n / 2 + 1 : 3u);
      ASSERT_EQ(w.mm.madvise_dontneed(base + bit(hs) / 2, bit(hs) / 2), Err::ok);
      EXPECT_EQ(w.mem.mapcount(id), 1u);
      EXPECT_EQ(w.mem.folio(id).refcount, 2u);
      EXPECT_EQ(w.leaves(base, base + bit(hs)), 0u);
      EXPECT_EQ(w.mm.view(a).shift, hs);
    }
  }
}

// --- property: random HGM sequences against a page model
// -------------------------------------------

// One bit per base page, with word-at-a-time range operations (the Debug build checks every page
// of an hstate after every step).
class PageBits {
 public:
  explicit PageBits(uint64_t n) : w_((n + 63) / 64, 0), n_(n) {}
  bool operator[](uint64_t i) const { return (w_[i >> 6] >> (i & 63)) & 1; }
  void set(uint64_t first, uint64_t count, bool v) {
    uint64_t* w = w_.data();
    for (uint64_t i = first, end = first + count < n_ ? first + count : n_; i < end;) {
      if ((i & 63) == 0 && end - i >= 64) {
        w[i >> 6] = v ? ~uint64_t{0} : 0;
        i += 64;
      } else {
        w[i >> 6] = v ? (w[i >> 6] | bit(i & 63)) : (w[i >> 6] & ~bit(i & 63));
        ++i;
      }
    }
  }
  // The first page in [first, first + count) whose bit is not v, or ~0.
  uint64_t differs(uint64_t first, uint64_t count, bool v) const {
    const uint64_t* w = w_.data();
    const uint64_t want = v ? ~uint64_t{0} : 0;
    for (uint64_t i = first, end = first + count; i < end;) {
      if ((i & 63) == 0 && end - i >= 64) {
        if (w[i >> 6] != want) return i + static_cast<uint64_t>(__builtin_ctzll(w[i >> 6] ^ want));
        i += 64;
      } else {
        if (((w[i >> 6] >> (i & 63)) & 1) != static_cast<uint64_t>(v)) return i;
        ++i;
      }
    }
    return ~uint64_t{0};
  }
  bool any(uint64_t first, uint64_t count) const {
    return differs(first, count, false) != ~uint64_t{0};
  }
  uint64_t count() const {
    uint64_t n = 0;
    for (const uint64_t *w = w_.data(), *e = w + w_.size(); w != e; ++w)
      n += static_cast<uint64_t>(__builtin_popcountll(*w));
    return n;
  }

 private:
  std::vector<uint64_t> w_;
  uint64_t n_;
};

// One HGM VMA P over one hstate page (registered MISSING only, so faults map the cached pages
// directly and CONTINUE is allowed). The model: page -> mapped or not; a mapped page always maps
// file offset == its offset in P.
template <class F>
class HgmProperty {
 public:
  using G = Geo<F>;
  using View = typename World<F>::MmT::View;
  static constexpr unsigned P = G::P, H = G::H, M = G::M, hl = G::hl;
  static constexpr uint64_t base = G::base;

  HgmProperty(Policy pol, uint64_t seed) : pol_(pol), w_(pol), rng_{seed}, model_(G::N) {
    file_ = hgm_setup(w_, 1, kRegMissing);
    id_ = w_.cached(file_);
  }

  void run(unsigned steps) {
    for (step_ = 0; step_ < steps && !::testing::Test::HasFatalFailure(); ++step_) {
      for (unsigned k = 0; k < 4; ++k)
        (void)w_.tlb.access(w_.mm.table(), base + (rng_.below(G::N) << P));
      if (step_ % 16 == 15) w_.tlb.flush_all();
      std::string what = one_step();
      SCOPED_TRACE(::testing::Message() << "step " << step_ << ": " << what);
      check();
      if (::testing::Test::HasFailure()) return;
    }
  }

 private:
  uint64_t page_of(uint64_t va) const { return (va - base) >> P; }
  void set(uint64_t first, uint64_t count, bool v) { model_.set(first, count, v); }
  bool any(uint64_t first, uint64_t count) const { return model_.any(first, count); }
  // The hstate slot is mapped through pieces (tables under it, or present leaves smaller than
  // the hstate in its entries): what MADV_COLLAPSE collapses.
  bool split_below() const {
    auto c = w_.census(base, base + bit(H), hl);
    if (c.tables) return true;
    bool small = false;
    w_.each(base, base + bit(H), [&](uint64_t, const View& v) {
      small = small || (pte::present(v.entry) && v.shift < H);
    });
    return small;
  }
  // The size a missing fault at va maps (the none slot the walk stops at; the whole hstate when
  // nothing at all is under its slot).
  unsigned fault_shift(uint64_t va) const {
    View v = w_.mm.view(va);
    if (v.level < hl) return F::shift(v.level);
    if (v.level > hl) return H;
    auto c = w_.census(base, base + bit(H), hl);
    return c.none == G::g ? H : F::shift(hl);
  }

  std::string one_step() {
    char buf[128];
    // The tables before the step, where it must leave them as they were.
    std::vector<std::pair<uint64_t, std::vector<uint64_t>>> snap;
    switch (rng_.below(7)) {
      case 0: {  // CONTINUE one base page
        uint64_t i = rng_.below(G::N);
        std::snprintf(buf, sizeof buf, "CONTINUE page %llu", static_cast<unsigned long long>(i));
        if (model_[i]) snap = w_.env.snapshot();
        UffdResult r = w_.mm.uffd_continue(base + (i << P), bit(P), 0);
        if (model_[i]) {
          EXPECT_EQ(r.err, Err::eexist) << buf;
          EXPECT_TRUE(snap == w_.env.snapshot()) << buf;
        } else {
          EXPECT_EQ(r.err, Err::ok) << buf;
          EXPECT_EQ(r.done, bit(P)) << buf;
          set(i, 1, true);
        }
        return buf;
      }
      case 1: {  // CONTINUE one M piece (or, now and then, the whole hstate page)
        const bool whole = rng_.below(8) == 0;
        const unsigned s = whole ? H : M;
        uint64_t va = whole ? base : base + (rng_.below(bit(H - M)) << M);
        std::snprintf(buf, sizeof buf, "CONTINUE 2^%u at page %llu", s,
                      static_cast<unsigned long long>(page_of(va)));
        const unsigned sl = huge_size<F>(s).value.level;
        const bool tables_there = sl > 0 && w_.census(va, va + bit(s), sl).tables != 0;
        const bool busy = any(page_of(va), bit(s - P)) || tables_there;
        if (busy) snap = w_.env.snapshot();
        UffdResult r = w_.mm.uffd_continue(va, bit(s), 0);
        if (busy) {
          EXPECT_EQ(r.err, Err::eexist) << buf;
          EXPECT_TRUE(snap == w_.env.snapshot()) << buf;
        } else {
          EXPECT_EQ(r.err, Err::ok) << buf;
          EXPECT_EQ(w_.mm.view(va).shift, s) << buf;
          set(page_of(va), bit(s - P), true);
        }
        return buf;
      }
      case 2: {  // MADV_DONTNEED of a few pages or of an M piece, anywhere
        uint64_t first = rng_.below(G::N);
        uint64_t count = rng_.below(2) ? 1 + rng_.below(3 * bit(M - P)) : bit(M - P);
        if (first + count > G::N) count = G::N - first;
        std::snprintf(buf, sizeof buf, "DONTNEED pages %llu+%llu",
                      static_cast<unsigned long long>(first),
                      static_cast<unsigned long long>(count));
        EXPECT_EQ(w_.mm.madvise_dontneed(base + (first << P), count << P), Err::ok) << buf;
        set(first, count, false);
        return buf;
      }
      case 3: {  // split_leaf to a random smaller size
        uint64_t i = rng_.below(G::N);
        View v = w_.mm.view(base + (i << P));
        LeafSizes<F> sizes = leaf_sizes<F>();
        unsigned t = P;
        if (pte::present(v.entry)) {
          unsigned n = 0;
          for (unsigned k = 0; k < sizes.count; ++k) n += sizes.shift[k] < v.shift;
          if (n) t = sizes.shift[rng_.below(n)];
        }
        std::snprintf(buf, sizeof buf, "split_leaf page %llu (2^%u) to 2^%u",
                      static_cast<unsigned long long>(i), v.shift, t);
        if (!model_[i] || t >= v.shift) snap = w_.env.snapshot();
        Err e = w_.mm.split_leaf(base + (i << P), t);
        EXPECT_EQ(e, !model_[i] ? Err::eagain : t >= v.shift ? Err::einval : Err::ok) << buf;
        if (e != Err::ok) {
          EXPECT_TRUE(snap == w_.env.snapshot()) << buf;
        } else {
          EXPECT_EQ(w_.mm.view(base + (i << P)).shift, t) << buf;
        }
        return buf;
      }
      case 4: {  // MADV_COLLAPSE of the whole VMA
        std::snprintf(buf, sizeof buf, "COLLAPSE");
        const bool pieces = split_below();
        if (!pieces) snap = w_.env.snapshot();
        EXPECT_EQ(w_.mm.madvise_collapse(base, bit(H)), Err::ok);
        if (pieces) {
          set(0, G::N, true);  // holes filled from the page cache
          EXPECT_EQ(w_.mm.view(base).shift, H);
        } else {
          EXPECT_TRUE(snap == w_.env.snapshot());
        }
        return buf;
      }
      default: {  // a read or write fault anywhere
        uint64_t va = base + rng_.below(bit(H));
        Access acc = rng_.below(2) ? Access::write : Access::read;
        uint64_t i = page_of(va);
        std::snprintf(buf, sizeof buf, "%s fault page %llu", access_name(acc),
                      static_cast<unsigned long long>(i));
        unsigned s = model_[i] ? 0 : fault_shift(va);
        FaultResult f = w_.mm.handle_fault(va, acc);
        EXPECT_EQ(f.kind, FaultKind::handled) << buf;
        if (s) {
          EXPECT_EQ(f.shift, s) << buf;
          set(page_of(align_down(va, s)), bit(s - P), true);
        }
        return buf;
      }
    }
  }

  void check() {
    // Every entry of P agrees with the model over its whole extent.
    std::string why;
    uint64_t leaves = 0;
    w_.each(base, base + bit(H), [&](uint64_t va, const View& v) {
      uint64_t first = page_of(align_down(va, v.shift) < base ? base : align_down(va, v.shift));
      uint64_t count = v.shift >= H ? G::N : bit(v.shift - P);
      bool present = pte::present(v.entry);
      leaves += present;
      uint64_t k = why.empty() ? model_.differs(first, count, present) : ~uint64_t{0};
      if (k != ~uint64_t{0})
        why = "page " + std::to_string(k) + (present ? " mapped" : " not mapped") +
              " against the model";
      if (present && why.empty() &&
          host::leaf_pa(v.entry, va) != w_.mem.folio(id_).pa + (va - base))
        why = "page " + std::to_string(page_of(va)) + " maps another file offset";
    });
    EXPECT_EQ(why, "");
    // No table page leaks.
    EXPECT_EQ(w_.env.live(), w_.reachable_tables());
    // Mapcount and references as the policy says for what is mapped.
    const uint64_t mapped = model_.count();
    const Folio& f = w_.mem.folio(id_);
    if (pol_ == Policy::s1) {
      EXPECT_EQ(w_.mem.mapcount(id_), mapped ? 1u : 0u);
      EXPECT_EQ(f.refcount, mapped ? 2u : 1u);
    } else {
      const bool whole = leaves == 1 && w_.mm.view(base).shift == H;
      EXPECT_EQ(f.mapcount, whole ? 1u : 0u);
      EXPECT_EQ(f.subpage_total, whole ? 0u : mapped);
      EXPECT_EQ(f.refcount, 1 + leaves);
    }
    EXPECT_EQ(w_.c().uffd_msgs, 0u);
    // The TLB holds nothing the tables no longer allow.
    EXPECT_EQ(stale(w_), "");
  }

  Policy pol_;
  World<F> w_;
  hpt::Rng rng_;
  uint32_t file_ = 0, id_ = 0;
  PageBits model_;
  unsigned step_ = 0;
};

TYPED_TEST(MmHgm, PropertyRandomContinueDontneedSplitCollapseAndFaultsAgreeWithAPageModel) {
  HGM_PRELUDE;
  const uint64_t seed = env_u64("HPT_HGM_SEED", 0x48474d31ull);
  const unsigned steps = static_cast<unsigned>(env_u64("HPT_HGM_STEPS", 48));
  for (Policy pol : {Policy::s1, Policy::s3}) {
    const uint64_t s = seed + (pol == Policy::s3);
    SCOPED_TRACE(::testing::Message()
                 << policy_name(pol) << ", seed " << s << " (HPT_HGM_SEED to replay)");
    HgmProperty<F> prop(pol, s);
    prop.run(steps);
    if (::testing::Test::HasFailure())
      std::printf("hgm property test failed with HPT_HGM_SEED=%llu\n",
                  static_cast<unsigned long long>(s));
  }
}

// A sink that records each invalidation and how many table pages had been freed by then.
template <class Env>
struct TableFreesAtFlush {
  const Env* env = nullptr;
  std::vector<TlbFlush> flushes;
  std::vector<uint64_t> freed;  // table pages freed before each flush
  void flush(const TlbFlush& f) {
    flushes.push_back(f);
    uint64_t n = 0;
    for (unsigned l = 0; l < Env::kMaxLevels; ++l) n += env->frees(l);
    freed.push_back(n);
  }
  void flush_all() {}
  void publish() {}
};

// MADV_COLLAPSE gives the tables under the hstate slot back only after an invalidation of the
// walk caches over the slot (free_pgtables: unlink, flush, free), through the commit path
// (docs/design.md, rule 8).
TYPED_TEST(MmHgm, CollapseFreesTheTablesBelowTheSlotOnlyAfterAWalkCacheInvalidation) {
  HGM_PRELUDE;
  using Env = host::EnvFor<F>;
  Env env;
  host::Folios folios(World<F>::kFolioBase64G);
  typename World<F>::Mem mem(folios, 64, Policy::s1);
  ASSERT_EQ(mem.set_pool(H, 1), Err::ok);
  TableFreesAtFlush<Env> sink{&env, {}, {}};
  Mm<F, Env, TableFreesAtFlush<Env>, host::Folios> mm(mem, env, sink);
  ASSERT_EQ(mm.init(), Err::ok);
  Result<uint32_t> file = mem.create_file(FileKind::hugetlb, H, bit(H));
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(mem.fallocate(file.value, 0, bit(H)), Err::ok);
  VmaSpec spec;
  spec.start = base;
  spec.len = bit(H);
  spec.prot = kProtRW;
  spec.shared = true;
  spec.backing = Backing::file;
  spec.file = file.value;
  ASSERT_TRUE(mm.mmap(spec).ok());
  ASSERT_EQ(mm.madvise_split(base, bit(H)), Err::ok);
  ASSERT_EQ(mm.uffd_api(kFeatures), Err::ok);
  ASSERT_TRUE(mm.uffd_register(base, bit(H), kRegMinor).ok());
  ASSERT_EQ(mm.uffd_continue(base, bit(P), 0).err, Err::ok);  // tables below the slot
  uint64_t before = 0;
  for (unsigned l = 0; l < Env::kMaxLevels; ++l) before += env.frees(l);
  sink.flushes.clear();
  sink.freed.clear();

  ASSERT_EQ(mm.madvise_collapse(base, bit(H)), Err::ok);
  uint64_t after = 0;
  for (unsigned l = 0; l < Env::kMaxLevels; ++l) after += env.frees(l);
  EXPECT_EQ(after - before, hl) << "one table per level below the hstate slot";
  bool walks_flushed = false;
  for (std::size_t i = 0; i < sink.flushes.size(); ++i) {
    const TlbFlush& f = sink.flushes[i];
    if (f.leaf_only || f.start > base || f.end < base + bit(H)) continue;
    walks_flushed = true;
    EXPECT_EQ(sink.freed[i], before) << "a table was freed before the walk caches were invalidated";
    break;
  }
  EXPECT_TRUE(walks_flushed) << "no walk-cache invalidation over the slot";
  EXPECT_EQ(mm.view(base).shift, H);
}

}  // namespace
