// hugepte/arch/arm64_s2.hpp - AArch64 stage-2 translation table entries (VMSAv8-64, the
// IPA -> PA tables of the EL1&0 regime that VTTBR_EL2 points to), as KVM builds them.
//
// Sources: Arm ARM (DDI 0487) D8 (stage 2 descriptors, S2AP, MemAttr with and without
// FEAT_S2FWB, XN[1:0] with FEAT_XNX, the start level and concatenated tables, FEAT_HAFDBS at
// stage 2); Linux's arch/arm64/kvm/hyp/pgtable.c and asm/kvm_pgtable.h for what KVM writes
// (KVM_PTE_LEAF_ATTR_*, KVM_INVALID_PTE_LOCKED, kvm_get_vtcr's geometry).
//
// Geometry (KVM's rule, kvm_get_vtcr): an IPA of IpaBits bits is walked with
// ARM64_HW_PGTABLE_LEVELS(IpaBits - 4) levels, at least 2, so the root resolves up to 4 bits
// more than a table holds: up to 16 concatenated tables, naturally aligned (a 40-bit IPA with
// 4K pages starts at Arm level 1 with 2 tables; with 16K pages at level 2 with 16). Level
// numbering as everywhere: 0 = the page level (Arm level 3).
//
// Descriptor bits of a leaf (block or page):
//   0 valid, 1 type (1 = page at level 0 / table above, 0 = block), 5:2 MemAttr, 7:6 S2AP
//   (6 read, 7 write), 9:8 SH, 10 AF, 11 FnXS (kept), OA, 51 DBM, 52 Contiguous, 54:53 XN[1:0]
//   (FEAT_XNX), 58:55 software (KVM_PGTABLE_PROT_SW0..3, kept), 63:59 PBHA/ignored (kept).
// A table descriptor has no attributes at stage 2: every bit but the type and the next-level
// address is ignored by the walk and travels in Entry::keep.
//
// Vocabulary:
//   prot.read/write = S2AP; prot.exec = XN lets EL1 fetch; s2.user_exec = XN lets EL0 fetch
//   (00 both, 01 EL0 only, 10 neither, 11 EL1 only); prot.user stays false (stage 2 has no
//   user/privileged split for data). writable = S2AP[1] or DBM; dirty = DBM and S2AP[1] (with
//   VTCR_EL2.HD the walker sets S2AP[1] of a DBM leaf on a write: that is its dirty state).
//   So a writable leaf has three spellings: W (KVM's), DBM (clean, hardware-tracked), DBM|W
//   (hardware-dirty). accessed = AF. mem from MemAttr (below). SH is kept XOR inner-shareable
//   (what KVM writes), so keep == 0 is KVM's descriptor.
//   Memory attributes without FWB (MemAttr[3:2] outer, [1:0] inner): 1111 normal, 1010
//   write-through, 0101 non-cacheable, 0000 device (nGnRnE), 0001 device-nGnRE; with FWB
//   (MemAttr[2:0]; [3] kept): 110 normal (forced write-back), 101 non-cacheable, 000 device,
//   001 device-nGnRE. Other combinations translate but have no MemType (Device-nGRE/GRE, mixed
//   inner/outer cacheability, FWB's "use stage 1"): Kind::invalid, Reason::unrepresentable, a
//   KVM-convention judgment as AttrIndx 5..7 are at stage 1. Normal with inner 00 is reserved.
//   An entry with the valid bit clear is a translation fault to the hardware. KVM writes 0 there,
//   KVM_INVALID_PTE_LOCKED (bit 10) while a break-before-make is in progress (Kind::locked), and
//   pKVM owner annotations in bits 9:2 (Kind::none; the bits in keep).
//
// Not modelled: 52-bit IPAs/PAs (LPA, LPA2, start level -1), the 4K level-0 start with
// concatenation beyond 16 tables, FEAT_S2PIE/S2POE. pa_bits is 48.
//
// Freestanding, constexpr throughout.
#pragma once

#include "hugepte/arch/arm64.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/kvm/policy.hpp"

namespace hugepte {

namespace arm64 {

// Stage-2 leaf attributes (Arm ARM; KVM_PTE_LEAF_ATTR_LO_S2_*, _HI_S2_*).
inline constexpr unsigned kS2MemAttrLo = 2;
inline constexpr unsigned kS2MemAttrHi = 5;
inline constexpr uint64_t kS2ApR = bit(6);
inline constexpr uint64_t kS2ApW = bit(7);
inline constexpr uint64_t kS2FnXS = bit(11);
inline constexpr unsigned kS2XnLo = 53;  // XN[1:0] (FEAT_XNX)
inline constexpr unsigned kS2XnHi = 54;
inline constexpr uint64_t kS2Sw = mask(55, 58);
inline constexpr uint64_t kS2Ignored = mask(59, 63);
// KVM_INVALID_PTE_LOCKED: an invalid descriptor a thread holds during break-before-make.
inline constexpr uint64_t kS2Locked = bit(10);

// MemAttr values KVM writes (asm/memory.h MT_S2_*, MT_S2_FWB_*).
inline constexpr uint64_t kMtS2Normal = 0xf;
inline constexpr uint64_t kMtS2NormalWt = 0xa;
inline constexpr uint64_t kMtS2NormalNc = 0x5;
inline constexpr uint64_t kMtS2DeviceNGnRnE = 0x0;
inline constexpr uint64_t kMtS2DeviceNGnRE = 0x1;
inline constexpr uint64_t kMtS2FwbNormal = 0x6;
inline constexpr uint64_t kMtS2FwbNormalNc = 0x5;
inline constexpr uint64_t kMtS2FwbDeviceNGnRnE = 0x0;
inline constexpr uint64_t kMtS2FwbDeviceNGnRE = 0x1;

// MemAttr -> MemType; Reason::none when it names one.
constexpr Reason s2_memattr_to_mem(uint64_t attr, bool fwb, MemType& m) {
  if (fwb) {
    switch (attr & 7) {
      case 0: m = MemType::device; return Reason::none;
      case 1: m = MemType::device_nGnRE; return Reason::none;
      case 4: return Reason::reserved_memory_type;
      case 5: m = MemType::noncacheable; return Reason::none;
      case 6: m = MemType::normal; return Reason::none;
      default: return Reason::unrepresentable;  // Device-nGRE/GRE, "use stage 1"
    }
  }
  const uint64_t outer = attr >> 2, inner = attr & 3;
  if (outer == 0) {
    if (inner == 0) { m = MemType::device; return Reason::none; }
    if (inner == 1) { m = MemType::device_nGnRE; return Reason::none; }
    return Reason::unrepresentable;  // Device-nGRE, Device-GRE
  }
  if (inner == 0) return Reason::reserved_memory_type;
  if (outer != inner) return Reason::unrepresentable;  // mixed cacheability
  m = outer == 1 ? MemType::noncacheable : outer == 2 ? MemType::write_through : MemType::normal;
  return Reason::none;
}

// MemType -> MemAttr; false when stage 2 has no encoding for it.
constexpr bool s2_mem_to_memattr(MemType m, bool fwb, uint64_t& attr) {
  switch (m) {
    case MemType::normal: attr = fwb ? kMtS2FwbNormal : kMtS2Normal; return true;
    case MemType::noncacheable: attr = fwb ? kMtS2FwbNormalNc : kMtS2NormalNc; return true;
    case MemType::device: attr = fwb ? kMtS2FwbDeviceNGnRnE : kMtS2DeviceNGnRnE; return true;
    case MemType::device_nGnRE: attr = fwb ? kMtS2FwbDeviceNGnRE : kMtS2DeviceNGnRE; return true;
    case MemType::write_through:
      if (fwb) return false;  // FWB can force write-back only
      attr = kMtS2NormalWt;
      return true;
    case MemType::tagged:
    case MemType::write_protect: return false;
  }
  return false;
}

// KVM's stage-2 depth for an IPA size: ARM64_HW_PGTABLE_LEVELS(ipa - 4), at least 2.
constexpr unsigned s2_levels(unsigned granule, unsigned ipa) {
  const unsigned l = (ipa - 4 - 4) / (granule - 3);
  return l < 2 ? 2 : l;
}

struct S2ModeName {
  char s[24] = {};
};
constexpr S2ModeName s2_mode_name(unsigned granule, unsigned ipa, bool fwb) {
  S2ModeName n;
  unsigned k = 0;
  auto put = [&](const char* p) {
    while (*p) n.s[k++] = *p++;
  };
  put(granule == 12 ? "s2-4k" : granule == 14 ? "s2-16k" : "s2-64k");
  if (ipa != 40) {  // KVM's default IPA size (KVM_PHYS_SHIFT) needs no suffix
    put("-ipa");
    n.s[k++] = static_cast<char>('0' + ipa / 10);
    n.s[k++] = static_cast<char>('0' + ipa % 10);
  }
  if (fwb) put("-fwb");
  return n;
}

}  // namespace arm64

// One stage-2 format: GranuleShift 12, 14 or 16 (VTCR_EL2.TG0), IpaBits the IPA size
// (64 - VTCR_EL2.T0SZ), Fwb whether HCR_EL2.FWB selects FEAT_S2FWB's MemAttr encoding.
template <unsigned GranuleShift, unsigned IpaBits = 40, bool Fwb = false>
struct Arm64S2Format {
  static_assert(GranuleShift == 12 || GranuleShift == 14 || GranuleShift == 16,
                "granule must be 4K, 16K or 64K");
  static_assert(IpaBits >= 32 && IpaBits <= 48, "IPA sizes 32..48 (no 52-bit IPA)");

  static constexpr unsigned stage = 2;
  // KVM arm64 (arch/arm64/kvm/mmu.c, hyp/pgtable.c): retry on any invalidation, the unmap frees
  // emptied tables, SIGBUS lsb = vma_shift, blocks come back on later faults, THP only to PMD,
  // a split block leaves the rest to later faults, no eager split by default, write protection
  // clears S2AP[1] (no DBM), execute granted on an instruction fault, no flush after installing.
  static constexpr kvm::Policy kvm{true, true, true, kvm::Recovery::on_fault, 1, false,
                                   false, false, true, false, false};
  static constexpr bool fwb = Fwb;
  static constexpr const char* arch = "arm64";
  static constexpr arm64::S2ModeName kModeName = arm64::s2_mode_name(GranuleShift, IpaBits, Fwb);
  static constexpr const char* mode = kModeName.s;

  static constexpr unsigned kStride = GranuleShift - 3;
  static constexpr unsigned levels = arm64::s2_levels(GranuleShift, IpaBits);
  static constexpr unsigned va_bits = IpaBits;
  static constexpr unsigned pa_bits = 48;
  static constexpr unsigned page_shift = GranuleShift;

  static constexpr unsigned shift(unsigned level) { return GranuleShift + level * kStride; }
  static constexpr unsigned index_bits(unsigned level) {
    return level + 1 < levels ? kStride : IpaBits - shift(level);
  }
  static_assert(IpaBits - shift(levels - 1) >= 1 && IpaBits - shift(levels - 1) <= kStride + 4,
                "the start level resolves 1 .. stride+4 bits (at most 16 concatenated tables)");

  // The walk's start level in the Arm ARM's numbering, and the VTCR_EL2 fields that select it
  // (SL0: 4K counts 2 - level, 16K/64K 3 - level), for the code that programs the registers.
  static constexpr unsigned arm_start_level = 4 - levels;
  static constexpr unsigned vtcr_sl0 =
      GranuleShift == 12 ? 2 - arm_start_level : 3 - arm_start_level;
  static constexpr unsigned vtcr_t0sz = 64 - IpaBits;
  static constexpr unsigned vtcr_tg0 = GranuleShift == 12 ? 0 : GranuleShift == 16 ? 1 : 2;

  // Pages at level 0; blocks at level 1 for every granule and at level 2 with 4K (1 GiB); no
  // larger blocks without 52-bit addressing.
  static constexpr bool leaf_ok(unsigned level) {
    if (level >= levels) return false;
    return level <= 1 || (level == 2 && GranuleShift == 12);
  }
  static constexpr unsigned cont_shift(unsigned level) {
    if (level == 0) return shift(0) + arm64::cont_pte_bits(GranuleShift);
    if (level == 1 && levels > 1) return shift(1) + arm64::cont_pmd_bits(GranuleShift);
    return 0;
  }
  static constexpr bool canonical(uint64_t ipa) { return (ipa >> IpaBits) == 0; }

  // VTCR_EL2.HA (KVM sets it) and HD with DBM: the walker sets AF, and S2AP[1] of a DBM leaf.
  static constexpr AdCaps ad_caps{true, true, DirtyModel::dbm_s2ap};

  static constexpr uint64_t kTypeMask = arm64::kValid | arm64::kTableOrPage;
  static constexpr uint64_t kMemAttrMask = mask(arm64::kS2MemAttrLo, arm64::kS2MemAttrHi);
  static constexpr uint64_t kShMask = mask(arm64::kShLo, arm64::kShHi);
  static constexpr uint64_t kXnMask = mask(arm64::kS2XnLo, arm64::kS2XnHi);
  static constexpr uint64_t kGranuleOa = mask(GranuleShift, arm64::kOaHi);
  static constexpr uint64_t oa_mask(unsigned s) { return mask(s, arm64::kOaHi); }
  static constexpr uint64_t kSubGranule = GranuleShift > 12 ? mask(12, GranuleShift - 1) : 0;
  static constexpr uint64_t leaf_ignored(unsigned level) {
    return mask(48, 50) | kSubGranule | (level > 0 ? mask(GranuleShift, shift(level) - 1) : 0);
  }
  static constexpr uint64_t leaf_keep_mask(unsigned level) {
    uint64_t m = kShMask | arm64::kS2FnXS | arm64::kS2Sw | arm64::kS2Ignored | leaf_ignored(level);
    if (cont_shift(level) == 0) m |= arm64::kContiguous;
    if (Fwb) m |= bit(arm64::kS2MemAttrHi);  // MemAttr[3] is ignored under FWB
    return m;
  }
  static constexpr uint64_t kLeafKeepFlip = arm64::kShInner << arm64::kShLo;
  static constexpr uint64_t kTableKeep = ~(kGranuleOa | kTypeMask);

  static constexpr Reason leaf_problem(uint64_t raw, unsigned level) {
    if (!leaf_ok(level)) return Reason::leaf_not_allowed;
    MemType m{};
    return arm64::s2_memattr_to_mem(field(raw, arm64::kS2MemAttrLo, arm64::kS2MemAttrHi), Fwb, m);
  }

  static constexpr bool is_table(uint64_t raw, unsigned level) {
    return level > 0 && level < levels && (raw & kTypeMask) == kTypeMask;
  }
  static constexpr bool is_leaf(uint64_t raw, unsigned level) {
    const uint64_t want = level == 0 ? kTypeMask : arm64::kValid;
    return (raw & kTypeMask) == want && leaf_problem(raw, level) == Reason::none;
  }
  static constexpr unsigned leaf_shift(uint64_t, unsigned level) { return shift(level); }
  static constexpr uint64_t out_addr(uint64_t raw, unsigned level) {
    return raw & ((level == 0 || (raw & arm64::kTableOrPage)) ? kGranuleOa : oa_mask(shift(level)));
  }
  // KVM's table descriptor: the address and the type bits (kvm_init_table_pte).
  static constexpr uint64_t make_table(uint64_t pa, unsigned) { return (pa & kGranuleOa) | kTypeMask; }

  static constexpr uint64_t group_entry(uint64_t raw0, unsigned level, unsigned i) {
    if (!(raw0 & arm64::kValid) || (level > 0 && (raw0 & kTypeMask) == kTypeMask)) return raw0;
    const uint64_t oa = oa_mask(shift(level));
    return (raw0 & ~oa) | (((raw0 & oa) + (uint64_t{i} << shift(level))) & oa);
  }
  static constexpr uint64_t with_pa(uint64_t raw, unsigned level, uint64_t pa) {
    return (raw & ~oa_mask(shift(level))) | pa;
  }
  static constexpr bool is_locked(uint64_t raw) {
    return (raw & (arm64::kValid | arm64::kS2Locked)) == arm64::kS2Locked;
  }

  // Arm ARM D8.16 and KVM's stage2_pte_needs_update: a live descriptor changing its output
  // address, its type (block <-> table), Contiguous, MemAttr or shareability goes through
  // invalid + TLBI IPAS2E1IS (+ VMALLE1IS). Permissions, AF, DBM and software bits change in
  // place (kvm_pgtable_stage2_relax_perms, mkyoung).
  static constexpr bool needs_bbm(uint64_t old_raw, uint64_t new_raw, unsigned level) {
    if (!(old_raw & arm64::kValid) || !(new_raw & arm64::kValid)) return false;
    const uint64_t diff = old_raw ^ new_raw;
    if (diff & (arm64::kTableOrPage | arm64::kContiguous | kMemAttrMask | kShMask)) return true;
    return out_addr(old_raw, level) != out_addr(new_raw, level);
  }

  static constexpr Entry decode(uint64_t raw, unsigned level) {
    Entry e;
    if (raw == 0) return e;
    e.shift = static_cast<uint8_t>(level < levels ? shift(level) : 0);
    auto invalid = [&e](Reason r) {
      e.kind = Kind::invalid;
      e.reason = r;
      return e;
    };
    if (level >= levels) return invalid(Reason::unrepresentable);
    if (!(raw & arm64::kValid)) {
      // A translation fault; KVM's locked value, or software annotations (pKVM owner ids).
      e.kind = (raw & arm64::kS2Locked) ? Kind::locked : Kind::none;
      e.keep = raw & ~(e.kind == Kind::locked ? arm64::kS2Locked : 0);
      return e;
    }
    if (raw & arm64::kTableOrPage) {
      if (level > 0) {
        e.kind = Kind::table;
        e.addr = raw & kGranuleOa;
        e.keep = raw & kTableKeep;
        return e;
      }
    } else if (level == 0) {
      return invalid(Reason::reserved_descriptor);  // 01 at Arm level 3
    }
    if (Reason r = leaf_problem(raw, level); r != Reason::none) return invalid(r);
    e.kind = Kind::leaf;
    e.addr = raw & oa_mask(shift(level));
    arm64::s2_memattr_to_mem(field(raw, arm64::kS2MemAttrLo, arm64::kS2MemAttrHi), Fwb, e.mem);
    const bool w = (raw & arm64::kS2ApW) != 0, dbm = (raw & arm64::kDBM) != 0;
    e.prot.read = (raw & arm64::kS2ApR) != 0;
    e.prot.write = w;
    const uint64_t xn = field(raw, arm64::kS2XnLo, arm64::kS2XnHi);
    e.prot.exec = xn == 0 || xn == 3;
    e.s2.user_exec = xn == 0 || xn == 1;
    e.writable = w || dbm;
    e.dirty = w && dbm;
    e.accessed = (raw & arm64::kAF) != 0;
    if ((raw & arm64::kContiguous) && cont_shift(level) != 0)
      e.cont_shift = static_cast<uint8_t>(cont_shift(level));
    e.keep = (raw ^ kLeafKeepFlip) & leaf_keep_mask(level);
    return e;
  }

  // Refuses (Err::einval) what decode would not give back: protnone, swap, marker and invalid
  // (no such entries at stage 2), a table at level 0 or with vocabulary fields, a leaf where
  // the level holds none, a misaligned or too wide address, a group size other than the
  // level's, a memory type MemAttr cannot name, writable without it being expressible
  // (prot.write && !writable, dirty && !prot.write, dirty && !writable), prot.user, global,
  // stage-1 software bits, EPT-only stage-2 fields, keep bits outside the kind's mask.
  static constexpr Result<uint64_t> encode(const Entry& e, unsigned level) {
    if (level >= levels) return Err::einval;
    if (e.shift != 0 && e.shift != shift(level)) return Err::einval;
    if (stage1_fields_set(e)) return Err::einval;
    switch (e.kind) {
      case Kind::none:
      case Kind::locked: {
        const uint64_t lock = e.kind == Kind::locked ? arm64::kS2Locked : 0;
        if (e.keep & (arm64::kValid | lock)) return Err::einval;
        return encode_checked<Arm64S2Format>(e.keep | lock, e, level);
      }
      case Kind::table:
        if (level == 0 || !aligned(e.addr, GranuleShift) || (e.addr >> (arm64::kOaHi + 1)))
          return Err::einval;
        if (e.keep & ~kTableKeep) return Err::einval;
        if (e != Entry{.kind = Kind::table, .addr = e.addr, .shift = e.shift, .keep = e.keep})
          return Err::einval;
        return e.addr | e.keep | kTypeMask;
      case Kind::leaf:
        return encode_leaf(e, level);
      default:
        return Err::einval;
    }
  }

 private:
  static constexpr Result<uint64_t> encode_leaf(const Entry& e, unsigned level) {
    if (!leaf_ok(level)) return Err::einval;
    if (!aligned(e.addr, shift(level)) || (e.addr >> (arm64::kOaHi + 1))) return Err::einval;
    if (e.cont_shift != 0 && e.cont_shift != cont_shift(level)) return Err::einval;
    if (e.s2.ignore_pat || e.s2.host_writable) return Err::einval;
    if (e.prot.write && !e.writable) return Err::einval;  // S2AP[1] is writable by definition
    if (e.dirty && !(e.writable && e.prot.write)) return Err::einval;
    uint64_t attr = 0;
    if (!arm64::s2_mem_to_memattr(e.mem, Fwb, attr)) return Err::einval;
    if (e.keep & ~leaf_keep_mask(level)) return Err::einval;
    uint64_t raw = e.addr | (attr << arm64::kS2MemAttrLo);
    raw |= level == 0 ? kTypeMask : arm64::kValid;
    if (e.prot.read) raw |= arm64::kS2ApR;
    if (e.prot.write) raw |= arm64::kS2ApW;
    // W alone is KVM's writable leaf; DBM without W is clean and hardware-tracked; both is
    // hardware-dirty.
    if (e.writable && (!e.prot.write || e.dirty)) raw |= arm64::kDBM;
    const uint64_t xn = e.prot.exec ? (e.s2.user_exec ? 0 : 3) : (e.s2.user_exec ? 1 : 2);
    raw |= xn << arm64::kS2XnLo;
    if (e.accessed) raw |= arm64::kAF;
    if (e.cont_shift != 0) raw |= arm64::kContiguous;
    raw |= (e.keep ^ kLeafKeepFlip) & leaf_keep_mask(level);
    return raw;
  }
};

using Arm64S2_4K = Arm64S2Format<12>;
using Arm64S2_16K = Arm64S2Format<14>;
using Arm64S2_64K = Arm64S2Format<16>;

static_assert(Format<Arm64S2_4K>);
static_assert(format_ok<Arm64S2_4K>(), "arm64 stage-2 4K is unsound");
static_assert(format_ok<Arm64S2_16K>(), "arm64 stage-2 16K is unsound");
static_assert(format_ok<Arm64S2_64K>(), "arm64 stage-2 64K is unsound");

using Arm64Stage2Formats = TypeList<Arm64S2_4K, Arm64S2_16K, Arm64S2_64K,
                                    Arm64S2Format<12, 40, true>, Arm64S2Format<14, 40, true>,
                                    Arm64S2Format<16, 40, true>>;

}  // namespace hugepte
