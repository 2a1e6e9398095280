// format_hw.cpp - the library's format against the real MMU, in every guest image.
//
// Written once for all architectures: entries are built only with the image's format
// (GuestFormat::encode / make_table / group_entry) and the hardware's behaviour on them is
// compared with what GuestFormat::decode says. Probes run at the privileged level, so user
// entries are left to their own cases.
#include "guest.hpp"
#include "guest_format.hpp"
#include "hpt_test.hpp"

namespace {

using hugepte::Entry;
using hugepte::Kind;
using F = hpt::guest::GuestFormat;
namespace guest = hpt::guest;

static_assert(hugepte::Format<F> && hugepte::format_ok<F>());

constexpr unsigned kRoot = F::levels - 1;
constexpr uint64_t kPage = hugepte::bit(F::page_shift);
constexpr uint64_t kPatternOffset = 0x100;  // data lives here; the first bytes hold a return insn
constexpr uint64_t kPattern = 0x5a17c0de0ddba11ull;

// Tests own one root slot, far above the identity map of low physical memory, and the upper
// half of the free RAM (the harness' own cases use the lower half).
constexpr uint64_t kVaBase = hugepte::bit(F::va_bits - 2);

struct Arena {
  uint64_t next = 0, end = 0;
  void reset() {
    next = guest::free_ram_base() + guest::free_ram_size() / 2;
    next = (next + kPage - 1) & ~(kPage - 1);
    end = guest::free_ram_base() + guest::free_ram_size();
  }
  uint64_t page() {
    uint64_t pa = next;
    next += kPage;
    if (next > end) return 0;
    auto* p = reinterpret_cast<volatile uint64_t*>(pa);
    for (uint64_t i = 0; i < kPage / 8; ++i) p[i] = 0;
    return pa;
  }
};
Arena g_arena;

volatile uint64_t* table_at(uint64_t pa) { return reinterpret_cast<volatile uint64_t*>(pa); }

// The slot for `va` at `level`, building tables (with the format's own table entries) on the way.
volatile uint64_t* slot_for(uint64_t va, unsigned level) {
  uint64_t table = guest::current_root();
  for (unsigned l = kRoot; l > level; --l) {
    volatile uint64_t* s = &table_at(table)[hugepte::index_of<F>(va, l)];
    if (!F::is_table(*s, l)) {
      uint64_t next = g_arena.page();
      if (!next) return nullptr;
      *s = F::make_table(next, l);
    }
    table = F::out_addr(*s, l);
  }
  return &table_at(table)[hugepte::index_of<F>(va, level)];
}

// Unlink everything the test built and forget stale translations.
void teardown() {
  table_at(guest::current_root())[hugepte::index_of<F>(kVaBase, kRoot)] = 0;
  guest::tlb_flush_all();
}

// A test page with a return instruction at offset 0 and the pattern at kPatternOffset.
uint64_t make_test_page() {
  uint64_t pa = g_arena.page();
  if (!pa) return 0;
  unsigned len = 0;
  const unsigned char* insn = guest::ret_insn(len);
  auto* code = reinterpret_cast<volatile unsigned char*>(pa);
  for (unsigned i = 0; i < len; ++i) code[i] = insn[i];
  guest::code_written(pa, len);
  table_at(pa)[kPatternOffset / 8] = kPattern;
  return pa;
}

Entry kernel_leaf(uint64_t pa, unsigned level, unsigned cont_shift) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = pa;
  e.shift = static_cast<uint8_t>(F::shift(level));
  e.cont_shift = static_cast<uint8_t>(cont_shift);
  e.prot = {true, true, true, false};
  e.writable = true;
  e.accessed = true;  // no access-flag faults where hardware does not manage A
  e.dirty = true;
  e.global = true;
  return e;
}

// Encodes `e`, dropping to the format's view of what it can express: some formats cannot make
// a writable page executable at the same time, or a global one, etc. Returns 0 if none works.
uint64_t encode_kernel_leaf(Entry e, unsigned level) {
  for (unsigned tries = 0; tries < 4; ++tries) {
    auto r = F::encode(e, level);
    if (r.ok()) return r.value;
    if (tries == 0) e.global = false;
    if (tries == 1) e.prot.exec = false;
    if (tries == 2) e.global = true;
  }
  return 0;
}

struct Observed {
  bool read = false, write = false, exec = false;
  guest::Fault read_fault{};
};

Observed probe_all(uint64_t va, uint64_t pa) {
  Observed o;
  uint64_t v = 0;
  o.read = guest::probe_read(va + kPatternOffset, v, o.read_fault) &&
           v == table_at(pa)[kPatternOffset / 8];
  guest::Fault f;
  uint64_t fresh = kPattern ^ va;
  o.write = guest::probe_write(va + kPatternOffset, fresh, f) &&
            table_at(pa)[kPatternOffset / 8] == fresh;
  table_at(pa)[kPatternOffset / 8] = kPattern;
  o.exec = guest::probe_exec(va, f);
  return o;
}

// What decode says the privileged-level probes must see.
Observed expected(const Entry& d) {
  Observed o;
  if (d.kind != Kind::leaf) return o;
  // Where software manages the access flag, an entry that is not young faults on any access.
  if (!d.accessed && !guest::hw_sets_accessed()) return o;
  o.read = d.prot.read;
  // Under the DBM model a clean writable entry is read-only to the walker until the hardware
  // records the first write (when it manages dirty). Elsewhere a write needs prot.write.
  bool dbm_write = F::ad_caps.model == hugepte::DirtyModel::dbm_rdonly && d.writable &&
                   F::ad_caps.hw_dirty && guest::hw_sets_dirty();
  o.write = d.prot.write || dbm_write;
  o.exec = d.prot.exec;
  return o;
}

bool mode_ok(hpt::Ctx& hpt_ctx) {
  if (const char* why = guest::mode_unavailable()) {
    hpt_ctx.skip_reason = why;
    return false;
  }
  g_arena.reset();
  return true;
}

}  // namespace

// Every leaf size of the format (each level that holds leaves and each contiguous group size)
// translates through the real MMU to the output address decode reports.
HPT_CASE(format_hw, EveryLeafSizeTranslatesWhereDecodeSays) {
  if (!mode_ok(hpt_ctx)) return;
  uint64_t pa = make_test_page();
  HPT_ASSERT(pa != 0);
  constexpr auto sizes = hugepte::leaf_sizes<F>();
  for (unsigned i = 0; i < sizes.count; ++i) {
    unsigned level = sizes.level[i], size = sizes.shift[i];
    unsigned cont = sizes.cont[i] ? size : 0;
    uint64_t base = hugepte::align_down(pa, size);
    uint64_t va = kVaBase + (pa - base);
    uint64_t raw0 = encode_kernel_leaf(kernel_leaf(base, level, cont), level);
    HPT_ASSERT(raw0 != 0);
    volatile uint64_t* slot = slot_for(kVaBase, level);
    HPT_ASSERT(slot != nullptr);
    unsigned n = cont ? 1u << (size - F::shift(level)) : 1u;
    for (unsigned k = 0; k < n; ++k) slot[k] = F::group_entry(raw0, level, k);
    guest::tlb_flush_all();
    Entry d = F::decode(raw0, level);
    HPT_EXPECT_EQ(d.kind, Kind::leaf);
    HPT_EXPECT_EQ(d.cont_shift, cont);
    uint64_t v = 0;
    guest::Fault f;
    HPT_EXPECT(guest::probe_read(va + kPatternOffset, v, f));
    HPT_EXPECT_EQ(v, kPattern);
    HPT_EXPECT(guest::probe_write(va + kPatternOffset, kPattern + size, f));
    HPT_EXPECT_EQ(table_at(pa)[kPatternOffset / 8], kPattern + size);
    table_at(pa)[kPatternOffset / 8] = kPattern;
    teardown();
  }
}

// Flip each bit of a valid kernel leaf, one at a time, at every leaf level: whatever decode says
// the entry now is (leaf with some permissions, non-present, reserved/invalid), the MMU agrees.
// Variants that move the output address, turn the leaf into a table pointer, join a contiguous
// group or make the page a user page are other cases' business and are passed over.
HPT_CASE(format_hw, EverySingleBitVariantOfALeafBehavesAsDecoded) {
  if (!mode_ok(hpt_ctx)) return;
  uint64_t pa = make_test_page();
  HPT_ASSERT(pa != 0);
  unsigned compared = 0;
  const char* deviation = nullptr;
  for (unsigned level = 0; level < F::levels; ++level) {
    if (!F::leaf_ok(level)) continue;
    uint64_t base = hugepte::align_down(pa, F::shift(level));
    uint64_t va = kVaBase + (pa - base);
    uint64_t raw = encode_kernel_leaf(kernel_leaf(base, level, 0), level);
    HPT_ASSERT(raw != 0);
    volatile uint64_t* slot = slot_for(kVaBase, level);
    HPT_ASSERT(slot != nullptr);
    for (unsigned b = 0; b < 64; ++b) {
      uint64_t variant = raw ^ hugepte::bit(b);
      uint64_t walked = variant;  // what the emulator's walker really uses, if it deviates
      if (const char* why = guest::emulator_deviation(walked, level)) deviation = why;
      Entry d = F::decode(walked, level);
      if (d.kind == Kind::table || d.cont_shift) continue;
      if (d.kind == Kind::leaf && (d.addr != base || d.prot.user)) continue;
      *slot = variant;
      guest::tlb_flush_all();
      Observed want = expected(d);
      Observed got = probe_all(va, pa);
      ++compared;
      if (got.read != want.read || got.write != want.write || got.exec != want.exec) {
        hpt::out("    level ");
        hpt::out_u64(level);
        hpt::out(" bit ");
        hpt::out_u64(b);
        hpt::out(" raw ");
        hpt::out_u64(variant, 16);
        hpt::out(" decodes as ");
        hpt::out(hugepte::kind_name(d.kind));
        if (d.kind == Kind::invalid) {
          hpt::out(" (");
          hpt::out(hugepte::reason_name(d.reason));
          hpt::out(")");
        }
        hpt::out("; rwx want ");
        hpt::out(want.read ? "r" : "-");
        hpt::out(want.write ? "w" : "-");
        hpt::out(want.exec ? "x" : "-");
        hpt::out(" got ");
        hpt::out(got.read ? "r" : "-");
        hpt::out(got.write ? "w" : "-");
        hpt::out(got.exec ? "x" : "-");
        hpt::out("\n");
        HPT_EXPECT(false && "MMU disagrees with decode");
      }
    }
    *slot = 0;
    teardown();
  }
  HPT_EXPECT(compared > 64);
  // Compared with the emulator's behaviour where it departs from the manual: say so.
  if (deviation && !hpt_ctx.failures) hpt_ctx.skip_reason = deviation;
}

// A/D set by the hardware are what decode reads back as accessed / dirty.
HPT_CASE(format_hw, HardwareAccessedAndDirtyReadBackThroughDecode) {
  if (!mode_ok(hpt_ctx)) return;
  uint64_t pa = make_test_page();
  HPT_ASSERT(pa != 0);
  Entry e = kernel_leaf(pa, 0, 0);
  e.accessed = false;
  e.dirty = false;
  e.prot.write = false;  // a clean writable page: the hardware (or a fault) records the write
  auto raw = F::encode(e, 0);
  if (!raw.ok()) {
    e.prot.write = true;
    raw = F::encode(e, 0);
  }
  HPT_ASSERT(raw.ok());
  volatile uint64_t* slot = slot_for(kVaBase, 0);
  HPT_ASSERT(slot != nullptr);
  *slot = raw.value;
  guest::tlb_flush_all();
  uint64_t v = 0;
  guest::Fault f;
  bool read = guest::probe_read(kVaBase + kPatternOffset, v, f);
  if (guest::hw_sets_accessed()) {
    HPT_EXPECT(read);
    HPT_EXPECT(F::decode(*slot, 0).accessed);
    HPT_EXPECT(!F::decode(*slot, 0).dirty);
    bool wrote = guest::probe_write(kVaBase + kPatternOffset, kPattern, f);
    if (guest::hw_sets_dirty()) {
      HPT_EXPECT(wrote);
      HPT_EXPECT(F::decode(*slot, 0).dirty);
    }
  } else {
    HPT_EXPECT(!read);  // software-managed access flag: the first access faults
    HPT_EXPECT(f.access_flag);
  }
  teardown();
}

// Every non-present kind the format encodes (none, PROT_NONE, swap, marker) faults on access.
HPT_CASE(format_hw, NonPresentKindsFaultOnEveryAccess) {
  if (!mode_ok(hpt_ctx)) return;
  uint64_t pa = make_test_page();
  HPT_ASSERT(pa != 0);
  Entry kinds[4];
  kinds[0] = Entry{};
  kinds[1] = kernel_leaf(pa, 0, 0);
  kinds[1].kind = Kind::protnone;
  kinds[1].prot = {};
  kinds[1].writable = false;
  kinds[1].dirty = false;
  kinds[1].global = false;
  kinds[2].kind = Kind::swap;
  kinds[2].swp = {3, 0x1234, true, false, false};
  kinds[3].kind = Kind::marker;
  kinds[3].swp.type = hugepte::kSwpPteMarker;
  kinds[3].swp.offset = hugepte::kMarkerGuard;
  volatile uint64_t* slot = slot_for(kVaBase, 0);
  HPT_ASSERT(slot != nullptr);
  for (const Entry& k : kinds) {
    auto raw = F::encode(k, 0);
    if (!raw.ok()) continue;  // e.g. a format without that encoding
    HPT_EXPECT(F::decode(raw.value, 0).kind == k.kind);
    *slot = raw.value;
    guest::tlb_flush_all();
    Observed got = probe_all(kVaBase, pa);
    HPT_EXPECT(!got.read && !got.write && !got.exec);
  }
  teardown();
}
