// hugepte/range/split.hpp - SplitOp, the policy of RangeOps::split(): descends through the
// leaves covering one address down to the target size (a group there, if the target is a
// contiguous size), splitting each on the way.
#pragma once

#include "hugepte/range/engine.hpp"

namespace hugepte {

template <Format F, TableEnv Env, TlbSink Tlb>
struct RangeEngine<F, Env, Tlb>::SplitOp {
  static constexpr bool kFreesEmpty = false;
  RangeEngine* self;
  Size target;

  bool wants_group(unsigned level, uint64_t) const { return target.cont && target.level == level; }

  template <unsigned Level>
  Decision decide(uint64_t, uint64_t, uint64_t, uint64_t old) const {
    if (Level > target.level && (is_table(old, Level) || present(F::decode(old, Level))))
      return Act::split;
    if (Level == target.level && !target.cont && present(F::decode(old, Level))) return Act::keep;
    return Err::einval;
  }

  template <unsigned Level>
  Decision decide_group(uint64_t, unsigned, uint64_t, uint64_t, const uint64_t* old,
                        bool group_old) const {
    if (group_old) return target.cont && target.level == Level ? Act::keep : Act::split;
    // Fresh children of a split leaf at the target's level: they become the group.
    if (target.cont && target.level == Level && present(F::decode(old[0], Level)))
      return Act::rewrite;
    return Err::einval;
  }

  template <unsigned Level>
  Err fill(uint64_t, unsigned unit_shift, const uint64_t* old, uint64_t* out) const {
    Result<uint64_t> r = group_base(F::decode(old[0], Level), Level, unit_shift);
    if (!r) return Err::einval;
    spread_unit<Level>(r.value, unit_shift, out);
    return Err::ok;
  }
};

}  // namespace hugepte
