// inject_failure.cpp - with -DHUGEPTE_INJECT_FAILURE=ON every ring carries this one failing check,
// so anyone can see that a failure turns the run red (host, qemu-user and every system image).
#include "hpt_test.hpp"

#ifdef HUGEPTE_INJECT_FAILURE
HPT_CASE(harness, InjectedFailureTurnsTheRunRed) {
  HPT_EXPECT_EQ(1 + 1, 3);
}
#endif
