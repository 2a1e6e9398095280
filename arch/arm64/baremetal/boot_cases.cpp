// boot_cases.cpp - the boot identity map is the library's own table (boot_map.hpp), and the MMU
// walks it the way the library says: checked with the library's walker, its lookup(), AT S1E1*
// and real accesses.
#include "boot_map.hpp"
#include "guest.hpp"
#include "harness.hpp"
#include "hpt_test.hpp"
#include "hugepte/walk.hpp"

extern "C" {
extern char __image_start[];  // NOLINT(bugprone-reserved-identifier): linker symbols (link.ld)
extern char __image_end[];    // NOLINT(bugprone-reserved-identifier)
}

namespace {

using namespace hpt::arm64_bm;  // NOLINT(google-build-using-namespace): the harness vocabulary
namespace guest = hpt::guest;
using F = BootFormat;
using hugepte::Entry;
using hugepte::Kind;
using hugepte::MemType;
using hugepte::Step;
using hugepte::Visit;
using hugepte::VisitCtx;

#define NEEDS_LIBRARY_BOOT_MAP()                              \
  if (!mode_supported()) HPT_SKIP(mode_missing_reason());     \
  const BootTable* table = boot_table();                      \
  HPT_ASSERT(table != nullptr && table->has_root())

// Everything the boot map may touch lies below the end of RAM; the walks stop there (tests graft
// their own tables far above it).
constexpr uint64_t kMapEnd = kRamBase + kRamSize;

const BootRegion* region_of(uint64_t start,
                            uint64_t end) {  // the region holding [start, end), or null
  unsigned n = 0;
  const BootRegion* r = boot_regions(n);
  for (unsigned i = 0; i < n; ++i)
    if (start >= r[i].start && end <= r[i].end && start < end) return &r[i];
  return nullptr;
}

void say_va(uint64_t va) {
  hpt::out("      at va ");
  hpt::out_u64(va, 16);
  hpt::out("\n");
}

uint64_t g_data_word = 1;  // .data: in the image, written through the boot map

}  // namespace

HPT_ARCH_CASE("arm64", boot, BootMapIsALibraryTableInReservedRam) {
  NEEDS_LIBRARY_BOOT_MAP();
  HPT_EXPECT_EQ(table->root(), boot_root());
  HPT_EXPECT_EQ(guest::current_root(), table->root());

  // The pages the harness reserved: after the image, below the tests' free RAM.
  const uint64_t lo = boot_tables_base(), hi = guest::free_ram_base();
  HPT_EXPECT(lo >= reinterpret_cast<uint64_t>(__image_end));
  HPT_EXPECT(hi >= lo + uint64_t{kBootTablePages} * bit(F::page_shift));
  auto reserved = [&](uint64_t pa) {
    return pa >= lo && pa + bit(F::page_shift) <= hi && hugepte::aligned(pa, F::page_shift);
  };
  HPT_EXPECT(reserved(table->root()));
  uint64_t tables = 1;  // the root
  unsigned outside = 0;
  const hugepte::Err err = hugepte::walk(
      *table, 0, kMapEnd, hugepte::WalkFlags{.table_pre = true},
      [&](const VisitCtx& c, Visit) -> Step {
        ++tables;
        if (!reserved(F::out_addr(c.old, c.level)) && outside++ == 0) say_va(c.base());
        return Step::next();
      });
  HPT_EXPECT_EQ(err, hugepte::Err::ok);
  HPT_EXPECT_EQ(outside, 0u);
  HPT_EXPECT(tables <= kBootTablePages);
  // Every page the environment handed out is linked into the map: nothing leaked.
  HPT_EXPECT_EQ(table->env().live(), tables);
}

// Each region is mapped by the biggest leaves its alignment allows: no entry could have been
// replaced by a larger block or contiguous group that stays inside the same region. Every leaf
// is an identity mapping with the region's attributes, and the leaves cover the regions exactly.
HPT_ARCH_CASE("arm64", boot, BootMapUsesTheLargestLeafThatFitsEachRegion) {
  NEEDS_LIBRARY_BOOT_MAP();
  constexpr hugepte::LeafSizes<F> sizes = hugepte::leaf_sizes<F>();
  uint64_t mapped = 0;
  unsigned bad = 0, not_largest = 0;
  const hugepte::Err err = hugepte::walk(
      *table, 0, kMapEnd, hugepte::WalkFlags{.leaf = true},
      [&](const VisitCtx& c, Visit) -> Step {
        const Entry e = F::decode(c.old, c.level);
        if (e.kind == Kind::none) return Step::next();
        const uint64_t base = c.base();
        const unsigned shift = e.cont_shift ? e.cont_shift : c.shift;  // the logical leaf
        const BootRegion* r = region_of(hugepte::align_down(base, shift),
                                        hugepte::align_down(base, shift) + bit(shift));
        const bool ok = e.kind == Kind::leaf && r && e.addr == base && e.accessed && e.dirty &&
                        e.global && e.writable && e.prot.read && e.prot.write && !e.prot.user &&
                        e.prot.exec == r->exec && e.mem == r->mem;
        if (!ok) {
          if (bad++ == 0) say_va(base);
          return Step::next();
        }
        mapped += c.size();
        for (unsigned i = 0; i < sizes.count; ++i) {
          if (sizes.shift[i] <= shift) continue;
          const uint64_t bigger = hugepte::align_down(base, sizes.shift[i]);
          if (region_of(bigger, bigger + bit(sizes.shift[i])) == r && not_largest++ == 0)
            say_va(base);
        }
        return Step::next();
      });
  HPT_EXPECT_EQ(err, hugepte::Err::ok);
  HPT_EXPECT_EQ(bad, 0u);
  HPT_EXPECT_EQ(not_largest, 0u);
  unsigned n = 0;
  const BootRegion* r = boot_regions(n);
  uint64_t want = 0;
  for (unsigned i = 0; i < n; ++i) want += r[i].end - r[i].start;
  HPT_EXPECT_EQ(mapped, want);

  // What that means on QEMU's virt board with 2 GiB at 1 GiB, spelled out per granule: the
  // top of RAM, 1 GiB-aligned, ends in 4K a 1 GiB block, 16K a 1 GiB group of 32 MiB blocks,
  // 64K a 512 MiB block (a 16 GiB group would take in the image).
  static_assert(kRamSize == (2ull << 30), "the sizes below are spelled out for -m 2G");
  const uint64_t want_top = F::page_shift == 12 ? 30 : F::page_shift == 14 ? 30 : 29;
  const auto top = hugepte::lookup(*table, kMapEnd - 8);
  HPT_ASSERT(top.ok());
  const Entry e = F::decode(top.value.raw, top.value.level);
  HPT_EXPECT_EQ(uint64_t{e.cont_shift ? e.cont_shift : e.shift}, want_top);
  HPT_EXPECT(n >= 3);  // UART, image, free RAM (and RAM below the image)
}

// AT S1E1W, the library's lookup() and real accesses agree on the boot map: identity, Normal
// write-back RAM and Device-nGnRnE UART, executable only where the image is.
HPT_ARCH_CASE("arm64", boot, BootMapTranslatesOnTheMmuAsTheLibrarySays) {
  NEEDS_LIBRARY_BOOT_MAP();
  uint64_t stack_word = 0;
  const uint64_t free_last = guest::free_ram_base() + guest::free_ram_size() - 8;
  const uint64_t probes[] = {
      kUartBase,
      kRamBase,                                    // below the image
      reinterpret_cast<uint64_t>(__image_start),        // code
      reinterpret_cast<uint64_t>(&g_data_word),         // data
      reinterpret_cast<uint64_t>(&stack_word),          // the boot stack
      table->root(),                               // the boot tables
      guest::free_ram_base(),
      free_last,
  };
  for (const uint64_t va : probes) {
    const unsigned before = hpt_ctx.failures;
    const auto l = hugepte::lookup(*table, va);
    HPT_EXPECT(l.ok());
    HPT_EXPECT_EQ(l.value.pa, va);
    const uint64_t par = at_s1e1w(va);
    HPT_EXPECT(!par_faulted(par));
    HPT_EXPECT_EQ(par_pa(par), align_down(va, 12));
    const Entry e = F::decode(l.value.raw, l.value.level);
    HPT_EXPECT_EQ(par_attr(par), e.mem == MemType::device ? 0x00u : 0xffu);
    if (hpt_ctx.failures != before) say_va(va);
  }
  // Nothing around the UART page or past RAM is mapped.
  HPT_EXPECT(par_faulted(at_s1e1r(kUartBase + bit(F::page_shift))));
  HPT_EXPECT(par_faulted(at_s1e1r(kMapEnd)));
  HPT_EXPECT_EQ(hugepte::lookup(*table, kMapEnd).err, hugepte::Err::enoent);

  // Data goes through: the stores below land, and no access-flag or permission fault stops them
  // (16K runs without hardware AF updates: the entries are young already).
  g_data_word = 0x600d;
  HPT_EXPECT_EQ(*static_cast<volatile uint64_t*>(&g_data_word), 0x600du);
  guest::Fault f;
  HPT_EXPECT(guest::probe_write(free_last, 0x5eed, f));

  // The image executes; free RAM, identity mapped, does not (a permission fault at the level of
  // the leaf that maps it).
  unsigned len = 0;
  const unsigned char* ret = guest::ret_insn(len);
  HPT_EXPECT(guest::probe_exec(reinterpret_cast<uint64_t>(ret), f));
  const uint64_t code = guest::free_ram_base() + 0x40;
  auto* dst = reinterpret_cast<volatile unsigned char*>(code);
  for (unsigned i = 0; i < len; ++i) dst[i] = ret[i];
  guest::code_written(code, len);
  const auto l = hugepte::lookup(*table, code);
  HPT_ASSERT(l.ok());
  HPT_EXPECT(!F::decode(l.value.raw, l.value.level).prot.exec);
  HPT_EXPECT(!guest::probe_exec(code, f));
  HPT_EXPECT_EQ(f.addr, code);
  HPT_EXPECT_EQ(f.access, guest::Access::exec);
  HPT_EXPECT_EQ(esr_fsc(f.cause), fsc_permission(F::arm_level(l.value.level)));
}
