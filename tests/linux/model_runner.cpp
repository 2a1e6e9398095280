// model_runner.cpp - the linux ring's model side: every scenario of scenario.hpp against the mm
// model (hugepte::mm::Mm over the x86-64 4-level format, the host model underneath), one fresh
// address space per scenario, one JSON line each - what linux_init.cpp prints on the kernel.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "hugepte/arch/x86.hpp"
#include "hugepte/env/host.hpp"
#include "hugepte/mm/mm.hpp"
#include "scenario.hpp"

namespace {

namespace hm = hugepte::mm;
using hpt_linux::Access;
using hpt_linux::Backing;
using hpt_linux::Ret;

using F = hugepte::X86Format<4>;
using Env = hugepte::host::EnvFor<F>;
using M = hm::Mm<F, Env, hugepte::host::TlbModel, hugepte::host::Folios>;

Ret result(hugepte::Err e, std::string detail = {}) {
  return Ret{hugepte::err_name(e), std::move(detail)};
}

struct ModelBackend {
  static constexpr uint64_t kBase = uint64_t{0x2000} << 32;  // as on Linux

  Env env;
  hugepte::host::TlbModel tlb;
  hugepte::host::Folios folios;
  M::Mem mem{folios, 4096, hm::Policy::s0};  // Linux 6.1: one mapcount per whole-folio mapping
  M mm{mem, env, tlb, M::Options{.profile = hm::Profile::linux_6_1}};
  std::uint32_t last_file = hm::kNoFile;
  unsigned char src[2 * hpt_linux::k2M];  // UFFDIO_COPY's source, as on Linux

  ModelBackend() {
    (void)mm.init();
    for (uint64_t i = 0; i < sizeof src; ++i) src[i] = static_cast<unsigned char>(i * 7 + 1);
    (void)mem.set_pool(30, 1);  // the 1G pool the kernel reserved at boot
  }

  Ret pools(uint64_t pages_2m) { return result(mem.set_pool(21, pages_2m)); }
  Ret map_anon(uint64_t off, uint64_t len, unsigned prot) {
    hm::VmaSpec s;
    s.start = kBase + off;
    s.len = len;
    s.prot = hugepte::Prot{(prot & hpt_linux::kProtRead) != 0, (prot & hpt_linux::kProtWrite) != 0,
                           false, false};
    return result(mm.mmap(s).err);
  }
  Ret map_file(uint64_t off, uint64_t len, Backing k, bool shared, uint64_t pages,
               bool noreserve = false) {
    const unsigned shift = k == Backing::huge2m ? 21 : k == Backing::huge1g ? 30 : 12;
    auto f = mem.create_file(k == Backing::shmem ? hm::FileKind::shmem : hm::FileKind::hugetlb,
                             shift, pages << shift);
    if (!f) return result(f.err);
    last_file = f.value;
    hm::VmaSpec s;
    s.start = kBase + off;
    s.len = len;
    s.shared = shared;
    s.backing = hm::Backing::file;
    s.file = f.value;
    s.noreserve = noreserve;
    return result(mm.mmap(s).err);
  }
  Ret map_file_noreserve(uint64_t off, uint64_t len, Backing k, bool shared, uint64_t pages) {
    return map_file(off, len, k, shared, pages, true);
  }
  Ret fallocate(uint64_t offset, uint64_t len) {
    return result(mem.fallocate(last_file, offset, len));
  }
  Ret punch_hole(uint64_t offset, uint64_t len) {
    return result(mem.punch_hole(last_file, offset, len));
  }
  Ret pagemap(uint64_t off) {
    return result(hugepte::Err::ok, hpt_linux::pagemap_bits(mm.pagemap(kBase + off)));
  }
  Ret maps() {
    std::string out;
    for (const hm::Vma* v = mm.find_vma(kBase); v && v->start < kBase + 64 * hpt_linux::kGiB;
         v = mm.find_vma(v->end))
      out += (out.empty() ? "+" : " +") + hpt_linux::hex(v->start - kBase).substr(2) + "-+" +
             hpt_linux::hex(v->end - kBase).substr(2);
    return result(hugepte::Err::ok, out.empty() ? "none" : out);
  }
  Ret meminfo() {
    return result(hugepte::Err::ok, "free=" + std::to_string(mem.pool_free(21)) +
                                        " rsvd=" + std::to_string(mem.pool_reserved(21)));
  }
  Ret map_alias_private(uint64_t off, uint64_t len) { return map_alias(off, len, false); }
  Ret map_alias_private_noreserve(uint64_t off, uint64_t len) {
    return map_alias(off, len, false, true);
  }
  Ret map_alias(uint64_t off, uint64_t len, bool shared = true, bool noreserve = false) {
    hm::VmaSpec s;
    s.start = kBase + off;
    s.len = len;
    s.shared = shared;
    s.noreserve = noreserve;
    s.backing = hm::Backing::file;
    s.file = last_file;
    return result(mm.mmap(s).err);
  }
  Ret mprotect(uint64_t off, uint64_t len, unsigned prot) {
    return result(mm.mprotect(kBase + off, len,
                              hugepte::Prot{(prot & hpt_linux::kProtRead) != 0,
                                            (prot & hpt_linux::kProtWrite) != 0, false, false}));
  }
  // munmap and MADV_DONTNEED run as a thread of their own, which a non-cooperative event may
  // block until the monitor reads it.
  Ret munmap(uint64_t off, uint64_t len) {
    const hm::Tid tid = ++touches;
    const hugepte::Err e = mm.munmap(kBase + off, len, tid);
    return mm.uffd_blocked(tid) ? Ret{"blocked", {}} : result(e);
  }
  Ret mremap(uint64_t off, uint64_t old_len, uint64_t new_len, unsigned flags, uint64_t new_off) {
    const hm::Tid tid = ++touches;
    const auto r = mm.mremap(kBase + off, old_len, new_len, flags, kBase + new_off, tid);
    if (mm.uffd_blocked(tid)) return Ret{"blocked", {}};
    if (!r) return result(r.err);
    return Ret{"OK at=+" + hpt_linux::hex(r.value - kBase).substr(2), {}};
  }
  // MADV_HWPOISON: memory_failure on the PFN the page at off maps (EFAULT-like ENOENT if none).
  Ret madvise_hwpoison(uint64_t off) {
    return result(
        mm.madvise_hwpoison(kBase + (off & ~(hpt_linux::kPage - 1)), 0).err);  // main thread
  }
  Ret madvise_dontneed(uint64_t off, uint64_t len) {
    const hm::Tid tid = ++touches;
    const hugepte::Err e = mm.madvise_dontneed(kBase + off, len, tid);
    return mm.uffd_blocked(tid) ? Ret{"blocked", {}} : result(e);
  }

  // The access as a CPU does it, on a thread of its own (touch number n is thread n + 1, as
  // each touch is a new thread on Linux).
  hm::Tid touches = 0;
  struct Blocked {
    hm::Tid tid;
    uint64_t va;
    hm::Access access;
  };
  std::vector<Blocked> blocked, child_blocked;  // touches waiting in a userfault
  Ret touch(uint64_t off, Access a) { return touch_in(mm, blocked, off, a); }
  Ret touch_in(M& space, std::vector<Blocked>& waiting, uint64_t off, Access a) {
    const hm::Access access = a == Access::write ? hm::Access::write : hm::Access::read;
    const hm::AccessResult r = space.access(kBase + off, access, ++touches);
    if (r.kind == hm::AccessKind::blocked) waiting.push_back({touches, kBase + off, access});
    return access_ret(r);
  }
  static Ret access_ret(const hm::AccessResult& r) {
    switch (r.kind) {
      case hm::AccessKind::ok: return Ret{"ok", {}};
      case hm::AccessKind::blocked: return Ret{"userfault", {}};
      case hm::AccessKind::sigbus:
        return Ret{r.lsb ? "SIGBUS lsb=" + std::to_string(r.lsb) : "SIGBUS", {}};
      case hm::AccessKind::sigsegv: return Ret{"SIGSEGV", {}};
      case hm::AccessKind::livelock: break;
    }
    return Ret{"hang", {}};
  }

  Ret uffd_api(uint64_t features) { return result(mm.uffd_api(features)); }
  Ret uffd_api_again(uint64_t features) { return result(mm.uffd_api(features)); }
  Ret uffd_register(uint64_t off, uint64_t len, unsigned mode) {
    auto r = mm.uffd_register(kBase + off, len, mode);
    if (!r) return result(r.err);
    return result(r.err, "ioctls=" + hpt_linux::hex(r.value));
  }
  Ret uffd_unregister(uint64_t off, uint64_t len) {
    return result(mm.uffd_unregister(kBase + off, len));
  }

  // The result field as the kernel leaves it: bytes done, or -errno with no progress.
  static Ret ranged(hm::UffdResult r) {
    if (!r.reported) return result(r.err, "field=untouched");
    if (r.err == hugepte::Err::ok || r.done != 0)
      return result(r.err, "field=" + hpt_linux::dec(static_cast<long long>(r.done)));
    return result(r.err, std::string("field=-") + hugepte::err_name(r.err));
  }
  Ret uffd_copy(uint64_t off, uint64_t len, unsigned mode) {
    return ranged(mm.uffd_copy(kBase + off, src, len, mode));
  }
  Ret child_uffd_copy(uint64_t off, uint64_t len, unsigned mode) {
    if (!child) return Ret{"EBADF", {}};
    return ranged(child->mm.uffd_copy(kBase + off, src, len, mode));
  }
  Ret child_uffd_writeprotect(uint64_t off, uint64_t len, unsigned mode) {
    if (!child) return Ret{"EBADF", {}};
    return result(child->mm.uffd_writeprotect(kBase + off, len, mode));
  }
  Ret child_uffd_api(uint64_t features) {
    if (!child) return Ret{"EBADF", {}};
    return result(child->mm.uffd_api(features));
  }
  Ret child_uffd_read() {
    if (!child) return Ret{"EBADF", {}};
    return msg(child->mm.uffd_read());
  }
  Ret uffd_copy_from(uint64_t off, uint64_t src_off, uint64_t len, unsigned mode) {
    return ranged(mm.uffd_copy_from(kBase + off, kBase + src_off, len, mode));
  }
  Ret uffd_zeropage(uint64_t off, uint64_t len, unsigned mode) {
    return ranged(mm.uffd_zeropage(kBase + off, len, mode));
  }
  Ret uffd_continue(uint64_t off, uint64_t len, unsigned mode) {
    return ranged(mm.uffd_continue(kBase + off, len, mode));
  }
  Ret uffd_poison(uint64_t off, uint64_t len, unsigned mode) {
    return ranged(mm.uffd_poison(kBase + off, len, mode));
  }
  Ret uffd_writeprotect(uint64_t off, uint64_t len, unsigned mode) {
    return result(mm.uffd_writeprotect(kBase + off, len, mode));
  }
  // A woken thread retries its access, as it does on Linux (it may block again).
  void settle() {
    settle_in(mm, blocked);
    if (child) settle_in(child->mm, child_blocked);
  }
  static void settle_in(M& space, std::vector<Blocked>& waiting) {
    for (std::size_t i = 0; i < waiting.size();) {
      const Blocked t = waiting[i];
      if (space.uffd_blocked(t.tid)) {
        ++i;
        continue;
      }
      waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
      if (space.access(t.va, t.access, t.tid).kind == hm::AccessKind::blocked)
        waiting.push_back(t);
    }
  }
  // A forked child: its own address space over the same memory.
  struct ChildSpace {
    Env env;
    hugepte::host::TlbModel tlb;
    M mm;
    explicit ChildSpace(M::Mem& mem) : mm(mem, env, tlb) { (void)mm.init(); }
  };
  std::unique_ptr<ChildSpace> child;  // declared after mm: destroyed before it and mem
  // fork runs as a thread of its own (EVENT_FORK may block it until the monitor reads).
  Ret fork_child() {
    child = std::make_unique<ChildSpace>(mem);
    child_blocked.clear();
    const hm::Tid tid = ++touches;
    const hugepte::Err e = mm.fork(child->mm, tid);
    return mm.uffd_blocked(tid) ? Ret{"blocked", {}} : result(e);
  }
  Ret child_touch(uint64_t off, Access a) {
    if (!child) return Ret{"ESRCH", {}};
    return touch_in(child->mm, child_blocked, off, a);
  }
  Ret child_pagemap(uint64_t off) {
    if (!child) return Ret{"ESRCH", {}};
    return Ret{"OK", hpt_linux::pagemap_bits(child->mm.pagemap(kBase + off))};
  }
  Ret child_exit() {
    if (!child) return Ret{"ESRCH", {}};
    child.reset();
    child_blocked.clear();
    return result(hugepte::Err::ok);
  }
  Ret uffd_close() { return result(mm.uffd_close()); }
  Ret uffd_open() { return result(mm.uffd_open().err); }
  Ret uffd_wake(uint64_t off, uint64_t len) { return result(mm.uffd_wake(kBase + off, len)); }
  Ret uffd_read() { return msg(mm.uffd_read()); }
  // A second userfaultfd (uffd2_*): EBADF until uffd2_open.
  hm::Ufd second = static_cast<hm::Ufd>(M::kMaxUffds);
  Ret uffd2_open() {
    const auto fd = mm.uffd_open();
    if (fd.ok()) second = fd.value;
    return result(fd.err);
  }
  Ret uffd2_api(uint64_t features) { return result(mm.uffd_api(features, second)); }
  Ret uffd2_register(uint64_t off, uint64_t len, unsigned mode) {
    auto r = mm.uffd_register(kBase + off, len, mode, second);
    if (!r) return result(r.err);
    return result(r.err, "ioctls=" + hpt_linux::hex(r.value));
  }
  Ret uffd2_read() { return msg(mm.uffd_read(second)); }
  Ret uffd2_copy(uint64_t off, uint64_t len, unsigned mode) {
    return ranged(mm.uffd_copy(kBase + off, src, len, mode, second));
  }
  Ret uffd2_wake(uint64_t off, uint64_t len) {
    return result(mm.uffd_wake(kBase + off, len, second));
  }
  Ret uffd2_close() { return result(mm.uffd_close(second)); }
  static Ret msg(const hugepte::Result<hm::UffdMsg>& m) {
    if (!m) return result(m.err);
    if (m.value.event == hm::UffdEvent::fork) return result(m.err, "fork");
    if (m.value.event == hm::UffdEvent::remap)
      return result(m.err, "remap from=+" + hpt_linux::hex(m.value.address - kBase) + " to=+" +
                               hpt_linux::hex(m.value.to - kBase) + " len=" +
                               hpt_linux::hex(m.value.end - m.value.address));
    if (m.value.event == hm::UffdEvent::remove || m.value.event == hm::UffdEvent::unmap)
      return result(m.err,
                    std::string(m.value.event == hm::UffdEvent::remove ? "remove" : "unmap") +
                        " start=+" + hpt_linux::hex(m.value.address - kBase) + " end=+" +
                        hpt_linux::hex(m.value.end - kBase));
    return result(m.err, "pagefault addr=+" + hpt_linux::hex(m.value.address - kBase) +
                             " flags=" + hpt_linux::hex(m.value.flags) +
                             (m.value.ptid ? " ptid=touch#" + std::to_string(m.value.ptid) : ""));
  }
};

}  // namespace

int main() {
  for (const auto& s : hpt_linux::Scenarios<ModelBackend>::all()) {
    auto b = std::make_unique<ModelBackend>();
    hpt_linux::Rec r{s.name, {}};
    s.body(*b, r);
    std::printf("%s\n", r.json().c_str());
  }
  return 0;
}
