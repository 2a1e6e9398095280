// mm_fork_test.cpp - fork (mm/fork.hpp: dup_mmap, copy_page_range): what the child gets, copy
// on write on both sides, what is not copied (shared and never-written mappings, userfaultfd
// registration, uffd-wp - unless UFFD_FEATURE_EVENT_FORK hands the child a userfaultfd of its
// own), and a private hugetlb child without reservations. Typed over one
// format per geometry (mm_world.hpp's GeometryFormats); sizes from the format's geometry.
#include <gtest/gtest.h>

#include "mm_world.hpp"

namespace {

using namespace mm_world;  // NOLINT(google-build-using-namespace): test file
using hpt_typed::FormatName;

template <class F>
class MmForkTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmForkTest, GeometryFormats, FormatName);

// A child address space over the parent's Memory: its own tables and TLB.
template <class F>
struct Child {
  typename World<F>::Env env;
  host::TlbModel tlb;
  typename World<F>::MmT mm;
  explicit Child(World<F>& w) : mm(w.mem, env, tlb) { EXPECT_EQ(mm.init(), Err::ok); }
};

// copy_present_pte: an anonymous page is shared, read-only on both sides; each side's write
// then copies (the child) or, once the page is its own again, reuses it (the parent).
TYPED_TEST(MmForkTest, AnonymousPagesAreSharedReadOnlyAndEachSideCopiesOnWrite) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 4 * P);
  const AccessResult first = w.mm.access(b, Access::write);
  ASSERT_EQ(first.kind, AccessKind::ok);
  Child<F> c(w);
  w.mm.reset_counters();
  ASSERT_EQ(w.mm.fork(c.mm), Err::ok);
  EXPECT_FALSE(w.mm.view(b).entry.writable) << "the parent's page is copy-on-write now";
  EXPECT_EQ(w.mm.counters().notif_start, 1u);
  EXPECT_EQ(w.mm.counters().tlb_flush_all, 1u);
  const uint32_t id = w.mem.folio_at(first.pa);
  EXPECT_EQ(w.mem.mapcount(id), 2u);
  AccessResult r = c.mm.access(b, Access::read);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_EQ(r.pa, first.pa) << "the child reads the same page";
  EXPECT_EQ(r.faults, 0u) << "copied, not faulted in";
  r = c.mm.access(b, Access::write);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_NE(r.pa, first.pa) << "the child's write copies";
  EXPECT_EQ(w.mem.mapcount(id), 1u);
  r = w.mm.access(b, Access::write);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_EQ(r.pa, first.pa) << "the parent's page is its own again: reused";
}

// vma_needs_copy: a shared mapping, and a private one that only ever mapped the zero page, are
// not copied; the child faults them in.
TYPED_TEST(MmForkTest, SharedAndNeverWrittenMappingsAreNotCopied) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base(), s = b + 8 * P;
  w.map_anon(b, 4 * P);
  ASSERT_EQ(w.mm.access(b, Access::read).kind, AccessKind::ok);  // the zero page
  w.map_file(s, 4 * P, w.shmem_file(4));
  ASSERT_EQ(w.mm.access(s, Access::write).kind, AccessKind::ok);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm), Err::ok);
  EXPECT_EQ(c.mm.pagemap(b), 0u);
  EXPECT_EQ(c.mm.pagemap(s), 0u);
  AccessResult r = c.mm.access(s, Access::read);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_GE(r.faults, 1u);
  EXPECT_EQ(r.pa, w.cached_pa(w.mm.vma_at(s)->file, 0)) << "the same page-cache page";
}

// dup_userfaultfd without EVENT_FORK: the child's VMAs are not registered; uffd-wp bits are not
// copied, so its write copies with no message.
TYPED_TEST(MmForkTest, TheChildHasNoRegistrationAndNoUffdWp) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  if (!uffd_wp_supported<F>()) GTEST_SKIP() << "no uffd-wp bit";
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon_registered(b, 4 * P, 0, kRegMissing | kRegWp);
  ASSERT_EQ(w.mm.uffd_copy(b, kSrc, P, 0).err, Err::ok);
  ASSERT_EQ(w.mm.uffd_writeprotect(b, P, kWpModeWp), Err::ok);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm), Err::ok);
  EXPECT_NE(w.mm.pagemap(b) & kPmUffdWp, 0u);
  EXPECT_EQ(c.mm.pagemap(b) & kPmUffdWp, 0u);
  EXPECT_EQ(c.mm.access(b, Access::write).kind, AccessKind::ok);
  EXPECT_EQ(c.mm.access(b + P, Access::read).kind, AccessKind::ok) << "MISSING not registered";
  EXPECT_EQ(w.mm.uffd_pending(), 0u);
  EXPECT_EQ(w.mm.access(b, Access::write, 1).kind, AccessKind::blocked) << "the parent's still is";
}

// dup_userfaultfd with EVENT_FORK (docs/mm.md §1): the forking thread waits until the
// monitor reads the FORK message (range ioctls EAGAIN meanwhile); the child's VMAs stay
// registered under its own userfaultfd, where its faults go and are resolved.
TYPED_TEST(MmForkTest, EventForkGivesTheChildItsOwnUserfaultfd) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon_registered(b, 4 * P, kFeatEventFork, kRegMissing);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm, /*tid=*/7), Err::ok);
  EXPECT_TRUE(w.mm.uffd_blocked(7)) << "fork waits for the monitor";
  EXPECT_EQ(w.mm.uffd_copy(b, kSrc, P, 0).err, Err::eagain);
  const Result<UffdMsg> m = w.mm.uffd_read();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value.event, UffdEvent::fork);
  EXPECT_FALSE(w.mm.uffd_blocked(7));
  EXPECT_EQ(w.mm.uffd_copy(b, kSrc, P, 0).err, Err::ok);
  EXPECT_EQ(c.mm.access(b + P, Access::read, 9).kind, AccessKind::blocked);
  EXPECT_EQ(w.mm.uffd_pending(), 0u) << "the child's fault goes to the child's userfaultfd";
  const Result<UffdMsg> cm = c.mm.uffd_read();
  ASSERT_TRUE(cm.ok());
  EXPECT_EQ(cm.value.event, UffdEvent::pagefault);
  EXPECT_EQ(cm.value.address, b + P);
  EXPECT_EQ(c.mm.uffd_api(0), Err::einval) << "the child's userfaultfd has had its API";
  EXPECT_EQ(c.mm.uffd_copy(b + P, kSrc, P, 0).err, Err::ok);
  EXPECT_FALSE(c.mm.uffd_blocked(9));
  EXPECT_EQ(c.mm.access(b + P, Access::read, 9).kind, AccessKind::ok);
  EXPECT_EQ(w.mm.pagemap(b + P), 0u) << "the child's copy is the child's only";
}

// vma_needs_copy / copy_present_pte: a child VMA registered for WP gets the tables copied,
// uffd-wp bits included (a shared one too), and its write to a protected page is a WP fault on
// the child's userfaultfd.
TYPED_TEST(MmForkTest, EventForkKeepsUffdWpInTheChild) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  if (!uffd_wp_supported<F>()) GTEST_SKIP() << "no uffd-wp bit";
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base(), s = b + 8 * P;
  w.map_anon(b, 4 * P);
  w.map_file(s, 4 * P, w.shmem_file(4));
  ASSERT_EQ(w.mm.access(s, Access::write).kind, AccessKind::ok);
  ASSERT_EQ(w.mm.uffd_api(kFeatEventFork), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(b, 4 * P, kRegMissing | kRegWp).ok());
  ASSERT_TRUE(w.mm.uffd_register(s, 4 * P, kRegWp).ok());
  ASSERT_EQ(w.mm.uffd_copy(b, kSrc, P, kModeWp).err, Err::ok);
  ASSERT_EQ(w.mm.uffd_writeprotect(s, P, kWpModeWp), Err::ok);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm, 7), Err::ok);
  ASSERT_TRUE(w.mm.uffd_read().ok());
  EXPECT_NE(c.mm.pagemap(b) & kPmUffdWp, 0u);
  EXPECT_NE(c.mm.pagemap(s) & kPmPresent, 0u) << "a shared VMA registered for WP is copied";
  EXPECT_NE(c.mm.pagemap(s) & kPmUffdWp, 0u);
  EXPECT_EQ(c.mm.access(b, Access::write, 9).kind, AccessKind::blocked);
  const Result<UffdMsg> cm = c.mm.uffd_read();
  ASSERT_TRUE(cm.ok());
  EXPECT_EQ(cm.value.flags, kMsgWrite | kMsgWp);
  ASSERT_EQ(c.mm.uffd_writeprotect(b, P, 0), Err::ok);
  EXPECT_FALSE(c.mm.uffd_blocked(9));
  EXPECT_EQ(c.mm.access(b, Access::write, 9).kind, AccessKind::ok);
  EXPECT_NE(w.mm.pagemap(b) & kPmUffdWp, 0u) << "the parent's page is still protected";
}

// dup_userfaultfd: no registered VMA, no new userfaultfd and no FORK message.
TYPED_TEST(MmForkTest, EventForkWithoutARegisteredVmaSendsNothing) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon(w.base(), 4 * P);
  ASSERT_EQ(w.mm.uffd_api(kFeatEventFork), Err::ok);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm, 7), Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(7));
  EXPECT_EQ(w.mm.uffd_read().err, Err::eagain);
}

// userfaultfd_event_wait_completion after release: closing the parent's userfaultfd before the
// FORK message is read lets fork return, and the child keeps no registration.
TYPED_TEST(MmForkTest, CloseBeforeTheForkMessageIsReadLeavesTheChildUnregistered) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon_registered(b, 4 * P, kFeatEventFork, kRegMissing);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm, 7), Err::ok);
  ASSERT_EQ(w.mm.uffd_close(), Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(7));
  EXPECT_EQ(c.mm.access(b, Access::read, 9).kind, AccessKind::ok) << "MISSING not registered";
  EXPECT_EQ(c.mm.uffd_read().err, Err::ebadf);
}

// A child that goes away before its FORK message is read leaves the message readable (the
// model's address spaces unlink; AddressSanitizer would see a dangling one).
TYPED_TEST(MmForkTest, AChildDestroyedBeforeTheForkMessageIsReadLeavesItReadable) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon_registered(w.base(), 4 * P, kFeatEventFork, kRegMissing);
  {
    Child<F> c(w);
    ASSERT_EQ(w.mm.fork(c.mm, 7), Err::ok);
  }
  const Result<UffdMsg> m = w.mm.uffd_read();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value.event, UffdEvent::fork);
  EXPECT_FALSE(w.mm.uffd_blocked(7));
}

// hugetlb_dup_vma_private: the child of a private hugetlb mapping holds no reservation, so its
// copy on write finds the pool empty: SIGBUS, and nothing changes.
TYPED_TEST(MmForkTest, APrivateHugetlbChildHasNoReservationForItsCopyOnWrite) {
  using F = TypeParam;
  constexpr unsigned M = kM<F>;
  if (M == 0) GTEST_SKIP() << "no 2M-class size";
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  uint32_t f = w.hugetlb_file(M, 1, 1);
  w.map_file(b, bit(M), f, /*shared=*/false);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  EXPECT_EQ(w.mem.pool_free(M), 0u);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm), Err::ok);
  auto before = c.env.snapshot();
  EXPECT_EQ(c.mm.access(b, Access::write).kind, AccessKind::sigbus);
  EXPECT_TRUE(c.env.snapshot() == before);
  EXPECT_EQ(c.mm.access(b, Access::read).kind, AccessKind::ok);
}

// hugetlb_wp with outside_reserve: the owner of a private mapping whose copy on write finds the
// pool empty takes its page back from the child (unmap_ref_private) and reuses it; the child's
// mapping is gone and its next fault there is SIGBUS (HPAGE_RESV_UNMAPPED).
TYPED_TEST(MmForkTest, TheOwnersCopyOnWriteWithAnEmptyPoolTakesThePageBackFromTheChild) {
  using F = TypeParam;
  constexpr unsigned M = kM<F>;
  if (M == 0) GTEST_SKIP() << "no 2M-class size";
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  uint32_t f = w.hugetlb_file(M, 1, 1);
  w.map_file(b, bit(M), f, /*shared=*/false);
  const AccessResult first = w.mm.access(b, Access::write);
  ASSERT_EQ(first.kind, AccessKind::ok);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm), Err::ok);
  ASSERT_EQ(c.mm.access(b, Access::read).kind, AccessKind::ok);
  AccessResult r = w.mm.access(b, Access::write);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_EQ(r.pa, first.pa) << "reused, not copied";
  EXPECT_EQ(w.mem.mapcount(w.mem.folio_at(first.pa)), 1u);
  EXPECT_EQ(c.mm.pagemap(b), 0u) << "unmapped from the child";
  EXPECT_EQ(c.mm.access(b, Access::read).kind, AccessKind::sigbus);
  EXPECT_EQ(w.mem.pool_free(M), 0u);
}

// unmap_mapping_range through Memory's registry of address spaces: a hole punch zaps the page
// in every address space that maps it - the parent and its child - before the page cache drops
// it (docs/mm.md §1.6).
TYPED_TEST(MmForkTest, AHolePunchZapsThePageInEveryAddressSpace) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  const uint32_t f = w.shmem_file(4);
  w.map_file(b, 4 * P, f);
  const AccessResult mine = w.mm.access(b + P, Access::write);
  ASSERT_EQ(mine.kind, AccessKind::ok);
  Child<F> c(w);
  ASSERT_EQ(w.mm.fork(c.mm), Err::ok);
  const AccessResult theirs = c.mm.access(b + P, Access::read);
  ASSERT_EQ(theirs.kind, AccessKind::ok);
  ASSERT_EQ(theirs.pa, mine.pa) << "the same page-cache page";
  EXPECT_EQ(w.mem.mapcount(w.mem.folio_at(mine.pa)), 2u);
  ASSERT_EQ(w.mem.punch_hole(f, P, P), Err::ok);
  EXPECT_EQ(w.mm.pagemap(b + P), 0u);
  EXPECT_EQ(c.mm.pagemap(b + P), 0u);
  EXPECT_EQ(w.mem.cache_lookup(f, 1), kNoFolio);
  EXPECT_EQ(w.mm.counters().notif_start, c.mm.counters().notif_start) << "one CLEAR pair each";
}

// fork into an address space that is not empty, or over another Memory: EINVAL.
TYPED_TEST(MmForkTest, ForkIntoANonEmptyChildIsEinval) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon(w.base(), 4 * P);
  Child<F> c(w);
  VmaSpec s;
  s.start = w.base() + 16 * P;
  s.len = P;
  ASSERT_TRUE(c.mm.mmap(s).ok());
  EXPECT_EQ(w.mm.fork(c.mm), Err::einval);
  EXPECT_EQ(w.mm.fork(w.mm), Err::einval);
}

}  // namespace
