// baseline_x86.hpp - the hand-written side of every benchmark pair: x86-64 4-level page tables
// walked and edited by straight-line code that knows only this one format. Nothing generic:
// bit masks, four levels written out, no Entry, no encode.
//
// Each function does what the generic operation it is compared with does for the same input
// (the same checks, the same entries written, the same tables allocated and freed, the same
// all-or-nothing table reservation), so a ratio measures the cost of the abstraction and not a
// difference in work. Cases the benchmarks never reach (splitting a partly covered leaf, a
// protection change that needs the clean-writable spelling, ...) return false instead of being
// written out. Entries are read and written as the kernel does (READ_ONCE / WRITE_ONCE: relaxed
// loads and release stores through __atomic builtins; the hardware walker reads them
// concurrently), the same primitives hugepte/table.hpp uses.
#pragma once

#include <cstdint>

#include "flat_env.hpp"
#include "hugepte/entry.hpp"

namespace hugepte::bench::baseline {

using Env = FlatEnv<12>;

constexpr uint64_t kP = 1, kRW = 2, kUS = 4, kA = 0x20, kD = 0x40, kPS = 0x80, kPat4K = 0x80;
constexpr uint64_t kPatLarge = uint64_t{1} << 12, kSavedDirty = uint64_t{1} << 58,
                   kNX = uint64_t{1} << 63;
constexpr uint64_t kAddr = 0x000ffffffffff000ull;
constexpr uint64_t kTable = kP | kRW | kUS | kA | kD;
constexpr uint64_t kLeafRW = kP | kRW | kA | kD | kNX;  // what the benchmarks map: RW, no exec, A+D

inline uint64_t rd(const uint64_t* slot) { return __atomic_load_n(slot, __ATOMIC_RELAXED); }
inline void wr(uint64_t* slot, uint64_t v) { __atomic_store_n(slot, v, __ATOMIC_RELEASE); }
inline uint64_t* tbl(Env& env, uint64_t pa) { return env.table_ptr(pa); }
inline unsigned idx(uint64_t va, unsigned shift) {
  return static_cast<unsigned>((va >> shift) & 511);
}
inline bool is_table(uint64_t e) { return (e & kP) && !(e & kPS); }
inline uint64_t span_last(uint64_t a, unsigned shift) { return (a | ((uint64_t{1} << shift) - 1)); }

// A large leaf's flags as a 4K PTE's (PAT moves from bit 12 to bit 7, PS goes) and back.
inline uint64_t large_to_4k(uint64_t e) {
  return (e & ~(kAddr | kPS)) | ((e & kPatLarge) ? kPat4K : 0);
}
inline uint64_t flags_4k_to_large(uint64_t e) {
  return (e & ~(kAddr | kPat4K)) | kPS | ((e & kPat4K) ? kPatLarge : 0);
}

// --- translate ----------------------------------------------------------------------------------

// The physical address of va, or ~0 when va is not canonical or not mapped by a valid leaf (a
// large leaf with reserved low address bits set faults, so it does not translate either).
inline uint64_t translate(unsigned char* mem, uint64_t root, uint64_t va) {
  if (static_cast<uint64_t>(static_cast<std::int64_t>(va << 16) >> 16) != va) return ~uint64_t{0};
  uint64_t e = rd(reinterpret_cast<uint64_t*>(mem + root) + idx(va, 39));
  if (!(e & kP) || (e & kPS)) return ~uint64_t{0};
  e = rd(reinterpret_cast<uint64_t*>(mem + (e & kAddr)) + idx(va, 30));
  if (!(e & kP)) return ~uint64_t{0};
  if (e & kPS) {
    if (e & 0x3fffe000) return ~uint64_t{0};
    return (e & 0x000fffffc0000000ull) | (va & 0x3fffffff);
  }
  e = rd(reinterpret_cast<uint64_t*>(mem + (e & kAddr)) + idx(va, 21));
  if (!(e & kP)) return ~uint64_t{0};
  if (e & kPS) {
    if (e & 0x1fe000) return ~uint64_t{0};
    return (e & 0x000fffffffe00000ull) | (va & 0x1fffff);
  }
  e = rd(reinterpret_cast<uint64_t*>(mem + (e & kAddr)) + idx(va, 12));
  if (!(e & kP)) return ~uint64_t{0};
  return (e & kAddr) | (va & 0xfff);
}

// --- one page ------------------------------------------------------------------------------------

inline bool canonical(uint64_t va) {
  return static_cast<uint64_t>(static_cast<std::int64_t>(va << 16) >> 16) == va;
}

// The missing tables under `slot` (a none entry; the first missing table holds entries of
// shift `shift`) down to the PTE table for va, allocated (all or nothing), linked off-line and
// published with one store.
inline uint64_t* alloc_chain(Env& env, uint64_t* slot, unsigned shift, uint64_t va) {
  uint64_t chain[3];
  const unsigned n = (shift - 12) / 9 + 1;
  for (unsigned k = 0; k < n; ++k) {
    Result<uint64_t> r = env.alloc_table(0);
    if (!r) {
      while (k--) env.free_table(chain[k], 0);
      return nullptr;
    }
    chain[k] = r.value;
  }
  for (unsigned k = 0; k + 1 < n; ++k)
    wr(&tbl(env, chain[k])[idx(va, shift - 9 * k)], chain[k + 1] | kTable);
  wr(slot, chain[0] | kTable);
  return tbl(env, chain[n - 1]);
}

// Maps one 4K page (pa 4K-aligned and below 2^52), allocating missing tables, as huge_pte
// alloc + set do: four levels written out, the allocation out of the way.
inline bool map_4k(Env& env, uint64_t root, uint64_t va, uint64_t pa, uint64_t flags) {
  if (!canonical(va) || (pa & ~kAddr)) return false;
  uint64_t* slot = &tbl(env, root)[idx(va, 39)];
  uint64_t e = rd(slot);
  uint64_t* pt;
  if (!(e & kP)) {
    if (e != 0 || !(pt = alloc_chain(env, slot, 30, va))) return false;
  } else {
    if (e & kPS) return false;
    slot = &tbl(env, e & kAddr)[idx(va, 30)];
    e = rd(slot);
    if (!(e & kP)) {
      if (e != 0 || !(pt = alloc_chain(env, slot, 21, va))) return false;
    } else {
      if (e & kPS) return false;
      slot = &tbl(env, e & kAddr)[idx(va, 21)];
      e = rd(slot);
      if (!(e & kP)) {
        if (e != 0 || !(pt = alloc_chain(env, slot, 12, va))) return false;
      } else {
        if (e & kPS) return false;
        pt = tbl(env, e & kAddr);
      }
    }
  }
  wr(&pt[idx(va, 12)], pa | flags);
  return true;
}

// --- table pages reserved before anything changes -----------------------------------------------

// Pages chained through their first word, as range.hpp's pool does.
struct Pool {
  uint64_t head = 0;
  uint64_t count = 0;
};

inline bool reserve(Env& env, Pool& p, uint64_t n) {
  for (uint64_t k = 0; k < n; ++k) {
    Result<uint64_t> r = env.alloc_table(0);
    if (!r) {
      while (p.count) {
        uint64_t pa = p.head;
        p.head = tbl(env, pa)[0];
        tbl(env, pa)[0] = 0;
        --p.count;
        env.free_table(pa, 0);
      }
      return false;
    }
    tbl(env, r.value)[0] = p.head;
    p.head = r.value;
    ++p.count;
  }
  return true;
}

inline uint64_t take(Env& env, Pool& p) {
  uint64_t pa = p.head;
  uint64_t* t = tbl(env, pa);
  p.head = t[0];
  t[0] = 0;
  --p.count;
  return pa;
}

// Frees the table at pa holding entries of shift `shift`, and every table below it.
inline void free_tree(Env& env, uint64_t pa, unsigned shift) {
  if (shift > 12) {
    uint64_t* t = tbl(env, pa);
    for (unsigned i = 0; i < 512; ++i) {
      uint64_t e = rd(&t[i]);
      if (is_table(e)) free_tree(env, e & kAddr, shift - 9);
    }
  }
  env.free_table(pa, 0);
}

inline bool table_empty(const uint64_t* t) {
  for (unsigned i = 0; i < 512; ++i)
    if (rd(&t[i]) != 0) return false;
  return true;
}

// --- map a range ---------------------------------------------------------------------------------

// Tables missing under the entry `e` at `shift` for leaves of `leaf_shift` over [a, last];
// e == 0 stands for an absent subtree. -1: a leaf above leaf_shift is in the way.
inline long count_missing(Env& env, uint64_t e, unsigned shift, uint64_t a, uint64_t last,
                          unsigned leaf_shift) {
  unsigned cs = shift - 9;  // the child table's entries
  long need = 0;
  const uint64_t* t = nullptr;
  if (e == 0) {
    need = 1;
  } else if (!is_table(e)) {
    return -1;
  } else {
    t = tbl(env, e & kAddr);
  }
  if (cs == leaf_shift) return need;
  for (;;) {
    uint64_t c = t ? rd(&t[idx(a, cs)]) : 0;
    uint64_t l = span_last(a, cs);
    long n = count_missing(env, c, cs, a, l < last ? l : last, leaf_shift);
    if (n < 0) return -1;
    need += n;
    if (l >= last) return need;
    a = l + 1;
  }
}

// Fills [a, last] of the table t (entries of `shift`) with leaves of leaf_shift, taking tables.
// `fresh`: t was just taken and is not linked yet, so its leaves are written with plain stores
// in one loop (nothing can see them before the release store that links the table).
inline void fill(Env& env, Pool& pool, uint64_t* t, unsigned shift, uint64_t a, uint64_t last,
                 uint64_t pa_minus_va, unsigned leaf_shift, uint64_t flags, bool fresh = false) {
  if (fresh && shift == leaf_shift) {
    uint64_t* slot = &t[idx(a, shift)];
    const uint64_t n = ((last - a) >> shift) + 1, first = ((a + pa_minus_va) & kAddr) | flags;
    for (uint64_t i = 0; i < n; ++i) slot[i] = first + (i << shift);
    return;
  }
  for (;;) {
    uint64_t* slot = &t[idx(a, shift)];
    uint64_t l = span_last(a, shift);
    uint64_t cl = l < last ? l : last;
    if (shift == leaf_shift) {
      wr(slot, ((a + pa_minus_va) & kAddr) | flags);
    } else {
      uint64_t e = rd(slot);
      if (e == 0) {
        uint64_t pa = take(env, pool);
        fill(env, pool, tbl(env, pa), shift - 9, a, cl, pa_minus_va, leaf_shift, flags, true);
        wr(slot, pa | kTable);  // the subtree was built off-line: one store publishes it
      } else {
        fill(env, pool, tbl(env, e & kAddr), shift - 9, a, cl, pa_minus_va, leaf_shift, flags);
      }
    }
    if (l >= last) return;
    a = l + 1;
  }
}

// Maps [va, va + len) to pa with leaves of 1 << leaf_shift (12, 21 or 30; va, pa and len aligned
// to it), `flags` being a 4K PTE's flags. All or nothing: missing tables are counted and
// reserved first. Existing leaves of leaf_shift are replaced; a bigger leaf in the way is refused.
inline bool map_range(Env& env, uint64_t root, uint64_t va, uint64_t pa, uint64_t len,
                      unsigned leaf_shift, uint64_t flags) {
  const uint64_t last = va + len - 1;
  if (leaf_shift != 12) flags = flags_4k_to_large(flags);
  long need = 0;
  uint64_t* pgd = tbl(env, root);
  for (uint64_t a = va;;) {
    uint64_t l = span_last(a, 39);
    long n = count_missing(env, rd(&pgd[idx(a, 39)]), 39, a, l < last ? l : last, leaf_shift);
    if (n < 0) return false;
    need += n;
    if (l >= last) break;
    a = l + 1;
  }
  Pool pool;
  if (!reserve(env, pool, static_cast<uint64_t>(need))) return false;
  fill(env, pool, pgd, 39, va, last, pa - va, leaf_shift, flags);
  return true;
}

// --- unmap ---------------------------------------------------------------------------------------

// Clears [a, last] of table t (entries of `shift`): entries wholly inside become none (tables
// freed with everything under them), partly covered tables are descended and freed when left
// empty. A partly covered leaf would need a split: refused (false) before anything changed
// only if it is met first - the benchmarks never meet one.
inline bool unmap_in(Env& env, uint64_t* t, unsigned shift, uint64_t a, uint64_t last) {
  for (;;) {
    uint64_t* slot = &t[idx(a, shift)];
    uint64_t base = a & ~((uint64_t{1} << shift) - 1);
    uint64_t l = span_last(a, shift);
    uint64_t e = rd(slot);
    if (e != 0) {
      if (a == base && l <= last) {
        __atomic_exchange_n(slot, 0, __ATOMIC_ACQ_REL);
        if (shift > 12 && is_table(e)) free_tree(env, e & kAddr, shift - 9);
      } else if (shift > 12 && is_table(e)) {
        uint64_t* child = tbl(env, e & kAddr);
        if (!unmap_in(env, child, shift - 9, a, l < last ? l : last)) return false;
        if (table_empty(child)) {
          __atomic_exchange_n(slot, 0, __ATOMIC_ACQ_REL);
          env.free_table(e & kAddr, 0);
        }
      } else {
        return false;
      }
    }
    if (l >= last) return true;
    a = l + 1;
  }
}

inline bool unmap_range(Env& env, uint64_t root, uint64_t va, uint64_t len) {
  return unmap_in(env, tbl(env, root), 39, va, va + len - 1);
}

// --- protect -------------------------------------------------------------------------------------

// The leaf e with new permissions: RW/US/XD replaced, dirt moved between D (writable) and
// SAVED_DIRTY (read-only; W=0 with D=1 would be a shadow-stack page).
inline uint64_t with_prot(uint64_t e, uint64_t prot_bits) {
  uint64_t n = (e & ~(kRW | kUS | kNX)) | prot_bits;
  if (!(prot_bits & kRW) && (n & kD)) n = (n & ~kD) | kSavedDirty;
  if ((prot_bits & kRW) && (n & kSavedDirty)) n = (n & ~kSavedDirty) | kD;
  return n;
}

// Sets the permissions (RW, US, XD bits) of every present leaf in [a, last] of table t; each
// changed entry is rewritten with compare-exchange so a concurrent A/D update is not lost.
inline bool protect_in(Env& env, uint64_t* t, unsigned shift, uint64_t a, uint64_t last,
                       uint64_t prot_bits) {
  for (;;) {
    uint64_t* slot = &t[idx(a, shift)];
    uint64_t base = a & ~((uint64_t{1} << shift) - 1);
    uint64_t l = span_last(a, shift);
    uint64_t e = rd(slot);
    if (e & kP) {
      if (shift > 12 && !(e & kPS)) {
        if (!protect_in(env, tbl(env, e & kAddr), shift - 9, a, l < last ? l : last, prot_bits))
          return false;
      } else {
        uint64_t n = with_prot(e, prot_bits);
        if (n != e) {
          if (a != base || l > last) return false;  // would need a split
          while (!__atomic_compare_exchange_n(slot, &e, n, false, __ATOMIC_ACQ_REL,
                                              __ATOMIC_RELAXED))
            n = with_prot(e, prot_bits);
        }
      }
    }
    if (l >= last) return true;
    a = l + 1;
  }
}

inline bool protect_range(Env& env, uint64_t root, uint64_t va, uint64_t len, uint64_t prot_bits) {
  return protect_in(env, tbl(env, root), 39, va, va + len - 1, prot_bits);
}

// --- split and collapse -------------------------------------------------------------------------

// Splits the 1G leaf covering va down to a 4K page at va: a table of 512 2M leaves replaces the
// 1G leaf, and the 2M leaf covering va becomes a table of 512 4K leaves. Every attribute kept.
inline bool split_1g_to_4k(Env& env, uint64_t root, uint64_t va) {
  uint64_t e4 = rd(&tbl(env, root)[idx(va, 39)]);
  if (!is_table(e4)) return false;
  uint64_t* slot = &tbl(env, e4 & kAddr)[idx(va, 30)];
  uint64_t e = rd(slot);
  if (!(e & kP) || !(e & kPS) || (e & 0x3fffe000)) return false;
  Pool pool;
  if (!reserve(env, pool, 2)) return false;
  const uint64_t pa1g = e & 0x000fffffc0000000ull, flags = e & ~0x000fffffc0000000ull;
  uint64_t pmd_pa = take(env, pool), pt_pa = take(env, pool);
  uint64_t* pmd = tbl(env, pmd_pa);
  for (unsigned i = 0; i < 512; ++i) wr(&pmd[i], (pa1g + (uint64_t{i} << 21)) | flags);
  const unsigned j = idx(va, 21);
  const uint64_t pa2m = pa1g + (uint64_t{j} << 21), flags4k = large_to_4k(flags);
  uint64_t* pt = tbl(env, pt_pa);
  for (unsigned i = 0; i < 512; ++i) wr(&pt[i], (pa2m + (uint64_t{i} << 12)) | flags4k);
  wr(&pmd[j], pt_pa | kTable);
  uint64_t expected = e;
  while (!__atomic_compare_exchange_n(slot, &expected, pmd_pa | kTable, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_RELAXED)) {
  }
  return true;
}

// Collapse's view of a 4K-form leaf: everything but the address and what collapse gathers (A,
// D, SAVED_DIRTY, and RW of a writable page, which a shadow-stack page spells as W=0 D=1).
inline uint64_t attrs_of(uint64_t e4k) {
  return (e4k & ~(kAddr | kA | kD | kSavedDirty | kRW)) | ((e4k & (kRW | kD)) ? kRW : 0);
}

// Collapses the 1G region around va, mapped by 2M and 4K leaves that are physically contiguous
// from a 1G-aligned address with identical attributes, into one 1G leaf; the tables go.
inline bool collapse_to_1g(Env& env, uint64_t root, uint64_t va) {
  uint64_t e4 = rd(&tbl(env, root)[idx(va, 39)]);
  if (!is_table(e4)) return false;
  uint64_t* slot = &tbl(env, e4 & kAddr)[idx(va, 30)];
  uint64_t e = rd(slot);
  if (!(e & kP)) return false;
  if (e & kPS) return true;  // already one leaf
  uint64_t* pmd = tbl(env, e & kAddr);
  uint64_t ref = 0, first = 0, gathered = 0;
  for (unsigned i = 0; i < 512; ++i) {
    uint64_t m = rd(&pmd[i]);
    if (!(m & kP)) return false;
    if (m & kPS) {
      if (m & 0x1fe000) return false;
      uint64_t f = large_to_4k(m);
      uint64_t pa = m & 0x000fffffffe00000ull;
      if (i == 0) {
        first = pa;
        ref = attrs_of(f);
        if (first & 0x3fffffff) return false;
      } else if (pa != first + (uint64_t{i} << 21) || attrs_of(f) != ref) {
        return false;
      }
      gathered |= f & (kA | kD | kSavedDirty | kRW);
      continue;
    }
    const uint64_t* pt = tbl(env, m & kAddr);
    for (unsigned k = 0; k < 512; ++k) {
      uint64_t p = rd(&pt[k]);
      if (!(p & kP)) return false;
      uint64_t pa = p & kAddr;
      if (i == 0 && k == 0) {
        first = pa;
        ref = attrs_of(p);
        if (first & 0x3fffffff) return false;
      } else if (pa != first + (uint64_t{i} << 21) + (uint64_t{k} << 12) || attrs_of(p) != ref) {
        return false;
      }
      gathered |= p & (kA | kD | kSavedDirty | kRW);
    }
  }
  uint64_t leaf = first | flags_4k_to_large((ref & ~kRW) | gathered);
  uint64_t expected = e;
  while (!__atomic_compare_exchange_n(slot, &expected, leaf, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_RELAXED)) {
  }
  free_tree(env, e & kAddr, 21);
  return true;
}

// The pages of every table above the last level (root, PUD and PMD tables), for snapshots.
inline void upper_tables(Env& env, uint64_t pa, unsigned shift, std::vector<uint64_t>& out) {
  out.push_back(pa);
  if (shift <= 21) return;
  uint64_t* t = tbl(env, pa);
  for (unsigned i = 0; i < 512; ++i)
    if (is_table(rd(&t[i]))) upper_tables(env, rd(&t[i]) & kAddr, shift - 9, out);
}

}  // namespace hugepte::bench::baseline
