/* cpu.h - what the CPU is and can do (CPUID), for both platforms.
 *
 * The platform decides which register state is enabled (pc: the kernel
 * sets CR4/XCR0 itself; hosted: Linux did, and XGETBV reads it); cpu_detect()
 * then drops every feature whose state is off, so a module is only ever
 * picked for what really runs. */
#ifndef FLUID_X86_CPU_H
#define FLUID_X86_CPU_H

#include <stdint.h>
#include "fluid/cpufeat.h"

struct cpu_info {
    char vendor[13];
    char brand[49];
    uint32_t family, model, stepping;
    uint64_t features;     /* FEAT_BIT(...) usable now (OS state enabled) */
    uint64_t features_hw;  /* the same before any cpu_restrict(): what really runs */
    uint64_t xcr0;
    int level;             /* x86-64 level 1..4 */
    char tag[48];          /* -march tag for modules, e.g. "x86-64-v4+vnni" */
    uint64_t tsc_hz;       /* set by the platform (tsc_hz_from_cpuid() first) */
    const char *tsc_source;
};

extern struct cpu_info cpu;

/* What the kernel's own code needs beyond x86-64: Debian's llvm-libc 19
 * (libllvmlibc-19-dev) has its float math (expf, powf, sinf, cosf, exp2f)
 * built with AVX, AVX2 and FMA instructions, so the kernel runs on an
 * x86-64-v3 CPU or above whatever its modules need (objdump shows them;
 * tests/hosted/test_hosted.py boots older CPU models in qemu-user). */
#define FLUID_KERNEL_FEATURES (FEAT_BIT(AVX) | FEAT_BIT(AVX2) | FEAT_BIT(FMA))

/* Every feature bit CPUID reports, whether or not its state is enabled. */
uint64_t cpu_raw_features(void);
/* Decode CPUID into `cpu` (vendor, family, brand, features, level, tag)
 * given the XCR0 the OS enabled (3 = x87+SSE only, when XSAVE is off). */
void cpu_detect(uint64_t xcr0);
/* Keep only the features in `keep` and derive level and tag again: a CPU
 * run as a smaller one (hosted --cpu TAG), so the loader picks the
 * modules that CPU would.  Call after cpu_detect(). */
void cpu_restrict(uint64_t keep);
/* 0 when this CPU (before any cpu_restrict) has FLUID_KERNEL_FEATURES;
 * otherwise -1 with why = "this CPU lacks AVX2 FMA, which ...". */
int cpu_kernel_check(char *why, int cap);
/* Name of feature bit `bit` ("AVX2"), or NULL. */
const char *cpu_feature_name(int bit);
/* Write the names of the set bits of `mask`, space-separated. */
void cpu_feature_string(uint64_t mask, char *buf, int cap);
/* TSC frequency from CPUID 0x15 (crystal ratio), the hypervisor leaf
 * 0x40000010 (TSC kHz, as KVM/VMware publish it) or CPUID 0x16 (base MHz,
 * trusted only outside a hypervisor).  Returns 0 and sets cpu.tsc_hz and
 * cpu.tsc_source, or -1 when none applies (the platform calibrates). */
int tsc_hz_from_cpuid(void);
/* 1 under QEMU's TCG (CPUID 0x40000000 says "TCGTCGTCGTCG"). */
int cpu_under_tcg(void);
/* TSC ticks -> microseconds (0 before cpu.tsc_hz is known). */
uint64_t tsc_to_us(uint64_t ticks);
#endif
