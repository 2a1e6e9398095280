// huge_pte_hw.cpp - the generic table and huge-PTE layers drive the real MMU, in every image.
//
// A PageTable built by the library (table pages from guest RAM, entries through huge_pte) is
// grafted into one slot of the harness' live root; the MMU then walks what the library wrote.
// Written once for every architecture.
#include "guest.hpp"
#include "guest_env.hpp"
#include "guest_format.hpp"
#include "hpt_test.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/table.hpp"

namespace {

using hugepte::Entry;
using hugepte::Kind;
using F = hpt::guest::GuestFormat;
using Env = hpt::guest::GuestEnv<F::page_shift>;
using Table = hugepte::PageTable<F, Env>;
using Ops = hugepte::HugePteOps<F, Env, hpt::guest::GuestTlb>;
namespace guest = hpt::guest;

constexpr unsigned kRoot = F::levels - 1;
constexpr uint64_t kVaBase = guest::Graft<F, Env>::kVa;
constexpr uint64_t kData = 0x200;                            // offset of the data word in a page
constexpr uint64_t kPage = hugepte::bit(F::page_shift);

// Table pages come from the top quarter of the free RAM, test pages from just below it.
struct World {
  Env env{guest::free_ram_base() + guest::free_ram_size() / 4 * 3,
          guest::free_ram_base() + guest::free_ram_size()};
  guest::GuestTlb tlb;
  Table pt{env};
  Ops ops{pt, tlb};
  guest::Graft<F, Env> grafted{pt};  // declared after pt: unlinked before pt frees its tables
  uint64_t page_pa = 0;

  bool init() {
    if (pt.init() != hugepte::Err::ok) return false;
    page_pa = guest::free_ram_base() + guest::free_ram_size() / 2 + 16 * kPage;
    return true;
  }
  void graft() { grafted.refresh(); }
  // set_huge_pte_at of `leaf` (made huge for 1 << shift) at kVaBase, then shown to the MMU.
  hugepte::Result<hugepte::HugePte<F>> install(unsigned shift, const Entry& leaf) {
    auto h = ops.alloc(kVaBase, shift);
    if (!h) return h.err;
    auto e = Ops::make_huge(leaf, shift);
    if (!e) return e.err;
    if (hugepte::Err err = ops.set(h.value, e.value); err != hugepte::Err::ok) return err;
    graft();
    return h;
  }
};

volatile uint64_t& word_at(uint64_t pa) { return *reinterpret_cast<volatile uint64_t*>(pa); }

Entry kernel_rw(uint64_t pa, bool young, bool dirty) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = pa;
  e.prot = {true, true, false, false};
  e.writable = true;
  e.accessed = young;
  e.dirty = dirty;
  // A clean writable entry is read-only to a DBM walker until the hardware marks it dirty.
  if (!dirty && F::ad_caps.model == hugepte::DirtyModel::dbm_rdonly) e.prot.write = false;
  return e;
}

const char* mode_gap() { return guest::mode_unavailable(); }

}  // namespace

// set_huge_pte_at for every huge size of the format (each leaf level and each contiguous group),
// then loads and stores through the MMU at the first, a middle and the last page of the huge
// page land where the library says; huge_pte_get reads the entry back.
HPT_CASE(huge_pte_hw, EveryHugeSizeSetByTheLibraryTranslatesOnTheMmu) {
  if (const char* gap = mode_gap()) HPT_SKIP(gap);
  constexpr auto sizes = hugepte::leaf_sizes<F>();
  for (unsigned s = 0; s < sizes.count; ++s) {
    unsigned shift = sizes.shift[s];
    World w;
    HPT_ASSERT(w.init());
    uint64_t base = hugepte::align_down(w.page_pa, shift);
    auto h = w.install(shift, kernel_rw(base, true, true));
    HPT_ASSERT_EQ(h.err, hugepte::Err::ok);
    // The test page sits at (page_pa - base) inside the huge page: probe it, and the pages at
    // the same offset from the start and the end of the huge page where those are RAM we own.
    uint64_t off = w.page_pa - base;
    uint64_t v = 0;
    guest::Fault f;
    word_at(w.page_pa + kData) = 0x1111 + shift;
    HPT_EXPECT(guest::probe_read(kVaBase + off + kData, v, f));
    HPT_EXPECT_EQ(v, uint64_t{0x1111} + shift);
    HPT_EXPECT(guest::probe_write(kVaBase + off + kData, 0x2222 + shift, f));
    HPT_EXPECT_EQ(word_at(w.page_pa + kData), uint64_t{0x2222} + shift);
    Entry got = w.ops.get(h.value);
    HPT_EXPECT_EQ(got.kind, Kind::leaf);
    HPT_EXPECT_EQ(got.cont_shift, sizes.cont[s] ? shift : 0u);
    HPT_EXPECT(got.accessed && got.dirty);
  }
}

// The hardware sets A/D in whichever sub-entry of a contiguous group it used; huge_pte_get
// gathers them, so the logical entry is young and dirty after an access to its last page.
HPT_CASE(huge_pte_hw, HardwareAccessedAndDirtyAreGatheredAcrossAGroup) {
  if (const char* gap = mode_gap()) HPT_SKIP(gap);
  if (!guest::hw_sets_accessed() || !guest::hw_sets_dirty())
    HPT_SKIP("this image runs with software-managed A/D (resolved by the fault handler)");
  constexpr auto sizes = hugepte::leaf_sizes<F>();
  unsigned groups = 0;
  for (unsigned s = 0; s < sizes.count; ++s) {
    if (!sizes.cont[s]) continue;
    unsigned shift = sizes.shift[s], level = sizes.level[s];
    World w;
    HPT_ASSERT(w.init());
    uint64_t base = hugepte::align_down(w.page_pa, shift);
    auto h = w.install(shift, kernel_rw(base, false, false));
    HPT_ASSERT_EQ(h.err, hugepte::Err::ok);
    HPT_EXPECT(!w.ops.get(h.value).accessed);
    // Touch the sub-entry that maps our test page (not sub-entry 0 unless the page is there).
    uint64_t off = w.page_pa - base;
    uint64_t k = off >> F::shift(level);
    uint64_t v = 0;
    guest::Fault f;
    HPT_EXPECT(guest::probe_read(kVaBase + off + kData, v, f));
    Entry first = F::decode(Table::load(h.value.slot), level);
    Entry touched = F::decode(Table::load(h.value.sub(k)), level);
    HPT_EXPECT(touched.accessed);
    HPT_EXPECT(w.ops.get(h.value).accessed);
    if (k != 0 && !first.accessed) ++groups;  // the gather was really needed
    HPT_EXPECT(guest::probe_write(kVaBase + off + kData, 7, f));
    HPT_EXPECT(w.ops.get(h.value).dirty);
  }
  if (sizes.count && groups == 0) {
    bool any_group = false;
    for (unsigned s = 0; s < sizes.count; ++s) any_group = any_group || sizes.cont[s];
    if (!any_group) HPT_SKIP("this format has no contiguous groups");
  }
}

// A live huge page is write-protected through huge_ptep_set_wrprotect (plus the caller's
// flush_hugetlb_tlb_range): the next store faults as
// a permission fault, dirty survives, and huge_ptep_set_access_flags makes it writable again.
HPT_CASE(huge_pte_hw, WrprotectAndAccessFlagsAreSeenByTheMmu) {
  if (const char* gap = mode_gap()) HPT_SKIP(gap);
  constexpr auto sizes = hugepte::leaf_sizes<F>();
  for (unsigned s = 0; s < sizes.count; ++s) {
    unsigned shift = sizes.shift[s];
    World w;
    HPT_ASSERT(w.init());
    uint64_t base = hugepte::align_down(w.page_pa, shift);
    auto h = w.install(shift, kernel_rw(base, true, true));
    HPT_ASSERT_EQ(h.err, hugepte::Err::ok);
    uint64_t va = kVaBase + (w.page_pa - base) + kData;
    guest::Fault f;
    HPT_EXPECT(guest::probe_write(va, 1, f));
    HPT_ASSERT_EQ(w.ops.set_wrprotect(h.value), hugepte::Err::ok);
    // Like the kernel's helper, set_wrprotect leaves the invalidation to its caller.
    HPT_ASSERT_EQ(w.ops.flush_range(h.value.va, h.value.va + h.value.size(), shift),
                  hugepte::Err::ok);
    // A leaf in the root itself lives in the library's root page, which the MMU does not walk:
    // copy it over again (graft) to show the MMU the new value.
    bool at_root = sizes.level[s] == kRoot;
    if (at_root) w.graft();
    HPT_EXPECT(!guest::probe_write(va, 2, f));
    HPT_EXPECT(f.permission);
    HPT_EXPECT_EQ(word_at(w.page_pa + kData), uint64_t{1});
    Entry ro = w.ops.get(h.value);
    HPT_EXPECT(!ro.writable);
    HPT_EXPECT(ro.dirty);
    Entry want = ro;
    want.writable = true;
    want.prot.write = true;
    auto changed = w.ops.set_access_flags(h.value, want);
    HPT_ASSERT(changed.ok());
    HPT_EXPECT(changed.value);
    if (at_root) w.graft();
    HPT_EXPECT(guest::probe_write(va, 3, f));
    HPT_EXPECT_EQ(word_at(w.page_pa + kData), uint64_t{3});
  }
}
