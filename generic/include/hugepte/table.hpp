// hugepte/table.hpp - one page table: its root, its table pages, and the only code that touches
// an entry in memory.
//
// Table pages come from an Env, which hands out *physical* addresses and maps them to pointers
// on request (host: a simulated physical space; bare metal: guest RAM, identity mapped). A table
// entry holds a physical address, never a pointer, exactly as the hardware walker sees it.
//
// Every load, store, exchange and compare-exchange of an entry goes through the primitives
// below, so that concurrent software walkers, parallel faults and the hardware's own A/D updates
// can be reasoned about in one place. Freestanding: no heap, no exceptions.
#pragma once

#include <atomic>
#include <concepts>

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"

namespace hugepte {

// Where table pages come from.
//   alloc_table(level) -> Result<uint64_t>: the PA of a zeroed, naturally aligned page of
//                         1 << page_shift bytes that will hold entries of `level`; ENOMEM if none.
//   free_table(pa, level): give it back (the caller has unlinked it and invalidated the TLB).
//   table_ptr(pa) -> uint64_t*: where the page at `pa` lives in this address space (the same
//   pointer
//                         for as long as the page stays allocated).
// Optional hook, called after every entry write with the value it replaced (host logs use it;
// bare-metal envs leave it out and pay nothing):
//   on_entry_write(uint64_t* slot, unsigned level, uint64_t old, uint64_t value)
template <class E>
concept TableEnv = requires(E& env, uint64_t pa, unsigned level) {
  { E::page_shift } -> std::convertible_to<unsigned>;
  { env.alloc_table(level) } -> std::same_as<Result<uint64_t>>;
  { env.free_table(pa, level) } -> std::same_as<void>;
  { env.table_ptr(pa) } -> std::same_as<uint64_t*>;
};

// A root larger than a page (arm64 stage 2's concatenated tables, riscv G-stage's 16 KiB root)
// comes from two more calls, for formats whose root_order<F>() is not 0:
//   alloc_table(level, order) -> Result<uint64_t>: 2^order zeroed pages, contiguous and aligned
//                                to their total size; table_ptr(pa) of the first reaches them all.
//   free_table(pa, level, order): give them back.
template <class E>
concept EnvAllocsRoots = requires(E& env, uint64_t pa, unsigned level, unsigned order) {
  { env.alloc_table(level, order) } -> std::same_as<Result<uint64_t>>;
  { env.free_table(pa, level, order) } -> std::same_as<void>;
};

template <class E>
concept EnvObservesWrites = requires(E& env, uint64_t* slot, unsigned level, uint64_t v) {
  env.on_entry_write(slot, level, v, v);
};

// Memory orders of the entry primitives, in one place:
//  - loads are relaxed. A software walker only dereferences what an entry points to through an
//    address computed from the loaded value; every CPU this library targets orders such
//    dependent loads (this is Linux's READ_ONCE rule), and the hardware walker ignores C++
//    ordering anyway.
//  - stores are release, so the contents of a freshly zeroed or filled table page are visible
//    before the entry that publishes it. (Making a store visible to the *hardware* walker needs
//    an architecture barrier; that is the TLB sink's publish(), see tlb.hpp.)
//  - exchange and compare-exchange are acq_rel: they both read what the hardware may have
//    updated (A/D bits) and publish the new value.
inline constexpr std::memory_order kEntryLoadOrder = std::memory_order_relaxed;
inline constexpr std::memory_order kEntryStoreOrder = std::memory_order_release;
inline constexpr std::memory_order kEntryRmwOrder = std::memory_order_acq_rel;

template <Format F, TableEnv Env>
class PageTable {
  static_assert(format_ok<F>(), "PageTable needs a sound format (see format_detail::problem)");
  static_assert(Env::page_shift == F::page_shift, "the Env's pages must be the format's pages");
  static_assert(root_order<F>() == 0 || EnvAllocsRoots<Env>,
                "this format's root spans several pages: the Env needs alloc_table(level, order)");

 public:
  using format = F;
  using env_type = Env;
  static constexpr unsigned kRoot = F::levels - 1;
  static constexpr unsigned kRootOrder = root_order<F>();

  explicit PageTable(Env& env) : env_(&env) {}
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;
  ~PageTable() { destroy(); }

  // Allocates the root table. Errors: ENOMEM; EEXIST if there is one already.
  Err init() {
    if (root_ != kNoRoot) return Err::eexist;
    Result<uint64_t> r;
    if constexpr (kRootOrder > 0)
      r = env_->alloc_table(kRoot, kRootOrder);
    else
      r = env_->alloc_table(kRoot);
    if (!r) return r.err;
    root_ = r.value;
    root_ptr_ = env_->table_ptr(root_);
    return Err::ok;
  }

  bool has_root() const { return root_ != kNoRoot; }
  uint64_t root() const { return root_; }  // physical address: what goes into CR3 / TTBR / satp
  uint64_t* root_table() const { return env_->table_ptr(root_); }
  // The root table as init() found it, nullptr without a root: one member read, so a loop of
  // single-address walks keeps it in a register (the hot paths lookup() and find() use it).
  uint64_t* root_table_or_null() const { return root_ptr_; }
  // The same, but a table of none entries without a root, so a walk needs no check first: it
  // finds nothing, and only then asks has_root() why.
  uint64_t* root_table_or_empty() const { return root_ptr_ ? root_ptr_ : empty_root_; }
  Env& env() const { return *env_; }
  uint64_t* table(uint64_t pa) const { return env_->table_ptr(pa); }

  // The table a table entry at `level` points to (holding entries of level - 1).
  uint64_t* child(uint64_t raw, unsigned level) const {
    return env_->table_ptr(F::out_addr(raw, level));
  }

  // --- entry primitives ----------------------------------------------------------------------
  static uint64_t load(uint64_t* slot) {
    return std::atomic_ref<uint64_t>(*slot).load(kEntryLoadOrder);
  }

  void store(uint64_t* slot, unsigned level, uint64_t value) const {
    if constexpr (EnvObservesWrites<Env>) {
      uint64_t old = std::atomic_ref<uint64_t>(*slot).exchange(value, kEntryRmwOrder);
      env_->on_entry_write(slot, level, old, value);
    } else {
      std::atomic_ref<uint64_t>(*slot).store(value, kEntryStoreOrder);
    }
  }

  uint64_t exchange(uint64_t* slot, unsigned level, uint64_t value) const {
    uint64_t old = std::atomic_ref<uint64_t>(*slot).exchange(value, kEntryRmwOrder);
    if constexpr (EnvObservesWrites<Env>) env_->on_entry_write(slot, level, old, value);
    return old;
  }

  // Writes n consecutive entries of a table that nothing can reach yet (built off-line, to be
  // published by one store()): value(i) goes to slots[i]. No walker can race with these
  // stores and the release store that publishes the table orders them before it, so they are
  // plain stores, which the compiler may merge into vector stores. With an Env that observes
  // writes, each goes through store() as usual.
  template <class Value>
  void fill_offline(uint64_t* slots, unsigned level, uint64_t n, Value value) const {
    if constexpr (EnvObservesWrites<Env>) {
      for (uint64_t i = 0; i < n; ++i) store(slots + i, level, value(i));
    } else {
      for (uint64_t i = 0; i < n; ++i) slots[i] = value(i);
    }
  }

  // On failure `expected` holds the current value, as with std::atomic.
  bool cmpxchg(uint64_t* slot, unsigned level, uint64_t& expected, uint64_t desired) const {
    uint64_t old = expected;
    bool ok = std::atomic_ref<uint64_t>(*slot).compare_exchange_strong(
        expected, desired, kEntryRmwOrder, kEntryLoadOrder);
    if constexpr (EnvObservesWrites<Env>) {
      if (ok) env_->on_entry_write(slot, level, old, desired);
    }
    return ok;
  }

  // --- table pages ---------------------------------------------------------------------------
  Result<uint64_t> alloc_table(unsigned level) const { return env_->alloc_table(level); }
  void free_table(uint64_t pa, unsigned level) const { env_->free_table(pa, level); }

  // Frees every table page reachable from the root, then the root. Leaves are not followed
  // (they map memory the table does not own). Safe to call twice.
  void destroy() {
    if (root_ == kNoRoot) return;
    free_below<kRoot>(root_);
    root_ = kNoRoot;
    root_ptr_ = nullptr;
  }

  // The one way a table page goes back: frees the table page at `pa` (holding entries of
  // `level`) and every table under it; leaves are not followed. The caller has unlinked it
  // and invalidated the walk caches for its range (commit.hpp's Invalidations and replace()).
  void free_tables(uint64_t pa, unsigned level) const { free_at<kRoot>(pa, level); }

 private:
  static constexpr uint64_t kNoRoot = ~uint64_t{0};
  static inline uint64_t empty_root_[bit(F::index_bits(kRoot))] =
      {};  // never written; decode(0) is none

  template <unsigned Level>
  void free_at(uint64_t pa, unsigned level) const {
    if (level == Level) return free_below<Level>(pa);
    if constexpr (Level > 0) free_at<Level - 1>(pa, level);
  }

  template <unsigned Level>
  void free_below(uint64_t pa) const {
    if constexpr (Level > 0) {
      uint64_t* t = env_->table_ptr(pa);
      for (uint64_t i = 0; i < bit(F::index_bits(Level)); ++i) {
        uint64_t raw = load(&t[i]);
        if (F::is_table(raw, Level)) free_below<Level - 1>(F::out_addr(raw, Level));
      }
    }
    if constexpr (Level == kRoot && kRootOrder > 0)
      env_->free_table(pa, Level, kRootOrder);
    else
      env_->free_table(pa, Level);
  }

  Env* env_;
  uint64_t root_ = kNoRoot;
  uint64_t* root_ptr_ = nullptr;
};

}  // namespace hugepte
