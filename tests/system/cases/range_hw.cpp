// range_hw.cpp - map / unmap / protect / split / collapse against the real MMU, in every image.
//
// A seeded random sequence of range operations (the seed is printed) runs on a PageTable whose
// subtree is grafted into one slot of the harness' live root. After every step, sampled pages of
// the window and every leaf boundary are read, written and executed through the MMU, and what
// happens (data or fault) must be what the library's translate() says. Live splits and collapses
// are checked the same way, so a missing invalidation shows up as the MMU using a stale entry.
#include "guest.hpp"
#include "guest_env.hpp"
#include "guest_format.hpp"
#include "hpt_test.hpp"
#include "hugepte/range.hpp"

namespace {

using hugepte::Entry;
using hugepte::Err;
using hugepte::Kind;
using F = hpt::guest::GuestFormat;
using Env = hpt::guest::GuestEnv<F::page_shift>;
using Table = hugepte::PageTable<F, Env>;
using Ops = hugepte::RangeOps<F, Env, hpt::guest::GuestTlb>;
namespace guest = hpt::guest;

constexpr unsigned kPageShift = F::page_shift;
constexpr uint64_t kPage = hugepte::bit(kPageShift);
constexpr uint64_t kVaBase = guest::Graft<F, Env>::kVa;
constexpr unsigned kMaxShift = 21;  // leaves up to 2 MiB-class: the data fits in RAM
constexpr uint64_t kData = uint64_t{16} << 20;                 // 16 MiB of tagged data pages
constexpr uint64_t kWindow = uint64_t{32} << 20;               // VA window the operations touch
constexpr uint64_t kTagOffset = 0x100;                    // tag word; offset 0 holds a return insn

using hpt::Rng;

struct World {
  uint64_t data_pa = 0;
  Env env;
  guest::GuestTlb tlb;
  Table pt{env};
  Ops ops{pt, tlb};
  guest::Graft<F, Env> grafted{pt};  // declared after pt: unlinked before pt frees its tables

  World()
      : data_pa(hugepte::align_down(guest::free_ram_base() + guest::free_ram_size() / 4, 21)),
        env(data_pa + kData, guest::free_ram_base() + guest::free_ram_size()) {}
  void graft() { grafted.refresh(); }
  // Every data page: a return instruction at 0 and its own physical address as the tag.
  void fill() {
    unsigned len = 0;
    const unsigned char* insn = guest::ret_insn(len);
    for (uint64_t pa = data_pa; pa < data_pa + kData; pa += kPage) {
      auto* code = reinterpret_cast<volatile unsigned char*>(pa);
      for (unsigned i = 0; i < len; ++i) code[i] = insn[i];
      *reinterpret_cast<volatile uint64_t*>(pa + kTagOffset) = pa;
    }
    guest::code_written(data_pa, kData);
  }
};

// What the MMU must allow for a translated leaf, seen from the privileged level.
struct Allowed {
  bool read, write, exec;
};
Allowed allowed(const Entry& e) {
  if (e.kind != Kind::leaf || e.prot.user) return {false, false, false};
  if (!e.accessed && !guest::hw_sets_accessed()) return {false, false, false};
  bool dbm_write = F::ad_caps.model == hugepte::DirtyModel::dbm_rdonly && e.writable &&
                   F::ad_caps.hw_dirty && guest::hw_sets_dirty();
  return {e.prot.read, e.prot.write || dbm_write, e.prot.exec};
}

// Probes one page and compares with translate(). Returns false (after printing) on a mismatch.
bool check_page(World& w, uint64_t va, hpt::Ctx& hpt_ctx) {
  auto t = w.ops.translate(va);
  guest::Fault f;
  uint64_t v = 0;
  bool read = guest::probe_read(va + kTagOffset, v, f);
  if (!t.ok()) {
    if (read) {
      hpt::out("    va ");
      hpt::out_u64(va, 16);
      hpt::out(": translate says unmapped, the MMU read it\n");
    }
    return HPT_EXPECT(!read);
  }
  Allowed a = allowed(t.value.entry);
  uint64_t pa = t.value.pa;
  bool ok = HPT_EXPECT_EQ(read, a.read);
  if (read) ok = HPT_EXPECT_EQ(v, pa) && ok;  // the tag is the page's own physical address
  if (a.write) {
    ok = HPT_EXPECT(guest::probe_write(va + kTagOffset, ~pa, f)) && ok;
    ok = HPT_EXPECT_EQ(*reinterpret_cast<volatile uint64_t*>(pa + kTagOffset), ~pa) && ok;
    *reinterpret_cast<volatile uint64_t*>(pa + kTagOffset) = pa;
  } else {
    ok = HPT_EXPECT(!guest::probe_write(va + kTagOffset, ~pa, f)) && ok;
  }
  ok = HPT_EXPECT_EQ(guest::probe_exec(va, f), a.exec) && ok;
  if (!ok) {
    hpt::out("    va ");
    hpt::out_u64(va, 16);
    hpt::out(" pa ");
    hpt::out_u64(pa, 16);
    hpt::out(" leaf shift ");
    hpt::out_u64(t.value.shift);
    hpt::out("\n");
  }
  return ok;
}

// Samples the window: random pages plus the first and last page of every leaf met.
bool check_window(World& w, Rng& rng, hpt::Ctx& hpt_ctx) {
  for (unsigned i = 0; i < 96; ++i) {
    uint64_t va = kVaBase + (rng.below(kWindow >> kPageShift) << kPageShift);
    if (!check_page(w, va, hpt_ctx)) return false;
    auto t = w.ops.translate(va);
    if (t.ok()) {
      uint64_t size = hugepte::bit(t.value.shift);
      if (!check_page(w, t.value.va, hpt_ctx) || !check_page(w, t.value.va + size - kPage, hpt_ctx))
        return false;
    }
  }
  return true;
}

hugepte::Attrs random_attrs(Rng& rng) {
  hugepte::Attrs a;
  a.prot.read = true;
  a.writable = rng.below(2);
  a.prot.exec = rng.below(3) == 0;
  a.accessed = true;  // software-managed access flags are the fault handler's business
  a.dirty = a.writable;
  a.prot.write = a.writable;
  a.global = true;
  return a;
}

// A random aligned chunk inside the window: size 2^s pages for a random s, aligned to itself.
void random_chunk(Rng& rng, uint64_t& off, uint64_t& len) {
  unsigned s = static_cast<unsigned>(rng.below(kMaxShift - kPageShift + 2));  // up to 2x 2 MiB
  len = hugepte::bit(kPageShift + s);
  if (len > kData) len = kData;
  off = hugepte::align_down(rng.below(kWindow - len), kPageShift + (s > 9 ? 9 : s));
  if (rng.below(2)) len += kPage * (1 + rng.below(8));  // ragged end: smaller leaves at the tail
  if (off + len > kWindow) len = kWindow - off;
}

}  // namespace

HPT_CASE(range_hw, RandomRangeOperationsMatchTranslateOnTheMmu) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  static constexpr uint64_t kSeeds[] = {0x9e3779b97f4a7c15ull, 0xd1b54a32d192ed03ull};
  for (uint64_t seed : kSeeds) {
    World w;
    HPT_ASSERT_EQ(w.pt.init(), Err::ok);
    w.fill();
    Rng rng{seed};
    hpt::out("    seed ");
    hpt::out_u64(seed, 16);
    hpt::out("\n");
    for (unsigned step = 0; step < 14; ++step) {
      uint64_t off = 0, len = 0;
      random_chunk(rng, off, len);
      uint64_t va = kVaBase + off;
      // Same offset inside 2 MiB as va, so that large leaves are possible; inside the data.
      uint64_t in2m = off & (hugepte::bit(21) - 1), room = kData - len;
      uint64_t pa =
          w.data_pa + (room >= in2m ? hugepte::align_down(rng.below(room - in2m + 1), 21) + in2m
                                    : hugepte::align_down(room, kPageShift));
      Err e = Err::ok;
      uint64_t op = step < 4 ? 0 : rng.below(5);
      switch (op) {
        case 0: e = w.ops.map(va, pa, len, random_attrs(rng), kMaxShift); break;
        case 1: e = w.ops.unmap(va, len); break;
        case 2: {
          hugepte::Attrs a = random_attrs(rng);
          e = w.ops.protect(va, len, a.prot, a.writable);
          break;
        }
        case 3: {
          auto t = w.ops.translate(va);
          if (!t.ok() || t.value.shift == kPageShift) break;
          e = w.ops.split(va, kPageShift);  // a live leaf split down to pages
          break;
        }
        case 4: {
          // Map a 2 MiB-aligned piece page by page, then collapse it back into one leaf.
          uint64_t cva = hugepte::align_down(va, 21), cpa = hugepte::align_down(pa, 21);
          if (cpa + hugepte::bit(21) > w.data_pa + kData) cpa = w.data_pa;
          hugepte::Attrs a = random_attrs(rng);
          e = w.ops.map(cva, cpa, hugepte::bit(21), a, kPageShift);
          if (e == Err::ok) e = w.ops.collapse(cva, 21);
          // Formats without a 2 MiB-class leaf at that size refuse: fine, nothing changed.
          if (e == Err::einval) e = Err::ok;
          break;
        }
      }
      if (!HPT_EXPECT_EQ(e, Err::ok)) {
        static constexpr const char* kOps[] = {"map", "unmap", "protect", "split", "map+collapse"};
        hpt::out("    step ");
        hpt::out_u64(step);
        hpt::out(" ");
        hpt::out(kOps[op]);
        hpt::out(" va ");
        hpt::out_u64(va, 16);
        hpt::out(" len ");
        hpt::out_u64(len, 16);
        hpt::out(": ");
        hpt::out(hugepte::err_name(e));
        hpt::out("\n");
      }
      w.graft();
      if (!check_window(w, rng, hpt_ctx)) {
        hpt::out("    after step ");
        hpt::out_u64(step);
        hpt::out("\n");
        return;
      }
    }
  }
}

// docs/arch.md §2: the ring sees a missing invalidation. A leaf is pointed at another page
// behind the library's back, with no TLB maintenance at all: where the emulator caches
// translations (QEMU's softmmu TLB does) the old page is still read; the architecture sink's
// invalidation of that one entry (INVLPG / TLBI VALE1IS / SFENCE.VMA by address) ends it.
HPT_CASE(range_hw, ASkippedInvalidationLeavesTheOldTranslationInUseUntilTheSinkDropsIt) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  World w;
  HPT_ASSERT_EQ(w.pt.init(), Err::ok);
  w.fill();
  const uint64_t va = kVaBase + (uint64_t{3} << kPageShift);
  hugepte::Attrs a;
  a.prot.read = true;
  a.accessed = true;
  a.global = true;
  HPT_ASSERT_EQ(w.ops.map(va, w.data_pa, kPage, a, kPageShift), Err::ok);
  w.graft();
  uint64_t v = 0;
  guest::Fault f;
  HPT_ASSERT(guest::probe_read(va + kTagOffset, v, f));
  HPT_ASSERT_EQ(v, w.data_pa);  // the translation is now cached

  auto found = hugepte::find(w.pt, va, 0);
  HPT_ASSERT(found.ok() && found.value.level == 0);
  const uint64_t moved = F::with_pa(found.value.raw, 0, w.data_pa + kPage);
  w.pt.store(found.value.slot, 0, moved);  // deliberately no invalidation, no barrier
  HPT_ASSERT(guest::probe_read(va + kTagOffset, v, f));
  if (v == w.data_pa + kPage)
    HPT_SKIP(
        "the emulator walked the tables again without an invalidation: a missing one cannot be "
        "seen");
  HPT_EXPECT_EQ(v, w.data_pa);  // stale, as on hardware

  w.tlb.flush(
      hugepte::TlbFlush{va, va + kPage, static_cast<uint8_t>(kPageShift), 0, true});
  HPT_ASSERT(guest::probe_read(va + kTagOffset, v, f));
  HPT_EXPECT_EQ(v, w.data_pa + kPage);
}
