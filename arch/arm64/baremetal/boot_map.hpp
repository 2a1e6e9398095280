// boot_map.hpp - the harness' boot identity map, built by the library itself (platform.cpp):
// a hugepte::PageTable of this image's GuestFormat, table pages from RAM reserved for the
// harness below free_ram_base(), every leaf set through HugePteOps. The raw-bit helpers of
// harness.hpp stay for the cases that test hand-encoded descriptors, and for a fallback granule.
#pragma once

#include "guest_env.hpp"
#include "guest_format.hpp"
#include "harness.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/table.hpp"

namespace hpt::arm64_bm {

using BootFormat = guest::GuestFormat;
using BootEnv = guest::GuestEnv<BootFormat::page_shift>;
using BootTable = hugepte::PageTable<BootFormat, BootEnv>;

// Table pages the boot map may take: 4K needs 6 (levels 0 and 1, a level-2 and a level-3 table
// each for the UART and for the first 2 MiB of RAM, where the image splits the permissions),
// 16K and 64K need 4. The rest is slack for a larger image.
constexpr unsigned kBootTablePages = 16;

// One stretch of the identity map: [start, end), granule aligned, readable and writable,
// young, dirty and global (no access-flag or permission faults on the harness' own accesses).
struct BootRegion {
  uint64_t start = 0;
  uint64_t end = 0;
  hugepte::MemType mem = hugepte::MemType::normal;
  bool exec = false;  // only where code lives: the image
  const char* what = "";
};

// The library's table behind the boot map; nullptr when the CPU lacks this image's granule and
// the harness fell back to raw-bit tables of another granule (mode_supported() is false).
const BootTable* boot_table();
// The regions boot_table() maps, in address order (none in the fallback).
const BootRegion* boot_regions(unsigned& count);
// Where the boot map's table pages come from: [boot_tables_base(), guest::free_ram_base()).
uint64_t boot_tables_base();

}  // namespace hpt::arm64_bm
