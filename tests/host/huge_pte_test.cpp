// huge_pte_test.cpp - the huge-PTE helper contract (docs/arch.md §6.1, properties 94-117) for
// every huge page size of every format, break-before-make asserted from the event log, and the
// host TLB model catching missing invalidations.
//
// Besides the fake exemplar and the real formats, two test-only variants of the fake format
// cover the two group styles without waiting for any architecture: FakeNoBbm never needs
// break-before-make and has no groups (like x86); FakeNapot groups hold identical values and any
// live change of a group needs break-before-make (like riscv Svnapot).
#include "hugepte/huge_pte.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "fake_format.hpp"
#include "hugepte/env/host.hpp"

#include "typed_formats.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file
using fake::FakeFormat;

struct FakeNoBbm : FakeFormat {
  static constexpr const char* mode = "3level-nobbm";
  static constexpr unsigned cont_shift(unsigned) { return 0; }
  static constexpr bool needs_bbm(uint64_t, uint64_t, unsigned) { return false; }
};
static_assert(format_ok<FakeNoBbm>());

struct FakeNapot : FakeFormat {
  static constexpr const char* mode = "3level-napot";
  static constexpr uint64_t group_entry(uint64_t raw0, unsigned, unsigned) { return raw0; }
  static constexpr unsigned leaf_shift(uint64_t raw, unsigned level) {
    return (raw & kCont) ? cont_shift(level) : shift(level);
  }
  static constexpr bool needs_bbm(uint64_t old, uint64_t next, unsigned level) {
    bool group = ((old | next) & kCont) != 0;
    return FakeFormat::needs_bbm(old, next, level) ||
           (group && has(old, fake::kValid, level) && has(next, fake::kValid, level) &&
            old != next);
  }
};
static_assert(format_ok<FakeNapot>());

using Formats = hpt_typed::AllWithFake<FakeNoBbm, FakeNapot>;
using hpt_typed::FormatName;

template <class F>
class HugePteTest : public ::testing::Test {
 protected:
  using Env = host::EnvFor<F>;
  using Table = PageTable<F, Env>;
  using Ops = HugePteOps<F, Env, host::TlbModel>;
  using Handle = HugePte<F>;
  static constexpr LeafSizes<F> kSizes = leaf_sizes<F>();

  void SetUp() override { ASSERT_EQ(pt.init(), Err::ok); }

  void reset() {
    pt.destroy();
    ASSERT_EQ(env.live(), 0u) << "table pages leaked";
    ASSERT_EQ(pt.init(), Err::ok);
    tlb.flush_all();
    tlb.forget_history();
    log.clear();
  }

  static HugeSize size(unsigned i) { return huge_size<F>(kSizes.shift[i]).value; }
  static uint64_t sub_size(const HugeSize& s) { return bit(F::shift(s.level)); }
  static uint64_t va_for(unsigned shift) { return 5 * bit(shift); }
  static uint64_t pa_for(unsigned shift, unsigned k = 3) {
    uint64_t pa = k * bit(shift);
    return pa < bit(F::pa_bits) ? pa : bit(shift);
  }

  // A present leaf of size 1 << shift that this format can encode. Formats differ in how the
  // hardware write permission relates to writable/dirty (x86: RW is the write permission; arm64:
  // a writable clean page is DBM with AP[2] read-only), so both readings are tried.
  static std::optional<Entry> leaf(uint64_t pa, unsigned shift, bool writable, bool dirty,
                                   bool accessed = true) {
    HugeSize s = huge_size<F>(shift).value;
    for (bool hw_write : {writable, writable && dirty}) {
      Entry e;
      e.kind = Kind::leaf;
      e.addr = pa;
      e.shift = static_cast<uint8_t>(F::shift(s.level));
      e.prot = {true, hw_write, false, true};
      e.writable = writable;
      e.accessed = accessed;
      e.dirty = dirty;
      Result<Entry> m = Ops::make_huge(e, shift);
      if (!m) return std::nullopt;
      Result<uint64_t> raw = F::encode(m.value, s.level);
      if (raw && F::decode(raw.value, s.level) == m.value) return m.value;
    }
    return std::nullopt;
  }

  static std::optional<Entry> nonpresent(Kind kind, unsigned level) {
    Entry e;
    e.kind = kind;
    e.shift = static_cast<uint8_t>(F::shift(level));
    e.swp.type = kind == Kind::marker ? kSwpPteMarker : 2;
    e.swp.offset = kind == Kind::marker ? kMarkerUffdWp : 0x4242;
    Result<uint64_t> raw = F::encode(e, level);
    if (!raw) return std::nullopt;
    return F::decode(raw.value, level);
  }

  // Encodes an edited sub-entry i of h for its slot: from the group's base form through
  // group_entry, since a format may encode group members only that way.
  static Result<uint64_t> encode_sub(Entry d, const Handle& h, uint64_t i) {
    if (d.cont_shift == 0) return F::encode(d, h.level);
    d.addr = align_down(d.addr, d.cont_shift);
    Result<uint64_t> raw = F::encode(d, h.level);
    if (!raw) return raw;
    return F::group_entry(raw.value, h.level, static_cast<unsigned>(i));
  }

  // What a hardware access would do to one sub-entry: set accessed (and dirty).
  void hw_touch(const Handle& h, uint64_t i, bool dirty) {
    Entry d = F::decode(Table::load(h.sub(i)), h.level);
    d.accessed = true;
    if (dirty) {
      d.dirty = true;
      d.prot.write = d.writable;  // arm64: DBM hardware clears AP[2] on the write
    }
    Result<uint64_t> raw = encode_sub(d, h, i);
    if (!raw && dirty) {
      d.prot.write = !d.prot.write;
      raw = encode_sub(d, h, i);
    }
    ASSERT_TRUE(raw.ok()) << "sub-entry " << i;
    pt.store(h.sub(i), h.level, raw.value);
  }

  Handle must_alloc(uint64_t va, unsigned shift) {
    Result<Handle> h = ops.alloc(va, shift);
    EXPECT_TRUE(h.ok()) << err_name(h.err);
    return h.value;
  }

  // --- reading the event log ---
  std::vector<uint64_t> raws(const Handle& h) const {
    std::vector<uint64_t> v;
    for (uint64_t i = 0; i < h.count(); ++i) v.push_back(Table::load(h.sub(i)));
    return v;
  }

  bool flush_reaches_all(const TlbFlush& f, const Handle& h) const {
    if (f.level != kAnyLevel && f.level != h.level) return false;
    for (uint64_t i = 0; i < h.count(); ++i)
      if (!flush_hits(f, h.va + i * bit(F::shift(h.level)), F::shift(h.level))) return false;
    return true;
  }

  // Break-before-make in the log since it was cleared: every sub-entry written invalid, then a
  // flush that reaches every sub-entry, then the new values; no new value before the flush.
  // Returns "" or what is wrong.
  std::string bbm_problem(const Handle& h, const std::vector<uint64_t>& next) const {
    const auto& ev = log.events();
    std::size_t fi = ev.size();
    for (std::size_t k = 0; k < ev.size(); ++k)
      if (ev[k].type == host::Event::Type::flush && flush_reaches_all(ev[k].flush, h)) {
        fi = k;
        break;
      }
    if (fi == ev.size()) return "no invalidation reaches every sub-entry";
    for (uint64_t i = 0; i < h.count(); ++i) {
      bool broke = false, made = false;
      for (std::size_t k = 0; k < ev.size(); ++k) {
        if (ev[k].type != host::Event::Type::write || ev[k].slot != h.sub(i)) continue;
        if (k < fi && ev[k].value == 0) broke = true;
        if (k < fi && ev[k].value != 0)
          return "sub-entry " + std::to_string(i) + " written valid before the flush";
        if (k > fi && ev[k].value == next[i]) made = true;
      }
      if (!broke) return "sub-entry " + std::to_string(i) + " not made invalid before the flush";
      if (!made) return "sub-entry " + std::to_string(i) + " not written after the flush";
    }
    return "";
  }

  bool log_has_flush() const { return log.count(host::Event::Type::flush) != 0; }
  bool log_has_zero_write(const Handle& h) const {
    for (const auto& e : log.events())
      if (e.type == host::Event::Type::write && e.value == 0 && e.slot >= h.slot &&
          e.slot < h.slot + h.count())
        return true;
    return false;
  }

  host::Log log;
  Env env{Env::kDefaultBase, &log};
  host::TlbModel tlb{&log};
  Table pt{env};
  Ops ops{pt, tlb};
};

TYPED_TEST_SUITE(HugePteTest, Formats, FormatName);

// Runs the statement after it once per huge page size of the format, on fresh tables, with the
// size named in every failure message.
#define FOR_EACH_SIZE(s)                                                                     \
  for (unsigned size_i = 0; size_i < TestFixture::kSizes.count; ++size_i)                    \
    if (const HugeSize s = TestFixture::size(size_i); false) {                               \
    } else if (this->reset(), ::testing::Test::HasFatalFailure()) {                          \
      return;                                                                                \
    } else if (::testing::ScopedTrace trace_##s(__FILE__, __LINE__,                          \
                                                ::testing::Message()                         \
                                                    << "size 2^" << s.shift << " level "     \
                                                    << s.level << (s.cont ? " group" : "")); \
               false) {                                                                      \
    } else

// --- 94, 108, 109, 114: set then get ---------------------------------------------------------

TYPED_TEST(HugePteTest, SetThenGetKeepsTheAddressWritePermissionAndAccessFlags) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    uint64_t va = this->va_for(s.shift), pa = this->pa_for(s.shift);
    auto e = this->leaf(pa, s.shift, true, true);
    ASSERT_TRUE(e) << "the format cannot encode a writable dirty leaf";
    auto h = this->must_alloc(va + bit(s.shift) / 2 + 5, s.shift);
    EXPECT_EQ(h.va, va);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    Entry got = this->ops.get(h);
    EXPECT_EQ(got.kind, Kind::leaf);
    EXPECT_EQ(got.addr, pa);
    EXPECT_TRUE(got.writable);
    EXPECT_TRUE(got.accessed);
    EXPECT_TRUE(got.dirty);
    EXPECT_EQ(got.cont_shift, s.cont ? s.shift : 0u);
    // 108: the huge page maps [pa, pa + size), every sub-entry its own part of it.
    for (uint64_t off : {uint64_t{0}, this->sub_size(s) / 2, h.size() / 2 + 3, h.size() - 1}) {
      auto t = host::translate_leaf(this->pt, va + off);
      ASSERT_TRUE(t) << "offset 0x" << std::hex << off;
      EXPECT_EQ(t->pa_of(va + off), pa + off) << "offset 0x" << std::hex << off;
    }
    // 109/114: sub-entry i is exactly what the format's group_entry says.
    uint64_t raw0 = TestFixture::Table::load(h.slot);
    for (uint64_t i = 0; i < h.count(); ++i)
      EXPECT_EQ(TestFixture::Table::load(h.sub(i)),
                F::group_entry(raw0, s.level, static_cast<unsigned>(i)))
          << "sub-entry " << i;
  }
}

// --- 110, 115: A/D gathered over a group -----------------------------------------------------

TYPED_TEST(HugePteTest, GetGathersAccessedAndDirtyFromAnySubEntry) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, false, false);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    Entry clean = this->ops.get(h);
    EXPECT_FALSE(clean.accessed);
    EXPECT_FALSE(clean.dirty);
    uint64_t last = h.count() - 1;
    this->hw_touch(h, last, true);
    Entry got = this->ops.get(h);
    EXPECT_TRUE(got.accessed);
    EXPECT_TRUE(got.dirty);
    EXPECT_EQ(got.addr, e->addr);
    if (s.cont) {  // the first sub-entry alone knows nothing of it
      Entry first = F::decode(TestFixture::Table::load(h.slot), s.level);
      EXPECT_FALSE(first.accessed);
      EXPECT_FALSE(first.dirty);
    }
  }
}

// --- 95, 96, 97: clearing --------------------------------------------------------------------

TYPED_TEST(HugePteTest, GetAndClearReturnsTheGatheredValueAndLeavesEverySubEntryNone) {
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, false, false);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    this->hw_touch(h, h.count() - 1, true);
    this->log.clear();
    Entry old = this->ops.get_and_clear(h);
    EXPECT_EQ(old.kind, Kind::leaf);
    EXPECT_EQ(old.addr, e->addr);
    EXPECT_TRUE(old.accessed);
    EXPECT_TRUE(old.dirty);
    for (uint64_t raw : this->raws(h)) EXPECT_EQ(raw, 0u);
    EXPECT_TRUE(TestFixture::Ops::none(this->ops.get(h)));
    EXPECT_FALSE(this->log_has_flush()) << "get_and_clear must not invalidate";
  }
}

TYPED_TEST(HugePteTest, ClearLeavesEverySubEntryNoneWithoutInvalidating) {
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, true);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    this->log.clear();
    this->ops.clear(h);
    for (uint64_t raw : this->raws(h)) EXPECT_EQ(raw, 0u);
    EXPECT_FALSE(this->log_has_flush());
  }
}

TYPED_TEST(HugePteTest, ClearFlushReturnsTheGatheredValueAndInvalidatesEverySubEntry) {
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, false, false);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    this->hw_touch(h, 0, false);
    this->hw_touch(h, h.count() - 1, true);
    ASSERT_EQ(this->tlb.prime(this->pt, h.va, h.va + h.size()), Err::ok);
    ASSERT_FALSE(this->tlb.leaves().empty());
    this->log.clear();
    Entry old = this->ops.clear_flush(h);
    EXPECT_TRUE(old.accessed);
    EXPECT_TRUE(old.dirty);
    for (uint64_t raw : this->raws(h)) EXPECT_EQ(raw, 0u);
    ASSERT_EQ(this->log.count(host::Event::Type::flush), 1u);
    for (const auto& ev : this->log.events()) {
      if (ev.type == host::Event::Type::flush) {
        EXPECT_TRUE(this->flush_reaches_all(ev.flush, h));
      }
    }
    auto stale = this->tlb.stale(this->pt);
    EXPECT_TRUE(stale.empty()) << stale.front().what << ": " << stale.front().why;
    EXPECT_FALSE(this->tlb.lookup(h.va));
    // Nothing valid was there: nothing to invalidate.
    this->log.clear();
    this->ops.clear_flush(h);
    EXPECT_FALSE(this->log_has_flush());
  }
}

// --- 98, 112: write protection ---------------------------------------------------------------

TYPED_TEST(HugePteTest, SetWrprotectRemovesWriteAndKeepsDirty) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    for (bool dirty : {true, false}) {
      SCOPED_TRACE(dirty ? "dirty" : "clean");
      auto e = this->leaf(this->pa_for(s.shift), s.shift, true, dirty);
      ASSERT_TRUE(e);
      auto h = this->must_alloc(this->va_for(s.shift), s.shift);
      ASSERT_EQ(this->ops.set(h, *e), Err::ok);
      // What each sub-entry becomes, and whether the format wants a break for it.
      std::vector<uint64_t> next;
      bool bbm = false;
      for (uint64_t i = 0; i < h.count(); ++i) {
        uint64_t old = TestFixture::Table::load(h.sub(i));
        Entry d = F::decode(old, s.level);
        d.writable = false;
        d.prot.write = false;
        Result<uint64_t> raw = this->encode_sub(d, h, i);
        ASSERT_TRUE(raw.ok());
        next.push_back(raw.value);
        bbm = bbm || break_needed<F>(old, raw.value, s.level);
      }
      this->log.clear();
      ASSERT_EQ(this->ops.set_wrprotect(h), Err::ok);
      Entry got = this->ops.get(h);
      EXPECT_FALSE(got.writable);
      EXPECT_FALSE(got.prot.write);
      EXPECT_EQ(got.dirty, dirty);
      EXPECT_EQ(got.addr, e->addr);
      EXPECT_EQ(this->raws(h), next);
      if (bbm) {
        EXPECT_EQ(this->bbm_problem(h, next), "");
      } else {
        EXPECT_FALSE(this->log_has_flush()) << "a format without break-before-make paid for one";
        EXPECT_FALSE(this->log_has_zero_write(h)) << "updated in place, never through invalid";
      }
      this->ops.clear(h);
    }
  }
}

TYPED_TEST(HugePteTest, SetWrprotectOfANonPresentEntryIsEinval) {
  FOR_EACH_SIZE(s) {
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    EXPECT_EQ(this->ops.set_wrprotect(h), Err::einval);
    EXPECT_EQ(this->raws(h), std::vector<uint64_t>(h.count(), 0));
  }
}

// --- 99: access flags ------------------------------------------------------------------------

TYPED_TEST(HugePteTest, SetAccessFlagsRelaxesAndSaysWhetherItChangedAnything) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    auto ro = this->leaf(this->pa_for(s.shift), s.shift, false, false, false);
    auto want = this->leaf(this->pa_for(s.shift), s.shift, true, true, true);
    ASSERT_TRUE(ro && want);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *ro), Err::ok);
    Result<bool> r = this->ops.set_access_flags(h, *want);
    ASSERT_TRUE(r.ok()) << err_name(r.err);
    EXPECT_TRUE(r.value);
    Entry got = this->ops.get(h);
    EXPECT_TRUE(got.writable);
    EXPECT_TRUE(got.dirty);
    EXPECT_TRUE(got.accessed);
    EXPECT_EQ(got.addr, ro->addr);
    for (uint64_t i = 0; i < h.count(); ++i) {  // every sub-entry, not only the first
      Entry sub = F::decode(TestFixture::Table::load(h.sub(i)), s.level);
      EXPECT_TRUE(sub.writable && sub.dirty && sub.accessed) << "sub-entry " << i;
    }
    Result<bool> again = this->ops.set_access_flags(h, *want);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again.value) << "nothing left to relax";
    // Relaxing never takes anything away: a clean, old `want` changes nothing either.
    auto weaker = this->leaf(this->pa_for(s.shift), s.shift, false, false, false);
    EXPECT_FALSE(this->ops.set_access_flags(h, *weaker).value);
    auto elsewhere = this->leaf(this->pa_for(s.shift, 5), s.shift, true, true);
    EXPECT_EQ(this->ops.set_access_flags(h, *elsewhere).err, Err::einval);
    this->ops.clear(h);
    EXPECT_EQ(this->ops.set_access_flags(h, *want).err, Err::eagain);
  }
}

// --- 100: modify_prot_start / commit ---------------------------------------------------------

TYPED_TEST(HugePteTest, ModifyProtStartCommitChangesProtectionKeepingAddressAndAccessFlags) {
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, false, false);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    this->hw_touch(h, h.count() - 1, true);
    ASSERT_EQ(this->tlb.prime(this->pt, h.va, h.va + h.size()), Err::ok);
    Entry old = this->ops.modify_prot_start(h);
    for (uint64_t raw : this->raws(h)) EXPECT_EQ(raw, 0u);
    Entry next = old;
    next.writable = false;
    next.prot.write = false;
    ASSERT_EQ(this->ops.modify_prot_commit(h, old, next), Err::ok);
    Entry got = this->ops.get(h);
    EXPECT_EQ(got.addr, e->addr);
    EXPECT_FALSE(got.writable);
    EXPECT_TRUE(got.accessed);
    EXPECT_TRUE(got.dirty);
    // The caller's flush_hugetlb_tlb_range is what retires the writable translation.
    EXPECT_FALSE(this->tlb.stale(this->pt).empty());
    ASSERT_EQ(this->ops.flush_range(h.va, h.va + h.size(), s.shift), Err::ok);
    EXPECT_TRUE(this->tlb.stale(this->pt).empty());
  }
}

// --- 102, 103: non-present values ------------------------------------------------------------

TYPED_TEST(HugePteTest, NoneMostlyHoldsForNoneAndMarkersOnly) {
  using Ops = typename TestFixture::Ops;
  FOR_EACH_SIZE(s) {
    EXPECT_TRUE(Ops::none(Entry{}));
    EXPECT_TRUE(Ops::none_mostly(Entry{}));
    auto leaf = this->leaf(this->pa_for(s.shift), s.shift, true, true);
    ASSERT_TRUE(leaf);
    EXPECT_FALSE(Ops::none(*leaf));
    EXPECT_FALSE(Ops::none_mostly(*leaf));
    if (auto marker = this->nonpresent(Kind::marker, s.level)) {
      EXPECT_FALSE(Ops::none(*marker));
      EXPECT_TRUE(Ops::none_mostly(*marker));
    }
    if (auto swp = this->nonpresent(Kind::swap, s.level)) {
      EXPECT_FALSE(Ops::none(*swp));
      EXPECT_FALSE(Ops::none_mostly(*swp));
    }
  }
}

TYPED_TEST(HugePteTest, NonPresentValuesGoIdenticallyIntoEverySubEntryAndAreClearedBySize) {
  using F = TypeParam;
  unsigned tried = 0;
  FOR_EACH_SIZE(s) {
    for (Kind k : {Kind::swap, Kind::marker}) {
      auto v = this->nonpresent(k, s.level);
      if (!v) continue;  // this level holds no such entry in this format
      ++tried;
      auto h = this->must_alloc(this->va_for(s.shift), s.shift);
      ASSERT_EQ(this->ops.set(h, *v), Err::ok);
      uint64_t raw = F::encode(*v, s.level).value;
      EXPECT_EQ(this->raws(h), std::vector<uint64_t>(h.count(), raw));
      EXPECT_EQ(this->ops.get(h), *v);
      Entry old = this->ops.get_and_clear(h);
      EXPECT_EQ(old, *v);
      EXPECT_EQ(this->raws(h), std::vector<uint64_t>(h.count(), 0));
      ASSERT_EQ(this->ops.set(h, *v), Err::ok);
      this->ops.clear(h);
      EXPECT_EQ(this->raws(h), std::vector<uint64_t>(h.count(), 0));
    }
  }
  EXPECT_GT(tried, 0u);
}

// --- 104, 105, 106: finding slots ------------------------------------------------------------

TYPED_TEST(HugePteTest, OffsetAndAllocGiveOneSlotForEveryAddressOfAHugePage) {
  FOR_EACH_SIZE(s) {
    uint64_t va = this->va_for(s.shift);
    auto h = this->must_alloc(va, s.shift);
    for (uint64_t off :
         {uint64_t{0}, uint64_t{1}, s.cont ? this->sub_size(s) : 0, h.size() / 2, h.size() - 1}) {
      auto a = this->ops.alloc(va + off, s.shift);
      auto o = this->ops.offset(va + off, s.shift);
      ASSERT_TRUE(a.ok() && o.ok()) << "offset 0x" << std::hex << off;
      EXPECT_EQ(a.value, h);
      EXPECT_EQ(o.value, h);
    }
    // The first sub-entry: the slot for the group's base address.
    auto first = find(this->pt, va, s.level);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first.value.slot, h.slot);
    auto next = this->ops.alloc(va + h.size(), s.shift);
    ASSERT_TRUE(next.ok());
    EXPECT_NE(next.value.slot, h.slot);
    EXPECT_EQ(next.value.va, va + h.size());
  }
}

TYPED_TEST(HugePteTest, OffsetReturnsTheSlotWhileUpperTablesExistAndEnoentOtherwise) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    uint64_t va = this->va_for(s.shift);
    auto missing = this->ops.offset(va, s.shift);
    if (s.level == F::levels - 1) {
      EXPECT_TRUE(missing.ok()) << "the root table always exists";
    } else {
      EXPECT_EQ(missing.err, Err::enoent);
    }
    auto h = this->must_alloc(va, s.shift);
    auto none = this->ops.offset(va, s.shift);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none.value, h);
    EXPECT_TRUE(TestFixture::Ops::none(this->ops.get(none.value)));
    if (auto swp = this->nonpresent(Kind::swap, s.level)) {
      ASSERT_EQ(this->ops.set(h, *swp), Err::ok);
      auto o = this->ops.offset(va, s.shift);
      ASSERT_TRUE(o.ok()) << "a non-present entry still has its slot";
      EXPECT_EQ(o.value, h);
    }
  }
  EXPECT_EQ(this->ops.offset(0, 7).err, Err::einval);
  EXPECT_EQ(this->ops.offset(bit(63), F::page_shift).err, Err::erange);
}

TYPED_TEST(HugePteTest, OffsetAndAllocRefuseASlotTakenByABiggerLeafOrATable) {
  using F = TypeParam;
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    HugeSize big = TestFixture::size(i);
    if (big.cont || big.level == 0) continue;
    this->reset();
    SCOPED_TRACE(::testing::Message() << "leaf level " << big.level);
    uint64_t va = this->va_for(big.shift);
    auto e = this->leaf(this->pa_for(big.shift), big.shift, true, true);
    ASSERT_TRUE(e);
    ASSERT_EQ(this->ops.set(this->must_alloc(va, big.shift), *e), Err::ok);
    uint64_t live = this->env.live();
    EXPECT_EQ(this->ops.offset(va, F::page_shift).err, Err::eexist);
    EXPECT_EQ(this->ops.alloc(va, F::page_shift).err, Err::eexist);
    EXPECT_EQ(this->env.live(), live);
    // A table where the size's slot should be: that range is mapped finer.
    uint64_t other = va + 2 * bit(big.shift);
    ASSERT_TRUE(this->ops.alloc(other, F::page_shift).ok());
    EXPECT_EQ(this->ops.alloc(other, big.shift).err, Err::eexist);
    EXPECT_EQ(this->ops.offset(other, big.shift).err, Err::eexist);
  }
}

TYPED_TEST(HugePteTest, MaskLastPagePlusSizeIsTheSpanOfTheTablePage) {
  using F = TypeParam;
  using Ops = typename TestFixture::Ops;
  FOR_EACH_SIZE(s) {
    EXPECT_EQ(Ops::mask_last_page(s.shift) + bit(s.shift),
              bit(F::shift(s.level) + F::index_bits(s.level)));
  }
  EXPECT_EQ(Ops::mask_last_page(7), 0u);
}

TYPED_TEST(HugePteTest, MakeHugeSizesTheEntryAndRefusesSizesTheFormatLacks) {
  using F = TypeParam;
  using Ops = typename TestFixture::Ops;
  Entry page;
  page.kind = Kind::leaf;
  page.prot = kProtR;
  for (unsigned shift = 0; shift < 64; ++shift) {
    Result<Entry> m = Ops::make_huge(page, shift);
    Result<HugeSize> s = huge_size<F>(shift);
    ASSERT_EQ(m.ok(), s.ok()) << "shift " << shift;
    if (!m) continue;
    EXPECT_EQ(m.value.shift, F::shift(s.value.level));
    EXPECT_EQ(m.value.cont_shift, s.value.cont ? shift : 0u);
  }
}

TYPED_TEST(HugePteTest, AllocIsAllOrNothingWhenATableAllocationFails) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    uint64_t va = this->va_for(s.shift);
    unsigned failures = 0;
    for (uint64_t nth = 1;; ++nth) {
      auto before = this->env.snapshot();
      this->env.fail_nth_alloc(nth);
      auto h = this->ops.alloc(va, s.shift);
      this->env.fail_nth_alloc(0);
      if (h.ok()) break;
      ++failures;
      EXPECT_EQ(h.err, Err::enomem);
      EXPECT_EQ(this->env.snapshot(), before) << "allocation " << nth;
      ASSERT_LT(nth, 10u);
    }
    EXPECT_EQ(failures, F::levels - 1 - s.level) << "one allocation point per missing table";
  }
}

// --- set: validation and break-before-make (111, 112, 115) -----------------------------------

TYPED_TEST(HugePteTest, SetRefusesValuesThatDoNotFitTheSlot) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, true);
    ASSERT_TRUE(e);
    Entry wrong_size = *e;
    wrong_size.cont_shift = s.cont ? 0 : 1;
    EXPECT_EQ(this->ops.set(h, wrong_size), Err::einval);
    Entry table;
    table.kind = Kind::table;
    table.addr = this->pt.root();
    EXPECT_EQ(this->ops.set(h, table), Err::einval);
    if (s.shift > F::page_shift) {
      Entry misaligned = *e;
      misaligned.addr += bit(F::page_shift);
      EXPECT_NE(this->ops.set(h, misaligned), Err::ok);
    }
    EXPECT_EQ(this->raws(h), std::vector<uint64_t>(h.count(), 0)) << "nothing written on error";
  }
}

TYPED_TEST(HugePteTest, SetOverASlotThatBecameATableIsEexist) {
  using F = TypeParam;
  for (unsigned i = 0; i < TestFixture::kSizes.count; ++i) {
    HugeSize s = TestFixture::size(i);
    if (s.cont || s.level == 0) continue;
    this->reset();
    uint64_t va = this->va_for(s.shift);
    auto h = this->must_alloc(va, s.shift);
    ASSERT_TRUE(this->ops.alloc(va, F::page_shift).ok());  // now a table sits in h's slot
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, true);
    ASSERT_TRUE(e);
    uint64_t before = TestFixture::Table::load(h.slot);
    EXPECT_EQ(this->ops.set(h, *e), Err::eexist);
    EXPECT_EQ(TestFixture::Table::load(h.slot), before);
    EXPECT_EQ(this->ops.get_and_clear(h).kind, Kind::table) << "a table is never taken";
    EXPECT_EQ(TestFixture::Table::load(h.slot), before);
  }
}

TYPED_TEST(HugePteTest, SetOverInvalidEntriesNeverInvalidates) {
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, true);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    this->log.clear();
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    EXPECT_FALSE(this->log_has_flush());
    EXPECT_FALSE(this->log_has_zero_write(h));
    EXPECT_EQ(this->tlb.publishes(), 1u) << "a new valid entry is published to the walker";
  }
}

TYPED_TEST(HugePteTest, ValidToValidSetBreaksBeforeMakingExactlyWhereTheFormatSaysSo) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    auto a = this->leaf(this->pa_for(s.shift, 3), s.shift, true, true);
    auto b = this->leaf(this->pa_for(s.shift, 7), s.shift, true, true);
    ASSERT_TRUE(a && b);
    ASSERT_NE(a->addr, b->addr);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *a), Err::ok);
    ASSERT_EQ(this->tlb.prime(this->pt, h.va, h.va + h.size()), Err::ok);
    uint64_t raw_b = F::encode(*b, s.level).value;
    std::vector<uint64_t> next;
    bool bbm = false;
    for (uint64_t i = 0; i < h.count(); ++i) {
      next.push_back(F::group_entry(raw_b, s.level, static_cast<unsigned>(i)));
      bbm = bbm || break_needed<F>(TestFixture::Table::load(h.sub(i)), next.back(), s.level);
    }
    this->log.clear();
    ASSERT_EQ(this->ops.set(h, *b), Err::ok);
    EXPECT_EQ(this->raws(h), next);
    if (bbm) {
      EXPECT_EQ(this->bbm_problem(h, next), "");
      auto stale = this->tlb.stale(this->pt);
      EXPECT_TRUE(stale.empty()) << stale.front().what << ": " << stale.front().why;
    } else {
      // x86-like: set() is one store per entry and no invalidation; the kernel's caller does
      // huge_ptep_clear_flush first. Without it the TLB keeps the old page, and the model says so.
      EXPECT_FALSE(this->log_has_flush());
      EXPECT_FALSE(this->log_has_zero_write(h));
      EXPECT_FALSE(this->tlb.stale(this->pt).empty());
      EXPECT_FALSE(this->tlb.agrees(this->pt, h.va));
    }
  }
}

TYPED_TEST(HugePteTest, FormingAGroupOverLiveLeavesBreaksBeforeMakingWhereTheFormatSaysSo) {
  using F = TypeParam;
  bool any_group = false;
  FOR_EACH_SIZE(s) {
    if (!s.cont) continue;
    any_group = true;
    unsigned plain = F::shift(s.level);
    uint64_t va = this->va_for(s.shift), pa = this->pa_for(s.shift);
    // The same pages mapped one plain leaf each, live in the TLB.
    for (uint64_t i = 0; i < bit(s.shift - plain); ++i) {
      auto e = this->leaf(pa + i * bit(plain), plain, true, true);
      ASSERT_TRUE(e);
      ASSERT_EQ(this->ops.set(this->must_alloc(va + i * bit(plain), plain), *e), Err::ok);
    }
    ASSERT_EQ(this->tlb.prime(this->pt, va, va + bit(s.shift)), Err::ok);
    auto group = this->leaf(pa, s.shift, true, true);
    ASSERT_TRUE(group);
    auto g = this->must_alloc(va, s.shift);
    uint64_t raw0 = F::encode(*group, s.level).value;
    std::vector<uint64_t> next;
    bool bbm = false;
    for (uint64_t i = 0; i < g.count(); ++i) {
      next.push_back(F::group_entry(raw0, s.level, static_cast<unsigned>(i)));
      bbm = bbm || break_needed<F>(TestFixture::Table::load(g.sub(i)), next.back(), s.level);
    }
    this->log.clear();
    ASSERT_EQ(this->ops.set(g, *group), Err::ok);
    EXPECT_EQ(this->raws(g), next);
    if (bbm) {
      EXPECT_EQ(this->bbm_problem(g, next), "");
    } else {
      EXPECT_FALSE(this->log_has_flush());
    }
    auto stale = this->tlb.stale(this->pt);
    EXPECT_TRUE(stale.empty()) << stale.front().what << ": " << stale.front().why;
  }
  if (!any_group) GTEST_SKIP() << "no contiguous sizes in this format";
}

// --- the software TLB: a skipped invalidation shows ------------------------------------------

TYPED_TEST(HugePteTest, SkippingTheInvalidationLeavesAStaleTranslation) {
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, true);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    auto hit = this->tlb.access(this->pt, h.va + h.size() - 1);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->pa_of(h.va + h.size() - 1), e->addr + h.size() - 1);
    ASSERT_EQ(this->tlb.prime(this->pt, h.va, h.va + h.size()), Err::ok);
    this->ops.get_and_clear(h);  // deliberately no flush
    auto cached = this->tlb.lookup(h.va);
    ASSERT_TRUE(cached) << "the TLB still holds the old translation";
    EXPECT_EQ(cached->pa_of(h.va), e->addr);
    EXPECT_FALSE(this->tlb.agrees(this->pt, h.va));
    EXPECT_FALSE(this->tlb.stale(this->pt).empty());
    // A hardware access hits the stale entry instead of faulting.
    EXPECT_TRUE(this->tlb.access(this->pt, h.va));
    ASSERT_EQ(this->ops.flush_range(h.va, h.va + h.size(), s.shift), Err::ok);
    EXPECT_TRUE(this->tlb.stale(this->pt).empty());
    EXPECT_FALSE(this->tlb.access(this->pt, h.va)) << "now the access faults";
  }
}

TYPED_TEST(HugePteTest, AnInvalidationThatStepsOverSubEntriesOrNamesAnotherLevelLeavesThemStale) {
  using F = TypeParam;
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, true);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    ASSERT_EQ(this->tlb.prime(this->pt, h.va, h.va + h.size()), Err::ok);
    this->ops.get_and_clear(h);
    uint8_t level = static_cast<uint8_t>(s.level);
    // The wrong level hint reaches nothing.
    uint8_t wrong = static_cast<uint8_t>(s.level + 1 < F::levels ? s.level + 1 : s.level - 1);
    this->tlb.flush(
        TlbFlush{h.va, h.va + h.size(), static_cast<uint8_t>(F::shift(s.level)), wrong, true});
    EXPECT_FALSE(this->tlb.stale(this->pt).empty());
    if (s.cont) {
      // One invalidation for the whole group drops the group entry but not sub-entries cached
      // one by one.
      this->tlb.flush(TlbFlush{h.va, h.va + h.size(), static_cast<uint8_t>(s.shift), level, true});
      EXPECT_FALSE(this->tlb.stale(this->pt).empty());
    }
    this->tlb.flush(
        TlbFlush{h.va, h.va + h.size(), static_cast<uint8_t>(F::shift(s.level)), level, true});
    EXPECT_TRUE(this->tlb.stale(this->pt).empty());
  }
}

TYPED_TEST(HugePteTest, WrprotectWithoutAFlushLeavesAWritableTranslationUnlessItBrokeBeforeMaking) {
  FOR_EACH_SIZE(s) {
    auto e = this->leaf(this->pa_for(s.shift), s.shift, true, true);
    ASSERT_TRUE(e);
    auto h = this->must_alloc(this->va_for(s.shift), s.shift);
    ASSERT_EQ(this->ops.set(h, *e), Err::ok);
    ASSERT_EQ(this->tlb.prime(this->pt, h.va, h.va + h.size()), Err::ok);
    this->log.clear();
    ASSERT_EQ(this->ops.set_wrprotect(h), Err::ok);
    bool flushed = this->log_has_flush();
    EXPECT_EQ(this->tlb.stale(this->pt).empty(), flushed);
    this->ops.flush_range(h.va, h.va + h.size(), s.shift);
    EXPECT_TRUE(this->tlb.stale(this->pt).empty());
  }
}

TYPED_TEST(HugePteTest, TheWalkCacheKeepsAFreedTableUntilANonLeafInvalidation) {
  using F = TypeParam;
  uint64_t va = this->va_for(F::shift(1));
  auto h = this->must_alloc(va, F::page_shift);
  auto e = this->leaf(this->pa_for(F::page_shift), F::page_shift, true, true);
  ASSERT_EQ(this->ops.set(h, *e), Err::ok);
  ASSERT_TRUE(this->tlb.access(this->pt, va));
  // Unlink and free the level-0 table (what collapse will do), invalidating leaves only.
  auto slot1 = find(this->pt, va, 1);
  ASSERT_TRUE(slot1.ok());
  uint64_t table = slot1.value.raw;
  this->pt.store(slot1.value.slot, 1, 0);
  this->pt.free_table(F::out_addr(table, 1), 0);
  this->tlb.flush(
      TlbFlush{va, va + bit(F::shift(1)), static_cast<uint8_t>(F::page_shift), 0, true});
  auto stale = this->tlb.stale(this->pt);
  ASSERT_FALSE(stale.empty());
  EXPECT_NE(stale.front().what.find("walk cache"), std::string::npos) << stale.front().what;
  this->tlb.flush(
      TlbFlush{va, va + bit(F::shift(1)), static_cast<uint8_t>(F::shift(1)), kAnyLevel, false});
  EXPECT_TRUE(this->tlb.stale(this->pt).empty());
}

// --- a seeded mix of every operation over every size keeps the model and the tables agreeing --

TYPED_TEST(HugePteTest, RandomOperationSequencesKeepTheTlbCoherentWhenEveryChangeIsFlushed) {
  const uint64_t seed = 20240601;
  std::mt19937_64 rng(seed);
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  FOR_EACH_SIZE(s) {
    std::vector<typename TestFixture::Handle> hs;
    for (uint64_t k = 0; k < 4; ++k)
      hs.push_back(this->must_alloc(this->va_for(s.shift) + k * bit(s.shift), s.shift));
    for (int step = 0; step < 60; ++step) {
      auto& h = hs[rng() % hs.size()];
      Entry cur = this->ops.get(h);
      switch (rng() % 6) {
        case 0: {
          unsigned k = 1 + static_cast<unsigned>(rng() % 6);
          bool writable = rng() % 2, dirty = rng() % 2;
          auto e = this->leaf(this->pa_for(s.shift, k), s.shift, writable, dirty);
          if (!e) break;
          if (present(cur)) this->ops.clear_flush(h);  // the kernel's order for a new page
          ASSERT_EQ(this->ops.set(h, *e), Err::ok);
          break;
        }
        case 1:
          this->ops.clear_flush(h);
          break;
        case 2:
          if (present(cur)) {
            ASSERT_EQ(this->ops.set_wrprotect(h), Err::ok);
            this->ops.flush_range(h.va, h.va + h.size(), s.shift);
          }
          break;
        case 3:
          if (cur.kind == Kind::leaf) {
            Entry want = cur;
            want.accessed = want.dirty = want.writable = want.prot.write = true;
            (void)this->ops.set_access_flags(h, want);
          }
          break;
        case 4:
          (void)this->tlb.access(this->pt, h.va + rng() % h.size());
          break;
        default:
          ASSERT_EQ(this->tlb.prime(this->pt, h.va, h.va + h.size()), Err::ok);
          break;
      }
      auto stale = this->tlb.stale(this->pt);
      ASSERT_TRUE(stale.empty()) << "step " << step << ": " << stale.front().what << ": "
                                 << stale.front().why;
    }
    for (auto& h : hs) this->ops.clear_flush(h);
  }
}

}  // namespace
