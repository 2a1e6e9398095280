// hugepte/arch/arm64.hpp - AArch64 stage-1 translation table entries (VMSAv8-64), as Linux uses
// them: one format per translation granule x input address size.
//
// Sources: Arm ARM (DDI 0487) chapter D8 "The AArch64 Virtual Memory System Architecture" for the
// hardware rules; Linux arch/arm64 (pgtable-hwdef.h, pgtable-prot.h, pgtable.h) for the software
// conventions (PTE_WRITE == DBM, PTE_DIRTY, PTE_SPECIAL, PTE_UFFD_WP, PTE_PRESENT_INVALID, swap
// layout). docs/porting.md maps arm64's hugetlb overrides (arch/arm64/mm/hugetlbpage.c) onto the
// generic code and this format's hooks; docs/design.md describes the Format concept.
//
// Level numbering: hugepte counts 0 = PTE upwards; the Arm ARM counts from the root down to
// level 3 = page. Our level l is Arm level 3 - l (arm_level()).
//
// What the vocabulary does not model, and where it goes:
//   * leaves: NS, SH[1:0], nT (blocks), GP, the execute-never bit of the *other* exception level,
//     PBHA/POIndex (59-62), bit 57 (ex PTE_DEVMAP), bit 63, and Contiguous at a level without a
//     Linux contiguous size (4K level-1 blocks). They travel in Entry.keep at their raw positions,
//     but SH and the other XN bit are stored XOR Linux's default (SH = inner shareable, other
//     level may not execute), so that keep == 0 yields what Linux writes for every mapping.
//   * tables: every attribute and IGNORED bit (AF with FEAT_HAFT, PXNTable, UXNTable, APTable,
//     NSTable, software bits) goes to Entry.keep raw; Entry.prot stays empty for tables.
//   * bits the walk ignores in and around the output address field (below): Entry.keep, raw.
//
// RES0 bits around the output address follow the walk, not the letter of "RES0". The Arm ARM
// pseudocode takes a leaf's OA as Align(desc[47:0], block size) (AArch64.LeafBase) and a table's
// as desc[47:granule] (AArch64.NextTableBase); on a 48-bit CPU without TCR.DS nothing else of
// those bits is looked at, and QEMU's walker (target/arm/ptw.c, get_phys_addr_lpae: descriptor
// & MAKE_64BIT_MASK(0, 48) & ~(granule - 1), then & ~(block size - 1) for a block) does the
// same, as the in-guest test format_hw checks. So none of these makes a descriptor invalid:
//   * bits[49:48] of leaves, bits[50:48] of tables (OA[49:48] only under FEAT_LPA2, TCR.DS=1);
//   * 16K bits[13:12] (RES0 below the granule);
//   * 64K bits[15:12] (OA[51:48] only with FEAT_LPA; this format models 48-bit outputs and the
//     harness never programs TCR.IPS above 48 bits, where QEMU 7.2 ignores them. Caveat: the
//     current pseudocode takes them as OA[51:48] whenever PAMax is 52, whatever IPS says, which
//     with IPS = 48 bits would be an Address size fault on such a CPU);
//   * a block's bits[block_shift-1:granule] (RES0 except nT at bit 16; the walk aligns the OA
//     down to the block size).
// decode reports the masked, aligned address and carries those bits in Entry.keep so that
// decode -> encode reproduces the raw value exactly; encode still refuses an Entry whose addr is
// misaligned for its level (Err::einval: in the vocabulary that is a caller error).
// What stays Kind::invalid: bits[1:0] = 01 at Arm level 3 and blocks at levels that cannot hold
// them (the walk faults on both), and AttrIndx 5..7 (the walk translates with whatever MAIR
// holds there; Linux never programs those indices, so the vocabulary has no MemType for them:
// Reason::unrepresentable is a Linux-convention judgment, not a hardware fault).
//
// Not supported: 52-bit addresses (4K/16K FEAT_LPA2, 64K FEAT_LPA/LVA). pa_bits is 48.
// Without 52-bit support, 16K and 64K have no level-1 blocks and 4K has no level-0 blocks.
// Caveat for real hardware: the Arm ARM (BlockDescSupported) lets a CPU whose PAMax is 52
// (FEAT_LPA, e.g. QEMU -cpu max) accept 64K level-1 (4TB) blocks whatever TCR.IPS says; this
// format models a 48-bit CPU and decodes them as Reason::leaf_not_allowed (Linux never writes one).
//
// Freestanding: no heap, no exceptions, everything constexpr.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"

namespace hugepte {

namespace arm64 {

// --- Descriptor bits (Arm ARM D8.3, with Linux's names in the comments) ----------------------

inline constexpr uint64_t kValid = bit(0);        // PTE_VALID
inline constexpr uint64_t kTableOrPage = bit(1);  // PTE_TABLE_BIT: 1 = table (levels 0-2) or page
                                             // (level 3); 0 with kValid = block
inline constexpr unsigned kAttrIndxLo = 2;   // AttrIndx[2:0] (PTE_ATTRINDX): MAIR index
inline constexpr unsigned kAttrIndxHi = 4;
inline constexpr uint64_t kNS = bit(5);           // NS (only meaningful in Secure state)
inline constexpr uint64_t kAP1 = bit(6);          // AP[1]: EL0 may access (PTE_USER)
inline constexpr uint64_t kAP2 = bit(7);          // AP[2]: read-only (PTE_RDONLY)
inline constexpr unsigned kShLo = 8;         // SH[1:0] (PTE_SHARED)
inline constexpr unsigned kShHi = 9;
inline constexpr uint64_t kShInner = 3;           // Inner Shareable, what Linux writes everywhere
inline constexpr uint64_t kAF = bit(10);          // access flag (PTE_AF)
inline constexpr uint64_t kNG = bit(11);          // not global (PTE_NG); with kValid clear, Linux's
                                             // PTE_PRESENT_INVALID
inline constexpr uint64_t kNT = bit(16);          // nT, block descriptors only (FEAT_BBM); kept
                                             // with the other low bits of a block (below)
inline constexpr uint64_t kGP = bit(50);          // guarded page (FEAT_BTI, PTE_GP)
inline constexpr uint64_t kDBM = bit(51);         // dirty bit modifier; Linux's PTE_WRITE
inline constexpr uint64_t kContiguous = bit(52);  // PTE_CONT
inline constexpr uint64_t kPXN = bit(53);         // privileged execute-never
inline constexpr uint64_t kUXN = bit(54);         // unprivileged execute-never (PTE_UXN)
inline constexpr uint64_t kSwDirty = bit(55);     // Linux PTE_DIRTY (software dirty)
inline constexpr uint64_t kSwSpecial = bit(56);   // Linux PTE_SPECIAL
inline constexpr uint64_t kSwBit57 = bit(57);     // ex PTE_DEVMAP; software-ignored, kept
inline constexpr uint64_t kSwUffdWp = bit(58);    // Linux PTE_UFFD_WP
inline constexpr uint64_t kPBHA = mask(59, 62);   // PBHA / POIndex
inline constexpr uint64_t kSwBit63 = bit(63);     // IGNORED by hardware

// Table descriptor attributes (hierarchical controls; stage 1).
inline constexpr uint64_t kTableAF = bit(10);     // AF in a table descriptor (FEAT_HAFT)
inline constexpr uint64_t kPXNTable = bit(59);
inline constexpr uint64_t kUXNTable = bit(60);
inline constexpr uint64_t kAPTable = mask(61, 62);
inline constexpr uint64_t kNSTable = bit(63);

// The output address is bits [47:granule] (48-bit OA).
inline constexpr unsigned kOaHi = 47;

// Linux's swap-format PTE (valid = 0, PRESENT_INVALID = 0).
inline constexpr uint64_t kSwpExclusive = bit(2);  // PTE_SWP_EXCLUSIVE
inline constexpr uint64_t kSwpUffdWp = bit(3);     // PTE_SWP_UFFD_WP
inline constexpr unsigned kSwpTypeLo = 6;     // __SWP_TYPE_SHIFT, 5 bits
inline constexpr unsigned kSwpTypeHi = 10;
inline constexpr unsigned kSwpOffsetLo = 12;  // __SWP_OFFSET_SHIFT, 50 bits
inline constexpr unsigned kSwpOffsetHi = 61;
inline constexpr unsigned kSwpOffsetBits = kSwpOffsetHi - kSwpOffsetLo + 1;

// AttrIndx values: Linux's MT_* order (arch/arm64/include/asm/memory.h since v5.10, with
// MT_NORMAL_WT and MT_DEVICE_GRE dropped later). MT_NORMAL must be 0 because Linux ORs
// MT_NORMAL_TAGGED into PROT_MTE mappings. The bare-metal harness writes the same order to
// MAIR_EL1 (kMair).
inline constexpr unsigned kMtNormal = 0;
inline constexpr unsigned kMtNormalTagged = 1;
inline constexpr unsigned kMtNormalNC = 2;
inline constexpr unsigned kMtDeviceNGnRnE = 3;
inline constexpr unsigned kMtDeviceNGnRE = 4;
inline constexpr unsigned kMtLast = kMtDeviceNGnRE;  // 5..7: not programmed by Linux

// MAIR_EL1 attribute bytes (Arm ARM, MAIR_EL1; Linux MAIR_EL1_SET in asm/sysreg.h): 0xff Normal
// Write-Back RW-allocate, 0xf0 Tagged Normal (only with FEAT_MTE2; Linux writes 0xff there
// until it enables MTE), 0x44 Normal Inner/Outer Non-cacheable, 0x00 Device-nGnRnE, 0x04
// Device-nGnRE. Indices 5..7 stay 0x00 and have no name in the vocabulary (decode:
// unrepresentable); MemType::write_through has no index (encode: Err::einval).
inline constexpr uint64_t kMair = (uint64_t{0xff} << (8 * kMtNormal)) |
                             (uint64_t{0xf0} << (8 * kMtNormalTagged)) |
                             (uint64_t{0x44} << (8 * kMtNormalNC)) |
                             (uint64_t{0x00} << (8 * kMtDeviceNGnRnE)) |
                             (uint64_t{0x04} << (8 * kMtDeviceNGnRE));

constexpr bool attrindx_to_mem(unsigned idx, MemType& m) {
  switch (idx) {
    case kMtNormal: m = MemType::normal; return true;
    case kMtNormalTagged: m = MemType::tagged; return true;
    case kMtNormalNC: m = MemType::noncacheable; return true;
    case kMtDeviceNGnRnE: m = MemType::device; return true;
    case kMtDeviceNGnRE: m = MemType::device_nGnRE; return true;
  }
  return false;
}

constexpr bool mem_to_attrindx(MemType m, unsigned& idx) {
  switch (m) {
    case MemType::normal: idx = kMtNormal; return true;
    case MemType::tagged: idx = kMtNormalTagged; return true;
    case MemType::noncacheable: idx = kMtNormalNC; return true;
    case MemType::device: idx = kMtDeviceNGnRnE; return true;
    case MemType::device_nGnRE: idx = kMtDeviceNGnRE; return true;
    case MemType::write_through: return false;  // Linux no longer programs Normal-WT
    case MemType::write_protect: return false;  // x86 only
  }
  return false;
}

// Entries per contiguous group, log2 (Arm ARM "The Contiguous bit"; Linux CONT_PTE_SHIFT /
// CONT_PMD_SHIFT): 4K 16/16, 16K 128/32, 64K 32/32 at Arm levels 3/2.
constexpr unsigned cont_pte_bits(unsigned granule) {
  return granule == 12 ? 4 : granule == 14 ? 7 : 5;
}
constexpr unsigned cont_pmd_bits(unsigned granule) { return granule == 12 ? 4 : 5; }

consteval const char* mode_name(unsigned granule, unsigned va) {
  if (granule == 12) return va == 39 ? "4k-39" : va == 48 ? "4k-48" : "4k-?";
  if (granule == 14)
    return va == 36 ? "16k-36" : va == 47 ? "16k-47" : va == 48 ? "16k-48" : "16k-?";
  return va == 42 ? "64k-42" : va == 48 ? "64k-48" : "64k-?";
}

}  // namespace arm64

// One AArch64 stage-1 format (TTBR0 half, EL1&0 regime). GranuleShift is 12, 14 or 16;
// VaBits is the input address size (64 - TCR_EL1.T0SZ).
template <unsigned GranuleShift, unsigned VaBits>
struct Arm64Format {
  static_assert(GranuleShift == 12 || GranuleShift == 14 || GranuleShift == 16,
                "granule must be 4K, 16K or 64K");
  static_assert(VaBits > GranuleShift && VaBits <= 48, "VaBits beyond 48 needs 52-bit support");

  static constexpr const char* arch = "arm64";
  static constexpr const char* mode = arm64::mode_name(GranuleShift, VaBits);

  // Each table is one granule of 8-byte descriptors: granule - 3 index bits per level.
  static constexpr unsigned kStride = GranuleShift - 3;
  static constexpr unsigned levels = (VaBits - GranuleShift + kStride - 1) / kStride;
  static constexpr unsigned va_bits = VaBits;
  static constexpr unsigned pa_bits = 48;  // no FEAT_LPA/LPA2 (see the file comment)
  static constexpr unsigned page_shift = GranuleShift;

  static constexpr int arm_level(unsigned level) { return 3 - static_cast<int>(level); }

  static constexpr unsigned shift(unsigned level) { return GranuleShift + level * kStride; }

  // The root resolves whatever is left of va_bits, so it may be smaller than a granule
  // (16K/48: 2 entries; 64K/48: 64 entries).
  static constexpr unsigned index_bits(unsigned level) {
    return level + 1 < levels ? kStride : VaBits - shift(level);
  }

  // Pages at Arm level 3; blocks at Arm level 2 for every granule, at Arm level 1 only for 4K
  // (16K/64K level-1 blocks need 52-bit addressing; Arm level 0 never holds a block here).
  static constexpr bool leaf_ok(unsigned level) {
    if (level >= levels) return false;
    return level <= 1 || (level == 2 && GranuleShift == 12);
  }

  // Linux's contiguous sizes: CONT_PTE at level 0, CONT_PMD at level 1. (The Arm ARM also
  // defines 16 x 1G for 4K level-1 blocks; Linux does not use it, so the bit is kept raw there.)
  static constexpr unsigned cont_shift(unsigned level) {
    if (level == 0) return shift(0) + arm64::cont_pte_bits(GranuleShift);
    if (level == 1 && levels > 1) return shift(1) + arm64::cont_pmd_bits(GranuleShift);
    return 0;
  }

  // TTBR0 (user) half only: bits [63:va_bits] all zero. (TTBR1 addresses, all ones above
  // va_bits, are not walked through these formats.)
  static constexpr bool canonical(uint64_t va) { return (va >> VaBits) == 0; }

  // FEAT_HAFDBS with TCR_EL1.HA and HD: hardware sets AF and clears AP[2] of DBM entries.
  static constexpr AdCaps ad_caps{true, true, DirtyModel::dbm_rdonly};

  // --- bit groups ------------------------------------------------------------------------

  static constexpr uint64_t kTypeMask = arm64::kValid | arm64::kTableOrPage;
  static constexpr uint64_t kAttrIndxMask = mask(arm64::kAttrIndxLo, arm64::kAttrIndxHi);
  static constexpr uint64_t kShMask = mask(arm64::kShLo, arm64::kShHi);

  // Output address bits of an entry mapping (or pointing to) shift(level) at `level`.
  static constexpr uint64_t oa_mask(unsigned s) { return mask(s, arm64::kOaHi); }
  static constexpr uint64_t kGranuleOa = mask(GranuleShift, arm64::kOaHi);

  // Bits below the granule that hold no address: RES0 for 16K (bits[13:12]); for 64K they
  // are OA[51:48] only with FEAT_LPA and 52-bit TCR.IPS, beyond this format's 48 bits. The
  // walk ignores them (file comment): kept, never a reason for Kind::invalid.
  static constexpr uint64_t kSubGranule = GranuleShift > 12 ? mask(12, GranuleShift - 1) : 0;

  // RES0 above the OA (bits[49:48] for leaves, bits[50:48] for tables; LPA2 would use 49:48).
  // Ignored by the walk as well: kept.
  static constexpr uint64_t kLeafRes0 = mask(48, 49);
  static constexpr uint64_t kTableRes0 = mask(48, 50);

  // Bits of a leaf at `level` that the walk ignores around its output address: the RES0 bits
  // above it, below the granule and, in a block, everything below the block size (nT included).
  static constexpr uint64_t leaf_ignored(unsigned level) {
    return kLeafRes0 | kSubGranule | (level > 0 ? mask(GranuleShift, shift(level) - 1) : 0);
  }

  // Table descriptors: bits[11:2] and [58:51] IGNORED, [63:59] attributes, and the RES0 bits
  // around the next-level address the walk ignores. All carried in keep.
  static constexpr uint64_t kTableKeep = mask(2, 11) | mask(51, 63) | kTableRes0 | kSubGranule;

  // Swap format: anything outside the type, offset and flag fields is not Linux's.
  static constexpr uint64_t kSwapFields = arm64::kSwpExclusive | arm64::kSwpUffdWp |
                                     mask(arm64::kSwpTypeLo, arm64::kSwpTypeHi) |
                                     mask(arm64::kSwpOffsetLo, arm64::kSwpOffsetHi);

  // Leaf bits carried in keep at `level`; `user` chooses which XN bit is the other level's.
  static constexpr uint64_t leaf_keep_mask(unsigned level, bool user) {
    uint64_t m =
        arm64::kNS | kShMask | arm64::kGP | arm64::kSwBit57 | arm64::kPBHA | arm64::kSwBit63;
    m |= user ? arm64::kPXN : arm64::kUXN;
    m |= leaf_ignored(level);                        // nT of a block is in here; in a page,
                                                     // bit 16 may be OA
    if (cont_shift(level) == 0) m |= arm64::kContiguous;
    return m;
  }
  // Keep bits stored inverted, so keep == 0 means Linux's defaults (SH inner, other XN set).
  static constexpr uint64_t kLeafKeepFlip =
      (arm64::kShInner << arm64::kShLo) | arm64::kPXN | arm64::kUXN;

  // --- validity of the descriptor types ------------------------------------------------------

  // Why a leaf-type descriptor (block/page, or the same bits with kValid clear for
  // present-invalid) is not a leaf here, Reason::none when it is one. The hardware type bits
  // are checked by the caller. RES0 bits around the OA and a block's low bits are not a
  // problem: the walk ignores them (leaf_ignored, kept raw).
  static constexpr Reason leaf_problem(uint64_t raw, unsigned level) {
    if (!leaf_ok(level)) return Reason::leaf_not_allowed;  // a walk fault (but see the caveat
                                                           // on 64K level-1 blocks above)
    // AttrIndx 5..7: the MMU translates with MAIR's byte, but Linux never programs those
    // indices, so there is no MemType to report. A Linux-convention judgment, kept on purpose.
    if (field(raw, arm64::kAttrIndxLo, arm64::kAttrIndxHi) > arm64::kMtLast)
      return Reason::unrepresentable;
    return Reason::none;
  }

  // --- hot path -----------------------------------------------------------------------------

  // Any bits[1:0] = 11 below the page level is a table: its RES0 bits are ignored by the walk.
  static constexpr bool is_table(uint64_t raw, unsigned level) {
    return level > 0 && level < levels && (raw & kTypeMask) == kTypeMask;
  }

  static constexpr bool is_leaf(uint64_t raw, unsigned level) {
    const uint64_t want = level == 0 ? kTypeMask : arm64::kValid;
    return (raw & kTypeMask) == want && leaf_problem(raw, level) == Reason::none;
  }

  // Table address, page address or block base (aligned down, as the walk does); for a
  // present-invalid leaf too.
  // CONT sub-entries carry their own output address: a leaf spans its level's size.
  static constexpr unsigned leaf_shift(uint64_t, unsigned level) { return shift(level); }
  static constexpr uint64_t out_addr(uint64_t raw, unsigned level) {
    return raw & ((level == 0 || (raw & arm64::kTableOrPage)) ? kGranuleOa : oa_mask(shift(level)));
  }

  // A bare table descriptor: no hierarchical restrictions, no ignored bits.
  static constexpr uint64_t make_table(uint64_t pa, unsigned /*level*/) {
    return (pa & kGranuleOa) | kTypeMask;
  }

  // --- decode -------------------------------------------------------------------------------

  static constexpr Entry decode(uint64_t raw, unsigned level) {
    Entry e;
    e.shift = static_cast<uint8_t>(shift(level));
    if (raw == 0) return e;  // Kind::none
    auto invalid = [&e](Reason r) {
      e.kind = Kind::invalid;
      e.reason = r;
      return e;
    };
    if (level >= levels) return invalid(Reason::unrepresentable);

    if (raw & arm64::kValid) {
      if (raw & arm64::kTableOrPage) {
        if (level > 0) return decode_table(raw, e);
        // bits[1:0] = 11 at Arm level 3: a page.
      } else if (level == 0) {
        return invalid(Reason::reserved_descriptor);  // 01 at Arm level 3 is reserved
      }
      Reason r = leaf_problem(raw, level);
      if (r != Reason::none) return invalid(r);
      decode_leaf(raw, level, e);
      e.kind = Kind::leaf;
      return e;
    }

    if (raw & arm64::kNG) {
      // Linux PTE_PRESENT_INVALID: present to software (PROT_NONE, pmd_mkinvalid), a
      // translation fault to hardware. The other bits keep the leaf layout of this level.
      if (!leaf_ok(level)) return invalid(Reason::leaf_not_allowed);
      if (level == 0 && !(raw & arm64::kTableOrPage)) return invalid(Reason::reserved_descriptor);
      if (level > 0 && (raw & arm64::kTableOrPage)) return invalid(Reason::unrepresentable);
      Reason r = leaf_problem(raw, level);
      if (r != Reason::none) return invalid(r);
      decode_leaf(raw, level, e);
      e.kind = Kind::protnone;
      return e;
    }

    // Swap format: only where a leaf could be (swap PTEs, THP/hugetlb migration PMD/PUDs).
    if (!leaf_ok(level)) return invalid(Reason::leaf_not_allowed);
    if (raw & ~kSwapFields) return invalid(Reason::bad_swap);
    e.swp.type = static_cast<uint32_t>(field(raw, arm64::kSwpTypeLo, arm64::kSwpTypeHi));
    e.swp.offset = field(raw, arm64::kSwpOffsetLo, arm64::kSwpOffsetHi);
    e.swp.exclusive = (raw & arm64::kSwpExclusive) != 0;
    e.swp.uffd_wp = (raw & arm64::kSwpUffdWp) != 0;
    e.kind = e.swp.type == kSwpPteMarker ? Kind::marker : Kind::swap;
    return e;
  }

  // --- encode -------------------------------------------------------------------------------

  // Tables use addr and keep only. Leaves and present-invalid leaves use every vocabulary
  // field except swp; a leaf with cont_shift != 0 encodes the sub-entry whose own output address
  // is e.addr (the group base gives sub-entry 0; group_entry() derives the others). Swap and
  // marker entries use swp only. Anything without an encoding is refused with Err::einval.
  static constexpr Result<uint64_t> encode(const Entry& e, unsigned level) {
    if (level >= levels) return Err::einval;
    if (e.s2 != Stage2{}) return Err::einval;  // stage-2 attributes
    switch (e.kind) {
      case Kind::none: return uint64_t{0};
      case Kind::table: return encode_table(e, level);
      case Kind::leaf:
      case Kind::protnone: return encode_leaf(e, level);
      case Kind::swap:
      case Kind::marker: return encode_swap(e, level);
      case Kind::locked:  // no locked value at stage 1
      case Kind::invalid: break;
    }
    return Err::einval;
  }

  // --- contiguous groups, break-before-make --------------------------------------------------

  // Sub-entry i of a group: present entries (valid or present-invalid leaves) get their own
  // output address, base + i pages of this level, with the same attributes and CONT bit;
  // non-present values (swap, migration, marker) are written identically to every slot.
  static constexpr uint64_t group_entry(uint64_t raw0, unsigned level, unsigned i) {
    const bool present = (raw0 & (arm64::kValid | arm64::kNG)) != 0;
    const bool table = level > 0 && (raw0 & kTypeMask) == kTypeMask;
    if (!present || table) return raw0;
    const uint64_t oa = oa_mask(shift(level));
    return (raw0 & ~oa) | (((raw0 & oa) + (uint64_t{i} << shift(level))) & oa);
  }

  // A leaf (valid or present-invalid, a CONT sub-entry included) at another output address:
  // the OA field of its level replaced; the bits around it that keep carries stay.
  static constexpr uint64_t with_pa(uint64_t raw, unsigned level, uint64_t pa) {
    return (raw & ~oa_mask(shift(level))) | pa;
  }

  // Arm ARM D8.16 (break-before-make): a live descriptor may not change its output address, its
  // type (table <-> block, i.e. its size), the Contiguous bit, the memory type (AttrIndx) or
  // shareability without going through invalid + TLBI. Going from non-global to global also
  // needs it (a global TLB entry could coexist with the ASID-tagged one). Permissions, AF, DBM
  // and software bits may change in place. Either side invalid: no break needed.
  static constexpr bool needs_bbm(uint64_t old_raw, uint64_t new_raw, unsigned level) {
    if (!(old_raw & arm64::kValid) || !(new_raw & arm64::kValid)) return false;
    const uint64_t diff = old_raw ^ new_raw;
    if (diff & (arm64::kTableOrPage | arm64::kContiguous | kAttrIndxMask | kShMask)) return true;
    if (out_addr(old_raw, level) != out_addr(new_raw, level)) return true;
    if ((old_raw & arm64::kNG) && !(new_raw & arm64::kNG)) return true;
    return false;
  }

 private:
  static constexpr Entry decode_table(uint64_t raw, Entry& e) {
    e.kind = Kind::table;
    e.addr = raw & kGranuleOa;
    e.keep = raw & kTableKeep;
    return e;
  }

  // Fields shared by valid leaves and present-invalid ones. The address is the OA field masked
  // to the level's alignment; the ignored bits around it land in keep (leaf_keep_mask).
  static constexpr void decode_leaf(uint64_t raw, unsigned level, Entry& e) {
    e.addr = raw & oa_mask(shift(level));
    const bool user = (raw & arm64::kAP1) != 0;
    const bool rdonly = (raw & arm64::kAP2) != 0;
    e.prot.read = true;  // AP[2:1] always grants read to the entitled level
    e.prot.write = !rdonly;
    e.prot.user = user;
    // Execute right of the entitled level; the other level's XN bit goes to keep.
    e.prot.exec = !(raw & (user ? arm64::kUXN : arm64::kPXN));
    // Linux: pte_write = DBM; hardware-dirty = DBM && !RDONLY; pte_dirty = PTE_DIRTY || hw-dirty.
    // (With DBM && !RDONLY the PTE_DIRTY bit is redundant: the second spelling of
    // writable+dirty, which encode writes without PTE_DIRTY.)
    e.writable = (raw & arm64::kDBM) != 0;
    e.dirty = (raw & arm64::kSwDirty) != 0 || (e.writable && !rdonly);
    e.accessed = (raw & arm64::kAF) != 0;
    e.global = !(raw & arm64::kNG);
    arm64::attrindx_to_mem(
        static_cast<unsigned>(field(raw, arm64::kAttrIndxLo, arm64::kAttrIndxHi)), e.mem);
    e.soft.special = (raw & arm64::kSwSpecial) != 0;
    e.soft.uffd_wp = (raw & arm64::kSwUffdWp) != 0;
    if ((raw & arm64::kContiguous) && cont_shift(level) != 0)
      e.cont_shift = static_cast<uint8_t>(cont_shift(level));
    const uint64_t km = leaf_keep_mask(level, user);
    e.keep = (raw ^ kLeafKeepFlip) & km;
  }

  static constexpr Result<uint64_t> encode_table(const Entry& e, unsigned level) {
    if (level == 0) return Err::einval;                        // Reason::table_not_allowed
    if (!aligned(e.addr, GranuleShift)) return Err::einval;    // Reason::misaligned_output
    if (e.addr >> (arm64::kOaHi + 1)) return Err::einval;      // Reason::output_beyond_pa
    if (e.keep & ~kTableKeep) return Err::einval;              // keep would hit address/type
    return e.addr | e.keep | kTypeMask;
  }

  static constexpr Result<uint64_t> encode_leaf(const Entry& e, unsigned level) {
    const bool protnone = e.kind == Kind::protnone;
    if (!leaf_ok(level)) return Err::einval;                   // Reason::leaf_not_allowed
    // A misaligned addr is a caller error, even though the walk would align it down: the raw
    // bits below the block size are only reachable through keep.
    if (!aligned(e.addr, shift(level))) return Err::einval;    // Reason::misaligned_output
    if (e.addr >> (arm64::kOaHi + 1)) return Err::einval;      // Reason::output_beyond_pa
    if (e.cont_shift != 0 && e.cont_shift != cont_shift(level)) return Err::einval;
    unsigned idx = 0;
    if (!arm64::mem_to_attrindx(e.mem, idx)) return Err::einval;  // write-through, write-protect
    if (e.soft.soft_dirty) return Err::einval;  // arm64 has no soft-dirty bit
    if (!e.prot.read) return Err::einval;       // AP[2:1] cannot deny read to the entitled level
    // DBM && !RDONLY is hardware-dirty: a writable, hardware-writable entry is always dirty.
    const bool hw_dirty = e.writable && e.prot.write;
    if (hw_dirty && !e.dirty) return Err::einval;
    if (protnone && e.global) return Err::einval;  // nG is PRESENT_INVALID there
    const uint64_t km = leaf_keep_mask(level, e.prot.user);
    if (e.keep & ~km) return Err::einval;

    uint64_t raw = e.addr | (uint64_t{idx} << arm64::kAttrIndxLo);
    raw |= level == 0 ? kTypeMask : arm64::kValid;
    if (protnone) raw = (raw & ~arm64::kValid) | arm64::kNG;
    if (e.prot.user) raw |= arm64::kAP1;
    if (!e.prot.write) raw |= arm64::kAP2;
    if (e.accessed) raw |= arm64::kAF;
    if (!e.global) raw |= arm64::kNG;
    if (e.writable) raw |= arm64::kDBM;
    if (e.cont_shift != 0) raw |= arm64::kContiguous;
    if (!e.prot.exec) raw |= e.prot.user ? arm64::kUXN : arm64::kPXN;
    if (e.dirty && !hw_dirty) raw |= arm64::kSwDirty;
    if (e.soft.special) raw |= arm64::kSwSpecial;
    if (e.soft.uffd_wp) raw |= arm64::kSwUffdWp;
    raw |= (e.keep ^ kLeafKeepFlip) & km;
    return raw;
  }

  static constexpr Result<uint64_t> encode_swap(const Entry& e, unsigned level) {
    if (!leaf_ok(level)) return Err::einval;                  // Reason::leaf_not_allowed
    const Swap& s = e.swp;
    if (s.type >= (uint32_t{1} << kSwapTypeBits)) return Err::einval;        // Reason::bad_swap
    if (s.offset >> arm64::kSwpOffsetBits) return Err::einval;          // Reason::bad_swap
    if ((e.kind == Kind::marker) != (s.type == kSwpPteMarker)) return Err::einval;
    if (s.soft_dirty) return Err::einval;  // no PTE_SWP_SOFT_DIRTY on arm64
    uint64_t raw = (uint64_t{s.type} << arm64::kSwpTypeLo) | (s.offset << arm64::kSwpOffsetLo);
    if (s.exclusive) raw |= arm64::kSwpExclusive;
    if (s.uffd_wp) raw |= arm64::kSwpUffdWp;
    if (raw == 0) return Err::einval;  // type 0, offset 0, no flags would read back as none
    return raw;
  }
};

using Arm64_4K_39 = Arm64Format<12, 39>;
using Arm64_4K_48 = Arm64Format<12, 48>;
using Arm64_16K_36 = Arm64Format<14, 36>;
using Arm64_16K_47 = Arm64Format<14, 47>;
using Arm64_16K_48 = Arm64Format<14, 48>;
using Arm64_64K_42 = Arm64Format<16, 42>;
using Arm64_64K_48 = Arm64Format<16, 48>;

static_assert(Format<Arm64_4K_39>);
static_assert(Format<Arm64_4K_48>);
static_assert(Format<Arm64_16K_36>);
static_assert(Format<Arm64_16K_47>);
static_assert(Format<Arm64_16K_48>);
static_assert(Format<Arm64_64K_42>);
static_assert(Format<Arm64_64K_48>);
static_assert(format_ok<Arm64_4K_39>(), "arm64 4K/39-bit format is unsound");
static_assert(format_ok<Arm64_4K_48>(), "arm64 4K/48-bit format is unsound");
static_assert(format_ok<Arm64_16K_36>(), "arm64 16K/36-bit format is unsound");
static_assert(format_ok<Arm64_16K_47>(), "arm64 16K/47-bit format is unsound");
static_assert(format_ok<Arm64_16K_48>(), "arm64 16K/48-bit format is unsound");
static_assert(format_ok<Arm64_64K_42>(), "arm64 64K/42-bit format is unsound");
static_assert(format_ok<Arm64_64K_48>(), "arm64 64K/48-bit format is unsound");

using Arm64Formats = TypeList<Arm64_4K_39, Arm64_4K_48, Arm64_16K_36, Arm64_16K_47, Arm64_16K_48,
                              Arm64_64K_42, Arm64_64K_48>;

// The bit whose clearing makes any entry not valid to the MMU: the descriptor's valid bit. A
// kernel entry with it clear is what set_memory_valid(0) left: it keeps its frame and attributes
// (decode --space kernel).
template <unsigned Gr, unsigned Va>
constexpr uint64_t valid_bit(const Arm64Format<Gr, Va>*) {
  return arm64::kValid;
}

}  // namespace hugepte
