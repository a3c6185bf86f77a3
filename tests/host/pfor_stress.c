/*
 * pfor_stress.c - plat/common/pfor.c under load: THREADS pthreads (more
 * than the host's CPUs, so the host preempts them at any instruction, as
 * it does a hosted Fluid on a busy machine) run JOBS parallel-fors of
 * varying sizes.  Every job's items must each run exactly once, with the
 * job's own fn and ctx, and every job must end: a lost or doubled chunk
 * count hangs CPU 0, which the alarm turns into a failure.
 *
 *   pfor_stress THREADS JOBS SECONDS
 * prints "ok JOBS jobs" or the first thing that went wrong; exit 0 / 1.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "plat/common/pfor.h"

#define MAX_ITEMS 300

struct job_ctx {
    long job;                         /* which job this ctx belongs to */
    _Atomic int hits[MAX_ITEMS];
};

static struct job_ctx ctxs[2];        /* alternate, so a stale ctx is visible */
static _Atomic long bad;
static _Atomic long current_job;

static void fn_a(void *p, int b, int e, int w);
static void fn_b(void *p, int b, int e, int w);

static void check(void *p, int b, int e, long want_parity)
{
    struct job_ctx *c = p;
    if (c->job != atomic_load(&current_job) || (c->job & 1) != want_parity)
        atomic_fetch_add(&bad, 1);    /* a chunk of an older job ran with this job's fields, or the reverse */
    for (int i = b; i < e; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static void fn_a(void *p, int b, int e, int w) { (void)w, check(p, b, e, 0); }
static void fn_b(void *p, int b, int e, int w) { (void)w, check(p, b, e, 1); }

/* Yield in the hooks too: more interleavings per second than pause. */
static void h_relax(void) { sched_yield(); }
static void h_spin(const _Atomic uint64_t *w, uint64_t s) { (void)w, (void)s, sched_yield(); }
static void h_sleep(const _Atomic uint64_t *w, uint32_t s) { (void)w, (void)s, sched_yield(); }
static void h_wake(uint64_t m) { (void)m; }

static void *worker(void *arg)
{
    pfor_worker_loop((uint32_t)(uintptr_t)arg);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "HANG: a parallel-for never finished\n";
    if (write(1, m, sizeof m - 1) < 0)
        _exit(1);
    _exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pfor_stress THREADS JOBS SECONDS\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    long jobs = atol(argv[2]);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)atoi(argv[3]));
    struct pfor_hooks h = { h_relax, h_spin, h_sleep, h_wake };
    pfor_setup(&h, ~0ull >> 1);
    for (int i = 1; i < threads; i++) {
        pfor_add_worker((uint32_t)i);
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(uintptr_t)i) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    unsigned seed = 1;
    for (long j = 0; j < jobs; j++) {
        struct job_ctx *c = &ctxs[j & 1];
        int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % MAX_ITEMS;
        c->job = j;
        memset(c->hits, 0, sizeof c->hits);
        atomic_store(&current_job, j);
        pfor_run(0, n, (j & 1) ? fn_b : fn_a, c);
        for (int i = 0; i < MAX_ITEMS; i++)
            if (atomic_load(&c->hits[i]) != (i < n)) {
                printf("job %ld (n %d): item %d ran %d times\n", j, n, i, atomic_load(&c->hits[i]));
                return 1;
            }
        if (atomic_load(&bad)) {
            printf("job %ld: a chunk ran with another job's fn or ctx\n", j);
            return 1;
        }
    }
    printf("ok %ld jobs\n", jobs);
    return 0;
}
