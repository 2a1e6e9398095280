// hugepte/walk.hpp - the one walker: a visitor walk, a resumable cursor, and single-address
// descents (find, find_or_alloc).
//
// The visitor walk follows KVM arm64's kvm_pgtable_walk(): each entry in [start, end) is visited
// once, leaves (invalid and none included) as LEAF, tables as TABLE_PRE before their children
// and TABLE_POST after them. The visitor gets a context with the slot and a snapshot of the old
// value; the walker re-reads the slot after the callback, so a visitor may replace what it visits
// (install a table under a former block and have it walked, turn a table into a block and have
// it skipped). Levels are template parameters: for a 4-level format the walk compiles to four
// nested loops, as hand-written per-format code would.
//
// Addresses: the walk accepts exactly the format's canonical addresses. A range that leaves them
// (beyond va_bits, or across the non-canonical hole of a format with an upper half) is ERANGE.
// Freestanding.
#pragma once

#include <atomic>
#include <concepts>
#include <type_traits>

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/table.hpp"

namespace hugepte {

// Checks [start, end) against the format's input address space. `end` is exclusive; 0 means the
// top of the 64-bit space (the last page of an upper-half format). Errors:
//   EINVAL  empty or reversed range
//   ERANGE  some address in the range is not canonical (outside the VA space)
template <Format F>
constexpr Err check_range(uint64_t start, uint64_t end) {
  if (end == start || (end != 0 && end < start)) return Err::einval;
  uint64_t last = end - 1;
  if (!F::canonical(start) || !F::canonical(last)) return Err::erange;
  // Both ends canonical, yet the range may still span the hole between the halves: the bits
  // above the translated ones differ between the two halves.
  if constexpr (F::va_bits < 64) {
    if ((start >> F::va_bits) != (last >> F::va_bits)) return Err::erange;
  }
  return Err::ok;
}

// --- visitor walk ----------------------------------------------------------------------------

enum class Visit : uint8_t { leaf = 1, table_pre = 2, table_post = 4 };

constexpr const char* visit_name(Visit v) {
  switch (v) {
    case Visit::leaf:
      return "leaf";
    case Visit::table_pre:
      return "table_pre";
    case Visit::table_post:
      return "table_post";
  }
  return "?";
}

// Which visits the callback wants. Reads as WalkFlags{.leaf = true, .table_post = true}.
struct WalkFlags {
  bool leaf = false;
  bool table_pre = false;
  bool table_post = false;
  bool ignore_eagain = false;  // EAGAIN from a visitor continues the walk instead of ending it
};

// What a visitor tells the walker. `return Err::enomem;` ends the walk with that error;
// `return Err::ok;` is next().
struct Step {
  enum class Kind : uint8_t {
    next,   // carry on (descending into the entry if it is now a table)
    skip,   // carry on, but do not descend into this table (TABLE_PRE / a leaf turned table)
    stop,   // end the walk successfully
    error,  // end the walk with `err`
  };
  Kind kind = Kind::next;
  Err err = Err::ok;

  constexpr Step() = default;
  constexpr Step(Err e)  // NOLINT(google-explicit-constructor): reads like `return Err::einval;`
      : kind(e == Err::ok ? Kind::next : Kind::error), err(e) {}
  static constexpr Step next() { return Step(); }
  static constexpr Step skip() { return with(Kind::skip); }
  static constexpr Step stop() { return with(Kind::stop); }

 private:
  static constexpr Step with(Kind k) {
    Step s;
    s.kind = k;
    return s;
  }
};

// What the visitor sees. The walker owns it; `old` is the value loaded before the callback (for
// TABLE_POST: after the children were walked).
struct VisitCtx {
  uint64_t* slot = nullptr;
  uint64_t old = 0;
  unsigned level = 0;
  unsigned shift = 0;  // log2 of what one entry at `level` maps
  uint64_t addr = 0;        // first address of this visit: the walk's start or the entry's base
  uint64_t end = 0;         // one past the last address of this visit (clipped to the walk's end)
  uint64_t start = 0;       // the walk's start

  constexpr uint64_t base() const { return align_down(addr, shift); }
  constexpr uint64_t size() const { return bit(shift); }
  // The walk covers the whole entry, not just part of it.
  constexpr bool whole() const { return addr == base() && end == base() + size(); }
};

// --- the table walk: the loop every walk is built on -------------------------------------------
//
// One loop over the entries of one table, for a stretch of addresses inside it. It stands at a
// Place (a table, the first address not handled yet, the last one to handle in this table) and
// asks the visitor to handle what starts there: one entry, a contiguous group, or a run of
// entries at once. The visitor returns the last address it handled, and descends by calling
// table<Level - 1>() on the child it chooses: a live table, an unlinked one it is building, or
// one that exists only in a plan (the range engine's read-only pass over a split it has not
// made yet). walk() below and the range engine (range/engine.hpp) are such visitors; so are
// the collapse scan and the subtree checks. Index arithmetic lives here and in format.hpp only.

// A table as a walk reads it: load(i, level) gives entry i; slots() the page itself, nullptr
// for a table that exists only in a plan.
template <class T>
concept TableView = requires(const T& t, uint64_t i, unsigned level) {
  { t.load(i, level) } -> std::same_as<uint64_t>;
  { t.slots() } -> std::same_as<uint64_t*>;
};

// A table page in memory, linked or not yet.
struct TablePage {
  uint64_t* t;
  uint64_t load(uint64_t i, unsigned) const {
    return std::atomic_ref<uint64_t>(t[i]).load(kEntryLoadOrder);
  }
  uint64_t* slots() const { return t; }
};

// Where a table walk stands in one table of entries of Level.
template <Format F, unsigned Level, TableView View>
struct Place {
  static constexpr unsigned kShift = F::shift(Level);
  const View& table;
  uint64_t addr;  // the first address not handled yet
  uint64_t last;  // the last address the walk covers in this table

  static constexpr uint64_t index(uint64_t a) { return index_of<F>(a, Level); }
  uint64_t load(uint64_t a) const { return table.load(index(a), Level); }
  uint64_t* slot(uint64_t a) const { return table.slots() + index(a); }
  // The entry holding addr: its last address, and that clipped to the walk.
  uint64_t entry_last() const { return align_down(addr, kShift) + (bit(kShift) - 1); }
  uint64_t clipped_last() const { return entry_last() < last ? entry_last() : last; }
  // Entries from a's to the walk's last one in this table.
  uint64_t entries_from(uint64_t a) const { return index(last) - index(a) + 1; }
};

// The visitor: template <unsigned Level, class W, class View>
//   Result<uint64_t> at(W& walk, const Place<F, Level, View>& here)
// handles what starts at here.addr and returns the last address it handled (at least the
// first entry's; ~0 ends this table), or an error, which ends the walk.
template <Format F, class V>
struct TableWalk {
  V& visitor;

  template <unsigned Level, TableView View>
  Err table(const View& view, uint64_t first, uint64_t last) {
    Place<F, Level, View> here{view, first, last};
    for (;;) {
      Result<uint64_t> r = visitor.template at<Level>(*this, here);
      if (!r) return r.err;
      if (r.value >= last) return Err::ok;
      here.addr = r.value + 1;
    }
  }
};

// Walks the table page t holding entries of Level, over [first, last] inside it.
template <Format F, unsigned Level, class V>
Err walk_table(uint64_t* t, uint64_t first, uint64_t last, V& visitor) {
  TableWalk<F, V> w{visitor};
  return w.template table<Level>(TablePage{t}, first, last);
}

namespace walk_detail {

// walk()'s visitor over the table walk: one entry per place, visits as the flags ask.
template <Format F, TableEnv Env, class V>
struct Visits {
  using Table = PageTable<F, Env>;
  static constexpr uint64_t kEnd = ~uint64_t{0};
  const Table& pt;
  V& visitor;
  WalkFlags flags;
  uint64_t start;
  bool stopped = false;

  // A visitor's answer: true to carry on, false when it stopped the walk, or its error.
  Result<bool> settle(Step s) {
    switch (s.kind) {
      case Step::Kind::next:
      case Step::Kind::skip:
        return true;
      case Step::Kind::stop:
        stopped = true;
        return false;
      case Step::Kind::error:
        if (s.err == Err::eagain && flags.ignore_eagain) return true;
        return s.err;
    }
    return Err::einval;
  }

  template <unsigned Level, class W, class View>
  Result<uint64_t> at(W& walk, const Place<F, Level, View>& here) {
    const uint64_t last = here.clipped_last();
    VisitCtx ctx{here.slot(here.addr), 0, Level, F::shift(Level), here.addr, last + 1, start};
    ctx.old = Table::load(ctx.slot);
    const bool is_table = Level > 0 && F::is_table(ctx.old, Level);
    Step s;
    if (is_table ? flags.table_pre : flags.leaf) {
      s = visitor(static_cast<const VisitCtx&>(ctx), is_table ? Visit::table_pre : Visit::leaf);
      Result<bool> go = settle(s);
      if (!go) return go.err;
      if (!go.value) return kEnd;
    }
    if constexpr (Level > 0) {
      uint64_t now = Table::load(ctx.slot);  // reload: the visitor may have replaced the entry
      if (F::is_table(now, Level) && s.kind != Step::Kind::skip) {
        if (Err e =
                walk.template table<Level - 1>(TablePage{pt.child(now, Level)}, here.addr, last);
            e != Err::ok)
          return e;
        if (stopped) return kEnd;
        if (flags.table_post) {
          ctx.old = Table::load(ctx.slot);
          Result<bool> go = settle(visitor(static_cast<const VisitCtx&>(ctx), Visit::table_post));
          if (!go) return go.err;
          if (!go.value) return kEnd;
        }
      }
    }
    return last;
  }
};

}  // namespace walk_detail

// Walks [start, end) of `pt`, calling visitor(const VisitCtx&, Visit) -> Step for the visits
// `flags` asks for. Returns ok (also when a visitor stopped the walk), the first error a visitor
// returned, EINVAL for an empty range or a table without a root, ERANGE for a range outside the
// VA space.
template <Format F, TableEnv Env, class V>
Err walk(const PageTable<F, Env>& pt, uint64_t start, uint64_t end, WalkFlags flags, V&& visitor) {
  if (Err e = check_range<F>(start, end); e != Err::ok) return e;
  if (!pt.has_root()) return Err::einval;
  walk_detail::Visits<F, Env, std::remove_reference_t<V>> v{pt, visitor, flags, start};
  return walk_table<F, F::levels - 1>(pt.root_table(), start, end - 1, v);
}

// The same under one table entry: walks the subtree under the table entry `raw` at Level (live
// or not yet linked) over [first, last], which lie inside what raw maps.
template <Format F, unsigned Level, TableEnv Env, class V>
Err walk_below(const PageTable<F, Env>& pt, uint64_t raw, uint64_t first, uint64_t last,
               WalkFlags flags, V&& visitor) {
  static_assert(Level > 0, "only a table entry has entries below it");
  walk_detail::Visits<F, Env, std::remove_reference_t<V>> v{pt, visitor, flags, first};
  return walk_table<F, Level - 1>(pt.child(raw, Level), first, last, v);
}

// --- single-address descents -----------------------------------------------------------------

// The entry a descent for one address ended at.
struct Found {
  uint64_t* slot = nullptr;
  uint64_t raw = 0;  // its value when it was read
  unsigned level = 0;
};

namespace walk_detail {

template <Format F, TableEnv Env, unsigned Level>
HUGEPTE_ALWAYS_INLINE Found find_from(const PageTable<F, Env>& pt, uint64_t* t, uint64_t va,
                                      unsigned stop_level) {
  uint64_t* slot = t + index_of<F>(va, Level);
  uint64_t raw = PageTable<F, Env>::load(slot);
  if constexpr (Level > 0) {
    if (Level > stop_level && F::is_table(raw, Level))
      return find_from<F, Env, Level - 1>(pt, pt.child(raw, Level), va, stop_level);
  }
  return Found{slot, raw, Level};
}

}  // namespace walk_detail

// Descends towards `va`, through tables only, no deeper than `stop_level`. The result is the slot
// at stop_level, or the first non-table entry above it (none, a leaf, a non-present entry).
// Errors: ERANGE for a non-canonical va, EINVAL without a root or for a bad stop_level.
template <Format F, TableEnv Env>
HUGEPTE_ALWAYS_INLINE Result<Found> find(const PageTable<F, Env>& pt, uint64_t va,
                                         unsigned stop_level = 0) {
  uint64_t* root = pt.root_table_or_null();
  if (!F::canonical(va)) return Err::erange;
  if (root == nullptr || stop_level >= F::levels) return Err::einval;
  return walk_detail::find_from<F, Env, F::levels - 1>(pt, root, va, stop_level);
}

// Where find_or_alloc's new tables come from and what they hold when they are linked:
//   alloc(level) -> Result<uint64_t>   a zeroed page for entries of `level` (ENOMEM)
//   free(pa, level)               give back one that was not linked
//   adopt(raw, level) -> bool     may a table replace the non-table entry `raw` at `level`?
//   init(uint64_t* t, level, parent)   fill the new table of entries of `level` that replaces the
//                                 entry `parent` (off-line: nothing can reach it yet)
// The default (TablesFromEnv) takes pages from the table's Env and replaces only none.
template <class S>
concept TableSource = requires(S& s, uint64_t pa, unsigned level, uint64_t raw, uint64_t* t) {
  { s.alloc(level) } -> std::same_as<Result<uint64_t>>;
  { s.free(pa, level) } -> std::same_as<void>;
  { s.adopt(raw, level) } -> std::same_as<bool>;
  { s.init(t, level, raw) } -> std::same_as<void>;
};

template <Format F, TableEnv Env>
struct TablesFromEnv {
  const PageTable<F, Env>* pt;
  Result<uint64_t> alloc(unsigned level) { return pt->alloc_table(level); }
  void free(uint64_t pa, unsigned level) { pt->free_table(pa, level); }
  bool adopt(uint64_t raw, unsigned level) { return F::decode(raw, level).kind == Kind::none; }
  void init(uint64_t*, unsigned, uint64_t) {}
};

// Like find(), but allocates the missing tables down to `level` and returns the slot at `level`
// for `va`. All or nothing: the missing chain of tables is built and linked off-line (each
// initialised by the source from the entry above it), then published with one
// compare-exchange; on ENOMEM nothing is left allocated or changed. Installing into a slot the
// hardware cannot have cached needs no invalidation.
// Errors: ENOMEM; EEXIST when an entry above `level` that covers va is neither a table nor one
// the source adopts (a leaf, a non-present entry); ERANGE, EINVAL as for find().
namespace walk_detail {
template <Format F, TableEnv Env, class Src>
Result<Found> alloc_chain(const PageTable<F, Env>& pt, uint64_t va, unsigned level, Src& src);
}  // namespace walk_detail

template <Format F, TableEnv Env, TableSource Src>
HUGEPTE_ALWAYS_INLINE Result<Found> find_or_alloc(const PageTable<F, Env>& pt, uint64_t va,
                                                  unsigned level, Src& src) {
  Result<Found> r = find(pt, va, level);
  if (!r || r.value.level == level) return r;  // the tables are there: the common case
  return walk_detail::alloc_chain(pt, va, level, src);
}

template <Format F, TableEnv Env>
HUGEPTE_ALWAYS_INLINE Result<Found> find_or_alloc(const PageTable<F, Env>& pt, uint64_t va,
                                                  unsigned level) {
  TablesFromEnv<F, Env> src{&pt};
  return find_or_alloc(pt, va, level, src);
}

namespace walk_detail {
template <Format F, TableEnv Env, class Src>
Result<Found> alloc_chain(const PageTable<F, Env>& pt, uint64_t va, unsigned level, Src& src) {
  for (;;) {
    Result<Found> r = find(pt, va, level);
    if (!r) return r;
    Found f = r.value;
    if (f.level == level) return f;
    if (!src.adopt(f.raw, f.level)) return Err::eexist;

    // Tables for levels f.level-1 .. level; chain[l] holds entries of level l.
    uint64_t chain[F::levels] = {};
    for (unsigned l = f.level; l-- > level;) {
      Result<uint64_t> t = src.alloc(l);
      if (!t) {
        for (unsigned k = l + 1; k < f.level; ++k) src.free(chain[k], k);
        return t.err;
      }
      chain[l] = t.value;
    }
    // Top down: each new table starts as the entry it replaces says (the one found, then the
    // entry the table above now holds for va), then the link to the next one goes in.
    uint64_t parent = f.raw;
    for (unsigned l = f.level; l-- > level;) {
      uint64_t* t = pt.table(chain[l]);
      src.init(t, l, parent);
      if (l > level) {
        uint64_t* slot = t + index_of<F>(va, l);
        parent = PageTable<F, Env>::load(slot);
        pt.store(slot, l, F::make_table(chain[l - 1], l));
      }
    }

    uint64_t expected = f.raw;
    if (pt.cmpxchg(f.slot, f.level, expected, F::make_table(chain[f.level - 1], f.level)))
      return Found{pt.table(chain[level]) + index_of<F>(va, level),
                   PageTable<F, Env>::load(pt.table(chain[level]) + index_of<F>(va, level)), level};
    // Someone else changed the slot meanwhile: give our chain back and look again.
    for (unsigned l = level; l < f.level; ++l) src.free(chain[l], l);
  }
}
}  // namespace walk_detail

// --- translation of one address ----------------------------------------------------------------

// Where one address goes: the leaf the hardware walker would use and the physical address.
struct Lookup {
  uint64_t pa = 0;
  uint64_t raw = 0;         // the leaf entry
  unsigned level = 0;  // its level
  unsigned shift = 0;  // log2 of the aligned block the leaf's output address is the base of
};

namespace walk_detail {

template <Format F, TableEnv Env, unsigned Level>
Result<Lookup> lookup_from(const PageTable<F, Env>& pt, uint64_t* t, uint64_t va) {
  uint64_t raw = PageTable<F, Env>::load(t + index_of<F>(va, Level));
  if constexpr (Level > 0) {
    if (F::is_table(raw, Level))
      return lookup_from<F, Env, Level - 1>(pt, pt.child(raw, Level), va);
  }
  if (!F::is_leaf(raw, Level)) return Err::enoent;
  unsigned s = F::leaf_shift(raw, Level);
  return Lookup{F::out_addr(raw, Level) | (va & (bit(s) - 1)), raw, Level, s};
}

}  // namespace walk_detail

// The hot path of translation: the hardware's view of va, every level unrolled, no decode.
// Errors: ERANGE non-canonical va, EINVAL no root, ENOENT no valid leaf maps va.
template <Format F, TableEnv Env>
HUGEPTE_ALWAYS_INLINE Result<Lookup> lookup(const PageTable<F, Env>& pt, uint64_t va) {
  // The root is read before the checks, so a caller's loop keeps it in a register; without a
  // root the walk meets an empty table and the failure path says EINVAL instead of ENOENT.
  uint64_t* root = pt.root_table_or_empty();
  if (!F::canonical(va)) return Err::erange;
  Result<Lookup> r = walk_detail::lookup_from<F, Env, F::levels - 1>(pt, root, va);
  if (!r && !pt.has_root()) [[unlikely]]
    return Err::einval;
  return r;
}

// --- resumable cursor ------------------------------------------------------------------------

// Visits the same entries as a LEAF-only walk, one next() at a time: the deepest entry for each
// address of [start, end), in ascending order. It keeps the table of every level it passed
// through, so a sequential next() moves sideways in the current table or climbs only as far as
// the table boundary it crossed, never back to the root. Like the visitor walk it re-reads its
// slot on next(): if the caller installed a table there, next() walks into it.
// The cursor holds pointers into table pages: if tables above the current position may have
// been freed, call restart() before next().
template <Format F, TableEnv Env>
class Cursor {
  using Table = PageTable<F, Env>;

 public:
  Cursor(const Table& pt, uint64_t start, uint64_t end) : pt_(&pt), addr_(start), last_(end - 1) {
    err_ = check_range<F>(start, end);
    if (err_ == Err::ok && !pt.has_root()) err_ = Err::einval;
    if (err_ != Err::ok) {
      done_ = true;
      return;
    }
    restart();
  }

  Err err() const { return err_; }  // EINVAL or ERANGE from construction; then done()
  bool done() const { return done_; }

  uint64_t* slot() const { return slot_; }
  uint64_t old() const { return old_; }  // the value read when the cursor arrived
  uint64_t load() const { return Table::load(slot_); }
  unsigned level() const { return level_; }
  unsigned shift() const { return F::shift(level_); }
  uint64_t addr() const { return addr_; }  // first address of this position inside the range
  uint64_t base() const { return align_down(addr_, shift()); }
  uint64_t end() const {  // one past the last address of this position inside the range
    uint64_t entry_last = base() + (bit(shift()) - 1);
    return (entry_last < last_ ? entry_last : last_) + 1;
  }

  // Moves to the next position (or into a table that now occupies the current slot).
  void next() {
    if (done_) return;
    if (level_ > 0 && F::is_table(Table::load(slot_), level_)) {
      descend();
      return;
    }
    uint64_t entry_last = base() + (bit(shift()) - 1);
    if (entry_last >= last_) {
      done_ = true;
      return;
    }
    addr_ = entry_last + 1;
    // Leaving the last slot of a table: continue with the next slot one level up.
    while (level_ + 1 < F::levels && index_of<F>(addr_, level_) == 0) ++level_;
    descend();
  }

  // Moves forward to `addr` (inside the range, at or after addr()); done() if it lies past the
  // range's end. Climbs only as far as the tables that do not hold addr, then descends.
  void seek(uint64_t addr) {
    if (done_) return;
    if (addr == 0 || addr > last_) {  // 0: past the top of the address space
      done_ = true;
      return;
    }
    if (addr <= addr_) return;
    while (level_ + 1 < F::levels &&
           align_down(addr, F::shift(level_) + F::index_bits(level_)) !=
               align_down(addr_, F::shift(level_) + F::index_bits(level_)))
      ++level_;
    addr_ = addr;
    descend();
  }

  // Reads the current slot again and walks into it if it now holds a table (a caller that
  // split the leaf it stood on): the cursor stands on the deepest entry for addr() again.
  void refresh() {
    if (!done_) descend();
  }

  // Re-walks from the root to addr().
  void restart() {
    if (err_ != Err::ok) return;
    done_ = false;
    level_ = F::levels - 1;
    table_[level_] = pt_->root_table();
    descend();
  }

 private:
  void descend() {
    slot_ = table_[level_] + index_of<F>(addr_, level_);
    old_ = Table::load(slot_);
    while (level_ > 0 && F::is_table(old_, level_)) {
      table_[level_ - 1] = pt_->child(old_, level_);
      --level_;
      slot_ = table_[level_] + index_of<F>(addr_, level_);
      old_ = Table::load(slot_);
    }
  }

  const Table* pt_;
  uint64_t* table_[F::levels] = {};
  uint64_t* slot_ = nullptr;
  uint64_t old_ = 0;
  unsigned level_ = 0;
  uint64_t addr_;
  uint64_t last_;
  bool done_ = false;
  Err err_ = Err::ok;
};

}  // namespace hugepte
