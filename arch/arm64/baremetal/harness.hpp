// harness.hpp - what the arm64 bare-metal harness shares between its boot code (platform.cpp)
// and its in-guest cases (mmu_cases.cpp): system-register access, raw VMSAv8-64 stage 1
// descriptor bits, the translation geometry of each granule, and a tiny raw-bit table builder.
//
// Deliberately independent of the library's arm64 format (arch/arm64/include): mmu_cases.cpp
// checks the hardware against descriptors encoded from the Arm ARM itself, with this builder.
// The boot identity map is the library's own table (boot_map.hpp); this builder makes it only
// when the CPU lacks the image's granule and the harness falls back to another one.
// Lookup levels here are the Arm ARM's (0 = top, 3 = page), because that is what
// ESR_EL1.DFSC reports; the library's vocabulary counts the other way (0 = PTE).
#pragma once

#include <stdint.h>

namespace hpt::arm64_bm {

constexpr uint64_t bit(unsigned n) { return uint64_t{1} << n; }
constexpr uint64_t mask(unsigned lo, unsigned hi) {  // bits [lo, hi] inclusive
  return (hi >= 63 ? ~uint64_t{0} : bit(hi + 1) - 1) & ~(bit(lo) - 1);
}
constexpr uint64_t field(uint64_t v, unsigned lo, unsigned hi) { return (v & mask(lo, hi)) >> lo; }
constexpr uint64_t align_up(uint64_t v, unsigned shift) {
  return (v + bit(shift) - 1) & ~(bit(shift) - 1);
}
constexpr uint64_t align_down(uint64_t v, unsigned shift) { return v & ~(bit(shift) - 1); }

// --- the QEMU virt board ------------------------------------------------------------------------

constexpr uint64_t kUartBase = 0x0900'0000;  // PL011
constexpr uint64_t kRamBase = 0x4000'0000;
#ifndef HPT_ARM64_RAM_SIZE
#define HPT_ARM64_RAM_SIZE (2ull << 30)  // must match -m in CMakeLists.txt; checked at boot
#endif
constexpr uint64_t kRamSize = HPT_ARM64_RAM_SIZE;

// --- system registers ---------------------------------------------------------------------------

#define HPT_A64_SYSREG_RO(name)               \
  inline uint64_t read_##name() {                  \
    uint64_t v;                                    \
    asm volatile("mrs %0, " #name : "=r"(v)); \
    return v;                                 \
  }
#define HPT_A64_SYSREG(name) \
  HPT_A64_SYSREG_RO(name)    \
  inline void write_##name(uint64_t v) { asm volatile("msr " #name ", %0" : : "r"(v) : "memory"); }

HPT_A64_SYSREG_RO(currentel)
HPT_A64_SYSREG_RO(id_aa64mmfr0_el1)
HPT_A64_SYSREG_RO(id_aa64mmfr1_el1)
HPT_A64_SYSREG_RO(id_aa64pfr1_el1)
HPT_A64_SYSREG(sctlr_el1)
HPT_A64_SYSREG(tcr_el1)
HPT_A64_SYSREG(mair_el1)
HPT_A64_SYSREG(ttbr0_el1)
HPT_A64_SYSREG(vbar_el1)
HPT_A64_SYSREG(par_el1)
HPT_A64_SYSREG(cpacr_el1)

inline void isb() { asm volatile("isb" ::: "memory"); }
inline void dsb_ish() { asm volatile("dsb ish" ::: "memory"); }
inline void dsb_ishst() { asm volatile("dsb ishst" ::: "memory"); }

// Address translation instruction: PAR_EL1 after a stage 1 EL1 read (or write) lookup of `va`.
inline uint64_t at_s1e1r(uint64_t va) {
  asm volatile("at s1e1r, %0" : : "r"(va) : "memory");
  isb();
  return read_par_el1();
}
inline uint64_t at_s1e1w(uint64_t va) {
  asm volatile("at s1e1w, %0" : : "r"(va) : "memory");
  isb();
  return read_par_el1();
}
constexpr bool par_faulted(uint64_t par) { return par & 1; }
constexpr uint64_t par_pa(uint64_t par) { return par & mask(12, 47); }
constexpr uint64_t par_attr(uint64_t par) { return field(par, 56, 63); }  // the MAIR byte in use

// Make code written through the data side visible to instruction fetch (written through `va`).
inline void sync_icache(uint64_t va, uint64_t len) {
  for (uint64_t p = align_down(va, 6); p < va + len; p += 64)
    asm volatile("dc cvau, %0" : : "r"(p) : "memory");
  dsb_ish();
  asm volatile("ic iallu" ::: "memory");  // by-VA would miss VIPT aliases at other VAs
  dsb_ish();
  isb();
}

// ID_AA64MMFR0_EL1 / ID_AA64MMFR1_EL1 fields the harness reads.
inline bool granule_supported(unsigned shift) {
  uint64_t r = read_id_aa64mmfr0_el1();
  switch (shift) {
    case 12: return field(r, 28, 31) != 0xf;  // TGran4: 0 = yes, 1 = yes with 52-bit, 0xf = no
    case 14: return field(r, 20, 23) != 0;    // TGran16: 0 = no, 1 = yes, 2 = yes with 52-bit
    case 16: return field(r, 24, 27) != 0xf;  // TGran64: 0 = yes, 0xf = no
  }
  return false;
}
inline unsigned pa_range() { return static_cast<unsigned>(field(read_id_aa64mmfr0_el1(), 0, 3)); }
inline unsigned hafdbs() { return static_cast<unsigned>(field(read_id_aa64mmfr1_el1(), 0, 3)); }

// --- exception syndrome (ESR_EL1) ---------------------------------------------------------------

namespace ec {
constexpr uint64_t kUnknown = 0x00;
constexpr uint64_t kInsnAbortLowerEl = 0x20;
constexpr uint64_t kInsnAbortSameEl = 0x21;
constexpr uint64_t kDataAbortLowerEl = 0x24;
constexpr uint64_t kDataAbortSameEl = 0x25;
}  // namespace ec
constexpr uint64_t esr_ec(uint64_t esr) { return field(esr, 26, 31); }
constexpr uint64_t esr_fsc(uint64_t esr) { return field(esr, 0, 5); }  // DFSC / IFSC
constexpr bool esr_wnr(uint64_t esr) { return esr & bit(6); }
// Fault status codes 0b00TTLL: TT = 1 translation, 2 access flag, 3 permission; LL = level.
constexpr uint64_t fsc_translation(int level) { return 0x04 | static_cast<uint64_t>(level); }
constexpr uint64_t fsc_access_flag(int level) { return 0x08 | static_cast<uint64_t>(level); }
constexpr uint64_t fsc_permission(int level) { return 0x0c | static_cast<uint64_t>(level); }

// --- MAIR_EL1 / TCR_EL1 / SCTLR_EL1 -------------------------------------------------------------

// AttrIndx values, as Linux programs MAIR_EL1 (arch/arm64/include/asm/memory.h: MT_*, and
// MAIR_EL1_SET in asm/sysreg.h). Indexes 5-7 stay 0x00 and are never used.
enum AttrIndx : unsigned {
  kMtNormal = 0,        // 0xff: write-back, read/write-allocate
  kMtNormalTagged = 1,  // 0xf0 with MTE2; Linux leaves it 0xff until MTE is enabled
  kMtNormalNC = 2,      // 0x44
  kMtDeviceNGnRnE = 3,  // 0x00
  kMtDeviceNGnRE = 4,   // 0x04
};
inline uint64_t mair_value() {
  const bool mte2 = field(read_id_aa64pfr1_el1(), 8, 11) >= 2;
  return (uint64_t{0xff} << (8 * kMtNormal)) |
         (uint64_t{mte2 ? 0xf0u : 0xffu} << (8 * kMtNormalTagged)) |
         (uint64_t{0x44} << (8 * kMtNormalNC)) | (uint64_t{0x00} << (8 * kMtDeviceNGnRnE)) |
         (uint64_t{0x04} << (8 * kMtDeviceNGnRE));
}

namespace tcr {
constexpr unsigned kT0szLo = 0, kT0szHi = 5;
constexpr uint64_t kIrgn0Wb = uint64_t{1} << 8;   // walks: inner write-back read/write-allocate
constexpr uint64_t kOrgn0Wb = uint64_t{1} << 10;  // outer likewise
constexpr uint64_t kSh0Inner = uint64_t{3} << 12;
constexpr unsigned kTg0Lo = 14, kTg0Hi = 15;
constexpr unsigned kT1szLo = 16;
constexpr uint64_t kEpd1 = bit(23);  // no TTBR1 walks: the upper VA range always faults
constexpr unsigned kTg1Lo = 30, kTg1Hi = 31;
constexpr unsigned kIpsLo = 32, kIpsHi = 34;
constexpr uint64_t kHa = bit(39);  // hardware Access flag update
constexpr uint64_t kHd = bit(40);  // hardware dirty state (DBM) update
// TG0 and TG1 encode the same granule differently.
constexpr uint64_t tg0(unsigned shift) { return shift == 12 ? 0 : shift == 16 ? 1 : 2; }
constexpr uint64_t tg1(unsigned shift) { return shift == 12 ? 2 : shift == 16 ? 3 : 1; }
}  // namespace tcr

namespace sctlr {
constexpr uint64_t kM = bit(0);
constexpr uint64_t kA = bit(1);
constexpr uint64_t kC = bit(2);
constexpr uint64_t kI = bit(12);
constexpr uint64_t kWxn = bit(19);
constexpr uint64_t kE0e = bit(24);
constexpr uint64_t kEe = bit(25);
}  // namespace sctlr

// --- stage 1 descriptors ------------------------------------------------------------------------

namespace desc {
constexpr uint64_t kValid = bit(0);
constexpr uint64_t kTypeTableOrPage = bit(1);  // [1:0] 0b11: table (levels 0-2) or page (level 3)
constexpr uint64_t kTypeBlock = 0;  // [1:0] 0b01: block (levels 1-2 as the granule allows)
constexpr uint64_t attr_indx(unsigned i) { return uint64_t{i} << 2; }
constexpr uint64_t kApEl0 = bit(6);  // AP[1]: EL0 may access (never set: EL1 could not execute it)
constexpr uint64_t kApReadOnly = bit(7);  // AP[2]
constexpr uint64_t kShInner = uint64_t{3} << 8;
constexpr uint64_t kAf = bit(10);
constexpr uint64_t kNg = bit(11);
constexpr uint64_t kDbm = bit(51);         // dirty bit modifier: with TCR.HD a write clears AP[2]
constexpr uint64_t kContiguous = bit(52);  // one of a naturally aligned group of entries
constexpr uint64_t kPxn = bit(53);
constexpr uint64_t kUxn = bit(54);
constexpr uint64_t kOaMask = mask(12, 47);  // output address bits (48-bit OA); low bits by granule

// Attribute sets the harness and its cases use (everything but the type and output address).
constexpr uint64_t kNormalRwx = attr_indx(kMtNormal) | kShInner | kAf;
constexpr uint64_t kNormalRw = kNormalRwx | kPxn | kUxn;
constexpr uint64_t kNormalRo = kNormalRw | kApReadOnly;
constexpr uint64_t kDeviceRw =
    attr_indx(kMtDeviceNGnRnE) | kAf | kPxn | kUxn;  // never fetch from MMIO
}  // namespace desc

// Geometry of one translation granule (shift 12, 14 or 16), 48-bit OA, no LPA/LPA2 (TCR.DS=0).
template <unsigned G>
struct Geometry {
  static_assert(G == 12 || G == 14 || G == 16, "granules are 4K, 16K and 64K");
  static constexpr unsigned kGranuleShift = G;
  static constexpr unsigned kIndexBits = G - 3;  // a table is one granule of 8-byte descriptors
  static constexpr unsigned kVaBits = G == 14 ? 47 : 48;  // 16K: 47 bits keeps 3 levels
  static constexpr unsigned kT0sz = 64 - kVaBits;
  static constexpr int kPageLevel = 3;

  // Bits of VA below the entries at `level` (the size of what one entry maps).
  static constexpr unsigned level_shift(int level) {
    return G + static_cast<unsigned>(kPageLevel - level) * kIndexBits;
  }
  // The first level whose entries, together, cover the whole VA range.
  static constexpr int start_level() {
    int l = kPageLevel;
    while (level_shift(l) + kIndexBits < kVaBits) --l;
    return l;
  }
  // Blocks the harness uses: 4K at levels 1 (1G) and 2 (2M), 16K and 64K at level 2 (32M,
  // 512M). (16K level 1 needs TCR.DS; 64K level 1 needs FEAT_LPA: never used here.)
  static constexpr bool block_allowed(int level) {
    return level == 2 || (G == 12 && level == 1);
  }
  // log2 of the number of entries in a contiguous group (Arm ARM table "Contiguous bit").
  static constexpr unsigned contiguous_shift(int level) {
    if (G == 14) return level == kPageLevel ? 7 : 5;  // 128 x 16K = 2M, 32 x 32M = 1G
    if (G == 16) return 5;                            // 32 x 64K = 2M, 32 x 512M = 16G
    return 4;                                         // 16 x 4K = 64K, 16 x 2M = 32M
  }
  static constexpr uint64_t index(uint64_t va, int level) {
    return (va >> level_shift(level)) & (bit(kIndexBits) - 1);
  }
  static constexpr uint64_t oa_mask(int level) { return mask(level_shift(level), 47); }
};

// Bump allocator over identity-mapped RAM; hands out zeroed, naturally aligned pages.
struct PageAllocator {
  uint64_t next = 0;
  uint64_t end = 0;
  uint64_t alloc(unsigned shift) {
    const uint64_t p = align_up(next, shift);
    if (p < next || p + bit(shift) > end) return 0;
    next = p + bit(shift);
    // volatile uint64_t stores: stays a plain loop (no memset call), aligned even with the MMU off.
    auto* w = reinterpret_cast<volatile uint64_t*>(p);
    for (uint64_t i = 0; i < bit(shift) / 8; ++i) w[i] = 0;
    return p;
  }
};

// A stage 1 table tree in identity-mapped RAM (so a table's PA is also a usable pointer).
template <unsigned G>
class Tables {
 public:
  using Geo = Geometry<G>;

  explicit Tables(PageAllocator& mem) : mem_(&mem), root_(mem.alloc(G)) {}
  Tables(PageAllocator& mem, uint64_t root) : mem_(&mem), root_(root) {}  // adopt a live tree

  uint64_t root() const { return root_; }
  bool ok() const { return root_ != 0; }

  // The descriptor slot for `va` at `level`, creating next-level tables on the way when
  // `create`; nullptr if a level above holds a block (or nothing, without create) or memory ran
  // out.
  volatile uint64_t* slot(uint64_t va, int level, bool create = true) {
    if (!root_ || level < Geo::start_level() || level > Geo::kPageLevel) return nullptr;
    uint64_t table = root_;
    for (int l = Geo::start_level();; ++l) {
      auto* e = reinterpret_cast<volatile uint64_t*>(table) + Geo::index(va, l);
      if (l == level) return e;
      const uint64_t d = *e;
      if ((d & 3) == 3) {
        table = d & desc::kOaMask & ~(bit(G) - 1);
        continue;
      }
      if (d & desc::kValid || !create) return nullptr;  // a block is in the way / absent
      const uint64_t next = mem_->alloc(G);
      if (!next) return nullptr;
      *e = next | desc::kTypeTableOrPage | desc::kValid;
      table = next;
    }
  }

  // Raw leaf descriptor for `pa` at `level` with attribute bits `attrs` (page at level 3,
  // block above).
  static constexpr uint64_t leaf(uint64_t pa, int level, uint64_t attrs) {
    return (pa & Geo::oa_mask(level)) | attrs | desc::kValid |
           (level == Geo::kPageLevel ? desc::kTypeTableOrPage : desc::kTypeBlock);
  }

  bool set_leaf(uint64_t va, uint64_t pa, int level, uint64_t attrs) {
    volatile uint64_t* e = slot(va, level);
    if (!e) return false;
    *e = leaf(pa, level, attrs);
    return true;
  }

  // Map [va, va+size) to pa with the largest blocks alignment allows. Not for live changes.
  bool map_range(uint64_t va, uint64_t pa, uint64_t size, uint64_t attrs) {
    while (size) {
      int level = Geo::kPageLevel;
      for (int l = Geo::start_level(); l < Geo::kPageLevel; ++l) {
        const unsigned s = Geo::level_shift(l);
        if (Geo::block_allowed(l) && ((va | pa) & (bit(s) - 1)) == 0 && size >= bit(s)) {
          level = l;
          break;
        }
      }
      if (!set_leaf(va, pa, level, attrs)) return false;
      const uint64_t step = bit(Geo::level_shift(level));
      if (size < step) return false;  // not granule-aligned
      va += step;
      pa += step;
      size -= step;
    }
    return true;
  }

 private:
  PageAllocator* mem_;
  uint64_t root_;
};

// The raw-bit identity map the cases' scratch tables start from (and the boot map of a fallback
// granule): the UART (Device-nGnRnE, never executable) and all of RAM (Normal write-back, RWX:
// the image, its stack, its tables and the tests' free RAM all live there). The library-built
// boot map is stricter: only the image is executable there (boot_map.hpp).
template <unsigned G>
bool map_identity(Tables<G>& t) {
  return t.map_range(kUartBase, kUartBase, bit(G), desc::kDeviceRw) &&
         t.map_range(kRamBase, kRamBase, kRamSize, desc::kNormalRwx);
}

// TCR_EL1 for granule G, as the harness programs it (HA/HD decided by the caller).
template <unsigned G>
uint64_t tcr_value(bool ha, bool hd) {
  using Geo = Geometry<G>;
  const uint64_t ips = pa_range() > 5 ? 5 : pa_range();  // 52-bit PAs need LPA/LPA2: stay at 48
  return (uint64_t{Geo::kT0sz} << tcr::kT0szLo) | tcr::kIrgn0Wb | tcr::kOrgn0Wb | tcr::kSh0Inner |
         (tcr::tg0(G) << tcr::kTg0Lo) | (uint64_t{Geo::kT0sz} << tcr::kT1szLo) | tcr::kEpd1 |
         (tcr::tg1(G) << tcr::kTg1Lo) | (ips << tcr::kIpsLo) | (ha ? tcr::kHa : 0) |
         (hd ? tcr::kHd : 0);
}

// --- harness state the cases may query (platform.cpp) --------------------------------------------

#ifndef HPT_ARM64_GRANULE_SHIFT
#error "HPT_ARM64_GRANULE_SHIFT (12, 14 or 16) selects the image's granule"
#endif
constexpr unsigned kImageGranuleShift = HPT_ARM64_GRANULE_SHIFT;
#ifndef HPT_ARM64_HW_AD
#define HPT_ARM64_HW_AD 0
#endif
constexpr bool kImageWantsHwAd = HPT_ARM64_HW_AD;  // TCR.HA/HD on where FEAT_HAFDBS allows

// Granule of the live boot tables: the image's, unless the CPU lacks it (then a fallback).
unsigned table_granule_shift();
// True when the image's own granule is in use; otherwise the reason cases skip with.
bool mode_supported();
const char* mode_missing_reason();
uint64_t boot_root();
int boot_el();  // exception level the image was entered at (1, or 2 before dropping to EL1)
// Semihosting call (HLT #0xF000): operation in w0, parameter block in x1; returns x0.
extern "C" uint64_t hpt_arm64_semihost(uint64_t op, uint64_t arg);
extern "C" char hpt_arm64_vectors[];  // VBAR_EL1 target (start.S)

}  // namespace hpt::arm64_bm
