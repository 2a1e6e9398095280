// start.S - x86-64 bare-metal entry: PVH note, 32-bit trampoline into long mode, exception
// stubs, and the probe instructions with their fixup table.
//
// QEMU loads this ELF itself (-kernel) and, because of the Xen PVH note, enters _start32 in
// 32-bit protected mode with paging off, flat segments, interrupts off and %ebx pointing at the
// hvm_start_info block.

#define CR0_PE   (1 << 0)
#define CR0_WP   (1 << 16)
#define CR0_PG   (1 << 31)
#define CR4_PAE  (1 << 5)
#define CR4_LA57 (1 << 12)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)
#define PTE_P    (1 << 0)
#define PTE_RW   (1 << 1)
#define PTE_PS   (1 << 7)

#define SEL_CODE64 0x08
#define SEL_DATA   0x10

#ifndef HPT_X86_LEVELS
#error "HPT_X86_LEVELS (4 or 5) must be defined"
#endif

// --- PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY = 18): name "Xen", desc = 32-bit entry ----------
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4            // namesz, "Xen\0"
    .long 4            // descsz
    .long 18           // type
    .asciz "Xen"
    .p2align 2
    .long _start32

// --- 32-bit trampoline --------------------------------------------------------------------------
    .section .text.boot, "ax"
    .code32
    .globl _start32
_start32:
    cli
    cld
    movl %ebx, hpt_x86_start_info      // .data, so zeroing .bss below keeps it

    // Zero .bss first: the boot tables and the stack live there.
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    lgdt gdt_ptr
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $hpt_x86_stack_top, %esp

    // Temporary identity map of the first 1 GiB with 2 MiB pages, just enough to reach C++;
    // the harness then switches to the map the library builds (platform.cpp). This one stays
    // hand-written: long mode cannot be entered without paging, so it must exist before any C++
    // runs.
    movl $boot_pd, %edi
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $(PTE_P | PTE_RW | PTE_PS), %eax
    movl %eax, (%edi,%ecx,8)
    movl $0, 4(%edi,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jb 1b
    movl $(boot_pd + (PTE_P | PTE_RW)), boot_pdpt
    movl $(boot_pdpt + (PTE_P | PTE_RW)), boot_pml4

    movl $CR4_PAE, %ebp                // CR4 bits to set
    movl $boot_pml4, %esi              // CR3
#if HPT_X86_LEVELS == 5
    // LA57 can only be switched on while paging is off, so the 5-level choice is made here.
    // Without CPUID.(EAX=7,ECX=0):ECX[16] the image falls back to 4 levels and its 5-level
    // cases skip.
    xorl %eax, %eax
    cpuid
    cmpl $7, %eax
    jb 2f
    movl $7, %eax
    xorl %ecx, %ecx
    cpuid
    testl $(1 << 16), %ecx
    jz 2f
    movl $(boot_pml4 + (PTE_P | PTE_RW)), boot_pml5
    movl $boot_pml5, %esi
    orl $CR4_LA57, %ebp
2:
#endif
    movl %ebp, %cr4
    movl %esi, %cr3

    // EFER: long mode, plus execute-disable when CPUID.80000001H:EDX[20] has it.
    movl $EFER_LME, %edi
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb 3f
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 20), %edx
    jz 3f
    orl $EFER_NXE, %edi
3:  movl $MSR_EFER, %ecx
    rdmsr
    orl %edi, %eax
    wrmsr

    // WP: supervisor writes must honour read-only entries, or the permission cases lie.
    movl %cr0, %eax
    orl $(CR0_PG | CR0_WP | CR0_PE), %eax
    movl %eax, %cr0
    ljmp $SEL_CODE64, $start64

    .code64
start64:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    movq $hpt_x86_stack_top, %rsp
    xorl %ebp, %ebp
    call hpt_x86_main
4:  hlt
    jmp 4b

// --- exception entry ----------------------------------------------------------------------------
// One stub per vector pushes a dummy error code where the CPU pushes none, then the vector, so
// every frame has the same layout (struct Frame in platform.cpp).
    .text
    .p2align 4
#define STUB_NOERR(n) \
    .p2align 4; stub_##n: pushq $0; pushq $n; jmp trap_common
#define STUB_ERR(n) \
    .p2align 4; stub_##n: pushq $n; jmp trap_common

STUB_NOERR(0)
STUB_NOERR(1)
STUB_NOERR(2)
STUB_NOERR(3)
STUB_NOERR(4)
STUB_NOERR(5)
STUB_NOERR(6)
STUB_NOERR(7)
STUB_ERR(8)
STUB_NOERR(9)
STUB_ERR(10)
STUB_ERR(11)
STUB_ERR(12)
STUB_ERR(13)
STUB_ERR(14)
STUB_NOERR(15)
STUB_NOERR(16)
STUB_ERR(17)
STUB_NOERR(18)
STUB_NOERR(19)
STUB_NOERR(20)
STUB_ERR(21)
STUB_NOERR(22)
STUB_NOERR(23)
STUB_NOERR(24)
STUB_NOERR(25)
STUB_NOERR(26)
STUB_NOERR(27)
STUB_NOERR(28)
STUB_ERR(29)
STUB_ERR(30)
STUB_NOERR(31)

// The CPU aligns RSP to 16 before pushing its 5-word frame; with the 2 words above and the 15
// registers below the frame is 22 words, so the call into C++ sees an ABI-aligned stack.
trap_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rbp
    pushq %rsi
    pushq %rdi
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    cld
    call hpt_x86_trap
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rdi
    popq %rsi
    popq %rbp
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp                     // vector and error code
    iretq

    .section .rodata
    .p2align 3
    .globl hpt_x86_vector_stubs
hpt_x86_vector_stubs:
    .quad stub_0, stub_1, stub_2, stub_3, stub_4, stub_5, stub_6, stub_7
    .quad stub_8, stub_9, stub_10, stub_11, stub_12, stub_13, stub_14, stub_15
    .quad stub_16, stub_17, stub_18, stub_19, stub_20, stub_21, stub_22, stub_23
    .quad stub_24, stub_25, stub_26, stub_27, stub_28, stub_29, stub_30, stub_31

// --- probes -------------------------------------------------------------------------------------
// Each faulting instruction is listed in .fixup_table as {address, resume address}: x86
// instruction lengths vary, so the handler cannot simply skip "the" instruction.
#define FIXUP(insn, resume) \
    .pushsection .fixup_table, "a"; .p2align 3; .quad insn, resume; .popsection

    .text
    // int hpt_x86_probe_load(u64 va, u64* out): 1 and *out = [va], or 0 after a fault.
    .globl hpt_x86_probe_load
hpt_x86_probe_load:
1:  movq (%rdi), %rax
    movq %rax, (%rsi)
    movl $1, %eax
    ret
2:  xorl %eax, %eax
    ret
    FIXUP(1b, 2b)

    // int hpt_x86_probe_store(u64 va, u64 value): 1, or 0 after a fault.
    .globl hpt_x86_probe_store
hpt_x86_probe_store:
1:  movq %rsi, (%rdi)
    movl $1, %eax
    ret
2:  xorl %eax, %eax
    ret
    FIXUP(1b, 2b)

    // int hpt_x86_probe_call(u64 va): calls va through a register. If the fetch at va faults,
    // the handler pops the return address from the saved RSP, resumes there and clears %rbx.
    .globl hpt_x86_probe_call
hpt_x86_probe_call:
    pushq %rbx
    movl $1, %ebx
    call *%rdi
    movl %ebx, %eax
    popq %rbx
    ret

    // int hpt_x86_probe_ud2(): #UD (vector 6) at a fixup site; returns 0 once handled.
    .globl hpt_x86_probe_ud2
hpt_x86_probe_ud2:
1:  ud2
    movl $1, %eax
    ret
2:  xorl %eax, %eax
    ret
    FIXUP(1b, 2b)

    // int hpt_x86_probe_int3(): #BP is a trap, so the saved RIP is the byte after int3.
    .globl hpt_x86_probe_int3
hpt_x86_probe_int3:
    int3
1:  movl $1, %eax
    ret
2:  xorl %eax, %eax
    ret
    FIXUP(1b, 2b)

// --- data ---------------------------------------------------------------------------------------
    .data
    .p2align 3
    .globl hpt_x86_start_info
hpt_x86_start_info:
    .quad 0                            // physical address of hvm_start_info (from %ebx)

    // 0x00 null, 0x08 64-bit code (L=1), 0x10 flat data, 0x18 64-bit TSS (16 bytes, filled in
    // by platform.cpp, which knows where the TSS is).
    .p2align 4
    .globl hpt_x86_gdt
hpt_x86_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0, 0
gdt_end:
    .p2align 3
gdt_ptr:
    .word gdt_end - hpt_x86_gdt - 1
    .quad hpt_x86_gdt

    .bss
    .p2align 12
boot_pml5: .skip 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096
    // Left unmapped by the harness' tables: running off the stack faults at once (and the #DF
    // that follows runs on its own stack) instead of silently eating the boot tables above.
    .p2align 12
    .globl hpt_x86_stack_guard
hpt_x86_stack_guard:
    .skip 4096
    .globl hpt_x86_stack_bottom
hpt_x86_stack_bottom:
    .skip 65536
    .globl hpt_x86_stack_top
hpt_x86_stack_top:

    .section .note.GNU-stack, "", @progbits
