// hugepte/mm/access.hpp - an access as a CPU performs it: what arch/*/mm/fault.c does around
// handle_mm_fault (do_user_addr_fault and its retry), and the thread that blocks in a userfault.
// This is the call to drive the model like a process: map, access, read the message, resolve,
// access again.
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// Whether the entry lets the CPU perform the access without a fault: a present leaf that
// grants it (user pages: with the user bit), accessed unless the hardware sets the access
// flag itself, and for a write writable and - unless the hardware sets it - dirty.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::allows(const Entry& e, Access a) const {
  if (e.kind != Kind::leaf) return false;
  if (opt_.user && !e.prot.user) return false;
  if (!e.accessed && !opt_.hw_accessed) return false;
  switch (a) {
    case Access::read: return e.prot.read;
    case Access::exec: return e.prot.exec;
    case Access::write: return e.writable && (opt_.hw_dirty || (e.prot.write && e.dirty));
  }
  return false;
}

// The access to va by thread `tid`: while the entry does not allow it, fault
// (handle_mm_fault, with `tid` as the faulting thread) and retry. Outcomes:
//   ok       performed; pa is where it went
//   blocked  the thread waits in a userfault: msg is what its fault queued (a WAKE, COPY,
//            CONTINUE... covering it wakes it; the caller then accesses again). A thread that
//            is already blocked cannot access: blocked, no new fault.
//   sigbus   (lsb set for hwpoison), sigsegv: the signal the thread gets
//   livelock the handler kept reporting progress that never let the access through (never
//            expected: a bug in the model, not a kernel behaviour)
// The hardware's own accessed/dirty updates are not made here; with hw_accessed/hw_dirty the
// entry is simply taken to allow it.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
AccessResult Mm<F, Env, Tlb, FE>::access(uint64_t va, Access a, Tid tid) {
  AccessResult r;
  if (uffd_blocked(tid)) {
    r.kind = AccessKind::blocked;
    return r;
  }
  constexpr unsigned kMaxFaults = 8;  // a handled fault lets the retry through; 8 is generous
  const Tid saved = current_;
  current_ = tid;
  for (;;) {
    const View v = view(va);
    if (allows(v.entry, a)) {
      r.kind = AccessKind::ok;
      r.pa = v.entry.addr + (va & (bit(v.shift) - 1));
      break;
    }
    if (r.faults == kMaxFaults) {
      r.kind = AccessKind::livelock;
      break;
    }
    ++r.faults;
    const FaultResult f = handle_fault(va, a);
    if (f.kind == FaultKind::handled || f.kind == FaultKind::retry) continue;
    if (f.kind == FaultKind::uffd) {
      r.kind = AccessKind::blocked;
      r.msg = f.msg;
    } else {
      r.kind = f.kind == FaultKind::sigbus ? AccessKind::sigbus : AccessKind::sigsegv;
      r.lsb = f.lsb;
    }
    break;
  }
  current_ = saved;
  return r;
}

}  // namespace hugepte::mm
