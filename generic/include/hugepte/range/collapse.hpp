// hugepte/range/collapse.hpp - CollapseOp, the policy of RangeOps::collapse(): scans the aligned
// region for present leaves of one kind, physically contiguous, and replaces them (and the
// tables under them) by one leaf or group.
//
// Its cache: Seen, per level the few kinds of leaf the scan met (the leaf without its output
// address), decoded once, with whether they share the reference leaf's attributes.
#pragma once

#include "hugepte/range/engine.hpp"

namespace hugepte {

template <Format F, TableEnv Env, TlbSink Tlb>
struct RangeEngine<F, Env, Tlb>::CollapseOp {
  static constexpr bool kFreesEmpty = false;
  // The region is scanned once, in the plan. The commit breaks the unit before making the
  // new leaf whatever the format requires (invalid, invalidate, new: Linux's collapse clears
  // and flushes the PMD first, pmdp_collapse_flush) and gathers the A/D the hardware wrote
  // since the scan from the tables it can no longer reach (rederive), so none is lost.
  static constexpr bool kAlwaysBreaks = true;
  RangeEngine* self;
  Size target;
  uint64_t base;  // the region's first address
  // What the scan found: the first leaf (the attributes every other must share) and the
  // OR of A/D and hardware write permission.
  Entry ref{};
  bool have_ref = false;
  bool committing = false;  // the plan has scanned the region

  void begin_commit() { committing = true; }

  bool wants_group(unsigned level, uint64_t) const { return target.cont && target.level == level; }

  // Same attributes, apart from what collapse gathers. A writable page's hardware write
  // permission may record its dirt (arm64 DBM), so it is gathered as well.
  static bool same_attrs(const Entry& a, const Entry& b) {
    Prot pa = a.prot, pb = b.prot;
    if (a.writable && b.writable) pa.write = pb.write = false;
    return a.kind == b.kind && pa == pb && a.writable == b.writable && a.mem == b.mem &&
           a.global == b.global && a.soft == b.soft && a.s2 == b.s2 && a.keep == b.keep;
  }

  // The scan decodes every leaf of the region (twice: plan and commit), and they mostly
  // differ only in their output address, so valid leaves are decoded once per kind: a few
  // per level, keyed by the leaf without its address (F::with_pa(raw, level, 0)); a leaf
  // that matches decodes as the remembered one but for its own address (F::out_addr), and
  // whether it has the reference leaf's attributes is remembered too.
  struct Seen {
    uint64_t key = 0;
    Entry e{};
    uint32_t same_gen = 0;  // `same` holds for the reference of this generation
    bool same = false;
  };
  static constexpr unsigned kSeen = 4;
  Seen seen[F::levels][kSeen] = {};
  unsigned seen_count[F::levels] = {};
  uint32_t ref_gen = 0;  // bumped whenever `ref` is set anew

  template <unsigned Level>
  HUGEPTE_ALWAYS_INLINE Seen* seen_row(uint64_t raw) {
    const uint64_t key = F::with_pa(raw, Level, 0);
    Seen* row = seen[Level];
    const unsigned n = seen_count[Level] < kSeen ? seen_count[Level] : kSeen;
    for (unsigned i = 0; i < n; ++i)
      if (row[i].key == key) return &row[i];
    return learn<Level>(raw, key);
  }

  template <unsigned Level>
  Seen* learn(uint64_t raw, uint64_t key) {
    Seen& slot = seen[Level][seen_count[Level]++ % kSeen];
    slot = Seen{key, F::decode(raw, Level), 0, false};
    return &slot;
  }

  // Checks the entry raw at Level mapping [va, va + size): a present leaf continuing the
  // region's output, or a table of such leaves.
  template <unsigned Level>
  HUGEPTE_ALWAYS_INLINE Err scan(uint64_t raw, uint64_t va) {
    if (is_table(raw, Level)) {
      if constexpr (Level > 0)
        return walk_table<F, Level - 1>(self->pt_->child(raw, Level), va,
                                        va + (bit(F::shift(Level)) - 1), *this);
      return Err::ok;
    }
    // The common case: a plain valid leaf of a kind already seen to match the reference.
    if (have_ref && F::is_leaf(raw, Level)) {
      const Seen* row = seen_row<Level>(raw);
      if (row->same_gen == ref_gen && row->same && row->e.cont_shift == 0) {
        if (F::out_addr(raw, Level) != ref.addr + (va - base)) return Err::einval;
        ref.accessed = ref.accessed || row->e.accessed;
        ref.dirty = ref.dirty || row->e.dirty;
        ref.prot.write = ref.prot.write || row->e.prot.write;
        return Err::ok;
      }
    }
    return scan_leaf<Level>(raw, va);
  }

  // The scan of a table under the region, as a visitor of the table walk (walk.hpp): it takes
  // the table's entries from `here` on in one run. Leaves in a table mostly differ only in
  // their output address: a leaf whose every other bit equals the last plain leaf accepted
  // here (F::with_pa(raw, Level, 0), the key of Seen) is that same kind of leaf - present,
  // plain, with the reference's attributes and A/D already gathered - and needs only its
  // address checked. Anything else goes through scan(), which walks into tables.
  template <unsigned Level, class W, class View>
  HUGEPTE_ALWAYS_INLINE Result<uint64_t> at(W&, const Place<F, Level, View>& here) {
    constexpr unsigned kShift = F::shift(Level);
    uint64_t* const t = here.slot(here.addr);
    const uint64_t n = here.entries_from(here.addr);
    uint64_t known = 0;
    bool have_known = false;
    uint64_t expect = 0;  // the output address the leaf at i must have, once the reference is known
    for (uint64_t i = 0; i < n; ++i, expect += bit(kShift)) {
      const uint64_t raw = Table::load(t + i);
      if (have_known && F::with_pa(raw, Level, 0) == known) {
        if (F::out_addr(raw, Level) != expect) return Err::einval;
        continue;
      }
      const uint64_t a = here.addr + (i << kShift);
      if (Err e = scan<Level>(raw, a); e != Err::ok) return e;
      if (F::is_leaf(raw, Level)) {
        const Seen* row = seen_row<Level>(raw);
        have_known = row->e.cont_shift == 0 && row->same_gen == ref_gen && row->same;
        known = F::with_pa(raw, Level, 0);
        expect = ref.addr + (a - base);
      }
    }
    return here.last;
  }

  template <unsigned Level>
  Err scan_leaf(uint64_t raw, uint64_t va) {
    Seen* row = F::is_leaf(raw, Level) ? seen_row<Level>(raw) : nullptr;
    Entry decoded;
    if (!row) decoded = F::decode(raw, Level);
    const Entry& e = row ? row->e : decoded;
    const uint64_t addr = row ? F::out_addr(raw, Level) : e.addr;
    if (e.kind == Kind::none) return Err::einval;  // a hole
    if (!present(e)) return Err::ebusy;            // swap, migration, marker, invalid
    uint64_t pa =
        e.cont_shift != 0 ? align_down(addr, e.cont_shift) + (va & (bit(e.cont_shift) - 1)) : addr;
    if (!have_ref) {
      ref = e;
      ref.addr = pa - (va - base);
      have_ref = true;
      ++ref_gen;
      if (va != base || !aligned(ref.addr, target.shift)) return Err::einval;
      return Err::ok;
    }
    if (pa != ref.addr + (va - base)) return Err::einval;
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
  Decision decide(uint64_t, uint64_t, uint64_t, uint64_t old) {
    Entry e = F::decode(old, Level);
    if (Level > target.level) {
      if (is_table(old, Level)) return Act::split;
      if (present(e)) return Err::einval;  // inside a bigger leaf: nothing to collapse
      return e.kind == Kind::none ? Err::einval : Err::ebusy;
    }
    if (Level != target.level || target.cont) return Err::einval;
    if (present(e) && e.cont_shift == 0) return Act::keep;  // already one leaf
    if (committing) return Act::rewrite;                    // scanned by the plan
    have_ref = false;
    if (Err r = scan<Level>(old, base); r != Err::ok) return r;
    return Act::rewrite;
  }

  template <unsigned Level>
  Decision decide_group(uint64_t, unsigned, uint64_t, uint64_t, const uint64_t* old,
                        bool group_old) {
    if (!target.cont || target.level != Level) return Err::einval;
    if (group_old) return Act::keep;  // already the group
    if (committing) return Act::rewrite;  // scanned by the plan
    have_ref = false;
    for (uint64_t k = 0; k < bit(target.shift - F::shift(Level)); ++k)
      if (Err r = scan<Level>(old[k], base + (k << F::shift(Level))); r != Err::ok) return r;
    return Act::rewrite;
  }

  // The unit's values again once replace() has taken it from the hardware (now[]: what its
  // slots held): the scan's leaf with the A/D written since, gathered from now[] and the
  // tables under it.
  template <unsigned Level>
  Err rederive(uint64_t unit_base, unsigned unit_shift, const uint64_t* now, uint64_t* out) {
    constexpr unsigned kShift = F::shift(Level);
    for (uint64_t k = 0; k < bit(unit_shift - kShift); ++k) {
      if (is_table(now[k], Level)) {
        if constexpr (Level > 0) {
          const uint64_t a = unit_base + (k << kShift);
          Gather g{this};
          walk_table<F, Level - 1>(self->pt_->child(now[k], Level), a, a + (bit(kShift) - 1), g);
        }
      } else {
        add_dirt(F::decode(now[k], Level));
      }
    }
    return fill<Level>(unit_base, unit_shift, now, out);
  }

  void add_dirt(const Entry& e) {
    if (!present(e)) return;
    ref.accessed = ref.accessed || e.accessed;
    ref.dirty = ref.dirty || e.dirty;
    ref.prot.write = ref.prot.write || e.prot.write;
  }

  // rederive's walk of an unlinked subtree, a visitor of the table walk taking a table at a
  // time: a leaf with the same bits as the last one decoded (but its address) adds nothing.
  struct Gather {
    CollapseOp* op;
    template <unsigned Level, class W, class View>
    Result<uint64_t> at(W& walk, const Place<F, Level, View>& here) {
      constexpr unsigned kShift = F::shift(Level);
      uint64_t* const t = here.slot(here.addr);
      const uint64_t n = here.entries_from(here.addr);
      uint64_t known = 0;
      bool have_known = false;
      for (uint64_t i = 0; i < n; ++i) {
        const uint64_t raw = Table::load(t + i);
        if constexpr (Level > 0) {
          if (F::is_table(raw, Level)) {
            const uint64_t a = here.addr + (i << kShift);
            walk.template table<Level - 1>(TablePage{op->self->pt_->child(raw, Level)}, a,
                                           a + (bit(kShift) - 1));
            continue;
          }
        }
        const uint64_t key = F::with_pa(raw, Level, 0);
        if (have_known && key == known) continue;
        op->add_dirt(F::decode(raw, Level));
        known = key;
        have_known = true;
      }
      return here.last;
    }
  };

  template <unsigned Level>
  Err fill(uint64_t, unsigned unit_shift, const uint64_t*, uint64_t* out) const {
    Entry e = ref;
    e.shift = static_cast<uint8_t>(F::shift(Level));
    e.cont_shift = 0;
    return encode_unit<Level>(e, unit_shift, out);
  }
};

}  // namespace hugepte
