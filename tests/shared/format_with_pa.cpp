// format_with_pa.cpp - F::with_pa, the shortcut bulk operations take instead of encoding every
// leaf, against encode itself, for every format (the fake exemplar and the variants included);
// and x86 encode's contract on random leaves, which it checks field by field on its hot path
// instead of decoding back.
#include "fake_format.hpp"
#include "hpt_test.hpp"
#include "hugepte/arch/all.hpp"

namespace {

using hugepte::bit;
using hugepte::Entry;
using hugepte::Kind;
using hugepte::MemType;

using WithPaFormats =
    hpt::FormatList<hugepte::X86_4Level, hugepte::X86_5Level, hugepte::X86_4LevelNoGb,
                    hugepte::X86Format<4, true, 40>, hugepte::Arm64_4K_39, hugepte::Arm64_4K_48,
                    hugepte::Arm64_16K_36, hugepte::Arm64_16K_47, hugepte::Arm64_16K_48,
                    hugepte::Arm64_64K_42, hugepte::Arm64_64K_48, hugepte::Sv39, hugepte::Sv48,
                    hugepte::Sv57, hugepte::RiscvFormat<3, false, false>,
                    hugepte::RiscvFormat<4, true, true, true>, hugepte::fake::FakeFormat,
                    hugepte::EptFormat<4, false, true, true, 46>, hugepte::Npt4,
                    hugepte::Arm64S2_16K, hugepte::Arm64S2Format<12, 48, true>, hugepte::Sv39x4>;

// A leaf or PROT_NONE entry at `level` with every field drawn at random (many of them are not
// encodable; callers skip those). The address is aligned to the entry's size.
template <class F>
Entry random_leaf(hpt::Rng& rng, unsigned level) {
  Entry e;
  e.kind = rng.below(4) == 0 ? Kind::protnone : Kind::leaf;
  e.shift = static_cast<uint8_t>(F::shift(level));
  e.prot = {rng.below(8) != 0, rng.below(2) == 1, rng.below(2) == 1, rng.below(2) == 1};
  e.writable = rng.below(8) == 0 ? !e.prot.write : e.prot.write;
  e.mem = static_cast<MemType>(rng.below(7));
  e.global = rng.below(2) == 1;
  e.accessed = rng.below(2) == 1;
  e.dirty = rng.below(2) == 1;
  e.soft = {rng.below(2) == 1, rng.below(4) == 0, rng.below(4) == 0};
  if (F::cont_shift(level) != 0 && rng.below(2) == 1)
    e.cont_shift = static_cast<uint8_t>(F::cont_shift(level));
  if constexpr (hugepte::stage_of<F>() == 2) {  // stage 2: leaves only, its own attributes
    e.kind = Kind::leaf;
    e.prot.user = e.global = false;
    e.soft = {};
    e.s2.user_exec = rng.below(4) == 0 ? !e.prot.exec : e.prot.exec;
    e.s2.ignore_pat = rng.below(2) == 1;
    e.s2.host_writable = rng.below(2) == 1;
  }
  return e;
}

// A random output address aligned to 1 << size below 2^pa_bits; now and then the lowest or the
// highest one.
template <class F>
uint64_t random_pa(hpt::Rng& rng, unsigned size) {
  const uint64_t top = (F::pa_bits >= 64 ? ~uint64_t{0} : bit(F::pa_bits) - 1) & ~(bit(size) - 1);
  switch (rng.below(8)) {
    case 0: return 0;
    case 1: return top;
    default: return rng.next() & top;
  }
}

}  // namespace

// with_pa(encode(e), level, pa) == encode(e with addr = pa) for every encodable leaf or PROT_NONE
// entry (a group member in its base form) and every aligned pa the format can hold.
HPT_FORMAT_CASE(format, WithPaGivesTheEncodingOfTheSameLeafAtAnotherAddress, WithPaFormats) {
  using F = Fmt;
  hpt::Rng rng{0x5eed0000 + F::levels};
  for (unsigned level = 0; level < F::levels; ++level) {
    if (!F::leaf_ok(level)) continue;
    unsigned checked = 0;
    for (unsigned n = 0; n < 3000; ++n) {
      Entry e = random_leaf<F>(rng, level);
      const unsigned size = e.cont_shift != 0 ? e.cont_shift : F::shift(level);
      e.addr = random_pa<F>(rng, size);
      hugepte::Result<uint64_t> raw = F::encode(e, level);
      if (!raw) continue;
      for (unsigned k = 0; k < 4; ++k) {
        Entry moved = e;
        moved.addr = random_pa<F>(rng, size);
        hugepte::Result<uint64_t> want = F::encode(moved, level);
        HPT_ASSERT(want.ok());
        HPT_EXPECT_EQ(F::with_pa(raw.value, level, moved.addr), want.value);
        ++checked;
      }
    }
    HPT_EXPECT(checked > 200);  // not vacuous: many random leaves are encodable
  }
}

// Entries decoded from raw values carry what the vocabulary does not model (keep bits); with_pa
// keeps them too.
HPT_FORMAT_CASE(format, WithPaKeepsTheBitsOfADecodedLeaf, WithPaFormats) {
  using F = Fmt;
  hpt::Rng rng{0xdec0de + F::levels};
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned n = 0; n < 4000; ++n) {
      Entry e = F::decode(rng.next(), level);
      if (e.kind != Kind::leaf && e.kind != Kind::protnone) continue;
      const unsigned size = e.cont_shift != 0 ? e.cont_shift : F::shift(level);
      e.addr &= ~(bit(size) - 1);  // the group's base form
      hugepte::Result<uint64_t> raw = F::encode(e, level);
      if (!raw) continue;
      Entry moved = e;
      moved.addr = random_pa<F>(rng, size);
      hugepte::Result<uint64_t> want = F::encode(moved, level);
      HPT_ASSERT(want.ok());
      HPT_EXPECT_EQ(F::with_pa(raw.value, level, moved.addr), want.value);
    }
  }
}

// x86 encode accepts a leaf only if decode gives exactly that entry back, which it checks field
// by field rather than by decoding (release builds; debug builds do both and trap on a
// difference): random leaves, many with one field a leaf cannot hold at that level.
using X86Variants = hpt::FormatList<hugepte::X86_4Level, hugepte::X86_5Level,
                                    hugepte::X86_4LevelNoGb, hugepte::X86Format<4, true, 40>>;
HPT_FORMAT_CASE(format, X86EncodeAcceptsOnlyLeavesThatDecodeBack, X86Variants) {
  using F = Fmt;
  hpt::Rng rng{0xacce97 + F::levels};
  for (unsigned level = 0; level < F::levels; ++level) {
    unsigned accepted = 0;
    for (unsigned n = 0; n < 4000; ++n) {
      Entry e = random_leaf<F>(rng, level);
      e.addr = random_pa<F>(rng, e.cont_shift != 0 ? e.cont_shift : F::shift(level));
      switch (rng.below(10)) {
        case 0: e.shift = static_cast<uint8_t>(rng.below(64)); break;
        case 1: e.cont_shift = static_cast<uint8_t>(rng.below(64)); break;
        case 2: e.reason = hugepte::Reason::reserved_bits; break;
        case 3: e.swp.type = 1 + static_cast<uint32_t>(rng.below(31)); break;
        case 4: e.swp.offset = 1 + rng.below(1000); break;
        case 5: e.keep = bit(static_cast<unsigned>(rng.below(64))); break;
        case 6: e.addr |= bit(static_cast<unsigned>(rng.below(64))); break;
        default: break;
      }
      hugepte::Result<uint64_t> raw = F::encode(e, level);
      if (!raw) continue;
      ++accepted;
      HPT_EXPECT(F::decode(raw.value, level) == e);
    }
    if (F::leaf_ok(level)) HPT_EXPECT(accepted > 500);
  }
}

// with_pa moves any valid leaf, however it is spelled: the result is a valid leaf that decodes
// as the original but for its address, and decode's address of a valid leaf is out_addr. So
// leaves equal after with_pa(raw, level, 0) decode alike but for the address, which range.hpp
// uses to decode one leaf per kind when it protects or collapses a table of them.
HPT_FORMAT_CASE(format, WithPaMovesAnyValidLeaf, WithPaFormats) {
  using F = Fmt;
  hpt::Rng rng{0x7a11d + F::levels};
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned n = 0; n < 4000; ++n) {
      uint64_t raw = rng.next();
      if (n % 2 == 0) {  // also from encoded leaves with random attributes
        Entry e = random_leaf<F>(rng, level);
        e.kind = Kind::leaf;
        e.addr = random_pa<F>(rng, e.cont_shift != 0 ? e.cont_shift : F::shift(level));
        hugepte::Result<uint64_t> r = F::encode(e, level);
        if (!r) continue;
        raw = r.value;
      }
      if (!F::is_leaf(raw, level)) continue;
      Entry e = F::decode(raw, level);
      HPT_EXPECT_EQ(e.addr, F::out_addr(raw, level));
      const uint64_t pa = random_pa<F>(rng, F::leaf_shift(raw, level));
      const uint64_t moved = F::with_pa(raw, level, pa);
      HPT_ASSERT(F::is_leaf(moved, level));
      Entry want = e;
      want.addr = pa;
      HPT_EXPECT(F::decode(moved, level) == want);
    }
  }
}
