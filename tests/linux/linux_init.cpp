// linux_init.cpp - the linux ring's /init: runs every scenario of scenario.hpp with real system
// calls on the kernel it boots under (Debian's 6.1 under qemu-system-x86_64), one forked child
// per scenario (a fresh address space, a fresh userfaultfd), prints one JSON line each, then
// powers the machine off. Built static; nothing else is in the initramfs.
#include <fcntl.h>
#include <linux/memfd.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <optional>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "scenario.hpp"

namespace {

using namespace hpt_linux;  // NOLINT(google-build-using-namespace): one program

std::string errname(int e) {
  const char* n = strerrorname_np(e);
  return n ? n : "E" + std::to_string(e);
}
Ret fail() { return Ret{errname(errno), {}}; }
Ret ok(std::string detail = {}) { return Ret{"OK", std::move(detail)}; }

bool write_file(const char* path, const std::string& s) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return false;
  bool good = write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  close(fd);
  return good;
}

std::string read_number(const char* path) {
  char buf[32] = {};
  int fd = open(path, O_RDONLY);
  if (fd < 0) return "?";
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  std::string s(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// --- an access as a CPU does it, on a thread of its own --------------------------------------

thread_local sigjmp_buf t_jump;
thread_local int t_signal = 0;
thread_local int t_code = 0;
thread_local int t_lsb = 0;

void on_signal(int sig, siginfo_t* si, void*) {
  t_signal = sig;
  t_code = si->si_code;
  t_lsb = (sig == SIGBUS && (si->si_code == BUS_MCEERR_AR || si->si_code == BUS_MCEERR_AO))
              ? si->si_addr_lsb
              : 0;
  siglongjmp(t_jump, 1);
}

struct Touch {
  volatile unsigned char* p;
  bool write;
  std::function<std::string()> call;  // a system call that may block instead of an access
  int n = 0;                  // its number in the scenario (1, 2, ...)
  std::atomic<pid_t> tid{0};  // its thread id, for THREAD_ID messages
  std::atomic<int> done{0};
  std::string result;
};

void* touch_thread(void* arg) {
  auto* t = static_cast<Touch*>(arg);
  t->tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
  if (t->call) {
    t->result = t->call();
  } else if (sigsetjmp(t_jump, 1) == 0) {
    if (t->write)
      *t->p = 0x5a;
    else
      (void)*t->p;
    t->result = "ok";
  } else if (t_signal == SIGBUS) {
    t->result = t_lsb ? "SIGBUS lsb=" + std::to_string(t_lsb) : "SIGBUS";
  } else {
    t->result = "SIGSEGV";
  }
  t->done.store(1);
  return nullptr;
}

struct LinuxBackend {
  static constexpr uint64_t kBase = uint64_t{0x2000} << 32;  // 32 TiB: free, 1 GiB aligned

  int uffd = -1;
  int uffd2 = -1;  // a second userfaultfd (uffd2_open)
  int last_fd = -1;
  std::vector<Touch*> touches;  // every access so far, in order
  unsigned char* src = nullptr;  // the source of UFFDIO_COPY: 2 MiB of a pattern

  LinuxBackend() {
    uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    void* s = mmap(nullptr, 2 * k2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    src = static_cast<unsigned char*>(s);
    for (uint64_t i = 0; i < 2 * k2M; ++i) src[i] = static_cast<unsigned char>(i * 7 + 1);
  }

  static void* at(uint64_t off) { return reinterpret_cast<void*>(kBase + off); }

  // nr_hugepages such that pages_2m are free: a page an earlier scenario poisoned stays
  // counted in the pool but is never free again.
  Ret pools(uint64_t pages_2m) {
    if (!write_file("/proc/sys/vm/nr_hugepages", std::to_string(pages_2m))) return fail();
    const char* dir = "/sys/kernel/mm/hugepages/hugepages-2048kB/";
    const uint64_t free =
        std::stoull("0" + read_number((std::string(dir) + "free_hugepages").c_str()));
    const uint64_t nr = std::stoull("0" + read_number((std::string(dir) + "nr_hugepages").c_str()));
    if (free < pages_2m &&
        !write_file("/proc/sys/vm/nr_hugepages", std::to_string(nr + pages_2m - free)))
      return fail();
    return ok();
  }
  Ret map_anon(uint64_t off, uint64_t len, unsigned prot) {
    int p = (prot & kProtRead ? PROT_READ : 0) | (prot & kProtWrite ? PROT_WRITE : 0);
    if (mmap(at(off), len, p, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) ==
        MAP_FAILED)
      return fail();
    return ok();
  }
  Ret map_file(uint64_t off, uint64_t len, Backing k, bool shared, uint64_t pages, int extra = 0) {
    unsigned flags = MFD_CLOEXEC;
    uint64_t page = kPage;
    if (k == Backing::huge2m) {
      flags |= MFD_HUGETLB | MFD_HUGE_2MB;
      page = k2M;
    }
    if (k == Backing::huge1g) {
      flags |= MFD_HUGETLB | MFD_HUGE_1GB;
      page = kGiB;
    }
    int fd = memfd_create("hugepte", flags);
    if (fd < 0) return fail();
    if (ftruncate(fd, static_cast<off_t>(pages * page)) != 0) return fail();
    last_fd = fd;
    if (mmap(at(off), len, PROT_READ | PROT_WRITE,
             (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE | extra, fd,
             0) == MAP_FAILED)
      return fail();
    return ok();
  }
  Ret map_file_noreserve(uint64_t off, uint64_t len, Backing k, bool shared, uint64_t pages) {
    return map_file(off, len, k, shared, pages, MAP_NORESERVE);
  }
  Ret fallocate(uint64_t offset, uint64_t len) {
    return ::fallocate(last_fd, 0, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0
               ? ok()
               : fail();
  }
  Ret punch_hole(uint64_t offset, uint64_t len) {
    return ::fallocate(last_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                       static_cast<off_t>(offset), static_cast<off_t>(len)) == 0
               ? ok()
               : fail();
  }
  Ret pagemap(uint64_t off) {
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) return fail();
    uint64_t pm = 0;
    const ssize_t n =
        pread(fd, &pm, sizeof pm, static_cast<off_t>((kBase + off) / kPage * sizeof pm));
    close(fd);
    if (n != static_cast<ssize_t>(sizeof pm)) return fail();
    return ok(pagemap_bits(pm));
  }
  // The VMAs in the scenarios' 64 GiB from /proc/self/maps: "+start-+end" each.
  Ret maps() {
    FILE* f = std::fopen("/proc/self/maps", "r");
    if (!f) return fail();
    std::string out;
    unsigned long long s = 0, e = 0;
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
      if (std::sscanf(line, "%llx-%llx", &s, &e) != 2 || s < kBase || s >= kBase + 64 * kGiB)
        continue;
      out += (out.empty() ? "+" : " +") + hex(s - kBase).substr(2) + "-+" + hex(e - kBase).substr(2);
    }
    std::fclose(f);
    return ok(out.empty() ? "none" : out);
  }
  Ret meminfo() {
    return ok("free=" + read_number("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") +
              " rsvd=" + read_number("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages"));
  }
  Ret map_alias(uint64_t off, uint64_t len, int flags = MAP_SHARED) {
    if (mmap(at(off), len, PROT_READ | PROT_WRITE, flags | MAP_FIXED_NOREPLACE, last_fd, 0) ==
        MAP_FAILED)
      return fail();
    return ok();
  }
  Ret map_alias_private(uint64_t off, uint64_t len) { return map_alias(off, len, MAP_PRIVATE); }
  Ret map_alias_private_noreserve(uint64_t off, uint64_t len) {
    return map_alias(off, len, MAP_PRIVATE | MAP_NORESERVE);
  }
  Ret mprotect(uint64_t off, uint64_t len, unsigned prot) {
    int p = (prot & kProtRead ? PROT_READ : 0) | (prot & kProtWrite ? PROT_WRITE : 0);
    return ::mprotect(at(off), len, p) == 0 ? ok() : fail();
  }
  Ret munmap(uint64_t off, uint64_t len) {
    return blocking_call(
        [=] { return ::munmap(at(off), len) == 0 ? std::string("OK") : fail().err; });
  }
  Ret mremap(uint64_t off, uint64_t old_len, uint64_t new_len, unsigned flags, uint64_t new_off) {
    return blocking_call([=] {
      void* p = ::mremap(at(off), old_len, new_len, static_cast<int>(flags), at(new_off));
      if (p == MAP_FAILED) return fail().err;
      return "OK at=+" + hex(reinterpret_cast<uint64_t>(p) - kBase).substr(2);
    });
  }
  Ret madvise_hwpoison(uint64_t off) {
    return madvise(at(align_down_page(off)), kPage, MADV_HWPOISON) == 0 ? ok() : fail();
  }
  static uint64_t align_down_page(uint64_t off) { return off & ~(kPage - 1); }
  Ret madvise_dontneed(uint64_t off, uint64_t len) {
    return blocking_call(
        [=] { return madvise(at(off), len, MADV_DONTNEED) == 0 ? std::string("OK") : fail().err; });
  }

  // A system call that a non-cooperative userfaultfd event may block (munmap, MADV_DONTNEED):
  // on a thread of its own; "blocked" if it has not returned while a message waits.
  std::vector<Touch*> blocked_calls;  // oldest first
  Ret blocking_call(std::function<std::string()> fn) {
    Touch* t = new_touch();
    t->call = std::move(fn);
    Ret r = run(t, "blocked", 300);
    if (r.err == "blocked") blocked_calls.push_back(t);
    return r;
  }
  // After an event was read: the call that waited for it returns (up to 5 s).
  void finish_blocked_call() {
    if (blocked_calls.empty()) return;
    Touch* t = blocked_calls.front();
    blocked_calls.erase(blocked_calls.begin());
    for (int i = 0; i < 500 && !t->done.load(); ++i) usleep(10000);
  }

  // The access runs on a thread of its own; it either ends (ok or a signal) or blocks in a
  // userfault, which the message it queues shows. The blocked thread stays until a later
  // step wakes it (or the scenario's process ends).
  Ret touch(uint64_t off, Access a) {
    Touch* t = new_touch();
    t->p = static_cast<volatile unsigned char*>(at(off));
    t->write = a == Access::write;
    return run(t, "userfault", 20);
  }

  // A new thread's record: a blocked thread may outlive the step, so it is never freed.
  Touch* new_touch() {
    auto* t = new Touch;
    t->n = static_cast<int>(touches.size()) + 1;
    touches.push_back(t);
    return t;
  }
  // Runs t on a thread of its own until it ends (its result), or until a userfaultfd message
  // waits and the thread has not ended `grace_ms` later (`blocked_as`: it waits on the
  // userfaultfd). Up to 60 s: under TCG a first touch of a 1 GiB page clears it, which takes
  // seconds.
  Ret run(Touch* t, const char* blocked_as, int grace_ms) {
    pthread_t th;
    if (pthread_create(&th, nullptr, touch_thread, t) != 0) return fail();
    pthread_detach(th);
    for (int i = 0; i < 6000; ++i) {
      if (t->done.load()) return Ret{t->result, {}};
      pollfd pf[2] = {{uffd, POLLIN, 0}, {uffd2, POLLIN, 0}};
      const int n = poll(pf, 2, 10);
      if (n > 0 && ((pf[0].revents | pf[1].revents) & POLLIN)) {
        for (int k = 0; k < grace_ms / 10 && !t->done.load(); ++k) usleep(10000);
        if (t->done.load()) return Ret{t->result, {}};
        return Ret{blocked_as, {}};
      }
      if (n != 0) usleep(10000);  // POLLERR before UFFDIO_API: poll does not wait
    }
    return Ret{"hang", {}};
  }

  static Ret api_on(int fd, uint64_t features) {
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = features;
    return ioctl(fd, UFFDIO_API, &api) == 0 ? ok() : fail();
  }
  Ret uffd_api(uint64_t features) { return api_on(uffd, features); }
  Ret uffd_api_again(uint64_t features) { return uffd_api(features); }
  Ret uffd_register(uint64_t off, uint64_t len, unsigned mode) {
    return register_on(uffd, off, len, mode);
  }
  static Ret register_on(int fd, uint64_t off, uint64_t len, unsigned mode) {
    uffdio_register r{};
    r.range.start = kBase + off;
    r.range.len = len;
    r.mode = mode;
    if (ioctl(fd, UFFDIO_REGISTER, &r) != 0) return fail();
    return ok("ioctls=" + hex(r.ioctls));
  }
  Ret uffd_unregister(uint64_t off, uint64_t len) {
    uffdio_range r{kBase + off, len};
    return ioctl(uffd, UFFDIO_UNREGISTER, &r) == 0 ? ok() : fail();
  }

  // A range ioctl's result field: bytes done, -errno, or untouched (the sentinel we put there).
  static constexpr long long kUntouched = 0x5a5a5a5a;
  static std::string field(long long v) {
    if (v == kUntouched) return "field=untouched";
    if (v < 0) return "field=-" + errname(static_cast<int>(-v));
    return "field=" + dec(v);
  }
  Ret ranged(int rc, long long f) {
    Ret r = rc == 0 ? ok() : fail();
    r.detail = field(f);
    return r;
  }
  Ret uffd_copy(uint64_t off, uint64_t len, unsigned mode) { return copy_on(uffd, off, len, mode); }
  Ret copy_on(int fd, uint64_t off, uint64_t len, unsigned mode) {
    uffdio_copy c{};
    c.dst = kBase + off;
    c.src = reinterpret_cast<uint64_t>(src);
    c.len = len;
    c.mode = mode;
    c.copy = kUntouched;
    int rc = ioctl(fd, UFFDIO_COPY, &c);
    return ranged(rc, c.copy);
  }
  Ret uffd_copy_from(uint64_t off, uint64_t src_off, uint64_t len, unsigned mode) {
    uffdio_copy c{};
    c.dst = kBase + off;
    c.src = kBase + src_off;
    c.len = len;
    c.mode = mode;
    c.copy = kUntouched;
    int rc = ioctl(uffd, UFFDIO_COPY, &c);
    return ranged(rc, c.copy);
  }
  Ret uffd_zeropage(uint64_t off, uint64_t len, unsigned mode) {
    uffdio_zeropage z{};
    z.range = {kBase + off, len};
    z.mode = mode;
    z.zeropage = kUntouched;
    int rc = ioctl(uffd, UFFDIO_ZEROPAGE, &z);
    return ranged(rc, z.zeropage);
  }
  Ret uffd_continue(uint64_t off, uint64_t len, unsigned mode) {
    uffdio_continue c{};
    c.range = {kBase + off, len};
    c.mode = mode;
    c.mapped = kUntouched;
    int rc = ioctl(uffd, UFFDIO_CONTINUE, &c);
    return ranged(rc, c.mapped);
  }
  // UFFDIO_POISON (6.6): its request number, which 6.1's headers do not have.
  struct Poison {
    uffdio_range range;
    uint64_t mode;
    long long updated;
  };
  Ret uffd_poison(uint64_t off, uint64_t len, unsigned mode) {
    Poison p{{kBase + off, len}, mode, kUntouched};
    int rc = ioctl(uffd, _IOWR(UFFDIO, 0x08, Poison), &p);
    return ranged(rc, p.updated);
  }
  Ret uffd_writeprotect(uint64_t off, uint64_t len, unsigned mode) {
    return writeprotect_on(uffd, off, len, mode);
  }
  static Ret writeprotect_on(int fd, uint64_t off, uint64_t len, unsigned mode) {
    uffdio_writeprotect w{};
    w.range = {kBase + off, len};
    w.mode = mode;
    return ioctl(fd, UFFDIO_WRITEPROTECT, &w) == 0 ? ok() : fail();
  }
  // Woken threads retry by themselves, but the step after the wake may run first (one CPU
  // under TCG): wait until no thread of ours is runnable - each has finished, or sleeps again
  // (blocked in a userfault).
  void settle() {
    for (int i = 0; i < 2000; ++i) {
      bool runnable = false;
      for (const Touch* t : touches)
        runnable = runnable || (!t->done.load() && t->tid.load() && state_of(t->tid.load()) == 'R');
      if (!runnable) return;
      usleep(1000);
    }
  }
  // A thread's scheduler state: the field after the command name in /proc/self/task/TID/stat.
  static char state_of(pid_t tid) {
    char path[64], buf[256] = {};
    std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
    const int fd = open(path, O_RDONLY);
    if (fd < 0) return '?';
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    const char* paren = n > 0 ? std::strrchr(buf, ')') : nullptr;
    return paren && paren[1] == ' ' ? paren[2] : '?';
  }

  // --- a forked child, driven through two pipes: a command in, its step's text out ---
  struct Cmd {
    int op;  // 0 touch, 1 pagemap, 2 exit
    int write;
    uint64_t off;
  };
  pid_t child = -1;
  int to_child = -1, from_child = -1;
  void child_loop(int in, int out) {
    Cmd c{};
    while (read(in, &c, sizeof c) == static_cast<ssize_t>(sizeof c)) {
      if (c.op == 2) break;
      const Ret r =
          c.op == 0 ? touch(c.off, c.write ? Access::write : Access::read) : pagemap(c.off);
      const std::string s = r.text();
      const unsigned n = static_cast<unsigned>(s.size());
      if (write(out, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) break;
      if (write(out, s.data(), n) != static_cast<ssize_t>(n)) break;
    }
  }
  // fork runs on a thread of its own: with UFFD_FEATURE_EVENT_FORK it waits until the FORK
  // message is read ("blocked" meanwhile). _Fork, not fork: glibc's fork holds its malloc and
  // stdio locks across the system call, and the thread that must read the message needs them.
  // (The other threads are in poll or blocked in a fault then, holding none.)
  Ret fork_child() {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return fail();
    return blocking_call([=, this] {
      const pid_t pid = _Fork();
      if (pid < 0) return fail().err;
      if (pid == 0) {
        close(in[1]);
        close(out[0]);
        uffd = -1;  // the parent's userfaultfd: its messages are not this process's
        touches.clear();
        child_loop(in[0], out[1]);
        _exit(0);
      }
      close(in[0]);
      close(out[1]);
      child = pid;
      to_child = in[1];
      from_child = out[0];
      return std::string("OK");
    });
  }
  // The child's userfaultfd (UFFD_FEATURE_EVENT_FORK): the fd the FORK message carried.
  int child_uffd = -1;
  bool child_owes = false;  // a child touch blocked in a userfault: its answer comes later
  // A command to the child and its answer. A touch that blocks on the child's userfaultfd
  // (a message waits there and no answer comes within 200 ms) is "userfault"; its answer is
  // taken before the next command's.
  Ret child_call(int op, uint64_t off, bool w) {
    if (child < 0) return Ret{"ESRCH", {}};
    if (child_owes && !child_answer().has_value()) return Ret{"child died", {}};
    child_owes = false;
    const Cmd c{op, w ? 1 : 0, off};
    if (write(to_child, &c, sizeof c) != static_cast<ssize_t>(sizeof c)) return fail();
    for (int i = 0; i < 6000; ++i) {
      pollfd pf[2] = {{from_child, POLLIN, 0}, {child_uffd, POLLIN, 0}};
      if (poll(pf, 2, 10) <= 0) continue;
      if (pf[0].revents) break;
      if (!(pf[1].revents & POLLIN)) continue;
      if (poll(pf, 1, 200) > 0) break;
      child_owes = true;
      return Ret{"userfault", {}};
    }
    const std::optional<std::string> s = child_answer();
    return s ? Ret{*s, {}} : Ret{"child died", {}};
  }
  std::optional<std::string> child_answer() {
    unsigned n = 0;
    if (read(from_child, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) return {};
    std::string s(n, '\0');
    if (n && read(from_child, s.data(), n) != static_cast<ssize_t>(n)) return {};
    return s;
  }
  Ret child_touch(uint64_t off, Access a) { return child_call(0, off, a == Access::write); }
  Ret child_pagemap(uint64_t off) { return child_call(1, off, false); }
  Ret child_exit() {
    if (child < 0) return Ret{"ESRCH", {}};
    if (child_owes) kill(child, SIGKILL);  // still blocked: nothing to wait for
    child_owes = false;
    if (child_uffd >= 0) close(child_uffd);
    child_uffd = -1;
    const Cmd c{2, 0, 0};
    (void)!write(to_child, &c, sizeof c);
    int status = 0;
    waitpid(child, &status, 0);
    close(to_child);
    close(from_child);
    child = -1;
    return ok();
  }
  Ret uffd_close() {
    if (close(uffd) != 0) return fail();
    uffd = -1;
    // close releases the calls that waited for their events: let them return first.
    while (!blocked_calls.empty()) finish_blocked_call();
    return ok();
  }
  Ret uffd_open() {
    uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    return uffd >= 0 ? ok() : fail();
  }
  Ret uffd_wake(uint64_t off, uint64_t len) { return wake_on(uffd, off, len); }
  static Ret wake_on(int fd, uint64_t off, uint64_t len) {
    uffdio_range r{kBase + off, len};
    return ioctl(fd, UFFDIO_WAKE, &r) == 0 ? ok() : fail();
  }
  Ret uffd_read() { return read_on(uffd); }
  Ret uffd2_open() {
    uffd2 = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    return uffd2 >= 0 ? ok() : fail();
  }
  Ret uffd2_api(uint64_t features) { return api_on(uffd2, features); }
  Ret uffd2_register(uint64_t off, uint64_t len, unsigned mode) {
    return register_on(uffd2, off, len, mode);
  }
  Ret uffd2_read() { return read_on(uffd2); }
  Ret uffd2_copy(uint64_t off, uint64_t len, unsigned mode) {
    return copy_on(uffd2, off, len, mode);
  }
  Ret uffd2_wake(uint64_t off, uint64_t len) { return wake_on(uffd2, off, len); }
  Ret uffd2_close() {
    if (close(uffd2) != 0) return fail();
    uffd2 = -1;
    return ok();
  }
  Ret child_uffd_api(uint64_t features) { return api_on(child_uffd, features); }
  Ret child_uffd_read() { return read_on(child_uffd); }
  Ret child_uffd_copy(uint64_t off, uint64_t len, unsigned mode) {
    return copy_on(child_uffd, off, len, mode);
  }
  Ret child_uffd_writeprotect(uint64_t off, uint64_t len, unsigned mode) {
    return writeprotect_on(child_uffd, off, len, mode);
  }
  Ret read_on(int fd) {
    uffd_msg m{};
    if (read(fd, &m, sizeof m) != static_cast<ssize_t>(sizeof m)) return fail();
    if (m.event == UFFD_EVENT_FORK) {
      child_uffd = static_cast<int>(m.arg.fork.ufd);
      finish_blocked_call();
      return ok("fork");
    }
    if (m.event == UFFD_EVENT_REMAP) {
      finish_blocked_call();
      return ok("remap from=+" + hex(m.arg.remap.from - kBase) + " to=+" +
                hex(m.arg.remap.to - kBase) + " len=" + hex(m.arg.remap.len));
    }
    if (m.event == UFFD_EVENT_REMOVE || m.event == UFFD_EVENT_UNMAP) {
      finish_blocked_call();
      return ok(std::string(m.event == UFFD_EVENT_REMOVE ? "remove" : "unmap") + " start=+" +
                hex(m.arg.remove.start - kBase) + " end=+" + hex(m.arg.remove.end - kBase));
    }
    if (m.event != UFFD_EVENT_PAGEFAULT) return ok("event=" + dec(m.event));
    std::string ptid;
    if (m.arg.pagefault.feat.ptid != 0) {
      ptid = " ptid=unknown";
      for (const Touch* t : touches)
        if (t->tid.load() == static_cast<pid_t>(m.arg.pagefault.feat.ptid))
          ptid = " ptid=touch#" + std::to_string(t->n);
    }
    return ok("pagefault addr=+" + hex(m.arg.pagefault.address - kBase) +
              " flags=" + hex(m.arg.pagefault.flags) + ptid);
  }
};

// The scenarios whose name contains the kernel command line's hpt_only=TEXT (all without it).
std::string only_filter() {
  char buf[1024] = {};
  int fd = open("/proc/cmdline", O_RDONLY);
  if (fd < 0) return {};
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  const std::string cmdline(buf, n > 0 ? static_cast<size_t>(n) : 0);
  const size_t at = cmdline.find("hpt_only=");
  if (at == std::string::npos) return {};
  const size_t end = cmdline.find_first_of(" \n", at);
  return cmdline.substr(at + 9, end == std::string::npos ? std::string::npos : end - at - 9);
}

// A scenario that is still running after 45 s: its record so far, ending in "hang", is what
// it reports (the handler runs on the thread that waits for the step that hangs).
Rec* g_rec = nullptr;
int g_out = -1;
void on_alarm(int) {
  g_rec->steps.push_back("hang");
  const std::string line = g_rec->json() + "\n";
  (void)!write(g_out, line.data(), line.size());
  _exit(0);
}

// Each scenario runs in a process group of its own (its forked children in it), for at most
// 60 s; whatever it leaves behind is killed, so one scenario cannot stop the ring.
void run_all() {
  const std::string only = only_filter();
  for (const auto& s : Scenarios<LinuxBackend>::all()) {
    if (std::string(s.name).find(only) == std::string::npos) continue;
    std::fflush(stdout);
    int pipefd[2];
    if (pipe(pipefd) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);
      close(pipefd[0]);
      LinuxBackend b;
      Rec r{s.name, {}};
      g_rec = &r;
      g_out = pipefd[1];
      signal(SIGALRM, on_alarm);
      alarm(45);
      s.body(b, r);
      std::string line = r.json() + "\n";
      (void)!write(pipefd[1], line.data(), line.size());
      _exit(0);
    }
    setpgid(pid, pid);
    close(pipefd[1]);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    std::string out;
    char buf[4096];
    bool exited = false;
    for (int ms = 0; !exited && ms < 60000; ms += 10) {
      pollfd pf{pipefd[0], POLLIN, 0};
      poll(&pf, 1, 10);
      for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<size_t>(n));
      int status = 0;
      exited = waitpid(pid, &status, WNOHANG) == pid;
    }
    for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;)
      out.append(buf, static_cast<size_t>(n));
    kill(-pid, SIGKILL);
    if (!exited) waitpid(pid, nullptr, 0);
    close(pipefd[0]);
    if (out.empty()) out = Rec{s.name, {exited ? "crashed" : "hang"}}.json() + "\n";
    std::fputs(out.c_str(), stdout);
  }
}

}  // namespace

int main() {
  mount("proc", "/proc", "proc", 0, nullptr);
  mount("sysfs", "/sys", "sysfs", 0, nullptr);
  struct sigaction sa{};
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGBUS, &sa, nullptr);
  sigaction(SIGSEGV, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a command to a child that is gone fails, it does not kill
  std::printf("hugepte-linux-ring: begin\n");
  run_all();
  std::printf("hugepte-linux-ring: end\n");
  std::fflush(stdout);
  sync();
  reboot(RB_POWER_OFF);
  return 0;
}
