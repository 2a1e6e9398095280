// fake_format.hpp - the compilable exemplar of the Format concept.
//
// A made-up three-level format whose flag bits move with the level: flag k of an entry at level L
// sits at bit (k + L) % 12. An entry built for one level and read at another therefore decodes to
// something visibly different, which catches generic code that uses an entry at the wrong level.
// Everything a real format must provide is here, in the simplest honest form.
#pragma once

#include "hugepte/format.hpp"

namespace hugepte::fake {

// Flag indices within the rotating low 12 bits.
enum Flag : unsigned { kValid, kTable, kRead, kWrite, kExec, kUser, kAccessed, kDirty, kGlobal,
                       kSpecial, kUffdWp, kSoftDirty };

struct FakeFormat {
  static constexpr const char* arch = "fake";
  static constexpr const char* mode = "3level";
  static constexpr unsigned levels = 3;
  static constexpr unsigned va_bits = 39;
  static constexpr unsigned pa_bits = 40;
  static constexpr unsigned page_shift = 12;

  // Fixed (non-rotating) fields.
  static constexpr unsigned kAddrLo = 12, kAddrHi = 39;
  static constexpr unsigned kMemLo = 40, kMemHi = 41;  // 0 normal, 1 non-cacheable, 2 device
  static constexpr uint64_t kCont = bit(42);                // level 0 only: 16-entry group
  static constexpr uint64_t kProtNone = bit(43);            // valid = 0: PROT_NONE
  static constexpr unsigned kSwpTypeLo = 44, kSwpTypeHi = 48;
  static constexpr uint64_t kSwpExclusive = bit(49), kSwpSoftDirty = bit(50), kSwpUffdWp = bit(51);
  static constexpr uint64_t kReserved = mask(52, 63);

  static constexpr uint64_t flag(Flag k, unsigned level) { return bit((k + level) % 12); }
  static constexpr bool has(uint64_t raw, Flag k, unsigned level) { return raw & flag(k, level); }

  static constexpr unsigned shift(unsigned level) { return page_shift + 9 * level; }
  static constexpr unsigned index_bits(unsigned) { return 9; }
  static constexpr bool leaf_ok(unsigned) { return true; }
  static constexpr unsigned cont_shift(unsigned level) { return level == 0 ? 16 : 0; }
  static constexpr bool canonical(uint64_t va) { return va < bit(va_bits); }
  static constexpr AdCaps ad_caps{false, false, DirtyModel::hw_d};

  static constexpr bool is_table(uint64_t raw, unsigned level) {
    return level > 0 && has(raw, kValid, level) && has(raw, kTable, level) && !(raw & kReserved);
  }
  static constexpr bool is_leaf(uint64_t raw, unsigned level) {
    return decode(raw, level).kind == Kind::leaf;
  }
  static constexpr uint64_t out_addr(uint64_t raw, unsigned) {
    return raw & mask(kAddrLo, kAddrHi);
  }
  static constexpr unsigned leaf_shift(uint64_t, unsigned level) { return shift(level); }
  static constexpr uint64_t make_table(uint64_t pa, unsigned level) {
    return pa | flag(kValid, level) | flag(kTable, level);
  }
  static constexpr uint64_t group_entry(uint64_t raw0, unsigned level, unsigned i) {
    return raw0 + (uint64_t{i} << shift(level));  // own output address per sub-entry
  }
  static constexpr uint64_t with_pa(uint64_t raw, unsigned, uint64_t pa) {
    return (raw & ~mask(kAddrLo, kAddrHi)) | pa;  // the address field is the same for every kind
  }
  static constexpr bool needs_bbm(uint64_t old, uint64_t next, unsigned level) {
    return has(old, kValid, level) && has(next, kValid, level) &&
           (out_addr(old, level) != out_addr(next, level) || ((old ^ next) & kCont) ||
            has(old, kTable, level) != has(next, kTable, level));
  }

  static constexpr Entry decode(uint64_t raw, unsigned level) {
    Entry e;
    e.shift = static_cast<uint8_t>(shift(level));
    if (raw == 0) return e;
    auto invalid = [&](Reason r) {
      e.kind = Kind::invalid;
      e.reason = r;
      return e;
    };
    if (raw & kReserved) return invalid(Reason::reserved_bits);
    if (!has(raw, kValid, level) && !(raw & kProtNone)) {  // swap format
      e.kind = field(raw, kSwpTypeLo, kSwpTypeHi) == kSwpPteMarker ? Kind::marker : Kind::swap;
      e.swp = {static_cast<uint32_t>(field(raw, kSwpTypeLo, kSwpTypeHi)),
               field(raw, kAddrLo, kAddrHi), (raw & kSwpExclusive) != 0, (raw & kSwpSoftDirty) != 0,
               (raw & kSwpUffdWp) != 0};
      if (raw & (mask(0, 11) | mask(kMemLo, kMemHi) | kCont)) return invalid(Reason::bad_swap);
      return e;
    }
    e.addr = out_addr(raw, level);
    if (has(raw, kTable, level)) {
      if (level == 0) return invalid(Reason::table_not_allowed);
      e.kind = Kind::table;
      return e;
    }
    e.kind = has(raw, kValid, level) ? Kind::leaf : Kind::protnone;
    e.prot = {has(raw, kRead, level), has(raw, kWrite, level), has(raw, kExec, level),
              has(raw, kUser, level)};
    if (e.kind == Kind::protnone) e.prot = {};  // hardware grants nothing
    e.writable = has(raw, kWrite, level);
    e.accessed = has(raw, kAccessed, level);
    e.dirty = has(raw, kDirty, level);
    e.global = has(raw, kGlobal, level);
    e.soft = {has(raw, kSpecial, level), has(raw, kSoftDirty, level), has(raw, kUffdWp, level)};
    constexpr MemType kMem[] = {MemType::normal, MemType::noncacheable, MemType::device};
    uint64_t m = field(raw, kMemLo, kMemHi);
    if (m > 2) return invalid(Reason::reserved_bits);
    e.mem = kMem[m];
    if (raw & kCont) {
      if (level != 0) return invalid(Reason::reserved_bits);
      e.cont_shift = static_cast<uint8_t>(cont_shift(0));
    }
    if (has(raw, kWrite, level) && !has(raw, kRead, level))
      return invalid(Reason::write_without_read);
    if (!aligned(e.addr, shift(level))) return invalid(Reason::misaligned_output);
    return e;
  }

  static constexpr Result<uint64_t> encode(const Entry& e, unsigned level) {
    if (level >= levels) return Err::einval;
    if (e.s2 != hugepte::Stage2{}) return Err::einval;  // a stage-1 format
    switch (e.kind) {
      case Kind::none: return uint64_t{0};
      case Kind::locked:
      case Kind::invalid: return Err::einval;
      case Kind::table:
        if (level == 0 || !aligned(e.addr, page_shift) || e.addr >= bit(pa_bits))
          return Err::einval;
        return make_table(e.addr, level);
      case Kind::swap:
      case Kind::marker: {
        if (e.swp.type >= bit(kSwapTypeBits) || e.swp.offset >= bit(kAddrHi - kAddrLo + 1))
          return Err::einval;
        if ((e.kind == Kind::marker) != (e.swp.type == kSwpPteMarker)) return Err::einval;
        uint64_t raw = put_field(0, kSwpTypeLo, kSwpTypeHi, e.swp.type) | (e.swp.offset << kAddrLo);
        if (e.swp.exclusive) raw |= kSwpExclusive;
        if (e.swp.soft_dirty) raw |= kSwpSoftDirty;
        if (e.swp.uffd_wp) raw |= kSwpUffdWp;
        if (raw == 0) return Err::einval;  // would read back as none
        return raw;
      }
      case Kind::leaf:
      case Kind::protnone: {
        unsigned size = e.cont_shift ? e.cont_shift : shift(level);
        if (e.cont_shift && e.cont_shift != cont_shift(level)) return Err::einval;
        if (!aligned(e.addr, size) || e.addr >= bit(pa_bits)) return Err::einval;
        if (e.writable && !e.prot.read && e.kind == Kind::leaf) return Err::einval;
        uint64_t m = e.mem == MemType::normal ? 0 : e.mem == MemType::noncacheable ? 1
              : e.mem == MemType::device ? 2 : 3;
        if (m == 3) return Err::einval;
        uint64_t raw = e.addr | (m << kMemLo) | (e.cont_shift ? kCont : 0);
        auto set = [&](bool on, Flag k) { raw |= on ? flag(k, level) : 0; };
        set(e.kind == Kind::leaf, kValid);
        set(e.kind == Kind::leaf ? e.prot.read : true, kRead);  // PROT_NONE keeps R, like riscv
        set(e.writable, kWrite);
        set(e.kind == Kind::leaf && e.prot.exec, kExec);
        set(e.kind == Kind::leaf && e.prot.user, kUser);
        set(e.accessed, kAccessed);
        set(e.dirty, kDirty);
        set(e.global, kGlobal);
        set(e.soft.special, kSpecial);
        set(e.soft.uffd_wp, kUffdWp);
        set(e.soft.soft_dirty, kSoftDirty);
        if (e.kind == Kind::protnone) raw |= kProtNone;
        return raw;
      }
    }
    return Err::einval;
  }
};

static_assert(Format<FakeFormat>, "FakeFormat must model hugepte::Format");
static_assert(format_ok<FakeFormat>(), "FakeFormat must pass the structural checks");

}  // namespace hugepte::fake
