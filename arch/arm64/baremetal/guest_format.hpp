// guest_format.hpp - the library format the MMU of this image runs (arm64, by granule: the 4k and
// 64k images use a 48-bit VA, the 16k image 47 bits; see CMakeLists.txt).
#pragma once
#include "hugepte/arch/arm64.hpp"

namespace hpt::guest {
using GuestFormat = hugepte::Arm64Format<HPT_ARM64_GRANULE_SHIFT, HPT_ARM64_GRANULE_SHIFT == 14 ? 47 : 48>;
}
