// range_model_test.cpp - seeded random sequences of map / unmap / protect / split / collapse
// (range.hpp) checked after every step against a flat reference model va -> {pa, prot}, typed
// over the fake exemplar and every real format.
//
// After each step:
//   - every entry the tables hold in the test window agrees with the model over its whole span
//     (a leaf: the model maps all of it, contiguously from the leaf's output address, with its
//     permissions; none: the model maps nothing there), so every leaf boundary is checked;
//   - translate() agrees with the model at the first, last and a random page of every piece;
//   - no table page leaks (Env: allocated - freed == tables reachable) and no empty table stays
//     linked;
//   - the software TLB, fed by random hardware accesses before the step, holds nothing stale.
// ENOMEM is injected at random allocation points on the way: the failed call must leave the
// tables bit-identical, then the same call is made again.
//
// HPT_RANGE_SEED and HPT_RANGE_STEPS (environment) replay or lengthen a run; a failure prints
// the seed and the step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "fake_format.hpp"
#include "hugepte/env/host.hpp"
#include "hugepte/range.hpp"

#include "typed_formats.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file

using Formats = hpt_typed::AllWithFake<>;
using hpt_typed::FormatName;

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

// The reference: disjoint pieces [start, last] -> pa, with permissions.
struct Piece {
  uint64_t last = 0;
  uint64_t pa = 0;
  Prot prot{};
  bool writable = false;
};

class Model {
 public:
  const std::map<uint64_t, Piece>& pieces() const { return m_; }

  void assign(uint64_t a, uint64_t last, uint64_t pa, Prot prot, bool writable) {
    erase(a, last);
    m_[a] = Piece{last, pa, prot, writable};
  }

  void erase(uint64_t a, uint64_t last) {
    cut(a);
    cut(last + 1);
    m_.erase(m_.lower_bound(a), last + 1 == 0 ? m_.end() : m_.lower_bound(last + 1));
  }

  void protect(uint64_t a, uint64_t last, Prot prot, bool writable) {
    cut(a);
    cut(last + 1);
    for (auto it = m_.lower_bound(a); it != m_.end() && it->first <= last; ++it) {
      it->second.prot = prot;
      it->second.writable = writable;
    }
  }

  // The piece holding va, if any.
  const std::pair<const uint64_t, Piece>* find(uint64_t va) const {
    auto it = m_.upper_bound(va);
    if (it == m_.begin()) return nullptr;
    --it;
    return va <= it->second.last ? &*it : nullptr;
  }

  // Whether anything is mapped in [a, last].
  bool any(uint64_t a, uint64_t last) const {
    if (find(a)) return true;
    auto it = m_.lower_bound(a);
    return it != m_.end() && it->first <= last;
  }

  // [a, last] mapped without a gap, contiguously from pa(a), with one set of permissions.
  bool uniform(uint64_t a, uint64_t last) const {
    const auto* p = find(a);
    if (!p) return false;
    const uint64_t pa0 = p->second.pa + (a - p->first);
    const Piece first = p->second;
    for (uint64_t at = a;;) {
      p = find(at);
      if (!p || p->second.prot != first.prot || p->second.writable != first.writable ||
          p->second.pa + (at - p->first) != pa0 + (at - a))
        return false;
      if (p->second.last >= last) return true;
      at = p->second.last + 1;
    }
  }

 private:
  // Makes `a` the start of a piece if a piece runs across it.
  void cut(uint64_t a) {
    const auto* p = find(a);
    if (!p || p->first == a) return;
    Piece right = p->second;
    right.pa += a - p->first;
    m_[p->first].last = a - 1;
    m_[a] = right;
  }

  std::map<uint64_t, Piece> m_;
};

template <class F>
class RangeModelTest : public ::testing::Test {
 protected:
  using Env = host::EnvFor<F>;
  using Table = PageTable<F, Env>;
  using Ops = RangeOps<F, Env, host::TlbModel>;
  static constexpr LeafSizes<F> kSizes = leaf_sizes<F>();
  static constexpr unsigned kMaxShift = 34;  // sizes used: up to 16G (arm64 64K CONT_PMD)

  void SetUp() override {
    ASSERT_EQ(pt.init(), Err::ok);
    for (unsigned i = 0; i < kSizes.count; ++i)
      if (kSizes.shift[i] <= kMaxShift) sizes.push_back(kSizes.shift[i]);
    window_shift = sizes.back() + 1;
    base = bit(window_shift);
    ASSERT_TRUE(F::canonical(2 * base - 1));
    pa_limit = bit(F::pa_bits < 40 ? F::pa_bits : 40);
    for (Attrs a :
         {Attrs{{true, true, false, true}, true, MemType::normal, false, true, true, {}},
          Attrs{{true, false, false, true}, false, MemType::normal, false, true, true, {}},
          Attrs{{true, false, true, false}, false, MemType::normal, false, true, true, {}}})
      if (encodable(a)) attrs.push_back(a);
    ASSERT_GE(attrs.size(), 2u);
  }

  static bool encodable(const Attrs& a) {
    for (unsigned i = 0; i < kSizes.count; ++i) {
      unsigned l = kSizes.level[i];
      Entry e;
      e.kind = Kind::leaf;
      e.shift = static_cast<uint8_t>(F::shift(l));
      e.cont_shift = static_cast<uint8_t>(kSizes.cont[i] ? kSizes.shift[i] : 0);
      e.prot = a.prot;
      e.writable = a.writable;
      e.accessed = a.accessed;
      e.dirty = a.dirty;
      if (!F::encode(e, l)) return false;
    }
    return true;
  }

  uint64_t rnd(uint64_t n) { return n == 0 ? 0 : rng() % n; }

  // A random range of whole 2^s units inside the window.
  void pick_range(unsigned s, uint64_t& a, uint64_t& len) {
    uint64_t units = bit(window_shift - s);
    uint64_t u = rnd(units), k = 1 + rnd(3);
    if (u + k > units) k = units - u;
    a = base + (u << s);
    len = k << s;
  }

  // --- checks after a step ---

  // Every entry in the window against the model, over its whole span. The walk is in address
  // order, so one iterator moves along the model's pieces with it.
  void check_tables(uint64_t from, uint64_t to, const char* when) {
    std::string problem;
    const auto& pieces = model.pieces();
    auto it = pieces.lower_bound(from);
    if (it != pieces.begin() && std::prev(it)->second.last >= from) --it;
    char buf[320];
    Err e = walk(pt, from, to, WalkFlags{.leaf = true}, [&](const VisitCtx& c, Visit) -> Step {
      const uint64_t last = c.end - 1;
      while (it != pieces.end() && it->second.last < c.addr) ++it;
      if (F::is_leaf(c.old, c.level)) {
        Entry d = F::decode(c.old, c.level);
        const uint64_t pa = host::leaf_pa(d, c.addr);
        // The model may hold several pieces here (it never merges); together they must map the
        // whole leaf contiguously with its permissions.
        bool ok = true;
        for (auto p = it; ok; ++p) {
          uint64_t from = p == it ? c.addr : p->first;
          ok = p != pieces.end() && p->first <= from &&
               p->second.pa + (from - p->first) == pa + (from - c.addr) &&
               p->second.prot == d.prot && p->second.writable == d.writable;
          if (!ok || p->second.last >= last) break;
        }
        if (ok) return Step::next();
        const bool mapped = it != pieces.end() && it->first <= c.addr;
        std::snprintf(
            buf, sizeof buf,
            "leaf 0x%llx..0x%llx level %u (pa 0x%llx, %s%s) disagrees with the model "
            "(%s 0x%llx..0x%llx -> 0x%llx %s%s)",
            static_cast<unsigned long long>(c.addr), static_cast<unsigned long long>(last), c.level,
            static_cast<unsigned long long>(pa), d.prot.write ? "w" : "-", d.writable ? "W" : "-",
            mapped ? "mapped" : "not mapped",
            static_cast<unsigned long long>(mapped ? it->first : 0),
            static_cast<unsigned long long>(mapped ? it->second.last : 0),
            static_cast<unsigned long long>(mapped ? it->second.pa : 0),
            mapped && it->second.prot.write ? "w" : "-", mapped && it->second.writable ? "W" : "-");
        problem = buf;
        return Step::stop();
      }
      if (F::decode(c.old, c.level).kind != Kind::none) {
        std::snprintf(buf, sizeof buf, "unexpected entry 0x%llx at 0x%llx level %u",
                      static_cast<unsigned long long>(c.old),
                      static_cast<unsigned long long>(c.addr), c.level);
        problem = buf;
        return Step::stop();
      }
      if (it != pieces.end() && it->first <= last) {
        std::snprintf(buf, sizeof buf, "0x%llx..0x%llx is none, the model maps 0x%llx there",
                      static_cast<unsigned long long>(c.addr),
                      static_cast<unsigned long long>(last),
                      static_cast<unsigned long long>(it->first < c.addr ? c.addr : it->first));
        problem = buf;
        return Step::stop();
      }
      return Step::next();
    });
    ASSERT_EQ(e, Err::ok);
    ASSERT_EQ(problem, "") << when;
  }

  // translate() at the first, last and a random page of every piece.
  void check_translate() {
    const uint64_t page = bit(F::page_shift);
    for (const auto& [start, p] : model.pieces()) {
      uint64_t pages = (p.last - start + 1) >> F::page_shift;
      for (uint64_t va : {start, p.last + 1 - page, start + (rnd(pages) << F::page_shift)}) {
        auto t = ops.translate(va + 3);
        ASSERT_TRUE(t.ok()) << "0x" << std::hex << va << ": " << err_name(t.err);
        ASSERT_EQ(t.value.pa, p.pa + (va - start) + 3) << "0x" << std::hex << va;
        ASSERT_EQ(t.value.entry.prot, p.prot) << "0x" << std::hex << va;
        ASSERT_EQ(t.value.entry.writable, p.writable) << "0x" << std::hex << va;
      }
    }
    // And something unmapped.
    uint64_t probe = base + (rnd(bit(window_shift - F::page_shift)) << F::page_shift);
    if (!model.find(probe)) {
      ASSERT_EQ(ops.translate(probe).err, Err::enoent);
    }
  }

  // Table pages: allocated - freed == reachable; with `empties`, no linked table is empty.
  // (Everything lives in the window, so walking it finds every table.) Without `empties`,
  // tables of level-0 entries are counted without walking them: a 64K-granule table holds
  // 8192 entries.
  void check_pages(bool empties) {
    uint64_t n = 1;
    bool empty = false;
    walk(pt, base, 2 * base, WalkFlags{.table_pre = true}, [&](const VisitCtx& c, Visit) -> Step {
      ++n;
      if (empties) {
        uint64_t* t = pt.child(c.old, c.level);
        bool any = false;
        for (uint64_t i = 0; i < bit(F::index_bits(c.level - 1)) && !any; ++i)
          any = F::decode(Table::load(t + i), c.level - 1).kind != Kind::none;
        empty = empty || !any;
      }
      return !empties && c.level == 1 ? Step::skip() : Step::next();
    });
    ASSERT_EQ(env.live(), n) << "table pages leaked or lost";
    ASSERT_FALSE(empty) << "an empty table stayed linked";
  }

  void check_tlb() {
    auto stale = tlb.stale(pt);
    ASSERT_TRUE(stale.empty()) << stale.front().what << ": " << stale.front().why;
  }

  void touch(unsigned n) {
    for (unsigned i = 0; i < n; ++i)
      (void)tlb.access(pt, base + (rnd(bit(window_shift - F::page_shift)) << F::page_shift));
  }

  // Runs `op`; with some probability first with an allocation failure injected, which must
  // leave every table page as it was.
  template <class Op>
  Err with_enomem(Op op) {
    if (rnd(4) == 0) {
      auto before = env.snapshot();
      uint64_t live = env.live();
      env.fail_nth_alloc(rnd(2) == 0 ? 1 : 2 + rnd(3));  // the first allocation half of the time
      Err e = op();
      env.fail_nth_alloc(0);
      if (e != Err::enomem) return e;
      ++enomems;
      EXPECT_EQ(env.snapshot(), before) << "ENOMEM changed the tables";
      EXPECT_EQ(env.live(), live) << "ENOMEM leaked pages";
    }
    return op();
  }

  void run(uint64_t seed, unsigned steps) {
    rng.seed(seed);
    struct Undo {
      uint64_t va;
      unsigned shift;
    };
    std::vector<Undo> splits;  // recent splits: collapse them back later
    for (unsigned step = 0; step < steps; ++step) {
      char what[200];
      if (step % 64 == 0) tlb.flush_all();
      touch(6);
      // Operations: map 3/8, unmap, protect, collapse 1/8 each, split 2/8. Unmap and protect
      // lean to small sizes (the minimum of two draws), so that they cut into bigger leaves.
      const unsigned kind = static_cast<unsigned>(rnd(8));
      const bool cut = kind == 3 || kind == 4;
      unsigned s = sizes[cut ? std::min(rnd(sizes.size()), rnd(sizes.size())) : rnd(sizes.size())];
      uint64_t a = 0, len = 0;
      pick_range(s, a, len);
      const uint64_t last = a + len - 1;
      // What a step may change: its range, widened to the leaves (before the step) that cover
      // its first and last address, which it may split.
      uint64_t lo = a, hi = last;
      auto widen = [&](uint64_t first, uint64_t final) {
        auto l = ops.translate(first), h = ops.translate(final);
        lo = l.ok() ? l.value.va : first;
        hi = h.ok() ? h.value.va + (bit(h.value.shift) - 1) : final;
      };
      widen(a, last);
      Err e = Err::ok;
      switch (kind) {
        case 0:
        case 1:
        case 2: {  // map
          const Attrs& at = attrs[rnd(attrs.size())];
          uint64_t pa = rnd(pa_limit >> s) << s;
          if (pa + len > pa_limit) pa = 0;
          unsigned max_shift = 64;
          std::size_t i = std::find(sizes.begin(), sizes.end(), s) - sizes.begin();
          if (i > 0 && rnd(3) == 0) {
            unsigned smaller = sizes[rnd(i)];
            if ((len >> smaller) <= 1024) {
              if (rnd(2) == 0) {
                pa += bit(smaller);  // aligned only to the smaller size: smaller leaves
                if (pa + len > pa_limit) pa = bit(smaller);
              } else {
                max_shift = smaller;
              }
            }
          }
          std::snprintf(what, sizeof what, "map 0x%llx+0x%llx -> 0x%llx max 2^%u %s",
                        static_cast<unsigned long long>(a), static_cast<unsigned long long>(len),
                        static_cast<unsigned long long>(pa), max_shift, at.writable ? "rw" : "ro");
          e = with_enomem([&] { return ops.map(a, pa, len, at, max_shift); });
          ASSERT_EQ(e, Err::ok) << what << " (step " << step << ")";
          model.assign(a, last, pa, at.prot, at.writable);
          break;
        }
        case 3: {  // unmap
          std::snprintf(what, sizeof what, "unmap 0x%llx+0x%llx",
                        static_cast<unsigned long long>(a), static_cast<unsigned long long>(len));
          e = with_enomem([&] { return ops.unmap(a, len); });
          ASSERT_EQ(e, Err::ok) << what << " (step " << step << ")";
          model.erase(a, last);
          break;
        }
        case 4: {  // protect
          const Attrs& at = attrs[rnd(attrs.size())];
          std::snprintf(what, sizeof what, "protect 0x%llx+0x%llx %s",
                        static_cast<unsigned long long>(a), static_cast<unsigned long long>(len),
                        at.writable ? "rw" : "ro");
          e = with_enomem([&] { return ops.protect(a, len, at.prot, at.writable); });
          ASSERT_EQ(e, Err::ok) << what << " (step " << step << ")";
          model.protect(a, last, at.prot, at.writable);
          break;
        }
        case 5:
        case 6: {  // split
          uint64_t va = a + (rnd(len >> F::page_shift) << F::page_shift);
          unsigned t = sizes[rnd(sizes.size())];
          auto before = ops.translate(va);
          bool expect_ok = before.ok() && before.value.shift > t;
          std::snprintf(what, sizeof what, "split 0x%llx to 2^%u (leaf 2^%u)",
                        static_cast<unsigned long long>(va), t,
                        before.ok() ? before.value.shift : 0);
          widen(va, va);
          e = with_enomem([&] { return ops.split(va, t); });
          ASSERT_EQ(e, expect_ok ? Err::ok : Err::einval) << what << " (step " << step << ")";
          if (e == Err::ok) {
            ASSERT_EQ(ops.translate(va).value.shift, t) << what;
            splits.push_back({va, before.value.shift});
            ++done_splits;
          }
          break;
        }
        default: {  // collapse: one we split, or a random region
          uint64_t va;
          unsigned t;
          if (!splits.empty() && rnd(2) == 0) {
            va = splits.back().va;
            t = splits.back().shift;
            splits.pop_back();
          } else {
            va = a + (rnd(len >> F::page_shift) << F::page_shift);
            t = sizes[rnd(sizes.size())];
          }
          uint64_t r = align_down(va, t);
          auto at = ops.translate(r);
          const auto* p = model.find(r);
          bool expect_ok = model.uniform(r, r + bit(t) - 1) && p &&
                           aligned(p->second.pa + (r - p->first), t) && at.ok() &&
                           at.value.shift <= t;
          std::snprintf(what, sizeof what, "collapse 0x%llx to 2^%u",
                        static_cast<unsigned long long>(va), t);
          lo = r;
          hi = r + (bit(t) - 1);
          e = ops.collapse(va, t);
          if (expect_ok) {
            ASSERT_EQ(e, Err::ok) << what << " (step " << step << ")";
            ASSERT_EQ(ops.translate(va).value.shift, t) << what;
            ++done_collapses;
          } else {
            ASSERT_EQ(e, Err::einval) << what << " (step " << step << ")";
          }
          break;
        }
      }
      SCOPED_TRACE(::testing::Message() << "after step " << step << ": " << what);
      // Every entry a step can change lies in [lo, hi]: that is checked after every step, the
      // whole window every 16 steps (a write outside [lo, hi] would show there, with the step
      // it happened in narrowed to 16).
      const bool full = step % 16 == 15 || step + 1 == steps;
      check_tables(full ? base : lo, full ? 2 * base : hi + 1, what);
      if (HasFatalFailure()) return;
      check_translate();
      if (HasFatalFailure()) return;
      check_pages(full);
      if (HasFatalFailure()) return;
      check_tlb();
      if (HasFatalFailure()) return;
      mapped_sum += model.pieces().size();
    }
  }

  std::mt19937_64 rng;
  std::vector<unsigned> sizes;
  std::vector<Attrs> attrs;
  unsigned window_shift = 0;
  uint64_t base = 0;
  uint64_t pa_limit = 0;
  uint64_t enomems = 0;
  uint64_t done_splits = 0;
  uint64_t done_collapses = 0;
  uint64_t mapped_sum = 0;
  Model model;

  Env env;
  host::TlbModel tlb;
  Table pt{env};
  Ops ops{pt, tlb};
};

TYPED_TEST_SUITE(RangeModelTest, Formats, FormatName);

TYPED_TEST(RangeModelTest, RandomRangeOperationsAgreeWithAFlatModel) {
  const uint64_t seed = env_u64("HPT_RANGE_SEED", 0x7a6e6765ull);
  // Fewer steps where a table holds thousands of entries (16K, 64K granules): each split or
  // check of one costs as much as 16 of a 4K format's.
  using F = TypeParam;
  const unsigned entries = static_cast<unsigned>(bit(F::index_bits(0)));
  const unsigned steps = static_cast<unsigned>(env_u64("HPT_RANGE_STEPS", entries <= 512    ? 400
                                                                          : entries <= 2048 ? 240
                                                                                            : 160));
  SCOPED_TRACE(::testing::Message() << "seed " << seed << " (HPT_RANGE_SEED to replay)");
  this->run(seed, steps);
  if (::testing::Test::HasFailure())
    std::printf("range model test failed with HPT_RANGE_SEED=%llu\n",
                static_cast<unsigned long long>(seed));
  std::printf(
      "  %u steps: %llu injected ENOMEMs, %llu splits, %llu collapses, %.1f pieces mapped on "
      "average\n",
      steps, static_cast<unsigned long long>(this->enomems),
      static_cast<unsigned long long>(this->done_splits),
      static_cast<unsigned long long>(this->done_collapses),
      static_cast<double>(this->mapped_sum) / steps);
  EXPECT_GT(this->enomems, 0u) << "the run never hit an injected ENOMEM";
  EXPECT_GT(this->done_splits, 0u) << "the run never split a leaf";
  EXPECT_GT(this->done_collapses, 0u) << "the run never collapsed a region";
}

}  // namespace
