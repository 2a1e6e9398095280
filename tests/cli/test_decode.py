#!/usr/bin/env python3
"""test_decode.py HUGEPTE_BINARY - `hugepte decode` against vectors computed by hand from the manuals.

Each vector gives the arithmetic behind it. A failing vector prints the command and the mismatch.
Closes with "N passed, M failed"; exit status 1 on any failure.
"""
import json
import subprocess
import sys

BIN = sys.argv[1]

# (arch, mode, level, value, expected subset of the JSON), arithmetic in the comment.
VECTORS = [
    # x86-64, Intel SDM vol. 3 §4.5 (tables 4-15..4-20)
    # 0x8000000012345067: P(0) RW(1) US(2) A(5) D(6), bit 7 (PAT) 0, addr bits 12..51 = 0x12345000, XD(63)=1.
    ("x86_64", "4level", "pte", 0x8000000012345067,
     dict(kind="leaf", output_address="0x12345000", shift=12, read=True, write=True, user=True, exec=False,
          accessed=True, dirty=True, **{"global": False}, memory_type="normal")),
    # 0xe3 = P RW A D PS: a 2 MiB page at 0x40000000 (bits 21..51), executable (XD=0), supervisor.
    ("x86_64", "4level", "pmd", 0x00000000400000e3,
     dict(kind="leaf", output_address="0x40000000", shift=21, write=True, user=False, exec=True, dirty=True)),
    # 0x83 = P RW PS at the PDPT: a 1 GiB page at 0xc0000000, A=0.
    ("x86_64", "4level", "pud", 0x00000000c0000083,
     dict(kind="leaf", output_address="0xc0000000", shift=30, accessed=False)),
    # PS=1 at the PD with bit 20 set: bits 13..20 of a 2 MiB PDE are reserved -> not a translation.
    ("x86_64", "4level", "pmd", 0x0000000040100083, dict(kind="invalid")),
    # PS=1 in a PML4E is reserved.
    ("x86_64", "4level", "pgd", 0x0000000000001083, dict(kind="invalid")),
    # 0x27 = P RW US A without PS at the PD: points to the page table at 0x123000.
    ("x86_64", "4level", "pmd", 0x0000000000123027, dict(kind="table", output_address="0x123000")),
    # Only A (5) and D (6) set: Linux pte_none ignores them (Knights Landing erratum).
    ("x86_64", "4level", "pte", 0x60, dict(kind="none")),
    # P=0 with bit 8 (_PAGE_PROTNONE) and A: Linux PAGE_NONE. Linux stores a PROT_NONE frame
    # bit-inverted over bits 12..51 (L1TF): ~0x12345000 & 0x000ffffffffff000 = 0x000fffffedcba000.
    ("x86_64", "4level", "pte", 0x000fffffedcba120, dict(kind="protnone", output_address="0x12345000")),
    # PWT(3)=1 PCD(4)=1 PAT(7)=0: PAT index 3, which Linux programs as UC.
    ("x86_64", "4level", "pte", 0x000000001234501b, dict(kind="leaf", memory_type="device")),
    # 5-level: the PML5 is the root; PS there is reserved too.
    ("x86_64", "5level", "pgd", 0x0000000000001083, dict(kind="invalid")),
    ("x86_64", "5level", "p4d", 0x0000000000200027, dict(kind="table", output_address="0x200000", shift=39)),
    # arm64, Arm ARM D8.3 (VMSAv8-64 descriptors), Linux MAIR: AttrIndx 0 = Normal WB, 3 = Device-nGnRnE.
    # 0xf03: bits[1:0]=11 page, AttrIndx[4:2]=000, SH[9:8]=11, AF(10), nG(11); UXN(54); AP[2:1]=00 (EL1 RW).
    ("arm64", "4k-48", "pte", 0x0040000040000f03,
     dict(kind="leaf", output_address="0x40000000", shift=12, read=True, write=True, user=False, accessed=True,
          **{"global": False}, memory_type="normal")),
    # 0x40d: bits[1:0]=01 at level 2 (4K granule): a 2 MiB block at 0x40000000, AttrIndx[4:2]=011 (0xc)
    # = Device-nGnRnE, AF(10).
    ("arm64", "4k-48", "pmd", 0x000000004000040d,
     dict(kind="leaf", output_address="0x40000000", shift=21, memory_type="device")),
    # bits[1:0]=01 at level 3 is a reserved descriptor (the block above, one level down).
    ("arm64", "4k-48", "pte", 0x000000004000040d, dict(kind="invalid")),
    # bits[1:0]=01 at level 0 (4K granule): no blocks there.
    ("arm64", "4k-48", "pgd", 0x0000000000000401, dict(kind="invalid")),
    # Contiguous bit (52) on a 4K page: one of 16 entries mapping 64 KiB (log2 16).
    ("arm64", "4k-48", "pte", 0x0050000040000f03, dict(kind="leaf", contiguous_shift=16)),
    # 16K granule: a level-2 block maps 32 MiB (shift 25); 0x2000000 is 32 MiB aligned.
    ("arm64", "16k-47", "pmd", 0x0000000002000401, dict(kind="leaf", output_address="0x2000000", shift=25)),
    # 64K granule, 42-bit VA: two levels; a level-2 block (our pmd = root) maps 512 MiB (shift 29).
    ("arm64", "64k-42", "pgd", 0x0000000020000401, dict(kind="leaf", output_address="0x20000000", shift=29)),
    # riscv, privileged spec §Sv39: PPN at bits 10..53.
    # 0x200000cf: V R W X A D (0xcf); PPN = 0x200000cf >> 10 = 0x80000 -> 0x80000000.
    ("riscv64", "sv39", "pte", 0x200000cf,
     dict(kind="leaf", output_address="0x80000000", shift=12, read=True, write=True, exec=True, accessed=True,
          dirty=True)),
    # The same value one level up is a 2 MiB megapage (PPN[0] = 0).
    ("riscv64", "sv39", "pmd", 0x200000cf, dict(kind="leaf", output_address="0x80000000", shift=21)),
    # PPN = 0x80001: PPN[0] != 0 in a megapage -> misaligned superpage.
    ("riscv64", "sv39", "pmd", 0x200004cf, dict(kind="invalid")),
    # V|W without R is reserved.
    ("riscv64", "sv39", "pte", 0x5, dict(kind="invalid")),
    # V with R=W=X=0 at the root: a pointer to the next table at 0x80000000.
    ("riscv64", "sv39", "pgd", 0x20000001, dict(kind="table", output_address="0x80000000")),
    # Svnapot: N (63) with PPN[3:0]=1000b: PPN 0x80008 -> 64 KiB group based at 0x80000000.
    ("riscv64", "sv39", "pte", 0x80000000200020cf,
     dict(kind="leaf", output_address="0x80000000", contiguous_shift=16)),
    # Svpbmt: PBMT(62:61)=10 IO.
    ("riscv64", "sv48", "pte", 0x40000000200000cf, dict(kind="leaf", memory_type="device")),
    # --- stage 2 (the secondary MMU) ---
    # EPT (SDM vol. 3C, EPT entries): KVM's 4K SPTE for writable RAM. 0x77 = R W X, memory type
    # 6 (WB, bits 5:3), IPAT (6); 0xb00 = A (8) D (9) and KVM's MMU-present (11); bits 57/58 =
    # KVM's host-/MMU-writable; 63 = suppress #VE.
    ("x86_64", "ept4", "pte", 0x8600000012345b77,
     dict(stage=2, kind="leaf", output_address="0x12345000", read=True, write=True, exec=True, user=False,
          user_exec=True, ignore_pat=True, host_writable=True, writable=True, accessed=True, dirty=True,
          memory_type="normal", other_bits="0x0")),
    # 0xb5 = bit 7 (large) | WB | R X at the PDE: a 2 MiB read/execute leaf at 0x40000000.
    ("x86_64", "ept4", "pmd", 0x80000000400008b5,
     dict(kind="leaf", output_address="0x40000000", shift=21, write=False, exec=True, writable=False)),
    # W without R is an EPT misconfiguration; so is memory type 2 (0x1007 | 2 << 3).
    ("x86_64", "ept4", "pte", 0x1002, dict(kind="invalid", reason="write without read is reserved")),
    ("x86_64", "ept4", "pte", 0x1017, dict(kind="invalid", reason="reserved memory type")),
    # KVM's FROZEN_SPTE (SHADOW_NONPRESENT_VALUE | 0x5a0) and SHADOW_NONPRESENT_VALUE alone.
    ("x86_64", "ept4", "pte", 0x80000000000005a0, dict(kind="locked", output_address=None)),
    ("x86_64", "ept4", "pte", 0x8000000000000000, dict(kind="none", other_bits="0x8000000000000000")),
    # EPT 5-level: bit 7 in a PML5E is a misconfiguration; a PML4E (p4d) points to a table.
    ("x86_64", "ept5", "pgd", 0x1087, dict(kind="invalid")),
    ("x86_64", "ept5", "p4d", 0x8000000000200907, dict(kind="table", output_address="0x200000", shift=39,
                                                      accessed=True, user_exec=True)),
    # NPT (APM vol. 2): the long-mode layout; 0x67 = P RW US A D, 0xe00 = KVM's host-writable
    # (9), MMU-writable (10), MMU-present (11).
    ("x86_64", "npt4", "pte", 0x12345e67,
     dict(stage=2, kind="leaf", output_address="0x12345000", write=True, exec=True, user=False,
          writable=True, host_writable=True, ignore_pat=False, memory_type="normal")),
    # US=0: every nested access is a user access, so this faults on each one.
    ("x86_64", "npt4", "pte", 0x1003,
     dict(kind="invalid", reason="U clear where every stage-2 access is a user access")),
    # KVM's table on NPT (P RW US A, MMU-present) at the 5-level root.
    ("x86_64", "npt5", "pgd", 0x5827, dict(kind="table", output_address="0x5000", shift=48)),
    # arm64 stage 2 (Arm ARM D8), 40-bit IPA. KVM's RAM page: 0x7ff = page (11), MemAttr 1111
    # (Normal WB, bits 5:2), S2AP RW (7:6), SH inner (9:8), AF (10); XN[1:0] = 10 (bit 54).
    ("arm64", "s2-4k", "pte", 0x00400000400017ff,
     dict(stage=2, kind="leaf", output_address="0x40001000", read=True, write=True, exec=False,
          user_exec=False, writable=True, dirty=False, accessed=True, memory_type="normal")),
    # 0x77d = block (01) | MemAttr 1111 | S2AP R | SH inner | AF, XN 00: 2 MiB at 0x40200000.
    ("arm64", "s2-4k", "pmd", 0x4020077d,
     dict(kind="leaf", output_address="0x40200000", shift=21, write=False, exec=True, user_exec=True)),
    # The same block bits at the root of a 40-bit IPA (Arm level 1, two concatenated tables): 1 GiB.
    ("arm64", "s2-4k", "pgd", 0x4000077d, dict(kind="leaf", output_address="0x40000000", shift=30)),
    # XN[1:0] = 01 (bit 53): EL0 may execute, EL1 may not (FEAT_XNX).
    ("arm64", "s2-4k", "pmd", 0x002000004020077d, dict(kind="leaf", exec=False, user_exec=True)),
    # DBM (51) with S2AP[1] clear: writable and clean; the walker sets S2AP[1] on a write (VTCR.HD).
    ("arm64", "s2-4k", "pte", 0x004800004000177f, dict(kind="leaf", write=False, writable=True, dirty=False)),
    # KVM_INVALID_PTE_LOCKED: bit 10 with the valid bit clear.
    ("arm64", "s2-4k", "pte", 0x400, dict(kind="locked")),
    # 16K granule: the root is Arm level 2 (16 concatenated tables); a block there maps 32 MiB.
    ("arm64", "s2-16k", "pgd", 0x200077d, dict(kind="leaf", output_address="0x2000000", shift=25)),
    # 64K granule: a root block maps 512 MiB.
    ("arm64", "s2-64k", "pgd", 0x2000077d, dict(kind="leaf", output_address="0x20000000", shift=29)),
    # MemAttr 0110 (0x18 in bits 5:2): FWB's "force Normal write-back"; without FWB it is outer
    # non-cacheable, inner write-through, a mix KVM never writes.
    ("arm64", "s2-4k-fwb", "pte", 0x4000171b, dict(kind="leaf", memory_type="normal")),
    ("arm64", "s2-4k", "pte", 0x4000171b, dict(kind="invalid", reason="not representable in this format")),
    # riscv G-stage (privileged spec, H extension): 0xdf = V R W X U A D; PPN 0x80200.
    ("riscv64", "sv39x4", "pte", 0x200800df,
     dict(stage=2, kind="leaf", output_address="0x80200000", user=False, user_exec=True, writable=True)),
    # U clear: G-stage accesses are all U-mode accesses.
    ("riscv64", "sv39x4", "pte", 0x200800cf,
     dict(kind="invalid", reason="U clear where every stage-2 access is a user access")),
    # V only at the 16 KiB root (level 2): a pointer to the next table.
    ("riscv64", "sv39x4", "pgd", 0x20080001, dict(kind="table", output_address="0x80200000", shift=30)),
    # Sv48x4 root leaf: 512 GiB at 0x8000000000 (PPN 0x8000000).
    ("riscv64", "sv48x4", "pgd", 0x20000000df, dict(kind="leaf", output_address="0x8000000000", shift=39)),
    # Sv57x4 NAPOT: N (63), PPN[3:0] = 1000: a 64 KiB group at 0x80210000.
    ("riscv64", "sv57x4", "pte", 0x80000000200860df,
     dict(kind="leaf", output_address="0x80210000", contiguous_shift=16)),
]

# Entries as Linux 6.1 (Debian 12) writes them, decoded with --profile linux-6.1 and with the
# default (upstream) profile: (arch, level, value, expected under linux-6.1, expected under
# upstream). Facts: arch/x86/include/asm/pgtable_types.h, arch/arm64/include/asm/pgtable-prot.h
# and pgtable.h, arch/riscv/include/asm/pgtable.h and pgtable-bits.h, include/linux/swap.h, all
# of v6.1.
X86_SWP_OFFSET = lambda off: ((~off) & ((1 << 50) - 1)) << 9  # offset bits 9..58, inverted (L1TF)
PROFILE_VECTORS = [
    # arm64 PAGE_NONE for the page at 0x80000000: (_PAGE_DEFAULT & ~PTE_VALID) | PTE_PROT_NONE(58)
    # | PTE_RDONLY(7) | PTE_NG(11) | PTE_PXN(53) | PTE_UXN(54): 0x80000000 | 0x2 | AF 0x400 |
    # SH 0x300 | 0x80 | 0x800 | 1<<53 | 1<<54 | 1<<58. Upstream reads bit 58 as uffd-wp.
    ("arm64", "pte", 0x0460000080000f82,
     dict(kind="protnone", output_address="0x80000000", software=dict(special=False, soft_dirty=False, uffd_wp=False)),
     dict(kind="protnone", software=dict(special=False, soft_dirty=False, uffd_wp=True))),
    # arm64 hwpoison entry of pfn 0x80000: 6.1 type 23 (MAX_SWAPFILES) in bits 3-7 = 0xb8, offset
    # in bits 8-57 = 0x80000 << 8. Upstream's layout (type 6-10, offset 12-61) cannot read it.
    ("arm64", "pte", (23 << 3) | (0x80000 << 8),
     dict(kind="swap", swap=dict(type=24, type_name="hwpoison", offset="0x80000", exclusive=False,
                                 soft_dirty=False, uffd_wp=False)),
     dict(kind="invalid")),  # bits 4-5 are no field of upstream's swap layout
    # arm64 swapin-error marker (6.1's PTE_MARKER_SWAPIN_ERROR, bit 1): type 31 in bits 3-7, flags 2.
    ("arm64", "pte", (31 << 3) | (2 << 8),
     dict(kind="marker", marker=dict(uffd_wp=False, poisoned=True, guard=False)), dict()),
    # A valid page with bit 57 (6.1 PTE_DEVMAP): 0x0040000040000f03 | 1<<57.
    ("arm64", "pte", 0x0240000040000f03, dict(kind="leaf", devmap=True, other_bits="0x0"),
     dict(kind="leaf", devmap=None, other_bits="0x200000000000000")),
    # A valid page with bit 58, which 6.1 never sets: no uffd-wp then, an unknown bit.
    ("arm64", "pte", 0x0440000040000f03,
     dict(kind="leaf", other_bits="0x400000000000000", software=dict(special=False, soft_dirty=False, uffd_wp=False)),
     dict(kind="leaf", software=dict(special=False, soft_dirty=False, uffd_wp=True))),
    # pmd_mkinvalid of the 2 MiB block 0x40000401 in 6.1: valid cleared, PMD_PRESENT_INVALID (59) set.
    ("arm64", "pmd", 0x0800000040000400, dict(kind="protnone", output_address="0x40000000", shift=21), dict()),
    # x86 read-only dirty page, P US A D without RW: 6.1 (no shadow stacks) keeps D there.
    ("x86_64", "pte", 0x8000000012345065, dict(kind="leaf", writable=False, write=False, dirty=True),
     dict(kind="leaf", writable=True, write=False, dirty=True)),
    # x86 read-only clean page with bit 58, 6.1's _PAGE_DEVMAP (upstream: _PAGE_SAVED_DIRTY).
    ("x86_64", "pte", 0x8400000012345025, dict(kind="leaf", devmap=True, dirty=False),
     dict(kind="leaf", devmap=None, dirty=True)),
    # riscv hwpoison entry of pfn 0x80000: 6.1 type 23 (MAX_SWAPFILES) in bits 6-10, offset in
    # 11-63, no exclusive bit. Upstream (since 6.3: exclusive 6, type 7-11, offset 12-63) reads
    # another type, half the offset and an exclusive bit.
    ("riscv64", "pte", (23 << 6) | (0x80000 << 11),
     dict(kind="swap", swap=dict(type=24, type_name="hwpoison", offset="0x80000", exclusive=False,
                                 soft_dirty=False, uffd_wp=False)),
     dict(kind="swap", swap=dict(type=11, type_name="swap", offset="0x40000", exclusive=True,
                                 soft_dirty=False, uffd_wp=False))),
    # riscv 6.1 migration-write entry of pfn 0x1234 (type 26, upstream's 27).
    ("riscv64", "pte", (26 << 6) | (0x1234 << 11),
     dict(kind="swap", swap=dict(type=27, type_name="migration-write", offset="0x1234",
                                 exclusive=False, soft_dirty=False, uffd_wp=False)),
     dict(kind="swap")),
    # riscv PAGE_NONE of the page at 0x80000000 (PROT_NONE is G with V clear in 6.1 too): the
    # same under both profiles, and 6.1 has no devmap bit.
    ("riscv64", "pte", 0x20000062,
     dict(kind="protnone", output_address="0x80000000", devmap=False),
     dict(kind="protnone", output_address="0x80000000", devmap=None)),
    # x86 hwpoison entry of pfn 0x12345: 6.1 type 23 in bits 59-63.
    ("x86_64", "pte", (23 << 59) | X86_SWP_OFFSET(0x12345),
     dict(kind="swap", swap=dict(type=24, type_name="hwpoison", offset="0x12345", exclusive=False,
                                 soft_dirty=False, uffd_wp=False)),
     dict(kind="swap", swap=dict(type=23, type_name="swap", offset="0x12345", exclusive=False,
                                 soft_dirty=False, uffd_wp=False))),
]

# Kernel entries made not present (--space kernel): set_memory_np on x86 clears P and G
# (arch/x86/mm/pat/set_memory.c, pgprot_clear_protnone_bits), set_memory_valid(0) on arm64 and
# set_direct_map_invalid_noflush on riscv clear the valid bit; the frame and the attributes stay.
# (arch, level, value, expected with --space kernel, expected kind with the default --space user)
KERNEL_VECTORS = [
    # x86 PAGE_KERNEL (P RW A D G NX) for pfn 0x12345, then P and G cleared.
    ("x86_64", "pte", 0x8000000012345062,
     dict(kind="not_present", output_address="0x12345000", write=True, user=False, exec=False,
          global_=False, dirty=True), "swap"),
    # arm64 PAGE_KERNEL (page, AF, SH inner, PXN, UXN, DBM) for 0x40000000, valid bit cleared.
    ("arm64", "pte", 0x0068000040000702,
     dict(kind="not_present", output_address="0x40000000", user=False, exec=False, writable=True),
     None),
    # riscv PAGE_KERNEL (V R W A D G) for 0x80000000, V cleared: user space reads PROT_NONE.
    ("riscv64", "pte", 0x200000e6,
     dict(kind="not_present", output_address="0x80000000", write=True, global_=True), "protnone"),
    # A present kernel entry is what it is, and an empty one is none.
    ("x86_64", "pte", 0x8000000012345163, dict(kind="leaf", output_address="0x12345000"), "leaf"),
    ("arm64", "pte", 0x0, dict(kind="none"), "none"),
]

# (arguments, substring expected on stderr) for bad input: exit 2 and one line.
ERRORS = [
    (["--arch", "sparc", "--level", "pte", "0x1"], "unknown arch"),
    (["--arch", "x86_64", "--space", "hypervisor", "--level", "pte", "0x1"], "unknown space"),
    (["--arch", "x86_64", "--mode", "6level", "--level", "pte", "0x1"], "unknown mode"),
    (["--arch", "riscv64", "--mode", "sv39", "--level", "p4d", "0x1"], "does not exist"),
    (["--arch", "x86_64", "--level", "pte", "0xZZ"], "bad value"),
    (["--arch", "x86_64", "--level", "pte"], "no entry value"),
    (["--arch", "x86_64", "--level", "pte", "--frobnicate", "0x1"], "unknown option"),
    (["--arch", "x86_64", "0x1"], "--level is required"),
    (["--arch", "x86_64", "--level", "pte", "0x10000000000000000"], "bad value"),
    (["--arch", "x86_64", "--profile", "linux-5.10", "--level", "pte", "0x1"], "unknown profile"),
    (["--arch", "x86_64", "--mode", "ept4", "--space", "kernel", "--level", "pte", "0x1"], "stage-2 mode"),
    (["--arch", "arm64", "--mode", "s2-4k", "--profile", "linux-6.1", "--level", "pte", "0x1"], "stage-2 mode"),
    (["--arch", "arm64", "--mode", "s2-16k", "--level", "pud", "0x1"], "does not exist"),
]


def decode_problems(cmd, want):
    """Runs one decode --json; the ways its answer differs from `want` (empty: none)."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return ["exit %d: %s" % (r.returncode, r.stderr.strip())]
    got = json.loads(r.stdout)
    problems = ["%s: got %r, want %r" % (k, got.get(k), v) for k, v in want.items() if got.get(k) != v]
    if got["kind"] == "invalid" and not got["reason"]:
        problems.append("invalid without a reason")
    return problems


def main():
    passed = failed = 0
    checks = [([BIN, "decode", "--arch", arch, "--mode", mode, "--level", level, "--json", hex(value)], want)
              for arch, mode, level, value, want in VECTORS]
    for arch, level, value, want61, want_up in PROFILE_VECTORS:
        for profile, want in (("linux-6.1", want61), ("upstream", want_up)):
            checks.append(([BIN, "decode", "--arch", arch, "--profile", profile, "--level", level, "--json",
                            hex(value)], dict(want, profile=profile)))
    for arch, level, value, want_kernel, user_kind in KERNEL_VECTORS:
        want = {("global" if k == "global_" else k): v for k, v in want_kernel.items()}
        checks.append(([BIN, "decode", "--arch", arch, "--space", "kernel", "--level", level, "--json",
                        hex(value)], dict(want, space="kernel")))
        if user_kind is not None:
            checks.append(([BIN, "decode", "--arch", arch, "--level", level, "--json", hex(value)],
                           dict(kind=user_kind, space="user")))
    for cmd, want in checks:
        problems = decode_problems(cmd, want)
        if problems:
            failed += 1
            print("FAIL", " ".join(cmd[1:]))
            for p in problems:
                print("    " + p)
        else:
            passed += 1
    for args, needle in ERRORS:
        r = subprocess.run([BIN, "decode"] + args, capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        if r.returncode != 2 or len(lines) != 1 or needle not in lines[0] or r.stdout:
            failed += 1
            print("FAIL (error case)", args, "->", r.returncode, r.stderr.strip())
        else:
            passed += 1
    r = subprocess.run([BIN, "decode", "--help"], capture_output=True, text=True)
    if r.returncode == 0 and "--level" in r.stdout and "--json" in r.stdout:
        passed += 1
    else:
        failed += 1
        print("FAIL --help")
    # The table form carries the same facts for a reader.
    r = subprocess.run([BIN, "decode", "--arch", "x86_64", "--level", "pmd", "0xe3"], capture_output=True, text=True)
    if r.returncode == 0 and "leaf" in r.stdout and "output address" in r.stdout:
        passed += 1
    else:
        failed += 1
        print("FAIL table output:", r.stdout, r.stderr)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
