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

  bool wants_group(unsigned, uint64_t) const { return false; }

  template <unsigned Level>
  Decision decide(uint64_t base, uint64_t in_first, uint64_t in_last, uint64_t old) const {
    if (old == 0) return Act::keep;
    Entry e = F::decode(old, Level);
    if (e.kind == Kind::none) return Act::keep;
    if (whole(base, F::shift(Level), in_first, in_last)) return Act::rewrite;
    if (is_table(old, Level) || present(e)) return Act::split;
    return Err::ebusy;  // a non-present entry would have to be split
  }

  template <unsigned Level>
  Decision decide_group(uint64_t unit_base, unsigned unit_shift, uint64_t in_first,
                        uint64_t in_last, const uint64_t*, bool) const {
    return whole(unit_base, unit_shift, in_first, in_last) ? Act::rewrite : Act::split;
  }

  template <unsigned Level>
  Err fill(uint64_t, unsigned unit_shift, const uint64_t*, uint64_t* out) const {
    for (uint64_t k = 0; k < bit(unit_shift - F::shift(Level)); ++k) out[k] = 0;
    return Err::ok;
  }
};

}  // namespace hugepte
