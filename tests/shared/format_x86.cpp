// format_x86.cpp - the x86-64 entry formats (arch/x86/include/hugepte/arch/x86.hpp) against the
// Intel SDM vol. 3 §4.5, Linux's x86-64 conventions and the properties of docs/arch.md §4 / §6.2.
//
// Shared ring: runs on the host, under qemu-user and inside the bare-metal guests, so it is
// freestanding (no heap, no printf). Exhaustive loops are sized to stay well under a second.
#include "hpt_test.hpp"
#include "hugepte/arch/x86.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file
namespace x = hugepte::x86;

using NoGb = X86Format<4, false>;
using Pa46 = X86Format<4, true, 46>;

// ---- helpers ---------------------------------------------------------------------------------

// Field-by-field comparison that names the first differing field.
bool expect_entry(hpt::Ctx& ctx, const Entry& got, const Entry& want, const char* file, int line) {
  ++ctx.checks;
  if (got == want) return true;
  ctx.fail_at(file, line, "entries differ");
  auto field = [&](const char* name, uint64_t a, uint64_t b) {
    if (a == b) return;
    hpt::out("      ");
    hpt::out(name);
    hpt::out(": got ");
    hpt::out_u64(a, 16);
    hpt::out(" want ");
    hpt::out_u64(b, 16);
    hpt::out("\n");
  };
  auto prot = [](const Prot& p) -> uint64_t {
    return (p.read ? 1 : 0) | (p.write ? 2 : 0) | (p.exec ? 4 : 0) | (p.user ? 8 : 0);
  };
  auto soft = [](const Soft& s) -> uint64_t {
    return (s.special ? 1 : 0) | (s.soft_dirty ? 2 : 0) | (s.uffd_wp ? 4 : 0);
  };
  field("kind", static_cast<uint64_t>(got.kind), static_cast<uint64_t>(want.kind));
  field("addr", got.addr, want.addr);
  field("shift", got.shift, want.shift);
  field("cont_shift", got.cont_shift, want.cont_shift);
  field("prot(rwxu)", prot(got.prot), prot(want.prot));
  field("writable", got.writable, want.writable);
  field("mem", static_cast<uint64_t>(got.mem), static_cast<uint64_t>(want.mem));
  field("global", got.global, want.global);
  field("accessed", got.accessed, want.accessed);
  field("dirty", got.dirty, want.dirty);
  field("soft(special,sd,uffd)", soft(got.soft), soft(want.soft));
  field("swp.type", got.swp.type, want.swp.type);
  field("swp.offset", got.swp.offset, want.swp.offset);
  field(
      "swp.flags(ex,sd,uffd)",
      (got.swp.exclusive ? 1u : 0u) | (got.swp.soft_dirty ? 2u : 0u) | (got.swp.uffd_wp ? 4u : 0u),
      (want.swp.exclusive ? 1u : 0u) | (want.swp.soft_dirty ? 2u : 0u) |
          (want.swp.uffd_wp ? 4u : 0u));
  field("reason", static_cast<uint64_t>(got.reason), static_cast<uint64_t>(want.reason));
  field("keep", got.keep, want.keep);
  return false;
}
#define X86_EXPECT_ENTRY(got, want) expect_entry(hpt_ctx, (got), (want), __FILE__, __LINE__)

// Stop a loop after a handful of failures instead of printing thousands of lines.
#define X86_BAIL_IF_NOISY()           \
  do {                                \
    if (hpt_ctx.failures > 8) return; \
  } while (0)

using hpt::Rng;  // deterministic, so a failure reproduces

// A leaf Entry built from vocabulary, the way generic code builds one.
Entry leaf(uint64_t addr, unsigned shift, Prot prot, bool dirty = false, bool accessed = true) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = addr;
  e.shift = static_cast<uint8_t>(shift);
  e.prot = prot;
  e.writable = prot.write;
  e.dirty = dirty;
  e.accessed = accessed;
  return e;
}

Entry swap_entry(uint32_t type, uint64_t offset, unsigned shift) {
  Entry e;
  e.kind = type == kSwpPteMarker ? Kind::marker : Kind::swap;
  e.swp.type = type;
  e.swp.offset = offset;
  e.shift = static_cast<uint8_t>(shift);
  return e;
}

// Linux helpers, expressed as changes to the vocabulary.
Entry mkyoung(Entry e) {
  e.accessed = true;
  return e;
}
Entry mkold(Entry e) {
  e.accessed = false;
  return e;
}
Entry mkdirty(Entry e) {
  e.dirty = true;
  return e;
}
Entry mkclean(Entry e) {
  e.dirty = false;
  return e;
}
Entry mkwrite(Entry e) {
  e.writable = true;
  e.prot.write = true;
  return e;
}  // "novma" too
Entry wrprotect(Entry e) {
  e.writable = false;
  e.prot.write = false;
  return e;
}

// Through the raw encoding: encode (must succeed) then decode.
template <class F>
Entry via_raw(hpt::Ctx& hpt_ctx, const Entry& e, unsigned level) {
  Result<uint64_t> r = F::encode(e, level);
  if (!HPT_EXPECT(r.ok())) {
    hpt::out("      refused: ");
    hpt::out(reason_name(F::refusal(e, level)));
    hpt::out("\n");
    return Entry{};
  }
  return F::decode(r.value, level);
}

template <class F>
uint64_t raw_of(hpt::Ctx& hpt_ctx, const Entry& e, unsigned level) {
  Result<uint64_t> r = F::encode(e, level);
  HPT_EXPECT(r.ok());
  return r.value;
}

// Linux x86 protection_map[] (arch/x86/mm/pgprot.c) for vm_flags idx in 0..15
// (VM_READ 1, VM_WRITE 2, VM_EXEC 4, VM_SHARED 8), as raw flag bits.
// PAGE_NONE = PROTNONE|A; private writable mappings are PAGE_COPY (read-only until CoW).
constexpr uint64_t linux_page_prot(unsigned idx) {
  const bool r = idx & 1, w = idx & 2, xx = idx & 4, shared = idx & 8;
  if (!r && !w && !xx) return x::kProtNone | x::kA;
  uint64_t flags = x::kP | x::kUS | x::kA;
  if (w && shared) flags |= x::kRW;
  if (!xx) flags |= x::kXD;
  return flags;
}

// Linux's pfn_pte/pfn_pmd/pfn_pud plus pmd_mkhuge, written straight from pgtable.h: a
// non-present, non-zero protection stores the frame inverted (L1TF).
template <class F>
constexpr uint64_t linux_pfn_entry(uint64_t pa, uint64_t flags, unsigned level) {
  const uint64_t field = mask(F::shift(level), 51);
  if (flags && !(flags & x::kP)) pa = ~pa;
  uint64_t raw = (pa & field) | flags;
  if (level >= 1) raw |= x::kPS;
  return raw;
}

// The canonical raw spelling of what `raw` means, from the header's documentation. The model is
// independent of the format code: encode(decode(raw)) must equal it for every raw value that
// decodes to a valid kind.
template <class F>
constexpr uint64_t canonical_spelling(uint64_t raw, unsigned level) {
  const bool present = raw & x::kP;
  bool leafish = false;
  if (present) {
    leafish = level == 0 || (raw & x::kPS);
  } else if ((raw & ~x::kKnlErratum) != 0 && F::leaf_ok(level)) {
    if ((raw & x::kProtNone) || (level >= 1 && (raw & x::kPS))) {
      leafish = true;
      raw |= x::kProtNone;  // PS alone (pmd_mkinvalid) is spelt PROTNONE|PS
    }
  }
  if (!leafish) return raw;
  const uint64_t pat = level == 0 ? x::kPAT : x::kPATLarge;
  // PAT 4 (WB) and 6 (UC-) are written as 0 and 2.
  if ((raw & pat) && !(raw & x::kPWT)) raw &= ~pat;
  // Dirty with RW or D set is written as D alone.
  if ((raw & x::kSavedDirty) && (raw & (x::kRW | x::kD))) raw = (raw & ~x::kSavedDirty) | x::kD;
  return raw;
}

template <class F>
constexpr bool valid_kind(Kind k) {
  return k != Kind::invalid;
}

// ---- geometry --------------------------------------------------------------------------------

HPT_FORMAT_CASE(format, GeometryFollowsTheSdmLevelsAndShifts, X86Formats) {
  using F = Fmt;
  // §3.1 / property 129: 512 entries per table, shifts 12/21/30/39(/48).
  HPT_EXPECT_EQ(F::page_shift, 12u);
  HPT_EXPECT_EQ(F::pa_bits, 52u);
  HPT_EXPECT_EQ(F::va_bits, F::levels == 4 ? 48u : 57u);
  const unsigned shifts[] = {12, 21, 30, 39, 48};
  for (unsigned l = 0; l < F::levels; ++l) {
    HPT_EXPECT_EQ(F::shift(l), shifts[l]);
    HPT_EXPECT_EQ(F::index_bits(l), 9u);  // the root is full-size on x86, too
    HPT_EXPECT_EQ(F::cont_shift(l), 0u);
    HPT_EXPECT_EQ(F::leaf_ok(l), l <= 2);
  }
  auto s = leaf_sizes<F>();  // 4K, 2M, 1G (property 117)
  HPT_ASSERT_EQ(s.count, 3u);
  HPT_EXPECT_EQ(s.shift[0], 12u);
  HPT_EXPECT_EQ(s.shift[1], 21u);
  HPT_EXPECT_EQ(s.shift[2], 30u);
  HPT_EXPECT_EQ(level_of_shift<F>(30), 2u);
  HPT_EXPECT_EQ(level_of_shift<F>(16), F::levels);
  HPT_EXPECT(F::ad_caps.hw_accessed);
  HPT_EXPECT(F::ad_caps.hw_dirty);
  HPT_EXPECT_EQ(F::ad_caps.model, DirtyModel::hw_d_saved_dirty);
  HPT_EXPECT(F::mode[0] == (F::levels == 4 ? '4' : '5'));
}

HPT_ARCH_CASE("x86_64", format, ModeNamesSayLevelsGbPagesAndPhysicalWidth) {
  auto eq = [](const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
  };
  HPT_EXPECT(eq(X86_4Level::mode, "4level"));
  HPT_EXPECT(eq(X86_5Level::mode, "5level"));
  HPT_EXPECT(eq(NoGb::mode, "4level-nogb"));
  HPT_EXPECT(eq(Pa46::mode, "4level-pa46"));
  HPT_EXPECT(eq(X86_4Level::arch, "x86_64"));
}

HPT_ARCH_CASE("x86_64", format, WithoutPdpe1gbThePudCannotHoldALeaf) {
  using F = NoGb;
  HPT_EXPECT(!F::leaf_ok(2));
  auto s = leaf_sizes<F>();
  HPT_EXPECT_EQ(s.count, 2u);  // 4K and 2M only (property 117)
  // PS in a PDPTE is reserved without 1G-page support (SDM §4.5: "if 1-GByte pages are not
  // supported, bit 7 is reserved").
  const uint64_t raw = 0x40000000ULL | x::kPS | x::kP;  // 0x40000081
  Entry d = F::decode(raw, 2);
  HPT_EXPECT_EQ(d.kind, Kind::invalid);
  HPT_EXPECT_EQ(d.reason, Reason::reserved_large_page);
  HPT_EXPECT(!F::is_leaf(raw, 2));
  HPT_EXPECT(!F::is_table(raw, 2));
  // The same raw value is a 1G leaf with GBPAGES.
  HPT_EXPECT_EQ(X86_4Level::decode(raw, 2).kind, Kind::leaf);
  HPT_EXPECT_EQ(X86_4Level::decode(raw, 2).addr, 0x40000000ULL);
  // encode refuses a 1G leaf, a 1G PROT_NONE and a PUD swap entry: they need the extension.
  Entry e = leaf(0x40000000ULL, 30, kProtRW);
  HPT_EXPECT_EQ(F::encode(e, 2).err, Err::einval);
  HPT_EXPECT_EQ(F::refusal(e, 2), Reason::extension_absent);
  e.kind = Kind::protnone;
  HPT_EXPECT_EQ(F::refusal(e, 2), Reason::extension_absent);
  HPT_EXPECT_EQ(F::refusal(swap_entry(1, 5, 30), 2), Reason::extension_absent);
  HPT_EXPECT(X86_4Level::encode(swap_entry(1, 5, 30), 2).ok());
  // A non-present, non-none PUD entry has no meaning there, either.
  HPT_EXPECT_EQ(F::decode(X86_4Level::encode(swap_entry(1, 5, 30), 2).value, 2).reason,
                Reason::extension_absent);
  // Tables at the PUD are unaffected.
  HPT_EXPECT_EQ(F::decode(F::make_table(0x5000, 2), 2).kind, Kind::table);
}

HPT_FORMAT_CASE(format, CanonicalAddressesSignExtendTheTopVaBit, X86Formats) {
  using F = Fmt;
  const unsigned v = F::va_bits;
  const uint64_t low_top = bit(v - 1) - 1;          // highest lower-half address
  const uint64_t high_bottom = ~uint64_t{0} << (v - 1);  // lowest upper-half address
  HPT_EXPECT(F::canonical(0));
  HPT_EXPECT(F::canonical(low_top));
  HPT_EXPECT(!F::canonical(low_top + 1));
  HPT_EXPECT(!F::canonical(high_bottom - 1));
  HPT_EXPECT(F::canonical(high_bottom));
  HPT_EXPECT(F::canonical(~uint64_t{0}));
  for (unsigned b = v - 1; b < 64; ++b) HPT_EXPECT(!F::canonical(bit(b) | 0x1000));
  for (unsigned b = 0; b < v - 1; ++b) HPT_EXPECT(F::canonical(bit(b)));
}

// ---- none / property 118 ---------------------------------------------------------------------

HPT_FORMAT_CASE(format, ZeroAndAccessedDirtyOnlyValuesAreNoneAtEveryLevel, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    const uint64_t nones[] = {0, x::kA, x::kD, x::kA | x::kD};
    for (uint64_t raw : nones) {
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.kind, Kind::none);
      HPT_EXPECT_EQ(d.keep, raw);  // the erratum bits survive a rewrite
      HPT_EXPECT_EQ(F::encode(d, l).value, raw);
      HPT_EXPECT(!F::is_leaf(raw, l));
      HPT_EXPECT(!F::is_table(raw, l));
    }
    HPT_EXPECT_EQ(F::encode(Entry{}, l).value, 0ULL);  // generic "clear" writes zero
    // Any other bit makes it not none.
    for (unsigned b = 0; b < 64; ++b) {
      if (bit(b) & x::kKnlErratum) continue;
      HPT_EXPECT(F::decode(bit(b), l).kind != Kind::none);
    }
    // none carries nothing but the erratum bits.
    Entry n;
    n.keep = x::kG;
    HPT_EXPECT_EQ(F::refusal(n, l), Reason::unrepresentable);
    n.keep = 0;
    n.accessed = true;
    HPT_EXPECT_EQ(F::refusal(n, l), Reason::unrepresentable);
  }
}

// ---- leaves ----------------------------------------------------------------------------------

// Every combination of the boolean leaf fields (plus memory type, kind leaf/protnone, and
// a few addresses and kept bits) is either encoded so that decode gives it back exactly, or refused
// for the reason the rules predict.
HPT_FORMAT_CASE(format, EveryLeafFlagSubsetRoundTripsOrIsRefusedForItsReason, X86Formats) {
  using F = Fmt;
  constexpr MemType mems[] = {MemType::normal, MemType::write_through, MemType::noncacheable,
                              MemType::device, MemType::device_nGnRE,  MemType::write_protect,
                              MemType::tagged};
  const uint64_t keeps[] = {0, x::kPkeyMask, bit(52) | bit(57), bit(59) | bit(61) | bit(55)};
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const unsigned sh = F::shift(l);
    const uint64_t addrs[] = {0, bit(sh), mask(sh, 51), (0x5a5a5a5a5a5aULL << 12) & mask(sh, 51)};
    for (unsigned m = 0; m < 2048; ++m) {
      for (unsigned mi = 0; mi < 7; ++mi) {
        Entry e;
        e.kind = (m & 1) ? Kind::protnone : Kind::leaf;
        e.prot.read = true;
        e.prot.write = m & 2;
        e.writable = m & 4;
        e.prot.exec = m & 8;
        e.prot.user = m & 16;
        e.accessed = m & 32;
        e.dirty = m & 64;
        e.global = m & 128;
        e.soft.special = m & 256;
        e.soft.soft_dirty = m & 512;
        e.soft.uffd_wp = m & 1024;
        e.mem = mems[mi];
        e.addr = addrs[(m + mi) % 4];
        e.keep = keeps[(m / 4 + mi) % 4];
        e.shift = static_cast<uint8_t>(sh);

        const bool shadow_clean = e.writable && !e.prot.write && !e.dirty;
        const bool write_not_writable = e.prot.write && !e.writable;
        const bool refuse = shadow_clean || write_not_writable || e.mem == MemType::tagged ||
                            (e.kind == Kind::protnone && e.global);
        Result<uint64_t> r = F::encode(e, l);
        if (refuse) {
          HPT_EXPECT_EQ(r.err, Err::einval);
          HPT_EXPECT_EQ(F::refusal(e, l), Reason::unrepresentable);
          X86_BAIL_IF_NOISY();
          continue;
        }
        if (!HPT_EXPECT(r.ok())) return;
        const uint64_t raw = r.value;
        X86_EXPECT_ENTRY(F::decode(raw, l), e);
        // The bits, checked against the SDM layout rather than against decode.
        const bool leafk = e.kind == Kind::leaf;
        HPT_EXPECT_EQ((raw & x::kP) != 0, leafk);
        HPT_EXPECT_EQ((raw & x::kProtNone) != 0, leafk ? e.global : true);
        if (l >= 1) HPT_EXPECT_EQ(raw & x::kPS, x::kPS);  // at the PTE bit 7 is PAT
        HPT_EXPECT_EQ((raw & x::kRW) != 0, e.prot.write);
        HPT_EXPECT_EQ((raw & x::kUS) != 0, e.prot.user);
        HPT_EXPECT_EQ((raw & x::kXD) != 0, !e.prot.exec);
        HPT_EXPECT_EQ((raw & x::kA) != 0, e.accessed);
        // Dirty: D when writable (RW=1, or a shadow-stack page), else SAVED_DIRTY; never both.
        HPT_EXPECT_EQ((raw & x::kD) != 0, e.dirty && e.writable);
        HPT_EXPECT_EQ((raw & x::kSavedDirty) != 0, e.dirty && !e.writable);
        HPT_EXPECT_EQ((raw & x::kSpecial) != 0, e.soft.special);
        HPT_EXPECT_EQ((raw & x::kSoftDirty) != 0, e.soft.soft_dirty);
        HPT_EXPECT_EQ((raw & x::kUffdWp) != 0, e.soft.uffd_wp);
        const uint64_t pat = l == 0 ? x::kPAT : x::kPATLarge;
        const unsigned idx =
            ((raw & x::kPWT) ? 1u : 0u) | ((raw & x::kPCD) ? 2u : 0u) | ((raw & pat) ? 4u : 0u);
        HPT_EXPECT_EQ(idx, static_cast<unsigned>(x::pat_index(e.mem)));
        HPT_EXPECT_EQ(raw & x::kLeafKeep, e.keep);
        const uint64_t field = mask(sh, 51);
        HPT_EXPECT_EQ(raw & field, leafk ? e.addr : (~e.addr & field));
        if (l >= 1) HPT_EXPECT_EQ(raw & mask(13, sh - 1), 0ULL);
        HPT_EXPECT_EQ(F::is_leaf(raw, l), leafk);
        if (leafk) HPT_EXPECT_EQ(F::out_addr(raw, l), e.addr);
        X86_BAIL_IF_NOISY();
      }
    }
  }
}

// Every combination of a present leaf's flag bits decodes as a leaf, and re-encodes to the same
// raw value, or to its documented canonical spelling when there are two.
HPT_FORMAT_CASE(format, EveryPresentLeafBitPatternRoundTripsToItsCanonicalSpelling, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const unsigned sh = F::shift(l);
    const uint64_t pat = l == 0 ? x::kPAT : x::kPATLarge;
    const uint64_t vary[] = {x::kRW, x::kUS,  x::kPWT, x::kPCD,        x::kA,  x::kD, x::kG,
                        bit(9), bit(10), bit(11), x::kSavedDirty, x::kXD, pat};
    const uint64_t addr = (0x3c3c3c3c3c3cULL << 12) & mask(sh, 51);
    for (unsigned m = 0; m < (1u << 13); ++m) {
      uint64_t raw = x::kP | addr | (l >= 1 ? x::kPS : 0);
      for (unsigned b = 0; b < 13; ++b)
        if (m & (1u << b)) raw |= vary[b];
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.kind, Kind::leaf);
      HPT_EXPECT_EQ(d.addr, addr);
      HPT_EXPECT_EQ(unsigned{d.shift}, sh);
      HPT_EXPECT(F::is_leaf(raw, l));
      HPT_EXPECT(!F::is_table(raw, l));
      HPT_EXPECT_EQ(F::out_addr(raw, l), addr);
      // Linux's pte_dirty / pte_write.
      HPT_EXPECT_EQ(d.dirty, (raw & (x::kD | x::kSavedDirty)) != 0);
      HPT_EXPECT_EQ(d.writable, (raw & (x::kRW | x::kD)) != 0);
      HPT_EXPECT_EQ(d.prot.write, (raw & x::kRW) != 0);
      Result<uint64_t> r = F::encode(d, l);
      HPT_ASSERT(r.ok());
      const uint64_t canon = canonical_spelling<F>(raw, l);
      HPT_EXPECT_EQ(r.value, canon);
      X86_EXPECT_ENTRY(F::decode(canon, l), d);
      X86_BAIL_IF_NOISY();
    }
  }
}

HPT_FORMAT_CASE(format, EveryProtNoneBitPatternRoundTripsToItsCanonicalSpelling, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    const unsigned sh = F::shift(l);
    const uint64_t pat = l == 0 ? x::kPAT : x::kPATLarge;
    // Bit 8 varies too: at the PMD/PUD, PS without PROTNONE is pmd_mkinvalid's spelling.
    const uint64_t vary[] = {x::kRW,  x::kUS,  x::kPWT,        x::kPCD, x::kA, x::kD,       bit(9),
                        bit(10), bit(11), x::kSavedDirty, x::kXD,  pat,   x::kProtNone};
    const uint64_t addr = (0x0f0f0f0f0f0fULL << 12) & mask(sh, 51);
    for (unsigned m = 0; m < (1u << 13); ++m) {
      uint64_t raw = (~addr & mask(sh, 51)) | (l >= 1 ? x::kPS : 0);
      for (unsigned b = 0; b < 13; ++b)
        if (m & (1u << b)) raw |= vary[b];
      if (l == 0 && !(raw & x::kProtNone)) continue;  // a swap entry, not PROT_NONE
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.kind, Kind::protnone);
      HPT_EXPECT_EQ(d.addr, addr);
      HPT_EXPECT(!d.global);
      HPT_EXPECT(!F::is_leaf(raw, l));  // invalid to the hardware
      HPT_EXPECT(!F::is_table(raw, l));
      Result<uint64_t> r = F::encode(d, l);
      HPT_ASSERT(r.ok());
      const uint64_t canon = canonical_spelling<F>(raw, l);
      HPT_EXPECT_EQ(r.value, canon);
      HPT_EXPECT(r.value & x::kProtNone);
      X86_EXPECT_ENTRY(F::decode(canon, l), d);
      X86_BAIL_IF_NOISY();
    }
  }
}

// ---- tables ----------------------------------------------------------------------------------

HPT_FORMAT_CASE(format, EveryTableEntryBitPatternRoundTripsExactly, X86Formats) {
  using F = Fmt;
  const uint64_t vary[] = {x::kRW, x::kUS, x::kPWT, x::kPCD, x::kA,   x::kD,
                      x::kG,  bit(9), bit(11), bit(52), bit(58), x::kXD};
  for (unsigned l = 1; l < F::levels; ++l) {
    const uint64_t addr = 0x000ABCDEF0123000ULL;
    for (unsigned m = 0; m < (1u << 12); ++m) {
      uint64_t raw = x::kP | addr;
      for (unsigned b = 0; b < 12; ++b)
        if (m & (1u << b)) raw |= vary[b];
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.kind, Kind::table);
      HPT_EXPECT_EQ(d.addr, addr);
      HPT_EXPECT_EQ(d.prot.write, (raw & x::kRW) != 0);
      HPT_EXPECT_EQ(d.prot.user, (raw & x::kUS) != 0);
      HPT_EXPECT_EQ(d.prot.exec, (raw & x::kXD) == 0);
      HPT_EXPECT_EQ(d.accessed, (raw & x::kA) != 0);
      HPT_EXPECT(F::is_table(raw, l));
      HPT_EXPECT(!F::is_leaf(raw, l));
      HPT_EXPECT_EQ(F::out_addr(raw, l), addr);
      HPT_EXPECT_EQ(F::encode(d, l).value, raw);  // one spelling only
      X86_BAIL_IF_NOISY();
    }
  }
}

// pmd_populate & co. write _PAGE_TABLE = P|RW|US|A|D (properties 62, 76, 81, 82: !*_bad).
HPT_FORMAT_CASE(format, MakeTableWritesLinuxPageTableFlags, X86Formats) {
  using F = Fmt;
  for (unsigned l = 1; l < F::levels; ++l) {
    const uint64_t pa = 0x0000123456789000ULL;
    const uint64_t raw = F::make_table(pa, l);
    HPT_EXPECT_EQ(raw, pa | 0x67);  // 0x67 = P(1) | RW(2) | US(4) | A(0x20) | D(0x40)
    Entry d = F::decode(raw, l);
    HPT_EXPECT_EQ(d.kind, Kind::table);
    HPT_EXPECT_EQ(d.addr, pa);
    HPT_EXPECT(d.prot == (Prot{true, true, true, true}));
    HPT_EXPECT(d.accessed);
    HPT_EXPECT_EQ(d.keep, x::kD);  // ignored in a table; Linux sets it anyway
    HPT_EXPECT(F::is_table(raw, l));
    HPT_EXPECT_EQ(F::encode(d, l).value, raw);
    // Table entries only exist above the PTE.
    HPT_EXPECT_EQ(F::refusal(d, 0), Reason::table_not_allowed);
  }
}

HPT_FORMAT_CASE(format, TableEncodeRefusesWhatATableCannotHold, X86Formats) {
  using F = Fmt;
  Entry t = F::decode(F::make_table(0x5000, 1), 1);
  Entry e = t;
  e.addr = 0x5800;
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::misaligned_output);
  e = t;
  e.addr = bit(52);
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::output_beyond_pa);
  e = t;
  e.mem = MemType::write_protect;  // PAT index 5 needs the PAT bit, which tables do not have
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e.mem = MemType::device;  // index 3 = PCD|PWT is fine
  HPT_EXPECT_EQ(F::encode(e, 1).value, 0x5000ULL | 0x67 | x::kPCD | x::kPWT);
  e = t;
  e.dirty = true;  // a table has no dirty state to store
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = t;
  e.global = true;
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = t;
  e.keep = x::kPkeyMask;  // bits 59-62 are ignored in tables, so they are kept
  HPT_EXPECT(F::encode(e, 1).ok());
  e.keep = bit(4);
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  HPT_EXPECT_EQ(F::refusal(t, F::levels), Reason::unrepresentable);  // no such level
}

// ---- hot path agrees with decode, and decode never fails --------------------------------------

HPT_FORMAT_CASE(format, HotPathPredicatesAgreeWithDecodeOnRandomEntries, X86Formats) {
  using F = Fmt;
  Rng rng{0x5eed0086u + F::levels};
  for (unsigned i = 0; i < 3000; ++i) {
    const uint64_t r = rng.next();
    uint64_t raw = r;
    switch (i % 8) {
      case 0:
        break;  // anything
      case 1:
        raw = (r & ~mask(13, 29)) | x::kP;
        break;  // present, no rsvd
      case 2:
        raw = r & ~x::kP;
        break;  // not present
      case 3:
        raw = (r & (mask(0, 12) | mask(30, 40))) | x::kP | x::kPS;
        break;  // large
      case 4:
        raw = r & (mask(0, 12) | x::kSavedDirty | x::kXD | mask(21, 30));
        break;
      case 5:
        raw = r & ~(x::kP | bit(7) | x::kProtNone);
        break;  // swap-like
      case 6:
        raw = ((r & ~x::kP) | x::kProtNone | x::kPS) & ~mask(13, 29);
        break;
      case 7:
        raw = r & x::kKnlErratum;
        break;  // none-ish
    }
    for (unsigned l = 0; l < F::levels; ++l) {
      const Entry d = F::decode(raw, l);
      // decode never fails: invalid carries a reason, everything else none.
      HPT_EXPECT_EQ(d.kind == Kind::invalid, d.reason != Reason::none);
      HPT_EXPECT_EQ(F::is_table(raw, l), d.kind == Kind::table);
      HPT_EXPECT_EQ(F::is_leaf(raw, l), d.kind == Kind::leaf);
      if (d.kind == Kind::table || d.kind == Kind::leaf) HPT_EXPECT_EQ(F::out_addr(raw, l), d.addr);
      HPT_EXPECT_EQ(unsigned{d.cont_shift}, 0u);
      if (valid_kind<F>(d.kind)) {
        Result<uint64_t> e = F::encode(d, l);
        if (!HPT_EXPECT(e.ok())) {
          hpt::out("      raw ");
          hpt::out_u64(raw, 16);
          hpt::out(" refused: ");
          hpt::out(reason_name(F::refusal(d, l)));
          hpt::out("\n");
          return;
        }
        HPT_EXPECT_EQ(e.value, canonical_spelling<F>(raw, l));
        X86_EXPECT_ENTRY(F::decode(e.value, l), d);
      }
      X86_BAIL_IF_NOISY();
    }
  }
}

// ---- invalid encodings -----------------------------------------------------------------------

// 2M/1G leaves: bit 12 is PAT, and bits 13..20 / 13..29 are reserved. The CPU faults with
// PFEC.RSVD=1 instead of translating, so decode says invalid. encode refuses an unaligned address.
HPT_FORMAT_CASE(format, LargeLeafReservedBitsAreInvalidNotATranslation, X86Formats) {
  using F = Fmt;
  for (unsigned l = 1; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    for (unsigned b = 13; b < sh; ++b) {
      const uint64_t raw = bit(sh) | bit(b) | x::kPS | x::kRW | x::kP;
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.kind, Kind::invalid);
      HPT_EXPECT_EQ(d.reason, Reason::reserved_bits);
      HPT_EXPECT(!F::is_leaf(raw, l));
      HPT_EXPECT(!F::is_table(raw, l));
      // The same bits in a PROT_NONE huge entry are not a frame that Linux could have written.
      const uint64_t pn = (~bit(sh) & mask(sh, 51)) | bit(b) | x::kPS | x::kProtNone;
      HPT_EXPECT_EQ(F::decode(pn, l).reason, Reason::reserved_bits);
      // encode: the corresponding unaligned output address.
      Entry e = leaf(bit(sh) | bit(b), sh, kProtRW);
      HPT_EXPECT_EQ(F::encode(e, l).err, Err::einval);
      HPT_EXPECT_EQ(F::refusal(e, l), Reason::misaligned_output);
      e.kind = Kind::protnone;
      HPT_EXPECT_EQ(F::refusal(e, l), Reason::misaligned_output);
    }
    // Bit 12 is PAT (index 4 = WB), so a large leaf at +4K is a valid WB leaf, but an
    // encode of the address +4K is unaligned.
    const uint64_t raw12 = bit(sh) | x::kPATLarge | x::kPS | x::kP;
    HPT_EXPECT_EQ(F::decode(raw12, l).kind, Kind::leaf);
    HPT_EXPECT_EQ(F::decode(raw12, l).addr, bit(sh));
    HPT_EXPECT_EQ(F::refusal(leaf(bit(sh) + 0x1000, sh, kProtR), l), Reason::misaligned_output);
  }
  // A 4K PTE has no such bits: every address bit from 12 up is the frame.
  HPT_EXPECT_EQ(F::decode(0x3000 | x::kP, 0).kind, Kind::leaf);
  HPT_EXPECT_EQ(F::refusal(leaf(0x3800, 12, kProtR), 0), Reason::misaligned_output);
}

// PS=1 is reserved in PML4 (and PML5) entries: no 512G/256T pages exist.
HPT_FORMAT_CASE(format, PageSizeBitAboveThePudIsReserved, X86Formats) {
  using F = Fmt;
  for (unsigned l = 3; l < F::levels; ++l) {
    const uint64_t raw = 0x8000000000ULL | x::kPS | x::kRW | x::kP;
    Entry d = F::decode(raw, l);
    HPT_EXPECT_EQ(d.kind, Kind::invalid);
    HPT_EXPECT_EQ(d.reason, Reason::reserved_large_page);
    HPT_EXPECT(!F::is_leaf(raw, l));
    HPT_EXPECT(!F::is_table(raw, l));
    // encode refuses every leaf-like kind there.
    Entry e = leaf(bit(F::shift(l)), F::shift(l), kProtRW);
    HPT_EXPECT_EQ(F::encode(e, l).err, Err::einval);
    HPT_EXPECT_EQ(F::refusal(e, l), Reason::leaf_not_allowed);
    e.kind = Kind::protnone;
    HPT_EXPECT_EQ(F::refusal(e, l), Reason::leaf_not_allowed);
    HPT_EXPECT_EQ(F::refusal(swap_entry(3, 77, F::shift(l)), l), Reason::leaf_not_allowed);
    // Linux puts no swap or PROT_NONE entries up here either: decode calls them invalid.
    const uint64_t sw = X86_4Level::encode(swap_entry(3, 77, 12), 0).value;
    HPT_EXPECT_EQ(F::decode(sw, l).kind, Kind::invalid);
    HPT_EXPECT_EQ(F::decode(sw, l).reason, Reason::leaf_not_allowed);
    HPT_EXPECT_EQ(F::decode(x::kProtNone, l).reason, Reason::leaf_not_allowed);
  }
}

HPT_FORMAT_CASE(format, OutputAddressBeyondMaxPhyAddrIsRefused, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    Entry e = leaf(bit(52), sh, kProtRW);
    HPT_EXPECT_EQ(F::encode(e, l).err, Err::einval);
    HPT_EXPECT_EQ(F::refusal(e, l), Reason::output_beyond_pa);
    e.addr = mask(sh, 51);  // the highest frame is fine
    HPT_EXPECT(F::encode(e, l).ok());
  }
  Entry t = F::decode(F::make_table(0x1000, 1), 1);
  t.addr = bit(55);
  HPT_EXPECT_EQ(F::refusal(t, 1), Reason::output_beyond_pa);
}

// With a MAXPHYADDR below 52 (QEMU's qemu64 CPU reports 40), entry bits [MAXPHYADDR, 51] are
// reserved in every present entry (SDM §4.5.4: "Reserved (must be 0)").
HPT_ARCH_CASE("x86_64", format, BitsAboveMaxPhyAddrAreReservedInPresentEntries) {
  using F = Pa46;
  HPT_EXPECT_EQ(F::pa_bits, 46u);
  for (unsigned l = 0; l < F::levels; ++l) {
    for (unsigned b = 46; b <= 51; ++b) {
      const uint64_t raw = bit(b) | 0x1000 | x::kP;  // a table (l >= 1) or 4K leaf but for bit b
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.kind, Kind::invalid);
      HPT_EXPECT_EQ(d.reason, Reason::reserved_bits);
      HPT_EXPECT(!F::is_leaf(raw, l));
      HPT_EXPECT(!F::is_table(raw, l));
    }
    if (l >= 1) HPT_EXPECT_EQ(F::decode(mask(12, 45) | x::kP, l).kind, Kind::table);
    // Bits 52..62 are ignored, not reserved.
    HPT_EXPECT(F::decode(mask(52, 62) | 0x1000 | x::kP, l).kind != Kind::invalid);
  }
  HPT_EXPECT_EQ(F::refusal(leaf(bit(46), 12, kProtR), 0), Reason::output_beyond_pa);
  HPT_EXPECT(F::encode(leaf(mask(12, 45), 12, kProtR), 0).ok());
  // PROT_NONE keeps Linux's 52-bit inversion: bits 46..51 of the raw value end up set,
  // pointing the non-present entry above any real memory.
  Entry pn = leaf(0x1000, 12, kProtNone);
  pn.prot.read = true;
  pn.kind = Kind::protnone;
  const uint64_t raw = F::encode(pn, 0).value;
  HPT_EXPECT_EQ(raw & mask(46, 51), mask(46, 51));
  X86_EXPECT_ENTRY(F::decode(raw, 0), pn);
  // Without those set, the frame would lie beyond MAXPHYADDR.
  HPT_EXPECT_EQ(F::decode(raw & ~bit(47), 0).reason, Reason::output_beyond_pa);
}

// docs/arch.md §6.2, property 121: a swap entry has bits 0, 7 and 8 clear. At the PTE, bit 7
// (PAT) set in a non-present entry is neither swap nor PROT_NONE.
HPT_FORMAT_CASE(format, NonPresentPteWithBit7IsNeitherSwapNorProtNone, X86Formats) {
  using F = Fmt;
  const uint64_t sw = F::encode(swap_entry(2, 12345, 12), 0).value;
  Entry d = F::decode(sw | bit(7), 0);
  HPT_EXPECT_EQ(d.kind, Kind::invalid);
  HPT_EXPECT_EQ(d.reason, Reason::reserved_bits);
  // At the PMD the same bit is PS (pmd_present): never a swap entry there.
  HPT_EXPECT(F::decode(sw | bit(7), 1).kind != Kind::swap);
  // At the PMD, PROT_NONE without PS would be a PROT_NONE table pointer: Linux never writes one.
  const uint64_t pn = (~uint64_t{0x200000} & mask(21, 51)) | x::kProtNone;
  HPT_EXPECT_EQ(F::decode(pn, 1).kind, Kind::invalid);
  HPT_EXPECT_EQ(F::decode(pn, 1).reason, Reason::unrepresentable);
  HPT_EXPECT_EQ(F::decode(pn | x::kPS, 1).kind, Kind::protnone);
}

HPT_FORMAT_CASE(format, EncodeRefusesWhatX86CannotExpress, X86Formats) {
  using F = Fmt;
  Entry base = leaf(0x200000, 21, kProtRW);
  HPT_ASSERT(F::encode(base, 1).ok());
  Entry e = base;
  e.mem = MemType::tagged;  // arm64 MTE has no x86 PAT type
  HPT_EXPECT_EQ(F::encode(e, 1).err, Err::einval);
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = base;
  e.prot.read = false;  // P=1 always allows reads
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = base;
  e.writable =
      false;  // RW=1 is Linux's write bit, so "hardware-writable but not writable" is nonsense
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = wrprotect(base);
  e.writable = true;  // writable without RW = shadow stack, which needs D
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e.dirty = true;
  HPT_EXPECT(F::encode(e, 1).ok());
  e = base;
  e.cont_shift = 25;  // no contiguous groups on x86
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = base;
  e.shift = 12;  // a 4K size at the PMD
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = base;
  e.kind = Kind::protnone;
  e.global = true;  // bit 8 is PROTNONE when P=0
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = base;
  e.keep = bit(4);  // PCD, a modelled bit, cannot be smuggled through keep
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = base;
  e.swp.type = 3;  // a leaf stores no swap fields
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = base;
  e.kind = Kind::invalid;
  e.reason = Reason::reserved_bits;
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  e = base;
  e.reason = Reason::reserved_bits;
  HPT_EXPECT_EQ(F::refusal(e, 1), Reason::unrepresentable);
  HPT_EXPECT_EQ(F::refusal(base, 1), Reason::none);
}

// ---- PROT_NONE, pmd_mkinvalid (properties 23, 55, 119, 54, 128) -------------------------------

HPT_FORMAT_CASE(format, ProtNoneIsPresentToSoftwareButInvalidToHardware, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    const uint64_t pa = bit(sh) * 5;
    // pfn_pte(pfn, PAGE_NONE) as Linux writes it, then (above the PTE) pmd_mkhuge.
    const uint64_t raw = linux_pfn_entry<F>(pa, linux_page_prot(0), l);
    HPT_EXPECT_EQ(raw & x::kP, 0ULL);  // !(hardware-valid bit)
    HPT_EXPECT_EQ(raw & x::kProtNone, x::kProtNone);
    Entry d = F::decode(raw, l);
    HPT_EXPECT_EQ(d.kind, Kind::protnone);  // pte_present && pte_protnone
    HPT_EXPECT_EQ(d.addr, pa);              // pte_pfn undoes the L1TF inversion
    HPT_EXPECT_EQ(unsigned{d.shift}, sh);
    HPT_EXPECT(d.accessed);
    HPT_EXPECT(!F::is_leaf(raw, l));
    HPT_EXPECT_EQ(F::encode(d, l).value, raw);  // bit-exact with Linux
    // Turning a leaf into PROT_NONE and back keeps the frame and flags.
    Entry lf = leaf(pa, sh, kProtRWX, true);
    lf.soft.soft_dirty = true;
    Entry pn = lf;
    pn.kind = Kind::protnone;
    Entry back = via_raw<F>(hpt_ctx, pn, l);
    X86_EXPECT_ENTRY(back, pn);
    back.kind = Kind::leaf;
    X86_EXPECT_ENTRY(via_raw<F>(hpt_ctx, back, l), lf);
  }
}

// L1TF: a non-present entry's frame bits must not name real memory, so Linux stores them inverted.
HPT_ARCH_CASE("x86_64", format, ProtNoneFrameIsStoredInvertedAgainstL1tf) {
  using F = X86_4Level;
  // pa 0x1000 at the PTE: mask(12,51) ^ 0x1000 = 0x000FFFFFFFFFF000 ^ 0x1000 = 0x000FFFFFFFFFE000.
  // PAGE_NONE flags = PROTNONE(0x100) | A(0x20) = 0x120.
  const uint64_t raw = 0x000FFFFFFFFFE120ULL;
  HPT_EXPECT_EQ(linux_pfn_entry<F>(0x1000, 0x120, 0), raw);
  Entry d = F::decode(raw, 0);
  HPT_EXPECT_EQ(d.kind, Kind::protnone);
  HPT_EXPECT_EQ(d.addr, 0x1000ULL);
  HPT_EXPECT(d.prot == (Prot{true, false, true, false}));  // stored bits: no RW/US, no XD
  HPT_EXPECT(d.accessed);
  HPT_EXPECT(!d.dirty);
  HPT_EXPECT_EQ(F::encode(d, 0).value, raw);
}

// pmd_mkinvalid (THP split) clears P and PROTNONE, keeps PS and re-stores the frame inverted. The
// entry stays present to software via PS (property 128), and it is still a huge leaf
// (property 54).
HPT_FORMAT_CASE(format, PmdMkinvalidStaysPresentThroughPs, X86Formats) {
  using F = Fmt;
  for (unsigned l = 1; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    const uint64_t pa = bit(sh) * 3;
    Entry lf = leaf(pa, sh, kProtRW, true);
    lf.prot.user = true;
    lf.soft.uffd_wp = true;
    const uint64_t raw = raw_of<F>(hpt_ctx, lf, l);
    // Linux: pfn_pmd(pmd_pfn(pmd), pmd_flags(pmd) & ~(P|PROTNONE)).
    const uint64_t flags = raw & ~mask(sh, 51) & ~(x::kP | x::kProtNone);
    const uint64_t inval = linux_pfn_entry<F>(pa, flags, l);
    HPT_EXPECT_EQ(inval & (x::kP | x::kProtNone), 0ULL);
    HPT_EXPECT_EQ(inval & x::kPS, x::kPS);
    Entry d = F::decode(inval, l);
    HPT_EXPECT_EQ(d.kind, Kind::protnone);  // pmd_present; invalid to hardware
    HPT_EXPECT(!F::is_leaf(inval, l));
    HPT_EXPECT_EQ(unsigned{d.shift}, sh);  // pmd_trans_huge / pmd_leaf: still one huge entry
    HPT_EXPECT_EQ(d.addr, pa);
    HPT_EXPECT(d.writable && d.dirty && d.soft.uffd_wp && d.prot.user);
    // In the vocabulary, mkinvalid is leaf -> protnone; encode spells it PROTNONE|PS.
    Entry want = lf;
    want.kind = Kind::protnone;
    X86_EXPECT_ENTRY(d, want);
    HPT_EXPECT_EQ(F::encode(want, l).value, inval | x::kProtNone);
  }
}

// ---- dirty, write, shadow stack ---------------------------------------------------------------

HPT_FORMAT_CASE(format, SavedDirtyKeepsReadOnlyDirtyPagesOffTheShadowStack, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    Entry e = leaf(bit(sh), sh, kProtRW, true);
    const uint64_t w = raw_of<F>(hpt_ctx, e, l);
    HPT_EXPECT_EQ(w & (x::kRW | x::kD | x::kSavedDirty), x::kRW | x::kD);
    // pte_wrprotect moves D into SAVED_DIRTY: W=0,D=1 would make it a shadow-stack page.
    const uint64_t ro = raw_of<F>(hpt_ctx, wrprotect(F::decode(w, l)), l);
    HPT_EXPECT_EQ(ro & (x::kRW | x::kD | x::kSavedDirty), x::kSavedDirty);
    HPT_EXPECT(F::decode(ro, l).dirty);
    HPT_EXPECT(!F::decode(ro, l).writable);
    // pte_mkwrite_novma moves it back.
    const uint64_t rw = raw_of<F>(hpt_ctx, mkwrite(F::decode(ro, l)), l);
    HPT_EXPECT_EQ(rw, w);
    // pte_mkclean clears both.
    const uint64_t clean = raw_of<F>(hpt_ctx, mkclean(F::decode(ro, l)), l);
    HPT_EXPECT_EQ(clean & (x::kD | x::kSavedDirty), 0ULL);
    // The CPU sets D on a write through RW=1: hardware dirty reads as dirty.
    const uint64_t hw = raw_of<F>(hpt_ctx, leaf(bit(sh), sh, kProtRW), l) | x::kD;
    HPT_EXPECT(F::decode(hw, l).dirty);
  }
}

// With CET shadow stacks, W=0,D=1 is a shadow-stack page: Linux's pte_write is true, ordinary
// writes fault (prot.write false), and it is dirty. It round-trips exactly.
HPT_FORMAT_CASE(format, ShadowStackSpellingIsWritableDirtyButReadOnlyToHardware, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    const uint64_t raw = bit(sh) | x::kD | x::kA | x::kUS | x::kP | (l ? x::kPS : 0);
    Entry d = F::decode(raw, l);
    HPT_EXPECT_EQ(d.kind, Kind::leaf);
    HPT_EXPECT(d.writable);
    HPT_EXPECT(!d.prot.write);
    HPT_EXPECT(d.dirty);
    HPT_EXPECT_EQ(F::encode(d, l).value, raw);
    // wrprotect turns it into an ordinary read-only dirty page (SAVED_DIRTY).
    const uint64_t ro = raw_of<F>(hpt_ctx, wrprotect(d), l);
    HPT_EXPECT_EQ(ro, (raw & ~x::kD) | x::kSavedDirty);
  }
}

// ---- software bits, memory types, kept bits (properties 22, 24, 25, 56, 101, 126) ---------------

HPT_FORMAT_CASE(format, SpecialUffdWpAndSoftDirtyLiveInSoftwareBits9To11, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    const Entry e = leaf(bit(sh), sh, kProtRW);
    const uint64_t base = raw_of<F>(hpt_ctx, e, l);
    Entry s = e;
    s.soft.special = true;  // pte_mkspecial
    HPT_EXPECT_EQ(raw_of<F>(hpt_ctx, s, l), base | bit(9));
    HPT_EXPECT(via_raw<F>(hpt_ctx, s, l).soft.special);
    s = e;
    s.soft.uffd_wp = true;  // pte_mkuffd_wp (the generic code also wrprotects)
    s = wrprotect(s);
    HPT_EXPECT_EQ(raw_of<F>(hpt_ctx, s, l), (base & ~x::kRW) | bit(10));
    Entry u = via_raw<F>(hpt_ctx, s, l);
    HPT_EXPECT(u.soft.uffd_wp && !u.writable);  // property 101
    u.soft.uffd_wp = false;
    HPT_EXPECT(!via_raw<F>(hpt_ctx, u, l).soft.uffd_wp);
    s = e;
    s.soft.soft_dirty = true;  // pte_mksoft_dirty / pmd_mksoft_dirty
    HPT_EXPECT_EQ(raw_of<F>(hpt_ctx, s, l), base | bit(11));
    Entry sd = via_raw<F>(hpt_ctx, s, l);
    HPT_EXPECT(sd.soft.soft_dirty);
    sd.soft.soft_dirty = false;  // pte_clear_soft_dirty
    HPT_EXPECT(!via_raw<F>(hpt_ctx, sd, l).soft.soft_dirty);
    // NX = bit 63.
    Entry nx = e;
    nx.prot.exec = false;
    HPT_EXPECT_EQ(
        raw_of<F>(hpt_ctx, nx, l) ^ raw_of<F>(hpt_ctx, mkwrite(leaf(bit(sh), sh, kProtRWX)), l),
        x::kXD);
  }
}

HPT_FORMAT_CASE(format, MemoryTypesFollowLinuxPatProgramming, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    const uint64_t pat = l == 0 ? x::kPAT : x::kPATLarge;
    const uint64_t base = bit(sh) | x::kP | (l ? x::kPS : 0);
    for (unsigned idx = 0; idx < 8; ++idx) {
      const uint64_t raw =
          base | ((idx & 1) ? x::kPWT : 0) | ((idx & 2) ? x::kPCD : 0) | ((idx & 4) ? pat : 0);
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.mem, x::kPatType[idx]);
      // encode picks the lowest index naming that type: 4 -> 0, 6 -> 2.
      const uint64_t want_idx = idx == 4 ? 0 : idx == 6 ? 2 : idx;
      const uint64_t enc = F::encode(d, l).value;
      const uint64_t got_idx =
          ((enc & x::kPWT) ? 1 : 0) | ((enc & x::kPCD) ? 2 : 0) | ((enc & pat) ? 4 : 0);
      HPT_EXPECT_EQ(got_idx, want_idx);
    }
  }
  // The table: WB, WC, UC-, UC, WB, WP, UC-, WT.
  HPT_EXPECT_EQ(x::pat_index(MemType::normal), 0);
  HPT_EXPECT_EQ(x::pat_index(MemType::noncacheable), 1);
  HPT_EXPECT_EQ(x::pat_index(MemType::device_nGnRE), 2);
  HPT_EXPECT_EQ(x::pat_index(MemType::device), 3);
  HPT_EXPECT_EQ(x::pat_index(MemType::write_protect), 5);
  HPT_EXPECT_EQ(x::pat_index(MemType::write_through), 7);
  HPT_EXPECT_EQ(x::pat_index(MemType::tagged), -1);
}

HPT_FORMAT_CASE(format, ProtectionKeysAndIgnoredBitsSurviveDecodeEncode, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    for (uint64_t key = 0; key < 16; ++key) {
      const uint64_t raw =
          raw_of<F>(hpt_ctx, leaf(bit(sh), sh, kProtRW), l) | (key << 59) | bit(53);
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.keep, (key << 59) | bit(53));
      // Changing vocabulary fields keeps the key (a pte_modify-like change).
      const uint64_t ro = raw_of<F>(hpt_ctx, mkdirty(wrprotect(d)), l);
      HPT_EXPECT_EQ(ro & x::kPkeyMask, key << 59);
      HPT_EXPECT_EQ(ro & bit(53), bit(53));
      // PROT_NONE keeps it too.
      Entry pn = d;
      pn.kind = Kind::protnone;
      HPT_EXPECT_EQ(raw_of<F>(hpt_ctx, pn, l) & x::kPkeyMask, key << 59);
    }
  }
}

// ---- swap, migration, markers (properties 26-33, 57, 58, 120, 121) -----------------------------

HPT_FORMAT_CASE(format, SwapEntriesRoundTripAtFieldEdges, X86Formats) {
  using F = Fmt;
  const uint64_t max_off = bit(50) - 1;
  const uint64_t offsets[] = {0, 1, 0x2aaaaaaaaaaaaULL, bit(49), max_off - 1, max_off};
  for (unsigned l = 0; l <= 2; ++l) {
    for (uint32_t type = 0; type < 32; ++type) {
      for (uint64_t off : offsets) {
        for (unsigned fl = 0; fl < 8; ++fl) {
          Entry e = swap_entry(type, off, F::shift(l));
          e.swp.soft_dirty = fl & 1;
          e.swp.uffd_wp = fl & 2;
          e.swp.exclusive = fl & 4;
          Result<uint64_t> r = F::encode(e, l);
          if (type == 0 && off == max_off && fl == 0) {
            // ~offset is all zeros: the raw value would be 0, i.e. none.
            HPT_EXPECT_EQ(r.err, Err::einval);
            HPT_EXPECT_EQ(F::refusal(e, l), Reason::bad_swap);
            continue;
          }
          HPT_ASSERT(r.ok());
          const uint64_t raw = r.value;
          // Layout (121): type 59-63, ~offset 9-58, flags 1/2/3, bits 0, 7, 8 clear.
          HPT_EXPECT_EQ(raw >> 59, uint64_t{type});
          HPT_EXPECT_EQ((~raw >> 9) & max_off, off);
          HPT_EXPECT_EQ(raw & (x::kP | bit(7) | x::kProtNone), 0ULL);
          HPT_EXPECT_EQ((raw >> 1) & 7, uint64_t{fl});
          HPT_EXPECT_EQ(raw & (bit(4) | x::kA | x::kD), 0ULL);
          Entry d = F::decode(raw, l);
          X86_EXPECT_ENTRY(d, e);
          HPT_EXPECT(!F::is_leaf(raw, l) && !F::is_table(raw, l));
          HPT_EXPECT_EQ(F::encode(d, l).value, raw);  // property 30: bit-for-bit
          X86_BAIL_IF_NOISY();
        }
      }
    }
  }
}

HPT_FORMAT_CASE(format, SwapFlagsDoNotOverlapTypeOffsetOrEachOther, X86Formats) {
  using F = Fmt;
  // swp_entry = swp_entry(MAX_SWAPFILES - 1, max offset); debug_vm_pgtable finds the max offset by
  // round-tripping ~0 through the arch encoding: 50 bits here.
  const uint64_t max_off = bit(x::kSwpOffsetBits) - 1;
  for (unsigned l = 0; l <= 2; ++l) {
    const Entry e = swap_entry(kMaxSwapFiles - 1, max_off, F::shift(l));
    const uint64_t pte = raw_of<F>(hpt_ctx, e, l);
    Entry d = F::decode(pte, l);
    HPT_EXPECT_EQ(d.kind, Kind::swap);  // is_swap_pte / softleaf_is_swap (26, 27)
    HPT_EXPECT(!d.swp.exclusive);       // 27
    const struct {
      bool Swap::*flag;
      uint64_t bit;
    } flags[] = {{&Swap::soft_dirty, x::kSwpSoftDirty},
                 {&Swap::uffd_wp, x::kSwpUffdWp},
                 {&Swap::exclusive, x::kSwpExclusive}};
    for (const auto& f : flags) {
      Entry s = d;
      s.swp.*f.flag = true;  // pte_swp_mk*
      const uint64_t raw = raw_of<F>(hpt_ctx, s, l);
      HPT_EXPECT_EQ(raw, pte | f.bit);  // its own bit, nothing else (120)
      Entry back = F::decode(raw, l);
      HPT_EXPECT_EQ(back.kind, Kind::swap);
      HPT_EXPECT_EQ(back.swp.type, e.swp.type);  // entry unchanged (28)
      HPT_EXPECT_EQ(back.swp.offset, e.swp.offset);
      HPT_EXPECT(back.swp.*f.flag);
      for (const auto& g : flags)
        if (g.bit != f.bit) HPT_EXPECT(!(back.swp.*g.flag));  // 28: !soft_dirty after mkexclusive
      back.swp.*f.flag = false;                               // pte_swp_clear_* (26, 29)
      HPT_EXPECT_EQ(raw_of<F>(hpt_ctx, back, l), pte);
    }
    // The three flag bits, type and offset fields are pairwise disjoint.
    const uint64_t type_f = mask(59, 63), off_f = mask(9, 58);
    HPT_EXPECT_EQ(type_f & off_f, 0ULL);
    HPT_EXPECT_EQ((x::kSwpSoftDirty | x::kSwpUffdWp | x::kSwpExclusive) & (type_f | off_f), 0ULL);
  }
}

HPT_FORMAT_CASE(format, MigrationEntriesAreSwapTypesCarryingTheFrame, X86Formats) {
  using F = Fmt;
  const uint64_t pfn = 0x123456789ULL;  // a 40-bit frame number (52-bit PA)
  for (unsigned l = 0; l <= 2; ++l) {
    // make_writable_migration_entry(pfn) (31)
    Entry w = swap_entry(kSwpMigrationWrite, pfn, F::shift(l));
    Entry dw = via_raw<F>(hpt_ctx, w, l);
    HPT_EXPECT_EQ(dw.kind, Kind::swap);
    HPT_EXPECT_EQ(dw.swp.type, kSwpMigrationWrite);
    HPT_EXPECT_EQ(dw.swp.offset, pfn);
    // make_readable_migration_entry(swp_offset(e)) (32, 33)
    Entry r = swap_entry(kSwpMigrationRead, dw.swp.offset, F::shift(l));
    Entry dr = via_raw<F>(hpt_ctx, r, l);
    HPT_EXPECT_EQ(dr.swp.type, kSwpMigrationRead);
    HPT_EXPECT_EQ(dr.swp.offset, pfn);
    // leaf_entry = writable migration entry for PFN ~0: offset truncates to the field (57, 58).
    Entry le = swap_entry(kSwpMigrationWrite, bit(50) - 1, F::shift(l));
    const uint64_t pmd1 = raw_of<F>(hpt_ctx, le, l);
    HPT_EXPECT_EQ(pmd1, uint64_t{kSwpMigrationWrite} << 59);  // ~offset is all zeros
    const uint64_t pmd2 = raw_of<F>(hpt_ctx, F::decode(pmd1, l), l);
    HPT_EXPECT_EQ(pmd1, pmd2);  // bit-for-bit (58)
    Entry sd = F::decode(pmd1, l);
    sd.swp.soft_dirty = true;  // pmd_swp_mksoft_dirty (57)
    HPT_EXPECT(via_raw<F>(hpt_ctx, sd, l).swp.soft_dirty);
    sd.swp.soft_dirty = false;
    HPT_EXPECT(!via_raw<F>(hpt_ctx, sd, l).swp.soft_dirty);
    // hwpoison and device entries are swap kinds too.
    HPT_EXPECT_EQ(via_raw<F>(hpt_ctx, swap_entry(kSwpHwpoison, pfn, F::shift(l)), l).swp.type,
                  kSwpHwpoison);
    HPT_EXPECT_EQ(via_raw<F>(hpt_ctx, swap_entry(kSwpDeviceExclusive, pfn, F::shift(l)), l).kind,
                  Kind::swap);
  }
}

HPT_FORMAT_CASE(format, PteMarkersAreSwapEntriesOfTheMarkerType, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    for (uint64_t flags = 1; flags < 8; ++flags) {  // UFFD_WP 1, POISONED 2, GUARD 4
      Entry m = swap_entry(kSwpPteMarker, flags, F::shift(l));
      const uint64_t raw = raw_of<F>(hpt_ctx, m, l);
      // type 31 -> bits 59-63 all ones; ~flags over bits 9..58.
      HPT_EXPECT_EQ(raw, mask(59, 63) | ((~flags & mask(0, 49)) << 9));
      Entry d = F::decode(raw, l);
      HPT_EXPECT_EQ(d.kind, Kind::marker);
      HPT_EXPECT_EQ(d.swp.offset & (kMarkerUffdWp | kMarkerPoisoned | kMarkerGuard), flags);
      HPT_EXPECT(!F::is_leaf(raw, l));
    }
  }
  // The marker type is exactly the marker kind.
  Entry bad = swap_entry(kSwpPteMarker, 1, 12);
  bad.kind = Kind::swap;
  HPT_EXPECT_EQ(F::refusal(bad, 0), Reason::bad_swap);
  bad = swap_entry(5, 1, 12);
  bad.kind = Kind::marker;
  HPT_EXPECT_EQ(F::refusal(bad, 0), Reason::bad_swap);
}

HPT_FORMAT_CASE(format, SwapValuesOutOfRangeAreRefused, X86Formats) {
  using F = Fmt;
  Entry e = swap_entry(32, 0, 12);  // 5 type bits
  HPT_EXPECT_EQ(F::encode(e, 0).err, Err::einval);
  HPT_EXPECT_EQ(F::refusal(e, 0), Reason::bad_swap);
  e = swap_entry(1, bit(50), 12);  // 50 offset bits
  HPT_EXPECT_EQ(F::refusal(e, 0), Reason::bad_swap);
  e = swap_entry(1, 1, 12);
  e.keep = bit(7);  // bit 7 must stay clear
  HPT_EXPECT_EQ(F::refusal(e, 0), Reason::unrepresentable);
  e.keep = bit(4) | x::kA | x::kD;  // bits Linux leaves unused survive
  HPT_EXPECT(F::encode(e, 0).ok());
  HPT_EXPECT_EQ(F::decode(F::encode(e, 0).value, 0).keep, bit(4) | x::kA | x::kD);
  e = swap_entry(1, 1, 12);
  e.prot.read = true;  // a swap entry stores no permissions
  HPT_EXPECT_EQ(F::refusal(e, 0), Reason::unrepresentable);
  e = swap_entry(1, 1, 21);  // size says PMD, level says PTE
  HPT_EXPECT_EQ(F::refusal(e, 0), Reason::unrepresentable);
}

// ---- debug_vm_pgtable basic tests, at each leaf level (1-15, 35-45, 63-64, 84-86) --------------

HPT_FORMAT_CASE(format, DebugVmPgtableBasicPropertiesHoldAtEveryLeafLevel, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const unsigned sh = F::shift(l);
    const uint64_t pa = bit(30) * 3;  // fixed_pud_pfn-like: aligned for every level
    for (unsigned idx = 0; idx < 16; ++idx) {
      const uint64_t raw0 = linux_pfn_entry<F>(pa, linux_page_prot(idx), l);
      const Entry pte = F::decode(raw0, l);
      HPT_EXPECT(pte.kind == Kind::leaf || pte.kind == Kind::protnone);
      HPT_EXPECT_EQ(F::encode(pte, l).value, raw0);  // 2: pte_same(pte, pte), bit-exact
      auto R = [&](const Entry& e) { return via_raw<F>(hpt_ctx, e, l); };
      HPT_EXPECT(!R(wrprotect(pte)).dirty);                 // 1
      HPT_EXPECT(R(mkyoung(R(mkold(pte)))).accessed);       // 3
      HPT_EXPECT(R(mkdirty(R(mkclean(pte)))).dirty);        // 4
      HPT_EXPECT(R(mkwrite(R(wrprotect(pte)))).writable);   // 5
      HPT_EXPECT(!R(mkold(R(mkyoung(pte)))).accessed);      // 6
      HPT_EXPECT(!R(mkclean(R(mkdirty(pte)))).dirty);       // 7
      HPT_EXPECT(!R(wrprotect(R(mkwrite(pte)))).writable);  // 8
      HPT_EXPECT(!R(wrprotect(R(mkclean(pte)))).dirty);     // 9
      HPT_EXPECT(R(wrprotect(R(mkdirty(pte)))).dirty);      // 10: wrprotect keeps dirty
      HPT_EXPECT(R(mkwrite(R(mkdirty(pte)))).dirty);        // 11
      HPT_EXPECT(!R(mkwrite(R(mkclean(pte)))).dirty);       // 12: mkwrite is not mkdirty
      HPT_EXPECT(R(mkdirty(R(mkwrite(pte)))).writable);     // 13
      HPT_EXPECT(R(mkwrite(R(wrprotect(pte)))).writable);   // 14
      HPT_EXPECT(!R(wrprotect(R(mkwrite(pte)))).writable);  // 15
      // 84-86 (huge_pte_*), the same helpers on a huge entry.
      HPT_EXPECT(R(mkdirty(pte)).dirty);
      // x86: a read-only dirty entry is never spelt W=0,D=1 (that would be a shadow stack).
      const uint64_t rod = raw_of<F>(hpt_ctx, wrprotect(R(mkdirty(pte))), l);
      HPT_EXPECT_EQ(rod & (x::kRW | x::kD), 0ULL);
      HPT_EXPECT(rod & x::kSavedDirty);
      HPT_EXPECT_EQ(unsigned{R(pte).shift}, sh);  // 83: pte_huge / the size stays
      X86_BAIL_IF_NOISY();
    }
  }
}

// Advanced tests (16-21, 47-51, 66-70, 87-91) on a slot: each step reads, changes the vocabulary
// and writes back, as the generic helpers do.
HPT_FORMAT_CASE(format, DebugVmPgtableSlotSequencesHoldAtEveryLeafLevel, X86Formats) {
  using F = Fmt;
  for (unsigned l = 0; l <= 2; ++l) {
    const uint64_t pa = bit(F::shift(l)) * 7;
    // page_prot = vm_get_page_prot(VM_READ|VM_WRITE|VM_EXEC) = PAGE_COPY_EXEC (private).
    const Entry pte = F::decode(linux_pfn_entry<F>(pa, linux_page_prot(7), l), l);
    HPT_ASSERT_EQ(pte.kind, Kind::leaf);
    uint64_t slot = raw_of<F>(hpt_ctx, pte, l);                        // set_pte_at
    HPT_EXPECT(F::decode(slot, l).kind != Kind::none);            // 21
    slot = raw_of<F>(hpt_ctx, wrprotect(F::decode(slot, l)), l);  // ptep_set_wrprotect
    HPT_EXPECT(!F::decode(slot, l).writable);                     // 16
    slot = 0;                                                     // ptep_get_and_clear
    HPT_EXPECT_EQ(F::decode(slot, l).kind, Kind::none);           // 17
    slot = raw_of<F>(hpt_ctx, wrprotect(mkclean(pte)), l);
    // ptep_set_access_flags(mkdirty(mkwrite(pte)), dirty=1)
    slot = raw_of<F>(hpt_ctx, mkdirty(mkwrite(F::decode(slot, l))), l);
    HPT_EXPECT(F::decode(slot, l).writable && F::decode(slot, l).dirty);  // 18
    HPT_EXPECT(F::is_leaf(slot, l));
    slot = 0;                                            // ptep_get_and_clear_full
    HPT_EXPECT_EQ(F::decode(slot, l).kind, Kind::none);  // 19
    slot = raw_of<F>(hpt_ctx, mkyoung(pte), l);
    slot = raw_of<F>(hpt_ctx, mkold(F::decode(slot, l)), l);  // ptep_test_and_clear_young
    HPT_EXPECT(!F::decode(slot, l).accessed);                 // 20
    HPT_EXPECT_EQ(slot & x::kA, 0ULL);
  }
}

// pmd_bad(pmd_mkhuge(pmd)) / pud_bad: a huge entry does not point to a table (46, 52, 53, 65,
// 71, 72); a populated table entry is not bad (62, 76, 81, 82).
HPT_FORMAT_CASE(format, HugeLeafIsNotATableAndAPopulatedTableIsNotBad, X86Formats) {
  using F = Fmt;
  for (unsigned l = 1; l <= 2; ++l) {
    const uint64_t huge = linux_pfn_entry<F>(bit(30), linux_page_prot(15), l);
    HPT_EXPECT(F::is_leaf(huge, l));
    HPT_EXPECT(!F::is_table(huge, l));
    HPT_EXPECT_EQ(F::decode(huge, l).kind, Kind::leaf);
    HPT_EXPECT_EQ(unsigned{F::decode(huge, l).shift}, F::shift(l));
    const uint64_t tbl = F::make_table(0x7000, l);
    HPT_EXPECT(F::is_table(tbl, l));
    HPT_EXPECT(!F::is_leaf(tbl, l));
  }
  for (unsigned l = 1; l < F::levels; ++l) HPT_EXPECT(F::is_table(F::make_table(0x7000, l), l));
}

// 77-80: upper-level entries filled with 0xFF bytes compare equal to themselves, and clearing
// gives none. The all-ones value is a reserved large page to the CPU.
HPT_FORMAT_CASE(format, UpperLevelsFilledWithOnesCompareEqualAndClearToNone, X86Formats) {
  using F = Fmt;
  for (unsigned l = 3; l < F::levels; ++l) {
    const uint64_t ff = ~uint64_t{0};
    Entry d = F::decode(ff, l);
    HPT_EXPECT_EQ(d.kind, Kind::invalid);
    HPT_EXPECT_EQ(d.reason, Reason::reserved_large_page);
    HPT_EXPECT(F::decode(ff, l) == F::decode(ff, l));
    HPT_EXPECT_EQ(F::decode(0, l).kind, Kind::none);
  }
}

HPT_FORMAT_CASE(format, NoContiguousGroupsAndNoBreakBeforeMake, X86Formats) {
  using F = Fmt;
  Rng rng{7};
  for (unsigned i = 0; i < 64; ++i) {
    const uint64_t a = rng.next(), b = rng.next();
    for (unsigned l = 0; l < F::levels; ++l) {
      HPT_EXPECT_EQ(F::group_entry(a, l, 0), a);
      HPT_EXPECT(!F::needs_bbm(a, b, l));
    }
  }
  // Even the transitions arm64 must break: a 2M leaf to a table, and a changed output address.
  HPT_EXPECT(!F::needs_bbm(0x2000A7, F::make_table(0x5000, 1), 1));
  HPT_EXPECT(!F::needs_bbm(0x2000A7, 0x4000A7, 1));
}

// ---- known values, computed by hand from the SDM and Linux's definitions ----------------------

HPT_ARCH_CASE("x86_64", format, KnownValuesDecodeAsTheManualSays) {
  using F = X86_4Level;
  {  // 1. 4K user data page, PAGE_SHARED + dirty, at pa 0x12345000:
     //    P(0x1)|RW(0x2)|US(0x4)|A(0x20)|D(0x40) = 0x67; XD = bit 63.
    const uint64_t raw = 0x8000000012345067ULL;
    Entry d = F::decode(raw, 0);
    HPT_EXPECT_EQ(d.kind, Kind::leaf);
    HPT_EXPECT_EQ(d.addr, 0x12345000ULL);
    HPT_EXPECT(d.prot == (Prot{true, true, false, true}));
    HPT_EXPECT(d.writable && d.dirty && d.accessed && !d.global);
    HPT_EXPECT_EQ(d.mem, MemType::normal);
    HPT_EXPECT_EQ(unsigned{d.shift}, 12u);
  }
  {  // 2. PAGE_KERNEL at pa 0x1000: P|RW|A|D|G = 0x1+0x2+0x20+0x40+0x100 = 0x163, plus NX.
    Entry d = F::decode(0x8000000000001163ULL, 0);
    HPT_EXPECT(d.global && !d.prot.user && !d.prot.exec && d.prot.write);
  }
  {  // 3. 2M leaf at 1 GiB: P|RW|US|A|PS = 0x1+0x2+0x4+0x20+0x80 = 0xA7.
    Entry d = F::decode(0x400000A7ULL, 1);
    HPT_EXPECT_EQ(d.kind, Kind::leaf);
    HPT_EXPECT_EQ(d.addr, 0x40000000ULL);
    HPT_EXPECT_EQ(unsigned{d.shift}, 21u);
    HPT_EXPECT(d.prot.exec && !d.dirty);
  }
  {  // 4. 2M write-through leaf: PAT index 7 = PAT_LARGE(0x1000)|PCD(0x10)|PWT(0x8);
     //    0x200000 | 0x1000 | 0x18 | PS(0x80) | P(0x1) = 0x201099.
    Entry d = F::decode(0x201099ULL, 1);
    HPT_EXPECT_EQ(d.mem, MemType::write_through);
    HPT_EXPECT_EQ(d.addr, 0x200000ULL);  // bit 12 is PAT, not address
  }
  {  // 5. 4K write-protect: PAT index 5 = PAT(bit 7, 0x80)|PWT(0x8); 0x5000|0x88|P = 0x5089.
    Entry d = F::decode(0x5089ULL, 0);
    HPT_EXPECT_EQ(d.mem, MemType::write_protect);
    HPT_EXPECT_EQ(d.addr, 0x5000ULL);
  }
  {  // 6. 1G global kernel leaf at 5 GiB: 5 << 30 = 0x140000000;
     //    P|RW|A|D|PS|G = 0x1+0x2+0x20+0x40+0x80+0x100 = 0x1E3.
    Entry d = F::decode(0x1400001E3ULL, 2);
    HPT_EXPECT_EQ(d.kind, Kind::leaf);
    HPT_EXPECT_EQ(d.addr, 0x140000000ULL);
    HPT_EXPECT_EQ(unsigned{d.shift}, 30u);
    HPT_EXPECT(d.global && d.dirty);
  }
  {  // 7. 1G leaf "at 512M": 0x20000000 sets bit 29, reserved in a 1G PDPTE: 0x20000081.
    Entry d = F::decode(0x20000081ULL, 2);
    HPT_EXPECT_EQ(d.kind, Kind::invalid);
    HPT_EXPECT_EQ(d.reason, Reason::reserved_bits);
  }
  {  // 8. 0x2081 = 0x2000 | PS/PAT(0x80) | P: a 2M PDE with reserved bit 13, but a 4K PTE at 0x2000
     //    with PAT index 4 (WB).
    HPT_EXPECT_EQ(F::decode(0x2081ULL, 1).reason, Reason::reserved_bits);
    Entry d = F::decode(0x2081ULL, 0);
    HPT_EXPECT_EQ(d.kind, Kind::leaf);
    HPT_EXPECT_EQ(d.addr, 0x2000ULL);
    HPT_EXPECT_EQ(d.mem, MemType::normal);
  }
  {  // 9. PML4E with PS: 0x83 = PS|RW|P at level 3.
    HPT_EXPECT_EQ(F::decode(0x83ULL, 3).reason, Reason::reserved_large_page);
  }
  {  // 10. Table: 0x8000000000005003 = XD | 0x5000 | RW | P: supervisor-only, no-exec subtree.
    Entry d = F::decode(0x8000000000005003ULL, 1);
    HPT_EXPECT_EQ(d.kind, Kind::table);
    HPT_EXPECT_EQ(d.addr, 0x5000ULL);
    HPT_EXPECT(d.prot == (Prot{true, true, false, false}));
  }
  {  // 11. Table with PCD (0x10): 0x5013 -> index 2 = UC- = device_nGnRE.
    HPT_EXPECT_EQ(F::decode(0x5013ULL, 2).mem, MemType::device_nGnRE);
  }
  {  // 12. Swap type 1, offset 0: ~0 over 50 bits at 9 = mask(9,58) = 0x07FFFFFFFFFFFE00;
     //     type 1 << 59 = 0x0800000000000000; sum 0x0FFFFFFFFFFFFE00.
    Entry d = F::decode(0x0FFFFFFFFFFFFE00ULL, 0);
    HPT_EXPECT_EQ(d.kind, Kind::swap);
    HPT_EXPECT_EQ(d.swp.type, 1u);
    HPT_EXPECT_EQ(d.swp.offset, 0ULL);
  }
  {  // 13. Swap type 0, offset 0x1234, exclusive: 0x1234 << 9 = 0x246800;
     //     0x...FFFE00 ^ 0x246800 = 0x...DB9600 -> 0x07FFFFFFFFDB9600, | bit 3 = ...9608.
    Entry d = F::decode(0x07FFFFFFFFDB9608ULL, 0);
    HPT_EXPECT_EQ(d.kind, Kind::swap);
    HPT_EXPECT_EQ(d.swp.type, 0u);
    HPT_EXPECT_EQ(d.swp.offset, 0x1234ULL);
    HPT_EXPECT(d.swp.exclusive && !d.swp.soft_dirty && !d.swp.uffd_wp);
  }
  {  // 14. Writable migration (type 27 = 0b11011 -> 0xD8 << 56) of pfn 0x12345 at the PMD:
     //     0x12345 << 9 = 0x2468A00; 0xFFFFE00 ^ 0x2468A00 = 0xDB97400 -> 0xDFFFFFFFFDB97400.
    Entry d = F::decode(0xDFFFFFFFFDB97400ULL, 1);
    HPT_EXPECT_EQ(d.kind, Kind::swap);
    HPT_EXPECT_EQ(d.swp.type, kSwpMigrationWrite);
    HPT_EXPECT_EQ(d.swp.offset, 0x12345ULL);
    HPT_EXPECT_EQ(unsigned{d.shift}, 21u);
  }
  {  // 15. Marker UFFD_WP (offset 1), type 31 = 0xF8 << 56: mask(9,58) ^ 0x200 =
     //     0x07FFFFFFFFFFFC00 -> 0xFFFFFFFFFFFFFC00.
    Entry d = F::decode(0xFFFFFFFFFFFFFC00ULL, 0);
    HPT_EXPECT_EQ(d.kind, Kind::marker);
    HPT_EXPECT_EQ(d.swp.offset, kMarkerUffdWp);
  }
  {  // 16. Marker GUARD (offset 4): 4 << 9 = 0x800; 0x...FE00 ^ 0x800 = 0x...F600.
    Entry d = F::decode(0xFFFFFFFFFFFFF600ULL, 0);
    HPT_EXPECT_EQ(d.kind, Kind::marker);
    HPT_EXPECT_EQ(d.swp.offset, kMarkerGuard);
  }
  {  // 17. PROT_NONE 2M at 0x200000: mask(21,51) = 0x000FFFFFFFE00000, ^ 0x200000 =
     //     0x000FFFFFFFC00000; PROTNONE(0x100)|PS(0x80)|A(0x20) = 0x1A0.
    Entry d = F::decode(0x000FFFFFFFC001A0ULL, 1);
    HPT_EXPECT_EQ(d.kind, Kind::protnone);
    HPT_EXPECT_EQ(d.addr, 0x200000ULL);
    HPT_EXPECT(d.accessed);
  }
  {  // 18. pmd_mkinvalid of vector 3 (0x400000A7): flags 0xA7 & ~P = 0xA6; frame
     //     0x000FFFFFFFE00000 ^ 0x40000000 = 0x000FFFFFBFE00000 -> 0x000FFFFFBFE000A6.
    Entry d = F::decode(0x000FFFFFBFE000A6ULL, 1);
    HPT_EXPECT_EQ(d.kind, Kind::protnone);
    HPT_EXPECT_EQ(d.addr, 0x40000000ULL);
    HPT_EXPECT(d.prot.write && d.prot.user && d.prot.exec && d.accessed);
  }
  {  // 19. Knights Landing erratum: A|D = 0x60 with P=0 is none at every level.
    for (unsigned l = 0; l < 4; ++l) HPT_EXPECT_EQ(F::decode(0x60ULL, l).kind, Kind::none);
  }
  {  // 20. Shadow-stack spelling: P|US|A|D = 0x65 at 0x3000 -> 0x3065 (W=0, D=1).
    Entry d = F::decode(0x3065ULL, 0);
    HPT_EXPECT(d.writable && !d.prot.write && d.dirty);
  }
  {  // 21. Protection key 5: 5 << 59 = 0x2800000000000000, on 0x1067.
    HPT_EXPECT_EQ(F::decode(0x2800000000001067ULL, 0).keep, 0x2800000000000000ULL);
  }
  {  // 22. Read-only dirty, SAVED_DIRTY spelling: bit 58 = 0x0400000000000000, on 0x1025.
    Entry d = F::decode(0x0400000000001025ULL, 0);
    HPT_EXPECT(!d.writable && d.dirty);
  }
  {  // 23. 5-level: PML5E table 0x9067 at level 4, and 0x83 there is a reserved large page.
    HPT_EXPECT_EQ(X86_5Level::decode(0x9067ULL, 4).kind, Kind::table);
    HPT_EXPECT_EQ(X86_5Level::decode(0x9067ULL, 4).addr, 0x9000ULL);
    HPT_EXPECT_EQ(X86_5Level::decode(0x83ULL, 4).reason, Reason::reserved_large_page);
  }
}

HPT_ARCH_CASE("x86_64", format, KnownValuesEncodeAsTheManualSays) {
  using F = X86_4Level;
  {  // 1. PAGE_SHARED 4K, dirty: 0x12345000 | 0x67 | XD.
    Entry e = leaf(0x12345000, 12, kProtRW, true);
    e.prot.user = true;
    HPT_EXPECT_EQ(F::encode(e, 0).value, 0x8000000012345067ULL);
  }
  {  // 2. pte_wrprotect of that: RW off, D moves to SAVED_DIRTY (bit 58):
     //    0x8000000012345067 - 0x2 - 0x40 + 0x0400000000000000 = 0x8400000012345025.
    Entry e = wrprotect(F::decode(0x8000000012345067ULL, 0));
    HPT_EXPECT_EQ(F::encode(e, 0).value, 0x8400000012345025ULL);
  }
  {  // 3. 2M WT kernel text leaf at 0x200000: P|PS|A = 0xA1, PAT index 7 = 0x1000|0x18:
     //    0x200000 | 0x1000 | 0x18 | 0xA1 = 0x2010B9.
    Entry e = leaf(0x200000, 21, kProtRX);
    e.mem = MemType::write_through;
    HPT_EXPECT_EQ(F::encode(e, 1).value, 0x2010B9ULL);
  }
  {  // 4. 4K WC (index 1 = PWT 0x8) read-only user page at 0x7000: 0x7000|0x8|US|A|P|XD.
    Entry e = leaf(0x7000, 12, kProtR);
    e.prot.user = true;
    e.mem = MemType::noncacheable;
    HPT_EXPECT_EQ(F::encode(e, 0).value, 0x800000000000702DULL);  // 0x8+0x4+0x20+0x1 = 0x2D
  }
  {  // 5. 4K WP: index 5 -> PAT(bit 7) | PWT; 0x5000 | 0x80 | 0x8 | P = 0x5089 (+XD, not exec).
    Entry e = leaf(0x5000, 12, kProtRX, false, false);
    e.mem = MemType::write_protect;
    HPT_EXPECT_EQ(F::encode(e, 0).value, 0x5089ULL);
  }
  {  // 6. 1G global leaf at 5 GiB: 0x140000000 | 0x1E3 (vector 6 of the decode case).
    Entry e = leaf(0x140000000, 30, kProtRWX, true);
    e.global = true;
    HPT_EXPECT_EQ(F::encode(e, 2).value, 0x1400001E3ULL);
  }
  {  // 7. Swap type 3, offset 0x10, soft-dirty: 3 << 59 = 0x1800000000000000;
     //    0x10 << 9 = 0x2000; 0x07FFFFFFFFFFFE00 ^ 0x2000 = 0x07FFFFFFFFFFDE00; | bit 1.
    Entry e = swap_entry(3, 0x10, 12);
    e.swp.soft_dirty = true;
    HPT_EXPECT_EQ(F::encode(e, 0).value, 0x1FFFFFFFFFFFDE02ULL);
  }
  {  // 8. Marker POISONED (offset 2) at the PUD: 2 << 9 = 0x400; ...FE00 ^ 0x400 = ...FA00.
    HPT_EXPECT_EQ(F::encode(swap_entry(kSwpPteMarker, kMarkerPoisoned, 30), 2).value,
                  0xFFFFFFFFFFFFFA00ULL);
  }
  {  // 9. PROT_NONE 1G at 1 GiB: mask(30,51) = 0x000FFFFFC0000000, ^ 0x40000000 =
     //    0x000FFFFF80000000; PROTNONE|PS|A = 0x1A0.
    Entry e = leaf(0x40000000, 30, kProtRWX);
    e.kind = Kind::protnone;
    e = wrprotect(e);
    HPT_EXPECT_EQ(F::encode(e, 2).value, 0x000FFFFF800001A0ULL);
  }
  {  // 10. Tables: make_table(0x7000) = 0x7067 at any level above the PTE.
    HPT_EXPECT_EQ(F::make_table(0x7000, 1), 0x7067ULL);
    HPT_EXPECT_EQ(X86_5Level::make_table(0x9000, 4), 0x9067ULL);
  }
}

}  // namespace
