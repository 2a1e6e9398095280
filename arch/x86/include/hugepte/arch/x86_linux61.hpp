// hugepte/arch/x86_linux61.hpp - x86-64 entries as Linux 6.1 writes them (Debian 12), read
// through the upstream formats of x86.hpp (hugepte/kernel.hpp says why profiles exist).
//
// What 6.1 spells differently (arch/x86/include/asm/pgtable_types.h and
// include/linux/swap.h of v6.1):
//   - bit 58 is _PAGE_DEVMAP (_PAGE_BIT_SOFTW4 was 58): the page is ZONE_DEVICE memory. Upstream
//     moved SOFTW4 to 57 and gave 58 to _PAGE_SAVED_DIRTY;
//   - 6.1 has no shadow stacks: a dirty read-only page keeps D (RW=0, D=1), which upstream
//     reads as a shadow-stack page and spells as SAVED_DIRTY instead;
//   - swap entries use the same bits, with 6.1's swap type numbers.
// Freestanding.
#pragma once

#include "hugepte/arch/x86.hpp"
#include "hugepte/kernel.hpp"

namespace hugepte::linux61 {

inline constexpr uint64_t kX86Devmap = bit(58);

template <unsigned L, bool G, unsigned P>
constexpr bool leafish(const X86Format<L, G, P>*, uint64_t raw, unsigned level) {
  if (raw & x86::kP) return level == 0 || (raw & x86::kPS);
  return (raw & x86::kProtNone) != 0 || (level > 0 && (raw & x86::kPS));  // PROT_NONE, mkinvalid
}

// The same entry in upstream's spelling (what X86Format::decode reads).
template <unsigned L, bool G, unsigned P>
constexpr uint64_t to_upstream(const X86Format<L, G, P>* f, uint64_t raw, unsigned level) {
  if (raw == 0) return 0;
  if (leafish(f, raw, level)) {
    uint64_t r = raw & ~kX86Devmap;
    if ((raw & x86::kP) && !(raw & x86::kRW) && (raw & x86::kD))
      r = (r & ~x86::kD) | x86::kSavedDirty;
    return r;
  }
  if (raw & x86::kP) return raw;  // a table
  // A swap entry: type in 59-63, renumbered.
  const uint32_t t = static_cast<uint32_t>(raw >> x86::kSwpTypeShift);
  return (raw & mask(0, x86::kSwpTypeShift - 1)) | (uint64_t{swap_type(t)} << x86::kSwpTypeShift);
}

// Whether the entry has 6.1's _PAGE_DEVMAP.
template <unsigned L, bool G, unsigned P>
constexpr bool devmap(const X86Format<L, G, P>* f, uint64_t raw, unsigned level) {
  return leafish(f, raw, level) && (raw & kX86Devmap);
}

}  // namespace hugepte::linux61
