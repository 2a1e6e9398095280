// mm_hugetlb_test.cpp - hugetlb reservations (mm/hugetlb.hpp, Linux mm/hugetlb.c): what mmap
// reserves, which allocation takes which reservation, and what munmap, hole punch and errors
// give back. Typed over one format per geometry with a 2M-class hstate ("M"; GeometryFormats,
// mm_world.hpp); counts are in pages of that hstate. The pool's numbers are /proc/meminfo's
// HugePages_Free (pool_free) and HugePages_Rsvd (pool_reserved). Docs: docs/mm.md §1.6.
#include <gtest/gtest.h>

#include "mm_world.hpp"

namespace {

using namespace mm_world;  // NOLINT(google-build-using-namespace): test file
using hpt_typed::FormatName;

template <class F>
class MmHugetlbTest : public ::testing::Test {
 protected:
  static constexpr unsigned M = kM<F>;
  static constexpr uint64_t P = bit(F::page_shift);
};
TYPED_TEST_SUITE(MmHugetlbTest, GeometryFormats, FormatName);
template <class F>
class MmCopyFromTest : public ::testing::Test {};
TYPED_TEST_SUITE(MmCopyFromTest, GeometryFormats, FormatName);

#define SKIP_WITHOUT_M() \
  if (TestFixture::M == 0) GTEST_SKIP() << "the format has no 2M-class leaf size"

template <class W>
void expect_pool(const W& w, unsigned shift, uint64_t free, uint64_t reserved, const char* when) {
  EXPECT_EQ(w.mem.pool_free(shift), free) << when;
  EXPECT_EQ(w.mem.pool_reserved(shift), reserved) << when;
}

// hugetlb_reserve_pages: a shared mapping with an empty pool is ENOMEM at mmap, and nothing
// changes (no VMA, no reservation, i_size as it was).
TYPED_TEST(MmHugetlbTest, SharedMmapWithTooFewFreePagesIsEnomemAndChangesNothing) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 1, 1);
  EXPECT_EQ(w.mmap_file(w.base(), 2 * bit(M), f).err, Err::enomem) << "two pages, one free";
  EXPECT_EQ(w.mm.vma_at(w.base()), nullptr);
  EXPECT_EQ(w.mem.file(f).size, bit(M)) << "a failed mmap grew the file";
  expect_pool(w, M, 1, 0, "after the failed mmap");
  EXPECT_EQ(w.mmap_file(w.base(), bit(M), f).err, Err::ok);
  expect_pool(w, M, 1, 1, "one page mapped");
}

// A private mapping reserves every page; with the pool short it is ENOMEM and changes nothing.
TYPED_TEST(MmHugetlbTest, PrivateMmapWithTooFewFreePagesIsEnomemAndChangesNothing) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 2, 1);
  EXPECT_EQ(w.mmap_file(w.base(), 2 * bit(M), f, /*shared=*/false).err, Err::enomem);
  EXPECT_EQ(w.mm.vma_at(w.base()), nullptr);
  expect_pool(w, M, 1, 0, "after the failed mmap");
}

// A second shared mapping of reserved indices reserves nothing more (region_chg counts only
// indices the file's map lacks), so it succeeds with no unreserved page free.
TYPED_TEST(MmHugetlbTest, SharedMmapReservesOnlyTheIndicesTheFileHasNotReserved) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 2, 2);
  w.map_file(w.base(), 2 * bit(M), f);
  expect_pool(w, M, 2, 2, "first mapping");
  w.map_file(w.base() + 4 * bit(M), 2 * bit(M), f);
  expect_pool(w, M, 2, 2, "the alias reserved nothing");
  // munmap of a shared mapping keeps the file's reservations (they are the inode's).
  EXPECT_EQ(w.mm.munmap(w.base(), 2 * bit(M)), Err::ok);
  expect_pool(w, M, 2, 2, "after munmap of one");
}

// A fault takes the reservation its index holds: free and reserved both drop by one.
TYPED_TEST(MmHugetlbTest, FaultInASharedMappingTakesTheReservationOfItsIndex) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 2, 3);
  w.map_file(w.base(), 2 * bit(M), f);
  expect_pool(w, M, 3, 2, "mapped");
  ASSERT_TRUE(w.mm.handle_fault(w.base() + bit(M), Access::write).handled());
  expect_pool(w, M, 2, 1, "one page faulted");
  ASSERT_TRUE(w.mm.handle_fault(w.base() + bit(M) + TestFixture::P, Access::read).handled());
  expect_pool(w, M, 2, 1, "a second touch of the same page allocates nothing");
}

// MAP_NORESERVE reserves nothing, and its fault cannot take a page another mapping reserved:
// with the only free page reserved, it is SIGBUS and changes nothing.
TYPED_TEST(MmHugetlbTest, NoreserveFaultCannotTakeAPageAnotherMappingReserved) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t a = w.hugetlb_file(M, 1, 1);
  uint32_t b = w.new_file(FileKind::hugetlb, M, 1);
  w.map_file(w.base(), bit(M), a);
  w.map_file(w.base() + 2 * bit(M), bit(M), b, true, 0, /*noreserve=*/true);
  expect_pool(w, M, 1, 1, "the noreserve mapping reserved nothing");
  auto before = w.snap();
  FaultResult r = w.mm.handle_fault(w.base() + 2 * bit(M), Access::read);
  EXPECT_EQ(r.kind, FaultKind::sigbus);
  EXPECT_TRUE(w.snap() == before);
  expect_pool(w, M, 1, 1, "after the SIGBUS");
  EXPECT_EQ(w.cached(b), kNoFolio);
  EXPECT_TRUE(w.mm.handle_fault(w.base(), Access::read).handled()) << "the reserved one maps";
  expect_pool(w, M, 0, 0, "the reservation was used");
}

// A private mapping's reservation is used by the first page a fault allocates at an index;
// munmap gives back the reservations of the pages no fault used.
TYPED_TEST(MmHugetlbTest, PrivateMunmapGivesBackTheReservationsNoFaultUsed) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 3, 4);
  w.map_file(w.base(), 3 * bit(M), f, /*shared=*/false);
  expect_pool(w, M, 4, 3, "private mapping of three pages");
  ASSERT_TRUE(w.mm.handle_fault(w.base(), Access::write).handled());
  expect_pool(w, M, 3, 2, "one anonymous page allocated from the reservation");
  EXPECT_EQ(w.cached(f), kNoFolio) << "a private miss is not in the page cache";
  EXPECT_EQ(w.mm.munmap(w.base(), 3 * bit(M)), Err::ok);
  expect_pool(w, M, 4, 0, "unmapped: the page freed, two reservations given back");
}

// The pieces of a split private mapping share its map; unmapping one gives back only its own
// unused reservations (hugetlb_vm_op_close over the piece's range).
TYPED_TEST(MmHugetlbTest, EachPieceOfASplitPrivateMappingGivesBackItsOwnReservations) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 4, 4);
  const uint64_t b = w.base();
  w.map_file(b, 4 * bit(M), f, /*shared=*/false);
  ASSERT_TRUE(w.mm.handle_fault(b + 3 * bit(M), Access::write).handled());
  expect_pool(w, M, 3, 3, "one page used");
  EXPECT_EQ(w.mm.munmap(b + 2 * bit(M), 2 * bit(M)), Err::ok);  // the used page and one unused
  expect_pool(w, M, 4, 2, "the tail piece gave back its unused one and freed its page");
  EXPECT_EQ(w.mm.munmap(b, bit(M)), Err::ok);
  expect_pool(w, M, 4, 1, "the head");
  EXPECT_EQ(w.mm.munmap(b + bit(M), bit(M)), Err::ok);
  expect_pool(w, M, 4, 0, "the last piece");
}

// hugetlb_wp: copy on write of a page-cache page in a private mapping takes the reservation of
// its index; the page-cache page itself used none.
TYPED_TEST(MmHugetlbTest, CowOfACachedPageInAPrivateMappingTakesItsReservation) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 1, 2);
  ASSERT_EQ(w.mem.fallocate(f, 0, bit(M)), Err::ok);
  expect_pool(w, M, 1, 0, "fallocate with no mapping reserves nothing first");
  w.map_file(w.base(), bit(M), f, /*shared=*/false);
  expect_pool(w, M, 1, 1, "the private mapping reserved its page");
  ASSERT_TRUE(w.mm.handle_fault(w.base(), Access::read).handled());
  expect_pool(w, M, 1, 1, "a read maps the cached page");
  FaultResult r = w.mm.handle_fault(w.base(), Access::write);
  ASSERT_TRUE(r.handled());
  EXPECT_EQ(r.how, FaultHow::cow);
  expect_pool(w, M, 0, 0, "the copy took the reservation");
}

// hugetlbfs_fallocate takes the reservations a shared mapping made, page by page; when the pool
// runs out it stops with ENOSPC and keeps the pages it got (Linux 6.1 does the same).
TYPED_TEST(MmHugetlbTest, FallocateTakesTheFilesReservationsAndKeepsWhatItGotWhenThePoolRunsOut) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 3, 2);
  w.map_file(w.base(), 2 * bit(M), f);  // indices 0 and 1 reserved; index 2 is not
  expect_pool(w, M, 2, 2, "mapped");
  EXPECT_EQ(w.mem.fallocate(f, 0, 3 * bit(M)), Err::enospc) << "index 2 has no page to take";
  expect_pool(w, M, 0, 0, "indices 0 and 1 used their reservations");
  EXPECT_NE(w.cached(f, 0), kNoFolio);
  EXPECT_NE(w.cached(f, 1), kNoFolio);
  EXPECT_EQ(w.cached(f, 2), kNoFolio);
}

// A fallocate past the end extends the file once every page is there; the range rounds out to
// whole pages.
TYPED_TEST(MmHugetlbTest, FallocatePastTheEndExtendsTheFileToWholePages) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 1, 3);
  EXPECT_EQ(w.mem.fallocate(f, bit(M) + TestFixture::P, TestFixture::P), Err::ok);
  EXPECT_EQ(w.mem.file(f).size, 2 * bit(M));
  EXPECT_EQ(w.cached(f, 0), kNoFolio);
  EXPECT_NE(w.cached(f, 1), kNoFolio);
  EXPECT_EQ(w.mem.fallocate(f, 0, 0), Err::einval);
}

// Hole punch (remove_inode_single_folio): a page goes with its index's reservation, so the
// counts move only by the freed page; an index with no page keeps its reservation. A later
// fault at the punched index allocates without one.
TYPED_TEST(MmHugetlbTest, HolePunchKeepsTheReservationsOfIndicesWithoutAPage) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 2, 3);
  w.map_file(w.base(), 2 * bit(M), f);
  ASSERT_TRUE(w.mm.handle_fault(w.base(), Access::write).handled());
  expect_pool(w, M, 2, 1, "one page faulted");
  EXPECT_EQ(w.mem.punch_hole(f, 0, 2 * bit(M)), Err::ok);
  expect_pool(w, M, 3, 1, "the page is free again; index 1 is still reserved");
  ASSERT_TRUE(w.mm.handle_fault(w.base(), Access::read).handled());
  expect_pool(w, M, 2, 1, "index 0 had no reservation left: an unreserved page");
  EXPECT_TRUE(w.mm.handle_fault(w.base() + bit(M), Access::read).handled());
  expect_pool(w, M, 1, 0, "index 1 used its reservation");
}

// hugetlb_mfill_atomic_pte: UFFDIO_COPY into a private mapping takes the reservation as a fault
// would; a COPY refused because the slot is taken takes none.
TYPED_TEST(MmHugetlbTest, UffdCopyIntoAPrivateMappingTakesItsReservation) {
  SKIP_WITHOUT_M();
  constexpr unsigned M = TestFixture::M;
  World<TypeParam> w;
  ASSERT_EQ(w.init_err, Err::ok);
  uint32_t f = w.hugetlb_file(M, 2, 2);
  w.map_file(w.base(), 2 * bit(M), f, /*shared=*/false);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(w.base(), 2 * bit(M), kRegMissing).ok());
  UffdResult r = w.mm.uffd_copy(w.base(), kSrc, bit(M), 0);
  EXPECT_EQ(r.err, Err::ok);
  expect_pool(w, M, 1, 1, "copied one page");
  auto before = w.snap();
  r = w.mm.uffd_copy(w.base(), kSrc, bit(M), 0);
  EXPECT_EQ(r.err, Err::eexist);
  EXPECT_TRUE(w.snap() == before);
  expect_pool(w, M, 1, 1, "the refused copy");
}


// hugetlb_mfill_atomic_pte: a COPY whose source is not mapped yet needs a temporary huge page
// (alloc_huge_page_vma). A size the buddy allocator serves gets one outside the pool; a gigantic
// one needs a free pool page no reservation holds - with the only page reserved: ENOMEM, and
// the source stays unpopulated. On success the source pages are faulted in.
TYPED_TEST(MmCopyFromTest, AnUnpopulatedSourceNeedsATemporaryPageAndIsFaultedIn) {
  using F = TypeParam;
  constexpr unsigned P = F::page_shift;
  for (const unsigned hs : {kM<F>, kH<F>}) {
    if (hs == 0) continue;
    SCOPED_TRACE(hs);
    World<F> w;
    ASSERT_EQ(w.init_err, Err::ok);
    const uint64_t b = w.base(), src = b + 4 * bit(hs);
    uint32_t f = w.hugetlb_file(hs, 1, 1);
    w.map_file(b, bit(hs), f);
    w.map_anon(src, bit(hs));
    ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
    ASSERT_TRUE(w.mm.uffd_register(b, bit(hs), kRegMissing).ok());
    const bool gigantic = hs > P + 10;
    auto before = w.snap();
    UffdResult r = w.mm.uffd_copy_from(b, src, bit(hs), 0);
    if (gigantic) {
      EXPECT_EQ(r.err, Err::enomem);
      EXPECT_EQ(w.mm.pagemap(src), 0u) << "the source was not faulted in";
      EXPECT_TRUE(w.snap() == before);
      EXPECT_EQ(w.mem.pool_reserved(hs), 1u);
    } else {
      EXPECT_EQ(r.err, Err::ok);
      EXPECT_NE(w.mm.pagemap(src + bit(hs) - bit(P)) & kPmPresent, 0u) << "faulted in";
      EXPECT_EQ(w.mem.pool_free(hs), 0u);
    }
    EXPECT_EQ(w.mm.uffd_copy_from(b + bit(hs) * 8, src, bit(hs), 0).err, Err::enoent) << "no VMA";
  }
}

}  // namespace
