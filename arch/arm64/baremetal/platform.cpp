// platform.cpp - the arm64 side of tests/system/guest.hpp on QEMU's virt board: PL011 serial,
// semihosting exit, the synchronous exception handler behind the probes, and the boot page
// tables (built here by the library itself: a PageTable of GuestFormat filled through
// HugePteOps, see boot_map.hpp).
#include <cstdint>
#include <new>

#include "boot_map.hpp"
#include "guest.hpp"
#include "harness.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/tlb.hpp"

extern "C" {
extern char __image_start[];  // NOLINT(bugprone-reserved-identifier): linker symbols (link.ld)
extern char __image_end[];    // NOLINT(bugprone-reserved-identifier)
}

namespace hpt::arm64_bm {
namespace {

using guest::Access;
using guest::Fault;

// --- serial: PL011 ------------------------------------------------------------------------------

constexpr uint64_t kUartDr = 0x00;
constexpr uint64_t kUartFr = 0x18;
constexpr uint64_t kUartCr = 0x30;
constexpr std::uint32_t kFrTxff = 1u << 5;  // transmit FIFO full
constexpr std::uint32_t kCrUarten = 1u << 0, kCrTxe = 1u << 8, kCrRxe = 1u << 9;

volatile std::uint32_t& uart_reg(uint64_t off) {
  return *reinterpret_cast<volatile std::uint32_t*>(kUartBase + off);
}

void puts(const char* s) {
  while (*s) guest::putc(*s++);
}

void put_hex(uint64_t v) {
  char buf[19];
  buf[0] = '0';
  buf[1] = 'x';
  for (int i = 0; i < 16; ++i) {
    unsigned d = static_cast<unsigned>(v >> (60 - 4 * i)) & 0xf;
    buf[2 + i] = static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
  }
  buf[18] = 0;
  puts(buf);
}

// --- harness state ------------------------------------------------------------------------------

int g_boot_el = 0;
unsigned g_table_granule = 0;
uint64_t g_boot_root = 0;
uint64_t g_free_base = 0;
uint64_t g_free_size = 0;
guest::FaultHook g_hook = nullptr;

// The boot map's storage. Constructed in place by build_boot_map() and never destroyed: the MMU
// walks the table until the image exits, and a global with a constructor would be initialised
// by run_all() (.init_array) only after boot, over the live root.
alignas(BootEnv) unsigned char g_boot_env_storage[sizeof(BootEnv)];
alignas(BootTable) unsigned char g_boot_table_storage[sizeof(BootTable)];
BootTable* g_boot_table = nullptr;
BootRegion g_boot_regions[4];
unsigned g_boot_region_count = 0;
uint64_t g_boot_tables_base = 0;

// Probe state, written by the exception handler.
volatile bool g_probe_faulted = false;
Fault g_probe_fault;
volatile uint64_t g_exec_target = 0;  // the VA probe_exec is calling, 0 outside it

// A hook that claims to fix a fault but does not would retry forever: give up after this many
// identical faults in a row and treat it as unhandled.
constexpr unsigned kMaxHookRetries = 16;
uint64_t g_retry_elr = 0, g_retry_far = 0;
unsigned g_retries = 0;

int g_depth = 0;  // exception nesting: the handler itself must never fault
bool g_exiting = false;

}  // namespace

extern "C" uint64_t hpt_arm64_probe_load(uint64_t va);
extern "C" void hpt_arm64_probe_store(uint64_t va, uint64_t value);
extern "C" void hpt_arm64_probe_call(uint64_t va);
extern "C" char hpt_arm64_probe_load_insn[];
extern "C" char hpt_arm64_probe_store_insn[];
extern "C" char hpt_arm64_ret_insn[];
extern "C" char hpt_arm64_semihost_hlt[];

unsigned table_granule_shift() { return g_table_granule; }
bool mode_supported() { return g_table_granule == kImageGranuleShift; }
const char* mode_missing_reason() {
  switch (kImageGranuleShift) {
    case 12: return "emulator lacks 4K granule (ID_AA64MMFR0_EL1.TGran4)";
    case 14: return "emulator lacks 16K granule (ID_AA64MMFR0_EL1.TGran16)";
    default: return "emulator lacks 64K granule (ID_AA64MMFR0_EL1.TGran64)";
  }
}
uint64_t boot_root() { return g_boot_root; }
const BootTable* boot_table() { return g_boot_table; }
const BootRegion* boot_regions(unsigned& count) {
  count = g_boot_region_count;
  return g_boot_regions;
}
uint64_t boot_tables_base() { return g_boot_tables_base; }
int boot_el() { return g_boot_el; }

namespace {

// PSCI SYSTEM_OFF: the way out when semihosting is unavailable. QEMU exits 0 then, which
// run-guest.sh does not take as a pass without a "N passed, 0 failed" summary.
[[noreturn]] void power_off() {
  register uint64_t x0 asm("x0") = 0x8400'0008;
  if (g_boot_el == 2)
    asm volatile("smc #0" : "+r"(x0) : : "memory");  // virt uses SMC when it gave us EL2
  else
    asm volatile("hvc #0" : "+r"(x0) : : "memory");
  for (;;) asm volatile("wfe");
}

// --- exceptions ---------------------------------------------------------------------------------

// The register frame start.S saves (FRAME_SIZE there).
struct Frame {
  uint64_t x[31];
  uint64_t elr;
  uint64_t spsr;
  uint64_t sp;  // SP at the time of the exception
};
static_assert(sizeof(Frame) == 34 * 8, "start.S FRAME_SIZE");

bool is_abort(uint64_t ec_) {
  return ec_ == ec::kInsnAbortLowerEl || ec_ == ec::kInsnAbortSameEl ||
         ec_ == ec::kDataAbortLowerEl || ec_ == ec::kDataAbortSameEl;
}

Fault decode(uint64_t esr, uint64_t far) {
  Fault f;
  f.addr = far;
  f.cause = esr;
  f.vector = esr_ec(esr);
  const uint64_t ec_ = esr_ec(esr);
  const uint64_t fsc = esr_fsc(esr);
  f.access = (ec_ == ec::kInsnAbortSameEl || ec_ == ec::kInsnAbortLowerEl) ? Access::exec
             : esr_wnr(esr)                                                ? Access::write
                                                                           : Access::read;
  f.translation = (fsc & 0x3c) == 0x04 || fsc == 0x2b;  // 0b0001LL, or level -1 (LPA2)
  f.access_flag = (fsc & 0x3c) == 0x08;
  f.permission = (fsc & 0x3c) == 0x0c;
  return f;
}

const char* ec_name(uint64_t ec_) {
  switch (ec_) {
    case 0x00: return "unknown reason (undefined instruction?)";
    case 0x07: return "FP/SIMD access trapped (build with -mgeneral-regs-only)";
    case 0x0e: return "illegal execution state";
    case 0x15: return "SVC";
    case 0x16: return "HVC";
    case 0x17: return "SMC";
    case 0x18: return "MSR/MRS trapped";
    case 0x20: return "instruction abort, lower EL";
    case 0x21: return "instruction abort, same EL";
    case 0x22: return "PC alignment fault";
    case 0x24: return "data abort, lower EL";
    case 0x25: return "data abort, same EL";
    case 0x26: return "SP alignment fault";
    case 0x2f: return "SError";
    case 0x3c: return "BRK";
  }
  return "other";
}

[[noreturn]] void die(const Frame* fr, uint64_t index, uint64_t esr, uint64_t far,
                      const char* what) {
  static const char* const kFrom[] = {"current EL with SP0", "current EL with SPx",
                                      "lower EL AArch64", "lower EL AArch32"};
  static const char* const kType[] = {"synchronous", "IRQ", "FIQ", "SError"};
  puts("\n*** arm64 harness: unexpected exception: ");
  puts(what);
  puts("\n    vector ");
  puts(kType[index & 3]);
  puts(" from ");
  puts(kFrom[(index >> 2) & 3]);
  puts("\n    EC 0x");
  guest::putc("0123"[esr_ec(esr) >> 4]);
  guest::putc("0123456789abcdef"[esr_ec(esr) & 0xf]);
  puts(" (");
  puts(ec_name(esr_ec(esr)));
  puts(")  ESR_EL1 ");
  put_hex(esr);
  puts("  FAR_EL1 ");
  put_hex(far);
  puts("\n    ELR_EL1 ");
  put_hex(fr->elr);
  puts("  SPSR_EL1 ");
  put_hex(fr->spsr);
  puts("  SP ");
  put_hex(fr->sp);
  for (int i = 0; i < 31; ++i) {
    puts(i % 4 == 0 ? "\n    " : "  ");
    puts("x");
    guest::putc(static_cast<char>('0' + i / 10));
    guest::putc(static_cast<char>('0' + i % 10));
    puts(" ");
    put_hex(fr->x[i]);
  }
  puts("\n");
  guest::exit(101);
}

uint64_t read_esr() {
  uint64_t v;
  asm volatile("mrs %0, esr_el1" : "=r"(v));
  return v;
}
uint64_t read_far() {
  uint64_t v;
  asm volatile("mrs %0, far_el1" : "=r"(v));
  return v;
}

}  // namespace

// Called by every vector in start.S; returning resumes at frame->elr.
extern "C" void hpt_arm64_exception(Frame* fr, uint64_t index) {
  const uint64_t esr = read_esr();
  const uint64_t far = read_far();
  if (g_depth++ > 0) die(fr, index, esr, far, "exception inside the exception handler");
  if ((index & 3) != 0) die(fr, index, esr, far, "asynchronous exception (all are masked)");

  const uint64_t ec_ = esr_ec(esr);
  if (ec_ == ec::kUnknown && fr->elr == reinterpret_cast<uint64_t>(hpt_arm64_semihost_hlt)) {
    puts("\n*** arm64 harness: semihosting is off (run QEMU with -semihosting); powering off,\n"
         "    and QEMU's status 0 after this is NOT a pass\n");
    power_off();
  }

  if (is_abort(ec_)) {
    const Fault f = decode(esr, far);
    if (g_hook) {
      const bool same = fr->elr == g_retry_elr && far == g_retry_far;
      g_retries = same ? g_retries + 1 : 0;
      g_retry_elr = fr->elr;
      g_retry_far = far;
      if (g_retries < kMaxHookRetries && g_hook(f)) {
        --g_depth;
        return;  // the hook fixed the cause: retry the access
      }
    }
    const bool data = ec_ == ec::kDataAbortSameEl;
    if (data && fr->elr == reinterpret_cast<uint64_t>(hpt_arm64_probe_load_insn)) {
      fr->x[0] = 0;  // the probe's result register: no stale value
      fr->elr += 4;
    } else if (data && fr->elr == reinterpret_cast<uint64_t>(hpt_arm64_probe_store_insn)) {
      fr->elr += 4;
    } else if (ec_ == ec::kInsnAbortSameEl && g_exec_target && fr->elr == g_exec_target) {
      fr->elr = fr->x[30];  // the fetch at va faulted: "return" to the probe's blr
    } else {
      die(fr, index, esr, far, "fault outside any probe");
    }
    g_probe_fault = f;
    g_probe_faulted = true;
    g_retries = 0;
    --g_depth;
    return;
  }
  die(fr, index, esr, far, "synchronous exception");
}

// --- exit ----------------------------------------------------------------------------------------

extern "C" [[noreturn]] void hpt_arm64_exit_now(int code) {
  if (g_exiting) power_off();  // semihosting already failed once (or exit re-entered)
  g_exiting = true;
  // SYS_EXIT with {ADP_Stopped_ApplicationExit, code}: QEMU exits with `code`.
  volatile uint64_t block[2] = {0x20026, static_cast<uint64_t>(code)};
  hpt_arm64_semihost(0x18, reinterpret_cast<uint64_t>(block));
  power_off();
}

namespace {

// --- boot ----------------------------------------------------------------------------------------

[[noreturn]] void boot_fail(const char* what, int code, const char* detail = nullptr,
                           const char* err = nullptr) {
  puts("\n*** arm64 harness: ");
  puts(what);
  if (detail) {
    puts(": ");
    puts(detail);
  }
  if (err) {
    puts(" (");
    puts(err);
    puts(")");
  }
  puts("\n");
  guest::exit(code);
}

using BootOps = hugepte::HugePteOps<BootFormat, BootEnv, hugepte::NullTlb>;

// Maps the region onto itself, each step with the largest leaf size of the format (block, page
// or contiguous group) that is aligned at the current address and still fits in the region.
hugepte::Err map_region(const BootOps& ops, const BootRegion& r) {
  constexpr hugepte::LeafSizes<BootFormat> sizes = hugepte::leaf_sizes<BootFormat>();
  for (uint64_t va = r.start; va < r.end;) {
    unsigned shift = 0;
    for (unsigned i = sizes.count; i-- > 0;) {
      if (hugepte::aligned(va, sizes.shift[i]) && r.end - va >= bit(sizes.shift[i])) {
        shift = sizes.shift[i];
        break;
      }
    }
    if (shift == 0) return hugepte::Err::einval;  // not granule aligned
    hugepte::Entry e;
    e.kind = hugepte::Kind::leaf;
    e.addr = va;
    e.prot = {true, true, r.exec, false};  // EL1 only
    e.writable = true;
    e.mem = r.mem;
    e.global = true;
    e.accessed = true;  // no access-flag faults where the hardware does not manage AF (16K)
    e.dirty = true;     // writable and dirty: AP[2] clear, no DBM update needed either
    const hugepte::Result<hugepte::Entry> huge = BootOps::make_huge(e, shift);
    if (!huge) return huge.err;
    const hugepte::Result<BootOps::Handle> h = ops.alloc(va, shift);
    if (!h) return h.err;
    if (const hugepte::Err err = ops.set(h.value, huge.value); err != hugepte::Err::ok) return err;
    va += bit(shift);
  }
  return hugepte::Err::ok;
}

// The identity map, built by the library: the UART (Device-nGnRnE), RAM below the image (where
// QEMU may put a DTB), the image (code, data and the stack share granules: RWX), and the rest
// of RAM (these tables, then the tests' free RAM), everything but the image execute-never.
// Table pages come from [tables, free). Runs with the MMU off, so nothing can have cached the
// table: NullTlb. (QEMU's MMU-off accesses are Device memory; the library's compare-exchange
// that links a new table is an exclusive access there, which QEMU serves but a real CPU need
// not: on hardware this would run after a temporary map turned the caches on.)
uint64_t build_boot_map(uint64_t tables, uint64_t free) {
  const uint64_t image_lo =
      align_down(reinterpret_cast<uint64_t>(__image_start), kImageGranuleShift);
  const uint64_t image_hi = align_up(reinterpret_cast<uint64_t>(__image_end), kImageGranuleShift);
  using hugepte::MemType;
  const BootRegion regions[] = {
      {kUartBase, kUartBase + bit(kImageGranuleShift), MemType::device, false, "PL011 UART"},
      {kRamBase, image_lo, MemType::normal, false, "RAM below the image"},
      {image_lo, image_hi, MemType::normal, true, "image"},
      {image_hi, kRamBase + kRamSize, MemType::normal, false, "boot tables and free RAM"},
  };
  for (const BootRegion& r : regions)
    if (r.start < r.end) g_boot_regions[g_boot_region_count++] = r;

  auto* env = new (g_boot_env_storage) BootEnv(tables, free);
  g_boot_table = new (g_boot_table_storage) BootTable(*env);
  if (const hugepte::Err err = g_boot_table->init(); err != hugepte::Err::ok)
    boot_fail("cannot allocate the boot root table", 106, nullptr, hugepte::err_name(err));
  hugepte::NullTlb tlb;
  const BootOps ops(*g_boot_table, tlb);
  for (unsigned i = 0; i < g_boot_region_count; ++i) {
    if (const hugepte::Err err = map_region(ops, g_boot_regions[i]); err != hugepte::Err::ok)
      boot_fail("cannot map into the boot page tables", 106, g_boot_regions[i].what,
                hugepte::err_name(err));
  }
  return g_boot_table->root();
}

// A granule other than the image's: GuestFormat cannot describe its tables, so the harness'
// raw-bit builder makes the map it always made (UART page, all RAM RWX). Only the boot and
// fallback checks run then; every case that needs the image's granule skips.
template <unsigned G>
uint64_t build_fallback_map(uint64_t tables, uint64_t free) {
  PageAllocator mem{tables, free};
  Tables<G> t(mem);
  if (!t.ok() || !map_identity(t)) boot_fail("cannot build the fallback boot page tables", 106);
  return t.root();
}

template <unsigned G>
void enable_mmu() {
  // The boot tables take the pages after the image; free RAM starts 2 MiB-aligned after them,
  // so block tests find aligned room.
  const uint64_t tables = align_up(reinterpret_cast<uint64_t>(__image_end), G);
  const uint64_t free = align_up(tables + kBootTablePages * bit(G), 21);
  uint64_t root = 0;
  if constexpr (G == kImageGranuleShift)
    root = build_boot_map(tables, free);
  else
    root = build_fallback_map<G>(tables, free);

  // Everything so far was written with the MMU, hence the data cache, off: drop any stale
  // cached lines over the image, stack and tables before cacheable accesses and walks see them.
  for (uint64_t p = align_down(reinterpret_cast<uint64_t>(__image_start), 6); p < free; p += 64)
    asm volatile("dc ivac, %0" : : "r"(p) : "memory");
  asm volatile("dsb sy" ::: "memory");

  const bool ha = kImageWantsHwAd && hafdbs() >= 1;
  const bool hd = kImageWantsHwAd && hafdbs() >= 2;
  write_mair_el1(mair_value());
  write_tcr_el1(tcr_value<G>(ha, hd));
  write_ttbr0_el1(root);
  isb();
  asm volatile("tlbi vmalle1" ::: "memory");
  asm volatile("dsb nsh" ::: "memory");
  isb();

  uint64_t sctlr_v = read_sctlr_el1();
  sctlr_v |= sctlr::kM | sctlr::kC | sctlr::kI;
  sctlr_v &= ~(sctlr::kA | sctlr::kWxn | sctlr::kEe | sctlr::kE0e);  // WXN: no RWX image
  write_sctlr_el1(sctlr_v);
  isb();

  g_table_granule = G;
  g_boot_root = root;
  g_boot_tables_base = tables;
  g_free_base = free;
  g_free_size = kRamBase + kRamSize - free;
}

}  // namespace

extern "C" [[noreturn]] void hpt_arm64_main(int boot_el) {
  g_boot_el = boot_el;
  uart_reg(kUartCr) = kCrUarten | kCrTxe | kCrRxe;  // QEMU transmits regardless; real PL011s not

  // Without a DTB parser the RAM size is a build constant: make sure -m gave us at least that.
  uint64_t last = 0;
  Fault f;
  if (!guest::probe_read(kRamBase + kRamSize - 8, last, f))
    boot_fail("RAM ends before HPT_ARM64_RAM_SIZE (run QEMU with a larger -m)", 104);

  // The image's granule, or the first one the CPU has, so the harness itself always runs.
  unsigned g = kImageGranuleShift;
  if (!granule_supported(g)) g = granule_supported(12) ? 12 : granule_supported(16) ? 16 : 14;
  switch (g) {
    case 12: enable_mmu<12>(); break;
    case 14: enable_mmu<14>(); break;
    default: enable_mmu<16>(); break;
  }
  guest::run_all();
}

}  // namespace hpt::arm64_bm

// --- tests/system/guest.hpp ----------------------------------------------------------------------

namespace hpt::guest {

using namespace hpt::arm64_bm;

const char* arch_name() { return "arm64"; }
const char* mode_name() { return HUGEPTE_GUEST_MODE; }

void putc(char c) {
  while (uart_reg(kUartFr) & kFrTxff) {
  }
  uart_reg(kUartDr) = static_cast<unsigned char>(c);
}

void exit(int code) { hpt_arm64_exit_now(code); }

uint64_t free_ram_base() { return g_free_base; }
uint64_t free_ram_size() { return g_free_size; }

bool probe_read(uint64_t va, uint64_t& value, Fault& f) {
  g_probe_faulted = false;
  value = hpt_arm64_probe_load(va);
  if (!g_probe_faulted) return true;
  f = g_probe_fault;
  return false;
}

bool probe_write(uint64_t va, uint64_t value, Fault& f) {
  g_probe_faulted = false;
  hpt_arm64_probe_store(va, value);
  if (!g_probe_faulted) return true;
  f = g_probe_fault;
  return false;
}

bool probe_exec(uint64_t va, Fault& f) {
  g_probe_faulted = false;
  g_exec_target = va;
  // Instruction side only: cleaning the data side to PoU is up to whoever wrote the code,
  // through a VA we cannot know here (arm64_bm::sync_icache).
  asm volatile("ic iallu\n\tdsb ish\n\tisb" ::: "memory");
  hpt_arm64_probe_call(va);
  g_exec_target = 0;
  if (!g_probe_faulted) return true;
  f = g_probe_fault;
  return false;
}

const unsigned char* ret_insn(unsigned& len) {
  len = 4;  // RET (X30)
  return reinterpret_cast<const unsigned char*>(hpt_arm64_ret_insn);
}

void set_root(uint64_t root) {
  dsb_ishst();  // table writes complete before the walker may use the new root
  write_ttbr0_el1(root);
  isb();
  asm volatile("tlbi vmalle1" ::: "memory");
  asm volatile("dsb ish" ::: "memory");
  isb();
}

uint64_t current_root() { return read_ttbr0_el1() & mask(1, 47); }  // BADDR, without ASID/CnP

void tlb_flush_va(uint64_t va) {
  dsb_ishst();
  // Operand: VA[55:12] in bits [43:0], ASID 0 (all harness entries are global anyway).
  asm volatile("tlbi vae1is, %0" : : "r"((va >> 12) & mask(0, 43)) : "memory");
  dsb_ish();
  isb();
}

void tlb_flush_all() {
  dsb_ishst();
  asm volatile("tlbi vmalle1is" ::: "memory");
  dsb_ish();
  isb();
}

const char* mode_unavailable() {
  return arm64_bm::mode_supported() ? nullptr : arm64_bm::mode_missing_reason();
}
void code_written(uint64_t va, uint64_t len) { arm64_bm::sync_icache(va, len); }
const char* emulator_deviation(uint64_t&, unsigned) { return nullptr; }
bool hw_sets_accessed() { return read_tcr_el1() & tcr::kHa; }
bool hw_sets_dirty() {
  const uint64_t t = read_tcr_el1();
  return (t & tcr::kHa) && (t & tcr::kHd);  // HD does nothing without HA
}

const char* set_hw_ad(bool accessed, bool dirty) {
  if (dirty && !accessed) return "TCR_EL1.HD does nothing without HA";
  if (accessed && hafdbs() < 1) return "emulator lacks FEAT_HAFDBS (hardware Access flag)";
  if (dirty && hafdbs() < 2) return "emulator lacks FEAT_HAFDBS dirty state (DBM)";
  uint64_t t = read_tcr_el1() & ~(tcr::kHa | tcr::kHd);
  if (accessed) t |= tcr::kHa;
  if (dirty) t |= tcr::kHd;
  write_tcr_el1(t);
  isb();
  // TCR fields may be held in TLB entries: drop every translation made under the old setting.
  asm volatile("tlbi vmalle1" ::: "memory");
  asm volatile("dsb nsh" ::: "memory");
  isb();
  return nullptr;
}
uint64_t high_ram_base() { return 0; }
uint64_t high_ram_size() { return 0; }  // the free RAM already runs to the end of RAM

void set_fault_hook(FaultHook hook) {
  g_hook = hook;
  g_retries = 0;
}

}  // namespace hpt::guest
