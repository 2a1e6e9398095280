// mm_fault_test.cpp - the one fault handler (mm/mm.hpp) on every format: the size a first touch
// maps (PUD, else PMD, else PTE: alignment, VMA bounds and pools decide), copy on write, the zero
// page, software access/dirty, markers, swap-format entries, bad input and ENOMEM leaving the
// tables as they were, and munmap giving back every folio and table.
//
// Sizes come from the format's geometry (leaf_sizes<F>()), never from constants.
#include <gtest/gtest.h>

#include <vector>

#include "hugepte/env/host.hpp"
#include "hugepte/mm/mm.hpp"
#include "hugepte/pte.hpp"

#include "typed_formats.hpp"

namespace {

using namespace hugepte;      // NOLINT(google-build-using-namespace): test file
using namespace hugepte::mm;  // NOLINT(google-build-using-namespace): test file
using hpt_typed::FormatName;

static_assert(FolioEnv<host::Folios>);

template <class F>
class MmFaultTest : public ::testing::Test {
 protected:
  using Env = host::EnvFor<F>;
  using Mem = Memory<host::Folios, F::page_shift>;
  using M = Mm<F, Env, host::TlbModel, host::Folios>;
  static constexpr unsigned kPage = F::page_shift;
  static constexpr LeafSizes<F> kSizes = leaf_sizes<F>();

  // Huge leaf sizes of the format up to 1 GiB-class (a 1 GiB region keeps the tests quick on
  // every format), ascending.
  static std::vector<unsigned> huge_sizes() {
    std::vector<unsigned> v;
    for (unsigned i = 0; i < kSizes.count; ++i)
      if (kSizes.shift[i] > kPage && kSizes.shift[i] <= 30) v.push_back(kSizes.shift[i]);
    return v;
  }
  // A base address inside the VA space aligned to 1 << shift, away from 0.
  static uint64_t base_for(unsigned shift, unsigned k = 1) {
    unsigned s = shift > 30 ? shift : 30;
    uint64_t b = bit(s) * (k + 1);
    return b;
  }

  void make(Policy p = Policy::s1, typename M::Options o = {}) {
    mm.reset();
    mem.reset();
    mem = std::make_unique<Mem>(folios, 4096, p);
    mm = std::make_unique<M>(*mem, env, tlb, o);
    ASSERT_EQ(mm->init(), Err::ok);
  }
  void SetUp() override { make(); }
  void TearDown() override {
    mm.reset();
    mem.reset();
    EXPECT_EQ(folios.live(), 0u) << "a folio outlived its Memory";
  }

  Vma* anon(uint64_t start, uint64_t len, unsigned max_shift = 0, Prot prot = kProtRW) {
    VmaSpec s;
    s.start = start;
    s.len = len;
    s.max_shift = max_shift;
    s.prot = prot;
    auto r = mm->mmap(s);
    EXPECT_TRUE(r.ok()) << err_name(r.err);
    return r.value;
  }
  Vma* file(uint32_t id, uint64_t start, uint64_t len, bool shared, Prot prot = kProtRW,
            bool noreserve = false) {
    VmaSpec s;
    s.noreserve = noreserve;
    s.start = start;
    s.len = len;
    s.prot = prot;
    s.shared = shared;
    s.backing = Backing::file;
    s.file = id;
    auto r = mm->mmap(s);
    EXPECT_TRUE(r.ok()) << err_name(r.err);
    return r.value;
  }

  Env env{Env::kDefaultBase, nullptr};
  host::TlbModel tlb;
  host::Folios folios;
  std::unique_ptr<Mem> mem;
  std::unique_ptr<M> mm;
};

// One format per geometry (typed_formats.hpp: GeometriesWithFake): fault sizes follow the leaf
// sizes, which the formats left out share with these.
TYPED_TEST_SUITE(MmFaultTest, hpt_typed::GeometriesWithFake<>, FormatName);

// huge_fault(PUD_ORDER) with VM_FAULT_FALLBACK: the first touch of an anonymous VMA maps the
// largest leaf the VMA allows whose block is aligned, inside the VMA, free, and has a folio in
// its pool; each of those failing falls back to the next smaller size, down to the base page.
TYPED_TEST(MmFaultTest, FirstTouchMapsTheLargestLeafThatFitsThenFallsBack) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  std::vector<unsigned> sizes = this->huge_sizes();
  if (sizes.empty()) GTEST_SKIP() << "no huge leaf up to 1 GiB in " << F::mode;
  unsigned top = sizes.back();
  for (unsigned s : sizes) this->mem->set_pool(s, 1);

  // The top size: aligned, fits, pool has one.
  uint64_t b = this->base_for(top, 1);
  this->anon(b, bit(top), top);
  FaultResult r = this->mm->handle_fault(b + bit(kPage) * 3, Access::write);
  ASSERT_TRUE(r.handled());
  EXPECT_EQ(r.how, FaultHow::new_folio);
  EXPECT_EQ(r.shift, top);
  EXPECT_EQ(this->mm->view(b).shift, top);
  EXPECT_EQ(this->mem->pool_free(top), 0u);

  // The pool of the top size is now empty: a second VMA falls back to the next size down.
  uint64_t b2 = this->base_for(top, 3);
  this->anon(b2, bit(top), top);
  r = this->mm->handle_fault(b2, Access::write);
  ASSERT_TRUE(r.handled());
  unsigned expect = sizes.size() > 1 ? sizes[sizes.size() - 2] : kPage;
  EXPECT_EQ(r.shift, expect);

  // A VMA one base page short of the top size cannot hold it, whatever the pools say.
  this->mem->set_pool(top, 4);
  uint64_t b3 = this->base_for(top, 5);
  this->anon(b3, bit(top) - bit(kPage), top);
  r = this->mm->handle_fault(b3, Access::write);
  ASSERT_TRUE(r.handled());
  EXPECT_LT(r.shift, top);
  EXPECT_EQ(this->mm->view(b3).shift, r.shift);

  // max_shift caps the size.
  uint64_t b4 = this->base_for(top, 7);
  this->anon(b4, bit(top), kPage);
  r = this->mm->handle_fault(b4, Access::write);
  EXPECT_EQ(r.shift, kPage);
  // Installing into non-present slots never invalidates.
  EXPECT_EQ(this->mm->counters().tlb_flush, 0u);
  EXPECT_EQ(this->mm->counters().notif_start, 0u);
}

// A later touch anywhere in a mapped block is not a fault the handler needs: it answers
// "spurious" and leaves the entry as it was.
TYPED_TEST(MmFaultTest, TouchInsideAMappedBlockIsSpurious) {
  using F = TypeParam;
  std::vector<unsigned> sizes = this->huge_sizes();
  unsigned s = sizes.empty() ? F::page_shift : sizes.front();
  if (s > F::page_shift) this->mem->set_pool(s, 1);
  uint64_t b = this->base_for(s);
  this->anon(b, bit(s), s);
  ASSERT_EQ(this->mm->handle_fault(b, Access::write).shift, s);
  uint64_t writes = this->mm->counters().entries_written;
  FaultResult r = this->mm->handle_fault(b + bit(s) - bit(F::page_shift), Access::write);
  EXPECT_EQ(r.how, FaultHow::spurious);
  EXPECT_EQ(this->mm->counters().entries_written, writes);
}

// do_anonymous_page: a read maps the shared zero page read-only; the first write copies it.
TYPED_TEST(MmFaultTest, AnonymousReadMapsTheZeroPageAndAWriteCopiesIt) {
  using F = TypeParam;
  uint64_t b = this->base_for(F::page_shift);
  this->anon(b, bit(F::page_shift) * 4);
  FaultResult r = this->mm->handle_fault(b, Access::read);
  EXPECT_EQ(r.how, FaultHow::zero_page);
  Entry e = this->mm->view(b).entry;
  EXPECT_EQ(e.kind, Kind::leaf);
  EXPECT_FALSE(e.writable);
  uint64_t zero_pa = e.addr;
  ASSERT_EQ(this->tlb.prime(this->mm->table(), b, b + bit(F::page_shift)), Err::ok);
  r = this->mm->handle_fault(b, Access::write);
  EXPECT_EQ(r.how, FaultHow::cow);
  e = this->mm->view(b).entry;
  EXPECT_TRUE(e.writable);
  EXPECT_TRUE(e.dirty);
  EXPECT_NE(e.addr, zero_pa);
  EXPECT_EQ(this->mm->counters().cow, 1u);
  // The copy replaced a present entry: one invalidate pair and one TLB invalidation.
  EXPECT_EQ(this->mm->counters().notif_start, 1u);
  EXPECT_EQ(this->mm->counters().tlb_flush, 1u);
  EXPECT_TRUE(this->tlb.stale(this->mm->table()).empty());
}

// A private file mapping reads the page cache and copies on the first write; the cached page
// keeps its contents and its references (cache + nothing else).
TYPED_TEST(MmFaultTest, PrivateFileWriteCopiesAndTheCacheKeepsItsPage) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  uint32_t f = this->mem->create_file(FileKind::shmem, kPage, bit(kPage) * 8).value;
  ASSERT_EQ(this->mem->fallocate(f, 0, bit(kPage) * 8), Err::ok);
  uint32_t cached = this->mem->cache_lookup(f, 2);
  ASSERT_NE(cached, kNoFolio);
  uint64_t b = this->base_for(kPage);
  this->file(f, b, bit(kPage) * 8, /*shared=*/false);

  FaultResult r = this->mm->handle_fault(b + 2 * bit(kPage), Access::read);
  EXPECT_EQ(r.how, FaultHow::page_cache);
  Entry e = this->mm->view(b + 2 * bit(kPage)).entry;
  EXPECT_EQ(e.addr, this->mem->folio(cached).pa);
  EXPECT_FALSE(e.writable);
  EXPECT_EQ(this->mem->mapcount(cached), 1u);
  EXPECT_EQ(this->mem->folio(cached).refcount, 2u);  // cache + mapping

  r = this->mm->handle_fault(b + 2 * bit(kPage), Access::write);
  EXPECT_EQ(r.how, FaultHow::cow);
  e = this->mm->view(b + 2 * bit(kPage)).entry;
  EXPECT_NE(e.addr, this->mem->folio(cached).pa);
  EXPECT_TRUE(e.writable);
  EXPECT_EQ(this->mem->mapcount(cached), 0u);
  EXPECT_EQ(this->mem->folio(cached).refcount, 1u);  // the cache's
  EXPECT_EQ(this->mem->cache_lookup(f, 2), cached);

  // A write fault on a page never touched copies at once (read the cache, then CoW).
  r = this->mm->handle_fault(b + 5 * bit(kPage), Access::write);
  EXPECT_EQ(r.how, FaultHow::cow);
  EXPECT_EQ(this->mm->counters().cow, 2u);
}

// A shared file mapping maps the cached page writable; a read leaves it clean, a write makes
// it dirty (in software where the hardware would not: the handler's answer on every format).
TYPED_TEST(MmFaultTest, SharedFileMapsTheCachedPageAndRecordsDirtOnWrite) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  uint32_t f = this->mem->create_file(FileKind::shmem, kPage, bit(kPage) * 4).value;
  uint64_t b = this->base_for(kPage);
  this->file(f, b, bit(kPage) * 4, /*shared=*/true);
  FaultResult r = this->mm->handle_fault(b, Access::read);
  EXPECT_EQ(r.how, FaultHow::new_folio);
  uint32_t id = this->mem->cache_lookup(f, 0);
  ASSERT_NE(id, kNoFolio);
  Entry e = this->mm->view(b).entry;
  EXPECT_TRUE(e.writable);
  EXPECT_FALSE(e.dirty);
  EXPECT_EQ(e.addr, this->mem->folio(id).pa);
  r = this->mm->handle_fault(b, Access::write);
  EXPECT_TRUE(r.how == FaultHow::dirty || r.how == FaultHow::spurious);
  if (r.how == FaultHow::dirty) {
    EXPECT_TRUE(this->mm->view(b).entry.dirty);
  }
  // Without hardware dirty tracking a clean writable entry must not let the walker write.
  if (!pte::walker_writable<F>(e)) {
    EXPECT_EQ(r.how, FaultHow::dirty);
  }
}

// Where the hardware does not set the access flag (arm64 with TCR_EL1.HA clear), aging an entry
// makes the next access fault, and the handler sets the flag in software.
TYPED_TEST(MmFaultTest, AccessFlagFaultIsResolvedInSoftware) {
  using F = TypeParam;
  typename TestFixture::M::Options o;
  o.hw_accessed = false;
  o.hw_dirty = false;
  this->make(Policy::s1, o);
  uint64_t b = this->base_for(F::page_shift);
  this->anon(b, bit(F::page_shift) * 2);
  ASSERT_TRUE(this->mm->handle_fault(b, Access::write).handled());
  EXPECT_TRUE(this->mm->view(b).entry.accessed);
  ASSERT_EQ(this->tlb.prime(this->mm->table(), b, b + bit(F::page_shift)), Err::ok);
  ASSERT_EQ(this->mm->mkold(b, bit(F::page_shift) * 2), Err::ok);
  EXPECT_FALSE(this->mm->view(b).entry.accessed);
  EXPECT_EQ(this->mm->counters().tlb_flush, 1u);  // aging invalidates what the TLB holds
  FaultResult r = this->mm->handle_fault(b, Access::read);
  EXPECT_EQ(r.how, FaultHow::young);
  EXPECT_TRUE(this->mm->view(b).entry.accessed);
  EXPECT_TRUE(this->tlb.stale(this->mm->table()).empty());
}

// No VMA, or a VMA that forbids the access: SIGSEGV, nothing written.
TYPED_TEST(MmFaultTest, AccessOutsideOrAgainstTheVmaIsSigsegv) {
  using F = TypeParam;
  uint64_t b = this->base_for(F::page_shift);
  this->anon(b, bit(F::page_shift) * 2, 0, kProtR);
  uint64_t writes = this->mm->counters().entries_written;
  EXPECT_EQ(this->mm->handle_fault(b + bit(F::page_shift) * 2, Access::read).kind,
            FaultKind::sigsegv);
  EXPECT_EQ(this->mm->handle_fault(b, Access::write).kind, FaultKind::sigsegv);
  EXPECT_EQ(this->mm->handle_fault(b, Access::exec).kind, FaultKind::sigsegv);
  EXPECT_EQ(this->mm->counters().entries_written, writes);
  EXPECT_EQ(this->mm->counters().fault_kind[static_cast<unsigned>(FaultKind::sigsegv)], 3u);
}

// Guard markers end in SIGSEGV; a migration entry makes the fault retry; a hwpoison entry is
// SIGBUS with lsb = the entry's size; a poison marker is SIGBUS with lsb = the base page.
TYPED_TEST(MmFaultTest, NonPresentEntriesGiveTheirSignals) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  uint64_t b = this->base_for(kPage);
  this->anon(b, bit(kPage) * 8);
  ASSERT_EQ(this->mm->madvise_guard_install(b, bit(kPage)), Err::ok);
  EXPECT_EQ(this->mm->handle_fault(b, Access::read).kind, FaultKind::sigsegv);
  // A guard marker survives MADV_DONTNEED.
  ASSERT_EQ(this->mm->madvise_dontneed(b, bit(kPage) * 8), Err::ok);
  EXPECT_EQ(this->mm->view(b).entry.kind, Kind::marker);

  auto put = [&](uint64_t va, const Entry& e) {
    auto h = this->mm->ops().alloc(va, kPage);
    if (!h) {  // a base page is not a "huge" size: use the walk
      Result<Found> f = find_or_alloc(this->mm->table(), va, 0);
      ASSERT_TRUE(f.ok());
      this->mm->table().store(f.value.slot, 0, F::encode(e, 0).value);
      return;
    }
    ASSERT_EQ(this->mm->ops().set(h.value, e), Err::ok);
  };
  put(b + bit(kPage), pte::swp_entry(kSwpMigrationRead, 0x1234));
  EXPECT_EQ(this->mm->handle_fault(b + bit(kPage), Access::read).kind, FaultKind::retry);
  put(b + 2 * bit(kPage), pte::swp_entry(kSwpHwpoison, 0x1235));
  FaultResult r = this->mm->handle_fault(b + 2 * bit(kPage), Access::read);
  EXPECT_EQ(r.kind, FaultKind::sigbus);
  EXPECT_EQ(r.lsb, kPage);
  put(b + 3 * bit(kPage), pte::make_marker(kMarkerPoisoned));
  r = this->mm->handle_fault(b + 3 * bit(kPage), Access::write);
  EXPECT_EQ(r.kind, FaultKind::sigbus);
  EXPECT_EQ(r.lsb, kPage);
}

// mmap refuses what it cannot map, and changes nothing when it does.
TYPED_TEST(MmFaultTest, MmapRejectsBadInput) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  uint64_t b = this->base_for(kPage);
  VmaSpec s;
  s.start = b + 1;
  s.len = bit(kPage);
  EXPECT_EQ(this->mm->mmap(s).err, Err::einval);
  s.start = b;
  s.len = 0;
  EXPECT_EQ(this->mm->mmap(s).err, Err::einval);
  s.len = bit(kPage);
  s.shared = true;  // shared anonymous memory is shmem here: name a file
  EXPECT_EQ(this->mm->mmap(s).err, Err::einval);
  s.shared = false;
  s.start = bit(F::va_bits - 1) + bit(kPage);  // past the lower half
  if (!F::canonical(s.start)) {
    EXPECT_EQ(this->mm->mmap(s).err, Err::erange);
  }
  s.start = b;
  ASSERT_TRUE(this->mm->mmap(s).ok());
  EXPECT_EQ(this->mm->mmap(s).err, Err::eexist);
  s.max_shift = kPage + 1;  // not a leaf size
  s.start = b + bit(kPage) * 4;
  EXPECT_EQ(this->mm->mmap(s).err, Err::einval);
  // hugetlb: start and offset aligned to the hstate; the length rounds up to it (do_mmap).
  std::vector<unsigned> sizes = this->huge_sizes();
  if (sizes.empty()) return;
  unsigned h = sizes.front();
  this->mem->set_pool(h, 1);
  uint32_t f = this->mem->create_file(FileKind::hugetlb, h, bit(h)).value;
  VmaSpec hs;
  hs.backing = Backing::file;
  hs.file = f;
  hs.shared = true;
  hs.start = this->base_for(h, 2) + bit(kPage);
  hs.len = bit(h);
  EXPECT_EQ(this->mm->mmap(hs).err, Err::einval);
  hs.start -= bit(kPage);
  hs.pgoff = bit(kPage);
  EXPECT_EQ(this->mm->mmap(hs).err, Err::einval);
  EXPECT_EQ(this->mm->counters().entries_written, 0u);
  hs.pgoff = 0;
  hs.len = bit(kPage);
  Result<Vma*> v = this->mm->mmap(hs);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value->end - v.value->start, bit(h)) << "one base page asked, one hstate page mapped";
}

// A hugetlb fault with an empty pool is SIGBUS and changes nothing (MAP_NORESERVE: a reserving
// mmap would have failed with ENOMEM, mm_hugetlb_test.cpp).
TYPED_TEST(MmFaultTest, EmptyHstatePoolIsSigbusAndChangesNothing) {
  std::vector<unsigned> sizes = this->huge_sizes();
  if (sizes.empty()) GTEST_SKIP() << "no hugetlb size up to 1 GiB";
  unsigned h = sizes.back();
  this->mem->set_pool(h, 0);
  uint32_t f = this->mem->create_file(FileKind::hugetlb, h, bit(h)).value;
  uint64_t b = this->base_for(h);
  this->file(f, b, bit(h), true, kProtRW, /*noreserve=*/true);
  auto before = this->env.snapshot();
  uint64_t tables = this->env.live();
  FaultResult r = this->mm->handle_fault(b, Access::read);
  EXPECT_EQ(r.kind, FaultKind::sigbus);
  EXPECT_EQ(r.lsb, 0u);
  EXPECT_EQ(this->env.snapshot(), before);
  EXPECT_EQ(this->env.live(), tables);
  // With one folio in the pool the same fault maps the hstate leaf.
  this->mem->set_pool(h, 1);
  r = this->mm->handle_fault(b, Access::read);
  ASSERT_TRUE(r.handled());
  EXPECT_EQ(r.shift, h);
  EXPECT_EQ(this->mem->pool_free(h), 0u);
}

// ENOMEM for a table page at every point a fault allocates one: the fault fails (VM_FAULT_OOM
// is SIGBUS here) and the tables and the folio pools are exactly as before.
TYPED_TEST(MmFaultTest, TableAllocationFailureAtEveryPointChangesNothing) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  uint64_t b = this->base_for(kPage);
  this->anon(b, bit(kPage) * 4);
  for (uint64_t n = 1;; ++n) {
    auto before = this->env.snapshot();
    uint64_t folios = this->folios.live();
    this->env.fail_nth_alloc(n);
    FaultResult r = this->mm->handle_fault(b, Access::write);
    this->env.fail_nth_alloc(0);
    if (r.handled()) break;
    EXPECT_EQ(r.kind, FaultKind::sigbus) << "n=" << n;
    EXPECT_EQ(this->env.snapshot(), before) << "n=" << n;
    EXPECT_EQ(this->folios.live(), folios) << "n=" << n;
    ASSERT_LT(n, F::levels + 1u) << "a fault never needs more tables than levels";
  }
  EXPECT_EQ(this->mm->view(b).entry.kind, Kind::leaf);
}

// munmap releases every folio reference and frees every table the VMA's mappings used.
TYPED_TEST(MmFaultTest, MunmapReleasesEveryFolioAndTable) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  std::vector<unsigned> sizes = this->huge_sizes();
  unsigned top = sizes.empty() ? kPage : sizes.back();
  for (unsigned s : sizes) this->mem->set_pool(s, 2);
  uint64_t root_only = this->env.live();
  uint64_t b = this->base_for(top);
  this->anon(b, bit(top) * 2, top);
  for (uint64_t va = b; va < b + bit(top) * 2; va += bit(top))
    this->mm->handle_fault(va, Access::write);
  uint64_t b2 = this->base_for(top, 4);
  this->anon(b2, bit(kPage) * 16);
  for (uint64_t i = 0; i < 16; ++i)
    this->mm->handle_fault(b2 + i * bit(kPage), i % 2 ? Access::write : Access::read);
  EXPECT_GT(this->folios.live(), 0u);
  ASSERT_EQ(this->tlb.prime(this->mm->table(), b, b + bit(top) * 2), Err::ok);
  ASSERT_EQ(this->tlb.prime(this->mm->table(), b2, b2 + bit(kPage) * 16), Err::ok);
  ASSERT_EQ(this->mm->munmap(b, bit(top) * 2), Err::ok);
  ASSERT_EQ(this->mm->munmap(b2, bit(kPage) * 16), Err::ok);
  for (unsigned s : sizes) EXPECT_EQ(this->mem->pool_free(s), 2u) << "shift " << s;
  // Only the zero page (a read fault mapped it) remains.
  EXPECT_EQ(this->folios.live(), 1u);
  EXPECT_EQ(this->env.live(), root_only);
  EXPECT_EQ(this->mm->handle_fault(b, Access::read).kind, FaultKind::sigsegv);
  EXPECT_TRUE(this->tlb.stale(this->mm->table()).empty());
}

// UFFDIO_WRITEPROTECT of one base page inside a huge anonymous leaf splits the leaf at the
// range's edges first (every page stays mapped), then protects only that page; the folio's
// mapcount moves to the pieces, so it stays 1 (S1).
TYPED_TEST(MmFaultTest, WriteprotectOfPartOfAHugeLeafSplitsAtTheEdges) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  std::vector<unsigned> sizes = this->huge_sizes();
  if (sizes.empty()) GTEST_SKIP() << "no huge leaf up to 1 GiB";
  unsigned s = sizes.front();
  this->mem->set_pool(s, 1);
  uint64_t b = this->base_for(s);
  this->anon(b, bit(s), s);
  ASSERT_EQ(this->mm->handle_fault(b, Access::write).shift, s);
  uint32_t id = this->mem->folio_at(this->mm->view(b).entry.addr);
  ASSERT_EQ(this->mm->uffd_api(0), Err::ok);
  auto reg = this->mm->uffd_register(b, bit(s), kRegWp);
  if (!reg.ok()) {
    EXPECT_EQ(reg.err, Err::einval);  // the format's leaves have no uffd-wp bit
    return;
  }
  uint64_t at = b + bit(kPage) * 5;
  ASSERT_EQ(this->tlb.prime(this->mm->table(), b, b + bit(s)), Err::ok);
  ASSERT_EQ(this->mm->uffd_writeprotect(at, bit(kPage), kWpModeWp), Err::ok);
  Entry e = this->mm->view(at).entry;
  EXPECT_TRUE(e.soft.uffd_wp);
  EXPECT_FALSE(e.writable);
  EXPECT_EQ(this->mm->view(at).shift, kPage);
  for (uint64_t va : {b, at - bit(kPage), at + bit(kPage), b + bit(s) - bit(kPage)}) {
    Entry o = this->mm->view(va).entry;
    EXPECT_EQ(o.kind, Kind::leaf) << std::hex << va;
    EXPECT_TRUE(o.writable) << std::hex << va;
    EXPECT_FALSE(o.soft.uffd_wp) << std::hex << va;
    // Same memory as before: the piece's base maps the folio at the same offset.
    EXPECT_EQ(o.addr, this->mem->folio(id).pa + (align_down(va, this->mm->view(va).shift) - b))
        << std::hex << va;
  }
  EXPECT_EQ(this->mem->mapcount(id), 1u);
  EXPECT_EQ(this->mm->counters().notif_start, 1u);
  EXPECT_TRUE(this->tlb.stale(this->mm->table()).empty());
  // A write to the protected page is a WP userfault; elsewhere it is not a fault at all.
  FaultResult r = this->mm->handle_fault(at, Access::write);
  EXPECT_EQ(r.kind, FaultKind::uffd);
  EXPECT_EQ(r.msg.flags, kMsgWp | kMsgWrite);
}

// --- zap: all or nothing, and folios freed only after the flush ---------------------------

// MADV_DONTNEED over part of a huge leaf splits it at both edges; when a table page for those
// splits cannot be had, the call is ENOMEM and changes nothing: no entry, table, folio or
// counter (docs/design.md, rule 6: an operation completes or leaves everything as it was).
TYPED_TEST(MmFaultTest, DontneedThatCannotSplitItsEdgesChangesNothing) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  std::vector<unsigned> sizes = this->huge_sizes();
  if (sizes.empty()) GTEST_SKIP() << "no huge leaf up to 1 GiB in " << F::mode;
  const unsigned top = sizes.back();
  this->mem->set_pool(top, 1);
  const uint64_t b = this->base_for(top);
  this->anon(b, bit(top), top);
  ASSERT_TRUE(this->mm->handle_fault(b, Access::write).handled());
  ASSERT_EQ(this->mm->view(b).shift, top);
  // From three pages in to five pages past the middle: neither edge is aligned to anything
  // above a page, so each needs its own split.
  const uint64_t start = b + 3 * bit(kPage), len = bit(top - 1) + 2 * bit(kPage);
  unsigned failures = 0;
  for (uint64_t n = 1;; ++n) {
    auto before = this->env.snapshot();
    const uint64_t tables = this->env.live(), folios = this->folios.live();
    const Counters counters = this->mm->counters();
    const uint64_t refs =
        this->mem->folio(this->mem->folio_at(this->mm->view(b).entry.addr)).refcount;
    this->env.fail_nth_alloc(n);
    Err e = this->mm->madvise_dontneed(start, len);
    this->env.fail_nth_alloc(0);
    if (e == Err::ok) break;
    ++failures;
    ASSERT_EQ(e, Err::enomem) << "n=" << n;
    EXPECT_EQ(this->env.snapshot(), before) << "n=" << n;
    EXPECT_EQ(this->env.live(), tables) << "n=" << n;
    EXPECT_EQ(this->folios.live(), folios) << "n=" << n;
    EXPECT_EQ(this->mm->counters().entries_written, counters.entries_written) << "n=" << n;
    EXPECT_EQ(this->mm->counters().tlb_flush, counters.tlb_flush) << "n=" << n;
    EXPECT_EQ(this->mem->folio(this->mem->folio_at(this->mm->view(b).entry.addr)).refcount, refs);
    ASSERT_LT(n, 4u * F::levels) << "a zap never needs more tables than two edges' splits";
  }
  EXPECT_GT(failures, 0u) << "splitting the edges took no table page";
  EXPECT_EQ(this->mm->view(start).entry.kind, Kind::none);
  EXPECT_EQ(this->mm->view(start - bit(kPage)).entry.kind, Kind::leaf);
  EXPECT_EQ(this->mm->view(start + len).entry.kind, Kind::leaf);
}

// A sink that records, at each flush, how many folios the Memory had freed by then.
template <class Mem>
struct FreesAtFlush {
  const Mem* mem = nullptr;
  std::vector<uint64_t> freed;
  void flush(const TlbFlush&) { freed.push_back(mem->counters().folio_free); }
  void flush_all() { freed.push_back(mem->counters().folio_free); }
  void publish() {}
};

// zap drops the mappings' folio references only after its TLB flush (mmu_gather:
// tlb_finish_mmu frees the pages after tlb_flush_mmu), so no folio is freed, and reused,
// while a CPU may still reach it through a stale translation.
TYPED_TEST(MmFaultTest, ZapFreesFoliosOnlyAfterItsFlush) {
  using F = TypeParam;
  using Mem = typename TestFixture::Mem;
  constexpr unsigned kPage = F::page_shift;
  FreesAtFlush<Mem> sink;
  sink.mem = this->mem.get();
  Mm<F, typename TestFixture::Env, FreesAtFlush<Mem>, host::Folios> mm(*this->mem, this->env, sink);
  ASSERT_EQ(mm.init(), Err::ok);
  const uint64_t b = this->base_for(kPage);
  VmaSpec spec;
  spec.start = b;
  spec.len = 4 * bit(kPage);
  spec.prot = kProtRW;
  spec.max_shift = kPage;
  ASSERT_TRUE(mm.mmap(spec).ok());
  for (uint64_t k = 0; k < 4; ++k)
    ASSERT_TRUE(mm.handle_fault(b + k * bit(kPage), Access::write).handled());
  const uint64_t freed = this->mem->counters().folio_free;
  sink.freed.clear();
  ASSERT_EQ(mm.madvise_dontneed(b, 4 * bit(kPage)), Err::ok);
  ASSERT_EQ(sink.freed.size(), 1u) << "one flush for the range";
  EXPECT_EQ(sink.freed[0], freed) << "a folio was freed before the flush";
  EXPECT_EQ(this->mem->counters().folio_free, freed + 4);
}

// --- VMAs and madvise as Linux has them (checked against Linux 6.1 by the linux ring) ------

// munmap of part of a VMA splits it at the range's edges (do_vmi_munmap): only the range goes
// (linux ring: munmap_part_of_vma).
TYPED_TEST(MmFaultTest, MunmapOfPartOfAVmaSplitsItAndUnmapsOnlyTheRange) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  const uint64_t b = this->base_for(kPage), p = bit(kPage);
  this->anon(b, 8 * p);
  for (uint64_t k = 0; k < 8; ++k)
    ASSERT_TRUE(this->mm->handle_fault(b + k * p, Access::write).handled());
  const uint64_t folios = this->folios.live();
  ASSERT_EQ(this->mm->munmap(b + 2 * p, 2 * p), Err::ok);
  EXPECT_EQ(this->mm->handle_fault(b + 2 * p, Access::read).kind, FaultKind::sigsegv);
  EXPECT_EQ(this->mm->handle_fault(b + 3 * p, Access::read).kind, FaultKind::sigsegv);
  EXPECT_EQ(this->mm->view(b + p).entry.kind, Kind::leaf);
  EXPECT_EQ(this->mm->view(b + 4 * p).entry.kind, Kind::leaf);
  EXPECT_EQ(this->folios.live(), folios - 2);
  ASSERT_NE(this->mm->vma_at(b), nullptr);
  EXPECT_EQ(this->mm->vma_at(b)->end, b + 2 * p);
  ASSERT_NE(this->mm->vma_at(b + 4 * p), nullptr);
  EXPECT_EQ(this->mm->vma_at(b + 4 * p)->start, b + 4 * p);
  EXPECT_EQ(this->mm->munmap(b + 2 * p, 2 * p), Err::ok) << "nothing mapped there is no error";
  auto before = this->env.snapshot();
  EXPECT_EQ(this->mm->munmap(b, 0), Err::einval);
  EXPECT_EQ(this->mm->munmap(b + 1, p), Err::einval);
  EXPECT_EQ(this->env.snapshot(), before);
}

// MADV_DONTNEED in a hugetlb VMA rounds its end down to the huge page, so a call shorter than
// one does nothing (madvise_dontneed_free_valid_vma; linux ring: dontneed_hugetlb_rounds_down).
TYPED_TEST(MmFaultTest, HugetlbDontneedRoundsTheEndDownToTheHugePage) {
  using F = TypeParam;
  constexpr unsigned kPage = F::page_shift;
  std::vector<unsigned> sizes = this->huge_sizes();
  if (sizes.empty()) GTEST_SKIP() << "no hugetlb size up to 1 GiB";
  const unsigned h = sizes.front();
  this->mem->set_pool(h, 2);
  uint32_t f = this->mem->create_file(FileKind::hugetlb, h, 2 * bit(h)).value;
  const uint64_t b = this->base_for(h);
  this->file(f, b, 2 * bit(h), true);
  ASSERT_TRUE(this->mm->handle_fault(b, Access::write).handled());
  ASSERT_TRUE(this->mm->handle_fault(b + bit(h), Access::write).handled());
  auto before = this->env.snapshot();
  EXPECT_EQ(this->mm->madvise_dontneed(b, bit(kPage)), Err::ok);
  EXPECT_EQ(this->env.snapshot(), before) << "shorter than a huge page: nothing dropped";
  EXPECT_EQ(this->mm->madvise_dontneed(b + bit(kPage), bit(h)), Err::einval) << "misaligned start";
  EXPECT_EQ(this->mm->madvise_dontneed(b, bit(h) + bit(kPage)), Err::ok);
  EXPECT_EQ(this->mm->view(b).entry.kind, Kind::none);
  EXPECT_EQ(this->mm->view(b + bit(h)).entry.kind, Kind::leaf) << "the second page was not covered";
}

// A writable mapping of a hugetlbfs file reaching past its end extends the file
// (hugetlbfs_file_mmap's i_size_write), so a fault there maps a page; a read-only one does not,
// and a fault past the end is SIGBUS (linux ring: hugetlb_mmap_extends_the_file).
TYPED_TEST(MmFaultTest, AWritableHugetlbMappingPastTheEndExtendsTheFile) {
  std::vector<unsigned> sizes = this->huge_sizes();
  if (sizes.empty()) GTEST_SKIP() << "no hugetlb size up to 1 GiB";
  const unsigned h = sizes.front();
  this->mem->set_pool(h, 4);
  uint32_t ro = this->mem->create_file(FileKind::hugetlb, h, bit(h)).value;
  const uint64_t b = this->base_for(h);
  this->file(ro, b, 2 * bit(h), true, Prot{true, false, false, false});
  EXPECT_EQ(this->mem->file(ro).size, bit(h)) << "a read-only mapping does not grow the file";
  EXPECT_EQ(this->mm->handle_fault(b + bit(h), Access::read).kind, FaultKind::sigbus);
  uint32_t rw = this->mem->create_file(FileKind::hugetlb, h, bit(h)).value;
  this->file(rw, b + 4 * bit(h), 2 * bit(h), true);
  EXPECT_EQ(this->mem->file(rw).size, 2 * bit(h));
  EXPECT_TRUE(this->mm->handle_fault(b + 5 * bit(h), Access::write).handled());
}

}  // namespace
