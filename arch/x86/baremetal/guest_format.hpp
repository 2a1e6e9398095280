// guest_format.hpp - the library format the MMU of this image runs (x86-64, by HPT_X86_LEVELS).
#pragma once
#include "hugepte/arch/x86.hpp"

namespace hpt::guest {
using GuestFormat = hugepte::X86Format<HPT_X86_LEVELS>;
}
