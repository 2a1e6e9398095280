// bench_range.cpp - the bulk operations of range.hpp (map, unmap, protect over 1 GiB; split of a
// 1G leaf and collapse back) against the hand-written x86-64 4-level code (baseline_x86.hpp),
// and against their memory bound: the entry stores and table zeroing (or, for collapse, the
// entry loads) any implementation has to do.
//
// Each run starts from the same tables: restore() puts back the allocator and the tables above
// the last level, which is all these operations write besides tables they allocate (unmap and
// collapse free last-level tables without writing them). Small operations are batched (`ops`
// per run) over consecutive GiBs, so that one timed region is long against the clock.
#include "world.hpp"

namespace hugepte::bench {
namespace {

inline uint64_t va_k(uint64_t k) { return kVa + k * kGiB; }
inline uint64_t pa_k(uint64_t k) { return kPa + k * kGiB; }

// Map 1 GiB with leaves of 1 << shift into empty tables, `n` times (one GiB after another).
template <Side S>
struct MapGiB : Case {
  unsigned shift;
  World w;
  bool ok = true;
  MapGiB(unsigned s, uint64_t n) : shift(s) {
    ops = n;
    w.save();
  }
  void restore() override { w.restore(); }
  void run() override {
    if constexpr (S == Side::generic) {
      Range r(w.pt, w.tlb);
      for (uint64_t k = 0; k < ops; ++k)
        ok = ok && r.map(va_k(k), pa_k(k), kGiB, kAttrsRW, shift) == Err::ok;
    } else if constexpr (S == Side::baseline) {
      for (uint64_t k = 0; k < ops; ++k)
        ok = ok && baseline::map_range(w.env, w.pt.root(), va_k(k), pa_k(k), kGiB, shift,
                                       baseline::kLeafRW);
    } else {
      // One PUD table for the batch (all in the first 512 GiB); per GiB, a PMD table and its
      // 512 PTE tables as the leaves need them; entries: the PGD entry, then per GiB the
      // PUD entry and the entries below it.
      const uint64_t per_pages = shift == 12 ? 513 : shift == 21 ? 1 : 0;
      const uint64_t per_entries = 1 + (shift <= 21 ? 512 : 0) + (shift == 12 ? kPages1GiB : 0);
      membound_write(w, 1 + ops * per_pages, 1 + ops * per_entries);
    }
  }
  bool check() override {
    if constexpr (S != Side::membound) {
      for (uint64_t k = 0; k < ops; ++k) {
        if (w.pa_of(va_k(k) + 0x12345678) != pa_k(k) + 0x12345678) return false;
        if (w.level_of(va_k(k)) != (shift - 12) / 9) return false;
      }
    }
    return ok;
  }
};

// The first GiB mapped with 4K pages, tables saved for restore().
struct Mapped4K {
  World w;
  Mapped4K() {
    w.map(kVa, kPa, kGiB, 12);
    w.save();
  }
};

template <Side S>
struct UnmapGiB : Case, Mapped4K {
  bool ok = true;
  void restore() override { w.restore(); }
  void run() override {
    if constexpr (S == Side::generic) {
      Range r(w.pt, w.tlb);
      ok = ok && r.unmap(kVa, kGiB) == Err::ok;
    } else if constexpr (S == Side::baseline) {
      ok = ok && baseline::unmap_range(w.env, w.pt.root(), kVa, kGiB);
    } else {
      // Clearing every entry the mapping had (what a page-by-page unmap writes); the library
      // and the baseline instead unlink the tables whole and free them unwritten.
      membound_write(w, 0, kPages1GiB + 512 + 2);
    }
  }
  bool check() override {
    if constexpr (S != Side::membound) {
      if (w.pa_of(kVa) != ~uint64_t{0} || w.pa_of(kVa + kGiB - 1) != ~uint64_t{0}) return false;
      if (baseline::rd(w.pt.root_table()) != 0) return false;  // the emptied PUD table went too
    }
    return ok;
  }
};

// RW -> RO, then back: each run flips every page of the GiB (A/D kept; a read-only dirty
// page records its dirt in SAVED_DIRTY, which x86 needs since W=0 with D=1 is a shadow stack).
template <Side S>
struct ProtectGiB : Case, Mapped4K {
  bool ok = true;
  bool ro = false;
  void restore() override { ro = !ro; }
  void run() override {
    if constexpr (S == Side::generic) {
      Range r(w.pt, w.tlb);
      ok = ok && (ro ? r.protect(kVa, kGiB, kProtR, false)
                     : r.protect(kVa, kGiB, kProtRW, true)) == Err::ok;
    } else if constexpr (S == Side::baseline) {
      ok = ok && baseline::protect_range(w.env, w.pt.root(), kVa, kGiB,
                                         ro ? baseline::kNX : baseline::kRW | baseline::kNX);
    } else {
      membound_write(w, 0, kPages1GiB);
    }
  }
  bool check() override {
    if constexpr (S != Side::membound) {
      for (uint64_t va : {kVa, kVa + kGiB / 2 + 0x5000, kVa + kGiB - 0x1000}) {
        Result<Lookup> l = lookup(w.pt, va);
        if (!l || ((l.value.raw & baseline::kRW) != 0) == ro) return false;
        if (!(l.value.raw & (ro ? baseline::kSavedDirty : baseline::kD))) return false;
      }
    }
    return ok;
  }
};

// A 1G leaf split down to a 4K page at its start: 512 2M leaves, one of them split into 512 4K
// leaves. `ops` leaves, one per GiB.
template <Side S>
struct Split1GTo4K : Case {
  World w;
  bool ok = true;
  explicit Split1GTo4K(uint64_t n) {
    ops = n;
    w.map(kVa, kPa, n * kGiB, 30);
    w.save();
  }
  void restore() override { w.restore(); }
  void run() override {
    if constexpr (S == Side::generic) {
      Range r(w.pt, w.tlb);
      for (uint64_t k = 0; k < ops; ++k) ok = ok && r.split(va_k(k), 12) == Err::ok;
    } else if constexpr (S == Side::baseline) {
      for (uint64_t k = 0; k < ops; ++k)
        ok = ok && baseline::split_1g_to_4k(w.env, w.pt.root(), va_k(k));
    } else {
      membound_write(w, 2 * ops, ops * (512 + 512 + 2));
    }
  }
  bool check() override {
    if constexpr (S != Side::membound) {
      for (uint64_t k = 0; k < ops; ++k) {
        if (w.level_of(va_k(k) + 0x1000) != 0 || w.pa_of(va_k(k) + 0x1234) != pa_k(k) + 0x1234)
          return false;
        if (w.level_of(va_k(k) + (uint64_t{5} << 21)) != 1) return false;
        if (w.pa_of(va_k(k) + kGiB - 8) != pa_k(k) + kGiB - 8) return false;
      }
    }
    return ok;
  }
};

// The 4K-mapped GiB collapsed into one 1G leaf (every entry checked, the tables freed).
template <Side S>
struct Collapse4KTo1G : Case, Mapped4K {
  bool ok = true;
  void restore() override { w.restore(); }
  void run() override {
    if constexpr (S == Side::generic) {
      Range r(w.pt, w.tlb);
      ok = ok && r.collapse(kVa, 30) == Err::ok;
    } else if constexpr (S == Side::baseline) {
      ok = ok && baseline::collapse_to_1g(w.env, w.pt.root(), kVa);
    } else {
      membound_read(w, kPages1GiB + 512);
    }
  }
  bool check() override {
    if constexpr (S != Side::membound) {
      if (w.level_of(kVa + 0x3000) != 2 || w.pa_of(kVa + 0x3008) != kPa + 0x3008) return false;
    }
    return ok;
  }
};

template <template <Side> class C, class... A>
void add3(const char* op, bool membound, A... a) {
  std::string base = std::string("BM_") + op;
  add(base + "/generic", make<C<Side::generic>>(a...));
  add(base + "/baseline", make<C<Side::baseline>>(a...));
  if (membound) add(base + "/membound", make<C<Side::membound>>(a...));
}

const bool registered = [] {
  add3<MapGiB>("Map1GiBAt4K", true, 12u, uint64_t{1});
  add3<MapGiB>("Map1GiBAt2M", true, 21u, uint64_t{64});
  add3<MapGiB>("Map1GiBAt1G", true, 30u, uint64_t{256});
  add3<UnmapGiB>("Unmap1GiB4K", true);
  add3<ProtectGiB>("Protect1GiB4K", true);
  add3<Split1GTo4K>("Split1GTo4K", true, uint64_t{16});
  add3<Collapse4KTo1G>("Collapse4KTo1G", true);
  return true;
}();

}  // namespace
}  // namespace hugepte::bench
