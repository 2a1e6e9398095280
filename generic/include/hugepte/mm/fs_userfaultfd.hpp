// hugepte/mm/fs_userfaultfd.hpp - Linux fs/userfaultfd.c: the userfaultfd file - UFFDIO_API,
// UFFDIO_REGISTER and UNREGISTER, read, UFFDIO_WAKE, close (userfaultfd_release) - and
// handle_userfault with its messages and waiting threads. The ioctls that fill and protect
// memory are mm/userfaultfd.c's (userfaultfd.hpp).
#pragma once

#include "hugepte/format.hpp"
#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// Whether F's leaves can carry Linux's uffd-wp bit (pte_uffd_wp): what UFFDIO_REGISTER_MODE_WP
// needs (userfaultfd_wp_async / pgtable_supports_uffd_wp). The one capability probe; tests use it.
template <Format F>
constexpr bool uffd_wp_supported() {
  Entry e;
  e.kind = Kind::leaf;
  e.prot = kProtR;
  e.shift = static_cast<uint8_t>(F::shift(0));
  e.accessed = true;
  e.soft.uffd_wp = true;
  return F::encode(e, 0).ok();
}

// UFFDIO_API: must come first and once. EINVAL on a second call or an unknown feature.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::uffd_api(uint64_t features, Ufd fd) {
  UffdCtx* c = ctx_of(fd);
  if (!c) return Err::ebadf;
  const uint64_t known = opt_.profile == Profile::linux_6_1 ? kFeatLinux61 : kFeatAll;
  if (c->api || (features & ~known)) return Err::einval;
  c->api = true;
  c->features = features;
  return Err::ok;
}

// UFFDIO_REGISTER of the VMAs in [start, start + len), as userfaultfd_register: the range may
// hold holes and cut VMAs, which are split at its edges (split_vma), so that exactly the range
// is registered; the VMAs then merge with neighbours they fit (vma_merge). Returns the usable
// ioctls. Errors (nothing changes on any):
//   EBADF   fd is not open
//   EINVAL  no UFFDIO_API yet, a bad mode, an empty or misaligned range, no VMA in it, start
//           inside a hugetlb VMA off its hstate, end inside one off its hstate, MINOR on
//           anonymous memory, WP on a format without a uffd-wp bit
//   EBUSY   a VMA in the range is registered with another userfaultfd
//   ENOMEM  no VMA ends above start, or no VMA slot for a split
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Result<uint64_t> Mm<F, Env, Tlb, FE>::uffd_register(uint64_t start, uint64_t len, uint32_t mode,
                                                   Ufd fd) {
  const UffdCtx* c = ctx_of(fd);
  if (!c) return Err::ebadf;
  if (!c->api || mode == 0 || (mode & ~(kRegMissing | kRegWp | kRegMinor))) return Err::einval;
  if (Err e = uffd_range_ok(start, len); e != Err::ok) return e;
  if ((mode & kRegWp) && !uffd_wp_supported<F>()) return Err::einval;
  const uint64_t end = start + len;
  if (Err e = uffd_vmas_ok(start, end, true); e != Err::ok) return e;
  uint64_t ioctls = kIoctlWake | kIoctlCopy | kIoctlZeropage;
  if (opt_.profile != Profile::linux_6_1) ioctls |= kIoctlPoison;
  if (mode & kRegWp) ioctls |= kIoctlWriteprotect;
  if (mode & kRegMinor) ioctls |= kIoctlContinue;  // "CONTINUE is only supported for MINOR ranges"
  for (const Vma& v : vmas_) {
    if (!v.used || v.end <= start || v.start >= end) continue;
    if ((mode & kRegMinor) && v.backing == Backing::anon) return Err::einval;
    if (v.uffd && v.uctx != static_cast<uint8_t>(fd)) return Err::ebusy;
    if (v.hugetlb) ioctls &= ~kIoctlZeropage;  // "basic" ioctls for a range with hugetlb
  }
  if (Err e = split_vmas_at(start, end); e != Err::ok) return e;
  each_vma(start, end, [&](Vma& v) {
    if (v.uffd == mode && v.uctx == static_cast<uint8_t>(fd)) return;  // already so
    v.uffd = mode;
    v.uctx = static_cast<uint8_t>(fd);
    vma_merge(v);
  });
  return ioctls;
}

// validate_range: a non-empty, page-aligned range inside the address space.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::uffd_range_ok(uint64_t start, uint64_t len) const {
  if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage) || start + len < start)
    return Err::einval;
  return check_range<F>(start, start + len) == Err::ok ? Err::ok : Err::einval;
}

// The VMA checks REGISTER and UNREGISTER share: a VMA ends above start (else ENOMEM), the first
// starts below end (else EINVAL), a hugetlb VMA holding start (or, for REGISTER, end) has it on
// its hstate (EINVAL).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::uffd_vmas_ok(uint64_t start, uint64_t end, bool check_end) const {
  const Vma* first = nullptr;
  for (const Vma& v : vmas_)
    if (v.used && v.end > start && (!first || v.start < first->start)) first = &v;
  if (!first) return Err::enomem;
  if (first->start >= end) return Err::einval;
  if (first->hugetlb && !aligned(start, first->hshift)) return Err::einval;
  if (check_end)
    for (const Vma& v : vmas_)
      if (v.used && v.hugetlb && end > v.start && end <= v.end && !aligned(end, v.hshift))
        return Err::einval;
  return Err::ok;
}

// UFFDIO_UNREGISTER, as userfaultfd_unregister: the same range rules as REGISTER (but the end of
// a hugetlb VMA), the VMAs split at the edges. A VMA registered for MISSING has the threads
// waiting on its own userfaultfd in the range woken; one registered for WP has its uffd-wp bits
// and markers reset (uffd_wp_range(.., false): one PROTECTION_VMA notifier pair and a TLB
// invalidation per such VMA). A thread waiting on a WP or MINOR fault is not woken. A VMA in
// the range registered with another userfaultfd: EINVAL upstream (since "userfaultfd: prevent
// unregistering VMAs through a different userfaultfd", 2025); Linux 6.1 unregisters it too
// (profile linux_6_1, which the linux ring checks). Errors: EBADF (fd not open), EINVAL (no API
// yet, an empty or misaligned range, no VMA in it, start off a hugetlb VMA's hstate, another
// userfaultfd's VMA upstream), ENOMEM (no VMA ends above start, no slot for a split).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::uffd_unregister(uint64_t start, uint64_t len, Ufd fd) {
  const UffdCtx* c = ctx_of(fd);
  if (!c) return Err::ebadf;
  if (!c->api) return Err::einval;
  if (Err e = uffd_range_ok(start, len); e != Err::ok) return e;
  const uint64_t end = start + len;
  if (Err e = uffd_vmas_ok(start, end, false); e != Err::ok) return e;
  if (opt_.profile != Profile::linux_6_1)
    for (const Vma& v : vmas_)
      if (v.used && v.uffd && v.uctx != static_cast<uint8_t>(fd) && v.end > start &&
          v.start < end)
        return Err::einval;
  bool any = false;
  for (const Vma& v : vmas_) any = any || (v.used && v.uffd && v.end > start && v.start < end);
  if (any) {
    if (Err e = split_vmas_at(start, end); e != Err::ok) return e;
  }
  each_vma(start, end, [&](Vma& v) {
    if (!v.uffd) return;
    if (v.uffd & kRegMissing) wake_userfault(v.uctx, v.start, v.end);
    userfaultfd_clear_vma(v);
    vma_merge(v);
  });
  return Err::ok;
}

// userfaultfd_clear_vma: v is no longer registered; if it was for WP, its uffd-wp bits and
// markers go first (uffd_wp_range(.., false)), inside one PROTECTION_VMA pair and one flush.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::userfaultfd_clear_vma(Vma& v) {
  if (v.uffd & kRegWp) {
    notify_start({NotifyEvent::protection_vma, v.start, v.end});
    change_uffd_wp(v, v.start, v.end, false);
    flush(v.start, v.end);
    notify_end({NotifyEvent::protection_vma, v.start, v.end});
  }
  v.uffd = 0;
  v.uctx = 0;
}

// close(uffd), as userfaultfd_release - the last reference to the file going: the VMAs
// registered with it lose their registration, and those registered for WP their uffd-wp bits
// and markers too, as UNREGISTER does (Debian's 6.1 does it: the linux ring shows it); every
// thread waiting on it is woken (it retries its access), and its queued messages and features
// go. Every call on fd is then EBADF. Errors: EBADF (not open).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::uffd_close(Ufd fd) {
  UffdCtx* c = ctx_of(fd);
  if (!c) return Err::ebadf;
  const uint8_t id = static_cast<uint8_t>(fd);
  each_vma(0, ~uint64_t{0}, [&](Vma& v) {
    if (!v.uffd || v.uctx != id) return;
    userfaultfd_clear_vma(v);
    vma_merge(v);
  });
  wake_userfault(id, 0, ~uint64_t{0});
  // Threads waiting for their events go on (userfaultfd_event_wait_completion sees `released`):
  // a REMOVE's zap happens now.
  for (unsigned i = 0; i < waiter_n_;) {
    if (waiters_[i].ctx == id)
      complete_event(take_waiter(i), true);
    else
      ++i;
  }
  unsigned k = 0;
  for (unsigned i = 0; i < msg_n_; ++i) {
    if (msg_ctx_[i] == id) continue;
    msgs_[k] = msgs_[i];
    msg_ctx_[k++] = msg_ctx_[i];
  }
  msg_n_ = k;
  *c = UffdCtx{};
  return Err::ok;
}

// userfaultfd(2): a new userfaultfd for this address space (the lowest free Ufd), which then
// needs UFFDIO_API. Errors: EBUSY (kMaxUffds are open: the model's limit).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Result<Ufd> Mm<F, Env, Tlb, FE>::uffd_open() {
  for (unsigned i = 0; i < kMaxUffds; ++i) {
    if (ctx_[i].file) continue;
    ctx_[i] = UffdCtx{};
    ctx_[i].file = true;
    return static_cast<Ufd>(i);
  }
  return Err::ebusy;
}

// read(uffd): the oldest message queued on fd.
//
// Page faults come before non-cooperative events, whatever the order they were queued in
// (userfaultfd_ctx_read looks at the pending faults first). Reading an event lets the thread
// that waits for it go on (userfaultfd_event_complete): a REMOVE's pages are zapped then.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Result<UffdMsg> Mm<F, Env, Tlb, FE>::uffd_read(Ufd fd) {
  if (!ctx_of(fd)) return Err::ebadf;
  const uint8_t id = static_cast<uint8_t>(fd);
  unsigned at = msg_n_;
  for (unsigned i = 0; i < msg_n_; ++i) {
    if (msg_ctx_[i] != id) continue;
    if (msgs_[i].event == UffdEvent::pagefault) {
      at = i;
      break;
    }
    if (at == msg_n_) at = i;  // the oldest event, if no fault waits
  }
  if (at == msg_n_) return Err::eagain;
  const UffdMsg m = msgs_[at];
  for (unsigned i = at + 1; i < msg_n_; ++i) {
    msgs_[i - 1] = msgs_[i];
    msg_ctx_[i - 1] = msg_ctx_[i];
  }
  --msg_n_;
  if (m.event != UffdEvent::pagefault) {
    for (unsigned i = 0; i < waiter_n_; ++i) {
      const Waiter& w = waiters_[i];
      if (w.ctx != id || w.event != m.event || w.va != m.address || w.end != m.end) continue;
      complete_event(take_waiter(i), false);
      break;
    }
  }
  return m;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
unsigned Mm<F, Env, Tlb, FE>::uffd_pending(Ufd fd) const {
  unsigned n = 0;
  for (unsigned i = 0; i < msg_n_; ++i) n += msg_ctx_[i] == static_cast<uint8_t>(fd);
  return n;
}

// Whether v's userfaultfd wants this non-cooperative event (its feature is on).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::wants_event(const Vma& v, uint64_t feature) const {
  const UffdCtx& c = ctx_[v.uctx];
  return v.uffd && c.file && c.api && (c.features & feature);
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::queue_msg(uint8_t ctx, const UffdMsg& m) {
  if (msg_n_ == kMaxMsgs) return;
  msgs_[msg_n_] = m;
  msg_ctx_[msg_n_++] = ctx;
}

// userfaultfd_event_wait_completion: the event is queued on userfaultfd ctx, its range ioctls
// say EAGAIN (mmap_changing) and thread tid waits until the event is read. Returns the waiter
// (null if the queue is full).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
auto Mm<F, Env, Tlb, FE>::queue_event(uint8_t ctx, UffdEvent ev, uint64_t start, uint64_t end,
                                     Tid tid, uint64_t to) -> Waiter* {
  UffdMsg m;
  m.event = ev;
  m.address = start;
  m.end = end;
  m.to = to;
  queue_msg(ctx, m);
  ++ctx_[ctx].changing;
  ++c_.uffd_msgs;
  if (waiter_n_ == kMaxWaiters) return nullptr;
  Waiter& w = waiters_[waiter_n_++];
  w = Waiter{};
  w.va = start;
  w.msg_addr = start;
  w.tid = tid;
  w.event = ev;
  w.end = end;
  w.ctx = ctx;
  return &w;
}

// Removes waiter i from the queue (the others keep their order) and returns it.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
auto Mm<F, Env, Tlb, FE>::take_waiter(unsigned i) -> Waiter {
  const Waiter w = waiters_[i];
  for (unsigned k = i + 1; k < waiter_n_; ++k) waiters_[k - 1] = waiters_[k];
  --waiter_n_;
  return w;
}

// The waiting thread goes on: mmap_changing drops, and a REMOVE's zap runs. A FORK read hands
// the child's userfaultfd over; a FORK released by close (userfaultfd_event_wait_completion's
// release_new_ctx) takes the registration from the child's VMAs - their uffd-wp bits stay, as in
// Linux - and the child's userfaultfd goes.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::complete_event(const Waiter& w, bool released) {
  if (w.event == UffdEvent::pagefault) return;
  if (ctx_[w.ctx].changing) --ctx_[w.ctx].changing;
  if (w.event == UffdEvent::remove) (void)dontneed_now(w.va, w.end);
  if (w.event != UffdEvent::fork || !w.forked) return;
  Mm& child = *w.forked;
  bool more = false;  // another unread FORK message of ours announces the same child
  for (unsigned i = 0; i < waiter_n_; ++i) more = more || waiters_[i].forked == &child;
  if (!more) child.fork_parent_ = nullptr;
  if (!released) return;
  for (Vma& v : child.vmas_) {
    if (v.uffd && v.uctx == w.ctx) {
      v.uffd = 0;
      v.uctx = 0;
    }
  }
  child.ctx_[w.ctx] = UffdCtx{};
}

// An address space that goes away leaves no FORK link behind: a child unlinks itself from its
// parent's unread FORK message, a parent from the children its messages announce.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::forget_fork() {
  if (fork_parent_)
    for (unsigned i = 0; i < fork_parent_->waiter_n_; ++i)
      if (fork_parent_->waiters_[i].forked == this) fork_parent_->waiters_[i].forked = nullptr;
  for (unsigned i = 0; i < waiter_n_; ++i)
    if (waiters_[i].forked) waiters_[i].forked->fork_parent_ = nullptr;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::uffd_waiting(uint64_t va) const {
  for (unsigned i = 0; i < waiter_n_; ++i)
    if (waiters_[i].va == va) return true;
  return false;
}
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
bool Mm<F, Env, Tlb, FE>::uffd_blocked(Tid tid) const {
  for (unsigned i = 0; i < waiter_n_; ++i)
    if (waiters_[i].tid == tid) return true;
  return false;
}

// UFFDIO_WAKE.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
Err Mm<F, Env, Tlb, FE>::uffd_wake(uint64_t start, uint64_t len, Ufd fd) {
  if (!ctx_of(fd)) return Err::ebadf;
  if (len == 0 || !aligned(start, kPage) || !aligned(len, kPage)) return Err::einval;
  wake_userfault(static_cast<uint8_t>(fd), start, start + len);
  return Err::ok;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
UffdMsg Mm<F, Env, Tlb, FE>::make_msg(const Vma& v, uint64_t va, uint32_t flags) const {
  const uint64_t features = ctx_[v.uctx].features;
  uint64_t a = align_down(va, kPage);
  if (features & kFeatExactAddress)
    a = va;
  else if (v.hugetlb && !v.hgm)
    a = align_down(va, v.hshift);
  return UffdMsg{a, flags, (features & kFeatThreadId) ? current_ : Tid{0}};
}

// handle_userfault: queues the message and blocks the faulting thread (`current_`); with
// UFFD_FEATURE_SIGBUS, SIGBUS instead.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
FaultResult Mm<F, Env, Tlb, FE>::handle_userfault(const Vma& v, uint64_t va, uint32_t flags) {
  if (ctx_[v.uctx].features & kFeatSigbus) return sig(FaultKind::sigbus);
  FaultResult r;
  r.kind = FaultKind::uffd;
  r.msg = make_msg(v, va, flags);
  queue_msg(v.uctx, r.msg);
  if (waiter_n_ < kMaxWaiters) {
    Waiter& w = waiters_[waiter_n_++];
    w = Waiter{va, r.msg.address, current_};
    w.ctx = v.uctx;
  }
  ++c_.uffd_msgs;
  return r;
}

// __wake_userfault on userfaultfd ctx.
// userfaultfd_wake_function: a waiter wakes when its message's address lies in the range
// (the hstate-aligned address for hugetlb without EXACT_ADDRESS, not the faulting one).
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::wake_userfault(uint8_t ctx, uint64_t start, uint64_t end) {
  unsigned k = 0;
  for (unsigned i = 0; i < waiter_n_; ++i) {
    const bool fault = waiters_[i].event == UffdEvent::pagefault;  // events wait for a read
    if (fault && waiters_[i].ctx == ctx && waiters_[i].msg_addr >= start &&
        waiters_[i].msg_addr < end)
      ++c_.uffd_wakes;
    else
      waiters_[k++] = waiters_[i];
  }
  waiter_n_ = k;
}

}  // namespace hugepte::mm
