// hugepte/arch/all.hpp - the list of every architecture format, for code that iterates over all
// of them (the CLI, typed tests, benchmarks). Adding an architecture = one format header plus one
// entry here; generic/ never changes.
#pragma once

#include "hugepte/arch/arm64.hpp"
#include "hugepte/arch/riscv.hpp"
#include "hugepte/arch/x86.hpp"
#include "hugepte/format.hpp"

namespace hugepte {

namespace detail {
template <class... A, class... B, class... C>
TypeList<A..., B..., C...> concat(TypeList<A...>, TypeList<B...>, TypeList<C...>);
}  // namespace detail

using AllFormats = decltype(detail::concat(X86Formats{}, Arm64Formats{}, RiscvFormats{}));

}  // namespace hugepte
