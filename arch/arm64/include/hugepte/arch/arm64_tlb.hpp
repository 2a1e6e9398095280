// hugepte/arch/arm64_tlb.hpp - the arm64 invalidation sink for a stage-1 format at EL1.
//
// Arm ARM D8.13 / C5.5: a leaf-only change is invalidated with TLBI VALE1IS (last level: cached
// table walks may stay), anything else with TLBI VAE1IS, one per entry of the range, with the
// level hint (TTL, FEAT_TTL) of the entries when the format knows it; a DSB ISHST before makes
// the table stores visible to the walkers of every CPU, a DSB ISH after waits for completion
// and an ISB makes the current CPU's instruction stream use it. publish() after invalid ->
// valid is the DSB ISHST + ISB alone. The operand is VA[55:12] in bits [43:0], TTL in [47:44],
// ASID 0. Only when compiled for arm64 (the header is empty elsewhere). Freestanding.
#pragma once

#include "hugepte/entry.hpp"
#include "hugepte/format.hpp"
#include "hugepte/tlb.hpp"

#if defined(__aarch64__)
namespace hugepte {

template <Format F>
struct Arm64Tlb {
  // Above this many TLBIs one TLBI VMALLE1IS is cheaper (Linux: MAX_DVM_OPS / MAX_TLBI_OPS).
  static constexpr uint64_t kMaxSingle = 512;

  uint64_t flushes = 0;     // flush() calls
  uint64_t full = 0;        // of which ended in TLBI VMALLE1IS
  uint64_t by_va = 0;       // TLBI VAE1IS / VALE1IS instructions issued
  uint64_t leaf_only = 0;   // of which VALE1IS
  uint64_t with_ttl = 0;    // of which carried a level hint

  Arm64Tlb() {
    uint64_t mmfr2;
    asm volatile("mrs %0, id_aa64mmfr2_el1" : "=r"(mmfr2));
    ttl_ = ((mmfr2 >> 48) & 0xf) != 0;  // ID_AA64MMFR2_EL1.TTL
  }

  void flush(const TlbFlush& f) {
    ++flushes;
    const uint64_t len = f.end - f.start;
    const unsigned step = f.leaf_only ? f.stride_shift : F::page_shift;
    asm volatile("dsb ishst" ::: "memory");
    if (len == 0 || (len >> step) > kMaxSingle) {
      ++full;
      asm volatile("tlbi vmalle1is" ::: "memory");
    } else {
      const uint64_t hint = f.level != kAnyLevel && ttl_ ? ttl(f.level) : 0;
      for (uint64_t off = 0; off < len; off += bit(step)) {
        const uint64_t op = (((f.start + off) >> 12) & mask(0, 43)) | (hint << 44);
        if (f.leaf_only) {
          asm volatile("tlbi vale1is, %0" : : "r"(op) : "memory");
          ++leaf_only;
        } else {
          asm volatile("tlbi vae1is, %0" : : "r"(op) : "memory");
        }
        ++by_va;
        with_ttl += hint != 0;
      }
    }
    asm volatile("dsb ish" ::: "memory");
    asm volatile("isb" ::: "memory");
  }
  void flush_all() {
    ++flushes;
    ++full;
    asm volatile("dsb ishst" ::: "memory");
    asm volatile("tlbi vmalle1is" ::: "memory");
    asm volatile("dsb ish" ::: "memory");
    asm volatile("isb" ::: "memory");
  }
  void publish() {
    asm volatile("dsb ishst" ::: "memory");
    asm volatile("isb" ::: "memory");
  }

 private:
  // TTL: bits [3:2] the granule (01 4K, 10 16K, 11 64K), [1:0] the Arm level of the entries
  // (our level 0 is Arm level 3). A level the hint cannot name (Arm level 0, or -1 with LPA2)
  // gets no hint.
  static constexpr uint64_t ttl(unsigned level) {
    const unsigned arm_level = 3 - level;
    if (level > 3 || arm_level == 0) return 0;
    const uint64_t tg = F::page_shift == 12 ? 1 : F::page_shift == 14 ? 2 : 3;
    return (tg << 2) | arm_level;
  }
  bool ttl_ = false;
};

}  // namespace hugepte
#endif
