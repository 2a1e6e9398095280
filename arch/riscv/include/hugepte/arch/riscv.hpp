// hugepte/arch/riscv.hpp - RISC-V Sv39 / Sv48 / Sv57 page-table entries, with the Svnapot,
// Svpbmt and Svrsw60t59b extensions, under Linux's software conventions.
//
// Sources: the RISC-V privileged specification ("Sv39/Sv48/Sv57: Page-Based Virtual-Memory
// System", the virtual-address translation process, and the "Svnapot", "Svpbmt" chapters), the
// Svrsw60t59b extension (bits 60-59 free for supervisor software), and Linux's riscv PTE
// conventions (PROT_NONE, the swap-entry layout, the software bits) as Linux's
// arch/riscv/include/asm/pgtable-bits.h and pgtable-64.h define them. docs/porting.md maps
// riscv's Svnapot hugetlb overrides (arch/riscv/mm/hugetlbpage.c) onto the generic code and
// this format's hooks.
//
// Raw layout of one 64-bit PTE (all three modes; 512 entries per table at every level):
//
//   63   62-61  60   59   58-54  53-10  9      8      7 6 5 4 3 2 1 0
//   N    PBMT   [UW] [SD] rsvd   PPN    RSW[1] RSW[0] D A G U X W R V
//
//   N     Svnapot: part of a 64 KiB group of 16 identical level-0 PTEs, PPN[3:0] = 1000b.
//   PBMT  Svpbmt: 0 PMA (normal), 1 NC (non-cacheable), 2 IO (device), 3 reserved.
//   SD/UW bits 59/60: reserved, or Linux's soft-dirty / uffd-wp with Svrsw60t59b.
//   RSW   supervisor software: RSW[0] is Linux's _PAGE_SPECIAL; RSW[1] is unused by Linux
//         (formerly devmap) and is carried untouched in Entry::keep.
//
// Kinds (decode):
//   none      raw == 0 (Linux pte_none is "exactly 0" on riscv).
//   table     V=1, R=W=X=0, at level > 0. D, A, U, PBMT and N are reserved there.
//   leaf      V=1 and any of R/W/X, at any level (every level may hold a leaf).
//   protnone  V=0 with G=1: Linux's _PAGE_PROT_NONE reuses G when V is clear. PAGE_NONE is
//             PROT_NONE|R, so a PROT_NONE huge entry still looks like a leaf to pmd_leaf.
//             A second spelling is decoded too: V=0, G=0 with R or W set is what Linux's
//             pmd_mkinvalid() leaves (it clears V and PROT_NONE); pmd_present() still counts
//             it present through the leaf bits. encode() always writes the first spelling.
//   swap      V=0, G=0, R=W=0, raw != 0: type in 7-11, offset in 12-63, exclusive in 6, and
//             with Svrsw60t59b soft-dirty in 3 (borrowing X) and uffd-wp in 4 (borrowing U).
//   marker    a swap entry of type kSwpPteMarker; the offset holds the marker flags.
//   invalid   anything the walker would reject with a page fault that is not a plain
//             "V=0" fault, or an encoding Linux never writes; `reason` says which rule.
//
// Entry conventions of this format:
//   - decode(0) is exactly Entry{}; every other kind carries shift = shift(level).
//   - prot = R/W/X/U as stored (the hardware's view for a leaf; the saved view for protnone).
//     writable == prot.write (riscv has one write bit); dirty = D; accessed = A.
//   - keep = RSW[1] for leaves and protnone; RSW[0..1] (and bits 59-60 with Svrsw60t59b) for
//     table entries. Nothing else may be set in keep.
//   - A NAPOT sub-entry decodes with addr = the 64 KiB group base and cont_shift = 16.
//
// Freestanding, constexpr throughout: no heap, no exceptions.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"

namespace hugepte {
namespace riscv {

// PTE bits, named as in the privileged spec's Sv39 PTE figure.
inline constexpr uint64_t kV = bit(0);     // valid
inline constexpr uint64_t kR = bit(1);     // readable
inline constexpr uint64_t kW = bit(2);     // writable (W=1 with R=0 is reserved)
inline constexpr uint64_t kX = bit(3);     // executable
inline constexpr uint64_t kU = bit(4);     // user-mode accessible
inline constexpr uint64_t kG = bit(5);     // global mapping
inline constexpr uint64_t kA = bit(6);     // accessed
inline constexpr uint64_t kD = bit(7);     // dirty
inline constexpr uint64_t kRsw0 = bit(8);  // RSW[0]: Linux _PAGE_SPECIAL
inline constexpr uint64_t kRsw1 = bit(9);  // RSW[1]: free for software (Linux devmap until removed)
inline constexpr unsigned kPpnLo = 10;
inline constexpr unsigned kPpnHi = 53;  // PPN is 44 bits in every mode: 56-bit physical addresses
inline constexpr uint64_t kPpn = mask(kPpnLo, kPpnHi);
inline constexpr uint64_t kReserved = mask(54, 58);  // reserved for future standard use
inline constexpr uint64_t kSoftDirty = bit(59);      // reserved; Linux soft-dirty with Svrsw60t59b
inline constexpr uint64_t kUffdWp = bit(60);         // reserved; Linux uffd-wp with Svrsw60t59b
inline constexpr uint64_t kRsw60t59b = kSoftDirty | kUffdWp;
inline constexpr unsigned kPbmtLo = 61;
inline constexpr unsigned kPbmtHi = 62;
inline constexpr uint64_t kPbmt = mask(kPbmtLo, kPbmtHi);
inline constexpr uint64_t kN = bit(63);  // Svnapot
inline constexpr uint64_t kRwx = kR | kW | kX;

// Linux's name for G when V=0: a PROT_NONE (NUMA hinting / mprotect) entry.
inline constexpr uint64_t kProtNone = kG;

// Svpbmt memory types (bits 62-61 of a leaf).
enum class Pbmt : uint8_t { pma = 0, nc = 1, io = 2, reserved = 3 };

// Svnapot defines one size: napot_bits = 4 at level 0, i.e. 16 PTEs of 4 KiB = 64 KiB, marked by
// PPN[3:0] = 1000b. Every other pattern, and N=1 at any level above 0, is reserved.
inline constexpr unsigned kNapotBits = 4;
inline constexpr unsigned kNapotShift = 12 + kNapotBits;
inline constexpr uint64_t kNapotPattern = bit(kNapotBits - 1);  // 1000b in PPN[3:0]

// Linux's swap-entry layout (non-present, non-PROT_NONE PTEs).
inline constexpr uint64_t kSwpSoftDirty = bit(3);  // borrows X; only with Svrsw60t59b
inline constexpr uint64_t kSwpUffdWp = bit(4);     // borrows U; only with Svrsw60t59b
inline constexpr uint64_t kSwpExclusive = bit(6);  // borrows A: PG_anon_exclusive
inline constexpr unsigned kSwpTypeLo = 7;
inline constexpr unsigned kSwpTypeHi = 11;  // 5 bits = MAX_SWAPFILES_SHIFT
inline constexpr unsigned kSwpOffsetLo = 12;
inline constexpr unsigned kSwpOffsetHi = 63;  // 52-bit offset
inline constexpr unsigned kSwpOffsetBits = kSwpOffsetHi - kSwpOffsetLo + 1;

namespace detail {

// The mode string: the satp mode plus a suffix per deviation from the default extension set,
// so that every instance has its own name in the test matrix ("sv39", "sv48-nonapot-nopbmt",
// "sv57-rsw"). The guests run "sv39-*" cases in the sv39 image.
struct ModeName {
  char s[40] = {};
};

constexpr ModeName mode_name(unsigned levels, bool napot, bool pbmt, bool rsw) {
  ModeName n;
  unsigned k = 0;
  auto put = [&](const char* p) {
    while (*p) n.s[k++] = *p++;
  };
  put(levels == 3 ? "sv39" : levels == 4 ? "sv48" : "sv57");
  if (!napot) put("-nonapot");
  if (!pbmt) put("-nopbmt");
  if (rsw) put("-rsw");
  return n;
}

}  // namespace detail
}  // namespace riscv

// One RISC-V paging mode: Levels = 3 (Sv39), 4 (Sv48) or 5 (Sv57), with or without the
// extensions that give meaning to otherwise reserved bits. Without an extension its bits are
// reserved: a leaf using them decodes as invalid (extension_absent) and encode refuses it.
template <unsigned Levels, bool Svnapot = true, bool Svpbmt = true, bool Svrsw60t59b = false>
struct RiscvFormat {
  static_assert(Levels >= 3 && Levels <= 5, "riscv64 paging modes are Sv39, Sv48 and Sv57");

  static constexpr bool svnapot = Svnapot;
  static constexpr bool svpbmt = Svpbmt;
  static constexpr bool svrsw60t59b = Svrsw60t59b;

  static constexpr const char* arch = "riscv64";
  static constexpr riscv::detail::ModeName kModeName =
      riscv::detail::mode_name(Levels, Svnapot, Svpbmt, Svrsw60t59b);
  static constexpr const char* mode = kModeName.s;

  // Geometry: 4 KiB pages, 9 index bits (512 eight-byte PTEs) at every level including the
  // root, so shifts are 12, 21, 30, 39, 48 and va_bits = 12 + 9 * levels.
  static constexpr unsigned levels = Levels;
  static constexpr unsigned page_shift = 12;
  static constexpr unsigned kIndexBits = 9;
  static constexpr unsigned va_bits = page_shift + kIndexBits * Levels;
  static constexpr unsigned pa_bits = 56;  // 44-bit PPN + 12 in every mode

  static constexpr unsigned shift(unsigned level) { return page_shift + kIndexBits * level; }
  static constexpr unsigned index_bits(unsigned) { return kIndexBits; }
  static constexpr bool leaf_ok(unsigned level) { return level < levels; }  // any level
  static constexpr unsigned cont_shift(unsigned level) {
    return Svnapot && level == 0 ? riscv::kNapotShift : 0;
  }

  // Bits 63 .. va_bits-1 must all equal bit va_bits-1, or the access faults.
  static constexpr bool canonical(uint64_t va) {
    const uint64_t top = va >> (va_bits - 1);
    return top == 0 || top == (~uint64_t{0} >> (va_bits - 1));
  }

  // Hardware sets A and D (Svadu, and QEMU's default); the dirty state is the plain D bit.
  static constexpr AdCaps ad_caps{true, true, DirtyModel::hw_d};

  // ---- masks derived from the extension set ---------------------------------------------

  // Bits that fault in any valid PTE.
  static constexpr uint64_t kReservedMask =
      riscv::kReserved | (Svrsw60t59b ? 0 : riscv::kRsw60t59b);
  // Bits 59-60 as Linux's soft-dirty / uffd-wp (zero without the extension).
  static constexpr uint64_t kSoftMask = Svrsw60t59b ? riscv::kRsw60t59b : 0;
  // Raw bits a leaf / a table entry carries in Entry::keep.
  static constexpr uint64_t kLeafKeep = riscv::kRsw1;
  static constexpr uint64_t kTableKeep = riscv::kRsw0 | riscv::kRsw1 | kSoftMask;

  // ---- classification shared by decode and the hot-path predicates ----------------------

  // Why the payload of a leaf (or of a PROT_NONE entry, which becomes a leaf again by setting
  // V) would fault, in a fixed order; Reason::none when it would translate.
  static constexpr Reason leaf_problem(uint64_t raw, unsigned level) {
    if (raw & kReservedMask) return Reason::reserved_bits;
    if (!Svpbmt && (raw & riscv::kPbmt)) return Reason::extension_absent;
    if (!Svnapot && (raw & riscv::kN)) return Reason::extension_absent;
    if ((raw & (riscv::kR | riscv::kW)) == riscv::kW) return Reason::write_without_read;
    if (field(raw, riscv::kPbmtLo, riscv::kPbmtHi) == uint64_t(riscv::Pbmt::reserved))
      return Reason::reserved_memory_type;
    if (raw & riscv::kN) {
      // Only the 64 KiB pattern at level 0 is defined.
      if (level != 0 ||
          field(raw, riscv::kPpnLo, riscv::kPpnLo + riscv::kNapotBits - 1) != riscv::kNapotPattern)
        return Reason::reserved_group_encoding;
    } else if (level > 0 &&
               field(raw, riscv::kPpnLo, riscv::kPpnLo + kIndexBits * level - 1) != 0) {
      // A superpage whose low PPN fields are not zero: "misaligned superpage", page fault.
      return Reason::misaligned_output;
    }
    return Reason::none;
  }

  // Why a V=1, R=W=X=0 entry (a pointer to the next level) would fault.
  static constexpr Reason table_problem(uint64_t raw, unsigned level) {
    if (raw & kReservedMask) return Reason::reserved_bits;
    if (level == 0) return Reason::table_not_allowed;  // i < 0 after the step: page fault
    // D, A, U are reserved on non-leaf PTEs; so are PBMT (Svpbmt) and N (Svnapot).
    if (raw & (riscv::kD | riscv::kA | riscv::kU | riscv::kPbmt | riscv::kN))
      return Reason::reserved_bits;
    return Reason::none;
  }

  // ---- hot-path predicates (agree with decode; the tests check it) -----------------------

  static constexpr bool is_table(uint64_t raw, unsigned level) {
    constexpr uint64_t must_be_clear =
        riscv::kRwx | kReservedMask | riscv::kD | riscv::kA | riscv::kU | riscv::kPbmt | riscv::kN;
    return level > 0 && level < levels && (raw & (riscv::kV | must_be_clear)) == riscv::kV;
  }

  static constexpr bool is_leaf(uint64_t raw, unsigned level) {
    return (raw & riscv::kV) && (raw & riscv::kRwx) && level < levels &&
           leaf_problem(raw, level) == Reason::none;
  }

  // Output address of a table, leaf or PROT_NONE entry (a NAPOT entry gives its group base);
  // 0 for none and swap-format entries, which hold no address.
  // Every PTE of a NAPOT group holds the group's base: a NAPOT leaf spans the whole group.
  static constexpr unsigned leaf_shift(uint64_t raw, unsigned level) {
    return Svnapot && level == 0 && (raw & riscv::kN) ? riscv::kNapotShift : shift(level);
  }
  static constexpr uint64_t out_addr(uint64_t raw, unsigned) {
    if (!(raw & (riscv::kV | riscv::kG | riscv::kR | riscv::kW))) return 0;
    uint64_t ppn = field(raw, riscv::kPpnLo, riscv::kPpnHi);
    if (Svnapot && (raw & riscv::kN)) ppn &= ~(bit(riscv::kNapotBits) - 1);
    return ppn << page_shift;
  }

  // A pointer to the next-level table at physical address `pa` (level must be > 0). Linux's
  // _PAGE_TABLE is just V: no A/D/U (reserved), and no G, so the subtree stays per-ASID.
  static constexpr uint64_t make_table(uint64_t pa, unsigned) {
    return riscv::kV | (((pa >> page_shift) << riscv::kPpnLo) & riscv::kPpn);
  }

  // Every PTE of a NAPOT group holds the identical value (Svnapot), unlike arm64 CONT where
  // each holds its own address; a non-present value is also written identically to each slot.
  static constexpr uint64_t group_entry(uint64_t raw0, unsigned, unsigned) { return raw0; }

  // A leaf or PROT_NONE entry at another output address: the PPN replaced; a NAPOT entry
  // (pa aligned to the group) keeps its size pattern in the low PPN bits.
  static constexpr uint64_t with_pa(uint64_t raw, unsigned, uint64_t pa) {
    const uint64_t napot = Svnapot && (raw & riscv::kN) ? riscv::kNapotPattern << riscv::kPpnLo : 0;
    return (raw & ~riscv::kPpn) | ppn_bits(pa) | napot;
  }

  // Break-before-make for valid -> valid changes.
  //
  // A single riscv PTE is replaced by one store followed by SFENCE.VMA: the walker reads each
  // PTE atomically, so a stale translation can only come from the TLB, which the fence
  // removes. A plain leaf change therefore never needs an invalid step (not for a new output
  // address, permission, PBMT or size either).
  //
  // A NAPOT group is 16 stores, and an implementation may cache any one of its PTEs as the
  // translation for the whole 64 KiB. The Svnapot chapter asks software to invalidate all of
  // them, SFENCE.VMA the range, then write the new values, "unless any inconsistencies are
  // known to be benign". Inconsistent A/D, permissions or software bits are benign (each
  // access sees the old or the new translation, exactly as with a stale TLB entry before the
  // fence). Not benign, so these need break-before-make: a change of N (forming or breaking a
  // group: a cached 64 KiB translation would overlap 4 KiB ones), of the group's output
  // address (two physical pages behind one virtual page), or of PBMT (two cacheability
  // attributes for one location can lose coherence).
  static constexpr bool needs_bbm(uint64_t old_raw, uint64_t new_raw, unsigned level) {
    const bool old_napot = is_leaf(old_raw, level) && (old_raw & riscv::kN);
    const bool new_napot = is_leaf(new_raw, level) && (new_raw & riscv::kN);
    if (!old_napot && !new_napot) return false;
    return ((old_raw ^ new_raw) & (riscv::kN | riscv::kPpn | riscv::kPbmt)) != 0;
  }

  // ---- full translation ------------------------------------------------------------------

  static constexpr Entry decode(uint64_t raw, unsigned level) {
    Entry e;
    if (raw == 0) return e;
    e.shift = static_cast<uint8_t>(shift(level));
    if (level >= levels) return invalid(e, Reason::unrepresentable);

    if (raw & riscv::kV) {
      if (!(raw & riscv::kRwx)) {
        const Reason r = table_problem(raw, level);
        if (r != Reason::none) return invalid(e, r);
        e.kind = Kind::table;
        e.addr = out_addr(raw, level);
        e.global = (raw & riscv::kG) != 0;
        e.keep = raw & kTableKeep;
        return e;
      }
      const Reason r = leaf_problem(raw, level);
      if (r != Reason::none) return invalid(e, r);
      e.kind = Kind::leaf;
      fill_leaf(e, raw, level);
      e.global = (raw & riscv::kG) != 0;
      return e;
    }

    if (raw & (riscv::kProtNone | riscv::kR | riscv::kW)) {
      // PROT_NONE (G=1), or a leaf after pmd_mkinvalid (G=0 but R/W set, bits a swap entry
      // keeps zero). Its payload must be a leaf that would translate once V is set again;
      // R=W=X=0 is allowed: it is PROT_NONE with no saved permission.
      const Reason r = leaf_problem(raw, level);
      if (r != Reason::none) return invalid(e, r);
      e.kind = Kind::protnone;
      fill_leaf(e, raw, level);
      return e;
    }

    // Swap format. Bits 1, 2 and 5 are zero here by construction.
    if (!Svrsw60t59b && (raw & (riscv::kSwpSoftDirty | riscv::kSwpUffdWp)))
      return invalid(e, Reason::extension_absent);
    e.swp.type = static_cast<uint32_t>(field(raw, riscv::kSwpTypeLo, riscv::kSwpTypeHi));
    e.swp.offset = field(raw, riscv::kSwpOffsetLo, riscv::kSwpOffsetHi);
    e.swp.exclusive = (raw & riscv::kSwpExclusive) != 0;
    e.swp.soft_dirty = (raw & riscv::kSwpSoftDirty) != 0;
    e.swp.uffd_wp = (raw & riscv::kSwpUffdWp) != 0;
    e.kind = e.swp.type == kSwpPteMarker ? Kind::marker : Kind::swap;
    return e;
  }

  // Refuses (Err::einval) anything decode would not give back unchanged: a level the format
  // does not have, a table at level 0, a leaf without R/W/X or with W but not R, writable !=
  // prot.write, an unaligned or too-wide output address, a contiguous size other than 64 KiB
  // at level 0 with Svnapot, a memory type PBMT cannot name (or any but normal without
  // Svpbmt), soft-dirty/uffd-wp without Svrsw60t59b, a global PROT_NONE entry (G is the
  // PROT_NONE bit), A/D/U/permissions on a table, a swap type >= 32 or offset >= 2^52, a
  // marker whose type is not kSwpPteMarker (and the reverse), the swap entry (0, 0) without
  // flags (it is the none value), keep bits outside the kind's keep mask, and Kind::invalid.
  static constexpr Result<uint64_t> encode(const Entry& e, unsigned level) {
    if (level >= levels) return Err::einval;
    if (e.kind == Kind::none) return uint64_t{0};
    if (e.shift != 0 && e.shift != shift(level)) return Err::einval;  // decoded elsewhere
    if (e.s2 != Stage2{}) return Err::einval;  // stage-2 attributes
    switch (e.kind) {
      case Kind::table:
        return encode_table(e, level);
      case Kind::leaf:
        return encode_leaf(e, level, true);
      case Kind::protnone:
        return encode_leaf(e, level, false);
      case Kind::swap:
      case Kind::marker:
        return encode_swap(e);
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

  static constexpr MemType memtype_of(uint64_t raw) {
    switch (static_cast<riscv::Pbmt>(field(raw, riscv::kPbmtLo, riscv::kPbmtHi))) {
      case riscv::Pbmt::nc:
        return MemType::noncacheable;
      case riscv::Pbmt::io:
        return MemType::device;
      default:
        return MemType::normal;
    }
  }

  // Fields common to a leaf and a PROT_NONE entry (global is the caller's: G is PROT_NONE).
  static constexpr void fill_leaf(Entry& e, uint64_t raw, unsigned level) {
    e.addr = out_addr(raw, level);
    e.cont_shift = static_cast<uint8_t>((raw & riscv::kN) ? riscv::kNapotShift : 0);
    e.prot.read = (raw & riscv::kR) != 0;
    e.prot.write = (raw & riscv::kW) != 0;
    e.prot.exec = (raw & riscv::kX) != 0;
    e.prot.user = (raw & riscv::kU) != 0;
    e.writable = e.prot.write;
    e.mem = memtype_of(raw);
    e.accessed = (raw & riscv::kA) != 0;
    e.dirty = (raw & riscv::kD) != 0;
    e.soft.special = (raw & riscv::kRsw0) != 0;
    e.soft.soft_dirty = (raw & kSoftMask & riscv::kSoftDirty) != 0;
    e.soft.uffd_wp = (raw & kSoftMask & riscv::kUffdWp) != 0;
    e.keep = raw & kLeafKeep;
  }

  static constexpr bool fits_pa(uint64_t addr) { return (addr >> pa_bits) == 0; }

  static constexpr uint64_t ppn_bits(uint64_t addr) {
    return ((addr >> page_shift) << riscv::kPpnLo) & riscv::kPpn;
  }

  static constexpr Result<uint64_t> encode_table(const Entry& e, unsigned level) {
    if (level == 0) return Err::einval;  // the last level can only hold leaves
    // D, A, U, PBMT, N are reserved on a pointer; R/W/X would make it a leaf.
    if (e.prot != Prot{} || e.writable || e.accessed || e.dirty || e.cont_shift != 0 ||
        e.mem != MemType::normal || e.soft != Soft{})
      return Err::einval;
    if (!aligned(e.addr, page_shift) || !fits_pa(e.addr)) return Err::einval;
    if (e.keep & ~kTableKeep) return Err::einval;
    return riscv::kV | ppn_bits(e.addr) | (e.global ? riscv::kG : 0) | e.keep;
  }

  static constexpr Result<uint64_t> encode_leaf(const Entry& e, unsigned level, bool present) {
    const Prot& p = e.prot;
    if (p.write && !p.read) return Err::einval;                         // reserved encoding
    if (present && !(p.read || p.write || p.exec)) return Err::einval;  // that is a table
    if (e.writable != p.write) return Err::einval;                      // one W bit holds both
    if (!present && e.global) return Err::einval;                       // G is the PROT_NONE bit
    uint64_t raw = 0;
    unsigned align = shift(level);
    if (e.cont_shift != 0) {
      if (!Svnapot || level != 0 || e.cont_shift != riscv::kNapotShift) return Err::einval;
      align = riscv::kNapotShift;
      raw |= riscv::kN | (riscv::kNapotPattern << riscv::kPpnLo);
    }
    if (!aligned(e.addr, align) || !fits_pa(e.addr)) return Err::einval;
    switch (e.mem) {
      case MemType::normal:
        break;
      case MemType::noncacheable:
        if (!Svpbmt) return Err::einval;
        raw |= uint64_t(riscv::Pbmt::nc) << riscv::kPbmtLo;
        break;
      case MemType::device:
        if (!Svpbmt) return Err::einval;
        raw |= uint64_t(riscv::Pbmt::io) << riscv::kPbmtLo;
        break;
      default:
        return Err::einval;  // PBMT has no WT, WP, tagged or nGnRE distinction
    }
    if ((e.soft.soft_dirty || e.soft.uffd_wp) && !Svrsw60t59b) return Err::einval;
    if (e.keep & ~kLeafKeep) return Err::einval;
    raw |= ppn_bits(e.addr);
    raw |= present ? riscv::kV : riscv::kProtNone;
    if (present && e.global) raw |= riscv::kG;
    if (p.read) raw |= riscv::kR;
    if (p.write) raw |= riscv::kW;
    if (p.exec) raw |= riscv::kX;
    if (p.user) raw |= riscv::kU;
    if (e.accessed) raw |= riscv::kA;
    if (e.dirty) raw |= riscv::kD;
    if (e.soft.special) raw |= riscv::kRsw0;
    if (e.soft.soft_dirty) raw |= riscv::kSoftDirty;
    if (e.soft.uffd_wp) raw |= riscv::kUffdWp;
    return raw | e.keep;
  }

  static constexpr Result<uint64_t> encode_swap(const Entry& e) {
    const Swap& s = e.swp;
    if (s.type >= bit(kSwapTypeBits)) return Err::einval;
    if ((e.kind == Kind::marker) != (s.type == kSwpPteMarker)) return Err::einval;
    if (s.offset >> riscv::kSwpOffsetBits) return Err::einval;
    if ((s.soft_dirty || s.uffd_wp) && !Svrsw60t59b) return Err::einval;
    const uint64_t raw =
        (uint64_t{s.type} << riscv::kSwpTypeLo) | (s.offset << riscv::kSwpOffsetLo) |
        (s.exclusive ? riscv::kSwpExclusive : 0) | (s.soft_dirty ? riscv::kSwpSoftDirty : 0) |
        (s.uffd_wp ? riscv::kSwpUffdWp : 0);
    if (raw == 0) return Err::einval;  // swp_entry(0, 0) is indistinguishable from none
    return raw;
  }
};

using Sv39 = RiscvFormat<3>;
using Sv48 = RiscvFormat<4>;
using Sv57 = RiscvFormat<5>;

using RiscvFormats = TypeList<Sv39, Sv48, Sv57>;

static_assert(Format<Sv39>);
static_assert(Format<Sv48>);
static_assert(Format<Sv57>);
static_assert(format_ok<Sv39>(), "Sv39 breaks a structural rule of the Format concept");
static_assert(format_ok<Sv48>(), "Sv48 breaks a structural rule of the Format concept");
static_assert(format_ok<Sv57>(), "Sv57 breaks a structural rule of the Format concept");
// The variants without extensions / with Svrsw60t59b are formats too.
static_assert(Format<RiscvFormat<3, false, false>> && format_ok<RiscvFormat<3, false, false>>(),
              "Sv39 without Svnapot/Svpbmt breaks a structural rule");
static_assert(Format<RiscvFormat<5, true, true, true>> &&
                  format_ok<RiscvFormat<5, true, true, true>>(),
              "Sv57 with Svrsw60t59b breaks a structural rule");

// The bit whose clearing makes any entry not valid to the MMU: V. A kernel entry with it clear
// is what set_direct_map_invalid_noflush left: it keeps its frame and attributes (decode
// --space kernel).
template <unsigned L, bool N, bool P, bool S>
constexpr uint64_t valid_bit(const RiscvFormat<L, N, P, S>*) {
  return riscv::kV;
}

}  // namespace hugepte
