// hugepte/mm/types.hpp - the mm model's vocabulary: VMAs, fault results, userfaultfd values,
// notifier events and the counters every observable lands in. Freestanding.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/tlb.hpp"

namespace hugepte::mm {

enum class Access : uint8_t { read, write, exec };

constexpr const char* access_name(Access a) {
  return a == Access::read ? "read" : a == Access::write ? "write" : "exec";
}

// --- userfaultfd (values as in include/uapi/linux/userfaultfd.h) ---------------------------------

// UFFDIO_REGISTER modes.
inline constexpr uint32_t kRegMissing = 1u << 0;
inline constexpr uint32_t kRegWp = 1u << 1;
inline constexpr uint32_t kRegMinor = 1u << 2;

// UFFD_FEATURE_* bits that change behaviour here. PAGEFAULT_FLAG_WP changes nothing (the WP
// flag is in every WP message) and every kernel accepts it.
inline constexpr uint64_t kFeatPagefaultFlagWp = 1u << 0;
inline constexpr uint64_t kFeatEventFork = 1u << 1;    // fork gives the child a userfaultfd
inline constexpr uint64_t kFeatEventRemap = 1u << 2;   // mremap sends UFFD_EVENT_REMAP
inline constexpr uint64_t kFeatEventRemove = 1u << 3;  // MADV_DONTNEED sends UFFD_EVENT_REMOVE
inline constexpr uint64_t kFeatEventUnmap = 1u << 6;   // munmap sends UFFD_EVENT_UNMAP
inline constexpr uint64_t kFeatSigbus = 1u << 7;       // a userfault is SIGBUS, not a message
inline constexpr uint64_t kFeatThreadId = 1u << 8;     // messages carry the faulting thread
inline constexpr uint64_t kFeatMissingHugetlbfs = 1u << 4;
inline constexpr uint64_t kFeatMissingShmem = 1u << 5;
inline constexpr uint64_t kFeatMinorHugetlbfs = 1u << 9;
inline constexpr uint64_t kFeatMinorShmem = 1u << 10;
inline constexpr uint64_t kFeatExactAddress = 1u << 11;
inline constexpr uint64_t kFeatWpHugetlbfsShmem = 1u << 12;
inline constexpr uint64_t kFeatWpUnpopulated = 1u << 13;
inline constexpr uint64_t kFeatPoison = 1u << 14;
inline constexpr uint64_t kFeatAll =
    kFeatPagefaultFlagWp | kFeatEventFork | kFeatEventRemap | kFeatEventRemove |
    kFeatEventUnmap | kFeatSigbus | kFeatThreadId | kFeatMissingHugetlbfs | kFeatMissingShmem |
    kFeatMinorHugetlbfs | kFeatMinorShmem | kFeatExactAddress | kFeatWpHugetlbfsShmem |
    kFeatWpUnpopulated | kFeatPoison;
// What Linux 6.1 has of them (WP_UNPOPULATED came in 6.4, POISON in 6.6).
inline constexpr uint64_t kFeatLinux61 = kFeatAll & ~(kFeatWpUnpopulated | kFeatPoison);

// Which kernel's userfaultfd the model behaves as. Each difference is one switch, named where
// it is tested (docs/mm.md, "Profiles"):
//   upstream   today's semantics (docs/mm.md)
//   linux_6_1  Debian 12's kernel, what the linux ring checks: no UFFD_FEATURE_WP_UNPOPULATED
//              or _POISON, no UFFDIO_POISON (EINVAL, and not in REGISTER's ioctl mask), no
//              UFFDIO_CONTINUE_MODE_WP
enum class Profile : uint8_t { upstream, linux_6_1 };
// (Also: UFFDIO_UNREGISTER of another userfaultfd's VMA - EINVAL upstream, done in 6.1;
// fs_userfaultfd.hpp.)

// The ioctl mask UFFDIO_REGISTER returns: 1 << _UFFDIO_*.
inline constexpr uint64_t kIoctlWake = 1u << 0x02;
inline constexpr uint64_t kIoctlCopy = 1u << 0x03;
inline constexpr uint64_t kIoctlZeropage = 1u << 0x04;
inline constexpr uint64_t kIoctlWriteprotect = 1u << 0x06;
inline constexpr uint64_t kIoctlContinue = 1u << 0x07;
inline constexpr uint64_t kIoctlPoison = 1u << 0x08;

// Ioctl modes.
inline constexpr uint32_t kModeDontwake = 1u << 0;  // COPY/ZEROPAGE/CONTINUE/POISON
inline constexpr uint32_t kModeWp = 1u << 1;        // COPY/CONTINUE: install write-protected
inline constexpr uint32_t kWpModeWp = 1u << 0;      // WRITEPROTECT: protect (0: resolve)
inline constexpr uint32_t kWpModeDontwake = 1u << 1;

// uffd_msg.arg.pagefault.flags
inline constexpr uint32_t kMsgWrite = 1u << 0;
inline constexpr uint32_t kMsgWp = 1u << 1;
inline constexpr uint32_t kMsgMinor = 1u << 2;

// mremap flags (MREMAP_*).
inline constexpr uint32_t kMremapMaymove = 1u << 0;
inline constexpr uint32_t kMremapFixed = 1u << 1;
inline constexpr uint32_t kMremapDontunmap = 1u << 2;

// A userfaultfd of the address space (the fd userfaultfd(2) returns). An address space starts
// with one, Ufd::first; uffd_open makes more.
enum class Ufd : uint8_t { first = 0 };

// A thread of the process (the faulting task, `current`): what THREAD_ID messages report and
// what a waiter is. 0 is a thread like any other.
using Tid = uint32_t;

// uffd_msg.event (UFFD_EVENT_*).
enum class UffdEvent : uint8_t {
  pagefault = 0x12,
  fork = 0x13,
  remap = 0x14,
  remove = 0x15,
  unmap = 0x16
};

// One message read from the userfaultfd: a page fault (address, flags, ptid) or a
// non-cooperative event (remove / unmap: [address, end); fork: the new userfaultfd is the
// child's, the Mm passed to fork).
struct UffdMsg {
  uint64_t address = 0;
  uint32_t flags = 0;
  Tid ptid = 0;  // UFFD_FEATURE_THREAD_ID: the faulting thread (else 0)
  UffdEvent event = UffdEvent::pagefault;
  uint64_t end = 0;   // remove / unmap / remap: the end of the range
  uint64_t to = 0;    // remap: where [address, end) went
  constexpr bool operator==(const UffdMsg&) const = default;
};

// What a range ioctl reports: `done` bytes (copy / zeropage / mapped / updated). As in the
// kernel, progress followed by an error reports the progress and EAGAIN when done < len; no
// progress reports the error itself, which the kernel also writes into the result field.
struct UffdResult {
  Err err = Err::ok;
  uint64_t done = 0;
  // Whether the kernel wrote the result field (the bytes done, or -err): not for what it
  // refuses before it starts (no UFFDIO_API yet, a bad range or mode, mmap changing), where
  // the field keeps what the caller put there.
  bool reported = true;
};

// --- faults -----------------------------------------------------------------------------------

enum class FaultKind : uint8_t {
  handled,  // the entry now allows the access: retry it
  retry,    // nothing changed (a migration entry, a race): retry later
  uffd,     // a userfault message was queued and the thread waits for a resolving ioctl
  sigbus,   // lsb says how much memory the error covers (hwpoison) or 0
  sigsegv,  // no VMA, a VMA that forbids the access, or a guard marker
};

constexpr const char* fault_kind_name(FaultKind k) {
  switch (k) {
    case FaultKind::handled: return "handled";
    case FaultKind::retry: return "retry";
    case FaultKind::uffd: return "uffd";
    case FaultKind::sigbus: return "SIGBUS";
    case FaultKind::sigsegv: return "SIGSEGV";
  }
  return "?";
}

// How a handled fault was resolved.
enum class FaultHow : uint8_t {
  none,
  new_folio,   // missing: a new zeroed folio (anon, or a page-cache miss) was mapped
  page_cache,  // missing in the table, present in the page cache: mapped it
  zero_page,   // anonymous read: the shared zero page, read-only
  cow,         // write to a read-only private page: copied
  reuse,       // write to a read-only anonymous page nobody else maps: made writable
  wp_shared,   // write to a read-only shared page the VMA may write: made writable
  young,       // software access flag (the hardware does not set it)
  dirty,       // software dirty (the hardware does not set it)
  numa,        // PROT_NONE-style entry in an accessible VMA: restored
  spurious,    // the entry already allowed it (a stale TLB entry): nothing to do
};

struct FaultResult {
  FaultKind kind = FaultKind::handled;
  FaultHow how = FaultHow::none;
  uint8_t lsb = 0;         // SIGBUS: log2 of the poisoned extent (BUS_MCEERR_AR si_addr_lsb)
  uint8_t shift = 0;       // handled: log2 of the entry the access now uses
  UffdMsg msg{};      // uffd: the message queued
  constexpr bool handled() const { return kind == FaultKind::handled; }
};

// What an access did (Mm::access): it was performed (at pa), or the thread is blocked in a
// userfault (msg queued), or it got a signal.
enum class AccessKind : uint8_t { ok, blocked, sigbus, sigsegv, livelock };

constexpr const char* access_kind_name(AccessKind k) {
  switch (k) {
    case AccessKind::ok: return "ok";
    case AccessKind::blocked: return "blocked";
    case AccessKind::sigbus: return "SIGBUS";
    case AccessKind::sigsegv: return "SIGSEGV";
    case AccessKind::livelock: return "livelock";
  }
  return "?";
}

struct AccessResult {
  AccessKind kind = AccessKind::ok;
  uint64_t pa = 0;      // ok: the physical address the access reached
  uint8_t lsb = 0;      // SIGBUS: log2 of the poisoned extent, 0 if none (si_addr_lsb)
  uint8_t faults = 0;   // faults it took (each handled one is followed by a retry)
  UffdMsg msg{};   // blocked: the message its fault queued
};

// --- memory-failure policy --------------------------------------------------------------------

enum class PoisonPolicy : uint8_t {
  h0,  // upstream: every mapping's hstate-level entry becomes a hwpoison entry (lsb = hstate)
  h1,  // HGM split: the leaf is split down to the base page, only that page is unmapped
};

// --- mmu notifier events ----------------------------------------------------------------------

enum class NotifyEvent : uint8_t { unmap, clear, protection_vma, protection_page };

constexpr const char* notify_event_name(NotifyEvent e) {
  switch (e) {
    case NotifyEvent::unmap: return "UNMAP";
    case NotifyEvent::clear: return "CLEAR";
    case NotifyEvent::protection_vma: return "PROTECTION_VMA";
    case NotifyEvent::protection_page: return "PROTECTION_PAGE";
  }
  return "?";
}

struct Notification {
  NotifyEvent event = NotifyEvent::clear;
  uint64_t start = 0;
  uint64_t end = 0;
  constexpr bool operator==(const Notification&) const = default;
};

// A secondary MMU (KVM) listening to invalidations: start() before the primary changes,
// end() after. Optional.
struct NotifierHook {
  void* self = nullptr;
  void (*start)(void* self, const Notification&) = nullptr;
  void (*end)(void* self, const Notification&) = nullptr;
};

// --- counters -----------------------------------------------------------------------------------

struct Counters {
  static constexpr unsigned kLog = 16;
  uint64_t pt_alloc[8] = {};      // table pages allocated, per level of the entries they hold
  uint64_t pt_free[8] = {};
  uint64_t entries_written = 0;   // every store / exchange / successful cmpxchg of an entry
  uint64_t notif_start = 0;       // mmu_notifier_invalidate_range_start calls
  uint64_t notif_end = 0;
  Notification notif_log[kLog] = {};  // the first kLog invalidations since the last reset
  uint64_t tlb_flush = 0;         // range invalidations
  uint64_t tlb_flush_all = 0;
  TlbFlush last_flush{};
  uint64_t uffd_msgs = 0;         // messages queued
  uint64_t uffd_wakes = 0;        // waiters woken
  uint64_t faults = 0;
  uint64_t fault_kind[5] = {};    // per FaultKind
  uint64_t cow = 0;

  uint64_t pt_alloc_total() const {
    uint64_t n = 0;
    for (uint64_t v : pt_alloc) n += v;
    return n;
  }
  uint64_t pt_free_total() const {
    uint64_t n = 0;
    for (uint64_t v : pt_free) n += v;
    return n;
  }
};

}  // namespace hugepte::mm
