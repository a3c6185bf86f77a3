/*
 * trampoline.h - where the application processors' real-mode start code
 * runs, and the layout of the table that gives each its stack.  C only:
 * trampoline.S gets these from build/gen/fluid_layout.h (tools/genlayout.c).
 *
 * 0x8000 held stage 2 (image.h FLUID_STAGE2_LOAD), which is dead once the
 * kernel runs; the start-up IPI's vector is the page number, 0x08 (SDM
 * vol. 3A 10.6.1, "Start-Up" delivery mode: the AP starts in real mode at
 * physical 0x000VV000, i.e. CS = vector << 8, IP = 0).  The page tables at 0x20000 and the boot info at 0x6000 are
 * left alone.
 */
#ifndef FLUID_SMP_TRAMPOLINE_H
#define FLUID_SMP_TRAMPOLINE_H

#include <stdint.h>
#include "fluid/image.h"

#define SMP_TRAMPOLINE_ADDR 0x8000   /* 4 KiB aligned, below 1 MiB */
#define SMP_TRAMPOLINE_MAX 4096      /* bytes: one page */
_Static_assert(SMP_TRAMPOLINE_ADDR >= FLUID_STAGE2_LOAD &&
               SMP_TRAMPOLINE_ADDR + SMP_TRAMPOLINE_MAX <= FLUID_STAGE2_LOAD + FLUID_STAGE2_MAX_BYTES,
               "the trampoline may reuse stage 2's memory only");

/* One per application processor (smp_boot_slots[], smp.c), read by
 * trampoline.S (smp_ap_entry64): APIC ID -> per-CPU id, stack. */
struct smp_boot_slot {
    uint32_t apic_id;                /* from the MADT */
    uint32_t cpu_id;                 /* per-CPU id (percpu.h) */
    uint64_t stack_top;              /* initial %rsp */
};

#endif
