// platform.cpp - the x86-64 side of tests/system/guest.hpp: COM1, the exit devices, the IDT and
// its C++ handler, the probes, and the identity map the harness runs on (built by the library).
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "cpu.hpp"
#include "guest.hpp"
#include "guest_env.hpp"
#include "guest_format.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"

#ifndef HPT_X86_LEVELS
#error "HPT_X86_LEVELS (4 or 5) must be defined"
#endif

namespace x86 = hpt::x86;
using hugepte::bit;

// Linker-script and start.S symbols.
extern "C" {
// Page-aligned bounds of the image's parts (link.ld), for the boot map's permissions.
extern char __image_start[];  // NOLINT(bugprone-reserved-identifier): first byte, code first
extern char __text_end[];     // NOLINT(bugprone-reserved-identifier): read-only data from here
extern char __data_start[];   // NOLINT(bugprone-reserved-identifier): writable from here
extern char __image_end[];    // NOLINT(bugprone-reserved-identifier): end of .bss
extern const uint64_t
    __fixup_start[];  // NOLINT(bugprone-reserved-identifier): {insn, resume} pairs
extern const uint64_t __fixup_end[];    // NOLINT(bugprone-reserved-identifier)
extern const uint64_t hpt_x86_vector_stubs[32];
extern uint64_t hpt_x86_start_info;
extern uint64_t hpt_x86_gdt[5];
extern char hpt_x86_stack_guard[];
int hpt_x86_probe_load(uint64_t va, uint64_t* out);
int hpt_x86_probe_store(uint64_t va, uint64_t value);
int hpt_x86_probe_call(uint64_t va);
}

namespace {

// --- COM1 (16550 at I/O port 0x3f8) -------------------------------------------------------------
constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kUartThr = 0, kUartIer = 1, kUartFcr = 2, kUartLcr = 3, kUartMcr = 4,
                   kUartLsr = 5;
constexpr uint8_t kLsrThre = 1 << 5;  // transmit holding register empty

void uart_init() {
  x86::outb(kCom1 + kUartIer, 0x00);  // no interrupts: the harness polls
  x86::outb(kCom1 + kUartLcr, 0x80);  // DLAB, to reach the divisor latch
  x86::outb(kCom1 + 0, 0x01);         // divisor 1: 115200 baud
  x86::outb(kCom1 + 1, 0x00);
  x86::outb(kCom1 + kUartLcr, 0x03);  // 8N1, DLAB off
  x86::outb(kCom1 + kUartFcr, 0xc7);  // FIFOs on and cleared
  x86::outb(kCom1 + kUartMcr, 0x03);  // DTR, RTS
}

void print(const char* s) {
  while (*s) hpt::guest::putc(*s++);
}

void print_hex(uint64_t v) {
  char buf[19] = "0x";
  for (int i = 0; i < 16; ++i) buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
  buf[18] = 0;
  print(buf);
}

// --- exit devices -------------------------------------------------------------------------------
constexpr uint16_t kAcpiPm1aCnt = 0x604;   // PIIX4 PM1a control as SeaBIOS sets it up on -M pc/q35
constexpr uint16_t kAcpiSlpS5 = 0x2000;    // SLP_EN with SLP_TYP = S5: power off, QEMU exits 0
constexpr uint16_t kIsaDebugExit = 0xf4;   // isa-debug-exit: QEMU exits (v << 1) | 1
constexpr int kUnexpectedExceptionStatus = 125;
constexpr unsigned kMaxHookRetries = 64;

// --- descriptor tables --------------------------------------------------------------------------
struct [[gnu::packed]] IdtGate {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t ist;        // bits 2:0: interrupt stack table slot, 0 = none
  uint8_t type_attr;  // P | DPL | 0 | type
  uint16_t offset_mid;
  uint32_t offset_hi;
  uint32_t reserved;
};
static_assert(sizeof(IdtGate) == 16);

struct [[gnu::packed]] Tss64 {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
};
static_assert(sizeof(Tss64) == 104);

struct [[gnu::packed]] DescriptorPtr {
  uint16_t limit;
  uint64_t base;
};

constexpr uint16_t kSelCode64 = 0x08;
constexpr uint16_t kSelTss = 0x18;
constexpr uint8_t kInterruptGate = 0x8e;  // present, DPL 0, 64-bit interrupt gate (clears IF)
constexpr unsigned kVecDF = 8;

alignas(16) IdtGate g_idt[32];
alignas(16) Tss64 g_tss;
// #DF runs on its own stack (IST1), so a blown stack still reaches the handler and is reported
// instead of triple-faulting.
alignas(16) uint8_t g_df_stack[16384];

void install_tss() {
  g_tss.ist[0] = reinterpret_cast<uint64_t>(g_df_stack + sizeof g_df_stack);
  g_tss.iomap_base = sizeof(Tss64);  // no I/O bitmap
  const uint64_t base = reinterpret_cast<uint64_t>(&g_tss);
  const uint64_t limit = sizeof(Tss64) - 1;
  // 16-byte system descriptor: type 9 (available 64-bit TSS), present.
  hpt_x86_gdt[kSelTss / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (uint64_t{0x89} << 40) |
                             (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
  hpt_x86_gdt[kSelTss / 8 + 1] = base >> 32;
  asm volatile("ltr %0" : : "r"(kSelTss));
}

void install_idt() {
  for (unsigned v = 0; v < 32; ++v) {
    const uint64_t off = hpt_x86_vector_stubs[v];
    g_idt[v] = IdtGate{static_cast<uint16_t>(off),
                       kSelCode64,
                       static_cast<uint8_t>(v == kVecDF ? 1 : 0),
                       kInterruptGate,
                       static_cast<uint16_t>(off >> 16),
                       static_cast<uint32_t>(off >> 32),
                       0};
  }
  const DescriptorPtr p{sizeof g_idt - 1, reinterpret_cast<uint64_t>(g_idt)};
  asm volatile("lidt %0" : : "m"(p));
}

// --- trap frame, as start.S lays it out ---------------------------------------------------------
struct Frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rdx, rcx, rbx, rax;
  uint64_t vector, error;
  uint64_t rip, cs, rflags, rsp, ss;  // pushed by the CPU
};

constexpr const char* kVectorNames[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
    "#BR bound range", "#UD invalid opcode", "#NM device not available", "#DF double fault",
    "coprocessor segment overrun", "#TS invalid TSS", "#NP segment not present",
    "#SS stack fault", "#GP general protection", "#PF page fault", "reserved 15",
    "#MF x87 error", "#AC alignment check", "#MC machine check", "#XM SIMD error",
    "#VE virtualization", "#CP control protection", "reserved 22", "reserved 23",
    "reserved 24", "reserved 25", "reserved 26", "reserved 27", "#HV hypervisor injection",
    "#VC VMM communication", "#SX security", "reserved 31"};

// The probe in flight, if any. The handler reads it to know the VA and kind of the access (a
// #GP has no CR2) and writes the fault it took.
struct ProbeState {
  bool active = false;
  bool faulted = false;
  hpt::guest::Access access = hpt::guest::Access::read;
  uint64_t va = 0;
  hpt::guest::Fault fault;
};
ProbeState g_probe;
hpt::guest::FaultHook g_hook = nullptr;
unsigned g_trap_depth = 0;

void probe_begin(hpt::guest::Access a, uint64_t va) {
  g_probe.va = va;
  g_probe.access = a;
  g_probe.faulted = false;
  g_probe.fault = hpt::guest::Fault{};
  asm volatile("" ::: "memory");  // the handler must see the state before the access
  g_probe.active = true;
  asm volatile("" ::: "memory");
}

bool probe_end(bool ok, hpt::guest::Fault& f) {
  asm volatile("" ::: "memory");
  g_probe.active = false;
  if (!ok || g_probe.faulted) {
    f = g_probe.fault;
    return false;
  }
  return true;
}

const uint64_t* find_fixup(uint64_t rip) {
  for (const uint64_t* e = __fixup_start; e < __fixup_end; e += 2)
    if (e[0] == rip) return e;
  return nullptr;
}

hpt::guest::Fault describe(const Frame& f, uint64_t cr2) {
  hpt::guest::Fault out;
  out.vector = f.vector;
  out.cause = f.error;
  if (f.vector == x86::kVecPF) {
    out.addr = cr2;
    out.access = (f.error & x86::kPfId)  ? hpt::guest::Access::exec
                 : (f.error & x86::kPfW) ? hpt::guest::Access::write
                                         : hpt::guest::Access::read;
    // A reserved-bit fault is neither: the entry was malformed. (Intel reports it with P=1,
    // QEMU 7.2 TCG with P=0, so RSVD is tested first.)
    const bool rsvd = f.error & x86::kPfRsvd;
    out.translation = !rsvd && !(f.error & x86::kPfP);
    out.permission = !rsvd && (f.error & x86::kPfP);
  } else {
    // No fault address outside #PF: report the probe's own VA (or the faulting RIP).
    out.addr = g_probe.active ? g_probe.va : f.rip;
    out.access = g_probe.active ? g_probe.access : hpt::guest::Access::read;
  }
  return out;
}

[[noreturn]] void unexpected(const Frame& f, uint64_t cr2) {
  print("\n*** UNEXPECTED EXCEPTION: vector ");
  print_hex(f.vector);
  print(" (");
  print(f.vector < 32 ? kVectorNames[f.vector] : "?");
  print(")\n    error ");
  print_hex(f.error);
  print("  cr2 ");
  print_hex(cr2);
  print("  cr3 ");
  print_hex(x86::read_cr3());
  print("\n    rip ");
  print_hex(f.rip);
  print("  cs ");
  print_hex(f.cs);
  print("  rflags ");
  print_hex(f.rflags);
  print("  rsp ");
  print_hex(f.rsp);
  print("\n");
  const char* names[15] = {"r15", "r14", "r13", "r12", "r11", "r10", "r9 ", "r8 ",
                           "rdi", "rsi", "rbp", "rdx", "rcx", "rbx", "rax"};
  const uint64_t* regs = &f.r15;
  for (int i = 14; i >= 0; --i) {
    print("    ");
    print(names[i]);
    print(" ");
    print_hex(regs[i]);
    if (i % 3 == 0) print("\n");
  }
  print("*** exiting with status ");
  print_hex(kUnexpectedExceptionStatus);
  print("\n");
  hpt::guest::exit(kUnexpectedExceptionStatus);
}

// --- the harness' boot map, built by the library ------------------------------------------------
// The harness runs on an identity map that hugepte itself builds: a PageTable of this image's
// format, filled through HugePteOps (alloc + make_huge + set) with the largest leaf that fits
// each range. Only start.S's temporary map (needed before any C++ can run) is hand-written.
unsigned g_levels = 4;
uint64_t g_harness_root = 0;
uint64_t g_free_base = 0;
uint64_t g_free_end = 0;

// hvm_start_info (Xen public/arch-x86/hvm/start_info.h), the fields the harness reads.
struct [[gnu::packed]] HvmStartInfo {
  uint32_t magic;  // 0x336ec578 ("xEn3" with the high bit of 'x' set)
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;  // version >= 1
  uint32_t memmap_entries;
  uint32_t reserved;
};
struct [[gnu::packed]] HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // 1 = RAM (E820 numbering)
  uint32_t reserved;
};
constexpr uint32_t kHvmStartMagic = 0x336ec578;
constexpr uint32_t kE820Ram = 1;

// End of the RAM range that holds the image, from the PVH memory map; 0 if there is none.
// Read while start.S's map (which covers the low GiB) is still live: the boot map leaves the
// firmware area below the image unmapped.
uint64_t ram_end_from_pvh(uint64_t image_base) {
  if (!hpt_x86_start_info) return 0;
  const auto* si = reinterpret_cast<const HvmStartInfo*>(hpt_x86_start_info);
  if (si->magic != kHvmStartMagic || si->version < 1 || !si->memmap_paddr) return 0;
  const auto* mm = reinterpret_cast<const HvmMemmapEntry*>(si->memmap_paddr);
  for (uint32_t i = 0; i < si->memmap_entries; ++i)
    if (mm[i].type == kE820Ram && mm[i].addr <= image_base && image_base < mm[i].addr + mm[i].size)
      return mm[i].addr + mm[i].size;
  return 0;
}

constexpr uint64_t align_up(uint64_t v, unsigned shift) {
  return (v + bit(shift) - 1) & ~(bit(shift) - 1);
}
inline uint64_t addr_of(const void* p) { return reinterpret_cast<uint64_t>(p); }

// Without a PVH memory map the harness only trusts what the tests were promised.
constexpr uint64_t kFallbackFreeBytes = bit(26);  // 64 MiB
// The identity map stops at 4 GiB: the RAM range holding the image ends below the 32-bit PCI
// hole anyway, and the tests never need more.
constexpr unsigned kIdentityLimitShift = 32;

// Table pages of the boot map, reserved in .bss so that they sit below free_ram_base() and the
// tests keep all of their free RAM. What the map needs: the tables above the PD (3 with LA57),
// one PD per GiB mapped (at most 4), and one PT per 2 MiB frame where a range edge is not
// 2 MiB-aligned (the frames the image spans, and the end of RAM). 16 pages cover an image of
// over 10 MiB; running out stops the boot with a message, never silently.
constexpr unsigned kBootTablePages = 16;
alignas(4096) uint8_t g_boot_table_pages[kBootTablePages * 4096];

// Static storage for an object that is built in place once and never destroyed: the boot map's
// Env and PageTable live as long as the image (their root stays in CR3), and they are made
// before run_all() runs the static constructors, so they cannot be ordinary globals.
template <class T>
class Forever {
 public:
  template <class... Args>
  T& emplace(Args&&... args) {
    return *::new (static_cast<void*>(bytes_)) T(std::forward<Args>(args)...);
  }

 private:
  alignas(T) unsigned char bytes_[sizeof(T)];
};

using BootEnv = hpt::guest::GuestEnv<hpt::guest::GuestFormat::page_shift>;
Forever<BootEnv> g_boot_env;

// One PageTable per format the boot may need (see build_boot_map); only one is ever made.
template <class Fmt>
Forever<hugepte::PageTable<Fmt, BootEnv>> g_boot_table;

// One identity-mapped range of the boot map: [start, end), page-aligned.
struct BootRange {
  const char* what;
  uint64_t start, end;
  bool write, exec;
  // x86's UART and exit devices are I/O ports, so the map has no MMIO: every range is RAM.
  hugepte::MemType mem = hugepte::MemType::normal;
};

constexpr int kBootMapFailureStatus = 126;

[[noreturn]] void boot_map_failed(const char* what, hugepte::Err err, uint64_t start,
                                  uint64_t end) {
  print("\n*** boot map: ");
  print(hugepte::err_name(err));
  print(" while mapping ");
  print(what);
  print(" [");
  print_hex(start);
  print(", ");
  print_hex(end);
  print(")\n");
  hpt::guest::exit(kBootMapFailureStatus);
}

// The leaf for one range: supervisor-only and global (the same in every address space the tests
// build from this root), accessed and, where writable, dirty, so the walker never has to write
// A/D back into the harness' own tables.
hugepte::Entry boot_leaf(const BootRange& r, uint64_t pa, unsigned page_shift) {
  hugepte::Entry e;
  e.kind = hugepte::Kind::leaf;
  e.addr = pa;
  e.shift = static_cast<uint8_t>(page_shift);
  e.prot = hugepte::Prot{true, r.write, r.exec, false};
  e.writable = r.write;
  e.mem = r.mem;
  e.global = true;
  e.accessed = true;
  e.dirty = r.write;  // a read-only page is never dirty (x86 would record it in SAVED_DIRTY)
  return e;
}

// Identity-maps one range with the largest leaf that is aligned and fits at each step.
template <class Fmt>
void map_range(const hugepte::HugePteOps<Fmt, BootEnv, hugepte::NullTlb>& ops, const BootRange& r) {
  using Ops = hugepte::HugePteOps<Fmt, BootEnv, hugepte::NullTlb>;
  constexpr hugepte::LeafSizes<Fmt> sizes = hugepte::leaf_sizes<Fmt>();
  if (!hugepte::aligned(r.start | r.end, Fmt::page_shift) || r.end < r.start)
    boot_map_failed(r.what, hugepte::Err::einval, r.start, r.end);
  for (uint64_t pa = r.start; pa < r.end;) {
    unsigned shift = Fmt::page_shift;
    for (unsigned i = sizes.count; i-- > 0;) {
      if (hugepte::aligned(pa, sizes.shift[i]) && r.end - pa >= bit(sizes.shift[i])) {
        shift = sizes.shift[i];
        break;
      }
    }
    auto h = ops.alloc(pa, shift);
    if (!h) boot_map_failed(r.what, h.err, pa, pa + bit(shift));
    // Ranges must not overlap: set() would silently replace the earlier leaf.
    if (ops.get(h.value).kind != hugepte::Kind::none)
      boot_map_failed(r.what, hugepte::Err::eexist, pa, pa + bit(shift));
    auto e = Ops::make_huge(boot_leaf(r, pa, Fmt::page_shift), shift);
    if (!e) boot_map_failed(r.what, e.err, pa, pa + bit(shift));
    if (hugepte::Err err = ops.set(h.value, e.value); err != hugepte::Err::ok)
      boot_map_failed(r.what, err, pa, pa + bit(shift));
    pa += bit(shift);
  }
}

// Builds the map in a PageTable of format Fmt and returns its root (not yet in CR3).
template <class Fmt>
uint64_t build_with(const BootRange* ranges, unsigned n) {
  static_assert(Fmt::page_shift == x86::kPageShift);
  BootEnv& env = g_boot_env.emplace(addr_of(g_boot_table_pages),
                                    addr_of(g_boot_table_pages) + sizeof g_boot_table_pages);
  auto& pt = g_boot_table<Fmt>.emplace(env);
  if (hugepte::Err err = pt.init(); err != hugepte::Err::ok) boot_map_failed("the root", err, 0, 0);
  hugepte::NullTlb tlb;  // no walker sees these tables before set_root(), which flushes all
  const hugepte::HugePteOps<Fmt, BootEnv, hugepte::NullTlb> ops(pt, tlb);
  for (unsigned i = 0; i < n; ++i) map_range<Fmt>(ops, ranges[i]);
  return pt.root();
}

// The map must be in the format the MMU really runs. That is the image's GuestFormat unless the
// CPU lacks a feature it assumes: without LA57 the 5-level image falls back to 4 levels, and
// without pdpe1gb a 1 GiB leaf is a reserved-bit fault. Those cases use the library's format for
// what the CPU does have (the 4-level one being exactly the 4-level image's GuestFormat), so even
// the fallback map is built by the library and never by hand.
uint64_t build_boot_map(const BootRange* ranges, unsigned n) {
  using hpt::guest::GuestFormat;
  static_assert(GuestFormat::levels == HPT_X86_LEVELS && GuestFormat::gbpages);
  const bool gb = x86::cpu_has_1g_pages();
  if (g_levels == GuestFormat::levels)
    return gb ? build_with<GuestFormat>(ranges, n)
              : build_with<hugepte::X86Format<HPT_X86_LEVELS, false>>(ranges, n);
  return gb ? build_with<hugepte::X86Format<4>>(ranges, n)
            : build_with<hugepte::X86Format<4, false>>(ranges, n);
}

void build_identity_map() {
  // The boot trampoline decided the depth: LA57 is only on if the image asked and the CPU has it.
  g_levels = (x86::read_cr4() & x86::kCr4LA57) ? 5 : 4;

  const uint64_t image_end = addr_of(__image_end);
  const uint64_t ram_end = ram_end_from_pvh(addr_of(__image_start));
  // Free RAM starts at the next 2 MiB boundary so tests can carve 2 MiB-aligned blocks from it.
  g_free_base = align_up(image_end, x86::kPmdShift);
  g_free_end = ram_end ? ram_end : g_free_base + kFallbackFreeBytes;
  if (g_free_end > bit(kIdentityLimitShift)) g_free_end = bit(kIdentityLimitShift);
  g_free_end &= ~(bit(x86::kPageShift) - 1);

  // Without execute-disable, bit 63 is reserved: every leaf has to stay executable.
  const bool nx = x86::cpu_has_nx();
  const uint64_t guard = addr_of(hpt_x86_stack_guard);
  // The image is W^X: code read-only and executable, read-only data, then writable data with
  // the stack guard page left out so that running off the stack faults at once. Nothing below
  // the image is mapped (firmware area; a null pointer faults), nor the padding up to the free
  // RAM. The boot tables themselves are in .bss, so the tests can reach them.
  const BootRange ranges[] = {
      {"the image's code", addr_of(__image_start), addr_of(__text_end), false, true},
      {"the image's read-only data", addr_of(__text_end), addr_of(__data_start), false, !nx},
      {"the image's data below the stack guard", addr_of(__data_start), guard, true, !nx},
      {"the stack and the rest of .bss", guard + bit(x86::kPageShift), image_end, true, !nx},
      {"the free RAM", g_free_base, g_free_end, true, !nx},
  };
  g_harness_root = build_boot_map(ranges, sizeof ranges / sizeof ranges[0]);
  hpt::guest::set_root(g_harness_root);
}

void enable_global_pages() {
  // With CR4.PGE on, tlb_flush_all() has to toggle it, which is the flush that also drops
  // global translations; mov to CR3 alone would not.
  if (x86::cpuid(1).edx & bit(13)) x86::write_cr4(x86::read_cr4() | x86::kCr4PGE);
}

}  // namespace

namespace hpt::x86 {
unsigned paging_levels() { return g_levels; }
uint64_t harness_root() { return g_harness_root; }
bool probe_call_helper(int (*fn)(), hpt::guest::Fault& f) {
  probe_begin(hpt::guest::Access::exec, reinterpret_cast<uint64_t>(fn));
  return probe_end(fn() != 0, f);
}
}  // namespace hpt::x86

// --- C++ entry and the one exception handler ----------------------------------------------------
extern "C" [[noreturn]] void hpt_x86_main() {
  uart_init();
  install_tss();
  install_idt();
  enable_global_pages();
  build_identity_map();
  hpt::guest::run_all();
}

extern "C" void hpt_x86_trap(Frame* f) {
  const uint64_t cr2 = x86::read_cr2();  // meaningful for #PF; printed for #DF too (a blown stack)
  if (++g_trap_depth > 1) {
    // A fault inside the handler (or a hook): report once with the bare minimum and leave.
    if (g_trap_depth == 2) {
      print("\n*** NESTED EXCEPTION vector ");
      print_hex(f->vector);
      print(" rip ");
      print_hex(f->rip);
      print(" cr2 ");
      print_hex(cr2);
      print("\n");
    }
    x86::outl(kIsaDebugExit, kUnexpectedExceptionStatus);
    for (;;) asm volatile("cli; hlt");
  }
  // Aborts are never a probe's business.
  const bool abort = f->vector == kVecDF || f->vector == 2 || f->vector == 18;
  const hpt::guest::Fault fault = describe(*f, cr2);

  if (!abort && g_hook && g_hook(fault)) {
    // The hook fixed the cause: iretq re-executes the access. A hook that claims success
    // without fixing anything would loop forever, so the same fault in a row is capped.
    static uint64_t last_rip = 0, last_addr = 0;
    static unsigned repeats = 0;
    repeats = (f->rip == last_rip && fault.addr == last_addr) ? repeats + 1 : 0;
    last_rip = f->rip;
    last_addr = fault.addr;
    if (repeats < kMaxHookRetries) {
      --g_trap_depth;
      return;
    }
    print("\n*** the fault hook keeps retrying an access that faults again\n");
    unexpected(*f, cr2);
  }

  if (!abort && g_probe.active) {
    if (const uint64_t* fix = find_fixup(f->rip)) {
      g_probe.faulted = true;
      g_probe.fault = fault;
      f->rip = fix[1];
      --g_trap_depth;
      return;
    }
    // Instruction fetch of the probed function itself: resume at its caller, as if it had
    // returned, and tell hpt_x86_probe_call through %rbx.
    if (g_probe.access == hpt::guest::Access::exec && f->rip == g_probe.va) {
      g_probe.faulted = true;
      g_probe.fault = fault;
      f->rip = *reinterpret_cast<const uint64_t*>(f->rsp);
      f->rsp += 8;
      f->rbx = 0;
      --g_trap_depth;
      return;
    }
  }
  unexpected(*f, cr2);
}

// --- guest.hpp ----------------------------------------------------------------------------------
namespace hpt::guest {

const char* arch_name() { return "x86_64"; }
const char* mode_name() { return HUGEPTE_GUEST_MODE; }

void putc(char c) {
  while (!(x86::inb(kCom1 + kUartLsr) & kLsrThre)) {
  }
  x86::outb(kCom1 + kUartThr, static_cast<uint8_t>(c));
}

[[noreturn]] void exit(int code) {
  if (code == 0) {
    x86::outw(kAcpiPm1aCnt, kAcpiSlpS5);
    // Power-off is asynchronous: wait for QEMU to act rather than fall through to the debug
    // exit (which would race and report status 1). If it never comes, fail loudly.
    for (unsigned long i = 0; i < 200000000UL; ++i) asm volatile("pause");
    print("*** ACPI power-off did not stop QEMU\n");
    code = 1;
  }
  if (code < 0 || code > 127) code = 127;  // the status is (code << 1) | 1 in 8 bits
  x86::outl(kIsaDebugExit, static_cast<uint32_t>(code));
  print("*** isa-debug-exit is missing; halting\n");
  for (;;) asm volatile("cli; hlt");
}

uint64_t free_ram_base() { return g_free_base; }
uint64_t free_ram_size() { return g_free_end - g_free_base; }

bool probe_read(uint64_t va, uint64_t& value, Fault& f) {
  probe_begin(Access::read, va);
  uint64_t v = 0;
  const bool ok = hpt_x86_probe_load(va, &v) != 0;
  if (ok) value = v;
  return probe_end(ok, f);
}

bool probe_write(uint64_t va, uint64_t value, Fault& f) {
  probe_begin(Access::write, va);
  return probe_end(hpt_x86_probe_store(va, value) != 0, f);
}

bool probe_exec(uint64_t va, Fault& f) {
  probe_begin(Access::exec, va);
  return probe_end(hpt_x86_probe_call(va) != 0, f);
}

const unsigned char* ret_insn(unsigned& len) {
  static constexpr unsigned char kRet[] = {0xc3};  // ret (near)
  len = sizeof kRet;
  return kRet;
}

void set_root(uint64_t root) {
  x86::write_cr3(root);
  tlb_flush_all();  // mov to CR3 keeps global translations; drop those too
}

uint64_t current_root() { return x86::read_cr3() & x86::kAddr; }

void tlb_flush_va(uint64_t va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }

void tlb_flush_all() {
  const uint64_t cr4 = x86::read_cr4();
  if (cr4 & x86::kCr4PGE) {
    // Toggling PGE invalidates every translation, global ones included (SDM 4.10.4.1).
    x86::write_cr4(cr4 & ~x86::kCr4PGE);
    x86::write_cr4(cr4);
  } else {
    x86::write_cr3(x86::read_cr3());
  }
}

const char* mode_unavailable() {
  // The 5level image boots with 4 levels when the CPU lacks LA57.
  return HPT_X86_LEVELS == 5 && x86::paging_levels() != 5 ? "emulator lacks LA57 (5-level paging)"
                                                          : nullptr;
}
void code_written(uint64_t, uint64_t) {}
const char* emulator_deviation(uint64_t&, unsigned) {
  return nullptr;
}  // instruction fetch is coherent with stores on x86
bool hw_sets_accessed() { return true; }  // x86 walkers always set A (and D on writes)
bool hw_sets_dirty() { return true; }
const char* set_hw_ad(bool accessed, bool dirty) {
  return accessed && dirty ? nullptr : "x86 walkers always set A and D (no switch to turn off)";
}
uint64_t high_ram_base() { return 0; }
uint64_t high_ram_size() { return 0; }  // the free RAM already runs to the end of low RAM

void set_fault_hook(FaultHook hook) { g_hook = hook; }

}  // namespace hpt::guest
