/*
 * smp.h - application processors and the parallel-for over all cores.
 *
 * smp_init() starts every enabled processor the ACPI MADT lists (Intel SDM
 * vol. 3A 8.4.4 "MP Initialization Example": INIT, then two start-up
 * IPIs).  Each AP gets its own stack, GDT/TSS/IDT, per-CPU block (FS base)
 * and FPU/SSE/AVX state, then waits for work.  A core that does not come
 * up within the timeout is reported and left out; the rest carry on.
 *
 * Work is handed out by plat_parallel_for() (plat/common/pfor.c, shared
 * with the hosted platform); this file gives it the pc platform's way of
 * waiting: spinning with pause, monitor/mwait or, under QEMU TCG, plain
 * loads (measured at boot, see smp_wait_mode()), and sleeping in hlt until
 * a wake-up IPI once idle for 20 ms.
 */
#ifndef FLUID_SMP_H
#define FLUID_SMP_H

/* Start the application processors.  Needs acpi_init(), tsc_init(),
 * cpu_init() and the physical allocator (stacks).  Prints
 * "smp: N of M cores online".  Safe to call once; on a machine without a
 * usable APIC only the BSP runs. */
void smp_init(void);

/* Number of CPUs running kernel code and taking part in
 * plat_parallel_for() (1 before smp_init()). */
int smp_online(void);

/* One past the highest per-CPU id (this_cpu()->id) in use: the size of
 * per-CPU arrays such as profile counters.  Equals smp_online() unless a
 * core failed to start. */
int smp_cpu_ids(void);

/*
 * Called first by the exception handler.  Returns 0 on the first CPU to
 * panic: it then owns the console, and every other online CPU is stopped
 * with an NMI (so the register dump is not interleaved and the machine
 * really stops).  Returns -1 on any other CPU (a second panic, or the
 * stop NMI itself): the caller must halt without printing.
 */
int smp_panic_enter(void);

/* How waiting CPUs spin: "pause", "mwait" or "plain loads" (chosen by
 * smp_init() from measured round trips; plain loads only under TCG). */
const char *smp_wait_mode(void);

#endif
