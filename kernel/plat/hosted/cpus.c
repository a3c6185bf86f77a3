/*
 * cpus.c - the hosted platform's CPUs: one worker thread per CPU this
 * process may run on (sched_getaffinity), each pinned to its own CPU, the
 * main thread (CPU id 0, the shell) pinned to the first.  They run the same
 * lock-free parallel-for as the unikernel's cores (plat/common/pfor.c);
 * only the waiting differs: pause while a job may come soon, then a futex
 * on the job word's generation (Linux futex(2), FUTEX_WAIT_PRIVATE), woken
 * by FUTEX_WAKE when CPU 0 posts a job.
 */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "arch/x86/cpu.h"
#include "arch/x86/insn.h"
#include "hosted.h"
#include "lib/kprintf.h"
#include "plat/common/pfor.h"
#include "plat/plat.h"

#define SPIN_US 20000u             /* a worker sleeps when no job came for this long */
#define WORKER_STACK (1u << 20)

static __thread int cpu_id;        /* this thread's per-CPU id */
static int n_present = 1;
static int cpu_of[FLUID_MAX_CPUS]; /* per-CPU id -> host CPU it is pinned to (-1: not pinned) */
static int pinned;

void hosted_cpu_set_id(int id) { cpu_id = id; }
int plat_cpu_id(void) { return cpu_id; }
int plat_cpus_online(void) { return pfor_workers(); }
int plat_cpus_present(void) { return n_present; }
int plat_cpu_ids(void) { return pfor_workers(); }
const char *plat_wait_mode(void) { return "pause, then futex"; }

void plat_parallel_for(int n_items, plat_fn fn, void *ctx)
{
    pfor_run((uint32_t)cpu_id, n_items, fn, ctx);
}

static void hook_relax(void) { cpu_relax(); }

static void hook_spin(const _Atomic uint64_t *word, uint64_t seen_word)
{
    (void)word, (void)seen_word;
    cpu_relax();
}

/* The generation is the high half of the 64-bit job word (little-endian:
 * the second 32-bit word); the kernel compares it with `seen` atomically,
 * so a job posted after pfor's re-check ends the wait at once. */
static uint32_t *generation_word(const _Atomic uint64_t *word)
{
    return (uint32_t *)(uintptr_t)word + 1;
}

static void hook_sleep(const _Atomic uint64_t *word, uint32_t seen)
{
    syscall(SYS_futex, generation_word(word), FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void hook_wake(uint64_t mask)
{
    (void)mask;
    syscall(SYS_futex, generation_word(pfor_word), FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static const struct pfor_hooks hooks = { hook_relax, hook_spin, hook_sleep, hook_wake };

static int pin(pthread_t t, int host_cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(host_cpu, &set);
    return pthread_setaffinity_np(t, sizeof set, &set);
}

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    hosted_cpu_set_id(id);
    hosted_pmu_thread_init();
    pfor_worker_loop((uint32_t)id);
}

void hosted_cpus_init(int threads)
{
    cpu_set_t allowed;
    int host[FLUID_MAX_CPUS], n = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
        for (int c = 0; c < CPU_SETSIZE && n < FLUID_MAX_CPUS; c++)
            if (CPU_ISSET(c, &allowed))
                host[n++] = c;
    }
    if (n == 0) {
        long k = sysconf(_SC_NPROCESSORS_ONLN);
        for (int c = 0; c < k && n < FLUID_MAX_CPUS; c++)
            host[n++] = -1;
    }
    n_present = n > 0 ? n : 1;
    int want = threads > 0 ? threads : n_present;
    if (want > FLUID_MAX_CPUS)
        want = FLUID_MAX_CPUS;
    pfor_setup(&hooks, cpu.tsc_hz / 1000000u * SPIN_US);
    /* Pin only when there is a CPU for every thread: oversubscribed
     * threads are better left to the host scheduler. */
    pinned = want <= n && host[0] >= 0;
    cpu_of[0] = pinned ? host[0] : -1;
    if (pinned && pin(pthread_self(), host[0]) != 0)
        pinned = 0;
    int started = 1;
    for (int i = 1; i < want; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, WORKER_STACK);
        pthread_t t;
        pfor_add_worker((uint32_t)i);
        if (pthread_create(&t, &a, worker_main, (void *)(intptr_t)i) != 0) {
            /* Already counted as a worker: its chunks are claimed by the
             * others (pfor.c), so the results stay right, only slower. */
            kprintf("cpus: cannot start worker thread %d\n", i);
            pthread_attr_destroy(&a);
            break;
        }
        pthread_attr_destroy(&a);
        cpu_of[i] = pinned ? host[i] : -1;
        if (pinned)
            pin(t, host[i]);
        started++;
    }
    kprintf("cpus: %d worker threads (%d started) on %d host CPUs%s\n", pfor_workers(), started, n_present,
            pinned ? ", each pinned to its own CPU" : " (not pinned)");
}
