// hugepte/range/protect.hpp - ProtectOp, the policy of RangeOps::protect(): new permissions for
// every present leaf in the range, everything else about the leaf kept.
//
// Its cache: Memo, per level the last kind of leaf seen (the leaf without its output address)
// and the answer for it, so that a table of leaves differing only in their address costs one
// decode and encode. Its run: live_run rewrites the whole plain leaves of a live table from the
// memo, without the unit machinery per entry.
#pragma once

#include "hugepte/range/engine.hpp"

namespace hugepte {

template <Format F, TableEnv Env, TlbSink Tlb>
struct RangeEngine<F, Env, Tlb>::ProtectOp {
  static constexpr bool kFreesEmpty = false;
  RangeEngine* self;
  Prot prot;
  bool writable;

  bool wants_group(unsigned, uint64_t) const { return false; }

  // The entry with the new permissions. A format may record a writable page that is still
  // clean as hardware read-only (arm64 DBM: the first write makes it writable and dirty), so
  // when the hardware write permission cannot go with a clean page, the clean-writable
  // spelling is used.
  template <unsigned Level>
  static Entry edited(Entry e, unsigned cont, uint64_t k, Prot p, bool w, Result<uint64_t>& raw) {
    // Stage 2: a leaf whose user-mode execute permission equals its execute permission (every
    // leaf of a format without the split) keeps them equal.
    if constexpr (stage_of<F>() == 2)
      if (e.s2.user_exec == e.prot.exec) e.s2.user_exec = p.exec;
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
    Result<uint64_t> raw;
    return edited<Level>(e, e.cont_shift, 0, prot, writable, raw).prot == e.prot && raw.ok();
  }

  // A protection change depends on everything in a leaf but its output address, and a table
  // is full of leaves that differ only there. So the last answer per level is remembered,
  // keyed by the leaf without its address (F::with_pa(raw, level, 0)) and replayed onto the
  // next leaf's address with F::with_pa: one decode and encode per kind of leaf instead of
  // per leaf. Valid leaves only (F::with_pa moves any of them), one entry at a time.
  struct Memo {
    uint64_t key = 0;
    uint64_t out = 0;  // the new value at address 0
    bool keep = false;
    bool ok = false;  // the format can encode the new value
    bool valid = false;
  };
  Memo memo[F::levels] = {};

  template <unsigned Level>
  HUGEPTE_ALWAYS_INLINE const Memo* recall(uint64_t old) {
    if (!F::is_leaf(old, Level)) return nullptr;
    const Memo& m = memo[Level];
    if (m.valid && m.key == F::with_pa(old, Level, 0)) return &m;
    return learn<Level>(old);
  }

  template <unsigned Level>
  const Memo* learn(uint64_t old) {
    Memo& m = memo[Level];
    const uint64_t key = F::with_pa(old, Level, 0);
    Entry e = F::decode(old, Level);
    if (e.cont_shift != 0) return nullptr;  // a group member: its unit decides
    m.key = key;
    m.keep = same<Level>(e);
    Result<uint64_t> raw;
    edited<Level>(e, 0, 0, prot, writable, raw);
    m.ok = raw.ok();
    m.out = raw.ok() ? F::with_pa(raw.value, Level, 0) : 0;
    m.valid = true;
    return &m;
  }

  template <unsigned Level>
  Decision decide(uint64_t base, uint64_t in_first, uint64_t in_last, uint64_t old) {
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
  Decision decide_group(uint64_t unit_base, unsigned unit_shift, uint64_t in_first,
                        uint64_t in_last, const uint64_t* old, bool) const {
    if (same<Level>(F::decode(old[0], Level))) return Act::keep;
    return whole(unit_base, unit_shift, in_first, in_last) ? Act::rewrite : Act::split;
  }

  // The whole units of a live table from a on, as long as each is none or a plain valid leaf
  // (the pass takes over at anything else): decided from the memo and, in the commit,
  // rewritten with compare-exchange as write_unit would (an A/D update the hardware made
  // in between is edited again, a leaf flush queued for each changed entry). Returns how
  // many units it handled; EINVAL (plan) if a new value cannot be encoded.
  template <unsigned Level, bool Commit>
  Result<uint64_t> live_run(const Here<Level>& here, Ctx& c) {
    constexpr unsigned kShift = F::shift(Level);
    const uint64_t a = here.addr;
    if (!aligned(a, kShift)) return uint64_t{0};  // a partly covered first unit
    uint64_t* const t = here.slot(a);
    const uint64_t n =
        ((here.last - a) + 1) >> kShift;  // whole units; no overflow inside one table
    // The invalidations the rewritten leaves owe, one per run of adjacent ones (Invalidations
    // would merge them as well; queueing a run at a time keeps that out of the loop).
    uint64_t run_first = 0, run_end = 0;
    auto owe = [&]() {
      if (run_end != run_first)
        c.inv.later(TlbFlush{run_first, run_end, static_cast<uint8_t>(kShift),
                             static_cast<uint8_t>(Level), true});
      run_first = run_end;
    };
    const Table& pt = *self->pt_;
    uint64_t k = 0;
    for (; k < n; ++k) {
      uint64_t* slot = t + k;
      uint64_t old = Table::load(slot);
      if (old == 0) continue;  // none: kept
      const Memo* m = recall<Level>(old);
      if (m == nullptr) break;
      if (m->keep) continue;
      if (!m->ok) return Err::einval;
      uint64_t next = F::with_pa(m->out, Level, F::out_addr(old, Level));
      if (next == old) continue;
      if constexpr (Commit) {
        const uint64_t base = a + (k << kShift);
        auto rederive = [&](const uint64_t* now, uint64_t* out) {
          return fill<Level>(base, kShift, now, out) == Err::ok;
        };
        const TlbFlush f{base, base + bit(kShift), static_cast<uint8_t>(kShift),
                         static_cast<uint8_t>(Level), true};
        if (replace(pt, c.inv, slot, Level, 1, &old, &next, f, Owed::by_caller, rederive))
          continue;  // a break issued the invalidation
        if (run_end != base) {
          owe();
          run_first = base;
        }
        run_end = base + bit(kShift);
      }
    }
    if constexpr (Commit) owe();
    return k;
  }

  // Each sub-entry keeps its own A/D; only the permissions change.
  template <unsigned Level>
  Err fill(uint64_t, unsigned unit_shift, const uint64_t* old, uint64_t* out) {
    const uint64_t n = bit(unit_shift - F::shift(Level));
    if (n == 1) {
      if (const Memo* m = recall<Level>(old[0])) {
        if (!m->ok) return Err::einval;
        out[0] = F::with_pa(m->out, Level, F::out_addr(old[0], Level));
        return Err::ok;
      }
    }
    for (uint64_t k = 0; k < n; ++k) {
      Result<uint64_t> raw;
      edited<Level>(F::decode(old[k], Level), n == 1 ? 0 : unit_shift, k, prot, writable, raw);
      if (!raw) return Err::einval;
      out[k] = raw.value;
    }
    return Err::ok;
  }
};

}  // namespace hugepte
