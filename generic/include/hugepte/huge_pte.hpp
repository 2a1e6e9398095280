// hugepte/huge_pte.hpp - every huge_pte_* operation, written once.
//
// A logical huge entry is (slot, level, span): `slot` is its first physical entry at `level`,
// and it spans 1 << shift bytes. For a plain leaf the span is the level's own size and there is
// one physical entry; for a contiguous group (arm64 CONT-PTE/CONT-PMD, riscv Svnapot) it is the
// group's size and there are 2^(shift - level shift) entries, sub-entry i encoded by
// F::group_entry. The kernel spends about a thousand lines of per-architecture overrides on
// this; here the format's answers (group_entry, needs_bbm) are all it takes.
//
// The rules, from the kernel's contract (docs/arch.md §1-2, §6.1):
//  - get gathers accessed/dirty over a present group: hardware sets them in any one sub-entry.
//  - set writes every sub-entry; a non-present value (swap, migration, marker) goes identically
//    into each, because it carries no size. Where the format says a valid -> valid change needs
//    break-before-make, set does: every sub-entry invalid, TLB invalidate, then the new values.
//  - clearing takes the size from the handle, never from the value (which may be non-present).
//  - values change as decode -> edit the Entry -> encode; no raw bit is touched here.
//  - every operation is all or nothing: it validates and encodes before the first write.
// Freestanding.
#pragma once

#include "hugepte/commit.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte {

// One huge page size of a format: where its entries live and whether it is a group.
struct HugeSize {
  unsigned level = 0;
  unsigned shift = 0;  // log2 of the whole huge page
  bool cont = false;   // a contiguous group of level-`level` entries
};

template <Format F>
constexpr Result<HugeSize> huge_size(unsigned shift) {
  constexpr LeafSizes<F> sizes = leaf_sizes<F>();
  for (unsigned i = 0; i < sizes.count; ++i)
    if (sizes.shift[i] == shift) return HugeSize{sizes.level[i], shift, sizes.cont[i]};
  return Err::einval;
}

// The handle of one logical entry.
template <Format F>
struct HugePte {
  uint64_t* slot = nullptr;  // first (or only) physical entry
  uint64_t va = 0;           // base address of the huge page
  uint8_t level = 0;         // level of the physical entries
  uint8_t shift = 0;         // log2 of the huge page size

  // Formats without contiguous groups (x86) know at compile time that every handle is one entry.
  static constexpr bool kFormatHasGroups = [] {
    for (unsigned l = 0; l < F::levels; ++l)
      if (F::cont_shift(l) != 0) return true;
    return false;
  }();
  constexpr bool group() const { return kFormatHasGroups && shift != F::shift(level); }
  constexpr uint64_t count() const { return group() ? bit(shift - F::shift(level)) : 1; }
  constexpr uint64_t size() const { return bit(shift); }
  constexpr uint64_t* sub(uint64_t i) const { return slot + i; }
  constexpr bool operator==(const HugePte&) const = default;
};

// Present to Linux: the entry maps a page, even if the hardware is told not to use it.
constexpr bool present(const Entry& e) { return e.kind == Kind::leaf || e.kind == Kind::protnone; }

template <Format F, TableEnv Env, TlbSink Tlb>
class HugePteOps {
 public:
  using format = F;
  using Table = PageTable<F, Env>;
  using Handle = HugePte<F>;

  HugePteOps(const Table& pt, Tlb& tlb) : pt_(&pt), tlb_(&tlb) {}

  // --- finding slots (huge_pte_offset, huge_pte_alloc) --------------------------------------

  // The slot of the huge page of size 1 << shift containing addr, without allocating. The slot
  // may hold none, a non-present value or the huge leaf; for a group it is the first sub-entry.
  // Errors: EINVAL not a huge page size of this format; ERANGE addr outside the VA space;
  // ENOENT a table above the slot is missing; EEXIST the slot's place is taken by something
  // else (a bigger leaf or non-present entry above it, or a table at its level).
  Result<Handle> offset(uint64_t addr, unsigned shift) const {
    Result<HugeSize> sz = huge_size<F>(shift);
    if (!sz) return sz.err;
    uint64_t va = align_down(addr, shift);
    Result<Found> f = find(*pt_, va, sz.value.level);
    if (!f) return f.err;
    if (f.value.level != sz.value.level)
      return F::decode(f.value.raw, f.value.level).kind == Kind::none ? Err::enoent : Err::eexist;
    return handle(f.value, va, sz.value);
  }

  // Like offset(), allocating the missing tables (all or nothing). Errors: ENOMEM, and those of
  // offset() except ENOENT.
  HUGEPTE_ALWAYS_INLINE Result<Handle> alloc(uint64_t addr, unsigned shift) const {
    Result<HugeSize> sz = huge_size<F>(shift);
    if (!sz) return sz.err;
    uint64_t va = align_down(addr, shift);
    Result<Found> f = find_or_alloc(*pt_, va, sz.value.level);
    if (!f) return f.err;
    return handle(f.value, va, sz.value);
  }

  // --- reading ------------------------------------------------------------------------------

  // huge_ptep_get: the first sub-entry, with accessed/dirty OR-ed in from the whole group if it
  // is a present group.
  Entry get(const Handle& h) const {
    Entry e = F::decode(Table::load(h.slot), h.level);
    if (h.group() && present(e) && e.cont_shift != 0) {
      for (uint64_t i = 1; i < h.count(); ++i) gather(e, F::decode(Table::load(h.sub(i)), h.level));
    }
    return e;
  }

  // --- writing ------------------------------------------------------------------------------

  // set_huge_pte_at: installs `e` (present or not) as the logical entry. A present `e` must be
  // sized for the handle (make_huge): cont_shift == the handle's shift for a group, 0 otherwise.
  // Errors: EINVAL a table/invalid value, a size mismatch, an output address not aligned to the
  // huge page, or a value the format cannot encode; EEXIST a sub-entry holds a table
  // (overwriting it would orphan the table). Nothing is written on error.
  HUGEPTE_ALWAYS_INLINE Err set(const Handle& h, const Entry& e) const {
    if (e.kind == Kind::table || e.kind == Kind::invalid) return Err::einval;
    Entry v = e;
    if (v.kind != Kind::none)
      v.shift = static_cast<uint8_t>(F::shift(h.level));  // implied by the slot
    if (present(v)) {
      if (v.cont_shift != (h.group() ? h.shift : 0)) return Err::einval;
      // A format encodes one sub-entry at a time and may not see a group's misalignment.
      if (!aligned(v.addr, h.shift)) return Err::einval;
    } else {
      v.cont_shift = 0;
    }
    Result<uint64_t> raw0 = F::encode(v, h.level);
    if (!raw0) return raw0.err;

    EntryInvalidations<Tlb> inv(*tlb_);
    if (!h.group()) {  // one entry: the hot path of mapping pages one by one
      uint64_t old = Table::load(h.slot);
      if (is_table(old, h.level)) return Err::eexist;
      uint64_t next = raw0.value;
      replace(*pt_, inv, h.slot, h.level, 1, &old, &next, leaf_flush(h), Owed::by_caller);
      inv.finish();
      return Err::ok;
    }
    uint64_t old[kMaxUnit], next[kMaxUnit];
    for (uint64_t i = 0; i < h.count(); ++i) {
      old[i] = Table::load(h.sub(i));
      if (is_table(old[i], h.level)) return Err::eexist;
      next[i] = sub_value(raw0.value, h, i, present(v));
    }
    replace(*pt_, inv, h.slot, h.level, h.count(), old, next, leaf_flush(h), Owed::by_caller);
    inv.finish();
    return Err::ok;
  }

  // huge_ptep_get_and_clear: atomically takes every sub-entry (count from the handle, not the
  // value) and returns the old logical value, accessed/dirty gathered only if it was present.
  // No TLB invalidation: the caller flushes (clear_flush does both). A slot that now holds a
  // table is left alone and returned as Kind::table.
  Entry get_and_clear(const Handle& h) const {
    bool was_valid = false;
    return take(h, was_valid);
  }

  // huge_pte_clear: every sub-entry none, no TLB invalidation.
  void clear(const Handle& h) const {
    if (is_table(Table::load(h.slot), h.level)) return;
    for (uint64_t i = 0; i < h.count(); ++i) pt_->store(h.sub(i), h.level, 0);
  }

  // huge_ptep_clear_flush: get_and_clear, then invalidate the range if the hardware could have
  // cached any of it (some sub-entry was a valid leaf).
  Entry clear_flush(const Handle& h) const {
    bool was_valid = false;
    Entry e = take(h, was_valid);
    if (was_valid) flush(h);
    return e;
  }

  // huge_ptep_set_wrprotect: no write permission; dirty is kept (the format records a
  // read-only dirty page its own way). In place, or by break-before-make if the format needs
  // it for this change. Errors: EINVAL not present.
  Err set_wrprotect(const Handle& h) const {
    Result<bool> r = update(h, [](Entry& e) {
      e.writable = false;
      e.prot.write = false;
    });
    return r.err;
  }

  // huge_ptep_set_access_flags: relaxes the entry towards `want`: accessed, dirty and write
  // permission are added where `want` has them, nothing is taken away, the output address and
  // the other attributes stay. Returns whether any sub-entry changed. No invalidation for the
  // relaxation itself: a TLB still holding the stricter entry costs a spurious fault, which
  // the fault path answers with a local flush (flush_tlb_fix_spurious_fault).
  // Errors: EINVAL `want` is not a present leaf or names another output address; EAGAIN the
  // entry is no longer a present leaf (the fault raced with a change; retry).
  Result<bool> set_access_flags(const Handle& h, const Entry& want) const {
    if (want.kind != Kind::leaf) return Err::einval;
    Entry cur = get(h);
    if (cur.kind != Kind::leaf) return Err::eagain;
    if (cur.addr != want.addr) return Err::einval;
    return update(h, [&want](Entry& e) {
      e.accessed = e.accessed || want.accessed;
      e.dirty = e.dirty || want.dirty;
      e.writable = e.writable || want.writable;
      e.prot.write = e.prot.write || want.prot.write;
    });
  }

  // huge_ptep_modify_prot_start / commit: a protection change as take -> edit -> set, so no
  // hardware A/D update can be lost in between. The caller flushes the range afterwards
  // (flush_range), as hugetlb_change_protection does.
  Entry modify_prot_start(const Handle& h) const { return get_and_clear(h); }
  Err modify_prot_commit(const Handle& h, const Entry& /*old*/, const Entry& next) const {
    return set(h, next);
  }

  // flush_hugetlb_tlb_range: invalidates [start, end) mapped by huge pages of size 1 << shift,
  // one invalidation per physical entry (a group's sub-entries may be cached one by one), with
  // the level hint of those entries.
  Err flush_range(uint64_t start, uint64_t end, unsigned shift) const {
    Result<HugeSize> sz = huge_size<F>(shift);
    if (!sz) return sz.err;
    tlb_->flush(TlbFlush{start, end, static_cast<uint8_t>(F::shift(sz.value.level)),
                         static_cast<uint8_t>(sz.value.level), true});
    return Err::ok;
  }

  // --- values -------------------------------------------------------------------------------

  // arch_make_huge_pte: turns a page-sized present entry into the entry for a huge page of
  // 1 << shift (its level's size, plus the group for contiguous sizes). Non-present values are
  // returned as they are. Errors: EINVAL not a huge page size of this format.
  static Result<Entry> make_huge(Entry e, unsigned shift) {
    Result<HugeSize> sz = huge_size<F>(shift);
    if (!sz) return sz.err;
    if (!present(e)) return e;
    e.shift = static_cast<uint8_t>(F::shift(sz.value.level));
    e.cont_shift = static_cast<uint8_t>(sz.value.cont ? shift : 0);
    return e;
  }

  // hugetlb_mask_last_page: added to the address of a missing table's first huge page, gives
  // the last huge page that table would have held; 0 for a size the format lacks.
  static constexpr uint64_t mask_last_page(unsigned shift) {
    Result<HugeSize> sz = huge_size<F>(shift);
    if (!sz) return 0;
    unsigned l = sz.value.level;
    return bit(F::shift(l) + F::index_bits(l)) - bit(shift);
  }

  static constexpr bool none(const Entry& e) { return e.kind == Kind::none; }
  // huge_pte_none_mostly: none, or a PTE marker standing in for none (uffd-wp, guard, poison).
  static constexpr bool none_mostly(const Entry& e) {
    return e.kind == Kind::none || e.kind == Kind::marker;
  }

 private:
  static constexpr bool is_table(uint64_t raw, unsigned level) {
    return level > 0 && F::is_table(raw, level);
  }

  // Sub-entry i of the logical value raw0 (sub-entry 0). Non-present values carry no address and
  // go identically everywhere.
  static constexpr uint64_t sub_value(uint64_t raw0, const Handle& h, uint64_t i, bool is_present) {
    return is_present && h.group() ? F::group_entry(raw0, h.level, static_cast<unsigned>(i)) : raw0;
  }

  // Encodes an edited sub-entry of a group back into its own slot. Formats differ in whether a
  // sub-entry's decoded address is its own or the group's base, and may refuse to encode a
  // group member from anything but the base; so encode the base form and let group_entry place
  // it, at the sub-entry's index within its group (which a handle need not start at).
  static constexpr Result<uint64_t> encode_sub(Entry d, const Handle& h, uint64_t i) {
    if (d.cont_shift == 0) return F::encode(d, h.level);
    unsigned sub_shift = F::shift(h.level);
    d.addr = align_down(d.addr, d.cont_shift);
    Result<uint64_t> raw = F::encode(d, h.level);
    if (!raw) return raw;
    uint64_t index = ((h.va >> sub_shift) + i) & (bit(d.cont_shift - sub_shift) - 1);
    return F::group_entry(raw.value, h.level, static_cast<unsigned>(index));
  }

  static constexpr void gather(Entry& e, const Entry& sub) {
    e.accessed = e.accessed || sub.accessed;
    e.dirty = e.dirty || sub.dirty;
  }

  HUGEPTE_ALWAYS_INLINE Result<Handle> handle(const Found& f, uint64_t va,
                                              const HugeSize& sz) const {
    if (is_table(Table::load(f.slot), f.level)) return Err::eexist;
    return Handle{f.slot, va, static_cast<uint8_t>(sz.level), static_cast<uint8_t>(sz.shift)};
  }

  static constexpr uint64_t kMaxUnit = max_unit_entries<F>();

  // The invalidation of a logical entry: one per physical entry, with its level.
  static TlbFlush leaf_flush(const Handle& h) {
    return TlbFlush{h.va, h.va + h.size(), static_cast<uint8_t>(F::shift(h.level)), h.level, true};
  }
  void flush(const Handle& h) const { tlb_->flush(leaf_flush(h)); }

  // Exchanges every sub-entry with none; returns the old logical value (A/D gathered if present)
  // and whether the hardware could have cached any sub-entry.
  Entry take(const Handle& h, bool& was_valid) const {
    if (is_table(Table::load(h.slot), h.level)) return F::decode(Table::load(h.slot), h.level);
    uint64_t old0 = pt_->exchange(h.slot, h.level, 0);
    Entry e = F::decode(old0, h.level);
    was_valid = F::is_leaf(old0, h.level);
    bool gathering = h.group() && present(e);
    for (uint64_t i = 1; i < h.count(); ++i) {
      uint64_t old = pt_->exchange(h.sub(i), h.level, 0);
      was_valid = was_valid || F::is_leaf(old, h.level);
      if (gathering) gather(e, F::decode(old, h.level));
    }
    return e;
  }

  // Applies `edit` to a present logical entry: every sub-entry is edited and encoded first
  // (nothing is written if one fails or nothing would change), then replace() writes them -
  // in place with compare-exchange, or by break-before-make if the format needs it for some
  // sub-entry - editing again what the hardware left (A/D) if it changed meanwhile.
  template <class Edit>
  Result<bool> update(const Handle& h, Edit edit) const {
    Entry cur = get(h);
    if (!present(cur)) return Err::einval;
    Entry next = cur;
    edit(next);
    if (Result<uint64_t> raw0 = F::encode(next, h.level); !raw0) return raw0.err;

    auto derive = [&](const uint64_t* now, uint64_t* out) {
      for (uint64_t i = 0; i < h.count(); ++i) {
        Entry sub = F::decode(now[i], h.level);
        edit(sub);
        Result<uint64_t> raw = encode_sub(sub, h, i);
        if (!raw) return false;
        out[i] = raw.value;
      }
      return true;
    };
    uint64_t old[kMaxUnit], out[kMaxUnit];
    for (uint64_t i = 0; i < h.count(); ++i) old[i] = Table::load(h.sub(i));
    if (!derive(old, out)) return Err::einval;
    bool changed = false;
    for (uint64_t i = 0; i < h.count(); ++i) changed = changed || out[i] != old[i];
    if (!changed) return false;
    EntryInvalidations<Tlb> inv(*tlb_);
    replace(*pt_, inv, h.slot, h.level, h.count(), old, out, leaf_flush(h), Owed::by_caller,
            derive);
    inv.finish();
    return true;
  }

  const Table* pt_;
  Tlb* tlb_;
};

template <Format F, TableEnv Env, TlbSink Tlb>
HugePteOps(const PageTable<F, Env>&, Tlb&) -> HugePteOps<F, Env, Tlb>;

}  // namespace hugepte
