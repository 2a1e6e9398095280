// hugepte/commit.hpp - the one commit path: every live change of a page table goes through here.
//
//   TablePool       table pages taken from the Env before a commit, so the commit cannot run
//                   out (Linux: the page-table preallocation of a split, KVM's memcache)
//   Invalidations   the invalidations an operation owes: some now (break-before-make, a table
//                   about to be freed), leaf ones merged and issued when the operation ends,
//                   then one publish() if an invalid slot became valid
//   replace()       one unit - a single entry or every entry of a contiguous group - from the
//                   values the caller read to the values it encoded (Hafnium's
//                   mm_replace_entry): invalid -> invalidate -> new where the format needs
//                   break-before-make, a compare-exchange in place where it does not, and
//                   any table it unlinks freed only after the walk-cache invalidation
//   free_tables()   a table page and everything under it, back to the Env
//
// The caller encodes every new value first, so any failure comes before the first write; what
// happens here cannot fail. Freestanding.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"

namespace hugepte {

// --- reserved table pages ----------------------------------------------------------------------

// Table pages per level, reserved ahead of a commit. The pages are chained through their first
// word (they are ours and zero until handed out), so the pool needs no storage of its own.
template <Format F, TableEnv Env>
class TablePool {
 public:
  using Table = PageTable<F, Env>;

  explicit TablePool(const Table& pt) : pt_(&pt) {}
  TablePool(const TablePool&) = delete;
  TablePool& operator=(const TablePool&) = delete;
  ~TablePool() { release(); }

  // Takes need[level] more pages per level from the Env. All or nothing: on ENOMEM the pool is
  // as it was before the call.
  Err reserve(const u64 (&need)[F::levels]) {
    u64 before[F::levels];
    for (unsigned l = 0; l < F::levels; ++l) before[l] = count_[l];
    for (unsigned l = 0; l < F::levels; ++l) {
      for (u64 k = 0; k < need[l]; ++k) {
        Result<u64> r = pt_->alloc_table(l);
        if (!r) {
          for (unsigned m = 0; m < F::levels; ++m)
            while (count_[m] > before[m]) pt_->free_table(pop(m), m);
          return Err::enomem;
        }
        push(l, r.value);
      }
    }
    return Err::ok;
  }

  bool empty(unsigned level) const { return count_[level] == 0; }
  u64 count(unsigned level) const { return count_[level]; }

  // A zeroed page for entries of `level`. The pool must hold one: a commit asks only for what
  // its plan reserved, and a commit that finds none has no way back, so it stops.
  u64 take(unsigned level) {
    if (count_[level] == 0) __builtin_trap();
    return pop(level);
  }

  // Gives back every page still held.
  void release() {
    for (unsigned l = 0; l < F::levels; ++l)
      while (count_[l] != 0) pt_->free_table(pop(l), l);
  }

 private:
  void push(unsigned level, u64 pa) {
    pt_->table(pa)[0] = head_[level];
    head_[level] = pa;
    ++count_[level];
  }
  u64 pop(unsigned level) {
    u64 pa = head_[level];
    u64* t = pt_->table(pa);
    head_[level] = t[0];
    t[0] = 0;
    --count_[level];
    return pa;
  }

  const Table* pt_;
  u64 head_[F::levels] = {};
  u64 count_[F::levels] = {};
};

// --- invalidations owed ---------------------------------------------------------------------

// What an operation owes the TLB. now() issues at once (anything merged so far first, to keep
// the order); later() merges a leaf invalidation with the previous one while they stay
// contiguous and alike; finish() issues what is left and publishes if a slot became valid.
template <TlbSink Tlb>
class Invalidations {
 public:
  explicit Invalidations(Tlb& tlb) : tlb_(&tlb) {}
  Invalidations(const Invalidations&) = delete;
  Invalidations& operator=(const Invalidations&) = delete;

  void now(const TlbFlush& f) {
    emit();
    tlb_->flush(f);
  }
  void later(const TlbFlush& f) {
    TlbFlush& p = pending_;
    if (has_pending_ && p.end != 0 && p.end == f.start && p.stride_shift == f.stride_shift &&
        p.level == f.level && p.leaf_only == f.leaf_only) {
      p.end = f.end;
      return;
    }
    emit();
    pending_ = f;
    has_pending_ = true;
  }
  void made_valid() { publish_ = true; }
  void finish() {
    emit();
    if (publish_) tlb_->publish();
    publish_ = false;
  }

 private:
  void emit() {
    if (has_pending_) tlb_->flush(pending_);
    has_pending_ = false;
  }

  Tlb* tlb_;
  TlbFlush pending_{};
  bool has_pending_ = false;
  bool publish_ = false;
};

// --- freeing tables ---------------------------------------------------------------------------

namespace commit_detail {
template <Format F, TableEnv Env, unsigned Level>
void free_tables_at(const PageTable<F, Env>& pt, u64 pa) {
  if constexpr (Level > 0) {
    u64* t = pt.table(pa);
    for (u64 i = 0; i < bit(F::index_bits(Level)); ++i) {
      u64 raw = PageTable<F, Env>::load(t + i);
      if (F::is_table(raw, Level)) free_tables_at<F, Env, Level - 1>(pt, F::out_addr(raw, Level));
    }
  }
  pt.free_table(pa, Level);
}

template <Format F, TableEnv Env, unsigned Level = F::levels - 1>
void free_tables_dispatch(const PageTable<F, Env>& pt, u64 pa, unsigned level) {
  if (level == Level) return free_tables_at<F, Env, Level>(pt, pa);
  if constexpr (Level > 0) free_tables_dispatch<F, Env, Level - 1>(pt, pa, level);
}
}  // namespace commit_detail

// Frees the table page at `pa` (holding entries of `level`) and every table under it; leaves
// are not followed. The caller has unlinked it and invalidated the walk caches for its range.
template <Format F, TableEnv Env>
void free_tables(const PageTable<F, Env>& pt, u64 pa, unsigned level) {
  commit_detail::free_tables_dispatch<F, Env>(pt, pa, level);
}

// --- the replace primitive --------------------------------------------------------------------

// The most entries one unit can have: the largest contiguous group of the format.
template <Format F>
constexpr u64 max_unit_entries() {
  u64 m = 1;
  for (unsigned l = 0; l < F::levels; ++l)
    if (F::cont_shift(l) != 0 && bit(F::cont_shift(l) - F::shift(l)) > m)
      m = bit(F::cont_shift(l) - F::shift(l));
  return m;
}

// The hardware may hold it in a TLB or a walk cache.
template <Format F>
constexpr bool hw_valid(u64 raw, unsigned level) {
  return F::is_leaf(raw, level) || (level > 0 && F::is_table(raw, level));
}

// Whether the hardware may have cached `old` and must have dropped it before `next` is written.
template <Format F>
constexpr bool break_needed(u64 old, u64 next, unsigned level) {
  return hw_valid<F>(old, level) && hw_valid<F>(next, level) && F::needs_bbm(old, next, level);
}

// Who issues the invalidation a unit owes when no break was needed.
enum class Owed : u8 {
  by_replace,  // replace() queues it (at once if a table went away)
  by_caller,   // the caller does (set_huge_pte_at: Linux's callers flush)
};

// A unit's new values derived from the old ones (a protection change, setting access flags):
// when the hardware changed an entry (A/D) between the caller's read and the write, replace()
// asks for the values again from what is there now, so no hardware update is lost.
//   rederive(const u64* now, u64* out) -> bool: out[k] for every entry from now[k]; false keeps
//   the values the caller gave.
struct NoRederive {
  constexpr bool operator()(const u64*, u64*) const { return false; }
};

// replace: `n` consecutive slots at `level` (one entry, or all entries of a group, whose
// addresses are `flush`'s range) go from old[] (what the caller read) to next[] (encoded by the
// caller). Unchanged slots are not written.
//  - break-before-make, when some changed slot needs it: every changed valid slot is exchanged
//    with invalid (taking what the hardware left), `flush` is issued, the values are derived
//    again from what was taken, and the new values are written;
//  - otherwise each changed slot is compare-exchanged in place (derived again from what it
//    finds if it changed meanwhile), and `flush` is owed if a valid value was replaced: queued,
//    or issued at once when a table was replaced, since the table is freed next;
//  - tables replaced are freed after their invalidation.
// `flush` must cover walk caches (leaf_only false) when a table may be replaced. A slot that
// became valid is recorded for finish()'s publish.
template <Format F, TableEnv Env, TlbSink Tlb, class Rederive = NoRederive>
HUGEPTE_ALWAYS_INLINE void replace(const PageTable<F, Env>& pt, Invalidations<Tlb>& inv, u64* slots,
                                   unsigned level, u64 n, const u64* old, u64* next,
                                   const TlbFlush& flush, Owed owed = Owed::by_replace,
                                   Rederive rederive = {}) {
  constexpr u64 kMax = max_unit_entries<F>();
  if (n == 1) {  // one entry: the hot path of mapping pages one by one
    if (next[0] == old[0]) return;
    const bool was = hw_valid<F>(old[0], level);
    const bool gone = was && level > 0 && F::is_table(old[0], level);
    if (break_needed<F>(old[0], next[0], level)) {
      u64 now[1] = {pt.exchange(slots, level, 0)};
      inv.now(flush);
      if (u64 again[1]; rederive(static_cast<const u64*>(now), again)) next[0] = again[0];
      pt.store(slots, level, next[0]);
    } else {
      u64 expected = old[0];
      while (!pt.cmpxchg(slots, level, expected, next[0])) {
        u64 now[1] = {expected};  // what the hardware left
        if (u64 again[1]; rederive(static_cast<const u64*>(now), again)) next[0] = again[0];
      }
      if (gone) {
        inv.now(flush);
      } else if (was && owed == Owed::by_replace) {
        inv.later(flush);
      }
    }
    if (hw_valid<F>(next[0], level)) inv.made_valid();
    if (gone) free_tables(pt, F::out_addr(old[0], level), level - 1);
    return;
  }

  bool changed[kMax] = {};
  bool any = false, bbm = false, gone = false, was_valid = false, now_valid = false;
  for (u64 k = 0; k < n; ++k) {
    if (next[k] == old[k]) continue;
    changed[k] = any = true;
    bbm = bbm || break_needed<F>(old[k], next[k], level);
    gone = gone || (level > 0 && F::is_table(old[k], level));
    was_valid = was_valid || hw_valid<F>(old[k], level);
    now_valid = now_valid || hw_valid<F>(next[k], level);
  }
  if (!any) return;
  u64 now[kMax];
  for (u64 k = 0; k < n; ++k) now[k] = old[k];
  if (bbm) {
    for (u64 k = 0; k < n; ++k)
      if (changed[k] && hw_valid<F>(old[k], level)) now[k] = pt.exchange(slots + k, level, 0);
    inv.now(flush);
    u64 again[kMax];
    if (rederive(static_cast<const u64*>(now), again))
      for (u64 k = 0; k < n; ++k)
        if (changed[k]) next[k] = again[k];
    for (u64 k = 0; k < n; ++k)
      if (changed[k] && (next[k] != 0 || !hw_valid<F>(old[k], level)))
        pt.store(slots + k, level, next[k]);
  } else {
    for (u64 k = 0; k < n; ++k) {
      if (!changed[k]) continue;
      u64 expected = old[k];
      while (!pt.cmpxchg(slots + k, level, expected, next[k])) {
        now[k] = expected;
        u64 again[kMax];
        if (rederive(static_cast<const u64*>(now), again)) next[k] = again[k];
      }
    }
    if (gone) {
      inv.now(flush);
    } else if (was_valid && owed == Owed::by_replace) {
      inv.later(flush);
    }
  }
  if (now_valid) inv.made_valid();
  if (gone)
    for (u64 k = 0; k < n; ++k)
      if (changed[k] && F::is_table(old[k], level))
        free_tables(pt, F::out_addr(old[k], level), level - 1);
}

}  // namespace hugepte
