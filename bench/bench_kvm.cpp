// bench_kvm.cpp - the secondary MMU's table work on Intel EPT (4-level) against hand-written
// EPT code: the install a stage-2 fault does at 4K / 2M / 1G (what kvm::Vm::map hands to
// RangeOps::map), the notifier's zap of 1 GiB mapped at 4K (x86: leaf SPTEs only, the tables
// stay), and the in-place recovery of 1 GiB from 4K leaves to one 1G leaf (what
// kvm_mmu_recover_huge_pages does; kvm::Vm uses RangeOps::collapse).
//
// Both sides write KVM's SPTE bits exactly (RWX, WB, A, MMU-present, host- and MMU-writable,
// suppress-#VE; tables RWX, A, MMU-present, suppress-#VE), so a ratio is the abstraction's cost.
#include <vector>

#include "case.hpp"
#include "flat_env.hpp"
#include "hugepte/arch/x86_tdp.hpp"
#include "hugepte/huge_pte.hpp"
#include "hugepte/range.hpp"
#include "hugepte/table.hpp"
#include "hugepte/tlb.hpp"
#include "hugepte/walk.hpp"

namespace hugepte::bench {
namespace {

using E = Ept4;
using EEnv = FlatEnv<12>;
using ETable = PageTable<E, EEnv>;
using ERange = RangeOps<E, EEnv, NullTlb>;
using EHuge = HugePteOps<E, EEnv, NullTlb>;

constexpr uint64_t kG = uint64_t{1} << 30;
constexpr uint64_t kGpa = kG;                   // the guest region: 1 GiB at 1 GiB
constexpr uint64_t kHpa = uint64_t{1} << 32;    // backed at 4 GiB

// KVM's attributes for writable RAM.
constexpr Attrs kRam = [] {
  Attrs a;
  a.prot = kProtRWX;
  a.writable = true;
  a.accessed = true;
  a.s2.user_exec = true;
  a.s2.host_writable = true;
  return a;
}();

// --- the hand-written side ------------------------------------------------------------------

namespace ept {
constexpr uint64_t kRwx = 7, kWb = uint64_t{6} << 3, kLarge = 0x80, kA = 0x100;
constexpr uint64_t kPresent = uint64_t{1} << 11, kNoVe = uint64_t{1} << 63;
constexpr uint64_t kHostW = uint64_t{1} << 57, kMmuW = uint64_t{1} << 58;
constexpr uint64_t kAddr = 0x000ffffffffff000ull;
constexpr uint64_t kLeaf = kRwx | kWb | kA | kPresent | kHostW | kMmuW | kNoVe;
constexpr uint64_t kTable = kRwx | kA | kPresent | kNoVe;

inline uint64_t rd(const uint64_t* s) { return __atomic_load_n(s, __ATOMIC_RELAXED); }
inline void wr(uint64_t* s, uint64_t v) { __atomic_store_n(s, v, __ATOMIC_RELEASE); }
inline unsigned idx(uint64_t gpa, unsigned shift) { return (gpa >> shift) & 511; }
inline bool present(uint64_t e) { return (e & kRwx) != 0; }
inline bool is_table(uint64_t e) { return present(e) && !(e & kLarge); }

// tdp_mmu_map's descent and install: tables allocated on the way, the leaf written into none.
inline bool install(EEnv& env, uint64_t root, uint64_t gpa, uint64_t hpa, unsigned shift) {
  uint64_t* t = env.table_ptr(root);
  for (unsigned s = 39; s > shift; s -= 9) {
    uint64_t* slot = &t[idx(gpa, s)];
    uint64_t e = rd(slot);
    if (!present(e)) {
      Result<uint64_t> pa = env.alloc_table(0);
      if (!pa) return false;
      e = pa.value | kTable;
      wr(slot, e);
    } else if (!is_table(e)) {
      return false;  // a leaf in the way: not what these cases do
    }
    t = env.table_ptr(e & kAddr);
  }
  uint64_t* slot = &t[idx(gpa, shift)];
  if (present(rd(slot))) return false;
  wr(slot, hpa | kLeaf | (shift > 12 ? kLarge : 0));
  return true;
}

// tdp_mmu_zap_leafs over [gpa, gpa + 1G) mapped at 4K: every leaf to none, tables kept.
inline uint64_t zap_gib(EEnv& env, uint64_t root, uint64_t gpa) {
  uint64_t n = 0;
  uint64_t e4 = rd(&env.table_ptr(root)[idx(gpa, 39)]);
  if (!is_table(e4)) return 0;
  uint64_t e3 = rd(&env.table_ptr(e4 & kAddr)[idx(gpa, 30)]);
  if (!is_table(e3)) return 0;
  uint64_t* pd = env.table_ptr(e3 & kAddr);
  for (unsigned i = 0; i < 512; ++i) {
    uint64_t e2 = rd(&pd[i]);
    if (!is_table(e2)) continue;
    uint64_t* pt = env.table_ptr(e2 & kAddr);
    for (unsigned j = 0; j < 512; ++j)
      if (present(rd(&pt[j]))) {
        wr(&pt[j], 0);
        ++n;
      }
  }
  return n;
}

// recover_huge_pages_range for one GiB: every 4K leaf under the PDPTE present, contiguous from
// a 1G-aligned frame, with the same bits; then the 1G leaf over the table, the tables freed.
inline bool recover_gib(EEnv& env, uint64_t root, uint64_t gpa) {
  uint64_t e4 = rd(&env.table_ptr(root)[idx(gpa, 39)]);
  if (!is_table(e4)) return false;
  uint64_t* slot = &env.table_ptr(e4 & kAddr)[idx(gpa, 30)];
  const uint64_t e3 = rd(slot);
  if (!is_table(e3)) return false;
  uint64_t* pd = env.table_ptr(e3 & kAddr);
  uint64_t first = 0, flags = 0;
  for (unsigned i = 0; i < 512; ++i) {
    const uint64_t e2 = rd(&pd[i]);
    if (!is_table(e2)) return false;
    const uint64_t* pt = env.table_ptr(e2 & kAddr);
    for (unsigned j = 0; j < 512; ++j) {
      const uint64_t e = rd(&pt[j]);
      if (!present(e)) return false;
      const uint64_t k = uint64_t{i} * 512 + j;
      if (k == 0) {
        first = e & kAddr;
        flags = e & ~kAddr;
        if (first & (kG - 1)) return false;
      } else if ((e & kAddr) != first + (k << 12) || (e & ~kAddr) != flags) {
        return false;
      }
    }
  }
  wr(slot, first | flags | kLarge);
  for (unsigned i = 0; i < 512; ++i) env.free_table(rd(&pd[i]) & kAddr, 0);
  env.free_table(e3 & kAddr, 0);
  return true;
}
}  // namespace ept

// --- the cases ----------------------------------------------------------------------------

enum class Side { generic, baseline };

struct EWorld {
  EEnv env{uint64_t{8} << 20};
  ETable pt{env};
  NullTlb tlb;
  EEnv::Snapshot snap;
  EWorld() { pt.init(); }
  void save() {  // every page in use: the zap writes last-level tables too
    std::vector<uint64_t> pages;
    for (uint64_t pa = env.first_pa(); pa < env.free_pa(); pa += 4096) pages.push_back(pa);
    snap = env.snapshot(pages);
  }
  void restore() { env.restore(snap); }
  uint64_t pa_of(uint64_t gpa) const {
    Result<Lookup> l = lookup(pt, gpa);
    return l ? l.value.pa : ~uint64_t{0};
  }
};

// `ops` installs of one leaf of 1 << shift each, consecutive, into empty tables: the path a
// fault takes when nothing is in the way (kvm::Vm::map: huge_pte alloc + set), or with
// `range` the general one (RangeOps::map, which may also replace, split and collapse).
template <Side S>
struct Install : Case {
  unsigned shift;
  bool range;
  EWorld w;
  bool ok = true;
  Install(unsigned s, uint64_t n, bool via_range = false) : shift(s), range(via_range) {
    ops = n;
    w.save();
  }
  void restore() override { w.restore(); }
  void run() override {
    for (uint64_t k = 0; k < ops; ++k) {
      const uint64_t gpa = kGpa + (k << shift), hpa = kHpa + (k << shift);
      if constexpr (S == Side::generic) {
        if (range) {
          ERange r(w.pt, w.tlb);
          ok = ok && r.map(gpa, hpa, bit(shift), kRam, shift, MapMode::replace, shift) == Err::ok;
        } else {
          EHuge hp(w.pt, w.tlb);
          Result<EHuge::Handle> h = hp.alloc(gpa, shift);
          ok = ok && h && hp.set(h.value, leaf_of(kRam, hpa)) == Err::ok;
        }
      } else {
        ok = ok && ept::install(w.env, w.pt.root(), gpa, hpa, shift);
      }
    }
  }
  bool check() override {
    return ok && w.pa_of(kGpa + ((ops - 1) << shift) + 8) == kHpa + ((ops - 1) << shift) + 8 &&
           E::decode(lookup(w.pt, kGpa).value.raw, (shift - 12) / 9) ==
               E::decode(ept::kLeaf | kHpa | (shift > 12 ? ept::kLarge : 0), (shift - 12) / 9);
  }
};

struct Mapped4K {
  EWorld w;
  Mapped4K() {
    for (uint64_t off = 0; off < kG; off += 4096)
      if (!ept::install(w.env, w.pt.root(), kGpa + off, kHpa + off, 12)) std::abort();
    w.save();
  }
};

template <Side S>
struct ZapGiB : Case, Mapped4K {
  uint64_t cleared = 0;
  void restore() override { w.restore(); }
  void run() override {
    if constexpr (S == Side::generic) {
      ERange r(w.pt, w.tlb);
      Result<uint64_t> n = r.template zap<false>(kGpa, kG);
      cleared = n ? n.value : 0;
    } else {
      cleared = ept::zap_gib(w.env, w.pt.root(), kGpa);
    }
  }
  bool check() override { return cleared == (kG >> 12) && w.pa_of(kGpa) == ~uint64_t{0}; }
};

template <Side S>
struct RecoverGiB : Case, Mapped4K {
  bool ok = true;
  void restore() override { w.restore(); }
  void run() override {
    if constexpr (S == Side::generic) {
      ERange r(w.pt, w.tlb);
      ok = r.collapse(kGpa, 30) == Err::ok;
    } else {
      ok = ept::recover_gib(w.env, w.pt.root(), kGpa);
    }
  }
  bool check() override {
    Result<Lookup> l = lookup(w.pt, kGpa + 0x12345678);
    return ok && l && l.value.level == 2 && l.value.pa == kHpa + 0x12345678;
  }
};

template <template <Side> class C, class... A>
void add2(const char* op, A... a) {
  std::string base = std::string("BM_") + op;
  add(base + "/generic", make<C<Side::generic>>(a...));
  add(base + "/baseline", make<C<Side::baseline>>(a...));
}

const bool registered = [] {
  add2<Install>("S2Install4K", 12u, uint64_t{512});
  add2<Install>("S2Install2M", 21u, uint64_t{512});
  add2<Install>("S2Install1G", 30u, uint64_t{256});
  add2<Install>("S2InstallByRange4K", 12u, uint64_t{512}, true);
  add2<ZapGiB>("S2ZapGiB4K");
  add2<RecoverGiB>("S2Recover4KTo1G");
  return true;
}();

}  // namespace
}  // namespace hugepte::bench
