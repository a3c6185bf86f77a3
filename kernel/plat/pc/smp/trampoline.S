/*
 * trampoline.S - how an application processor gets from its start-up IPI
 * to C: real mode -> 32-bit protected mode -> long mode with the BSP's
 * page tables (Intel SDM vol. 3A 9.9 "Mode Switching", 9.8.5
 * "Initializing IA-32e Mode"), then smp_ap_entry64 finds its stack and
 * calls smp_ap_main(cpu_id, apic_id) (smp.c).
 *
 * smp_tramp_start..smp_tramp_end is copied to SMP_TRAMPOLINE_ADDR
 * (trampoline.h) and never runs where it is linked, so every address in
 * it is computed with REL().  smp.c fills the tramp_* slots in the copy
 * (CR0, CR3, CR4 and EFER as the BSP has them, and the 64-bit entry)
 * before it sends the start-up IPIs.
 */
#include "fluid_layout.h"   /* build/gen: trampoline.h's values (tools/genlayout.c) */

#define REL(x) (SMP_TRAMPOLINE_ADDR + ((x) - smp_tramp_start))
#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE64 0x18
#define MSR_EFER 0xC0000080
#define MSR_APIC_BASE 0x1B

    .section .rodata.smp_tramp, "a"
    .balign 16
    .globl smp_tramp_start
smp_tramp_start:
    .code16
    cli
    cld
    ljmp $0, $REL(tramp_rm)            /* CS base 0x8000 -> CS 0 */
tramp_rm:
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    lgdtl REL(tramp_gdt_desc)
    mov %cr0, %eax
    or $1, %eax                          /* PE */
    mov %eax, %cr0
    ljmpl $SEL_CODE32, $REL(tramp_pm32)

    .code32
tramp_pm32:
    mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov REL(tramp_cr4), %eax             /* PAE, OSFXSR, OSXMMEXCPT, ... */
    mov %eax, %cr4
    mov REL(tramp_cr3), %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    mov REL(tramp_efer), %eax            /* LME (and NXE, SCE as the BSP) */
    mov REL(tramp_efer) + 4, %edx
    wrmsr
    mov REL(tramp_cr0), %eax             /* PG|PE|MP|NE, caches on (CD=NW=0) */
    mov %eax, %cr0
    ljmp $SEL_CODE64, $REL(tramp_lm64)

    .code64
tramp_lm64:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    movabs REL(tramp_entry), %rax
    jmp *%rax

    .balign 8
tramp_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF             /* 0x08 code, 32-bit */
    .quad 0x00CF92000000FFFF             /* 0x10 data */
    .quad 0x00AF9A000000FFFF             /* 0x18 code, 64-bit */
tramp_gdt_desc:
    .word tramp_gdt_desc - tramp_gdt - 1
    .long REL(tramp_gdt)
    .balign 8
    .globl tramp_cr0, tramp_cr3, tramp_cr4, tramp_efer, tramp_entry
tramp_cr0:   .long 0
tramp_cr3:   .long 0
tramp_cr4:   .long 0
    .long 0
tramp_efer:  .quad 0
tramp_entry: .quad 0
    .globl smp_tramp_end
smp_tramp_end:

/*
 * smp_ap_entry64: 64-bit, paging on, no stack yet.  Reads this CPU's APIC
 * ID (IA32_APIC_BASE says xAPIC MMIO or x2APIC MSR), looks it up in
 * smp_boot_slots[0..smp_boot_count) and switches to that slot's stack.
 * A CPU not in the table halts (it was not asked to start).
 */
    .text
    .globl smp_ap_entry64
smp_ap_entry64:
    mov $MSR_APIC_BASE, %ecx
    rdmsr
    test $(1 << 10), %eax                /* x2APIC mode? */
    jnz 1f
    shl $32, %rdx
    and $0xFFFFF000, %eax
    or %rdx, %rax
    mov 0x20(%rax), %eax                 /* xAPIC ID register, bits 31:24 */
    shr $24, %eax
    jmp 2f
1:  mov $0x802, %ecx                     /* x2APIC ID MSR */
    rdmsr
2:  lea smp_boot_slots(%rip), %rbx
    mov smp_boot_count(%rip), %ecx
3:  test %ecx, %ecx
    jz 9f
    cmp SMP_BOOT_SLOT_APIC_ID(%rbx), %eax
    je 4f
    add $SMP_BOOT_SLOT_SIZE, %rbx
    dec %ecx
    jmp 3b
4:  mov SMP_BOOT_SLOT_STACK_TOP(%rbx), %rsp
    xor %ebp, %ebp
    mov SMP_BOOT_SLOT_CPU_ID(%rbx), %edi
    mov %eax, %esi
    call smp_ap_main
9:  cli
    hlt
    jmp 9b

/*
 * Interrupt stubs of the application processors' IDT (smp.c).  Workers
 * enable interrupts only inside "sti; hlt" while they sleep: the wake-up
 * IPI just ends the hlt (its EOI is done in C after the wake-up), and a
 * spurious APIC interrupt needs no EOI (SDM 10.9).
 */
    .globl smp_wake_isr, smp_spurious_isr
smp_wake_isr:
smp_spurious_isr:
    iretq
