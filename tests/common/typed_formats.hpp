// typed_formats.hpp - GoogleTest typed suites over every format: the fake exemplar first, then
// every real one (hugepte::AllFormats), with readable type names (x86_64_4level, arm64_16k_47, ...).
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

// The fake format followed by every real format; Extra... go before them.
template <class... Extra>
using AllWithFake = typename ToGtest<hugepte::AllFormats, Extra..., hugepte::fake::FakeFormat>::type;

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
