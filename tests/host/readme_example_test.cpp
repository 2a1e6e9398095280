// readme_example_test.cpp - the README's example, compiled and run: drive the mm model like a
// process (map, register with userfaultfd, fault, read the message, resolve, access again).
// Keep it identical to the README's code block.
#include <gtest/gtest.h>

// --- README example begins ---
#include "hugepte/arch/x86.hpp"
#include "hugepte/env/host.hpp"
#include "hugepte/mm/mm.hpp"

namespace hm = hugepte::mm;
using X86 = hugepte::X86Format<4>;  // x86-64, 4-level paging
using Mm = hm::Mm<X86, hugepte::host::EnvFor<X86>, hugepte::host::TlbModel, hugepte::host::Folios>;

bool readme_example() {
  hugepte::host::EnvFor<X86> tables;  // where table pages live
  hugepte::host::TlbModel tlb;        // what the CPU caches, and the flushes it gets
  hugepte::host::Folios pages;        // where folios live
  Mm::Mem mem{pages, 1024, hm::Policy::s0};
  Mm mm{mem, tables, tlb};
  if (mm.init() != hugepte::Err::ok) return false;

  const std::uint64_t base = std::uint64_t{1} << 32, page = 4096;
  hm::VmaSpec anon;  // mmap(base, 4 pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
  anon.start = base;
  anon.len = 4 * page;
  if (!mm.mmap(anon)) return false;
  if (mm.uffd_api(hm::kFeatThreadId) != hugepte::Err::ok) return false;
  if (!mm.uffd_register(base, 4 * page, hm::kRegMissing)) return false;

  // Thread 7 writes to the second page: it blocks in a userfault.
  hm::AccessResult r = mm.access(base + page + 8, hm::Access::write, /*tid=*/7);
  if (r.kind != hm::AccessKind::blocked || !mm.uffd_blocked(7)) return false;

  // The monitor reads the message, resolves the fault with UFFDIO_COPY, which wakes thread 7.
  hugepte::Result<hm::UffdMsg> msg = mm.uffd_read();
  if (!msg || msg.value.address != base + page || msg.value.flags != hm::kMsgWrite ||
      msg.value.ptid != 7)
    return false;
  static const unsigned char data[4096] = {42};
  hm::UffdResult copied = mm.uffd_copy(base + page, data, page, 0);
  if (copied.err != hugepte::Err::ok || copied.done != page || mm.uffd_blocked(7)) return false;

  // Thread 7 retries its access: it goes through now, to the copied page, with no fault.
  r = mm.access(base + page + 8, hm::Access::write, 7);
  return r.kind == hm::AccessKind::ok && r.faults == 0 &&
         (mm.pagemap(base + page) & hm::kPmPresent) != 0;
}
// --- README example ends ---

TEST(ReadmeExample, RegisterFaultReadTheMessageResolveAndAccessAgain) { EXPECT_TRUE(readme_example()); }
