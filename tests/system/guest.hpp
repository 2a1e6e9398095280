// guest.hpp - the contract between the generic in-guest test code and each architecture's
// bare-metal harness (arch/<arch>/baremetal/). Every arch implements exactly these functions;
// everything above them (runner, MMU cases, later the fault handler) is written once.
#pragma once

#include <stdint.h>

namespace hpt::guest {

enum class Access : uint8_t { read, write, exec };

constexpr const char* access_name(Access a) {
  return a == Access::read ? "read" : a == Access::write ? "write" : "exec";
}

// A synchronous exception taken while the guest ran, as the architecture reported it.
struct Fault {
  uint64_t addr = 0;          // faulting virtual address (CR2 / FAR_EL1 / stval)
  Access access = Access::read;
  uint64_t cause = 0;         // raw cause: x86 #PF error code, arm64 ESR_EL1, riscv scause
  uint64_t vector = 0;        // x86 vector number, arm64 ESR.EC, riscv scause (again)
  bool translation = false;  // a translation (not-present) fault, as opposed to permission/other
  bool access_flag = false;  // arm64 access-flag fault
  bool permission = false;   // present, but permissions denied the access
};

// --- provided by arch/<arch>/baremetal -------------------------------------------------------

// Identity of the running image (matches the matrix columns), e.g. "x86_64" / "4level".
const char* arch_name();
const char* mode_name();

void putc(char c);                // serial output
[[noreturn]] void exit(int code);  // leave QEMU: status 0 = all passed, non-zero = failures

// Physical memory the tests may use for page tables and test pages (identity-mapped read/write,
// not executable, while the harness' own tables are live: code runs only through mappings a test
// makes executable). Page-aligned, at least 32 MiB.
uint64_t free_ram_base();
uint64_t free_ram_size();

// Probes: perform one access through the current translation. On a fault, the harness records
// it, skips the faulting instruction and the probe returns false with `f` filled in.
bool probe_read(uint64_t va, uint64_t& value, Fault& f);
bool probe_write(uint64_t va, uint64_t value, Fault& f);
// Calls a function at `va` (which the test placed there: arch_ret_insn) and returns true if it
// returned; false if instruction fetch faulted.
bool probe_exec(uint64_t va, Fault& f);
// Bytes of a function that returns immediately, to copy into an executable test page.
const unsigned char* ret_insn(unsigned& len);

// Switch translation to the table rooted at physical address `root` (format of this image's
// mode), invalidating the whole TLB. Code, data, stack, UART and the free RAM must be
// identity-mapped by the new table, or the guest dies.
void set_root(uint64_t root);
uint64_t current_root();
// Invalidate one page / everything (the real instructions: invlpg, TLBI VAE1IS, sfence.vma).
void tlb_flush_va(uint64_t va);
void tlb_flush_all();

// Why the MMU does not run this image's mode (the emulator lacks it; the harness then fell back to
// a mode it can run), or nullptr when it does. Cases that need the mode skip with this reason.
const char* mode_unavailable();

// Make `len` bytes of instructions just written through `va` visible to instruction fetch
// (arm64: DC CVAU + IC IALLU; riscv: FENCE.I; x86: nothing, fetch is coherent).
void code_written(uint64_t va, uint64_t len);

// Known deviations of the emulator from the architecture manual. Given an entry at `level`,
// rewrites `raw` into what the emulator's walker effectively uses and returns why (for example
// "QEMU 7.2 ignores reserved PTE bits 54-60"), or returns nullptr and leaves `raw` alone when
// the emulator follows the manual for it. Tests then compare against the emulator's behaviour
// and report the deviation as a skip reason, never as a silent pass.
const char* emulator_deviation(uint64_t& raw, unsigned level);

// Hardware A/D support in this image's configuration.
bool hw_sets_accessed();
bool hw_sets_dirty();

// Turns the hardware's access-flag / dirty updates on or off (arm64: TCR_EL1.HA / HD, which the
// fault handler's software A/D cases need off). Returns nullptr when the walker now behaves as
// asked (hw_sets_accessed() / hw_sets_dirty() report it), or why this image cannot switch it.
const char* set_hw_ad(bool accessed, bool dirty);

// RAM beyond the free RAM that tests may also use, identity-mapped read/write like it, for
// folios too large to fit there (riscv: the RAM above the device tree, which QEMU places below
// 3 GiB). Size 0 where all usable RAM is free RAM already.
uint64_t high_ram_base();
uint64_t high_ram_size();

// Optional hook called for every fault before the probe machinery (demand paging later on):
// return true if the hook fixed the cause and the access should be retried.
using FaultHook = bool (*)(const Fault&);
void set_fault_hook(FaultHook hook);

// --- provided by tests/system/guest_main.cpp -----------------------------------------------

// Called by the arch's C++ entry once the harness is up (serial ready, vectors installed).
[[noreturn]] void run_all();

}  // namespace hpt::guest
