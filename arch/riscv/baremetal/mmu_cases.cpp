// mmu_cases.cpp - riscv64 in-guest cases: the harness itself ("boot") and what QEMU's page-table
// walker really does with Sv39/Sv48/Sv57 entries ("mmu"). The mmu cases build their tables with
// the harness' raw-bit helpers (rv.hpp) in free RAM, deliberately not with the library; every
// claim is an access through the real MMU. The boot cases check the library-built boot map.
#include <initializer_list>

#include "boot_map.hpp"
#include "guest.hpp"
#include "hpt_test.hpp"
#include "hugepte/walk.hpp"
#include "rv.hpp"

namespace {

using namespace hpt::rv;
namespace guest = hpt::guest;
using guest::Access;
using guest::Fault;

constexpr uint64_t flags_rw = pte_r | pte_w | pte_a | pte_d;
constexpr uint64_t page_size = uint64_t{1} << page_shift;
constexpr uint64_t cause_fetch_page = 12, cause_load_page = 13, cause_store_page = 15;

volatile uint64_t& mem(uint64_t pa) { return *reinterpret_cast<volatile uint64_t*>(pa); }

bool str_eq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

// A value that names where it was written, so a wrong translation cannot read back a match.
constexpr uint64_t pattern(uint64_t pa, uint64_t salt) {
  return (pa * 0x9e3779b97f4a7c15ull) ^ salt;
}

// Per-case workspace in free RAM: table pages in the first 4 MiB, a 2 MiB-aligned data block
// after them, and a test root that starts as a copy of the boot root (sharing its lower
// tables, which the cases never touch). Test mappings go into `window`, a top-level slot the
// boot map does not use (index 4: 4 GiB in Sv39, 2 TiB in Sv48, 1 PiB in Sv57).
struct Space {
  unsigned levels = active_levels();
  PageBump tables{guest::free_ram_base(), guest::free_ram_base() + (uint64_t{4} << 20)};
  uint64_t block = guest::free_ram_base() + (uint64_t{4} << 20);
  uint64_t window = uint64_t{4} << level_shift(levels - 1);
  uint64_t root = 0;
  bool switched = false;

  Space() {
    root = tables.page();
    for (unsigned i = 0; i < entries_per_table; ++i) *slot(root, i) = *slot(boot_root(), i);
  }
  ~Space() {
    if (switched) guest::set_root(boot_root());
  }
  Space(const Space&) = delete;
  Space& operator=(const Space&) = delete;

  // Entry address, 0 on failure.
  uint64_t map(uint64_t va, unsigned level, uint64_t pte) {
    return hpt::rv::map(root, levels, va, level, pte, tables);
  }
  void use() {
    guest::set_root(root);
    switched = true;
  }
  Walk walk_va(uint64_t va) const { return walk(root, levels, va); }
};

// Cases about one paging mode skip, never pass, when the emulator lacks that mode.
#define RV_NEED_MODE()                                              \
  do {                                                              \
    if (!::hpt::rv::mode_active()) HPT_SKIP(::hpt::rv::lacks_reason()); \
  } while (0)

// Alias check both ways at physical `pa` seen through `va`: a store through one address is
// a load through the other.
void check_alias(hpt::Ctx& hpt_ctx, const Space& s, uint64_t va, uint64_t pa) {
  const Walk w = s.walk_va(va);
  HPT_EXPECT(w.leaf);
  HPT_EXPECT_EQ(w.pa, pa);  // the harness' software walk agrees with the layout
  Fault f;
  uint64_t v = 0;
  mem(pa) = pattern(pa, 1);
  HPT_EXPECT(guest::probe_read(va, v, f));
  HPT_EXPECT_EQ(v, pattern(pa, 1));
  HPT_EXPECT(guest::probe_write(va, pattern(pa, 2), f));
  HPT_EXPECT_EQ(mem(pa), pattern(pa, 2));
}

// Expect one faulting access with the exact address, cause and kind.
void expect_fault(hpt::Ctx& hpt_ctx, Access a, uint64_t va, uint64_t cause) {
  Fault f;
  uint64_t v = 0;
  bool ok = false;
  if (a == Access::read) ok = guest::probe_read(va, v, f);
  if (a == Access::write) ok = guest::probe_write(va, 0x0bad, f);
  if (a == Access::exec) ok = guest::probe_exec(va, f);
  HPT_EXPECT(!ok);
  if (ok) return;
  HPT_EXPECT_EQ(f.cause, cause);
  HPT_EXPECT_EQ(f.vector, cause);
  HPT_EXPECT_EQ(f.addr, va);
  HPT_EXPECT(f.access == a);
}

Fault fault_of(Access a, uint64_t va) {
  Fault f;
  uint64_t v = 0;
  if (a == Access::read) guest::probe_read(va, v, f);
  if (a == Access::write) guest::probe_write(va, 0x0bad, f);
  if (a == Access::exec) guest::probe_exec(va, f);
  return f;
}

void copy_ret_insn(uint64_t pa) {
  unsigned len = 0;
  const unsigned char* code = guest::ret_insn(len);
  auto* dst = reinterpret_cast<volatile unsigned char*>(pa);
  for (unsigned i = 0; i < len; ++i) dst[i] = code[i];
}

// ----------------------------------------------------------------------------------------
// boot: the harness works
// ----------------------------------------------------------------------------------------

HPT_ARCH_CASE("riscv64", boot, SatpHoldsTheImageModeAndTheBootRoot) {
  const uint64_t satp = read_satp();
  HPT_EXPECT_EQ(satp & satp_ppn_mask, boot_root() >> page_shift);
  HPT_EXPECT_EQ(guest::current_root(), boot_root());
  HPT_EXPECT_EQ((satp >> 44) & 0xffff, 0u);  // ASID 0: the harness never uses ASIDs
  HPT_EXPECT_EQ(satp >> satp_mode_shift, satp_mode_for(active_levels()));
  if (!mode_active()) {
    // The fallback must still be a real paging mode the harness runs on.
    HPT_EXPECT(active_levels() >= 3);
    HPT_SKIP(lacks_reason());
  }
  HPT_EXPECT_EQ(satp >> satp_mode_shift, satp_mode_for(wanted_levels()));
  HPT_EXPECT(str_eq(guest::mode_name(), satp_mode_name(satp >> satp_mode_shift)));
  HPT_EXPECT(str_eq(guest::arch_name(), "riscv64"));
}

HPT_ARCH_CASE("riscv64", boot, TrapVectorIsTheHarnessEntryInDirectMode) {
  const uint64_t stvec = read_stvec();
  HPT_EXPECT_EQ(stvec & 3, 0u);  // MODE = direct: every trap enters at BASE
  HPT_EXPECT_EQ(stvec, trap_entry());
  HPT_EXPECT_EQ(read_sstatus() & sstatus_sie, 0u);  // polled harness: interrupts stay off
  HPT_EXPECT_EQ(read_sie(), 0u);
}

HPT_ARCH_CASE("riscv64", boot, UnmappedLoadComesBackThroughTheVector) {
  if (active_levels() == 0) HPT_SKIP("translation is off");
  Space s;
  const uint64_t va = s.window + 0x1238;
  HPT_ASSERT_EQ(*slot(boot_root(), index_of(va, s.levels - 1)), 0u);
  Fault f;
  uint64_t v = 0;
  HPT_EXPECT(!guest::probe_read(va, v, f));
  HPT_EXPECT_EQ(f.addr, va);
  HPT_EXPECT_EQ(f.cause, cause_load_page);
  // Execution resumed after the load: a second probe and this code still run.
  mem(s.block) = 77;
  HPT_EXPECT(guest::probe_read(s.block, v, f));
  HPT_EXPECT_EQ(v, 77u);
}

// The boot map (platform.cpp builds it with the library): the device window as one gigapage,
// read/write, IO, never executable; the image's text executable and never writable; everything
// after it (data, stack, the boot tables, free RAM) read/write and never executable. All of it
// global with A and D preset, so the harness never waits on hardware A/D updates.
HPT_ARCH_CASE("riscv64", boot, DevicesImageStackAndFreeRamAreIdentityMapped) {
  if (active_levels() == 0) HPT_SKIP("translation is off");
  const unsigned levels = active_levels();
  constexpr uint64_t preset = pte_g | pte_a | pte_d;
  const uint64_t pbmt_io = uint64_t{2} << pte_pbmt_shift;
  for (uint64_t pa : {uart_base, test_finisher}) {
    const Walk w = walk(boot_root(), levels, pa);
    HPT_EXPECT(w.leaf);
    HPT_EXPECT_EQ(w.pa, pa);
    HPT_EXPECT_EQ(w.level, 2u);
    HPT_EXPECT_EQ(w.pte & pte_rwx, pte_rw);
    HPT_EXPECT_EQ(w.pte & preset, preset);
    HPT_EXPECT_EQ(w.pte & pte_pbmt_mask, has_svpbmt() ? pbmt_io : 0);
  }
  for (uint64_t pa : {image_start(), text_end() - 8}) {
    const Walk w = walk(boot_root(), levels, pa);
    HPT_EXPECT(w.leaf);
    HPT_EXPECT_EQ(w.pa, pa);
    HPT_EXPECT_EQ(w.pte & pte_rwx, pte_r | pte_x);
    HPT_EXPECT_EQ(w.pte & preset, preset);
    HPT_EXPECT_EQ(w.pte & pte_pbmt_mask, 0u);
  }
  const uint64_t free_end = guest::free_ram_base() + guest::free_ram_size();
  for (uint64_t pa : {text_end(), stack_bottom(), stack_top() - 8, image_end() - 8, boot_root(),
                 boot_tables_end() - 8, guest::free_ram_base(), free_end - 8}) {
    const Walk w = walk(boot_root(), levels, pa);
    HPT_EXPECT(w.leaf);
    HPT_EXPECT_EQ(w.pa, pa);
    HPT_EXPECT_EQ(w.pte & pte_rwx, pte_rw);
    HPT_EXPECT_EQ(w.pte & preset, preset);
    HPT_EXPECT_EQ(w.pte & pte_pbmt_mask, 0u);
  }
  // Free RAM starts 2 MiB-aligned, so the largest-leaf rule maps it with megapages or larger.
  for (uint64_t pa : {guest::free_ram_base(), free_end - 8})
    HPT_EXPECT(walk(boot_root(), levels, pa).level >= 1);
  HPT_EXPECT(stack_top() - stack_bottom() >= (uint64_t{64} << 10));
  HPT_EXPECT(guest::free_ram_size() >= (uint64_t{64} << 20));
  HPT_EXPECT_EQ(guest::free_ram_base() & ((uint64_t{1} << level_shift(1)) - 1), 0u);
  // The boot tables sit between the image and the free RAM: the tests own all of the latter.
  HPT_EXPECT(boot_tables_base() >= image_end());
  HPT_EXPECT(boot_root() >= boot_tables_base() && boot_root() < boot_tables_end());
  HPT_EXPECT(guest::free_ram_base() >= boot_tables_end());
  HPT_EXPECT(free_end <= ram_end());
  Fault f;
  uint64_t v = 0;
  for (uint64_t pa : {guest::free_ram_base(), free_end - 8}) {
    HPT_EXPECT(guest::probe_write(pa, pattern(pa, 3), f));
    HPT_EXPECT(guest::probe_read(pa, v, f));
    HPT_EXPECT_EQ(v, pattern(pa, 3));
  }
  // Writing to the text and fetching from data are refused by the hardware, not just the walk.
  const Fault wf = fault_of(Access::write, image_start());
  HPT_EXPECT_EQ(wf.cause, cause_store_page);
  HPT_EXPECT_EQ(wf.addr, image_start());
  HPT_EXPECT(wf.permission);
  const uint64_t data_page = guest::free_ram_base();
  copy_ret_insn(data_page);
  guest::code_written(data_page, page_size);
  const Fault xf = fault_of(Access::exec, data_page);
  HPT_EXPECT_EQ(xf.cause, cause_fetch_page);
  HPT_EXPECT_EQ(xf.addr, data_page);
  HPT_EXPECT(xf.permission);
}

// The table satp holds is the library's PageTable (GuestFormat), and the library's walk of it
// agrees with the harness' raw walk for every page of the image and of the boot tables, and at
// both ends of every other region; each leaf decodes to exactly what the harness asked for.
HPT_ARCH_CASE("riscv64", boot, BootMapIsTheLibrarysTableAndBothWalksAgree) {
  RV_NEED_MODE();  // in a fallback mode the table has another format type
  using F = guest::GuestFormat;
  const BootTable* pt = boot_table();
  HPT_ASSERT(pt != nullptr);
  HPT_ASSERT(pt->has_root());
  HPT_EXPECT_EQ(pt->root(), boot_root());
  HPT_EXPECT_EQ(pt->root(), guest::current_root());
  // Only the pages of the mode's chain of tables are live, all inside the reserved region.
  HPT_EXPECT(pt->env().live() >= 2 && pt->env().live() <= F::levels + 2);
  HPT_EXPECT((pt->env().live() << page_shift) <= boot_tables_end() - boot_tables_base());

  unsigned checked = 0;
  auto agree = [&](uint64_t pa, bool exec, bool device) {
    const Walk w = walk(boot_root(), active_levels(), pa);
    const auto l = hugepte::lookup(*pt, pa);
    HPT_EXPECT(w.leaf);
    HPT_ASSERT(l.ok());
    HPT_EXPECT_EQ(l.value.pa, pa);
    HPT_EXPECT_EQ(l.value.raw, w.pte);
    HPT_EXPECT_EQ(l.value.level, w.level);
    const hugepte::Entry e = F::decode(l.value.raw, l.value.level);
    HPT_EXPECT_EQ(e.kind, hugepte::Kind::leaf);
    HPT_EXPECT(e.prot.read && !e.prot.user);
    HPT_EXPECT_EQ(e.prot.write, !exec);
    HPT_EXPECT_EQ(e.prot.exec, exec);
    HPT_EXPECT(e.global && e.accessed && e.dirty);
    HPT_EXPECT(e.mem ==
               (device && has_svpbmt() ? hugepte::MemType::device : hugepte::MemType::normal));
    ++checked;
  };
  agree(test_finisher, false, true);
  agree(uart_base, false, true);
  for (uint64_t pa = image_start(); pa < text_end(); pa += page_size) agree(pa + 0x18, true, false);
  for (uint64_t pa = text_end(); pa < boot_tables_end(); pa += page_size)
    agree(pa + 0x18, false, false);
  const uint64_t free_end = guest::free_ram_base() + guest::free_ram_size();
  agree(guest::free_ram_base(), false, false);
  agree(free_end - 8, false, false);
  agree(ram_end() - 8, false, false);
  HPT_EXPECT(checked > 4);

  // Largest leaf that fits: the first 64 KiB-aligned block after the text is one Svnapot group
  // (when the CPU has Svnapot), the first 2 MiB-aligned one a megapage.
  const uint64_t block64k = (text_end() + 0xffff) & ~uint64_t{0xffff};
  const uint64_t block2m =
      (text_end() + (uint64_t{1} << level_shift(1)) - 1) & ~((uint64_t{1} << level_shift(1)) - 1);
  if (block64k + 0x10000 <= block2m) {
    const auto l = hugepte::lookup(*pt, block64k);
    HPT_ASSERT(l.ok());
    HPT_EXPECT_EQ(l.value.level, 0u);
    HPT_EXPECT_EQ(l.value.shift, has_svnapot() ? unsigned{napot_64k_shift} : page_shift);
  }
  const auto mega = hugepte::lookup(*pt, block2m);
  HPT_ASSERT(mega.ok());
  HPT_EXPECT_EQ(mega.value.level, 1u);
}

// ----------------------------------------------------------------------------------------
// mmu: what the hardware walker does
// ----------------------------------------------------------------------------------------

HPT_ARCH_CASE("riscv64", mmu, AliasPageSharesDataWithItsPhysicalPage) {
  RV_NEED_MODE();
  Space s;
  const uint64_t page = s.block;
  const uint64_t va = s.window + 3 * page_size;
  HPT_ASSERT(s.map(va, 0, leaf_pte(page, flags_rw)));
  s.use();
  check_alias(hpt_ctx, s, va + 0x10, page + 0x10);
  check_alias(hpt_ctx, s, va + page_size - 8, page + page_size - 8);
  // The identity view of the same page still works next to the alias.
  Fault f;
  uint64_t v = 0;
  HPT_EXPECT(guest::probe_read(page + 0x10, v, f));
  HPT_EXPECT_EQ(v, pattern(page + 0x10, 2));
}

// One leaf at `level` maps a naturally aligned region holding the data block; check the alias
// at an offset near its start and one far into it.
void check_large_alias(hpt::Ctx& hpt_ctx, unsigned level) {
  Space s;
  const unsigned shift = level_shift(level);
  const uint64_t pa1 = s.block + 0x18;
  const uint64_t pa2 = level == 1 ? s.block + (uint64_t{1} << shift) - 0x10
                             : guest::free_ram_base() + guest::free_ram_size() - 0x10;
  const uint64_t base = pa1 & ~((uint64_t{1} << shift) - 1);
  HPT_ASSERT_EQ(pa2 & ~((uint64_t{1} << shift) - 1), base);
  const uint64_t va = s.window;  // aligned for the top level, so for every level
  HPT_ASSERT(s.map(va, level, leaf_pte(base, flags_rw)));
  s.use();
  HPT_EXPECT_EQ(s.walk_va(va).level, level);
  check_alias(hpt_ctx, s, va + (pa1 - base), pa1);
  check_alias(hpt_ctx, s, va + (pa2 - base), pa2);
}

HPT_ARCH_CASE("riscv64", mmu, MegapageAliasTranslatesAtTwoOffsets) {
  RV_NEED_MODE();
  check_large_alias(hpt_ctx, 1);
}

HPT_ARCH_CASE("riscv64", mmu, GigapageAliasTranslatesAtTwoOffsets) {
  RV_NEED_MODE();
  check_large_alias(hpt_ctx, 2);
}

#if HPT_RISCV_LEVELS >= 4
HPT_ARCH_CASE("riscv64", mmu, TerapageAliasTranslatesAtTwoOffsets) {
  RV_NEED_MODE();
  check_large_alias(hpt_ctx, 3);  // 512 GiB leaf over PA 0: RAM sits inside it
}
#endif

#if HPT_RISCV_LEVELS >= 5
HPT_ARCH_CASE("riscv64", mmu, PetapageAliasTranslatesAtTwoOffsets) {
  RV_NEED_MODE();
  check_large_alias(hpt_ctx, 4);  // 256 TiB leaf in the Sv57 root
}
#endif

HPT_ARCH_CASE("riscv64", mmu, NapotGroupOf16PtesMaps64KiB) {
  RV_NEED_MODE();
  if (!has_svnapot()) HPT_SKIP("emulator lacks Svnapot");
  Space s;
  const uint64_t base = s.block;  // 2 MiB aligned, so 64 KiB aligned
  const uint64_t va = s.window + (uint64_t{3} << napot_64k_shift);
  const uint64_t pte = napot_64k_pte(base, flags_rw);
  HPT_EXPECT_EQ(ppn_of(pte) & 0xf, 0b1000u);
  HPT_EXPECT_EQ(pte & pte_n, pte_n);
  for (unsigned i = 0; i < 16; ++i) HPT_ASSERT(s.map(va + i * page_size, 0, pte));
  s.use();
  // First, middle and last 4 KiB of the group: each goes through a different (identical) PTE,
  // and the PA comes from the VA's own bits 15:12, not from PPN[3:0].
  for (uint64_t off : {uint64_t{0x18}, uint64_t{0x7008}, uint64_t{0xfff0}})
    check_alias(hpt_ctx, s, va + off, base + off);
}

HPT_ARCH_CASE("riscv64", mmu, NapotReservedEncodingsFault) {
  RV_NEED_MODE();
  Space s;
  const uint64_t pa = s.block;
  const uint64_t plain = leaf_pte(pa, flags_rw);
  // Control: the one defined encoding, a 64 KiB group (only its first PTE is needed here).
  // Without Svnapot, bit 63 is reserved and even this entry faults.
  const uint64_t va_good = s.window + 0x30000;
  HPT_ASSERT(s.map(va_good, 0, napot_64k_pte(pa, flags_rw)));
  // PPN[3:0] = 0100b would be a 32 KiB group: reserved.
  const uint64_t va32k = s.window + 0x10000;
  HPT_ASSERT(s.map(va32k, 0, plain | pte_n | (uint64_t{0b0100} << pte_ppn_shift)));
  // PPN[3:0] = 0000b with N = 1: reserved.
  const uint64_t va0 = s.window + 0x20000;
  HPT_ASSERT(s.map(va0, 0, plain | pte_n));
  // N on an (aligned) megapage leaf: Svnapot defines it for level 0 only.
  const uint64_t va_mega = s.window + (uint64_t{1} << level_shift(1));
  HPT_ASSERT(s.map(va_mega, 1, plain | pte_n));
  // N on a non-leaf entry: reserved. Set it on the level-1 entry above a good 4 KiB leaf.
  const uint64_t va_table = s.window + (uint64_t{2} << level_shift(1));
  HPT_ASSERT(s.map(va_table, 0, leaf_pte(pa, flags_rw)));
  s.use();
  if (has_svnapot())
    check_alias(hpt_ctx, s, va_good + 0x238, pa + 0x238);
  else
    expect_fault(hpt_ctx, Access::read, va_good + 0x238, cause_load_page);
  check_alias(hpt_ctx, s, va_table + 0x238, pa + 0x238);  // control: fine without N
  uint64_t table = s.root;
  uint64_t entry_pa = 0;
  for (unsigned l = s.levels; l-- > 1;) {
    entry_pa = table + index_of(va_table, l) * sizeof(uint64_t);
    table = pa_of(mem(entry_pa));
  }
  mem(entry_pa) = mem(entry_pa) | pte_n;
  guest::tlb_flush_all();
  for (uint64_t va : {va32k + 0x238, va0 + 0x238, va_mega + 0x238, va_table + 0x238}) {
    expect_fault(hpt_ctx, Access::read, va, cause_load_page);
    HPT_EXPECT(fault_of(Access::read, va).translation);
    expect_fault(hpt_ctx, Access::write, va, cause_store_page);
  }
}

HPT_ARCH_CASE("riscv64", mmu, MisalignedSuperpageFaults) {
  RV_NEED_MODE();
  Space s;
  // At every superpage level, a leaf whose PPN has bit 0 set (4 KiB past the alignment).
  for (unsigned level = 1; level < s.levels; ++level) {
    const uint64_t va = s.window + (uint64_t{level} << level_shift(level));
    const uint64_t pa = (s.block & ~((uint64_t{1} << level_shift(level)) - 1)) + page_size;
    HPT_ASSERT(s.map(va, level, leaf_pte(pa, flags_rw)));
  }
  s.use();
  for (unsigned level = 1; level < s.levels; ++level) {
    const uint64_t va = s.window + (uint64_t{level} << level_shift(level)) + 0x1238;
    HPT_EXPECT_EQ(s.walk_va(va).level, level);
    expect_fault(hpt_ctx, Access::read, va, cause_load_page);
    expect_fault(hpt_ctx, Access::write, va, cause_store_page);
    const Fault f = fault_of(Access::read, va);
    HPT_EXPECT(f.translation);
    HPT_EXPECT(!f.permission);
  }
}

HPT_ARCH_CASE("riscv64", mmu, UnmappedAccessFaultsWithExactAddressAndCause) {
  RV_NEED_MODE();
  Space s;
  // One mapped page, so the next page misses at the leaf level while the window's far end
  // misses at the top level.
  const uint64_t page = s.block;
  HPT_ASSERT(s.map(s.window, 0, leaf_pte(page, flags_rw | pte_x)));
  s.use();
  for (uint64_t va :
       {s.window + page_size + 0x238, s.window + (uint64_t{5} << level_shift(1)) + 0x1238}) {
    expect_fault(hpt_ctx, Access::read, va, cause_load_page);
    expect_fault(hpt_ctx, Access::write, va, cause_store_page);
    expect_fault(hpt_ctx, Access::exec, va, cause_fetch_page);
    for (Access a : {Access::read, Access::write, Access::exec}) {
      const Fault f = fault_of(a, va);
      HPT_EXPECT(f.translation);
      HPT_EXPECT(!f.permission);
    }
  }
  // A non-canonical address (bit va_bits set, the bits above clear) is a page fault too.
  const uint64_t noncanonical = uint64_t{1} << va_bits(s.levels);
  expect_fault(hpt_ctx, Access::read, noncanonical + 0x40, cause_load_page);
  // Execution resumed after every fault: the mapped page still reads and writes.
  check_alias(hpt_ctx, s, s.window + 0x40, page + 0x40);
}

HPT_ARCH_CASE("riscv64", mmu, WriteWithoutReadPteIsReservedAndFaults) {
  RV_NEED_MODE();
  Space s;
  const uint64_t va = s.window;
  HPT_ASSERT(s.map(va, 0, leaf_pte(s.block, pte_w | pte_a | pte_d)));
  s.use();
  expect_fault(hpt_ctx, Access::read, va + 0x100, cause_load_page);
  expect_fault(hpt_ctx, Access::write, va + 0x100, cause_store_page);
  HPT_EXPECT(fault_of(Access::write, va + 0x100).translation);
}

HPT_ARCH_CASE("riscv64", mmu, WriteToReadOnlyPageIsAPermissionFault) {
  RV_NEED_MODE();
  Space s;
  const uint64_t page = s.block;
  const uint64_t va = s.window + 7 * page_size;
  HPT_ASSERT(s.map(va, 0, leaf_pte(page, pte_r | pte_a | pte_d)));
  s.use();
  mem(page + 0x80) = 0x1234;
  Fault f;
  uint64_t v = 0;
  HPT_EXPECT(guest::probe_read(va + 0x80, v, f));
  HPT_EXPECT_EQ(v, 0x1234u);
  expect_fault(hpt_ctx, Access::write, va + 0x80, cause_store_page);
  f = fault_of(Access::write, va + 0x80);
  HPT_EXPECT(f.permission);
  HPT_EXPECT(!f.translation);
  HPT_EXPECT_EQ(mem(page + 0x80), 0x1234u);  // the store did not happen
}

HPT_ARCH_CASE("riscv64", mmu, ExecFromAnExecutablePageReturns) {
  RV_NEED_MODE();
  Space s;
  const uint64_t page = s.block;
  const uint64_t va = s.window + 2 * page_size;
  copy_ret_insn(page + 0x100);
  HPT_ASSERT(s.map(va, 0, leaf_pte(page, pte_r | pte_x | pte_a)));
  s.use();
  Fault f;
  HPT_EXPECT(guest::probe_exec(va + 0x100, f));
}

HPT_ARCH_CASE("riscv64", mmu, ExecFromANonExecutablePageFaults) {
  RV_NEED_MODE();
  Space s;
  const uint64_t page = s.block;
  const uint64_t va_nx = s.window + 2 * page_size;
  const uint64_t va_x = s.window + 3 * page_size;
  copy_ret_insn(page + 0x100);
  HPT_ASSERT(s.map(va_nx, 0, leaf_pte(page, flags_rw)));
  HPT_ASSERT(s.map(va_x, 0, leaf_pte(page, pte_r | pte_x | pte_a)));
  s.use();
  expect_fault(hpt_ctx, Access::exec, va_nx + 0x100, cause_fetch_page);
  const Fault f = fault_of(Access::exec, va_nx + 0x100);
  HPT_EXPECT(f.permission);
  HPT_EXPECT(!f.translation);
  // The same bytes through an executable alias run: only the X bit differed.
  Fault g;
  HPT_EXPECT(guest::probe_exec(va_x + 0x100, g));
}

HPT_ARCH_CASE("riscv64", mmu, ExecuteOnlyPageRunsButReadsNeedMxr) {
  RV_NEED_MODE();
  Space s;
  const uint64_t page = s.block;
  const uint64_t va = s.window + 4 * page_size;
  copy_ret_insn(page);
  HPT_ASSERT(s.map(va, 0, leaf_pte(page, pte_x | pte_a)));
  s.use();
  Fault f;
  HPT_EXPECT(guest::probe_exec(va, f));
  expect_fault(hpt_ctx, Access::read, va + 8, cause_load_page);
  HPT_EXPECT(fault_of(Access::read, va + 8).permission);
  // sstatus.MXR makes execute-only pages readable.
  mem(page + 8) = 0x5a;
  write_sstatus(read_sstatus() | sstatus_mxr);
  uint64_t v = 0;
  const bool ok = guest::probe_read(va + 8, v, f);
  write_sstatus(read_sstatus() & ~sstatus_mxr);
  HPT_EXPECT(ok);
  HPT_EXPECT_EQ(v, 0x5au);
}

HPT_ARCH_CASE("riscv64", mmu, SupervisorAccessToUserPageNeedsSum) {
  RV_NEED_MODE();
  Space s;
  const uint64_t page = s.block;
  const uint64_t va = s.window + 5 * page_size;
  copy_ret_insn(page);
  HPT_ASSERT(s.map(va, 0, leaf_pte(page, flags_rw | pte_x | pte_u)));
  s.use();
  expect_fault(hpt_ctx, Access::read, va + 8, cause_load_page);
  HPT_EXPECT(fault_of(Access::read, va + 8).permission);
  mem(page + 8) = 0x77;
  expect_fault(hpt_ctx, Access::exec, va, cause_fetch_page);
  write_sstatus(read_sstatus() | sstatus_sum);
  // SUM never allows executing U pages. The fetch goes first, on an empty TLB: QEMU 7.2 fills
  // its TLB from a SUM load with the PTE's X permission, so a fetch after the load would
  // (wrongly) hit that entry and run.
  guest::tlb_flush_all();
  Fault fx, f;
  const bool ran = guest::probe_exec(va, fx);
  uint64_t v = 0;
  const bool ok = guest::probe_read(va + 8, v, f);
  write_sstatus(read_sstatus() & ~sstatus_sum);
  HPT_EXPECT(!ran);
  HPT_EXPECT_EQ(fx.cause, cause_fetch_page);
  HPT_EXPECT(fx.permission);
  HPT_EXPECT(ok);
  HPT_EXPECT_EQ(v, 0x77u);
}

HPT_ARCH_CASE("riscv64", mmu, HardwareSetsAccessedOnReadAndDirtyOnWrite) {
  RV_NEED_MODE();
  HPT_EXPECT(guest::hw_sets_accessed());
  HPT_EXPECT(guest::hw_sets_dirty());
  Space s;
  // A 4 KiB leaf and a megapage leaf, both created with A = D = 0.
  const uint64_t va4k = s.window;
  const uint64_t va2m = s.window + (uint64_t{1} << level_shift(1));
  const uint64_t e4k = s.map(va4k, 0, leaf_pte(s.block, pte_r | pte_w));
  const uint64_t e2m = s.map(va2m, 1, leaf_pte(s.block, pte_r | pte_w));
  HPT_ASSERT(e4k && e2m);
  s.use();
  struct Leaf {
    uint64_t va, entry;
  };
  for (const Leaf& l : {Leaf{va4k, e4k}, Leaf{va2m, e2m}}) {
    const uint64_t va = l.va, entry = l.entry;
    HPT_EXPECT_EQ(mem(entry) & (pte_a | pte_d), 0u);
    Fault f;
    uint64_t v = 0;
    HPT_EXPECT(guest::probe_read(va + 0x20, v, f));
    HPT_EXPECT_EQ(mem(entry) & (pte_a | pte_d), pte_a);  // read: A only
    HPT_EXPECT(guest::probe_write(va + 0x20, 1, f));
    HPT_EXPECT_EQ(mem(entry) & (pte_a | pte_d), pte_a | pte_d);
  }
}

HPT_ARCH_CASE("riscv64", mmu, RemappedLiveLeafIsSeenAfterTlbFlushVa) {
  RV_NEED_MODE();
  Space s;  // only its allocator: this case edits the live boot table
  const uint64_t root = boot_root();
  const unsigned top = index_of(s.window, s.levels - 1);
  HPT_ASSERT_EQ(*slot(root, top), 0u);
  struct Restore {
    uint64_t root;
    unsigned top;
    ~Restore() {
      *slot(root, top) = 0;
      guest::tlb_flush_all();
    }
  } restore{root, top};

  const uint64_t pa1 = s.block, pa2 = s.block + page_size;
  const uint64_t va = s.window + 9 * page_size + 0x30;
  mem(pa1 + 0x30) = 0x1111;
  mem(pa2 + 0x30) = 0x2222;
  const uint64_t entry = map(root, s.levels, va, 0, leaf_pte(pa1, flags_rw), s.tables);
  HPT_ASSERT(entry);
  guest::tlb_flush_va(va);  // invalid -> valid may also be cached
  Fault f;
  uint64_t v = 0;
  HPT_EXPECT(guest::probe_read(va, v, f));
  HPT_EXPECT_EQ(v, 0x1111u);
  mem(entry) = leaf_pte(pa2, flags_rw);
  guest::tlb_flush_va(va);
  HPT_EXPECT(guest::probe_read(va, v, f));
  HPT_EXPECT_EQ(v, 0x2222u);
  HPT_EXPECT_EQ(guest::current_root(), root);
}

// Fault hook: the hook sees the fault first, may fix the table and have the access retried.
struct HookState {
  uint64_t entry = 0;  // leaf slot to fill
  uint64_t pte = 0;
  uint64_t page_va = 0;
  unsigned calls = 0;
  Fault last;
};
HookState g_hook;

bool map_on_fault(const Fault& f) {
  ++g_hook.calls;
  g_hook.last = f;
  if ((f.addr & ~(page_size - 1)) != g_hook.page_va) return false;
  mem(g_hook.entry) = g_hook.pte;
  guest::tlb_flush_va(f.addr);
  return true;
}

HPT_ARCH_CASE("riscv64", mmu, FaultHookMapsAMissingPageAndTheAccessIsRetried) {
  RV_NEED_MODE();
  Space s;
  struct Unhook {
    ~Unhook() { guest::set_fault_hook(nullptr); }
  } unhook;
  const uint64_t page = s.block;
  const uint64_t va = s.window + 6 * page_size;
  const uint64_t entry = s.map(va, 0, leaf_pte(page, flags_rw));
  HPT_ASSERT(entry);
  mem(entry) = 0;  // tables exist, the leaf is missing
  mem(page + 0x48) = 0xfeed;
  g_hook = HookState{entry, leaf_pte(page, flags_rw), va, 0, {}};
  s.use();
  guest::set_fault_hook(&map_on_fault);
  Fault f;
  uint64_t v = 0;
  HPT_EXPECT(guest::probe_read(va + 0x48, v, f));
  HPT_EXPECT_EQ(v, 0xfeedu);
  HPT_EXPECT_EQ(g_hook.calls, 1u);
  HPT_EXPECT_EQ(g_hook.last.addr, va + 0x48);
  HPT_EXPECT_EQ(g_hook.last.cause, cause_load_page);
  HPT_EXPECT(g_hook.last.translation);
  HPT_EXPECT(guest::probe_read(va + 0x48, v, f));  // now mapped: no second call
  HPT_EXPECT_EQ(g_hook.calls, 1u);
  // A fault the hook declines reaches the probe.
  expect_fault(hpt_ctx, Access::write, va + page_size, cause_store_page);
  HPT_EXPECT_EQ(g_hook.calls, 2u);
}

}  // namespace
