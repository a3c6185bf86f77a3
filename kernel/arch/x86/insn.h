/*
 * insn.h - the unprivileged x86-64 instructions both platforms use:
 * CPUID, XGETBV, the TSC, pause.  Everything here runs in ring 0 (pc) and
 * in a Linux process (hosted) alike; the privileged ones (port I/O, MSRs,
 * control registers) live in plat/pc/x86/io.h.
 */
#ifndef FLUID_X86_INSN_H
#define FLUID_X86_INSN_H

#include <stdint.h>

/* CPUID leaf/subleaf -> r[0..3] = eax, ebx, ecx, edx. */
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* XCR `idx`; only valid when CR4.OSXSAVE is set (CPUID.1:ECX bit 27). */
static inline uint64_t xgetbv(uint32_t idx)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(idx));
    return ((uint64_t)hi << 32) | lo;
}

/* TSC read; not serialising (see tsc_begin/tsc_end for measurements). */
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Start of a timed interval: lfence keeps earlier work from leaking in
 * (Intel SDM: "lfence; rdtsc" waits for prior instructions; on AMD lfence
 * is dispatch-serialising when the OS/firmware sets it, true under KVM
 * and Linux). */
static inline uint64_t tsc_begin(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

/* End of a timed interval: lfence waits for the interval's instructions,
 * the second keeps later work out.  Not rdtscp, which is not part of any
 * x86-64 level (QEMU's Nehalem and qemu64 models lack it): a timer must
 * not fault on a CPU the kernel otherwise runs on. */
static inline uint64_t tsc_end(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void) { __asm__ volatile("pause"); }

#endif
