// hugepte/range/engine.hpp - the pass every range operation of range.hpp runs: plan, reserve,
// commit, over the units of the range.
//
// Every operation is all or nothing, in Hafnium's prepare/commit style (run()):
//   1. plan: a read-only pass over the range decides, entry by entry, what the commit will do,
//      validates every value it will write (by encoding it) and counts the table pages it
//      needs per level. Every error (EINVAL, ERANGE, EEXIST, EBUSY) comes from here, before
//      any write.
//   2. reserve: those pages are taken from the Env; if one is missing, the ones taken go back
//      and the operation returns ENOMEM with the tables bit-identical to before.
//   3. commit: the same pass again, now writing. It cannot fail: its decisions are the plan's
//      and its pages are reserved. New subtrees (a split block, a table for a new mapping) are
//      built off-line and published with one store; a live entry is replaced as the format's
//      break-before-make rule says (invalid -> invalidate -> new value), and every live change
//      is followed by the invalidation it needs: a leaf flush of the entries' own size and level
//      for leaves, a non-leaf flush (walk caches too) when a table is unlinked, before the
//      table is freed.
//   4. unused reserved pages go back (there are none unless plan and commit disagree).
//
// The pass is a visitor of the table walk (walk.hpp) over "units": one entry, or a whole contiguous
// group of entries (arm64 CONT, riscv NAPOT) where one lives or where the operation wants one. For
// each unit the operation (a small policy struct, one per file: range/map.hpp, unmap.hpp,
// protect.hpp, split.hpp, collapse.hpp) answers keep, rewrite (these values) or split (needs
// finer entries: descend into a table, splitting a block or breaking a group first).
// A group is never half changed: a partially touched group is broken into plain leaves (A/D
// gathered over the group, as Linux's contpte unfold does) in the same publication.
//
// Values change as decode -> edit Entry -> encode; no raw bit is touched here and no
// architecture is named. Levels are template parameters, as in walk.hpp.
//
// Concurrency (range.hpp states the contract): the caller's lock keeps other writers out, but
// the hardware may set A/D bits while the pass runs. A `rewrite` derived from the old values
// (`refill`) is derived again from what the hardware left when replace() (commit.hpp) finds an
// entry changed; the children of a split block and the leaves of a broken group carry A/D as
// the pass read them. Freestanding: no heap, no exceptions.
#pragma once

#include "hugepte/commit.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte {

// The plan/reserve/commit engine behind RangeOps (range.hpp, which derives from it): the
// vocabulary the operations share, the pass, and the operations' policies, nested here so
// that the pass and the policies reach each other's members.
template <Format F, TableEnv Env, TlbSink Tlb>
class RangeEngine {
 public:
  using Table = PageTable<F, Env>;
  static constexpr unsigned kRoot = F::levels - 1;

  RangeEngine(Table& pt, Tlb& tlb) : pt_(&pt), tlb_(&tlb) {}

 protected:
  // --- the operations ---------------------------------------------------------------------------
  //
  // One policy struct each, defined in its own file. For a unit at Level, of which
  // [in_first, in_last] lies inside the range, the pass asks:
  //   decide<Level>(base, in_first, in_last, old)
  //       one entry: keep, rewrite, split, or an error;
  //   decide_group<Level>(unit_base, unit_shift, in_first, in_last, old[], group_old)
  //       the entries of a group unit (group_old: they form a present group now);
  //   fill<Level>(unit_base, unit_shift, old[], out[])
  //       the values of a `rewrite` (asked again, in the commit, from what the hardware left);
  //   wants_group(level, addr)
  //       whether the operation wants a group unit starting at addr;
  //   kFreesEmpty
  //       whether a live table the operation left with nothing but none is unlinked and freed.
  // Optionally, for an operation that splits a block without mapping the rest of it:
  //   refills()
  //       false: a block split on the way down becomes an empty table with only what the
  //       operation writes (KVM arm64's stage-2 map: "mapped lazily" by later faults).
  // Optionally, for an operation whose commit need not decide again what its plan decided:
  //   begin_commit()
  //       called between the plan and the commit (collapse: the region was scanned once);
  //   rederive<Level>(unit_base, unit_shift, now[], out[]) and kAlwaysBreaks
  //       the values of a `rewrite` derived again from what a live unit held when replace()
  //       took it (instead of fill), and whether every live unit is broken before made so
  //       that they are final (collapse gathers A/D under the tables it unlinks).
  // Optionally, for runs of entries the pass need not take one unit at a time:
  //   live_run<Level, Commit>(here, ctx)                        (protect)
  //       whole plain leaves of a live table, decided and rewritten by the operation itself;
  //   plain_run<Level>(a, lim) and fill_run<Level, Commit>(here, n)   (map)
  //       plain leaves into a fresh table, decided at once and written in one loop.
  struct MapOp;       // range/map.hpp
  struct UnmapOp;     // range/unmap.hpp
  struct ProtectOp;   // range/protect.hpp, with its per-level Memo
  struct SplitOp;     // range/split.hpp
  struct CollapseOp;  // range/collapse.hpp, with its Seen cache
  template <bool FreeTables>
  struct ZapOp;  // range/zap.hpp

  // The range covers the unit of 1 << unit_shift at unit_base entirely.
  static constexpr bool whole(uint64_t unit_base, unsigned unit_shift, uint64_t in_first,
                              uint64_t in_last) {
    return in_first == unit_base && in_last == unit_base + (bit(unit_shift) - 1);
  }

  // --- shared vocabulary ---------------------------------------------------------------------

  static constexpr bool present(const Entry& e) {
    return e.kind == Kind::leaf || e.kind == Kind::protnone;
  }
  static constexpr bool is_table(uint64_t raw, unsigned level) {
    return level > 0 && F::is_table(raw, level);
  }

  // One leaf size of the format.
  struct Size {
    bool ok = false;
    unsigned shift = 0;
    unsigned level = 0;
    bool cont = false;
  };
  static constexpr LeafSizes<F> kSizes = leaf_sizes<F>();

  static constexpr Size size_of(unsigned shift) {
    for (unsigned i = 0; i < kSizes.count; ++i)
      if (kSizes.shift[i] == shift) return Size{true, shift, kSizes.level[i], kSizes.cont[i]};
    return Size{};
  }

  // The base form (sub-entry 0) of a group whose logical entry is g. Formats differ in what a
  // sub-entry holds, so the base form is encoded and group_entry places the others.
  static Result<uint64_t> group_base(Entry g, unsigned level, unsigned cont) {
    g.cont_shift = static_cast<uint8_t>(cont);
    g.shift = static_cast<uint8_t>(F::shift(level));
    g.addr = align_down(g.addr, cont);
    return F::encode(g, level);
  }

  // Sub-entry k of a group whose logical entry (addr = the group's base) is g.
  static Result<uint64_t> group_sub(Entry g, unsigned level, unsigned cont, uint64_t k) {
    Result<uint64_t> raw0 = group_base(g, level, cont);
    if (!raw0) return raw0;
    return F::group_entry(raw0.value, level, static_cast<unsigned>(k));
  }

  // The raw entries of one unit at Level whose first entry (the base form for a group of
  // 1 << unit_shift) is raw0.
  template <unsigned Level>
  static void spread_unit(uint64_t raw0, unsigned unit_shift, uint64_t* out) {
    out[0] = raw0;
    for (uint64_t k = 1; k < bit(unit_shift - F::shift(Level)); ++k)
      out[k] = F::group_entry(raw0, Level, static_cast<unsigned>(k));
  }

  // The raw entries of one unit at Level for the leaf `e`: one entry, or every sub-entry of a
  // group of 1 << unit_shift. EINVAL if the format cannot encode it.
  template <unsigned Level>
  static Err encode_unit(const Entry& e, unsigned unit_shift, uint64_t* out) {
    Result<uint64_t> r =
        unit_shift == F::shift(Level) ? F::encode(e, Level) : group_base(e, Level, unit_shift);
    if (!r) return Err::einval;
    spread_unit<Level>(r.value, unit_shift, out);
    return Err::ok;
  }

  // The children of the plain leaf `parent` split into plain entries of `level`: the first is
  // encoded, which decides for all of them (they differ only in an output address aligned to
  // their size and inside the parent's, F::with_pa's contract), the others are derived.
  struct Children {
    uint64_t raw0 = 0;
    uint64_t addr0 = 0;
    uint64_t at(uint64_t i, unsigned level) const {
      return i == 0 ? raw0 : F::with_pa(raw0, level, addr0 + (i << F::shift(level)));
    }
  };
  static Result<Children> children(Entry parent, unsigned level) {
    parent.shift = static_cast<uint8_t>(F::shift(level));
    parent.cont_shift = 0;
    Result<uint64_t> r = F::encode(parent, level);
    if (!r) return r.err;
    return Children{r.value, parent.addr};
  }

  // Nothing but none (and tables holding nothing) under the table entry raw at Level, which
  // maps the entry at base.
  template <unsigned Level>
  bool subtree_none(uint64_t raw, uint64_t base) const {
    if constexpr (Level == 0) {
      return false;  // a page entry is never a table
    } else {
      bool none = true;
      walk_below<F, Level>(*pt_, raw, base, base + (bit(F::shift(Level)) - 1),
                           WalkFlags{.leaf = true}, [&none](const VisitCtx& v, Visit) {
                             if (v.old == 0 || F::decode(v.old, v.level).kind == Kind::none)
                               return Step::next();
                             none = false;
                             return Step::stop();
                           });
      return none;
    }
  }

  // --- the operation context: plan counts, reserved pages, invalidations owed -----------------

  struct Ctx {
    explicit Ctx(const RangeEngine& r) : pool(r.pt_->env()), inv(*r.pt_, *r.tlb_) {}
    uint64_t need[F::levels] = {};  // table pages the plan needs, by the level of their entries
    TablePool<F, Env> pool;    // ... reserved before the commit; unused ones go back at the end
    Invalidations<F, Env, Tlb> inv;
  };

  // --- the pass --------------------------------------------------------------------------------

  enum class Act : uint8_t { keep, rewrite, split, fail };
  struct Decision {
    Act act = Act::keep;
    Err err = Err::ok;
    constexpr Decision(Act a) : act(a) {}                  // NOLINT(google-explicit-constructor)
    constexpr Decision(Err e) : act(Act::fail), err(e) {}  // NOLINT(google-explicit-constructor)
  };

  template <class Op>
  Err run(Op& op, uint64_t start, uint64_t last) {
    Ctx c(*this);
    const Src root{pt_->root_table(), {}, false, false, true};
    Pass<Op, false> plan{this, op, c};
    if (Err e = TableWalk<F, Pass<Op, false>>{plan}.template table<kRoot>(root, start, last);
        e != Err::ok)
      return e;
    if (Err e = c.pool.reserve(c.need); e != Err::ok) return e;
    if constexpr (requires { op.begin_commit(); }) op.begin_commit();
    Pass<Op, true> commit{this, op, c};
    TableWalk<F, Pass<Op, true>>{commit}.template table<kRoot>(root, start, last);  // cannot fail
    c.inv.finish();
    return Err::ok;
  }

  // Where the entries of one table come from during a pass (a TableView, walk.hpp): a real
  // table (live, or built off-line during the commit), or - during the plan only - a table
  // that does not exist yet: empty, or the children of the plain leaf being split. `fresh`: a
  // new table that held nothing but none when the pass entered it (nothing else can see it,
  // and the pass has only written entries it has already passed). `live`: linked, so the
  // hardware may hold what it maps.
  struct Src {
    uint64_t* t = nullptr;
    Children kids{};
    bool from_leaf = false;
    bool fresh = false;
    bool live = false;

    uint64_t load(uint64_t i, unsigned level) const {
      if (t != nullptr) return Table::load(t + i);
      if (!from_leaf) return 0;
      return kids.at(i, level);  // validated before the plan descended
    }
    uint64_t* slots() const { return t; }
  };
  template <unsigned Level>
  using Here = Place<F, Level, Src>;

 private:
  // The pass, as a visitor of the table walk (walk.hpp): at each place of a table it takes a
  // run or one unit, and descends through the walk when a unit splits.
  template <class Op, bool Commit>
  struct Pass {
    RangeEngine* self;
    Op& op;
    Ctx& c;

    template <unsigned Level, class W>
    Result<uint64_t> at(W& walk, const Here<Level>& here) {
      constexpr unsigned kShift = F::shift(Level);
      constexpr unsigned kCont = F::cont_shift(Level);
      const uint64_t cur = here.addr, last = here.last;
      // A run of whole, plain, valid leaves in a live table that the operation rewrites one by
      // one from a rule it has already worked out (protect): no unit machinery per entry.
      if constexpr (requires { op.template live_run<Level, Commit>(here, c); }) {
        if (here.table.live && here.table.t != nullptr) {
          Result<uint64_t> n = op.template live_run<Level, Commit>(here, c);
          if (!n) return n.err;
          if (n.value != 0) return cur + ((n.value << kShift) - 1);
        }
      }
      // A run of plain leaves into a fresh table (mapping into empty space): every old entry is
      // none, so the operation decides the whole run at once and the values are written in one
      // loop, without a decision per entry.
      if constexpr (requires { op.template plain_run<Level>(cur, last); }) {
        if (here.table.fresh) {
          const uint64_t n = op.template plain_run<Level>(cur, last);
          if (n != 0) {
            if (Err e = op.template fill_run<Level, Commit>(here, n); e != Err::ok) return e;
            return cur + ((n << kShift) - 1);
          }
        }
      }
      unsigned unit_shift = kShift;
      if constexpr (kCont != 0) {
        Entry d = F::decode(here.load(cur), Level);
        if ((present(d) && d.cont_shift == kCont) || op.wants_group(Level, cur)) unit_shift = kCont;
      }
      const uint64_t unit_base = align_down(cur, unit_shift);
      const uint64_t unit_last = unit_base + (bit(unit_shift) - 1);
      const uint64_t in_last = unit_last < last ? unit_last : last;
      if (Err e = self->template visit_unit<Level, Commit>(walk, op, here, unit_base, unit_shift,
                                                           cur, in_last, c);
          e != Err::ok)
        return e;
      return unit_last;
    }
  };

  // One unit: a single entry, or the n entries of a (present or wanted) group.
  template <unsigned Level, bool Commit, class W, class Op>
  Err visit_unit(W& walk, Op& op, const Here<Level>& here, uint64_t unit_base, unsigned unit_shift,
                 uint64_t in_first, uint64_t in_last, Ctx& c) {
    constexpr unsigned kShift = F::shift(Level);
    constexpr unsigned kCont = F::cont_shift(Level);
    constexpr uint64_t kMaxN = kCont != 0 ? bit(kCont - kShift) : 1;
    const uint64_t n = bit(unit_shift - kShift);
    const uint64_t i0 = here.index(unit_base);
    const bool live = here.table.live;
    uint64_t old[kMaxN];
    uint64_t next[kMaxN];
    for (uint64_t k = 0; k < n; ++k) next[k] = old[k] = here.table.load(i0 + k, Level);

    bool refill = false;
    if (n == 1) {
      Result<uint64_t> r = visit_entry<Level, Commit>(walk, op, live, unit_base, in_first, in_last,
                                                 old[0], c, refill);
      if (!r) return r.err;
      next[0] = r.value;
    } else {
      Entry g = F::decode(old[0], Level);
      const bool group_old = present(g) && g.cont_shift == kCont;
      if (group_old) {
        // Every sub-entry must belong to the group (same kind, group bit set); gather A/D.
        for (uint64_t k = 1; k < n; ++k) {
          Entry s = F::decode(old[k], Level);
          if (s.kind != g.kind || s.cont_shift != kCont) return Err::ebusy;
          g.accessed = g.accessed || s.accessed;
          g.dirty = g.dirty || s.dirty;
        }
        g.addr = align_down(g.addr, kCont);
      }
      for (uint64_t k = 0; k < n; ++k)
        if (is_locked<F>(old[k])) return Err::eagain;
      Decision d =
          op.template decide_group<Level>(unit_base, unit_shift, in_first, in_last, old, group_old);
      switch (d.act) {
        case Act::fail:
          return d.err;
        case Act::keep:
          return Err::ok;
        case Act::rewrite:
          if (Err e = op.template fill<Level>(unit_base, unit_shift, old, next); e != Err::ok)
            return e;
          refill = true;
          break;
        case Act::split:
          for (uint64_t k = 0; k < n; ++k) {
            uint64_t v = old[k];
            if (group_old) {
              // Broken into plain leaves, each with the group's gathered A/D.
              Entry p = g;
              p.cont_shift = 0;
              p.shift = static_cast<uint8_t>(kShift);
              p.addr = g.addr + (k << kShift);
              Result<uint64_t> r = F::encode(p, Level);
              if (!r) return Err::einval;
              v = r.value;
            }
            uint64_t sub_first = unit_base + (k << kShift),
                     sub_last = sub_first + (bit(kShift) - 1);
            if (sub_first < in_first) sub_first = in_first;
            if (sub_last > in_last) sub_last = in_last;
            next[k] = v;
            // Outside the range: stays (a plain leaf if broken).
            if (sub_first > sub_last) continue;
            bool sub_rewritten = false;  // a broken group's values are not edits of the old ones
            Result<uint64_t> r =
                visit_entry<Level, Commit>(walk, op, live, unit_base + (k << kShift), sub_first,
                                           sub_last, v, c, sub_rewritten);
            if (!r) return r.err;
            next[k] = r.value;
          }
          break;
      }
    }
    if constexpr (Commit)
      write_unit<Level>(op, refill, unit_base, unit_shift, here.slot(unit_base), old, next, live,
                        c);
    return Err::ok;
  }

  // One entry at `Level` covering [base, base + size), of which [in_first, in_last] is in the
  // range. Returns the value the slot must hold afterwards.
  template <unsigned Level, bool Commit, class W, class Op>
  Result<uint64_t> visit_entry(W& walk, Op& op, bool live, uint64_t base, uint64_t in_first,
                               uint64_t in_last, uint64_t old, Ctx& c, bool& rewritten) {
    if (is_locked<F>(old)) return Err::eagain;  // another walker's break-before-make
    Decision d = op.template decide<Level>(base, in_first, in_last, old);
    rewritten = d.act == Act::rewrite;
    switch (d.act) {
      case Act::fail:
        return d.err;
      case Act::keep:
        return old;
      case Act::rewrite: {
        uint64_t v = old;
        if (Err e = op.template fill<Level>(base, F::shift(Level), &old, &v); e != Err::ok)
          return e;
        return v;
      }
      case Act::split:
        break;
    }
    if constexpr (Level == 0) {
      return Err::einval;  // nothing is finer than a page
    } else {
      if (is_table(old, Level)) {
        uint64_t* child = pt_->child(old, Level);
        const Src s{child, {}, false, false, live};
        if (Err e = walk.template table<Level - 1>(s, in_first, in_last); e != Err::ok) return e;
        if constexpr (Commit) {
          if (Op::kFreesEmpty && live && table_none<Level - 1>(child)) return uint64_t{0};
        }
        return old;
      }
      Entry e = F::decode(old, Level);
      bool from_leaf = present(e);
      if (!from_leaf && e.kind != Kind::none) return Err::ebusy;  // swap, migration, marker...
      if constexpr (requires { op.refills(); }) {
        if (!op.refills()) from_leaf = false;  // the new table starts empty
      }
      if (from_leaf && (e.cont_shift != 0 || !F::leaf_ok(Level - 1))) return Err::einval;
      Children kids{};
      if (from_leaf) {
        Result<Children> k = children(e, Level - 1);
        if (!k) return Err::einval;  // only in the plan: the commit meets what the plan checked
        kids = k.value;
      }
      if constexpr (!Commit) {
        ++c.need[Level - 1];
        const Src s{nullptr, kids, from_leaf, !from_leaf, false};
        if (Err r = walk.template table<Level - 1>(s, in_first, in_last); r != Err::ok) return r;
        return F::make_table(0, Level);  // a placeholder: the plan writes nothing
      } else {
        // Built off-line: nothing walks this table before the store that links it.
        uint64_t pa = c.pool.take(Level - 1);
        uint64_t* t = pt_->table(pa);
        if (from_leaf)
          pt_->fill_offline(t, Level - 1, bit(F::index_bits(Level - 1)),
                            [&kids](uint64_t i) { return kids.at(i, Level - 1); });
        const Src s{t, {}, false, !from_leaf, false};
        walk.template table<Level - 1>(s, in_first, in_last);
        return F::make_table(pa, Level);
      }
    }
  }

  // Publishes a unit's new values: off-line tables are simply written; a live unit goes through
  // replace() (commit.hpp), which breaks before making where the format asks for it, owes the
  // invalidation the old values need and frees the tables it unlinks after it. For the values of
  // a `rewrite` derived from the old ones (`refill`), what the hardware changed since the pass read
  // them (A/D) is derived again, not lost.
  template <unsigned Level, class Op>
  void write_unit(Op& op, bool refill, uint64_t unit_base, unsigned unit_shift, uint64_t* slots,
                  const uint64_t* old, uint64_t* next, bool live, Ctx& c) {
    constexpr unsigned kShift = F::shift(Level);
    const uint64_t n = bit(unit_shift - kShift);
    if (!live) {
      for (uint64_t k = 0; k < n; ++k)
        if (next[k] != old[k]) pt_->store(slots + k, Level, next[k]);
      return;
    }
    bool table_gone = false;
    for (uint64_t k = 0; k < n; ++k)
      table_gone = table_gone || (next[k] != old[k] && is_table(old[k], Level));
    const uint64_t end = unit_base + (n << kShift);  // 0 at the top of the 64-bit space
    // A table going away may have cached walks and leaves of any size under it.
    const TlbFlush f =
        table_gone ? TlbFlush{unit_base, end, static_cast<uint8_t>(F::page_shift), kAnyLevel, false}
                   : TlbFlush{unit_base, end, static_cast<uint8_t>(kShift),
                              static_cast<uint8_t>(Level), true};
    auto rederive = [&](const uint64_t* now, uint64_t* out) {
      if (!refill) return false;
      if constexpr (requires { op.template rederive<Level>(unit_base, unit_shift, now, out); })
        return op.template rederive<Level>(unit_base, unit_shift, now, out) == Err::ok;
      else
        return op.template fill<Level>(unit_base, unit_shift, now, out) == Err::ok;
    };
    constexpr bool kAlwaysBreaks = requires { requires Op::kAlwaysBreaks; };
    replace(*pt_, c.inv, slots, Level, n, old, next, f, Owed::by_replace, rederive,
            kAlwaysBreaks && refill);
  }

  // Every entry of the table is none.
  template <unsigned Level>
  static bool table_none(uint64_t* t) {
    for (uint64_t i = 0; i < bit(F::index_bits(Level)); ++i)
      if (uint64_t raw = Table::load(t + i); raw != 0 && F::decode(raw, Level).kind != Kind::none)
        return false;
    return true;
  }

 protected:
  Table* pt_;
  Tlb* tlb_;
};

}  // namespace hugepte
