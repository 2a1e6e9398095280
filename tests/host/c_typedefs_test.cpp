// A C program's own integer typedefs live beside the library under `using namespace`: the library
// declares no u64/u32/u8 of its own (entry.hpp), so these names are not ambiguous. The kernel's
// spelling (unsigned long long) is the one that differs from uint64_t on LP64.
#include <gtest/gtest.h>

#include "hugepte/mm/mm.hpp"

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned char u8;

using namespace hugepte;
using namespace hugepte::mm;

namespace {

TEST(CTypedefs, KernelStyleIntegerTypedefsCoexistWithUsingNamespaceHugepte) {
  const u64 va = u64{1} << 30;
  const u32 mode = kRegMissing;
  const u8 small = 7;
  EXPECT_EQ(va >> 30, 1u);
  EXPECT_EQ(mode, kRegMissing);
  EXPECT_EQ(small, 7);
  EXPECT_TRUE(aligned(va, 30));
}

}  // namespace
