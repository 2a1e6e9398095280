// hugepte/arch/arm64_linux61.hpp - arm64 stage-1 entries as Linux 6.1 writes them (Debian 12),
// read through the upstream formats of arm64.hpp (hugepte/kernel.hpp says why profiles exist).
//
// What 6.1 spells differently (arch/arm64/include/asm/pgtable-prot.h and pgtable.h of v6.1):
//   - a valid entry: bit 57 is PTE_DEVMAP (ZONE_DEVICE memory); bit 58 means nothing (arm64 had
//     no uffd-wp bit before 6.10, which put PTE_UFFD_WP there);
//   - an invalid entry that is present to software: bit 58 PTE_PROT_NONE (PROT_NONE, NUMA
//     hinting), or bit 59 PMD_PRESENT_INVALID on a block (pmd_mkinvalid). Upstream spells both
//     as nG with the valid bit clear (PTE_PRESENT_INVALID);
//   - a swap entry: bit 2 exclusive, type in 3-7 (6.1's numbers), offset in 8-57, no uffd-wp
//     bit, bits 58-63 zero. Upstream: exclusive 2, uffd-wp 3, type 6-10, offset 12-61.
// Freestanding.
#pragma once

#include "hugepte/arch/arm64.hpp"
#include "hugepte/kernel.hpp"

namespace hugepte::linux61 {

inline constexpr uint64_t kArm64Devmap = bit(57);
inline constexpr uint64_t kArm64ProtNone = bit(58);
inline constexpr uint64_t kArm64PresentInvalid = bit(59);

// The same entry in upstream's spelling (what Arm64Format::decode reads). A swap entry 6.1
// could not have written (bits 0-1 or 58-63 set) is returned as it is, which upstream then
// reads as what it is there.
template <unsigned Gr, unsigned Va>
constexpr uint64_t to_upstream(const Arm64Format<Gr, Va>*, uint64_t raw, unsigned level) {
  if (raw == 0) return 0;
  if (raw & arm64::kValid) return raw & ~(kArm64ProtNone | kArm64Devmap);  // devmap(): apart
  if (raw & kArm64ProtNone) return (raw & ~kArm64ProtNone) | arm64::kNG;
  if (level > 0 && (raw & kArm64PresentInvalid)) return (raw & ~kArm64PresentInvalid) | arm64::kNG;
  if (raw & (mask(0, 1) | mask(58, 63))) return raw;
  const uint64_t type = swap_type(static_cast<uint32_t>(field(raw, 3, 7)));
  return (raw & bit(2)) | (type << arm64::kSwpTypeLo) | (field(raw, 8, 57) << arm64::kSwpOffsetLo);
}

// Whether the entry has 6.1's PTE_DEVMAP.
template <unsigned Gr, unsigned Va>
constexpr bool devmap(const Arm64Format<Gr, Va>*, uint64_t raw, unsigned) {
  return (raw & arm64::kValid) && (raw & kArm64Devmap);
}

// Bits 6.1 gives no meaning and upstream would read as something: a valid entry's bit 58.
template <unsigned Gr, unsigned Va>
constexpr uint64_t unknown_bits(const Arm64Format<Gr, Va>*, uint64_t raw, unsigned) {
  return (raw & arm64::kValid) ? raw & kArm64ProtNone : 0;
}

}  // namespace hugepte::linux61
