// mm_hwpoison_test.cpp - memory failure on one base page of a mapped hugetlb folio (docs/mm.md
// §4, §5 T36, T37): H0 turns every mapping's hstate entry into a hwpoison entry,
// H1 splits each mapping (HGM) and loses only that page. Typed over every format; numbers from
// the format's geometry (mm_world.hpp).
#include <gtest/gtest.h>

#include "mm_world.hpp"

namespace {

using namespace mm_world;  // NOLINT(google-build-using-namespace): test file

template <class F>
class MmHwpoison : public ::testing::Test {
 protected:
  using G = Geo<F>;
  void SetUp() override {
    if constexpr (G::H == 0) GTEST_SKIP() << "no leaf size between the base page and 2^30";
    if constexpr (G::M == 0) GTEST_SKIP() << "no leaf size between the base page and 2^21";
  }
};
TYPED_TEST_SUITE(MmHwpoison, Formats, hpt_typed::FormatName);

// --- T36 / T37: memory failure
// --------------------------------------------------------------------

TYPED_TEST(MmHwpoison, T36H0PoisonTurnsEveryMappingOfTheFolioIntoOneHwpoisonEntry) {
  HGM_PRELUDE;
  const uint64_t a = G::alias;
  for (Policy pol : {Policy::s0, Policy::s1, Policy::s3}) {
    SCOPED_TRACE(policy_name(pol));
    World<F> w(pol, PoisonPolicy::h0);
    uint32_t file = w.file(1);
    ASSERT_EQ(w.map(base, file, 1), Err::ok);  // P: HGM with a few base pages where allowed
    ASSERT_EQ(w.map(a, file, 1), Err::ok);     // A: the whole hstate page
    ASSERT_EQ(w.mm.uffd_api(kFeatures), Err::ok);
    const bool hgm = pol != Policy::s0;
    if (hgm) {
      ASSERT_EQ(w.mm.madvise_split(base, bit(H)), Err::ok);
      ASSERT_TRUE(w.mm.uffd_register(base, bit(H), kRegMinor).ok());
      for (uint64_t i : {1u, 2u, 9u})
        ASSERT_EQ(w.mm.uffd_continue(base + (i << P), bit(P), 0).err, Err::ok);
    } else {
      ASSERT_TRUE(w.mm.handle_fault(base, Access::read).handled());
    }
    ASSERT_TRUE(w.mm.handle_fault(a, Access::write).handled());
    touch(w, base, base + bit(H));
    touch(w, a, a + bit(H));
    const uint32_t id = w.cached(file);
    const uint64_t r = G::N / 2 + 3;  // the raw page hit
    w.mm.reset_counters();

    Result<uint64_t> n = w.mm.memory_failure(w.cached_pa(file) + (r << P) + 8);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n.value, 2u);
    EXPECT_EQ(w.c().notif_start, 2u);
    EXPECT_EQ(w.c().notif_end, 2u);
    EXPECT_EQ(w.c().notif_log[0], (Notification{NotifyEvent::clear, base, base + bit(H)}));
    EXPECT_EQ(w.c().notif_log[1], (Notification{NotifyEvent::clear, a, a + bit(H)}));
    for (unsigned l = 0; l < hl; ++l) EXPECT_EQ(w.c().pt_alloc[l], 0u) << "level " << l;
    EXPECT_EQ(w.c().pt_free_total(), hgm ? hl : 0u);  // P's tables went with its pieces
    for (uint64_t v : {base, a}) {
      auto ch = w.census(v, v + bit(H), hl);
      EXPECT_EQ(ch.swap, G::g);
      EXPECT_EQ(ch.leaves + ch.tables, 0u);
      EXPECT_TRUE(pte::is_hwpoison(w.mm.view(v).entry));
      for (uint64_t k : {uint64_t{0}, r, G::N - 1})
        for (Access acc : {Access::read, Access::write}) {
          FaultResult f = w.mm.handle_fault(v + (k << P), acc);
          EXPECT_EQ(f.kind, FaultKind::sigbus);
          EXPECT_EQ(f.lsb, H);
        }
    }
    EXPECT_EQ(stale(w), "");
    EXPECT_EQ(w.env.live(), w.reachable_tables());
    // The folio stays in the page cache, marked; a new mapping of it gets SIGBUS too.
    EXPECT_EQ(w.cached(file), id);
    EXPECT_TRUE(w.mem.folio(id).hwpoison);
    EXPECT_EQ(w.mem.folio(id).poisoned_pa, w.cached_pa(file) + (r << P));
    EXPECT_EQ(w.mem.mapcount(id), 0u);
    EXPECT_EQ(w.mem.folio(id).refcount, 2u);  // the page cache's and memory failure's own
    ASSERT_EQ(w.map(G::third, file, 1), Err::ok);
    FaultResult f = w.mm.handle_fault(G::third + bit(P), Access::read);
    EXPECT_EQ(f.kind, FaultKind::sigbus);
    EXPECT_EQ(f.lsb, H);
  }
}

TYPED_TEST(MmHwpoison, T37H1PoisonSplitsEachMappingAndLosesOnlyTheRawPage) {
  HGM_PRELUDE;
  const uint64_t a = G::alias;
  for (Policy pol : {Policy::s1, Policy::s3}) {
    SCOPED_TRACE(policy_name(pol));
    World<F> w(pol, PoisonPolicy::h1);
    uint32_t file = w.file(1);
    ASSERT_EQ(w.map(base, file, 1), Err::ok);
    ASSERT_EQ(w.map(a, file, 1), Err::ok);
    ASSERT_TRUE(w.mm.handle_fault(base, Access::write).handled());
    ASSERT_TRUE(w.mm.handle_fault(a, Access::read).handled());
    touch(w, base, base + bit(H));
    touch(w, a, a + bit(H));
    const uint32_t id = w.cached(file);
    const uint64_t r = G::N / 2 + 3;
    w.mm.set_notifier(w.kvm.hook());
    w.mm.reset_counters();

    Result<uint64_t> n = w.mm.memory_failure(w.cached_pa(file) + (r << P));
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n.value, 2u);
    // Per mapping: the split (one pair over the hstate page), then the raw page's unmap.
    EXPECT_EQ(w.c().notif_start, 4u);
    EXPECT_EQ(w.c().notif_end, 4u);
    uint64_t i = 0;
    for (uint64_t v : {base, a}) {
      EXPECT_EQ(w.c().notif_log[i++], (Notification{NotifyEvent::clear, v, v + bit(H)}));
      EXPECT_EQ(w.c().notif_log[i++],
                (Notification{NotifyEvent::clear, v + (r << P), v + (r << P) + bit(P)}));
    }
    EXPECT_EQ(w.kvm.starts.size(), 4u);
    for (unsigned l = 0; l < F::levels; ++l)
      EXPECT_EQ(w.c().pt_alloc[l], l < hl ? 2u : 0u) << "level " << l;
    for (uint64_t v : {base, a}) {
      SCOPED_TRACE(v == base ? "P" : "A");
      auto c0 = w.census(v, v + bit(H), 0);
      EXPECT_EQ(c0.swap, 1u);
      EXPECT_EQ(c0.leaves, G::entries(0) - 1);
      EXPECT_EQ(w.leaves(v, v + bit(H)), G::split_leaves() - 1);
      EXPECT_TRUE(pte::is_hwpoison(w.mm.view(v + (r << P)).entry));
      FaultResult f = w.mm.handle_fault(v + (r << P) + 1, Access::read);
      EXPECT_EQ(f.kind, FaultKind::sigbus);
      EXPECT_EQ(f.lsb, P);
      for (uint64_t k : {uint64_t{0}, r - 1, r + 1, G::N - 1}) {  // everything else still readable
        typename World<F>::MmT::View vw = w.mm.view(v + (k << P));
        EXPECT_TRUE(pte::present(vw.entry)) << "page " << k;
        EXPECT_EQ(w.mm.handle_fault(v + (k << P), Access::read).kind, FaultKind::handled);
      }
      EXPECT_EQ(w.check_file_map(v, v + bit(H), file), "");
    }
    EXPECT_EQ(stale(w), "");
    EXPECT_TRUE(w.mem.folio(id).hwpoison);
    EXPECT_EQ(w.cached(file), id);
    if (pol == Policy::s1) {
      EXPECT_EQ(w.mem.mapcount(id), 2u);
      EXPECT_EQ(w.mem.folio(id).refcount, 4u);  // cache, memory failure, P, A
    } else {
      EXPECT_EQ(w.mem.folio(id).mapcount, 0u);
      EXPECT_EQ(w.mem.mapcount(id), 2 * (G::N - 1));
      EXPECT_EQ(w.mem.folio(id).refcount, 2 + 2 * (G::split_leaves() - 1));
    }
  }
}

TYPED_TEST(MmHwpoison, T37H1OutOfTablePagesLeavesTheMappingAsItWas) {
  HGM_PRELUDE;
  World<F> w(Policy::s1, PoisonPolicy::h1);
  uint32_t file = w.file(1);
  ASSERT_EQ(w.map(base, file, 1), Err::ok);
  ASSERT_TRUE(w.mm.handle_fault(base, Access::read).handled());
  auto snap = w.env.snapshot();
  w.env.fail_nth_alloc(1);
  Result<uint64_t> n = w.mm.memory_failure(w.cached_pa(file) + bit(P));
  w.env.fail_nth_alloc(0);
  EXPECT_EQ(n.err, Err::enomem);
  EXPECT_TRUE(snap == w.env.snapshot());
  EXPECT_EQ(w.mem.mapcount(w.cached(file)), 1u);
}

TYPED_TEST(MmHwpoison, T37H1WithoutHgmFallsBackToH0) {
  HGM_PRELUDE;
  World<F> w(Policy::s0, PoisonPolicy::h1);
  uint32_t file = w.file(1);
  ASSERT_EQ(w.map(base, file, 1), Err::ok);
  ASSERT_TRUE(w.mm.handle_fault(base, Access::read).handled());
  w.mm.reset_counters();
  ASSERT_TRUE(w.mm.memory_failure(w.cached_pa(file) + bit(P)).ok());
  EXPECT_EQ(w.c().pt_alloc_total(), 0u);
  EXPECT_EQ(w.census(base, base + bit(H), hl).swap, G::g);
  FaultResult f = w.mm.handle_fault(base + 2 * bit(P), Access::read);
  EXPECT_EQ(f.kind, FaultKind::sigbus);
  EXPECT_EQ(f.lsb, H);
}

}  // namespace
