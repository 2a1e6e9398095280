// mm_mremap_test.cpp - mremap (mm/mremap.hpp: mremap, move_vma, move_page_tables) and
// UFFD_EVENT_REMAP: entries move as they are with their mapcounts, shrink and grow in place,
// validation that changes nothing, the REMAP event, uffd-wp without it, a private hugetlb
// mapping's reservations. Typed over one format per geometry (mm_world.hpp); sizes from the
// format's geometry.
#include <gtest/gtest.h>

#include "mm_world.hpp"

namespace {

using namespace mm_world;  // NOLINT(google-build-using-namespace): test file
using hpt_typed::FormatName;

template <class F>
class MmMremapTest : public ::testing::Test {
 protected:
  static constexpr uint64_t P = bit(F::page_shift);
};
TYPED_TEST_SUITE(MmMremapTest, GeometryFormats, FormatName);

// move_page_tables (mm/mremap.c): the entries go to the new place as they are - the
// anonymous page keeps its frame and mapcount, the zero page stays the zero page - inside one
// UNMAP notifier pair over the old range; then the old range is unmapped (its own pair, as
// unmap_region's).
TYPED_TEST(MmMremapTest, AMoveKeepsEveryEntryAndItsMapcount) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base(), to = b + 64 * P;
  w.map_anon(b, 4 * P);
  const AccessResult page = w.mm.access(b, Access::write);
  ASSERT_EQ(page.kind, AccessKind::ok);
  const AccessResult zero = w.mm.access(b + P, Access::read);
  ASSERT_EQ(zero.kind, AccessKind::ok);
  const uint32_t id = w.mem.folio_at(page.pa);
  w.mm.reset_counters();
  const Result<uint64_t> r = w.mm.mremap(b, 4 * P, 4 * P, kMremapMaymove | kMremapFixed, to);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, to);
  EXPECT_EQ(w.mm.counters().notif_start, 2u);
  EXPECT_EQ(w.mm.counters().notif_log[0], (Notification{NotifyEvent::unmap, b, b + 4 * P}));
  EXPECT_EQ(w.mm.counters().notif_log[1], (Notification{NotifyEvent::unmap, b, b + 4 * P}));
  EXPECT_EQ(w.mem.mapcount(id), 1u);
  EXPECT_EQ(w.mm.vma_at(b), nullptr);
  EXPECT_EQ(w.mm.pagemap(b), 0u);
  const AccessResult moved = w.mm.access(to, Access::write);
  ASSERT_EQ(moved.kind, AccessKind::ok);
  EXPECT_EQ(moved.pa, page.pa) << "the same page, still exclusive: no copy";
  EXPECT_EQ(moved.faults, 0u);
  EXPECT_EQ(w.mm.access(to + P, Access::read).pa, zero.pa);
}

// Shrinking unmaps the tail; growing stays in place where nothing follows the VMA, is ENOMEM
// without MREMAP_MAYMOVE where something does, and with it moves (to the lowest free range
// above: the model's choice of address).
TYPED_TEST(MmMremapTest, ShrinkAndGrowInPlaceOrMove) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 8 * P);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  EXPECT_EQ(w.mm.mremap(b, 8 * P, 4 * P, 0).value, b);
  EXPECT_EQ(w.mm.vma_at(b)->end, b + 4 * P);
  EXPECT_EQ(w.mm.mremap(b, 4 * P, 6 * P, 0).value, b);
  EXPECT_EQ(w.mm.vma_at(b)->end, b + 6 * P);
  w.map_anon(b + 6 * P, 2 * P, kProtR);
  const auto before = w.snap();
  EXPECT_EQ(w.mm.mremap(b, 6 * P, 10 * P, 0).err, Err::enomem);
  EXPECT_TRUE(w.snap() == before);
  const Result<uint64_t> moved = w.mm.mremap(b, 6 * P, 10 * P, kMremapMaymove);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved.value, b + 8 * P);
  EXPECT_EQ(w.mm.vma_at(moved.value)->end, moved.value + 10 * P);
  EXPECT_NE(w.mm.pagemap(moved.value) & kPmPresent, 0u);
}

// Every refusal changes nothing (Linux 6.1's errors, the linux ring's mremap_validation).
TYPED_TEST(MmMremapTest, RefusedRemapsChangeNothing) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 4 * P);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  const auto before = w.snap();
  const uint32_t kMove = kMremapMaymove | kMremapFixed;
  EXPECT_EQ(w.mm.mremap(b, 4 * P, 4 * P, kMremapFixed, b + 64 * P).err, Err::einval);
  EXPECT_EQ(w.mm.mremap(b, 4 * P, 4 * P, 8).err, Err::einval);
  EXPECT_EQ(w.mm.mremap(b, 4 * P, 8 * P, kMremapMaymove | kMremapDontunmap).err, Err::einval);
  EXPECT_EQ(w.mm.mremap(b + 1, 4 * P, 4 * P, 0).err, Err::einval);
  EXPECT_EQ(w.mm.mremap(b, 4 * P, 0, 0).err, Err::einval);
  EXPECT_EQ(w.mm.mremap(b, 4 * P, 4 * P, kMove, b + 2 * P).err, Err::einval) << "overlap";
  EXPECT_EQ(w.mm.mremap(b + 32 * P, P, 2 * P, 0).err, Err::efault) << "no VMA";
  EXPECT_EQ(w.mm.mremap(b, 8 * P, 8 * P, kMove, b + 64 * P).err, Err::efault) << "past the VMA";
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mm.vma_at(b)->end, b + 4 * P);
}

// A move whose new tables cannot be had is ENOMEM, and every entry stays where it was (the
// target lies under tables that do not exist yet).
TYPED_TEST(MmMremapTest, AMoveWithoutTablesIsEnomemAndMovesNothing) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base(), to = b + 512 * 512 * P;
  w.map_anon(b, 4 * P);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  const auto before = w.snap();
  const uint64_t tables = w.env.live();
  w.env.fail_nth_alloc(1);
  const Err e = w.mm.mremap(b, 4 * P, 4 * P, kMremapMaymove | kMremapFixed, to).err;
  w.env.fail_nth_alloc(0);
  ASSERT_EQ(e, Err::enomem);
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.env.live(), tables);
  EXPECT_NE(w.mm.pagemap(b) & kPmPresent, 0u);
}

// mremap_userfaultfd_prep / _complete with EVENT_REMAP: the moved VMA stays registered, the
// thread waits until the REMAP message {from, to, len} is read (range ioctls EAGAIN meanwhile),
// and faults at the new place reach the monitor.
TYPED_TEST(MmMremapTest, EventRemapKeepsTheRegistrationAndWaitsForTheRead) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base(), to = b + 64 * P;
  w.map_anon_registered(b, 4 * P, kFeatEventRemap, kRegMissing);
  ASSERT_TRUE(w.mm.mremap(b, 4 * P, 4 * P, kMremapMaymove | kMremapFixed, to, 7).ok());
  EXPECT_TRUE(w.mm.uffd_blocked(7));
  EXPECT_EQ(w.mm.uffd_copy(to, kSrc, P, 0).err, Err::eagain);
  const Result<UffdMsg> m = w.mm.uffd_read();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value.event, UffdEvent::remap);
  EXPECT_EQ(m.value.address, b);
  EXPECT_EQ(m.value.to, to);
  EXPECT_EQ(m.value.end - m.value.address, 4 * P);
  EXPECT_FALSE(w.mm.uffd_blocked(7));
  EXPECT_EQ(w.mm.access(to + P, Access::read, 8).kind, AccessKind::blocked);
  EXPECT_EQ(w.mm.uffd_read().value.address, to + P);
}

// move_ptes' need_clear_uffd_wp (Linux 6.1 stable): without EVENT_REMAP the moved VMA is not
// registered, and its uffd-wp bits and uffd-wp markers go with the registration.
TYPED_TEST(MmMremapTest, WithoutEventRemapTheMoveDropsRegistrationAndUffdWp) {
  constexpr uint64_t P = TestFixture::P;
  if (!uffd_wp_supported<TypeParam>()) GTEST_SKIP() << "no uffd-wp bit";
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base(), to = b + 64 * P;
  w.map_file(b, 4 * P, w.shmem_file(4));
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(b, 4 * P, kRegWp).ok());
  ASSERT_EQ(w.mm.uffd_writeprotect(b, 2 * P, kWpModeWp), Err::ok);
  ASSERT_EQ(w.mm.view(b + P).entry.kind, Kind::marker);
  ASSERT_TRUE(w.mm.mremap(b, 4 * P, 4 * P, kMremapMaymove | kMremapFixed, to).ok());
  EXPECT_EQ(w.mm.pagemap(to) & kPmUffdWp, 0u);
  EXPECT_NE(w.mm.pagemap(to) & kPmPresent, 0u);
  EXPECT_EQ(w.mm.view(to + P).entry.kind, Kind::none) << "the marker is dropped";
  EXPECT_EQ(w.mm.vma_at(to)->uffd, 0u);
  EXPECT_EQ(w.mm.access(to, Access::write).kind, AccessKind::ok);
  EXPECT_EQ(w.mm.uffd_pending(), 0u);
}

// A private hugetlb mapping moves with its reservations (clear_vma_resv_huge_pages on the old
// VMA): the pool's reserved count does not change, the unfaulted page's fault takes its
// reservation, and munmap gives everything back. Growing hugetlb is EINVAL.
TYPED_TEST(MmMremapTest, APrivateHugetlbMoveKeepsItsReservations) {
  constexpr unsigned M = kM<TypeParam>;
  if (M == 0) GTEST_SKIP() << "no 2M-class size";
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base(), to = b + 64 * bit(M);
  w.map_file(b, 2 * bit(M), w.hugetlb_file(M, 2, 2), /*shared=*/false);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  EXPECT_EQ(w.mem.pool_reserved(M), 1u);
  EXPECT_EQ(w.mm.mremap(b, 2 * bit(M), 3 * bit(M), kMremapMaymove).err, Err::einval);
  ASSERT_TRUE(w.mm.mremap(b, 2 * bit(M), 2 * bit(M), kMremapMaymove | kMremapFixed, to).ok());
  EXPECT_EQ(w.mem.pool_reserved(M), 1u);
  EXPECT_EQ(w.mem.pool_free(M), 1u);
  EXPECT_EQ(w.mm.access(to + bit(M), Access::write).kind, AccessKind::ok);
  EXPECT_EQ(w.mem.pool_reserved(M), 0u);
  ASSERT_EQ(w.mm.munmap(to, 2 * bit(M)), Err::ok);
  EXPECT_EQ(w.mem.pool_free(M), 2u);
}

}  // namespace
