// start.S - arm64 bare-metal entry, exception vectors, probes and the semihosting trap.
//
// QEMU's -kernel loads the ELF and jumps to _start with the MMU off, normally at EL1 (at EL2 with
// -M virt,virtualization=on, which we leave for EL1). Everything here runs before C++ or below it:
// C++ cannot save the full register file on exception entry, nor name the exact instruction a
// probe faults on. No page tables are built here: the MMU stays off until platform.cpp has built
// the boot map with the library, in C++.

#define FRAME_SIZE   (34 * 8)   // x0-x30, ELR_EL1, SPSR_EL1, interrupted SP (Frame, platform.cpp)
#define SPSR_EL1H_MASKED 0x3c5  // EL1 using SP_EL1, D/A/I/F masked

    .section .text.boot, "ax"
    .global _start
_start:
    msr     daifset, #0xf
    mrs     x19, CurrentEL
    ubfx    x19, x19, #2, #2        // x19 = entry EL, kept for C++
    cmp     x19, #1
    b.eq    in_el1
    cmp     x19, #2
    b.ne    bad_el

    // EL2 -> EL1: EL1 is AArch64 (HCR_EL2.RW) and nothing traps to EL2; EL1 timers usable.
    mov     x9, #(1 << 31)
    msr     hcr_el2, x9
    mov     x9, #3
    msr     cnthctl_el2, x9
    msr     cntvoff_el2, xzr
    ldr     x9, =0x30d00800         // SCTLR_EL1 RES1 bits, MMU and caches off, little endian
    msr     sctlr_el1, x9
    mov     x9, #SPSR_EL1H_MASKED
    msr     spsr_el2, x9
    adr     x9, in_el1
    msr     elr_el2, x9
    isb
    eret

bad_el:
    // EL3 (or something stranger): we cannot print yet, so leave QEMU with status 103.
    adrp    x1, bad_el_block        // in .rodata, which may lie beyond ADR's +-1 MiB
    add     x1, x1, :lo12:bad_el_block
    mov     x0, #0x18               // SYS_EXIT
    hlt     #0xf000
1:  wfe
    b       1b

in_el1:
    ldr     x9, =__stack_top
    mov     sp, x9
    ldr     x9, =hpt_arm64_vectors
    msr     vbar_el1, x9
    msr     cpacr_el1, xzr          // FP/SIMD traps: the image is built -mgeneral-regs-only
    isb

    // Zero .bss (it holds the stack, which is not in use yet). Bounds are 16-byte aligned.
    ldr     x9, =__bss_start
    ldr     x10, =__bss_end
1:  cmp     x9, x10
    b.hs    2f
    stp     xzr, xzr, [x9], #16
    b       1b
2:
    mov     x0, x19
    bl      hpt_arm64_main          // never returns; if it does, fail loudly
    mov     x0, #105
    bl      hpt_arm64_exit_now
3:  wfe
    b       3b

    .section .rodata
    .balign 8
bad_el_block:
    .quad   0x20026                 // ADP_Stopped_ApplicationExit
    .quad   103

// --- exception vectors ------------------------------------------------------------------------
// 16 entries, 0x80 apart, 2 KiB aligned: {current EL SP0, current EL SPx, lower EL AArch64,
// lower EL AArch32} x {synchronous, IRQ, FIQ, SError}. Every one saves the full frame and calls
// hpt_arm64_exception(frame, index); the C++ side may edit the saved registers (ELR, x0, ...).

    .macro  vector idx
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\idx
    b       exception_common
    .endm

    .text
    .balign 2048
    .global hpt_arm64_vectors
hpt_arm64_vectors:
    vector 0
    vector 1
    vector 2
    vector 3
    vector 4
    vector 5
    vector 6
    vector 7
    vector 8
    vector 9
    vector 10
    vector 11
    vector 12
    vector 13
    vector 14
    vector 15

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    stp     x30, x2, [sp, #240]
    mrs     x3, spsr_el1
    add     x4, sp, #FRAME_SIZE
    stp     x3, x4, [sp, #256]
    mov     x0, sp
    bl      hpt_arm64_exception
    ldp     x30, x2, [sp, #240]
    msr     elr_el1, x2
    ldr     x3, [sp, #256]
    msr     spsr_el1, x3
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME_SIZE
    eret

// --- probes -----------------------------------------------------------------------------------
// Each performs exactly one access at a global label, so the handler recognises a probe fault
// by ELR alone and resumes at the next instruction (ELR += 4: A64 instructions are 4 bytes).

    .global hpt_arm64_probe_load, hpt_arm64_probe_load_insn
hpt_arm64_probe_load:               // u64 hpt_arm64_probe_load(u64 va)
hpt_arm64_probe_load_insn:
    ldr     x0, [x0]
    ret

    .global hpt_arm64_probe_store, hpt_arm64_probe_store_insn
hpt_arm64_probe_store:              // void hpt_arm64_probe_store(u64 va, u64 value)
hpt_arm64_probe_store_insn:
    str     x1, [x0]
    ret

    .global hpt_arm64_probe_call
hpt_arm64_probe_call:               // void hpt_arm64_probe_call(u64 va)
    stp     x29, x30, [sp, #-16]!
    mov     x29, sp
    blr     x0                      // a fetch fault at va resumes at the saved x30: the ldp
    ldp     x29, x30, [sp], #16
    ret

    .global hpt_arm64_ret_insn
hpt_arm64_ret_insn:                 // the bytes of a function that returns at once
    ret

// u64 hpt_arm64_semihost(u64 op, u64 param_block)
    .global hpt_arm64_semihost, hpt_arm64_semihost_hlt
hpt_arm64_semihost:
hpt_arm64_semihost_hlt:
    hlt     #0xf000
    ret

    .section .bss.stack, "aw", %nobits
    .balign 16
    .global __stack_top
__stack_bottom:
    .space  64 * 1024
__stack_top:
