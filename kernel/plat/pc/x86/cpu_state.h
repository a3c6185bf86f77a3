/* cpu_state.h - enabling x87/SSE/AVX/AVX-512 state on the pc platform. */
#ifndef FLUID_PC_CPU_STATE_H
#define FLUID_PC_CPU_STATE_H
/* Enable every state component the CPU has on the BSP (CR0.MP, CR4.OSFXSR,
 * OSXMMEXCPT, OSXSAVE, XCR0), then cpu_detect() with that XCR0. */
void cpu_init(void);
/* Enable the same state on an application processor. */
void cpu_init_ap(void);
/* cpu.tsc_hz: tsc_hz_from_cpuid(), else calibration against PIT channel 2
 * (median of three 20 ms windows). */
void tsc_init(void);
#endif
