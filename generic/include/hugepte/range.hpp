// hugepte/range.hpp - map / unmap / protect / split / collapse over [va, va + len), and translate.
//
// Every operation is all or nothing: every error but ENOMEM is found by a read-only plan before
// the first write, and on ENOMEM (the table pages the commit needs could not all be taken) the
// tables are bit-identical to before. Live entries are replaced as the format's
// break-before-make rule says, and every live change is followed by the invalidation it needs.
//
//   range.hpp            the public types and RangeOps, the public entries
//   range/engine.hpp     RangeEngine: the plan/reserve/commit pass over units (one entry or one
//                        contiguous group) that every operation runs, and their shared vocabulary
//   range/map.hpp        MapOp        range/unmap.hpp    UnmapOp       range/split.hpp  SplitOp
//   range/protect.hpp    ProtectOp and its Memo cache
//   range/collapse.hpp   CollapseOp and its Seen cache
//
// Invalidation, for every entry below: each live change goes through replace() (commit.hpp).
// Flushes are queued, merged with adjacent alike ones and issued before the operation returns,
// or at once where the format needs break-before-make for the change. A leaf flush has the
// stride and level of the entries it covers; a walk-cache flush (any level, page stride) covers
// a table the operation unlinks, which is freed only after that flush has been issued. One
// publish() at the end if an entry became valid. New tables are built off-line and linked by
// one store: they need no flush.
//
// Concurrency: one writer at a time (the caller's lock). The hardware may set A/D bits while
// an operation runs; an entry rewritten from its own old value (protect) is edited again from
// what the hardware left (compare-exchange, or the value taken at the break). Splitting or
// breaking a live block on a format without break-before-make copies A/D as read during the
// pass: an A/D update the hardware makes between that read and the publication is lost.
// Freestanding: no heap, no exceptions.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/range/engine.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte {

// What map() writes into each leaf, besides the output address and the size.
struct Attrs {
  Prot prot{};            // hardware permissions
  bool writable = false;  // Linux's logical write permission (see Entry::writable)
  MemType mem = MemType::normal;
  bool global = false;
  bool accessed = false;
  bool dirty = false;
  Soft soft{};
  Stage2 s2{};  // stage-2 formats: user_exec (equal to prot.exec where there is no split), ...
  constexpr bool operator==(const Attrs&) const = default;
};

// The leaf map() writes at pa: every attribute from a (the caller sets shift / cont_shift).
constexpr Entry leaf_of(const Attrs& a, uint64_t pa) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = pa;
  e.prot = a.prot;
  e.writable = a.writable;
  e.mem = a.mem;
  e.global = a.global;
  e.accessed = a.accessed;
  e.dirty = a.dirty;
  e.soft = a.soft;
  e.s2 = a.s2;
  return e;
}

enum class MapMode : uint8_t {
  replace,     // whatever is in the range is replaced (blocks partly covered are split)
  no_replace,  // EEXIST if anything but none is in the range
};

// What map() does with the rest of a block it splits to map a smaller piece inside it.
enum class SplitFill : uint8_t {
  rest,  // the rest stays mapped as before (Linux; KVM x86 tdp_mmu_split_huge_page, riscv)
  none,  // the rest becomes none, to be mapped by later faults (KVM arm64 stage2_map_walker)
};

// What translate() found for one address.
struct Translated {
  uint64_t va = 0;          // first address of the logical leaf
  uint64_t pa = 0;          // the output address of the queried address itself
  unsigned shift = 0;  // log2 of the logical leaf (the group's size for a contiguous group)
  Entry entry{};       // the leaf: addr is the logical leaf's base; for a group, accessed and
                       // dirty are gathered over every sub-entry
};

template <Format F, TableEnv Env, TlbSink Tlb>
class RangeOps : private RangeEngine<F, Env, Tlb> {
  using Engine = RangeEngine<F, Env, Tlb>;

 public:
  using Engine::kRoot;
  using typename Engine::Table;

  RangeOps(Table& pt, Tlb& tlb) : Engine(pt, tlb) {}

  // map - Linux: vmap_range_noflush() (ioremap_page_range()); KVM: kvm_pgtable_stage2_map().
  // Maps [va, va + len) to [pa, pa + len), each piece with the largest leaf that fits.
  //   A piece gets the largest leaf of the format (contiguous groups included) whose size is at
  //   most 1 << max_shift and at least 1 << min_shift, that fits in what is left of the range
  //   and to which both the piece's va and pa are aligned. With MapMode::replace whatever was
  //   there goes: tables are freed, a block partly covered is split and keeps the rest mapped
  //   as before, a group partly covered is broken into plain leaves. With MapMode::no_replace
  //   anything but none in the range is refused, as remap_pfn_range() expects none.
  // Errors (the tables are unchanged after every one):
  //   EINVAL  len == 0; va, pa or len not page aligned; pa + len beyond F::pa_bits;
  //           max_shift < page_shift; no leaf size in [min_shift, max_shift] fits some piece;
  //           attrs the format cannot encode at a level the map uses; no root table
  //   ERANGE  the range is not canonical / leaves the VA space
  //   EEXIST  MapMode::no_replace and something is mapped (or non-present) in the range
  //   EBUSY   a non-present entry (swap, migration, marker, invalid) of a bigger size would
  //           have to be split
  //   ENOMEM  the table pages it needs could not all be allocated
  // Invalidation: a leaf flush for each leaf or group it replaces and for each block it splits
  //   or group it breaks; a walk-cache flush for each table it replaces, before freeing it;
  //   none where the range held none (publish() only).
  Err map(uint64_t va, uint64_t pa, uint64_t len, const Attrs& attrs, unsigned max_shift = 64,
          MapMode mode = MapMode::replace, unsigned min_shift = 0,
          SplitFill split_fill = SplitFill::rest) {
    if (Err e = check_input(va, len); e != Err::ok) return e;
    if (!aligned(pa, F::page_shift) || max_shift < F::page_shift || min_shift > max_shift)
      return Err::einval;
    if (F::pa_bits < 64 && (pa >= bit(F::pa_bits) || len > bit(F::pa_bits) - pa))
      return Err::einval;
    MapOp op{this, va, pa, va + (len - 1), attrs, max_shift, min_shift, mode, split_fill};
    if ((len & (len - 1)) == 0) {  // a leaf size is a power of two: maybe one piece
      if (const Size s = op.piece(va); s.ok && bit(s.shift) == len) {
        if (Err e = Err::ok; op.install_one(s, e)) return e;
      }
    }
    return run(op, va, va + (len - 1));
  }

  // unmap - Linux: vunmap_range(), zap_page_range_single(); KVM: kvm_pgtable_stage2_unmap().
  // Makes every entry in [va, va + len) none and frees the tables it leaves empty.
  //   A leaf partly covered is split (the rest stays mapped); a group partly covered is broken
  //   into plain leaves. Non-present entries wholly inside the range are cleared too.
  // Errors (the tables are unchanged after every one):
  //   EINVAL  len == 0; va or len not page aligned; no root table
  //   ERANGE  the range is not canonical / leaves the VA space
  //   EBUSY   a non-present entry partly covered
  //   ENOMEM  the table pages a split needs could not all be allocated
  // Invalidation: a leaf flush for each present leaf or group it clears and for each block it
  //   splits or group it breaks; a walk-cache flush for each table it unlinks (wholly inside
  //   the range, or left empty), before freeing it.
  Err unmap(uint64_t va, uint64_t len) {
    if (Err e = check_input(va, len); e != Err::ok) return e;
    UnmapOp op{this};
    return run(op, va, va + (len - 1));
  }

  // zap - KVM: kvm_unmap_gfn_range() (x86 tdp_mmu_zap_leafs, arm64 kvm_pgtable_stage2_unmap,
  //       riscv kvm_riscv_gstage_unmap_range).
  // Every present leaf or group that meets [va, va + len) becomes none, whole: a block partly
  // covered is zapped entirely, never split (a later fault maps again what is still wanted).
  // With FreeTables, a table the zap leaves empty is unlinked and freed (arm64, riscv); without,
  // tables stay linked (x86: the notifier path zaps leaf SPTEs only). Returns how many leaf
  // entries it cleared (a group counts each of its entries).
  // Errors (the tables are unchanged after every one):
  //   EINVAL  len == 0; va or len not page aligned; no root table
  //   ERANGE  the range is not canonical / leaves the VA space
  //   EAGAIN  a locked entry (another walker's break-before-make) in the range
  // Invalidation: a leaf flush for each leaf or group it clears, a walk-cache flush for each
  //   table it unlinks, before freeing it.
  template <bool FreeTables>
  Result<uint64_t> zap(uint64_t va, uint64_t len) {
    if (Err e = check_input(va, len); e != Err::ok) return e;
    typename Engine::template ZapOp<FreeTables> op{this};
    if (Err e = run(op, va, va + (len - 1)); e != Err::ok) return e;
    return op.cleared;
  }

  // protect - Linux: change_protection() (mprotect), hugetlb_change_protection();
  //           KVM: kvm_pgtable_stage2_wrprotect().
  // Sets the permissions of every present leaf in [va, va + len) to prot / writable.
  //   The output address, A/D and every other attribute stay. Holes and non-present entries
  //   are skipped; a leaf partly covered is split (only if its permissions change), a group
  //   partly covered is broken. A clean page asked to be writable with hardware write
  //   permission gets the format's clean-writable spelling where that is the only one it has
  //   (arm64 DBM).
  // Errors (the tables are unchanged after every one):
  //   EINVAL  len == 0; va or len not page aligned; no root table; a permission the format
  //           cannot encode for some leaf
  //   ERANGE  the range is not canonical / leaves the VA space
  //   ENOMEM  the table pages a split needs could not all be allocated
  // Invalidation: a leaf flush for each leaf or group whose value changes and for each block
  //   it splits or group it breaks.
  Err protect(uint64_t va, uint64_t len, Prot prot, bool writable) {
    if (Err e = check_input(va, len); e != Err::ok) return e;
    ProtectOp op{this, prot, writable};
    return run(op, va, va + (len - 1));
  }

  // split - Linux: split_huge_pmd() / split_huge_pud(), contpte_try_unfold();
  //         KVM: kvm_pgtable_stage2_split().
  // Replaces the present leaf covering va by finer leaves, so that a leaf of exactly
  // 1 << target_shift maps va.
  //   The new leaf is a group if the format has a contiguous size of target_shift. Everything
  //   the leaf mapped stays mapped with every attribute (A/D of a broken group gathered). Only
  //   the chain down to va is split: a 1G leaf split to 4K becomes 511 2M leaves and 512 4K
  //   leaves.
  // Errors (the tables are unchanged after every one):
  //   EINVAL  no present leaf covers va; target_shift is not a leaf size of the format or not
  //           smaller than the leaf; no root table
  //   ERANGE  va is not canonical
  //   ENOMEM  the table pages it needs could not all be allocated
  // Invalidation: a leaf flush of the leaf it splits (or the group it breaks), at its size and
  //   level; the finer levels are built off-line.
  Err split(uint64_t va, unsigned target_shift) {
    if (!F::canonical(va)) return Err::erange;
    if (!pt_->has_root()) return Err::einval;
    Result<Found> f = find(*pt_, va, 0);
    if (!f) return f.err;
    Entry d = F::decode(f.value.raw, f.value.level);
    if (!present(d)) return Err::einval;
    unsigned have = d.cont_shift != 0 ? d.cont_shift : F::shift(f.value.level);
    Size t = size_of(target_shift);
    if (!t.ok || target_shift >= have) return Err::einval;
    uint64_t base = align_down(va, target_shift);
    SplitOp op{this, t};
    return run(op, base, base + (bit(target_shift) - 1));
  }

  // collapse - Linux: collapse_pte_mapped_thp() (khugepaged, MADV_COLLAPSE),
  //            contpte_try_fold(); KVM: the table-to-block coalescing of
  //            kvm_pgtable_stage2_map().
  // Collapses the 1 << shift aligned region around va into one leaf (a group for a contiguous
  // size) and frees the tables under it.
  //   The region must be mapped entirely by present leaves of one kind, physically contiguous
  //   from an output address aligned to the size, with identical attributes (A/D may differ
  //   and are OR-ed, as is the hardware write permission of a writable page, which some
  //   formats use to record dirt). A region already mapped by exactly that leaf is left as it
  //   is (ok). The region is scanned once; A/D are gathered again after the break, from the
  //   tables the hardware can no longer reach, so none written meanwhile is lost.
  // Errors (the tables are unchanged after every one; never ENOMEM: it only frees):
  //   EINVAL  shift is not a leaf size; a hole; different attributes; output not contiguous or
  //           misaligned; the region lies inside a bigger leaf; no root table
  //   EBUSY   a non-present entry in the region
  //   ERANGE  va is not canonical
  // Invalidation: break-before-make on every format (Linux's collapse clears and flushes the
  //   PMD first: pmdp_collapse_flush): invalid, then a walk-cache flush over the entries it
  //   replaces where tables go (the region, for a leaf replacing a table) or a leaf flush of
  //   the group's entries when it forms a group from plain leaves, then the new values; the
  //   tables are freed after the flush. None for a region already collapsed.
  Err collapse(uint64_t va, unsigned shift) {
    if (!F::canonical(va)) return Err::erange;
    Size t = size_of(shift);
    if (!t.ok) return Err::einval;
    uint64_t base = align_down(va, shift);
    CollapseOp op{this, t, base};
    return run(op, base, base + (bit(shift) - 1));
  }

  // translate - Linux: follow_pte(); KVM: kvm_pgtable_get_leaf().
  // The translation of va: the logical leaf mapping it and the output address.
  // Errors:
  //   ERANGE  va is not canonical
  //   EINVAL  no root table
  //   ENOENT  nothing translates va; value.entry is then the entry that stopped the walk
  //           (none, swap, marker, protnone or invalid with its reason), value.shift its size
  // Invalidation: none; it only reads.
  Result<Translated> translate(uint64_t va) const {
    if (!F::canonical(va)) return Err::erange;
    if (!pt_->has_root()) return Err::einval;
    Found f = find(*pt_, va, 0).value;
    Translated t;
    t.entry = F::decode(f.raw, f.level);
    t.shift = t.entry.cont_shift != 0 ? t.entry.cont_shift : F::shift(f.level);
    t.va = align_down(va, t.shift);
    if (t.entry.kind != Kind::leaf) {
      Result<Translated> r;
      r.value = t;
      r.err = Err::enoent;
      return r;
    }
    if (t.entry.cont_shift != 0) {
      // Hardware sets A/D in whichever sub-entry it used: the group's are the OR of all.
      unsigned s = F::shift(f.level);
      uint64_t* first = f.slot - ((va >> s) & (bit(t.shift - s) - 1));
      for (uint64_t k = 0; k < bit(t.shift - s); ++k) {
        Entry sub = F::decode(Table::load(first + k), f.level);
        t.entry.accessed = t.entry.accessed || sub.accessed;
        t.entry.dirty = t.entry.dirty || sub.dirty;
      }
    }
    // A sub-entry holds its own address (arm64 CONT) or the group's (riscv NAPOT): aligned
    // down to the group, both give the group's base.
    t.entry.addr = align_down(t.entry.addr, t.shift);
    t.pa = t.entry.addr + (va - t.va);
    return t;
  }

 private:
  // The engine's names the entries use (a dependent base's names need declaring).
  using Engine::present;
  using Engine::pt_;
  using Engine::run;
  using Engine::size_of;
  using typename Engine::CollapseOp;
  using typename Engine::MapOp;
  using typename Engine::ProtectOp;
  using typename Engine::Size;
  using typename Engine::SplitOp;
  using typename Engine::UnmapOp;

  // Common checks of [va, va + len).
  Err check_input(uint64_t va, uint64_t len) const {
    if (len == 0 || !aligned(va, F::page_shift) || !aligned(len, F::page_shift)) return Err::einval;
    uint64_t end = va + len;
    if (end != 0 && end < va) return Err::erange;  // wraps around the top of the 64-bit space
    if (Err e = check_range<F>(va, end); e != Err::ok) return e;
    if (!pt_->has_root()) return Err::einval;
    return Err::ok;
  }
};

template <Format F, TableEnv Env, TlbSink Tlb>
RangeOps(PageTable<F, Env>&, Tlb&) -> RangeOps<F, Env, Tlb>;

}  // namespace hugepte

// The operations' policies (nested structs of RangeEngine), after the public types: map.hpp
// uses Attrs and MapMode.
#include "hugepte/range/collapse.hpp"
#include "hugepte/range/map.hpp"
#include "hugepte/range/protect.hpp"
#include "hugepte/range/split.hpp"
#include "hugepte/range/unmap.hpp"
#include "hugepte/range/zap.hpp"
