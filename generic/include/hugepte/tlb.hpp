// hugepte/tlb.hpp - where invalidations go.
//
// Generic code never issues a TLB instruction; it tells a sink what it changed. The bare-metal
// images plug in sinks that execute the real instructions (x86 invlpg / CR3 reload, arm64
// TLBI + DSB + ISB, riscv sfence.vma); the host plugs in a model that logs every request and
// keeps a software TLB, so that a missing or late invalidation shows up as a stale translation
// (the host model, host/include/hugepte/env/host.hpp, outside this freestanding core).
// Freestanding.
#pragma once

#include <concepts>

#include "hugepte/entry.hpp"

namespace hugepte {

inline constexpr uint8_t kAnyLevel = 0xff;

// One range invalidation, phrased the way the hardware instructions take it.
struct TlbFlush {
  uint64_t start = 0;          // first byte of the range
  uint64_t end = 0;            // one past the last byte
  uint8_t stride_shift = 0;    // invalidate once per 1 << stride_shift bytes from `start` (the size
                             // of the entries being invalidated: arm64 TLBI by VA takes one address
                             // per entry, riscv sfence.vma one per page of the NAPOT group)
  uint8_t level = kAnyLevel;   // level of the leaf entries (arm64 TTL hint), kAnyLevel if unknown
  bool leaf_only = true;  // only leaf entries changed: cached table walks may stay (arm64
                          // TLBI VALE1); false also drops walk caches for the range
  constexpr bool operator==(const TlbFlush&) const = default;
};

// An invalidation sink.
//   flush(f):   invalidate what the TLB may hold for the range, wait for completion.
//   flush_all(): invalidate everything for this address space.
//   publish():  make entry stores so far visible to this CPU's table walker where nothing was
//               invalidated (after invalid -> valid): arm64 DSB ISHST + ISB, riscv sfence.vma
//               unless Svvptc, nothing on x86.
template <class T>
concept TlbSink = requires(T& t, const TlbFlush& f) {
  { t.flush(f) } -> std::same_as<void>;
  { t.flush_all() } -> std::same_as<void>;
  { t.publish() } -> std::same_as<void>;
};

// For tables no hardware walker uses yet (built before the MMU is on, or by a tool).
struct NullTlb {
  constexpr void flush(const TlbFlush&) {}
  constexpr void flush_all() {}
  constexpr void publish() {}
};
static_assert(TlbSink<NullTlb>);

// Counts instead of invalidating: for benchmarks that must not measure a model.
struct CountingTlb {
  uint64_t flushes = 0;
  uint64_t flush_alls = 0;
  uint64_t publishes = 0;
  constexpr void flush(const TlbFlush&) { ++flushes; }
  constexpr void flush_all() { ++flush_alls; }
  constexpr void publish() { ++publishes; }
};
static_assert(TlbSink<CountingTlb>);

// True when one invalidation of `f` reaches the entry mapping [va, va + 2^shift): some address
// start + k * stride (inside the range) falls in it. An entry bigger than the stride is hit by
// any address in it; an entry smaller than the stride may be stepped over, which is what a wrong
// stride does on real hardware.
constexpr bool flush_hits(const TlbFlush& f, uint64_t va, unsigned shift) {
  if (f.end == f.start) return false;
  uint64_t f_last = f.end - 1;  // end == 0 is the top of the 64-bit space
  uint64_t last = va + (bit(shift) - 1);
  if (last < f.start || va > f_last) return false;
  if (va <= f.start) return true;  // `start` itself lies in the entry
  uint64_t stride = bit(f.stride_shift);
  uint64_t steps = (va - f.start + stride - 1) >> f.stride_shift;  // first address >= va
  uint64_t a = f.start + steps * stride;
  return a >= va && a <= f_last && a <= last;
}

}  // namespace hugepte
