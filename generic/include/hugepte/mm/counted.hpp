// hugepte/mm/counted.hpp - the table env and TLB sink an Mm runs on: counting wrappers. Linux
// counts table pages in mm->pgtables_bytes and preallocates them ahead of a commit as the fault
// path does with vmf->prealloc_pte; here every table page, entry write and TLB invalidation is
// counted per Mm, and pages can be reserved so that an operation's commit cannot run out.
#pragma once

#include "hugepte/commit.hpp"
#include "hugepte/entry.hpp"
#include "hugepte/mm/types.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"

namespace hugepte::mm {

// Counts table pages per level and entry writes, and holds the pages reserved ahead of an
// operation (commit.hpp's TablePool over the Env underneath, so a page counts when it is taken
// into the tables, not when it is reserved) so that the operation's commit cannot run out.
template <Format F, TableEnv Env>
class CountedEnv {
 public:
  static constexpr unsigned page_shift = Env::page_shift;

  CountedEnv(Env& env, Counters& c) : env_(&env), c_(&c), pool_(env) {}

  Result<uint64_t> alloc_table(unsigned level) {
    if (!pool_.empty(level)) {
      ++c_->pt_alloc[level];
      return pool_.take(level);
    }
    Result<uint64_t> r = env_->alloc_table(level);
    if (r) ++c_->pt_alloc[level];
    return r;
  }
  void free_table(uint64_t pa, unsigned level) {
    ++c_->pt_free[level];
    env_->free_table(pa, level);
  }
  uint64_t* table_ptr(uint64_t pa) { return env_->table_ptr(pa); }
  void on_entry_write(uint64_t* slot, unsigned level, uint64_t old, uint64_t value) {
    ++c_->entries_written;
    if constexpr (EnvObservesWrites<Env>) env_->on_entry_write(slot, level, old, value);
  }

  // Takes need[level] pages per level from the Env now. ENOMEM: none are kept.
  Err reserve(const uint64_t (&need)[F::levels]) { return pool_.reserve(need); }
  // Gives back what a reservation did not use.
  void unreserve() { pool_.release(); }
  Env& inner() { return *env_; }

 private:
  Env* env_;
  Counters* c_;
  TablePool<F, Env> pool_;
};

template <TlbSink Tlb>
struct CountedTlb {
  Tlb* tlb;
  Counters* c;
  void flush(const TlbFlush& f) {
    ++c->tlb_flush;
    c->last_flush = f;
    tlb->flush(f);
  }
  void flush_all() {
    ++c->tlb_flush_all;
    tlb->flush_all();
  }
  void publish() { tlb->publish(); }
};

}  // namespace hugepte::mm
