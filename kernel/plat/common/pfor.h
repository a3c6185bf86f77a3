/*
 * pfor.h - the lock-free parallel-for both platforms run (plat_parallel_for
 * in plat/plat.h).  Only the waiting differs: the pc platform spins with
 * pause / monitor+mwait / plain loads and sleeps in hlt until an IPI; the
 * hosted one spins with pause and sleeps on a futex.  Those are the hooks.
 *
 * The job: CPU 0 publishes fn/ctx/n and bumps a 32-bit generation; every
 * worker, and CPU 0 itself, claims chunks (up to 4 per worker, so a CPU
 * the host holds up does not hold the job up) with a compare-exchange on one
 * 64-bit word (generation << 32 | chunks << 16 | next chunk) and runs them;
 * CPU 0 returns when all chunks are done.  A worker that finds no new job for
 * spin_ticks TSC ticks sets its bit in the sleepers mask and sleeps.
 */
#ifndef FLUID_PFOR_H
#define FLUID_PFOR_H

#include <stdatomic.h>
#include <stdint.h>
#include "plat/plat.h"

#define PFOR_MAX_CPUS 64

struct pfor_hooks {
    /* One step of a plain busy wait (CPU 0 waiting for the chunks). */
    void (*relax)(void);
    /* One step of a busy wait for *word to change (pause, mwait, ...). */
    void (*spin)(const _Atomic uint64_t *word, uint64_t seen_word);
    /* Sleep until woken; called with the caller's sleepers bit set, and
     * must return at once when the generation (high 32 bits of *word) is
     * no longer `seen`.  May return spuriously. */
    void (*sleep)(const _Atomic uint64_t *word, uint32_t seen);
    /* Wake the CPUs (per-CPU ids) whose bits are set in `mask`. */
    void (*wake)(uint64_t mask);
};

/* Set the hooks and the idle time before a worker sleeps (TSC ticks). */
void pfor_setup(const struct pfor_hooks *h, uint64_t spin_ticks);
/* Add the CPU with per-CPU id `id` as the next worker (CPU 0 is worker 0
 * from the start); returns its worker index. */
int pfor_add_worker(uint32_t id);
/* Workers taking part (1 + those added). */
int pfor_workers(void);
/* The worker loop of CPU `id` (after pfor_add_worker): never returns. */
__attribute__((noreturn)) void pfor_worker_loop(uint32_t id);
/* plat_parallel_for(), called on the CPU whose id is `caller_id`. */
void pfor_run(uint32_t caller_id, int n_items, plat_fn fn, void *ctx);
/* Chunks of the current job claimed so far (a job's fn may watch it). */
uint32_t pfor_claimed(void);
/* The job word, for platforms that need its address (a futex). */
extern _Atomic uint64_t *const pfor_word;

#endif
