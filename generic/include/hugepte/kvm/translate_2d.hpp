// hugepte/kvm/translate_2d.hpp - two-dimensional translation: a guest virtual address through
// the guest's stage-1 tables, which live in guest-physical memory, and the stage-2 tables, as
// the hardware walks them (Intel SDM "EPT and the guest's paging structures", Arm ARM
// "stage 2 translation of stage 1 table walks", riscv "two-stage address translation").
//
// Every guest table the stage-1 walk reads is itself a guest-physical address that stage 2
// must translate first; a stage-2 fault there is the S1PTW case (arm64 ESR_EL2.S1PTW, the
// EPT-violation qualification bit 8 clear, NPF EXITINFO1 bit 33, riscv htinst 0x3000). The
// result names the stage and the level that faulted, as the syndrome would.
//
// The guest's tables are a PageTable<G1, GEnv> whose Env deals in guest-physical addresses;
// the stage-2 table is any PageTable of a stage-2 format. Read-only: nothing is written (the
// hardware's A/D updates are not modelled here). Freestanding.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/mm/types.hpp"
#include "hugepte/table.hpp"
#include "hugepte/walk.hpp"

namespace hugepte::kvm {

enum class Fault2d : uint8_t {
  none,         // translated
  translation,  // the entry at `level` maps nothing (or nothing valid)
  permission,   // a leaf at `level` does not allow the access
};

struct Translation2d {
  Fault2d fault = Fault2d::none;
  unsigned stage = 0;  // 1 or 2: which stage faulted
  unsigned level = 0;  // the level of the entry that faulted, in that stage's numbering
  bool s1ptw = false;  // stage 2 faulted while the stage-1 walk read a guest table
  uint64_t gpa = 0;    // stage 1's output (ok), or the GPA stage 2 faulted on
  uint64_t hpa = 0;    // ok: the host physical address
  unsigned s1_shift = 0, s2_shift = 0;  // ok: the leaf sizes of each stage
};

namespace detail2d {

// One stage-2 translation of gpa for `access`: the leaf, or the fault.
template <Format F2, TableEnv E2>
Translation2d stage2(const PageTable<F2, E2>& s2, uint64_t gpa, mm::Access access) {
  Translation2d r;
  r.gpa = gpa;
  Result<Found> f = find(s2, gpa, 0);
  if (!f || !F2::is_leaf(f.value.raw, f.value.level)) {
    r.fault = Fault2d::translation;
    r.stage = 2;
    r.level = f ? f.value.level : F2::levels - 1;
    return r;
  }
  const Entry e = F2::decode(f.value.raw, f.value.level);
  const bool ok = access == mm::Access::read    ? e.prot.read
                  : access == mm::Access::write ? e.prot.write
                                                : e.prot.exec;
  if (!ok) {
    r.fault = Fault2d::permission;
    r.stage = 2;
    r.level = f.value.level;
    return r;
  }
  const unsigned s = F2::leaf_shift(f.value.raw, f.value.level);
  r.hpa = F2::out_addr(f.value.raw, f.value.level) + (gpa & (bit(s) - 1));
  r.s2_shift = F2::shift(f.value.level);
  return r;
}

}  // namespace detail2d

// translate_2d - gva through the guest's stage-1 tables (root at the guest-physical address of
// g1.root()) and stage 2, for a guest access of kind `access` at the privilege `user`.
// Returns the translation, or the first fault as the hardware reports it.
template <Format G1, TableEnv GE, Format F2, TableEnv E2>
Translation2d translate_2d(const PageTable<G1, GE>& g1, const PageTable<F2, E2>& s2,
                           uint64_t gva, mm::Access access, bool user = false) {
  static_assert(stage_of<F2>() == 2, "the second dimension is a stage-2 format");
  Translation2d r;
  if (!G1::canonical(gva) || !g1.has_root()) {
    r.fault = Fault2d::translation;
    r.stage = 1;
    r.level = G1::levels - 1;
    return r;
  }
  uint64_t table = g1.root();  // a guest-physical address
  for (unsigned level = G1::levels; level-- > 0;) {
    // The walk reads the entry in guest memory: stage 2 first translates the table's page.
    const uint64_t slot_gpa = table + (uint64_t{index_of<G1>(gva, level)} << 3);
    Translation2d t = detail2d::stage2(s2, slot_gpa, mm::Access::read);
    if (t.fault != Fault2d::none) {
      t.s1ptw = true;
      return t;
    }
    const uint64_t raw = PageTable<G1, GE>::load(g1.table(table) + index_of<G1>(gva, level));
    if (G1::is_table(raw, level)) {
      table = G1::out_addr(raw, level);
      continue;
    }
    if (!G1::is_leaf(raw, level)) {
      r.fault = Fault2d::translation;
      r.stage = 1;
      r.level = level;
      return r;
    }
    const Entry e = G1::decode(raw, level);
    const bool ok = (!user || e.prot.user) &&
                    (access == mm::Access::read    ? e.prot.read
                     : access == mm::Access::write ? e.prot.write
                                                   : e.prot.exec);
    if (!ok) {
      r.fault = Fault2d::permission;
      r.stage = 1;
      r.level = level;
      return r;
    }
    const unsigned s = G1::leaf_shift(raw, level);
    const uint64_t gpa = G1::out_addr(raw, level) + (gva & (bit(s) - 1));
    Translation2d d = detail2d::stage2(s2, gpa, access);
    d.s1_shift = G1::shift(level);
    return d;
  }
  return r;  // not reached: level 0 holds leaves only
}

}  // namespace hugepte::kvm
