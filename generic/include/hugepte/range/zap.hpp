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

  template <unsigned Level>
  Err fill(uint64_t, unsigned unit_shift, const uint64_t*, uint64_t* out) {
    const uint64_t n = bit(unit_shift - F::shift(Level));
    for (uint64_t k = 0; k < n; ++k) out[k] = 0;
    if (committing) cleared += n;
    return Err::ok;
  }
};

}  // namespace hugepte
