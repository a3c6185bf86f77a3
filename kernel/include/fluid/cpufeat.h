/*
 * cpufeat.h - CPU feature bits as Fluid names them, shared by the kernel
 * (CPUID decoding), the module ABI (a module's required features) and the
 * host tools (the profile's feature list, the -march tag).
 *
 * Bit numbers are part of the module ABI: append, never renumber.
 * FLUID_CPUFEAT_LIST gives each bit's name and its CPUID source
 * (leaf, subleaf, register 0..3 = eax..edx, bit), per the Intel SDM vol. 2
 * and AMD APM vol. 3.
 */
#ifndef FLUID_CPUFEAT_H
#define FLUID_CPUFEAT_H

#define FLUID_CPUFEAT_LIST(X) \
    X(SSE,        0,          0, 3, 25) \
    X(SSE2,       1,          0, 3, 26) \
    X(SSE3,       2,          0, 2, 0)  \
    X(SSSE3,      3,          0, 2, 9)  \
    X(SSE4_1,     4,          0, 2, 19) \
    X(SSE4_2,     5,          0, 2, 20) \
    X(POPCNT,     6,          0, 2, 23) \
    X(CX16,       7,          0, 2, 13) \
    X(LAHF,       8, 0x80000001, 2, 0)  \
    X(AVX,        9,          0, 2, 28) \
    X(AVX2,      10,          7, 1, 5)  \
    X(BMI1,      11,          7, 1, 3)  \
    X(BMI2,      12,          7, 1, 8)  \
    X(FMA,       13,          0, 2, 12) \
    X(F16C,      14,          0, 2, 29) \
    X(LZCNT,     15, 0x80000001, 2, 5)  \
    X(MOVBE,     16,          0, 2, 22) \
    X(XSAVE,     17,          0, 2, 26) \
    X(AVX512F,   18,          7, 1, 16) \
    X(AVX512DQ,  19,          7, 1, 17) \
    X(AVX512CD,  20,          7, 1, 28) \
    X(AVX512BW,  21,          7, 1, 30) \
    X(AVX512VL,  22,          7, 1, 31) \
    X(AVX512VNNI, 23,         7, 2, 11) \
    X(AVX512VBMI, 24,         7, 2, 1)  \
    X(AVX512BF16, 25, 0x10007, 0, 5)    \
    X(AVXVNNI,   26,    0x10007, 0, 4)  \
    X(AVX512FP16, 27,         7, 3, 23) \
    X(AMXTILE,   28,          7, 3, 24) \
    X(AMXINT8,   29,          7, 3, 25) \
    X(PDPE1GB,   30, 0x80000001, 3, 26) \
    X(RDTSCP,    31, 0x80000001, 3, 27) \
    X(INVTSC,    32, 0x80000007, 3, 8)  \
    X(MONITOR,   33,          0, 2, 3)  \
    X(HYPERVISOR, 34,         0, 2, 31) \
    X(PCLMUL,    35,          0, 2, 1)  \
    X(AES,       36,          0, 2, 25) \
    X(SHA,       37,          7, 1, 29) \
    X(VPCLMUL,   38,          7, 2, 10) \
    X(GFNI,      39,          7, 2, 8)

/* Leaf 0x10007 above means leaf 7, subleaf 1. */

enum fluid_cpufeat {
#define FLUID_CPUFEAT_ENUM(name, bit, leaf, reg, b) FEAT_##name = bit,
    FLUID_CPUFEAT_LIST(FLUID_CPUFEAT_ENUM)
#undef FLUID_CPUFEAT_ENUM
    FEAT_COUNT_ = 40
};

#define FEAT_BIT(name) (1ull << FEAT_##name)

/* x86-64 micro-architecture levels (x86-64 psABI, "Micro-architecture
 * levels"): the features each level adds over the previous one. */
#define FLUID_LEVEL_V2 (FEAT_BIT(SSE3) | FEAT_BIT(SSSE3) | FEAT_BIT(SSE4_1) | \
                        FEAT_BIT(SSE4_2) | FEAT_BIT(POPCNT) | FEAT_BIT(CX16) | FEAT_BIT(LAHF))
#define FLUID_LEVEL_V3 (FEAT_BIT(AVX) | FEAT_BIT(AVX2) | FEAT_BIT(BMI1) | FEAT_BIT(BMI2) | \
                        FEAT_BIT(FMA) | FEAT_BIT(F16C) | FEAT_BIT(LZCNT) | FEAT_BIT(MOVBE) | \
                        FEAT_BIT(XSAVE))
#define FLUID_LEVEL_V4 (FEAT_BIT(AVX512F) | FEAT_BIT(AVX512DQ) | FEAT_BIT(AVX512CD) | \
                        FEAT_BIT(AVX512BW) | FEAT_BIT(AVX512VL))

/* The bits that are not vector instruction sets (paging, timers, the
 * hypervisor flag, scalar-register crypto): kept when a CPU is limited to a
 * tag's instruction sets (hosted --cpu TAG, arch/x86/cpu.h cpu_restrict). */
#define FLUID_FEAT_NON_ISA (FEAT_BIT(PDPE1GB) | FEAT_BIT(RDTSCP) | FEAT_BIT(INVTSC) | \
                            FEAT_BIT(MONITOR) | FEAT_BIT(HYPERVISOR) | FEAT_BIT(PCLMUL) | \
                            FEAT_BIT(AES) | FEAT_BIT(SHA))

#endif
