// hugepte/mm/pagewalk.hpp - Linux mm/pagewalk.c (walk_page_range) and follow_pte: read-only
// inspection of an Mm for tests, benchmarks and the system ring. view is the logical entry
// covering an address (group aware); census counts the entries of one level by kind.
#pragma once

#include "hugepte/mm/mm.hpp"

namespace hugepte::mm {

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
auto Mm<F, Env, Tlb, FE>::view(uint64_t va) const -> View {
  Found f = find(pt_, va, 0).value;
  View w{F::decode(f.raw, f.level), f.level, F::shift(f.level)};
  if (present(w.entry) && w.entry.cont_shift != 0) {
    w.shift = w.entry.cont_shift;
    Handle h = group_handle(f, va);
    w.entry = ops_.get(h);
  }
  return w;
}

template <Format F, TableEnv Env, TlbSink Tlb, FolioEnv FE>
auto Mm<F, Env, Tlb, FE>::census(uint64_t start, uint64_t end, unsigned level) const -> Census {
  Census c;
  walk(pt_, start, end, WalkFlags{true, true, false, false},
       [&](const VisitCtx& x, Visit v) -> Step {
         if (x.level != level) return Step::next();
         if (v == Visit::table_pre) return ++c.tables, Step::skip();
         Entry e = F::decode(x.old, x.level);
         if (e.kind == Kind::leaf || e.kind == Kind::protnone) ++c.leaves;
         else if (e.kind == Kind::none) ++c.none;
         else if (e.kind == Kind::marker) {
           ++c.markers;
           c.uffd_wp_markers += (e.swp.offset & kMarkerUffdWp) != 0;
         } else if (e.kind == Kind::swap) ++c.swap;
         return Step::next();
       });
  return c;
}

}  // namespace hugepte::mm
