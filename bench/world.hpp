// world.hpp - what every benchmark case stands on: x86-64 4-level tables in a FlatEnv, the
// attributes the benchmarks map with, snapshots that put a table back untimed, and the memory
// bound (the stores and zeroing any implementation must do, and nothing else).
#pragma once

#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "baseline_x86.hpp"
#include "case.hpp"
#include "flat_env.hpp"
#include "hugepte/arch/x86.hpp"
#include "hugepte/range.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte::bench {

using F = X86_4Level;
using Env = FlatEnv<12>;
using Table = PageTable<F, Env>;
using Range = RangeOps<F, Env, NullTlb>;

inline constexpr uint64_t kGiB = uint64_t{1} << 30;
inline constexpr uint64_t kVa = kGiB;             // the first region: 1 GiB at 1 GiB
inline constexpr uint64_t kPa = uint64_t{1} << 32;     // mapped to 4 GiB
inline constexpr uint64_t kPages1GiB = kGiB >> 12;

enum class Side { generic, baseline, membound };

// Read-write, not executable, accessed and dirty: what baseline::kLeafRW spells in bits.
inline constexpr Attrs kAttrsRW{kProtRW, true, MemType::normal, false, true, true, {}};

inline Entry rw_leaf(uint64_t pa) {
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

struct World {
  Env env;
  Table pt{env};
  NullTlb tlb;
  Env::Snapshot snap;

  explicit World(uint64_t bytes = uint64_t{8} << 20) : env(bytes) { pt.init(); }

  // Remembers the allocator and every table above the last level; restore() puts them back.
  // Valid for operations that write no last-level table they did not allocate themselves.
  void save() {
    std::vector<uint64_t> upper;
    baseline::upper_tables(env, pt.root(), 39, upper);
    snap = env.snapshot(upper);
  }
  void restore() { env.restore(snap); }

  // Maps [va, va + len) with leaves of leaf_shift, by the hand-written code (set-up only).
  void map(uint64_t va, uint64_t pa, uint64_t len, unsigned leaf_shift) {
    if (!baseline::map_range(env, pt.root(), va, pa, len, leaf_shift, baseline::kLeafRW))
      std::abort();
  }

  // The physical address lookup() gives for va, ~0 if none; and the level of its leaf.
  uint64_t pa_of(uint64_t va) const {
    Result<Lookup> l = lookup(pt, va);
    return l ? l.value.pa : ~uint64_t{0};
  }
  unsigned level_of(uint64_t va) const {
    Result<Lookup> l = lookup(pt, va);
    return l ? l.value.level : ~0u;
  }
};

// The memory bound of an operation: zero `pages` table pages (one memset, as if they were
// allocated back to back) and store `entries` entry values one after another, plain stores the
// compiler may vectorise. Both go to the free memory after the tables (the pages zeroed are
// the next ones the allocator would hand out), so the tables themselves stay intact.
inline void membound_write(World& w, uint64_t pages, uint64_t entries) {
  const uint64_t at = w.env.free_pa();
  if (at + (pages << 12) > w.env.end_pa() || at + entries * 8 > w.env.end_pa()) std::abort();
  if (pages) std::memset(Env::mem(at), 0, pages << 12);
  uint64_t* p = reinterpret_cast<uint64_t*>(Env::mem(at));
  const uint64_t v = kPa | baseline::kLeafRW;
  for (uint64_t i = 0; i < entries; ++i) p[i] = v + (i << 12);
  benchmark::ClobberMemory();
}

// The memory bound of a scan: load `entries` entries one after another (those of the tables
// after the root, where a 1 GiB mapping's tables live).
inline void membound_read(World& w, uint64_t entries) {
  const uint64_t* p =
      reinterpret_cast<const uint64_t*>(Env::mem(w.env.first_pa() + (uint64_t{1} << 12)));
  uint64_t acc = 0;
  for (uint64_t i = 0; i < entries; ++i) acc |= p[i];
  benchmark::DoNotOptimize(acc);
}

}  // namespace hugepte::bench
