/* fluid_start.h - the portable core's entry point. */
#ifndef FLUID_START_H
#define FLUID_START_H
/* Everything after the platform's own set-up (console, CPU detection,
 * TSC, memory, workers): PMU, modules (baseline, then the PGO cache),
 * the model, then the prompt.  Never returns. */
__attribute__((noreturn)) void fluid_start(void);
#endif
