// mm_uffd_test.cpp - userfaultfd and PTE markers in the mm model (docs/mm.md §1 and
// scenarios T01-T16 of §5), typed over the fake exemplar, every real format and Sv39 with
// Svrsw60t59b. "H" is the format's 1 GiB-class hstate, "M" its 2M-class one (mm_world.hpp);
// every count is derived from the format's geometry. Formats whose leaves cannot hold a uffd-wp
// bit check that UFFDIO_REGISTER_MODE_WP is refused (EINVAL) instead of the WP part.
// Every error path is checked to leave the page tables bit-identical (host::Env::snapshot).
#include <gtest/gtest.h>

#include "mm_world.hpp"

namespace {

using namespace mm_world;  // NOLINT(google-build-using-namespace): test file
using hpt_typed::FormatName;

template <class F>
class MmUffdTest : public ::testing::Test {
 protected:
  using W = World<F>;
  static constexpr unsigned kPage = F::page_shift;
  static constexpr uint64_t P = bit(F::page_shift);
  static constexpr unsigned H = kH<F>;
  static constexpr unsigned M = kM<F>;
};
TYPED_TEST_SUITE(MmUffdTest, Formats, FormatName);

#define SKIP_WITHOUT(shift, what) \
  if ((shift) == 0) GTEST_SKIP() << "the format has no " what " leaf size"

template <class W>
void expect_no_invalidation(const W& w) {
  const Counters& c = w.mm.counters();
  EXPECT_EQ(c.notif_start, 0u);
  EXPECT_EQ(c.notif_end, 0u);
  EXPECT_EQ(c.tlb_flush, 0u);
  EXPECT_EQ(c.tlb_flush_all, 0u);
}

// --- T01 / T02
// ------------------------------------------------------------------------------------

TYPED_TEST(MmUffdTest, T01CopyIntoHugetlbTakesWholeHstatePagesAndInstallsOneLeafWithoutNotifying) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H, hl = level_of<F>(H);
  SKIP_WITHOUT(H, "1 GiB-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t base = w.base();
  uint32_t file = w.hugetlb_file(H, 1, 1);
  w.map_file(base, bit(H), file);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(base, bit(H), kRegMissing).ok());
  w.mm.reset_counters();

  auto before = w.snap();
  UffdResult r = w.mm.uffd_copy(base + TestFixture::P, kSrc, TestFixture::P, 0);
  EXPECT_EQ(r.err, Err::einval);
  EXPECT_EQ(r.done, 0u);
  EXPECT_TRUE(w.snap() == before) << "a refused COPY changed the tables";
  EXPECT_EQ(w.mm.counters().entries_written, 0u);
  EXPECT_EQ(w.mem.pool_free(H), 1u);
  r = w.mm.uffd_copy(base, kSrc, TestFixture::P, 0);  // aligned start, length below the hstate
  EXPECT_EQ(r.err, Err::einval);
  EXPECT_TRUE(w.snap() == before);

  r = w.mm.uffd_copy(base, kSrc, bit(H), 0);
  EXPECT_EQ(r.err, Err::ok);
  EXPECT_EQ(r.done, bit(H));
  auto v = w.mm.view(base + bit(H) - TestFixture::P);
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_EQ(v.shift, H);
  EXPECT_EQ(v.entry.addr, w.cached_pa(file, 0));
  EXPECT_TRUE(v.entry.writable);
  EXPECT_FALSE(v.entry.soft.uffd_wp);
  EXPECT_EQ(w.mm.census(base, base + bit(H), hl).leaves, subs_of<F>(H));
  EXPECT_EQ(per_level(w.mm.counters(), true), path_tables<F>(hl))
      << "tables: only the path to the hstate slot";
  for (unsigned l = 0; l < hl; ++l) EXPECT_EQ(w.mm.counters().pt_alloc[l], 0u) << "level " << l;
  expect_no_invalidation(w);
  EXPECT_EQ(w.mem.pool_free(H), 0u);
  uint32_t id = w.cached(file, 0);
  ASSERT_NE(id, kNoFolio);
  EXPECT_EQ(w.mem.mapcount(id), 1u);
  EXPECT_EQ(w.mem.folio(id).refcount, 2u) << "the page cache and the mapping";
}

TYPED_TEST(MmUffdTest, T02CopyOverAnExistingPageIsEexistOnHugetlbAndShmem) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t base = w.base(), sbase = base + bit(H);
  uint32_t file = w.hugetlb_file(H, 1, 2);
  w.map_file(base, bit(H), file);
  uint32_t shm = w.shmem_file(4);
  w.map_file(sbase, 4 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(base, bit(H), kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMissing).ok());
  ASSERT_EQ(w.mm.uffd_copy(base, kSrc, bit(H), 0).err, Err::ok);
  ASSERT_EQ(w.mm.uffd_copy(sbase + P, kSrc, P, 0).err, Err::ok);
  w.mm.reset_counters();

  auto before = w.snap();
  UffdResult r = w.mm.uffd_copy(base, kSrc, bit(H), 0);
  EXPECT_EQ(r.err, Err::eexist);
  EXPECT_EQ(r.done, 0u);
  EXPECT_EQ(w.mem.pool_free(H), 1u) << "no folio taken for a refused COPY";
  r = w.mm.uffd_copy(sbase + P, kSrc, P, 0);
  EXPECT_EQ(r.err, Err::eexist);
  EXPECT_EQ(r.done, 0u);
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mm.counters().entries_written, 0u);

  // Shared shmem: a page already in the cache (written through another mapping) is EEXIST too,
  // although this mapping's entry is none.
  ASSERT_EQ(w.mem.fallocate(shm, 2 * P, P), Err::ok);
  r = w.mm.uffd_copy(sbase + 2 * P, kSrc, P, 0);
  EXPECT_EQ(r.err, Err::eexist);
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mm.view(sbase + 2 * P).entry.kind, Kind::none);
}

// --- T03
// ------------------------------------------------------------------------------------------

TYPED_TEST(MmUffdTest, T03ZeropageIsEinvalOnHugetlbZeroPfnOnPrivateAnonAndACachedPageOnShmem) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), abase = hbase + bit(M), sbase = abase + 4 * P;
  uint32_t hf = w.hugetlb_file(M, 1, 1);
  w.map_file(hbase, bit(M), hf);
  w.map_anon(abase, 4 * P);
  uint32_t shm = w.shmem_file(4);
  w.map_file(sbase, 4 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(hbase, bit(M), kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(abase, 4 * P, kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMissing).ok());
  w.mm.reset_counters();

  auto before = w.snap();
  for (uint64_t len : {bit(M), P}) {
    UffdResult r = w.mm.uffd_zeropage(hbase, len, 0);
    EXPECT_EQ(r.err, Err::einval) << "hugetlb has no huge zero page";
    EXPECT_EQ(r.done, 0u);
  }
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mem.pool_free(M), 1u);

  // Private anonymous: the zero pfn, read-only; nothing enters any cache.
  UffdResult r = w.mm.uffd_zeropage(abase + P, 2 * P, 0);
  EXPECT_EQ(r.err, Err::ok);
  EXPECT_EQ(r.done, 2 * P);
  Result<uint32_t> zp = w.mem.zero_page();
  ASSERT_TRUE(zp.ok());
  for (uint64_t va : {abase + P, abase + 2 * P}) {
    auto v = w.mm.view(va);
    EXPECT_EQ(v.entry.kind, Kind::leaf);
    EXPECT_EQ(v.entry.addr, w.mem.folio(zp.value).pa);
    EXPECT_FALSE(v.entry.writable);
  }
  EXPECT_EQ(w.mm.view(abase).entry.kind, Kind::none);
  // A write to it copies (the zero page is never written).
  FaultResult fr = w.mm.handle_fault(abase + P, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::handled);
  EXPECT_EQ(fr.how, FaultHow::cow);
  EXPECT_NE(w.mm.view(abase + P).entry.addr, w.mem.folio(zp.value).pa);

  // Shared shmem: a zeroed page-cache page, mapped writable.
  r = w.mm.uffd_zeropage(sbase + 3 * P, P, 0);
  EXPECT_EQ(r.err, Err::ok);
  EXPECT_EQ(r.done, P);
  ASSERT_NE(w.cached(shm, 3), kNoFolio);
  auto v = w.mm.view(sbase + 3 * P);
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_EQ(v.entry.addr, w.cached_pa(shm, 3));
  EXPECT_TRUE(v.entry.writable);
  EXPECT_EQ(w.cached(shm, 2), kNoFolio);
  // ZEROPAGE takes no WP mode.
  auto mid = w.snap();
  EXPECT_EQ(w.mm.uffd_zeropage(sbase, P, kModeWp).err, Err::einval);
  EXPECT_TRUE(w.snap() == mid);
}

// --- T04 / T05 / T06
// --------------------------------------------------------------------------------

TYPED_TEST(MmUffdTest, T04MinorFaultQueuesOneMessageAndContinueMapsTheHstateLeafAndWakes) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H, hl = level_of<F>(H);
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  for (bool exact : {false, true}) {
    SCOPED_TRACE(exact ? "EXACT_ADDRESS" : "no EXACT_ADDRESS");
    World<F> w;
    ASSERT_EQ(w.init_err, Err::ok);
    const uint64_t base = w.base(), fault_va = base + 5 * P + 0x18;
    uint32_t file = w.hugetlb_file(H, 1, 1);
    ASSERT_EQ(w.mem.fallocate(file, 0, bit(H)), Err::ok);
    w.map_file(base, bit(H), file);
    ASSERT_EQ(w.mm.uffd_api(exact ? kFeatExactAddress : 0), Err::ok);
    Result<uint64_t> ioctls = w.mm.uffd_register(base, bit(H), kRegMinor);
    ASSERT_TRUE(ioctls.ok());
    EXPECT_TRUE(ioctls.value & kIoctlContinue);
    w.mm.reset_counters();

    auto before = w.snap();
    FaultResult fr = w.mm.handle_fault(fault_va, Access::read);
    EXPECT_EQ(fr.kind, FaultKind::uffd);
    UffdMsg want{exact ? fault_va : base, kMsgMinor};
    EXPECT_EQ(fr.msg, want);
    EXPECT_EQ(w.mm.counters().uffd_msgs, 1u);
    EXPECT_EQ(w.mm.uffd_pending(), 1u);
    EXPECT_EQ(w.mm.uffd_waiters(), 1u);
    EXPECT_TRUE(w.mm.uffd_waiting(fault_va)) << "the thread blocks";
    EXPECT_TRUE(w.snap() == before) << "a userfault changes no entry";
    Result<UffdMsg> m = w.mm.uffd_read();
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m.value, want);
    EXPECT_EQ(w.mm.uffd_read().err, Err::eagain) << "one message only";

    w.mm.reset_counters();
    UffdResult r = w.mm.uffd_continue(base, bit(H), 0);
    EXPECT_EQ(r.err, Err::ok);
    EXPECT_EQ(r.done, bit(H));
    auto v = w.mm.view(fault_va);
    EXPECT_EQ(v.entry.kind, Kind::leaf);
    EXPECT_EQ(v.shift, H);
    EXPECT_EQ(v.entry.addr, w.cached_pa(file, 0));
    EXPECT_TRUE(v.entry.writable) << "shared and VM_WRITE";
    EXPECT_EQ(w.mm.census(base, base + bit(H), hl).leaves, subs_of<F>(H));
    EXPECT_EQ(per_level(w.mm.counters(), true), path_tables<F>(hl));
    expect_no_invalidation(w);
    EXPECT_EQ(w.mm.counters().uffd_wakes, 1u);
    EXPECT_FALSE(w.mm.uffd_waiting(fault_va));
    EXPECT_EQ(w.mm.uffd_waiters(), 0u);
    // The retried access now succeeds without another message.
    fr = w.mm.handle_fault(fault_va, Access::read);
    EXPECT_EQ(fr.kind, FaultKind::handled);
    EXPECT_EQ(w.mm.counters().uffd_msgs, 0u);
    uint32_t id = w.cached(file, 0);
    EXPECT_EQ(w.mem.mapcount(id), 1u);
    EXPECT_EQ(w.mem.folio(id).refcount, 2u);
  }
}

TYPED_TEST(MmUffdTest, T05ContinueWithoutACachedPageIsEfaultAndOnAPoisonedPageEio) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t base = w.base(), sbase = base + 2 * bit(H);
  uint32_t file = w.hugetlb_file(H, 2, 2);
  ASSERT_EQ(w.mem.fallocate(file, bit(H), bit(H)), Err::ok);
  w.map_file(base, 2 * bit(H), file);
  uint32_t shm = w.shmem_file(2);
  w.map_file(sbase, 2 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(base, 2 * bit(H), kRegMinor).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 2 * P, kRegMinor).ok());
  w.mm.reset_counters();

  auto before = w.snap();
  UffdResult r = w.mm.uffd_continue(base, bit(H), 0);
  EXPECT_EQ(r.err, Err::efault);
  EXPECT_EQ(r.done, 0u);
  r = w.mm.uffd_continue(sbase, P, 0);
  EXPECT_EQ(r.err, Err::efault);
  EXPECT_TRUE(w.snap() == before);

  // Memory failure on one base page of the cached folio (nothing maps it): CONTINUE says EIO.
  uint32_t id = w.cached(file, 1);
  ASSERT_NE(id, kNoFolio);
  Result<uint64_t> mf = w.mm.memory_failure(w.mem.folio(id).pa + 3 * P);
  ASSERT_TRUE(mf.ok());
  EXPECT_EQ(mf.value, 0u) << "no mapping to deal with";
  EXPECT_TRUE(w.mem.folio(id).hwpoison);
  r = w.mm.uffd_continue(base + bit(H), bit(H), 0);
  EXPECT_EQ(r.err, Err::eio);
  EXPECT_EQ(r.done, 0u);
  EXPECT_TRUE(w.snap() == before);
  // The same over both hstate pages: the first unit already fails, so no progress either.
  r = w.mm.uffd_continue(base, 2 * bit(H), 0);
  EXPECT_EQ(r.err, Err::efault);
  EXPECT_EQ(r.done, 0u);
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mm.counters().entries_written, 0u);
}

TYPED_TEST(MmUffdTest, BeyondTheEndOfTheFileFaultsRaiseSigbusAndFillsSayEfault) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), sbase = hbase + 2 * bit(M);
  uint32_t hf = w.hugetlb_file(M, 1, 2);
  // Read-only: a writable mapping past the end would extend a hugetlbfs file (hugetlbfs_file_mmap;
  // AWritableHugetlbMappingPastTheEndExtendsTheFile). The second hstate page is beyond i_size.
  VmaSpec hs;
  hs.start = hbase;
  hs.len = 2 * bit(M);
  hs.prot = Prot{true, false, false, false};
  hs.shared = true;
  hs.backing = Backing::file;
  hs.file = hf;
  ASSERT_TRUE(w.mm.mmap(hs).ok());
  uint32_t shm = w.shmem_file(2);
  w.map_file(sbase, 4 * P, shm);  // so are the last two pages
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(hbase, 2 * bit(M), kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMissing).ok());
  w.mm.reset_counters();

  auto before = w.snap();
  for (uint64_t va : {hbase + bit(M) + P, sbase + 3 * P}) {
    for (Access a : {Access::read, Access::write}) {
      if (va < sbase && a == Access::write) continue;  // the read-only mapping: SIGSEGV
      FaultResult fr = w.mm.handle_fault(va, a);
      EXPECT_EQ(fr.kind, FaultKind::sigbus) << std::hex << va;
      EXPECT_EQ(fr.lsb, 0u);
    }
  }
  EXPECT_EQ(w.mm.handle_fault(hbase + bit(M) + P, Access::write).kind, FaultKind::sigsegv);
  EXPECT_EQ(w.mm.counters().uffd_msgs, 0u) << "no userfault beyond i_size";
  UffdResult r = w.mm.uffd_copy(hbase + bit(M), kSrc, bit(M), 0);
  EXPECT_EQ(r.err, Err::efault);
  EXPECT_EQ(r.done, 0u);
  EXPECT_EQ(w.mm.uffd_copy(sbase + 2 * P, kSrc, P, 0).err, Err::efault);
  EXPECT_EQ(w.mm.uffd_poison(sbase + 2 * P, P, 0).err, Err::efault);
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mem.pool_free(M), 2u);
  // Up to the end of the file, progress; then EFAULT becomes EAGAIN with the count.
  r = w.mm.uffd_copy(sbase + P, kSrc, 2 * P, 0);
  EXPECT_EQ(r.err, Err::eagain);
  EXPECT_EQ(r.done, P);
}

TYPED_TEST(MmUffdTest, T06ContinueOnPresentIsEexistAndOnPrivateMapsReadOnlyThenCopiesOnWrite) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t shared = w.base(), priv = shared + 2 * bit(H);
  uint32_t file = w.hugetlb_file(H, 1, 2);
  ASSERT_EQ(w.mem.fallocate(file, 0, bit(H)), Err::ok);
  ASSERT_EQ(w.mem.pool_free(H), 1u);
  w.map_file(shared, bit(H), file, true);
  w.map_file(priv, bit(H), file, false);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(shared, bit(H), kRegMinor).ok());
  ASSERT_TRUE(w.mm.uffd_register(priv, bit(H), kRegMinor).ok());
  ASSERT_EQ(w.mm.uffd_continue(shared, bit(H), 0).err, Err::ok);
  w.mm.reset_counters();

  auto before = w.snap();
  UffdResult r = w.mm.uffd_continue(shared, bit(H), 0);
  EXPECT_EQ(r.err, Err::eexist);
  EXPECT_EQ(r.done, 0u);
  EXPECT_TRUE(w.snap() == before);

  r = w.mm.uffd_continue(priv, bit(H), 0);
  EXPECT_EQ(r.err, Err::ok);
  const uint64_t cache_pa = w.cached_pa(file, 0);
  auto v = w.mm.view(priv + 7 * P);
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_EQ(v.entry.addr, cache_pa);
  EXPECT_FALSE(v.entry.writable) << "a private CONTINUE maps read-only";
  expect_no_invalidation(w);
  uint32_t id = w.cached(file, 0);
  EXPECT_EQ(w.mem.mapcount(id), 2u);

  FaultResult fr = w.mm.handle_fault(priv + 7 * P, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::handled);
  EXPECT_EQ(fr.how, FaultHow::cow);
  EXPECT_EQ(fr.shift, H);
  EXPECT_EQ(w.mem.pool_free(H), 0u) << "the copy is a new hugetlb folio from the pool";
  v = w.mm.view(priv);
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_EQ(v.shift, H);
  EXPECT_NE(v.entry.addr, cache_pa);
  EXPECT_TRUE(v.entry.writable);
  uint32_t copy = w.mem.folio_at(v.entry.addr);
  ASSERT_NE(copy, kNoFolio);
  EXPECT_EQ(w.mem.folio(copy).file, kNoFile) << "an anonymous hugetlb folio";
  EXPECT_EQ(w.mem.mapcount(copy), 1u);
  EXPECT_EQ(w.mem.mapcount(id), 1u) << "only the shared mapping is left on the cached folio";
  EXPECT_EQ(w.mm.view(shared).entry.addr, cache_pa) << "the shared mapping is untouched";
  EXPECT_EQ(w.mm.counters().cow, 1u);
  EXPECT_EQ(w.mm.counters().notif_start, 1u) << "replacing a present leaf invalidates it";
  EXPECT_EQ(w.mm.counters().notif_log[0], (Notification{NotifyEvent::clear, priv, priv + bit(H)}));
}

// --- T07 / T08 / T09
// ----------------------------------------------------------------------------------

TYPED_TEST(MmUffdTest, T07MissingOnlyRegistrationDoesNotTrapAPageAnAliasPutInTheCache) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t p = w.base(), a = p + 2 * bit(H);
  uint32_t file = w.hugetlb_file(H, 1, 1);
  w.map_file(p, bit(H), file);
  w.map_file(a, bit(H), file);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(p, bit(H), kRegMissing).ok());
  w.mm.reset_counters();

  FaultResult fr = w.mm.handle_fault(a + 3 * P, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::handled);
  EXPECT_EQ(fr.how, FaultHow::new_folio);
  ASSERT_NE(w.cached(file, 0), kNoFolio);

  fr = w.mm.handle_fault(p + 9 * P, Access::read);
  EXPECT_EQ(fr.kind, FaultKind::handled);
  EXPECT_EQ(fr.how, FaultHow::page_cache);
  EXPECT_EQ(fr.shift, H);
  EXPECT_EQ(w.mm.counters().uffd_msgs, 0u) << "MISSING-only: a cached page maps without an event";
  auto v = w.mm.view(p);
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_EQ(v.shift, H);
  EXPECT_EQ(v.entry.addr, w.cached_pa(file, 0));
  EXPECT_EQ(w.mem.mapcount(w.cached(file, 0)), 2u);
  expect_no_invalidation(w);
}

TYPED_TEST(MmUffdTest, T08CopyThatStopsHalfwayReportsTheProgressWithEagainAndWakesOnlyThatPart) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t base = w.base();
  uint32_t file = w.hugetlb_file(M, 2, 2);
  w.map_file(base, 2 * bit(M), file);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(base, 2 * bit(M), kRegMissing).ok());

  // A thread waits in the second hugepage, which then gets mapped without a wake-up.
  const uint64_t second_waiter = base + bit(M) + 2 * P;
  ASSERT_EQ(w.mm.handle_fault(second_waiter, Access::read).kind, FaultKind::uffd);
  UffdResult r = w.mm.uffd_copy(base + bit(M), kSrc, bit(M), kModeDontwake);
  ASSERT_EQ(r.err, Err::ok);
  EXPECT_TRUE(w.mm.uffd_waiting(second_waiter)) << "DONTWAKE";
  const uint64_t first_waiter = base + P;
  ASSERT_EQ(w.mm.handle_fault(first_waiter, Access::write).kind, FaultKind::uffd);
  w.mm.reset_counters();

  r = w.mm.uffd_copy(base, kSrc, 2 * bit(M), 0);
  EXPECT_EQ(r.err, Err::eagain) << "some progress, then EEXIST: EAGAIN";
  EXPECT_EQ(r.done, bit(M));
  EXPECT_EQ(w.mm.view(base).entry.kind, Kind::leaf);
  EXPECT_EQ(w.mm.view(base).shift, M);
  EXPECT_EQ(w.mem.pool_free(M), 0u);
  EXPECT_EQ(w.mm.counters().uffd_wakes, 1u);
  EXPECT_FALSE(w.mm.uffd_waiting(first_waiter));
  EXPECT_TRUE(w.mm.uffd_waiting(second_waiter)) << "the wake covers only [start, start + copy)";
  expect_no_invalidation(w);

  EXPECT_EQ(w.mm.uffd_wake(base + bit(M), bit(M)), Err::ok);
  EXPECT_FALSE(w.mm.uffd_waiting(second_waiter));
  EXPECT_EQ(w.mm.counters().uffd_wakes, 2u);
  EXPECT_EQ(w.mm.uffd_waiters(), 0u);
}

TYPED_TEST(MmUffdTest, T08PartialProgressAlsoHoldsForShmemPagesAndAnEmptyPool) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), sbase = hbase + 4 * bit(M);
  uint32_t hf = w.hugetlb_file(M, 3, 2);
  w.map_file(hbase, 3 * bit(M), hf, true, 0, /*noreserve=*/true);  // the pool may run dry
  uint32_t shm = w.shmem_file(8);
  w.map_file(sbase, 8 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(hbase, 3 * bit(M), kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 8 * P, kRegMissing).ok());

  // The pool runs dry after two hugepages: ENOMEM on the third, reported as progress + EAGAIN.
  UffdResult r = w.mm.uffd_copy(hbase, kSrc, 3 * bit(M), 0);
  EXPECT_EQ(r.err, Err::eagain);
  EXPECT_EQ(r.done, 2 * bit(M));
  auto before = w.snap();
  r = w.mm.uffd_copy(hbase + 2 * bit(M), kSrc, bit(M), 0);
  EXPECT_EQ(r.err, Err::enomem) << "no progress: the error itself";
  EXPECT_EQ(r.done, 0u);
  EXPECT_TRUE(w.snap() == before);

  // Shmem in base pages: the fourth page is present, so 3 pages are done.
  ASSERT_EQ(w.mm.uffd_copy(sbase + 3 * P, kSrc, P, 0).err, Err::ok);
  ASSERT_EQ(w.mm.handle_fault(sbase + 5 * P, Access::read).kind, FaultKind::uffd);
  ASSERT_EQ(w.mm.handle_fault(sbase + P, Access::read).kind, FaultKind::uffd);
  w.mm.reset_counters();
  r = w.mm.uffd_copy(sbase, kSrc, 8 * P, 0);
  EXPECT_EQ(r.err, Err::eagain);
  EXPECT_EQ(r.done, 3 * P);
  EXPECT_EQ(w.mm.counters().uffd_wakes, 1u);
  EXPECT_FALSE(w.mm.uffd_waiting(sbase + P));
  EXPECT_TRUE(w.mm.uffd_waiting(sbase + 5 * P));
  expect_no_invalidation(w);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_NE(w.cached(shm, i), kNoFolio) << i;
  EXPECT_EQ(w.cached(shm, 4), kNoFolio);
}

TYPED_TEST(MmUffdTest, T09RangeIoctlsSayEagainWhileANonCooperativeEventIsPending) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), sbase = hbase + bit(M);
  uint32_t hf = w.hugetlb_file(M, 1, 2);
  ASSERT_EQ(w.mem.fallocate(hf, 0, bit(M)), Err::ok);
  w.map_file(hbase, bit(M), hf);
  uint32_t shm = w.shmem_file(4);
  ASSERT_EQ(w.mem.fallocate(shm, 0, 4 * P), Err::ok);
  w.map_file(sbase, 4 * P, shm);
  const bool wp = uffd_wp_supported<F>();
  const uint32_t mode = kRegMissing | kRegMinor | (wp ? kRegWp : 0);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(hbase, bit(M), mode).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, mode).ok());
  w.mm.uffd_set_mmap_changing(true);
  w.mm.reset_counters();

  auto before = w.snap();
  auto expect_eagain = [&](UffdResult r, const char* what) {
    EXPECT_EQ(r.err, Err::eagain) << what;
    EXPECT_EQ(r.done, 0u) << what;
  };
  expect_eagain(w.mm.uffd_copy(sbase, kSrc, P, 0), "COPY");
  expect_eagain(w.mm.uffd_zeropage(sbase, P, 0), "ZEROPAGE");
  expect_eagain(w.mm.uffd_continue(sbase, P, 0), "CONTINUE shmem");
  expect_eagain(w.mm.uffd_continue(hbase, bit(M), 0), "CONTINUE hugetlb");
  expect_eagain(w.mm.uffd_poison(sbase, P, 0), "POISON shmem");
  expect_eagain(w.mm.uffd_poison(hbase, bit(M), 0), "POISON hugetlb");
  if (wp) {
    EXPECT_EQ(w.mm.uffd_writeprotect(sbase, P, kWpModeWp), Err::eagain);
  }
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mm.counters().entries_written, 0u);
  expect_no_invalidation(w);

  w.mm.uffd_set_mmap_changing(false);
  EXPECT_EQ(w.mm.uffd_continue(hbase, bit(M), 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_continue(sbase, P, 0).err, Err::ok);
}

// --- T10 / T11
// ----------------------------------------------------------------------------------------

TYPED_TEST(MmUffdTest, T10WriteprotectOnNoneHugetlbInstallsMarkersThatTrapWritesUntilResolved) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H, hl = level_of<F>(H);
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t base = w.base(), len = 3 * bit(H);
  uint32_t file = w.hugetlb_file(H, 3, 3);
  w.map_file(base, len, file);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  if (!uffd_wp_supported<F>()) {
    auto before = w.snap();
    EXPECT_EQ(w.mm.uffd_register(base, len, kRegWp).err, Err::einval)
        << "no uffd-wp bit in the leaves";
    EXPECT_EQ(w.mm.uffd_register(base, len, kRegMissing | kRegWp).err, Err::einval);
    EXPECT_EQ(w.mm.uffd_writeprotect(base, len, kWpModeWp), Err::enoent) << "not registered";
    EXPECT_TRUE(w.snap() == before);
    return;
  }
  Result<uint64_t> ioctls = w.mm.uffd_register(base, len, kRegWp);
  ASSERT_TRUE(ioctls.ok());
  EXPECT_TRUE(ioctls.value & kIoctlWriteprotect);
  w.mm.reset_counters();

  ASSERT_EQ(w.mm.uffd_writeprotect(base, len, kWpModeWp), Err::ok);
  const Counters& c = w.mm.counters();
  EXPECT_EQ(c.notif_start, 1u);
  EXPECT_EQ(c.notif_end, 1u);
  EXPECT_EQ(c.notif_log[0], (Notification{NotifyEvent::protection_vma, base, base + len}));
  EXPECT_EQ(c.tlb_flush, 1u);
  EXPECT_EQ(per_level(c, true), path_tables<F>(hl)) << "the slots are allocated, nothing below";
  auto cen = w.mm.census(base, base + len, hl);
  EXPECT_EQ(cen.uffd_wp_markers, 3 * subs_of<F>(H));
  EXPECT_EQ(cen.markers, 3 * subs_of<F>(H));
  EXPECT_EQ(c.uffd_wakes, 0u) << "protecting wakes nobody";
  auto v = w.mm.view(base + bit(H) + 4 * P);
  EXPECT_EQ(v.entry.kind, Kind::marker);
  EXPECT_EQ(v.entry.swp.offset, kMarkerUffdWp);

  // A write: the hstate page is populated write-protected and the writer gets a WP message.
  w.mm.reset_counters();
  const uint64_t writer = base + 6 * P;
  FaultResult fr = w.mm.handle_fault(writer, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::uffd);
  EXPECT_EQ(fr.msg, (UffdMsg{base, kMsgWp | kMsgWrite}));
  v = w.mm.view(base);
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_EQ(v.shift, H);
  EXPECT_TRUE(v.entry.soft.uffd_wp);
  EXPECT_FALSE(v.entry.writable);
  EXPECT_TRUE(w.mm.uffd_waiting(writer));

  // A read populates read-only + uffd-wp silently; the following write traps.
  const uint64_t reader = base + bit(H) + 2 * P;
  fr = w.mm.handle_fault(reader, Access::read);
  EXPECT_EQ(fr.kind, FaultKind::handled);
  v = w.mm.view(reader);
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_TRUE(v.entry.soft.uffd_wp);
  EXPECT_FALSE(v.entry.writable);
  fr = w.mm.handle_fault(reader, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::uffd);
  EXPECT_EQ(fr.msg, (UffdMsg{base + bit(H), kMsgWp | kMsgWrite}));
  EXPECT_EQ(w.mm.counters().uffd_msgs, 2u);
  expect_no_invalidation(w);

  // Resolve: the bit goes, the untouched marker returns to none, both writers wake.
  w.mm.reset_counters();
  ASSERT_EQ(w.mm.uffd_writeprotect(base, len, 0), Err::ok);
  EXPECT_EQ(c.notif_start, 1u);
  EXPECT_EQ(c.notif_log[0], (Notification{NotifyEvent::protection_vma, base, base + len}));
  EXPECT_EQ(c.uffd_wakes, 2u);
  EXPECT_EQ(w.mm.uffd_waiters(), 0u);
  EXPECT_EQ(w.mm.census(base + 2 * bit(H), base + len, hl).none, subs_of<F>(H));
  EXPECT_EQ(w.mm.census(base, base + len, hl).markers, 0u);
  for (uint64_t va : {writer, reader}) {
    v = w.mm.view(va);
    EXPECT_EQ(v.entry.kind, Kind::leaf);
    EXPECT_FALSE(v.entry.soft.uffd_wp);
    EXPECT_EQ(w.mm.handle_fault(va, Access::write).kind, FaultKind::handled);
  }
  EXPECT_EQ(c.uffd_msgs, 0u);
}

TYPED_TEST(MmUffdTest, T11CopyAndContinueReplaceAUffdWpMarkerButPoisonAndPrivateZeropageDoNot) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  const bool wp = uffd_wp_supported<F>();
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), abase = hbase + 2 * bit(H), sbase = abase + 4 * P;
  uint32_t hf = w.hugetlb_file(H, 2, 2);
  ASSERT_EQ(w.mem.fallocate(hf, bit(H), bit(H)), Err::ok);
  w.map_file(hbase, 2 * bit(H), hf);
  w.map_anon(abase, 4 * P);
  uint32_t shm = w.shmem_file(4);
  ASSERT_EQ(w.mem.fallocate(shm, 3 * P, P), Err::ok);
  w.map_file(sbase, 4 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(kFeatWpUnpopulated), Err::ok);
  const uint32_t wpmode = wp ? kRegWp : 0;
  ASSERT_TRUE(w.mm.uffd_register(hbase, 2 * bit(H), kRegMissing | kRegMinor | wpmode).ok());
  ASSERT_TRUE(w.mm.uffd_register(abase, 4 * P, kRegMissing | wpmode).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMissing | kRegMinor | wpmode).ok());
  if (wp) {
    ASSERT_EQ(w.mm.uffd_writeprotect(hbase, 2 * bit(H), kWpModeWp), Err::ok);
    ASSERT_EQ(w.mm.uffd_writeprotect(abase, 4 * P, kWpModeWp), Err::ok) << "WP_UNPOPULATED";
    ASSERT_EQ(w.mm.uffd_writeprotect(sbase, 4 * P, kWpModeWp), Err::ok);
  } else {
    EXPECT_EQ(w.mm.uffd_register(sbase, 4 * P, kRegWp).err, Err::einval);
    w.put_marker(hbase, 2 * bit(H), H, kMarkerUffdWp);
    w.put_marker(abase, 4 * P, F::page_shift, kMarkerUffdWp);
    w.put_marker(sbase, 4 * P, F::page_shift, kMarkerUffdWp);
  }
  ASSERT_EQ(w.mm.view(abase + P).entry.kind, Kind::marker);
  w.mm.reset_counters();

  // Strict-none installs refuse markers.
  auto before = w.snap();
  EXPECT_EQ(w.mm.uffd_poison(hbase, bit(H), 0).err, Err::eexist);
  EXPECT_EQ(w.mm.uffd_poison(abase, P, 0).err, Err::eexist);
  EXPECT_EQ(w.mm.uffd_poison(sbase, P, 0).err, Err::eexist);
  EXPECT_EQ(w.mm.uffd_zeropage(abase, P, 0).err, Err::eexist) << "private ZEROPAGE: pte_none only";
  EXPECT_TRUE(w.snap() == before);

  // COPY and CONTINUE overwrite them (and without MODE_WP the new entry is not protected).
  EXPECT_EQ(w.mm.uffd_copy(hbase, kSrc, bit(H), 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_continue(hbase + bit(H), bit(H), 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_copy(abase + P, kSrc, P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_copy(sbase, kSrc, P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_continue(sbase + 3 * P, P, 0).err, Err::ok);
  // Shared shmem ZEROPAGE goes through the shmem install and replaces the marker too.
  EXPECT_EQ(w.mm.uffd_zeropage(sbase + P, P, 0).err, Err::ok);
  for (uint64_t va : {hbase, hbase + bit(H), abase + P, sbase, sbase + P, sbase + 3 * P}) {
    auto v = w.mm.view(va);
    EXPECT_EQ(v.entry.kind, Kind::leaf) << std::hex << va;
    EXPECT_FALSE(v.entry.soft.uffd_wp) << std::hex << va;
    EXPECT_TRUE(v.entry.writable) << std::hex << va;
  }
  EXPECT_EQ(w.mm.view(hbase).entry.addr, w.cached_pa(hf, 0));
  EXPECT_EQ(w.mm.view(sbase + P).entry.addr, w.cached_pa(shm, 1));
  EXPECT_EQ(w.mm.view(abase + 2 * P).entry.kind, Kind::marker)
      << "its neighbours keep their markers";
  EXPECT_EQ(w.mm.view(sbase + 2 * P).entry.kind, Kind::marker);
  expect_no_invalidation(w);

  // MODE_WP: the replacement keeps the protection (formats with the bit).
  if (wp) {
    EXPECT_EQ(w.mm.uffd_copy(abase + 2 * P, kSrc, P, kModeWp).err, Err::ok);
    auto v = w.mm.view(abase + 2 * P);
    EXPECT_EQ(v.entry.kind, Kind::leaf);
    EXPECT_TRUE(v.entry.soft.uffd_wp);
    EXPECT_FALSE(v.entry.writable);
    FaultResult fr = w.mm.handle_fault(abase + 2 * P, Access::write);
    EXPECT_EQ(fr.kind, FaultKind::uffd);
    EXPECT_EQ(fr.msg, (UffdMsg{abase + 2 * P, kMsgWp | kMsgWrite}));
  } else {
    auto mid = w.snap();
    EXPECT_EQ(w.mm.uffd_copy(abase + 2 * P, kSrc, P, kModeWp).err, Err::einval)
        << "MODE_WP without WP";
    EXPECT_TRUE(w.snap() == mid);
  }
}

// --- T12 / T13 / T14
// ----------------------------------------------------------------------------------

TYPED_TEST(MmUffdTest, T12PoisonInstallsPoisonedMarkersThatRaiseSigbusWithTheRightLsb) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H, hl = level_of<F>(H);
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), abase = hbase + bit(H), sbase = abase + 4 * P;
  uint32_t hf = w.hugetlb_file(H, 1, 1);
  w.map_file(hbase, bit(H), hf);
  w.map_anon(abase, 4 * P);
  uint32_t shm = w.shmem_file(4);
  w.map_file(sbase, 4 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(kFeatPoison), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(hbase, bit(H), kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(abase, 4 * P, kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMissing).ok());
  w.mm.reset_counters();

  UffdResult r = w.mm.uffd_poison(sbase + P, P, 0);
  EXPECT_EQ(r.err, Err::ok);
  EXPECT_EQ(r.done, P);
  auto v = w.mm.view(sbase + P);
  EXPECT_EQ(v.entry.kind, Kind::marker);
  EXPECT_EQ(v.entry.swp.offset, kMarkerPoisoned);
  EXPECT_EQ(w.cached(shm, 1), kNoFolio) << "POISON puts nothing in the cache";
  for (Access a : {Access::read, Access::write}) {
    FaultResult fr = w.mm.handle_fault(sbase + P + 8, a);
    EXPECT_EQ(fr.kind, FaultKind::sigbus);
    EXPECT_EQ(fr.lsb, F::page_shift) << "BUS_MCEERR_AR, lsb = PAGE_SHIFT";
  }
  EXPECT_EQ(w.mm.uffd_poison(abase, P, 0).err, Err::ok);
  FaultResult fr = w.mm.handle_fault(abase, Access::read);
  EXPECT_EQ(fr.kind, FaultKind::sigbus);
  EXPECT_EQ(fr.lsb, F::page_shift);
  EXPECT_EQ(w.mm.counters().uffd_msgs, 0u) << "a poisoned marker never reaches userfaultfd";

  // Hugetlb: hstate-sized only.
  auto before = w.snap();
  r = w.mm.uffd_poison(hbase + P, P, 0);
  EXPECT_EQ(r.err, Err::einval);
  EXPECT_EQ(r.done, 0u);
  EXPECT_EQ(w.mm.uffd_poison(hbase, P, 0).err, Err::einval);
  EXPECT_TRUE(w.snap() == before);
  r = w.mm.uffd_poison(hbase, bit(H), 0);
  EXPECT_EQ(r.err, Err::ok);
  EXPECT_EQ(r.done, bit(H));
  EXPECT_EQ(w.mm.census(hbase, hbase + bit(H), hl).markers, subs_of<F>(H));
  for (uint64_t va : {hbase, hbase + 3 * P + 5, hbase + bit(H) - 1}) {
    fr = w.mm.handle_fault(va, Access::read);
    EXPECT_EQ(fr.kind, FaultKind::sigbus) << std::hex << va;
    EXPECT_EQ(fr.lsb, H) << "VM_FAULT_HWPOISON_LARGE: lsb = hstate shift";
  }
  EXPECT_EQ(w.mem.pool_free(H), 1u);
  // A second POISON over the marker: EEXIST.
  auto mid = w.snap();
  EXPECT_EQ(w.mm.uffd_poison(hbase, bit(H), 0).err, Err::eexist);
  EXPECT_TRUE(w.snap() == mid);
  expect_no_invalidation(w);
}

TYPED_TEST(MmUffdTest, T13ZapTurnsUffdWpPagesIntoMarkersKeepsGuardsDropsPoisonAndMunmapDropsAll) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H, hl = level_of<F>(H);
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  const bool wp = uffd_wp_supported<F>();
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), abase = hbase + bit(H), sbase = abase + 4 * P;
  uint32_t hf = w.hugetlb_file(H, 1, 1);
  w.map_file(hbase, bit(H), hf);
  w.map_anon(abase, 4 * P);
  uint32_t shm = w.shmem_file(4);
  w.map_file(sbase, 4 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  if (!wp) {
    EXPECT_EQ(w.mm.uffd_register(sbase, 4 * P, kRegMissing | kRegWp).err, Err::einval);
  }
  const uint32_t mode = kRegMissing | (wp ? kRegWp : 0);
  ASSERT_TRUE(w.mm.uffd_register(hbase, bit(H), mode).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, mode).ok());

  if (wp) {
    // uffd-wp protected pages, zapped by MADV_DONTNEED and by a hole punch, leave markers.
    ASSERT_EQ(w.mm.uffd_copy(sbase, kSrc, 2 * P, kModeWp).err, Err::ok);
    ASSERT_EQ(w.mm.uffd_copy(hbase, kSrc, bit(H), 0).err, Err::ok);
    ASSERT_EQ(w.mm.uffd_writeprotect(hbase, bit(H), kWpModeWp), Err::ok);
    ASSERT_TRUE(w.mm.view(hbase).entry.soft.uffd_wp);
    uint32_t hid = w.cached(hf, 0);
    w.mm.reset_counters();
    ASSERT_EQ(w.mm.madvise_dontneed(sbase, P), Err::ok);
    auto v = w.mm.view(sbase);
    EXPECT_EQ(v.entry.kind, Kind::marker);
    EXPECT_EQ(v.entry.swp.offset, kMarkerUffdWp);
    EXPECT_NE(w.cached(shm, 0), kNoFolio) << "DONTNEED keeps the cache";
    EXPECT_EQ(w.mm.counters().notif_start, 1u);
    EXPECT_EQ(w.mm.counters().notif_log[0], (Notification{NotifyEvent::clear, sbase, sbase + P}));

    ASSERT_EQ(w.mem.punch_hole(shm, P, P), Err::ok);
    v = w.mm.view(sbase + P);
    EXPECT_EQ(v.entry.kind, Kind::marker);
    EXPECT_EQ(v.entry.swp.offset, kMarkerUffdWp);
    EXPECT_EQ(w.cached(shm, 1), kNoFolio);

    ASSERT_EQ(w.mm.madvise_dontneed(hbase, bit(H)), Err::ok);
    EXPECT_EQ(w.mm.census(hbase, hbase + bit(H), hl).uffd_wp_markers, subs_of<F>(H));
    EXPECT_EQ(w.mem.mapcount(hid), 0u);
    EXPECT_EQ(w.mem.folio(hid).refcount, 1u) << "only the cache";
    // The marker still traps: a write populates write-protected and sends WP.
    FaultResult fr = w.mm.handle_fault(hbase + P, Access::write);
    EXPECT_EQ(fr.kind, FaultKind::uffd);
    EXPECT_EQ(fr.msg.flags, kMsgWp | kMsgWrite);
    EXPECT_EQ(w.mm.view(hbase).entry.addr, w.mem.folio(hid).pa) << "the cached page, not a new one";
  }

  // Guard markers survive MADV_DONTNEED; poison markers do not.
  ASSERT_EQ(w.mm.madvise_guard_install(abase, P), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(abase, 4 * P, kRegMissing).ok());
  ASSERT_EQ(w.mm.uffd_poison(abase + P, P, 0).err, Err::ok);
  ASSERT_EQ(w.mm.uffd_poison(sbase + 2 * P, P, 0).err, Err::ok);
  ASSERT_EQ(w.mm.madvise_dontneed(abase, 4 * P), Err::ok);
  ASSERT_EQ(w.mm.madvise_dontneed(sbase + 2 * P, P), Err::ok);
  auto v = w.mm.view(abase);
  EXPECT_EQ(v.entry.kind, Kind::marker);
  EXPECT_EQ(v.entry.swp.offset, kMarkerGuard);
  EXPECT_EQ(w.mm.view(abase + P).entry.kind, Kind::none);
  EXPECT_EQ(w.mm.view(sbase + 2 * P).entry.kind, Kind::none);

  // munmap: nothing remains, markers included, and the tables go.
  ASSERT_EQ(w.mm.munmap(hbase, bit(H) + 8 * P), Err::ok);
  for (uint64_t va = hbase; va < hbase + bit(H); va += bit(F::shift(hl)))
    EXPECT_EQ(w.mm.view(va).entry.kind, Kind::none);
  for (uint64_t va = abase; va < abase + 8 * P; va += P)
    EXPECT_EQ(w.mm.view(va).entry.kind, Kind::none);
  for (unsigned l = 0; l + 1 < F::levels; ++l)
    EXPECT_EQ(w.mm.census(hbase, hbase + bit(H) + 8 * P, l).markers, 0u) << "level " << l;
  EXPECT_EQ(w.env.live(), 1u) << "only the root is left";
}

TYPED_TEST(MmUffdTest, T14GuardMarkersRaiseSigsegvAlsoWhenOneAppearsInHugetlb) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), abase = hbase + bit(H), sbase = abase + 4 * P;
  uint32_t hf = w.hugetlb_file(H, 1, 1);
  w.map_file(hbase, bit(H), hf);
  w.map_anon(abase, 4 * P);
  uint32_t shm = w.shmem_file(4);
  w.map_file(sbase, 4 * P, shm);

  ASSERT_EQ(w.mm.madvise_guard_install(abase + P, 2 * P), Err::ok);
  ASSERT_EQ(w.mm.madvise_guard_install(sbase, P), Err::ok);
  for (Access a : {Access::read, Access::write}) {
    EXPECT_EQ(w.mm.handle_fault(abase + P, a).kind, FaultKind::sigsegv);
    EXPECT_EQ(w.mm.handle_fault(abase + 2 * P + 7, a).kind, FaultKind::sigsegv);
    EXPECT_EQ(w.mm.handle_fault(sbase, a).kind, FaultKind::sigsegv);
  }
  EXPECT_EQ(w.mm.handle_fault(abase, Access::write).kind, FaultKind::handled)
      << "the neighbour maps";
  EXPECT_EQ(w.cached(shm, 0), kNoFolio);
  // Into a taken slot: EEXIST, nothing changed.
  auto before = w.snap();
  EXPECT_EQ(w.mm.madvise_guard_install(abase, 2 * P), Err::eexist);
  EXPECT_TRUE(w.snap() == before);

  // Guard regions do not support hugetlb; a guard marker found there anyway is SIGSEGV.
  EXPECT_EQ(w.mm.madvise_guard_install(hbase, bit(H)), Err::einval);
  EXPECT_TRUE(w.snap() == before);
  w.put_marker(hbase, bit(H), H, kMarkerGuard);
  EXPECT_EQ(w.mm.handle_fault(hbase + 3 * P, Access::read).kind, FaultKind::sigsegv);
  EXPECT_EQ(w.mm.handle_fault(hbase + bit(H) - P, Access::write).kind, FaultKind::sigsegv);
  EXPECT_EQ(w.mem.pool_free(H), 1u);
}

// --- T15: registration
// --------------------------------------------------------------------------------

TYPED_TEST(MmUffdTest, T15RegistrationValidatesModeRangeAndBackingAndReturnsTheUsableIoctls) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), abase = hbase + 2 * bit(M), sbase = abase + 4 * P;
  uint32_t hf = w.hugetlb_file(M, 2, 2);
  w.map_file(hbase, 2 * bit(M), hf);
  w.map_anon(abase, 4 * P);
  uint32_t shm = w.shmem_file(4);
  w.map_file(sbase, 4 * P, shm);
  const uint64_t hole = sbase + 8 * P;  // nothing mapped from sbase + 4 pages on
  auto before = w.snap();

  EXPECT_EQ(w.mm.uffd_register(abase, 4 * P, kRegMissing).err, Err::einval) << "no UFFDIO_API yet";
  EXPECT_EQ(w.mm.uffd_api(uint64_t{1} << 62), Err::einval) << "unknown feature";
  ASSERT_EQ(w.mm.uffd_api(kFeatAll), Err::ok);
  EXPECT_EQ(w.mm.uffd_api(0), Err::einval) << "UFFDIO_API twice";
  EXPECT_EQ(w.mm.uffd_register(abase, 4 * P, 0).err, Err::einval) << "no mode";
  EXPECT_EQ(w.mm.uffd_register(abase, 4 * P, 1u << 5).err, Err::einval) << "unknown mode";
  EXPECT_EQ(w.mm.uffd_register(abase, 4 * P, kRegMinor).err, Err::einval) << "MINOR on anonymous";
  EXPECT_EQ(w.mm.uffd_register(abase, 4 * P, kRegMissing | kRegMinor).err, Err::einval);
  EXPECT_EQ(w.mm.uffd_register(abase, 0, kRegMissing).err, Err::einval) << "empty";
  EXPECT_EQ(w.mm.uffd_register(abase + 1, 4 * P, kRegMissing).err, Err::einval)
      << "not page aligned";
  EXPECT_EQ(w.mm.uffd_register(hbase + P, 2 * bit(M) - P, kRegMissing).err, Err::einval)
      << "hugetlb: hstate aligned start";
  EXPECT_EQ(w.mm.uffd_register(hbase, bit(M) + P, kRegMissing).err, Err::einval)
      << "hugetlb: hstate aligned end";
  EXPECT_EQ(w.mm.uffd_register(hole, 4 * P, kRegMissing).err, Err::enomem)
      << "no VMA ends above start (find_vma finds none)";
  EXPECT_EQ(w.mm.uffd_register(hbase - 4 * P, 4 * P, kRegMissing).err, Err::einval)
      << "the first VMA above starts at or past the end";
  if (!uffd_wp_supported<F>()) {
    EXPECT_EQ(w.mm.uffd_register(sbase, 4 * P, kRegWp).err, Err::einval) << "no uffd-wp bit";
    EXPECT_EQ(w.mm.uffd_register(abase, 4 * P, kRegMissing | kRegWp).err, Err::einval);
  }
  EXPECT_TRUE(w.snap() == before);
  EXPECT_EQ(w.mm.uffd_copy(abase, kSrc, P, 0).err, Err::enoent)
      << "refused registrations register nothing";
  EXPECT_EQ(w.mm.uffd_copy(sbase, kSrc, P, 0).err, Err::enoent);
  EXPECT_EQ(w.mm.uffd_continue(hbase, bit(M), 0).err, Err::enoent);

  const uint64_t base = kIoctlWake | kIoctlCopy | kIoctlPoison;
  Result<uint64_t> r = w.mm.uffd_register(hbase, 2 * bit(M), kRegMissing);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, base) << "hugetlb: no ZEROPAGE; no CONTINUE without MINOR";
  r = w.mm.uffd_register(hbase, 2 * bit(M), kRegMissing | kRegMinor);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, base | kIoctlContinue);
  r = w.mm.uffd_register(abase, 4 * P, kRegMissing);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, base | kIoctlZeropage) << "anonymous: no CONTINUE";
  r = w.mm.uffd_register(sbase, 4 * P, kRegMinor);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, base | kIoctlZeropage | kIoctlContinue);
  // A range over several VMAs gets what all of them allow.
  r = w.mm.uffd_register(hbase, sbase + 4 * P - hbase, kRegMissing);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, base);
  if (uffd_wp_supported<F>()) {
    r = w.mm.uffd_register(sbase, 4 * P, kRegMissing | kRegMinor | kRegWp);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value, base | kIoctlZeropage | kIoctlContinue | kIoctlWriteprotect);
    r = w.mm.uffd_register(hbase, 2 * bit(M), kRegWp);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value, base | kIoctlWriteprotect);
  }
  // As Linux (the linux ring's register_with_hole and register_part_of_vma): a range may hold
  // a hole, and a range that cuts a VMA splits it, so that exactly the range is registered.
  r = w.mm.uffd_register(sbase, 8 * P, kRegMissing);
  ASSERT_TRUE(r.ok()) << "a hole in the range";
  ASSERT_EQ(w.mm.uffd_unregister(abase, 4 * P), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(abase + P, 2 * P, kRegMissing).ok()) << "part of a VMA";
  EXPECT_EQ(w.mm.vma_at(abase)->uffd, 0u);
  EXPECT_EQ(w.mm.vma_at(abase + P)->uffd, kRegMissing);
  EXPECT_EQ(w.mm.vma_at(abase + P)->start, abase + P);
  EXPECT_EQ(w.mm.vma_at(abase + 2 * P)->end, abase + 3 * P);
  EXPECT_EQ(w.mm.vma_at(abase + 3 * P)->start, abase + 3 * P);
  EXPECT_TRUE(w.snap() == before) << "registering writes no entry";
}

TYPED_TEST(MmUffdTest, T15AHugetlbMappingRegisteredMinorSharesNoTablesWithAnotherMappingOfTheFile) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M, ml = level_of<F>(M);
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  if (ml + 1 >= F::levels) GTEST_SKIP() << "the 2M-class slot is in the root table";
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  // P and A in different tables of the level holding the hstate slots (as two processes would
  // map them, one table's span apart).
  const uint64_t p = w.base(), a = p + bit(F::shift(ml + 1));
  uint32_t file = w.hugetlb_file(M, 1, 1);
  ASSERT_EQ(w.mem.fallocate(file, 0, bit(M)), Err::ok);
  w.map_file(p, bit(M), file);
  w.map_file(a, bit(M), file);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(p, bit(M), kRegMinor).ok());
  w.mm.reset_counters();

  FaultResult fr = w.mm.handle_fault(a + P, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::handled);
  EXPECT_EQ(w.mm.view(p).entry.kind, Kind::none) << "a fault through A does not populate P";
  fr = w.mm.handle_fault(p + P, Access::read);
  EXPECT_EQ(fr.kind, FaultKind::uffd);
  EXPECT_EQ(fr.msg, (UffdMsg{p, kMsgMinor}));
  ASSERT_EQ(w.mm.uffd_continue(p, bit(M), 0).err, Err::ok);
  // The tables holding the two hstate slots, by the table entries above them.
  Found fp = find(w.mm.table(), p, ml + 1).value, fa = find(w.mm.table(), a, ml + 1).value;
  ASSERT_EQ(fp.level, ml + 1);
  ASSERT_EQ(fa.level, ml + 1);
  ASSERT_TRUE(F::is_table(fp.raw, ml + 1));
  ASSERT_TRUE(F::is_table(fa.raw, ml + 1));
  EXPECT_NE(F::out_addr(fp.raw, ml + 1), F::out_addr(fa.raw, ml + 1))
      << "the two mappings' hstate slots are in different table pages";
  std::vector<uint64_t> two = path_tables<F>(ml);
  two[ml] = 2;  // one table of hstate slots per mapping
  EXPECT_EQ(per_level(w.mm.counters(), true), two);
}

// --- fault messages and wake-ups
// ------------------------------------------------------------------------

TYPED_TEST(MmUffdTest, MessagesCarryWriteMinorWpFlagsAndPageOrHstateAddressesUnlessExact) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  const bool wp = uffd_wp_supported<F>();
  for (bool exact : {false, true}) {
    SCOPED_TRACE(exact ? "EXACT_ADDRESS" : "no EXACT_ADDRESS");
    World<F> w;
    ASSERT_EQ(w.init_err, Err::ok);
    const uint64_t hbase = w.base(), abase = hbase + 2 * bit(M), sbase = abase + 4 * P;
    uint32_t hf = w.hugetlb_file(M, 2, 2);
    ASSERT_EQ(w.mem.fallocate(hf, bit(M), bit(M)), Err::ok);
    w.map_file(hbase, 2 * bit(M), hf);
    w.map_anon(abase, 4 * P);
    uint32_t shm = w.shmem_file(4);
    ASSERT_EQ(w.mem.fallocate(shm, 2 * P, P), Err::ok);
    w.map_file(sbase, 4 * P, shm);
    ASSERT_EQ(w.mm.uffd_api(exact ? kFeatExactAddress : 0), Err::ok);
    const uint32_t wpm = wp ? kRegWp : 0;
    ASSERT_TRUE(w.mm.uffd_register(hbase, 2 * bit(M), kRegMissing | kRegMinor | wpm).ok());
    ASSERT_TRUE(w.mm.uffd_register(abase, 4 * P, kRegMissing | wpm).ok());
    ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMissing | kRegMinor | wpm).ok());
    auto addr = [&](uint64_t va, unsigned round) { return exact ? va : align_down(va, round); };

    struct Case {
      uint64_t va;
      Access access;
      uint32_t flags;
      unsigned round;
    };
    const Case cases[] = {
        {hbase + 3 * P + 0x40, Access::read, 0, M},                     // missing hugetlb
        {hbase + bit(M) - 1, Access::write, kMsgWrite, M},              // missing, write
        {hbase + bit(M) + 5 * P + 8, Access::read, kMsgMinor, M},       // cached: MINOR
        {hbase + bit(M) + P, Access::write, kMsgMinor | kMsgWrite, M},  // MINOR, write
        {abase + P + 0x10, Access::read, 0, F::page_shift},             // anonymous
        {abase + 3 * P + 0x20, Access::write, kMsgWrite, F::page_shift},
        {sbase + 0x30, Access::write, kMsgWrite, F::page_shift},         // shmem missing
        {sbase + 2 * P + 0x50, Access::read, kMsgMinor, F::page_shift},  // shmem cached
    };
    auto before = w.snap();
    unsigned n = 0;
    for (const Case& c : cases) {
      FaultResult fr = w.mm.handle_fault(c.va, c.access);
      UffdMsg want{addr(c.va, c.round), c.flags};
      EXPECT_EQ(fr.kind, FaultKind::uffd) << std::hex << c.va;
      EXPECT_EQ(fr.msg, want) << std::hex << c.va;
      ++n;
      EXPECT_EQ(w.mm.uffd_pending(), n);
      EXPECT_TRUE(w.mm.uffd_waiting(c.va));
    }
    EXPECT_TRUE(w.snap() == before) << "MISSING and MINOR faults change nothing";
    for (const Case& c : cases) {
      Result<UffdMsg> m = w.mm.uffd_read();
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m.value, (UffdMsg{addr(c.va, c.round), c.flags})) << "in order";
    }
    EXPECT_EQ(w.mm.uffd_waiters(), n);
    EXPECT_EQ(w.mm.counters().uffd_msgs, n);

    if (wp) {  // WP faults: WP|WRITE, same address rules.
      ASSERT_EQ(w.mm.uffd_copy(hbase, kSrc, bit(M), kModeWp).err, Err::ok);
      ASSERT_EQ(w.mm.uffd_copy(abase, kSrc, P, kModeWp).err, Err::ok);
      const uint64_t hv = hbase + 7 * P + 4, av = abase + 0x44;
      FaultResult fr = w.mm.handle_fault(hv, Access::write);
      EXPECT_EQ(fr.kind, FaultKind::uffd);
      EXPECT_EQ(fr.msg, (UffdMsg{addr(hv, M), kMsgWp | kMsgWrite}));
      fr = w.mm.handle_fault(av, Access::write);
      EXPECT_EQ(fr.msg, (UffdMsg{addr(av, F::page_shift), kMsgWp | kMsgWrite}));
      EXPECT_EQ(w.mm.handle_fault(av, Access::read).kind, FaultKind::handled) << "reads are fine";
    }
  }
}

TYPED_TEST(MmUffdTest, WakeUpsReachOnlyWaitersInsideTheResolvedRange) {
  using F = TypeParam;
  constexpr uint64_t P = TestFixture::P;
  const bool wp = uffd_wp_supported<F>();
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t sbase = w.base();
  uint32_t shm = w.shmem_file(8);
  w.map_file(sbase, 8 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(sbase, 8 * P, kRegMissing | (wp ? kRegWp : 0)).ok());
  for (uint64_t i = 0; i < 8; ++i)
    ASSERT_EQ(w.mm.handle_fault(sbase + i * P + 8, Access::read).kind, FaultKind::uffd);
  ASSERT_EQ(w.mm.uffd_waiters(), 8u);
  auto waiting = [&](uint64_t i) { return w.mm.uffd_waiting(sbase + i * P + 8); };

  EXPECT_EQ(w.mm.uffd_wake(sbase + 2 * P, P), Err::ok);
  EXPECT_FALSE(waiting(2));
  EXPECT_EQ(w.mm.uffd_waiters(), 7u);
  EXPECT_EQ(w.mm.uffd_wake(sbase + 1, P), Err::einval) << "WAKE needs a page-aligned range";
  EXPECT_EQ(w.mm.uffd_copy(sbase + 3 * P, kSrc, 2 * P, kModeDontwake).err, Err::ok);
  EXPECT_TRUE(waiting(3));
  EXPECT_TRUE(waiting(4));
  EXPECT_EQ(w.mm.uffd_zeropage(sbase + 5 * P, P, 0).err, Err::ok);
  EXPECT_FALSE(waiting(5));
  EXPECT_TRUE(waiting(4));
  EXPECT_TRUE(waiting(6));
  EXPECT_EQ(w.mm.uffd_poison(sbase + 6 * P, P, kModeDontwake).err, Err::ok);
  EXPECT_TRUE(waiting(6));
  EXPECT_EQ(w.mm.uffd_poison(sbase + 7 * P, P, 0).err, Err::ok);
  EXPECT_FALSE(waiting(7));
  if (wp) {
    EXPECT_EQ(w.mm.uffd_writeprotect(sbase, 2 * P, kWpModeWp | kWpModeDontwake), Err::einval)
        << "WP with DONTWAKE";
    EXPECT_EQ(w.mm.uffd_writeprotect(sbase, 2 * P, kWpModeWp), Err::ok);
    EXPECT_TRUE(waiting(0)) << "protecting wakes nobody";
    EXPECT_EQ(w.mm.uffd_writeprotect(sbase, P, kWpModeDontwake), Err::ok);
    EXPECT_TRUE(waiting(0)) << "resolve with DONTWAKE";
    EXPECT_EQ(w.mm.uffd_writeprotect(sbase + P, P, 0), Err::ok);
    EXPECT_FALSE(waiting(1));
    EXPECT_TRUE(waiting(0));
  }
  EXPECT_EQ(w.mm.uffd_wake(sbase, 8 * P), Err::ok);
  EXPECT_EQ(w.mm.uffd_waiters(), 0u);
  EXPECT_EQ(w.mm.counters().uffd_wakes, 8u);
}

TYPED_TEST(MmUffdTest, WakeUpsMatchTheMessageAddressWhichIsTheHstateBaseWithoutExactAddress) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  for (bool exact : {false, true}) {
    SCOPED_TRACE(exact ? "EXACT_ADDRESS" : "no EXACT_ADDRESS");
    World<F> w;
    ASSERT_EQ(w.init_err, Err::ok);
    const uint64_t base = w.base(), va = base + 3 * P + 0x10;
    uint32_t file = w.hugetlb_file(M, 1, 1);
    w.map_file(base, bit(M), file);
    ASSERT_EQ(w.mm.uffd_api(exact ? kFeatExactAddress : 0), Err::ok);
    ASSERT_TRUE(w.mm.uffd_register(base, bit(M), kRegMissing).ok());
    ASSERT_EQ(w.mm.handle_fault(va, Access::read).kind, FaultKind::uffd);
    // userfaultfd_wake_function compares the range with the message's address.
    ASSERT_EQ(w.mm.uffd_wake(base + 3 * P, P), Err::ok);
    EXPECT_EQ(w.mm.uffd_waiting(va), !exact) << "the page of the fault, not of the message";
    ASSERT_EQ(w.mm.uffd_wake(base, P), Err::ok);
    EXPECT_FALSE(w.mm.uffd_waiting(va));
    EXPECT_EQ(w.mm.counters().uffd_wakes, 1u);
  }
}

TYPED_TEST(MmUffdTest, UnregisterResetsUffdWpBitsAndMarkersAndALeftoverMarkerNeverSendsAnEvent) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M, ml = level_of<F>(M);
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), sbase = hbase + 2 * bit(M);
  uint32_t hf = w.hugetlb_file(M, 2, 2);
  w.map_file(hbase, 2 * bit(M), hf);
  uint32_t shm = w.shmem_file(4);
  w.map_file(sbase, 4 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  if (!uffd_wp_supported<F>()) {
    EXPECT_EQ(w.mm.uffd_register(hbase, 2 * bit(M), kRegWp).err, Err::einval);
    return;
  }
  ASSERT_TRUE(w.mm.uffd_register(hbase, 2 * bit(M), kRegMissing | kRegWp).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMissing | kRegWp).ok());
  ASSERT_EQ(w.mm.uffd_copy(hbase, kSrc, bit(M), kModeWp).err, Err::ok);
  ASSERT_EQ(w.mm.uffd_copy(sbase, kSrc, P, kModeWp).err, Err::ok);
  ASSERT_EQ(w.mm.uffd_writeprotect(hbase, 2 * bit(M), kWpModeWp), Err::ok);
  ASSERT_EQ(w.mm.uffd_writeprotect(sbase, 4 * P, kWpModeWp), Err::ok);
  ASSERT_EQ(w.mm.handle_fault(hbase + P, Access::write).kind, FaultKind::uffd);

  // Registering again without WP keeps the bits and markers, but they send no event any more:
  // a shmem marker is dropped and the fault maps as missing; a hugetlb one still maps
  // write-protected, and the write completes on a shared mapping.
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMinor).ok());
  ASSERT_TRUE(w.mm.uffd_register(hbase, 2 * bit(M), kRegMinor).ok());
  w.mm.reset_counters();
  EXPECT_EQ(w.mm.view(sbase + P).entry.kind, Kind::marker);
  FaultResult fr = w.mm.handle_fault(sbase + P, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::handled);
  auto v = w.mm.view(sbase + P);
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_TRUE(v.entry.writable);
  EXPECT_FALSE(v.entry.soft.uffd_wp) << "core mm clears a uffd-wp marker the VMA no longer wants";
  fr = w.mm.handle_fault(hbase + bit(M) + P, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::handled);
  v = w.mm.view(hbase + bit(M));
  EXPECT_EQ(v.entry.kind, Kind::leaf);
  EXPECT_TRUE(v.entry.writable) << "handled means the write can go ahead";
  EXPECT_EQ(w.mm.counters().uffd_msgs, 0u);
  fr = w.mm.handle_fault(hbase + P, Access::write);
  EXPECT_EQ(fr.kind, FaultKind::handled)
      << "a uffd-wp bit in a VMA without WP: a plain write fault";
  EXPECT_EQ(w.mm.counters().uffd_msgs, 0u);

  // UNREGISTER of a WP registration resets bits and markers (one PROTECTION_VMA pair); it
  // wakes no waiter (userfaultfd_unregister wakes those of a MISSING registration only).
  ASSERT_TRUE(w.mm.uffd_register(hbase, 2 * bit(M), kRegWp).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegWp).ok());
  ASSERT_EQ(w.mm.uffd_writeprotect(hbase, 2 * bit(M), kWpModeWp), Err::ok);
  ASSERT_EQ(w.mm.uffd_writeprotect(sbase, 4 * P, kWpModeWp), Err::ok);
  ASSERT_EQ(w.mm.handle_fault(sbase, Access::write).kind, FaultKind::uffd);
  ASSERT_EQ(w.mm.view(sbase + 2 * P).entry.kind, Kind::marker);
  w.mm.reset_counters();
  ASSERT_EQ(w.mm.uffd_unregister(sbase, 4 * P), Err::ok);
  EXPECT_EQ(w.mm.counters().notif_start, 1u);
  EXPECT_EQ(w.mm.counters().notif_log[0],
            (Notification{NotifyEvent::protection_vma, sbase, sbase + 4 * P}));
  EXPECT_EQ(w.mm.counters().tlb_flush, 1u);
  EXPECT_EQ(w.mm.counters().uffd_wakes, 0u);
  EXPECT_TRUE(w.mm.uffd_waiting(sbase));
  EXPECT_EQ(w.mm.census(sbase, sbase + 4 * P, 0).markers, 0u);
  EXPECT_FALSE(w.mm.view(sbase).entry.soft.uffd_wp);
  EXPECT_TRUE(w.mm.view(sbase).entry.writable);
  ASSERT_EQ(w.mm.uffd_unregister(hbase, 2 * bit(M)), Err::ok);
  EXPECT_EQ(w.mm.census(hbase, hbase + 2 * bit(M), ml).markers, 0u);
  EXPECT_FALSE(w.mm.view(hbase).entry.soft.uffd_wp);
  EXPECT_EQ(w.mm.uffd_copy(sbase + 3 * P, kSrc, P, 0).err, Err::enoent) << "unregistered";
  EXPECT_EQ(w.mm.counters().uffd_msgs, 0u);
}

TYPED_TEST(MmUffdTest, WriteprotectSkipsPoisonAndGuardMarkersAndAnonZapsDropUffdWpMarkers) {
  using F = TypeParam;
  constexpr uint64_t P = TestFixture::P;
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t abase = w.base(), sbase = abase + 4 * P;
  w.map_anon(abase, 4 * P);
  uint32_t shm = w.shmem_file(4);
  w.map_file(sbase, 4 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(kFeatWpUnpopulated), Err::ok);
  if (!uffd_wp_supported<F>()) {
    EXPECT_EQ(w.mm.uffd_register(abase, 4 * P, kRegMissing | kRegWp).err, Err::einval);
    return;
  }
  ASSERT_EQ(w.mm.madvise_guard_install(sbase, P), Err::ok);
  ASSERT_EQ(w.mm.madvise_guard_install(abase, P), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(abase, 4 * P, kRegMissing | kRegWp).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 4 * P, kRegMissing | kRegWp).ok());
  ASSERT_EQ(w.mm.uffd_poison(sbase + P, P, 0).err, Err::ok);
  ASSERT_EQ(w.mm.uffd_poison(abase + P, P, 0).err, Err::ok);

  // change_protection leaves poisoned and guard markers alone; none entries get uffd-wp markers.
  ASSERT_EQ(w.mm.uffd_writeprotect(abase, 8 * P, kWpModeWp), Err::ok);
  for (uint64_t base : {abase, sbase}) {
    EXPECT_EQ(w.mm.view(base).entry.swp.offset, kMarkerGuard);
    EXPECT_EQ(w.mm.view(base + P).entry.swp.offset, kMarkerPoisoned);
    EXPECT_EQ(w.mm.view(base + 2 * P).entry.swp.offset, kMarkerUffdWp);
  }
  EXPECT_EQ(w.mm.handle_fault(sbase + P, Access::read).kind, FaultKind::sigbus);
  ASSERT_EQ(w.mm.uffd_writeprotect(abase, 8 * P, 0), Err::ok);
  for (uint64_t base : {abase, sbase}) {
    EXPECT_EQ(w.mm.view(base).entry.swp.offset, kMarkerGuard);
    EXPECT_EQ(w.mm.view(base + P).entry.swp.offset, kMarkerPoisoned);
    EXPECT_EQ(w.mm.view(base + 2 * P).entry.kind, Kind::none);
  }

  // A zap keeps guard markers everywhere and uffd-wp markers on file VMAs only.
  ASSERT_EQ(w.mm.uffd_writeprotect(abase, 8 * P, kWpModeWp), Err::ok);
  ASSERT_EQ(w.mm.madvise_dontneed(abase, 4 * P), Err::ok);
  ASSERT_EQ(w.mm.madvise_dontneed(sbase, 4 * P), Err::ok);
  EXPECT_EQ(w.mm.view(abase).entry.swp.offset, kMarkerGuard);
  EXPECT_EQ(w.mm.view(sbase).entry.swp.offset, kMarkerGuard);
  EXPECT_EQ(w.mm.view(abase + P).entry.kind, Kind::none) << "poison goes";
  EXPECT_EQ(w.mm.view(sbase + P).entry.kind, Kind::none);
  EXPECT_EQ(w.mm.view(abase + 2 * P).entry.kind, Kind::none)
      << "anonymous: the uffd-wp marker goes";
  EXPECT_EQ(w.mm.view(sbase + 2 * P).entry.swp.offset, kMarkerUffdWp) << "file: it stays";
}

// --- T16 and the invalidation rules
// ------------------------------------------------------------------

TYPED_TEST(MmUffdTest, T16InstallsByCopyZeropageContinueAndPoisonNeverNotifyNorFlush) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), abase = hbase + 4 * bit(M), sbase = abase + 8 * P;
  uint32_t hf = w.hugetlb_file(M, 4, 4);
  ASSERT_EQ(w.mem.fallocate(hf, bit(M), bit(M)), Err::ok);
  w.map_file(hbase, 4 * bit(M), hf);
  w.map_anon(abase, 8 * P);
  uint32_t shm = w.shmem_file(8);
  ASSERT_EQ(w.mem.fallocate(shm, 4 * P, 2 * P), Err::ok);
  w.map_file(sbase, 8 * P, shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(hbase, 4 * bit(M), kRegMissing | kRegMinor).ok());
  ASSERT_TRUE(w.mm.uffd_register(abase, 8 * P, kRegMissing).ok());
  ASSERT_TRUE(w.mm.uffd_register(sbase, 8 * P, kRegMissing | kRegMinor).ok());
  w.tlb.forget_history();
  w.mm.reset_counters();

  EXPECT_EQ(w.mm.uffd_copy(hbase, kSrc, bit(M), 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_continue(hbase + bit(M), bit(M), 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_poison(hbase + 2 * bit(M), bit(M), 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_copy(abase, kSrc, 2 * P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_zeropage(abase + 2 * P, 2 * P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_poison(abase + 4 * P, P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_copy(sbase, kSrc, 2 * P, kModeDontwake).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_zeropage(sbase + 2 * P, 2 * P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_continue(sbase + 4 * P, 2 * P, 0).err, Err::ok);
  EXPECT_EQ(w.mm.uffd_poison(sbase + 6 * P, 2 * P, 0).err, Err::ok);
  expect_no_invalidation(w);
  EXPECT_TRUE(w.tlb.flushes().empty()) << "no TLB request reached the hardware model";
  EXPECT_EQ(w.tlb.flush_alls(), 0u);
  // Faults that fill none entries do not invalidate either.
  EXPECT_EQ(w.mm.uffd_unregister(hbase, 4 * bit(M)), Err::ok);
  EXPECT_EQ(w.mm.handle_fault(hbase + 3 * bit(M) + P, Access::write).kind, FaultKind::handled);
  expect_no_invalidation(w);
}

TYPED_TEST(MmUffdTest, WriteprotectOfPresentEntriesIsOneProtectionNotifierPairAndOneFlush) {
  using F = TypeParam;
  constexpr unsigned M = TestFixture::M;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(M, "2M-class");
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  const uint64_t hbase = w.base(), sbase = hbase + 2 * bit(M);
  uint32_t hf = w.hugetlb_file(M, 2, 2);
  w.map_file(hbase, 2 * bit(M), hf);
  // A shmem VMA of one hstate's size, so that a range over both VMAs can be hstate aligned.
  const uint64_t spages = bit(M - F::page_shift), end = sbase + bit(M);
  uint32_t shm = w.shmem_file(spages);
  w.map_file(sbase, bit(M), shm);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  if (!uffd_wp_supported<F>()) {
    EXPECT_EQ(w.mm.uffd_register(hbase, 2 * bit(M), kRegMissing | kRegWp).err, Err::einval);
    return;
  }
  ASSERT_TRUE(w.mm.uffd_register(hbase, end - hbase, kRegMissing | kRegWp).ok());
  ASSERT_EQ(w.mm.uffd_copy(hbase, kSrc, 2 * bit(M), 0).err, Err::ok);
  ASSERT_EQ(w.mm.uffd_copy(sbase, kSrc, 6 * P, 0).err, Err::ok);
  // The hardware caches the writable translations.
  ASSERT_EQ(w.tlb.prime(w.mm.table(), hbase, end), Err::ok);
  w.mm.reset_counters();
  w.tlb.forget_history();

  // One call over both VMAs (hugetlb pages and shmem pages, present and none).
  ASSERT_EQ(w.mm.uffd_writeprotect(hbase, end - hbase, kWpModeWp), Err::ok);
  const Counters& c = w.mm.counters();
  EXPECT_EQ(c.notif_start, 1u);
  EXPECT_EQ(c.notif_end, 1u);
  EXPECT_EQ(c.notif_log[0], (Notification{NotifyEvent::protection_vma, hbase, end}));
  EXPECT_EQ(c.tlb_flush, 1u);
  EXPECT_EQ(c.last_flush.start, hbase);
  EXPECT_EQ(c.last_flush.end, end);
  EXPECT_TRUE(w.tlb.stale(w.mm.table()).empty()) << "no writable translation survives";
  EXPECT_EQ(c.pt_alloc_total(), 0u) << "the shmem PTE table is there already";
  for (uint64_t va : {hbase, hbase + bit(M) + P, sbase, sbase + 5 * P}) {
    auto v = w.mm.view(va);
    EXPECT_EQ(v.entry.kind, Kind::leaf);
    EXPECT_TRUE(v.entry.soft.uffd_wp);
    EXPECT_FALSE(v.entry.writable);
    EXPECT_FALSE(v.entry.prot.write);
  }
  EXPECT_EQ(w.mm.view(sbase + 6 * P).entry.kind, Kind::marker);
  EXPECT_EQ(w.mm.view(hbase + bit(M)).shift, M) << "hstate leaves stay whole";

  // Errors change nothing and invalidate nothing.
  w.mm.reset_counters();
  auto before = w.snap();
  EXPECT_EQ(w.mm.uffd_writeprotect(hbase + P, bit(M), kWpModeWp), Err::einval)
      << "hugetlb alignment";
  EXPECT_EQ(w.mm.uffd_writeprotect(hbase, end - hbase + bit(M), kWpModeWp), Err::enoent)
      << "a hole";
  EXPECT_EQ(w.mm.uffd_writeprotect(hbase, 2 * bit(M) + P, kWpModeWp), Err::einval)
      << "a range over a hugetlb VMA must be hstate aligned, whatever else it covers";
  EXPECT_EQ(w.mm.uffd_writeprotect(hbase, 0, kWpModeWp), Err::einval);
  EXPECT_EQ(w.mm.uffd_writeprotect(hbase, bit(M), 1u << 4), Err::einval) << "unknown mode";
  EXPECT_TRUE(w.snap() == before);
  expect_no_invalidation(w);

  // Resolving: one pair again, and shared pages are writable at once.
  ASSERT_EQ(w.mm.uffd_writeprotect(hbase, end - hbase, 0), Err::ok);
  EXPECT_EQ(c.notif_start, 1u);
  EXPECT_EQ(c.tlb_flush, 1u);
  EXPECT_EQ(w.mm.view(sbase + 6 * P).entry.kind, Kind::none);
  EXPECT_FALSE(w.mm.view(sbase).entry.soft.uffd_wp);
}

// UFFDIO_WRITEPROTECT over part of an anonymous huge leaf splits it at both edges first; when a
// table page for those splits cannot be had, the call is ENOMEM and nothing has changed: the
// splits are planned and their pages reserved with the markers' before the first write
// (docs/design.md, rule 6).
TYPED_TEST(MmUffdTest, WriteprotectThatCannotSplitItsEdgesChangesNothing) {
  using F = TypeParam;
  constexpr unsigned H = TestFixture::H;
  constexpr uint64_t P = TestFixture::P;
  SKIP_WITHOUT(H, "1 GiB-class");
  if (!uffd_wp_supported<F>()) GTEST_SKIP() << "no uffd-wp bit in the leaves";
  World<F> w;
  ASSERT_EQ(w.init_err, Err::ok);
  ASSERT_EQ(w.mem.set_pool(H, 1), Err::ok);
  const uint64_t base = w.base();
  VmaSpec spec;
  spec.start = base;
  spec.len = bit(H);
  spec.prot = kProtRW;
  spec.max_shift = H;
  ASSERT_TRUE(w.mm.mmap(spec).ok());
  ASSERT_TRUE(w.mm.handle_fault(base, Access::write).handled());
  ASSERT_EQ(w.mm.view(base).shift, H);
  ASSERT_EQ(w.mm.uffd_api(0), Err::ok);
  ASSERT_TRUE(w.mm.uffd_register(base, bit(H), kRegWp).ok());
  // Neither edge is aligned above a page, and they lie in different halves of the leaf, so
  // each edge needs tables of its own.
  const uint64_t start = base + 3 * P, len = bit(H - 1) + 2 * P;
  unsigned failures = 0;
  for (uint64_t n = 1;; ++n) {
    auto before = w.snap();
    const uint64_t tables = w.env.live();
    const Counters c = w.mm.counters();
    w.env.fail_nth_alloc(n);
    Err e = w.mm.uffd_writeprotect(start, len, kWpModeWp);
    w.env.fail_nth_alloc(0);
    if (e == Err::ok) break;
    ++failures;
    ASSERT_EQ(e, Err::enomem) << "n=" << n;
    EXPECT_TRUE(w.snap() == before) << "n=" << n;
    EXPECT_EQ(w.env.live(), tables) << "n=" << n;
    EXPECT_EQ(w.mm.counters().entries_written, c.entries_written) << "n=" << n;
    EXPECT_EQ(w.mm.counters().notif_start, c.notif_start) << "n=" << n;
    ASSERT_LT(n, 4u * F::levels);
  }
  if (level_of<F>(H) == 0) {
    EXPECT_EQ(failures, 0u) << "a group of pages splits in its own table";
  } else {
    EXPECT_GT(failures, 0u) << "splitting the edges took no table page";
  }
  EXPECT_FALSE(w.mm.view(start - P).entry.soft.uffd_wp);
  EXPECT_TRUE(w.mm.view(start).entry.soft.uffd_wp);
  EXPECT_TRUE(w.mm.view(start + len - P).entry.soft.uffd_wp);
  EXPECT_FALSE(w.mm.view(start + len).entry.soft.uffd_wp);
}

// The linux_6_1 profile refuses what came after 6.1: UFFD_FEATURE_WP_UNPOPULATED (6.4) and
// _POISON (6.6), UFFDIO_POISON (EINVAL, the result field untouched, and not in REGISTER's ioctl
// mask), UFFDIO_CONTINUE_MODE_WP (linux ring: api_wp_unpopulated, api_poison, poison_ioctl,
// continue_mode_wp). The upstream profile has them all.
TYPED_TEST(MmUffdTest, TheLinux61ProfileRefusesWhatCameAfter61) {
  using F = TypeParam;
  constexpr uint64_t P = TestFixture::P;
  for (Profile profile : {Profile::linux_6_1, Profile::upstream}) {
    const bool v61 = profile == Profile::linux_6_1;
    SCOPED_TRACE(v61 ? "linux_6_1" : "upstream");
    World<F> w(typename World<F>::MmT::Options{.profile = profile});
    ASSERT_EQ(w.init_err, Err::ok);
    const uint64_t base = w.base();
    uint32_t shm = w.shmem_file(4);
    w.map_file(base, 4 * P, shm);
    EXPECT_EQ(w.mm.uffd_api(kFeatWpUnpopulated), v61 ? Err::einval : Err::ok);
    if (!v61) continue;  // one UFFDIO_API per userfaultfd
    EXPECT_EQ(w.mm.uffd_api(kFeatPoison), Err::einval);
    ASSERT_EQ(w.mm.uffd_api(kFeatMinorShmem | kFeatPagefaultFlagWp), Err::ok);
    Result<uint64_t> r = w.mm.uffd_register(base, 4 * P, kRegMissing | kRegMinor);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value, kIoctlWake | kIoctlCopy | kIoctlZeropage | kIoctlContinue);
    auto before = w.snap();
    UffdResult u = w.mm.uffd_poison(base, P, 0);
    EXPECT_EQ(u.err, Err::einval);
    EXPECT_FALSE(u.reported) << "the result field is left as the caller put it";
    u = w.mm.uffd_continue(base, P, kModeWp);
    EXPECT_EQ(u.err, Err::einval);
    EXPECT_FALSE(u.reported);
    EXPECT_TRUE(w.snap() == before);
  }
}

}  // namespace
