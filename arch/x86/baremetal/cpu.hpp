// cpu.hpp - the x86-64 instructions and raw paging bits the bare-metal harness and its in-guest
// cases use. Internal to arch/x86/baremetal. The harness' boot map is built by the library
// (platform.cpp), but mmu_cases.cpp writes its entries with the hand-written bits below, not
// with the library's format (arch/x86/include), so that those cases check the hardware against
// the manual rather than the library against itself.
#pragma once

#include <cstdint>

#include "guest.hpp"
#include "hugepte/entry.hpp"

namespace hpt::x86 {

using u64 = std::uint64_t;
using u32 = std::uint32_t;
using u16 = std::uint16_t;
using u8 = std::uint8_t;
using hugepte::bit;
using hugepte::mask;

// --- paging-structure entry bits (SDM Vol. 3A, 4.5) --------------------------------------------
inline constexpr u64 kP = bit(0);    // present
inline constexpr u64 kRW = bit(1);   // writable
inline constexpr u64 kUS = bit(2);   // user
inline constexpr u64 kPWT = bit(3);
inline constexpr u64 kPCD = bit(4);
inline constexpr u64 kA = bit(5);    // accessed: set by the walker in every entry it uses
inline constexpr u64 kD = bit(6);    // dirty: leaves only
inline constexpr u64 kPS = bit(7);   // page size: a leaf in a PDPTE (1 GiB) or PDE (2 MiB)
inline constexpr u64 kG = bit(8);    // global
inline constexpr u64 kXD = bit(63);  // execute-disable, honoured when EFER.NXE = 1
// Physical-address field; the architectural maximum is 52 bits. Bits between MAXPHYADDR and 51
// are reserved, which is why the harness never sets them.
inline constexpr u64 kAddr = mask(12, 51);

inline constexpr unsigned kPageShift = 12;   // 4 KiB
inline constexpr unsigned kLevelBits = 9;    // 512 entries per table
inline constexpr unsigned kPmdShift = 21;    // 2 MiB leaf in a PDE
inline constexpr unsigned kPudShift = 30;    // 1 GiB leaf in a PDPTE

// Shift of the VA span covered by one entry at `level` (0 = PTE).
constexpr unsigned level_shift(unsigned level) { return kPageShift + kLevelBits * level; }
constexpr unsigned level_index(u64 va, unsigned level) {
  return static_cast<unsigned>((va >> level_shift(level)) & (bit(kLevelBits) - 1));
}

// --- #PF error code (SDM Vol. 3A, 4.7) -----------------------------------------------------------
inline constexpr u64 kPfP = bit(0);     // 0: not present, 1: protection violation
inline constexpr u64 kPfW = bit(1);     // access was a write
inline constexpr u64 kPfU = bit(2);     // CPL 3
inline constexpr u64 kPfRsvd = bit(3);  // a reserved bit was set in some entry
inline constexpr u64 kPfId = bit(4);    // instruction fetch (with NXE or SMEP)

inline constexpr u64 kVecPF = 14;
inline constexpr u64 kVecGP = 13;
inline constexpr u64 kVecUD = 6;
inline constexpr u64 kVecBP = 3;

// --- control registers and MSRs -----------------------------------------------------------------
inline constexpr u64 kCr0PE = bit(0);
inline constexpr u64 kCr0WP = bit(16);  // supervisor writes honour R/W (otherwise they ignore it)
inline constexpr u64 kCr0PG = bit(31);
inline constexpr u64 kCr4PAE = bit(5);
inline constexpr u64 kCr4PGE = bit(7);
inline constexpr u64 kCr4LA57 = bit(12);
inline constexpr u32 kMsrEfer = 0xC0000080;
inline constexpr u64 kEferLME = bit(8);
inline constexpr u64 kEferLMA = bit(10);
inline constexpr u64 kEferNXE = bit(11);

inline u64 read_cr0() { u64 v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
inline u64 read_cr2() { u64 v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
inline u64 read_cr3() { u64 v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
inline u64 read_cr4() { u64 v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
inline void write_cr3(u64 v) { asm volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
inline void write_cr4(u64 v) { asm volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

inline u64 rdmsr(u32 msr) {
  u32 lo, hi;
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return (u64{hi} << 32) | lo;
}

struct CpuidRegs {
  u32 eax, ebx, ecx, edx;
};
inline CpuidRegs cpuid(u32 leaf, u32 subleaf = 0) {
  CpuidRegs r;
  asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
  return r;
}
inline bool cpu_has_la57() {  // CPUID.(EAX=7,ECX=0):ECX[16]
  return cpuid(0).eax >= 7 && (cpuid(7, 0).ecx & bit(16));
}
inline bool cpu_has_ext(u32 edx_bit) {  // CPUID.80000001H:EDX
  return cpuid(0x80000000).eax >= 0x80000001 && (cpuid(0x80000001).edx & bit(edx_bit));
}
inline bool cpu_has_1g_pages() { return cpu_has_ext(26); }  // Page1GB (pdpe1gb)
inline bool cpu_has_nx() { return cpu_has_ext(20); }        // execute-disable

inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
inline void outw(u16 port, u16 v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
inline u8 inb(u16 port) {
  u8 v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

// --- harness state the in-guest cases may inspect (platform.cpp) --------------------------------
// Paging levels the harness actually runs with: 5 only when the image asked for LA57 and the
// CPU has it.
unsigned paging_levels();
// The root of the identity map the harness built at boot with the library: the image and the
// free RAM, nothing below the image.
u64 harness_root();
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
