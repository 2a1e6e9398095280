// platform.cpp - the riscv64 side of tests/system/guest.hpp: serial, exit, boot page tables,
// trap handling and probes, for an S-mode image started by OpenSBI on QEMU's virt machine.
//
// Boot: start.S -> hpt_rv_main(hartid, fdt): find RAM in the device tree, build the identity
// map for this image's mode (HPT_RISCV_LEVELS) with the library's own PageTable and huge-PTE
// operations, turn translation on, then run_all(). Nothing here is in assembly: riscv enters
// S-mode with translation off, so no temporary map is needed before C++ runs.
#include <cstdint>
#include <new>
#include <type_traits>

#include "boot_map.hpp"
#include "guest.hpp"
#include "guest_env.hpp"
#include "guest_format.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "rv.hpp"

#ifndef HUGEPTE_GUEST_MODE
#error "HUGEPTE_GUEST_MODE comes from hugepte_add_guest()"
#endif


extern "C" {
// Linker-script and start.S symbols: only their addresses matter.
extern char __image_start[], __text_end[], __image_end[];  // NOLINT(bugprone-reserved-identifier)
extern char hpt_rv_stack_bottom[], hpt_rv_stack_top[];
extern char hpt_rv_trap_entry[];
extern char hpt_rv_probe_ld_insn[], hpt_rv_probe_sd_insn[], hpt_rv_probe_call_ret[];
uint64_t hpt_rv_probe_ld(uint64_t va);
void hpt_rv_probe_sd(uint64_t va, uint64_t value);
void hpt_rv_probe_call(uint64_t va);
}

namespace {

using namespace hpt::rv;
using hpt::guest::Access;
using hpt::guest::Fault;
using hpt::guest::GuestFormat;

constexpr unsigned megapage_shift = level_shift(1);  // 2 MiB

constexpr uint64_t align_up(uint64_t v, unsigned shift) {
  return (v + (uint64_t{1} << shift) - 1) & ~((uint64_t{1} << shift) - 1);
}
constexpr uint64_t align_down(uint64_t v, unsigned shift) {
  return v & ~((uint64_t{1} << shift) - 1);
}

uint64_t addr(const void* p) { return reinterpret_cast<uint64_t>(p); }

// --- 16550 UART ----------------------------------------------------------------------------
constexpr uint64_t uart_thr = 0, uart_ier = 1, uart_fcr = 2, uart_lcr = 3, uart_lsr = 5;
constexpr uint8_t lsr_thr_empty = 1u << 5;

volatile uint8_t& uart_reg(uint64_t off) {
  return *reinterpret_cast<volatile uint8_t*>(uart_base + off);
}

void uart_init() {
  uart_reg(uart_ier) = 0;     // polled: no interrupts
  uart_reg(uart_lcr) = 0x03;  // 8 data bits, no parity, 1 stop bit
  uart_reg(uart_fcr) = 0x07;  // FIFOs on and cleared
}

void print(const char* s) {
  while (*s) hpt::guest::putc(*s++);
}

void put_hex(uint64_t v) {
  print("0x");
  for (int i = 60; i >= 0; i -= 4) hpt::guest::putc("0123456789abcdef"[(v >> i) & 0xf]);
}

// --- device tree: just enough to find RAM and the ISA string --------------------------------
uint32_t be32(uint64_t p) {
  const auto* b = reinterpret_cast<const volatile uint8_t*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

uint64_t read_cells(uint64_t p, uint32_t cells) {
  uint64_t v = 0;
  for (uint32_t i = 0; i < cells; ++i) v = (v << 32) | be32(p + 4 * i);
  return v;
}

// "memory" matches node names "memory" and "memory@80000000".
bool node_is(const char* name, const char* want) {
  while (*want && *name == *want) ++name, ++want;
  return !*want && (*name == 0 || *name == '@');
}

bool str_eq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

// Is `ext` one of the '_'-separated multi-letter extensions of a riscv,isa string
// ("rv64imafdch_zicsr_..._svnapot_svpbmt")?
bool isa_has(const char* isa, const char* ext) {
  for (const char* p = isa; *p; ++p) {
    if (*p != '_') continue;
    const char* a = p + 1;
    const char* b = ext;
    while (*b && *a == *b) ++a, ++b;
    if (!*b && (*a == 0 || *a == '_')) return true;
  }
  return false;
}

struct FdtInfo {
  uint64_t ram_base = 0, ram_size = 0;
  bool isa_found = false;
  bool svnapot = false;
  bool svpbmt = false;
};

constexpr uint32_t fdt_magic = 0xd00dfeed;
constexpr uint32_t fdt_begin_node = 1, fdt_end_node = 2, fdt_prop = 3, fdt_nop = 4, fdt_end = 9;

// One pass over the structure block: the first /memory node's reg, and the first
// /cpus/cpu's riscv,isa (S-mode cannot read misa; the device tree is the ID register here).
bool fdt_scan(uint64_t fdt, FdtInfo& out) {
  if (!fdt || (fdt & 3) || be32(fdt) != fdt_magic) return false;
  const uint64_t total = be32(fdt + 4);
  const uint64_t structs = fdt + be32(fdt + 8);
  const uint64_t strings = fdt + be32(fdt + 12);
  uint32_t address_cells = 2, size_cells = 1;  // the Devicetree spec's defaults for the root
  constexpr int max_depth = 8;
  const char* names[max_depth] = {};
  int depth = 0;
  for (uint64_t p = structs; p < fdt + total;) {
    const uint32_t token = be32(p);
    p += 4;
    if (token == fdt_begin_node) {
      const char* name = reinterpret_cast<const char*>(p);
      uint64_t len = 0;
      while (name[len]) ++len;
      p = align_up(p + len + 1, 2);
      if (depth < max_depth) names[depth] = name;
      ++depth;
    } else if (token == fdt_end_node) {
      if (--depth < 0) return false;
    } else if (token == fdt_prop) {
      const uint32_t len = be32(p);
      const char* name = reinterpret_cast<const char*>(strings + be32(p + 4));
      const uint64_t data = p + 8;
      p = align_up(data + len, 2);
      if (depth == 1 && str_eq(name, "#address-cells")) address_cells = be32(data);
      if (depth == 1 && str_eq(name, "#size-cells")) size_cells = be32(data);
      if (depth == 2 && !out.ram_size && node_is(names[1], "memory") && str_eq(name, "reg") &&
          len >= 4 * (address_cells + size_cells)) {
        out.ram_base = read_cells(data, address_cells);
        out.ram_size = read_cells(data + 4 * address_cells, size_cells);
      }
      if (depth == 3 && !out.isa_found && node_is(names[1], "cpus") && node_is(names[2], "cpu") &&
          str_eq(name, "riscv,isa")) {
        const char* isa = reinterpret_cast<const char*>(data);
        out.isa_found = true;
        out.svnapot = isa_has(isa, "svnapot");
        out.svpbmt = isa_has(isa, "svpbmt");
      }
    } else if (token == fdt_nop) {
    } else if (token == fdt_end) {
      break;
    } else {
      return false;  // corrupt
    }
  }
  return out.ram_size != 0;
}

// --- harness state -------------------------------------------------------------------------
struct State {
  unsigned levels = 0;  // active paging mode (0 = bare)
  uint64_t root = 0;         // boot table
  uint64_t ram_base = 0, ram_end = 0;
  bool svnapot = false, svpbmt = false;
  uint64_t tables_base = 0, tables_end = 0;  // the boot map's table pages
  uint64_t free_base = 0, free_end = 0;
  uint64_t high_base = 0, high_end = 0;  // RAM above the device tree (guest.hpp high_ram_*)
  hpt::guest::FaultHook hook = nullptr;
  bool in_hook = false;
  bool in_fatal = false;
};
State g;

enum class ProbeKind : uint8_t { none, read, write, exec };
struct Probe {
  volatile ProbeKind kind = ProbeKind::none;
  volatile bool faulted = false;
  uint64_t exec_target = 0;
  Fault fault;
};
Probe g_probe;

inline void compiler_barrier() { asm volatile("" ::: "memory"); }

[[noreturn]] void die(const char* what, hugepte::Err err = hugepte::Err::ok) {
  write_satp(0);  // bare: the UART and the finisher are reachable whatever table was live
  sfence_vma_all();
  print("\n*** riscv64 harness: ");
  print(what);
  if (err != hugepte::Err::ok) {
    print(": ");
    print(hugepte::err_name(err));
  }
  print("\n");
  hpt::guest::exit(101);
}

// --- boot page tables ----------------------------------------------------------------------
// The identity map the harness runs on, built by the library itself (PageTable + HugePteOps,
// NullTlb while translation is off):
//   [0, 1 GiB)                   the virt machine's devices (test finisher, UART, ...): RW, IO
//   [image start, text end)      the image's code: RX
//   [text end, end of RAM)       rodata, data, stack, these tables, free RAM, the FDT: RW
// OpenSBI's 2 MiB below the image are left out: its PMP region would only raise access faults.
// Each piece gets the largest leaf that fits and is aligned (a 64 KiB Svnapot group where the
// device tree offers Svnapot). A and D are preset, so the harness' own accesses never depend on
// hardware A/D updates; G, because the harness uses no ASIDs.
//
// The image's own mode is built with GuestFormat. When satp refuses it, the harness falls back
// to the next smaller mode, built the same way with that mode's format (the same extensions,
// fewer levels): a different type, so those tables are not a BootTable (boot_table() is null).
constexpr unsigned kDeviceWindowShift = 30;  // virt's MMIO lives below 1 GiB
constexpr uint64_t kBootTablePages = 64;  // -m 512M needs levels + 1 pages; room for much more RAM

template <unsigned Levels>
using ModeFormat = hugepte::RiscvFormat<Levels, GuestFormat::svnapot, GuestFormat::svpbmt,
                                        GuestFormat::svrsw60t59b>;
static_assert(std::is_same_v<ModeFormat<HPT_RISCV_LEVELS>, GuestFormat>,
              "the image's own mode must be built with exactly the tests' format");

// Storage for an object built once at boot and never destroyed: the boot map lives as long as
// the image, and nothing may run its destructor (which would free the live tables). Only for
// objects of static storage duration, whose bytes (and made_) start zeroed with no constructor.
template <class T>
class Forever {
 public:
  template <class... Args>
  T& make(Args&&... args) {
    return *::new (static_cast<void*>(bytes_)) T(static_cast<Args&&>(args)...);
  }
  T* get() { return made_ ? std::launder(reinterpret_cast<T*>(bytes_)) : nullptr; }
  void set_made() { made_ = true; }

 private:
  alignas(T) unsigned char bytes_[sizeof(T)];
  bool made_;
};

Forever<BootEnv> g_boot_env;
template <class F>
Forever<hugepte::PageTable<F, BootEnv>> g_boot_table;

struct BootRegion {
  uint64_t base, end;
  hugepte::Prot prot;
  hugepte::MemType mem;
  const char* what;
};

// Maps [r.base, r.end) to itself, largest leaf first.
template <class F>
hugepte::Err map_identity(const hugepte::PageTable<F, BootEnv>& pt, const BootRegion& r) {
  using Ops = hugepte::HugePteOps<F, BootEnv, hugepte::NullTlb>;
  constexpr auto sizes = hugepte::leaf_sizes<F>();
  hugepte::NullTlb tlb;  // no walker uses these tables yet; satp is written after a fence
  const Ops ops{pt, tlb};
  hugepte::Entry leaf;
  leaf.kind = hugepte::Kind::leaf;
  leaf.prot = r.prot;
  leaf.writable = r.prot.write;
  // IO needs Svpbmt; without it the PMA of the region decides, which on virt is I/O anyway.
  leaf.mem = g.svpbmt ? r.mem : hugepte::MemType::normal;
  leaf.global = true;
  leaf.accessed = true;
  leaf.dirty = true;
  for (uint64_t pa = r.base; pa < r.end;) {
    unsigned shift = 0;
    for (unsigned i = sizes.count; i-- > 0;) {
      if (sizes.cont[i] && !g.svnapot) continue;  // N=1 would fault without Svnapot
      if (hugepte::aligned(pa, sizes.shift[i]) && r.end - pa >= hugepte::bit(sizes.shift[i])) {
        shift = sizes.shift[i];
        break;
      }
    }
    if (shift == 0) return hugepte::Err::einval;  // not page aligned
    const auto h = ops.alloc(pa, shift);
    if (!h) return h.err;
    leaf.addr = pa;
    const auto huge = Ops::make_huge(leaf, shift);
    if (!huge) return huge.err;
    if (const hugepte::Err err = ops.set(h.value, huge.value); err != hugepte::Err::ok) return err;
    pa += hugepte::bit(shift);
  }
  return hugepte::Err::ok;
}

uint64_t satp_value(unsigned levels, uint64_t root) {
  return (satp_mode_for(levels) << satp_mode_shift) | ((root >> page_shift) & satp_ppn_mask);
}

// Builds the identity map in mode `Levels` and turns translation on, or (satp refused the
// mode) gives its pages back and tries the next smaller mode. A satp write with an unsupported
// MODE has no effect at all (the register is WARL and keeps 0), so translation is still off.
template <unsigned Levels>
bool enable_paging(BootEnv& env) {
  using F = ModeFormat<Levels>;
  auto& pt = g_boot_table<F>.make(env);
  if (const hugepte::Err err = pt.init(); err != hugepte::Err::ok) die("boot map: root table", err);
  const uint64_t ram_top = align_down(g.ram_end, page_shift);
  const BootRegion regions[] = {
      {0, uint64_t{1} << kDeviceWindowShift, hugepte::kProtRW, hugepte::MemType::device, "devices"},
      {addr(__image_start), addr(__text_end), hugepte::kProtRX, hugepte::MemType::normal,
       "image text"},
      {addr(__text_end), ram_top, hugepte::kProtRW, hugepte::MemType::normal, "RAM"},
  };
  for (const BootRegion& r : regions)
    if (const hugepte::Err err = map_identity(pt, r); err != hugepte::Err::ok) die(r.what, err);
  const uint64_t satp = satp_value(Levels, pt.root());
  sfence_vma_all();  // order the table stores before the first implicit walk
  write_satp(satp);
  if (read_satp() == satp) {
    sfence_vma_all();
    g_boot_table<F>.set_made();
    g.levels = Levels;
    g.root = pt.root();
    return true;
  }
  pt.destroy();  // every page back to the Env's free list, for the smaller mode
  if constexpr (Levels > 3) return enable_paging<Levels - 1>(env);
  return false;
}

void setup_paging(uint64_t fdt) {
  // Table pages: from the end of the image up to a 2 MiB boundary at least kBootTablePages
  // further on, so the free RAM after them starts 2 MiB-aligned (room for megapage tests).
  // Neither the tables nor the free RAM may cover the device tree OpenSBI passed in a1.
  const uint64_t tables_base = align_up(addr(__image_end), page_shift);
  uint64_t usable_end = g.ram_end;
  if (fdt >= tables_base && fdt < usable_end) usable_end = align_down(fdt, page_shift);
  uint64_t tables_end = align_up(tables_base + (kBootTablePages << page_shift), megapage_shift);
  if (tables_end > usable_end) die("no room for the boot page tables after the image");
  g.tables_base = tables_base;
  g.tables_end = tables_end;
  BootEnv& env = g_boot_env.make(tables_base, tables_end);
  g_boot_env.set_made();
  enable_paging<HPT_RISCV_LEVELS>(env);  // g.levels stays 0 if no mode was accepted
  g.free_base = tables_end;
  g.free_end = align_down(usable_end, megapage_shift);
  // QEMU puts the device tree below 3 GiB, in the middle of RAM once there is more than 1 GiB:
  // what lies above it is offered separately (room for a 1 GiB-aligned 1 GiB folio).
  if (usable_end != g.ram_end) {
    const uint64_t above = align_up(fdt + be32(fdt + 4), megapage_shift);
    const uint64_t top = align_down(g.ram_end, megapage_shift);
    if (above < top) {
      g.high_base = above;
      g.high_end = top;
    }
  }
  if (g.free_end <= g.free_base || g.free_end - g.free_base < (uint64_t{64} << 20))
    die("less than 64 MiB of free RAM after the image");
}

// --- checks before switching tables --------------------------------------------------------
// set_root() refuses a table that would kill the guest (no identity map of what the harness
// runs on), with a message instead of a silent hang in a trap loop.
bool identity_ok(uint64_t root, uint64_t pa, Access a, const char*& why) {
  const Walk w = walk(root, g.levels, pa);
  if (!w.leaf) {
    why = w.why;
    return false;
  }
  if (w.pa != pa) {
    why = "not an identity mapping";
    return false;
  }
  if (!leaf_permits(w.pte, a, read_sstatus())) {
    why = a == Access::exec    ? "not executable"
          : a == Access::write ? "not writable"
                               : "not readable";
    return false;
  }
  return true;
}

void require_identity(uint64_t root, uint64_t pa, Access a, const char* what) {
  const char* why = "";
  if (identity_ok(root, pa, a, why)) return;
  write_satp(0);
  sfence_vma_all();
  print("\n*** riscv64 harness: set_root(");
  put_hex(root);
  print(") refused: ");
  print(what);
  print(" at ");
  put_hex(pa);
  print(": ");
  print(why);
  print("\n");
  hpt::guest::exit(101);
}

void check_new_root(uint64_t root) {
  if (root & ((uint64_t{1} << page_shift) - 1)) die("set_root: root is not 4 KiB aligned");
  const uint64_t page = uint64_t{1} << page_shift;
  for (uint64_t pa = addr(__image_start); pa < addr(__text_end); pa += page)
    require_identity(root, pa, Access::exec, "image text");
  for (uint64_t pa = addr(__text_end); pa < addr(__image_end); pa += page)
    require_identity(root, pa, Access::write, "image data/stack");
  require_identity(root, uart_base, Access::write, "UART");
  require_identity(root, test_finisher, Access::write, "test finisher");
  require_identity(root, g.free_base, Access::write, "free RAM start");
  require_identity(root, g.free_end - 8, Access::write, "free RAM end");
}

// --- traps ---------------------------------------------------------------------------------
struct TrapFrame {
  uint64_t x[32];  // x[0] is stored as 0; x[2] is the interrupted sp
  uint64_t sepc;
  uint64_t sstatus;
  uint64_t scause;
  uint64_t stval;
};
static_assert(sizeof(TrapFrame) == 36 * 8, "layout shared with start.S");

constexpr uint64_t scause_interrupt = uint64_t{1} << 63;
constexpr uint64_t cause_fetch_access = 1, cause_load_access = 5, cause_store_access = 7;
constexpr uint64_t cause_fetch_page = 12, cause_load_page = 13, cause_store_page = 15;

const char* cause_name(uint64_t scause) {
  if (scause & scause_interrupt) return "interrupt";
  switch (scause) {
    case 0: return "instruction address misaligned";
    case 1: return "instruction access fault";
    case 2: return "illegal instruction";
    case 3: return "breakpoint";
    case 4: return "load address misaligned";
    case 5: return "load access fault";
    case 6: return "store/AMO address misaligned";
    case 7: return "store/AMO access fault";
    case 8: return "environment call from U-mode";
    case 9: return "environment call from S-mode";
    case 12: return "instruction page fault";
    case 13: return "load page fault";
    case 15: return "store/AMO page fault";
    default: return "reserved";
  }
}

// Page and access faults, with the access that caused them; anything else is no fault.
bool fault_access(uint64_t scause, Access& a) {
  switch (scause) {
    case cause_fetch_access:
    case cause_fetch_page: a = Access::exec; return true;
    case cause_load_access:
    case cause_load_page: a = Access::read; return true;
    case cause_store_access:
    case cause_store_page: a = Access::write; return true;
    default: return false;
  }
}

// scause does not say why a page fault happened, so walk the live table like the hardware
// did: no valid leaf -> translation; a leaf that forbids the access -> permission; a leaf
// that allows it but has A clear (or D clear on a write) -> access_flag (Svade behaviour).
// A page fault where the table allows everything means a stale TLB entry: no flag set.
Fault describe(const TrapFrame& tf, Access a) {
  Fault f;
  f.addr = tf.stval;
  f.access = a;
  f.cause = tf.scause;
  f.vector = tf.scause;
  if (tf.scause == cause_fetch_page || tf.scause == cause_load_page ||
      tf.scause == cause_store_page) {
    const Walk w = walk(hpt::guest::current_root(), g.levels, tf.stval);
    if (!w.leaf)
      f.translation = true;
    else if (!leaf_permits(w.pte, a, tf.sstatus))
      f.permission = true;
    else if (!(w.pte & pte_a) || (a == Access::write && !(w.pte & pte_d)))
      f.access_flag = true;
  }
  return f;
}

const char* const reg_names[32] = {"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2",
                                   "s0",   "s1", "a0", "a1", "a2", "a3", "a4", "a5",
                                   "a6",   "a7", "s2", "s3", "s4", "s5", "s6", "s7",
                                   "s8",   "s9", "s10", "s11", "t3", "t4", "t5", "t6"};

[[noreturn]] void unexpected_trap(const TrapFrame& tf, const char* what) {
  const uint64_t satp = read_satp();
  write_satp(0);  // bare, so printing works even if the live table lost the UART
  sfence_vma_all();
  if (g.in_fatal) hpt::guest::exit(102);  // trapped while reporting a trap: just leave
  g.in_fatal = true;
  print("\n*** riscv64: ");
  print(what);
  print(": ");
  print(cause_name(tf.scause));
  print("\n    scause=");
  put_hex(tf.scause);
  print(" sepc=");
  put_hex(tf.sepc);
  print(" stval=");
  put_hex(tf.stval);
  print("\n    sstatus=");
  put_hex(tf.sstatus);
  print(" satp=");
  put_hex(satp);
  print("\n");
  for (unsigned i = 1; i < 32; ++i) {
    print(i % 4 == 1 ? "    " : "  ");
    print(reg_names[i]);
    print("=");
    put_hex(tf.x[i]);
    if (i % 4 == 0 || i == 31) print("\n");
  }
  hpt::guest::exit(101);
}

}  // namespace

extern "C" void hpt_rv_trap(TrapFrame* tf) {
  if (g.in_fatal) hpt::guest::exit(102);
  Access a = Access::read;
  if ((tf->scause & scause_interrupt) || !fault_access(tf->scause, a))
    unexpected_trap(*tf, "unexpected exception");
  const Fault f = describe(*tf, a);

  // The hook sees every fault first (demand paging); it is not re-entered from its own faults.
  // A hook may probe too; the interrupted probe's state is put back afterwards.
  if (g.hook && !g.in_hook) {
    const ProbeKind kind = g_probe.kind;
    const uint64_t target = g_probe.exec_target;
    g.in_hook = true;
    const bool fixed = g.hook(f);
    g.in_hook = false;
    g_probe.kind = kind;
    g_probe.exec_target = target;
    if (fixed) return;  // sret to the same instruction: retry the access
  }

  const ProbeKind kind = g_probe.kind;
  const bool probe_fault =
      (kind == ProbeKind::read && a == Access::read && tf->sepc == addr(hpt_rv_probe_ld_insn)) ||
      (kind == ProbeKind::write && a == Access::write && tf->sepc == addr(hpt_rv_probe_sd_insn)) ||
      (kind == ProbeKind::exec && a == Access::exec && tf->sepc == g_probe.exec_target &&
       tf->x[1] == addr(hpt_rv_probe_call_ret));
  if (!probe_fault) unexpected_trap(*tf, "unexpected fault (not in a probe)");

  g_probe.fault = f;
  g_probe.faulted = true;
  if (kind == ProbeKind::exec) {
    tf->sepc = tf->x[1];  // the fetch at va failed: return to the caller of the call
  } else {
    // Opcode bits [1:0] == 11b: a 32-bit instruction, anything else a 16-bit (RVC) one.
    const uint16_t low = *reinterpret_cast<const volatile uint16_t*>(tf->sepc);
    tf->sepc += (low & 3) == 3 ? 4 : 2;
  }
}

extern "C" [[noreturn]] void hpt_rv_main(uint64_t hartid, uint64_t fdt) {
  (void)hartid;  // OpenSBI starts one hart; the virt machine here has one
  uart_init();
  FdtInfo info;
  if (!fdt_scan(fdt, info)) die("no /memory reg in the device tree from a1");
  g.ram_base = info.ram_base;
  g.ram_end = info.ram_base + info.ram_size;
  g.svnapot = info.svnapot;
  g.svpbmt = info.svpbmt;
  if (addr(__image_start) < g.ram_base || addr(__image_end) > g.ram_end)
    die("the image is not inside the RAM the device tree describes");
  setup_paging(fdt);
  if (g.levels != HPT_RISCV_LEVELS) {
    print("riscv64 harness: satp did not accept " HUGEPTE_GUEST_MODE "; running on ");
    print(satp_mode_name(satp_mode_for(g.levels)));
    print(", cases that need " HUGEPTE_GUEST_MODE " skip\n");
  }
  hpt::guest::run_all();
}

namespace hpt::rv {

unsigned wanted_levels() { return HPT_RISCV_LEVELS; }
unsigned active_levels() { return g.levels; }
bool mode_active() { return g.levels == HPT_RISCV_LEVELS; }
const char* lacks_reason() { return "emulator lacks " HUGEPTE_GUEST_MODE; }
uint64_t boot_root() { return g.root; }
const BootTable* boot_table() { return g_boot_table<GuestFormat>.get(); }
uint64_t boot_tables_base() { return g.tables_base; }
uint64_t boot_tables_end() { return g.tables_end; }
uint64_t image_start() { return addr(__image_start); }
uint64_t image_end() { return addr(__image_end); }
uint64_t text_end() { return addr(__text_end); }
uint64_t stack_bottom() { return addr(hpt_rv_stack_bottom); }
uint64_t stack_top() { return addr(hpt_rv_stack_top); }
uint64_t trap_entry() { return addr(hpt_rv_trap_entry); }
uint64_t ram_base() { return g.ram_base; }
uint64_t ram_end() { return g.ram_end; }
bool has_svnapot() { return g.svnapot; }
bool has_svpbmt() { return g.svpbmt; }

}  // namespace hpt::rv

namespace hpt::guest {

const char* arch_name() { return "riscv64"; }
const char* mode_name() { return HUGEPTE_GUEST_MODE; }

void putc(char c) {
  while (!(uart_reg(uart_lsr) & lsr_thr_empty)) {
  }
  uart_reg(uart_thr) = static_cast<uint8_t>(c);
}

// sifive_test finisher: 0x5555 = pass (QEMU exits 0); (code << 16) | 0x3333 = fail with
// status `code`. QEMU's status is 8 bits wide, so larger codes are clamped to stay non-zero.
[[noreturn]] void exit(int code) {
  constexpr uint32_t finisher_pass = 0x5555, finisher_fail = 0x3333;
  const uint32_t status = code < 0 || code > 255 ? 255u : static_cast<uint32_t>(code);
  *reinterpret_cast<volatile uint32_t*>(test_finisher) =
      status == 0 ? finisher_pass : (status << 16) | finisher_fail;
  for (;;) asm volatile("wfi");
}

uint64_t free_ram_base() { return g.free_base; }
uint64_t free_ram_size() { return g.free_end - g.free_base; }

bool probe_read(uint64_t va, uint64_t& value, Fault& f) {
  g_probe.faulted = false;
  g_probe.kind = ProbeKind::read;
  compiler_barrier();
  const uint64_t v = hpt_rv_probe_ld(va);
  compiler_barrier();
  g_probe.kind = ProbeKind::none;
  if (g_probe.faulted) {
    f = g_probe.fault;
    return false;
  }
  value = v;
  return true;
}

bool probe_write(uint64_t va, uint64_t value, Fault& f) {
  g_probe.faulted = false;
  g_probe.kind = ProbeKind::write;
  compiler_barrier();
  hpt_rv_probe_sd(va, value);
  compiler_barrier();
  g_probe.kind = ProbeKind::none;
  if (g_probe.faulted) {
    f = g_probe.fault;
    return false;
  }
  return true;
}

bool probe_exec(uint64_t va, Fault& f) {
  // The test just stored the code through a data mapping: make instruction fetch see it.
  asm volatile("fence.i" ::: "memory");
  g_probe.faulted = false;
  g_probe.exec_target = va;
  g_probe.kind = ProbeKind::exec;
  compiler_barrier();
  hpt_rv_probe_call(va);
  compiler_barrier();
  g_probe.kind = ProbeKind::none;
  if (g_probe.faulted) {
    f = g_probe.fault;
    return false;
  }
  return true;
}

const unsigned char* ret_insn(unsigned& len) {
  static const unsigned char ret[] = {0x67, 0x80, 0x00, 0x00};  // jalr x0, 0(ra)
  len = sizeof ret;
  return ret;
}

void set_root(uint64_t root) {
  if (g.levels == 0) die("set_root: translation is off (the emulator took no paging mode)");
  check_new_root(root);
  write_satp(satp_value(g.levels, root));
  sfence_vma_all();  // the new table's stores are ordered before its walks; no stale entries
}

uint64_t current_root() { return (read_satp() & satp_ppn_mask) << page_shift; }

void tlb_flush_va(uint64_t va) { sfence_vma(va); }
void tlb_flush_all() { sfence_vma_all(); }

// QEMU 7.2 updates A and D in the PTE itself (it has no Svade/Svadu switch); the mmu cases
// check that an entry created with A = D = 0 really gains them.
const char* mode_unavailable() { return rv::mode_active() ? nullptr : rv::lacks_reason(); }
void code_written(uint64_t, uint64_t) { asm volatile("fence.i" ::: "memory"); }
// QEMU 7.2's walker does not check the reserved bits 54..60 of a PTE (the privileged spec says
// they raise a page fault); QEMU 8.1 added the check (PTE_RESERVED).
const char* emulator_deviation(uint64_t& raw, unsigned) {
  constexpr uint64_t kReserved = ((uint64_t{1} << 61) - 1) & ~((uint64_t{1} << 54) - 1);
  if (!(raw & 1) || !(raw & kReserved)) return nullptr;
  raw &= ~kReserved;
  return "QEMU 7.2 ignores reserved PTE bits 54-60 (checked since QEMU 8.1)";
}
bool hw_sets_accessed() { return true; }
bool hw_sets_dirty() { return true; }
const char* set_hw_ad(bool accessed, bool dirty) {
  return accessed && dirty ? nullptr
                           : "QEMU 7.2 always sets A and D in the PTE (no Svade/Svadu switch)";
}
uint64_t high_ram_base() { return g.high_base; }
uint64_t high_ram_size() { return g.high_end - g.high_base; }

void set_fault_hook(FaultHook hook) { g.hook = hook; }

}  // namespace hpt::guest
