/* cpu_state.c - turning on the FPU and vector register state on each core
 * (CR0, CR4, XCR0): the pc platform's half of CPU set-up; decoding CPUID
 * is arch/x86/cpu.c. */
#include "arch/x86/cpu.h"
#include "x86/cpu_state.h"
#include "x86/io.h"

/* CR0.MP, clear CR0.EM/TS; CR4.OSFXSR|OSXMMEXCPT|OSXSAVE; XCR0 with every
 * state component the kernel uses that the CPU supports (CPUID 0xD.0). */
static uint64_t enable_state(uint64_t f)
{
    uint64_t cr0 = read_cr0();
    cr0 &= ~((1ull << 2) | (1ull << 3));   /* EM, TS */
    cr0 |= 1ull << 1;                       /* MP */
    write_cr0(cr0);
    uint64_t cr4 = read_cr4() | (1ull << 9) | (1ull << 10);   /* OSFXSR, OSXMMEXCPT */
    if (!(f & FEAT_BIT(XSAVE))) {
        write_cr4(cr4);
        return 3;
    }
    write_cr4(cr4 | (1ull << 18));          /* OSXSAVE */
    uint32_t r[4];
    cpuid(0xD, 0, r);
    uint64_t supported = ((uint64_t)r[3] << 32) | r[0];
    uint64_t want = 0x3;                    /* x87, SSE */
    if (f & FEAT_BIT(AVX))
        want |= 0x4;                        /* YMM upper halves */
    if (f & FEAT_BIT(AVX512F))
        want |= 0xE0;                       /* opmask, ZMM_Hi256, Hi16_ZMM */
    want &= supported;
    if ((want & 0xE0) != 0xE0)
        want &= ~0xE0ull;
    xsetbv(0, want);
    return want;
}

void cpu_init(void)
{
    cpu_detect(enable_state(cpu_raw_features()));
}

void cpu_init_ap(void)
{
    enable_state(cpu.features | (cpu.xcr0 & 0xE0 ? FEAT_BIT(AVX512F) : 0));
}
