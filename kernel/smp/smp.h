/*
 * smp.h - application processors and the parallel-for over all cores.
 *
 * smp_init() starts every enabled processor the ACPI MADT lists (Intel SDM
 * vol. 3A 8.4.4 "MP Initialization Example": INIT, then two start-up
 * IPIs).  Each AP gets its own stack, GDT/TSS/IDT, per-CPU block (FS base)
 * and FPU/SSE/AVX state, then waits for work.  A core that does not come
 * up within the timeout is reported and left out; the rest carry on.
 *
 * Work is handed out by smp_parallel_for(): the bootstrap processor (BSP)
 * publishes a job and bumps a generation counter; the workers, spinning
 * on that counter (pause, monitor/mwait or, under QEMU TCG, plain loads:
 * measured at boot, see smp_wait_mode()) and sleeping in hlt until an IPI
 * once idle for 20 ms, and the BSP itself claim the job's chunks with a
 * compare-exchange and run them; the BSP returns when all are done.  No
 * locks: atomics only.
 */
#ifndef FLUID_SMP_H
#define FLUID_SMP_H

/* Start the application processors.  Needs acpi_init(), tsc_init(),
 * cpu_init() and the physical allocator (stacks).  Prints
 * "smp: N of M cores online".  Safe to call once; on a machine without a
 * usable APIC only the BSP runs. */
void smp_init(void);

/* Number of CPUs running kernel code and taking part in
 * smp_parallel_for() (1 before smp_init()). */
int smp_online(void);

/* One past the highest per-CPU id (this_cpu()->id) in use: the size of
 * per-CPU arrays such as profile counters.  Equals smp_online() unless a
 * core failed to start. */
int smp_cpu_ids(void);

/*
 * fn(ctx, begin, end, cpu) is called on `cpu` (0 = BSP, dense in
 * [0, smp_online())) for its chunk [begin, end) of [0, n_items).
 */
typedef void (*smp_fn)(void *ctx, int begin, int end, int cpu);

/*
 * Split [0, n_items) into W = smp_online() contiguous chunks, chunk k =
 * [n*k/W, n*(k+1)/W), run each chunk once and return when all are done.
 * Each chunk goes to the first CPU to claim it, the caller (worker 0)
 * included: normally one per worker, but a worker that is slow to wake
 * (asleep, or a vCPU descheduled by the host) leaves its chunk to the
 * others instead of holding everyone up.  Empty chunks are
 * not called.  Which CPU runs an item varies, the item's computation does
 * not: callers that compute each output element in exactly one item, with
 * the same code, get results independent of the number of cores.
 * Must be called from the BSP and not from inside fn: such a call (and
 * any call before smp_init()) runs the whole range on the caller, with
 * cpu = the caller's worker index.
 */
void smp_parallel_for(int n_items, smp_fn fn, void *ctx);

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
