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
//   (tables go back through PageTable::free_tables, once unlinked and invalidated)
//
// The caller encodes every new value first, so any failure comes before the first write; what
// happens here cannot fail. Freestanding.
#pragma once

#include <concepts>
#include <type_traits>

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"

namespace hugepte {

// --- reserved table pages ----------------------------------------------------------------------

// Table pages per level, reserved ahead of a commit. The pages are chained through their first
// word (they are ours and zero until handed out), so the pool needs no storage of its own. They
// come from, and go back to, the TableEnv `E` given (the page table's own Env, or the Env under
// a counting one, whose count then moves when a page is taken).
template <Format F, TableEnv E>
class TablePool {
 public:
  explicit TablePool(E& env) : env_(&env) {}
  TablePool(const TablePool&) = delete;
  TablePool& operator=(const TablePool&) = delete;
  ~TablePool() { release(); }

  // Takes need[level] more pages per level from the Env. All or nothing: on ENOMEM the pool is
  // as it was before the call.
  Err reserve(const uint64_t (&need)[F::levels]) {
    uint64_t before[F::levels];
    for (unsigned l = 0; l < F::levels; ++l) before[l] = count_[l];
    for (unsigned l = 0; l < F::levels; ++l) {
      for (uint64_t k = 0; k < need[l]; ++k) {
        Result<uint64_t> r = env_->alloc_table(l);
        if (!r) {
          for (unsigned m = 0; m < F::levels; ++m)
            while (count_[m] > before[m]) env_->free_table(pop(m), m);
          return Err::enomem;
        }
        push(l, r.value);
      }
    }
    return Err::ok;
  }

  bool empty(unsigned level) const { return count_[level] == 0; }
  uint64_t count(unsigned level) const { return count_[level]; }

  // A zeroed page for entries of `level`. The pool must hold one: a commit asks only for what
  // its plan reserved, and a commit that finds none has no way back, so it stops.
  uint64_t take(unsigned level) {
    if (count_[level] == 0) __builtin_trap();
    return pop(level);
  }

  // Gives back every page still held.
  void release() {
    for (unsigned l = 0; l < F::levels; ++l)
      while (count_[l] != 0) env_->free_table(pop(l), l);
  }

 private:
  void push(unsigned level, uint64_t pa) {
    env_->table_ptr(pa)[0] = head_[level];
    head_[level] = pa;
    ++count_[level];
  }
  uint64_t pop(unsigned level) {
    uint64_t pa = head_[level];
    uint64_t* t = env_->table_ptr(pa);
    head_[level] = t[0];
    t[0] = 0;
    --count_[level];
    return pa;
  }

  E* env_;
  uint64_t head_[F::levels] = {};
  uint64_t count_[F::levels] = {};
};

// --- invalidations owed ---------------------------------------------------------------------

// What an operation owes the TLB, and the table pages it unlinked.
//   now(f)       issues f at once (what was queued first, to keep the order)
//   later(f)     queues f, merged with the one queued before while they stay alike and
//                adjacent (or one holds the other)
//   retire(t)    a table page unlinked from the tables: its walk-cache invalidation is queued
//                and the page (with everything under it) is freed only after that has been
//                issued - an unlinked table that is not yet safe to free is a state of its own
//   made_valid() a slot went from invalid to valid: finish() publishes once
//   finish()     issues what is queued, frees what was retired, publishes
template <Format F, TableEnv Env, TlbSink Tlb>
class Invalidations {
 public:
  using Table = PageTable<F, Env>;
  static constexpr bool may_replace_tables = true;

  Invalidations(const Table& pt, Tlb& tlb) : pt_(&pt), tlb_(&tlb) {}
  Invalidations(const Invalidations&) = delete;
  Invalidations& operator=(const Invalidations&) = delete;
  ~Invalidations() { finish(); }

  void now(const TlbFlush& f) {
    emit();
    tlb_->flush(f);
  }
  // The common case - the next entry of a run - extends what is queued; inline.
  HUGEPTE_ALWAYS_INLINE void later(const TlbFlush& f) {
    if (has_pending_ && pending_.end == f.start && pending_.end != 0 && alike(pending_, f)) {
      pending_.end = f.end;
      return;
    }
    queue(f);
  }
  // `f` must drop walks cached through the table (leaf_only false) over its whole range.
  void retire(uint64_t table_pa, unsigned level, const TlbFlush& f) {
    if (retired_n_ == kMaxRetired) emit();
    later(f);
    retired_[retired_n_++] = Retired{table_pa, level};
  }
  HUGEPTE_ALWAYS_INLINE void made_valid() { publish_ = true; }
  void finish() {
    emit();
    if (publish_) tlb_->publish();
    publish_ = false;
  }

 private:
  static constexpr unsigned kMaxRetired = 64;
  struct Retired {
    uint64_t pa;
    unsigned level;
  };

  static constexpr bool alike(const TlbFlush& a, const TlbFlush& b) {
    return a.stride_shift == b.stride_shift && a.level == b.level && a.leaf_only == b.leaf_only;
  }
  void queue(const TlbFlush& f) {
    const TlbFlush& p = pending_;
    if (has_pending_ && alike(p, f) && p.start <= f.start && f.end != 0 &&
        (p.end == 0 || f.end <= p.end))
      return;  // already covered
    emit();
    pending_ = f;
    has_pending_ = true;
  }
  void emit();

  const Table* pt_;
  Tlb* tlb_;
  TlbFlush pending_{};
  bool has_pending_ = false;
  bool publish_ = false;
  Retired retired_[kMaxRetired];  // the first retired_n_ are in use; no need to clear the rest
  unsigned retired_n_ = 0;
};

// The same for the slots of one logical entry that is never a table (set_huge_pte_at and the
// other huge_pte_* writers): nothing to merge and nothing to retire, so an invalidation goes
// out at once and so does the publish. No state: it costs nothing on the path that maps pages
// one at a time.
template <TlbSink Tlb>
class EntryInvalidations {
 public:
  static constexpr bool may_replace_tables = false;
  explicit EntryInvalidations(Tlb& tlb) : tlb_(&tlb) {}
  void now(const TlbFlush& f) { tlb_->flush(f); }
  void later(const TlbFlush& f) { tlb_->flush(f); }
  void retire(uint64_t, unsigned, const TlbFlush&) { __builtin_trap(); }  // never a table here
  // replace() reports a slot made valid after every invalidation it issued: publish now.
  void made_valid() { tlb_->publish(); }
  void finish() {}

 private:
  Tlb* tlb_;
};

// What replace() needs of the invalidations it owes.
template <class I>
concept InvalidationQueue = requires(I& i, const TlbFlush& f, uint64_t pa, unsigned level) {
  { I::may_replace_tables } -> std::convertible_to<bool>;  // false: the slots never hold a table
  i.now(f);
  i.later(f);
  i.retire(pa, level, f);
  i.made_valid();
};

template <Format F, TableEnv Env, TlbSink Tlb>
void Invalidations<F, Env, Tlb>::emit() {
  if (has_pending_) tlb_->flush(pending_);
  has_pending_ = false;
  for (unsigned i = 0; i < retired_n_; ++i) pt_->free_tables(retired_[i].pa, retired_[i].level);
  retired_n_ = 0;
}

// --- the replace primitive --------------------------------------------------------------------

// The most entries one unit can have: the largest contiguous group of the format.
template <Format F>
constexpr uint64_t max_unit_entries() {
  uint64_t m = 1;
  for (unsigned l = 0; l < F::levels; ++l)
    if (F::cont_shift(l) != 0 && bit(F::cont_shift(l) - F::shift(l)) > m)
      m = bit(F::cont_shift(l) - F::shift(l));
  return m;
}

// The hardware may hold it in a TLB or a walk cache.
template <Format F>
HUGEPTE_ALWAYS_INLINE constexpr bool hw_valid(uint64_t raw, unsigned level) {
  return raw != 0 && (F::is_leaf(raw, level) || (level > 0 && F::is_table(raw, level)));
}

// Whether the hardware may have cached `old` and must have dropped it before `next` is written:
// where the format requires it, or always (`always`, replace()'s always_break).
template <Format F>
HUGEPTE_ALWAYS_INLINE constexpr bool break_needed(uint64_t old, uint64_t next, unsigned level,
                                                  bool always = false) {
  return hw_valid<F>(old, level) && hw_valid<F>(next, level) &&
         (always || F::needs_bbm(old, next, level));
}

// Who issues the invalidation a unit owes when no break was needed.
enum class Owed : uint8_t {
  by_replace,  // replace() queues it (at once if a table went away)
  by_caller,   // the caller does (set_huge_pte_at: Linux's callers flush)
};

// A unit's new values derived from the old ones (a protection change, setting access flags):
// when the hardware changed an entry (A/D) between the caller's read and the write, replace()
// asks for the values again from what is there now, so no hardware update is lost.
//   rederive(const uint64_t* now, uint64_t* out) -> bool: out[k] for every entry from now[k]; false
//   keeps the values the caller gave.
struct NoRederive {
  constexpr bool operator()(const uint64_t*, uint64_t*) const { return false; }
};

// replace: `n` consecutive slots at `level` (one entry, or all entries of a group, whose
// addresses are `flush`'s range) go from old[] (what the caller read) to next[] (encoded by the
// caller). Unchanged slots are not written.
//  - break-before-make, when some changed slot needs it: every changed valid slot is exchanged
//    with invalid (taking what the hardware left), `flush` is issued, the values are derived
//    again from what was taken, and the new values are written;
//  - otherwise each changed slot is compare-exchanged in place (derived again from what it
//    finds if it changed meanwhile), and `flush` is owed if a valid value was replaced: queued
//    (unless the caller owes it), or - for a table replaced - queued with the table retired,
//    to be freed once it has been issued.
// `flush` must cover walk caches (leaf_only false) when a table may be replaced. A slot that
// became valid is recorded for finish()'s publish. Returns whether a break issued `flush`
// (then nothing is owed for this unit, whoever would have owed it).
// `always_break`: break before make even where the format would not need it, so that the
// rederived values see everything the hardware wrote before it lost the old values (collapse
// gathers A/D from the tables it unlinks, as Linux's pmdp_collapse_flush lets khugepaged do).
template <Format F, TableEnv Env, InvalidationQueue Inv, class Rederive = NoRederive>
HUGEPTE_ALWAYS_INLINE bool replace(const PageTable<F, Env>& pt, Inv& inv, uint64_t* slots,
                                   unsigned level, uint64_t n, const uint64_t* old, uint64_t* next,
                                   const TlbFlush& flush, Owed owed = Owed::by_replace,
                                   Rederive rederive = {}, bool always_break = false) {
  constexpr uint64_t kMax = max_unit_entries<F>();
  if (n == 1) {  // one entry: the hot path of mapping pages one by one
    // An unchanged slot is not written - where it may be a table it must not be retired. The
    // slots of one logical entry (never a table) may simply be written again.
    if (Inv::may_replace_tables && next[0] == old[0]) return false;
    const bool was =
        Inv::may_replace_tables ? hw_valid<F>(old[0], level) : F::is_leaf(old[0], level);
    const bool gone = Inv::may_replace_tables && was && level > 0 && F::is_table(old[0], level);
    const bool bbm = break_needed<F>(old[0], next[0], level, always_break);
    if (bbm) {
      uint64_t now[1] = {pt.exchange(slots, level, 0)};
      inv.now(flush);
      if (uint64_t again[1]; rederive(static_cast<const uint64_t*>(now), again)) next[0] = again[0];
      pt.store(slots, level, next[0]);
      if (gone) pt.free_tables(F::out_addr(old[0], level), level - 1);  // flushed above
    } else {
      if (!was || std::is_same_v<Rederive, NoRederive>) {
        // Nothing cached or updated by the hardware, or a value that does not depend on the
        // old one: one store (one writer at a time: the caller's lock).
        pt.store(slots, level, next[0]);
      } else {
        uint64_t expected = old[0];
        while (!pt.cmpxchg(slots, level, expected, next[0])) {
          uint64_t now[1] = {expected};  // what the hardware left
          if (uint64_t again[1]; rederive(static_cast<const uint64_t*>(now), again))
            next[0] = again[0];
        }
      }
      if (gone) {
        inv.retire(F::out_addr(old[0], level), level - 1, flush);
      } else if (was && owed == Owed::by_replace) {
        inv.later(flush);
      }
    }
    if (hw_valid<F>(next[0], level)) inv.made_valid();
    return bbm;
  }

  bool changed[kMax] = {};
  bool any = false, bbm = false, gone = false, was_valid = false, now_valid = false;
  for (uint64_t k = 0; k < n; ++k) {
    if (next[k] == old[k]) continue;
    changed[k] = any = true;
    bbm = bbm || break_needed<F>(old[k], next[k], level, always_break);
    gone = gone || (level > 0 && F::is_table(old[k], level));
    was_valid = was_valid || hw_valid<F>(old[k], level);
    now_valid = now_valid || hw_valid<F>(next[k], level);
  }
  if (!any) return false;
  uint64_t now[kMax];
  for (uint64_t k = 0; k < n; ++k) now[k] = old[k];
  if (bbm) {
    for (uint64_t k = 0; k < n; ++k)
      if (changed[k] && hw_valid<F>(old[k], level)) now[k] = pt.exchange(slots + k, level, 0);
    inv.now(flush);
    uint64_t again[kMax];
    if (rederive(static_cast<const uint64_t*>(now), again))
      for (uint64_t k = 0; k < n; ++k)
        if (changed[k]) next[k] = again[k];
    for (uint64_t k = 0; k < n; ++k)
      if (changed[k] && (next[k] != 0 || !hw_valid<F>(old[k], level)))
        pt.store(slots + k, level, next[k]);
    if (gone)  // flushed above
      for (uint64_t k = 0; k < n; ++k)
        if (changed[k] && F::is_table(old[k], level))
          pt.free_tables(F::out_addr(old[k], level), level - 1);
  } else {
    for (uint64_t k = 0; k < n; ++k) {
      if (!changed[k]) continue;
      uint64_t expected = old[k];
      while (!pt.cmpxchg(slots + k, level, expected, next[k])) {
        now[k] = expected;
        uint64_t again[kMax];
        if (rederive(static_cast<const uint64_t*>(now), again)) next[k] = again[k];
      }
    }
    if (gone) {
      for (uint64_t k = 0; k < n; ++k)
        if (changed[k] && F::is_table(old[k], level))
          inv.retire(F::out_addr(old[k], level), level - 1, flush);
    } else if (was_valid && owed == Owed::by_replace) {
      inv.later(flush);
    }
  }
  if (now_valid) inv.made_valid();
  return bbm;
}

}  // namespace hugepte
