// hugepte/env/host.hpp - the host environment: table pages in a simulated physical address
// space, an event log, and a software TLB that remembers what hardware may have cached.
//
// Hosted (uses the standard library); only host tests, tools and benchmarks include it.
//  - Env hands out physical addresses from [pa_base, ...), never host pointers, so a table entry
//    holding a host pointer, or a PA used as a pointer, fails loudly. Freed pages are poisoned
//    and quarantined; touching one aborts with a message. Allocation failure can be injected at
//    the Nth allocation, and allocations/frees are counted per level.
//  - Log records every entry write (through the Env hook of table.hpp) and every TLB request in
//    one sequence, so tests can assert orders such as break-before-make.
//  - TlbModel is a TlbSink. It caches translations the way a TLB may: one entry per leaf,
//    plus one per whole contiguous group (hardware may cache a group as one entry or its
//    sub-entries one by one; both are kept, so a flush with too coarse a stride is caught too),
//    plus walk-cache entries for table entries. A flush drops only what it really reaches:
//    stride and level hint are honoured, and a leaf-only flush keeps walk caches. stale()
//    compares every cached entry with a fresh walk of the tables.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte::host {

// --- event log -------------------------------------------------------------------------------

struct Event {
  enum class Type : uint8_t { write, flush, flush_all, publish };
  Type type = Type::write;
  // write
  uint64_t* slot = nullptr;
  unsigned level = 0;
  uint64_t old = 0;
  uint64_t value = 0;
  // flush
  TlbFlush flush{};
};

class Log {
 public:
  void add(const Event& e) {
    if (enabled) events_.push_back(e);
  }
  void clear() { events_.clear(); }
  const std::vector<Event>& events() const { return events_; }
  std::size_t size() const { return events_.size(); }
  const Event& operator[](std::size_t i) const { return events_[i]; }

  std::size_t count(Event::Type t) const {
    std::size_t n = 0;
    for (const Event& e : events_) n += e.type == t;
    return n;
  }

  bool enabled = true;

 private:
  std::vector<Event> events_;
};

// --- physical memory for table pages ---------------------------------------------------------

template <unsigned PageShift>
class Env {
 public:
  static constexpr unsigned page_shift = PageShift;
  static constexpr uint64_t kDefaultBase = uint64_t{1} << 32;  // 4 GiB: not where host heaps live
  static constexpr unsigned kMaxLevels = 8;
  static constexpr std::size_t kQuarantine = 16;  // freed pages wait this long before reuse

  explicit Env(uint64_t pa_base = kDefaultBase, Log* log = nullptr) : base_(pa_base), log_(log) {
    if (!aligned(pa_base, PageShift)) die("pa_base must be page aligned", pa_base);
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  void set_log(Log* log) { log_ = log; }

  // --- TableEnv ---
  Result<uint64_t> alloc_table(unsigned level) {
    if (level >= kMaxLevels) die("alloc_table: bad level", level);
    ++attempts_;
    if (fail_at_ != 0 && (attempts_ == fail_at_ || (fail_sticky_ && attempts_ > fail_at_))) {
      ++failed_;
      return Err::enomem;
    }
    std::size_t index;
    if (free_.size() > kQuarantine) {
      index = free_.front();
      free_.pop_front();
    } else {
      index = pages_.size();
      auto owner = std::make_unique<uint64_t[]>(kWords);
      uint64_t* mem = owner.get();
      pages_.push_back(Page{std::move(owner), mem, false, 0, 0});
    }
    Page& p = pages_[index];
    std::fill(p.mem, p.mem + kWords, uint64_t{0});
    p.live = true;
    p.level = level;
    ++allocs_[level];
    return base_ + (uint64_t{index} << PageShift);
  }

  void free_table(uint64_t pa, unsigned level) {
    Page& p = page(pa, "free_table");
    if (p.level != level) die("free_table: level differs from the one allocated", pa);
    if (p.order != 0) die("free_table: a multi-page root freed as one page", pa);
    std::fill(p.mem, p.mem + kWords, kPoison);
    p.live = false;
    ++frees_[level];
    free_.push_back(index_of_pa(pa));
  }

  // A root of 2^order pages (arm64 stage 2's concatenated tables, riscv G-stage's 16 KiB root):
  // one host buffer behind 2^order page frames aligned to their total size, counted as one
  // table. Never reused once freed (tests allocate few of them).
  Result<uint64_t> alloc_table(unsigned level, unsigned order) {
    if (order == 0) return alloc_table(level);
    if (level >= kMaxLevels || order > 8) die("alloc_table: bad level or order", order);
    ++attempts_;
    if (fail_at_ != 0 && (attempts_ == fail_at_ || (fail_sticky_ && attempts_ > fail_at_))) {
      ++failed_;
      return Err::enomem;
    }
    const std::size_t n = std::size_t{1} << order;
    while (pages_.size() % n != 0) pages_.push_back(Page{nullptr, nullptr, false, 0, kTailPage});
    auto owner = std::make_unique<uint64_t[]>(kWords * n);
    uint64_t* mem = owner.get();
    const std::size_t head = pages_.size();
    pages_.push_back(Page{std::move(owner), mem, true, level, order});
    for (std::size_t i = 1; i < n; ++i)
      pages_.push_back(Page{nullptr, mem + i * kWords, true, level, kTailPage});
    ++allocs_[level];
    return base_ + (uint64_t{head} << PageShift);
  }

  void free_table(uint64_t pa, unsigned level, unsigned order) {
    if (order == 0) return free_table(pa, level);
    Page& p = page(pa, "free_table");
    if (p.level != level || p.order != order)
      die("free_table: level or order differs from the one allocated", pa);
    const std::size_t head = index_of_pa(pa);
    std::fill(p.mem, p.mem + (kWords << order), kPoison);
    for (std::size_t i = 0; i < (std::size_t{1} << order); ++i) pages_[head + i].live = false;
    ++frees_[level];
  }

  uint64_t* table_ptr(uint64_t pa) {
    ++table_ptr_calls_;
    Page& p = page(pa, "table_ptr");
    if (p.order == kTailPage) die("table_ptr: a page that is no table's first page", pa);
    return p.mem;
  }

  void on_entry_write(uint64_t* slot, unsigned level, uint64_t old, uint64_t value) {
    if (log_) log_->add(Event{Event::Type::write, slot, level, old, value, {}});
  }

  // --- failure injection ---
  // The n-th allocation from now fails (1 = the next one); with `and_after`, so does every
  // later one. fail_nth_alloc(0) disarms.
  void fail_nth_alloc(uint64_t n, bool and_after = false) {
    fail_at_ = n == 0 ? 0 : attempts_ + n;
    fail_sticky_ = and_after;
  }
  uint64_t failed_allocs() const { return failed_; }
  uint64_t alloc_attempts() const { return attempts_; }

  // --- accounting ---
  uint64_t allocs(unsigned level) const { return allocs_[level]; }
  uint64_t frees(unsigned level) const { return frees_[level]; }
  uint64_t live(unsigned level) const { return allocs_[level] - frees_[level]; }
  uint64_t live() const {
    uint64_t n = 0;
    for (unsigned l = 0; l < kMaxLevels; ++l) n += live(l);
    return n;
  }
  uint64_t allocs() const {
    uint64_t n = 0;
    for (unsigned l = 0; l < kMaxLevels; ++l) n += allocs_[l];
    return n;
  }
  uint64_t table_ptr_calls() const { return table_ptr_calls_; }
  void reset_table_ptr_calls() { table_ptr_calls_ = 0; }
  bool is_live(uint64_t pa) const {
    if (pa < base_ || !aligned(pa - base_, PageShift)) return false;
    std::size_t i = static_cast<std::size_t>((pa - base_) >> PageShift);
    return i < pages_.size() && pages_[i].live;
  }

  // Every live page's contents, in PA order: "the tables are bit-identical to before".
  std::vector<std::pair<uint64_t, std::vector<uint64_t>>> snapshot() const {
    std::vector<std::pair<uint64_t, std::vector<uint64_t>>> s;
    for (std::size_t i = 0; i < pages_.size(); ++i)
      if (pages_[i].live)
        s.emplace_back(base_ + (uint64_t{i} << PageShift),
                       std::vector<uint64_t>(pages_[i].mem, pages_[i].mem + kWords));
    return s;
  }

 private:
  static constexpr std::size_t kWords = std::size_t{1} << (PageShift - 3);
  static constexpr uint64_t kPoison = 0xdeadbeefdeadbeefull;

  struct Page {
    std::unique_ptr<uint64_t[]> owner;  // null for the later pages of a multi-page root
    uint64_t* mem;
    bool live;
    unsigned level;
    unsigned order;  // of a multi-page root's first page; kTailPage for its later pages
  };
  static constexpr unsigned kTailPage = ~0u;

  [[noreturn]] static void die(const char* what, uint64_t v) {
    std::fprintf(stderr, "hugepte host env: %s (0x%llx)\n", what,
                 static_cast<unsigned long long>(v));
    std::abort();
  }

  std::size_t index_of_pa(uint64_t pa) const {
    return static_cast<std::size_t>((pa - base_) >> PageShift);
  }

  Page& page(uint64_t pa, const char* who) {
    if (pa < base_ || !aligned(pa - base_, PageShift) || index_of_pa(pa) >= pages_.size()) {
      std::fprintf(stderr, "hugepte host env: %s of a PA that is no table page\n", who);
      die("bad physical address", pa);
    }
    Page& p = pages_[index_of_pa(pa)];
    if (!p.live) {
      std::fprintf(stderr, "hugepte host env: %s of a freed table page\n", who);
      die("use after free", pa);
    }
    return p;
  }

  uint64_t base_;
  Log* log_;
  std::vector<Page> pages_;
  std::deque<std::size_t> free_;
  uint64_t allocs_[kMaxLevels] = {};
  uint64_t frees_[kMaxLevels] = {};
  uint64_t attempts_ = 0;
  uint64_t fail_at_ = 0;
  bool fail_sticky_ = false;
  uint64_t failed_ = 0;
  uint64_t table_ptr_calls_ = 0;
};

template <Format F>
using EnvFor = Env<F::page_shift>;

// --- translations ----------------------------------------------------------------------------

// What one TLB entry holds: [va, va + 2^shift) -> [pa, ...), with what the hardware enforces.
struct Translation {
  uint64_t va = 0;
  uint8_t shift = 0;
  uint8_t level = 0;        // level of the leaf entry (or the group's sub-entries)
  bool group = false;  // the whole contiguous group as one entry
  uint64_t pa = 0;
  Prot prot{};
  MemType mem = MemType::normal;
  bool global = false;
  constexpr bool operator==(const Translation&) const = default;
  uint64_t pa_of(uint64_t addr) const { return pa + (addr - va); }
};

// A cached table entry: the walk for [va, va + 2^shift) continues at table_pa.
struct WalkCacheEntry {
  uint64_t va = 0;
  uint8_t shift = 0;
  uint8_t level = 0;  // level of the table entry
  uint64_t table_pa = 0;
  constexpr bool operator==(const WalkCacheEntry&) const = default;
};

// The output address for `addr` through the valid leaf `e` read at a slot for `addr`. Group
// formats differ in what sub-entries hold (each its own address, or all the group's base); the
// group's base is the sub-entry's address aligned down to the group in both cases.
constexpr uint64_t leaf_pa(const Entry& e, uint64_t addr) {
  if (e.cont_shift != 0) return align_down(e.addr, e.cont_shift) + (addr & (bit(e.cont_shift) - 1));
  return e.addr + (addr & (bit(e.shift) - 1));
}

// A fresh walk: the translation of the single leaf entry mapping va (not the group).
template <Format F, TableEnv E>
std::optional<Translation> translate_leaf(const PageTable<F, E>& pt, uint64_t va) {
  Result<Found> f = find(pt, va, 0);
  if (!f || !F::is_leaf(f.value.raw, f.value.level)) return std::nullopt;
  Entry e = F::decode(f.value.raw, f.value.level);
  unsigned shift = F::shift(f.value.level);
  uint64_t base = align_down(va, shift);
  return Translation{base,
                     static_cast<uint8_t>(shift),
                     static_cast<uint8_t>(f.value.level),
                     false,
                     leaf_pa(e, base),
                     e.prot,
                     e.mem,
                     e.global};
}

inline std::string describe(const Translation& t) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s va=0x%llx/%u level=%u -> pa=0x%llx %c%c%c%c %s",
                t.group ? "group" : "leaf", static_cast<unsigned long long>(t.va), t.shift, t.level,
                static_cast<unsigned long long>(t.pa), t.prot.read ? 'r' : '-',
                t.prot.write ? 'w' : '-', t.prot.exec ? 'x' : '-', t.prot.user ? 'u' : '-',
                memtype_name(t.mem));
  return buf;
}

// --- software TLB ----------------------------------------------------------------------------

struct StaleEntry {
  std::string what;  // the cached entry, described
  std::string why;   // how the tables disagree
};

class TlbModel {
 public:
  explicit TlbModel(Log* log = nullptr) : log_(log) {}
  void set_log(Log* log) { log_ = log; }

  // --- TlbSink ---
  void flush(const TlbFlush& f) {
    flushes_.push_back(f);
    if (log_) log_->add(Event{Event::Type::flush, nullptr, 0, 0, 0, f});
    std::erase_if(leaves_, [&](const Translation& t) {
      return (f.level == kAnyLevel || f.level == t.level) && flush_hits(f, t.va, t.shift);
    });
    if (!f.leaf_only)
      std::erase_if(walks_, [&](const WalkCacheEntry& w) { return flush_hits(f, w.va, w.shift); });
  }
  void flush_all() {
    ++flush_alls_;
    if (log_) log_->add(Event{Event::Type::flush_all, nullptr, 0, 0, 0, {}});
    leaves_.clear();
    walks_.clear();
  }
  void publish() {
    ++publishes_;
    if (log_) log_->add(Event{Event::Type::publish, nullptr, 0, 0, 0, {}});
  }

  // --- the hardware side ---
  // A hardware access to va: a TLB hit returns the cached entry (stale or not, as hardware
  // would); a miss walks the tables and caches what the walk found.
  template <Format F, TableEnv E>
  std::optional<Translation> access(const PageTable<F, E>& pt, uint64_t va) {
    if (auto hit = lookup(va)) return hit;
    if (!F::canonical(va) || !pt.has_root()) return std::nullopt;
    // The hardware's walk for va: every table it passes goes into the walk cache, and a valid
    // leaf into the TLB (invalid entries are never cached).
    bool leaf = false;
    walk(pt, align_down(va, F::page_shift), align_down(va, F::page_shift) + bit(F::page_shift),
         WalkFlags{.leaf = true, .table_pre = true}, [&](const VisitCtx& v, Visit how) {
           if (how == Visit::table_pre) {
             insert(WalkCacheEntry{v.base(), static_cast<uint8_t>(v.shift),
                                   static_cast<uint8_t>(v.level), F::out_addr(v.old, v.level)});
             return Step::next();
           }
           if (F::is_leaf(v.old, v.level)) {
             insert_leaf<F>(F::decode(v.old, v.level), v.level, va);
             leaf = true;
           }
           return Step::stop();
         });
    if (leaf) return lookup(va);
    return std::nullopt;
  }

  // Caches everything the hardware may have cached for [start, end): every valid leaf, every
  // whole group, every table entry on the way. Existing entries are kept as they are (a TLB
  // does not refresh an entry it holds).
  template <Format F, TableEnv E>
  Err prime(const PageTable<F, E>& pt, uint64_t start, uint64_t end) {
    return walk(pt, start, end, WalkFlags{.leaf = true, .table_pre = true},
                [&](const VisitCtx& c, Visit v) -> Step {
                  if (v == Visit::table_pre) {
                    insert(WalkCacheEntry{c.base(), static_cast<uint8_t>(c.shift),
                                          static_cast<uint8_t>(c.level),
                                          F::out_addr(c.old, c.level)});
                  } else if (F::is_leaf(c.old, c.level)) {
                    insert_leaf<F>(F::decode(c.old, c.level), c.level, c.base());
                  }
                  return Step::next();
                });
  }

  // The cached translation covering va, if any (a group entry is preferred: it is what a
  // hardware with contiguous-bit support would hit).
  std::optional<Translation> lookup(uint64_t va) const {
    const Translation* best = nullptr;
    for (const Translation& t : leaves_)
      if (va >= t.va && va - t.va < bit(t.shift) && (!best || t.shift > best->shift)) best = &t;
    if (best) return *best;
    return std::nullopt;
  }

  // --- checking against the tables ---
  // Every cached entry that disagrees with a fresh walk: it maps an address the tables no longer
  // map, to another PA or memory type, or with a permission the tables no longer grant. (A
  // cached entry granting *less* is not stale: it costs a spurious fault, not a wrong access.)
  template <Format F, TableEnv E>
  std::vector<StaleEntry> stale(const PageTable<F, E>& pt) const {
    std::vector<StaleEntry> out;
    for (const Translation& t : leaves_) {
      std::string why = disagreement(pt, t);
      if (!why.empty()) out.push_back({describe(t), why});
    }
    for (const WalkCacheEntry& w : walks_) {
      Result<Found> f = find(pt, w.va, w.level);
      bool ok = f && f.value.level == w.level && w.level > 0 && F::is_table(f.value.raw, w.level) &&
                F::out_addr(f.value.raw, w.level) == w.table_pa;
      if (!ok) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "walk cache va=0x%llx/%u level=%u -> table 0x%llx",
                      static_cast<unsigned long long>(w.va), w.shift, w.level,
                      static_cast<unsigned long long>(w.table_pa));
        out.push_back({buf, "the table entry no longer points there"});
      }
    }
    return out;
  }

  // lookup(va) agrees with a fresh walk (true when nothing is cached for va).
  template <Format F, TableEnv E>
  bool agrees(const PageTable<F, E>& pt, uint64_t va) const {
    std::optional<Translation> t = lookup(va);
    if (!t) return true;
    std::optional<Translation> fresh = translate_leaf(pt, va);
    return fresh && fresh->pa_of(va) == t->pa_of(va) && fresh->mem == t->mem &&
           grants_no_more(t->prot, fresh->prot);
  }

  const std::vector<Translation>& leaves() const { return leaves_; }
  const std::vector<WalkCacheEntry>& walk_entries() const { return walks_; }
  const std::vector<TlbFlush>& flushes() const { return flushes_; }
  uint64_t flush_alls() const { return flush_alls_; }
  uint64_t publishes() const { return publishes_; }
  void forget_history() {
    flushes_.clear();
    flush_alls_ = publishes_ = 0;
  }

 private:
  static bool grants_no_more(const Prot& cached, const Prot& now) {
    return (!cached.read || now.read) && (!cached.write || now.write) &&
           (!cached.exec || now.exec) && (!cached.user || now.user);
  }

  template <Format F, TableEnv E>
  std::string disagreement(const PageTable<F, E>& pt, const Translation& t) const {
    std::string why;
    Err e =
        walk(pt, t.va, t.va + bit(t.shift), WalkFlags{.leaf = true},
             [&](const VisitCtx& c, Visit) -> Step {
               char buf[160];
               if (!F::is_leaf(c.old, c.level)) {
                 std::snprintf(buf, sizeof buf, "0x%llx is not mapped now (level %u entry 0x%llx)",
                               static_cast<unsigned long long>(c.addr), c.level,
                               static_cast<unsigned long long>(c.old));
               } else {
                 Entry now = F::decode(c.old, c.level);
                 uint64_t pa = leaf_pa(now, c.addr);
                 if (pa != t.pa_of(c.addr)) {
                   std::snprintf(buf, sizeof buf, "0x%llx maps to 0x%llx now, cached 0x%llx",
                                 static_cast<unsigned long long>(c.addr),
                                 static_cast<unsigned long long>(pa),
                                 static_cast<unsigned long long>(t.pa_of(c.addr)));
                 } else if (now.mem != t.mem) {
                   std::snprintf(buf, sizeof buf, "0x%llx is %s now",
                                 static_cast<unsigned long long>(c.addr), memtype_name(now.mem));
                 } else if (!grants_no_more(t.prot, now.prot)) {
                   std::snprintf(buf, sizeof buf, "0x%llx grants less now (%c%c%c%c)",
                                 static_cast<unsigned long long>(c.addr), now.prot.read ? 'r' : '-',
                                 now.prot.write ? 'w' : '-', now.prot.exec ? 'x' : '-',
                                 now.prot.user ? 'u' : '-');
                 } else {
                   return Step::next();
                 }
               }
               why = buf;
               return Step::stop();
             });
    if (e != Err::ok) why = std::string("walk failed: ") + err_name(e);
    return why;
  }

  void insert(const WalkCacheEntry& w) {
    for (const WalkCacheEntry& x : walks_)
      if (x.va == w.va && x.level == w.level) return;
    walks_.push_back(w);
  }

  void insert(const Translation& t) {
    for (const Translation& x : leaves_)
      if (x.va == t.va && x.shift == t.shift && x.group == t.group) return;
    leaves_.push_back(t);
  }

  // The leaf entry read at `level` for va, and its whole group if it belongs to one.
  template <Format F>
  void insert_leaf(const Entry& e, unsigned level, uint64_t va) {
    unsigned shift = F::shift(level);
    uint64_t base = align_down(va, shift);
    insert(Translation{base, static_cast<uint8_t>(shift), static_cast<uint8_t>(level), false,
                       leaf_pa(e, base), e.prot, e.mem, e.global});
    if (e.cont_shift != 0) {
      uint64_t gbase = align_down(va, e.cont_shift);
      insert(Translation{gbase, e.cont_shift, static_cast<uint8_t>(level), true, leaf_pa(e, gbase),
                         e.prot, e.mem, e.global});
    }
  }

  Log* log_;
  std::vector<Translation> leaves_;
  std::vector<WalkCacheEntry> walks_;
  std::vector<TlbFlush> flushes_;
  uint64_t flush_alls_ = 0;
  uint64_t publishes_ = 0;
};

static_assert(TlbSink<TlbModel>);

// --- folio memory for the mm model (mm/folio.hpp's FolioEnv) --------------------------------

// Simulated physical memory for folios: addresses from a range far from the table pages, aligned
// to each folio's size, no data behind them (the host model checks where things are mapped; the
// bare-metal images check the bytes). Counts live folios and metadata so tests can see leaks,
// and can be told to run dry.
class Folios {
 public:
  // 128 GiB: above the table pages (host::Env starts at 4 GiB), below the narrowest PA width
  // of any format (the fake exemplar's 40 bits).
  explicit Folios(uint64_t pa_base = uint64_t{1} << 37) : next_(pa_base) {}

  Result<uint64_t> alloc_folio(unsigned shift) {
    if (fail_) return Err::enomem;
    uint64_t size = bit(shift);
    next_ = (next_ + size - 1) & ~(size - 1);
    uint64_t pa = next_;
    next_ += size;
    ++live_;
    return pa;
  }
  void free_folio(uint64_t, unsigned) { --live_; }
  void zero(uint64_t, uint64_t) { ++zeroed_; }
  void copy_in(uint64_t, const void*, uint64_t) { ++copies_; }
  void copy(uint64_t, uint64_t, uint64_t) { ++copies_; }
  void* alloc_meta(uint64_t n) {
    ++meta_live_;
    return std::calloc(1, n == 0 ? 1 : n);
  }
  void free_meta(void* p, uint64_t) {
    --meta_live_;
    std::free(p);
  }

  void fail(bool on) { fail_ = on; }  // alloc_folio says ENOMEM while on
  uint64_t live() const { return live_; }
  uint64_t meta_live() const { return meta_live_; }
  uint64_t copies() const { return copies_; }
  uint64_t zeroed() const { return zeroed_; }

 private:
  uint64_t next_;
  uint64_t live_ = 0, meta_live_ = 0, copies_ = 0, zeroed_ = 0;
  bool fail_ = false;
};

}  // namespace hugepte::host
