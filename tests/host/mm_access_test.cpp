// mm_access_test.cpp - driving the model like a process (docs/mm.md §1.7): Mm::access performs
// an access as a CPU does (fault, retry), threads block in userfaults and are woken by thread;
// the userfaultfd features that change what a fault reports (SIGBUS, THREAD_ID); pagemap;
// close; several userfaultfds; mprotect; mmap/munmap lengths; MADV_HWPOISON by address; the
// REMOVE and UNMAP events.
// One suite per subject, typed over one format per geometry (GeometryFormats, mm_world.hpp);
// sizes from the format's geometry.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "mm_world.hpp"

namespace {

using namespace mm_world;  // NOLINT(google-build-using-namespace): test file
using hpt_typed::FormatName;

template <class F>
class MmAccessTest : public ::testing::Test {
 protected:
  static constexpr uint64_t P = bit(F::page_shift);
};
TYPED_TEST_SUITE(MmAccessTest, GeometryFormats, FormatName);
template <class F>
class MmPagemapTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmPagemapTest, GeometryFormats, FormatName);
template <class F>
class MmUffdCloseTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmUffdCloseTest, GeometryFormats, FormatName);
template <class F>
class MmSeveralUffdsTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmSeveralUffdsTest, GeometryFormats, FormatName);
template <class F>
class MmMprotectTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmMprotectTest, GeometryFormats, FormatName);
template <class F>
class MmVmaTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmVmaTest, GeometryFormats, FormatName);
template <class F>
class MmHwpoisonApiTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmHwpoisonApiTest, GeometryFormats, FormatName);
template <class F>
class MmUffdEventTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmUffdEventTest, GeometryFormats, FormatName);

// An access faults as often as it must and then goes through: a read of fresh anonymous memory
// reaches the zero page, a write then a folio of its own (do_anonymous_page, do_wp_page).
TYPED_TEST(MmAccessTest, AccessFaultsUntilTheEntryAllowsItAndReportsWhereItWent) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon(w.base(), 4 * P);
  AccessResult r = w.mm.access(w.base() + 5, Access::read);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_GE(r.faults, 1u);
  const uint32_t zero = w.mem.zero_page().value;
  EXPECT_EQ(r.pa, w.mem.folio(zero).pa + 5);
  r = w.mm.access(w.base() + 5, Access::read);
  EXPECT_EQ(r.kind, AccessKind::ok);
  EXPECT_EQ(r.faults, 0u) << "the entry allows it now";
  r = w.mm.access(w.base() + 5, Access::write);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_NE(align_down(r.pa, TypeParam::page_shift), w.mem.folio(zero).pa) << "a copy of its own";
}

// No VMA, or a VMA that forbids the access: SIGSEGV, and nothing changes.
TYPED_TEST(MmAccessTest, AccessThatNoVmaAllowsIsSigsegv) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon(w.base(), 2 * P, kProtR);
  auto before = w.snap();
  EXPECT_EQ(w.mm.access(w.base() + 4 * P, Access::read).kind, AccessKind::sigsegv);
  EXPECT_EQ(w.mm.access(w.base(), Access::write).kind, AccessKind::sigsegv);
  EXPECT_TRUE(w.snap() == before);
}

// A userfault blocks the faulting thread, and only it: the same thread cannot access again until
// a COPY covering its message wakes it; another thread faults and queues its own message.
TYPED_TEST(MmAccessTest, AUserfaultBlocksItsThreadUntilACopyWakesIt) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon_registered(w.base(), 4 * P, 0, kRegMissing);
  AccessResult r = w.mm.access(w.base() + P, Access::write, /*tid=*/7);
  ASSERT_EQ(r.kind, AccessKind::blocked);
  EXPECT_EQ(r.msg, (UffdMsg{w.base() + P, kMsgWrite, 0}));
  EXPECT_TRUE(w.mm.uffd_blocked(7));
  EXPECT_FALSE(w.mm.uffd_blocked(8));
  r = w.mm.access(w.base(), Access::read, 7);
  EXPECT_EQ(r.kind, AccessKind::blocked);
  EXPECT_EQ(r.faults, 0u) << "a blocked thread does not run";
  EXPECT_EQ(w.mm.uffd_pending(), 1u);
  r = w.mm.access(w.base() + 2 * P, Access::read, 8);
  EXPECT_EQ(r.kind, AccessKind::blocked);
  EXPECT_EQ(w.mm.uffd_pending(), 2u);
  EXPECT_EQ(w.mm.uffd_copy(w.base() + P, kSrc, P, 0).err, Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(7));
  EXPECT_TRUE(w.mm.uffd_blocked(8)) << "the copy did not cover its message";
  EXPECT_EQ(w.mm.access(w.base() + P, Access::write, 7).kind, AccessKind::ok);
}

// UFFD_FEATURE_THREAD_ID: the message names the faulting thread; without it, 0.
TYPED_TEST(MmAccessTest, ThreadIdFeatureNamesTheFaultingThreadInTheMessage) {
  constexpr uint64_t P = TestFixture::P;
  for (const uint64_t features : {uint64_t{0}, kFeatThreadId}) {
    World<TypeParam> w;
    ASSERT_EQ(w.init_err, Err::ok);
    w.map_anon(w.base(), 4 * P);
    ASSERT_EQ(w.mm.uffd_api(features), Err::ok);
    ASSERT_TRUE(w.mm.uffd_register(w.base(), 4 * P, kRegMissing).ok());
    AccessResult r = w.mm.access(w.base(), Access::read, 42);
    ASSERT_EQ(r.kind, AccessKind::blocked);
    Result<UffdMsg> m = w.mm.uffd_read();
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m.value.ptid, features ? 42u : 0u);
  }
}

// UFFD_FEATURE_SIGBUS: a fault that would block is SIGBUS instead; no message, no waiter, no
// change to the tables.
TYPED_TEST(MmAccessTest, SigbusFeatureMakesAUserfaultASigbusWithNoMessage) {
  constexpr uint64_t P = TestFixture::P;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon_registered(w.base(), 4 * P, kFeatSigbus, kRegMissing);
  auto before = w.snap();
  AccessResult r = w.mm.access(w.base(), Access::read, 3);
  EXPECT_EQ(r.kind, AccessKind::sigbus);
  EXPECT_EQ(r.lsb, 0u);
  EXPECT_EQ(w.mm.uffd_pending(), 0u);
  EXPECT_EQ(w.mm.uffd_waiters(), 0u);
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mm.uffd_zeropage(w.base(), P, 0).err, Err::ok) << "the ioctls still resolve it";
  EXPECT_EQ(w.mm.access(w.base(), Access::read, 3).kind, AccessKind::ok);
}


// fs/proc/task_mmu.c: pagemap of anonymous memory through its states - nothing, the zero page
// (present, not a normal page: neither file nor exclusive), a page of its own (exclusive), and
// shmem (file; exclusive only while mapped once). The PFN is the page's.
TYPED_TEST(MmPagemapTest, PagemapReportsPresentFileAndExclusiveAsLinuxDoes) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t a = w.base(), s = a + 16 * P;
  w.map_anon(a, 4 * P);
  EXPECT_EQ(w.mm.pagemap(a), 0u) << "no entry";
  EXPECT_EQ(w.mm.pagemap(a + 8 * P), 0u) << "no VMA";
  AccessResult r = w.mm.access(a, Access::read);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_EQ(w.mm.pagemap(a), kPmPresent | (r.pa >> F::page_shift)) << "the zero page";
  r = w.mm.access(a, Access::write);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_EQ(w.mm.pagemap(a), kPmPresent | kPmMmapExclusive | (r.pa >> F::page_shift));
  uint32_t f = w.shmem_file(4);
  w.map_file(s, 4 * P, f);
  w.map_file(s + 8 * P, 4 * P, f);
  r = w.mm.access(s, Access::read);
  ASSERT_EQ(r.kind, AccessKind::ok);
  EXPECT_EQ(w.mm.pagemap(s), kPmPresent | kPmFile | kPmMmapExclusive | (r.pa >> F::page_shift));
  ASSERT_EQ(w.mm.access(s + 8 * P, Access::read).kind, AccessKind::ok);
  EXPECT_EQ(w.mm.pagemap(s), kPmPresent | kPmFile | (r.pa >> F::page_shift)) << "mapped twice";
}

// A uffd-wp marker is a swap-format entry to pagemap (SWAP | UFFD_WP), except on hugetlb, where
// pagemap_hugetlb_range reports only UFFD_WP.
TYPED_TEST(MmPagemapTest, AUffdWpMarkerIsSwapAndUffdWpButOnHugetlbOnlyUffdWp) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  constexpr unsigned M = kM<F>;
  if (!uffd_wp_supported<F>() || M == 0) GTEST_SKIP() << "no uffd-wp bit or no 2M-class size";
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t s = w.base(), h = s + 4 * bit(M);
  w.map_file(s, 4 * P, w.shmem_file(4));
  w.map_file(h, bit(M), w.hugetlb_file(M, 1, 1));
  ASSERT_EQ(w.mm.uffd_api(kFeatWpHugetlbfsShmem), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(s, 4 * P, kRegWp).ok());
  ASSERT_TRUE(w.mm.uffd_register(h, bit(M), kRegWp).ok());
  ASSERT_EQ(w.mm.uffd_writeprotect(s, 4 * P, kWpModeWp), Err::ok);
  ASSERT_EQ(w.mm.uffd_writeprotect(h, bit(M), kWpModeWp), Err::ok);
  const uint64_t shmem = w.mm.pagemap(s + P);
  EXPECT_EQ(shmem & ~kPmFrameMask, kPmSwap | kPmUffdWp);
  EXPECT_EQ(w.mm.pagemap(h + P), kPmUffdWp);
}


// userfaultfd_release: every registered VMA is unregistered (a WP one has its uffd-wp bits
// reset, as Debian's 6.1 does), every waiting thread is woken, the messages go.
TYPED_TEST(MmUffdCloseTest, CloseUnregistersResetsUffdWpAndWakesEveryThread) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const bool wp = uffd_wp_supported<F>();
  w.map_anon(w.base(), 4 * P);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(w.base(), 4 * P, kRegMissing | (wp ? kRegWp : 0)).ok());
  ASSERT_EQ(w.mm.uffd_copy(w.base(), kSrc, P, 0).err, Err::ok);
  if (wp) {
    ASSERT_EQ(w.mm.uffd_writeprotect(w.base(), P, kWpModeWp), Err::ok);
  }
  ASSERT_EQ(w.mm.access(w.base() + P, Access::read, 1).kind, AccessKind::blocked);
  ASSERT_EQ(w.mm.access(w.base() + 2 * P, Access::read, 2).kind, AccessKind::blocked);
  EXPECT_EQ(w.mm.uffd_close(), Err::ok);
  EXPECT_EQ(w.mm.uffd_waiters(), 0u);
  EXPECT_FALSE(w.mm.uffd_blocked(1));
  EXPECT_EQ(w.mm.pagemap(w.base()) & kPmUffdWp, 0u) << "the uffd-wp bit is reset";
  EXPECT_EQ(w.mm.access(w.base() + P, Access::read, 1).kind, AccessKind::ok) << "not registered";
  EXPECT_EQ(w.mm.access(w.base(), Access::write, 1).kind, AccessKind::ok);
}

// After close every userfaultfd call is EBADF and changes nothing; uffd_open makes a new one,
// which needs its UFFDIO_API again.
TYPED_TEST(MmUffdCloseTest, EveryCallAfterCloseIsEbadfUntilANewUserfaultfd) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon(w.base(), 4 * P);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_EQ(w.mm.uffd_close(), Err::ok);
  auto before = w.snap();
  EXPECT_EQ(w.mm.uffd_close(), Err::ebadf);
  EXPECT_EQ(w.mm.uffd_api(0), Err::ebadf);
  EXPECT_EQ(w.mm.uffd_register(w.base(), P, kRegMissing).err, Err::ebadf);
  EXPECT_EQ(w.mm.uffd_unregister(w.base(), P), Err::ebadf);
  EXPECT_EQ(w.mm.uffd_read().err, Err::ebadf);
  EXPECT_EQ(w.mm.uffd_wake(w.base(), P), Err::ebadf);
  UffdResult r = w.mm.uffd_copy(w.base(), kSrc, P, 0);
  EXPECT_EQ(r.err, Err::ebadf);
  EXPECT_FALSE(r.reported);
  EXPECT_EQ(w.mm.uffd_writeprotect(w.base(), P, kWpModeWp), Err::ebadf);
  EXPECT_TRUE(w.snap() == before);
  const Result<Ufd> fd = w.mm.uffd_open();
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(fd.value, Ufd::first) << "the lowest free one";
  EXPECT_EQ(w.mm.uffd_register(w.base(), P, kRegMissing).err, Err::einval) << "no API yet";
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  EXPECT_TRUE(w.mm.uffd_register(w.base(), P, kRegMissing).ok());
}


// Two userfaultfds over one address space (docs/mm.md §1): each VMA's faults go to the
// userfaultfd it is registered with, and each one's ioctls wake only its own waiters.
template <class F>
struct TwoUffds {
  static constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  uint64_t a = 0, b = 0;  // VMA A registered with the first userfaultfd, B with the second
  Ufd second{};
  explicit TwoUffds(Profile profile = Profile::upstream)
      : w(typename World<F>::MmT::Options{.profile = profile}) {
    EXPECT_EQ(w.init_err, Err::ok);
    a = w.base();
    b = a + 8 * P;
    w.map_anon(a, 4 * P);
    w.map_anon(b, 4 * P);
    const Result<Ufd> fd = w.mm.uffd_open();
    EXPECT_TRUE(fd.ok());
    second = fd.value;
    EXPECT_NE(second, Ufd::first);
    EXPECT_EQ(w.mm.uffd_api(0), Err::ok);
    EXPECT_EQ(w.mm.uffd_api(0, second), Err::ok);
    EXPECT_TRUE(w.mm.uffd_register(a, 4 * P, kRegMissing).ok());
    EXPECT_TRUE(w.mm.uffd_register(b, 4 * P, kRegMissing, second).ok());
  }
};

TYPED_TEST(MmSeveralUffdsTest, EachVmasFaultsGoToItsOwnUserfaultfd) {
  TwoUffds<TypeParam> t;
  auto& w = t.w;
  ASSERT_EQ(w.mm.access(t.a, Access::read, 1).kind, AccessKind::blocked);
  ASSERT_EQ(w.mm.access(t.b, Access::read, 2).kind, AccessKind::blocked);
  EXPECT_EQ(w.mm.uffd_pending(), 1u);
  EXPECT_EQ(w.mm.uffd_pending(t.second), 1u);
  EXPECT_EQ(w.mm.uffd_read().value.address, t.a);
  EXPECT_EQ(w.mm.uffd_read(t.second).value.address, t.b);
  EXPECT_EQ(w.mm.uffd_copy(t.b, kSrc, t.P, 0, t.second).err, Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(2));
  EXPECT_TRUE(w.mm.uffd_blocked(1));
  EXPECT_EQ(w.mm.uffd_wake(t.a, t.P, t.second), Err::ok);
  EXPECT_TRUE(w.mm.uffd_blocked(1)) << "a wake on the other userfaultfd reaches nobody here";
  EXPECT_EQ(w.mm.uffd_wake(t.a, t.P), Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(1));
}

// userfaultfd_register: a VMA registered with another userfaultfd is EBUSY, and nothing changes.
TYPED_TEST(MmSeveralUffdsTest, RegisteringAnotherUserfaultfdsVmaIsEbusy) {
  TwoUffds<TypeParam> t;
  auto& w = t.w;
  const auto before = w.snap();
  EXPECT_EQ(w.mm.uffd_register(t.a, 4 * t.P, kRegMissing, t.second).err, Err::ebusy);
  EXPECT_EQ(w.mm.uffd_register(t.a, 12 * t.P, kRegMissing).err, Err::ebusy) << "B is in it";
  EXPECT_TRUE(w.snap() == before);
  ASSERT_EQ(w.mm.access(t.a, Access::read, 1).kind, AccessKind::blocked);
  EXPECT_EQ(w.mm.uffd_pending(), 1u) << "A is still the first's";
}

// find_dst_vma (Linux 6.1): a fill needs a registered VMA, of any userfaultfd; the wake-up goes
// to the caller's userfaultfd, so the thread waiting on the other stays blocked.
TYPED_TEST(MmSeveralUffdsTest, AFillIntoAnotherUserfaultfdsVmaWakesOnlyItsOwnWaiters) {
  TwoUffds<TypeParam> t;
  auto& w = t.w;
  ASSERT_EQ(w.mm.access(t.b, Access::read, 2).kind, AccessKind::blocked);
  EXPECT_EQ(w.mm.uffd_copy(t.b, kSrc, t.P, 0).err, Err::ok);
  EXPECT_NE(w.mm.pagemap(t.b) & kPmPresent, 0u);
  EXPECT_TRUE(w.mm.uffd_blocked(2));
  EXPECT_EQ(w.mm.uffd_wake(t.b, t.P, t.second), Err::ok);
  EXPECT_EQ(w.mm.access(t.b, Access::read, 2).kind, AccessKind::ok);
}

// userfaultfd_unregister upstream: through another userfaultfd than the VMA's, EINVAL, and
// nothing changes.
TYPED_TEST(MmSeveralUffdsTest, UnregisterThroughAnotherUserfaultfdIsEinvalUpstream) {
  TwoUffds<TypeParam> t;
  auto& w = t.w;
  ASSERT_EQ(w.mm.access(t.b, Access::read, 2).kind, AccessKind::blocked);
  const auto before = w.snap();
  EXPECT_EQ(w.mm.uffd_unregister(t.b, 4 * t.P), Err::einval);
  EXPECT_EQ(w.mm.uffd_unregister(t.a, 12 * t.P), Err::einval) << "B is in the range";
  EXPECT_TRUE(w.snap() == before);
  EXPECT_TRUE(w.mm.uffd_blocked(2));
  EXPECT_EQ(w.mm.uffd_register(t.b, 4 * t.P, kRegMissing).err, Err::ebusy) << "still B's";
  EXPECT_EQ(w.mm.uffd_unregister(t.b, 4 * t.P, t.second), Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(2));
}

// userfaultfd_unregister in Linux 6.1 (profile linux_6_1): another userfaultfd's VMA is
// unregistered too, and the threads waiting on that userfaultfd in the range are woken (a
// MISSING registration).
TYPED_TEST(MmSeveralUffdsTest, UnregisterReachesAnotherUserfaultfdsVmaAndWakesItsWaitersIn61) {
  TwoUffds<TypeParam> t(Profile::linux_6_1);
  auto& w = t.w;
  ASSERT_EQ(w.mm.access(t.b, Access::read, 2).kind, AccessKind::blocked);
  EXPECT_EQ(w.mm.uffd_unregister(t.b, 4 * t.P), Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(2));
  EXPECT_EQ(w.mm.access(t.b, Access::read, 2).kind, AccessKind::ok) << "no longer registered";
  EXPECT_TRUE(w.mm.uffd_register(t.b, 4 * t.P, kRegMissing).ok()) << "free for the first now";
}

// userfaultfd_release of one leaves the other's registrations, messages and waiters alone.
TYPED_TEST(MmSeveralUffdsTest, ClosingOneLeavesTheOther) {
  TwoUffds<TypeParam> t;
  auto& w = t.w;
  ASSERT_EQ(w.mm.access(t.a, Access::read, 1).kind, AccessKind::blocked);
  ASSERT_EQ(w.mm.access(t.b, Access::read, 2).kind, AccessKind::blocked);
  ASSERT_EQ(w.mm.uffd_close(), Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(1));
  EXPECT_TRUE(w.mm.uffd_blocked(2));
  EXPECT_EQ(w.mm.uffd_pending(t.second), 1u);
  EXPECT_EQ(w.mm.access(t.a, Access::read, 1).kind, AccessKind::ok);
  EXPECT_EQ(w.mm.access(t.b + t.P, Access::read, 3).kind, AccessKind::blocked);
  const Result<Ufd> again = w.mm.uffd_open();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value, Ufd::first) << "the lowest free one";
}

// The model holds kMaxUffds userfaultfds at once: one more is EBUSY.
TYPED_TEST(MmSeveralUffdsTest, OpeningMoreThanTheModelHoldsIsEbusy) {
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  for (unsigned i = 1; i < World<TypeParam>::MmT::kMaxUffds; ++i) ASSERT_TRUE(w.mm.uffd_open().ok());
  EXPECT_EQ(w.mm.uffd_open().err, Err::ebusy);
  EXPECT_EQ(w.mm.uffd_api(0, static_cast<Ufd>(World<TypeParam>::MmT::kMaxUffds)), Err::ebadf);
}

// mm/mprotect.c: PROT_NONE splits the VMA and makes its present entries protnone (still
// present to pagemap, SIGSEGV to the CPU), inside one PROTECTION_VMA pair and one flush; back
// to read-write, a write fault makes the exclusive page writable again (reuse).
TYPED_TEST(MmMprotectTest, ProtNoneSplitsTheVmaAndMakesItsEntriesProtnoneUntilRestored) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 4 * P);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  ASSERT_EQ(w.mm.access(b + 2 * P, Access::write).kind, AccessKind::ok);
  w.mm.reset_counters();
  ASSERT_EQ(w.mm.mprotect(b, 2 * P, Prot{}), Err::ok);
  EXPECT_NE(w.mm.vma_at(b), w.mm.vma_at(b + 2 * P)) << "split at the range's end";
  EXPECT_EQ(w.mm.view(b).entry.kind, Kind::protnone);
  EXPECT_EQ(w.mm.view(b + 2 * P).entry.kind, Kind::leaf) << "outside the range";
  EXPECT_NE(w.mm.pagemap(b) & kPmPresent, 0u);
  EXPECT_EQ(w.mm.counters().notif_start, 1u);
  EXPECT_EQ(w.mm.counters().tlb_flush, 1u);
  EXPECT_EQ(w.mm.access(b, Access::read).kind, AccessKind::sigsegv);
  EXPECT_EQ(w.mm.access(b + 2 * P, Access::write).kind, AccessKind::ok);
  ASSERT_EQ(w.mm.mprotect(b, 2 * P, kProtRW), Err::ok);
  AccessResult r = w.mm.access(b, Access::write);
  EXPECT_EQ(r.kind, AccessKind::ok);
  EXPECT_EQ(w.mm.view(b).entry.kind, Kind::leaf);
}

// do_mprotect_pkey's errors: EINVAL misaligned start, ENOMEM where no VMA starts the range or a
// hole interrupts it - the VMAs before the hole keep their new permissions, as in Linux.
TYPED_TEST(MmMprotectTest, AHoleIsEnomemAfterTheVmasBeforeItChanged) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 4 * P);
  w.map_anon(b + 8 * P, 4 * P);
  auto before = w.snap();
  EXPECT_EQ(w.mm.mprotect(b + 1, P, kProtR), Err::einval);
  EXPECT_EQ(w.mm.mprotect(b + 5 * P, P, kProtR), Err::enomem);
  EXPECT_EQ(w.mm.mprotect(b, 0, kProtR), Err::ok);
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mm.mprotect(b + 2 * P, 8 * P, kProtR), Err::enomem);
  EXPECT_EQ(w.mm.access(b + 3 * P, Access::write).kind, AccessKind::sigsegv) << "changed";
  EXPECT_EQ(w.mm.access(b + P, Access::write).kind, AccessKind::ok) << "before the range";
  EXPECT_EQ(w.mm.access(b + 9 * P, Access::write).kind, AccessKind::ok) << "after the hole";
}


// do_mmap and do_vmi_munmap round the length up to whole pages: one byte maps, and unmaps, a
// page (the linux ring's mmap_validation and munmap_validation show Linux 6.1 doing it).
TYPED_TEST(MmVmaTest, MmapAndMunmapRoundTheLengthUpToWholePages) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  VmaSpec s;
  s.start = w.base();
  s.len = 1;
  Result<Vma*> v = w.mm.mmap(s);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value->end, w.base() + P);
  EXPECT_EQ(w.mm.access(w.base() + P - 1, Access::write).kind, AccessKind::ok);
  EXPECT_EQ(w.mm.munmap(w.base(), 0), Err::einval);
  EXPECT_EQ(w.mm.munmap(w.base(), 1), Err::ok);
  EXPECT_EQ(w.mm.vma_at(w.base()), nullptr);
  EXPECT_EQ(w.mm.access(w.base(), Access::read).kind, AccessKind::sigsegv);
}


// The VMAs of [start, end) as the kernel lists them (/proc/PID/maps): "start-end" each, hex,
// from the base.
template <class W>
std::string vmas_of(W& w, uint64_t start, uint64_t end) {
  std::string s;
  char b[64];
  for (const Vma* v = w.mm.find_vma(start); v && v->start < end; v = w.mm.find_vma(v->end)) {
    std::snprintf(b, sizeof b, "%s%llx-%llx", s.empty() ? "" : " ",
                  static_cast<unsigned long long>(v->start - start),
                  static_cast<unsigned long long>(v->end - start));
    s += b;
  }
  return s;
}

// mmap_region's vma_merge: an anonymous mapping next to one with the same flags joins it.
TYPED_TEST(MmVmaTest, AdjacentAnonymousMappingsMerge) {
  constexpr uint64_t P = bit(TypeParam::page_shift);
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 4 * P);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  w.map_anon(b + 4 * P, 4 * P);
  w.map_anon(b + 8 * P, 4 * P, kProtR);
  char want[64];
  std::snprintf(want, sizeof want, "0-%llx %llx-%llx", static_cast<unsigned long long>(8 * P),
                static_cast<unsigned long long>(8 * P), static_cast<unsigned long long>(12 * P));
  EXPECT_EQ(vmas_of(w, b, b + 64 * P), want);
}

// mprotect_fixup's vma_merge: the pieces a change of permissions split off join again when the
// permissions are set back (they share the anon_vma split_vma gave them).
TYPED_TEST(MmVmaTest, MprotectBackMergesThePiecesAgain) {
  constexpr uint64_t P = bit(TypeParam::page_shift);
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 8 * P);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  ASSERT_EQ(w.mm.mprotect(b + 2 * P, 2 * P, kProtR), Err::ok);
  const std::string three = vmas_of(w, b, b + 64 * P);
  EXPECT_EQ(std::count(three.begin(), three.end(), ' '), 2) << "three VMAs: " << three;
  ASSERT_EQ(w.mm.mprotect(b + 2 * P, 2 * P, kProtRW), Err::ok);
  EXPECT_EQ(w.mm.find_vma(b)->end, b + 8 * P) << "one again";
  EXPECT_EQ(w.mm.access(b + 3 * P, Access::write).kind, AccessKind::ok);
}

// is_mergeable_anon_vma: a VMA with an anon_vma does not join a neighbour without one (an
// empty chain is not singular), whatever their flags; Linux 6.1 shows the same.
TYPED_TEST(MmVmaTest, AVmaWithAnAnonVmaDoesNotJoinANeighbourWithout) {
  constexpr uint64_t P = bit(TypeParam::page_shift);
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 4 * P, kProtR);
  w.map_anon(b + 4 * P, 4 * P);
  ASSERT_EQ(w.mm.access(b + 4 * P, Access::write).kind, AccessKind::ok);
  ASSERT_EQ(w.mm.mprotect(b + 4 * P, 4 * P, kProtR), Err::ok);
  EXPECT_EQ(w.mm.find_vma(b)->end, b + 4 * P);
  ASSERT_EQ(w.mm.mprotect(b, 8 * P, kProtRW), Err::ok);
  EXPECT_EQ(w.mm.find_vma(b)->end, b + 4 * P) << "still two";
}

// userfaultfd_unregister's vma_merge, VMA by VMA: what REGISTER split joins again; a VMA of
// another userfaultfd or mode stays apart meanwhile.
TYPED_TEST(MmVmaTest, UnregisterMergesWhatRegisterSplit) {
  constexpr uint64_t P = bit(TypeParam::page_shift);
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 8 * P);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(b + 2 * P, 2 * P, kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(b + 4 * P, 2 * P, kRegMissing).ok());
  EXPECT_EQ(w.mm.find_vma(b + 2 * P)->end, b + 6 * P) << "the same registration merges";
  const Result<Ufd> second = w.mm.uffd_open();
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(w.mm.uffd_api(0, second.value), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(b + 6 * P, 2 * P, kRegMissing, second.value).ok());
  EXPECT_EQ(w.mm.find_vma(b + 2 * P)->end, b + 6 * P) << "another userfaultfd's stays apart";
  ASSERT_EQ(w.mm.uffd_unregister(b + 6 * P, 2 * P, second.value), Err::ok);
  ASSERT_EQ(w.mm.uffd_unregister(b, 8 * P), Err::ok);
  EXPECT_EQ(w.mm.find_vma(b)->start, b);
  EXPECT_EQ(w.mm.find_vma(b)->end, b + 8 * P);
}

// hugetlb VMAs are VM_DONTEXPAND, so VM_SPECIAL: they never merge.
TYPED_TEST(MmVmaTest, HugetlbVmasNeverMerge) {
  constexpr unsigned M = kM<TypeParam>;
  if (M == 0) GTEST_SKIP() << "no 2M-class size";
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_file(b, 2 * bit(M), w.hugetlb_file(M, 2, 2));
  ASSERT_EQ(w.mm.mprotect(b + bit(M), bit(M), kProtR), Err::ok);
  ASSERT_EQ(w.mm.mprotect(b + bit(M), bit(M), kProtRW), Err::ok);
  EXPECT_EQ(w.mm.find_vma(b)->end, b + bit(M));
}

// anon_vma_fork: a fork child's VMAs chain to the parent's anon_vma, so a new mapping next to
// one does not join it (its chain is not singular); the parent's does.
TYPED_TEST(MmVmaTest, AForkChildsVmaDoesNotJoinANewNeighbour) {
  constexpr uint64_t P = bit(TypeParam::page_shift);
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 4 * P);
  ASSERT_EQ(w.mm.access(b, Access::write).kind, AccessKind::ok);
  typename World<TypeParam>::Env env;
  host::TlbModel tlb;
  typename World<TypeParam>::MmT child(w.mem, env, tlb);
  ASSERT_EQ(child.init(), Err::ok);
  ASSERT_EQ(w.mm.fork(child), Err::ok);
  VmaSpec s;
  s.start = b + 4 * P;
  s.len = 4 * P;
  ASSERT_TRUE(child.mmap(s).ok());
  EXPECT_EQ(child.find_vma(b)->end, b + 4 * P);
  ASSERT_TRUE(w.mm.mmap(s).ok());
  EXPECT_EQ(w.mm.find_vma(b)->end, b + 8 * P);
}

// MADV_HWPOISON faults the page in first (get_user_pages), then poisons what it maps; by PFN,
// memory_failure_pfn poisons the same way. Later accesses are SIGBUS with the base page's lsb.
TYPED_TEST(MmHwpoisonApiTest, MadviseHwpoisonFaultsThePageInAndPoisonsIt) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon(b, 4 * P);
  ASSERT_EQ(w.mm.access(b + P, Access::write).kind, AccessKind::ok);
  EXPECT_EQ(w.mm.madvise_hwpoison(b + P + 1).err, Err::einval);
  EXPECT_EQ(w.mm.madvise_hwpoison(b + 8 * P).err, Err::efault) << "no VMA";
  Result<uint64_t> n = w.mm.madvise_hwpoison(b + P);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value, 1u);
  AccessResult r = w.mm.access(b + P, Access::read);
  EXPECT_EQ(r.kind, AccessKind::sigbus);
  EXPECT_EQ(r.lsb, F::page_shift);
  const AccessResult other = w.mm.access(b + 2 * P, Access::write);
  ASSERT_EQ(other.kind, AccessKind::ok);
  ASSERT_TRUE(w.mm.memory_failure_pfn(other.pa >> F::page_shift).ok());
  EXPECT_EQ(w.mm.access(b + 2 * P, Access::read).kind, AccessKind::sigbus);
}


// munmap wakes nobody: a thread blocked in a userfault there stays blocked until a wake covers
// it, and its retry then finds no VMA (SIGSEGV).
TYPED_TEST(MmVmaTest, MunmapLeavesTheThreadsBlockedInItWaiting) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  w.map_anon_registered(w.base(), 4 * P, 0, kRegMissing);
  ASSERT_EQ(w.mm.access(w.base() + P, Access::read, 9).kind, AccessKind::blocked);
  ASSERT_EQ(w.mm.munmap(w.base(), 4 * P), Err::ok);
  EXPECT_TRUE(w.mm.uffd_blocked(9));
  ASSERT_EQ(w.mm.uffd_wake(w.base(), 4 * P), Err::ok);
  EXPECT_FALSE(w.mm.uffd_blocked(9));
  EXPECT_EQ(w.mm.access(w.base() + P, Access::read, 9).kind, AccessKind::sigsegv);
}

// userfaultfd_remove: MADV_DONTNEED on a range registered with EVENT_REMOVE queues a REMOVE
// event and waits; range ioctls say EAGAIN meanwhile; the pages go only once the event is read.
TYPED_TEST(MmUffdEventTest, DontneedWithEventRemoveZapsOnlyAfterTheEventIsRead) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon_registered(b, 4 * P, kFeatEventRemove, kRegMissing);
  ASSERT_EQ(w.mm.uffd_copy(b, kSrc, 2 * P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.madvise_dontneed(b, P, /*tid=*/5), Err::ok);
  EXPECT_TRUE(w.mm.uffd_blocked(5));
  EXPECT_NE(w.mm.pagemap(b) & kPmPresent, 0u) << "not zapped before the read";
  UffdResult r = w.mm.uffd_copy(b + 2 * P, kSrc, P, 0);
  EXPECT_EQ(r.err, Err::eagain);
  EXPECT_FALSE(r.reported);
  Result<UffdMsg> m = w.mm.uffd_read();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value.event, UffdEvent::remove);
  EXPECT_EQ(m.value.address, b);
  EXPECT_EQ(m.value.end, b + P);
  EXPECT_FALSE(w.mm.uffd_blocked(5));
  EXPECT_EQ(w.mm.pagemap(b), 0u) << "zapped after the read";
  EXPECT_NE(w.mm.pagemap(b + P) & kPmPresent, 0u);
  EXPECT_EQ(w.mm.uffd_copy(b + 2 * P, kSrc, P, 0).err, Err::ok);
}

// userfaultfd_ctx_read: a page fault is read before an event queued earlier; munmap with
// EVENT_UNMAP unmaps first and then waits for its UNMAP event, which covers the whole range.
TYPED_TEST(MmUffdEventTest, FaultsAreReadBeforeEventsAndUnmapWaitsAfterUnmapping) {
  using F = TypeParam;
  constexpr uint64_t P = bit(F::page_shift);
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t b = w.base();
  w.map_anon_registered(b, 4 * P, kFeatEventUnmap, kRegMissing);
  ASSERT_EQ(w.mm.uffd_copy(b, kSrc, 2 * P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.munmap(b, 2 * P, 3), Err::ok);
  EXPECT_TRUE(w.mm.uffd_blocked(3));
  EXPECT_EQ(w.mm.vma_at(b), nullptr) << "unmapped before the event is read";
  ASSERT_EQ(w.mm.access(b + 3 * P, Access::read, 4).kind, AccessKind::blocked);
  Result<UffdMsg> m = w.mm.uffd_read();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value.event, UffdEvent::pagefault) << "the fault first";
  m = w.mm.uffd_read();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value.event, UffdEvent::unmap);
  EXPECT_EQ(m.value.address, b);
  EXPECT_EQ(m.value.end, b + 2 * P);
  EXPECT_FALSE(w.mm.uffd_blocked(3));
  EXPECT_TRUE(w.mm.uffd_blocked(4)) << "a read does not wake a faulting thread";
}

}  // namespace
