// hugepte/arch/x86.hpp - x86-64 page-table entry formats: 4-level (48-bit VA) and 5-level (LA57).
//
// Facts are from the Intel SDM vol. 3, §4.5 (4-level and 5-level paging: tables 4-15 to 4-20),
// plus Linux's software conventions for x86-64 (pgtable_types.h, pgtable_64.h,
// pgtable-invert.h). Assumptions about the CPU and kernel set-up:
//   - EFER.NXE = 1, so bit 63 is XD (execute-disable) in every paging-structure entry.
//   - CR4.PKE may be on: bits 59-62 of a leaf are its protection key (kept in Entry::keep).
//   - The PAT MSR holds Linux's programming: index 0 WB, 1 WC, 2 UC-, 3 UC, 4 WB, 5 WP, 6 UC-,
//     7 WT. Index = PAT<<2 | PCD<<1 | PWT, where PAT is bit 7 on a 4K PTE and bit 12 on a
//     2M/1G leaf.
//   - Shadow stacks may be on. A leaf with W=0 and D=1 is then a shadow-stack page, so Linux
//     keeps the dirty state of a read-only page in SAVED_DIRTY (bit 58), not in D.
//
// Levels (0 = PTE upwards): 0 PT (4K), 1 PD (2M with PS), 2 PDPT (1G with PS, only with
// GBPAGES), 3 PML4, 4 PML5 (5-level only). PS is reserved in PML4 and PML5 entries. Every table has
// 512 entries, the root included.
//
// Vocabulary mapping (decode; encode is the inverse and refuses what it cannot reproduce):
//   none     P=0, and every bit other than A/D is 0. Linux's pte_none ignores A and D because
//            of the Knights Landing erratum, which can set them in non-present entries. Those
//            bits go into `keep`, so the raw value round-trips.
//   table    P=1, PS=0, level >= 1.
//   leaf     P=1 at level 0, or P=1 and PS=1 where leaf_ok(level).
//   protnone P=0 and PROTNONE (bit 8) at a leaf level. At level >= 1 PS is also set, as in any
//            Linux huge entry. Following Linux's L1TF mitigation, the output address is stored
//            bit-inverted over [shift, 51]. This stops the CPU from speculating on a real frame.
//   swap     P=0, bits 7 and 8 clear. Type in 59-63. Offset in 9-58, stored bit-inverted (L1TF).
//            Flags: soft-dirty 1, uffd-wp 2, exclusive 3. Bits 4-6 go into `keep`.
//   marker   a swap entry of type kSwpPteMarker. The marker flags are in the offset.
//   invalid  the CPU would take a reserved-bit fault (PFEC.RSVD), or Linux never writes this
//            encoding. `reason` says which.
//
// Two raw spellings of one logical state. decode accepts both; encode writes the first.
//   - PAT indexes 4 (WB) and 6 (UC-) repeat indexes 0 and 2. encode picks the lowest index.
//   - dirty: D on a writable (or shadow-stack) leaf, SAVED_DIRTY on a read-only one. A leaf that
//     also has SAVED_DIRTY with RW=1 or D=1 is still dirty (Linux: _PAGE_DIRTY_BITS).
//   - present-to-software huge entry that the hardware treats as invalid: PROTNONE|PS (NUMA
//     hinting, pmd_protnone), or PS alone (pmd_mkinvalid while a THP is split). Both decode to
//     protnone.
//
// encode accepts an Entry only if decode gives back exactly that Entry. refusal() says why it
// refused. In practice:
//   - shift is the level's shift for every kind except none, and cont_shift is 0.
//   - Fields a kind does not store must be left at their defaults (a dirty table, a global
//     PROT_NONE...).
//   - prot.read is true for leaf/protnone/table: x86 cannot store a mapping without read.
//   - writable and prot.write must both be set, or both clear. The one exception is the
//     shadow-stack page: writable, !prot.write, dirty. So "make writable" sets both fields.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"

namespace hugepte {

namespace x86 {

// Architectural bits (SDM tables 4-15..4-20).
inline constexpr uint64_t kP = bit(0);               // present
inline constexpr uint64_t kRW = bit(1);              // writes allowed
inline constexpr uint64_t kUS = bit(2);              // user-mode accesses allowed
inline constexpr uint64_t kPWT = bit(3);             // page-level write-through (PAT index bit 0)
inline constexpr uint64_t kPCD = bit(4);             // page-level cache disable (PAT index bit 1)
inline constexpr uint64_t kA = bit(5);               // accessed, set by the CPU
inline constexpr uint64_t kD = bit(6);               // dirty, set by the CPU (leaves only)
inline constexpr uint64_t kPS = bit(7);              // page size, in PD and PDPT entries
inline constexpr uint64_t kPAT = bit(7);             // PAT index bit 2, in a 4K PTE
inline constexpr uint64_t kG = bit(8);               // global (leaves)
inline constexpr uint64_t kPATLarge = bit(12);       // PAT index bit 2, in a 2M/1G leaf
inline constexpr uint64_t kXD = bit(63);             // execute-disable (EFER.NXE=1)
inline constexpr uint64_t kPkeyMask = mask(59, 62);  // protection key of a leaf (CR4.PKE)

// Linux software conventions (pgtable_types.h, pgtable_64.h).
inline constexpr uint64_t kProtNone = bit(8);     // with P=0: PROT_NONE, present to software
inline constexpr uint64_t kSpecial = bit(9);      // _PAGE_SPECIAL (SOFTW1)
inline constexpr uint64_t kUffdWp = bit(10);      // _PAGE_UFFD_WP (SOFTW2)
inline constexpr uint64_t kSoftDirty = bit(11);   // _PAGE_SOFT_DIRTY (SOFTW3)
inline constexpr uint64_t kSavedDirty = bit(58);  // _PAGE_SAVED_DIRTY (SOFTW5): dirty while W=0
inline constexpr uint64_t kKnlErratum = kA | kD;  // may be set by hardware in non-present entries
inline constexpr uint64_t kSwpSoftDirty = bit(1);
inline constexpr uint64_t kSwpUffdWp = bit(2);
inline constexpr uint64_t kSwpExclusive = bit(3);
inline constexpr unsigned kSwpOffsetShift = 9;  // offset bits 9..58, stored inverted
inline constexpr unsigned kSwpOffsetBits = 50;
inline constexpr unsigned kSwpTypeShift = 59;  // type bits 59..63
// Linux's _PAGE_TABLE: what pmd_populate and friends write (D is ignored above a leaf).
inline constexpr uint64_t kTable = kP | kRW | kUS | kA | kD;
// L1TF inversion covers the whole 52-bit physical field (__PHYSICAL_MASK_SHIFT), whatever the
// CPU's MAXPHYADDR. That is why a PROT_NONE or swap entry points above any real memory.
inline constexpr unsigned kPhysMaskShift = 52;

// Raw bits outside the vocabulary that each kind keeps (so decode -> encode never loses them).
inline constexpr uint64_t kLeafKeep = mask(52, 57) | kPkeyMask;  // ignored bits, protection key
inline constexpr uint64_t kTableKeep = kD | kG | mask(9, 11) | mask(52, 62);  // all ignored bits
inline constexpr uint64_t kSwapKeep = bit(4) | kA | kD;  // unused by Linux's swap format
inline constexpr uint64_t kNoneKeep = kKnlErratum;

// Linux's PAT programming, index -> memory type, and the lowest index for each type.
inline constexpr MemType kPatType[8] = {
    MemType::normal, MemType::noncacheable,  MemType::device_nGnRE, MemType::device,
    MemType::normal, MemType::write_protect, MemType::device_nGnRE, MemType::write_through,
};
// -1: not nameable on x86 (arm64 Normal Tagged). A switch, not a search: encode is on the
// hot path of every map.
constexpr int pat_index(MemType m) {
  switch (m) {
    case MemType::normal: return 0;
    case MemType::noncacheable: return 1;
    case MemType::device_nGnRE: return 2;
    case MemType::device: return 3;
    case MemType::write_protect: return 5;
    case MemType::write_through: return 7;
    case MemType::tagged: break;
  }
  return -1;
}
// pat_index is the lowest index of kPatType holding the type.
constexpr bool pat_index_is_lowest() {
  const MemType all[] = {MemType::normal,       MemType::write_through, MemType::noncacheable,
                         MemType::device,       MemType::device_nGnRE,  MemType::write_protect,
                         MemType::tagged};
  for (MemType m : all) {
    int want = -1;
    for (int i = 7; i >= 0; --i)
      if (kPatType[i] == m) want = i;
    if (pat_index(m) != want) return false;
  }
  return true;
}
static_assert(pat_index_is_lowest(), "pat_index must name the lowest PAT index of each type");

// "4level", "5level", plus "-nogb" without GBPAGES and "-paNN" for MAXPHYADDR below 52.
struct ModeName {
  char s[20] = {};
};
constexpr unsigned put_str(ModeName& n, unsigned k, const char* p) {
  while (*p) n.s[k++] = *p++;
  return k;
}
constexpr ModeName mode_name(unsigned levels, bool gbpages, unsigned pa_bits) {
  ModeName n;
  unsigned k = 0;
  n.s[k++] = static_cast<char>('0' + levels);
  k = put_str(n, k, "level");
  if (!gbpages) k = put_str(n, k, "-nogb");
  if (pa_bits != 52) {
    k = put_str(n, k, "-pa");
    n.s[k++] = static_cast<char>('0' + pa_bits / 10);
    n.s[k++] = static_cast<char>('0' + pa_bits % 10);
  }
  return n;
}

}  // namespace x86

// Levels: 4 (48-bit VA) or 5 (LA57, 57-bit VA). GbPages: CPUID pdpe1gb, i.e. whether PS=1 in a
// PDPTE maps a 1G page (otherwise that bit is reserved). MaxPhyAddr: the CPU's physical address
// width; entry bits [MaxPhyAddr, 51] are reserved. 52 is the architectural maximum. QEMU's
// default qemu64 CPU reports 40.
template <unsigned Levels, bool GbPages = true, unsigned MaxPhyAddr = 52>
struct X86Format {
  static_assert(Levels == 4 || Levels == 5, "x86-64 walks 4 or 5 levels");
  static_assert(MaxPhyAddr >= 36 && MaxPhyAddr <= 52, "MAXPHYADDR is 36..52");

  static constexpr const char* arch = "x86_64";
  static constexpr x86::ModeName mode_buf = x86::mode_name(Levels, GbPages, MaxPhyAddr);
  static constexpr const char* mode = mode_buf.s;

  static constexpr unsigned levels = Levels;
  static constexpr unsigned page_shift = 12;
  static constexpr unsigned va_bits = page_shift + 9 * Levels;  // 48 or 57
  static constexpr unsigned pa_bits = MaxPhyAddr;
  static constexpr bool gbpages = GbPages;

  // A: hardware sets on every walk. D: hardware sets on write. x86 has no read-only dirty D (see
  // the note at the top), so there is SAVED_DIRTY.
  static constexpr AdCaps ad_caps{true, true, DirtyModel::hw_d_saved_dirty};

  static constexpr unsigned shift(unsigned level) { return page_shift + 9 * level; }
  static constexpr unsigned index_bits(unsigned) { return 9; }  // 512 entries, root included
  static constexpr bool leaf_ok(unsigned level) {
    return level == 0 || level == 1 || (level == 2 && GbPages);
  }
  static constexpr unsigned cont_shift(unsigned) { return 0; }  // no contiguous hint on x86

  // Bits 63..va_bits-1 must all equal bit va_bits-1 (SDM §3.3.7.1, and §4.5.1 for LA57).
  static constexpr bool canonical(uint64_t va) {
    const uint64_t top = va >> (va_bits - 1);
    return top == 0 || top == (~uint64_t{0} >> (va_bits - 1));
  }

  // --- raw <-> vocabulary -------------------------------------------------------------------

  static constexpr Entry decode(uint64_t raw, unsigned level) {
    if (level >= levels) return invalid(level, Reason::unrepresentable);
    if (!(raw & x86::kP)) return decode_not_present(raw, level);
    // Present: the CPU checks reserved bits. The first problem found is reported.
    if (level >= 1 && (raw & x86::kPS) && !leaf_ok(level))
      return invalid(level, Reason::reserved_large_page);  // PML4/PML5, or 1G without GBPAGES
    if (raw & kRsvdHigh) return invalid(level, Reason::reserved_bits);  // [MAXPHYADDR, 51]
    if (level == 0) return leaf_entry(raw, 0, Kind::leaf, raw & kAddr4K);
    if (!(raw & x86::kPS)) return table_entry(raw, level);
    // 2M/1G: bit 12 is PAT, and bits 13..shift-1 are reserved. An output address that is not
    // aligned to the page size sets one of them, so the CPU faults on it.
    if (raw & mask(13, shift(level) - 1)) return invalid(level, Reason::reserved_bits);
    return leaf_entry(raw, level, Kind::leaf, raw & addr_mask(level));
  }

  HUGEPTE_ALWAYS_INLINE static constexpr Result<uint64_t> encode(const Entry& e, unsigned level) {
    const Built b = build(e, level);
    if (b.why != Reason::none) return Err::einval;
    return b.raw;
  }

  // Why encode(e, level) refuses e (Reason::none when it does not). encode returns only
  // Err::einval, so callers and tests that need the reason ask here.
  static constexpr Reason refusal(const Entry& e, unsigned level) { return build(e, level).why; }

  // --- hot path (each agrees with decode) ---------------------------------------------------

  static constexpr bool is_table(uint64_t raw, unsigned level) {
    return level >= 1 && level < levels && (raw & (x86::kP | x86::kPS)) == x86::kP &&
           !(raw & kRsvdHigh);
  }
  static constexpr bool is_leaf(uint64_t raw, unsigned level) {
    if (!(raw & x86::kP) || (raw & kRsvdHigh) || level >= levels) return false;
    if (level == 0) return true;
    return (raw & x86::kPS) && leaf_ok(level) && !(raw & mask(13, shift(level) - 1));
  }
  static constexpr unsigned leaf_shift(uint64_t, unsigned level) { return shift(level); }
  static constexpr uint64_t out_addr(uint64_t raw, unsigned level) {
    return raw & (level >= 1 && (raw & x86::kPS) ? addr_mask(level) : kAddr4K);
  }
  // Linux's _PAGE_TABLE (P|RW|US|A|D). The permissions are the most permissive, because the
  // leaf decides. pa must be 4K-aligned and below 2^pa_bits.
  static constexpr uint64_t make_table(uint64_t pa, unsigned) {
    return (pa & kAddr4K) | x86::kTable;
  }

  // x86 has no contiguous groups. A "group" is one entry.
  static constexpr uint64_t group_entry(uint64_t raw0, unsigned, unsigned) { return raw0; }

  // A leaf at another output address: the address field replaced; for PROT_NONE, whose
  // address is stored inverted over [shift, 51] (L1TF), the inverted field.
  static constexpr uint64_t with_pa(uint64_t raw, unsigned level, uint64_t pa) {
    if (raw & x86::kP) return (raw & ~addr_mask(level)) | pa;
    const uint64_t m = mask(shift(level), x86::kPhysMaskShift - 1);
    return (raw & ~m) | (~pa & m);
  }

  // x86 needs no break-before-make. The CPU may use either the old or the new translation
  // until the INVLPG, and never a mix of the two. So replacing one valid entry with another and
  // then invalidating is architecturally sound (SDM §4.10.4.4).
  static constexpr bool needs_bbm(uint64_t, uint64_t, unsigned) { return false; }

 private:
  static constexpr uint64_t kAddr4K = mask(12, MaxPhyAddr - 1);
  static constexpr uint64_t kRsvdHigh = MaxPhyAddr < 52 ? mask(MaxPhyAddr, 51) : 0;
  static constexpr uint64_t addr_mask(unsigned level) { return mask(shift(level), MaxPhyAddr - 1); }
  static constexpr uint64_t pat_bit(unsigned level) {
    return level == 0 ? x86::kPAT : x86::kPATLarge;
  }

  static constexpr Entry invalid(unsigned level, Reason why) {
    Entry e;
    e.kind = Kind::invalid;
    e.reason = why;
    e.shift = static_cast<uint8_t>(level < levels ? shift(level) : 0);
    return e;
  }

  // A leaf and a protnone entry share one layout for everything but P/PROTNONE/G and the
  // address.
  static constexpr Entry leaf_entry(uint64_t raw, unsigned level, Kind kind, uint64_t addr) {
    Entry e;
    e.kind = kind;
    e.addr = addr;
    e.shift = static_cast<uint8_t>(shift(level));
    // The CPU allows reads wherever P=1, and x86 cannot store a mapping without read.
    e.prot = Prot{true, (raw & x86::kRW) != 0, (raw & x86::kXD) == 0, (raw & x86::kUS) != 0};
    // Linux's pte_write: RW, or a shadow-stack page (W=0, D=1).
    e.writable = (raw & x86::kRW) || (raw & x86::kD);
    e.dirty = (raw & (x86::kD | x86::kSavedDirty)) != 0;  // _PAGE_DIRTY_BITS
    e.accessed = (raw & x86::kA) != 0;
    e.global = kind == Kind::leaf && (raw & x86::kG);
    const unsigned idx = ((raw & x86::kPWT) ? 1u : 0u) | ((raw & x86::kPCD) ? 2u : 0u) |
                         ((raw & pat_bit(level)) ? 4u : 0u);
    e.mem = x86::kPatType[idx];
    e.soft =
        Soft{(raw & x86::kSpecial) != 0, (raw & x86::kSoftDirty) != 0, (raw & x86::kUffdWp) != 0};
    e.keep = raw & x86::kLeafKeep;
    return e;
  }

  static constexpr Entry table_entry(uint64_t raw, unsigned level) {
    Entry e;
    e.kind = Kind::table;
    e.addr = raw & kAddr4K;
    e.shift = static_cast<uint8_t>(shift(level));
    // These restrict everything below (the leaf's rights are ANDed with them). A table has no
    // PAT bit, so PCD/PWT give one of indexes 0..3, which set the caching of the walk itself.
    e.prot = Prot{true, (raw & x86::kRW) != 0, (raw & x86::kXD) == 0, (raw & x86::kUS) != 0};
    e.writable = (raw & x86::kRW) != 0;
    e.mem = x86::kPatType[((raw & x86::kPWT) ? 1u : 0u) | ((raw & x86::kPCD) ? 2u : 0u)];
    e.accessed = (raw & x86::kA) != 0;
    e.keep = raw & x86::kTableKeep;
    return e;
  }

  static constexpr Entry decode_not_present(uint64_t raw, unsigned level) {
    if ((raw & ~x86::kKnlErratum) == 0) {
      Entry e;  // none; erratum bits kept so that the raw value round-trips
      e.keep = raw;
      return e;
    }
    // Linux puts non-present leaves (PROT_NONE, swap, migration, markers) only where a leaf
    // can live: PTE, PMD, and the PUD when 1G hugetlb pages exist.
    if (!leaf_ok(level))
      return invalid(level, level == 2 ? Reason::extension_absent : Reason::leaf_not_allowed);
    const bool huge = level >= 1;
    if ((raw & x86::kProtNone) || (huge && (raw & x86::kPS))) {
      // PROT_NONE entries above the PTE always carry PS (pmd_present checks it). Without PS,
      // this would be a PROT_NONE table pointer, which Linux never writes.
      if (huge && !(raw & x86::kPS)) return invalid(level, Reason::unrepresentable);
      if (huge && (raw & mask(13, shift(level) - 1))) return invalid(level, Reason::reserved_bits);
      const uint64_t addr = ~raw & mask(shift(level), x86::kPhysMaskShift - 1);  // undo L1TF flip
      if (addr >> MaxPhyAddr) return invalid(level, Reason::output_beyond_pa);
      return leaf_entry(raw, level, Kind::protnone, addr);
    }
    // Swap format. Bit 7 must be clear: at the PMD it is PS, which makes pmd_present true.
    if (raw & bit(7)) return invalid(level, Reason::reserved_bits);
    Entry e;
    e.swp.type = static_cast<uint32_t>(raw >> x86::kSwpTypeShift);
    e.swp.offset = (~raw >> x86::kSwpOffsetShift) & mask(0, x86::kSwpOffsetBits - 1);
    e.swp.soft_dirty = (raw & x86::kSwpSoftDirty) != 0;
    e.swp.uffd_wp = (raw & x86::kSwpUffdWp) != 0;
    e.swp.exclusive = (raw & x86::kSwpExclusive) != 0;
    e.kind = e.swp.type == kSwpPteMarker ? Kind::marker : Kind::swap;
    e.shift = static_cast<uint8_t>(shift(level));
    e.keep = raw & x86::kSwapKeep;
    return e;
  }

  struct Built {
    uint64_t raw = 0;
    Reason why = Reason::none;
  };

  static constexpr Reason leaf_level_reason(unsigned level) {
    if (leaf_ok(level)) return Reason::none;
    return level == 2 ? Reason::extension_absent : Reason::leaf_not_allowed;
  }

  HUGEPTE_ALWAYS_INLINE static constexpr Built build(const Entry& e, unsigned level) {
    if (level >= levels) return {0, Reason::unrepresentable};
    // Last guard: accept only what decode reproduces exactly. It catches fields the kind does not
    // store (a global PROT_NONE, a dirty table, prot.read=false, ...). Without it, encode
    // would drop them silently. Leaves and PROT_NONE entries, the hot path of every map, check
    // those fields one by one (leaf_fields_decodable); other kinds pay one decode. Debug builds
    // decode leaves back too and trap if the two answers ever differ.
    if (e.kind == Kind::leaf || e.kind == Kind::protnone) {
      Built b = build_leaf(e, level);
      if (b.why != Reason::none) return b;
      const bool ok = leaf_fields_decodable(e, level);
#ifndef NDEBUG
      if (ok != (decode(b.raw, level) == e)) __builtin_trap();
#endif
      return ok ? b : Built{0, Reason::unrepresentable};
    }
    return build_checked(e, level);
  }

  static constexpr Built build_checked(const Entry& e, unsigned level) {
    Built b = build_raw(e, level);
    if (b.why != Reason::none) return b;
    if (decode(b.raw, level) != e) return {0, Reason::unrepresentable};
    return b;
  }

  // For a leaf or PROT_NONE entry that build_raw accepted: whether decode gives it back. Every
  // field build_raw stores round-trips by construction (the address is aligned and below
  // MAXPHYADDR, keep bits lie outside every field, pat_index is the lowest index of its type,
  // RW/D/SAVED_DIRTY spell writable and dirty without ambiguity once build_raw's two checks
  // passed), so what is left are the fields it does not store, at the values decode gives them.
  static constexpr bool leaf_fields_decodable(const Entry& e, unsigned level) {
    return e.shift == shift(level) && e.cont_shift == 0 && e.prot.read &&
           e.reason == Reason::none && e.swp == Swap{} && e.s2 == Stage2{} &&
           !(e.kind == Kind::protnone && e.global);  // bit 8 is G or PROTNONE, never both
  }

  // A leaf or PROT_NONE entry (e.kind is one of them).
  HUGEPTE_ALWAYS_INLINE static constexpr Built build_leaf(const Entry& e, unsigned level) {
    const uint64_t sz = shift(level);
    if (Reason r = leaf_level_reason(level); r != Reason::none) return {0, r};
    if (!aligned(e.addr, sz)) return {0, Reason::misaligned_output};
    if (e.addr >> MaxPhyAddr) return {0, Reason::output_beyond_pa};
    const int idx = x86::pat_index(e.mem);
    if (idx < 0) return {0, Reason::unrepresentable};
    // RW is the hardware bit. "writable without RW" exists only as a shadow-stack page, which
    // needs D. A clean one has no encoding.
    if (e.prot.write && !e.writable) return {0, Reason::unrepresentable};
    if (e.writable && !e.prot.write && !e.dirty) return {0, Reason::unrepresentable};
    if (e.keep & ~x86::kLeafKeep) return {0, Reason::unrepresentable};
    uint64_t raw = e.keep;
    if (e.kind == Kind::leaf) {
      raw |= x86::kP | e.addr;
      if (e.global) raw |= x86::kG;
    } else {
      raw |= x86::kProtNone | (~e.addr & mask(sz, x86::kPhysMaskShift - 1));  // L1TF flip
    }
    if (level >= 1) raw |= x86::kPS;
    if (e.prot.write) raw |= x86::kRW;
    if (e.prot.user) raw |= x86::kUS;
    if (!e.prot.exec) raw |= x86::kXD;
    if (idx & 1) raw |= x86::kPWT;
    if (idx & 2) raw |= x86::kPCD;
    if (idx & 4) raw |= pat_bit(level);
    if (e.accessed) raw |= x86::kA;
    // W=0 with D=1 means shadow stack, so a read-only dirty page records it in SAVED_DIRTY.
    if (e.dirty) raw |= e.writable ? x86::kD : x86::kSavedDirty;
    if (e.soft.special) raw |= x86::kSpecial;
    if (e.soft.uffd_wp) raw |= x86::kUffdWp;
    if (e.soft.soft_dirty) raw |= x86::kSoftDirty;
    return {raw, Reason::none};
  }

  static constexpr Built build_raw(const Entry& e, unsigned level) {
    switch (e.kind) {
      case Kind::none:
        if (e.keep & ~x86::kNoneKeep) return {0, Reason::unrepresentable};
        return {e.keep, Reason::none};

      case Kind::table: {
        if (level == 0) return {0, Reason::table_not_allowed};
        if (!aligned(e.addr, page_shift)) return {0, Reason::misaligned_output};
        if (e.addr >> MaxPhyAddr) return {0, Reason::output_beyond_pa};
        const int idx = x86::pat_index(e.mem);
        if (idx < 0 || idx > 3) return {0, Reason::unrepresentable};  // no PAT bit in a table
        if (e.keep & ~x86::kTableKeep) return {0, Reason::unrepresentable};
        uint64_t raw = x86::kP | e.addr | e.keep;
        if (e.prot.write) raw |= x86::kRW;
        if (e.prot.user) raw |= x86::kUS;
        if (!e.prot.exec) raw |= x86::kXD;
        if (idx & 1) raw |= x86::kPWT;
        if (idx & 2) raw |= x86::kPCD;
        if (e.accessed) raw |= x86::kA;
        return {raw, Reason::none};
      }

      case Kind::leaf:
      case Kind::protnone:
        return build_leaf(e, level);

      case Kind::swap:
      case Kind::marker: {
        if (Reason r = leaf_level_reason(level); r != Reason::none) return {0, r};
        if (e.swp.type >= (1u << kSwapTypeBits)) return {0, Reason::bad_swap};
        if (e.swp.offset >> x86::kSwpOffsetBits) return {0, Reason::bad_swap};
        if ((e.kind == Kind::marker) != (e.swp.type == kSwpPteMarker))
          return {0, Reason::bad_swap};  // the marker type is exactly the marker kind
        if (e.keep & ~x86::kSwapKeep) return {0, Reason::unrepresentable};
        uint64_t raw = (uint64_t{e.swp.type} << x86::kSwpTypeShift) |
                  ((~e.swp.offset & mask(0, x86::kSwpOffsetBits - 1)) << x86::kSwpOffsetShift) |
                  e.keep;
        if (e.swp.soft_dirty) raw |= x86::kSwpSoftDirty;
        if (e.swp.uffd_wp) raw |= x86::kSwpUffdWp;
        if (e.swp.exclusive) raw |= x86::kSwpExclusive;
        // Type 0 with the largest offset stores all zeros, and would read back as none.
        if ((raw & ~x86::kKnlErratum) == 0) return {0, Reason::bad_swap};
        return {raw, Reason::none};
      }

      case Kind::locked:  // no locked value at stage 1
      case Kind::invalid:
        break;
    }
    return {0, Reason::unrepresentable};
  }
};

using X86_4Level = X86Format<4>;
using X86_5Level = X86Format<5>;
using X86_4LevelNoGb = X86Format<4, false>;  // CPUs without pdpe1gb: no 1G leaves

// The modes every generic test and benchmark runs over.
using X86Formats = TypeList<X86_4Level, X86_5Level>;

static_assert(Format<X86_4Level>);
static_assert(Format<X86_5Level>);
static_assert(Format<X86_4LevelNoGb>);
static_assert(format_ok<X86_4Level>(), "x86-64 4-level format is unsound");
static_assert(format_ok<X86_5Level>(), "x86-64 5-level format is unsound");
static_assert(format_ok<X86_4LevelNoGb>(), "x86-64 4-level format without GBPAGES is unsound");

// The bit whose clearing makes any entry not valid to the MMU: P. A kernel entry with it clear
// is what set_memory_np left: it keeps its frame and attributes (decode --space kernel).
template <unsigned L, bool G, unsigned P>
constexpr uint64_t valid_bit(const X86Format<L, G, P>*) {
  return x86::kP;
}

}  // namespace hugepte
