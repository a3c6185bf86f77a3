/*
 * trampoline.h - where the application processors' real-mode start code
 * runs, and the layout of the table that gives each its stack.  Included
 * by trampoline.S and smp.c (only #defines: safe for assembly).
 *
 * 0x8000 held stage 2 (image.h FLUID_STAGE2_LOAD), which is dead once the
 * kernel runs; the start-up IPI's vector is the page number, 0x08 (SDM
 * vol. 3A 10.6.1, "Start-Up" delivery mode: the AP starts in real mode at
 * physical 0x000VV000, i.e. CS = vector << 8, IP = 0).  The page tables at 0x20000 and the boot info at 0x6000 are
 * left alone.
 */
#ifndef FLUID_SMP_TRAMPOLINE_H
#define FLUID_SMP_TRAMPOLINE_H

#define SMP_TRAMPOLINE_ADDR 0x8000   /* 4 KiB aligned, below 1 MiB */
#define SMP_TRAMPOLINE_MAX 4096      /* bytes: one page */

/* struct smp_boot_slot (smp.c): one per application processor. */
#define SMP_SLOT_APIC_ID 0           /* u32: APIC ID from the MADT */
#define SMP_SLOT_CPU_ID 4            /* u32: per-CPU id (percpu.h) */
#define SMP_SLOT_STACK 8             /* u64: initial %rsp */
#define SMP_SLOT_BYTES 16

#endif
