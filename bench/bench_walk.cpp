// bench_walk.cpp - the generic walker and huge-PTE API against straight-line code written by
// hand for one format (x86-64 4-level), in the same binary, over the same tables.
//
// Pairs are named BM_<op>/generic and BM_<op>/baseline; bench/ratios.py turns a run into the
// median generic/baseline ratio per pair (the README table).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "flat_env.hpp"
#include "hugepte/arch/x86.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): benchmark file
using F = X86_4Level;
using Env = bench::FlatEnv<12>;
using Table = PageTable<F, Env>;
using Ops = HugePteOps<F, Env, NullTlb>;

constexpr u64 kRegionVa = u64{1} << 30;  // 1 GiB at 1 GiB
constexpr unsigned kRegionShift = 30;
constexpr u64 kPages = u64{1} << (kRegionShift - 12);
constexpr u64 kPaBase = u64{1} << 32;

// --- the hand-written baseline: x86-64 4-level, nothing generic --------------------------------

namespace baseline {
constexpr u64 kP = 1, kRW = 2, kA = 0x20, kD = 0x40, kPS = 0x80, kNX = u64{1} << 63;
constexpr u64 kAddr = 0x000ffffffffff000ull;
constexpr u64 kTable = kP | kRW | 4 | kA | kD;

inline u64* at(unsigned char* mem, u64 pa) { return reinterpret_cast<u64*>(mem + pa); }

// Returns the physical address, or ~0 when va is not mapped.
inline u64 translate(unsigned char* mem, u64 root, u64 va) {
  u64 e = at(mem, root)[(va >> 39) & 511];
  if (!(e & kP)) return ~u64{0};
  e = at(mem, e & kAddr)[(va >> 30) & 511];
  if (!(e & kP)) return ~u64{0};
  if (e & kPS) return (e & 0x000fffffc0000000ull) | (va & 0x3fffffff);
  e = at(mem, e & kAddr)[(va >> 21) & 511];
  if (!(e & kP)) return ~u64{0};
  if (e & kPS) return (e & 0x000fffffffe00000ull) | (va & 0x1fffff);
  e = at(mem, e & kAddr)[(va >> 12) & 511];
  if (!(e & kP)) return ~u64{0};
  return (e & kAddr) | (va & 0xfff);
}

// Maps one 4K page, allocating missing tables.
inline bool map_4k(Env& env, u64 root, u64 va, u64 pa, u64 flags) {
  u64* t = env.table_ptr(root);
  for (unsigned shift = 39; shift > 12; shift -= 9) {
    u64* slot = &t[(va >> shift) & 511];
    if (!(*slot & kP)) {
      Result<u64> r = env.alloc_table(0);
      if (!r) return false;
      *slot = r.value | kTable;
    }
    t = env.table_ptr(*slot & kAddr);
  }
  t[(va >> 12) & 511] = (pa & kAddr) | flags;
  return true;
}
}  // namespace baseline

// --- the generic side ---------------------------------------------------------------------------

// translate through the library's hot path.
inline u64 generic_translate(const Table& pt, u64 va) {
  Result<Lookup> l = lookup(pt, va);
  return l ? l.value.pa : ~u64{0};
}

Entry rw_leaf(u64 pa) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = pa;
  e.shift = 12;
  e.prot = kProtRW;
  e.writable = true;
  e.accessed = true;
  e.dirty = true;
  return e;
}

// A 1 GiB region mapped with 4K pages by the library (both translates walk these tables).
struct Mapped {
  Env env{u64{8} << 20};
  Table pt{env};
  NullTlb tlb;
  Mapped() {
    pt.init();
    Ops ops(pt, tlb);
    for (u64 i = 0; i < kPages; ++i) {
      auto h = ops.alloc(kRegionVa + (i << 12), 12);
      ops.set(h.value, rw_leaf(kPaBase + (i << 12)));
    }
  }
};

Mapped& mapped() {
  static Mapped m;
  return m;
}

std::vector<u64> random_vas() {
  std::mt19937_64 rng(42);
  std::vector<u64> v(1 << 16);
  for (auto& va : v) va = kRegionVa + (rng() & ((u64{1} << kRegionShift) - 1));
  return v;
}

template <bool Generic>
void BM_TranslateSequential(benchmark::State& state) {
  Mapped& m = mapped();
  for (auto _ : state) {
    u64 sum = 0;
    for (u64 i = 0; i < kPages; ++i) {
      u64 va = kRegionVa + (i << 12) + 8;
      sum += Generic ? generic_translate(m.pt, va) : baseline::translate(m.env.base(), m.pt.root(), va);
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPages));
}

template <bool Generic>
void BM_TranslateRandom(benchmark::State& state) {
  Mapped& m = mapped();
  static const std::vector<u64> vas = random_vas();
  for (auto _ : state) {
    u64 sum = 0;
    for (u64 va : vas)
      sum += Generic ? generic_translate(m.pt, va) : baseline::translate(m.env.base(), m.pt.root(), va);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * vas.size()));
}

// Map 2 MiB worth of 4K pages one at a time into an empty table (huge_pte_alloc + set_huge_pte_at
// per page against the hand-written walk-allocate-store).
template <bool Generic>
void BM_Map4KOneByOne(benchmark::State& state) {
  constexpr u64 kN = 512;
  Env env(u64{1} << 20);
  const u64 flags = baseline::kP | baseline::kRW | baseline::kA | baseline::kD | baseline::kNX;
  const Entry proto = rw_leaf(kPaBase);
  for (auto _ : state) {
    state.PauseTiming();
    env.reset();
    Table pt(env);
    pt.init();
    NullTlb tlb;
    Ops ops(pt, tlb);
    state.ResumeTiming();
    for (u64 i = 0; i < kN; ++i) {
      u64 va = kRegionVa + (i << 12), pa = kPaBase + (i << 12);
      if constexpr (Generic) {
        Entry e = proto;
        e.addr = pa;
        auto h = ops.alloc(va, 12);
        benchmark::DoNotOptimize(ops.set(h.value, e));
      } else {
        benchmark::DoNotOptimize(baseline::map_4k(env, pt.root(), va, pa, flags));
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kN));
}

BENCHMARK(BM_TranslateSequential<true>)->Name("BM_TranslateSequential/generic");
BENCHMARK(BM_TranslateSequential<false>)->Name("BM_TranslateSequential/baseline");
BENCHMARK(BM_TranslateRandom<true>)->Name("BM_TranslateRandom/generic");
BENCHMARK(BM_TranslateRandom<false>)->Name("BM_TranslateRandom/baseline");
BENCHMARK(BM_Map4KOneByOne<true>)->Name("BM_Map4KOneByOne/generic");
BENCHMARK(BM_Map4KOneByOne<false>)->Name("BM_Map4KOneByOne/baseline");

}  // namespace

BENCHMARK_MAIN();
