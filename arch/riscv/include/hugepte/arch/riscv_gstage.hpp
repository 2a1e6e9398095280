// hugepte/arch/riscv_gstage.hpp - RISC-V G-stage (hypervisor extension) page-table entries:
// Sv39x4, Sv48x4 and Sv57x4, the guest-physical to host-physical tables hgatp points to.
//
// Sources: the RISC-V privileged specification, chapter "Hypervisor Extension", section
// "Two-Stage Address Translation" (hgatp, the x4 modes, guest-page faults) together with the
// Sv39/Sv48/Sv57 PTE format it reuses and the Svnapot/Svpbmt chapters; Linux's riscv KVM
// (arch/riscv/kvm/gstage.c, mmu.c) for what KVM writes.
//
// Geometry: the Sv39/48/57 tables with two more guest-physical bits resolved at the root: the
// root table is 16 KiB (2048 entries, 16 KiB aligned; hgatp.PPN[1:0] are taken as zero), every
// other table 4 KiB. GPA widths 41, 50 and 59 bits; the bits above must be zero, or the access
// takes a guest-page fault (GPAs are not sign-extended).
//
// The PTE is the stage-1 PTE (riscv.hpp) with the stage-2 rules:
//   - every G-stage access counts as a U-mode access: a leaf with U=0 faults on every access
//     (decode: Kind::invalid, Reason::user_access_required). The vocabulary's prot.user stays
//     false at stage 2 and encode always writes U=1;
//   - G is not used by the G-stage: kept raw in Entry::keep (KVM writes 0);
//   - RSW[1:0] are free for software; KVM uses neither: kept raw;
//   - D, A, U, PBMT and N are reserved in a pointer to the next level, as at stage 1;
//   - Svnapot (64 KiB groups at level 0) and Svpbmt apply at this stage too.
// Linux's stage-1 software conventions (PROT_NONE, swap entries, markers) do not exist here: an
// entry with V=0 is a guest-page fault to the hardware and empty to KVM (Kind::none; any bits
// it holds travel in keep). KVM's G-stage updates run under the write side of mmu_lock, so there
// is no locked value either.
//
// Vocabulary: prot = R/W/X; s2.user_exec = X (the G-stage has no user/supervisor split);
// writable = W (one write bit holds both); accessed = A; dirty = D; mem from PBMT. KVM sets A
// and D on every mapping it creates (so Svade hardware never faults on them) and write-protects
// for dirty logging.
//
// Freestanding, constexpr throughout.
#pragma once

#include "hugepte/arch/riscv.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/kvm/policy.hpp"

namespace hugepte {

namespace riscv {

// hgatp.MODE values (bits 63:60) for the x4 modes.
inline constexpr uint64_t kHgatpSv39x4 = 8;
inline constexpr uint64_t kHgatpSv48x4 = 9;
inline constexpr uint64_t kHgatpSv57x4 = 10;
// The root resolves two more bits than a stage-1 root (kvm_riscv_gstage_pgd_xbits).
inline constexpr unsigned kGstageRootXbits = 2;

namespace detail {
constexpr ModeName gstage_mode_name(unsigned levels, bool napot, bool pbmt) {
  ModeName n;
  unsigned k = 0;
  auto put = [&](const char* p) {
    while (*p) n.s[k++] = *p++;
  };
  put(levels == 3 ? "sv39x4" : levels == 4 ? "sv48x4" : "sv57x4");
  if (!napot) put("-nonapot");
  if (!pbmt) put("-nopbmt");
  return n;
}
}  // namespace detail

}  // namespace riscv

template <unsigned Levels, bool Svnapot = true, bool Svpbmt = true>
struct RiscvGstageFormat {
  static_assert(Levels >= 3 && Levels <= 5, "G-stage modes are Sv39x4, Sv48x4 and Sv57x4");

  static constexpr unsigned stage = 2;
  // KVM riscv (arch/riscv/kvm/mmu.c, gstage.c): retry on any invalidation, the unmap frees
  // emptied tables, SIGBUS lsb = vma_pageshift, no huge-page recovery, THP only to PMD, huge
  // leaves split in line keeping the rest, eager split on, W is the only write bit, RAM
  // executable, a flush after every install (no Svvptc assumed), A and D set on creation.
  static constexpr kvm::Policy kvm{true, true, true, kvm::Recovery::none, 1, true,
                                   true, false, false, true, true};
  static constexpr bool svnapot = Svnapot;
  static constexpr bool svpbmt = Svpbmt;
  static constexpr const char* arch = "riscv64";
  static constexpr riscv::detail::ModeName kModeName =
      riscv::detail::gstage_mode_name(Levels, Svnapot, Svpbmt);
  static constexpr const char* mode = kModeName.s;
  // What goes into hgatp.MODE.
  static constexpr uint64_t hgatp_mode = riscv::kHgatpSv39x4 + (Levels - 3);

  static constexpr unsigned levels = Levels;
  static constexpr unsigned page_shift = 12;
  static constexpr unsigned kIndexBits = 9;
  static constexpr unsigned va_bits = page_shift + kIndexBits * Levels + riscv::kGstageRootXbits;
  static constexpr unsigned pa_bits = 56;

  static constexpr unsigned shift(unsigned level) { return page_shift + kIndexBits * level; }
  static constexpr unsigned index_bits(unsigned level) {
    return level + 1 == Levels ? kIndexBits + riscv::kGstageRootXbits : kIndexBits;
  }
  static constexpr bool leaf_ok(unsigned level) { return level < levels; }
  static constexpr unsigned cont_shift(unsigned level) {
    return Svnapot && level == 0 ? riscv::kNapotShift : 0;
  }
  // Guest-physical addresses are zero-extended: the bits above va_bits must be zero.
  static constexpr bool canonical(uint64_t gpa) { return (gpa >> va_bits) == 0; }

  // QEMU and Svadu hardware set A and D; KVM sets both when it maps anyway.
  static constexpr AdCaps ad_caps{true, true, DirtyModel::hw_d};

  // The PTE rules are the stage-1 PTE's (without Svrsw60t59b: Linux's KVM does not enable it at
  // the G-stage, so bits 54-60 are reserved), plus U on every leaf.
  using Stage1 = RiscvFormat<Levels, Svnapot, Svpbmt>;
  static constexpr uint64_t kLeafKeep = riscv::kG | riscv::kRsw0 | riscv::kRsw1;
  static constexpr uint64_t kTableKeep = riscv::kG | riscv::kRsw0 | riscv::kRsw1;

  static constexpr Reason leaf_problem(uint64_t raw, unsigned level) {
    if (const Reason r = Stage1::leaf_problem(raw, level); r != Reason::none) return r;
    return (raw & riscv::kU) ? Reason::none : Reason::user_access_required;
  }
  static constexpr Reason table_problem(uint64_t raw, unsigned level) {
    return Stage1::table_problem(raw, level);
  }
  static constexpr bool is_table(uint64_t raw, unsigned level) {
    return Stage1::is_table(raw, level);
  }
  static constexpr bool is_leaf(uint64_t raw, unsigned level) {
    return Stage1::is_leaf(raw, level) && (raw & riscv::kU);
  }
  static constexpr unsigned leaf_shift(uint64_t raw, unsigned level) {
    return Stage1::leaf_shift(raw, level);
  }
  static constexpr uint64_t out_addr(uint64_t raw, unsigned level) {
    return (raw & riscv::kV) ? Stage1::out_addr(raw, level) : 0;
  }
  // KVM's pointer to the next level: V and the PPN (gstage.c, _PAGE_TABLE), as Linux's.
  static constexpr uint64_t make_table(uint64_t pa, unsigned level) {
    return Stage1::make_table(pa, level);
  }
  static constexpr uint64_t group_entry(uint64_t raw0, unsigned, unsigned) { return raw0; }
  static constexpr uint64_t with_pa(uint64_t raw, unsigned level, uint64_t pa) {
    return Stage1::with_pa(raw, level, pa);
  }
  // The stage-1 rule (riscv.hpp): one store and an HFENCE.GVMA replace a single PTE; a NAPOT
  // group changing N, its output address or PBMT goes through invalid first.
  static constexpr bool needs_bbm(uint64_t old_raw, uint64_t new_raw, unsigned level) {
    return Stage1::needs_bbm(old_raw, new_raw, level);
  }

  static constexpr Entry decode(uint64_t raw, unsigned level) {
    Entry e;
    if (raw == 0) return e;
    e.shift = static_cast<uint8_t>(level < levels ? shift(level) : 0);
    if (level >= levels) return invalid(e, Reason::unrepresentable);
    if (!(raw & riscv::kV)) {  // a guest-page fault; nothing KVM writes
      e.keep = raw;
      return e;
    }
    if (!(raw & riscv::kRwx)) {
      const Reason r = table_problem(raw, level);
      if (r != Reason::none) return invalid(e, r);
      e.kind = Kind::table;
      e.addr = out_addr(raw, level);
      e.keep = raw & kTableKeep;
      return e;
    }
    const Reason r = leaf_problem(raw, level);
    if (r != Reason::none) return invalid(e, r);
    e.kind = Kind::leaf;
    e.addr = out_addr(raw, level);
    e.cont_shift = static_cast<uint8_t>((raw & riscv::kN) ? riscv::kNapotShift : 0);
    e.prot = Prot{(raw & riscv::kR) != 0, (raw & riscv::kW) != 0, (raw & riscv::kX) != 0, false};
    e.s2.user_exec = e.prot.exec;
    e.writable = e.prot.write;
    e.mem = memtype_of(raw);
    e.accessed = (raw & riscv::kA) != 0;
    e.dirty = (raw & riscv::kD) != 0;
    e.keep = raw & kLeafKeep;
    return e;
  }

  // Refuses (Err::einval) what decode would not give back: kinds the G-stage has no encoding
  // for (protnone, swap, marker, locked, invalid), a table at level 0 or with anything but an
  // address and keep bits, a leaf without R/W/X or with W but not R, writable != prot.write,
  // user_exec != exec, prot.user or global or stage-1 software bits set, an unaligned or too
  // wide address, a group other than 64 KiB NAPOT at level 0, a memory type PBMT cannot name,
  // keep bits outside the kind's keep mask.
  static constexpr Result<uint64_t> encode(const Entry& e, unsigned level) {
    if (level >= levels) return Err::einval;
    if (e.shift != 0 && e.shift != shift(level)) return Err::einval;
    if (stage1_fields_set(e)) return Err::einval;
    switch (e.kind) {
      case Kind::none:  // 0, or what a V=0 entry held (keep)
        if (e.keep & riscv::kV) return Err::einval;
        return encode_checked<RiscvGstageFormat>(e.keep, e, level);
      case Kind::table:
        if (level == 0) return Err::einval;
        if (e.prot != Prot{} || e.writable || e.accessed || e.dirty || e.cont_shift != 0 ||
            e.mem != MemType::normal || e.s2 != Stage2{})
          return Err::einval;
        if (!aligned(e.addr, page_shift) || !fits_pa(e.addr)) return Err::einval;
        if (e.keep & ~kTableKeep) return Err::einval;
        return riscv::kV | ppn_bits(e.addr) | e.keep;
      case Kind::leaf:
        return encode_leaf(e, level);
      default:
        return Err::einval;
    }
  }

 private:
  static constexpr Entry invalid(Entry e, Reason r) {
    e.kind = Kind::invalid;
    e.reason = r;
    return e;
  }
  static constexpr bool fits_pa(uint64_t addr) { return (addr >> pa_bits) == 0; }
  static constexpr uint64_t ppn_bits(uint64_t addr) {
    return ((addr >> page_shift) << riscv::kPpnLo) & riscv::kPpn;
  }
  static constexpr MemType memtype_of(uint64_t raw) {
    switch (static_cast<riscv::Pbmt>(field(raw, riscv::kPbmtLo, riscv::kPbmtHi))) {
      case riscv::Pbmt::nc: return MemType::noncacheable;
      case riscv::Pbmt::io: return MemType::device;
      default: return MemType::normal;
    }
  }

  static constexpr Result<uint64_t> encode_leaf(const Entry& e, unsigned level) {
    const Prot& p = e.prot;
    if (p.write && !p.read) return Err::einval;
    if (!(p.read || p.write || p.exec)) return Err::einval;  // that would be a table
    if (e.writable != p.write) return Err::einval;
    if (e.s2.user_exec != p.exec || e.s2.ignore_pat || e.s2.host_writable) return Err::einval;
    uint64_t raw = riscv::kV | riscv::kU;
    unsigned align = shift(level);
    if (e.cont_shift != 0) {
      if (!Svnapot || level != 0 || e.cont_shift != riscv::kNapotShift) return Err::einval;
      align = riscv::kNapotShift;
      raw |= riscv::kN | (riscv::kNapotPattern << riscv::kPpnLo);
    }
    if (!aligned(e.addr, align) || !fits_pa(e.addr)) return Err::einval;
    switch (e.mem) {
      case MemType::normal: break;
      case MemType::noncacheable:
        if (!Svpbmt) return Err::einval;
        raw |= uint64_t(riscv::Pbmt::nc) << riscv::kPbmtLo;
        break;
      case MemType::device:
        if (!Svpbmt) return Err::einval;
        raw |= uint64_t(riscv::Pbmt::io) << riscv::kPbmtLo;
        break;
      default: return Err::einval;
    }
    if (e.keep & ~kLeafKeep) return Err::einval;
    raw |= ppn_bits(e.addr) | e.keep;
    if (p.read) raw |= riscv::kR;
    if (p.write) raw |= riscv::kW;
    if (p.exec) raw |= riscv::kX;
    if (e.accessed) raw |= riscv::kA;
    if (e.dirty) raw |= riscv::kD;
    return raw;
  }
};

using Sv39x4 = RiscvGstageFormat<3>;
using Sv48x4 = RiscvGstageFormat<4>;
using Sv57x4 = RiscvGstageFormat<5>;

static_assert(Format<Sv39x4>);
static_assert(format_ok<Sv39x4>(), "Sv39x4 is unsound");
static_assert(format_ok<Sv48x4>(), "Sv48x4 is unsound");
static_assert(format_ok<Sv57x4>(), "Sv57x4 is unsound");

using RiscvStage2Formats = TypeList<Sv39x4, Sv48x4, Sv57x4>;

}  // namespace hugepte
