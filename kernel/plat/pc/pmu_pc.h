/* pmu_pc.h - the pc platform's PMU set-up (pmu.c). */
#ifndef FLUID_PMU_PC_H
#define FLUID_PMU_PC_H
/* Detect, program and verify the counters on the calling CPU (the BSP);
 * prints one line.  Safe on any x86-64 CPU. */
void pmu_init(void);
/* Program an application processor's counters like the BSP's (call on the
 * AP after cpu_init_ap()); does nothing without a PMU. */
void pmu_init_ap(void);
#endif
