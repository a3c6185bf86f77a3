/*
 * hosted.h - the hosted platform's internal interface: Fluid as a Linux
 * process that boots the very image file the unikernel boots.  Each file
 * here implements one part of plat/plat.h:
 *
 *   main.c     arguments (and the boot options they give), start-up
 *              order, then fluid_start()
 *   image.c    the image file: header and region checks, the MODULES
 *              region, the boot disk (pread/pwrite on the file)
 *   image_check.c  those header checks as pure functions (also fuzzed)
 *   console.c  the terminal: raw mode, line output, input bytes
 *   cpus.c     one pinned worker thread per CPU, the parallel-for's futex
 *              waits, per-thread CPU ids
 *   mem.c      memory (mmap, huge pages via madvise) and W^X module code
 *   pmu.c      PMU counters through perf_event_open
 *   power.c    exit statuses (test mode as isa-debug-exit), re-exec, info
 */
#ifndef FLUID_HOSTED_H
#define FLUID_HOSTED_H

#include <stdint.h>

/* Exit statuses: as QEMU's isa-debug-exit gives them in test mode
 * (poweroff 1, failure 3); outside test mode poweroff exits 0. */
#define HOSTED_EXIT_USAGE 2
#define HOSTED_EXIT_FAILURE 3

struct hosted_options {
    const char *image;       /* the image file */
    int test;                /* --test */
    int threads;             /* --threads N, 0 = every CPU we may use */
    uint64_t mem_bytes;      /* --mem SIZE, 0 = MemAvailable */
    int stay;                /* --stay: keep the prompt when the model fails */
    int ctx_size;            /* -c/--ctx-size N (tokens; 0 = the model's); -1 = not given */
    const char *cpu_tag;     /* --cpu TAG: only that tag's instruction sets, NULL = all */
};
extern struct hosted_options hosted_opt;

/* image.c: open and check the image (header, regions against the file
 * size, CRCs of the boot regions), read the MODULES region.  Returns 0,
 * or -1 after printing one message. */
int hosted_image_open(const char *path);

/* console.c: raw mode when stdin is a terminal; restored at exit. */
void hosted_console_init(void);
void hosted_console_restore(void);

/* cpus.c: start the worker threads (after cpu detection and the TSC);
 * prints "cpus: ..." */
void hosted_cpus_init(int threads);
/* Set up this thread's per-CPU id (the main thread is 0). */
void hosted_cpu_set_id(int id);

/* mem.c: the allocation budget (bytes). */
void hosted_mem_init(uint64_t budget);

/* pmu.c: open this thread's counters (called on every worker thread). */
void hosted_pmu_thread_init(void);

/* power.c: catch faults (SIGSEGV, SIGILL, SIGFPE, SIGBUS) with a report,
 * as the unikernel's exception handler does. */
void hosted_fault_init(void);
/* main.c: argv as given, for plat_reboot's re-exec. */
extern char **hosted_argv;
/* TSC at main() entry. */
extern uint64_t hosted_tsc_start;

#endif
