// hugepte/range/zap.hpp - ZapOp, the policy of RangeOps::zap(): KVM's unmap of a GPA range.
// Every present leaf or group meeting the range is cleared whole (never split); tables are
// descended, and freed when left empty only where the architecture's KVM frees them.
#pragma once

#include "hugepte/range/engine.hpp"

namespace hugepte {

template <Format F, TableEnv Env, TlbSink Tlb>
template <bool FreeTables>
struct RangeEngine<F, Env, Tlb>::ZapOp {
  static constexpr bool kFreesEmpty = FreeTables;
  RangeEngine* self;
  uint64_t cleared = 0;  // leaf entries cleared (counted in the commit)
  bool committing = false;

  void begin_commit() { committing = true; }
  bool wants_group(unsigned, uint64_t) const { return false; }

  template <unsigned Level>
  Decision decide(uint64_t, uint64_t, uint64_t, uint64_t old) const {
    if (old == 0) return Act::keep;
    if (is_table(old, Level)) return Act::split;  // descend
    return present(F::decode(old, Level)) ? Act::rewrite : Act::keep;
  }

  template <unsigned Level>
  Decision decide_group(uint64_t, unsigned, uint64_t, uint64_t, const uint64_t*,
                        bool group_old) const {
    return group_old ? Act::rewrite : Act::split;
  }

  // The whole plain leaves of a live table from here on, cleared in one loop (a zap of a range
  // mapped at pages clears every entry of its tables): one store each, the invalidations owed
  // per run of adjacent ones. Stops at anything the unit machinery must see: a table, a group
  // member, a locked entry (EAGAIN from the pass).
  template <unsigned Level, bool Commit>
  Result<uint64_t> live_run(const Here<Level>& here, Ctx& c) {
    constexpr unsigned kShift = F::shift(Level);
    const uint64_t a = here.addr;
    if (!aligned(a, kShift)) return uint64_t{0};
    uint64_t* const t = here.slot(a);
    const uint64_t n = ((here.last - a) + 1) >> kShift;
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
      const uint64_t old = Table::load(t + k);
      if (old == 0) continue;
      if (!F::is_leaf(old, Level)) {
        if (is_table(old, Level) || is_locked<F>(old)) break;
        continue;  // invalid to the hardware and to us: kept (decide would keep it too)
      }
      if constexpr (F::cont_shift(Level) != 0) {
        if (F::decode(old, Level).cont_shift != 0) break;  // a group: one unit
      }
      if constexpr (Commit) {
        pt.store(t + k, Level, 0);
        ++cleared;
        const uint64_t base = a + (k << kShift);
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

  template <unsigned Level>
  Err fill(uint64_t, unsigned unit_shift, const uint64_t*, uint64_t* out) {
    const uint64_t n = bit(unit_shift - F::shift(Level));
    for (uint64_t k = 0; k < n; ++k) out[k] = 0;
    if (committing) cleared += n;
    return Err::ok;
  }
};

}  // namespace hugepte
