/*
 * irq.S - the one hardware interrupt the kernel takes: "input arrived"
 * (COM1 IRQ 4, PS/2 keyboard IRQ 1 through the legacy PIC, remapped to
 * vectors 0x20-0x2F).  Its only job is to end a `hlt` in console_getc();
 * the data itself is still read by polling.  It saves nothing but %rax
 * because it touches nothing else.
 */
    .text
    .globl irq_wake
irq_wake:
    push %rax
    mov $0x20, %al
    out %al, $0xA0      /* EOI to the slave PIC (harmless for IRQ < 8) */
    out %al, $0x20      /* EOI to the master PIC */
    pop %rax
    iretq

/* Any other vector (e.g. the LAPIC spurious vector 0xFF): spurious
 * interrupts take no EOI (Intel SDM vol. 3 10.9). */
    .globl irq_ignore
irq_ignore:
    iretq
