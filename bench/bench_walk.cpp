// bench_walk.cpp - translation and single-page mapping: the library's lookup() and huge_pte
// alloc + set against the hand-written x86-64 4-level code (baseline_x86.hpp), in the same
// binary, over the same tables.
#include <random>
#include <vector>

#include "hugepte/huge_pte.hpp"
#include "world.hpp"

namespace hugepte::bench {
namespace {

using Ops = HugePteOps<F, Env, NullTlb>;

// 1 GiB at 1 GiB mapped with 4K pages; both translates walk these tables.
World& mapped() {
  static World* w = [] {
    auto* m = new World;
    Range r(m->pt, m->tlb);
    if (r.map(kVa, kPa, kGiB, kAttrsRW, 12) != Err::ok) std::abort();
    return m;
  }();
  return *w;
}

inline uint64_t generic_translate(const Table& pt, uint64_t va) {
  Result<Lookup> l = lookup(pt, va);
  return l ? l.value.pa : ~uint64_t{0};
}

// lookup() of every page of the GiB, in order.
template <Side S>
struct TranslateSequential : Case {
  World& w = mapped();
  TranslateSequential() { ops = kPages1GiB; }
  void run() override {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < kPages1GiB; ++i) {
      uint64_t va = kVa + (i << 12) + 8;
      if constexpr (S == Side::generic)
        sum += generic_translate(w.pt, va);
      else
        sum += baseline::translate(PhysMem::base(), w.pt.root(), va);
    }
    benchmark::DoNotOptimize(sum);
  }
};

// lookup() of 64Ki random addresses in the GiB.
template <Side S>
struct TranslateRandom : Case {
  World& w = mapped();
  std::vector<uint64_t> vas;
  TranslateRandom() {
    std::mt19937_64 rng(42);
    vas.resize(1 << 16);
    for (auto& va : vas) va = kVa + (rng() & (kGiB - 1));
    ops = vas.size();
  }
  void run() override {
    uint64_t sum = 0;
    for (uint64_t va : vas) {
      if constexpr (S == Side::generic)
        sum += generic_translate(w.pt, va);
      else
        sum += baseline::translate(PhysMem::base(), w.pt.root(), va);
    }
    benchmark::DoNotOptimize(sum);
  }
  bool check() override {
    for (uint64_t va : vas)
      if (generic_translate(w.pt, va) != baseline::translate(PhysMem::base(), w.pt.root(), va))
        return false;
    return true;
  }
};

// 4096 4K pages (16 MiB, eight PTE tables) mapped one at a time into empty tables:
// huge_pte_alloc + set_huge_pte_at per page (the entry built for each page from its vocabulary
// value) against the hand-written walk-allocate-store.
template <Side S>
struct Map4KOneByOne : Case {
  static constexpr uint64_t kN = 4096;
  World w;
  bool ok = true;
  Map4KOneByOne() {
    w.save();
    ops = kN;
  }
  void restore() override { w.restore(); }
  void run() override {
    Ops hp(w.pt, w.tlb);
    for (uint64_t i = 0; i < kN; ++i) {
      uint64_t va = kVa + (i << 12), pa = kPa + (i << 12);
      if constexpr (S == Side::generic) {
        Result<Ops::Handle> h = hp.alloc(va, 12);
        ok = ok && h && hp.set(h.value, rw_leaf(pa)) == Err::ok;
      } else {
        ok = ok && baseline::map_4k(w.env, w.pt.root(), va, pa, baseline::kLeafRW);
      }
    }
  }
  bool check() override {
    for (uint64_t i = 0; i < kN; ++i)
      if (w.pa_of(kVa + (i << 12)) != kPa + (i << 12)) return false;
    return ok;
  }
};

const bool registered = [] {
  add("BM_TranslateSequential/generic", make<TranslateSequential<Side::generic>>());
  add("BM_TranslateSequential/baseline", make<TranslateSequential<Side::baseline>>());
  add("BM_TranslateRandom/generic", make<TranslateRandom<Side::generic>>());
  add("BM_TranslateRandom/baseline", make<TranslateRandom<Side::baseline>>());
  add("BM_Map4KOneByOne/generic", make<Map4KOneByOne<Side::generic>>());
  add("BM_Map4KOneByOne/baseline", make<Map4KOneByOne<Side::baseline>>());
  return true;
}();

}  // namespace
}  // namespace hugepte::bench
