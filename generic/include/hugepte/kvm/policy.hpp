// hugepte/kvm/policy.hpp - what an architecture's KVM does differently, declared by each
// stage-2 format (arch/*) as `static constexpr kvm::Policy kvm`, so that the one secondary-MMU
// fault path, notifier and dirty-logging code in kvm/ reads a property where Linux has three
// implementations (x86 tdp_mmu.c, arm64 mmu.c + hyp/pgtable.c, riscv mmu.c + gstage.c).
// Facts: ../docs/design.md "Secondary MMU", with the per-architecture rows of the TLB and
// recovery tables there. Freestanding.
#pragma once

#include <stdint.h>

namespace hugepte::kvm {

// What happens to small stage-2 mappings once dirty logging (or KVM userfault) is switched off.
enum class Recovery : uint8_t {
  eager,     // x86 kvm_mmu_recover_huge_pages: collapsed in place at once, one flush
  on_fault,  // arm64: a later fault that wants a block replaces the table (TABLE_PRE)
  none,      // riscv: a fault finding a smaller leaf keeps it; stays split
};

struct Policy {
  // mmu_invalidate_retry (any invalidation in progress, arm64 and riscv) or
  // mmu_invalidate_retry_gfn (only when the faulting gfn is inside the pending range, x86).
  bool retry_on_any_invalidation;
  // The notifier's zap frees the tables it empties (arm64 refcounted unmap, riscv) or zaps leaf
  // SPTEs only (x86 tdp_mmu_zap_leafs).
  bool zap_frees_tables;
  // SIGBUS for a poisoned page: si_addr_lsb is the VMA's page shift (arm64, riscv: 30 for a
  // 1 GiB hugetlb page) or PAGE_SHIFT (x86 kvm_send_hwpoison_signal).
  bool poison_lsb_is_vma_shift;
  Recovery recovery;
  // A transparent huge page maps at most this stage-2 level (arm64 and riscv
  // transparent_hugepage_adjust: PMD only); 0xff: no cap (x86 host_pfn_mapping_level).
  uint8_t thp_max_level;
  // A block split by a fault keeps the rest mapped (x86 tdp_mmu_split_huge_page, riscv
  // split_huge) or leaves it to later faults (arm64 stage2_map_walker).
  bool split_keeps_rest;
  // Dirty logging splits huge mappings at once (x86 and riscv eager_page_split default on;
  // arm64 only with KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE, default 0).
  bool eager_split;
  // Write-protecting for dirty logging keeps the logical write permission (x86: MMU-writable
  // stays, W goes, fast_page_fault restores W); elsewhere the format's write bit is the only one
  // (riscv) or a hardware one (arm64 DBM would let the walker write without a fault).
  bool wrprotect_keeps_writable;
  // Execute permission only after an instruction fetch faults (arm64 maps non-executable and
  // relaxes on an exec fault); elsewhere every mapping of RAM is executable.
  bool exec_on_fault;
  // Installing into an invalid slot is followed by a TLB flush (riscv without Svvptc).
  bool flush_on_install;
  // KVM sets the dirty bit of every mapping it creates (riscv: A and D, so Svade never faults);
  // elsewhere dirty only after a write fault.
  bool dirty_on_create;
};

}  // namespace hugepte::kvm
