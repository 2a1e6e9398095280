// cpu.hpp - the x86-64 instructions and raw paging bits the bare-metal harness and its in-guest
// cases use. Internal to arch/x86/baremetal. The harness' boot map is built by the library
// (platform.cpp), but mmu_cases.cpp writes its entries with the hand-written bits below, not
// with the library's format (arch/x86/include), so that those cases check the hardware against
// the manual rather than the library against itself.
#pragma once

#include <stdint.h>

#include "guest.hpp"
#include "hugepte/entry.hpp"

namespace hpt::x86 {

using hugepte::bit;
using hugepte::mask;

// --- paging-structure entry bits (SDM Vol. 3A, 4.5) --------------------------------------------
inline constexpr uint64_t kP = bit(0);    // present
inline constexpr uint64_t kRW = bit(1);   // writable
inline constexpr uint64_t kUS = bit(2);   // user
inline constexpr uint64_t kPWT = bit(3);
inline constexpr uint64_t kPCD = bit(4);
inline constexpr uint64_t kA = bit(5);    // accessed: set by the walker in every entry it uses
inline constexpr uint64_t kD = bit(6);    // dirty: leaves only
inline constexpr uint64_t kPS = bit(7);   // page size: a leaf in a PDPTE (1 GiB) or PDE (2 MiB)
inline constexpr uint64_t kG = bit(8);    // global
inline constexpr uint64_t kXD = bit(63);  // execute-disable, honoured when EFER.NXE = 1
// Physical-address field; the architectural maximum is 52 bits. Bits between MAXPHYADDR and 51
// are reserved, which is why the harness never sets them.
inline constexpr uint64_t kAddr = mask(12, 51);

inline constexpr unsigned kPageShift = 12;   // 4 KiB
inline constexpr unsigned kLevelBits = 9;    // 512 entries per table
inline constexpr unsigned kPmdShift = 21;    // 2 MiB leaf in a PDE
inline constexpr unsigned kPudShift = 30;    // 1 GiB leaf in a PDPTE

// Shift of the VA span covered by one entry at `level` (0 = PTE).
constexpr unsigned level_shift(unsigned level) { return kPageShift + kLevelBits * level; }
constexpr unsigned level_index(uint64_t va, unsigned level) {
  return static_cast<unsigned>((va >> level_shift(level)) & (bit(kLevelBits) - 1));
}

// --- #PF error code (SDM Vol. 3A, 4.7) -----------------------------------------------------------
inline constexpr uint64_t kPfP = bit(0);     // 0: not present, 1: protection violation
inline constexpr uint64_t kPfW = bit(1);     // access was a write
inline constexpr uint64_t kPfU = bit(2);     // CPL 3
inline constexpr uint64_t kPfRsvd = bit(3);  // a reserved bit was set in some entry
inline constexpr uint64_t kPfId = bit(4);    // instruction fetch (with NXE or SMEP)

inline constexpr uint64_t kVecPF = 14;
inline constexpr uint64_t kVecGP = 13;
inline constexpr uint64_t kVecUD = 6;
inline constexpr uint64_t kVecBP = 3;

// --- control registers and MSRs -----------------------------------------------------------------
inline constexpr uint64_t kCr0PE = bit(0);
inline constexpr uint64_t kCr0WP =
    bit(16);  // supervisor writes honour R/W (otherwise they ignore it)
inline constexpr uint64_t kCr0PG = bit(31);
inline constexpr uint64_t kCr4PAE = bit(5);
inline constexpr uint64_t kCr4PGE = bit(7);
inline constexpr uint64_t kCr4LA57 = bit(12);
inline constexpr uint32_t kMsrEfer = 0xC0000080;
inline constexpr uint64_t kEferLME = bit(8);
inline constexpr uint64_t kEferLMA = bit(10);
inline constexpr uint64_t kEferNXE = bit(11);

inline uint64_t read_cr0() { uint64_t v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
inline uint64_t read_cr2() { uint64_t v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
inline uint64_t read_cr3() { uint64_t v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
inline uint64_t read_cr4() { uint64_t v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
inline void write_cr3(uint64_t v) { asm volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
inline void write_cr4(uint64_t v) { asm volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

inline uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return (uint64_t{hi} << 32) | lo;
}

struct CpuidRegs {
  uint32_t eax, ebx, ecx, edx;
};
inline CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf = 0) {
  CpuidRegs r;
  asm volatile("cpuid"
               : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
               : "a"(leaf), "c"(subleaf));
  return r;
}
inline bool cpu_has_la57() {  // CPUID.(EAX=7,ECX=0):ECX[16]
  return cpuid(0).eax >= 7 && (cpuid(7, 0).ecx & bit(16));
}
inline bool cpu_has_ext(uint32_t edx_bit) {  // CPUID.80000001H:EDX
  return cpuid(0x80000000).eax >= 0x80000001 && (cpuid(0x80000001).edx & bit(edx_bit));
}
inline bool cpu_has_1g_pages() { return cpu_has_ext(26); }  // Page1GB (pdpe1gb)
inline bool cpu_has_nx() { return cpu_has_ext(20); }        // execute-disable

inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
inline void outw(uint16_t port, uint16_t v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
inline void outl(uint16_t port, uint32_t v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
inline uint8_t inb(uint16_t port) {
  uint8_t v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

// --- harness state the in-guest cases may inspect (platform.cpp) --------------------------------
// Paging levels the harness actually runs with: 5 only when the image asked for LA57 and the
// CPU has it.
unsigned paging_levels();
// The root of the identity map the harness built at boot with the library: the image and the
// free RAM, nothing below the image.
uint64_t harness_root();
// Runs `fn` (one of the hpt_x86_probe_* helpers below) as a probe: an exception at its fixup
// site is recorded in `f` and the call returns false.
bool probe_call_helper(int (*fn)(), hpt::guest::Fault& f);

}  // namespace hpt::x86

// Assembly helpers (start.S).
extern "C" {
// Execute `ud2` / `int3` at a fixup site: the vector reaches the C++ handler, which resumes at
// the fixup and the helper returns 0 (1 if no exception happened).
int hpt_x86_probe_ud2();
int hpt_x86_probe_int3();
}
