// hugepte/arch/x86_tdp.hpp - x86 two-dimensional paging (the secondary MMU): Intel EPT and AMD
// NPT entries, as KVM's TDP MMU builds them.
//
// Sources: Intel SDM vol. 3C, "EPT Translation Mechanism" (the EPT paging-structure entry
// tables, EPT misconfigurations and violations, accessed and dirty flags, mode-based execute
// control); AMD APM vol. 2, "Nested Paging" (nested tables use the long-mode layout, every
// nested access is a user access); Linux's arch/x86/include/asm/vmx.h and
// arch/x86/kvm/mmu/spte.h / spte.c for KVM's SPTE software bits and values.
//
// EPT (EptFormat). Levels: 0 PT (4K), 1 PD (2M with bit 7), 2 PDPT (1G with bit 7, when the
// CPU has 1G EPT pages), 3 PML4, 4 PML5. 512 entries at every level; GPA widths 48 and 57.
//   bit  0 R, 1 W, 2 X (XS with MBEC), 5:3 memory type (leaf), 6 IPAT (leaf), 7 large page,
//        8 accessed, 9 dirty (leaf; both with EPTP[6]), 10 XU (with MBEC), 11 KVM's
//        SPTE_MMU_PRESENT, N-1:12 address, 52-53 KVM's A/D mode, 54-55 KVM's saved R/X,
//        57 KVM's host-writable, 58 KVM's MMU-writable, 63 suppress #VE.
//   Present means any of R/W/X (or XU with MBEC). A present entry with W but not R, a reserved
//   bit, a reserved memory type (2, 3, 7) or a large-page bit where the level holds none is an
//   EPT misconfiguration (Kind::invalid, with the reason); a non-present entry, or an access the
//   AND of the permissions denies, is an EPT violation (Kind::none; or a leaf whose prot says no).
//
// NPT (NptFormat): the long-mode layout (x86.hpp) walked with the host's paging mode; every
// nested access is a user access, so a present entry with US=0 faults on every access
// (Kind::invalid, Reason::user_access_required). KVM's software bits on NPT: 9 host-writable,
// 10 MMU-writable, 11 SPTE_MMU_PRESENT; memory type from PAT/PCD/PWT under the host's PAT
// (Linux's programming, x86.hpp); G is ignored (kept).
//
// KVM's values common to both: an SPTE that maps nothing is SHADOW_NONPRESENT_VALUE (bit 63,
// which makes a non-present EPT entry suppress #VE; Kind::none with bit 63 in keep; hugepte
// writes 0, which means the same to the hardware and to KVM on a host without #VE); the frozen
// SPTE, FROZEN_SPTE = bit 63 | 0x5a0 (0x498 in a posted revision, read as well), is
// Kind::locked: not present to the hardware, "hands off, retry" to every software walker.
//
// Vocabulary (both): prot.read/write/exec as the entry grants them (NPT: read always, exec =
// !NX); s2.user_exec = XU with MBEC, else exec; prot.user false (stage 2); writable = KVM's
// MMU-writable bit (the fault path may set W without the slow path); s2.host_writable = KVM's
// host-writable bit; accessed/dirty = A/D; EPT mem from the memory type (0 device, 1
// non-cacheable, 4 write-through, 5 write-protect, 6 normal) and s2.ignore_pat = IPAT. Bit 11
// and bit 63 of a present entry are kept XOR KVM's value (set), so keep == 0 is KVM's SPTE.
//
// Freestanding, constexpr throughout.
#pragma once

#include "hugepte/arch/x86.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/kvm/policy.hpp"

namespace hugepte {

namespace x86 {

// KVM's TDP MMU (arch/x86/kvm/mmu/tdp_mmu.c, mmu.c), the same for EPT and NPT: retry only when
// the gfn is in the pending invalidation, notifier zaps leaf SPTEs only, SIGBUS lsb PAGE_SHIFT,
// huge pages recovered in place, host_pfn_mapping_level up to 1G, split in place, eager split
// on, write protection keeps MMU-writable, RAM executable, no flush after installing.
inline constexpr kvm::Policy kTdpPolicy{false, false, false, kvm::Recovery::eager, 0xff, true,
                                        true, true, false, false, false};

// EPT entry bits (SDM; vmx.h VMX_EPT_*).
inline constexpr uint64_t kEptR = bit(0);
inline constexpr uint64_t kEptW = bit(1);
inline constexpr uint64_t kEptX = bit(2);
inline constexpr uint64_t kEptRwx = kEptR | kEptW | kEptX;
inline constexpr unsigned kEptMtLo = 3;  // VMX_EPT_MT_EPTE_SHIFT
inline constexpr unsigned kEptMtHi = 5;
inline constexpr uint64_t kEptIpat = bit(6);
inline constexpr uint64_t kEptLarge = bit(7);
inline constexpr uint64_t kEptA = bit(8);
inline constexpr uint64_t kEptD = bit(9);
inline constexpr uint64_t kEptXu = bit(10);
inline constexpr uint64_t kEptSuppressVe = bit(63);
// EPT memory types (SDM; MTRR type encodings).
inline constexpr uint64_t kEptMtUc = 0, kEptMtWc = 1, kEptMtWt = 4, kEptMtWp = 5, kEptMtWb = 6;
// EPTP (VMCS 0x201A): memory type of the walk, page-walk length - 1, A/D enable.
inline constexpr uint64_t kEptpMtWb = 6;
inline constexpr unsigned kEptpPwlShift = 3;
inline constexpr uint64_t kEptpAd = bit(6);

// KVM's SPTE software bits (spte.h).
inline constexpr uint64_t kSpteMmuPresent = bit(11);     // SPTE_MMU_PRESENT_MASK
inline constexpr uint64_t kEptHostWritable = bit(57);    // EPT_SPTE_HOST_WRITABLE
inline constexpr uint64_t kEptMmuWritable = bit(58);     // EPT_SPTE_MMU_WRITABLE
inline constexpr uint64_t kNptHostWritable = bit(9);     // DEFAULT_SPTE_HOST_WRITABLE
inline constexpr uint64_t kNptMmuWritable = bit(10);     // DEFAULT_SPTE_MMU_WRITABLE
inline constexpr uint64_t kShadowNonpresent = bit(63);   // SHADOW_NONPRESENT_VALUE
inline constexpr uint64_t kFrozenSpte = kShadowNonpresent | 0x5a0;   // FROZEN_SPTE
inline constexpr uint64_t kFrozenSpteAlt = kShadowNonpresent | 0x498;  // the posted revision
// Bits KVM sets on every present SPTE and hugepte keeps XOR (keep == 0: KVM's spelling).
inline constexpr uint64_t kEptPresentFlip = kSpteMmuPresent | kEptSuppressVe;
inline constexpr uint64_t kNptPresentFlip = kSpteMmuPresent;

constexpr bool ept_mt_to_mem(uint64_t mt, MemType& m) {
  switch (mt) {
    case kEptMtUc: m = MemType::device; return true;
    case kEptMtWc: m = MemType::noncacheable; return true;
    case kEptMtWt: m = MemType::write_through; return true;
    case kEptMtWp: m = MemType::write_protect; return true;
    case kEptMtWb: m = MemType::normal; return true;
  }
  return false;  // 2, 3, 7: misconfiguration
}
constexpr int ept_mem_to_mt(MemType m) {
  switch (m) {
    case MemType::device: return kEptMtUc;
    case MemType::noncacheable: return kEptMtWc;
    case MemType::write_through: return kEptMtWt;
    case MemType::write_protect: return kEptMtWp;
    case MemType::normal: return kEptMtWb;
    case MemType::device_nGnRE:  // UC- exists only in the PAT
    case MemType::tagged: break;
  }
  return -1;
}

struct TdpModeName {
  char s[24] = {};
};
constexpr TdpModeName tdp_mode_name(const char* kind, unsigned levels, bool ad, bool mbec,
                                    bool gbpages, unsigned pa_bits) {
  TdpModeName n;
  unsigned k = 0;
  auto put = [&](const char* p) {
    while (*p) n.s[k++] = *p++;
  };
  put(kind);
  n.s[k++] = static_cast<char>('0' + levels);
  if (!ad) put("-noad");
  if (mbec) put("-mbec");
  if (!gbpages) put("-nogb");
  if (pa_bits != 52) {
    put("-pa");
    n.s[k++] = static_cast<char>('0' + pa_bits / 10);
    n.s[k++] = static_cast<char>('0' + pa_bits % 10);
  }
  return n;
}

// What KVM's TDP MMU writes into a non-present SPTE, and the frozen values.
constexpr bool is_frozen_spte(uint64_t raw) { return raw == kFrozenSpte || raw == kFrozenSpteAlt; }

// A non-present SPTE (EPT or NPT) in the vocabulary: locked for a frozen value (keep: how it
// differs from FROZEN_SPTE), otherwise none with every bit kept; and back.
constexpr Entry tdp_nonpresent(uint64_t raw, Entry e) {
  e.kind = is_frozen_spte(raw) ? Kind::locked : Kind::none;
  e.keep = e.kind == Kind::locked ? raw ^ kFrozenSpte : raw;
  return e;
}
template <class F>
constexpr Result<uint64_t> tdp_encode_nonpresent(const Entry& e, unsigned level) {
  return encode_checked<F>(e.kind == Kind::locked ? e.keep ^ kFrozenSpte : e.keep, e, level);
}

}  // namespace x86

// Intel EPT. Levels 4 or 5 (EPTP page-walk length); AdEnabled = EPTP[6]; Mbec = mode-based
// execute control (bit 2 is XS, bit 10 XU); GbPages = IA32_VMX_EPT_VPID_CAP bit 17; MaxPhyAddr
// the CPU's physical-address width (bits [MaxPhyAddr, 51] are reserved).
template <unsigned Levels, bool AdEnabled = true, bool Mbec = false, bool GbPages = true,
          unsigned MaxPhyAddr = 52>
struct EptFormat {
  static_assert(Levels == 4 || Levels == 5, "EPT walks 4 or 5 levels");
  static_assert(MaxPhyAddr >= 36 && MaxPhyAddr <= 52, "MAXPHYADDR is 36..52");

  static constexpr unsigned stage = 2;
  static constexpr kvm::Policy kvm = x86::kTdpPolicy;
  static constexpr const char* arch = "x86_64";
  static constexpr x86::TdpModeName kModeName =
      x86::tdp_mode_name("ept", Levels, AdEnabled, Mbec, GbPages, MaxPhyAddr);
  static constexpr const char* mode = kModeName.s;

  static constexpr unsigned levels = Levels;
  static constexpr unsigned page_shift = 12;
  static constexpr unsigned va_bits = page_shift + 9 * Levels;  // GPA width: 48 or 57
  static constexpr unsigned pa_bits = MaxPhyAddr;
  // The EPTP that selects this format for a root at `pa` (write-back walks).
  static constexpr uint64_t eptp(uint64_t pa) {
    return pa | x86::kEptpMtWb | (uint64_t{Levels - 1} << x86::kEptpPwlShift) |
           (AdEnabled ? x86::kEptpAd : 0);
  }

  static constexpr AdCaps ad_caps{AdEnabled, AdEnabled, DirtyModel::hw_d};

  static constexpr unsigned shift(unsigned level) { return page_shift + 9 * level; }
  static constexpr unsigned index_bits(unsigned) { return 9; }
  static constexpr bool leaf_ok(unsigned level) {
    return level == 0 || level == 1 || (level == 2 && GbPages);
  }
  static constexpr unsigned cont_shift(unsigned) { return 0; }
  static constexpr bool canonical(uint64_t gpa) { return (gpa >> va_bits) == 0; }

  static constexpr uint64_t kPresentBits = x86::kEptRwx | (Mbec ? x86::kEptXu : 0);
  static constexpr uint64_t kRsvdHigh = MaxPhyAddr < 52 ? mask(MaxPhyAddr, 51) : 0;
  static constexpr uint64_t kAddr4K = mask(12, MaxPhyAddr - 1);
  static constexpr uint64_t addr_mask(unsigned level) { return mask(shift(level), MaxPhyAddr - 1); }
  static constexpr uint64_t kAdBits = x86::kEptA | x86::kEptD;
  // Keep masks: what the walk ignores (KVM's software bits outside the vocabulary included).
  static constexpr uint64_t kLeafKeep = x86::kEptPresentFlip | mask(52, 56) | mask(59, 62) |
                                        (Mbec ? 0 : x86::kEptXu) | (AdEnabled ? 0 : kAdBits);
  static constexpr uint64_t kTableKeep = x86::kEptPresentFlip | x86::kEptD | mask(52, 62) |
                                         (Mbec ? 0 : x86::kEptXu) | (AdEnabled ? 0 : x86::kEptA);

  HUGEPTE_ALWAYS_INLINE static constexpr bool present(uint64_t raw) { return (raw & kPresentBits) != 0; }

  // The misconfiguration a present entry causes, Reason::none if it has none.
  HUGEPTE_ALWAYS_INLINE static constexpr Reason misconfig(uint64_t raw, unsigned level) {
    if (raw & kRsvdHigh) return Reason::reserved_bits;
    if ((raw & (x86::kEptR | x86::kEptW)) == x86::kEptW) return Reason::write_without_read;
    const bool large = level >= 1 && (raw & x86::kEptLarge);
    if (large && !leaf_ok(level)) return Reason::reserved_large_page;
    if (level >= 1 && !large) {  // a pointer to the next table: bits 6:3 reserved
      return (raw & mask(3, 6)) ? Reason::reserved_bits : Reason::none;
    }
    if (large && (raw & mask(12, shift(level) - 1))) return Reason::reserved_bits;
    MemType m{};
    if (!x86::ept_mt_to_mem(field(raw, x86::kEptMtLo, x86::kEptMtHi), m))
      return Reason::reserved_memory_type;
    return Reason::none;
  }

  HUGEPTE_ALWAYS_INLINE static constexpr bool is_table(uint64_t raw, unsigned level) {
    return level >= 1 && level < levels && present(raw) && !(raw & x86::kEptLarge) &&
           misconfig(raw, level) == Reason::none;
  }
  HUGEPTE_ALWAYS_INLINE static constexpr bool is_leaf(uint64_t raw, unsigned level) {
    return level < levels && present(raw) && (level == 0 || (raw & x86::kEptLarge)) &&
           misconfig(raw, level) == Reason::none;
  }
  static constexpr unsigned leaf_shift(uint64_t, unsigned level) { return shift(level); }
  static constexpr uint64_t out_addr(uint64_t raw, unsigned level) {
    return raw & (level >= 1 && (raw & x86::kEptLarge) ? addr_mask(level) : kAddr4K);
  }
  // KVM's make_nonleaf_spte: RWX (XU with MBEC), A with A/D enabled, MMU-present, suppress #VE.
  static constexpr uint64_t make_table(uint64_t pa, unsigned) {
    return (pa & kAddr4K) | kPresentBits | (AdEnabled ? x86::kEptA : 0) | x86::kEptPresentFlip;
  }
  static constexpr uint64_t group_entry(uint64_t raw0, unsigned, unsigned) { return raw0; }
  // With MBEC bit 10 (XU) makes the frozen value present: no locked value then.
  static constexpr bool is_locked(uint64_t raw) { return !present(raw) && x86::is_frozen_spte(raw); }
  static constexpr uint64_t with_pa(uint64_t raw, unsigned level, uint64_t pa) {
    return (raw & ~addr_mask(level)) | pa;
  }
  // x86 never needs break-before-make (SDM "Guidelines for Use of the INVEPT Instruction").
  static constexpr bool needs_bbm(uint64_t, uint64_t, unsigned) { return false; }

  static constexpr Entry decode(uint64_t raw, unsigned level) {
    Entry e;
    if (raw == 0) return e;
    e.shift = static_cast<uint8_t>(level < levels ? shift(level) : 0);
    if (level >= levels) return invalid(e, Reason::unrepresentable);
    if (!present(raw)) return x86::tdp_nonpresent(raw, e);  // an EPT violation
    if (Reason r = misconfig(raw, level); r != Reason::none) return invalid(e, r);
    e.prot = Prot{(raw & x86::kEptR) != 0, (raw & x86::kEptW) != 0, (raw & x86::kEptX) != 0,
                  false};
    e.s2.user_exec = Mbec ? (raw & x86::kEptXu) != 0 : e.prot.exec;
    if (AdEnabled) e.accessed = (raw & x86::kEptA) != 0;
    if (level >= 1 && !(raw & x86::kEptLarge)) {
      e.kind = Kind::table;
      e.addr = raw & kAddr4K;
      e.keep = (raw ^ x86::kEptPresentFlip) & kTableKeep;
      return e;
    }
    e.kind = Kind::leaf;
    e.addr = out_addr(raw, level);
    x86::ept_mt_to_mem(field(raw, x86::kEptMtLo, x86::kEptMtHi), e.mem);
    e.s2.ignore_pat = (raw & x86::kEptIpat) != 0;
    e.s2.host_writable = (raw & x86::kEptHostWritable) != 0;
    e.writable = (raw & x86::kEptMmuWritable) != 0;
    if (AdEnabled) e.dirty = (raw & x86::kEptD) != 0;
    e.keep = (raw ^ x86::kEptPresentFlip) & (kLeafKeep | (level == 0 ? x86::kEptLarge : 0));
    return e;
  }

  // Refuses (Err::einval) what decode would not give back: protnone, swap, marker, invalid; a
  // leaf where the level holds none, a table at level 0; a misaligned or too wide address;
  // write without read; nothing present (no R/W/X, or XU with MBEC); user_exec != exec without
  // MBEC; accessed/dirty without A/D; a memory type EPT cannot name (UC- and tagged) or one on a
  // table; prot.user, global, groups, stage-1 software bits; keep bits outside the kind's mask;
  // a locked value other than the two frozen SPTEs.
  HUGEPTE_ALWAYS_INLINE static constexpr Result<uint64_t> encode(const Entry& e, unsigned level) {
    if (level >= levels) return Err::einval;
    if (e.shift != 0 && e.shift != shift(level)) return Err::einval;
    if (stage1_fields_set(e) || e.cont_shift != 0) return Err::einval;
    switch (e.kind) {
      case Kind::none:
      case Kind::locked:
        return x86::tdp_encode_nonpresent<EptFormat>(e, level);
      case Kind::table:
      case Kind::leaf:
        return encode_present(e, level);
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

  HUGEPTE_ALWAYS_INLINE static constexpr Result<uint64_t> encode_present(const Entry& e, unsigned level) {
    const Prot& p = e.prot;
    const bool table = e.kind == Kind::table;
    if (table ? level == 0 : !leaf_ok(level)) return Err::einval;
    if (!aligned(e.addr, table ? page_shift : shift(level)) || (e.addr >> MaxPhyAddr))
      return Err::einval;
    if (p.write && !p.read) return Err::einval;
    if (!Mbec && e.s2.user_exec != p.exec) return Err::einval;
    if (!(p.read || p.write || p.exec || (Mbec && e.s2.user_exec))) return Err::einval;
    if (!AdEnabled && (e.accessed || e.dirty)) return Err::einval;
    uint64_t raw = e.addr;
    if (p.read) raw |= x86::kEptR;
    if (p.write) raw |= x86::kEptW;
    if (p.exec) raw |= x86::kEptX;
    if (Mbec && e.s2.user_exec) raw |= x86::kEptXu;
    if (e.accessed) raw |= x86::kEptA;
    if (table) {
      if (e.writable || e.dirty || e.mem != MemType::normal || e.s2.ignore_pat ||
          e.s2.host_writable || (e.keep & ~kTableKeep))
        return Err::einval;
      return raw | ((e.keep ^ x86::kEptPresentFlip) & kTableKeep);
    }
    const uint64_t keep_mask = kLeafKeep | (level == 0 ? x86::kEptLarge : 0);
    if (e.keep & ~keep_mask) return Err::einval;
    const int mt = x86::ept_mem_to_mt(e.mem);
    if (mt < 0) return Err::einval;
    raw |= uint64_t(mt) << x86::kEptMtLo;
    if (level >= 1) raw |= x86::kEptLarge;
    if (e.s2.ignore_pat) raw |= x86::kEptIpat;
    if (e.dirty) raw |= x86::kEptD;
    if (e.s2.host_writable) raw |= x86::kEptHostWritable;
    if (e.writable) raw |= x86::kEptMmuWritable;
    return raw | ((e.keep ^ x86::kEptPresentFlip) & keep_mask);
  }
};

// AMD NPT: the long-mode layout (4 or 5 levels, the host's mode at VMRUN). 1G nested pages are
// assumed (every CPU with NPT and QEMU's walker accept them).
template <unsigned Levels, unsigned MaxPhyAddr = 52>
struct NptFormat {
  static_assert(Levels == 4 || Levels == 5, "NPT walks 4 or 5 levels");
  static_assert(MaxPhyAddr >= 36 && MaxPhyAddr <= 52, "MAXPHYADDR is 36..52");

  static constexpr unsigned stage = 2;
  static constexpr kvm::Policy kvm = x86::kTdpPolicy;
  static constexpr const char* arch = "x86_64";
  static constexpr x86::TdpModeName kModeName =
      x86::tdp_mode_name("npt", Levels, true, false, true, MaxPhyAddr);
  static constexpr const char* mode = kModeName.s;

  static constexpr unsigned levels = Levels;
  static constexpr unsigned page_shift = 12;
  static constexpr unsigned va_bits = page_shift + 9 * Levels;
  static constexpr unsigned pa_bits = MaxPhyAddr;
  static constexpr AdCaps ad_caps{true, true, DirtyModel::hw_d};

  static constexpr unsigned shift(unsigned level) { return page_shift + 9 * level; }
  static constexpr unsigned index_bits(unsigned) { return 9; }
  static constexpr bool leaf_ok(unsigned level) { return level <= 2; }
  static constexpr unsigned cont_shift(unsigned) { return 0; }
  static constexpr bool canonical(uint64_t gpa) { return (gpa >> va_bits) == 0; }

  static constexpr uint64_t kRsvdHigh = MaxPhyAddr < 52 ? mask(MaxPhyAddr, 51) : 0;
  static constexpr uint64_t kAddr4K = mask(12, MaxPhyAddr - 1);
  static constexpr uint64_t addr_mask(unsigned level) { return mask(shift(level), MaxPhyAddr - 1); }
  static constexpr uint64_t pat_bit(unsigned level) {
    return level == 0 ? x86::kPAT : x86::kPATLarge;
  }
  static constexpr uint64_t kLeafKeep = x86::kG | x86::kNptPresentFlip | mask(52, 62);
  static constexpr uint64_t kTableKeep = x86::kPWT | x86::kPCD | x86::kD | x86::kG | bit(9) |
                                         bit(10) | x86::kNptPresentFlip | mask(52, 62);

  HUGEPTE_ALWAYS_INLINE static constexpr Reason problem(uint64_t raw, unsigned level) {
    if (level >= 1 && (raw & x86::kPS) && !leaf_ok(level)) return Reason::reserved_large_page;
    if (raw & kRsvdHigh) return Reason::reserved_bits;
    if (level >= 1 && (raw & x86::kPS) && (raw & mask(13, shift(level) - 1)))
      return Reason::reserved_bits;
    if (!(raw & x86::kUS)) return Reason::user_access_required;
    return Reason::none;
  }
  HUGEPTE_ALWAYS_INLINE static constexpr bool is_table(uint64_t raw, unsigned level) {
    return level >= 1 && level < levels && (raw & (x86::kP | x86::kPS)) == x86::kP &&
           problem(raw, level) == Reason::none;
  }
  HUGEPTE_ALWAYS_INLINE static constexpr bool is_leaf(uint64_t raw, unsigned level) {
    return level < levels && (raw & x86::kP) && (level == 0 || (raw & x86::kPS)) &&
           problem(raw, level) == Reason::none;
  }
  static constexpr unsigned leaf_shift(uint64_t, unsigned level) { return shift(level); }
  static constexpr uint64_t out_addr(uint64_t raw, unsigned level) {
    return raw & (level >= 1 && (raw & x86::kPS) ? addr_mask(level) : kAddr4K);
  }
  // KVM's make_nonleaf_spte on NPT: P, RW, US, A and MMU-present.
  static constexpr uint64_t make_table(uint64_t pa, unsigned) {
    return (pa & kAddr4K) | x86::kP | x86::kRW | x86::kUS | x86::kA | x86::kSpteMmuPresent;
  }
  static constexpr uint64_t group_entry(uint64_t raw0, unsigned, unsigned) { return raw0; }
  static constexpr bool is_locked(uint64_t raw) { return x86::is_frozen_spte(raw); }
  static constexpr uint64_t with_pa(uint64_t raw, unsigned level, uint64_t pa) {
    return (raw & ~addr_mask(level)) | pa;
  }
  static constexpr bool needs_bbm(uint64_t, uint64_t, unsigned) { return false; }

  static constexpr Entry decode(uint64_t raw, unsigned level) {
    Entry e;
    if (raw == 0) return e;
    e.shift = static_cast<uint8_t>(level < levels ? shift(level) : 0);
    if (level >= levels) return invalid(e, Reason::unrepresentable);
    if (!(raw & x86::kP)) return x86::tdp_nonpresent(raw, e);  // every other bit is free
    if (Reason r = problem(raw, level); r != Reason::none) return invalid(e, r);
    e.prot = Prot{true, (raw & x86::kRW) != 0, !(raw & x86::kXD), false};
    e.s2.user_exec = e.prot.exec;
    e.accessed = (raw & x86::kA) != 0;
    if (level >= 1 && !(raw & x86::kPS)) {
      e.kind = Kind::table;
      e.addr = raw & kAddr4K;
      e.keep = (raw ^ x86::kNptPresentFlip) & kTableKeep;
      return e;
    }
    e.kind = Kind::leaf;
    e.addr = out_addr(raw, level);
    const unsigned idx = ((raw & x86::kPWT) ? 1u : 0u) | ((raw & x86::kPCD) ? 2u : 0u) |
                         ((raw & pat_bit(level)) ? 4u : 0u);
    e.mem = x86::kPatType[idx];
    e.dirty = (raw & x86::kD) != 0;
    e.s2.host_writable = (raw & x86::kNptHostWritable) != 0;
    e.writable = (raw & x86::kNptMmuWritable) != 0;
    e.keep = (raw ^ x86::kNptPresentFlip) & kLeafKeep;
    // PAT indexes 4 (WB) and 6 (UC-) repeat 0 and 2: the PAT bit of that spelling is kept, so
    // the raw value round-trips.
    if (idx == 4 || idx == 6) e.keep |= pat_bit(level);
    return e;
  }

  // Refuses (Err::einval) what decode would not give back: protnone, swap, marker, invalid; a
  // leaf where the level holds none, a table at level 0; a misaligned or too wide address; a
  // mapping without read (x86 cannot deny it); user_exec != exec; IPAT (EPT only); a memory
  // type the PAT cannot name, or any on a table; prot.user, global, groups, stage-1 software
  // bits; keep bits outside the kind's mask; a locked value other than the frozen SPTEs.
  HUGEPTE_ALWAYS_INLINE static constexpr Result<uint64_t> encode(const Entry& e, unsigned level) {
    if (level >= levels) return Err::einval;
    if (e.shift != 0 && e.shift != shift(level)) return Err::einval;
    if (stage1_fields_set(e) || e.cont_shift != 0) return Err::einval;
    switch (e.kind) {
      case Kind::none:
      case Kind::locked:
        return x86::tdp_encode_nonpresent<NptFormat>(e, level);
      case Kind::table:
      case Kind::leaf:
        return encode_present(e, level);
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

  HUGEPTE_ALWAYS_INLINE static constexpr Result<uint64_t> encode_present(const Entry& e, unsigned level) {
    const Prot& p = e.prot;
    const bool table = e.kind == Kind::table;
    if (table ? level == 0 : !leaf_ok(level)) return Err::einval;
    if (!aligned(e.addr, table ? page_shift : shift(level)) || (e.addr >> MaxPhyAddr))
      return Err::einval;
    if (!p.read || e.s2.user_exec != p.exec || e.s2.ignore_pat) return Err::einval;
    uint64_t raw = e.addr | x86::kP | x86::kUS;
    if (p.write) raw |= x86::kRW;
    if (!p.exec) raw |= x86::kXD;
    if (e.accessed) raw |= x86::kA;
    if (table) {
      if (e.writable || e.dirty || e.mem != MemType::normal || e.s2.host_writable ||
          (e.keep & ~kTableKeep))
        return Err::einval;
      return raw | ((e.keep ^ x86::kNptPresentFlip) & kTableKeep);
    }
    const uint64_t pat_spelling = e.keep & pat_bit(level);  // index 4 or 6 (decode)
    if (e.keep & ~(kLeafKeep | pat_bit(level))) return Err::einval;
    const int idx = x86::pat_index(e.mem) | (pat_spelling ? 4 : 0);
    if (x86::pat_index(e.mem) < 0 || (pat_spelling && idx != 4 && idx != 6)) return Err::einval;
    if (idx & 1) raw |= x86::kPWT;
    if (idx & 2) raw |= x86::kPCD;
    if (idx & 4) raw |= pat_bit(level);
    if (level >= 1) raw |= x86::kPS;
    if (e.dirty) raw |= x86::kD;
    if (e.s2.host_writable) raw |= x86::kNptHostWritable;
    if (e.writable) raw |= x86::kNptMmuWritable;
    return raw | ((e.keep ^ x86::kNptPresentFlip) & kLeafKeep);
  }
};

using Ept4 = EptFormat<4>;
using Ept5 = EptFormat<5>;
using Npt4 = NptFormat<4>;
using Npt5 = NptFormat<5>;

static_assert(Format<Ept4>);
static_assert(Format<Npt4>);
static_assert(format_ok<Ept4>(), "EPT 4-level is unsound");
static_assert(format_ok<Ept5>(), "EPT 5-level is unsound");
static_assert(format_ok<Npt4>(), "NPT 4-level is unsound");
static_assert(format_ok<Npt5>(), "NPT 5-level is unsound");

using X86Stage2Formats = TypeList<Ept4, Ept5, Npt4, Npt5>;

}  // namespace hugepte
