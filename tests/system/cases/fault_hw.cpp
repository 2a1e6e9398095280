// fault_hw.cpp - real traps go to the one generic fault handler (hugepte::mm::Mm::handle_fault),
// in every image.
//
// Each case builds an address space (hugepte::mm::Mm) whose folios are guest RAM (GuestFolios)
// and whose root table becomes the live root: the harness' identity map is copied into the
// root slots outside the cases' VA window, so the MMU walks exactly what the Mm wrote, root-level
// leaves included (riscv Sv39's 1 GiB pages). The harness' fault hook hands every fault inside
// a VMA to handle_fault(va, access) and retries the access when the result is "handled"; any
// other result is recorded (kind, lsb) and the probe fails, so a case can tell the SIGSEGV path
// from SIGBUS and its lsb. The Mm runs with Options{.user = false}: the guest runs privileged.
//
// Sizes come from the format: the "1G class" is the largest leaf size <= 1 GiB (x86 and riscv
// 1 GiB, arm64 4K 1 GiB block, 16K 1 GiB CONT-PMD group, 64K 512 MiB block), the "2M class" the
// largest <= 2 MiB. Expected counters are derived from the geometry. Random choices print their
// seed.
#include <initializer_list>

#include "guest.hpp"
#include "guest_env.hpp"
#include "guest_format.hpp"
#include "hpt_test.hpp"
#include "hugepte/mm/mm.hpp"

namespace {

namespace guest = hpt::guest;
namespace mm = hugepte::mm;
using hugepte::bit;
using hugepte::Entry;
using hugepte::Err;
using hugepte::Kind;
using F = guest::GuestFormat;
using Env = guest::GuestEnv<F::page_shift>;
using Mm = mm::Mm<F, Env, guest::GuestTlb, guest::GuestFolios>;
using Mem = Mm::Mem;
using hpt::Rng;

constexpr unsigned kPageShift = F::page_shift;
constexpr uint64_t kPage = bit(kPageShift);
constexpr unsigned kRoot = F::levels - 1;
constexpr uint64_t kWordOff = 0x100;  // where a page's tag word lives

// The cases' VA window: far above the identity map, inside the canonical lower half.
constexpr uint64_t kVaBase = uint64_t{1} << (F::va_bits - 2);
constexpr uint64_t kWindow = uint64_t{16} << 30;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// Guest RAM per case: metadata, then table pages, then folios (free RAM, then high RAM).
constexpr uint64_t kMetaBytes = uint64_t{8} << 20;
constexpr uint64_t kTableBytes = uint64_t{32} << 20;
constexpr uint32_t kMaxFolios = 4096;

constexpr hugepte::LeafSizes<F> kSizes = hugepte::leaf_sizes<F>();

// The largest leaf size above the base page and at most 2^limit, or 0.
constexpr unsigned largest_leaf(unsigned limit) {
  unsigned best = 0;
  for (unsigned i = 0; i < kSizes.count; ++i)
    if (kSizes.shift[i] > kPageShift && kSizes.shift[i] <= limit && kSizes.shift[i] > best)
      best = kSizes.shift[i];
  return best;
}
constexpr unsigned kH1G = largest_leaf(30);
constexpr unsigned kH2M = largest_leaf(21);

constexpr unsigned level_of(unsigned shift) {
  return shift == kPageShift ? 0 : hugepte::huge_size<F>(shift).value.level;
}
// Raw entries one logical leaf of 1 << shift occupies.
constexpr uint64_t entries_of(unsigned shift) { return bit(shift - F::shift(level_of(shift))); }

void say(const char* s) { hpt::out(s); }
void say_hex(uint64_t v) { hpt::out_u64(v, 16); }
void say_seed(const char* what, uint64_t seed) {
  say("    ");
  say(what);
  say(" seed ");
  say_hex(seed);
  say("\n");
}

uint64_t tag(uint64_t va, uint64_t salt) { return ((va + salt) * 0x9e3779b97f4a7c15ull) | 1; }
volatile uint64_t& phys(uint64_t pa) { return *reinterpret_cast<volatile uint64_t*>(pa); }

// --- the world: an Mm on guest RAM, live on the MMU, behind the fault hook ----------------------

// What the hook saw.
struct HookLog {
  unsigned calls = 0;     // faults the hook saw
  unsigned handled = 0;   // handle_fault said "handled": retried
  unsigned outside = 0;   // outside every VMA: not the Mm's, declined
  unsigned declined = 0;  // handle_fault said something else: the probe fails
  guest::Fault fault{};   // the last fault
  mm::FaultResult last{}; // handle_fault's last result
};

struct World;
World* g_world = nullptr;
bool on_fault(const guest::Fault& f);

Mm::Options options() {
  Mm::Options o;
  o.user = false;  // the guest runs privileged: supervisor pages
  return o;
}

struct World {
  guest::GuestFolios folios;
  Env env;
  guest::GuestTlb tlb;
  Mem mem;
  Mm mm;
  HookLog log;
  uint64_t harness_root = 0;
  bool live = false;

  explicit World(mm::Policy policy = mm::Policy::s1, const Mm::Options& opt = options())
      : folios({ram(), ram() + kMetaBytes},
               {ram() + kMetaBytes + kTableBytes, guest::free_ram_base() + guest::free_ram_size()},
               {guest::high_ram_base(), guest::high_ram_base() + guest::high_ram_size()}),
        env(ram() + kMetaBytes, ram() + kMetaBytes + kTableBytes),
        mem(folios, kMaxFolios, policy),
        mm(mem, env, tlb, opt) {}
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World() { leave(); }

  static uint64_t ram() { return guest::free_ram_base(); }
  static unsigned first_slot() { return hugepte::index_of<F>(kVaBase, kRoot); }
  static unsigned last_slot() { return hugepte::index_of<F>(kVaBase + kWindow - 1, kRoot); }
  static bool in_window(unsigned i) { return i >= first_slot() && i <= last_slot(); }

  // The Mm's root becomes the live root: every harness root slot outside the window is copied.
  bool init() {
    if (mm.init() != Err::ok) return false;
    harness_root = guest::current_root();
    const auto* src = reinterpret_cast<const volatile uint64_t*>(harness_root);
    uint64_t* dst = mm.table().root_table();
    for (unsigned i = 0; i < bit(F::index_bits(kRoot)); ++i) {
      if (in_window(i)) {
        if (src[i] != 0) return false;  // the harness maps something where the cases work
        continue;
      }
      dst[i] = src[i];
    }
    guest::set_root(mm.table().root());
    live = true;
    g_world = this;
    guest::set_fault_hook(&on_fault);
    return true;
  }
  // Back to the harness' root; the copied slots go before the Mm frees its tables.
  void leave() {
    if (!live) return;
    guest::set_fault_hook(nullptr);
    g_world = nullptr;
    guest::set_root(harness_root);
    uint64_t* dst = mm.table().root_table();
    for (unsigned i = 0; i < bit(F::index_bits(kRoot)); ++i)
      if (!in_window(i)) dst[i] = 0;
    live = false;
  }

  // FNV-1a over every raw entry of the window's tables: equal digests, bit-identical tables.
  uint64_t digest() {
    uint64_t h = 14695981039346656037ull;
    const uint64_t* root = mm.table().root_table();
    for (unsigned i = first_slot(); i <= last_slot(); ++i) h = mix(h, root[i], kRoot);
    return h;
  }
  uint64_t mix(uint64_t h, uint64_t raw, unsigned level) {
    h = (h ^ raw) * 1099511628211ull;
    if (level == 0 || !F::is_table(raw, level)) return h;
    const uint64_t* t = env.table_ptr(F::out_addr(raw, level));
    for (uint64_t i = 0; i < bit(F::index_bits(level - 1)); ++i) h = mix(h, t[i], level - 1);
    return h;
  }

  Mm::View view(uint64_t va) const { return mm.view(va); }
  uint32_t folio_of(uint64_t va) const {
    Mm::View v = mm.view(va);
    return hugepte::pte::present(v.entry) ? mem.folio_at(v.entry.addr) : mm::kNoFolio;
  }
};

mm::Access to_mm(guest::Access a) {
  return a == guest::Access::write ? mm::Access::write
         : a == guest::Access::exec ? mm::Access::exec
                                    : mm::Access::read;
}

bool on_fault(const guest::Fault& f) {
  World* w = g_world;
  if (!w) return false;
  ++w->log.calls;
  w->log.fault = f;
  if (!w->mm.vma_at(f.addr)) {
    ++w->log.outside;
    return false;
  }
  w->log.last = w->mm.handle_fault(f.addr, to_mm(f.access));
  if (w->log.last.handled()) {
    ++w->log.handled;
    return true;
  }
  ++w->log.declined;
  return false;
}

bool rd(uint64_t va, uint64_t& v) {
  guest::Fault f;
  return guest::probe_read(va, v, f);
}
bool wr(uint64_t va, uint64_t v) {
  guest::Fault f;
  return guest::probe_write(va, v, f);
}

mm::VmaSpec anon(uint64_t start, uint64_t len, unsigned max_shift,
                 hugepte::Prot prot = hugepte::kProtRW) {
  mm::VmaSpec s;
  s.start = start;
  s.len = len;
  s.prot = prot;
  s.max_shift = max_shift;
  return s;
}
mm::VmaSpec file_vma(uint64_t start, uint64_t len, uint32_t file, bool shared, uint64_t pgoff = 0) {
  mm::VmaSpec s;
  s.start = start;
  s.len = len;
  s.prot = hugepte::kProtRW;
  s.shared = shared;
  s.backing = mm::Backing::file;
  s.file = file;
  s.pgoff = pgoff;
  return s;
}

// Tables a first fault allocates in an empty address space for a leaf of 1 << shift: one per
// level from the leaf's up to the one below the root.
void expect_first_fault_tables(hpt::Ctx& hpt_ctx, const mm::Counters& c, unsigned shift) {
  const unsigned lvl = level_of(shift);
  for (unsigned l = 0; l < F::levels; ++l)
    HPT_EXPECT_EQ(c.pt_alloc[l], uint64_t{l >= lvl && l < kRoot});
  HPT_EXPECT_EQ(c.pt_free_total(), 0u);
  // Each new table is linked by one entry, then the leaf's raw entries are written.
  HPT_EXPECT_EQ(c.entries_written, uint64_t{kRoot - lvl} + entries_of(shift));
  HPT_EXPECT_EQ(c.notif_start, 0u);  // an install into none: no invalidation (docs/mm.md §1.4)
  HPT_EXPECT_EQ(c.tlb_flush, 0u);
}

// Pages of a leaf [base, base + 2^shift) to touch: all of them up to `max`, else `max` spread
// over the leaf (one random page per stride) plus the first and the last.
template <class Fn>
void for_sample_pages(uint64_t base, unsigned shift, Rng& rng, uint64_t max, Fn fn) {
  const uint64_t n = bit(shift - kPageShift);
  if (n <= max) {
    for (uint64_t i = 0; i < n; ++i) fn(base + i * kPage);
    return;
  }
  const uint64_t stride = n / max;
  fn(base);
  for (uint64_t k = 0; k < max; ++k) fn(base + (k * stride + rng.below(stride)) * kPage);
  fn(base + (n - 1) * kPage);
}

// --- demand paging ---------------------------------------------------------------------------

// An anonymous VMA allowing folios of 1 << shift, exactly one such block: the first touch maps
// exactly one leaf of that size (a new zeroed folio from its pool), every later touch in the
// block takes no fault, data written is read back through the MMU and sits in the folio.
void first_touch(hpt::Ctx& hpt_ctx, unsigned shift, uint64_t seed) {
  World w;
  HPT_ASSERT(w.init());
  if (shift > kPageShift) HPT_ASSERT_EQ(w.mem.set_pool(shift, 1), Err::ok);
  if (!w.folios.room_for(shift)) HPT_SKIP("guest RAM has no room for a folio of this size");
  const uint64_t base = kVaBase;
  HPT_ASSERT(w.mm.mmap(anon(base, bit(shift), shift)).ok());
  Rng rng{seed};
  const uint64_t pages = bit(shift - kPageShift);
  const uint64_t first = base + rng.below(pages) * kPage + kWordOff;
  w.mm.reset_counters();

  HPT_ASSERT(wr(first, tag(first, seed)));
  HPT_EXPECT_EQ(w.log.calls, 1u);
  HPT_EXPECT_EQ(w.log.handled, 1u);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::new_folio);
  HPT_EXPECT_EQ(unsigned{w.log.last.shift}, shift);
  HPT_EXPECT_EQ(w.log.fault.addr, first);
  HPT_EXPECT(w.log.fault.access == guest::Access::write);
  const mm::Counters c = w.mm.counters();
  HPT_EXPECT_EQ(c.faults, 1u);
  HPT_EXPECT_EQ(c.fault_kind[static_cast<unsigned>(mm::FaultKind::handled)], 1u);
  expect_first_fault_tables(hpt_ctx, c, shift);

  const Mm::View v = w.view(first);
  HPT_EXPECT_EQ(v.entry.kind, Kind::leaf);
  HPT_EXPECT_EQ(v.shift, shift);
  HPT_EXPECT_EQ(v.level, level_of(shift));
  HPT_EXPECT(v.entry.writable && v.entry.accessed && v.entry.dirty && !v.entry.prot.user);
  const uint32_t id = w.folio_of(first);
  HPT_ASSERT(id != mm::kNoFolio);
  const mm::Folio& fo = w.mem.folio(id);
  HPT_EXPECT_EQ(unsigned{fo.shift}, shift);
  HPT_EXPECT_EQ(v.entry.addr, fo.pa);
  HPT_EXPECT_EQ(w.mem.mapcount(id), 1u);
  HPT_EXPECT_EQ(fo.refcount, 1u);
  HPT_EXPECT_EQ(w.mem.counters().folio_alloc, 1u);
  if (shift > kPageShift) HPT_EXPECT_EQ(w.mem.pool_free(shift), 0u);

  // Untouched pages read zero (a zeroed folio), then take a tag each; nothing faults again.
  unsigned bad = 0;
  auto expect_word = [&](uint64_t va, uint64_t want) {
    uint64_t got = ~want;
    const bool ok = rd(va, got) && got == want && phys(fo.pa + (va - base)) == want;
    if (!ok && bad++ < 4) {
      say("    va ");
      say_hex(va);
      say(" read ");
      say_hex(got);
      say(" want ");
      say_hex(want);
      say("\n");
    }
  };
  const uint64_t fp = hugepte::align_down(first, kPageShift);
  Rng pick = rng;
  for_sample_pages(base, shift, pick, 4096,
                   [&](uint64_t p) { expect_word(p + kWordOff, p == fp ? tag(first, seed) : 0); });
  pick = rng;
  for_sample_pages(base, shift, pick, 4096, [&](uint64_t p) {
    if (!wr(p + kWordOff, tag(p + kWordOff, seed)) && bad++ < 4) say("    a write faulted\n");
  });
  pick = rng;
  for_sample_pages(base, shift, pick, 4096,
                   [&](uint64_t p) { expect_word(p + kWordOff, tag(p + kWordOff, seed)); });
  HPT_EXPECT_EQ(bad, 0u);
  HPT_EXPECT_EQ(w.log.calls, 1u);
  HPT_EXPECT_EQ(w.mm.counters().faults, 1u);
}

}  // namespace

HPT_CASE(fault_hw, FirstTouchOfAnAnonymousVmaMapsOneBasePage) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  say_seed("first touch", 0x5eed0001);
  first_touch(hpt_ctx, kPageShift, 0x5eed0001);
}

HPT_CASE(fault_hw, FirstTouchOfAnAnonymousVmaMapsOne2MClassLeaf) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  if (kH2M == 0) HPT_SKIP("this format has no leaf size between the base page and 2 MiB");
  say_seed("first touch", 0x5eed0002);
  first_touch(hpt_ctx, kH2M, 0x5eed0002);
}

HPT_CASE(fault_hw, FirstTouchOfAnAnonymousVmaMapsOne1GClassLeaf) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  if (kH1G == 0 || kH1G == kH2M)
    HPT_SKIP("this format has no leaf size between 2 MiB and 1 GiB");
  say_seed("first touch", 0x5eed0003);
  first_touch(hpt_ctx, kH1G, 0x5eed0003);
}

// Every other leaf size up to the 1G class: contiguous groups (arm64 CONT, riscv NAPOT) and
// block sizes between the classes (arm64 16K's 32 MiB block).
HPT_CASE(fault_hw, FirstTouchMapsEveryOtherLeafSizeUpToThe1GClass) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  unsigned ran = 0;
  for (unsigned i = 0; i < kSizes.count; ++i) {
    const unsigned s = kSizes.shift[i];
    if (s <= kPageShift || s > kH1G || s == kH2M || s == kH1G) continue;
    say("    leaf shift ");
    hpt::out_u64(s);
    say("\n");
    say_seed("first touch", 0x5eed0100 + s);
    first_touch(hpt_ctx, s, 0x5eed0100 + s);
    ++ran;
  }
  if (ran == 0)
    HPT_SKIP("every leaf size up to the 1 GiB class is the base page or one of the two classes");
}

namespace {

// --- hugetlbfs -----------------------------------------------------------------------------

// A hugetlbfs file of one hstate page mapped MAP_SHARED twice: the first touch maps the hstate
// leaf (a new folio from the pool, added to the page cache), the second mapping maps the same
// folio from the cache, and data written through either is read through the other.
void hugetlb_shared(hpt::Ctx& hpt_ctx, unsigned h) {
  World w;
  HPT_ASSERT(w.init());
  HPT_ASSERT_EQ(w.mem.set_pool(h, 1), Err::ok);
  const auto file = w.mem.create_file(mm::FileKind::hugetlb, h, bit(h));
  HPT_ASSERT(file.ok());
  const uint64_t a = kVaBase, b = kVaBase + kGiB;
  HPT_ASSERT(w.mm.mmap(file_vma(a, bit(h), file.value, true)).ok());
  HPT_ASSERT(w.mm.mmap(file_vma(b, bit(h), file.value, true)).ok());
  const uint64_t off = bit(h) - kPage + kWordOff;  // the last page: far from where b's fault lands
  w.mm.reset_counters();

  HPT_ASSERT(wr(a + off, 0xa1));
  HPT_EXPECT_EQ(w.log.calls, 1u);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::new_folio);
  HPT_EXPECT_EQ(unsigned{w.log.last.shift}, h);
  expect_first_fault_tables(hpt_ctx, w.mm.counters(), h);
  const Mm::View va = w.view(a);
  HPT_EXPECT_EQ(va.entry.kind, Kind::leaf);
  HPT_EXPECT_EQ(va.shift, h);
  const uint32_t id = w.mem.cache_lookup(file.value, 0);
  HPT_ASSERT(id != mm::kNoFolio);
  HPT_EXPECT_EQ(w.folio_of(a), id);
  HPT_EXPECT(w.mem.folio(id).hugetlb);
  HPT_EXPECT_EQ(w.mem.pool_free(h), 0u);

  uint64_t v = 0;
  HPT_EXPECT(rd(b + kWordOff, v));
  HPT_EXPECT_EQ(v, 0u);  // zeroed
  HPT_EXPECT(rd(b + off, v));
  HPT_EXPECT_EQ(v, 0xa1u);
  HPT_EXPECT_EQ(w.log.calls, 2u);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::page_cache);
  HPT_EXPECT_EQ(unsigned{w.log.last.shift}, h);
  const Mm::View vb = w.view(b);
  HPT_EXPECT_EQ(vb.shift, h);
  HPT_EXPECT_EQ(vb.entry.addr, va.entry.addr);
  HPT_EXPECT_EQ(w.mem.mapcount(id), 2u);           // one per mapping
  HPT_EXPECT_EQ(w.mem.folio(id).refcount, 3u);     // the cache and both mappings
  HPT_EXPECT_EQ(w.mem.counters().folio_alloc, 1u);

  // b's read mapped it writable and, being hugetlb, dirty (make_huge_pte's mkdirty): a write
  // takes no fault, even where the walker does not record dirty itself.
  HPT_EXPECT(vb.entry.writable && vb.entry.dirty);
  HPT_EXPECT(wr(b + kWordOff, 0xb2));
  HPT_EXPECT_EQ(w.log.calls, 2u);
  const unsigned calls = w.log.calls;
  HPT_EXPECT(rd(a + kWordOff, v));
  HPT_EXPECT_EQ(v, 0xb2u);
  HPT_EXPECT_EQ(phys(w.mem.folio(id).pa + kWordOff), 0xb2u);
  // Every other sampled page of both mappings: no fault, the same word through either.
  Rng rng{0x5eed0200 + h};
  unsigned bad = 0;
  for_sample_pages(0, h, rng, 256, [&](uint64_t p) {
    uint64_t x = 0, y = 0;
    if (!wr(a + p + 8, tag(p, h)) || !rd(b + p + 8, x) || x != tag(p, h)) ++bad;
    if (!wr(b + p + 16, tag(p, 3)) || !rd(a + p + 16, y) || y != tag(p, 3)) ++bad;
  });
  HPT_EXPECT_EQ(bad, 0u);
  HPT_EXPECT_EQ(w.log.calls, calls);
}

}  // namespace

HPT_CASE(fault_hw, HugetlbfsSharedMappingsMapTheHstateLeafAndShareItsData) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  unsigned ran = 0;
  for (unsigned i = 0; i < kSizes.count; ++i) {
    const unsigned h = kSizes.shift[i];
    if (h <= kPageShift || h >= kH1G) continue;  // the 1G class: Live1GClass... below
    say("    hstate shift ");
    hpt::out_u64(h);
    say("\n");
    say_seed("sample", 0x5eed0200 + h);
    hugetlb_shared(hpt_ctx, h);
    ++ran;
  }
  if (ran == 0) HPT_SKIP("this format has no huge leaf size below the 1 GiB class");
}

namespace {

// --- copy on write -------------------------------------------------------------------------

// A private mapping of a file whose page is in the page cache: a read maps the cached page
// read-only, a write is resolved by CoW into a new anonymous folio of the entry's size (one
// invalidate pair over the entry), and the file's page keeps its bytes.
void private_cow(hpt::Ctx& hpt_ctx, unsigned shift) {
  World w;
  HPT_ASSERT(w.init());
  const bool huge = shift > kPageShift;
  if (huge) HPT_ASSERT_EQ(w.mem.set_pool(shift, 2), Err::ok);  // the cache's page and the copy
  const uint64_t size = huge ? bit(shift) : 4 * kPage;
  const auto file =
      w.mem.create_file(huge ? mm::FileKind::hugetlb : mm::FileKind::shmem, shift, size);
  HPT_ASSERT(file.ok());
  HPT_ASSERT_EQ(w.mem.fallocate(file.value, 0, size), Err::ok);
  const uint64_t index = huge ? 0 : 2;  // shmem: the third page
  const uint32_t old = w.mem.cache_lookup(file.value, index);
  HPT_ASSERT(old != mm::kNoFolio);
  const uint64_t old_pa = w.mem.folio(old).pa;
  // The file's bytes: a word at the start, in the middle and at the end of the page.
  const uint64_t o1 = kWordOff, o2 = bit(shift) / 2 + 8, o3 = bit(shift) - 8;
  phys(old_pa + o1) = 0x111;
  phys(old_pa + o2) = 0x222;
  phys(old_pa + o3) = 0x333;

  const uint64_t p = kVaBase, s = kVaBase + kGiB;
  HPT_ASSERT(w.mm.mmap(file_vma(p, size, file.value, false)).ok());
  HPT_ASSERT(w.mm.mmap(file_vma(s, size, file.value, true)).ok());
  const uint64_t unit = p + index * bit(shift);
  w.mm.reset_counters();

  uint64_t v = 0;
  HPT_EXPECT(rd(unit + o1, v));
  HPT_EXPECT_EQ(v, 0x111u);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::page_cache);
  HPT_EXPECT_EQ(unsigned{w.log.last.shift}, shift);
  // Reads of the other words too: the MMU caches read-only translations of the file's page
  // (for a huge entry, one per base page it touched), which the CoW must invalidate.
  HPT_EXPECT(rd(unit + o2, v));
  HPT_EXPECT_EQ(v, 0x222u);
  HPT_EXPECT(rd(unit + o3, v));
  HPT_EXPECT_EQ(v, 0x333u);
  const Mm::View before = w.view(unit);
  HPT_EXPECT_EQ(before.entry.addr, old_pa);
  HPT_EXPECT(!before.entry.writable);
  HPT_EXPECT_EQ(w.mem.mapcount(old), 1u);

  w.mm.reset_counters();
  HPT_EXPECT(wr(unit + o1, 0x999));
  HPT_EXPECT_EQ(w.log.calls, 2u);
  HPT_EXPECT(w.log.fault.permission);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::cow);
  HPT_EXPECT_EQ(unsigned{w.log.last.shift}, shift);
  const mm::Counters c = w.mm.counters();
  HPT_EXPECT_EQ(c.cow, 1u);
  HPT_EXPECT_EQ(c.notif_start, 1u);
  HPT_EXPECT_EQ(c.notif_end, 1u);
  HPT_EXPECT(c.notif_log[0] == (mm::Notification{mm::NotifyEvent::clear, unit, unit + bit(shift)}));
  HPT_EXPECT(c.tlb_flush >= 1u);
  HPT_EXPECT_EQ(c.pt_alloc_total(), 0u);

  const Mm::View after = w.view(unit);
  HPT_EXPECT_EQ(after.entry.kind, Kind::leaf);
  HPT_EXPECT_EQ(after.shift, shift);
  HPT_EXPECT(after.entry.writable && after.entry.dirty);
  HPT_EXPECT(after.entry.addr != old_pa);
  const uint32_t copy = w.folio_of(unit);
  HPT_ASSERT(copy != mm::kNoFolio && copy != old);
  HPT_EXPECT_EQ(w.mem.folio(copy).file, mm::kNoFile);  // anonymous
  HPT_EXPECT_EQ(unsigned{w.mem.folio(copy).shift}, shift);
  HPT_EXPECT_EQ(w.mem.mapcount(copy), 1u);
  HPT_EXPECT_EQ(w.mem.mapcount(old), 0u);
  HPT_EXPECT_EQ(w.mem.folio(old).refcount, 1u);  // the page cache's
  if (huge) HPT_EXPECT_EQ(w.mem.pool_free(shift), 0u);

  // The copy has the file's other bytes and the new word; the file keeps the old ones. The file
  // changing now (through its shared side) is no longer seen through the private mapping: a
  // stale translation to the file's page would read 0x2222.
  phys(old_pa + o2) = 0x2222;
  HPT_EXPECT(rd(unit + o1, v));
  HPT_EXPECT_EQ(v, 0x999u);
  HPT_EXPECT(rd(unit + o2, v));
  HPT_EXPECT_EQ(v, 0x222u);
  HPT_EXPECT(rd(unit + o3, v));
  HPT_EXPECT_EQ(v, 0x333u);
  HPT_EXPECT_EQ(phys(old_pa + o1), 0x111u);
  HPT_EXPECT_EQ(phys(w.mem.folio(copy).pa + o1), 0x999u);
  HPT_EXPECT(rd(s + index * bit(shift) + o1, v));  // the shared mapping sees the file
  HPT_EXPECT_EQ(v, 0x111u);
  HPT_EXPECT(rd(s + index * bit(shift) + o2, v));
  HPT_EXPECT_EQ(v, 0x2222u);
  HPT_EXPECT_EQ(w.log.calls, 3u);
}

}  // namespace

HPT_CASE(fault_hw, PrivateFileWriteIsResolvedByCowAndTheFileKeepsItsBytes) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  say("    shmem, base pages\n");
  private_cow(hpt_ctx, kPageShift);
  if (kH2M == 0) return;
  say("    hugetlbfs, hstate shift ");
  hpt::out_u64(kH2M);
  say("\n");
  private_cow(hpt_ctx, kH2M);
}

namespace {

// --- software access flag and dirty ---------------------------------------------------------

struct RestoreAd {
  bool accessed, dirty;
  ~RestoreAd() { guest::set_hw_ad(accessed, dirty); }
};

// mkold then an access: an access-flag fault the handler resolves (young); the access then
// succeeds and nothing else in the leaf faults.
void young_fault(hpt::Ctx& hpt_ctx, unsigned shift, const Mm::Options& opt) {
  World w(mm::Policy::s1, opt);
  HPT_ASSERT(w.init());
  if (shift > kPageShift) HPT_ASSERT_EQ(w.mem.set_pool(shift, 1), Err::ok);
  const uint64_t base = kVaBase, at = base + bit(shift) - kPage + kWordOff;
  HPT_ASSERT(w.mm.mmap(anon(base, bit(shift), shift)).ok());
  HPT_ASSERT(wr(at, 0x7007));
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::new_folio);
  HPT_EXPECT(w.view(at).entry.accessed);

  w.mm.reset_counters();
  HPT_ASSERT_EQ(w.mm.mkold(base, bit(shift)), Err::ok);
  const mm::Counters c = w.mm.counters();
  HPT_EXPECT_EQ(c.entries_written, 2 * entries_of(shift));  // take, then set (modify_prot_*)
  HPT_EXPECT_EQ(c.tlb_flush, 1u);
  HPT_EXPECT_EQ(c.notif_start, 0u);
  HPT_EXPECT(!w.view(at).entry.accessed);

  uint64_t v = 0;
  HPT_EXPECT(rd(at, v));
  HPT_EXPECT_EQ(v, 0x7007u);
  HPT_EXPECT_EQ(w.log.calls, 2u);
  HPT_EXPECT(w.log.fault.access_flag);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::young);
  HPT_EXPECT_EQ(unsigned{w.log.last.shift}, shift);
  HPT_EXPECT(w.view(at).entry.accessed);
  HPT_EXPECT(rd(base + kWordOff, v));  // the first page of the same leaf: young already
  HPT_EXPECT_EQ(v, at == base + kWordOff ? uint64_t{0x7007} : uint64_t{0});
  HPT_EXPECT_EQ(w.log.calls, 2u);
}

// A shared file page mapped by a read is writable but clean; the first write is a permission
// fault the handler resolves as a software dirty update, and the data lands in the file.
void dirty_fault(hpt::Ctx& hpt_ctx, const Mm::Options& opt) {
  World w(mm::Policy::s1, opt);
  HPT_ASSERT(w.init());
  const auto file = w.mem.create_file(mm::FileKind::shmem, kPageShift, kPage);
  HPT_ASSERT(file.ok());
  const uint64_t base = kVaBase;
  HPT_ASSERT(w.mm.mmap(file_vma(base, kPage, file.value, true)).ok());
  uint64_t v = 1;
  HPT_EXPECT(rd(base + kWordOff, v));
  HPT_EXPECT_EQ(v, 0u);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::new_folio);
  const Mm::View clean = w.view(base);
  HPT_EXPECT(clean.entry.writable && !clean.entry.dirty);

  w.mm.reset_counters();
  HPT_EXPECT(wr(base + kWordOff, 0xd1d1));
  HPT_EXPECT_EQ(w.log.calls, 2u);
  HPT_EXPECT(w.log.fault.permission);
  HPT_EXPECT(w.log.fault.access == guest::Access::write);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::dirty);
  HPT_EXPECT(w.view(base).entry.dirty);
  HPT_EXPECT_EQ(w.mm.counters().notif_start, 0u);
  const uint32_t id = w.mem.cache_lookup(file.value, 0);
  HPT_ASSERT(id != mm::kNoFolio);
  HPT_EXPECT_EQ(phys(w.mem.folio(id).pa + kWordOff), 0xd1d1u);
  HPT_EXPECT(wr(base + kWordOff, 0xd2d2));
  HPT_EXPECT_EQ(w.log.calls, 2u);
}

}  // namespace

// With the hardware's access-flag and dirty updates off (arm64 TCR_EL1.HA/HD), the fault
// handler keeps them in software.
HPT_CASE(fault_hw, SoftwareAccessFlagAndDirtyFaultsAreResolvedByTheHandler) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  const RestoreAd restore{guest::hw_sets_accessed(), guest::hw_sets_dirty()};
  if (const char* why = guest::set_hw_ad(false, false)) HPT_SKIP(why);
  HPT_ASSERT(!guest::hw_sets_accessed() && !guest::hw_sets_dirty());
  Mm::Options opt = options();
  opt.hw_accessed = false;
  opt.hw_dirty = false;
  say("    young, base page\n");
  young_fault(hpt_ctx, kPageShift, opt);
  if (kH2M != 0) {
    say("    young, leaf shift ");
    hpt::out_u64(kH2M);
    say("\n");
    young_fault(hpt_ctx, kH2M, opt);
  }
  say("    dirty, shared shmem page\n");
  dirty_fault(hpt_ctx, opt);
}

// Guard markers and accesses the VMA forbids end in the SIGSEGV path, and leave the tables as
// they were; faults outside every VMA are not the Mm's.
HPT_CASE(fault_hw, GuardMarkersAndForbiddenAccessesEndInTheSigsegvPath) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  World w;
  HPT_ASSERT(w.init());
  const uint64_t base = kVaBase, ro = kVaBase + 8 * kPage;  // ro shares base's tables
  HPT_ASSERT(w.mm.mmap(anon(base, 4 * kPage, kPageShift)).ok());
  HPT_ASSERT(w.mm.mmap(anon(ro, kPage, kPageShift, hugepte::kProtR)).ok());
  HPT_ASSERT(wr(base + kWordOff, 0x600d));
  HPT_ASSERT_EQ(w.mm.madvise_guard_install(base + kPage, kPage), Err::ok);
  const uint64_t guard = base + kPage + kWordOff;
  const Entry marker = w.view(guard).entry;
  HPT_EXPECT_EQ(marker.kind, Kind::marker);
  HPT_EXPECT(marker.swp.offset & hugepte::kMarkerGuard);
  // Installing over a present page is refused, and changes nothing.
  uint64_t snap = w.digest();
  w.mm.reset_counters();
  HPT_EXPECT_EQ(w.mm.madvise_guard_install(base, kPage), Err::eexist);
  HPT_EXPECT_EQ(w.digest(), snap);
  HPT_EXPECT_EQ(w.mm.counters().entries_written, 0u);

  const unsigned calls = w.log.calls;
  w.mm.reset_counters();
  guest::Fault f;
  uint64_t v = 0;
  HPT_EXPECT(!guest::probe_read(guard, v, f));
  HPT_EXPECT_EQ(w.log.calls, calls + 1);
  HPT_EXPECT_EQ(w.log.last.kind, mm::FaultKind::sigsegv);
  HPT_EXPECT_EQ(f.addr, guard);
  HPT_EXPECT(!guest::probe_write(guard, 1, f));
  HPT_EXPECT_EQ(w.log.last.kind, mm::FaultKind::sigsegv);
  HPT_EXPECT_EQ(w.log.declined, 2u);
  HPT_EXPECT_EQ(w.digest(), snap);

  // A read-only VMA: a read maps the zero page, a write is refused by the VMA.
  HPT_EXPECT(rd(ro + kWordOff, v));
  HPT_EXPECT_EQ(v, 0u);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::zero_page);
  snap = w.digest();
  HPT_EXPECT(!guest::probe_write(ro + kWordOff, 1, f));
  HPT_EXPECT(f.permission);
  HPT_EXPECT_EQ(w.log.last.kind, mm::FaultKind::sigsegv);
  HPT_EXPECT_EQ(w.digest(), snap);

  // Nothing was written by the refused accesses.
  HPT_EXPECT(w.view(guard).entry == marker);
  HPT_EXPECT_EQ(w.mm.counters().entries_written, 1u);  // the zero page's entry
  HPT_EXPECT_EQ(w.mm.counters().pt_alloc_total(), 0u);
  HPT_EXPECT_EQ(w.mm.counters().fault_kind[static_cast<unsigned>(mm::FaultKind::sigsegv)], 3u);

  // Outside every VMA: the hook declines without asking the Mm.
  const uint64_t faults = w.mm.counters().faults;
  HPT_EXPECT(!guest::probe_read(base + 3 * kGiB, v, f));
  HPT_EXPECT_EQ(w.log.outside, 1u);
  HPT_EXPECT_EQ(w.mm.counters().faults, faults);
  HPT_EXPECT_EQ(w.digest(), snap);

  // The pages around the guard are ordinary memory.
  HPT_EXPECT(wr(base + 2 * kPage, 2));
  HPT_EXPECT(rd(base + kWordOff, v));
  HPT_EXPECT_EQ(v, 0x600du);
}

namespace {

// --- memory failure -------------------------------------------------------------------------

// A UE in one base page of a mapped hugetlb hstate page (docs/mm.md §4, T36/T37): H0 turns the
// hstate-level entry into a hwpoison entry and every access in it gets SIGBUS with lsb = the
// hstate; H1 splits the leaf and unmaps only that page (lsb = base page), the rest stays readable.
void poison(hpt::Ctx& hpt_ctx, unsigned h, mm::PoisonPolicy policy, uint64_t seed) {
  Mm::Options opt = options();
  opt.poison = policy;
  World w(mm::Policy::s1, opt);
  HPT_ASSERT(w.init());
  HPT_ASSERT_EQ(w.mem.set_pool(h, 1), Err::ok);
  const auto file = w.mem.create_file(mm::FileKind::hugetlb, h, bit(h));
  HPT_ASSERT(file.ok());
  const uint64_t base = kVaBase;
  HPT_ASSERT(w.mm.mmap(file_vma(base, bit(h), file.value, true)).ok());
  const uint64_t pages = bit(h - kPageShift);
  for (uint64_t i = 0; i < pages; ++i) HPT_ASSERT(wr(base + i * kPage + kWordOff, tag(i, seed)));
  HPT_EXPECT_EQ(w.log.calls, 1u);
  const uint32_t id = w.folio_of(base);
  HPT_ASSERT(id != mm::kNoFolio);
  Rng rng{seed};
  const uint64_t r = rng.below(pages);
  w.mm.reset_counters();
  const auto n = w.mm.memory_failure(w.mem.folio(id).pa + r * kPage + 0x40);
  HPT_ASSERT(n.ok());
  HPT_EXPECT_EQ(n.value, 1u);
  HPT_EXPECT(w.mem.folio(id).hwpoison);
  HPT_EXPECT_EQ(w.mem.cache_lookup(file.value, 0), id);  // it stays in the page cache
  const mm::Counters c = w.mm.counters();
  const unsigned lvl = level_of(h);
  guest::Fault f;
  uint64_t v = 0;
  if (policy == mm::PoisonPolicy::h0) {
    HPT_EXPECT_EQ(c.notif_start, 1u);
    HPT_EXPECT(c.notif_log[0] == (mm::Notification{mm::NotifyEvent::clear, base, base + bit(h)}));
    HPT_EXPECT(hugepte::pte::is_hwpoison(w.view(base).entry));
    HPT_EXPECT_EQ(c.pt_alloc_total(), 0u);
    for (uint64_t i : {uint64_t{0}, r, pages - 1}) {
      HPT_EXPECT(!guest::probe_read(base + i * kPage + kWordOff, v, f));
      HPT_EXPECT_EQ(w.log.last.kind, mm::FaultKind::sigbus);
      HPT_EXPECT_EQ(unsigned{w.log.last.lsb}, h);
    }
    return;
  }
  // H1: the split (one pair over the leaf) and the unmap of the page (one pair over it).
  HPT_EXPECT_EQ(c.notif_start, 2u);
  HPT_EXPECT(c.notif_log[0] == (mm::Notification{mm::NotifyEvent::clear, base, base + bit(h)}));
  HPT_EXPECT(c.notif_log[1] == (mm::Notification{mm::NotifyEvent::clear, base + r * kPage,
                                                 base + (r + 1) * kPage}));
  for (unsigned l = 0; l < F::levels; ++l) HPT_EXPECT_EQ(c.pt_alloc[l], uint64_t{l < lvl});
  HPT_EXPECT(hugepte::pte::is_hwpoison(w.view(base + r * kPage).entry));
  HPT_EXPECT_EQ(w.view(base + r * kPage).shift, kPageShift);
  HPT_EXPECT(!guest::probe_read(base + r * kPage + kWordOff, v, f));
  HPT_EXPECT_EQ(w.log.last.kind, mm::FaultKind::sigbus);
  HPT_EXPECT_EQ(unsigned{w.log.last.lsb}, kPageShift);
  const unsigned calls = w.log.calls;
  unsigned bad = 0;
  for (uint64_t i = 0; i < pages; ++i)
    if (i != r && (!rd(base + i * kPage + kWordOff, v) || v != tag(i, seed))) ++bad;
  HPT_EXPECT_EQ(bad, 0u);
  HPT_EXPECT_EQ(w.log.calls, calls);
}

}  // namespace

HPT_CASE(fault_hw, HwpoisonInAHugetlbPageEndsInSigbusWithThePolicysLsb) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  if (kH2M == 0) HPT_SKIP("this format has no leaf size between the base page and 2 MiB");
  say_seed("poisoned page", 0x5eed0300);
  say("    H0\n");
  poison(hpt_ctx, kH2M, mm::PoisonPolicy::h0, 0x5eed0300);
  say("    H1\n");
  poison(hpt_ctx, kH2M, mm::PoisonPolicy::h1, 0x5eed0300);
}

namespace {

// --- a live 1G-class hugetlb leaf: split and collapse under probes ---------------------------

// Words of the sampled pages, checked through the MMU and in the folio.
struct Samples {
  static constexpr unsigned kMax = 2048 + 16;
  uint64_t page[kMax] = {};
  unsigned n = 0;
  void add(uint64_t p) {
    if (n < kMax) page[n++] = p;
  }
};

uint64_t word_off(uint64_t page) { return (page * 8) & (kPage - 8); }

}  // namespace

// A hugetlbfs file of one 1G-class hstate page, mapped shared: the first touch maps the hstate
// leaf; the whole page is filled with a pattern (a tag in every base page). split_leaf to the
// base page at a random address (T25: one invalidate pair over the leaf, one new table per level
// below the hstate's, all data still reachable through the MMU); writes through the split
// mapping; then MADV_SPLIT + MADV_COLLAPSE (T23: one CLEAR pair, the tables freed, one hstate
// leaf again). The freed table pages are then reused as decoy tables: an MMU that still walked
// them would read the decoy page.
HPT_CASE(fault_hw, Live1GClassHugetlbLeafSplitsAndCollapsesUnderProbes) {
  if (const char* gap = guest::mode_unavailable()) HPT_SKIP(gap);
  constexpr unsigned h = kH1G;
  if (h == 0) HPT_SKIP("this format has no leaf size between the base page and 1 GiB");
  World w;
  HPT_ASSERT(w.init());
  HPT_ASSERT_EQ(w.mem.set_pool(h, 1), Err::ok);
  if (!w.folios.room_for(h)) HPT_SKIP("guest RAM has no room for a 1 GiB-class folio");
  const auto file = w.mem.create_file(mm::FileKind::hugetlb, h, bit(h));
  HPT_ASSERT(file.ok());
  const uint64_t base = kVaBase;
  HPT_ASSERT(w.mm.mmap(file_vma(base, bit(h), file.value, true)).ok());
  constexpr uint64_t kSeed = 0x5eed0400;
  say_seed("split address and samples", kSeed);
  Rng rng{kSeed};
  const uint64_t pages = bit(h - kPageShift);
  const unsigned lvl = level_of(h);

  // First touch: the hstate leaf.
  w.mm.reset_counters();
  HPT_ASSERT(wr(base + word_off(0), tag(0, kSeed)));
  HPT_EXPECT_EQ(w.log.calls, 1u);
  HPT_EXPECT_EQ(w.log.last.how, mm::FaultHow::new_folio);
  HPT_EXPECT_EQ(unsigned{w.log.last.shift}, h);
  expect_first_fault_tables(hpt_ctx, w.mm.counters(), h);
  HPT_EXPECT_EQ(w.view(base).shift, h);
  const uint32_t id = w.mem.cache_lookup(file.value, 0);
  HPT_ASSERT(id != mm::kNoFolio);
  HPT_EXPECT_EQ(w.folio_of(base), id);
  const uint64_t pa = w.mem.folio(id).pa;

  // The pattern: one tag per base page, at an offset that moves with the page.
  unsigned bad = 0;
  for (uint64_t i = 1; i < pages; ++i)
    if (!wr(base + i * kPage + word_off(i), tag(i, kSeed))) ++bad;
  HPT_EXPECT_EQ(bad, 0u);
  HPT_EXPECT_EQ(w.log.calls, 1u);

  const uint64_t x = 1 + rng.below(pages - 2);  // the split address' page, not at either end
  Samples s;
  for (uint64_t i : {uint64_t{0}, x - 1, x, x + 1, pages - 1}) s.add(i);
  for (unsigned k = 0; k < 2048; ++k) s.add(rng.below(pages));
  bool rewritten = false;  // after the writes through the split mapping
  auto rewrite = [&](uint64_t page) { return page == x || page % 8 == 3; };
  auto want_of = [&](uint64_t page) {
    return rewritten && rewrite(page) ? tag(page, ~kSeed) : tag(page, kSeed);
  };

  auto check_all = [&](const char* when) {
    unsigned miss = 0;
    for (unsigned k = 0; k < s.n; ++k) {
      const uint64_t va = base + s.page[k] * kPage + word_off(s.page[k]);
      const uint64_t want = want_of(s.page[k]);
      uint64_t v = 0;
      const bool ok = rd(va, v) && v == want && phys(pa + (va - base)) == want;
      if (!ok && miss++ < 4) {
        say("    ");
        say(when);
        say(": va ");
        say_hex(va);
        say(" read ");
        say_hex(v);
        say(" want ");
        say_hex(want);
        say("\n");
      }
    }
    return miss;
  };
  HPT_EXPECT_EQ(check_all("before the split"), 0u);

  // split_leaf to the base page at x.
  const uint64_t xva = base + x * kPage;
  w.mm.reset_counters();
  HPT_ASSERT_EQ(w.mm.split_leaf(xva + 0x18, kPageShift), Err::ok);
  mm::Counters c = w.mm.counters();
  HPT_EXPECT_EQ(c.notif_start, 1u);
  HPT_EXPECT_EQ(c.notif_end, 1u);
  HPT_EXPECT(c.notif_log[0] == (mm::Notification{mm::NotifyEvent::clear, base, base + bit(h)}));
  for (unsigned l = 0; l < F::levels; ++l) HPT_EXPECT_EQ(c.pt_alloc[l], uint64_t{l < lvl});
  HPT_EXPECT(c.tlb_flush >= 1u);
  const Mm::View vx = w.view(xva);
  HPT_EXPECT_EQ(vx.entry.kind, Kind::leaf);
  HPT_EXPECT_EQ(vx.shift, kPageShift);
  HPT_EXPECT_EQ(vx.entry.addr, pa + x * kPage);
  HPT_EXPECT(vx.entry.writable && vx.entry.dirty);  // kept by the split
  // Raw entries under the hstate: on the path to x one table per level, leaves elsewhere (the
  // hstate slot's entries, then one full table per level below it).
  for (unsigned l = 0; l <= lvl; ++l) {
    const Mm::Census cs = w.mm.census(base, base + bit(h), l);
    const uint64_t span = l == lvl ? entries_of(h) : bit(F::index_bits(l));
    HPT_EXPECT_EQ(cs.tables, uint64_t{l > 0});
    HPT_EXPECT_EQ(cs.leaves, span - (l > 0));
  }
  HPT_EXPECT_EQ(w.mem.mapcount(id), 1u);  // S1: one per mapping, whatever is mapped beneath
  HPT_EXPECT_EQ(w.mem.folio(id).refcount, 2u);
  HPT_EXPECT_EQ(check_all("after the split"), 0u);

  // Writes through the split mapping: the page at x and the sampled pages 3 mod 8.
  rewritten = true;
  for (unsigned k = 0; k < s.n; ++k)
    if (rewrite(s.page[k]) &&
        !wr(base + s.page[k] * kPage + word_off(s.page[k]), want_of(s.page[k])))
      ++bad;
  HPT_EXPECT_EQ(bad, 0u);
  HPT_EXPECT_EQ(check_all("written through the split mapping"), 0u);
  HPT_EXPECT_EQ(w.log.calls, 1u);  // the split left everything mapped

  // MADV_SPLIT, then MADV_COLLAPSE back to one hstate leaf.
  HPT_ASSERT_EQ(w.mm.madvise_split(base, bit(h)), Err::ok);
  w.mm.reset_counters();
  HPT_ASSERT_EQ(w.mm.madvise_collapse(base, bit(h)), Err::ok);
  c = w.mm.counters();
  HPT_EXPECT_EQ(c.notif_start, 1u);
  HPT_EXPECT_EQ(c.notif_end, 1u);
  HPT_EXPECT(c.notif_log[0] == (mm::Notification{mm::NotifyEvent::clear, base, base + bit(h)}));
  for (unsigned l = 0; l < F::levels; ++l) HPT_EXPECT_EQ(c.pt_free[l], uint64_t{l < lvl});
  HPT_EXPECT_EQ(c.pt_alloc_total(), 0u);
  HPT_EXPECT(c.tlb_flush >= 1u);
  for (uint64_t va : {base, xva, base + bit(h) - kPage}) {
    const Mm::View v = w.view(va);
    HPT_EXPECT_EQ(v.entry.kind, Kind::leaf);
    HPT_EXPECT_EQ(v.shift, h);
    HPT_EXPECT_EQ(v.entry.addr, pa);
  }
  HPT_EXPECT_EQ(w.mem.mapcount(id), 1u);
  HPT_EXPECT_EQ(w.mem.folio(id).refcount, 2u);

  // The freed table pages come back first from the env: fill them with leaves to a decoy page.
  const auto decoy = w.folios.alloc_folio(kPageShift);
  HPT_ASSERT(decoy.ok());
  for (uint64_t o = 0; o < kPage; o += 8) phys(decoy.value + o) = 0xdec0de;
  Entry e;
  e.kind = Kind::leaf;
  e.addr = decoy.value;
  e.shift = static_cast<uint8_t>(kPageShift);
  e.prot = hugepte::kProtRW;
  e.writable = true;
  e.accessed = true;
  e.dirty = true;
  const auto raw = F::encode(e, 0);
  HPT_ASSERT(raw.ok());
  uint64_t decoys[8] = {};
  for (unsigned l = 0; l < lvl; ++l) {
    const auto t = w.env.alloc_table(l);
    HPT_ASSERT(t.ok());
    decoys[l] = t.value;
    for (uint64_t i = 0; i < bit(F::index_bits(0)); ++i) w.env.table_ptr(t.value)[i] = raw.value;
  }
  HPT_EXPECT_EQ(check_all("after the collapse"), 0u);
  HPT_EXPECT_EQ(w.log.calls, 1u);
  for (unsigned l = 0; l < lvl; ++l) w.env.free_table(decoys[l], l);
  w.folios.free_folio(decoy.value, kPageShift);
}
