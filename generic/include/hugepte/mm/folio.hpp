// hugepte/mm/folio.hpp - what page tables map: folios, the pools they come from, and files with
// a page cache (Linux: struct folio, mm/hugetlb.c's hstate pools - alloc_hugetlb_folio,
// free_huge_folio -, and the page cache of mm/filemap.c and fallocate).
//
// A folio is 1 << shift bytes of physical memory, aligned to its size, with a refcount and a
// mapcount. Hugetlb folios come from a finite pool per size (the hstate pools of
// /sys/kernel/mm/hugepages); base-page folios (anonymous memory, shmem) from an ordinary
// allocator that may also run dry. Files are shmem-like (a page cache of base pages) or
// hugetlbfs-like (a page cache of hstate-sized folios).
//
// How a folio's mapcount moves is a policy chosen per Memory (Policy: S0, S1, S3); the policy
// itself - which counters an entry that maps or unmaps part of a folio moves - is rmap.hpp.
//
// Storage is all from the FolioEnv (no heap here): host tests give it host memory and a
// simulated physical space; bare-metal images give it guest RAM. Freestanding.
#pragma once

#include <concepts>

#include "hugepte/entry.hpp"

namespace hugepte::mm {

// Physical memory for folios and storage for the model's own metadata.
//   alloc_folio(shift) -> Result<uint64_t>: 1 << shift bytes aligned to their size (contents
//                         undefined); ENOMEM when there are none.
//   free_folio(pa, shift)
//   zero(pa, len), copy_in(pa, src, len), copy(dst_pa, src_pa, len): data movement (the host
//                         model may keep no data and do nothing; bare metal really copies)
//   alloc_meta(bytes) -> void*: zeroed, 8-byte aligned, nullptr when exhausted;
//   free_meta(p, bytes)
template <class E>
concept FolioEnv = requires(E& e, uint64_t pa, unsigned shift, const void* src, void* p,
                            uint64_t n) {
  { e.alloc_folio(shift) } -> std::same_as<Result<uint64_t>>;
  { e.free_folio(pa, shift) } -> std::same_as<void>;
  { e.zero(pa, n) } -> std::same_as<void>;
  { e.copy_in(pa, src, n) } -> std::same_as<void>;
  { e.copy(pa, pa, n) } -> std::same_as<void>;
  { e.alloc_meta(n) } -> std::same_as<void*>;
  { e.free_meta(p, n) } -> std::same_as<void>;
};

enum class Policy : uint8_t { s0, s1, s3 };

constexpr const char* policy_name(Policy p) {
  return p == Policy::s0 ? "S0" : p == Policy::s1 ? "S1" : "S3";
}

inline constexpr uint32_t kNoFolio = ~uint32_t{0};
inline constexpr uint32_t kNoFile = ~uint32_t{0};

struct Folio {
  uint64_t pa = 0;
  uint8_t shift = 0;
  bool used = false;
  bool hugetlb = false;   // from an hstate pool
  bool zero_page = false; // the shared zero page: never freed, never counted
  bool hwpoison = false;  // memory failure hit one of its base pages (poisoned_pa)
  bool migrating = false; // isolated for migration: not migratable now (collapse: EBUSY)
  uint32_t file = kNoFile;     // page-cache owner (kNoFile: anonymous)
  uint64_t index = 0;          // offset in the file, in units of the folio
  uint64_t poisoned_pa = 0;
  uint64_t anon_va = 0;                  // anonymous: where it is mapped ...
  const void* anon_owner = nullptr; // ... and by which address space
  uint64_t refcount = 0;
  uint64_t mapcount = 0;       // S0/S1: the folio's mapcount; S3: the entire (compound) mapcount
  uint32_t* subpage = nullptr; // S3: per base page mapcounts (allocated on first piece)
  uint64_t subpage_total = 0;  // S3: their sum, so folio_mapcount() is O(1)
  uint32_t deferred_puts = 0;            // references an unmap dropped before its TLB flush ...
  uint32_t next_deferred = kNoFolio;     // ... chained from Memory's list until put_deferred()
};

// Linux's struct resv_map (mm/hugetlb.c), as a bitmap over the file page indices
// [first, first + n). A hugetlbfs file's map (first 0) holds the indices reserved or holding a
// page; a private mapping's map holds the indices whose reservation a fault has used. Storage
// from alloc_meta (Memory::resv_grow).
struct ResvMap {
  uint64_t* words = nullptr;
  uint64_t first = 0;
  uint64_t n = 0;
  uint32_t refs = 0;  // a private mapping's map: how many VMAs share it (split_vma)

  bool has(uint64_t i) const {
    return i >= first && i - first < n && ((words[(i - first) >> 6] >> ((i - first) & 63)) & 1);
  }
  void set(uint64_t i) { words[(i - first) >> 6] |= uint64_t{1} << ((i - first) & 63); }
  void clear(uint64_t i) {
    if (i >= first && i - first < n)
      words[(i - first) >> 6] &= ~(uint64_t{1} << ((i - first) & 63));
  }
  // region_count: indices of [from, to) in the map.
  uint64_t count(uint64_t from, uint64_t to) const {
    uint64_t c = 0;
    for (uint64_t i = from; i < to; ++i) c += has(i);
    return c;
  }
  static constexpr uint64_t words_for(uint64_t n) { return (n + 63) / 64; }
};

enum class FileKind : uint8_t { shmem, hugetlb };

struct File {
  bool used = false;
  FileKind kind = FileKind::shmem;
  uint8_t shift = 0;        // page-cache granularity: base page (shmem) or the hstate (hugetlb)
  uint64_t size = 0;        // i_size, bytes
  uint32_t* cache = nullptr;  // folio id per index, kNoFolio when absent
  uint64_t cache_n = 0;       // indices `cache` holds (at least pages(): fallocate may fill past
                         // i_size before it grows it)
  ResvMap resv;          // hugetlb: the indices reserved by shared mappings or holding a page
  uint64_t pages() const { return size >> shift; }
};

// Counters the Memory keeps (the Mm keeps its own; see mm.hpp).
struct MemoryCounters {
  uint64_t folio_alloc = 0;
  uint64_t folio_free = 0;
  uint64_t subpage_mapcount_updates = 0;  // S3: per-page mapcount increments and decrements
};

template <FolioEnv FE, unsigned PageShift>
class Memory {
 public:
  static constexpr unsigned page_shift = PageShift;
  static constexpr unsigned kMaxFiles = 8;
  static constexpr unsigned kMaxPools = 8;

  // `max_folios` bounds how many folios exist at once (their records come from alloc_meta).
  Memory(FE& env, uint32_t max_folios, Policy policy) : env_(&env), policy_(policy) {
    folios_ = static_cast<Folio*>(env.alloc_meta(sizeof(Folio) * uint64_t{max_folios}));
    cap_ = folios_ ? max_folios : 0;
    hash_cap_ = 1;
    while (hash_cap_ < 2 * uint64_t{cap_}) hash_cap_ <<= 1;
    hash_ = static_cast<uint32_t*>(env.alloc_meta(sizeof(uint32_t) * hash_cap_));
    if (!hash_) cap_ = 0;
    for (uint64_t i = 0; hash_ && i < hash_cap_; ++i) hash_[i] = kNoFolio;
  }
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;
  ~Memory() {
    for (uint32_t i = 0; i < kMaxFiles; ++i)
      if (files_[i].used) drop_file_storage(files_[i]);
    for (uint32_t id = 0; id < top_; ++id)
      if (folios_[id].used) release_storage(folios_[id]);
    if (folios_) env_->free_meta(folios_, sizeof(Folio) * uint64_t{cap_});
    if (hash_) env_->free_meta(hash_, sizeof(uint32_t) * hash_cap_);
  }

  Policy policy() const { return policy_; }
  FE& env() { return *env_; }
  MemoryCounters& counters() { return counters_; }
  const MemoryCounters& counters() const { return counters_; }

  // --- pools ----------------------------------------------------------------------------------

  // Sets the number of free folios of 1 << shift (hugetlb: nr_hugepages for that hstate, as
  // free pages). Base-page folios are unlimited unless a pool is set for PageShift. As in
  // set_max_huge_pages, the free count never drops below the pages reservations hold.
  Err set_pool(unsigned shift, uint64_t free_count) {
    if (Pool* p = find_pool(shift))
      return p->free = free_count < p->resv ? p->resv : free_count, Err::ok;
    for (Pool& p : pools_)
      if (!p.used) return p = Pool{true, static_cast<uint8_t>(shift), free_count, 0}, Err::ok;
    return Err::enospc;
  }
  bool has_pool(unsigned shift) const { return find_pool(shift) != nullptr; }
  uint64_t pool_free(unsigned shift) const {
    const Pool* p = find_pool(shift);
    return p ? p->free : ~uint64_t{0};
  }

  // --- hugetlb reservations (mm/hugetlb.c: resv_huge_pages, hugetlb_acct_memory) -------------

  // Free pages of the pool that reservations hold (resv_huge_pages).
  uint64_t pool_reserved(unsigned shift) const {
    const Pool* p = find_pool(shift);
    return p ? p->resv : 0;
  }
  // Reserves n free pages of the pool. ENOMEM (nothing changes) if fewer are free and
  // unreserved; EINVAL if there is no pool of that size.
  Err reserve(unsigned shift, uint64_t n) {
    Pool* p = find_pool(shift);
    if (!p) return Err::einval;
    if (p->free - p->resv < n) return Err::enomem;
    p->resv += n;
    return Err::ok;
  }
  void unreserve(unsigned shift, uint64_t n) {
    if (Pool* p = find_pool(shift)) p->resv -= n < p->resv ? n : p->resv;
  }

  // A new folio with refcount 1 (the caller's). `reserved`: it uses one of the pool's
  // reservations (the caller holds one); otherwise it needs a free page no reservation holds.
  // Errors: ENOMEM (pool empty, no memory, no record); EINVAL a huge size with no pool.
  Result<uint32_t> alloc(unsigned shift, bool reserved = false) {
    Pool* p = find_pool(shift);
    if (!p && shift != PageShift) return Err::einval;
    if (p && (reserved ? p->free == 0 || p->resv == 0 : p->free <= p->resv)) return Err::enomem;
    uint32_t id = take_record();
    if (id == kNoFolio) return Err::enomem;
    Result<uint64_t> pa = env_->alloc_folio(shift);
    if (!pa) {
      give_record(id);
      return pa.err;
    }
    if (p) {
      --p->free;
      if (reserved) --p->resv;
    }
    Folio& f = folios_[id];
    f = Folio{};
    f.used = true;
    f.pa = pa.value;
    f.shift = static_cast<uint8_t>(shift);
    f.hugetlb = p != nullptr && shift != PageShift;
    f.refcount = 1;
    hash_insert(id);
    ++counters_.folio_alloc;
    return id;
  }
  // Whether a temporary page of 1 << shift could be had now (alloc_huge_page_vma, for a COPY
  // whose source must be faulted in): a size the buddy allocator serves (up to
  // kMaxBuddyShift, MAX_PAGE_ORDER 10 above the base page) comes from there, outside the pool;
  // a gigantic one only from the pool's free pages no reservation holds. ENOMEM otherwise.
  // The page is given back at once: nothing changes.
  static constexpr unsigned kMaxBuddyShift = PageShift + 10;
  Err temporary_page(unsigned shift) {
    if (shift > kMaxBuddyShift) {
      const Pool* p = find_pool(shift);
      return p && p->free > p->resv ? Err::ok : Err::enomem;
    }
    Result<uint64_t> pa = env_->alloc_folio(shift);
    if (!pa) return pa.err;
    env_->free_folio(pa.value, shift);
    return Err::ok;
  }

  // A reserved allocation that will not be used: the folio goes back and the reservation it
  // took is held again (restore_reserve_on_error).
  void free_unused(uint32_t id, bool reserved) {
    const unsigned shift = folios_[id].shift;
    put(id);
    if (Pool* p = find_pool(shift); p && reserved) ++p->resv;
  }

  // A map that can hold the indices [first, first + n) (more when it already did): the storage
  // grows, the contents stay. ENOMEM (nothing changes) when there is no room.
  Err resv_grow(ResvMap& m, uint64_t first, uint64_t n) {
    if (n == 0) return Err::ok;
    if (m.words && first >= m.first && first + n <= m.first + m.n) return Err::ok;
    if (m.words && first != m.first) return Err::einval;
    const uint64_t want = ResvMap::words_for(n), have = ResvMap::words_for(m.n);
    if (m.words && want <= have) return m.n = n, Err::ok;
    auto* w = static_cast<uint64_t*>(env_->alloc_meta(sizeof(uint64_t) * want));
    if (!w) return Err::enomem;
    for (uint64_t i = 0; i < have; ++i) w[i] = m.words[i];
    if (m.words) env_->free_meta(m.words, sizeof(uint64_t) * have);
    m.words = w;
    m.first = first;
    m.n = n;
    return Err::ok;
  }
  void resv_free(ResvMap& m) {
    if (m.words) env_->free_meta(m.words, sizeof(uint64_t) * ResvMap::words_for(m.n));
    m = ResvMap{};
  }

  // hugetlb_reserve_pages for a shared mapping of the file's page indices [first, first + n):
  // the indices not in the file's map yet are reserved from the pool and enter it. ENOMEM
  // (nothing changes) when the pool cannot give them. `check_only`: only say whether it could.
  Err reserve_file(uint32_t file, uint64_t first, uint64_t n, bool check_only) {
    File& f = files_[file];
    if (Err e = resv_grow(f.resv, 0, first + n); e != Err::ok) return e;
    const uint64_t chg = n - f.resv.count(first, first + n);
    const Pool* p = find_pool(f.shift);
    if (!p) return Err::einval;
    if (p->free - p->resv < chg) return Err::enomem;
    if (check_only) return Err::ok;
    reserve(f.shift, chg);
    for (uint64_t i = first; i < first + n; ++i) f.resv.set(i);
    return Err::ok;
  }

  // Drops one reference; the folio goes back to its pool at zero.
  void put(uint32_t id) {
    Folio& f = folios_[id];
    if (f.zero_page) return;
    if (--f.refcount != 0) return;
    hash_remove(id);
    release_storage(f);
    if (Pool* p = find_pool(f.shift)) ++p->free;
    f.used = false;
    give_record(id);
    ++counters_.folio_free;
  }
  void get(uint32_t id) {
    if (!folios_[id].zero_page) ++folios_[id].refcount;
  }

  // Linux's mmu_gather: an unmap drops a mapping's reference only once the TLB flush for it
  // has been issued (tlb_finish_mmu frees pages after the flush), so no folio is freed, and
  // reused, while a CPU may still reach it. put_later() records the reference (chained through
  // the folio, so there is no limit and no storage), put_deferred() drops them all.
  void put_later(uint32_t id) {
    Folio& f = folios_[id];
    if (f.zero_page) return;
    if (f.deferred_puts++ == 0) {
      f.next_deferred = deferred_;
      deferred_ = id;
    }
  }
  void put_deferred() {
    while (deferred_ != kNoFolio) {
      const uint32_t id = deferred_;
      Folio& f = folios_[id];
      deferred_ = f.next_deferred;
      uint32_t n = f.deferred_puts;
      f.deferred_puts = 0;
      f.next_deferred = kNoFolio;
      while (n-- != 0) put(id);
    }
  }
  bool puts_deferred() const { return deferred_ != kNoFolio; }

  Folio& folio(uint32_t id) { return folios_[id]; }
  const Folio& folio(uint32_t id) const { return folios_[id]; }

  // The folio containing physical address pa, or kNoFolio.
  uint32_t folio_at(uint64_t pa) const {
    for (unsigned s = 0; s < 64; ++s) {
      if (!(size_mask_ & bit(s))) continue;
      uint32_t id = hash_find(align_down(pa, s), s);
      if (id != kNoFolio) return id;
    }
    return kNoFolio;
  }

  // The shared zero page (allocated once, never freed while the Memory lives).
  Result<uint32_t> zero_page() {
    if (zero_ == kNoFolio) {
      Result<uint32_t> r = alloc(PageShift);
      if (!r) return r;
      zero_ = r.value;
      folios_[zero_].zero_page = true;
      env_->zero(folios_[zero_].pa, bit(PageShift));
    }
    return zero_;
  }

  // folio_mapcount: S0/S1 the counter; S3 entire + every per-page count.
  uint64_t mapcount(uint32_t id) const { return folios_[id].mapcount + folios_[id].subpage_total; }

  // --- the address spaces over this memory ---------------------------------------------------

  // Each address space (Mm) registers here, so that one can act on another's mappings, as
  // rmap walks do in Linux:
  //   unmap_ref_private(self, folio): unmap `folio` from your private hugetlb mappings that
  //     are not its owner's (a private hugetlb owner taking a page back from its children);
  //   unmap_mapping_range(self, file, start, end): zap every mapping you have of the file's
  //     bytes [start, end) (hole punch).
  struct Mapper {
    void* self = nullptr;
    void (*unmap_ref_private)(void* self, uint32_t folio) = nullptr;
    Err (*unmap_mapping_range)(void* self, uint32_t file, uint64_t start, uint64_t end) = nullptr;
  };
  static constexpr unsigned kMaxMappers = 8;
  void add_mapper(const Mapper& m) {
    for (Mapper& slot : mappers_)
      if (!slot.self) return void(slot = m);
  }
  void remove_mapper(const void* self) {
    for (Mapper& slot : mappers_)
      if (slot.self == self) slot = Mapper{};
  }
  // Every other address space unmaps `folio` from its non-owner private hugetlb mappings.
  void unmap_ref_private(const void* owner, uint32_t folio) {
    for (const Mapper& m : mappers_)
      if (m.self && m.self != owner) m.unmap_ref_private(m.self, folio);
  }

  // --- files and the page cache -----------------------------------------------------------------

  // A file of `size` bytes whose page cache holds folios of 1 << shift (shmem: PageShift;
  // hugetlb: an hstate size with a pool). Errors: EINVAL (size not a multiple, no pool for a
  // hugetlb size), ENOSPC (no file slot), ENOMEM (no room for the cache index).
  Result<uint32_t> create_file(FileKind kind, unsigned shift, uint64_t size) {
    if (kind == FileKind::shmem && shift != PageShift) return Err::einval;
    if (kind == FileKind::hugetlb && (shift <= PageShift || !has_pool(shift))) return Err::einval;
    if (size == 0 || !aligned(size, shift)) return Err::einval;
    for (uint32_t i = 0; i < kMaxFiles; ++i) {
      File& f = files_[i];
      if (f.used) continue;
      uint64_t n = size >> shift;
      if (kind == FileKind::hugetlb && resv_grow(f.resv, 0, n) != Err::ok) return Err::enomem;
      f.cache = static_cast<uint32_t*>(env_->alloc_meta(sizeof(uint32_t) * n));
      if (!f.cache) {
        resv_free(f.resv);
        return Err::enomem;
      }
      for (uint64_t k = 0; k < n; ++k) f.cache[k] = kNoFolio;
      f.used = true;
      f.kind = kind;
      f.shift = static_cast<uint8_t>(shift);
      f.size = size;
      f.cache_n = n;
      return i;
    }
    return Err::enospc;
  }
  File& file(uint32_t id) { return files_[id]; }
  const File& file(uint32_t id) const { return files_[id]; }

  // Grows the file to `size` (i_size_write): the new pages are holes. ENOMEM if the page-cache
  // array cannot grow (nothing changes); a smaller size changes nothing.
  Err grow_file(uint32_t file, uint64_t size) {
    File& f = files_[file];
    if (size <= f.size) return Err::ok;
    if (!aligned(size, f.shift)) return Err::einval;
    if (f.kind == FileKind::hugetlb) {
      if (Err e = resv_grow(f.resv, 0, size >> f.shift); e != Err::ok) return e;
    }
    if (Err e = cache_room(f, size >> f.shift); e != Err::ok) return e;
    f.size = size;
    return Err::ok;
  }

  // The folio the page cache holds at index (also past i_size), or kNoFolio.
  uint32_t cache_lookup(uint32_t file, uint64_t index) const {
    const File& f = files_[file];
    return index < f.cache_n ? f.cache[index] : kNoFolio;
  }
  // Adds a folio to the cache (the cache takes its own reference). EEXIST if the index is taken.
  Err cache_add(uint32_t file, uint64_t index, uint32_t id) {
    File& f = files_[file];
    if (index >= f.cache_n) return Err::efault;
    if (f.cache[index] != kNoFolio) return Err::eexist;
    f.cache[index] = id;
    folios_[id].file = file;
    folios_[id].index = index;
    get(id);
    return Err::ok;
  }
  // Drops the cache's reference (after every mapping was zapped: hole punch). A hugetlbfs
  // index leaves the reservation map with its page (remove_inode_single_folio's
  // hugetlb_unreserve_pages(index, index + 1, freed 1): the page used the reservation, so the
  // pool's count does not move); an index with no page keeps its reservation.
  void cache_remove(uint32_t file, uint64_t index) {
    File& f = files_[file];
    uint32_t id = f.cache[index];
    if (id == kNoFolio) return;
    f.cache[index] = kNoFolio;
    f.resv.clear(index);
    put(id);
  }

  // fallocate(PUNCH_HOLE | KEEP_SIZE) of [offset, offset + len), as hugetlbfs_punch_hole and
  // shmem_fallocate: the pages wholly inside the hole go - every address space's mappings of
  // them are zapped (unmap_mapping_range; uffd-wp protected pages leave uffd-wp markers), then
  // the page cache drops them (a hugetlbfs index its reservation with its page) -, the partial
  // pages at the edges are zeroed in place, and nothing past the cached pages matters.
  // Errors: EINVAL (no such file, len 0, the range wraps); ENOMEM (a table page to split a
  // leaf at an edge of the hole; the address spaces before it are zapped already, the page
  // cache is untouched).
  Err punch_hole(uint32_t file, uint64_t offset, uint64_t len) {
    if (file >= kMaxFiles || !files_[file].used) return Err::einval;
    if (len == 0 || offset + len < offset) return Err::einval;
    const File& fl = files_[file];
    const uint64_t cached_end = fl.cache_n << fl.shift;  // the cache may hold pages past i_size
    if (offset >= cached_end) return Err::ok;            // (so rounding offset up cannot wrap)
    const uint64_t page = bit(fl.shift);
    const uint64_t hole_start = align_down(offset + page - 1, fl.shift);
    const uint64_t hole_end = align_down(offset + len, fl.shift);
    // The partial pages: zeroed where they are cached (hugetlbfs_zero_partial_page).
    auto zero_part = [&](uint64_t from, uint64_t to) {
      const uint32_t id = cache_lookup(file, from >> fl.shift);
      if (from < to && id != kNoFolio) env().zero(folio(id).pa + (from & (page - 1)), to - from);
    };
    if (offset < hole_start)
      zero_part(offset, offset + len < hole_start ? offset + len : hole_start);
    if (offset + len > hole_end && offset + len > hole_start)
      zero_part(hole_end > offset ? hole_end : offset, offset + len);
    const uint64_t end = hole_end < cached_end ? hole_end : cached_end;
    if (hole_start >= end) return Err::ok;
    for (const Mapper& m : mappers_) {
      if (!m.self) continue;
      if (Err e = m.unmap_mapping_range(m.self, file, hole_start, end); e != Err::ok) return e;
    }
    for (uint64_t i = hole_start >> fl.shift; i < end >> fl.shift; ++i) cache_remove(file, i);
    return Err::ok;
  }

  // fallocate(mode 0): every page the range touches (rounded out to whole pages) gets a
  // zeroed folio, and a range past the end extends the file once every page is there.
  //   - hugetlbfs (hugetlbfs_fallocate): page by page, from the index's reservation if it has
  //     one (its index then enters the file's map); when the pool runs out it stops with ENOSPC
  //     and the pages it got stay, past i_size too - the file does not grow;
  //   - shmem (shmem_fallocate): all or nothing; ENOMEM gives every page it took back.
  // Errors: EINVAL (no such file, len 0, the range wraps), ENOSPC / ENOMEM as above.
  Err fallocate(uint32_t file, uint64_t offset, uint64_t len) {
    if (file >= kMaxFiles || !files_[file].used) return Err::einval;
    File& f = files_[file];
    if (len == 0 || offset + len < offset || offset + len > ~uint64_t{0} - bit(f.shift))
      return Err::einval;
    const uint64_t first = offset >> f.shift,
                   end = align_down(offset + len + bit(f.shift) - 1, f.shift);
    const uint64_t n = (end >> f.shift) - first;
    if (Err e = cache_room(f, first + n); e != Err::ok) return e;
    if (f.kind == FileKind::hugetlb) {
      if (Err e = resv_grow(f.resv, 0, first + n); e != Err::ok) return e;
      for (uint64_t i = first; i < first + n; ++i) {
        if (f.cache[i] != kNoFolio) continue;
        Result<uint32_t> r = alloc(f.shift, f.resv.has(i));
        if (!r) return r.err == Err::enomem ? Err::enospc : r.err;
        env_->zero(folios_[r.value].pa, bit(f.shift));
        cache_add(file, i, r.value);
        f.resv.set(i);
        put(r.value);  // the cache's reference remains
      }
      if (end > f.size) f.size = end;
      return Err::ok;
    }
    // Phase 1 takes every folio (chained through `index`); phase 2, which cannot fail, adds them.
    uint32_t chain = kNoFolio;
    for (uint64_t i = first; i < first + n; ++i) {
      if (f.cache[i] != kNoFolio) continue;
      Result<uint32_t> r = alloc(f.shift);
      if (!r) {
        while (chain != kNoFolio) {
          uint32_t next = static_cast<uint32_t>(folios_[chain].index);
          put(chain);
          chain = next;
        }
        return r.err;
      }
      folios_[r.value].index = chain;
      chain = r.value;
    }
    for (uint64_t i = first + n; i-- > first;) {
      if (f.cache[i] != kNoFolio) continue;
      uint32_t id = chain;
      chain = static_cast<uint32_t>(folios_[id].index);
      env_->zero(folios_[id].pa, bit(f.shift));
      cache_add(file, i, id);
      put(id);  // the cache's reference remains
    }
    if (end > f.size) f.size = end;
    return Err::ok;
  }

 private:
  struct Pool {
    bool used = false;
    uint8_t shift = 0;
    uint64_t free = 0;  // free_huge_pages
    uint64_t resv = 0;  // resv_huge_pages: free pages reservations hold
  };

  const Pool* find_pool(unsigned shift) const {
    for (const Pool& p : pools_)
      if (p.used && p.shift == shift) return &p;
    return nullptr;
  }
  Pool* find_pool(unsigned shift) {
    for (Pool& p : pools_)
      if (p.used && p.shift == shift) return &p;
    return nullptr;
  }

  uint32_t take_record() {
    if (free_head_ != kNoFolio) {
      uint32_t id = free_head_;
      free_head_ = static_cast<uint32_t>(folios_[id].index);
      return id;
    }
    return top_ < cap_ ? top_++ : kNoFolio;
  }
  void give_record(uint32_t id) {
    folios_[id].index = free_head_;
    free_head_ = id;
  }

  void release_storage(Folio& f) {
    if (f.subpage) env_->free_meta(f.subpage, sizeof(uint32_t) * bit(f.shift - PageShift));
    f.subpage = nullptr;
    env_->free_folio(f.pa, f.shift);
  }
  // The page-cache array holds at least n indices (new ones empty). ENOMEM changes nothing.
  Err cache_room(File& f, uint64_t n) {
    if (n <= f.cache_n) return Err::ok;
    auto* cache = static_cast<uint32_t*>(env_->alloc_meta(sizeof(uint32_t) * n));
    if (!cache) return Err::enomem;
    for (uint64_t k = 0; k < n; ++k) cache[k] = k < f.cache_n ? f.cache[k] : kNoFolio;
    env_->free_meta(f.cache, sizeof(uint32_t) * f.cache_n);
    f.cache = cache;
    f.cache_n = n;
    return Err::ok;
  }
  void drop_file_storage(File& f) {
    env_->free_meta(f.cache, sizeof(uint32_t) * f.cache_n);
    f.cache = nullptr;
    resv_free(f.resv);
  }

  // pa -> folio: open addressing on the folio's base address (sizes tried per lookup are the
  // few that exist, tracked in size_mask_).
  uint64_t slot_of(uint64_t pa) const {
    return (pa * 0x9E3779B97F4A7C15ull >> 20) & (hash_cap_ - 1);
  }
  void hash_insert(uint32_t id) {
    size_mask_ |= bit(folios_[id].shift);
    for (uint64_t s = slot_of(folios_[id].pa);; s = (s + 1) & (hash_cap_ - 1))
      if (hash_[s] == kNoFolio || hash_[s] == kTomb) return void(hash_[s] = id);
  }
  void hash_remove(uint32_t id) {
    for (uint64_t s = slot_of(folios_[id].pa);; s = (s + 1) & (hash_cap_ - 1)) {
      if (hash_[s] == kNoFolio) return;
      if (hash_[s] == id) return void(hash_[s] = kTomb);
    }
  }
  uint32_t hash_find(uint64_t pa, unsigned shift) const {
    if (!hash_) return kNoFolio;
    for (uint64_t s = slot_of(pa);; s = (s + 1) & (hash_cap_ - 1)) {
      uint32_t id = hash_[s];
      if (id == kNoFolio) return kNoFolio;
      if (id != kTomb && folios_[id].pa == pa && folios_[id].shift == shift) return id;
    }
  }

  static constexpr uint32_t kTomb = kNoFolio - 1;

  FE* env_;
  Policy policy_;
  Folio* folios_ = nullptr;
  uint32_t cap_ = 0, top_ = 0, free_head_ = kNoFolio;
  uint32_t deferred_ = kNoFolio;  // put_later()'s list, through Folio::next_deferred
  uint32_t* hash_ = nullptr;
  uint64_t hash_cap_ = 0;
  uint64_t size_mask_ = 0;
  Pool pools_[kMaxPools];
  File files_[kMaxFiles];
  Mapper mappers_[kMaxMappers];
  uint32_t zero_ = kNoFolio;
  MemoryCounters counters_;
};

}  // namespace hugepte::mm
