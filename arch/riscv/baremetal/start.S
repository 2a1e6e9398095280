// start.S - riscv64 S-mode entry under OpenSBI, the trap entry, and the probe instructions.
//
// OpenSBI (fw_dynamic, -bios default) jumps to 0x80200000 in S-mode with a0 = hartid,
// a1 = flattened device tree, translation off (satp = 0) and interrupts disabled.

// Trap frame layout, shared with struct TrapFrame in platform.cpp: x0..x31, then 4 CSRs.
#define FRAME_X(n)     ((n) * 8)
#define FRAME_SEPC     (32 * 8)
#define FRAME_SSTATUS  (33 * 8)
#define FRAME_SCAUSE   (34 * 8)
#define FRAME_STVAL    (35 * 8)
#define FRAME_SIZE     (36 * 8)   // 288: keeps sp 16-byte aligned (psABI)

        .section .text.boot, "ax", @progbits
        .globl _start
_start:
        csrw    sie, zero               // no interrupt sources; SIE is off too
        csrci   sstatus, 2
        la      sp, hpt_rv_stack_top
        mv      s0, a0
        mv      s1, a1
        // Zero .bss (which also holds the stack, unused so far). The linker script
        // 8-byte-aligns both ends.
        la      t0, __bss_start
        la      t1, __bss_end
1:      bgeu    t0, t1, 2f
        sd      zero, 0(t0)
        addi    t0, t0, 8
        j       1b
2:      la      t0, hpt_rv_trap_entry   // 4-byte aligned, so MODE = 0 (direct)
        csrw    stvec, t0
        mv      a0, s0
        mv      a1, s1
        call    hpt_rv_main             // never returns
3:      wfi
        j       3b

// Every synchronous exception (and any stray interrupt) lands here. The trap is taken on the
// interrupted stack: S-mode only, no user stacks to switch away from. All registers go into
// the frame so the C++ handler can print them and redirect sepc; nested traps (a fault hook
// that faults) work because sepc/sstatus are restored from the frame.
        .text
        .balign 4
        .globl hpt_rv_trap_entry
hpt_rv_trap_entry:
        addi    sp, sp, -FRAME_SIZE
        sd      zero, FRAME_X(0)(sp)
        sd      x1, FRAME_X(1)(sp)
        .irp    n, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        sd      x\n, FRAME_X(\n)(sp)
        .endr
        addi    t0, sp, FRAME_SIZE      // the interrupted sp
        sd      t0, FRAME_X(2)(sp)
        csrr    t0, sepc
        sd      t0, FRAME_SEPC(sp)
        csrr    t0, sstatus
        sd      t0, FRAME_SSTATUS(sp)
        csrr    t0, scause
        sd      t0, FRAME_SCAUSE(sp)
        csrr    t0, stval
        sd      t0, FRAME_STVAL(sp)
        mv      a0, sp
        call    hpt_rv_trap
        ld      t0, FRAME_SEPC(sp)      // the handler may have moved it past the access
        csrw    sepc, t0
        ld      t0, FRAME_SSTATUS(sp)
        csrw    sstatus, t0
        ld      x1, FRAME_X(1)(sp)
        .irp    n, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ld      x\n, FRAME_X(\n)(sp)
        .endr
        ld      sp, FRAME_X(2)(sp)      // last: sp is the base of every load above
        sret

// Probes. Each access is one instruction at a known label, so the handler attributes a fault
// to a probe only if sepc is exactly that instruction. The load is a 4-byte instruction and
// the store a 2-byte compressed one, so both paths of the handler's length decode (opcode
// bits [1:0] == 11b means 32-bit) run in every image.

// u64 hpt_rv_probe_ld(u64 va): on a fault the load is skipped and a0 comes back unchanged.
        .globl hpt_rv_probe_ld
        .globl hpt_rv_probe_ld_insn
hpt_rv_probe_ld:
        .option push
        .option norvc
hpt_rv_probe_ld_insn:
        ld      a0, 0(a0)
        .option pop
        ret

// void hpt_rv_probe_sd(u64 va, u64 value)
        .globl hpt_rv_probe_sd
        .globl hpt_rv_probe_sd_insn
hpt_rv_probe_sd:
hpt_rv_probe_sd_insn:
        c.sd    a1, 0(a0)
        ret

// void hpt_rv_probe_call(u64 va): a register-indirect call. If fetching at va faults, the
// handler resumes at the return address in ra, i.e. hpt_rv_probe_call_ret.
        .globl hpt_rv_probe_call
        .globl hpt_rv_probe_call_ret
hpt_rv_probe_call:
        addi    sp, sp, -16
        sd      ra, 8(sp)
        jalr    ra, 0(a0)
hpt_rv_probe_call_ret:
        ld      ra, 8(sp)
        addi    sp, sp, 16
        ret

        .section .bss.stack, "aw", @nobits
        .balign 16
        .globl hpt_rv_stack_bottom
        .globl hpt_rv_stack_top
hpt_rv_stack_bottom:
        .space  64 * 1024
hpt_rv_stack_top:
