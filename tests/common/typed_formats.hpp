// typed_formats.hpp - GoogleTest typed suites over every format: the fake exemplar first, then
// the real ones, with readable type names (x86_64_4level, arm64_16k_47, ...).
//
// Which real ones: every format (hugepte::AllFormats) by default - the host preset runs them
// all. With HUGEPTE_TEST_FORMATS_GEOMETRIES=1 (the presets that build the same tests again:
// GCC, sanitizers, release, qemu-user) one format per geometry: x86-64 4-level (no groups, no
// break-before-make), arm64 4K/48 (CONT-PTE and CONT-PMD), 16K/47 (a CONT-PTE group as large
// as the next level's block), 64K/42 (two levels: 64K pages, 512M blocks) and riscv Sv39 (NAPOT). The
// modes left out differ from these only in the number of levels and the VA width, which the
// host preset covers. With HUGEPTE_TEST_FORMATS_NATIVE=1 (the qemu-user presets) the formats of
// the architecture the tests are built for. With HUGEPTE_TEST_FORMATS_ARCHES=1 (GCC and the
// sanitizers) one format per architecture; the granules and VA widths left out are covered by
// the host preset, the aarch64 qemu-user preset and the system images.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "fake_format.hpp"
#include "hugepte/arch/all.hpp"

namespace hpt_typed {

template <class List, class... Extra>
struct ToGtest;
template <class... Fs, class... Extra>
struct ToGtest<hugepte::TypeList<Fs...>, Extra...> {
  using type = ::testing::Types<Extra..., Fs...>;
};

#if HUGEPTE_TEST_FORMATS_ARCHES
// One format per architecture, each with its own grouping: x86-64 4-level (none), arm64 4K/48
// (CONT-PTE, CONT-PMD), riscv Sv39 (NAPOT).
using TestedFormats = hugepte::TypeList<hugepte::X86_4Level, hugepte::Arm64_4K_48, hugepte::Sv39>;
#elif HUGEPTE_TEST_FORMATS_GEOMETRIES
using TestedFormats = hugepte::TypeList<hugepte::X86_4Level, hugepte::Arm64_4K_48,
                                        hugepte::Arm64_16K_47, hugepte::Arm64_64K_42,
                                        hugepte::Sv39>;
#elif HUGEPTE_TEST_FORMATS_NATIVE
// Under qemu-user what the run adds is the target's code generation (atomics, memory order,
// inlining), which the formats of its own architecture exercise as well as all of them.
#if defined(__aarch64__)
using TestedFormats = hugepte::TypeList<hugepte::Arm64_4K_48, hugepte::Arm64_16K_47, hugepte::Arm64_64K_42>;
#elif defined(__riscv)
using TestedFormats = hugepte::TypeList<hugepte::Sv39, hugepte::Sv57>;
#else
using TestedFormats = hugepte::TypeList<hugepte::X86_4Level, hugepte::X86_5Level>;
#endif
#else
using TestedFormats = hugepte::AllFormats;
#endif

// The fake format followed by the real formats under test; Extra... go before them.
template <class... Extra>
using AllWithFake = typename ToGtest<TestedFormats, Extra..., hugepte::fake::FakeFormat>::type;

// For suites whose behaviour depends on a format's geometry (page size, leaf sizes, groups) but
// not on its VA width or number of levels - the process-level mm suites: mmap, fork, access,
// reservations: one format per geometry even where the preset runs every format, else the
// preset's own narrower list. (Each format is a full instantiation of the mm model: compile
// time.)
#if HUGEPTE_TEST_FORMATS_ARCHES || HUGEPTE_TEST_FORMATS_GEOMETRIES || HUGEPTE_TEST_FORMATS_NATIVE
using GeometryFormats = TestedFormats;
#else
using GeometryFormats = hugepte::TypeList<hugepte::X86_4Level, hugepte::Arm64_4K_48,
                                          hugepte::Arm64_16K_47, hugepte::Arm64_64K_42,
                                          hugepte::Sv39>;
#endif
template <class... Extra>
using GeometriesWithFake =
    typename ToGtest<GeometryFormats, Extra..., hugepte::fake::FakeFormat>::type;

// Stage-2 formats (the secondary MMU) for suites over the walker and range operations: on the
// host preset one per root shape, in the presets that build the tests again the one with the
// most unusual root (arm64 16K: 16 concatenated pages), one of the target's own under
// qemu-user.
#if HUGEPTE_TEST_FORMATS_NATIVE
#if defined(__aarch64__)
using Stage2Formats = hugepte::TypeList<hugepte::Arm64S2_16K>;
#elif defined(__riscv)
using Stage2Formats = hugepte::TypeList<hugepte::Sv39x4>;
#else
using Stage2Formats = hugepte::TypeList<hugepte::Ept4>;
#endif
#elif HUGEPTE_TEST_FORMATS_ARCHES || HUGEPTE_TEST_FORMATS_GEOMETRIES
using Stage2Formats = hugepte::TypeList<hugepte::Arm64S2_16K>;  // 16 concatenated root pages
#else
// One per root shape: EPT's one page, arm64's 16 concatenated pages, riscv's 16 KiB root (NPT,
// the other granules and depths differ only in encoding, sizes or depth, which the format and
// stage-1 suites cover).
using Stage2Formats = hugepte::TypeList<hugepte::Ept4, hugepte::Arm64S2_16K, hugepte::Sv39x4>;
#endif
using Stage2 = typename ToGtest<Stage2Formats>::type;

struct FormatName {
  template <class F>
  static std::string GetName(int) {
    std::string s = std::string(F::arch) + "_" + F::mode;
    for (char& c : s)
      if (c == '-' || c == '.' || c == '/') c = '_';
    return s;
  }
};

}  // namespace hpt_typed
