// hugepte/mm/counted.hpp - the table env and TLB sink an Mm runs on: counting wrappers. Linux
// counts table pages in mm->pgtables_bytes and preallocates them ahead of a commit as the fault
// path does with vmf->prealloc_pte; here every table page, entry write and TLB invalidation is
// counted per Mm, and pages can be reserved so that an operation's commit cannot run out.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/mm/types.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"

namespace hugepte::mm {

// Counts table pages per level and entry writes, and can hold pages reserved ahead of an
// operation so that its commit cannot run out.
template <TableEnv Env>
class CountedEnv {
 public:
  static constexpr unsigned page_shift = Env::page_shift;
  static constexpr unsigned kLevels = 8;

  CountedEnv(Env& env, Counters& c) : env_(&env), c_(&c) {}

  Result<u64> alloc_table(unsigned level) {
    if (stash_[level] != 0) {
      u64 pa = stash_[level];
      u64* p = env_->table_ptr(pa);
      stash_[level] = p[0];
      p[0] = 0;
      --stashed_[level];
      ++c_->pt_alloc[level];
      return pa;
    }
    Result<u64> r = env_->alloc_table(level);
    if (r) ++c_->pt_alloc[level];
    return r;
  }
  void free_table(u64 pa, unsigned level) {
    ++c_->pt_free[level];
    env_->free_table(pa, level);
  }
  u64* table_ptr(u64 pa) { return env_->table_ptr(pa); }
  void on_entry_write(u64* slot, unsigned level, u64 old, u64 value) {
    ++c_->entries_written;
    if constexpr (EnvObservesWrites<Env>) env_->on_entry_write(slot, level, old, value);
  }

  // Takes `n[level]` pages per level from the Env now. ENOMEM: none are kept.
  Err reserve(const u64* n) {
    for (unsigned l = 0; l < kLevels; ++l)
      for (u64 i = 0; i < n[l]; ++i) {
        Result<u64> r = env_->alloc_table(l);
        if (!r) {
          unreserve();
          return r.err;
        }
        env_->table_ptr(r.value)[0] = stash_[l];
        stash_[l] = r.value;
        ++stashed_[l];
      }
    return Err::ok;
  }
  // Gives back what a reservation did not use.
  void unreserve() {
    for (unsigned l = 0; l < kLevels; ++l)
      while (stash_[l] != 0) {
        u64 pa = stash_[l];
        u64* p = env_->table_ptr(pa);
        stash_[l] = p[0];
        p[0] = 0;
        env_->free_table(pa, l);
        --stashed_[l];
      }
  }
  Env& inner() { return *env_; }

 private:
  Env* env_;
  Counters* c_;
  u64 stash_[kLevels] = {};
  u64 stashed_[kLevels] = {};
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
