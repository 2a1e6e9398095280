// format_arm64.cpp - the arm64 (VMSAv8-64 stage 1) entry formats against the Arm ARM and Linux's
// conventions: geometry, round trips over flag subsets, debug_vm_pgtable properties
// (docs/arch.md §4), bit-layout invariants 118-129 (docs/arch.md §6.2), hand-computed vectors and
// every rejected encoding.
// Shared: runs on the host, under qemu-user and inside the arm64 bare-metal guests, so it is
// freestanding (no heap, no strings, no printf).
#include "hpt_test.hpp"
#include "hugepte/arch/arm64.hpp"

namespace hpt_arm64 {

using hugepte::bit;
using hugepte::Entry;
using hugepte::Err;
using hugepte::Kind;
using hugepte::mask;
using hugepte::MemType;
using hugepte::Reason;
namespace a = hugepte::arm64;

// --- helpers ---------------------------------------------------------------------------------

// First field in which two entries differ, nullptr if none.
inline const char* entry_diff(const Entry& x, const Entry& y) {
  if (x.kind != y.kind) return "kind";
  if (x.addr != y.addr) return "addr";
  if (x.shift != y.shift) return "shift";
  if (x.cont_shift != y.cont_shift) return "cont_shift";
  if (!(x.prot == y.prot)) return "prot";
  if (x.writable != y.writable) return "writable";
  if (x.mem != y.mem) return "mem";
  if (x.global != y.global) return "global";
  if (x.accessed != y.accessed) return "accessed";
  if (x.dirty != y.dirty) return "dirty";
  if (!(x.soft == y.soft)) return "soft";
  if (!(x.swp == y.swp)) return "swp";
  if (x.reason != y.reason) return "reason";
  if (x.keep != y.keep) return "keep";
  return nullptr;
}

#define EXPECT_SAME_ENTRY(x, y)                                                   \
  do {                                                                            \
    const char* hpt_d = entry_diff((x), (y));                                     \
    hpt_ctx.expect(hpt_d == nullptr, hpt_d ? hpt_d : "", __FILE__, __LINE__);     \
  } while (0)

using hpt::Rng;  // deterministic, same sequence on every ring

// A present user leaf the way Linux builds one from _PAGE_DEFAULT: young, not global, Normal,
// readable, clean and read-only.
template <class F>
Entry user_leaf(unsigned level, uint64_t addr) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = addr;
  e.shift = static_cast<uint8_t>(F::shift(level));
  e.prot = {true, false, false, true};
  e.accessed = true;
  e.mem = MemType::normal;
  return e;
}

// A test output address for `level`: aligned to its shift, within 48 bits, with high bits set.
template <class F>
uint64_t test_addr(unsigned level) {
  return (uint64_t{0xA5A5} << 32) & F::oa_mask(F::shift(level) > 30 ? F::shift(level) : 30);
}

template <class F>
uint64_t enc(hpt::Ctx& hpt_ctx, const Entry& e, unsigned level) {
  auto r = F::encode(e, level);
  HPT_EXPECT(r.ok());
  return r.value;
}

// Linux's vm_get_page_prot(idx) for arm64 (protection_map, no EPAN), as a vocabulary entry:
// private writable mappings are read-only (COW), VM_NONE / VM_SHARED are PAGE_NONE.
constexpr unsigned kVmRead = 1, kVmWrite = 2, kVmExec = 4, kVmShared = 8;
template <class F>
Entry linux_page_prot(unsigned idx, unsigned level, uint64_t addr) {
  Entry e = user_leaf<F>(level, addr);
  if ((idx & (kVmRead | kVmWrite | kVmExec)) == 0) {
    e.kind = Kind::protnone;  // PAGE_NONE: not user, neither level may execute
    e.prot.user = false;
    return e;
  }
  e.prot.exec = (idx & kVmExec) != 0;
  e.writable = (idx & kVmShared) && (idx & kVmWrite);
  return e;
}

// Linux's arm64 pte helpers, written in the vocabulary (decode -> change -> encode):
//   mkdirty sets PTE_DIRTY and, if writable, clears RDONLY; mkclean clears PTE_DIRTY and sets
//   RDONLY; mkwrite(_novma) sets PTE_WRITE and clears RDONLY only if already dirty; wrprotect
//   moves hardware dirty into PTE_DIRTY, clears PTE_WRITE and sets RDONLY.
inline Entry mkyoung(Entry e) { e.accessed = true; return e; }
inline Entry mkold(Entry e) { e.accessed = false; return e; }
inline Entry mkdirty(Entry e) {
  e.dirty = true;
  if (e.writable) e.prot.write = true;
  return e;
}
inline Entry mkclean(Entry e) {
  e.dirty = false;
  e.prot.write = false;
  return e;
}
inline Entry mkwrite(Entry e) {
  e.writable = true;
  if (e.dirty) e.prot.write = true;
  return e;
}
inline Entry wrprotect(Entry e) {
  e.writable = false;
  e.prot.write = false;
  return e;
}

// Apply a helper to a raw entry through the vocabulary.
template <class F, class Fn>
uint64_t apply(hpt::Ctx& hpt_ctx, uint64_t raw, unsigned level, Fn fn) {
  return enc<F>(hpt_ctx, fn(F::decode(raw, level)), level);
}

// Linux's predicates on the raw value (pgtable.h), to check the vocabulary against.
inline bool linux_write(uint64_t raw) { return raw & a::kDBM; }
inline bool linux_dirty(uint64_t raw) {
  return (raw & a::kSwDirty) || ((raw & a::kDBM) && !(raw & a::kAP2));
}
inline bool linux_young(uint64_t raw) { return raw & a::kAF; }
inline bool linux_present(uint64_t raw) { return raw & (a::kValid | a::kNG); }
inline bool linux_protnone(uint64_t raw) {
  return (raw & (a::kValid | a::kNG)) == a::kNG && !(raw & a::kAP1) && (raw & a::kUXN);
}

// Raw values biased towards Linux's own spellings: the bits the walk ignores around the output
// address (RES0 above it, below the granule, a block's low bits) are cleared most of the time,
// so that both keep-free values and values with those bits in keep are drawn.
template <class F>
uint64_t random_raw(Rng& rng, unsigned level) {
  const uint64_t r = rng.next();
  uint64_t raw = rng.next();
  if (r & 7) raw &= ~(F::kLeafRes0 | F::kTableRes0 | F::kSubGranule);
  if (((r >> 3) & 3) && level > 0) raw &= ~(mask(F::page_shift, F::shift(level) - 1) & ~a::kNT);
  if ((r >> 5) & 1) raw &= ~bit(4);                    // AttrIndx 0-3 (all programmed)
  if (((r >> 6) & 3) == 0) raw &= ~(a::kValid | a::kNG);  // swap format
  if (!(raw & (a::kValid | a::kNG)) && ((r >> 8) & 3))
    raw &= F::kSwapFields;                             // a Linux swap entry
  if (((r >> 10) & 7) == 0) raw &= mask(0, 15);        // small values: low-bit corner cases
  return raw;
}

// --- geometry ---------------------------------------------------------------------------------

struct Geometry {
  unsigned levels;
  unsigned shift[4];
  unsigned root_index_bits;
  bool leaf[4];
  unsigned cont[4];
};

template <class F>
void check_geometry(hpt::Ctx& hpt_ctx, const Geometry& g) {
  HPT_EXPECT_EQ(F::levels, g.levels);
  for (unsigned l = 0; l < g.levels; ++l) {
    HPT_EXPECT_EQ(F::shift(l), g.shift[l]);
    HPT_EXPECT_EQ(F::leaf_ok(l), g.leaf[l]);
    HPT_EXPECT_EQ(F::cont_shift(l), g.cont[l]);
  }
  HPT_EXPECT_EQ(F::index_bits(g.levels - 1), g.root_index_bits);
  HPT_EXPECT_EQ(F::pa_bits, 48u);
}

// Arm ARM D8.2 with Linux's CONT sizes (docs/arch.md §2.2 table, §3.2 table, property 129):
// level shifts grow by granule-3 bits; the root takes what is left of va_bits.
HPT_ARCH_CASE("arm64", format, LevelsAndSizesFollowTheGranuleAndVaBits) {
  //                 levels  shifts (pte, pmd, pud, p4d)  root  leaf_ok             cont
  check_geometry<hugepte::Arm64_4K_39>(
      hpt_ctx, {3, {12, 21, 30, 0}, 9, {true, true, true, false}, {16, 25, 0, 0}});
  check_geometry<hugepte::Arm64_4K_48>(
      hpt_ctx, {4, {12, 21, 30, 39}, 9, {true, true, true, false}, {16, 25, 0, 0}});
  check_geometry<hugepte::Arm64_16K_36>(
      hpt_ctx, {2, {14, 25, 0, 0}, 11, {true, true, false, false}, {21, 30, 0, 0}});
  check_geometry<hugepte::Arm64_16K_47>(
      hpt_ctx, {3, {14, 25, 36, 0}, 11, {true, true, false, false}, {21, 30, 0, 0}});
  check_geometry<hugepte::Arm64_16K_48>(
      hpt_ctx, {4, {14, 25, 36, 47}, 1, {true, true, false, false}, {21, 30, 0, 0}});
  check_geometry<hugepte::Arm64_64K_42>(
      hpt_ctx, {2, {16, 29, 0, 0}, 13, {true, true, false, false}, {21, 34, 0, 0}});
  check_geometry<hugepte::Arm64_64K_48>(
      hpt_ctx, {3, {16, 29, 42, 0}, 6, {true, true, false, false}, {21, 34, 0, 0}});
  // Hugetlb sizes of docs/arch.md §2.5 / property 113: 4K {64K, 2M, 32M, 1G}; 16K {2M, 32M, 1G};
  // 64K {2M, 512M, 16G}.
  auto s4 = hugepte::leaf_sizes<hugepte::Arm64_4K_48>();
  HPT_ASSERT_EQ(s4.count, 5u);
  const unsigned want4[] = {12, 16, 21, 25, 30};
  for (unsigned i = 0; i < 5; ++i) HPT_EXPECT_EQ(s4.shift[i], want4[i]);
  auto s16 = hugepte::leaf_sizes<hugepte::Arm64_16K_47>();
  HPT_ASSERT_EQ(s16.count, 4u);
  const unsigned want16[] = {14, 21, 25, 30};
  for (unsigned i = 0; i < 4; ++i) HPT_EXPECT_EQ(s16.shift[i], want16[i]);
  auto s64 = hugepte::leaf_sizes<hugepte::Arm64_64K_48>();
  HPT_ASSERT_EQ(s64.count, 4u);
  const unsigned want64[] = {16, 21, 29, 34};
  for (unsigned i = 0; i < 4; ++i) HPT_EXPECT_EQ(s64.shift[i], want64[i]);
}

HPT_FORMAT_CASE(format, EveryLevelSplitsTheInputAddressByGranuleMinusThreeBits,
                hugepte::Arm64Formats) {
  using F = Fmt;
  HPT_EXPECT_EQ(F::page_shift, F::shift(0));
  for (unsigned l = 0; l + 1 < F::levels; ++l) HPT_EXPECT_EQ(F::index_bits(l), F::page_shift - 3);
  HPT_EXPECT(F::index_bits(F::levels - 1) >= 1 &&
             F::index_bits(F::levels - 1) <= F::page_shift - 3);
  HPT_EXPECT_EQ(F::shift(F::levels - 1) + F::index_bits(F::levels - 1), F::va_bits);
  // Arm level 0 never holds a block here; Arm level 3 is the page level.
  HPT_EXPECT(!F::leaf_ok(3));
  HPT_EXPECT_EQ(F::arm_level(0), 3);
  HPT_EXPECT(hugepte::format_ok<F>());
}

HPT_FORMAT_CASE(format, CanonicalMeansTheBitsAboveVaBitsAreZero, hugepte::Arm64Formats) {
  using F = Fmt;
  HPT_EXPECT(F::canonical(0));
  HPT_EXPECT(F::canonical(bit(F::va_bits) - 1));
  HPT_EXPECT(!F::canonical(bit(F::va_bits)));
  HPT_EXPECT(!F::canonical(~uint64_t{0}));  // a TTBR1 (kernel) address is not in this half
  HPT_EXPECT(!F::canonical(bit(63)));
}

HPT_FORMAT_CASE(format, HardwareManagesAccessAndDirtyThroughDbm, hugepte::Arm64Formats) {
  using F = Fmt;
  hugepte::AdCaps c = F::ad_caps;
  HPT_EXPECT(c.hw_accessed);
  HPT_EXPECT(c.hw_dirty);
  HPT_EXPECT(c.model == hugepte::DirtyModel::dbm_rdonly);
  HPT_EXPECT_EQ(hugepte::format_ok<F>(), true);
}

// --- none, tables ----------------------------------------------------------------------------

// Property 118 (and 60/74/79/80: a cleared slot is none): zero is none at every level.
HPT_FORMAT_CASE(format, ZeroIsNoneAtEveryLevel, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    HPT_EXPECT(F::decode(0, l).kind == Kind::none);
    HPT_EXPECT(!F::is_table(0, l));
    HPT_EXPECT(!F::is_leaf(0, l));
    Entry none;
    auto r = F::encode(none, l);
    HPT_EXPECT(r.ok() && r.value == 0);
  }
}

// Property 62/76/81/82 (populate gives a non-bad entry): table descriptors at every non-leaf
// level, with the hierarchical attributes and IGNORED bits carried in keep.
HPT_FORMAT_CASE(format, TableEntriesRoundTripWithTheirAttributeBits, hugepte::Arm64Formats) {
  using F = Fmt;
  const uint64_t keeps[] = {a::kTableAF, a::kPXNTable, a::kUXNTable, bit(61), bit(62), a::kNSTable,
                       bit(2) | bit(11), mask(51, 58)};
  const uint64_t addrs[] = {bit(F::page_shift), F::kGranuleOa, uint64_t{0x40000000}};
  for (unsigned l = 1; l < F::levels; ++l) {
    for (uint64_t addr : addrs) {
      for (unsigned m = 0; m < (1u << 8); m += 7) {  // a spread of keep subsets
        uint64_t keep = 0;
        for (unsigned b = 0; b < 8; ++b)
          if (m & (1u << b)) keep |= keeps[b];
        Entry e;
        e.kind = Kind::table;
        e.addr = addr;
        e.shift = static_cast<uint8_t>(F::shift(l));
        e.keep = keep;
        uint64_t raw = enc<F>(hpt_ctx, e, l);
        HPT_EXPECT_EQ(raw, addr | keep | 3);
        EXPECT_SAME_ENTRY(F::decode(raw, l), e);
        HPT_EXPECT(F::is_table(raw, l));
        HPT_EXPECT(!F::is_leaf(raw, l));
        HPT_EXPECT_EQ(F::out_addr(raw, l), addr);
        // A table is not "bad" and is not a leaf at this level.
        HPT_EXPECT(F::decode(raw, l).kind == Kind::table);
        // A table is never part of a contiguous group: group_entry leaves it alone.
        HPT_EXPECT_EQ(F::group_entry(raw, l, 3), raw);
      }
    }
    uint64_t t = F::make_table(0x40000000, l);
    HPT_EXPECT_EQ(t, uint64_t{0x40000003});
    HPT_EXPECT(F::is_table(t, l));
    HPT_EXPECT_EQ(F::decode(t, l).addr, uint64_t{0x40000000});
    HPT_EXPECT_EQ(F::decode(t, l).keep, uint64_t{0});
  }
}

// --- leaves: exhaustive flag subsets -----------------------------------------------------------

HPT_FORMAT_CASE(format, LeafRoundTripsEveryFlagSubsetAtEveryLeafLevel, hugepte::Arm64Formats) {
  using F = Fmt;
  // Every memory type with an AttrIndx (write-through has none: EncodeRefuses... checks it).
  const MemType mems[] = {MemType::normal, MemType::device, MemType::device_nGnRE,
                          MemType::noncacheable, MemType::tagged};
  unsigned refused = 0, built = 0;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const uint64_t addr = test_addr<F>(l);
    const unsigned nflags = F::cont_shift(l) ? 11 : 10;
    for (unsigned m = 0; m < (1u << nflags); ++m) {
      Entry e = user_leaf<F>(l, addr);
      e.prot.write = m & 1;
      e.prot.exec = m & 2;
      e.prot.user = m & 4;
      e.writable = m & 8;
      e.global = m & 16;
      e.accessed = m & 32;
      e.dirty = m & 64;
      e.soft.special = m & 128;
      e.soft.uffd_wp = m & 256;
      e.kind = (m & 512) ? Kind::protnone : Kind::leaf;
      if (m & 1024) e.cont_shift = static_cast<uint8_t>(F::cont_shift(l));
      e.mem = mems[m % 5];
      auto r = F::encode(e, l);
      // Refused exactly when the state has no encoding: DBM && !RDONLY is always dirty, and a
      // present-invalid entry has no nG bit left for "global".
      const bool impossible = (e.writable && e.prot.write && !e.dirty) ||
                              (e.kind == Kind::protnone && e.global);
      HPT_EXPECT_EQ(r.ok(), !impossible);
      if (!r.ok()) {
        ++refused;
        HPT_EXPECT(r.err == Err::einval);
        continue;
      }
      ++built;
      const uint64_t raw = r.value;
      EXPECT_SAME_ENTRY(F::decode(raw, l), e);
      HPT_EXPECT_EQ(F::is_leaf(raw, l), e.kind == Kind::leaf);
      HPT_EXPECT(!F::is_table(raw, l));
      HPT_EXPECT_EQ(F::out_addr(raw, l), addr);
      // Linux's raw predicates agree with the vocabulary (property 124, 125).
      HPT_EXPECT_EQ(linux_write(raw), e.writable);
      HPT_EXPECT_EQ(linux_dirty(raw), e.dirty);
      HPT_EXPECT_EQ(linux_young(raw), e.accessed);
      HPT_EXPECT(linux_present(raw));
      HPT_EXPECT_EQ((raw & a::kValid) != 0, e.kind == Kind::leaf);
      HPT_EXPECT_EQ((raw & a::kSwSpecial) != 0, e.soft.special);
      HPT_EXPECT_EQ((raw & a::kSwUffdWp) != 0, e.soft.uffd_wp);
      HPT_EXPECT_EQ((raw & a::kContiguous) != 0, e.cont_shift != 0);
      HPT_EXPECT_EQ((raw & a::kAP2) == 0, e.prot.write);
      HPT_EXPECT_EQ((raw & a::kAP1) != 0, e.prot.user);
      // keep == 0: Linux's defaults, SH inner shareable and the other level execute-never.
      HPT_EXPECT_EQ(hugepte::field(raw, a::kShLo, a::kShHi), a::kShInner);
      HPT_EXPECT(raw & (e.prot.user ? a::kPXN : a::kUXN));
    }
  }
  HPT_EXPECT(built > refused);
}

HPT_FORMAT_CASE(format, LeafKeepsBitsOutsideTheVocabulary, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    for (unsigned user = 0; user < 2; ++user) {
      // The last ones are the bits the walk ignores around the output address (arm64.hpp):
      // RES0 bits[49:48], 16K/64K bits below the granule, and a block's bits below its size.
      uint64_t keeps[] = {a::kNS, bit(8), bit(9), bit(8) | bit(9), a::kGP, a::kSwBit57, bit(59),
                     bit(62), a::kPBHA, a::kSwBit63, user ? a::kPXN : a::kUXN,
                     l > 0 ? a::kNT : 0, F::cont_shift(l) ? 0 : a::kContiguous,
                     bit(48), bit(49), F::kSubGranule,
                     l > 0 ? bit(F::page_shift) : 0, l > 0 ? bit(F::shift(l) - 1) : 0,
                     l > 0 ? mask(F::page_shift, F::shift(l) - 1) : 0};
      for (uint64_t k : keeps) {
        Entry e = user_leaf<F>(l, test_addr<F>(l));
        e.prot.user = user;
        e.keep = k;
        uint64_t raw = enc<F>(hpt_ctx, e, l);
        EXPECT_SAME_ENTRY(F::decode(raw, l), e);
        // Raw positions; SH and the other XN bit are stored XOR Linux's default.
        HPT_EXPECT_EQ(raw & F::leaf_keep_mask(l, user),
                      (k ^ F::kLeafKeepFlip) & F::leaf_keep_mask(l, user));
      }
      // keep cannot smuggle in bits the vocabulary owns.
      const uint64_t owned[] = {a::kAF,          a::kAP2, a::kDBM,
                                a::kSwDirty,     bit(0),  user ? a::kUXN : a::kPXN,
                                bit(F::shift(l))};
      for (uint64_t k : owned) {
        Entry e = user_leaf<F>(l, test_addr<F>(l));
        e.prot.user = user;
        e.keep = k;
        HPT_EXPECT(F::encode(e, l).err == Err::einval);
      }
    }
  }
}

// --- random raw values: the other direction, and the hot path --------------------------------

HPT_FORMAT_CASE(format, EveryRawThatDecodesValidEncodesBackToItself, hugepte::Arm64Formats) {
  using F = Fmt;
  Rng rng{0x9E3779B97F4A7C15ull ^ F::page_shift ^ (uint64_t{F::va_bits} << 8)};
  unsigned valid = 0;
  for (unsigned l = 0; l < F::levels; ++l) {
    for (unsigned n = 0; n < 1500; ++n) {
      const uint64_t raw = random_raw<F>(rng, l);
      const Entry e = F::decode(raw, l);
      HPT_EXPECT_EQ(static_cast<unsigned>(e.shift), F::shift(l));
      if (e.kind == Kind::invalid) {
        HPT_EXPECT(e.reason != Reason::none);
        HPT_EXPECT(F::encode(e, l).err == Err::einval);
        continue;
      }
      HPT_EXPECT(e.reason == Reason::none);
      HPT_EXPECT(!e.soft.soft_dirty && !e.swp.soft_dirty);
      ++valid;
      auto r = F::encode(e, l);
      HPT_ASSERT(r.ok());
      // The one second spelling: DBM && !RDONLY (hardware dirty) with PTE_DIRTY also set
      // decodes like the hardware-dirty entry; encode writes it without PTE_DIRTY.
      const bool leafish = e.kind == Kind::leaf || e.kind == Kind::protnone;
      const bool second = leafish && (raw & a::kDBM) && !(raw & a::kAP2) && (raw & a::kSwDirty);
      HPT_EXPECT_EQ(r.value, second ? raw & ~a::kSwDirty : raw);
      EXPECT_SAME_ENTRY(F::decode(r.value, l), e);
    }
  }
  HPT_EXPECT(valid > 1000);
}

HPT_FORMAT_CASE(format, HotPathPredicatesAgreeWithDecode, hugepte::Arm64Formats) {
  using F = Fmt;
  Rng rng{0xD1B54A32D192ED03ull + F::va_bits};
  for (unsigned l = 0; l < F::levels; ++l) {
    for (unsigned n = 0; n < 1500; ++n) {
      const uint64_t raw = random_raw<F>(rng, l);
      const Entry e = F::decode(raw, l);
      HPT_EXPECT_EQ(F::is_table(raw, l), e.kind == Kind::table);
      HPT_EXPECT_EQ(F::is_leaf(raw, l), e.kind == Kind::leaf);
      if (e.kind == Kind::table || e.kind == Kind::leaf || e.kind == Kind::protnone)
        HPT_EXPECT_EQ(F::out_addr(raw, l), e.addr);
      if (e.kind == Kind::table) HPT_EXPECT_EQ(F::make_table(e.addr, l) | e.keep, raw);
    }
  }
}

// --- Linux's dirty model -------------------------------------------------------------------------

// Property 124: PTE_WRITE is DBM (bit 51); pte_dirty = PTE_DIRTY || (DBM && !RDONLY).
HPT_FORMAT_CASE(format, WritableIsDbmAndHardwareDirtyIsDbmWithoutReadOnly, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const uint64_t base = enc<F>(hpt_ctx, user_leaf<F>(l, test_addr<F>(l)), l) & ~a::kAP2;
    for (unsigned m = 0; m < 8; ++m) {
      uint64_t raw =
          base | ((m & 1) ? a::kDBM : 0) | ((m & 2) ? a::kAP2 : 0) | ((m & 4) ? a::kSwDirty : 0);
      Entry e = F::decode(raw, l);
      HPT_ASSERT(e.kind == Kind::leaf);
      HPT_EXPECT_EQ(e.writable, (m & 1) != 0);
      HPT_EXPECT_EQ(e.prot.write, (m & 2) == 0);  // hardware write permission: !RDONLY
      HPT_EXPECT_EQ(e.dirty, (m & 4) || ((m & 1) && !(m & 2)));
    }
  }
}

// The arch has two raw spellings of "writable, hardware-writable, dirty": with or without the
// redundant PTE_DIRTY. Both decode alike; encode writes the hardware's (without PTE_DIRTY).
HPT_FORMAT_CASE(format, WritableDirtyHasTwoSpellingsThatDecodeAlike, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    Entry e = user_leaf<F>(l, test_addr<F>(l));
    e.writable = true;
    e.prot.write = true;
    e.dirty = true;
    const uint64_t hw = enc<F>(hpt_ctx, e, l);
    HPT_EXPECT(!(hw & a::kSwDirty));
    HPT_EXPECT(!(hw & a::kAP2));
    HPT_EXPECT(hw & a::kDBM);
    const uint64_t sw = hw | a::kSwDirty;  // what Linux's pte_mkdirty writes
    EXPECT_SAME_ENTRY(F::decode(sw, l), F::decode(hw, l));
    HPT_EXPECT_EQ(enc<F>(hpt_ctx, F::decode(sw, l), l), hw);
    // Write-protecting either spelling gives the same entry (PTE_DIRTY set, DBM clear).
    HPT_EXPECT_EQ(apply<F>(hpt_ctx, sw, l, wrprotect), apply<F>(hpt_ctx, hw, l, wrprotect));
  }
}

// debug_vm_pgtable basic tests (properties 1-15 pte, 35-45 pmd, 63-64 pud), for every one of the
// 16 vm_get_page_prot(idx) values, at every level that holds leaves, through the vocabulary.
HPT_FORMAT_CASE(format, DebugVmPgtableBasicPropertiesHoldForEveryProtection,
                hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    for (unsigned idx = 0; idx < 16; ++idx) {
      const uint64_t p = enc<F>(hpt_ctx, linux_page_prot<F>(idx, l, test_addr<F>(l)), l);
      auto dirty = [&](uint64_t raw) { return F::decode(raw, l).dirty; };
      auto write = [&](uint64_t raw) { return F::decode(raw, l).writable; };
      auto young = [&](uint64_t raw) { return F::decode(raw, l).accessed; };
      auto ap = [&](uint64_t raw, auto fn) { return apply<F>(hpt_ctx, raw, l, fn); };
      HPT_EXPECT(!dirty(ap(p, wrprotect)));                               // 1, 35, 63
      HPT_EXPECT_EQ(p, p);                                                // 2 pte_same
      HPT_EXPECT(young(ap(ap(p, mkold), mkyoung)));                       // 3
      HPT_EXPECT(dirty(ap(ap(p, mkclean), mkdirty)));                     // 4
      HPT_EXPECT(write(ap(ap(p, wrprotect), mkwrite)));                   // 5
      HPT_EXPECT(!young(ap(ap(p, mkyoung), mkold)));                      // 6
      HPT_EXPECT(!dirty(ap(ap(p, mkdirty), mkclean)));                    // 7
      HPT_EXPECT(!write(ap(ap(p, mkwrite), wrprotect)));                  // 8
      HPT_EXPECT(!dirty(ap(ap(p, mkclean), wrprotect)));                  // 9
      HPT_EXPECT(dirty(ap(ap(p, mkdirty), wrprotect)));  // 10 wrprotect keeps dirty
      HPT_EXPECT(dirty(ap(ap(p, mkdirty), mkwrite)));                     // 11
      HPT_EXPECT(!dirty(ap(ap(p, mkclean), mkwrite)));  // 12 mkwrite is not mkdirty
      HPT_EXPECT(write(ap(ap(p, mkwrite), mkdirty)));                     // 13
      HPT_EXPECT(write(ap(ap(p, wrprotect), mkwrite)));                   // 14
      HPT_EXPECT(!write(ap(ap(p, mkwrite), wrprotect)));                  // 15
      // The same facts on the raw bits, with Linux's own predicates (property 124).
      HPT_EXPECT(linux_dirty(ap(ap(p, mkclean), mkdirty)));
      HPT_EXPECT(!linux_dirty(ap(ap(p, mkdirty), mkclean)));
      HPT_EXPECT(ap(p, mkclean) & a::kAP2);                               // mkclean sets RDONLY
      HPT_EXPECT(!(ap(p, mkclean) & a::kSwDirty));
      HPT_EXPECT(linux_write(ap(p, mkwrite)) && !linux_write(ap(p, wrprotect)));
      // Every helper leaves kind, address and size alone.
      const Entry d = F::decode(ap(ap(ap(p, mkdirty), mkwrite), mkold), l);
      HPT_EXPECT(d.kind == F::decode(p, l).kind);
      HPT_EXPECT_EQ(d.addr, test_addr<F>(l));
      HPT_EXPECT_EQ(static_cast<unsigned>(d.shift), F::shift(l));
    }
  }
}

// Advanced tests 16-20 / 47-51 / 66-70 and hugetlb 89-91, 98-99 on a value: set_access_flags
// with mkdirty(mkwrite) on a wrprotected clean entry gives write && dirty, and the hardware may
// then write without a fault; test_and_clear_young leaves it old.
HPT_FORMAT_CASE(format, SetAccessFlagsMakesAWrprotectedCleanEntryWritableAndDirty,
                hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const uint64_t p =
        enc<F>(hpt_ctx, linux_page_prot<F>(kVmShared | kVmRead | kVmWrite, l, test_addr<F>(l)), l);
    const uint64_t ro = apply<F>(hpt_ctx, apply<F>(hpt_ctx, p, l, wrprotect), l, mkclean);
    HPT_EXPECT(!F::decode(ro, l).writable);
    const uint64_t rw = apply<F>(hpt_ctx, apply<F>(hpt_ctx, ro, l, mkwrite), l, mkdirty);
    const Entry e = F::decode(rw, l);
    HPT_EXPECT(e.writable && e.dirty && e.prot.write);
    HPT_EXPECT(!(rw & a::kAP2));
    HPT_EXPECT(!F::needs_bbm(ro, rw, l));  // permissions only: updated in place
    // Property 98: wrprotect keeps dirty; 20/51/70: test_and_clear_young.
    const Entry w = F::decode(apply<F>(hpt_ctx, rw, l, wrprotect), l);
    HPT_EXPECT(!w.writable && w.dirty && !w.prot.write);
    HPT_EXPECT(!F::decode(apply<F>(hpt_ctx, rw, l, mkold), l).accessed);
  }
}

// Property 22 / 125: special at bit 56, uffd-wp at bit 58, cont at bit 52; property 101:
// huge_pte_mkuffd_wp gives uffd_wp and not write.
HPT_FORMAT_CASE(format, SpecialUffdWpAndContSitWhereLinuxPutsThem, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    Entry e = user_leaf<F>(l, test_addr<F>(l));
    const uint64_t plain = enc<F>(hpt_ctx, e, l);
    e.soft.special = true;
    HPT_EXPECT_EQ(enc<F>(hpt_ctx, e, l) ^ plain, bit(56));
    HPT_EXPECT(F::decode(plain | bit(56), l).soft.special);
    e.soft.special = false;
    e.soft.uffd_wp = true;
    HPT_EXPECT_EQ(enc<F>(hpt_ctx, e, l) ^ plain, bit(58));
    e.soft.uffd_wp = false;
    if (F::cont_shift(l)) {
      e.cont_shift = static_cast<uint8_t>(F::cont_shift(l));
      HPT_EXPECT_EQ(enc<F>(hpt_ctx, e, l) ^ plain, bit(52));
      e.cont_shift = 0;
    }
    // mkuffd_wp on a writable dirty entry: uffd-wp set, write permission gone, still dirty.
    Entry w = mkdirty(mkwrite(e));
    Entry u = wrprotect(w);
    u.soft.uffd_wp = true;
    const Entry d = F::decode(enc<F>(hpt_ctx, u, l), l);
    HPT_EXPECT(d.soft.uffd_wp && !d.writable && !d.prot.write && d.dirty);
  }
}

// Properties 24-26, 56-57: arm64 has no soft-dirty, so the vocabulary's soft-dirty is refused.
HPT_FORMAT_CASE(format, SoftDirtyIsNotSupportedAndIsRefused, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    Entry e = user_leaf<F>(l, test_addr<F>(l));
    e.soft.soft_dirty = true;
    HPT_EXPECT(F::encode(e, l).err == Err::einval);
    Entry s;
    s.kind = Kind::swap;
    s.swp = {1, 5, false, true, false};
    HPT_EXPECT(F::encode(s, l).err == Err::einval);
  }
}

// --- present-invalid: PROT_NONE and pmd_mkinvalid ----------------------------------------------

// Properties 23, 55, 119: PAGE_NONE is present to software (PTE_PRESENT_INVALID = nG with VALID
// clear), invalid to hardware, not user and not user-executable.
HPT_FORMAT_CASE(format, ProtNoneIsPresentToSoftwareButInvalidToHardware, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const Entry none = linux_page_prot<F>(0, l, test_addr<F>(l));
    const uint64_t raw = enc<F>(hpt_ctx, none, l);
    HPT_EXPECT(!(raw & a::kValid));
    HPT_EXPECT(raw & a::kNG);
    HPT_EXPECT(!(raw & a::kAP1));
    HPT_EXPECT(raw & a::kUXN);
    HPT_EXPECT(raw & a::kPXN);
    HPT_EXPECT(raw & a::kAP2);
    HPT_EXPECT_EQ((raw & a::kTableOrPage) != 0, l == 0);  // keeps the page/block type bit
    HPT_EXPECT(linux_present(raw));
    HPT_EXPECT(linux_protnone(raw));
    HPT_EXPECT(!F::is_leaf(raw, l));
    HPT_EXPECT(!F::is_table(raw, l));
    const Entry d = F::decode(raw, l);
    HPT_EXPECT(d.kind == Kind::protnone);
    HPT_EXPECT_EQ(d.addr, test_addr<F>(l));
    HPT_EXPECT(!d.prot.user && !d.prot.exec && !d.prot.write && !d.global);
    EXPECT_SAME_ENTRY(d, none);
    // Property 92 (saved write on a protnone entry): the logical write bit survives.
    Entry sw = d;
    sw.writable = true;
    HPT_EXPECT(F::decode(enc<F>(hpt_ctx, sw, l), l).writable);
    HPT_EXPECT(!F::decode(enc<F>(hpt_ctx, wrprotect(F::decode(enc<F>(hpt_ctx, sw, l), l)), l), l)
                    .writable);
    // A global PROT_NONE cannot be written: nG is the present bit there.
    Entry g = none;
    g.global = true;
    HPT_EXPECT(F::encode(g, l).err == Err::einval);
  }
}

// Properties 54 and 128: pmd_mkinvalid clears VALID and sets PRESENT_INVALID; the entry stays
// present and a leaf of its size, keeps every attribute, and making it valid again restores it.
HPT_FORMAT_CASE(format, MkinvalidKeepsALeafPresentWithAllItsAttributes, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    for (unsigned idx = 1; idx < 16; ++idx) {
      if ((idx & 7) == 0) continue;
      Entry e = mkdirty(linux_page_prot<F>(idx, l, test_addr<F>(l)));
      if (F::cont_shift(l)) e.cont_shift = static_cast<uint8_t>(F::cont_shift(l));
      const uint64_t raw = enc<F>(hpt_ctx, e, l);
      Entry inv = F::decode(raw, l);
      inv.kind = Kind::protnone;
      const uint64_t iraw = enc<F>(hpt_ctx, inv, l);
      HPT_EXPECT_EQ(iraw, (raw & ~a::kValid) | a::kNG);  // exactly Linux's pmd_mkinvalid
      HPT_EXPECT(linux_present(iraw));
      HPT_EXPECT(!F::is_leaf(iraw, l));
      HPT_EXPECT(!linux_protnone(iraw));  // a user mapping: pte_protnone stays false
      const Entry d = F::decode(iraw, l);
      HPT_EXPECT(d.kind == Kind::protnone);
      HPT_EXPECT_EQ(static_cast<unsigned>(d.shift), F::shift(l));
      HPT_EXPECT_EQ(d.addr, e.addr);
      HPT_EXPECT(d.prot == e.prot && d.dirty == e.dirty && d.writable == e.writable);
      HPT_EXPECT_EQ(d.cont_shift, e.cont_shift);
      Entry back = d;
      back.kind = Kind::leaf;
      HPT_EXPECT_EQ(enc<F>(hpt_ctx, back, l), raw);
    }
  }
}

// --- swap, migration, markers ------------------------------------------------------------------

// Properties 27-30, 58, 120, 122: swap entries at every leaf level, types and offsets at the
// edges of their fields, every flag subset; type in bits 6-10, offset in 12-61, bits 0-1 and 11
// clear; the arch round trip is bit-exact.
HPT_FORMAT_CASE(format, SwapEntriesRoundTripAtTheEdgesOfTheirFields, hugepte::Arm64Formats) {
  using F = Fmt;
  const uint64_t offsets[] = {0, 1, bit(49), bit(50) - 1, 0x2AAAAAAAAAAAAull, 0x1555555555555ull};
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    for (uint32_t type = 0; type < 32; ++type) {
      for (uint64_t off : offsets) {
        for (unsigned f = 0; f < 4; ++f) {
          Entry e;
          e.kind = type == hugepte::kSwpPteMarker ? Kind::marker : Kind::swap;
          e.shift = static_cast<uint8_t>(F::shift(l));
          e.swp = {type, off, (f & 1) != 0, false, (f & 2) != 0};
          auto r = F::encode(e, l);
          if (type == 0 && off == 0 && f == 0) {  // would be the empty entry
            HPT_EXPECT(r.err == Err::einval);
            continue;
          }
          HPT_ASSERT(r.ok());
          const uint64_t raw = r.value;
          HPT_EXPECT_EQ(hugepte::field(raw, 6, 10), uint64_t{type});
          HPT_EXPECT_EQ(hugepte::field(raw, 12, 61), off);
          HPT_EXPECT_EQ((raw >> 2) & 1, uint64_t{f & 1});
          HPT_EXPECT_EQ((raw >> 3) & 1, uint64_t{(f >> 1) & 1});
          HPT_EXPECT_EQ(raw & (mask(0, 1) | bit(11) | mask(4, 5) | mask(62, 63)), uint64_t{0});
          HPT_EXPECT(!linux_present(raw));
          HPT_EXPECT(!F::is_leaf(raw, l) && !F::is_table(raw, l));
          EXPECT_SAME_ENTRY(F::decode(raw, l), e);
          HPT_EXPECT_EQ(enc<F>(hpt_ctx, F::decode(raw, l), l), raw);
        }
      }
    }
  }
}

// Properties 27-29 and 120: exclusive and uffd-wp are separate bits that leave type and offset
// alone; no two swap fields overlap.
HPT_FORMAT_CASE(format, SwapFlagsDoNotOverlapTypeOffsetOrEachOther, hugepte::Arm64Formats) {
  using F = Fmt;
  auto build = [&](uint32_t type, uint64_t off, bool excl, bool uffd) {
    Entry e;
    e.kind = type == hugepte::kSwpPteMarker ? Kind::marker : Kind::swap;
    e.swp = {type, off, excl, false, uffd};
    return enc<F>(hpt_ctx, e, 0);
  };
  const uint64_t t =
      build(31 - 1, 0, false, false) | build(hugepte::kSwpPteMarker, 0, false, false);
  const uint64_t o = build(0, bit(a::kSwpOffsetBits) - 1, false, false);
  const uint64_t x = build(0, 0, true, false);
  const uint64_t u = build(0, 0, false, true);
  HPT_EXPECT_EQ(t, mask(6, 10));
  HPT_EXPECT_EQ(o, mask(12, 61));
  HPT_EXPECT_EQ(x, bit(2));
  HPT_EXPECT_EQ(u, bit(3));
  HPT_EXPECT_EQ(t & o, uint64_t{0});
  HPT_EXPECT_EQ((t | o) & (x | u), uint64_t{0});
  HPT_EXPECT_EQ(x & u, uint64_t{0});
  // swp_entry(MAX_SWAPFILES - 1, max offset) as debug_vm_pgtable builds it.
  const uint64_t s = build(hugepte::kMaxSwapFiles - 1, bit(50) - 1, false, false);
  Entry d = F::decode(s, 0);
  HPT_EXPECT(d.kind == Kind::swap && !d.swp.exclusive);
  d.swp.exclusive = true;  // pte_swp_mkexclusive
  const uint64_t sx = enc<F>(hpt_ctx, d, 0);
  HPT_EXPECT_EQ(sx, s | bit(2));
  HPT_EXPECT(F::decode(sx, 0).swp.exclusive && !F::decode(sx, 0).swp.soft_dirty);
  HPT_EXPECT_EQ(F::decode(sx, 0).swp.offset, bit(50) - 1);
  d.swp.exclusive = false;  // pte_swp_clear_exclusive
  HPT_EXPECT_EQ(enc<F>(hpt_ctx, d, 0), s);
}

// Properties 31-33, 57-58, 93: migration and hwpoison entries carry the PFN in the offset; at
// a block level they stay at that level (THP/hugetlb migration).
HPT_FORMAT_CASE(format, MigrationAndHwpoisonEntriesCarryThePfn, hugepte::Arm64Formats) {
  using F = Fmt;
  const uint32_t types[] = {hugepte::kSwpMigrationRead,  hugepte::kSwpMigrationReadExclusive,
                            hugepte::kSwpMigrationWrite, hugepte::kSwpHwpoison,
                            hugepte::kSwpDeviceRead,     hugepte::kSwpDeviceWrite,
                            hugepte::kSwpDeviceExclusive};
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const uint64_t pfn = test_addr<F>(l) >> F::page_shift;
    for (uint32_t t : types) {
      Entry e;
      e.kind = Kind::swap;
      e.shift = static_cast<uint8_t>(F::shift(l));
      e.swp.type = t;
      e.swp.offset = pfn;
      const uint64_t raw = enc<F>(hpt_ctx, e, l);
      const Entry d = F::decode(raw, l);
      HPT_EXPECT(d.kind == Kind::swap);
      HPT_EXPECT_EQ(d.swp.type, t);
      HPT_EXPECT_EQ(d.swp.offset, pfn);
    }
    // leaf_entry = writable migration entry for PFN ~0: the offset field is 50 bits.
    Entry m;
    m.kind = Kind::swap;
    m.swp.type = hugepte::kSwpMigrationWrite;
    m.swp.offset = ~uint64_t{0};
    HPT_EXPECT(F::encode(m, l).err == Err::einval);
    m.swp.offset = bit(50) - 1;
    HPT_EXPECT_EQ(F::decode(enc<F>(hpt_ctx, m, l), l).swp.offset, bit(50) - 1);
  }
}

// Property 102 and docs/arch.md §3.4: a PTE marker is the swap entry of type SWP_PTE_MARKER with
// the uffd-wp / poisoned / guard flags in the offset.
HPT_FORMAT_CASE(format, MarkersAreTheLastSwapTypeWithFlagsInTheOffset, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    for (uint64_t flags = 0; flags < 8; ++flags) {
      Entry e;
      e.kind = Kind::marker;
      e.shift = static_cast<uint8_t>(F::shift(l));
      e.swp.type = hugepte::kSwpPteMarker;
      e.swp.offset = flags;  // kMarkerUffdWp | kMarkerPoisoned | kMarkerGuard subsets
      const uint64_t raw = enc<F>(hpt_ctx, e, l);
      HPT_EXPECT_EQ(raw, (uint64_t{31} << 6) | (flags << 12));
      const Entry d = F::decode(raw, l);
      EXPECT_SAME_ENTRY(d, e);
      HPT_EXPECT_EQ((d.swp.offset & hugepte::kMarkerUffdWp) != 0, (flags & 1) != 0);
      HPT_EXPECT_EQ((d.swp.offset & hugepte::kMarkerPoisoned) != 0, (flags & 2) != 0);
      HPT_EXPECT_EQ((d.swp.offset & hugepte::kMarkerGuard) != 0, (flags & 4) != 0);
      HPT_EXPECT(!linux_present(raw) && raw != 0);
    }
  }
}

// --- contiguous groups ---------------------------------------------------------------------------

// Property 109: sub-entry i of a CONT group has its own output address base + i * size, the
// CONT bit and otherwise identical attributes; decode reports the group size.
HPT_FORMAT_CASE(format, ContiguousSubEntriesCarryTheirOwnOutputAddress, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::cont_shift(l)) continue;
    const unsigned n = 1u << (F::cont_shift(l) - F::shift(l));
    const uint64_t base = test_addr<F>(l) & F::oa_mask(F::cont_shift(l));
    HPT_ASSERT(base != 0);
    Entry e = mkdirty(mkwrite(user_leaf<F>(l, base)));
    e.cont_shift = static_cast<uint8_t>(F::cont_shift(l));
    const uint64_t raw0 = enc<F>(hpt_ctx, e, l);
    HPT_EXPECT(raw0 & a::kContiguous);
    for (unsigned i = 0; i < n; ++i) {
      const uint64_t ri = F::group_entry(raw0, l, i);
      HPT_EXPECT_EQ(ri & ~F::oa_mask(F::shift(l)), raw0 & ~F::oa_mask(F::shift(l)));
      Entry d = F::decode(ri, l);
      HPT_EXPECT(d.kind == Kind::leaf);
      HPT_EXPECT_EQ(d.addr, base + (uint64_t{i} << F::shift(l)));
      HPT_EXPECT_EQ(static_cast<unsigned>(d.cont_shift), F::cont_shift(l));
      HPT_EXPECT_EQ(F::out_addr(ri, l), d.addr);
      HPT_EXPECT(!F::needs_bbm(ri, ri ^ a::kAF, l));
      d.addr = base;
      EXPECT_SAME_ENTRY(d, e);  // the same logical mapping in every slot
      HPT_EXPECT_EQ(enc<F>(hpt_ctx, F::decode(ri, l), l), ri);
    }
    // Present-invalid groups (PROT_NONE hugetlb) advance the same way.
    Entry pn = e;
    pn.kind = Kind::protnone;
    const uint64_t p0 = enc<F>(hpt_ctx, pn, l);
    HPT_EXPECT_EQ(F::decode(F::group_entry(p0, l, n - 1), l).addr,
                  base + (uint64_t{n - 1} << F::shift(l)));
    // Property 103: a non-present value is written identically to every sub-entry.
    Entry s;
    s.kind = Kind::swap;
    s.swp = {3, 0x1234, true, false, false};
    const uint64_t sraw = enc<F>(hpt_ctx, s, l);
    Entry mk;
    mk.kind = Kind::marker;
    mk.swp = {hugepte::kSwpPteMarker, hugepte::kMarkerUffdWp, false, false, false};
    const uint64_t mraw = enc<F>(hpt_ctx, mk, l);
    for (unsigned i = 0; i < n; i += n / 4) {
      HPT_EXPECT_EQ(F::group_entry(sraw, l, i), sraw);
      HPT_EXPECT_EQ(F::group_entry(mraw, l, i), mraw);
      HPT_EXPECT_EQ(F::group_entry(0, l, i), uint64_t{0});
    }
  }
}

// Property 110: young and dirty of a group are the OR over its sub-entries; the hardware sets
// AF or clears AP[2] in any one of them.
HPT_FORMAT_CASE(format, ContiguousGroupGathersYoungAndDirtyFromAnySubEntry, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::cont_shift(l)) continue;
    const unsigned n = 1u << (F::cont_shift(l) - F::shift(l));
    Entry e = mkwrite(user_leaf<F>(l, test_addr<F>(l) & F::oa_mask(F::cont_shift(l))));
    e.accessed = false;
    e.cont_shift = static_cast<uint8_t>(F::cont_shift(l));
    const uint64_t raw0 = enc<F>(hpt_ctx, e, l);
    for (unsigned hit = 0; hit < n; hit += 3) {
      bool young = false, dirty = false;
      for (unsigned i = 0; i < n; ++i) {
        uint64_t ri = F::group_entry(raw0, l, i);
        if (i == hit) ri = (ri | a::kAF) & ~a::kAP2;  // what FEAT_HAFDBS does on a write
        const Entry d = F::decode(ri, l);
        young |= d.accessed;
        dirty |= d.dirty;
      }
      HPT_EXPECT(young);
      HPT_EXPECT(dirty);
    }
    bool any = false;
    for (unsigned i = 0; i < n; ++i) any |= F::decode(F::group_entry(raw0, l, i), l).dirty;
    HPT_EXPECT(!any);
  }
}

// --- break-before-make -------------------------------------------------------------------------

HPT_FORMAT_CASE(format, BreakBeforeMakeGuardsAddressSizeTypeAndContChanges, hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const uint64_t p = enc<F>(hpt_ctx, mkwrite(user_leaf<F>(l, test_addr<F>(l))), l);
    // Needs the break: output address, memory type, shareability, CONT, non-global -> global.
    HPT_EXPECT(F::needs_bbm(p, p + bit(F::shift(l) + 1), l));
    HPT_EXPECT(F::needs_bbm(p, p ^ (uint64_t{1} << a::kAttrIndxLo), l));
    HPT_EXPECT(F::needs_bbm(p, p ^ bit(a::kShLo), l));
    HPT_EXPECT(F::needs_bbm(p, p ^ a::kContiguous, l));
    HPT_EXPECT(F::needs_bbm(p, p & ~a::kNG, l));
    // Permissions, AF, DBM, software bits and global -> non-global change in place.
    const uint64_t in_place[] = {a::kAP2, a::kAP1, a::kAF, a::kDBM, a::kPXN, a::kUXN, a::kSwDirty,
                            a::kSwSpecial, a::kSwUffdWp};
    for (uint64_t b : in_place) HPT_EXPECT(!F::needs_bbm(p, p ^ b, l));
    HPT_EXPECT(!F::needs_bbm(p & ~a::kNG, p, l));
    // Invalid on either side: the break itself, or a make after it.
    HPT_EXPECT(!F::needs_bbm(0, p, l));
    HPT_EXPECT(!F::needs_bbm(p, 0, l));
    HPT_EXPECT(!F::needs_bbm(p, (p & ~a::kValid) | a::kNG, l));
    // Block <-> table (a change of size) at a block level.
    if (l > 0) HPT_EXPECT(F::needs_bbm(p, F::make_table(test_addr<F>(l), l), l));
  }
  for (unsigned l = 1; l < F::levels; ++l) {
    const uint64_t t = F::make_table(0x40000000, l);
    HPT_EXPECT(F::needs_bbm(t, F::make_table(0x40000000 + bit(F::page_shift), l), l));
    HPT_EXPECT(!F::needs_bbm(t, t | a::kPXNTable, l));
  }
}

// --- levels and huge checks ----------------------------------------------------------------------

// Properties 46, 52-53, 65, 71-72: a block (pmd_mkhuge / pud_mkhuge) is a leaf and not a table
// ("bad" to pmd_bad); the page type at level 0 is a leaf; blocks only where the Arm ARM allows.
HPT_FORMAT_CASE(format, BlocksAreLeavesAndNotTablesWhereverTheArchitectureAllowsThem,
                hugepte::Arm64Formats) {
  using F = Fmt;
  for (unsigned l = 1; l < F::levels; ++l) {
    const uint64_t addr = test_addr<F>(l) & F::oa_mask(F::shift(l));
    const uint64_t block =
        addr | a::kAF | (uint64_t{a::kMtNormal} << 2) | a::kValid;  // bits[1:0] = 01
    if (F::leaf_ok(l)) {
      HPT_EXPECT(F::is_leaf(block, l));
      HPT_EXPECT(!F::is_table(block, l));
      HPT_EXPECT(F::decode(block, l).kind == Kind::leaf);
      HPT_EXPECT_EQ(F::decode(block, l).addr, addr);
      HPT_EXPECT_EQ(static_cast<unsigned>(F::decode(block, l).shift), F::shift(l));
      HPT_EXPECT(F::decode(block | a::kTableOrPage, l).kind == Kind::table);  // same bits, type 11
    } else {
      HPT_EXPECT(!F::is_leaf(block, l));
      HPT_EXPECT(F::decode(block, l).kind == Kind::invalid);
      HPT_EXPECT(F::decode(block, l).reason == Reason::leaf_not_allowed);
      Entry e = user_leaf<F>(l, addr);
      HPT_EXPECT(F::encode(e, l).err == Err::einval);
    }
  }
  const uint64_t page = 0x40000000 | a::kAF | (uint64_t{a::kMtNormal} << 2) | 3;
  HPT_EXPECT(F::is_leaf(page, 0));
  HPT_EXPECT(!F::is_table(page, 0));
}

// --- everything invalid, by decode and by encode -----------------------------------------------

template <class F>
void expect_invalid(hpt::Ctx& hpt_ctx, uint64_t raw, unsigned level, Reason why) {
  const Entry e = F::decode(raw, level);
  HPT_EXPECT(e.kind == Kind::invalid);
  HPT_EXPECT_EQ(static_cast<unsigned>(e.reason), static_cast<unsigned>(why));
  HPT_EXPECT(!F::is_leaf(raw, level));
  HPT_EXPECT(!F::is_table(raw, level));
  HPT_EXPECT(F::encode(e, level).err == Err::einval);
}

HPT_FORMAT_CASE(format, InvalidDescriptorsDecodeAsInvalidWithTheirReason, hugepte::Arm64Formats) {
  using F = Fmt;
  const uint64_t attrs = a::kAF | (uint64_t{a::kMtNormal} << 2);
  // bits[1:0] = 01 at Arm level 3 is reserved.
  expect_invalid<F>(hpt_ctx, 0x40000000 | attrs | 1, 0, Reason::reserved_descriptor);
  // A present-invalid level-0 entry with the block type bit pattern is the same reserved form.
  expect_invalid<F>(hpt_ctx, 0x40000000 | attrs | a::kNG, 0, Reason::reserved_descriptor);
  for (unsigned l = 0; l < F::levels; ++l) {
    const uint64_t oa = test_addr<F>(l) & F::oa_mask(F::shift(l));
    const uint64_t leaf = oa | attrs | (l == 0 ? 3 : 1);
    if (!F::leaf_ok(l)) {
      expect_invalid<F>(hpt_ctx, leaf, l, Reason::leaf_not_allowed);               // block
      expect_invalid<F>(hpt_ctx, (leaf & ~uint64_t{1}) | a::kNG, l,
                        Reason::leaf_not_allowed);                                      // protnone
      expect_invalid<F>(hpt_ctx, uint64_t{5} << 12, l, Reason::leaf_not_allowed);       // swap
      continue;
    }
    // (RES0 bits around the output address are not here: the walk ignores them, see
    // BitsTheWalkIgnoresAroundTheOutputAddressAreKeptNotInvalid.)
    if (l > 0) {
      // A present-invalid entry with the table type at a block level is nothing Linux builds.
      expect_invalid<F>(hpt_ctx, (leaf & ~uint64_t{1}) | a::kTableOrPage | a::kNG, l,
                        Reason::unrepresentable);
    }
    // AttrIndx 5, 6 and 7 are not programmed by Linux: no memory type. (The MMU would translate
    // with MAIR's byte; this one is a Linux-convention judgment, not a hardware fault.)
    for (uint64_t idx = 5; idx < 8; ++idx)
      expect_invalid<F>(hpt_ctx, (leaf & ~mask(2, 4)) | (idx << 2), l, Reason::unrepresentable);
    // Non-present values with bits outside Linux's swap fields.
    const uint64_t swp = (uint64_t{3} << 6) | (uint64_t{9} << 12);
    const uint64_t strays[] = {bit(1), bit(4), bit(5), bit(62), bit(63)};
    for (uint64_t b : strays)
      expect_invalid<F>(hpt_ctx, swp | b, l, Reason::bad_swap);
  }
}

// What the MMU ignores is not invalid (arm64.hpp; checked against QEMU by format_hw): RES0
// bits[49:48] of leaves and [50:48] of tables, 16K bits[13:12], 64K bits[15:12] (OA[51:48] only
// with 52-bit addressing) and a block's bits below its size. decode masks the address to the
// level's alignment, carries the bits in keep, and encode gives back the very same raw value.
template <class F>
void expect_kept(hpt::Ctx& hpt_ctx, uint64_t raw, unsigned level, Kind kind, uint64_t addr,
                 uint64_t ignored) {
  const Entry e = F::decode(raw, level);
  HPT_EXPECT(e.kind == kind);
  HPT_EXPECT(e.reason == Reason::none);
  HPT_EXPECT_EQ(e.addr, addr);
  HPT_EXPECT_EQ(e.keep & ignored, ignored);
  HPT_EXPECT_EQ(F::out_addr(raw, level), addr);
  HPT_EXPECT_EQ(F::is_leaf(raw, level), kind == Kind::leaf);
  HPT_EXPECT_EQ(F::is_table(raw, level), kind == Kind::table);
  auto r = F::encode(e, level);
  HPT_EXPECT(r.ok());
  HPT_EXPECT_EQ(r.value, raw);
  // Apart from keep, the same entry as without the ignored bits.
  Entry clean = e;
  clean.keep &= ~ignored;
  EXPECT_SAME_ENTRY(F::decode(raw & ~ignored, level), clean);
}

HPT_FORMAT_CASE(format, BitsTheWalkIgnoresAroundTheOutputAddressAreKeptNotInvalid,
                hugepte::Arm64Formats) {
  using F = Fmt;
  const uint64_t attrs = a::kAF | (uint64_t{a::kMtNormal} << 2);
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const uint64_t oa = test_addr<F>(l) & F::oa_mask(F::shift(l));
    const uint64_t leaf = oa | attrs | (l == 0 ? 3 : 1);
    const uint64_t protnone = (leaf & ~a::kValid) | a::kNG;
    uint64_t ignored[8] = {bit(48), bit(49), mask(48, 49), F::kSubGranule, 0, 0, 0, 0};
    if (F::page_shift > 12) ignored[4] = bit(12);
    if (l > 0) {
      ignored[5] = bit(F::page_shift);                      // lowest OA bit of a page
      ignored[6] = bit(F::shift(l) - 1);                    // highest bit below the block
      ignored[7] = mask(12, F::shift(l) - 1) | mask(48, 49);  // all of them at once
    }
    for (uint64_t b : ignored) {
      if (!b) continue;
      expect_kept<F>(hpt_ctx, leaf | b, l, Kind::leaf, oa, b);
      expect_kept<F>(hpt_ctx, protnone | b, l, Kind::protnone, oa, b);
      // The keep bits are not an address: the next block/page over is still a different one.
      HPT_EXPECT(F::needs_bbm(leaf | b, (leaf | b) + bit(F::shift(l)), l));
      HPT_EXPECT(!F::needs_bbm(leaf, leaf | b, l));  // same output address, same size
    }
    // Contiguous sub-entries keep their ignored bits and still advance by one entry.
    if (F::cont_shift(l)) {
      const uint64_t raw0 = (oa & F::oa_mask(F::cont_shift(l))) | attrs | (l == 0 ? 3 : 1) |
                       a::kContiguous | bit(48) | F::kSubGranule;
      const uint64_t r1 = F::group_entry(raw0, l, 1);
      HPT_EXPECT_EQ(r1 & (bit(48) | F::kSubGranule), bit(48) | F::kSubGranule);
      HPT_EXPECT_EQ(F::decode(r1, l).addr, (oa & F::oa_mask(F::cont_shift(l))) + bit(F::shift(l)));
    }
  }
  for (unsigned l = 1; l < F::levels; ++l) {
    const uint64_t table = F::make_table(0x40000000, l);
    const uint64_t ignored[] = {bit(48), bit(49), bit(50), mask(48, 50), F::kSubGranule,
                           F::page_shift > 12 ? bit(12) : 0};
    for (uint64_t b : ignored)
      if (b) expect_kept<F>(hpt_ctx, table | b, l, Kind::table, 0x40000000, b);
  }
  // Still refused by encode: an address not aligned to its level (a caller error), whatever
  // keep holds; the same bits in keep are fine.
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    Entry e = user_leaf<F>(l, test_addr<F>(l));
    const uint64_t below = l > 0 ? mask(F::page_shift, F::shift(l) - 1) : F::kSubGranule;
    if (!below) continue;  // a 4K page has nothing below its address
    Entry x = e;
    x.addr |= below;
    HPT_EXPECT(F::encode(x, l).err == Err::einval);
    x = e;
    x.keep = below;
    HPT_EXPECT_EQ(enc<F>(hpt_ctx, x, l), enc<F>(hpt_ctx, e, l) | below);
  }
}

HPT_FORMAT_CASE(format, EncodeRefusesWhatTheFormatCannotExpress, hugepte::Arm64Formats) {
  using F = Fmt;
  auto refused = [&](const Entry& e, unsigned l) { return F::encode(e, l).err == Err::einval; };
  // A table at the page level; tables misaligned or beyond 48 bits; keep over the address.
  Entry t;
  t.kind = Kind::table;
  t.addr = 0x40000000;
  HPT_EXPECT(refused(t, 0));
  if (F::levels > 1) {
    HPT_EXPECT(!refused(t, 1));
    t.addr = 0x40000000 + 0x800;
    HPT_EXPECT(refused(t, 1));
    t.addr = bit(48);
    HPT_EXPECT(refused(t, 1));
    t.addr = 0x40000000;
    t.keep = bit(F::page_shift);
    HPT_EXPECT(refused(t, 1));
  }
  for (unsigned l = 0; l < F::levels; ++l) {
    Entry e = user_leaf<F>(l, test_addr<F>(l));
    if (!F::leaf_ok(l)) {
      HPT_EXPECT(refused(e, l));
      Entry s;
      s.kind = Kind::swap;
      s.swp.type = 1;
      s.swp.offset = 1;
      HPT_EXPECT(refused(s, l));
      continue;
    }
    HPT_EXPECT(!refused(e, l));
    Entry x = e;
    x.addr += bit(F::page_shift);  // a block not aligned to its size
    HPT_EXPECT_EQ(refused(x, l), l > 0);
    x = e;
    x.addr = bit(48);  // beyond pa_bits
    HPT_EXPECT(refused(x, l));
    x = e;
    x.mem = MemType::write_protect;  // no arm64 memory type
    HPT_EXPECT(refused(x, l));
    x.mem = MemType::write_through;  // Normal-WT: no AttrIndx in Linux's MAIR
    HPT_EXPECT(refused(x, l));
    x = e;
    x.prot.read = false;  // AP[2:1] always grants read
    HPT_EXPECT(refused(x, l));
    x = mkwrite(e);
    x.prot.write = true;  // writable and hardware-writable but clean: DBM && !RDONLY is dirty
    HPT_EXPECT(refused(x, l));
    x = e;
    x.cont_shift = static_cast<uint8_t>(F::shift(l) + 1);  // not this level's group size
    HPT_EXPECT(refused(x, l));
    x = e;
    x.kind = Kind::protnone;
    x.global = true;
    HPT_EXPECT(refused(x, l));
    x = e;
    x.kind = Kind::invalid;
    HPT_EXPECT(refused(x, l));
    // Swap fields out of range, and types that belong to the other kind.
    Entry s;
    s.kind = Kind::swap;
    s.swp = {32, 1, false, false, false};
    HPT_EXPECT(refused(s, l));
    s.swp = {1, bit(50), false, false, false};
    HPT_EXPECT(refused(s, l));
    s.swp = {hugepte::kSwpPteMarker, 1, false, false, false};
    HPT_EXPECT(refused(s, l));
    s.swp = {0, 0, false, false, false};
    HPT_EXPECT(refused(s, l));
    s.kind = Kind::marker;
    s.swp = {1, hugepte::kMarkerGuard, false, false, false};
    HPT_EXPECT(refused(s, l));
  }
  HPT_EXPECT(refused(user_leaf<F>(0, 0x40000000), F::levels));  // no such level
}

// --- hand-computed vectors ---------------------------------------------------------------------
// MAIR indices (arm64.hpp, Linux's MT_* order): 0 Normal, 1 Tagged, 2 Normal-NC,
// 3 Device-nGnRnE, 4 Device-nGnRE; AttrIndx sits in bits[4:2], so Normal is 0 << 2 = 0x0,
// Tagged 0x4, Normal-NC 0x8, Device-nGnRnE 0xC and Device-nGnRE 0x10.
// Low attribute bits: type 0x3 (page/table) or 0x1 (block), AP[1] 0x40, AP[2] 0x80,
// SH inner 0x300, AF 0x400, nG 0x800. High: DBM bit 51 = 0x0008 << 48, CONT bit 52 = 0x0010,
// PXN 53 = 0x0020, UXN 54 = 0x0040, PTE_DIRTY 55 = 0x0080, SPECIAL 56 = 0x0100,
// UFFD_WP 58 = 0x0400 (all << 48).

template <class F>
void expect_leaf(hpt::Ctx& hpt_ctx, uint64_t raw, unsigned level, uint64_t addr, hugepte::Prot prot,
                 bool writable, bool dirty, bool global, MemType mem) {
  const Entry e = F::decode(raw, level);
  HPT_EXPECT(e.kind == Kind::leaf);
  HPT_EXPECT_EQ(e.addr, addr);
  HPT_EXPECT(e.prot == prot);
  HPT_EXPECT_EQ(e.writable, writable);
  HPT_EXPECT_EQ(e.dirty, dirty);
  HPT_EXPECT_EQ(e.global, global);
  HPT_EXPECT(e.mem == mem);
  HPT_EXPECT_EQ(e.keep, uint64_t{0});
  HPT_EXPECT_EQ(F::encode(e, level).value, raw);
}

constexpr hugepte::Prot kUserR{true, false, false, true};
constexpr hugepte::Prot kUserRW{true, true, false, true};
constexpr hugepte::Prot kUserRX{true, false, true, true};

HPT_ARCH_CASE("arm64", format, KnownVectorsFor4KPagesMatchTheArmArm) {
  using F = hugepte::Arm64_4K_48;
  // 1. PAGE_SHARED (clean) at PA 0x12345000:
  //    low 0x3 | Normal 0x0 | AP[1] 0x40 | AP[2] 0x80 | SH 0x300 | AF 0x400 | nG 0x800 = 0xFC3;
  //    high DBM 0x0008 | PXN 0x0020 | UXN 0x0040 = 0x0068 -> 0x0068_0000_1234_5FC3.
  expect_leaf<F>(hpt_ctx, 0x0068000012345FC3ull, 0, 0x12345000, kUserR, true, false, false,
                 MemType::normal);
  // 2. The same after the hardware's first write (FEAT_HAFDBS clears AP[2]): 0xFC3 - 0x80 = 0xF43.
  expect_leaf<F>(hpt_ctx, 0x0068000012345F43ull, 0, 0x12345000, kUserRW, true, true, false,
                 MemType::normal);
  // 3. Linux's pte_mkdirty of #1 also sets PTE_DIRTY: 0x0068 | 0x0080 = 0x00E8. Decodes like #2
  //    and encodes to #2 (the second spelling).
  {
    const Entry e = F::decode(0x00E8000012345F43ull, 0);
    HPT_EXPECT(e.dirty && e.writable && e.prot.write);
    HPT_EXPECT_EQ(F::encode(e, 0).value, uint64_t{0x0068000012345F43ull});
  }
  // 4. pte_wrprotect of #2: DBM off, AP[2] on, hardware dirty moves to PTE_DIRTY:
  //    high 0x0080 | 0x0020 | 0x0040 = 0x00E0, low 0xFC3 -> 0x00E0_0000_1234_5FC3.
  expect_leaf<F>(hpt_ctx, 0x00E0000012345FC3ull, 0, 0x12345000, kUserR, false, true, false,
                 MemType::normal);
  {
    const Entry e = wrprotect(F::decode(0x0068000012345F43ull, 0));
    HPT_EXPECT_EQ(F::encode(e, 0).value, uint64_t{0x00E0000012345FC3ull});
  }
  // 5. PAGE_KERNEL at 0x40080000: 0x3 | 0x0 | 0x300 | 0x400 = 0x703 (global, AP[2] clear);
  //    high DBM | PXN | UXN = 0x0068. Kernel: exec = !PXN = false; UXN is Linux's default.
  expect_leaf<F>(hpt_ctx, 0x0068000040080703ull, 0, 0x40080000, hugepte::kProtRW, true, true, true,
                 MemType::normal);
  // 6. PAGE_KERNEL_EXEC: PXN clear, high 0x0048.
  expect_leaf<F>(hpt_ctx, 0x0048000040080703ull, 0, 0x40080000, hugepte::kProtRWX, true, true, true,
                 MemType::normal);
  // 7. PROT_DEVICE_nGnRE at the PL011 (0x09000000): AttrIndx 4 -> 0x10; 0x3 | 0x10 | 0x300 |
  //    0x400 = 0x713, high 0x0068.
  expect_leaf<F>(hpt_ctx, 0x0068000009000713ull, 0, 0x09000000, hugepte::kProtRW, true, true, true,
                 MemType::device_nGnRE);
  // 8. PAGE_READONLY_EXEC at 0x40000000: PAGE_SHARED minus DBM and UXN: high 0x0020, low 0xFC3.
  expect_leaf<F>(hpt_ctx, 0x0020000040000FC3ull, 0, 0x40000000, kUserRX, false, false, false,
                 MemType::normal);
  // 9. PAGE_NONE at 0x40000000: (0x703 & ~VALID) | PRESENT_INVALID 0x800 | RDONLY 0x80 = 0xF82;
  //    high PXN | UXN = 0x0060.
  {
    const Entry e = F::decode(0x0060000040000F82ull, 0);
    HPT_EXPECT(e.kind == Kind::protnone);
    HPT_EXPECT_EQ(e.addr, uint64_t{0x40000000});
    HPT_EXPECT(e.prot == hugepte::kProtR);
    HPT_EXPECT(!e.global && e.keep == 0);
    HPT_EXPECT_EQ(enc<F>(hpt_ctx, linux_page_prot<F>(0, 0, 0x40000000), 0),
                  uint64_t{0x0060000040000F82ull});
  }
  // 10. CONT_PTE group of PAGE_SHARED at 0x40010000 (64K aligned): high 0x0068 | CONT 0x0010 =
  //     0x0078. Sub-entry 15 maps 0x40010000 + 15 * 0x1000 = 0x4001F000.
  {
    const uint64_t raw0 = 0x0078000040010FC3ull;
    const Entry e = F::decode(raw0, 0);
    HPT_EXPECT_EQ(static_cast<unsigned>(e.cont_shift), 16u);
    HPT_EXPECT_EQ(F::group_entry(raw0, 0, 15), uint64_t{0x007800004001FFC3ull});
    HPT_EXPECT_EQ(F::decode(0x007800004001FFC3ull, 0).addr, uint64_t{0x4001F000});
  }
  // 11. Special + uffd-wp on #1: high 0x0068 | 0x0100 | 0x0400 = 0x0568.
  {
    const Entry e = F::decode(0x0568000012345FC3ull, 0);
    HPT_EXPECT(e.soft.special && e.soft.uffd_wp);
    HPT_EXPECT_EQ(F::encode(e, 0).value, uint64_t{0x0568000012345FC3ull});
  }
}

HPT_ARCH_CASE("arm64", format, KnownVectorsFor4KBlocksTablesAndSwap) {
  using F = hugepte::Arm64_4K_48;
  // 12. 2M block (level 1), user RW dirty at 0x80200000: type 0x1 | 0x0 | 0x40 | 0x300 | 0x400
  //     | 0x800 = 0xF41, high 0x0068.
  expect_leaf<F>(hpt_ctx, 0x0068000080200F41ull, 1, 0x80200000, kUserRW, true, true, false,
                 MemType::normal);
  // 13. 1G block (level 2), kernel RWX global Normal at 0x40000000: 0x1 | 0x0 | 0x300 | 0x400 =
  //     0x701; high DBM 0x0008 | UXN 0x0040 = 0x0048.
  expect_leaf<F>(hpt_ctx, 0x0048000040000701ull, 2, 0x40000000, hugepte::kProtRWX, true, true, true,
                 MemType::normal);
  // 14. PMD-level PAGE_NONE (pmd_mkhuge clears the table bit): 0xF82 & ~0x2 = 0xF80.
  {
    const Entry e = F::decode(0x0060000040200F80ull, 1);
    HPT_EXPECT(e.kind == Kind::protnone);
    HPT_EXPECT_EQ(e.addr, uint64_t{0x40200000});
    HPT_EXPECT_EQ(enc<F>(hpt_ctx, e, 1), uint64_t{0x0060000040200F80ull});
  }
  // 15. A 2M block with nT (bit 16): 0x40200000 | 0x10000 = 0x40210000; the address stays
  //     0x40200000 and nT travels in keep.
  {
    const Entry e = F::decode(0x0068000040210F41ull, 1);
    HPT_EXPECT(e.kind == Kind::leaf);
    HPT_EXPECT_EQ(e.addr, uint64_t{0x40200000});
    HPT_EXPECT_EQ(e.keep, uint64_t{0x10000});
    HPT_EXPECT_EQ(F::encode(e, 1).value, uint64_t{0x0068000040210F41ull});
  }
  // 16. 2M block with bit 12 set: bits[20:12] of a block are ignored by the walk (it takes
  //     OA = desc[47:21] : va[20:0]), so 0x40201000 is the block at 0x40200000 with 0x1000 in
  //     keep, and re-encodes to the same raw value. All of bits[20:12] (0x1FF000, nT among
  //     them): 0x40200000 | 0x1FF000 = 0x403FF000, still the block at 0x40200000.
  {
    const Entry e = F::decode(0x0068000040201F41ull, 1);
    HPT_EXPECT(e.kind == Kind::leaf);
    HPT_EXPECT_EQ(e.addr, uint64_t{0x40200000});
    HPT_EXPECT_EQ(e.keep, uint64_t{0x1000});
    HPT_EXPECT_EQ(F::encode(e, 1).value, uint64_t{0x0068000040201F41ull});
    const Entry all = F::decode(0x00680000403FFF41ull, 1);
    HPT_EXPECT(all.kind == Kind::leaf);
    HPT_EXPECT_EQ(all.addr, uint64_t{0x40200000});
    HPT_EXPECT_EQ(all.keep, uint64_t{0x1FF000});
    HPT_EXPECT_EQ(F::encode(all, 1).value, uint64_t{0x00680000403FFF41ull});
    // The vocabulary's own misaligned address is still refused.
    Entry m = F::decode(0x0068000080200F41ull, 1);
    m.addr = 0x80201000;
    HPT_EXPECT(F::encode(m, 1).err == Err::einval);
  }
  // 16a. #1 with bits 48 and 49 (RES0 without FEAT_LPA2; 0x0003 << 48): 0x006B_0000_1234_5FC3
  //      is the same page at 0x12345000 with 0x0003_0000_0000_0000 in keep.
  {
    const Entry e = F::decode(0x006B000012345FC3ull, 0);
    HPT_EXPECT(e.kind == Kind::leaf);
    HPT_EXPECT_EQ(e.addr, uint64_t{0x12345000});
    HPT_EXPECT_EQ(e.keep, uint64_t{0x0003000000000000ull});
    HPT_EXPECT_EQ(F::encode(e, 0).value, uint64_t{0x006B000012345FC3ull});
  }
  // 17. Table at the 4K/48 root (level 3) to 0x40001000 with PXNTable | UXNTable (bits 59, 60 =
  //     0x1800 << 48): 0x1800_0000_4000_1003.
  {
    const Entry e = F::decode(0x1800000040001003ull, 3);
    HPT_EXPECT(e.kind == Kind::table);
    HPT_EXPECT_EQ(e.addr, uint64_t{0x40001000});
    HPT_EXPECT_EQ(e.keep, uint64_t{0x1800000000000000ull});
    HPT_EXPECT_EQ(F::encode(e, 3).value, uint64_t{0x1800000040001003ull});
  }
  // 18. A block descriptor at the 4K root (Arm level 0): 0x8000000000 | AF 0x400 | 0x1 ->
  //     leaf_not_allowed.
  HPT_EXPECT(F::decode(0x0000008000000401ull, 3).reason == Reason::leaf_not_allowed);
  // 19. 01 at the page level: reserved.
  HPT_EXPECT(F::decode(0x0000000040000401ull, 0).reason == Reason::reserved_descriptor);
  // 20. Swap type 3, offset 0x1234, exclusive: 3 << 6 = 0xC0, 0x1234 << 12 = 0x1234000, bit 2
  //     = 0x4 -> 0x12340C4.
  {
    Entry s;
    s.kind = Kind::swap;
    s.shift = 12;
    s.swp = {3, 0x1234, true, false, false};
    HPT_EXPECT_EQ(enc<F>(hpt_ctx, s, 0), uint64_t{0x12340C4});
    EXPECT_SAME_ENTRY(F::decode(0x12340C4, 0), s);
  }
  // 21. uffd-wp marker: type 31 << 6 = 0x7C0, offset PTE_MARKER_UFFD_WP 1 << 12 = 0x1000 ->
  //     0x17C0.
  {
    const Entry m = F::decode(0x17C0, 0);
    HPT_EXPECT(m.kind == Kind::marker);
    HPT_EXPECT_EQ(m.swp.offset, hugepte::kMarkerUffdWp);
  }
  // 22. Writable migration entry for PFN 0x80000 at PMD level: type 27 << 6 = 0x6C0, 0x80000
  //     << 12 = 0x80000000 -> 0x800006C0.
  {
    const Entry m = F::decode(0x800006C0, 1);
    HPT_EXPECT(m.kind == Kind::swap);
    HPT_EXPECT_EQ(m.swp.type, hugepte::kSwpMigrationWrite);
    HPT_EXPECT_EQ(m.swp.offset, uint64_t{0x80000});
  }
  // 23. Swap with uffd-wp, type 1, offset 1: 0x8 | 0x40 | 0x1000 = 0x1048.
  HPT_EXPECT(F::decode(0x1048, 0).swp.uffd_wp && F::decode(0x1048, 0).swp.type == 1);
}

HPT_ARCH_CASE("arm64", format, KnownVectorsFor16KAnd64KGranules) {
  using F16 = hugepte::Arm64_16K_47;
  using F64 = hugepte::Arm64_64K_48;
  // 24. 16K PAGE_READONLY at 0x40004000 (16K aligned): high PXN | UXN = 0x0060, low 0xFC3.
  expect_leaf<F16>(hpt_ctx, 0x0060000040004FC3ull, 0, 0x40004000, kUserR, false, false, false,
                   MemType::normal);
  // 25. 16K 32M block (level 1) at 0x42000000 = 0x21 * 0x2000000, user RO: 0xFC1, high 0x0060.
  expect_leaf<F16>(hpt_ctx, 0x0060000042000FC1ull, 1, 0x42000000, kUserR, false, false, false,
                   MemType::normal);
  // 26. 16K CONT_PMD: 32 x 32M = 1G; the same block with CONT (0x0070) belongs to a 2^30 group.
  HPT_EXPECT_EQ(static_cast<unsigned>(F16::decode(0x0070000042000FC1ull, 1).cont_shift), 30u);
  // 27. 16K CONT_PTE: 128 x 16K = 2M; sub-entry 127 of a group at 0x40200000 maps
  //     0x40200000 + 127 * 0x4000 = 0x403FC000.
  HPT_EXPECT_EQ(F16::group_entry(0x0070000040200FC3ull, 0, 127), uint64_t{0x00700000403FCFC3ull});
  // 28. 16K bits[13:12] are RES0 in a page and ignored by the walk: 0x40005000 (bit 12) and
  //     0x40007000 (bits 13:12) are the page at 0x40004000 with 0x1000 / 0x3000 in keep.
  {
    const Entry e = F16::decode(0x0060000040005FC3ull, 0);
    HPT_EXPECT(e.kind == Kind::leaf);
    HPT_EXPECT_EQ(e.addr, uint64_t{0x40004000});
    HPT_EXPECT_EQ(e.keep, uint64_t{0x1000});
    HPT_EXPECT_EQ(F16::encode(e, 0).value, uint64_t{0x0060000040005FC3ull});
    const Entry e3 = F16::decode(0x0060000040007FC3ull, 0);
    HPT_EXPECT_EQ(e3.addr, uint64_t{0x40004000});
    HPT_EXPECT_EQ(e3.keep, uint64_t{0x3000});
    HPT_EXPECT_EQ(F16::encode(e3, 0).value, uint64_t{0x0060000040007FC3ull});
  }
  // 29. 64K PAGE_SHARED_EXEC clean at 0x40010000: high DBM | PXN = 0x0028, low 0xFC3.
  expect_leaf<F64>(hpt_ctx, 0x0028000040010FC3ull, 0, 0x40010000, kUserRX, true, false, false,
                   MemType::normal);
  // 30. 64K 512M block (level 1) kernel RW at 0x60000000 = 3 * 0x20000000: 0x701, high 0x0068.
  expect_leaf<F64>(hpt_ctx, 0x0068000060000701ull, 1, 0x60000000, hugepte::kProtRW, true, true,
                   true, MemType::normal);
  // 31. 64K page with bits[15:12] set: OA[51:48] only with FEAT_LPA and a 52-bit IPS; with 48
  //     bits the walk ignores them. 0x40011000 (bit 12) and 0x4001F000 (bits 15:12) are the
  //     page at 0x40010000 with 0x1000 / 0xF000 in keep.
  {
    const Entry e = F64::decode(0x0028000040011FC3ull, 0);
    HPT_EXPECT(e.kind == Kind::leaf);
    HPT_EXPECT_EQ(e.addr, uint64_t{0x40010000});
    HPT_EXPECT_EQ(e.keep, uint64_t{0x1000});
    HPT_EXPECT_EQ(F64::encode(e, 0).value, uint64_t{0x0028000040011FC3ull});
    const Entry ef = F64::decode(0x002800004001FFC3ull, 0);
    HPT_EXPECT_EQ(ef.addr, uint64_t{0x40010000});
    HPT_EXPECT_EQ(ef.keep, uint64_t{0xF000});
    HPT_EXPECT_EQ(F64::encode(ef, 0).value, uint64_t{0x002800004001FFC3ull});
  }
  // 32. 64K CONT_PMD: 32 x 512M = 16G (cont_shift 34); CONT_PTE: 32 x 64K = 2M.
  HPT_EXPECT_EQ(static_cast<unsigned>(F64::decode(0x0078000060000701ull, 1).cont_shift), 34u);
  HPT_EXPECT_EQ(F64::group_entry(0x0038000040000FC3ull, 0, 31), uint64_t{0x00380000401F0FC3ull});
  // 33. 16K/48 root (level 3, Arm level 0) has 2 entries; a table there is fine, a block is not.
  HPT_EXPECT_EQ(hugepte::Arm64_16K_48::index_bits(3), 1u);
  HPT_EXPECT(hugepte::Arm64_16K_48::is_table(0x40004003, 3));
  HPT_EXPECT(hugepte::Arm64_16K_48::decode(0x40000401, 3).reason == Reason::leaf_not_allowed);
  // 34. 16K level 2 (Arm level 1, 64G) cannot hold a block without LPA2.
  HPT_EXPECT(F16::decode(0x0000001000000401ull, 2).reason == Reason::leaf_not_allowed);
  // 35. Kernel pages, 64K, with each AttrIndx: 0x3 | idx << 2 | 0x300 | 0x400, high 0x0068.
  //     Tagged (1 -> 0x4) = 0x707, Normal-NC (2 -> 0x8) = 0x70B, Device-nGnRnE (3 -> 0xC) =
  //     0x70F, Device-nGnRE (4 -> 0x10) = 0x713; 5 -> 0x14 = 0x717 (the old Normal-WT index) is
  //     not programmed: unrepresentable.
  HPT_EXPECT(F64::decode(0x0068000040000707ull, 0).mem == MemType::tagged);
  HPT_EXPECT(F64::decode(0x006800004000070Bull, 0).mem == MemType::noncacheable);
  HPT_EXPECT(F64::decode(0x006800004000070Full, 0).mem == MemType::device);
  HPT_EXPECT(F64::decode(0x0068000040000713ull, 0).mem == MemType::device_nGnRE);
  HPT_EXPECT(F64::decode(0x0068000040000717ull, 0).kind == Kind::invalid);
  HPT_EXPECT(F64::decode(0x0068000040000717ull, 0).reason == Reason::unrepresentable);
  // 36. The MAIR the harness programs (Linux's MAIR_EL1_SET with MTE): bytes ff f0 44 00 04 from
  //     index 0 up.
  HPT_EXPECT_EQ(a::kMair, uint64_t{0x000000040044F0FFull});
}

// The Contiguous bit on a 4K level-1 (1G) block is architecturally a 16G hint that Linux does
// not use: it travels in keep, and changing it still needs break-before-make.
HPT_ARCH_CASE("arm64", format, ContiguousBitOnA1GBlockIsKeptRaw) {
  using F = hugepte::Arm64_4K_48;
  const uint64_t raw = 0x0058000040000701ull;  // #13 with CONT: 0x0048 | 0x0010
  const Entry e = F::decode(raw, 2);
  HPT_EXPECT(e.kind == Kind::leaf);
  HPT_EXPECT_EQ(static_cast<unsigned>(e.cont_shift), 0u);
  HPT_EXPECT_EQ(e.keep, a::kContiguous);
  HPT_EXPECT_EQ(F::encode(e, 2).value, raw);
  HPT_EXPECT(F::needs_bbm(raw, raw & ~a::kContiguous, 2));
}

}  // namespace hpt_arm64
