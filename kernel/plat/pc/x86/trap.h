/* trap.h - the register frame isr.S builds for trap_handler(). */
#ifndef FLUID_X86_TRAP_H
#define FLUID_X86_TRAP_H

#include <stdint.h>

struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;   /* pushed by the CPU */
};

/* Install the GDT (with a TSS giving the double-fault handler its own
 * stack) and the IDT for all 32 exception vectors on the calling CPU. */
void trap_init(void);
void trap_init_ap(void);
/* Point IDT vector v (< 256) at an interrupt-gate handler. */
void trap_set_vector(int v, uint64_t handler);

#endif
