// hugepte/kernel.hpp - which Linux kernel's software conventions a raw entry follows.
//
// The formats (arch/*) decode and encode entries as today's kernel writes them ("upstream").
// An entry written by an older kernel can mean something else in its software bits and swap
// encodings; decoding it with today's conventions reads them wrongly. A profile names the
// kernel; each architecture that has a profile other than upstream gives a
// `linux61::decode(const F*, raw, level)` beside its formats (arch/*/include/.../*_linux61.hpp).
// Freestanding.
#pragma once

#include "hugepte/entry.hpp"

namespace hugepte {

enum class Kernel : uint8_t {
  upstream,   // today's conventions: what the formats implement
  linux_6_1,  // Debian 12's kernel
};

constexpr const char* kernel_name(Kernel k) {
  return k == Kernel::upstream ? "upstream" : "linux-6.1";
}

namespace linux61 {

// include/linux/swap.h in 6.1: four device-private types (exclusive write and exclusive read
// apart) where upstream has three, so MAX_SWAPFILES was 23 and hwpoison and the migration
// types sit one below upstream's numbers:
//   6.1:       0-22 swap files, 23 hwpoison, 24-26 migration (read, read-exclusive, write),
//              27-28 device-private (write, read), 29-30 device-exclusive (write, read), 31 marker
//   upstream:  0-23 swap files, 24 hwpoison, 25-27 migration, 28-30 device, 31 marker
// The vocabulary's type (upstream numbering) for a type number a 6.1 kernel wrote.
constexpr uint32_t swap_type(uint32_t t) {
  if (t < 23) return t;
  if (t == 23) return kSwpHwpoison;
  if (t <= 26) return kSwpMigrationRead + (t - 24);
  if (t == 27) return kSwpDeviceWrite;
  if (t == 28) return kSwpDeviceRead;
  if (t <= 30) return kSwpDeviceExclusive;
  return kSwpPteMarker;
}
static_assert(swap_type(23) == kSwpHwpoison && swap_type(26) == kSwpMigrationWrite &&
              swap_type(31) == kSwpPteMarker);

}  // namespace linux61
}  // namespace hugepte
