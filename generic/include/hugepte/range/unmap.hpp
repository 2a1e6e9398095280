// hugepte/range/unmap.hpp - UnmapOp, the policy of RangeOps::unmap(): every entry inside the
// range becomes none, a leaf or group partly covered is split or broken first, and a table the
// unmap leaves empty is freed (kFreesEmpty).
#pragma once

#include "hugepte/range/engine.hpp"

namespace hugepte {

template <Format F, TableEnv Env, TlbSink Tlb>
struct RangeEngine<F, Env, Tlb>::UnmapOp {
  static constexpr bool kFreesEmpty = true;
  RangeEngine* self;

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

}  // namespace hugepte
