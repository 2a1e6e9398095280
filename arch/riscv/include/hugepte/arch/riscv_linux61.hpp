// hugepte/arch/riscv_linux61.hpp - riscv64 entries as Linux 6.1 writes them (Debian 12), read
// through the upstream formats of riscv.hpp (hugepte/kernel.hpp says why profiles exist).
//
// What 6.1 spells differently (arch/riscv/include/asm/pgtable.h and pgtable-bits.h of v6.1, as
// Debian's linux-source-6.1 has them):
//   - a swap entry: type in bits 6-10 (6.1's numbers), offset in 11-63, and no exclusive bit.
//     6.3 took bit 6 for the exclusive marker (_PAGE_SWP_EXCLUSIVE), moving the type to 7-11
//     and the offset to 12-63. riscv had no soft-dirty or uffd-wp bits in 6.1;
//   - tables, leaves and PROT_NONE entries are spelled as upstream: V, R/W/X, U, G, A, D, RSW[0]
//     as _PAGE_SPECIAL, PROT_NONE as G with V clear. 6.1 has no _PAGE_DEVMAP, and no Svnapot
//     support (it never writes bit 63).
// Freestanding.
#pragma once

#include "hugepte/arch/riscv.hpp"
#include "hugepte/kernel.hpp"

namespace hugepte::linux61 {

// Whether raw is a swap entry in 6.1's layout: not none, V, PROT_NONE (G), R and W clear, and
// nothing in bits 1-5 (6.1 writes them as zero).
constexpr bool riscv_swap(uint64_t raw) {
  return raw != 0 && !(raw & (riscv::kV | riscv::kProtNone | riscv::kR | riscv::kW)) &&
         !(raw & mask(1, 5));
}

// The same entry in upstream's spelling (what RiscvFormat::decode reads). A swap entry whose
// offset reaches bit 63 has no upstream spelling (upstream's offset is one bit shorter): it is
// returned as it is, and unknown_bits names that bit.
template <unsigned L, bool N, bool P, bool S>
constexpr uint64_t to_upstream(const RiscvFormat<L, N, P, S>*, uint64_t raw, unsigned) {
  if (!riscv_swap(raw) || (raw & bit(63))) return raw;
  const uint64_t type = swap_type(static_cast<uint32_t>(field(raw, 6, 10)));
  return (type << riscv::kSwpTypeLo) | (field(raw, 11, 62) << riscv::kSwpOffsetLo);
}

// 6.1's riscv has no _PAGE_DEVMAP.
template <unsigned L, bool N, bool P, bool S>
constexpr bool devmap(const RiscvFormat<L, N, P, S>*, uint64_t, unsigned) {
  return false;
}

// Bits 6.1 gives a meaning upstream cannot carry: a swap offset's bit 52 (bit 63 of the entry).
template <unsigned L, bool N, bool P, bool S>
constexpr uint64_t unknown_bits(const RiscvFormat<L, N, P, S>*, uint64_t raw, unsigned) {
  return riscv_swap(raw) ? raw & bit(63) : 0;
}

}  // namespace hugepte::linux61
