/* smp.h - application processors and the parallel-for over all cores. */
#ifndef FLUID_SMP_H
#define FLUID_SMP_H
/* Number of CPUs running kernel code (1 until the APs are started). */
int smp_online(void);
#endif
