// format_riscv.cpp - the riscv64 entry formats (Sv39 / Sv48 / Sv57 with Svnapot, Svpbmt and
// Svrsw60t59b) checked against the privileged spec, Linux's riscv conventions and the
// mm/debug_vm_pgtable.c properties (docs/arch.md §4, §6.2).
//
// Shared case file: runs on the host and under qemu-user through GoogleTest, and inside the
// bare-metal guests. Freestanding: no heap, no strings, no printf.
#include <initializer_list>

#include "hpt_test.hpp"
#include "hugepte/arch/riscv.hpp"

namespace {  // internal linkage: other format files may use the same case names

using hugepte::align_down;
using hugepte::bit;
using hugepte::Entry;
using hugepte::Err;
using hugepte::field;
using hugepte::Kind;
using hugepte::mask;
using hugepte::MemType;
using hugepte::Prot;
using hugepte::Reason;
using hugepte::Result;
using hugepte::RiscvFormat;
using hugepte::Soft;
using hugepte::Sv39;
using hugepte::Sv48;
using hugepte::Sv57;
using hugepte::Swap;
namespace rv = hugepte::riscv;

// The three modes, plus variants that change which high bits mean something: Sv39 with
// Svrsw60t59b (soft-dirty and uffd-wp exist) and Sv48 without Svnapot and Svpbmt (bits 61-63
// are reserved).
using Sv39Rsw = RiscvFormat<3, true, true, true>;
using Sv48Base = RiscvFormat<4, false, false>;
using RiscvTestFormats = hpt::FormatList<Sv39, Sv48, Sv57, Sv39Rsw, Sv48Base>;

constexpr Prot kR{true, false, false, false};
constexpr Prot kRW{true, true, false, false};
constexpr Prot kX{false, false, true, false};
constexpr Prot kRX{true, false, true, false};
constexpr Prot kRWX{true, true, true, false};

// ---- entry comparison with a readable report --------------------------------------------------

bool same(const Entry& a, const Entry& b) {
  return a.kind == b.kind && a.addr == b.addr && a.shift == b.shift &&
         a.cont_shift == b.cont_shift && a.prot == b.prot && a.writable == b.writable &&
         a.mem == b.mem && a.global == b.global && a.accessed == b.accessed && a.dirty == b.dirty &&
         a.soft == b.soft && a.swp == b.swp && a.reason == b.reason && a.keep == b.keep;
}

void out_field(const char* name, uint64_t got, uint64_t want) {
  if (got == want) return;
  hpt::out("      ");
  hpt::out(name);
  hpt::out(": got ");
  hpt::out_u64(got, 16);
  hpt::out(", want ");
  hpt::out_u64(want, 16);
  hpt::out("\n");
}

uint64_t prot_bits(const Prot& p) {
  return uint64_t{p.read} | uint64_t{p.write} << 1 | uint64_t{p.exec} << 2 | uint64_t{p.user} << 3;
}

bool expect_same(hpt::Ctx& hpt_ctx, const Entry& got, const Entry& want, const char* file,
                 int line) {
  ++hpt_ctx.checks;
  if (same(got, want)) return true;
  hpt_ctx.fail_at(file, line, "entry differs from the expected one");
  hpt::out("      kind: got ");
  hpt::out(hugepte::kind_name(got.kind));
  hpt::out(", want ");
  hpt::out(hugepte::kind_name(want.kind));
  hpt::out("\n");
  out_field("addr", got.addr, want.addr);
  out_field("shift", got.shift, want.shift);
  out_field("cont_shift", got.cont_shift, want.cont_shift);
  out_field("prot (u x w r)", prot_bits(got.prot), prot_bits(want.prot));
  out_field("writable", got.writable, want.writable);
  out_field("mem", uint64_t(got.mem), uint64_t(want.mem));
  out_field("global", got.global, want.global);
  out_field("accessed", got.accessed, want.accessed);
  out_field("dirty", got.dirty, want.dirty);
  out_field("soft.special", got.soft.special, want.soft.special);
  out_field("soft.soft_dirty", got.soft.soft_dirty, want.soft.soft_dirty);
  out_field("soft.uffd_wp", got.soft.uffd_wp, want.soft.uffd_wp);
  out_field("swp.type", got.swp.type, want.swp.type);
  out_field("swp.offset", got.swp.offset, want.swp.offset);
  out_field("swp.exclusive", got.swp.exclusive, want.swp.exclusive);
  out_field("swp.soft_dirty", got.swp.soft_dirty, want.swp.soft_dirty);
  out_field("swp.uffd_wp", got.swp.uffd_wp, want.swp.uffd_wp);
  out_field("reason", uint64_t(got.reason), uint64_t(want.reason));
  out_field("keep", got.keep, want.keep);
  return false;
}

#define EXPECT_ENTRY(got, want) expect_same(hpt_ctx, (got), (want), __FILE__, __LINE__)

// Context for a failure inside a loop.
void note(const char* what, uint64_t v) {
  hpt::out("      at ");
  hpt::out(what);
  hpt::out(" = ");
  hpt::out_u64(v, 16);
  hpt::out("\n");
}

// ---- vocabulary builders ----------------------------------------------------------------------

template <class F>
Entry leaf(unsigned level, uint64_t addr, Prot prot) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = addr;
  e.shift = static_cast<uint8_t>(F::shift(level));
  e.prot = prot;
  e.writable = prot.write;
  return e;
}

template <class F>
Entry protnone(unsigned level, uint64_t addr, Prot prot) {
  Entry e = leaf<F>(level, addr, prot);
  e.kind = Kind::protnone;
  return e;
}

template <class F>
Entry napot(uint64_t base, Prot prot) {
  Entry e = leaf<F>(0, base, prot);
  e.cont_shift = rv::kNapotShift;
  return e;
}

template <class F>
Entry table(unsigned level, uint64_t addr) {
  Entry e;
  e.kind = Kind::table;
  e.addr = addr;
  e.shift = static_cast<uint8_t>(F::shift(level));
  return e;
}

template <class F>
Entry swp(unsigned level, uint32_t type, uint64_t offset) {
  Entry e;
  e.kind = type == hugepte::kSwpPteMarker ? Kind::marker : Kind::swap;
  e.shift = static_cast<uint8_t>(F::shift(level));
  e.swp.type = type;
  e.swp.offset = offset;
  return e;
}

Entry invalid(unsigned shift, Reason r) {
  Entry e;
  e.kind = Kind::invalid;
  e.shift = static_cast<uint8_t>(shift);
  e.reason = r;
  return e;
}

// A physical address aligned for `level` and well inside 56 bits at every level.
template <class F>
uint64_t test_pa(unsigned level) {
  return uint64_t{0x15} << F::shift(level);
}

// The highest address of that alignment that still fits the 56-bit PA.
template <class F>
uint64_t top_pa(unsigned align_shift) {
  return align_down(mask(0, F::pa_bits - 1), align_shift);
}

constexpr uint64_t kNapotBase = 0x8021'0000;  // 64 KiB aligned

// The walker's view of R/W/X: a reserved combination is any with W but not R.
constexpr bool rwx_ok(const Prot& p) {
  return (p.read || p.write || p.exec) && !(p.write && !p.read);
}

// Linux's vm_get_page_prot() on riscv for the 16 combinations of VM_READ (1), VM_WRITE (2),
// VM_EXEC (4) and VM_SHARED (8), as an entry: _PAGE_BASE = V|A|U plus permissions. Private
// writable mappings are copy-on-write, mapped without W (PAGE_COPY = PAGE_READ, PAGE_COPY_EXEC
// = PAGE_EXEC); PAGE_EXEC has no R. VM_NONE is PAGE_NONE = PROT_NONE|R: no U, no A.
template <class F>
Entry pfn_pte(unsigned level, uint64_t addr, unsigned vm) {
  static constexpr Prot kPrivate[8] = {kR, kR, kR, kR, kX, kRX, kX, kRX};
  static constexpr Prot kShared[8] = {kR, kR, kRW, kRW, kX, kRX, kRWX, kRWX};
  const unsigned xwr = vm & 7;
  Prot p = (vm & 8) ? kShared[xwr] : kPrivate[xwr];
  if (xwr == 0) return protnone<F>(level, addr, p);
  p.user = true;
  Entry e = leaf<F>(level, addr, p);
  e.accessed = true;
  return e;
}

// One entry at one level that goes through the raw encoding after every change, so that each
// Linux-style helper below is "decode -> change the vocabulary -> encode -> decode".
template <class F>
struct Pte {
  unsigned level = 0;
  Entry e{};
  bool ok = true;  // every encode on the way succeeded

  static Pte of(unsigned level, const Entry& e) {
    Pte p;
    p.level = level;
    p.e = e;
    return p.commit();
  }
  Pte commit() const {
    Pte p = *this;
    if (!p.ok) return p;
    const Result<uint64_t> r = F::encode(p.e, p.level);
    if (!r) {
      p.ok = false;
      return p;
    }
    p.e = F::decode(r.value, p.level);
    return p;
  }
  uint64_t raw() const { return F::encode(e, level).value; }

  template <class Fn>
  Pte with(Fn fn) const {
    Pte p = *this;
    fn(p.e);
    return p.commit();
  }
  Pte mkyoung() const {
    return with([](Entry& x) { x.accessed = true; });
  }
  Pte mkold() const {
    return with([](Entry& x) { x.accessed = false; });
  }
  Pte mkdirty() const {
    return with([](Entry& x) { x.dirty = true; });
  }
  Pte mkclean() const {
    return with([](Entry& x) { x.dirty = false; });
  }
  // pte_mkwrite_novma: sets W only (it must not imply dirty).
  Pte mkwrite() const {
    return with([](Entry& x) { x.prot.write = x.writable = true; });
  }
  Pte wrprotect() const {
    return with([](Entry& x) { x.prot.write = x.writable = false; });
  }
  Pte mkspecial() const {
    return with([](Entry& x) { x.soft.special = true; });
  }
  Pte mksoft_dirty() const {
    return with([](Entry& x) { x.soft.soft_dirty = true; });
  }
  Pte clear_soft_dirty() const {
    return with([](Entry& x) { x.soft.soft_dirty = false; });
  }
  // pte_mkuffd_wp write-protects as well.
  Pte mkuffd_wp() const {
    return with([](Entry& x) {
      x.soft.uffd_wp = true;
      x.prot.write = x.writable = false;
    });
  }
  Pte clear_uffd_wp() const {
    return with([](Entry& x) { x.soft.uffd_wp = false; });
  }
  Pte swp_mkexclusive() const {
    return with([](Entry& x) { x.swp.exclusive = true; });
  }
  Pte swp_clear_exclusive() const {
    return with([](Entry& x) { x.swp.exclusive = false; });
  }
  Pte swp_mksoft_dirty() const {
    return with([](Entry& x) { x.swp.soft_dirty = true; });
  }
  Pte swp_clear_soft_dirty() const {
    return with([](Entry& x) { x.swp.soft_dirty = false; });
  }
  Pte swp_mkuffd_wp() const {
    return with([](Entry& x) { x.swp.uffd_wp = true; });
  }
  Pte swp_clear_uffd_wp() const {
    return with([](Entry& x) { x.swp.uffd_wp = false; });
  }

  bool young() const { return e.accessed; }
  bool dirty() const { return e.dirty; }
  bool write() const { return e.writable; }
  bool special() const { return e.soft.special; }
  bool soft_dirty() const { return e.soft.soft_dirty; }
  bool uffd_wp() const { return e.soft.uffd_wp; }
  bool present() const { return e.kind == Kind::leaf || e.kind == Kind::protnone; }
};

// ---- geometry ---------------------------------------------------------------------------------

// Property 129: page sizes per level. Sv39: PGD 30, PMD 21, PTE 12; Sv48 adds PUD 30 under a
// PGD of 39; Sv57 adds P4D 39 under a PGD of 48. 512 entries everywhere, 56-bit PA.
HPT_FORMAT_CASE(format, LevelShiftsAreTwelvePlusNinePerLevel, RiscvTestFormats) {
  using F = Fmt;
  const unsigned want_levels = F::va_bits == 39 ? 3 : F::va_bits == 48 ? 4 : 5;
  HPT_EXPECT_EQ(F::levels, want_levels);
  HPT_EXPECT_EQ(F::page_shift, 12u);
  HPT_EXPECT_EQ(F::pa_bits, 56u);
  constexpr unsigned kShifts[5] = {12, 21, 30, 39, 48};
  for (unsigned l = 0; l < F::levels; ++l) {
    HPT_EXPECT_EQ(F::shift(l), kShifts[l]);
    HPT_EXPECT_EQ(F::index_bits(l), 9u);
    HPT_EXPECT(F::leaf_ok(l));  // any level of PTE may be a leaf
  }
  HPT_EXPECT_EQ(F::shift(F::levels - 1) + 9, F::va_bits);
  HPT_EXPECT_EQ(F::cont_shift(0), F::svnapot ? 16u : 0u);
  for (unsigned l = 1; l < F::levels; ++l) HPT_EXPECT_EQ(F::cont_shift(l), 0u);
  HPT_EXPECT(F::ad_caps.hw_accessed);
  HPT_EXPECT(F::ad_caps.hw_dirty);
  HPT_EXPECT(F::ad_caps.model == hugepte::DirtyModel::hw_d);
  HPT_EXPECT_EQ(hugepte::level_name(F::levels - 1, F::levels)[1], 'g');  // the root is "pgd"
}

// Property 116: riscv64 hugetlb sizes are 64K (Svnapot), 2M and 1G; the format offers those
// and, as the hardware allows, a leaf at every level up to the root.
HPT_FORMAT_CASE(format, LeafSizesInclude64KWithSvnapotAnd2MAnd1G, RiscvTestFormats) {
  using F = Fmt;
  const auto s = hugepte::leaf_sizes<F>();
  HPT_ASSERT_EQ(s.count, F::levels + (F::svnapot ? 1u : 0u));
  unsigned k = 0;
  HPT_EXPECT_EQ(s.shift[k], 12u);
  ++k;
  if (F::svnapot) {
    HPT_EXPECT_EQ(s.shift[k], 16u);
    HPT_EXPECT_EQ(s.level[k], 0u);
    HPT_EXPECT(s.cont[k]);
    ++k;
  }
  HPT_EXPECT_EQ(s.shift[k], 21u);
  HPT_EXPECT_EQ(s.shift[k + 1], 30u);
  HPT_EXPECT_EQ(s.shift[s.count - 1], F::shift(F::levels - 1));
}

// Bits 63 .. va_bits-1 must equal bit va_bits-1.
HPT_FORMAT_CASE(format, CanonicalAddressesSignExtendTheTopVaBit, RiscvTestFormats) {
  using F = Fmt;
  const unsigned n = F::va_bits;
  HPT_EXPECT(F::canonical(0));
  HPT_EXPECT(F::canonical(~uint64_t{0}));
  HPT_EXPECT(F::canonical(bit(n - 1) - 1));                // top of the lower half
  HPT_EXPECT(!F::canonical(bit(n - 1)));                   // bit n-1 set, bits above clear
  HPT_EXPECT(F::canonical(~(bit(n - 1) - 1)));             // bottom of the upper half
  HPT_EXPECT(!F::canonical(~(bit(n - 1) - 1) ^ bit(63)));  // bit 63 disagrees
  HPT_EXPECT(!F::canonical(bit(n)));                       // a bit above va_bits in the lower half
  HPT_EXPECT(!F::canonical(bit(63)));
}

// ---- round trips ------------------------------------------------------------------------------

// Property 118 and the clear tests (60, 74, 79, 80): zero is none at every level, and none
// encodes to zero.
HPT_FORMAT_CASE(format, ZeroIsNoneAtEveryLevelAndNoneEncodesToZero, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    EXPECT_ENTRY(F::decode(0, l), Entry{});
    const Result<uint64_t> r = F::encode(Entry{}, l);
    HPT_EXPECT(r.ok());
    HPT_EXPECT_EQ(r.value, uint64_t{0});
    HPT_EXPECT(!F::is_leaf(0, l));
    HPT_EXPECT(!F::is_table(0, l));
    HPT_EXPECT_EQ(F::out_addr(0, l), uint64_t{0});
  }
}

// Every combination of R W X U G A D, RSW[0] (special), RSW[1] (keep) and - with
// Svrsw60t59b - soft-dirty and uffd-wp, for each memory type and at every level (and as a
// NAPOT group at level 0): encode succeeds exactly when the manual allows the encoding, the
// bits land where the manual puts them, and decode gives the entry back.
HPT_FORMAT_CASE(format, LeafRoundTripsEveryFlagSubsetAtEveryLevel, RiscvTestFormats) {
  using F = Fmt;
  constexpr MemType kMems[] = {MemType::normal, MemType::noncacheable, MemType::device};
  constexpr uint64_t kPbmt[] = {0, 1, 2};
  const unsigned flag_bits = F::svrsw60t59b ? 11 : 9;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned cont = 0; cont < (F::cont_shift(level) ? 2u : 1u); ++cont) {
      const unsigned align = cont ? 16 : F::shift(level);
      for (unsigned mi = 0; mi < 3; ++mi) {
        for (unsigned m = 0; m < (1u << flag_bits); ++m) {
          // Other memory types with the permission bits only: the rest is covered by normal.
          if (mi != 0 && (m & ~0xFu)) continue;
          const uint64_t addr =
              (m & 1) ? top_pa<F>(align) : (cont ? kNapotBase : test_pa<F>(level));
          Entry e =
              leaf<F>(level, addr, Prot{(m & 1) != 0, (m & 2) != 0, (m & 4) != 0, (m & 8) != 0});
          e.cont_shift = static_cast<uint8_t>(cont ? 16 : 0);
          e.mem = kMems[mi];
          e.global = m & 16;
          e.accessed = m & 32;
          e.dirty = m & 64;
          e.soft.special = m & 128;
          e.keep = (m & 256) ? rv::kRsw1 : 0;
          e.soft.soft_dirty = m & 512;
          e.soft.uffd_wp = m & 1024;
          const bool expressible = rwx_ok(e.prot) && (mi == 0 || F::svpbmt);
          const Result<uint64_t> r = F::encode(e, level);
          if (!HPT_EXPECT_EQ(r.ok(), expressible)) {
            note("level", level), note("flags", m), note("mem", mi);
            return;
          }
          if (!r) {
            HPT_EXPECT(r.err == Err::einval);
            continue;
          }
          // The same bits, placed by hand from the PTE figure.
          const uint64_t ppn = (addr >> 12) | (cont ? rv::kNapotPattern : 0);
          const uint64_t want = rv::kV | uint64_t{m & 0xF} << 1 | uint64_t{(m >> 4) & 0x1F} << 5 |
                           uint64_t{(m >> 9) & 3} << 59 | ppn << 10 | kPbmt[mi] << 61 |
                           (cont ? bit(63) : 0);
          if (!HPT_EXPECT_EQ(r.value, want)) {
            note("level", level), note("flags", m), note("mem", mi);
            return;
          }
          if (!EXPECT_ENTRY(F::decode(r.value, level), e)) {
            note("level", level), note("flags", m), note("mem", mi);
            return;
          }
          if (!HPT_EXPECT(F::is_leaf(r.value, level) && !F::is_table(r.value, level) &&
                          F::out_addr(r.value, level) == addr)) {
            note("raw", r.value);
            return;
          }
        }
      }
    }
  }
}

// PROT_NONE entries keep every leaf field (the saved permissions included), are encoded as V=0
// plus G, and may not be global (G is the PROT_NONE bit).
HPT_FORMAT_CASE(format, ProtNoneRoundTripsEveryFlagSubsetAtEveryLevel, RiscvTestFormats) {
  using F = Fmt;
  const unsigned flag_bits = F::svrsw60t59b ? 11 : 9;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned cont = 0; cont < (F::cont_shift(level) ? 2u : 1u); ++cont) {
      const uint64_t addr = cont ? kNapotBase : test_pa<F>(level);
      for (unsigned m = 0; m < (1u << flag_bits); ++m) {
        Entry e =
            protnone<F>(level, addr, Prot{(m & 1) != 0, (m & 2) != 0, (m & 4) != 0, (m & 8) != 0});
        e.cont_shift = static_cast<uint8_t>(cont ? 16 : 0);
        e.global = m & 16;
        e.accessed = m & 32;
        e.dirty = m & 64;
        e.soft.special = m & 128;
        e.keep = (m & 256) ? rv::kRsw1 : 0;
        e.soft.soft_dirty = m & 512;
        e.soft.uffd_wp = m & 1024;
        const bool expressible = !e.global && !(e.prot.write && !e.prot.read);
        const Result<uint64_t> r = F::encode(e, level);
        if (!HPT_EXPECT_EQ(r.ok(), expressible)) {
          note("level", level), note("flags", m);
          return;
        }
        if (!r) continue;
        if (!HPT_EXPECT_EQ(r.value & (rv::kV | rv::kG), rv::kG)) return;
        if (!EXPECT_ENTRY(F::decode(r.value, level), e)) {
          note("level", level), note("flags", m);
          return;
        }
        if (!HPT_EXPECT(!F::is_leaf(r.value, level) && !F::is_table(r.value, level) &&
                        F::out_addr(r.value, level) == addr))
          return;
      }
    }
  }
}

// Pointers to the next level, with and without G and the software-kept bits, at the lowest
// and highest table addresses; make_table agrees with encode and decode (the populate tests
// 62, 76, 81, 82: a table pointer is never "bad").
HPT_FORMAT_CASE(format, TableEntriesRoundTripAtEveryUpperLevel, RiscvTestFormats) {
  using F = Fmt;
  const uint64_t keeps[] = {0, rv::kRsw0, rv::kRsw1, rv::kRsw0 | rv::kRsw1,
                       F::svrsw60t59b ? rv::kSoftDirty | rv::kUffdWp : 0};
  const uint64_t addrs[] = {0x1000, 0x8000'2000, top_pa<F>(12)};
  for (unsigned level = 1; level < F::levels; ++level) {
    for (uint64_t addr : addrs) {
      const uint64_t made = F::make_table(addr, level);
      HPT_EXPECT_EQ(made, rv::kV | (addr >> 12) << 10);
      EXPECT_ENTRY(F::decode(made, level), table<F>(level, addr));
      HPT_EXPECT(F::is_table(made, level));
      HPT_EXPECT(!F::is_leaf(made, level));
      HPT_EXPECT_EQ(F::out_addr(made, level), addr);
      for (uint64_t keep : keeps) {
        for (int g = 0; g < 2; ++g) {
          Entry e = table<F>(level, addr);
          e.global = g;
          e.keep = keep;
          const Result<uint64_t> r = F::encode(e, level);
          HPT_ASSERT(r.ok());
          HPT_EXPECT_EQ(r.value, made | (g ? rv::kG : 0) | keep);
          EXPECT_ENTRY(F::decode(r.value, level), e);
          HPT_EXPECT(F::is_table(r.value, level));
        }
      }
    }
  }
}

// Swap entries at the edges of their fields (type 0..31 minus the marker type; offsets 0, 1,
// one below a power of two, 2^51 and 2^52-1) with every swap flag the format has, at the
// leaf level, the PMD level and the root.
HPT_FORMAT_CASE(format, SwapEntriesRoundTripAtFieldEdges, RiscvTestFormats) {
  using F = Fmt;
  const uint64_t offsets[] = {0, 1, 0xFFFF, bit(51), bit(52) - 1, 0x80200};
  const unsigned levels[] = {0, 1, F::levels - 1};
  const unsigned flag_sets = F::svrsw60t59b ? 8 : 2;
  for (unsigned level : levels) {
    for (uint32_t type = 0; type < 32; ++type) {
      for (uint64_t offset : offsets) {
        for (unsigned f = 0; f < flag_sets; ++f) {
          Entry e = swp<F>(level, type, offset);
          e.swp.exclusive = f & 1;
          e.swp.soft_dirty = f & 2;
          e.swp.uffd_wp = f & 4;
          const Result<uint64_t> r = F::encode(e, level);
          if (type == 0 && offset == 0 && f == 0) {
            HPT_EXPECT(!r.ok());  // swp_entry(0, 0) would be the none value
            continue;
          }
          if (!HPT_EXPECT(r.ok())) {
            note("type", type), note("offset", offset), note("flags", f);
            return;
          }
          const uint64_t want = uint64_t{type} << 7 | offset << 12 | uint64_t{f & 1} << 6 |
                           uint64_t{(f >> 1) & 1} << 3 | uint64_t{(f >> 2) & 1} << 4;
          if (!HPT_EXPECT_EQ(r.value, want)) return;
          if (!EXPECT_ENTRY(F::decode(r.value, level), e)) {
            note("type", type), note("offset", offset), note("flags", f);
            return;
          }
          if (!HPT_EXPECT(!F::is_leaf(r.value, level) && !F::is_table(r.value, level) &&
                          F::out_addr(r.value, level) == 0))
            return;
        }
      }
    }
  }
}

// PTE markers are swap entries of type kSwpPteMarker with flags in the offset; every subset of
// uffd-wp, poisoned and guard survives, and the marker never looks like a plain swap entry.
HPT_FORMAT_CASE(format, MarkersRoundTripWithEveryFlagSubset, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (uint64_t flags = 1; flags < 8; ++flags) {
      const Entry e = swp<F>(level, hugepte::kSwpPteMarker, flags);
      HPT_EXPECT(e.kind == Kind::marker);
      const Result<uint64_t> r = F::encode(e, level);
      HPT_ASSERT(r.ok());
      HPT_EXPECT_EQ(r.value, uint64_t{31} << 7 | flags << 12);
      EXPECT_ENTRY(F::decode(r.value, level), e);
    }
    // The marker type is refused as Kind::swap, and any other type as Kind::marker.
    Entry wrong = swp<F>(level, hugepte::kSwpPteMarker, hugepte::kMarkerGuard);
    wrong.kind = Kind::swap;
    HPT_EXPECT(!F::encode(wrong, level).ok());
    wrong = swp<F>(level, 3, hugepte::kMarkerGuard);
    wrong.kind = Kind::marker;
    HPT_EXPECT(!F::encode(wrong, level).ok());
  }
}

// Every raw value built from all 256 combinations of the low byte (V R W X U G A D) with a
// set of high parts that hit each rule (PPN alignment, RSW, reserved bits, Svrsw bits, PBMT
// values, NAPOT patterns, swap-offset bits): decode never fails, a valid kind re-encodes to the
// identical raw value (the one documented exception: the pmd_mkinvalid spelling of PROT_NONE
// re-encodes with G set), and the hot-path predicates agree with decode.
HPT_FORMAT_CASE(format, EveryValidRawValueReencodesToItselfAndHotPathAgrees, RiscvTestFormats) {
  using F = Fmt;
  const unsigned levels[] = {0, 1, F::levels - 1};
  for (unsigned level : levels) {
    const uint64_t ppn = (test_pa<F>(level) >> 12) << 10;
    const uint64_t highs[] = {
        0,
        ppn,
        uint64_t{1} << 10,  // PPN[0] = 1: misaligned above level 0
        ppn | rv::kRsw0 | rv::kRsw1,
        ppn | 0xF00,    // RSW and PPN[1:0]: swap type bits 8-11
        ppn | bit(54),  // reserved
        ppn | bit(59),
        ppn | bit(60),
        ppn | uint64_t{1} << 61,              // NC
        ppn | uint64_t{2} << 61,              // IO
        ppn | uint64_t{3} << 61,              // reserved PBMT
        bit(63) | (uint64_t{0x80218} << 10),  // NAPOT 64 KiB pattern
        bit(63) | (uint64_t{0x80214} << 10),  // N with a reserved pattern
        mask(12, 63),                    // every swap-offset bit
    };
    for (uint64_t high : highs) {
      for (uint64_t low = 0; low < 256; ++low) {
        const uint64_t raw = high | low;
        const Entry d = F::decode(raw, level);
        // The hot path agrees with decode.
        const bool agree = F::is_leaf(raw, level) == (d.kind == Kind::leaf) &&
                           F::is_table(raw, level) == (d.kind == Kind::table);
        if (!HPT_EXPECT(agree)) {
          note("raw", raw), note("level", level);
          return;
        }
        if (d.kind == Kind::table || d.kind == Kind::leaf || d.kind == Kind::protnone) {
          if (!HPT_EXPECT_EQ(F::out_addr(raw, level), d.addr)) return;
        }
        // Kinds follow the bits the manual and Linux name.
        bool kind_ok = true;
        switch (d.kind) {
          case Kind::none:
            kind_ok = raw == 0;
            break;
          case Kind::table:
            kind_ok = (raw & rv::kV) && !(raw & rv::kRwx) && level > 0;
            break;
          case Kind::leaf:
            kind_ok = (raw & rv::kV) && (raw & rv::kRwx);
            break;
          case Kind::protnone:
            kind_ok = !(raw & rv::kV) && (raw & (rv::kG | rv::kR | rv::kW));
            break;
          case Kind::swap:
          case Kind::marker:
            kind_ok = !(raw & (rv::kV | rv::kR | rv::kW | rv::kG)) && raw != 0;
            break;
          case Kind::locked:
            kind_ok = false;  // a stage-1 format has no locked value
            break;
          case Kind::invalid:
            kind_ok = d.reason != Reason::none;
            break;
        }
        if (!HPT_EXPECT(kind_ok)) {
          note("raw", raw), note("level", level), note("kind", uint64_t(d.kind));
          return;
        }
        if (d.kind == Kind::invalid || d.kind == Kind::none) {
          if (d.kind == Kind::invalid && !HPT_EXPECT(!F::encode(d, level).ok())) return;
          continue;
        }
        HPT_EXPECT_EQ(uint64_t(d.reason), uint64_t(Reason::none));
        const Result<uint64_t> r = F::encode(d, level);
        const bool second_spelling = d.kind == Kind::protnone && !(raw & rv::kG);
        const uint64_t want = second_spelling ? raw | rv::kG : raw;
        if (!HPT_EXPECT(r.ok() && r.value == want)) {
          note("raw", raw), note("level", level), note("re-encoded", r.value);
          return;
        }
        if (second_spelling && !EXPECT_ENTRY(F::decode(r.value, level), d)) return;
      }
    }
  }
}

// ---- debug_vm_pgtable basic properties (§4.2-4.4), at every level that holds leaves ---------

// Properties 1, 3-15 (pte), 35-45 (pmd), 63-64 (pud) for the 16 protections of
// vm_get_page_prot(). riscv has one W bit: mkwrite of an exec-only entry would be W without
// R, which is reserved, so encode refuses it.
HPT_FORMAT_CASE(format, BasicHelpersHoldForEveryVmProtectionAtEveryLevel, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned vm = 0; vm < 16; ++vm) {
      const Pte<F> pte = Pte<F>::of(level, pfn_pte<F>(level, test_pa<F>(level), vm));
      HPT_ASSERT(pte.ok);
      HPT_EXPECT(pte.present());
      const Pte<F> p1 = pte.wrprotect();
      HPT_EXPECT(p1.ok && !p1.dirty());  // 1: the starting protection is clean
      const Pte<F> p3 = pte.mkold().mkyoung();
      HPT_EXPECT(p3.ok && p3.young());  // 3
      const Pte<F> p4 = pte.mkclean().mkdirty();
      HPT_EXPECT(p4.ok && p4.dirty());  // 4
      const Pte<F> p6 = pte.mkyoung().mkold();
      HPT_EXPECT(p6.ok && !p6.young());  // 6
      const Pte<F> p7 = pte.mkdirty().mkclean();
      HPT_EXPECT(p7.ok && !p7.dirty());  // 7
      const Pte<F> p9 = pte.mkclean().wrprotect();
      HPT_EXPECT(p9.ok && !p9.dirty());  // 9
      const Pte<F> p10 = pte.mkdirty().wrprotect();
      HPT_EXPECT(p10.ok && p10.dirty());  // 10: wrprotect keeps dirty
      if (pte.e.prot.read) {
        const Pte<F> p5 = pte.wrprotect().mkwrite();
        HPT_EXPECT(p5.ok && p5.write());  // 5, 14
        const Pte<F> p8 = pte.mkwrite().wrprotect();
        HPT_EXPECT(p8.ok && !p8.write());  // 8, 15
        const Pte<F> p11 = pte.mkdirty().mkwrite();
        HPT_EXPECT(p11.ok && p11.dirty());  // 11
        const Pte<F> p12 = pte.mkclean().mkwrite();
        HPT_EXPECT(p12.ok && !p12.dirty());  // 12: mkwrite does not imply dirty
        const Pte<F> p13 = pte.mkwrite().mkdirty();
        HPT_EXPECT(p13.ok && p13.write());  // 13
        // Only A (mkyoung), D (mkdirty) and W (mkwrite) moved.
        HPT_EXPECT_EQ(pte.mkwrite().mkdirty().mkyoung().raw() ^ pte.raw(),
                      (rv::kW | rv::kD | rv::kA) & ~pte.raw());
      } else {
        HPT_EXPECT(!pte.mkwrite().ok);  // W without R is reserved
        HPT_EXPECT(pte.wrprotect().ok);
      }
    }
  }
}

// Property 22: pte_special(pte_mkspecial(pte)), and special is RSW[0] (bit 8) alone.
HPT_FORMAT_CASE(format, MkspecialSetsRsw0AndNothingElse, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned vm = 0; vm < 16; ++vm) {
      const Pte<F> pte = Pte<F>::of(level, pfn_pte<F>(level, test_pa<F>(level), vm));
      const Pte<F> sp = pte.mkspecial();
      HPT_EXPECT(sp.ok && sp.special());
      HPT_EXPECT_EQ(sp.raw() ^ pte.raw(), bit(8));
    }
  }
}

// Properties 23, 55 and 119: PAGE_NONE entries are pte_present and pte_protnone, yet the
// hardware valid bit is clear: V=0 with PROT_NONE (bit 5). PAGE_NONE keeps R so a huge
// PROT_NONE entry is still a leaf to pmd_leaf.
HPT_FORMAT_CASE(format, ProtNoneIsPresentToSoftwareButInvalidToHardware, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned vm : {0u, 8u}) {  // VM_NONE, VM_SHARED: both PAGE_NONE
      const Pte<F> pte = Pte<F>::of(level, pfn_pte<F>(level, test_pa<F>(level), vm));
      HPT_ASSERT(pte.ok);
      const uint64_t raw = pte.raw();
      HPT_EXPECT(pte.present());
      HPT_EXPECT(pte.e.kind == Kind::protnone);
      HPT_EXPECT_EQ(raw & rv::kV, uint64_t{0});
      HPT_EXPECT_EQ(raw & rv::kG, rv::kG);
      HPT_EXPECT_EQ(raw & rv::kRwx, rv::kR);  // PAGE_NONE = PROT_NONE | R
      HPT_EXPECT_EQ(raw, rv::kG | rv::kR | (test_pa<F>(level) >> 12) << 10);
      HPT_EXPECT(!F::is_leaf(raw, level));
      HPT_EXPECT(!F::is_table(raw, level));
      HPT_EXPECT_EQ(F::out_addr(raw, level), test_pa<F>(level));
      // Not none, not swap: the offset/type decoding never applies to it.
      HPT_EXPECT(raw != 0);
    }
  }
}

// Property 92 (savedwrite, removed from Linux but kept as a format property): PROT_NONE keeps
// the saved permissions, so leaf -> protnone -> leaf gives the identical raw value back.
HPT_FORMAT_CASE(format, ProtNoneKeepsTheSavedWriteBit, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    Entry e = leaf<F>(level, test_pa<F>(level), kRW);
    e.prot.user = true;
    e.accessed = e.dirty = true;
    const Pte<F> pte = Pte<F>::of(level, e);
    HPT_ASSERT(pte.ok);
    const Pte<F> numa = pte.with([](Entry& x) { x.kind = Kind::protnone; });
    HPT_ASSERT(numa.ok);
    HPT_EXPECT(numa.write() && numa.e.prot.write);
    HPT_EXPECT_EQ(numa.raw() & rv::kV, uint64_t{0});
    HPT_EXPECT(!F::is_leaf(numa.raw(), level));
    const Pte<F> back = numa.with([](Entry& x) { x.kind = Kind::leaf; });
    HPT_EXPECT(back.ok && back.write());
    HPT_EXPECT_EQ(back.raw(), pte.raw());
    // And a PROT_NONE entry that stored no write permission stays read-only.
    const Pte<F> ro = numa.wrprotect();
    HPT_EXPECT(ro.ok && !ro.write());
  }
}

// Properties 24, 25, 56: soft-dirty is bit 59 and exists only with Svrsw60t59b; without the
// extension the bit is reserved (a leaf using it faults) and encode refuses it.
HPT_FORMAT_CASE(format, SoftDirtyIsBit59OnlyWithSvrsw60t59b, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    const Pte<F> pte = Pte<F>::of(level, pfn_pte<F>(level, test_pa<F>(level), 3));
    HPT_ASSERT(pte.ok);
    const Pte<F> sd = pte.mksoft_dirty();
    if (F::svrsw60t59b) {
      HPT_EXPECT(sd.ok && sd.soft_dirty());  // 24
      HPT_EXPECT_EQ(sd.raw() ^ pte.raw(), bit(59));
      const Pte<F> clean = sd.clear_soft_dirty();
      HPT_EXPECT(clean.ok && !clean.soft_dirty());                     // 25
      HPT_EXPECT(!sd.mkclean().e.dirty && sd.mkclean().soft_dirty());  // separate from D
    } else {
      HPT_EXPECT(!sd.ok);
      const Entry d = F::decode(pte.raw() | bit(59), level);
      HPT_EXPECT(d.kind == Kind::invalid);
      HPT_EXPECT(d.reason == Reason::reserved_bits);
    }
  }
}

// Property 101: pte_mkuffd_wp gives uffd_wp and !write; clear_uffd_wp clears it. uffd-wp is
// bit 60, again only with Svrsw60t59b.
HPT_FORMAT_CASE(format, UffdWpIsBit60AndWriteProtects, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    const Pte<F> pte = Pte<F>::of(level, pfn_pte<F>(level, test_pa<F>(level), 11));
    HPT_ASSERT(pte.ok && pte.write());
    const Pte<F> wp = pte.mkuffd_wp();
    if (F::svrsw60t59b) {
      HPT_EXPECT(wp.ok && wp.uffd_wp() && !wp.write());
      HPT_EXPECT_EQ(wp.raw() ^ pte.raw(), bit(60) | bit(2));
      const Pte<F> clear = wp.clear_uffd_wp();
      HPT_EXPECT(clear.ok && !clear.uffd_wp());
    } else {
      HPT_EXPECT(!wp.ok);
      const Entry d = F::decode(pte.raw() | bit(60), level);
      HPT_EXPECT(d.kind == Kind::invalid && d.reason == Reason::reserved_bits);
    }
  }
}

// Properties 26-30 and 58 on swp_entry(MAX_SWAPFILES - 1, maximum offset), at the PTE and PMD
// levels: exclusive and soft-dirty are separate bits, neither changes type or offset, and the
// arch round trip is bit-exact. The maximum offset is 2^52 - 1 (offset ~0 does not fit).
HPT_FORMAT_CASE(format, SwapFlagsChangeNeitherTypeNorOffset, RiscvTestFormats) {
  using F = Fmt;
  const uint64_t max_offset = bit(52) - 1;
  for (unsigned level : {0u, 1u}) {
    HPT_EXPECT(!F::encode(swp<F>(level, hugepte::kMaxSwapFiles - 1, ~uint64_t{0}), level).ok());
    HPT_EXPECT(!F::encode(swp<F>(level, hugepte::kMaxSwapFiles - 1, bit(52)), level).ok());
    const Pte<F> pte = Pte<F>::of(level, swp<F>(level, hugepte::kMaxSwapFiles - 1, max_offset));
    HPT_ASSERT(pte.ok);
    const Swap want = pte.e.swp;
    HPT_EXPECT(pte.e.kind == Kind::swap && !pte.present() && pte.raw() != 0);  // 120
    HPT_EXPECT(!pte.e.swp.exclusive);                                          // 27
    const Pte<F> ex = pte.swp_mkexclusive();                                   // 28
    HPT_EXPECT(ex.ok && ex.e.kind == Kind::swap && ex.e.swp.exclusive && !ex.e.swp.soft_dirty);
    HPT_EXPECT(ex.e.swp.type == want.type && ex.e.swp.offset == want.offset);
    HPT_EXPECT_EQ(ex.raw() ^ pte.raw(), bit(6));
    const Pte<F> un = ex.swp_clear_exclusive();  // 29
    HPT_EXPECT(un.ok && un.e.kind == Kind::swap && !un.e.swp.exclusive);
    HPT_EXPECT(un.e.swp == want);
    const Pte<F> sd = pte.swp_mksoft_dirty();  // 26
    const Pte<F> uw = pte.swp_mkuffd_wp();
    if (F::svrsw60t59b) {
      HPT_EXPECT(sd.ok && sd.e.swp.soft_dirty && !sd.e.swp.exclusive);
      HPT_EXPECT_EQ(sd.raw() ^ pte.raw(), bit(3));
      HPT_EXPECT(sd.swp_clear_soft_dirty().ok && !sd.swp_clear_soft_dirty().e.swp.soft_dirty);
      HPT_EXPECT(uw.ok && uw.e.swp.uffd_wp);
      HPT_EXPECT_EQ(uw.raw() ^ pte.raw(), bit(4));
      HPT_EXPECT(!uw.swp_clear_uffd_wp().e.swp.uffd_wp);
    } else {
      HPT_EXPECT(!sd.ok);
      HPT_EXPECT(!uw.ok);
    }
    // 30 / 58: __swp_entry_to_pte(__pte_to_swp_entry(pte)) is bit-for-bit the same.
    const uint64_t raw = pte.raw();
    const Result<uint64_t> again = F::encode(F::decode(raw, level), level);
    HPT_EXPECT(again.ok() && again.value == raw);
  }
}

// Properties 31-33: migration entries keep their type (read / read-exclusive / write) and the
// PFN in the offset; hwpoison likewise; all are swap kinds, not markers.
HPT_FORMAT_CASE(format, MigrationEntriesKeepTheirTypeAndPfn, RiscvTestFormats) {
  using F = Fmt;
  const uint64_t pfn = test_pa<F>(1) >> 12;
  const uint32_t types[] = {
      hugepte::kSwpMigrationWrite, hugepte::kSwpMigrationRead, hugepte::kSwpMigrationReadExclusive,
      hugepte::kSwpHwpoison,       hugepte::kSwpDeviceWrite,   hugepte::kSwpDeviceRead,
      hugepte::kSwpDeviceExclusive};
  for (unsigned level = 0; level < F::levels; ++level) {
    for (uint32_t type : types) {
      const Pte<F> m = Pte<F>::of(level, swp<F>(level, type, pfn));
      HPT_ASSERT(m.ok);
      HPT_EXPECT(m.e.kind == Kind::swap);
      HPT_EXPECT_EQ(m.e.swp.type, type);
      HPT_EXPECT_EQ(m.e.swp.offset, pfn);
      HPT_EXPECT_EQ(m.raw(), uint64_t{type} << 7 | pfn << 12);
    }
    // 32: make_readable_migration_entry(swp_offset(e)) keeps the PFN.
    const Pte<F> w = Pte<F>::of(level, swp<F>(level, hugepte::kSwpMigrationWrite, pfn));
    const Pte<F> r = w.with([](Entry& x) { x.swp.type = hugepte::kSwpMigrationRead; });
    HPT_EXPECT(r.ok && r.e.swp.type == hugepte::kSwpMigrationRead && r.e.swp.offset == pfn);
  }
}

// Properties 46, 52, 53, 65, 71, 72 and 83: a huge leaf (pmd/pud_mkhuge is a no-op on riscv:
// leafness comes from R/W/X) is a leaf and not a table ("pmd_bad"), at every level above 0.
HPT_FORMAT_CASE(format, HugeLeafIsALeafAndNeverATable, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 1; level < F::levels; ++level) {
    for (unsigned vm = 1; vm < 8; ++vm) {
      const Pte<F> pmd = Pte<F>::of(level, pfn_pte<F>(level, test_pa<F>(level), vm));
      HPT_ASSERT(pmd.ok);
      const uint64_t raw = pmd.raw();
      HPT_EXPECT(F::is_leaf(raw, level));
      HPT_EXPECT(!F::is_table(raw, level));
      HPT_EXPECT_EQ(uint64_t(pmd.e.shift), uint64_t(F::shift(level)));
      HPT_EXPECT_EQ(F::out_addr(raw, level), test_pa<F>(level));
    }
  }
}

// Properties 54 and 128: pmd_mkinvalid clears V and PROT_NONE; the entry stays present (and a
// leaf to Linux) through its R/W bits. It decodes as protnone with every field kept, and is
// re-encoded in the canonical spelling (G set). An exec-only entry has no such bit: after
// pmd_mkinvalid only X (bit 3) is left, which is the swap soft-dirty bit - Linux has the same
// overlap - so it reads back as a swap entry (or, without Svrsw60t59b, as invalid).
HPT_FORMAT_CASE(format, PmdMkinvalidStaysPresentThroughTheLeafBits, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned vm = 1; vm < 16; ++vm) {
      if ((vm & 7) == 0) continue;  // PAGE_NONE is already invalid
      const Pte<F> pmd = Pte<F>::of(level, pfn_pte<F>(level, test_pa<F>(level), vm));
      HPT_ASSERT(pmd.ok);
      const uint64_t inv = pmd.raw() & ~(rv::kV | rv::kProtNone);
      const Entry d = F::decode(inv, level);
      HPT_EXPECT(!F::is_leaf(inv, level));
      if (pmd.e.prot.read) {
        Entry want = pmd.e;
        want.kind = Kind::protnone;
        EXPECT_ENTRY(d, want);
        const Result<uint64_t> r = F::encode(d, level);
        HPT_EXPECT(r.ok() && r.value == (inv | rv::kG));
      } else {
        HPT_EXPECT(d.kind == (F::svrsw60t59b ? Kind::swap : Kind::invalid));
      }
    }
  }
}

// Properties 84-86 for every huge size: 64K NAPOT, PMD, PUD (and the larger root leaves):
// huge_pte_dirty(mkdirty), huge_pte_write(mkwrite(wrprotect)), !huge_pte_write(wrprotect(
// mkwrite)); a NAPOT entry stays a 64 KiB NAPOT entry through all of them.
HPT_FORMAT_CASE(format, HugetlbHelpersHoldForEveryHugeSize, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned cont = 0; cont < 2; ++cont) {
      if (cont && !F::cont_shift(level)) continue;
      if (!cont && level == 0) continue;  // 4K is not a huge size
      Entry e = cont ? napot<F>(kNapotBase, kRW) : leaf<F>(level, test_pa<F>(level), kRW);
      e.prot.user = e.accessed = true;
      const Pte<F> huge = Pte<F>::of(level, e);
      HPT_ASSERT(huge.ok);
      HPT_EXPECT(F::is_leaf(huge.raw(), level));  // 83: pte_huge
      const Pte<F> d = huge.mkdirty();
      HPT_EXPECT(d.ok && d.dirty());  // 84
      const Pte<F> w = huge.wrprotect().mkwrite();
      HPT_EXPECT(w.ok && w.write());  // 85
      const Pte<F> nw = huge.mkwrite().wrprotect();
      HPT_EXPECT(nw.ok && !nw.write());  // 86
      for (const Pte<F>* p : {&d, &w, &nw}) {
        HPT_EXPECT_EQ(uint64_t(p->e.cont_shift), uint64_t(cont ? 16 : 0));
        HPT_EXPECT_EQ(p->e.addr, e.addr);
      }
    }
  }
}

// ---- Svnapot ----------------------------------------------------------------------------------

// Property 114: all 16 PTEs of a 64K NAPOT mapping hold the same value, with N=1 and PPN[3:0] =
// 1000b; out_addr gives the 64K base; napot_cont_order (lowest set PPN bit + 1) is 4.
HPT_FORMAT_CASE(format, NapotGroupIsSixteenIdenticalEntries, RiscvTestFormats) {
  using F = Fmt;
  if (!F::svnapot) {
    HPT_EXPECT(!F::encode(napot<F>(kNapotBase, kRW), 0).ok());
    HPT_SKIP("no Svnapot in this mode");
  }
  Entry e = napot<F>(kNapotBase, kRW);
  e.accessed = e.dirty = true;
  const Result<uint64_t> r = F::encode(e, 0);
  HPT_ASSERT(r.ok());
  const uint64_t raw0 = r.value;
  HPT_EXPECT_EQ(raw0 & bit(63), bit(63));
  HPT_EXPECT_EQ(field(raw0, 10, 13), uint64_t{0b1000});
  unsigned order = 1;
  for (uint64_t ppn = field(raw0, 10, 53); !(ppn & 1); ppn >>= 1) ++order;
  HPT_EXPECT_EQ(order, 4u);
  for (unsigned i = 0; i < 16; ++i) {
    const uint64_t sub = F::group_entry(raw0, 0, i);
    HPT_EXPECT_EQ(sub, raw0);
    EXPECT_ENTRY(F::decode(sub, 0), e);
    HPT_EXPECT_EQ(F::out_addr(sub, 0), kNapotBase);
  }
  // Non-present values are written to every slot unchanged as well (property 103).
  const uint64_t marker =
      F::encode(swp<F>(0, hugepte::kSwpPteMarker, hugepte::kMarkerUffdWp), 0).value;
  for (unsigned i = 0; i < 16; ++i) HPT_EXPECT_EQ(F::group_entry(marker, 0, i), marker);
  // A NAPOT entry must start on a 64 KiB boundary.
  HPT_EXPECT(!F::encode(napot<F>(kNapotBase + 0x1000, kRW), 0).ok());
  HPT_EXPECT(!F::encode(napot<F>(kNapotBase + 0x8000, kRW), 0).ok());
}

// Break-before-make (the format's declared rule; see needs_bbm in the header): only a NAPOT
// group whose N bit, output address or memory type changes needs invalid + SFENCE.VMA first.
HPT_FORMAT_CASE(format, NeedsBbmOnlyWhenANapotGroupChangesShapeAddressOrType, RiscvTestFormats) {
  using F = Fmt;
  const auto enc = [](const Entry& e, unsigned level) { return F::encode(e, level).value; };
  const uint64_t plain = enc(leaf<F>(0, kNapotBase, kRW), 0);
  const uint64_t plain_ro = enc(leaf<F>(0, kNapotBase, kR), 0);
  const uint64_t plain_moved = enc(leaf<F>(0, kNapotBase + 0x10000, kRW), 0);
  HPT_EXPECT(!F::needs_bbm(plain, plain_ro, 0));     // permission change: sfence.vma suffices
  HPT_EXPECT(!F::needs_bbm(plain, plain_moved, 0));  // new output address, single PTE
  for (unsigned level = 1; level < F::levels; ++level) {
    const uint64_t huge = enc(leaf<F>(level, test_pa<F>(level), kRW), level);
    const uint64_t tbl = F::make_table(0x8000'0000, level);
    HPT_EXPECT(!F::needs_bbm(huge, tbl, level));  // split: no BBM rule in the ISA
    HPT_EXPECT(!F::needs_bbm(tbl, huge, level));  // collapse
  }
  if (F::svpbmt) {
    Entry io = leaf<F>(0, kNapotBase, kRW);
    io.mem = MemType::device;
    HPT_EXPECT(!F::needs_bbm(plain, enc(io, 0), 0));
  }
  if (!F::svnapot) HPT_SKIP("no Svnapot in this mode: no NAPOT transitions");
  Entry g = napot<F>(kNapotBase, kRW);
  const uint64_t group = enc(g, 0);
  Entry g2 = g;
  g2.prot = kR;
  g2.writable = false;
  g2.accessed = g2.dirty = true;
  HPT_EXPECT(!F::needs_bbm(group, enc(g2, 0), 0));  // benign inconsistency: A/D/permissions
  HPT_EXPECT(F::needs_bbm(group, plain, 0));        // breaking the group (N changes)
  HPT_EXPECT(F::needs_bbm(plain, group, 0));        // forming it
  Entry moved = g;
  moved.addr = kNapotBase + 0x10000;
  HPT_EXPECT(F::needs_bbm(group, enc(moved, 0), 0));  // the group's output address changes
  if (F::svpbmt) {
    Entry nc = g;
    nc.mem = MemType::noncacheable;
    HPT_EXPECT(F::needs_bbm(group, enc(nc, 0), 0));  // cacheability of the whole group
  }
}

// ---- bit layout (§6.2) ------------------------------------------------------------------------

// Properties 120 and 123: a swap entry keeps bits 0 (V) and 5 (PROT_NONE) clear, type in 7-11,
// offset from 12; exclusive (6), soft-dirty (3) and uffd-wp (4) are single bits outside the
// type and offset fields and distinct from each other.
HPT_FORMAT_CASE(format, SwapLayoutMatchesLinux, RiscvTestFormats) {
  using F = Fmt;
  HPT_EXPECT_EQ(F::encode(swp<F>(0, 1, 0), 0).value, uint64_t{1} << 7);
  HPT_EXPECT_EQ(F::encode(swp<F>(0, 16, 0), 0).value, uint64_t{1} << 11);
  HPT_EXPECT_EQ(F::encode(swp<F>(0, 0, 1), 0).value, uint64_t{1} << 12);
  HPT_EXPECT_EQ(F::encode(swp<F>(0, 0, bit(51)), 0).value, bit(63));
  Entry ex = swp<F>(0, 0, 0);
  ex.swp.exclusive = true;
  HPT_EXPECT_EQ(F::encode(ex, 0).value, bit(6));  // a swap entry made of the flag alone
  uint64_t flags = bit(6);
  if (F::svrsw60t59b) {
    Entry sd = swp<F>(0, 0, 0);
    sd.swp.soft_dirty = true;
    Entry uw = swp<F>(0, 0, 0);
    uw.swp.uffd_wp = true;
    HPT_EXPECT_EQ(F::encode(sd, 0).value, bit(3));
    HPT_EXPECT_EQ(F::encode(uw, 0).value, bit(4));
    flags |= bit(3) | bit(4);
  }
  HPT_EXPECT_EQ(flags & mask(7, 63), uint64_t{0});
  for (uint32_t type = 0; type < 32; ++type) {
    const Result<uint64_t> r = F::encode(swp<F>(0, type, bit(52) - 1), 0);
    HPT_ASSERT(r.ok());
    HPT_EXPECT_EQ(r.value & (bit(0) | bit(5) | bit(1) | bit(2)), uint64_t{0});
    HPT_EXPECT(F::decode(r.value, 0).kind != Kind::none);  // 120: not none, not present
  }
}

// Property 127: leaf iff V and any of R/W/X; table iff V and R=W=X=0; special is bit 8; PBMT is
// 61-62; N is 63.
HPT_FORMAT_CASE(format, BitPositionsMatchThePteFigure, RiscvTestFormats) {
  using F = Fmt;
  const uint64_t ppn = uint64_t{0x80200} << 10;
  for (uint64_t rwx = 0; rwx < 8; ++rwx) {
    const uint64_t raw = rv::kV | rwx << 1 | ppn;
    const bool reserved = (rwx & 3) == 2;  // W without R
    HPT_EXPECT_EQ(F::is_leaf(raw, 0), rwx != 0 && !reserved);
    HPT_EXPECT_EQ(F::is_table(raw, 1), rwx == 0);
  }
  const uint64_t base = F::encode(leaf<F>(0, 0x8020'0000, kRW), 0).value;
  Entry sp = leaf<F>(0, 0x8020'0000, kRW);
  sp.soft.special = true;
  HPT_EXPECT_EQ(F::encode(sp, 0).value ^ base, bit(8));
  if (F::svpbmt) {
    Entry nc = leaf<F>(0, 0x8020'0000, kRW);
    nc.mem = MemType::noncacheable;
    Entry io = nc;
    io.mem = MemType::device;
    HPT_EXPECT_EQ(F::encode(nc, 0).value ^ base, uint64_t{1} << 61);
    HPT_EXPECT_EQ(F::encode(io, 0).value ^ base, uint64_t{2} << 61);
  }
  if (F::svnapot) {
    const uint64_t n = F::encode(napot<F>(0x8020'0000, kRW), 0).value;
    HPT_EXPECT_EQ(n ^ base, bit(63) | uint64_t{0b1000} << 10);
  }
}

// ---- invalid encodings, by decode (Kind::invalid + reason) and by encode (EINVAL) -------------

template <class F>
bool expect_invalid(hpt::Ctx& hpt_ctx, uint64_t raw, unsigned level, Reason why, const char* file,
                    int line) {
  const Entry d = F::decode(raw, level);
  const bool ok = expect_same(hpt_ctx, d, invalid(F::shift(level), why), file, line);
  const bool hot = hpt_ctx.expect(!F::is_leaf(raw, level) && !F::is_table(raw, level),
                                  "neither leaf nor table", file, line);
  if (!ok || !hot) note("raw", raw), note("level", level);
  return ok && hot;
}
#define EXPECT_INVALID(F, raw, level, why) \
  expect_invalid<F>(hpt_ctx, (raw), (level), (why), __FILE__, __LINE__)

// Bits 54-58 (and 59-60 without Svrsw60t59b) fault in every valid PTE, leaf or table, and in
// the payload of a PROT_NONE entry; all-ones (the 0xFF fill of properties 77/78) is invalid at
// every level.
HPT_FORMAT_CASE(format, ReservedBitsMakeEveryPteInvalid, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    const uint64_t leaf_raw = F::encode(leaf<F>(level, test_pa<F>(level), kRW), level).value;
    const uint64_t pn_raw = F::encode(protnone<F>(level, test_pa<F>(level), kR), level).value;
    for (unsigned b = 54; b <= 60; ++b) {
      if (F::svrsw60t59b && b >= 59) continue;
      EXPECT_INVALID(F, leaf_raw | bit(b), level, Reason::reserved_bits);
      EXPECT_INVALID(F, pn_raw | bit(b), level, Reason::reserved_bits);
      if (level > 0)
        EXPECT_INVALID(F, F::make_table(0x1000, level) | bit(b), level, Reason::reserved_bits);
    }
    EXPECT_INVALID(F, ~uint64_t{0}, level, Reason::reserved_bits);
    // Encode has no way to set a reserved bit: keep carries only the software bits.
    Entry e = leaf<F>(level, test_pa<F>(level), kRW);
    e.keep = bit(54);
    HPT_EXPECT(!F::encode(e, level).ok());
  }
}

// W=1 with R=0 is reserved, with or without X, for a leaf and for a PROT_NONE payload.
HPT_FORMAT_CASE(format, WriteWithoutReadIsReserved, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    const uint64_t pa = (test_pa<F>(level) >> 12) << 10;
    EXPECT_INVALID(F, rv::kV | rv::kW | pa, level, Reason::write_without_read);
    EXPECT_INVALID(F, rv::kV | rv::kW | rv::kX | pa, level, Reason::write_without_read);
    EXPECT_INVALID(F, rv::kG | rv::kW | pa, level, Reason::write_without_read);
    Entry e = leaf<F>(level, test_pa<F>(level), Prot{false, true, false, false});
    HPT_EXPECT(!F::encode(e, level).ok());
    e.prot.exec = true;
    HPT_EXPECT(!F::encode(e, level).ok());
    e.kind = Kind::protnone;
    HPT_EXPECT(!F::encode(e, level).ok());
  }
}

// A superpage whose low PPN fields are not zero is a misaligned superpage: page fault. Each
// PPN bit below the level's alignment is tried; encode refuses an unaligned output address.
HPT_FORMAT_CASE(format, MisalignedSuperpageIsInvalid, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 1; level < F::levels; ++level) {
    const uint64_t raw = F::encode(leaf<F>(level, test_pa<F>(level), kRX), level).value;
    for (unsigned b = 0; b < 9 * level; ++b) {
      EXPECT_INVALID(F, raw | bit(10 + b), level, Reason::misaligned_output);
      HPT_EXPECT(!F::encode(leaf<F>(level, test_pa<F>(level) | bit(12 + b), kRX), level).ok());
    }
    // The same PPN is fine one level down (where it is aligned enough) for the top bit.
    HPT_EXPECT(F::is_leaf(raw | bit(10 + 9 * (level - 1)), level - 1));
  }
}

// N=1 is defined only at level 0 with PPN[3:0] = 1000b; every other pattern and every level
// above 0 is reserved. Encode refuses a contiguous size other than 64 KiB at level 0.
HPT_FORMAT_CASE(format, NapotOtherThan64KAtLevel0IsReserved, RiscvTestFormats) {
  using F = Fmt;
  if (!F::svnapot) HPT_SKIP("no Svnapot in this mode (see ExtensionBitsWithoutTheExtension...)");
  const uint64_t base = F::encode(leaf<F>(0, kNapotBase, kRW), 0).value;
  for (uint64_t pattern = 0; pattern < 16; ++pattern) {
    const uint64_t raw = bit(63) | (base & ~mask(10, 13)) | pattern << 10;
    if (pattern == 0b1000) {
      HPT_EXPECT(F::is_leaf(raw, 0));
    } else {
      EXPECT_INVALID(F, raw, 0, Reason::reserved_group_encoding);
    }
  }
  for (unsigned level = 1; level < F::levels; ++level) {
    const uint64_t raw = F::encode(leaf<F>(level, test_pa<F>(level), kRW), level).value;
    EXPECT_INVALID(F, raw | bit(63), level, Reason::reserved_group_encoding);
    EXPECT_INVALID(F, raw | bit(63) | uint64_t{0b1000} << 10, level,
                   Reason::reserved_group_encoding);
    Entry e = leaf<F>(level, test_pa<F>(level), kRW);
    e.cont_shift = 16;
    HPT_EXPECT(!F::encode(e, level).ok());
    e.cont_shift = static_cast<uint8_t>(F::shift(level) + 4);
    HPT_EXPECT(!F::encode(e, level).ok());
  }
  Entry e = napot<F>(kNapotBase, kRW);
  e.cont_shift = 17;  // 128 KiB is reserved
  HPT_EXPECT(!F::encode(e, 0).ok());
}

// PBMT = 3 is reserved in a leaf (and in a PROT_NONE payload); encode cannot produce it, and
// refuses memory types PBMT cannot name.
HPT_FORMAT_CASE(format, PbmtThreeIsReservedAndOtherTypesAreRefused, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 0; level < F::levels; ++level) {
    const uint64_t raw = F::encode(leaf<F>(level, test_pa<F>(level), kRW), level).value;
    const uint64_t pn = F::encode(protnone<F>(level, test_pa<F>(level), kR), level).value;
    const Reason why = F::svpbmt ? Reason::reserved_memory_type : Reason::extension_absent;
    EXPECT_INVALID(F, raw | uint64_t{3} << 61, level, why);
    EXPECT_INVALID(F, pn | uint64_t{3} << 61, level, why);
    for (MemType m :
         {MemType::write_through, MemType::device_nGnRE, MemType::write_protect, MemType::tagged}) {
      Entry e = leaf<F>(level, test_pa<F>(level), kRW);
      e.mem = m;
      HPT_EXPECT(!F::encode(e, level).ok());
    }
  }
}

// For non-leaf PTEs D, A and U are reserved, and so are PBMT and N; encode refuses them.
HPT_FORMAT_CASE(format, NonLeafReservesDAUPbmtAndN, RiscvTestFormats) {
  using F = Fmt;
  for (unsigned level = 1; level < F::levels; ++level) {
    const uint64_t t = F::make_table(0x8000'1000, level);
    for (uint64_t b :
         {rv::kD, rv::kA, rv::kU, uint64_t{1} << 61, uint64_t{2} << 61, uint64_t{3} << 61, rv::kN})
      EXPECT_INVALID(F, t | b, level, Reason::reserved_bits);
    const Entry ok = table<F>(level, 0x8000'1000);
    Entry e = ok;
    e.accessed = true;
    HPT_EXPECT(!F::encode(e, level).ok());
    e = ok;
    e.dirty = true;
    HPT_EXPECT(!F::encode(e, level).ok());
    e = ok;
    e.prot.user = true;
    HPT_EXPECT(!F::encode(e, level).ok());
    e = ok;
    e.mem = MemType::noncacheable;
    HPT_EXPECT(!F::encode(e, level).ok());
    e = ok;
    e.cont_shift = 16;
    HPT_EXPECT(!F::encode(e, level).ok());
    e = ok;
    e.prot.read = true;  // that would be a leaf
    HPT_EXPECT(!F::encode(e, level).ok());
    e = ok;
    e.addr = 0x8000'1800;  // tables are page aligned
    HPT_EXPECT(!F::encode(e, level).ok());
    e = ok;
    e.keep = bit(54);
    HPT_EXPECT(!F::encode(e, level).ok());
  }
}

// A pointer at level 0 would need a level -1: the walk raises a page fault.
HPT_FORMAT_CASE(format, TablePointerAtLevel0IsInvalid, RiscvTestFormats) {
  using F = Fmt;
  EXPECT_INVALID(F, rv::kV | uint64_t{0x80001} << 10, 0, Reason::table_not_allowed);
  EXPECT_INVALID(F, rv::kV | rv::kG, 0, Reason::table_not_allowed);
  HPT_EXPECT(!F::encode(table<F>(0, 0x8000'1000), 0).ok());
}

// Without Svpbmt, bits 61-62 are reserved; without Svnapot, bit 63; without Svrsw60t59b, bits
// 59-60 and the swap soft-dirty/uffd-wp bits. A leaf (or PROT_NONE payload) using a missing
// extension decodes as extension_absent; a table as reserved_bits; encode refuses both.
HPT_FORMAT_CASE(format, ExtensionBitsWithoutTheExtensionAreInvalid, RiscvTestFormats) {
  using F = Fmt;
  const uint64_t lf = F::encode(leaf<F>(0, kNapotBase, kRW), 0).value;
  const uint64_t pn = F::encode(protnone<F>(0, kNapotBase, kR), 0).value;
  const uint64_t n = bit(63) | uint64_t{0b1000} << 10;
  if (!F::svpbmt) {
    EXPECT_INVALID(F, lf | uint64_t{1} << 61, 0, Reason::extension_absent);
    EXPECT_INVALID(F, lf | uint64_t{2} << 61, 0, Reason::extension_absent);
    EXPECT_INVALID(F, pn | uint64_t{1} << 61, 0, Reason::extension_absent);
    EXPECT_INVALID(F, F::make_table(0x1000, 1) | uint64_t{2} << 61, 1, Reason::reserved_bits);
    Entry e = leaf<F>(0, kNapotBase, kRW);
    e.mem = MemType::device;
    HPT_EXPECT(!F::encode(e, 0).ok());
    e.mem = MemType::noncacheable;
    HPT_EXPECT(!F::encode(e, 0).ok());
  }
  if (!F::svnapot) {
    EXPECT_INVALID(F, lf | n, 0, Reason::extension_absent);
    EXPECT_INVALID(F, pn | n, 0, Reason::extension_absent);
    HPT_EXPECT(!F::encode(napot<F>(kNapotBase, kRW), 0).ok());
  }
  if (!F::svrsw60t59b) {
    EXPECT_INVALID(F, uint64_t{5} << 12 | uint64_t{1} << 7 | rv::kSwpSoftDirty, 0,
                   Reason::extension_absent);
    EXPECT_INVALID(F, uint64_t{5} << 12 | uint64_t{1} << 7 | rv::kSwpUffdWp, 1,
                   Reason::extension_absent);
    Entry e = leaf<F>(0, kNapotBase, kRW);
    e.soft.soft_dirty = true;
    HPT_EXPECT(!F::encode(e, 0).ok());
    e.soft.soft_dirty = false;
    e.soft.uffd_wp = true;
    HPT_EXPECT(!F::encode(e, 0).ok());
  }
  if (F::svpbmt && F::svnapot && F::svrsw60t59b) {
    HPT_EXPECT(F::is_leaf(lf | n | uint64_t{1} << 61 | bit(59) | bit(60), 0));
  }
}

// The remaining refusals of encode: a level the format lacks, an address beyond 56 bits,
// writable disagreeing with W, a leaf with no permission (that is a table), a global PROT_NONE
// entry, swap fields out of range, the none-looking swap entry, a wrong shift, Kind::invalid.
HPT_FORMAT_CASE(format, EncodeRefusesWhatTheFormatCannotExpress, RiscvTestFormats) {
  using F = Fmt;
  HPT_EXPECT(F::encode(leaf<F>(0, 0x1000, kRW), F::levels).err == Err::einval);
  HPT_EXPECT(F::encode(swp<F>(0, 1, 1), F::levels).err == Err::einval);
  for (unsigned level = 0; level < F::levels; ++level) {
    HPT_EXPECT(F::encode(leaf<F>(level, bit(56), kRW), level).err == Err::einval);
    HPT_EXPECT(F::encode(leaf<F>(level, top_pa<F>(F::shift(level)), kRW), level).ok());
    HPT_EXPECT(!F::encode(leaf<F>(level, test_pa<F>(level), Prot{}), level).ok());
    HPT_EXPECT(F::encode(protnone<F>(level, test_pa<F>(level), Prot{}), level).ok());
    Entry w = leaf<F>(level, test_pa<F>(level), kRW);
    w.writable = false;
    HPT_EXPECT(!F::encode(w, level).ok());
    Entry g = protnone<F>(level, test_pa<F>(level), kR);
    g.global = true;
    HPT_EXPECT(!F::encode(g, level).ok());
    Entry s = leaf<F>(level, test_pa<F>(level), kRW);
    s.shift = static_cast<uint8_t>(F::shift(level) + 9);  // decoded one level up
    HPT_EXPECT(!F::encode(s, level).ok());
    HPT_EXPECT(!F::encode(swp<F>(level, 32, 1), level).ok());
    HPT_EXPECT(!F::encode(swp<F>(level, 1, bit(52)), level).ok());
    HPT_EXPECT(!F::encode(swp<F>(level, 0, 0), level).ok());
    HPT_EXPECT(!F::encode(invalid(F::shift(level), Reason::reserved_bits), level).ok());
    if (level > 0) {
      HPT_EXPECT(!F::encode(table<F>(level, bit(56)), level).ok());
    }
  }
}

// ---- known values, computed by hand from the manuals --------------------------------------------
//
// PTE = PPN << 10 | flags, PPN = PA >> 12; flags V=0x1 R=0x2 W=0x4 X=0x8 U=0x10 G=0x20 A=0x40
// D=0x80 RSW=0x100/0x200; bit 54 = 0x0040'0000'0000'0000, 59 = 0x0800'..., 60 = 0x1000'...,
// PBMT NC (1<<61) = 0x2000'..., IO (2<<61) = 0x4000'..., N (1<<63) = 0x8000'....

HPT_ARCH_CASE("riscv64", format, Sv39HandComputedLeavesDecode) {
  using F = Sv39;
  {
    // 4 KiB RW page at 0x8020'0000: PPN 0x80200, << 10 = 0x2008'0000; V|R|W|A|D = 0xC7.
    Entry want = leaf<F>(0, 0x8020'0000, kRW);
    want.accessed = want.dirty = true;
    EXPECT_ENTRY(F::decode(0x2008'00C7, 0), want);
  }
  {
    // 2 MiB RX megapage at 0x8000'0000: PPN 0x80000 << 10 = 0x2000'0000; V|R|X|A = 0x4B.
    Entry want = leaf<F>(1, 0x8000'0000, kRX);
    want.accessed = true;
    EXPECT_ENTRY(F::decode(0x2000'004B, 1), want);
  }
  {
    // 1 GiB RWX user gigapage at 0x4000'0000: PPN 0x40000 << 10 = 0x1000'0000;
    // V|R|W|X|U|A|D = 0x01+0x02+0x04+0x08+0x10+0x40+0x80 = 0xDF.
    Entry want = leaf<F>(2, 0x4000'0000, Prot{true, true, true, true});
    want.accessed = want.dirty = true;
    EXPECT_ENTRY(F::decode(0x1000'00DF, 2), want);
  }
  {
    // 64 KiB NAPOT at 0x8021'0000: PPN 0x80210, PPN[3:0] := 1000b -> 0x80218, << 10 =
    // 0x2008'6000; N = bit 63; V|R|W|A|D = 0xC7. Decodes to the group base.
    Entry want = napot<F>(0x8021'0000, kRW);
    want.accessed = want.dirty = true;
    EXPECT_ENTRY(F::decode(0x8000'0000'2008'60C7, 0), want);
    HPT_EXPECT_EQ(F::out_addr(0x8000'0000'2008'60C7, 0), uint64_t{0x8021'0000});
  }
  {
    // Device page at 0x4000'0000 (level 0): PPN 0x40000 << 10 = 0x1000'0000; PBMT IO =
    // 2 << 61 = 0x4000'0000'0000'0000; V|R|W|A|D = 0xC7.
    Entry want = leaf<F>(0, 0x4000'0000, kRW);
    want.mem = MemType::device;
    want.accessed = want.dirty = true;
    EXPECT_ENTRY(F::decode(0x4000'0000'1000'00C7, 0), want);
    // The same with PBMT NC = 1 << 61 = 0x2000'0000'0000'0000.
    want.mem = MemType::noncacheable;
    EXPECT_ENTRY(F::decode(0x2000'0000'1000'00C7, 0), want);
  }
  {
    // Special global kernel page: 0x2008'00C7 | RSW[0] 0x100 | G 0x20 = 0x2008'01E7.
    Entry want = leaf<F>(0, 0x8020'0000, kRW);
    want.accessed = want.dirty = want.global = want.soft.special = true;
    EXPECT_ENTRY(F::decode(0x2008'01E7, 0), want);
    // RSW[1] (0x200) is kept as an opaque software bit: 0x2008'02C7.
    want.global = want.soft.special = false;
    want.keep = 0x200;
    EXPECT_ENTRY(F::decode(0x2008'02C7, 0), want);
  }
}

HPT_ARCH_CASE("riscv64", format, Sv39HandComputedTablesAndFaultsDecode) {
  using F = Sv39;
  // Pointer at level 2 to a table at 0x8000'1000: PPN 0x80001 << 10 = 0x2000'0400; V = 0x1.
  EXPECT_ENTRY(F::decode(0x2000'0401, 2), table<F>(2, 0x8000'1000));
  {
    // The same with G (0x20): a global subtree, 0x2000'0421.
    Entry want = table<F>(1, 0x8000'1000);
    want.global = true;
    EXPECT_ENTRY(F::decode(0x2000'0421, 1), want);
  }
  // The pointer at level 0: no level below, page fault.
  EXPECT_ENTRY(F::decode(0x2000'0401, 0), invalid(12, Reason::table_not_allowed));
  // The pointer with A (0x40) set: 0x2000'0441, A is reserved on a non-leaf PTE.
  EXPECT_ENTRY(F::decode(0x2000'0441, 1), invalid(21, Reason::reserved_bits));
  // Megapage with PPN 0x80001 (bit 0 of PPN[0] set): 0x2000'0400 | 0x4B = 0x2000'044B.
  EXPECT_ENTRY(F::decode(0x2000'044B, 1), invalid(21, Reason::misaligned_output));
  // ... which is a fine 4 KiB page at level 0.
  HPT_EXPECT(F::decode(0x2000'044B, 0).kind == Kind::leaf);
  // W without R: V|W = 0x5, and V|W|X = 0xD.
  EXPECT_ENTRY(F::decode(0x2008'0005, 0), invalid(12, Reason::write_without_read));
  EXPECT_ENTRY(F::decode(0x2008'000D, 0), invalid(12, Reason::write_without_read));
  // N with PPN[3:0] = 0100b: PPN 0x80214 << 10 = 0x2008'5000, | N | 0xC7.
  EXPECT_ENTRY(F::decode(0x8000'0000'2008'50C7, 0), invalid(12, Reason::reserved_group_encoding));
  // N at level 1: PPN 0x80008 << 10 = 0x2000'2000, | N | 0x4B.
  EXPECT_ENTRY(F::decode(0x8000'0000'2000'204B, 1), invalid(21, Reason::reserved_group_encoding));
  // PBMT = 3: 3 << 61 = 0x6000'0000'0000'0000 on the device page above.
  EXPECT_ENTRY(F::decode(0x6000'0000'1000'00C7, 0), invalid(12, Reason::reserved_memory_type));
  // Bit 54 = 0x0040'0000'0000'0000.
  EXPECT_ENTRY(F::decode(0x0040'0000'1000'00C7, 0), invalid(12, Reason::reserved_bits));
  // Bit 59 without Svrsw60t59b: 0x0800'0000'0000'0000.
  EXPECT_ENTRY(F::decode(0x0800'0000'1000'00C7, 0), invalid(12, Reason::reserved_bits));
}

HPT_ARCH_CASE("riscv64", format, Sv39HandComputedNonPresentEntriesDecode) {
  using F = Sv39;
  // PAGE_NONE at 0x8020'0000: PROT_NONE (G) 0x20 | R 0x2 = 0x22 -> 0x2008'0022.
  EXPECT_ENTRY(F::decode(0x2008'0022, 0), protnone<F>(0, 0x8020'0000, kR));
  {
    // pmd_mkinvalid of the RX megapage 0x2000'004B: clear V and G -> 0x2000'004A. Still
    // PROT_NONE-like; re-encoded with G: 0x2000'006A.
    Entry want = protnone<F>(1, 0x8000'0000, kRX);
    want.accessed = true;
    EXPECT_ENTRY(F::decode(0x2000'004A, 1), want);
    HPT_EXPECT_EQ(F::encode(want, 1).value, uint64_t{0x2000'006A});
  }
  // Swap type 3 offset 0x1234: 3 << 7 = 0x180, 0x1234 << 12 = 0x123'4000 -> 0x123'4180.
  EXPECT_ENTRY(F::decode(0x123'4180, 0), swp<F>(0, 3, 0x1234));
  {
    // Plus exclusive (bit 6 = 0x40): 0x123'41C0.
    Entry want = swp<F>(0, 3, 0x1234);
    want.swp.exclusive = true;
    EXPECT_ENTRY(F::decode(0x123'41C0, 0), want);
  }
  // swp_entry(MAX_SWAPFILES-1 = 23, 2^52-1): 23 << 7 = 0xB80, (2^52-1) << 12 =
  // 0xFFFF'FFFF'FFFF'F000 -> 0xFFFF'FFFF'FFFF'FB80.
  EXPECT_ENTRY(F::decode(0xFFFF'FFFF'FFFF'FB80, 0), swp<F>(0, 23, 0xF'FFFF'FFFF'FFFF));
  // Writable migration entry (type 27) for PFN 0x80200: 27 << 7 = 0xD80, 0x80200 << 12 =
  // 0x8020'0000 -> 0x8020'0D80, at the PMD level.
  EXPECT_ENTRY(F::decode(0x8020'0D80, 1), swp<F>(1, hugepte::kSwpMigrationWrite, 0x80200));
  // hwpoison (type 24) for PFN 0x80300: 24 << 7 = 0xC00 -> 0x8030'0C00.
  EXPECT_ENTRY(F::decode(0x8030'0C00, 0), swp<F>(0, hugepte::kSwpHwpoison, 0x80300));
  // uffd-wp marker: type 31 << 7 = 0xF80, flag bit 0 in the offset: 1 << 12 -> 0x1F80.
  EXPECT_ENTRY(F::decode(0x1F80, 0), swp<F>(0, hugepte::kSwpPteMarker, hugepte::kMarkerUffdWp));
  // Guard marker: offset 4 -> 0x4000 | 0xF80 = 0x4F80.
  EXPECT_ENTRY(F::decode(0x4F80, 2), swp<F>(2, hugepte::kSwpPteMarker, hugepte::kMarkerGuard));
  // Soft-dirty swap bit (3 = 0x8) without Svrsw60t59b: type 1, offset 5 -> 0x5088.
  EXPECT_ENTRY(F::decode(0x5088, 0), invalid(12, Reason::extension_absent));
}

HPT_ARCH_CASE("riscv64", format, Sv39HandComputedEntriesEncode) {
  using F = Sv39;
  const auto enc = [](const Entry& e, unsigned level) { return F::encode(e, level).value; };
  {
    Entry e = leaf<F>(0, 0x8020'0000, kRW);  // 0x2008'0000 | V|R|W|A|D
    e.accessed = e.dirty = true;
    HPT_EXPECT_EQ(enc(e, 0), uint64_t{0x2008'00C7});
    e.cont_shift = 16;  // 0x80200 is 64 KiB aligned: PPN 0x80208 -> 0x2008'2000, | N
    HPT_EXPECT_EQ(enc(e, 0), uint64_t{0x8000'0000'2008'20C7});
  }
  // Table at level 1 for 0x8000'1000: 0x2000'0401 (make_table and encode agree).
  HPT_EXPECT_EQ(enc(table<F>(1, 0x8000'1000), 1), uint64_t{0x2000'0401});
  HPT_EXPECT_EQ(F::make_table(0x8000'1000, 1), uint64_t{0x2000'0401});
  {
    // Exec-only user 1 GiB page at 0xC000'0000: PPN 0xC0000 << 10 = 0x3000'0000;
    // V|X|U|A = 0x01+0x08+0x10+0x40 = 0x59.
    Entry e = leaf<F>(2, 0xC000'0000, Prot{false, false, true, true});
    e.accessed = true;
    HPT_EXPECT_EQ(enc(e, 2), uint64_t{0x3000'0059});
  }
  {
    // IO page at 0x1000'0000 (a UART): PPN 0x10000 << 10 = 0x400'0000; IO 0x4000'...; 0xC7.
    Entry e = leaf<F>(0, 0x1000'0000, kRW);
    e.mem = MemType::device;
    e.accessed = e.dirty = true;
    HPT_EXPECT_EQ(enc(e, 0), uint64_t{0x4000'0000'0400'00C7});
  }
  // PAGE_NONE at 0x8020'0000 -> 0x2008'0022.
  HPT_EXPECT_EQ(enc(protnone<F>(0, 0x8020'0000, kR), 0), uint64_t{0x2008'0022});
  // Migration-read (type 25) PFN 0x80200: 25 << 7 = 0xC80 -> 0x8020'0C80.
  HPT_EXPECT_EQ(enc(swp<F>(0, hugepte::kSwpMigrationRead, 0x80200), 0), uint64_t{0x8020'0C80});
  // Poisoned marker: offset 2 -> 0x2000 | 0xF80 = 0x2F80.
  HPT_EXPECT_EQ(enc(swp<F>(0, hugepte::kSwpPteMarker, hugepte::kMarkerPoisoned), 0),
                uint64_t{0x2F80});
  // The largest PA: 2^56 - 4 KiB -> PPN 0xFFF'FFFF'FFFF << 10 = 0x003F'FFFF'FFFF'FC00, | 0x43.
  {
    Entry e = leaf<F>(0, 0x00FF'FFFF'FFFF'F000, kR);
    e.accessed = true;
    HPT_EXPECT_EQ(enc(e, 0), uint64_t{0x003F'FFFF'FFFF'FC43});
  }
}

HPT_ARCH_CASE("riscv64", format, Sv48AndSv57RootLeavesMatchHandComputedValues) {
  {
    // Sv48 512 GiB leaf at level 3 for PA 2^39 = 0x80'0000'0000: PPN 2^27 << 10 = 2^37 =
    // 0x20'0000'0000; V|R|W|X|A|D = 0xCF.
    using F = Sv48;
    Entry want = leaf<F>(3, 0x80'0000'0000, kRWX);
    want.accessed = want.dirty = true;
    EXPECT_ENTRY(F::decode(0x20'0000'00CF, 3), want);
    HPT_EXPECT_EQ(uint64_t(F::decode(0x20'0000'00CF, 3).shift), uint64_t{39});
    // PPN 2^27 + 1 is misaligned for 512 GiB: 0x20'0000'04CF.
    EXPECT_ENTRY(F::decode(0x20'0000'04CF, 3), invalid(39, Reason::misaligned_output));
  }
  {
    // Sv57 256 TiB leaf at level 4 for PA 2^48: PPN 2^36 << 10 = 2^46 = 0x4000'0000'0000;
    // V|R|A|D = 0xC3.
    using F = Sv57;
    Entry want = leaf<F>(4, uint64_t{1} << 48, kR);
    want.accessed = want.dirty = true;
    EXPECT_ENTRY(F::decode(0x4000'0000'00C3, 4), want);
    HPT_EXPECT_EQ(F::encode(want, 4).value, uint64_t{0x4000'0000'00C3});
  }
}

HPT_ARCH_CASE("riscv64", format, ExtensionVariantsMatchHandComputedValues) {
  {
    // Svrsw60t59b: soft-dirty (bit 59 = 0x0800'...) on the 4 KiB RW page 0x2008'00C7.
    using F = Sv39Rsw;
    Entry want = leaf<F>(0, 0x8020'0000, kRW);
    want.accessed = want.dirty = want.soft.soft_dirty = true;
    EXPECT_ENTRY(F::decode(0x0800'0000'2008'00C7, 0), want);
    // uffd-wp (bit 60 = 0x1000'...) on a write-protected page: 0x1000'0000'2008'00C3.
    want.soft.soft_dirty = false;
    want.soft.uffd_wp = true;
    want.prot = kR;
    want.writable = false;
    EXPECT_ENTRY(F::decode(0x1000'0000'2008'00C3, 0), want);
    // Swap type 1 offset 5 with soft-dirty (bit 3): 0x80 | 0x5000 | 0x8 = 0x5088.
    Entry s = swp<F>(0, 1, 5);
    s.swp.soft_dirty = true;
    EXPECT_ENTRY(F::decode(0x5088, 0), s);
    HPT_EXPECT_EQ(F::encode(s, 0).value, uint64_t{0x5088});
  }
  {
    // Without Svnapot/Svpbmt: the NAPOT and IO encodings above fault.
    using F = Sv48Base;
    EXPECT_ENTRY(F::decode(0x8000'0000'2008'60C7, 0), invalid(12, Reason::extension_absent));
    EXPECT_ENTRY(F::decode(0x4000'0000'1000'00C7, 0), invalid(12, Reason::extension_absent));
    HPT_EXPECT(F::decode(0x2008'00C7, 0).kind == Kind::leaf);
  }
}

// The mode names distinguish every extension set, so the test matrix can tell them apart; the
// guests run "sv39-*" cases in the sv39 image.
HPT_ARCH_CASE("riscv64", format, ModeNamesNameTheSatpModeAndTheExtensionSet) {
  const auto eq = [](const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
  };
  HPT_EXPECT(eq(Sv39::arch, "riscv64"));
  HPT_EXPECT(eq(Sv39::mode, "sv39"));
  HPT_EXPECT(eq(Sv48::mode, "sv48"));
  HPT_EXPECT(eq(Sv57::mode, "sv57"));
  HPT_EXPECT(eq(Sv39Rsw::mode, "sv39-rsw"));
  HPT_EXPECT(eq(Sv48Base::mode, "sv48-nonapot-nopbmt"));
  HPT_EXPECT(eq(RiscvFormat<5, true, false>::mode, "sv57-nopbmt"));
}

}  // namespace
