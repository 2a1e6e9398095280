// hugepte/range.hpp - map / unmap / protect / split / collapse over [va, va + len), and translate.
//
// Every operation here is all or nothing, in Hafnium's prepare/commit style:
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
// The pass is one recursive visitor over "units": one entry, or a whole contiguous group of
// entries (arm64 CONT, riscv NAPOT) where one lives or where the operation wants one. For each
// unit the operation (a small policy type below) answers keep, rewrite (these values) or split
// (needs finer entries: descend into a table, splitting a block or breaking a group first).
// A group is never half changed: a partially touched group is broken into plain leaves (A/D
// gathered over the group, as Linux's contpte unfold does) in the same publication.
//
// Values change as decode -> edit Entry -> encode; no raw bit is touched here and no
// architecture is named. Levels are template parameters, as in walk.hpp.
//
// Concurrency: one writer at a time (the caller's lock). The hardware may set A/D bits while
// an operation runs; an entry rewritten from its own old value (protect) is edited again from
// what the hardware left (compare-exchange, or the value taken at the break). Splitting or
// breaking a live block on a format without break-before-make copies A/D as read during the
// pass: an A/D update the hardware makes between that read and the publication is lost.
// Freestanding: no heap, no exceptions.
#pragma once

#include "hugepte/commit.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte {

// What map() writes into each leaf, besides the output address and the size.
struct Attrs {
  Prot prot{};            // hardware permissions
  bool writable = false;  // Linux's logical write permission (see Entry::writable)
  MemType mem = MemType::normal;
  bool global = false;
  bool accessed = false;
  bool dirty = false;
  Soft soft{};
  constexpr bool operator==(const Attrs&) const = default;
};

enum class MapMode : u8 {
  replace,     // whatever is in the range is replaced (blocks partly covered are split)
  no_replace,  // EEXIST if anything but none is in the range
};

// What translate() found for one address.
struct Translated {
  u64 va = 0;          // first address of the logical leaf
  u64 pa = 0;          // the output address of the queried address itself
  unsigned shift = 0;  // log2 of the logical leaf (the group's size for a contiguous group)
  Entry entry{};       // the leaf: addr is the logical leaf's base; for a group, accessed and
                       // dirty are gathered over every sub-entry
};

template <Format F, TableEnv Env, TlbSink Tlb>
class RangeOps {
 public:
  using Table = PageTable<F, Env>;
  static constexpr unsigned kRoot = F::levels - 1;

  RangeOps(Table& pt, Tlb& tlb) : pt_(&pt), tlb_(&tlb) {}

  // Maps [va, va + len) to [pa, pa + len). Each piece gets the largest leaf of the format
  // (contiguous groups included) whose size is at most 1 << max_shift and at least
  // 1 << min_shift, that fits in what is left of the range and to which both the piece's va
  // and pa are aligned.
  // With MapMode::replace whatever was there goes: tables are freed, a block partly covered is
  // split and keeps the rest mapped as before, a group partly covered is broken into plain
  // leaves. With MapMode::no_replace anything but none in the range is EEXIST.
  // Errors (the tables are unchanged on every one of them):
  //   EINVAL  len == 0; va, pa or len not page aligned; pa + len beyond F::pa_bits;
  //           max_shift < page_shift; no leaf size in [min_shift, max_shift] fits some piece;
  //           attrs the format cannot encode at a level the map uses; no root table
  //   ERANGE  the range is not canonical / leaves the VA space
  //   EEXIST  MapMode::no_replace and something is mapped (or non-present) in the range
  //   EBUSY   a non-present entry (swap, migration, marker, invalid) of a bigger size would
  //           have to be split
  //   ENOMEM  the table pages it needs could not all be allocated
  Err map(u64 va, u64 pa, u64 len, const Attrs& attrs, unsigned max_shift = 64,
          MapMode mode = MapMode::replace, unsigned min_shift = 0) {
    if (Err e = check_input(va, len); e != Err::ok) return e;
    if (!aligned(pa, F::page_shift) || max_shift < F::page_shift || min_shift > max_shift)
      return Err::einval;
    if (F::pa_bits < 64 && (pa >= bit(F::pa_bits) || len > bit(F::pa_bits) - pa))
      return Err::einval;
    MapOp op{this, va, pa, va + (len - 1), attrs, max_shift, min_shift, mode};
    return run(op, va, va + (len - 1));
  }

  // Removes every mapping in [va, va + len): entries become none; a leaf partly covered is
  // split (the rest stays mapped); a group partly covered is broken into plain leaves; tables
  // left empty are freed. Non-present entries wholly inside the range are cleared too.
  // Errors: EINVAL (len == 0, va or len not page aligned, no root), ERANGE, ENOMEM (a split),
  // EBUSY (a non-present entry partly covered).
  Err unmap(u64 va, u64 len) {
    if (Err e = check_input(va, len); e != Err::ok) return e;
    UnmapOp op{this};
    return run(op, va, va + (len - 1));
  }

  // Sets the permissions of every present leaf in [va, va + len) to prot / writable, keeping
  // the output address, A/D and every other attribute. Holes and non-present entries are
  // skipped; a leaf partly covered is split (only if its permissions change), a group partly
  // covered is broken. A clean page asked to be writable with hardware write permission gets
  // the format's clean-writable spelling where that is the only one it has (arm64 DBM).
  // Errors: EINVAL (len == 0, va or len not page aligned, no root, a permission the format
  // cannot encode for some leaf), ERANGE, ENOMEM (a split).
  Err protect(u64 va, u64 len, Prot prot, bool writable) {
    if (Err e = check_input(va, len); e != Err::ok) return e;
    ProtectOp op{this, prot, writable};
    return run(op, va, va + (len - 1));
  }

  // Replaces the present leaf covering va by finer leaves so that va is mapped by a leaf of
  // exactly 1 << target_shift (a contiguous size if the format has one there); everything the
  // leaf mapped stays mapped with every attribute (A/D of a broken group gathered). Only the
  // chain down to va is split: a 1G leaf split to 4K becomes 511 2M leaves and 512 4K leaves.
  // Errors: EINVAL (no present leaf covers va, target_shift is not a leaf size of the format
  // or not smaller than the leaf, no root), ERANGE (va not canonical), ENOMEM.
  Err split(u64 va, unsigned target_shift) {
    if (!F::canonical(va)) return Err::erange;
    if (!pt_->has_root()) return Err::einval;
    Result<Found> f = find(*pt_, va, 0);
    if (!f) return f.err;
    Entry d = F::decode(f.value.raw, f.value.level);
    if (!present(d)) return Err::einval;
    unsigned have = d.cont_shift != 0 ? d.cont_shift : F::shift(f.value.level);
    Size t = size_of(target_shift);
    if (!t.ok || target_shift >= have) return Err::einval;
    u64 base = align_down(va, target_shift);
    SplitOp op{this, t};
    return run(op, base, base + (bit(target_shift) - 1));
  }

  // Collapses the 1 << shift aligned region around va into one leaf (a group for a contiguous
  // size): it must be mapped entirely by present leaves of one kind, physically contiguous from
  // an output address aligned to the size, with identical attributes (A/D may differ and are
  // OR-ed, as is the hardware write permission of a writable page, which some formats use to
  // record dirt). The tables under it are freed. A region already mapped by exactly that leaf
  // is left as it is (ok).
  // Errors: EINVAL (shift is not a leaf size; a hole; different attributes; not contiguous or
  // misaligned output; the region lies inside a bigger leaf; no root), EBUSY (a non-present
  // entry in the region), ERANGE (va not canonical). Never ENOMEM: it only frees.
  Err collapse(u64 va, unsigned shift) {
    if (!F::canonical(va)) return Err::erange;
    Size t = size_of(shift);
    if (!t.ok) return Err::einval;
    u64 base = align_down(va, shift);
    CollapseOp op{this, t, base};
    return run(op, base, base + (bit(shift) - 1));
  }

  // The translation of va. Errors: ERANGE (not canonical), EINVAL (no root), ENOENT (nothing
  // translates va; then value.entry is the entry that stopped the walk - none, swap, marker,
  // protnone or invalid with its reason - and value.shift its size).
  Result<Translated> translate(u64 va) const {
    if (!F::canonical(va)) return Err::erange;
    if (!pt_->has_root()) return Err::einval;
    Found f = find(*pt_, va, 0).value;
    Translated t;
    t.entry = F::decode(f.raw, f.level);
    t.shift = t.entry.cont_shift != 0 ? t.entry.cont_shift : F::shift(f.level);
    t.va = align_down(va, t.shift);
    if (t.entry.kind != Kind::leaf) {
      Result<Translated> r;
      r.value = t;
      r.err = Err::enoent;
      return r;
    }
    if (t.entry.cont_shift != 0) {
      // Hardware sets A/D in whichever sub-entry it used: the group's are the OR of all.
      unsigned s = F::shift(f.level);
      u64* first = f.slot - ((va >> s) & (bit(t.shift - s) - 1));
      for (u64 k = 0; k < bit(t.shift - s); ++k) {
        Entry sub = F::decode(Table::load(first + k), f.level);
        t.entry.accessed = t.entry.accessed || sub.accessed;
        t.entry.dirty = t.entry.dirty || sub.dirty;
      }
    }
    // A sub-entry holds its own address (arm64 CONT) or the group's (riscv NAPOT): aligned
    // down to the group, both give the group's base.
    t.entry.addr = align_down(t.entry.addr, t.shift);
    t.pa = t.entry.addr + (va - t.va);
    return t;
  }

 private:
  // --- shared vocabulary ---------------------------------------------------------------------

  static constexpr bool present(const Entry& e) {
    return e.kind == Kind::leaf || e.kind == Kind::protnone;
  }
  static constexpr bool is_table(u64 raw, unsigned level) {
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

  // Common checks of [va, va + len).
  Err check_input(u64 va, u64 len) const {
    if (len == 0 || !aligned(va, F::page_shift) || !aligned(len, F::page_shift)) return Err::einval;
    u64 end = va + len;
    if (end != 0 && end < va) return Err::erange;  // wraps around the top of the 64-bit space
    if (Err e = check_range<F>(va, end); e != Err::ok) return e;
    if (!pt_->has_root()) return Err::einval;
    return Err::ok;
  }

  // The base form (sub-entry 0) of a group whose logical entry is g. Formats differ in what a
  // sub-entry holds, so the base form is encoded and group_entry places the others.
  static Result<u64> group_base(Entry g, unsigned level, unsigned cont) {
    g.cont_shift = static_cast<u8>(cont);
    g.shift = static_cast<u8>(F::shift(level));
    g.addr = align_down(g.addr, cont);
    return F::encode(g, level);
  }

  // Sub-entry k of a group whose logical entry (addr = the group's base) is g.
  static Result<u64> group_sub(Entry g, unsigned level, unsigned cont, u64 k) {
    Result<u64> raw0 = group_base(g, level, cont);
    if (!raw0) return raw0;
    return F::group_entry(raw0.value, level, static_cast<unsigned>(k));
  }

  // The raw entries of one unit at Level whose first entry (the base form for a group of
  // 1 << unit_shift) is raw0.
  template <unsigned Level>
  static void spread_unit(u64 raw0, unsigned unit_shift, u64* out) {
    out[0] = raw0;
    for (u64 k = 1; k < bit(unit_shift - F::shift(Level)); ++k)
      out[k] = F::group_entry(raw0, Level, static_cast<unsigned>(k));
  }

  // The raw entries of one unit at Level for the leaf `e`: one entry, or every sub-entry of a
  // group of 1 << unit_shift. EINVAL if the format cannot encode it.
  template <unsigned Level>
  static Err encode_unit(const Entry& e, unsigned unit_shift, u64* out) {
    Result<u64> r =
        unit_shift == F::shift(Level) ? F::encode(e, Level) : group_base(e, Level, unit_shift);
    if (!r) return Err::einval;
    spread_unit<Level>(r.value, unit_shift, out);
    return Err::ok;
  }

  // The children of the plain leaf `parent` split into plain entries of `level`: the first is
  // encoded, which decides for all of them (they differ only in an output address aligned to
  // their size and inside the parent's, F::with_pa's contract), the others are derived.
  struct Children {
    u64 raw0 = 0;
    u64 addr0 = 0;
    template <unsigned Level>
    u64 at(u64 i) const {
      return i == 0 ? raw0 : F::with_pa(raw0, Level, addr0 + (i << F::shift(Level)));
    }
  };
  static Result<Children> children(Entry parent, unsigned level) {
    parent.shift = static_cast<u8>(F::shift(level));
    parent.cont_shift = 0;
    Result<u64> r = F::encode(parent, level);
    if (!r) return r.err;
    return Children{r.value, parent.addr};
  }

  // --- the operation context: plan counts, reserved pages, invalidations owed -----------------

  struct Ctx {
    explicit Ctx(const RangeOps& r) : pool(r.pt_->env()), inv(*r.pt_, *r.tlb_) {}
    u64 need[F::levels] = {};  // table pages the plan needs, by the level of their entries
    TablePool<F, Env> pool;    // ... reserved before the commit; unused ones go back at the end
    Invalidations<F, Env, Tlb> inv;
  };

  // --- the pass --------------------------------------------------------------------------------

  enum class Act : u8 { keep, rewrite, split, fail };
  struct Decision {
    Act act = Act::keep;
    Err err = Err::ok;
    constexpr Decision(Act a) : act(a) {}                  // NOLINT(google-explicit-constructor)
    constexpr Decision(Err e) : act(Act::fail), err(e) {}  // NOLINT(google-explicit-constructor)
  };

  // Where the entries of one table come from during a pass: a real table (live, or built
  // off-line during the commit), or - during the plan only - a table that does not exist yet:
  // empty, or the children of the plain leaf being split. `fresh`: a new table that held
  // nothing but none when the pass entered it (nothing else can see it, and the pass has only
  // written entries it has already passed).
  struct Src {
    u64* t = nullptr;
    Children kids{};
    bool from_leaf = false;
    bool fresh = false;

    template <unsigned Level>
    u64 load(u64 i) const {
      if (t != nullptr) return Table::load(t + i);
      if (!from_leaf) return 0;
      return kids.template at<Level>(i);  // validated before the plan descended
    }
  };

  template <class Op>
  Err run(Op& op, u64 start, u64 last) {
    Ctx c(*this);
    Src root{pt_->root_table()};
    if (Err e = pass<kRoot, false>(op, root, true, start, last, c); e != Err::ok) return e;
    if (Err e = c.pool.reserve(c.need); e != Err::ok) return e;
    pass<kRoot, true>(op, root, true, start, last, c);  // cannot fail: the plan said so
    c.inv.finish();
    return Err::ok;
  }

  // The entries of one table at `Level` for [cur, last] (which lies inside that table).
  template <unsigned Level, bool Commit, class Op>
  Err pass(Op& op, const Src& src, bool live, u64 cur, u64 last, Ctx& c) {
    constexpr unsigned kShift = F::shift(Level);
    constexpr unsigned kCont = F::cont_shift(Level);
    for (;;) {
      // A run of plain leaves into a fresh table (mapping into empty space): every old entry is
      // none, so the operation decides the whole run at once and the values are written in one
      // loop, without a decision per entry.
      // A run of whole, plain, valid leaves in a live table that the operation rewrites one by
      // one from a rule it has already worked out (protect): no unit machinery per entry.
      if constexpr (requires { op.template live_run<Level, Commit>(src.t, cur, last, c); }) {
        if (live && src.t != nullptr) {
          Result<u64> n = op.template live_run<Level, Commit>(src.t, cur, last, c);
          if (!n) return n.err;
          if (n.value != 0) {
            const u64 rlast = cur + ((n.value << kShift) - 1);
            if (rlast >= last) return Err::ok;
            cur = rlast + 1;
            continue;
          }
        }
      }
      if constexpr (requires { op.template plain_run<Level>(cur, last); }) {
        if (src.fresh) {
          const u64 n = op.template plain_run<Level>(cur, last);
          if (n != 0) {
            if (Err e = op.template fill_run<Level, Commit>(cur, n, src.t); e != Err::ok) return e;
            const u64 rlast = cur + ((n << kShift) - 1);
            if (rlast >= last) return Err::ok;
            cur = rlast + 1;
            continue;
          }
        }
      }
      unsigned unit_shift = kShift;
      if constexpr (kCont != 0) {
        Entry d = F::decode(src.template load<Level>(index_of<F>(cur, Level)), Level);
        if ((present(d) && d.cont_shift == kCont) || op.wants_group(Level, cur)) unit_shift = kCont;
      }
      u64 unit_base = align_down(cur, unit_shift);
      u64 unit_last = unit_base + (bit(unit_shift) - 1);
      u64 in_last = unit_last < last ? unit_last : last;
      if (Err e = visit_unit<Level, Commit>(op, src, live, unit_base, unit_shift, cur, in_last, c);
          e != Err::ok)
        return e;
      if (unit_last >= last) return Err::ok;
      cur = unit_last + 1;
    }
  }

  // One unit: a single entry, or the n entries of a (present or wanted) group.
  template <unsigned Level, bool Commit, class Op>
  Err visit_unit(Op& op, const Src& src, bool live, u64 unit_base, unsigned unit_shift,
                 u64 in_first, u64 in_last, Ctx& c) {
    constexpr unsigned kShift = F::shift(Level);
    constexpr unsigned kCont = F::cont_shift(Level);
    constexpr u64 kMaxN = kCont != 0 ? bit(kCont - kShift) : 1;
    const u64 n = bit(unit_shift - kShift);
    const u64 i0 = index_of<F>(unit_base, Level);
    u64 old[kMaxN];
    u64 next[kMaxN];
    for (u64 k = 0; k < n; ++k) next[k] = old[k] = src.template load<Level>(i0 + k);

    bool refill = false;
    if (n == 1) {
      Result<u64> r =
          visit_entry<Level, Commit>(op, live, unit_base, in_first, in_last, old[0], c, refill);
      if (!r) return r.err;
      next[0] = r.value;
    } else {
      Entry g = F::decode(old[0], Level);
      const bool group_old = present(g) && g.cont_shift == kCont;
      if (group_old) {
        // Every sub-entry must belong to the group (same kind, group bit set); gather A/D.
        for (u64 k = 1; k < n; ++k) {
          Entry s = F::decode(old[k], Level);
          if (s.kind != g.kind || s.cont_shift != kCont) return Err::ebusy;
          g.accessed = g.accessed || s.accessed;
          g.dirty = g.dirty || s.dirty;
        }
        g.addr = align_down(g.addr, kCont);
      }
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
          for (u64 k = 0; k < n; ++k) {
            u64 v = old[k];
            if (group_old) {
              // Broken into plain leaves, each with the group's gathered A/D.
              Entry p = g;
              p.cont_shift = 0;
              p.shift = static_cast<u8>(kShift);
              p.addr = g.addr + (k << kShift);
              Result<u64> r = F::encode(p, Level);
              if (!r) return Err::einval;
              v = r.value;
            }
            u64 sub_first = unit_base + (k << kShift), sub_last = sub_first + (bit(kShift) - 1);
            if (sub_first < in_first) sub_first = in_first;
            if (sub_last > in_last) sub_last = in_last;
            next[k] = v;
            // Outside the range: stays (a plain leaf if broken).
            if (sub_first > sub_last) continue;
            bool sub_rewritten = false;  // a broken group's values are not edits of the old ones
            Result<u64> r = visit_entry<Level, Commit>(op, live, unit_base + (k << kShift),
                                                       sub_first, sub_last, v, c, sub_rewritten);
            if (!r) return r.err;
            next[k] = r.value;
          }
          break;
      }
    }
    if constexpr (Commit)
      write_unit<Level>(op, refill, unit_base, unit_shift, src.t + i0, old, next, live, c);
    return Err::ok;
  }

  // One entry at `Level` covering [base, base + size), of which [in_first, in_last] is in the
  // range. Returns the value the slot must hold afterwards.
  template <unsigned Level, bool Commit, class Op>
  Result<u64> visit_entry(Op& op, bool live, u64 base, u64 in_first, u64 in_last, u64 old, Ctx& c,
                          bool& rewritten) {
    Decision d = op.template decide<Level>(base, in_first, in_last, old);
    rewritten = d.act == Act::rewrite;
    switch (d.act) {
      case Act::fail:
        return d.err;
      case Act::keep:
        return old;
      case Act::rewrite: {
        u64 v = old;
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
        u64* child = pt_->child(old, Level);
        Src s{child};
        if (Err e = pass<Level - 1, Commit>(op, s, live, in_first, in_last, c); e != Err::ok)
          return e;
        if constexpr (Commit) {
          if (Op::kFreesEmpty && live && table_none<Level - 1>(child)) return u64{0};
        }
        return old;
      }
      Entry e = F::decode(old, Level);
      const bool from_leaf = present(e);
      if (!from_leaf && e.kind != Kind::none) return Err::ebusy;  // swap, migration, marker...
      if (from_leaf && (e.cont_shift != 0 || !F::leaf_ok(Level - 1))) return Err::einval;
      Children kids{};
      if (from_leaf) {
        Result<Children> k = children(e, Level - 1);
        if (!k) return Err::einval;  // only in the plan: the commit meets what the plan checked
        kids = k.value;
      }
      if constexpr (!Commit) {
        ++c.need[Level - 1];
        Src s{nullptr, kids, from_leaf, !from_leaf};
        if (Err r = pass<Level - 1, false>(op, s, false, in_first, in_last, c); r != Err::ok)
          return r;
        return F::make_table(0, Level);  // a placeholder: the plan writes nothing
      } else {
        // Built off-line: nothing walks this table before the store that links it.
        u64 pa = c.pool.take(Level - 1);
        u64* t = pt_->table(pa);
        if (from_leaf)
          pt_->fill_offline(t, Level - 1, bit(F::index_bits(Level - 1)),
                            [&kids](u64 i) { return kids.template at<Level - 1>(i); });
        Src s{t, {}, false, !from_leaf};
        pass<Level - 1, true>(op, s, false, in_first, in_last, c);
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
  void write_unit(Op& op, bool refill, u64 unit_base, unsigned unit_shift, u64* slots,
                  const u64* old, u64* next, bool live, Ctx& c) {
    constexpr unsigned kShift = F::shift(Level);
    const u64 n = bit(unit_shift - kShift);
    if (!live) {
      for (u64 k = 0; k < n; ++k)
        if (next[k] != old[k]) pt_->store(slots + k, Level, next[k]);
      return;
    }
    bool table_gone = false;
    for (u64 k = 0; k < n; ++k)
      table_gone = table_gone || (next[k] != old[k] && is_table(old[k], Level));
    const u64 end = unit_base + (n << kShift);  // 0 at the top of the 64-bit space
    // A table going away may have cached walks and leaves of any size under it.
    const TlbFlush f =
        table_gone
            ? TlbFlush{unit_base, end, static_cast<u8>(F::page_shift), kAnyLevel, false}
            : TlbFlush{unit_base, end, static_cast<u8>(kShift), static_cast<u8>(Level), true};
    auto rederive = [&](const u64* now, u64* out) {
      return refill && op.template fill<Level>(unit_base, unit_shift, now, out) == Err::ok;
    };
    replace(*pt_, c.inv, slots, Level, n, old, next, f, Owed::by_replace, rederive);
  }

  // Every entry of the table is none.
  template <unsigned Level>
  static bool table_none(u64* t) {
    for (u64 i = 0; i < bit(F::index_bits(Level)); ++i)
      if (u64 raw = Table::load(t + i); raw != 0 && F::decode(raw, Level).kind != Kind::none)
        return false;
    return true;
  }

  // Nothing but none (and tables holding nothing) under the table entry raw at Level.
  template <unsigned Level>
  bool subtree_none(u64 raw) const {
    if constexpr (Level == 0) {
      return false;
    } else {
      u64* t = pt_->child(raw, Level);
      for (u64 i = 0; i < bit(F::index_bits(Level - 1)); ++i) {
        u64 r = Table::load(t + i);
        if (is_table(r, Level - 1)) {
          if constexpr (Level > 1) {
            if (!subtree_none<Level - 1>(r)) return false;
          }
        } else if (r != 0 && F::decode(r, Level - 1).kind != Kind::none) {
          return false;
        }
      }
      return true;
    }
  }

  // --- the operations ---------------------------------------------------------------------------
  //
  // Each answers, for a unit: decide<Level>(base, in_first, in_last, old) for one entry,
  // decide_group<Level>(unit_base, unit_shift, in_first, in_last, old[], group_old) for the entries
  // of a group, fill<Level>(unit_base, unit_shift, old[], out[]) for the values of a `rewrite`, and
  // wants_group(level, addr): whether it wants a group unit starting at addr. `whole` below
  // means the range covers the unit entirely.

  static constexpr bool whole(u64 unit_base, unsigned unit_shift, u64 in_first, u64 in_last) {
    return in_first == unit_base && in_last == unit_base + (bit(unit_shift) - 1);
  }

  struct MapOp {
    static constexpr bool kFreesEmpty = false;
    RangeOps* self;
    u64 va, pa, last;
    Attrs attrs;
    unsigned max_shift, min_shift;
    MapMode mode;

    // The piece starting at a: the largest leaf size allowed, aligned and fitting.
    Size piece(u64 a) const {
      const u64 p = pa + (a - va);
      for (unsigned i = kSizes.count; i-- > 0;) {
        unsigned s = kSizes.shift[i];
        if (s > max_shift || s < min_shift || !aligned(a, s) || !aligned(p, s)) continue;
        if (last - a < bit(s) - 1) continue;
        // Between two sizes of one shift (a group as large as the next level's leaf), the
        // plain leaf comes first in kSizes' order only by level: prefer the plain one.
        if (i > 0 && kSizes.shift[i - 1] == s && kSizes.cont[i]) continue;
        return Size{true, s, kSizes.level[i], kSizes.cont[i]};
      }
      return Size{};
    }

    bool wants_group(unsigned level, u64 a) const {
      Size s = piece(a);
      return s.ok && s.cont && s.level == level;
    }

    // In no_replace mode: what is at `old` (one entry at Level) forbids writing there.
    template <unsigned Level>
    bool occupied(u64 old) const {
      if (is_table(old, Level)) return !self->template subtree_none<Level>(old);
      return F::decode(old, Level).kind != Kind::none;
    }

    template <unsigned Level>
    Decision decide(u64, u64 in_first, u64, u64 old) const {
      Size s = piece(in_first);
      if (!s.ok) return Err::einval;
      if (s.level == Level && !s.cont) {
        if (mode == MapMode::no_replace && occupied<Level>(old)) return Err::eexist;
        return Act::rewrite;
      }
      if (s.level >= Level) return Err::einval;  // cannot happen: sizes nest
      if (mode == MapMode::no_replace && !is_table(old, Level) &&
          F::decode(old, Level).kind != Kind::none)
        return Err::eexist;
      return Act::split;
    }

    template <unsigned Level>
    Decision decide_group(u64, unsigned, u64 in_first, u64, const u64* old, bool group_old) const {
      Size s = piece(in_first);
      if (!s.ok) return Err::einval;
      const u64 n = bit(F::cont_shift(Level) - F::shift(Level));
      if (mode == MapMode::no_replace) {
        if (group_old) return Err::eexist;
        if (s.cont && s.level == Level)
          for (u64 k = 0; k < n; ++k)
            if (occupied<Level>(old[k])) return Err::eexist;
      }
      return s.cont && s.level == Level ? Act::rewrite : Act::split;
    }

    // Every leaf of a map differs from the others only in its output address (and its size):
    // the first one of each level and kind (plain, group base) is encoded, which checks that
    // the attributes can be encoded there, and the others are derived from it with F::with_pa.
    // So the plan encodes once per level and the commit not at all.
    u64 proto[F::levels][2] = {};
    bool have[F::levels][2] = {};

    // The first raw entry of the unit of 1 << unit_shift at unit_base: the plain leaf, or a
    // group's base.
    template <unsigned Level>
    Result<u64> first_raw(u64 unit_base, unsigned unit_shift) {
      const u64 p = pa + (unit_base - va);
      const unsigned g = unit_shift != F::shift(Level) ? 1 : 0;
      if (have[Level][g]) return F::with_pa(proto[Level][g], Level, p);
      Entry e;
      e.kind = Kind::leaf;
      e.addr = p;
      e.shift = static_cast<u8>(F::shift(Level));
      e.cont_shift = static_cast<u8>(g ? unit_shift : 0);
      e.prot = attrs.prot;
      e.writable = attrs.writable;
      e.mem = attrs.mem;
      e.global = attrs.global;
      e.accessed = attrs.accessed;
      e.dirty = attrs.dirty;
      e.soft = attrs.soft;
      Result<u64> r = F::encode(e, Level);
      if (!r) return Err::einval;
      proto[Level][g] = r.value;
      have[Level][g] = true;
      return r;
    }

    template <unsigned Level>
    Err fill(u64 unit_base, unsigned unit_shift, const u64*, u64* out) {
      Result<u64> r = first_raw<Level>(unit_base, unit_shift);
      if (!r) return r.err;
      spread_unit<Level>(r.value, unit_shift, out);
      return Err::ok;
    }

    // How many units of Level from a on (a aligned to the level) piece() maps with one plain
    // entry of Level each, as far as `lim` (the last address the pass may cover); 0 if not a.
    // It is the same size until a bigger one becomes possible: at the next address aligned
    // to it (va and pa alike) from which it still fits.
    template <unsigned Level>
    u64 plain_run(u64 a, u64 lim) const {
      constexpr unsigned kShift = F::shift(Level);
      Size s = piece(a);
      if (!s.ok || s.level != Level || s.cont) return 0;
      const u64 end = lim < last ? lim : last;
      u64 top = end - (bit(kShift) - 1);  // the last unit start that still fits
      for (unsigned i = 0; i < kSizes.count; ++i) {
        const unsigned t = kSizes.shift[i];
        if (t <= kShift || t > max_shift || !aligned(pa - va, t)) continue;
        const u64 b = (a | (bit(t) - 1)) + 1;  // the next address aligned to t
        if (b == 0 || b > last || last - b < bit(t) - 1) continue;  // t never fits from there
        if (b - 1 < top) top = b - 1;
      }
      return ((top - a) >> kShift) + 1;
    }

    // Writes (commit) or checks (plan) the n plain leaves of Level from a into a fresh table.
    template <unsigned Level, bool Commit>
    Err fill_run(u64 a, u64 n, u64* t) {
      Result<u64> r = first_raw<Level>(a, F::shift(Level));
      if (!r) return r.err;
      if constexpr (Commit) {
        const u64 raw0 = r.value, p = pa + (a - va);
        self->pt_->fill_offline(t + index_of<F>(a, Level), Level, n, [raw0, p](u64 i) {
          return F::with_pa(raw0, Level, p + (i << F::shift(Level)));
        });
      }
      return Err::ok;
    }
  };

  struct UnmapOp {
    static constexpr bool kFreesEmpty = true;
    RangeOps* self;

    bool wants_group(unsigned, u64) const { return false; }

    template <unsigned Level>
    Decision decide(u64 base, u64 in_first, u64 in_last, u64 old) const {
      if (old == 0) return Act::keep;
      Entry e = F::decode(old, Level);
      if (e.kind == Kind::none) return Act::keep;
      if (whole(base, F::shift(Level), in_first, in_last)) return Act::rewrite;
      if (is_table(old, Level) || present(e)) return Act::split;
      return Err::ebusy;  // a non-present entry would have to be split
    }

    template <unsigned Level>
    Decision decide_group(u64 unit_base, unsigned unit_shift, u64 in_first, u64 in_last, const u64*,
                          bool) const {
      return whole(unit_base, unit_shift, in_first, in_last) ? Act::rewrite : Act::split;
    }

    template <unsigned Level>
    Err fill(u64, unsigned unit_shift, const u64*, u64* out) const {
      for (u64 k = 0; k < bit(unit_shift - F::shift(Level)); ++k) out[k] = 0;
      return Err::ok;
    }
  };

  struct ProtectOp {
    static constexpr bool kFreesEmpty = false;
    RangeOps* self;
    Prot prot;
    bool writable;

    bool wants_group(unsigned, u64) const { return false; }

    // The entry with the new permissions. A format may record a writable page that is still
    // clean as hardware read-only (arm64 DBM: the first write makes it writable and dirty), so
    // when the hardware write permission cannot go with a clean page, the clean-writable
    // spelling is used.
    template <unsigned Level>
    static Entry edited(Entry e, unsigned cont, u64 k, Prot p, bool w, Result<u64>& raw) {
      e.prot = p;
      e.writable = w;
      raw = cont == 0 ? F::encode(e, Level) : group_sub(e, Level, cont, k);
      if (!raw && w && p.write && !e.dirty) {
        e.prot.write = false;
        raw = cont == 0 ? F::encode(e, Level) : group_sub(e, Level, cont, k);
      }
      return e;
    }

    template <unsigned Level>
    bool same(const Entry& e) const {
      if (e.writable != writable) return false;
      if (e.prot == prot) return true;
      Result<u64> raw;
      return edited<Level>(e, e.cont_shift, 0, prot, writable, raw).prot == e.prot && raw.ok();
    }

    // A protection change depends on everything in a leaf but its output address, and a table
    // is full of leaves that differ only there. So the last answer per level is remembered,
    // keyed by the leaf without its address (F::with_pa(raw, level, 0)) and replayed onto the
    // next leaf's address with F::with_pa: one decode and encode per kind of leaf instead of
    // per leaf. Valid leaves only (F::with_pa moves any of them), one entry at a time.
    struct Memo {
      u64 key = 0;
      u64 out = 0;  // the new value at address 0
      bool keep = false;
      bool ok = false;  // the format can encode the new value
      bool valid = false;
    };
    Memo memo[F::levels] = {};

    template <unsigned Level>
    HUGEPTE_ALWAYS_INLINE const Memo* recall(u64 old) {
      if (!F::is_leaf(old, Level)) return nullptr;
      const Memo& m = memo[Level];
      if (m.valid && m.key == F::with_pa(old, Level, 0)) return &m;
      return learn<Level>(old);
    }

    template <unsigned Level>
    const Memo* learn(u64 old) {
      Memo& m = memo[Level];
      const u64 key = F::with_pa(old, Level, 0);
      Entry e = F::decode(old, Level);
      if (e.cont_shift != 0) return nullptr;  // a group member: its unit decides
      m.key = key;
      m.keep = same<Level>(e);
      Result<u64> raw;
      edited<Level>(e, 0, 0, prot, writable, raw);
      m.ok = raw.ok();
      m.out = raw.ok() ? F::with_pa(raw.value, Level, 0) : 0;
      m.valid = true;
      return &m;
    }

    template <unsigned Level>
    Decision decide(u64 base, u64 in_first, u64 in_last, u64 old) {
      if (is_table(old, Level)) return Act::split;
      if (const Memo* m = recall<Level>(old)) {
        if (m->keep) return Act::keep;
        return whole(base, F::shift(Level), in_first, in_last) ? Act::rewrite : Act::split;
      }
      Entry e = F::decode(old, Level);
      if (!present(e) || same<Level>(e)) return Act::keep;
      return whole(base, F::shift(Level), in_first, in_last) ? Act::rewrite : Act::split;
    }

    template <unsigned Level>
    Decision decide_group(u64 unit_base, unsigned unit_shift, u64 in_first, u64 in_last,
                          const u64* old, bool) const {
      if (same<Level>(F::decode(old[0], Level))) return Act::keep;
      return whole(unit_base, unit_shift, in_first, in_last) ? Act::rewrite : Act::split;
    }

    // The whole units of a live table from a on, as long as each is none or a plain valid leaf
    // (the pass takes over at anything else): decided from the memo and, in the commit,
    // rewritten with compare-exchange as write_unit would (an A/D update the hardware made
    // in between is edited again, a leaf flush queued for each changed entry). Returns how
    // many units it handled; EINVAL (plan) if a new value cannot be encoded.
    template <unsigned Level, bool Commit>
    Result<u64> live_run(u64* t, u64 a, u64 last, Ctx& c) {
      constexpr unsigned kShift = F::shift(Level);
      if (!aligned(a, kShift)) return u64{0};  // a partly covered first unit
      const u64 i0 = index_of<F>(a, Level);
      const u64 in_table = bit(F::index_bits(Level)) - i0;
      const u64 whole_units = ((last - a) + 1) >> kShift;  // no overflow inside one table
      const u64 n = whole_units < in_table ? whole_units : in_table;
      u64 k = 0;
      for (; k < n; ++k) {
        u64* slot = t + i0 + k;
        u64 old = Table::load(slot);
        if (old == 0) continue;  // none: kept
        const Memo* m = recall<Level>(old);
        if (m == nullptr) break;
        if (m->keep) continue;
        if (!m->ok) return Err::einval;
        u64 next = F::with_pa(m->out, Level, F::out_addr(old, Level));
        if (next == old) continue;
        if constexpr (Commit) {
          const u64 base = a + (k << kShift);
          auto rederive = [&](const u64* now, u64* out) {
            return fill<Level>(base, kShift, now, out) == Err::ok;
          };
          replace(*self->pt_, c.inv, slot, Level, 1, &old, &next,
                  TlbFlush{base, base + bit(kShift), static_cast<u8>(kShift),
                           static_cast<u8>(Level), true},
                  Owed::by_replace, rederive);
        }
      }
      return k;
    }

    // Each sub-entry keeps its own A/D; only the permissions change.
    template <unsigned Level>
    Err fill(u64, unsigned unit_shift, const u64* old, u64* out) {
      const u64 n = bit(unit_shift - F::shift(Level));
      if (n == 1) {
        if (const Memo* m = recall<Level>(old[0])) {
          if (!m->ok) return Err::einval;
          out[0] = F::with_pa(m->out, Level, F::out_addr(old[0], Level));
          return Err::ok;
        }
      }
      for (u64 k = 0; k < n; ++k) {
        Result<u64> raw;
        edited<Level>(F::decode(old[k], Level), n == 1 ? 0 : unit_shift, k, prot, writable, raw);
        if (!raw) return Err::einval;
        out[k] = raw.value;
      }
      return Err::ok;
    }
  };

  struct SplitOp {
    static constexpr bool kFreesEmpty = false;
    RangeOps* self;
    Size target;

    bool wants_group(unsigned level, u64) const { return target.cont && target.level == level; }

    template <unsigned Level>
    Decision decide(u64, u64, u64, u64 old) const {
      if (Level > target.level && (is_table(old, Level) || present(F::decode(old, Level))))
        return Act::split;
      if (Level == target.level && !target.cont && present(F::decode(old, Level))) return Act::keep;
      return Err::einval;
    }

    template <unsigned Level>
    Decision decide_group(u64, unsigned, u64, u64, const u64* old, bool group_old) const {
      if (group_old) return target.cont && target.level == Level ? Act::keep : Act::split;
      // Fresh children of a split leaf at the target's level: they become the group.
      if (target.cont && target.level == Level && present(F::decode(old[0], Level)))
        return Act::rewrite;
      return Err::einval;
    }

    template <unsigned Level>
    Err fill(u64, unsigned unit_shift, const u64* old, u64* out) const {
      Result<u64> r = group_base(F::decode(old[0], Level), Level, unit_shift);
      if (!r) return Err::einval;
      spread_unit<Level>(r.value, unit_shift, out);
      return Err::ok;
    }
  };

  struct CollapseOp {
    static constexpr bool kFreesEmpty = false;
    RangeOps* self;
    Size target;
    u64 base;  // the region's first address
    // What the scan found: the first leaf (the attributes every other must share) and the
    // OR of A/D and hardware write permission.
    Entry ref{};
    bool have_ref = false;

    bool wants_group(unsigned level, u64) const { return target.cont && target.level == level; }

    // Same attributes, apart from what collapse gathers. A writable page's hardware write
    // permission may record its dirt (arm64 DBM), so it is gathered as well.
    static bool same_attrs(const Entry& a, const Entry& b) {
      Prot pa = a.prot, pb = b.prot;
      if (a.writable && b.writable) pa.write = pb.write = false;
      return a.kind == b.kind && pa == pb && a.writable == b.writable && a.mem == b.mem &&
             a.global == b.global && a.soft == b.soft && a.keep == b.keep;
    }

    // The scan decodes every leaf of the region (twice: plan and commit), and they mostly
    // differ only in their output address, so valid leaves are decoded once per kind: a few
    // per level, keyed by the leaf without its address (F::with_pa(raw, level, 0)); a leaf
    // that matches decodes as the remembered one but for its own address (F::out_addr), and
    // whether it has the reference leaf's attributes is remembered too.
    struct Seen {
      u64 key = 0;
      Entry e{};
      u32 same_gen = 0;  // `same` holds for the reference of this generation
      bool same = false;
    };
    static constexpr unsigned kSeen = 4;
    Seen seen[F::levels][kSeen] = {};
    unsigned seen_count[F::levels] = {};
    u32 ref_gen = 0;  // bumped whenever `ref` is set anew

    template <unsigned Level>
    HUGEPTE_ALWAYS_INLINE Seen* seen_row(u64 raw) {
      const u64 key = F::with_pa(raw, Level, 0);
      Seen* row = seen[Level];
      const unsigned n = seen_count[Level] < kSeen ? seen_count[Level] : kSeen;
      for (unsigned i = 0; i < n; ++i)
        if (row[i].key == key) return &row[i];
      return learn<Level>(raw, key);
    }

    template <unsigned Level>
    Seen* learn(u64 raw, u64 key) {
      Seen& slot = seen[Level][seen_count[Level]++ % kSeen];
      slot = Seen{key, F::decode(raw, Level), 0, false};
      return &slot;
    }

    // Checks the entry raw at Level mapping [at, at + size): a present leaf continuing the
    // region's output, or a table of such leaves.
    template <unsigned Level>
    HUGEPTE_ALWAYS_INLINE Err scan(u64 raw, u64 at) {
      if (is_table(raw, Level)) {
        if constexpr (Level > 0) {
          u64* t = self->pt_->child(raw, Level);
          for (u64 i = 0; i < bit(F::index_bits(Level - 1)); ++i)
            if (Err e = scan<Level - 1>(Table::load(t + i), at + (i << F::shift(Level - 1)));
                e != Err::ok)
              return e;
        }
        return Err::ok;
      }
      // The common case: a plain valid leaf of a kind already seen to match the reference.
      if (have_ref && F::is_leaf(raw, Level)) {
        const Seen* row = seen_row<Level>(raw);
        if (row->same_gen == ref_gen && row->same && row->e.cont_shift == 0) {
          if (F::out_addr(raw, Level) != ref.addr + (at - base)) return Err::einval;
          ref.accessed = ref.accessed || row->e.accessed;
          ref.dirty = ref.dirty || row->e.dirty;
          ref.prot.write = ref.prot.write || row->e.prot.write;
          return Err::ok;
        }
      }
      return scan_leaf<Level>(raw, at);
    }

    template <unsigned Level>
    Err scan_leaf(u64 raw, u64 at) {
      Seen* row = F::is_leaf(raw, Level) ? seen_row<Level>(raw) : nullptr;
      Entry decoded;
      if (!row) decoded = F::decode(raw, Level);
      const Entry& e = row ? row->e : decoded;
      const u64 addr = row ? F::out_addr(raw, Level) : e.addr;
      if (e.kind == Kind::none) return Err::einval;  // a hole
      if (!present(e)) return Err::ebusy;            // swap, migration, marker, invalid
      u64 pa = e.cont_shift != 0 ? align_down(addr, e.cont_shift) + (at & (bit(e.cont_shift) - 1))
                                 : addr;
      if (!have_ref) {
        ref = e;
        ref.addr = pa - (at - base);
        have_ref = true;
        ++ref_gen;
        if (at != base || !aligned(ref.addr, target.shift)) return Err::einval;
        return Err::ok;
      }
      if (pa != ref.addr + (at - base)) return Err::einval;
      if (row) {
        // same_attrs ignores what the scan gathers into ref, so its answer for a kind of leaf
        // holds for the whole scan.
        if (row->same_gen != ref_gen) {
          row->same = same_attrs(ref, e);
          row->same_gen = ref_gen;
        }
        if (!row->same) return Err::einval;
      } else if (!same_attrs(ref, e)) {
        return Err::einval;
      }
      ref.accessed = ref.accessed || e.accessed;
      ref.dirty = ref.dirty || e.dirty;
      ref.prot.write = ref.prot.write || e.prot.write;
      return Err::ok;
    }

    template <unsigned Level>
    Decision decide(u64, u64, u64, u64 old) {
      Entry e = F::decode(old, Level);
      if (Level > target.level) {
        if (is_table(old, Level)) return Act::split;
        if (present(e)) return Err::einval;  // inside a bigger leaf: nothing to collapse
        return e.kind == Kind::none ? Err::einval : Err::ebusy;
      }
      if (Level != target.level || target.cont) return Err::einval;
      if (present(e) && e.cont_shift == 0) return Act::keep;  // already one leaf
      have_ref = false;
      if (Err r = scan<Level>(old, base); r != Err::ok) return r;
      return Act::rewrite;
    }

    template <unsigned Level>
    Decision decide_group(u64, unsigned, u64, u64, const u64* old, bool group_old) {
      if (!target.cont || target.level != Level) return Err::einval;
      if (group_old) return Act::keep;  // already the group
      have_ref = false;
      for (u64 k = 0; k < bit(target.shift - F::shift(Level)); ++k)
        if (Err r = scan<Level>(old[k], base + (k << F::shift(Level))); r != Err::ok) return r;
      return Act::rewrite;
    }

    template <unsigned Level>
    Err fill(u64, unsigned unit_shift, const u64*, u64* out) const {
      Entry e = ref;
      e.shift = static_cast<u8>(F::shift(Level));
      e.cont_shift = 0;
      return encode_unit<Level>(e, unit_shift, out);
    }
  };

  Table* pt_;
  Tlb* tlb_;
};

template <Format F, TableEnv Env, TlbSink Tlb>
RangeOps(PageTable<F, Env>&, Tlb&) -> RangeOps<F, Env, Tlb>;

}  // namespace hugepte
