/* cpu.h - what the CPU is and can do (CPUID), and turning on its
 * floating-point and vector state (CR0, CR4, XCR0). */
#ifndef FLUID_X86_CPU_H
#define FLUID_X86_CPU_H

#include <stdint.h>
#include "fluid/cpufeat.h"

struct cpu_info {
    char vendor[13];
    char brand[49];
    uint32_t family, model, stepping;
    uint64_t features;     /* FEAT_BIT(...) usable now (OS state enabled) */
    uint64_t xcr0;
    int level;             /* x86-64 level 1..4 */
    char tag[48];          /* -march tag for modules, e.g. "x86-64-v4+vnni" */
    uint64_t tsc_hz;
    const char *tsc_source;
};

extern struct cpu_info cpu;

/* Decode CPUID into `cpu`, enable x87/SSE/AVX/AVX-512 state on this CPU,
 * and drop features whose state the OS could not enable. */
void cpu_init(void);
/* Enable the same FPU/vector state on an application processor. */
void cpu_init_ap(void);
/* Name of feature bit `bit` ("AVX2"), or NULL. */
const char *cpu_feature_name(int bit);
/* Write the names of the set bits of `mask`, space-separated. */
void cpu_feature_string(uint64_t mask, char *buf, int cap);
/* Measure the TSC frequency into cpu.tsc_hz (CPUID 0x15, then the
 * hypervisor leaf 0x40000010, then 0x16, else the PIT). */
void tsc_init(void);
/* TSC ticks -> microseconds. */
uint64_t tsc_to_us(uint64_t ticks);
#endif
