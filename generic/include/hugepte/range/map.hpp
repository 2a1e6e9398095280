// hugepte/range/map.hpp - MapOp, the policy of RangeOps::map(): each piece of the range gets
// the largest leaf allowed that fits; whatever was there is replaced (MapMode::replace) or
// refused (MapMode::no_replace).
//
// Its cache: proto/have, the first leaf of each level and kind encoded, the others derived
// from it with F::with_pa. Its runs: plain_run/fill_run write the plain leaves of a fresh table
// in one loop.
#pragma once

// Attrs and MapMode. range.hpp includes this file after defining them, so the circle is
// harmless whichever of the two is included first.
#include "hugepte/range.hpp"
#include "hugepte/range/engine.hpp"

namespace hugepte {

template <Format F, TableEnv Env, TlbSink Tlb>
struct RangeEngine<F, Env, Tlb>::MapOp {
  static constexpr bool kFreesEmpty = false;
  RangeEngine* self;
  uint64_t va, pa, last;
  Attrs attrs;
  unsigned max_shift, min_shift;
  MapMode mode;
  SplitFill split_fill = SplitFill::rest;

  bool refills() const { return split_fill == SplitFill::rest; }

  // The piece starting at a: the largest leaf size allowed, aligned and fitting.
  Size piece(uint64_t a) const {
    const uint64_t p = pa + (a - va);
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

  // The whole range is one piece (a leaf or one group) and its slots hold none: all the
  // plan/reserve/commit passes would do comes down to the walker finding - or building, all or
  // nothing - the tables down to the piece's level, its value encoded once, and replace()
  // installing it (no invalidation: nothing was there). This is what mapping one page at a time
  // costs. Returns false, having changed nothing, for anything else (a leaf, a non-present
  // entry or a table where the piece goes, a value the format refuses): the passes take it.
  template <unsigned Level = kRoot>
  bool install_one(const Size& s, Err& err) {
    if constexpr (Level > 0) {
      if (s.level != Level) return install_one<Level - 1>(s, err);
    }
    if (s.level != Level) return false;
    constexpr unsigned kShift = F::shift(Level);
    const uint64_t n = bit(s.shift - kShift);
    Result<uint64_t> raw0 = first_raw<Level>(va, s.shift);
    if (!raw0) return false;
    Table& pt = *self->pt_;
    Result<Found> f = find(pt, va, Level);
    if (!f) return false;
    if (f.value.level != Level && f.value.raw != 0 &&
        F::decode(f.value.raw, f.value.level).kind != Kind::none)
      return false;
    constexpr uint64_t kMaxN = F::cont_shift(Level) != 0 ? bit(F::cont_shift(Level) - kShift) : 1;
    uint64_t old[kMaxN], next[kMaxN];
    if (f.value.level == Level) {
      for (uint64_t k = 0; k < n; ++k) {
        old[k] = Table::load(f.value.slot + k);
        if (old[k] != 0 && F::decode(old[k], Level).kind != Kind::none) return false;
      }
    } else {
      f = find_or_alloc(pt, va, Level);  // fresh tables: every slot none
      if (!f) {
        err = f.err;
        return f.err == Err::enomem;  // other errors: let the passes name them
      }
      for (uint64_t k = 0; k < n; ++k) old[k] = 0;
    }
    spread_unit<Level>(raw0.value, s.shift, next);
    Invalidations<F, Env, Tlb> inv(pt, *self->tlb_);
    replace(pt, inv, f.value.slot, Level, n, old, next,
            TlbFlush{va, va + bit(s.shift), static_cast<uint8_t>(kShift),
                     static_cast<uint8_t>(Level), true});
    inv.finish();
    err = Err::ok;
    return true;
  }

  bool wants_group(unsigned level, uint64_t a) const {
    Size s = piece(a);
    return s.ok && s.cont && s.level == level;
  }

  // In no_replace mode: what is at `old` (one entry at Level) forbids writing there.
  template <unsigned Level>
  bool occupied(uint64_t old, uint64_t base) const {
    if (is_table(old, Level)) return !self->template subtree_none<Level>(old, base);
    return F::decode(old, Level).kind != Kind::none;
  }

  template <unsigned Level>
  Decision decide(uint64_t base, uint64_t in_first, uint64_t, uint64_t old) const {
    Size s = piece(in_first);
    if (!s.ok) return Err::einval;
    if (s.level == Level && !s.cont) {
      if (mode == MapMode::no_replace && occupied<Level>(old, base)) return Err::eexist;
      return Act::rewrite;
    }
    if (s.level >= Level) return Err::einval;  // cannot happen: sizes nest
    if (mode == MapMode::no_replace && !is_table(old, Level) &&
        F::decode(old, Level).kind != Kind::none)
      return Err::eexist;
    return Act::split;
  }

  template <unsigned Level>
  Decision decide_group(uint64_t unit_base, unsigned, uint64_t in_first, uint64_t,
                        const uint64_t* old, bool group_old) const {
    Size s = piece(in_first);
    if (!s.ok) return Err::einval;
    const uint64_t n = bit(F::cont_shift(Level) - F::shift(Level));
    if (mode == MapMode::no_replace) {
      if (group_old) return Err::eexist;
      if (s.cont && s.level == Level)
        for (uint64_t k = 0; k < n; ++k)
          if (occupied<Level>(old[k], unit_base + (k << F::shift(Level)))) return Err::eexist;
    }
    return s.cont && s.level == Level ? Act::rewrite : Act::split;
  }

  // Every leaf of a map differs from the others only in its output address (and its size):
  // the first one of each level and kind (plain, group base) is encoded, which checks that
  // the attributes can be encoded there, and the others are derived from it with F::with_pa.
  // So the plan encodes once per level and the commit not at all.
  uint64_t proto[F::levels][2] = {};
  bool have[F::levels][2] = {};

  // The first raw entry of the unit of 1 << unit_shift at unit_base: the plain leaf, or a
  // group's base.
  template <unsigned Level>
  Result<uint64_t> first_raw(uint64_t unit_base, unsigned unit_shift) {
    const uint64_t p = pa + (unit_base - va);
    const unsigned g = unit_shift != F::shift(Level) ? 1 : 0;
    if (have[Level][g]) return F::with_pa(proto[Level][g], Level, p);
    Entry e = leaf_of(attrs, p);
    e.shift = static_cast<uint8_t>(F::shift(Level));
    e.cont_shift = static_cast<uint8_t>(g ? unit_shift : 0);
    Result<uint64_t> r = F::encode(e, Level);
    if (!r) return Err::einval;
    proto[Level][g] = r.value;
    have[Level][g] = true;
    return r;
  }

  template <unsigned Level>
  Err fill(uint64_t unit_base, unsigned unit_shift, const uint64_t*, uint64_t* out) {
    Result<uint64_t> r = first_raw<Level>(unit_base, unit_shift);
    if (!r) return r.err;
    spread_unit<Level>(r.value, unit_shift, out);
    return Err::ok;
  }

  // How many units of Level from a on (a aligned to the level) piece() maps with one plain
  // entry of Level each, as far as `lim` (the last address the pass may cover); 0 if not a.
  // It is the same size until a bigger one becomes possible: at the next address aligned
  // to it (va and pa alike) from which it still fits.
  template <unsigned Level>
  uint64_t plain_run(uint64_t a, uint64_t lim) const {
    constexpr unsigned kShift = F::shift(Level);
    Size s = piece(a);
    if (!s.ok || s.level != Level || s.cont) return 0;
    const uint64_t end = lim < last ? lim : last;
    uint64_t top = end - (bit(kShift) - 1);  // the last unit start that still fits
    for (unsigned i = 0; i < kSizes.count; ++i) {
      const unsigned t = kSizes.shift[i];
      if (t <= kShift || t > max_shift || !aligned(pa - va, t)) continue;
      const uint64_t b = (a | (bit(t) - 1)) + 1;  // the next address aligned to t
      if (b == 0 || b > last || last - b < bit(t) - 1) continue;  // t never fits from there
      if (b - 1 < top) top = b - 1;
    }
    return ((top - a) >> kShift) + 1;
  }

  // Writes (commit) or checks (plan) the n plain leaves of Level from a into a fresh table.
  template <unsigned Level, bool Commit>
  Err fill_run(const Here<Level>& here, uint64_t n) {
    const uint64_t a = here.addr;
    Result<uint64_t> r = first_raw<Level>(a, F::shift(Level));
    if (!r) return r.err;
    if constexpr (Commit) {
      const uint64_t raw0 = r.value, p = pa + (a - va);
      self->pt_->fill_offline(here.slot(a), Level, n, [raw0, p](uint64_t i) {
        return F::with_pa(raw0, Level, p + (i << F::shift(Level)));
      });
    }
    return Err::ok;
  }
};

}  // namespace hugepte
