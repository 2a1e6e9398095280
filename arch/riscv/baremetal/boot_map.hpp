// boot_map.hpp - the harness' boot identity map as a library object. platform.cpp builds it with
// hugepte's PageTable + HugePteOps before translation is on; mmu_cases.cpp reads it back with the
// library's walker and compares that with the harness' own raw-bit walk (rv.hpp).
#pragma once

#include "guest_env.hpp"
#include "guest_format.hpp"
#include "hugepte/table.hpp"

namespace hpt::rv {

// Table pages come from a region of RAM between the image and free_ram_base(), so the tests
// keep all of their free RAM.
using BootEnv = guest::GuestEnv<guest::GuestFormat::page_shift>;
using BootTable = hugepte::PageTable<guest::GuestFormat, BootEnv>;

// The table satp points at after boot (never destroyed), or nullptr when satp refused this
// image's mode and the harness runs on a smaller one, whose table has another format type.
const BootTable* boot_table();

// What the harness gave its own table pages: [base, end), below free_ram_base().
uint64_t boot_tables_base();
uint64_t boot_tables_end();

}  // namespace hpt::rv
