/* cpu.c - CPUID decoding and the x86-64 level (see cpu.h); enabling the
 * state is the platform's (plat/pc/x86/cpu_state.c). */
#include <stdio.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "arch/x86/insn.h"

struct cpu_info cpu;

static const struct { const char *name; uint32_t leaf; int reg, bit; } feat_src[FEAT_COUNT_] = {
#define FEAT_SRC(n, b, l, r, bt) [b] = { #n, l, r, bt },
    FLUID_CPUFEAT_LIST(FEAT_SRC)
#undef FEAT_SRC
};

const char *cpu_feature_name(int bit)
{
    return bit >= 0 && bit < FEAT_COUNT_ ? feat_src[bit].name : NULL;
}

void cpu_feature_string(uint64_t mask, char *buf, int cap)
{
    int n = 0;
    buf[0] = 0;
    for (int b = 0; b < FEAT_COUNT_ && n < cap; b++)
        if ((mask >> b) & 1 && feat_src[b].name)
            n += snprintf(buf + n, (size_t)(cap - n), "%s%s", n ? " " : "", feat_src[b].name);
}

uint64_t cpu_raw_features(void)
{
    uint32_t r[4], max, maxext;
    cpuid(0, 0, r);
    max = r[0];
    cpuid(0x80000000u, 0, r);
    maxext = r[0];
    uint64_t f = 0;
    for (int b = 0; b < FEAT_COUNT_; b++) {
        if (!feat_src[b].name)
            continue;
        uint32_t leaf = feat_src[b].leaf, sub = 0;
        if (leaf == 0)
            leaf = 1;
        if (leaf == 0x10007) {
            leaf = 7;
            sub = 1;
        }
        if ((leaf < 0x80000000u && leaf > max) || (leaf >= 0x80000000u && leaf > maxext))
            continue;
        cpuid(leaf, sub, r);
        if ((r[feat_src[b].reg] >> feat_src[b].bit) & 1)
            f |= 1ull << b;
    }
    return f;
}

/* Drop features whose register state is not enabled in XCR0. */
static uint64_t usable(uint64_t f, uint64_t xcr0)
{
    uint64_t avx = FEAT_BIT(AVX) | FEAT_BIT(AVX2) | FEAT_BIT(FMA) | FEAT_BIT(F16C) |
                   FEAT_BIT(AVXVNNI) | FEAT_BIT(VPCLMUL) | FEAT_BIT(GFNI);
    uint64_t avx512 = FEAT_BIT(AVX512F) | FEAT_BIT(AVX512DQ) | FEAT_BIT(AVX512CD) |
                      FEAT_BIT(AVX512BW) | FEAT_BIT(AVX512VL) | FEAT_BIT(AVX512VNNI) |
                      FEAT_BIT(AVX512VBMI) | FEAT_BIT(AVX512BF16) | FEAT_BIT(AVX512FP16);
    if ((xcr0 & 0x6) != 0x6)
        f &= ~(avx | avx512);
    if ((xcr0 & 0xE6) != 0xE6)
        f &= ~avx512;
    f &= ~(FEAT_BIT(AMXTILE) | FEAT_BIT(AMXINT8));   /* AMX state not enabled */
    return f;
}

static void derive_level(void)
{
    uint64_t f = cpu.features;
    cpu.level = 1;
    if ((f & FLUID_LEVEL_V2) == FLUID_LEVEL_V2) {
        cpu.level = 2;
        if ((f & FLUID_LEVEL_V3) == FLUID_LEVEL_V3) {
            cpu.level = 3;
            if ((f & FLUID_LEVEL_V4) == FLUID_LEVEL_V4)
                cpu.level = 4;
        }
    }
    int n = snprintf(cpu.tag, sizeof cpu.tag, cpu.level == 1 ? "x86-64" : "x86-64-v%d", cpu.level);
    if (cpu.level >= 4 && (f & FEAT_BIT(AVX512VNNI)))
        n += snprintf(cpu.tag + n, sizeof cpu.tag - (size_t)n, "+vnni");
    if (cpu.level >= 4 && (f & FEAT_BIT(AVX512BF16)))
        snprintf(cpu.tag + n, sizeof cpu.tag - (size_t)n, "+bf16");
}

void cpu_detect(uint64_t xcr0)
{
    uint32_t r[4];
    cpuid(0, 0, r);
    memcpy(cpu.vendor, &r[1], 4);
    memcpy(cpu.vendor + 4, &r[3], 4);
    memcpy(cpu.vendor + 8, &r[2], 4);
    cpuid(1, 0, r);
    uint32_t fam = (r[0] >> 8) & 0xF, model = (r[0] >> 4) & 0xF;
    if (fam == 0xF)
        fam += (r[0] >> 20) & 0xFF;
    if (fam == 0x6 || fam >= 0xF)
        model |= ((r[0] >> 16) & 0xF) << 4;
    cpu.family = fam;
    cpu.model = model;
    cpu.stepping = r[0] & 0xF;
    cpuid(0x80000000u, 0, r);
    if (r[0] >= 0x80000004u) {
        for (uint32_t i = 0; i < 3; i++) {
            cpuid(0x80000002u + i, 0, r);
            memcpy(cpu.brand + 16 * i, r, 16);
        }
    }
    cpu.xcr0 = xcr0;
    cpu.features = cpu.features_hw = usable(cpu_raw_features(), xcr0);
    derive_level();
}

int cpu_kernel_check(char *why, int cap)
{
    uint64_t missing = FLUID_KERNEL_FEATURES & ~cpu.features_hw;
    if (!missing)
        return 0;
    char names[64];
    cpu_feature_string(missing, names, sizeof names);
    snprintf(why, (size_t)cap,
             "this CPU lacks %s, which the kernel's libc math (llvm-libc, built for x86-64-v3) uses: "
             "Fluid needs an x86-64-v3 CPU (Intel Haswell, AMD Excavator or later)", names);
    return -1;
}

void cpu_restrict(uint64_t keep)
{
    cpu.features &= keep;
    derive_level();
}

int tsc_hz_from_cpuid(void)
{
    uint32_t r[4];
    cpuid(0, 0, r);
    uint32_t max = r[0];
    if (max >= 0x15) {
        cpuid(0x15, 0, r);
        if (r[0] && r[1] && r[2]) {
            cpu.tsc_hz = (uint64_t)r[2] * r[1] / r[0];
            cpu.tsc_source = "CPUID 0x15";
            return 0;
        }
    }
    if (cpu.features & FEAT_BIT(HYPERVISOR)) {
        cpuid(0x40000000u, 0, r);
        if (r[0] >= 0x40000010u) {
            cpuid(0x40000010u, 0, r);
            if (r[0]) {
                cpu.tsc_hz = (uint64_t)r[0] * 1000u;
                cpu.tsc_source = "hypervisor leaf 0x40000010";
                return 0;
            }
        }
    }
    if (max >= 0x16 && !(cpu.features & FEAT_BIT(HYPERVISOR))) {
        cpuid(0x16, 0, r);
        if (r[0]) {
            cpu.tsc_hz = (uint64_t)r[0] * 1000000u;
            cpu.tsc_source = "CPUID 0x16";
            return 0;
        }
    }
    return -1;
}

int cpu_under_tcg(void)
{
    uint32_t r[4];
    if (!(cpu.features & FEAT_BIT(HYPERVISOR)))
        return 0;
    cpuid(0x40000000u, 0, r);
    return memcmp(&r[1], "TCGT", 4) == 0 && memcmp(&r[2], "CGTC", 4) == 0 &&
           memcmp(&r[3], "GTCG", 4) == 0;
}

uint64_t tsc_to_us(uint64_t ticks)
{
    if (!cpu.tsc_hz)
        return 0;
    return (uint64_t)((unsigned __int128)ticks * 1000000u / cpu.tsc_hz);
}
