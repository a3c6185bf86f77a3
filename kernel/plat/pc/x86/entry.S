/*
 * entry.S - kernel entry from stage 2: 64-bit mode, identity paging,
 * interrupts off, %rdi = struct boot_info *.  Sets up the boot stack,
 * clears .bss, and calls kmain(boot_info).
 */
    .section .text.entry, "ax"
    .globl _start
_start:
    cli
    cld
    mov %rdi, %r12
    /* Mask every legacy PIC line: the kernel polls its devices and runs
     * with interrupts off. */
    mov $0xFF, %al
    out %al, $0xA1
    out %al, $0x21
    /* SSE must work before any C runs (the compiler uses it freely):
     * CR0.EM and TS off, CR0.MP and NE (native x87 errors) on, CR4.OSFXSR and OSXMMEXCPT on.  AVX and
     * AVX-512 state are enabled later by cpu_init(). */
    mov %cr0, %rax
    and $~((1 << 2) | (1 << 3)), %rax
    or $((1 << 1) | (1 << 5)), %rax
    mov %rax, %cr0
    mov %cr4, %rax
    or $((1 << 9) | (1 << 10)), %rax
    mov %rax, %cr4
    lea boot_stack_top(%rip), %rsp
    xor %ebp, %ebp
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb
    mov %r12, %rdi
    call kmain
1:  cli
    hlt
    jmp 1b

    .section .bss
    .balign 16
    .globl boot_stack_bottom
boot_stack_bottom:
    .skip 256 * 1024
    .globl boot_stack_top
boot_stack_top:
