// hugepte/arch/all.hpp - the list of every architecture format, for code that iterates over all
// of them (the CLI, typed tests, benchmarks). Adding an architecture = one format header plus one
// entry here; generic/ never changes.
#pragma once

#include "hugepte/arch/arm64.hpp"
#include "hugepte/arch/arm64_s2.hpp"
#include "hugepte/arch/riscv.hpp"
#include "hugepte/arch/riscv_gstage.hpp"
#include "hugepte/arch/x86.hpp"
#include "hugepte/arch/x86_tdp.hpp"
#include "hugepte/format.hpp"

namespace hugepte {

namespace detail {
template <class... A, class... B, class... C>
TypeList<A..., B..., C...> concat(TypeList<A...>, TypeList<B...>, TypeList<C...>);
}  // namespace detail

using AllFormats = decltype(detail::concat(X86Formats{}, Arm64Formats{}, RiscvFormats{}));

// The secondary MMU's formats (stage 2): EPT, NPT, arm64 stage 2 (each granule, with and without
// FWB), riscv G-stage. Kept apart from AllFormats: their entries have no swap, PROT_NONE or
// marker kinds, which the mm model and its suites need.
using AllStage2Formats =
    decltype(detail::concat(X86Stage2Formats{}, Arm64Stage2Formats{}, RiscvStage2Formats{}));

}  // namespace hugepte
