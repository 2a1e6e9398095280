// guest_format.hpp - the library format the MMU of this image runs (riscv64, by HPT_RISCV_LEVELS;
// QEMU runs with svnapot=true,svpbmt=true).
#pragma once
#include "hugepte/arch/riscv.hpp"

namespace hpt::guest {
using GuestFormat = hugepte::RiscvFormat<HPT_RISCV_LEVELS>;
}
