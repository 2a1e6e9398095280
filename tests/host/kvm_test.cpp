// kvm_test.cpp - the secondary MMU (kvm/): one fault handler for every stage-2 format over a
// host address space of the matching stage-1 format, the mmu-notifier protocol, dirty logging,
// KVM userfault and recovery, with each architecture's differences read from F::kvm.
// Facts: docs/design.md "Secondary MMU" (the fault path, the notifier protocol and the
// per-architecture policy table) and docs/mm.md §3.1 (KVM rules R1-R5); each test names the
// Linux function, the rule or the table row it checks.
#include "hugepte/kvm/kvm_host.hpp"
#include "hugepte/kvm/translate_2d.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mm_world.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file
using mm_world::World;

template <class H, class S>
struct Pair {
  using Host = H;
  using S2 = S;
};

// A host mode and the stage-2 format KVM runs beside it: the host formats are the mm suites'
// (mm_instances.cpp compiles each once).
#if HUGEPTE_TEST_FORMATS_ARCHES
// GCC and the sanitizers: x86 (the cross presets run arm64's and riscv's pairs, the host every
// policy).
using Pairs = ::testing::Types<Pair<X86_4Level, Ept4>>;
#elif HUGEPTE_TEST_FORMATS_NATIVE && defined(__aarch64__)
using Pairs = ::testing::Types<Pair<Arm64_16K_47, Arm64S2_16K>>;
#elif HUGEPTE_TEST_FORMATS_NATIVE && defined(__riscv)
using Pairs = ::testing::Types<Pair<Sv39, Sv39x4>>;
#elif HUGEPTE_TEST_FORMATS_NATIVE
using Pairs = ::testing::Types<Pair<X86_4Level, Ept4>>;
#else
// Every policy (x86, arm64, riscv); arm64 with the 16K granule, whose 1G CONT-PMD hstate maps
// as 32M blocks. NPT and the other granules differ only in encoding and sizes, which the
// format and walker suites cover.
using Pairs = ::testing::Types<Pair<X86_4Level, Ept4>, Pair<Arm64_16K_47, Arm64S2_16K>,
                               Pair<Sv39, Sv39x4>>;
#endif

struct PairName {
  template <class P>
  static std::string GetName(int) {
    std::string s = std::string(P::S2::arch) + "_" + P::Host::mode + "_" + P::S2::mode;
    for (char& c : s)
      if (c == '-' || c == '.') c = '_';
    return s;
  }
};

template <class P>
class Kvm : public ::testing::Test {
 protected:
  using H = typename P::Host;
  using F = typename P::S2;
  using G = mm_world::Geo<H>;
  using Env = host::EnvFor<F>;
  using VmT = kvm::Vm<F, typename World<H>::MmT, Env, host::TlbModel>;
  static constexpr unsigned kPage = F::page_shift;
  static constexpr kvm::Policy kPolicy = F::kvm;

  // The largest plain stage-2 leaf (KVM never writes contiguous ones) no larger than `cap`.
  static unsigned s2_block(unsigned cap) {
    const LeafSizes<F> s = leaf_sizes<F>();
    unsigned best = kPage;
    for (unsigned i = 0; i < s.count; ++i)
      if (!s.cont[i] && s.shift[i] <= cap && s.shift[i] > best) best = s.shift[i];
    return best;
  }
  // The smallest hugetlb size that maps as a stage-2 block larger than a page (x86, arm64 4K,
  // riscv: the 2M class; arm64 16K and 64K, whose 2M class is a CONT-PTE group that stage 2 maps
  // as pages: the 1G class, as 32M or 512M blocks); 0 if none.
  static unsigned block_hstate() {
    if (G::M != 0 && s2_block(G::M) > kPage) return G::M;
    if (G::H != 0 && s2_block(G::H) > kPage) return G::H;
    return 0;
  }
  // The GPA where slots start: aligned to the 1G-class hstate, different from the HVA.
  static uint64_t gpa0() { return bit(G::H); }
  uint64_t hva0() const { return World<H>::base(); }

  void SetUp() override { ASSERT_EQ(vm.init(), Err::ok); }

  // A hugetlb mapping of `pages` hstate pages at hva0, and a slot over it at gpa0.
  void hugetlb_slot(uint64_t pages, uint32_t flags = 0, unsigned hshift = G::H) {
    const uint32_t file = w.hugetlb_file(hshift, pages, pages);
    ASSERT_EQ(w.mem.fallocate(file, 0, pages << hshift), Err::ok);
    ASSERT_EQ(w.map(hva0(), file, pages), Err::ok);
    add_slot(pages << hshift, flags);
  }
  void anon_slot(uint64_t len, uint32_t flags = 0) {
    w.map_anon(hva0(), len);
    add_slot(len, flags);
  }
  void add_slot(uint64_t len, uint32_t flags, uint64_t gpa = 0) {
    dirty.assign((len >> kPage) / 64 + 1, 0);
    userfault.assign((len >> kPage) / 64 + 1, 0);
    kvm::MemslotSpec s{0, gpa ? gpa : gpa0(), len, hva0(), flags, dirty.data(), userfault.data()};
    ASSERT_EQ(vm.set_memory_region(s), Err::ok);
  }
  Err set_flags(uint32_t flags) {
    const kvm::Memslot* m = vm.slot(0);
    kvm::MemslotSpec s = m->s;
    s.flags = flags;
    return vm.set_memory_region(s);
  }
  // The vCPU's loop: a fault that must retry (an invalidation raced with it, the host's own
  // fault among them) is taken again, as the vCPU refaults on re-entry.
  kvm::FaultResult fault(uint64_t gpa, mm::Access a, mm::Tid tid = 0) {
    kvm::FaultResult r;
    for (unsigned n = 0; n < 4; ++n) {
      r = vm.handle_fault(gpa, a, tid);
      if (r.kind != kvm::FaultKind::retry) break;
    }
    return r;
  }
  unsigned s2_shift(uint64_t gpa) const {
    Result<Translated> t = vm.translate(gpa);
    return t ? t.value.shift : 0;
  }
  uint64_t host_pa(uint64_t hva) const {
    auto v = w.mm.view(hva);
    return v.entry.addr + (hva & (bit(v.shift) - 1));
  }

  World<H> w;
  Env env2{bit(40)};
  host::TlbModel tlb2;
  VmT vm{w.mm, env2, tlb2};
  std::vector<uint64_t> dirty, userfault;
};

TYPED_TEST_SUITE(Kvm, Pairs, PairName);

// kvm_tdp_mmu_map / user_mem_abort: a fault on anonymous memory GUPs the host page and maps it at the host's PA; a
// read maps the host's read-only zero page read-only, and the write that follows breaks the
// CoW on the host, whose invalidation makes the stage-2 fault retry once before it maps the
// new page writable.
TYPED_TEST(Kvm, FaultOnAnonymousMemoryMapsTheHostPage) {
  using F = typename TestFixture::F;
  this->anon_slot(64 * bit(F::page_shift));
  const uint64_t gpa = this->gpa0() + 5 * bit(F::page_shift) + 24;
  const uint64_t hva = this->hva0() + 5 * bit(F::page_shift) + 24;
  kvm::FaultResult r = this->vm.handle_fault(gpa, mm::Access::read);
  ASSERT_EQ(r.kind, kvm::FaultKind::mapped);
  EXPECT_EQ(r.shift, F::page_shift);
  Result<Translated> t = this->vm.translate(gpa);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value.pa, this->host_pa(hva));
  EXPECT_EQ(t.value.entry.prot.write, this->w.mm.view(hva).entry.writable);
  EXPECT_EQ(this->vm.counters().leaf_install[0], 1u);
  EXPECT_EQ(this->vm.handle_fault(gpa, mm::Access::read).kind, kvm::FaultKind::spurious);
  r = this->vm.handle_fault(gpa, mm::Access::write);
  if (!t.value.entry.prot.write) {
    EXPECT_EQ(r.kind, kvm::FaultKind::retry);  // the host CoW's notifier pair ran in GUP
    r = this->vm.handle_fault(gpa, mm::Access::write);
  }
  ASSERT_EQ(r.kind, kvm::FaultKind::mapped);
  t = this->vm.translate(gpa);
  EXPECT_TRUE(t.value.entry.prot.write);
  EXPECT_EQ(t.value.pa, this->host_pa(hva));
}

// Rule R1 (kvm_mmu_max_mapping_level, user_mem_abort): a hugetlb host leaf maps the largest plain stage-2 block no larger than it
// (arm64 16K: the 1G CONT-PMD hstate maps as 32M blocks; riscv/x86 1G as 1G).
TYPED_TEST(Kvm, HugetlbHostLeafMapsTheLargestPlainStage2BlockNoLargerThanIt) {
  using G = typename TestFixture::G;
  if (G::H == 0) GTEST_SKIP() << "no hstate";
  this->hugetlb_slot(1);
  const uint64_t gpa = this->gpa0() + bit(G::H) / 2;
  kvm::FaultResult r = this->vm.handle_fault(gpa, mm::Access::write);
  ASSERT_EQ(r.kind, kvm::FaultKind::mapped);
  EXPECT_EQ(r.shift, this->s2_block(G::H));
  EXPECT_EQ(this->vm.translate(gpa).value.pa, this->host_pa(this->hva0() + bit(G::H) / 2));
}

// lpage_info / fault_supports_stage2_huge_mapping: a slot whose GPA is not congruent with
// its HVA modulo a block size never maps that block.
TYPED_TEST(Kvm, ASlotNotCongruentWithItsHvaMapsBasePages) {
  using F = typename TestFixture::F;
  using G = typename TestFixture::G;
  if (G::H == 0) GTEST_SKIP() << "no hstate";
  const uint32_t file = this->w.hugetlb_file(G::H, 1, 1);
  ASSERT_EQ(this->w.mem.fallocate(file, 0, bit(G::H)), Err::ok);
  ASSERT_EQ(this->w.map(this->hva0(), file, 1), Err::ok);
  this->add_slot(bit(G::H), 0, this->gpa0() + bit(F::page_shift));
  kvm::FaultResult r = this->vm.handle_fault(this->gpa0() + 8 * bit(F::page_shift), mm::Access::read);
  ASSERT_EQ(r.kind, kvm::FaultKind::mapped);
  EXPECT_EQ(r.shift, F::page_shift);
}

// kvm_handle_guest_abort / kvm_mmu_faultin_pfn: no memslot, or a write to a read-only one, is an MMIO exit; nothing is mapped.
TYPED_TEST(Kvm, NoSlotOrAWriteToAReadOnlySlotIsAnMmioExit) {
  using F = typename TestFixture::F;
  this->anon_slot(16 * bit(F::page_shift), kvm::kMemReadonly);
  EXPECT_EQ(this->vm.handle_fault(this->gpa0() + 64 * bit(F::page_shift), mm::Access::read).kind,
            kvm::FaultKind::mmio);
  EXPECT_EQ(this->vm.handle_fault(this->gpa0(), mm::Access::write).kind, kvm::FaultKind::mmio);
  EXPECT_FALSE(this->vm.translate(this->gpa0()).ok());
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::read).kind, kvm::FaultKind::mapped);
  EXPECT_FALSE(this->vm.translate(this->gpa0()).value.entry.prot.write);
}

// kvm_mmu_notifier_invalidate_range_start: a host change of a present entry zaps what stage 2 maps there, inside the notifier
// pair, and ends with the sequence bumped; policy table, "the notifier's zap frees emptied tables": x86 zaps leaf SPTEs only, arm64 and riscv
// free the tables they empty.
TYPED_TEST(Kvm, HostUnmapZapsStage2AndFreesTablesOnlyWhereThePolicySays) {
  using F = typename TestFixture::F;
  this->anon_slot(64 * bit(F::page_shift));
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::write).kind, kvm::FaultKind::mapped);
  const uint64_t seq = this->vm.mmu_invalidate_seq();
  const uint64_t tables = this->env2.live();
  ASSERT_EQ(this->w.mm.madvise_dontneed(this->hva0(), 64 * bit(F::page_shift)), Err::ok);
  EXPECT_FALSE(this->vm.translate(this->gpa0()).ok());
  EXPECT_EQ(this->vm.counters().leaf_zap_by_notifier, 1u);
  EXPECT_EQ(this->vm.mmu_invalidate_seq(), seq + 1);
  EXPECT_EQ(this->vm.mmu_invalidate_in_progress(), 0u);
  if (TestFixture::kPolicy.zap_frees_tables)
    EXPECT_EQ(this->env2.live(), 1u) << "only the root stays";
  else
    EXPECT_EQ(this->env2.live(), tables);
}

// mmu_invalidate_retry(_gfn), policy table "a fault retries on an open invalidation": a fault that resolved its page before an invalidation began and installs
// while it is still open retries on arm64 and riscv whatever the range; on x86 only when the
// gfn is inside it. Once the invalidation ended, the changed sequence makes every one retry.
TYPED_TEST(Kvm, AFaultRacingAnInvalidationRetriesAsThePolicySays) {
  using F = typename TestFixture::F;
  const uint64_t page = bit(F::page_shift);
  this->anon_slot(64 * page);
  const mm::Notification other{mm::NotifyEvent::clear, this->hva0() + 32 * page,
                               this->hva0() + 33 * page};
  kvm::Faultin f = this->vm.faultin(this->gpa0(), mm::Access::read);
  this->vm.invalidate_range_start(other);
  kvm::FaultResult r = this->vm.map(f);
  EXPECT_EQ(r.kind, TestFixture::kPolicy.retry_on_any_invalidation ? kvm::FaultKind::retry
                                                                   : kvm::FaultKind::mapped);
  this->vm.invalidate_range_end(other);
  kvm::Faultin g = this->vm.faultin(this->gpa0() + page, mm::Access::read);
  this->vm.invalidate_range_start(other);
  this->vm.invalidate_range_end(other);
  EXPECT_EQ(this->vm.map(g).kind, kvm::FaultKind::retry);
  EXPECT_EQ(this->vm.handle_fault(this->gpa0() + page, mm::Access::read).kind,
            kvm::FaultKind::mapped);
}

// __kvm_faultin_pfn: GUP runs the host's fault path, so a missing page under userfaultfd blocks the vCPU
// thread until UFFDIO_COPY; its next fault maps the copied page.
TYPED_TEST(Kvm, AHostUserfaultBlocksTheVcpuUntilTheMonitorCopies) {
  using F = typename TestFixture::F;
  const uint64_t page = bit(F::page_shift);
  this->w.map_anon_registered(this->hva0(), 16 * page, mm_world::kFeatures, mm::kRegMissing);
  this->add_slot(16 * page, 0);
  kvm::FaultResult r = this->vm.handle_fault(this->gpa0() + 3 * page, mm::Access::read, 7);
  ASSERT_EQ(r.kind, kvm::FaultKind::uffd);
  EXPECT_EQ(r.msg.address, this->hva0() + 3 * page);
  EXPECT_FALSE(this->vm.translate(this->gpa0() + 3 * page).ok());
  ASSERT_EQ(this->w.mm.uffd_copy(this->hva0() + 3 * page, mm_world::kSrc, page, 0).err, Err::ok);
  EXPECT_EQ(this->vm.handle_fault(this->gpa0() + 3 * page, mm::Access::read, 7).kind,
            kvm::FaultKind::mapped);
}

// KVM userfault (KVM_MEM_USERFAULT, posted, not merged): a set bit exits with the page's gpa and size before the host is
// touched; a clear bit maps a base page while the slot has the flag.
TYPED_TEST(Kvm, AUserfaultBitExitsWithTheGpaAndSizeAndTouchesNothing) {
  using F = typename TestFixture::F;
  using G = typename TestFixture::G;
  if (G::H == 0) GTEST_SKIP() << "no hstate";
  this->hugetlb_slot(1, kvm::kMemUserfault);
  this->userfault[0] = 1 << 2;
  const uint64_t faults = this->w.mm.counters().faults;
  kvm::FaultResult r = this->vm.handle_fault(this->gpa0() + 2 * bit(F::page_shift) + 8,
                                             mm::Access::write);
  ASSERT_EQ(r.kind, kvm::FaultKind::memory_fault);
  EXPECT_EQ(r.gpa, this->gpa0() + 2 * bit(F::page_shift));
  EXPECT_EQ(r.size, bit(F::page_shift));
  EXPECT_EQ(r.flags, kvm::kMemoryExitFlagUserfault);
  EXPECT_EQ(this->w.mm.counters().faults, faults);
  r = this->vm.handle_fault(this->gpa0() + 3 * bit(F::page_shift), mm::Access::write);
  ASSERT_EQ(r.kind, kvm::FaultKind::mapped);
  EXPECT_EQ(r.shift, F::page_shift);
}

// Policy table, "huge mappings after logging / userfault off": when userfault (or dirty logging) is switched off, x86 rebuilds the huge mapping in
// place at once; arm64 and riscv leave the small leaves (arm64 rebuilds on a later fault).
TYPED_TEST(Kvm, SwitchingUserfaultOffRecoversHugeMappingsPerPolicy) {
  using F = typename TestFixture::F;
  const unsigned hs = this->block_hstate();
  if (hs == 0) GTEST_SKIP() << "no hstate mapping as a stage-2 block";
  this->hugetlb_slot(1, kvm::kMemUserfault, hs);  // the smallest: every page faulted below
  const unsigned block = this->s2_block(hs);
  for (uint64_t off = 0; off < bit(block); off += bit(F::page_shift))
    ASSERT_EQ(this->fault(this->gpa0() + off, mm::Access::write).kind,
              kvm::FaultKind::mapped);
  EXPECT_EQ(this->s2_shift(this->gpa0()), F::page_shift);
  ASSERT_EQ(this->set_flags(0), Err::ok);
  const bool eager = TestFixture::kPolicy.recovery == kvm::Recovery::eager;
  EXPECT_EQ(this->s2_shift(this->gpa0()), eager ? block : F::page_shift);
  EXPECT_EQ(this->vm.counters().recovered, eager ? 1u : 0u);
}

// KVM_MEM_LOG_DIRTY_PAGES: dirty logging maps base pages, logs each written page once, and after the log is read
// write-protects the reported pages so that their next write is logged again.
TYPED_TEST(Kvm, DirtyLoggingLogsEachWrittenPageAndRearmsAfterTheLogIsRead) {
  using F = typename TestFixture::F;
  const uint64_t page = bit(F::page_shift);
  this->anon_slot(128 * page, kvm::kMemLogDirtyPages);
  ASSERT_EQ(this->fault(this->gpa0() + 3 * page, mm::Access::read).kind,
            kvm::FaultKind::mapped);
  EXPECT_FALSE(this->vm.translate(this->gpa0() + 3 * page).value.entry.prot.write);
  ASSERT_EQ(this->fault(this->gpa0() + 3 * page, mm::Access::write).kind,
            kvm::FaultKind::mapped);
  ASSERT_EQ(this->fault(this->gpa0() + 9 * page, mm::Access::write).kind,
            kvm::FaultKind::mapped);
  EXPECT_EQ(this->vm.counters().dirty_logged, 2u);
  std::vector<uint64_t> log(3, 0);
  ASSERT_EQ(this->vm.get_dirty_log(0, log.data(), log.size()), Err::ok);
  EXPECT_EQ(log[0], (uint64_t{1} << 3) | (uint64_t{1} << 9));
  EXPECT_EQ(this->dirty[0], 0u);
  EXPECT_FALSE(this->vm.translate(this->gpa0() + 9 * page).value.entry.prot.write);
  ASSERT_EQ(this->fault(this->gpa0() + 9 * page, mm::Access::write).kind,
            kvm::FaultKind::mapped);
  EXPECT_EQ(this->dirty[0], uint64_t{1} << 9);
}

// KVM_MEM_LOG_DIRTY_PAGES: turning logging on over a huge mapping write-protects it and, with the policy's eager
// split (x86, riscv), splits it to pages at once; arm64 splits on the write fault, leaving the
// rest of the block to later faults.
TYPED_TEST(Kvm, LoggingOnOverABlockSplitsEagerlyOrOnTheWriteFault) {
  using F = typename TestFixture::F;
  const unsigned hs = this->block_hstate();
  if (hs == 0) GTEST_SKIP() << "no hstate mapping as a stage-2 block";
  this->hugetlb_slot(1, 0, hs);  // the smallest: an eager split makes 512-odd pages, not 256Ki
  const unsigned block = this->s2_block(hs);
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::write).kind, kvm::FaultKind::mapped);
  ASSERT_EQ(this->s2_shift(this->gpa0()), block);
  ASSERT_EQ(this->set_flags(kvm::kMemLogDirtyPages), Err::ok);
  EXPECT_FALSE(this->vm.translate(this->gpa0()).value.entry.prot.write);
  const bool eager = TestFixture::kPolicy.eager_split;
  EXPECT_EQ(this->s2_shift(this->gpa0() + bit(block) / 2), eager ? F::page_shift : block);
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::write).kind, kvm::FaultKind::mapped);
  EXPECT_EQ(this->s2_shift(this->gpa0()), F::page_shift);
  // The rest of the block: still mapped (eager split, or a split keeping the rest) or gone.
  EXPECT_EQ(this->vm.translate(this->gpa0() + bit(block) - bit(F::page_shift)).ok(),
            eager || TestFixture::kPolicy.split_keeps_rest);
}

// Policy table, "SIGBUS lsb for a poisoned page": SIGBUS for a poisoned host page has lsb PAGE_SHIFT on x86 and the VMA's shift (the
// hstate) on arm64 and riscv.
TYPED_TEST(Kvm, APoisonedHostPageIsSigbusWithThePolicysLsb) {
  using F = typename TestFixture::F;
  using G = typename TestFixture::G;
  if (G::H == 0) GTEST_SKIP() << "no hstate";
  this->hugetlb_slot(1);
  ASSERT_TRUE(this->w.mm.access(this->hva0(), mm::Access::read).kind == mm::AccessKind::ok);
  ASSERT_TRUE(this->w.mm.memory_failure(this->host_pa(this->hva0()) + 3 * bit(F::page_shift)).ok());
  kvm::FaultResult r = this->vm.handle_fault(this->gpa0(), mm::Access::read);
  ASSERT_EQ(r.kind, kvm::FaultKind::sigbus);
  EXPECT_EQ(r.lsb, TestFixture::kPolicy.poison_lsb_is_vma_shift ? G::H : F::page_shift);
}

// kvm_age_gfn / kvm_test_age_gfn: clear_young clears the accessed bit of what the HVA range maps and says whether
// one was set; test_young only looks.
TYPED_TEST(Kvm, ClearYoungClearsTheAccessedBitOnce) {
  using F = typename TestFixture::F;
  this->anon_slot(16 * bit(F::page_shift));
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::read).kind, kvm::FaultKind::mapped);
  const uint64_t h = this->hva0();
  EXPECT_TRUE(this->vm.test_young(h, h + bit(F::page_shift)));
  EXPECT_TRUE(this->vm.clear_young(h, h + bit(F::page_shift)));
  EXPECT_FALSE(this->vm.test_young(h, h + bit(F::page_shift)));
  EXPECT_FALSE(this->vm.clear_young(h, h + bit(F::page_shift)));
  EXPECT_TRUE(this->vm.translate(this->gpa0()).ok());
}

// The table-page cache is topped up before GUP: ENOMEM there leaves the host and stage 2 as
// they were (kvm_mmu_topup_memory_cache runs first).
TYPED_TEST(Kvm, EnomemBeforeGupLeavesBothSidesUnchanged) {
  using F = typename TestFixture::F;
  this->anon_slot(16 * bit(F::page_shift));
  const auto s2 = this->env2.snapshot();
  const auto host = this->w.env.snapshot();
  const uint64_t host_faults = this->w.mm.counters().faults;
  this->env2.fail_nth_alloc(1);
  EXPECT_EQ(this->vm.handle_fault(this->gpa0(), mm::Access::write).kind, kvm::FaultKind::enomem);
  this->env2.fail_nth_alloc(0);
  EXPECT_EQ(this->env2.snapshot(), s2);
  EXPECT_EQ(this->w.env.snapshot(), host);
  EXPECT_EQ(this->w.mm.counters().faults, host_faults);
}

// kvm_set_memory_region's input checks: each error changes nothing.
TYPED_TEST(Kvm, BadMemslotsAreRefusedWithNamedErrors) {
  using F = typename TestFixture::F;
  const uint64_t page = bit(F::page_shift);
  this->anon_slot(16 * page);
  kvm::MemslotSpec s{1, this->gpa0() + 8 * page, 16 * page, this->hva0(), 0, nullptr, nullptr};
  EXPECT_EQ(this->vm.set_memory_region(s), Err::eexist);  // overlaps slot 0
  s.gpa = this->gpa0() + 64 * page + 8;
  EXPECT_EQ(this->vm.set_memory_region(s), Err::einval);  // unaligned
  s.gpa = this->gpa0() + 64 * page;
  s.flags = kvm::kMemLogDirtyPages;
  EXPECT_EQ(this->vm.set_memory_region(s), Err::einval);  // logging without a bitmap
  s.flags = 0;
  s.id = 99;
  EXPECT_EQ(this->vm.set_memory_region(s), Err::einval);
  s.id = 2;
  s.size = 0;
  EXPECT_EQ(this->vm.set_memory_region(s), Err::enoent);  // deleting nothing
  EXPECT_EQ(this->vm.slot(1), nullptr);
  EXPECT_EQ(this->vm.slot(2), nullptr);
  kvm::MemslotSpec moved = this->vm.slot(0)->s;
  moved.gpa += page;
  EXPECT_EQ(this->vm.set_memory_region(moved), Err::einval);  // only flags may change
}

// Deleting a slot zaps everything it mapped (kvm_arch_flush_shadow_memslot).
TYPED_TEST(Kvm, DeletingASlotZapsItsMappings) {
  using F = typename TestFixture::F;
  this->anon_slot(16 * bit(F::page_shift));
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::read).kind, kvm::FaultKind::mapped);
  kvm::MemslotSpec s = this->vm.slot(0)->s;
  s.size = 0;
  ASSERT_EQ(this->vm.set_memory_region(s), Err::ok);
  EXPECT_FALSE(this->vm.translate(this->gpa0()).ok());
  EXPECT_EQ(this->vm.handle_fault(this->gpa0(), mm::Access::read).kind, kvm::FaultKind::mmio);
}

}  // namespace

namespace {

// R3 (docs/mm.md §3.1): host changes that make nothing less mapped - none to present
// (UFFDIO_COPY), none to marker - call no notifier, so stage 2 keeps everything.
TYPED_TEST(Kvm, HostChangesIntoEmptySlotsNeverNotify) {
  using F = typename TestFixture::F;
  const uint64_t page = bit(F::page_shift);
  this->w.map_anon_registered(this->hva0(), 16 * page, mm_world::kFeatures,
                              mm::kRegMissing | (mm::uffd_wp_supported<typename TestFixture::H>()
                                                     ? mm::kRegWp
                                                     : 0));
  this->add_slot(16 * page, 0);
  ASSERT_EQ(this->w.mm.uffd_copy(this->hva0(), mm_world::kSrc, page, 0).err, Err::ok);
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::read).kind, kvm::FaultKind::mapped);
  const uint64_t starts = this->w.mm.counters().notif_start;
  ASSERT_EQ(this->w.mm.uffd_copy(this->hva0() + 4 * page, mm_world::kSrc, page, 0).err, Err::ok);
  ASSERT_EQ(this->w.mm.uffd_zeropage(this->hva0() + 5 * page, page, 0).err, Err::ok);
  EXPECT_EQ(this->w.mm.counters().notif_start, starts);
  EXPECT_EQ(this->vm.counters().leaf_zap[0], 0u);
  EXPECT_TRUE(this->vm.translate(this->gpa0()).ok());
}

// Policy table, "a transparent huge page maps at most": a transparent huge page maps at most a PMD-level block on arm64 and riscv; x86's
// host_pfn_mapping_level takes whatever the host leaf is.
TYPED_TEST(Kvm, ATransparentHugePageMapsAtMostThePolicysLevel) {
  using F = typename TestFixture::F;
  using G = typename TestFixture::G;
  using H = typename TestFixture::H;
  if (G::H == 0 || G::H == G::M || H::shift(G::hl) != G::H) GTEST_SKIP() << "no PUD-level leaf";
  ASSERT_EQ(this->w.mem.set_pool(G::H, 2), Err::ok);
  mm::VmaSpec s;
  s.start = this->hva0();
  s.len = bit(G::H);
  s.max_shift = G::H;  // anonymous folios up to the PUD size
  ASSERT_TRUE(this->w.mm.mmap(s).ok());
  this->add_slot(bit(G::H), 0);
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::write).kind, kvm::FaultKind::mapped);
  ASSERT_EQ(this->w.mm.view(this->hva0()).shift, G::H) << "the host maps a PUD-size folio";
  const unsigned want = TestFixture::kPolicy.thp_max_level == 0xff
                            ? this->s2_block(G::H)
                            : this->s2_block(F::shift(TestFixture::kPolicy.thp_max_level));
  EXPECT_EQ(this->s2_shift(this->gpa0()), want);
}

// Policy table, "flush after installing into an invalid slot": riscv without Svvptc flushes after installing into an invalid slot; x86 and arm64
// do not.
TYPED_TEST(Kvm, InstallingIntoAnInvalidSlotFlushesOnlyWhereThePolicySays) {
  using F = typename TestFixture::F;
  this->anon_slot(16 * bit(F::page_shift));
  ASSERT_EQ(this->fault(this->gpa0(), mm::Access::write).kind, kvm::FaultKind::mapped);
  const auto& c = this->vm.counters();
  EXPECT_EQ(c.tlb_flush_leaf + c.tlb_flush_range + c.tlb_flush_all,
            TestFixture::kPolicy.flush_on_install ? 1u : 0u);
}

// Policy table, "huge mappings after logging / userfault off", arm64: after logging stops, the block comes back on the next fault that wants it (a
// write to a page logging left read-only); riscv keeps the small leaf.
TYPED_TEST(Kvm, AfterLoggingAWriteFaultRebuildsTheBlockOnlyOnArmsPolicy) {
  using F = typename TestFixture::F;
  const unsigned hs = this->block_hstate();
  if (hs == 0) GTEST_SKIP() << "no hstate mapping as a stage-2 block";
  this->hugetlb_slot(1, kvm::kMemLogDirtyPages, hs);
  const uint64_t page = bit(F::page_shift);
  ASSERT_EQ(this->fault(this->gpa0() + page, mm::Access::read).kind, kvm::FaultKind::mapped);
  ASSERT_EQ(this->s2_shift(this->gpa0() + page), F::page_shift);
  ASSERT_EQ(this->set_flags(0), Err::ok);
  kvm::FaultResult r = this->fault(this->gpa0() + page, mm::Access::write);
  ASSERT_TRUE(r.kind == kvm::FaultKind::mapped) << kvm::fault_kind_name(r.kind);
  const kvm::Recovery rec = TestFixture::kPolicy.recovery;
  EXPECT_EQ(this->s2_shift(this->gpa0() + page),
            rec == kvm::Recovery::none ? F::page_shift : this->s2_block(hs));
}

// The reference invariants (issue: "no SPTE maps what the host does not map at that address,
// no SPTE maps wider than the host leaf, nothing is stale after invalidate_range_end") over
// random sequences of guest faults, host changes that notify or not, logging and aging.
TYPED_TEST(Kvm, RandomSequencesKeepStage2WithinTheHostMapping) {
  using F = typename TestFixture::F;
  using G = typename TestFixture::G;
  const uint64_t page = bit(F::page_shift), n = 64;
  this->anon_slot(n * page);
  const uint64_t hva = this->hva0(), gpa = this->gpa0();
  hpt::Rng rng{0x6b766d00 + F::levels};
  std::vector<uint64_t> log(2, 0);
  bool logging = false;
  auto check = [&](unsigned step) {
    ASSERT_EQ(this->vm.mmu_invalidate_in_progress(), 0u) << "step " << step;
    for (uint64_t i = 0; i < n; ++i) {
      Result<Translated> t = this->vm.translate(gpa + i * page);
      if (!t) continue;
      const auto v = this->w.mm.view(hva + i * page);
      ASSERT_EQ(v.entry.kind, Kind::leaf) << "step " << step << " page " << i;
      EXPECT_EQ(t.value.pa, this->host_pa(hva + i * page)) << "step " << step << " page " << i;
      EXPECT_LE(t.value.shift, v.shift) << "step " << step;
      if (t.value.entry.prot.write) {
        EXPECT_TRUE(v.entry.writable) << "step " << step << " page " << i;
      }
    }
    auto stale = this->tlb2.stale(this->vm.table());
    EXPECT_TRUE(stale.empty()) << "step " << step << ": " << stale.front().why;
  };
  (void)sizeof(G);
  for (unsigned step = 0; step < 250; ++step) {
    const uint64_t i = rng.below(n), len = 1 + rng.below(n - i);
    switch (rng.below(8)) {
      case 0: case 1: case 2: {
        const mm::Access a = static_cast<mm::Access>(rng.below(3));
        const kvm::FaultResult r = this->fault(gpa + i * page + rng.below(page), a);
        EXPECT_TRUE(r.kind == kvm::FaultKind::mapped || r.kind == kvm::FaultKind::spurious ||
                    r.kind == kvm::FaultKind::efault)
            << kvm::fault_kind_name(r.kind);
        for (unsigned k = 0; k < 3; ++k)  // the guest's accesses fill the stage-2 TLB
          (void)this->tlb2.access(this->vm.table(), gpa + rng.below(n) * page);
        break;
      }
      case 3: {  // one VMA at a time: the model's MADV_DONTNEED takes one
        const auto* v = this->w.mm.vma_at(hva + i * page);
        const uint64_t end = v->end < hva + (i + len) * page ? v->end : hva + (i + len) * page;
        EXPECT_EQ(this->w.mm.madvise_dontneed(hva + i * page, end - (hva + i * page)), Err::ok);
        break;
      }
      case 4:
        EXPECT_EQ(this->w.mm.mprotect(hva + i * page, len * page,
                                      rng.below(2) ? kProtR : kProtRW),
                  Err::ok);
        break;
      case 5: (void)this->w.mm.access(hva + i * page, mm::Access::write); break;
      case 6:
        logging = !logging;
        EXPECT_EQ(this->set_flags(logging ? kvm::kMemLogDirtyPages : 0), Err::ok);
        break;
      case 7:
        if (logging) {
          EXPECT_EQ(this->vm.get_dirty_log(0, log.data(), log.size()), Err::ok);
        }
        this->vm.clear_young(hva + i * page, hva + (i + len) * page);
        break;
    }
    check(step);
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(this->vm.counters().leaf_zap_by_notifier, 0u);
  EXPECT_GT(this->vm.counters().total(this->vm.counters().leaf_install), 20u);
}

}  // namespace

namespace {

// Two-dimensional translation (issue part 3): the guest's stage-1 tables live in guest memory,
// so each table the walk reads is first translated by stage 2; a stage-2 fault there is S1PTW.
// A fresh VM takes one S1PTW fault per guest table level, then a stage-2 fault on the data
// page, then translates; an unmapped gva faults at stage 1, a read-only stage-2 leaf is a
// stage-2 permission fault.
TYPED_TEST(Kvm, TranslateTwoDimensionsReportsTheStageAndLevelThatFaulted) {
  using F = typename TestFixture::F;
  using H = typename TestFixture::H;
  const uint64_t page = bit(F::page_shift);
  this->anon_slot(64 * page);
  // The guest's own tables: table pages at guest-physical addresses from gpa0 on.
  host::EnvFor<H> genv(this->gpa0());
  PageTable<H, host::EnvFor<H>> g1(genv);
  ASSERT_EQ(g1.init(), Err::ok);
  host::TlbModel gtlb;
  RangeOps<H, host::EnvFor<H>, host::TlbModel> gops(g1, gtlb);
  const uint64_t gva = 3 * bit(H::shift(1)) + 5 * page;
  const uint64_t data = this->gpa0() + 40 * page;
  Attrs a;
  a.prot = Prot{true, true, false, true};
  a.writable = a.accessed = a.dirty = true;
  ASSERT_EQ(gops.map(gva, data, page, a), Err::ok);

  unsigned s1ptw = 0;
  kvm::Translation2d t;
  for (unsigned k = 0; k < 2 * H::levels + 2; ++k) {
    t = kvm::translate_2d(g1, this->vm.table(), gva + 8, mm::Access::read, true);
    if (t.fault == kvm::Fault2d::none) break;
    ASSERT_EQ(t.stage, 2u);
    ASSERT_EQ(t.fault, kvm::Fault2d::translation);
    if (t.s1ptw) {
      ++s1ptw;
      EXPECT_LT(t.gpa, this->gpa0() + 8 * page) << "a guest table page";
    } else {
      EXPECT_EQ(t.gpa, data + 8);
    }
    ASSERT_EQ(this->fault(t.gpa, mm::Access::read).kind, kvm::FaultKind::mapped);
  }
  ASSERT_EQ(t.fault, kvm::Fault2d::none);
  EXPECT_EQ(s1ptw, H::levels);  // one per guest table page, each its own stage-2 page
  EXPECT_EQ(t.gpa, data + 8);
  EXPECT_EQ(t.hpa, this->host_pa(this->hva0() + 40 * page + 8));
  EXPECT_EQ(t.s1_shift, H::page_shift);
  // Not mapped at stage 1: the root's entry for another top-level index is empty.
  const uint64_t other = bit(H::shift(H::levels - 1)) + gva;
  if (H::canonical(other)) {
    kvm::Translation2d u = kvm::translate_2d(g1, this->vm.table(), other, mm::Access::read);
    EXPECT_EQ(u.stage, 1u);
    EXPECT_EQ(u.fault, kvm::Fault2d::translation);
    EXPECT_EQ(u.level, H::levels - 1);
  }
  // The data page is the host's zero page, mapped read-only at stage 2: a write faults there.
  if (!this->vm.translate(data).value.entry.prot.write) {
    kvm::Translation2d w2 = kvm::translate_2d(g1, this->vm.table(), gva, mm::Access::write);
    EXPECT_EQ(w2.stage, 2u);
    EXPECT_EQ(w2.fault, kvm::Fault2d::permission);
    EXPECT_FALSE(w2.s1ptw);
  }
  // A user access to a supervisor page is a stage-1 permission fault.
  ASSERT_EQ(gops.protect(gva, page, Prot{true, false, false, false}, false), Err::ok);
  kvm::Translation2d p1 = kvm::translate_2d(g1, this->vm.table(), gva, mm::Access::read, true);
  EXPECT_EQ(p1.stage, 1u);
  EXPECT_EQ(p1.fault, kvm::Fault2d::permission);
  EXPECT_EQ(p1.level, 0u);
}

}  // namespace

namespace {

// Hardware dirty logging (Intel PML): logging clears the D bits of base pages instead of
// write-protecting them, so a write to a mapped page does not fault; the log is harvested from
// the D bits, which are cleared again (and the page flushed) for the next round.
TYPED_TEST(Kvm, DirtyLoggingByDBitsHarvestsWritesWithoutFaults) {
  using F = typename TestFixture::F;
  if (AdCaps(F::ad_caps).model != DirtyModel::hw_d || !AdCaps(F::ad_caps).hw_dirty)
    GTEST_SKIP() << "the hardware keeps no plain D bit at stage 2";
  const uint64_t page = bit(F::page_shift);
  typename TestFixture::VmT vm(this->w.mm, this->env2, this->tlb2,
                               typename TestFixture::VmT::Options{.dirty_log_by_d_bits = true});
  ASSERT_EQ(vm.init(), Err::ok);
  this->w.map_anon(this->hva0(), 64 * page);
  for (uint64_t i : {3, 5})  // the host's pages exist and are writable
    ASSERT_EQ(this->w.mm.access(this->hva0() + i * page, mm::Access::write).kind,
              mm::AccessKind::ok);
  std::vector<uint64_t> bitmap(2, 0), log(2, 0);
  kvm::MemslotSpec s{0, this->gpa0(), 64 * page, this->hva0(), kvm::kMemLogDirtyPages,
                     bitmap.data(), nullptr};
  ASSERT_EQ(vm.set_memory_region(s), Err::ok);
  ASSERT_TRUE(vm.guest_access(this->gpa0() + 3 * page, mm::Access::write).done);
  ASSERT_TRUE(vm.guest_access(this->gpa0() + 5 * page, mm::Access::read).done);
  Result<Translated> t = vm.translate(this->gpa0() + 5 * page);
  EXPECT_TRUE(t.value.entry.prot.write) << "mapped writable and clean, not write-protected";
  const uint64_t faults = vm.counters().faults;
  kvm::GuestAccess g = vm.guest_access(this->gpa0() + 5 * page, mm::Access::write);
  ASSERT_TRUE(g.done);
  EXPECT_EQ(g.faults, 0u);
  EXPECT_EQ(vm.counters().faults, faults);
  ASSERT_EQ(vm.get_dirty_log(0, log.data(), log.size()), Err::ok);
  EXPECT_EQ(log[0], (uint64_t{1} << 3) | (uint64_t{1} << 5));
  EXPECT_FALSE(vm.translate(this->gpa0() + 5 * page).value.entry.dirty);
  ASSERT_TRUE(vm.guest_access(this->gpa0() + 5 * page, mm::Access::write).done);
  ASSERT_EQ(vm.get_dirty_log(0, log.data(), log.size()), Err::ok);
  EXPECT_EQ(log[0], uint64_t{1} << 5);
}

}  // namespace
