// format_concept.cpp - the Format concept itself, exercised through the fake exemplar format.
#include "fake_format.hpp"
#include "hpt_test.hpp"

namespace {

using hugepte::Entry;
using hugepte::Kind;
using hugepte::fake::FakeFormat;

// A format missing decode() is not a Format: generic code that names it fails to compile at the
// concept check, not deep inside a template.
struct MissingDecode {
  static constexpr const char* arch = "broken";
  static constexpr const char* mode = "none";
};
static_assert(!hugepte::Format<MissingDecode>);

// A format whose shifts do not add up passes the concept but not format_ok(), which names the rule.
struct BadShifts : FakeFormat {
  static constexpr unsigned shift(unsigned level) { return 12 + 8 * level; }
};
static_assert(hugepte::Format<BadShifts>);
static_assert(!hugepte::format_ok<BadShifts>());

constexpr bool str_eq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}
static_assert(str_eq(hugepte::format_detail::problem<BadShifts>(),
                     "shift(l) must be shift(l-1) + index_bits(l-1)"));

Entry leaf(uint64_t pa, unsigned level) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = pa;
  e.shift = static_cast<uint8_t>(FakeFormat::shift(level));
  e.prot = hugepte::kProtRW;
  e.writable = true;
  e.accessed = true;
  return e;
}

}  // namespace

HPT_CASE(concept, FakeFormatRoundTripsEveryFlagSubsetAtEveryLevel) {
  for (unsigned level = 0; level < FakeFormat::levels; ++level) {
    for (unsigned m = 0; m < (1u << 10); ++m) {
      Entry e = leaf(uint64_t{0x40000000}, level);
      e.prot = {true, (m & 1) != 0, (m & 2) != 0, (m & 4) != 0};
      e.writable = e.prot.write;
      e.accessed = m & 8;
      e.dirty = m & 16;
      e.global = m & 32;
      e.soft = {(m & 64) != 0, (m & 128) != 0, (m & 256) != 0};
      e.mem = (m & 512) ? hugepte::MemType::device : hugepte::MemType::normal;
      auto raw = FakeFormat::encode(e, level);
      HPT_ASSERT(raw.ok());
      HPT_ASSERT(FakeFormat::decode(raw.value, level) == e);
    }
  }
}

HPT_CASE(concept, EntryReadAtTheWrongLevelDecodesDifferently) {
  for (unsigned level = 1; level < FakeFormat::levels; ++level) {
    Entry e = leaf(uint64_t{0x40000000}, level);
    uint64_t raw = FakeFormat::encode(e, level).value;
    Entry wrong = FakeFormat::decode(raw, level - 1);
    wrong.shift = e.shift;  // the shift differs anyway; the point is that the bits do too
    HPT_EXPECT(!(wrong == e));
  }
}

HPT_CASE(concept, TableEntriesPointAtTheNextTable) {
  for (unsigned level = 1; level < FakeFormat::levels; ++level) {
    uint64_t raw = FakeFormat::make_table(0x1234000, level);
    HPT_EXPECT(FakeFormat::is_table(raw, level));
    HPT_EXPECT_EQ(FakeFormat::decode(raw, level).kind, Kind::table);
    HPT_EXPECT_EQ(FakeFormat::out_addr(raw, level), uint64_t{0x1234000});
  }
  // The smallest level cannot point to a table.
  HPT_EXPECT_EQ(FakeFormat::decode(FakeFormat::make_table(0x1234000, 0), 0).reason,
                hugepte::Reason::table_not_allowed);
}

HPT_CASE(concept, LeafSizesListEveryLeafAndGroupSizeAscending) {
  constexpr auto s = hugepte::leaf_sizes<FakeFormat>();
  HPT_ASSERT_EQ(s.count, 4u);
  HPT_EXPECT_EQ(s.shift[0], 12u);
  HPT_EXPECT_EQ(s.shift[1], 16u);
  HPT_EXPECT(s.cont[1]);
  HPT_EXPECT_EQ(s.shift[2], 21u);
  HPT_EXPECT_EQ(s.shift[3], 30u);
  HPT_EXPECT_EQ(hugepte::level_of_shift<FakeFormat>(21), 1u);
  HPT_EXPECT_EQ(hugepte::level_of_shift<FakeFormat>(16), 3u);  // not a level: a group size
  HPT_EXPECT_EQ(hugepte::index_of<FakeFormat>(0x40201000, 1), 1u);
  HPT_EXPECT_EQ(hugepte::index_of<FakeFormat>(0x40201000, 2), 1u);
}

HPT_CASE(concept, ContiguousSubEntriesCarryTheirOwnOutputAddress) {
  Entry e = leaf(0x100000, 0);
  e.cont_shift = 16;
  uint64_t raw0 = FakeFormat::encode(e, 0).value;
  for (unsigned i = 0; i < 16; ++i) {
    Entry sub = FakeFormat::decode(FakeFormat::group_entry(raw0, 0, i), 0);
    HPT_EXPECT_EQ(sub.addr, uint64_t{0x100000} + (uint64_t{i} << 12));
    HPT_EXPECT_EQ(sub.cont_shift, 16);
  }
  // A misaligned group base cannot be encoded.
  e.addr = 0x101000;
  HPT_EXPECT_EQ(FakeFormat::encode(e, 0).err, hugepte::Err::einval);
}

HPT_CASE(concept, BreakBeforeMakeOnlyForValidToValidAddressChanges) {
  uint64_t a = FakeFormat::encode(leaf(0x200000, 1), 1).value;
  uint64_t b = FakeFormat::encode(leaf(0x400000, 1), 1).value;
  Entry ro = leaf(0x200000, 1);
  ro.prot = hugepte::kProtR;
  ro.writable = false;
  uint64_t c = FakeFormat::encode(ro, 1).value;
  HPT_EXPECT(FakeFormat::needs_bbm(a, b, 1));
  HPT_EXPECT(!FakeFormat::needs_bbm(a, c, 1));  // permissions only
  HPT_EXPECT(!FakeFormat::needs_bbm(0, b, 1));  // from invalid
}
