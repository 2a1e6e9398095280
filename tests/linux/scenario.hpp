// scenario.hpp - the linux ring's scenarios, written once and run by two backends: real system
// calls on Debian's Linux 6.1 under qemu-system-x86_64 (linux_init.cpp, the initramfs' /init)
// and the mm model (model_runner.cpp). Each scenario starts from a fresh address space (Linux:
// a forked child) with the hugetlb pools it asks for, and records one line per step; both sides
// print one JSON line per scenario and compare.py reports every difference.
//
// A backend B provides, with addresses as offsets from B::kBase (1 GiB aligned):
//   Ret pools(uint64_t pages_2m)                      the 2M pool's free pages (the 1G pool is 1)
//   Ret map_anon(off, len, prot)                 MAP_PRIVATE|MAP_ANONYMOUS
//   Ret map_file(off, len, Backing, shared, file_pages)   a memfd of that many pages (shmem,
//                                                hugetlb 2M or 1G), ftruncated, mapped at 0
//   Ret map_alias(off, len)                      a second shared mapping of the last file
//   Ret map_alias_private(off, len), map_alias_private_noreserve(off, len)   private ones
//   Ret map_file_noreserve(off, len, Backing, shared, file_pages)   map_file with MAP_NORESERVE
//   Ret fallocate(offset, len), punch_hole(offset, len)   on the last file (PUNCH_HOLE|KEEP_SIZE)
//   Ret pagemap(off)                             /proc/self/pagemap of the page at off, as named
//                                                bits (pagemap_bits): soft-dirty left out
//   Ret maps()                                   the VMAs (/proc/self/maps) as "+start-+end"
//   Ret meminfo()                                the 2M pool: "free=N rsvd=N" (free_hugepages,
//                                                resv_hugepages)
//   Ret munmap(off, len), madvise_dontneed(off, len), mprotect(off, len, prot)
//   Ret mremap(off, old_len, new_len, flags, new_off)   "OK at=+OFF" (new_off: MREMAP_FIXED's)
//   Ret madvise_hwpoison(off)                    MADV_HWPOISON of the page at off (memory_failure)
//   Ret touch(off, Access)                       the access as a CPU does it: ok, SIGBUS (with
//                                                lsb if any), SIGSEGV, or userfault (the
//                                                thread waits; a later step may wake it)
//   Ret uffd_api(features), uffd_api_again(features)
//   Ret uffd_register(off, len, mode), uffd_unregister(off, len)
//   Ret uffd_copy/zeropage/continue(off, len, mode), uffd_writeprotect(off, len, mode)
//   Ret uffd_copy_from(off, src_off, len, mode)  UFFDIO_COPY from the process's memory at src_off
//   Ret uffd_poison(off, len, mode)              UFFDIO_POISON (6.6+; EINVAL before)
//   Ret uffd_wake(off, len), uffd_read()         the oldest message, or EAGAIN
//   Ret uffd_close(), uffd_open()                close(uffd); userfaultfd(2) for a new one
//   Ret uffd2_open(), uffd2_api(features), uffd2_register(off, len, mode), uffd2_read(),
//       uffd2_copy(off, len, mode), uffd2_wake(off, len), uffd2_close()   a second
//                                                userfaultfd over the same address space
//   Ret fork_child()                             fork(2): a child process that waits for commands
//   Ret child_touch(off, Access), child_pagemap(off), child_exit()   run in the child
//   Ret child_uffd_api(features), child_uffd_read(), child_uffd_copy(off, len, mode),
//       child_uffd_writeprotect(off, len, mode)   on the child's userfaultfd, which the FORK
//                                                message (UFFD_FEATURE_EVENT_FORK) hands over
//   void settle()                                after each step: threads it woke run their
//                                                access again (Linux: they do by themselves)
// Ret carries the error name (errno spelling) and the values the step reports.
#pragma once

#include <stdint.h>
#include <cstdio>
#include <string>
#include <vector>

namespace hpt_linux {

enum class Backing { shmem, huge2m, huge1g };
enum class Access { read, write };

inline constexpr uint64_t kKiB = 1024, kMiB = kKiB * kKiB, kGiB = kMiB * kKiB, kPage = 4 * kKiB;
inline constexpr uint64_t k2M = 2 * kMiB;

// UAPI values (linux/userfaultfd.h), which the model uses as well.
inline constexpr uint64_t kFeatPagefaultFlagWp = 1u << 0, kFeatEventFork = 1u << 1,
                     kFeatEventRemap = 1u << 2,
                     kFeatEventRemove = 1u << 3, kFeatEventUnmap = 1u << 6,
                     kFeatMissingHugetlbfs = 1u << 4, kFeatMissingShmem = 1u << 5,
                     kFeatSigbus = 1u << 7, kFeatThreadId = 1u << 8, kFeatMinorHugetlbfs = 1u << 9,
                     kFeatMinorShmem = 1u << 10, kFeatExactAddress = 1u << 11,
                     kFeatWpHugetlbfsShmem = 1u << 12, kFeatWpUnpopulated = 1u << 13,
                     kFeatPoison = 1u << 14;
inline constexpr unsigned kRegMissing = 1, kRegWp = 2, kRegMinor = 4;
inline constexpr unsigned kModeDontwake = 1, kModeWp = 2;     // COPY / CONTINUE
inline constexpr unsigned kWpModeWp = 1, kWpModeDontwake = 2;  // WRITEPROTECT
inline constexpr unsigned kProtRead = 1, kProtWrite = 2;
inline constexpr unsigned kMremapMaymove = 1, kMremapFixed = 2, kMremapDontunmap = 4;

struct Ret {
  std::string err = "OK";
  std::string detail;  // what the step reports besides its error ("done=4096", "ioctls=0x..")
  std::string text() const { return detail.empty() ? err : err + " " + detail; }
};

inline std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}
inline std::string dec(long long v) { return std::to_string(v); }

// A pagemap value as the step records it: the flags by name, "pfn" for a present entry's
// non-zero frame (a PFN's value differs between kernel and model, its presence does not).
inline std::string pagemap_bits(uint64_t pm) {
  std::string s;
  auto add = [&](const char* n) { s += s.empty() ? n : std::string(" ") + n; };
  if (pm >> 63 & 1) add("present");
  if (pm >> 62 & 1) add("swap");
  if (pm >> 61 & 1) add("file");
  if (pm >> 57 & 1) add("uffd_wp");
  if (pm >> 56 & 1) add("exclusive");
  if ((pm >> 63 & 1) && (pm & ((uint64_t{1} << 55) - 1)) != 0) add("pfn");
  return s.empty() ? "none" : s;
}

// One scenario's record: "name" and its steps.
struct Rec {
  std::string name;
  std::vector<std::string> steps;
  void step(const std::string& what, const Ret& r) { steps.push_back(what + "=" + r.text()); }
  std::string json() const {
    std::string s = "{\"scenario\": \"" + name + "\", \"steps\": [";
    for (std::size_t i = 0; i < steps.size(); ++i) s += (i ? ", \"" : "\"") + steps[i] + "\"";
    return s + "]}";
  }
};

// --- the scenarios --------------------------------------------------------------------------

template <class B>
struct Scenarios {
  // Each scenario: a name and a body that runs against a fresh backend.
  using Body = void (*)(B&, Rec&);
  struct Entry {
    const char* name;
    Body body;
  };

// One step: the call, its record, then the backend settles (threads a step woke resume).
#define HPT_STEP(r, what, call) ((r).step(what, (call)), b.settle())

  // The prelude most anonymous scenarios share: four pages mapped, UFFDIO_API, then REGISTER
  // of all four (recorded as the step `what`).
  static void anon_registered(B& b, Rec& r, uint64_t features, const char* what, unsigned mode) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(features));
    HPT_STEP(r, what, b.uffd_register(0, 4 * kPage, mode));
  }

  // --- UFFDIO_API ---
  static void api_plain(B& b, Rec& r) { HPT_STEP(r, "api(0)", b.uffd_api(0)); }
  static void api_twice(B& b, Rec& r) {
    HPT_STEP(r, "api(0)", b.uffd_api(0));
    HPT_STEP(r, "api(0) again", b.uffd_api_again(0));
  }
  static void api_hugetlb_shmem_features(B& b, Rec& r) {
    HPT_STEP(r, "api(missing hugetlbfs|shmem, minor hugetlbfs|shmem)",
             b.uffd_api(kFeatMissingHugetlbfs | kFeatMissingShmem | kFeatMinorHugetlbfs |
                        kFeatMinorShmem));
  }
  static void api_exact_address(B& b, Rec& r) {
    HPT_STEP(r, "api(exact address)", b.uffd_api(kFeatExactAddress));
  }
  static void api_wp_hugetlbfs_shmem(B& b, Rec& r) {
    HPT_STEP(r, "api(wp hugetlbfs shmem)", b.uffd_api(kFeatWpHugetlbfsShmem));
  }
  static void api_unknown_bit(B& b, Rec& r) {
    HPT_STEP(r, "api(bit 40)", b.uffd_api(uint64_t{1} << 40));
  }

  // --- UFFDIO_REGISTER / UNREGISTER validation ---
  static void register_before_api(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "register missing", b.uffd_register(0, 4 * kPage, kRegMissing));
  }
  static void register_anon_missing(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
  }
  static void register_anon_wp(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing|wp", kRegMissing | kRegWp);
  }
  static void register_zero_len(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register len 0", b.uffd_register(0, 0, kRegMissing));
  }
  static void register_misaligned(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register start+1", b.uffd_register(1, kPage, kRegMissing));
    HPT_STEP(r, "register len+1", b.uffd_register(0, kPage + 1, kRegMissing));
  }
  static void register_no_mode(B& b, Rec& r) {
    anon_registered(b, r, 0, "register mode 0", 0);
    HPT_STEP(r, "register mode 8", b.uffd_register(0, 4 * kPage, 8));
  }
  static void register_no_vma(B& b, Rec& r) {
    // A mapping above, as a process always has one (its stack): find_vma finds it, past end.
    HPT_STEP(r, "mmap anon above", b.map_anon(kGiB, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register where nothing is mapped", b.uffd_register(0, 4 * kPage, kRegMissing));
  }
  static void register_with_hole(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap anon after a hole", b.map_anon(8 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register over both", b.uffd_register(0, 12 * kPage, kRegMissing));
    HPT_STEP(r, "touch first", b.touch(kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch second", b.touch(9 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "copy across the hole", b.uffd_copy(2 * kPage, 8 * kPage, 0));
  }
  static void register_part_of_vma(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 8 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register the middle", b.uffd_register(2 * kPage, 2 * kPage, kRegMissing));
    HPT_STEP(r, "touch inside", b.touch(3 * kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch before", b.touch(kPage, Access::write));
    HPT_STEP(r, "touch after", b.touch(5 * kPage, Access::write));
    HPT_STEP(r, "copy inside", b.uffd_copy(2 * kPage, kPage, 0));
    HPT_STEP(r, "copy outside", b.uffd_copy(6 * kPage, kPage, 0));
    HPT_STEP(r, "copy across the edge", b.uffd_copy(3 * kPage, 2 * kPage, 0));
    HPT_STEP(r, "unregister one page of it", b.uffd_unregister(2 * kPage, kPage));
    HPT_STEP(r, "touch unregistered", b.touch(2 * kPage + 8, Access::read));
  }
  static void unregister_validation(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap anon above", b.map_anon(kGiB, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "unregister before api", b.uffd_unregister(0, 4 * kPage));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "unregister len 0", b.uffd_unregister(0, 0));
    HPT_STEP(r, "unregister misaligned", b.uffd_unregister(1, kPage));
    HPT_STEP(r, "unregister where nothing is mapped", b.uffd_unregister(8 * kPage, kPage));
    HPT_STEP(r, "unregister what was never registered", b.uffd_unregister(0, 4 * kPage));
  }
  static void register_hugetlb_misaligned(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register 4K into it", b.uffd_register(kPage, k2M, kRegMissing));
    HPT_STEP(r, "register 2M", b.uffd_register(0, k2M, kRegMissing));
  }
  static void register_hugetlb_minor(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorHugetlbfs));
    HPT_STEP(r, "register minor", b.uffd_register(0, 2 * k2M, kRegMinor));
  }
  static void register_shmem_minor(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem));
    HPT_STEP(r, "register minor", b.uffd_register(0, 16 * kPage, kRegMinor));
  }
  static void register_anon_minor(B& b, Rec& r) {
    anon_registered(b, r, 0, "register minor on anon", kRegMinor);
  }
  static void unregister_plain(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "unregister", b.uffd_unregister(0, 4 * kPage));
    HPT_STEP(r, "touch", b.touch(0, Access::write));
  }

  // --- MISSING faults and their resolution ---
  static void missing_anon_read_fault(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "touch read +0x1234", b.touch(0x1234, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg again", b.uffd_read());
  }
  static void missing_anon_write_fault_exact(B& b, Rec& r) {
    anon_registered(b, r, kFeatExactAddress, "register", kRegMissing);
    HPT_STEP(r, "touch write +0x2345", b.touch(0x2345, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void missing_anon_copy(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "copy 2 pages", b.uffd_copy(0, 2 * kPage, 0));
    HPT_STEP(r, "copy again", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "copy over 1 present + 1 missing", b.uffd_copy(kPage, 2 * kPage, 0));
    HPT_STEP(r, "touch copied", b.touch(0, Access::write));
    HPT_STEP(r, "touch missing", b.touch(3 * kPage, Access::read));
  }
  static void missing_anon_copy_invalid(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "copy len 0", b.uffd_copy(0, 0, 0));
    HPT_STEP(r, "copy misaligned", b.uffd_copy(1, kPage, 0));
    HPT_STEP(r, "copy mode 8", b.uffd_copy(0, kPage, 8));
    HPT_STEP(r, "copy beyond the range", b.uffd_copy(4 * kPage, kPage, 0));
  }
  static void missing_anon_zeropage(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "zeropage", b.uffd_zeropage(0, 2 * kPage, 0));
    HPT_STEP(r, "zeropage again", b.uffd_zeropage(0, kPage, 0));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
  }
  static void missing_fault_woken_by_copy(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "copy", b.uffd_copy(kPage, kPage, 0));
    HPT_STEP(r, "touch again", b.touch(kPage, Access::write));
  }
  static void missing_hugetlb_2m(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, 2 * k2M, kRegMissing));
    HPT_STEP(r, "touch +0x3000", b.touch(0x3000, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "copy 4K", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "copy 2M", b.uffd_copy(0, k2M, 0));
    HPT_STEP(r, "copy 2M again", b.uffd_copy(0, k2M, 0));
    HPT_STEP(r, "zeropage 2M", b.uffd_zeropage(k2M, k2M, 0));
  }
  static void missing_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, 16 * kPage, kRegMissing));
    HPT_STEP(r, "touch", b.touch(5 * kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "copy", b.uffd_copy(5 * kPage, kPage, 0));
    HPT_STEP(r, "zeropage", b.uffd_zeropage(6 * kPage, kPage, 0));
    HPT_STEP(r, "touch zero page", b.touch(6 * kPage, Access::read));
  }

  // --- MINOR faults and CONTINUE ---
  static void minor_hugetlb_continue(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "mmap alias", b.map_alias(4 * k2M, 2 * k2M));
    HPT_STEP(r, "populate through the alias", b.touch(4 * k2M, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorHugetlbfs));
    HPT_STEP(r, "register minor", b.uffd_register(0, 2 * k2M, kRegMinor));
    HPT_STEP(r, "touch cached page", b.touch(0x5000, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "continue 4K", b.uffd_continue(0, kPage, 0));
    HPT_STEP(r, "continue 2M", b.uffd_continue(0, k2M, 0));
    HPT_STEP(r, "continue 2M again", b.uffd_continue(0, k2M, 0));
    HPT_STEP(r, "continue uncached", b.uffd_continue(k2M, k2M, 0));
    HPT_STEP(r, "touch uncached", b.touch(k2M, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void minor_shmem_continue(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "mmap alias", b.map_alias(k2M, 16 * kPage));
    HPT_STEP(r, "populate through the alias", b.touch(k2M + 3 * kPage, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem));
    HPT_STEP(r, "register minor", b.uffd_register(0, 16 * kPage, kRegMinor));
    HPT_STEP(r, "touch cached", b.touch(3 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "continue", b.uffd_continue(3 * kPage, kPage, 0));
    HPT_STEP(r, "continue uncached", b.uffd_continue(4 * kPage, kPage, 0));
    HPT_STEP(r, "touch uncached", b.touch(4 * kPage, Access::read));
  }

  // --- WP ---
  static void wp_anon(B& b, Rec& r) {
    anon_registered(b, r, kFeatPagefaultFlagWp, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy", b.uffd_copy(0, 2 * kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * kPage, kWpModeWp));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "resolve", b.uffd_writeprotect(0, 2 * kPage, 0));
    HPT_STEP(r, "touch write again", b.touch(kPage, Access::write));
  }
  static void wp_copy_mode_wp(B& b, Rec& r) {
    anon_registered(b, r, kFeatPagefaultFlagWp, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy mode wp", b.uffd_copy(0, kPage, kModeWp));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void wp_not_registered(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, kPage, kWpModeWp));
  }
  static void wp_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register missing|wp", b.uffd_register(0, 2 * k2M, kRegMissing | kRegWp));
    HPT_STEP(r, "copy 2M", b.uffd_copy(0, k2M, 0));
    HPT_STEP(r, "writeprotect 4K", b.uffd_writeprotect(0, kPage, kWpModeWp));
    HPT_STEP(r, "writeprotect 2M", b.uffd_writeprotect(0, k2M, kWpModeWp));
    HPT_STEP(r, "touch write", b.touch(0x7000, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "resolve", b.uffd_writeprotect(0, k2M, 0));
    HPT_STEP(r, "touch write again", b.touch(0x7000, Access::write));
  }

  // --- hugetlb without userfaultfd ---
  static void hugetlb_first_touch(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "touch", b.touch(0x1000, Access::write));
    HPT_STEP(r, "touch second", b.touch(k2M, Access::read));
  }
  static void hugetlb_1g_first_touch(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(0));
    HPT_STEP(r, "mmap hugetlb 1G", b.map_file(0, kGiB, Backing::huge1g, true, 1));
    HPT_STEP(r, "touch", b.touch(0x12345000, Access::write));
  }
  static void hugetlb_misaligned_mmap(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M at +4K", b.map_file(kPage, k2M, Backing::huge2m, true, 1));
  }
  static void anon_touch_and_prot(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon ro", b.map_anon(0, 4 * kPage, kProtRead));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "touch outside", b.touch(8 * kPage, Access::read));
  }
  static void dontneed_anon(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "copy", b.uffd_copy(0, 4 * kPage, 0));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(kPage, kPage));
    HPT_STEP(r, "touch dropped", b.touch(kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch kept", b.touch(2 * kPage, Access::read));
  }
  static void dontneed_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "touch", b.touch(0, Access::write));
    HPT_STEP(r, "dontneed 2M", b.madvise_dontneed(0, k2M));
    HPT_STEP(r, "dontneed misaligned", b.madvise_dontneed(kPage, k2M));
  }
  // The end of a hugetlb DONTNEED is rounded down to the huge page: 4K does nothing, 2M+4K
  // drops one page.
  static void dontneed_hugetlb_rounds_down(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, 2 * k2M, kRegMissing));
    HPT_STEP(r, "copy both", b.uffd_copy(0, 2 * k2M, 0));
    HPT_STEP(r, "dontneed 4K", b.madvise_dontneed(0, kPage));
    HPT_STEP(r, "touch it", b.touch(0, Access::read));
    HPT_STEP(r, "dontneed 2M+4K", b.madvise_dontneed(0, k2M + kPage));
    HPT_STEP(r, "touch the first", b.touch(0, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch the second", b.touch(k2M, Access::read));
  }

  // --- more faults, messages and markers ---
  static void copy_partial_progress(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "copy the second page", b.uffd_copy(kPage, kPage, 0));
    HPT_STEP(r, "copy three pages over it", b.uffd_copy(0, 3 * kPage, 0));
    HPT_STEP(r, "zeropage three pages over it", b.uffd_zeropage(0, 3 * kPage, 0));
  }
  static void two_faults_two_messages(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "touch third", b.touch(2 * kPage, Access::write));
    HPT_STEP(r, "touch first", b.touch(0, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void zeropage_then_write(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "zeropage", b.uffd_zeropage(0, kPage, 0));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "copy over it", b.uffd_copy(0, kPage, 0));
  }
  static void wp_on_none_anon(B& b, Rec& r) {
    anon_registered(b, r, kFeatPagefaultFlagWp, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "writeprotect unpopulated", b.uffd_writeprotect(0, 4 * kPage, kWpModeWp));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void wp_then_unregister(B& b, Rec& r) {
    anon_registered(b, r, kFeatPagefaultFlagWp, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, kPage, kWpModeWp));
    HPT_STEP(r, "unregister", b.uffd_unregister(0, 4 * kPage));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void wp_marker_survives_dontneed_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register missing|wp", b.uffd_register(0, 16 * kPage, kRegMissing | kRegWp));
    HPT_STEP(r, "copy", b.uffd_copy(0, 2 * kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * kPage, kWpModeWp));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, 2 * kPage));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void wp_marker_survives_dontneed_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register missing|wp", b.uffd_register(0, k2M, kRegMissing | kRegWp));
    HPT_STEP(r, "copy", b.uffd_copy(0, k2M, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, k2M, kWpModeWp));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, k2M));
    HPT_STEP(r, "touch write", b.touch(0x3000, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void shmem_missing_after_dontneed(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, 16 * kPage, kRegMissing));
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, kPage));
    HPT_STEP(r, "touch: the page cache still has it", b.touch(0, Access::read));
  }
  static void minor_shmem_uncached_maps_normally(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem));
    HPT_STEP(r, "register minor", b.uffd_register(0, 16 * kPage, kRegMinor));
    HPT_STEP(r, "touch uncached", b.touch(kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void missing_hugetlb_private(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, k2M, kRegMissing));
    HPT_STEP(r, "touch", b.touch(0x4000, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "copy", b.uffd_copy(0, k2M, 0));
    HPT_STEP(r, "touch write", b.touch(0x4000, Access::write));
  }
  static void shmem_private_cow(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem private", b.map_file(0, 16 * kPage, Backing::shmem, false, 16));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMissingShmem));
    HPT_STEP(r, "register", b.uffd_register(0, 16 * kPage, kRegMissing));
    HPT_STEP(r, "touch another", b.touch(4 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }

  // --- memory failure (MADV_HWPOISON: memory_failure on the page's PFN) ---
  static void hwpoison_anon(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "touch write other", b.touch(2 * kPage, Access::write));
    HPT_STEP(r, "hwpoison", b.madvise_hwpoison(kPage));
    HPT_STEP(r, "touch poisoned", b.touch(kPage + 8, Access::read));
    HPT_STEP(r, "touch other", b.touch(2 * kPage, Access::read));
  }
  static void hwpoison_hugetlb_2m(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "touch write second", b.touch(k2M, Access::write));
    HPT_STEP(r, "hwpoison a 4K page of the first", b.madvise_hwpoison(0x5000));
    HPT_STEP(r, "touch another 4K of the first", b.touch(0x100000, Access::read));
    HPT_STEP(r, "touch the second", b.touch(k2M, Access::read));
  }
  static void hwpoison_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(3 * kPage, Access::write));
    HPT_STEP(r, "hwpoison", b.madvise_hwpoison(3 * kPage));
    HPT_STEP(r, "touch poisoned", b.touch(3 * kPage, Access::read));
  }

  // --- gaps the model still has (tests/linux/known-differences.txt) ---
  static void hugetlb_reservation_shared(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(0));
    HPT_STEP(r, "mmap hugetlb 2M shared with an empty pool",
             b.map_file(0, k2M, Backing::huge2m, true, 1));
  }
  static void hugetlb_reservation_private(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(0));
    HPT_STEP(r, "mmap hugetlb 2M private with an empty pool",
             b.map_file(0, k2M, Backing::huge2m, false, 1));
  }
  static void hugetlb_noreserve_empty_pool(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(0));
    HPT_STEP(r, "mmap noreserve with an empty pool",
             b.map_file_noreserve(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch", b.touch(0, Access::read));
  }
  static void hugetlb_noreserve_cannot_take_a_reserved_page(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(1));
    HPT_STEP(r, "mmap reserving", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "mmap noreserve", b.map_file_noreserve(4 * k2M, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch noreserve", b.touch(4 * k2M, Access::write));
    HPT_STEP(r, "touch reserving", b.touch(0, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void hugetlb_reservation_counts_shared(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(3));
    HPT_STEP(r, "mmap 2 pages shared", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch the first", b.touch(0x1000, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "mmap alias", b.map_alias(4 * k2M, 2 * k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "munmap the first mapping", b.munmap(0, 2 * k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch the second through the alias", b.touch(5 * k2M, Access::read));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void hugetlb_reservation_counts_private(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap 3 pages private", b.map_file(0, 3 * k2M, Backing::huge2m, false, 3));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch the third", b.touch(2 * k2M, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "munmap the third", b.munmap(2 * k2M, k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "munmap the first", b.munmap(0, k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "munmap the rest", b.munmap(k2M, k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void hugetlb_private_cow_takes_the_reservation(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap shared", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "populate", b.touch(0, Access::write));
    HPT_STEP(r, "mmap the file private", b.map_alias_private(4 * k2M, k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch read", b.touch(4 * k2M, Access::read));
    HPT_STEP(r, "touch write", b.touch(4 * k2M + 0x2000, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void hugetlb_private_cow_empty_pool(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(1));
    HPT_STEP(r, "mmap shared", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "populate", b.touch(0, Access::write));
    HPT_STEP(r, "mmap the file private, noreserve", b.map_alias_private_noreserve(4 * k2M, k2M));
    HPT_STEP(r, "touch read", b.touch(4 * k2M, Access::read));
    HPT_STEP(r, "touch write", b.touch(4 * k2M, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void hugetlb_fallocate_takes_reservations(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap 2 pages shared", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "fallocate both", b.fallocate(0, 2 * k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch", b.touch(k2M, Access::read));
  }
  static void hugetlb_fallocate_short_pool(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap 2 of 3 pages shared", b.map_file(0, 2 * k2M, Backing::huge2m, true, 3));
    HPT_STEP(r, "fallocate 3", b.fallocate(0, 3 * k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void hugetlb_punch_hole_reservations(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(3));
    HPT_STEP(r, "mmap 2 pages shared", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "touch the first", b.touch(0, Access::write));
    HPT_STEP(r, "punch both", b.punch_hole(0, 2 * k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch the first again", b.touch(0, Access::read));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch the second", b.touch(k2M, Access::read));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void hugetlb_punch_hole_partial(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap 2 pages shared", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "touch both", b.touch(0, Access::write));
    HPT_STEP(r, "touch both", b.touch(k2M, Access::write));
    HPT_STEP(r, "punch 4K", b.punch_hole(0x1000, 0x1000));
    HPT_STEP(r, "punch across the middle", b.punch_hole(k2M - 0x1000, 0x2000));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "punch beyond the end", b.punch_hole(4 * k2M, k2M));
    HPT_STEP(r, "punch len 0", b.punch_hole(0, 0));
    HPT_STEP(r, "punch the second and past the end", b.punch_hole(k2M, 4 * k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch the second", b.touch(k2M, Access::read));
  }
  static void shmem_punch_hole(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch", b.touch(2 * kPage, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMissingShmem));
    HPT_STEP(r, "register missing", b.uffd_register(0, 16 * kPage, kRegMissing));
    HPT_STEP(r, "punch it", b.punch_hole(2 * kPage, kPage));
    HPT_STEP(r, "touch it again", b.touch(2 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void hugetlb_mmap_extends_the_file(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap 2 pages of a 1-page file", b.map_file(0, 2 * k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "touch the second page", b.touch(k2M, Access::write));
  }
  static void munmap_part_of_vma(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 8 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "munmap the middle", b.munmap(2 * kPage, 2 * kPage));
    HPT_STEP(r, "touch it", b.touch(2 * kPage, Access::read));
    HPT_STEP(r, "touch after", b.touch(5 * kPage, Access::read));
  }
  static void wake_nothing(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "wake", b.uffd_wake(0, kPage));
    HPT_STEP(r, "wake len 0", b.uffd_wake(0, 0));
  }

  // --- what changed after 6.1 (the model's profile switches) ---
  static void api_wp_unpopulated(B& b, Rec& r) {
    HPT_STEP(r, "api(wp unpopulated)", b.uffd_api(kFeatWpUnpopulated));
  }
  static void api_poison(B& b, Rec& r) { HPT_STEP(r, "api(poison)", b.uffd_api(kFeatPoison)); }
  static void poison_ioctl(B& b, Rec& r) {
    anon_registered(b, r, 0, "register", kRegMissing);
    HPT_STEP(r, "poison", b.uffd_poison(0, kPage, 0));
  }
  static void continue_mode_wp(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "mmap alias", b.map_alias(k2M, 16 * kPage));
    HPT_STEP(r, "populate through the alias", b.touch(k2M, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem | kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register minor|wp", b.uffd_register(0, 16 * kPage, kRegMinor | kRegWp));
    HPT_STEP(r, "continue mode wp", b.uffd_continue(0, kPage, kModeWp));
    HPT_STEP(r, "continue", b.uffd_continue(0, kPage, 0));
  }

  // --- more range ioctls ---
  static void copy_unregistered(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap anon 2", b.map_anon(8 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, 4 * kPage, kRegMissing));
    HPT_STEP(r, "copy into the unregistered one", b.uffd_copy(8 * kPage, kPage, 0));
    HPT_STEP(r, "copy where nothing is mapped", b.uffd_copy(5 * kPage, kPage, 0));
    HPT_STEP(r, "zeropage mode wp", b.uffd_zeropage(0, kPage, kModeWp));
    HPT_STEP(r, "copy mode wp without wp", b.uffd_copy(0, kPage, kModeWp));
    HPT_STEP(r, "continue on anon", b.uffd_continue(0, kPage, 0));
  }
  static void register_again_other_mode(B& b, Rec& r) {
    anon_registered(b, r, kFeatPagefaultFlagWp, "register missing", kRegMissing);
    HPT_STEP(r, "register wp", b.uffd_register(0, 4 * kPage, kRegWp));
    HPT_STEP(r, "touch", b.touch(0, Access::write));
    HPT_STEP(r, "copy", b.uffd_copy(kPage, kPage, 0));
  }
  static void wp_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register missing|wp", b.uffd_register(0, 16 * kPage, kRegMissing | kRegWp));
    HPT_STEP(r, "copy", b.uffd_copy(0, 4 * kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 4 * kPage, kWpModeWp));
    HPT_STEP(r, "touch read", b.touch(kPage, Access::read));
    HPT_STEP(r, "touch write", b.touch(2 * kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "resolve", b.uffd_writeprotect(2 * kPage, kPage, 0));
    HPT_STEP(r, "touch write again", b.touch(2 * kPage, Access::write));
  }
  static void wp_validation(B& b, Rec& r) {
    anon_registered(b, r, 0, "register wp", kRegWp);
    HPT_STEP(r, "writeprotect len 0", b.uffd_writeprotect(0, 0, kWpModeWp));
    HPT_STEP(r, "writeprotect mode 4", b.uffd_writeprotect(0, kPage, 4));
    HPT_STEP(r, "writeprotect wp|dontwake",
             b.uffd_writeprotect(0, kPage, kWpModeWp | kWpModeDontwake));
    HPT_STEP(r, "writeprotect outside", b.uffd_writeprotect(4 * kPage, kPage, kWpModeWp));
  }
  static void minor_hugetlb_partial(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "mmap alias", b.map_alias(4 * k2M, 2 * k2M));
    HPT_STEP(r, "populate the first page", b.touch(4 * k2M, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorHugetlbfs));
    HPT_STEP(r, "register minor", b.uffd_register(0, 2 * k2M, kRegMinor));
    HPT_STEP(r, "continue both", b.uffd_continue(0, 2 * k2M, 0));
    HPT_STEP(r, "touch the second", b.touch(k2M, Access::read));
  }
  static void missing_hugetlb_exact(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "api", b.uffd_api(kFeatExactAddress));
    HPT_STEP(r, "register", b.uffd_register(0, k2M, kRegMissing));
    HPT_STEP(r, "touch write +0x12345", b.touch(0x12345, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void zeropage_shmem_twice(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, 16 * kPage, kRegMissing));
    HPT_STEP(r, "zeropage", b.uffd_zeropage(0, 2 * kPage, 0));
    HPT_STEP(r, "copy over it", b.uffd_copy(kPage, 2 * kPage, 0));
  }

  // --- UFFD_FEATURE_SIGBUS and UFFD_FEATURE_THREAD_ID ---
  static void api_sigbus_thread_id(B& b, Rec& r) {
    HPT_STEP(r, "api(sigbus|thread id)", b.uffd_api(kFeatSigbus | kFeatThreadId));
  }
  static void sigbus_mode_missing_anon(B& b, Rec& r) {
    anon_registered(b, r, kFeatSigbus, "register missing", kRegMissing);
    HPT_STEP(r, "touch read", b.touch(kPage, Access::read));
    HPT_STEP(r, "touch write", b.touch(2 * kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "zeropage", b.uffd_zeropage(kPage, kPage, 0));
    HPT_STEP(r, "touch read again", b.touch(kPage, Access::read));
    HPT_STEP(r, "touch write again", b.touch(kPage, Access::write));
  }
  static void sigbus_mode_wp(B& b, Rec& r) {
    anon_registered(b, r, kFeatSigbus, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy", b.uffd_copy(0, 2 * kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * kPage, kWpModeWp));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "resolve", b.uffd_writeprotect(0, 2 * kPage, 0));
    HPT_STEP(r, "touch write again", b.touch(kPage, Access::write));
  }
  static void sigbus_mode_minor_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "mmap alias", b.map_alias(k2M, 16 * kPage));
    HPT_STEP(r, "populate through the alias", b.touch(k2M + 3 * kPage, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem | kFeatSigbus));
    HPT_STEP(r, "register minor", b.uffd_register(0, 16 * kPage, kRegMinor));
    HPT_STEP(r, "touch cached", b.touch(3 * kPage, Access::read));
    HPT_STEP(r, "touch uncached", b.touch(4 * kPage, Access::read));
    HPT_STEP(r, "continue", b.uffd_continue(3 * kPage, kPage, 0));
    HPT_STEP(r, "touch cached again", b.touch(3 * kPage, Access::read));
  }
  static void sigbus_mode_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(kFeatSigbus));
    HPT_STEP(r, "register", b.uffd_register(0, 2 * k2M, kRegMissing));
    HPT_STEP(r, "touch", b.touch(0x3000, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "copy", b.uffd_copy(0, k2M, 0));
    HPT_STEP(r, "touch again", b.touch(0x3000, Access::write));
  }
  static void thread_id_messages(B& b, Rec& r) {
    anon_registered(b, r, kFeatThreadId, "register missing", kRegMissing);
    HPT_STEP(r, "touch 1", b.touch(kPage, Access::read));
    HPT_STEP(r, "touch 2", b.touch(3 * kPage + 8, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "wake both", b.uffd_wake(0, 4 * kPage));
  }
  static void thread_id_wp_exact(B& b, Rec& r) {
    anon_registered(b, r, kFeatThreadId | kFeatExactAddress, "register wp", kRegWp);
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 4 * kPage, kWpModeWp));
    HPT_STEP(r, "touch write again", b.touch(kPage + 0x10, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void thread_id_hugetlb_minor(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "mmap alias", b.map_alias(4 * k2M, k2M));
    HPT_STEP(r, "populate through the alias", b.touch(4 * k2M, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorHugetlbfs | kFeatThreadId));
    HPT_STEP(r, "register minor", b.uffd_register(0, k2M, kRegMinor));
    HPT_STEP(r, "touch", b.touch(0x5000, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }

  // --- /proc/self/pagemap in every state ---
  static void pagemap_anon(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "pagemap untouched", b.pagemap(0));
    HPT_STEP(r, "pagemap outside", b.pagemap(8 * kPage));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "pagemap zero page", b.pagemap(0));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "pagemap written", b.pagemap(0));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, kPage));
    HPT_STEP(r, "pagemap dropped", b.pagemap(0));
  }
  static void pagemap_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "pagemap read", b.pagemap(0));
    HPT_STEP(r, "mmap alias", b.map_alias(k2M, 16 * kPage));
    HPT_STEP(r, "touch through the alias", b.touch(k2M, Access::read));
    HPT_STEP(r, "pagemap mapped twice", b.pagemap(0));
    HPT_STEP(r, "pagemap alias", b.pagemap(k2M));
    HPT_STEP(r, "pagemap not faulted", b.pagemap(kPage));
  }
  static void pagemap_shmem_private(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem private", b.map_file(0, 16 * kPage, Backing::shmem, false, 16));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "pagemap file page", b.pagemap(0));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "pagemap private copy", b.pagemap(0));
  }
  static void pagemap_hugetlb_2m(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "pagemap untouched", b.pagemap(0));
    HPT_STEP(r, "touch", b.touch(0x3000, Access::read));
    HPT_STEP(r, "pagemap first page", b.pagemap(0));
    HPT_STEP(r, "pagemap inside", b.pagemap(0x1ff000));
    HPT_STEP(r, "mmap alias", b.map_alias(4 * k2M, 2 * k2M));
    HPT_STEP(r, "touch through the alias", b.touch(4 * k2M, Access::read));
    HPT_STEP(r, "pagemap mapped twice", b.pagemap(0x5000));
  }
  static void pagemap_hugetlb_private(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "pagemap anonymous huge page", b.pagemap(0x8000));
  }
  static void pagemap_hugetlb_1g(B& b, Rec& r) {
    HPT_STEP(r, "mmap hugetlb 1G", b.map_file(0, kGiB, Backing::huge1g, true, 1));
    HPT_STEP(r, "touch", b.touch(0x40000000 - kPage, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(0x12345000));
  }
  static void pagemap_uffd_wp_anon(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy", b.uffd_copy(0, 2 * kPage, 0));
    HPT_STEP(r, "pagemap copied", b.pagemap(0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 4 * kPage, kWpModeWp));
    HPT_STEP(r, "pagemap protected", b.pagemap(0));
    HPT_STEP(r, "pagemap protected none", b.pagemap(3 * kPage));
    HPT_STEP(r, "resolve", b.uffd_writeprotect(0, kPage, 0));
    HPT_STEP(r, "pagemap resolved", b.pagemap(0));
  }
  static void pagemap_wp_marker_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register wp", b.uffd_register(0, 16 * kPage, kRegWp));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 4 * kPage, kWpModeWp));
    HPT_STEP(r, "pagemap marker", b.pagemap(kPage));
    HPT_STEP(r, "touch read", b.touch(kPage, Access::read));
    HPT_STEP(r, "pagemap read under the marker", b.pagemap(kPage));
  }
  static void pagemap_wp_marker_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register wp", b.uffd_register(0, 2 * k2M, kRegWp));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * k2M, kWpModeWp));
    HPT_STEP(r, "pagemap marker", b.pagemap(k2M));
    HPT_STEP(r, "touch read", b.touch(k2M, Access::read));
    HPT_STEP(r, "pagemap protected", b.pagemap(k2M + kPage));
  }
  static void pagemap_hwpoison_anon(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "hwpoison", b.madvise_hwpoison(kPage));
    HPT_STEP(r, "pagemap poisoned", b.pagemap(kPage));
  }
  static void pagemap_hwpoison_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "hwpoison", b.madvise_hwpoison(0x3000));
    HPT_STEP(r, "pagemap poisoned", b.pagemap(0x3000));
    HPT_STEP(r, "pagemap the rest", b.pagemap(0x10000));
  }

  // --- close(uffd) ---
  static void close_wakes_and_unregisters(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "touch", b.touch(kPage, Access::write));
    HPT_STEP(r, "close", b.uffd_close());
    HPT_STEP(r, "touch another", b.touch(2 * kPage, Access::read));
    HPT_STEP(r, "pagemap the first", b.pagemap(kPage));
    HPT_STEP(r, "close again", b.uffd_close());
  }
  static void close_keeps_uffd_wp_bits(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy", b.uffd_copy(0, 2 * kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * kPage, kWpModeWp));
    HPT_STEP(r, "close", b.uffd_close());
    HPT_STEP(r, "pagemap protected", b.pagemap(0));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "pagemap written", b.pagemap(0));
    HPT_STEP(r, "pagemap the other", b.pagemap(kPage));
  }
  static void close_keeps_wp_markers_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register wp", b.uffd_register(0, 16 * kPage, kRegWp));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 4 * kPage, kWpModeWp));
    HPT_STEP(r, "close", b.uffd_close());
    HPT_STEP(r, "pagemap marker", b.pagemap(kPage));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "pagemap written", b.pagemap(kPage));
  }
  static void close_then_a_new_uffd(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "close", b.uffd_close());
    HPT_STEP(r, "open", b.uffd_open());
    HPT_STEP(r, "register before api", b.uffd_register(0, 4 * kPage, kRegMissing));
    HPT_STEP(r, "api", b.uffd_api(kFeatExactAddress));
    HPT_STEP(r, "register again", b.uffd_register(0, 4 * kPage, kRegMissing));
    HPT_STEP(r, "touch", b.touch(0x10, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void close_with_pending_messages(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, k2M, kRegMissing));
    HPT_STEP(r, "touch 1", b.touch(0x1000, Access::read));
    HPT_STEP(r, "touch 2", b.touch(0x2000, Access::write));
    HPT_STEP(r, "close", b.uffd_close());
    HPT_STEP(r, "touch 3", b.touch(0x3000, Access::read));
    HPT_STEP(r, "meminfo", b.meminfo());
  }

  // --- mprotect ---
  static void mprotect_anon(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 8 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "mprotect read-only", b.mprotect(0, 4 * kPage, kProtRead));
    HPT_STEP(r, "touch read", b.touch(kPage, Access::read));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "touch write after", b.touch(5 * kPage, Access::write));
    HPT_STEP(r, "mprotect read-write", b.mprotect(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write again", b.touch(kPage, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
  }
  static void mprotect_none(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "mprotect none", b.mprotect(0, 2 * kPage, 0));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "pagemap protnone", b.pagemap(0));
    HPT_STEP(r, "touch outside", b.touch(2 * kPage, Access::write));
    HPT_STEP(r, "mprotect back", b.mprotect(0, 2 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
  }
  static void mprotect_validation(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap anon after a hole", b.map_anon(8 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mprotect misaligned", b.mprotect(1, kPage, kProtRead));
    HPT_STEP(r, "mprotect len 0", b.mprotect(0, 0, kProtRead));
    HPT_STEP(r, "mprotect len 1", b.mprotect(0, 1, kProtRead));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "touch write the second", b.touch(kPage, Access::write));
    HPT_STEP(r, "mprotect in the hole", b.mprotect(5 * kPage, kPage, kProtRead));
    HPT_STEP(r, "mprotect across the hole", b.mprotect(2 * kPage, 8 * kPage, kProtRead));
    HPT_STEP(r, "touch write before the hole", b.touch(3 * kPage, Access::write));
    HPT_STEP(r, "touch write after the hole", b.touch(9 * kPage, Access::write));
  }
  static void mprotect_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "mprotect read-only", b.mprotect(0, 16 * kPage, kProtRead));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "mprotect read-write", b.mprotect(0, 16 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(0));
  }
  static void mprotect_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "mprotect 4K of it", b.mprotect(0, kPage, kProtRead));
    HPT_STEP(r, "mprotect to the middle of the second", b.mprotect(0, k2M + kPage, kProtRead));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "mprotect the first", b.mprotect(0, k2M, kProtRead));
    HPT_STEP(r, "touch write", b.touch(0x1000, Access::write));
    HPT_STEP(r, "touch write the second", b.touch(k2M, Access::write));
    HPT_STEP(r, "mprotect none", b.mprotect(0, k2M, 0));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "mprotect back", b.mprotect(0, k2M, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0x1000, Access::write));
  }
  static void mprotect_registered_wp(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy", b.uffd_copy(0, 4 * kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * kPage, kWpModeWp));
    HPT_STEP(r, "mprotect read-only", b.mprotect(0, 4 * kPage, kProtRead));
    HPT_STEP(r, "mprotect read-write", b.mprotect(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write protected", b.touch(0, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch write unprotected", b.touch(3 * kPage, Access::write));
    HPT_STEP(r, "pagemap protected", b.pagemap(kPage));
  }
  static void mprotect_private_file(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem private", b.map_file(0, 16 * kPage, Backing::shmem, false, 16));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "mprotect read-only", b.mprotect(0, 16 * kPage, kProtRead));
    HPT_STEP(r, "mprotect read-write", b.mprotect(0, 16 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(0));
  }

  // --- fork ---
  static void fork_anon_cow(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch read", b.child_touch(0, Access::read));
    HPT_STEP(r, "child touch write", b.child_touch(0, Access::write));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_parent_writes_first(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
    HPT_STEP(r, "child pagemap", b.child_pagemap(kPage));
    HPT_STEP(r, "child touch write", b.child_touch(kPage, Access::write));
    HPT_STEP(r, "child pagemap", b.child_pagemap(kPage));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_child_exit_makes_pages_exclusive(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child exit", b.child_exit());
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(0));
  }
  static void fork_zero_page_not_copied(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch read", b.child_touch(0, Access::read));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_shmem_not_copied(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch read", b.child_touch(0, Access::read));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_private_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem private", b.map_file(0, 16 * kPage, Backing::shmem, false, 16));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write another", b.touch(kPage, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child pagemap file page", b.child_pagemap(0));
    HPT_STEP(r, "child pagemap private copy", b.child_pagemap(kPage));
    HPT_STEP(r, "child touch write", b.child_touch(kPage, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_uffd_registration_dropped(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, kPage, kWpModeWp));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch write", b.child_touch(0, Access::write));
    HPT_STEP(r, "child touch missing", b.child_touch(2 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_hugetlb_shared_not_copied(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch write", b.child_touch(0x1000, Access::write));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_hugetlb_private(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(3));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "child touch write", b.child_touch(0, Access::write));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "child exit", b.child_exit());
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void fork_hugetlb_private_child_empty_pool(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(1));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child touch read", b.child_touch(0, Access::read));
    HPT_STEP(r, "child touch write", b.child_touch(0, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_hugetlb_private_owner_empty_pool(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(1));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child touch read", b.child_touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(0x1000, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch", b.child_touch(0, Access::read));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_hwpoison_anon(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "touch write another", b.touch(kPage, Access::write));
    HPT_STEP(r, "hwpoison", b.madvise_hwpoison(kPage));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child pagemap", b.child_pagemap(kPage));
    HPT_STEP(r, "child touch", b.child_touch(kPage, Access::read));
    HPT_STEP(r, "child touch the healthy one", b.child_touch(0, Access::read));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_shmem_punch_hole(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child touch", b.child_touch(0, Access::read));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "punch", b.punch_hole(0, kPage));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_prot_none(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "mprotect none", b.mprotect(0, 4 * kPage, 0));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch", b.child_touch(0, Access::read));
    HPT_STEP(r, "child exit", b.child_exit());
  }

  // --- UFFD_FEATURE_EVENT_FORK: the child's own userfaultfd ---
  static void fork_event_child_userfaultfd(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventFork, "register missing", kRegMissing);
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "copy while fork waits", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "child touch", b.child_touch(kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "child read msg", b.child_uffd_read());
    HPT_STEP(r, "child api", b.child_uffd_api(0));
    HPT_STEP(r, "child copy", b.child_uffd_copy(kPage, kPage, 0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(kPage));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_event_keeps_uffd_wp(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventFork, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy wp", b.uffd_copy(0, kPage, kModeWp));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch write", b.child_touch(0, Access::write));
    HPT_STEP(r, "child read msg", b.child_uffd_read());
    HPT_STEP(r, "child resolve", b.child_uffd_writeprotect(0, kPage, 0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_event_shmem_wp_copied(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatEventFork | kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register wp", b.uffd_register(0, 16 * kPage, kRegWp));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * kPage, kWpModeWp));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child pagemap marker", b.child_pagemap(kPage));
    HPT_STEP(r, "child pagemap unprotected", b.child_pagemap(2 * kPage));
    HPT_STEP(r, "child touch write", b.child_touch(kPage, Access::write));
    HPT_STEP(r, "child read msg", b.child_uffd_read());
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_event_needs_a_registered_vma(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(kFeatEventFork));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_event_hugetlb_private(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "api", b.uffd_api(kFeatEventFork | kFeatMissingHugetlbfs));
    HPT_STEP(r, "register missing", b.uffd_register(0, k2M, kRegMissing));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "child touch", b.child_touch(0x3000, Access::write));
    HPT_STEP(r, "child read msg", b.child_uffd_read());
    HPT_STEP(r, "child copy 2M", b.child_uffd_copy(0, k2M, 0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0x3000));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "touch", b.touch(0, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "child exit", b.child_exit());
  }
  static void fork_event_after_a_pending_fault(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventFork, "register missing", kRegMissing);
    HPT_STEP(r, "touch", b.touch(0, Access::read));
    HPT_STEP(r, "fork", b.fork_child());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "child pagemap", b.child_pagemap(0));
    HPT_STEP(r, "child touch", b.child_touch(0, Access::read));
    HPT_STEP(r, "child read msg", b.child_uffd_read());
    HPT_STEP(r, "child exit", b.child_exit());
  }

  // --- two userfaultfds over one address space ---
  // A at 0 registered with the first, B at 8 pages with the second (both MISSING).
  static void two_uffds(B& b, Rec& r) {
    HPT_STEP(r, "mmap A", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap B", b.map_anon(8 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "open second", b.uffd2_open());
    HPT_STEP(r, "api second", b.uffd2_api(0));
    HPT_STEP(r, "register A", b.uffd_register(0, 4 * kPage, kRegMissing));
    HPT_STEP(r, "register B second", b.uffd2_register(8 * kPage, 4 * kPage, kRegMissing));
  }
  static void two_uffds_each_hears_its_own(B& b, Rec& r) {
    two_uffds(b, r);
    HPT_STEP(r, "touch A", b.touch(0, Access::read));
    HPT_STEP(r, "touch B", b.touch(8 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "second wake A", b.uffd2_wake(0, kPage));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "wake A", b.uffd_wake(0, kPage));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "second copy B", b.uffd2_copy(8 * kPage, kPage, 0));
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "pagemap B", b.pagemap(8 * kPage));
  }
  static void two_uffds_register_busy(B& b, Rec& r) {
    two_uffds(b, r);
    HPT_STEP(r, "second register A", b.uffd2_register(0, 4 * kPage, kRegMissing));
    HPT_STEP(r, "register A and B", b.uffd_register(0, 12 * kPage, kRegMissing));
    HPT_STEP(r, "register B again", b.uffd_register(8 * kPage, 4 * kPage, kRegMissing | kRegWp));
    HPT_STEP(r, "touch A", b.touch(kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "second read msg", b.uffd2_read());
  }
  static void two_uffds_fill_through_the_other(B& b, Rec& r) {
    two_uffds(b, r);
    HPT_STEP(r, "touch B", b.touch(8 * kPage, Access::read));
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "copy B", b.uffd_copy(8 * kPage, kPage, 0));
    HPT_STEP(r, "pagemap B", b.pagemap(8 * kPage));
    HPT_STEP(r, "second wake B", b.uffd2_wake(8 * kPage, kPage));
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "touch B+1", b.touch(9 * kPage, Access::read));
    HPT_STEP(r, "wake B+1", b.uffd_wake(9 * kPage, kPage));
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "second wake B+1", b.uffd2_wake(9 * kPage, kPage));
    HPT_STEP(r, "second read msg", b.uffd2_read());
  }
  static void two_uffds_unregister_the_others(B& b, Rec& r) {
    two_uffds(b, r);
    HPT_STEP(r, "touch B", b.touch(8 * kPage, Access::read));
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "unregister B", b.uffd_unregister(8 * kPage, 4 * kPage));
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "pagemap B", b.pagemap(8 * kPage));
    HPT_STEP(r, "register B", b.uffd_register(8 * kPage, 4 * kPage, kRegMissing));
    HPT_STEP(r, "touch B+1", b.touch(9 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void two_uffds_close_one(B& b, Rec& r) {
    two_uffds(b, r);
    HPT_STEP(r, "touch A", b.touch(0, Access::read));
    HPT_STEP(r, "touch B", b.touch(8 * kPage, Access::read));
    HPT_STEP(r, "close", b.uffd_close());
    HPT_STEP(r, "pagemap A", b.pagemap(0));
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "second read msg", b.uffd2_read());
    HPT_STEP(r, "touch A+1", b.touch(kPage, Access::read));
    HPT_STEP(r, "second close", b.uffd2_close());
    HPT_STEP(r, "pagemap B", b.pagemap(8 * kPage));
  }
  static void unregister_minor_does_not_wake(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "fallocate", b.fallocate(0, kPage));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem));
    HPT_STEP(r, "register minor", b.uffd_register(0, 16 * kPage, kRegMinor));
    HPT_STEP(r, "touch", b.touch(0, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "unregister", b.uffd_unregister(0, 16 * kPage));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "wake", b.uffd_wake(0, kPage));
    HPT_STEP(r, "pagemap", b.pagemap(0));
  }

  // --- VMA merging (vma_merge) ---
  static void merge_adjacent_anon_mmaps(B& b, Rec& r) {
    HPT_STEP(r, "mmap A", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap B", b.map_anon(4 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "mmap C read-only", b.map_anon(8 * kPage, 4 * kPage, kProtRead));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "mmap D", b.map_anon(16 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch D write", b.touch(16 * kPage, Access::write));
    HPT_STEP(r, "mmap E between C and D", b.map_anon(12 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "maps", b.maps());
  }
  static void merge_after_mprotect_back(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 8 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "mprotect middle read", b.mprotect(2 * kPage, 2 * kPage, kProtRead));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "mprotect back", b.mprotect(2 * kPage, 2 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "mprotect tail read", b.mprotect(6 * kPage, 2 * kPage, kProtRead));
    HPT_STEP(r, "mprotect head read", b.mprotect(0, 6 * kPage, kProtRead));
    HPT_STEP(r, "maps", b.maps());
  }
  static void merge_depends_on_anon_vma(B& b, Rec& r) {
    HPT_STEP(r, "mmap A read-only", b.map_anon(0, 4 * kPage, kProtRead));
    HPT_STEP(r, "mmap B", b.map_anon(4 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch B write", b.touch(4 * kPage, Access::write));
    HPT_STEP(r, "mprotect B read", b.mprotect(4 * kPage, 4 * kPage, kProtRead));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "mprotect A write", b.mprotect(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mprotect B write", b.mprotect(4 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "maps", b.maps());
  }
  static void merge_after_unregister(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 8 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register middle", b.uffd_register(2 * kPage, 2 * kPage, kRegMissing));
    HPT_STEP(r, "register next", b.uffd_register(4 * kPage, 2 * kPage, kRegMissing));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "register next wp", b.uffd_register(4 * kPage, 2 * kPage, kRegMissing | kRegWp));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "unregister", b.uffd_unregister(2 * kPage, 4 * kPage));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "register all", b.uffd_register(0, 8 * kPage, kRegMissing));
    HPT_STEP(r, "mprotect middle read", b.mprotect(2 * kPage, 2 * kPage, kProtRead));
    HPT_STEP(r, "close", b.uffd_close());
    HPT_STEP(r, "maps", b.maps());
  }
  static void merge_shmem_and_not_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "mprotect hugetlb tail", b.mprotect(k2M, k2M, kProtRead));
    HPT_STEP(r, "mprotect hugetlb back", b.mprotect(k2M, k2M, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap shmem", b.map_file(kGiB, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "mprotect shmem middle", b.mprotect(kGiB + 4 * kPage, 4 * kPage, kProtRead));
    HPT_STEP(r, "mprotect shmem back", b.mprotect(kGiB + 4 * kPage, 4 * kPage,
                                                  kProtRead | kProtWrite));
    HPT_STEP(r, "maps", b.maps());
  }

  // --- mremap (and UFFD_EVENT_REMAP) ---
  static constexpr unsigned kMove = kMremapMaymove | kMremapFixed;
  static void mremap_shrink_and_grow_in_place(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 8 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "shrink", b.mremap(0, 8 * kPage, 4 * kPage, 0, 0));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "grow in place", b.mremap(0, 4 * kPage, 6 * kPage, 0, 0));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "touch grown", b.touch(5 * kPage, Access::write));
    HPT_STEP(r, "mmap after", b.map_anon(8 * kPage, 4 * kPage, kProtRead));
    HPT_STEP(r, "grow into it", b.mremap(0, 6 * kPage, 10 * kPage, 0, 0));
    HPT_STEP(r, "same size", b.mremap(0, 6 * kPage, 6 * kPage, 0, 0));
  }
  static void mremap_move_anon(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "touch read", b.touch(kPage, Access::read));
    HPT_STEP(r, "move", b.mremap(0, 4 * kPage, 4 * kPage, kMove, 64 * kPage));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "pagemap moved", b.pagemap(64 * kPage));
    HPT_STEP(r, "pagemap moved zero", b.pagemap(65 * kPage));
    HPT_STEP(r, "pagemap old", b.pagemap(0));
    HPT_STEP(r, "touch old", b.touch(0, Access::read));
    HPT_STEP(r, "move and grow", b.mremap(64 * kPage, 4 * kPage, 8 * kPage, kMove, 128 * kPage));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "pagemap", b.pagemap(128 * kPage));
    HPT_STEP(r, "move and shrink", b.mremap(128 * kPage, 8 * kPage, 2 * kPage, kMove, 0));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "pagemap", b.pagemap(0));
  }
  static void mremap_validation(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap next", b.map_anon(4 * kPage, 4 * kPage, kProtRead));
    HPT_STEP(r, "fixed without maymove", b.mremap(0, 4 * kPage, 4 * kPage, kMremapFixed, 64 * kPage));
    HPT_STEP(r, "unknown flag", b.mremap(0, 4 * kPage, 4 * kPage, 8, 0));
    HPT_STEP(r, "dontunmap other length",
             b.mremap(0, 4 * kPage, 8 * kPage, kMremapMaymove | kMremapDontunmap, 0));
    HPT_STEP(r, "misaligned", b.mremap(1, 4 * kPage, 4 * kPage, 0, 0));
    HPT_STEP(r, "new length 0", b.mremap(0, 4 * kPage, 0, 0, 0));
    HPT_STEP(r, "overlap", b.mremap(0, 4 * kPage, 4 * kPage, kMove, 2 * kPage));
    HPT_STEP(r, "no vma", b.mremap(32 * kPage, kPage, 2 * kPage, 0, 0));
    HPT_STEP(r, "across two vmas", b.mremap(0, 8 * kPage, 8 * kPage, kMove, 64 * kPage));
    HPT_STEP(r, "grow without room", b.mremap(0, 4 * kPage, 6 * kPage, 0, 0));
    HPT_STEP(r, "maps", b.maps());
  }
  static void mremap_dontunmap_keeps_the_old_vma_registered(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "move dontunmap", b.mremap(0, 4 * kPage, 4 * kPage,
                                           kMove | kMremapDontunmap, 64 * kPage));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "pagemap old", b.pagemap(0));
    HPT_STEP(r, "pagemap new", b.pagemap(64 * kPage));
    HPT_STEP(r, "touch old", b.touch(0, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch new", b.touch(65 * kPage, Access::read));
  }
  static void mremap_event_remap(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventRemap, "register missing", kRegMissing);
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "move", b.mremap(0, 4 * kPage, 4 * kPage, kMove, 64 * kPage));
    HPT_STEP(r, "copy while it waits", b.uffd_copy(64 * kPage + kPage, kPage, 0));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch moved", b.touch(66 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "pagemap", b.pagemap(64 * kPage));
  }
  static void mremap_event_remap_and_unmap(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventRemap | kFeatEventUnmap, "register missing", kRegMissing);
    HPT_STEP(r, "move", b.mremap(0, 4 * kPage, 4 * kPage, kMove, 64 * kPage));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "maps", b.maps());
  }
  static void mremap_without_event_remap_drops_the_registration(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register wp", b.uffd_register(0, 16 * kPage, kRegWp));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * kPage, kWpModeWp));
    HPT_STEP(r, "move", b.mremap(0, 16 * kPage, 16 * kPage, kMove, kGiB));
    HPT_STEP(r, "pagemap", b.pagemap(kGiB));
    HPT_STEP(r, "pagemap marker", b.pagemap(kGiB + kPage));
    HPT_STEP(r, "touch write", b.touch(kGiB, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "writeprotect moved", b.uffd_writeprotect(kGiB, kPage, kWpModeWp));
  }
  static void mremap_hugetlb_shared(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "grow", b.mremap(0, 2 * k2M, 3 * k2M, kMremapMaymove, 0));
    HPT_STEP(r, "misaligned target", b.mremap(0, k2M, k2M, kMove, kGiB + kPage));
    HPT_STEP(r, "dontunmap", b.mremap(0, k2M, k2M, kMove | kMremapDontunmap, kGiB));
    HPT_STEP(r, "move 4K length", b.mremap(0, kPage, kPage, kMove, kGiB));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "pagemap", b.pagemap(kGiB));
    HPT_STEP(r, "shrink", b.mremap(k2M, k2M, kPage, 0, 0));
    HPT_STEP(r, "maps", b.maps());
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void mremap_hugetlb_private_keeps_reservations(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, 2 * k2M, Backing::huge2m, false, 2));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "move", b.mremap(0, 2 * k2M, 2 * k2M, kMove, kGiB));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "pagemap", b.pagemap(kGiB));
    HPT_STEP(r, "touch second", b.touch(kGiB + k2M, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "munmap", b.munmap(kGiB, 2 * k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
  }

  // --- more userfaultfd ---
  static void wake_validation(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "wake len 0", b.uffd_wake(0, 0));
    HPT_STEP(r, "wake misaligned", b.uffd_wake(1, kPage));
    HPT_STEP(r, "wake outside any vma", b.uffd_wake(64 * kPage, kPage));
  }
  static void register_twice_same_mode(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "register again", b.uffd_register(0, 4 * kPage, kRegMissing));
    HPT_STEP(r, "register half", b.uffd_register(2 * kPage, 2 * kPage, kRegMissing));
    HPT_STEP(r, "touch", b.touch(3 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void unregister_the_middle(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "unregister the middle", b.uffd_unregister(kPage, 2 * kPage));
    HPT_STEP(r, "touch unregistered", b.touch(kPage, Access::read));
    HPT_STEP(r, "touch registered", b.touch(3 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "copy into the unregistered", b.uffd_copy(2 * kPage, kPage, 0));
  }
  static void unregister_across_two_vmas(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap shmem after it", b.map_file(4 * kPage, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register both", b.uffd_register(0, 20 * kPage, kRegMissing));
    HPT_STEP(r, "unregister across", b.uffd_unregister(2 * kPage, 4 * kPage));
    HPT_STEP(r, "touch anon unregistered", b.touch(3 * kPage, Access::read));
    HPT_STEP(r, "touch shmem unregistered", b.touch(5 * kPage, Access::read));
    HPT_STEP(r, "touch shmem registered", b.touch(6 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void copy_dontwake(B& b, Rec& r) {
    anon_registered(b, r, kFeatThreadId, "register missing", kRegMissing);
    HPT_STEP(r, "touch", b.touch(kPage, Access::write));
    HPT_STEP(r, "copy dontwake", b.uffd_copy(kPage, kPage, kModeDontwake));
    HPT_STEP(r, "touch another", b.touch(2 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "wake", b.uffd_wake(kPage, kPage));
    HPT_STEP(r, "touch it again", b.touch(kPage, Access::read));
  }
  static void zeropage_dontwake(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "touch", b.touch(kPage, Access::read));
    HPT_STEP(r, "zeropage dontwake", b.uffd_zeropage(kPage, kPage, kModeDontwake));
    HPT_STEP(r, "zeropage mode 2", b.uffd_zeropage(2 * kPage, kPage, 2));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
  }
  static void writeprotect_resolve_dontwake(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing|wp", kRegMissing | kRegWp);
    HPT_STEP(r, "copy", b.uffd_copy(0, 2 * kPage, 0));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, 2 * kPage, kWpModeWp));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "resolve dontwake", b.uffd_writeprotect(0, 2 * kPage, kWpModeDontwake));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "wake", b.uffd_wake(0, kPage));
    HPT_STEP(r, "touch write again", b.touch(0, Access::write));
  }
  static void continue_dontwake_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "mmap alias", b.map_alias(k2M, 16 * kPage));
    HPT_STEP(r, "populate through the alias", b.touch(k2M, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem));
    HPT_STEP(r, "register minor", b.uffd_register(0, 16 * kPage, kRegMinor));
    HPT_STEP(r, "touch", b.touch(0, Access::read));
    HPT_STEP(r, "continue dontwake", b.uffd_continue(0, kPage, kModeDontwake));
    HPT_STEP(r, "continue again", b.uffd_continue(0, kPage, 0));
    HPT_STEP(r, "pagemap", b.pagemap(0));
  }
  static void minor_and_missing_shmem(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "mmap alias", b.map_alias(k2M, 16 * kPage));
    HPT_STEP(r, "populate one through the alias", b.touch(k2M + kPage, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem | kFeatMissingShmem));
    HPT_STEP(r, "register missing|minor", b.uffd_register(0, 16 * kPage, kRegMissing | kRegMinor));
    HPT_STEP(r, "touch cached", b.touch(kPage, Access::read));
    HPT_STEP(r, "touch uncached", b.touch(2 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void wp_hugetlb_private(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register missing|wp", b.uffd_register(0, k2M, kRegMissing | kRegWp));
    HPT_STEP(r, "copy mode wp", b.uffd_copy(0, k2M, kModeWp));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "touch read", b.touch(0x1000, Access::read));
    HPT_STEP(r, "touch write", b.touch(0x1000, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "resolve", b.uffd_writeprotect(0, k2M, 0));
    HPT_STEP(r, "touch write again", b.touch(0x1000, Access::write));
  }
  static void hugetlb_punch_registered(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register missing", b.uffd_register(0, k2M, kRegMissing));
    HPT_STEP(r, "copy", b.uffd_copy(0, k2M, 0));
    HPT_STEP(r, "punch", b.punch_hole(0, k2M));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "touch", b.touch(0, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void shmem_punch_wp_protected(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register wp", b.uffd_register(0, 16 * kPage, kRegWp));
    HPT_STEP(r, "writeprotect", b.uffd_writeprotect(0, kPage, kWpModeWp));
    HPT_STEP(r, "punch", b.punch_hole(0, kPage));
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void hugetlb_mmap_len_rounds_up(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M, 4K long", b.map_file(0, kPage, Backing::huge2m, true, 1));
    HPT_STEP(r, "touch inside the page", b.touch(0x100000, Access::write));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void mmap_validation(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon misaligned", b.map_anon(1, kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap anon len 0", b.map_anon(0, 0, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap anon len 1", b.map_anon(0, 1, kProtRead | kProtWrite));
    HPT_STEP(r, "touch", b.touch(0, Access::write));
    HPT_STEP(r, "touch past it", b.touch(kPage, Access::write));
  }
  static void anon_read_only_never_touched(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon ro", b.map_anon(0, 4 * kPage, kProtRead));
    HPT_STEP(r, "touch read", b.touch(kPage, Access::read));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "mprotect rw", b.mprotect(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
  }
  static void munmap_validation(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "munmap misaligned", b.munmap(1, kPage));
    HPT_STEP(r, "munmap len 0", b.munmap(0, 0));
    HPT_STEP(r, "munmap where nothing is mapped", b.munmap(16 * kPage, kPage));
    HPT_STEP(r, "munmap len 1", b.munmap(0, 1));
    HPT_STEP(r, "touch it", b.touch(0, Access::read));
    HPT_STEP(r, "touch the next", b.touch(kPage, Access::read));
  }
  static void munmap_hugetlb_misaligned(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "munmap 4K of it", b.munmap(0, kPage));
    HPT_STEP(r, "munmap the second", b.munmap(k2M, k2M));
    HPT_STEP(r, "touch the first", b.touch(0, Access::read));
    HPT_STEP(r, "touch the second", b.touch(k2M, Access::read));
  }
  static void dontneed_shmem_registered_minor(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "api", b.uffd_api(kFeatMinorShmem));
    HPT_STEP(r, "register minor", b.uffd_register(0, 16 * kPage, kRegMinor));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, kPage));
    HPT_STEP(r, "touch", b.touch(0, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "continue", b.uffd_continue(0, kPage, 0));
    HPT_STEP(r, "pagemap", b.pagemap(0));
  }
  static void hwpoison_shmem_pagemap(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "hwpoison", b.madvise_hwpoison(kPage));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
    HPT_STEP(r, "touch", b.touch(kPage, Access::read));
    HPT_STEP(r, "touch another", b.touch(2 * kPage, Access::read));
  }
  static void hwpoison_private_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
    HPT_STEP(r, "hwpoison", b.madvise_hwpoison(0x5000));
    HPT_STEP(r, "touch", b.touch(0x1000, Access::read));
    HPT_STEP(r, "pagemap", b.pagemap(0));
  }
  static void copy_mode_wp_hugetlb_pagemap(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "api", b.uffd_api(kFeatWpHugetlbfsShmem));
    HPT_STEP(r, "register missing|wp", b.uffd_register(0, k2M, kRegMissing | kRegWp));
    HPT_STEP(r, "copy mode wp", b.uffd_copy(0, k2M, kModeWp));
    HPT_STEP(r, "pagemap", b.pagemap(0x3000));
    HPT_STEP(r, "touch write", b.touch(0x3000, Access::write));
    HPT_STEP(r, "read msg", b.uffd_read());
  }

  // --- non-cooperative events: REMOVE (MADV_DONTNEED) and UNMAP (munmap) ---
  static void event_api(B& b, Rec& r) {
    HPT_STEP(r, "api(event remove|unmap)", b.uffd_api(kFeatEventRemove | kFeatEventUnmap));
  }
  static void event_remove_dontneed(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventRemove, "register missing", kRegMissing);
    HPT_STEP(r, "copy", b.uffd_copy(0, 2 * kPage, 0));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, kPage));
    HPT_STEP(r, "copy while it waits", b.uffd_copy(2 * kPage, kPage, 0));
    HPT_STEP(r, "pagemap before the read", b.pagemap(0));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "pagemap after the read", b.pagemap(0));
    HPT_STEP(r, "pagemap the other", b.pagemap(kPage));
    HPT_STEP(r, "copy again", b.uffd_copy(2 * kPage, kPage, 0));
  }
  static void event_remove_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(kFeatEventRemove));
    HPT_STEP(r, "register", b.uffd_register(0, 2 * k2M, kRegMissing));
    HPT_STEP(r, "copy", b.uffd_copy(0, k2M, 0));
    HPT_STEP(r, "dontneed 4K", b.madvise_dontneed(0, kPage));
    HPT_STEP(r, "dontneed 2M", b.madvise_dontneed(0, k2M));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "touch", b.touch(0, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void event_remove_faults_are_read_first(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventRemove, "register missing", kRegMissing);
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, kPage));
    HPT_STEP(r, "touch missing", b.touch(3 * kPage, Access::read));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void event_remove_close_lets_it_go(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventRemove, "register missing", kRegMissing);
    HPT_STEP(r, "copy", b.uffd_copy(0, kPage, 0));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, kPage));
    HPT_STEP(r, "close", b.uffd_close());
    HPT_STEP(r, "pagemap", b.pagemap(0));
    HPT_STEP(r, "touch", b.touch(0, Access::read));
  }
  static void event_remove_unregistered(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventRemove, "register missing", kRegMissing);
    HPT_STEP(r, "mmap another", b.map_anon(16 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "touch it", b.touch(16 * kPage, Access::write));
    HPT_STEP(r, "dontneed it", b.madvise_dontneed(16 * kPage, kPage));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void event_unmap(B& b, Rec& r) {
    anon_registered(b, r, kFeatEventUnmap, "register missing", kRegMissing);
    HPT_STEP(r, "copy", b.uffd_copy(0, 4 * kPage, 0));
    HPT_STEP(r, "munmap the middle", b.munmap(kPage, 2 * kPage));
    HPT_STEP(r, "pagemap", b.pagemap(kPage));
    HPT_STEP(r, "zeropage while it waits", b.uffd_zeropage(0, kPage, 0));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "touch the rest", b.touch(3 * kPage, Access::read));
    HPT_STEP(r, "munmap all", b.munmap(0, 4 * kPage));
    HPT_STEP(r, "read msg", b.uffd_read());
  }
  static void event_unmap_and_remove_hugetlb(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, 2 * k2M, Backing::huge2m, true, 2));
    HPT_STEP(r, "api", b.uffd_api(kFeatEventUnmap | kFeatEventRemove));
    HPT_STEP(r, "register", b.uffd_register(0, 2 * k2M, kRegMissing));
    HPT_STEP(r, "munmap the second", b.munmap(k2M, k2M));
    HPT_STEP(r, "dontneed the first", b.madvise_dontneed(0, k2M));
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
    HPT_STEP(r, "read msg", b.uffd_read());
  }

  // --- UFFDIO_COPY from the process's own memory ---
  static void copy_from_unpopulated_hugetlb_one_page_pool(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(1));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "mmap the source", b.map_anon(4 * k2M, k2M, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, k2M, kRegMissing));
    HPT_STEP(r, "copy from the unpopulated source", b.uffd_copy_from(0, 4 * k2M, k2M, 0));
    HPT_STEP(r, "pagemap the source", b.pagemap(4 * k2M));
    HPT_STEP(r, "meminfo", b.meminfo());
    HPT_STEP(r, "populate the source", b.touch(4 * k2M + kPage, Access::write));
    HPT_STEP(r, "copy again", b.uffd_copy_from(0, 4 * k2M, k2M, 0));
    HPT_STEP(r, "pagemap the rest of the source", b.pagemap(4 * k2M + 2 * kPage));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void copy_from_unpopulated_hugetlb_spare_page(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(2));
    HPT_STEP(r, "mmap hugetlb 2M", b.map_file(0, k2M, Backing::huge2m, true, 1));
    HPT_STEP(r, "mmap the source", b.map_anon(4 * k2M, k2M, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, k2M, kRegMissing));
    HPT_STEP(r, "copy from the unpopulated source", b.uffd_copy_from(0, 4 * k2M, k2M, 0));
    HPT_STEP(r, "pagemap the source", b.pagemap(4 * k2M + 5 * kPage));
    HPT_STEP(r, "meminfo", b.meminfo());
  }
  static void copy_from_unpopulated_hugetlb_1g(B& b, Rec& r) {
    HPT_STEP(r, "mmap hugetlb 1G", b.map_file(0, kGiB, Backing::huge1g, true, 1));
    HPT_STEP(r, "mmap the source", b.map_anon(2 * kGiB, kGiB, kProtRead | kProtWrite));
    HPT_STEP(r, "api", b.uffd_api(0));
    HPT_STEP(r, "register", b.uffd_register(0, kGiB, kRegMissing));
    HPT_STEP(r, "copy from the unpopulated source", b.uffd_copy_from(0, 2 * kGiB, kGiB, 0));
    HPT_STEP(r, "pagemap the source", b.pagemap(2 * kGiB));
  }
  static void copy_from_anon(B& b, Rec& r) {
    anon_registered(b, r, 0, "register missing", kRegMissing);
    HPT_STEP(r, "mmap the source", b.map_anon(16 * kPage, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "copy from the unpopulated source", b.uffd_copy_from(0, 16 * kPage, 2 * kPage, 0));
    HPT_STEP(r, "pagemap the source", b.pagemap(17 * kPage));
    HPT_STEP(r, "touch the source", b.touch(18 * kPage, Access::write));
    HPT_STEP(r, "copy from the written page", b.uffd_copy_from(2 * kPage, 18 * kPage, kPage, 0));
    HPT_STEP(r, "copy from a hole", b.uffd_copy_from(3 * kPage, 64 * kPage, kPage, 0));
    HPT_STEP(r, "copy from a PROT_NONE page", b.uffd_copy_from(3 * kPage, 19 * kPage, kPage, 0));
  }

  // --- mappings ---
  static void mmap_overlap(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon", b.map_anon(0, 4 * kPage, kProtRead | kProtWrite));
    HPT_STEP(r, "mmap over it", b.map_anon(2 * kPage, 4 * kPage, kProtRead | kProtWrite));
  }
  static void prot_none(B& b, Rec& r) {
    HPT_STEP(r, "mmap anon none", b.map_anon(0, 4 * kPage, 0));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(0, Access::write));
  }
  static void hugetlb_private_cow(B& b, Rec& r) {
    HPT_STEP(r, "pools", b.pools(4));
    HPT_STEP(r, "mmap hugetlb 2M private", b.map_file(0, k2M, Backing::huge2m, false, 1));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(0x1000, Access::write));
  }
  static void shmem_touch(B& b, Rec& r) {
    HPT_STEP(r, "mmap shmem", b.map_file(0, 16 * kPage, Backing::shmem, true, 16));
    HPT_STEP(r, "touch read", b.touch(0, Access::read));
    HPT_STEP(r, "touch write", b.touch(kPage, Access::write));
    HPT_STEP(r, "dontneed", b.madvise_dontneed(0, 2 * kPage));
    HPT_STEP(r, "touch again", b.touch(kPage, Access::read));
  }

#undef HPT_STEP

  static std::vector<Entry> all() {
    return {
        {"api_plain", api_plain},
        {"api_twice", api_twice},
        {"api_hugetlb_shmem_features", api_hugetlb_shmem_features},
        {"api_exact_address", api_exact_address},
        {"api_wp_hugetlbfs_shmem", api_wp_hugetlbfs_shmem},
        {"api_unknown_bit", api_unknown_bit},
        {"register_before_api", register_before_api},
        {"register_anon_missing", register_anon_missing},
        {"register_anon_wp", register_anon_wp},
        {"register_zero_len", register_zero_len},
        {"register_misaligned", register_misaligned},
        {"register_no_mode", register_no_mode},
        {"register_no_vma", register_no_vma},
        {"register_with_hole", register_with_hole},
        {"register_part_of_vma", register_part_of_vma},
        {"unregister_validation", unregister_validation},
        {"register_hugetlb_misaligned", register_hugetlb_misaligned},
        {"register_hugetlb_minor", register_hugetlb_minor},
        {"register_shmem_minor", register_shmem_minor},
        {"register_anon_minor", register_anon_minor},
        {"unregister_plain", unregister_plain},
        {"missing_anon_read_fault", missing_anon_read_fault},
        {"missing_anon_write_fault_exact", missing_anon_write_fault_exact},
        {"missing_anon_copy", missing_anon_copy},
        {"missing_anon_copy_invalid", missing_anon_copy_invalid},
        {"missing_anon_zeropage", missing_anon_zeropage},
        {"missing_fault_woken_by_copy", missing_fault_woken_by_copy},
        {"missing_hugetlb_2m", missing_hugetlb_2m},
        {"missing_shmem", missing_shmem},
        {"minor_hugetlb_continue", minor_hugetlb_continue},
        {"minor_shmem_continue", minor_shmem_continue},
        {"wp_anon", wp_anon},
        {"wp_copy_mode_wp", wp_copy_mode_wp},
        {"wp_not_registered", wp_not_registered},
        {"wp_hugetlb", wp_hugetlb},
        {"hugetlb_first_touch", hugetlb_first_touch},
        {"hugetlb_1g_first_touch", hugetlb_1g_first_touch},
        {"hugetlb_misaligned_mmap", hugetlb_misaligned_mmap},
        {"anon_touch_and_prot", anon_touch_and_prot},
        {"dontneed_anon", dontneed_anon},
        {"dontneed_hugetlb", dontneed_hugetlb},
        {"wake_nothing", wake_nothing},
        {"api_wp_unpopulated", api_wp_unpopulated},
        {"api_poison", api_poison},
        {"poison_ioctl", poison_ioctl},
        {"continue_mode_wp", continue_mode_wp},
        {"copy_unregistered", copy_unregistered},
        {"register_again_other_mode", register_again_other_mode},
        {"wp_shmem", wp_shmem},
        {"wp_validation", wp_validation},
        {"minor_hugetlb_partial", minor_hugetlb_partial},
        {"missing_hugetlb_exact", missing_hugetlb_exact},
        {"zeropage_shmem_twice", zeropage_shmem_twice},
        {"api_sigbus_thread_id", api_sigbus_thread_id},
        {"sigbus_mode_missing_anon", sigbus_mode_missing_anon},
        {"sigbus_mode_wp", sigbus_mode_wp},
        {"sigbus_mode_minor_shmem", sigbus_mode_minor_shmem},
        {"sigbus_mode_hugetlb", sigbus_mode_hugetlb},
        {"thread_id_messages", thread_id_messages},
        {"thread_id_wp_exact", thread_id_wp_exact},
        {"thread_id_hugetlb_minor", thread_id_hugetlb_minor},
        {"pagemap_anon", pagemap_anon},
        {"pagemap_shmem", pagemap_shmem},
        {"pagemap_shmem_private", pagemap_shmem_private},
        {"pagemap_hugetlb_2m", pagemap_hugetlb_2m},
        {"pagemap_hugetlb_private", pagemap_hugetlb_private},
        {"pagemap_hugetlb_1g", pagemap_hugetlb_1g},
        {"pagemap_uffd_wp_anon", pagemap_uffd_wp_anon},
        {"pagemap_wp_marker_shmem", pagemap_wp_marker_shmem},
        {"pagemap_wp_marker_hugetlb", pagemap_wp_marker_hugetlb},
        {"pagemap_hwpoison_anon", pagemap_hwpoison_anon},
        {"pagemap_hwpoison_hugetlb", pagemap_hwpoison_hugetlb},
        {"close_wakes_and_unregisters", close_wakes_and_unregisters},
        {"close_keeps_uffd_wp_bits", close_keeps_uffd_wp_bits},
        {"close_keeps_wp_markers_shmem", close_keeps_wp_markers_shmem},
        {"close_then_a_new_uffd", close_then_a_new_uffd},
        {"close_with_pending_messages", close_with_pending_messages},
        {"mprotect_anon", mprotect_anon},
        {"mprotect_none", mprotect_none},
        {"mprotect_validation", mprotect_validation},
        {"mprotect_shmem", mprotect_shmem},
        {"mprotect_hugetlb", mprotect_hugetlb},
        {"mprotect_registered_wp", mprotect_registered_wp},
        {"mprotect_private_file", mprotect_private_file},
        {"fork_anon_cow", fork_anon_cow},
        {"fork_parent_writes_first", fork_parent_writes_first},
        {"fork_child_exit_makes_pages_exclusive", fork_child_exit_makes_pages_exclusive},
        {"fork_zero_page_not_copied", fork_zero_page_not_copied},
        {"fork_shmem_not_copied", fork_shmem_not_copied},
        {"fork_private_shmem", fork_private_shmem},
        {"fork_uffd_registration_dropped", fork_uffd_registration_dropped},
        {"fork_hugetlb_shared_not_copied", fork_hugetlb_shared_not_copied},
        {"fork_hugetlb_private", fork_hugetlb_private},
        {"fork_hugetlb_private_child_empty_pool", fork_hugetlb_private_child_empty_pool},
        {"fork_hugetlb_private_owner_empty_pool", fork_hugetlb_private_owner_empty_pool},
        {"fork_hwpoison_anon", fork_hwpoison_anon},
        {"fork_prot_none", fork_prot_none},
        {"fork_shmem_punch_hole", fork_shmem_punch_hole},
        {"fork_event_child_userfaultfd", fork_event_child_userfaultfd},
        {"fork_event_keeps_uffd_wp", fork_event_keeps_uffd_wp},
        {"fork_event_shmem_wp_copied", fork_event_shmem_wp_copied},
        {"fork_event_needs_a_registered_vma", fork_event_needs_a_registered_vma},
        {"fork_event_hugetlb_private", fork_event_hugetlb_private},
        {"fork_event_after_a_pending_fault", fork_event_after_a_pending_fault},
        {"two_uffds_each_hears_its_own", two_uffds_each_hears_its_own},
        {"two_uffds_register_busy", two_uffds_register_busy},
        {"two_uffds_fill_through_the_other", two_uffds_fill_through_the_other},
        {"two_uffds_unregister_the_others", two_uffds_unregister_the_others},
        {"two_uffds_close_one", two_uffds_close_one},
        {"unregister_minor_does_not_wake", unregister_minor_does_not_wake},
        {"merge_adjacent_anon_mmaps", merge_adjacent_anon_mmaps},
        {"merge_after_mprotect_back", merge_after_mprotect_back},
        {"merge_depends_on_anon_vma", merge_depends_on_anon_vma},
        {"merge_after_unregister", merge_after_unregister},
        {"merge_shmem_and_not_hugetlb", merge_shmem_and_not_hugetlb},
        {"mremap_shrink_and_grow_in_place", mremap_shrink_and_grow_in_place},
        {"mremap_move_anon", mremap_move_anon},
        {"mremap_validation", mremap_validation},
        {"mremap_dontunmap_keeps_the_old_vma_registered",
         mremap_dontunmap_keeps_the_old_vma_registered},
        {"mremap_event_remap", mremap_event_remap},
        {"mremap_event_remap_and_unmap", mremap_event_remap_and_unmap},
        {"mremap_without_event_remap_drops_the_registration",
         mremap_without_event_remap_drops_the_registration},
        {"mremap_hugetlb_shared", mremap_hugetlb_shared},
        {"mremap_hugetlb_private_keeps_reservations", mremap_hugetlb_private_keeps_reservations},
        {"wake_validation", wake_validation},
        {"register_twice_same_mode", register_twice_same_mode},
        {"unregister_the_middle", unregister_the_middle},
        {"unregister_across_two_vmas", unregister_across_two_vmas},
        {"copy_dontwake", copy_dontwake},
        {"zeropage_dontwake", zeropage_dontwake},
        {"writeprotect_resolve_dontwake", writeprotect_resolve_dontwake},
        {"continue_dontwake_shmem", continue_dontwake_shmem},
        {"minor_and_missing_shmem", minor_and_missing_shmem},
        {"wp_hugetlb_private", wp_hugetlb_private},
        {"hugetlb_punch_registered", hugetlb_punch_registered},
        {"shmem_punch_wp_protected", shmem_punch_wp_protected},
        {"hugetlb_mmap_len_rounds_up", hugetlb_mmap_len_rounds_up},
        {"mmap_validation", mmap_validation},
        {"anon_read_only_never_touched", anon_read_only_never_touched},
        {"munmap_validation", munmap_validation},
        {"munmap_hugetlb_misaligned", munmap_hugetlb_misaligned},
        {"dontneed_shmem_registered_minor", dontneed_shmem_registered_minor},
        {"hwpoison_shmem_pagemap", hwpoison_shmem_pagemap},
        {"hwpoison_private_hugetlb", hwpoison_private_hugetlb},
        {"copy_mode_wp_hugetlb_pagemap", copy_mode_wp_hugetlb_pagemap},
        {"event_api", event_api},
        {"event_remove_dontneed", event_remove_dontneed},
        {"event_remove_hugetlb", event_remove_hugetlb},
        {"event_remove_faults_are_read_first", event_remove_faults_are_read_first},
        {"event_remove_close_lets_it_go", event_remove_close_lets_it_go},
        {"event_remove_unregistered", event_remove_unregistered},
        {"event_unmap", event_unmap},
        {"event_unmap_and_remove_hugetlb", event_unmap_and_remove_hugetlb},
        {"copy_from_unpopulated_hugetlb_one_page_pool",
         copy_from_unpopulated_hugetlb_one_page_pool},
        {"copy_from_unpopulated_hugetlb_spare_page", copy_from_unpopulated_hugetlb_spare_page},
        {"copy_from_unpopulated_hugetlb_1g", copy_from_unpopulated_hugetlb_1g},
        {"copy_from_anon", copy_from_anon},
        {"mmap_overlap", mmap_overlap},
        {"prot_none", prot_none},
        {"hugetlb_private_cow", hugetlb_private_cow},
        {"shmem_touch", shmem_touch},
        {"dontneed_hugetlb_rounds_down", dontneed_hugetlb_rounds_down},
        {"copy_partial_progress", copy_partial_progress},
        {"two_faults_two_messages", two_faults_two_messages},
        {"zeropage_then_write", zeropage_then_write},
        {"wp_on_none_anon", wp_on_none_anon},
        {"wp_then_unregister", wp_then_unregister},
        {"wp_marker_survives_dontneed_shmem", wp_marker_survives_dontneed_shmem},
        {"wp_marker_survives_dontneed_hugetlb", wp_marker_survives_dontneed_hugetlb},
        {"shmem_missing_after_dontneed", shmem_missing_after_dontneed},
        {"minor_shmem_uncached_maps_normally", minor_shmem_uncached_maps_normally},
        {"missing_hugetlb_private", missing_hugetlb_private},
        {"shmem_private_cow", shmem_private_cow},
        {"hwpoison_anon", hwpoison_anon},
        {"hwpoison_hugetlb_2m", hwpoison_hugetlb_2m},
        {"hwpoison_shmem", hwpoison_shmem},
        {"hugetlb_reservation_shared", hugetlb_reservation_shared},
        {"hugetlb_reservation_private", hugetlb_reservation_private},
        {"hugetlb_mmap_extends_the_file", hugetlb_mmap_extends_the_file},
        {"hugetlb_noreserve_empty_pool", hugetlb_noreserve_empty_pool},
        {"hugetlb_noreserve_cannot_take_a_reserved_page",
         hugetlb_noreserve_cannot_take_a_reserved_page},
        {"hugetlb_reservation_counts_shared", hugetlb_reservation_counts_shared},
        {"hugetlb_reservation_counts_private", hugetlb_reservation_counts_private},
        {"hugetlb_private_cow_takes_the_reservation", hugetlb_private_cow_takes_the_reservation},
        {"hugetlb_private_cow_empty_pool", hugetlb_private_cow_empty_pool},
        {"hugetlb_fallocate_takes_reservations", hugetlb_fallocate_takes_reservations},
        {"hugetlb_fallocate_short_pool", hugetlb_fallocate_short_pool},
        {"hugetlb_punch_hole_reservations", hugetlb_punch_hole_reservations},
        {"hugetlb_punch_hole_partial", hugetlb_punch_hole_partial},
        {"shmem_punch_hole", shmem_punch_hole},
        {"munmap_part_of_vma", munmap_part_of_vma},
    };
  }
};

}  // namespace hpt_linux
