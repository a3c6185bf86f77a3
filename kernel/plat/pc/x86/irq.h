/* irq.h - idling without spinning: the BSP sleeps in `hlt` while waiting for
 * console input and is woken by the COM1 or keyboard interrupt (legacy PIC,
 * Intel 8259A datasheet: ICW1-ICW4 remap to vectors 0x20-0x2F). */
#ifndef FLUID_X86_IRQ_H
#define FLUID_X86_IRQ_H
#define IRQ_VECTOR_BASE 0x20
/* Remap the PICs, unmask IRQ 1 and 4 only, point vectors 0x20-0x2F at the
 * wake handler (call after trap_init on the BSP). */
void irq_init(void);
/* Sleep until an interrupt arrives (sti; hlt; cli).  Interrupts are off
 * again on return. */
void irq_wait(void);
#endif
