// hugepte/mm/rmap.hpp - Linux mm/rmap.c: how a folio's mapcount and references move when an
// entry maps or unmaps part of it (folio_add_file_rmap_{ptes,pmd,pud}, folio_add_anon_rmap_*,
// folio_remove_rmap_*), per policy; S1 is the seed's "one mapcount for anything mapped under a
// PUD" (docs/mm.md §0.2). The folio side (counters in the Folio) and the Mm side
// (account_map / account_unmap).
#pragma once

#include "hugepte/mm/folio.hpp"
#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

// How a folio's mapcount moves is a policy (docs/mm.md §2.5), chosen per Memory:
//   S0  today's kernel: +1 per mapping of the whole folio; pieces are not allowed (no HGM)
//   S1  the seed's plan: +1 per mapping of anything under the folio-sized slot, whatever is
//       mapped underneath (whole folio, PMDs, PTEs); -1 when the last piece goes
//   S3  THP-like: a whole-folio mapping counts in the entire mapcount; a smaller entry adds one
//       to the per-page mapcount of every base page it covers
// Refcount: every mapping holds references (S0/S1: one per folio-sized slot that maps
// anything; S3: one per page-table entry), and the page cache holds one.

// --- the folio side: the counters in the Folio (Memory::mapcount reads them: folio_mapcount) ---

// A mapping of the whole folio appeared (S0/S1: +1 unless `slot_had_pieces` under S1;
// S3: entire +1). Every policy takes one reference per new whole-folio entry.
template <FolioEnv FE, unsigned PageShift>
void folio_account_whole(Memory<FE, PageShift>& mem, uint32_t id, int delta) {
  Folio& f = mem.folio(id);
  if (f.zero_page) return;
  f.mapcount = static_cast<uint64_t>(static_cast<long long>(f.mapcount) + delta);
  if (delta > 0) mem.get(id);
}
// S3: a smaller entry mapping [pa, pa + 2^shift) of the folio: per-page counts.
template <FolioEnv FE, unsigned PageShift>
Err folio_account_pages(Memory<FE, PageShift>& mem, uint32_t id, uint64_t pa, unsigned shift,
                        int delta) {
  Folio& f = mem.folio(id);
  uint64_t n = bit(f.shift - PageShift);
  if (!f.subpage) {
    f.subpage = static_cast<uint32_t*>(mem.env().alloc_meta(sizeof(uint32_t) * n));
    if (!f.subpage) return Err::enomem;
  }
  uint64_t first = (pa - f.pa) >> PageShift, count = bit(shift - PageShift);
  for (uint64_t i = first; i < first + count; ++i)
    f.subpage[i] = static_cast<uint32_t>(static_cast<long long>(f.subpage[i]) + delta);
  f.subpage_total = static_cast<uint64_t>(static_cast<long long>(f.subpage_total) +
                                     delta * static_cast<long long>(count));
  mem.counters().subpage_mapcount_updates += count;
  return Err::ok;
}

// --- the Mm side: per mapping, with S1's pieces per (VMA, folio) ---------------------------------

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
auto Mm<F, Env, Tlb, FE>::pieces_of(uint32_t vma, uint32_t id, bool create) -> Pieces* {
  for (unsigned i = 0; i < piece_n_; ++i)
    if (pieces_[i].folio == id && pieces_[i].vma == vma) return &pieces_[i];
  if (!create || piece_n_ == kMaxPieces) return nullptr;
  pieces_[piece_n_] = Pieces{id, vma, 0};
  return &pieces_[piece_n_++];
}

// anon_vma_prepare: v's anon_vma, made on its first anonymous page. A neighbour that differs
// at most in its permissions and holds an anon_vma of its own (a singular chain) lends it
// (find_mergeable_anon_vma, anon_vma_compatible), so that the two can merge later.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::anon_vma_prepare(Vma& v) {
  if (v.anon_vma) return;
  for (const Vma& o : vmas_) {
    if (!o.used || o.anon_vma == 0 || o.anon_vma_forked || (o.end != v.start && o.start != v.end))
      continue;
    Vma mine = v, near = o;
    mine.prot = near.prot;  // VM_ACCESS_FLAGS are left out of the comparison
    mine.anon_vma = near.anon_vma;
    if (!vma_mergeable(mine, near)) continue;
    v.anon_vma = o.anon_vma;
    return;
  }
  v.anon_vma = next_anon_vma_++;
}

// A new entry of 1 << shift maps folio `id` from pa in v.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::account_map(const Vma& v, uint32_t id, uint64_t pa, unsigned shift) {
  Folio& f = mem_->folio(id);
  if (f.zero_page) return;
  bool whole = shift == f.shift;
  if (mem_->policy() == Policy::s3 && !whole) {
    folio_account_pages(*mem_, id, pa, shift, +1);
    mem_->get(id);
    return;
  }
  if (mem_->policy() == Policy::s3 || f.shift == kPage) {
    folio_account_whole(*mem_, id, +1);
    return;
  }
  Pieces* p = pieces_of(vma_index(v), id, true);
  if (p->n++ == 0) folio_account_whole(*mem_, id, +1);
}

// An entry of 1 << shift mapping folio `id` from pa in v went away.
template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
void Mm<F, Env, Tlb, FE>::account_unmap(const Vma& v, uint32_t id, uint64_t pa, unsigned shift) {
  Folio& f = mem_->folio(id);
  if (f.zero_page) return;
  bool whole = shift == f.shift;
  if (mem_->policy() == Policy::s3 && !whole) {
    folio_account_pages(*mem_, id, pa, shift, -1);
    drop_ref(id);
    return;
  }
  if (mem_->policy() == Policy::s3 || f.shift == kPage) {
    folio_account_whole(*mem_, id, -1);
    drop_ref(id);
    return;
  }
  Pieces* p = pieces_of(vma_index(v), id, false);
  if (!p || --p->n != 0) return;
  drop_pieces(p);
  folio_account_whole(*mem_, id, -1);
  drop_ref(id);
}

}  // namespace hugepte::mm
