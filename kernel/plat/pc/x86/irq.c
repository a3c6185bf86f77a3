/* irq.c - PIC set-up and the input-wait idle (see irq.h). */
#include "x86/io.h"
#include "x86/irq.h"
#include "x86/trap.h"

extern char irq_wake[], irq_ignore[];
static int ready;

void irq_init(void)
{
    /* ICW1: edge, cascade, ICW4; ICW2: vector bases; ICW3: wiring; ICW4: 8086. */
    outb(0x20, 0x11); outb(0xA0, 0x11);
    outb(0x21, IRQ_VECTOR_BASE); outb(0xA1, IRQ_VECTOR_BASE + 8);
    outb(0x21, 0x04); outb(0xA1, 0x02);
    outb(0x21, 0x01); outb(0xA1, 0x01);
    for (int v = IRQ_VECTOR_BASE; v < 256; v++)
        trap_set_vector(v, (uint64_t)(v < IRQ_VECTOR_BASE + 16 ? irq_wake : irq_ignore));
    outb(0x21, (uint8_t)~((1u << 1) | (1u << 4)));   /* keyboard, COM1 */
    outb(0xA1, 0xFF);
    outb(0x3F9, 0x01);                               /* COM1: data-ready interrupt */
    outb(0x3FC, 0x0B);                               /* DTR, RTS, OUT2 (IRQ line enable) */
    ready = 1;
}

void irq_wait(void)
{
    if (ready)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    else
        cpu_relax();
}
