// bench_mm.cpp - the fault path and HGM collapse (issue 5), x86-64 4-level, flat table memory.
//
//   BM_FirstTouch<size>/fault: first touch of every <size> block of a 1 GiB anonymous region
//       through Mm::handle_fault (VMA lookup, walk, folio allocation, accounting, install);
//   BM_FirstTouch<size>/range: the same leaves made through RangeOps::map one by one (the
//       table work alone). fault / range is what the fault path costs on top of the mapping.
//   BM_HgmCollapse1G/S1 and /S3: MADV_COLLAPSE of a 1 GiB hugetlb page mapped by 262,144 base
//       pages under the two mapcount policies (S3 pays one per-page mapcount update per page).
// Setup (building the mapped state) is outside the timed region (manual timing).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "flat_env.hpp"
#include "hugepte/arch/x86.hpp"
#include "hugepte/env/host.hpp"
#include "hugepte/mm/mm.hpp"
#include "hugepte/range.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): benchmark file
using F = X86_4Level;
using Env = bench::FlatEnv<12>;
using Mem = mm::Memory<host::Folios, 12>;
using Mm = mm::Mm<F, Env, NullTlb, host::Folios>;

constexpr uint64_t kBase = uint64_t{1} << 30;
constexpr unsigned kRegion = 30;
constexpr uint64_t kTableBytes = uint64_t{8} << 20;  // 513 tables plus the upper levels fit easily

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void first_touch_fault(benchmark::State& state, unsigned shift) {
  Env env(kTableBytes);
  NullTlb tlb;
  uint64_t faults = 0;
  for (auto _ : state) {
    env.reset();
    host::Folios folios;
    Mem mem(folios, (1u << (kRegion - shift)) + 8, mm::Policy::s1);
    if (shift > 12) mem.set_pool(shift, uint64_t{1} << (kRegion - shift));
    Mm m(mem, env, tlb);
    if (m.init() != Err::ok) state.SkipWithError("init");
    mm::VmaSpec s;
    s.start = kBase;
    s.len = bit(kRegion);
    s.max_shift = shift;
    if (!m.mmap(s)) state.SkipWithError("mmap");
    auto t0 = Clock::now();
    for (uint64_t va = kBase; va < kBase + bit(kRegion); va += bit(shift)) {
      mm::FaultResult r = m.handle_fault(va, mm::Access::write);
      if (!r.handled() || r.shift != shift) {
        state.SkipWithError("fault did not map the expected size");
        break;
      }
    }
    auto t1 = Clock::now();
    state.SetIterationTime(seconds(t0, t1));
    faults += bit(kRegion - shift);
  }
  state.counters["faults/s"] =
      benchmark::Counter(static_cast<double>(faults), benchmark::Counter::kIsRate);
}

void first_touch_range(benchmark::State& state, unsigned shift) {
  Env env(kTableBytes);
  NullTlb tlb;
  uint64_t maps = 0;
  for (auto _ : state) {
    env.reset();
    PageTable<F, Env> pt(env);
    if (pt.init() != Err::ok) state.SkipWithError("init");
    RangeOps<F, Env, NullTlb> r(pt, tlb);
    Attrs a;
    a.prot = Prot{true, true, false, true};
    a.writable = a.accessed = a.dirty = true;
    auto t0 = Clock::now();
    for (uint64_t va = kBase; va < kBase + bit(kRegion); va += bit(shift)) {
      if (r.map(va, (uint64_t{1} << 40) + (va - kBase), bit(shift), a, shift) != Err::ok) {
        state.SkipWithError("map");
        break;
      }
    }
    auto t1 = Clock::now();
    state.SetIterationTime(seconds(t0, t1));
    maps += bit(kRegion - shift);
  }
  state.counters["maps/s"] =
      benchmark::Counter(static_cast<double>(maps), benchmark::Counter::kIsRate);
}

void hgm_collapse(benchmark::State& state, mm::Policy policy) {
  Env env(kTableBytes);
  NullTlb tlb;
  for (auto _ : state) {
    env.reset();
    host::Folios folios;
    Mem mem(folios, 16, policy);
    mem.set_pool(kRegion, 1);
    uint32_t file = mem.create_file(mm::FileKind::hugetlb, kRegion, bit(kRegion)).value;
    mem.fallocate(file, 0, bit(kRegion));
    Mm m(mem, env, tlb);
    m.init();
    mm::VmaSpec s;
    s.start = kBase;
    s.len = bit(kRegion);
    s.shared = true;
    s.backing = mm::Backing::file;
    s.file = file;
    m.mmap(s);
    m.madvise_split(kBase, bit(kRegion));
    m.uffd_api(0);
    m.uffd_register(kBase, bit(kRegion), mm::kRegMinor);
    for (uint64_t va = kBase; va < kBase + bit(kRegion); va += bit(12))
      m.uffd_continue(va, bit(12), 0);
    auto t0 = Clock::now();
    Err e = m.madvise_collapse(kBase, bit(kRegion));
    auto t1 = Clock::now();
    if (e != Err::ok || m.view(kBase).shift != kRegion) state.SkipWithError("collapse");
    state.SetIterationTime(seconds(t0, t1));
    state.counters["subpage_updates"] =
        static_cast<double>(mem.counters().subpage_mapcount_updates);
  }
}

#define FIRST_TOUCH(name, shift)                                                            \
  BENCHMARK_CAPTURE(first_touch_fault, name, shift)->Name("BM_FirstTouch" #name "/fault") \
      ->UseManualTime()->Unit(benchmark::kMillisecond);                                   \
  BENCHMARK_CAPTURE(first_touch_range, name, shift)->Name("BM_FirstTouch" #name "/range") \
      ->UseManualTime()->Unit(benchmark::kMillisecond)

FIRST_TOUCH(4K, 12);
FIRST_TOUCH(2M, 21);
FIRST_TOUCH(1G, 30);
BENCHMARK_CAPTURE(hgm_collapse, s1, mm::Policy::s1)->Name("BM_HgmCollapse1G/S1")->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_CAPTURE(hgm_collapse, s3, mm::Policy::s3)->Name("BM_HgmCollapse1G/S3")->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
