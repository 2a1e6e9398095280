// hugepte/format.hpp - the Format concept: what an architecture must describe, and nothing more.
//
// A format is a type with static constexpr members only. It knows its levels, the sizes each
// level can map, the raw encoding of every entry kind, and the few architecture rules the
// generic code must obey (break-before-make, A/D capabilities, canonical addresses). It never
// walks, allocates or invalidates: that is generic code's job, written once.
//
// Level numbering: 0 is the smallest level (PTE), levels-1 is the root. See entry.hpp.
// The compilable exemplar of this concept is tests/common/fake_format.hpp.
#pragma once

#include <concepts>

#include "hugepte/entry.hpp"

namespace hugepte {

template <class F>
concept Format = requires(uint64_t raw, unsigned level, unsigned i, const Entry& e, uint64_t va) {
  // Identity, for messages, the CLI and the test matrix.
  { F::arch } -> std::convertible_to<const char*>;  // "x86_64", "arm64", "riscv64"
  { F::mode } -> std::convertible_to<const char*>;  // "4level", "4k-48", "sv39", ...

  // Geometry.
  { F::levels } -> std::convertible_to<unsigned>;      // number of levels walked
  { F::va_bits } -> std::convertible_to<unsigned>;     // input address bits
  { F::pa_bits } -> std::convertible_to<unsigned>;     // output address bits the format can hold
  { F::page_shift } -> std::convertible_to<unsigned>;  // == shift(0)
  { F::shift(level) } -> std::same_as<unsigned>;       // log2 of what one entry at `level` maps
  { F::index_bits(level) } -> std::same_as<unsigned>;  // log2 of entries in a table at `level`
  { F::leaf_ok(level) } -> std::same_as<bool>;         // level may hold a leaf (page/block)
  { F::cont_shift(level) } -> std::same_as<unsigned>;  // log2 of a contiguous group, 0 if none
  { F::canonical(va) } -> std::same_as<bool>;          // va is a valid input address

  // Full translation between raw entries and the vocabulary. decode never fails: a bad raw value
  // decodes to Kind::invalid with a reason. encode refuses what the format cannot express.
  { F::decode(raw, level) } -> std::same_as<Entry>;
  { F::encode(e, level) } -> std::same_as<Result<uint64_t>>;

  // Hot-path predicates for walkers (must agree with decode; tests check that they do).
  { F::is_table(raw, level) } -> std::same_as<bool>;
  { F::is_leaf(raw, level) } -> std::same_as<bool>;     // hardware-valid leaf
  { F::out_addr(raw, level) } -> std::same_as<uint64_t>;     // table or leaf output address
  // log2 of the aligned block whose base out_addr() gives for a leaf: the level's shift, or the
  // group's where every sub-entry of a contiguous group carries the group base (riscv NAPOT).
  // So a leaf translates va to out_addr(raw) | (va & (2^leaf_shift - 1)).
  { F::leaf_shift(raw, level) } -> std::same_as<unsigned>;
  { F::make_table(raw, level) } -> std::same_as<uint64_t>;   // table entry pointing at pa `raw`

  // Contiguous groups: the raw value of sub-entry i given sub-entry 0 (arm64 CONT: own output
  // address plus the CONT bit; riscv NAPOT: the identical value).
  { F::group_entry(raw, level, i) } -> std::same_as<uint64_t>;

  // The same leaf at another output address, without encoding:
  //  - for raw == encode(e, level) of a leaf or PROT_NONE e (a group member in its base form
  //    included) and pa aligned to the entry's size (1 << e.cont_shift for a group member,
  //    1 << shift(level) otherwise) and below 2^pa_bits, with_pa(raw, level, pa) ==
  //    encode(e with addr = pa, level), which exists: the output address decides nothing else
  //    about whether a leaf can be encoded;
  //  - for any hardware-valid leaf raw (is_leaf) and pa aligned to 1 << leaf_shift(raw, level)
  //    and below 2^pa_bits, with_pa(raw, level, pa) is a valid leaf that decodes as raw does
  //    but for addr == pa; and decode(raw).addr == out_addr(raw, level). So two valid leaves
  //    equal after with_pa(raw, level, 0) decode alike but for their addresses.
  // Bulk operations encode or decode one leaf and derive the rest (tests/shared/
  // format_with_pa.cpp checks both rules for every format).
  { F::with_pa(raw, level, va) } -> std::same_as<uint64_t>;

  // Break-before-make: true when replacing valid `raw` by valid `raw2` must go through invalid
  // plus a TLB invalidation first.
  { F::needs_bbm(raw, raw, level) } -> std::same_as<bool>;

  // What the hardware does with A/D bits.
  { F::ad_caps } -> std::convertible_to<AdCaps>;
};

// Which translation stage a format describes: 1 (a CPU's own tables, Linux's conventions) unless
// it says `static constexpr unsigned stage = 2` (a secondary MMU's tables: EPT, NPT, arm64
// stage 2, riscv G-stage, whose entries have no swap, PROT_NONE or marker kinds).
template <class F>
constexpr unsigned stage_of() {
  if constexpr (requires { F::stage; })
    return F::stage;
  else
    return 1;
}

// Whether raw is the format's locked value (Kind::locked: KVM's frozen SPTE, arm64's locked
// invalid PTE), through the format's hot-path predicate F::is_locked(raw) where it has one; a
// format without a locked value never has one.
template <class F>
HUGEPTE_ALWAYS_INLINE constexpr bool is_locked(uint64_t raw) {
  if constexpr (requires { F::is_locked(raw); })
    return F::is_locked(raw);
  else
    return false;
}

// raw if F decodes it back to exactly e (whose shift may be 0 or the level's: both name the
// level), else EINVAL: how encoders accept the values they keep whole (a non-present entry's
// bits, a locked value) without a field-by-field rule.
template <class F>
constexpr Result<uint64_t> encode_checked(uint64_t raw, const Entry& e, unsigned level) {
  Entry d = F::decode(raw, level);
  d.shift = e.shift;
  if (d != e) return Err::einval;
  return raw;
}

// log2 of the number of pages the root table spans: 0 for one page (or less), up to 4 for
// arm64 stage 2's 16 concatenated tables; riscv G-stage roots are 16 KiB (2).
template <class F>
constexpr unsigned root_order() {
  const unsigned bytes_log2 = F::index_bits(F::levels - 1) + 3;
  return bytes_log2 > F::page_shift ? bytes_log2 - F::page_shift : 0;
}

// A list of formats, for code (tests, benchmarks, the CLI) that iterates over all of them.
template <class... Fs>
struct TypeList {};

namespace format_detail {

// Structural rules every format must keep; each returns a message for static_assert.
template <class F>
consteval const char* problem() {
  if (F::levels < 2 || F::levels > 6) return "levels must be 2..6";
  if (F::shift(0) != F::page_shift) return "shift(0) must equal page_shift";
  for (unsigned l = 1; l < F::levels; ++l) {
    if (F::shift(l) != F::shift(l - 1) + F::index_bits(l - 1))
      return "shift(l) must be shift(l-1) + index_bits(l-1)";
  }
  if (F::shift(F::levels - 1) + F::index_bits(F::levels - 1) != F::va_bits)
    return "the root level must cover exactly va_bits";
  if (!F::leaf_ok(0)) return "level 0 must hold leaves";
  for (unsigned l = 0; l < F::levels; ++l) {
    unsigned c = F::cont_shift(l);
    if (c != 0 && (c <= F::shift(l) || c > F::shift(l) + F::index_bits(l)))
      return "cont_shift(l) must be 0 or lie within one table of level l";
    if (c != 0 && !F::leaf_ok(l)) return "contiguous groups need a leaf level";
  }
  if (F::pa_bits > 64 || F::va_bits > 64) return "address widths are at most 64 bits";
  for (unsigned l = 0; l + 1 < F::levels; ++l)
    if (F::index_bits(l) + 3 > F::page_shift) return "a table below the root must fit in a page";
  if (F::index_bits(F::levels - 1) + 3 > F::page_shift + 4)
    return "a root spans at most 16 pages (arm64 stage 2's concatenated tables)";
  for (unsigned l = 0; l < F::levels; ++l)
    if (F::decode(0, l).kind != Kind::none) return "decode(0) must be none at every level";
  return nullptr;
}

}  // namespace format_detail

// True when F is a sound format; use as
//   static_assert(hugepte::format_ok<F>(), "...");
// A failing structural rule names itself in the compiler's note on format_detail::problem.
template <Format F>
consteval bool format_ok() {
  return format_detail::problem<F>() == nullptr;
}

// Geometry helpers derived from a format (no arch knowledge).
template <Format F>
constexpr unsigned index_of(uint64_t va, unsigned level) {
  return static_cast<unsigned>((va >> F::shift(level)) & (bit(F::index_bits(level)) - 1));
}

template <Format F>
constexpr unsigned level_of_shift(unsigned shift) {  // levels if none
  for (unsigned l = 0; l < F::levels; ++l)
    if (F::shift(l) == shift) return l;
  return F::levels;
}

// Every size (log2) a single logical leaf may have in this format: each leaf level and each
// contiguous group size, ascending.
template <Format F>
struct LeafSizes {
  unsigned shift[2 * 6] = {};
  unsigned level[2 * 6] = {};
  bool cont[2 * 6] = {};
  unsigned count = 0;
};

template <Format F>
constexpr LeafSizes<F> leaf_sizes() {
  LeafSizes<F> s;
  for (unsigned l = 0; l < F::levels; ++l) {
    if (!F::leaf_ok(l)) continue;
    s.shift[s.count] = F::shift(l);
    s.level[s.count] = l;
    s.cont[s.count++] = false;
    if (F::cont_shift(l) != 0) {
      s.shift[s.count] = F::cont_shift(l);
      s.level[s.count] = l;
      s.cont[s.count++] = true;
    }
  }
  // Insertion sort by shift (a cont group of level l may exceed the leaf size of level l+1).
  for (unsigned i = 1; i < s.count; ++i)
    for (unsigned j = i; j > 0 && s.shift[j - 1] > s.shift[j]; --j) {
      auto swap = [](auto& a, auto& b) { auto t = a; a = b; b = t; };
      swap(s.shift[j - 1], s.shift[j]);
      swap(s.level[j - 1], s.level[j]);
      swap(s.cont[j - 1], s.cont[j]);
    }
  return s;
}

}  // namespace hugepte
