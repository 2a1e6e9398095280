// format_stage2.cpp - the secondary MMU's entry formats (x86_tdp.hpp: EPT, NPT; arm64_s2.hpp;
// riscv_gstage.hpp) against the manuals (Intel SDM vol. 3C "EPT Translation Mechanism", AMD
// APM vol. 2 "Nested Paging", Arm ARM D8 stage 2, RISC-V privileged spec "Hypervisor
// Extension") and the values Linux's KVM writes (spte.h/spte.c, kvm_pgtable.h, gstage.c).
//
// Shared ring: freestanding (no heap, no printf). Hand vectors first, then the properties every
// stage-2 format keeps (random raw values and random entries, seeded).
#include "hpt_test.hpp"
#include "hugepte/arch/all.hpp"

namespace {

using namespace hugepte;  // NOLINT(google-build-using-namespace): test file

using Ept4Pa46 = EptFormat<4, true, false, true, 46>;
using Ept4NoAd = EptFormat<4, false>;
using Ept4Mbec = EptFormat<4, true, true>;
using S2_4K_Fwb = Arm64S2Format<12, 40, true>;
using S2_4K_48 = Arm64S2Format<12, 48>;
using S2_16K_48 = Arm64S2Format<14, 48>;
using Sv39x4NoExt = RiscvGstageFormat<3, false, false>;

// Each variant that changes what a bit means (A/D, MBEC, FWB, the granule); 5-level EPT/NPT,
// other IPA sizes, MAXPHYADDR and the riscv modes differ only in depth or width, which the hand
// vectors above pin down.
using Stage2Formats = hpt::FormatList<Ept4, Ept4NoAd, Ept4Mbec, Npt4, Arm64S2_4K, Arm64S2_16K,
                                      Arm64S2_64K, S2_4K_Fwb, Sv39x4>;

constexpr Prot prot(bool r, bool w, bool x) { return Prot{r, w, x, false}; }

Entry leaf(uint64_t addr, unsigned shift, Prot p, bool user_exec) {
  Entry e;
  e.kind = Kind::leaf;
  e.addr = addr;
  e.shift = static_cast<uint8_t>(shift);
  e.prot = p;
  e.s2.user_exec = user_exec;
  return e;
}

}  // namespace

// ---- EPT (SDM vol. 3C, "EPT Paging-Structure Entries"; KVM spte.h) -------------------------

// KVM's 4K SPTE for writable RAM: RWX, WB with IPAT, A, D, MMU-present (11), host- and
// MMU-writable (57, 58), suppress #VE (63).
HPT_CASE(stage2, EptKvmRamLeafDecodesFieldByField) {
  const uint64_t raw = 0x8600000012345b77ull;
  Entry want = leaf(0x12345000, 12, prot(true, true, true), true);
  want.mem = MemType::normal;
  want.s2.ignore_pat = true;
  want.s2.host_writable = true;
  want.writable = true;
  want.accessed = true;
  want.dirty = true;
  HPT_EXPECT(Ept4::decode(raw, 0) == want);
  HPT_EXPECT_EQ(Ept4::encode(want, 0).value, raw);
  HPT_EXPECT(Ept4::is_leaf(raw, 0));
}

HPT_CASE(stage2, EptLargeLeavesNeedBit7AndAnAlignedAddress) {
  // 2M, read+execute, WB: the PDE with bit 7.
  const uint64_t pde = 0x80000000400008b5ull;
  Entry e = Ept4::decode(pde, 1);
  HPT_EXPECT_EQ(e.kind, Kind::leaf);
  HPT_EXPECT_EQ(e.addr, uint64_t{0x40000000});
  HPT_EXPECT(e.prot == prot(true, false, true));
  HPT_EXPECT(!e.writable);
  // 1G with address bit 21 set: bits 29:12 of a 1G leaf are reserved.
  HPT_EXPECT_EQ(Ept4::decode(0x402000b7ull, 2).reason, Reason::reserved_bits);
  HPT_EXPECT_EQ(Ept4::decode(0x400000b7ull, 2).kind, Kind::leaf);
  // Without 1G EPT pages (CAP bit 17) bit 7 in a PDPTE is a misconfiguration.
  HPT_EXPECT_EQ((EptFormat<4, true, false, false>::decode(0x400000b7ull, 2).reason),
                Reason::reserved_large_page);
  // Bit 7 in a PML4E / PML5E is always one.
  HPT_EXPECT_EQ(Ept5::decode(0x1087ull, 3).reason, Reason::reserved_large_page);
  HPT_EXPECT_EQ(Ept5::decode(0x1087ull, 4).reason, Reason::reserved_large_page);
}

HPT_CASE(stage2, EptMisconfigurationsAreInvalidWithTheirReason) {
  HPT_EXPECT_EQ(Ept4::decode(0x1002ull, 0).reason, Reason::write_without_read);  // -W-
  HPT_EXPECT_EQ(Ept4::decode(0x1006ull, 0).reason, Reason::write_without_read);  // -WX
  const uint64_t reserved_types[] = {2, 3, 7};
  for (uint64_t mt : reserved_types)
    HPT_EXPECT_EQ(Ept4::decode(0x1007ull | mt << 3, 0).reason, Reason::reserved_memory_type);
  HPT_EXPECT_EQ(Ept4::decode(0x1007ull | bit(3), 1).reason, Reason::reserved_bits);  // table
  HPT_EXPECT_EQ(Ept4::decode(0x1007ull | bit(6), 2).reason, Reason::reserved_bits);  // table
  HPT_EXPECT_EQ(Ept4Pa46::decode(bit(46) | 0x1037ull, 0).reason, Reason::reserved_bits);
  HPT_EXPECT_EQ(Ept4::decode(bit(46) | 0x1037ull, 0).kind, Kind::leaf);
  // Execute-only is a translation (with IA32_VMX_EPT_VPID_CAP bit 0, which KVM uses).
  Entry x = Ept4::decode(0x1034ull, 0);
  HPT_EXPECT_EQ(x.kind, Kind::leaf);
  HPT_EXPECT(x.prot == prot(false, false, true));
}

HPT_CASE(stage2, EptTablesAreKvmsNonleafSpte) {
  const uint64_t t = Ept4::make_table(0x5000, 3);
  HPT_EXPECT_EQ(t, uint64_t{0x8000000000005907ull});  // RWX, A, MMU-present, suppress #VE
  Entry e = Ept4::decode(t, 3);
  HPT_EXPECT_EQ(e.kind, Kind::table);
  HPT_EXPECT_EQ(e.addr, uint64_t{0x5000});
  HPT_EXPECT(e.prot == prot(true, true, true));
  HPT_EXPECT(e.accessed);
  HPT_EXPECT_EQ(e.keep, uint64_t{0});
  HPT_EXPECT_EQ((Ept4NoAd::make_table(0x5000, 1)), uint64_t{0x8000000000005807ull});
}

HPT_CASE(stage2, EptFrozenAndNonpresentSptesAreLockedAndNone) {
  Entry f = Ept4::decode(0x80000000000005a0ull, 0);  // FROZEN_SPTE
  HPT_EXPECT_EQ(f.kind, Kind::locked);
  HPT_EXPECT_EQ(f.keep, uint64_t{0});
  Entry g = Ept4::decode(0x8000000000000498ull, 2);  // the posted 0x498 revision
  HPT_EXPECT_EQ(g.kind, Kind::locked);
  HPT_EXPECT_EQ(Ept4::encode(g, 2).value, uint64_t{0x8000000000000498ull});
  Entry locked;
  locked.kind = Kind::locked;
  HPT_EXPECT_EQ(Ept4::encode(locked, 1).value, uint64_t{0x80000000000005a0ull});
  HPT_EXPECT(!Ept4::encode(Entry{.kind = Kind::locked, .keep = 1}, 0).ok());
  Entry n = Ept4::decode(x86::kShadowNonpresent, 0);  // SHADOW_NONPRESENT_VALUE
  HPT_EXPECT_EQ(n.kind, Kind::none);
  HPT_EXPECT_EQ(n.keep, x86::kShadowNonpresent);
  HPT_EXPECT(!Ept4::is_leaf(0x80000000000005a0ull, 0) && !Ept4::is_table(0x80000000000005a0ull, 1));
}

HPT_CASE(stage2, EptWithoutAdEnableKeepsBits8And9AsIgnored) {
  const uint64_t raw = 0x8000000000001b37ull;  // RWX WB, bits 8, 9 set, MMU-present
  Entry e = Ept4NoAd::decode(raw, 0);
  HPT_EXPECT_EQ(e.kind, Kind::leaf);
  HPT_EXPECT(!e.accessed && !e.dirty);
  HPT_EXPECT_EQ(e.keep, uint64_t{0x300});
  HPT_EXPECT_EQ(Ept4NoAd::encode(e, 0).value, raw);
  HPT_EXPECT(!Ept4NoAd::ad_caps.hw_accessed && Ept4::ad_caps.hw_dirty);
}

HPT_CASE(stage2, EptMbecSplitsSupervisorAndUserExecute) {
  // XU alone (bit 10) makes the entry present: user-mode fetches only.
  Entry u = Ept4Mbec::decode(0x1430ull, 0);
  HPT_EXPECT_EQ(u.kind, Kind::leaf);
  HPT_EXPECT(u.prot == prot(false, false, false) && u.s2.user_exec);
  // Without MBEC bit 10 is ignored and XU follows X.
  HPT_EXPECT_EQ(Ept4::decode(0x1430ull, 0).kind, Kind::none);
  Entry xs = leaf(0x2000, 12, prot(true, false, true), false);
  HPT_EXPECT(Ept4Mbec::encode(xs, 0).ok());
  HPT_EXPECT(!Ept4::encode(xs, 0).ok());  // no split without MBEC
}

HPT_CASE(stage2, EptpSelectsWalkLengthAndAccessedDirty) {
  HPT_EXPECT_EQ(Ept4::eptp(0x1000), uint64_t{0x105e});  // WB, PWL 3, A/D
  HPT_EXPECT_EQ(Ept5::eptp(0x1000), uint64_t{0x1066});  // WB, PWL 4, A/D
  HPT_EXPECT_EQ(Ept4NoAd::eptp(0x1000), uint64_t{0x101e});
}

HPT_CASE(stage2, EptMemoryTypesMapOneToOne) {
  const struct {
    uint64_t mt;
    MemType m;
  } v[] = {{0, MemType::device}, {1, MemType::noncacheable}, {4, MemType::write_through},
           {5, MemType::write_protect}, {6, MemType::normal}};
  for (auto [mt, m] : v) {
    Entry e = Ept4::decode(0x1001ull | mt << 3, 0);
    HPT_EXPECT_EQ(e.kind, Kind::leaf);
    HPT_EXPECT(e.mem == m);
  }
  Entry e = leaf(0x1000, 12, prot(true, false, false), false);
  e.mem = MemType::device_nGnRE;  // UC- exists only in the PAT
  HPT_EXPECT(!Ept4::encode(e, 0).ok());
}

// ---- NPT (APM vol. 2, "Nested Paging"; KVM's masks for non-EPT TDP) --------------------------

HPT_CASE(stage2, NptKvmLeafIsTheLongModeLayoutWithUs) {
  const uint64_t raw = 0x12345e67ull;  // P RW US A D, host/MMU-writable, MMU-present
  Entry want = leaf(0x12345000, 12, prot(true, true, true), true);
  want.writable = want.s2.host_writable = want.accessed = want.dirty = true;
  HPT_EXPECT(Npt4::decode(raw, 0) == want);
  HPT_EXPECT_EQ(Npt4::encode(want, 0).value, raw);
  Entry big = Npt4::decode(0x80000000400008a5ull, 1);  // 2M, NX, read-only
  HPT_EXPECT_EQ(big.kind, Kind::leaf);
  HPT_EXPECT(big.prot == prot(true, false, false) && !big.s2.user_exec);
  HPT_EXPECT_EQ(Npt4::decode(0x40000885ull, 2).kind, Kind::leaf);  // 1G
}

HPT_CASE(stage2, NptEntriesWithoutUsFaultOnEveryAccess) {
  HPT_EXPECT_EQ(Npt4::decode(0x1003ull, 0).reason, Reason::user_access_required);
  HPT_EXPECT_EQ(Npt4::decode(0x1003ull, 2).reason, Reason::user_access_required);  // table
  HPT_EXPECT_EQ(Npt4::make_table(0x5000, 1), uint64_t{0x5827});  // P RW US A, MMU-present
  HPT_EXPECT_EQ(Npt4::decode(0x5827, 1).kind, Kind::table);
  HPT_EXPECT_EQ(Npt4::decode(0x1087ull, 3).reason, Reason::reserved_large_page);
  HPT_EXPECT_EQ(Npt4::decode(0x402000a5ull, 2).reason, Reason::reserved_bits);  // misaligned 1G
  HPT_EXPECT_EQ(Npt4::decode(0x80000000000005a0ull, 0).kind, Kind::locked);
  Entry no_read = leaf(0x1000, 12, prot(false, false, true), true);
  HPT_EXPECT(!Npt4::encode(no_read, 0).ok());  // x86 cannot deny read
}

// ---- arm64 stage 2 (Arm ARM D8; KVM's kvm_pgtable.h) -----------------------------------------

HPT_CASE(stage2, Arm64GeometryIsKvmsConcatenatedStartLevel) {
  // 40-bit IPA: 4K starts at Arm level 1 with 2 tables; 16K at level 2 with 16; 64K at level 2
  // with one 2048-entry table (16 KiB of a 64 KiB page).
  HPT_EXPECT_EQ(Arm64S2_4K::levels, 3u);
  HPT_EXPECT_EQ(Arm64S2_4K::index_bits(2), 10u);
  HPT_EXPECT_EQ(root_order<Arm64S2_4K>(), 1u);
  HPT_EXPECT_EQ(Arm64S2_4K::vtcr_sl0, 1u);
  HPT_EXPECT_EQ(Arm64S2_4K::vtcr_t0sz, 24u);
  HPT_EXPECT_EQ(Arm64S2_16K::levels, 2u);
  HPT_EXPECT_EQ(Arm64S2_16K::index_bits(1), 15u);
  HPT_EXPECT_EQ(root_order<Arm64S2_16K>(), 4u);
  HPT_EXPECT_EQ(Arm64S2_16K::vtcr_sl0, 1u);
  HPT_EXPECT_EQ(Arm64S2_64K::levels, 2u);
  HPT_EXPECT_EQ(Arm64S2_64K::index_bits(1), 11u);
  HPT_EXPECT_EQ(root_order<Arm64S2_64K>(), 0u);
  HPT_EXPECT_EQ(S2_4K_48::levels, 4u);  // 48-bit IPA: level 0, no concatenation
  HPT_EXPECT_EQ(S2_4K_48::vtcr_sl0, 2u);
  HPT_EXPECT_EQ(S2_16K_48::levels, 3u);  // level 1 with 2 tables
  HPT_EXPECT_EQ(root_order<S2_16K_48>(), 1u);
  // Block sizes: 2M and 1G with 4K, 32M with 16K, 512M with 64K; no larger.
  HPT_EXPECT(Arm64S2_4K::leaf_ok(1) && Arm64S2_4K::leaf_ok(2));
  HPT_EXPECT_EQ(Arm64S2_16K::shift(1), 25u);
  HPT_EXPECT(Arm64S2_16K::leaf_ok(1) && !S2_16K_48::leaf_ok(2));
  HPT_EXPECT_EQ(Arm64S2_64K::shift(1), 29u);
  HPT_EXPECT(!S2_4K_48::leaf_ok(3));
  HPT_EXPECT(Arm64S2_4K::canonical(bit(40) - 1) && !Arm64S2_4K::canonical(bit(40)));
}

// KVM's page for writable RAM: MemAttr Normal WB (1111), S2AP RW, SH inner, AF, XN = 10.
HPT_CASE(stage2, Arm64KvmPageDecodesFieldByField) {
  const uint64_t raw = 0x00400000400017ffull;
  Entry want = leaf(0x40001000, 12, prot(true, true, false), false);
  want.writable = true;
  want.accessed = true;
  HPT_EXPECT(Arm64S2_4K::decode(raw, 0) == want);
  HPT_EXPECT_EQ(Arm64S2_4K::encode(want, 0).value, raw);
}

HPT_CASE(stage2, Arm64XnPairGivesPrivilegedAndUserExecute) {
  // A 2M block, read-only, with each XN[1:0] value (FEAT_XNX).
  const bool el1[] = {true, false, false, true}, el0[] = {true, true, false, false};
  for (uint64_t xn = 0; xn < 4; ++xn) {
    Entry e = Arm64S2_4K::decode(0x4020077dull | xn << 53, 1);
    HPT_EXPECT_EQ(e.kind, Kind::leaf);
    HPT_EXPECT_EQ(e.prot.exec, el1[xn]);
    HPT_EXPECT_EQ(e.s2.user_exec, el0[xn]);
    HPT_EXPECT_EQ(Arm64S2_4K::encode(e, 1).value, 0x4020077dull | xn << 53);
  }
}

HPT_CASE(stage2, Arm64DbmMakesS2apWriteTheDirtyState) {
  const uint64_t base = 0x00400000400017ffull & ~arm64::kS2ApW;  // RO page, AF
  Entry clean = Arm64S2_4K::decode(base | arm64::kDBM, 0);
  HPT_EXPECT(clean.writable && !clean.prot.write && !clean.dirty);
  Entry dirty = Arm64S2_4K::decode(base | arm64::kDBM | arm64::kS2ApW, 0);
  HPT_EXPECT(dirty.writable && dirty.prot.write && dirty.dirty);
  Entry kvm = Arm64S2_4K::decode(base | arm64::kS2ApW, 0);  // KVM's RW leaf, no DBM
  HPT_EXPECT(kvm.writable && kvm.prot.write && !kvm.dirty);
  HPT_EXPECT_EQ(Arm64S2_4K::ad_caps.model, DirtyModel::dbm_s2ap);
  Entry wo = Arm64S2_4K::decode((base & ~arm64::kS2ApR) | arm64::kS2ApW, 0);  // S2AP = 10
  HPT_EXPECT(wo.kind == Kind::leaf && !wo.prot.read && wo.prot.write);  // write-only is legal
}

HPT_CASE(stage2, Arm64MemAttrWithAndWithoutFwb) {
  auto mem_of = [](auto fmt, uint64_t attr, Entry& e) {
    e = decltype(fmt)::decode(0x40001703ull | attr << 2, 0);
    return e.kind;
  };
  Entry e;
  HPT_EXPECT_EQ(mem_of(Arm64S2_4K{}, 0xf, e), Kind::leaf);
  HPT_EXPECT(e.mem == MemType::normal);
  HPT_EXPECT_EQ(mem_of(Arm64S2_4K{}, 0xa, e), Kind::leaf);
  HPT_EXPECT(e.mem == MemType::write_through);
  HPT_EXPECT_EQ(mem_of(Arm64S2_4K{}, 0x5, e), Kind::leaf);
  HPT_EXPECT(e.mem == MemType::noncacheable);
  HPT_EXPECT_EQ(mem_of(Arm64S2_4K{}, 0x1, e), Kind::leaf);
  HPT_EXPECT(e.mem == MemType::device_nGnRE);
  HPT_EXPECT_EQ(mem_of(Arm64S2_4K{}, 0x4, e), Kind::invalid);  // Normal with inner 00
  HPT_EXPECT_EQ(e.reason, Reason::reserved_memory_type);
  HPT_EXPECT_EQ(mem_of(Arm64S2_4K{}, 0x2, e), Kind::invalid);  // Device-nGRE: not nameable
  HPT_EXPECT_EQ(e.reason, Reason::unrepresentable);
  HPT_EXPECT_EQ(mem_of(Arm64S2_4K{}, 0xd, e), Kind::invalid);  // outer WB, inner NC
  // FWB: 110 forces write-back, 101 NC, 0xx device; [3] is ignored (kept); 111 is stage 1's.
  HPT_EXPECT_EQ(mem_of(S2_4K_Fwb{}, 0x6, e), Kind::leaf);
  HPT_EXPECT(e.mem == MemType::normal && e.keep == 0);
  HPT_EXPECT_EQ(mem_of(S2_4K_Fwb{}, 0xe, e), Kind::leaf);
  HPT_EXPECT(e.mem == MemType::normal && e.keep == bit(5));
  HPT_EXPECT_EQ(mem_of(S2_4K_Fwb{}, 0x7, e), Kind::invalid);
  HPT_EXPECT_EQ(mem_of(S2_4K_Fwb{}, 0x4, e), Kind::invalid);
  Entry wt = leaf(0x1000, 12, prot(true, false, false), false);
  wt.mem = MemType::write_through;
  HPT_EXPECT(Arm64S2_4K::encode(wt, 0).ok());
  HPT_EXPECT(!S2_4K_Fwb::encode(wt, 0).ok());  // FWB can only force write-back
}

HPT_CASE(stage2, Arm64LockedAndInvalidDescriptors) {
  Entry l = Arm64S2_4K::decode(arm64::kS2Locked, 1);  // KVM_INVALID_PTE_LOCKED
  HPT_EXPECT_EQ(l.kind, Kind::locked);
  HPT_EXPECT_EQ(l.keep, uint64_t{0});
  Entry locked;
  locked.kind = Kind::locked;
  HPT_EXPECT_EQ(Arm64S2_4K::encode(locked, 0).value, arm64::kS2Locked);
  Entry owner = Arm64S2_4K::decode(0x4ull, 0);  // a pKVM owner annotation: invalid, not locked
  HPT_EXPECT(owner.kind == Kind::none && owner.keep == 4);
  HPT_EXPECT_EQ(Arm64S2_4K::decode(0x40001001ull, 0).reason, Reason::reserved_descriptor);
  HPT_EXPECT_EQ(Arm64S2_16K::decode(0x40000001ull | 0x7c0, 2).kind, Kind::invalid);
  Entry t = Arm64S2_4K::decode(0x50003ull | bit(61), 2);  // table attributes are ignored
  HPT_EXPECT(t.kind == Kind::table && t.addr == 0x50000 && t.keep == bit(61));
}

HPT_CASE(stage2, Arm64BreakBeforeMakeGuardsAddressTypeAttrAndCont) {
  using F = Arm64S2_4K;
  const uint64_t page = 0x00400000400017ffull;
  HPT_EXPECT(!F::needs_bbm(page, page & ~arm64::kS2ApW, 0));       // permissions in place
  HPT_EXPECT(!F::needs_bbm(page, page & ~arm64::kAF, 0));          // AF
  HPT_EXPECT(F::needs_bbm(page, page + 0x1000, 0));                // output address
  HPT_EXPECT(F::needs_bbm(page, page ^ (0xaull << 2), 0));         // MemAttr
  HPT_EXPECT(F::needs_bbm(page, page | arm64::kContiguous, 0));    // Contiguous
  HPT_EXPECT(F::needs_bbm(0x40000701ull, 0x50003ull, 1));          // block -> table
  HPT_EXPECT(!F::needs_bbm(0, page, 0));                           // from invalid
}

// ---- riscv G-stage (privileged spec, "Two-Stage Address Translation") ---------------------

HPT_CASE(stage2, GstageRootIsFourPagesAndTwoMoreGpaBits) {
  HPT_EXPECT_EQ(Sv39x4::va_bits, 41u);
  HPT_EXPECT_EQ(Sv48x4::va_bits, 50u);
  HPT_EXPECT_EQ(Sv57x4::va_bits, 59u);
  HPT_EXPECT_EQ(Sv39x4::index_bits(2), 11u);
  HPT_EXPECT_EQ(Sv39x4::index_bits(1), 9u);
  HPT_EXPECT_EQ(root_order<Sv39x4>(), 2u);
  HPT_EXPECT_EQ(Sv39x4::hgatp_mode, uint64_t{8});
  HPT_EXPECT_EQ(Sv57x4::hgatp_mode, uint64_t{10});
  HPT_EXPECT(Sv39x4::canonical(bit(41) - 1) && !Sv39x4::canonical(bit(41)));
  HPT_EXPECT(!Sv39x4::canonical(~uint64_t{0}));  // GPAs are zero-extended
}

HPT_CASE(stage2, GstageLeavesNeedU) {
  const uint64_t raw = 0x200800dfull;  // V R W X U A D, PPN 0x80200
  Entry want = leaf(0x80200000, 12, prot(true, true, true), true);
  want.writable = want.accessed = want.dirty = true;
  HPT_EXPECT(Sv39x4::decode(raw, 0) == want);
  HPT_EXPECT_EQ(Sv39x4::encode(want, 0).value, raw);
  HPT_EXPECT_EQ(Sv39x4::decode(raw & ~riscv::kU, 0).reason, Reason::user_access_required);
  HPT_EXPECT_EQ(Sv39x4::decode(raw & ~riscv::kU, 2).reason, Reason::misaligned_output);
  // A pointer to the next level: V only; U, A, D there are reserved.
  HPT_EXPECT_EQ(Sv39x4::decode(0x20080001ull, 2).kind, Kind::table);
  HPT_EXPECT_EQ(Sv39x4::decode(0x20080011ull, 2).reason, Reason::reserved_bits);
  HPT_EXPECT_EQ(Sv39x4::make_table(0x80200000, 1), uint64_t{0x20080001});
  // G is not used at the G-stage: kept.
  HPT_EXPECT_EQ(Sv39x4::decode(raw | riscv::kG, 0).keep, riscv::kG);
  // V=0 is a guest-page fault, never a swap entry or PROT_NONE.
  Entry n = Sv39x4::decode(0x1234ull << 10, 0);
  HPT_EXPECT(n.kind == Kind::none && n.keep == 0x1234ull << 10);
}

HPT_CASE(stage2, GstageNapotAndPbmt) {
  const uint64_t napot = riscv::kN | (0x80218ull << 10) | 0xdf;  // 64 KiB at 0x80210000
  Entry e = Sv39x4::decode(napot, 0);
  HPT_EXPECT(e.kind == Kind::leaf && e.cont_shift == 16 && e.addr == 0x80210000);
  HPT_EXPECT_EQ(Sv39x4NoExt::decode(napot, 0).reason, Reason::extension_absent);
  const uint64_t io = (uint64_t{2} << 61) | 0x200800d3ull;  // PBMT IO, R U A D
  HPT_EXPECT(Sv39x4::decode(io, 0).mem == MemType::device);
  HPT_EXPECT_EQ(Sv39x4::decode(io | bit(61), 0).reason, Reason::reserved_memory_type);
}

// ---- properties of every stage-2 format -------------------------------------------------------

namespace {

// Raw values near interesting ones: a valid leaf or table of the format with up to three bits
// flipped, or anything at all.
template <class F>
uint64_t near_raw(hpt::Rng& rng, unsigned level) {
  uint64_t raw = rng.next();
  switch (rng.below(4)) {
    case 0: break;
    case 1:
      if (level > 0) {
        raw = F::make_table(rng.next() & mask(F::page_shift, F::pa_bits - 1), level);
        break;
      }
      [[fallthrough]];
    default: {
      if (!F::leaf_ok(level)) break;
      Entry e = leaf(rng.next() & mask(F::shift(level), F::pa_bits - 1), F::shift(level),
                     prot(true, rng.below(2) == 1, rng.below(2) == 1), false);
      e.s2.user_exec = e.prot.exec;
      e.writable = e.prot.write;
      Result<uint64_t> r = F::encode(e, level);
      if (r) raw = r.value;
      for (uint64_t k = rng.below(4); k > 0; --k) raw ^= bit(static_cast<unsigned>(rng.below(64)));
    }
  }
  return raw;
}

}  // namespace

// decode(raw) then encode gives raw back for every raw that decodes to a kind other than
// invalid: nothing is lost, including the bits the vocabulary does not model.
HPT_FORMAT_CASE(stage2, EveryDecodableRawEncodesBackToItself, Stage2Formats) {
  using F = Fmt;
  hpt::Rng rng{0x52000 + F::levels};
  unsigned decoded = 0;
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned n = 0; n < 2500; ++n) {
      const uint64_t raw = near_raw<F>(rng, level);
      const Entry e = F::decode(raw, level);
      if (e.kind == Kind::invalid) {
        HPT_EXPECT(e.reason != Reason::none);
        continue;
      }
      ++decoded;
      Result<uint64_t> back = F::encode(e, level);
      if (!HPT_EXPECT(back.ok() && back.value == raw)) return;
    }
  }
  HPT_EXPECT(decoded > 1200);
}

// The hot-path predicates agree with decode, and a stage-2 format never produces a stage-1
// kind (PROT_NONE, swap, marker).
HPT_FORMAT_CASE(stage2, PredicatesAgreeWithDecodeAndNoStage1Kinds, Stage2Formats) {
  using F = Fmt;
  static_assert(stage_of<F>() == 2);
  hpt::Rng rng{0x52100 + F::levels};
  for (unsigned level = 0; level < F::levels; ++level) {
    for (unsigned n = 0; n < 2500; ++n) {
      const uint64_t raw = near_raw<F>(rng, level);
      const Entry e = F::decode(raw, level);
      HPT_EXPECT(e.kind != Kind::protnone && e.kind != Kind::swap && e.kind != Kind::marker);
      HPT_EXPECT_EQ(F::is_table(raw, level), e.kind == Kind::table);
      HPT_EXPECT_EQ(F::is_leaf(raw, level), e.kind == Kind::leaf);
      HPT_EXPECT_EQ(is_locked<F>(raw), e.kind == Kind::locked);
      if (e.kind == Kind::table || e.kind == Kind::leaf) HPT_EXPECT_EQ(F::out_addr(raw, level), e.addr);
      if (e.kind == Kind::leaf) {
        HPT_EXPECT(!e.prot.user && !e.global);
        // The level's size, or a NAPOT group's where every sub-entry holds the group's base.
        const unsigned ls = F::leaf_shift(raw, level);
        HPT_EXPECT(ls == F::shift(level) || (e.cont_shift != 0 && ls == e.cont_shift));
      }
    }
  }
}

// Random leaves that encode decode back to themselves; stage-1 kinds are refused.
HPT_FORMAT_CASE(stage2, EncodedLeavesDecodeBackAndStage1KindsAreRefused, Stage2Formats) {
  using F = Fmt;
  hpt::Rng rng{0x52200 + F::levels};
  unsigned accepted = 0;
  for (unsigned level = 0; level < F::levels; ++level) {
    if (!F::leaf_ok(level)) continue;
    for (unsigned n = 0; n < 1500; ++n) {
      Entry e = leaf(0, F::shift(level), Prot{rng.below(4) != 0, rng.below(2) == 1,
                                             rng.below(2) == 1, false},
                     false);
      e.s2.user_exec = rng.below(4) == 0 ? !e.prot.exec : e.prot.exec;
      e.writable = rng.below(4) == 0 ? !e.prot.write : e.prot.write;
      e.s2.host_writable = rng.below(3) == 0;
      e.s2.ignore_pat = rng.below(3) == 0;
      e.mem = static_cast<MemType>(rng.below(7));
      e.accessed = rng.below(2) == 1;
      e.dirty = rng.below(2) == 1;
      if (F::cont_shift(level) && rng.below(3) == 0)
        e.cont_shift = static_cast<uint8_t>(F::cont_shift(level));
      const unsigned size = e.cont_shift ? e.cont_shift : F::shift(level);
      e.addr = rng.next() & mask(size, F::pa_bits - 1);
      Result<uint64_t> raw = F::encode(e, level);
      if (!raw) continue;
      ++accepted;
      Entry d = F::decode(raw.value, level);
      if (!HPT_EXPECT(d == e)) return;
      const Kind stage1_kinds[] = {Kind::protnone, Kind::swap, Kind::marker, Kind::invalid};
      for (Kind k : stage1_kinds) {
        Entry s = e;
        s.kind = k;
        HPT_EXPECT(!F::encode(s, level).ok());
      }
      Entry stage1 = e;
      stage1.prot.user = true;
      HPT_EXPECT(!F::encode(stage1, level).ok());
    }
  }
  HPT_EXPECT(accepted > 100);
}

// A stage-1 format refuses stage-2 attributes: they would be lost.
HPT_CASE(stage2, Stage1FormatsRefuseStage2Attributes) {
  Entry e = leaf(0x1000, 12, prot(true, true, false), false);
  e.writable = true;
  e.accessed = true;
  e.dirty = true;
  HPT_EXPECT(X86_4Level::encode(e, 0).ok() && Arm64_4K_48::encode(e, 0).ok() &&
             Sv39::encode(e, 0).ok());
  e.s2.ignore_pat = true;
  HPT_EXPECT(!X86_4Level::encode(e, 0).ok());
  HPT_EXPECT(!Arm64_4K_48::encode(e, 0).ok());
  HPT_EXPECT(!Sv39::encode(e, 0).ok());
  HPT_EXPECT_EQ(stage_of<X86_4Level>(), 1u);
}
