/*
 * percpu.h - the per-CPU block each core's FS base points at.
 *
 * llvm-libc is built with the stack protector, which reads the canary at
 * %fs:0x28 (the x86-64 System V TLS ABI slot), so FS must point at a valid
 * block on every core before any libc code runs.
 */
#ifndef FLUID_X86_PERCPU_H
#define FLUID_X86_PERCPU_H

#include <stddef.h>
#include <stdint.h>

#include "plat/plat.h"   /* FLUID_MAX_CPUS */

struct percpu {
    struct percpu *self;      /* 0x00: %fs:0 -> this block */
    uint32_t id;              /* 0x08: 0 = bootstrap processor */
    uint32_t apic_id;         /* 0x0c */
    uint64_t stack_top;       /* 0x10 */
    uint64_t pad[2];          /* 0x18 */
    uint64_t canary;          /* 0x28: stack-protector canary */
    uint8_t user[64];         /* 0x30: scratch for subsystems */
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct percpu, canary) == 0x28, "canary at %fs:0x28");

extern struct percpu percpu_blocks[FLUID_MAX_CPUS];

/* Point FS at percpu_blocks[id] on the calling CPU (MSR 0xC0000100). */
void percpu_init(uint32_t id, uint32_t apic_id);

static inline struct percpu *this_cpu(void)
{
    struct percpu *p;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(p));
    return p;
}

/* CPU id for diagnostics; 0 if FS is not set up yet. */
int this_cpu_id_safe(void);

#endif
